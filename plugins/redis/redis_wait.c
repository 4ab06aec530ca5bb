/* ack_replicas: a publish is acked only when WAIT says that many replicas
 * have it, so that an acked message survives a failover (Sentinel
 * promotes the replica that is furthest ahead).
 *
 * WAIT N T blocks the connection that sends it until N replicas have
 * every write that connection made before it, or T ms pass; it answers
 * how many have. One WAIT after each publish would hold the only command
 * link for a round trip per message (and for T per message while a
 * replica is missing), and everything behind it (presence, history, the
 * probe) would wait. So the publishes whose scripts were answered since
 * the last WAIT was sent form one group; at the end of the loop turn, or
 * when the WAIT in flight answers, one WAIT goes for the whole group. It
 * covers them all: their scripts ran on this link before it. Each is
 * acked when that WAIT says N, and answered CONFAB_EUNKNOWN otherwise:
 * the master has the message, but it may not survive a failover (the
 * client sees `unavailable`, outcome unknown; a send with the same idem
 * is answered with the first seq if it was kept).
 *
 * The WAIT is a request (rq) on the command link like any other, so the
 * link's request deadline covers it: its timeout is a third of
 * probe_timeout_ms. While the replicas are short (the last WAIT said
 * fewer than N) it waits SHORT_TIMEOUT_MS only: the answer is "unknown"
 * either way, and the link is not held up for a second per group. The
 * first WAIT that says N again restores the full timeout.
 *
 * A group never moves to another link: a WAIT on a new connection covers
 * nothing the old one wrote, so when the link goes (wait_link_gone) the
 * group answers "unknown" at once.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"

#define SHORT_TIMEOUT_MS 10

/* Answer a list of held publishes (linked through held_next) and free
 * them: acked when `ok`, else unknown. */
static void answer(redis_state *s, rq *list, bool ok)
{
	while (list != NULL) {
		rq *next = list->held_next;

		list->held_next = NULL;
		if (!list->orphan) {
			if (ok)
				ops_publish_answer(s, list, 0, list->seq, list->repeat);
			else
				ops_publish_answer(s, list, CONFAB_EUNKNOWN, 0, NULL);
		}
		rq_free(list);
		list = next;
	}
}

static void flush(redis_state *s);

static void wait_reply(redis_state *s, rq *q, const rlink *l, redisReply *reply)
{
	rq *group = q->subs;
	bool ok = false;

	q->subs = NULL;
	if (q->link == s->cmd)
		s->wait_out = false;
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
		bool short_now = reply->integer < (long long)s->ack_replicas;

		ok = !short_now;
		/* One line when the replicas become too few, one when they are
		 * back: not one per group. */
		if (short_now && !s->wait_short)
			redis_log(s, CONFAB_LOG_WARN, "only %lld of the %u replicas that ack_replicas "
				  "asks for acknowledged the latest messages: sends are answered "
				  "`unavailable` (outcome unknown) until they do", reply->integer,
				  s->ack_replicas);
		else if (!short_now && s->wait_short)
			redis_log(s, CONFAB_LOG_INFO, "%lld replicas acknowledge messages again",
				  reply->integer);
		if (l == s->cmd)
			s->wait_short = short_now;
	} else if (reply != NULL) {
		redis_log(s, CONFAB_LOG_ERROR, "WAIT failed: %s",
			  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
	}
	answer(s, group, ok);
	if (!s->destroying && s->wait_open != NULL)
		flush(s);
}

/* Send one WAIT for the open group. */
static void flush(redis_state *s)
{
	rq *group = s->wait_open, *q;
	bool same_link = s->wait_link == s->cmd && s->cmd != NULL;

	uv_check_stop(&s->wait_check);
	if (group == NULL || s->wait_out)
		return;
	s->wait_open = s->wait_open_tail = NULL;
	q = same_link ? rq_new(s, wait_reply, -1) : NULL;
	if (q == NULL || rargs_adds(&q->args, "WAIT") != 0 ||
	    rargs_addf(&q->args, "%u", s->ack_replicas) != 0 ||
	    rargs_addf(&q->args, "%u", s->wait_short ? SHORT_TIMEOUT_MS
						     : s->common.probe_timeout_ms / 3) != 0) {
		rq_free(q);
		answer(s, group, false);
		return;
	}
	q->subs = group;
	/* Counted as the core's: destroy answers it (rq_orphan_all), and
	 * with it the group. */
	q->core = true;
	s->base.n_core++;
	if (rq_send(s, s->cmd, q) != 0) {
		q->subs = NULL;
		rq_free(q);
		answer(s, group, false);
		return;
	}
	s->wait_out = true;
}

static void on_check(uv_check_t *h)
{
	flush(h->data);
}

bool wait_hold(redis_state *s, rq *q, const rlink *l, uint64_t seq, const char *repeat)
{
	rq *n;

	if (s->ack_replicas == 0)
		return false;
	if (l == NULL || l != s->cmd || s->destroying) {
		/* Its link is gone: no WAIT can cover it any more. */
		ops_publish_answer(s, q, CONFAB_EUNKNOWN, 0, NULL);
		return true;
	}
	if (s->wait_open != NULL && s->wait_link != l)
		wait_link_gone(s);
	/* The caller frees `q` when this returns: move what it holds into
	 * a new request that waits (its arguments are the answer's). */
	n = malloc(sizeof(*n));
	if (n == NULL || (repeat != NULL && (q->repeat = strdup(repeat)) == NULL)) {
		free(n);
		ops_publish_answer(s, q, CONFAB_EUNKNOWN, 0, NULL);
		return true;
	}
	*n = *q;
	n->prev = n->next = n->held_next = NULL;
	n->seq = seq;
	q->args.argv = NULL;
	q->args.argvlen = NULL;
	q->args.argc = q->args.argcap = 0;
	q->subs = NULL;
	q->core = false;      /* n counts in n_core now */
	q->repeat = NULL;

	if (s->wait_open_tail != NULL)
		s->wait_open_tail->held_next = n;
	else
		s->wait_open = n;
	s->wait_open_tail = n;
	s->wait_link = l;
	if (!s->wait_out && !uv_is_active((uv_handle_t *)&s->wait_check))
		uv_check_start(&s->wait_check, on_check);
	return true;
}

void wait_link_gone(redis_state *s)
{
	rq *group = s->wait_open;

	s->wait_open = s->wait_open_tail = NULL;
	s->wait_link = NULL;
	s->wait_out = false;   /* the WAIT in flight gets NULL: "unknown" */
	if (uv_is_active((uv_handle_t *)&s->wait_check))
		uv_check_stop(&s->wait_check);
	answer(s, group, false);
}
