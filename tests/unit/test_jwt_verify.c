/* Unit tests for the `jwt` plugin's token check (plugins/jwt/jwt_verify.c):
 * tokens signed here with OpenSSL, then each check of docs/auth-jwt.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "jwt.h"
#include "unit_main.h"

#define SECRET "a secret of the tests, long enough for HS512"
#define NOW 1700000000.0        /* the time every check is made at */
#define TOKEN_CAP (2 * JWT_TOKEN_MAX)

static struct jwt_rules hs256_rules(void)
{
	return (struct jwt_rules){
		.algs = ALG_BIT(HS256),
		.secret = (unsigned char *)SECRET,
		.secret_len = strlen(SECRET),
		.leeway = 30,
	};
}

/* Unpadded base64url of data[len] into out (NUL-terminated). */
static void b64url(const void *data, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);

	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (char *c = out; *c != '\0'; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
}

/* "b64url(header).b64url(payload)" into out: the signing input. */
static void signing_input(const char *header, const char *payload, char *out)
{
	b64url(header, strlen(header), out);
	strcat(out, ".");
	b64url(payload, strlen(payload), out + strlen(out));
}

/* header.payload.HMAC(key) with the digest `md`, into a new string. */
static char *hmac_token(const char *header, const char *payload, const char *key,
			const EVP_MD *md)
{
	char *tok = malloc(TOKEN_CAP);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	ck_assert_ptr_nonnull(tok);
	signing_input(header, payload, tok);
	ck_assert_ptr_nonnull(HMAC(md, key, (int)strlen(key), (unsigned char *)tok, strlen(tok),
				   mac, &mac_len));
	strcat(tok, ".");
	b64url(mac, mac_len, tok + strlen(tok));
	return tok;
}

static char *hs256(const char *payload)
{
	return hmac_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, SECRET, EVP_sha256());
}

/* Checks tok against rules at NOW. The result's strings live in *grant
 * (the caller frees it). */
static confab_auth_result check(const struct jwt_rules *rules, const char *tok,
				struct jwt_grant *grant)
{
	confab_auth_result r = { .size = sizeof(r), .decision = CONFAB_AUTH_IGNORE };

	ck_assert_int_eq(jwt_verify_token(rules, tok, strlen(tok), NOW, &r, grant), 0);
	return r;
}

/* The reason tok is refused with under rules (NULL when it is admitted). */
static const char *refusal(const struct jwt_rules *rules, const char *tok)
{
	struct jwt_grant grant;
	confab_auth_result r = check(rules, tok, &grant);

	jwt_grant_free(&grant);
	if (r.decision == CONFAB_AUTH_ALLOW)
		return NULL;
	ck_assert_int_eq(r.decision, CONFAB_AUTH_DENY);
	ck_assert_int_eq(r.http_status, 401);
	return r.reason;
}

/* `payload` signed with HS256 is refused with `why`, or admitted (NULL). */
static void expect_hs256(const struct jwt_rules *rules, const char *payload, const char *why)
{
	char *tok = hs256(payload);
	const char *got = refusal(rules, tok);

	if (why == NULL)
		ck_assert_msg(got == NULL, "%s: refused: %s", payload, got);
	else
		ck_assert_msg(got != NULL && strcmp(got, why) == 0, "%s: want \"%s\", got \"%s\"",
			      payload, why, got != NULL ? got : "(admitted)");
	free(tok);
}

