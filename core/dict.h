/* A string-keyed hash table: O(1) get, set and remove, whatever the keys
 * (the hash is keyed with a per-process secret, so clients cannot choose
 * names that collide). Keys are copied;
 * values are opaque pointers owned by the caller. Used for sessions, users
 * and rooms, and linked into plugins that need one (libconfabdict.la: it
 * holds no state and names no core symbol). */
#ifndef CONFAB_CORE_DICT_H
#define CONFAB_CORE_DICT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dict dict;

typedef struct dict_iter {
	const dict *d;
	size_t bucket;
	const void *next;
} dict_iter;

dict *dict_new(void);
/* Frees the table and its keys; calls free_value on each value if given. */
void dict_free(dict *d, void (*free_value)(void *));

void *dict_get(const dict *d, const char *key);
bool dict_has(const dict *d, const char *key);
/* Inserts or replaces. Returns 0 or CONFAB_ENOMEM. */
int dict_set(dict *d, const char *key, void *value);
/* Removes the key; returns its value (NULL when absent). */
void *dict_remove(dict *d, const char *key);
size_t dict_count(const dict *d);

/* Iteration in no particular order. Removing the entry just returned is
 * allowed; any other change to the table ends the iteration's validity. */
void dict_iter_init(dict_iter *it, const dict *d);
bool dict_iter_next(dict_iter *it, const char **key, void **value);

/* The number of keys in the fullest bucket: for tests and diagnostics. */
size_t dict_longest_chain(const dict *d);

#endif
