/* Plugins may answer later than the call, so the chain keeps its own copy
 * of the request for the plugins still to be asked. A decision awaited
 * from a plugin holds a place in the auth guard (auth_guard.c): the
 * bound on them is what keeps password checks from being a weapon, so
 * the place is given back only when the plugin answers or, if it can
 * (ABI 1.3 cancel), drops the work of a client that left. */
#include "auth_chain.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <confab/ratelimit.h>

#include "auth_guard.h"
#include "broker.h"
#include "config.h"
#include "counters.h"
#include "identity.h"
#include "log.h"
#include "login_throttle.h"
#include "protocol.h"

typedef struct chain_run {
	confab_session *session;     /* holds a reference */
	auth_chain_decided decided;
	size_t next;                 /* index in broker->chain to ask next */
	bool in_call;                /* inside authenticate(): answer is recorded */
	bool answered;
	bool waiting;                /* awaiting `asked`'s done: a place in the guard */
	bool waiting_failing;        /* ... counted among failing addresses */
	bool begun;                  /* `asked` called login_begin */
	confab_ctx *asked;           /* the plugin asked last */
	char addr[64];               /* the client's address key (guard, throttle) */
	char claimed[PROTOCOL_NAME_MAX + 8];  /* the name login_begin named */
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
	if (run->waiting)
		auth_guard_unwait(run->session->broker->auth_guard, run->addr, run->waiting_failing);
	if (run->session->auth_run == run)
		run->session->auth_run = NULL;
	session_unref(run->session);
	config_free_list(run->rooms, run->n_rooms);
	config_free_list(run->direct, run->n_direct);
	free(run->headers);
	free(run->strings);
	free(run);
}

/* A plugin's wrong answers can come once per client: one line a second. */
static confab_ratelimit plugin_fault_log = CONFAB_RATELIMIT_INIT(1000);

