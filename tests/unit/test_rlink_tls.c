/* Unit tests for TLS on plugins/redislink's links (rtls + rlink), against
 * real TLS redis-servers that the test starts on free loopback ports and
 * stops by PID at the end:
 *  - "good":    a certificate for localhost and 127.0.0.1 from CA 1;
 *  - "expired": the same names, from CA 1, expired yesterday;
 *  - "mutual":  the good certificate, wants a client certificate from
 *               CA 1 (tls-auth-clients yes), and a password;
 *  - "mutual12": the same, TLS 1.2 only (the refusal comes during the
 *               handshake, where TLS 1.3 sends it after).
 * "good" also listens without TLS on plain_port.
 * The CAs and certificates are made at test time with the openssl
 * command in a temporary directory (removed at the end); CA 2 signs
 * nothing the servers use (the "wrong CA").
 *
 * Each test runs its own loop, bounds every wait, and ends by checking
 * that closing its links left no handle open. Failures are checked by
 * the line on_closed gives, not just by failing.
 *
 * REDIS_SERVER (the environment, else configure's path) names the server,
 * OPENSSL the openssl command; without them the test is skipped (77).
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <confab/common.h>

#include "redis_child.h"
#include "rlink.h"
#include "rtls.h"

#ifndef REDIS_SERVER_DEFAULT
#define REDIS_SERVER_DEFAULT "redis-server"
#endif

#define PASSWORD "s3cret"
#define WAIT_MS 5000
#define BIG (1024 * 1024)

static unsigned timeout_ms = 3000; /* the links' connect timeout */

static char dir[64];
static int good_port, plain_port, expired_port, mutual_port, mutual12_port;
static pid_t good_pid, expired_pid, mutual_pid, mutual12_pid;

/* ---- certificates and servers ------------------------------------------------ */

static const char *cnf =
	"[req]\n"
	"distinguished_name = dn\n"
	"prompt = no\n"
	"[dn]\n"
	"CN = confab test\n"
	"[ca]\n"
	"basicConstraints = critical,CA:TRUE\n"
	"keyUsage = critical,keyCertSign,cRLSign\n"
	"[server]\n"
	"basicConstraints = CA:FALSE\n"
	"subjectAltName = DNS:localhost,IP:127.0.0.1\n"
	"[client]\n"
	"basicConstraints = CA:FALSE\n"
	"extendedKeyUsage = clientAuth\n";

/* ca1, ca2 (CAs); server, expired (for localhost and 127.0.0.1, from
 * ca1); client (from ca1), client2 (from ca2). Each NAME.crt with
 * NAME.key. */
static bool make_certificates(const char *openssl)
{
	char path[128], script[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/c.cnf", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return false;
	fputs(cnf, f);
	fclose(f);
	snprintf(script, sizeof(script),
		 "set -e; cd '%s'; O='%s'\n"
		 "key() { n=$1; shift; \"$O\" req -config c.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
		 " -nodes -keyout $n.key \"$@\"; }\n"
		 "key ca1 -x509 -extensions ca -days 2 -subj /CN=ca1 -out ca1.crt\n"
		 "key ca2 -x509 -extensions ca -days 2 -subj /CN=ca2 -out ca2.crt\n"
		 "sign() { \"$O\" x509 -req -in $1.csr -CA $4.crt -CAkey $4.key -CAcreateserial"
		 " -extfile c.cnf -extensions $2 -days $3 -out $1.crt; }\n"
		 "key server -subj /CN=localhost -out server.csr; sign server server 2 ca1\n"
		 "key expired -subj /CN=localhost -out expired.csr; sign expired server -1 ca1\n"
		 "key client -subj /CN=client -out client.csr; sign client client 2 ca1\n"
		 "key client2 -subj /CN=client2 -out client2.csr; sign client2 client 2 ca2\n",
		 dir, openssl);
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "(%s) >/dev/null 2>&1", script);
		return system(cmd) == 0;
	}
}

/* A TLS redis-server with certificate NAME.crt (and a plain port too when
 * `plain` is not NULL); its PID, or -1. */
