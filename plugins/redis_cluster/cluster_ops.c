/* The backplane slots, and this node's bookkeeping: the `redis` plugin's
 * (plugins/redis/redis_ops.c), per partition.
 *
 * Bookkeeping: users with a session here, and per room this node's users
 * in it, kept whatever the cluster's state, so that a new master of a
 * partition (a promoted replica, a new link) can be told this node's part
 * of it again (the reconcile of that partition).
 *
 * A partition is subscribed while this node has a member in one of its
 * rooms or a user in it (`need`). What arrives on a partition's channel
 * for a room without members here, or for a user without a session here,
 * is dropped.
 *
 * The race that `redis` closes with held publishes is closed here per
 * partition: a publish to a room with members here waits while its
 * partition's SSUBSCRIBE is not confirmed (on a new master, after a
 * migration), so that the members here receive it.
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <confab/ratelimit.h>

#include "cluster.h"

/* ---- bookkeeping ---- */

/* A room of partition *(unsigned *)part. */
static void *lroom_new(void *part)
{
	lroom *r = calloc(1, sizeof(*r));

	if (r != NULL && (r->users = confab_dict_new()) == NULL) {
		free(r);
		return NULL;
	}
	if (r != NULL)
		r->part = *(unsigned *)part;
	return r;
}

static void lroom_free(void *p)
{
	lroom *r = p;

	if (r == NULL)
		return;
	rwait_free_all(&r->waiting);
	gap_free(r);
	confab_dict_free(r->users, NULL);
	free(r);
}

const rops_room_kind ops_lroom_kind = {
	.make = lroom_new, .drop = lroom_free,
	.users_at = offsetof(lroom, users), .epoch_at = offsetof(lroom, epoch)
};

static void need_add(cl_state *s, unsigned k)
{
	if (s->part[k].need++ == 0)
		master_sync_sub(s, k);
}

static void need_drop(cl_state *s, unsigned k)
{
	if (s->part[k].need > 0 && --s->part[k].need == 0) {
		master_sync_sub(s, k);
		/* No member here any more for the publishes that waited for
		 * the subscription: they go now. */
		if (s->part[k].n_held > 0)
			cq_release(s, k, false);
	}
}

static void room_maybe_free(cl_state *s, const char *room)
{
	lroom *r = confab_dict_get(s->base.rooms, room);

	if (r != NULL && confab_dict_count(r->users) == 0 && r->joins_pending == 0 &&
	    r->waiting == NULL)
		lroom_free(confab_dict_remove(s->base.rooms, room));
}

/* Nothing pending for the room any more (its partition subscribed, its
 * join scripts answered): the joins that waited go on. */
static void room_settle(cl_state *s, const char *room)
{
	lroom *r = confab_dict_get(s->base.rooms, room);

	if (r == NULL || r->joins_pending > 0 || s->part[r->part].sub != SUB_OK)
		return;
	if (r->waiting != NULL)
		rwait_answer_all(&r->waiting, 0);
	room_maybe_free(s, room);
}

/* The names of partition k's rooms with joins waiting (k < 0: all of
 * them), copied: answering them changes the table. */
static char **waiting_rooms(cl_state *s, int k, size_t *n, uint64_t older_than)
{
	confab_dict_iter it;
	const char *room;
	void *value;
	char **names = NULL;
	size_t cap = 0;

	*n = 0;
	RBASE_EACH(it, s->base.rooms, room, value) {
		lroom *r = value;
		bool old = false;

		if (r->waiting == NULL || (k >= 0 && r->part != (unsigned)k))
			continue;
		for (rwait *w = r->waiting; w != NULL; w = w->next)
			old = old || w->since < older_than;
		if (older_than != UINT64_MAX && !old)
			continue;
		if (*n == cap) {
			char **more = realloc(names, (cap ? cap * 2 : 8) * sizeof(*names));

			if (more == NULL)
				break;
			names = more;
			cap = cap ? cap * 2 : 8;
		}
		if ((names[*n] = strdup(room)) != NULL)
			(*n)++;
	}
	return names;
}

static void send_waiting_onlines(cl_state *s, unsigned k);

