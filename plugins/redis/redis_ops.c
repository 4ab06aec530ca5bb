/* The backplane slots, and this node's bookkeeping.
 *
 * Bookkeeping: what the core told us, kept whatever Redis's state, so
 * that a reconnect can make Redis match it (the reconcile script):
 *   users  users with a session on this node (user_online/user_offline);
 *   rooms  per room, the users of this node in it (room_join/room_leave).
 * A room with users here is subscribed: SUBSCRIBE on its first user,
 * UNSUBSCRIBE after its last. A node subscribes only to rooms it has
 * members in, so a Redis shared by many rooms and deployments sends each
 * node only what its sessions need.
 *
 * Room messages reach this node's sessions only the way they reach every
 * other node's: published by the publish script, received on the room's
 * channel, handed to the core in arrival order, which is seq order (the
 * scripts run one at a time and a subscription keeps publish order).
 *
 * One race is closed here: a user's first session here joins a room
 * (SUBSCRIBE goes out on one connection) and sends at once (the publish
 * script goes out on the other). Redis could run the publish first and
 * the user's other sessions here would miss the message. So a publish
 * for a room whose SUBSCRIBE is not confirmed yet waits for it (at most
 * REDIS_MAX_HELD per room).
 *
 * A second one: a client told it is in (welcome) is sent a direct from
 * another node at once, whose script reaches Redis before the user's
 * online script from here. So the welcome waits for the online scripts
 * still on their way (user_ready, counted in base.onlines).
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis.h"

/* ---- bookkeeping ---- */

