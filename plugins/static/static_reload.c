/* static: reading the users file again on SIGHUP; a file that does not
 * read keeps the users loaded before.
 *
 * The watcher sits beside the core's own (libuv allows several).
 *
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>

#include "static.h"

static void on_sighup(uv_signal_t *h, int signum)
{
	struct static_auth *st = h->data;
	struct users_error err;
	struct user_table *t = static_users_load(st->path, &err);

	(void)signum;
	if (t == NULL) {
		/* "users_file FILE:N: what" for a line, "users_file: cannot read ..." */
		st->host->log(st->ctx, CONFAB_LOG_ERROR, "cannot reload users_file%s%s; keeping "
			      "the %zu users loaded before", err.line > 0 ? " " : ": ", err.text,
			      st->table->n);
		return;
	}
	static_users_unref(st->table);
	st->table = t;
	st->host->log(st->ctx, CONFAB_LOG_INFO, "reloaded %zu users from %s", t->n, st->path);
}

static void on_sighup_closed(uv_handle_t *h)
{
	static_release(h->data);
}

int static_reload_start(struct static_auth *st)
{
	int rc = uv_signal_init(st->host->loop(st->ctx), &st->sighup);

	if (rc != 0) {
		st->host->log(st->ctx, CONFAB_LOG_ERROR, "cannot watch SIGHUP: %s", uv_strerror(rc));
		return CONFAB_ERR;
	}
	st->sighup.data = st;
	st->sighup_open = true;
	st->holds++;
	if ((rc = uv_signal_start(&st->sighup, on_sighup, SIGHUP)) != 0) {
		st->host->log(st->ctx, CONFAB_LOG_ERROR, "cannot watch SIGHUP: %s", uv_strerror(rc));
		return CONFAB_ERR;
	}
	return 0;
}

/* Closes the handle; its close callback drops the instance's hold. */
void static_reload_stop(struct static_auth *st)
{
	if (st->sighup_open) {
		st->sighup_open = false;
		uv_close((uv_handle_t *)&st->sighup, on_sighup_closed);
	}
}
