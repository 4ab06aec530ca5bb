/* A WebSocket client connection on libuv: see conn.h.
 * SPDX-License-Identifier: MIT
 */
#include "conn.h"

#include <netinet/ip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tls_client.h"

/* Reads of every connection land here first (one thread, and libuv calls
 * read_cb right after alloc_cb). */
static uint8_t read_buf[256 * 1024];
/* Outgoing frames are built here, then written or copied into a request. */
static uint8_t *send_buf;
static size_t send_cap;
/* wss:// only: plaintext out of OpenSSL on its way to the frame parser, and
 * ciphertext out of OpenSSL on its way to the stream. */
static uint8_t tls_plain[64 * 1024];
static uint8_t tls_cipher[64 * 1024];

static void on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	c->handle_open = 0;
	c->state = CONN_CLOSED;
}

static void release(struct conn *c)
{
	ws_parser_free(&c->parser);
	free(c->pend);
	c->pend = NULL;
	c->pend_len = c->pend_cap = 0;
	if (c->ssl) {
		tls_client_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->handle_open && !uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void fail(struct conn *c, const char *why)
{
	if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
		return;
	c->state = CONN_CLOSING;
	release(c);
	if (c->ops->on_close)
		c->ops->on_close(c, why);
}

/* The bench's own close at the end of a run resets the connection
 * (SO_LINGER 0): a normal close leaves the client's side in TIME_WAIT for
 * a minute, and the tens of thousands a make bench leaves behind slowed the
 * next scenario's connects (the kernel's search for a free port). */
void conn_close(struct conn *c)
{
	uv_os_fd_t fd;

	if (c->state == CONN_CLOSING || c->state == CONN_CLOSED || c->state == CONN_IDLE)
		return;
	c->state = CONN_CLOSING;
	if (c->handle_open && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
		struct linger reset = { .l_onoff = 1, .l_linger = 0 };

		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	}
	release(c);
}

struct wreq {
	uv_write_t req;
	struct conn *c;
	size_t len;
	uint8_t data[];
};

static void on_written(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	w->c->queued -= w->len;
	struct conn *c = w->c;
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		fail(c, uv_strerror(status));
}

/* Writes `len` bytes: at once when the kernel takes them, else copied. */
static int write_raw(struct conn *c, const uint8_t *data, size_t len)
{
	size_t off = 0;
	if (c->queued == 0) {
		uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
		int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (n >= 0)
			off = (size_t)n;
		else if (n != UV_EAGAIN)
			return n;
		if (off == len)
			return 0;
	}
	struct wreq *w = malloc(sizeof *w + (len - off));
	if (!w)
		return UV_ENOMEM;
	w->c = c;
	w->len = len - off;
	memcpy(w->data, data + off, len - off);
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
	int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
	if (rc < 0) {
		free(w);
		return rc;
	}
	c->queued += w->len;
	return 0;
}

/* Ciphertext OpenSSL has for the server, to the stream. */
static int tls_flush(struct conn *c)
{
	size_t n;
	while ((n = tls_client_take_out(c->ssl, tls_cipher, sizeof tls_cipher)) > 0) {
		int rc = write_raw(c, tls_cipher, n);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Writes `len` bytes of WebSocket: as they are on ws://, encrypted on
 * wss://. Errors are returned, as write_raw's are, not acted on: this runs
 * inside the frame parser's callbacks (a pong), where failing the
 * connection would free the parser under it. */
static int write_out(struct conn *c, const uint8_t *data, size_t len)
{
	if (!c->ssl)
		return write_raw(c, data, len);
	char why[256];
	if (tls_client_write(c->ssl, data, len, why, sizeof why) < 0)
		return UV_EPROTO;
	return tls_flush(c);
}

static uint32_t next_mask(struct conn *c)
{
	uint32_t x = c->rng;     /* xorshift32: masks need not be secret here */
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return c->rng = x;
}

static int send_frame(struct conn *c, int opcode, const void *data, size_t len)
{
	if (c->state != CONN_OPEN)
		return UV_ENOTCONN;
	if (send_cap < len + WS_MAX_HEADER) {
		size_t cap = len + WS_MAX_HEADER + 4096;
		uint8_t *n = realloc(send_buf, cap);
		if (!n)
			return UV_ENOMEM;
		send_buf = n;
		send_cap = cap;
	}
	size_t n = ws_frame_encode(send_buf, send_cap, opcode, data, len, next_mask(c));
	return write_out(c, send_buf, n);
}

int conn_send_text(struct conn *c, const void *data, size_t len)
{
	return send_frame(c, WS_OP_TEXT, data, len);
}

static int on_frame(void *ud, int opcode, const uint8_t *data, size_t len)
{
	struct conn *c = ud;
	switch (opcode) {
	case WS_OP_PING:
		send_frame(c, WS_OP_PONG, data, len);
		return 0;
	case WS_OP_PONG:
		return 0;
	case WS_OP_CLOSE: {
		uint8_t echo[2] = {0x03, 0xe8};    /* 1000 */
		send_frame(c, WS_OP_CLOSE, len >= 2 ? data : echo, 2);
		static char why[96];
		int code = len >= 2 ? (data[0] << 8) | data[1] : 1005;
		snprintf(why, sizeof why, "closed by the server (%d %.*s)", code,
			 len > 2 ? (int)(len - 2 > 60 ? 60 : len - 2) : 0,
			 len > 2 ? (const char *)data + 2 : "");
		fail(c, why);
		return 1;
	}
	default:
		c->ops->on_message(c, data, len);
		/* The callback may have closed the connection. */
		return c->state != CONN_OPEN;
	}
}

static int keep_pending(struct conn *c, const uint8_t *data, size_t len)
{
	if (len > c->pend_cap) {
		size_t cap = len < 1024 ? 1024 : len * 2;
		uint8_t *n = realloc(c->pend, cap);
		if (!n)
			return -1;
		c->pend = n;
		c->pend_cap = cap;
	}
	/* len 0 with no buffer yet: memmove's arguments must not be NULL. */
	if (len)
		memmove(c->pend, data, len);
	c->pend_len = len;
	return 0;
}

static void free_pending_if_empty(struct conn *c)
{
	if (c->pend_len == 0 && c->pend_cap > 4096) {
		free(c->pend);
		c->pend = NULL;
		c->pend_cap = 0;
	}
}

/* Handles the bytes in [data, data+len): the handshake response first, then
 * frames. What stays unparsed is kept in c->pend. */
static void consume(struct conn *c, const uint8_t *data, size_t len)
{
	if (c->state == CONN_HANDSHAKE) {
		int status = 0;
		long head = ws_response_check((const char *)data, len, c->key, &status);
		if (head < 0) {
			static char why[64];
			snprintf(why, sizeof why, "handshake refused (HTTP %d)", status);
			fail(c, why);
			return;
		}
		if (head == 0) {
			if (keep_pending(c, data, len) < 0)
				fail(c, "out of memory");
			return;
		}
		c->state = CONN_OPEN;
		data += head;
		len -= (size_t)head;
		c->ops->on_open(c);
		if (c->state != CONN_OPEN)
			return;
	}
	long used = ws_parse(&c->parser, data, len, on_frame, c);
	if (c->state != CONN_OPEN)
		return;
	if (used < 0) {
		fail(c, "bad frame from the server");
		return;
	}
	if (keep_pending(c, data + used, len - (size_t)used) < 0)
		fail(c, "out of memory");
	free_pending_if_empty(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	*buf = uv_buf_init((char *)read_buf, sizeof read_buf);
}

/* WebSocket bytes from the server: straight from the stream on ws://, out
 * of OpenSSL on wss://. */
static void plain_in(struct conn *c, const uint8_t *data, size_t len)
{
	if (c->pend_len) {
		/* Append to the kept tail and parse from there. */
		size_t need = c->pend_len + len;
		if (need > c->pend_cap) {
			uint8_t *n = realloc(c->pend, need * 2);
			if (!n) {
				fail(c, "out of memory");
				return;
			}
			c->pend = n;
			c->pend_cap = need * 2;
		}
		memcpy(c->pend + c->pend_len, data, len);
		c->pend_len = 0;
		/* consume() may move the unparsed tail to the front of pend. */
		consume(c, c->pend, need);
	} else {
		consume(c, data, len);
	}
}

static int send_upgrade(struct conn *c)
{
	char reqbuf[512];
	int n = ws_request_write(reqbuf, sizeof reqbuf, c->target->hostport, c->target->path,
				 c->key);
	if (n < 0)
		return UV_EINVAL;
	c->state = CONN_HANDSHAKE;
	return write_out(c, (const uint8_t *)reqbuf, (size_t)n);
}

/* A TLS failure in one line. Before the WebSocket handshake is done it is
 * the TLS handshake's to the user (with TLS 1.3 the server refuses a
 * client certificate only after the client's side of it ended). */
static void fail_tls(struct conn *c, const char *reason)
{
	char why[256];
	snprintf(why, sizeof why, "%s: %s", c->state == CONN_OPEN ? "TLS" : "TLS handshake failed",
		 reason);
	fail(c, why);
}

/* Moves the TLS handshake on; once it is done, sends the upgrade request.
 * Returns 0, or -1 when the connection has failed. */
static int tls_step(struct conn *c)
{
	char why[200];
	int done = tls_client_handshake(c->ssl, why, sizeof why);
	if (done < 0) {
		fail_tls(c, why);
		return -1;
	}
	int rc = tls_flush(c);
	if (rc == 0 && done)
		rc = send_upgrade(c);
	if (rc < 0) {
		fail(c, uv_strerror(rc));
		return -1;
	}
	return 0;
}

/* Ciphertext from the server, fed to OpenSSL a record or so at a time
 * (so that a connection never holds more than that unread), and what it
 * decrypts handed on as it comes. Any callback may close the connection
 * (and free c->ssl): the state is checked after each. */
static void tls_in(struct conn *c, const uint8_t *data, size_t len)
{
	char why[200];
	while (len > 0) {
		size_t n = len < TLS_CLIENT_FEED ? len : TLS_CLIENT_FEED;
		if (tls_client_feed(c->ssl, data, n) < 0) {
			fail(c, "out of memory");
			return;
		}
		data += n;
		len -= n;
		if (c->state == CONN_TLS) {
			if (tls_step(c) < 0)
				return;
			if (c->state == CONN_TLS)
				continue;     /* the handshake wants more */
		}
		for (;;) {
			if (c->state != CONN_HANDSHAKE && c->state != CONN_OPEN)
				return;
			long got = tls_client_read(c->ssl, tls_plain, sizeof tls_plain, why,
						   sizeof why);
			if (got == 0)
				break;
			if (got < 0) {
				fail_tls(c, why);
				return;
			}
			plain_in(c, tls_plain, (size_t)got);
		}
		/* What reading made OpenSSL answer (a key update, an alert). */
		int rc = tls_flush(c);
		if (rc < 0) {
			fail(c, uv_strerror(rc));
			return;
		}
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	if (nread == 0)
		return;
	if (nread < 0) {
		if (c->state == CONN_TLS)
			fail(c, nread == UV_EOF ? "TLS handshake failed: closed by the server (EOF)"
						: uv_strerror((int)nread));
		else
			fail(c, nread == UV_EOF ? "closed by the server (EOF)"
						: uv_strerror((int)nread));
		return;
	}
	if (c->ssl)
		tls_in(c, (const uint8_t *)buf->base, (size_t)nread);
	else
		plain_in(c, (const uint8_t *)buf->base, (size_t)nread);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	if (c->state != CONN_CONNECTING)
		return;
	if (status < 0) {
		fail(c, uv_strerror(status));
		return;
	}
	int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (rc < 0) {
		fail(c, uv_strerror(rc));
		return;
	}
	if (!c->target->tls) {
		rc = send_upgrade(c);
		if (rc < 0)
			fail(c, uv_strerror(rc));
		return;
	}
	char why[256];
	c->ssl = tls_client_new(c->target->tls_ctx, c->target->host, why, sizeof why);
	if (!c->ssl) {
		fail(c, why);
		return;
	}
	c->state = CONN_TLS;
	tls_step(c);                  /* the ClientHello */
}

int conn_start(struct conn *c, uv_loop_t *loop, const struct target *t,
	       const struct sockaddr_in *src, const struct conn_ops *ops)
{
	c->ops = ops;
	c->target = t;
	c->pend = NULL;
	c->pend_len = c->pend_cap = 0;
	c->queued = 0;
	c->ssl = NULL;
	c->rng = (uint32_t)(uintptr_t)c | 1u;
	ws_parser_init(&c->parser, 0);
	if (ws_key_make(c->key) < 0)
		return UV_EIO;
	int rc = uv_tcp_init_ex(loop, &c->tcp, AF_INET);
	if (rc < 0)
		return rc;
	c->handle_open = 1;
	c->tcp.data = c;
	c->creq.data = c;
	c->state = CONN_CONNECTING;
	uv_tcp_nodelay(&c->tcp, 1);
	if (src) {
		uv_os_fd_t fd;
#ifdef IP_BIND_ADDRESS_NO_PORT
		/* Let connect() pick the port per destination: more than the
		 * ephemeral range per source address across several targets. */
		if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		}
#else
		(void)fd;
#endif
		rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)src, 0);
	}
	if (rc == 0)
		rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&t->addr,
				    on_connect);
	if (rc < 0) {
		c->state = CONN_CLOSING;
		release(c);
	}
	return rc;
}
