/* Unit tests for the `ws` plugin's outbound queue (ws_ring.c): frames come
 * out in the order they went in, across wrap-around and growth, hold one
 * reference each until popped or cleared, and count against
 * send_queue_max exactly as a slow reader is refused.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ws_ring.h"

/* ---- a host that only counts references ---- */

#define N_BUFS 64

typedef struct fake_buf {
	confab_buf b;                /* first: the ring hands back &b */
	int refs;
} fake_buf;

static fake_buf bufs[N_BUFS];
static unsigned char payload[N_BUFS][LWS_PRE + 4096];
static int n_ref, n_unref;
/* The order in which references were dropped. */
static int unref_order[4 * N_BUFS];

static int index_of(const confab_buf *b)
{
	return (int)((const fake_buf *)b - bufs);
}

static void fake_ref(confab_buf *b)
{
	((fake_buf *)b)->refs++;
	n_ref++;
}

static void fake_unref(confab_buf *b)
{
	ck_assert_int_gt(((fake_buf *)b)->refs, 0);
	((fake_buf *)b)->refs--;
	unref_order[n_unref++] = index_of(b);
}

static confab_host host;

static void setup(void)
{
	memset(&host, 0, sizeof(host));
	host.size = sizeof(host);
	host.buf_ref = fake_ref;
	host.buf_unref = fake_unref;
	for (int i = 0; i < N_BUFS; i++) {
		bufs[i].b.data = payload[i] + LWS_PRE;
		bufs[i].b.len = 100 + (size_t)i;
		bufs[i].b.headroom = LWS_PRE;
		bufs[i].refs = 0;
	}
	n_ref = n_unref = 0;
}

/* Every buffer's reference given back. */
static void assert_no_refs(void)
{
	for (int i = 0; i < N_BUFS; i++)
		ck_assert_int_eq(bufs[i].refs, 0);
	ck_assert_int_eq(n_ref, n_unref);
}

static void push(ws_ring *r, int i)
{
	ck_assert(ws_ring_push(r, &host, &bufs[i].b));
}

/* Queue bufs[from..to), in that order. */
static void push_range(ws_ring *r, int from, int to)
{
	for (int i = from; i < to; i++)
		push(r, i);
}

/* Drop the n oldest. */
static void pop_n(ws_ring *r, int n)
{
	for (int i = 0; i < n; i++)
		ws_ring_pop(r, &host);
}

/* The ring holds exactly bufs[first..first+n), oldest first. */
static void assert_holds(const ws_ring *r, int first, int n)
{
	ck_assert_uint_eq(r->len, (uint32_t)n);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(index_of(ws_ring_at(r, (uint32_t)i)), first + i);
}

static size_t cost(int i)
{
	return bufs[i].b.len + WS_FRAME_COST;
}

/* ---- order, wrap-around, growth ---- */

START_TEST(frames_come_out_in_the_order_they_went_in)
{
	ws_ring r = { 0 };

	push_range(&r, 0, 5);
	ck_assert_int_eq(n_ref, 5);
	assert_holds(&r, 0, 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(index_of(ws_ring_at(&r, 0)), i);
		ws_ring_pop(&r, &host);
		ck_assert_int_eq(unref_order[i], i);
	}
	ck_assert_uint_eq(r.len, 0);
	assert_no_refs();
}
END_TEST

START_TEST(an_empty_ring_holds_no_storage)
{
	ws_ring r = { 0 };

	push(&r, 0);
	ck_assert_ptr_nonnull(r.slot);
	ck_assert_uint_eq(r.cap, 8);
	ws_ring_pop(&r, &host);
	ck_assert_ptr_null(r.slot);
	ck_assert_uint_eq(r.cap, 0);
	ck_assert_uint_eq(r.head, 0);
	ck_assert_uint_eq(r.queued, 0);
	/* and it starts again from nothing */
	push(&r, 1);
	assert_holds(&r, 1, 1);
	ws_ring_clear(&r, &host);
	assert_no_refs();
}
END_TEST

START_TEST(the_ring_wraps_around_without_growing)
{
	ws_ring r = { 0 };
	confab_buf **storage;

	push_range(&r, 0, 6);
	storage = r.slot;
	pop_n(&r, 4);
	/* 2 left in slots 4 and 5; 6 more fill 6, 7, then 0 to 3 */
	push_range(&r, 6, 12);
	ck_assert_uint_eq(r.cap, 8);
	ck_assert_ptr_eq(r.slot, storage);
	ck_assert_uint_eq(r.head, 4);
	assert_holds(&r, 4, 8);
	ck_assert_ptr_eq(r.slot[0], &bufs[8].b);  /* wrapped */
	ws_ring_clear(&r, &host);
	assert_no_refs();
}
END_TEST

