/* The `ws` transport's metrics: its own series (connections, bytes,
 * queued bytes, refused handshakes) through the host's metrics slot, and
 * GET /metrics, served on the main listener or, with [ws] metrics_listen,
 * on an address of its own by the small HTTP server below.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

/* A scrape's request must come whole within this many ms and bytes. */
#define WS_METRICS_DEADLINE_MS 10000
#define WS_METRICS_HEAD_MAX 4096
/* Scrapes served at once on metrics_listen; more are closed at accept, so
 * that the listener cannot take the node's descriptors. */
#define WS_METRICS_CONNS_MAX 16

/* The statuses refusals use, registered at start so their series show
 * from the first scrape; another status gets its series when first seen. */
static const unsigned known_statuses[WS_METRICS_STATUSES] = {
	400, 401, 403, 404, 405, 429, 431, 500, 503
};

static int family(ws_state *s, uint32_t type, const char *name, const char *help,
		  const char *label)
{
	confab_metric_family f = {
		.size = sizeof(f), .type = type, .name = name, .help = help,
		.labels = label ? &label : NULL, .n_labels = label ? 1 : 0,
	};
	return s->host->metrics->family(s->ctx, &f);
}

static int series(ws_state *s, int fam)
{
	return fam < 0 ? fam : s->host->metrics->series(s->ctx, fam, NULL);
}

static int status_series(ws_state *s, unsigned status)
{
	char v[16];
	const char *values[] = { v };
	snprintf(v, sizeof(v), "%u", status);
	return s->host->metrics->series(s->ctx, s->m.refused_family, values);
}

int ws_metrics_init(ws_state *s)
{
	ws_metrics *m = &s->m;

	m->h_conns = m->h_conns_total = m->h_bytes_in = m->h_bytes_out = m->h_queued = -1;
	m->refused_family = -1;
	for (size_t i = 0; i < WS_METRICS_STATUSES; i++)
		m->refused[i] = -1;
	if (!CONFAB_HAS(s->host, metrics))
		return 0;  /* a core without metrics: nothing to count into */
	m->h_conns = series(s, family(s, CONFAB_METRIC_GAUGE, "confab_connections",
		"TCP connections open on the WebSocket listener (before and after the upgrade)",
		NULL));
	m->h_conns_total = series(s, family(s, CONFAB_METRIC_COUNTER, "confab_connections_total",
		"TCP connections accepted on the WebSocket listener", NULL));
	m->h_bytes_in = series(s, family(s, CONFAB_METRIC_COUNTER, "confab_bytes_received_total",
		"WebSocket message payload bytes received from clients", NULL));
	m->h_bytes_out = series(s, family(s, CONFAB_METRIC_COUNTER, "confab_bytes_sent_total",
		"WebSocket message payload bytes written to clients", NULL));
	m->h_queued = series(s, family(s, CONFAB_METRIC_GAUGE, "confab_send_queue_bytes",
		"Bytes the outbound queues of every connection hold, as counted against "
		"send_queue_max", NULL));
	m->refused_family = family(s, CONFAB_METRIC_COUNTER, "confab_handshakes_refused_total",
		"Requests refused with an HTTP error instead of a WebSocket upgrade, by status",
		"status");
	bool ok = m->h_conns >= 0 && m->h_conns_total >= 0 && m->h_bytes_in >= 0 &&
		  m->h_bytes_out >= 0 && m->h_queued >= 0 && m->refused_family >= 0;
	for (size_t i = 0; ok && i < WS_METRICS_STATUSES; i++)
		ok = (m->refused[i] = status_series(s, known_statuses[i])) >= 0;
	if (ok)
		return 0;
	/* A second transport instance finds the names taken: it serves
	 * without series of its own rather than refuse a chain that ran. */
	ws_log(s, CONFAB_LOG_WARN, "this instance's connection metrics are not counted");
	m->h_conns = m->h_conns_total = m->h_bytes_in = m->h_bytes_out = m->h_queued = -1;
	m->refused_family = -1;
	return 0;
}

