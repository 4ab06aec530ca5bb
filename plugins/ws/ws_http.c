/* Plain HTTP for the `ws` transport: the chat page at `/`, `/healthz`,
 * `/readyz`, `/metrics` (ws_metrics.c), 404 for the rest, and the
 * confab_request a WebSocket handshake carries.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "ws.h"
#include "chat_page.h"   /* chat_page, chat_page_len: www/index.html */

/* Bytes of the page written per HTTP_WRITEABLE callback. */
#define WS_HTTP_CHUNK 4096
/* Longest small body we write (status texts, refusal reasons). */
#define WS_HTTP_SMALL_BODY 512

static int add_header(struct lws *wsi, const char *name, const char *value,
		      unsigned char **p, unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
					   (const unsigned char *)value,
					   (int)strlen(value), p, end);
}

/* Status line, content type and length, and the headers every response
 * of ours carries; `xname`/`xvalue` add one more when not NULL. */
static int begin_headers(struct lws *wsi, unsigned status, const char *ctype,
			 size_t len, const char *cache, const char *xname,
			 const char *xvalue, unsigned char **p,
			 unsigned char *end)
{
	if (lws_add_http_common_headers(wsi, status, ctype, len, p, end) ||
	    add_header(wsi, "cache-control:", cache, p, end) ||
	    add_header(wsi, "connection:", "close", p, end) ||
	    add_header(wsi, "x-content-type-options:", "nosniff", p, end))
		return -1;
	if (xname != NULL && add_header(wsi, xname, xvalue, p, end))
		return -1;
	return 0;
}

