/* Unmasked client frames (RFC 6455 5.1): a connection whose client sends
 * one is closed with 1002, and lws never reads that frame.
 *
 * Why here: libwebsockets 4.1.6 accepts unmasked frames and does not tell
 * its user whether a frame was masked; libuv refuses a second poll handle
 * on lws's descriptor. So `ws` looks at what lws is about to read, in the
 * kernel's receive queue, before lws reads it:
 *   - the libuv readiness callback of lws's poll handle for the socket
 *     (its io watcher's `cb`, set once by uv_poll_init; lws restarts the
 *     handle with its own poll_cb whenever it changes events, the io
 *     watcher's callback stays) is replaced by mask_io() once the
 *     connection is a WebSocket;
 *   - on a readable event, mask_io() peeks at the queue (recv MSG_PEEK)
 *     and learns the stream offset of its first byte from TCP_INFO's
 *     tcpi_bytes_received, read before and after (equal: nothing arrived
 *     in between); the frame-header walker (ws_frames.c) follows every
 *     header from the end of the request head on;
 *   - lws's own callback runs only when every frame header in what lws
 *     can read in this event (at most one read, of at most the peek's
 *     size) is masked. Otherwise reading stops (lws_rx_flow_control) and
 *     the next writeable callback closes with 1002 (ws_out.c).
 * The frames the client sent in the same segments as its request were
 * read by reception (ws_head.c) and are walked before lws has them
 * (ws_mask_head): an unmasked one is cut off the bytes lws gets, with
 * everything behind it.
 *
 * Anything unexpected (no poll handle of lws's for the descriptor, bytes
 * lws read that the walker did not see, offsets that do not add up) turns
 * the check off for that connection, logged: it never refuses a frame it
 * could not see. What this relies on in lws and libuv: docs/design.md.
 *
 * Cost per readable event of a WebSocket: two getsockopt and one recv
 * (MSG_PEEK) into one buffer per instance; an ioctl(SIOCINQ) when the
 * peek fills the buffer.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include <uv.h>

#include "ws.h"

/* Reads of WS_SERV_BUF bytes at most that ws_mask_discard() makes. */
#define WS_MASK_DISCARD 8

/* Tries at a stable offset before this event is left for the next turn
 * (the socket stays readable, so libuv reports it again). */
#define WS_MASK_TRIES 3

/* Connections whose poll handle is hooked, by descriptor. Descriptors are
 * the process's, so one table serves every instance of the plugin; the
 * callback replaced is libuv's one uv__poll_io, the same for all. */
static ws_conn **by_fd;
static size_t by_fd_cap;
static size_t by_fd_users;       /* instances that use it: the last frees it */
static uv__io_cb orig_cb;

static void mask_io(uv_loop_t *loop, uv__io_t *w, unsigned int events);

static void give_up(ws_conn *c, const char *why)
{
	c->mask_on = false;
	WS_LOG_LIMITED(c->s, CONFAB_LOG_WARN, "unmasked frames are not "
		       "checked on a connection: %s", why);
}

static int table_put(int fd, ws_conn *c)
{
	if ((size_t)fd >= by_fd_cap) {
		size_t cap = by_fd_cap ? by_fd_cap : 256;
		ws_conn **t;

		while (cap <= (size_t)fd)
			cap *= 2;
		t = realloc(by_fd, cap * sizeof(*t));
		if (t == NULL)
			return -1;
		memset(t + by_fd_cap, 0, (cap - by_fd_cap) * sizeof(*t));
		by_fd = t;
		by_fd_cap = cap;
	}
	by_fd[fd] = c;
	return 0;
}

/* Where the request head's header lines hold an Upgrade header. */
static bool asks_upgrade(const char *p, size_t len)
{
	static const char name[] = "\r\nupgrade:";
	size_t n = sizeof(name) - 1;

	for (size_t i = 0; i + n <= len; i++)
		if (p[i] == '\r' && strncasecmp(p + i, name, n) == 0)
			return true;
	return false;
}

