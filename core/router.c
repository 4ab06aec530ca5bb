/* Requests that need the backplane complete asynchronously. Their callback
 * context names the session by id, not by pointer: a session that closed
 * meanwhile is simply not found, and the answer is dropped. */
#include "router.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <confab/ratelimit.h>

#include "buf.h"
#include "counters.h"
#include "log.h"
#include "protocol.h"
#include "rooms.h"
#include "session.h"
#include "utf8.h"

/* Context of one request waiting for the backplane. */
typedef struct pending {
	broker *broker;
	char session_id[96];
	json_t *ref;                 /* own reference, or NULL */
	char room[PROTOCOL_NAME_MAX + 1];
	char after[PROTOCOL_NAME_MAX + 1];  /* presence: "" or the last user of the previous page */
	char id[96];
	int64_t ts;
	uint64_t recv_ns;            /* send, direct: when the frame came (uv_hrtime) */
	uint64_t call_ns;            /* ... and when the backplane was asked */
	bool joining;                /* a join that made the session a member */
} pending;

static const confab_backplane_ops *bp_ops(broker *b)
{
	return b->backplane->plugin.desc->backplane;
}

static void reply_error(confab_session *s, const char *code, const char *message, json_t *ref)
{
	counters_error(s->broker, code);
	session_send_take(s, protocol_error_frame(s->broker->headroom, code, message, ref));
}

static pending *pending_new(confab_session *s, const request *req)
{
	pending *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->broker = s->broker;
	snprintf(p->session_id, sizeof(p->session_id), "%s", s->id);
	if (req->ref)
		p->ref = json_incref(req->ref);
	if (req->room)
		snprintf(p->room, sizeof(p->room), "%s", req->room);
	if (req->after)
		snprintf(p->after, sizeof(p->after), "%s", req->after);
	return p;
}

static void pending_free(pending *p)
{
	if (p->ref)
		json_decref(p->ref);
	free(p);
}

/* The session a pending answer is for, if it is still here. */
static confab_session *pending_session(const pending *p)
{
	return session_find(p->broker, p->session_id);
}

/* Answers a failed backplane call. */
static void reply_backplane_error(confab_session *s, int status, json_t *ref)
{
	if (status == CONFAB_EOFFLINE)
		reply_error(s, ERR_OFFLINE, "the user has no session", ref);
	else if (status == CONFAB_EUNAVAILABLE || status == CONFAB_EUNKNOWN)
		reply_error(s, ERR_UNAVAILABLE, "the backplane is unavailable; try again", ref);
	else
		reply_error(s, ERR_INTERNAL, "the backplane failed", ref);
}

/* ---- join / leave -------------------------------------------------------- */

static void leave_room(confab_session *s, const char *room);

/* A join the backplane could not complete: undo it (unless the session
 * was a member before) and say why. */
static void join_failed(confab_session *s, const pending *p, int status)
{
	if (p->joining && confab_dict_has(s->rooms, p->room)) {
		confab_dict_remove(s->rooms, p->room);
		leave_room(s, p->room);
	}
	reply_backplane_error(s, status, p->ref);
}

/* The room's epoch is known (room_epoch): the join is complete. */
static void join_epoch(void *arg, int status, const char *epoch)
{
	pending *p = arg;
	confab_session *s = pending_session(p);

	if (s != NULL) {
		if (status == 0)
			session_send_take(s, protocol_joined(s->broker->headroom, p->room, epoch,
							     p->ref));
		else
			join_failed(s, p, status);
	}
	pending_free(p);
}

/* Answers `joined`, with the room's epoch when the backplane has one
 * (ABI 1.3); `p` is taken. */
static void answer_joined(confab_session *s, pending *p)
{
	broker *b = s->broker;
	const confab_backplane_ops *ops = bp_ops(b);

	if (CONFAB_HAS(ops, room_epoch) && ops->room_epoch != NULL) {
		int rc = ops->room_epoch(b->backplane->state, p->room, join_epoch, p);
		if (rc != 0) {
			join_failed(s, p, rc);
			pending_free(p);
		}
		return;
	}
	session_send_take(s, protocol_joined(s->broker->headroom, p->room, NULL, p->ref));
	pending_free(p);
}

