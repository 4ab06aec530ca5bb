/* One connection to one Redis server on the loop (rlink.h is the
 * contract): a name resolved with uv_getaddrinfo, each address tried in
 * turn, AUTH first, commands formatted by hiredis and written with
 * uv_write, replies read by hiredis's reader and matched in order with a
 * FIFO of the commands that wait for one.
 *
 * Lifetime. A link's memory is shared by its owner and by what libuv
 * still holds: the timer, the socket (its connect and write requests end
 * before its close callback), a getaddrinfo request in flight. Each holds
 * a reference (`refs`); the last one out frees. User callbacks may close
 * the link at any time, so after each one the code checks `closed` (or
 * `dead`) before going on; the memory itself cannot vanish under a
 * callback, since the handles' close callbacks only run from the loop.
 *
 * SPDX-License-Identifier: MIT
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <confab/common.h>

#include "rfail.h"
#include "rlink.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 3000u
#define READ_CHUNK 16384

/* A command that waits for its reply. `cb` NULL on a command link: the
 * reply is read and dropped (order is kept). */
typedef struct waiter {
	struct waiter *next;
	rlink_reply_fn cb;
	void *arg;
	uint64_t queued_at;
} waiter;

/* A formatted command not yet handed to libuv (queued before the
 * connection, or while a write is in flight). */
typedef struct outbuf {
	struct outbuf *next;
	char *cmd;
	size_t len;
} outbuf;

/* One connection attempt's socket; replaced for the next address. */
typedef struct sock {
	uv_tcp_t tcp;
	uv_connect_t connect;
	rlink *l;
	rtls_session *tls; /* TLS links: made once connected */
} sock;

/* One uv_write of `n` formatted commands, or of one buffer of
 * ciphertext (`cipher`), freed in its callback. */
typedef struct wreq {
	uv_write_t req;
	rlink *l;
	size_t n;
	bool cipher;
	uv_buf_t bufs[];
} wreq;

struct rlink {
	uv_loop_t *loop;
	char *host, *user, *password;
	char name[300];
	int port;
	unsigned timeout_ms;
	bool subscriber;
	const rtls_config *tls;
	rlink_push_fn on_push;
	rlink_closed_fn on_closed;
	void *arg;

	unsigned refs;
	bool closed;       /* rlink_close was called: no more callbacks */
	bool dead;         /* failed (on_closed called or about to be) */
	bool up;           /* connected, AUTH accepted */
	bool was_up;       /* a reply or push came while up (rlink_was_connected) */
	bool tcp_up;       /* the socket is connected (TLS: bytes can go out) */
	bool writing;      /* a uv_write is in flight */

	uv_timer_t timer;  /* the connect timeout, or a failure to report */
	char late_why[300]; /* a failure found where on_closed cannot run */
	uv_getaddrinfo_t gai;
	struct addrinfo *addrs, *next_addr;
	int last_error;
	sock *sk;

	redisReader *reader;
	waiter *head, *tail;
	size_t n_waiting;
	outbuf *out_head, *out_tail;
	char rbuf[READ_CHUNK];
};

static void unref(rlink *l);

/* ---- failing ------------------------------------------------------------------ */

/* Every waiting command gets NULL, oldest first. A callback may close the
 * link (which drains the rest itself) or queue more (refused: the link is
 * already dead or closed). */
static void drain(rlink *l)
{
	waiter *w;

	while ((w = l->head) != NULL) {
		l->head = w->next;
		if (l->head == NULL)
			l->tail = NULL;
		l->n_waiting--;
		if (w->cb != NULL)
			w->cb(l, NULL, w->arg);
		free(w);
	}
}

static void free_outbufs(rlink *l)
{
	outbuf *o;

	while ((o = l->out_head) != NULL) {
		l->out_head = o->next;
		redisFreeCommand(o->cmd);
		free(o);
	}
	l->out_tail = NULL;
}

/* The link failed: refuse new commands, NULL to the waiting ones, then
 * on_closed once (unless a callback closed the link meanwhile). */
static void die(rlink *l, const char *why)
{
	if (l->closed || l->dead)
		return;
	l->dead = true;
	l->up = false;
	uv_timer_stop(&l->timer);
	if (l->sk != NULL && l->tcp_up)
		uv_read_stop((uv_stream_t *)&l->sk->tcp);
	free_outbufs(l);
	drain(l);
	if (!l->closed && l->on_closed != NULL)
		l->on_closed(l, why, l->arg);
}

