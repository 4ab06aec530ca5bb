/* Unit tests of confab-bench's frame codec, handshake check, URL parsing,
 * TLS filter and statistics.
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "stats.h"
#include "target.h"
#include "tls_client.h"
#include "ws_client.h"

/* ---- what the parser hands back ----------------------------------------- */

struct seen {
	int n;
	int op[16];
	size_t len[16];
	uint8_t data[16][70000];
	int stop_after;          /* return 1 from this call (1-based); 0: never */
};

static int record(void *ud, int opcode, const uint8_t *data, size_t len)
{
	struct seen *s = ud;
	ck_assert_int_lt(s->n, 16);
	s->op[s->n] = opcode;
	s->len[s->n] = len;
	memcpy(s->data[s->n], data, len < sizeof s->data[0] ? len : sizeof s->data[0]);
	s->n++;
	return s->stop_after && s->n == s->stop_after;
}

static struct seen *seen_new(void)
{
	struct seen *s = calloc(1, sizeof *s);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* A server frame (unmasked): FIN flag, opcode, payload. */
static size_t server_frame(uint8_t *out, int fin, int op, const void *p, size_t len)
{
	size_t h = 2;
	out[0] = (uint8_t)((fin ? 0x80 : 0) | op);
	if (len < 126) {
		out[1] = (uint8_t)len;
	} else if (len < 65536) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		h = 4;
	} else {
		out[1] = 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		h = 10;
	}
	memcpy(out + h, p, len);
	return h + len;
}

/* ---- encoder ------------------------------------------------------------ */

static void check_encode(size_t len, size_t header)
{
	uint8_t *payload = malloc(len + 1), *out = malloc(len + WS_MAX_HEADER);
	for (size_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(i * 7);
	size_t n = ws_frame_encode(out, len + WS_MAX_HEADER, WS_OP_TEXT, payload, len, 0xA1B2C3D4u);
	ck_assert_uint_eq(n, header + 4 + len);
	ck_assert_uint_eq(out[0], 0x81);
	ck_assert(out[1] & 0x80);                     /* a client frame is masked */
	const uint8_t *mask = out + header;
	ck_assert_uint_eq(mask[0], 0xA1);
	ck_assert_uint_eq(mask[3], 0xD4);
	for (size_t i = 0; i < len; i++)
		ck_assert_uint_eq(out[header + 4 + i] ^ mask[i & 3], payload[i]);
	/* and the parser (which accepts masked frames too) reads it back */
	struct seen *s = seen_new();
	struct ws_parser p;
	ws_parser_init(&p, 0);
	ck_assert_int_eq(ws_parse(&p, out, n, record, s), (long)n);
	ck_assert_int_eq(s->n, 1);
	ck_assert_uint_eq(s->len[0], len);
	ck_assert(len > sizeof s->data[0] || memcmp(s->data[0], payload, len) == 0);
	ws_parser_free(&p);
	free(s);
	free(payload);
	free(out);
}

START_TEST(encode_lengths_7_16_64_bits)
{
	check_encode(0, 2);
	check_encode(125, 2);
	check_encode(126, 4);
	check_encode(65535, 4);
	check_encode(65536, 10);
	check_encode(70000, 10);
}
END_TEST

START_TEST(encode_refuses_a_small_buffer)
{
	uint8_t out[16];
	ck_assert_uint_eq(ws_frame_encode(out, sizeof out, WS_OP_TEXT, "0123456789A", 11, 1), 0);
	ck_assert_uint_eq(ws_frame_encode(out, sizeof out, WS_OP_TEXT, "0123456789", 10, 1), 16);
}
END_TEST

/* ---- parser ------------------------------------------------------------- */

START_TEST(parse_lengths_7_16_64_bits)
{
	static uint8_t buf[3 * 70100], payload[70000];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)i;
	size_t n = server_frame(buf, 1, WS_OP_TEXT, payload, 100);
	n += server_frame(buf + n, 1, WS_OP_TEXT, payload, 300);
	n += server_frame(buf + n, 1, WS_OP_BINARY, payload, 70000);
	struct seen *s = seen_new();
	struct ws_parser p;
	ws_parser_init(&p, 0);
	ck_assert_int_eq(ws_parse(&p, buf, n, record, s), (long)n);
	ck_assert_int_eq(s->n, 3);
	ck_assert_uint_eq(s->len[0], 100);
	ck_assert_uint_eq(s->len[1], 300);
	ck_assert_uint_eq(s->len[2], 70000);
	ck_assert_int_eq(s->op[2], WS_OP_BINARY);
	ck_assert(memcmp(s->data[2], payload, 70000) == 0);
	ws_parser_free(&p);
	free(s);
}
END_TEST

