/* Settings both Redis backplanes read the same way (rsettings.h): one
 * implementation of each rule, so that `[redis]` and `[redis_cluster]`
 * accept and refuse exactly the same values.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <confab/util.h>

#include "rsettings.h"

/* ---- what a reading took ---- */

/* The entry of `key` in r->seen, a new one when it has none yet; NULL
 * when nothing is noted (or the table is full: logged, as it is this
 * code's mistake, and that key's change would go unreported). */
static rset_seen_key *seen_entry(const rset *r, const char *key)
{
	rset_seen *seen = r->seen;
	rset_seen_key *k;

	if (seen == NULL)
		return NULL;
	for (size_t i = 0; i < seen->n; i++)
		if (strcmp(seen->keys[i].key, key) == 0)
			return &seen->keys[i];
	if (seen->n == RSET_SEEN_MAX) {
		r->host->log(r->ctx, CONFAB_LOG_ERROR, "more than %d settings read: a change of "
			     "'%s' would not be reported at a reload", RSET_SEEN_MAX, key);
		return NULL;
	}
	k = &seen->keys[seen->n++];
	memset(k, 0, sizeof(*k));
	k->key = key;
	return k;
}

static void note_text(const rset *r, const char *key, const char *text, bool secret)
{
	rset_seen_key *k = seen_entry(r, key);

	if (k != NULL) {
		k->text = text != NULL ? text : "";
		k->secret = secret;
	}
}

static void note_uint(const rset *r, const char *key, unsigned v)
{
	rset_seen_key *k = seen_entry(r, key);

	if (k != NULL) {
		snprintf(k->num, sizeof(k->num), "%u", v);
		k->text = NULL;
	}
}

static const char *seen_text(const rset_seen_key *k)
{
	return k->text != NULL ? k->text : k->num;
}

static const rset_seen_key *seen_find(const rset_seen *seen, const char *key)
{
	for (size_t i = 0; i < seen->n; i++)
		if (strcmp(seen->keys[i].key, key) == 0)
			return &seen->keys[i];
	return NULL;
}

/* Warns when `key` differs between the two readings; true when it does. */
static bool log_change(const rset *r, const char *key, const rset_seen_key *was,
		       const rset_seen_key *now)
{
	const char *a = was != NULL ? seen_text(was) : "", *b = now != NULL ? seen_text(now) : "";

	if (strcmp(a, b) == 0)
		return false;
	/* The host prefixes the instance's name, which is the section's:
	 * "warn [redis] port changed to ...". */
	if ((was != NULL && was->secret) || (now != NULL && now->secret))
		r->host->log(r->ctx, CONFAB_LOG_WARN, "%s changed: needs a restart", key);
	else
		r->host->log(r->ctx, CONFAB_LOG_WARN, "%s changed to '%s': needs a restart; "
			     "keeping '%s'", key, b, a);
	return true;
}

size_t rset_log_changes(const rset *r, const rset_seen *running, const rset_seen *next)
{
	size_t changed = 0;

	for (size_t i = 0; i < running->n; i++) {
		const char *key = running->keys[i].key;

		changed += log_change(r, key, &running->keys[i], seen_find(next, key));
	}
	for (size_t i = 0; i < next->n; i++) {
		const char *key = next->keys[i].key;

		if (seen_find(running, key) == NULL)
			changed += log_change(r, key, NULL, &next->keys[i]);
	}
	return changed;
}

/* ---- readers ---- */

int rset_uint(const rset *r, const char *key, unsigned def, unsigned min, unsigned max,
	      unsigned *out)
{
	uint64_t v;
	int rc = r->host->config_uint(r->ctx, key, def, min, max, &v);

	*out = rc == 0 ? (unsigned)v : def;
	if (rc == 0)
		note_uint(r, key, *out);
	return rc;
}

int rset_bool(const rset *r, const char *key, bool def, bool *out)
{
	const char *v = r->host->config_get(r->ctx, key);
	int rc = 0;

	/* An empty value keeps the default, as it always has here ("tls ="
	 * in a template): the host's slot would refuse it. */
	if (v != NULL && *v == '\0')
		*out = def;
	else
		rc = r->host->config_bool(r->ctx, key, def, out);
	if (rc == 0)
		note_text(r, key, *out ? "yes" : "no", false);
	return rc;
}

