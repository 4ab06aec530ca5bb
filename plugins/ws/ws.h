/* The `ws` transport: libwebsockets on the broker's libuv loop.
 *
 * Files (this header declares what they share; the two pure pieces have
 * their own):
 *   ws.c          the plugin descriptor, configuration, start/stop/destroy
 *                 and the one libwebsockets protocol callback that
 *                 dispatches to the files below.
 *   ws_listen.c   the listening socket: accept, and out of descriptors.
 *   ws_head.c     reception: the request head, read before lws has it.
 *   ws_addr.c     connections per remote address.
 *   ws_deadline.c the handshake deadline of connections not yet sessions.
 *   ws_http.c     plain HTTP: the chat page, /healthz, /readyz, 404, refusals, and
 *                 the confab_request built from a handshake.
 *   ws_strict.c   what lws lets through that HTTP and WebSocket forbid.
 *   ws_conn.c     connections: accept, admission, incoming messages, close.
 *   ws_park.c     handshakes whose admission is pending.
 *   ws_out.c      writing the outbound queue to the socket.
 *   ws_ring.c     the outbound queue itself (ws_ring.h): frames in order
 *                 and their cost against send_queue_max. Pure.
 *   ws_idle.c     dead peers: a ping after idle_timeout, then a hang-up.
 *   ws_mask.c     unmasked client frames, seen before lws reads them.
 *   ws_frames.c   the frame-header walker ws_mask.c feeds (ws_frames.h).
 *                 Pure.
 *   ws_tcp.c      TCP_INFO's count of bytes received, for ws_mask.c.
 *   ws_metrics.c  the transport's series (host->metrics), GET /metrics,
 *                 and [ws] metrics_listen's own small listener.
 *   ws_tls.c      TLS on the listener: a terminator in front of ws_conn.
 * "Pure": no socket, no lws call; the unit tests drive them alone.
 *
 * Everything runs on the loop thread.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_WS_H
#define CONFAB_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include <libwebsockets.h>
#include <uv.h>
#include <confab/plugin.h>
#include <confab/ratelimit.h>

#include "ws_frames.h"
#include "ws_proxy.h"
#include "ws_ring.h"

#define WS_SUBPROTOCOL "confab.v1"
#define WS_PATH "/ws"

/* A WebSocket close reason fits in a control frame: 125 bytes less the
 * two-byte code. */
#define WS_CLOSE_REASON_MAX 123

/* Seconds from accept until a connection must be a WebSocket session
 * (ws_deadline.c), and that a parked handshake waits for its admission. */
#define WS_HANDSHAKE_SECS 10
/* Bytes of request header data lws takes (a context setting): its default
 * of 4 KB drops a handshake carrying a large JWT without an answer. */
#define WS_HEADER_DATA 16384
/* Bytes reception reads before the head must be complete (ws_head.c): the
 * header data, and the request line and the names around it. lws's
 * per-thread buffer takes it whole (ws.c), so that lws parses it in one
 * go once handed over. */
#define WS_HEAD_MAX (WS_HEADER_DATA + 4096)

/* lws's receive buffer per WebSocket (the protocol's rx_buffer_size), and
 * its per-thread buffer (the context's pt_serv_buf_size): lws reads at most
 * these in one go (ws_mask.c). */
#define WS_RX_BUFFER 1024
#define WS_SERV_BUF (WS_HEAD_MAX + LWS_PRE + 1024)

typedef struct ws_conn ws_conn;
typedef struct ws_park ws_park;
typedef struct scrape_conn scrape_conn;
typedef struct ws_tls ws_tls;
struct ssl_ctx_st;             /* OpenSSL's SSL_CTX */

/* The transport's counts, plain integers of the loop thread, and their
 * series (ws_metrics.c), which get them only when /metrics is rendered:
 * a frame costs an add here, not a call into the core. Handles are -1
 * when not registered (a core without the metrics slot). */
#define WS_METRICS_STATUSES 9
typedef struct ws_metrics {
	uint64_t conns_total, bytes_in, bytes_out;
	int64_t queued;              /* every connection's ring.queued, summed */
	uint64_t published[3];       /* conns_total, bytes_in, bytes_out as last published */
	int h_conns, h_conns_total, h_bytes_in, h_bytes_out, h_queued;
	int refused_family;
	int refused[WS_METRICS_STATUSES];  /* the statuses ws_metrics.c names */
} ws_metrics;

/* A remote address, as a key (ws_addr.c). */
typedef struct ws_addr {
	uint8_t family;
	uint8_t bytes[16];
} ws_addr;

