/* Unit tests for plugins/redislink/rwire: the text of what the Redis
 * backplanes store and publish. Every kind of envelope is written the way
 * a node writes it (for a room message, with the seq and the epoch
 * spliced in as the publish script does), parsed back and compared field
 * by field; then malformed and truncated texts must be refused with a
 * reason, never half-parsed.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <confab/util.h>

#include "rwire.h"

/* ---- building texts as the nodes and the scripts do ------------------------ */

/* The text the publish script stores for a room message: head_a, the seq,
 * the epoch on a life's first message, head_b, "\n", the body. */
static char *room_text(const confab_envelope *env, uint64_t seq, const char *epoch, size_t *len)
{
	char *head_a, *head_b, *text;
	char tag[64] = "";
	size_t n;

	ck_assert_int_eq(wire_message_head(env, &head_a, &head_b), 0);
	if (epoch != NULL)
		snprintf(tag, sizeof(tag), ",\"epoch\":\"%s\"", epoch);
	n = strlen(head_a) + 24 + strlen(tag) + strlen(head_b) + 1 + env->body_len;
	text = malloc(n + 1);
	ck_assert_ptr_nonnull(text);
	n = (size_t)sprintf(text, "%s%" PRIu64 "%s%s\n", head_a, seq, tag, head_b);
	memcpy(text + n, env->body, env->body_len);
	*len = n + env->body_len;
	free(head_a);
	free(head_b);
	return text;
}

static confab_envelope message(const char *room, const char *from, const char *id,
			       const char *origin, int64_t ts, const char *body, size_t body_len)
{
	return (confab_envelope){ .size = sizeof(confab_envelope), .kind = CONFAB_ENV_MESSAGE,
				  .room = room, .from = from, .id = id, .origin = origin,
				  .ts = ts, .body = body, .body_len = body_len };
}

static confab_envelope direct(const char *from, const char *to, const char *id,
			      const char *origin, int64_t ts, const char *body, size_t body_len)
{
	return (confab_envelope){ .size = sizeof(confab_envelope), .kind = CONFAB_ENV_DIRECT,
				  .from = from, .to = to, .id = id, .origin = origin, .ts = ts,
				  .body = body, .body_len = body_len };
}

/* Parses `len` bytes, which must be accepted. */
static void parse_ok(const char *text, size_t len, wire_msg *m)
{
	const char *why = NULL;
	int rc = wire_parse(text, len, m, &why);

	ck_assert_msg(rc == 0, "refused (%s): %.*s", why ? why : "?", (int)len, text);
	ck_assert_ptr_nonnull(m->hdr);
	ck_assert_uint_eq(m->env.size, sizeof(confab_envelope));
}

/* Parses `len` bytes, which must be refused with a reason and nothing kept. */
static void parse_bad(const char *text, size_t len, const char *why_part)
{
	wire_msg m;
	const char *why = NULL;
	int rc = wire_parse(text, len, &m, &why);

	ck_assert_msg(rc == CONFAB_EINVAL, "accepted: %.*s", (int)len, text);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_null(m.hdr);
	if (why_part != NULL)
		ck_assert_msg(strstr(why, why_part) != NULL, "'%s' for %.*s, not '%s'", why,
			      (int)len, text, why_part);
}

static void parse_bad_s(const char *text, const char *why_part)
{
	parse_bad(text, strlen(text), why_part);
}

static void assert_body(const confab_envelope *env, const char *body, size_t len)
{
	ck_assert_uint_eq(env->body_len, len);
	ck_assert(len == 0 || memcmp(env->body, body, len) == 0);
}

/* Two strings equal, or both NULL. */
static void assert_same_text(const char *got, const char *want, const char *field)
{
	if (want == NULL)
		ck_assert_msg(got == NULL, "%s: '%s', not none", field, got);
	else
		ck_assert_msg(got != NULL && strcmp(got, want) == 0, "%s: '%s', not '%s'", field,
			      got ? got : "(none)", want);
}

