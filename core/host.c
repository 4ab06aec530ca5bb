/* Each slot is a thin adapter from the SDK's names to the core module that
 * does the work, so the ABI stays separate from the core's internals. */
#include "host.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "auth_chain.h"
#include "buf.h"
#include "broker.h"
#include "confab-build.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "session_flow.h"
#include "settings.h"

static void host_log(confab_ctx *ctx, confab_log_level level, const char *fmt, ...)
	CONFAB_PRINTF(3, 4);
static void host_log(confab_ctx *ctx, confab_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vline(level, ctx->name, fmt, ap);
	va_end(ap);
}

static struct uv_loop_s *host_loop(confab_ctx *ctx)
{
	return &ctx->broker->loop;
}

static const char *host_name(confab_ctx *ctx)
{
	return ctx->name;
}

static const char *host_node_id(confab_ctx *ctx)
{
	return ctx->broker->cfg.broker.node_id;
}

static const char *host_config_get(confab_ctx *ctx, const char *key)
{
	config_entry *e = config_section_get(ctx->section, key);
	return e ? e->value : NULL;
}

static const char *host_broker_get(confab_ctx *ctx, const char *key)
{
	return config_broker_text(broker_config(ctx->broker), key);
}

static bool host_healthy(confab_ctx *ctx)
{
	return broker_healthy(ctx->broker);
}

static bool host_checking(confab_ctx *ctx)
{
	return ctx->broker->check_only;
}

/* ---- transports ---------------------------------------------------------- */

/* A browser names the page's origin; with allowed_origins set, only those
 * may connect. Clients that send no Origin (not browsers) are not subject
 * to it: the header protects users' browsers, not the broker. */
static bool origin_allowed(const broker *b, const confab_request *req)
{
	const broker_settings *bs = &b->cfg.broker;
	if (bs->n_allowed_origins == 0 || !req)
		return true;
	const char *origin = NULL;
	for (size_t i = 0; i < req->n_headers; i++)
		if (strcmp(req->headers[i].name, "origin") == 0)
			origin = req->headers[i].value;
	if (!origin)
		return true;
	for (size_t i = 0; i < bs->n_allowed_origins; i++)
		if (strcmp(bs->allowed_origins[i], "*") == 0 ||
		    strcasecmp(bs->allowed_origins[i], origin) == 0)
			return true;
	return false;
}

static confab_session *host_session_open(confab_ctx *ctx, const confab_request *req, void *conn,
					 confab_open_done done, void *arg)
{
	return session_flow_open(ctx, req, conn, done, arg, origin_allowed(ctx->broker, req));
}

static void host_session_recv(confab_session *s, const void *data, size_t len, unsigned flags)
{
	router_recv(s, data, len, flags);
}

static void host_session_closed(confab_session *s)
{
	session_flow_closed(s);
}

static void host_session_ended(confab_session *s, int code, const char *why)
{
	session_flow_ended(s, code, why);
}

static const confab_host_transport transport_entries = {
	.size = sizeof(confab_host_transport),
	.session_open = host_session_open,
	.session_recv = host_session_recv,
	.session_closed = host_session_closed,
	.session_ended = host_session_ended,
};

/* ---- backplanes ---------------------------------------------------------- */

static void host_deliver(confab_ctx *ctx, const confab_envelope *env)
{
	router_deliver(ctx->broker, env);
}

static void host_health(confab_ctx *ctx, bool up, const char *reason)
{
	broker *b = ctx->broker;
	if (b->backplane_up == up)
		return;
	b->backplane_up = up;
	counters_backplane(b, up);
	if (up)
		log_line(CONFAB_LOG_INFO, ctx->name, "backplane up");
	else
		log_line(CONFAB_LOG_WARN, ctx->name, "backplane down: %s", reason ? reason : "no reason given");
}

/* Degraded is not down: the core keeps routing requests (router.c checks
 * backplane_up only), so rooms the backplane can serve keep working while
 * /readyz tells the load balancer to prefer other nodes. */
static void host_degraded(confab_ctx *ctx, bool degraded, const char *reason)
{
	broker *b = ctx->broker;
	if (b->backplane_degraded == degraded)
		return;
	b->backplane_degraded = degraded;
	if (degraded)
		log_line(CONFAB_LOG_WARN, ctx->name, "backplane degraded: %s",
			 reason ? reason : "no reason given");
	else
		log_line(CONFAB_LOG_INFO, ctx->name, "backplane no longer degraded");
}