/* One plugin instance. */
typedef struct ws_state {
	confab_ctx *ctx;
	const confab_host *host;
	uv_loop_t *loop;             /* the broker's (host->loop), kept */

	/* [ws] listen, parsed. */
	char listen[80];             /* as given, for messages */
	char iface_buf[64];          /* the numeric address, for lws */
	const char *iface;           /* iface_buf */
	int port;
	bool ipv6;

	size_t send_queue_max;       /* [ws] send_queue_max */
	uint32_t write_delay_ms;     /* [ws] write_delay */
	size_t max_message_bytes;    /* [broker] max_message_bytes */
	/* Dead peers (ws_idle.c), from [broker] idle_timeout: a ping after
	 * idle_ms without anything from the peer, a hang-up when as long again
	 * passes without an answer. 0: never. */
	uint32_t idle_ms;
	uv_timer_t *idle_timer;

	/* [broker] max_connections and max_connections_per_address; 0: no
	 * limit. Every TCP connection counts, from accept to close. */
	size_t max_conns, max_per_addr;
	size_t n_conns;
	void *addrs;                 /* ws_addr.c: tsearch tree of counts */

	/* ws_listen.c */
	int listen_fd;
	uv_poll_t *listen_poll;
	int reserve_fd;              /* /dev/null, given up at EMFILE */
	uv_timer_t *backoff_timer;
	uint64_t emfile_count;

	/* ws_tls.c: [ws] tls_cert, tls_key and tls_ca, as a context (NULL:
	 * plain HTTP), and the TLS clients, handshaking or relayed. */
	struct ssl_ctx_st *tls_ctx;
	ws_tls *tlss;

	/* [ws] proxy_protocol: the balancers whose connections begin with a
	 * PROXY protocol header (ws_proxy.c), none when NULL. */
	ws_addr *proxies;
	size_t n_proxies;

	/* ws_deadline.c: connections not yet sessions, in accept order. */
	ws_conn *young, *young_tail;
	uv_timer_t *young_timer;

	struct lws_context *lws;     /* from start until destroy */
	struct lws_vhost *vhost;
	bool shutting_down;          /* stop() was called */
	bool lws_tracked;            /* lws's handles found on the loop */

	ws_conn *conns;              /* every live ws_conn, newest first */
	ws_conn *accepting;          /* being handed to lws right now */

	/* ws_park.c: handshakes taken from lws while admission is pending. */
	ws_park *parks;              /* waiting, newest first */
	ws_park *adopting;           /* being handed back to lws right now */
	uv_timer_t *park_timer;      /* hand-backs and the 503 deadline */

	/* ws_out.c: connections with frames to write at the end of this turn
	 * (dirty), or once their write delay has passed (later). */
	ws_conn *dirty, *later;
	uv_check_t *flush;
	uv_timer_t *later_timer;

	/* ws_mask.c: what is peeked, WS_SERV_BUF bytes once needed. */
	unsigned char *mask_buf;

	/* ws_metrics.c. [ws] metrics: GET /metrics served at all; with
	 * metrics_listen, on that address (metrics_addr) and not on `listen`. */
	ws_metrics m;
	bool metrics_on;
	bool metrics_separate;
	struct {
		char text[80];
		char iface[64];
		int port;
		bool ipv6;
	} metrics_addr;
	uv_tcp_t *metrics_server;
	scrape_conn *scrapes;        /* its open connections */
	size_t n_scrapes;
} ws_state;

/* Log through the host with the instance in the line. */
#define ws_log(s, level, ...) ((s)->host->log((s)->ctx, (level), __VA_ARGS__))
/* The same for a line a client can cause: at most one a second through
 * `rl` (one per kind of line), saying how many were skipped (ws.c). */
void ws_log_limited(ws_state *s, confab_ratelimit *rl, confab_log_level level,
		    const char *fmt, ...) CONFAB_PRINTF(4, 5);
/* lws's own log lines go to debug while quiet (ws.c). */
void ws_log_quiet(bool quiet);
#define WS_LOG_LIMITED(s, level, ...) do {                                  \
	static confab_ratelimit ws_rl_ = CONFAB_RATELIMIT_INIT(1000);       \
	ws_log_limited((s), &ws_rl_, (level), __VA_ARGS__);                 \
} while (0)

/* ws_http.c */
/* What lws keeps for us per HTTP transaction (its per-session data on the
 * HTTP side): the body still to be written. */
