/* A session is reference counted because work can outlive its connection:
 * the auth chain may answer after the client left. The registry (the
 * transport's connection) holds one reference; pending work holds others. */
#include "session.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <confab/ratelimit.h>

#include "buf.h"
#include "config.h"
#include "counters.h"
#include "log.h"
#include "protocol.h"

confab_session *session_new(broker *b, confab_ctx *transport, void *conn,
			    const char *remote, confab_open_done done, void *arg)
{
	confab_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (!(s->rooms = confab_dict_new())) {
		free(s);
		return NULL;
	}
	s->broker = b;
	s->transport = transport;
	s->conn = conn;
	s->state = SESSION_PENDING;
	s->refs = 1;
	s->open_done = done;
	s->open_arg = arg;
	snprintf(s->id, sizeof(s->id), "%s.%s.s%" PRIu64, b->cfg.broker.node_id, b->run_id,
		 ++b->next_session);
	snprintf(s->remote, sizeof(s->remote), "%s", remote ? remote : "?");
	return s;
}

int session_count_address(confab_session *s)
{
	broker *b = s->broker;
	uintptr_t n = (uintptr_t)confab_dict_get(b->addresses, s->remote);
	size_t max = b->cfg.broker.max_connections_per_address;
	if (max && n >= max)
		return CONFAB_EFULL;
	if (confab_dict_set(b->addresses, s->remote, (void *)(n + 1)) != 0)
		return CONFAB_ENOMEM;
	s->counted = true;
	return 0;
}

/* Forgets the session's connection in its address's count. */
static void address_release(broker *b, confab_session *s)
{
	if (!s->counted)
		return;
	s->counted = false;
	uintptr_t n = (uintptr_t)confab_dict_get(b->addresses, s->remote);
	if (n <= 1)
		confab_dict_remove(b->addresses, s->remote);
	else
		confab_dict_set(b->addresses, s->remote, (void *)(n - 1));
}

void session_ref(confab_session *s)
{
	s->refs++;
}

void session_unref(confab_session *s)
{
	if (--s->refs > 0)
		return;
	config_free_list(s->room_patterns, s->n_room_patterns);
	config_free_list(s->direct_patterns, s->n_direct_patterns);
	confab_dict_free(s->rooms, NULL);
	free(s);
}

static void user_sessions_free(user_sessions *us)
{
	confab_dict_free(us->sessions, NULL);
	free(us);
}

/* Adds the session to its user's set; returns 1 when it is the user's first
 * session on this node, 0 otherwise, negative when out of memory. */
static int add_to_user(broker *b, confab_session *s)
{
	user_sessions *us = confab_dict_get(b->users, s->user);
	int first = 0;
	if (!us) {
		us = calloc(1, sizeof(*us));
		if (!us || !(us->sessions = confab_dict_new()) || confab_dict_set(b->users, s->user, us) != 0) {
			if (us)
				confab_dict_free(us->sessions, NULL);
			free(us);
			return CONFAB_ENOMEM;
		}
		first = 1;
	}
	if (confab_dict_set(us->sessions, s->id, s) != 0) {
		if (first)
			user_sessions_free(confab_dict_remove(b->users, s->user));
		return CONFAB_ENOMEM;
	}
	return first;
}

/* Removes the session from its user's set; true when it was the last. */
static bool remove_from_user(broker *b, confab_session *s)
{
	user_sessions *us = confab_dict_get(b->users, s->user);
	if (!us)
		return false;
	confab_dict_remove(us->sessions, s->id);
	if (confab_dict_count(us->sessions) > 0)
		return false;
	user_sessions_free(confab_dict_remove(b->users, s->user));
	return true;
}

static bool matches_any(char *const *patterns, size_t n, const char *name)
{
	if (!patterns)
		return true;
	for (size_t i = 0; i < n; i++)
		if (fnmatch(patterns[i], name, 0) == 0)
			return true;
	return false;
}

bool session_may_use_room(const confab_session *s, const char *room)
{
	return matches_any(s->room_patterns, s->n_room_patterns, room);
}

bool session_may_direct(const confab_session *s, const char *user)
{
	return matches_any(s->direct_patterns, s->n_direct_patterns, user);
}

