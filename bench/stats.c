/* Latency histogram and delivery counting: see stats.h.
 * SPDX-License-Identifier: MIT
 */
#include "stats.h"

#include <string.h>

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof *h);
}

unsigned hist_bucket_of(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);   /* e >= HIST_SUB_BITS */
	unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

uint64_t hist_bucket_top(unsigned b)
{
	if (b < HIST_SUB)
		return b;
	unsigned e = b / HIST_SUB + HIST_SUB_BITS - 1;
	uint64_t sub = b % HIST_SUB;
	uint64_t lo = (1ull << e) | (sub << (e - HIST_SUB_BITS));
	return lo + ((1ull << (e - HIST_SUB_BITS)) - 1);
}

void hist_add(struct hist *h, uint64_t v)
{
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->bucket[hist_bucket_of(v)]++;
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
	if (h->count == 0)
		return 0;
	/* The rank of the sample at `pct`, counted from 1 (nearest rank). */
	double r = pct / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h->bucket[b];
		if (seen >= rank) {
			uint64_t top = hist_bucket_top(b);
			return top > h->max ? h->max : top < h->min ? h->min : top;
		}
	}
	return h->max;
}

enum seq_verdict seq_track_see(struct seq_track *t, uint64_t seq)
{
	if (seq > t->top) {
		uint64_t shift = seq - t->top;
		t->seen = shift >= 64 ? 0 : t->seen << shift;
		t->seen |= 1;
		t->top = seq;
		return SEQ_IN_ORDER;
	}
	uint64_t back = t->top - seq;
	if (back >= SEQ_WINDOW)
		return SEQ_TOO_OLD;
	uint64_t bit = 1ull << back;
	if (t->seen & bit)
		return SEQ_DUPLICATE;
	t->seen |= bit;
	return SEQ_LATE;
}

void counters_see(struct counters *c, enum seq_verdict v)
{
	c->received++;
	if (v == SEQ_DUPLICATE)
		c->duplicates++;
	else if (v == SEQ_LATE || v == SEQ_TOO_OLD)
		c->out_of_order++;
}

uint64_t counters_lost(const struct counters *c)
{
	uint64_t unique = c->received - c->duplicates;
	return c->expected > unique ? c->expected - unique : 0;
}
