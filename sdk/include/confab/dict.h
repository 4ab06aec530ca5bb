/* confab plugin SDK — a string-keyed hash table: O(1) get, set and remove
 * whatever the keys. Header-only (static inline), like util.h: the core
 * uses it for sessions, users and rooms, and any plugin may.
 *
 * Keys come from clients (room names, user names, addresses), so the hash
 * is keyed: SipHash-1-3 with a random key drawn for each table. With an
 * unkeyed hash anyone could compute names that all land in one bucket, and
 * 20 000 joins of such rooms would cost 20 000^2 / 2 string comparisons in
 * each table they enter. Separate chaining with a power-of-two bucket
 * array that doubles when the load passes 1; no removal tombstones.
 *
 * Keys are copied; values are opaque pointers owned by the caller. Not
 * thread-safe: use a table from one thread (the loop's).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_DICT_H
#define CONFAB_DICT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <confab/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct confab_dict_entry_ {
	struct confab_dict_entry_ *next;
	void *value;
	uint32_t hash;
	char key[];
} confab_dict_entry_;

typedef struct confab_dict {
	confab_dict_entry_ **buckets;
	size_t n_buckets;  /* a power of two */
	size_t count;
	uint64_t key[2];   /* the SipHash key, drawn by confab_dict_new */
} confab_dict;

typedef struct confab_dict_iter {
	const confab_dict *d;
	size_t bucket;
	const confab_dict_entry_ *next;
} confab_dict_iter;

static inline uint64_t confab_dict_mix_(uint64_t x)
{
	/* splitmix64's finaliser: spreads a poor seed over every bit */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The key: getrandom(2). Should it fail (a seccomp filter, a kernel
 * before 3.17), never fail for that: a key from the time, the pid and
 * where the stack and the table are still differs from run to run and
 * table to table, which is what defeats precomputed names. Only C11 and
 * what <unistd.h> and <sys/random.h> declare by themselves are used, so
 * that a plugin built with -std=c11 and no feature macro can include this. */
static inline void confab_dict_draw_key_(uint64_t key[2])
{
	unsigned char *p = (unsigned char *)key;
	size_t len = 2 * sizeof(key[0]);

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		len -= (size_t)n;
	}
	if (len == 0)
		return;
	uint64_t seed = (uint64_t)clock() ^ ((uint64_t)time(NULL) << 20) ^
			((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&p ^
			(uint64_t)(uintptr_t)key;
	key[0] = confab_dict_mix_(seed);
	key[1] = confab_dict_mix_(seed ^ 0x9e3779b97f4a7c15ULL);
}

#define CONFAB_DICT_ROTL_(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define CONFAB_DICT_SIPROUND_                                                   \
	do {                                                                    \
		v0 += v1; v1 = CONFAB_DICT_ROTL_(v1, 13); v1 ^= v0;             \
		v0 = CONFAB_DICT_ROTL_(v0, 32);                                 \
		v2 += v3; v3 = CONFAB_DICT_ROTL_(v3, 16); v3 ^= v2;             \
		v0 += v3; v3 = CONFAB_DICT_ROTL_(v3, 21); v3 ^= v0;             \
		v2 += v1; v1 = CONFAB_DICT_ROTL_(v1, 17); v1 ^= v2;             \
		v2 = CONFAB_DICT_ROTL_(v2, 32);                                 \
	} while (0)

/* SipHash-1-3 (one compression round, three finalisation rounds), as in
 * Rust's and Python's hash tables; about FNV-1a's cost on short names. */
static inline uint32_t confab_dict_hash_(const confab_dict *d, const char *key)
{
	const unsigned char *in = (const unsigned char *)key;
	size_t len = strlen(key);
	uint64_t v0 = 0x736f6d6570736575ULL ^ d->key[0];
	uint64_t v1 = 0x646f72616e646f6dULL ^ d->key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ d->key[0];
	uint64_t v3 = 0x7465646279746573ULL ^ d->key[1];
	const unsigned char *end = in + (len & ~(size_t)7);
	for (; in != end; in += 8) {
		uint64_t m = 0;
		for (int i = 7; i >= 0; i--)
			m = (m << 8) | in[i];  /* little-endian, on any machine */
		v3 ^= m;
		CONFAB_DICT_SIPROUND_;
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t i = len & 7; i > 0; i--)
		b |= (uint64_t)in[i - 1] << (8 * (i - 1));
	v3 ^= b;
	CONFAB_DICT_SIPROUND_;
	v0 ^= b;
	v2 ^= 0xff;
	CONFAB_DICT_SIPROUND_;
	CONFAB_DICT_SIPROUND_;
	CONFAB_DICT_SIPROUND_;
	return (uint32_t)(v0 ^ v1 ^ v2 ^ v3);
}

/* A new empty table, or NULL without memory. */
static inline confab_dict *confab_dict_new(void)
{
	confab_dict *d = (confab_dict *)calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->n_buckets = 8;
	d->buckets = (confab_dict_entry_ **)calloc(d->n_buckets, sizeof(*d->buckets));
	if (d->buckets == NULL) {
		free(d);
		return NULL;
	}
	confab_dict_draw_key_(d->key);
	return d;
}

/* Frees the table and its keys; calls free_value on each value if given. */
static inline void confab_dict_free(confab_dict *d, void (*free_value)(void *))
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n_buckets; i++) {
		confab_dict_entry_ *e = d->buckets[i];
		while (e != NULL) {
			confab_dict_entry_ *next = e->next;
			if (free_value != NULL)
				free_value(e->value);
			free(e);
			e = next;
		}
	}
	free(d->buckets);
	free(d);
}