/* What was parsed is `want`, field by field (a delivered envelope never
 * has an idempotency key). */
static void assert_envelope(const confab_envelope *got, const confab_envelope *want)
{
	ck_assert_uint_eq(got->size, sizeof(confab_envelope));
	ck_assert_uint_eq(got->kind, want->kind);
	assert_same_text(got->room, want->room, "room");
	assert_same_text(got->from, want->from, "from");
	assert_same_text(got->to, want->to, "to");
	assert_same_text(got->id, want->id, "id");
	assert_same_text(got->origin, want->origin, "origin");
	assert_same_text(got->epoch, want->epoch, "epoch");
	ck_assert_ptr_null(got->idem);
	ck_assert_uint_eq(got->seq, want->seq);
	ck_assert_int_eq(got->ts, want->ts);
	if (want->body == NULL)
		ck_assert_ptr_null(got->body);
	else
		assert_body(got, want->body, want->body_len);
}

/* ---- round trips ------------------------------------------------------------ */

/* A room message written as the publish script stores it (with `seq`,
 * and `epoch` when not NULL) comes back as it was, seq and epoch added. */
static void room_round_trip(const confab_envelope *env, uint64_t seq, const char *epoch)
{
	confab_envelope want = *env;
	size_t len;
	char *text = room_text(env, seq, epoch, &len);
	wire_msg m;

	parse_ok(text, len, &m);
	ck_assert_int_eq(m.kind, 'm');
	want.seq = seq;
	want.epoch = epoch;
	want.idem = NULL;
	assert_envelope(&m.env, &want);
	wire_msg_clear(&m);
	ck_assert_ptr_null(m.hdr);
	free(text);
}

/* A direct message's text comes back as it was. */
static void direct_round_trip(const confab_envelope *env)
{
	size_t len = 0;
	char *text = wire_direct(env, &len);
	wire_msg m;

	ck_assert_ptr_nonnull(text);
	/* the body ends the text, byte for byte, after the header's "\n" */
	ck_assert_uint_gt(len, env->body_len);
	ck_assert_int_eq(text[len - env->body_len - 1], '\n');
	ck_assert(env->body_len == 0 ||
		  memcmp(text + len - env->body_len, env->body, env->body_len) == 0);
	parse_ok(text, len, &m);
	ck_assert_int_eq(m.kind, 'd');
	assert_envelope(&m.env, env);
	wire_msg_clear(&m);
	free(text);
}

START_TEST(room_message_round_trip_with_seq_ts_and_origin)
{
	static const char body[] = "{\"text\":\"hi\"}";
	confab_envelope env = message("lobby", "alice", "m-1", "s-7", 1700000000123LL, body,
				      sizeof(body) - 1);

	/* A publish may carry an idempotency key: it is a script argument,
	 * never part of the text, and a delivered envelope has none. */
	env.idem = "key-1";
	room_round_trip(&env, 42, NULL);
}
END_TEST

START_TEST(first_message_of_a_life_carries_the_epoch)
{
	/* No origin (a message from another node's API): none comes back,
	 * not an empty one. */
	confab_envelope env = message("r", "u", "i", NULL, 0, "1", 1);

	room_round_trip(&env, 1, "0123456789abcdef");
}
END_TEST

START_TEST(direct_message_round_trip)
{
	static const char body[] = "[1,2,3]";
	confab_envelope env = direct("alice", "bob", "d-9", "s-1", 5, body, sizeof(body) - 1);

	direct_round_trip(&env);
}
END_TEST

/* The member events are written by the scripts' prelude
 * (redislink/rscript.h): this is its text, byte for byte. */
