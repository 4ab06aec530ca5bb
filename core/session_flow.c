/* A session's opening, admission and end (session_flow.h). The order of
 * the steps is the point of this file: a session is in the registry before
 * the backplane hears of its user, and it leaves its rooms before its user
 * is said to be offline, so that the backplane never sees a member of a
 * room whose user is offline. */
#include "session_flow.h"

#include <stddef.h>
#include <stdio.h>

#include "auth_chain.h"
#include "log.h"
#include "router.h"
#include "session.h"

/* The session an expiry entry is embedded in. */
static confab_session *session_of_entry(expiry_entry *e)
{
	return (confab_session *)(void *)((char *)e - offsetof(confab_session, expiry));
}

/* The backplane's answer to user_ready: the user is online everywhere,
 * or that cannot be known now and the session, which works here, is
 * welcomed anyway. A session that closed meanwhile is sent nothing. */
static void user_ready(void *arg, int status)
{
	confab_session *s = arg;

	if (status != 0)
		log_line(CONFAB_LOG_DEBUG, "session", "%s: the backplane could not confirm %s "
			 "online everywhere (%d); welcomed anyway", s->id, s->user, status);
	session_welcome(s);  /* nothing once closed, or when a frame brought it */
	session_unref(s);
}

/* `welcome` tells the client it is in: a direct sent to it from any node
 * from then on must find it. With a backplane that records the user
 * elsewhere (Redis), that is once its user_online (this session's, or an
 * earlier session's still on its way) is recorded: user_ready. The
 * session is admitted meanwhile: what it asks before its welcome is
 * served, and the reply brings the welcome first (session_welcome). */
static void await_user_ready(confab_session *s)
{
	broker *b = s->broker;
	const confab_backplane_ops *ops = b->backplane->plugin.desc->backplane;
	int rc;

	if (!CONFAB_HAS(ops, user_ready)) {
		session_welcome(s);
		return;
	}
	session_ref(s);
	rc = ops->user_ready(b->backplane->state, s->user, user_ready, s);
	if (rc != 0)
		user_ready(s, rc);  /* done is not called: as if it said so */
}

/* Auth decided "allow": admits the session unless the user has as many
 * sessions here as allowed or memory runs out. */
static void admit(confab_session *s, session_grant *grant)
{
	broker *b = s->broker;
	size_t max_sessions = b->cfg.broker.max_sessions_per_user;
	const confab_dict *existing = session_of_user(b, grant->user);
	if (max_sessions && existing && confab_dict_count(existing) >= max_sessions) {
		session_deny(s, 429, "too many sessions for this user");
		return;
	}
	int first = session_register(s, grant);
	if (first >= 0 && s->expires_ms && expiry_add(&b->expiry, &s->expiry, s->expires_ms) != 0) {
		session_unregister(s);
		first = CONFAB_ENOMEM;
	}
	if (first < 0) {
		log_line(CONFAB_LOG_ERROR, "session", "out of memory admitting a session");
		session_deny(s, 503, "broker out of memory");
		return;
	}
	metrics_inc(&b->metrics, b->counters.sessions_total);
	if (first)
		router_user_online(b, s->user);
	s->admitted_ms = uv_now(&b->loop);
	log_field fields[] = { LOG_TEXT("event", "connect"), LOG_TEXT("session", s->id),
			       LOG_TEXT("user", s->user), LOG_TEXT("addr", s->remote) };
	log_event(CONFAB_LOG_INFO, "session", fields, sizeof(fields) / sizeof(fields[0]),
		  "%s open: user %s from %s", s->id, s->user, s->remote);

	s->open_done(s->open_arg, true, 0, NULL);
	if (s->state == SESSION_OPEN)
		await_user_ready(s);
}

static void decided(confab_session *s, session_grant *grant, int http_status, const char *reason)
{
	if (grant)
		admit(s, grant);
	else
		session_deny(s, http_status, reason);
}

confab_session *session_flow_open(confab_ctx *transport, const confab_request *req, void *conn,
				  confab_open_done done, void *arg, bool origin_ok)
{
	broker *b = transport->broker;
	if (b->stopping || b->draining || !b->serving)
		return NULL;
	confab_session *s = session_new(b, transport, conn, req ? req->remote_addr : NULL, done,
					arg);
	if (!s)
		return NULL;
	/* Refusals before the auth chain answer at once; either way the
	 * session lives until the transport calls session_closed. */
	if (!origin_ok) {
		session_deny(s, 403, "origin not allowed");
		return s;
	}
	int rc = session_count_address(s);
	if (rc != 0) {
		session_deny(s, rc == CONFAB_EFULL ? 429 : 503,
			     rc == CONFAB_EFULL ? "too many connections from this address"
						: "broker out of memory");
		return s;
	}
	auth_chain_run(s, req, decided);
	return s;
}

/* The disconnect line. Its code is the one the core asked for when it
 * closed the session (session_close), or 1001 when the broker is stopping
 * (stop() has each transport close its WebSockets with 1001). Otherwise
 * the client or the transport ended it: the code and the words are the
 * transport's (session_ended: the client's close code, 1006 for a lost
 * connection), or, from a transport built before ABI 1.9, "by the client"
 * without a code. */
static void log_closed(const confab_session *s)
{
	long long duration_ms = (long long)(uv_now(&s->broker->loop) - s->admitted_ms);
	bool by_core = s->close_requested || s->broker->stopping;
	bool told = !by_core && s->end_why != NULL;
	int code = s->close_requested ? s->close_code : by_core ? 1001 : s->end_code;
	const char *reason = s->close_requested ? s->close_reason
			     : by_core ? "server shutting down"
			     : told ? s->end_why : "client";
	log_field fields[] = {
		LOG_TEXT("event", "disconnect"), LOG_TEXT("session", s->id),
		LOG_TEXT("user", s->user), LOG_TEXT("addr", s->remote),
		by_core || told ? LOG_INT("code", code) : LOG_NULL("code"),
		LOG_TEXT("reason", reason),
		LOG_INT("duration_ms", duration_ms),
	};
	char how[96];
	if (by_core || told)
		snprintf(how, sizeof(how), "code %d (%s)", code, reason);
	else
		snprintf(how, sizeof(how), "by the client");
	log_event(CONFAB_LOG_INFO, "session", fields, sizeof(fields) / sizeof(fields[0]),
		  "%s closed: user %s from %s, %s, after %lld ms", s->id, s->user, s->remote, how,
		  duration_ms);
}

void session_flow_ended(confab_session *s, int code, const char *why)
{
	s->end_code = code;
	s->end_why = why;
}

void session_flow_closed(confab_session *s)
{
	broker *b = s->broker;
	auth_chain_cancel(s);  /* a check still running for it is dropped */
	if (s->state == SESSION_OPEN) {
		router_leave_all(s);
		expiry_remove(&b->expiry, &s->expiry);
		if (session_unregister(s))
			router_user_offline(b, s->user);
		log_closed(s);
	}
	s->end_why = NULL;  /* the transport's text lives until we return */
	session_end(s);
}

void session_flow_expired(void *arg, expiry_entry *e)
{
	(void)arg;
	confab_session *s = session_of_entry(e);
	metrics_inc(&s->broker->metrics, s->broker->counters.closes + COUNTERS_CLOSE_EXPIRED);
	session_close(s, 4001, "token expired");
}
