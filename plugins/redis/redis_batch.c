/* Publishes and presence changes go to Redis in batches: the messages
 * this node accepted in one turn of the loop (or, while it is busy, within
 * BATCH_WINDOW_MS) are carried by one call of the publish_batch script,
 * and its users' joins, leaves, onlines and offlines by one call of
 * presence_batch.
 *
 * At 5000 messages a second a call per message kept about a fifth of a
 * core busy in Redis, half of it reading commands and writing replies:
 * fewer, larger calls halve that half. The batch changes nothing a
 * client can see: the script handles the messages one after the other,
 * exactly as the publish script would (INCR, history, PUBLISH), each gets
 * its own seq, and a message waits only until the end of its turn of the
 * loop, before the loop sleeps again. A node that published less than
 * BATCH_WINDOW_MS ago waits until then, so that under load a call carries
 * several messages: each waits at most that long. Presence changes never
 * wait for it: they go at the end of the turn, with whatever is queued.
 *
 * A request waits in s->batch (linked through held_next; a publish is
 * already counted as the core's) until the end of the turn (a uv_check
 * handle). The queue keeps the order in which the core asked: it is sent
 * as runs of publishes and runs of presence changes, in that order. One
 * alone goes as its plain script; two or more of a kind as one batch
 * request whose `subs` are the waiting requests. Publishes are answered
 * together when the reply comes; presence changes hear the batch's reply
 * (a join's decides whether the joins waiting for its room are answered
 * `joined`; a failed or lost change is corrected by a reconcile).
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>

#include "redis.h"

/* At most this many messages in one call: a bound on the reply and on
 * how long Redis is busy with one script. */
#define BATCH_MAX 256
/* ms between two calls at least (see above). */
#define BATCH_WINDOW_MS 2

/* Answer every request of a list with `status` and free them. */
static void answer_all(redis_state *s, rq *list, int status)
{
	while (list != NULL) {
		rq *next = list->held_next;

		list->held_next = NULL;
		ops_publish_answer(s, list, status, 0, NULL);
		rq_free(list);
		list = next;
	}
}

static void batch_reply(redis_state *s, rq *b, const rlink *ac, redisReply *reply)
{
	rq *list = b->subs;
	size_t i = 0;
	int status = 0;

	b->subs = NULL;
	if (reply == NULL)
		status = ops_lost_status(b);
	else if (reply->type != REDIS_REPLY_ARRAY)
		status = ops_reply_status(s, "publish_batch", reply);
	if (status != 0) {
		answer_all(s, list, status);
		return;
	}
	while (list != NULL) {
		rq *next = list->held_next;
		const redisReply *seq = i < reply->elements ? reply->element[i] : NULL;

		list->held_next = NULL;
		if (seq != NULL && seq->type == REDIS_REPLY_INTEGER && seq->integer > 0) {
			if (!wait_hold(s, list, ac, (uint64_t)seq->integer, NULL))
				ops_publish_answer(s, list, 0, (uint64_t)seq->integer, NULL);
		} else {
			redis_log(s, CONFAB_LOG_ERROR, "publish_batch: no seq for message %zu "
				  "of the batch", i + 1);
			ops_publish_answer(s, list, CONFAB_ERR, 0, NULL);
		}
		rq_free(list);
		list = next;
		i++;
	}
}

/* Send the batch request `b` (its arguments built: `rc` says whether that
 * worked) carrying the requests of `list`. 0, or nonzero with nothing
 * sent and `b` freed (the caller still has the list). */
static int send_carrying(redis_state *s, rq *b, int rc, rq *list)
{
	if (rc != 0) {
		rq_free(b);
		return CONFAB_ENOMEM;
	}
	b->subs = list;
	rc = rq_send(s, s->cmd, b);
	if (rc != 0) {
		b->subs = NULL;
		rq_free(b);
	}
	return rc;
}

static bool is_publish(const rq *q)
{
	return q->script == SCRIPT_PUBLISH;
}

/* Tell a run of presence changes they are done with (their handlers
 * only log, or let joins that wait for them go on), and free them. */
static void drop_all(redis_state *s, rq *list)
{
	while (list != NULL) {
		rq *next = list->held_next;

		list->held_next = NULL;
		list->handle(s, list, NULL, NULL);
		rq_free(list);
		list = next;
	}
}

/* Each change of the batch hears the batch's reply: a join lets the
 * joins waiting for its room go on only when the script was carried out
 * (redis_ops.c). A failure is logged once, here. */
