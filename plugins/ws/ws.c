/* The `ws` transport plugin: descriptor, configuration and lifecycle.
 *
 * libwebsockets (lws) joins the broker's libuv loop as a "foreign loop":
 * the core owns the loop and its signals, lws only adds handles to it.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <uv.h>

#include "ws.h"

#define WS_DEFAULT_LISTEN "127.0.0.1:8080"
#define WS_DEFAULT_SEND_QUEUE_MAX ((size_t)1 << 20)
/* Room for a message's envelope (and queue bookkeeping) beside its body. */
#define WS_ENVELOPE_ROOM 4096
/* ms: see ws_out.c and docs/configuration.md */
#define WS_DEFAULT_WRITE_DELAY 20
#define WS_MAX_WRITE_DELAY 1000
/* The core allows up to a day; 2 T in ms must fit in 32 bits. */
#define WS_MAX_IDLE_TIMEOUT 86400

/* ---- lws logging ----
 *
 * lws has one log sink per process (lws_set_log_level), not one per
 * context, so its lines go to the instance that started last, until it is
 * destroyed; then lws's own stderr writer takes over, so that nothing in
 * lws points into this file once the core unloads it. Only errors are
 * enabled. While start() creates the context and
 * the vhost they are logged at debug level: start() reports the failure
 * itself in one clear line. */
static ws_state *log_owner;
static bool log_quiet;
/* lws logs what clients do to it too: one line a second at most. */
static confab_ratelimit lws_log_rl = CONFAB_RATELIMIT_INIT(1000);

static void lws_log_emit(int level, const char *line)
{
	size_t n = strlen(line);

	(void)level;
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (log_owner == NULL)
		return;
	ws_log_limited(log_owner, &lws_log_rl,
		       log_quiet ? CONFAB_LOG_DEBUG : CONFAB_LOG_WARN,
		       "libwebsockets: %.*s", (int)n, line);
}

void ws_log_quiet(bool quiet)
{
	log_quiet = quiet;
}

void ws_log_limited(ws_state *s, confab_ratelimit *rl, confab_log_level level,
		    const char *fmt, ...)
{
	char line[512];
	uint64_t skipped;
	va_list ap;

	if (!confab_ratelimit_allow(rl, uv_now(s->loop), &skipped))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (skipped > 0)
		ws_log(s, level, "%s (%" PRIu64 " more like it since the last "
		       "line)", line, skipped);
	else
		ws_log(s, level, "%s", line);
}

/* ---- configuration ---- */

/* Parse `listen`: IPv4:PORT, localhost:PORT or [IPv6]:PORT. Port 0 asks
 * the kernel for a free port when ws starts (ws_listen_start reads it
 * back, and the "listening on" line says which): tests start brokers so,
 * with no window in which another process could take a port picked
 * beforehand. */
static int parse_listen(ws_state *s, const char *v)
{
	const char *colon, *host, *port;
	size_t hlen;
	char hostbuf[64];
	unsigned char addr[sizeof(struct in6_addr)];
	char *end;
	unsigned long p;

	if (strlen(v) >= sizeof(s->listen))
		return -1;
	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		host = v + 1;
		hlen = (size_t)(close - host);
		port = close + 2;
		s->ipv6 = true;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL || memchr(v, ':', (size_t)(colon - v)) != NULL)
			return -1;  /* no port, or an IPv6 address without [] */
		host = v;
		hlen = (size_t)(colon - v);
		port = colon + 1;
		s->ipv6 = false;
	}
	if (hlen == 0 || hlen >= sizeof(hostbuf))
		return -1;
	memcpy(hostbuf, host, hlen);
	hostbuf[hlen] = '\0';

	if (*port < '0' || *port > '9')
		return -1;
	errno = 0;
	p = strtoul(port, &end, 10);
	if (errno != 0 || *end != '\0' || p > 65535)
		return -1;

	if (!s->ipv6 && strcmp(hostbuf, "localhost") == 0)
		strcpy(hostbuf, "127.0.0.1");
	if (inet_pton(s->ipv6 ? AF_INET6 : AF_INET, hostbuf, addr) != 1)
		return -1;

	snprintf(s->listen, sizeof(s->listen), "%s", v);
	snprintf(s->iface_buf, sizeof(s->iface_buf), "%s", hostbuf);
	s->iface = s->iface_buf;
	s->port = (int)p;
	return 0;
}

