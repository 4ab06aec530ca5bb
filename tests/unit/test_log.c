/* core/log.c: the escaping of client text in both formats, and that a
 * whole line (text or JSON, with fields) stays one line.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "unit_main.h"

static const char *esc(const char *in, log_format f)
{
	static char out[256];
	log_escape(out, sizeof(out), in, f);
	return out;
}

START_TEST(test_text_keeps_utf8_and_escapes_controls_and_bad_bytes)
{
	ck_assert_str_eq(esc("plain [x] text", LOG_FORMAT_TEXT), "plain [x] text");
	ck_assert_str_eq(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", LOG_FORMAT_TEXT),
			 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	ck_assert_str_eq(esc("a\nb\rc\td\x1b[0m", LOG_FORMAT_TEXT), "a\\x0Ab\\x0Dc\\x09d\\x1B[0m");
	ck_assert_str_eq(esc("del\x7f", LOG_FORMAT_TEXT), "del\\x7F");
	/* C1 controls (U+0085 NEL, U+009B CSI) but not U+00A0 */
	ck_assert_str_eq(esc("\xc2\x85\xc2\x9b\xc2\xa0", LOG_FORMAT_TEXT),
			 "\\xC2\\x85\\xC2\\x9B\xc2\xa0");
	/* not UTF-8: a lone continuation, an overlong '/', a cut sequence */
	ck_assert_str_eq(esc("\x80|\xc0\xaf|\xe2\x82", LOG_FORMAT_TEXT),
			 "\\x80|\\xC0\\xAF|\\xE2\\x82");
	ck_assert_str_eq(esc("quote \" back \\", LOG_FORMAT_TEXT), "quote \" back \\");
}
END_TEST

START_TEST(test_json_escapes_as_a_string_and_replaces_bad_bytes)
{
	ck_assert_str_eq(esc("caf\xc3\xa9", LOG_FORMAT_JSON), "caf\xc3\xa9");
	ck_assert_str_eq(esc("q\"b\\", LOG_FORMAT_JSON), "q\\\"b\\\\");
	ck_assert_str_eq(esc("a\nb\rc\td\x01\x1f\x7f", LOG_FORMAT_JSON),
			 "a\\nb\\rc\\td\\u0001\\u001f\\u007f");
	ck_assert_str_eq(esc("\xc2\x9b\xc2\xa0", LOG_FORMAT_JSON), "\\u009b\xc2\xa0");
	ck_assert_str_eq(esc("x\xff\xc3y", LOG_FORMAT_JSON), "x\\ufffd\\ufffdy");
}
END_TEST

START_TEST(test_escape_cuts_before_an_escape_that_does_not_fit)
{
	char out[8];
	ck_assert_uint_eq(log_escape(out, sizeof(out), "abcd\nef", LOG_FORMAT_TEXT), 4);
	ck_assert_str_eq(out, "abcd");
	ck_assert_uint_eq(log_escape(out, sizeof(out), "ab\xe2\x82\xac\xe2\x82\xac", LOG_FORMAT_TEXT),
			  5);
	ck_assert_str_eq(out, "ab\xe2\x82\xac");
	ck_assert_uint_eq(log_escape(out, 1, "abc", LOG_FORMAT_JSON), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_formats_parse_by_name)
{
	log_format f = LOG_FORMAT_TEXT;
	ck_assert(log_parse_format("json", &f) && f == LOG_FORMAT_JSON);
	ck_assert(log_parse_format("text", &f) && f == LOG_FORMAT_TEXT);
	ck_assert(!log_parse_format("yaml", &f));
	ck_assert(!log_parse_format("JSON", &f));
	ck_assert_str_eq(log_format_name(LOG_FORMAT_JSON), "json");
}
END_TEST

/* Runs one log call with stderr sent to a file; returns what it wrote. */
static const char *captured(log_format format)
{
	static char text[4096];
	FILE *tmp = tmpfile();
	ck_assert_ptr_nonnull(tmp);
	int saved = dup(STDERR_FILENO);
	fflush(stderr);
	ck_assert_int_ge(dup2(fileno(tmp), STDERR_FILENO), 0);
	log_set_format(format);
	log_field fields[] = { LOG_TEXT("user", "ev\nil"), LOG_INT("code", 4001),
			       LOG_NULL("none") };
	log_event(CONFAB_LOG_INFO, "wh\"o", fields, 3, "said %s", "hi\n2000-01-01 forged\x1b");
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	log_set_format(LOG_FORMAT_TEXT);
	rewind(tmp);
	size_t n = fread(text, 1, sizeof(text) - 1, tmp);
	text[n] = '\0';
	fclose(tmp);
	return text;
}

START_TEST(test_a_line_with_client_text_stays_one_line)
{
	const char *t = captured(LOG_FORMAT_TEXT);
	ck_assert_ptr_nonnull(strstr(t, " info  [wh\"o] said hi\\x0A2000-01-01 forged\\x1B\n"));
	ck_assert_ptr_eq(strchr(t, '\n'), t + strlen(t) - 1);

	const char *j = captured(LOG_FORMAT_JSON);
	ck_assert_ptr_nonnull(strstr(j, "\",\"level\":\"info\",\"who\":\"wh\\\"o\","
				      "\"msg\":\"said hi\\n2000-01-01 forged\\u001b\","
				      "\"user\":\"ev\\nil\",\"code\":4001,\"none\":null}\n"));
	ck_assert(strncmp(j, "{\"time\":\"", 9) == 0);
	ck_assert_ptr_eq(strchr(j, '\n'), j + strlen(j) - 1);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		test_text_keeps_utf8_and_escapes_controls_and_bad_bytes,
		test_json_escapes_as_a_string_and_replaces_bad_bytes,
		test_escape_cuts_before_an_escape_that_does_not_fit,
		test_formats_parse_by_name,
		test_a_line_with_client_text_stays_one_line,
	};

	return unit_main("log", tests, sizeof(tests) / sizeof(*tests), 0);
}
