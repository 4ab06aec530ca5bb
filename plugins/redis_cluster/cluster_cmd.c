/* One request to the cluster: its arguments, where it goes, and what is
 * done with the answers that mean "not here" or "not now".
 *
 * A request is routed by its partition's slot to the master the slot map
 * names. Redis Cluster may still answer that it is not the owner:
 *   MOVED slot host:port   the slot moved for good: the map is refreshed
 *                          and the request goes to the named master now;
 *   ASK slot host:port     the slot is migrating and the key is already on
 *                          the target: ASKING, then the request, there;
 *   TRYAGAIN, CLUSTERDOWN  a multi-key request during a migration, or the
 *                          cluster is failing over: again after CL_RETRY_MS.
 * None of these ran the command (Redis checks the slots before running
 * anything), so resending never makes it run twice; a request that is
 * still redirected at its deadline (probe_timeout_ms after it was made)
 * fails with CONFAB_EUNAVAILABLE, which says exactly that.
 *
 * NOSCRIPT (a master that lost its script cache: a promoted replica that
 * never loaded them, a restart) is answered by sending the script's text
 * with EVAL, which also caches it there.
 *
 * A request lives in one of two lists: s->reqs while a link holds it,
 * s->pend while it waits (for a retry, or for its partition's
 * subscription: `held`). Both are oldest first, so requests of one room
 * keep their order through retries.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

cq *cq_new(cl_state *s, cq_handler handle, int script, int part)
{
	cq *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->s = s;
	q->handle = handle;
	q->script = script;
	q->part = part;
	if (part >= 0)
		q->slot = s->part[part].slot;
	return q;
}

void cq_free(cq *q)
{
	if (q == NULL)
		return;
	if (q->core)
		q->s->base.n_core--;
	if (q->held && q->part >= 0)
		q->s->part[q->part].n_held--;
	wait_ungroup(q);
	while (q->subs != NULL) {   /* a batch freed before it answered them */
		cq *sub = q->subs;

		q->subs = sub->bnext;
		cq_free(sub);
	}
	while (q->parts != NULL) {  /* a multi, likewise */
		cq *part = q->parts;

		q->parts = part->pnext;
		cq_free(part);
	}
	rargs_clear(&q->args);
	free(q->repeat);
	free(q);
}

/* ---- the two lists ---- */

static void unlist(cl_state *s, cq *q)
{
	cq **head = q->pending ? &s->pend : &s->reqs;
	cq **tail = q->pending ? &s->pend_tail : &s->reqs_tail;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else if (*head == q)
		*head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else if (*tail == q)
		*tail = q->prev;
	q->prev = q->next = NULL;
	q->pending = false;
}

static void enlist(cl_state *s, cq *q, bool pending)
{
	cq **head = pending ? &s->pend : &s->reqs;
	cq **tail = pending ? &s->pend_tail : &s->reqs_tail;

	q->pending = pending;
	q->next = NULL;
	q->prev = *tail;
	if (*tail != NULL)
		(*tail)->next = q;
	else
		*head = q;
	*tail = q;
}

/* The handler, and the request freed when it says it is done. */
static void finish(cl_state *s, cq *q, redisReply *reply)
{
	if (q->handle(s, q, reply))
		cq_free(q);
}

/* ---- sending ---- */

static void on_reply(rlink *l, redisReply *reply, void *arg);

/* Hand `q` to `m`'s command link. 0, or CONFAB_EUNAVAILABLE. */
static int send_to(cl_state *s, cmaster *m, cq *q)
{
	rargs_script script;
	int rc;

	if (m == NULL || m->cmd == NULL)
		return CONFAB_EUNAVAILABLE;
	if (q->script >= 0) {
		q->by_eval = !m->sha_ok[q->script] || q->retried_eval;
		script = (rargs_script){ .text = cl_script_text[q->script],
					 .sha = q->by_eval ? NULL : m->sha[q->script],
					 .nkeys = q->nkeys };
	}
	/* ASKING holds for the next command of the connection only: both
	 * go out back to back, nothing can come between them. */
	rc = rargs_send(m->cmd, &q->args, q->script >= 0 ? &script : NULL,
			q->asking ? "ASKING" : NULL, on_reply, q);
	if (rc != 0)
		return rc;
	q->sent = true;
	q->sent_ns = uv_hrtime();
	q->on = m;
	q->link = m->cmd;
	enlist(s, q, false);
	if ((q->script == CS_PUBLISH || q->script == CS_PUBLISH_BATCH) && s->ack_replicas > 0)
		wait_sent(s, m, q);
	for (cq *p = q->parts; p != NULL; p = p->pnext) {
		/* A multi's publishes are covered by the WAIT after it, like
		 * any publish sent on this link (again, when it is resent by
		 * its text after NOSCRIPT). */
		p->sent = true;
		if ((p->script == CS_PUBLISH || p->script == CS_PUBLISH_BATCH) && s->ack_replicas > 0) {
			wait_ungroup(p);
			wait_sent(s, m, p);
		}
	}
	return 0;
}

