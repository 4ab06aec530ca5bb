/* The core's families. Labels with a fixed set of values (request types,
 * error codes, close reasons) get every series at start, so that a family
 * shows its zeros and a hot path never registers anything. */
#include "counters.h"

#include <stddef.h>
#include <string.h>
#include <uv.h>

#include "broker.h"
#include "confab-build.h"
#include "log.h"
#include "protocol.h"

static const char *const request_types[] = {
	"join", "leave", "send", "direct", "presence", "history", "ping", "invalid"
};
static const char *const envelope_kinds[] = { "message", "direct", "member_join", "member_leave" };
static const char *const error_codes[] = {
	ERR_BAD_REQUEST, ERR_NOT_MEMBER, ERR_FORBIDDEN, ERR_TOO_LARGE, ERR_RATE_LIMITED,
	ERR_OFFLINE, ERR_UNAVAILABLE, ERR_INTERNAL
};
static const char *const close_reasons[] = { "slow_consumer", "flood", "credentials_expired" };
static const char *const auth_results[] = { "ignore", "allow", "deny", "error" };
#define N_(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(N_(request_types) == COUNTERS_REQ_INVALID + 1, "one name per request type");
_Static_assert(N_(close_reasons) == COUNTERS_CLOSE_N, "one name per close reason");
_Static_assert(CONFAB_AUTH_IGNORE == 0 && CONFAB_AUTH_ALLOW == 1 && CONFAB_AUTH_DENY == 2,
	       "auth_results follows confab_auth_decision");

/* The core's families but build info and auth results: where the first
 * series' id goes in `counters`, then what family() takes. */
typedef struct core_family {
	size_t field;
	uint32_t type;
	const char *name, *help, *label;
	const char *const *values;
	size_t n_values;
} core_family;

#define ONE(field, type, name, help) { offsetof(counters, field), type, name, help, NULL, NULL, 0 }
#define BY(field, name, help, label, values) \
	{ offsetof(counters, field), CONFAB_METRIC_COUNTER, name, help, label, values, N_(values) }
static const core_family core_families[] = {
	ONE(sessions, CONFAB_METRIC_GAUGE, "confab_sessions",
	    "Sessions open on this node (admitted by auth)"),
	ONE(sessions_total, CONFAB_METRIC_COUNTER, "confab_sessions_total",
	    "Sessions admitted since start"),
	ONE(rooms, CONFAB_METRIC_GAUGE, "confab_rooms",
	    "Rooms with at least one member on this node"),
	BY(received, "confab_messages_received_total",
	   "Request frames received from clients, by request type (invalid: did not parse)",
	   "type", request_types),
	BY(delivered, "confab_messages_delivered_total",
	   "Envelopes from the backplane handed to a local session's transport, by kind",
	   "kind", envelope_kinds),
	ONE(acks, CONFAB_METRIC_COUNTER, "confab_acks_sent_total",
	    "Acks sent for send and direct requests"),
	BY(errors, "confab_errors_sent_total", "Error frames sent to clients, by code",
	   "code", error_codes),
	BY(closes, "confab_session_closes_total", "Sessions the core closed, by reason",
	   "reason", close_reasons),
	ONE(backplane_up, CONFAB_METRIC_GAUGE, "confab_backplane_up",
	    "1 while the backplane is up, else 0"),
	ONE(reconnects, CONFAB_METRIC_COUNTER, "confab_backplane_reconnects_total",
	    "Times the backplane came back up after being down"),
	ONE(publish_seconds, CONFAB_METRIC_HISTOGRAM, "confab_backplane_publish_seconds",
	    "Round trip of a publish or direct: from the call to the backplane's answer"),
	ONE(send_ack_seconds, CONFAB_METRIC_HISTOGRAM, "confab_send_ack_seconds",
	    "From a send or direct request's frame to its ack"),
};

static int add_family(broker *b, const confab_metric_family *f)
{
	char err[160];
	int id = metrics_family(&b->metrics, b, f, err, sizeof(err));
	if (id < 0)
		log_line(CONFAB_LOG_ERROR, "metrics", "%s", err);
	return id;
}

/* Registers a family with one label and a series per value, or none when
 * values is NULL (the one unlabelled series). The first series' id, or a
 * negative error. */