static pid_t start_redis(const char *program, const char *cert, bool mutual, bool tls12,
			 int *port, int *plain)
{
	char crt[128], key[128], ca[128];
	const char *args[32] = {"--tls-cert-file", crt, "--tls-key-file", key,
				"--tls-ca-cert-file", ca, "--tls-auth-clients", mutual ? "yes" : "no",
				"--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
				"--daemonize", "no", "--logfile", ""};
	int argc = 18;

	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, cert);
	snprintf(key, sizeof(key), "%s/%s.key", dir, cert);
	snprintf(ca, sizeof(ca), "%s/ca1.crt", dir);
	if (mutual) {
		args[argc++] = "--requirepass";
		args[argc++] = PASSWORD;
	}
	if (tls12) {
		args[argc++] = "--tls-protocols";
		args[argc++] = "TLSv1.2";
	}
	args[argc] = NULL;
	return redis_child_start(program, args, true, port, plain);
}

static const char *file(const char *name)
{
	static char paths[8][128];
	static int next;
	char *p = paths[next++ % 8];

	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

/* ---- what a test sees ------------------------------------------------------------ */

typedef struct seen {
	char log[64][160];
	int n;
	int closed;
	char why[300];
	rlink *link;
} seen;

__attribute__((format(printf, 2, 3)))
static void note(seen *s, const char *fmt, ...)
{
	va_list ap;

	ck_assert_int_lt(s->n, 64);
	va_start(ap, fmt);
	vsnprintf(s->log[s->n++], sizeof(s->log[0]), fmt, ap);
	va_end(ap);
}

/* A reply as text: "PONG", "int 3", "nil", "err ...", "[a,b,c]", and
 * "big ok" for the 1 MB value when every byte is right. */
static void describe(const redisReply *r, char *out, size_t outlen)
{
	size_t used;

	switch (r->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
		if (r->len == BIG) {
			bool ok = true;

			for (size_t i = 0; i < BIG && ok; i++)
				ok = r->str[i] == (char)('a' + i % 26);
			snprintf(out, outlen, ok ? "big ok" : "big wrong");
			break;
		}
		snprintf(out, outlen, "%.*s", (int)r->len, r->str);
		break;
	case REDIS_REPLY_ERROR:
		snprintf(out, outlen, "err %.*s", (int)r->len, r->str);
		break;
	case REDIS_REPLY_INTEGER:
		snprintf(out, outlen, "int %lld", r->integer);
		break;
	case REDIS_REPLY_NIL:
		snprintf(out, outlen, "nil");
		break;
	case REDIS_REPLY_ARRAY:
		snprintf(out, outlen, "[");
		for (size_t i = 0; i < r->elements; i++) {
			used = strlen(out);
			if (i > 0 && used + 1 < outlen)
				out[used++] = ',', out[used] = '\0';
			describe(r->element[i], out + used, outlen - used);
		}
		used = strlen(out);
		snprintf(out + used, outlen - used, "]");
		break;
	default:
		snprintf(out, outlen, "?");
	}
}

static void on_reply(rlink *l, redisReply *r, void *arg)
{
	seen *s = arg;
	char text[140];

	(void)l;
	if (r == NULL) {
		note(s, "NULL");
		return;
	}
	describe(r, text, sizeof(text));
	note(s, "%s", text);
}

static void on_push(rlink *l, redisReply *r, void *arg)
{
	seen *s = arg;
	char text[140];

	(void)l;
	describe(r, text, sizeof(text));
	note(s, "push %s", text);
}

static void on_closed(rlink *l, const char *why, void *arg)
{
	seen *s = arg;

	(void)l;
	s->closed++;
	snprintf(s->why, sizeof(s->why), "%s", why);
	note(s, "closed %s", why);
}

/* ---- the loop --------------------------------------------------------------------- */

static void deadline_cb(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Until the log has `n` entries, or `ms` pass. */
static bool run_until_logged(uv_loop_t *loop, seen *s, int n, unsigned ms)
{
	uv_timer_t t;
	bool late = false;

	uv_timer_init(loop, &t);
	t.data = &late;
	uv_timer_start(&t, deadline_cb, ms, 0);
	while (s->n < n && !late)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return s->n >= n;
}

static void finish(uv_loop_t *loop)
{
	for (int i = 0; i < 200 && uv_loop_alive(loop); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		uv_run(loop, UV_RUN_NOWAIT);
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(uv_loop_close(loop), 0);
}

static rtls_config *config(const char *ca, const char *cert, const char *key,
			   const char *server_name, bool no_verify)
{
	rtls_opts o = {
		.ca_file = ca != NULL ? file(ca) : NULL,
		.cert_file = cert != NULL ? file(cert) : NULL,
		.key_file = key != NULL ? file(key) : NULL,
		.server_name = server_name,
		.no_verify = no_verify,
	};
	char why[200] = "";
	rtls_config *c = rtls_config_new(&o, why, sizeof(why));

	ck_assert_msg(c != NULL, "rtls_config_new: %s", why);
	return c;
}

static rlink *open_link(uv_loop_t *loop, seen *s, const char *host, int port,
			const char *password, bool subscriber, const rtls_config *tls)
{
	rlink_opts o = {
		.host = host,
		.port = port,
		.password = password,
		.connect_timeout_ms = timeout_ms,
		.subscriber = subscriber,
		.on_push = on_push,
		.on_closed = on_closed,
		.arg = s,
		.tls = tls,
	};
	rlink *l = rlink_open(loop, &o);

	ck_assert_ptr_nonnull(l);
	s->link = l;
	return l;
}

static int cmd(rlink *l, seen *s, const char *a0, const char *a1, const char *a2)
{
	const char *argv[3] = {a0, a1, a2};
	int argc = a2 != NULL ? 3 : a1 != NULL ? 2 : 1;

	return rlink_command(l, argc, argv, NULL, on_reply, s);
}

/* A link that must fail: a PING queued at once gets NULL, then on_closed
 * once with a line that holds `expect` (case aside). */
static void expect_failure(const char *host, int port, const char *password,
			   rtls_config *c, const char *expect)
{
	uv_loop_t loop;
	seen s = {0};
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, host, port, password, false, c);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 2, WAIT_MS));
	ck_assert_str_eq(s.log[0], "NULL");
	ck_assert_int_eq(s.closed, 1);
	if (getenv("RLINK_TLS_SHOW") != NULL)
		fprintf(stderr, "line: %s\n", s.why);
	ck_assert_msg(strcasestr(s.why, expect) != NULL, "\"%s\" does not say \"%s\"", s.why, expect);
	ck_assert(!rlink_connected(l));
	rlink_close(l);
	finish(&loop);
	rtls_config_free(c);
}