/* Refusals are rare: counted straight into their series. */
void ws_metrics_refused(ws_state *s, unsigned status)
{
	if (s->m.refused_family < 0)
		return;
	int h = -1;
	for (size_t i = 0; i < WS_METRICS_STATUSES; i++)
		if (known_statuses[i] == status)
			h = s->m.refused[i];
	if (h < 0)
		h = status_series(s, status);  /* another status: registered once */
	if (h >= 0)
		s->host->metrics->add(s->ctx, h, 1);
}

/* The counts into their series, before a render. */
static void publish(ws_state *s)
{
	ws_metrics *m = &s->m;
	const confab_host_metrics *hm = s->host->metrics;
	const int handles[3] = { m->h_conns_total, m->h_bytes_in, m->h_bytes_out };
	const uint64_t now[3] = { m->conns_total, m->bytes_in, m->bytes_out };

	if (m->h_conns < 0)
		return;
	for (size_t i = 0; i < 3; i++) {
		hm->add(s->ctx, handles[i], (int64_t)(now[i] - m->published[i]));
		m->published[i] = now[i];
	}
	hm->set(s->ctx, m->h_conns, (int64_t)s->n_conns);
	hm->set(s->ctx, m->h_queued, m->queued);
}

/* ---- the text ---- */

typedef struct copy {
	char *text;
	size_t len;
} copy;

static void take_copy(void *arg, const char *text, size_t len)
{
	copy *c = arg;
	c->text = malloc(len ? len : 1);
	if (c->text) {
		memcpy(c->text, text, len);
		c->len = len;
	}
}

/* Every series as text, in a buffer of our own (free it). NULL when the
 * core has no metrics slot or memory ran out. */
static char *scrape(ws_state *s, size_t *len)
{
	copy c = { 0 };
	if (!CONFAB_HAS(s->host, metrics) || !CONFAB_HAS(s->host->metrics, scrape))
		return NULL;
	publish(s);
	if (s->host->metrics->scrape(s->ctx, take_copy, &c) != 0)
		return NULL;
	*len = c.len;
	return c.text;
}

/* ---- GET /metrics on the main listener ---- */

int ws_metrics_http(ws_state *s, struct lws *wsi, ws_http_pss *pss, bool head_only)
{
	size_t len = 0;
	char *text = scrape(s, &len);
	if (text == NULL)
		return ws_http_respond(wsi, 503, "metrics unavailable\n", head_only);
	return ws_http_body(wsi, pss, 200, CONFAB_METRICS_CONTENT_TYPE, text, len, head_only);
}

/* ---- [ws] metrics_listen: a listener of its own ---- */

struct scrape_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t write;
	ws_state *s;
	char head[WS_METRICS_HEAD_MAX];
	size_t len;
	char *reply;
	bool answered;
	int closing;                 /* handles still to close */
	scrape_conn *prev, *next;    /* in s->scrapes */
};

static void conn_closed(uv_handle_t *h)
{
	scrape_conn *c = h->data;
	if (--c->closing == 0) {
		free(c->reply);
		free(c);
	}
}

static void conn_end(scrape_conn *c)
{
	if (c->closing)
		return;
	c->s->n_scrapes--;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->s->scrapes = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->closing = 2;
	uv_close((uv_handle_t *)&c->timer, conn_closed);
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void written(uv_write_t *w, int status)
{
	(void)status;
	conn_end(w->data);
}

static void answer(scrape_conn *c, unsigned status, const char *ctype, const char *body,
		   size_t len, bool head_only)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %u %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
			 "cache-control: no-store\r\nconnection: close\r\n\r\n",
			 status, status == 200 ? "OK" : status == 404 ? "Not Found"
			 : status == 405 ? "Method Not Allowed" : "Service Unavailable",
			 ctype, len);
	size_t body_len = head_only ? 0 : len;
	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->reply = malloc((size_t)n + body_len);
	if (!c->reply) {
		conn_end(c);
		return;
	}
	memcpy(c->reply, head, (size_t)n);
	if (body_len)
		memcpy(c->reply + n, body, body_len);
	uv_buf_t b = uv_buf_init(c->reply, (unsigned)((size_t)n + body_len));
	c->write.data = c;
	if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, written) != 0)
		conn_end(c);
}

