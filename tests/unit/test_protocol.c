/* Unit tests for core/protocol.c: protocol v1 (issue 2, section 8). Every
 * request type is parsed with its fields; every malformed frame is a
 * bad_request that still lets the error echo the frame's ref; every server
 * frame is parsed back with jansson and checked field by field.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "buf.h"
#include "jspan.h"
#include "protocol.h"
#include "session.h"

/* A budget no reply in these tests reaches. */
#define BIG ((size_t)1 << 20)

#define HEADROOM 16
/* [broker] max_json_depth's default; one test parses with a smaller one */
#define MAX_DEPTH 32
static size_t max_depth = MAX_DEPTH;

/* ---- helpers ------------------------------------------------------------ */

static int parse(const char *text, request *req, protocol_error *err)
{
	memset(err, 0, sizeof(*err));
	return protocol_parse(text, strlen(text), max_depth, req, err);
}

/* Parses `text` expecting success; the caller frees `req`. */
#define parse_ok(text, req) parse_ok_at(text, req, __LINE__)
static void parse_ok_at(const char *text, request *req, int line)
{
	protocol_error err;
	int rc = parse(text, req, &err);
	ck_assert_msg(rc == 0, "line %d: %s refused: %s %s", line, text,
		      err.code ? err.code : "(no code)", err.message);
}

/* Parses `text` expecting bad_request with a message. */
#define assert_bad_request(text) assert_bad_request_at(text, strlen(text), __LINE__)
static void assert_bad_request_at(const char *text, size_t len, int line)
{
	request req;
	protocol_error err;
	memset(&err, 0, sizeof(err));
	int rc = protocol_parse(text, len, max_depth, &req, &err);
	ck_assert_msg(rc == -1, "line %d: accepted %s", line, text);
	ck_assert_msg(err.code != NULL && strcmp(err.code, ERR_BAD_REQUEST) == 0,
		      "line %d: %s gave code %s, not bad_request", line, text,
		      err.code ? err.code : "(none)");
	ck_assert_msg(err.message[0] != '\0', "line %d: %s: error without a message", line, text);
	request_free(&req);
}

/* Parses a built frame back; drops the frame. */
#define frame_json(b) frame_json_at(b, __LINE__)
static json_t *frame_json_at(confab_buf *b, int line)
{
	ck_assert_msg(b != NULL, "line %d: the builder returned NULL", line);
	ck_assert_uint_eq(b->headroom, HEADROOM);
	/* the headroom is there for a transport to write into */
	memset(b->data - b->headroom, 0xA5, b->headroom);
	json_error_t e;
	json_t *j = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES, &e);
	ck_assert_msg(j != NULL, "line %d: frame is not JSON (%s): %.*s", line, e.text,
		      (int)b->len, (const char *)b->data);
	ck_assert_msg(json_is_object(j), "line %d: frame is not an object", line);
	buf_unref(b);
	return j;
}

static const char *str_field(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_string(v), "field '%s' is missing or not a string", key);
	return json_string_value(v);
}

static json_int_t int_field(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_integer(v), "field '%s' is missing or not an integer", key);
	return json_integer_value(v);
}

static bool bool_field(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_boolean(v), "field '%s' is missing or not a boolean", key);
	return json_is_true(v);
}

/* The JSON value `text` stands for, compared with `v`. */
static void assert_json_equals(json_t *v, const char *text)
{
	json_error_t e;
	json_t *want = json_loads(text, JSON_DECODE_ANY, &e);
	ck_assert_msg(want != NULL, "bad expected JSON %s: %s", text, e.text);
	char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	ck_assert_msg(json_equal(v, want), "got %s, want %s", got ? got : "(null)", text);
	free(got);
	json_decref(want);
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ---- parsing: every request type ---------------------------------------- */

START_TEST(test_join_leave_presence_give_the_room)
{
	static const struct { const char *text; request_type type; } cases[] = {
		{ "{\"type\":\"join\",\"room\":\"lobby\"}", REQ_JOIN },
		{ "{\"type\":\"leave\",\"room\":\"lobby\"}", REQ_LEAVE },
		{ "{\"type\":\"presence\",\"room\":\"lobby\"}", REQ_PRESENCE },
		{ " { \"room\" : \"lobby\" , \"type\" : \"join\" } ", REQ_JOIN },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		request req;
		parse_ok(cases[i].text, &req);
		ck_assert_int_eq(req.type, cases[i].type);
		ck_assert_str_eq(req.room, "lobby");
		ck_assert_ptr_null(req.ref);
		ck_assert_ptr_null(req.to);
		ck_assert_ptr_null(req.body);
		request_free(&req);
	}
}
END_TEST

START_TEST(test_send_gives_room_body_and_ref)
{
	request req;
	parse_ok("{\"type\":\"send\",\"room\":\"r1\",\"body\":{\"text\":\"hi\",\"n\":[1,2]},"
		 "\"ref\":\"abc\"}", &req);
	ck_assert_int_eq(req.type, REQ_SEND);
	ck_assert_str_eq(req.room, "r1");
	assert_json_equals(req.body, "{\"text\":\"hi\",\"n\":[1,2]}");
	ck_assert(json_is_string(req.ref));
	ck_assert_str_eq(json_string_value(req.ref), "abc");
	request_free(&req);
}
END_TEST

START_TEST(test_send_and_direct_take_an_idem_key)
{
	request req;
	parse_ok("{\"type\":\"send\",\"room\":\"r1\",\"body\":1,\"idem\":\"a-Z_0.9:x\"}", &req);
	ck_assert_str_eq(req.idem, "a-Z_0.9:x");
	request_free(&req);
	parse_ok("{\"type\":\"direct\",\"to\":\"bob@x\",\"body\":1,\"idem\":\"k\"}", &req);
	ck_assert_str_eq(req.idem, "k");
	request_free(&req);
	parse_ok("{\"type\":\"send\",\"room\":\"r1\",\"body\":1}", &req);
	ck_assert_ptr_null(req.idem);
	request_free(&req);
	/* 64 characters is the most */
	char text[256];
	snprintf(text, sizeof(text), "{\"type\":\"send\",\"room\":\"r\",\"body\":1,\"idem\":\"%s\"}",
		 "0123456789012345678901234567890123456789012345678901234567890123");
	parse_ok(text, &req);
	ck_assert_uint_eq(strlen(req.idem), CONFAB_IDEM_MAX);
	request_free(&req);
}
END_TEST

START_TEST(test_bad_idem_keys_are_bad_request)
{
	assert_bad_request("{\"type\":\"send\",\"room\":\"r\",\"body\":1,\"idem\":\"\"}");
	assert_bad_request("{\"type\":\"send\",\"room\":\"r\",\"body\":1,\"idem\":7}");
	assert_bad_request("{\"type\":\"send\",\"room\":\"r\",\"body\":1,\"idem\":\"a/b\"}");
	assert_bad_request("{\"type\":\"send\",\"room\":\"r\",\"body\":1,\"idem\":\"a b\"}");
	assert_bad_request("{\"type\":\"direct\",\"to\":\"u\",\"body\":1,\"idem\":\"a\\u0000b\"}");
	assert_bad_request("{\"type\":\"direct\",\"to\":\"u\",\"body\":1,\"idem\":null}");
	char text[256];
	snprintf(text, sizeof(text), "{\"type\":\"send\",\"room\":\"r\",\"body\":1,\"idem\":\"%s\"}",
		 "01234567890123456789012345678901234567890123456789012345678901234");
	assert_bad_request(text);
}
END_TEST

START_TEST(test_unknown_outcome_frame_says_so_with_the_id)
{
	json_t *ref = json_string("r9");
	json_t *f = frame_json(protocol_error_unknown(HEADROOM, "lost", "n.x.m3", ref));
	json_decref(ref);
	ck_assert_str_eq(str_field(f, "type"), "error");
	ck_assert_str_eq(str_field(f, "code"), "unavailable");
	ck_assert_str_eq(str_field(f, "message"), "lost");
	ck_assert_str_eq(str_field(f, "outcome"), "unknown");
	ck_assert_str_eq(str_field(f, "id"), "n.x.m3");
	ck_assert_str_eq(str_field(f, "ref"), "r9");
	json_decref(f);
}
END_TEST

START_TEST(test_send_body_may_be_any_json_value_even_null)
{
	static const char *const bodies[] = { "null", "\"text\"", "42", "-1.5", "true",
					      "[]", "{}", "[1,{\"a\":null}]" };
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char text[160];
		snprintf(text, sizeof(text), "{\"type\":\"send\",\"room\":\"r\",\"body\":%s}",
			 bodies[i]);
		request req;
		parse_ok(text, &req);
		ck_assert_ptr_nonnull(req.body);
		assert_json_equals(req.body, bodies[i]);
		request_free(&req);
	}
}
END_TEST