/* ---- working -------------------------------------------------------------------------- */

START_TEST(commands_queued_before_the_handshake_answer_in_order)
{
	uv_loop_t loop;
	seen s = {0};
	rtls_config *c = config("ca1.crt", NULL, NULL, NULL, false);
	char *big = malloc(BIG);
	const char *set[3] = {"SET", "tls:big", big};
	const size_t setlens[3] = {3, 7, BIG};
	rlink *l;

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)('a' + i % 26);
	uv_loop_init(&loop);
	/* "localhost": the name is verified (and sent as SNI). */
	l = open_link(&loop, &s, "localhost", good_port, NULL, false, c);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert_int_eq(rlink_command(l, 3, set, setlens, on_reply, &s), 0);
	ck_assert_int_eq(cmd(l, &s, "STRLEN", "tls:big", NULL), 0);
	ck_assert_int_eq(cmd(l, &s, "GET", "tls:big", NULL), 0);
	ck_assert_int_eq(cmd(l, &s, "ECHO", "after", NULL), 0);
	free(big);
	ck_assert(!rlink_connected(l));
	ck_assert(run_until_logged(&loop, &s, 5, WAIT_MS));
	ck_assert_str_eq(s.log[0], "PONG");
	ck_assert_str_eq(s.log[1], "OK");
	ck_assert_str_eq(s.log[2], "int 1048576");
	ck_assert_str_eq(s.log[3], "big ok");
	ck_assert_str_eq(s.log[4], "after");
	ck_assert(rlink_connected(l));

	/* Once up: a burst in one loop turn, and the big value twice more. */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(cmd(l, &s, "GET", "tls:big", NULL), 0);
	ck_assert_int_eq(cmd(l, &s, "DEL", "tls:big", NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 8, WAIT_MS));
	ck_assert_str_eq(s.log[5], "big ok");
	ck_assert_str_eq(s.log[6], "big ok");
	ck_assert_str_eq(s.log[7], "int 1");
	ck_assert_int_eq(s.closed, 0);
	rlink_close(l);
	finish(&loop);
	rtls_config_free(c);
}
END_TEST

