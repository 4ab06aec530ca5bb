/* jwt: reading [jwt] (keys, algorithms, claims' options) into the rules a
 * token is checked against: the one reading of init and of a reload.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "jwt.h"

#define SECRET_FILE_MAX 4096   /* bytes read from secret_file */
#define DEFAULT_LEEWAY 30
#define LEEWAY_MAX 86400

/* The HMAC key of secret_file: the file's bytes, without one trailing
 * newline (LF or CRLF), as `echo` or an editor leaves. */
static int read_secret_file(confab_ctx *ctx, const confab_host *host, struct jwt_rules *rules,
			    const char *path)
{
	unsigned char buf[SECRET_FILE_MAX + 1];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		host->config_error(ctx, "secret_file", "cannot read %s: %s", path,
				   strerror(errno));
		return CONFAB_EINVAL;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f)) {
		host->config_error(ctx, "secret_file", "cannot read %s: %s", path,
				   strerror(errno));
		fclose(f);
		return CONFAB_EINVAL;
	}
	fclose(f);
	if (n > SECRET_FILE_MAX) {
		host->config_error(ctx, "secret_file", "%s is longer than %d bytes",
				   path, SECRET_FILE_MAX);
		OPENSSL_cleanse(buf, sizeof(buf));
		return CONFAB_EINVAL;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0) {
		host->config_error(ctx, "secret_file", "%s holds no secret", path);
		return CONFAB_EINVAL;
	}
	if ((rules->secret = malloc(n)) == NULL) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return CONFAB_ENOMEM;
	}
	memcpy(rules->secret, buf, n);
	rules->secret_len = n;
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* Load a PEM public key (SubjectPublicKeyInfo, "BEGIN PUBLIC KEY"): RSA
 * for RS256, EC on P-256 for ES256. */
static int read_public_key(confab_ctx *ctx, const confab_host *host, struct jwt_rules *rules,
			   const char *path)
{
	FILE *f = fopen(path, "r");
	char group[64];
	size_t glen = 0;

	if (f == NULL) {
		host->config_error(ctx, "public_key_file", "cannot read %s: %s", path,
				   strerror(errno));
		return CONFAB_EINVAL;
	}
	rules->pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (rules->pkey == NULL) {
		host->config_error(ctx, "public_key_file",
				   "%s holds no PEM public key (-----BEGIN PUBLIC KEY-----)",
				   path);
		return CONFAB_EINVAL;
	}
	if (EVP_PKEY_is_a(rules->pkey, "RSA")) {
		if (EVP_PKEY_get_bits(rules->pkey) < 2048) {
			host->config_error(ctx, "public_key_file",
					   "%s: an RSA key of %d bits is too weak (2048 at least)",
					   path, EVP_PKEY_get_bits(rules->pkey));
			return CONFAB_EINVAL;
		}
		rules->key_alg = RS256;
		return 0;
	}
	if (EVP_PKEY_is_a(rules->pkey, "EC") &&
	    EVP_PKEY_get_group_name(rules->pkey, group, sizeof(group), &glen) == 1 &&
	    (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)) {
		rules->key_alg = ES256;
		return 0;
	}
	host->config_error(ctx, "public_key_file",
			   "%s is neither an RSA key (RS256) nor an EC P-256 key (ES256)",
			   path);
	return CONFAB_EINVAL;
}

