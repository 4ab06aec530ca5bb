/* Unit tests for plugins/redislink/rslot: the Redis Cluster
 * specification's CRC16 and hash-tag vectors, the slot map as parsed from
 * CLUSTER SHARDS and CLUSTER SLOTS replies, and MOVED/ASK errors.
 *
 * The replies are RESP text fed through hiredis's reader, so the trees
 * are shaped exactly as a real server's would be.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rslot.h"

/* ---- RESP text ------------------------------------------------------------- */

typedef struct text {
	char buf[16384];
	size_t len;
} text;

__attribute__((format(printf, 2, 3)))
static void put(text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
	va_end(ap);
	ck_assert(n >= 0 && (size_t)n < sizeof(t->buf) - t->len);
	t->len += (size_t)n;
}

static void bulk(text *t, const char *s)
{
	put(t, "$%zu\r\n%s\r\n", strlen(s), s);
}

/* One CLUSTER SHARDS node, as Redis 7.0 sends it (8 fields). */
static void shard_node(text *t, const char *id, int port, const char *ip, const char *endpoint,
		       const char *role, const char *health)
{
	put(t, "*16\r\n");
	bulk(t, "id");
	bulk(t, id);
	bulk(t, "port");
	put(t, ":%d\r\n", port);
	bulk(t, "ip");
	bulk(t, ip);
	bulk(t, "endpoint");
	bulk(t, endpoint);
	bulk(t, "role");
	bulk(t, role);
	bulk(t, "replication-offset");
	put(t, ":%d\r\n", 1234);
	bulk(t, "health");
	bulk(t, health);
	bulk(t, "hostname");
	bulk(t, "");
}

/* The head of a shard: its slot ranges (n_ranges pairs), then "nodes"
 * with n_nodes to follow. */
static void shard_head(text *t, int n_ranges, const int *ranges, int n_nodes)
{
	put(t, "*4\r\n");
	bulk(t, "slots");
	put(t, "*%d\r\n", 2 * n_ranges);
	for (int i = 0; i < 2 * n_ranges; i++)
		put(t, ":%d\r\n", ranges[i]);
	bulk(t, "nodes");
	put(t, "*%d\r\n", n_nodes);
}

static redisReply *parse_resp(const text *t)
{
	redisReader *r = redisReaderCreate();
	void *reply = NULL;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(redisReaderFeed(r, t->buf, t->len), REDIS_OK);
	ck_assert_int_eq(redisReaderGetReply(r, &reply), REDIS_OK);
	ck_assert_ptr_nonnull(reply);
	redisReaderFree(r);
	return reply;
}

/* A three-master cluster as `redis-cli --cluster create` makes it, one
 * replica each. */
static redisReply *three_shards(void)
{
	static const int a[] = {0, 5460}, b[] = {5461, 10922}, c[] = {10923, 16383};
	text t = {.len = 0};

	put(&t, "*3\r\n");
	shard_head(&t, 1, a, 2);
	shard_node(&t, "aaaa", 7000, "127.0.0.1", "127.0.0.1", "master", "online");
	shard_node(&t, "dddd", 7003, "127.0.0.1", "127.0.0.1", "replica", "online");
	shard_head(&t, 1, b, 2);
	shard_node(&t, "dddx", 7004, "127.0.0.1", "127.0.0.1", "replica", "online");
	shard_node(&t, "bbbb", 7001, "127.0.0.1", "127.0.0.1", "master", "online");
	shard_head(&t, 1, c, 2);
	shard_node(&t, "cccc", 7002, "10.0.0.3", "redis-3.internal", "master", "online");
	shard_node(&t, "dddy", 7005, "127.0.0.1", "127.0.0.1", "replica", "loading");
	return parse_resp(&t);
}

/* ---- slots ------------------------------------------------------------------ */

START_TEST(crc16_of_the_spec_vector)
{
	ck_assert_uint_eq(rslot_crc16("123456789", 9), 0x31C3);
	ck_assert_uint_eq(rslot_crc16("", 0), 0);
}
END_TEST

START_TEST(slots_of_plain_keys)
{
	ck_assert_uint_eq(rslot_of("foo", 3), 12182);
	ck_assert_uint_eq(rslot_of("bar", 3), 5061);
}
END_TEST

START_TEST(keys_with_one_tag_share_its_slot)
{
	const char *a = "{user1000}.following", *b = "{user1000}.followers";

	ck_assert_uint_eq(rslot_of(a, strlen(a)), rslot_of(b, strlen(b)));
	ck_assert_uint_eq(rslot_of(a, strlen(a)), rslot_of("user1000", 8));
	ck_assert_uint_ne(rslot_of(a, strlen(a)), rslot_crc16(a, strlen(a)) % RSLOT_COUNT);
}
END_TEST

