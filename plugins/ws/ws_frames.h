/* A WebSocket frame-header walker: it follows the frame headers of a
 * client's byte stream, fed in pieces at their stream offsets, and says
 * when a frame is not masked (RFC 6455 5.1). Pure: no socket, no lws; the
 * `ws` plugin feeds it what it peeks (ws_mask.c), the unit tests what
 * they build.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_WS_FRAMES_H
#define CONFAB_WS_FRAMES_H

#include <stddef.h>
#include <stdint.h>

/* The longest frame header: 2 bytes, 8 of extended length, 4 of key. */
#define WS_FRAMES_HDR_MAX 14

typedef struct ws_frames {
	uint64_t next_hdr;           /* stream offset of the next header */
	uint64_t fed;                /* bytes before this one were walked */
	uint8_t hdr[WS_FRAMES_HDR_MAX];  /* the header being read, so far */
	uint8_t hdr_len;
} ws_frames;

enum {
	WS_FRAMES_OK = 0,            /* every header so far is masked */
	WS_FRAMES_UNMASKED = 1,      /* a header without the MASK bit */
	WS_FRAMES_GAP = -1           /* bytes before `off` were not fed */
};

/* Start at stream offset `at`: a frame header is there. */
void ws_frames_init(ws_frames *w, uint64_t at);
/* Walk `len` bytes that start at stream offset `off`. Bytes already walked
 * (before w->fed) are skipped, so overlapping feeds are fine; a feed that
 * starts after w->fed is a gap (nothing walked). WS_FRAMES_UNMASKED sets
 * *bad (if not NULL) to the stream offset of the unmasked frame's header;
 * the walker stays there. */
int ws_frames_feed(ws_frames *w, uint64_t off, const void *data, size_t len,
		   uint64_t *bad);

#endif
