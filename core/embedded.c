/* Everything here happens synchronously: a published message is ordered,
 * stored and delivered before publish() returns. A room's record (its seq
 * and history) stays after its last member leaves, so that seq keeps
 * counting and history survives; its cost is at most history_size messages. */
#include "embedded.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confab-build.h"
#include "dict.h"

typedef struct stored {
	char *id;
	char *from;
	char *body;
	size_t body_len;
	uint64_t seq;
	int64_t ts;
} stored;

typedef struct eroom {
	uint64_t seq;            /* last seq given */
	stored *ring;            /* `cap` slots */
	size_t cap;              /* history_size */
	size_t head;             /* slot of the oldest kept message */
	size_t count;            /* messages kept */
	dict *present;           /* users present (values unused) */
} eroom;

typedef struct embedded {
	confab_ctx *ctx;
	const confab_host *host;
	size_t history_size;
	dict *rooms;             /* name -> eroom */
	dict *online;            /* users with a session (values unused) */
} embedded;

static void stored_clear(stored *m)
{
	free(m->id);
	free(m->from);
	free(m->body);
	memset(m, 0, sizeof(*m));
}

static void eroom_free(void *p)
{
	eroom *r = p;
	if (!r)
		return;
	for (size_t i = 0; i < r->cap; i++)
		stored_clear(&r->ring[i]);
	free(r->ring);
	dict_free(r->present, NULL);
	free(r);
}

static eroom *room_get(embedded *e, const char *name)
{
	eroom *r = dict_get(e->rooms, name);
	if (r)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->present = dict_new();
	r->cap = e->history_size;
	r->ring = r->cap ? calloc(r->cap, sizeof(*r->ring)) : NULL;
	if (!r->present || (e->history_size && !r->ring) || dict_set(e->rooms, name, r) != 0) {
		dict_free(r->present, NULL);
		free(r->ring);
		free(r);
		return NULL;
	}
	return r;
}

static int embedded_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	embedded *e = calloc(1, sizeof(*e));
	if (!e)
		return CONFAB_ENOMEM;
	e->ctx = ctx;
	e->host = host;
	const char *hs = host->broker_get(ctx, "history_size");
	e->history_size = hs ? strtoul(hs, NULL, 10) : 100;
	e->rooms = dict_new();
	e->online = dict_new();
	if (!e->rooms || !e->online) {
		dict_free(e->rooms, NULL);
		dict_free(e->online, NULL);
		free(e);
		return CONFAB_ENOMEM;
	}
	*state = e;
	return 0;
}

static int embedded_start(void *state)
{
	embedded *e = state;
	e->host->backplane->health(e->ctx, true, NULL);
	return 0;
}

static void embedded_destroy(void *state)
{
	embedded *e = state;
	dict_free(e->rooms, eroom_free);
	dict_free(e->online, NULL);
	free(e);
}

static int embedded_publish(void *state, const confab_envelope *env, confab_publish_done done,
			    void *arg)
{
	embedded *e = state;
	eroom *r = room_get(e, env->room);
	if (!r)
		return CONFAB_ENOMEM;
	uint64_t seq = r->seq + 1;
	if (e->history_size) {
		stored m = {
			.id = strdup(env->id),
			.from = strdup(env->from),
			.body = malloc(env->body_len ? env->body_len : 1),
			.body_len = env->body_len,
			.seq = seq,
			.ts = env->ts,
		};
		if (!m.id || !m.from || !m.body) {
			stored_clear(&m);
			return CONFAB_ENOMEM;
		}
		memcpy(m.body, env->body, env->body_len);
		size_t slot;
		if (r->count < e->history_size) {
			slot = (r->head + r->count) % e->history_size;
			r->count++;
		} else {
			slot = r->head;            /* overwrite the oldest */
			r->head = (r->head + 1) % e->history_size;
			stored_clear(&r->ring[slot]);
		}
		r->ring[slot] = m;
	}
	r->seq = seq;

	confab_envelope out = *env;
	out.seq = seq;
	e->host->backplane->deliver(e->ctx, &out);
	done(arg, 0, seq);
	return 0;
}

static int embedded_direct(void *state, const confab_envelope *env, confab_status_done done,
			   void *arg)
{
	embedded *e = state;
	if (!dict_has(e->online, env->to)) {
		done(arg, CONFAB_EOFFLINE);
		return 0;
	}
	e->host->backplane->deliver(e->ctx, env);
	done(arg, 0);
	return 0;
}

