/* Unit tests for the `jwt` plugin's reading of [jwt] (plugins/jwt/jwt_config.c),
 * the one reading of init and of a reload, through a fake host table.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "jwt.h"
#include "unit_main.h"

#define N_KEYS 7

/* The keys docs/auth-jwt.md names: a reading must read every one. */
static const char *const known[N_KEYS] = {
	"secret", "secret_file", "public_key_file", "algorithms", "issuer", "audience", "leeway",
};

/* The section the fake host answers from, what was read, and the
 * config_error lines written. */
struct confab_ctx {
	const char *value[N_KEYS];   /* by known[]'s index; NULL: absent */
	bool read[N_KEYS];
	int errors;
	char error_key[32];
};

static int key_index(const char *key)
{
	for (int i = 0; i < N_KEYS; i++)
		if (strcmp(known[i], key) == 0)
			return i;
	ck_abort_msg("the plugin read a key it does not document: %s", key);
	return -1;
}

static const char *fake_config_get(confab_ctx *ctx, const char *key)
{
	int i = key_index(key);

	ctx->read[i] = true;
	return ctx->value[i];
}

static void fake_config_error(confab_ctx *ctx, const char *key, const char *fmt, ...)
{
	(void)fmt;
	ctx->errors++;
	snprintf(ctx->error_key, sizeof(ctx->error_key), "%s", key);
}

/* Digits only, as the core's: enough for leeway. */
static int fake_config_uint(confab_ctx *ctx, const char *key, uint64_t def, uint64_t min,
			    uint64_t max, uint64_t *out)
{
	const char *v = fake_config_get(ctx, key);
	char *end;

	*out = def;
	if (v == NULL)
		return 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < min || n > max) {
		fake_config_error(ctx, key, "bad number");
		return CONFAB_EINVAL;
	}
	*out = n;
	return 0;
}

static const confab_host host = {
	.size = sizeof(confab_host),
	.config_get = fake_config_get,
	.config_error = fake_config_error,
	.config_uint = fake_config_uint,
};

static confab_ctx section;
static char files[2][64];

static void set(const char *key, const char *value)
{
	section.value[key_index(key)] = value;
}

/* `text` into the scratch file `which` (0 or 1); its name. */
static const char *write_file(int which, const char *text)
{
	FILE *f;

	if (files[which][0] == '\0') {
		int fd;
		snprintf(files[which], sizeof(files[which]), "%s", "/tmp/confab-jwt-XXXXXX");
		ck_assert_int_ge(fd = mkstemp(files[which]), 0);
		close(fd);
	}
	ck_assert_ptr_nonnull(f = fopen(files[which], "w"));
	ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	ck_assert_int_eq(fclose(f), 0);
	return files[which];
}

static void setup(void)
{
	memset(&section, 0, sizeof(section));
}

static void teardown(void)
{
	for (int i = 0; i < 2; i++) {
		if (files[i][0] != '\0')
			unlink(files[i]);
		files[i][0] = '\0';
	}
}

/* The section is refused with one line on `key`, and the rules hold
 * nothing (what was read before the refusal is freed: ASan says if not). */
static void refused_on(const char *key)
{
	struct jwt_rules rules;

	section.errors = 0;
	ck_assert_int_eq(jwt_config_read(&section, &host, &rules), CONFAB_EINVAL);
	ck_assert_int_eq(section.errors, 1);
	ck_assert_str_eq(section.error_key, key);
	ck_assert_ptr_null(rules.secret);
	ck_assert_ptr_null(rules.pkey);
}

START_TEST(a_secret_gives_hs256_rules_and_every_key_is_read)
{
	struct jwt_rules rules;

	setup();
	set("secret", "s3cret");
	set("issuer", "https://id.example");
	set("audience", "chat");
	ck_assert_int_eq(jwt_config_read(&section, &host, &rules), 0);
	ck_assert_int_eq(section.errors, 0);
	ck_assert_uint_eq(rules.algs, ALG_BIT(HS256));
	ck_assert_uint_eq(rules.secret_len, 6);
	ck_assert_mem_eq(rules.secret, "s3cret", 6);
	ck_assert_ptr_null(rules.pkey);
	ck_assert_int_eq(rules.leeway, 30);
	ck_assert_ptr_eq(rules.issuer, section.value[key_index("issuer")]);
	ck_assert_ptr_eq(rules.audience, section.value[key_index("audience")]);
	for (int i = 0; i < N_KEYS; i++)
		ck_assert_msg(section.read[i], "%s was not read", known[i]);
	jwt_config_clear(&rules);
	ck_assert_ptr_null(rules.secret);
}
END_TEST

