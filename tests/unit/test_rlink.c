/* Unit tests for plugins/redislink/rlink, against a real redis-server
 * that the test starts on free loopback ports (one open, one with
 * requirepass) and stops by PID at the end.
 *
 * Each test runs its own loop, bounds every wait with a timer, and ends
 * by checking that closing its links left no handle open
 * (uv_loop_close() == 0). The events a test sees are written, in order,
 * into one log, so that "NULL to every waiting command, then on_closed
 * once" is checked as a sequence.
 *
 * REDIS_SERVER (the environment, else configure's path) names the
 * server; without one the test is skipped (exit 77).
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
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

#ifndef REDIS_SERVER_DEFAULT
#define REDIS_SERVER_DEFAULT "redis-server"
#endif

#define PASSWORD "s3cret"
#define WAIT_MS 5000

static int open_port, auth_port;
static pid_t open_pid, auth_pid;

/* ---- the servers ---------------------------------------------------------------- */

/* ---- what a test sees ----------------------------------------------------------------- */

typedef struct seen {
	char log[64][160];
	int n;
	int closed;           /* on_closed calls */
	char why[300];
	int pushes;
	bool close_in_reply;  /* the next reply callback closes its link */
	bool close_in_closed; /* on_closed closes its link */
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

/* A reply as text: "PONG", "int 3", "nil", "err ...", "[a,b,c]". */
static void describe(const redisReply *r, char *out, size_t outlen)
{
	size_t used;

	switch (r->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
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

	if (r == NULL) {
		note(s, "NULL");
	} else {
		describe(r, text, sizeof(text));
		note(s, "%s", text);
	}
	if (s->close_in_reply) {
		s->close_in_reply = false;
		rlink_close(l);
		s->link = NULL;
	}
}

static void on_push(rlink *l, redisReply *r, void *arg)
{
	seen *s = arg;
	char text[140];

	describe(r, text, sizeof(text));
	note(s, "push %s", text);
	s->pushes++;
}

static void on_closed(rlink *l, const char *why, void *arg)
{
	seen *s = arg;

	s->closed++;
	snprintf(s->why, sizeof(s->why), "%s", why);
	note(s, "closed %s", why);
	if (s->close_in_closed) {
		rlink_close(l);
		s->link = NULL;
	}
}

/* ---- the loop ------------------------------------------------------------------ */

static void deadline_cb(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Runs the loop until `*flag` or `ms` pass; the flag's value. */
static bool run_until(uv_loop_t *loop, const bool *flag, unsigned ms)
{
	uv_timer_t t;
	bool late = false;

	uv_timer_init(loop, &t);
	t.data = &late;
	uv_timer_start(&t, deadline_cb, ms, 0);
	while (!*flag && !late)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *flag;
}

/* Until the log has `n` entries. */
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

static void sleep_loop(uv_loop_t *loop, unsigned ms)
{
	bool never = false;

	run_until(loop, &never, ms);
}

/* Every link closed: nothing may be left open. */
static void finish(uv_loop_t *loop)
{
	for (int i = 0; i < 200 && uv_loop_alive(loop); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		uv_run(loop, UV_RUN_NOWAIT);
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(uv_loop_close(loop), 0);
}

static rlink *open_link(uv_loop_t *loop, seen *s, const char *host, int port,
			const char *password, bool subscriber)
{
	rlink_opts o = {
		.host = host,
		.port = port,
		.password = password,
		.connect_timeout_ms = 3000,
		.subscriber = subscriber,
		.on_push = on_push,
		.on_closed = on_closed,
		.arg = s,
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

/* ---- commands -------------------------------------------------------------------------- */

START_TEST(commands_queued_before_the_connection_answer_in_order)
{
	uv_loop_t loop;
	seen s = {0};
	rlink *l;
	const char *set[3] = {"SET", "rlink:bin", "a\0b"};
	const size_t setlens[3] = {3, 9, 3};

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "127.0.0.1", open_port, NULL, false);
	ck_assert(!rlink_connected(l));
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert_int_eq(cmd(l, &s, "DEL", "rlink:n", NULL), 0);
	ck_assert_int_eq(cmd(l, &s, "SET", "rlink:k", "v1"), 0);
	ck_assert_int_eq(cmd(l, &s, "GET", "rlink:k", NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(cmd(l, &s, "INCR", "rlink:n", NULL), 0);
	ck_assert_int_eq(rlink_command(l, 3, set, setlens, on_reply, &s), 0);
	ck_assert_int_eq(cmd(l, &s, "STRLEN", "rlink:bin", NULL), 0);
	ck_assert_int_eq(cmd(l, &s, "NOSUCHCOMMAND", NULL, NULL), 0);
	ck_assert_uint_eq(rlink_pending(l), 10);
	ck_assert_uint_ne(rlink_oldest(l), 0);

	ck_assert(run_until_logged(&loop, &s, 10, WAIT_MS));
	ck_assert_str_eq(s.log[0], "PONG");
	ck_assert_str_eq(s.log[2], "OK");
	ck_assert_str_eq(s.log[3], "v1");
	ck_assert_str_eq(s.log[4], "int 1");
	ck_assert_str_eq(s.log[5], "int 2");
	ck_assert_str_eq(s.log[6], "int 3");
	ck_assert_str_eq(s.log[7], "OK");
	ck_assert_str_eq(s.log[8], "int 3"); /* "a\0b": the lengths were used */
	ck_assert(strncmp(s.log[9], "err ERR unknown command", 23) == 0);
	ck_assert(rlink_connected(l));
	ck_assert_uint_eq(rlink_pending(l), 0);
	ck_assert_uint_eq(rlink_oldest(l), 0);

	/* Queued once connected: written at once. */
	ck_assert_int_eq(cmd(l, &s, "ECHO", "after", NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 11, WAIT_MS));
	ck_assert_str_eq(s.log[10], "after");
	ck_assert_int_eq(s.closed, 0);
	{
		char name[32];

		snprintf(name, sizeof(name), "127.0.0.1:%d", open_port);
		ck_assert_str_eq(rlink_name(l), name);
	}
	rlink_close(l);
	finish(&loop);
}
END_TEST

/* Each reply of a burst of INCRs: the next number, or a mismatch noted. */
typedef struct burst {
	long long next;
	int wrong, nulls;
} burst;

static void on_incr(rlink *l, redisReply *r, void *arg)
{
	burst *b = arg;

	if (r == NULL)
		b->nulls++;
	else if (r->type != REDIS_REPLY_INTEGER || r->integer != b->next)
		b->wrong++;
	b->next++;
}

START_TEST(a_burst_of_commands_answers_in_order)
{
	uv_loop_t loop;
	seen s = {0};
	burst b = {.next = 1};
	const char *incr[2] = {"INCR", "rlink:burst"};
	rlink *l;
	int n = 0;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "127.0.0.1", open_port, NULL, false);
	ck_assert_int_eq(cmd(l, &s, "DEL", "rlink:burst", NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	/* Connected: the first goes out at once, the rest while it is in
	 * flight, then a second burst from a later loop turn. */
	for (; n < 3000; n++)
		ck_assert_int_eq(rlink_command(l, 2, incr, NULL, on_incr, &b), 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	for (; n < 5000; n++)
		ck_assert_int_eq(rlink_command(l, 2, incr, NULL, on_incr, &b), 0);
	ck_assert_int_eq(cmd(l, &s, "GET", "rlink:burst", NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 2, WAIT_MS));
	ck_assert_str_eq(s.log[1], "5000");
	ck_assert_int_eq(b.next, 5001);
	ck_assert_int_eq(b.wrong, 0);
	ck_assert_int_eq(b.nulls, 0);
	ck_assert_uint_eq(rlink_pending(l), 0);
	rlink_close(l);
	finish(&loop);
}
END_TEST

START_TEST(a_host_name_is_resolved)
{
	uv_loop_t loop;
	seen s = {0};
	char name[64];
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "localhost", open_port, NULL, false);
	snprintf(name, sizeof(name), "localhost:%d", open_port);
	ck_assert_str_eq(rlink_name(l), name);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	/* localhost may resolve to ::1 first, where nothing listens: the
	 * link goes on to 127.0.0.1. */
	ck_assert_str_eq(s.log[0], "PONG");
	ck_assert(rlink_connected(l));
	rlink_close(l);
	finish(&loop);
}
END_TEST

/* Busy work that keeps libuv's thread pool full, so that a getaddrinfo
 * queued behind it is still waiting when the connect timeout fires. */
#define POOL_HOGS 16    /* the pool has 4 threads (UV_THREADPOOL_SIZE unset) */
static void hog_work(uv_work_t *w)
{
	(void)w;
	usleep(250 * 1000);
}

static void hog_done(uv_work_t *w, int status)
{
	(void)status;
	(void)w;
}

START_TEST(a_resolver_that_does_not_answer_times_out_resolving)
{
	uv_loop_t loop;
	seen s = {0};
	static uv_work_t hogs[POOL_HOGS];
	rlink_opts o = {.host = "localhost", .port = open_port, .connect_timeout_ms = 100,
			.on_closed = on_closed, .arg = &s};
	rlink *l;

	uv_loop_init(&loop);
	for (int i = 0; i < POOL_HOGS; i++)
		ck_assert_int_eq(uv_queue_work(&loop, &hogs[i], hog_work, hog_done), 0);
	l = rlink_open(&loop, &o);
	ck_assert_ptr_nonnull(l);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	ck_assert_str_eq(s.log[0], "closed timed out resolving localhost after 100 ms");
	ck_assert(!rlink_was_connected(l));
	rlink_close(l);
	finish(&loop);   /* runs until the hogs are done */
}
END_TEST

START_TEST(an_ipv6_literal_is_named_in_brackets)
{
	uv_loop_t loop;
	seen s = {0};
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "::1", 6, NULL, false);
	ck_assert_str_eq(rlink_name(l), "[::1]:6");
	rlink_close(l);
	/* The brackets of "[::1]:6" are accepted and not doubled. */
	l = open_link(&loop, &s, "[::1]", 6, NULL, false);
	ck_assert_str_eq(rlink_name(l), "[::1]:6");
	rlink_close(l);
	ck_assert_int_eq(s.n, 0);
	finish(&loop);
}
END_TEST

START_TEST(a_name_that_does_not_resolve_closes_the_link)
{
	uv_loop_t loop;
	seen s = {0};
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "no-such-host.invalid", 6379, NULL, false);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 2, WAIT_MS));
	ck_assert_str_eq(s.log[0], "NULL");
	ck_assert(strncmp(s.why, "cannot resolve no-such-host.invalid: ", 37) == 0);
	ck_assert_int_eq(s.closed, 1);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), CONFAB_EUNAVAILABLE);
	sleep_loop(&loop, 50);
	ck_assert_int_eq(s.n, 2);
	rlink_close(l);
	finish(&loop);
}
END_TEST

START_TEST(a_refused_connection_closes_the_link)
{
	uv_loop_t loop;
	seen s = {0};
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "127.0.0.1", redis_child_unused_port(), NULL, false);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 3, WAIT_MS));
	ck_assert_str_eq(s.log[0], "NULL");
	ck_assert_str_eq(s.log[1], "NULL");
	ck_assert_str_eq(s.log[2], "closed connection refused");
	ck_assert(!rlink_connected(l));
	ck_assert(!rlink_was_connected(l));  /* never was: "cannot connect" */
	ck_assert_uint_eq(rlink_pending(l), 0);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), CONFAB_EUNAVAILABLE);
	sleep_loop(&loop, 50);
	ck_assert_int_eq(s.closed, 1);
	rlink_close(l);
	finish(&loop);
}
END_TEST

