/* What the bench counts: a latency histogram with fixed, logarithmic
 * buckets (no allocation per sample; about 3 % relative error), and the
 * sequence tracking that tells a receiver's losses, duplicates and
 * out-of-order deliveries apart, per (publisher, room) stream.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_BENCH_STATS_H
#define CONFAB_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Values below 2^HIST_SUB_BITS have a bucket each; above, every power of
 * two is split into 2^HIST_SUB_BITS buckets. */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t min, max;
	uint64_t bucket[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
/* The value at percentile `pct` (0 < pct <= 100): the upper bound of the
 * bucket that holds it, never above the largest value seen; 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double pct);
/* Bucket of `v` and the largest value that bucket holds (for the tests). */
unsigned hist_bucket_of(uint64_t v);
uint64_t hist_bucket_top(unsigned b);

/* One receiver's view of one publisher's stream (sequence numbers from 1). */
#define SEQ_WINDOW 64
struct seq_track {
	uint64_t top;     /* highest sequence seen; 0: none yet */
	uint64_t seen;    /* bit i: top - i was seen */
};

enum seq_verdict {
	SEQ_IN_ORDER,     /* the next one, or a later one after a gap */
	SEQ_LATE,         /* older than the highest seen, not seen before: out of order */
	SEQ_DUPLICATE,    /* seen before */
	SEQ_TOO_OLD,      /* older than the window: counted as out of order */
};

enum seq_verdict seq_track_see(struct seq_track *t, uint64_t seq);

/* Totals over every receiver. */
struct counters {
	uint64_t published;      /* messages sent in the measured window */
	uint64_t expected;       /* deliveries they should cause */
	uint64_t received;       /* deliveries of measured messages, duplicates included */
	uint64_t duplicates;
	uint64_t out_of_order;   /* SEQ_LATE and SEQ_TOO_OLD */
	uint64_t other_frames;   /* frames that were not a measured delivery */
	uint64_t errors;         /* error frames from the server */
	uint64_t misrouted;      /* a message of another room's publisher */
};

void counters_see(struct counters *c, enum seq_verdict v);
/* expected - (received - duplicates), or 0 if more arrived than expected. */
uint64_t counters_lost(const struct counters *c);

#endif
