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
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 6379
#define DEFAULT_SENTINEL_PORT 26379
#define MAX_SENTINELS 16

/* ---- settings ---- */

/* Numbers, yes/no, addresses and the TLS keys are read by the rules both
 * Redis backplanes share (../redislink/rsettings.h). */
static rset settings(redis_state *s)
{
	return (rset){ .host = s->base.host, .ctx = s->base.ctx, .seen = &s->base.seen };
}

static const char *get_nonempty(redis_state *s, const char *key)
{
	rset r = settings(s);

	return rset_text(&r, key);
}

static int read_host(redis_state *s)
{
	rset r = settings(s);
	const char *v = rset_get(&r, "host", DEFAULT_HOST);

	if (!rset_host_ok(v, sizeof(s->addr))) {
		s->base.host->config_error(s->base.ctx,
					   "host", "'%s' is not an IP address or a host name", v);
		return -1;
	}
	snprintf(s->addr, sizeof(s->addr), "%s", v);
	return 0;
}

/* `sentinels` (a comma-separated list) and what goes with it. */
static int read_sentinels(redis_state *s)
{
	rset r = settings(s);
	const char *host = s->base.host->config_get(s->base.ctx, "host"),
		   *port = s->base.host->config_get(s->base.ctx, "port"), *name;
	int rc;

	if (host != NULL || port != NULL) {
		/* Which one would win is anybody's guess: refuse both. */
		s->base.host->config_error(s->base.ctx,
					   "sentinels", "'sentinels' and '%s' cannot be used "
					   "together: with 'sentinels' the node asks the sentinels for "
					   "the master's address (remove 'host' and 'port')",
					   host != NULL ? "host" : "port");
		return CONFAB_EINVAL;
	}
	rc = rset_addrs(&r, "sentinels", DEFAULT_SENTINEL_PORT, s->sentinels, MAX_SENTINELS,
			&s->n_sentinels);
	if (rc != 0)
		return rc;
	if (s->n_sentinels == 0) {
		s->base.host->config_error(s->base.ctx, "sentinels", "no sentinel address given");
		return CONFAB_EINVAL;
	}
	name = get_nonempty(s, "master_name");
	if (name == NULL) {
		s->base.host->config_error(s->base.ctx,
					   "master_name", "is required with 'sentinels': the "
					   "name the sentinels monitor the master under");
		return CONFAB_EINVAL;
	}
	if (strlen(name) > 200 || strpbrk(name, " \t\r\n") != NULL) {
		s->base.host->config_error(s->base.ctx,
					   "master_name", "'%s' is not a sentinel master name",
					   name);
		return CONFAB_EINVAL;
	}
	if ((s->master_name = strdup(name)) == NULL)
		return CONFAB_ENOMEM;
	name = rset_secret(&r, "sentinel_password");
	if (name != NULL && (s->sentinel_password = strdup(name)) == NULL)
		return CONFAB_ENOMEM;
	return 0;
}

static int read_settings(redis_state *s)
{
	rset r = settings(s);
	const char *v;
	unsigned u;
	int n;

	if (s->base.host->config_get(s->base.ctx, "sentinels") != NULL) {
		n = read_sentinels(s);
		if (n != 0)
			return n;
		s->addr[0] = '\0';  /* the sentinels will say */
	} else {
		if (get_nonempty(s, "master_name") != NULL ||
		    rset_secret(&r, "sentinel_password") != NULL) {
			s->base.host->config_error(s->base.ctx,
						   get_nonempty(s, "master_name") ? "master_name" :
						   "sentinel_password", "is used only with 'sentinels'");
			return CONFAB_EINVAL;
		}
		if (read_host(s) != 0)
			return CONFAB_EINVAL;
		if (rset_uint(&r, "port", DEFAULT_PORT, 1, 65535, &u) != 0)
			return CONFAB_EINVAL;
		s->port = (int)u;
	}
	/* Behind Sentinel the point is to survive a failover: an ack should
	 * mean a replica has the message (docs/backplane-redis.md). */
	if (rset_uint(&r, "ack_replicas", s->n_sentinels > 0 ? 1 : 0, 0, 100,
		      &s->ack_replicas) != 0)
		return CONFAB_EINVAL;
	n = rset_tls(&r, &s->tls, &s->tls_no_verify);
	if (n != 0)
		return n;
	v = rset_secret(&r, "password");
	if (v != NULL && (s->password = strdup(v)) == NULL)
		return CONFAB_ENOMEM;
	if (rset_uint(&r, "db", 0, 0, INT_MAX, &u) != 0)
		return CONFAB_EINVAL;
	s->db = u;
	if ((n = rset_prefix(&r, false, &s->prefix)) != 0)
		return n;
	if (rset_common_read(&r, REDIS_BACKOFF_FIRST_MS, &s->common) != 0)
		return CONFAB_EINVAL;
	s->node_id = s->base.host->node_id(s->base.ctx);

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
	int rc;
	redis_state *s = rbase_new(ctx, host, sizeof(*s), &rc);

	if (s == NULL)
		return rc;
	if ((rc = rbase_tables(&s->base, read_settings(s), false, &ops_lroom_kind)) != 0 ||
	    (rc = rbase_metrics_register(&s->base, redis_script_name, SCRIPT_COUNT,
					 s->n_sentinels > 0)) != 0) {
		redis_state_free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static int redis_start(void *state)
{
	redis_state *s = state;

	if (s->n_sentinels > 0)
		redis_log(s, CONFAB_LOG_INFO, "asking %zu sentinels for master '%s' (db %ld, "
			  "prefix '%s', presence_ttl %u s, ack_replicas %u%s)", s->n_sentinels,
			  s->master_name, s->db, s->prefix, s->common.presence_ttl_ms / 1000,
			  s->ack_replicas, s->tls != NULL ? ", TLS" : "");
	else
		redis_log(s, CONFAB_LOG_INFO, "connecting to Redis at %s:%d (db %ld, prefix '%s', "
			  "presence_ttl %u s, ack_replicas %u%s)", s->addr, s->port, s->db,
			  s->prefix, s->common.presence_ttl_ms / 1000, s->ack_replicas,
			  s->tls != NULL ? ", TLS" : "");
	if (s->tls_no_verify)
		redis_log(s, CONFAB_LOG_WARN, "tls_verify = no: Redis's certificate is not "
			  "verified; anyone in the path can read and change the traffic (for "
			  "tests only)");
	s->base.started = true;
	/* Redis down is no reason not to start: /healthz says 503 until it
	 * is reachable, and requests get `unavailable`. */
	return conn_start(s);
}

RBASE_DESTROY_SLOT(redis_destroy, redis_state, redis_state_free, conn_destroy)
/* A reload reads the section with read_settings again: a bad value
 * refuses it, a changed one is logged as needing a restart. */
RBASE_RELOAD_SLOT(redis_reload, redis_state, read_settings, redis_state_free)

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
	.reload = redis_reload,
	.reload_finish = rbase_reload_finish,
	.backplane = &redis_backplane_ops,
};

CONFAB_PLUGIN_DEFINE(redis_plugin)
