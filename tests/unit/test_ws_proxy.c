/* Unit tests for the `ws` plugin's PROXY protocol parser (ws_proxy.c):
 * v1 and v2 headers give the client's address and their length, in any
 * split; headers that name no client give none; anything malformed is
 * refused, never read past.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "ws_proxy.h"

#include "unit_main.h"

#define MAX 8192

static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

/* A v2 header into out: signature, ver_cmd, family, then `body` bytes of
 * body (addresses, TLVs) copied from `b`. Its size. */
static size_t put_v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam,
		     const void *b, size_t body)
{
	memcpy(out, v2_sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (unsigned char)(body >> 8);
	out[15] = (unsigned char)body;
	if (body > 0)
		memcpy(out + 16, b, body);
	return 16 + body;
}

static int parse(const void *buf, size_t len, ws_proxy_client *c, size_t *used)
{
	*used = 0;
	return ws_proxy_header(buf, len, MAX, c, used);
}

START_TEST(v1_tcp4_and_tcp6_give_the_source_and_the_header_length)
{
	const char *h4 = "PROXY TCP4 192.0.2.7 10.0.0.11 56324 8080\r\nGET /ws HTTP/1.1\r\n";
	const char *h6 = "PROXY TCP6 2001:db8::7 2001:db8::11 1 65535\r\n";
	ws_proxy_client c;
	unsigned char want[16];
	size_t used;

	ck_assert_int_eq(parse(h4, strlen(h4), &c, &used), 1);
	ck_assert_uint_eq(used, strlen("PROXY TCP4 192.0.2.7 10.0.0.11 56324 8080\r\n"));
	ck_assert_int_eq(c.family, AF_INET);
	inet_pton(AF_INET, "192.0.2.7", want);
	ck_assert_mem_eq(c.bytes, want, 4);

	ck_assert_int_eq(parse(h6, strlen(h6), &c, &used), 1);
	ck_assert_uint_eq(used, strlen(h6));
	ck_assert_int_eq(c.family, AF_INET6);
	inet_pton(AF_INET6, "2001:db8::7", want);
	ck_assert_mem_eq(c.bytes, want, 16);
}
END_TEST

START_TEST(v1_unknown_names_no_client)
{
	const char *h = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nGET";
	ws_proxy_client c;
	size_t used;

	ck_assert_int_eq(parse(h, strlen(h), &c, &used), 1);
	ck_assert_int_eq(c.family, 0);
	ck_assert_uint_eq(used, strlen(h) - 3);
}
END_TEST

START_TEST(a_v1_header_in_pieces_waits_until_its_line_ends)
{
	const char *h = "PROXY TCP4 192.0.2.7 10.0.0.11 56324 8080\r\n";
	ws_proxy_client c;
	size_t used;

	for (size_t n = 1; n < strlen(h); n++)
		ck_assert_msg(parse(h, n, &c, &used) == 0, "%zu bytes", n);
	ck_assert_int_eq(parse(h, strlen(h), &c, &used), 1);
}
END_TEST

START_TEST(malformed_v1_headers_are_refused)
{
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.700 10.0.0.11 1 2\r\n",     /* not an address */
		"PROXY TCP4 2001:db8::7 10.0.0.11 1 2\r\n",     /* family mismatch */
		"PROXY TCP5 192.0.2.7 10.0.0.11 1 2\r\n",       /* no such protocol */
		"PROXY TCP4 192.0.2.7 10.0.0.11 1\r\n",         /* a port missing */
		"PROXY TCP4 192.0.2.7 10.0.0.11 1 70000\r\n",   /* port range */
		"PROXY TCP4 192.0.2.7 10.0.0.11 1 2 x\r\n",     /* trailing field */
		"PROXY TCP4 192.0.2.7 10.0.0.11 1 2\n",         /* LF without CR */
		"GET /ws HTTP/1.1\r\n\r\n",                     /* no header at all */
		"proxy TCP4 192.0.2.7 10.0.0.11 1 2\r\n",       /* case matters */
	};
	char longline[200];
	ws_proxy_client c;
	size_t used;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		ck_assert_msg(parse(bad[i], strlen(bad[i]), &c, &used) == -1, "%s", bad[i]);
	/* 107 bytes without a line end: longer than any v1 header */
	memset(longline, ' ', sizeof(longline));
	memcpy(longline, "PROXY TCP4 ", 11);
	ck_assert_int_eq(parse(longline, 106, &c, &used), 0);
	ck_assert_int_eq(parse(longline, 107, &c, &used), -1);
}
END_TEST