START_TEST(a_silent_server_times_out)
{
	uv_loop_t loop;
	seen s = {0};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	rlink_opts o = {.host = "127.0.0.1", .password = "x", .connect_timeout_ms = 200,
			.on_closed = on_closed, .arg = &s};
	rlink *l;
	uint64_t t0;

	/* The kernel accepts the connection; nobody ever answers AUTH. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	o.port = ntohs(sa.sin_port);
	uv_loop_init(&loop);
	t0 = uv_now(&loop);
	l = rlink_open(&loop, &o);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 2, WAIT_MS));
	ck_assert_str_eq(s.log[0], "NULL");
	ck_assert_str_eq(s.log[1], "closed timed out connecting after 200 ms");
	ck_assert_uint_ge(uv_now(&loop) - t0, 190);
	rlink_close(l);
	finish(&loop);
	close(fd);
}
END_TEST

/* ---- a server that speaks wrong --------------------------------------------------------- */

/* A listener on the test's loop that sends `says` to whoever connects. */
typedef struct fake {
	uv_tcp_t server, client;
	uv_write_t w;
	const char *says;
	bool accepted;
	int port;
} fake;

static void fake_conn_cb(uv_stream_t *server, int status)
{
	fake *f = server->data;
	uv_buf_t buf;

	ck_assert_int_eq(status, 0);
	ck_assert(!f->accepted);
	uv_tcp_init(server->loop, &f->client);
	ck_assert_int_eq(uv_accept(server, (uv_stream_t *)&f->client), 0);
	f->accepted = true;
	buf = uv_buf_init((char *)f->says, (unsigned)strlen(f->says));
	ck_assert_int_eq(uv_write(&f->w, (uv_stream_t *)&f->client, &buf, 1, NULL), 0);
}

static void fake_start(uv_loop_t *loop, fake *f, const char *says)
{
	struct sockaddr_in sa;
	struct sockaddr_storage bound;
	int len = sizeof(bound);

	memset(f, 0, sizeof(*f));
	f->says = says;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	uv_tcp_init(loop, &f->server);
	f->server.data = f;
	ck_assert_int_eq(uv_tcp_bind(&f->server, (struct sockaddr *)&sa, 0), 0);
	ck_assert_int_eq(uv_listen((uv_stream_t *)&f->server, 4, fake_conn_cb), 0);
	ck_assert_int_eq(uv_tcp_getsockname(&f->server, (struct sockaddr *)&bound, &len), 0);
	f->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void fake_stop(fake *f)
{
	uv_close((uv_handle_t *)&f->server, NULL);
	if (f->accepted)
		uv_close((uv_handle_t *)&f->client, NULL);
}

START_TEST(a_protocol_error_closes_the_link)
{
	uv_loop_t loop;
	seen s = {0};
	fake f;
	rlink *l;

	uv_loop_init(&loop);
	fake_start(&loop, &f, "!not resp\r\n");
	l = open_link(&loop, &s, "127.0.0.1", f.port, NULL, false);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 2, WAIT_MS));
	ck_assert_str_eq(s.log[0], "NULL");
	ck_assert_msg(strncmp(s.why, "protocol error: ", 16) == 0, "why: %s", s.why);
	sleep_loop(&loop, 50);
	ck_assert_int_eq(s.closed, 1);
	rlink_close(l);
	fake_stop(&f);
	finish(&loop);
}
END_TEST

