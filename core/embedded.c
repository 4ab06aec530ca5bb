/* The embedded backplane: rooms, history and presence of a single node, in
 * memory (embedded.h).
 *
 * Everything here happens synchronously: a published message is ordered,
 * stored and delivered before publish() returns.
 *
 * A room's record (its seq, its history and its epoch) stays after its last
 * member leaves, so that seq keeps counting and history survives, until
 * [broker] room_ttl seconds pass without activity (a publish, a join's
 * room_epoch, a history): then it is dropped, and the room, if nobody is
 * present, is freed. Rooms with a record sit in a list ordered by their
 * last activity, so that a sweep once a second looks only at the rooms
 * that expired; a room is also checked when it is used, so that it
 * expires on time whatever the sweep's phase. What the rooms of a node
 * hold is thus bounded by what its clients can create in room_ttl: the
 * test for it is tests/integration/test_room_lifecycle.py. */
#include "embedded.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "confab-build.h"
#include <confab/dict.h>
#include "idem.h"

#define SWEEP_MS 1000

typedef struct stored {
	char *id;
	char *from;
	char *body;
	size_t body_len;
	uint64_t seq;
	int64_t ts;
} stored;

typedef struct eroom {
	char *name;              /* its key in the rooms table */
	uint64_t seq;            /* last seq given */
	stored *ring;            /* `cap` slots: grows with the messages up to
				  * history_size, so a room of one message
				  * does not cost a whole ring */
	size_t cap;
	size_t head;             /* slot of the oldest kept message */
	size_t count;            /* messages kept */
	char epoch[17];          /* "" while the room has no record */
	uint64_t active;         /* loop time (ms) of its last activity */
	struct eroom *prev, *next;  /* in the idle list while it has a record */
	confab_dict *present;           /* users present (values unused) */
} eroom;

typedef struct embedded {
	confab_ctx *ctx;
	const confab_host *host;
	uv_loop_t *loop;         /* NULL under a host without one (unit tests) */
	size_t history_size;
	uint64_t ttl_ms;         /* room_ttl; 0 = records never expire */
	confab_dict *rooms;             /* name -> eroom */
	confab_dict *online;            /* users with a session (values unused) */
	eroom *oldest, *newest;  /* rooms with a record, least recently active first */
	uv_timer_t sweep;
	bool sweeping;           /* the timer was started (it must be closed) */
	uint64_t epochs;         /* epochs made, for the fallback below */
	idem_table *idem;        /* sends' idem keys, for [broker] idem_window */
} embedded;

static uint64_t now_ms(const embedded *e)
{
	return e->loop ? uv_now(e->loop) : 0;
}

static void stored_clear(stored *m)
{
	free(m->id);
	free(m->from);
	free(m->body);
	memset(m, 0, sizeof(*m));
}

static void history_clear(eroom *r)
{
	for (size_t i = 0; i < r->count; i++)
		stored_clear(&r->ring[(r->head + i) % r->cap]);
	free(r->ring);
	r->ring = NULL;
	r->head = r->count = r->cap = 0;
}

/* Room for one more message in a ring not yet history_size long. Until
 * then nothing was overwritten, so the ring starts at slot 0 and can be
 * reallocated as it is. */
static int ring_grow(embedded *e, eroom *r)
{
	if (r->count < r->cap || r->cap == e->history_size)
		return 0;
	size_t cap = r->cap ? r->cap * 2 : 4;
	if (cap > e->history_size)
		cap = e->history_size;
	stored *ring = realloc(r->ring, cap * sizeof(*ring));
	if (!ring)
		return CONFAB_ENOMEM;
	memset(ring + r->cap, 0, (cap - r->cap) * sizeof(*ring));
	r->ring = ring;
	r->cap = cap;
	return 0;
}

static void unlink_room(embedded *e, eroom *r)
{
	if (r->epoch[0] == '\0')
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		e->oldest = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		e->newest = r->prev;
	r->prev = r->next = NULL;
}