START_TEST(member_join_and_leave)
{
	const char *join = "{\"k\":\"j\",\"room\":\"lobby\",\"from\":\"alice\"}";
	const char *leave = "{\"k\":\"l\",\"room\":\"lobby\",\"from\":\"bob\"}";
	wire_msg m;

	parse_ok(join, strlen(join), &m);
	ck_assert_int_eq(m.kind, 'j');
	ck_assert_uint_eq(m.env.kind, CONFAB_ENV_MEMBER_JOIN);
	ck_assert_str_eq(m.env.room, "lobby");
	ck_assert_str_eq(m.env.from, "alice");
	ck_assert_ptr_null(m.env.body);
	wire_msg_clear(&m);
	parse_ok(leave, strlen(leave), &m);
	ck_assert_int_eq(m.kind, 'l');
	ck_assert_uint_eq(m.env.kind, CONFAB_ENV_MEMBER_LEAVE);
	ck_assert_str_eq(m.env.from, "bob");
	wire_msg_clear(&m);
}
END_TEST

START_TEST(probe_round_trip)
{
	char *text = wire_probe("node-a:abc-123:7");
	wire_msg m;

	ck_assert_ptr_nonnull(text);
	parse_ok(text, strlen(text), &m);
	ck_assert_int_eq(m.kind, 'p');
	ck_assert_str_eq(m.token, "node-a:abc-123:7");
	wire_msg_clear(&m);
	free(text);
}
END_TEST

/* The body is bytes after the first "\n": quotes, newlines, NULs and
 * UTF-8 come back exactly, and a quote or a backslash in a header field
 * is escaped on the way out and unescaped on the way in. */
START_TEST(bodies_and_names_that_need_escaping)
{
	static const char body[] = "{\"t\":\"a\\\"b\"}\n\0\0\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n";
	confab_envelope env = message("caf\xc3\xa9", "\xe2\x82\xac", "i\"d\\", NULL, -1, body,
				      sizeof(body) - 1);
	confab_envelope denv = direct("a\"b", "c\\d", "\xf0\x9f\x98\x80", NULL, 1, body,
				      sizeof(body) - 1);

	room_round_trip(&env, 3, NULL);
	direct_round_trip(&denv);
	/* An empty body is still a body: the "\n" is there. */
	denv.body = "";
	denv.body_len = 0;
	direct_round_trip(&denv);
}
END_TEST

/* The longest names the core lets through, the longest epoch, a body of
 * a megabyte, and the extremes of seq and ts. */
START_TEST(maximum_lengths_and_extreme_numbers)
{
	char room[CONFAB_ROOM_MAX + 1], user[CONFAB_USER_MAX + 1], epoch[CONFAB_EPOCH_MAX + 1];
	size_t big = 1 << 20;
	char *body = malloc(big);

	ck_assert_ptr_nonnull(body);
	memset(room, 'r', CONFAB_ROOM_MAX);
	room[CONFAB_ROOM_MAX] = '\0';
	memset(user, 'u', CONFAB_USER_MAX);
	user[CONFAB_USER_MAX] = '\0';
	memset(epoch, 'e', CONFAB_EPOCH_MAX);
	epoch[CONFAB_EPOCH_MAX] = '\0';
	for (size_t i = 0; i < big; i++)
		body[i] = (char)(i * 7);  /* every byte value, NULs and newlines included */

	confab_envelope env = message(room, user, user, user, INT64_MAX, body, big);
	confab_envelope denv = direct(user, user, user, NULL, INT64_MIN, body, big);

	room_round_trip(&env, (uint64_t)INT64_MAX, epoch);
	direct_round_trip(&denv);
	free(body);
}
END_TEST

/* ---- refusals --------------------------------------------------------------- */

#define MSG_FIELDS(room, id, from, ts, seq) \
	"{\"k\":\"m\"" room id from ",\"origin\":\"\"" ts seq "}\nB"
#define ROOM ",\"room\":\"r\""
#define ID ",\"id\":\"i\""
#define FROM ",\"from\":\"u\""
#define TS ",\"ts\":1"
#define SEQ ",\"seq\":1"

