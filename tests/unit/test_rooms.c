/* Unit tests for this node's room bookkeeping (core/rooms.c), the hash
 * table under it (the SDK's <confab/dict.h>) and the embedded backplane
 * (core/embedded.c),
 * which keeps rooms, presence and history for a single node.
 *
 * The embedded backplane is driven only through its descriptor, the way
 * the core drives any backplane, with a fake host that records what it is
 * given.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <confab/util.h>

#include <confab/dict.h>
#include "embedded.h"
#include "rooms.h"

/* Blocks the process holds: what a free-everything test compares before
 * and after. The test replaces glibc's malloc family (which glibc allows:
 * its own functions, strdup included, then call these) to count them.
 * The sanitizer build keeps its own allocator and counts nothing; there
 * ASan's leak report does the job. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_COUNTED 0
static long heap_blocks(void)
{
	return 0;
}
#else
#define HEAP_COUNTED 1
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
static long blocks;

void *malloc(size_t size)
{
	void *p = __libc_malloc(size);
	blocks += p != NULL;
	return p;
}

void *calloc(size_t n, size_t size)
{
	void *p = __libc_calloc(n, size);
	blocks += p != NULL;
	return p;
}

void *realloc(void *ptr, size_t size)
{
	void *p = __libc_realloc(ptr, size);
	if (ptr == NULL && p != NULL)
		blocks++;
	else if (ptr != NULL && size == 0 && p == NULL)
		blocks--;
	return p;
}

void free(void *ptr)
{
	blocks -= ptr != NULL;
	__libc_free(ptr);
}

static long heap_blocks(void)
{
	return blocks;
}
#endif

/* ======================================================================== */
/* rooms                                                                    */
/* ======================================================================== */

static rooms *rs;

static void rooms_setup(void)
{
	rs = rooms_new();
	ck_assert_ptr_nonnull(rs);
}

static void rooms_teardown(void)
{
	rooms_free(rs);
	rs = NULL;
}

/* Distinct member pointers to store. */
static int member_a, member_b, member_c;

START_TEST(test_first_join_of_a_user_is_changed_and_user_first)
{
	ck_assert_int_eq(rooms_join(rs, "lobby", "s1", "alice", &member_a),
			 ROOMS_CHANGED | ROOMS_USER_FIRST);
	ck_assert(rooms_is_member(rs, "lobby", "s1"));
	ck_assert_uint_eq(rooms_user_sessions(rs, "lobby", "alice"), 1);
	ck_assert_uint_eq(rooms_count(rs), 1);
}
END_TEST

START_TEST(test_joining_again_with_the_same_session_changes_nothing)
{
	rooms_join(rs, "lobby", "s1", "alice", &member_a);
	ck_assert_int_eq(rooms_join(rs, "lobby", "s1", "alice", &member_a), 0);
	ck_assert_uint_eq(rooms_user_sessions(rs, "lobby", "alice"), 1);
	ck_assert_uint_eq(confab_dict_count(rooms_members(rs, "lobby")), 1);
}
END_TEST

START_TEST(test_second_session_of_the_same_user_is_changed_only)
{
	rooms_join(rs, "lobby", "s1", "alice", &member_a);
	ck_assert_int_eq(rooms_join(rs, "lobby", "s2", "alice", &member_b), ROOMS_CHANGED);
	ck_assert_uint_eq(rooms_user_sessions(rs, "lobby", "alice"), 2);
	/* another user is first again */
	ck_assert_int_eq(rooms_join(rs, "lobby", "s3", "bob", &member_c),
			 ROOMS_CHANGED | ROOMS_USER_FIRST);
	ck_assert_uint_eq(rooms_user_sessions(rs, "lobby", "bob"), 1);
}
END_TEST

START_TEST(test_a_user_is_first_in_each_room_separately)
{
	ck_assert_int_eq(rooms_join(rs, "r1", "s1", "alice", &member_a),
			 ROOMS_CHANGED | ROOMS_USER_FIRST);
	ck_assert_int_eq(rooms_join(rs, "r2", "s1", "alice", &member_a),
			 ROOMS_CHANGED | ROOMS_USER_FIRST);
	ck_assert_uint_eq(rooms_count(rs), 2);
	ck_assert(rooms_is_member(rs, "r1", "s1"));
	ck_assert(rooms_is_member(rs, "r2", "s1"));
}
END_TEST

START_TEST(test_leave_is_user_last_only_when_the_last_session_leaves)
{
	rooms_join(rs, "lobby", "s1", "alice", &member_a);
	rooms_join(rs, "lobby", "s2", "alice", &member_b);
	rooms_join(rs, "lobby", "s3", "bob", &member_c);

	ck_assert_int_eq(rooms_leave(rs, "lobby", "s1", "alice"), ROOMS_CHANGED);
	ck_assert(!rooms_is_member(rs, "lobby", "s1"));
	ck_assert_uint_eq(rooms_user_sessions(rs, "lobby", "alice"), 1);

	ck_assert_int_eq(rooms_leave(rs, "lobby", "s2", "alice"),
			 ROOMS_CHANGED | ROOMS_USER_LAST);
	ck_assert_uint_eq(rooms_user_sessions(rs, "lobby", "alice"), 0);
	ck_assert_uint_eq(rooms_count(rs), 1);
	ck_assert(rooms_is_member(rs, "lobby", "s3"));
}
END_TEST

START_TEST(test_leaving_a_room_not_joined_changes_nothing)
{
	ck_assert_int_eq(rooms_leave(rs, "nowhere", "s1", "alice"), 0);
	rooms_join(rs, "lobby", "s1", "alice", &member_a);
	ck_assert_int_eq(rooms_leave(rs, "lobby", "s2", "alice"), 0);
	ck_assert_int_eq(rooms_leave(rs, "other", "s1", "alice"), 0);
	ck_assert_uint_eq(rooms_user_sessions(rs, "lobby", "alice"), 1);
	ck_assert_int_eq(rooms_leave(rs, "lobby", "s1", "alice"),
			 ROOMS_CHANGED | ROOMS_USER_LAST);
	/* and leaving twice */
	ck_assert_int_eq(rooms_leave(rs, "lobby", "s1", "alice"), 0);
}
END_TEST

START_TEST(test_is_member_answers_per_room_and_session)
{
	ck_assert(!rooms_is_member(rs, "lobby", "s1"));
	rooms_join(rs, "lobby", "s1", "alice", &member_a);
	ck_assert(rooms_is_member(rs, "lobby", "s1"));
	ck_assert(!rooms_is_member(rs, "lobby", "s2"));
	ck_assert(!rooms_is_member(rs, "other", "s1"));
	rooms_leave(rs, "lobby", "s1", "alice");
	ck_assert(!rooms_is_member(rs, "lobby", "s1"));
}
END_TEST