static void member_event(embedded *e, confab_envelope_kind kind, const char *room,
			 const char *user)
{
	confab_envelope ev = { .size = sizeof(ev), .kind = kind, .room = room, .from = user };
	e->host->backplane->deliver(e->ctx, &ev);
}

static int embedded_room_join(void *state, const char *room, const char *user)
{
	embedded *e = state;
	eroom *r = room_get(e, room);
	if (!r)
		return CONFAB_ENOMEM;
	if (dict_has(r->present, user))
		return 0;
	if (dict_set(r->present, user, NULL) != 0)
		return CONFAB_ENOMEM;
	member_event(e, CONFAB_ENV_MEMBER_JOIN, room, user);
	return 0;
}

static int embedded_room_leave(void *state, const char *room, const char *user)
{
	embedded *e = state;
	eroom *r = dict_get(e->rooms, room);
	if (!r || !dict_has(r->present, user))
		return 0;
	dict_remove(r->present, user);
	member_event(e, CONFAB_ENV_MEMBER_LEAVE, room, user);
	return 0;
}

static int embedded_user_online(void *state, const char *user)
{
	embedded *e = state;
	return dict_set(e->online, user, NULL);
}

static int embedded_user_offline(void *state, const char *user)
{
	embedded *e = state;
	dict_remove(e->online, user);
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int embedded_presence(void *state, const char *room, confab_presence_done done, void *arg)
{
	embedded *e = state;
	eroom *r = dict_get(e->rooms, room);
	size_t n = r ? dict_count(r->present) : 0;
	const char **users = calloc(n ? n : 1, sizeof(*users));
	if (!users)
		return CONFAB_ENOMEM;
	size_t i = 0;
	if (r) {
		dict_iter it;
		const char *user;
		dict_iter_init(&it, r->present);
		while (dict_iter_next(&it, &user, NULL))
			users[i++] = user;
	}
	qsort(users, n, sizeof(*users), compare_names);
	done(arg, 0, users, n);
	free(users);
	return 0;
}

static int embedded_history(void *state, const char *room, bool has_since, uint64_t since,
			    size_t limit, confab_history_done done, void *arg)
{
	embedded *e = state;
	eroom *r = dict_get(e->rooms, room);
	uint64_t last = r ? r->seq : 0;
	uint64_t first_kept = last - (r ? r->count : 0) + 1;   /* last + 1 when none kept */

	/* The first seq the request asks for. */
	uint64_t want;
	if (has_since)
		want = since + 1;
	else
		want = last >= limit ? last - limit + 1 : 1;
	if (limit == 0 || want > last) {
		done(arg, 0, NULL, 0, false);
		return 0;
	}
	bool truncated = first_kept > want;
	uint64_t from = truncated ? first_kept : want;
	size_t n = (size_t)(last - from + 1);
	if (n > limit)
		n = limit;

	confab_envelope *out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		return CONFAB_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const stored *m = &r->ring[(r->head + (size_t)(from - first_kept) + i) % e->history_size];
		out[i] = (confab_envelope){
			.size = sizeof(confab_envelope),
			.kind = CONFAB_ENV_MESSAGE,
			.room = room,
			.from = m->from,
			.id = m->id,
			.body = m->body,
			.body_len = m->body_len,
			.seq = m->seq,
			.ts = m->ts,
		};
	}
	done(arg, 0, out, n, truncated);
	free(out);
	return 0;
}

static const confab_backplane_ops embedded_ops = {
	.size = sizeof(confab_backplane_ops),
	.publish = embedded_publish,
	.direct = embedded_direct,
	.room_join = embedded_room_join,
	.room_leave = embedded_room_leave,
	.user_online = embedded_user_online,
	.user_offline = embedded_user_offline,
	.presence = embedded_presence,
	.history = embedded_history,
};

static const confab_plugin embedded_descriptor = {
	CONFAB_PLUGIN_HEADER(CONFAB_KIND_BACKPLANE, "embedded", PACKAGE_VERSION),
	.description = "in-process backplane for a single node",
	.init = embedded_init,
	.start = embedded_start,
	.destroy = embedded_destroy,
	.backplane = &embedded_ops,
};

const confab_plugin *embedded_backplane(void)
{
	return &embedded_descriptor;
}