int cq_send_on(cl_state *s, cmaster *m, cq *q)
{
	if (q->deadline == 0)
		q->deadline = uv_now(s->base.loop) + s->common.probe_timeout_ms;
	return send_to(s, m, q);
}

/* Where `q` goes now: the redirection's target, or the owner of its slot
 * when that master serves (or, for setup requests, is being set up).
 * NULL: nowhere yet. */
static cmaster *route(cl_state *s, cq *q)
{
	cmaster *m;

	if (q->to != NULL)
		return q->to->cmd != NULL ? q->to : NULL;
	if (q->part >= 0) {
		m = s->part[q->part].owner;
		if (m == NULL || m->cmd == NULL)
			return NULL;
		/* early: also while its setup runs, not on an aux link of a
		 * master not connected (no reconcile went before) */
		return m->state == M_UP || (q->early && m->state == M_CONNECTING) ? m : NULL;
	}
	if (!s->have_map || s->map.owner[q->slot] < 0)
		return NULL;
	const rslot_master *rm = &s->map.masters[s->map.owner[q->slot]];

	m = master_get(s, rm->host, rm->port);
	return m != NULL && m->cmd != NULL ? m : NULL;
}

/* Send now, or wait for a retry. */
static void dispatch(cl_state *s, cq *q)
{
	cmaster *m = route(s, q);

	if (m != NULL && send_to(s, m, q) == 0)
		return;
	q->to = NULL;
	q->asking = false;
	q->retry_at = uv_now(s->base.loop) + CL_RETRY_MS;
	enlist(s, q, true);
}

void cq_submit(cl_state *s, cq *q)
{
	if (q->deadline == 0)
		q->deadline = uv_now(s->base.loop) + s->common.probe_timeout_ms;
	if (q->held) {
		enlist(s, q, true);
		return;
	}
	dispatch(s, q);
}

static bool starts(const char *err, const char *word)
{
	size_t n = strlen(word);

	return err != NULL && strncmp(err, word, n) == 0 && (err[n] == ' ' || err[n] == '\0');
}

static void on_reply(rlink *l, redisReply *reply, void *arg)
{
	cq *q = arg;
	cl_state *s = q->s;
	cmaster *m = q->on;
	const char *err;

	unlist(s, q);
	q->on = NULL;
	if (reply != NULL && q->script >= 0)
		rbase_script_replied(&s->base, q->script, q->sent_ns);
	if (q->orphan) {
		cq_free(q);
		return;
	}
	q->link = l;
	q->on_last = m;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
		wait_ungroup(q);   /* it wrote nothing: no WAIT for it */
	if (reply == NULL || reply->type != REDIS_REPLY_ERROR) {
		if (reply != NULL && q->script >= 0 && q->by_eval && m != NULL &&
		    m->sha[q->script][0] != '\0')
			m->sha_ok[q->script] = true;  /* the text put it in the cache */
		finish(s, q, reply);
		return;
	}
	err = reply->str;
	if (s->destroying) {
		/* No retry while destroy closes everything: as if lost. */
		finish(s, q, NULL);
		return;
	}
	if (starts(err, "NOSCRIPT") && q->script >= 0 && !q->retried_eval) {
		/* The cache was flushed as a whole: every script goes by text
		 * to this master until it has them again. */
		if (m != NULL)
			for (int i = 0; i < CS_COUNT; i++)
				m->sha_ok[i] = false;
		q->retried_eval = true;
		q->to = m;     /* the same master, with ASKING again if it was asked */
		dispatch(s, q);
		return;
	}
	if (q->script == CS_MULTI) {
		/* Refused as a whole (nothing ran): its handler splits it. */
		finish(s, q, reply);
		return;
	}
	{
		unsigned slot;
		char host[256];
		int port, kind = rslot_redirect(err, &slot, host, sizeof(host), &port);

		/* A script that reached a key of a migrating slot that it did
		 * not declare (only the heartbeat, reconcile and goodbye can:
		 * they are idempotent) stopped there: again, like TRYAGAIN. */
		if (kind != 0 || starts(err, "TRYAGAIN") || starts(err, "CLUSTERDOWN") ||
		    (q->script >= 0 && strstr(err, "non local key") != NULL)) {
			/* It did not run: it may go again, until its deadline. */
			q->sent = false;
			q->to = NULL;
			q->asking = false;
			if (kind == 1)
				topo_refresh(s);
			if (uv_now(s->base.loop) >= q->deadline) {
				finish(s, q, NULL);
				return;
			}
			if (kind != 0) {
				if (host[0] == '\0' && m != NULL)
					snprintf(host, sizeof(host), "%s", m->host);
				q->to = master_get(s, host, port);
				q->asking = kind == 2;
				dispatch(s, q);
				return;
			}
			q->retry_at = uv_now(s->base.loop) + CL_RETRY_MS;
			enlist(s, q, true);
			return;
		}
	}
	finish(s, q, reply);
}