START_TEST(test_members_maps_each_session_to_its_member_pointer)
{
	ck_assert_ptr_null(rooms_members(rs, "lobby"));
	rooms_join(rs, "lobby", "s1", "alice", &member_a);
	rooms_join(rs, "lobby", "s2", "alice", &member_b);
	rooms_join(rs, "lobby", "s3", "bob", &member_c);
	rooms_join(rs, "other", "s4", "carol", NULL);

	const confab_dict *m = rooms_members(rs, "lobby");
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(confab_dict_count(m), 3);
	ck_assert_ptr_eq(confab_dict_get(m, "s1"), &member_a);
	ck_assert_ptr_eq(confab_dict_get(m, "s2"), &member_b);
	ck_assert_ptr_eq(confab_dict_get(m, "s3"), &member_c);
	ck_assert(!confab_dict_has(m, "s4"));

	int seen = 0;
	confab_dict_iter it;
	const char *id;
	void *member;
	confab_dict_iter_init(&it, m);
	while (confab_dict_iter_next(&it, &id, &member)) {
		seen++;
		ck_assert(member == &member_a || member == &member_b || member == &member_c);
	}
	ck_assert_int_eq(seen, 3);

	rooms_leave(rs, "lobby", "s2", "alice");
	m = rooms_members(rs, "lobby");
	ck_assert_uint_eq(confab_dict_count(m), 2);
	ck_assert(!confab_dict_has(m, "s2"));
}
END_TEST

START_TEST(test_room_disappears_when_its_last_member_leaves)
{
	rooms_join(rs, "lobby", "s1", "alice", &member_a);
	rooms_join(rs, "lobby", "s2", "bob", &member_b);
	rooms_join(rs, "other", "s1", "alice", &member_a);
	ck_assert_uint_eq(rooms_count(rs), 2);
	rooms_leave(rs, "lobby", "s1", "alice");
	ck_assert_uint_eq(rooms_count(rs), 2);
	rooms_leave(rs, "lobby", "s2", "bob");
	ck_assert_uint_eq(rooms_count(rs), 1);
	ck_assert_ptr_null(rooms_members(rs, "lobby"));
	ck_assert_uint_eq(rooms_user_sessions(rs, "lobby", "bob"), 0);
	rooms_leave(rs, "other", "s1", "alice");
	ck_assert_uint_eq(rooms_count(rs), 0);

	/* and comes back fresh */
	ck_assert_int_eq(rooms_join(rs, "lobby", "s2", "bob", &member_b),
			 ROOMS_CHANGED | ROOMS_USER_FIRST);
	ck_assert_uint_eq(rooms_count(rs), 1);
}
END_TEST

/* 1000 sessions of 500 users over 100 rooms: sessions i and i + 500 belong
 * to the same user and sit in the same room. */
START_TEST(test_thousand_sessions_over_hundred_rooms_then_all_leave)
{
	char room[32], id[32], user[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(room, sizeof(room), "room-%d", i % 100);
		snprintf(id, sizeof(id), "s%d", i);
		snprintf(user, sizeof(user), "u%d", i % 500);
		int want = i < 500 ? (ROOMS_CHANGED | ROOMS_USER_FIRST) : ROOMS_CHANGED;
		ck_assert_int_eq(rooms_join(rs, room, id, user, (void *)(intptr_t)(i + 1)), want);
	}
	ck_assert_uint_eq(rooms_count(rs), 100);
	for (int r = 0; r < 100; r++) {
		snprintf(room, sizeof(room), "room-%d", r);
		ck_assert_uint_eq(confab_dict_count(rooms_members(rs, room)), 10);
		snprintf(user, sizeof(user), "u%d", r);
		ck_assert_uint_eq(rooms_user_sessions(rs, room, user), 2);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(room, sizeof(room), "room-%d", i % 100);
		snprintf(id, sizeof(id), "s%d", i);
		ck_assert_ptr_eq(confab_dict_get(rooms_members(rs, room), id), (void *)(intptr_t)(i + 1));
	}

	for (int i = 0; i < 1000; i++) {
		snprintf(room, sizeof(room), "room-%d", i % 100);
		snprintf(id, sizeof(id), "s%d", i);
		snprintf(user, sizeof(user), "u%d", i % 500);
		int want = i < 500 ? ROOMS_CHANGED : (ROOMS_CHANGED | ROOMS_USER_LAST);
		ck_assert_int_eq(rooms_leave(rs, room, id, user), want);
	}
	ck_assert_uint_eq(rooms_count(rs), 0);
}
END_TEST

START_TEST(test_rooms_still_joined_are_freed_with_the_table)
{
	rooms_free(rs);
	long before = heap_blocks();
	rs = rooms_new();
	ck_assert_ptr_nonnull(rs);
	for (int i = 0; i < 50; i++) {
		char room[32], id[32];
		snprintf(room, sizeof(room), "r%d", i % 7);
		snprintf(id, sizeof(id), "s%d", i);
		ck_assert_int_gt(rooms_join(rs, room, id, "user", NULL), 0);
	}
	ck_assert_uint_eq(rooms_count(rs), 7);
	ck_assert(!HEAP_COUNTED || heap_blocks() > before);
	rooms_free(rs);
	rs = NULL;
	ck_assert_int_eq(heap_blocks(), before);
}
END_TEST

/* ======================================================================== */
/* dict                                                                     */
/* ======================================================================== */

START_TEST(test_dict_set_get_has_count)
{
	confab_dict *d = confab_dict_new();
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(confab_dict_count(d), 0);
	ck_assert_ptr_null(confab_dict_get(d, "a"));
	ck_assert(!confab_dict_has(d, "a"));

	ck_assert_int_eq(confab_dict_set(d, "a", &member_a), 0);
	ck_assert_int_eq(confab_dict_set(d, "b", &member_b), 0);
	ck_assert_uint_eq(confab_dict_count(d), 2);
	ck_assert_ptr_eq(confab_dict_get(d, "a"), &member_a);
	ck_assert_ptr_eq(confab_dict_get(d, "b"), &member_b);
	ck_assert(confab_dict_has(d, "a"));
	ck_assert(!confab_dict_has(d, "A"));
	ck_assert(!confab_dict_has(d, ""));
	confab_dict_free(d, NULL);
}
END_TEST

START_TEST(test_dict_null_value_is_still_present)
{
	confab_dict *d = confab_dict_new();
	ck_assert_int_eq(confab_dict_set(d, "k", NULL), 0);
	ck_assert(confab_dict_has(d, "k"));
	ck_assert_ptr_null(confab_dict_get(d, "k"));
	ck_assert_uint_eq(confab_dict_count(d), 1);
	ck_assert_int_eq(confab_dict_set(d, "", &member_a), 0);
	ck_assert(confab_dict_has(d, ""));
	ck_assert_ptr_eq(confab_dict_get(d, ""), &member_a);
	confab_dict_free(d, NULL);
}
END_TEST