static void presence_batch_reply(redis_state *s, rq *b, const rlink *ac,
				 redisReply *reply)
{
	rq *list = b->subs;

	b->subs = NULL;
	if (reply != NULL && reply->type != REDIS_REPLY_INTEGER)
		redis_log(s, CONFAB_LOG_WARN, "the presence_batch script failed: %s (registered "
			  "again at the next heartbeat)",
			  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
	while (list != NULL) {
		rq *next = list->held_next;

		list->held_next = NULL;
		list->aux = 1;  /* logged */
		list->handle(s, list, reply != NULL ? ac : NULL, reply);
		rq_free(list);
		list = next;
	}
}

/* One presence_batch call for the presence requests of `list`. */
static int send_presence_batch(redis_state *s, rq *list)
{
	rq *b = rq_new(s, presence_batch_reply, SCRIPT_PRESENCE_BATCH);
	int rc = b == NULL;

	rc = rc || rargs_add(&b->args, list->args.argv[PRES_P], list->args.argvlen[PRES_P]) ||
	     rargs_add(&b->args, list->args.argv[PRES_C], list->args.argvlen[PRES_C]) ||
	     rargs_add(&b->args, list->args.argv[PRES_NODE], list->args.argvlen[PRES_NODE]) ||
	     rargs_add(&b->args, list->args.argv[PRES_GEN], list->args.argvlen[PRES_GEN]);
	for (rq *q = list; rc == 0 && q != NULL; q = q->held_next) {
		bool has_room = q->script == SCRIPT_JOIN || q->script == SCRIPT_LEAVE;
		const char *op = q->script == SCRIPT_JOIN ? "j" : q->script == SCRIPT_LEAVE ? "l" :
				 q->script == SCRIPT_ONLINE ? "o" : "f";

		rc = rargs_adds(&b->args, op) ||
		     (has_room ? rargs_add(&b->args, q->args.argv[PRES_ROOM],
					   q->args.argvlen[PRES_ROOM])
			       : rargs_adds(&b->args, "")) ||
		     rargs_add(&b->args, q->args.argv[has_room ? PRES_ROOM + 1 : PRES_ROOM],
			    q->args.argvlen[has_room ? PRES_ROOM + 1 : PRES_ROOM]);
	}
	return send_carrying(s, b, rc, list);
}

/* One publish_batch call for the `n` publish requests of `list`. 0, or
 * nonzero with nothing sent (the caller still has the list). */
static int send_batch(redis_state *s, rq *list, size_t n)
{
	rq *b = rq_new(s, batch_reply, SCRIPT_PUBLISH_BATCH);
	int rc = b == NULL;

	for (rq *q = list; rc == 0 && q != NULL; q = q->held_next)
		for (int k = PUB_SEQ_KEY; rc == 0 && k <= PUB_EPOCH_KEY; k++)
			rc = rargs_add(&b->args, q->args.argv[k], q->args.argvlen[k]);
	rc = rc || rargs_add(&b->args, list->args.argv[PUB_P], list->args.argvlen[PUB_P]) ||
	     rargs_add(&b->args, list->args.argv[PUB_C], list->args.argvlen[PUB_C]) ||
	     rargs_add(&b->args, list->args.argv[PUB_HISTORY_SIZE],
		       list->args.argvlen[PUB_HISTORY_SIZE]) ||
	     rargs_add(&b->args, list->args.argv[PUB_ROOM_TTL], list->args.argvlen[PUB_ROOM_TTL]) ||
	     rargs_add(&b->args, list->args.argv[PUB_FRESH], list->args.argvlen[PUB_FRESH]);
	for (rq *q = list; rc == 0 && q != NULL; q = q->held_next)
		for (int a = PUB_ROOM; rc == 0 && a <= PUB_REFRESH; a++)
			if (a <= PUB_BODY || a == PUB_REFRESH)
				rc = rargs_add(&b->args, q->args.argv[a], q->args.argvlen[a]);
	if (rc == 0) {
		b->nkeys = (unsigned)(3 * n);
		/* Counted like the core's requests, so that destroy answers
		 * its members (rq_orphan_all) if Redis has not. */
		b->core = true;
		s->base.n_core++;
	}
	return send_carrying(s, b, rc, list);
}

static void flush(redis_state *s)
{
	uv_check_stop(&s->batch_check);
	uv_timer_stop(&s->batch_timer);
	s->batch_sent_at = uv_now(s->base.loop);
	while (s->batch != NULL) {
		rq *list = s->batch, *last = list;
		bool pub = is_publish(list);
		size_t n = 1;

		/* Take the run of one kind at the head, up to BATCH_MAX. A
		 * publish with an idem key goes alone, as the publish script
		 * (publish_batch knows no keys). */
		while (n < BATCH_MAX && last->held_next != NULL && !ops_has_idem(list) &&
		       !ops_has_idem(last->held_next) && is_publish(last->held_next) == pub) {
			last = last->held_next;
			n++;
		}
		s->batch = last->held_next;
		last->held_next = NULL;
		if (s->batch == NULL)
			s->batch_tail = NULL;

		if (n == 1 ? rq_send(s, s->cmd, list) != 0 :
		    pub ? send_batch(s, list, n) != 0 : send_presence_batch(s, list) != 0) {
			if (pub)
				answer_all(s, list, CONFAB_EUNAVAILABLE);
			else
				drop_all(s, list);
		}
	}
}

static void on_check(uv_check_t *check)
{
	flush(check->data);
}

static void on_timer(uv_timer_t *timer)
{
	flush(timer->data);
}

void batch_send(redis_state *s, rq *q)
{
	uint64_t since = uv_now(s->base.loop) - s->batch_sent_at;

	q->held_next = NULL;
	if (s->batch_tail != NULL)
		s->batch_tail->held_next = q;
	else
		s->batch = q;
	s->batch_tail = q;
	if (uv_is_active((uv_handle_t *)&s->batch_check))
		return;  /* due at the end of this turn already */
	/* Presence changes do not wait for the window: a client told it is
	 * in (welcome) may be sent a direct message at once. */
	if (since >= BATCH_WINDOW_MS || !is_publish(q)) {
		uv_timer_stop(&s->batch_timer);
		uv_check_start(&s->batch_check, on_check);
	} else if (!uv_is_active((uv_handle_t *)&s->batch_timer)) {
		uv_timer_start(&s->batch_timer, on_timer, BATCH_WINDOW_MS - since, 0);
	}
}

void batch_fail_all(redis_state *s)
{
	rq *list = s->batch;

	s->batch = s->batch_tail = NULL;
	while (list != NULL) {
		rq *next = list->held_next;

		list->held_next = NULL;
		if (is_publish(list))
			answer_all(s, list, CONFAB_EUNAVAILABLE);
		else
			drop_all(s, list);
		list = next;
	}
}
