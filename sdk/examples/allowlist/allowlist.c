/* allowlist: an example confab auth plugin.
 *
 * Admits the users listed in its section, by the name a client gives in
 * the query string of its WebSocket URL (ws://HOST:8080/ws?user=alice):
 *
 *   [allowlist]
 *   users = alice, bob    ; who may connect (comma or space separated)
 *   param = user          ; optional: the query parameter to read
 *
 * A listed name is allowed as that user; a name that is not listed is
 * denied (HTTP 403); a client without the parameter (or with it empty) is
 * ignored, so the next auth plugin in the chain, or allow_anonymous,
 * decides. Anyone can claim any name: this is a shape to copy, not a lock.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L  /* strdup */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <confab/plugin.h>
#include <confab/query.h>
#include <confab/util.h>   /* confab_valid_user, CONFAB_USER_MAX */

struct allowlist {
	confab_ctx *ctx;          /* our instance, for host->log */
	const confab_host *host;
	char *names;              /* a copy of `users`, separators made NULs */
	size_t len;
	const char *param;        /* from config_get: lives until destroy */
};

/* Walk the NUL-separated names, skipping the empty ones. */
#define FOR_EACH_NAME(al, s) \
	for (const char *s = (al)->names; s < (al)->names + (al)->len; s += strlen(s) + 1) \
		if (*s != '\0')

static bool listed(const struct allowlist *al, const char *name)
{
	FOR_EACH_NAME(al, s)
		if (strcmp(s, name) == 0)
			return true;
	return false;
}

/* Read and check the section. Open nothing here: `confabd -t` calls init
 * and then destroy. Keys we never read are reported as unknown. */
static int allowlist_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	const char *users = host->config_get(ctx, "users");
	const char *param = host->config_get(ctx, "param");
	struct allowlist *al;
	size_t count = 0;

	if (users == NULL) {
		host->config_error(ctx, "users", "must be set (e.g. users = alice, bob)");
		return CONFAB_EINVAL;
	}
	if (param != NULL && *param == '\0') {
		host->config_error(ctx, "param", "must not be empty");
		return CONFAB_EINVAL;
	}
	if ((al = calloc(1, sizeof(*al))) == NULL || (al->names = strdup(users)) == NULL) {
		free(al);
		return CONFAB_ENOMEM;
	}
	al->ctx = ctx;
	al->host = host;
	al->param = param != NULL ? param : "user";
	al->len = strlen(users);
	for (char *c = al->names; *c != '\0'; c++)
		if (*c == ',' || *c == ' ' || *c == '\t')
			*c = '\0';
	FOR_EACH_NAME(al, s) {
		if (!confab_valid_user(s)) {
			host->config_error(ctx, "users", "'%s' is not a valid user name", s);
			goto fail;
		}
		count++;
	}
	if (count == 0) {
		host->config_error(ctx, "users", "lists no user");
		goto fail;
	}
	host->log(ctx, CONFAB_LOG_INFO, "%zu users may connect with ?%s=NAME", count, al->param);
	*state = al;
	return 0;
fail:
	free(al->names);
	free(al);
	return CONFAB_EINVAL;
}

static void allowlist_destroy(void *state)
{
	struct allowlist *al = state;

	free(al->names);
	free(al);
}

/* Answers at once (done() before returning), so no answer is ever pending
 * at stop(). `req` and the result are borrowed for this call only. */
static int allowlist_authenticate(void *state, const confab_request *req,
				  confab_auth_done done, void *arg)
{
	struct allowlist *al = state;
	char name[CONFAB_USER_MAX + 1];
	confab_auth_result r = { .size = sizeof(r), .decision = CONFAB_AUTH_IGNORE };
	/* 1: a name; 0: no name (absent or empty); -1: not decodable */
	long len = confab_query_param(req->query, al->param, name, sizeof(name));
	int found = len > 0 ? 1 : len == CONFAB_QUERY_BAD ? -1 : 0;

	if (found > 0 && listed(al, name)) {
		r.decision = CONFAB_AUTH_ALLOW;
		r.user = name;
	} else if (found != 0) {
		r.decision = CONFAB_AUTH_DENY;
		r.http_status = 403;
		r.reason = "user not allowed";
		/* The query is the client's: log the name only when it is valid. */
		al->host->log(al->ctx, CONFAB_LOG_INFO, "denied %s from %s",
			      found > 0 && confab_valid_user(name) ? name : "(invalid name)",
			      req->remote_addr);
	}
	done(arg, &r);
	return 0;
}

static const confab_auth_ops allowlist_ops = {
	.size = sizeof(confab_auth_ops),
	.authenticate = allowlist_authenticate,
};

static const confab_plugin allowlist_plugin = {
	CONFAB_PLUGIN_HEADER(CONFAB_KIND_AUTH, "allowlist", "1.0.0"),
	.description = "admits the users listed in its section",
	.init = allowlist_init,
	.destroy = allowlist_destroy,   /* stop() is optional: nothing to stop */
	.auth = &allowlist_ops,
};

/* The one exported symbol, confab_plugin_entry(), returning the above. */
CONFAB_PLUGIN_DEFINE(allowlist_plugin)