void ops_part_subscribed(cl_state *s, unsigned k)
{
	size_t n;
	char **names = waiting_rooms(s, (int)k, &n, UINT64_MAX);

	for (size_t i = 0; i < n; i++) {
		room_settle(s, names[i]);
		free(names[i]);
	}
	free(names);
	cq_release(s, k, false);
	gap_resubscribed(s, k);
	send_waiting_onlines(s, k);
}

static void fail_waiting(cl_state *s, int k, uint64_t older_than)
{
	size_t n;
	char **names = waiting_rooms(s, k, &n, older_than);

	for (size_t i = 0; i < n; i++) {
		lroom *r = confab_dict_get(s->base.rooms, names[i]);

		if (r != NULL) {
			rwait_answer_all(&r->waiting, CONFAB_EUNAVAILABLE);
			room_maybe_free(s, names[i]);
		}
		free(names[i]);
	}
	free(names);
}

/* What belongs to partition k: the reconcile lists only that, and a
 * partition's reset fails only its users' waiting welcomes. */
typedef struct part_filter {
	cl_state *s;
	unsigned k;
} part_filter;

static bool room_in_part(const void *room_value, void *ctx)
{
	return ((const lroom *)room_value)->part == ((part_filter *)ctx)->k;
}

static bool user_in_part(const char *user, void *ctx)
{
	part_filter *pf = ctx;

	return part_of(pf->s, user) == pf->k;
}

/* Welcomes waiting for an online of partition k's users (k < 0: any)
 * since before `older_than` are told it is not known now. */
static void fail_onlines(cl_state *s, int k, uint64_t older_than)
{
	part_filter pf = { s, (unsigned)k };

	ronline_fail(s->base.onlines, k >= 0 ? user_in_part : NULL, &pf, older_than, false);
}

void ops_part_reset(cl_state *s, unsigned k, bool fail)
{
	/* Held publishes keep waiting (they were not sent: they go to the
	 * new owner, or fail at their deadline); joins fail as in `redis`,
	 * and so do welcomes waiting for an online (the core welcomes them
	 * anyway: the reconcile of the new link registers the users). */
	if (fail) {
		fail_waiting(s, (int)k, UINT64_MAX);
		fail_onlines(s, (int)k, UINT64_MAX);
	}
}

void ops_tick(cl_state *s)
{
	uint64_t n = uv_now(s->base.loop);

	if (n - s->waits_checked < 1000 || n < s->common.probe_timeout_ms)
		return;
	s->waits_checked = n;
	fail_waiting(s, -1, n - s->common.probe_timeout_ms);
	fail_onlines(s, -1, n - s->common.probe_timeout_ms);
}

void ops_free(cl_state *s)
{
	rbase_free_tables(&s->base);
}

/* ---- requests ---- */

int ops_reply_status(cl_state *s, const char *what, const redisReply *reply)
{
	return rreply_status(s->base.host, s->base.ctx, what, reply, true);
}

int ops_admit(cl_state *s, unsigned k)
{
	if (!topo_served(s, k))
		return CONFAB_EUNAVAILABLE;
	return rbase_admit(&s->base, CL_MAX_INFLIGHT, "the cluster");
}

void ops_own(cl_state *s, cq *q, void *arg)
{
	q->core = true;
	q->arg = arg;
	s->base.n_core++;
}

int ops_record_keys(const cl_state *s, cq *q, const char *room)
{
	const char *P = s->part[q->part].prefix;

	return rargs_addf(&q->args, "%sroom:%s:seq", P, room) ||
	       rargs_addf(&q->args, "%sroom:%s:hist", P, room) ||
	       rargs_addf(&q->args, "%sroom:%s:epoch", P, room) ? CONFAB_ENOMEM : 0;
}

/* The keys a script declares: every key of its partition that it reads
 * or writes, where they can be named in advance. Redis Cluster checks the
 * declared keys before running a script: while the partition's slot
 * migrates, a script whose keys are not all on one side gets ASK or
 * TRYAGAIN instead of running half here, half with keys that moved. (The
 * heartbeat, reconcile and goodbye also touch the keys of other nodes
 * they find; they are idempotent, and retried.) `room` or `user` NULL
 * when the script has none; the node's generation key is always there. */
