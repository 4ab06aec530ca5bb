/* Unit tests for the SDK's <confab/ratelimit.h>: at most one line per
 * interval, and the line that is let through says how many were not.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdlib.h>

#include <confab/ratelimit.h>

START_TEST(first_line_passes_with_nothing_skipped)
{
	confab_ratelimit rl = CONFAB_RATELIMIT_INIT(1000);
	uint64_t skipped = 99;
	/* A clock that starts at 0 (a monotonic one may) must not hide it. */
	ck_assert(confab_ratelimit_allow(&rl, 0, &skipped));
	ck_assert_uint_eq(skipped, 0);
}
END_TEST

START_TEST(one_line_per_interval_and_the_count_of_the_rest)
{
	confab_ratelimit rl = CONFAB_RATELIMIT_INIT(1000);
	uint64_t skipped;
	ck_assert(confab_ratelimit_allow(&rl, 5000, &skipped));
	for (uint64_t t = 5001; t < 6000; t++)
		ck_assert(!confab_ratelimit_allow(&rl, t, &skipped));
	ck_assert(confab_ratelimit_allow(&rl, 6000, &skipped));
	ck_assert_uint_eq(skipped, 999);
	/* The count starts again after a line is let through. */
	ck_assert(!confab_ratelimit_allow(&rl, 6500, NULL));
	ck_assert(confab_ratelimit_allow(&rl, 7000, &skipped));
	ck_assert_uint_eq(skipped, 1);
}
END_TEST

START_TEST(a_quiet_spell_lets_the_next_line_through)
{
	confab_ratelimit rl = CONFAB_RATELIMIT_INIT(1000);
	uint64_t skipped;
	ck_assert(confab_ratelimit_allow(&rl, 1000, &skipped));
	ck_assert(confab_ratelimit_allow(&rl, 900000, &skipped));
	ck_assert_uint_eq(skipped, 0);
}
END_TEST

static Suite *ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("log lines");
	tcase_add_test(tc, first_line_passes_with_nothing_skipped);
	tcase_add_test(tc, one_line_per_interval_and_the_count_of_the_rest);
	tcase_add_test(tc, a_quiet_spell_lets_the_next_line_through);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ratelimit_suite());
	srunner_run_all(sr, CK_VERBOSE);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
