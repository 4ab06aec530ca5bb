/* Unit tests for the `ws` plugin's frame-header walker (ws_frames.c): the
 * headers of a client's stream are followed across any split, and an
 * unmasked frame is found where it starts.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frames.h"

#include "unit_main.h"

/* A client frame header (and `len` zero bytes of payload unless told not
 * to) into `out`: its size. */
static size_t put_frame(uint8_t *out, uint8_t b0, uint64_t len, int masked,
			int with_payload)
{
	size_t n = 0;
	uint8_t m = masked ? 0x80 : 0;

	out[n++] = b0;
	if (len < 126) {
		out[n++] = (uint8_t)(m | len);
	} else if (len < 65536) {
		out[n++] = m | 126;
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
	} else {
		out[n++] = m | 127;
		for (int i = 7; i >= 0; i--)
			out[n++] = (uint8_t)(len >> (8 * i));
	}
	if (masked) {
		memcpy(out + n, "\x11\x22\x33\x44", 4);
		n += 4;
	}
	if (with_payload) {
		memset(out + n, 0xAB, (size_t)len);
		n += (size_t)len;
	}
	return n;
}

/* Feed `buf` (starting at stream offset `at`) in pieces of `step` bytes. */
static int feed_in_steps(ws_frames *w, uint64_t at, const uint8_t *buf,
			 size_t len, size_t step, uint64_t *bad)
{
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		int rc = ws_frames_feed(w, at + i, buf + i, n, bad);

		if (rc != WS_FRAMES_OK)
			return rc;
	}
	return WS_FRAMES_OK;
}

START_TEST(masked_frames_of_every_length_form_pass_in_any_split)
{
	static uint8_t buf[200000];
	size_t n = 0;

	n += put_frame(buf + n, 0x81, 0, 1, 1);
	n += put_frame(buf + n, 0x81, 125, 1, 1);
	n += put_frame(buf + n, 0x81, 126, 1, 1);
	n += put_frame(buf + n, 0x82, 65535, 1, 1);
	n += put_frame(buf + n, 0x82, 65536, 1, 1);
	n += put_frame(buf + n, 0x89, 4, 1, 1);     /* ping */
	n += put_frame(buf + n, 0x8A, 0, 1, 1);     /* pong */
	n += put_frame(buf + n, 0x01, 10, 1, 1);    /* fragments */
	n += put_frame(buf + n, 0x00, 10, 1, 1);
	n += put_frame(buf + n, 0x80, 10, 1, 1);
	n += put_frame(buf + n, 0x88, 2, 1, 1);     /* close */
	for (size_t step = 1; step <= 17; step++) {
		ws_frames w;

		ws_frames_init(&w, 100);
		ck_assert_int_eq(feed_in_steps(&w, 100, buf, n, step, NULL),
				 WS_FRAMES_OK);
		ck_assert_uint_eq(w.next_hdr, 100 + n);
		ck_assert_uint_eq(w.fed, 100 + n);
	}
}
END_TEST

START_TEST(an_unmasked_frame_after_masked_ones_is_found_where_it_starts)
{
	uint8_t buf[4096];
	size_t n = 0, at;

	n += put_frame(buf + n, 0x81, 300, 1, 1);
	n += put_frame(buf + n, 0x89, 3, 1, 1);
	at = n;
	n += put_frame(buf + n, 0x81, 5, 0, 1);
	n += put_frame(buf + n, 0x81, 5, 1, 1);
	for (size_t step = 1; step <= n; step++) {
		ws_frames w;
		uint64_t bad = 0;

		ws_frames_init(&w, 0);
		ck_assert_int_eq(feed_in_steps(&w, 0, buf, n, step, &bad),
				 WS_FRAMES_UNMASKED);
		ck_assert_uint_eq(bad, at);
		/* It stays found. */
		ck_assert_int_eq(ws_frames_feed(&w, at, buf + at, n - at, &bad),
				 WS_FRAMES_UNMASKED);
	}
}
END_TEST

