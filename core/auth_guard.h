/* What the core holds against password checks used as a weapon: how many
 * auth decisions are awaited (per address, from addresses that failed
 * lately, node-wide) and the failed logins of each address and claimed
 * user name. The auth chain asks it before it calls a plugin and when a
 * plugin calls host->auth->login_begin; docs/security.md#authentication
 * is the user's side of it. */
#ifndef CONFAB_CORE_AUTH_GUARD_H
#define CONFAB_CORE_AUTH_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef struct auth_guard auth_guard;

/* NULL when out of memory. */
auth_guard *auth_guard_new(const broker_settings *bs);
void auth_guard_free(auth_guard *g);
/* The bounds and throttle settings of a reloaded [broker]; decisions
 * awaited and failures counted so far are kept. */
void auth_guard_configure(auth_guard *g, const broker_settings *bs);

/* May one more decision be awaited for a client at `addr` (an address
 * key, login_throttle_address_key)? 0, or the HTTP status to refuse it
 * with at once (429 for the address, 503 for the node) and a reason. */
int auth_guard_may_wait(auth_guard *g, const char *addr, uint64_t now, const char **reason);
/* A decision for `addr` is now awaited. Returns what auth_guard_unwait
 * must be given back when it is no longer. */
bool auth_guard_wait(auth_guard *g, const char *addr, uint64_t now);
void auth_guard_unwait(auth_guard *g, const char *addr, bool failing);

/* A plugin is about to check credentials claiming `user` (may be NULL or
 * invalid) from `addr`: 0 (go ahead) or CONFAB_EFULL (throttled). */
int auth_guard_login_begin(auth_guard *g, const char *addr, const char *user, uint64_t now);
/* Those credentials were wrong. */
void auth_guard_login_failed(auth_guard *g, const char *addr, const char *user, uint64_t now);

#endif
