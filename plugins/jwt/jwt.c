/* jwt: confab's JSON Web Token auth plugin.
 *
 * Admits a client that shows a valid token, as the token's `sub`, with the
 * rooms and direct-message peers its claims grant, until its `exp`:
 *
 *   [jwt]
 *   secret = ...                ; HMAC key for HS256/384/512 (or secret_file)
 *   public_key_file = key.pem   ; RSA or EC P-256 public key for RS256/ES256
 *   algorithms = HS256          ; the algorithms accepted (default: by key)
 *   leeway = 30                 ; clock skew allowed on exp and nbf, seconds
 *   issuer = https://id.example ; optional: `iss` must equal it
 *   audience = chat             ; optional: `aud` must contain it
 *
 * The token comes from the `authorization: Bearer TOKEN` header or from the
 * query (`?token=TOKEN`). No token: ignore (the next auth plugin or
 * allow_anonymous decides). A token that fails any check: deny 401 with a
 * short reason. Verification is synchronous (an HMAC or one public-key
 * verification), so every answer is given before authenticate() returns.
 * The section (keys included) is read again on SIGHUP or `confabctl
 * reload`, with the rest of broker.ini (the core's reload, ABI 1.8).
 * docs/auth-jwt.md has the details.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include <confab/query.h>
#include <confab/util.h>

#include "jwt.h"

/* One instance: where it logs, and the rules read by init or the last
 * reload. */
struct jwt {
	confab_ctx *ctx;
	const confab_host *host;
	struct jwt_rules *rules;
};

/* The rules in the log: what the instance now accepts. `how` says when
 * ("" at init). */
static void log_rules(struct jwt *j, const char *how)
{
	const struct jwt_rules *rules = j->rules;
	char list[64] = "";

	for (int a = 0; a < N_ALGS; a++)
		if (rules->algs & ALG_BIT(a))
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 list[0] ? ", " : "", jwt_alg_names[a]);
	j->host->log(j->ctx, CONFAB_LOG_INFO, "%saccepting %s tokens (leeway %lds%s%s%s%s)", how,
		     list, rules->leeway, rules->issuer ? ", issuer " : "",
		     rules->issuer ? rules->issuer : "", rules->audience ? ", audience " : "",
		     rules->audience ? rules->audience : "");
}

/* [jwt] read into new rules (NULL when it does not read: reported). */
static int read_rules(confab_ctx *ctx, const confab_host *host, struct jwt_rules **out)
{
	struct jwt_rules *rules = malloc(sizeof(*rules));
	int rc;

	if (rules == NULL)
		return CONFAB_ENOMEM;
	if ((rc = jwt_config_read(ctx, host, rules)) != 0) {
		free(rules);
		return rc;
	}
	*out = rules;
	return 0;
}

static void free_rules(struct jwt_rules *rules)
{
	if (rules != NULL)
		jwt_config_clear(rules);
	free(rules);
}

static int jwt_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	struct jwt *j = calloc(1, sizeof(*j));
	int rc;

	if (j == NULL)
		return CONFAB_ENOMEM;
	j->ctx = ctx;
	j->host = host;
	if ((rc = read_rules(ctx, host, &j->rules)) != 0) {
		free(j);
		return rc;
	}
	log_rules(j, "");
	*state = j;
	return 0;
}

static void jwt_destroy(void *state)
{
	struct jwt *j = state;

	free_rules(j->rules);
	free(j);
}

/* The section read again, as init reads it (a key file or secret_file
 * read anew even when its name is the same); the new rules wait in
 * *pending for reload_finish. */
static int jwt_reload(void *state, void **pending)
{
	struct jwt *j = state;
	struct jwt_rules *rules;
	int rc = read_rules(j->ctx, j->host, &rules);

	if (rc == 0)
		*pending = rules;
	return rc;
}

/* Every token is checked within authenticate(), so nothing holds the old
 * rules: they go at once. Sessions admitted before keep their expiry. */
static void jwt_reload_finish(void *state, void *pending, bool apply)
{
	struct jwt *j = state;

	if (!apply) {
		free_rules(pending);
		return;
	}
	free_rules(j->rules);
	j->rules = pending;
	log_rules(j, "reloaded: ");
}

/* ---- finding the token ---- */

/* The token of the request: from `authorization: Bearer` (pointing into
 * the header), else from `?token=` (percent-decoded into buf[size]). 1
 * with *tok and *len set; 0 when there is none (or it is empty); -1 when
 * the query's is too long or undecodable, or the header's holds a blank. */
static int find_token(const confab_request *req, char *buf, size_t size, const char **tok,
		      size_t *len)
{
	long n;

	if ((*tok = confab_auth_credentials(req, "Bearer", len)) != NULL)
		return strcspn(*tok, " \t\r\n") < *len ? -1 : 1;
	if (confab_auth_scheme_is(req, "Bearer"))
		return 0;  /* `Bearer` and no token: as if there were none */
	n = confab_query_param(req->query, "token", buf, size);
	if (n == CONFAB_QUERY_ABSENT || n == 0)
		return 0;
	if (n < 0)
		return -1;
	*tok = buf;
	*len = (size_t)n;
	return 1;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Answers at once (done() before returning): nothing is ever pending at
 * stop(). Neither the token nor the key is ever logged or returned. */
static int jwt_authenticate(void *state, const confab_request *req,
			    confab_auth_done done, void *arg)
{
	struct jwt *j = state;
	confab_auth_result r = { .size = sizeof(r), .decision = CONFAB_AUTH_IGNORE };
	struct jwt_grant grant = { 0 };
	char *buf = malloc(JWT_TOKEN_MAX + 1);
	const char *tok = NULL;
	size_t len = 0;
	int found, rc = 0;

	if (buf == NULL)
		return CONFAB_ENOMEM;
	found = find_token(req, buf, JWT_TOKEN_MAX + 1, &tok, &len);
	if (found < 0) {
		r.decision = CONFAB_AUTH_DENY;
		r.http_status = 401;
		r.reason = "invalid token: too long or badly percent-encoded";
	} else if (found > 0) {
		rc = jwt_verify_token(j->rules, tok, len, now_seconds(), &r, &grant);
	}
	OPENSSL_cleanse(buf, JWT_TOKEN_MAX + 1);
	free(buf);
	if (rc != 0)
		return rc;

	if (r.decision == CONFAB_AUTH_DENY)
		j->host->log(j->ctx, CONFAB_LOG_INFO, "denied %s: %s", req->remote_addr, r.reason);
	else if (r.decision == CONFAB_AUTH_ALLOW)
		j->host->log(j->ctx, CONFAB_LOG_DEBUG, "admitted %s from %s", r.user,
			     req->remote_addr);
	done(arg, &r);
	jwt_grant_free(&grant);
	return 0;
}

/* Every answer is given at once, so there is no start, stop or cancel. */
static const confab_plugin jwt_plugin = {
	CONFAB_PLUGIN_HEADER(CONFAB_KIND_AUTH, "jwt", "0.1.0"),
	.description = "admits clients with a valid JSON Web Token (HS256/384/512, RS256, ES256)",
	.init = jwt_init,
	.destroy = jwt_destroy,
	.reload = jwt_reload,
	.reload_finish = jwt_reload_finish,
	.auth = &(const confab_auth_ops){ .size = sizeof(confab_auth_ops),
					  .authenticate = jwt_authenticate },
};

CONFAB_PLUGIN_DEFINE(jwt_plugin)