__attribute__((format(printf, 2, 3)))
static void dief(rlink *l, const char *fmt, ...)
{
	char why[300];

	RFAIL_FORMAT(why, fmt);
	die(l, why);
}

static void timer_cb(uv_timer_t *t)
{
	rlink *l = t->data;

	if (l->late_why[0] != '\0') {
		/* A failure found in rlink_open or rlink_command, reported
		 * from the loop as the contract wants. */
		char why[sizeof(l->late_why)];

		memcpy(why, l->late_why, sizeof(why));
		l->late_why[0] = '\0';
		l->dead = false;
		die(l, why);
		return;
	}
	if (l->sk != NULL && l->sk->tls != NULL && !rtls_session_done(l->sk->tls))
		dief(l, "timed out connecting after %u ms: the TLS handshake did not finish "
		     "(does the server speak TLS on this port?)", l->timeout_ms);
	else if (l->gai.data != NULL)
		/* uv_getaddrinfo has not answered: the resolver is what is
		 * slow (a DNS server that does not answer), not the server. */
		dief(l, "timed out resolving %s after %u ms", l->host, l->timeout_ms);
	else
		dief(l, "timed out connecting after %u ms", l->timeout_ms);
}

/* A failure found where on_closed must not run yet (inside rlink_open or
 * rlink_command): refuse new commands now, report from the loop. */
static void die_soon(rlink *l, const char *why)
{
	size_t n = strlen(why);

	if (l->closed || l->dead)
		return;
	l->dead = true;
	l->up = false;
	if (n >= sizeof(l->late_why))
		n = sizeof(l->late_why) - 1;
	memcpy(l->late_why, why, n);
	l->late_why[n] = '\0';
	uv_timer_start(&l->timer, timer_cb, 0, 0);
}

/* ---- writing ------------------------------------------------------------------ */

/* At most one uv_write is in flight. libuv writes at once what the socket
 * takes but calls back on the next loop turn, so the commands queued
 * meanwhile (a burst of publishes) wait in the out list and go out
 * together from the callback: one system call per loop turn, as hiredis's
 * own buffer does, and none of them waits for a timer. */

static int flush(rlink *l);

static void free_wreq(wreq *w)
{
	for (size_t i = 0; i < w->n; i++) {
		if (w->cipher)
			free(w->bufs[i].base);
		else
			redisFreeCommand(w->bufs[i].base);
	}
	free(w);
}

static void write_cb(uv_write_t *req, int status)
{
	wreq *w = (wreq *)req;
	rlink *l = w->l;
	int rc;

	free_wreq(w);
	l->writing = false;
	/* UV_ECANCELED: the socket is being closed, by us. */
	if (status == UV_ECANCELED || l->closed || l->dead)
		return;
	if (status < 0) {
		dief(l, "cannot write to the server: %s", uv_strerror(status));
		return;
	}
	rc = flush(l);
	if (rc < 0)
		dief(l, "cannot write to the server: %s", uv_strerror(rc));
}

/* TLS: once the handshake is done, the out list is encrypted (the
 * commands are freed: their records hold them now); whatever the session
 * has to send, handshake messages included, goes out in one write. */
static int flush_tls(rlink *l)
{
	rtls_session *t = l->sk->tls;
	size_t len;
	char *cipher;
	wreq *w;
	outbuf *o;
	int rc;

	if (t == NULL)
		return 0;
	if (rtls_session_done(t)) {
		while ((o = l->out_head) != NULL) {
			char why[160];

			l->out_head = o->next;
			rc = rtls_session_write(t, o->cmd, o->len, why, sizeof(why));
			redisFreeCommand(o->cmd);
			free(o);
			if (rc < 0) {
				free_outbufs(l);
				return UV_EPROTO;
			}
		}
		l->out_tail = NULL;
	}
	cipher = rtls_session_take_output(t, &len);
	if (cipher == NULL)
		return len == 0 ? 0 : UV_ENOMEM;
	w = malloc(sizeof(*w) + sizeof(uv_buf_t));
	if (w == NULL) {
		free(cipher);
		return UV_ENOMEM;
	}
	w->l = l;
	w->n = 1;
	w->cipher = true;
	w->bufs[0] = uv_buf_init(cipher, (unsigned)len);
	if (len > UINT_MAX) {
		free_wreq(w);
		return UV_ENOBUFS;
	}
	rc = uv_write(&w->req, (uv_stream_t *)&l->sk->tcp, w->bufs, 1, write_cb);
	if (rc < 0) {
		free_wreq(w);
		return rc;
	}
	l->writing = true;
	return 0;
}