static void *lroom_new(void *ctx)
{
	lroom *r = calloc(1, sizeof(*r));

	(void)ctx;
	if (r != NULL && (r->users = confab_dict_new()) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void ops_lroom_free(void *p)
{
	lroom *r = p;

	if (r == NULL)
		return;
	/* Joins still waiting were answered by ops_subscriptions_reset,
	 * which runs before anything frees a room with a subscription in
	 * flight; this only frees what is left. */
	rwait_free_all(&r->waiting);
	confab_dict_free(r->users, NULL);
	free(r);
}

const rops_room_kind ops_lroom_kind = {
	.make = lroom_new, .drop = ops_lroom_free,
	.users_at = offsetof(lroom, users), .epoch_at = offsetof(lroom, epoch)
};

/* Take a room's held publishes (oldest first) out of it. */
static rq *take_held(lroom *r)
{
	rq *list = r->held;

	r->held = r->held_tail = NULL;
	r->n_held = 0;
	return list;
}

/* Answer held publishes that will not be sent. Call only with no
 * iteration of the bookkeeping in progress: the core may call back. */
static void fail_list(redis_state *s, rq *list)
{
	while (list != NULL) {
		rq *next = list->held_next;

		list->handle(s, list, NULL, NULL);
		rq_free(list);
		list = next;
	}
}

void ops_subscriptions_reset(redis_state *s)
{
	rq *failed = NULL, *tail = NULL;
	rwait *waits = NULL;         /* every room's waiting joins */
	confab_dict_iter it;
	const char *room;
	void *value;

	RBASE_EACH(it, s->base.rooms, room, value) {
		lroom *r = value;
		rq *held_tail = r->held_tail;
		rq *list = take_held(r);

		if (list != NULL) {
			if (tail != NULL)
				tail->held_next = list;
			else
				failed = list;
			tail = held_tail;
		}
		while (r->waiting != NULL) {
			rwait *w = r->waiting;

			r->waiting = w->next;
			w->next = waits;
			waits = w;
		}
		r->subs_pending = 0;
		if (confab_dict_count(r->users) == 0)
			ops_lroom_free(confab_dict_remove(s->base.rooms, room));
	}
	fail_list(s, failed);
	/* The joins that waited fail too; the core undoes them (which may
	 * leave rooms here, so not while iterating above). */
	rwait_answer_all(&waits, CONFAB_EUNAVAILABLE);
}

/* When nothing is pending for a room any more (its SUBSCRIBE confirmed,
 * its join scripts answered), answer the joins that waited, then free
 * the room if nobody is in it. Their `joined` goes before any message of
 * the room. The answers may change the room (a join undone): it is looked
 * up again after. */
static void room_settle(redis_state *s, const char *room)
{
	lroom *r = confab_dict_get(s->base.rooms, room);

	if (r == NULL || r->subs_pending > 0 || r->joins_pending > 0)
		return;
	if (r->waiting != NULL) {
		rwait_answer_all(&r->waiting, 0);
		r = confab_dict_get(s->base.rooms, room);
	}
	if (r != NULL && confab_dict_count(r->users) == 0 && r->n_held == 0 && r->waiting == NULL)
		ops_lroom_free(confab_dict_remove(s->base.rooms, room));
}

void ops_room_subscribed(redis_state *s, const char *room)
{
	lroom *r = confab_dict_get(s->base.rooms, room);
	rq *list;

	if (r == NULL || r->subs_pending == 0 || --r->subs_pending > 0)
		return;
	list = take_held(r);
	room_settle(s, room);
	/* Now the publishes that waited, in the order they came. */
	while (list != NULL) {
		rq *next = list->held_next;

		list->held_next = NULL;
		if (rq_send(s, s->cmd, list) != 0) {
			list->handle(s, list, NULL, NULL);
			rq_free(list);
		}
		list = next;
	}
}

void ops_free(redis_state *s)
{
	rbase_free_tables(&s->base);
}

/* ---- requests ---- */

int ops_reply_status(redis_state *s, const char *what, const redisReply *reply)
{
	return rreply_status(s->base.host, s->base.ctx, what, reply, false);
}

/* May the core's request go to Redis now? */
static int admit(redis_state *s)
{
	if (!conn_serving(s))
		return CONFAB_EUNAVAILABLE;
	return rbase_admit(&s->base, REDIS_MAX_INFLIGHT, "Redis");
}

static void own(redis_state *s, rq *q, void *arg)
{
	q->core = true;
	q->arg = arg;
	s->base.n_core++;
}

/* The keys of a room's record, the first arguments of the scripts that
 * use it: seq, hist, epoch. */
static int record_keys(const redis_state *s, rq *q, const char *room)
{
	return rargs_addf(&q->args, "%sroom:%s:seq", s->prefix, room) ||
	       rargs_addf(&q->args, "%sroom:%s:hist", s->prefix, room) ||
	       rargs_addf(&q->args, "%sroom:%s:epoch", s->prefix, room) ? CONFAB_ENOMEM : 0;
}

/* P and C, the first two arguments of every script. */
static int prefixes(const redis_state *s, rq *q)
{
	return rargs_adds(&q->args, s->prefix) != 0 ||
	       rargs_adds(&q->args, s->chan_prefix) != 0 ? CONFAB_ENOMEM : 0;
}

/* Whether a presence script (join, leave, online, offline, or the
 * reconcile) was carried out. A lost reply (the link went) is corrected by
 * the reconcile of the next link. An error (OOM, BUSY, ...) leaves Redis's
 * record of this node wrong while the link stays up: the next heartbeat
 * reconciles it (presence_dirty), so presence is exact again soon after
 * Redis recovers. A request carried by a presence_batch (q->aux) was
 * logged once for the whole batch. (0 means that Redis knows a newer
 * generation of this node's link than the one the script carried, so it
 * did nothing.) */
static bool change_done(redis_state *s, const rq *q, const redisReply *reply)
{
	return rbase_change_done(&s->base, reply, redis_script_name[q->script], !q->aux,
				 &s->presence_dirty);
}

static void change_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	(void)ac;
	change_done(s, q, reply);
}

/* A join script answered, or was lost with the link (reply NULL).
 * `joined` means that Redis has the user in the room: only a join that
 * was carried out lets the joins waiting for the room (room_ready) go on.
 * Otherwise every join of the room still waiting is refused now, in
 * this turn, before anything else can answer them: the core answers
 * `unavailable` and undoes each (room_leave), which takes the user out of
 * the bookkeeping here too. Joins of other users of the room fail with it:
 * room_ready does not say whose join it waits for, and a join refused
 * that would have worked is only a retry, where a join answered `joined`
 * that did not work is a user missing from presence. */
static void join_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	const char *room = q->args.argv[PRES_ROOM];
	bool ok = change_done(s, q, reply);
	lroom *r = confab_dict_get(s->base.rooms, room);

	(void)ac;
	if (r == NULL)
		return;
	if (r->joins_pending > 0)
		r->joins_pending--;
	if (!ok)
		rwait_answer_all(&r->waiting, CONFAB_EUNAVAILABLE);  /* may free r */
	room_settle(s, room);
}