START_TEST(an_ip_address_is_verified_as_an_ip_address)
{
	uv_loop_t loop;
	seen s = {0};
	rtls_config *c = config("ca1.crt", NULL, NULL, NULL, false);
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "127.0.0.1", good_port, NULL, false, c);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	ck_assert_str_eq(s.log[0], "PONG");
	rlink_close(l);
	finish(&loop);
	rtls_config_free(c);
}
END_TEST

START_TEST(a_subscriber_gets_pushes_over_tls)
{
	uv_loop_t loop;
	seen sub = {0}, pub = {0};
	rtls_config *c = config("ca1.crt", NULL, NULL, "localhost", false);
	const char *subscribe[2] = {"SUBSCRIBE", "tls:ch"};
	rlink *ls, *lp;

	uv_loop_init(&loop);
	ls = open_link(&loop, &sub, "127.0.0.1", good_port, NULL, true, c);
	lp = open_link(&loop, &pub, "127.0.0.1", good_port, NULL, false, c);
	ck_assert_int_eq(rlink_command(ls, 2, subscribe, NULL, NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &sub, 1, WAIT_MS));
	ck_assert_str_eq(sub.log[0], "push [subscribe,tls:ch,int 1]");
	ck_assert_int_eq(cmd(lp, &pub, "PUBLISH", "tls:ch", "hello"), 0);
	ck_assert(run_until_logged(&loop, &sub, 2, WAIT_MS));
	ck_assert_str_eq(sub.log[1], "push [message,tls:ch,hello]");
	ck_assert(run_until_logged(&loop, &pub, 1, WAIT_MS));
	ck_assert_str_eq(pub.log[0], "int 1");
	rlink_close(ls);
	rlink_close(lp);
	finish(&loop);
	rtls_config_free(c);
}
END_TEST

START_TEST(a_client_certificate_where_the_server_wants_one)
{
	uv_loop_t loop;
	seen s = {0};
	rtls_config *c = config("ca1.crt", "client.crt", "client.key", NULL, false);
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "localhost", mutual_port, PASSWORD, false, c);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	ck_assert_str_eq(s.log[0], "PONG");
	ck_assert(rlink_connected(l));
	rlink_close(l);
	finish(&loop);
	rtls_config_free(c);
}
END_TEST

START_TEST(verify_off_takes_a_server_from_another_ca)
{
	uv_loop_t loop;
	seen s = {0};
	rtls_config *c = config("ca2.crt", NULL, NULL, "wrong.example", true);
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "127.0.0.1", expired_port, NULL, false, c);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	ck_assert_str_eq(s.log[0], "PONG");
	rlink_close(l);
	finish(&loop);
	rtls_config_free(c);
}
END_TEST

/* ---- failing -------------------------------------------------------------------------- */

START_TEST(a_server_from_another_ca_fails_verification)
{
	char line[300];

	/* redis-server sends its CA along (OpenSSL builds the chain from
	 * tls-ca-cert-file), so the CA is found, and is not ours. */
	snprintf(line, sizeof(line),
		 "TLS handshake failed: certificate verify failed (self-signed certificate in certificate chain: the server's CA is not in %s/ca2.crt)",
		 dir);
	expect_failure("localhost", good_port, NULL, config("ca2.crt", NULL, NULL, NULL, false), line);
}
END_TEST

