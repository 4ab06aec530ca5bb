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
 * docs/auth-jwt.md has the details.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include <confab/query.h>
#include <confab/util.h>

#include "jwt.h"

#define SECRET_FILE_MAX 4096   /* bytes read from secret_file */
#define DEFAULT_LEEWAY 30
#define LEEWAY_MAX 86400

/* One instance: where it logs, and the rules read once by init. */
struct jwt {
	confab_ctx *ctx;
	const confab_host *host;
	struct jwt_rules rules;
};

/* ---- configuration ---- */

/* The HMAC key of secret_file: the file's bytes, without one trailing
 * newline (LF or CRLF), as `echo` or an editor leaves. */
static int read_secret_file(struct jwt *j, const char *path)
{
	unsigned char buf[SECRET_FILE_MAX + 1];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		j->host->config_error(j->ctx, "secret_file", "cannot read %s: %s", path,
				      strerror(errno));
		return CONFAB_EINVAL;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f)) {
		j->host->config_error(j->ctx, "secret_file", "cannot read %s: %s", path,
				      strerror(errno));
		fclose(f);
		return CONFAB_EINVAL;
	}
	fclose(f);
	if (n > SECRET_FILE_MAX) {
		j->host->config_error(j->ctx, "secret_file", "%s is longer than %d bytes",
				      path, SECRET_FILE_MAX);
		OPENSSL_cleanse(buf, sizeof(buf));
		return CONFAB_EINVAL;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0) {
		j->host->config_error(j->ctx, "secret_file", "%s holds no secret", path);
		return CONFAB_EINVAL;
	}
	if ((j->rules.secret = malloc(n)) == NULL) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return CONFAB_ENOMEM;
	}
	memcpy(j->rules.secret, buf, n);
	j->rules.secret_len = n;
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* Load a PEM public key (SubjectPublicKeyInfo, "BEGIN PUBLIC KEY"): RSA
 * for RS256, EC on P-256 for ES256. */
static int read_public_key(struct jwt *j, const char *path)
{
	FILE *f = fopen(path, "r");
	char group[64];
	size_t glen = 0;

	if (f == NULL) {
		j->host->config_error(j->ctx, "public_key_file", "cannot read %s: %s", path,
				      strerror(errno));
		return CONFAB_EINVAL;
	}
	j->rules.pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (j->rules.pkey == NULL) {
		j->host->config_error(j->ctx, "public_key_file",
				      "%s holds no PEM public key (-----BEGIN PUBLIC KEY-----)",
				      path);
		return CONFAB_EINVAL;
	}
	if (EVP_PKEY_is_a(j->rules.pkey, "RSA")) {
		if (EVP_PKEY_get_bits(j->rules.pkey) < 2048) {
			j->host->config_error(j->ctx, "public_key_file",
					      "%s: an RSA key of %d bits is too weak (2048 at least)",
					      path, EVP_PKEY_get_bits(j->rules.pkey));
			return CONFAB_EINVAL;
		}
		j->rules.key_alg = RS256;
		return 0;
	}
	if (EVP_PKEY_is_a(j->rules.pkey, "EC") &&
	    EVP_PKEY_get_group_name(j->rules.pkey, group, sizeof(group), &glen) == 1 &&
	    (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)) {
		j->rules.key_alg = ES256;
		return 0;
	}
	j->host->config_error(j->ctx, "public_key_file",
			      "%s is neither an RSA key (RS256) nor an EC P-256 key (ES256)",
			      path);
	return CONFAB_EINVAL;
}

/* `algorithms`: a comma or space separated list of names. */
static int parse_algorithms(struct jwt *j, const char *v, unsigned *out)
{
	char name[16];
	unsigned algs = 0;

	while (*v != '\0') {
		size_t n = strcspn(v, ", \t");
		if (n > 0) {
			int a;
			if (n >= sizeof(name)) {
				j->host->config_error(j->ctx, "algorithms",
						      "'%.*s' is not one of HS256, HS384, HS512, RS256, ES256",
						      (int)(n > 32 ? 32 : n), v);
				return CONFAB_EINVAL;
			}
			memcpy(name, v, n);
			name[n] = '\0';
			if ((a = jwt_alg_lookup(name)) < 0) {
				j->host->config_error(j->ctx, "algorithms",
						      "'%s' is not one of HS256, HS384, HS512, RS256, ES256%s",
						      name, strcasecmp(name, "none") == 0 ?
						      " (unsigned tokens are never accepted)" : "");
				return CONFAB_EINVAL;
			}
			algs |= ALG_BIT(a);
		}
		v += n;
		v += strspn(v, ", \t");
	}
	if (algs == 0) {
		j->host->config_error(j->ctx, "algorithms", "lists no algorithm");
		return CONFAB_EINVAL;
	}
	*out = algs;
	return 0;
}

/* Everything but the keys: every key of the section is read here (those
 * not read are reported as unknown). */