static void eroom_free(eroom *r)
{
	if (!r)
		return;
	history_clear(r);
	confab_dict_free(r->present, NULL);
	free(r->name);
	free(r);
}

/* Drops the record (seq, history, epoch): the room expired. */
static void record_drop(embedded *e, eroom *r)
{
	unlink_room(e, r);
	history_clear(r);
	r->seq = 0;
	r->epoch[0] = '\0';
}

/* Frees the room if nothing is left in it: no record, nobody present. */
static void room_release(embedded *e, eroom *r)
{
	if (r->epoch[0] == '\0' && confab_dict_count(r->present) == 0) {
		confab_dict_remove(e->rooms, r->name);
		eroom_free(r);
	}
}

static bool expired(const embedded *e, const eroom *r, uint64_t now)
{
	return e->ttl_ms && r->epoch[0] != '\0' && now - r->active >= e->ttl_ms;
}

/* 64 random bits as 16 hex digits. Should the system have no randomness
 * to give, time and a counter still make the epoch differ from the one
 * before, which is all a client relies on. */
static void new_epoch(embedded *e, char out[17])
{
	uint64_t v;
	e->epochs++;
	if (uv_random(NULL, NULL, &v, sizeof(v), 0, NULL) != 0)
		v = uv_hrtime() ^ (e->epochs * 0x9e3779b97f4a7c15u);
	snprintf(out, 17, "%016llx", (unsigned long long)v);
}

/* The room's record is used now: created (new epoch, seq 0) when it has
 * none, moved to the young end of the idle list. */
static void record_touch(embedded *e, eroom *r)
{
	if (r->epoch[0] == '\0')
		new_epoch(e, r->epoch);
	else
		unlink_room(e, r);
	r->active = now_ms(e);
	r->prev = e->newest;
	r->next = NULL;
	if (e->newest)
		e->newest->next = r;
	else
		e->oldest = r;
	e->newest = r;
}

/* The room, if it exists and is not expired (an expired one is dropped
 * now, and freed when nobody is present). */
static eroom *room_find(embedded *e, const char *name)
{
	eroom *r = confab_dict_get(e->rooms, name);
	if (r && expired(e, r, now_ms(e))) {
		record_drop(e, r);
		if (confab_dict_count(r->present) == 0) {
			room_release(e, r);
			return NULL;
		}
	}
	return r;
}

static eroom *room_get(embedded *e, const char *name)
{
	eroom *r = room_find(e, name);
	if (r)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->present = confab_dict_new();
	r->name = strdup(name);
	if (!r->present || !r->name || confab_dict_set(e->rooms, name, r) != 0) {
		confab_dict_free(r->present, NULL);
		free(r->name);
		free(r);
		return NULL;
	}
	return r;
}

static void on_sweep(uv_timer_t *t)
{
	embedded *e = t->data;
	uint64_t now = now_ms(e);
	while (e->oldest && expired(e, e->oldest, now)) {
		eroom *r = e->oldest;
		record_drop(e, r);
		room_release(e, r);
	}
}

static int embedded_init(confab_ctx *ctx, const confab_host *host, void **state)
{
	embedded *e = calloc(1, sizeof(*e));
	if (!e)
		return CONFAB_ENOMEM;
	e->ctx = ctx;
	e->host = host;
	/* The broker's own settings, as numbers with its defaults applied:
	 * the host knows these keys, so a failure is a broken host. */
	uint64_t history_size, ttl_s, window_s;
	if (host->broker_uint(ctx, "history_size", &history_size) != 0 ||
	    host->broker_uint(ctx, "room_ttl", &ttl_s) != 0 ||
	    host->broker_uint(ctx, "idem_window", &window_s) != 0) {
		free(e);
		return CONFAB_EINVAL;
	}
	e->history_size = (size_t)history_size;
	e->ttl_ms = ttl_s * 1000;
	e->loop = host->loop ? host->loop(ctx) : NULL;
	e->rooms = confab_dict_new();
	e->online = confab_dict_new();
	e->idem = idem_new(window_s * 1000);
	if (!e->rooms || !e->online || !e->idem) {
		confab_dict_free(e->rooms, NULL);
		confab_dict_free(e->online, NULL);
		idem_free(e->idem);
		free(e);
		return CONFAB_ENOMEM;
	}
	*state = e;
	return 0;
}