/* Hands the out list to libuv in one write, when connected and no write
 * is in flight. On failure the commands are dropped (the caller fails
 * the link) and a libuv error code is returned. */
static int flush(rlink *l)
{
	size_t n = 0;
	outbuf *o;
	wreq *w;
	int rc;

	if (!l->tcp_up || l->writing)
		return 0;
	if (l->tls != NULL)
		return flush_tls(l);
	if (l->out_head == NULL)
		return 0;
	for (o = l->out_head; o != NULL; o = o->next)
		n++;
	if (n > UINT_MAX / 2)
		n = UINT_MAX / 2;
	w = malloc(sizeof(*w) + n * sizeof(uv_buf_t));
	if (w == NULL) {
		free_outbufs(l);
		return UV_ENOMEM;
	}
	w->l = l;
	w->n = n;
	w->cipher = false;
	for (size_t i = 0; i < n; i++) {
		o = l->out_head;
		l->out_head = o->next;
		w->bufs[i] = uv_buf_init(o->cmd, (unsigned)o->len);
		free(o);
	}
	if (l->out_head == NULL)
		l->out_tail = NULL;
	rc = uv_write(&w->req, (uv_stream_t *)&l->sk->tcp, w->bufs, (unsigned)n, write_cb);
	if (rc < 0) {
		free_wreq(w);
		return rc;
	}
	l->writing = true;
	return 0;
}

/* ---- replies ------------------------------------------------------------------ */

static bool is_push(const redisReply *r)
{
	static const char *const kinds[] = {
		"message", "smessage", "pmessage", "subscribe", "ssubscribe", "psubscribe",
		"unsubscribe", "sunsubscribe", "punsubscribe",
	};
	const redisReply *k;

	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
		return false;
	k = r->element[0];
	if (k == NULL || (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS))
		return false;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (k->len == strlen(kinds[i]) && memcmp(k->str, kinds[i], k->len) == 0)
			return true;
	return false;
}

/* One reply to whoever waits for it. */
static void dispatch(rlink *l, redisReply *r)
{
	waiter *w;

	if (l->subscriber && is_push(r)) {
		if (l->on_push != NULL)
			l->on_push(l, r, l->arg);
		return;
	}
	w = l->head;
	if (w == NULL) {
		if (l->subscriber) {
			if (l->on_push != NULL)
				l->on_push(l, r, l->arg);
			return;
		}
		die(l, "a reply that no command waits for (protocol out of step)");
		return;
	}
	l->head = w->next;
	if (l->head == NULL)
		l->tail = NULL;
	l->n_waiting--;
	if (w->cb != NULL)
		w->cb(l, r, w->arg);
	free(w);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	rlink *l = ((sock *)h->data)->l;

	buf->base = l->rbuf;
	buf->len = sizeof(l->rbuf);
}

/* Plaintext from the server into the reader, and every whole reply out
 * to whoever waits for it. False when the link died or was closed
 * meanwhile (by a callback, say). */
static bool take_replies(rlink *l, const char *data, size_t n)
{
	if (redisReaderFeed(l->reader, data, n) != REDIS_OK) {
		dief(l, "protocol error: %s", l->reader->errstr);
		return false;
	}
	while (!l->closed && !l->dead) {
		void *reply = NULL;

		if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
			dief(l, "protocol error: %s", l->reader->errstr);
			return false;
		}
		if (reply == NULL)
			return true;
		/* Up and answering: the server was really there (AUTH's own
		 * reply comes before `up`, so a refused AUTH does not count). */
		if (l->up)
			l->was_up = true;
		dispatch(l, reply);
		freeReplyObject(reply);
	}
	return false;
}

/* The link is usable: connected, and the TLS handshake done. Without a
 * password that is all; else AUTH's reply decides (auth_cb). */
static void secured(rlink *l)
{
	if (l->password == NULL) {
		l->up = true;
		uv_timer_stop(&l->timer);
	}
}