START_TEST(test_dict_set_replaces_the_value_of_an_existing_key)
{
	confab_dict *d = confab_dict_new();
	confab_dict_set(d, "k", &member_a);
	ck_assert_int_eq(confab_dict_set(d, "k", &member_b), 0);
	ck_assert_uint_eq(confab_dict_count(d), 1);
	ck_assert_ptr_eq(confab_dict_get(d, "k"), &member_b);
	confab_dict_free(d, NULL);
}
END_TEST

START_TEST(test_dict_remove_returns_the_value_and_forgets_the_key)
{
	confab_dict *d = confab_dict_new();
	confab_dict_set(d, "a", &member_a);
	confab_dict_set(d, "b", &member_b);
	ck_assert_ptr_eq(confab_dict_remove(d, "a"), &member_a);
	ck_assert_uint_eq(confab_dict_count(d), 1);
	ck_assert(!confab_dict_has(d, "a"));
	ck_assert_ptr_null(confab_dict_remove(d, "a"));
	ck_assert_ptr_null(confab_dict_remove(d, "never"));
	ck_assert_uint_eq(confab_dict_count(d), 1);
	ck_assert_ptr_eq(confab_dict_get(d, "b"), &member_b);
	confab_dict_free(d, NULL);
}
END_TEST

START_TEST(test_dict_copies_its_keys)
{
	confab_dict *d = confab_dict_new();
	char key[8] = "abc";
	confab_dict_set(d, key, &member_a);
	strcpy(key, "xyz");
	ck_assert(confab_dict_has(d, "abc"));
	ck_assert(!confab_dict_has(d, "xyz"));
	confab_dict_free(d, NULL);
}
END_TEST

START_TEST(test_dict_grows_past_ten_thousand_keys)
{
	confab_dict *d = confab_dict_new();
	char key[32];
	for (intptr_t i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "key-%ld", (long)i);
		ck_assert_int_eq(confab_dict_set(d, key, (void *)(i + 1)), 0);
	}
	ck_assert_uint_eq(confab_dict_count(d), 10000);
	for (intptr_t i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "key-%ld", (long)i);
		ck_assert_ptr_eq(confab_dict_get(d, key), (void *)(i + 1));
	}
	for (intptr_t i = 0; i < 10000; i += 2) {
		snprintf(key, sizeof(key), "key-%ld", (long)i);
		ck_assert_ptr_eq(confab_dict_remove(d, key), (void *)(i + 1));
	}
	ck_assert_uint_eq(confab_dict_count(d), 5000);
	for (intptr_t i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "key-%ld", (long)i);
		ck_assert_msg(confab_dict_has(d, key) == (i % 2 == 1), "key %s", key);
	}
	confab_dict_free(d, NULL);
}
END_TEST

START_TEST(test_dict_iteration_visits_each_key_once)
{
	enum { N = 1000 };
	static char seen[N];
	memset(seen, 0, sizeof(seen));
	confab_dict *d = confab_dict_new();
	char key[32];
	for (intptr_t i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "%ld", (long)i);
		confab_dict_set(d, key, (void *)i);
	}
	confab_dict_iter it;
	const char *k;
	void *v;
	size_t visited = 0;
	confab_dict_iter_init(&it, d);
	while (confab_dict_iter_next(&it, &k, &v)) {
		long i = strtol(k, NULL, 10);
		ck_assert(i >= 0 && i < N);
		ck_assert_ptr_eq(v, (void *)(intptr_t)i);
		ck_assert_msg(!seen[i], "key %s visited twice", k);
		seen[i] = 1;
		visited++;
	}
	ck_assert_uint_eq(visited, N);
	/* a finished iterator stays finished */
	ck_assert(!confab_dict_iter_next(&it, &k, &v));

	/* keys and values are optional outputs */
	visited = 0;
	confab_dict_iter_init(&it, d);
	while (confab_dict_iter_next(&it, NULL, NULL))
		visited++;
	ck_assert_uint_eq(visited, N);
	confab_dict_free(d, NULL);
}
END_TEST

START_TEST(test_dict_iteration_of_an_empty_table_visits_nothing)
{
	confab_dict *d = confab_dict_new();
	confab_dict_iter it;
	confab_dict_iter_init(&it, d);
	ck_assert(!confab_dict_iter_next(&it, NULL, NULL));
	confab_dict_set(d, "x", NULL);
	confab_dict_remove(d, "x");
	confab_dict_iter_init(&it, d);
	ck_assert(!confab_dict_iter_next(&it, NULL, NULL));
	confab_dict_free(d, NULL);
}
END_TEST

/* Frees a value and counts it. */
static int values_freed;
static void free_counted(void *value)
{
	values_freed++;
	free(value);
}

START_TEST(test_dict_free_hands_every_value_to_the_free_function)
{
	long before = heap_blocks();
	confab_dict *d = confab_dict_new();
	ck_assert_ptr_nonnull(d);
	char key[32];
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		char *value = malloc(8);
		ck_assert_ptr_nonnull(value);
		ck_assert_int_eq(confab_dict_set(d, key, value), 0);
	}
	values_freed = 0;
	confab_dict_free(d, free_counted);
	ck_assert_int_eq(values_freed, 100);
	ck_assert_int_eq(heap_blocks(), before);
	confab_dict_free(NULL, free_counted);
	ck_assert_int_eq(values_freed, 100);
}
END_TEST

/* ======================================================================== */
/* embedded backplane                                                       */
/* ======================================================================== */

/* What the fake host saw: envelopes delivered, health reports. */
typedef struct seen_env {
	confab_envelope_kind kind;
	char room[72];
	char from[72];
	char to[72];
	char id[72];
	char origin[72];
	char body[64];
	size_t body_len;
	uint64_t seq;
	int64_t ts;
	char epoch[40];
	bool had_room, had_to, had_id, had_body;
} seen_env;

static struct fake_host_state {
	const char *history_size;   /* what broker_get("history_size") answers */
	const char *room_ttl;       /* what broker_get("room_ttl") answers (NULL: unknown) */
	uv_loop_t *loop;            /* what host->loop answers (NULL: none) */
	seen_env env[64];
	size_t n_env;
	int health_calls;
	bool health_up;
	bool wrong_ctx;             /* a host slot got another ctx */
} fake;

/* The plugin only hands ctx back to the host: any distinct pointer will do. */
static int ctx_token;
#define CTX ((confab_ctx *)(void *)&ctx_token)