START_TEST(a_reply_nobody_asked_for_closes_a_command_link)
{
	uv_loop_t loop;
	seen s = {0};
	fake f;
	rlink *l;

	uv_loop_init(&loop);
	fake_start(&loop, &f, "+OK\r\n");
	l = open_link(&loop, &s, "127.0.0.1", f.port, NULL, false);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	ck_assert_int_eq(s.closed, 1);
	ck_assert_msg(strncmp(s.why, "a reply that no command waits for", 33) == 0, "why: %s", s.why);
	rlink_close(l);
	fake_stop(&f);
	finish(&loop);
}
END_TEST

/* ---- AUTH ------------------------------------------------------------------------------- */

START_TEST(auth_with_the_right_password)
{
	uv_loop_t loop;
	seen s = {0};
	rlink *l, *u;
	seen su = {0};
	rlink_opts o = {.host = "127.0.0.1", .user = "default", .password = PASSWORD,
			.on_closed = on_closed, .arg = &su};

	uv_loop_init(&loop);
	o.port = auth_port;
	l = open_link(&loop, &s, "127.0.0.1", auth_port, PASSWORD, false);
	ck_assert_int_eq(cmd(l, &s, "SET", "rlink:auth", "yes"), 0);
	ck_assert_int_eq(cmd(l, &s, "GET", "rlink:auth", NULL), 0);
	/* AUTH user password, as an ACL user does. */
	u = rlink_open(&loop, &o);
	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(cmd(u, &su, "GET", "rlink:auth", NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 2, WAIT_MS));
	ck_assert(run_until_logged(&loop, &su, 1, WAIT_MS));
	ck_assert_str_eq(s.log[0], "OK");
	ck_assert_str_eq(s.log[1], "yes");
	ck_assert_str_eq(su.log[0], "yes");
	ck_assert(rlink_connected(l));
	ck_assert(rlink_connected(u));
	ck_assert_int_eq(s.closed + su.closed, 0);
	rlink_close(l);
	rlink_close(u);
	finish(&loop);
}
END_TEST