/* The backplane receives the room's envelopes now (room_ready). */
static void join_ready(void *arg, int status)
{
	pending *p = arg;
	confab_session *s = pending_session(p);

	if (s == NULL) {
		pending_free(p);
	} else if (status == 0) {
		answer_joined(s, p);
	} else {
		join_failed(s, p, status);
		pending_free(p);
	}
}

/* `joined` promises the messages published from now on, and that the
 * backplane has the user in the room: with a backplane that subscribes and
 * registers (Redis), only once both are done (room_ready); a failure is
 * answered and the join undone. `p` is taken. */
static void await_ready(confab_session *s, pending *p)
{
	broker *b = s->broker;
	const confab_backplane_ops *ops = bp_ops(b);

	if (CONFAB_HAS(ops, room_ready) && ops->room_ready != NULL) {
		int rc = ops->room_ready(b->backplane->state, p->room, join_ready, p);
		if (rc != 0) {
			join_failed(s, p, rc);
			pending_free(p);
		}
		return;
	}
	answer_joined(s, p);
}

/* A join that would make this node hold more than max_rooms rooms. The
 * refusal is logged at most once a second: any client can cause it. */
static bool over_max_rooms(confab_session *s, const char *room)
{
	static confab_ratelimit refused_log = CONFAB_RATELIMIT_INIT(1000);
	broker *b = s->broker;
	size_t max = b->cfg.broker.max_rooms;
	uint64_t skipped;

	if (max == 0 || rooms_members(b->rooms, room) != NULL || rooms_count(b->rooms) < max)
		return false;
	if (confab_ratelimit_allow(&refused_log, uv_now(&b->loop), &skipped))
		log_line(CONFAB_LOG_WARN, "router", "this node holds max_rooms = %zu rooms: refused "
			 "%s (%s from %s) a new room (%" PRIu64 " more since the last line)",
			 max, s->id, s->user, s->remote, skipped);
	return true;
}

static void handle_join(confab_session *s, const request *req)
{
	broker *b = s->broker;
	if (!session_may_use_room(s, req->room)) {
		reply_error(s, ERR_FORBIDDEN, "you may not use this room", req->ref);
		return;
	}
	pending *p = pending_new(s, req);
	if (!p) {
		reply_error(s, ERR_INTERNAL, "out of memory", req->ref);
		return;
	}
	if (confab_dict_has(s->rooms, req->room)) {
		/* A member already, or a join of this session still waiting:
		 * the same answer as that join's, when it comes. */
		await_ready(s, p);
		return;
	}
	size_t max_rooms = b->cfg.broker.max_rooms_per_session;
	if (max_rooms && confab_dict_count(s->rooms) >= max_rooms) {
		char msg[80];
		snprintf(msg, sizeof(msg), "a session may be in at most %zu rooms", max_rooms);
		reply_error(s, ERR_FORBIDDEN, msg, req->ref);
		pending_free(p);
		return;
	}
	if (over_max_rooms(s, req->room)) {
		reply_error(s, ERR_UNAVAILABLE, "this node holds as many rooms as it may; "
			    "try again later", req->ref);
		pending_free(p);
		return;
	}
	if (confab_dict_set(s->rooms, req->room, NULL) != 0) {
		reply_error(s, ERR_INTERNAL, "out of memory", req->ref);
		pending_free(p);
		return;
	}
	int flags = rooms_join(b->rooms, req->room, s->id, s->user, s);
	if (flags < 0) {
		confab_dict_remove(s->rooms, req->room);
		reply_error(s, ERR_INTERNAL, "out of memory", req->ref);
		pending_free(p);
		return;
	}
	if (flags & ROOMS_USER_FIRST) {
		int rc = b->backplane_up ? bp_ops(b)->room_join(b->backplane->state, req->room, s->user)
					 : CONFAB_EUNAVAILABLE;
		if (rc != 0) {
			rooms_leave(b->rooms, req->room, s->id, s->user);
			confab_dict_remove(s->rooms, req->room);
			reply_backplane_error(s, rc, req->ref);
			pending_free(p);
			return;
		}
	}
	p->joining = true;
	await_ready(s, p);
}

