/* The state both Redis backplanes begin with, and its one init and free:
 * the instance's host, the loop, this node's rooms and users, the nonce
 * of its probes, and the context the shared answers read (rops.h).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RBASE_H
#define CONFAB_RBASE_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>
#include <confab/dict.h>
#include <confab/plugin.h>

#include "rops.h"

/* The first member of a backplane's state (rbase_new allocates the
 * whole state through it). */
typedef struct rbase {
	confab_ctx *ctx;
	const confab_host *host;
	uv_loop_t *loop;
	confab_dict *rooms;          /* room -> the backplane's lroom (rops_room_kind) */
	confab_dict *users;          /* users with a session here */
	char nonce[32];              /* this process's, in every probe token */
	rops_ctx rops;               /* for the shared answers */
} rbase;

/* The start of a backplane's init: a zeroed state of `size` bytes whose
 * first member is an rbase, with ctx, host and loop set. NULL (*rc set,
 * logged when the broker offers no backplane entry points) when the host
 * lacks host->backplane with health, or out of memory. */
void *rbase_new(confab_ctx *ctx, const confab_host *host, size_t size, int *rc);

/* The end of it, once the settings are read with result `rc`: the tables
 * of local rooms (their values of `kind`) and users, the nonce, and the
 * shared answers' context (`redirects`: MOVED and ASK mean "not now").
 * 0, or rc or CONFAB_ENOMEM (then logged): the caller frees its state
 * and returns that. */
int rbase_tables(rbase *b, int rc, bool redirects, const rops_room_kind *kind);

/* Frees the tables (each room with its kind's drop); they are NULL after. */
void rbase_free_tables(rbase *b);

/* Iterates `dict` of `it`, a confab_dict_iter: each turn sets `key`
 * (const char *) and `value` (void *). The table may not change meanwhile
 * (confab_dict_iter_next). */
#define RBASE_EACH(it, dict, key, value) \
	for (confab_dict_iter_init(&(it), (dict)); confab_dict_iter_next(&(it), &(key), &(value));)

#endif /* CONFAB_RBASE_H */
