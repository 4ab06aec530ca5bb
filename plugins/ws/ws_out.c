/* How the `ws` transport's frames reach the socket: each connection's
 * queue (ws_ring.c), written at the end of a turn or when lws says so.
 *
 * The core serializes a frame once and hands the same confab_buf to every
 * recipient. A connection keeps references in a ring, in order. At the end
 * of each turn of the loop (a uv_check handle) every connection that got
 * frames during the turn writes its whole queue with one writev(): each
 * frame's WebSocket header is written into the buffer's headroom, just in
 * front of the payload, so nothing is copied and one buffer serves every
 * recipient (the header is the same for all: server frames are not
 * masked). One system call per connection per turn however many frames,
 * and no poll change at all while the socket takes what is written.
 *
 * Why not lws_write() per frame, from a writeable callback: that costs one
 * send() per frame, and each request for a writeable callback costs libuv
 * two epoll_ctl() calls (uv_poll_start removes and re-adds the descriptor).
 * That was most of the broker's CPU per delivery (docs/performance.md).
 *
 * The write stays in step with lws, which also writes on the socket (its
 * pings and pongs, our close frame, and anything it had to buffer):
 *   - outside a writeable callback we write only when lws_partial_buffered()
 *     says lws holds nothing back (a full socket answers EAGAIN);
 *   - a frame the socket takes only in part is handed to lws (lws_write
 *     raw), which buffers the rest and sends it before anything else;
 *   - otherwise we ask for a writeable callback (lws calls it only once its
 *     own buffer is empty) and continue from there.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "ws.h"

/* Our close frame goes out with lws_write() and this opcode. lws 4.1 has
 * it (the RFC 6455 opcode) but only privately: its public way,
 * lws_close_reason() and returning -1, loses the close frame in Debian's
 * build of 4.1.6 (a debug-only "repeat" of the close under libuv kills
 * the socket before the frame is written; the client sees 1006). */
#define WS_WRITE_CLOSE ((enum lws_write_protocol)4)
/* Seconds to wait for the client to answer our close frame. */
#define WS_CLOSE_ACK_SECS 5
/* One writev() carries at most this many frames and about this many
 * bytes; more waits for the next writeable callback, so that one busy
 * connection does not hold the loop. */
#define WS_IOV_FRAMES 128
#define WS_IOV_BYTES (256 * 1024)
/* A text frame's header: FIN + opcode, then the length in 1, 3 or 9
 * bytes (RFC 6455 5.2). It is built in the headroom lws asks for. */
#define WS_HEADER_MAX 10
_Static_assert(LWS_PRE >= WS_HEADER_MAX, "LWS_PRE holds a frame header");

/* ---- waiting to be written ----
 *
 * A connection with something to write is on one of two lists: `dirty`,
 * written at the end of this turn of the loop, or `later`, written when
 * its write delay has passed: a connection written less than
 * [ws] write_delay ms ago waits that long since its last write, so that
 * the frames of a burst go out in one writev(). A connection that was
 * quiet is written at the end of the turn, without delay. */

enum { WS_OUT_NONE, WS_OUT_DIRTY, WS_OUT_LATER };

static ws_conn **list_of(ws_state *s, uint8_t which)
{
	return which == WS_OUT_DIRTY ? &s->dirty : &s->later;
}

static void out_unlink(ws_conn *c)
{
	ws_conn **head;

	if (c->out_list == WS_OUT_NONE)
		return;
	head = list_of(c->s, c->out_list);
	if (c->out_prev != NULL)
		c->out_prev->out_next = c->out_next;
	else
		*head = c->out_next;
	if (c->out_next != NULL)
		c->out_next->out_prev = c->out_prev;
	c->out_prev = c->out_next = NULL;
	c->out_list = WS_OUT_NONE;
}

static void out_link(ws_conn *c, uint8_t which)
{
	ws_conn **head = list_of(c->s, which);

	c->out_list = which;
	c->out_prev = NULL;
	c->out_next = *head;
	if (*head != NULL)
		(*head)->out_prev = c;
	*head = c;
}

static uint32_t loop_ms(const ws_state *s)
{
	return (uint32_t)uv_now(s->loop);
}

