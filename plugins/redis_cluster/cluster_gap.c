/* A room's messages reach this node's members in seq order, without gaps,
 * across the moments when this node is not subscribed where they are
 * published.
 *
 * Sharded pub/sub delivers a SPUBLISH to the subscribers of the shard
 * that runs it. When a partition's slot migrates, its scripts run on the
 * target (ASK) before the slot officially moves and this node subscribes
 * there; after a failover, the promoted replica runs them before this
 * node has resubscribed. Those messages are stored (history) but not
 * received here. Measured before this file, a slot migration under
 * three senders: 7 of ~700 acked messages never reached the other
 * nodes' members, in the ~50 ms the migration took.
 *
 * So each room with members here remembers the last seq it delivered.
 * A message with a higher seq than the next one starts a fill: the
 * history script, since that seq, answers the missing ones, which are
 * delivered first; what arrives meanwhile for the room waits, in order.
 * And when a partition is subscribed again after it was lost, every room
 * of it that had messages asks for what it missed (the tail of the gap,
 * which no later message would reveal).
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define GAP_QUEUE_MAX 10000     /* envelopes of one room waiting for a fill */

struct gap_item {
	struct gap_item *next;
	size_t len;
	char text[];
};

void gap_free(lroom *r)
{
	while (r->gq != NULL) {
		gap_item *i = r->gq;

		r->gq = i->next;
		free(i);
	}
	r->gq_tail = NULL;
	r->gq_n = 0;
}

static void remember_epoch(lroom *r, const char *epoch)
{
	if (epoch != NULL)
		snprintf(r->epoch, sizeof(r->epoch), "%s", epoch);
}

/* Queue a text for the room, at the back (arrived during a fill) or the
 * front (it is what started one). */
static void enqueue(cl_state *s, lroom *r, const char *text, size_t len, bool front)
{
	gap_item *i;

	if (r->gq_n >= GAP_QUEUE_MAX || (i = malloc(sizeof(*i) + len + 1)) == NULL) {
		cl_log(s, CONFAB_LOG_WARN, "a room's envelopes waiting for its history were too "
		       "many; dropped one (its members can ask history)");
		return;
	}
	memcpy(i->text, text, len);
	i->text[len] = '\0';
	i->len = len;
	if (front) {
		i->next = r->gq;
		r->gq = i;
		if (r->gq_tail == NULL)
			r->gq_tail = i;
	} else {
		i->next = NULL;
		if (r->gq_tail != NULL)
			r->gq_tail->next = i;
		else
			r->gq = i;
		r->gq_tail = i;
	}
	r->gq_n++;
}

static void start_fill(cl_state *s, const char *room, lroom *r);

/* Hand one parsed room envelope to the core, or say that a fill must
 * come first (false). */
static bool deliver(cl_state *s, const char *room, lroom *r, wire_msg *m)
{
	if (m->kind == 'm') {
		uint64_t seq = m->env.seq;

		if (m->env.epoch != NULL) {
			/* the first message of a life of the room: seqs restart */
			if (strcmp(m->env.epoch, r->epoch) != 0)
				r->last_seq = 0;
			remember_epoch(r, m->env.epoch);
		} else if (r->epoch[0] != '\0') {
			m->env.epoch = r->epoch;
		}
		if (r->last_seq != 0 && seq <= r->last_seq)
			return true;   /* had it already, from a fill */
		if (r->last_seq != 0 && seq > r->last_seq + 1)
			return false;
		r->last_seq = seq;
	}
	s->base.host->backplane->deliver(s->base.ctx, &m->env);
	return true;
}

/* Deliver what waited, in order, until it is empty or a new gap needs a
 * fill. The room may go away under the core's deliver: looked up again. */
static void drain(cl_state *s, const char *room)
{
	lroom *r;

	while ((r = confab_dict_get(s->base.rooms, room)) != NULL && r->gq != NULL && !r->filling) {
		gap_item *i = r->gq;
		wire_msg m;
		const char *why;

		r->gq = i->next;
		if (r->gq == NULL)
			r->gq_tail = NULL;
		r->gq_n--;
		if (wire_parse(i->text, i->len, &m, &why) == 0) {
			if (!deliver(s, room, r, &m)) {
				enqueue(s, r, i->text, i->len, true);
				start_fill(s, room, r);
			}
			wire_msg_clear(&m);
		}
		free(i);
	}
}

