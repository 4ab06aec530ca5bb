/* A history script's reply ({truncated, epoch, messages oldest first...},
 * rscript.h's RSCRIPT_HISTORY_SERVE) read into the core's envelopes and
 * answered: the same for both Redis backplanes.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RHISTORY_H
#define CONFAB_RHISTORY_H

#include <hiredis/hiredis.h>
#include <confab/plugin.h>

#include "rops.h"

/* Answer a history request of `room` exactly once from the script's
 * `reply` (NULL: lost, unavailable): `edone` (history_epoch) when it is
 * not NULL, else `hdone`. Each message gets the room's epoch unless it
 * carries its own (the list holds the current life's messages only), and
 * the epoch is remembered for the room. A stored message that cannot be
 * read fails the request (logged), as does an error reply. */
void rhistory_reply(const rops_ctx *rc, const redisReply *reply, const char *room,
		    confab_history_done hdone, confab_history_epoch_done edone, void *arg);

#endif /* CONFAB_RHISTORY_H */