/* The body is passed on as the bytes the client sent: never longer, and
 * numbers keep their spelling. */
static void assert_body_text(const char *frame, const char *want)
{
	request req;
	parse_ok(frame, &req);
	ck_assert_msg(req.body_text != NULL, "%s: no body text", frame);
	ck_assert_msg(req.body_len == strlen(want) && memcmp(req.body_text, want, req.body_len) == 0,
		      "%s: body text '%.*s', want '%s'", frame, (int)req.body_len, req.body_text,
		      want);
	ck_assert(req.body_text >= frame && req.body_text + req.body_len <= frame + strlen(frame));
	request_free(&req);
}

START_TEST(test_body_text_is_the_senders_bytes)
{
	assert_body_text("{\"type\":\"send\",\"room\":\"r\",\"body\":0.1}", "0.1");
	assert_body_text("{\"type\":\"send\",\"room\":\"r\",\"body\":1e2,\"ref\":1}", "1e2");
	assert_body_text("{\"body\" : [0.1, 2.50, -0E0] ,\"type\":\"send\",\"room\":\"r\"}",
			 "[0.1, 2.50, -0E0]");
	assert_body_text("{\"type\":\"direct\",\"to\":\"bob\",\"body\":\"a\\\"}b\\u00e9\"}",
			 "\"a\\\"}b\\u00e9\"");
	/* a nested "body" is not the member; escaped keys are */
	assert_body_text("{\"type\":\"send\",\"x\":{\"body\":1},\"room\":\"r\",\"body\":{\"body\":[\"]\"]}}",
			 "{\"body\":[\"]\"]}");
	assert_body_text("{\"type\":\"send\",\"room\":\"r\",\"b\\u006fdy\":null}", "null");
	assert_body_text("{\"type\":\"send\",\"bodyx\":1,\"room\":\"r\",\"body\":true}", "true");
	assert_body_text("\t{\"type\":\"send\",\"room\":\"r\",\"body\":\n-12\r\n}\n", "-12");
}
END_TEST

/* jspan runs only on text jansson accepted, but must never read past the
 * end of any text: every prefix of a tricky frame, in a buffer of exactly
 * its size (the sanitizer build catches a read beyond it). */
START_TEST(test_body_scanner_stays_inside_any_text)
{
	static const char frame[] =
		" {\"type\":\"send\",\"x\":[\"}\\\\\",{\"body\":1}],\"b\\u006fdy\" :"
		" {\"a\":\"\\\"]\",\"b\":[1.5e3,true,null]} , \"ref\":\"\\\\\"}";
	size_t off, len;
	ck_assert(jspan_member(frame, sizeof(frame) - 1, "body", &off, &len));
	ck_assert_uint_eq(len, strlen("{\"a\":\"\\\"]\",\"b\":[1.5e3,true,null]}"));
	for (size_t n = 0; n < sizeof(frame) - 1; n++) {
		char *copy = malloc(n ? n : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, frame, n);
		if (jspan_member(copy, n, "body", &off, &len))
			ck_assert_uint_le(off + len, n);
		free(copy);
	}
}
END_TEST

START_TEST(test_a_frame_of_numbers_is_not_amplified)
{
	/* re-encoded, each 0.1 would become 0.10000000000000001 */
	size_t n = 4000;
	char *frame = malloc(64 + n * 4);
	ck_assert_ptr_nonnull(frame);
	size_t len = (size_t)sprintf(frame, "{\"type\":\"send\",\"room\":\"r\",\"body\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(frame + len, "%s0.1", i ? "," : "");
	len += (size_t)sprintf(frame + len, "]}");
	request req;
	parse_ok(frame, &req);
	ck_assert_uint_eq(req.body_len, n * 4 - 1 + 2);
	ck_assert(req.body_len < len);
	request_free(&req);
	free(frame);
}
END_TEST

START_TEST(test_direct_gives_to_body_and_a_number_ref)
{
	request req;
	parse_ok("{\"type\":\"direct\",\"to\":\"bob\",\"body\":\"psst\",\"ref\":7}", &req);
	ck_assert_int_eq(req.type, REQ_DIRECT);
	ck_assert_str_eq(req.to, "bob");
	ck_assert_ptr_null(req.room);
	assert_json_equals(req.body, "\"psst\"");
	ck_assert(json_is_integer(req.ref));
	ck_assert_int_eq(json_integer_value(req.ref), 7);
	request_free(&req);
}
END_TEST

START_TEST(test_direct_to_a_user_with_an_at_sign_is_valid)
{
	request req;
	parse_ok("{\"type\":\"direct\",\"to\":\"bob@example.com\",\"body\":null}", &req);
	ck_assert_str_eq(req.to, "bob@example.com");
	ck_assert(json_is_null(req.body));
	request_free(&req);
}
END_TEST

START_TEST(test_history_gives_since_and_limit_when_present)
{
	request req;
	parse_ok("{\"type\":\"history\",\"room\":\"r\",\"since\":5,\"limit\":10}", &req);
	ck_assert_int_eq(req.type, REQ_HISTORY);
	ck_assert_str_eq(req.room, "r");
	ck_assert(req.has_since);
	ck_assert_uint_eq(req.since, 5);
	ck_assert(req.has_limit);
	ck_assert_uint_eq(req.limit, 10);
	request_free(&req);

	parse_ok("{\"type\":\"history\",\"room\":\"r\"}", &req);
	ck_assert(!req.has_since);
	ck_assert(!req.has_limit);
	request_free(&req);

	parse_ok("{\"type\":\"history\",\"room\":\"r\",\"since\":0}", &req);
	ck_assert(req.has_since);
	ck_assert_uint_eq(req.since, 0);
	ck_assert(!req.has_limit);
	request_free(&req);

	parse_ok("{\"type\":\"history\",\"room\":\"r\",\"limit\":1}", &req);
	ck_assert(!req.has_since);
	ck_assert(req.has_limit);
	ck_assert_uint_eq(req.limit, 1);
	request_free(&req);
}
END_TEST

START_TEST(test_ping_with_string_integer_or_real_ref)
{
	request req;
	parse_ok("{\"type\":\"ping\"}", &req);
	ck_assert_int_eq(req.type, REQ_PING);
	ck_assert_ptr_null(req.ref);
	request_free(&req);

	parse_ok("{\"type\":\"ping\",\"ref\":\"p-1\"}", &req);
	ck_assert_str_eq(json_string_value(req.ref), "p-1");
	request_free(&req);

	parse_ok("{\"ref\":-3,\"type\":\"ping\"}", &req);
	ck_assert_int_eq(json_integer_value(req.ref), -3);
	request_free(&req);

	parse_ok("{\"type\":\"ping\",\"ref\":1.5}", &req);
	ck_assert(json_is_real(req.ref));
	request_free(&req);
}
END_TEST

START_TEST(test_room_of_64_bytes_and_every_allowed_character_is_valid)
{
	char *room = repeat('r', 64);
	char text[200];
	snprintf(text, sizeof(text), "{\"type\":\"join\",\"room\":\"%s\"}", room);
	request req;
	parse_ok(text, &req);
	ck_assert_str_eq(req.room, room);
	request_free(&req);
	free(room);

	parse_ok("{\"type\":\"join\",\"room\":\"AZaz09_.:-\"}", &req);
	ck_assert_str_eq(req.room, "AZaz09_.:-");
	request_free(&req);

	parse_ok("{\"type\":\"join\",\"room\":\"x\"}", &req);
	request_free(&req);
}
END_TEST

/* ---- parsing: every bad_request ------------------------------------------ */

START_TEST(test_frame_that_is_not_json_is_bad_request)
{
	assert_bad_request("");
	assert_bad_request("hello");
	assert_bad_request("{");
	assert_bad_request("{\"type\":\"ping\"");
	assert_bad_request("{\"type\":\"ping\"} {}");
	assert_bad_request("{'type':'ping'}");
	assert_bad_request("\xff\xfe");
	/* a NUL byte inside the frame */
	assert_bad_request_at("{\"type\":\"ping\"}\0", 16, __LINE__);
}
END_TEST

START_TEST(test_frame_that_is_not_an_object_is_bad_request)
{
	assert_bad_request("[{\"type\":\"ping\"}]");
	assert_bad_request("[]");
	assert_bad_request("\"ping\"");
	assert_bad_request("42");
	assert_bad_request("null");
	assert_bad_request("true");
}
END_TEST

START_TEST(test_missing_or_mistyped_type_is_bad_request)
{
	assert_bad_request("{}");
	assert_bad_request("{\"room\":\"r\"}");
	assert_bad_request("{\"type\":1}");
	assert_bad_request("{\"type\":null}");
	assert_bad_request("{\"type\":[\"ping\"]}");
	assert_bad_request("{\"type\":{\"name\":\"ping\"}}");
}
END_TEST

START_TEST(test_unknown_type_is_bad_request)
{
	assert_bad_request("{\"type\":\"shout\"}");
	assert_bad_request("{\"type\":\"PING\"}");
	assert_bad_request("{\"type\":\"\"}");
	assert_bad_request("{\"type\":\"ping \"}");
	assert_bad_request("{\"type\":\"welcome\"}");
}
END_TEST

START_TEST(test_missing_or_mistyped_room_is_bad_request)
{
	static const char *const types[] = { "join", "leave", "send", "presence", "history" };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "{\"type\":\"%s\",\"body\":1}", types[i]);
		assert_bad_request(text);
		snprintf(text, sizeof(text), "{\"type\":\"%s\",\"room\":5,\"body\":1}", types[i]);
		assert_bad_request(text);
		snprintf(text, sizeof(text), "{\"type\":\"%s\",\"room\":null,\"body\":1}", types[i]);
		assert_bad_request(text);
		snprintf(text, sizeof(text), "{\"type\":\"%s\",\"room\":[\"r\"],\"body\":1}",
			 types[i]);
		assert_bad_request(text);
	}
}
END_TEST