/* TLS: ciphertext in; the handshake driven until done (then the queued
 * commands go out); plaintext out, to the reader. The read buffer is
 * free again once the session holds what it read. */
static void read_tls(rlink *l, sock *sk, const char *data, size_t n)
{
	char why[300];
	int rc;

	if (rtls_session_feed(sk->tls, data, n) < 0) {
		die(l, "TLS: out of memory");
		return;
	}
	if (!rtls_session_done(sk->tls)) {
		int hs = rtls_session_handshake(sk->tls, why, sizeof(why));

		if (hs < 0) {
			die(l, why);
			return;
		}
		rc = flush(l);
		if (rc < 0) {
			dief(l, "cannot write to the server: %s", uv_strerror(rc));
			return;
		}
		if (hs == 0)
			return;
		secured(l);
	}
	for (;;) {
		long got = rtls_session_read(sk->tls, l->rbuf, sizeof(l->rbuf), why, sizeof(why));

		if (got < 0) {
			die(l, why);
			return;
		}
		if (got == 0)
			break;
		if (!take_replies(l, l->rbuf, (size_t)got))
			return;
	}
	/* Reading may have made something to send (a key update). */
	rc = flush(l);
	if (rc < 0)
		dief(l, "cannot write to the server: %s", uv_strerror(rc));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	sock *sk = s->data;
	rlink *l = sk->l;
	char why[300];

	if (l->closed || l->dead)
		return;
	if (nread < 0) {
		if (nread == UV_EOF)
			snprintf(why, sizeof(why), "connection closed by the server");
		else
			snprintf(why, sizeof(why), "connection lost: %s", uv_strerror((int)nread));
		if (sk->tls != NULL) {
			char plain[sizeof(why)];

			memcpy(plain, why, sizeof(plain));
			rtls_session_ended(sk->tls, plain, why, sizeof(why));
		}
		die(l, why);
		return;
	}
	if (nread == 0)
		return;
	if (sk->tls != NULL)
		read_tls(l, sk, buf->base, (size_t)nread);
	else
		take_replies(l, buf->base, (size_t)nread);
}

/* ---- connecting ------------------------------------------------------------------ */

static void auth_cb(rlink *l, redisReply *r, void *arg)
{
	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		dief(l, "AUTH failed: %s", r->str);
		return;
	}
	l->up = true;
	uv_timer_stop(&l->timer);
}

static void sock_close_cb(uv_handle_t *h)
{
	sock *sk = h->data;
	rlink *l = sk->l;

	rtls_session_free(sk->tls);
	free(sk);
	unref(l);
}

static void close_sock(rlink *l)
{
	sock *sk = l->sk;

	l->sk = NULL;
	l->tcp_up = false;
	if (sk != NULL)
		uv_close((uv_handle_t *)&sk->tcp, sock_close_cb);
}

static void try_next_addr(rlink *l);

static void connect_cb(uv_connect_t *req, int status)
{
	sock *sk = req->data;
	rlink *l = sk->l;
	int rc;

	if (status == UV_ECANCELED || l->closed || l->dead || sk != l->sk)
		return;
	if (status < 0) {
		l->last_error = status;
		close_sock(l);
		try_next_addr(l);
		return;
	}
	uv_tcp_nodelay(&sk->tcp, 1);
	rc = uv_read_start((uv_stream_t *)&sk->tcp, alloc_cb, read_cb);
	if (rc < 0) {
		dief(l, "cannot read from the server: %s", uv_strerror(rc));
		return;
	}
	l->tcp_up = true;
	if (l->tls != NULL) {
		/* The commands wait for the handshake (read_tls); the
		 * connect timeout covers it. */
		char why[300];

		sk->tls = rtls_session_new(l->tls, l->host, why, sizeof(why));
		if (sk->tls == NULL || rtls_session_handshake(sk->tls, why, sizeof(why)) < 0) {
			die(l, why);
			return;
		}
	}
	rc = flush(l);
	if (rc < 0) {
		dief(l, "cannot write to the server: %s", uv_strerror(rc));
		return;
	}
	if (l->tls == NULL)
		secured(l);
}

