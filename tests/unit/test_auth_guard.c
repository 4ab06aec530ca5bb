/* Unit tests for what the core holds against password checks used as a
 * weapon: the failed-login table (core/login_throttle.c), the bounds on
 * awaited decisions and the lockouts (core/auth_guard.c), and the guests'
 * name space (core/identity.c). Time is passed in, so the tests run in no
 * time.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_guard.h"
#include "identity.h"
#include "login_throttle.h"

#define S 1000   /* ms */

static login_throttle *t;

static void throttle_setup(void)
{
	login_throttle_config c = { .allowed = 3, .lockout_ms = 1 * S, .lockout_max_ms = 8 * S,
				    .decay_ms = 60 * S, .max_entries = 4 };
	t = login_throttle_new(&c);
	ck_assert_ptr_nonnull(t);
}

static void throttle_teardown(void)
{
	login_throttle_free(t);
	t = NULL;
}

START_TEST(test_a_key_is_locked_from_the_allowed_failure_on)
{
	ck_assert(!login_throttle_failing(t, "a", 0));
	login_throttle_fail(t, "a", 0);
	login_throttle_fail(t, "a", 0);
	ck_assert(login_throttle_failing(t, "a", 0));
	ck_assert_uint_eq(login_throttle_locked(t, "a", 0), 0);
	login_throttle_fail(t, "a", 0);
	ck_assert_uint_eq(login_throttle_locked(t, "a", 0), 1 * S);
	ck_assert_uint_eq(login_throttle_locked(t, "a", 1 * S - 1), 1);
	ck_assert_uint_eq(login_throttle_locked(t, "a", 1 * S), 0);
	ck_assert_uint_eq(login_throttle_locked(t, "b", 0), 0);
}
END_TEST

START_TEST(test_each_further_failure_doubles_the_lock_up_to_the_cap)
{
	uint64_t want[] = { 1 * S, 2 * S, 4 * S, 8 * S, 8 * S, 8 * S };
	for (int i = 0; i < 2; i++)
		login_throttle_fail(t, "a", 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		login_throttle_fail(t, "a", 100);
		ck_assert_uint_eq(login_throttle_locked(t, "a", 100), want[i]);
	}
}
END_TEST

START_TEST(test_one_failure_is_forgotten_per_decay_interval)
{
	for (int i = 0; i < 4; i++)
		login_throttle_fail(t, "a", 0);     /* score 4: a 2 s lock */
	/* two minutes on the score is 2: the next failure makes 3, a 1 s lock */
	login_throttle_fail(t, "a", 120 * S);
	ck_assert_uint_eq(login_throttle_locked(t, "a", 120 * S), 1 * S);
	/* three more minutes: forgotten entirely, and dropped from the table */
	ck_assert(!login_throttle_failing(t, "a", 300 * S));
	ck_assert_uint_eq(login_throttle_count(t), 0);
}
END_TEST

START_TEST(test_the_table_keeps_max_entries_and_evicts_the_oldest)
{
	char key[16];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert_int_eq(login_throttle_fail(t, key, (uint64_t)i), 0);
		ck_assert_uint_le(login_throttle_count(t), 4);
	}
	ck_assert(login_throttle_failing(t, "k999", 1000));
	ck_assert(login_throttle_failing(t, "k996", 1000));
	ck_assert(!login_throttle_failing(t, "k995", 1000));
	ck_assert(!login_throttle_failing(t, "k0", 1000));
}
END_TEST

START_TEST(test_a_failure_refreshes_a_key_against_eviction)
{
	login_throttle_fail(t, "old", 0);
	login_throttle_fail(t, "x1", 1);
	login_throttle_fail(t, "x2", 2);
	login_throttle_fail(t, "x3", 3);
	login_throttle_fail(t, "old", 4);   /* now the newest */
	login_throttle_fail(t, "x4", 5);    /* evicts x1 */
	ck_assert(login_throttle_failing(t, "old", 6));
	ck_assert(!login_throttle_failing(t, "x1", 6));
}
END_TEST