static bool fill_reply(cl_state *s, cq *q, redisReply *reply)
{
	const char *room = q->args.argv[q->args.argc - 1];
	lroom *r = confab_dict_get(s->base.rooms, room);
	size_t got = 0;

	if (r == NULL || !r->filling || r->fill_id != q->aux)
		return true;  /* the room was left (and maybe joined anew) meanwhile */
	r->filling = false;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
	    reply->element[1]->type == REDIS_REPLY_STRING) {
		if (r->epoch[0] == '\0' || strcmp(r->epoch, reply->element[1]->str) != 0) {
			/* a new life: the seq it knew means nothing there */
			remember_epoch(r, reply->element[1]->str);
		}
		for (size_t i = 2; i < reply->elements; i++) {
			const redisReply *e = reply->element[i];
			wire_msg m;
			const char *why;

			if ((r = confab_dict_get(s->base.rooms, room)) == NULL)
				return true;
			if (e->type != REDIS_REPLY_STRING || wire_parse(e->str, e->len, &m, &why) != 0)
				continue;
			if (m.kind == 'm' && m.env.seq > r->last_seq) {
				if (m.env.epoch == NULL)
					m.env.epoch = r->epoch;
				r->last_seq = m.env.seq;
				s->base.host->backplane->deliver(s->base.ctx, &m.env);
				got++;
			}
			wire_msg_clear(&m);
		}
		if (got > 0)
			cl_log(s, CONFAB_LOG_DEBUG, "room %s: %zu messages published where this node "
			       "was not subscribed yet came from history", room, got);
	} else if ((r = confab_dict_get(s->base.rooms, room)) != NULL) {
		/* No history now: go on from what comes (the gap stays; its
		 * members can ask history). */
		r->last_seq = 0;
		if (reply != NULL)
			cl_log(s, CONFAB_LOG_WARN, "room %s: the missed messages could not be read "
			       "from history: %s", room, reply->type == REDIS_REPLY_ERROR ? reply->str
										: "unexpected reply");
	}
	drain(s, room);
	return true;
}

static void start_fill(cl_state *s, const char *room, lroom *r)
{
	char fresh[17];
	cq *q = cq_new(s, fill_reply, CS_HISTORY, (int)r->part);
	const char *P = s->part[r->part].prefix;

	rops_fresh_epoch(fresh);
	if (q == NULL || rargs_addf(&q->args, "%sroom:%s:seq", P, room) ||
	    rargs_addf(&q->args, "%sroom:%s:hist", P, room) ||
	    rargs_addf(&q->args, "%sroom:%s:epoch", P, room) ||
	    rargs_addf(&q->args, "%sroom:%s:pub", P, room) ||
	    rargs_adds(&q->args, P) || rargs_adds(&q->args, s->part[r->part].channel) ||
	    rargs_adds(&q->args, "1") ||
	    rargs_addf(&q->args, "%" PRIu64, r->last_seq) ||
	    rargs_addf(&q->args, "%zu", s->common.history_size) ||
	    rargs_addf(&q->args, "%zu", s->common.history_size) || rargs_adds(&q->args, "") ||
	    rargs_addf(&q->args, "%lu", s->common.room_ttl) || rargs_adds(&q->args, fresh) ||
	    rargs_adds(&q->args, s->ack_replicas ? "1" : "0") || rargs_adds(&q->args, room)) {
		cq_free(q);
		r->last_seq = 0;   /* cannot ask: go on without */
		return;
	}
	static int fills;

	q->nkeys = 4;
	q->aux = r->fill_id = ++fills;
	r->filling = true;
	cq_submit(s, q);
}

void gap_envelope(cl_state *s, const char *room, lroom *r, const char *text, size_t len,
		  wire_msg *m)
{
	if (r->filling) {
		enqueue(s, r, text, len, false);
		return;
	}
	if (!deliver(s, room, r, m)) {
		enqueue(s, r, text, len, false);
		start_fill(s, room, r);
	}
}

void gap_resubscribed(cl_state *s, unsigned k)
{
	confab_dict_iter it;
	const char *room;
	void *value;

	/* start_fill changes no table: iterating is safe */
	RBASE_EACH(it, s->base.rooms, room, value) {
		lroom *r = value;

		if (r->part == k && r->last_seq != 0 && !r->filling &&
		    confab_dict_count(r->users) > 0)
			start_fill(s, room, r);
	}
}
