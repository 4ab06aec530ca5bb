/* Failed logins by client address or claimed name, and the lockout they
 * earn (login_throttle.h).
 *
 * Why a score with a steady decay rather than a count per window: a
 * window resets all at once, so an attacker who learns its length gets
 * `allowed` fresh guesses at each reset; a score that forgets one failure
 * per interval gives a persistent guesser one guess per interval, however
 * he times them, while a user who mistyped a few times is forgiven
 * within minutes. The lock grows by doubling so that the first few are
 * too short for a user to notice, and an attacker is slowed to a crawl
 * after a dozen failures. */
#include "login_throttle.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <confab/common.h>

#include <confab/dict.h>

typedef struct entry entry;
struct entry {
	entry *prev, *next;          /* most recently failed first */
	uint64_t score;              /* failures at `last` */
	uint64_t last;               /* time of the last failure */
	uint64_t locked_until;
	char key[];
};

struct login_throttle {
	login_throttle_config cfg;
	confab_dict *by_key;                /* key -> entry */
	entry *head, *tail;
};

login_throttle *login_throttle_new(const login_throttle_config *cfg)
{
	login_throttle *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	if ((t->by_key = confab_dict_new()) == NULL) {
		free(t);
		return NULL;
	}
	login_throttle_configure(t, cfg);
	return t;
}

void login_throttle_configure(login_throttle *t, const login_throttle_config *cfg)
{
	t->cfg = *cfg;
	if (t->cfg.max_entries == 0)
		t->cfg.max_entries = 1;
	if (t->cfg.allowed == 0)
		t->cfg.allowed = 1;
	if (t->cfg.decay_ms == 0)
		t->cfg.decay_ms = 1;
}

void login_throttle_free(login_throttle *t)
{
	if (t == NULL)
		return;
	confab_dict_free(t->by_key, free);
	free(t);
}

static void unlink_entry(login_throttle *t, entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		t->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		t->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_front(login_throttle *t, entry *e)
{
	e->next = t->head;
	if (t->head != NULL)
		t->head->prev = e;
	t->head = e;
	if (t->tail == NULL)
		t->tail = e;
}

static void forget(login_throttle *t, entry *e)
{
	unlink_entry(t, e);
	confab_dict_remove(t->by_key, e->key);
	free(e);
}

/* The score left at `now` after the decay since the last failure. */
static uint64_t score_at(const login_throttle *t, const entry *e, uint64_t now)
{
	uint64_t gone = now > e->last ? (now - e->last) / t->cfg.decay_ms : 0;

	return gone >= e->score ? 0 : e->score - gone;
}

/* The entry of `key`, or NULL; an entry wholly forgotten is dropped. */
static entry *find(login_throttle *t, const char *key, uint64_t now)
{
	entry *e = confab_dict_get(t->by_key, key);

	if (e != NULL && now >= e->locked_until && score_at(t, e, now) == 0) {
		forget(t, e);
		e = NULL;
	}
	return e;
}

int login_throttle_fail(login_throttle *t, const char *key, uint64_t now)
{
	entry *e = find(t, key, now);

	if (e == NULL) {
		size_t n = strlen(key);
		while (confab_dict_count(t->by_key) >= t->cfg.max_entries && t->tail != NULL)
			forget(t, t->tail);
		if ((e = calloc(1, sizeof(*e) + n + 1)) == NULL)
			return CONFAB_ENOMEM;
		memcpy(e->key, key, n + 1);
		if (confab_dict_set(t->by_key, e->key, e) != 0) {
			free(e);
			return CONFAB_ENOMEM;
		}
	} else {
		unlink_entry(t, e);
		e->score = score_at(t, e, now);
	}
	push_front(t, e);
	e->score++;
	e->last = now;
	if (e->score >= t->cfg.allowed) {
		uint64_t shift = e->score - t->cfg.allowed;
		uint64_t lock = t->cfg.lockout_max_ms;
		if (shift < 32 && (t->cfg.lockout_ms << shift) < lock)
			lock = t->cfg.lockout_ms << shift;
		e->locked_until = now + lock;
	}
	return 0;
}

uint64_t login_throttle_locked(login_throttle *t, const char *key, uint64_t now)
{
	entry *e = find(t, key, now);

	return e != NULL && now < e->locked_until ? e->locked_until - now : 0;
}

bool login_throttle_failing(login_throttle *t, const char *key, uint64_t now)
{
	return find(t, key, now) != NULL;
}

size_t login_throttle_count(const login_throttle *t)
{
	return confab_dict_count(t->by_key);
}

void login_throttle_address_key(const char *remote, char *out, size_t len)
{
	struct in6_addr a6;

	if (remote == NULL || strchr(remote, ':') == NULL || inet_pton(AF_INET6, remote, &a6) != 1) {
		snprintf(out, len, "%s", remote != NULL ? remote : "?");
		return;
	}
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		inet_ntop(AF_INET, &a6.s6_addr[12], out, (socklen_t)len);
		return;
	}
	memset(&a6.s6_addr[8], 0, 8);
	char text[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, &a6, text, sizeof(text));
	snprintf(out, len, "%s/64", text);
}
