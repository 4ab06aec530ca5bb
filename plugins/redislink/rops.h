/* The local bookkeeping both Redis backplanes keep alike: this node's
 * rooms and the joins that wait for them, the epochs and link
 * generations they make, the arguments they build from it (the
 * reconcile's lists, idempotency keys, history), and the slots that are
 * the same code in both.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_ROPS_H
#define CONFAB_ROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <confab/dict.h>
#include <confab/plugin.h>

#include "rargs.h"

/* The core's callback of a request, by the slot it came through. */
typedef union rops_done {
	confab_publish_done publish;
	confab_status_done status;
	confab_presence_done presence;
	confab_history_done history;
	confab_history_epoch_done history_epoch;
	confab_epoch_done epoch;
	confab_send_done send;
} rops_done;

/* A join waiting for its room (room_ready): a list, newest first. */
typedef struct rwait {
	struct rwait *next;
	confab_status_done done;
	void *arg;
	uint64_t since;              /* uv_now when it began to wait */
} rwait;

/* Add a waiter. 0 or CONFAB_ENOMEM. */
int rwait_push(rwait **list, confab_status_done done, void *arg, uint64_t since);
/* Answer every waiter with `status`, oldest first. The list is taken
 * (*list is NULL) before the first answer: an answer may change the room
 * that held it. */
void rwait_answer_all(rwait **list, int status);
/* Free the waiters without answering (they were answered already). */
void rwait_free_all(rwait **list);

/* 64 random bits as 16 hex digits: the epoch a script gives a room it
 * creates. */
void rops_fresh_epoch(char out[17]);
/* A link's generation after `last`: the wall clock in ms, or last + 1
 * when the clock is not past it (a restart keeps going up). */
uint64_t rops_next_gen(uint64_t last);

/* How a backplane's room values (its lroom) are made and freed, and
 * where in them the fields that rops reads are. */
typedef struct rops_room_kind {
	void *(*make)(void *ctx);    /* a new one, NULL when out of memory */
	void (*drop)(void *value);
	size_t users_at;             /* offsetof its confab_dict *users: this node's users in it */
	size_t epoch_at;             /* offsetof its char epoch[CONFAB_EPOCH_MAX + 1]: the
				      * room's epoch as last heard */
} rops_room_kind;

/* What the shared answer helpers need of a backplane instance: how to
 * log, what errors mean, and its local rooms. */
typedef struct rops_ctx {
	const confab_host *host;
	confab_ctx *ctx;
	bool redirects;              /* MOVED and ASK mean "not now" (rreply.h) */
	confab_dict *rooms;
	const rops_room_kind *kind;
} rops_ctx;

/* The room's epoch, as a reply named it, kept for labelling the room's
 * messages that come without one; nothing for a room not kept here or a
 * NULL epoch. */
void rops_remember_epoch(const rops_ctx *rc, const char *room, const char *epoch);

/* `user` of this node joins `room` of `rooms`, whose value is made (with
 * `make_ctx`) when there is none; *value is the room's. 1 when the user
 * is new in the room, 0 when already in it, CONFAB_ENOMEM when out of
 * memory (then nothing changed). */
int rops_room_add(confab_dict *rooms, const char *room, const char *user,
		  const rops_room_kind *kind, void *make_ctx, void **value);

/* `user` of this node leaves `room` of `rooms`; *value is the room's
 * (NULL when unknown). -1 when the user was not in it (nothing done),
 * else how many of this node's users remain in it. */
int rops_room_remove(confab_dict *rooms, const char *room, const char *user,
		     const rops_room_kind *kind, void **value);

/* The reconcile's lists, appended to `a`: how many "ROOM<TAB>USER"
 * entries, the entries, then the users. Only the rooms and users that
 * `keep_room` and `keep_user` accept are listed (NULL: all). 0 or
 * CONFAB_ENOMEM. */
typedef struct rops_filter {
	const rops_room_kind *kind;
	bool (*keep_room)(const void *room_value, void *ctx);
	bool (*keep_user)(const char *user, void *ctx);
	void *ctx;
} rops_filter;
int rops_presence_args(rargs *a, const confab_dict *rooms, const confab_dict *users,
		       const rops_filter *f);

/* The idempotency key of a send (publish_idem, direct_idem) in Redis,
 * malloc'd: PREFIX "idem:m:R/U/K" for U's message to room R with key K,
 * PREFIX "idem:d:U/T/K" for U's direct message to T; "" when the envelope
 * has no key. NULL when out of memory. */
