/* The drain's clock (drain.h): a grace period, then batches of 1001 closes
 * spread evenly over the window. The batch size comes from the time
 * elapsed, not from a count of ticks, so a loop that runs late catches up
 * instead of stretching the window. */
#include "drain.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <confab/common.h>

#include "broker.h"
#include "log.h"
#include "session.h"

size_t drain_due(size_t total, uint64_t elapsed_ms, uint64_t window_ms)
{
	/* The batch at elapsed e covers the slice [e, e + tick): it is done
	 * at its start, so the last one leaves a tick for its closes. */
	uint64_t upto = elapsed_ms + DRAIN_TICK_MS;
	if (window_ms == 0 || upto >= window_ms)
		return total;
	/* ceil(total * upto / window) without overflow: the window is at
	 * most a day in ms (< 2^27), so remainder * upto < 2^54 */
	uint64_t t = total;
	uint64_t q = t / window_ms, r = t % window_ms;
	return (size_t)(q * upto + (r * upto + window_ms - 1) / window_ms);
}

static void free_ids(drain *d)
{
	for (size_t i = 0; i < d->n_ids; i++)
		free(d->ids[i]);
	free(d->ids);
	d->ids = NULL;
	d->n_ids = d->closed = 0;
}

static void on_tick(uv_timer_t *t)
{
	drain *d = t->data;
	uint64_t elapsed = uv_now(t->loop) - d->window_start;
	size_t due = drain_due(d->n_ids, elapsed, d->window_ms);

	for (; d->closed < due; d->closed++) {
		confab_session *s = session_find(d->b, d->ids[d->closed]);
		if (s)
			session_close(s, 1001, "server shutting down");
	}
	if (elapsed < d->window_ms)
		return;
	uv_timer_stop(t);
	d->active = false;
	free_ids(d);
	d->done(d->b);
}

/* The grace is over: the window begins with the sessions open now. */
static void on_grace_over(uv_timer_t *t)
{
	drain *d = t->data;
	const confab_dict *sessions = d->b->sessions;
	size_t n = confab_dict_count(sessions);

	d->ids = calloc(n ? n : 1, sizeof(*d->ids));
	if (d->ids) {
		confab_dict_iter it;
		const char *id;
		void *v;
		confab_dict_iter_init(&it, sessions);
		while (d->n_ids < n && confab_dict_iter_next(&it, &id, &v)) {
			d->ids[d->n_ids] = strdup(id);
			if (!d->ids[d->n_ids])
				break;
			d->n_ids++;
		}
	}
	if (!d->ids || d->n_ids < n) {
		/* Without the list the window cannot be spread: stop now,
		 * which closes everyone at once, rather than not at all. */
		log_line(CONFAB_LOG_ERROR, "core", "out of memory starting the drain window; stopping at once");
		free_ids(d);
		uv_timer_stop(t);
		d->active = false;
		d->done(d->b);
		return;
	}
	log_line(CONFAB_LOG_INFO, "core", "draining: closing %zu sessions over %" PRIu64 " ms",
		 n, d->window_ms);
	d->window_start = uv_now(t->loop);
	on_tick(t);
	if (d->active)
		uv_timer_start(t, on_tick, DRAIN_TICK_MS, DRAIN_TICK_MS);
}

int drain_start(drain *d, broker *b, uint64_t grace_ms, uint64_t window_ms,
		void (*done)(broker *b))
{
	int rc = uv_timer_init(&b->loop, &d->timer);
	if (rc != 0)
		return CONFAB_ENOMEM;
	d->timer_inited = true;
	d->timer.data = d;
	d->b = b;
	d->window_ms = window_ms;
	d->done = done;
	d->active = true;
	uv_timer_start(&d->timer, on_grace_over, grace_ms, 0);
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	(void)h;
}

void drain_close(drain *d)
{
	d->active = false;
	free_ids(d);
	if (d->timer_inited && !uv_is_closing((uv_handle_t *)&d->timer)) {
		uv_timer_stop(&d->timer);
		uv_close((uv_handle_t *)&d->timer, on_timer_closed);
	}
}
