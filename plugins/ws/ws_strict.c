/* What libwebsockets 4.1 lets through that HTTP/1.1 and WebSocket forbid,
 * checked here.
 *
 * HTTP (RFC 9112 6.3): a request whose body length is ambiguous is how
 * requests are smuggled past a proxy that reads it differently: two
 * Content-Length headers, Content-Length together with
 * Transfer-Encoding. A GET (and so every WebSocket handshake) has no body:
 * Transfer-Encoding on it is refused too. lws keeps repeated headers as
 * fragments of one token and acts on the first; it has no option to
 * refuse them. Each is answered 400 and the connection is closed.
 *
 * WebSocket close frames (RFC 6455 5.5.1, 7.4): the payload is empty, or a
 * code and a UTF-8 reason; a code is 1000-4999 and not one of those that
 * must never be sent (1004, 1005, 1006, 1015) or are unassigned
 * (1016-2999). lws echoes whatever the client sent (it rewrites some bad
 * codes to 1002, leaving the reason): a bad close is answered with a
 * close 1002 of our own and nothing of the client's is echoed.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <string.h>

#include "ws.h"

/* One plain decimal number in one header: lws keeps a repeated header as
 * a second fragment of its token (and some values as one list), so either
 * shows up here as something else. Two equal lengths are refused too
 * (RFC 9112 allows either). */
static bool one_length(struct lws *wsi)
{
	char buf[24];
	int len;

	if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, 1) > 0)
		return false;
	len = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_CONTENT_LENGTH);
	if (len <= 0 || len > 18)
		return false;
	for (int k = 0; k < len; k++)
		if (buf[k] < '0' || buf[k] > '9')
			return false;
	return true;
}

int ws_strict_http(struct lws *wsi)
{
	bool cl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
	bool te = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
	bool body_less = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0 ||
			 lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;

	if (te && (cl || body_less))
		return -1;
	if (cl && !one_length(wsi))
		return -1;
	return 0;
}

/* Well-formed UTF-8: no overlong forms, no surrogates, nothing past
 * U+10FFFF (RFC 3629). */
static bool utf8_valid(const unsigned char *p, size_t len)
{
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t i = 0;

	while (i < len) {
		size_t n;
		uint32_t cp;

		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 2;
			cp = p[i] & 0x1f;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 3;
			cp = p[i] & 0x0f;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 4;
			cp = p[i] & 0x07;
		} else {
			return false;
		}
		if (len - i < n)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min[n] || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

bool ws_strict_close_code(int code)
{
	if (code < 1000 || code > 4999)
		return false;
	if (code == 1004 || code == 1005 || code == 1006 || code == 1015)
		return false;
	return !(code >= 1016 && code <= 2999);
}

int ws_strict_close(const void *in, size_t len)
{
	const unsigned char *p = in;

	if (len == 0)
		return 0;
	if (len == 1)
		return -1;
	/* lws has already turned some bad codes into 1002 in place: a 1002
	 * here may be one, and is answered with 1002 without an echo. */
	if (!ws_strict_close_code((p[0] << 8) | p[1]) ||
	    ((p[0] << 8) | p[1]) == 1002)
		return -1;
	return utf8_valid(p + 2, len - 2) ? 0 : -1;
}

int ws_strict_close_reply(void *in, size_t len)
{
	static const char why[] = "bad close frame";
	unsigned char *p = in;

	/* lws echoes the payload it hands us, at its length: write ours
	 * over it (1002 and a reason of ours, padded with spaces), so that
	 * nothing of the client's goes back and lws still ends the
	 * connection as it does after an echo. */
	if (len < 2)
		return -1;
	p[0] = 1002 >> 8;
	p[1] = 1002 & 0xff;
	for (size_t i = 2; i < len; i++)
		p[i] = i - 2 < sizeof(why) - 1 ? (unsigned char)why[i - 2] : ' ';
	return 0;
}