int rset_common_read(const rset *r, unsigned backoff_first_ms, rset_common *out)
{
	uint64_t history, ttl, window;
	unsigned presence_ttl;

	if (rset_uint(r, "presence_ttl", 15, 2, 86400, &presence_ttl) != 0 ||
	    rset_uint(r, "probe_interval_ms", 1000, 50, 600000, &out->probe_interval_ms) != 0 ||
	    rset_uint(r, "probe_timeout_ms", 3000, 100, 600000, &out->probe_timeout_ms) != 0 ||
	    rset_uint(r, "reconnect_max_ms", 5000, backoff_first_ms, 600000,
		      &out->reconnect_max_ms) != 0)
		return CONFAB_EINVAL;
	out->presence_ttl_ms = presence_ttl * 1000;
	/* Beat often enough that a dead node is forgotten within about
	 * presence_ttl + 1 s, whatever the ttl. */
	out->heartbeat_ms = out->presence_ttl_ms / 4 < 1000 ? out->presence_ttl_ms / 4 : 1000;
	/* The broker's own values, its defaults applied: a key it does not
	 * know would be this code's mistake, never the operator's. */
	if (r->host->broker_uint(r->ctx, "history_size", &history) != 0 ||
	    r->host->broker_uint(r->ctx, "room_ttl", &ttl) != 0 ||
	    r->host->broker_uint(r->ctx, "idem_window", &window) != 0) {
		r->host->log(r->ctx, CONFAB_LOG_ERROR, "the broker does not give history_size, "
			     "room_ttl and idem_window");
		return CONFAB_EINVAL;
	}
	out->history_size = (size_t)history;
	out->room_ttl = (unsigned long)ttl;
	out->idem_window = (unsigned long)window;
	return 0;
}

int rset_prefix(const rset *r, bool no_braces, char **out)
{
	enum { PREFIX_MAX = 64 };
	const char *v = r->host->config_get(r->ctx, "prefix");
	bool ok;

	if (v == NULL)
		v = "confab:";
	ok = strlen(v) <= PREFIX_MAX;
	for (const char *p = v; ok && *p; p++)
		ok = *p > ' ' && *p <= '~' && !(no_braces && (*p == '{' || *p == '}'));
	if (!ok) {
		r->host->config_error(r->ctx, "prefix", "'%s' is not up to %d printable characters "
				      "without spaces%s", v, PREFIX_MAX,
				      no_braces ? ", '{' or '}'" : "");
		return CONFAB_EINVAL;
	}
	if ((*out = strdup(v)) == NULL)
		return CONFAB_ENOMEM;
	note_text(r, "prefix", v, false);
	return 0;
}

/* A key's text, NULL when absent or empty, noted as `secret` says. */
static const char *nonempty(const rset *r, const char *key, bool secret)
{
	const char *v = r->host->config_get(r->ctx, key);

	note_text(r, key, v, secret);
	return v != NULL && *v != '\0' ? v : NULL;
}

const char *rset_text(const rset *r, const char *key)
{
	return nonempty(r, key, false);
}

const char *rset_secret(const rset *r, const char *key)
{
	return nonempty(r, key, true);
}

const char *rset_get(const rset *r, const char *key, const char *def)
{
	const char *v = r->host->config_get(r->ctx, key);

	if (v == NULL)
		v = def;
	note_text(r, key, v, false);
	return v;
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
	uint64_t port = default_port > 0 ? (uint64_t)default_port : 0;

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
		if (close[1] == ':' && !confab_parse_uint(close + 2, 1, 65535, &port))
			return -1;
	} else if ((colon = strchr(buf, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		*colon = '\0';
		if (!confab_parse_uint(colon + 1, 1, 65535, &port))
			return -1;
	} /* else a name, an IPv4 address, or an IPv6 address without a port */
	if (port == 0 || !rset_host_ok(host, sizeof(out->host)))
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
	note_text(r, key, p, false);
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