START_TEST(test_bad_room_names_are_bad_request)
{
	assert_bad_request("{\"type\":\"join\",\"room\":\"\"}");
	assert_bad_request("{\"type\":\"join\",\"room\":\"a b\"}");
	assert_bad_request("{\"type\":\"join\",\"room\":\"a/b\"}");
	assert_bad_request("{\"type\":\"join\",\"room\":\"caf\xc3\xa9\"}");
	assert_bad_request("{\"type\":\"join\",\"room\":\"caf\\u00e9\"}");
	assert_bad_request("{\"type\":\"join\",\"room\":\"a\\u0000b\"}");
	assert_bad_request("{\"type\":\"join\",\"room\":\"a\\u0000\"}");
	assert_bad_request("{\"type\":\"join\",\"room\":\"bob@home\"}");
	assert_bad_request("{\"type\":\"join\",\"room\":\"tab\\there\"}");

	char *room = repeat('r', 65);
	char text[200];
	snprintf(text, sizeof(text), "{\"type\":\"join\",\"room\":\"%s\"}", room);
	assert_bad_request(text);
	free(room);
}
END_TEST

START_TEST(test_send_or_direct_without_body_is_bad_request)
{
	assert_bad_request("{\"type\":\"send\",\"room\":\"r\"}");
	assert_bad_request("{\"type\":\"direct\",\"to\":\"bob\"}");
}
END_TEST

START_TEST(test_direct_without_a_valid_to_is_bad_request)
{
	assert_bad_request("{\"type\":\"direct\",\"body\":1}");
	assert_bad_request("{\"type\":\"direct\",\"to\":7,\"body\":1}");
	assert_bad_request("{\"type\":\"direct\",\"to\":\"\",\"body\":1}");
	assert_bad_request("{\"type\":\"direct\",\"to\":\"bo b\",\"body\":1}");
	assert_bad_request("{\"type\":\"direct\",\"to\":\"bob\\u0000\",\"body\":1}");
	/* a room is not an addressee */
	assert_bad_request("{\"type\":\"direct\",\"room\":\"bob\",\"body\":1}");

	char *user = repeat('u', 65);
	char text[200];
	snprintf(text, sizeof(text), "{\"type\":\"direct\",\"to\":\"%s\",\"body\":1}", user);
	assert_bad_request(text);
	free(user);
}
END_TEST

START_TEST(test_history_since_must_be_a_non_negative_integer)
{
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"since\":-1}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"since\":\"5\"}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"since\":1.5}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"since\":5.0}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"since\":null}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"since\":true}");
}
END_TEST

START_TEST(test_history_limit_must_be_a_positive_integer)
{
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"limit\":0}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"limit\":-3}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"limit\":\"10\"}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"limit\":2.5}");
}
END_TEST

START_TEST(test_ref_that_is_not_a_string_or_number_is_bad_request)
{
	assert_bad_request("{\"type\":\"ping\",\"ref\":{}}");
	assert_bad_request("{\"type\":\"ping\",\"ref\":{\"id\":1}}");
	assert_bad_request("{\"type\":\"ping\",\"ref\":[1]}");
	assert_bad_request("{\"type\":\"ping\",\"ref\":true}");
	assert_bad_request("{\"type\":\"ping\",\"ref\":false}");
	assert_bad_request("{\"type\":\"ping\",\"ref\":null}");
}
END_TEST

START_TEST(test_duplicate_keys_are_bad_request)
{
	assert_bad_request("{\"type\":\"join\",\"type\":\"ping\"}");
	assert_bad_request("{\"type\":\"join\",\"room\":\"a\",\"room\":\"b\"}");
	assert_bad_request("{\"type\":\"send\",\"room\":\"a\",\"body\":{\"x\":1,\"x\":2}}");
	assert_bad_request("{\"type\":\"ping\",\"ref\":1,\"ref\":2}");
}
END_TEST

/* Once the frame is an object with a good ref, every later error keeps the
 * ref so that the error can echo it. */
