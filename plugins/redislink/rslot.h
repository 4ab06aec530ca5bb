/* Redis Cluster's key slots and slot map.
 *
 * A key's slot is CRC16 (XMODEM: poly 0x1021, init 0, no reflection) of
 * the key, or of its hash tag (the text between the first '{' and the
 * first '}' after it, when that is not empty), modulo 16384, as in the
 * Redis Cluster specification. test_rslot checks the specification's
 * vectors ("123456789" -> 0x31C3) and tags.
 *
 * The slot map says which master serves each slot. It is parsed from a
 * CLUSTER SHARDS reply (Redis 7) or a CLUSTER SLOTS reply (older), as
 * hiredis's reader returns them.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_RSLOT_H
#define CONFAB_RSLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define RSLOT_COUNT 16384

uint16_t rslot_crc16(const char *buf, size_t len);
/* The slot of a key, hash tags honoured. */
unsigned rslot_of(const char *key, size_t len);

/* One master: where to reach it. `host` is what the cluster announced
 * (endpoint, or ip/hostname), possibly a DNS name. */
typedef struct rslot_master {
	char host[256];
	int port;
	char id[41];                 /* node id, "" when the reply has none */
	unsigned replicas;           /* replicas listed for it (any state) */
} rslot_master;

typedef struct rslot_map {
	rslot_master *masters;
	size_t n_masters;
	/* slot -> index into masters, or -1 when no master serves it */
	int16_t owner[RSLOT_COUNT];
	size_t uncovered;            /* slots with no master */
	bool tls;                    /* set by the owner, kept by the parsers: use
				      * each node's tls-port (CLUSTER SHARDS; CLUSTER
				      * SLOTS and MOVED already give a TLS client the
				      * TLS port when the cluster has tls-cluster yes) */
} rslot_map;

/* Parse a CLUSTER SHARDS reply into `m` (replaced; free with
 * rslot_map_clear). `seed_host` replaces an empty or "?" endpoint (a
 * node that announces none). 0, or -1 with a reason in `why`. */
int rslot_parse_shards(rslot_map *m, const redisReply *r, const char *seed_host,
		       char *why, size_t whylen);
/* The same for a CLUSTER SLOTS reply. */
int rslot_parse_slots(rslot_map *m, const redisReply *r, const char *seed_host,
		      char *why, size_t whylen);
/* An empty map: every slot uncovered, tls off. clear frees it and makes
 * it empty again (tls off too). */
void rslot_map_init(rslot_map *m);
void rslot_map_clear(rslot_map *m);

/* A MOVED or ASK error ("MOVED 3999 127.0.0.1:6381"): 1 MOVED, 2 ASK, 0
 * neither. Fills slot, host (up to hostlen) and port. An empty host
 * (":6381", a node that announces no endpoint) is left empty: the caller
 * uses the address it sent to. */
int rslot_redirect(const char *err, unsigned *slot, char *host, size_t hostlen, int *port);

#endif /* CONFAB_RSLOT_H */