START_TEST(auth_with_a_wrong_password_closes_the_link)
{
	uv_loop_t loop;
	seen s = {0};
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "127.0.0.1", auth_port, "wrong", false);
	ck_assert_int_eq(cmd(l, &s, "GET", "rlink:auth", NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 2, WAIT_MS));
	ck_assert_str_eq(s.log[0], "NULL");
	ck_assert_int_eq(s.closed, 1);
	ck_assert_msg(strncmp(s.why, "AUTH failed: WRONGPASS", 22) == 0, "why: %s", s.why);
	ck_assert(!rlink_connected(l));
	sleep_loop(&loop, 50);
	ck_assert_int_eq(s.n, 2);
	rlink_close(l);
	finish(&loop);
}
END_TEST

START_TEST(no_password_where_one_is_needed)
{
	uv_loop_t loop;
	seen s = {0};
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "127.0.0.1", auth_port, NULL, false);
	ck_assert_int_eq(cmd(l, &s, "GET", "rlink:auth", NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	/* Redis answers, the link stays: the owner decides. */
	ck_assert(strncmp(s.log[0], "err NOAUTH", 10) == 0);
	ck_assert_int_eq(s.closed, 0);
	rlink_close(l);
	finish(&loop);
}
END_TEST

/* ---- losing the server ---------------------------------------------------------------------- */

START_TEST(a_killed_client_gets_null_then_on_closed_once)
{
	uv_loop_t loop;
	seen s = {0}, k = {0};
	rlink *l, *killer;
	char id[32];

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "127.0.0.1", open_port, NULL, false);
	killer = open_link(&loop, &k, "127.0.0.1", open_port, NULL, false);
	ck_assert_int_eq(cmd(l, &s, "CLIENT", "ID", NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	ck_assert(strncmp(s.log[0], "int ", 4) == 0);
	snprintf(id, sizeof(id), "%.20s", s.log[0] + 4);
	ck_assert_int_eq(cmd(l, &s, "BLPOP", "rlink:never", "5"), 0);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	sleep_loop(&loop, 50);
	ck_assert_uint_eq(rlink_pending(l), 2);
	{
		const char *argv[4] = {"CLIENT", "KILL", "ID", id};

		ck_assert_int_eq(rlink_command(killer, 4, argv, NULL, on_reply, &k), 0);
	}
	ck_assert(run_until_logged(&loop, &s, 4, WAIT_MS));
	ck_assert(run_until_logged(&loop, &k, 1, WAIT_MS));
	ck_assert_str_eq(k.log[0], "int 1");
	ck_assert_str_eq(s.log[1], "NULL");
	ck_assert_str_eq(s.log[2], "NULL");
	ck_assert_str_eq(s.log[3], "closed connection closed by the server");
	ck_assert(!rlink_connected(l));
	ck_assert(rlink_was_connected(l));   /* it was: "lost the connection" */
	sleep_loop(&loop, 100);
	ck_assert_int_eq(s.closed, 1);
	ck_assert_int_eq(s.n, 4);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), CONFAB_EUNAVAILABLE);
	rlink_close(l);
	rlink_close(killer);
	finish(&loop);
}
END_TEST

