/* Settings both Redis backplanes read the same way (rsettings.h): one
 * implementation of each rule, so that `[redis]` and `[redis_cluster]`
 * accept and refuse exactly the same values.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "rsettings.h"

/* A decimal integer in [min, max]. */
static int parse_long(const char *v, long min, long max, long *out)
{
	char *end;
	long n;

	if (v == NULL || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

int rset_long(const rset *r, const char *key, long def, long min, long max, const char *unit,
	      long *out)
{
	const char *v = r->host->config_get(r->ctx, key);

	*out = def;
	if (v == NULL)
		return 0;
	if (parse_long(v, min, max, out) != 0) {
		r->host->config_error(r->ctx, key, "'%s' is not a %s from %ld to %ld", v, unit, min,
				      max);
		return CONFAB_EINVAL;
	}
	return 0;
}

int rset_bool(const rset *r, const char *key, bool def, bool *out)
{
	const char *v = r->host->config_get(r->ctx, key);

	*out = def;
	if (v == NULL || *v == '\0')
		return 0;
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") ||
	    !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") ||
		 !strcmp(v, "0"))
		*out = false;
	else {
		r->host->config_error(r->ctx, key, "'%s' is not yes or no", v);
		return CONFAB_EINVAL;
	}
	return 0;
}

const char *rset_text(const rset *r, const char *key)
{
	const char *v = r->host->config_get(r->ctx, key);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* A DNS name as resolvers take it: dot-separated labels of 1 to 63
 * letters, digits, '-' (not first or last) or '_' (container platforms
 * name services so), 253 characters at most, one final dot allowed. What
 * is refused here could only fail later, at every reconnect, with a less
 * clear line. */
static bool host_name_ok(const char *v)
{
	size_t n = strlen(v), label = 0;

	if (n > 0 && v[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? v[i] : '.';

		if (c == '.') {
			if (label == 0 || v[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '_' || (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

bool rset_host_ok(const char *v, size_t size)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return strlen(v) < size &&
	       (inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1 ||
		host_name_ok(v));
}

int rset_parse_addr(const char *text, size_t len, int default_port, rset_addr *out)
{
	char buf[300];
	char *host = buf, *colon;
	long port = default_port;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return -1;
		*close = '\0';
		host = buf + 1;
		if (close[1] == ':' && parse_long(close + 2, 1, 65535, &port) != 0)
			return -1;
	} else if ((colon = strchr(buf, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		*colon = '\0';
		if (parse_long(colon + 1, 1, 65535, &port) != 0)
			return -1;
	} /* else a name, an IPv4 address, or an IPv6 address without a port */
	if (port <= 0 || !rset_host_ok(host, sizeof(out->host)))
		return -1;
	memcpy(out->host, host, strlen(host) + 1);  /* rset_host_ok: it fits */
	out->port = (int)port;
	return 0;
}

int rset_addrs(const rset *r, const char *key, int default_port, rset_addr *out, size_t max,
	       size_t *n)
{
	const char *p = r->host->config_get(r->ctx, key);

	*n = 0;
	if (p == NULL)
		return 0;
	while (*p != '\0') {
		const char *end = strchr(p, ','), *a, *b;

		if (end == NULL)
			end = p + strlen(p);
		for (a = p; a < end && (*a == ' ' || *a == '\t'); a++)
			;
		for (b = end; b > a && (b[-1] == ' ' || b[-1] == '\t'); b--)
			;
		if (*n == max) {
			r->host->config_error(r->ctx, key, "more than %zu addresses", max);
			return CONFAB_EINVAL;
		}
		if (rset_parse_addr(a, (size_t)(b - a), default_port, &out[*n]) != 0) {
			r->host->config_error(r->ctx, key, "'%.*s' is not HOST:PORT (an IP address "
					      "or a host name, and a port; [v6]:port for IPv6)",
					      (int)(b - a), a);
			return CONFAB_EINVAL;
		}
		(*n)++;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

int rset_tls(const rset *r, rtls_config **out, bool *no_verify)
{
	bool on, verify;
	rtls_opts o = {0};
	char why[400];

	*out = NULL;
	*no_verify = false;
	if (rset_bool(r, "tls", false, &on) != 0 || rset_bool(r, "tls_verify", true, &verify) != 0)
		return CONFAB_EINVAL;
	/* Read even when tls is off, so that they are not reported as
	 * unknown keys: a config may keep them with tls = no. */
	o.ca_file = rset_text(r, "tls_ca_file");
	o.cert_file = rset_text(r, "tls_cert_file");
	o.key_file = rset_text(r, "tls_key_file");
	o.server_name = rset_text(r, "tls_server_name");
	o.no_verify = !verify;
	if (!on)
		return 0;
	*out = rtls_config_new(&o, why, sizeof(why));
	if (*out == NULL) {
		/* Name the key the line is about. */
		const char *key = strstr(why, "CA file") ? "tls_ca_file" :
				  strstr(why, "key file") && !strstr(why, "certificate file") ?
				  "tls_key_file" : o.cert_file != NULL ? "tls_cert_file" : "tls";

		r->host->config_error(r->ctx, key, "%s", why);
		return CONFAB_EINVAL;
	}
	*no_verify = !verify;
	return 0;
}