static int embedded_start(void *state)
{
	embedded *e = state;
	if (e->ttl_ms && e->loop) {
		uv_timer_init(e->loop, &e->sweep);
		e->sweep.data = e;
		uv_timer_start(&e->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
		e->sweeping = true;
	}
	e->host->backplane->health(e->ctx, true, NULL);
	return 0;
}

static void free_embedded(uv_handle_t *h)
{
	free(h->data);
}

static void embedded_destroy(void *state)
{
	embedded *e = state;
	confab_dict_iter it;
	void *value;
	confab_dict_iter_init(&it, e->rooms);
	while (confab_dict_iter_next(&it, NULL, &value))
		eroom_free(value);
	confab_dict_free(e->rooms, NULL);
	confab_dict_free(e->online, NULL);
	idem_free(e->idem);
	if (e->sweeping)
		uv_close((uv_handle_t *)&e->sweep, free_embedded);  /* frees e */
	else
		free(e);
}

/* Orders, stores and delivers one message; its seq in *seq. */
static int publish_one(embedded *e, const confab_envelope *env, uint64_t *seq_out)
{
	eroom *r = room_get(e, env->room);
	if (!r)
		return CONFAB_ENOMEM;
	if (e->history_size && ring_grow(e, r) != 0) {
		room_release(e, r);
		return CONFAB_ENOMEM;
	}
	record_touch(e, r);
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
			return CONFAB_ENOMEM;   /* the room keeps its record: it is touched */
		}
		memcpy(m.body, env->body, env->body_len);
		size_t slot;
		if (r->count < r->cap) {
			slot = (r->head + r->count) % r->cap;
			r->count++;
		} else {
			slot = r->head;            /* full at history_size: overwrite the oldest */
			r->head = (r->head + 1) % r->cap;
			stored_clear(&r->ring[slot]);
		}
		r->ring[slot] = m;
	}
	r->seq = seq;

	confab_envelope out = *env;
	out.size = sizeof(out);
	out.seq = seq;
	out.epoch = r->epoch;
	out.idem = NULL;
	e->host->backplane->deliver(e->ctx, &out);
	*seq_out = seq;
	return 0;
}

static int embedded_publish(void *state, const confab_envelope *env, confab_publish_done done,
			    void *arg)
{
	uint64_t seq;
	int rc = publish_one(state, env, &seq);
	if (rc == 0)
		done(arg, 0, seq);
	return rc;
}

/* The idem key's scope and text as one table key: (room, sender) for a
 * message, (sender, recipient) for a direct one. Names hold no tab. NULL
 * when the envelope has no key (or out of memory: then it is treated as
 * having none). */
static char *idem_key(const confab_envelope *env)
{
	if (!CONFAB_HAS(env, idem) || !env->idem)
		return NULL;
	bool direct = env->kind == CONFAB_ENV_DIRECT;
	const char *a = direct ? env->from : env->room, *b = direct ? env->to : env->from;
	size_t n = strlen(a) + strlen(b) + strlen(env->idem) + 5;
	char *key = malloc(n);
	if (key)
		snprintf(key, n, "%c\t%s\t%s\t%s", direct ? 'd' : 'm', a, b, env->idem);
	return key;
}