/* ---- closing from callbacks --------------------------------------------------------------------- */

START_TEST(close_from_inside_a_reply)
{
	uv_loop_t loop;
	seen s = {0};
	rlink *l;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "127.0.0.1", open_port, NULL, false);
	s.close_in_reply = true;
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert_int_eq(cmd(l, &s, "ECHO", "two", NULL), 0);
	ck_assert_int_eq(cmd(l, &s, "ECHO", "three", NULL), 0);
	/* The three replies probably come in one read: the two after the
	 * close get NULL, from inside rlink_close, and nothing else. */
	ck_assert(run_until_logged(&loop, &s, 3, WAIT_MS));
	ck_assert_ptr_null(s.link);
	ck_assert_str_eq(s.log[0], "PONG");
	ck_assert_str_eq(s.log[1], "NULL");
	ck_assert_str_eq(s.log[2], "NULL");
	sleep_loop(&loop, 50);
	ck_assert_int_eq(s.n, 3);
	ck_assert_int_eq(s.closed, 0);
	finish(&loop);
}
END_TEST

START_TEST(close_from_inside_on_closed)
{
	uv_loop_t loop;
	seen s = {0};

	uv_loop_init(&loop);
	open_link(&loop, &s, "127.0.0.1", redis_child_unused_port(), NULL, false);
	s.close_in_closed = true;
	ck_assert_int_eq(cmd(s.link, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 2, WAIT_MS));
	ck_assert_ptr_null(s.link);
	ck_assert_str_eq(s.log[0], "NULL");
	ck_assert_str_eq(s.log[1], "closed connection refused");
	finish(&loop);
}
END_TEST