/* Try the address with a plain socket first, to name the reason (port in
 * use, address not on this host) in one line; lws only says it failed. */
static int probe_bind(const ws_state *s, int *err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, rc = 0;

	if (ws_listen_addr(s, &ss, &sl) != 0) {
		*err = EINVAL;
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	/* lws sets the same options on its own listener. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s->ipv6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
		*err = errno;
		rc = -1;
	}
	close(fd);
	return rc;
}

/* A numeric [broker] setting, as the broker uses it (its default applied
 * and its bounds checked): the broker's rule, not repeated here. Only a
 * key the broker does not know fails, a mistake of this file's: logged. */
static int broker_size(ws_state *s, const char *key, size_t *out)
{
	uint64_t u;

	if (s->host->broker_uint(s->ctx, key, &u) != 0 || u > SIZE_MAX) {
		ws_log(s, CONFAB_LOG_ERROR, "the broker has no [broker] %s for "
		       "this transport", key);
		return CONFAB_EINVAL;
	}
	*out = (size_t)u;
	return 0;
}

/* [ws]'s own numbers (the slot reports a bad value), then what it takes
 * from [broker]. */
static int read_limits(ws_state *s)
{
	const confab_host *host = s->host;
	uint64_t u;
	size_t idle;

	if (host->config_uint(s->ctx, "send_queue_max", WS_DEFAULT_SEND_QUEUE_MAX,
			      1, SIZE_MAX, &u) != 0)
		return CONFAB_EINVAL;
	s->send_queue_max = (size_t)u;
	if (host->config_uint(s->ctx, "write_delay", WS_DEFAULT_WRITE_DELAY, 0,
			      WS_MAX_WRITE_DELAY, &u) != 0)
		return CONFAB_EINVAL;
	s->write_delay_ms = (uint32_t)u;

	if (broker_size(s, "max_message_bytes", &s->max_message_bytes) != 0 ||
	    broker_size(s, "idle_timeout", &idle) != 0 ||
	    broker_size(s, "max_connections", &s->max_conns) != 0 ||
	    broker_size(s, "max_connections_per_address", &s->max_per_addr) != 0)
		return CONFAB_EINVAL;

	/* The cap bounds every frame too: it must hold the largest message
	 * with its envelope, or every member would be closed by one. */
	if (s->send_queue_max < s->max_message_bytes + WS_ENVELOPE_ROOM) {
		host->config_error(s->ctx, "send_queue_max", "%zu is less than "
				   "[broker] max_message_bytes (%zu) + %d, the "
				   "largest message a client may have to be sent",
				   s->send_queue_max, s->max_message_bytes,
				   WS_ENVELOPE_ROOM);
		return CONFAB_EINVAL;
	}
	if (idle > WS_MAX_IDLE_TIMEOUT) {
		ws_log(s, CONFAB_LOG_WARN, "[broker] idle_timeout %zu s is more "
		       "than this transport can time; using %d s", idle,
		       WS_MAX_IDLE_TIMEOUT);
		idle = WS_MAX_IDLE_TIMEOUT;
	}
	s->idle_ms = (uint32_t)idle * 1000u;
	return 0;
}

/* [ws] metrics and metrics_listen. The address is read by the same rule
 * as `listen` (parse_listen, into a scratch state). */
static int read_metrics_keys(ws_state *s)
{
	const confab_host *host = s->host;
	const char *v;

	if (host->config_bool(s->ctx, "metrics", true, &s->metrics_on) != 0)
		return CONFAB_EINVAL;
	v = host->config_get(s->ctx, "metrics_listen");
	if (v != NULL && s->metrics_on) {
		ws_state *scratch = calloc(1, sizeof(*scratch));

		if (scratch == NULL)
			return CONFAB_ENOMEM;
		if (parse_listen(scratch, v) != 0) {
			free(scratch);
			host->config_error(s->ctx, "metrics_listen",
					   "'%s' is not HOST:PORT or [IPv6]:PORT (an IP "
					   "address or localhost, and a port from 1 to "
					   "65535)", v);
			return CONFAB_EINVAL;
		}
		s->metrics_separate = true;
		snprintf(s->metrics_addr.text, sizeof(s->metrics_addr.text), "%s", v);
		snprintf(s->metrics_addr.iface, sizeof(s->metrics_addr.iface), "%s",
			 scratch->iface);
		s->metrics_addr.port = scratch->port;
		s->metrics_addr.ipv6 = scratch->ipv6;
		free(scratch);
	}
	return 0;
}

/* [ws] proxy_protocol: the balancers' addresses, comma-separated. Not
 * with TLS: the header would come before the TLS handshake, which this
 * terminator does not read (terminate TLS at the balancer). */
static int read_proxies(ws_state *s)
{
	const char *v = s->host->config_get(s->ctx, "proxy_protocol");
	char *copy, *item, *save = NULL;

	s->proxies = NULL;
	s->n_proxies = 0;
	if (v == NULL)
		return 0;
	copy = strdup(v);
	s->proxies = calloc(strlen(v) / 2 + 1, sizeof(*s->proxies));
	if (copy == NULL || s->proxies == NULL) {
		free(copy);
		return CONFAB_ENOMEM;
	}
	for (item = strtok_r(copy, ", \t", &save); item != NULL;
	     item = strtok_r(NULL, ", \t", &save)) {
		ws_addr *a = &s->proxies[s->n_proxies];

		if (inet_pton(AF_INET, item, a->bytes) == 1) {
			a->family = AF_INET;
		} else if (inet_pton(AF_INET6, item, a->bytes) == 1) {
			a->family = AF_INET6;
		} else {
			s->host->config_error(s->ctx, "proxy_protocol", "'%s' is not an IP "
					      "address (the load balancers that send a PROXY "
					      "protocol header, comma-separated)", item);
			free(copy);
			return CONFAB_EINVAL;
		}
		s->n_proxies++;
	}
	free(copy);
	if (s->n_proxies == 0) {
		s->host->config_error(s->ctx, "proxy_protocol", "is empty: name the load "
				      "balancers' addresses, or leave the key out");
		return CONFAB_EINVAL;
	}
	return 0;
}

/* Every key of [ws], and what ws takes from [broker], checked and read
 * into s (its ctx and host set): what init reads, and what reload reads
 * into a scratch state. Opens nothing but the TLS files (s->tls_ctx,
 * NULL without tls_cert; the caller frees it). */
static int read_config(ws_state *s)
{
	const confab_host *host = s->host;
	const char *v;
	int rc;

	/* Read every key first: keys not read are reported as unknown. */
	v = host->config_get(s->ctx, "listen");
	if (v == NULL)
		v = WS_DEFAULT_LISTEN;
	if (parse_listen(s, v) != 0) {
		host->config_error(s->ctx, "listen",
				   "'%s' is not HOST:PORT or [IPv6]:PORT (an IP "
				   "address or localhost, and a port from 0 to "
				   "65535)", v);
		return CONFAB_EINVAL;
	}
	if ((rc = read_limits(s)) != 0 || (rc = read_metrics_keys(s)) != 0 ||
	    (rc = read_proxies(s)) != 0 || (rc = ws_tls_config(s, &s->tls_ctx)) != 0)
		return rc;
	if (s->n_proxies > 0 && s->tls_ctx != NULL) {
		s->host->config_error(s->ctx, "proxy_protocol", "and tls_cert together: "
				      "the PROXY header would come before the TLS "
				      "handshake; terminate TLS at the balancer");
		return CONFAB_EINVAL;
	}
	return 0;
}

static int ws_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	ws_state *s;
	int rc, err = 0;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CONFAB_ENOMEM;
	s->ctx = ctx;
	s->host = host;
	s->loop = host->loop(ctx);
	s->listen_fd = -1;
	s->reserve_fd = -1;

	if (!CONFAB_HAS(host, transport) || host->transport == NULL ||
	    !CONFAB_HAS(host->transport, session_closed)) {
		host->log(ctx, CONFAB_LOG_ERROR,
			  "the broker offers no transport entry points");
		free(s);
		return CONFAB_EINVAL;
	}

	rc = read_config(s);
	/* A port in use is a configuration error that `confabd -t` must see
	 * too: bind (without listening, so no port opens) and let go. */
	if (rc == 0 && probe_bind(s, &err) != 0) {
		if (err == EADDRINUSE && CONFAB_HAS(host, checking) && host->checking(ctx)) {
			/* `confabd -t` beside the live node, before a reload: its
			 * own port is in use. Starting would still fail. */
			host->log(ctx, CONFAB_LOG_WARN, "listen: %s is in use now (by the "
				  "running node, or another program): a node cannot "
				  "start on it while it is", s->listen);
		} else {
			host->config_error(ctx, "listen", "cannot listen on %s: %s", s->listen,
					   strerror(err));
			rc = CONFAB_EINVAL;
		}
	}
	if (rc == 0)
		rc = ws_metrics_init(s);
	if (rc != 0) {
		ws_tls_ctx_free(s->tls_ctx);
		free(s->proxies);
		free(s);
		return rc;
	}

	*state = s;
	return CONFAB_OK;
}

/* ---- reload ---- */

/* A setting that needs a restart changed: say so, keep the old one. The
 * line's prefix names the instance: "[ws] listen changed to ...". */
static void restart_needed(ws_state *s, const char *key, const char *now,
			   const char *kept)
{
	ws_log(s, CONFAB_LOG_WARN, "%s changed to '%s': needs a restart; keeping '%s'", key,
	       now, kept);
}

static const char *metrics_listen_text(const ws_state *s)
{
	return s->metrics_separate ? s->metrics_addr.text : "";
}

/* Read [ws] again into a scratch state (read_config, as init), with a new
 * TLS context; what needs a restart is logged and not applied. */
static int ws_reload(void *state, void **pending)
{
	ws_state *s = state;
	ws_state *n = calloc(1, sizeof(*n));
	int rc;

	*pending = NULL;
	if (n == NULL)
		return CONFAB_ENOMEM;
	n->ctx = s->ctx;
	n->host = s->host;
	n->loop = s->loop;
	rc = read_config(n);
	if (rc != 0) {
		ws_tls_ctx_free(n->tls_ctx);
		free(n->proxies);
		free(n);
		return rc;
	}
	if (strcmp(n->listen, s->listen) != 0)
		restart_needed(s, "listen", n->listen, s->listen);
	if (n->metrics_on != s->metrics_on)
		restart_needed(s, "metrics", n->metrics_on ? "true" : "false",
			       s->metrics_on ? "true" : "false");
	else if (strcmp(metrics_listen_text(n), metrics_listen_text(s)) != 0)
		restart_needed(s, "metrics_listen", metrics_listen_text(n),
			       metrics_listen_text(s));
	if ((n->tls_ctx == NULL) != (s->tls_ctx == NULL)) {
		restart_needed(s, "tls_cert", n->tls_ctx != NULL ? "set" : "unset",
			       s->tls_ctx != NULL ? "set" : "unset");
		ws_tls_ctx_free(n->tls_ctx);
		n->tls_ctx = NULL;
	}
	*pending = n;
	return 0;
}

/* Numbers apply from now on (to new connections, and to every check made
 * later on open ones); the TLS context to new handshakes. */
static void ws_reload_finish(void *state, void *pending, bool apply)
{
	ws_state *s = state, *n = pending;

	if (n == NULL)
		return;
	if (apply) {
		bool idle_changed = n->idle_ms != s->idle_ms;

		s->send_queue_max = n->send_queue_max;
		s->write_delay_ms = n->write_delay_ms;
		s->max_message_bytes = n->max_message_bytes;
		s->idle_ms = n->idle_ms;
		s->max_conns = n->max_conns;
		ws_tls_cap_clients(s);
		s->max_per_addr = n->max_per_addr;
		if (idle_changed && s->lws != NULL && !s->shutting_down) {
			/* Its sweep reads idle_ms; 0 must stop it. */
			ws_idle_end(s);
			if (ws_idle_start(s) != 0)
				ws_log(s, CONFAB_LOG_ERROR, "out of memory: "
				       "idle_timeout not applied");
		}
		if (n->tls_ctx != NULL) {
			ws_tls_swap(s, n->tls_ctx);
			n->tls_ctx = NULL;
		}
		/* New connections; one reading its header keeps its say. */
		ws_addr *old = s->proxies;

		s->proxies = n->proxies;
		s->n_proxies = n->n_proxies;
		n->proxies = old;
	}
	ws_tls_ctx_free(n->tls_ctx);
	free(n->proxies);
	free(n);
}

/* ---- the lws protocol callback ---- */

static const lws_retry_bo_t no_validity;

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	ws_state *s;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		s = lws_context_user(lws_get_context(wsi));
		return ws_http_serve(s, wsi, user, in);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return ws_http_writeable(wsi, user);
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		s = lws_context_user(lws_get_context(wsi));
		ws_conn_instantiated(s, wsi);
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		s = lws_context_user(lws_get_context(wsi));
		return ws_conn_confirm_upgrade(s, wsi, in);
	case LWS_CALLBACK_ESTABLISHED:
		return ws_conn_established(wsi);
	case LWS_CALLBACK_RECEIVE:
		return ws_conn_receive(wsi, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ws_conn_writeable(wsi);
	case LWS_CALLBACK_RECEIVE_PONG:
		return ws_conn_pong(wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		return ws_conn_peer_close(wsi, in, len);
	case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
		if (ws_strict_http(wsi) != 0) {
			ws_http_refuse(wsi, 400, "bad request framing "
				       "(Content-Length, Transfer-Encoding)");
			return -1;
		}
		return 0;
	case LWS_CALLBACK_RAW_ADOPT:
		/* lws makes a CONNECT request a raw connection: nothing we
		 * serve. Reception answers CONNECT before lws sees it; this
		 * is for a request lws reads on its own. */
		return ws_http_raw_refuse(wsi);
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_WSI_DESTROY:
		if (reason == LWS_CALLBACK_CLOSED_HTTP)
			ws_http_done(user);  /* a body not written to the end */
		/* Whichever comes first for a wsi that carries a ws_conn:
		 * CLOSED for a WebSocket, the others when an upgrade we had
		 * admitted failed before it completed. */
		ws_conn_gone(wsi);
		return 0;
	default:
		return 0;
	}
}

/* One protocol: it serves HTTP and is the WebSocket protocol. Being the
 * first (index 0) it is also what lws binds a WebSocket to when the
 * client offers no subprotocol, so such clients are accepted too. */
static const struct lws_protocols ws_protocols[] = {
	{
		.name = WS_SUBPROTOCOL,
		.callback = ws_callback,
		.per_session_data_size = sizeof(ws_http_pss),
		/* lws gives every connection a receive buffer of this size:
		 * 4 KB by default, the largest part of an idle connection's
		 * cost. Chat messages are mostly smaller than 1 KB; longer
		 * ones arrive in pieces that ws_conn reassembles. */
		.rx_buffer_size = WS_RX_BUFFER,
		/* lws sends at most this much per send() of what it buffers
		 * (the rest of a frame the socket took in part, ws_out.c);
		 * left at 0 it would be rx_buffer_size. */
		.tx_packet_size = 65536,
	},
	{ .name = NULL, .callback = NULL },
};

typedef struct ws_find {
	const void *data;
	size_t n;
} ws_find;

static void find_data(uv_handle_t *h, void *arg)
{
	ws_find *f = arg;

	if (h->data == f->data)
		f->n++;
}

/* How many handles on the loop belong to this lws context: lws keeps
 * the context in the `data` of its own (see lws_teardown below). */
static size_t lws_handles(uv_loop_t *loop, struct lws_context *lws)
{
	ws_find f = { .data = lws, .n = 0 };

	uv_walk(loop, find_data, &f);
	return f.n;
}

static int ws_start(void *state)
{
	ws_state *s = state;
	struct lws_context_creation_info ci;
	void *loops[1];
	int err = 0;

	/* A bind failure is a configuration error: config_error names the
	 * file, the section and the key in its one line. */
	if (probe_bind(s, &err) != 0) {
		s->host->config_error(s->ctx, "listen", "cannot listen on %s: %s",
				      s->listen, strerror(err));
		return CONFAB_ERR;
	}

	log_owner = s;
	log_quiet = true;
	lws_set_log_level(LLL_ERR, lws_log_emit);

	/* The context: no vhost of its own, on the broker's loop. lws must
	 * not install its own SIGSEGV/SIGFPE handlers in the broker. */
	memset(&ci, 0, sizeof(ci));
	loops[0] = s->loop;
	ci.options = LWS_SERVER_OPTION_LIBUV |
		     LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		     LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
	ci.foreign_loops = loops;
	ci.user = s;
	ci.port = CONTEXT_PORT_NO_LISTEN;
	ci.max_http_header_data = WS_HEADER_DATA;
	/* lws serves a readbuf (ws_head.c, ws_park.c) this much at a time,
	 * and the rest only when the socket is readable again: all of it at
	 * once, or a handshake with long headers waits for nothing. */
	ci.pt_serv_buf_size = WS_SERV_BUF;
	s->lws = lws_create_context(&ci);
	if (s->lws == NULL) {
		log_quiet = false;
		ws_log(s, CONFAB_LOG_ERROR,
		       "cannot create the libwebsockets context on the libuv "
		       "loop: is the libwebsockets-evlib-uv package installed?");
		return CONFAB_ERR;
	}
	s->lws_tracked = lws_handles((uv_loop_t *)loops[0], s->lws) > 0;
	if (!s->lws_tracked)
		ws_log(s, CONFAB_LOG_DEBUG, "libwebsockets' handles not found "
		       "on the loop: its context will not be freed at exit");

	/* The vhost: no listener of its own (ws_listen.c accepts and hands
	 * it every connection). */
	memset(&ci, 0, sizeof(ci));
	ci.vhost_name = "confab";
	ci.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	ci.protocols = ws_protocols;
	ci.server_string = "confab";
	/* Dead peers are ws_idle.c's: a zeroed policy (not NULL, which
	 * would mean lws's own 300 s) turns lws's validity timers off. */
	ci.retry_and_idle_policy = &no_validity;
	s->vhost = lws_create_vhost(s->lws, &ci);
	log_quiet = false;
	if (s->vhost == NULL) {
		ws_log(s, CONFAB_LOG_ERROR, "libwebsockets could not create "
		       "its vhost");
		return CONFAB_ERR;
	}

	if (ws_idle_start(s) != 0 || ws_deadline_start(s) != 0) {
		ws_log(s, CONFAB_LOG_ERROR, "out of memory");
		return CONFAB_ERR;
	}
	if (ws_listen_start(s, &err) != 0) {
		s->host->config_error(s->ctx, "listen", "cannot listen on %s: %s",
				      s->listen, strerror(err));
		return CONFAB_ERR;
	}
	ws_log(s, CONFAB_LOG_INFO,
	       "listening on %s://%s%s%s:%d/ (WebSocket at " WS_PATH ")",
	       s->tls_ctx != NULL ? "https" : "http",
	       s->ipv6 ? "[" : "", s->iface, s->ipv6 ? "]" : "", s->port);
	ws_tls_cap_clients(s);
	if (s->metrics_separate) {
		if (ws_metrics_listen(s, &err) != 0) {
			s->host->config_error(s->ctx, "metrics_listen",
					      "cannot listen on %s: %s",
					      s->metrics_addr.text, strerror(err));
			return CONFAB_ERR;
		}
		ws_log(s, CONFAB_LOG_INFO, "metrics on http://%s/metrics",
		       s->metrics_addr.text);
	}
	return CONFAB_OK;
}

static void ws_stop(void *state)
{
	ws_state *s = state;

	if (s->shutting_down)
		return;
	s->shutting_down = true;
	ws_listen_stop(s);
	ws_metrics_stop(s);
	ws_tls_stop(s);
	ws_log(s, CONFAB_LOG_DEBUG, "closing every WebSocket");
	ws_conn_close_all(s, 1001, "server shutting down");
}

static void handle_freed(uv_handle_t *h)
{
	free(h);
}

void ws_handle_free(uv_handle_t *h)
{
	if (h != NULL && !uv_is_closing(h))
		uv_close(h, handle_freed);
}

/* ---- tearing lws down on the broker's loop ----
 *
 * lws 4.1 on a foreign libuv loop dies in two calls of
 * lws_context_destroy(). The first closes every connection at once
 * (LWS_CALLBACK_CLOSED runs for each, and with it session_closed) and
 * uv_close()s lws's handles; their close callbacks run on later turns of
 * the loop. Only once the last of them has run may the second call free
 * the context (lws's own foreign-loop example makes it after its loop
 * returned; before, it would free what the close callbacks still use;
 * never, and the context leaks).
 *
 * The core keeps running the loop after destroy() until every handle is
 * closed, so destroy() makes the first call and leaves a small reaper on
 * an idle handle: each turn it looks for lws's own handles (lws keeps
 * the context in their `data`); when none is left it makes the second
 * call and closes itself. Our instance state is freed at once: lws calls
 * nothing of ours in between that touches it. */

#define WS_REAP_MS 5000   /* give up (and leak the context) after this */

typedef struct ws_reaper {
	uv_idle_t idle;
	struct lws_context *lws;
	uint64_t deadline;
} ws_reaper;

static void reaper_closed(uv_handle_t *h)
{
	free(h->data);
}

static void reaper_tick(uv_idle_t *idle)
{
	ws_reaper *r = idle->data;
	bool busy = lws_handles(idle->loop, r->lws) > 0;

	if (busy && uv_now(idle->loop) < r->deadline)
		return;
	if (!busy)
		lws_context_destroy(r->lws);  /* the second call: frees it */
	uv_idle_stop(idle);
	uv_close((uv_handle_t *)idle, reaper_closed);
}

static void lws_teardown(ws_state *s)
{
	uv_loop_t *loop = s->loop;
	ws_reaper *r = NULL;

	/* Only when lws's handles can be told apart (seen at start). */
	if (s->lws_tracked)
		r = calloc(1, sizeof(*r));
	lws_context_destroy(s->lws);
	if (r == NULL)
		return;
	r->lws = s->lws;
	r->deadline = uv_now(loop) + WS_REAP_MS;
	r->idle.data = r;
	uv_idle_init(loop, &r->idle);
	uv_idle_start(&r->idle, reaper_tick);
}

static void ws_destroy(void *state)
{
	ws_state *s = state;

	if (s == NULL)
		return;
	if (s->lws != NULL) {
		lws_teardown(s);
		s->lws = NULL;
		s->vhost = NULL;
	}
	ws_listen_stop(s);
	ws_metrics_stop(s);
	ws_conn_free_all(s);
	ws_tls_end(s);
	ws_addr_end(s);
	ws_deadline_end(s);
	ws_park_end(s);
	ws_mask_end(s);
	ws_out_end(s);
	ws_idle_end(s);
	free(s->proxies);
	if (log_owner == s) {
		log_owner = NULL;
		lws_set_log_level(LLL_ERR, lwsl_emit_stderr);
	}
	free(s);
}

static const confab_transport_ops ws_transport_ops = {
	.size = sizeof(confab_transport_ops),
	.headroom = LWS_PRE,
	.send = ws_conn_send,
	.close = ws_conn_close,
	.send_budget = ws_conn_send_budget,
};

static const confab_plugin ws_plugin = {
	CONFAB_PLUGIN_HEADER(CONFAB_KIND_TRANSPORT, "ws", "0.1.0"),
	.description = "WebSocket transport (libwebsockets on the broker's "
		       "libuv loop), with the web chat page",
	.init = ws_init,
	.start = ws_start,
	.stop = ws_stop,
	.destroy = ws_destroy,
	.reload = ws_reload,
	.reload_finish = ws_reload_finish,
	.transport = &ws_transport_ops,
};

CONFAB_PLUGIN_DEFINE(ws_plugin)