START_TEST(test_errors_after_the_object_is_parsed_keep_the_ref_to_echo)
{
	static const struct { const char *text; const char *ref; json_int_t num; } cases[] = {
		{ "{\"ref\":\"r1\"}", "r1", 0 },
		{ "{\"type\":7,\"ref\":\"r2\"}", "r2", 0 },
		{ "{\"type\":\"shout\",\"ref\":\"r3\"}", "r3", 0 },
		{ "{\"type\":\"join\",\"ref\":4}", NULL, 4 },
		{ "{\"type\":\"join\",\"room\":\"a b\",\"ref\":5}", NULL, 5 },
		{ "{\"type\":\"send\",\"room\":\"r\",\"ref\":\"r6\"}", "r6", 0 },
		{ "{\"type\":\"direct\",\"body\":1,\"ref\":7}", NULL, 7 },
		{ "{\"type\":\"history\",\"room\":\"r\",\"since\":-1,\"ref\":\"r8\"}", "r8", 0 },
		{ "{\"type\":\"history\",\"room\":\"r\",\"limit\":0,\"ref\":9}", NULL, 9 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		request req;
		protocol_error err;
		ck_assert_int_eq(parse(cases[i].text, &req, &err), -1);
		ck_assert_str_eq(err.code, ERR_BAD_REQUEST);
		ck_assert_msg(req.ref != NULL, "%s: no ref to echo", cases[i].text);
		if (cases[i].ref) {
			ck_assert_str_eq(json_string_value(req.ref), cases[i].ref);
		} else {
			ck_assert(json_is_integer(req.ref));
			ck_assert_int_eq(json_integer_value(req.ref), cases[i].num);
		}

		/* and the error frame echoes it */
		json_t *j = frame_json(protocol_error_frame(HEADROOM, err.code, err.message, req.ref));
		ck_assert(json_equal(json_object_get(j, "ref"), req.ref));
		json_decref(j);
		request_free(&req);
	}
}
END_TEST

START_TEST(test_errors_before_a_good_ref_is_seen_have_no_ref)
{
	static const char *const cases[] = {
		"not json", "[1]", "{\"type\":\"ping\",\"ref\":{}}",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		request req;
		protocol_error err;
		ck_assert_int_eq(parse(cases[i], &req, &err), -1);
		ck_assert_ptr_null(req.ref);
		request_free(&req);
	}
}
END_TEST

/* An error message quotes what the client sent; the frame carrying it back
 * must stay valid UTF-8 JSON even when the quote is cut short. */
START_TEST(test_error_about_a_long_non_ascii_type_is_still_valid_json)
{
	/* 63 ASCII bytes, then a two-byte character across the 64-byte cut */
	char *type = repeat('a', 63);
	char text[200];
	snprintf(text, sizeof(text), "{\"type\":\"%s\xc3\xa9\xc3\xa9\",\"ref\":1}", type);
	free(type);

	request req;
	protocol_error err;
	ck_assert_int_eq(parse(text, &req, &err), -1);
	ck_assert_str_eq(err.code, ERR_BAD_REQUEST);
	json_t *j = frame_json(protocol_error_frame(HEADROOM, err.code, err.message, req.ref));
	ck_assert_str_eq(str_field(j, "code"), "bad_request");
	json_decref(j);
	request_free(&req);
}
END_TEST

START_TEST(test_error_about_non_json_with_non_ascii_is_still_valid_json)
{
	static const char *const cases[] = {
		"{\"type\": \xc3\xa9}",
		"\xc3\xa9\xc3\xa9\xc3\xa9",
		"{\"type\":\"join\",\"room\":\"\xc3\xa9\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		request req;
		protocol_error err;
		ck_assert_int_eq(parse(cases[i], &req, &err), -1);
		json_t *j = frame_json(protocol_error_frame(HEADROOM, err.code, err.message, req.ref));
		ck_assert_str_eq(str_field(j, "code"), "bad_request");
		json_decref(j);
		request_free(&req);
	}
}
END_TEST

START_TEST(test_room_and_user_name_rules)
{
	ck_assert(protocol_valid_room("lobby"));
	ck_assert(protocol_valid_room("A-Z_a.z:0-9"));
	ck_assert(!protocol_valid_room(""));
	ck_assert(!protocol_valid_room("a b"));
	ck_assert(!protocol_valid_room("a/b"));
	ck_assert(!protocol_valid_room("bob@home"));
	ck_assert(!protocol_valid_room("caf\xc3\xa9"));

	ck_assert(protocol_valid_user("bob"));
	ck_assert(protocol_valid_user("bob@example.com"));
	ck_assert(protocol_valid_user("guest-0123abcd"));
	ck_assert(!protocol_valid_user(""));
	ck_assert(!protocol_valid_user("bo b"));
	ck_assert(!protocol_valid_user("bob\n"));

	char *s = repeat('x', 64);
	ck_assert(protocol_valid_room(s));
	ck_assert(protocol_valid_user(s));
	free(s);
	s = repeat('x', 65);
	ck_assert(!protocol_valid_room(s));
	ck_assert(!protocol_valid_user(s));
	free(s);
}
END_TEST

/* ---- server frames ------------------------------------------------------- */

START_TEST(test_buffers_get_the_headroom_asked_for)
{
	confab_buf *b = protocol_simple(HEADROOM, "pong", NULL, NULL);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->headroom, HEADROOM);
	/* a second reference keeps the frame alive after the first is dropped */
	buf_ref(b);
	buf_unref(b);
	json_t *j = frame_json(b);
	json_decref(j);
}
END_TEST

START_TEST(test_welcome_frame_has_session_user_node_and_protocol_1)
{
	json_t *j = frame_json(protocol_welcome(HEADROOM, "s-1", "alice", "node-a"));
	ck_assert_uint_eq(json_object_size(j), 5);
	ck_assert_str_eq(str_field(j, "type"), "welcome");
	ck_assert_str_eq(str_field(j, "session"), "s-1");
	ck_assert_str_eq(str_field(j, "user"), "alice");
	ck_assert_str_eq(str_field(j, "node"), "node-a");
	ck_assert_int_eq(int_field(j, "protocol"), 1);
	json_decref(j);
}
END_TEST

START_TEST(test_error_frame_echoes_a_string_ref)
{
	json_t *ref = json_string("abc");
	json_t *j = frame_json(protocol_error_frame(HEADROOM, ERR_NOT_MEMBER, "join the room first", ref));
	ck_assert_uint_eq(json_object_size(j), 4);
	ck_assert_str_eq(str_field(j, "type"), "error");
	ck_assert_str_eq(str_field(j, "code"), "not_member");
	ck_assert_str_eq(str_field(j, "message"), "join the room first");
	ck_assert_str_eq(str_field(j, "ref"), "abc");
	json_decref(j);
	json_decref(ref);
}
END_TEST

START_TEST(test_error_frame_echoes_a_number_ref)
{
	json_t *ref = json_integer(42);
	json_t *j = frame_json(protocol_error_frame(HEADROOM, ERR_OFFLINE, "bob is offline", ref));
	ck_assert_int_eq(int_field(j, "ref"), 42);
	ck_assert_str_eq(str_field(j, "code"), "offline");
	json_decref(j);
	json_decref(ref);

	ref = json_real(2.5);
	j = frame_json(protocol_error_frame(HEADROOM, ERR_INTERNAL, "oops", ref));
	ck_assert(json_is_real(json_object_get(j, "ref")));
	ck_assert(json_real_value(json_object_get(j, "ref")) == 2.5);
	json_decref(j);
	json_decref(ref);
}
END_TEST

START_TEST(test_error_frame_without_ref_has_no_ref_key)
{
	json_t *j = frame_json(protocol_error_frame(HEADROOM, ERR_TOO_LARGE, "frame too large", NULL));
	ck_assert_uint_eq(json_object_size(j), 3);
	ck_assert_str_eq(str_field(j, "type"), "error");
	ck_assert_str_eq(str_field(j, "code"), "too_large");
	ck_assert_str_eq(str_field(j, "message"), "frame too large");
	ck_assert_ptr_null(json_object_get(j, "ref"));
	json_decref(j);
}
END_TEST