typedef struct ws_http_pss {
	const char *body;
	size_t len;
	size_t off;
	char *owned;                 /* body, when it is ours to free (/metrics) */
} ws_http_pss;
/* LWS_CALLBACK_HTTP: serve `/`, `/healthz`, `/readyz` or 404. Returns what the
 * callback returns. */
int ws_http_serve(ws_state *s, struct lws *wsi, ws_http_pss *pss,
		  const char *uri);
/* LWS_CALLBACK_HTTP_WRITEABLE: write the next piece of the body. */
int ws_http_writeable(struct lws *wsi, ws_http_pss *pss);
/* The transaction is over (CLOSED_HTTP, WSI_DESTROY): free an owned body. */
void ws_http_done(ws_http_pss *pss);
/* A small text/plain answer (`body` up to 512 bytes). Returns what the
 * HTTP callback returns. */
int ws_http_respond(struct lws *wsi, unsigned status, const char *body, bool head_only);
/* A 200 with `body` of `ctype`, written in chunks from HTTP_WRITEABLE.
 * Takes `body` (malloc'd): freed when written or the connection ends. */
int ws_http_body(struct lws *wsi, ws_http_pss *pss, unsigned status, const char *ctype,
		 char *body, size_t len, bool head_only);
/* Refuse a request with `status` and `reason` (text/plain, then the
 * connection closes). Returns 0, or -1 when nothing could be written. */
int ws_http_refuse(struct lws *wsi, unsigned status, const char *reason);
/* The same on a socket lws never had, before its request is read (at
 * accept): written at once if the socket takes it, then closed. */
void ws_http_refuse_fd(int fd, unsigned status, const char *reason);
/* The same with more headers (`extra`: "name: value\r\n" lines). */
void ws_http_refuse_fd_x(int fd, unsigned status, const char *reason,
			 const char *extra);

/* The request a handshake carries, built for session_open(). Owns its
 * strings; free with ws_request_free. */
typedef struct ws_request {
	confab_request req;
	confab_header *headers;
	char *strings;               /* one allocation for every string */
} ws_request;
/* `peer`: the client's address as text, or NULL to ask lws (which knows
 * only the socket it has: over TLS, a socket pair). */
int ws_request_build(ws_request *r, struct lws *wsi, const char *transport,
		     const char *peer);
void ws_request_free(ws_request *r);

/* ---- a connection (ws_conn.c: admission and input; ws_out.c: output) */

typedef enum ws_admit {
	WS_HTTP,        /* no upgrade asked for yet */
	WS_OPENING,     /* inside session_open() */
	WS_PENDING,     /* session_open() returned, done() not called yet */
	WS_ALLOWED,     /* done() admitted */
	WS_DENIED       /* done() refused */
} ws_admit;

struct ws_conn {
	ws_state *s;
	ws_conn *prev, *next;        /* in s->conns */

	struct lws *wsi;             /* NULL while parked */
	ws_park *park;               /* set while parked (ws_park.c) */
	bool returning;              /* handed back from parking to lws */
	/* ws_head.c: the socket and what was read of it, before lws has it;
	 * the bytes are kept until the upgrade (parking writes them again). */
	int fd;                      /* -1 once lws has it */
	uv_poll_t *head_poll;
	char *head;
	size_t head_len, head_cap;
	size_t head_end;             /* where the request head ends in it */
	bool proxy_wait;             /* from a balancer: its PROXY header first */
	size_t proxy_len;            /* the header's bytes, read and dropped: the
				      * stream offset of head[0] (ws_mask.c) */
	ws_addr addr;                /* counted in s->addrs */
	/* Over TLS (ws_tls.c): fd is our end of a socket pair; `tls` relays
	 * it to the client, while both live; tls_in counts the bytes it wrote
	 * into the pair (ws_mask.c's stream offset). */
	bool via_tls;
	ws_tls *tls;
	uint64_t tls_in;

	/* ws_deadline.c: in s->young until a session, or parked. */
	bool young;
	ws_conn *young_prev, *young_next;
	uint64_t deadline;           /* loop time (ms) */
	confab_session *session;     /* from session_open until session_closed */
	ws_admit admit;
	bool established;            /* the WebSocket handshake completed */

	/* Sync denial: the status for the HTTP answer. */
	int deny_status;

	/* close(), async denial or stop(): sent once the queue is empty. */
	bool closing;
	bool close_sent;             /* our close frame is out */
	int end_code;                /* how the client ended it, for the */
	const char *end_why;         /* core's disconnect line: 0/NULL none yet */
	int close_code;
	size_t close_len;
	char close_reason[WS_CLOSE_REASON_MAX + 1];