START_TEST(parse_partial_frames_byte_by_byte)
{
	uint8_t buf[600], payload[300];
	memset(payload, 'a', sizeof payload);
	size_t n = server_frame(buf, 1, WS_OP_TEXT, payload, 300);
	struct seen *s = seen_new();
	struct ws_parser p;
	ws_parser_init(&p, 0);
	/* Every prefix is incomplete: nothing consumed, nothing reported. */
	for (size_t k = 0; k < n; k++)
		ck_assert_int_eq(ws_parse(&p, buf, k, record, s), 0);
	ck_assert_int_eq(s->n, 0);
	ck_assert_int_eq(ws_parse(&p, buf, n, record, s), (long)n);
	ck_assert_int_eq(s->n, 1);
	ws_parser_free(&p);
	free(s);
}
END_TEST

START_TEST(parse_fragments_with_control_frames_between)
{
	uint8_t buf[256];
	size_t n = server_frame(buf, 0, WS_OP_TEXT, "hel", 3);
	n += server_frame(buf + n, 1, WS_OP_PING, "pi", 2);
	n += server_frame(buf + n, 0, WS_OP_CONT, "lo ", 3);
	n += server_frame(buf + n, 1, WS_OP_PONG, "", 0);
	n += server_frame(buf + n, 1, WS_OP_CONT, "world", 5);
	n += server_frame(buf + n, 1, WS_OP_TEXT, "next", 4);
	n += server_frame(buf + n, 1, WS_OP_CLOSE, "\x03\xe8", 2);
	struct seen *s = seen_new();
	struct ws_parser p;
	ws_parser_init(&p, 0);
	ck_assert_int_eq(ws_parse(&p, buf, n, record, s), (long)n);
	ck_assert_int_eq(s->n, 5);
	ck_assert_int_eq(s->op[0], WS_OP_PING);
	ck_assert(memcmp(s->data[0], "pi", 2) == 0);
	ck_assert_int_eq(s->op[1], WS_OP_PONG);
	ck_assert_int_eq(s->op[2], WS_OP_TEXT);      /* the message takes its first opcode */
	ck_assert_uint_eq(s->len[2], 11);
	ck_assert(memcmp(s->data[2], "hello world", 11) == 0);
	ck_assert_int_eq(s->op[3], WS_OP_TEXT);
	ck_assert(memcmp(s->data[3], "next", 4) == 0);
	ck_assert_int_eq(s->op[4], WS_OP_CLOSE);
	ws_parser_free(&p);
	free(s);
}
END_TEST

START_TEST(parse_fragments_split_across_reads)
{
	uint8_t buf[256];
	size_t a = server_frame(buf, 0, WS_OP_TEXT, "ab", 2);
	size_t n = a + server_frame(buf + a, 1, WS_OP_CONT, "cd", 2);
	struct seen *s = seen_new();
	struct ws_parser p;
	ws_parser_init(&p, 0);
	/* First read: the first fragment and half of the second. */
	ck_assert_int_eq(ws_parse(&p, buf, a + 2, record, s), (long)a);
	ck_assert_int_eq(s->n, 0);
	ck_assert_int_eq(ws_parse(&p, buf + a, n - a, record, s), (long)(n - a));
	ck_assert_int_eq(s->n, 1);
	ck_assert(memcmp(s->data[0], "abcd", 4) == 0);
	ws_parser_free(&p);
	free(s);
}
END_TEST