START_TEST(a_well_formed_hs256_token_admits_its_sub_with_its_claims)
{
	struct jwt_rules rules = hs256_rules();
	struct jwt_grant grant;
	char *tok = hs256("{\"sub\":\"alice\",\"exp\":1700000060,"
			  "\"rooms\":[\"support-*\",\"lobby\"],\"direct\":[\"bob\"]}");
	confab_auth_result r = check(&rules, tok, &grant);

	ck_assert_int_eq(r.decision, CONFAB_AUTH_ALLOW);
	ck_assert_str_eq(r.user, "alice");
	ck_assert_uint_eq(r.n_rooms, 2);
	ck_assert_str_eq(r.rooms[0], "support-*");
	ck_assert_str_eq(r.rooms[1], "lobby");
	ck_assert_uint_eq(r.n_direct, 1);
	ck_assert_str_eq(r.direct[0], "bob");
	/* The session lasts until exp + leeway. */
	ck_assert_int_eq(r.expires_ms, (1700000060LL + 30) * 1000);
	jwt_grant_free(&grant);
	free(tok);

	/* No exp, rooms or direct: admitted for ever, everywhere. */
	tok = hs256("{\"sub\":\"carol@example.org\"}");
	r = check(&rules, tok, &grant);
	ck_assert_int_eq(r.decision, CONFAB_AUTH_ALLOW);
	ck_assert_str_eq(r.user, "carol@example.org");
	ck_assert_ptr_null(r.rooms);
	ck_assert_ptr_null(r.direct);
	ck_assert_int_eq(r.expires_ms, 0);
	jwt_grant_free(&grant);
	free(tok);
}
END_TEST

START_TEST(a_signature_made_with_another_key_or_altered_is_refused)
{
	struct jwt_rules rules = hs256_rules();
	char *tok = hmac_token("{\"alg\":\"HS256\"}", "{\"sub\":\"alice\"}", "another key",
			       EVP_sha256());

	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad signature");
	free(tok);

	/* The right key, one byte of the MAC changed (the first character
	 * of the signature holds bits of its first byte only). */
	tok = hs256("{\"sub\":\"alice\"}");
	char *sig = strrchr(tok, '.') + 1;
	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad signature");

	/* No signature at all. */
	sig[0] = '\0';
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad signature");
	free(tok);
}
END_TEST

START_TEST(alg_none_is_refused_whatever_the_rules_allow)
{
	struct jwt_rules rules = hs256_rules();
	char tok[256];
	const char *nones[] = { "none", "None", "NONE" };

	rules.algs = HS_ALGS | ALG_BIT(RS256) | ALG_BIT(ES256);
	for (size_t i = 0; i < sizeof(nones) / sizeof(*nones); i++) {
		char header[64];
		snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", nones[i]);
		signing_input(header, "{\"sub\":\"alice\"}", tok);
		strcat(tok, ".");
		ck_assert_str_eq(refusal(&rules, tok), "invalid token: algorithm not allowed");
	}
	/* The same with an HMAC signature appended does not help. */
	char *signed_none = hmac_token("{\"alg\":\"none\"}", "{\"sub\":\"alice\"}", SECRET,
				       EVP_sha256());
	ck_assert_str_eq(refusal(&rules, signed_none), "invalid token: algorithm not allowed");
	free(signed_none);
}
END_TEST

START_TEST(an_algorithm_not_in_the_allowed_list_is_refused)
{
	struct jwt_rules rules = hs256_rules();
	char *hs384 = hmac_token("{\"alg\":\"HS384\"}", "{\"sub\":\"alice\"}", SECRET,
				 EVP_sha384());
	char *ps256 = hmac_token("{\"alg\":\"PS256\"}", "{\"sub\":\"alice\"}", SECRET,
				 EVP_sha256());
	char *lower = hmac_token("{\"alg\":\"hs256\"}", "{\"sub\":\"alice\"}", SECRET,
				 EVP_sha256());

	ck_assert_str_eq(refusal(&rules, hs384), "invalid token: algorithm not allowed");
	ck_assert_str_eq(refusal(&rules, ps256), "invalid token: algorithm not allowed");
	ck_assert_str_eq(refusal(&rules, lower), "invalid token: algorithm not allowed");
	/* Allowed, the same HS384 token passes: it was the list that refused. */
	rules.algs |= ALG_BIT(HS384);
	ck_assert_ptr_null(refusal(&rules, hs384));
	/* An RS256 token with only an HMAC key: refused before any key is used. */
	char *rs = hmac_token("{\"alg\":\"RS256\"}", "{\"sub\":\"alice\"}", SECRET, EVP_sha256());
	ck_assert_str_eq(refusal(&rules, rs), "invalid token: algorithm not allowed");
	free(rs);
	free(hs384);
	free(ps256);
	free(lower);
}
END_TEST

