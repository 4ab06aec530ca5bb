/* TLS to Redis with OpenSSL, over memory buffers (rtls.h is the contract).
 *
 * The pieces:
 *  - rtls_config: one SSL_CTX per plugin instance (TLS 1.2 at least), with
 *    the CAs (a file, or the system store), the client certificate and key
 *    (checked to match), and whether to verify. Made at init, so that a
 *    bad file is a config error with one line, never a failing link later.
 *  - rtls_session: one SSL per connection, between two memory BIOs: rbio
 *    holds the ciphertext the link has read and not yet decrypted, wbio
 *    the ciphertext OpenSSL wants sent. The link owns the socket (a libuv
 *    stream), so OpenSSL never touches a file descriptor: it cannot block
 *    the loop, and the link keeps its one-write-in-flight batching (what
 *    several commands encrypt to goes out in one write).
 *  - Names: SNI and the verified name are server_name when given, else the
 *    link's host; an IP address is verified as an IP address (the
 *    certificate's IP SAN) and is not sent as SNI, which names hosts only.
 *  - Lines: a failure is described once, from what OpenSSL knows: the
 *    verify result for a certificate the client refused ("certificate
 *    verify failed (certificate has expired)"), the alert for one the
 *    server refused. A server that asked for a client certificate when
 *    none is configured is named as such whether it says so with the TLS
 *    1.3 "certificate required" alert, a TLS 1.2 handshake failure, or by
 *    closing the connection.
 *
 * OpenSSL's error queue is per thread and shared with whoever else uses
 * OpenSSL on the loop thread: it is cleared before each call whose errors
 * are read, and after reading them.
 *
 * SPDX-License-Identifier: MIT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "rtls.h"

struct rtls_config {
	SSL_CTX *ctx;
	char *server_name; /* NULL: each link's host */
	char *ca_file;     /* NULL: the system's store */
	bool verify;
	bool has_cert;
};

struct rtls_session {
	SSL *ssl;
	BIO *rbio, *wbio;     /* owned by ssl */
	const rtls_config *c;
	char name[256];       /* what the certificate must carry */
	bool done;            /* handshake complete */
	bool got_data;        /* plaintext came after the handshake */
	bool cert_requested;  /* the server asked for a client certificate */
};

static void set_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* The reason of the oldest error in the queue, cleared; "unknown error"
 * when the queue is empty. */
static const char *ssl_reason(unsigned long *code)
{
	unsigned long e = ERR_get_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	if (code != NULL)
		*code = e;
	return r != NULL ? r : "unknown error";
}

/* ---- the configuration ------------------------------------------------------ */

static bool readable(const char *what, const char *path, char *why, size_t whylen)
{
	if (access(path, R_OK) == 0)
		return true;
	set_why(why, whylen, "cannot read the %s %s: %s", what, path, strerror(errno));
	return false;
}

static bool empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* Remembers that the server asked for a certificate (none is set, or
 * OpenSSL would not ask): the line when it then refuses us. */
static int client_cert_cb(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
	rtls_session *s = SSL_get_app_data(ssl);

	(void)x509;
	(void)pkey;
	if (s != NULL)
		s->cert_requested = true;
	return 0; /* go on without one */
}

rtls_config *rtls_config_new(const rtls_opts *o, char *why, size_t whylen)
{
	rtls_config *c;

	if (empty(o->cert_file) != empty(o->key_file)) {
		set_why(why, whylen, "a client certificate needs both a certificate file and a key file");
		return NULL;
	}
	if (!empty(o->ca_file) && !readable("CA file", o->ca_file, why, whylen))
		return NULL;
	if (!empty(o->cert_file) && (!readable("certificate file", o->cert_file, why, whylen) ||
				     !readable("key file", o->key_file, why, whylen)))
		return NULL;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		set_why(why, whylen, "out of memory");
		return NULL;
	}
	c->verify = !o->no_verify;
	c->has_cert = !empty(o->cert_file);
	if ((!empty(o->server_name) && (c->server_name = strdup(o->server_name)) == NULL) ||
	    (!empty(o->ca_file) && (c->ca_file = strdup(o->ca_file)) == NULL)) {
		set_why(why, whylen, "out of memory");
		goto fail;
	}
	ERR_clear_error();
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL) {
		set_why(why, whylen, "cannot make a TLS context: %s", ssl_reason(NULL));
		goto fail;
	}
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
	if (!empty(o->ca_file)) {
		if (SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL) != 1) {
			set_why(why, whylen, "cannot load the CA file %s: %s", o->ca_file,
				ssl_reason(NULL));
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
		set_why(why, whylen, "cannot load the system's CA store: %s", ssl_reason(NULL));
		goto fail;
	}
	if (c->has_cert) {
		if (SSL_CTX_use_certificate_chain_file(c->ctx, o->cert_file) != 1) {
			set_why(why, whylen, "cannot load the certificate file %s: %s", o->cert_file,
				ssl_reason(NULL));
			goto fail;
		}
		/* A key for another certificate is refused here already. */
		if (SSL_CTX_use_PrivateKey_file(c->ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
			unsigned long code;
			const char *reason = ssl_reason(&code);

			if (ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH)
				goto mismatch;
			set_why(why, whylen, "cannot load the key file %s: %s", o->key_file, reason);
			goto fail;
		}
		if (SSL_CTX_check_private_key(c->ctx) != 1) {
mismatch:
			ERR_clear_error();
			set_why(why, whylen, "the key file %s does not match the certificate file %s",
				o->key_file, o->cert_file);
			goto fail;
		}
	} else {
		SSL_CTX_set_client_cert_cb(c->ctx, client_cert_cb);
	}
	SSL_CTX_set_verify(c->ctx, c->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return c;
fail:
	ERR_clear_error();
	rtls_config_free(c);
	return NULL;
}

void rtls_config_free(rtls_config *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ctx); /* the sessions still open hold their own reference */
	free(c->server_name);
	free(c->ca_file);
	free(c);
}