/* `algorithms`: a comma or space separated list of names. */
static int parse_algorithms(confab_ctx *ctx, const confab_host *host, const char *v,
			    unsigned *out)
{
	char name[16];
	unsigned algs = 0;

	while (*v != '\0') {
		size_t n = strcspn(v, ", \t");
		if (n > 0) {
			int a;
			if (n >= sizeof(name)) {
				host->config_error(ctx, "algorithms",
						   "'%.*s' is not one of HS256, HS384, HS512, RS256, ES256",
						   (int)(n > 32 ? 32 : n), v);
				return CONFAB_EINVAL;
			}
			memcpy(name, v, n);
			name[n] = '\0';
			if ((a = jwt_alg_lookup(name)) < 0) {
				host->config_error(ctx, "algorithms",
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
		host->config_error(ctx, "algorithms", "lists no algorithm");
		return CONFAB_EINVAL;
	}
	*out = algs;
	return 0;
}

/* The whole section into *rules (zeroed), which may hold a key when it
 * fails. Every key of the section is read before anything is checked:
 * keys not read are reported as unknown. */
static int configure(confab_ctx *ctx, const confab_host *host, struct jwt_rules *rules)
{
	const char *secret = host->config_get(ctx, "secret");
	const char *secret_file = host->config_get(ctx, "secret_file");
	const char *key_file = host->config_get(ctx, "public_key_file");
	const char *algorithms = host->config_get(ctx, "algorithms");
	uint64_t leeway;
	int rc;

	rules->issuer = host->config_get(ctx, "issuer");
	rules->audience = host->config_get(ctx, "audience");
	if ((rc = host->config_uint(ctx, "leeway", DEFAULT_LEEWAY, 0, LEEWAY_MAX, &leeway)) != 0)
		return rc;
	rules->leeway = (long)leeway;
	if (rules->issuer != NULL && *rules->issuer == '\0') {
		host->config_error(ctx, "issuer", "must not be empty (leave it out to accept any)");
		return CONFAB_EINVAL;
	}
	if (rules->audience != NULL && *rules->audience == '\0') {
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
		rules->secret_len = strlen(secret);
		if ((rules->secret = malloc(rules->secret_len)) == NULL)
			return CONFAB_ENOMEM;
		memcpy(rules->secret, secret, rules->secret_len);
	} else if (secret_file != NULL && (rc = read_secret_file(ctx, host, rules, secret_file)) != 0) {
		return rc;
	}
	if (key_file != NULL && (rc = read_public_key(ctx, host, rules, key_file)) != 0)
		return rc;
	if (rules->secret == NULL && rules->pkey == NULL) {
		host->config_error(ctx, "secret",
				   "no key: set secret or secret_file (HS256/384/512) or "
				   "public_key_file (RS256/ES256)");
		return CONFAB_EINVAL;
	}

	/* The algorithms, checked against the keys. */
	if (algorithms == NULL) {
		rules->algs = (rules->secret ? ALG_BIT(HS256) : 0) |
				(rules->pkey ? ALG_BIT(rules->key_alg) : 0);
		return 0;
	}
	if ((rc = parse_algorithms(ctx, host, algorithms, &rules->algs)) != 0)
		return rc;
	if ((rules->algs & HS_ALGS) && rules->secret == NULL) {
		host->config_error(ctx, "algorithms",
				   "HS256/HS384/HS512 need secret or secret_file");
		return CONFAB_EINVAL;
	}
	for (int a = RS256; a <= ES256; a++) {
		if (!(rules->algs & ALG_BIT(a)))
			continue;
		if (rules->pkey == NULL) {
			host->config_error(ctx, "algorithms", "%s needs public_key_file",
					   jwt_alg_names[a]);
			return CONFAB_EINVAL;
		}
		if ((enum alg)a != rules->key_alg) {
			host->config_error(ctx, "algorithms",
					   "%s needs %s public key; public_key_file holds %s key",
					   jwt_alg_names[a], a == RS256 ? "an RSA" : "an EC P-256",
					   rules->key_alg == RS256 ? "an RSA" : "an EC P-256");
			return CONFAB_EINVAL;
		}
	}
	return 0;
}


int jwt_config_read(confab_ctx *ctx, const confab_host *host, struct jwt_rules *rules)
{
	int rc;

	memset(rules, 0, sizeof(*rules));
	if ((rc = configure(ctx, host, rules)) != 0)
		jwt_config_clear(rules);
	return rc;
}

void jwt_config_clear(struct jwt_rules *rules)
{
	if (rules->secret != NULL) {
		OPENSSL_cleanse(rules->secret, rules->secret_len);
		free(rules->secret);
	}
	EVP_PKEY_free(rules->pkey);
	memset(rules, 0, sizeof(*rules));
}