/* Leaves one room; tells the backplane when the user's last session here left. */
static void leave_room(confab_session *s, const char *room)
{
	broker *b = s->broker;
	int flags = rooms_leave(b->rooms, room, s->id, s->user);
	if (flags & ROOMS_USER_LAST) {
		int rc = bp_ops(b)->room_leave(b->backplane->state, room, s->user);
		if (rc != 0)
			log_line(CONFAB_LOG_WARN, "router", "backplane could not record %s leaving %s (%d)",
				 s->user, room, rc);
	}
}

static void handle_leave(confab_session *s, const request *req)
{
	if (confab_dict_has(s->rooms, req->room)) {
		confab_dict_remove(s->rooms, req->room);
		leave_room(s, req->room);
	}
	session_send_take(s, protocol_simple(s->broker->headroom, "left", req->room, req->ref));
}

void router_leave_all(confab_session *s)
{
	confab_dict_iter it;
	const char *room;
	confab_dict_iter_init(&it, s->rooms);
	while (confab_dict_iter_next(&it, &room, NULL))
		leave_room(s, room);
	/* the names go with the table; the session is about to go too */
	confab_dict_free(s->rooms, NULL);
	s->rooms = confab_dict_new();
}

/* ---- send / direct ------------------------------------------------------- */

static void make_id(broker *b, char *out, size_t len)
{
	snprintf(out, len, "%s.%s.m%" PRIu64, b->cfg.broker.node_id, b->run_id, ++b->next_message);
}

/* An ack goes out for `p` (to a session still here): count it and time it. */
static void acked(const pending *p)
{
	metrics_inc(&p->broker->metrics, p->broker->counters.acks);
	counters_since(p->broker, p->broker->counters.send_ack_seconds, p->recv_ns);
}

static void publish_done(void *arg, int status, uint64_t seq)
{
	pending *p = arg;
	confab_session *s = pending_session(p);
	counters_since(p->broker, p->broker->counters.publish_seconds, p->call_ns);
	if (s && status == 0)
		acked(p);
	if (s) {
		if (status == 0)
			session_send_take(s, protocol_ack_room(s->broker->headroom, p->room, seq,
							       p->id, p->ts, p->ref));
		else
			reply_backplane_error(s, status, p->ref);
	}
	pending_free(p);
}

static void direct_done(void *arg, int status)
{
	pending *p = arg;
	confab_session *s = pending_session(p);
	counters_since(p->broker, p->broker->counters.publish_seconds, p->call_ns);
	if (s && status == 0)
		acked(p);
	if (s) {
		if (status == 0)
			session_send_take(s, protocol_ack_direct(s->broker->headroom, p->id, p->ts,
								 p->ref));
		else
			reply_backplane_error(s, status, p->ref);
	}
	pending_free(p);
}

/* ABI 1.4 (publish_idem, direct_idem): the ack names the message the
 * request stands for, the first one's on an idempotent repeat; a lost
 * answer says that the message may exist, and under which id. */
static void send_done(void *arg, int status, uint64_t seq, const char *id, int64_t ts)
{
	pending *p = arg;
	confab_session *s = pending_session(p);
	counters_since(p->broker, p->broker->counters.publish_seconds, p->call_ns);
	if (s && status == 0)
		acked(p);
	if (s) {
		if (status == 0 && p->room[0])
			session_send_take(s, protocol_ack_room(s->broker->headroom, p->room, seq,
							       id, ts, p->ref));
		else if (status == 0)
			session_send_take(s, protocol_ack_direct(s->broker->headroom, id, ts, p->ref));
		else if (status == CONFAB_EUNKNOWN) {
			counters_error(s->broker, ERR_UNAVAILABLE);
			session_send_take(s, protocol_error_unknown(s->broker->headroom,
				"the backplane's link broke before it answered: the message may "
				"have been stored under this id; check history or send again with "
				"the same idem", p->id, p->ref));
		}
		else
			reply_backplane_error(s, status, p->ref);
	}
	pending_free(p);
}

/* The backplane has idempotent sends (ABI 1.4). */
static bool has_idem(const confab_backplane_ops *ops)
{
	return CONFAB_HAS(ops, direct_idem) && ops->publish_idem != NULL &&
	       ops->direct_idem != NULL;
}

