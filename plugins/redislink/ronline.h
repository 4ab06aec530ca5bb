/* The onlines of this node's users that Redis has not confirmed yet, and
 * the welcomes that wait for them (the user_ready slot, ABI 1.8), kept
 * alike by both Redis backplanes.
 *
 * Per user: how many online scripts are on their way, whether one is
 * still to be sent (redis_cluster holds it until its partition is
 * subscribed), and who waits. A waiter is answered 0 once nothing of the
 * user's is on its way or unsent, CONFAB_EUNAVAILABLE as soon as one of
 * its onlines is lost or fails. A user is in the table only while
 * something is on its way, unsent or waiting.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RONLINE_H
#define CONFAB_RONLINE_H

#include <stdbool.h>
#include <stdint.h>

#include <confab/dict.h>
#include <confab/plugin.h>

/* A new table (NULL when out of memory); ronline_free frees it and every
 * entry, answering nobody (ronline_fail answers them first). */
confab_dict *ronline_new(void);
void ronline_free(confab_dict *t);

/* An online script for `user` goes out now: its handler calls
 * ronline_answered exactly once. 0, or CONFAB_ENOMEM: not counted, and
 * the handler must not call ronline_answered (its welcome does not wait
 * for it). */
int ronline_sent(confab_dict *t, const char *user);
/* That script's outcome: carried out (ok), or failed or lost. */
void ronline_answered(confab_dict *t, const char *user, bool ok);
/* The user's online waits to be sent (unsent true), or no longer does:
 * it will not be (the user went offline first). Out of memory, the mark
 * is lost: a welcome then does not wait for it. */
void ronline_unsent(confab_dict *t, const char *user, bool unsent);

/* The user_ready slot: done(arg, 0) at once when nothing of the user's is
 * on its way or unsent, else when it is done (`now`: uv_now, for
 * ronline_fail's age). 0, or CONFAB_ENOMEM (done is not called). */
int ronline_wait(confab_dict *t, const char *user, confab_status_done done, void *arg,
		 uint64_t now);

/* Answer CONFAB_EUNAVAILABLE to the waiters of every user that `match`
 * accepts (NULL: all) and that began to wait before `older_than`
 * (UINT64_MAX: whenever). With `forget`, the users' counts and marks go
 * too (destroy: their replies, if any come, then change nothing). */
void ronline_fail(confab_dict *t, bool (*match)(const char *user, void *ctx), void *ctx,
		  uint64_t older_than, bool forget);

#endif /* CONFAB_RONLINE_H */
