/* The fakes behind fake_node.h: each plugin's state is the fake_node, each
 * transport connection a fake_conn; they record and answer as told. */
#include "fake_node.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_guard.h"
#include "config.h"
#include "counters.h"
#include "host.h"
#include "session_flow.h"

static void record(fake_node *n, const char *fmt, ...) CONFAB_PRINTF(2, 3);
static void record(fake_node *n, const char *fmt, ...)
{
	ck_assert_uint_lt(n->n_calls, FAKE_CALLS);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(n->calls[n->n_calls++], sizeof(n->calls[0]), fmt, ap);
	va_end(ap);
}

/* ---- the transport ------------------------------------------------------- */

static int t_send(void *state, void *conn, confab_buf *frame)
{
	(void)state;
	fake_conn *c = conn;
	ck_assert_uint_lt(c->n_frames, FAKE_FRAMES);
	ck_assert_uint_lt(frame->len, FAKE_FRAME_LEN);
	memcpy(c->frames[c->n_frames], frame->data, frame->len);
	c->frames[c->n_frames++][frame->len] = '\0';
	return 0;
}

static void t_close(void *state, void *conn, int code, const char *reason)
{
	(void)state;
	fake_conn *c = conn;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
}

static void t_open_done(void *arg, bool allowed, int http_status, const char *reason)
{
	fake_conn *c = arg;
	ck_assert(!c->answered);
	c->answered = true;
	c->allowed = allowed;
	c->status = http_status;
	snprintf(c->reason, sizeof(c->reason), "%s", reason ? reason : "");
}

/* ---- the backplane ------------------------------------------------------- */

static int b_publish(void *state, const confab_envelope *env, confab_publish_done done,
		     void *arg)
{
	fake_node *n = state;
	record(n, "publish %s %.*s", env->room, (int)env->body_len, env->body);
	if (n->defer_publish) {
		ck_assert_ptr_null(n->publish_done);
		n->publish_done = done;
		n->publish_arg = arg;
	} else {
		done(arg, 0, ++n->seq);
	}
	return 0;
}

static int b_direct(void *state, const confab_envelope *env, confab_status_done done, void *arg)
{
	fake_node *n = state;
	record(n, "direct %s %.*s", env->to, (int)env->body_len, env->body);
	done(arg, 0);
	return 0;
}

static int b_room_join(void *state, const char *room, const char *user)
{
	record(state, "room_join %s %s", room, user);
	return 0;
}

static int b_room_leave(void *state, const char *room, const char *user)
{
	record(state, "room_leave %s %s", room, user);
	return 0;
}

static int b_user_online(void *state, const char *user)
{
	record(state, "user_online %s", user);
	return 0;
}

static int b_user_offline(void *state, const char *user)
{
	record(state, "user_offline %s", user);
	return 0;
}

static int b_user_ready(void *state, const char *user, confab_status_done done, void *arg)
{
	fake_node *n = state;
	record(n, "user_ready %s", user);
	if (n->ready_refuse != 0)
		return n->ready_refuse;
	ck_assert_uint_lt(n->n_ready, sizeof(n->ready_done) / sizeof(n->ready_done[0]));
	n->ready_done[n->n_ready] = done;
	n->ready_arg[n->n_ready++] = arg;
	return 0;
}

void fake_user_ready(fake_node *n, int refuse)
{
	n->ready_refuse = refuse;
	n->backplane_ops.user_ready = b_user_ready;
}

void fake_ready_answer(fake_node *n, size_t i, int status)
{
	ck_assert_uint_lt(i, n->n_ready);
	ck_assert_ptr_nonnull(n->ready_done[i]);
	confab_status_done done = n->ready_done[i];
	n->ready_done[i] = NULL;
	done(n->ready_arg[i], status);
}

static int b_presence(void *state, const char *room, confab_presence_done done, void *arg)
{
	(void)done;
	(void)arg;
	record(state, "presence %s", room);
	return CONFAB_EUNAVAILABLE;
}

