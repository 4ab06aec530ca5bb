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
 *   ack_replicas = 0          ; an ack means N replicas have the message (WAIT);
 *                             ; 1 by default with `sentinels`
 *
 *   ; Redis Sentinel instead of host/port (redis_sentinel.c):
 *   sentinels = 10.0.0.31:26379, 10.0.0.32:26379   ; addresses or names
 *   master_name = confab
 *   sentinel_password =       ; the sentinels' requirepass, when they have one
 *
 *   ; TLS on every connection, the sentinels' included (../redislink/rtls.h):
 *   tls = no
 *   tls_ca_file =  tls_cert_file =  tls_key_file =  tls_server_name =
 *   tls_verify = yes
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
#define DEFAULT_SENTINEL_PORT 26379
#define MAX_SENTINELS 16

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

/* An IP address or a DNS name that fits in `size` bytes. */
static bool host_ok(const char *v, size_t size)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return strlen(v) < size &&
	       (inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1 ||
		host_name_ok(v));
}

static int read_host(redis_state *s)
{
	const char *v = s->host->config_get(s->ctx, "host");

	if (v == NULL)
		v = DEFAULT_HOST;
	if (!host_ok(v, sizeof(s->addr))) {
		s->host->config_error(s->ctx, "host", "'%s' is not an IP address or a host name", v);
		return -1;
	}
	snprintf(s->addr, sizeof(s->addr), "%s", v);
	return 0;
}

/* yes/no (true/false, on/off, 1/0 too): 0, or config_error + -1. */
static int read_bool(redis_state *s, const char *key, bool def, bool *out)
{
	const char *v = s->host->config_get(s->ctx, key);

	*out = def;
	if (v == NULL || *v == '\0')
		return 0;
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") ||
	    !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") ||
		 !strcmp(v, "0"))
		*out = false;
	else {
		s->host->config_error(s->ctx, key, "'%s' is not yes or no", v);
		return -1;
	}
	return 0;
}

