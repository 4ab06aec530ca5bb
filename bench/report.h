/* What a scenario measured, the /proc samples it needs, and printing it as
 * text or as one JSON line.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_BENCH_REPORT_H
#define CONFAB_BENCH_REPORT_H

#include <stdint.h>
#include <sys/types.h>

#include "scenarios.h"
#include "stats.h"

/* CPU seconds (user + system) and resident KB of one process, from /proc. */
struct proc_sample {
	double cpu_s;
	long rss_kb;
	int ok;
};

struct proc_sample proc_sample_take(pid_t pid);

struct report {
	const char *scenario;
	long clients;             /* connections asked for */
	long connected;           /* connections that became ready */
	long failed;              /* connections that failed or dropped */
	long connect_failed;      /* of which before they were ready (TLS and
				   * WebSocket handshakes, join refused) */
	char first_error[128];
	double connect_s;         /* first connect started -> last ready */
	double settle_s;          /* last ready -> no frame for 0.5 s (join aftermath) */
	struct hist connect_lat;  /* per connection, ns */
	struct counters ctr;
	uint64_t skipped;         /* sends the bench could not make on time */
	double measured_s;        /* the measured window */
	struct hist lat;          /* delivery latency, ns */
	/* Broker processes (--pid), summed, over the measured window (CPU) or
	 * before connecting / after holding the connections (RSS). */
	int npids;
	double broker_cpu_s;
	long rss_kb_before, rss_kb_after;
	int redis;                /* --redis-pid given */
	double redis_cpu_s;
	double bench_cpu_s;
};

void report_print_text(const struct report *r, const struct options *o);
void report_print_json(const struct report *r, const struct options *o);

#endif
