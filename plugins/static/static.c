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
 * Passwords are checked on libuv's thread pool; the file is read again on
 * SIGHUP. docs/auth-static.md is the user's side of this.
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
#include <string.h>

#include "static.h"

void static_release(struct static_auth *st)
{
	if (--st->holds > 0)
		return;
	free(st->path);
	free(st);
}

static int static_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	const char *path = host->config_get(ctx, "users_file");
	struct static_auth *st;
	struct users_error err;

	if (path == NULL || *path == '\0') {
		host->config_error(ctx, "users_file", "must be set (e.g. users_file = /etc/confab/users)");
		return CONFAB_EINVAL;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL || (st->path = strdup(path)) == NULL) {
		free(st);
		return CONFAB_ENOMEM;
	}
	if ((st->table = static_users_load(path, &err)) == NULL) {
		host->config_error(ctx, "users_file", "%s", err.text);
		free(st->path);
		free(st);
		return CONFAB_EINVAL;
	}
	st->ctx = ctx;
	st->host = host;
	st->holds = 1;
	st->denied_log = (confab_ratelimit)CONFAB_RATELIMIT_INIT(1000);
	st->malformed_log = (confab_ratelimit)CONFAB_RATELIMIT_INIT(1000);
	if (st->table->n == 0)
		host->log(ctx, CONFAB_LOG_WARN, "%s lists no users: every password is refused", path);
	else
		host->log(ctx, CONFAB_LOG_INFO, "%zu users from %s", st->table->n, path);
	*state = st;
	return 0;
}

static int static_start(void *state)
{
	return static_reload_start(state);
}

/* Answers every check in flight with 503 now and stops watching SIGHUP. */
static void static_stop(void *state)
{
	struct static_auth *st = state;

	st->stopping = true;
	static_reload_stop(st);
	static_check_stop(st);
}

/* The state outlives destroy while pool work or the SIGHUP handle's close
 * is pending: the core runs the loop until they are done, before it
 * unloads the file, and the last one to finish frees it. */
static void static_destroy(void *state)
{
	struct static_auth *st = state;

	static_stop(st);
	static_users_unref(st->table);
	st->table = NULL;
	static_release(st);
}

/* The auth slots are static_check.c's: answering a client is its job. */
static const confab_plugin static_plugin = {
	CONFAB_PLUGIN_HEADER(CONFAB_KIND_AUTH, "static", "0.1.0"),
	.description = "users and crypt(3) password hashes from a file, reloaded on SIGHUP",
	.init = static_init,
	.start = static_start,
	.stop = static_stop,
	.destroy = static_destroy,
	.auth = &(const confab_auth_ops){ .size = sizeof(confab_auth_ops),
					  .authenticate = static_check_authenticate,
					  .cancel = static_check_cancel },
};

CONFAB_PLUGIN_DEFINE(static_plugin)
