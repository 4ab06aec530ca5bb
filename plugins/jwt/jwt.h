/* jwt: what the plugin's files share (not part of the SDK): the rules a
 * token is checked against, how they are read, and the check itself.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_JWT_H
#define CONFAB_JWT_H

#include <stddef.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <confab/plugin.h>

#define JWT_TOKEN_MAX 8192     /* longer tokens are refused unread */

/* The algorithms the plugin knows; `algs` is a bit set of them. */
enum alg { HS256, HS384, HS512, RS256, ES256, N_ALGS };

#define ALG_BIT(a) (1u << (a))
#define HS_ALGS (ALG_BIT(HS256) | ALG_BIT(HS384) | ALG_BIT(HS512))

extern const char *const jwt_alg_names[N_ALGS];

/* What a token must satisfy: the keys and the claims' options, read by
 * init and by each reload. The check needs nothing else of the instance. */
struct jwt_rules {
	unsigned algs;             /* ALG_BITs accepted */
	unsigned char *secret;     /* HMAC key, or NULL */
	size_t secret_len;
	EVP_PKEY *pkey;            /* public key, or NULL */
	enum alg key_alg;          /* RS256 or ES256: what pkey can verify */
	long leeway;               /* seconds */
	/* config_get's strings: they live until the instance's destroy */
	const char *issuer;        /* `iss` must equal it, or NULL */
	const char *audience;      /* `aud` must hold it, or NULL */
};

/* ---- reading [jwt] (jwt_config.c) ---- */

/* Reads the instance's section through `host` into *rules, keys and
 * files included, checked as docs/auth-jwt.md says. 0, or CONFAB_EINVAL
 * (one config_error line written) or CONFAB_ENOMEM, with *rules holding
 * nothing. Every key of the section is read (none is reported unknown). */
int jwt_config_read(confab_ctx *ctx, const confab_host *host, struct jwt_rules *rules);

/* Frees what jwt_config_read put in *rules (the secret wiped) and zeroes it. */
void jwt_config_clear(struct jwt_rules *rules);

/* ---- checking a token (jwt_verify.c) ---- */

/* What an ALLOW's strings point into; freed by jwt_grant_free after done(). */
struct jwt_grant {
	json_t *claims;
	const char **rooms;
	const char **direct;
};

/* The algorithm named `name` exactly ("HS256"), or -1. */
int jwt_alg_lookup(const char *name);

/* Check the token tok[len] (not NUL-terminated) against `rules` at `now`
 * (seconds since the epoch) and fill `r`: ALLOW with the user, rooms,
 * direct and expires_ms (its strings live in *grant), or DENY 401 with a
 * static reason that never quotes the token. Returns 0, or CONFAB_ENOMEM
 * when it could not decide (r is then unset). */
int jwt_verify_token(const struct jwt_rules *rules, const char *tok, size_t len, double now,
		     confab_auth_result *r, struct jwt_grant *grant);

void jwt_grant_free(struct jwt_grant *grant);

#endif /* CONFAB_JWT_H */