static int node_keys(const cl_state *s, cq *q, const char *room, const char *user)
{
	const char *P = s->part[q->part].prefix, *N = s->node_id;
	int rc;

	q->nkeys = 2;
	rc = rargs_addf(&q->args, "%snode:%s:gen", P, N) || rargs_addf(&q->args, "%snodes", P);
	if (rc == 0 && room != NULL) {
		q->nkeys += 3;
		rc = rargs_addf(&q->args, "%spres:%s", P, room) ||
		     rargs_addf(&q->args, "%spres:%s/%s", P, room, user) ||
		     rargs_addf(&q->args, "%snode:%s:pres", P, N);
	} else if (rc == 0 && user != NULL) {
		q->nkeys += 2;
		rc = rargs_addf(&q->args, "%suser:%s", P, user) ||
		     rargs_addf(&q->args, "%snode:%s:users", P, N);
	}
	return rc ? CONFAB_ENOMEM : 0;
}

int ops_prefixes(const cl_state *s, cq *q)
{
	return rargs_adds(&q->args, s->part[q->part].prefix) ||
	       rargs_adds(&q->args, s->part[q->part].channel)
		       ? CONFAB_ENOMEM : 0;
}

/* ---- presence changes ---- */

/* A failed script leaves its partition's record to the next heartbeat's
 * reconcile. */
static bool change_done(cl_state *s, const cq *q, const redisReply *reply)
{
	return rbase_change_done(&s->base, reply, cl_script_name[q->script], true,
				 &s->part[q->part].dirty);
}

static bool change_reply(cl_state *s, cq *q, redisReply *reply)
{
	change_done(s, q, reply);
	return true;
}

/* As in `redis`: a join not carried out fails every join of the room
 * still waiting (room_ready cannot say whose). */
static bool join_reply(cl_state *s, cq *q, redisReply *reply)
{
	const char *room = q->args.argv[q->args.argc - 2];
	bool ok = change_done(s, q, reply);
	lroom *r = confab_dict_get(s->base.rooms, room);

	if (r == NULL)
		return true;
	if (r->joins_pending > 0)
		r->joins_pending--;
	if (!ok) {
		rwait_answer_all(&r->waiting, CONFAB_EUNAVAILABLE);
		room_maybe_free(s, room);
	}
	room_settle(s, room);
	return true;
}

/* An online script answered, or was lost (reply NULL): the welcomes that
 * wait for it go on (user_ready), or are told that it is not known. */
static bool online_reply(cl_state *s, cq *q, redisReply *reply)
{
	ronline_answered(s->base.onlines, q->args.argv[q->args.argc - 1],
			 change_done(s, q, reply));
	return true;
}

/* Sent whenever the partition has a master with a link: a reconcile
 * queued before it on that link, or a newer generation, keeps the order
 * right (see the generation in plugins/redis/redis_scripts.c). */
static bool send_presence(cl_state *s, int script, const char *room, const char *user)
{
	unsigned k = part_of(s, room != NULL ? room : user);
	cmaster *m = s->part[k].owner;
	cq *q;

	if (s->destroying || m == NULL || m->cmd == NULL)
		return false;
	q = cq_new(s, script == CS_JOIN ? join_reply : change_reply, script, (int)k);
	if (q == NULL || node_keys(s, q, room, user) || ops_prefixes(s, q) ||
	    rargs_adds(&q->args, s->node_id) ||
	    rargs_addf(&q->args, "%" PRIu64, s->part[k].gen) ||
	    (room != NULL && rargs_adds(&q->args, room)) ||
	    rargs_adds(&q->args, user)) {
		cq_free(q);
		s->part[k].dirty = true;
		return false;
	}
	q->early = true;
	if (script == CS_ONLINE && ronline_sent(s->base.onlines, user) == 0)
		q->handle = online_reply;  /* called exactly once from here on */
	cq_submit(s, q);
	return true;
}

cq *ops_reconcile_request(cl_state *s, unsigned k)
{
	part_filter pf = { s, k };
	rops_filter f = { .kind = &ops_lroom_kind, .keep_room = room_in_part,
			  .keep_user = user_in_part, .ctx = &pf };
	cq *q = cq_new(s, change_reply, CS_RECONCILE, (int)k);

	if (q == NULL)
		return NULL;
	s->part[k].gen = rops_next_gen(s->part[k].gen);
	if (node_keys(s, q, NULL, NULL) || ops_prefixes(s, q) || rargs_adds(&q->args, s->node_id) ||
	    rargs_addf(&q->args, "%" PRIu64, s->part[k].gen) ||
	    rops_presence_args(&q->args, s->base.rooms, s->base.users, &f) != 0) {
		cq_free(q);
		return NULL;
	}
	return q;
}