static void copy_name(char *dst, size_t n, const char *src, bool *had)
{
	if (had)
		*had = src != NULL;
	snprintf(dst, n, "%s", src ? src : "");
}

static void fake_deliver(confab_ctx *ctx, const confab_envelope *env)
{
	fake.wrong_ctx |= ctx != CTX;
	ck_assert_msg(fake.n_env < sizeof(fake.env) / sizeof(fake.env[0]), "too many envelopes");
	seen_env *s = &fake.env[fake.n_env++];
	memset(s, 0, sizeof(*s));
	ck_assert_uint_ge(env->size, sizeof(confab_envelope));
	s->kind = env->kind;
	copy_name(s->room, sizeof(s->room), env->room, &s->had_room);
	copy_name(s->from, sizeof(s->from), env->from, NULL);
	copy_name(s->to, sizeof(s->to), env->to, &s->had_to);
	copy_name(s->id, sizeof(s->id), env->id, &s->had_id);
	copy_name(s->origin, sizeof(s->origin), env->origin, NULL);
	s->had_body = env->body != NULL;
	if (env->body) {
		ck_assert_uint_lt(env->body_len, sizeof(s->body));
		memcpy(s->body, env->body, env->body_len);
		s->body_len = env->body_len;
	}
	s->seq = env->seq;
	s->ts = env->ts;
	if (CONFAB_HAS(env, epoch))
		copy_name(s->epoch, sizeof(s->epoch), env->epoch, NULL);
}

static void fake_health(confab_ctx *ctx, bool up, const char *reason)
{
	fake.wrong_ctx |= ctx != CTX;
	fake.health_calls++;
	fake.health_up = up;
}

static void fake_log(confab_ctx *ctx, confab_log_level level, const char *fmt, ...)
	CONFAB_PRINTF(3, 4);
static void fake_log(confab_ctx *ctx, confab_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "embedded log %d: ", (int)level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const char *fake_broker_get(confab_ctx *ctx, const char *key)
{
	fake.wrong_ctx |= ctx != CTX;
	if (strcmp(key, "history_size") == 0)
		return fake.history_size;
	if (strcmp(key, "max_message_bytes") == 0)
		return "65536";
	if (strcmp(key, "room_ttl") == 0)
		return fake.room_ttl;
	return NULL;
}

/* What the core's broker_uint does: the numbers behind broker_get's text,
 * room_ttl 0 when the test sets none. */
static int fake_broker_uint(confab_ctx *ctx, const char *key, uint64_t *out)
{
	const char *v = strcmp(key, "room_ttl") == 0 && fake.room_ttl == NULL ? "0"
			: strcmp(key, "idem_window") == 0 ? "120" : fake_broker_get(ctx, key);
	return v != NULL && confab_parse_uint(v, 0, UINT64_MAX, out) ? 0 : CONFAB_EINVAL;
}

static uv_loop_t *fake_loop(confab_ctx *ctx)
{
	fake.wrong_ctx |= ctx != CTX;
	return fake.loop;
}

static const confab_host_backplane fake_backplane_host = {
	.size = sizeof(confab_host_backplane),
	.deliver = fake_deliver,
	.health = fake_health,
};

static const confab_host fake_host = {
	.size = sizeof(confab_host),
	.abi_major = CONFAB_ABI_MAJOR,
	.abi_minor = CONFAB_ABI_MINOR,
	.broker_version = "test",
	.log = fake_log,
	.loop = fake_loop,
	.broker_get = fake_broker_get,
	.broker_uint = fake_broker_uint,
	.backplane = &fake_backplane_host,
};

static const confab_plugin *plugin;
static const confab_backplane_ops *ops;
static void *state;

static void start_with_history_size(const char *history_size)
{
	plugin = embedded_backplane();
	ops = plugin->backplane;
	fake.history_size = history_size;
	state = NULL;
	ck_assert_int_eq(plugin->init(CTX, &fake_host, &state), 0);
	ck_assert_ptr_nonnull(state);
	ck_assert_int_eq(plugin->start(state), 0);
}

static void embedded_setup(void)
{
	memset(&fake, 0, sizeof(fake));
	start_with_history_size("5");
}

static void embedded_teardown(void)
{
	if (state) {
		if (plugin->stop)
			plugin->stop(state);
		plugin->destroy(state);
	}
	state = NULL;
	ck_assert_msg(!fake.wrong_ctx, "a host slot was called with another ctx");
}

/* Restarts with another history_size (the fixture started with 5). */
static void restart_with_history_size(const char *history_size)
{
	plugin->destroy(state);
	state = NULL;
	memset(&fake, 0, sizeof(fake));
	start_with_history_size(history_size);
}

/* ---- completion recorders ---- */

typedef struct publish_result {
	int calls;
	int status;
	uint64_t seq;
} publish_result;

static void on_published(void *arg, int status, uint64_t seq)
{
	publish_result *r = arg;
	r->calls++;
	r->status = status;
	r->seq = seq;
}

typedef struct status_result {
	int calls;
	int status;
} status_result;

static void on_status(void *arg, int status)
{
	status_result *r = arg;
	r->calls++;
	r->status = status;
}

typedef struct presence_result {
	int calls;
	int status;
	size_t n;
	char users[16][72];
} presence_result;

static void on_presence(void *arg, int status, const char *const *users, size_t n)
{
	presence_result *r = arg;
	r->calls++;
	r->status = status;
	r->n = n;
	ck_assert_uint_le(n, 16);
	for (size_t i = 0; i < n; i++)
		snprintf(r->users[i], sizeof(r->users[i]), "%s", users[i]);
}

typedef struct history_result {
	int calls;
	int status;
	size_t n;
	bool truncated;
	uint64_t seq[16];
	char id[16][72];
	char from[16][72];
	char body[16][64];
	int64_t ts[16];
	char epoch[40];              /* history_epoch's answer */
	char msg_epoch[16][40];
} history_result;

static void on_history(void *arg, int status, const confab_envelope *m, size_t n,
		       bool truncated)
{
	history_result *r = arg;
	r->calls++;
	r->status = status;
	r->n = n;
	r->truncated = truncated;
	ck_assert_uint_le(n, 16);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(m[i].kind, CONFAB_ENV_MESSAGE);
		ck_assert_ptr_nonnull(m[i].room);
		r->seq[i] = m[i].seq;
		snprintf(r->id[i], sizeof(r->id[i]), "%s", m[i].id);
		snprintf(r->from[i], sizeof(r->from[i]), "%s", m[i].from);
		ck_assert_uint_lt(m[i].body_len, sizeof(r->body[i]));
		memcpy(r->body[i], m[i].body, m[i].body_len);
		r->body[i][m[i].body_len] = '\0';
		r->ts[i] = m[i].ts;
		snprintf(r->msg_epoch[i], sizeof(r->msg_epoch[i]), "%s", m[i].epoch ? m[i].epoch : "");
	}
}