/* An online script answered, or was lost with the link (reply NULL): the
 * welcomes that wait for it go on (user_ready), or, when it was not
 * carried out, are told that it is not known (the core welcomes them
 * anyway; the next reconcile registers the user). */
static void online_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	(void)ac;
	ronline_answered(s->base.onlines, q->args.argv[PRES_ROOM], change_done(s, q, reply));
}

/* join/leave (room set) or online/offline (room NULL) of `user` here.
 * Sent whenever a command connection exists: the reconcile of its setup
 * went out before, so Redis sees the changes in order. true when the
 * change is on its way (its handler will be called). */
static bool send_presence(redis_state *s, int script, const char *room, const char *user)
{
	rq *q;

	if (s->cmd == NULL || s->destroying)
		return false;
	q = rq_new(s, script == SCRIPT_JOIN ? join_reply : change_reply, script);
	if (q == NULL || prefixes(s, q) != 0 || rargs_adds(&q->args, s->node_id) != 0 ||
	    rargs_addf(&q->args, "%llu", (unsigned long long)s->gen) != 0 ||
	    (room != NULL && rargs_adds(&q->args, room) != 0) || rargs_adds(&q->args, user) != 0) {
		rq_free(q);
		return false;  /* the next reconcile corrects it */
	}
	if (script == SCRIPT_ONLINE && ronline_sent(s->base.onlines, user) == 0)
		q->handle = online_reply;  /* called exactly once from here on */
	batch_send(s, q);
	return true;
}

rq *ops_reconcile_request(redis_state *s)
{
	static const rops_filter all = { .kind = &ops_lroom_kind };
	rq *q = rq_new(s, change_reply, SCRIPT_RECONCILE);

	if (q == NULL)
		return NULL;
	s->gen = rops_next_gen(s->gen);
	if (prefixes(s, q) || rargs_adds(&q->args, s->node_id) ||
	    rargs_addf(&q->args, "%llu", (unsigned long long)s->gen) ||
	    rops_presence_args(&q->args, s->base.rooms, s->base.users, &all) != 0) {
		rq_free(q);
		return NULL;
	}
	return q;
}

bool ops_reconcile_refused(redis_state *s, const rq *q, const redisReply *reply)
{
	unsigned long long known;
	rq *again;

	if (reply == NULL || reply->type != REDIS_REPLY_STRING)
		return false;
	known = strtoull(reply->str, NULL, 10);
	redis_log(s, CONFAB_LOG_WARN, "Redis knows a newer link of node %s (generation %llu, "
		  "this one %llu): registering again above it", s->node_id, known,
		  (unsigned long long)s->gen);
	if (known > s->gen)
		s->gen = known;
	again = ops_reconcile_request(s);
	if (again != NULL) {
		again->handle = q->handle;
		rq_send_or_free(s, s->cmd, again);
	}
	return true;
}

/* ---- publish ---- */

/* Whether a publish to room `r` (NULL: not known here) asks the script to
 * refresh the room's expiry: when this node's last refresh of it went
 * through room_ttl/32 ago or more, or none did. The script refreshes to
 * room_ttl + room_ttl/16, so each message still lands at least room_ttl
 * before the record expires, with room_ttl/32 to spare for a refresh
 * whose answer was slow. A record made by the script is refreshed there
 * whatever the node says. */
static bool refresh_due(const redis_state *s, const lroom *r)
{
	return s->common.room_ttl != 0 &&
	       (r == NULL || !r->refreshed ||
		uv_now(s->base.loop) - r->refreshed_at >= (uint64_t)s->common.room_ttl * 1000 / 32);
}

void ops_published(redis_state *s, const rq *q)
{
	lroom *r;

	if (q->args.argc <= PUB_REFRESH || q->args.argv[PUB_REFRESH][0] != '1')
		return;
	if ((r = confab_dict_get(s->base.rooms, q->args.argv[PUB_ROOM])) != NULL) {
		r->refreshed = true;
		r->refreshed_at = uv_now(s->base.loop);
	}
}

int ops_lost_status(const rq *q)
{
	return q->sent ? CONFAB_EUNKNOWN : CONFAB_EUNAVAILABLE;
}

bool ops_has_idem(const rq *q)
{
	return q->script == SCRIPT_PUBLISH && q->args.argc > PUB_IDEM &&
	       q->args.argvlen[PUB_IDEM] > 0;
}

