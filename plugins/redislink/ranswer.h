/* The core's answers that both Redis backplanes make alike from a
 * script's or a command's reply: a send's, a direct message's, a room's
 * epoch, a room's presence.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RANSWER_H
#define CONFAB_RANSWER_H

#include <stdint.h>

#include <hiredis/hiredis.h>
#include <confab/plugin.h>

#include "rargs.h"
#include "rops.h"

/* Answer a send request (done.send): a new message's id and ts are the
 * request's last two arguments; an idempotent repeat's ("SEQ ID TS", as
 * the scripts store it) come in `repeat` (NULL for a new message). */
void ranswer_send(confab_send_done done, void *arg, const rargs *args, int status,
		  uint64_t seq, const char *repeat);

/* Answer a direct request from the direct script's reply: the number of
 * nodes that took it (0: CONFAB_EOFFLINE), an idempotent repeat's text,
 * NULL when lost (then `lost` is the status), or an error (logged).
 * `sdone` (direct_idem, with the request's arguments `args`) when it is
 * not NULL, else `done`, which never gets CONFAB_EUNKNOWN (direct has no
 * such answer: unavailable). */
void ranswer_direct(const rops_ctx *rc, const redisReply *reply, int lost,
		    confab_send_done sdone, confab_status_done done, void *arg,
		    const rargs *args);

/* Answer a room_epoch request from the epoch script's reply (NULL: lost,
 * unavailable; an error is logged), remembering the epoch of `room`. */
void ranswer_epoch(const rops_ctx *rc, const redisReply *reply, const char *room,
		   confab_epoch_done done, void *arg);

/* Answer a presence request from its reply (SMEMBERS of the room's
 * presence set; NULL: lost, unavailable; an error is logged): the users,
 * sorted by name. */
void ranswer_presence(const rops_ctx *rc, const redisReply *reply, confab_presence_done done,
		      void *arg);

#endif /* CONFAB_RANSWER_H */