/* Connects to `addr` with a new socket; a libuv error code. */
static int connect_to(rlink *l, const struct sockaddr *addr)
{
	sock *sk = calloc(1, sizeof(*sk));
	int rc;

	if (sk == NULL)
		return UV_ENOMEM;
	rc = uv_tcp_init(l->loop, &sk->tcp);
	if (rc < 0) {
		free(sk);
		return rc;
	}
	sk->l = l;
	sk->tcp.data = sk;
	sk->connect.data = sk;
	l->sk = sk;
	l->refs++;
	rc = uv_tcp_connect(&sk->connect, &sk->tcp, addr, connect_cb);
	if (rc < 0)
		close_sock(l);
	return rc;
}

/* The next resolved address, or the failure of the last one. */
static void try_next_addr(rlink *l)
{
	while (l->next_addr != NULL) {
		struct addrinfo *ai = l->next_addr;
		int rc;

		l->next_addr = ai->ai_next;
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		rc = connect_to(l, ai->ai_addr);
		if (rc == 0)
			return;
		l->last_error = rc;
	}
	die(l, l->last_error != 0 ? uv_strerror(l->last_error) : "no address to connect to");
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	rlink *l = req->data;

	req->data = NULL; /* done: nothing for rlink_close to cancel */
	if (l->closed || l->dead) {
		if (res != NULL)
			uv_freeaddrinfo(res);
		unref(l);
		return;
	}
	if (status < 0) {
		dief(l, "cannot resolve %s: %s", l->host, uv_strerror(status));
		unref(l);
		return;
	}
	l->addrs = res;
	l->next_addr = res;
	try_next_addr(l);
	unref(l);
}

/* Starts connecting: at once to a numeric address, else after
 * resolving the name (off the loop thread). */
