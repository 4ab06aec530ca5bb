/* Connections of the `ws` transport: accept, admission at the handshake,
 * incoming messages and close.
 *
 * A ws_conn is made for every accepted socket (counted against
 * max_connections and max_connections_per_address until it is freed) and
 * is the `conn` handed to the core. Reception (ws_head.c) reads its
 * request; then it is hung on its wsi as lws's opaque user data (lws
 * keeps that pointer across the upgrade, unlike the per-session data it
 * reallocates when it binds the WebSocket protocol). It lives until lws
 * is done with the connection, and the session handed out by
 * session_open() with it:
 *
 *   CONFIRM_UPGRADE  session_open() returns the session.
 *     done() before session_open returns (jwt, the SDK example):
 *       denied   -> HTTP status + reason, no upgrade; session_closed().
 *       allowed  -> upgrade.
 *     no done() yet (static): parked (ws_park.c), no upgrade yet:
 *       done()   -> handed back to lws; its CONFIRM_UPGRADE answers as
 *                   above (HTTP status, or upgrade). 503 10 s after
 *                   the accept (the handshake deadline).
 *     no done() yet, parking impossible (not Linux, out of descriptors):
 *       upgrade, reading paused until done():
 *       allowed  -> reading resumes.
 *       denied   -> close 4000+status (4401/4403/4503) with the reason.
 *   CLOSED (or CLOSED_HTTP / WSI_DESTROY when an upgrade failed half way):
 *       session_closed() whatever the state (a pending open is cancelled
 *       by it), conn freed.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ws.h"

/* Seconds a closing connection may take to write what is queued and our
 * close frame; a client that reads nothing is hung up after that. */
#define WS_CLOSE_SEND_SECS 5

/* The reassembly buffer starts at this size and doubles up to
 * max_message_bytes; one larger than WS_RX_KEEP is released after its
 * message, so an idle connection keeps at most that much. */
#define WS_RX_INITIAL 4096
#define WS_RX_KEEP 4096

/* ---- bookkeeping ---- */

static ws_conn *conn_new(ws_state *s, const ws_addr *addr, uint64_t accepted_ms)
{
	ws_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if (ws_addr_add(s, addr) != 0) {
		free(c);
		return NULL;
	}
	c->s = s;
	c->fd = -1;
	c->mask_fd = -1;
	c->addr = *addr;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	s->m.conns_total++;
	ws_deadline_join(c, accepted_ms);
	return c;
}

static void rx_release(ws_conn *c)
{
	free(c->rx);
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
}

