/* What the core reads: presence, history (with or without the epoch) and
 * a room's epoch, each one script or command in the room's partition, with
 * the same answers as the `redis` backplane's (plugins/redis/redis_ops.c).
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* ---- presence ---- */

static bool presence_reply(cl_state *s, cq *q, redisReply *reply)
{
	ranswer_presence(&s->base.rops, reply, q->done.presence, q->arg);
	return true;
}

int query_presence(void *state, const char *room, confab_presence_done done, void *arg)
{
	cl_state *s = state;
	unsigned k = part_of(s, room);
	cq *q;
	int rc = ops_admit(s, k);

	if (rc != 0)
		return rc;
	q = cq_new(s, presence_reply, -1, (int)k);
	if (q == NULL || rargs_adds(&q->args, "SMEMBERS") != 0 ||
	    rargs_addf(&q->args, "%spres:%s", s->part[k].prefix, room) != 0) {
		cq_free(q);
		return CONFAB_ENOMEM;
	}
	q->done.presence = done;
	ops_own(s, q, arg);
	cq_submit(s, q);
	return 0;
}

/* ---- history and epochs ---- */

static bool history_reply(cl_state *s, cq *q, redisReply *reply)
{
	/* the history script's last argument is the room */
	rhistory_reply(&s->base.rops, reply, q->args.argv[q->args.argc - 1],
		       q->aux ? NULL : q->done.history, q->aux ? q->done.history_epoch : NULL,
		       q->arg);
	return true;
}

/* A request of `script` about `room`, admitted, with the room's record
 * keys and `fresh`, a new epoch for the room should it have none. NULL
 * with *rc set when refused or out of memory. */
static cq *room_request(cl_state *s, const char *room, cq_handler handle, int script,
			char fresh[17], int *rc)
{
	unsigned k = part_of(s, room);
	cq *q;

	if ((*rc = ops_admit(s, k)) != 0)
		return NULL;
	rops_fresh_epoch(fresh);
	if ((q = cq_new(s, handle, script, (int)k)) == NULL || ops_record_keys(s, q, room) != 0) {
		cq_free(q);
		*rc = CONFAB_ENOMEM;
		return NULL;
	}
	return q;
}

static int history_request(cl_state *s, const char *room, const char *known, bool has_since,
			   uint64_t since, size_t limit, confab_history_done hdone,
			   confab_history_epoch_done edone, void *arg)
{
	char fresh[17];
	int rc;
	cq *q = room_request(s, room, history_reply, CS_HISTORY, fresh, &rc);

	if (q == NULL)
		return rc;
	if (rargs_addf(&q->args, "%sroom:%s:pub", s->part[q->part].prefix, room) ||
	    ops_prefixes(s, q) ||
	    rops_history_args(&q->args, has_since, since, limit, s->common.history_size, known,
			      s->common.room_ttl, fresh) != 0 ||
	    rargs_adds(&q->args, s->ack_replicas ? "1" : "0") || rargs_adds(&q->args, room)) {
		cq_free(q);
		return CONFAB_ENOMEM;
	}
	q->nkeys = 4;
	q->aux = edone != NULL;
	if (edone != NULL)
		q->done.history_epoch = edone;
	else
		q->done.history = hdone;
	ops_own(s, q, arg);
	cq_submit(s, q);
	return 0;
}

int query_history(void *state, const char *room, bool has_since, uint64_t since,
		       size_t limit, confab_history_done done, void *arg)
{
	return history_request(state, room, NULL, has_since, since, limit, done, NULL, arg);
}

int query_history_epoch(void *state, const char *room, const char *epoch, bool has_since,
			     uint64_t since, size_t limit, confab_history_epoch_done done,
			     void *arg)
{
	return history_request(state, room, epoch, has_since, since, limit, NULL, done, arg);
}

static bool epoch_reply(cl_state *s, cq *q, redisReply *reply)
{
	/* the epoch script's last argument is the room */
	ranswer_epoch(&s->base.rops, reply, q->args.argv[q->args.argc - 1], q->done.epoch, q->arg);
	return true;
}

int query_room_epoch(void *state, const char *room, confab_epoch_done done, void *arg)
{
	cl_state *s = state;
	char fresh[17];
	int rc;
	cq *q = room_request(s, room, epoch_reply, CS_EPOCH, fresh, &rc);

	if (q == NULL)
		return rc;
	if (ops_prefixes(s, q) || rargs_addf(&q->args, "%lu", s->common.room_ttl) ||
	    rargs_adds(&q->args, fresh) || rargs_adds(&q->args, room)) {
		cq_free(q);
		return CONFAB_ENOMEM;
	}
	q->nkeys = 3;
	q->done.epoch = done;
	ops_own(s, q, arg);
	cq_submit(s, q);
	return 0;
}
