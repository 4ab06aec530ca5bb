/* Unit tests for the series registry and the Prometheus text writer
 * (core/metrics.c): what registration refuses, how updates are checked,
 * and the exact text a render produces.
 *
 * SPDX-License-Identifier: MIT
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "unit_main.h"

static int owner_a, owner_b;  /* two plugin instances, by address */

static int fam(metrics *m, const void *owner, uint32_t type, const char *name,
	       const char *const *labels, size_t n_labels)
{
	char err[200];
	confab_metric_family f = {
		.size = sizeof(f), .type = type, .name = name, .help = "help",
		.labels = labels, .n_labels = n_labels,
	};
	return metrics_family(m, owner, &f, err, sizeof(err));
}

START_TEST(test_names_labels_and_types_are_checked)
{
	metrics m;
	metrics_init(&m);
	const char *le[] = { "le" }, *dunder[] = { "__a" }, *twice[] = { "a", "a" };
	ck_assert_int_ge(fam(&m, &owner_a, CONFAB_METRIC_COUNTER, "a_total", NULL, 0), 0);
	ck_assert_int_eq(fam(&m, &owner_a, CONFAB_METRIC_COUNTER, "a", NULL, 0), CONFAB_EINVAL);
	ck_assert_int_eq(fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "b_total", NULL, 0), CONFAB_EINVAL);
	ck_assert_int_eq(fam(&m, &owner_b, CONFAB_METRIC_COUNTER, "a_total", NULL, 0), CONFAB_EINVAL);
	ck_assert_int_eq(fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "9x", NULL, 0), CONFAB_EINVAL);
	ck_assert_int_eq(fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "x-y", NULL, 0), CONFAB_EINVAL);
	ck_assert_int_eq(fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "", NULL, 0), CONFAB_EINVAL);
	ck_assert_int_eq(fam(&m, &owner_a, 7, "x", NULL, 0), CONFAB_EINVAL);
	ck_assert_int_eq(fam(&m, &owner_a, CONFAB_METRIC_HISTOGRAM, "h", le, 1), CONFAB_EINVAL);
	ck_assert_int_eq(fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "g", dunder, 1), CONFAB_EINVAL);
	ck_assert_int_eq(fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "g", twice, 2), CONFAB_EINVAL);
	ck_assert_int_ge(fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "ns:g", le, 1), 0);
	/* a histogram's derived names are taken too */
	ck_assert_int_ge(fam(&m, &owner_a, CONFAB_METRIC_HISTOGRAM, "h", NULL, 0), 0);
	ck_assert_int_eq(fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "h_count", NULL, 0), CONFAB_EINVAL);
	ck_assert_int_eq(fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "h_bucket", NULL, 0), CONFAB_EINVAL);
	metrics_free(&m);
}
END_TEST

START_TEST(test_buckets_must_increase_and_be_finite)
{
	metrics m;
	char err[200];
	metrics_init(&m);
	const double down[] = { 1, 0.5 }, inf[] = { 1, INFINITY }, ok[] = { 0.5, 1 };
	confab_metric_family f = { .size = sizeof(f), .type = CONFAB_METRIC_HISTOGRAM,
				   .name = "h", .help = "x", .buckets = down, .n_buckets = 2 };
	ck_assert_int_eq(metrics_family(&m, &owner_a, &f, err, sizeof(err)), CONFAB_EINVAL);
	ck_assert(strstr(err, "increasing") != NULL);
	f.buckets = inf;
	ck_assert_int_eq(metrics_family(&m, &owner_a, &f, err, sizeof(err)), CONFAB_EINVAL);
	f.buckets = ok;
	ck_assert_int_ge(metrics_family(&m, &owner_a, &f, err, sizeof(err)), 0);
	f.name = "g";
	f.type = CONFAB_METRIC_GAUGE;  /* buckets on a gauge */
	ck_assert_int_eq(metrics_family(&m, &owner_a, &f, err, sizeof(err)), CONFAB_EINVAL);
	metrics_free(&m);
}
END_TEST

START_TEST(test_series_are_found_again_and_updates_check_owner_and_type)
{
	metrics m;
	metrics_init(&m);
	const char *labels[] = { "k" };
	const char *x[] = { "x" }, *y[] = { "y" }, *none[] = { NULL };
	int c = fam(&m, &owner_a, CONFAB_METRIC_COUNTER, "c_total", labels, 1);
	int g = fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "g", NULL, 0);
	int sx = metrics_series(&m, &owner_a, c, x);
	int sy = metrics_series(&m, &owner_a, c, y);
	int sg = metrics_series(&m, &owner_a, g, NULL);
	ck_assert_int_ge(sx, 0);
	ck_assert_int_ne(sx, sy);
	ck_assert_int_eq(metrics_series(&m, &owner_a, c, x), sx);
	ck_assert_int_eq(metrics_series(&m, &owner_b, c, x), CONFAB_EINVAL);
	ck_assert_int_eq(metrics_series(&m, &owner_a, c, none), CONFAB_EINVAL);
	ck_assert_int_eq(metrics_series(&m, &owner_a, 99, x), CONFAB_EINVAL);

	metrics_add_checked(&m, &owner_a, sx, 3);
	metrics_add_checked(&m, &owner_a, sx, -1);   /* counters only go up */
	metrics_add_checked(&m, &owner_b, sx, 100);  /* not b's */
	metrics_set_checked(&m, &owner_a, sx, 50);   /* not a gauge */
	metrics_add_checked(&m, &owner_a, -1, 1);
	metrics_add_checked(&m, &owner_a, 1 << 20, 1);
	ck_assert_int_eq(m.series[sx].value, 3);
	metrics_set_checked(&m, &owner_a, sg, 10);
	metrics_add_checked(&m, &owner_a, sg, -4);
	ck_assert_int_eq(m.series[sg].value, 6);
	metrics_free(&m);
}
END_TEST