START_TEST(close_from_inside_the_null_replies_of_a_failure)
{
	uv_loop_t loop;
	seen s = {0};

	uv_loop_init(&loop);
	open_link(&loop, &s, "127.0.0.1", redis_child_unused_port(), NULL, false);
	s.close_in_reply = true;
	ck_assert_int_eq(cmd(s.link, &s, "PING", NULL, NULL), 0);
	ck_assert_int_eq(cmd(s.link, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 2, WAIT_MS));
	ck_assert_ptr_null(s.link);
	/* Closed during the failure: no on_closed after rlink_close. */
	sleep_loop(&loop, 50);
	ck_assert_int_eq(s.n, 2);
	ck_assert_str_eq(s.log[1], "NULL");
	ck_assert_int_eq(s.closed, 0);
	finish(&loop);
}
END_TEST

START_TEST(close_while_resolving_and_while_connecting)
{
	uv_loop_t loop;
	seen s = {0}, t = {0};
	rlink *a, *b;

	uv_loop_init(&loop);
	a = open_link(&loop, &s, "localhost", open_port, NULL, false);
	b = open_link(&loop, &t, "127.0.0.1", open_port, PASSWORD, false);
	ck_assert_int_eq(cmd(a, &s, "PING", NULL, NULL), 0);
	ck_assert_int_eq(cmd(b, &t, "PING", NULL, NULL), 0);
	rlink_close(a);
	rlink_close(b);
	ck_assert_int_eq(s.n, 1);
	ck_assert_str_eq(s.log[0], "NULL");
	ck_assert_int_eq(t.n, 1);
	ck_assert_str_eq(t.log[0], "NULL");
	rlink_close(NULL);
	finish(&loop);
	ck_assert_int_eq(s.n + t.n, 2);
}
END_TEST