/* ---- time ---- */

void cq_tick(cl_state *s)
{
	uint64_t now = uv_now(s->base.loop);
	cq *list = s->pend, *q;

	/* Take the waiting list out: what is resent or waits again goes to
	 * the lists anew, and the handlers may make new requests. */
	s->pend = s->pend_tail = NULL;
	for (q = list; q != NULL; q = q->next)
		q->pending = false;
	while (list != NULL) {
		q = list;
		list = q->next;
		if (list != NULL)
			list->prev = NULL;
		q->next = q->prev = NULL;
		if (now >= q->deadline) {
			finish(s, q, NULL);
		} else if (q->held || q->retry_at > now) {
			enlist(s, q, true);
		} else {
			q->retry_at = 0;
			dispatch(s, q);
		}
	}
}

/* Release the held requests of partition k: sent now, in order. */
void cq_release(cl_state *s, unsigned k, bool fail)
{
	cq *q, *next, *take = NULL, *take_tail = NULL;

	for (q = s->pend; q != NULL; q = next) {
		next = q->next;
		if (!q->held || q->part != (int)k)
			continue;
		unlist(s, q);
		q->held = false;
		s->part[k].n_held--;
		q->next = NULL;
		if (take_tail != NULL)
			take_tail->next = q;
		else
			take = q;
		take_tail = q;
	}
	while (take != NULL) {
		q = take;
		take = q->next;
		q->next = NULL;
		if (fail)
			finish(s, q, NULL);
		else
			dispatch(s, q);
	}
}

void cq_orphan_all(cl_state *s)
{
	cq *q, *next;

	wait_orphan_all(s);
	/* Waiting ones are the plugin's alone: answered and freed. */
	while ((q = s->pend) != NULL) {
		unlist(s, q);
		if (q->core)
			q->handle(s, q, NULL);
		cq_free(q);
	}
	/* Those a link holds are freed when the link gives them back. */
	for (q = s->reqs; q != NULL; q = next) {
		next = q->next;
		if (!q->core || q->orphan)
			continue;
		q->orphan = true;
		q->handle(s, q, NULL);
	}
}

void cq_free_all(cl_state *s)
{
	cq *q;

	while ((q = s->pend) != NULL || (q = s->reqs) != NULL) {
		unlist(s, q);
		q->core = false;   /* answered at destroy already */
		cq_free(q);
	}
	wait_free_all(s);
}

/* ---- per master: one call for several partitions ---- */

/* Under load, most of a master's work per request is the call itself
 * (its parsing, the script's setup and teardown), not what the script
 * does: one call per partition per loop turn made a cluster's masters
 * together spend three times one Redis's CPU for the same messages
 * (with 1 message per call), and `partitions` heartbeats a second per
 * node made a burst a thousand calls long. So the publishes, the flushes
 * after WAIT and the heartbeats of one loop turn wait for its end
 * (cq_defer), and go to each master as one multi script call carrying
 * them all, in the order they were made (cluster_scripts.c's MULTI_LUA).
 *
 * A multi is never redirected or retried as a whole. When Redis refuses
 * it (the script's probe found a key this master does not serve now:
 * a migration, a failover; CLUSTERDOWN; anything), nothing ran, and each
 * request it carried is sent alone, the per-partition path with its
 * retries (MOVED, ASK, TRYAGAIN). When it ran, each request gets its own
 * element of the reply, as if it had been sent alone. */

void cq_defer(cl_state *s, cq *q)
{
	if (s->destroying) {
		/* The end-of-turn check is closed: no turn to wait for. */
		cq_submit(s, q);
		return;
	}
	q->pnext = NULL;
	if (s->deferred_tail != NULL)
		s->deferred_tail->pnext = q;
	else
		s->deferred = q;
	s->deferred_tail = q;
	batch_wake(s);
}

/* A multi's element, or its whole reply, that says "not run here": the
 * request goes alone, the per-partition way. */
static bool not_here(const redisReply *e)
{
	unsigned slot;
	char host[256];
	int port;

	return e->type == REDIS_REPLY_ERROR &&
	       (rslot_redirect(e->str, &slot, host, sizeof(host), &port) != 0 ||
		starts(e->str, "TRYAGAIN") || starts(e->str, "CLUSTERDOWN") ||
		strstr(e->str, "non local key") != NULL);
}

static void alone(cl_state *s, cq *p)
{
	wait_ungroup(p);
	p->sent = false;
	p->to = NULL;
	p->asking = false;
	dispatch(s, p);
}