/* The request line is all we look at: GET or HEAD of /metrics. */
static void request(scrape_conn *c)
{
	bool head = strncmp(c->head, "HEAD ", 5) == 0;
	const char *path = head ? c->head + 5 : c->head + 4;
	if (!head && strncmp(c->head, "GET ", 4) != 0) {
		answer(c, 405, "text/plain; charset=utf-8", "method not allowed\n", 19, false);
		return;
	}
	if (strncmp(path, "/metrics ", 9) != 0 && strncmp(path, "/metrics?", 9) != 0) {
		answer(c, 404, "text/plain; charset=utf-8", "not found\n", 10, head);
		return;
	}
	size_t len = 0;
	char *text = scrape(c->s, &len);
	if (!text) {
		answer(c, 503, "text/plain; charset=utf-8", "metrics unavailable\n", 20, head);
		return;
	}
	answer(c, 200, CONFAB_METRICS_CONTENT_TYPE, text, len, head);
	free(text);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	scrape_conn *c = h->data;
	(void)hint;
	*buf = uv_buf_init(c->head + c->len, (unsigned)(sizeof(c->head) - 1 - c->len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	scrape_conn *c = st->data;
	(void)buf;
	if (n < 0 || c->answered) {
		if (n < 0)
			conn_end(c);
		return;
	}
	c->len += (size_t)n;
	c->head[c->len] = '\0';
	if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n"))
		request(c);
	else if (c->len == sizeof(c->head) - 1)
		conn_end(c);  /* no head within the bound: not a scraper */
}

static void on_deadline(uv_timer_t *t)
{
	conn_end(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
	ws_state *s = server->data;
	scrape_conn *c;

	if (status != 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->s = s;
	s->n_scrapes++;
	c->next = s->scrapes;
	if (c->next)
		c->next->prev = c;
	s->scrapes = c;
	c->tcp.data = c->timer.data = c;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || s->n_scrapes > WS_METRICS_CONNS_MAX ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0 ||
	    uv_timer_start(&c->timer, on_deadline, WS_METRICS_DEADLINE_MS, 0) != 0)
		conn_end(c);
}

int ws_metrics_listen(ws_state *s, int *err)
{
	struct sockaddr_storage ss;
	int rc;

	memset(&ss, 0, sizeof(ss));
	rc = s->metrics_addr.ipv6
		? uv_ip6_addr(s->metrics_addr.iface, s->metrics_addr.port, (struct sockaddr_in6 *)&ss)
		: uv_ip4_addr(s->metrics_addr.iface, s->metrics_addr.port, (struct sockaddr_in *)&ss);
	s->metrics_server = rc == 0 ? malloc(sizeof(*s->metrics_server)) : NULL;
	if (s->metrics_server == NULL) {
		*err = rc ? -rc : ENOMEM;
		return -1;
	}
	uv_tcp_init(s->loop, s->metrics_server);
	s->metrics_server->data = s;
	if ((rc = uv_tcp_bind(s->metrics_server, (struct sockaddr *)&ss, 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)s->metrics_server, 64, on_connection)) != 0) {
		*err = -rc;
		ws_handle_free((uv_handle_t *)s->metrics_server);
		s->metrics_server = NULL;
		return -1;
	}
	return 0;
}

void ws_metrics_stop(ws_state *s)
{
	while (s->scrapes != NULL)
		conn_end(s->scrapes);
	if (s->metrics_server != NULL)
		ws_handle_free((uv_handle_t *)s->metrics_server);
	s->metrics_server = NULL;
}
