/* The credentials' deadlines (expiry.h). Why a heap: the deadlines
 * change only when a session opens or closes, and the next one to pass is
 * the only one the loop needs to know about, so each change costs
 * O(log n) and a firing costs nothing for the sessions whose deadline is
 * later (a scan of every expiring session once a second did). Removal
 * uses the index kept in the entry rather than a lazy generation check:
 * the heap then never points at a freed session and holds exactly the
 * armed deadlines, however many sessions with long tokens come and go.
 *
 * Precision: an entry fires once the wall clock has reached its deadline,
 * within the loop's latency (libuv timers count whole ms). The timer is
 * never armed for more than EXPIRY_RECHECK_MS, so that a step of the wall
 * clock (the deadlines are wall-clock, the timer is not) is noticed
 * within that: no later than the once-a-second check this replaced. */
#include "expiry.h"

#include <stdlib.h>
#include <confab/common.h>

#include "broker.h"

#define EXPIRY_RECHECK_MS 1000

void expiry_init(expiry *x, uv_loop_t *loop, expiry_due due, void *arg)
{
	uv_timer_init(loop, &x->timer);
	x->timer.data = x;
	x->due = due;
	x->arg = arg;
	x->open = true;
}

static bool earlier(const expiry *x, size_t a, size_t b)
{
	return x->heap[a]->at_ms < x->heap[b]->at_ms;
}

static void put(expiry *x, size_t i, expiry_entry *e)
{
	x->heap[i] = e;
	e->slot = i + 1;
}

static void swap(expiry *x, size_t a, size_t b)
{
	expiry_entry *t = x->heap[a];
	put(x, a, x->heap[b]);
	put(x, b, t);
}

static void sift_up(expiry *x, size_t i)
{
	while (i > 0 && earlier(x, i, (i - 1) / 2)) {
		swap(x, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void sift_down(expiry *x, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		if (l < x->n && earlier(x, l, min))
			min = l;
		if (r < x->n && earlier(x, r, min))
			min = r;
		if (min == i)
			return;
		swap(x, i, min);
		i = min;
	}
}

static void on_timer(uv_timer_t *t);

/* Arms the timer for the earliest deadline, or stops it. */
static void rearm(expiry *x)
{
	if (!x->open)
		return;
	if (x->n == 0) {
		uv_timer_stop(&x->timer);
		return;
	}
	int64_t wait = x->heap[0]->at_ms - broker_now_ms();
	if (wait < 0)
		wait = 0;
	if (wait > EXPIRY_RECHECK_MS)
		wait = EXPIRY_RECHECK_MS;
	uv_timer_start(&x->timer, on_timer, (uint64_t)wait, 0);
}

int expiry_add(expiry *x, expiry_entry *e, int64_t at_ms)
{
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		expiry_entry **heap = realloc(x->heap, cap * sizeof(*heap));
		if (!heap)
			return CONFAB_ENOMEM;
		x->heap = heap;
		x->cap = cap;
	}
	e->at_ms = at_ms;
	put(x, x->n++, e);
	sift_up(x, x->n - 1);
	if (x->heap[0] == e)
		rearm(x);
	return 0;
}

void expiry_remove(expiry *x, expiry_entry *e)
{
	if (e->slot == 0)
		return;
	size_t i = e->slot - 1;
	e->slot = 0;
	if (i != --x->n) {
		put(x, i, x->heap[x->n]);
		sift_up(x, i);
		sift_down(x, i);
	}
	/* a later first deadline only makes the timer fire early: it re-arms */
	if (x->n == 0)
		rearm(x);
}

static void on_timer(uv_timer_t *t)
{
	expiry *x = t->data;
	int64_t now = broker_now_ms();
	while (x->n > 0 && x->heap[0]->at_ms <= now) {
		expiry_entry *e = x->heap[0];
		expiry_remove(x, e);
		x->due(x->arg, e);
	}
	rearm(x);
}

static void on_closed(uv_handle_t *h)
{
	(void)h;
}

void expiry_close(expiry *x)
{
	if (!x->open)
		return;
	x->open = false;
	uv_timer_stop(&x->timer);
	uv_close((uv_handle_t *)&x->timer, on_closed);
}

void expiry_free(expiry *x)
{
	free(x->heap);
	x->heap = NULL;
	x->n = x->cap = 0;
}
