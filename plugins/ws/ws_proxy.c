/* The PROXY protocol ([ws] proxy_protocol): a load balancer in front of
 * the node (HAProxy's `send-proxy` or `send-proxy-v2`) begins each
 * connection with a header naming the client's address. Without it every
 * client would come from the balancer: one address for the per-address
 * limits (max_connections_per_address, the login throttles), the logs
 * and the auth plugins.
 *
 * Only the balancers listed are believed, and a connection from one of
 * them must begin with a header (anyone else could name any address).
 * Reception (ws_head.c) reads the header before the request; the client's
 * address it names replaces the balancer's (ws_conn_readdress), and the
 * per-address limit is checked then, for that address. A header without
 * a client address (v2 LOCAL, v1 UNKNOWN: HAProxy's own health checks)
 * leaves the balancer's.
 *
 * The two formats (www.haproxy.org/download/2.0/doc/proxy-protocol.txt):
 *   v1: "PROXY TCP4 SRC DST SPORT DPORT\r\n" (or TCP6, or UNKNOWN ...),
 *       at most 107 bytes;
 *   v2: a 12-byte signature, a version/command byte, a family byte, a
 *       16-bit length, then the addresses (and TLVs, skipped).
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "ws_proxy.h"

#define V1_MAX 107
#define V2_HEAD 16

static const char v1_sig[] = "PROXY ";
static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

/* Whether the first `len` bytes of p agree with the `n` bytes of sig. */
static bool starts_like(const void *p, size_t len, const void *sig, size_t n)
{
	return memcmp(p, sig, len < n ? len : n) == 0;
}

/* "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n": 1 and *got; 0 while incomplete;
 * -1 when malformed. */
static int parse_v1(const char *p, size_t len, ws_proxy_client *client, size_t *used)
{
	char line[V1_MAX + 1], proto[8], src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	const char *end = memchr(p, '\n', len < V1_MAX ? len : V1_MAX);
	unsigned sport, dport;
	size_t n;
	char extra;

	if (end == NULL)
		return len < V1_MAX ? 0 : -1;
	n = (size_t)(end - p) + 1;
	if (n < 2 || p[n - 2] != '\r')
		return -1;
	memcpy(line, p, n - 2);
	line[n - 2] = '\0';
	*used = n;
	if (strncmp(line, "PROXY UNKNOWN", 13) == 0)
		return 1;      /* the balancer's own connection */
	if (sscanf(line, "PROXY %7s %45s %45s %5u %5u%c", proto, src, dst, &sport, &dport,
		   &extra) != 5 || sport > 65535 || dport > 65535)
		return -1;
	memset(client, 0, sizeof(*client));
	if (strcmp(proto, "TCP4") == 0)
		client->family = AF_INET;
	else if (strcmp(proto, "TCP6") == 0)
		client->family = AF_INET6;
	else
		return -1;
	if (inet_pton(client->family, src, client->bytes) != 1) {
		client->family = 0;
		return -1;
	}
	return 1;
}

/* The binary header: as parse_v1. */
static int parse_v2(const unsigned char *p, size_t len, size_t max, ws_proxy_client *client,
		    size_t *used)
{
	size_t body;

	if (len < V2_HEAD)
		return 0;
	body = (size_t)p[14] << 8 | p[15];
	if ((p[12] & 0xF0) != 0x20 || (p[12] & 0x0F) > 1 || V2_HEAD + body > max)
		return -1;
	if (len < V2_HEAD + body)
		return 0;
	*used = V2_HEAD + body;
	if ((p[12] & 0x0F) == 0)
		return 1;      /* LOCAL: the balancer's own connection */
	switch (p[13]) {
	case 0x11:         /* TCP over IPv4: src, dst, sport, dport */
		if (body < 12)
			return -1;
		client->family = AF_INET;
		memcpy(client->bytes, p + V2_HEAD, 4);
		break;
	case 0x21:         /* TCP over IPv6 */
		if (body < 36)
			return -1;
		client->family = AF_INET6;
		memcpy(client->bytes, p + V2_HEAD, 16);
		break;
	default:           /* UNSPEC, UDP, Unix: no client address to take */
		break;
	}
	return 1;
}

int ws_proxy_header(const void *buf, size_t len, size_t max, ws_proxy_client *client,
		    size_t *used)
{
	memset(client, 0, sizeof(*client));
	if (len == 0)
		return 0;
	if (starts_like(buf, len, v2_sig, sizeof(v2_sig)))
		return len < sizeof(v2_sig) ? 0 : parse_v2(buf, len, max, client, used);
	if (starts_like(buf, len, v1_sig, sizeof(v1_sig) - 1))
		return len < sizeof(v1_sig) - 1 ? 0 : parse_v1(buf, len, client, used);
	return -1;
}
