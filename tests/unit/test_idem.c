/* Idempotent sends in the core (issue 15, item 4): core/idem.c, the table
 * of keys remembered for a window, and the embedded backplane's
 * publish_idem and direct_idem through a host of this file's own (no loop:
 * the backplane's clock stands still, so every key is within its window;
 * the window's end is tested on the table with an explicit clock).
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <confab/plugin.h>
#include <confab/util.h>

#include "embedded.h"
#include "idem.h"

/* ---- the table ---------------------------------------------------------- */

START_TEST(test_a_key_is_remembered_for_the_window_then_forgotten)
{
	idem_table *t = idem_new(1000);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_null(idem_find(t, "k", 0));
	ck_assert_int_eq(idem_put(t, "k", 7, "n.x.m7", 1234, 100), 0);
	const idem_answer *a = idem_find(t, "k", 1099);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->seq, 7);
	ck_assert_str_eq(a->id, "n.x.m7");
	ck_assert_int_eq(a->ts, 1234);
	ck_assert_ptr_null(idem_find(t, "k", 1100));   /* put at 100, window 1000 */
	ck_assert_uint_eq(idem_count(t), 0);
	idem_free(t);
}
END_TEST

START_TEST(test_keys_expire_in_order_and_others_stay)
{
	idem_table *t = idem_new(10);
	for (int i = 0; i < 100; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert_int_eq(idem_put(t, key, (uint64_t)i, key, i, (uint64_t)i), 0);
	}
	ck_assert_uint_eq(idem_count(t), 10);   /* each put dropped what had expired */
	ck_assert_ptr_null(idem_find(t, "k89", 99));
	ck_assert_ptr_nonnull(idem_find(t, "k90", 99));
	ck_assert_ptr_nonnull(idem_find(t, "k99", 99));
	ck_assert_ptr_null(idem_find(t, "k99", 109));
	idem_free(t);
}
END_TEST

/* ---- the embedded backplane --------------------------------------------- */

static int delivered;
static int last_status;
static uint64_t last_seq;
static char last_id[96];
static int64_t last_ts;

static void host_log(confab_ctx *ctx, confab_log_level level, const char *fmt, ...)
{
	(void)ctx;
	(void)level;
	(void)fmt;
}

static const char *host_broker_get(confab_ctx *ctx, const char *key)
{
	(void)ctx;
	if (strcmp(key, "history_size") == 0)
		return "10";
	if (strcmp(key, "idem_window") == 0)
		return "120";
	return NULL;
}

static int host_broker_uint(confab_ctx *ctx, const char *key, uint64_t *out)
{
	const char *v = strcmp(key, "room_ttl") == 0 ? "0" : host_broker_get(ctx, key);
	return v != NULL && confab_parse_uint(v, 0, UINT64_MAX, out) ? 0 : CONFAB_EINVAL;
}

static void host_deliver(confab_ctx *ctx, const confab_envelope *env)
{
	(void)ctx;
	(void)env;
	delivered++;
}

static void host_health(confab_ctx *ctx, bool up, const char *reason)
{
	(void)ctx;
	(void)up;
	(void)reason;
}

static const confab_host_backplane host_bp = {
	.size = sizeof(confab_host_backplane),
	.deliver = host_deliver,
	.health = host_health,
};

static const confab_host host = {
	.size = sizeof(confab_host),
	.abi_major = CONFAB_ABI_MAJOR,
	.abi_minor = CONFAB_ABI_MINOR,
	.log = host_log,
	.broker_get = host_broker_get,
	.broker_uint = host_broker_uint,
	.backplane = &host_bp,
};

static void sent(void *arg, int status, uint64_t seq, const char *id, int64_t ts)
{
	(void)arg;
	last_status = status;
	last_seq = seq;
	snprintf(last_id, sizeof(last_id), "%s", id);
	last_ts = ts;
}

static void *bp;
static const confab_backplane_ops *ops;