START_TEST(test_address_keys_count_ipv6_by_64_and_mapped_ipv4_as_ipv4)
{
	char k[64];
	login_throttle_address_key("127.0.0.2", k, sizeof(k));
	ck_assert_str_eq(k, "127.0.0.2");
	login_throttle_address_key("::ffff:10.1.2.3", k, sizeof(k));
	ck_assert_str_eq(k, "10.1.2.3");
	login_throttle_address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k, sizeof(k));
	ck_assert_str_eq(k, "2001:db8:1:2::/64");
	char k2[64];
	login_throttle_address_key("2001:db8:1:2::1", k2, sizeof(k2));
	ck_assert_str_eq(k, k2);
	login_throttle_address_key("?", k, sizeof(k));
	ck_assert_str_eq(k, "?");
}
END_TEST

/* ---- the guard ---- */

static broker_settings bs(void)
{
	return (broker_settings){
		.max_pending_auth = 4, .max_pending_auth_per_address = 1,
		.max_pending_auth_failing = 2, .login_failures = 2, .login_lockout = 1,
		.login_lockout_max = 300, .login_throttle_entries = 100,
	};
}

START_TEST(test_one_decision_awaited_per_address_then_429)
{
	broker_settings b = bs();
	auth_guard *g = auth_guard_new(&b);
	const char *why;
	ck_assert_int_eq(auth_guard_may_wait(g, "a", 0, &why), 0);
	bool f = auth_guard_wait(g, "a", 0);
	ck_assert_int_eq(auth_guard_may_wait(g, "a", 0, &why), 429);
	ck_assert_int_eq(auth_guard_may_wait(g, "b", 0, &why), 0);
	auth_guard_unwait(g, "a", f);
	ck_assert_int_eq(auth_guard_may_wait(g, "a", 0, &why), 0);
	auth_guard_free(g);
}
END_TEST

START_TEST(test_the_node_wide_bound_is_503)
{
	broker_settings b = bs();
	auth_guard *g = auth_guard_new(&b);
	const char *why;
	const char *addrs[] = { "a", "b", "c", "d" };
	for (int i = 0; i < 4; i++)
		auth_guard_wait(g, addrs[i], 0);
	ck_assert_int_eq(auth_guard_may_wait(g, "e", 0, &why), 503);
	auth_guard_unwait(g, "a", false);
	ck_assert_int_eq(auth_guard_may_wait(g, "e", 0, &why), 0);
	auth_guard_free(g);
}
END_TEST

START_TEST(test_failing_addresses_share_their_places_clean_ones_do_not)
{
	broker_settings b = bs();
	auth_guard *g = auth_guard_new(&b);
	const char *why;
	auth_guard_login_failed(g, "f1", "bob", 0);
	auth_guard_login_failed(g, "f2", "bob", 0);
	auth_guard_login_failed(g, "f3", "bob", 0);
	ck_assert(auth_guard_wait(g, "f1", 0));
	ck_assert(auth_guard_wait(g, "f2", 0));
	ck_assert_int_eq(auth_guard_may_wait(g, "f3", 0, &why), 429);
	ck_assert_int_eq(auth_guard_may_wait(g, "clean", 0, &why), 0);
	auth_guard_unwait(g, "f1", true);
	ck_assert_int_eq(auth_guard_may_wait(g, "f3", 0, &why), 0);
	auth_guard_free(g);
}
END_TEST

START_TEST(test_a_locked_name_is_locked_for_failing_addresses_only)
{
	broker_settings b = bs();
	auth_guard *g = auth_guard_new(&b);
	/* two addresses fail once each for bob: bob (2 failures) is locked */
	auth_guard_login_failed(g, "a1", "bob", 0);
	auth_guard_login_failed(g, "a2", "bob", 0);
	ck_assert_int_eq(auth_guard_login_begin(g, "a1", "bob", 0), CONFAB_EFULL);
	ck_assert_int_eq(auth_guard_login_begin(g, "a1", "carol", 0), 0);
	ck_assert_int_eq(auth_guard_login_begin(g, "home", "bob", 0), 0);
	/* an address locked itself is refused whatever name it claims */
	auth_guard_login_failed(g, "a1", "x", 0);
	ck_assert_int_eq(auth_guard_login_begin(g, "a1", "carol", 0), CONFAB_EFULL);
	ck_assert_int_eq(auth_guard_login_begin(g, "a1", NULL, 0), CONFAB_EFULL);
	ck_assert_int_eq(auth_guard_login_begin(g, "a1", "carol", 1 * S), 0);
	auth_guard_free(g);
}
END_TEST

