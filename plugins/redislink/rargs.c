/* The arguments of one Redis command (rargs.h): grown by doubling, each
 * one copied with a NUL after it.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rargs.h"

int rargs_add(rargs *a, const void *data, size_t len)
{
	char *copy;

	if (a->argc == a->argcap) {
		size_t cap = a->argcap ? a->argcap * 2 : 8;
		char **argv = realloc(a->argv, cap * sizeof(*argv));

		if (argv == NULL)
			return CONFAB_ENOMEM;
		a->argv = argv;
		size_t *lens = realloc(a->argvlen, cap * sizeof(*lens));
		if (lens == NULL)
			return CONFAB_ENOMEM;
		a->argvlen = lens;
		a->argcap = cap;
	}
	if ((copy = malloc(len + 1)) == NULL)
		return CONFAB_ENOMEM;
	if (len > 0)
		memcpy(copy, data, len);
	copy[len] = '\0';
	a->argv[a->argc] = copy;
	a->argvlen[a->argc] = len;
	a->argc++;
	return 0;
}

int rargs_adds(rargs *a, const char *text)
{
	return rargs_add(a, text, strlen(text));
}

int rargs_addf(rargs *a, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return CONFAB_ERR;
	if ((size_t)n < sizeof(small))
		return rargs_add(a, small, (size_t)n);

	/* Longer than the usual number or key: format again into a buffer
	 * of the size the first pass measured. */
	char *big = malloc((size_t)n + 1);
	int rc;

	if (big == NULL)
		return CONFAB_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = rargs_add(a, big, (size_t)n);
	free(big);
	return rc;
}

int rargs_send(rlink *l, const rargs *a, const rargs_script *script, const char *before,
	       rlink_reply_fn cb, void *arg)
{
	size_t extra = script != NULL ? 3 : 0;
	size_t argc = a->argc + extra;
	const char *small_argv[20];
	size_t small_len[20];
	const char **argv = small_argv;
	size_t *lens = small_len;
	char numkeys[16];
	int rc = 0;

	if (l == NULL || argc == 0)
		return CONFAB_EUNAVAILABLE;
	if (argc > 20) {
		argv = malloc(argc * sizeof(*argv));
		lens = malloc(argc * sizeof(*lens));
		if (argv == NULL || lens == NULL) {
			free(argv);
			free(lens);
			return CONFAB_ENOMEM;
		}
	}
	if (script != NULL) {
		argv[0] = script->sha != NULL ? "EVALSHA" : "EVAL";
		argv[1] = script->sha != NULL ? script->sha : script->text;
		snprintf(numkeys, sizeof(numkeys), "%u", script->nkeys);
		argv[2] = numkeys;
		for (size_t i = 0; i < 3; i++)
			lens[i] = strlen(argv[i]);
	}
	for (size_t i = 0; i < a->argc; i++) {
		argv[extra + i] = a->argv[i];
		lens[extra + i] = a->argvlen[i];
	}
	if (before != NULL)
		rc = rlink_command(l, 1, &before, NULL, NULL, NULL);
	if (rc == 0)
		rc = rlink_command(l, (int)argc, argv, lens, cb, arg);
	if (argv != small_argv) {
		free(argv);
		free(lens);
	}
	return rc;
}

void rargs_clear(rargs *a)
{
	for (size_t i = 0; i < a->argc; i++)
		free(a->argv[i]);
	free(a->argv);
	free(a->argvlen);
	*a = (rargs){ 0 };
}
