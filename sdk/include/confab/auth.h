/* confab plugin SDK — the auth kind.
 *
 * Auth plugins are consulted at the handshake, in the order of the plugin
 * chain. Each answers allow (with the user id), deny (with an HTTP status
 * and a reason) or ignore. The first answer that is not ignore wins; when
 * every plugin ignores, the broker's allow_anonymous setting decides
 * (admitting the client as guest- and 16 hex digits). User ids that begin
 * with "guest-" (in any case) are the core's: an ALLOW for one is refused.
 *
 * Checking credentials can be expensive on purpose (a password hash).
 * The core bounds how many decisions may be awaited at once (per address
 * and node-wide) and refuses beyond that without calling the plugin; a
 * plugin that hashes asks the core first (host->auth->login_begin, ABI
 * 1.3) so that addresses and names with too many failed logins are
 * refused with 429 before any work is done.
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
	int32_t decision;            /* a confab_auth_decision */
	/* ALLOW: the user id, 1-64 bytes of A-Z a-z 0-9 _ . : - @, not
	 * beginning with "guest-" in any case (reserved for anonymous
	 * clients: the core refuses such an ALLOW with 403). */
	const char *user;
	/* DENY: 401 (no or bad credentials), 403 (not allowed), 429 (too
	 * many connections, or login_begin said throttled) or 503
	 * (unavailable). After login_begin, a 401 counts as a failed login
	 * against the client's address and the claimed name. */
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

	/* Decide on a connection. `req` (the core's own copy of the request)
	 * stays valid until done is called for `arg`, or until cancel for
	 * `arg` returns: a plugin answering later may read it from its
	 * callback without copying it. Blocking work (password hashing)
	 * goes to uv_queue_work. Returns 0 (done will be called) or a negative
	 * code (treated as deny 503, done is not called). */
	int (*authenticate)(void *state, const confab_request *req,
			    confab_auth_done done, void *arg);

	/* ---- ABI 1.3 ---- */

	/* Optional. The core no longer wants the answer of the pending
	 * authenticate() call made with `arg`: the client hung up or its
	 * handshake timed out. Called at most once per call, only while its
	 * done has not been called, on the loop thread. After cancel returns
	 * the plugin must not call done for `arg` (nor from inside cancel)
	 * and should drop the work if it can (uv_cancel a queued work
	 * request). Without this slot the core waits for done and then
	 * throws the answer away, and the work counts as pending until then. */
	void (*cancel)(void *state, void *arg);
} confab_auth_ops;

/* What the core offers auth plugins: host->auth (ABI 1.3; NULL in an
 * older host, and check each slot with CONFAB_HAS). */
typedef struct confab_host_auth {
	uint32_t size;               /* sizeof(confab_host_auth) */

	/* Ask before the expensive part of a check (hashing a password,
	 * calling a remote service). `arg` is the value given to the pending
	 * authenticate() call; `user` (borrowed, may be NULL) is the name the
	 * credentials claim, valid or not. At most once per authenticate()
	 * call, before its done, on the loop thread.
	 * Returns 0: go ahead; if the check then fails, answer DENY 401 and
	 * the core counts a failed login against the client's address and
	 * `user`. Returns CONFAB_EFULL: the address, or the name asked for
	 * by an address that failed lately, has too many recent failed
	 * logins: do not do the work, answer DENY 429 (the core logs it).
	 * CONFAB_EINVAL: not called as described; go ahead. */
	int (*login_begin)(confab_ctx *ctx, void *arg, const char *user);
} confab_host_auth;

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_AUTH_H */
