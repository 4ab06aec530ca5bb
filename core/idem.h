/* Idempotency keys remembered for a window: what the embedded backplane
 * keeps so that a send repeated with the same `idem` key gets the first
 * one's answer (protocol.md, "Idempotent sends"). Keys are opaque strings
 * (the caller folds the scope, room and sender, into them); the clock is
 * the caller's, in ms, so that the table is tested without a loop. */
#ifndef CONFAB_CORE_IDEM_H
#define CONFAB_CORE_IDEM_H

#include <stddef.h>
#include <stdint.h>

typedef struct idem_table idem_table;

/* What the first request with a key was answered. */
typedef struct idem_answer {
	uint64_t seq;
	const char *id;
	int64_t ts;
} idem_answer;

/* A table whose keys are kept `window_ms` after they were put. NULL when
 * out of memory. */
idem_table *idem_new(uint64_t window_ms);
void idem_free(idem_table *t);

/* The answer remembered for `key` at time `now`, or NULL (never put, or
 * its window is over). Valid until the next call on the table. */
const idem_answer *idem_find(idem_table *t, const char *key, uint64_t now);

/* Remember `key` -> (seq, id, ts) from `now` (copied). The key must not
 * be remembered already. 0 or CONFAB_ENOMEM. */
int idem_put(idem_table *t, const char *key, uint64_t seq, const char *id, int64_t ts,
	     uint64_t now);

/* How many keys are remembered (expired ones are dropped on every call). */
size_t idem_count(const idem_table *t);

#endif
