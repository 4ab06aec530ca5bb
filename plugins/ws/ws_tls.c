/* TLS on the `ws` listener ([ws] tls_cert, tls_key, tls_ca): an
 * in-process terminator between the client's TCP socket and a socket pair
 * whose other end is an ordinary ws connection.
 *
 * Why not lws's own TLS: `ws` reads the request head before lws
 * (ws_head.c), parks handshakes by moving their descriptor (ws_park.c),
 * peeks the receive queue for unmasked frames (ws_mask.c) and writes frames
 * with writev() (ws_out.c). Each of these needs plaintext on the
 * descriptor. So each TLS client gets, once its handshake is done, a
 * socketpair: one end goes to ws_conn_accept with the client's address
 * (every rule above, and the per-address counts, work unchanged), the other
 * stays here and bytes are relayed both ways with SSL_read/SSL_write. The
 * stream offset ws_mask.c takes from TCP_INFO on a TCP socket is the count
 * of bytes written into the pair (c->tls_in): one thread writes it and
 * peeks, so nothing arrives in between.
 *
 * Cost per TLS client: two more descriptors, an SSL object (OpenSSL's
 * buffers are released while idle: SSL_MODE_RELEASE_BUFFERS) and, while
 * bytes are in flight, up to two buffers of WS_TLS_BUF.
 *
 * Abuse: a handshake counts against max_connections and
 * max_connections_per_address from accept (ws_conn_limit, the rule plain
 * connections follow) and must end within WS_HANDSHAKE_SECS; each relay
 * direction reads only when its buffer is empty (back-pressure both ways).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "ws.h"

/* One TLS record's worth: what each direction holds at most. */
#define WS_TLS_BUF 16384
/* After our close_notify: how long the client's last bytes are read and
 * dropped, so that closing sends a FIN behind our data, not a reset. */
#define WS_TLS_LINGER_MS 2000

typedef enum ws_tls_phase {
	WS_TLS_HANDSHAKE,   /* counted against the limits, on a deadline */
	WS_TLS_RELAY,       /* the pair's other end is a ws connection */
	WS_TLS_LINGER       /* closed on our side; dropping what comes */
} ws_tls_phase;

struct ws_tls {
	ws_state *s;
	ws_tls *prev, *next;         /* in s->tlss */
	ws_tls_phase phase;
	SSL *ssl;
	int fd;                      /* the client's TCP socket */
	int pfd;                     /* our end of the pair, or -1 */
	uv_poll_t tcp_poll, pair_poll;
	int tcp_events, pair_events; /* what each polls for now (watch()) */
	bool pair_poll_on;           /* pair_poll initialised */
	uv_timer_t timer;            /* the handshake deadline, the linger */
	int handles;                 /* open handles; freed at 0 once closing */
	bool closing;
	ws_addr addr;                /* counted while in handshake */
	uint64_t accepted_ms;        /* loop time of the TCP accept: the ws
				      * handshake's deadline counts from it */
	struct sockaddr_storage peer;
	ws_conn *conn;               /* on the pair's other end, while it lives */

	bool tls_eof;                /* no more from the client */
	bool plain_eof;              /* no more from ws */
	bool pair_shut;              /* ws was told: shutdown(pfd, SHUT_WR) */
	bool want_r, want_w;         /* what the last SSL call waits for */
	bool tls_more;               /* SSL_read may find more: the socket was
				      * readable, or the last read gave bytes */
	bool pair_more;              /* the pair may hold more: readable, or the
				      * last read filled the buffer */
	unsigned char *in;           /* decrypted, for the pair */
	size_t in_len, in_off;
	unsigned char *out;          /* from the pair, to encrypt */
	size_t out_len, out_off;
};

/* ---- the context: [ws] tls_cert, tls_key, tls_ca ---- */