bool ops_reconcile_refused(cl_state *s, cq *q, const redisReply *reply)
{
	unsigned long long known;
	unsigned k = (unsigned)q->part;
	cq *again;

	if (reply == NULL || reply->type != REDIS_REPLY_STRING)
		return false;
	known = strtoull(reply->str, NULL, 10);
	if (known <= s->part[k].gen)
		return true;  /* this node's own newer reconcile: it is the one that counts */
	cl_log(s, CONFAB_LOG_WARN, "partition %u knows a newer link of node %s (generation %llu, "
	       "this one %" PRIu64 "): registering again above it", k, s->node_id, known,
	       s->part[k].gen);
	if (known > s->part[k].gen)
		s->part[k].gen = known;
	again = ops_reconcile_request(s, k);
	if (again == NULL) {
		s->part[k].dirty = true;
		return true;
	}
	again->handle = q->handle;
	again->aux = q->aux;
	again->early = true;
	cq_submit(s, again);
	return true;
}

/* ---- publish ---- */

static bool refresh_due(const cl_state *s, const lroom *r)
{
	return s->common.room_ttl != 0 &&
	       (r == NULL || !r->refreshed ||
		uv_now(s->base.loop) - r->refreshed_at >= (uint64_t)s->common.room_ttl * 1000 / 32);
}

/* The publish arguments after the three keys: P, C, room, ... */
/* After the keys (3, or 4 with an idem key). */
#define PUB_REFRESH(q) ((q)->args.argv[(q)->nkeys + 9])

static int lost_status(const cq *q)
{
	return q->sent ? CONFAB_EUNKNOWN : CONFAB_EUNAVAILABLE;
}

void ops_publish_answer(cl_state *s, cq *q, int status)
{
	if (status == 0 && q->repeat == NULL && PUB_REFRESH(q)[0] == '1') {
		lroom *r = confab_dict_get(s->base.rooms, PUB_ROOM(q));

		if (r != NULL) {
			r->refreshed = true;
			r->refreshed_at = uv_now(s->base.loop);
		}
	}
	if (q->send_cb)
		ranswer_send(q->done.send, q->arg, &q->args, status, status == 0 ? q->seq : 0,
			     status == 0 ? q->repeat : NULL);
	else
		q->done.publish(q->arg, status == CONFAB_EUNKNOWN ? CONFAB_EUNAVAILABLE : status,
				status == 0 ? q->seq : 0);
}

static confab_ratelimit wait_short_log = CONFAB_RATELIMIT_INIT(1000);

/* The script's reply, then (ack_replicas > 0) WAIT's: the ack goes only
 * when ack_replicas replicas have the write. Fewer means the message is
 * on the master but could be lost in a failover: unknown, never acked. */
bool ops_publish_reply(cl_state *s, cq *q, redisReply *reply)
{
	uint64_t skipped;

	if (q->waiting) {
		if (reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
		    reply->integer >= (long long)s->ack_replicas) {
			ops_publish_answer(s, q, 0);
			return true;
		}
		if (confab_ratelimit_allow(&wait_short_log, uv_now(s->base.loop), &skipped))
			cl_log(s, CONFAB_LOG_WARN, "WAIT after a publish to room %s: %s of the %u "
			       "replicas wanted confirmed it; answering that the outcome is unknown "
			       "(%" PRIu64 " more since the last such line)", PUB_ROOM(q),
			       reply == NULL ? "the link was lost before it said how many" :
			       reply->type == REDIS_REPLY_INTEGER ? (reply->integer == 0 ? "none" : "only some")
								   : "an error said none",
			       s->ack_replicas, skipped);
		ops_publish_answer(s, q, CONFAB_EUNKNOWN);
		return true;
	}
	if (reply == NULL) {
		ops_publish_answer(s, q, lost_status(q));
		return true;
	}
	if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
		q->seq = (uint64_t)reply->integer;
	} else if (reply->type == REDIS_REPLY_STRING && q->send_cb) {
		if ((q->repeat = strdup(reply->str)) == NULL) {
			ops_publish_answer(s, q, CONFAB_EUNKNOWN);
			return true;
		}
	} else {
		ops_publish_answer(s, q, ops_reply_status(s, "publish", reply));
		return true;
	}
	if (s->ack_replicas == 0) {
		ops_publish_answer(s, q, 0);
		return true;
	}
	if (!wait_join(s, q)) {
		ops_publish_answer(s, q, CONFAB_EUNKNOWN);
		return true;
	}
	return false;
}