START_TEST(room_message_missing_each_field)
{
	/* The whole one is fine; each one without a field is not. */
	wire_msg m;
	const char *whole = MSG_FIELDS(ROOM, ID, FROM, TS, SEQ);

	parse_ok(whole, strlen(whole), &m);
	wire_msg_clear(&m);
	parse_bad_s(MSG_FIELDS("", ID, FROM, TS, SEQ), "room");
	parse_bad_s(MSG_FIELDS(ROOM, "", FROM, TS, SEQ), "id");
	parse_bad_s(MSG_FIELDS(ROOM, ID, "", TS, SEQ), "from");
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, "", SEQ), "ts");
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, TS, ""), "seq");
	/* no body: the header alone */
	parse_bad_s("{\"k\":\"m\"" ROOM ID FROM TS SEQ "}", "body");
}
END_TEST

START_TEST(direct_and_member_events_missing_each_field)
{
	parse_bad_s("{\"k\":\"d\",\"id\":\"i\",\"from\":\"u\",\"ts\":1}\nB", "to");
	parse_bad_s("{\"k\":\"d\",\"id\":\"i\",\"to\":\"v\",\"ts\":1}\nB", "from");
	parse_bad_s("{\"k\":\"d\",\"from\":\"u\",\"to\":\"v\",\"ts\":1}\nB", "id");
	parse_bad_s("{\"k\":\"d\",\"id\":\"i\",\"from\":\"u\",\"to\":\"v\"}\nB", "ts");
	parse_bad_s("{\"k\":\"d\",\"id\":\"i\",\"from\":\"u\",\"to\":\"v\",\"ts\":1}", "body");
	parse_bad_s("{\"k\":\"j\",\"from\":\"u\"}", "member event");
	parse_bad_s("{\"k\":\"l\",\"room\":\"r\"}", "member event");
	parse_bad_s("{\"k\":\"p\"}", "probe");
	parse_bad_s("{\"k\":\"p\",\"t\":7}", "probe");
	parse_bad_s("{\"room\":\"r\",\"from\":\"u\"}", "kind");
}
END_TEST

START_TEST(bad_kinds_and_bad_numbers)
{
	parse_bad_s("{\"k\":\"x\",\"room\":\"r\",\"from\":\"u\"}", "unknown kind");
	parse_bad_s("{\"k\":\"\",\"room\":\"r\",\"from\":\"u\"}", "kind");
	parse_bad_s("{\"k\":\"jj\",\"room\":\"r\",\"from\":\"u\"}", "kind");
	parse_bad_s("{\"k\":106,\"room\":\"r\",\"from\":\"u\"}", "kind");
	/* seq: at least 1, an integer, not text, not a fraction, not past int64 */
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, TS, ",\"seq\":0"), "seq");
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, TS, ",\"seq\":-1"), "seq");
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, TS, ",\"seq\":\"1\""), "seq");
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, TS, ",\"seq\":1.5"), "seq");
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, TS, ",\"seq\":null"), "seq");
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, TS, ",\"seq\":9223372036854775808"), NULL);
	/* ts: an integer */
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, ",\"ts\":\"1\"", SEQ), "ts");
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, ",\"ts\":1e3", SEQ), "ts");
	parse_bad_s(MSG_FIELDS(ROOM, ID, FROM, ",\"ts\":true", SEQ), "ts");
	/* names that are not strings */
	parse_bad_s(MSG_FIELDS(",\"room\":5", ID, FROM, TS, SEQ), "room");
	parse_bad_s(MSG_FIELDS(ROOM, ",\"id\":[]", FROM, TS, SEQ), "id");
	parse_bad_s("{\"k\":\"j\",\"room\":\"r\",\"from\":{}}", "member event");
}
END_TEST