/* ---- sessions ------------------------------------------------------------------ */

static bool is_ip(const char *name)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

rtls_session *rtls_session_new(const rtls_config *c, const char *host, char *why, size_t whylen)
{
	rtls_session *s = calloc(1, sizeof(*s));
	const char *name = c->server_name != NULL ? c->server_name : host;
	bool ip;

	if (s == NULL) {
		set_why(why, whylen, "out of memory");
		return NULL;
	}
	s->c = c;
	snprintf(s->name, sizeof(s->name), "%s", name != NULL ? name : "");
	ip = is_ip(s->name);
	ERR_clear_error();
	s->ssl = SSL_new(c->ctx);
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	if (s->ssl == NULL || s->rbio == NULL || s->wbio == NULL) {
		BIO_free(s->rbio);
		BIO_free(s->wbio);
		s->rbio = s->wbio = NULL;
		set_why(why, whylen, "cannot start TLS: %s", ssl_reason(NULL));
		goto fail;
	}
	/* An empty rbio means "wait for more", not the end of the stream. */
	BIO_set_mem_eof_return(s->rbio, -1);
	SSL_set_bio(s->ssl, s->rbio, s->wbio);
	SSL_set_app_data(s->ssl, s);
	SSL_set_connect_state(s->ssl);
	if (!ip && s->name[0] != '\0' && SSL_set_tlsext_host_name(s->ssl, s->name) != 1) {
		set_why(why, whylen, "cannot send the server name %s: %s", s->name, ssl_reason(NULL));
		goto fail;
	}
	if (c->verify && s->name[0] == '\0') {
		/* An empty name would verify no name at all. */
		set_why(why, whylen, "TLS needs a server name to verify");
		goto fail;
	}
	if (c->verify) {
		int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), s->name)
			    : SSL_set1_host(s->ssl, s->name);

		if (ok != 1) {
			set_why(why, whylen, "cannot verify the server name %s: %s", s->name,
				ssl_reason(NULL));
			goto fail;
		}
	}
	return s;
fail:
	rtls_session_free(s);
	return NULL;
}

void rtls_session_free(rtls_session *s)
{
	if (s == NULL)
		return;
	SSL_free(s->ssl); /* and its BIOs */
	free(s);
}

int rtls_session_feed(rtls_session *s, const void *data, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = len - done > INT_MAX ? INT_MAX : len - done;
		int w = BIO_write(s->rbio, (const char *)data + done, (int)n);

		if (w <= 0) {
			ERR_clear_error();
			return -1;
		}
		done += (size_t)w;
	}
	return 0;
}

/* The server refused us, and had asked for a certificate we do not have. */
static bool cert_missing(const rtls_session *s)
{
	return s->cert_requested && !s->c->has_cert;
}

/* One line for a failed SSL call (its return `ret`); the error queue is
 * read and cleared. */