/* A connection is busy when its frames come, on average, less than half
 * a write delay apart: then a delay gathers two or more per writev().
 * gap16 is that average (ms x 16, a moving average over ~8 frames). */
static bool busy(const ws_conn *c)
{
	return c->gap16 < (c->s->write_delay_ms << 3);
}

/* ms until c may be written again; 0: now. Only busy connections wait. */
static uint32_t delay_left(const ws_conn *c, uint32_t now)
{
	uint32_t since = now - c->written_at;

	if (!busy(c) || since >= c->s->write_delay_ms)
		return 0;
	return c->s->write_delay_ms - since;
}

/* Note a frame's arrival in the average gap between frames. */
static void note_arrival(ws_conn *c, uint32_t now)
{
	uint32_t gap = now - c->last_frame_at;

	if (gap > 4000)
		gap = 4000;  /* a pause counts as a long gap, no more */
	c->last_frame_at = now;
	c->gap16 = (uint16_t)((c->gap16 * 7u + gap * 16u) / 8u);
}

static void arm(ws_conn *c)
{
	if (c->armed)
		return;
	c->armed = true;
	lws_callback_on_writable(c->wsi);
}

/* Write the header of b's frame in front of its payload; its length. */
static size_t put_header(confab_buf *b)
{
	uint64_t len = b->len;
	unsigned char *p;
	size_t n;

	if (len < 126) {
		n = 2;
		p = b->data - n;
		p[1] = (unsigned char)len;
	} else if (len <= 0xffff) {
		n = 4;
		p = b->data - n;
		p[1] = 126;
		p[2] = (unsigned char)(len >> 8);
		p[3] = (unsigned char)len;
	} else {
		n = 10;
		p = b->data - n;
		p[1] = 127;
		for (int i = 0; i < 8; i++)
			p[2 + i] = (unsigned char)(len >> (56 - 8 * i));
	}
	p[0] = 0x81;  /* FIN, text */
	return n;
}

/* The connection's queue changed from `before` bytes: the gauge of every
 * queue follows (confab_send_queue_bytes). */
static void queued_moved(ws_conn *c, size_t before)
{
	c->s->m.queued += (int64_t)c->ring.queued - (int64_t)before;
}

/* Write what the socket takes of the queue: 0, or -1 when the connection
 * is broken. The caller knows lws holds nothing back. A frame written in
 * part goes to lws for the rest (and lws asks for a writeable callback). */
