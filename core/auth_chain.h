/* The auth chain: auth plugins consulted in chain order at the handshake;
 * the first answer that is not "ignore" wins; when all ignore,
 * allow_anonymous admits the client as a guest (identity.h). */
#ifndef CONFAB_CORE_AUTH_CHAIN_H
#define CONFAB_CORE_AUTH_CHAIN_H

#include <confab/plugin.h>

#include "session.h"

/* The chain's decision for a pending session: a grant to admit it with
 * (the callee may take its pattern lists, NULLing them; the chain frees
 * what is left), or NULL and a refusal's HTTP
 * status and reason. Called once, never after the session stopped being
 * pending (the transport closed it meanwhile). */
typedef void (*auth_chain_decided)(confab_session *s, session_grant *grant, int http_status,
				   const char *reason);

/* Runs the chain for a pending session; ends in `decided`, now (before
 * this returns) or later. `req` is borrowed (copied if needed). */
void auth_chain_run(confab_session *s, const confab_request *req, auth_chain_decided decided);
/* The transport closed a session that may still await a plugin's answer:
 * the plugin is told (ABI 1.3 cancel) and the work's place is given
 * back; without that slot the answer is dropped when it comes. */
void auth_chain_cancel(confab_session *s);
/* host->auth->login_begin (confab/auth.h). */
int auth_chain_login_begin(confab_ctx *ctx, void *arg, const char *user);

#endif