static bool flush_reply(cl_state *s, cq *q, redisReply *reply)
{
	static confab_ratelimit flush_log = CONFAB_RATELIMIT_INIT(1000);
	uint64_t skipped;

	if (reply == NULL && !s->destroying && uv_now(s->base.loop) < q->deadline) {
		/* Lost with its link (a failover): the flush is idempotent,
		 * so it goes again, to whoever owns the room now. */
		cq *again = cq_new(s, flush_reply, CS_FLUSH, q->part);

		if (again != NULL) {
			for (size_t i = 0; i < q->args.argc; i++)
				if (rargs_add(&again->args, q->args.argv[i],
					      q->args.argvlen[i]) != 0) {
					cq_free(again);
					return true;
				}
			again->nkeys = q->nkeys;
			again->deadline = q->deadline;
			cq_submit(s, again);
		}
		return true;
	}
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
	    confab_ratelimit_allow(&flush_log, uv_now(s->base.loop), &skipped))
		cl_log(s, CONFAB_LOG_WARN, "publishing the replicated messages of a room failed: "
		       "%s (its members' nodes read them from history at the next message; %" PRIu64
		       " more since the last such line)", reply->str, skipped);
	return true;
}

void ops_flush(cl_state *s, unsigned k, const char *const *rooms, const uint64_t *up_to,
	       size_t n)
{
	const char *P = s->part[k].prefix;
	cq *q = cq_new(s, flush_reply, CS_FLUSH, (int)k);
	int rc = q == NULL;

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = rargs_addf(&q->args, "%sroom:%s:seq", P, rooms[i]) ||
		     rargs_addf(&q->args, "%sroom:%s:hist", P, rooms[i]) ||
		     rargs_addf(&q->args, "%sroom:%s:pub", P, rooms[i]);
	rc = rc || ops_prefixes(s, q);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = rargs_addf(&q->args, "%" PRIu64, up_to[i]);
	if (rc != 0) {
		cq_free(q);
		return;   /* the next message's flush publishes these too */
	}
	q->nkeys = (unsigned)(3 * n);
	cq_defer(s, q);   /* with the other partitions of its master */
}


static int publish_request(cl_state *s, const confab_envelope *env, confab_publish_done pdone,
			   confab_send_done sdone, void *arg)
{
	unsigned k = part_of(s, env->room);
	bool send_cb = sdone != NULL;
	char *ik = NULL;
	lroom *r = confab_dict_get(s->base.rooms, env->room);
	cq *q;
	int rc = ops_admit(s, k);

	if (rc != 0)
		return rc;
	q = cq_new(s, ops_publish_reply, CS_PUBLISH, (int)k);
	if (send_cb && (ik = rops_idem_key(s->part[k].prefix, env)) == NULL) {
		cq_free(q);
		q = NULL;
	}
	rc = q == NULL || ops_record_keys(s, q, env->room) ||
	     (ik != NULL && ik[0] != '\0' && rargs_adds(&q->args, ik)) || ops_prefixes(s, q) ||
	     rops_publish_args(&q->args, env, s->common.history_size, s->common.room_ttl,
			       refresh_due(s, r)) != 0 ||
	     rargs_adds(&q->args, s->ack_replicas ? "1" : "0") ||
	     rops_idem_args(&q->args, ik != NULL ? ik : "", s->common.idem_window, env) != 0;
	if (q != NULL)
		q->nkeys = ik != NULL && ik[0] != '\0' ? 4 : 3;
	free(ik);
	if (rc != 0) {
		cq_free(q);
		return CONFAB_ENOMEM;
	}
	q->send_cb = send_cb;
	q->done = send_cb ? (rops_done){ .send = sdone } : (rops_done){ .publish = pdone };
	if (r != NULL && confab_dict_count(r->users) > 0 && s->part[k].sub != SUB_OK) {
		/* Members here would miss it: wait for the subscription. */
		if (s->part[k].n_held >= CL_MAX_HELD) {
			cq_free(q);
			return CONFAB_EUNAVAILABLE;
		}
		q->held = true;
		s->part[k].n_held++;
	}
	ops_own(s, q, arg);
	if (q->held || q->nkeys != 3)
		cq_submit(s, q);    /* held, or with an idem key: alone */
	else
		batch_add(s, q);
	return 0;
}