void ops_publish_answer(redis_state *s, rq *q, int status, uint64_t seq, const char *repeat)
{
	if (status == 0 && repeat == NULL)
		ops_published(s, q);
	if (q->send_cb)
		ranswer_send(q->done.send, q->arg, &q->args, status, seq, repeat);
	else
		q->done.publish(q->arg, status == CONFAB_EUNKNOWN ? CONFAB_EUNAVAILABLE : status,
				seq);
}

static void publish_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	if (reply == NULL)
		ops_publish_answer(s, q, ops_lost_status(q), 0, NULL);
	else if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
		if (!wait_hold(s, q, ac, (uint64_t)reply->integer, NULL))
			ops_publish_answer(s, q, 0, (uint64_t)reply->integer, NULL);
	} else if (reply->type == REDIS_REPLY_STRING && q->send_cb) {
		/* an idempotent repeat */
		if (!wait_hold(s, q, ac, 0, reply->str))
			ops_publish_answer(s, q, 0, 0, reply->str);
	} else
		ops_publish_answer(s, q, ops_reply_status(s, "publish", reply), 0, NULL);
}


/* The last arguments of an _idem slot's send: its idempotency key's
 * (rops_idem_args). 0 or CONFAB_ENOMEM. */
static int idem_args(const redis_state *s, rq *q, const confab_envelope *env)
{
	char *ik = rops_idem_key(s->prefix, env);
	int rc = ik == NULL || rops_idem_args(&q->args, ik, s->common.idem_window, env) != 0;

	free(ik);
	return rc ? CONFAB_ENOMEM : 0;
}

/* publish (`pdone`) or publish_idem (`sdone`): one of them is NULL. */
static int publish_request(redis_state *s, const confab_envelope *env, confab_publish_done pdone,
			   confab_send_done sdone, void *arg)
{
	bool send_cb = sdone != NULL;
	lroom *r = confab_dict_get(s->base.rooms, env->room);
	rq *q;
	int rc = admit(s);

	if (rc != 0)
		return rc;
	q = rq_new(s, publish_reply, SCRIPT_PUBLISH);
	rc = q == NULL || record_keys(s, q, env->room) || prefixes(s, q) ||
	     rops_publish_args(&q->args, env, s->common.history_size, s->common.room_ttl,
			       refresh_due(s, r)) != 0 ||
	     (send_cb && idem_args(s, q, env) != 0);
	if (rc != 0) {
		rq_free(q);
		return CONFAB_ENOMEM;
	}
	q->nkeys = 3;
	q->send_cb = send_cb;
	q->done = send_cb ? (rops_done){ .send = sdone } : (rops_done){ .publish = pdone };
	own(s, q, arg);

	if (r != NULL && r->subs_pending > 0) {
		if (r->n_held >= REDIS_MAX_HELD) {
			rq_free(q);
			return CONFAB_EUNAVAILABLE;
		}
		if (r->held_tail != NULL)
			r->held_tail->held_next = q;
		else
			r->held = q;
		r->held_tail = q;
		r->n_held++;
		return 0;
	}
	batch_send(s, q);
	return 0;
}

/* ---- direct ---- */

static void direct_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	(void)ac;
	ranswer_direct(&s->base.rops, reply, ops_lost_status(q),
		       q->send_cb ? q->done.send : NULL, q->done.status, q->arg, &q->args);
}

/* direct (`pdone`) or direct_idem (`sdone`): one of them is NULL. */
static int direct_request(redis_state *s, const confab_envelope *env, confab_status_done pdone,
			  confab_send_done sdone, void *arg)
{
	bool send_cb = sdone != NULL;
	rq *q;
	int rc = admit(s);

	if (rc != 0)
		return rc;
	q = rq_new(s, direct_reply, SCRIPT_DIRECT);
	rc = q == NULL || prefixes(s, q) ||
	     rops_direct_args(&q->args, env, s->common.presence_ttl_ms) != 0 ||
	     (send_cb && idem_args(s, q, env) != 0);
	if (rc != 0) {
		rq_free(q);
		return CONFAB_ENOMEM;
	}
	q->send_cb = send_cb;
	q->done = send_cb ? (rops_done){ .send = sdone } : (rops_done){ .status = pdone };
	own(s, q, arg);
	return rq_send_or_free(s, s->cmd, q);
}

