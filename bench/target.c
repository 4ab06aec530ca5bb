/* URL parsing: see target.h.
 * SPDX-License-Identifier: MIT
 */
#include "target.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <uv.h>

int target_parse(struct target *t, const char *url, const char *query, char *err,
		 size_t errlen)
{
	memset(t, 0, sizeof *t);
	snprintf(t->url, sizeof t->url, "%s", url);
	const char *h;
	int port = 80;
	if (strncmp(url, "ws://", 5) == 0) {
		h = url + 5;
	} else if (strncmp(url, "wss://", 6) == 0) {
		h = url + 6;
		port = 443;
		t->tls = 1;
	} else {
		snprintf(err, errlen, "%s: only ws:// and wss:// URLs are supported", url);
		return -1;
	}
	const char *slash = strchr(h, '/');
	size_t hl = slash ? (size_t)(slash - h) : strlen(h);
	if (hl == 0 || hl >= sizeof t->hostport) {
		snprintf(err, errlen, "%s: bad host", url);
		return -1;
	}
	memcpy(t->hostport, h, hl);
	const char *colon = memchr(t->hostport, ':', hl);
	char host[sizeof t->host];
	size_t nl = colon ? (size_t)(colon - t->hostport) : hl;
	if (nl >= sizeof host) {
		snprintf(err, errlen, "%s: bad host", url);
		return -1;
	}
	memcpy(host, t->hostport, nl);
	host[nl] = '\0';
	memcpy(t->host, host, nl + 1);
	if (colon) {
		char *end;
		long p = strtol(colon + 1, &end, 10);
		if (*end || p <= 0 || p > 65535) {
			snprintf(err, errlen, "%s: bad port", url);
			return -1;
		}
		port = (int)p;
	}
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	if (uv_ip4_addr(host, port, &t->addr) != 0) {
		snprintf(err, errlen, "%s: the host must be an IPv4 address", url);
		return -1;
	}
	int n;
	if (query && *query)
		n = snprintf(t->path, sizeof t->path, "%s%s%s", slash ? slash : "/",
			     slash && strchr(slash, '?') ? "&" : "?", query);
	else
		n = snprintf(t->path, sizeof t->path, "%s", slash ? slash : "/");
	if (n < 0 || (size_t)n >= sizeof t->path) {
		snprintf(err, errlen, "%s: path too long", url);
		return -1;
	}
	return 0;
}