static void on_history_epoch(void *arg, int status, const confab_envelope *m, size_t n,
			     bool truncated, const char *epoch)
{
	history_result *r = arg;
	on_history(arg, status, m, n, truncated);
	ck_assert_ptr_nonnull(epoch);
	snprintf(r->epoch, sizeof(r->epoch), "%s", epoch);
}

typedef struct epoch_result {
	int calls;
	int status;
	char epoch[40];
} epoch_result;

static void on_epoch(void *arg, int status, const char *epoch)
{
	epoch_result *r = arg;
	r->calls++;
	r->status = status;
	snprintf(r->epoch, sizeof(r->epoch), "%s", epoch ? epoch : "");
}

/* ---- helpers ---- */

/* Publishes message number `i` (its id, body and ts say which) from alice
 * in `room`; returns the seq it got. */
static uint64_t publish(const char *room, int i)
{
	char id[32], body[32];
	snprintf(id, sizeof(id), "n1-%d", i);
	snprintf(body, sizeof(body), "{\"n\":%d}", i);
	confab_envelope env = {
		.size = sizeof(env), .kind = CONFAB_ENV_MESSAGE, .room = room, .from = "alice",
		.id = id, .origin = "session-1", .body = body, .body_len = strlen(body),
		.seq = 0, .ts = 1000 + i,
	};
	publish_result r = { 0 };
	ck_assert_int_eq(ops->publish(state, &env, on_published, &r), 0);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(r.status, 0);
	return r.seq;
}

static history_result history(const char *room, bool has_since, uint64_t since, size_t limit)
{
	history_result r;
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(ops->history(state, room, has_since, since, limit, on_history, &r), 0);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(r.status, 0);
	return r;
}

static history_result history_at(const char *room, const char *epoch, bool has_since,
				 uint64_t since, size_t limit)
{
	history_result r;
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(ops->history_epoch(state, room, epoch, has_since, since, limit,
					    on_history_epoch, &r), 0);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(r.status, 0);
	return r;
}

/* The room's epoch, as a join gets it. */
static epoch_result room_epoch(const char *room)
{
	epoch_result r;
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(ops->room_epoch(state, room, on_epoch, &r), 0);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(r.status, 0);
	return r;
}

static bool is_epoch(const char *e)
{
	size_t n = strlen(e);
	for (size_t i = 0; i < n; i++)
		if (!((e[i] >= '0' && e[i] <= '9') || (e[i] >= 'a' && e[i] <= 'f')))
			return false;
	return n == 16;
}

/* The history answer holds exactly seqs first..last with their stored data. */
#define assert_history(r, first, last, trunc) assert_history_at(&(r), first, last, trunc, __LINE__)
static void assert_history_at(const history_result *r, uint64_t first, uint64_t last,
			      bool truncated, int line)
{
	size_t want = last >= first ? (size_t)(last - first + 1) : 0;
	ck_assert_msg(r->n == want, "line %d: %zu messages, want %zu (seq %llu..%llu)", line,
		      r->n, want, (unsigned long long)first, (unsigned long long)last);
	ck_assert_msg(r->truncated == truncated, "line %d: truncated is %d, want %d", line,
		      r->truncated, truncated);
	for (size_t i = 0; i < r->n; i++) {
		uint64_t seq = first + i;
		char id[32], body[32];
		/* the fixture's room "r" numbers its messages from 1, so seq == i */
		snprintf(id, sizeof(id), "n1-%llu", (unsigned long long)seq);
		snprintf(body, sizeof(body), "{\"n\":%llu}", (unsigned long long)seq);
		ck_assert_msg(r->seq[i] == seq, "line %d: message %zu has seq %llu, want %llu",
			      line, i, (unsigned long long)r->seq[i], (unsigned long long)seq);
		ck_assert_str_eq(r->id[i], id);
		ck_assert_str_eq(r->from[i], "alice");
		ck_assert_str_eq(r->body[i], body);
		ck_assert_int_eq(r->ts[i], 1000 + (int64_t)seq);
	}
}

static void publish_eight_in_r(void)
{
	for (int i = 1; i <= 8; i++)
		ck_assert_uint_eq(publish("r", i), (uint64_t)i);
}

/* ---- tests ---- */

START_TEST(test_embedded_start_reports_health_up)
{
	ck_assert_int_eq(fake.health_calls, 1);
	ck_assert(fake.health_up);
	ck_assert_uint_eq(fake.n_env, 0);
}
END_TEST

START_TEST(test_published_messages_get_seq_1_to_8_delivered_in_order)
{
	publish_eight_in_r();
	ck_assert_uint_eq(fake.n_env, 8);
	for (size_t i = 0; i < 8; i++) {
		seen_env *s = &fake.env[i];
		char id[32], body[32];
		snprintf(id, sizeof(id), "n1-%zu", i + 1);
		snprintf(body, sizeof(body), "{\"n\":%zu}", i + 1);
		ck_assert_int_eq(s->kind, CONFAB_ENV_MESSAGE);
		ck_assert_uint_eq(s->seq, i + 1);
		ck_assert_str_eq(s->room, "r");
		ck_assert_str_eq(s->from, "alice");
		ck_assert_str_eq(s->id, id);
		ck_assert_str_eq(s->origin, "session-1");
		ck_assert_str_eq(s->body, body);
		ck_assert_uint_eq(s->body_len, strlen(body));
		ck_assert_int_eq(s->ts, 1001 + (int64_t)i);
	}
}
END_TEST

START_TEST(test_each_room_counts_its_own_seq)
{
	ck_assert_uint_eq(publish("r", 1), 1);
	ck_assert_uint_eq(publish("other", 1), 1);
	ck_assert_uint_eq(publish("r", 2), 2);
	ck_assert_uint_eq(publish("other", 2), 2);
	ck_assert_uint_eq(publish("other", 3), 3);
}
END_TEST

START_TEST(test_history_without_since_gives_the_last_limit_messages)
{
	publish_eight_in_r();
	history_result r = history("r", false, 0, 3);
	assert_history(r, 6, 8, false);
	r = history("r", false, 0, 5);
	assert_history(r, 4, 8, false);
	r = history("r", false, 0, 1);
	assert_history(r, 8, 8, false);
}
END_TEST

START_TEST(test_history_without_since_beyond_what_is_kept_is_truncated)
{
	publish_eight_in_r();
	history_result r = history("r", false, 0, 10);
	assert_history(r, 4, 8, true);
	r = history("r", false, 0, 6);
	assert_history(r, 4, 8, true);
}
END_TEST