START_TEST(a_wrong_server_name_is_a_hostname_mismatch)
{
	expect_failure("127.0.0.1", good_port, NULL,
		       config("ca1.crt", NULL, NULL, "wrong.example", false),
		       "TLS handshake failed: certificate verify failed (hostname mismatch: the certificate is not for wrong.example)");
}
END_TEST

START_TEST(a_wrong_ip_address_is_a_mismatch)
{
	expect_failure("127.0.0.1", good_port, NULL, config("ca1.crt", NULL, NULL, "127.0.0.2", false),
		       "certificate verify failed (IP address mismatch: the certificate is not for 127.0.0.2)");
}
END_TEST

START_TEST(an_expired_server_certificate)
{
	expect_failure("localhost", expired_port, NULL, config("ca1.crt", NULL, NULL, NULL, false),
		       "TLS handshake failed: certificate verify failed (certificate has expired)");
}
END_TEST

START_TEST(no_client_certificate_where_the_server_wants_one)
{
	expect_failure("localhost", mutual_port, PASSWORD, config("ca1.crt", NULL, NULL, NULL, false),
		       "TLS handshake failed: the server requires a client certificate, and none is configured");
}
END_TEST

START_TEST(no_client_certificate_where_a_tls12_server_wants_one)
{
	expect_failure("localhost", mutual12_port, PASSWORD, config("ca1.crt", NULL, NULL, NULL, false),
		       "TLS handshake failed: the server requires a client certificate, and none is configured");
}
END_TEST

START_TEST(a_client_certificate_from_another_ca_is_refused)
{
	expect_failure("localhost", mutual_port, PASSWORD,
		       config("ca1.crt", "client2.crt", "client2.key", NULL, false),
		       "TLS handshake failed: the server refused our client certificate (");
}
END_TEST

START_TEST(tls_to_a_port_without_tls)
{
	/* redis-server waits for the end of a line that never comes. */
	timeout_ms = 500;
	expect_failure("localhost", plain_port, NULL, config("ca1.crt", NULL, NULL, NULL, false),
		       "timed out connecting after 500 ms: the TLS handshake did not finish "
		       "(does the server speak TLS on this port?)");
	timeout_ms = 3000;
}
END_TEST

START_TEST(the_connect_timeout_covers_the_handshake)
{
	/* A listening socket that never answers: the TCP connection is
	 * made by the kernel, the handshake never ends. */
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	rtls_config *c = config("ca1.crt", NULL, NULL, NULL, false);
	uv_loop_t loop;
	seen s = {0};
	rlink *l;
	rlink_opts o = {.host = "127.0.0.1", .connect_timeout_ms = 300,
			.on_closed = on_closed, .arg = &s, .tls = c};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	o.port = ntohs(sa.sin_port);
	uv_loop_init(&loop);
	l = rlink_open(&loop, &o);
	ck_assert_ptr_nonnull(l);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	ck_assert_str_eq(s.why, "timed out connecting after 300 ms: the TLS handshake did not finish "
			 "(does the server speak TLS on this port?)");
	rlink_close(l);
	finish(&loop);
	rtls_config_free(c);
	close(fd);
}
END_TEST

/* ---- configuration errors ------------------------------------------------------------- */

static void expect_config_error(const rtls_opts *o, const char *expect)
{
	char why[300] = "";
	rtls_config *c = rtls_config_new(o, why, sizeof(why));

	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(why, expect) != NULL, "\"%s\" does not say \"%s\"", why, expect);
}

