/* confab plugin SDK — a plugin's own Prometheus series (ABI 1.7).
 *
 * The broker serves every series on GET /metrics (Prometheus text format
 * 0.0.4, docs/metrics.md). A plugin adds its own through the table
 * host->metrics (read it only when CONFAB_HAS(host, metrics)):
 *
 *   1. family(): a counter, gauge or histogram: its name, help text, label
 *      names (and a histogram's bucket bounds). Once, at init or start.
 *   2. series(): one child of a family, with its label values fixed for
 *      good. Returns a handle: a small integer.
 *   3. add() / set() / observe() by handle, as often as needed. These cost
 *      an index and an add: no string, no allocation, no lock, so they are
 *      fit for a per-message path.
 *
 * Registration copies every string it is given (borrowing, common.h) and
 * checks it; updates never fail and never log (a bad handle, or a handle
 * of another instance or type, is ignored). Series live until the broker
 * exits; there is no unregistering. Everything runs on the loop thread.
 *
 * Names: a family is `[a-zA-Z_:][a-zA-Z0-9_:]*`, unique in the broker, and
 * should start with "confab_" and the plugin's name (confab_redis_...);
 * counters end in "_total"; values are in base units (seconds, bytes).
 * Label names are `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with "__", and a
 * histogram may not use "le". Label values are any UTF-8 text.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_METRICS_H
#define CONFAB_METRICS_H

#include <confab/common.h>

#ifdef __cplusplus
extern "C" {
#endif

enum confab_metric_type {
	CONFAB_METRIC_COUNTER = 1,   /* only goes up: add() with delta >= 0 */
	CONFAB_METRIC_GAUGE = 2,     /* up and down: add() or set() */
	CONFAB_METRIC_HISTOGRAM = 3  /* observe(): counts values into buckets */
};

/* The most labels a family may have, and buckets a histogram may have. */
#define CONFAB_METRIC_LABELS_MAX 8
#define CONFAB_METRIC_BUCKETS_MAX 32

/* What family() registers. Borrowed: copied during the call. */
typedef struct confab_metric_family {
	uint32_t size;               /* sizeof(confab_metric_family) */
	uint32_t type;               /* a confab_metric_type */
	const char *name;            /* e.g. "confab_redis_reconnects_total" */
	const char *help;            /* one line: what it counts, in what unit */
	const char *const *labels;   /* n_labels label names; NULL when none */
	size_t n_labels;             /* 0 .. CONFAB_METRIC_LABELS_MAX */
	/* Histograms: the upper bounds of the buckets, strictly increasing
	 * and finite (the +Inf bucket is added). NULL/0 takes the latency
	 * default: 100 us to 10 s. Other types: NULL/0. */
	const double *buckets;
	size_t n_buckets;            /* 0 .. CONFAB_METRIC_BUCKETS_MAX */
} confab_metric_family;

typedef struct confab_host_metrics {
	uint32_t size;               /* sizeof(confab_host_metrics) of the core */

	/* Register a family. Returns its id (>= 0), or CONFAB_EINVAL (a bad
	 * name, label, bucket list or type, or a name already taken: logged
	 * with the instance's name) or CONFAB_ENOMEM. */
	int (*family)(confab_ctx *ctx, const confab_metric_family *family);

	/* Register one series of `family` (an id family() returned to this
	 * instance) with `values`: one per label name, in order (NULL when the
	 * family has no labels). Returns the series' handle (>= 0) for
	 * add/set/observe; registering the same values again returns the same
	 * handle. CONFAB_EINVAL (not this instance's family, a NULL value) or
	 * CONFAB_ENOMEM. The series shows in /metrics from now on, at 0. */
	int (*series)(confab_ctx *ctx, int family, const char *const *values);

	/* The updates below never fail and never allocate. A handle that is
	 * not this instance's, or whose family's type does not take that
	 * update (set on a counter, say), is ignored, as a handle < 0 is: a
	 * plugin may keep -1 for a series it could not register. Handles stay
	 * valid until the instance's destroy returns; call these on the loop
	 * thread, from init on. */

	/* Counters and gauges: value += delta (a counter ignores delta < 0). */
	void (*add)(confab_ctx *ctx, int series, int64_t delta);
	/* Gauges: value = v. */
	void (*set)(confab_ctx *ctx, int series, int64_t v);
	/* Histograms: count one observation of `v` (base units: seconds). */
	void (*observe)(confab_ctx *ctx, int series, double v);

	/* Render every series of the broker (the core's and all plugins') as
	 * the text /metrics serves, and hand it to `take` once, before this
	 * returns; the text is borrowed for that call. For transports that
	 * serve HTTP. 0, or CONFAB_ENOMEM (take not called). */
	int (*scrape)(confab_ctx *ctx, void (*take)(void *arg, const char *text, size_t len),
		      void *arg);
} confab_host_metrics;

/* The Content-Type of what scrape() renders. */
#define CONFAB_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_METRICS_H */
