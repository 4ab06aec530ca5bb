/* The registry of Prometheus series (the core's and the plugins') and the
 * text exposition writer (format 0.0.4). Pure: no broker, no I/O.
 *
 * A series is an index into one array, so an update is an index and an
 * add: the hot paths (every message received and delivered) cost no
 * string, no allocation and no lock. Strings are only handled when a
 * family or series is registered (once) and when the text is rendered. */
#ifndef CONFAB_CORE_METRICS_H
#define CONFAB_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <confab/metrics.h>

typedef struct metric_family_ metric_family_;

typedef struct metric_series {
	int64_t value;               /* counter, gauge */
	uint32_t family;
	int32_t next;                /* the family's next series, or -1 */
	const void *owner;           /* who registered it: updates check it */
	char *labels;                /* `a="x",b="y"` escaped, or "" */
	uint64_t *buckets;           /* histogram: per bucket (not cumulative), +Inf last */
	double sum;                  /* histogram */
	uint64_t count;              /* histogram */
} metric_series;

typedef struct metrics {
	metric_family_ *families;
	size_t n_families, cap_families;
	metric_series *series;
	size_t n_series, cap_series;
	char *text;                  /* the last rendering, reused */
	size_t text_cap;
} metrics;

void metrics_init(metrics *m);
void metrics_free(metrics *m);

/* Registers a family for `owner` (checks as <confab/metrics.h> says).
 * Returns its id, or CONFAB_EINVAL with `err` (room `errlen`) saying why,
 * or CONFAB_ENOMEM. */
int metrics_family(metrics *m, const void *owner, const confab_metric_family *f, char *err,
		   size_t errlen);
/* Registers (or finds) a series of `family`; its handle or a negative
 * error. */
int metrics_series(metrics *m, const void *owner, int family, const char *const *values);

/* Updates that check the handle and owner (the plugins' door). */
void metrics_add_checked(metrics *m, const void *owner, int series, int64_t delta);
void metrics_set_checked(metrics *m, const void *owner, int series, int64_t v);
void metrics_observe_checked(metrics *m, const void *owner, int series, double v);

/* The core's own updates: its handles are known good. */
static inline void metrics_inc(metrics *m, int series)
{
	m->series[series].value++;
}
static inline void metrics_add(metrics *m, int series, int64_t delta)
{
	m->series[series].value += delta;
}
static inline void metrics_set(metrics *m, int series, int64_t v)
{
	m->series[series].value = v;
}
void metrics_observe(metrics *m, int series, double v);

/* Renders every family that has a series. Returns the text (owned by `m`,
 * valid until the next call) and its length in *len, or NULL when out of
 * memory. */
const char *metrics_render(metrics *m, size_t *len);

#endif
