/* static: the users file read into a table sorted by name. No loop and no
 * plugin state, so that a test can compile static_users.c alone.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_STATIC_USERS_H
#define CONFAB_STATIC_USERS_H

#include <stddef.h>

/* One line of the users file. */
struct user {
	char *name;
	char *hash;               /* the crypt(3) string: method, setting and hash */
	char **rooms;             /* room glob patterns; NULL: every room */
	size_t n_rooms;
	int line;                 /* where it was read, for messages */
};

/* The users of one reading of the file, sorted by name. Reference counted:
 * a reload swaps in a new table while checks in flight keep the old one. */
struct user_table {
	unsigned refs;
	char *path;               /* the file it was read from, for messages */
	size_t n;
	struct user *users;
};

/* Why a users file was refused. `text` is the whole message: "FILE:N:
 * what is wrong" for a line (`line` > 0), "cannot read FILE: why" for the
 * file as a whole (`line` 0). */
struct users_error {
	int line;
	char text[1024];
};

/* Reads `path` into a new table (one reference), or NULL with *err set. */
struct user_table *static_users_load(const char *path, struct users_error *err);

/* Drops a reference; the last one frees the table (NULL: nothing). */
void static_users_unref(struct user_table *t);

/* The user called `name`, or NULL. */
const struct user *static_users_find(const struct user_table *t, const char *name);

/* The hash an unknown name is checked against (the table is not empty). */
const char *static_users_decoy(const struct user_table *t, const char *name);

#endif /* CONFAB_STATIC_USERS_H */