static void start(rlink *l)
{
	struct sockaddr_storage ss;
	struct addrinfo hints;
	char port[8];
	int rc;

	if (uv_ip4_addr(l->host, l->port, (struct sockaddr_in *)&ss) == 0 ||
	    uv_ip6_addr(l->host, l->port, (struct sockaddr_in6 *)&ss) == 0) {
		rc = connect_to(l, (struct sockaddr *)&ss);
		if (rc < 0) {
			char why[200];

			snprintf(why, sizeof(why), "%s", uv_strerror(rc));
			die_soon(l, why);
		}
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(port, sizeof(port), "%d", l->port);
	l->gai.data = l;
	l->refs++;
	rc = uv_getaddrinfo(l->loop, &l->gai, resolved_cb, l->host, port, &hints);
	if (rc < 0) {
		char why[300];

		l->gai.data = NULL;
		l->refs--;
		snprintf(why, sizeof(why), "cannot resolve %s: %s", l->host, uv_strerror(rc));
		die_soon(l, why);
	}
}

/* ---- the link ------------------------------------------------------------------ */

static void free_link(rlink *l)
{
	waiter *w;

	while ((w = l->head) != NULL) {
		l->head = w->next;
		free(w);
	}
	free_outbufs(l);
	if (l->addrs != NULL)
		uv_freeaddrinfo(l->addrs);
	if (l->reader != NULL)
		redisReaderFree(l->reader);
	free(l->host);
	free(l->user);
	free(l->password);
	free(l);
}

static void unref(rlink *l)
{
	if (--l->refs == 0)
		free_link(l);
}

static void timer_close_cb(uv_handle_t *h)
{
	unref(h->data);
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

/* Queues a formatted command (taken) with its waiter (taken, or NULL). */
static int queue(rlink *l, char *cmd, size_t len, waiter *w)
{
	outbuf *o = malloc(sizeof(*o));
	int rc;

	if (o == NULL) {
		redisFreeCommand(cmd);
		free(w);
		return CONFAB_ENOMEM;
	}
	o->cmd = cmd;
	o->len = len;
	o->next = NULL;
	if (l->out_tail != NULL)
		l->out_tail->next = o;
	else
		l->out_head = o;
	l->out_tail = o;
	rc = flush(l);
	if (rc < 0) {
		char why[200];

		/* Connected and idle, so the list held this command only: it
		 * was not sent. on_closed must not run inside the caller. */
		free(w);
		snprintf(why, sizeof(why), "cannot write to the server: %s", uv_strerror(rc));
		die_soon(l, why);
		return CONFAB_EUNAVAILABLE;
	}
	if (w != NULL) {
		if (l->tail != NULL)
			l->tail->next = w;
		else
			l->head = w;
		l->tail = w;
		l->n_waiting++;
	}
	return 0;
}

int rlink_command(rlink *l, int argc, const char **argv, const size_t *lens,
		  rlink_reply_fn cb, void *arg)
{
	waiter *w = NULL;
	char *cmd = NULL;
	int len;

	if (l == NULL || l->closed || l->dead)
		return CONFAB_EUNAVAILABLE;
	if (argc <= 0 || argv == NULL)
		return CONFAB_EINVAL;
	/* A subscribed link's commands without a callback wait for no
	 * reply (their answers are pushes); elsewhere the reply is read
	 * and dropped, to keep the order. */
	if (cb != NULL || !l->subscriber) {
		w = malloc(sizeof(*w));
		if (w == NULL)
			return CONFAB_ENOMEM;
		w->next = NULL;
		w->cb = cb;
		w->arg = arg;
		w->queued_at = uv_now(l->loop);
		if (w->queued_at == 0)
			w->queued_at = 1; /* 0 means "none waits" */
	}
	len = redisFormatCommandArgv(&cmd, argc, argv, lens);
	if (len < 0 || cmd == NULL) {
		free(w);
		return CONFAB_ENOMEM;
	}
	return queue(l, cmd, (size_t)len, w);
}

rlink *rlink_open(uv_loop_t *loop, const rlink_opts *o)
{
	rlink *l = calloc(1, sizeof(*l));
	bool oom = false;

	if (l == NULL)
		return NULL;
	l->loop = loop;
	l->host = dup_or_null(o->host != NULL ? o->host : "", &oom);
	l->user = dup_or_null(o->user, &oom);
	l->password = dup_or_null(o->password, &oom);
	l->reader = redisReaderCreate();
	if (!oom && l->host[0] == '[') {
		/* "[::1]", as IPv6 addresses are written next to a port. */
		size_t n = strlen(l->host);

		if (n >= 2 && l->host[n - 1] == ']') {
			memmove(l->host, l->host + 1, n - 2);
			l->host[n - 2] = '\0';
		}
	}
	if (oom || l->reader == NULL) {
		free_link(l);
		return NULL;
	}
	l->port = o->port;
	l->timeout_ms = o->connect_timeout_ms != 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
	l->subscriber = o->subscriber;
	l->tls = o->tls;
	l->on_push = o->on_push;
	l->on_closed = o->on_closed;
	l->arg = o->arg;
	snprintf(l->name, sizeof(l->name), strchr(l->host, ':') != NULL ? "[%s]:%d" : "%s:%d",
		 l->host, l->port);
	l->refs = 1; /* the owner's */
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	l->refs++;
	uv_timer_start(&l->timer, timer_cb, l->timeout_ms, 0);

	if (l->password != NULL) {
		const char *argv[3] = {"AUTH"};
		int argc = 1, rc;

		if (l->user != NULL)
			argv[argc++] = l->user;
		argv[argc++] = l->password;
		rc = rlink_command(l, argc, argv, NULL, auth_cb, NULL);
		if (rc < 0) {
			rlink_close(l);
			return NULL;
		}
	}
	if (l->port <= 0 || l->port > 65535) {
		char why[64];

		snprintf(why, sizeof(why), "invalid port %d", l->port);
		die_soon(l, why);
		return l;
	}
	start(l);
	return l;
}

void rlink_close(rlink *l)
{
	if (l == NULL || l->closed)
		return;
	l->closed = true;
	l->up = false;
	free_outbufs(l);
	drain(l);
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, timer_close_cb);
	close_sock(l);
	/* A resolve in flight: its callback drops its reference (with
	 * UV_EAI_CANCELED when the cancel took). */
	if (l->gai.data != NULL)
		uv_cancel((uv_req_t *)&l->gai);
	unref(l);
}

bool rlink_connected(const rlink *l)
{
	return l != NULL && l->up && !l->closed;
}

bool rlink_was_connected(const rlink *l)
{
	return l != NULL && l->was_up;
}

uint64_t rlink_oldest(const rlink *l)
{
	return l != NULL && l->head != NULL ? l->head->queued_at : 0;
}

size_t rlink_pending(const rlink *l)
{
	return l != NULL ? l->n_waiting : 0;
}

const char *rlink_name(const rlink *l)
{
	return l != NULL ? l->name : "";
}
