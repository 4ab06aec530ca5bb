/* Deadlines of the sessions whose credentials expire: a binary min-heap
 * of wall-clock deadlines with one libuv timer armed for the earliest. */
#ifndef CONFAB_CORE_EXPIRY_H
#define CONFAB_CORE_EXPIRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Embedded in what expires (the session). `slot` is its place in the heap
 * plus one, 0 when not armed: removal finds it without a search. */
typedef struct expiry_entry {
	int64_t at_ms;               /* wall clock, ms since the epoch */
	size_t slot;
} expiry_entry;

/* Called on the loop for each entry whose deadline has passed; the entry
 * is already out of the heap (it may be armed again or freed). */
typedef void (*expiry_due)(void *arg, expiry_entry *e);

typedef struct expiry {
	uv_timer_t timer;
	expiry_entry **heap;
	size_t n, cap;
	expiry_due due;
	void *arg;
	bool open;                   /* the timer is initialised and not closed */
} expiry;

/* Initialises the timer on `loop` (uv_timer_init cannot fail). */
void expiry_init(expiry *x, uv_loop_t *loop, expiry_due due, void *arg);
/* Arms `e` for `at_ms` (it must not be armed): 0 or CONFAB_ENOMEM. */
int expiry_add(expiry *x, expiry_entry *e, int64_t at_ms);
/* Disarms `e`; nothing when it is not armed. O(log n). */
void expiry_remove(expiry *x, expiry_entry *e);
/* Closes the timer (the loop must turn to finish it); entries stay armed
 * but never fire. Safe on an expiry never initialised. */
void expiry_close(expiry *x);
/* Frees the heap (after expiry_close). */
void expiry_free(expiry *x);

#endif
