/* The auth chain: auth plugins consulted in chain order at the handshake;
 * the first answer that is not "ignore" wins; when all ignore,
 * allow_anonymous admits the client as guest-XXXXXXXX. */
#ifndef CONFAB_CORE_AUTH_CHAIN_H
#define CONFAB_CORE_AUTH_CHAIN_H

#include <confab/plugin.h>

/* Runs the chain for a pending session; ends in session_admit or
 * session_deny, now or later. `req` is borrowed (copied if needed). */
void auth_chain_run(confab_session *s, const confab_request *req);

#endif
