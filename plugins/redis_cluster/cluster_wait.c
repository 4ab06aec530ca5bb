/* WAIT for ack_replicas: one WAIT at a time per master, covering every
 * publish sent on its command link before it.
 *
 * WAIT N T blocks the connection that sends it until N replicas have
 * every write that connection made before it, or T ms pass. One WAIT
 * after each publish would block each master's only command link for a
 * round trip per message, and for T per message while a replica is
 * missing: everything behind (presence, history, the probes) would wait
 * seconds. So the publishes whose scripts went out on a master's link
 * since its last WAIT form a group; at the end of the loop turn, or when
 * the WAIT in flight answers, one WAIT goes for the whole group. Each
 * publish of the group is acked only when that WAIT says N.
 *
 * While a master's replicas are short (its last WAIT said fewer than N),
 * its WAITs use a 10 ms timeout instead of ack_timeout_ms: the answer is
 * "unknown" either way, and the link is not held up for a second per
 * group. One WAIT in SHORT_RETRY_MS still gets the full timeout, so that
 * replicas that are only slow (behind by more than 10 ms) are waited for
 * again; the first WAIT that says N restores the full timeout.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define SHORT_TIMEOUT_MS 10
#define SHORT_RETRY_MS 5000

struct wgroup {
	wgroup *next;                /* in s->groups */
	cl_state *s;
	unsigned serial;             /* the master's */
	cq *waiters;                 /* scripts answered, waiting for the WAIT */
	unsigned refs;               /* publishes in it, + the master's open slot,
				      * + the WAIT in flight */
	bool failed;                 /* its WAIT could not be sent */
};

static void unref(wgroup *g)
{
	cl_state *s = g->s;

	if (--g->refs > 0)
		return;
	for (wgroup **pp = &s->groups; *pp != NULL; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	free(g);
}

void wait_ungroup(cq *q)
{
	wgroup *g = q->group;

	if (g == NULL)
		return;
	q->group = NULL;
	unref(g);
}

static void on_check(uv_check_t *h);

void wait_sent(cl_state *s, cmaster *m, cq *q)
{
	wgroup *g = m->open;

	if (g == NULL) {
		if ((g = calloc(1, sizeof(*g))) == NULL)
			return;  /* no group: the publish answers "unknown" */
		g->s = s;
		g->serial = m->serial;
		g->refs = 1;             /* the master's open slot */
		g->next = s->groups;
		s->groups = g;
		m->open = g;
	}
	g->refs++;
	q->group = g;
	if (!m->wait_out && !uv_is_active((uv_handle_t *)&s->wait_check))
		uv_check_start(&s->wait_check, on_check);
}

typedef struct room_seq {
	const char *room;
	unsigned part;
	uint64_t seq;
} room_seq;

static int by_part_room(const void *a, const void *b)
{
	const room_seq *x = a, *y = b;

	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	return strcmp(x->room, y->room);
}

static void add_seq(room_seq *v, size_t *n, const cq *q)
{
	if (q->seq != 0 && q->repeat == NULL)
		v[(*n)++] = (room_seq){ PUB_ROOM(q), (unsigned)q->part, q->seq };
}

/* WAIT said the replicas have the group's messages: publish them, one
 * flush per partition, for each room up to its highest seq in the group
 * (an idempotent repeat has nothing new to publish). */
static void flush_rooms(cl_state *s, wgroup *g)
{
	size_t n = 0, i, j;
	room_seq *v;
	const char **rooms;
	uint64_t *up_to;

	for (cq *q = g->waiters; q != NULL; q = q->next) {
		n++;
		for (cq *sub = q->subs; sub != NULL; sub = sub->bnext)
			n++;
	}
	v = malloc((n ? n : 1) * sizeof(*v));
	rooms = malloc((n ? n : 1) * sizeof(*rooms));
	up_to = malloc((n ? n : 1) * sizeof(*up_to));
	if (v == NULL || rooms == NULL || up_to == NULL)
		goto out;   /* the next message's flush publishes these too */
	n = 0;
	for (cq *q = g->waiters; q != NULL; q = q->next) {
		if (q->script == CS_PUBLISH_BATCH)
			for (cq *sub = q->subs; sub != NULL; sub = sub->bnext)
				add_seq(v, &n, sub);
		else
			add_seq(v, &n, q);
	}
	qsort(v, n, sizeof(*v), by_part_room);
	for (i = 0; i < n; i = j) {
		size_t m = 0;

		/* partition v[i].part: its rooms, each with its highest seq */
		for (j = i; j < n && v[j].part == v[i].part; j++) {
			if (m > 0 && strcmp(rooms[m - 1], v[j].room) == 0) {
				if (v[j].seq > up_to[m - 1])
					up_to[m - 1] = v[j].seq;
				continue;
			}
			rooms[m] = v[j].room;
			up_to[m++] = v[j].seq;
		}
		ops_flush(s, v[i].part, rooms, up_to, m);
	}
out:
	free(v);
	free(rooms);
	free(up_to);
}

/* Answer a group's waiters with WAIT's reply (NULL: lost). */
static void answer(cl_state *s, wgroup *g, redisReply *reply)
{
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
	    reply->integer >= (long long)s->ack_replicas)
		flush_rooms(s, g);
	while (g->waiters != NULL) {
		cq *q = g->waiters;

		g->waiters = q->next;
		q->next = NULL;
		if (!q->orphan)
			q->handle(s, q, reply);   /* a waiter's handler always finishes */
		cq_free(q);   /* drops its reference to g */
	}
}