START_TEST(test_error_message_with_a_quote_and_control_chars_round_trips)
{
	static const char message[] = "say \"hi\"\x01\x1f\n\t\\ back \xc3\xa9";
	json_t *j = frame_json(protocol_error_frame(HEADROOM, ERR_BAD_REQUEST, message, NULL));
	ck_assert_str_eq(str_field(j, "message"), message);
	json_decref(j);
}
END_TEST

START_TEST(test_joined_left_and_pong_frames)
{
	json_t *ref = json_string("j1");
	json_t *j = frame_json(protocol_simple(HEADROOM, "joined", "lobby", ref));
	ck_assert_uint_eq(json_object_size(j), 3);
	ck_assert_str_eq(str_field(j, "type"), "joined");
	ck_assert_str_eq(str_field(j, "room"), "lobby");
	ck_assert_str_eq(str_field(j, "ref"), "j1");
	json_decref(j);
	json_decref(ref);

	j = frame_json(protocol_simple(HEADROOM, "left", "lobby", NULL));
	ck_assert_uint_eq(json_object_size(j), 2);
	ck_assert_str_eq(str_field(j, "type"), "left");
	ck_assert_str_eq(str_field(j, "room"), "lobby");
	json_decref(j);

	j = frame_json(protocol_simple(HEADROOM, "pong", NULL, NULL));
	ck_assert_uint_eq(json_object_size(j), 1);
	ck_assert_str_eq(str_field(j, "type"), "pong");
	json_decref(j);

	ref = json_integer(3);
	j = frame_json(protocol_simple(HEADROOM, "pong", NULL, ref));
	ck_assert_uint_eq(json_object_size(j), 2);
	ck_assert_int_eq(int_field(j, "ref"), 3);
	json_decref(j);
	json_decref(ref);
}
END_TEST

START_TEST(test_room_ack_has_room_seq_id_ts_and_ref)
{
	json_t *ref = json_string("s1");
	json_t *j = frame_json(protocol_ack_room(HEADROOM, "lobby", 17, "n1-42", 1700000000123LL, ref));
	ck_assert_uint_eq(json_object_size(j), 6);
	ck_assert_str_eq(str_field(j, "type"), "ack");
	ck_assert_str_eq(str_field(j, "room"), "lobby");
	ck_assert_int_eq(int_field(j, "seq"), 17);
	ck_assert_str_eq(str_field(j, "id"), "n1-42");
	ck_assert_int_eq(int_field(j, "ts"), 1700000000123LL);
	ck_assert_str_eq(str_field(j, "ref"), "s1");
	json_decref(j);
	json_decref(ref);

	j = frame_json(protocol_ack_room(HEADROOM, "lobby", 1, "x", 0, NULL));
	ck_assert_uint_eq(json_object_size(j), 5);
	ck_assert_ptr_null(json_object_get(j, "ref"));
	json_decref(j);
}
END_TEST

START_TEST(test_direct_ack_has_id_ts_and_ref_but_no_room)
{
	json_t *j = frame_json(protocol_ack_direct(HEADROOM, "n1-43", 1700000000456LL, NULL));
	ck_assert_uint_eq(json_object_size(j), 3);
	ck_assert_str_eq(str_field(j, "type"), "ack");
	ck_assert_str_eq(str_field(j, "id"), "n1-43");
	ck_assert_int_eq(int_field(j, "ts"), 1700000000456LL);
	ck_assert_ptr_null(json_object_get(j, "room"));
	json_decref(j);

	json_t *ref = json_integer(9);
	j = frame_json(protocol_ack_direct(HEADROOM, "n1-44", 1, ref));
	ck_assert_uint_eq(json_object_size(j), 4);
	ck_assert_int_eq(int_field(j, "ref"), 9);
	json_decref(j);
	json_decref(ref);
}
END_TEST

/* A body as its JSON text, followed by bytes that are not part of it:
 * body_len, not a NUL, ends it. */
static const char body_text[] = "{\"a\":[1,2]}trailing bytes";
#define BODY_LEN 11

START_TEST(test_message_envelope_becomes_a_message_frame_with_body_verbatim)
{
	confab_envelope env = {
		.size = sizeof(env), .kind = CONFAB_ENV_MESSAGE, .room = "lobby",
		.from = "alice", .id = "n1-1", .origin = "s-9", .body = body_text,
		.body_len = BODY_LEN, .seq = 3, .ts = 99,
	};
	confab_buf *b = protocol_envelope(HEADROOM, &env);
	ck_assert_ptr_nonnull(b);
	ck_assert_msg(memmem(b->data, b->len, "\"body\":{\"a\":[1,2]}", 18) != NULL,
		      "body not copied verbatim: %.*s", (int)b->len, (const char *)b->data);
	json_t *j = frame_json(b);
	ck_assert_uint_eq(json_object_size(j), 7);
	ck_assert_str_eq(str_field(j, "type"), "message");
	ck_assert_str_eq(str_field(j, "room"), "lobby");
	ck_assert_int_eq(int_field(j, "seq"), 3);
	ck_assert_str_eq(str_field(j, "id"), "n1-1");
	ck_assert_str_eq(str_field(j, "from"), "alice");
	assert_json_equals(json_object_get(j, "body"), "{\"a\":[1,2]}");
	ck_assert_int_eq(int_field(j, "ts"), 99);
	json_decref(j);
}
END_TEST

START_TEST(test_direct_envelope_becomes_a_direct_frame)
{
	confab_envelope env = {
		.size = sizeof(env), .kind = CONFAB_ENV_DIRECT, .from = "alice", .to = "bob",
		.id = "n1-2", .origin = "s-9", .body = body_text, .body_len = BODY_LEN,
		.ts = 1700000000789LL,
	};
	json_t *j = frame_json(protocol_envelope(HEADROOM, &env));
	ck_assert_uint_eq(json_object_size(j), 6);
	ck_assert_str_eq(str_field(j, "type"), "direct");
	ck_assert_str_eq(str_field(j, "id"), "n1-2");
	ck_assert_str_eq(str_field(j, "from"), "alice");
	ck_assert_str_eq(str_field(j, "to"), "bob");
	assert_json_equals(json_object_get(j, "body"), "{\"a\":[1,2]}");
	ck_assert_int_eq(int_field(j, "ts"), 1700000000789LL);
	json_decref(j);
}
END_TEST

START_TEST(test_member_envelopes_become_member_join_and_leave_frames)
{
	confab_envelope env = {
		.size = sizeof(env), .kind = CONFAB_ENV_MEMBER_JOIN, .room = "lobby",
		.from = "carol",
	};
	json_t *j = frame_json(protocol_envelope(HEADROOM, &env));
	ck_assert_uint_eq(json_object_size(j), 4);
	ck_assert_str_eq(str_field(j, "type"), "member");
	ck_assert_str_eq(str_field(j, "room"), "lobby");
	ck_assert_str_eq(str_field(j, "user"), "carol");
	ck_assert_str_eq(str_field(j, "event"), "join");
	json_decref(j);

	env.kind = CONFAB_ENV_MEMBER_LEAVE;
	j = frame_json(protocol_envelope(HEADROOM, &env));
	ck_assert_uint_eq(json_object_size(j), 4);
	ck_assert_str_eq(str_field(j, "type"), "member");
	ck_assert_str_eq(str_field(j, "user"), "carol");
	ck_assert_str_eq(str_field(j, "event"), "leave");
	json_decref(j);
}
END_TEST