START_TEST(exp_and_nbf_are_checked_with_the_leeway)
{
	struct jwt_rules rules = hs256_rules();  /* leeway 30, now 1700000000 */

	expect_hs256(&rules, "{\"sub\":\"a\",\"exp\":1699999971}", NULL);
	expect_hs256(&rules, "{\"sub\":\"a\",\"exp\":1699999970.5}", NULL);
	expect_hs256(&rules, "{\"sub\":\"a\",\"exp\":1699999970}", "invalid token: expired");
	expect_hs256(&rules, "{\"sub\":\"a\",\"exp\":1600000000}", "invalid token: expired");
	expect_hs256(&rules, "{\"sub\":\"a\",\"nbf\":1700000030}", NULL);
	expect_hs256(&rules, "{\"sub\":\"a\",\"nbf\":1700000031}",
			"invalid token: not yet valid");
	expect_hs256(&rules, "{\"sub\":\"a\",\"exp\":\"1700000060\"}",
			"invalid token: exp is not a number");
	expect_hs256(&rules, "{\"sub\":\"a\",\"nbf\":null}", "invalid token: nbf is not a number");
	/* An absurd exp is clamped, not overflowed. */
	expect_hs256(&rules, "{\"sub\":\"a\",\"exp\":1e300}", NULL);

	rules.leeway = 0;
	expect_hs256(&rules, "{\"sub\":\"a\",\"exp\":1700000000}", "invalid token: expired");
	expect_hs256(&rules, "{\"sub\":\"a\",\"exp\":1700000001}", NULL);
	expect_hs256(&rules, "{\"sub\":\"a\",\"nbf\":1700000000}", NULL);
	expect_hs256(&rules, "{\"sub\":\"a\",\"nbf\":1700000001}",
			"invalid token: not yet valid");
}
END_TEST

START_TEST(iss_and_aud_must_match_when_configured)
{
	struct jwt_rules rules = hs256_rules();

	/* Not configured: anything, or nothing, goes. */
	expect_hs256(&rules, "{\"sub\":\"a\",\"iss\":\"x\",\"aud\":7}", NULL);

	rules.issuer = "https://id.example";
	expect_hs256(&rules, "{\"sub\":\"a\",\"iss\":\"https://id.example\"}", NULL);
	expect_hs256(&rules, "{\"sub\":\"a\"}", "invalid token: wrong issuer");
	expect_hs256(&rules, "{\"sub\":\"a\",\"iss\":\"https://id.example/\"}",
			"invalid token: wrong issuer");
	expect_hs256(&rules, "{\"sub\":\"a\",\"iss\":[\"https://id.example\"]}",
			"invalid token: wrong issuer");

	rules.issuer = NULL;
	rules.audience = "chat";
	expect_hs256(&rules, "{\"sub\":\"a\",\"aud\":\"chat\"}", NULL);
	expect_hs256(&rules, "{\"sub\":\"a\",\"aud\":[\"mail\",\"chat\"]}", NULL);
	expect_hs256(&rules, "{\"sub\":\"a\",\"aud\":\"Chat\"}", "invalid token: wrong audience");
	expect_hs256(&rules, "{\"sub\":\"a\",\"aud\":[\"mail\"]}",
			"invalid token: wrong audience");
	expect_hs256(&rules, "{\"sub\":\"a\"}", "invalid token: wrong audience");
}
END_TEST

START_TEST(parts_that_are_not_base64url_are_refused)
{
	struct jwt_rules rules = hs256_rules();
	char *good = hs256("{\"sub\":\"alice\"}");
	char tok[512];
	const char *payload = strchr(good, '.');

	/* Padding, the base64 alphabet, a blank, an impossible length. */
	snprintf(tok, sizeof(tok), "eyJhbGciOiJIUzI1NiJ9=%s", payload);
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad base64url");
	snprintf(tok, sizeof(tok), "eyJhbGciOiJIUzI1NiJ+%s", payload);
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad base64url");
	snprintf(tok, sizeof(tok), "eyJhbGci OiJIUzI1NiJ9%s", payload);
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad base64url");
	snprintf(tok, sizeof(tok), "eyJhbGciOiJIUzI1NiJ9a%s", payload);
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad base64url");
	/* In the signature. */
	snprintf(tok, sizeof(tok), "%s=", good);
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad base64url");
	/* Not three parts. */
	ck_assert_str_eq(refusal(&rules, "abc"), "invalid token: not three dot-separated parts");
	ck_assert_str_eq(refusal(&rules, "a.b"), "invalid token: not three dot-separated parts");
	snprintf(tok, sizeof(tok), "%s.", good);
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: not three dot-separated parts");
	free(good);
}
END_TEST