START_TEST(parse_refuses_protocol_errors)
{
	struct ws_parser p;
	struct seen *s = seen_new();
	uint8_t buf[300], big[200];
	memset(big, 0, sizeof big);
	const struct { uint8_t b[4]; size_t n; } bad[] = {
		{{0xC1, 0x00}, 2},     /* RSV1 set */
		{{0x83, 0x00}, 2},     /* reserved data opcode */
		{{0x8B, 0x00}, 2},     /* reserved control opcode */
		{{0x80, 0x00}, 2},     /* continuation without a start */
		{{0x09, 0x00}, 2},     /* fragmented ping */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ws_parser_init(&p, 0);
		ck_assert_int_eq(ws_parse(&p, bad[i].b, bad[i].n, record, s), -1);
		ws_parser_free(&p);
	}
	/* A control frame over 125 bytes. */
	ws_parser_init(&p, 0);
	size_t n = server_frame(buf, 1, WS_OP_PING, big, 126);
	ck_assert_int_eq(ws_parse(&p, buf, n, record, s), -1);
	ws_parser_free(&p);
	/* A new message inside a fragmented one. */
	ws_parser_init(&p, 0);
	n = server_frame(buf, 0, WS_OP_TEXT, "a", 1);
	n += server_frame(buf + n, 1, WS_OP_TEXT, "b", 1);
	ck_assert_int_eq(ws_parse(&p, buf, n, record, s), -1);
	ws_parser_free(&p);
	/* Over the message limit, in one frame or in fragments. */
	ws_parser_init(&p, 150);
	n = server_frame(buf, 1, WS_OP_TEXT, big, 151);
	ck_assert_int_eq(ws_parse(&p, buf, n, record, s), -1);
	ws_parser_free(&p);
	ws_parser_init(&p, 150);
	n = server_frame(buf, 0, WS_OP_TEXT, big, 100);
	n += server_frame(buf + n, 1, WS_OP_CONT, big, 51);
	ck_assert_int_eq(ws_parse(&p, buf, n, record, s), -1);
	ws_parser_free(&p);
	ck_assert_int_eq(s->n, 0);
	free(s);
}
END_TEST

START_TEST(parse_stops_when_the_callback_says_so)
{
	uint8_t buf[64];
	size_t a = server_frame(buf, 1, WS_OP_TEXT, "one", 3);
	size_t n = a + server_frame(buf + a, 1, WS_OP_TEXT, "two", 3);
	struct seen *s = seen_new();
	s->stop_after = 1;
	struct ws_parser p;
	ws_parser_init(&p, 0);
	ck_assert_int_eq(ws_parse(&p, buf, n, record, s), (long)a);
	ck_assert_int_eq(s->n, 1);
	ws_parser_free(&p);
	free(s);
}
END_TEST

/* ---- handshake ---------------------------------------------------------- */