/* Remembers the answer of a request with a key, now that it was done. */
static void idem_remember(embedded *e, const char *key, uint64_t seq, const confab_envelope *env)
{
	if (key && idem_put(e->idem, key, seq, env->id, env->ts, now_ms(e)) != 0)
		e->host->log(e->ctx, CONFAB_LOG_WARN, "out of memory: the idem key of message %s "
			     "is not remembered", env->id);
}

/* A repeat within the window: the first request's answer, nothing done. */
static bool idem_repeat(embedded *e, const char *key, confab_send_done done, void *arg)
{
	const idem_answer *a = key ? idem_find(e->idem, key, now_ms(e)) : NULL;
	if (!a)
		return false;
	done(arg, 0, a->seq, a->id, a->ts);
	return true;
}

static int embedded_publish_idem(void *state, const confab_envelope *env, confab_send_done done,
				 void *arg)
{
	embedded *e = state;
	char *key = idem_key(env);
	uint64_t seq;
	int rc = 0;
	if (!idem_repeat(e, key, done, arg)) {
		rc = publish_one(e, env, &seq);
		if (rc == 0) {
			idem_remember(e, key, seq, env);
			done(arg, 0, seq, env->id, env->ts);
		}
	}
	free(key);
	return rc;
}

static int embedded_direct(void *state, const confab_envelope *env, confab_status_done done,
			   void *arg)
{
	embedded *e = state;
	if (!confab_dict_has(e->online, env->to)) {
		done(arg, CONFAB_EOFFLINE);
		return 0;
	}
	e->host->backplane->deliver(e->ctx, env);
	done(arg, 0);
	return 0;
}

static int embedded_direct_idem(void *state, const confab_envelope *env, confab_send_done done,
				void *arg)
{
	embedded *e = state;
	char *key = idem_key(env);
	if (!idem_repeat(e, key, done, arg)) {
		if (!confab_dict_has(e->online, env->to)) {
			done(arg, CONFAB_EOFFLINE, 0, env->id, env->ts);
		} else {
			confab_envelope out = *env;
			out.size = sizeof(out);
			out.idem = NULL;
			e->host->backplane->deliver(e->ctx, &out);
			idem_remember(e, key, 0, env);
			done(arg, 0, 0, env->id, env->ts);
		}
	}
	free(key);
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
	if (confab_dict_has(r->present, user))
		return 0;
	if (confab_dict_set(r->present, user, NULL) != 0) {
		room_release(e, r);
		return CONFAB_ENOMEM;
	}
	member_event(e, CONFAB_ENV_MEMBER_JOIN, room, user);
	return 0;
}

static int embedded_room_leave(void *state, const char *room, const char *user)
{
	embedded *e = state;
	eroom *r = room_find(e, room);
	if (!r || !confab_dict_has(r->present, user))
		return 0;
	confab_dict_remove(r->present, user);
	member_event(e, CONFAB_ENV_MEMBER_LEAVE, room, user);
	room_release(e, r);
	return 0;
}

static int embedded_user_online(void *state, const char *user)
{
	embedded *e = state;
	return confab_dict_set(e->online, user, NULL);
}

