/* Connections per remote address, counted from accept to close: every TCP
 * connection, whether it is an HTTP request, a handshake waiting for its
 * admission or a WebSocket session ([broker]
 * max_connections_per_address).
 *
 * The addresses are a client's choice (an IPv6 client has billions), so
 * they are kept in glibc's tsearch tree (red-black: O(log n) whatever the
 * keys), not in a hash table a client could fill with collisions. An
 * address is in the tree only while it has connections.
 *
 * SPDX-License-Identifier: MIT
 */
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "ws.h"

typedef struct ws_addr_count {
	ws_addr key;
	size_t n;
} ws_addr_count;

static int addr_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(ws_addr));
}

void ws_addr_from(ws_addr *a, const struct sockaddr *sa)
{
	memset(a, 0, sizeof(*a));
	a->family = (uint8_t)sa->sa_family;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(a->bytes, &in6->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(a->bytes, &in->sin_addr, 4);
	}
}

const char *ws_addr_text(const ws_addr *a, char *buf, size_t len)
{
	if ((a->family != AF_INET && a->family != AF_INET6) ||
	    inet_ntop(a->family, a->bytes, buf, (socklen_t)len) == NULL) {
		if (len > 0)
			buf[0] = '\0';
	}
	return buf;
}

size_t ws_addr_count_of(ws_state *s, const ws_addr *a)
{
	void *found = tfind(a, &s->addrs, addr_cmp);

	return found != NULL ? (*(ws_addr_count **)found)->n : 0;
}

int ws_addr_add(ws_state *s, const ws_addr *a)
{
	ws_addr_count *c = malloc(sizeof(*c));
	void *found;

	if (c == NULL)
		return CONFAB_ENOMEM;
	c->key = *a;
	c->n = 0;
	found = tsearch(c, &s->addrs, addr_cmp);
	if (found == NULL) {
		free(c);
		return CONFAB_ENOMEM;
	}
	if (*(ws_addr_count **)found != c)
		free(c);
	(*(ws_addr_count **)found)->n++;
	return 0;
}

void ws_addr_remove(ws_state *s, const ws_addr *a)
{
	void *found = tfind(a, &s->addrs, addr_cmp);
	ws_addr_count *c;

	if (found == NULL)
		return;
	c = *(ws_addr_count **)found;
	if (--c->n > 0)
		return;
	tdelete(a, &s->addrs, addr_cmp);
	free(c);
}

void ws_addr_end(ws_state *s)
{
	tdestroy(s->addrs, free);
	s->addrs = NULL;
}

bool ws_addr_trusted_proxy(const ws_state *s, const ws_addr *a)
{
	for (size_t i = 0; i < s->n_proxies; i++)
		if (memcmp(&s->proxies[i], a, sizeof(*a)) == 0)
			return true;
	return false;
}