START_TEST(tags_follow_the_first_brace)
{
	/* An empty tag means no tag: the whole key. */
	ck_assert_uint_eq(rslot_of("foo{}{bar}", 10), rslot_crc16("foo{}{bar}", 10) % RSLOT_COUNT);
	/* From the first '{' to the first '}' after it. */
	ck_assert_uint_eq(rslot_of("foo{{bar}}zap", 13), rslot_crc16("{bar", 4) % RSLOT_COUNT);
	ck_assert_uint_eq(rslot_of("foo{bar}{zap}", 13), rslot_crc16("bar", 3) % RSLOT_COUNT);
	/* No closing brace: no tag. */
	ck_assert_uint_eq(rslot_of("foo{bar", 7), rslot_crc16("foo{bar", 7) % RSLOT_COUNT);
	/* The length given counts, not a NUL: "{a}" cut before its '}'. */
	ck_assert_uint_eq(rslot_of("{a}", 2), rslot_crc16("{a", 2) % RSLOT_COUNT);
}
END_TEST

/* ---- CLUSTER SHARDS --------------------------------------------------------------- */

START_TEST(shards_of_a_full_cluster)
{
	redisReply *r = three_shards();
	rslot_map m;
	char why[128] = "";

	rslot_map_init(&m);
	ck_assert_uint_eq(m.uncovered, RSLOT_COUNT);
	ck_assert_int_eq(rslot_parse_shards(&m, r, "seed.example", why, sizeof(why)), 0);
	ck_assert_uint_eq(m.n_masters, 3);
	ck_assert_uint_eq(m.uncovered, 0);
	ck_assert_int_eq(m.owner[0], 0);
	ck_assert_int_eq(m.owner[5460], 0);
	ck_assert_int_eq(m.owner[5461], 1);
	ck_assert_int_eq(m.owner[10922], 1);
	ck_assert_int_eq(m.owner[10923], 2);
	ck_assert_int_eq(m.owner[16383], 2);
	ck_assert_str_eq(m.masters[0].host, "127.0.0.1");
	ck_assert_int_eq(m.masters[0].port, 7000);
	ck_assert_str_eq(m.masters[0].id, "aaaa");
	ck_assert_uint_eq(m.masters[0].replicas, 1);
	/* The master is found by role, not by place. */
	ck_assert_int_eq(m.masters[1].port, 7001);
	ck_assert_str_eq(m.masters[1].id, "bbbb");
	/* The endpoint, not the ip. */
	ck_assert_str_eq(m.masters[2].host, "redis-3.internal");
	ck_assert_uint_eq(m.masters[2].replicas, 1);
	rslot_map_clear(&m);
	ck_assert_uint_eq(m.n_masters, 0);
	ck_assert_uint_eq(m.uncovered, RSLOT_COUNT);
	ck_assert_int_eq(m.owner[100], -1);
	freeReplyObject(r);
}
END_TEST

START_TEST(shards_with_uncovered_slots_and_split_ranges)
{
	static const int a[] = {0, 99, 200, 299}, b[] = {1000, 1000};
	text t = {.len = 0};
	redisReply *r;
	rslot_map m;
	char why[128] = "";

	put(&t, "*3\r\n");
	shard_head(&t, 2, a, 1);
	shard_node(&t, "aaaa", 7000, "127.0.0.1", "127.0.0.1", "master", "online");
	shard_head(&t, 1, b, 1);
	shard_node(&t, "bbbb", 7001, "127.0.0.1", "127.0.0.1", "master", "online");
	/* A shard with no slots (a new, empty master) serves nothing. */
	shard_head(&t, 0, NULL, 1);
	shard_node(&t, "cccc", 7002, "127.0.0.1", "127.0.0.1", "master", "online");
	r = parse_resp(&t);
	rslot_map_init(&m);
	ck_assert_int_eq(rslot_parse_shards(&m, r, "seed", why, sizeof(why)), 0);
	ck_assert_uint_eq(m.uncovered, RSLOT_COUNT - 201);
	ck_assert_int_eq(m.owner[99], 0);
	ck_assert_int_eq(m.owner[100], -1);
	ck_assert_int_eq(m.owner[250], 0);
	ck_assert_int_eq(m.owner[1000], 1);
	ck_assert_int_eq(m.owner[1001], -1);
	ck_assert_uint_eq(m.n_masters, 2);
	rslot_map_clear(&m);
	freeReplyObject(r);
}
END_TEST

