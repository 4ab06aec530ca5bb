/* The broker's life: read broker.ini, load the chain, init every plugin
 * (all of it before any port opens), start, serve until a signal (SIGHUP
 * reloads: reload.c; SIGTERM drains first: drain.c), stop, destroy while
 * the loop still turns so that handles close, close the loop. */
#include "broker.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_guard.h"
#include "confab-build.h"
#include "control.h"
#include "embedded.h"
#include "host.h"
#include "log.h"
#include "notify.h"
#include "reload.h"
#include "session_flow.h"

/* How long shutdown waits for clients to take their close frames. */
#define STOP_GRACE_MS 3000
#define STOP_POLL_MS 20

int64_t broker_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool broker_healthy(const broker *b)
{
	return b->serving && !b->draining && !b->stopping && b->backplane_up &&
	       !b->backplane_degraded;
}

static confab_ctx *ctx_new(broker *b, const char *name)
{
	confab_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	ctx->broker = b;
	ctx->name = strdup(name);
	if (!ctx->name) {
		free(ctx);
		return NULL;
	}
	ctx->section = config_section_find(&b->cfg, name);
	return ctx;
}

static void ctx_free(confab_ctx *ctx)
{
	if (!ctx)
		return;
	loader_close(&ctx->plugin);
	free(ctx->name);
	free(ctx);
}

/* Loads every chain entry and checks the chain's shape. */
static int load_chain(broker *b)
{
	const broker_settings *bs = &b->cfg.broker;
	b->chain = calloc(bs->n_plugins ? bs->n_plugins : 1, sizeof(*b->chain));
	if (!b->chain)
		return CONFAB_ENOMEM;

	size_t transports = 0;
	for (size_t i = 0; i < bs->n_plugins; i++) {
		char *path = loader_resolve_path(bs->plugin_dir, bs->plugins[i]);
		char *name = loader_instance_name(bs->plugins[i]);
		confab_ctx *ctx = (path && name) ? ctx_new(b, name) : NULL;
		if (!ctx) {
			free(path);
			free(name);
			return CONFAB_ENOMEM;
		}
		b->chain[b->n_chain++] = ctx;
		for (size_t j = 0; j + 1 < b->n_chain; j++) {
			if (strcmp(b->chain[j]->name, name) == 0) {
				config_report(&b->cfg, "broker", "plugins",
					      "'%s' appears twice in the chain (each entry reads the section named after its file)",
					      name);
				free(path);
				free(name);
				return CONFAB_EINVAL;
			}
		}
		char err[512];
		int rc = loader_open(path, &ctx->plugin, err, sizeof(err));
		if (rc != 0)
			config_report(&b->cfg, "broker", "plugins", "%s: %s", path, err);
		free(path);
		free(name);
		if (rc != 0)
			return rc;

		const confab_plugin *d = ctx->plugin.desc;
		if (d->kind == CONFAB_KIND_TRANSPORT) {
			transports++;
		} else if (d->kind == CONFAB_KIND_BACKPLANE) {
			if (b->backplane) {
				config_report(&b->cfg, "broker", "plugins",
					      "two backplanes in the chain (%s and %s); at most one is allowed",
					      b->backplane->name, ctx->name);
				return CONFAB_EINVAL;
			}
			b->backplane = ctx;
		}
		log_line(CONFAB_LOG_DEBUG, "loader", "loaded %s: %s plugin %s %s (ABI %u.%u)",
			 ctx->plugin.path, loader_kind_name(d->kind), d->name, d->version,
			 d->abi_major, d->abi_minor);
	}
	if (transports == 0) {
		config_report(&b->cfg, "broker", "plugins",
			      "no transport plugin in the chain: clients could not connect (add ws)");
		return CONFAB_EINVAL;
	}
	if (!b->backplane) {
		/* the built-in backplane: same descriptor checks, no file */
		confab_ctx *ctx = ctx_new(b, "embedded");
		if (!ctx)
			return CONFAB_ENOMEM;
		ctx->section = NULL;
		ctx->plugin.desc = embedded_backplane();
		char err[256];
		if (loader_check(ctx->plugin.desc, err, sizeof(err)) != 0) {
			log_line(CONFAB_LOG_ERROR, "core", "embedded backplane: %s", err);
			ctx_free(ctx);
			return CONFAB_EINVAL;
		}
		b->embedded = b->backplane = ctx;
	}
	return 0;
}

