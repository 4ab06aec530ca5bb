/* A history script's reply ({truncated, epoch, messages oldest first...},
 * rscript.h's RSCRIPT_HISTORY_SERVE) read into the core's envelopes, and
 * the core's answer: the same for both Redis backplanes.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RHISTORY_H
#define CONFAB_RHISTORY_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>
#include <confab/plugin.h>

#include "rwire.h"

/* What a reply holds. The envelopes point into the reply and into msgs:
 * both must outlive their use. */
typedef struct rhistory {
	wire_msg *msgs;
	confab_envelope *envs;
	size_t n;                    /* envelopes */
	size_t parsed;               /* msgs to clear */
	bool truncated;
	const char *epoch;           /* the room's, in the reply */
} rhistory;

/* Read `reply` (NULL: the request was lost) into `h`, which is always set
 * (rhistory_clear it). 0; CONFAB_EUNAVAILABLE for a lost reply;
 * CONFAB_ENOMEM; CONFAB_ERR when a stored message cannot be read (logged
 * here, through host->log); CONFAB_EINVAL when the reply is not a
 * history answer at all (an error: the caller says what it means). Each
 * message gets the room's epoch unless it carries its own: the list
 * holds the current life's messages only. */
int rhistory_read(const confab_host *host, confab_ctx *ctx, const redisReply *reply,
		  rhistory *h);
/* Answer the core exactly once: `edone` (history_epoch) when it is not
 * NULL, else `hdone`; with the messages when status is 0, none otherwise. */
void rhistory_answer(const rhistory *h, int status, confab_history_done hdone,
		     confab_history_epoch_done edone, void *arg);
void rhistory_clear(rhistory *h);

#endif /* CONFAB_RHISTORY_H */
