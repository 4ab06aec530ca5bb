/* jwt: checking one token (RFC 7519 / RFC 7515 compact serialization).
 *
 * Order of the checks: the length; three base64url parts; the header
 * (alg allowed, typ JWT, no crit); the signature over the ASCII of
 * header.payload; only then the claims (exp, nbf, iss, aud, sub, rooms,
 * direct), so that nothing unsigned is ever parsed beyond the header.
 * No plugin state and no clock: the caller gives the rules and the time.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>

#include <confab/util.h>

#include "jwt.h"

#define PATTERNS_MAX 256       /* entries of `rooms` or `direct` */
#define PATTERN_MAX 256        /* bytes of one pattern */
/* |exp| and |nbf| beyond this many seconds (year ~31 million) are clamped,
 * so that seconds * 1000 fits in an int64_t. */
#define TIME_CLAMP 1e15

const char *const jwt_alg_names[N_ALGS] = {
	"HS256", "HS384", "HS512", "RS256", "ES256",
};

/* Decode one unpadded base64url part (RFC 7515 section 2) into a new
 * buffer, its length in *out_len. NULL on bad input or no memory (*oom
 * says which). */
static unsigned char *b64url_part(const char *s, size_t len, size_t *out_len, bool *oom)
{
	size_t cap = CONFAB_BASE64_DECODED_MAX(len);
	unsigned char *out = malloc(cap);
	long n;

	*oom = out == NULL;
	if (out == NULL)
		return NULL;
	if ((n = confab_base64url_decode(s, len, out, cap)) < 0) {
		free(out);
		return NULL;
	}
	*out_len = (size_t)n;
	return out;
}

static double clamp_time(double t)
{
	return t > TIME_CLAMP ? TIME_CLAMP : t < -TIME_CLAMP ? -TIME_CLAMP : t;
}

int jwt_alg_lookup(const char *name)
{
	for (int a = 0; a < N_ALGS; a++)
		if (strcmp(jwt_alg_names[a], name) == 0)
			return a;
	return -1;
}

static const EVP_MD *alg_md(enum alg a)
{
	switch (a) {
	case HS384:
		return EVP_sha384();
	case HS512:
		return EVP_sha512();
	default:
		return EVP_sha256();
	}
}

/* ---- verification ---- */

/* Why a token is refused: each is the client's reason and the log's. */
#define BAD(why) "invalid token: " why

/* Verify `sig` over `input` with the algorithm `a`. 1: good; 0: bad
 * signature; -1: OpenSSL failed (no memory). */
static int verify_hmac(const struct jwt_rules *rules, enum alg a, const char *input, size_t len,
		       const unsigned char *sig, size_t sig_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	if (HMAC(alg_md(a), rules->secret, (int)rules->secret_len, (const unsigned char *)input, len,
		 mac, &mac_len) == NULL)
		return -1;
	return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

/* JWS carries an ES256 signature as R || S (32 bytes each); OpenSSL wants
 * the DER of ECDSA-Sig-Value. Returns the DER length, 0 on failure. */
static int es256_to_der(const unsigned char *sig, unsigned char **der)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	int len = 0;

	if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
		r = s = NULL;  /* owned by es now */
		len = i2d_ECDSA_SIG(es, der);
		if (len < 0)
			len = 0;
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return len;
}

static int verify_pkey(const struct jwt_rules *rules, enum alg a, const char *input, size_t len,
		       const unsigned char *sig, size_t sig_len)
{
	unsigned char *der = NULL;
	EVP_MD_CTX *md;
	int rc;

	if (a == ES256) {
		int n;
		if (sig_len != 64)
			return 0;
		if ((n = es256_to_der(sig, &der)) == 0)
			return -1;
		sig = der;
		sig_len = (size_t)n;
	} else if (sig_len != (size_t)EVP_PKEY_get_size(rules->pkey)) {
		return 0;
	}
	if ((md = EVP_MD_CTX_new()) == NULL) {
		OPENSSL_free(der);
		return -1;
	}
	/* RS256 is RSASSA-PKCS1-v1_5, OpenSSL's default RSA padding. */
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, rules->pkey) != 1)
		rc = -1;
	else
		rc = EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, len) == 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return rc;
}