void ws_mask_head(ws_conn *c)
{
	uint64_t bad;

	/* A request that asks for no upgrade stays HTTP: what follows it
	 * is another request, not frames. One that asks for one is upgraded
	 * or refused, and a refusal hangs up. */
	if (!asks_upgrade(c->head, c->head_end))
		return;
	/* Stream offsets: a balancer's PROXY header (proxy_len bytes, read
	 * and dropped by reception) came before head[0]. */
	ws_frames_init(&c->frames, c->proxy_len + c->head_end);
	c->mask_on = true;
	if (ws_frames_feed(&c->frames, c->proxy_len, c->head, c->head_len, &bad) ==
	    WS_FRAMES_UNMASKED) {
		/* lws gets what came before it, and never the rest. */
		c->unmasked = true;
		c->unmasked_held = bad > c->proxy_len + c->head_end;
		c->head_len = (size_t)(bad - c->proxy_len);
	}
}

void ws_mask_hook(ws_conn *c)
{
	ws_state *s = c->s;
	uv_loop_t *loop = s->loop;
	uv_poll_t *h;
	uv__io_t *w;
	uv_os_fd_t ufd;
	int fd;

	if (!c->mask_on || c->wsi == NULL)
		return;
	fd = (int)lws_get_socket_fd(c->wsi);
	if (fd == c->mask_fd)
		return;  /* hooked already */
	if (fd < 0 || (unsigned)fd >= loop->nwatchers ||
	    (w = loop->watchers[fd]) == NULL) {
		give_up(c, "libwebsockets' poll handle for it is not on the "
			"loop");
		return;
	}
	h = (uv_poll_t *)((char *)w - offsetof(uv_poll_t, io_watcher));
	if (h->type != UV_POLL || h->loop != loop ||
	    uv_fileno((uv_handle_t *)h, &ufd) != 0 || ufd != fd ||
	    (w->cb != mask_io && orig_cb != NULL && w->cb != orig_cb)) {
		give_up(c, "the descriptor's watcher is not a libuv poll "
			"handle");
		return;
	}
	if (s->mask_buf == NULL) {
		s->mask_buf = malloc(WS_SERV_BUF);
		if (s->mask_buf == NULL) {
			give_up(c, "out of memory");
			return;
		}
		by_fd_users++;  /* until ws_mask_end */
	}
	if (table_put(fd, c) != 0) {
		give_up(c, "out of memory");
		return;
	}
	if (w->cb != mask_io) {
		orig_cb = w->cb;
		w->cb = mask_io;
	}
	c->mask_fd = fd;
	c->mask_w = w;
}

void ws_mask_unhook(ws_conn *c)
{
	if (c->mask_fd < 0)
		return;
	if ((size_t)c->mask_fd < by_fd_cap && by_fd[c->mask_fd] == c)
		by_fd[c->mask_fd] = NULL;
	c->mask_fd = -1;
	c->mask_w = NULL;
}

void ws_mask_discard(ws_conn *c)
{
	int fd = c->wsi != NULL ? (int)lws_get_socket_fd(c->wsi) : -1;

	if (fd < 0 || c->s->mask_buf == NULL)
		return;
	for (int i = 0; i < WS_MASK_DISCARD; i++)
		if (recv(fd, c->s->mask_buf, WS_SERV_BUF, MSG_DONTWAIT) <= 0)
			break;
}

void ws_mask_end(ws_state *s)
{
	if (s->mask_buf == NULL)
		return;
	free(s->mask_buf);
	s->mask_buf = NULL;
	if (--by_fd_users == 0) {
		/* Every connection is gone (destroy runs after lws's context
		 * is): nothing refers to the table. */
		free(by_fd);
		by_fd = NULL;
		by_fd_cap = 0;
	}
}

/* The count of bytes that came in on c's socket, and whether a FIN came
 * (counted in it): TCP_INFO's; over TLS the relay's count of what it wrote
 * into the socket pair (it runs on this thread: nothing comes in between
 * two readings), where a FIN takes no place in the stream. */
