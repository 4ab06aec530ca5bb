/* The state both Redis backplanes begin with: its init, free and reload
 * (rbase.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <confab/ratelimit.h>

#include "rbase.h"

void *rbase_new(confab_ctx *ctx, const confab_host *host, size_t size, int *rc)
{
	rbase *b;

	if (!CONFAB_HAS(host, backplane) || !CONFAB_HAS(host->backplane, health)) {
		host->log(ctx, CONFAB_LOG_ERROR, "the broker offers no backplane entry points");
		*rc = CONFAB_EINVAL;
		return NULL;
	}
	if ((b = calloc(1, size)) == NULL) {
		*rc = CONFAB_ENOMEM;
		return NULL;
	}
	b->ctx = ctx;
	b->host = host;
	b->loop = (uv_loop_t *)host->loop(ctx);
	memset(&b->metrics, 0xff, sizeof(b->metrics));  /* every handle -1 */
	*rc = 0;
	return b;
}

int rbase_tables(rbase *b, int rc, bool redirects, const rops_room_kind *kind)
{
	if (rc == 0) {
		b->rooms = confab_dict_new();
		b->users = confab_dict_new();
		b->onlines = ronline_new();
		if (b->rooms == NULL || b->users == NULL || b->onlines == NULL)
			rc = CONFAB_ENOMEM;
	}
	if (rc == CONFAB_ENOMEM)
		b->host->log(b->ctx, CONFAB_LOG_ERROR, "out of memory");
	if (rc != 0)
		return rc;
	snprintf(b->nonce, sizeof(b->nonce), "%x-%" PRIx64, (unsigned)uv_os_getpid(),
		 uv_hrtime());
	b->rops = (rops_ctx){ .host = b->host, .ctx = b->ctx, .redirects = redirects,
			      .rooms = b->rooms, .kind = kind };
	return 0;
}

void rbase_free_tables(rbase *b)
{
	confab_dict_free(b->rooms, b->rops.kind != NULL ? b->rops.kind->drop : NULL);
	confab_dict_free(b->users, NULL);
	ronline_free(b->onlines);
	b->rooms = b->users = b->onlines = NULL;
}

int rbase_admit(rbase *b, unsigned max, const char *server)
{
	uint64_t t;

	if (b->n_core < max)
		return 0;
	t = uv_now(b->loop);
	if (b->full_warned == 0 || t - b->full_warned >= 1000) {
		b->host->log(b->ctx, CONFAB_LOG_WARN, "%u requests are waiting for %s; refusing "
			     "more until it catches up", max, server);
		b->full_warned = t;
	}
	return CONFAB_EUNAVAILABLE;
}

/* Every join of every client fails so while Redis is out of memory: one
 * line a second, not one per join. */
static confab_ratelimit script_failed_log = CONFAB_RATELIMIT_INIT(1000);

bool rbase_change_done(rbase *b, const redisReply *reply, const char *name, bool log,
		       bool *dirty)
{
	uint64_t skipped;

	if (reply == NULL)
		return false;
	if (reply->type == REDIS_REPLY_INTEGER && reply->integer != 0)
		return true;
	*dirty = true;
	if (reply->type != REDIS_REPLY_INTEGER && log &&
	    confab_ratelimit_allow(&script_failed_log, uv_now(b->loop), &skipped))
		b->host->log(b->ctx, CONFAB_LOG_WARN, "the %s script failed: %s (registered again "
			     "at the next heartbeat; %" PRIu64 " more since the last such line)",
			     name, reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply",
			     skipped);
	return false;
}

/* ---- metrics (docs/metrics.md) ---- */

static const char *const link_names[RBASE_LINKS] = {
	[RBASE_LINK_COMMAND] = "command",
	[RBASE_LINK_SUBSCRIBE] = "subscribe",
	[RBASE_LINK_SENTINEL] = "sentinel",
};