static inline confab_dict_entry_ **confab_dict_slot_(const confab_dict *d, const char *key,
						     uint32_t hash)
{
	confab_dict_entry_ **slot = &d->buckets[hash & (d->n_buckets - 1)];
	while (*slot != NULL && ((*slot)->hash != hash || strcmp((*slot)->key, key) != 0))
		slot = &(*slot)->next;
	return slot;
}

/* The value of `key`, or NULL when absent. */
static inline void *confab_dict_get(const confab_dict *d, const char *key)
{
	confab_dict_entry_ *e = *confab_dict_slot_(d, key, confab_dict_hash_(d, key));
	return e != NULL ? e->value : NULL;
}

static inline bool confab_dict_has(const confab_dict *d, const char *key)
{
	return *confab_dict_slot_(d, key, confab_dict_hash_(d, key)) != NULL;
}

static inline void confab_dict_grow_(confab_dict *d)
{
	size_t n = d->n_buckets * 2;
	confab_dict_entry_ **buckets = (confab_dict_entry_ **)calloc(n, sizeof(*buckets));
	if (buckets == NULL)
		return; /* keep working with longer chains */
	for (size_t i = 0; i < d->n_buckets; i++) {
		confab_dict_entry_ *e = d->buckets[i];
		while (e != NULL) {
			confab_dict_entry_ *next = e->next;
			confab_dict_entry_ **head = &buckets[e->hash & (n - 1)];
			e->next = *head;
			*head = e;
			e = next;
		}
	}
	free(d->buckets);
	d->buckets = buckets;
	d->n_buckets = n;
}

/* Inserts or replaces. Returns 0 or CONFAB_ENOMEM. */
static inline int confab_dict_set(confab_dict *d, const char *key, void *value)
{
	uint32_t hash = confab_dict_hash_(d, key);
	confab_dict_entry_ **slot = confab_dict_slot_(d, key, hash);
	if (*slot != NULL) {
		(*slot)->value = value;
		return 0;
	}
	size_t len = strlen(key);
	confab_dict_entry_ *e = (confab_dict_entry_ *)malloc(sizeof(*e) + len + 1);
	if (e == NULL)
		return CONFAB_ENOMEM;
	memcpy(e->key, key, len + 1);
	e->hash = hash;
	e->value = value;
	e->next = NULL;
	*slot = e;
	if (++d->count > d->n_buckets)
		confab_dict_grow_(d);
	return 0;
}

/* Removes the key; returns its value (NULL when absent). */
static inline void *confab_dict_remove(confab_dict *d, const char *key)
{
	confab_dict_entry_ **slot = confab_dict_slot_(d, key, confab_dict_hash_(d, key));
	confab_dict_entry_ *e = *slot;
	if (e == NULL)
		return NULL;
	void *value = e->value;
	*slot = e->next;
	free(e);
	d->count--;
	return value;
}

static inline size_t confab_dict_count(const confab_dict *d)
{
	return d->count;
}

/* Iteration in no particular order. Removing the entry just returned is
 * allowed; any other change to the table ends the iteration's validity. */
static inline void confab_dict_iter_init(confab_dict_iter *it, const confab_dict *d)
{
	it->d = d;
	it->bucket = 0;
	it->next = d->n_buckets ? d->buckets[0] : NULL;
}

static inline bool confab_dict_iter_next(confab_dict_iter *it, const char **key, void **value)
{
	const confab_dict_entry_ *e = it->next;
	while (e == NULL) {
		if (++it->bucket >= it->d->n_buckets)
			return false;
		e = it->d->buckets[it->bucket];
	}
	it->next = e->next;
	if (key != NULL)
		*key = e->key;
	if (value != NULL)
		*value = e->value;
	return true;
}

/* The number of keys in the fullest bucket: for tests and diagnostics. */
static inline size_t confab_dict_longest_chain(const confab_dict *d)
{
	size_t longest = 0;
	for (size_t i = 0; i < d->n_buckets; i++) {
		size_t n = 0;
		for (const confab_dict_entry_ *e = d->buckets[i]; e != NULL; e = e->next)
			n++;
		if (n > longest)
			longest = n;
	}
	return longest;
}

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_DICT_H */