START_TEST(test_history_since_0_after_old_messages_dropped_is_truncated)
{
	publish_eight_in_r();
	history_result r = history("r", true, 0, 5);
	assert_history(r, 4, 8, true);
	r = history("r", true, 0, 50);
	assert_history(r, 4, 8, true);
	/* the limit cuts the newest, oldest first stays */
	r = history("r", true, 0, 2);
	assert_history(r, 4, 5, true);
	r = history("r", true, 3, 50);
	assert_history(r, 4, 8, false);
}
END_TEST

START_TEST(test_history_since_gives_only_newer_messages)
{
	publish_eight_in_r();
	history_result r = history("r", true, 5, 50);
	assert_history(r, 6, 8, false);
	r = history("r", true, 5, 2);
	assert_history(r, 6, 7, false);
	r = history("r", true, 7, 50);
	assert_history(r, 8, 8, false);
}
END_TEST

START_TEST(test_history_since_the_last_seq_is_empty)
{
	publish_eight_in_r();
	history_result r = history("r", true, 8, 50);
	assert_history(r, 1, 0, false);
	r = history("r", true, 100, 50);
	assert_history(r, 1, 0, false);
}
END_TEST

START_TEST(test_history_of_an_unknown_room_is_empty)
{
	publish_eight_in_r();
	history_result r = history("nowhere", false, 0, 50);
	assert_history(r, 1, 0, false);
	r = history("nowhere", true, 0, 50);
	assert_history(r, 1, 0, false);
}
END_TEST

START_TEST(test_history_before_the_ring_wraps_is_whole)
{
	for (int i = 1; i <= 3; i++)
		publish("r", i);
	history_result r = history("r", false, 0, 50);
	assert_history(r, 1, 3, false);
	r = history("r", true, 0, 50);
	assert_history(r, 1, 3, false);
	r = history("r", false, 0, 2);
	assert_history(r, 2, 3, false);
}
END_TEST

START_TEST(test_history_and_seq_survive_everyone_leaving)
{
	ck_assert_int_eq(ops->room_join(state, "r", "alice"), 0);
	publish("r", 1);
	publish("r", 2);
	ck_assert_int_eq(ops->room_leave(state, "r", "alice"), 0);
	ck_assert_uint_eq(publish("r", 3), 3);
	history_result r = history("r", false, 0, 50);
	assert_history(r, 1, 3, false);
}
END_TEST

START_TEST(test_presence_lists_users_sorted_and_announces_each_join)
{
	ck_assert_int_eq(ops->room_join(state, "r", "bob"), 0);
	ck_assert_int_eq(ops->room_join(state, "r", "alice"), 0);

	ck_assert_uint_eq(fake.n_env, 2);
	ck_assert_int_eq(fake.env[0].kind, CONFAB_ENV_MEMBER_JOIN);
	ck_assert_str_eq(fake.env[0].room, "r");
	ck_assert_str_eq(fake.env[0].from, "bob");
	ck_assert(!fake.env[0].had_id && !fake.env[0].had_body && !fake.env[0].had_to);
	ck_assert_int_eq(fake.env[1].kind, CONFAB_ENV_MEMBER_JOIN);
	ck_assert_str_eq(fake.env[1].from, "alice");

	presence_result p = { 0 };
	ck_assert_int_eq(ops->presence(state, "r", on_presence, &p), 0);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_int_eq(p.status, 0);
	ck_assert_uint_eq(p.n, 2);
	ck_assert_str_eq(p.users[0], "alice");
	ck_assert_str_eq(p.users[1], "bob");
}
END_TEST

START_TEST(test_presence_of_an_unknown_or_empty_room_is_an_empty_list)
{
	presence_result p = { 0 };
	ck_assert_int_eq(ops->presence(state, "nowhere", on_presence, &p), 0);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_uint_eq(p.n, 0);

	ops->room_join(state, "r", "bob");
	ops->room_leave(state, "r", "bob");
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(ops->presence(state, "r", on_presence, &p), 0);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_uint_eq(p.n, 0);
}
END_TEST

START_TEST(test_joining_again_as_the_same_user_announces_nothing)
{
	ops->room_join(state, "r", "bob");
	ck_assert_int_eq(ops->room_join(state, "r", "bob"), 0);
	ck_assert_uint_eq(fake.n_env, 1);

	presence_result p = { 0 };
	ops->presence(state, "r", on_presence, &p);
	ck_assert_uint_eq(p.n, 1);
	ck_assert_str_eq(p.users[0], "bob");
}
END_TEST

START_TEST(test_room_leave_announces_member_leave)
{
	ops->room_join(state, "r", "bob");
	ops->room_join(state, "r", "alice");
	ck_assert_int_eq(ops->room_leave(state, "r", "bob"), 0);
	ck_assert_uint_eq(fake.n_env, 3);
	ck_assert_int_eq(fake.env[2].kind, CONFAB_ENV_MEMBER_LEAVE);
	ck_assert_str_eq(fake.env[2].room, "r");
	ck_assert_str_eq(fake.env[2].from, "bob");

	presence_result p = { 0 };
	ops->presence(state, "r", on_presence, &p);
	ck_assert_uint_eq(p.n, 1);
	ck_assert_str_eq(p.users[0], "alice");

	/* leaving again, or a room never joined, announces nothing */
	ck_assert_int_eq(ops->room_leave(state, "r", "bob"), 0);
	ck_assert_int_eq(ops->room_leave(state, "nowhere", "bob"), 0);
	ck_assert_uint_eq(fake.n_env, 3);
}
END_TEST

/* Sends a direct message from alice to `to`; returns the done status. */
static int send_direct(const char *to)
{
	static const char body[] = "\"psst\"";
	confab_envelope env = {
		.size = sizeof(env), .kind = CONFAB_ENV_DIRECT, .from = "alice", .to = to,
		.id = "n1-d", .origin = "session-1", .body = body, .body_len = strlen(body),
		.ts = 42,
	};
	status_result r = { 0 };
	ck_assert_int_eq(ops->direct(state, &env, on_status, &r), 0);
	ck_assert_int_eq(r.calls, 1);
	return r.status;
}

START_TEST(test_direct_to_a_user_not_online_is_offline)
{
	ck_assert_int_eq(send_direct("bob"), CONFAB_EOFFLINE);
	ck_assert_uint_eq(fake.n_env, 0);
}
END_TEST

