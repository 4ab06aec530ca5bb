/* Unit tests for what a reload of a Redis backplane compares
 * (plugins/redislink/rsettings.c): each reader notes the value it took,
 * as the node uses it, and rset_log_changes warns once per key that
 * differs between two readings, never printing a secret.
 *
 * Against a fake host whose section is a table the test fills; numbers
 * and booleans parsed as the broker's slots do.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <confab/util.h>

#include "rsettings.h"
#include "unit_main.h"

/* ---- the fake host: one section, and the lines logged ---------------------- */

enum { MAX_KEYS = 40, MAX_LINES = 48 };

static struct {
	const char *key[MAX_KEYS];
	const char *value[MAX_KEYS];
	size_t n;
} section;

static char lines[MAX_LINES][512];
static size_t n_lines;

static void set(const char *key, const char *value)
{
	ck_assert_uint_lt(section.n, MAX_KEYS);
	section.key[section.n] = key;
	section.value[section.n++] = value;
}

static const char *fake_get(confab_ctx *ctx, const char *key)
{
	(void)ctx;
	for (size_t i = 0; i < section.n; i++)
		if (strcmp(section.key[i], key) == 0)
			return section.value[i];
	return NULL;
}

__attribute__((format(printf, 3, 4)))
static void fake_log(confab_ctx *ctx, confab_log_level level, const char *fmt, ...)
{
	va_list ap;
	int n;

	(void)ctx;
	ck_assert_uint_lt(n_lines, MAX_LINES);
	n = snprintf(lines[n_lines], sizeof(lines[0]), "%s ",
		     level == CONFAB_LOG_WARN ? "warn" : level == CONFAB_LOG_ERROR ? "error" : "info");
	va_start(ap, fmt);
	vsnprintf(lines[n_lines] + n, sizeof(lines[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	n_lines++;
}

__attribute__((format(printf, 3, 4)))
static void fake_error(confab_ctx *ctx, const char *key, const char *fmt, ...)
{
	(void)ctx;
	(void)key;
	(void)fmt;
	ck_abort_msg("a good value was reported as bad");
}

static int fake_uint(confab_ctx *ctx, const char *key, uint64_t def, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	const char *v = fake_get(ctx, key);

	*out = def;
	return v == NULL || confab_parse_uint(v, min, max, out) ? 0 : CONFAB_EINVAL;
}

static int fake_bool(confab_ctx *ctx, const char *key, bool def, bool *out)
{
	const char *v = fake_get(ctx, key);

	*out = v == NULL ? def : strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0 ||
				 strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0;
	return 0;
}

static const char *fake_name(confab_ctx *ctx)
{
	(void)ctx;
	return "redis";
}

static const confab_host host = {
	.size = sizeof(confab_host),
	.log = fake_log,
	.name = fake_name,
	.config_get = fake_get,
	.config_error = fake_error,
	.config_uint = fake_uint,
	.config_bool = fake_bool,
};

/* One reading of the section as it is now, into *seen. */
static void read_into(rset_seen *seen)
{
	rset r = { .host = &host, .seen = seen };
	unsigned u;
	bool b;
	size_t n;
	rset_addr addrs[4];

	memset(seen, 0, sizeof(*seen));
	ck_assert_ptr_nonnull(rset_get(&r, "host", "127.0.0.1"));
	ck_assert_int_eq(rset_uint(&r, "port", 6379, 1, 65535, &u), 0);
	ck_assert_int_eq(rset_bool(&r, "tls", false, &b), 0);
	(void)rset_secret(&r, "password");
	(void)rset_text(&r, "master_name");
	ck_assert_int_eq(rset_addrs(&r, "sentinels", 26379, addrs, 4, &n), 0);
}

/* The section changed as the test says, read again, compared. */
static size_t changes(const rset_seen *running)
{
	rset r = { .host = &host };
	rset_seen next;

	read_into(&next);
	n_lines = 0;
	return rset_log_changes(&r, running, &next);
}

static void reset(void)
{
	section.n = 0;
	n_lines = 0;
}

/* A section of `key` = `was` alone (NULL: absent), read, then `key` =
 * `now`: how many changes the second reading logs (into lines[]). */
static size_t one_key_changed(const char *key, const char *was, const char *now)
{
	rset_seen running;

	reset();
	set(key, was);
	read_into(&running);
	section.value[0] = now;
	return changes(&running);
}

/* ---- tests ------------------------------------------------------------------ */

START_TEST(a_changed_value_is_one_warning_with_the_new_and_the_old)
{
	ck_assert_uint_eq(one_key_changed("port", "6389", "6390"), 1);
	ck_assert_uint_eq(n_lines, 1);
	ck_assert_str_eq(lines[0], "warn port changed to '6390': needs a restart; keeping '6389'");
}
END_TEST

START_TEST(the_same_values_however_written_are_no_change)
{
	rset_seen running;

	reset();
	set("port", "6390");
	set("password", "pw-1");
	set("tls", "no");
	read_into(&running);
	ck_assert_uint_eq(changes(&running), 0);       /* the same file again */
	reset();
	set("tls", "off");
	set("password", "pw-1");
	set("host", "127.0.0.1");                      /* the default, written out */
	set("port", "06390");
	ck_assert_uint_eq(changes(&running), 0);
	ck_assert_uint_eq(n_lines, 0);
	/* absent, then its default written out */
	ck_assert_uint_eq(one_key_changed("port", NULL, "6379"), 0);
	ck_assert_uint_eq(one_key_changed("tls", NULL, "false"), 0);
}
END_TEST

START_TEST(a_secret_is_named_without_its_values)
{
	ck_assert_uint_eq(one_key_changed("password", "old-secret", "new-secret"), 1);
	ck_assert_uint_eq(n_lines, 1);
	ck_assert_str_eq(lines[0], "warn password changed: needs a restart");
	/* set, then emptied: a change too, still without the value */
	ck_assert_uint_eq(one_key_changed("password", "old-secret", ""), 1);
	ck_assert_str_eq(lines[0], "warn password changed: needs a restart");
}
END_TEST

START_TEST(a_key_only_one_reading_took_counts_as_empty)
{
	rset r = { .host = &host };
	rset_seen running, next;

	reset();
	read_into(&running);
	memset(&next, 0, sizeof(next));   /* a reading that took nothing */
	next.keys[0] = (rset_seen_key){ .key = "sentinels", .text = "10.0.0.1:26379" };
	next.n = 1;
	/* host, port, tls, and sentinels (running took it empty); not
	 * password or master_name, empty in one and absent from the other */
	ck_assert_uint_eq(rset_log_changes(&r, &running, &next), 4);
	ck_assert_str_eq(lines[0], "warn host changed to '': needs a restart; keeping '127.0.0.1'");
	ck_assert_str_eq(lines[2], "warn tls changed to '': needs a restart; keeping 'no'");
	ck_assert_str_eq(lines[3], "warn sentinels changed to '10.0.0.1:26379': needs a restart; "
				   "keeping ''");
	n_lines = 0;
	ck_assert_uint_eq(rset_log_changes(&r, &next, &running), 4);
	ck_assert_str_eq(lines[0], "warn sentinels changed to '': needs a restart; "
				   "keeping '10.0.0.1:26379'");
	ck_assert_str_eq(lines[1], "warn host changed to '127.0.0.1': needs a restart; "
				   "keeping ''");
}
END_TEST

START_TEST(more_keys_than_the_table_holds_are_logged_as_an_error)
{
	static const char *const keys[RSET_SEEN_MAX + 1] = {
		"k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10",
		"k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19", "k20", "k21",
		"k22", "k23", "k24", "k25", "k26", "k27", "k28", "k29", "k30", "k31", "k32",
	};
	rset_seen seen;
	rset r = { .host = &host, .seen = &seen };

	reset();
	memset(&seen, 0, sizeof(seen));
	for (size_t i = 0; i < RSET_SEEN_MAX + 1; i++)
		(void)rset_text(&r, keys[i]);
	ck_assert_uint_eq(seen.n, RSET_SEEN_MAX);
	ck_assert_uint_eq(n_lines, 1);
	ck_assert_msg(strncmp(lines[0], "error more than 32 settings read", 32) == 0, "%s",
		      lines[0]);
	(void)rset_text(&r, keys[0]);     /* a key read again takes no new entry */
	ck_assert_uint_eq(seen.n, RSET_SEEN_MAX);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		a_changed_value_is_one_warning_with_the_new_and_the_old,
		the_same_values_however_written_are_no_change,
		a_secret_is_named_without_its_values,
		a_key_only_one_reading_took_counts_as_empty,
		more_keys_than_the_table_holds_are_logged_as_an_error,
	};

	return unit_main("rsettings", tests, sizeof(tests) / sizeof(tests[0]), 0);
}