START_TEST(unmasked_control_frames_and_16_and_64_bit_lengths_are_found)
{
	static const uint8_t ops[] = { 0x88, 0x89, 0x8A, 0x80, 0x81, 0x82 };
	static const uint64_t lens[] = { 0, 125, 126, 65535, 65536, 1u << 20 };

	for (size_t i = 0; i < sizeof(ops); i++)
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			uint8_t hdr[16];
			size_t n = put_frame(hdr, ops[i], lens[j], 0, 0);
			ws_frames w;
			uint64_t bad = 99;

			ws_frames_init(&w, 7);
			ck_assert_int_eq(ws_frames_feed(&w, 7, hdr, n, &bad),
					 WS_FRAMES_UNMASKED);
			ck_assert_uint_eq(bad, 7);
		}
}
END_TEST

START_TEST(a_header_split_across_feeds_is_kept_until_whole)
{
	uint8_t buf[64];
	size_t n = put_frame(buf, 0x82, 70000, 1, 0);   /* 14-byte header */
	ws_frames w;

	ck_assert_uint_eq(n, 14);
	ws_frames_init(&w, 0);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(ws_frames_feed(&w, i, buf + i, 1, NULL),
				 WS_FRAMES_OK);
		if (i + 1 < n)
			ck_assert_uint_eq(w.next_hdr, 0);
	}
	ck_assert_uint_eq(w.next_hdr, 14 + 70000);
}
END_TEST

START_TEST(overlapping_feeds_are_walked_once_and_a_gap_is_reported)
{
	uint8_t buf[256];
	size_t n = 0;
	ws_frames w;

	n += put_frame(buf + n, 0x81, 20, 1, 1);
	n += put_frame(buf + n, 0x81, 20, 1, 1);
	ws_frames_init(&w, 1000);
	/* Bytes before the first header (the request head) are skipped. */
	ck_assert_int_eq(ws_frames_feed(&w, 990, (const uint8_t *)"0123456789",
					10, NULL), WS_FRAMES_OK);
	ck_assert_int_eq(ws_frames_feed(&w, 1000, buf, 30, NULL), WS_FRAMES_OK);
	/* A peek that starts again where lws stopped reading. */
	ck_assert_int_eq(ws_frames_feed(&w, 1010, buf + 10, n - 10, NULL),
			 WS_FRAMES_OK);
	ck_assert_uint_eq(w.next_hdr, 1000 + n);
	/* Bytes after a hole cannot be judged. */
	ck_assert_int_eq(ws_frames_feed(&w, 1000 + n + 1, buf, 4, NULL),
			 WS_FRAMES_GAP);
	ck_assert_uint_eq(w.fed, 1000 + n);
}
END_TEST

START_TEST(an_impossible_length_stops_the_walk_without_overflow)
{
	uint8_t hdr[14] = { 0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
			    0xFF, 0xFF, 1, 2, 3, 4 };
	ws_frames w;

	ws_frames_init(&w, 5);
	ck_assert_int_eq(ws_frames_feed(&w, 5, hdr, sizeof(hdr), NULL),
			 WS_FRAMES_OK);
	ck_assert_uint_eq(w.next_hdr, UINT64_MAX);
	ck_assert_int_eq(ws_frames_feed(&w, 19, "\x81\x05", 2, NULL),
			 WS_FRAMES_OK);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		masked_frames_of_every_length_form_pass_in_any_split,
		an_unmasked_frame_after_masked_ones_is_found_where_it_starts,
		unmasked_control_frames_and_16_and_64_bit_lengths_are_found,
		a_header_split_across_feeds_is_kept_until_whole,
		overlapping_feeds_are_walked_once_and_a_gap_is_reported,
		an_impossible_length_stops_the_walk_without_overflow,
	};

	return unit_main("ws_frames", tests, sizeof(tests) / sizeof(*tests), 0);
}