static void describe(rtls_session *s, int ret, char *why, size_t whylen)
{
	int err = SSL_get_error(s->ssl, ret);
	const char *phase = s->done && s->got_data ? "TLS error" : "TLS handshake failed";
	unsigned long code = 0;
	const char *reason;
	int r;

	if (err == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		if (!s->done || (cert_missing(s) && !s->got_data))
			goto missing_or_closed;
		set_why(why, whylen, "connection closed by the server");
		return;
	}
	if (err != SSL_ERROR_SSL) {
		ERR_clear_error();
		set_why(why, whylen, "%s: unexpected TLS state %d", phase, err);
		return;
	}
	reason = ssl_reason(&code);
	r = ERR_GET_REASON(code);
	if (r == SSL_R_CERTIFICATE_VERIFY_FAILED) {
		long v = SSL_get_verify_result(s->ssl);

		if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
			set_why(why, whylen, "%s: certificate verify failed (%s: the certificate is not for %s)",
				phase, X509_verify_cert_error_string(v), s->name);
		else if (v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
			 v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
			 v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
			 v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
			/* Which of these depends on whether the server sends
			 * its CA along; what it means does not. */
			set_why(why, whylen, "%s: certificate verify failed (%s: the server's CA is not in %s)",
				phase, X509_verify_cert_error_string(v),
				s->c->ca_file != NULL ? s->c->ca_file : "the system's store");
		else
			set_why(why, whylen, "%s: certificate verify failed (%s)", phase,
				X509_verify_cert_error_string(v));
		return;
	}
	if (r == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
	    (cert_missing(s) && (r == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE ||
				 r == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE))) {
		set_why(why, whylen, "%s: the server requires a client certificate, and none is configured",
			phase);
		return;
	}
	if (s->c->has_cert &&
	    (r == SSL_R_TLSV1_ALERT_UNKNOWN_CA || r == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
	     r == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED || r == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN ||
	     r == SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE || r == SSL_R_TLSV1_ALERT_ACCESS_DENIED)) {
		set_why(why, whylen, "%s: the server refused our client certificate (%s)", phase, reason);
		return;
	}
	if (r == SSL_R_WRONG_VERSION_NUMBER || r == SSL_R_PACKET_LENGTH_TOO_LONG ||
	    r == SSL_R_UNKNOWN_PROTOCOL) {
		set_why(why, whylen, "%s: %s (does the server speak TLS on this port?)", phase, reason);
		return;
	}
	set_why(why, whylen, "%s: %s", phase, reason);
	return;
missing_or_closed:
	if (cert_missing(s))
		set_why(why, whylen, "TLS handshake failed: the server requires a client certificate, and none is configured");
	else
		set_why(why, whylen, "TLS handshake failed: connection closed by the server");
}

int rtls_session_handshake(rtls_session *s, char *why, size_t whylen)
{
	int rc;

	if (s->done)
		return 1;
	ERR_clear_error();
	rc = SSL_do_handshake(s->ssl);
	if (rc == 1) {
		s->done = true;
		return 1;
	}
	if (SSL_get_error(s->ssl, rc) == SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		return 0;
	}
	describe(s, rc, why, whylen);
	return -1;
}

bool rtls_session_done(const rtls_session *s)
{
	return s->done;
}

long rtls_session_read(rtls_session *s, void *buf, size_t len, char *why, size_t whylen)
{
	size_t n = 0;
	int rc;

	ERR_clear_error();
	rc = SSL_read_ex(s->ssl, buf, len, &n);
	if (rc == 1 && n > 0) {
		s->got_data = true;
		return n > LONG_MAX ? LONG_MAX : (long)n;
	}
	if (SSL_get_error(s->ssl, rc) == SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		return 0;
	}
	describe(s, rc, why, whylen);
	return -1;
}

int rtls_session_write(rtls_session *s, const void *data, size_t len, char *why, size_t whylen)
{
	size_t n = 0;
	int rc;

	if (len == 0)
		return 0;
	ERR_clear_error();
	/* Into a memory BIO, which grows: all of it is taken at once. */
	rc = SSL_write_ex(s->ssl, data, len, &n);
	if (rc == 1 && n == len)
		return 0;
	describe(s, rc, why, whylen);
	return -1;
}

char *rtls_session_take_output(rtls_session *s, size_t *len)
{
	size_t pending = BIO_ctrl_pending(s->wbio);
	char *buf;
	int n;

	*len = pending;
	if (pending == 0)
		return NULL;
	if (pending > INT_MAX || (buf = malloc(pending)) == NULL)
		return NULL;
	n = BIO_read(s->wbio, buf, (int)pending);
	if (n <= 0 || (size_t)n != pending) {
		/* A memory BIO gives what it holds; never here. */
		ERR_clear_error();
		free(buf);
		return NULL;
	}
	return buf;
}

void rtls_session_ended(const rtls_session *s, const char *plain_why, char *why, size_t whylen)
{
	if (cert_missing(s) && !s->got_data)
		set_why(why, whylen, "TLS handshake failed: the server requires a client certificate, and none is configured");
	else if (!s->done)
		set_why(why, whylen, "TLS handshake failed: %s", plain_why);
	else
		set_why(why, whylen, "%s", plain_why);
}
