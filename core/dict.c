/* Separate chaining with a power-of-two bucket array that doubles when the
 * load passes 1. Small and predictable; no removal tombstones. */
#include "dict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <confab/common.h>

typedef struct entry {
	struct entry *next;
	void *value;
	uint32_t hash;
	char key[];
} entry;

struct dict {
	entry **buckets;
	size_t n_buckets;  /* power of two */
	size_t count;
};

static uint32_t hash_key(const char *key)
{
	/* FNV-1a: fast on the short names we store. */
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

dict *dict_new(void)
{
	dict *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->n_buckets = 8;
	d->buckets = calloc(d->n_buckets, sizeof(*d->buckets));
	if (!d->buckets) {
		free(d);
		return NULL;
	}
	return d;
}

void dict_free(dict *d, void (*free_value)(void *))
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_buckets; i++) {
		entry *e = d->buckets[i];
		while (e) {
			entry *next = e->next;
			if (free_value)
				free_value(e->value);
			free(e);
			e = next;
		}
	}
	free(d->buckets);
	free(d);
}

static entry **find_slot(const dict *d, const char *key, uint32_t hash)
{
	entry **slot = &d->buckets[hash & (d->n_buckets - 1)];
	while (*slot && ((*slot)->hash != hash || strcmp((*slot)->key, key) != 0))
		slot = &(*slot)->next;
	return slot;
}

void *dict_get(const dict *d, const char *key)
{
	entry *e = *find_slot(d, key, hash_key(key));
	return e ? e->value : NULL;
}

bool dict_has(const dict *d, const char *key)
{
	return *find_slot(d, key, hash_key(key)) != NULL;
}

static void grow(dict *d)
{
	size_t n = d->n_buckets * 2;
	entry **buckets = calloc(n, sizeof(*buckets));
	if (!buckets)
		return; /* keep working with longer chains */
	for (size_t i = 0; i < d->n_buckets; i++) {
		entry *e = d->buckets[i];
		while (e) {
			entry *next = e->next;
			entry **head = &buckets[e->hash & (n - 1)];
			e->next = *head;
			*head = e;
			e = next;
		}
	}
	free(d->buckets);
	d->buckets = buckets;
	d->n_buckets = n;
}

int dict_set(dict *d, const char *key, void *value)
{
	uint32_t hash = hash_key(key);
	entry **slot = find_slot(d, key, hash);
	if (*slot) {
		(*slot)->value = value;
		return 0;
	}
	size_t len = strlen(key);
	entry *e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return CONFAB_ENOMEM;
	memcpy(e->key, key, len + 1);
	e->hash = hash;
	e->value = value;
	e->next = NULL;
	*slot = e;
	if (++d->count > d->n_buckets)
		grow(d);
	return 0;
}

void *dict_remove(dict *d, const char *key)
{
	entry **slot = find_slot(d, key, hash_key(key));
	entry *e = *slot;
	if (!e)
		return NULL;
	void *value = e->value;
	*slot = e->next;
	free(e);
	d->count--;
	return value;
}

size_t dict_count(const dict *d)
{
	return d->count;
}

void dict_iter_init(dict_iter *it, const dict *d)
{
	it->d = d;
	it->bucket = 0;
	it->next = d->n_buckets ? d->buckets[0] : NULL;
}

bool dict_iter_next(dict_iter *it, const char **key, void **value)
{
	const entry *e = it->next;
	while (!e) {
		if (++it->bucket >= it->d->n_buckets)
			return false;
		e = it->d->buckets[it->bucket];
	}
	it->next = e->next;
	if (key)
		*key = e->key;
	if (value)
		*value = e->value;
	return true;
}