START_TEST(accept_matches_rfc_6455_example)
{
	char acc[29];
	ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", acc);
	ck_assert_str_eq(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	char key[25];
	ck_assert_int_eq(ws_key_make(key), 0);
	ck_assert_uint_eq(strlen(key), 24);
}
END_TEST

START_TEST(response_check_needs_101_and_the_right_accept)
{
	const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
	const char *ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81";
	int st;
	ck_assert_int_eq(ws_response_check(ok, strlen(ok), key, &st), (long)strlen(ok) - 1);
	ck_assert_int_eq(st, 101);
	ck_assert_int_eq(ws_response_check(ok, 40, key, &st), 0);  /* incomplete */
	const char *wrong = "HTTP/1.1 101 Switching Protocols\r\n"
			    "Sec-WebSocket-Accept: AAAALMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
	ck_assert_int_eq(ws_response_check(wrong, strlen(wrong), key, &st), -1);
	const char *refused = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n";
	ck_assert_int_eq(ws_response_check(refused, strlen(refused), key, &st), -1);
	ck_assert_int_eq(st, 429);
	char req[512];
	ck_assert_int_gt(ws_request_write(req, sizeof req, "127.0.0.1:8080", "/ws?token=x", key), 0);
	ck_assert_ptr_nonnull(strstr(req, "GET /ws?token=x HTTP/1.1\r\n"));
	ck_assert_ptr_nonnull(strstr(req, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
	ck_assert_int_eq(ws_request_write(req, 20, "h", "/", key), -1);
}
END_TEST

/* ---- URLs --------------------------------------------------------------- */

START_TEST(url_parts_and_default_port)
{
	struct target t;
	char err[256];
	ck_assert_int_eq(target_parse(&t, "ws://127.0.0.1:8081/ws", NULL, err, sizeof err), 0);
	ck_assert_str_eq(t.hostport, "127.0.0.1:8081");
	ck_assert_str_eq(t.path, "/ws");
	ck_assert_uint_eq(ntohs(t.addr.sin_port), 8081);
	/* no port: 80; no path: /; localhost is 127.0.0.1 */
	ck_assert_int_eq(target_parse(&t, "ws://localhost", NULL, err, sizeof err), 0);
	ck_assert_str_eq(t.hostport, "localhost");
	ck_assert_str_eq(t.path, "/");
	ck_assert_uint_eq(ntohs(t.addr.sin_port), 80);
	ck_assert_uint_eq(ntohl(t.addr.sin_addr.s_addr), 0x7f000001u);
}
END_TEST

START_TEST(url_query_is_appended)
{
	struct target t;
	char err[256];
	ck_assert_int_eq(target_parse(&t, "ws://127.0.0.1:1/ws", "token=a", err, sizeof err), 0);
	ck_assert_str_eq(t.path, "/ws?token=a");
	ck_assert_int_eq(target_parse(&t, "ws://127.0.0.1:1/ws?x=1", "token=a", err, sizeof err),
			 0);
	ck_assert_str_eq(t.path, "/ws?x=1&token=a");
	ck_assert_int_eq(target_parse(&t, "ws://127.0.0.1:1", "token=a", err, sizeof err), 0);
	ck_assert_str_eq(t.path, "/?token=a");
}
END_TEST

START_TEST(url_refusals_say_why)
{
	struct target t;
	char err[256];
	ck_assert_int_eq(target_parse(&t, "http://127.0.0.1/ws", NULL, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "ws://"));
	ck_assert_int_eq(target_parse(&t, "ws://127.0.0.1:0/", NULL, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "bad port"));
	ck_assert_int_eq(target_parse(&t, "ws://127.0.0.1:70000/", NULL, err, sizeof err), -1);
	ck_assert_int_eq(target_parse(&t, "ws://127.0.0.1:8x/", NULL, err, sizeof err), -1);
	ck_assert_int_eq(target_parse(&t, "ws:///ws", NULL, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "bad host"));
	ck_assert_int_eq(target_parse(&t, "ws://example.org/ws", NULL, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "IPv4"));
}
END_TEST

START_TEST(url_wss_defaults_to_443_and_keeps_the_name)
{
	struct target t;
	char err[256];
	ck_assert_int_eq(target_parse(&t, "wss://127.0.0.1/ws", NULL, err, sizeof err), 0);
	ck_assert_int_eq(t.tls, 1);
	ck_assert_uint_eq(ntohs(t.addr.sin_port), 443);
	ck_assert_str_eq(t.host, "127.0.0.1");
	ck_assert_str_eq(t.hostport, "127.0.0.1");
	ck_assert_str_eq(t.path, "/ws");
	ck_assert_ptr_null(t.tls_ctx);
	/* the certificate must name localhost, not the address it stands for */
	ck_assert_int_eq(target_parse(&t, "wss://localhost:8443", "token=a", err, sizeof err), 0);
	ck_assert_int_eq(t.tls, 1);
	ck_assert_uint_eq(ntohs(t.addr.sin_port), 8443);
	ck_assert_str_eq(t.host, "localhost");
	ck_assert_str_eq(t.hostport, "localhost:8443");
	ck_assert_str_eq(t.path, "/?token=a");
	ck_assert_uint_eq(ntohl(t.addr.sin_addr.s_addr), 0x7f000001u);
	ck_assert_int_eq(target_parse(&t, "ws://127.0.0.1/ws", NULL, err, sizeof err), 0);
	ck_assert_int_eq(t.tls, 0);
	ck_assert_int_eq(target_parse(&t, "wss:/127.0.0.1/ws", NULL, err, sizeof err), -1);
	ck_assert_int_eq(target_parse(&t, "wss://127.0.0.1:0/ws", NULL, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "bad port"));
}
END_TEST

/* ---- TLS ---------------------------------------------------------------- */

/* A CA and a server certificate it signed for IP:127.0.0.1, made here (EC
 * keys: milliseconds), and the CA written to a file for --cafile. */
struct pki {
	EVP_PKEY *ca_key, *srv_key;
	X509 *ca, *srv;
	char cafile[64];
};

static X509 *cert_make(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
		       const char *san)
{
	X509 *x = X509_new();
	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), issuer ? 2 : 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
						  issuer ? "CA:FALSE" : "critical,CA:TRUE");
	ck_assert_ptr_nonnull(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (san) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		ck_assert_ptr_nonnull(ext);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	ck_assert_int_gt(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()), 0);
	return x;
}

static void pki_make(struct pki *p, const char *ca_name)
{
	p->ca_key = EVP_EC_gen("P-256");
	p->srv_key = EVP_EC_gen("P-256");
	ck_assert(p->ca_key && p->srv_key);
	p->ca = cert_make(p->ca_key, ca_name, NULL, NULL, NULL);
	p->srv = cert_make(p->srv_key, "127.0.0.1", p->ca, p->ca_key, "IP:127.0.0.1");
	snprintf(p->cafile, sizeof p->cafile, "/tmp/test_bench_ca_XXXXXX");
	int fd = mkstemp(p->cafile);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_X509(f, p->ca), 1);
	fclose(f);
}