/* Unlink and free. The caller has ended the session. */
static void conn_free(ws_conn *c)
{
	ws_state *s = c->s;

	if (c->wsi != NULL)
		lws_set_opaque_user_data(c->wsi, NULL);
	ws_mask_unhook(c);
	ws_tls_detach(c->tls);
	ws_park_free(s, c->park);
	ws_head_free(c);
	ws_out_clear(c);
	s->m.queued -= (int64_t)c->ring.queued;  /* lws's copy goes too */
	rx_release(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	ws_deadline_leave(c);
	ws_addr_remove(s, &c->addr);
	s->n_conns--;
	ws_listen_freed(s);
	if (s->accepting == c)
		s->accepting = NULL;  /* lws failed it inside the adoption */
	free(c);
}

/* ---- accept ---- */

/* max_connections_per_address for one more connection from addr: 429
 * (logged; the caller counts the refusal), else 0. */
static unsigned addr_limit(ws_state *s, const ws_addr *addr)
{
	if (s->max_per_addr != 0 &&
	    ws_addr_count_of(s, addr) >= s->max_per_addr) {
		WS_LOG_LIMITED(s, CONFAB_LOG_INFO, "max_connections_per_address "
			       "(%zu) reached: a new connection is refused "
			       "(429)", s->max_per_addr);
		return 429;
	}
	return 0;
}

unsigned ws_conn_limit(ws_state *s, const ws_addr *addr)
{
	if (s->max_conns != 0 && s->n_conns >= s->max_conns) {
		WS_LOG_LIMITED(s, CONFAB_LOG_WARN, "max_connections (%zu) "
			       "reached: a new connection is refused (503)",
			       s->max_conns);
		ws_metrics_refused(s, 503);
		return 503;
	}
	/* A balancer's connections count under the client's address its
	 * PROXY header names (ws_conn_readdress), not its own. */
	if (ws_addr_trusted_proxy(s, addr) || addr_limit(s, addr) == 0)
		return 0;
	ws_metrics_refused(s, 429);
	return 429;
}

unsigned ws_conn_readdress(ws_conn *c, const ws_addr *client)
{
	ws_state *s = c->s;
	unsigned status = addr_limit(s, client);

	if (status != 0)
		return status;
	if (ws_addr_add(s, client) != 0)
		return 503;
	ws_addr_remove(s, &c->addr);
	c->addr = *client;
	return 0;
}

ws_conn *ws_conn_accept(ws_state *s, int fd, const struct sockaddr *peer,
			bool via_tls, uint64_t accepted_ms)
{
	ws_addr addr;
	ws_conn *c;
	unsigned status;

	ws_addr_from(&addr, peer);
	/* Answered before anything is read: the descriptor is what is
	 * bounded, so it is given back at once. */
	status = ws_conn_limit(s, &addr);
	if (status != 0) {
		ws_http_refuse_fd(fd, status, status == 503
				  ? "server full: too many connections"
				  : "too many connections from this address");
		return NULL;
	}
	c = conn_new(s, &addr, accepted_ms);
	if (c == NULL) {
		ws_http_refuse_fd(fd, 503, "out of memory");
		return NULL;
	}
	c->via_tls = via_tls;
	c->proxy_wait = !via_tls && ws_addr_trusted_proxy(s, &addr);
	if (ws_head_start(c, fd) != 0) {
		ws_http_refuse_fd(fd, 503, "out of memory");
		c->fd = -1;
		conn_free(c);
		return NULL;
	}
	return c;
}

void ws_conn_head_done(ws_conn *c, bool ok)
{
	ws_state *s = c->s;
	struct lws *wsi;
	int fd = c->fd;

	if (!ok) {
		conn_free(c);
		return;
	}
	/* lws takes a copy of the bytes (and the socket, which it closes on
	 * any failure); c->head stays for parking. Its lws_adopt_*_readbuf
	 * logs "calling service" as an error each time: quiet. */
	c->fd = -1;
	ws_mask_head(c);
	s->accepting = c;
	ws_log_quiet(true);
	wsi = lws_adopt_socket_vhost_readbuf(s->vhost, fd, c->head,
					     c->head_len);
	ws_log_quiet(false);
	if (s->accepting == NULL)
		return;           /* lws closed it, and ws_conn_gone freed c */
	s->accepting = NULL;
	if (c->park != NULL)
		return;           /* parked inside: lws let go of it */
	if (wsi == NULL) {
		/* lws closed the socket before it called us */
		conn_free(c);
		return;
	}
	c->wsi = wsi;
	ws_mask_hook(c);
}

void ws_conn_instantiated(ws_state *s, struct lws *wsi)
{
	ws_conn *c = s->accepting;

	if (c == NULL || c->wsi != NULL || lws_get_opaque_user_data(wsi) != NULL)
		return;
	c->wsi = wsi;
	lws_set_opaque_user_data(wsi, c);
}

void ws_conn_expired(ws_conn *c)
{
	if (c->fd >= 0) {
		conn_free(c);  /* its request never came whole: hang up */
		return;
	}
	if (c->wsi == NULL)
		return;  /* parked: ws_park.c answers it at the same time */
	/* Outside any lws callback (a timer): lws may close it at once. */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

/* How the connection ended, for the core's disconnect line: the first
 * cause wins (a client's close after our 1002 is not its choice). */
static void ended(ws_conn *c, int code, const char *why)
{
	if (c != NULL && c->end_why == NULL) {
		c->end_code = code;
		c->end_why = why;
	}
}

static void end_session(ws_conn *c)
{
	const confab_host_transport *t = c->s->host->transport;
	confab_session *session = c->session;

	c->session = NULL;
	if (session == NULL)
		return;
	if (CONFAB_HAS(t, session_ended)) {
		/* Without a close frame, or ours: the client went away
		 * (1006, RFC 6455 7.1.5), or was hung up on for silence. */
		if (c->end_why == NULL)
			ended(c, 1006, c->hung_up ? "silent too long" : "connection lost");
		t->session_ended(session, c->end_code, c->end_why);
	}
	t->session_closed(session);
}

/* A close code a WebSocket peer accepts on the wire (RFC 6455 7.4). */
static int wire_code(int code)
{
	if ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	    (code >= 3000 && code <= 4999))
		return code;
	return 1011;
}

/* Remember the close; the first one wins. The reason is cut to what a
 * close frame holds, on a UTF-8 character boundary. */
static void set_closing(ws_conn *c, int code, const char *reason)
{
	size_t n = reason != NULL ? strlen(reason) : 0;

	if (c->closing)
		return;
	c->closing = true;
	c->close_code = wire_code(code);
	if (n > WS_CLOSE_REASON_MAX) {
		n = WS_CLOSE_REASON_MAX;
		while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
			n--;
	}
	if (n > 0)
		memcpy(c->close_reason, reason, n);
	c->close_reason[n] = '\0';
	c->close_len = n;
}

/* 401 -> 4401 and so on; anything odd becomes 4403. */
static int deny_code(int status)
{
	return (status >= 400 && status <= 599) ? 4000 + status : 4403;
}

static unsigned deny_http_status(int status)
{
	return (status >= 400 && status <= 599) ? (unsigned)status : 403u;
}

/* ---- admission ---- */

/* Record a refusal: its HTTP status, for a handshake still to answer,
 * and its close (4000 + status), for one already upgraded. */
static void deny(ws_conn *c, int http_status, const char *reason)
{
	c->admit = WS_DENIED;
	c->deny_status = http_status;
	set_closing(c, deny_code(http_status), reason);
}

static void open_done(void *arg, bool allowed, int http_status,
		      const char *reason)
{
	ws_conn *c = arg;
	bool later = c->admit == WS_PENDING;  /* after session_open returned */

	if (!allowed && (reason == NULL || *reason == '\0'))
		reason = "not allowed";
	if (c->admit != WS_OPENING && c->admit != WS_PENDING) {
		ws_log(c->s, CONFAB_LOG_ERROR,
		       "open answered twice for one connection; ignored");
		return;
	}
	if (allowed)
		c->admit = WS_ALLOWED;
	else
		deny(c, http_status, reason);
	if (!later)
		return;  /* inside session_open(): confirm_upgrade acts on it */
	if (c->park != NULL) {
		/* Parked: the answer goes out when lws has the socket again. */
		ws_park_ready(c->s, c->park);
		return;
	}
	/* Upgraded already (parking was not possible). */
	if (allowed) {
		if (c->established) {
			lws_rx_flow_control(c->wsi, 1);
			ws_deadline_leave(c);
		}
	} else {
		WS_LOG_LIMITED(c->s, CONFAB_LOG_DEBUG, "connection refused "
			       "(%d): %s", http_status, reason);
	}
	if (c->ring.len > 0 || c->closing)
		ws_out_want(c);
}

/* True when the comma-separated Sec-WebSocket-Protocol offer lists ours. */
static bool offers_subprotocol(const char *offer)
{
	const char *p = offer;
	size_t n = strlen(WS_SUBPROTOCOL);

	while (*p != '\0') {
		const char *e;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		e = p;
		while (*e != '\0' && *e != ',' && *e != ' ' && *e != '\t')
			e++;
		if ((size_t)(e - p) == n && memcmp(p, WS_SUBPROTOCOL, n) == 0)
			return true;
		p = e;
	}
	return false;
}

/* What lws checks after admission (RFC 6455 4.2.1), checked before it so
 * that a handshake bound to fail opens no session. */
static bool handshake_complete(struct lws *wsi)
{
	char conn[128], version[8];
	const char *p;

	if (lws_hdr_total_length(wsi, WSI_TOKEN_HOST) <= 0 ||
	    lws_hdr_total_length(wsi, WSI_TOKEN_KEY) <= 0 ||
	    lws_hdr_copy(wsi, version, sizeof(version), WSI_TOKEN_VERSION) < 0 ||
	    strcmp(version, "13") != 0 ||
	    lws_hdr_copy(wsi, conn, sizeof(conn), WSI_TOKEN_CONNECTION) < 0)
		return false;
	/* Connection: a comma-separated list that names "upgrade". */
	for (p = conn; *p != '\0';) {
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		n = strcspn(p, " \t,");
		if (n == 7 && strncasecmp(p, "upgrade", 7) == 0)
			return true;
		p += n;
	}
	return false;
}

/* Answer the upgrade request with an HTTP error and hang up. Hanging up
 * (rather than returning 1 to keep the HTTP/1.1 connection) also keeps
 * away from lws's keep-alive path after a refused upgrade. */
static int refuse(struct lws *wsi, unsigned status, const char *reason)
{
	ws_http_refuse(wsi, status, reason);
	return -1;
}

/* The second CONFIRM_UPGRADE of a parked connection, its admission
 * decided: upgrade, or refuse with the HTTP status. */
static int answer_parked(ws_state *s, struct lws *wsi, ws_conn *c)
{
	unsigned status;
	const char *reason;
	int rc;

	c->park = NULL;
	c->returning = false;
	c->wsi = wsi;
	lws_set_opaque_user_data(wsi, c);
	if (c->admit == WS_ALLOWED && !s->shutting_down)
		return 0;
	if (c->admit == WS_ALLOWED) {
		status = 503;
		reason = "server shutting down";
	} else {
		status = deny_http_status(c->deny_status);
		reason = c->close_reason;
	}
	WS_LOG_LIMITED(s, CONFAB_LOG_DEBUG, "connection refused (%u): %s",
		       status, reason);
	rc = refuse(wsi, status, reason);
	end_session(c);
	return rc;  /* lws hangs up: ws_conn_gone frees c */
}

int ws_conn_confirm_upgrade(ws_state *s, struct lws *wsi, const char *upgrade)
{
	char path[sizeof(WS_PATH) + 1];
	char offer[256];
	char peer[64];
	ws_request r;
	ws_conn *c;
	int rc;

	/* A parked connection coming back (ws_park.c): in the adoption, or
	 * later when lws had to wait for a header table. */
	c = ws_park_claim(s, wsi);
	if (c != NULL)
		return answer_parked(s, wsi, c);
	c = lws_get_opaque_user_data(wsi);
	if (c == NULL)
		return refuse(wsi, 500, "connection not known");
	if (c->returning)
		return answer_parked(s, wsi, c);
	if (c->admit != WS_HTTP)
		return refuse(wsi, 400, "one WebSocket upgrade per connection");
	if (ws_strict_http(wsi) != 0)
		return refuse(wsi, 400, "bad request framing (Content-Length, "
			      "Transfer-Encoding)");

	if (upgrade == NULL || strcasecmp(upgrade, "websocket") != 0)
		return refuse(wsi, 400, "only WebSocket upgrades are served");
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
		return refuse(wsi, 400, "a WebSocket upgrade is a GET");
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) >= (int)sizeof(path) ||
	    lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0 ||
	    strcmp(path, WS_PATH) != 0)
		return refuse(wsi, 404, "not found: the WebSocket endpoint is "
			      WS_PATH);
	if (s->shutting_down)
		return refuse(wsi, 503, "server shutting down");
	if (!handshake_complete(wsi))
		return refuse(wsi, 400, "bad WebSocket handshake");
	if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) > 0 &&
	    (lws_hdr_copy(wsi, offer, sizeof(offer), WSI_TOKEN_PROTOCOL) < 0 ||
	     !offers_subprotocol(offer)))
		return refuse(wsi, 400, "unsupported subprotocol: this endpoint "
			      "speaks " WS_SUBPROTOCOL);

	/* Over TLS lws sees the socket pair, behind a balancer the
	 * balancer: the client's address is c->addr. */
	if (ws_request_build(&r, wsi, s->host->name(s->ctx),
			     c->via_tls || c->proxy_len > 0
			     ? ws_addr_text(&c->addr, peer, sizeof(peer))
			     : NULL) != CONFAB_OK)
		return refuse(wsi, 503, "out of memory");
	c->admit = WS_OPENING;
	c->session = s->host->transport->session_open(s->ctx, &r.req, c,
						      open_done, c);
	ws_request_free(&r);

	if (c->session == NULL) {
		/* The core cannot take it; done() will not be called. */
		return refuse(wsi, 503, "unavailable");
	}
	if (c->admit == WS_DENIED) {
		unsigned status = deny_http_status(c->deny_status);

		WS_LOG_LIMITED(s, CONFAB_LOG_DEBUG, "connection refused (%u): "
			       "%s", status, c->close_reason);
		rc = refuse(wsi, status, c->close_reason);
		end_session(c);
		return rc;  /* lws hangs up: ws_conn_gone frees c */
	}
	if (c->admit == WS_OPENING) {
		c->admit = WS_PENDING;
		/* Answer later without upgrading first: park it. */
		rc = ws_park_take(s, wsi, c, &c->park);
		if (rc == 0) {
			ws_mask_unhook(c);
			lws_set_opaque_user_data(wsi, NULL);
			c->wsi = NULL;
			ws_deadline_leave(c);  /* the park keeps it */
			return -1;  /* lws closes its placeholder */
		}
		if (rc == -2) {
			WS_LOG_LIMITED(s, CONFAB_LOG_WARN, "a handshake could "
				       "not be parked for its admission and is "
				       "lost");
			end_session(c);
			return -1;  /* ws_conn_gone frees c */
		}
		/* Not parked: upgrade, reading paused until the answer. */
	}
	return 0;
}