/* Decode one base64url part and parse it as a JSON object. NULL with
 * *why set when it is not one. */
static json_t *decode_json_part(const char *s, size_t len, const char **why)
{
	json_error_t err;
	unsigned char *raw;
	size_t raw_len;
	bool oom;
	json_t *v;

	if ((raw = b64url_part(s, len, &raw_len, &oom)) == NULL) {
		*why = oom ? NULL : BAD("bad base64url");
		return NULL;
	}
	v = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, &err);
	free(raw);
	if (v == NULL || !json_is_object(v)) {
		json_decref(v);
		*why = BAD("bad JSON");
		return NULL;
	}
	return v;
}

/* A claim holding an array of pattern strings (`rooms`, `direct`), as a
 * new array of borrowed pointers into `claims` in *out. 0: absent (*out
 * NULL); 1: present; -1: malformed; -2: no memory. An empty array is
 * present and grants nothing. */
static int pattern_claim(const json_t *claims, const char *name, const char ***out, size_t *n)
{
	const json_t *arr = json_object_get(claims, name), *v;
	size_t i;

	*out = NULL;
	*n = 0;
	if (arr == NULL)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > PATTERNS_MAX)
		return -1;
	json_array_foreach(arr, i, v) {
		size_t len = json_string_length(v);
		/* A pattern is a C string: no NUL inside, not empty, bounded. */
		if (!json_is_string(v) || len == 0 || len > PATTERN_MAX ||
		    strlen(json_string_value(v)) != len)
			return -1;
	}
	if ((*out = calloc(json_array_size(arr) + 1, sizeof(**out))) == NULL)
		return -2;
	json_array_foreach(arr, i, v)
		(*out)[i] = json_string_value(v);
	*n = json_array_size(arr);
	return 1;
}

/* A NumericDate claim: 0 absent, 1 present (*t set), -1 not a number. */
static int time_claim(const json_t *claims, const char *name, double *t)
{
	const json_t *v = json_object_get(claims, name);

	if (v == NULL)
		return 0;
	if (!json_is_number(v))
		return -1;
	*t = clamp_time(json_number_value(v));
	return 1;
}

static bool audience_ok(const struct jwt_rules *rules, const json_t *claims)
{
	const json_t *aud = json_object_get(claims, "aud"), *v;
	size_t i;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), rules->audience) == 0;
	if (json_is_array(aud))
		json_array_foreach(aud, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), rules->audience) == 0)
				return true;
	return false;
}

void jwt_grant_free(struct jwt_grant *g)
{
	json_decref(g->claims);
	free((void *)g->rooms);
	free((void *)g->direct);
	g->claims = NULL;
	g->rooms = g->direct = NULL;
}