START_TEST(test_direct_to_an_online_user_is_delivered)
{
	ck_assert_int_eq(ops->user_online(state, "bob"), 0);
	ck_assert_int_eq(send_direct("bob"), 0);
	ck_assert_uint_eq(fake.n_env, 1);
	seen_env *s = &fake.env[0];
	ck_assert_int_eq(s->kind, CONFAB_ENV_DIRECT);
	ck_assert_str_eq(s->from, "alice");
	ck_assert_str_eq(s->to, "bob");
	ck_assert_str_eq(s->id, "n1-d");
	ck_assert_str_eq(s->origin, "session-1");
	ck_assert_str_eq(s->body, "\"psst\"");
	ck_assert_int_eq(s->ts, 42);
	ck_assert(!s->had_room);

	/* only the addressee counts */
	ck_assert_int_eq(send_direct("carol"), CONFAB_EOFFLINE);
	ck_assert_uint_eq(fake.n_env, 1);
}
END_TEST

START_TEST(test_direct_after_user_offline_is_offline_again)
{
	ops->user_online(state, "bob");
	ck_assert_int_eq(ops->user_offline(state, "bob"), 0);
	ck_assert_int_eq(send_direct("bob"), CONFAB_EOFFLINE);
	ck_assert_uint_eq(fake.n_env, 0);
	/* offline for a user never online is harmless */
	ck_assert_int_eq(ops->user_offline(state, "nobody"), 0);
}
END_TEST

START_TEST(test_history_size_0_keeps_nothing_and_says_truncated)
{
	restart_with_history_size("0");
	history_result r = history("r", false, 0, 50);
	assert_history(r, 1, 0, false);

	for (int i = 1; i <= 3; i++)
		ck_assert_uint_eq(publish("r", i), (uint64_t)i);
	ck_assert_uint_eq(fake.n_env, 3);   /* still delivered */

	r = history("r", false, 0, 50);
	assert_history(r, 1, 0, true);
	r = history("r", false, 0, 1);
	assert_history(r, 1, 0, true);
	r = history("r", true, 0, 50);
	assert_history(r, 1, 0, true);
	r = history("r", true, 3, 50);
	assert_history(r, 1, 0, false);
}
END_TEST

/* Destroys the fixture's instance: what is on the heap then is the
 * baseline a fresh instance must return to. */
static long heap_without_an_instance(void)
{
	plugin->destroy(state);
	state = NULL;
	return heap_blocks();
}

START_TEST(test_destroy_frees_rooms_history_presence_and_users)
{
	long before = heap_without_an_instance();
	start_with_history_size("5");
	for (int i = 1; i <= 12; i++) {
		publish("r", i);
		publish("other", i);
	}
	ops->room_join(state, "r", "alice");
	ops->room_join(state, "r", "bob");
	ops->room_join(state, "third", "carol");
	ops->user_online(state, "alice");
	ops->user_online(state, "bob");
	ck_assert(!HEAP_COUNTED || heap_blocks() > before);
	plugin->destroy(state);
	state = NULL;
	ck_assert_int_eq(heap_blocks(), before);
}
END_TEST

START_TEST(test_a_room_gets_an_epoch_at_its_first_use_and_keeps_it)
{
	epoch_result a = room_epoch("r");
	ck_assert_msg(is_epoch(a.epoch), "epoch %s is not 16 hex digits", a.epoch);
	ck_assert_str_eq(room_epoch("r").epoch, a.epoch);
	ck_assert_str_ne(room_epoch("other").epoch, a.epoch);
	publish("r", 1);
	ck_assert_str_eq(fake.env[0].epoch, a.epoch);
	history_result h = history_at("r", NULL, false, 0, 50);
	ck_assert_str_eq(h.epoch, a.epoch);
	ck_assert_str_eq(h.msg_epoch[0], a.epoch);
}
END_TEST

START_TEST(test_history_with_the_rooms_epoch_is_plain_history)
{
	publish_eight_in_r();
	const char *e = fake.env[0].epoch;
	history_result r = history_at("r", e, true, 6, 50);
	assert_history(r, 7, 8, false);
	ck_assert_str_eq(r.epoch, e);
}
END_TEST

START_TEST(test_history_with_another_epoch_starts_at_the_oldest_kept_truncated)
{
	publish_eight_in_r();
	/* since 6 of another life of the room: everything kept (4..8, the
	 * fixture keeps 5), truncated */
	history_result r = history_at("r", "0123456789abcdef", true, 6, 50);
	assert_history(r, 4, 8, true);
	r = history_at("r", "0123456789abcdef", false, 0, 2);
	assert_history(r, 4, 5, true);
	/* an empty room: nothing, but truncated all the same */
	r = history_at("empty", "0123456789abcdef", true, 0, 50);
	assert_history(r, 1, 0, true);
	ck_assert(is_epoch(r.epoch));
}
END_TEST

/* ---- expiry: a real loop, room_ttl = 1 ---- */

static uv_loop_t ttl_loop;

static void expiry_setup(void)
{
	memset(&fake, 0, sizeof(fake));
	ck_assert_int_eq(uv_loop_init(&ttl_loop), 0);
	fake.loop = &ttl_loop;
	fake.room_ttl = "1";
	start_with_history_size("5");
}

static void expiry_teardown(void)
{
	embedded_teardown();
	/* destroy closed the sweep timer: run the loop until it is gone */
	uv_run(&ttl_loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&ttl_loop), 0);
}

/* Lets `ms` of loop time pass, running what falls due (the sweep). */
static void pass_ms(uint64_t ms)
{
	uint64_t until = uv_now(&ttl_loop) + ms;
	while (uv_now(&ttl_loop) < until) {
		uv_sleep(50);
		uv_update_time(&ttl_loop);
		uv_run(&ttl_loop, UV_RUN_NOWAIT);
	}
}

START_TEST(test_a_room_unused_for_room_ttl_starts_again_at_seq_1_with_a_new_epoch)
{
	char e1[40];
	ck_assert_uint_eq(publish("r", 1), 1);
	ck_assert_uint_eq(publish("r", 2), 2);
	snprintf(e1, sizeof(e1), "%s", fake.env[1].epoch);
	pass_ms(1300);
	history_result h = history_at("r", e1, true, 2, 50);
	assert_history(h, 1, 0, true);
	ck_assert(is_epoch(h.epoch));
	ck_assert_str_ne(h.epoch, e1);
	ck_assert_uint_eq(publish("r", 1), 1);
	ck_assert_str_eq(fake.env[2].epoch, h.epoch);
}
END_TEST

START_TEST(test_activity_within_room_ttl_keeps_the_room)
{
	publish("r", 1);
	char e1[40];
	snprintf(e1, sizeof(e1), "%s", fake.env[0].epoch);
	for (int i = 0; i < 3; i++) {
		pass_ms(600);
		ck_assert_str_eq(room_epoch("r").epoch, e1);   /* a join: activity */
	}
	ck_assert_uint_eq(publish("r", 2), 2);
}
END_TEST