void ws_conn_park_adopted(ws_conn *c, struct lws *wsi)
{
	c->park = NULL;
	c->returning = true;
	c->wsi = wsi;
	lws_set_opaque_user_data(wsi, c);
}

void ws_conn_park_lost(ws_conn *c)
{
	c->park = NULL;
	end_session(c);
	conn_free(c);
}

void ws_conn_park_expired(ws_conn *c)
{
	if (c->park == NULL || c->admit != WS_PENDING)
		return;
	WS_LOG_LIMITED(c->s, CONFAB_LOG_WARN, "no admission decision within "
		       "the time allowed: the handshake is refused (503)");
	deny(c, 503, "authentication timed out");
	end_session(c);  /* cancels the pending decision */
	ws_park_ready(c->s, c->park);
}

int ws_conn_established(struct lws *wsi)
{
	ws_conn *c = lws_get_opaque_user_data(wsi);

	if (c == NULL)
		return -1;  /* not upgraded through confirm_upgrade */
	c->established = true;
	ws_head_free(c);  /* the request is not needed again */
	ws_idle_alive(c);
	if (c->admit == WS_ALLOWED)
		ws_deadline_leave(c);
	if (c->admit == WS_PENDING)
		lws_rx_flow_control(wsi, 0);
	ws_mask_hook(c);
	if (c->unmasked)
		ws_conn_unmasked(c);  /* one came with the request */
	if (c->ring.len > 0 || c->closing)
		ws_out_want(c);
	return 0;
}

