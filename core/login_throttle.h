/* Failed logins by key (a client address, or a claimed user name): a
 * score that grows by one per failure and forgets one failure per
 * decay interval; from `allowed` failures on the key is locked for a
 * time that doubles with each further failure, up to a cap. The table holds at
 * most `max_entries` keys and evicts the one whose last failure is the
 * oldest, so a flood of new keys costs bounded memory. Times are in ms of
 * any one monotonic clock (the loop's). */
#ifndef CONFAB_CORE_LOGIN_THROTTLE_H
#define CONFAB_CORE_LOGIN_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct login_throttle login_throttle;

typedef struct login_throttle_config {
	size_t allowed;              /* the failure that locks first (at least 1) */
	uint64_t lockout_ms;         /* the first lock */
	uint64_t lockout_max_ms;     /* the longest lock */
	uint64_t decay_ms;           /* one failure is forgotten per this */
	size_t max_entries;          /* keys kept at most (at least 1) */
} login_throttle_config;

login_throttle *login_throttle_new(const login_throttle_config *cfg);
void login_throttle_free(login_throttle *t);
/* New settings (a reload): locks already set keep their end; a smaller
 * max_entries evicts the oldest entries as new ones come. */
void login_throttle_configure(login_throttle *t, const login_throttle_config *cfg);

/* Records a failure of `key` at `now`. 0, or CONFAB_ENOMEM (the failure
 * is then not recorded). */
int login_throttle_fail(login_throttle *t, const char *key, uint64_t now);
/* Milliseconds until `key` is unlocked; 0 when it is not locked. */
uint64_t login_throttle_locked(login_throttle *t, const char *key, uint64_t now);
/* True while `key` has failures not yet forgotten. */
bool login_throttle_failing(login_throttle *t, const char *key, uint64_t now);
size_t login_throttle_count(const login_throttle *t);

/* The key a client address counts under: IPv4 as it is, an IPv4-mapped
 * IPv6 address as its IPv4, any other IPv6 address as its /64 (one
 * subscriber's share: counting single IPv6 addresses would let one
 * client be 2^64 clients). `out` has at least 64 bytes. */
void login_throttle_address_key(const char *remote, char *out, size_t len);

#endif
