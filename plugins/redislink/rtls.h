/* TLS for the Redis links (rlink): a client configuration made once per
 * plugin instance and shared by all of its links, and the per-connection
 * session that rlink runs over its own libuv stream.
 *
 * The configuration:
 *  - ca_file: the CAs (PEM) that may sign the server's certificate; NULL
 *    or "": the system's store (the managed services' public CAs).
 *  - cert_file + key_file: a client certificate (PEM, the chain may
 *    follow the certificate) and its private key, for servers started
 *    with `tls-auth-clients yes`. Both or neither.
 *  - server_name: the name sent as SNI and the name the server's
 *    certificate must carry. NULL or "": the host each link connects to;
 *    when that (or server_name) is an IP address, the certificate must
 *    carry that IP address and no SNI is sent.
 *  - no_verify: true turns certificate verification off (the server's
 *    certificate is taken whatever it is). Off only when asked for: the
 *    zeroed options verify. The caller logs a warning when it sets this.
 *
 * Ownership: rtls_config_new copies what it needs from `o` (the files are
 * read at once: a bad file is an error now, not at the first connect).
 * The configuration must stay until every link opened with it is
 * closed; rtls_config_free(NULL) does nothing. Loop thread only.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RTLS_H
#define CONFAB_RTLS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rtls_opts {
	const char *ca_file;     /* NULL/"": the system store */
	const char *cert_file;   /* client certificate, with key_file */
	const char *key_file;
	const char *server_name; /* NULL/"": each link's host */
	bool no_verify;          /* true: do not verify (the caller warns) */
} rtls_opts;

typedef struct rtls_config rtls_config;

/* A configuration, or NULL with one line in `why` (a config error: an
 * unreadable CA file, a certificate without its key, a key that does not
 * match the certificate, ...). `why` may be NULL. */
rtls_config *rtls_config_new(const rtls_opts *o, char *why, size_t whylen);
void rtls_config_free(rtls_config *c);

/* ---- for rlink: one TLS connection over memory buffers ------------------
 * rlink feeds what the socket reads into the session, takes plaintext out
 * of it for hiredis's reader, hands it plaintext to encrypt, and writes
 * what the session has to send. No I/O here. Every failure comes with one
 * line in `why` (whylen > 0), e.g. "TLS handshake failed: certificate
 * verify failed (unable to get local issuer certificate)". */
typedef struct rtls_session rtls_session;

/* A session to `host` (the link's host, used when the configuration
 * names no server), or NULL with `why`. */
rtls_session *rtls_session_new(const rtls_config *c, const char *host, char *why, size_t whylen);
void rtls_session_free(rtls_session *s);
/* Ciphertext read from the server: 0, or -1 (out of memory). */
int rtls_session_feed(rtls_session *s, const void *data, size_t len);
/* Drives the handshake: 1 done (at once when it already was), 0 waits
 * for the server, -1 failed (`why`). */
int rtls_session_handshake(rtls_session *s, char *why, size_t whylen);
bool rtls_session_done(const rtls_session *s);
/* Plaintext from what was fed: > 0 bytes, 0 none for now, -1 the
 * connection failed or was closed by the server (`why`). */
long rtls_session_read(rtls_session *s, void *buf, size_t len, char *why, size_t whylen);
/* Encrypts `len` bytes (after the handshake): 0, or -1 (`why`). */
int rtls_session_write(rtls_session *s, const void *data, size_t len, char *why, size_t whylen);
/* What is to be sent, as a malloc'd buffer the caller frees; NULL with
 * *len 0 when nothing is, NULL with *len != 0 when out of memory. */
char *rtls_session_take_output(rtls_session *s, size_t *len);
/* The line for a connection that ended (EOF, reset) while TLS was
 * running, in place of `plain_why` when TLS explains it better: during
 * the handshake, or right after it when the server had asked for a
 * client certificate that was not configured (TLS 1.3 servers refuse it
 * only after the client thinks the handshake is done). */
void rtls_session_ended(const rtls_session *s, const char *plain_why, char *why, size_t whylen);

#endif /* CONFAB_RTLS_H */
