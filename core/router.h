/* Routing: a client's request becomes a reply or a backplane call; an
 * envelope from the backplane becomes frames for the local sessions it
 * concerns. The only place that knows the protocol's semantics. */
#ifndef CONFAB_CORE_ROUTER_H
#define CONFAB_CORE_ROUTER_H

#include <stddef.h>
#include <confab/plugin.h>

#include "broker.h"

/* One complete client message (host->transport->session_recv). */
void router_recv(confab_session *s, const void *data, size_t len, unsigned flags);
/* An envelope for this node's sessions (host->backplane->deliver). */
void router_deliver(broker *b, const confab_envelope *env);

/* Session life (session_flow.c): the first session of a user on this node
 * came / the last one went; a session leaves all its rooms. */
void router_user_online(broker *b, const char *user);
void router_user_offline(broker *b, const char *user);
void router_leave_all(confab_session *s);

#endif
