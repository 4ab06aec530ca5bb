/* The PROXY protocol header's parser (ws_proxy.c): pure, no socket, no
 * lws; reception (ws_head.c) feeds it what a trusted balancer sent first,
 * the unit tests what they build.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_WS_PROXY_H
#define CONFAB_WS_PROXY_H

#include <stddef.h>
#include <stdint.h>

/* The client's address a header names: family AF_INET or AF_INET6 and its
 * bytes, or family 0 when the header names none (v2 LOCAL, v1 UNKNOWN, a
 * family other than TCP: the balancer's own connection). */
typedef struct ws_proxy_client {
	int family;
	uint8_t bytes[16];
} ws_proxy_client;

/* The header at the start of the `len` bytes of buf, v1 or v2, at most
 * `max` bytes long: 1 with *client and *used (its length, TLVs included);
 * 0 while it is incomplete; -1 when buf does not begin with a valid
 * header. */
int ws_proxy_header(const void *buf, size_t len, size_t max, ws_proxy_client *client,
		    size_t *used);

#endif
