/* Protocol v1 (docs/protocol.md): client frames parsed and checked into a
 * request, and the server's frames built. Pure functions: no sessions, no
 * I/O, so every rule is unit-tested here. */
#ifndef CONFAB_CORE_PROTOCOL_H
#define CONFAB_CORE_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <confab/backplane.h>
#include <confab/util.h>

#define PROTOCOL_VERSION 1
/* The longest room or user name (the SDK's rule, confab/util.h). */
#define PROTOCOL_NAME_MAX CONFAB_USER_MAX
_Static_assert(CONFAB_USER_MAX == CONFAB_ROOM_MAX, "one buffer size serves both names");
#define PROTOCOL_DEFAULT_HISTORY_LIMIT 50

typedef enum request_type {
	REQ_JOIN,
	REQ_LEAVE,
	REQ_SEND,
	REQ_DIRECT,
	REQ_PRESENCE,
	REQ_HISTORY,
	REQ_PING
} request_type;

typedef struct request {
	request_type type;
	json_t *root;        /* the parsed frame; owns everything below */
	json_t *ref;         /* NULL when absent */
	const char *room;    /* join, leave, send, presence, history */
	const char *to;      /* direct */
	json_t *body;        /* send, direct */
	/* The body as the client wrote it: its bytes in the frame text
	 * (borrowed: valid as long as the frame's data), what is stored and
	 * delivered, so that nobody gets more than the sender sent. */
	const char *body_text;
	size_t body_len;
	const char *after;   /* presence: list the users after this one */
	bool has_since;
	uint64_t since;
	bool has_limit;
	uint64_t limit;
	const char *epoch;   /* history: the room epoch the client knows, or NULL */
	const char *idem;    /* send, direct: the idempotency key, or NULL */
} request;

/* Error codes of protocol v1. */
#define ERR_BAD_REQUEST "bad_request"
#define ERR_NOT_MEMBER "not_member"
#define ERR_FORBIDDEN "forbidden"
#define ERR_TOO_LARGE "too_large"
#define ERR_RATE_LIMITED "rate_limited"
#define ERR_OFFLINE "offline"
#define ERR_UNAVAILABLE "unavailable"
#define ERR_INTERNAL "internal"

typedef struct protocol_error {
	const char *code;
	char message[160];
} protocol_error;

/* Parses one text frame (`data` must outlive the request: body_text
 * points into it). Returns 0 and fills `req` (free it with
 * request_free), or -1 and fills `err`; in that case req->ref may still hold
 * the frame's ref (a borrowed reference into req->root) so the error can echo
 * it, and request_free must still be called. A frame nested deeper than
 * `max_depth` (objects and arrays, the request itself being level 1;
 * [broker] max_json_depth) is refused with bad_request. */
int protocol_parse(const char *data, size_t len, size_t max_depth, request *req,
		   protocol_error *err);
void request_free(request *req);

/* Room names: 1-64 bytes of A-Z a-z 0-9 _ . : - */
bool protocol_valid_room(const char *name);
/* User ids: 1-64 bytes of A-Z a-z 0-9 _ . : - @ */
bool protocol_valid_user(const char *name);

/* ---- server frames (each returns a new buffer, refs = 1, or NULL, with
 * `headroom` bytes in front for the transports: broker->headroom) ---- */
confab_buf *protocol_welcome(size_t headroom, const char *session, const char *user,
			     const char *node);
confab_buf *protocol_error_frame(size_t headroom, const char *code, const char *message,
				 json_t *ref);
/* An `unavailable` whose outcome is unknown: {"type":"error","code":
 * "unavailable","message":M,"outcome":"unknown","id":ID[,"ref":REF]}. */
confab_buf *protocol_error_unknown(size_t headroom, const char *message, const char *id,
				   json_t *ref);
/* {"type":TYPE,"room":ROOM[,"ref":REF]} for joined / left; room may be NULL
 * (pong). */
confab_buf *protocol_simple(size_t headroom, const char *type, const char *room, json_t *ref);
/* {"type":"joined","room":ROOM[,"epoch":EPOCH][,"ref":REF]}; epoch may be
 * NULL (a backplane that has none). */
confab_buf *protocol_joined(size_t headroom, const char *room, const char *epoch, json_t *ref);
/* Idempotency keys (send, direct): 1-64 bytes of A-Z a-z 0-9 _ . : - */
bool protocol_valid_idem(const char *key);
/* Room epochs as a client may send them: 1 to CONFAB_EPOCH_MAX of 0-9 a-z. */
bool protocol_valid_epoch(const char *epoch);
confab_buf *protocol_ack_room(size_t headroom, const char *room, uint64_t seq, const char *id,
			      int64_t ts, json_t *ref);
confab_buf *protocol_ack_direct(size_t headroom, const char *id, int64_t ts, json_t *ref);
/* The frame an envelope becomes for a recipient: message, direct or member. */
confab_buf *protocol_envelope(size_t headroom, const confab_envelope *env);
/* Replies that may be longer than a client should be sent at once are
 * paged: they hold as many of the items as fit in `budget` bytes (the
 * whole frame), but at least one, in order, set *n_sent to how many, and
 * say "more":true when that is fewer than given (protocol.md). */
confab_buf *protocol_presence(size_t headroom, const char *room, const char *const *users,
			      size_t n_users, size_t budget, size_t *n_sent, json_t *ref);
/* `epoch` (NULL: none known) is the room's epoch at the time of the answer. */
confab_buf *protocol_history(size_t headroom, const char *room, const confab_envelope *messages,
			     size_t n, bool truncated, const char *epoch, size_t budget,
			     size_t *n_sent, json_t *ref);

#endif