static const confab_host_backplane backplane_entries = {
	.size = sizeof(confab_host_backplane),
	.deliver = host_deliver,
	.health = host_health,
	.degraded = host_degraded,
};

/* ---- auth plugins -------------------------------------------------------- */

static const confab_host_auth auth_entries = {
	.size = sizeof(confab_host_auth),
	.login_begin = auth_chain_login_begin,
};

/* ---- metrics (every kind) ------------------------------------------------- */

/* A plugin's series are owned by its ctx, so that one instance cannot
 * update another's by a wrong handle. */
static int host_metric_family(confab_ctx *ctx, const confab_metric_family *f)
{
	char err[192];
	int rc = metrics_family(&ctx->broker->metrics, ctx, f, err, sizeof(err));
	if (rc < 0)
		log_line(CONFAB_LOG_ERROR, ctx->name, "metric family refused: %s", err);
	return rc;
}

static int host_metric_series(confab_ctx *ctx, int family, const char *const *values)
{
	return metrics_series(&ctx->broker->metrics, ctx, family, values);
}

static void host_metric_add(confab_ctx *ctx, int series, int64_t delta)
{
	metrics_add_checked(&ctx->broker->metrics, ctx, series, delta);
}

static void host_metric_set(confab_ctx *ctx, int series, int64_t v)
{
	metrics_set_checked(&ctx->broker->metrics, ctx, series, v);
}

static void host_metric_observe(confab_ctx *ctx, int series, double v)
{
	metrics_observe_checked(&ctx->broker->metrics, ctx, series, v);
}

static int host_metrics_scrape(confab_ctx *ctx,
			       void (*take)(void *arg, const char *text, size_t len), void *arg)
{
	broker *b = ctx->broker;
	size_t len;
	uint64_t t0 = uv_hrtime();
	counters_collect(b);
	const char *text = metrics_render(&b->metrics, &len);
	if (!text)
		return CONFAB_ENOMEM;
	take(arg, text, len);
	/* what a scrape holds the loop for (docs/performance.md measures it) */
	log_line(CONFAB_LOG_DEBUG, "metrics", "scrape: %zu series, %zu bytes in %.3f ms",
		 b->metrics.n_series, len, (double)(uv_hrtime() - t0) / 1e6);
	return 0;
}

static const confab_host_metrics metrics_entries = {
	.size = sizeof(confab_host_metrics),
	.family = host_metric_family,
	.series = host_metric_series,
	.add = host_metric_add,
	.set = host_metric_set,
	.observe = host_metric_observe,
	.scrape = host_metrics_scrape,
};

/* ---- the tables ---------------------------------------------------------- */

#define COMMON_SLOTS                                   \
	.size = sizeof(confab_host),                   \
	.abi_major = CONFAB_ABI_MAJOR,                 \
	.abi_minor = CONFAB_ABI_MINOR,                 \
	.broker_version = PACKAGE_VERSION,             \
	.log = host_log,                               \
	.loop = host_loop,                             \
	.name = host_name,                             \
	.node_id = host_node_id,                       \
	.config_get = host_config_get,                 \
	.broker_get = host_broker_get,                 \
	.config_error = settings_config_error,           \
	.healthy = host_healthy,                       \
	.buf_ref = buf_ref,                            \
	.buf_unref = buf_unref,                        \
	.config_uint = settings_config_uint,           \
	.config_bool = settings_config_bool,           \
	.broker_uint = settings_broker_uint,           \
	.metrics = &metrics_entries,                   \
	.checking = host_checking

static const confab_host transport_host = { COMMON_SLOTS, .transport = &transport_entries };
static const confab_host backplane_host = { COMMON_SLOTS, .backplane = &backplane_entries };
static const confab_host auth_host = { COMMON_SLOTS, .auth = &auth_entries };

const confab_host *host_table(confab_kind kind)
{
	switch (kind) {
	case CONFAB_KIND_TRANSPORT: return &transport_host;
	case CONFAB_KIND_BACKPLANE: return &backplane_host;
	case CONFAB_KIND_AUTH: return &auth_host;
	}
	return &auth_host;
}
