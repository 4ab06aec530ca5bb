/* WebSocket client handshake and frame codec: see ws_client.h.
 * SPDX-License-Identifier: MIT
 */
#include "ws_client.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* The handshake key is a nonce, not a secret: one draw from OpenSSL seeds
 * a splitmix64 sequence. RAND_bytes per connection cost a getpid() system
 * call each (OpenSSL's fork check), a visible share of a connect storm. */
static uint64_t key_state;
static int key_seeded;

static uint64_t splitmix64(void)
{
	uint64_t z = (key_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

int ws_key_make(char key[25])
{
	unsigned char raw[16];

	if (!key_seeded) {
		if (RAND_bytes((unsigned char *)&key_state, sizeof key_state) != 1)
			return -1;
		key_seeded = 1;
	}
	for (int i = 0; i < 2; i++) {
		uint64_t r = splitmix64();

		memcpy(raw + 8 * i, &r, 8);
	}
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
	return 0;
}

void ws_accept_for(const char *key, char accept[29])
{
	char cat[64 + sizeof WS_GUID];
	unsigned char digest[SHA_DIGEST_LENGTH];
	int n = snprintf(cat, sizeof cat, "%.64s%s", key, WS_GUID);
	SHA1((const unsigned char *)cat, (size_t)n, digest);
	EVP_EncodeBlock((unsigned char *)accept, digest, sizeof digest);
}

int ws_request_write(char *out, size_t cap, const char *host, const char *path,
		     const char *key)
{
	int n = snprintf(out, cap,
			 "GET %s HTTP/1.1\r\n"
			 "Host: %s\r\n"
			 "Upgrade: websocket\r\n"
			 "Connection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n"
			 "\r\n",
			 path, host, key);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* The value of header `name` in the head [buf, end), trimmed; NULL if absent. */
static const char *header_value(const char *buf, const char *end, const char *name,
				size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *line = memchr(buf, '\n', (size_t)(end - buf));
	while (line && line + 1 < end) {
		line++;
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			break;
		if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
		    strncasecmp(line, name, nlen) == 0) {
			const char *v = line + nlen + 1;
			const char *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		line = eol;
	}
	return NULL;
}

long ws_response_check(const char *buf, size_t len, const char *key, int *status)
{
	*status = 0;
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return len > 16384 ? -1 : 0;
	end += 4;
	int st = 0;
	if (len < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0 ||
	    sscanf(buf + 9, "%3d", &st) != 1)
		return -1;
	*status = st;
	if (st != 101)
		return -1;
	char want[29];
	ws_accept_for(key, want);
	size_t vlen = 0;
	const char *v = header_value(buf, end, "Sec-WebSocket-Accept", &vlen);
	if (!v || vlen != 28 || memcmp(v, want, 28) != 0)
		return -1;
	return end - buf;
}

size_t ws_frame_encode(uint8_t *out, size_t cap, int opcode, const void *payload,
		       size_t len, uint32_t mask)
{
	size_t h = 2;
	if (len >= 65536)
		h += 8;
	else if (len >= 126)
		h += 2;
	if (cap < h + 4 + len)
		return 0;
	out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len >= 65536) {
		out[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	} else if (len >= 126) {
		out[1] = 0x80 | 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
	} else {
		out[1] = (uint8_t)(0x80 | len);
	}
	uint8_t m[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8),
			(uint8_t)mask};
	memcpy(out + h, m, 4);
	const uint8_t *src = payload;
	uint8_t *dst = out + h + 4;
	for (size_t i = 0; i < len; i++)
		dst[i] = src[i] ^ m[i & 3];
	return h + 4 + len;
}

void ws_parser_init(struct ws_parser *p, size_t max_message)
{
	memset(p, 0, sizeof *p);
	p->max_message = max_message;
}

void ws_parser_free(struct ws_parser *p)
{
	free(p->frag);
	p->frag = NULL;
	p->frag_len = p->frag_cap = 0;
	p->frag_opcode = 0;
}

static int frag_append(struct ws_parser *p, const uint8_t *data, size_t len)
{
	if (p->max_message && p->frag_len + len > p->max_message)
		return -1;
	if (!p->frag || p->frag_len + len > p->frag_cap) {
		size_t cap = p->frag_cap ? p->frag_cap : 4096;
		while (cap < p->frag_len + len)
			cap *= 2;
		uint8_t *n = realloc(p->frag, cap);
		if (!n)
			return -1;
		p->frag = n;
		p->frag_cap = cap;
	}
	if (len)
		memcpy(p->frag + p->frag_len, data, len);
	p->frag_len += len;
	return 0;
}

/* Unmasks in place is impossible on a const buffer; a masked server frame
 * (not allowed by RFC 6455, but harmless) is unmasked into the fragment
 * buffer instead. */
static const uint8_t *unmask(struct ws_parser *p, const uint8_t *data, size_t len,
			     const uint8_t *mask, size_t keep)
{
	if (frag_append(p, data, len) < 0)
		return NULL;
	uint8_t *d = p->frag + keep;
	for (size_t i = 0; i < len; i++)
		d[i] ^= mask[i & 3];
	return d;
}

long ws_parse(struct ws_parser *p, const uint8_t *buf, size_t len, ws_on_frame cb, void *ud)
{
	size_t off = 0;
	for (;;) {
		const uint8_t *f = buf + off;
		size_t avail = len - off;
		if (avail < 2)
			return (long)off;
		int fin = f[0] & 0x80, op = f[0] & 0x0f, masked = f[1] & 0x80;
		if (f[0] & 0x70)
			return -1;
		uint64_t plen = f[1] & 0x7f;
		size_t h = 2;
		if (plen == 126) {
			if (avail < 4)
				return (long)off;
			plen = ((uint64_t)f[2] << 8) | f[3];
			h = 4;
		} else if (plen == 127) {
			if (avail < 10)
				return (long)off;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = (plen << 8) | f[2 + i];
			if (plen >> 63)
				return -1;
			h = 10;
		}
		const uint8_t *mask = NULL;
		if (masked) {
			mask = f + h;
			h += 4;
		}
		if (avail < h || avail - h < plen)
			return (long)off;
		const uint8_t *data = f + h;
		size_t dlen = (size_t)plen;
		off += h + dlen;

		int stop = 0;
		if (op >= 0x8) {
			if (!fin || dlen > 125 || (op != WS_OP_CLOSE && op != WS_OP_PING &&
						   op != WS_OP_PONG))
				return -1;
			if (mask) {
				size_t keep = p->frag_len;
				const uint8_t *d = unmask(p, data, dlen, mask, keep);
				if (!d)
					return -1;
				uint8_t tmp[125];
				memcpy(tmp, d, dlen);
				p->frag_len = keep;
				stop = cb(ud, op, tmp, dlen);
			} else {
				stop = cb(ud, op, data, dlen);
			}
		} else if (op == WS_OP_CONT) {
			if (!p->frag_opcode)
				return -1;
			if (mask ? !unmask(p, data, dlen, mask, p->frag_len)
				 : frag_append(p, data, dlen) < 0)
				return -1;
			if (fin) {
				int o = p->frag_opcode;
				p->frag_opcode = 0;
				stop = cb(ud, o, p->frag, p->frag_len);
				p->frag_len = 0;
			}
		} else if (op == WS_OP_TEXT || op == WS_OP_BINARY) {
			if (p->frag_opcode)
				return -1;
			if (p->max_message && dlen > p->max_message)
				return -1;
			if (fin && !mask) {
				stop = cb(ud, op, data, dlen);
			} else {
				p->frag_len = 0;
				if (mask ? !unmask(p, data, dlen, mask, 0)
					 : frag_append(p, data, dlen) < 0)
					return -1;
				if (fin) {
					stop = cb(ud, op, p->frag, p->frag_len);
					p->frag_len = 0;
				} else {
					p->frag_opcode = op;
				}
			}
		} else {
			return -1;
		}
		if (stop)
			return (long)off;
	}
}
