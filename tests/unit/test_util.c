/* The SDK's small rules and parsers (confab/util.h): names, headers, the
 * Authorization scheme, base64 and base64url, bounded integers.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdint.h>
#include <string.h>
#include <confab/util.h>

#include "unit_main.h"

static const char long65[] =
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

START_TEST(test_user_ids_and_room_names)
{
	ck_assert(confab_valid_user("alice"));
	ck_assert(confab_valid_user("a.l-i_c:e@example.org"));
	ck_assert(confab_valid_user(long65 + 1));                 /* 64 bytes */
	ck_assert(!confab_valid_user(long65));                    /* 65 */
	ck_assert(!confab_valid_user(""));
	ck_assert(!confab_valid_user(NULL));
	ck_assert(!confab_valid_user("al ice"));
	ck_assert(!confab_valid_user("al\xc3\xa9"));
	ck_assert(confab_valid_user_n("bob", 3));
	ck_assert(!confab_valid_user_n("bo\0b", 4));              /* a NUL inside */
	ck_assert(!confab_valid_user_n("bob", 0));
	ck_assert(confab_valid_room("lobby:1"));
	ck_assert(!confab_valid_room("a@b"));                     /* no @ in rooms */
	ck_assert(confab_valid_room(long65 + 1));
	ck_assert(!confab_valid_room(long65));
}
END_TEST

static const confab_header headers[] = {
	{ "host", "example" },
	{ "x-null", NULL },
	{ "Authorization", "  Basic   YWxpY2U6cHc=  " },
	{ "authorization", "Bearer second" },
};
static const confab_request req = {
	.size = sizeof(confab_request), .headers = headers, .n_headers = 4,
};

START_TEST(test_header_lookup_ignores_case_and_missing_values)
{
	ck_assert_str_eq(confab_header_value(&req, "HOST"), "example");
	ck_assert_ptr_null(confab_header_value(&req, "x-null"));
	ck_assert_ptr_null(confab_header_value(&req, "hos"));
	ck_assert_ptr_null(confab_header_value(&req, "hostx"));
	ck_assert_ptr_null(confab_header_value(NULL, "host"));
	/* the first of two */
	ck_assert_str_eq(confab_header_value(&req, "authorization"), "  Basic   YWxpY2U6cHc=  ");
}
END_TEST

START_TEST(test_auth_credentials_by_scheme)
{
	size_t len;
	const char *c = confab_auth_credentials(&req, "basic", &len);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(len, 12);
	ck_assert(strncmp(c, "YWxpY2U6cHc=", len) == 0);
	ck_assert_ptr_null(confab_auth_credentials(&req, "Bearer", &len));  /* another scheme */
	ck_assert_uint_eq(len, 0);
	ck_assert(confab_auth_scheme_is(&req, "BASIC"));
	ck_assert(!confab_auth_scheme_is(&req, "Bas"));

	const confab_header empty[] = { { "authorization", "Bearer  " } };
	const confab_request r2 = { .size = sizeof(r2), .headers = empty, .n_headers = 1 };
	ck_assert_ptr_null(confab_auth_credentials(&r2, "Bearer", &len));
	ck_assert(confab_auth_scheme_is(&r2, "bearer"));   /* ours, but empty */
	const confab_header glued[] = { { "authorization", "Bearerxyz" } };
	const confab_request r3 = { .size = sizeof(r3), .headers = glued, .n_headers = 1 };
	ck_assert(!confab_auth_scheme_is(&r3, "Bearer"));
	ck_assert_ptr_null(confab_auth_credentials(&r3, "Bearer", &len));
}
END_TEST

static long b64(const char *in, bool url, char *out, size_t cap)
{
	long n = url ? confab_base64url_decode(in, strlen(in), (unsigned char *)out, cap)
		     : confab_base64_decode(in, strlen(in), (unsigned char *)out, cap);
	if (n >= 0 && (size_t)n < cap)
		out[n] = '\0';
	return n;
}