START_TEST(v2_proxy_gives_the_source_past_tlvs_and_local_names_none)
{
	unsigned char buf[128], body4[12 + 7] = { 192, 0, 2, 7, 10, 0, 0, 11, 0xDC, 0x04, 0x1F, 0x90,
						  0x01, 0x00, 0x04, 'h', 't', 't', 'p' };
	unsigned char body6[36] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 7 };
	ws_proxy_client c;
	size_t n, used;

	n = put_v2(buf, 0x21, 0x11, body4, sizeof(body4));
	memcpy(buf + n, "GET", 3);
	ck_assert_int_eq(parse(buf, n + 3, &c, &used), 1);
	ck_assert_uint_eq(used, n);
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_mem_eq(c.bytes, body4, 4);

	n = put_v2(buf, 0x21, 0x21, body6, sizeof(body6));
	ck_assert_int_eq(parse(buf, n, &c, &used), 1);
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_mem_eq(c.bytes, body6, 16);

	n = put_v2(buf, 0x20, 0x00, NULL, 0);   /* LOCAL: a health check */
	ck_assert_int_eq(parse(buf, n, &c, &used), 1);
	ck_assert_uint_eq(used, 16);
	ck_assert_int_eq(c.family, 0);

	n = put_v2(buf, 0x21, 0x31, body6, sizeof(body6));   /* a Unix socket */
	ck_assert_int_eq(parse(buf, n, &c, &used), 1);
	ck_assert_int_eq(c.family, 0);
}
END_TEST

START_TEST(a_v2_header_in_pieces_waits_until_whole)
{
	unsigned char buf[64], body4[12] = { 192, 0, 2, 7 };
	size_t n = put_v2(buf, 0x21, 0x11, body4, sizeof(body4)), used;
	ws_proxy_client c;

	for (size_t k = 1; k < n; k++)
		ck_assert_msg(parse(buf, k, &c, &used) == 0, "%zu bytes", k);
	ck_assert_int_eq(parse(buf, n, &c, &used), 1);
}
END_TEST

START_TEST(malformed_v2_headers_are_refused)
{
	unsigned char buf[64], body[36] = { 0 };
	ws_proxy_client c;
	size_t n, used;

	n = put_v2(buf, 0x11, 0x11, body, 12);          /* version 1 in binary */
	ck_assert_int_eq(parse(buf, n, &c, &used), -1);
	n = put_v2(buf, 0x22, 0x11, body, 12);          /* command 2 */
	ck_assert_int_eq(parse(buf, n, &c, &used), -1);
	n = put_v2(buf, 0x21, 0x11, body, 8);           /* IPv4 body too short */
	ck_assert_int_eq(parse(buf, n, &c, &used), -1);
	n = put_v2(buf, 0x21, 0x21, body, 20);          /* IPv6 body too short */
	ck_assert_int_eq(parse(buf, n, &c, &used), -1);
	/* longer than the caller takes: refused before it is all there */
	put_v2(buf, 0x21, 0x11, body, 12);
	buf[14] = 0x40;
	buf[15] = 0x00;
	ck_assert_int_eq(parse(buf, 16, &c, &used), -1);
	/* a signature that goes wrong half way */
	memcpy(buf, v2_sig, 12);
	buf[7] = 'X';
	ck_assert_int_eq(parse(buf, 12, &c, &used), -1);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		v1_tcp4_and_tcp6_give_the_source_and_the_header_length,
		v1_unknown_names_no_client,
		a_v1_header_in_pieces_waits_until_its_line_ends,
		malformed_v1_headers_are_refused,
		v2_proxy_gives_the_source_past_tlvs_and_local_names_none,
		a_v2_header_in_pieces_waits_until_whole,
		malformed_v2_headers_are_refused,
	};

	return unit_main("ws_proxy", tests, sizeof(tests) / sizeof(*tests), 0);
}
