/* The publishes of one loop turn, per partition, sent as one script.
 *
 * Under load most of Redis's work per message is the call itself (the
 * `redis` backplane measured a tenth of its work in one LTRIM, and batches
 * for the same reason): the publishes that the core hands over in one
 * turn of the loop, for rooms of one partition, go to its master as one
 * publish_batch script, at the end of the turn. A partition is one slot,
 * so the script's keys are all in it, and it is redirected, retried or
 * failed as a whole, like any request. Its reply answers each publish:
 * the seqs in order, then (ack_replicas) the WAIT that covers the batch.
 *
 * Publishes with an idem key, and held ones, go alone (they need a reply
 * of their own, or wait for a subscription).
 *
 * The partitions' batches are not sent one call each: at the end of the
 * turn they are deferred (cq_defer) and go per master, with the flushes
 * and heartbeats of the turn, as one call (cluster_cmd.c).
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* The arguments of a single publish request (cluster_ops.c), after its
 * three keys: P, C, room, head_a, head_b, body, history_size, room_ttl,
 * fresh, refresh, defer, ... */
enum { A_ROOM = 5, A_HEAD_A, A_HEAD_B, A_BODY, A_KEEP, A_TTL, A_FRESH, A_REFRESH, A_DEFER };

static void on_check(uv_check_t *h);

void batch_add(cl_state *s, cq *q)
{
	partition *p = &s->part[q->part];

	q->bnext = NULL;
	if (p->batch_tail != NULL)
		p->batch_tail->bnext = q;
	else
		p->batch = q;
	p->batch_tail = q;
	batch_wake(s);
}

/* Answer every publish of the batch with `reply` (the script's, lost,
 * or WAIT's when waiting), in order, and free them. */
static void answer_all(cl_state *s, cq *b, redisReply *reply)
{
	while (b->subs != NULL) {
		cq *q = b->subs;

		b->subs = q->bnext;
		q->bnext = NULL;
		q->sent = b->sent;
		q->waiting = b->waiting;
		if (!q->orphan)
			ops_publish_reply(s, q, reply);   /* waiting or lost: it answers */
		cq_free(q);
	}
}

static bool batch_reply(cl_state *s, cq *b, redisReply *reply)
{
	size_t n = 0;
	int status;

	if (b->waiting || reply == NULL) {
		answer_all(s, b, reply);
		return true;
	}
	for (cq *q = b->subs; q != NULL; q = q->bnext)
		n++;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
		status = ops_reply_status(s, "publish_batch", reply);
		while (b->subs != NULL) {
			cq *q = b->subs;

			b->subs = q->bnext;
			if (!q->orphan)
				ops_publish_answer(s, q, status);
			cq_free(q);
		}
		return true;
	}
	n = 0;
	for (cq *q = b->subs; q != NULL; q = q->bnext, n++)
		if (reply->element[n]->type == REDIS_REPLY_INTEGER)
			q->seq = (uint64_t)reply->element[n]->integer;
	if (s->ack_replicas == 0) {
		while (b->subs != NULL) {
			cq *q = b->subs;

			b->subs = q->bnext;
			if (!q->orphan)
				ops_publish_answer(s, q, q->seq > 0 ? 0 : CONFAB_ERR);
			cq_free(q);
		}
		return true;
	}
	if (wait_join(s, b))
		return false;   /* called again with WAIT's reply */
	while (b->subs != NULL) {
		cq *q = b->subs;

		b->subs = q->bnext;
		if (!q->orphan)
			ops_publish_answer(s, q, CONFAB_EUNKNOWN);
		cq_free(q);
	}
	return true;
}

/* One script for the publishes `list` (two or more) of partition k. */
static void send_batch(cl_state *s, unsigned k, cq *list)
{
	cq *b = cq_new(s, batch_reply, CS_PUBLISH_BATCH, (int)k);
	int rc = b == NULL;
	unsigned n = 0;

	for (cq *q = list; rc == 0 && q != NULL; q = q->bnext, n++)
		rc = rargs_add(&b->args, q->args.argv[0], q->args.argvlen[0]) ||
		     rargs_add(&b->args, q->args.argv[1], q->args.argvlen[1]) ||
		     rargs_add(&b->args, q->args.argv[2], q->args.argvlen[2]);
	rc = rc || ops_prefixes(s, b) || rargs_adds(&b->args, list->args.argv[A_KEEP]) ||
	     rargs_adds(&b->args, list->args.argv[A_TTL]) ||
	     rargs_adds(&b->args, list->args.argv[A_FRESH]) ||
	     rargs_adds(&b->args, list->args.argv[A_DEFER]);
	for (cq *q = list; rc == 0 && q != NULL; q = q->bnext)
		rc = rargs_add(&b->args, q->args.argv[A_ROOM], q->args.argvlen[A_ROOM]) ||
		     rargs_add(&b->args, q->args.argv[A_HEAD_A], q->args.argvlen[A_HEAD_A]) ||
		     rargs_add(&b->args, q->args.argv[A_HEAD_B], q->args.argvlen[A_HEAD_B]) ||
		     rargs_add(&b->args, q->args.argv[A_BODY], q->args.argvlen[A_BODY]) ||
		     rargs_add(&b->args, q->args.argv[A_REFRESH], q->args.argvlen[A_REFRESH]);
	if (rc != 0) {
		/* Out of memory: each goes alone. */
		cq_free(b);
		while (list != NULL) {
			cq *q = list;

			list = q->bnext;
			q->bnext = NULL;
			cq_submit(s, q);
		}
		return;
	}
	b->nkeys = 3 * n;
	b->subs = list;
	/* It stands for core requests: destroy answers it (its handler
	 * answers each of them). */
	b->core = true;
	s->base.n_core++;
	/* The oldest publish's deadline is the batch's. */
	cq_defer(s, b);
}

static void on_check(uv_check_t *h)
{
	cl_state *s = h->data;

	uv_check_stop(h);
	for (unsigned k = 0; k < s->partitions; k++) {
		partition *p = &s->part[k];
		cq *list = p->batch;

		if (list == NULL)
			continue;
		p->batch = p->batch_tail = NULL;
		if (list->bnext == NULL)
			cq_defer(s, list);
		else
			send_batch(s, k, list);
	}
	/* The partitions' batches, and whatever else this turn deferred,
	 * per master (cluster_cmd.c). */
	cq_send_deferred(s);
}

void batch_wake(cl_state *s)
{
	if (!uv_is_active((uv_handle_t *)&s->batch_check) &&
	    !uv_is_closing((uv_handle_t *)&s->batch_check))
		uv_check_start(&s->batch_check, on_check);
}

void batch_start(cl_state *s)
{
	uv_check_init(s->base.loop, &s->batch_check);
	s->batch_check.data = s;
	s->handles++;
}

void batch_fail_all(cl_state *s)
{
	for (unsigned k = 0; k < s->partitions; k++) {
		partition *p = &s->part[k];

		while (p->batch != NULL) {
			cq *q = p->batch;

			p->batch = q->bnext;
			q->bnext = NULL;
			ops_publish_answer(s, q, CONFAB_EUNAVAILABLE);
			cq_free(q);
		}
		p->batch_tail = NULL;
	}
	cq_fail_deferred(s);
}