	/* Outbound frames (ws_ring.c), written by ws_out.c. */
	ws_ring ring;
	bool overflowed;             /* send() refused a frame: queue full */
	bool armed;                  /* a writeable callback is requested */
	bool write_failed;           /* the socket refused a write */
	ws_conn *out_prev, *out_next;  /* in s->dirty or s->later */
	uint8_t out_list;            /* which of them: WS_OUT_* (ws_out.c) */
	uint32_t written_at;         /* loop time (ms, low bits) of the last write */
	uint32_t last_frame_at;      /* ... of the last frame queued */
	uint16_t gap16;              /* average ms between frames, x 16 */
	uint32_t alive_ms;           /* loop time (ms, low bits): last sign of life */
	bool ping_sent;              /* pinged for this silence (ws_idle.c) */
	bool ping_due;               /* a ping to write (ws_out.c) */
	bool hung_up;                /* silent too long: lws is closing it */

	/* ws_mask.c: unmasked frames. */
	ws_frames frames;            /* the client's frame headers, walked */
	bool mask_on;                /* walking (an upgrade was asked for) */
	bool mask_synced;            /* the TCP offsets matched, once */
	bool unmasked;               /* one came: 1002, nothing more read */
	bool unmasked_held;          /* ... with the request: lws has frames
				      * before it to serve first (ws_out.c) */
	int mask_fd;                 /* hooked on this descriptor, or -1 */
	void *mask_w;                /* ... whose libuv io watcher is this */

	/* The message being received. */
	unsigned char *rx;
	size_t rx_len, rx_cap;
	bool rx_busy;                /* inside a message */
	bool rx_binary;
	bool rx_dropping;            /* too large: discarding the rest */
};

/* ws_conn.c */
/* Whether one more connection from `addr` is over max_connections (503)
 * or max_connections_per_address (429; not checked for a balancer of
 * proxy_protocol's: ws_conn_readdress), logged: that status, else 0. */
unsigned ws_conn_limit(ws_state *s, const ws_addr *addr);
/* A socket accepted on the listener (ws_listen.c), or the plain end of a
 * TLS client's pair (ws_tls.c: via_tls): refused at once over the limits
 * (ws_conn_limit), else counted and handed to lws. Takes fd. accepted_ms:
 * the loop time the client's TCP connection was accepted (its handshake
 * deadline counts from it). The connection, or NULL when it was refused
 * or could not be made. */
ws_conn *ws_conn_accept(ws_state *s, int fd, const struct sockaddr *peer,
			bool via_tls, uint64_t accepted_ms);
/* Reception is over (ws_head.c): hand c to lws (ok), or forget it (its
 * socket is closed or answered). */
void ws_conn_head_done(ws_conn *c, bool ok);
/* c's PROXY header named `client` (ws_head.c): c counts under it from now
 * on. 0, or the status to refuse c with (not counted yet in /metrics):
 * 429 over max_connections_per_address for it, 503 out of memory. */
unsigned ws_conn_readdress(ws_conn *c, const ws_addr *client);
/* LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: a wsi lws made for a
 * socket ws_conn_head_done hands it. */
void ws_conn_instantiated(ws_state *s, struct lws *wsi);
/* The handshake deadline passed (ws_deadline.c): close c now. */
void ws_conn_expired(ws_conn *c);
/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: checks and admission. Returns what
 * the callback returns: 0 to upgrade, or -1 after writing the refusal
 * (lws then hangs up). */
int ws_conn_confirm_upgrade(ws_state *s, struct lws *wsi, const char *upgrade);
int ws_conn_established(struct lws *wsi);
int ws_conn_receive(struct lws *wsi, const void *in, size_t len);
int ws_conn_writeable(struct lws *wsi);
/* An unmasked frame came (ws_mask.c, which keeps lws from reading the
 * socket again): what is queued and then our close 1002 are written
 * (ws_out.c), within WS_CLOSE_SEND_SECS, and the connection ends. */
void ws_conn_unmasked(ws_conn *c);
/* LWS_CALLBACK_RECEIVE_PONG. */
int ws_conn_pong(struct lws *wsi);
/* LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: `in`, `len` are the client's
 * close payload, checked and answered here. */
