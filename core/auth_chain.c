/* Plugins may answer later than the call, so the chain keeps its own copy
 * of the request for the plugins still to be asked. */
#include "auth_chain.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "broker.h"
#include "config.h"
#include "log.h"
#include "protocol.h"
#include "session.h"

typedef struct chain_run {
	confab_session *session;     /* holds a reference */
	size_t next;                 /* index in broker->chain to ask next */
	bool in_call;                /* inside authenticate(): answer is recorded */
	bool answered;
	confab_auth_decision decision;
	int http_status;
	char user[PROTOCOL_NAME_MAX + 8];
	char reason[128];
	/* what an ALLOW granted (ABI 1.1), copied: the plugin's are borrowed */
	char **rooms;                /* NULL: every room */
	size_t n_rooms;
	char **direct;               /* NULL: anyone */
	size_t n_direct;
	int64_t expires_ms;
	char who[64];                /* the plugin that answered, for the log */
	confab_request req;          /* deep copy */
	confab_header *headers;
	char *strings;               /* storage for every string of req */
} chain_run;

/* Copies `src` into run->req with one allocation for all strings. */
static int copy_request(chain_run *run, const confab_request *src)
{
	const char *fields[4] = { src->transport, src->remote_addr, src->path, src->query };
	size_t total = 0;
	for (int i = 0; i < 4; i++)
		total += (fields[i] ? strlen(fields[i]) : 0) + 1;
	for (size_t i = 0; i < src->n_headers; i++)
		total += strlen(src->headers[i].name) + strlen(src->headers[i].value) + 2;

	run->strings = malloc(total);
	run->headers = src->n_headers ? calloc(src->n_headers, sizeof(*run->headers)) : NULL;
	if (!run->strings || (src->n_headers && !run->headers))
		return CONFAB_ENOMEM;

	char *p = run->strings;
	const char *copies[4];
	for (int i = 0; i < 4; i++) {
		size_t n = fields[i] ? strlen(fields[i]) : 0;
		memcpy(p, fields[i] ? fields[i] : "", n + 1);
		copies[i] = p;
		p += n + 1;
	}
	for (size_t i = 0; i < src->n_headers; i++) {
		size_t a = strlen(src->headers[i].name), b = strlen(src->headers[i].value);
		memcpy(p, src->headers[i].name, a + 1);
		run->headers[i].name = p;
		p += a + 1;
		memcpy(p, src->headers[i].value, b + 1);
		run->headers[i].value = p;
		p += b + 1;
	}
	run->req = (confab_request){
		.size = sizeof(confab_request),
		.transport = copies[0],
		.remote_addr = copies[1],
		.path = copies[2],
		.query = copies[3],
		.headers = run->headers,
		.n_headers = src->n_headers,
	};
	return 0;
}

static void run_free(chain_run *run)
{
	session_unref(run->session);
	config_free_list(run->rooms, run->n_rooms);
	config_free_list(run->direct, run->n_direct);
	free(run->headers);
	free(run->strings);
	free(run);
}

/* Random bytes for guest names, drawn 64 at a time: a getrandom() per
 * connection was a measurable share of a connect storm's system calls. */
static unsigned char guest_pool[64];
static size_t guest_pool_left;

static void guest_name(char *out, size_t len)
{
	unsigned char bytes[4] = { 0 };
	if (guest_pool_left < sizeof(bytes)) {
		if (uv_random(NULL, NULL, guest_pool, sizeof(guest_pool), 0, NULL) == 0) {
			guest_pool_left = sizeof(guest_pool);
		} else {
			/* no entropy source: fall back to time and address */
			uint64_t x = uv_hrtime() ^ (uint64_t)(uintptr_t)out;
			memcpy(guest_pool, &x, sizeof(bytes));
			guest_pool_left = sizeof(bytes);
		}
	}
	guest_pool_left -= sizeof(bytes);
	memcpy(bytes, guest_pool + guest_pool_left, sizeof(bytes));
	snprintf(out, len, "guest-%02x%02x%02x%02x", bytes[0], bytes[1], bytes[2], bytes[3]);
}