START_TEST(test_base64_rfc4648_vectors)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const padded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					       "Zm9vYmFy" };
	static const char *const bare[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
	char out[16];
	for (int i = 0; i < 7; i++) {
		ck_assert_int_eq(b64(padded[i], false, out, sizeof(out)), (long)strlen(plain[i]));
		ck_assert_str_eq(out, plain[i]);
		ck_assert_int_eq(b64(bare[i], false, out, sizeof(out)), (long)strlen(plain[i]));
		ck_assert_str_eq(out, plain[i]);
		ck_assert_int_eq(b64(bare[i], true, out, sizeof(out)), (long)strlen(plain[i]));
		ck_assert_str_eq(out, plain[i]);
	}
	ck_assert_int_eq(b64("-_8", true, out, sizeof(out)), 2);     /* url alphabet */
	ck_assert_int_eq(b64("+/8", false, out, sizeof(out)), 2);
	ck_assert_int_eq(b64("+/8", true, out, sizeof(out)), -1);
	ck_assert_int_eq(b64("-_8", false, out, sizeof(out)), -1);
	ck_assert_int_eq(b64("Zg==", true, out, sizeof(out)), -1);   /* url: no padding */
	ck_assert_int_eq(b64("Zh", true, out, sizeof(out)), -1);     /* url: stray bits */
	ck_assert_int_eq(b64("Z", false, out, sizeof(out)), -1);     /* no such length */
	ck_assert_int_eq(b64("Zm 9v", false, out, sizeof(out)), -1); /* no blanks */
	ck_assert_int_eq(b64("Zm9vYmFy", false, out, 5), -1);        /* does not fit */
	ck_assert_int_eq(b64("AA==", false, out, sizeof(out)), 1);   /* a NUL decodes */
	ck_assert_int_eq(out[0], 0);
}
END_TEST

START_TEST(test_bounded_integers)
{
	uint64_t u = 7;
	int64_t i = 7;
	ck_assert(confab_parse_uint("0", 0, 10, &u) && u == 0);
	ck_assert(confab_parse_uint("10", 0, 10, &u) && u == 10);
	ck_assert(!confab_parse_uint("11", 0, 10, &u) && u == 10);
	ck_assert(!confab_parse_uint("4", 5, 10, &u));
	ck_assert(confab_parse_uint("18446744073709551615", 0, UINT64_MAX, &u) && u == UINT64_MAX);
	ck_assert(!confab_parse_uint("18446744073709551616", 0, UINT64_MAX, &u));
	for (const char *const *bad = (const char *const[]){ "", "-1", "+1", " 1", "1 ", "0x10",
							     "1e3", "1.0", NULL }; *bad; bad++)
		ck_assert_msg(!confab_parse_uint(*bad, 0, UINT64_MAX, &u), "accepted '%s'", *bad);
	ck_assert(!confab_parse_uint(NULL, 0, 1, &u));
	ck_assert(confab_parse_int("-5", -10, 10, &i) && i == -5);
	ck_assert(confab_parse_int("-9223372036854775808", INT64_MIN, 0, &i) && i == INT64_MIN);
	ck_assert(!confab_parse_int("-9223372036854775809", INT64_MIN, 0, &i));
	ck_assert(confab_parse_int("9223372036854775807", 0, INT64_MAX, &i) && i == INT64_MAX);
	ck_assert(!confab_parse_int("9223372036854775808", 0, INT64_MAX, &i));
	ck_assert(!confab_parse_int("-", -1, 1, &i));
	ck_assert(!confab_parse_int("--1", -5, 5, &i));
	ck_assert(!confab_parse_int("-11", -10, 10, &i));
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		test_user_ids_and_room_names,
		test_header_lookup_ignores_case_and_missing_values,
		test_auth_credentials_by_scheme,
		test_base64_rfc4648_vectors,
		test_bounded_integers,
	};

	return unit_main("util", tests, sizeof(tests) / sizeof(*tests), 0);
}
