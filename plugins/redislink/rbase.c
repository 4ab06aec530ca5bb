/* The state both Redis backplanes begin with: its init and free (rbase.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

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
	*rc = 0;
	return b;
}

int rbase_tables(rbase *b, int rc, bool redirects, const rops_room_kind *kind)
{
	if (rc == 0) {
		b->rooms = confab_dict_new();
		b->users = confab_dict_new();
		if (b->rooms == NULL || b->users == NULL)
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
	b->rooms = b->users = NULL;
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
