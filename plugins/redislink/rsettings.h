/* The settings both Redis backplanes read the same way: numbers, yes/no,
 * addresses ("host:port", "[v6]:port", lists of them), and the TLS keys.
 * Each reader reports a bad value itself, with config_error naming the
 * key (confabd -t then fails with that one line), and returns -1
 * (CONFAB_EINVAL) or CONFAB_ENOMEM; 0 when the value (or the default) is
 * taken.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RSETTINGS_H
#define CONFAB_RSETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include <confab/plugin.h>

#include "rtls.h"

/* Where settings come from: the plugin's host table and its context. */
typedef struct rset {
	const confab_host *host;
	confab_ctx *ctx;
} rset;

/* One address: an IP address or a DNS name, and a port. */
typedef struct rset_addr {
	char host[256];
	int port;
} rset_addr;

/* A decimal integer in [min, max] (`unit` names it in the error line:
 * "'x' is not a number of seconds from 2 to 86400"); `def` when absent. */
int rset_long(const rset *r, const char *key, long def, long min, long max, const char *unit,
	      long *out);
/* yes/no (true/false, on/off, 1/0 too); `def` when absent or empty. */
int rset_bool(const rset *r, const char *key, bool def, bool *out);
/* A key's text, or NULL when it is absent or empty. Never fails. */
const char *rset_text(const rset *r, const char *key);

/* True when `v` is an IPv4 or IPv6 address or a DNS name (labels of
 * letters, digits, '-' and '_'), shorter than `size` bytes. */
bool rset_host_ok(const char *v, size_t size);
/* One "host:port" or "[v6]:port" of `len` bytes; with default_port > 0 a
 * host alone (a name, an IPv4 address, or an IPv6 address without
 * brackets) takes that port. 0, or -1 when it is not an address. */
int rset_parse_addr(const char *text, size_t len, int default_port, rset_addr *out);
/* A comma-separated list of addresses in `key` (spaces around entries are
 * ignored) into out[0..max-1]; *n is how many. An absent or empty key
 * gives *n = 0 and 0: the caller decides whether that is an error. */
int rset_addrs(const rset *r, const char *key, int default_port, rset_addr *out, size_t max,
	       size_t *n);

/* The TLS keys of a Redis backplane: tls (yes/no, default no),
 * tls_ca_file, tls_cert_file, tls_key_file, tls_server_name, tls_verify
 * (default yes). All are read, even with tls = no, so that a config may
 * keep them switched off without "unknown key" errors. With tls = yes,
 * *out is the instance's TLS configuration (free it with
 * rtls_config_free once every link is closed) and *no_verify says that
 * verification is off (the caller logs that warning at start); with tls
 * = no, *out is NULL. A file that cannot be used is a config error on
 * its key, with rtls's line. */
int rset_tls(const rset *r, rtls_config **out, bool *no_verify);

#endif /* CONFAB_RSETTINGS_H */
