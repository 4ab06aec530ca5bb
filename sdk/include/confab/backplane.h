/* confab plugin SDK — the backplane kind.
 *
 * The backplane is where rooms live beyond one node: it orders each room's
 * messages (assigns `seq`), keeps history, knows who is present anywhere,
 * and carries envelopes to every node, this one included. The core keeps
 * only its local sessions.
 *
 * One path for every message: the core never delivers a room message to
 * its own sessions directly. It calls publish(); the backplane assigns the
 * seq and hands the envelope back through host->deliver() on every node,
 * in seq order. Local and remote members are served by the same code.
 *
 * With no backplane plugin in the chain, the core uses a built-in
 * in-process backplane that implements these same operations for one node.
 *
 * What the core tells the backplane about its local sessions:
 *   - user_online/user_offline: the first session of a user opened on this
 *     node / the last one closed (for direct messages and `offline`);
 *   - room_join/room_leave: the first session of a user on this node joined
 *     a room / the last one left it. The backplane counts these across
 *     nodes and delivers a MEMBER_JOIN envelope when the user is first
 *     present in the room anywhere, MEMBER_LEAVE when last gone.
 *     A node wants a room's envelopes while any of its users is in it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_BACKPLANE_H
#define CONFAB_BACKPLANE_H

#include <stdbool.h>
#include <confab/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum confab_envelope_kind {
	CONFAB_ENV_MESSAGE = 1,      /* a room message */
	CONFAB_ENV_DIRECT = 2,       /* a direct message to a user */
	CONFAB_ENV_MEMBER_JOIN = 3,  /* `from` is now present in `room` */
	CONFAB_ENV_MEMBER_LEAVE = 4  /* `from` is no longer present in `room` */
} confab_envelope_kind;

/* What travels between nodes. All pointers are borrowed for the duration
 * of the call that receives the envelope; NULL where a field does not
 * apply to the kind. Names (room, users, ids) are short NUL-terminated
 * strings without control characters; `body` is JSON text of `body_len`
 * bytes, not NUL-terminated. */
typedef struct confab_envelope {
	uint32_t size;               /* sizeof(confab_envelope) */
	uint32_t kind;               /* a confab_envelope_kind */
	const char *room;            /* MESSAGE, MEMBER_* */
	const char *from;            /* MESSAGE, DIRECT: sender; MEMBER_*: the user */
	const char *to;              /* DIRECT: the addressed user */
	const char *id;              /* MESSAGE, DIRECT: unique message id */
	const char *origin;          /* MESSAGE, DIRECT: sending session's id (it gets an ack, not a copy) */
	const char *body;            /* MESSAGE, DIRECT: JSON text */
	size_t body_len;
	uint64_t seq;                /* MESSAGE: 1, 2, ... per room; 0 when publishing */
	int64_t ts;                  /* MESSAGE, DIRECT: ms since the epoch, set by the sending node */

	/* ---- ABI 1.3 ---- */

	/* MESSAGE: the room's epoch when the message was ordered (see
	 * room_epoch below); NULL when publishing or when the backplane does
	 * not know one. Read it only when CONFAB_HAS(env, epoch): an envelope
	 * of a backplane built before 1.3 is shorter. */
	const char *epoch;

	/* ---- ABI 1.4 ---- */

	/* MESSAGE, DIRECT when publishing: the sender's idempotency key
	 * (CONFAB_IDEM_MAX bytes at most of A-Z a-z 0-9 _ . : -), NULL when
	 * the client sent none. See publish_idem. NULL on delivery. Read it
	 * only when CONFAB_HAS(env, idem). */
	const char *idem;
} confab_envelope;

/* The longest idempotency key a client may send. */
#define CONFAB_IDEM_MAX 64

/* A room's epoch is a short id (at most CONFAB_EPOCH_MAX bytes of
 * [0-9a-z], NUL-terminated) that names one life of the room's record: its
 * seq, its history and the epoch itself are created together, the first
 * time the room is used, and expire together after [broker] room_ttl
 * seconds without activity. A room used again after that starts at seq 1
 * under a new epoch, so a client that sees the epoch change knows that
 * the seqs it remembers mean nothing any more. Random 64 bits as 16 hex
 * digits in confab's backplanes. */
#define CONFAB_EPOCH_MAX 32

/* Completion callbacks. Each is called exactly once per accepted request
 * (a request whose slot returned 0), possibly before the slot returns.
 * `status` is 0 or a negative CONFAB_E* code. Arrays and strings are
 * borrowed for the duration of the callback. */
typedef void (*confab_publish_done)(void *arg, int status, uint64_t seq);
typedef void (*confab_status_done)(void *arg, int status);
typedef void (*confab_presence_done)(void *arg, int status,
				     const char *const *users, size_t n_users);