static int b_history(void *state, const char *room, bool has_since, uint64_t since, size_t limit,
		     confab_history_done done, void *arg)
{
	(void)has_since;
	(void)since;
	(void)limit;
	(void)done;
	(void)arg;
	record(state, "history %s", room);
	return CONFAB_EUNAVAILABLE;
}

/* ---- the auth plugin ----------------------------------------------------- */

static int a_authenticate(void *state, const confab_request *req, confab_auth_done done,
			  void *arg)
{
	(void)req;
	fake_node *n = state;
	n->authenticates++;
	if (n->auth_mode == FAKE_AUTH_NOW) {
		done(arg, &n->auth_result);
		return 0;
	}
	ck_assert_ptr_null(n->auth_done);
	n->auth_done = done;
	n->auth_arg = arg;
	return 0;
}

static void a_cancel(void *state, void *arg)
{
	fake_node *n = state;
	ck_assert_ptr_eq(arg, n->auth_arg);
	n->cancels++;
	n->auth_done = NULL;
	n->auth_arg = NULL;
}

void fake_auth_allow(fake_node *n, const char *user, int64_t expires_ms)
{
	n->auth_result = (confab_auth_result){ .size = sizeof(confab_auth_result),
					       .decision = CONFAB_AUTH_ALLOW, .user = user,
					       .expires_ms = expires_ms };
}

void fake_auth_deny(fake_node *n, int http_status)
{
	n->auth_result = (confab_auth_result){ .size = sizeof(confab_auth_result),
					       .decision = CONFAB_AUTH_DENY,
					       .http_status = http_status, .reason = "fake says no" };
}

void fake_auth_ignore(fake_node *n)
{
	n->auth_result = (confab_auth_result){ .size = sizeof(confab_auth_result),
					       .decision = CONFAB_AUTH_IGNORE };
}

void fake_auth_answer(fake_node *n)
{
	ck_assert_ptr_nonnull(n->auth_done);
	confab_auth_done done = n->auth_done;
	n->auth_done = NULL;
	done(n->auth_arg, &n->auth_result);
}

/* ---- the node ------------------------------------------------------------ */

static void plugin(fake_node *n, confab_ctx *ctx, confab_plugin *desc, confab_kind kind,
		   const char *name)
{
	*desc = (confab_plugin){ .size = sizeof(*desc), .kind = kind, .name = name };
	ctx->broker = &n->b;
	ctx->name = (char *)name;
	ctx->plugin.desc = desc;
	ctx->state = n;
	ctx->inited = ctx->started = true;
}

void fake_node_init(fake_node *n, const char *broker_keys, bool with_auth)
{
	memset(n, 0, sizeof(*n));
	broker *b = &n->b;
	char ini[1024];
	snprintf(ini, sizeof(ini), "[broker]\nplugins = fake\nnode_id = n1\n%s\n",
		 broker_keys ? broker_keys : "");
	ck_assert_int_eq(uv_loop_init(&b->loop), 0);
	ck_assert_int_eq(config_load_string(ini, "test.ini", &b->cfg), 0);
	snprintf(b->run_id, sizeof(b->run_id), "r1");
	b->sessions = confab_dict_new();
	b->users = confab_dict_new();
	b->rooms = rooms_new();
	b->addresses = confab_dict_new();
	b->auth_guard = auth_guard_new(&b->cfg.broker);
	ck_assert(b->sessions && b->users && b->rooms && b->addresses && b->auth_guard);
	expiry_init(&b->expiry, &b->loop, session_flow_expired, b);

	n->transport_ops = (confab_transport_ops){ .size = sizeof(confab_transport_ops),
						   .send = t_send, .close = t_close };
	n->backplane_ops = (confab_backplane_ops){
		.size = sizeof(confab_backplane_ops), .publish = b_publish, .direct = b_direct,
		.room_join = b_room_join, .room_leave = b_room_leave,
		.user_online = b_user_online, .user_offline = b_user_offline,
		.presence = b_presence, .history = b_history };
	n->auth_ops = (confab_auth_ops){ .size = sizeof(confab_auth_ops),
					 .authenticate = a_authenticate, .cancel = a_cancel };
	plugin(n, &n->transport, &n->transport_desc, CONFAB_KIND_TRANSPORT, "fake_ws");
	n->transport_desc.transport = &n->transport_ops;
	plugin(n, &n->backplane, &n->backplane_desc, CONFAB_KIND_BACKPLANE, "fake_bp");
	n->backplane_desc.backplane = &n->backplane_ops;
	plugin(n, &n->auth, &n->auth_desc, CONFAB_KIND_AUTH, "fake_auth");
	n->auth_desc.auth = &n->auth_ops;

	n->chain[b->n_chain++] = &n->transport;
	if (with_auth)
		n->chain[b->n_chain++] = &n->auth;
	b->chain = n->chain;
	b->backplane = &n->backplane;
	b->serving = b->backplane_up = true;
	metrics_init(&b->metrics);
	ck_assert_int_eq(counters_init(b), 0);
	fake_auth_ignore(n);
}