/* The slots publish, publish_idem, direct and direct_idem (rops.h). */
ROPS_SEND_SLOTS(publish_request, direct_request)

/* ---- membership ---- */

static int ops_room_ready(void *state, const char *room, confab_status_done done, void *arg)
{
	redis_state *s = state;
	lroom *r = confab_dict_get(s->base.rooms, room);

	if (!conn_serving(s))
		return CONFAB_EUNAVAILABLE;
	if (r == NULL || (r->subs_pending == 0 && r->joins_pending == 0)) {
		done(arg, 0);  /* subscribed and recorded already */
		return 0;
	}
	return rwait_push(&r->waiting, done, arg, uv_now(s->base.loop));
}

static int ops_room_join(void *state, const char *room, const char *user)
{
	redis_state *s = state;
	lroom *r;
	int rc;

	/* Refused while down: the core then undoes its own membership, so
	 * nothing is recorded here either. */
	if (!conn_serving(s))
		return CONFAB_EUNAVAILABLE;
	rc = rops_room_add(s->base.rooms, room, user, &ops_lroom_kind, NULL, (void **)&r);
	if (rc <= 0)
		return rc;
	if (confab_dict_count(r->users) == 1)
		conn_subscribe(s, room, r);
	/* `joined` waits for the script too (room_ready): by then Redis has
	 * the user in the room's presence and has announced the join. */
	if (send_presence(s, SCRIPT_JOIN, room, user))
		r->joins_pending++;
	return 0;
}

/* After a leave: the room's last user here unsubscribes it, and it is
 * forgotten unless a subscription, a publish or a join is still pending. */
static void room_left(redis_state *s, const char *room, lroom *r, int left)
{
	if (left > 0)
		return;
	conn_unsubscribe(s, room);
	if (r->subs_pending == 0 && r->n_held == 0 && r->joins_pending == 0 && r->waiting == NULL)
		ops_lroom_free(confab_dict_remove(s->base.rooms, room));
}

/* Leaves and offlines are recorded even while down (the core does not
 * undo them) and reach Redis now or with the next reconcile. */
ROPS_LEAVE_SLOT(redis_state, room_left, SCRIPT_LEAVE)

static int ops_user_online(void *state, const char *user)
{
	redis_state *s = state;

	if (confab_dict_set(s->base.users, user, NULL) != 0)
		return CONFAB_ENOMEM;
	send_presence(s, SCRIPT_ONLINE, NULL, user);
	return 0;
}

/* A welcome waits for the user's online scripts still on their way: once
 * they are carried out, a direct from any node finds this node. */
static int ops_user_ready(void *state, const char *user, confab_status_done done, void *arg)
{
	redis_state *s = state;

	if (!conn_serving(s))
		return CONFAB_EUNAVAILABLE;
	return ronline_wait(s->base.onlines, user, done, arg, uv_now(s->base.loop));
}

static int ops_user_offline(void *state, const char *user)
{
	redis_state *s = state;

	if (!confab_dict_has(s->base.users, user))
		return 0;
	confab_dict_remove(s->base.users, user);
	send_presence(s, SCRIPT_OFFLINE, NULL, user);
	return 0;
}

/* ---- presence ---- */

static void presence_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	(void)ac;
	ranswer_presence(&s->base.rops, reply, q->done.presence, q->arg);
}

static int ops_presence(void *state, const char *room, confab_presence_done done, void *arg)
{
	redis_state *s = state;
	rq *q;
	int rc = admit(s);

	if (rc != 0)
		return rc;
	q = rq_new(s, presence_reply, -1);
	if (q == NULL || rargs_adds(&q->args, "SMEMBERS") != 0 ||
	    rargs_addf(&q->args, "%spres:%s", s->prefix, room) != 0) {
		rq_free(q);
		return CONFAB_ENOMEM;
	}
	q->done.presence = done;
	own(s, q, arg);
	return rq_send_or_free(s, s->cmd, q);
}

/* ---- history and epochs ---- */

/* The epoch a room message without one is labelled with, or NULL. */
static const char *known_epoch(const redis_state *s, const char *room)
{
	const lroom *r = confab_dict_get(s->base.rooms, room);

	return r != NULL && r->epoch[0] != '\0' ? r->epoch : NULL;
}