START_TEST(test_expiry_keeps_presence_and_forgets_only_the_record)
{
	ck_assert_int_eq(ops->room_join(state, "r", "alice"), 0);
	publish("r", 1);
	pass_ms(1300);
	presence_result p = { 0 };
	ck_assert_int_eq(ops->presence(state, "r", on_presence, &p), 0);
	ck_assert_uint_eq(p.n, 1);
	ck_assert_str_eq(p.users[0], "alice");
	ck_assert_uint_eq(publish("r", 1), 1);
	/* and once alice leaves and the ttl passes, everything goes (ASan
	 * would report what did not) */
	ck_assert_int_eq(ops->room_leave(state, "r", "alice"), 0);
	pass_ms(1300);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(ops->presence(state, "r", on_presence, &p), 0);
	ck_assert_uint_eq(p.n, 0);
}
END_TEST

START_TEST(test_thousands_of_rooms_expire_together)
{
	char name[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "room-%d", i);
		publish(name, 1);
		if (i % 2 == 0) {
			ck_assert_int_eq(ops->room_join(state, name, "alice"), 0);
			ck_assert_int_eq(ops->room_leave(state, name, "alice"), 0);
		}
		fake.n_env = 0;   /* the envelopes are not what this is about */
	}
	pass_ms(2200);
	for (int i = 0; i < 3000; i += 7) {
		snprintf(name, sizeof(name), "room-%d", i);
		ck_assert_uint_eq(publish(name, 1), 1);
		fake.n_env = 0;
	}
}
END_TEST

START_TEST(test_embedded_destroy_right_after_init_is_clean)
{
	long before = heap_without_an_instance();
	void *fresh = NULL;
	ck_assert_int_eq(plugin->init(CTX, &fake_host, &fresh), 0);
	ck_assert_ptr_nonnull(fresh);
	plugin->destroy(fresh);
	ck_assert_int_eq(heap_blocks(), before);
}
END_TEST

static Suite *rooms_suite(void)
{
	Suite *s = suite_create("rooms");
	TCase *tc = tcase_create("membership");
	tcase_add_checked_fixture(tc, rooms_setup, rooms_teardown);
	tcase_add_test(tc, test_first_join_of_a_user_is_changed_and_user_first);
	tcase_add_test(tc, test_joining_again_with_the_same_session_changes_nothing);
	tcase_add_test(tc, test_second_session_of_the_same_user_is_changed_only);
	tcase_add_test(tc, test_a_user_is_first_in_each_room_separately);
	tcase_add_test(tc, test_leave_is_user_last_only_when_the_last_session_leaves);
	tcase_add_test(tc, test_leaving_a_room_not_joined_changes_nothing);
	tcase_add_test(tc, test_is_member_answers_per_room_and_session);
	tcase_add_test(tc, test_members_maps_each_session_to_its_member_pointer);
	tcase_add_test(tc, test_room_disappears_when_its_last_member_leaves);
	tcase_add_test(tc, test_thousand_sessions_over_hundred_rooms_then_all_leave);
	tcase_add_test(tc, test_rooms_still_joined_are_freed_with_the_table);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *dict_suite(void)
{
	Suite *s = suite_create("dict");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, test_dict_set_get_has_count);
	tcase_add_test(tc, test_dict_null_value_is_still_present);
	tcase_add_test(tc, test_dict_set_replaces_the_value_of_an_existing_key);
	tcase_add_test(tc, test_dict_remove_returns_the_value_and_forgets_the_key);
	tcase_add_test(tc, test_dict_copies_its_keys);
	tcase_add_test(tc, test_dict_grows_past_ten_thousand_keys);
	tcase_add_test(tc, test_dict_iteration_visits_each_key_once);
	tcase_add_test(tc, test_dict_iteration_of_an_empty_table_visits_nothing);
	tcase_add_test(tc, test_dict_free_hands_every_value_to_the_free_function);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *embedded_suite(void)
{
	Suite *s = suite_create("embedded");
	TCase *tc = tcase_create("backplane");
	tcase_add_checked_fixture(tc, embedded_setup, embedded_teardown);
	tcase_add_test(tc, test_embedded_start_reports_health_up);
	tcase_add_test(tc, test_published_messages_get_seq_1_to_8_delivered_in_order);
	tcase_add_test(tc, test_each_room_counts_its_own_seq);
	tcase_add_test(tc, test_history_without_since_gives_the_last_limit_messages);
	tcase_add_test(tc, test_history_without_since_beyond_what_is_kept_is_truncated);
	tcase_add_test(tc, test_history_since_0_after_old_messages_dropped_is_truncated);
	tcase_add_test(tc, test_history_since_gives_only_newer_messages);
	tcase_add_test(tc, test_history_since_the_last_seq_is_empty);
	tcase_add_test(tc, test_history_of_an_unknown_room_is_empty);
	tcase_add_test(tc, test_history_before_the_ring_wraps_is_whole);
	tcase_add_test(tc, test_history_and_seq_survive_everyone_leaving);
	tcase_add_test(tc, test_presence_lists_users_sorted_and_announces_each_join);
	tcase_add_test(tc, test_presence_of_an_unknown_or_empty_room_is_an_empty_list);
	tcase_add_test(tc, test_joining_again_as_the_same_user_announces_nothing);
	tcase_add_test(tc, test_room_leave_announces_member_leave);
	tcase_add_test(tc, test_direct_to_a_user_not_online_is_offline);
	tcase_add_test(tc, test_direct_to_an_online_user_is_delivered);
	tcase_add_test(tc, test_direct_after_user_offline_is_offline_again);
	tcase_add_test(tc, test_history_size_0_keeps_nothing_and_says_truncated);
	tcase_add_test(tc, test_destroy_frees_rooms_history_presence_and_users);
	tcase_add_test(tc, test_embedded_destroy_right_after_init_is_clean);
	tcase_add_test(tc, test_a_room_gets_an_epoch_at_its_first_use_and_keeps_it);
	tcase_add_test(tc, test_history_with_the_rooms_epoch_is_plain_history);
	tcase_add_test(tc, test_history_with_another_epoch_starts_at_the_oldest_kept_truncated);
	suite_add_tcase(s, tc);

	tc = tcase_create("expiry");
	tcase_add_checked_fixture(tc, expiry_setup, expiry_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_a_room_unused_for_room_ttl_starts_again_at_seq_1_with_a_new_epoch);
	tcase_add_test(tc, test_activity_within_room_ttl_keeps_the_room);
	tcase_add_test(tc, test_expiry_keeps_presence_and_forgets_only_the_record);
	tcase_add_test(tc, test_thousands_of_rooms_expire_together);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rooms_suite());
	srunner_add_suite(sr, dict_suite());
	srunner_add_suite(sr, embedded_suite());
	srunner_run_all(sr, CK_VERBOSE);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
