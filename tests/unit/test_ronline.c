/* Unit tests for plugins/redislink/ronline: the welcomes that wait for a
 * user's online scripts (user_ready) are answered once each, 0 when every
 * online is carried out, CONFAB_EUNAVAILABLE when one fails, is lost, is
 * never sent, or the backplane gives up (ronline_fail).
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "ronline.h"

/* One waiter: how often it was answered, and the last status. */
typedef struct answer {
	int calls;
	int status;
} answer;

static void done(void *arg, int status)
{
	answer *a = arg;

	a->calls++;
	a->status = status;
}

/* `a` was answered `calls` times, the last time with `status`. */
static void answered(const answer *a, int calls, int status)
{
	ck_assert_int_eq(a->calls, calls);
	ck_assert_int_eq(a->status, status);
}

static confab_dict *t;

/* user_ready's wait of `a` for `user`, since `now`, accepted. */
static void wait_ready(confab_dict *table, const char *user, answer *a, uint64_t now)
{
	ck_assert_int_eq(ronline_wait(table, user, done, a, now), 0);
}

/* An online of `user` goes out, counted. */
static void sent(confab_dict *table, const char *user)
{
	ck_assert_int_eq(ronline_sent(table, user), 0);
}

static void setup(void)
{
	t = ronline_new();
	ck_assert_ptr_nonnull(t);
}

static void teardown(void)
{
	ronline_free(t);
}

START_TEST(a_user_with_nothing_on_its_way_is_ready_at_once)
{
	answer a = { 0 };

	wait_ready(t, "alice", &a, 1);
	answered(&a, 1, 0);
	ck_assert_uint_eq(confab_dict_count(t), 0);
}
END_TEST

START_TEST(a_welcome_waits_for_every_online_on_its_way)
{
	answer a = { 0 }, b = { 0 };

	sent(t, "alice");
	wait_ready(t, "alice", &a, 1);
	sent(t, "alice");  /* offline, online again */
	wait_ready(t, "alice", &b, 2);
	ck_assert_int_eq(a.calls + b.calls, 0);
	ronline_answered(t, "alice", true);
	ck_assert_int_eq(a.calls + b.calls, 0);
	ronline_answered(t, "alice", true);
	answered(&a, 1, 0);
	answered(&b, 1, 0);
	ck_assert_uint_eq(confab_dict_count(t), 0);
}
END_TEST

START_TEST(an_online_that_failed_or_was_lost_answers_unavailable_once)
{
	answer a = { 0 }, b = { 0 };

	sent(t, "alice");
	sent(t, "alice");
	wait_ready(t, "alice", &a, 1);
	ronline_answered(t, "alice", false);
	answered(&a, 1, CONFAB_EUNAVAILABLE);
	/* one still on its way: a new welcome waits for it */
	wait_ready(t, "alice", &b, 2);
	ck_assert_int_eq(b.calls, 0);
	ronline_answered(t, "alice", true);
	ck_assert_int_eq(a.calls, 1);
	answered(&b, 1, 0);
	ck_assert_uint_eq(confab_dict_count(t), 0);
	ronline_answered(t, "alice", true);  /* a stray answer changes nothing */
	ck_assert_uint_eq(confab_dict_count(t), 0);
}
END_TEST

START_TEST(an_unsent_online_holds_the_welcome_until_sent_and_answered)
{
	answer a = { 0 }, b = { 0 };

	ronline_unsent(t, "alice", true);
	wait_ready(t, "alice", &a, 1);
	sent(t, "alice");
	ck_assert_int_eq(a.calls, 0);
	ronline_answered(t, "alice", true);
	answered(&a, 1, 0);

	ronline_unsent(t, "bob", true);
	wait_ready(t, "bob", &b, 1);
	ronline_unsent(t, "bob", false);  /* offline before it was sent */
	answered(&b, 1, CONFAB_EUNAVAILABLE);
	ck_assert_uint_eq(confab_dict_count(t), 0);
}
END_TEST

static bool is_bob(const char *user, void *ctx)
{
	(void)ctx;
	return user[0] == 'b';
}

START_TEST(failing_answers_the_matching_and_old_waiters_and_forgetting_clears_all)
{
	answer a = { 0 }, b = { 0 }, c = { 0 };

	sent(t, "alice");
	wait_ready(t, "alice", &a, 10);
	ronline_unsent(t, "bob", true);
	wait_ready(t, "bob", &b, 10);
	sent(t, "carol");
	wait_ready(t, "carol", &c, 50);

	ronline_fail(t, is_bob, NULL, UINT64_MAX, false);
	answered(&b, 1, CONFAB_EUNAVAILABLE);
	ck_assert_int_eq(a.calls + c.calls, 0);

	ronline_fail(t, NULL, NULL, 20, false);  /* waiting since before 20 */
	answered(&a, 1, CONFAB_EUNAVAILABLE);
	ck_assert_int_eq(c.calls, 0);

	ronline_fail(t, NULL, NULL, UINT64_MAX, true);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(b.calls, 1);
	answered(&c, 1, CONFAB_EUNAVAILABLE);
	ck_assert_uint_eq(confab_dict_count(t), 0);
	ronline_answered(t, "alice", true);  /* the late reply changes nothing */
	ck_assert_uint_eq(confab_dict_count(t), 0);
}
END_TEST

static Suite *ronline_suite(void)
{
	Suite *s = suite_create("ronline");
	TCase *tc = tcase_create("welcomes");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_user_with_nothing_on_its_way_is_ready_at_once);
	tcase_add_test(tc, a_welcome_waits_for_every_online_on_its_way);
	tcase_add_test(tc, an_online_that_failed_or_was_lost_answers_unavailable_once);
	tcase_add_test(tc, an_unsent_online_holds_the_welcome_until_sent_and_answered);
	tcase_add_test(tc, failing_answers_the_matching_and_old_waiters_and_forgetting_clears_all);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ronline_suite());
	srunner_run_all(sr, CK_VERBOSE);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
