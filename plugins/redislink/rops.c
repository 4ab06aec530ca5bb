/* The local bookkeeping both Redis backplanes keep alike (rops.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "rops.h"
#include "rwire.h"

static confab_dict *users_of(const rops_room_kind *kind, void *room_value)
{
	return *(confab_dict **)((char *)room_value + kind->users_at);
}

int rwait_push(rwait **list, confab_status_done done, void *arg, uint64_t since)
{
	rwait *w = malloc(sizeof(*w));

	if (w == NULL)
		return CONFAB_ENOMEM;
	w->done = done;
	w->arg = arg;
	w->since = since;
	w->next = *list;
	*list = w;
	return 0;
}

void rwait_answer_all(rwait **list, int status)
{
	rwait *w = *list, *order = NULL;

	*list = NULL;
	while (w != NULL) {          /* reverse: newest first -> oldest first */
		rwait *next = w->next;

		w->next = order;
		order = w;
		w = next;
	}
	while (order != NULL) {
		rwait *next = order->next;

		order->done(order->arg, status);
		free(order);
		order = next;
	}
}

void rwait_free_all(rwait **list)
{
	while (*list != NULL) {
		rwait *w = *list;

		*list = w->next;
		free(w);
	}
}

void rops_fresh_epoch(char out[17])
{
	static uint64_t made;
	uint64_t v;

	/* Without randomness, time and a counter still make an epoch differ
	 * from the room's earlier ones, which is all a client relies on. */
	made++;
	if (uv_random(NULL, NULL, &v, sizeof(v), 0, NULL) != 0)
		v = uv_hrtime() ^ (made * 0x9e3779b97f4a7c15u);
	snprintf(out, 17, "%016" PRIx64, v);
}

uint64_t rops_next_gen(uint64_t last)
{
	struct timespec ts;
	uint64_t now = 0;

	if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
		now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return now > last ? now : last + 1;
}

int rops_room_add(confab_dict *rooms, const char *room, const char *user,
		  const rops_room_kind *kind, void *make_ctx, void **value)
{
	void *r = confab_dict_get(rooms, room);
	bool created = false;

	if (r == NULL) {
		if ((r = kind->make(make_ctx)) == NULL || confab_dict_set(rooms, room, r) != 0) {
			kind->drop(r);
			return CONFAB_ENOMEM;
		}
		created = true;
	}
	*value = r;
	if (confab_dict_has(users_of(kind, r), user))
		return 0;
	if (confab_dict_set(users_of(kind, r), user, NULL) != 0) {
		if (created)
			kind->drop(confab_dict_remove(rooms, room));
		return CONFAB_ENOMEM;
	}
	return 1;
}

int rops_room_remove(confab_dict *rooms, const char *room, const char *user,
		     const rops_room_kind *kind, void **value)
{
	void *r = confab_dict_get(rooms, room);
	size_t left;

	*value = r;
	if (r == NULL || !confab_dict_has(users_of(kind, r), user))
		return -1;
	confab_dict_remove(users_of(kind, r), user);
	left = confab_dict_count(users_of(kind, r));
	return left > INT_MAX ? INT_MAX : (int)left;
}

int rops_presence_args(rargs *a, const confab_dict *rooms, const confab_dict *users,
		       const rops_filter *f)
{
	size_t entries = 0;
	confab_dict_iter it, uit;
	const char *room, *user;
	void *value;
	int rc;

	confab_dict_iter_init(&it, rooms);
	while (confab_dict_iter_next(&it, NULL, &value))
		if (f->keep_room == NULL || f->keep_room(value, f->ctx))
			entries += confab_dict_count(users_of(f->kind, value));
	rc = rargs_addf(a, "%zu", entries);
	confab_dict_iter_init(&it, rooms);
	while (rc == 0 && confab_dict_iter_next(&it, &room, &value)) {
		if (f->keep_room != NULL && !f->keep_room(value, f->ctx))
			continue;
		confab_dict_iter_init(&uit, users_of(f->kind, value));
		while (rc == 0 && confab_dict_iter_next(&uit, &user, NULL))
			rc = rargs_addf(a, "%s\t%s", room, user);
	}
	confab_dict_iter_init(&it, users);
	while (rc == 0 && confab_dict_iter_next(&it, &user, NULL))
		if (f->keep_user == NULL || f->keep_user(user, f->ctx))
			rc = rargs_adds(a, user);
	return rc != 0 ? CONFAB_ENOMEM : 0;
}

char *rops_idem_key(const char *prefix, const confab_envelope *env)
{
	bool direct = env->kind == CONFAB_ENV_DIRECT;
	char *out;

	if (!CONFAB_HAS(env, idem) || env->idem == NULL)
		return strdup("");
	if (asprintf(&out, "%sidem:%c:%s/%s/%s", prefix, direct ? 'd' : 'm',
		     direct ? env->from : env->room, direct ? env->to : env->from, env->idem) < 0)
		return NULL;
	return out;
}

int rops_idem_args(rargs *a, const char *ik, unsigned long window, const confab_envelope *env)
{
	return rargs_adds(a, ik) || rargs_addf(a, "%lu", window) || rargs_adds(a, env->id) ||
	       rargs_addf(a, "%lld", (long long)env->ts) ? CONFAB_ENOMEM : 0;
}

void rops_remember_epoch(const rops_ctx *rc, const char *room, const char *epoch)
{
	void *r = confab_dict_get(rc->rooms, room);

	if (r != NULL && epoch != NULL)
		snprintf((char *)r + rc->kind->epoch_at, CONFAB_EPOCH_MAX + 1, "%s", epoch);
}

int rops_history_args(rargs *a, bool has_since, uint64_t since, size_t limit,
		      size_t history_size, const char *known, unsigned long room_ttl,
		      const char *fresh)
{
	return rargs_adds(a, has_since ? "1" : "0") ||
	       rargs_addf(a, "%" PRIu64, has_since ? since : 0) || rargs_addf(a, "%zu", limit) ||
	       rargs_addf(a, "%zu", history_size) || rargs_adds(a, known != NULL ? known : "") ||
	       rargs_addf(a, "%lu", room_ttl) || rargs_adds(a, fresh) ? CONFAB_ENOMEM : 0;
}


int rops_publish_args(rargs *a, const confab_envelope *env, size_t history_size,
		      unsigned long room_ttl, bool refresh)
{
	char *head_a, *head_b, fresh[17];
	int rc;

	if (wire_message_head(env, &head_a, &head_b) != 0)
		return CONFAB_ENOMEM;
	rops_fresh_epoch(fresh);
	rc = rargs_adds(a, env->room) || rargs_adds(a, head_a) || rargs_adds(a, head_b) ||
	     rargs_add(a, env->body, env->body_len) || rargs_addf(a, "%zu", history_size) ||
	     rargs_addf(a, "%lu", room_ttl) || rargs_adds(a, fresh) ||
	     rargs_adds(a, refresh ? "1" : "0");
	free(head_a);
	free(head_b);
	return rc ? CONFAB_ENOMEM : 0;
}

int rops_direct_args(rargs *a, const confab_envelope *env, unsigned presence_ttl_ms)
{
	size_t len = 0;
	char *text = wire_direct(env, &len);
	int rc;

	if (text == NULL)
		return CONFAB_ENOMEM;
	rc = rargs_adds(a, env->to) || rargs_add(a, text, len) ||
	     rargs_addf(a, "%u", presence_ttl_ms);
	free(text);
	return rc ? CONFAB_ENOMEM : 0;
}
