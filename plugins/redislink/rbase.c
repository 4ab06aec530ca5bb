/* The state both Redis backplanes begin with: its init and free (rbase.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

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
