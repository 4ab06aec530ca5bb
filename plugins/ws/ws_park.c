/* Parking: a WebSocket handshake whose admission is still being decided
 * is taken back from libwebsockets, and handed to it again once the
 * decision is made, so that a refusal is an HTTP status before any
 * upgrade even when an auth plugin answers later (the `static` plugin
 * checks yescrypt hashes on the thread pool: about 0.1 s each).
 *
 * Why: lws 4.1 decides an upgrade inside LWS_CALLBACK_HTTP_CONFIRM_UPGRADE
 * and cannot wait. Returning 0 upgrades at once; anything else ends the
 * HTTP connection, and lws's close half-closes the socket
 * (shutdown(SHUT_WR)) before closing it, so nothing could be answered on
 * it afterwards.
 *
 * How, on Linux (elsewhere ws_park_take() declines and the old way stays:
 * upgrade, reading paused, then a 44xx close if refused):
 *   take    CONFIRM_UPGRADE keeps a duplicate of the socket and the
 *           bytes reception read (ws_head.c); it removes the socket from
 *           the loop's epoll set and points lws's descriptor number at a
 *           placeholder socket (dup3), then returns -1. lws's shutdown
 *           and close reach the placeholder; the client's connection
 *           stays open, untouched, and nothing reads it while the
 *           decision is made.
 *   return  lws_adopt_socket_vhost_readbuf() hands the socket to lws again
 *           with every byte the client sent, as reception read them
 *           (ws_head.c): the request, whatever the length of its headers,
 *           and any WebSocket frames the client sent right behind it,
 *           which lws reads after the upgrade as it would have. Its
 *           CONFIRM_UPGRADE claims the connection (ws_park_claim) and
 *           upgrades, or answers with the refusal's HTTP status.
 * A decision still pending at the connection's handshake deadline
 * (WS_HANDSHAKE_SECS after its accept) is answered 503.
 *
 * The epoll removal comes first because epoll keeps a registration as long
 * as the socket is open anywhere: once lws's number pointed elsewhere, its
 * own removal could no longer reach it. libuv's removal of lws's watcher
 * (uv_poll_stop, run by lws's close in the same callback) then finds
 * nothing, which libuv ignores.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#if defined(__linux__)
#include <sys/epoll.h>
#endif

#include <uv.h>

#include "ws.h"

struct ws_park {
	ws_park *prev, *next;        /* in s->parks */
	ws_conn *conn;
	int fd;                      /* ours until handed back */
	bool ready;                  /* decided: hand back at the next tick */
	bool claimed;                /* its CONFIRM_UPGRADE came, in adoption */
	uint64_t deadline;           /* loop time (ms) for the 503 */
	char *replay;                /* what the client sent (c->head, taken) */
	size_t replay_len;
};

/* ---- the timer: hand back what is decided, 503 what is late ---- */

static void park_tick(uv_timer_t *t);

static void arm(ws_state *s, uint64_t ms)
{
	if (s->park_timer == NULL) {
		s->park_timer = malloc(sizeof(*s->park_timer));
		if (s->park_timer == NULL)
			return;  /* the next take or decision tries again */
		uv_timer_init(s->loop, s->park_timer);
		s->park_timer->data = s;
	}
	uv_timer_start(s->park_timer, park_tick, ms, 0);
}

static void unlink_park(ws_state *s, ws_park *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		s->parks = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
}

/* Hand p's socket to lws again. Its CONFIRM_UPGRADE runs inside the call
 * (or later, when lws had no header table free) and claims the conn. */
static void hand_back(ws_state *s, ws_park *p)
{
	ws_conn *c = p->conn;
	struct lws *wsi;
	bool claimed;

	unlink_park(s, p);
	s->adopting = p;
	/* From here the socket is lws's: it closes it on any failure. lws
	 * logs each such adoption as an error: quiet. */
	ws_log_quiet(true);
	wsi = lws_adopt_socket_vhost_readbuf(s->vhost, p->fd, p->replay,
					     p->replay_len);
	ws_log_quiet(false);
	s->adopting = NULL;
	claimed = p->claimed;
	free(p->replay);
	free(p);
	if (claimed)
		return;  /* the conn is answered (and may be gone) */
	if (wsi != NULL) {
		/* The request waits for one of lws's header tables: the
		 * claim comes later, through the wsi's opaque pointer. */
		ws_conn_park_adopted(c, wsi);
		return;
	}
	WS_LOG_LIMITED(s, CONFAB_LOG_WARN, "a handshake that waited for its "
		       "admission could not be handed back to libwebsockets");
	ws_conn_park_lost(c);
}