int ws_conn_peer_close(struct lws *wsi, void *in, size_t len);
/* The connection is gone (LWS_CALLBACK_CLOSED, or CLOSED_HTTP /
 * WSI_DESTROY for an upgrade that failed after admission started):
 * session_closed, once. */
void ws_conn_gone(struct lws *wsi);
/* stop(): close every connection (admitted or pending) with 1001. */
void ws_conn_close_all(ws_state *s, int code, const char *reason);
/* destroy(), after lws_context_destroy: end and free what is left. */
void ws_conn_free_all(ws_state *s);

/* A parked connection (ws_park.c) was handed back to lws, whose header
 * table is busy: wsi carries it until its CONFIRM_UPGRADE. */
void ws_conn_park_adopted(ws_conn *c, struct lws *wsi);
/* A parked connection could not be handed back: its socket is closed. */
void ws_conn_park_lost(ws_conn *c);
/* A parked connection waited too long for admission: refuse it (503). */
void ws_conn_park_expired(ws_conn *c);

/* ws_park.c */
/* In CONFIRM_UPGRADE, with admission pending: take the connection from
 * lws. 0: taken (*out set; the caller detaches c from wsi and returns -1
 * to lws). -1: not taken, nothing changed (the caller upgrades). -2: the
 * connection is lost (the caller ends it and returns -1). */
int ws_park_take(ws_state *s, struct lws *wsi, ws_conn *c, ws_park **out);
/* Admission is decided (c's state says how): hand back on the next tick. */
void ws_park_ready(ws_state *s, ws_park *p);
/* In CONFIRM_UPGRADE: the conn whose socket lws is adopting on wsi, or
 * NULL. The park is done with; the caller clears c's pointer to it. */
ws_conn *ws_park_claim(ws_state *s, struct lws *wsi);
/* Forget a park (closing its socket unless lws has it). */
void ws_park_free(ws_state *s, ws_park *p);
/* destroy(): close the timer. */
void ws_park_end(ws_state *s);

/* Transport ops (confab_transport_ops): send and send_budget in
 * ws_out.c, close in ws_conn.c. */
int ws_conn_send(void *state, void *conn, confab_buf *frame);
size_t ws_conn_send_budget(void *state, void *conn);
void ws_conn_close(void *state, void *conn, int code, const char *reason);

/* ws.c */
/* Close a handle that was malloc'd, and free it once libuv is done with
 * it (uv_close stops it first). */
void ws_handle_free(uv_handle_t *h);

/* ws_strict.c */
/* A request whose body framing is ambiguous or forbidden: -1 (answer
 * 400 and close), else 0. */
int ws_strict_http(struct lws *wsi);
/* A close frame's payload from the client: 0 if valid, -1 if it must be
 * answered with 1002 (and not echoed). */
int ws_strict_close(const void *in, size_t len);
bool ws_strict_close_code(int code);
/* Turn a bad close payload (lws echoes it) into our 1002: 0, or -1 when it
 * is too short for a code (the caller closes with 1002 itself). */
int ws_strict_close_reply(void *in, size_t len);
/* RAW_ADOPT: lws turned a CONNECT into a raw connection: 405, close. */
int ws_http_raw_refuse(struct lws *wsi);

/* ws_listen.c */
int ws_listen_addr(const ws_state *s, struct sockaddr_storage *ss,
		   socklen_t *sl);
/* Listen on [ws] listen: 0, or -1 with *err set. */
int ws_listen_start(ws_state *s, int *err);
void ws_listen_stop(ws_state *s);
/* No descriptor for a connection being accepted (err): pause accepting,
 * log, count, as when accept() itself fails so. */
void ws_listen_exhausted(ws_state *s, int err);
/* One of our connections closed: if accepting is paused for want of
 * descriptors, try again now. */
void ws_listen_freed(ws_state *s);

/* ws_head.c */
/* Read fd's request head; ws_conn_head_done follows. */
int ws_head_start(ws_conn *c, int fd);
/* Close the socket if still ours, free what was read. */
void ws_head_free(ws_conn *c);

/* ws_mask.c */
/* Reception is over (c->head, c->head_end): walk the frames behind the
 * request if it asks for an upgrade; an unmasked one and what follows are
 * cut from c->head, and c->unmasked set. */
void ws_mask_head(ws_conn *c);
/* lws has c's socket on c->wsi: check what it reads from now on (again
 * after parking: a new descriptor). */
void ws_mask_hook(ws_conn *c);
/* c's socket leaves lws, or c goes. */
void ws_mask_unhook(ws_conn *c);
void ws_mask_end(ws_state *s);
/* Before hanging up on an unmasked frame: drop what the client sent that
 * nobody will read (a bounded amount), so that closing the socket sends a
 * FIN behind our close frame, not a reset that may overtake it. */