/* ---- subscriptions ---------------------------------------------------------------------------------- */

START_TEST(a_subscriber_gets_pushes)
{
	uv_loop_t loop;
	seen s = {0}, p = {0};
	rlink *sub, *pub;
	const char *argv[2] = {"SUBSCRIBE", "rlink:ch"};
	const char *sargv[2] = {"SSUBSCRIBE", "rlink:sch"};
	const char *bad[1] = {"GET"};

	uv_loop_init(&loop);
	sub = open_link(&loop, &s, "127.0.0.1", open_port, NULL, true);
	pub = open_link(&loop, &p, "127.0.0.1", open_port, NULL, false);
	ck_assert_int_eq(rlink_command(sub, 2, argv, NULL, NULL, NULL), 0);
	ck_assert_int_eq(rlink_command(sub, 2, sargv, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(rlink_pending(sub), 0);
	/* A command with a callback gets its own reply, and the pushes that
	 * come while it waits are not taken for it. */
	ck_assert_int_eq(cmd(sub, &s, "PING", NULL, NULL), 0);
	ck_assert_uint_eq(rlink_pending(sub), 1);
	ck_assert(run_until_logged(&loop, &s, 3, WAIT_MS));
	ck_assert_str_eq(s.log[0], "push [subscribe,rlink:ch,int 1]");
	ck_assert_str_eq(s.log[1], "push [ssubscribe,rlink:sch,int 1]");
	ck_assert_str_eq(s.log[2], "[pong,]");

	ck_assert_int_eq(cmd(pub, &p, "PUBLISH", "rlink:ch", "hello"), 0);
	ck_assert(run_until_logged(&loop, &s, 4, WAIT_MS));
	ck_assert_str_eq(s.log[3], "push [message,rlink:ch,hello]");
	ck_assert_int_eq(cmd(pub, &p, "SPUBLISH", "rlink:sch", "hi"), 0);
	ck_assert(run_until_logged(&loop, &s, 5, WAIT_MS));
	ck_assert_str_eq(s.log[4], "push [smessage,rlink:sch,hi]");
	ck_assert(run_until_logged(&loop, &p, 2, WAIT_MS));
	ck_assert_str_eq(p.log[0], "int 1");
	ck_assert_str_eq(p.log[1], "int 1");
	/* An error nobody waits for is a push. */
	ck_assert_int_eq(rlink_command(sub, 1, bad, NULL, NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 6, WAIT_MS));
	ck_assert(strncmp(s.log[5], "push err ", 9) == 0);
	ck_assert_int_eq(s.pushes, 5);
	ck_assert_int_eq(s.closed, 0);
	rlink_close(sub);
	rlink_close(pub);
	finish(&loop);
}
END_TEST

/* ---- the oldest waiting command ---------------------------------------------------------------------- */

START_TEST(oldest_is_the_queue_time_of_the_command_waiting)
{
	uv_loop_t loop;
	seen s = {0};
	rlink *l;
	uint64_t queued, t0;

	uv_loop_init(&loop);
	l = open_link(&loop, &s, "127.0.0.1", open_port, NULL, false);
	ck_assert_int_eq(cmd(l, &s, "PING", NULL, NULL), 0);
	ck_assert(run_until_logged(&loop, &s, 1, WAIT_MS));
	ck_assert_uint_eq(rlink_oldest(l), 0);

	uv_update_time(&loop);
	t0 = uv_now(&loop);
	ck_assert_int_eq(cmd(l, &s, "BLPOP", "rlink:empty", "0.3"), 0);
	queued = rlink_oldest(l);
	ck_assert_uint_eq(queued, t0);
	ck_assert_uint_eq(rlink_pending(l), 1);
	sleep_loop(&loop, 150);
	ck_assert_uint_eq(rlink_oldest(l), queued);
	ck_assert_int_eq(s.n, 1);
	ck_assert(run_until_logged(&loop, &s, 2, WAIT_MS));
	ck_assert_str_eq(s.log[1], "nil");
	ck_assert_uint_ge(uv_now(&loop) - t0, 280);
	ck_assert_uint_eq(rlink_oldest(l), 0);
	ck_assert_uint_eq(rlink_pending(l), 0);
	rlink_close(l);
	finish(&loop);
}
END_TEST

static Suite *rlink_suite(void)
{
	Suite *s = suite_create("rlink");
	TCase *tc = tcase_create("connecting");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, commands_queued_before_the_connection_answer_in_order);
	tcase_add_test(tc, a_burst_of_commands_answers_in_order);
	tcase_add_test(tc, a_host_name_is_resolved);
	tcase_add_test(tc, an_ipv6_literal_is_named_in_brackets);
	tcase_add_test(tc, a_resolver_that_does_not_answer_times_out_resolving);
	tcase_add_test(tc, a_name_that_does_not_resolve_closes_the_link);
	tcase_add_test(tc, a_refused_connection_closes_the_link);
	tcase_add_test(tc, a_silent_server_times_out);
	tcase_add_test(tc, a_protocol_error_closes_the_link);
	tcase_add_test(tc, a_reply_nobody_asked_for_closes_a_command_link);
	suite_add_tcase(s, tc);
	tc = tcase_create("auth");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, auth_with_the_right_password);
	tcase_add_test(tc, auth_with_a_wrong_password_closes_the_link);
	tcase_add_test(tc, no_password_where_one_is_needed);
	suite_add_tcase(s, tc);
	tc = tcase_create("failures and closing");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, a_killed_client_gets_null_then_on_closed_once);
	tcase_add_test(tc, close_from_inside_a_reply);
	tcase_add_test(tc, close_from_inside_on_closed);
	tcase_add_test(tc, close_from_inside_the_null_replies_of_a_failure);
	tcase_add_test(tc, close_while_resolving_and_while_connecting);
	suite_add_tcase(s, tc);
	tc = tcase_create("subscriptions and timing");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, a_subscriber_gets_pushes);
	tcase_add_test(tc, oldest_is_the_queue_time_of_the_command_waiting);
	suite_add_tcase(s, tc);
	return s;
}