static void pki_free(struct pki *p)
{
	unlink(p->cafile);
	X509_free(p->ca);
	X509_free(p->srv);
	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->srv_key);
}

/* The server's side, on memory BIOs too. */
static SSL *server_new(const struct pki *p)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, p->srv), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, p->srv_key), 1);
	SSL *s = SSL_new(ctx);
	SSL_CTX_free(ctx);            /* the SSL keeps a reference */
	BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(in, -1);
	BIO_set_mem_eof_return(out, -1);
	SSL_set_bio(s, in, out);
	SSL_set_accept_state(s);
	return s;
}

/* Carries bytes both ways until the client's handshake is done (1) or has
 * failed (-1, with `why`). */
static int handshake_pair(SSL *cli, SSL *srv, char *why, size_t whylen)
{
	uint8_t buf[32768];
	for (int round = 0; round < 20; round++) {
		int r = tls_client_handshake(cli, why, whylen);
		size_t n;
		while ((n = tls_client_take_out(cli, buf, sizeof buf)) > 0)
			ck_assert_int_eq(BIO_write(SSL_get_rbio(srv), buf, (int)n), (int)n);
		if (r != 0)
			return r;
		(void)SSL_do_handshake(srv);
		ERR_clear_error();
		int m;
		while ((m = BIO_read(SSL_get_wbio(srv), buf, sizeof buf)) > 0)
			ck_assert_int_eq(tls_client_feed(cli, buf, (size_t)m), 0);
	}
	ck_abort_msg("the handshake did not end in 20 rounds");
	return -1;
}

/* A client for `host` verifying against `cafile` (NULL: insecure); returns
 * what handshake_pair returned, and when it was done, checks that bytes go
 * through both ways. */