/* `messages` are MESSAGE envelopes, oldest first. `truncated` is true when
 * messages that the request asked for were already dropped from history. */
typedef void (*confab_history_done)(void *arg, int status,
				    const confab_envelope *messages,
				    size_t n_messages, bool truncated);
/* ABI 1.3. `epoch` is the room's epoch (borrowed), NULL when the status
 * is not 0. */
typedef void (*confab_epoch_done)(void *arg, int status, const char *epoch);
/* ABI 1.3: history_done, with the room's epoch at the time of the answer
 * (borrowed; NULL when the status is not 0). */
typedef void (*confab_history_epoch_done)(void *arg, int status,
					  const confab_envelope *messages,
					  size_t n_messages, bool truncated,
					  const char *epoch);

/* ABI 1.4: a send's completion. `id` and `ts` are those of the message
 * the request stands for: env->id and env->ts when this request made it,
 * the first one's on an idempotent repeat (borrowed). `seq` is its seq
 * (MESSAGE; 0 for DIRECT). On a status other than 0 they are env's. */
typedef void (*confab_send_done)(void *arg, int status, uint64_t seq, const char *id,
				 int64_t ts);

/* Entry points of the core for backplanes (part of confab_host). */
typedef struct confab_host_backplane {
	uint32_t size;               /* sizeof(confab_host_backplane) */

	/* Deliver an envelope to this node's sessions: MESSAGE to the members
	 * of the room (except the origin session), DIRECT to the sessions of
	 * `to`, MEMBER_* to the members of the room (except the user's own
	 * sessions). `env` is borrowed. Room messages must be delivered in seq
	 * order. May be called from inside any backplane slot. */
	void (*deliver)(confab_ctx *ctx, const confab_envelope *env);

	/* Report health: up = true when the backplane can serve. `reason`
	 * (borrowed, may be NULL) is logged when the state changes. The core
	 * answers `unavailable` to requests and /readyz turns 503 while down. */
	void (*health)(confab_ctx *ctx, bool up, const char *reason);

	/* ---- ABI 1.5 (present when CONFAB_HAS(host->backplane, degraded)) ---- */

	/* Report that the backplane, while up, serves only part of what it
	 * should (a Redis Cluster shard without a master, say): /readyz
	 * answers 503 with `reason` while degraded, but the core keeps passing
	 * requests to the backplane, which answers `unavailable` to those it
	 * cannot serve. Logged when the state changes. Meaningful only while
	 * up; health(false) overrides it. */
	void (*degraded)(confab_ctx *ctx, bool degraded, const char *reason);
} confab_host_backplane;

/* What a backplane implements besides the lifecycle. Every slot returns 0
 * when accepted or a negative code (CONFAB_EUNAVAILABLE when it cannot
 * serve now); on a negative return its callback is never called. */