/* OpenSSL's reason for the oldest error queued (a system error, such as
 * a missing file, as its strerror text), then the queue is emptied. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e == 0 ? NULL : ERR_SYSTEM_ERROR(e)
		? strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);

	ERR_clear_error();
	return r != NULL ? r : "unknown error";
}

/* ALPN: HTTP/1.1 is what is served; a client that offers only something
 * else is refused in the handshake (RFC 7301's no_application_protocol). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x08http/1.1";
	unsigned char *sel;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

int ws_tls_config(ws_state *s, struct ssl_ctx_st **out)
{
	const confab_host *host = s->host;
	const char *cert = host->config_get(s->ctx, "tls_cert");
	const char *key = host->config_get(s->ctx, "tls_key");
	const char *ca = host->config_get(s->ctx, "tls_ca");
	SSL_CTX *ctx;

	*out = NULL;
	if (cert == NULL) {
		if (key != NULL || ca != NULL) {
			host->config_error(s->ctx, key != NULL ? "tls_key" : "tls_ca",
					   "needs tls_cert (TLS on the listener)");
			return CONFAB_EINVAL;
		}
		return 0;
	}
	if (key == NULL) {
		host->config_error(s->ctx, "tls_cert", "needs tls_key, the "
				   "certificate's private key");
		return CONFAB_EINVAL;
	}
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ws_log(s, CONFAB_LOG_ERROR, "cannot make a TLS context: %s",
		       ssl_reason());
		return CONFAB_ENOMEM;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		host->config_error(s->ctx, "tls_cert", "cannot read certificate "
				   "%s: %s", cert, ssl_reason());
		goto fail;
	}
	/* OpenSSL checks the key against the certificate as it loads it. */
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		host->config_error(s->ctx, "tls_key", "cannot use key %s with "
				   "certificate %s: %s", key, cert, ssl_reason());
		goto fail;
	}
	if (ca != NULL) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);

		if (names == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			host->config_error(s->ctx, "tls_ca", "cannot read CA "
					   "certificates %s: %s", ca, ssl_reason());
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
				   SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A client that drops TCP without close_notify ends its stream, as
	 * on plain TCP; renegotiation is a client's way to make us work. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
			    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			 SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	/* Resumed sessions of clients with certificates need it. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"confab-ws", 9);
	*out = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return CONFAB_EINVAL;
}

void ws_tls_cap_clients(ws_state *s)
{
	struct rlimit rl;
	size_t nofile, headroom, cap;

	/* Three descriptors a client (its socket and the pair), less the
	 * headroom the broker keeps for everything else (an eighth of the
	 * limit, at least 32: config_default_max_connections). */
	if (s->tls_ctx == NULL || getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
	    rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > SIZE_MAX)
		return;
	nofile = (size_t)rl.rlim_cur;
	headroom = nofile / 8 < 32 ? 32 : nofile / 8;
	cap = nofile > headroom + 3 ? (nofile - headroom) / 3 : 1;
	if (s->max_conns != 0 && s->max_conns <= cap)
		return;
	ws_log(s, CONFAB_LOG_INFO, "TLS takes 3 descriptors a client: at most %zu "
	       "clients (max_connections %zu%s, RLIMIT_NOFILE %zu)", cap, s->max_conns,
	       s->max_conns == 0 ? ": no limit" : "", nofile);
	s->max_conns = cap;
}

void ws_tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

void ws_tls_swap(ws_state *s, struct ssl_ctx_st *ctx)
{
	/* SSL objects hold a reference to the context they were made with:
	 * connections open now keep theirs. */
	SSL_CTX_free(s->tls_ctx);
	s->tls_ctx = ctx;
}

/* ---- one client: lifetime ---- */

static void relay_freed(uv_handle_t *h)
{
	ws_tls *t = h->data;

	if (--t->handles == 0) {
		free(t->in);
		free(t->out);
		free(t);
	}
}

static void uncount(ws_tls *t)
{
	if (t->phase != WS_TLS_HANDSHAKE)
		return;
	t->s->n_conns--;
	ws_addr_remove(t->s, &t->addr);
}

/* End t now: both sockets closed (ws sees EOF on its end), freed once
 * libuv is done with the handles. */