static int try_handshake(const struct pki *p, const char *cafile, const char *host, char *why,
			 size_t whylen)
{
	struct tls_client_opts o = {cafile, cafile == NULL, NULL, NULL};
	char err[256];
	SSL_CTX *ctx = tls_client_ctx_new(&o, err, sizeof err);
	ck_assert_msg(ctx != NULL, "%s", err);
	SSL *cli = tls_client_new(ctx, host, err, sizeof err);
	ck_assert_msg(cli != NULL, "%s", err);
	SSL *srv = server_new(p);
	int r = handshake_pair(cli, srv, why, whylen);
	if (r == 1) {
		uint8_t buf[4096];
		char e[128];
		ck_assert_int_eq(tls_client_write(cli, "GET /", 5, e, sizeof e), 0);
		size_t n = tls_client_take_out(cli, buf, sizeof buf);
		ck_assert_uint_gt(n, 5);                   /* a record, not plaintext */
		BIO_write(SSL_get_rbio(srv), buf, (int)n);
		ck_assert_int_eq(SSL_read(srv, buf, sizeof buf), 5);
		ck_assert_mem_eq(buf, "GET /", 5);
		ck_assert_int_eq(SSL_write(srv, "101", 3), 3);
		int m = BIO_read(SSL_get_wbio(srv), buf, sizeof buf);
		ck_assert_int_gt(m, 0);
		ck_assert_int_eq(tls_client_feed(cli, buf, (size_t)m), 0);
		/* TLS 1.3's session tickets come first: they give no bytes */
		char plain[16];
		ck_assert_int_eq(tls_client_read(cli, plain, sizeof plain, e, sizeof e), 3);
		ck_assert_mem_eq(plain, "101", 3);
		ck_assert_int_eq(tls_client_read(cli, plain, sizeof plain, e, sizeof e), 0);
	}
	tls_client_free(cli);
	SSL_free(srv);
	tls_client_ctx_free(ctx);
	ck_assert_uint_eq(ERR_peek_error(), 0);    /* nothing left for the next one */
	return r;
}

START_TEST(tls_verifies_the_certificate_and_its_ip_address)
{
	struct pki p;
	char why[200] = "";
	pki_make(&p, "bench test CA");
	ck_assert_int_eq(try_handshake(&p, p.cafile, "127.0.0.1", why, sizeof why), 1);
	ck_assert_int_eq(try_handshake(&p, p.cafile, "127.0.0.2", why, sizeof why), -1);
	ck_assert_str_eq(why, "certificate verify failed (IP address mismatch)");
	ck_assert_int_eq(try_handshake(&p, p.cafile, "localhost", why, sizeof why), -1);
	ck_assert_str_eq(why, "certificate verify failed (hostname mismatch)");
	pki_free(&p);
}
END_TEST

START_TEST(tls_refuses_a_certificate_of_another_ca)
{
	struct pki p, other;
	char why[200] = "";
	pki_make(&p, "bench test CA");
	pki_make(&other, "another CA");
	ck_assert_int_eq(try_handshake(&p, other.cafile, "127.0.0.1", why, sizeof why), -1);
	ck_assert_str_eq(why, "certificate verify failed (unable to get local issuer certificate)");
	pki_free(&other);
	pki_free(&p);
}
END_TEST

START_TEST(tls_insecure_verifies_nothing)
{
	struct pki p;
	char why[200] = "";
	pki_make(&p, "bench test CA");
	ck_assert_int_eq(try_handshake(&p, NULL, "localhost", why, sizeof why), 1);
	pki_free(&p);
}
END_TEST