void ws_conn_unmasked(ws_conn *c)
{
	c->unmasked = true;
	ended(c, 1002, "unmasked frame");
	if (c->wsi == NULL || !c->established)
		return;  /* ws_conn_established comes back here */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, WS_CLOSE_SEND_SECS);
	ws_out_want(c);
}

/* ---- incoming ---- */

static void deliver(ws_conn *c, const void *data, size_t len, unsigned flags)
{
	if (c->admit != WS_ALLOWED || c->closing) {
		if (c->admit == WS_PENDING)
			WS_LOG_LIMITED(c->s, CONFAB_LOG_WARN,
				       "message before admission dropped");
		return;
	}
	c->s->host->transport->session_recv(c->session, data, len, flags);
}

static bool rx_append(ws_conn *c, const void *in, size_t len)
{
	size_t want = c->rx_len + len;

	if (want > c->rx_cap) {
		size_t cap = c->rx_cap ? c->rx_cap : WS_RX_INITIAL;
		unsigned char *p;

		while (cap < want)
			cap *= 2;
		if (cap > c->s->max_message_bytes)
			cap = c->s->max_message_bytes;
		p = realloc(c->rx, cap);
		if (p == NULL)
			return false;
		c->rx = p;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	return true;
}

int ws_conn_receive(struct lws *wsi, const void *in, size_t len)
{
	ws_conn *c = lws_get_opaque_user_data(wsi);
	bool final = lws_is_final_fragment(wsi) != 0;
	size_t max;

	if (c == NULL)
		return -1;
	/* Anything from the peer shows it is there (ws_idle.c). */
	ws_idle_alive(c);
	c->s->m.bytes_in += len;
	max = c->s->max_message_bytes;
	if (!c->rx_busy) {
		c->rx_busy = true;
		c->rx_binary = lws_frame_is_binary(wsi) != 0;
		c->rx_dropping = false;
		c->rx_len = 0;
	}
	if (!c->rx_dropping) {
		unsigned flags = c->rx_binary ? CONFAB_FRAME_BINARY : 0;

		if (len > max - c->rx_len) {
			/* Give up on this message: say so once, drop the
			 * rest of it as it comes. */
			size_t got = c->rx_len + len;

			c->rx_dropping = true;
			rx_release(c);
			deliver(c, NULL, got, flags | CONFAB_FRAME_TOO_LARGE);
		} else if (final && c->rx_len == 0) {
			deliver(c, in, len, flags);  /* whole: no copy */
		} else if (!rx_append(c, in, len)) {
			WS_LOG_LIMITED(c->s, CONFAB_LOG_ERROR,
				       "out of memory for an incoming message");
			return -1;
		} else if (final) {
			deliver(c, c->rx, c->rx_len, flags);
		}
	}
	if (final) {
		c->rx_busy = false;
		c->rx_len = 0;
		if (c->rx_cap > WS_RX_KEEP)
			rx_release(c);
	}
	return 0;
}

void ws_conn_close(void *state, void *conn, int code, const char *reason)
{
	ws_conn *c = conn;

	(void)state;
	if (c == NULL)
		return;
	if (c->closing)
		return;
	set_closing(c, code, reason);
	/* A client that stopped reading (its queue overflowed: the core
	 * closes it for that) would never get through the queue to our
	 * close frame: drop the queue, so that the close frame is next. */
	if (c->overflowed)
		ws_out_clear(c);
	/* Whatever is left and the close frame must go out in a bounded
	 * time; one that cannot be written at all (the client reads
	 * nothing) ends with lws hanging up. Sending the close frame
	 * replaces this with the wait for the client's answer. */
	if (c->established)
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND,
				WS_CLOSE_SEND_SECS);
	ws_out_want(c);
}

