/* Sessions of this node: the registry by id and by user, references,
 * sending frames through the session's transport and asking it to close.
 * A leaf: what a session's opening and closing mean for rooms, the
 * backplane and expiry is session_flow.h's. */
#ifndef CONFAB_CORE_SESSION_H
#define CONFAB_CORE_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <confab/plugin.h>

#include "broker.h"
#include <confab/dict.h>
#include "expiry.h"

typedef enum session_state {
	SESSION_PENDING,   /* the auth chain has not answered yet */
	SESSION_OPEN,      /* admitted: in the registry */
	SESSION_GONE       /* the transport closed it; only references keep it */
} session_state;

struct confab_session {
	broker *broker;
	confab_ctx *transport;
	void *conn;                  /* the transport's handle */
	session_state state;
	unsigned refs;               /* the registry/transport's one + pending work */
	bool close_requested;        /* close() already asked of the transport */
	int close_code;              /* ... with this code and reason (for the */
	char close_reason[64];       /* disconnect line) */
	int end_code;                /* how it ended when the core did not close */
	const char *end_why;         /* it (session_ended, ABI 1.9): 0/NULL untold;
				      * why lives until session_closed returns */
	uint64_t admitted_ms;        /* loop time (ms) of admission */
	bool counted;                /* counted in broker->addresses */
	bool welcomed;               /* `welcome` sent (session_welcome) */
	void *auth_run;              /* the auth chain's run while it decides */
	char id[96];                 /* "<node>.<run>.s<n>": unique in the cluster */
	char user[72];
	char remote[64];
	confab_dict *rooms;                 /* names of the rooms joined (values unused) */
	confab_open_done open_done;
	void *open_arg;

	/* What the auth plugin allowed (ABI 1.1); NULL lists allow all. */
	char **room_patterns;
	size_t n_room_patterns;
	char **direct_patterns;
	size_t n_direct_patterns;
	int64_t expires_ms;          /* 0 = never */
	expiry_entry expiry;         /* armed in broker->expiry while open, if expires_ms */

	/* Rate limit: a token bucket, and the refusals of the current window. */
	double tokens;
	uint64_t tokens_at;          /* loop time (ms) of the last refill */
	size_t refused;
	uint64_t refused_since;      /* loop time (ms) the window began */
};

/* What an auth plugin granted, for session_register. The pattern lists are
 * malloc'd (config_free_list frees them); NULL allows everything. */
typedef struct session_grant {
	const char *user;
	char **rooms;
	size_t n_rooms;
	char **direct;
	size_t n_direct;
	int64_t expires_ms;
} session_grant;

/* A user's sessions on this node (value type of broker->users). */
typedef struct user_sessions {
	confab_dict *sessions;              /* session id -> confab_session */
} user_sessions;

/* A new pending session for a transport connection (refs = 1). */
confab_session *session_new(broker *b, confab_ctx *transport, void *conn,
			    const char *remote, confab_open_done done, void *arg);
/* Counts the connection against max_connections_per_address: 0, or
 * CONFAB_EFULL when the address is at its limit. */
int session_count_address(confab_session *s);
/* Adds the session to the registry as grant->user (taking the grant's
 * pattern lists and NULLing them in `grant`) and makes it open. Returns 1
 * when it is the user's first session on this node, 0 when not, or
 * CONFAB_ENOMEM (the session stays pending, the grant untouched). */
int session_register(confab_session *s, session_grant *grant);
/* Removes an open session from the registry (it is no longer open: no
 * more frames go to it); true when it was its user's last session on this
 * node. */
bool session_unregister(confab_session *s);
/* Answers the transport's open with a refusal. The session stays until
 * the transport calls session_closed (session_flow_closed). */
void session_deny(confab_session *s, int http_status, const char *reason);
/* The transport's reference is given back: the connection no longer
 * counts against its address, and the session is gone. */
void session_end(confab_session *s);

void session_ref(confab_session *s);
void session_unref(confab_session *s);

/* Sends the client its `welcome`, once: the first frame of an open
 * session. session_flow sends it when the backplane has the user online
 * everywhere; a frame for the session before then (a reply to a request
 * it did not wait to send, a direct) brings it first. */
void session_welcome(confab_session *s);
/* Queues a frame (borrowed) for the client. A full queue closes the
 * session with 1008. No-op unless the session is open. 0 when queued,
 * else negative (the transport's error, or CONFAB_ESTATE: not open). */
int session_send(confab_session *s, confab_buf *frame);
/* Sends and drops the caller's reference: the common case for replies. */
void session_send_take(confab_session *s, confab_buf *frame);
/* How many bytes one reply to the session may take, so that what the
 * node holds for a client stays under its transport's cap: half of what
 * the transport says it would still accept (the other half is left for
 * the room traffic that arrives while the client reads the reply), or
 * SESSION_REPLY_BUDGET with a transport built before ABI 1.3, which
 * cannot say. Replies larger than this are paged (router.c). */
#define SESSION_REPLY_BUDGET ((size_t)64 * 1024)
size_t session_reply_budget(const confab_session *s);
/* The same from a transport's table (exposed for the unit tests). */
size_t session_reply_budget_of(const confab_transport_ops *ops, void *state, void *conn);
/* Asks the transport to close the connection (once). */
void session_close(confab_session *s, int code, const char *reason);

confab_session *session_find(broker *b, const char *id);
/* The user's sessions on this node, or NULL. */
const confab_dict *session_of_user(broker *b, const char *user);

/* Permission checks against what the auth plugin granted. */
bool session_may_use_room(const confab_session *s, const char *room);
bool session_may_direct(const confab_session *s, const char *user);

#endif
