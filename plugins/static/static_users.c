/* static: reading the users file, one `user:hash[:pattern,pattern]` a line,
 * into a table that finds a user by name (and a decoy hash for a stranger).
 *
 * SPDX-License-Identifier: MIT
 */
#include <crypt.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <confab/util.h>

#include "static_users.h"

/* The guests' name space (auth.h): the core refuses these ids anyway;
 * the file is refused at once so that -t says so. */
#define GUEST_PREFIX "guest-"
#define HASH_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./$="
#define WHY_MAX 256

/* SHA-512 or yescrypt, in crypt(3)'s alphabet, with a setting libxcrypt
 * accepts. The hash part itself is checked only when a password is. */
static bool valid_hash(const char *h)
{
	size_t n = strlen(h);
	size_t dollars = 0;

	for (const char *c = h; *c != '\0'; c++)
		dollars += *c == '$';
	return (strncmp(h, "$6$", 3) == 0 || strncmp(h, "$y$", 3) == 0) && dollars >= 3 &&
	       h[n - 1] != '$' && strspn(h, HASH_CHARS) == n && n < CRYPT_OUTPUT_SIZE &&
	       crypt_checksalt(h) == CRYPT_SALT_OK;
}

static void user_free(struct user *u)
{
	free(u->name);
	free(u->hash);
	for (size_t i = 0; i < u->n_rooms; i++)
		free(u->rooms[i]);
	free(u->rooms);
}

void static_users_unref(struct user_table *t)
{
	if (t == NULL || --t->refs > 0)
		return;
	for (size_t i = 0; i < t->n; i++)
		user_free(&t->users[i]);
	free(t->users);
	free(t->path);
	free(t);
}

static char *trim(char *s)
{
	char *end = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	return s;
}

/* "pattern, pattern" into u->rooms. 0, or -1 with why[WHY_MAX] set. */
static int parse_rooms(struct user *u, char *list, char *why)
{
	size_t cap = 1;

	for (const char *c = list; *c != '\0'; c++)
		cap += *c == ',';
	if ((u->rooms = calloc(cap, sizeof(*u->rooms))) == NULL) {
		snprintf(why, WHY_MAX, "out of memory");
		return -1;
	}
	for (char *p = list, *end; p != NULL; p = end) {
		if ((end = strchr(p, ',')) != NULL)
			*end++ = '\0';
		char *pat = trim(p);
		if (*pat == '\0' || pat[strcspn(pat, " \t")] != '\0') {
			snprintf(why, WHY_MAX, "user %s: room patterns are separated by commas "
				 "and may not be empty or hold spaces (leave out the last ':' "
				 "for every room)", u->name);
			return -1;
		}
		if ((u->rooms[u->n_rooms] = strdup(pat)) == NULL) {
			snprintf(why, WHY_MAX, "out of memory");
			return -1;
		}
		u->n_rooms++;
	}
	return 0;
}

/* One line that is neither blank nor a comment: `user:hash[:patterns]`.
 * The name may hold ':' itself, so the hash is found by its "$": the
 * first ":$" ends the name. 0, or -1 with why[WHY_MAX] set. */
static int parse_line(char *s, struct user *u, char *why)
{
	char *sep = strstr(s, ":$"), *rooms;

	if (sep == NULL) {
		snprintf(why, WHY_MAX, "expected user:hash, the hash as made by "
			 "`mkpasswd -m sha-512` or `mkpasswd -m yescrypt`");
		return -1;
	}
	*sep = '\0';
	if (!confab_valid_user(s)) {
		snprintf(why, WHY_MAX, "'%.*s' is not a valid user name "
			 "(1-64 of A-Z a-z 0-9 _ . : - @)", CONFAB_USER_MAX, s);
		return -1;
	}
	if (strncasecmp(s, GUEST_PREFIX, strlen(GUEST_PREFIX)) == 0) {
		snprintf(why, WHY_MAX, "'%s': names beginning with '" GUEST_PREFIX
			 "' are the broker's, for anonymous clients", s);
		return -1;
	}
	if ((rooms = strchr(sep + 1, ':')) != NULL)
		*rooms++ = '\0';
	if ((u->name = strdup(s)) == NULL || (u->hash = strdup(sep + 1)) == NULL) {
		snprintf(why, WHY_MAX, "out of memory");
		return -1;
	}
	if (!valid_hash(u->hash)) {
		snprintf(why, WHY_MAX, "user %s: not a SHA-512 ($6$) or yescrypt ($y$) hash "
			 "as made by mkpasswd", u->name);
		return -1;
	}
	return rooms != NULL ? parse_rooms(u, rooms, why) : 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct user *)a)->name, ((const struct user *)b)->name);
}