static int jwt_configure(struct jwt *j)
{
	const confab_host *host = j->host;
	confab_ctx *ctx = j->ctx;
	const char *secret = host->config_get(ctx, "secret");
	const char *secret_file = host->config_get(ctx, "secret_file");
	const char *key_file = host->config_get(ctx, "public_key_file");
	const char *algorithms = host->config_get(ctx, "algorithms");
	uint64_t leeway;
	int rc;

	j->rules.issuer = host->config_get(ctx, "issuer");
	j->rules.audience = host->config_get(ctx, "audience");
	if ((rc = host->config_uint(ctx, "leeway", DEFAULT_LEEWAY, 0, LEEWAY_MAX, &leeway)) != 0)
		return rc;
	j->rules.leeway = (long)leeway;
	if (j->rules.issuer != NULL && *j->rules.issuer == '\0') {
		host->config_error(ctx, "issuer", "must not be empty (leave it out to accept any)");
		return CONFAB_EINVAL;
	}
	if (j->rules.audience != NULL && *j->rules.audience == '\0') {
		host->config_error(ctx, "audience", "must not be empty (leave it out to accept any)");
		return CONFAB_EINVAL;
	}

	/* The keys. */
	if (secret != NULL && secret_file != NULL) {
		host->config_error(ctx, "secret_file", "set either secret or secret_file, not both");
		return CONFAB_EINVAL;
	}
	if (secret != NULL) {
		if (*secret == '\0') {
			host->config_error(ctx, "secret", "must not be empty");
			return CONFAB_EINVAL;
		}
		j->rules.secret_len = strlen(secret);
		if ((j->rules.secret = malloc(j->rules.secret_len)) == NULL)
			return CONFAB_ENOMEM;
		memcpy(j->rules.secret, secret, j->rules.secret_len);
	} else if (secret_file != NULL && (rc = read_secret_file(j, secret_file)) != 0) {
		return rc;
	}
	if (key_file != NULL && (rc = read_public_key(j, key_file)) != 0)
		return rc;
	if (j->rules.secret == NULL && j->rules.pkey == NULL) {
		host->config_error(ctx, "secret",
				   "no key: set secret or secret_file (HS256/384/512) or "
				   "public_key_file (RS256/ES256)");
		return CONFAB_EINVAL;
	}

	/* The algorithms, checked against the keys. */
	if (algorithms == NULL) {
		j->rules.algs = (j->rules.secret ? ALG_BIT(HS256) : 0) |
				(j->rules.pkey ? ALG_BIT(j->rules.key_alg) : 0);
		return 0;
	}
	if ((rc = parse_algorithms(j, algorithms, &j->rules.algs)) != 0)
		return rc;
	if ((j->rules.algs & HS_ALGS) && j->rules.secret == NULL) {
		host->config_error(ctx, "algorithms",
				   "HS256/HS384/HS512 need secret or secret_file");
		return CONFAB_EINVAL;
	}
	for (int a = RS256; a <= ES256; a++) {
		if (!(j->rules.algs & ALG_BIT(a)))
			continue;
		if (j->rules.pkey == NULL) {
			host->config_error(ctx, "algorithms", "%s needs public_key_file",
					   jwt_alg_names[a]);
			return CONFAB_EINVAL;
		}
		if ((enum alg)a != j->rules.key_alg) {
			host->config_error(ctx, "algorithms",
					   "%s needs %s public key; public_key_file holds %s key",
					   jwt_alg_names[a], a == RS256 ? "an RSA" : "an EC P-256",
					   j->rules.key_alg == RS256 ? "an RSA" : "an EC P-256");
			return CONFAB_EINVAL;
		}
	}
	return 0;
}

static void jwt_free(struct jwt *j)
{
	if (j->rules.secret != NULL) {
		OPENSSL_cleanse(j->rules.secret, j->rules.secret_len);
		free(j->rules.secret);
	}
	EVP_PKEY_free(j->rules.pkey);
	free(j);
}

static int jwt_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	struct jwt *j = calloc(1, sizeof(*j));
	char list[64] = "";
	int rc;

	if (j == NULL)
		return CONFAB_ENOMEM;
	j->ctx = ctx;
	j->host = host;
	if ((rc = jwt_configure(j)) != 0) {
		jwt_free(j);
		return rc;
	}
	for (int a = 0; a < N_ALGS; a++)
		if (j->rules.algs & ALG_BIT(a))
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 list[0] ? ", " : "", jwt_alg_names[a]);
	host->log(ctx, CONFAB_LOG_INFO, "accepting %s tokens (leeway %lds%s%s%s%s)", list,
		  j->rules.leeway, j->rules.issuer ? ", issuer " : "",
		  j->rules.issuer ? j->rules.issuer : "", j->rules.audience ? ", audience " : "",
		  j->rules.audience ? j->rules.audience : "");
	*state = j;
	return 0;
}

static void jwt_destroy(void *state)
{
	jwt_free(state);
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
		rc = jwt_verify_token(&j->rules, tok, len, now_seconds(), &r, &grant);
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
	.auth = &(const confab_auth_ops){ .size = sizeof(confab_auth_ops),
					  .authenticate = jwt_authenticate },
};

CONFAB_PLUGIN_DEFINE(jwt_plugin)
