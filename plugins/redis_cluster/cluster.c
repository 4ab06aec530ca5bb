/* The `redis_cluster` backplane plugin: descriptor, [redis_cluster]
 * settings, lifecycle.
 *
 *   [redis_cluster]
 *   seeds = 127.0.0.1:7000, redis-2.internal:7000  ; required: host:port, names
 *                             ; allowed (resolved with uv_getaddrinfo), [v6]:port
 *   user =                    ; ACL user for AUTH
 *   password =                ; AUTH when set
 *   prefix = confab:          ; up to 64 printable characters, no spaces, no { or }
 *   presence_ttl = 15         ; s after which a silent node's members are gone
 *   partitions = 128          ; 1..1024, equal on every node (the config record)
 *   ack_replicas = 1          ; an ack waits for this many replicas (WAIT); 0: none
 *   ack_timeout_ms = 1000     ; WAIT's timeout
 *   probe_interval_ms = 1000, probe_timeout_ms = 3000, reconnect_max_ms = 5000
 *   refresh_interval_ms = 5000  ; the slot map is asked again this often
 *   tls = no, tls_ca_file, tls_cert_file, tls_key_file, tls_server_name,
 *   tls_verify = yes          ; as [redis] (../redislink/rsettings.c reads both)
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define SEEDS_MAX 64

/* Numbers, addresses and the TLS keys are read by the rules both Redis
 * backplanes share (../redislink/rsettings.h). */
static rset settings(cl_state *s)
{
	return (rset){ .host = s->base.host, .ctx = s->base.ctx, .seen = &s->base.seen };
}

/* `seeds`: host:port entries (names allowed, [v6]:port), the port required. */
static int read_seeds(cl_state *s)
{
	rset r = settings(s);
	int rc;

	if ((s->seeds = calloc(SEEDS_MAX, sizeof(*s->seeds))) == NULL)
		return CONFAB_ENOMEM;
	rc = rset_addrs(&r, "seeds", 0, s->seeds, SEEDS_MAX, &s->n_seeds);
	if (rc != 0)
		return rc;
	if (s->n_seeds == 0) {
		s->base.host->config_error(s->base.ctx,
					   "seeds", "is required: host:port of one or more "
					   "nodes of the cluster, comma separated");
		return CONFAB_EINVAL;
	}
	return 0;
}

static int read_settings(cl_state *s)
{
	rset r = settings(s);
	const char *v;
	int rc;

	if ((rc = read_seeds(s)) != 0 || (rc = rset_prefix(&r, true, &s->prefix)) != 0 ||
	    (rc = rset_tls(&r, &s->tls, &s->tls_no_verify)) != 0)
		return rc;
	v = rset_text(&r, "user");
	if (v != NULL && (s->user = strdup(v)) == NULL)
		return CONFAB_ENOMEM;
	v = rset_secret(&r, "password");
	if (v != NULL && (s->password = strdup(v)) == NULL)
		return CONFAB_ENOMEM;
	if (rset_common_read(&r, CL_BACKOFF_FIRST_MS, &s->common) != 0 ||
	    rset_uint(&r, "partitions", 128, 1, CL_PARTITIONS_MAX, &s->partitions) != 0 ||
	    rset_uint(&r, "ack_replicas", 1, 0, 64, &s->ack_replicas) != 0 ||
	    rset_uint(&r, "ack_timeout_ms", 1000, 10, 600000, &s->ack_timeout_ms) != 0 ||
	    rset_uint(&r, "refresh_interval_ms", 5000, 100, 3600000, &s->refresh_interval_ms) != 0)
		return CONFAB_EINVAL;
	if (s->user != NULL && s->password == NULL) {
		s->base.host->config_error(s->base.ctx, "user", "needs a password");
		return CONFAB_EINVAL;
	}
	s->node_id = s->base.host->node_id(s->base.ctx);

	/* The record that every node of a deployment must agree on. */
	if (asprintf(&s->config_key, "{%sconfig}", s->prefix) < 0) {
		s->config_key = NULL;
		return CONFAB_ENOMEM;
	}
	if (asprintf(&s->config_value, "layout=1 partitions=%u", s->partitions) < 0) {
		s->config_value = NULL;
		return CONFAB_ENOMEM;
	}
	return 0;
}

