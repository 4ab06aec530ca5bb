/* One request to Redis. A request keeps its arguments until its reply
 * came: when Redis answers NOSCRIPT (its script cache was flushed, or it
 * restarted under us) it is sent once more with EVAL and the script's
 * text, which also puts the script back into the cache.
 *
 * A link (rlink.h) calls the reply callback of every command it accepted
 * exactly once: with the reply, or with NULL when the link fails or is
 * closed. That is what makes each core callback run exactly once;
 * destroy() answers the core early (rq_orphan_all) and the late reply is
 * then dropped.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"

rq *rq_new(redis_state *s, rq_handler handle, int script)
{
	rq *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->s = s;
	q->handle = handle;
	q->script = script;
	return q;
}

void rq_free(rq *q)
{
	if (q == NULL)
		return;
	if (q->core)
		q->s->base.n_core--;
	while (q->subs != NULL) {
		rq *sub = q->subs;

		q->subs = sub->held_next;
		rq_free(sub);
	}
	rargs_clear(&q->args);
	free(q->repeat);
	free(q);
}

static void unlist(redis_state *s, rq *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else if (s->inflight == q)
		s->inflight = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else if (s->inflight_tail == q)
		s->inflight_tail = q->prev;
	q->prev = q->next = NULL;
}

static bool is_noscript(const redisReply *reply)
{
	return reply != NULL && reply->type == REDIS_REPLY_ERROR && reply->str != NULL &&
	       strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

static void on_reply(rlink *l, redisReply *reply, void *arg)
{
	rq *q = arg;
	redis_state *s = q->s;

	unlist(s, q);
	if (reply != NULL && q->script >= 0)
		rbase_script_replied(&s->base, q->script, q->sent_ns);
	if (q->orphan) {
		rq_free(q);
		conn_reply_done(s);  /* last: it may close the link (destroy) */
		return;
	}
	if (is_noscript(reply) && !q->retried && q->script >= 0 && l == s->cmd) {
		/* The cache was flushed (SCRIPT FLUSH) as a whole: every script
		 * goes by text until Redis has it again. */
		bool known = false;

		for (int i = 0; i < SCRIPT_COUNT; i++) {
			known = known || s->sha_ok[i];
			s->sha_ok[i] = false;
		}
		if (known)
			redis_log(s, CONFAB_LOG_INFO, "Redis's script cache was flushed; sending "
				  "the scripts' text until it has them again");
		q->retried = true;
		if (rq_send(s, l, q) == 0)
			return;
		reply = NULL;  /* could not: as if the connection went */
	}
	/* A script sent by text is in Redis's cache now: back to EVALSHA. */
	if (reply != NULL && q->by_eval && q->script >= 0 && s->sha[q->script][0] != '\0' &&
	    reply->type != REDIS_REPLY_ERROR && l == s->cmd)
		s->sha_ok[q->script] = true;
	q->handle(s, q, reply != NULL ? l : NULL, reply);
	rq_free(q);
	conn_reply_done(s);  /* last: it may close the link (destroy) */
}

int rq_send(redis_state *s, rlink *l, rq *q)
{
	rargs_script script;
	int rc;

	if (q->script >= 0) {
		q->by_eval = !s->sha_ok[q->script] || q->retried;
		script = (rargs_script){ .text = redis_script_text[q->script],
					 .sha = q->by_eval ? NULL : s->sha[q->script],
					 .nkeys = q->nkeys };
	}
	rc = rargs_send(l, &q->args, q->script >= 0 ? &script : NULL, NULL, on_reply, q);
	if (rc != 0)
		return rc;
	/* Queued on the link, maybe before it is connected: from here a lost
	 * reply leaves the outcome unknown, as it may have been written. */
	q->sent = true;
	q->link = l;
	q->sent_at = uv_now(s->base.loop);
	q->sent_ns = uv_hrtime();
	q->prev = NULL;
	q->next = s->inflight;
	if (s->inflight != NULL)
		s->inflight->prev = q;
	else
		s->inflight_tail = q;
	s->inflight = q;
	return 0;
}

const rq *rq_oldest(const redis_state *s, const rlink *l)
{
	/* From the oldest: the first on `l` is it (every request goes on
	 * the command link: this is the tail, or next to it). */
	for (const rq *q = s->inflight_tail; q != NULL; q = q->prev)
		if (q->link == l && !q->orphan)
			return q;
	return NULL;
}

int rq_send_or_free(redis_state *s, rlink *l, rq *q)
{
	int rc = rq_send(s, l, q);

	if (rc != 0)
		rq_free(q);
	return rc;
}

void rq_orphan_all(redis_state *s)
{
	rq *next;

	for (rq *q = s->inflight; q != NULL; q = next) {
		next = q->next;
		if (!q->core || q->orphan)
			continue;
		q->orphan = true;
		q->handle(s, q, NULL, NULL);
	}
}

