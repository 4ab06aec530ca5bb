/* Idempotency keys remembered for a window (idem.h).
 *
 * Keys expire in the order they were put (all have the same window), so
 * they sit in a FIFO as well as in a hash table, and each call drops the
 * expired ones from its head: what the table holds is bounded by the sends
 * of one window, with no timer. */
#include "idem.h"

#include <stdlib.h>
#include <string.h>

#include <confab/common.h>

#include <confab/dict.h>

typedef struct entry {
	struct entry *next;          /* in put order */
	char *key;
	char *id;
	uint64_t expires;
	idem_answer answer;
} entry;

struct idem_table {
	uint64_t window_ms;
	confab_dict *keys;                  /* key -> entry */
	entry *oldest, *newest;
};

idem_table *idem_new(uint64_t window_ms)
{
	idem_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->window_ms = window_ms;
	t->keys = confab_dict_new();
	if (!t->keys) {
		free(t);
		return NULL;
	}
	return t;
}

static void entry_free(entry *e)
{
	free(e->key);
	free(e->id);
	free(e);
}

void idem_free(idem_table *t)
{
	if (!t)
		return;
	while (t->oldest) {
		entry *e = t->oldest;
		t->oldest = e->next;
		entry_free(e);
	}
	confab_dict_free(t->keys, NULL);
	free(t);
}

static void expire(idem_table *t, uint64_t now)
{
	while (t->oldest && t->oldest->expires <= now) {
		entry *e = t->oldest;
		t->oldest = e->next;
		if (!t->oldest)
			t->newest = NULL;
		confab_dict_remove(t->keys, e->key);
		entry_free(e);
	}
}

const idem_answer *idem_find(idem_table *t, const char *key, uint64_t now)
{
	expire(t, now);
	entry *e = confab_dict_get(t->keys, key);
	return e ? &e->answer : NULL;
}

int idem_put(idem_table *t, const char *key, uint64_t seq, const char *id, int64_t ts,
	     uint64_t now)
{
	expire(t, now);
	entry *e = calloc(1, sizeof(*e));
	if (!e)
		return CONFAB_ENOMEM;
	e->key = strdup(key);
	e->id = strdup(id);
	if (!e->key || !e->id || confab_dict_set(t->keys, e->key, e) != 0) {
		entry_free(e);
		return CONFAB_ENOMEM;
	}
	e->expires = now + t->window_ms;
	e->answer = (idem_answer){ .seq = seq, .id = e->id, .ts = ts };
	if (t->newest)
		t->newest->next = e;
	else
		t->oldest = e;
	t->newest = e;
	return 0;
}

size_t idem_count(const idem_table *t)
{
	return confab_dict_count(t->keys);
}
