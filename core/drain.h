/* A graceful drain: the node refuses new clients at once, waits a grace
 * period for the load balancer to notice, then closes its sessions with
 * 1001 in batches spread evenly over a window, so that their reconnects
 * spread over the other nodes instead of stampeding them. */
#ifndef CONFAB_CORE_DRAIN_H
#define CONFAB_CORE_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct broker broker;

/* How often a batch is closed within the window (ms). */
#define DRAIN_TICK_MS 100

typedef struct drain {
	broker *b;
	uv_timer_t timer;
	bool timer_inited;
	bool active;
	uint64_t window_ms;
	uint64_t window_start;       /* loop time the window began */
	char **ids;                  /* the sessions open when the window began */
	size_t n_ids;
	size_t closed;               /* ids[0..closed) have been asked to close */
	void (*done)(broker *b);     /* the window is over: the broker stops */
} drain;

/* How many of `total` sessions should have been asked to close `elapsed_ms`
 * into a window of `window_ms`: a batch at the start of every tick, the
 * last one a tick before the window ends, every session by then. Pure:
 * the unit tests check the spread with it. */
size_t drain_due(size_t total, uint64_t elapsed_ms, uint64_t window_ms);

/* Starts the drain: after `grace_ms`, the sessions open then are closed
 * with 1001 over `window_ms`, and then `done` is called (on the loop).
 * Refusing new clients is the broker's (broker->draining). 0 or
 * CONFAB_ENOMEM. */
int drain_start(drain *d, broker *b, uint64_t grace_ms, uint64_t window_ms,
		void (*done)(broker *b));
/* Stops a drain that has not called `done` (a second signal) and closes its
 * timer; safe when none was started. */
void drain_close(drain *d);

#endif
