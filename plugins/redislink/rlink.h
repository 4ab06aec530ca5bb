/* One connection to one Redis server, on the broker's libuv loop: a
 * uv_tcp_t, hiredis's protocol reader (redisReader) and its command
 * formatter (redisFormatCommandArgv). Nothing of hiredis's async API.
 *
 * Why not hiredis 0.14's async API: it asserts on the `smessage` pushes
 * of sharded pub/sub, routes the replies of other commands on a
 * subscribed connection to the wrong callback, ignores socket errors
 * under its libuv adapter, and resolves host names with a blocking call.
 * Here the link owns its socket, so a name is resolved with
 * uv_getaddrinfo, every socket error closes the link, and a subscribed
 * link hands every push to one callback.
 *
 * Shared by the `redis` and `redis_cluster` backplanes; linked into each
 * of them (a convenience library: no plugin reaches into another).
 *
 * Contract:
 *  - Commands may be queued at once after rlink_open, before the
 *    connection is made: they are written when it is, in order. When
 *    `password` is set, AUTH (with `user` when set) goes first, and its
 *    failure closes the link with the server's error as the reason.
 *  - Every command queued with a reply callback gets it exactly once:
 *    with the reply (freed by the link after the callback returns), or
 *    with NULL when the link closed first (rlink_close included).
 *  - On a subscribed link (`subscriber`), arrays whose first element is
 *    message, smessage, pmessage, subscribe, ssubscribe, psubscribe,
 *    unsubscribe, sunsubscribe or punsubscribe go to `on_push`, never to a
 *    reply callback. Commands sent there without a callback (SSUBSCRIBE,
 *    SUNSUBSCRIBE, ...) wait for no reply; an error reply that no callback
 *    waits for goes to `on_push` too (an SSUBSCRIBE refused with MOVED).
 *    So send the (un)subscribe commands there without a callback (one
 *    given would only get NULL when the link closes), and keep commands
 *    with callbacks (PING) rare: an error reply that comes while one
 *    waits is taken for its reply, whichever command caused it.
 *  - `on_closed` is called exactly once, when the link fails (refused,
 *    reset, closed by the server, a protocol error, AUTH refused, the
 *    connect timeout, a name that does not resolve), with one line saying
 *    why; never for rlink_close. The link is dead after it: the owner
 *    calls rlink_close (possibly from inside the callback). Before it,
 *    every waiting command got NULL. It is never called from inside
 *    rlink_open or rlink_command (a failure found there is reported from
 *    the loop), always from the loop.
 *  - Every callback may call rlink_close on its own link, and may open
 *    or close other links.
 *  - rlink_close never calls on_closed; it does call the pending reply
 *    callbacks with NULL before it returns. Memory is freed once libuv
 *    has closed the handles.
 *
 * TLS (`tls` set; rtls.h says what its options mean): the link speaks
 * TLS over its own stream with OpenSSL. Once connected it does the
 * handshake, then writes what was queued (AUTH first), encrypted; so
 * commands may still be queued at once after rlink_open. The connect
 * timeout covers the handshake, and rlink_connected turns true only
 * after it (and AUTH). A failed handshake is an on_closed like the
 * others, with one line saying why, e.g.
 *   "TLS handshake failed: certificate verify failed (self-signed certificate in certificate chain: the server's CA is not in /etc/confab/redis-ca.crt)"
 *   "TLS handshake failed: certificate verify failed (hostname mismatch: the certificate is not for db.example)"
 *   "TLS handshake failed: certificate verify failed (certificate has expired)"
 *   "TLS handshake failed: the server requires a client certificate, and none is configured"
 *   "TLS handshake failed: the server refused our client certificate (tlsv1 alert unknown ca)"
 *   "timed out connecting after 3000 ms: the TLS handshake did not finish (does the server speak TLS on this port?)"
 * and a failure after it, "TLS error: <OpenSSL's reason>". The
 * configuration is the owner's, shared by its links: it must stay until
 * they are closed.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RLINK_H
#define CONFAB_RLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "rtls.h"

typedef struct rlink rlink;

/* A command's reply, or NULL when the link closed before it came. The
 * reply belongs to the link: copy what outlives the call. */
typedef void (*rlink_reply_fn)(rlink *l, redisReply *reply, void *arg);
/* A push (or an error no command waits for) on a subscribed link. */
typedef void (*rlink_push_fn)(rlink *l, redisReply *push, void *arg);
/* The link failed; `why` is one line, e.g. "connection refused",
 * "cannot resolve redis-1.internal: unknown node or service",
 * "AUTH failed: WRONGPASS invalid username-password pair",
 * "connection closed by the server", "timed out connecting after 3000 ms",
 * "timed out resolving redis-1.internal after 3000 ms" (the resolver did
 * not answer within the connect timeout),
 * "connection lost: connection reset by peer", "protocol error: ...". It
 * does not name the server: rlink_name does. */
typedef void (*rlink_closed_fn)(rlink *l, const char *why, void *arg);

typedef struct rlink_opts {
	const char *host;            /* an IPv4/IPv6 address ("::1" or "[::1]") or a DNS name */
	int port;
	const char *user;            /* ACL user for AUTH, or NULL */
	const char *password;        /* NULL: no AUTH */
	unsigned connect_timeout_ms; /* resolve + connect + AUTH; 0: 3000 */
	bool subscriber;             /* replies are pushes (see above) */
	rlink_push_fn on_push;       /* subscriber links only */
	rlink_closed_fn on_closed;
	void *arg;                   /* passed to on_push and on_closed */
	const rtls_config *tls;      /* NULL: plain TCP; else TLS (see above) */
} rlink_opts;

/* A new link; connecting starts at once. The strings in `o` are copied.
 * NULL only when out of memory. */
rlink *rlink_open(uv_loop_t *loop, const rlink_opts *o);

/* Queue a command (argv/lens as for redisFormatCommandArgv; lens NULL:
 * strlen). `cb` may be NULL on a subscribed link only (elsewhere NULL
 * means the reply is read and dropped: it still counts as waiting). 0, or
 * CONFAB_EUNAVAILABLE (the link is closed or failed: nothing was queued,
 * `cb` will not be called) or CONFAB_ENOMEM, or CONFAB_EINVAL (argc < 1). */
int rlink_command(rlink *l, int argc, const char **argv, const size_t *lens,
		  rlink_reply_fn cb, void *arg);

/* Close: pending callbacks get NULL now; no callback of any kind after
 * this returns. `l` must not be used again. NULL is accepted. */
void rlink_close(rlink *l);

/* True once connected (and AUTH, if any, was accepted). */
bool rlink_connected(const rlink *l);
/* True when the link has been connected (AUTH, if any, accepted) and the
 * server then answered a command or sent a push, even if it failed since.
 * Inside on_closed it tells "lost the connection" from "could not
 * connect": a server that closes right after the TLS handshake (refusing
 * a client certificate) or refuses AUTH was never connected. */
bool rlink_was_connected(const rlink *l);
/* uv_now() at which the oldest command still waiting for its reply was
 * queued, or 0 when none waits. A connection answers in order: when this
 * one is late, all are (the owner's deadline). */
uint64_t rlink_oldest(const rlink *l);
/* How many commands wait for a reply. */
size_t rlink_pending(const rlink *l);
/* "host:port" as given, for logs. */
const char *rlink_name(const rlink *l);

#endif /* CONFAB_RLINK_H */
