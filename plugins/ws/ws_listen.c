/* The listening socket of the `ws` transport: ours, not libwebsockets'.
 *
 * lws 4.1 accepts on its own listener every loop turn while the socket is
 * readable; when accept() fails with EMFILE (no descriptor left) it logs
 * the error and returns, the connection stays in the kernel's queue, the
 * socket stays readable, and the next turn does the same: 100 % CPU and
 * about 10 MB of log a second until a descriptor frees up.
 *
 * So `ws` listens itself, on a libuv poll handle, and hands each accepted
 * socket to lws (ws_conn_accept; with TLS on, to ws_tls.c first). Out of descriptors (EMFILE, ENFILE, or
 * the kernel out of memory for one), it
 *   - closes its reserve descriptor (/dev/null, opened at start), accepts
 *     the connection at the head of the queue with it, answers 503 and
 *     closes it, and opens the reserve again: the client that made us
 *     notice hears why, and does not wait for its connect timeout;
 *   - stops polling the listener for WS_LISTEN_BACKOFF_MS, so that the
 *     queue costs nothing while no descriptor is free; then tries again,
 *     and so resumes by itself once descriptors free up (at once when one
 *     of its own connections closes);
 *   - logs one line a second at most, with how many times it happened.
 * Existing connections are served all along: only accepting pauses.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <uv.h>

#include "ws.h"

/* How long accepting pauses when no descriptor is left (ms). */
#define WS_LISTEN_BACKOFF_MS 250
/* Connections accepted per readable event: others' turn comes first. */
#define WS_ACCEPT_BATCH 64

static confab_ratelimit emfile_log = CONFAB_RATELIMIT_INIT(1000);

static void listen_readable(uv_poll_t *p, int status, int events);

static void reserve_open(ws_state *s)
{
	if (s->reserve_fd < 0)
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void backoff_done(uv_timer_t *t)
{
	ws_state *s = t->data;

	reserve_open(s);
	if (s->listen_poll != NULL && !s->shutting_down)
		uv_poll_start(s->listen_poll, UV_READABLE, listen_readable);
}

/* No descriptor for the next connection: shed it (`shed`), pause, say
 * so. */
static void out_of_descriptors(ws_state *s, int err, bool shed)
{
	uint64_t skipped;
	int fd;

	s->emfile_count++;
	if (shed && s->reserve_fd >= 0) {
		close(s->reserve_fd);
		s->reserve_fd = -1;
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			ws_http_refuse_fd(fd, 503, "server out of file descriptors");
			ws_metrics_refused(s, 503);
		}
		reserve_open(s);
	}
	if (confab_ratelimit_allow(&emfile_log, uv_now(s->loop), &skipped))
		ws_log(s, CONFAB_LOG_WARN, "cannot accept connections: %s; "
		       "not accepting for %d ms (%" PRIu64 " times in all)",
		       strerror(err), WS_LISTEN_BACKOFF_MS, s->emfile_count);
	uv_poll_stop(s->listen_poll);
	if (s->backoff_timer == NULL) {
		s->backoff_timer = malloc(sizeof(*s->backoff_timer));
		if (s->backoff_timer == NULL) {
			/* Keep polling: better busy than deaf. */
			uv_poll_start(s->listen_poll, UV_READABLE, listen_readable);
			return;
		}
		uv_timer_init(s->loop, s->backoff_timer);
		s->backoff_timer->data = s;
	}
	uv_timer_start(s->backoff_timer, backoff_done, WS_LISTEN_BACKOFF_MS, 0);
}

static void listen_readable(uv_poll_t *p, int status, int events)
{
	ws_state *s = p->data;

	(void)status;
	(void)events;
	for (int i = 0; i < WS_ACCEPT_BATCH && !s->shutting_down; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			int one = 1;

			/* What lws's own listener did: no Nagle, whose wait
			 * for an ACK would delay small frames by up to 40 ms. */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			if (s->tls_ctx != NULL)
				ws_tls_accept(s, fd, (struct sockaddr *)&ss, sl);
			else
				ws_conn_accept(s, fd, (struct sockaddr *)&ss, false, uv_now(s->loop));
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return;         /* the queue is empty */
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM:
			continue;       /* that one is gone; the next may not be */
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			out_of_descriptors(s, errno, true);
			return;
		default:
			/* Not expected: pause as well rather than retry every
			 * turn while the listener stays readable. */
			out_of_descriptors(s, errno, false);
			return;
		}
	}
}

void ws_listen_exhausted(ws_state *s, int err)
{
	if (s->listen_poll != NULL && !s->shutting_down)
		out_of_descriptors(s, err, false);
}

void ws_listen_freed(ws_state *s)
{
	/* A descriptor was just given back: accepting may work again now,
	 * not only when the pause is over. The pause still stands between
	 * two failures, so this cannot spin: each retry follows a close. */
	if (s->backoff_timer != NULL &&
	    uv_is_active((uv_handle_t *)s->backoff_timer))
		uv_timer_start(s->backoff_timer, backoff_done, 0, 0);
}

int ws_listen_addr(const ws_state *s, struct sockaddr_storage *ss,
		   socklen_t *sl)
{
	memset(ss, 0, sizeof(*ss));
	if (s->ipv6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)s->port);
		if (inet_pton(AF_INET6, s->iface, &a->sin6_addr) != 1)
			return -1;
		*sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)s->port);
		if (inet_pton(AF_INET, s->iface, &a->sin_addr) != 1)
			return -1;
		*sl = sizeof(*a);
	}
	return 0;
}

/* The port `fd` is bound to, in host order. */
static int bound_port(int fd, int *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

int ws_listen_start(ws_state *s, int *err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;

	s->reserve_fd = -1;
	if (ws_listen_addr(s, &ss, &sl) != 0) {
		*err = EINVAL;
		return -1;
	}
	s->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
			      SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0) {
		*err = errno;
		return -1;
	}
	setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s->ipv6)
		setsockopt(s->listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			   sizeof(one));
	if (bind(s->listen_fd, (struct sockaddr *)&ss, sl) != 0 ||
	    listen(s->listen_fd, SOMAXCONN) != 0) {
		*err = errno;
		goto fail;
	}
	/* `listen = HOST:0`: the kernel picked the port; from now on
	 * s->port is that one (ws_start logs it). */
	if (s->port == 0 && bound_port(s->listen_fd, &s->port) != 0) {
		*err = errno;
		goto fail;
	}
	s->listen_poll = malloc(sizeof(*s->listen_poll));
	if (s->listen_poll == NULL) {
		*err = ENOMEM;
		goto fail;
	}
	if (uv_poll_init(s->loop, s->listen_poll, s->listen_fd) != 0) {
		free(s->listen_poll);
		s->listen_poll = NULL;
		*err = EINVAL;
		goto fail;
	}
	s->listen_poll->data = s;
	uv_poll_start(s->listen_poll, UV_READABLE, listen_readable);
	reserve_open(s);
	return 0;
fail:
	close(s->listen_fd);
	s->listen_fd = -1;
	return -1;
}

void ws_listen_stop(ws_state *s)
{
	if (s->listen_poll != NULL) {
		ws_handle_free((uv_handle_t *)s->listen_poll);
		s->listen_poll = NULL;
	}
	ws_handle_free((uv_handle_t *)s->backoff_timer);
	s->backoff_timer = NULL;
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	if (s->reserve_fd >= 0) {
		close(s->reserve_fd);
		s->reserve_fd = -1;
	}
}