static void relay_close(ws_tls *t)
{
	ws_state *s = t->s;

	if (t->closing)
		return;
	t->closing = true;
	uncount(t);
	if (t->conn != NULL)
		t->conn->tls = NULL;
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		s->tlss = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	uv_close((uv_handle_t *)&t->tcp_poll, relay_freed);
	uv_close((uv_handle_t *)&t->timer, relay_freed);
	if (t->pair_poll_on)
		uv_close((uv_handle_t *)&t->pair_poll, relay_freed);
	SSL_free(t->ssl);
	close(t->fd);
	if (t->pfd >= 0)
		close(t->pfd);
	ws_listen_freed(s);
}

static void tcp_ready(uv_poll_t *p, int status, int events);
static void pair_ready(uv_poll_t *p, int status, int events);

/* Poll `h` for `want` (0: not at all). Only a change reaches libuv: its
 * uv_poll_start takes the descriptor out of epoll and puts it back even
 * for the same events, two epoll_ctl calls per relayed write otherwise. */
static void watch(uv_poll_t *h, int *now, int want, uv_poll_cb cb)
{
	if (*now == want)
		return;
	if (want != 0)
		uv_poll_start(h, want, cb);
	else
		uv_poll_stop(h);
	*now = want;
}

/* ---- relaying ---- */

/* Each returns 1 when it moved something, 0 when it must wait, -1 when
 * the connection is over. */

/* SSL_read or SSL_write returned n <= 0: what it waits for, or the end. */
static int ssl_failed(ws_tls *t, int n)
{
	switch (SSL_get_error(t->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		t->want_r = true;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		t->want_w = true;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		t->tls_eof = true;   /* close_notify, or TCP's FIN */
		return 1;
	default:
		return -1;
	}
}

static int from_tls(ws_tls *t)
{
	int n;

	if (t->in == NULL && (t->in = malloc(WS_TLS_BUF)) == NULL)
		return -1;
	ERR_clear_error();
	n = SSL_read(t->ssl, t->in, WS_TLS_BUF);
	if (n > 0) {
		t->in_len = (size_t)n;
		t->in_off = 0;
		return 1;
	}
	n = ssl_failed(t, n);
	if (t->want_r)
		t->tls_more = false;  /* until the socket is readable again */
	return n;
}

static int to_pair(ws_tls *t)
{
	ssize_t n = send(t->pfd, t->in + t->in_off, t->in_len - t->in_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n < 0) {
		/* ws closed its end: what the client sends goes nowhere. */
		t->in_len = t->in_off = 0;
		t->tls_eof = true;
		return 1;
	}
	if (t->conn != NULL)
		t->conn->tls_in += (uint64_t)n;
	t->in_off += (size_t)n;
	if (t->in_off == t->in_len)
		t->in_len = t->in_off = 0;
	return 1;
}

static int from_pair(ws_tls *t)
{
	ssize_t n;

	if (t->out == NULL && (t->out = malloc(WS_TLS_BUF)) == NULL)
		return -1;
	n = recv(t->pfd, t->out, WS_TLS_BUF, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		t->pair_more = false;
		return 0;
	}
	if (n <= 0) {
		t->plain_eof = true;
		return 1;
	}
	/* A short read emptied the pair (a stream socket gives what it
	 * holds); what comes later makes it readable again. */
	t->pair_more = n == WS_TLS_BUF;
	t->out_len = (size_t)n;
	t->out_off = 0;
	return 1;
}

static int to_tls(ws_tls *t)
{
	int n;

	ERR_clear_error();
	n = SSL_write(t->ssl, t->out + t->out_off, (int)(t->out_len - t->out_off));
	if (n > 0) {
		t->out_off += (size_t)n;
		if (t->out_off == t->out_len)
			t->out_len = t->out_off = 0;
		return 1;
	}
	return ssl_failed(t, n);
}

static void linger_over(uv_timer_t *timer)
{
	relay_close(timer->data);
}

/* ws is done and everything it wrote is sent: close_notify, FIN, then
 * read (and drop) what the client still sends until its FIN or
 * WS_TLS_LINGER_MS. */
static void relay_finish(ws_tls *t)
{
	ERR_clear_error();
	SSL_shutdown(t->ssl);   /* best effort: the socket may be full */
	ERR_clear_error();
	shutdown(t->fd, SHUT_WR);
	if (t->pair_poll_on)
		watch(&t->pair_poll, &t->pair_events, 0, pair_ready);
	t->phase = WS_TLS_LINGER;
	uv_timer_start(&t->timer, linger_over, WS_TLS_LINGER_MS, 0);
	watch(&t->tcp_poll, &t->tcp_events, UV_READABLE, tcp_ready);
}

static void linger_read(ws_tls *t)
{
	char drop[4096];

	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(t->fd, drop, sizeof(drop), MSG_DONTWAIT);

		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		relay_close(t);  /* the client's FIN, or an error */
		return;
	}
}