START_TEST(shards_with_a_failed_master)
{
	static const int a[] = {0, 8191}, b[] = {8192, 16383};
	text t = {.len = 0};
	redisReply *r;
	rslot_map m;
	char why[128] = "";

	put(&t, "*2\r\n");
	/* The old master failed and its replica was promoted: the online
	 * master serves. */
	shard_head(&t, 1, a, 2);
	shard_node(&t, "old0", 7000, "127.0.0.1", "127.0.0.1", "master", "failed");
	shard_node(&t, "new0", 7003, "127.0.0.1", "127.0.0.1", "master", "online");
	/* Only replicas left: nobody serves these slots. */
	shard_head(&t, 1, b, 1);
	shard_node(&t, "rep1", 7004, "127.0.0.1", "127.0.0.1", "replica", "online");
	r = parse_resp(&t);
	rslot_map_init(&m);
	ck_assert_int_eq(rslot_parse_shards(&m, r, "seed", why, sizeof(why)), 0);
	ck_assert_uint_eq(m.n_masters, 1);
	ck_assert_int_eq(m.masters[0].port, 7003);
	ck_assert_str_eq(m.masters[0].id, "new0");
	ck_assert_int_eq(m.owner[0], 0);
	ck_assert_int_eq(m.owner[8192], -1);
	ck_assert_uint_eq(m.uncovered, 8192);
	rslot_map_clear(&m);
	freeReplyObject(r);
}
END_TEST

START_TEST(shards_with_no_endpoint_use_ip_then_seed)
{
	static const int a[] = {0, 8191}, b[] = {8192, 16383};
	text t = {.len = 0};
	redisReply *r;
	rslot_map m;
	char why[128] = "";

	put(&t, "*2\r\n");
	shard_head(&t, 1, a, 1);
	shard_node(&t, "aaaa", 7000, "10.1.2.3", "", "master", "online");
	shard_head(&t, 1, b, 1);
	shard_node(&t, "bbbb", 7001, "", "?", "master", "online");
	r = parse_resp(&t);
	rslot_map_init(&m);
	ck_assert_int_eq(rslot_parse_shards(&m, r, "seed.example", why, sizeof(why)), 0);
	ck_assert_str_eq(m.masters[0].host, "10.1.2.3");
	ck_assert_str_eq(m.masters[1].host, "seed.example");
	ck_assert_int_eq(m.masters[1].port, 7001);
	rslot_map_clear(&m);
	freeReplyObject(r);
}
END_TEST

/* A node of a cluster with tls-cluster yes lists "tls-port", and a
 * TLS-only node (port 0) no "port" at all: a TLS client (map.tls) takes
 * the TLS port, a plain one cannot use such a node. */
START_TEST(shards_of_a_tls_cluster_name_the_tls_ports)
{
	static const int a[] = {0, 16383};
	text t = {.len = 0};
	redisReply *r;
	rslot_map m;
	char why[128] = "";

	put(&t, "*1\r\n");
	shard_head(&t, 1, a, 1);
	put(&t, "*10\r\n");
	bulk(&t, "id");
	bulk(&t, "aaaa");
	bulk(&t, "tls-port");
	put(&t, ":%d\r\n", 7100);
	bulk(&t, "ip");
	bulk(&t, "127.0.0.1");
	bulk(&t, "role");
	bulk(&t, "master");
	bulk(&t, "health");
	bulk(&t, "online");
	r = parse_resp(&t);
	rslot_map_init(&m);
	ck_assert_int_eq(rslot_parse_shards(&m, r, "seed", why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "no valid port"));
	m.tls = true;
	ck_assert_int_eq(rslot_parse_shards(&m, r, "seed", why, sizeof(why)), 0);
	ck_assert_int_eq(m.masters[0].port, 7100);
	ck_assert(m.tls);  /* kept by the parse, for the next one */
	rslot_map_clear(&m);
	freeReplyObject(r);
}
END_TEST

