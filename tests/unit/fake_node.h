/* A broker for the core's unit tests: the real core (host slots, session
 * flow, auth chain, router, registry) between a fake transport, a fake
 * backplane and a fake auth plugin that record every call. */
#ifndef CONFAB_TESTS_FAKE_NODE_H
#define CONFAB_TESTS_FAKE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <check.h>
#include <confab/plugin.h>

#include "broker.h"

#define FAKE_FRAMES 16
#define FAKE_FRAME_LEN 512
#define FAKE_CALLS 64

/* One client connection of the fake transport. */
typedef struct fake_conn {
	confab_session *session;     /* NULL once the transport said closed */
	bool answered;               /* open_done came */
	bool allowed;
	int status;
	char reason[128];
	char frames[FAKE_FRAMES][FAKE_FRAME_LEN];
	size_t n_frames;
	int close_code;              /* what close() asked for; 0: not asked */
	char close_reason[64];
} fake_conn;

/* How the fake auth plugin answers authenticate(). */
typedef enum fake_auth_mode {
	FAKE_AUTH_NOW,               /* done() before authenticate returns */
	FAKE_AUTH_LATER              /* kept; fake_auth_answer() answers */
} fake_auth_mode;

typedef struct fake_node {
	broker b;
	confab_ctx transport, backplane, auth;
	confab_ctx *chain[2];
	confab_plugin transport_desc, backplane_desc, auth_desc;
	confab_transport_ops transport_ops;
	confab_backplane_ops backplane_ops;
	confab_auth_ops auth_ops;

	fake_conn conns[8];
	size_t n_conns;

	/* backplane calls, in order, as text: "user_online alice" */
	char calls[FAKE_CALLS][160];
	size_t n_calls;
	bool defer_publish;          /* publish keeps its callback (below) */
	confab_publish_done publish_done;
	void *publish_arg;
	uint64_t seq;

	/* user_ready (ABI 1.8): absent unless fake_user_ready() sets a mode */
	int ready_refuse;            /* 0: keep the callback; else returned */
	confab_status_done ready_done[8];
	void *ready_arg[8];
	size_t n_ready;

	/* the auth plugin's answer */
	fake_auth_mode auth_mode;
	confab_auth_result auth_result;
	confab_auth_done auth_done;  /* a LATER answer still owed */
	void *auth_arg;
	unsigned authenticates, cancels;
} fake_node;

/* Builds the node from broker.ini text ([broker] keys; `plugins` is
 * supplied) with or without the auth plugin in the chain. */
void fake_node_init(fake_node *n, const char *broker_keys, bool with_auth);
/* Closes what is still open, turns the loop until every handle closed. */
void fake_node_free(fake_node *n);

/* The auth plugin allows `user` (now or later, per auth_mode). */
void fake_auth_allow(fake_node *n, const char *user, int64_t expires_ms);
void fake_auth_deny(fake_node *n, int http_status);
void fake_auth_ignore(fake_node *n);
/* Delivers the answer a LATER plugin owes. */
void fake_auth_answer(fake_node *n);

/* Gives the backplane a user_ready slot that keeps each callback for
 * fake_ready_answer (refuse 0), or returns `refuse` (a negative code). */
void fake_user_ready(fake_node *n, int refuse);
/* Calls the i-th kept user_ready callback with `status`. */
void fake_ready_answer(fake_node *n, size_t i, int status);

/* A client connects (host session_open) / sends a text frame / its
 * connection ends (host session_closed). */
fake_conn *fake_open(fake_node *n, const char *remote);
void fake_recv(fake_node *n, fake_conn *c, const char *text);
void fake_closed(fake_node *n, fake_conn *c);

/* True when the backplane was called so (exact text). */
bool fake_called(const fake_node *n, const char *call);
/* The index of the call, or -1. */
int fake_call_index(const fake_node *n, const char *call);
/* The last frame sent to `c`, or "". */
const char *fake_last_frame(const fake_conn *c);
/* True when a frame sent to `c` contains `text`. */
bool fake_frame_has(const fake_conn *c, const char *text);

/* Turns the loop until `*flag` is non-zero or `max_ms` passed. */
void fake_run_until(fake_node *n, const int *flag, uint64_t max_ms);

/* Runs the suite; the exit status for main. */
int fake_run_suite(Suite *s);

#endif