/* A family of `type` with at most one label; its id, or a negative code. */
static int family(rbase *b, uint32_t type, const char *name, const char *help, const char *label)
{
	const char *const labels[1] = { label };
	const confab_metric_family f = {
		.size = sizeof(f),
		.type = type,
		.name = name,
		.help = help,
		.labels = label != NULL ? labels : NULL,
		.n_labels = label != NULL ? 1 : 0,
	};

	return b->host->metrics->family(b->ctx, &f);
}

/* The series of family `fam` (an id, or a negative code passed on) with
 * the label value `value` (NULL: no label): a handle, or a negative code. */
static int series(rbase *b, int fam, const char *value)
{
	const char *const values[1] = { value };

	if (fam < 0)
		return fam;
	return b->host->metrics->series(b->ctx, fam, value != NULL ? values : NULL);
}

int rbase_metrics_register(rbase *b, const char *const *scripts, size_t n, bool sentinel)
{
	const confab_host_metrics *m = CONFAB_HAS(b->host, metrics) ? b->host->metrics : NULL;
	int up, rec, sec, subs;
	size_t links = sentinel ? RBASE_LINKS : RBASE_LINK_SENTINEL;

	if (m == NULL || !CONFAB_HAS(m, observe))
		return 0;
	if (n > RBASE_SCRIPTS_MAX)
		return CONFAB_EINVAL;
	up = family(b, CONFAB_METRIC_GAUGE, "confab_redis_link_up",
		    "Whether each Redis link is up (redis_cluster: how many masters' links are)",
		    "link");
	rec = family(b, CONFAB_METRIC_COUNTER, "confab_redis_reconnects_total",
		     "Times each Redis link came back after it was lost", "link");
	sec = family(b, CONFAB_METRIC_HISTOGRAM, "confab_redis_script_seconds",
		     "Time from sending each Lua script call to its reply, in seconds", "script");
	subs = family(b, CONFAB_METRIC_GAUGE, "confab_redis_subscriptions",
		      "Channels (redis_cluster: shard channels) this node is subscribed to", NULL);
	for (size_t i = 0; i < links; i++) {
		b->metrics.link_up[i] = series(b, up, link_names[i]);
		b->metrics.reconnects[i] = series(b, rec, link_names[i]);
		if (b->metrics.link_up[i] < 0 || b->metrics.reconnects[i] < 0)
			return b->metrics.link_up[i] < 0 ? b->metrics.link_up[i]
							 : b->metrics.reconnects[i];
	}
	for (size_t i = 0; i < n; i++)
		if (scripts[i] != NULL && (b->metrics.script[i] = series(b, sec, scripts[i])) < 0)
			return b->metrics.script[i];
	b->metrics.subscriptions = series(b, subs, NULL);
	return b->metrics.subscriptions < 0 ? b->metrics.subscriptions : 0;
}

void rbase_link_up(rbase *b, enum rbase_link link, int64_t v)
{
	if (b->metrics.link_up[link] >= 0)
		b->host->metrics->set(b->ctx, b->metrics.link_up[link], v);
}

void rbase_reconnected(rbase *b, enum rbase_link link)
{
	if (b->metrics.reconnects[link] >= 0)
		b->host->metrics->add(b->ctx, b->metrics.reconnects[link], 1);
}

void rbase_subscriptions(rbase *b, int64_t n)
{
	if (b->metrics.subscriptions >= 0)
		b->host->metrics->set(b->ctx, b->metrics.subscriptions, n);
}

void rbase_script_replied(rbase *b, int script, uint64_t sent_ns)
{
	if (script >= 0 && script < RBASE_SCRIPTS_MAX && b->metrics.script[script] >= 0)
		b->host->metrics->observe(b->ctx, b->metrics.script[script],
					  (double)(uv_hrtime() - sent_ns) / 1e9);
}

void rbase_log_changes(const rbase *running, const rbase *next)
{
	rset r = { .host = running->host, .ctx = running->ctx };

	rset_log_changes(&r, &running->seen, &next->seen);
}

void rbase_reload_finish(void *state, void *pending, bool apply)
{
	(void)state;
	(void)pending;
	(void)apply;
}
