/* confab plugin SDK — reading the request's query string.
 *
 * confab_request.query is the raw query ("a=1&user=al%40ce"). Auth plugins
 * look values up in it; this header-only helper does it once for all of
 * them. It is not part of the ABI: static inline code compiled into the
 * plugin, calling nothing in the broker.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_QUERY_H
#define CONFAB_QUERY_H

#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline int confab_query_hexval_(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;  /* ASCII lower case */
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The value of `key` in the raw query `query` (may be NULL), percent-
 * decoded into out[size] and NUL-terminated. Returns the decoded length
 * (0 for "key=" with nothing after it), CONFAB_QUERY_ABSENT (-1) when the
 * key is not there, or CONFAB_QUERY_BAD (-2) for a bad escape, a NUL byte
 * or a value that does not fit. The first occurrence of the key counts.
 * `+` is kept as is (lws turns a client's '+' into "%20" already). */
#define CONFAB_QUERY_ABSENT (-1)
#define CONFAB_QUERY_BAD (-2)
static inline long confab_query_param(const char *query, const char *key, char *out,
				      size_t size)
{
	size_t klen = strlen(key), n = 0;
	const char *p = query;

	/* Each pair starts at the beginning or just after an '&'. */
	while (p != NULL && !(strncmp(p, key, klen) == 0 && p[klen] == '=')) {
		p = strchr(p, '&');
		if (p != NULL)
			p++;
	}
	if (p == NULL || size == 0)
		return p == NULL ? CONFAB_QUERY_ABSENT : CONFAB_QUERY_BAD;
	for (p += klen + 1; *p != '\0' && *p != '&'; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			int hi = confab_query_hexval_(p[1]);
			int lo = hi < 0 ? -1 : confab_query_hexval_(p[2]);
			if (lo < 0)
				return CONFAB_QUERY_BAD;
			c = hi * 16 + lo;
			p += 2;
		}
		if (c == 0 || n + 1 >= size)
			return CONFAB_QUERY_BAD;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return (long)n;
}

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_QUERY_H */
