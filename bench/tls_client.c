/* TLS for wss:// targets over memory BIOs: see tls_client.h.
 *
 * Why memory BIOs and not OpenSSL on the socket: the bench's connections
 * are libuv streams (conn.c) that read into one shared buffer; handing the
 * descriptor to OpenSSL would need a poll handle and a second I/O path per
 * connection. With memory BIOs the stream code stays as it is and TLS is
 * a filter on the bytes.
 *
 * SSL_MODE_RELEASE_BUFFERS is not set: it would save the bench about 34 KB
 * per idle connection (the broker sets it) but costs an allocation and a
 * free per record, and in s1 the bench's CPU is on the same cores as the
 * broker being measured. Memory is the cheaper of the two here.
 *
 * SPDX-License-Identifier: MIT
 */
#include "tls_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* The reason of the queue's last error, then an empty queue. */
static const char *take_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	if (r)
		snprintf(buf, len, "%s", r);
	else if (e)
		snprintf(buf, len, "OpenSSL error %lu", e);
	else
		snprintf(buf, len, "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

/* OpenSSL names a file it cannot open "system lib": say why ourselves. */
static int readable(const char *opt, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s %s: %s", opt, path, strerror(errno));
		return 0;
	}
	fclose(f);
	return 1;
}

SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *o, char *err, size_t errlen)
{
	char r[160];
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		snprintf(err, errlen, "cannot make a TLS context: %s", take_reason(r, sizeof r));
		return NULL;
	}
	/* What confabd's listener accepts (1.2 or later, ALPN http/1.1). */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9) != 0) {
		snprintf(err, errlen, "cannot set up the TLS context: %s", take_reason(r, sizeof r));
		goto fail;
	}
	if (o->insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		if (o->cafile) {
			if (!readable("--cafile", o->cafile, err, errlen))
				goto fail;
			if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
				snprintf(err, errlen, "--cafile %s: %s", o->cafile,
					 take_reason(r, sizeof r));
				goto fail;
			}
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			snprintf(err, errlen, "cannot load the system's CA certificates: %s "
				 "(give --cafile or --insecure)", take_reason(r, sizeof r));
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	if (o->cert) {
		if (!readable("--cert", o->cert, err, errlen) ||
		    (o->key && !readable("--key", o->key, err, errlen)))
			goto fail;
		if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
			snprintf(err, errlen, "--cert %s: %s", o->cert, take_reason(r, sizeof r));
			goto fail;
		}
		if (!o->key || SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1) {
			snprintf(err, errlen, "--key %s: %s", o->key ? o->key : "(none)",
				 take_reason(r, sizeof r));
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			snprintf(err, errlen, "--key %s is not the key of --cert %s: %s", o->key,
				 o->cert, take_reason(r, sizeof r));
			goto fail;
		}
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_client_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

SSL *tls_client_new(SSL_CTX *ctx, const char *host, char *err, size_t errlen)
{
	char r[160];
	ERR_clear_error();
	SSL *ssl = SSL_new(ctx);
	BIO *in = BIO_new(BIO_s_mem());
	BIO *out = BIO_new(BIO_s_mem());
	if (!ssl || !in || !out) {
		snprintf(err, errlen, "TLS: out of memory");
		BIO_free(in);
		BIO_free(out);
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	/* Empty is "not yet", not end of file: SSL_read says WANT_READ. */
	BIO_set_mem_eof_return(in, -1);
	BIO_set_mem_eof_return(out, -1);
	SSL_set_bio(ssl, in, out);      /* the SSL owns both now */
	SSL_set_connect_state(ssl);
	/* An address is checked against the certificate's IP addresses and is
	 * not sent as SNI (RFC 6066 allows only names there). */
	struct in_addr a;
	int ok;
	if (inet_pton(AF_INET, host, &a) == 1)
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
	else
		ok = SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
	if (!ok) {
		snprintf(err, errlen, "TLS: cannot check the server's name %s: %s", host,
			 take_reason(r, sizeof r));
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

void tls_client_free(SSL *ssl)
{
	SSL_free(ssl);
}

int tls_client_feed(SSL *ssl, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (len > INT_MAX || BIO_write(SSL_get_rbio(ssl), data, (int)len) != (int)len) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* One line for a failed SSL call whose SSL_get_error() was `e`. */
static void describe(SSL *ssl, int e, char *why, size_t whylen)
{
	char r[160];
	unsigned long last = ERR_peek_last_error();
	if (e == SSL_ERROR_ZERO_RETURN) {
		snprintf(why, whylen, "the server closed the TLS session");
		ERR_clear_error();
	} else if (last && ERR_GET_REASON(last) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
		long v = SSL_get_verify_result(ssl);
		snprintf(why, whylen, "certificate verify failed (%s)",
			 X509_verify_cert_error_string(v));
		ERR_clear_error();
	} else if (last) {
		snprintf(why, whylen, "%s", take_reason(r, sizeof r));
	} else {
		snprintf(why, whylen, "TLS error %d", e);
	}
}

int tls_client_handshake(SSL *ssl, char *why, size_t whylen)
{
	ERR_clear_error();
	int r = SSL_do_handshake(ssl);
	if (r == 1)
		return 1;
	int e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	describe(ssl, e, why, whylen);
	return -1;
}

long tls_client_read(SSL *ssl, void *buf, size_t cap, char *why, size_t whylen)
{
	ERR_clear_error();
	int n = SSL_read(ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
	if (n > 0)
		return n;
	int e = SSL_get_error(ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	describe(ssl, e, why, whylen);
	return -1;
}

int tls_client_write(SSL *ssl, const void *data, size_t len, char *why, size_t whylen)
{
	if (len == 0)
		return 0;
	ERR_clear_error();
	int n = len > INT_MAX ? -1 : SSL_write(ssl, data, (int)len);
	if (n == (int)len)
		return 0;
	describe(ssl, SSL_get_error(ssl, n), why, whylen);
	return -1;
}

size_t tls_client_take_out(SSL *ssl, void *buf, size_t cap)
{
	BIO *out = SSL_get_wbio(ssl);
	if (BIO_ctrl_pending(out) == 0)
		return 0;
	int n = BIO_read(out, buf, cap > INT_MAX ? INT_MAX : (int)cap);
	return n > 0 ? (size_t)n : 0;
}
