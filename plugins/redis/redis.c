/* The `redis` backplane plugin: descriptor, [redis] settings, lifecycle.
 *
 *   [redis]
 *   host = 127.0.0.1          ; an IP address or a DNS name (resolved without
 *                             ; blocking the loop, again at every reconnect)
 *   port = 6379
 *   password =                ; AUTH when set
 *   db = 0                    ; SELECT; channels then carry "db<N>:" too
 *   prefix = confab:          ; every key and channel starts with it
 *   presence_ttl = 15         ; s after which a silent node's members are gone
 *   probe_interval_ms = 1000  ; how often the subscription is proven alive
 *   probe_timeout_ms = 3000   ; how long a probe, a request or a connection setup may take
 *   reconnect_max_ms = 5000   ; the reconnect backoff's ceiling
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "redis.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 6379
#define DEFAULT_PREFIX "confab:"
#define DEFAULT_PRESENCE_TTL 15
#define DEFAULT_PROBE_INTERVAL_MS 1000
#define DEFAULT_PROBE_TIMEOUT_MS 3000
#define DEFAULT_RECONNECT_MAX_MS 5000
#define DEFAULT_HISTORY_SIZE 100
#define PREFIX_MAX 64

/* ---- settings ---- */

/* A decimal integer in [min, max]. */
static int parse_long(const char *v, long min, long max, long *out)
{
	char *end;
	long n;

	if (v == NULL || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/* Reads a numeric key with its default; 0, or config_error + -1. */
static int read_number(redis_state *s, const char *key, long def, long min, long max,
		       const char *unit, long *out)
{
	const char *v = s->host->config_get(s->ctx, key);

	*out = def;
	if (v == NULL)
		return 0;
	if (parse_long(v, min, max, out) != 0) {
		s->host->config_error(s->ctx, key, "'%s' is not a %s from %ld to %ld",
				      v, unit, min, max);
		return -1;
	}
	return 0;
}

/* A DNS name as resolvers take it: dot-separated labels of 1 to 63
 * letters, digits, '-' (not first or last) or '_' (container platforms
 * name services so), 253 characters at most, one final dot allowed. What
 * is refused here could only fail later, at every reconnect, with a less
 * clear line. */
static bool host_name_ok(const char *v)
{
	size_t n = strlen(v), label = 0;

	if (n > 0 && v[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? v[i] : '.';

		if (c == '.') {
			if (label == 0 || v[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '_' || (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static int read_host(redis_state *s)
{
	const char *v = s->host->config_get(s->ctx, "host");
	unsigned char buf[sizeof(struct in6_addr)];

	if (v == NULL)
		v = DEFAULT_HOST;
	if (strlen(v) >= sizeof(s->addr) ||
	    (inet_pton(AF_INET, v, buf) != 1 && inet_pton(AF_INET6, v, buf) != 1 &&
	     !host_name_ok(v))) {
		s->host->config_error(s->ctx, "host", "'%s' is not an IP address or a host name", v);
		return -1;
	}
	snprintf(s->addr, sizeof(s->addr), "%s", v);
	return 0;
}

static int read_prefix(redis_state *s)
{
	const char *v = s->host->config_get(s->ctx, "prefix");

	if (v == NULL)
		v = DEFAULT_PREFIX;
	if (strlen(v) > PREFIX_MAX)
		goto bad;
	for (const char *p = v; *p; p++)
		if (*p <= ' ' || *p > '~')
			goto bad;
	if ((s->prefix = strdup(v)) == NULL)
		return CONFAB_ENOMEM;
	return 0;
bad:
	s->host->config_error(s->ctx, "prefix", "'%s' is not up to %d printable characters "
			      "without spaces", v, PREFIX_MAX);
	return -1;
}

static int read_settings(redis_state *s)
{
	const char *v;
	long n, ttl, interval, timeout, backoff;

	if (read_host(s) != 0)
		return CONFAB_EINVAL;
	if (read_number(s, "port", DEFAULT_PORT, 1, 65535, "port number", &n) != 0)
		return CONFAB_EINVAL;
	s->port = (int)n;
	v = s->host->config_get(s->ctx, "password");
	if (v != NULL && *v != '\0' && (s->password = strdup(v)) == NULL)
		return CONFAB_ENOMEM;
	if (read_number(s, "db", 0, 0, INT_MAX, "database number", &s->db) != 0)
		return CONFAB_EINVAL;
	n = read_prefix(s);
	if (n != 0)
		return n == CONFAB_ENOMEM ? CONFAB_ENOMEM : CONFAB_EINVAL;
	if (read_number(s, "presence_ttl", DEFAULT_PRESENCE_TTL, 2, 86400, "number of seconds",
			&ttl) != 0 ||
	    read_number(s, "probe_interval_ms", DEFAULT_PROBE_INTERVAL_MS, 50, 600000,
			"number of milliseconds", &interval) != 0 ||
	    read_number(s, "probe_timeout_ms", DEFAULT_PROBE_TIMEOUT_MS, 100, 600000,
			"number of milliseconds", &timeout) != 0 ||
	    read_number(s, "reconnect_max_ms", DEFAULT_RECONNECT_MAX_MS, REDIS_BACKOFF_FIRST_MS,
			600000, "number of milliseconds", &backoff) != 0)
		return CONFAB_EINVAL;
	s->presence_ttl_ms = (unsigned)ttl * 1000;
	/* Beat often enough that a dead node is forgotten within about
	 * presence_ttl + 1 s, whatever the ttl. */
	s->heartbeat_ms = s->presence_ttl_ms / 4 < 1000 ? s->presence_ttl_ms / 4 : 1000;
	s->probe_interval_ms = (unsigned)interval;
	s->probe_timeout_ms = (unsigned)timeout;
	s->reconnect_max_ms = (unsigned)backoff;

	v = s->host->broker_get(s->ctx, "history_size");
	s->history_size = v != NULL ? strtoul(v, NULL, 10) : DEFAULT_HISTORY_SIZE;
	v = s->host->broker_get(s->ctx, "room_ttl");
	s->room_ttl = v != NULL ? strtoul(v, NULL, 10) : 0;
	v = s->host->broker_get(s->ctx, "idem_window");
	s->idem_window = v != NULL ? strtoul(v, NULL, 10) : 120;
	s->node_id = s->host->node_id(s->ctx);

	if (s->db != 0) {
		/* Keys are per database, channels are not: keep deployments
		 * that differ only in db apart. */
		if (asprintf(&s->chan_prefix, "%sdb%ld:", s->prefix, s->db) < 0)
			s->chan_prefix = NULL;
	} else {
		s->chan_prefix = strdup(s->prefix);
	}
	if (s->chan_prefix == NULL ||
	    asprintf(&s->node_chan, "%snode:%s", s->chan_prefix, s->node_id) < 0) {
		s->node_chan = NULL;
		return CONFAB_ENOMEM;
	}
	return 0;
}

/* ---- lifecycle ---- */

void redis_state_free(redis_state *s)
{
	if (s == NULL)
		return;
	ops_free(s);
	free(s->password);
	free(s->prefix);
	free(s->chan_prefix);
	free(s->node_chan);
	free(s);
}

static int redis_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	redis_state *s;
	int rc;

	if (!CONFAB_HAS(host, backplane) || host->backplane == NULL ||
	    !CONFAB_HAS(host->backplane, health)) {
		host->log(ctx, CONFAB_LOG_ERROR, "the broker offers no backplane entry points");
		return CONFAB_EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CONFAB_ENOMEM;
	s->ctx = ctx;
	s->host = host;
	s->loop = (uv_loop_t *)host->loop(ctx);
	rc = read_settings(s);
	if (rc == 0) {
		s->rooms = dict_new();
		s->users = dict_new();
		if (s->rooms == NULL || s->users == NULL)
			rc = CONFAB_ENOMEM;
	}
	if (rc != 0) {
		if (rc == CONFAB_ENOMEM)
			host->log(ctx, CONFAB_LOG_ERROR, "out of memory");
		redis_state_free(s);
		return rc;
	}
	/* In every probe: a probe of another process on our node channel
	 * means two nodes share a node_id. */
	snprintf(s->nonce, sizeof(s->nonce), "%x-%" PRIx64, (unsigned)uv_os_getpid(),
		 uv_hrtime());
	*state = s;
	return 0;
}

static int redis_start(void *state)
{
	redis_state *s = state;

	redis_log(s, CONFAB_LOG_INFO, "connecting to Redis at %s:%d (db %ld, prefix '%s', "
		  "presence_ttl %u s)", s->addr, s->port, s->db, s->prefix,
		  s->presence_ttl_ms / 1000);
	s->started = true;
	/* Redis down is no reason not to start: /healthz says 503 until it
	 * is reachable, and requests get `unavailable`. */
	return conn_start(s);
}

static void redis_destroy(void *state)
{
	redis_state *s = state;

	if (s == NULL)
		return;
	if (!s->started)
		redis_state_free(s);  /* confabd -t, or a start that never came */
	else
		conn_destroy(s);      /* frees s when its handles are closed */
}

static const confab_plugin redis_plugin = {
	CONFAB_PLUGIN_HEADER(CONFAB_KIND_BACKPLANE, "redis", "0.1.0"),
	.description = "Redis backplane (on the broker's libuv loop): rooms, "
		       "presence and history shared by many nodes",
	.init = redis_init,
	.start = redis_start,
	/* No stop: while the core closes its sessions after SIGTERM they
	 * still leave their rooms through us, and Redis should hear it.
	 * destroy says goodbye for whatever is left. */
	.destroy = redis_destroy,
	.backplane = &redis_backplane_ops,
};

CONFAB_PLUGIN_DEFINE(redis_plugin)