config *broker_config(broker *b)
{
	return b->reading ? b->reading : &b->cfg;
}

int broker_unknown_keys(const config *cfg, const confab_ctx *ctx)
{
	for (size_t i = 0; ctx->section && i < ctx->section->n_entries; i++) {
		if (!ctx->section->entries[i].used) {
			config_report(cfg, ctx->name, ctx->section->entries[i].key,
				      "unknown key (plugin %s does not read it)", ctx->plugin.desc->name);
			return CONFAB_EINVAL;
		}
	}
	return 0;
}

static int init_plugin(broker *b, confab_ctx *ctx)
{
	const confab_plugin *d = ctx->plugin.desc;
	int rc = d->init(ctx, host_table(d->kind), &ctx->state);
	if (rc != 0) {
		/* one line per problem: the plugin's own, or ours if it said nothing */
		if (!ctx->reported)
			config_report(&b->cfg, ctx->name, NULL,
				      "plugin %s failed to initialise (error %d)", d->name, rc);
		return rc;
	}
	ctx->inited = true;
	return broker_unknown_keys(&b->cfg, ctx);
}

size_t broker_start_order(broker *b, confab_ctx **out)
{
	static const confab_kind kinds[] = { CONFAB_KIND_BACKPLANE, CONFAB_KIND_AUTH,
					     CONFAB_KIND_TRANSPORT };
	size_t n = 0;
	if (b->embedded)
		out[n++] = b->embedded;
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < b->n_chain; i++)
			if (b->chain[i]->plugin.desc && b->chain[i]->plugin.desc->kind == kinds[k])
				out[n++] = b->chain[i];
	return n;
}

/* Sections that no chain entry reads are most likely a typo or a plugin
 * left out of the chain: say so, but they harm nothing. */
void broker_warn_unknown_sections(const broker *b, const config *cfg)
{
	for (size_t i = 0; i < cfg->n_sections; i++) {
		const char *name = cfg->sections[i].name;
		bool known = strcmp(name, "broker") == 0;
		for (size_t j = 0; !known && j < b->n_chain; j++)
			known = strcmp(b->chain[j]->name, name) == 0;
		if (!known)
			log_line(CONFAB_LOG_WARN, "config", "%s:%d: [%s]: no plugin in the chain is named '%s'; section ignored",
				 cfg->path, cfg->sections[i].line, name, name);
	}
}

int broker_init(broker *b, const char *config_path, bool check_only)
{
	memset(b, 0, sizeof(*b));
	b->check_only = check_only;
	int rc = uv_loop_init(&b->loop);
	if (rc != 0) {
		log_line(CONFAB_LOG_ERROR, "core", "cannot create the event loop: %s", uv_strerror(rc));
		return 1;
	}
	if (config_load(config_path, &b->cfg) != 0 || control_check(&b->cfg) != 0)
		return 1;
	log_set_level(b->cfg.broker.log_level);
	log_set_format(b->cfg.broker.log_format);

	/* the start time in base 36 keeps ids unique across restarts */
	uint64_t t = (uint64_t)broker_now_ms();
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[t % 36];
		t /= 36;
	} while (t && n < sizeof(tmp) - 1);
	for (size_t i = 0; i < n; i++)
		b->run_id[i] = tmp[n - 1 - i];

	metrics_init(&b->metrics);
	b->sessions = confab_dict_new();
	b->users = confab_dict_new();
	b->rooms = rooms_new();
	b->addresses = confab_dict_new();
	b->auth_guard = auth_guard_new(&b->cfg.broker);
	if (!b->sessions || !b->users || !b->rooms || !b->addresses || !b->auth_guard) {
		log_line(CONFAB_LOG_ERROR, "core", "out of memory");
		return 1;
	}

	rc = load_chain(b);
	if (rc == CONFAB_ENOMEM)
		log_line(CONFAB_LOG_ERROR, "core", "out of memory loading plugins");
	if (rc != 0)
		return 1;
	if (counters_init(b) != 0) {
		log_line(CONFAB_LOG_ERROR, "core", "cannot register the core's metrics");
		return 1;
	}

	broker_warn_unknown_sections(b, &b->cfg);

	for (size_t i = 0; i < b->n_chain; i++) {
		const confab_plugin *d = b->chain[i]->plugin.desc;
		if (d->kind == CONFAB_KIND_TRANSPORT && d->transport->headroom > b->headroom)
			b->headroom = d->transport->headroom;
	}

	if (b->embedded && init_plugin(b, b->embedded) != 0)
		return 1;
	for (size_t i = 0; i < b->n_chain; i++)
		if (init_plugin(b, b->chain[i]) != 0)
			return 1;
	return 0;
}