static void handle_send(confab_session *s, const request *req, uint64_t recv_ns)
{
	broker *b = s->broker;
	bool direct = req->type == REQ_DIRECT;
	if (direct ? !session_may_direct(s, req->to) : !session_may_use_room(s, req->room)) {
		reply_error(s, ERR_FORBIDDEN, direct ? "you may not message this user"
						     : "you may not use this room", req->ref);
		return;
	}
	if (!direct && !confab_dict_has(s->rooms, req->room)) {
		reply_error(s, ERR_NOT_MEMBER, "join the room before sending to it", req->ref);
		return;
	}
	if (!b->backplane_up) {
		reply_backplane_error(s, CONFAB_EUNAVAILABLE, req->ref);
		return;
	}
	pending *p = pending_new(s, req);
	if (!p) {
		reply_error(s, ERR_INTERNAL, "out of memory", req->ref);
		return;
	}
	make_id(b, p->id, sizeof(p->id));
	p->ts = broker_now_ms();
	p->recv_ns = recv_ns;
	p->call_ns = uv_hrtime();

	confab_envelope env = {
		.size = sizeof(env),
		.kind = direct ? CONFAB_ENV_DIRECT : CONFAB_ENV_MESSAGE,
		.room = req->room,
		.from = s->user,
		.to = req->to,
		.id = p->id,
		.origin = s->id,
		.body = req->body_text,     /* the sender's bytes, never re-encoded */
		.body_len = req->body_len,
		.ts = p->ts,
		.idem = req->idem,          /* ignored by a backplane before 1.4 */
	};
	const confab_backplane_ops *ops = bp_ops(b);
	int rc;
	if (has_idem(ops))
		rc = direct ? ops->direct_idem(b->backplane->state, &env, send_done, p)
			    : ops->publish_idem(b->backplane->state, &env, send_done, p);
	else
		rc = direct ? ops->direct(b->backplane->state, &env, direct_done, p)
			    : ops->publish(b->backplane->state, &env, publish_done, p);
	if (rc != 0) {
		/* the callback will not run: answer here */
		confab_session *again = pending_session(p);
		if (again)
			reply_backplane_error(again, rc, p->ref);
		pending_free(p);
	}
}

/* ---- presence / history -------------------------------------------------- */

/* Replies are cut to what the session's transport can still take
 * (session_reply_budget): a client that asks for the presence of a huge
 * room, or for a long history, and does not read, makes the node hold no
 * more than its cap. The client asks for the next page ("more":true). */