/* Ends the run with the recorded decision (or the anonymous rule). */
static void finish(chain_run *run)
{
	confab_session *s = run->session;
	broker *b = s->broker;
	if (s->state != SESSION_PENDING) {
		run_free(run);   /* the client left meanwhile */
		return;
	}
	if (b->stopping) {
		session_deny(s, 503, "server shutting down");
	} else if (run->decision == CONFAB_AUTH_ALLOW) {
		if (protocol_valid_user(run->user)) {
			session_grant g = {
				.user = run->user,
				.rooms = run->rooms,
				.n_rooms = run->n_rooms,
				.direct = run->direct,
				.n_direct = run->n_direct,
				.expires_ms = run->expires_ms,
			};
			run->rooms = run->direct = NULL;
			run->n_rooms = run->n_direct = 0;
			session_admit(s, &g);
		} else {
			log_line(CONFAB_LOG_ERROR, "auth", "plugin %s allowed an invalid user id; refusing",
				 run->who);
			session_deny(s, 403, "invalid user id");
		}
	} else if (run->decision == CONFAB_AUTH_DENY) {
		int st = run->http_status;
		int status = st == 401 || st == 403 || st == 429 || st == 503 ? st : 403;
		log_line(CONFAB_LOG_DEBUG, "auth", "%s denied by %s", s->remote, run->who);
		session_deny(s, status, run->reason[0] ? run->reason : "not allowed");
	} else if (b->cfg.broker.allow_anonymous) {
		char guest[32];
		guest_name(guest, sizeof(guest));
		session_grant g = { .user = guest };
		session_admit(s, &g);
	} else {
		session_deny(s, 401, "authentication required");
	}
	run_free(run);
}

static int copy_list(const char *const *src, size_t n, char ***out, size_t *n_out)
{
	char **list = calloc(n ? n : 1, sizeof(*list));
	if (!list)
		return CONFAB_ENOMEM;
	*out = list;
	for (size_t i = 0; i < n; i++) {
		if (!(list[i] = strdup(src[i] ? src[i] : "")))
			return CONFAB_ENOMEM;
		(*n_out)++;
	}
	return 0;
}

static void step(chain_run *run);

static void answered(void *arg, const confab_auth_result *r)
{
	chain_run *run = arg;
	if (run->answered) {
		log_line(CONFAB_LOG_ERROR, "auth", "plugin %s answered twice; ignoring the second answer",
			 run->who);
		return;
	}
	run->answered = true;
	run->decision = r ? r->decision : CONFAB_AUTH_DENY;
	if (run->decision == CONFAB_AUTH_DENY) {
		run->http_status = r ? r->http_status : 503;
		snprintf(run->reason, sizeof(run->reason), "%s", r && r->reason ? r->reason : "");
	} else if (run->decision == CONFAB_AUTH_ALLOW) {
		snprintf(run->user, sizeof(run->user), "%s", r->user ? r->user : "");
		/* permissions: only from a 1.1+ answer long enough to hold them */
		int rc = 0;
		if (CONFAB_HAS(r, n_rooms) && r->rooms)
			rc |= copy_list(r->rooms, r->n_rooms, &run->rooms, &run->n_rooms);
		if (CONFAB_HAS(r, n_direct) && r->direct)
			rc |= copy_list(r->direct, r->n_direct, &run->direct, &run->n_direct);
		if (CONFAB_HAS(r, expires_ms))
			run->expires_ms = r->expires_ms;
		if (rc != 0) {
			run->decision = CONFAB_AUTH_DENY;
			run->http_status = 503;
			snprintf(run->reason, sizeof(run->reason), "broker out of memory");
		}
	}
	if (run->in_call)
		return;          /* step() goes on from the call site */
	if (run->decision == CONFAB_AUTH_IGNORE)
		step(run);
	else
		finish(run);
}

static void step(chain_run *run)
{
	broker *b = run->session->broker;
	while (run->next < b->n_chain) {
		confab_ctx *ctx = b->chain[run->next++];
		if (ctx->plugin.desc->kind != CONFAB_KIND_AUTH)
			continue;
		if (run->session->state != SESSION_PENDING)
			break;
		snprintf(run->who, sizeof(run->who), "%s", ctx->name);
		run->answered = false;
		run->decision = CONFAB_AUTH_IGNORE;
		run->in_call = true;
		int rc = ctx->plugin.desc->auth->authenticate(ctx->state, &run->req, answered, run);
		run->in_call = false;
		if (rc != 0) {
			log_line(CONFAB_LOG_ERROR, "auth", "plugin %s failed (%d)", ctx->name, rc);
			run->decision = CONFAB_AUTH_DENY;
			run->http_status = 503;
			snprintf(run->reason, sizeof(run->reason), "authentication unavailable");
			break;
		}
		if (!run->answered)
			return;      /* answers later, through answered() */
		if (run->decision != CONFAB_AUTH_IGNORE)
			break;
	}
	finish(run);
}

void auth_chain_run(confab_session *s, const confab_request *req)
{
	chain_run *run = calloc(1, sizeof(*run));
	if (!run || copy_request(run, req) != 0) {
		if (run) {
			free(run->headers);
			free(run->strings);
			free(run);
		}
		log_line(CONFAB_LOG_ERROR, "auth", "out of memory");
		session_deny(s, 503, "broker out of memory");
		return;
	}
	session_ref(s);
	run->session = s;
	step(run);
}