/* Ends the run with the recorded decision (or the anonymous rule). */
static void finish(chain_run *run)
{
	confab_session *s = run->session;
	broker *b = s->broker;
	uint64_t skipped;
	if (s->state != SESSION_PENDING) {
		run_free(run);   /* the client left meanwhile */
		return;
	}
	if (b->stopping) {
		run->decided(s, NULL, 503, "server shutting down");
	} else if (run->decision == CONFAB_AUTH_ALLOW) {
		if (protocol_valid_user(run->user) && identity_reserved(run->user)) {
			if (confab_ratelimit_allow(&plugin_fault_log, uv_now(&b->loop), &skipped))
				log_line(CONFAB_LOG_ERROR, "auth", "plugin %s allowed %s, a name in "
					 "the guests' name space (" IDENTITY_GUEST_PREFIX "...); "
					 "refusing (%llu more such lines since the last)", run->who,
					 run->user, (unsigned long long)skipped);
			run->decided(s, NULL, 403, "user id reserved for guests");
		} else if (protocol_valid_user(run->user)) {
			session_grant g = {
				.user = run->user,
				.rooms = run->rooms,
				.n_rooms = run->n_rooms,
				.direct = run->direct,
				.n_direct = run->n_direct,
				.expires_ms = run->expires_ms,
			};
			run->decided(s, &g, 0, NULL);
			/* what the callee did not take (an admission refused) */
			run->rooms = g.rooms;
			run->direct = g.direct;
			run->n_rooms = g.n_rooms;
			run->n_direct = g.n_direct;
		} else {
			if (confab_ratelimit_allow(&plugin_fault_log, uv_now(&b->loop), &skipped))
				log_line(CONFAB_LOG_ERROR, "auth", "plugin %s allowed an invalid user "
					 "id; refusing (%llu more such lines since the last)", run->who,
					 (unsigned long long)skipped);
			run->decided(s, NULL, 403, "invalid user id");
		}
	} else if (run->decision == CONFAB_AUTH_DENY) {
		int st = run->http_status;
		int status = st == 401 || st == 403 || st == 429 || st == 503 ? st : 403;
		log_line(CONFAB_LOG_DEBUG, "auth", "%s denied by %s", s->remote, run->who);
		run->decided(s, NULL, status, run->reason[0] ? run->reason : "not allowed");
	} else if (b->cfg.broker.allow_anonymous) {
		char guest[IDENTITY_GUEST_LEN];
		if (identity_guest_name(guest) != 0) {
			log_line(CONFAB_LOG_ERROR, "auth", "no random bytes for a guest name");
			run->decided(s, NULL, 503, "no guest name available");
		} else {
			session_grant g = { .user = guest };
			run->decided(s, &g, 0, NULL);
		}
	} else {
		run->decided(s, NULL, 401, "authentication required");
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
	if (run->waiting) {
		auth_guard_unwait(run->session->broker->auth_guard, run->addr, run->waiting_failing);
		run->waiting = false;
	}
	run->decision = r ? r->decision : CONFAB_AUTH_DENY;
	if (run->decision == CONFAB_AUTH_DENY) {
		run->http_status = r ? r->http_status : 503;
		snprintf(run->reason, sizeof(run->reason), "%s", r && r->reason ? r->reason : "");
		if (run->begun && run->http_status == 401)
			auth_guard_login_failed(run->session->broker->auth_guard, run->addr,
						run->claimed, uv_now(&run->session->broker->loop));
	} else if (run->decision == CONFAB_AUTH_ALLOW) {
		snprintf(run->user, sizeof(run->user), "%s", r->user ? r->user : "");
		/* permissions: only from a 1.1+ answer long enough to hold them */
		int rc = 0;
		if (CONFAB_HAS_FIELD(r, n_rooms) && r->rooms)
			rc |= copy_list(r->rooms, r->n_rooms, &run->rooms, &run->n_rooms);
		if (CONFAB_HAS_FIELD(r, n_direct) && r->direct)
			rc |= copy_list(r->direct, r->n_direct, &run->direct, &run->n_direct);
		if (CONFAB_HAS_FIELD(r, expires_ms))
			run->expires_ms = r->expires_ms;
		if (rc != 0) {
			run->decision = CONFAB_AUTH_DENY;
			run->http_status = 503;
			snprintf(run->reason, sizeof(run->reason), "broker out of memory");
		}
	}
	counters_auth(run->session->broker, run->asked, run->decision);
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
		const char *why = NULL;
		int refuse = auth_guard_may_wait(b->auth_guard, run->addr, uv_now(&b->loop), &why);
		if (refuse != 0) {
			/* refused before this plugin is asked: no work for it */
			snprintf(run->who, sizeof(run->who), "the core (pending auth bound)");
			run->decision = CONFAB_AUTH_DENY;
			run->http_status = refuse;
			snprintf(run->reason, sizeof(run->reason), "%s", why);
			break;
		}
		snprintf(run->who, sizeof(run->who), "%s", ctx->name);
		run->answered = false;
		run->begun = false;
		run->asked = ctx;
		run->decision = CONFAB_AUTH_IGNORE;
		run->in_call = true;
		int rc = ctx->plugin.desc->auth->authenticate(ctx->state, &run->req, answered, run);
		run->in_call = false;
		if (rc != 0) {
			counters_auth_failed(b, ctx);
			log_line(CONFAB_LOG_ERROR, "auth", "plugin %s failed (%d)", ctx->name, rc);
			run->decision = CONFAB_AUTH_DENY;
			run->http_status = 503;
			snprintf(run->reason, sizeof(run->reason), "authentication unavailable");
			break;
		}
		if (!run->answered) {
			/* answers later, through answered() (or cancel) */
			run->waiting = true;
			run->waiting_failing = auth_guard_wait(b->auth_guard, run->addr, uv_now(&b->loop));
			return;
		}
		if (run->decision != CONFAB_AUTH_IGNORE)
			break;
	}
	finish(run);
}

void auth_chain_run(confab_session *s, const confab_request *req, auth_chain_decided decided)
{
	chain_run *run = calloc(1, sizeof(*run));
	if (!run || copy_request(run, req) != 0) {
		if (run) {
			free(run->headers);
			free(run->strings);
			free(run);
		}
		log_line(CONFAB_LOG_ERROR, "auth", "out of memory");
		decided(s, NULL, 503, "broker out of memory");
		return;
	}
	session_ref(s);
	run->session = s;
	run->decided = decided;
	s->auth_run = run;
	login_throttle_address_key(s->remote, run->addr, sizeof(run->addr));
	step(run);
}

void auth_chain_cancel(confab_session *s)
{
	chain_run *run = s->auth_run;

	if (run == NULL || !run->waiting || run->answered)
		return;
	const confab_auth_ops *ops = run->asked->plugin.desc->auth;
	if (!CONFAB_HAS(ops, cancel) || ops->cancel == NULL)
		return;      /* the answer, when it comes, is dropped (finish) */
	auth_guard_unwait(s->broker->auth_guard, run->addr, run->waiting_failing);
	run->waiting = false;
	run->answered = true;  /* a done after cancel would be the plugin's bug */
	ops->cancel(run->asked->state, run);
	run_free(run);
}

int auth_chain_login_begin(confab_ctx *ctx, void *arg, const char *user)
{
	chain_run *run = arg;

	if (run == NULL || run->asked != ctx || run->answered || run->begun)
		return CONFAB_EINVAL;
	broker *b = ctx->broker;
	run->begun = true;
	snprintf(run->claimed, sizeof(run->claimed), "%s", user != NULL ? user : "");
	return auth_guard_login_begin(b->auth_guard, run->addr, run->claimed, uv_now(&b->loop));
}