/* What a reload relies on: the same setting read again gives the file's
 * new secret, and the rules read before are untouched by it. */
START_TEST(secret_file_is_read_again_at_each_reading)
{
	struct jwt_rules before, after;

	setup();
	set("secret_file", write_file(0, "first secret\n"));
	ck_assert_int_eq(jwt_config_read(&section, &host, &before), 0);
	ck_assert_uint_eq(before.secret_len, strlen("first secret"));
	ck_assert_mem_eq(before.secret, "first secret", before.secret_len);

	write_file(0, "the second one\r\n");
	ck_assert_int_eq(jwt_config_read(&section, &host, &after), 0);
	ck_assert_uint_eq(after.secret_len, strlen("the second one"));
	ck_assert_mem_eq(after.secret, "the second one", after.secret_len);
	ck_assert_mem_eq(before.secret, "first secret", before.secret_len);
	jwt_config_clear(&before);
	jwt_config_clear(&after);

	write_file(0, "\n");
	refused_on("secret_file");
	teardown();
}
END_TEST

START_TEST(a_public_key_file_that_is_not_a_key_is_refused_with_nothing_kept)
{
	setup();
	set("secret", "s3cret");  /* read before the key: freed on the refusal */
	set("public_key_file", write_file(0, "-----BEGIN PUBLIC KEY-----\nnot base64\n"));
	refused_on("public_key_file");
	set("public_key_file", "/nonexistent/confab-key.pem");
	refused_on("public_key_file");
	teardown();
}
END_TEST

START_TEST(an_ec_p256_key_gives_es256_rules)
{
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct jwt_rules rules;
	FILE *f;

	setup();
	ck_assert_ptr_nonnull(ec);
	write_file(0, "");
	ck_assert_ptr_nonnull(f = fopen(files[0], "w"));
	ck_assert_int_eq(PEM_write_PUBKEY(f, ec), 1);
	ck_assert_int_eq(fclose(f), 0);
	set("public_key_file", files[0]);
	ck_assert_int_eq(jwt_config_read(&section, &host, &rules), 0);
	ck_assert_int_eq(rules.key_alg, ES256);
	ck_assert_uint_eq(rules.algs, ALG_BIT(ES256));
	ck_assert_int_eq(EVP_PKEY_eq(rules.pkey, ec), 1);
	jwt_config_clear(&rules);
	EVP_PKEY_free(ec);
	teardown();
}
END_TEST

START_TEST(conflicting_or_missing_keys_and_bad_options_are_refused_on_their_key)
{
	setup();
	refused_on("secret");                      /* no key at all */
	set("secret", "s3cret");
	set("secret_file", write_file(0, "other\n"));
	refused_on("secret_file");                 /* both */
	set("secret_file", NULL);
	set("algorithms", "HS256, RS256");
	refused_on("algorithms");                  /* RS256 without a public key */
	set("algorithms", "none");
	refused_on("algorithms");
	set("algorithms", NULL);
	set("leeway", "-1");
	refused_on("leeway");
	set("leeway", NULL);
	set("issuer", "");
	refused_on("issuer");
	teardown();
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		a_secret_gives_hs256_rules_and_every_key_is_read,
		secret_file_is_read_again_at_each_reading,
		a_public_key_file_that_is_not_a_key_is_refused_with_nothing_kept,
		an_ec_p256_key_gives_es256_rules,
		conflicting_or_missing_keys_and_bad_options_are_refused_on_their_key,
	};

	return unit_main("jwt_config", tests, sizeof(tests) / sizeof(*tests), 0);
}