/* An optional string key: NULL when absent or empty. */
static const char *get_nonempty(redis_state *s, const char *key)
{
	const char *v = s->host->config_get(s->ctx, key);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* One entry of `sentinels`: "host:port", "[v6]:port", or a host alone
 * (port 26379). 0, or -1 (not an address). */
static int parse_sentinel(const char *e, size_t n, redis_sentinel *out)
{
	char buf[300];
	const char *colon;
	char *host = buf;
	long port = DEFAULT_SENTINEL_PORT;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, e, n);
	buf[n] = '\0';
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return -1;
		*close = '\0';
		host = buf + 1;
		if (close[1] == ':' && parse_long(close + 2, 1, 65535, &port) != 0)
			return -1;
	} else if ((colon = strchr(buf, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		buf[colon - buf] = '\0';
		if (parse_long(colon + 1, 1, 65535, &port) != 0)
			return -1;
	} /* else a name, an IPv4 address, or an IPv6 address without a port */
	if (!host_ok(host, sizeof(out->host)))
		return -1;
	memcpy(out->host, host, strlen(host) + 1);  /* host_ok: it fits */
	out->port = (int)port;
	return 0;
}

/* `sentinels` (a comma-separated list) and what goes with it. */
static int read_sentinels(redis_state *s, const char *v)
{
	const char *p = v, *host = s->host->config_get(s->ctx, "host"),
		   *port = s->host->config_get(s->ctx, "port"), *name;

	if (host != NULL || port != NULL) {
		/* Which one would win is anybody's guess: refuse both. */
		s->host->config_error(s->ctx, "sentinels", "'sentinels' and '%s' cannot be used "
				      "together: with 'sentinels' the node asks the sentinels for "
				      "the master's address (remove 'host' and 'port')",
				      host != NULL ? "host" : "port");
		return CONFAB_EINVAL;
	}
	while (*p != '\0') {
		const char *end = strchr(p, ','), *a, *b;

		if (end == NULL)
			end = p + strlen(p);
		for (a = p; a < end && (*a == ' ' || *a == '\t'); a++)
			;
		for (b = end; b > a && (b[-1] == ' ' || b[-1] == '\t'); b--)
			;
		if (s->n_sentinels == MAX_SENTINELS) {
			s->host->config_error(s->ctx, "sentinels", "more than %d sentinels",
					      MAX_SENTINELS);
			return CONFAB_EINVAL;
		}
		if (parse_sentinel(a, (size_t)(b - a), &s->sentinels[s->n_sentinels]) != 0) {
			s->host->config_error(s->ctx, "sentinels", "'%.*s' is not HOST:PORT (an IP "
					      "address or a host name, and a port)", (int)(b - a), a);
			return CONFAB_EINVAL;
		}
		s->n_sentinels++;
		p = *end == ',' ? end + 1 : end;
	}
	if (s->n_sentinels == 0) {
		s->host->config_error(s->ctx, "sentinels", "no sentinel address given");
		return CONFAB_EINVAL;
	}
	name = get_nonempty(s, "master_name");
	if (name == NULL) {
		s->host->config_error(s->ctx, "master_name", "is required with 'sentinels': the "
				      "name the sentinels monitor the master under");
		return CONFAB_EINVAL;
	}
	if (strlen(name) > 200 || strpbrk(name, " \t\r\n") != NULL) {
		s->host->config_error(s->ctx, "master_name", "'%s' is not a sentinel master name",
				      name);
		return CONFAB_EINVAL;
	}
	if ((s->master_name = strdup(name)) == NULL)
		return CONFAB_ENOMEM;
	name = get_nonempty(s, "sentinel_password");
	if (name != NULL && (s->sentinel_password = strdup(name)) == NULL)
		return CONFAB_ENOMEM;
	return 0;
}

/* tls and its keys: one rtls_config for every link of the instance. */
static int read_tls(redis_state *s)
{
	bool on, verify;
	rtls_opts o = {0};
	char why[400];

	if (read_bool(s, "tls", false, &on) != 0 || read_bool(s, "tls_verify", true, &verify) != 0)
		return CONFAB_EINVAL;
	/* Read even when tls is off, so that they are not reported as
	 * unknown keys: a config may keep them with tls = no. */
	o.ca_file = get_nonempty(s, "tls_ca_file");
	o.cert_file = get_nonempty(s, "tls_cert_file");
	o.key_file = get_nonempty(s, "tls_key_file");
	o.server_name = get_nonempty(s, "tls_server_name");
	o.no_verify = !verify;
	if (!on)
		return 0;
	s->tls_no_verify = !verify;
	s->tls = rtls_config_new(&o, why, sizeof(why));
	if (s->tls == NULL) {
		/* Name the key the line is about. */
		const char *key = strstr(why, "CA file") ? "tls_ca_file" :
				  strstr(why, "key file") && !strstr(why, "certificate file") ?
				  "tls_key_file" : o.cert_file != NULL ? "tls_cert_file" : "tls";

		s->host->config_error(s->ctx, key, "%s", why);
		return CONFAB_EINVAL;
	}
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

	v = s->host->config_get(s->ctx, "sentinels");
	if (v != NULL) {
		n = read_sentinels(s, v);
		if (n != 0)
			return (int)n;
		s->addr[0] = '\0';  /* the sentinels will say */
	} else {
		if (get_nonempty(s, "master_name") != NULL ||
		    get_nonempty(s, "sentinel_password") != NULL) {
			s->host->config_error(s->ctx, get_nonempty(s, "master_name") ? "master_name" :
					      "sentinel_password", "is used only with 'sentinels'");
			return CONFAB_EINVAL;
		}
		if (read_host(s) != 0)
			return CONFAB_EINVAL;
		if (read_number(s, "port", DEFAULT_PORT, 1, 65535, "port number", &n) != 0)
			return CONFAB_EINVAL;
		s->port = (int)n;
	}
	/* Behind Sentinel the point is to survive a failover: an ack should
	 * mean a replica has the message (docs/backplane-redis.md). */
	if (read_number(s, "ack_replicas", s->n_sentinels > 0 ? 1 : 0, 0, 100,
			"number of replicas", &n) != 0)
		return CONFAB_EINVAL;
	s->ack_replicas = (unsigned)n;
	n = read_tls(s);
	if (n != 0)
		return (int)n;
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
	/* rlink_close was called on every link (no handle is counted any
	 * more). A link whose memory libuv still holds keeps only its TLS
	 * session, which holds its own reference to OpenSSL's context. */
	rtls_config_free(s->tls);
	free(s->master_name);
	free(s->sentinel_password);
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

	if (s->n_sentinels > 0)
		redis_log(s, CONFAB_LOG_INFO, "asking %zu sentinels for master '%s' (db %ld, "
			  "prefix '%s', presence_ttl %u s, ack_replicas %u%s)", s->n_sentinels,
			  s->master_name, s->db, s->prefix, s->presence_ttl_ms / 1000,
			  s->ack_replicas, s->tls != NULL ? ", TLS" : "");
	else
		redis_log(s, CONFAB_LOG_INFO, "connecting to Redis at %s:%d (db %ld, prefix '%s', "
			  "presence_ttl %u s, ack_replicas %u%s)", s->addr, s->port, s->db,
			  s->prefix, s->presence_ttl_ms / 1000, s->ack_replicas,
			  s->tls != NULL ? ", TLS" : "");
	if (s->tls_no_verify)
		redis_log(s, CONFAB_LOG_WARN, "tls_verify = no: Redis's certificate is not "
			  "verified; anyone in the path can read and change the traffic (for "
			  "tests only)");
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
