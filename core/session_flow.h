/* A session's life, in one place: opening (refusals before the auth
 * chain, the chain, admission), expiry, and closing. The transport's host
 * slots call it; it calls the registry (session.h), the auth chain, the
 * router and the expiry heap, none of which calls it back but through the
 * callbacks it hands them. */
#ifndef CONFAB_CORE_SESSION_FLOW_H
#define CONFAB_CORE_SESSION_FLOW_H

#include <stdbool.h>
#include <confab/plugin.h>

#include "broker.h"
#include "expiry.h"

/* host->transport->session_open: a new pending session for `conn`, or
 * NULL (not serving, draining, out of memory). A refusal before the chain (origin
 * not allowed, `origin_ok` false; too many connections from the address)
 * is answered at once; otherwise the auth chain decides, now or later,
 * and the session is admitted: registry, "user online" on the backplane
 * for a user's first session here, its expiry armed, the transport
 * answered, welcome sent. */
confab_session *session_flow_open(confab_ctx *transport, const confab_request *req, void *conn,
				  confab_open_done done, void *arg, bool origin_ok);
/* host->transport->session_closed: a check still running for the
 * session is dropped; an open session leaves every room, its expiry is
 * disarmed, it leaves the registry ("user offline" for the user's last
 * session here); the transport's reference is given back. */
void session_flow_closed(confab_session *s);
/* host->transport->session_ended (ABI 1.9): how the connection ended,
 * kept for session_flow_closed's disconnect line. */
void session_flow_ended(confab_session *s, int code, const char *why);
/* The expiry heap's callback (broker->expiry, arg = the broker): the
 * session's credentials expired; it is closed with 4001 "token expired". */
void session_flow_expired(void *arg, expiry_entry *e);

#endif
