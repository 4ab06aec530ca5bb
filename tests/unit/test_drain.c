/* The drain's spread (core/drain.c, drain_due): how many sessions have
 * been asked to close at each moment of the window. Even batches, none
 * before the window, every one a tick before it ends, and no overflow
 * however many sessions.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdint.h>

#include "drain.h"
#include "unit_main.h"

START_TEST(test_batches_are_even_over_the_window)
{
	/* 300 sessions over 3 s, a batch every 100 ms: 10 per batch */
	size_t prev = 0;
	for (uint64_t e = 0; e < 3000; e += DRAIN_TICK_MS) {
		size_t due = drain_due(300, e, 3000);
		ck_assert_uint_eq(due - prev, 10);
		prev = due;
	}
	ck_assert_uint_eq(prev, 300);
}
END_TEST

START_TEST(test_each_third_of_the_window_closes_a_third)
{
	/* the batch at e covers [e, e + tick): the last of the first third
	 * is at 2900 ms */
	ck_assert_uint_eq(drain_due(3000, 2900, 9000), 1000);
	ck_assert_uint_eq(drain_due(3000, 5900, 9000) - drain_due(3000, 2900, 9000), 1000);
	ck_assert_uint_eq(drain_due(3000, 8900, 9000) - drain_due(3000, 5900, 9000), 1000);
}
END_TEST

START_TEST(test_everyone_is_due_a_tick_before_the_end)
{
	ck_assert_uint_eq(drain_due(7, 10000 - DRAIN_TICK_MS, 10000), 7);
	ck_assert_uint_eq(drain_due(7, 10000 - DRAIN_TICK_MS - 1, 10000), 7);
	ck_assert_uint_lt(drain_due(1000, 10000 - 2 * DRAIN_TICK_MS - 1, 10000), 1000);
	ck_assert_uint_eq(drain_due(7, 50000, 10000), 7);
}
END_TEST

START_TEST(test_fewer_sessions_than_batches_close_one_at_a_time)
{
	/* 3 sessions over 10 s: the first at once, then one per 3.3 s */
	ck_assert_uint_eq(drain_due(3, 0, 10000), 1);
	ck_assert_uint_eq(drain_due(3, 3200, 10000), 1);
	ck_assert_uint_eq(drain_due(3, 3300, 10000), 2);
	ck_assert_uint_eq(drain_due(3, 6600, 10000), 3);
	ck_assert_uint_eq(drain_due(0, 0, 10000), 0);
}
END_TEST

START_TEST(test_a_window_shorter_than_a_tick_closes_everyone_at_once)
{
	ck_assert_uint_eq(drain_due(500, 0, 0), 500);
	ck_assert_uint_eq(drain_due(500, 0, DRAIN_TICK_MS), 500);
}
END_TEST

START_TEST(test_huge_counts_do_not_overflow)
{
	size_t big = (size_t)1 << 40;
	size_t half = drain_due(big, 43200 * 1000 - DRAIN_TICK_MS, 86400 * 1000);
	ck_assert_uint_eq(half, big / 2);
	ck_assert_uint_le(drain_due(SIZE_MAX, 1000, 86400 * 1000), SIZE_MAX);
	ck_assert_uint_eq(drain_due(SIZE_MAX, 86400 * 1000, 86400 * 1000), SIZE_MAX);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		test_batches_are_even_over_the_window,
		test_each_third_of_the_window_closes_a_third,
		test_everyone_is_due_a_tick_before_the_end,
		test_fewer_sessions_than_batches_close_one_at_a_time,
		test_a_window_shorter_than_a_tick_closes_everyone_at_once,
		test_huge_counts_do_not_overflow,
	};
	return unit_main("drain", tests, sizeof(tests) / sizeof(tests[0]), 0);
}