void ws_mask_discard(ws_conn *c);

/* ws_tcp.c: TCP_INFO's tcpi_bytes_received of fd, and whether a FIN came
 * (counted in it as one byte). 0, or -1. */
int ws_tcp_received(int fd, uint64_t *bytes, int *fin);

/* ws_metrics.c */
/* Registers the transport's series (init). Always 0: when they cannot be
 * registered (logged), nothing is counted and the rest works. */
int ws_metrics_init(ws_state *s);
/* A request was refused with `status`. */
void ws_metrics_refused(ws_state *s, unsigned status);
/* GET/HEAD /metrics on the main listener. Returns what the HTTP callback
 * returns. */
int ws_metrics_http(ws_state *s, struct lws *wsi, ws_http_pss *pss, bool head_only);
/* [ws] metrics_listen: listen there (0), or -1 with *err an errno. */
int ws_metrics_listen(ws_state *s, int *err);
/* Close the listener and its connections (stop, destroy). */
void ws_metrics_stop(ws_state *s);

/* ws_addr.c */
void ws_addr_from(ws_addr *a, const struct sockaddr *sa);
/* `a` as text ("127.0.0.1", "::1"): buf, or "" for another family. */
const char *ws_addr_text(const ws_addr *a, char *buf, size_t len);
size_t ws_addr_count_of(ws_state *s, const ws_addr *a);
int ws_addr_add(ws_state *s, const ws_addr *a);
void ws_addr_remove(ws_state *s, const ws_addr *a);
void ws_addr_end(ws_state *s);
/* `a` is one of [ws] proxy_protocol's balancers. */
bool ws_addr_trusted_proxy(const ws_state *s, const ws_addr *a);

/* ws_deadline.c */
int ws_deadline_start(ws_state *s);
/* c was accepted at loop time `accepted_ms` (a TLS client's TCP accept,
 * before its TLS handshake: one deadline for both): its deadline is
 * WS_HANDSHAKE_SECS after that. */
void ws_deadline_join(ws_conn *c, uint64_t accepted_ms);
/* c is a session (or parked, or gone): no deadline any more. */
void ws_deadline_leave(ws_conn *c);
void ws_deadline_end(ws_state *s);

/* ws_tls.c */
/* [ws] tls_cert, tls_key, tls_ca: a new TLS context in *out (NULL when
 * tls_cert is not set), its files read and checked (config_error names
 * the key). 0, or CONFAB_EINVAL / CONFAB_ENOMEM. */
int ws_tls_config(ws_state *s, struct ssl_ctx_st **out);
void ws_tls_ctx_free(struct ssl_ctx_st *ctx);
/* With TLS on: lowers max_conns to the clients RLIMIT_NOFILE holds at
 * three descriptors each (with the broker's headroom), saying so at info
 * (start, and each reload that sets it). */
void ws_tls_cap_clients(ws_state *s);
/* New handshakes use ctx (taken) from now on; the old one is released
 * (connections made with it keep it until they end). */
void ws_tls_swap(ws_state *s, struct ssl_ctx_st *ctx);
/* A socket accepted on the listener with TLS on: the handshake, then
 * ws_conn_accept on a socket pair. Takes fd. */
void ws_tls_accept(ws_state *s, int fd, const struct sockaddr *peer,
		   socklen_t peer_len);
/* c's connection is freed: its relay stops writing its count. */
void ws_tls_detach(ws_tls *t);
/* stop(): handshakes in progress are closed. */
void ws_tls_stop(ws_state *s);
/* destroy(): every relay closed, the context freed. */
void ws_tls_end(ws_state *s);

/* ws_idle.c */
int ws_idle_start(ws_state *s);
/* A sign of life from c's peer (a message, a pong). */
void ws_idle_alive(ws_conn *c);
void ws_idle_end(ws_state *s);

/* ws_out.c */
/* Send c a WebSocket ping (from its writeable callback). */
void ws_out_ping(ws_conn *c);
/* c has frames (or its close frame) to write: at the end of this turn. */
void ws_out_want(ws_conn *c);
/* Drop c's queue (closing a client that does not read, or freeing c). */
void ws_out_clear(ws_conn *c);
/* destroy(): close the end-of-turn handle. */
void ws_out_end(ws_state *s);

#endif /* CONFAB_WS_H */
