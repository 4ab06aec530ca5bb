/* Redis Cluster's key slots, the slot map from CLUSTER SHARDS or CLUSTER
 * SLOTS, and MOVED/ASK errors (rslot.h says what each one promises).
 *
 * The parsers read what a cluster says without trusting it: a reply of
 * the wrong shape, a slot out of range or a port that is not one is a
 * reason in `why`, never a crash, and the map given is left as it was.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rslot.h"

/* ---- slots ---------------------------------------------------------------- */

uint16_t rslot_crc16(const char *buf, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)((uint16_t)(unsigned char)buf[i] << 8);
		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

unsigned rslot_of(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);

	if (open != NULL) {
		size_t start = (size_t)(open - key) + 1;
		const char *close = memchr(key + start, '}', len - start);

		/* "{}" is no tag: the whole key is hashed, as the spec says. */
		if (close != NULL && close > key + start)
			return rslot_crc16(key + start, (size_t)(close - (key + start))) % RSLOT_COUNT;
	}
	return rslot_crc16(key, len) % RSLOT_COUNT;
}

/* ---- the map --------------------------------------------------------------- */

void rslot_map_init(rslot_map *m)
{
	m->masters = NULL;
	m->n_masters = 0;
	for (size_t i = 0; i < RSLOT_COUNT; i++)
		m->owner[i] = -1;
	m->uncovered = RSLOT_COUNT;
	m->tls = false;
}

void rslot_map_clear(rslot_map *m)
{
	free(m->masters);
	rslot_map_init(m);
}