/* Destroys every initialised plugin: transports, auth, then the backplane. */
static void destroy_plugins(broker *b)
{
	confab_ctx *order[b->n_chain + 1];
	size_t n = broker_start_order(b, order);
	while (n-- > 0) {
		confab_ctx *ctx = order[n];
		if (!ctx->inited)
			continue;
		ctx->inited = false;
		ctx->started = false;
		ctx->plugin.desc->destroy(ctx->state);
		ctx->state = NULL;
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void finish_stop(broker *b)
{
	uv_timer_stop(&b->stop_timer);
	drain_close(&b->drain);
	if (confab_dict_count(b->sessions) > 0)
		log_line(CONFAB_LOG_WARN, "core", "%zu sessions still open after %d ms; closing anyway",
			 confab_dict_count(b->sessions), STOP_GRACE_MS);
	control_close(b);
	notify_close();
	destroy_plugins(b);
	uv_close((uv_handle_t *)&b->stop_timer, on_handle_closed);
	expiry_close(&b->expiry);
	uv_close((uv_handle_t *)&b->sigint, on_handle_closed);
	uv_close((uv_handle_t *)&b->sigterm, on_handle_closed);
	uv_close((uv_handle_t *)&b->sighup, on_handle_closed);
}

static void on_stop_tick(uv_timer_t *t)
{
	broker *b = t->data;
	if (confab_dict_count(b->sessions) == 0 || uv_now(&b->loop) >= b->stop_deadline)
		finish_stop(b);
}

static void begin_stop(broker *b, const char *why)
{
	if (b->stopping)
		return;
	b->stopping = true;
	drain_close(&b->drain);
	log_line(CONFAB_LOG_INFO, "core", "%s: shutting down", why);
	char status[128];
	snprintf(status, sizeof status, "%s: shutting down", why);
	notify_stopping(status);
	confab_ctx *order[b->n_chain + 1];
	size_t n = broker_start_order(b, order);
	while (n-- > 0) {
		confab_ctx *ctx = order[n];
		if (ctx->started && ctx->plugin.desc->stop)
			ctx->plugin.desc->stop(ctx->state);
	}
	b->stop_deadline = uv_now(&b->loop) + STOP_GRACE_MS;
	uv_timer_start(&b->stop_timer, on_stop_tick, 0, STOP_POLL_MS);
}

static void drained(broker *b)
{
	begin_stop(b, "drained");
}

void broker_drain(broker *b, const char *why)
{
	const broker_settings *bs = &b->cfg.broker;
	if (b->draining || b->stopping)
		return;
	if (!b->serving || (bs->drain_grace == 0 && bs->drain_window == 0)) {
		begin_stop(b, why);
		return;
	}
	b->draining = true;
	log_line(CONFAB_LOG_INFO, "core",
		 "%s: draining: new clients refused; %zu sessions close over %zu s after %zu s",
		 why, confab_dict_count(b->sessions), bs->drain_window, bs->drain_grace);
	char status[128];
	snprintf(status, sizeof status, "%s: draining %zu sessions", why,
		 confab_dict_count(b->sessions));
	notify_stopping(status);
	if (drain_start(&b->drain, b, (uint64_t)bs->drain_grace * 1000,
			(uint64_t)bs->drain_window * 1000, drained) != 0) {
		log_line(CONFAB_LOG_ERROR, "core", "cannot start the drain's timer; stopping at once");
		begin_stop(b, why);
	}
}

/* SIGTERM drains; a second SIGTERM, or SIGINT at any time (a terminal's
 * Ctrl-C), stops at once: sessions closed with 1001 together. */
static void on_signal(uv_signal_t *sig, int signum)
{
	broker *b = sig->data;
	if (signum == SIGHUP) {
		broker_reload(b, "SIGHUP");
		return;
	}
	if (signum == SIGTERM && !b->draining)
		broker_drain(b, "SIGTERM");
	else
		begin_stop(b, signum == SIGINT ? "SIGINT" : "SIGTERM again");
}

/* Starting failed after order[0..started) started: stops those, closes
 * everything, returns broker_run's status (1). */
static int fail_start(broker *b, confab_ctx **order, size_t started)
{
	b->exit_code = 1;
	b->stopping = true;
	while (started-- > 0)
		if (order[started]->plugin.desc->stop)
			order[started]->plugin.desc->stop(order[started]->state);
	finish_stop(b);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	return b->exit_code;
}

int broker_run(broker *b)
{
	signal(SIGPIPE, SIG_IGN);
	uv_signal_t *sigs[] = { &b->sigint, &b->sigterm, &b->sighup };
	int signums[] = { SIGINT, SIGTERM, SIGHUP };
	for (int i = 0; i < 3; i++) {
		uv_signal_init(&b->loop, sigs[i]);
		sigs[i]->data = b;
		uv_signal_start(sigs[i], on_signal, signums[i]);
	}
	uv_timer_init(&b->loop, &b->stop_timer);
	b->stop_timer.data = b;
	expiry_init(&b->expiry, &b->loop, session_flow_expired, b);

	/* before any plugin starts: a node whose socket another process
	 * answers on opens no port */
	confab_ctx *order[b->n_chain + 1];
	size_t n = broker_start_order(b, order);
	if (control_open(b) != 0)
		return fail_start(b, order, 0);
	for (size_t i = 0; i < n; i++) {
		confab_ctx *ctx = order[i];
		int rc = ctx->plugin.desc->start ? ctx->plugin.desc->start(ctx->state) : 0;
		if (rc != 0) {
			log_line(CONFAB_LOG_ERROR, "core", "plugin %s (%s) failed to start (error %d)",
				 ctx->name, ctx->plugin.path ? ctx->plugin.path : "built in", rc);
			return fail_start(b, order, i);
		}
		ctx->started = true;
	}
	b->serving = true;
	log_line(CONFAB_LOG_INFO, "core", "confabd %s serving as node %s (%zu plugins, backplane %s)",
		 PACKAGE_VERSION, b->cfg.broker.node_id, b->n_chain, b->backplane->name);
	char status[160];
	snprintf(status, sizeof status, "serving as node %s", b->cfg.broker.node_id);
	notify_ready(&b->loop, status);

	if (b->cfg.broker.max_connections == 0)
		log_line(CONFAB_LOG_INFO, "core", "max_connections: no limit (RLIMIT_NOFILE %zu)",
			 b->cfg.broker.nofile);
	else
		log_line(CONFAB_LOG_INFO, "core", "max_connections %zu (RLIMIT_NOFILE %zu)%s",
			 b->cfg.broker.max_connections, b->cfg.broker.nofile,
			 b->cfg.broker.max_connections > b->cfg.broker.nofile
				 ? ": more than this process may open" : "");

	uv_run(&b->loop, UV_RUN_DEFAULT);
	log_line(CONFAB_LOG_INFO, "core", "stopped");
	return b->exit_code;
}

static void close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, on_handle_closed);
}

void broker_destroy(broker *b)
{
	destroy_plugins(b);
	/* let closed handles finish before their code is unloaded */
	uv_run(&b->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&b->loop) == UV_EBUSY) {
		log_line(CONFAB_LOG_WARN, "core", "a plugin left libuv handles open; closing them");
		uv_walk(&b->loop, close_any, NULL);
		uv_run(&b->loop, UV_RUN_DEFAULT);
		uv_loop_close(&b->loop);
	}
	for (size_t i = 0; i < b->n_chain; i++)
		ctx_free(b->chain[i]);
	free(b->chain);
	if (b->embedded)
		ctx_free(b->embedded);
	confab_dict_free(b->sessions, NULL);
	confab_dict_free(b->users, NULL);
	confab_dict_free(b->addresses, NULL);
	expiry_free(&b->expiry);
	auth_guard_free(b->auth_guard);
	metrics_free(&b->metrics);
	rooms_free(b->rooms);
	config_free(&b->cfg);
	for (size_t i = 0; i < b->n_retired; i++)
		config_free(&b->retired[i]);
	free(b->retired);
}