typedef struct confab_backplane_ops {
	uint32_t size;               /* sizeof(confab_backplane_ops) */

	/* Order a room message: assign the next seq of env->room, keep it in
	 * history (capped at the broker's history_size), then deliver it on
	 * every node, this one included, and call done with the seq. `env` is
	 * borrowed; env->seq is 0. */
	int (*publish)(void *state, const confab_envelope *env,
		       confab_publish_done done, void *arg);

	/* Carry a direct message to every session of env->to on every node.
	 * done(CONFAB_EOFFLINE) when the user has no session anywhere. */
	int (*direct)(void *state, const confab_envelope *env,
		      confab_status_done done, void *arg);

	/* See the file comment. `room` and `user` are borrowed. */
	int (*room_join)(void *state, const char *room, const char *user);
	int (*room_leave)(void *state, const char *room, const char *user);
	int (*user_online)(void *state, const char *user);
	int (*user_offline)(void *state, const char *user);

	/* The users present in `room` on any node: sorted, each once. */
	int (*presence)(void *state, const char *room,
			confab_presence_done done, void *arg);

	/* Room history: messages with seq > since (when has_since), oldest
	 * first, at most `limit`; without since, the last `limit` messages. */
	int (*history)(void *state, const char *room, bool has_since,
		       uint64_t since, size_t limit,
		       confab_history_done done, void *arg);

	/* ---- ABI 1.2, optional ---- */

	/* Call done(0) once this node receives `room`'s envelopes: at once
	 * when it does already, or when the subscription that room_join
	 * started is confirmed (Redis: the SUBSCRIBE's reply). The core calls
	 * it after every join of a local session (a repeated join of a room
	 * the session is in too) and answers the client's `join` only then,
	 * so that a message published after a client got `joined` reaches
	 * it. A backplane that records presence remotely (Redis) also waits
	 * here for the record of the join room_join started, so that
	 * `joined` means the user is present everywhere.
	 * done(CONFAB_EUNAVAILABLE), or another negative code, when the
	 * backplane lost its link meanwhile or could not record the join
	 * (the core then answers the error and undoes the join, with
	 * room_leave when it was the user's last session in the room). A
	 * backplane that cannot tell whose join failed may fail every join
	 * of the room still waiting. `room` is borrowed. Returns 0 (done will be
	 * called, possibly before this returns) or a negative code (done is
	 * not called). A backplane without it (the embedded one) is taken to
	 * receive a room's envelopes as soon as room_join returns. */
	int (*room_ready)(void *state, const char *room,
			  confab_status_done done, void *arg);

	/* ---- ABI 1.3, optional (both or neither) ---- */

	/* Rooms expire: a room's record (seq, history, epoch) is dropped
	 * after [broker] room_ttl seconds (host->broker_get("room_ttl"); 0 =
	 * never) in which nobody published to it, joined it or read its
	 * history (a backplane may keep it a little longer, never shorter:
	 * Redis up to room_ttl/16). Each of those refreshes it, and each
	 * creates the record anew, under a new epoch, when there is none.
	 * Presence is not part of the record: it lasts as long as the
	 * members do.
	 *
	 * room_epoch: call done(0, epoch) with `room`'s epoch, creating the
	 * record when the room has none (a join is activity). The core calls
	 * it for every join of a local session, after room_ready, and puts
	 * the epoch in the client's `joined`. `room` is borrowed. Returns 0
	 * (done will be called, possibly before this returns) or a negative
	 * code (done is not called). */
	int (*room_epoch)(void *state, const char *room,
			  confab_epoch_done done, void *arg);

	/* history_epoch: history, atomically with the room's epoch (which
	 * it creates, as room_epoch does, when the room has none). `epoch`
	 * (borrowed; NULL when the client sent none) is the epoch the client
	 * knows: when it differs from the room's, `since` is ignored, the
	 * answer starts at the oldest message kept and `truncated` is true.
	 * Otherwise the answer is history's. done gets the room's epoch. The
	 * core uses it instead of history when the backplane has it. */
	int (*history_epoch)(void *state, const char *room, const char *epoch,
			     bool has_since, uint64_t since, size_t limit,
			     confab_history_epoch_done done, void *arg);

	/* ---- ABI 1.4, optional (both or neither) ---- */

	/* Idempotent sends. publish_idem is publish, and direct_idem direct,
	 * with env->idem honoured and the outcome said exactly; the core uses
	 * them instead of publish and direct when the backplane has them.
	 *
	 * When env->idem is not NULL, the first request with that key is
	 * remembered for [broker] idem_window seconds (host->broker_get(
	 * "idem_window"); at least that long, a backplane may keep it a
	 * little longer). The key's scope is (room, sender) for a MESSAGE
	 * and (sender, recipient) for a DIRECT. A repeat within the window
	 * stores nothing, delivers nothing, and calls done(0) with the first
	 * request's seq, id and ts (a repeat of a DIRECT that went to nobody
	 * is a new request). Checking and remembering are one atomic step
	 * with the ordering: two nodes cannot both take the same key.
	 *
	 * done(CONFAB_EUNKNOWN) when the request was sent on and its answer
	 * was lost (the link broke): it may have been done; the core tells
	 * the client so with the id it would have. CONFAB_EUNAVAILABLE only
	 * when it certainly was not done. `env` is borrowed. */
	int (*publish_idem)(void *state, const confab_envelope *env,
			    confab_send_done done, void *arg);
	int (*direct_idem)(void *state, const confab_envelope *env,
			   confab_send_done done, void *arg);

	/* ---- ABI 1.8, optional ---- */

	/* Call done(0) once this node's user_online for `user`, and every
	 * earlier presence change of that user here, is visible to every
	 * node: a `direct` sent from any node from then on finds this node.
	 * At once when nothing of the user's is pending. The core calls it
	 * after admitting every local session (a user's second session too:
	 * its welcome must not overtake the first one's online) and sends the
	 * client's `welcome` only then, so that a client told it is in can
	 * be sent a direct at once. done(CONFAB_EUNAVAILABLE), or another
	 * negative code, when that cannot be known now (the link went down,
	 * the backplane is being destroyed): the core then welcomes the
	 * client anyway (the session works here, and the backplane registers
	 * the user when it can, as for a user_online made while down).
	 * `user` is borrowed. Returns 0 (done will be called, possibly before
	 * this returns) or a negative code (done is not called; the core
	 * welcomes at once). A backplane without it (the embedded one, which
	 * is local) is taken to find the user as soon as user_online
	 * returns. */
	int (*user_ready)(void *state, const char *user,
			  confab_status_done done, void *arg);
} confab_backplane_ops;

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_BACKPLANE_H */