/* Move bytes until neither direction can, then poll for what they wait
 * for. A direction reads only when its buffer is empty, and only when
 * there can be something to read: the client's socket when it was
 * reported readable (tcp_in) or OpenSSL may hold more, the pair when it
 * was reported readable (pair_in) or the last read filled the buffer.
 * Each read that could only say EAGAIN is a system call per relayed
 * frame. */
static void pump(ws_tls *t, bool tcp_in, bool pair_in)
{
	int moved, rc;
	int tcp_ev = 0, pair_ev = 0;

	t->tls_more = t->tls_more || tcp_in;
	t->pair_more = t->pair_more || pair_in;
	do {
		moved = 0;
		t->want_r = t->want_w = false;
		if (t->in_len > 0 && (rc = to_pair(t)) != 0)
			moved = rc;
		if (moved >= 0 && t->in_len == 0 && !t->tls_eof && t->tls_more &&
		    (rc = from_tls(t)) != 0)
			moved = rc < 0 ? rc : 1;
		if (moved >= 0 && t->in_len == 0 && t->tls_eof && !t->pair_shut) {
			shutdown(t->pfd, SHUT_WR);  /* ws reads EOF */
			t->pair_shut = true;
		}
		if (moved >= 0 && t->out_len == 0 && !t->plain_eof && t->pair_more &&
		    (rc = from_pair(t)) != 0)
			moved = rc < 0 ? rc : 1;
		if (moved >= 0 && t->out_len > 0 && (rc = to_tls(t)) != 0)
			moved = rc < 0 ? rc : 1;
	} while (moved > 0);
	if (moved < 0) {
		relay_close(t);
		return;
	}
	if (t->plain_eof && t->out_len == 0) {
		relay_finish(t);
		return;
	}
	/* Idle between bursts: give the buffers back. */
	if (t->in_len == 0) {
		free(t->in);
		t->in = NULL;
	}
	if (t->out_len == 0) {
		free(t->out);
		t->out = NULL;
	}
	if (t->want_r || (t->in_len == 0 && !t->tls_eof))
		tcp_ev |= UV_READABLE;
	if (t->want_w)
		tcp_ev |= UV_WRITABLE;
	if (t->in_len > 0)
		pair_ev |= UV_WRITABLE;
	if (t->out_len == 0 && !t->plain_eof)
		pair_ev |= UV_READABLE;
	watch(&t->tcp_poll, &t->tcp_events, tcp_ev, tcp_ready);
	watch(&t->pair_poll, &t->pair_events, pair_ev, pair_ready);
}

/* ---- the handshake ---- */

/* The handshake is done: the pair, and its other end to ws. */
static void relay_start(ws_tls *t)
{
	ws_state *s = t->s;
	int pair[2];

	uv_timer_stop(&t->timer);
	uncount(t);       /* ws_conn_accept counts it from now on */
	t->phase = WS_TLS_RELAY;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       pair) != 0) {
		int err = errno;

		if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
			ws_listen_exhausted(s, err);
		relay_close(t);
		return;
	}
	t->pfd = pair[0];
	if (uv_poll_init(s->loop, &t->pair_poll, t->pfd) != 0) {
		close(pair[1]);
		relay_close(t);
		return;
	}
	t->pair_poll.data = t;
	t->pair_poll_on = true;
	t->handles++;
	t->conn = ws_conn_accept(s, pair[1], (struct sockaddr *)&t->peer, true, t->accepted_ms);
	if (t->conn != NULL)
		t->conn->tls = t;
	/* The client's first request may have come with its last handshake
	 * bytes, already in OpenSSL: read both sides once. */
	pump(t, true, true);
}

