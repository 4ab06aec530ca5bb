/* confab plugin SDK — the transport kind.
 *
 * A transport accepts client connections (WebSocket for the `ws` plugin)
 * and carries protocol frames between them and the core. The core knows
 * nothing of sockets: it sees sessions, frames in, frames out.
 *
 * Life of a connection:
 *   1. The transport calls host->session_open() with the request it saw
 *      (remote address, path, query, headers). The core runs the auth
 *      chain and calls `done` exactly once: allowed (with the session) or
 *      denied (with an HTTP status and a reason).
 *   2. While the session lives, the transport hands each complete incoming
 *      message to host->session_recv() and the core calls the transport's
 *      send() for each outgoing frame and close() to end the connection.
 *   3. When the connection is gone (for any reason, including after the
 *      core asked for close()), the transport calls host->session_closed()
 *      once. The session pointer is invalid after that call returns.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_TRANSPORT_H
#define CONFAB_TRANSPORT_H

#include <stdbool.h>
#include <confab/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One request header. Names are lower case. */
typedef struct confab_header {
	const char *name;
	const char *value;
} confab_header;

/* What a transport knows about a connection before it is admitted.
 * Built by the transport; borrowed by the core and by auth plugins for the
 * duration of the call that receives it. An auth plugin that answers later
 * copies what it needs. */
typedef struct confab_request {
	uint32_t size;               /* sizeof(confab_request) */
	const char *transport;       /* instance name of the transport, e.g. "ws" */
	const char *remote_addr;     /* peer address as text, e.g. "127.0.0.1" */
	const char *path;            /* request path without the query, e.g. "/ws" */
	const char *query;           /* raw query string without '?', "" if none */
	const confab_header *headers;
	size_t n_headers;
} confab_request;

/* Flags for session_recv(). */
#define CONFAB_FRAME_BINARY 0x1u    /* the client sent a binary message */
#define CONFAB_FRAME_TOO_LARGE 0x2u /* the message grew past the broker's
				     * max_message_bytes; the transport dropped
				     * it: data is NULL and len is how much had
				     * arrived when it gave up */

/* The core's answer to session_open(). Called exactly once per
 * session_open() that returned a session, unless the transport calls
 * session_closed() first, in which case it is never called.
 *  - allowed: the session is live. Right after this callback returns, the
 *    core calls send() with the welcome frame: the transport queues frames
 *    until the connection can write.
 *  - denied: `http_status` is 401 (no or bad credentials), 403 (not
 *    allowed, or a browser Origin not in allowed_origins), 429 (too many
 *    connections from the address or sessions of the user) or 503
 *    (broker not serving); `reason` is a short text safe
 *    to show the client (never a secret), borrowed for the call. The
 *    transport refuses the connection; the core sends nothing more.
 * In every case the transport calls session_closed() exactly once for each
 * session that session_open() returned, when the connection is gone.
 * `arg` is the value given to session_open(). */
typedef void (*confab_open_done)(void *arg, bool allowed, int http_status,
				 const char *reason);

/* Entry points of the core for transports (part of confab_host). */
typedef struct confab_host_transport {
	uint32_t size;               /* sizeof(confab_host_transport) */

	/* Ask the core to admit a new connection. `req` is borrowed for the
	 * call. `conn` is the transport's own handle for the connection; the
	 * core passes it back to send() and close() and never looks inside.
	 * Returns the new (pending) session, and `done` will be called with
	 * the decision, possibly before this returns; or NULL when the core
	 * cannot take the connection: then `done` is never called, and the
	 * transport refuses it with 503 and does not call session_closed.
	 * NULL comes back when memory runs out, while the node drains
	 * (SIGTERM), once stop() has begun, and before the broker serves: transports start last, and the broker
	 * serves only after every start() returned, so a connection accepted
	 * from inside start() is refused. A transport starts accepting from
	 * the loop (its listener's callbacks), not from start() itself. */
	confab_session *(*session_open)(confab_ctx *ctx, const confab_request *req,
					void *conn, confab_open_done done, void *arg);

	/* Hand one complete client message to the core. `data` is borrowed.
	 * flags: CONFAB_FRAME_BINARY for binary messages, or
	 * CONFAB_FRAME_TOO_LARGE (data NULL) for one the transport dropped.
	 * Only for admitted sessions. May call send() or close() for this or
	 * other sessions before returning. */
	void (*session_recv)(confab_session *session, const void *data,
			     size_t len, unsigned flags);

	/* The connection is gone. Called exactly once for every session that
	 * session_open() returned: admitted, denied or still pending (which
	 * cancels it: done will not be called). The core leaves every room for
	 * the session and forgets it; the pointer is invalid once this
	 * returns. Never calls send() or close() for this session. */
	void (*session_closed)(confab_session *session);

	/* ---- ABI 1.9 ---- */

	/* Optional for the transport to call, just before session_closed:
	 * how the connection ended, for the disconnect log line. `code` is
	 * the WebSocket close code the client sent (1000-4999), 1005 when its
	 * close frame held none, 1006 when the connection ended without a
	 * close frame, or the code the transport closed it with on its own
	 * (1002 for a protocol error). `why` is a short fixed text of the
	 * transport's ("by the client", "connection lost"), never the
	 * client's close reason; it must stay valid until session_closed
	 * returns. Ignored when the core closed the session itself (its own
	 * code is logged). Without it the line says only "by the client".
	 * Read it only when CONFAB_HAS(host->transport, session_ended). */
	void (*session_ended)(confab_session *session, int code, const char *why);
} confab_host_transport;

/* What a transport implements besides the lifecycle. */
typedef struct confab_transport_ops {
	uint32_t size;               /* sizeof(confab_transport_ops) */

	/* Bytes of headroom the transport needs in front of every outgoing
	 * frame (LWS_PRE for libwebsockets). */
	size_t headroom;

	/* Queue one text frame for `conn`. `frame` is borrowed: take a
	 * reference with host->buf_ref to keep it past the call. Returns 0,
	 * or CONFAB_EFULL when the frame does not fit under the connection's
	 * cap on what it holds (the core then closes the session; a cap
	 * bounds everything queued, so a frame larger than what is left is
	 * refused even when the queue is empty), or another negative code. */
	int (*send)(void *state, void *conn, confab_buf *frame);

	/* Close `conn` with a WebSocket close code and reason (borrowed).
	 * Frames already queued are sent first. The transport later calls
	 * host->session_closed() for it, never from inside this call. */
	void (*close)(void *state, void *conn, int code, const char *reason);

	/* ---- ABI 1.3 ---- */

	/* Optional. How many bytes of frames send() would still accept for
	 * `conn` right now: the connection's cap less what it holds (its
	 * queue, and anything the transport or its library buffered), 0 when
	 * it is full or closing. A frame of `len` bytes fits when len is at
	 * most this (a transport that counts a per-frame overhead subtracts
	 * it here already). The core sizes its replies with it: a `history`
	 * or `presence` reply that would not fit is cut into pages
	 * (docs/protocol.md), so that a client never makes the node hold
	 * more for it than the cap. Called on the loop thread, from inside
	 * session_recv() or a backplane callback; must not call back into
	 * the core. A transport built before 1.3 (or leaving this NULL):
	 * the core assumes a fixed, conservative budget per reply
	 * (64 KiB) and send() still enforces the real cap. */
	size_t (*send_budget)(void *state, void *conn);
} confab_transport_ops;

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_TRANSPORT_H */