START_TEST(tls_a_server_without_tls_is_named)
{
	char err[256], why[200];
	struct tls_client_opts o = {NULL, 1, NULL, NULL};
	SSL_CTX *ctx = tls_client_ctx_new(&o, err, sizeof err);
	ck_assert_ptr_nonnull(ctx);
	SSL *cli = tls_client_new(ctx, "127.0.0.1", err, sizeof err);
	ck_assert_int_eq(tls_client_handshake(cli, why, sizeof why), 0);
	const char *http = "HTTP/1.1 400 Bad Request\r\n\r\n";
	ck_assert_int_eq(tls_client_feed(cli, http, strlen(http)), 0);
	ck_assert_int_eq(tls_client_handshake(cli, why, sizeof why), -1);
	ck_assert_str_eq(why, "wrong version number");
	tls_client_free(cli);
	tls_client_ctx_free(ctx);
}
END_TEST

START_TEST(tls_context_errors_name_the_option_and_the_file)
{
	char err[256];
	struct tls_client_opts o = {"/nonexistent/ca.pem", 0, NULL, NULL};
	ck_assert_ptr_null(tls_client_ctx_new(&o, err, sizeof err));
	ck_assert_str_eq(err, "--cafile /nonexistent/ca.pem: No such file or directory");
	struct tls_client_opts c = {NULL, 1, "/nonexistent/c.pem", "/nonexistent/k.pem"};
	ck_assert_ptr_null(tls_client_ctx_new(&c, err, sizeof err));
	ck_assert_str_eq(err, "--cert /nonexistent/c.pem: No such file or directory");
	ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* ---- statistics --------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

START_TEST(histogram_buckets_are_contiguous)
{
	ck_assert_uint_eq(hist_bucket_of(0), 0);
	ck_assert_uint_eq(hist_bucket_of(31), 31);
	ck_assert_uint_eq(hist_bucket_of(32), 32);
	ck_assert_uint_eq(hist_bucket_of(UINT64_MAX), HIST_BUCKETS - 1);
	ck_assert(hist_bucket_top(HIST_BUCKETS - 1) == UINT64_MAX);
	for (unsigned b = 0; b + 1 < HIST_BUCKETS; b++) {
		uint64_t top = hist_bucket_top(b);
		ck_assert_uint_eq(hist_bucket_of(top), b);
		ck_assert_uint_eq(hist_bucket_of(top + 1), b + 1);
	}
}
END_TEST

START_TEST(percentiles_match_exact_ones_within_the_bucket_width)
{
	enum { N = 100000 };
	static uint64_t v[N];
	static struct hist h;
	hist_reset(&h);
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < N; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* latencies from 1 us to about 1 s, log-spread */
		v[i] = 1000ull << (x % 20) | (x >> 40) % 1000;
		hist_add(&h, v[i]);
	}
	qsort(v, N, sizeof v[0], cmp_u64);
	const double pcts[] = {1, 50, 90, 99, 99.9, 100};
	for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
		size_t rank = (size_t)(pcts[i] / 100.0 * N + 0.999999);
		uint64_t exact = v[rank - 1], got = hist_percentile(&h, pcts[i]);
		ck_assert_msg(got >= exact && (double)got <= (double)exact * (1.0 + 1.0 / HIST_SUB),
			      "p%g: histogram %llu, exact %llu", pcts[i], (unsigned long long)got,
			      (unsigned long long)exact);
	}
	ck_assert_uint_eq(hist_percentile(&h, 100), v[N - 1]);
	ck_assert_uint_eq(h.min, v[0]);
	ck_assert_uint_eq(h.count, N);
}
END_TEST

START_TEST(percentiles_of_small_known_data)
{
	struct hist *h = malloc(sizeof *h);
	hist_reset(h);
	ck_assert_uint_eq(hist_percentile(h, 50), 0);
	for (uint64_t i = 1; i <= 10; i++)
		hist_add(h, i);
	ck_assert_uint_eq(hist_percentile(h, 50), 5);
	ck_assert_uint_eq(hist_percentile(h, 90), 9);
	ck_assert_uint_eq(hist_percentile(h, 99), 10);
	ck_assert_uint_eq(hist_percentile(h, 10), 1);
	free(h);
}
END_TEST