void fake_node_free(fake_node *n)
{
	broker *b = &n->b;
	for (size_t i = 0; i < n->n_conns; i++)
		if (n->conns[i].session)
			fake_closed(n, &n->conns[i]);
	for (size_t i = 0; i < n->n_ready; i++)  /* as a backplane's destroy would */
		if (n->ready_done[i])
			fake_ready_answer(n, i, CONFAB_EUNAVAILABLE);
	ck_assert_uint_eq(confab_dict_count(b->sessions), 0);
	ck_assert_uint_eq(b->expiry.n, 0);
	expiry_close(&b->expiry);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&b->loop), 0);
	expiry_free(&b->expiry);
	confab_dict_free(b->sessions, NULL);
	confab_dict_free(b->users, NULL);
	confab_dict_free(b->addresses, NULL);
	rooms_free(b->rooms);
	auth_guard_free(b->auth_guard);
	metrics_free(&b->metrics);
	config_free(&b->cfg);
}

fake_conn *fake_open(fake_node *n, const char *remote)
{
	ck_assert_uint_lt(n->n_conns, sizeof(n->conns) / sizeof(n->conns[0]));
	fake_conn *c = &n->conns[n->n_conns++];
	confab_request req = { .size = sizeof(req), .transport = "fake_ws", .remote_addr = remote,
			       .path = "/ws", .query = "" };
	const confab_host *host = host_table(CONFAB_KIND_TRANSPORT);
	c->session = host->transport->session_open(&n->transport, &req, c, t_open_done, c);
	ck_assert_ptr_nonnull(c->session);
	return c;
}

void fake_recv(fake_node *n, fake_conn *c, const char *text)
{
	(void)n;
	host_table(CONFAB_KIND_TRANSPORT)->transport->session_recv(c->session, text, strlen(text), 0);
}

void fake_closed(fake_node *n, fake_conn *c)
{
	(void)n;
	ck_assert_ptr_nonnull(c->session);
	confab_session *s = c->session;
	c->session = NULL;
	host_table(CONFAB_KIND_TRANSPORT)->transport->session_closed(s);
}

int fake_call_index(const fake_node *n, const char *call)
{
	for (size_t i = 0; i < n->n_calls; i++)
		if (strcmp(n->calls[i], call) == 0)
			return (int)i;
	return -1;
}

bool fake_called(const fake_node *n, const char *call)
{
	return fake_call_index(n, call) >= 0;
}

const char *fake_last_frame(const fake_conn *c)
{
	return c->n_frames ? c->frames[c->n_frames - 1] : "";
}

bool fake_frame_has(const fake_conn *c, const char *text)
{
	for (size_t i = 0; i < c->n_frames; i++)
		if (strstr(c->frames[i], text))
			return true;
	return false;
}

static void on_bound(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

void fake_run_until(fake_node *n, const int *flag, uint64_t max_ms)
{
	uv_timer_t bound;
	bool over = false;
	uv_timer_init(&n->b.loop, &bound);
	bound.data = &over;
	uv_timer_start(&bound, on_bound, max_ms, 0);
	while (!*flag && !over)
		uv_run(&n->b.loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&bound, NULL);
	uv_run(&n->b.loop, UV_RUN_NOWAIT);
}

int fake_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