/* The first name listed twice, as "FILE:N: ..." in *err; false if none.
 * `t` is sorted. */
static bool find_duplicate(const struct user_table *t, const char *path,
			   struct users_error *err)
{
	for (size_t i = 1; i < t->n; i++) {
		const struct user *a = &t->users[i - 1], *b = &t->users[i];
		if (strcmp(a->name, b->name) != 0)
			continue;
		err->line = a->line > b->line ? a->line : b->line;
		snprintf(err->text, sizeof(err->text), "%s:%d: user %s is listed twice "
			 "(lines %d and %d)", path, err->line, a->name,
			 a->line < b->line ? a->line : b->line, err->line);
		return true;
	}
	return false;
}

struct user_table *static_users_load(const char *path, struct users_error *err)
{
	struct user_table *t = calloc(1, sizeof(*t));
	size_t cap = 0, len = 0;
	char *line = NULL, why[WHY_MAX];
	FILE *f = NULL;

	err->line = 0;
	if (t == NULL) {
		snprintf(err->text, sizeof(err->text), "out of memory");
		return NULL;
	}
	t->refs = 1;
	if ((t->path = strdup(path)) == NULL) {
		snprintf(err->text, sizeof(err->text), "out of memory");
		goto fail;
	}
	if ((f = fopen(path, "r")) == NULL)
		goto unreadable;
	for (int n = 1; getline(&line, &cap, f) >= 0; n++) {
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		err->line = n;
		if (t->n == len) {
			struct user *grown = realloc(t->users, (len ? 2 * len : 16) * sizeof(*grown));
			if (grown == NULL) {
				snprintf(why, sizeof(why), "out of memory");
				goto bad_line;
			}
			t->users = grown;
			len = len ? 2 * len : 16;
		}
		t->users[t->n] = (struct user){ .line = n };
		t->n++;
		if (parse_line(s, &t->users[t->n - 1], why) != 0)
			goto bad_line;
	}
	err->line = 0;
	if (ferror(f))
		goto unreadable;
	if (t->n > 0)  /* users is NULL then, which qsort may not be given */
		qsort(t->users, t->n, sizeof(*t->users), by_name);
	if (find_duplicate(t, path, err))
		goto fail;
	free(line);
	fclose(f);
	return t;
unreadable:
	snprintf(err->text, sizeof(err->text), "cannot read %s: %s", path, strerror(errno));
	goto fail;
bad_line:
	snprintf(err->text, sizeof(err->text), "%s:%d: %s", path, err->line, why);
fail:
	free(line);
	if (f != NULL)
		fclose(f);
	static_users_unref(t);
	return NULL;
}

const struct user *static_users_find(const struct user_table *t, const char *name)
{
	struct user key = { .name = (char *)name };

	if (t->n == 0)
		return NULL;
	return bsearch(&key, t->users, t->n, sizeof(*t->users), by_name);
}

/* A real user's hash, picked by the name, so unknown names cost what known
 * ones do (whatever mix of methods and rounds the file holds) and the same
 * name always the same. */
const char *static_users_decoy(const struct user_table *t, const char *name)
{
	uint32_t h = 2166136261u;  /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return t->users[h % t->n].hash;
}