static int received(const ws_conn *c, int fd, uint64_t *bytes, int *fin)
{
	if (c->via_tls) {
		*bytes = c->tls_in;
		*fin = 0;
		return 0;
	}
	return ws_tcp_received(fd, bytes, fin);
}

/* The stream offset of the receive queue's head, and what it holds (up to
 * `cap` bytes, in s->mask_buf): 1; 0 when nothing is queued (or an error
 * lws will see); -1 when the offsets cannot be had; -2 when bytes kept
 * arriving between the two readings. */
static int peek(ws_conn *c, int fd, size_t cap, uint64_t *off, size_t *got)
{
	for (int i = 0; i < WS_MASK_TRIES; i++) {
		uint64_t b0, b1;
		ssize_t n;
		size_t queued;
		int inq, fin;

		if (received(c, fd, &b0, &fin) != 0)
			return -1;
		n = recv(fd, c->s->mask_buf, cap, MSG_PEEK | MSG_DONTWAIT);
		if (n <= 0)
			return 0;
		queued = (size_t)n;
		if (queued == cap) {
			if (ioctl(fd, SIOCINQ, &inq) != 0 || inq < n)
				return -1;
			queued = (size_t)inq;
		}
		if (received(c, fd, &b1, &fin) != 0)
			return -1;
		if (b0 != b1)
			continue;
		if (b1 < (uint64_t)fin + queued)
			return -1;
		*off = b1 - (uint64_t)fin - queued;
		*got = (size_t)n;
		return 1;
	}
	return -2;
}

/* Stop lws reading, and close with 1002 at the next writeable callback. */
static void refuse(ws_conn *c)
{
	WS_LOG_LIMITED(c->s, CONFAB_LOG_INFO, "a client sent an unmasked "
		       "frame: closing its connection (1002)");
	ws_conn_unmasked(c);
}

/* POLLIN may go to lws: true, or false to keep it from lws this time. */
static bool check(ws_conn *c, int fd)
{
	/* lws reads at most this much in one readable event: its per-
	 * connection buffer once a WebSocket, its per-thread one before. */
	size_t cap = c->established ? WS_RX_BUFFER + LWS_PRE : WS_SERV_BUF;
	uint64_t off, bad;
	size_t got;
	int rc;

	if (c->unmasked) {
		/* lws stops asking for POLLIN; until then it is kept. */
		if (c->wsi != NULL)
			lws_rx_flow_control(c->wsi, 0);
		return false;
	}
	rc = peek(c, fd, cap, &off, &got);
	if (rc == 0)
		return true;  /* nothing lws can read unseen either */
	if (rc == -2)
		return false;  /* the next turn tries again */
	if (rc < 0) {
		give_up(c, "its TCP offsets cannot be read");
		return true;
	}
	if (!c->mask_synced) {
		/* Nobody read the socket since reception: the queue starts
		 * where reception stopped. */
		if (off != c->frames.fed) {
			give_up(c, "its TCP offsets do not match what was "
				"read of it");
			return true;
		}
		c->mask_synced = true;
	}
	rc = ws_frames_feed(&c->frames, off, c->s->mask_buf, got, &bad);
	if (rc == WS_FRAMES_GAP) {
		give_up(c, "libwebsockets read bytes that were not checked");
		return true;
	}
	if (rc == WS_FRAMES_UNMASKED) {
		refuse(c);
		if (c->wsi != NULL)
			lws_rx_flow_control(c->wsi, 0);
		return false;
	}
	return true;
}

static void mask_io(uv_loop_t *loop, uv__io_t *w, unsigned int events)
{
	ws_conn *c = NULL;

	if (w->fd >= 0 && (size_t)w->fd < by_fd_cap)
		c = by_fd[w->fd];
	if (c != NULL && c->mask_w == w && c->mask_on && (events & POLLIN) &&
	    !check(c, w->fd))
		events &= ~(unsigned)POLLIN;
	if (events != 0)
		orig_cb(loop, w, events);
}