int session_register(confab_session *s, session_grant *grant)
{
	broker *b = s->broker;
	snprintf(s->user, sizeof(s->user), "%s", grant->user);
	int first = CONFAB_ENOMEM;
	if (confab_dict_set(b->sessions, s->id, s) == 0 && (first = add_to_user(b, s)) < 0)
		confab_dict_remove(b->sessions, s->id);
	if (first < 0)
		return first;
	s->expires_ms = grant->expires_ms;
	s->room_patterns = grant->rooms;
	s->n_room_patterns = grant->n_rooms;
	s->direct_patterns = grant->direct;
	s->n_direct_patterns = grant->n_direct;
	grant->rooms = grant->direct = NULL;
	grant->n_rooms = grant->n_direct = 0;
	s->state = SESSION_OPEN;
	s->tokens = (double)b->cfg.broker.rate_burst;
	s->tokens_at = s->refused_since = uv_now(&b->loop);
	return first;
}

bool session_unregister(confab_session *s)
{
	broker *b = s->broker;
	if (s->state != SESSION_OPEN)
		return false;
	s->state = SESSION_GONE;
	confab_dict_remove(b->sessions, s->id);
	return remove_from_user(b, s);
}

/* One line a second at most: a flood of refused handshakes (800 a second
 * of wrong passwords) must not become a flood of log lines. */
static confab_ratelimit refused_log = CONFAB_RATELIMIT_INIT(1000);

void session_deny(confab_session *s, int http_status, const char *reason)
{
	uint64_t skipped;
	if (confab_ratelimit_allow(&refused_log, uv_now(&s->broker->loop), &skipped))
		log_line(CONFAB_LOG_INFO, "session", "refused a connection from %s: %d %s (%llu "
			 "more refusals since the last line)", s->remote, http_status, reason,
			 (unsigned long long)skipped);
	/* the transport still calls session_closed, which drops its reference */
	s->state = SESSION_GONE;
	s->open_done(s->open_arg, false, http_status, reason);
}

void session_end(confab_session *s)
{
	address_release(s->broker, s);
	s->state = SESSION_GONE;
	session_unref(s);
}

void session_welcome(confab_session *s)
{
	broker *b = s->broker;

	if (s->welcomed || s->state != SESSION_OPEN || s->close_requested)
		return;
	s->welcomed = true;
	session_send_take(s, protocol_welcome(b->headroom, s->id, s->user, b->cfg.broker.node_id));
}

int session_send(confab_session *s, confab_buf *frame)
{
	if (!s->welcomed)
		session_welcome(s);  /* a frame that would overtake it brings it first */
	if (!frame || s->state != SESSION_OPEN || s->close_requested)
		return CONFAB_ESTATE;
	const confab_transport_ops *ops = s->transport->plugin.desc->transport;
	int rc = ops->send(s->transport->state, s->conn, frame);
	if (rc == CONFAB_EFULL) {
		log_line(CONFAB_LOG_WARN, "session", "%s (%s): outbound queue full, closing",
			 s->id, s->user);
		metrics_inc(&s->broker->metrics,
			    s->broker->counters.closes + COUNTERS_CLOSE_SLOW_CONSUMER);
		session_close(s, 1008, "outbound queue full");
	} else if (rc != 0) {
		session_close(s, 1011, "send failed");
	}
	return rc;
}

void session_send_take(confab_session *s, confab_buf *frame)
{
	if (!frame) {
		log_line(CONFAB_LOG_ERROR, "session", "out of memory building a frame");
		return;
	}
	session_send(s, frame);
	buf_unref(frame);
}

size_t session_reply_budget_of(const confab_transport_ops *ops, void *state, void *conn)
{
	if (!CONFAB_HAS(ops, send_budget) || ops->send_budget == NULL)
		return SESSION_REPLY_BUDGET;
	return ops->send_budget(state, conn) / 2;
}

size_t session_reply_budget(const confab_session *s)
{
	return session_reply_budget_of(s->transport->plugin.desc->transport, s->transport->state,
				       s->conn);
}

void session_close(confab_session *s, int code, const char *reason)
{
	if (s->state != SESSION_OPEN || s->close_requested)
		return;
	s->close_requested = true;
	s->close_code = code;
	snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason ? reason : "");
	s->transport->plugin.desc->transport->close(s->transport->state, s->conn, code, reason);
}

confab_session *session_find(broker *b, const char *id)
{
	return confab_dict_get(b->sessions, id);
}

const confab_dict *session_of_user(broker *b, const char *user)
{
	user_sessions *us = confab_dict_get(b->users, user);
	return us ? us->sessions : NULL;
}