int ws_conn_pong(struct lws *wsi)
{
	ws_conn *c = lws_get_opaque_user_data(wsi);

	if (c != NULL)
		ws_idle_alive(c);
	return 0;
}

int ws_conn_peer_close(struct lws *wsi, void *in, size_t len)
{
	ws_conn *c = lws_get_opaque_user_data(wsi);
	const unsigned char *p = in;

	if (ws_strict_close(in, len) != 0) {
		ended(c, 1002, "bad close frame");
		if (ws_strict_close_reply(in, len)) {
			/* Too short to rewrite: lws sends this close and
			 * waits up to 5 s for an answer that will not come. */
			lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR,
					 (unsigned char *)"bad close frame", 15);
			return -1;
		}
	} else {
		/* RFC 6455 7.1.5: no code in the frame is 1005. */
		ended(c, len >= 2 ? (p[0] << 8) | p[1] : 1005, "by the client");
	}
	/* After our close frame the client's is the answer: hang up. Else
	 * lws echoes the client's close. */
	return c != NULL && c->close_sent ? 1 : 0;
}

/* ---- the end of a connection ---- */

void ws_conn_gone(struct lws *wsi)
{
	ws_conn *c = lws_get_opaque_user_data(wsi);

	if (c == NULL)
		return;
	end_session(c);
	conn_free(c);
}

void ws_conn_close_all(ws_state *s, int code, const char *reason)
{
	for (ws_conn *c = s->conns; c != NULL; c = c->next) {
		if (c->admit == WS_HTTP)
			continue;  /* plain HTTP: lws closes it with the vhost */
		if (c->park != NULL) {
			/* Parked: refused with 503 when handed back. */
			if (c->admit == WS_PENDING) {
				deny(c, 503, reason);
				end_session(c);
				ws_park_ready(s, c->park);
			}
			continue;
		}
		set_closing(c, code, reason);
		ws_out_want(c);
	}
}

void ws_conn_free_all(ws_state *s)
{
	/* lws_context_destroy has closed every connection it had, through
	 * LWS_CALLBACK_CLOSED; this is for any it did not call back for (its
	 * wsi is not freed yet: lws frees them from libuv close callbacks). */
	while (s->conns != NULL) {
		ws_conn *c = s->conns;

		end_session(c);
		conn_free(c);
	}
}