/* What both servers run with; the second requires a password. */
static const char *const common_args[] = {"--bind", "127.0.0.1", "--save", "", "--appendonly",
					  "no", "--daemonize", "no", "--logfile", "", NULL};
static const char *const auth_args[] = {"--bind", "127.0.0.1", "--save", "", "--appendonly",
					"no", "--daemonize", "no", "--logfile", "",
					"--requirepass", PASSWORD, NULL};

int main(void)
{
	const char *program = getenv("REDIS_SERVER");
	SRunner *sr;
	int failed;

	if (program == NULL || program[0] == '\0')
		program = REDIS_SERVER_DEFAULT;
	if (strcmp(program, "no") == 0 || access(program, X_OK) != 0) {
		printf("SKIP: redis-server not found (%s): apt-get install "
		       "redis-server, or set REDIS_SERVER\n", program);
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	open_pid = redis_child_start(program, common_args, false, &open_port, NULL);
	auth_pid = redis_child_start(program, auth_args, false, &auth_port, NULL);
	if (open_pid < 0 || auth_pid < 0) {
		fprintf(stderr, "cannot start %s\n", program);
		redis_child_stop(open_pid);
		redis_child_stop(auth_pid);
		return EXIT_FAILURE;
	}
	sr = srunner_create(rlink_suite());
	srunner_run_all(sr, CK_VERBOSE);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	redis_child_stop(open_pid);
	redis_child_stop(auth_pid);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