int jwt_verify_token(const struct jwt_rules *rules, const char *tok, size_t tok_len,
		     double now, confab_auth_result *r, struct jwt_grant *g)
{
	const char *dot1 = memchr(tok, '.', tok_len), *dot2, *sig_s, *why = NULL;
	json_t *header = NULL, *claims = NULL;
	const json_t *alg_v, *typ, *sub;
	unsigned char *sig = NULL;
	size_t sig_len, signed_len;
	double exp = 0, nbf = 0;
	int has_exp, has_nbf, a, ok;
	bool oom;

	memset(g, 0, sizeof(*g));
	r->decision = CONFAB_AUTH_DENY;
	r->http_status = 401;

	if (tok_len > JWT_TOKEN_MAX) {
		r->reason = BAD("too long or badly percent-encoded");
		return 0;
	}
	/* header.payload.signature, three base64url parts. */
	dot2 = dot1 ? memchr(dot1 + 1, '.', tok_len - (size_t)(dot1 + 1 - tok)) : NULL;
	if (dot1 == NULL || dot2 == NULL ||
	    memchr(dot2 + 1, '.', tok_len - (size_t)(dot2 + 1 - tok)) != NULL) {
		r->reason = BAD("not three dot-separated parts");
		return 0;
	}
	sig_s = dot2 + 1;
	signed_len = (size_t)(dot2 - tok);

	/* The header: which algorithm. Nothing else is trusted before the
	 * signature is checked. */
	if ((header = decode_json_part(tok, (size_t)(dot1 - tok), &why)) == NULL)
		goto refused;
	alg_v = json_object_get(header, "alg");
	typ = json_object_get(header, "typ");
	if (!json_is_string(alg_v)) {
		why = BAD("no alg");
		goto refused;
	}
	a = jwt_alg_lookup(json_string_value(alg_v));
	if (a < 0 || !(rules->algs & ALG_BIT(a))) {
		why = BAD("algorithm not allowed");  /* `none` included, always */
		goto refused;
	}
	if (typ != NULL && !(json_is_string(typ) && strcmp(json_string_value(typ), "JWT") == 0)) {
		why = BAD("typ is not JWT");
		goto refused;
	}
	if (json_object_get(header, "crit") != NULL) {
		/* RFC 7515 4.1.11: extensions we do not understand must fail. */
		why = BAD("unsupported crit header");
		goto refused;
	}

	/* The signature, over the ASCII of header.payload. */
	if ((sig = b64url_part(sig_s, tok_len - (size_t)(sig_s - tok), &sig_len, &oom)) == NULL) {
		why = oom ? NULL : BAD("bad base64url");
		goto refused;
	}
	if (a == HS256 || a == HS384 || a == HS512)
		ok = verify_hmac(rules, (enum alg)a, tok, signed_len, sig, sig_len);
	else
		ok = verify_pkey(rules, (enum alg)a, tok, signed_len, sig, sig_len);
	if (ok <= 0) {
		why = ok < 0 ? NULL : BAD("bad signature");
		goto refused;
	}

	/* The claims, now that they are known to be the issuer's. */
	if ((claims = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), &why)) == NULL)
		goto refused;
	has_exp = time_claim(claims, "exp", &exp);
	has_nbf = time_claim(claims, "nbf", &nbf);
	if (has_exp < 0) {
		why = BAD("exp is not a number");
		goto refused;
	}
	if (has_nbf < 0) {
		why = BAD("nbf is not a number");
		goto refused;
	}
	if (has_exp && now >= exp + (double)rules->leeway) {
		why = BAD("expired");
		goto refused;
	}
	if (has_nbf && now + (double)rules->leeway < nbf) {
		why = BAD("not yet valid");
		goto refused;
	}
	if (rules->issuer != NULL) {
		const json_t *iss = json_object_get(claims, "iss");
		if (!json_is_string(iss) || strcmp(json_string_value(iss), rules->issuer) != 0) {
			why = BAD("wrong issuer");
			goto refused;
		}
	}
	if (rules->audience != NULL && !audience_ok(rules, claims)) {
		why = BAD("wrong audience");
		goto refused;
	}
	sub = json_object_get(claims, "sub");
	if (!json_is_string(sub) ||
	    !confab_valid_user_n(json_string_value(sub), json_string_length(sub))) {
		why = BAD("bad sub");
		goto refused;
	}
	if ((ok = pattern_claim(claims, "rooms", &g->rooms, &r->n_rooms)) < 0 ||
	    (ok = pattern_claim(claims, "direct", &g->direct, &r->n_direct)) < 0) {
		why = ok == -2 ? NULL : BAD("bad rooms or direct claim");
		goto refused;
	}

	r->decision = CONFAB_AUTH_ALLOW;
	r->user = json_string_value(sub);
	r->rooms = g->rooms;
	r->direct = g->direct;
	/* The session lasts as long as the token was accepted: exp + leeway. */
	if (has_exp)
		r->expires_ms = (int64_t)((exp + (double)rules->leeway) * 1000.0);
	json_decref(header);
	free(sig);
	g->claims = claims;
	return 0;

refused:
	json_decref(header);
	json_decref(claims);
	free(sig);
	jwt_grant_free(g);
	r->n_rooms = r->n_direct = 0;
	if (why == NULL)
		return CONFAB_ENOMEM;
	r->reason = why;
	return 0;
}