START_TEST(not_json_and_trailing_garbage)
{
	parse_bad("", 0, "JSON");
	parse_bad_s("\nbody", "JSON");
	parse_bad_s("[1,2]\nbody", "JSON object");
	parse_bad_s("\"k\"", "JSON object");
	parse_bad_s("{\"k\":\"j\",\"room\":\"r\",\"from\":\"u\"}x", "JSON");
	parse_bad_s("{\"k\":\"j\",\"room\":\"r\",\"from\":\"u\"} {}", "JSON");
	parse_bad_s("{\"k\":\"d\",\"id\":\"i\",\"from\":\"u\",\"to\":\"v\",\"ts\":1}garbage\nB",
		    "JSON");
	/* A NUL in the header, raw or escaped, is no name. */
	static const char raw_nul[] = "{\"k\":\"j\",\"room\":\"r\0\",\"from\":\"u\"}";
	parse_bad(raw_nul, sizeof(raw_nul) - 1, "JSON");
	parse_bad_s("{\"k\":\"j\",\"room\":\"r\\u0000\",\"from\":\"u\"}", "JSON");
	/* Only `len` bytes are read: a valid text one byte too short is not. */
	const char *ok = "{\"k\":\"p\",\"t\":\"x\"}";
	parse_bad(ok, strlen(ok) - 1, "JSON");
}
END_TEST

/* Every cut of a valid text short of its header's end is refused, and no
 * cut reads past `len` (ASan watches: each cut is a copy of exactly that
 * many bytes). */
START_TEST(every_truncation_is_refused)
{
	confab_envelope env = message("room", "user", "id-1", "s", 12, "{\"a\":1}", 7);
	confab_envelope denv = direct("user", "other", "id-2", "s", 12, "{\"a\":1}", 7);
	size_t lens[3];
	char *texts[3];

	texts[0] = room_text(&env, 9, "ep", &lens[0]);
	texts[1] = wire_direct(&denv, &lens[1]);
	texts[2] = wire_probe("tok");
	lens[2] = strlen(texts[2]);
	for (int t = 0; t < 3; t++) {
		const char *nl = memchr(texts[t], '\n', lens[t]);
		size_t header_end = nl != NULL ? (size_t)(nl - texts[t]) : lens[t];

		for (size_t cut = 0; cut < header_end; cut++) {
			char *copy = malloc(cut + 1);

			ck_assert_ptr_nonnull(copy);
			memcpy(copy, texts[t], cut);
			parse_bad(copy, cut, NULL);
			free(copy);
		}
		/* The header whole but no "\n": refused for a message, which
		 * needs a body; a probe is a header alone. */
		wire_msg m;
		const char *why;
		int rc = wire_parse(texts[t], header_end, &m, &why);

		ck_assert_int_eq(rc, t == 2 ? 0 : CONFAB_EINVAL);
		wire_msg_clear(&m);
		free(texts[t]);
	}
}
END_TEST

static Suite *rwire_suite(void)
{
	Suite *s = suite_create("rwire");
	TCase *tc = tcase_create("round trips");

	tcase_add_test(tc, room_message_round_trip_with_seq_ts_and_origin);
	tcase_add_test(tc, first_message_of_a_life_carries_the_epoch);
	tcase_add_test(tc, direct_message_round_trip);
	tcase_add_test(tc, member_join_and_leave);
	tcase_add_test(tc, probe_round_trip);
	tcase_add_test(tc, bodies_and_names_that_need_escaping);
	tcase_add_test(tc, maximum_lengths_and_extreme_numbers);
	suite_add_tcase(s, tc);
	tc = tcase_create("refusals");
	tcase_add_test(tc, room_message_missing_each_field);
	tcase_add_test(tc, direct_and_member_events_missing_each_field);
	tcase_add_test(tc, bad_kinds_and_bad_numbers);
	tcase_add_test(tc, not_json_and_trailing_garbage);
	tcase_add_test(tc, every_truncation_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rwire_suite());
	srunner_run_all(sr, CK_VERBOSE);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