/* The first of the sorted `users` that comes after `after` ("": 0). */
static size_t users_after(const char *const *users, size_t n, const char *after)
{
	size_t lo = 0, hi = n;
	if (!after[0])
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(users[mid], after) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void presence_done(void *arg, int status, const char *const *users, size_t n)
{
	pending *p = arg;
	confab_session *s = pending_session(p);
	if (s) {
		if (status == 0) {
			size_t first = users_after(users, n, p->after), sent;
			session_send_take(s, protocol_presence(s->broker->headroom, p->room,
							       users + first, n - first,
							       session_reply_budget(s), &sent,
							       p->ref));
		} else {
			reply_backplane_error(s, status, p->ref);
		}
	}
	pending_free(p);
}

static void history_epoch_done(void *arg, int status, const confab_envelope *messages, size_t n,
			       bool truncated, const char *epoch)
{
	pending *p = arg;
	confab_session *s = pending_session(p);
	if (s) {
		size_t sent;
		if (status == 0)
			session_send_take(s, protocol_history(s->broker->headroom, p->room,
							      messages, n, truncated, epoch,
							      session_reply_budget(s), &sent,
							      p->ref));
		else
			reply_backplane_error(s, status, p->ref);
	}
	pending_free(p);
}

/* A backplane before ABI 1.3 knows no epochs. */
static void history_done(void *arg, int status, const confab_envelope *messages, size_t n,
			 bool truncated)
{
	history_epoch_done(arg, status, messages, n, truncated, NULL);
}

static void handle_query(confab_session *s, const request *req)
{
	broker *b = s->broker;
	if (!session_may_use_room(s, req->room)) {
		reply_error(s, ERR_FORBIDDEN, "you may not use this room", req->ref);
		return;
	}
	if (!confab_dict_has(s->rooms, req->room)) {
		reply_error(s, ERR_NOT_MEMBER, "join the room first", req->ref);
		return;
	}
	if (!b->backplane_up) {
		reply_backplane_error(s, CONFAB_EUNAVAILABLE, req->ref);
		return;
	}
	pending *p = pending_new(s, req);
	if (!p) {
		reply_error(s, ERR_INTERNAL, "out of memory", req->ref);
		return;
	}
	int rc;
	if (req->type == REQ_PRESENCE) {
		rc = bp_ops(b)->presence(b->backplane->state, req->room, presence_done, p);
	} else {
		uint64_t max = b->cfg.broker.history_size;
		uint64_t limit = req->has_limit ? req->limit : PROTOCOL_DEFAULT_HISTORY_LIMIT;
		if (limit > max)
			limit = max;
		const confab_backplane_ops *ops = bp_ops(b);
		if (CONFAB_HAS(ops, history_epoch) && ops->history_epoch != NULL)
			rc = ops->history_epoch(b->backplane->state, req->room, req->epoch,
						req->has_since, req->since, (size_t)limit,
						history_epoch_done, p);
		else
			rc = ops->history(b->backplane->state, req->room, req->has_since, req->since,
					  (size_t)limit, history_done, p);
	}
	if (rc != 0) {
		reply_backplane_error(s, rc, p->ref);
		pending_free(p);
	}
}

/* ---- entry points -------------------------------------------------------- */

/* Token bucket: rate_limit messages a second, bursts up to rate_burst.
 * Returns false when the message is refused; a session refused
 * flood_close times within FLOOD_WINDOW_MS is closed with 1008. */
#define FLOOD_WINDOW_MS 10000
static bool take_token(confab_session *s)
{
	const broker_settings *bs = &s->broker->cfg.broker;
	if (bs->rate_limit == 0)
		return true;
	uint64_t now = uv_now(&s->broker->loop);
	s->tokens += (double)(now - s->tokens_at) * (double)bs->rate_limit / 1000.0;
	if (s->tokens > (double)bs->rate_burst)
		s->tokens = (double)bs->rate_burst;
	s->tokens_at = now;
	if (s->tokens >= 1.0) {
		s->tokens -= 1.0;
		return true;
	}
	if (now - s->refused_since > FLOOD_WINDOW_MS) {
		s->refused_since = now;
		s->refused = 0;
	}
	if (bs->flood_close && ++s->refused >= bs->flood_close) {
		log_line(CONFAB_LOG_WARN, "router", "%s (%s from %s) keeps flooding: closing",
			 s->id, s->user, s->remote);
		metrics_inc(&s->broker->metrics, s->broker->counters.closes + COUNTERS_CLOSE_FLOOD);
		session_close(s, 1008, "rate limit exceeded");
	}
	return false;
}

/* Every frame counts against the rate limit. True when this one is
 * refused (and answered, echoing `ref`). */
static bool rate_limited(confab_session *s, json_t *ref)
{
	if (take_token(s))
		return false;
	if (!s->close_requested)
		reply_error(s, ERR_RATE_LIMITED, "too many messages; slow down", ref);
	return true;
}

void router_recv(confab_session *s, const void *data, size_t len, unsigned flags)
{
	broker *b = s->broker;
	uint64_t recv_ns = uv_hrtime();
	if (s->state != SESSION_OPEN || s->close_requested)
		return;
	if ((flags & CONFAB_FRAME_TOO_LARGE) || len > b->cfg.broker.max_message_bytes) {
		metrics_inc(&b->metrics, b->counters.received + COUNTERS_REQ_INVALID);
		if (rate_limited(s, NULL))
			return;
		char msg[96];
		snprintf(msg, sizeof(msg), "message over %zu bytes dropped",
			 b->cfg.broker.max_message_bytes);
		reply_error(s, ERR_TOO_LARGE, msg, NULL);
		return;
	}
	if (flags & CONFAB_FRAME_BINARY) {
		metrics_inc(&b->metrics, b->counters.received + COUNTERS_REQ_INVALID);
		if (!rate_limited(s, NULL))
			reply_error(s, ERR_BAD_REQUEST, "binary frames are not part of the protocol",
				    NULL);
		return;
	}
	if (!utf8_valid(data, len)) {
		/* text frames are UTF-8 (RFC 6455 8.1): a protocol error */
		session_close(s, 1007, "invalid UTF-8 in a text frame");
		return;
	}

	request req;
	protocol_error err;
	/* parsed before the rate check so that a refusal can echo the ref */
	int rc = protocol_parse(data, len, b->cfg.broker.max_json_depth, &req, &err);
	metrics_inc(&b->metrics,
		    b->counters.received + (rc == 0 ? (int)req.type : COUNTERS_REQ_INVALID));
	if (rate_limited(s, req.ref)) {
		request_free(&req);
		return;
	}
	if (rc != 0) {
		reply_error(s, err.code, err.message, req.ref);
		request_free(&req);
		return;
	}
	switch (req.type) {
	case REQ_JOIN:
		handle_join(s, &req);
		break;
	case REQ_LEAVE:
		handle_leave(s, &req);
		break;
	case REQ_SEND:
	case REQ_DIRECT:
		handle_send(s, &req, recv_ns);
		break;
	case REQ_PRESENCE:
	case REQ_HISTORY:
		handle_query(s, &req);
		break;
	case REQ_PING:
		session_send_take(s, protocol_simple(s->broker->headroom, "pong", NULL, req.ref));
		break;
	}
	request_free(&req);
}

/* Sends one frame to every member of a room except `skip_session` and the
 * sessions of `skip_user` (either may be NULL), counting into `delivered`. */
static void to_room(broker *b, const char *room, confab_buf *frame, const char *skip_session,
		    const char *skip_user, int delivered)
{
	const confab_dict *members = rooms_members(b->rooms, room);
	int64_t sent = 0;
	if (!members)
		return;
	confab_dict_iter it;
	const char *id;
	void *member;
	confab_dict_iter_init(&it, members);
	while (confab_dict_iter_next(&it, &id, &member)) {
		confab_session *s = member;
		if (skip_session && strcmp(id, skip_session) == 0)
			continue;
		if (skip_user && strcmp(s->user, skip_user) == 0)
			continue;
		sent += session_send(s, frame) == 0;
	}
	metrics_add(&b->metrics, delivered, sent);
}

void router_deliver(broker *b, const confab_envelope *env)
{
	confab_buf *frame = protocol_envelope(b->headroom, env);
	/* used only by the known kinds below, each of which has its series */
	int delivered = b->counters.delivered + (int)env->kind - CONFAB_ENV_MESSAGE;
	if (!frame) {
		log_line(CONFAB_LOG_ERROR, "router", "out of memory: an envelope was not delivered");
		return;
	}
	switch (env->kind) {
	case CONFAB_ENV_MESSAGE:
		to_room(b, env->room, frame, env->origin, NULL, delivered);
		break;
	case CONFAB_ENV_MEMBER_JOIN:
	case CONFAB_ENV_MEMBER_LEAVE:
		to_room(b, env->room, frame, NULL, env->from, delivered);
		break;
	case CONFAB_ENV_DIRECT: {
		const confab_dict *sessions = session_of_user(b, env->to);
		if (!sessions)
			break;
		confab_dict_iter it;
		const char *id;
		void *value;
		confab_dict_iter_init(&it, sessions);
		while (confab_dict_iter_next(&it, &id, &value))
			if ((!env->origin || strcmp(id, env->origin) != 0) &&
			    session_send(value, frame) == 0)
				metrics_inc(&b->metrics, delivered);
		break;
	}
	}
	buf_unref(frame);
}

void router_user_online(broker *b, const char *user)
{
	int rc = bp_ops(b)->user_online(b->backplane->state, user);
	if (rc != 0)
		log_line(CONFAB_LOG_WARN, "router", "backplane could not record %s online (%d)", user, rc);
}

void router_user_offline(broker *b, const char *user)
{
	int rc = bp_ops(b)->user_offline(b->backplane->state, user);
	if (rc != 0)
		log_line(CONFAB_LOG_WARN, "router", "backplane could not record %s offline (%d)", user, rc);
}