/* ---- direct ---- */

static bool direct_reply(cl_state *s, cq *q, redisReply *reply)
{
	ranswer_direct(&s->base.rops, reply, lost_status(q),
		       q->send_cb ? q->done.send : NULL, q->done.status, q->arg, &q->args);
	return true;
}

static int direct_request(cl_state *s, const confab_envelope *env, confab_status_done pdone,
			  confab_send_done sdone, void *arg)
{
	unsigned k = part_of(s, env->to);
	bool send_cb = sdone != NULL;
	char *ik = NULL;
	cq *q;
	int rc = ops_admit(s, k);

	if (rc != 0)
		return rc;
	q = cq_new(s, direct_reply, CS_DIRECT, (int)k);
	if (send_cb && (ik = rops_idem_key(s->part[k].prefix, env)) == NULL) {
		cq_free(q);
		q = NULL;
	}
	rc = q == NULL || rargs_addf(&q->args, "%suser:%s", s->part[k].prefix, env->to) ||
	     rargs_addf(&q->args, "%snodes", s->part[k].prefix) ||
	     (ik != NULL && ik[0] != '\0' && rargs_adds(&q->args, ik)) || ops_prefixes(s, q) ||
	     rops_direct_args(&q->args, env, s->common.presence_ttl_ms) != 0;
	if (rc == 0 && send_cb)
		rc = rops_idem_args(&q->args, ik, s->common.idem_window, env) != 0;
	if (q != NULL)
		q->nkeys = ik != NULL && ik[0] != '\0' ? 3 : 2;
	free(ik);
	if (rc != 0) {
		cq_free(q);
		return CONFAB_ENOMEM;
	}
	q->send_cb = send_cb;
	q->done = send_cb ? (rops_done){ .send = sdone } : (rops_done){ .status = pdone };
	ops_own(s, q, arg);
	cq_submit(s, q);
	return 0;
}

/* The slots publish, publish_idem, direct and direct_idem (rops.h). */
ROPS_SEND_SLOTS(publish_request, direct_request)

/* ---- membership ---- */

static int ops_room_ready(void *state, const char *room, confab_status_done done, void *arg)
{
	cl_state *s = state;
	unsigned k = part_of(s, room);
	lroom *r = confab_dict_get(s->base.rooms, room);

	if (!topo_served(s, k))
		return CONFAB_EUNAVAILABLE;
	if (r == NULL || (r->joins_pending == 0 && s->part[k].sub == SUB_OK)) {
		done(arg, 0);
		return 0;
	}
	return rwait_push(&r->waiting, done, arg, uv_now(s->base.loop));
}

static int ops_room_join(void *state, const char *room, const char *user)
{
	cl_state *s = state;
	unsigned k = part_of(s, room);
	lroom *r;
	int rc;

	if (!topo_served(s, k))
		return CONFAB_EUNAVAILABLE;
	if ((rc = rops_room_add(s->base.rooms, room, user, &ops_lroom_kind, &k, (void **)&r)) <= 0)
		return rc;
	if (confab_dict_count(r->users) == 1)
		need_add(s, k);
	if (send_presence(s, CS_JOIN, room, user))
		r->joins_pending++;
	return 0;
}

/* After a leave: the partition may no longer be needed, and the room is
 * forgotten when nothing waits for it. */
static void room_left(cl_state *s, const char *room, lroom *r, int left)
{
	if (left == 0)
		need_drop(s, r->part);
	room_maybe_free(s, room);
}

ROPS_LEAVE_SLOT(cl_state, room_left, CS_LEAVE)

/* A user's entry in s->base.users: whether its online script was sent. */
#define ONLINE_SENT ((void *)1)