START_TEST(a_non_canonical_encoding_of_a_good_signature_is_refused)
{
	struct jwt_rules rules = hs256_rules();
	char *tok = hs256("{\"sub\":\"alice\"}");
	char *last = tok + strlen(tok) - 1;
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t v = (size_t)(strchr(alphabet, *last) - alphabet);

	/* A 32-byte MAC is 43 characters: the last one carries 2 unused bits.
	 * Setting one decodes to the same bytes, which would verify. */
	ck_assert_uint_eq(strlen(strrchr(tok, '.') + 1), 43);
	ck_assert_ptr_null(refusal(&rules, tok));
	*last = alphabet[v ^ 1];
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad base64url");
	free(tok);
}
END_TEST

START_TEST(a_sub_that_is_not_a_user_id_is_refused)
{
	struct jwt_rules rules = hs256_rules();
	char payload[256];

	expect_hs256(&rules, "{\"sub\":\"al ice\"}", "invalid token: bad sub");
	expect_hs256(&rules, "{\"sub\":\"\"}", "invalid token: bad sub");
	expect_hs256(&rules, "{\"sub\":\"al\\u00e9\"}", "invalid token: bad sub");
	expect_hs256(&rules, "{\"sub\":\"al/ice\"}", "invalid token: bad sub");
	expect_hs256(&rules, "{\"sub\":42}", "invalid token: bad sub");
	expect_hs256(&rules, "{\"name\":\"alice\"}", "invalid token: bad sub");
	/* 64 bytes is the longest user id; 65 is too long. */
	snprintf(payload, sizeof(payload), "{\"sub\":\"%064d\"}", 0);
	expect_hs256(&rules, payload, NULL);
	snprintf(payload, sizeof(payload), "{\"sub\":\"%065d\"}", 0);
	expect_hs256(&rules, payload, "invalid token: bad sub");
	expect_hs256(&rules, "{\"sub\":\"a:b.c_d-e@f\"}", NULL);
}
END_TEST

START_TEST(a_token_longer_than_the_limit_is_refused_unread)
{
	struct jwt_rules rules = hs256_rules();
	char *payload = malloc(TOKEN_CAP), *tok = NULL;

	ck_assert_ptr_nonnull(payload);
	/* Grow an unknown claim until the token is JWT_TOKEN_MAX bytes: then
	 * it passes; one byte more and it is refused. */
	for (size_t pad = 6000; pad < 6200; pad++) {
		snprintf(payload, TOKEN_CAP, "{\"sub\":\"alice\",\"pad\":\"%0*d\"}", (int)pad, 0);
		free(tok);
		tok = hs256(payload);
		if (strlen(tok) >= JWT_TOKEN_MAX)
			break;
	}
	ck_assert_uint_eq(strlen(tok), JWT_TOKEN_MAX);
	ck_assert_ptr_null(refusal(&rules, tok));
	strcat(tok, "A");  /* else a bad signature */
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: too long or badly percent-encoded");
	/* Whatever it holds, a longer token is refused on its length. */
	memset(tok, 'A', JWT_TOKEN_MAX + 1);
	tok[JWT_TOKEN_MAX + 1] = '\0';
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: too long or badly percent-encoded");
	free(tok);
	free(payload);
}
END_TEST