static int write_queue(ws_conn *c)
{
	struct iovec iov[WS_IOV_FRAMES];
	size_t total = 0;
	uint32_t n = 0;
	ssize_t w;
	int fd = (int)lws_get_socket_fd(c->wsi);
	size_t before = c->ring.queued, payload = 0;
	int rc = 0;

	while (n < c->ring.len && n < WS_IOV_FRAMES &&
	       (n == 0 || total < WS_IOV_BYTES)) {
		confab_buf *b = ws_ring_at(&c->ring, n);
		size_t h = put_header(b);

		iov[n].iov_base = b->data - h;
		iov[n].iov_len = b->len + h;
		total += iov[n].iov_len;
		n++;
	}
	if (n == 0)
		return 0;
	do {
		w = writev(fd, iov, (int)n);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
	for (uint32_t i = 0; i < n && w > 0; i++) {
		payload += ws_ring_at(&c->ring, 0)->len;
		if ((size_t)w >= iov[i].iov_len) {
			w -= (ssize_t)iov[i].iov_len;
			ws_ring_pop(&c->ring, c->s->host);
			continue;
		}
		/* In part: lws sends the rest before anything else of its
		 * own, and calls us back when it has. lws copies the rest:
		 * it still counts against the cap until then. */
		unsigned char *rest = (unsigned char *)iov[i].iov_base + w;
		size_t left = iov[i].iov_len - (size_t)w;

		if (lws_write(c->wsi, rest, left, LWS_WRITE_RAW) < 0) {
			payload -= ws_ring_at(&c->ring, 0)->len;
			rc = -1;
			break;
		}
		ws_ring_pop(&c->ring, c->s->host);
		ws_ring_hold(&c->ring, left);
		c->armed = true;
		break;
	}
	c->s->m.bytes_out += payload;
	queued_moved(c, before);
	return rc;
}

/* Outside lws's callbacks, at the end of a turn. */
static void flush_conn(ws_conn *c)
{
	if (c->armed || !c->established || c->wsi == NULL)
		return;  /* the writeable callback will do it */
	if (c->ring.held > 0 && !lws_partial_buffered(c->wsi)) {
		size_t before = c->ring.queued;
		ws_ring_drained(&c->ring);
		queued_moved(c, before);
	}
	if (c->ring.len == 0) {
		if ((c->closing && !c->close_sent) || c->unmasked)
			arm(c);
		return;
	}
	if (lws_partial_buffered(c->wsi)) {
		arm(c);  /* lws sends its own first, then calls us */
		return;
	}
	if (write_queue(c) < 0) {
		/* lws finds out from the socket too; make sure it asks us. */
		c->write_failed = true;
		arm(c);
		return;
	}
	c->written_at = loop_ms(c->s);
	if (c->ring.len > 0 || (c->closing && !c->close_sent) || c->unmasked)
		arm(c);
}

static void later_tick(uv_timer_t *t);

/* Wake up for the first of the `later` connections. */
static void schedule_later(ws_state *s, uint32_t now)
{
	uint32_t soonest = UINT32_MAX;

	for (ws_conn *c = s->later; c != NULL; c = c->out_next) {
		uint32_t left = delay_left(c, now);

		if (left < soonest)
			soonest = left;
	}
	if (soonest == UINT32_MAX)
		return;
	if (s->later_timer == NULL) {
		s->later_timer = malloc(sizeof(*s->later_timer));
		if (s->later_timer == NULL) {
			/* Write them now rather than never. */
			while (s->later != NULL) {
				ws_conn *c = s->later;

				out_unlink(c);
				flush_conn(c);
			}
			return;
		}
		uv_timer_init(s->loop, s->later_timer);
		s->later_timer->data = s;
	}
	uv_timer_start(s->later_timer, later_tick, soonest, 0);
}

static void later_tick(uv_timer_t *t)
{
	ws_state *s = t->data;
	uint32_t now = loop_ms(s);
	ws_conn *c = s->later;

	while (c != NULL) {
		ws_conn *next = c->out_next;

		if (delay_left(c, now) == 0) {
			out_unlink(c);
			flush_conn(c);
		}
		c = next;
	}
	schedule_later(s, now);
}

/* The end of a turn of the loop (uv_check). */
static void flush_all(uv_check_t *check)
{
	ws_state *s = check->data;
	uint32_t now = loop_ms(s);
	bool delayed = false;

	while (s->dirty != NULL) {
		ws_conn *c = s->dirty;

		out_unlink(c);
		if (delay_left(c, now) > 0 && c->ring.len > 0) {
			out_link(c, WS_OUT_LATER);
			delayed = true;
			continue;
		}
		flush_conn(c);
	}
	uv_check_stop(check);
	if (delayed && (s->later_timer == NULL ||
			!uv_is_active((uv_handle_t *)s->later_timer)))
		schedule_later(s, now);
}

void ws_out_want(ws_conn *c)
{
	ws_state *s = c->s;

	if (c->out_list != WS_OUT_NONE || !c->established)
		return;
	if (s->flush == NULL) {
		s->flush = malloc(sizeof(*s->flush));
		if (s->flush == NULL) {
			arm(c);  /* the slow way, still correct */
			return;
		}
		uv_check_init(s->loop, s->flush);
		s->flush->data = s;
	}
	out_link(c, WS_OUT_DIRTY);
	if (!uv_is_active((uv_handle_t *)s->flush))
		uv_check_start(s->flush, flush_all);
}

void ws_out_ping(ws_conn *c)
{
	c->ping_due = true;
	arm(c);
}

void ws_out_clear(ws_conn *c)
{
	size_t before = c->ring.queued;
	out_unlink(c);
	ws_ring_clear(&c->ring, c->s->host);
	queued_moved(c, before);
}

void ws_out_end(ws_state *s)
{
	ws_handle_free((uv_handle_t *)s->flush);
	ws_handle_free((uv_handle_t *)s->later_timer);
	s->flush = NULL;
	s->later_timer = NULL;
}

/* ---- the transport's send() and lws's writeable callback ---- */

int ws_conn_send(void *state, void *conn, confab_buf *frame)
{
	ws_state *s = state;
	ws_conn *c = conn;

	if (c == NULL || frame == NULL)
		return CONFAB_EINVAL;
	if (c->closing)
		return CONFAB_ESTATE;
	if (frame->headroom < LWS_PRE) {
		ws_log(s, CONFAB_LOG_ERROR, "frame with %zu bytes of headroom, "
		       "%d needed", frame->headroom, (int)LWS_PRE);
		return CONFAB_EINVAL;
	}
	/* The cap bounds everything the connection holds, from the first
	 * byte: a frame that does not fit in what is left is refused, even
	 * into an empty queue (the core pages replies to fit; see
	 * ws_conn_send_budget). */
	if (!ws_ring_fits(&c->ring, frame->len, s->send_queue_max)) {
		c->overflowed = true;
		return CONFAB_EFULL;
	}
	size_t before = c->ring.queued;
	if (!ws_ring_push(&c->ring, s->host, frame))
		return CONFAB_ENOMEM;
	queued_moved(c, before);
	if (s->write_delay_ms > 0)
		note_arrival(c, loop_ms(s));
	ws_out_want(c);
	return CONFAB_OK;
}

size_t ws_conn_send_budget(void *state, void *conn)
{
	ws_state *s = state;
	ws_conn *c = conn;

	if (c == NULL || c->closing)
		return 0;
	return ws_ring_budget(&c->ring, s->send_queue_max);
}

int ws_conn_writeable(struct lws *wsi)
{
	ws_conn *c = lws_get_opaque_user_data(wsi);

	if (c == NULL)
		return -1;
	c->armed = false;
	size_t before = c->ring.queued;
	ws_ring_drained(&c->ring);  /* lws calls this only once its own buffer is empty */
	queued_moved(c, before);
	if (c->write_failed)
		return -1;
	if (c->ping_due) {
		/* With a payload: lws 4.1 does not report an empty pong. */
		unsigned char ping[LWS_PRE + 4] = { [LWS_PRE] = 'p', 'i', 'n', 'g' };

		c->ping_due = false;
		if (lws_write(wsi, ping + LWS_PRE, 4, LWS_WRITE_PING) < 0)
			return -1;
	}
	if (c->ring.len > 0) {
		/* lws calls this only with nothing of its own held back. */
		if (write_queue(c) < 0)
			return -1;
		c->written_at = loop_ms(c->s);
		if (c->ring.len > 0 || c->closing || c->unmasked)
			arm(c);
		return 0;
	}
	if (c->unmasked && c->unmasked_held) {
		/* The frames that came with the request, ahead of the
		 * unmasked one, are still in lws's buffer: lws serves them
		 * from its idle handler, which it starts after this
		 * callback and which libuv runs before the next poll, so
		 * before our next writeable callback. */
		c->unmasked_held = false;
		arm(c);
		return 0;
	}
	if (c->unmasked) {
		/* RFC 6455 5.1 (ws_mask.c): our close 1002, then hang up
		 * (reading stays off: the client's answer is not waited
		 * for). What was queued went first. */
		unsigned char buf[LWS_PRE + 16] = { 0 };
		unsigned char *p = buf + LWS_PRE;

		p[0] = 1002 >> 8;
		p[1] = 1002 & 0xff;
		memcpy(p + 2, "unmasked frame", 14);
		lws_write(wsi, p, 16, WS_WRITE_CLOSE);
		ws_mask_discard(c);  /* a close, not a reset, ends it */
		return -1;
	}
	if (c->closing && !c->close_sent) {
		unsigned char buf[LWS_PRE + 2 + WS_CLOSE_REASON_MAX];
		unsigned char *p = buf + LWS_PRE;

		p[0] = (unsigned char)(c->close_code >> 8);
		p[1] = (unsigned char)(c->close_code & 0xff);
		memcpy(p + 2, c->close_reason, c->close_len);
		if (lws_write(wsi, p, 2 + c->close_len, WS_WRITE_CLOSE) < 0)
			return -1;
		c->close_sent = true;
		lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, WS_CLOSE_ACK_SECS);
		/* Read the client's answer, also on a connection whose
		 * reading was paused while its admission was pending. */
		lws_rx_flow_control(wsi, 1);
	}
	return 0;
}
