/* jwt: what the plugin's two files share (not part of the SDK).
 *
 * jwt.c reads the configuration and answers the auth chain; jwt_verify.c
 * checks a token and turns its claims into a confab_auth_result.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_JWT_H
#define CONFAB_JWT_H

#include <stddef.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <confab/plugin.h>

#define USER_MAX 64            /* the longest user id the broker accepts */

/* The algorithms the plugin knows; `algs` is a bit set of them. */
enum alg { HS256, HS384, HS512, RS256, ES256, N_ALGS };

#define ALG_BIT(a) (1u << (a))
#define HS_ALGS (ALG_BIT(HS256) | ALG_BIT(HS384) | ALG_BIT(HS512))

extern const char *const jwt_alg_names[N_ALGS];

/* One instance: its configuration, read once by init. */
struct jwt {
	confab_ctx *ctx;
	const confab_host *host;
	unsigned algs;             /* ALG_BITs accepted */
	unsigned char *secret;     /* HMAC key, or NULL */
	size_t secret_len;
	EVP_PKEY *pkey;            /* public key, or NULL */
	enum alg key_alg;          /* RS256 or ES256: what pkey can verify */
	long leeway;               /* seconds */
	const char *issuer;        /* from config_get (lives until destroy), or NULL */
	const char *audience;      /* likewise */
};

/* What an ALLOW's strings point into; freed by jwt_grant_free after done(). */
struct jwt_grant {
	json_t *claims;
	const char **rooms;
	const char **direct;
};

/* The algorithm named `name` exactly ("HS256"), or -1. */
int jwt_alg_lookup(const char *name);

/* Check the token tok[len] (not NUL-terminated) and fill `r`: ALLOW with
 * the user, rooms, direct and expires_ms (its strings live in *grant), or
 * DENY 401 with a static reason that never quotes the token. Returns 0,
 * or CONFAB_ENOMEM when it could not decide (r is then unset). */
int jwt_verify_token(const struct jwt *j, const char *tok, size_t len,
		     confab_auth_result *r, struct jwt_grant *grant);

void jwt_grant_free(struct jwt_grant *grant);

#endif /* CONFAB_JWT_H */