static int respond_x(struct lws *wsi, unsigned status, const char *body,
		     const char *xname, const char *xvalue, bool head_only)
{
	unsigned char hbuf[LWS_PRE + 1024];
	unsigned char bbuf[LWS_PRE + WS_HTTP_SMALL_BODY];
	unsigned char *start = hbuf + LWS_PRE, *p = start;
	unsigned char *end = hbuf + sizeof(hbuf) - 1;
	size_t len = strlen(body);

	if (len > WS_HTTP_SMALL_BODY)
		len = WS_HTTP_SMALL_BODY;
	if (begin_headers(wsi, status, "text/plain; charset=utf-8", len,
			  "no-store", xname, xvalue, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (head_only || len == 0)
		return 0;
	memcpy(bbuf + LWS_PRE, body, len);
	if (lws_write(wsi, bbuf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < 0)
		return -1;
	return 0;
}

static const char *status_text(unsigned status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 431: return "Request Header Fields Too Large";
	case 405: return "Method Not Allowed";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return status < 500 ? "Client Error" : "Server Error";
	}
}

/* A refusal as text: status line, headers (`extra` adds some), body. */
static int refusal_text(char *out, size_t room, unsigned status,
			const char *reason, const char *extra)
{
	int body_len = (int)strnlen(reason, WS_HTTP_SMALL_BODY - 2) + 1;
	int n = snprintf(out, room,
			 "HTTP/1.1 %u %s\r\n"
			 "content-type: text/plain; charset=utf-8\r\n"
			 "content-length: %d\r\n"
			 "cache-control: no-store\r\n"
			 "x-content-type-options: nosniff\r\n"
			 "%s"
			 "connection: close\r\n"
			 "\r\n"
			 "%.*s\n",
			 status, status_text(status), body_len, extra,
			 body_len - 1, reason);

	return n < 0 || (size_t)n >= room ? -1 : n;
}

/* The response is written whole, status line included: while lws asks
 * HTTP_CONFIRM_UPGRADE it has not yet noted the request's HTTP version and
 * its own helpers would answer "HTTP/1.0", which WebSocket clients refuse
 * for an upgrade. */
int ws_http_refuse(struct lws *wsi, unsigned status, const char *reason)
{
	char buf[LWS_PRE + 256 + WS_HTTP_SMALL_BODY];
	int n = refusal_text(buf + LWS_PRE, sizeof(buf) - LWS_PRE, status,
			     reason, "");

	ws_metrics_refused(lws_context_user(lws_get_context(wsi)), status);
	if (n < 0 || lws_write(wsi, (unsigned char *)buf + LWS_PRE, (size_t)n,
			       LWS_WRITE_HTTP_HEADERS) < 0)
		return -1;
	return 0;
}

void ws_http_refuse_fd(int fd, unsigned status, const char *reason)
{
	ws_http_refuse_fd_x(fd, status, reason, "");
}

void ws_http_refuse_fd_x(int fd, unsigned status, const char *reason,
			 const char *extra)
{
	char buf[256 + WS_HTTP_SMALL_BODY];
	int n = refusal_text(buf, sizeof(buf), status, reason, extra);

	/* A new socket's send buffer takes this whole, or nothing is lost
	 * that was owed. What the client sent already is read first, so that
	 * the close is a FIN and not a reset that could destroy the answer
	 * before the client reads it. */
	if (n > 0) {
		char sink[2048];

		for (int i = 0; i < 8; i++)
			if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
				break;
		(void)!send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		shutdown(fd, SHUT_WR);
	}
	close(fd);
}

int ws_http_raw_refuse(struct lws *wsi)
{
	char buf[LWS_PRE + 256 + WS_HTTP_SMALL_BODY];
	int n = refusal_text(buf + LWS_PRE, sizeof(buf) - LWS_PRE, 405,
			     "method not allowed", "allow: GET, HEAD\r\n");

	if (n > 0)
		lws_write(wsi, (unsigned char *)buf + LWS_PRE, (size_t)n,
			  LWS_WRITE_RAW);
	return -1;
}

/* The page: headers now, the body from HTTP_WRITEABLE in chunks. */
static int serve_page(struct lws *wsi, ws_http_pss *pss, bool head_only)
{
	unsigned char hbuf[LWS_PRE + 1024];
	unsigned char *start = hbuf + LWS_PRE, *p = start;
	unsigned char *end = hbuf + sizeof(hbuf) - 1;

	if (begin_headers(wsi, 200, "text/html; charset=utf-8", chat_page_len,
			  "no-cache", "content-security-policy:",
			  "default-src 'none'; script-src 'unsafe-inline'; "
			  "style-src 'unsafe-inline'; connect-src 'self' ws: wss:; "
			  "img-src data:; base-uri 'none'; form-action 'none'; "
			  "frame-ancestors 'none'", &p, end) ||
	    add_header(wsi, "referrer-policy:", "no-referrer", &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (head_only)
		return -1;  /* answered: close (ws_http_serve says why) */
	pss->body = chat_page;
	pss->len = chat_page_len;
	pss->off = 0;
	lws_callback_on_writable(wsi);
	return 0;
}

int ws_http_respond(struct lws *wsi, unsigned status, const char *body, bool head_only)
{
	respond_x(wsi, status, body, NULL, NULL, head_only);
	return -1;  /* answered: close (ws_http_serve says why) */
}

int ws_http_body(struct lws *wsi, ws_http_pss *pss, unsigned status, const char *ctype,
		 char *body, size_t len, bool head_only)
{
	unsigned char hbuf[LWS_PRE + 1024];
	unsigned char *start = hbuf + LWS_PRE, *p = start;
	unsigned char *end = hbuf + sizeof(hbuf) - 1;

	if (begin_headers(wsi, status, ctype, len, "no-store", NULL, NULL, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end) || head_only || len == 0) {
		free(body);
		return -1;
	}
	ws_http_done(pss);
	pss->owned = body;
	pss->body = body;
	pss->len = len;
	pss->off = 0;
	lws_callback_on_writable(wsi);
	return 0;
}

void ws_http_done(ws_http_pss *pss)
{
	if (pss == NULL)
		return;
	free(pss->owned);
	pss->owned = NULL;
	pss->body = NULL;
}

int ws_http_writeable(struct lws *wsi, ws_http_pss *pss)
{
	unsigned char buf[LWS_PRE + WS_HTTP_CHUNK];
	size_t n;
	bool final;

	if (pss == NULL || pss->body == NULL)
		return 0;
	n = pss->len - pss->off;
	if (n > WS_HTTP_CHUNK)
		n = WS_HTTP_CHUNK;
	memcpy(buf + LWS_PRE, pss->body + pss->off, n);
	pss->off += n;
	final = pss->off == pss->len;
	if (lws_write(wsi, buf + LWS_PRE, n,
		      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
		return -1;
	if (!final) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	ws_http_done(pss);
	return -1;  /* answered: lws writes what it holds, then closes */
}

int ws_http_serve(ws_state *s, struct lws *wsi, ws_http_pss *pss,
		  const char *uri)
{
	bool head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
	bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	int rc;

	if (uri == NULL)
		uri = "";
	/* Request framing was checked in FILTER_HTTP_CONNECTION (ws.c). */
	if (!get && !head) {
		/* Closed at once: a body it may announce is not waited for. */
		respond_x(wsi, 405, "method not allowed\n", "allow:",
			  "GET, HEAD", false);
		return -1;
	} else if (strcmp(uri, "/") == 0) {
		return serve_page(wsi, pss, head);
	} else if (strcmp(uri, "/healthz") == 0 ||
		   strcmp(uri, "/readyz") == 0) {
		/* /healthz: the process serves (until stop()); /readyz: the
		 * node should get new clients (host->healthy: started, not
		 * draining, backplane up). Balancers check /readyz. */
		bool ok = !s->shutting_down &&
			  (uri[1] == 'h' || s->host->healthy(s->ctx));

		rc = respond_x(wsi, ok ? 200 : 503, ok ? "ok" : "unavailable",
			       NULL, NULL, head);
	} else if (strcmp(uri, "/metrics") == 0 && s->metrics_on && !s->metrics_separate) {
		return ws_metrics_http(s, wsi, pss, head);
	} else if (strcmp(uri, WS_PATH) == 0) {
		rc = respond_x(wsi, 426, "this is the WebSocket endpoint: "
			       "connect with a WebSocket client\n", "upgrade:",
			       "websocket", head);
	} else {
		rc = respond_x(wsi, 404, "not found\n", NULL, NULL, head);
	}
	/* Every plain HTTP answer ends its connection: a next request on it
	 * would reach lws without going through reception (ws_head.c). The
	 * answers are small and rare (the page, health checks). lws writes
	 * what it still holds before it closes. */
	(void)rc;
	return -1;
}

/* ---- the request a handshake carries ---- */

/* A header lws knows by token, as a lower-case "name:" (lws's own
 * spelling) or NULL for tokens that are not request headers (methods,
 * HTTP/2 pseudo-headers, client-side bookkeeping). */
static const char *token_header_name(int t, size_t *nlen)
{
	const char *name = (const char *)lws_token_to_string(
		(enum lws_token_indexes)t);
	size_t n;

	if (name == NULL)
		return NULL;
	n = strlen(name);
	if (n < 2 || name[0] == ':' || name[n - 1] != ':')
		return NULL;
	*nlen = n - 1;
	return name;
}

static char *lower_copy(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	dst[n] = '\0';
	return dst + n + 1;
}

/* Percent-encode a decoded "name=value" (the first '=' is kept) into
 * `w`, which has room for three bytes per byte; returns the new end. */
static char *query_encode(char *w, const char *frag)
{
	static const char hex[] = "0123456789ABCDEF";
	bool seen_eq = false;

	for (const unsigned char *p = (const unsigned char *)frag; *p; p++) {
		unsigned char ch = *p;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.' || ch == '~' || (ch == '=' && !seen_eq)) {
			seen_eq = seen_eq || ch == '=';
			*w++ = (char)ch;
		} else {
			*w++ = '%';
			*w++ = hex[ch >> 4];
			*w++ = hex[ch & 15];
		}
	}
	*w = '\0';
	return w;
}

int ws_request_build(ws_request *r, struct lws *wsi, const char *transport,
		     const char *peer_given)
{
	char peer[64];
	const char *peer_s;
	size_t need, nh = 0, nlen;
	int t, len, i, plen, nfrag = 0;
	char *w;

	memset(r, 0, sizeof(*r));
	peer_s = peer_given != NULL ? peer_given
				    : lws_get_peer_simple(wsi, peer, sizeof(peer));
	if (peer_s == NULL)
		peer_s = "";
	plen = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI);
	if (plen < 0)
		plen = 0;

	/* Sizes first, then one allocation for every string. */
	need = strlen(peer_s) + 1 + 2 * (size_t)plen + 1 + 1;
	while ((len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS,
					      nfrag)) > 0) {
		need += 3 * (size_t)len + 1;  /* percent-encoded, and '&' */
		nfrag++;
	}
	for (t = 0; t < WSI_TOKEN_COUNT; t++) {
		if (token_header_name(t, &nlen) == NULL ||
		    (len = lws_hdr_total_length(wsi,
				(enum lws_token_indexes)t)) <= 0)
			continue;
		/* room for the separators lws puts between repeated
		 * headers, whether or not its length counted them */
		need += nlen + 1 + 2 * (size_t)len + 1;
		nh++;
	}

	r->strings = malloc(need);
	r->headers = calloc(nh ? nh : 1, sizeof(*r->headers));
	if (r->strings == NULL || r->headers == NULL) {
		ws_request_free(r);
		return CONFAB_ENOMEM;
	}

	w = r->strings;
	r->req.size = sizeof(r->req);
	r->req.transport = transport;

	r->req.remote_addr = w;
	strcpy(w, peer_s);
	w += strlen(peer_s) + 1;

	r->req.path = w;
	if (plen == 0 ||
	    lws_hdr_copy(wsi, w, 2 * plen + 1, WSI_TOKEN_GET_URI) < 0)
		*w = '\0';
	w += strlen(w) + 1;

	/* lws splits the query at '&' into fragments and percent-decodes
	 * them ('+' too); the raw text is gone, so encode each name and value
	 * again and join them with '&'. Decoding this gives what the client
	 * meant, "a%26b" stays one value. */
	r->req.query = w;
	*w = '\0';
	for (i = 0; i < nfrag; i++) {
		char *frag;

		len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
		frag = len > 0 ? malloc((size_t)len + 1) : NULL;
		if (frag == NULL)
			continue;
		if (lws_hdr_copy_fragment(wsi, frag, len + 1,
					  WSI_TOKEN_HTTP_URI_ARGS, i) >= 0) {
			if (w != r->req.query)
				*w++ = '&';
			w = query_encode(w, frag);
		}
		free(frag);
	}
	*w++ = '\0';

	for (t = 0; t < WSI_TOKEN_COUNT && r->req.n_headers < nh; t++) {
		const char *name = token_header_name(t, &nlen);
		confab_header *h = &r->headers[r->req.n_headers];

		if (name == NULL || (len = lws_hdr_total_length(wsi,
				(enum lws_token_indexes)t)) <= 0)
			continue;
		h->name = w;
		w = lower_copy(w, name, nlen);
		h->value = w;
		if (lws_hdr_copy(wsi, w, 2 * len + 1,
				 (enum lws_token_indexes)t) < 0)
			*w = '\0';
		w += strlen(w) + 1;
		r->req.n_headers++;
	}
	r->req.headers = r->headers;
	return CONFAB_OK;
}

void ws_request_free(ws_request *r)
{
	free(r->headers);
	free(r->strings);
	r->headers = NULL;
	r->strings = NULL;
}