/* A history request's answer: history's (q->aux 0) or history_epoch's. */
static void history_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	(void)ac;
	/* the history script's last argument is the room */
	rhistory_reply(&s->base.rops, reply, q->args.argv[q->args.argc - 1],
		       q->aux ? NULL : q->done.history, q->aux ? q->done.history_epoch : NULL,
		       q->arg);
}

/* The history script for either slot; `known` is the client's epoch or
 * NULL. The caller sets the callback. NULL when out of memory. */
static rq *history_request(redis_state *s, const char *room, const char *known,
			   bool has_since, uint64_t since, size_t limit)
{
	char fresh[17];
	rq *q = rq_new(s, history_reply, SCRIPT_HISTORY);

	rops_fresh_epoch(fresh);
	if (q == NULL || record_keys(s, q, room) || prefixes(s, q) ||
	    rops_history_args(&q->args, has_since, since, limit, s->common.history_size, known,
			      s->common.room_ttl, fresh) != 0 ||
	    rargs_adds(&q->args, room)) {
		rq_free(q);
		return NULL;
	}
	q->nkeys = 3;
	return q;
}

/* history (`aux` 0) or history_epoch (1, with its callback in `done`). */
static int history_slot(redis_state *s, int aux, const char *room, const char *known,
			bool has_since, uint64_t since, size_t limit, rops_done done, void *arg)
{
	rq *q;
	int rc = admit(s);

	if (rc != 0)
		return rc;
	if ((q = history_request(s, room, known, has_since, since, limit)) == NULL)
		return CONFAB_ENOMEM;
	q->aux = aux;
	q->done = done;
	own(s, q, arg);
	return rq_send_or_free(s, s->cmd, q);
}

static int ops_history(void *state, const char *room, bool has_since, uint64_t since,
		       size_t limit, confab_history_done done, void *arg)
{
	return history_slot(state, 0, room, NULL, has_since, since, limit,
			    (rops_done){ .history = done }, arg);
}

static int ops_history_epoch(void *state, const char *room, const char *epoch, bool has_since,
			     uint64_t since, size_t limit, confab_history_epoch_done done,
			     void *arg)
{
	return history_slot(state, 1, room, epoch, has_since, since, limit,
			    (rops_done){ .history_epoch = done }, arg);
}

static void epoch_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	(void)ac;
	/* the epoch script's last argument is the room */
	ranswer_epoch(&s->base.rops, reply, q->args.argv[q->args.argc - 1], q->done.epoch, q->arg);
}

static int ops_room_epoch(void *state, const char *room, confab_epoch_done done, void *arg)
{
	redis_state *s = state;
	char fresh[17];
	rq *q;
	int rc = admit(s);

	if (rc != 0)
		return rc;
	rops_fresh_epoch(fresh);
	q = rq_new(s, epoch_reply, SCRIPT_EPOCH);
	if (q == NULL || record_keys(s, q, room) || prefixes(s, q) ||
	    rargs_addf(&q->args, "%lu", s->common.room_ttl) || rargs_adds(&q->args, fresh) ||
	    rargs_adds(&q->args, room)) {
		rq_free(q);
		return CONFAB_ENOMEM;
	}
	q->nkeys = 3;
	q->done.epoch = done;
	own(s, q, arg);
	return rq_send_or_free(s, s->cmd, q);
}

/* ---- what arrives on our channels ---- */

void ops_on_message(redis_state *s, const char *channel, const char *text, size_t len)
{
	wire_msg m;
	const char *why;

	if (wire_parse(text, len, &m, &why) != 0) {
		redis_log(s, CONFAB_LOG_WARN, "dropped a message on %s: %s", channel, why);
		return;
	}
	if (m.kind == 'p') {
		if (strcmp(channel, s->node_chan) == 0)
			conn_probe_seen(s, m.token);
	} else {
		if (m.kind == 'm') {
			if (m.env.epoch != NULL)
				rops_remember_epoch(&s->base.rops, m.env.room, m.env.epoch);
			else
				m.env.epoch = known_epoch(s, m.env.room);
		}
		s->base.host->backplane->deliver(s->base.ctx, &m.env);
	}
	wire_msg_clear(&m);
}

const confab_backplane_ops redis_backplane_ops =
	ROPS_SLOT_TABLE(ops_presence, ops_history, ops_room_epoch, ops_history_epoch);