START_TEST(test_login_lockout_0_turns_the_lockout_off)
{
	broker_settings b = bs();
	b.login_lockout = 0;
	auth_guard *g = auth_guard_new(&b);
	for (int i = 0; i < 10; i++)
		auth_guard_login_failed(g, "a", "bob", 0);
	ck_assert_int_eq(auth_guard_login_begin(g, "a", "bob", 0), 0);
	auth_guard_free(g);
}
END_TEST

/* ---- guests ---- */

START_TEST(test_guest_names_are_guest_and_16_hex_digits_every_bit_used)
{
	uint64_t ones = 0, zeros = 0;
	char prev[IDENTITY_GUEST_LEN] = "";
	for (int i = 0; i < 200; i++) {
		char name[IDENTITY_GUEST_LEN];
		ck_assert_int_eq(identity_guest_name(name), 0);
		ck_assert_uint_eq(strlen(name), 22);
		ck_assert_int_eq(strncmp(name, "guest-", 6), 0);
		ck_assert_uint_eq(strspn(name + 6, "0123456789abcdef"), 16);
		ck_assert_str_ne(name, prev);
		uint64_t v = strtoull(name + 6, NULL, 16);
		ones |= v;
		zeros |= ~v;
		memcpy(prev, name, sizeof(prev));
	}
	/* each of the 64 bits was 1 at least once and 0 at least once */
	ck_assert_uint_eq(ones, UINT64_MAX);
	ck_assert_uint_eq(zeros, UINT64_MAX);
}
END_TEST

START_TEST(test_the_guest_prefix_is_reserved_in_any_case)
{
	ck_assert(identity_reserved("guest-3f9a0c12"));
	ck_assert(identity_reserved("GUEST-x"));
	ck_assert(identity_reserved("Guest-"));
	ck_assert(!identity_reserved("guest"));
	ck_assert(!identity_reserved("guest_1"));
	ck_assert(!identity_reserved("a-guest-1"));
}
END_TEST

static Suite *guard_suite(void)
{
	Suite *s = suite_create("auth_guard");
	TCase *tc = tcase_create("login_throttle");
	tcase_add_checked_fixture(tc, throttle_setup, throttle_teardown);
	tcase_add_test(tc, test_a_key_is_locked_from_the_allowed_failure_on);
	tcase_add_test(tc, test_each_further_failure_doubles_the_lock_up_to_the_cap);
	tcase_add_test(tc, test_one_failure_is_forgotten_per_decay_interval);
	tcase_add_test(tc, test_the_table_keeps_max_entries_and_evicts_the_oldest);
	tcase_add_test(tc, test_a_failure_refreshes_a_key_against_eviction);
	tcase_add_test(tc, test_address_keys_count_ipv6_by_64_and_mapped_ipv4_as_ipv4);
	suite_add_tcase(s, tc);
	tc = tcase_create("guard");
	tcase_add_test(tc, test_one_decision_awaited_per_address_then_429);
	tcase_add_test(tc, test_the_node_wide_bound_is_503);
	tcase_add_test(tc, test_failing_addresses_share_their_places_clean_ones_do_not);
	tcase_add_test(tc, test_a_locked_name_is_locked_for_failing_addresses_only);
	tcase_add_test(tc, test_login_lockout_0_turns_the_lockout_off);
	suite_add_tcase(s, tc);
	tc = tcase_create("identity");
	tcase_add_test(tc, test_guest_names_are_guest_and_16_hex_digits_every_bit_used);
	tcase_add_test(tc, test_the_guest_prefix_is_reserved_in_any_case);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(guard_suite());
	srunner_run_all(sr, CK_VERBOSE);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