START_TEST(a_header_or_payload_that_is_not_a_json_object_is_refused)
{
	struct jwt_rules rules = hs256_rules();
	char *tok;

	tok = hmac_token("alg: HS256", "{\"sub\":\"alice\"}", SECRET, EVP_sha256());
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad JSON");
	free(tok);
	tok = hmac_token("[\"HS256\"]", "{\"sub\":\"alice\"}", SECRET, EVP_sha256());
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad JSON");
	free(tok);
	tok = hmac_token("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"sub\":\"alice\"}", SECRET,
			 EVP_sha256());
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad JSON");
	free(tok);
	tok = hmac_token("{\"typ\":\"JWT\"}", "{\"sub\":\"alice\"}", SECRET, EVP_sha256());
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: no alg");
	free(tok);
	tok = hmac_token("{\"alg\":\"HS256\",\"typ\":\"JWE\"}", "{\"sub\":\"alice\"}", SECRET,
			 EVP_sha256());
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: typ is not JWT");
	free(tok);
	tok = hmac_token("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", "{\"sub\":\"alice\"}", SECRET,
			 EVP_sha256());
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: unsupported crit header");
	free(tok);
	/* The payload is read only once the signature is good. */
	expect_hs256(&rules, "sub=alice", "invalid token: bad JSON");
	expect_hs256(&rules, "{\"sub\":\"alice\",\"rooms\":\"lobby\"}",
			"invalid token: bad rooms or direct claim");
	expect_hs256(&rules, "{\"sub\":\"alice\",\"direct\":[\"\"]}",
			"invalid token: bad rooms or direct claim");
}
END_TEST

/* ---- public keys: the JWS forms of RS256 and ES256 signatures ---- */

/* header.payload.signature made with `key`; ES256's DER signature is
 * turned into JWS's R || S. */
static char *pkey_token(const char *header, const char *payload, EVP_PKEY *key, int es256)
{
	char *tok = malloc(TOKEN_CAP);
	unsigned char sig[1024], rs[64];
	size_t sig_len = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	ck_assert_ptr_nonnull(tok);
	ck_assert_ptr_nonnull(md);
	signing_input(header, payload, tok);
	ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
	ck_assert_int_eq(EVP_DigestSign(md, sig, &sig_len, (unsigned char *)tok, strlen(tok)), 1);
	EVP_MD_CTX_free(md);
	strcat(tok, ".");
	if (es256) {
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
		ck_assert_ptr_nonnull(es);
		ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32), 32);
		ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32), 32);
		ECDSA_SIG_free(es);
		b64url(rs, sizeof(rs), tok + strlen(tok));
	} else {
		b64url(sig, sig_len, tok + strlen(tok));
	}
	return tok;
}

START_TEST(rs256_and_es256_tokens_verify_with_the_public_key)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct jwt_rules rules = { .algs = ALG_BIT(RS256), .pkey = rsa, .key_alg = RS256 };
	char *tok;

	ck_assert_ptr_nonnull(rsa);
	ck_assert_ptr_nonnull(ec);
	ck_assert_ptr_nonnull(other);
	tok = pkey_token("{\"alg\":\"RS256\"}", "{\"sub\":\"alice\"}", rsa, 0);
	ck_assert_ptr_null(refusal(&rules, tok));
	free(tok);

	rules = (struct jwt_rules){ .algs = ALG_BIT(ES256), .pkey = ec, .key_alg = ES256 };
	tok = pkey_token("{\"alg\":\"ES256\"}", "{\"sub\":\"alice\"}", ec, 1);
	ck_assert_ptr_null(refusal(&rules, tok));
	free(tok);
	tok = pkey_token("{\"alg\":\"ES256\"}", "{\"sub\":\"alice\"}", other, 1);
	ck_assert_str_eq(refusal(&rules, tok), "invalid token: bad signature");
	free(tok);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(other);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		a_well_formed_hs256_token_admits_its_sub_with_its_claims,
		a_signature_made_with_another_key_or_altered_is_refused,
		alg_none_is_refused_whatever_the_rules_allow,
		an_algorithm_not_in_the_allowed_list_is_refused,
		exp_and_nbf_are_checked_with_the_leeway,
		iss_and_aud_must_match_when_configured,
		parts_that_are_not_base64url_are_refused,
		a_non_canonical_encoding_of_a_good_signature_is_refused,
		a_sub_that_is_not_a_user_id_is_refused,
		a_token_longer_than_the_limit_is_refused_unread,
		a_header_or_payload_that_is_not_a_json_object_is_refused,
		rs256_and_es256_tokens_verify_with_the_public_key,
	};

	/* An RSA key is made, perhaps under ASan. */
	return unit_main("jwt_verify", tests, sizeof(tests) / sizeof(*tests), 60);
}
