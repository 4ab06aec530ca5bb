/* The settings both Redis backplanes read the same way: numbers, yes/no,
 * addresses ("host:port", "[v6]:port", lists of them), and the TLS keys.
 * Each reader reports a bad value itself, naming the key (confabd -t then
 * fails with that one line), and returns CONFAB_EINVAL or CONFAB_ENOMEM;
 * 0 when the value (or the default) is taken, and then notes it in the
 * rset's `seen` for a reload to compare. Numbers and booleans are the
 * host's rules (config_uint, config_bool).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RSETTINGS_H
#define CONFAB_RSETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include <confab/plugin.h>

#include "rtls.h"

/* The most keys one reading of a section takes (each backplane reads 18
 * at most today). */
#define RSET_SEEN_MAX 32

/* One key as a reading took it: its effective value as text, the default
 * when the key is absent ("" for no value), numbers and booleans written
 * the one way (so "06379" and an absent port are 6379 alike). */
typedef struct rset_seen_key {
	const char *key;     /* the reader's key: a literal */
	const char *text;    /* the value (the file's, or a literal), or NULL: in num */
	char num[24];
	bool secret;         /* compared, never printed */
} rset_seen_key;

/* What one reading of a section took, key by key: what a reload compares
 * with what init read (rset_log_changes). Text points into the config
 * the reading came from (it lives until destroy) or at literals. */
typedef struct rset_seen {
	rset_seen_key keys[RSET_SEEN_MAX];
	size_t n;
} rset_seen;

/* Where settings come from: the plugin's host table and its context; and
 * where every reader below notes what it took (NULL: nowhere). */
typedef struct rset {
	const confab_host *host;
	confab_ctx *ctx;
	rset_seen *seen;
} rset;

/* One address: an IP address or a DNS name, and a port. */
typedef struct rset_addr {
	char host[256];
	int port;
} rset_addr;

/* A decimal number in [min, max], `def` when absent: host->config_uint,
 * whose report is "'V' is not a number from MIN to MAX". */
int rset_uint(const rset *r, const char *key, unsigned def, unsigned min, unsigned max,
	      unsigned *out);
/* true/yes/on/1 or false/no/off/0, `def` when absent or empty:
 * host->config_bool ("'V' is not a boolean (true or false)"). */
int rset_bool(const rset *r, const char *key, bool def, bool *out);
/* What both backplanes take alike: the link timings of their section and
 * the [broker] limits their scripts apply. */
typedef struct rset_common {
	unsigned presence_ttl_ms;    /* presence_ttl (s, 2..86400, default 15) */
	unsigned heartbeat_ms;       /* a quarter of it, at most 1 s */
	unsigned probe_interval_ms;  /* 50..600000, default 1000 */
	unsigned probe_timeout_ms;   /* 100..600000, default 3000 */
	unsigned reconnect_max_ms;   /* backoff_first_ms..600000, default 5000 */
	size_t history_size;         /* [broker] history_size */
	unsigned long room_ttl;      /* [broker] room_ttl, seconds; 0 = never */
	unsigned long idem_window;   /* [broker] idem_window, seconds */
} rset_common;

/* Read them: 0, or CONFAB_EINVAL once a bad value was reported. */
int rset_common_read(const rset *r, unsigned backoff_first_ms, rset_common *out);
/* `prefix`, the start of every key and channel: up to 64 printable
 * characters without spaces (and, with `no_braces`, without '{' or '}',
 * which would make a hash tag), "confab:" when absent. *out is malloc'd.
 * 0, CONFAB_EINVAL (reported) or CONFAB_ENOMEM. */
int rset_prefix(const rset *r, bool no_braces, char **out);
/* A key's text, or NULL when it is absent or empty. Never fails. */
const char *rset_text(const rset *r, const char *key);
/* The same for a password: its value is compared, never logged. */
const char *rset_secret(const rset *r, const char *key);
/* A key's text as it is (an empty value stays empty), or `def` (may be
 * NULL) when it is absent. Never fails. */
const char *rset_get(const rset *r, const char *key, const char *def);

/* A reload's verdict on two readings of the section, init's and the new
 * file's: one warning for every key whose value differs (a key only one
 * of them took counts as ""), `KEY changed to 'NEW': needs a restart;
 * keeping 'OLD'` (after the instance's name, "[redis]", which is the
 * section's), or `KEY changed: needs a restart` for a secret. Returns how
 * many keys changed. */
size_t rset_log_changes(const rset *r, const rset_seen *running, const rset_seen *next);

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