/* The reason for a failed parse; always returns -1. */
__attribute__((format(printf, 3, 4)))
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool is_text(const redisReply *r)
{
	return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static bool text_is(const redisReply *r, const char *s)
{
	return is_text(r) && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* An integer reply, or a string of digits (RESP2 servers send both);
 * false when it is neither or does not fit [min, max]. */
static bool number(const redisReply *r, long long min, long long max, long long *out)
{
	long long v = 0;

	if (r == NULL)
		return false;
	if (r->type == REDIS_REPLY_INTEGER) {
		v = r->integer;
	} else if (is_text(r)) {
		if (r->len == 0 || r->len > 18)
			return false;
		for (size_t i = 0; i < r->len; i++) {
			if (r->str[i] < '0' || r->str[i] > '9')
				return false;
			v = v * 10 + (r->str[i] - '0');
		}
	} else {
		return false;
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* The value of `key` in a RESP2 map (a flat array key, value, ...), or NULL. */
static const redisReply *field(const redisReply *map, const char *key)
{
	if (map == NULL || map->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < map->elements; i += 2)
		if (text_is(map->element[i], key))
			return map->element[i + 1];
	return NULL;
}

/* Copies a reply's text into host[256]; false when it is too long. */
static bool copy_host(char *host, const char *s, size_t len)
{
	if (len >= sizeof(((rslot_master *)0)->host))
		return false;
	memcpy(host, s, len);
	host[len] = '\0';
	return true;
}

/* The index of the master at host:port in `m`, added when new; -1 when
 * out of memory or when there are more masters than an owner can name. */
static int add_master(rslot_map *m, const rslot_master *nm)
{
	rslot_master *grown;

	for (size_t i = 0; i < m->n_masters; i++) {
		if (m->masters[i].port == nm->port && strcmp(m->masters[i].host, nm->host) == 0) {
			/* One node that the reply lists twice (a shard per slot
			 * range in CLUSTER SLOTS): one master. */
			if (m->masters[i].replicas < nm->replicas)
				m->masters[i].replicas = nm->replicas;
			return (int)i;
		}
	}
	if (m->n_masters >= INT16_MAX)
		return -1;
	grown = realloc(m->masters, (m->n_masters + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	m->masters = grown;
	m->masters[m->n_masters] = *nm;
	return (int)m->n_masters++;
}

static void assign(rslot_map *m, long long start, long long end, int master)
{
	for (long long s = start; s <= end; s++) {
		if (m->owner[s] < 0)
			m->uncovered--;
		m->owner[s] = (int16_t)master;
	}
}

/* Replaces `m` with a successful parse, or drops it on failure. */
static int finish(rslot_map *m, rslot_map *built, int rc)
{
	if (rc == 0) {
		free(m->masters);
		*m = *built;
	} else {
		free(built->masters);
	}
	return rc;
}

/* A reply that is an error (the seed refused: not in cluster mode...) or
 * not an array: -1 with the reason. */
static int check_top(const redisReply *r, const char *what, char *why, size_t whylen)
{
	if (r == NULL)
		return fail(why, whylen, "no reply to %s", what);
	if (r->type == REDIS_REPLY_ERROR)
		return fail(why, whylen, "%s", r->str != NULL ? r->str : "error");
	if (r->type != REDIS_REPLY_ARRAY)
		return fail(why, whylen, "the reply to %s is not an array", what);
	return 0;
}

/* ---- CLUSTER SHARDS ----------------------------------------------------------- */

/* The shard's master: the node with role "master", an online one when
 * there are several (a failed master not yet replaced, and its promoted
 * replica); NULL when none. `replicas` counts the other nodes. */
static const redisReply *shard_master(const redisReply *nodes, unsigned *replicas)
{
	const redisReply *master = NULL;

	*replicas = 0;
	for (size_t i = 0; i < nodes->elements; i++) {
		const redisReply *node = nodes->element[i];

		if (!text_is(field(node, "role"), "master")) {
			(*replicas)++;
			continue;
		}
		if (master == NULL || (!text_is(field(master, "health"), "online") &&
				       text_is(field(node, "health"), "online")))
			master = node;
	}
	/* Masters not chosen are not replicas of the chosen one. */
	return master;
}

/* Fills `nm` from a CLUSTER SHARDS node: endpoint, else ip, else the seed. */
static int shard_node(rslot_master *nm, const redisReply *node, const char *seed_host,
		      bool tls, char *why, size_t whylen)
{
	const redisReply *endpoint = field(node, "endpoint"), *ip = field(node, "ip"),
			 *id = field(node, "id");
	long long port;
	bool ok;

	/* A node lists "port" and, with TLS configured, "tls-port" (a
	 * TLS-only node has no plain port): a TLS client takes the latter. */
	if (!(tls && number(field(node, "tls-port"), 1, 65535, &port)) &&
	    !number(field(node, "port"), 1, 65535, &port))
		return fail(why, whylen, "CLUSTER SHARDS: a master has no valid port");
	nm->port = (int)port;
	if (is_text(endpoint) && endpoint->len > 0 && !text_is(endpoint, "?"))
		ok = copy_host(nm->host, endpoint->str, endpoint->len);
	else if (is_text(ip) && ip->len > 0 && !text_is(ip, "?"))
		ok = copy_host(nm->host, ip->str, ip->len);
	else
		ok = copy_host(nm->host, seed_host, strlen(seed_host));
	if (!ok)
		return fail(why, whylen, "CLUSTER SHARDS: a master's host name is too long");
	nm->id[0] = '\0';
	if (is_text(id) && id->len < sizeof(nm->id)) {
		memcpy(nm->id, id->str, id->len);
		nm->id[id->len] = '\0';
	}
	return 0;
}

static int parse_shard(rslot_map *m, const redisReply *shard, const char *seed_host,
		       char *why, size_t whylen)
{
	const redisReply *slots = field(shard, "slots"), *nodes = field(shard, "nodes"), *master;
	rslot_master nm;
	long long start, end;
	int idx;

	if (slots == NULL || slots->type != REDIS_REPLY_ARRAY || slots->elements % 2 != 0 ||
	    nodes == NULL || nodes->type != REDIS_REPLY_ARRAY)
		return fail(why, whylen, "CLUSTER SHARDS: a shard without slots or nodes");
	master = shard_master(nodes, &nm.replicas);
	/* A shard with no master (or no slots) serves nothing: its slots
	 * stay uncovered. */
	if (master == NULL || slots->elements == 0)
		return 0;
	if (shard_node(&nm, master, seed_host, m->tls, why, whylen) != 0)
		return -1;
	for (size_t i = 0; i < slots->elements; i += 2) {
		if (!number(slots->element[i], 0, RSLOT_COUNT - 1, &start) ||
		    !number(slots->element[i + 1], 0, RSLOT_COUNT - 1, &end) || start > end)
			return fail(why, whylen, "CLUSTER SHARDS: a slot range out of 0..16383");
	}
	idx = add_master(m, &nm);
	if (idx < 0)
		return fail(why, whylen, "out of memory");
	for (size_t i = 0; i < slots->elements; i += 2) {
		number(slots->element[i], 0, RSLOT_COUNT - 1, &start);
		number(slots->element[i + 1], 0, RSLOT_COUNT - 1, &end);
		assign(m, start, end, idx);
	}
	return 0;
}

int rslot_parse_shards(rslot_map *m, const redisReply *r, const char *seed_host,
		       char *why, size_t whylen)
{
	rslot_map built;
	int rc;

	if (check_top(r, "CLUSTER SHARDS", why, whylen) != 0)
		return -1;
	if (seed_host == NULL)
		seed_host = "";
	rslot_map_init(&built);
	built.tls = m->tls;
	rc = 0;
	for (size_t i = 0; rc == 0 && i < r->elements; i++)
		rc = parse_shard(&built, r->element[i], seed_host, why, whylen);
	return finish(m, &built, rc);
}

/* ---- CLUSTER SLOTS ------------------------------------------------------------ */

/* [start, end, [ip, port, id, ...], replica...] */
static int parse_range(rslot_map *m, const redisReply *e, const char *seed_host,
		       char *why, size_t whylen)
{
	const redisReply *node, *ip;
	rslot_master nm;
	long long start, end, port;
	bool ok;
	int idx;

	if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 3)
		return fail(why, whylen, "CLUSTER SLOTS: an entry is not [start, end, master...]");
	if (!number(e->element[0], 0, RSLOT_COUNT - 1, &start) ||
	    !number(e->element[1], 0, RSLOT_COUNT - 1, &end) || start > end)
		return fail(why, whylen, "CLUSTER SLOTS: a slot range out of 0..16383");
	node = e->element[2];
	if (node == NULL || node->type != REDIS_REPLY_ARRAY || node->elements < 2 ||
	    !number(node->element[1], 1, 65535, &port))
		return fail(why, whylen, "CLUSTER SLOTS: a master without [ip, port]");
	ip = node->element[0];
	nm.port = (int)port;
	if (is_text(ip) && ip->len > 0 && !text_is(ip, "?"))
		ok = copy_host(nm.host, ip->str, ip->len);
	else
		ok = copy_host(nm.host, seed_host, strlen(seed_host));
	if (!ok)
		return fail(why, whylen, "CLUSTER SLOTS: a master's host name is too long");
	nm.id[0] = '\0';
	if (node->elements > 2 && is_text(node->element[2]) &&
	    node->element[2]->len < sizeof(nm.id)) {
		memcpy(nm.id, node->element[2]->str, node->element[2]->len);
		nm.id[node->element[2]->len] = '\0';
	}
	nm.replicas = (unsigned)(e->elements - 3);
	idx = add_master(m, &nm);
	if (idx < 0)
		return fail(why, whylen, "out of memory");
	assign(m, start, end, idx);
	return 0;
}

int rslot_parse_slots(rslot_map *m, const redisReply *r, const char *seed_host,
		      char *why, size_t whylen)
{
	rslot_map built;
	int rc;

	if (check_top(r, "CLUSTER SLOTS", why, whylen) != 0)
		return -1;
	if (seed_host == NULL)
		seed_host = "";
	rslot_map_init(&built);
	built.tls = m->tls;
	rc = 0;
	for (size_t i = 0; rc == 0 && i < r->elements; i++)
		rc = parse_range(&built, r->element[i], seed_host, why, whylen);
	return finish(m, &built, rc);
}

/* ---- MOVED / ASK ---------------------------------------------------------------- */

/* Digits only, up to `max`; false otherwise. */
static bool parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 6)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

int rslot_redirect(const char *err, unsigned *slot, char *host, size_t hostlen, int *port)
{
	const char *p, *space, *colon;
	unsigned long s, pt;
	size_t hlen;
	int kind;

	if (err == NULL)
		return 0;
	if (strncmp(err, "MOVED ", 6) == 0) {
		kind = 1;
		p = err + 6;
	} else if (strncmp(err, "ASK ", 4) == 0) {
		kind = 2;
		p = err + 4;
	} else {
		return 0;
	}
	space = strchr(p, ' ');
	if (space == NULL || !parse_uint(p, (size_t)(space - p), RSLOT_COUNT - 1, &s))
		return 0;
	p = space + 1;
	/* "host:port", the host possibly an IPv6 address with colons of
	 * its own ("::1:7000"): the port follows the last colon. */
	colon = strrchr(p, ':');
	if (colon == NULL || !parse_uint(colon + 1, strlen(colon + 1), 65535, &pt) || pt == 0)
		return 0;
	hlen = (size_t)(colon - p);
	if (hlen >= 2 && p[0] == '[' && p[hlen - 1] == ']') {
		p++;
		hlen -= 2;
	}
	if (memchr(p, ' ', hlen) != NULL || hostlen == 0 || hlen >= hostlen)
		return 0;
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	*slot = (unsigned)s;
	*port = (int)pt;
	return kind;
}
