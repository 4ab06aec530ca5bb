/* Where a connection goes: a ws:// or wss:// URL taken apart, with the
 * address to connect to. Kept apart from conn.c so that the parsing is
 * unit-tested.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_BENCH_TARGET_H
#define CONFAB_BENCH_TARGET_H

#include <netinet/in.h>
#include <stddef.h>

struct ssl_ctx_st;

/* ws://HOST:PORT/PATH or wss://HOST:PORT/PATH parsed; HOST is an IPv4
 * address or "localhost"; PORT defaults to 80 (ws) or 443 (wss). */
struct target {
	char url[256];
	char hostport[96];        /* as written: the Host header */
	char host[64];            /* as written: what a certificate must name */
	char path[160];           /* path and query, e.g. /ws?token=... */
	struct sockaddr_in addr;
	int tls;                  /* wss:// */
	/* wss://: the run's one TLS context (tls_client.h), set by whoever
	 * parsed the URL; the target borrows it. */
	struct ssl_ctx_st *tls_ctx;
};

/* Parses `url` and appends `query` (e.g. "token=abc", may be NULL) to its
 * query string. Returns 0 or -1 with a message in `err`. */
int target_parse(struct target *t, const char *url, const char *query, char *err,
		 size_t errlen);

#endif