START_TEST(a_full_wrapped_ring_grows_and_keeps_the_order)
{
	ws_ring r = { 0 };

	push_range(&r, 0, 3);
	pop_n(&r, 3);
	/* empty: storage gone; now fill across the end of a fresh ring */
	push_range(&r, 0, 5);
	ws_ring_pop(&r, &host);
	ws_ring_pop(&r, &host);
	push_range(&r, 5, 10);  /* 8 held, head at 2: full and wrapped */
	ck_assert_uint_eq(r.cap, 8);
	ck_assert_uint_eq(r.head, 2);
	push(&r, 10);     /* grows */
	ck_assert_uint_eq(r.cap, 16);
	ck_assert_uint_eq(r.head, 0);
	assert_holds(&r, 2, 9);
	push_range(&r, 11, 40);  /* 16, then 32, then 64 slots */
	ck_assert_uint_eq(r.cap, 64);
	assert_holds(&r, 2, 38);
	for (int i = 2; i < 40; i++) {
		ck_assert_int_eq(index_of(ws_ring_at(&r, 0)), i);
		ws_ring_pop(&r, &host);
	}
	assert_no_refs();
}
END_TEST

/* ---- bytes against send_queue_max ---- */

START_TEST(every_frame_costs_its_payload_and_the_bookkeeping)
{
	ws_ring r = { 0 };
	size_t sum = 0;

	for (int i = 0; i < 20; i++) {
		push(&r, i);
		sum += cost(i);
		ck_assert_uint_eq(r.queued, sum);
	}
	for (int i = 0; i < 20; i++) {
		ws_ring_pop(&r, &host);
		sum -= cost(i);
		ck_assert_uint_eq(r.queued, sum);
	}
	ck_assert_uint_eq(r.queued, 0);
	assert_no_refs();
}
END_TEST

START_TEST(a_frame_fits_exactly_up_to_the_cap_and_not_a_byte_more)
{
	ws_ring r = { 0 };
	size_t max = cost(0) + cost(1) + 500;

	push(&r, 0);
	/* what is left is 500 + cost(1): a frame of bufs[1]'s size + 500 */
	ck_assert_uint_eq(ws_ring_budget(&r, max), bufs[1].b.len + 500);
	ck_assert(ws_ring_fits(&r, bufs[1].b.len + 500, max));
	ck_assert(!ws_ring_fits(&r, bufs[1].b.len + 501, max));
	/* fits and budget agree on every length around the edge */
	for (size_t len = 0; len < max + 10; len++)
		ck_assert_int_eq(ws_ring_fits(&r, len, max),
				 len <= ws_ring_budget(&r, max));
	ws_ring_clear(&r, &host);
	assert_no_refs();
}
END_TEST

START_TEST(a_frame_larger_than_the_cap_is_refused_even_into_an_empty_queue)
{
	ws_ring r = { 0 };

	ck_assert(!ws_ring_fits(&r, 1000, 1000));
	ck_assert(!ws_ring_fits(&r, 1000 - WS_FRAME_COST + 1, 1000));
	ck_assert(ws_ring_fits(&r, 1000 - WS_FRAME_COST, 1000));
	ck_assert_uint_eq(ws_ring_budget(&r, 1000), 1000 - WS_FRAME_COST);
	/* a cap smaller than one frame's bookkeeping takes nothing */
	ck_assert(!ws_ring_fits(&r, 0, WS_FRAME_COST - 1));
	ck_assert_uint_eq(ws_ring_budget(&r, WS_FRAME_COST - 1), 0);
	/* no overflow near SIZE_MAX */
	ck_assert(!ws_ring_fits(&r, SIZE_MAX, 1000));
	ck_assert(!ws_ring_fits(&r, SIZE_MAX - 1, SIZE_MAX));
	ck_assert(ws_ring_fits(&r, SIZE_MAX - WS_FRAME_COST, SIZE_MAX));
}
END_TEST

START_TEST(a_full_queue_has_no_budget_and_takes_nothing)
{
	ws_ring r = { 0 };
	size_t max = cost(0) + cost(1);

	push(&r, 0);
	push(&r, 1);
	ck_assert_uint_eq(r.queued, max);
	ck_assert_uint_eq(ws_ring_budget(&r, max), 0);
	ck_assert(!ws_ring_fits(&r, 0, max));
	ck_assert(!ws_ring_fits(&r, 1, max));
	/* the oldest written: its room is back */
	ws_ring_pop(&r, &host);
	ck_assert_uint_eq(ws_ring_budget(&r, max), bufs[0].b.len);
	ck_assert(ws_ring_fits(&r, bufs[0].b.len, max));
	ws_ring_clear(&r, &host);
	assert_no_refs();
}
END_TEST