static void flush(cl_state *s, cmaster *m);

static void on_wait(rlink *l, redisReply *reply, void *arg)
{
	wgroup *g = arg;
	cl_state *s = g->s;
	unsigned serial = g->serial;
	cmaster *m = master_by_serial(s, serial);

	(void)l;
	if (m != NULL) {
		m->wait_out = false;
		if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
			m->wait_short = reply->integer < (long long)s->ack_replicas;
	}
	answer(s, g, reply);
	unref(g);   /* the WAIT's reference: g may be gone */
	/* The flushes answer() deferred go now, before the next WAIT: behind
	 * it on the link they would wait for its replicas too (measured: a
	 * WAIT's round trip more before delivery, p50 +0.7 ms). */
	cq_send_deferred(s);
	if ((m = master_by_serial(s, serial)) != NULL && m->open != NULL && !m->wait_out)
		flush(s, m);
}

void wait_master_gone(cl_state *s, cmaster *m)
{
	if (m->open != NULL) {
		m->wait_out = true;   /* no new WAIT for it */
		m->open->failed = true;
		answer(s, m->open, NULL);
		unref(m->open);
		m->open = NULL;
	}
}

static void flush(cl_state *s, cmaster *m)
{
	wgroup *g = m->open;
	char n[16], t[16];
	const char *argv[3] = { "WAIT", n, t };
	bool full = !m->wait_short || uv_now(s->base.loop) - m->full_wait_at >= SHORT_RETRY_MS;

	m->open = NULL;
	if (full)
		m->full_wait_at = uv_now(s->base.loop);
	snprintf(n, sizeof(n), "%u", s->ack_replicas);
	snprintf(t, sizeof(t), "%u", full ? s->ack_timeout_ms : SHORT_TIMEOUT_MS);
	if (!s->destroying && m->cmd != NULL &&
	    rlink_command(m->cmd, 3, argv, NULL, on_wait, g) == 0) {
		m->wait_out = true;
		return;   /* the open slot's reference is the WAIT's now */
	}
	/* Its scripts' replies are still to come: they answer "unknown". */
	g->failed = true;
	answer(s, g, NULL);
	unref(g);
}

static void on_check(uv_check_t *h)
{
	cl_state *s = h->data;

	uv_check_stop(h);
	for (cmaster *m = s->masters; m != NULL; m = m->next)
		if (m->open != NULL && !m->wait_out)
			flush(s, m);
}

bool wait_join(cl_state *s, cq *q)
{
	wgroup *g = q->group;

	(void)s;
	if (g == NULL || g->failed)
		return false;
	q->waiting = true;
	q->next = g->waiters;   /* the order of answers within a group is free */
	g->waiters = q;
	return true;
}

void wait_orphan_all(cl_state *s)
{
	for (wgroup *g = s->groups; g != NULL; g = g->next)
		for (cq *q = g->waiters; q != NULL; q = q->next)
			if (q->core && !q->orphan) {
				q->orphan = true;
				q->handle(s, q, NULL);
			}
}

void wait_free_all(cl_state *s)
{
	while (s->groups != NULL) {
		wgroup *g = s->groups;

		s->groups = g->next;
		while (g->waiters != NULL) {
			cq *q = g->waiters;

			g->waiters = q->next;
			q->group = NULL;
			q->core = false;
			cq_free(q);
		}
		free(g);
	}
}