static void setup(void)
{
	const confab_plugin *d = embedded_backplane();
	ops = d->backplane;
	ck_assert_int_eq(d->init(NULL, &host, &bp), 0);
	ck_assert_int_eq(d->start(bp), 0);
	delivered = 0;
}

static void teardown(void)
{
	embedded_backplane()->destroy(bp);
}

static void publish(const char *room, const char *from, const char *id, int64_t ts,
		    const char *idem)
{
	confab_envelope env = {
		.size = sizeof(env), .kind = CONFAB_ENV_MESSAGE, .room = room, .from = from,
		.id = id, .origin = "s1", .body = "1", .body_len = 1, .ts = ts, .idem = idem,
	};
	ck_assert_int_eq(ops->publish_idem(bp, &env, sent, NULL), 0);
	ck_assert_int_eq(last_status, 0);
}

START_TEST(test_embedded_a_repeat_gets_the_first_answer_and_delivers_nothing)
{
	ck_assert(CONFAB_HAS(ops, direct_idem) && ops->publish_idem && ops->direct_idem);
	publish("r", "u", "id1", 111, "key");
	ck_assert_uint_eq(last_seq, 1);
	ck_assert_int_eq(delivered, 1);
	publish("r", "u", "id2", 222, "key");
	ck_assert_uint_eq(last_seq, 1);
	ck_assert_str_eq(last_id, "id1");
	ck_assert_int_eq(last_ts, 111);
	ck_assert_int_eq(delivered, 1);
}
END_TEST

START_TEST(test_embedded_the_key_is_scoped_by_room_and_sender)
{
	publish("r", "u", "id1", 1, "key");
	publish("r", "v", "id2", 2, "key");      /* another sender */
	ck_assert_str_eq(last_id, "id2");
	publish("q", "u", "id3", 3, "key");      /* another room */
	ck_assert_str_eq(last_id, "id3");
	publish("r", "u", "id4", 4, "other");    /* another key */
	ck_assert_str_eq(last_id, "id4");
	ck_assert_uint_eq(last_seq, 3);
	publish("r", "u", "id5", 5, NULL);       /* no key: always new */
	publish("r", "u", "id6", 6, NULL);
	ck_assert_uint_eq(last_seq, 5);
	ck_assert_int_eq(delivered, 6);
}
END_TEST

START_TEST(test_embedded_direct_repeat_and_offline)
{
	confab_envelope env = {
		.size = sizeof(env), .kind = CONFAB_ENV_DIRECT, .from = "u", .to = "v",
		.id = "d1", .origin = "s1", .body = "1", .body_len = 1, .ts = 9, .idem = "k",
	};
	ck_assert_int_eq(ops->direct_idem(bp, &env, sent, NULL), 0);
	ck_assert_int_eq(last_status, CONFAB_EOFFLINE);   /* not remembered */
	ck_assert_int_eq(ops->user_online(bp, "v"), 0);
	env.id = "d2";
	ck_assert_int_eq(ops->direct_idem(bp, &env, sent, NULL), 0);
	ck_assert_int_eq(last_status, 0);
	ck_assert_str_eq(last_id, "d2");
	env.id = "d3";
	ck_assert_int_eq(ops->direct_idem(bp, &env, sent, NULL), 0);
	ck_assert_int_eq(last_status, 0);
	ck_assert_str_eq(last_id, "d2");
	ck_assert_int_eq(delivered, 1);
}
END_TEST

static Suite *idem_suite(void)
{
	Suite *s = suite_create("idem");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, test_a_key_is_remembered_for_the_window_then_forgotten);
	tcase_add_test(tc, test_keys_expire_in_order_and_others_stay);
	suite_add_tcase(s, tc);
	tc = tcase_create("embedded");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_embedded_a_repeat_gets_the_first_answer_and_delivers_nothing);
	tcase_add_test(tc, test_embedded_the_key_is_scoped_by_room_and_sender);
	tcase_add_test(tc, test_embedded_direct_repeat_and_offline);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(idem_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
