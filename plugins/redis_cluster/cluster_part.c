/* Partitions: rooms and users are mapped onto a fixed number of them, and
 * each partition is one hash tag, hence one slot, hence one master.
 *
 * Why a fixed number and not one tag per room: a node holds one sharded
 * subscription per partition it needs, however many rooms it serves, so
 * the subscriptions a node holds (and Redis's work per SPUBLISH) stay
 * bounded; the price is that a node also receives the envelopes of the
 * other rooms of its partitions, which it drops.
 *
 * Partition k's tag is prefix + k + "." + s, with s the smallest integer
 * whose tag's slot falls in the k-th of `partitions` equal ranges of the
 * slot space: `redis-cli --cluster create` gives masters contiguous equal
 * ranges, so partitions spread evenly over them (and every node computes
 * the same tags: the layout depends on prefix and partitions only).
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

unsigned part_of(const cl_state *s, const char *name)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h % s->partitions;
}

int part_init(cl_state *s)
{
	char tag[128];

	s->part = calloc(s->partitions, sizeof(*s->part));
	s->slot_part = malloc(RSLOT_COUNT * sizeof(*s->slot_part));
	if (s->part == NULL || s->slot_part == NULL)
		return CONFAB_ENOMEM;
	for (unsigned i = 0; i < RSLOT_COUNT; i++)
		s->slot_part[i] = -1;
	for (unsigned k = 0; k < s->partitions; k++) {
		unsigned lo = k * RSLOT_COUNT / s->partitions;
		unsigned hi = (k + 1) * RSLOT_COUNT / s->partitions;
		unsigned slot = 0;
		int n = 0;

		/* The range holds 16 slots at least (partitions <= 1024): a
		 * hit comes after about 1000 tries at worst on average; the
		 * bound only guards against a bug. */
		for (unsigned long t = 0; t < 10000000ul; t++) {
			n = snprintf(tag, sizeof(tag), "%s%u.%lu", s->prefix, k, t);
			slot = rslot_of(tag, (size_t)n);
			if (slot >= lo && slot < hi)
				break;
		}
		if (slot < lo || slot >= hi)
			return CONFAB_ERR;
		partition *p = &s->part[k];

		if (asprintf(&p->prefix, "{%s}", tag) < 0) {
			p->prefix = NULL;
			return CONFAB_ENOMEM;
		}
		if (asprintf(&p->channel, "%sch", p->prefix) < 0) {
			p->channel = NULL;
			return CONFAB_ENOMEM;
		}
		p->slot = slot;
		s->slot_part[slot] = (int16_t)k;
	}
	return 0;
}

int part_of_slot(const cl_state *s, unsigned slot)
{
	return slot < RSLOT_COUNT ? s->slot_part[slot] : -1;
}

int part_of_channel(const cl_state *s, const char *channel, size_t len)
{
	/* "{" prefix K "." S "}ch": the slot of the text between the braces
	 * names the partition; check the whole name after. */
	int k = part_of_slot(s, rslot_of(channel, len));

	if (k < 0 || strlen(s->part[k].channel) != len ||
	    memcmp(s->part[k].channel, channel, len) != 0)
		return -1;
	return k;
}