START_TEST(bad_files_are_config_errors)
{
	rtls_opts o = {.ca_file = file("nosuch.crt")};
	char line[300];

	snprintf(line, sizeof(line), "cannot read the CA file %s: No such file or directory", o.ca_file);
	expect_config_error(&o, line);

	o = (rtls_opts){.ca_file = file("c.cnf")};
	expect_config_error(&o, "cannot load the CA file");

	o = (rtls_opts){.ca_file = file("ca1.crt"), .cert_file = file("client.crt")};
	expect_config_error(&o, "a client certificate needs both a certificate file and a key file");

	o = (rtls_opts){.cert_file = file("client.crt"), .key_file = file("server.key")};
	snprintf(line, sizeof(line), "the key file %s does not match the certificate file %s",
		 o.key_file, o.cert_file);
	expect_config_error(&o, line);

	/* Nothing given: the system's store, verification on. */
	o = (rtls_opts){0};
	rtls_config_free(rtls_config_new(&o, NULL, 0));
	rtls_config_free(NULL);
}
END_TEST

static Suite *rlink_tls_suite(void)
{
	Suite *s = suite_create("rlink_tls");
	TCase *tc = tcase_create("working");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, commands_queued_before_the_handshake_answer_in_order);
	tcase_add_test(tc, an_ip_address_is_verified_as_an_ip_address);
	tcase_add_test(tc, a_subscriber_gets_pushes_over_tls);
	tcase_add_test(tc, a_client_certificate_where_the_server_wants_one);
	tcase_add_test(tc, verify_off_takes_a_server_from_another_ca);
	suite_add_tcase(s, tc);
	tc = tcase_create("failing");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, a_server_from_another_ca_fails_verification);
	tcase_add_test(tc, a_wrong_server_name_is_a_hostname_mismatch);
	tcase_add_test(tc, a_wrong_ip_address_is_a_mismatch);
	tcase_add_test(tc, an_expired_server_certificate);
	tcase_add_test(tc, no_client_certificate_where_the_server_wants_one);
	tcase_add_test(tc, no_client_certificate_where_a_tls12_server_wants_one);
	tcase_add_test(tc, a_client_certificate_from_another_ca_is_refused);
	tcase_add_test(tc, tls_to_a_port_without_tls);
	tcase_add_test(tc, the_connect_timeout_covers_the_handshake);
	tcase_add_test(tc, bad_files_are_config_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *program = getenv("REDIS_SERVER");
	const char *openssl = getenv("OPENSSL");
	char rm[128];
	SRunner *sr;
	int failed;

	if (program == NULL || program[0] == '\0')
		program = REDIS_SERVER_DEFAULT;
	if (openssl == NULL || openssl[0] == '\0')
		openssl = "openssl";
	if (strcmp(program, "no") == 0 || access(program, X_OK) != 0) {
		printf("SKIP: redis-server not found (%s): apt-get install "
		       "redis-server, or set REDIS_SERVER\n", program);
		return 77;
	}
	if (system("command -v openssl >/dev/null 2>&1") != 0 && getenv("OPENSSL") == NULL) {
		printf("SKIP: openssl not found: apt-get install openssl, or set OPENSSL\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/confab-tls-XXXXXX");
	if (mkdtemp(dir) == NULL || !make_certificates(openssl)) {
		fprintf(stderr, "cannot make the certificates in %s\n", dir);
		return EXIT_FAILURE;
	}
	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	good_pid = start_redis(program, "server", false, false, &good_port, &plain_port);
	expired_pid = start_redis(program, "expired", false, false, &expired_port, NULL);
	mutual_pid = start_redis(program, "server", true, false, &mutual_port, NULL);
	mutual12_pid = start_redis(program, "server", true, true, &mutual12_port, NULL);
	if (good_pid < 0 || expired_pid < 0 || mutual_pid < 0 || mutual12_pid < 0) {
		fprintf(stderr, "cannot start %s with TLS\n", program);
		failed = 1;
	} else {
		sr = srunner_create(rlink_tls_suite());
		srunner_run_all(sr, CK_VERBOSE);
		failed = srunner_ntests_failed(sr);
		srunner_free(sr);
	}
	redis_child_stop(good_pid);
	redis_child_stop(expired_pid);
	redis_child_stop(mutual_pid);
	redis_child_stop(mutual12_pid);
	if (system(rm) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