static void handshake(ws_tls *t)
{
	int rc;

	ERR_clear_error();
	rc = SSL_do_handshake(t->ssl);
	if (rc == 1) {
		relay_start(t);
		return;
	}
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		watch(&t->tcp_poll, &t->tcp_events, UV_READABLE, tcp_ready);
		return;
	case SSL_ERROR_WANT_WRITE:
		watch(&t->tcp_poll, &t->tcp_events, UV_WRITABLE, tcp_ready);
		return;
	default:
		WS_LOG_LIMITED(t->s, CONFAB_LOG_DEBUG, "a TLS handshake "
			       "failed: %s", ssl_reason());
		relay_close(t);
	}
}

static void handshake_late(uv_timer_t *timer)
{
	ws_tls *t = timer->data;

	WS_LOG_LIMITED(t->s, CONFAB_LOG_DEBUG, "a TLS handshake did not end "
		       "within %d s: closed", WS_HANDSHAKE_SECS);
	relay_close(t);
}

static void tcp_ready(uv_poll_t *p, int status, int events)
{
	ws_tls *t = p->data;

	if (status < 0 && t->phase != WS_TLS_RELAY) {
		relay_close(t);
		return;
	}
	if (t->phase == WS_TLS_HANDSHAKE)
		handshake(t);
	else if (t->phase == WS_TLS_LINGER)
		linger_read(t);
	else         /* an error shows in the next SSL call: read */
		pump(t, status < 0 || (events & UV_READABLE), false);
}

static void pair_ready(uv_poll_t *p, int status, int events)
{
	pump(p->data, false, status < 0 || (events & UV_READABLE));
}

void ws_tls_accept(ws_state *s, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
	ws_tls *t;
	unsigned status;
	ws_addr addr;

	ws_addr_from(&addr, peer);
	status = ws_conn_limit(s, &addr);
	if (status != 0) {
		/* No TLS yet to say why in: the client sees the close. */
		close(fd);
		return;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL || ws_addr_add(s, &addr) != 0) {
		free(t);
		close(fd);
		return;
	}
	s->n_conns++;
	t->s = s;
	t->fd = fd;
	t->pfd = -1;
	t->accepted_ms = uv_now(s->loop);
	t->addr = addr;
	memcpy(&t->peer, peer, peer_len < sizeof(t->peer) ? peer_len : sizeof(t->peer));
	t->next = s->tlss;
	if (s->tlss != NULL)
		s->tlss->prev = t;
	s->tlss = t;
	uv_timer_init(s->loop, &t->timer);
	t->timer.data = t;
	t->handles = 1;
	if (uv_poll_init(s->loop, &t->tcp_poll, fd) != 0) {
		t->closing = true;   /* only the timer to close */
		uncount(t);
		s->tlss = t->next;
		if (t->next != NULL)
			t->next->prev = NULL;
		close(fd);
		uv_close((uv_handle_t *)&t->timer, relay_freed);
		return;
	}
	t->tcp_poll.data = t;
	t->handles++;
	t->ssl = SSL_new(s->tls_ctx);
	if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1) {
		relay_close(t);
		return;
	}
	SSL_set_accept_state(t->ssl);
	uv_timer_start(&t->timer, handshake_late, WS_HANDSHAKE_SECS * 1000u, 0);
	watch(&t->tcp_poll, &t->tcp_events, UV_READABLE, tcp_ready);
}

void ws_tls_detach(ws_tls *t)
{
	if (t != NULL)
		t->conn = NULL;
}

void ws_tls_stop(ws_state *s)
{
	ws_tls *t = s->tlss;

	/* Handshakes end now; relays end when ws closes their connection. */
	while (t != NULL) {
		ws_tls *next = t->next;

		if (t->phase == WS_TLS_HANDSHAKE)
			relay_close(t);
		t = next;
	}
}

void ws_tls_end(ws_state *s)
{
	while (s->tlss != NULL)
		relay_close(s->tlss);
	SSL_CTX_free(s->tls_ctx);
	s->tls_ctx = NULL;
}