static int family(broker *b, uint32_t type, const char *name, const char *help,
		  const char *label, const char *const *values, size_t n)
{
	confab_metric_family f = {
		.size = sizeof(f), .type = type, .name = name, .help = help,
		.labels = label ? &label : NULL, .n_labels = label ? 1 : 0,
	};
	int id = add_family(b, &f);
	if (id < 0)
		return id;
	int first = -1;
	for (size_t i = 0; i < (values ? n : 1); i++) {
		int s = metrics_series(&b->metrics, b, id, values ? &values[i] : NULL);
		if (s < 0)
			return s;
		if (first < 0)
			first = s;
	}
	return first;
}

static int auth_families(broker *b)
{
	static const char *const labels[] = { "plugin", "result" };
	confab_metric_family f = {
		.size = sizeof(f), .type = CONFAB_METRIC_COUNTER, .name = "confab_auth_results_total",
		.help = "Answers of the auth plugins, by plugin and result (ignore: no opinion, "
			"error: the plugin failed)",
		.labels = labels, .n_labels = 2,
	};
	int id = add_family(b, &f);
	if (id < 0)
		return id;
	for (size_t i = 0; i < b->n_chain; i++) {
		confab_ctx *ctx = b->chain[i];
		if (ctx->plugin.desc->kind != CONFAB_KIND_AUTH)
			continue;
		for (size_t r = 0; r < N_(auth_results); r++) {
			const char *values[] = { ctx->name, auth_results[r] };
			int s = metrics_series(&b->metrics, b, id, values);
			if (s < 0)
				return s;
			if (r == 0)
				ctx->metric_auth = s;
		}
	}
	return 0;
}

int counters_init(broker *b)
{
	counters *c = &b->counters;
	char abi[16];
	snprintf(abi, sizeof(abi), "%d.%d", CONFAB_ABI_MAJOR, CONFAB_ABI_MINOR);
	static const char *const build_labels[] = { "version", "abi" };
	const char *build_values[] = { PACKAGE_VERSION, abi };
	confab_metric_family build = {
		.size = sizeof(build), .type = CONFAB_METRIC_GAUGE, .name = "confab_build_info",
		.help = "Always 1: the broker's version and plugin ABI in its labels",
		.labels = build_labels, .n_labels = 2,
	};
	int id = add_family(b, &build);
	int s = id < 0 ? id : metrics_series(&b->metrics, b, id, build_values);
	if (s < 0)
		return s;
	metrics_set(&b->metrics, s, 1);

	for (size_t i = 0; i < N_(core_families); i++) {
		const core_family *f = &core_families[i];
		int first = family(b, f->type, f->name, f->help, f->label, f->values, f->n_values);
		if (first < 0)
			return first;
		*(int *)((char *)c + f->field) = first;
	}
	return auth_families(b);
}

void counters_collect(broker *b)
{
	metrics_set(&b->metrics, b->counters.sessions, (int64_t)confab_dict_count(b->sessions));
	metrics_set(&b->metrics, b->counters.rooms, (int64_t)rooms_count(b->rooms));
	metrics_set(&b->metrics, b->counters.backplane_up, b->backplane_up);
}

void counters_error(broker *b, const char *code)
{
	for (size_t i = 0; i < N_(error_codes); i++)
		if (strcmp(code, error_codes[i]) == 0)
			metrics_inc(&b->metrics, b->counters.errors + (int)i);
}

void counters_auth(broker *b, confab_ctx *plugin, uint32_t decision)
{
	if (plugin && decision <= CONFAB_AUTH_DENY)
		metrics_inc(&b->metrics, plugin->metric_auth + (int)decision);
}

void counters_auth_failed(broker *b, confab_ctx *plugin)
{
	metrics_inc(&b->metrics, plugin->metric_auth + 3);
}

void counters_backplane(broker *b, bool up)
{
	if (up && b->counters.backplane_seen_up)
		metrics_inc(&b->metrics, b->counters.reconnects);
	if (up)
		b->counters.backplane_seen_up = true;
}

void counters_since(broker *b, int series, uint64_t t0_ns)
{
	metrics_observe(&b->metrics, series, (double)(uv_hrtime() - t0_ns) / 1e9);
}
