/* Separate chaining with a power-of-two bucket array that doubles when the
 * load passes 1. Small and predictable; no removal tombstones.
 *
 * Keys come from clients (room names, user names, addresses), so the hash
 * is keyed: SipHash-1-3 with a random key drawn once per process. With an
 * unkeyed hash (FNV-1a, before issue 14) anyone could compute names that
 * all land in one bucket, and 20 000 joins of such rooms cost
 * 20 000^2 / 2 string comparisons in each table they enter: seconds of
 * CPU for a few hundred kilobytes of requests. Without the key, finding
 * names that collide is guesswork, and chains stay short whatever the
 * names. SipHash-1-3 costs about as much as FNV-1a on our short names. */
#include "dict.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
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

/* The key, drawn at the first dict_new. Tables are used on the loop thread
 * only (they are not thread-safe anyway), so a plain flag will do. */
static uint64_t sip_key[2];
static bool keyed;

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser: spreads a poor seed over every bit */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static bool read_random(void *out, size_t len)
{
	unsigned char *p = out;
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
		return true;
	/* getrandom(2) missing (old kernel, seccomp): the device */
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		len -= (size_t)n;
	}
	close(fd);
	return len == 0;
}

static void draw_key(void)
{
	if (!read_random(sip_key, sizeof(sip_key))) {
		/* No source of randomness: never fail for that; a key from the
		 * time, the pid and where the stack is still differs from run
		 * to run, which is what defeats precomputed names. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
				((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&ts;
		sip_key[0] = mix64(seed);
		sip_key[1] = mix64(seed ^ 0x9e3779b97f4a7c15ULL);
	}
	keyed = true;
}

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                        \
	do {                                                            \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                  \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                  \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
	} while (0)

/* SipHash-1-3 (one compression round, three finalisation rounds), as in
 * Rust's and Python's hash tables. */
static uint64_t siphash13(const unsigned char *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ sip_key[0];
	uint64_t v1 = 0x646f72616e646f6dULL ^ sip_key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ sip_key[0];
	uint64_t v3 = 0x7465646279746573ULL ^ sip_key[1];
	const unsigned char *end = in + (len & ~(size_t)7);
	for (; in != end; in += 8) {
		uint64_t m = 0;
		for (int i = 7; i >= 0; i--)
			m = (m << 8) | in[i];  /* little-endian, on any machine */
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t i = len & 7; i > 0; i--)
		b |= (uint64_t)in[i - 1] << (8 * (i - 1));
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint32_t hash_key(const char *key)
{
	return (uint32_t)siphash13((const unsigned char *)key, strlen(key));
}

dict *dict_new(void)
{
	if (!keyed)
		draw_key();
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

size_t dict_longest_chain(const dict *d)
{
	size_t longest = 0;
	for (size_t i = 0; i < d->n_buckets; i++) {
		size_t n = 0;
		for (const entry *e = d->buckets[i]; e; e = e->next)
			n++;
		if (n > longest)
			longest = n;
	}
	return longest;
}