/* A direct to a user is published once, on the user's partition channel:
 * a node that announced the user (user:U) before its subscription of that
 * partition was confirmed could miss one that the sender had acked. So
 * the online script waits for the subscription (ops_part_subscribed);
 * until then a direct to the user answers `offline`, as before it
 * connected. */
static int ops_user_online(void *state, const char *user)
{
	cl_state *s = state;
	unsigned k = part_of(s, user);

	if (confab_dict_has(s->base.users, user))
		return 0;
	if (confab_dict_set(s->base.users, user, NULL) != 0)
		return CONFAB_ENOMEM;
	need_add(s, k);
	if (s->part[k].sub == SUB_OK && send_presence(s, CS_ONLINE, NULL, user)) {
		confab_dict_set(s->base.users, user, ONLINE_SENT);  /* replaces: cannot fail */
	} else {
		s->part[k].onlines_waiting++;
		ronline_unsent(s->base.onlines, user, true);  /* welcomes wait for it */
	}
	return 0;
}

/* A welcome waits for the user's online: its partition's subscription,
 * then its script (ops_user_online says why). */
static int ops_user_ready(void *state, const char *user, confab_status_done done, void *arg)
{
	cl_state *s = state;

	if (!topo_served(s, part_of(s, user)))
		return CONFAB_EUNAVAILABLE;
	return ronline_wait(s->base.onlines, user, done, arg, uv_now(s->base.loop));
}

/* Partition k is subscribed: announce its users that waited for it.
 * (Their names are taken first: the table is not changed while it is
 * iterated.) */
static void send_waiting_onlines(cl_state *s, unsigned k)
{
	confab_dict_iter it;
	const char *user;
	void *value;
	char **names;
	size_t n = 0, cap = s->part[k].onlines_waiting;

	if (cap == 0 || (names = calloc(cap, sizeof(*names))) == NULL)
		return;   /* out of memory: the next reconcile registers them */
	confab_dict_iter_init(&it, s->base.users);
	while (n < cap && confab_dict_iter_next(&it, &user, &value))
		if (value == NULL && part_of(s, user) == k && (names[n] = strdup(user)) != NULL)
			n++;
	s->part[k].onlines_waiting = 0;
	for (size_t i = 0; i < n; i++) {
		if (!send_presence(s, CS_ONLINE, NULL, names[i]))
			s->part[k].onlines_waiting++;
		else  /* an existing key: cannot fail */
			confab_dict_set(s->base.users, names[i], ONLINE_SENT);
		free(names[i]);
	}
	free(names);
}

static int ops_user_offline(void *state, const char *user)
{
	cl_state *s = state;

	if (!confab_dict_has(s->base.users, user))
		return 0;
	if (confab_dict_get(s->base.users, user) == NULL) {
		if (s->part[part_of(s, user)].onlines_waiting > 0)
			s->part[part_of(s, user)].onlines_waiting--;
		ronline_unsent(s->base.onlines, user, false);  /* it never will be */
	}
	confab_dict_remove(s->base.users, user);
	need_drop(s, part_of(s, user));
	send_presence(s, CS_OFFLINE, NULL, user);
	return 0;
}

/* ---- what arrives on a partition's channel ---- */

void ops_on_message(cl_state *s, unsigned k, const char *text, size_t len)
{
	wire_msg m;
	const char *why;
	lroom *r;

	if (wire_parse(text, len, &m, &why) != 0) {
		cl_log(s, CONFAB_LOG_WARN, "dropped a message on %s: %s", s->part[k].channel, why);
		return;
	}
	switch (m.kind) {
	case 'p':
		master_probe_seen(s, m.token);
		break;
	case 'd':
		/* filtering: one channel carries the directs of many users */
		if (m.env.to != NULL && confab_dict_has(s->base.users, m.env.to))
			s->base.host->backplane->deliver(s->base.ctx, &m.env);
		break;
	default:
		/* ... and the envelopes of many rooms */
		r = m.env.room != NULL ? confab_dict_get(s->base.rooms, m.env.room) : NULL;
		if (r != NULL && confab_dict_count(r->users) > 0)
			gap_envelope(s, m.env.room, r, text, len, &m);
		break;
	}
	wire_msg_clear(&m);
}

const confab_backplane_ops cluster_backplane_ops =
	ROPS_SLOT_TABLE(query_presence, query_history, query_room_epoch, query_history_epoch);
