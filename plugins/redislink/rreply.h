/* What a Redis error or an unexpected reply means for the core, decided
 * and logged once for both Redis backplanes.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RREPLY_H
#define CONFAB_RREPLY_H

#include <stdbool.h>

#include <hiredis/hiredis.h>
#include <confab/plugin.h>

/* CONFAB_EUNAVAILABLE for an error that says "not now" (LOADING, BUSY,
 * OOM, MASTERDOWN, READONLY, NOAUTH, TRYAGAIN, CLUSTERDOWN, NOREPLICAS;
 * with `redirects`, MOVED and ASK too: a slot on its way elsewhere),
 * CONFAB_ERR for the rest and for NULL. */
int rreply_error_status(const char *err, bool redirects);
/* A reply that is not the answer `what` expects: logs it (a warning for
 * "not now", an error otherwise) and returns the status for the core. */
int rreply_status(const confab_host *host, confab_ctx *ctx, const char *what,
		  const redisReply *reply, bool redirects);

#endif /* CONFAB_RREPLY_H */