static bool multi_reply(cl_state *s, cq *mq, redisReply *reply)
{
	cq *list = mq->parts, *p;
	size_t n = 0, pubs = 0, i;

	mq->parts = NULL;
	for (p = list; p != NULL; p = p->pnext) {
		n++;
		pubs += p->script == CS_PUBLISH || p->script == CS_PUBLISH_BATCH;
	}
	if (reply != NULL && (reply->type != REDIS_REPLY_ARRAY || reply->elements != n)) {
		/* Nothing ran: each goes alone. Counted, and said at debug
		 * level, so that a test can see this path taken. */
		s->n_split++;
		cl_log(s, CONFAB_LOG_DEBUG, "a call for %zu partitions (%zu publishing) on %s was "
		       "refused (%s): each is sent alone (%lu of %lu calls so far)", n, pubs,
		       mq->on_last != NULL ? mq->on_last->name : "?",
		       reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply",
		       s->n_split, s->n_multi);
		while ((p = list) != NULL) {
			list = p->pnext;
			p->pnext = NULL;
			alone(s, p);
		}
		return true;
	}
	for (i = 0; (p = list) != NULL; i++) {
		redisReply *e = reply != NULL ? reply->element[i] : NULL;

		list = p->pnext;
		p->pnext = NULL;
		if (p->orphan) {
			cq_free(p);
			continue;
		}
		if (e != NULL && not_here(e)) {
			alone(s, p);
			continue;
		}
		p->link = mq->link;
		p->on_last = mq->on_last;
		if (e != NULL && e->type == REDIS_REPLY_ERROR)
			wait_ungroup(p);   /* it wrote nothing: no WAIT for it */
		finish(s, p, e);
	}
	return true;
}

/* One multi for `list` (two or more requests) on m; false when it could
 * not be made or sent (the caller sends each alone). */
static bool send_multi(cl_state *s, cmaster *m, cq *list)
{
	cq *mq = cq_new(s, multi_reply, CS_MULTI, -1);
	unsigned n = 0;
	int rc = mq == NULL;

	for (cq *p = list; p != NULL; p = p->pnext)
		n++;
	rc = rc || rargs_addf(&mq->args, "%u", n);
	for (cq *p = list; rc == 0 && p != NULL; p = p->pnext)
		rc = rargs_adds(&mq->args, cl_script_name[p->script]) ||
		     rargs_addf(&mq->args, "%u", p->nkeys) ||
		     rargs_addf(&mq->args, "%zu", p->args.argc - p->nkeys);
	for (cq *p = list; rc == 0 && p != NULL; p = p->pnext)
		for (size_t i = 0; rc == 0 && i < p->args.argc; i++)
			rc = rargs_add(&mq->args, p->args.argv[i], p->args.argvlen[i]);
	if (rc != 0) {
		cq_free(mq);
		return false;
	}
	mq->nkeys = 0;   /* see MULTI_LUA: its probe checks the keys */
	mq->parts = list;
	/* It stands for core requests (publishes): destroy answers it, and
	 * its handler answers each of them. */
	mq->core = true;
	s->base.n_core++;
	if (cq_send_on(s, m, mq) != 0) {
		mq->parts = NULL;
		cq_free(mq);
		return false;
	}
	s->n_multi++;
	return true;
}

void cq_send_deferred(cl_state *s)
{
	cq *list = s->deferred, *q;
	cmaster *touched = NULL, *m;

	s->deferred = s->deferred_tail = NULL;
	while ((q = list) != NULL) {
		list = q->pnext;
		q->pnext = NULL;
		if (q->deadline == 0)
			q->deadline = uv_now(s->base.loop) + s->common.probe_timeout_ms;
		m = q->held || q->to != NULL ? NULL : route(s, q);
		if (m == NULL) {
			cq_submit(s, q);   /* waits for a retry, as always */
			continue;
		}
		if (m->share == NULL) {
			m->share = q;
			m->share_next = touched;
			touched = m;
		} else {
			m->share_tail->pnext = q;
		}
		m->share_tail = q;
	}
	while ((m = touched) != NULL) {
		cq *share = m->share;

		touched = m->share_next;
		m->share = m->share_tail = NULL;
		m->share_next = NULL;
		if (share->pnext != NULL && !m->no_multi && send_multi(s, m, share))
			continue;
		while ((q = share) != NULL) {
			share = q->pnext;
			q->pnext = NULL;
			dispatch(s, q);
		}
	}
}

void cq_fail_deferred(cl_state *s)
{
	cq *q;

	while ((q = s->deferred) != NULL) {
		s->deferred = q->pnext;
		q->pnext = NULL;
		finish(s, q, NULL);
	}
	s->deferred_tail = NULL;
}
