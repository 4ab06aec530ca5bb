/* The arguments of one Redis command, each copied and kept with its
 * length (binary-safe), as rlink_command takes them: the request types of
 * both Redis backplanes hold one.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RARGS_H
#define CONFAB_RARGS_H

#include <stddef.h>

#include <confab/plugin.h>

#include "rlink.h"

typedef struct rargs {
	size_t argc, argcap;
	char **argv;                 /* each NUL-terminated too, for logs and parsing */
	size_t *argvlen;
} rargs;

/* Append one argument (copied). 0 or CONFAB_ENOMEM: then `a` is as it was. */
int rargs_add(rargs *a, const void *data, size_t len);
/* A NUL-terminated one. */
int rargs_adds(rargs *a, const char *text);
/* A printf-formatted one. 0, CONFAB_ENOMEM or CONFAB_ERR (a bad format). */
int rargs_addf(rargs *a, const char *fmt, ...) CONFAB_PRINTF(2, 3);
/* A script call of `a` (NULL: a plain command): its text, the SHA1 that
 * Redis knows it by (NULL: send the text, EVAL), and how many leading
 * arguments are KEYS. */
typedef struct rargs_script {
	const char *text;
	const char *sha;
	unsigned nkeys;
} rargs_script;

/* Queue the arguments on `l` as one command, or as EVALSHA / EVAL of
 * `script` with them; `before`, when not NULL, is a one-word command sent
 * right ahead of it with nothing between (ASKING), its reply dropped.
 * `cb` gets the reply as rlink_command says. 0, or CONFAB_EUNAVAILABLE
 * (no link, no argument, or a link that failed), CONFAB_ENOMEM: then
 * nothing was queued. */
int rargs_send(rlink *l, const rargs *a, const rargs_script *script, const char *before,
	       rlink_reply_fn cb, void *arg);
/* Free every argument; `a` is then empty (and may be used again). */
void rargs_clear(rargs *a);

#endif /* CONFAB_RARGS_H */