START_TEST(test_large_body_is_carried_whole)
{
	size_t n = 200000;
	char *body = repeat('x', n);
	body[0] = '"';
	body[n - 1] = '"';
	confab_envelope env = {
		.size = sizeof(env), .kind = CONFAB_ENV_MESSAGE, .room = "r", .from = "a",
		.id = "i", .body = body, .body_len = n, .seq = 1, .ts = 1,
	};
	json_t *j = frame_json(protocol_envelope(HEADROOM, &env));
	ck_assert_uint_eq(json_string_length(json_object_get(j, "body")), n - 2);
	json_decref(j);
	free(body);
}
END_TEST

START_TEST(test_presence_frame_keeps_the_order_given)
{
	static const char *const users[] = { "carol", "alice", "bob@x" };
	json_t *ref = json_string("p");
	size_t sent;
	json_t *j = frame_json(protocol_presence(HEADROOM, "lobby", users, 3, BIG, &sent, ref));
	ck_assert_uint_eq(sent, 3);
	ck_assert_uint_eq(json_object_size(j), 5);
	ck_assert(!bool_field(j, "more"));
	ck_assert_str_eq(str_field(j, "type"), "presence");
	ck_assert_str_eq(str_field(j, "room"), "lobby");
	ck_assert_str_eq(str_field(j, "ref"), "p");
	assert_json_equals(json_object_get(j, "users"), "[\"carol\",\"alice\",\"bob@x\"]");
	json_decref(j);
	json_decref(ref);
}
END_TEST

START_TEST(test_presence_frame_of_an_empty_room_has_an_empty_list)
{
	size_t sent;
	json_t *j = frame_json(protocol_presence(HEADROOM, "lobby", NULL, 0, BIG, &sent, NULL));
	ck_assert_uint_eq(sent, 0);
	ck_assert_uint_eq(json_object_size(j), 4);
	ck_assert(!bool_field(j, "more"));
	assert_json_equals(json_object_get(j, "users"), "[]");
	json_decref(j);
}
END_TEST

START_TEST(test_history_frame_with_no_messages)
{
	size_t sent;
	json_t *j = frame_json(protocol_history(HEADROOM, "lobby", NULL, 0, false, NULL, BIG, &sent, NULL));
	ck_assert_uint_eq(json_object_size(j), 5);
	ck_assert(!bool_field(j, "more"));
	ck_assert_str_eq(str_field(j, "type"), "history");
	ck_assert_str_eq(str_field(j, "room"), "lobby");
	assert_json_equals(json_object_get(j, "messages"), "[]");
	ck_assert(!bool_field(j, "truncated"));
	json_decref(j);

	j = frame_json(protocol_history(HEADROOM, "lobby", NULL, 0, true, NULL, BIG, &sent, NULL));
	ck_assert(bool_field(j, "truncated"));
	json_decref(j);
}
END_TEST

START_TEST(test_history_frame_with_two_messages_oldest_first)
{
	confab_envelope m[2] = {
		{ .size = sizeof(m[0]), .kind = CONFAB_ENV_MESSAGE, .room = "lobby",
		  .from = "alice", .id = "n1-5", .body = body_text, .body_len = BODY_LEN,
		  .seq = 5, .ts = 500 },
		{ .size = sizeof(m[1]), .kind = CONFAB_ENV_MESSAGE, .room = "lobby",
		  .from = "bob", .id = "n1-6", .body = "null", .body_len = 4,
		  .seq = 6, .ts = 600 },
	};
	json_t *ref = json_integer(11);
	size_t sent;
	json_t *j = frame_json(protocol_history(HEADROOM, "lobby", m, 2, true, NULL, BIG, &sent, ref));
	ck_assert_uint_eq(sent, 2);
	ck_assert_uint_eq(json_object_size(j), 6);
	ck_assert(!bool_field(j, "more"));
	ck_assert_str_eq(str_field(j, "type"), "history");
	ck_assert_str_eq(str_field(j, "room"), "lobby");
	ck_assert(bool_field(j, "truncated"));
	ck_assert_int_eq(int_field(j, "ref"), 11);

	json_t *list = json_object_get(j, "messages");
	ck_assert(json_is_array(list));
	ck_assert_uint_eq(json_array_size(list), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *msg = json_array_get(list, i);
		ck_assert_uint_eq(json_object_size(msg), 7);
		ck_assert_str_eq(str_field(msg, "type"), "message");
		ck_assert_str_eq(str_field(msg, "room"), "lobby");
		ck_assert_int_eq(int_field(msg, "seq"), (json_int_t)m[i].seq);
		ck_assert_str_eq(str_field(msg, "id"), m[i].id);
		ck_assert_str_eq(str_field(msg, "from"), m[i].from);
		ck_assert_int_eq(int_field(msg, "ts"), m[i].ts);
	}
	assert_json_equals(json_object_get(json_array_get(list, 0), "body"), "{\"a\":[1,2]}");
	ck_assert(json_is_null(json_object_get(json_array_get(list, 1), "body")));
	json_decref(j);
	json_decref(ref);

	j = frame_json(protocol_history(HEADROOM, "lobby", m, 2, false, NULL, BIG, &sent, NULL));
	ck_assert_uint_eq(json_object_size(j), 5);
	ck_assert(!bool_field(j, "truncated"));
	json_decref(j);
}
END_TEST

/* ---- paged replies ------------------------------------------------------- */

#define PAGE_MESSAGES 40

/* 40 messages of about 1 KB each, seq 1..40. */
static confab_envelope *many_messages(char **body)
{
	static char ids[PAGE_MESSAGES][16];
	confab_envelope *m = calloc(PAGE_MESSAGES, sizeof(*m));
	*body = malloc(1002);
	ck_assert(m && *body);
	(*body)[0] = '"';
	memset(*body + 1, 'x', 1000);
	(*body)[1001] = '"';
	for (size_t i = 0; i < PAGE_MESSAGES; i++) {
		snprintf(ids[i], sizeof(ids[i]), "n1-%zu", i + 1);
		m[i] = (confab_envelope){ .size = sizeof(m[i]), .kind = CONFAB_ENV_MESSAGE,
					  .room = "lobby", .from = "alice", .id = ids[i],
					  .body = *body, .body_len = 1002, .seq = i + 1, .ts = 1 };
	}
	return m;
}

START_TEST(test_history_larger_than_the_budget_comes_in_pages_in_order)
{
	char *body;
	confab_envelope *m = many_messages(&body);
	json_t *ref = json_string("page");
	size_t budget = 4000, at = 0, pages = 0;
	while (at < PAGE_MESSAGES) {
		size_t sent;
		confab_buf *b = protocol_history(HEADROOM, "lobby", m + at, PAGE_MESSAGES - at, false, NULL, budget,
						 &sent, ref);
		ck_assert_ptr_nonnull(b);
		ck_assert_uint_le(b->len, budget);
		json_t *j = frame_json(b);
		json_t *list = json_object_get(j, "messages");
		ck_assert_uint_eq(json_array_size(list), sent);
		ck_assert_uint_ge(sent, 1);
		for (size_t i = 0; i < sent; i++)
			ck_assert_int_eq(int_field(json_array_get(list, i), "seq"),
					 (json_int_t)(at + i + 1));
		ck_assert(bool_field(j, "more") == (at + sent < PAGE_MESSAGES));
		ck_assert_str_eq(str_field(j, "ref"), "page");
		json_decref(j);
		at += sent;
		pages++;
	}
	ck_assert_uint_eq(pages, (PAGE_MESSAGES + 2) / 3);   /* 3 messages of ~1.1 KB a page */
	json_decref(ref);
	free(m);
	free(body);
}
END_TEST

