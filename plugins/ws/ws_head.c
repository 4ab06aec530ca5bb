/* Reception: an accepted connection's request head is read here, before
 * libwebsockets sees the socket, and handed to lws with it
 * (lws_adopt_socket_vhost_readbuf) once it is complete.
 *
 * Why not let lws read it:
 *   - Methods. lws answers a method it does not know, or a request target
 *     that is not a path ("OPTIONS *"), with its own HTML "403" in
 *     HTTP/1.0, and turns CONNECT into a raw connection it then holds.
 *     Only GET and HEAD are served here: anything else is answered 405
 *     with Allow, from the request line, at once.
 *   - Parking (ws_park.c). A handshake whose admission is pending is
 *     taken from lws and later handed back with its request written
 *     again. What the client sent behind its request (WebSocket frames in
 *     the same TCP segment, before our 101) was in lws's buffer, which is
 *     lost with its connection: the bytes read here are kept instead, the
 *     request and everything behind it, and handed back whole, however
 *     long the headers are.
 * lws still parses the request (one parser for the headers the auth
 * plugins see): this only finds where the head ends.
 *
 * Until then the connection is ours: on its own libuv poll handle, within
 * the handshake deadline (ws_deadline.c), and at most WS_HEAD_MAX bytes
 * (lws takes WS_HEADER_DATA of header data; a head longer than this would
 * not fit in it either): 431 beyond.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <uv.h>

#include "ws.h"

/* Bytes read before the head must be complete: the header data lws
 * takes, and the request line and the names around it. */
#define WS_HEAD_INITIAL 2048

static void head_readable(uv_poll_t *p, int status, int events);

/* Stop reading: the poll handle goes (the socket stays). */
static void head_stop(ws_conn *c)
{
	if (c->head_poll != NULL) {
		ws_handle_free((uv_handle_t *)c->head_poll);
		c->head_poll = NULL;
	}
}

void ws_head_free(ws_conn *c)
{
	head_stop(c);
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	free(c->head);
	c->head = NULL;
	c->head_len = c->head_cap = 0;
}

int ws_head_start(ws_conn *c, int fd)
{
	c->fd = fd;
	c->head_poll = malloc(sizeof(*c->head_poll));
	if (c->head_poll == NULL)
		return CONFAB_ENOMEM;
	if (uv_poll_init(c->s->loop, c->head_poll, fd) != 0) {
		free(c->head_poll);
		c->head_poll = NULL;
		return CONFAB_ERR;
	}
	c->head_poll->data = c;
	uv_poll_start(c->head_poll, UV_READABLE, head_readable);
	return 0;
}

/* The request line's method, once the line is there: 0 while it is
 * incomplete, 1 for GET and HEAD, -1 for another method (405), -2 for
 * something that is not a request line (400). */
static int method_served(const char *p, size_t len)
{
	size_t n = 0;

	while (n < len && n < 16 && p[n] >= 'A' && p[n] <= 'Z')
		n++;
	if (n == len)
		return n < 16 ? 0 : -2;
	if (p[n] != ' ' || n == 0)
		return -2;
	if ((n == 3 && memcmp(p, "GET", 3) == 0) ||
	    (n == 4 && memcmp(p, "HEAD", 4) == 0))
		return 1;
	return -1;
}

/* Where the head ends (after its blank line), or 0. */
static size_t head_end(const char *p, size_t len, size_t from)
{
	size_t i = from > 3 ? from - 3 : 0;

	for (; i + 3 < len; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' &&
		    p[i + 3] == '\n')
			return i + 4;
	return 0;
}

/* Answer from here and close: the connection never reaches lws. */
static void head_refuse(ws_conn *c, unsigned status, const char *reason,
			const char *extra)
{
	int fd = c->fd;

	head_stop(c);  /* the poll handle goes before its descriptor */
	c->fd = -1;
	WS_LOG_LIMITED(c->s, CONFAB_LOG_DEBUG, "request refused (%u): %s",
		       status, reason);
	ws_metrics_refused(c->s, status);
	ws_http_refuse_fd_x(fd, status, reason, extra);
	ws_conn_head_done(c, false);
}

/* A balancer's connection (ws_proxy.c): its PROXY header, dropped from
 * c->head once whole, and the client's address it names taken. False
 * while it is incomplete, or when c was refused. */
static bool proxy_header(ws_conn *c)
{
	ws_proxy_client client;
	size_t used = 0;
	unsigned status;
	int rc = ws_proxy_header(c->head, c->head_len, WS_HEAD_MAX, &client, &used);

	if (rc == 0)
		return false;
	if (rc < 0) {
		head_refuse(c, 400, "no valid PROXY protocol header from a balancer "
			    "([ws] proxy_protocol)", "");
		return false;
	}
	c->proxy_wait = false;
	c->proxy_len = used;
	memmove(c->head, c->head + used, c->head_len - used);
	c->head_len -= used;
	if (client.family != 0) {
		ws_addr a = { .family = (uint8_t)client.family };

		memcpy(a.bytes, client.bytes, sizeof(a.bytes));
		status = ws_conn_readdress(c, &a);
		if (status != 0) {
			head_refuse(c, status, status == 429
				    ? "too many connections from this address"
				    : "out of memory", "");
			return false;
		}
	}
	return true;
}

/* Room for the next read: false when out of memory. */
static bool head_grow(ws_conn *c)
{
	size_t cap;
	char *np;

	if (c->head_len < c->head_cap)
		return true;
	cap = c->head_cap ? c->head_cap * 2 : WS_HEAD_INITIAL;
	if (cap > WS_HEAD_MAX)
		cap = WS_HEAD_MAX;
	np = realloc(c->head, cap);
	if (np == NULL)
		return false;
	c->head = np;
	c->head_cap = cap;
	return true;
}

static void head_readable(uv_poll_t *p, int status, int events)
{
	ws_conn *c = p->data;
	size_t before = c->head_len;
	ssize_t n;
	int m;

	(void)status;
	(void)events;
	if (!head_grow(c)) {
		head_refuse(c, 503, "out of memory", "");
		return;
	}
	n = recv(c->fd, c->head + c->head_len, c->head_cap - c->head_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		ws_conn_head_done(c, false);  /* gone before its request */
		return;
	}
	c->head_len += (size_t)n;
	if (c->proxy_wait) {
		if (!proxy_header(c))
			return;
		before = 0;
		if (c->head_len == 0)
			return;  /* the request is still to come */
	}

	m = method_served(c->head, c->head_len);
	if (m == -1) {
		head_refuse(c, 405, "method not allowed", "allow: GET, HEAD\r\n");
		return;
	}
	if (m == -2) {
		head_refuse(c, 400, "not an HTTP request", "");
		return;
	}
	if (m == 1 && (c->head_end = head_end(c->head, c->head_len, before)) > 0) {
		/* Whatever the client sent behind its request, in the same
		 * segments, comes along: lws must not be the one to read it
		 * (parking would lose it). */
		while (c->head_len == c->head_cap && c->head_cap < WS_HEAD_MAX &&
		       head_grow(c)) {
			n = recv(c->fd, c->head + c->head_len,
				 c->head_cap - c->head_len, 0);
			if (n <= 0)
				break;
			c->head_len += (size_t)n;
		}
		head_stop(c);
		ws_conn_head_done(c, true);
		return;
	}
	if (c->head_len == WS_HEAD_MAX)
		head_refuse(c, 431, "request header fields too large", "");
}
