/* The frame-header walker (ws_frames.h): follows a client's frame headers
 * through its byte stream and finds the first unmasked frame.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "ws_frames.h"

void ws_frames_init(ws_frames *w, uint64_t at)
{
	memset(w, 0, sizeof(*w));
	w->next_hdr = at;
	w->fed = at;
}

/* The length of the header whose first two bytes are `h`. */
static size_t hdr_size(const uint8_t *h)
{
	size_t n = 2;
	uint8_t l7 = h[1] & 0x7f;

	if (l7 == 126)
		n += 2;
	else if (l7 == 127)
		n += 8;
	if (h[1] & 0x80)
		n += 4;
	return n;
}

/* The payload length of a complete header. */
static uint64_t payload_len(const uint8_t *h)
{
	uint8_t l7 = h[1] & 0x7f;
	uint64_t n = 0;

	if (l7 < 126)
		return l7;
	if (l7 == 126)
		return ((uint64_t)h[2] << 8) | h[3];
	for (int i = 0; i < 8; i++)
		n = (n << 8) | h[2 + i];
	return n;
}

int ws_frames_feed(ws_frames *w, uint64_t off, const void *data, size_t len,
		   uint64_t *bad)
{
	const uint8_t *p = data;
	uint64_t pos;

	if (off > w->fed)
		return WS_FRAMES_GAP;
	if (w->fed - off >= len)
		return WS_FRAMES_OK;
	p += w->fed - off;
	len -= (size_t)(w->fed - off);
	pos = w->fed;
	while (len > 0) {
		size_t n;

		if (pos < w->next_hdr) {
			/* Payload: skip it. */
			uint64_t left = w->next_hdr - pos;

			n = left < len ? (size_t)left : len;
		} else {
			/* A header: gather it. */
			size_t need = w->hdr_len < 2 ? 2 : hdr_size(w->hdr);

			n = need - w->hdr_len;
			if (n > len)
				n = len;
			memcpy(w->hdr + w->hdr_len, p, n);
			w->hdr_len += (uint8_t)n;
			if (w->hdr_len >= 2 && !(w->hdr[1] & 0x80)) {
				w->fed = w->next_hdr;
				w->hdr_len = 0;
				if (bad != NULL)
					*bad = w->next_hdr;
				return WS_FRAMES_UNMASKED;
			}
			if (w->hdr_len >= 2 && w->hdr_len == hdr_size(w->hdr)) {
				uint64_t end = w->next_hdr + w->hdr_len;
				uint64_t plen = payload_len(w->hdr);

				/* A length no stream reaches: no more
				 * headers (lws refuses the frame). */
				w->next_hdr = plen > UINT64_MAX - end ?
					      UINT64_MAX : end + plen;
				w->hdr_len = 0;
			}
		}
		p += n;
		len -= n;
		pos += n;
	}
	w->fed = pos;
	return WS_FRAMES_OK;
}