static int embedded_user_offline(void *state, const char *user)
{
	embedded *e = state;
	confab_dict_remove(e->online, user);
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int embedded_presence(void *state, const char *room, confab_presence_done done, void *arg)
{
	embedded *e = state;
	eroom *r = room_find(e, room);
	size_t n = r ? confab_dict_count(r->present) : 0;
	const char **users = calloc(n ? n : 1, sizeof(*users));
	if (!users)
		return CONFAB_ENOMEM;
	size_t i = 0;
	if (r) {
		confab_dict_iter it;
		const char *user;
		confab_dict_iter_init(&it, r->present);
		while (confab_dict_iter_next(&it, &user, NULL))
			users[i++] = user;
	}
	qsort(users, n, sizeof(*users), compare_names);
	done(arg, 0, users, n);
	free(users);
	return 0;
}

/* The messages a history request gets, in a new array (*out, free it),
 * for a room that has a record. */
static int history_collect(embedded *e, eroom *r, const char *room, const char *known,
			   bool has_since, uint64_t since, size_t limit, confab_envelope **out,
			   size_t *n_out, bool *truncated)
{
	/* The client knows another life of the room: all it knows is gone. */
	bool other_epoch = known && strcmp(known, r->epoch) != 0;
	if (other_epoch) {
		has_since = true;
		since = 0;
	}
	uint64_t last = r->seq;
	uint64_t first_kept = last - r->count + 1;   /* last + 1 when none kept */

	/* The first seq the request asks for. */
	uint64_t want;
	if (has_since)
		want = since + 1;
	else
		want = last >= limit ? last - limit + 1 : 1;
	*out = NULL;
	*n_out = 0;
	*truncated = other_epoch;
	if (limit == 0 || want > last)
		return 0;
	*truncated = other_epoch || first_kept > want;
	uint64_t from = first_kept > want ? first_kept : want;
	size_t n = (size_t)(last - from + 1);
	if (n > limit)
		n = limit;

	confab_envelope *msgs = calloc(n ? n : 1, sizeof(*msgs));
	if (!msgs)
		return CONFAB_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const stored *m = &r->ring[(r->head + (size_t)(from - first_kept) + i) % r->cap];
		msgs[i] = (confab_envelope){
			.size = sizeof(confab_envelope),
			.kind = CONFAB_ENV_MESSAGE,
			.room = room,
			.from = m->from,
			.id = m->id,
			.body = m->body,
			.body_len = m->body_len,
			.seq = m->seq,
			.ts = m->ts,
			.epoch = r->epoch,
		};
	}
	*out = msgs;
	*n_out = n;
	return 0;
}

/* A history request as both slots take it: the room (a use of its
 * record) and the messages to answer with (the caller frees them). */
static int history_answer(embedded *e, const char *room, const char *known, bool has_since,
			  uint64_t since, size_t limit, eroom **r, confab_envelope **msgs,
			  size_t *n, bool *truncated)
{
	*r = room_get(e, room);
	if (!*r)
		return CONFAB_ENOMEM;
	record_touch(e, *r);
	return history_collect(e, *r, room, known, has_since, since, limit, msgs, n, truncated);
}

static int embedded_history_epoch(void *state, const char *room, const char *epoch,
				  bool has_since, uint64_t since, size_t limit,
				  confab_history_epoch_done done, void *arg)
{
	eroom *r;
	confab_envelope *msgs;
	size_t n;
	bool truncated;
	int rc = history_answer(state, room, epoch, has_since, since, limit, &r, &msgs, &n,
				&truncated);
	if (rc != 0)
		return rc;
	done(arg, 0, msgs, n, truncated, r->epoch);
	free(msgs);
	return 0;
}

/* The ABI 1.0 slot: the same without epochs (the core uses the one
 * above; this one is there for the table's older readers). */
static int embedded_history(void *state, const char *room, bool has_since, uint64_t since,
			    size_t limit, confab_history_done done, void *arg)
{
	eroom *r;
	confab_envelope *msgs;
	size_t n;
	bool truncated;
	int rc = history_answer(state, room, NULL, has_since, since, limit, &r, &msgs, &n,
				&truncated);
	if (rc != 0)
		return rc;
	done(arg, 0, msgs, n, truncated);
	free(msgs);
	return 0;
}

/* A join is activity: it creates the record when there is none. */
static int embedded_room_epoch(void *state, const char *room, confab_epoch_done done, void *arg)
{
	embedded *e = state;
	eroom *r = room_get(e, room);
	if (!r)
		return CONFAB_ENOMEM;
	record_touch(e, r);
	done(arg, 0, r->epoch);
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
	.room_epoch = embedded_room_epoch,
	.history_epoch = embedded_history_epoch,
	.publish_idem = embedded_publish_idem,
	.direct_idem = embedded_direct_idem,
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