START_TEST(bad_shards_leave_the_map_as_it_was)
{
	static const int bad[] = {0, 16384};
	text t = {.len = 0};
	redisReply *r, *good = three_shards();
	rslot_map m;
	char why[128] = "";

	rslot_map_init(&m);
	ck_assert_int_eq(rslot_parse_shards(&m, good, "seed", why, sizeof(why)), 0);
	put(&t, "*1\r\n");
	shard_head(&t, 1, bad, 1);
	shard_node(&t, "aaaa", 7000, "127.0.0.1", "127.0.0.1", "master", "online");
	r = parse_resp(&t);
	ck_assert_int_eq(rslot_parse_shards(&m, r, "seed", why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "slot range"));
	ck_assert_uint_eq(m.n_masters, 3);
	ck_assert_uint_eq(m.uncovered, 0);
	freeReplyObject(r);

	/* The seed's own refusal is the reason. */
	t.len = 0;
	put(&t, "-ERR This instance has cluster support disabled\r\n");
	r = parse_resp(&t);
	ck_assert_int_eq(rslot_parse_shards(&m, r, "seed", why, sizeof(why)), -1);
	ck_assert_str_eq(why, "ERR This instance has cluster support disabled");
	freeReplyObject(r);

	t.len = 0;
	put(&t, ":5\r\n");
	r = parse_resp(&t);
	ck_assert_int_eq(rslot_parse_shards(&m, r, "seed", why, sizeof(why)), -1);
	ck_assert_int_eq(rslot_parse_shards(&m, NULL, "seed", why, sizeof(why)), -1);
	freeReplyObject(r);

	/* A shard that is not a map. */
	t.len = 0;
	put(&t, "*1\r\n*1\r\n:7\r\n");
	r = parse_resp(&t);
	ck_assert_int_eq(rslot_parse_shards(&m, r, "seed", why, sizeof(why)), -1);
	ck_assert_uint_eq(m.n_masters, 3);
	freeReplyObject(r);

	rslot_map_clear(&m);
	freeReplyObject(good);
}
END_TEST

/* ---- CLUSTER SLOTS ------------------------------------------------------------------ */

START_TEST(slots_reply_with_a_master_twice_and_an_empty_ip)
{
	text t = {.len = 0};
	redisReply *r;
	rslot_map m;
	char why[128] = "";

	put(&t, "*3\r\n");
	put(&t, "*4\r\n:0\r\n:5460\r\n");
	put(&t, "*3\r\n");
	bulk(&t, "127.0.0.1");
	put(&t, ":7000\r\n");
	bulk(&t, "aaaa");
	put(&t, "*3\r\n");
	bulk(&t, "127.0.0.1");
	put(&t, ":7003\r\n");
	bulk(&t, "dddd");
	put(&t, "*3\r\n:5461\r\n:10922\r\n");
	put(&t, "*3\r\n");
	bulk(&t, "");
	put(&t, ":7001\r\n");
	bulk(&t, "bbbb");
	put(&t, "*3\r\n:10923\r\n:16383\r\n");
	put(&t, "*3\r\n");
	bulk(&t, "127.0.0.1");
	put(&t, ":7000\r\n");
	bulk(&t, "aaaa");
	r = parse_resp(&t);
	rslot_map_init(&m);
	ck_assert_int_eq(rslot_parse_slots(&m, r, "seed.example", why, sizeof(why)), 0);
	ck_assert_uint_eq(m.n_masters, 2);
	ck_assert_uint_eq(m.uncovered, 0);
	ck_assert_int_eq(m.owner[0], 0);
	ck_assert_int_eq(m.owner[16383], 0);
	ck_assert_int_eq(m.owner[6000], 1);
	ck_assert_str_eq(m.masters[0].id, "aaaa");
	ck_assert_uint_eq(m.masters[0].replicas, 1);
	ck_assert_str_eq(m.masters[1].host, "seed.example");
	ck_assert_int_eq(m.masters[1].port, 7001);
	ck_assert_uint_eq(m.masters[1].replicas, 0);
	freeReplyObject(r);

	/* A range without a master. */
	t.len = 0;
	put(&t, "*1\r\n*2\r\n:0\r\n:5\r\n");
	r = parse_resp(&t);
	ck_assert_int_eq(rslot_parse_slots(&m, r, "seed", why, sizeof(why)), -1);
	ck_assert_uint_eq(m.n_masters, 2);
	freeReplyObject(r);

	/* An empty cluster: every slot uncovered. */
	t.len = 0;
	put(&t, "*0\r\n");
	r = parse_resp(&t);
	ck_assert_int_eq(rslot_parse_slots(&m, r, "seed", why, sizeof(why)), 0);
	ck_assert_uint_eq(m.n_masters, 0);
	ck_assert_uint_eq(m.uncovered, RSLOT_COUNT);
	freeReplyObject(r);
	rslot_map_clear(&m);
}
END_TEST

/* ---- MOVED / ASK ------------------------------------------------------------------------ */