char *rops_idem_key(const char *prefix, const confab_envelope *env);
/* The last four arguments of a send with an idempotency key: the key
 * (`ik`, rops_idem_key's), the window in seconds, the message's id and
 * ts (ranswer_send reads those two back). 0 or CONFAB_ENOMEM. */
int rops_idem_args(rargs *a, const char *ik, unsigned long window, const confab_envelope *env);

/* The publish script's ARGV[3..10], the same in both backplanes: the
 * room, the message's two head halves and body (rwire.h), history_size,
 * room_ttl, a fresh epoch, and "1" when the node asks for the room's
 * record to be refreshed (`refresh`). 0 or CONFAB_ENOMEM. */
int rops_publish_args(rargs *a, const confab_envelope *env, size_t history_size,
		      unsigned long room_ttl, bool refresh);

/* The direct script's ARGV[3..5]: the user, the message's text (rwire.h),
 * presence_ttl in ms. 0 or CONFAB_ENOMEM. */
int rops_direct_args(rargs *a, const confab_envelope *env, unsigned presence_ttl_ms);

/* The history script's ARGV[3..9] (rscript.h's RSCRIPT_HISTORY_HEAD):
 * has_since, since, limit, history_size, the epoch the client knows
 * (NULL: none), room_ttl, a fresh epoch. 0 or CONFAB_ENOMEM. */
int rops_history_args(rargs *a, bool has_since, uint64_t since, size_t limit,
		      size_t history_size, const char *known, unsigned long room_ttl,
		      const char *fresh);

/* Defines a backplane's four send slots as static functions, ops_publish,
 * ops_publish_idem, ops_direct and ops_direct_idem, over its two request
 * makers: publish_request(state, env, publish_done, send_done, arg) and
 * direct_request(state, env, status_done, send_done, arg), each given
 * one callback and NULL for the other (send_done: the _idem slot). */
#define ROPS_SEND_SLOTS(publish_request, direct_request) \
	ROPS_SLOT_(ops_publish, confab_publish_done, publish_request, done, NULL) \
	ROPS_SLOT_(ops_publish_idem, confab_send_done, publish_request, NULL, done) \
	ROPS_SLOT_(ops_direct, confab_status_done, direct_request, done, NULL) \
	ROPS_SLOT_(ops_direct_idem, confab_send_done, direct_request, NULL, done)
#define ROPS_SLOT_(name, done_type, maker, first, second) \
	static int name(void *state, const confab_envelope *env, done_type done, void *arg) \
	{ \
		return maker(state, env, first, second, arg); \
	}

/* Defines a backplane's room_leave slot as the static function
 * ops_room_leave, over its state type `state_type` (whose base holds the
 * rooms, of type lroom and kind ops_lroom_kind) and two functions of its
 * own: room_left(state, room, value, left) after the user is taken out
 * (left: how many of this node's users remain in the room) and
 * send_presence(state, leave_script, room, user). Nothing is done when
 * the user was not in the room. */
#define ROPS_LEAVE_SLOT(state_type, room_left, leave_script) \
	static int ops_room_leave(void *state, const char *room, const char *user) \
	{ \
		state_type *s = state; \
		lroom *r; \
		int left = rops_room_remove(s->base.rooms, room, user, &ops_lroom_kind, \
					    (void **)&r); \
		if (left < 0) \
			return 0; \
		room_left(s, room, r, left); \
		send_presence(s, leave_script, room, user); \
		return 0; \
	}

/* A backplane's slot table (a confab_backplane_ops initialiser): the
 * four send slots of ROPS_SEND_SLOTS; the membership slots, which each
 * backplane names ops_room_join, ops_room_leave, ops_user_online,
 * ops_user_offline, ops_room_ready and ops_user_ready; and its queries,
 * named here. */
#define ROPS_SLOT_TABLE(presence_, history_, room_epoch_, history_epoch_) \
	{ \
		.size = sizeof(confab_backplane_ops), \
		.publish = ops_publish, \
		.direct = ops_direct, \
		.publish_idem = ops_publish_idem, \
		.direct_idem = ops_direct_idem, \
		.room_join = ops_room_join, \
		.room_leave = ops_room_leave, \
		.user_online = ops_user_online, \
		.user_offline = ops_user_offline, \
		.room_ready = ops_room_ready, \
		.user_ready = ops_user_ready, \
		.presence = presence_, \
		.history = history_, \
		.room_epoch = room_epoch_, \
		.history_epoch = history_epoch_, \
	}

#endif /* CONFAB_ROPS_H */
