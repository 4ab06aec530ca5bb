/* static: confab's auth plugin for a file of users and password hashes —
 * the descriptor and the instance's life (init, start, stop, destroy).
 *
 *   [static]
 *   users_file = /etc/confab/users   ; one `user:hash[:pattern,pattern]` a line
 *
 * The hashes are crypt(3) SHA-512 ($6$) or yescrypt ($y$) hashes as made by
 * `mkpasswd`. A client gives its name and password with HTTP Basic or as
 * ?user=NAME&password=PW. A client without credentials is ignored (the next
 * plugin decides); right ones are allowed, with the user's room patterns;
 * wrong ones (or an unknown name) are denied with 401 "invalid credentials".
 * Passwords are checked on libuv's thread pool. The file is read again on
 * SIGHUP or `confabctl reload`, with the rest of broker.ini (the core's
 * reload, ABI 1.8): a file that does not read refuses the whole reload.
 * docs/auth-static.md is the user's side of this.
 *
 * Checks are what an attacker would use against the node, so before one
 * is queued the core is asked (host->auth->login_begin, ABI 1.3) whether
 * the address or the name is locked after failed logins, and answers 429
 * without hashing when it is; the core also bounds how many checks are
 * awaited at once. A check whose client left is cancelled (the cancel
 * slot): uv_cancel drops it unless a pool thread has begun it. Passwords
 * of CRYPT_MAX_PASSPHRASE_SIZE (512) bytes or more, which libxcrypt
 * refuses, are refused at once; shorter ones cost what their hash method
 * costs (yescrypt prehashes the password: 511 bytes cost what 8 do;
 * SHA-512 crypt hashes it once a round: 511 bytes cost 8 times what 8
 * do, still less than a yescrypt check).
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>

#include "static.h"

void static_release(struct static_auth *st)
{
	if (--st->holds > 0)
		return;
	free(st);
}

/* [static] read into a new users table: the one reading of init and
 * reload, so that a reload refuses a file with the very line `confabd -t`
 * prints for it. 0 with *out set, or CONFAB_EINVAL (reported). */
static int read_section(confab_ctx *ctx, const confab_host *host, struct user_table **out)
{
	const char *path = host->config_get(ctx, "users_file");
	struct users_error err;

	if (path == NULL || *path == '\0') {
		host->config_error(ctx, "users_file", "must be set (e.g. users_file = /etc/confab/users)");
		return CONFAB_EINVAL;
	}
	if ((*out = static_users_load(path, &err)) == NULL) {
		host->config_error(ctx, "users_file", "%s", err.text);
		return CONFAB_EINVAL;
	}
	return 0;
}

/* What the instance now admits; `how` says when ("" at init). */
static void log_users(confab_ctx *ctx, const confab_host *host, const struct user_table *t,
		      const char *how)
{
	if (t->n == 0)
		host->log(ctx, CONFAB_LOG_WARN, "%s%s lists no users: every password is refused",
			  how, t->path);
	else
		host->log(ctx, CONFAB_LOG_INFO, "%s%zu users from %s", how, t->n, t->path);
}

static int static_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	struct static_auth *st;
	struct user_table *t;
	int rc = read_section(ctx, host, &t);

	if (rc != 0)
		return rc;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		static_users_unref(t);
		return CONFAB_ENOMEM;
	}
	st->ctx = ctx;
	st->host = host;
	st->table = t;
	st->holds = 1;
	st->denied_log = (confab_ratelimit)CONFAB_RATELIMIT_INIT(1000);
	st->malformed_log = (confab_ratelimit)CONFAB_RATELIMIT_INIT(1000);
	log_users(ctx, host, t, "");
	*state = st;
	return 0;
}

/* Answers every check in flight with 503 now. */
static void static_stop(void *state)
{
	struct static_auth *st = state;

	st->stopping = true;
	static_check_stop(st);
}

/* The state outlives destroy while pool work is pending: the core runs
 * the loop until it is done, before it unloads the file, and the last
 * job to finish frees it. */
static void static_destroy(void *state)
{
	struct static_auth *st = state;

	static_stop(st);
	static_users_unref(st->table);
	st->table = NULL;
	static_release(st);
}

/* The file read again (users_file may name another one now), as init
 * reads it; the new table waits in *pending for reload_finish. */
static int static_reload(void *state, void **pending)
{
	struct static_auth *st = state;
	struct user_table *t;
	int rc = read_section(st->ctx, st->host, &t);

	if (rc == 0)
		*pending = t;
	return rc;
}

/* New checks use the new table; those in flight keep a reference to the
 * one they started with (static_check.c), which goes with the last. */
static void static_reload_finish(void *state, void *pending, bool apply)
{
	struct static_auth *st = state;
	struct user_table *t = pending;

	if (!apply) {
		static_users_unref(t);
		return;
	}
	static_users_unref(st->table);
	st->table = t;
	log_users(st->ctx, st->host, t, "reloaded ");
}

/* The auth slots are static_check.c's: answering a client is its job. */
static const confab_plugin static_plugin = {
	CONFAB_PLUGIN_HEADER(CONFAB_KIND_AUTH, "static", "0.1.0"),
	.description = "users and crypt(3) password hashes from a file, read again on reload",
	.init = static_init,
	.stop = static_stop,
	.destroy = static_destroy,
	.reload = static_reload,
	.reload_finish = static_reload_finish,
	.auth = &(const confab_auth_ops){ .size = sizeof(confab_auth_ops),
					  .authenticate = static_check_authenticate,
					  .cancel = static_check_cancel },
};

CONFAB_PLUGIN_DEFINE(static_plugin)