START_TEST(test_a_page_holds_at_least_one_item_whatever_the_budget)
{
	char *body;
	confab_envelope *m = many_messages(&body);
	size_t sent;
	json_t *j = frame_json(protocol_history(HEADROOM, "lobby", m, 2, false, NULL, 10, &sent, NULL));
	ck_assert_uint_eq(sent, 1);
	ck_assert(bool_field(j, "more"));
	json_decref(j);
	j = frame_json(protocol_history(HEADROOM, "lobby", m, 1, false, NULL, 10, &sent, NULL));
	ck_assert_uint_eq(sent, 1);
	ck_assert(!bool_field(j, "more"));
	json_decref(j);
	static const char *const users[] = { "a", "b" };
	j = frame_json(protocol_presence(HEADROOM, "lobby", users, 2, 10, &sent, NULL));
	ck_assert_uint_eq(sent, 1);
	ck_assert(bool_field(j, "more"));
	json_decref(j);
	free(m);
	free(body);
}
END_TEST

START_TEST(test_presence_of_a_huge_room_comes_in_pages)
{
	enum { N = 3000 };
	static char names[N][16];
	static const char *users[N];
	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "user-%05zu", i);
		users[i] = names[i];
	}
	size_t budget = 2048, at = 0;
	while (at < N) {
		size_t sent;
		confab_buf *b = protocol_presence(HEADROOM, "lobby", users + at, N - at, budget, &sent, NULL);
		ck_assert_ptr_nonnull(b);
		ck_assert_uint_le(b->len, budget);
		json_t *j = frame_json(b);
		json_t *list = json_object_get(j, "users");
		ck_assert_uint_eq(json_array_size(list), sent);
		for (size_t i = 0; i < sent; i++)
			ck_assert_str_eq(json_string_value(json_array_get(list, i)), names[at + i]);
		ck_assert(bool_field(j, "more") == (at + sent < N));
		json_decref(j);
		at += sent;
	}
}
END_TEST

START_TEST(test_presence_after_must_be_a_user_name)
{
	request req;
	parse_ok("{\"type\":\"presence\",\"room\":\"r\",\"after\":\"guest-1a2b3c4d\"}", &req);
	ck_assert_str_eq(req.after, "guest-1a2b3c4d");
	request_free(&req);
	parse_ok("{\"type\":\"presence\",\"room\":\"r\"}", &req);
	ck_assert_ptr_null(req.after);
	request_free(&req);
	assert_bad_request("{\"type\":\"presence\",\"room\":\"r\",\"after\":1}");
	assert_bad_request("{\"type\":\"presence\",\"room\":\"r\",\"after\":\"\"}");
}
END_TEST

static size_t fake_budget(void *state, void *conn)
{
	(void)conn;
	return *(size_t *)state;
}

static int fake_send(void *state, void *conn, confab_buf *frame)
{
	(void)state;
	(void)conn;
	(void)frame;
	return 0;
}

START_TEST(test_reply_budget_is_half_the_transports_or_fixed_before_abi_1_3)
{
	size_t left = 100000;
	confab_transport_ops ops = { .size = sizeof(ops), .send = fake_send,
				     .send_budget = fake_budget };
	ck_assert_uint_eq(session_reply_budget_of(&ops, &left, NULL), 50000);
	/* a transport built at ABI 1.2: its table ends before send_budget */
	ops.size = (uint32_t)offsetof(confab_transport_ops, send_budget);
	ck_assert_uint_eq(session_reply_budget_of(&ops, &left, NULL), SESSION_REPLY_BUDGET);
	ops.size = sizeof(ops);
	ops.send_budget = NULL;
	ck_assert_uint_eq(session_reply_budget_of(&ops, &left, NULL), SESSION_REPLY_BUDGET);
}
END_TEST

/* ---- room epochs (protocol v1 addition, ABI 1.3) ---------------------------- */

START_TEST(test_history_gives_the_epoch_the_client_knows)
{
	request req;
	parse_ok("{\"type\":\"history\",\"room\":\"r\",\"since\":5,\"epoch\":\"0123abcdef456789\"}",
		 &req);
	ck_assert_str_eq(req.epoch, "0123abcdef456789");
	request_free(&req);
	parse_ok("{\"type\":\"history\",\"room\":\"r\"}", &req);
	ck_assert_ptr_null(req.epoch);
	request_free(&req);
}
END_TEST

START_TEST(test_history_epoch_must_be_1_to_32_of_digits_and_lowercase_letters)
{
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"epoch\":\"\"}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"epoch\":\"ABC\"}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"epoch\":\"a b\"}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"epoch\":\"a\\u0000b\"}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\",\"epoch\":12}");
	assert_bad_request("{\"type\":\"history\",\"room\":\"r\","
			   "\"epoch\":\"0123456789abcdef0123456789abcdefg\"}");
	ck_assert(protocol_valid_epoch("0123456789abcdef0123456789abcdef"));
	ck_assert(protocol_valid_epoch("z"));
}
END_TEST

START_TEST(test_joined_frame_carries_the_epoch_when_there_is_one)
{
	json_t *ref = json_string("j2");
	json_t *j = frame_json(protocol_joined(HEADROOM, "lobby", "00ff00ff00ff00ff", ref));
	ck_assert_uint_eq(json_object_size(j), 4);
	ck_assert_str_eq(str_field(j, "type"), "joined");
	ck_assert_str_eq(str_field(j, "epoch"), "00ff00ff00ff00ff");
	ck_assert_str_eq(str_field(j, "ref"), "j2");
	json_decref(j);
	json_decref(ref);
	j = frame_json(protocol_joined(HEADROOM, "lobby", NULL, NULL));
	ck_assert_uint_eq(json_object_size(j), 2);
	json_decref(j);
}
END_TEST

START_TEST(test_message_and_history_frames_carry_the_epoch)
{
	confab_envelope m = {
		.size = sizeof(m), .kind = CONFAB_ENV_MESSAGE, .room = "lobby", .from = "alice",
		.id = "n1-5", .body = "1", .body_len = 1, .seq = 5, .ts = 500,
		.epoch = "00ff00ff00ff00ff",
	};
	size_t sent;
	json_t *j = frame_json(protocol_envelope(HEADROOM, &m));
	ck_assert_str_eq(str_field(j, "epoch"), "00ff00ff00ff00ff");
	json_decref(j);
	j = frame_json(protocol_history(HEADROOM, "lobby", &m, 1, false, "00ff00ff00ff00ff", BIG, &sent, NULL));
	ck_assert_str_eq(str_field(j, "epoch"), "00ff00ff00ff00ff");
	ck_assert_str_eq(str_field(json_array_get(json_object_get(j, "messages"), 0), "epoch"),
			 "00ff00ff00ff00ff");
	json_decref(j);
}
END_TEST

START_TEST(test_an_envelope_of_a_backplane_before_1_3_has_no_epoch_read)
{
	/* Built at 1.2's size: whatever lies past it is not the envelope's. */
	confab_envelope m = {
		.size = (uint32_t)offsetof(confab_envelope, epoch), .kind = CONFAB_ENV_MESSAGE,
		.room = "lobby", .from = "alice", .id = "n1-5", .body = "1", .body_len = 1,
		.seq = 5, .ts = 500, .epoch = "not-to-be-read",
	};
	json_t *j = frame_json(protocol_envelope(HEADROOM, &m));
	ck_assert_ptr_null(json_object_get(j, "epoch"));
	ck_assert_uint_eq(json_object_size(j), 7);
	json_decref(j);
}
END_TEST

/* ---- the frame builder ---------------------------------------------------- */

START_TEST(test_json_string_escapes_quotes_backslashes_and_control_chars)
{
	static const char text[] = "say \"hi\"\x01\x1f\x7f\n\r\t\\ back \xc3\xa9 end";
	frame_builder fb;
	fb_init(&fb, HEADROOM, 8);
	fb_json_string(&fb, text);
	confab_buf *b = fb_finish(&fb);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->headroom, HEADROOM);

	json_error_t e;
	json_t *j = json_loadb((const char *)b->data, b->len, JSON_DECODE_ANY, &e);
	ck_assert_msg(j != NULL, "not JSON (%s): %.*s", e.text, (int)b->len,
		      (const char *)b->data);
	ck_assert(json_is_string(j));
	ck_assert_str_eq(json_string_value(j), text);
	json_decref(j);
	buf_unref(b);
}
END_TEST

