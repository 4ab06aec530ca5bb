/* The bounds on awaited auth decisions (per address, for failing addresses,
 * per node): see auth_guard.h.
 *
 * Why refuse rather than queue: a password check costs ~0.1 s of a core
 * (yescrypt as mkpasswd makes it), so a node on 2 cores checks ~20 a
 * second. A flood of 800 wrong passwords a second queued on libuv's pool
 * would keep both cores busy for 40 s per second of flood, and a real
 * user's check would wait behind all of it. So the number of decisions
 * awaited is bounded, and beyond the bound a handshake is refused before
 * any plugin is asked:
 *  - per address (max_pending_auth_per_address, 1): one address cannot
 *    hold more than its share of the pool;
 *  - for every address with failed logins not yet forgotten, together
 *    (max_pending_auth_failing, 2): once a flood has failed, it shares two
 *    places, and a client that never failed waits behind two checks at
 *    most, not behind the whole flood;
 *  - node-wide (max_pending_auth, 16: four times libuv's pool): a flood
 *    from many fresh addresses is refused with 503 instead of queued.
 * Failed logins lock the address, and the claimed name for addresses that
 * failed lately (login_throttle.c). The name lock spares addresses that
 * never failed: it slows a distributed guesser down without locking the
 * real user, logging in from his own address, out of his account. */
#include "auth_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <confab/common.h>
#include <confab/ratelimit.h>

#include <confab/dict.h>
#include "log.h"
#include "login_throttle.h"
#include "protocol.h"

/* One failure is forgotten per minute: a guesser who keeps at it gets
 * about one guess a minute per address once locked. */
#define FAILURE_DECAY_MS 60000

struct auth_guard {
	size_t max_pending, max_per_address, max_failing;
	bool throttling;                /* login_lockout > 0 */
	size_t pending, pending_failing;
	confab_dict *pending_by_address;       /* address key -> count (uintptr_t) */
	login_throttle *addresses, *names;
	confab_ratelimit locked_log;
};

/* The throttles' settings from [broker]. */
static login_throttle_config throttle_config(const broker_settings *bs)
{
	return (login_throttle_config){
		.allowed = bs->login_failures,
		.lockout_ms = (uint64_t)bs->login_lockout * 1000,
		.lockout_max_ms = (uint64_t)bs->login_lockout_max * 1000,
		.decay_ms = FAILURE_DECAY_MS,
		.max_entries = bs->login_throttle_entries,
	};
}

static void take_bounds(auth_guard *g, const broker_settings *bs)
{
	g->max_pending = bs->max_pending_auth;
	g->max_per_address = bs->max_pending_auth_per_address;
	g->max_failing = bs->max_pending_auth_failing;
	g->throttling = bs->login_lockout > 0;
}

auth_guard *auth_guard_new(const broker_settings *bs)
{
	auth_guard *g = calloc(1, sizeof(*g));
	login_throttle_config tc = throttle_config(bs);

	if (g == NULL)
		return NULL;
	take_bounds(g, bs);
	g->locked_log = (confab_ratelimit)CONFAB_RATELIMIT_INIT(1000);
	if ((g->pending_by_address = confab_dict_new()) == NULL ||
	    (g->addresses = login_throttle_new(&tc)) == NULL ||
	    (g->names = login_throttle_new(&tc)) == NULL) {
		auth_guard_free(g);
		return NULL;
	}
	return g;
}

void auth_guard_configure(auth_guard *g, const broker_settings *bs)
{
	login_throttle_config tc = throttle_config(bs);

	take_bounds(g, bs);
	login_throttle_configure(g->addresses, &tc);
	login_throttle_configure(g->names, &tc);
}

void auth_guard_free(auth_guard *g)
{
	if (g == NULL)
		return;
	confab_dict_free(g->pending_by_address, NULL);
	login_throttle_free(g->addresses);
	login_throttle_free(g->names);
	free(g);
}

static bool failing(auth_guard *g, const char *addr, uint64_t now)
{
	return g->throttling && login_throttle_failing(g->addresses, addr, now);
}

int auth_guard_may_wait(auth_guard *g, const char *addr, uint64_t now, const char **reason)
{
	uintptr_t mine = (uintptr_t)confab_dict_get(g->pending_by_address, addr);

	if (g->max_per_address && mine >= g->max_per_address) {
		*reason = "a login from this address is already being checked";
		return 429;
	}
	if (g->max_failing && g->pending_failing >= g->max_failing && failing(g, addr, now)) {
		*reason = "too many failed logins; try again later";
		return 429;
	}
	if (g->max_pending && g->pending >= g->max_pending) {
		*reason = "too many logins at once; try again later";
		return 503;
	}
	return 0;
}

bool auth_guard_wait(auth_guard *g, const char *addr, uint64_t now)
{
	uintptr_t mine = (uintptr_t)confab_dict_get(g->pending_by_address, addr);
	bool f = failing(g, addr, now);

	/* Out of memory the address goes uncounted: the global bound holds. */
	(void)confab_dict_set(g->pending_by_address, addr, (void *)(mine + 1));
	g->pending++;
	g->pending_failing += f;
	return f;
}

void auth_guard_unwait(auth_guard *g, const char *addr, bool was_failing)
{
	uintptr_t mine = (uintptr_t)confab_dict_get(g->pending_by_address, addr);

	if (mine <= 1)
		confab_dict_remove(g->pending_by_address, addr);
	else
		confab_dict_set(g->pending_by_address, addr, (void *)(mine - 1));
	if (g->pending > 0)
		g->pending--;
	if (was_failing && g->pending_failing > 0)
		g->pending_failing--;
}

int auth_guard_login_begin(auth_guard *g, const char *addr, const char *user, uint64_t now)
{
	if (!g->throttling)
		return 0;
	if (login_throttle_locked(g->addresses, addr, now) > 0)
		return CONFAB_EFULL;
	if (user != NULL && protocol_valid_user(user) &&
	    login_throttle_locked(g->names, user, now) > 0 &&
	    login_throttle_failing(g->addresses, addr, now))
		return CONFAB_EFULL;
	return 0;
}

void auth_guard_login_failed(auth_guard *g, const char *addr, const char *user, uint64_t now)
{
	bool named = user != NULL && protocol_valid_user(user);
	uint64_t skipped;

	if (!g->throttling)
		return;
	if (login_throttle_fail(g->addresses, addr, now) != 0 ||
	    (named && login_throttle_fail(g->names, user, now) != 0)) {
		log_line(CONFAB_LOG_ERROR, "auth", "out of memory recording a failed login");
		return;
	}
	uint64_t a = login_throttle_locked(g->addresses, addr, now);
	uint64_t n = named ? login_throttle_locked(g->names, user, now) : 0;
	if ((a == 0 && n == 0) || !confab_ratelimit_allow(&g->locked_log, now, &skipped))
		return;
	char what[160];
	if (a > 0 && n > 0)
		snprintf(what, sizeof(what), "address %s locked for %.1f s, user name %s for %.1f s",
			 addr, (double)a / 1000, user, (double)n / 1000);
	else if (a > 0)
		snprintf(what, sizeof(what), "address %s locked for %.1f s", addr, (double)a / 1000);
	else
		snprintf(what, sizeof(what), "user name %s locked for %.1f s (for addresses "
			 "that failed lately)", user, (double)n / 1000);
	log_line(CONFAB_LOG_WARN, "auth", "failed logins: %s (%llu more such lines since the "
		 "last)", what, (unsigned long long)skipped);
}
