/* The state both Redis backplanes begin with, and its one init, free and
 * reload: the instance's host, the loop, this node's rooms and users, the
 * nonce of its probes, the context the shared answers read (rops.h), and
 * what init read of the section, which a reload compares with.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RBASE_H
#define CONFAB_RBASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>
#include <confab/dict.h>
#include <confab/plugin.h>

#include "ronline.h"
#include "rops.h"
#include "rsettings.h"

/* The links the Redis families have a series of: the `link` label. */
enum rbase_link { RBASE_LINK_COMMAND, RBASE_LINK_SUBSCRIBE, RBASE_LINK_SENTINEL, RBASE_LINKS };

/* The most scripts a backplane has (one confab_redis_script_seconds
 * series each). */
#define RBASE_SCRIPTS_MAX 16

/* The handles of the backplane's series (docs/metrics.md); -1: none (the
 * broker has no host->metrics, or that series is not registered). */
typedef struct rbase_metrics {
	int link_up[RBASE_LINKS];
	int reconnects[RBASE_LINKS];
	int script[RBASE_SCRIPTS_MAX];
	int subscriptions;
} rbase_metrics;

/* The first member of a backplane's state (rbase_new allocates the
 * whole state through it). */
typedef struct rbase {
	confab_ctx *ctx;
	const confab_host *host;
	uv_loop_t *loop;
	confab_dict *rooms;          /* room -> the backplane's lroom (rops_room_kind) */
	confab_dict *users;          /* users with a session here */
	confab_dict *onlines;        /* their onlines not confirmed yet (ronline.h) */
	char nonce[32];              /* this process's, in every probe token */
	rops_ctx rops;               /* for the shared answers */
	size_t n_core;               /* core requests not answered yet */
	uint64_t full_warned;        /* uv_now of the last "too many requests" line */
	bool started;                /* start was called: handles may be open */
	rbase_metrics metrics;       /* rbase_metrics_register's handles */
	rset_seen seen;              /* what init read: a reload compares with it */
} rbase;

/* The start of a backplane's init: a zeroed state of `size` bytes whose
 * first member is an rbase, with ctx, host and loop set. NULL (*rc set,
 * logged when the broker offers no backplane entry points) when the host
 * lacks host->backplane with health, or out of memory. */
void *rbase_new(confab_ctx *ctx, const confab_host *host, size_t size, int *rc);

/* The end of it, once the settings are read with result `rc`: the tables
 * of local rooms (their values of `kind`), users and onlines, the nonce, and the
 * shared answers' context (`redirects`: MOVED and ASK mean "not now").
 * 0, or rc or CONFAB_ENOMEM (then logged): the caller frees its state
 * and returns that. */
int rbase_tables(rbase *b, int rc, bool redirects, const rops_room_kind *kind);

/* Frees the tables (each room with its kind's drop); they are NULL after. */
void rbase_free_tables(rbase *b);

/* Whether a core request may go out while n_core wait for `server`
 * ("Redis", "the cluster"): 0, or CONFAB_EUNAVAILABLE when `max` already
 * wait (logged at most once a second). */
int rbase_admit(rbase *b, unsigned max, const char *server);

/* What a presence script's reply says: true when it made its change (a
 * non-zero integer). Otherwise false, and unless the reply is missing
 * (NULL: the request was lost) *dirty is set: the next heartbeat
 * reconciles the node's record. A reply that is not an integer (0 means
 * Redis knows a newer generation of the link: not a failure) is the
 * failure of the script called `name`, logged when `log`, one line a
 * second at most for all scripts. */
bool rbase_change_done(rbase *b, const redisReply *reply, const char *name, bool log,
		       bool *dirty);

/* Registers the families confab_redis_link_up{link},
 * confab_redis_reconnects_total{link}, confab_redis_script_seconds{script}
 * and confab_redis_subscriptions, and their series: the command and
 * subscribe links (and the sentinel one when `sentinel`), and one per
 * name of `scripts` (n of them, at most RBASE_SCRIPTS_MAX; a NULL name is
 * skipped). Without host->metrics nothing is registered and every update
 * below does nothing. 0, or a negative code (logged by the host). */
int rbase_metrics_register(rbase *b, const char *const *scripts, size_t n, bool sentinel);

/* confab_redis_link_up{link} = v (1/0, or a count of masters). */
void rbase_link_up(rbase *b, enum rbase_link link, int64_t v);
/* confab_redis_reconnects_total{link} += 1: the link is back after it was
 * lost. */
void rbase_reconnected(rbase *b, enum rbase_link link);
/* confab_redis_subscriptions = n. */
void rbase_subscriptions(rbase *b, int64_t n);
/* A reply of script `script` came: its latency since `sent_ns`
 * (uv_hrtime when it was handed to the link) into
 * confab_redis_script_seconds. */
void rbase_script_replied(rbase *b, int script, uint64_t sent_ns);

/* Defines a backplane's destroy slot as the static function `name` over
 * its state type and two functions of its own: free_state(s), for a
 * state that never started (confabd -t, or a start that never came),
 * and close(s), which closes a started one's handles and frees it once
 * they are closed. */
#define RBASE_DESTROY_SLOT(name, state_type, free_state, close) \
	static void name(void *state) \
	{ \
		state_type *s = state; \
		if (s == NULL) \
			return; \
		if (!s->base.started) \
			free_state(s); \
		else \
			close(s); \
	}

/* Defines a backplane's reload slot as the static function `name` over
 * its state type, its settings reader read(s) (init's own, noting what it
 * takes in s->base.seen) and free_state(s) (as for destroy). The section
 * is read again into a scratch state, freed before the slot returns: a
 * bad value is reported by the reader itself, the line `confabd -t`
 * prints, and refuses the reload (CONFAB_EINVAL). Otherwise every key
 * whose value changed is logged as needing a restart, and nothing is
 * prepared (*pending = NULL): a backplane's settings are its connections,
 * their timers and what other nodes share with it, which only a restart
 * changes together (docs/backplane-redis.md, "Reload"). */
#define RBASE_RELOAD_SLOT(name, state_type, read, free_state) \
	static int name(void *state, void **pending) \
	{ \
		state_type *s = state, *next; \
		int rc; \
		*pending = NULL; \
		next = rbase_new(s->base.ctx, s->base.host, sizeof(*next), &rc); \
		if (next == NULL) \
			return rc; \
		rc = read(next); \
		if (rc == 0) \
			rbase_log_changes(&s->base, &next->base); \
		free_state(next); \
		return rc; \
	}

/* A reload's warnings: every setting `next` read that differs from what
 * `running` read at init (rset_log_changes). */
void rbase_log_changes(const rbase *running, const rbase *next);

/* The reload_finish slot of both backplanes: their reload prepares
 * nothing, so there is nothing to apply or to free. */
void rbase_reload_finish(void *state, void *pending, bool apply);

/* Iterates `dict` of `it`, a confab_dict_iter: each turn sets `key`
 * (const char *) and `value` (void *). The table may not change meanwhile
 * (confab_dict_iter_next). */
#define RBASE_EACH(it, dict, key, value) \
	for (confab_dict_iter_init(&(it), (dict)); confab_dict_iter_next(&(it), &(key), &(value));)

#endif /* CONFAB_RBASE_H */