START_TEST(test_builder_grows_for_long_printf_and_raw_text)
{
	char *long_text = repeat('y', 3000);
	frame_builder fb;
	fb_init(&fb, HEADROOM, 1);
	fb_str(&fb, "[");
	fb_printf(&fb, "\"%s\",%d", long_text, 7);
	fb_str(&fb, ",");
	fb_uint(&fb, UINT64_MAX);
	fb_str(&fb, ",");
	fb_int(&fb, INT64_MIN);
	fb_str(&fb, "]");
	confab_buf *b = fb_finish(&fb);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->len, 1 + 3002 + 2 + 1 + 20 + 1 + 20 + 1);
	ck_assert_msg(memcmp(b->data + b->len - 43, ",18446744073709551615,-9223372036854775808]",
			     43) == 0, "numbers: %.*s", 43, (const char *)b->data + b->len - 43);
	buf_unref(b);
	free(long_text);

	/* a discarded builder frees its buffer */
	fb_init(&fb, HEADROOM, 16);
	fb_str(&fb, "half a frame");
	fb_discard(&fb);
}
END_TEST

START_TEST(test_nesting_past_max_json_depth_is_bad_request_before_parsing)
{
	max_depth = 4;
	request req;
	/* four levels: the object and three arrays */
	parse_ok_at("{\"type\":\"send\",\"room\":\"r\",\"body\":[[[1]]]}", &req, __LINE__);
	request_free(&req);
	assert_bad_request("{\"type\":\"send\",\"room\":\"r\",\"body\":[[[[1]]]]}");
	/* brackets inside strings do not count */
	parse_ok_at("{\"type\":\"send\",\"room\":\"r\",\"body\":\"[[[[[[\\\"{{{{\"}", &req, __LINE__);
	request_free(&req);
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *s = suite_create("protocol");

	TCase *tc = tcase_create("requests");
	tcase_add_test(tc, test_join_leave_presence_give_the_room);
	tcase_add_test(tc, test_send_gives_room_body_and_ref);
	tcase_add_test(tc, test_send_body_may_be_any_json_value_even_null);
	tcase_add_test(tc, test_direct_gives_to_body_and_a_number_ref);
	tcase_add_test(tc, test_body_text_is_the_senders_bytes);
	tcase_add_test(tc, test_body_scanner_stays_inside_any_text);
	tcase_add_test(tc, test_presence_after_must_be_a_user_name);
	tcase_add_test(tc, test_a_frame_of_numbers_is_not_amplified);
	tcase_add_test(tc, test_direct_to_a_user_with_an_at_sign_is_valid);
	tcase_add_test(tc, test_history_gives_since_and_limit_when_present);
	tcase_add_test(tc, test_ping_with_string_integer_or_real_ref);
	tcase_add_test(tc, test_room_of_64_bytes_and_every_allowed_character_is_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad_request");
	tcase_add_test(tc, test_frame_that_is_not_json_is_bad_request);
	tcase_add_test(tc, test_frame_that_is_not_an_object_is_bad_request);
	tcase_add_test(tc, test_missing_or_mistyped_type_is_bad_request);
	tcase_add_test(tc, test_unknown_type_is_bad_request);
	tcase_add_test(tc, test_missing_or_mistyped_room_is_bad_request);
	tcase_add_test(tc, test_bad_room_names_are_bad_request);
	tcase_add_test(tc, test_send_or_direct_without_body_is_bad_request);
	tcase_add_test(tc, test_direct_without_a_valid_to_is_bad_request);
	tcase_add_test(tc, test_history_since_must_be_a_non_negative_integer);
	tcase_add_test(tc, test_history_limit_must_be_a_positive_integer);
	tcase_add_test(tc, test_ref_that_is_not_a_string_or_number_is_bad_request);
	tcase_add_test(tc, test_duplicate_keys_are_bad_request);
	tcase_add_test(tc, test_errors_after_the_object_is_parsed_keep_the_ref_to_echo);
	tcase_add_test(tc, test_errors_before_a_good_ref_is_seen_have_no_ref);
	tcase_add_test(tc, test_error_about_a_long_non_ascii_type_is_still_valid_json);
	tcase_add_test(tc, test_error_about_non_json_with_non_ascii_is_still_valid_json);
	tcase_add_test(tc, test_room_and_user_name_rules);
	suite_add_tcase(s, tc);

	tc = tcase_create("frames");
	tcase_add_test(tc, test_buffers_get_the_headroom_asked_for);
	tcase_add_test(tc, test_welcome_frame_has_session_user_node_and_protocol_1);
	tcase_add_test(tc, test_error_frame_echoes_a_string_ref);
	tcase_add_test(tc, test_error_frame_echoes_a_number_ref);
	tcase_add_test(tc, test_error_frame_without_ref_has_no_ref_key);
	tcase_add_test(tc, test_error_message_with_a_quote_and_control_chars_round_trips);
	tcase_add_test(tc, test_joined_left_and_pong_frames);
	tcase_add_test(tc, test_room_ack_has_room_seq_id_ts_and_ref);
	tcase_add_test(tc, test_direct_ack_has_id_ts_and_ref_but_no_room);
	tcase_add_test(tc, test_message_envelope_becomes_a_message_frame_with_body_verbatim);
	tcase_add_test(tc, test_direct_envelope_becomes_a_direct_frame);
	tcase_add_test(tc, test_member_envelopes_become_member_join_and_leave_frames);
	tcase_add_test(tc, test_large_body_is_carried_whole);
	tcase_add_test(tc, test_presence_frame_keeps_the_order_given);
	tcase_add_test(tc, test_presence_frame_of_an_empty_room_has_an_empty_list);
	tcase_add_test(tc, test_history_frame_with_no_messages);
	tcase_add_test(tc, test_history_frame_with_two_messages_oldest_first);
	tcase_add_test(tc, test_history_gives_the_epoch_the_client_knows);
	tcase_add_test(tc, test_history_epoch_must_be_1_to_32_of_digits_and_lowercase_letters);
	tcase_add_test(tc, test_joined_frame_carries_the_epoch_when_there_is_one);
	tcase_add_test(tc, test_message_and_history_frames_carry_the_epoch);
	tcase_add_test(tc, test_an_envelope_of_a_backplane_before_1_3_has_no_epoch_read);
	tcase_add_test(tc, test_json_string_escapes_quotes_backslashes_and_control_chars);
	tcase_add_test(tc, test_builder_grows_for_long_printf_and_raw_text);
	tcase_add_test(tc, test_nesting_past_max_json_depth_is_bad_request_before_parsing);
	suite_add_tcase(s, tc);

	tc = tcase_create("pages");
	tcase_add_test(tc, test_history_larger_than_the_budget_comes_in_pages_in_order);
	tcase_add_test(tc, test_a_page_holds_at_least_one_item_whatever_the_budget);
	tcase_add_test(tc, test_presence_of_a_huge_room_comes_in_pages);
	tcase_add_test(tc, test_reply_budget_is_half_the_transports_or_fixed_before_abi_1_3);
	tcase_add_test(tc, test_send_and_direct_take_an_idem_key);
	tcase_add_test(tc, test_bad_idem_keys_are_bad_request);
	tcase_add_test(tc, test_unknown_outcome_frame_says_so_with_the_id);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	srunner_run_all(sr, CK_VERBOSE);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