void cl_state_free(cl_state *s)
{
	if (s == NULL)
		return;
	/* Requests made while destroy closed the links (a reconcile or a
	 * history fill that a lost reply starts again) wait in vain: the
	 * links are gone, the core was answered. */
	cq_free_all(s);
	ops_free(s);
	free(s->seeds);
	/* Every link is closed (no handle is counted any more); one whose
	 * memory libuv still holds keeps its own reference to OpenSSL's. */
	rtls_config_free(s->tls);
	if (s->part != NULL)
		for (unsigned k = 0; k < s->partitions; k++) {
			free(s->part[k].prefix);
			free(s->part[k].channel);
		}
	free(s->part);
	free(s->slot_part);
	rslot_map_clear(&s->map);
	free(s->user);
	free(s->password);
	free(s->prefix);
	free(s->config_key);
	free(s->config_value);
	free(s);
}

void cl_release(cl_state *s)
{
	if (--s->handles == 0 && s->destroying)
		cl_state_free(s);
}

static int cl_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	int rc;
	cl_state *s = rbase_new(ctx, host, sizeof(*s), &rc);

	if (s == NULL)
		return rc;
	rslot_map_init(&s->map);
	rc = read_settings(s);
	/* Not in read_settings, which a reload calls too: the partitions'
	 * tags take up to tens of ms to find (1024 of them), on the loop. */
	if (rc == 0)
		rc = part_init(s);
	s->map.tls = s->tls != NULL;  /* the map then names the nodes' TLS ports */
	/* a cluster's MOVED and ASK mean "not now": the slot is moving */
	if ((rc = rbase_tables(&s->base, rc, true, &ops_lroom_kind)) != 0 ||
	    (rc = rbase_metrics_register(&s->base, cl_script_name, CS_COUNT, false)) != 0) {
		cl_state_free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static int cl_start(void *state)
{
	cl_state *s = state;

	cl_log(s, CONFAB_LOG_INFO, "joining the Redis Cluster through %s:%d%s (prefix '%s', "
	       "%u partitions, ack_replicas %u, presence_ttl %u s%s)", s->seeds[0].host,
	       s->seeds[0].port, s->n_seeds > 1 ? " and other seeds" : "", s->prefix,
	       s->partitions, s->ack_replicas, s->common.presence_ttl_ms / 1000,
	       s->tls != NULL ? ", TLS" : "");
	if (s->tls_no_verify)
		cl_log(s, CONFAB_LOG_WARN, "tls_verify = no: the cluster nodes' certificates are "
		       "not verified; anyone on the path can read and change the traffic");
	s->base.started = true;
	/* A cluster down is no reason not to start: /healthz says 503 until
	 * it is usable, and requests get `unavailable`. */
	return topo_start(s);
}

RBASE_DESTROY_SLOT(cl_destroy, cl_state, cl_state_free, topo_destroy)
/* A reload reads the section with read_settings again: a bad value
 * refuses it, a changed one is logged as needing a restart. */
RBASE_RELOAD_SLOT(cl_reload, cl_state, read_settings, cl_state_free)

static const confab_plugin cluster_plugin = {
	CONFAB_PLUGIN_HEADER(CONFAB_KIND_BACKPLANE, "redis_cluster", "0.1.0"),
	.description = "Redis Cluster backplane (sharded pub/sub, partitions, WAIT for "
		       "replicas): rooms, presence and history shared by many nodes",
	.init = cl_init,
	.start = cl_start,
	.destroy = cl_destroy,
	.reload = cl_reload,
	.reload_finish = rbase_reload_finish,
	.backplane = &cluster_backplane_ops,
};

CONFAB_PLUGIN_DEFINE(cluster_plugin)
