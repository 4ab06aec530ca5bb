/* A string-keyed hash table for the plugin's bookkeeping: separate
 * chaining, a power-of-two bucket array that doubles past load 1.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>

#include "redis.h"

typedef struct rentry {
	struct rentry *next;
	void *value;
	uint32_t hash;
	char key[];
} rentry;

struct rmap {
	rentry **buckets;
	size_t n_buckets;
	size_t count;
};

/* FNV-1a: quick on short names. */
static uint32_t hash_of(const char *key)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

rmap *rmap_new(void)
{
	rmap *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->n_buckets = 8;
	m->buckets = calloc(m->n_buckets, sizeof(*m->buckets));
	if (m->buckets == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void rmap_free(rmap *m, void (*free_value)(void *))
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n_buckets; i++) {
		rentry *e = m->buckets[i];

		while (e != NULL) {
			rentry *next = e->next;

			if (free_value != NULL)
				free_value(e->value);
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	free(m);
}

static rentry **find(const rmap *m, const char *key, uint32_t h)
{
	rentry **pp = &m->buckets[h & (m->n_buckets - 1)];

	while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
		pp = &(*pp)->next;
	return pp;
}

bool rmap_has(const rmap *m, const char *key)
{
	return *find(m, key, hash_of(key)) != NULL;
}

void *rmap_get(const rmap *m, const char *key)
{
	rentry *e = *find(m, key, hash_of(key));

	return e != NULL ? e->value : NULL;
}

static void grow(rmap *m)
{
	size_t n = m->n_buckets * 2;
	rentry **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return;  /* still correct, only slower */
	for (size_t i = 0; i < m->n_buckets; i++) {
		rentry *e = m->buckets[i];

		while (e != NULL) {
			rentry *next = e->next;
			size_t j = e->hash & (n - 1);

			e->next = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = n;
}

int rmap_set(rmap *m, const char *key, void *value)
{
	uint32_t h = hash_of(key);
	rentry **pp = find(m, key, h);
	size_t len;

	if (*pp != NULL) {
		(*pp)->value = value;
		return 0;
	}
	len = strlen(key);
	rentry *e = malloc(sizeof(*e) + len + 1);
	if (e == NULL)
		return CONFAB_ENOMEM;
	memcpy(e->key, key, len + 1);
	e->hash = h;
	e->value = value;
	e->next = NULL;
	*pp = e;
	if (++m->count > m->n_buckets)
		grow(m);
	return 0;
}

void *rmap_remove(rmap *m, const char *key)
{
	rentry **pp = find(m, key, hash_of(key));
	rentry *e = *pp;
	void *value;

	if (e == NULL)
		return NULL;
	*pp = e->next;
	value = e->value;
	free(e);
	m->count--;
	return value;
}

size_t rmap_count(const rmap *m)
{
	return m->count;
}

/* The first entry at or after bucket `it->bucket`. */
static void *advance(rmap_iter *it)
{
	while (it->bucket < it->m->n_buckets) {
		rentry *e = it->m->buckets[it->bucket++];

		if (e != NULL)
			return e;
	}
	return NULL;
}

void rmap_iter_init(rmap_iter *it, const rmap *m)
{
	it->m = m;
	it->bucket = 0;
	it->next = advance(it);
}

bool rmap_iter_next(rmap_iter *it, const char **key, void **value)
{
	rentry *e = it->next;

	if (e == NULL)
		return false;
	/* Find the next one now, so that the caller may remove this one. */
	it->next = e->next != NULL ? e->next : advance(it);
	if (key != NULL)
		*key = e->key;
	if (value != NULL)
		*value = e->value;
	return true;
}
