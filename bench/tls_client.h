/* The client side of TLS for wss:// targets, without any I/O: OpenSSL
 * over two memory BIOs. The caller (conn.c) reads ciphertext from its
 * libuv stream and feeds it in, takes ciphertext out and writes it to the
 * stream, and gets plaintext back for its WebSocket code. So TLS needs no
 * socket of its own, no poll of its own, and the plain ws:// path is not
 * touched.
 *
 * One context (SSL_CTX) per run, shared by every connection: the CA file,
 * the client certificate and the verification mode are read once. Each
 * connection has its own SSL object, freed with tls_client_free().
 *
 * Nothing here is thread-safe beyond what OpenSSL is: the bench has one
 * thread. OpenSSL's error queue is per thread, so every call that can fail
 * leaves it empty for the next connection.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_BENCH_TLS_CLIENT_H
#define CONFAB_BENCH_TLS_CLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

struct tls_client_opts {
	const char *cafile;    /* verify the server against these CAs (PEM) */
	int insecure;          /* verify nothing (then cafile must be NULL) */
	const char *cert;      /* a client certificate (PEM), or NULL */
	const char *key;       /* its private key (PEM): with cert, and only then */
};

/* The run's context. Without cafile and without insecure, the server is
 * verified against the system's default CAs. Returns NULL with a one-line
 * reason in `err` when a file cannot be read or the key is not the
 * certificate's. */
SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *o, char *err, size_t errlen);
void tls_client_ctx_free(SSL_CTX *ctx);

/* A connection to `host` (as the URL names it: an IPv4 address, checked
 * against the certificate's IP addresses, or a name, checked against its
 * DNS names and sent as SNI). Returns NULL with a reason in `err`. */
SSL *tls_client_new(SSL_CTX *ctx, const char *host, char *err, size_t errlen);
void tls_client_free(SSL *ssl);

/* Hands `len` bytes of ciphertext from the server to OpenSSL. Returns 0, or
 * -1 when out of memory. Feed at most TLS_CLIENT_FEED at a time and drain
 * with tls_client_read() in between, so that a connection keeps no more
 * than about a record of unread ciphertext. */
#define TLS_CLIENT_FEED 16384
int tls_client_feed(SSL *ssl, const void *data, size_t len);

/* Moves the handshake on with what was fed. Returns 1 once it is done, 0
 * while it waits for the server (send what tls_client_take_out() gives),
 * -1 when it failed: `why` then says why in a few words ("certificate
 * verify failed (hostname mismatch)", an alert from the server, "wrong
 * version number" from a server that does not speak TLS). With TLS 1.3 a
 * server's refusal of the client certificate comes later, from
 * tls_client_read(). */
int tls_client_handshake(SSL *ssl, char *why, size_t whylen);

/* Plaintext from what was fed, into `buf`. Returns the count (> 0); 0 when
 * nothing more can be read until more is fed; -1 when the server closed
 * the TLS session (close_notify) or it failed, with `why`. */
long tls_client_read(SSL *ssl, void *buf, size_t cap, char *why, size_t whylen);

/* Encrypts `len` bytes of plaintext (all of them: the memory BIO grows).
 * The handshake must be done. Returns 0 or -1 with `why`. */
int tls_client_write(SSL *ssl, const void *data, size_t len, char *why, size_t whylen);

/* Ciphertext waiting to go to the server, up to `cap` bytes into `buf`;
 * returns how many (0: none). Call until it returns 0. */
size_t tls_client_take_out(SSL *ssl, void *buf, size_t cap);

#endif