START_TEST(sequence_tracking_tells_loss_duplicates_and_order_apart)
{
	struct seq_track t = {0, 0};
	struct counters c;
	memset(&c, 0, sizeof c);
	c.expected = 10;
	/* 1 2 4 3 3 6 7 8 10: 5 and 9 lost, 3 late, 3 again a duplicate */
	const uint64_t seqs[] = {1, 2, 4, 3, 3, 6, 7, 8, 10};
	const enum seq_verdict want[] = {SEQ_IN_ORDER, SEQ_IN_ORDER, SEQ_IN_ORDER, SEQ_LATE,
					 SEQ_DUPLICATE, SEQ_IN_ORDER, SEQ_IN_ORDER, SEQ_IN_ORDER,
					 SEQ_IN_ORDER};
	for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
		enum seq_verdict v = seq_track_see(&t, seqs[i]);
		ck_assert_int_eq(v, want[i]);
		counters_see(&c, v);
	}
	ck_assert_uint_eq(c.received, 9);
	ck_assert_uint_eq(c.duplicates, 1);
	ck_assert_uint_eq(c.out_of_order, 1);
	ck_assert_uint_eq(counters_lost(&c), 2);
	/* the same message again after the window: too old to tell */
	ck_assert_int_eq(seq_track_see(&t, 10 + SEQ_WINDOW), SEQ_IN_ORDER);
	ck_assert_int_eq(seq_track_see(&t, 10), SEQ_TOO_OLD);
	ck_assert_int_eq(seq_track_see(&t, 11), SEQ_LATE);
	ck_assert_int_eq(seq_track_see(&t, 11), SEQ_DUPLICATE);
	/* a jump past the window forgets what was seen */
	ck_assert_int_eq(seq_track_see(&t, 1000), SEQ_IN_ORDER);
	ck_assert_int_eq(seq_track_see(&t, 999), SEQ_LATE);
	/* more received than expected is no negative loss */
	c.expected = 3;
	ck_assert_uint_eq(counters_lost(&c), 0);
}
END_TEST

static Suite *bench_suite(void)
{
	Suite *s = suite_create("bench");
	TCase *f = tcase_create("frames");
	tcase_add_test(f, encode_lengths_7_16_64_bits);
	tcase_add_test(f, encode_refuses_a_small_buffer);
	tcase_add_test(f, parse_lengths_7_16_64_bits);
	tcase_add_test(f, parse_partial_frames_byte_by_byte);
	tcase_add_test(f, parse_fragments_with_control_frames_between);
	tcase_add_test(f, parse_fragments_split_across_reads);
	tcase_add_test(f, parse_refuses_protocol_errors);
	tcase_add_test(f, parse_stops_when_the_callback_says_so);
	tcase_add_test(f, accept_matches_rfc_6455_example);
	tcase_add_test(f, response_check_needs_101_and_the_right_accept);
	suite_add_tcase(s, f);
	TCase *u = tcase_create("urls");
	tcase_add_test(u, url_parts_and_default_port);
	tcase_add_test(u, url_query_is_appended);
	tcase_add_test(u, url_refusals_say_why);
	tcase_add_test(u, url_wss_defaults_to_443_and_keeps_the_name);
	suite_add_tcase(s, u);
	TCase *t = tcase_create("tls");
	tcase_add_test(t, tls_verifies_the_certificate_and_its_ip_address);
	tcase_add_test(t, tls_refuses_a_certificate_of_another_ca);
	tcase_add_test(t, tls_insecure_verifies_nothing);
	tcase_add_test(t, tls_a_server_without_tls_is_named);
	tcase_add_test(t, tls_context_errors_name_the_option_and_the_file);
	suite_add_tcase(s, t);
	TCase *st = tcase_create("stats");
	tcase_add_test(st, histogram_buckets_are_contiguous);
	tcase_add_test(st, percentiles_match_exact_ones_within_the_bucket_width);
	tcase_add_test(st, percentiles_of_small_known_data);
	tcase_add_test(st, sequence_tracking_tells_loss_duplicates_and_order_apart);
	suite_add_tcase(s, st);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bench_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