START_TEST(redirects)
{
	unsigned slot = 0;
	char host[64];
	int port = 0;

	ck_assert_int_eq(rslot_redirect("MOVED 3999 127.0.0.1:6381", &slot, host, sizeof(host), &port), 1);
	ck_assert_uint_eq(slot, 3999);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_int_eq(port, 6381);

	ck_assert_int_eq(rslot_redirect("ASK 16383 ::1:7000", &slot, host, sizeof(host), &port), 2);
	ck_assert_uint_eq(slot, 16383);
	ck_assert_str_eq(host, "::1");
	ck_assert_int_eq(port, 7000);

	ck_assert_int_eq(rslot_redirect("ASK 1 [fe80::1]:7001", &slot, host, sizeof(host), &port), 2);
	ck_assert_str_eq(host, "fe80::1");
	ck_assert_int_eq(port, 7001);

	ck_assert_int_eq(rslot_redirect("MOVED 0 redis-2.internal:7000", &slot, host, sizeof(host), &port), 1);
	ck_assert_uint_eq(slot, 0);
	ck_assert_str_eq(host, "redis-2.internal");

	/* No endpoint announced: the host stays empty. */
	ck_assert_int_eq(rslot_redirect("MOVED 12 :6381", &slot, host, sizeof(host), &port), 1);
	ck_assert_str_eq(host, "");
	ck_assert_int_eq(port, 6381);
}
END_TEST

START_TEST(not_redirects)
{
	unsigned slot = 77;
	char host[8] = "keep";
	int port = 99;

	ck_assert_int_eq(rslot_redirect("ERR unknown command", &slot, host, sizeof(host), &port), 0);
	ck_assert_int_eq(rslot_redirect("TRYAGAIN Multiple keys request during rehashing of slot",
					&slot, host, sizeof(host), &port), 0);
	ck_assert_int_eq(rslot_redirect("MOVED 16384 127.0.0.1:1", &slot, host, sizeof(host), &port), 0);
	ck_assert_int_eq(rslot_redirect("MOVED x 127.0.0.1:1", &slot, host, sizeof(host), &port), 0);
	ck_assert_int_eq(rslot_redirect("MOVED 1 127.0.0.1", &slot, host, sizeof(host), &port), 0);
	ck_assert_int_eq(rslot_redirect("MOVED 1 127.0.0.1:0", &slot, host, sizeof(host), &port), 0);
	ck_assert_int_eq(rslot_redirect("MOVED 1 127.0.0.1:65536", &slot, host, sizeof(host), &port), 0);
	ck_assert_int_eq(rslot_redirect("MOVED 1 127.0.0.1:", &slot, host, sizeof(host), &port), 0);
	ck_assert_int_eq(rslot_redirect("MOVED 1", &slot, host, sizeof(host), &port), 0);
	ck_assert_int_eq(rslot_redirect("MOVED", &slot, host, sizeof(host), &port), 0);
	ck_assert_int_eq(rslot_redirect(NULL, &slot, host, sizeof(host), &port), 0);
	/* A host longer than the buffer is refused, not cut. */
	ck_assert_int_eq(rslot_redirect("MOVED 1 a-long-name:7000", &slot, host, sizeof(host), &port), 0);
	ck_assert_uint_eq(slot, 77);
	ck_assert_str_eq(host, "keep");
	ck_assert_int_eq(port, 99);
}
END_TEST

static Suite *rslot_suite(void)
{
	Suite *s = suite_create("rslot");
	TCase *tc = tcase_create("key slots");
	tcase_add_test(tc, crc16_of_the_spec_vector);
	tcase_add_test(tc, slots_of_plain_keys);
	tcase_add_test(tc, keys_with_one_tag_share_its_slot);
	tcase_add_test(tc, tags_follow_the_first_brace);
	suite_add_tcase(s, tc);
	tc = tcase_create("slot map");
	tcase_add_test(tc, shards_of_a_full_cluster);
	tcase_add_test(tc, shards_with_uncovered_slots_and_split_ranges);
	tcase_add_test(tc, shards_with_a_failed_master);
	tcase_add_test(tc, shards_with_no_endpoint_use_ip_then_seed);
	tcase_add_test(tc, bad_shards_leave_the_map_as_it_was);
	tcase_add_test(tc, shards_of_a_tls_cluster_name_the_tls_ports);
	tcase_add_test(tc, slots_reply_with_a_master_twice_and_an_empty_ip);
	suite_add_tcase(s, tc);
	tc = tcase_create("redirects");
	tcase_add_test(tc, redirects);
	tcase_add_test(tc, not_redirects);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rslot_suite());
	srunner_run_all(sr, CK_VERBOSE);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
