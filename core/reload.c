/* A reload: the file read and checked as at start, then every instance's
 * reload() prepares what it would change; only when all succeeded does
 * each apply it (reload_finish), else each drops it. The core's own part
 * ([broker]) is applied between the two: the new config replaces the old
 * one, which is kept (retired) because plugins may hold its strings.
 *
 * What a running node cannot change (the chain, node_id, the listen and
 * backplane addresses, what stored rooms were sized by) keeps its running
 * value and is logged as needing a restart; that alone refuses nothing. */
#include "reload.h"

#include <stdlib.h>
#include <string.h>

#include "auth_guard.h"
#include "control.h"
#include "log.h"

static void restart_needed(const char *key, const char *now, const char *was)
{
	log_line(CONFAB_LOG_WARN, "core", "[broker] %s changed to '%s': needs a restart; keeping '%s'",
		 key, now, was);
}

/* Whether two readings of a section hold the same keys and values. */
static bool same_section(const config_section *a, const config_section *b)
{
	size_t na = a ? a->n_entries : 0, nb = b ? b->n_entries : 0;
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		bool found = false;
		for (size_t j = 0; j < nb && !found; j++)
			found = strcmp(a->entries[i].key, b->entries[j].key) == 0 &&
				strcmp(a->entries[i].value, b->entries[j].value) == 0;
		if (!found)
			return false;
	}
	return true;
}

static bool takes_part(const confab_plugin *d)
{
	return CONFAB_HAS(d, reload) && CONFAB_HAS(d, reload_finish);
}

/* Asks every instance to prepare from `next`. On success every instance
 * that takes part has prepared[i] set and its pending in pending[i]; on
 * failure those that prepared are told to drop what they built. Sections
 * point into `next` on success, back into the running config on failure. */
static int prepare_all(broker *b, config *next, confab_ctx **order, size_t n, bool *prepared,
		       void **pending)
{
	int rc = 0;
	size_t i;
	for (i = 0; i < n && rc == 0; i++) {
		confab_ctx *ctx = order[i];
		const confab_plugin *d = ctx->plugin.desc;
		config_section *section = config_section_find(next, ctx->name);
		if (ctx->plugin.path == NULL)
			continue;    /* the embedded backplane: its settings are [broker]'s */
		if (!takes_part(d)) {
			if (!same_section(ctx->section, section))
				log_line(CONFAB_LOG_WARN, "core",
					 "[%s] changed, but plugin %s (ABI %u.%u) does not reload: the change needs a restart",
					 ctx->name, d->name, d->abi_major, d->abi_minor);
			continue;
		}
		config_section *running = ctx->section;
		ctx->section = section;
		ctx->reported = false;
		rc = d->reload(ctx->state, &pending[i]);
		if (rc == 0) {
			prepared[i] = true;
			rc = broker_unknown_keys(next, ctx);
		} else if (!ctx->reported) {
			config_report(next, ctx->name, NULL, "plugin %s refused the new settings (error %d)",
				      d->name, rc);
		}
		ctx->section = running;
	}
	if (rc == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (prepared[i])
			order[i]->plugin.desc->reload_finish(order[i]->state, pending[i], false);
	return rc;
}

/* The core's part: `next` becomes the configuration in use. */
static int take_config(broker *b, config *next)
{
	config *retired = realloc(b->retired, (b->n_retired + 1) * sizeof(*retired));
	if (retired == NULL)
		return CONFAB_ENOMEM;
	b->retired = retired;
	b->retired[b->n_retired++] = b->cfg;
	b->cfg = *next;
	memset(next, 0, sizeof(*next));
	for (size_t i = 0; i < b->n_chain; i++)
		b->chain[i]->section = config_section_find(&b->cfg, b->chain[i]->name);
	/* The file is the configuration: a level set by `confabctl log-level`
	 * lasts until this reload, which says so when it changes it. */
	if (log_get_level() != b->cfg.broker.log_level)
		log_line(CONFAB_LOG_INFO, "core", "log level %s -> %s (broker.ini)",
			 log_level_name(log_get_level()),
			 log_level_name(b->cfg.broker.log_level));
	log_set_level(b->cfg.broker.log_level);
	log_set_format(b->cfg.broker.log_format);
	auth_guard_configure(b->auth_guard, &b->cfg.broker);
	return 0;
}

int broker_reload(broker *b, const char *why)
{
	if (!b->serving || b->draining || b->stopping) {
		log_line(CONFAB_LOG_WARN, "core", "%s: reload ignored: the node is %s", why,
			 b->serving ? "draining" : "not serving yet");
		return CONFAB_ESTATE;
	}
	log_line(CONFAB_LOG_INFO, "core", "%s: reloading %s", why, b->cfg.path);
	config next = { 0 };
	if (config_load(b->cfg.path, &next) != 0 || control_check(&next) != 0) {
		log_line(CONFAB_LOG_WARN, "core", "reload refused: the node keeps the configuration it runs");
		return CONFAB_EINVAL;
	}
	config_keep_restart_only(&b->cfg, &next, restart_needed);
	broker_warn_unknown_sections(b, &next);

	confab_ctx *order[b->n_chain + 1];
	bool prepared[b->n_chain + 1];
	void *pending[b->n_chain + 1];
	size_t n = broker_start_order(b, order);
	memset(prepared, 0, sizeof(prepared));
	memset(pending, 0, sizeof(pending));

	b->reading = &next;
	int rc = prepare_all(b, &next, order, n, prepared, pending);
	b->reading = NULL;
	if (rc == 0)
		rc = take_config(b, &next);
	if (rc != 0) {
		if (rc == CONFAB_ENOMEM)
			log_line(CONFAB_LOG_ERROR, "core", "out of memory while reloading");
		for (size_t i = 0; rc == CONFAB_ENOMEM && i < n; i++)
			if (prepared[i])
				order[i]->plugin.desc->reload_finish(order[i]->state, pending[i], false);
		config_free(&next);
		log_line(CONFAB_LOG_WARN, "core", "reload refused: the node keeps the configuration it runs");
		return rc;
	}
	for (size_t i = 0; i < n; i++)
		if (prepared[i])
			order[i]->plugin.desc->reload_finish(order[i]->state, pending[i], true);
	log_line(CONFAB_LOG_INFO, "core", "reloaded %s", b->cfg.path);
	return 0;
}
