/* One WebSocket client connection on the libuv loop: TCP connect (bound to
 * a chosen source address when asked), for wss:// a TLS handshake, the
 * opening handshake, frames in and out. Pings are answered and a close is
 * echoed here; data messages go to the owner's callback.
 *
 * Memory per ws:// connection is the struct itself: reads land in one
 * buffer shared by every connection (one thread), and a connection
 * allocates only to keep the tail of a partial frame, a fragmented message,
 * or a write the kernel did not take at once. A wss:// connection adds its
 * OpenSSL state (tls_client.h); TLS is a filter between the stream and the
 * frame code, which the ws:// path never enters.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_BENCH_CONN_H
#define CONFAB_BENCH_CONN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "target.h"
#include "ws_client.h"

/* CONN_TLS: wss:// only, the TLS handshake before the WebSocket one. */
enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_TLS, CONN_HANDSHAKE, CONN_OPEN,
		  CONN_CLOSING, CONN_CLOSED };

struct ssl_st;

struct conn;

struct conn_ops {
	/* The handshake completed. */
	void (*on_open)(struct conn *c);
	/* A text or binary message (data valid during the call). */
	void (*on_message)(struct conn *c, const uint8_t *data, size_t len);
	/* The connection failed or ended; `why` says how (one line; a failed
	 * TLS handshake starts with "TLS handshake failed"). Called once; the
	 * handle is being closed (the struct must stay alive until the loop
	 * ends, or until conn_closed() is true). */
	void (*on_close)(struct conn *c, const char *why);
};

struct conn {
	uv_tcp_t tcp;
	uv_connect_t creq;
	const struct conn_ops *ops;
	const struct target *target;
	struct ws_parser parser;
	uint8_t *pend;            /* bytes of an incomplete frame or response */
	size_t pend_len, pend_cap;
	size_t queued;            /* bytes handed to uv_write, not yet written */
	struct ssl_st *ssl;       /* wss://: the TLS session; NULL for ws:// */
	uint32_t rng;
	uint8_t state;
	uint8_t handle_open;
	char key[25];
};

/* Starts connecting `c` to `t`, from `src` when not NULL (port 0: the kernel
 * picks one per destination). Returns 0 or a libuv error code. */
int conn_start(struct conn *c, uv_loop_t *loop, const struct target *t,
	       const struct sockaddr_in *src, const struct conn_ops *ops);

/* Sends one text message. Returns 0, or a negative libuv error. */
int conn_send_text(struct conn *c, const void *data, size_t len);

/* Closes the connection without a callback to on_close. */
void conn_close(struct conn *c);

#endif
