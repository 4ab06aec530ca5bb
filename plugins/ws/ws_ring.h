/* One connection's outbound queue: a ring of frame references, oldest
 * first, and what it costs against [ws] send_queue_max. No socket and no
 * lws call: ws_out.c writes from it, the unit test drives it alone.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_WS_RING_H
#define CONFAB_WS_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <confab/plugin.h>

/* What a queued frame costs besides its payload: its ring slot, the
 * buffer's header and headroom (LWS_PRE), malloc's own bookkeeping.
 * Counted so that the cap bounds memory however small the frames (a
 * client that pings without reading queues 30-byte pongs, and a megabyte
 * of those is several megabytes of buffers). A room message shared by
 * many connections is counted in full by each: the cap is an upper
 * bound, not an estimate. */
#define WS_FRAME_COST (64 + LWS_PRE)

typedef struct ws_ring {
	confab_buf **slot;           /* allocated while it holds anything */
	uint32_t cap;                /* 0, or a power of two */
	uint32_t head, len;          /* the oldest frame's slot; how many */
	size_t queued;               /* what the queue costs, in bytes */
	size_t held;                 /* of which the rest of a frame lws buffers */
} ws_ring;

/* The i-th oldest frame (i < len). */
confab_buf *ws_ring_at(const ws_ring *r, uint32_t i);
/* Queue b at the end, with a reference of its own (host->buf_ref). False
 * when out of memory (nothing changed). The caller checks the cap first
 * (ws_ring_fits). */
bool ws_ring_push(ws_ring *r, const confab_host *host, confab_buf *b);
/* Drop the oldest frame (written, or thrown away) and its reference. The
 * storage goes with the last one, so an idle connection holds none. */
void ws_ring_pop(ws_ring *r, const confab_host *host);
/* Drop every frame (ws_ring_pop each); `held` stays: lws still has it. */
void ws_ring_clear(ws_ring *r, const confab_host *host);

/* True when a frame of `len` bytes fits under `max` beside what the queue
 * costs now. A frame that does not fit is refused, even into an empty
 * queue: the cap bounds everything from the first byte. */
bool ws_ring_fits(const ws_ring *r, size_t len, size_t max);
/* The largest frame that fits now: a frame of `len` bytes fits when `len`
 * is at most this (the transport's send_budget). */
size_t ws_ring_budget(const ws_ring *r, size_t max);

/* The oldest frame was written in part and popped: lws keeps a copy of
 * the `left` bytes not written, which count until it has sent them. */
void ws_ring_hold(ws_ring *r, size_t left);
/* lws has sent everything it held. */
void ws_ring_drained(ws_ring *r);

#endif /* CONFAB_WS_RING_H */