static void park_tick(uv_timer_t *t)
{
	ws_state *s = t->data;
	uint64_t now = uv_now(t->loop), next = 0;
	ws_park *p;

	/* Late ones are refused first (that makes them ready); then every
	 * ready one is handed back, from the head again each time since a
	 * hand-back may free others (never ones not yet decided). */
	for (p = s->parks; p != NULL; p = p->next)
		if (!p->ready && now >= p->deadline)
			ws_conn_park_expired(p->conn);
	for (p = s->parks; p != NULL;) {
		if (p->ready) {
			hand_back(s, p);
			p = s->parks;
			continue;
		}
		if (next == 0 || p->deadline < next)
			next = p->deadline;
		p = p->next;
	}
	if (next != 0)
		uv_timer_start(t, park_tick, next > now ? next - now : 0, 0);
}

/* ---- take ---- */

#if defined(__linux__)
/* Take the socket from lws: returns our duplicate, or -1 with nothing
 * changed. */
static int take_socket(ws_state *s, struct lws *wsi)
{
	struct epoll_event unused;
	int fd = (int)lws_get_socket_fd(wsi), mine, placeholder;

	if (fd < 0 || uv_backend_fd(s->loop) < 0)
		return -1;
	mine = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (mine < 0)
		return -1;
	placeholder = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			     SOCK_NONBLOCK, 0);
	if (placeholder < 0) {
		close(mine);
		return -1;
	}
	memset(&unused, 0, sizeof(unused));
	if (epoll_ctl(uv_backend_fd(s->loop), EPOLL_CTL_DEL, fd, &unused) != 0 &&
	    errno != ENOENT) {
		close(placeholder);
		close(mine);
		return -1;
	}
	/* Atomic: lws's number never refers to nothing. Cannot fail with
	 * two valid descriptors (EINTR is not possible for sockets here). */
	if (dup3(placeholder, fd, O_CLOEXEC) < 0) {
		/* Undo is not possible (the registration is gone): the
		 * connection is lost either way. */
		close(placeholder);
		close(mine);
		return -2;
	}
	close(placeholder);
	return mine;
}
#endif

int ws_park_take(ws_state *s, struct lws *wsi, ws_conn *c, ws_park **out)
{
#if defined(__linux__)
	ws_park *p;
	uint64_t due;
	int fd;

	*out = NULL;
	if (c->head == NULL || s->vhost == NULL)
		return -1;
	p = malloc(sizeof(*p));
	if (p == NULL)
		return -1;
	fd = take_socket(s, wsi);
	if (fd < 0) {
		free(p);
		return fd;
	}
	memset(p, 0, sizeof(*p));
	p->conn = c;
	p->fd = fd;
	p->deadline = c->deadline;
	p->replay = c->head;
	p->replay_len = c->head_len;
	c->head = NULL;
	c->head_len = c->head_cap = 0;
	p->next = s->parks;
	if (s->parks != NULL)
		s->parks->prev = p;
	s->parks = p;
	*out = p;
	/* Deadlines come from accept, not from here: this one may be the
	 * earliest. */
	due = p->deadline > uv_now(s->loop) ? p->deadline - uv_now(s->loop) : 0;
	if (s->park_timer == NULL ||
	    !uv_is_active((uv_handle_t *)s->park_timer) ||
	    uv_timer_get_due_in(s->park_timer) > due)
		arm(s, due);
	return 0;
#else
	(void)s; (void)wsi; (void)c;
	*out = NULL;
	return -1;
#endif
}

void ws_park_ready(ws_state *s, ws_park *p)
{
	p->ready = true;
	/* Not from here: the decision may come from inside another
	 * connection's lws callback, and adoption services the socket. */
	arm(s, 0);
}

ws_conn *ws_park_claim(ws_state *s, struct lws *wsi)
{
	ws_park *p = s->adopting;

	if (p == NULL || p->claimed || (int)lws_get_socket_fd(wsi) != p->fd)
		return NULL;
	p->claimed = true;
	return p->conn;
}

void ws_park_free(ws_state *s, ws_park *p)
{
	if (p == NULL)
		return;
	if (s->adopting == p)
		return;  /* hand_back frees it; the socket is lws's */
	unlink_park(s, p);
	close(p->fd);
	free(p->replay);
	free(p);
}

void ws_park_end(ws_state *s)
{
	ws_handle_free((uv_handle_t *)s->park_timer);
	s->park_timer = NULL;
}
