/* The client side of WebSocket (RFC 6455), without any I/O: the opening
 * handshake (request, Sec-WebSocket-Accept check) and the frame codec
 * (masked client frames out; server frames in, with fragments reassembled
 * and control frames passed on as they come).
 *
 * Nothing here allocates per frame: an unfragmented message is handed to
 * the callback straight from the caller's buffer; only a fragmented one is
 * copied, into a buffer the parser keeps and reuses.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_BENCH_WS_CLIENT_H
#define CONFAB_BENCH_WS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

enum {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* The largest header a frame can have: 2 + 8 (64-bit length) + 4 (mask). */
#define WS_MAX_HEADER 14

/* ---- handshake ---------------------------------------------------------- */

/* A fresh Sec-WebSocket-Key (base64 of 16 random bytes, 24 characters and
 * a NUL) into `key`. Returns 0, or -1 if no randomness was available. */
int ws_key_make(char key[25]);

/* The Sec-WebSocket-Accept a server must answer for `key` (28 characters
 * and a NUL) into `accept`. */
void ws_accept_for(const char *key, char accept[29]);

/* Writes the GET request for `host` (host:port) and `path` (path and query)
 * into `out`; returns its length, or -1 if `cap` is too small. */
int ws_request_write(char *out, size_t cap, const char *host, const char *path,
		     const char *key);

/* Looks at the first `len` bytes a server sent. Returns the length of the
 * response head (up to and including the blank line) once it is complete,
 * 101 and carries the right Accept for `key`; 0 when more bytes are needed;
 * -1 when the response is not a valid upgrade (its status, when one was
 * read, in *status). */
long ws_response_check(const char *buf, size_t len, const char *key, int *status);

/* ---- frames ------------------------------------------------------------- */

/* Encodes one final, masked client frame of `opcode` carrying `len` bytes of
 * `payload` with the masking key `mask`. Writes at most WS_MAX_HEADER + len
 * bytes into `out`; returns the frame length, or 0 if `cap` is too small. */
size_t ws_frame_encode(uint8_t *out, size_t cap, int opcode, const void *payload,
		       size_t len, uint32_t mask);

/* Called for each complete data message (text or binary, reassembled) and
 * each control frame (close, ping, pong), in order. `data` is valid for the
 * duration of the call. Return 0 to go on, non-zero to stop parsing. */
typedef int (*ws_on_frame)(void *ud, int opcode, const uint8_t *data, size_t len);

struct ws_parser {
	uint8_t *frag;       /* fragments of the message being reassembled */
	size_t frag_len;
	size_t frag_cap;
	int frag_opcode;     /* opcode of its first frame; 0 when none is open */
	size_t max_message;  /* 0: no limit */
};

void ws_parser_init(struct ws_parser *p, size_t max_message);
void ws_parser_free(struct ws_parser *p);

/* Parses the complete frames at the start of `buf`, calling `cb` for each
 * message or control frame. Returns how many bytes were consumed (the rest
 * is an incomplete frame: call again with it and more bytes), or -1 on a
 * protocol error (reserved bits, a bad opcode, a continuation without a
 * start, a new message inside a fragmented one, a fragmented or oversized
 * control frame, a message over max_message, out of memory). Stops after
 * the frame for which `cb` returned non-zero. */
long ws_parse(struct ws_parser *p, const uint8_t *buf, size_t len, ws_on_frame cb, void *ud);

#endif