/* ---- partial writes ---- */

START_TEST(what_lws_holds_of_a_partial_write_counts_until_it_is_sent)
{
	ws_ring r = { 0 };
	size_t max = 100000;

	push(&r, 0);
	push(&r, 1);
	/* bufs[0] went out in part: popped (its reference too), its last
	 * 70 bytes copied by lws */
	ws_ring_pop(&r, &host);
	ws_ring_hold(&r, 70);
	ck_assert_int_eq(bufs[0].refs, 0);
	ck_assert_uint_eq(r.held, 70);
	ck_assert_uint_eq(r.queued, cost(1) + 70);
	ck_assert_uint_eq(ws_ring_budget(&r, max), max - cost(1) - 70 - WS_FRAME_COST);
	/* a second partial write before lws has sent the first rest */
	ws_ring_pop(&r, &host);
	ws_ring_hold(&r, 30);
	ck_assert_uint_eq(r.len, 0);
	ck_assert_ptr_null(r.slot);
	ck_assert_uint_eq(r.held, 100);
	ck_assert_uint_eq(r.queued, 100);
	/* clearing the queue leaves what lws still has */
	ws_ring_clear(&r, &host);
	ck_assert_uint_eq(r.queued, 100);
	ws_ring_drained(&r);
	ck_assert_uint_eq(r.held, 0);
	ck_assert_uint_eq(r.queued, 0);
	ck_assert_uint_eq(ws_ring_budget(&r, max), max - WS_FRAME_COST);
	assert_no_refs();
}
END_TEST

START_TEST(what_lws_holds_counts_against_the_cap)
{
	ws_ring r = { 0 };
	size_t max = cost(0) + 200;

	ws_ring_hold(&r, 200);
	ck_assert(ws_ring_fits(&r, bufs[0].b.len, max));
	ck_assert(!ws_ring_fits(&r, bufs[0].b.len + 1, max));
	ws_ring_hold(&r, 1);
	ck_assert(!ws_ring_fits(&r, bufs[0].b.len, max));
	ws_ring_drained(&r);
	ck_assert(ws_ring_fits(&r, bufs[0].b.len + 200, max));
}
END_TEST

/* ---- freeing with frames queued ---- */

START_TEST(clearing_a_queue_gives_back_every_reference_once)
{
	ws_ring r = { 0 };

	/* wrapped, grown, and a buffer queued twice (a frame can be) */
	push_range(&r, 0, 6);
	pop_n(&r, 5);
	push_range(&r, 6, 20);
	push(&r, 7);
	ck_assert_int_eq(bufs[7].refs, 2);
	ck_assert_uint_eq(r.len, 16);
	n_unref = 0;
	ws_ring_clear(&r, &host);
	ck_assert_int_eq(n_unref, 16);
	for (int i = 0; i < 15; i++)
		ck_assert_int_eq(unref_order[i], 5 + i);  /* oldest first */
	ck_assert_int_eq(unref_order[15], 7);
	ck_assert_uint_eq(r.len, 0);
	ck_assert_uint_eq(r.queued, 0);
	ck_assert_ptr_null(r.slot);  /* storage freed (ASan would see a leak) */
	for (int i = 0; i < N_BUFS; i++)
		ck_assert_int_eq(bufs[i].refs, 0);
}
END_TEST

/* A test case of the suite, each test starting from fresh buffers. */
static TCase *add_case(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, NULL);
	suite_add_tcase(s, tc);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("ws_ring");
	TCase *order = add_case(s, "order");
	TCase *bytes = add_case(s, "bytes");
	TCase *partial = add_case(s, "partial");
	TCase *freeing = add_case(s, "freeing");

	tcase_add_test(order, frames_come_out_in_the_order_they_went_in);
	tcase_add_test(order, an_empty_ring_holds_no_storage);
	tcase_add_test(order, the_ring_wraps_around_without_growing);
	tcase_add_test(order, a_full_wrapped_ring_grows_and_keeps_the_order);
	tcase_add_test(bytes, every_frame_costs_its_payload_and_the_bookkeeping);
	tcase_add_test(bytes, a_frame_fits_exactly_up_to_the_cap_and_not_a_byte_more);
	tcase_add_test(bytes, a_frame_larger_than_the_cap_is_refused_even_into_an_empty_queue);
	tcase_add_test(bytes, a_full_queue_has_no_budget_and_takes_nothing);
	tcase_add_test(partial, what_lws_holds_of_a_partial_write_counts_until_it_is_sent);
	tcase_add_test(partial, what_lws_holds_counts_against_the_cap);
	tcase_add_test(freeing, clearing_a_queue_gives_back_every_reference_once);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