START_TEST(test_render_writes_help_type_escaped_labels_and_cumulative_buckets)
{
	metrics m;
	char err[200];
	size_t len;
	metrics_init(&m);
	const char *labels[] = { "who", "what" };
	const char *v[] = { "a\"b\\c\nd", "é" };
	confab_metric_family c = { .size = sizeof(c), .type = CONFAB_METRIC_COUNTER,
				   .name = "x_total", .help = "line\\one\ntwo",
				   .labels = labels, .n_labels = 2 };
	const double b[] = { 0.5, 1 };
	confab_metric_family h = { .size = sizeof(h), .type = CONFAB_METRIC_HISTOGRAM,
				   .name = "lat_seconds", .help = "h", .buckets = b, .n_buckets = 2 };
	confab_metric_family empty = { .size = sizeof(empty), .type = CONFAB_METRIC_GAUGE,
				       .name = "unused", .help = "no series: not rendered" };
	int fc = metrics_family(&m, &owner_a, &c, err, sizeof(err));
	int fh = metrics_family(&m, &owner_a, &h, err, sizeof(err));
	ck_assert_int_ge(metrics_family(&m, &owner_a, &empty, err, sizeof(err)), 0);
	int sc = metrics_series(&m, &owner_a, fc, v);
	int sh = metrics_series(&m, &owner_a, fh, NULL);
	metrics_add_checked(&m, &owner_a, sc, 12345678901LL);
	metrics_observe(&m, sh, 0.25);
	metrics_observe(&m, sh, 0.5);    /* le is inclusive */
	metrics_observe(&m, sh, 0.75);
	metrics_observe(&m, sh, 7);
	metrics_observe(&m, sh, NAN);    /* dropped */
	const char *text = metrics_render(&m, &len);
	const char *want =
		"# HELP x_total line\\\\one\\ntwo\n"
		"# TYPE x_total counter\n"
		"x_total{who=\"a\\\"b\\\\c\\nd\",what=\"é\"} 12345678901\n"
		"# HELP lat_seconds h\n"
		"# TYPE lat_seconds histogram\n"
		"lat_seconds_bucket{le=\"0.5\"} 2\n"
		"lat_seconds_bucket{le=\"1\"} 3\n"
		"lat_seconds_bucket{le=\"+Inf\"} 4\n"
		"lat_seconds_sum 8.5\n"
		"lat_seconds_count 4\n";
	ck_assert_str_eq(text, want);
	ck_assert_uint_eq(len, strlen(want));
	metrics_free(&m);
}
END_TEST

START_TEST(test_gauges_render_negative_values_and_labels_with_histograms)
{
	metrics m;
	size_t len;
	metrics_init(&m);
	const char *labels[] = { "shard" };
	const char *v[] = { "3" };
	int g = fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "g", NULL, 0);
	int h = fam(&m, &owner_a, CONFAB_METRIC_HISTOGRAM, "h_seconds", labels, 1);
	metrics_set(&m, metrics_series(&m, &owner_a, g, NULL), -42);
	int sh = metrics_series(&m, &owner_a, h, v);
	metrics_observe(&m, sh, 0.0001);   /* the default buckets: the first */
	const char *text = metrics_render(&m, &len);
	ck_assert(strstr(text, "\ng -42\n") != NULL);
	ck_assert(strstr(text, "h_seconds_bucket{shard=\"3\",le=\"0.0001\"} 1\n") != NULL);
	ck_assert(strstr(text, "h_seconds_bucket{shard=\"3\",le=\"+Inf\"} 1\n") != NULL);
	ck_assert(strstr(text, "h_seconds_count{shard=\"3\"} 1\n") != NULL);
	/* bounds as written, not as binary floating point spells them */
	ck_assert(strstr(text, "le=\"0.1\"} 1\n") != NULL);
	ck_assert(strstr(text, "le=\"0.00025\"} 1\n") != NULL);
	metrics_free(&m);
}
END_TEST

START_TEST(test_ten_thousand_series_render_whole)
{
	metrics m;
	size_t len;
	metrics_init(&m);
	const char *labels[] = { "n" };
	int f = fam(&m, &owner_a, CONFAB_METRIC_GAUGE, "bulk", labels, 1);
	for (int i = 0; i < 10000; i++) {
		char n[16];
		const char *v[] = { n };
		snprintf(n, sizeof(n), "%d", i);
		metrics_set(&m, metrics_series(&m, &owner_a, f, v), i);
	}
	const char *text = metrics_render(&m, &len);
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	ck_assert_uint_eq(lines, 10002);
	ck_assert(strstr(text, "bulk{n=\"9999\"} 9999\n") != NULL);
	metrics_free(&m);
}
END_TEST

int main(void)
{
	const TTest *const tests[] = {
		test_names_labels_and_types_are_checked,
		test_buckets_must_increase_and_be_finite,
		test_series_are_found_again_and_updates_check_owner_and_type,
		test_render_writes_help_type_escaped_labels_and_cumulative_buckets,
		test_gauges_render_negative_values_and_labels_with_histograms,
		test_ten_thousand_series_render_whole,
	};
	return unit_main("metrics", tests, sizeof(tests) / sizeof(tests[0]), 30);
}
