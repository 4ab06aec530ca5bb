/* One connection's outbound queue (ws_ring.h): the ring of frame
 * references and its byte count against [ws] send_queue_max.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>

#include "ws_ring.h"

/* The ring starts with this many slots and doubles. */
#define WS_RING_INITIAL 8

static size_t cost_of(const confab_buf *b)
{
	return b->len + WS_FRAME_COST;
}

confab_buf *ws_ring_at(const ws_ring *r, uint32_t i)
{
	return r->slot[(r->head + i) & (r->cap - 1)];
}

/* Room for one more: the frames in order from slot 0 of one twice the
 * size. */
static bool grow(ws_ring *r)
{
	uint32_t cap = r->cap ? r->cap * 2 : WS_RING_INITIAL;
	confab_buf **slot;

	if (cap < r->cap)
		return false;  /* 2^31 frames: not a queue any cap allows */
	slot = malloc(cap * sizeof(*slot));
	if (slot == NULL)
		return false;
	for (uint32_t i = 0; i < r->len; i++)
		slot[i] = ws_ring_at(r, i);
	free(r->slot);
	r->slot = slot;
	r->cap = cap;
	r->head = 0;
	return true;
}

bool ws_ring_push(ws_ring *r, const confab_host *host, confab_buf *b)
{
	if (r->len == r->cap && !grow(r))
		return false;
	r->slot[(r->head + r->len) & (r->cap - 1)] = b;
	r->len++;
	r->queued += cost_of(b);
	host->buf_ref(b);
	return true;
}

void ws_ring_pop(ws_ring *r, const confab_host *host)
{
	confab_buf *b = r->slot[r->head];

	r->head = (r->head + 1) & (r->cap - 1);
	r->len--;
	r->queued -= cost_of(b);
	host->buf_unref(b);
	if (r->len == 0) {
		free(r->slot);
		r->slot = NULL;
		r->cap = r->head = 0;
	}
}

void ws_ring_clear(ws_ring *r, const confab_host *host)
{
	while (r->len > 0)
		ws_ring_pop(r, host);
}

bool ws_ring_fits(const ws_ring *r, size_t len, size_t max)
{
	if (len > max || WS_FRAME_COST > max - len)
		return false;
	return r->queued <= max - len - WS_FRAME_COST;
}

size_t ws_ring_budget(const ws_ring *r, size_t max)
{
	if (r->queued + WS_FRAME_COST >= max)
		return 0;
	return max - r->queued - WS_FRAME_COST;
}

void ws_ring_hold(ws_ring *r, size_t left)
{
	r->held += left;
	r->queued += left;
}

void ws_ring_drained(ws_ring *r)
{
	r->queued -= r->held;
	r->held = 0;
}
