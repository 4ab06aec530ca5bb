/* A history script's reply read into envelopes, and the core's answer
 * (rhistory.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdbool.h>
#include <stdlib.h>

#include "rhistory.h"
#include "rreply.h"
#include "rwire.h"

/* What a reply holds. The envelopes point into the reply and into msgs. */
typedef struct rhistory {
	wire_msg *msgs;
	confab_envelope *envs;
	size_t n;                    /* envelopes */
	size_t parsed;               /* msgs to clear */
	bool truncated;
	const char *epoch;           /* the room's, in the reply */
} rhistory;

/* Read `reply` into `h`, which is always set. 0; CONFAB_EUNAVAILABLE
 * for a lost reply; CONFAB_ENOMEM; CONFAB_ERR when a stored message
 * cannot be read (logged); CONFAB_EINVAL when it is no history answer. */
static int rhistory_read(const confab_host *host, confab_ctx *ctx, const redisReply *reply,
			 rhistory *h)
{
	size_t n;

	*h = (rhistory){ 0 };
	if (reply == NULL)
		return CONFAB_EUNAVAILABLE;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER ||
	    reply->element[1]->type != REDIS_REPLY_STRING)
		return CONFAB_EINVAL;
	n = reply->elements - 2;
	h->msgs = calloc(n ? n : 1, sizeof(*h->msgs));
	h->envs = calloc(n ? n : 1, sizeof(*h->envs));
	if (h->msgs == NULL || h->envs == NULL)
		return CONFAB_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const redisReply *e = reply->element[i + 2];
		const char *why = "not a string";

		if (e->type != REDIS_REPLY_STRING ||
		    wire_parse(e->str, e->len, &h->msgs[i], &why) != 0 || h->msgs[i].kind != 'm') {
			host->log(ctx, CONFAB_LOG_ERROR, "history: a stored message cannot be "
				  "read: %s", h->msgs[i].hdr != NULL ? "not a room message" : why);
			if (h->msgs[i].hdr != NULL)
				h->parsed++;
			return CONFAB_ERR;
		}
		h->parsed++;
		h->envs[i] = h->msgs[i].env;
		if (h->envs[i].epoch == NULL)
			h->envs[i].epoch = reply->element[1]->str;
	}
	h->n = n;
	h->truncated = reply->element[0]->integer != 0;
	h->epoch = reply->element[1]->str;
	return 0;
}

static void rhistory_answer(const rhistory *h, int status, confab_history_done hdone,
		     confab_history_epoch_done edone, void *arg)
{
	const confab_envelope *envs = status == 0 ? h->envs : NULL;
	size_t n = status == 0 ? h->n : 0;
	bool truncated = status == 0 && h->truncated;

	if (edone != NULL)
		edone(arg, status, envs, n, truncated, status == 0 ? h->epoch : NULL);
	else
		hdone(arg, status, envs, n, truncated);
}

static void rhistory_clear(rhistory *h)
{
	for (size_t i = 0; i < h->parsed; i++)
		wire_msg_clear(&h->msgs[i]);
	free(h->msgs);
	free(h->envs);
	*h = (rhistory){ 0 };
}

void rhistory_reply(const rops_ctx *rc, const redisReply *reply, const char *room,
		    confab_history_done hdone, confab_history_epoch_done edone, void *arg)
{
	rhistory h;
	int status = rhistory_read(rc->host, rc->ctx, reply, &h);

	if (status == CONFAB_EINVAL)
		status = rreply_status(rc->host, rc->ctx, "history", reply, rc->redirects);
	if (status == 0)
		rops_remember_epoch(rc, room, h.epoch);
	rhistory_answer(&h, status, hdone, edone, arg);
	rhistory_clear(&h);
}
