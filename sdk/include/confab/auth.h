/* confab plugin SDK — the auth kind.
 *
 * Auth plugins are consulted at the handshake, in the order of the plugin
 * chain. Each answers allow (with the user id), deny (with an HTTP status
 * and a reason) or ignore. The first answer that is not ignore wins; when
 * every plugin ignores, the broker's allow_anonymous setting decides
 * (admitting the client as guest-XXXXXXXX).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_AUTH_H
#define CONFAB_AUTH_H

#include <confab/common.h>
#include <confab/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum confab_auth_decision {
	CONFAB_AUTH_IGNORE = 0,  /* no opinion: ask the next plugin */
	CONFAB_AUTH_ALLOW = 1,   /* admit as `user` */
	CONFAB_AUTH_DENY = 2     /* refuse with http_status and reason */
} confab_auth_decision;

/* An auth plugin's answer. Built by the plugin, borrowed by the core for
 * the duration of the done callback (the core copies the user and the
 * patterns). Set `size` to sizeof(confab_auth_result): fields past it are
 * taken as absent. */
typedef struct confab_auth_result {
	uint32_t size;               /* sizeof(confab_auth_result) */
	confab_auth_decision decision;
	/* ALLOW: the user id, 1-64 bytes of A-Z a-z 0-9 _ . : - @ */
	const char *user;
	/* DENY: 401 (no or bad credentials), 403 (not allowed), 429 (too
	 * many connections) or 503 (unavailable). */
	int http_status;
	/* DENY: short reason for the log and the client; never a secret. */
	const char *reason;

	/* ---- ABI 1.1: permissions (ALLOW only; read by a 1.1+ core when
	 * `size` covers them; a 1.0 plugin's users may do everything) ---- */

	/* Glob patterns (fnmatch(3), no flags: `*`, `?`, `[...]`) of the rooms
	 * the user may join, send to, and read history and presence of; NULL
	 * means every room. A refused request gets error `forbidden`. */
	const char *const *rooms;
	size_t n_rooms;
	/* Glob patterns of the users the user may send direct messages to;
	 * NULL means anyone. */
	const char *const *direct;
	size_t n_direct;
	/* When the credentials expire, in ms since the epoch; 0 = never. The
	 * core closes the session with 4001 "token expired" when it passes. */
	int64_t expires_ms;
} confab_auth_result;

/* Called by the plugin exactly once per authenticate() call that returned
 * 0, possibly before authenticate() returns, always on the loop thread.
 * `arg` is the value given to authenticate(). A plugin that still has
 * pending answers when stop() is called answers them (deny 503) before
 * destroy() returns. */
typedef void (*confab_auth_done)(void *arg, const confab_auth_result *result);

/* What an auth plugin implements besides the lifecycle. */
typedef struct confab_auth_ops {
	uint32_t size;               /* sizeof(confab_auth_ops) */

	/* Decide on a connection. `req` is borrowed for this call only: copy
	 * what an asynchronous answer needs. Blocking work (password hashing)
	 * goes to uv_queue_work. Returns 0 (done will be called) or a negative
	 * code (treated as deny 503, done is not called). */
	int (*authenticate)(void *state, const confab_request *req,
			    confab_auth_done done, void *arg);
} confab_auth_ops;

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_AUTH_H */
