/* /proc samples and the report: see report.h.
 * SPDX-License-Identifier: MIT
 */
#include "report.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct proc_sample proc_sample_take(pid_t pid)
{
	struct proc_sample s = {0, 0, 0};
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return s;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name, which may hold spaces and ')'. */
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return s;
	s.cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return s;
	while (fgets(buf, sizeof buf, f))
		if (sscanf(buf, "VmRSS: %ld kB", &s.rss_kb) == 1)
			break;
	fclose(f);
	s.ok = 1;
	return s;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static int has_traffic(const struct options *o)
{
	return o->scenario != SC_S3 && o->scenario != SC_STORM;
}

void report_print_text(const struct report *r, const struct options *o)
{
	printf("scenario          %s\n", r->scenario);
	printf("clients           %ld asked, %ld connected, %ld failed, %ld of them while connecting"
	       "%s%s\n", r->clients, r->connected, r->failed, r->connect_failed,
	       r->first_error[0] ? " (first: " : "", r->first_error[0] ? r->first_error : "");
	if (r->first_error[0])
		printf("                  )\n");
	printf("connect           %.3f s (per connection p50 %.2f ms, p99 %.2f ms, max %.2f ms)\n",
	       r->connect_s, ms(hist_percentile(&r->connect_lat, 50)),
	       ms(hist_percentile(&r->connect_lat, 99)), ms(r->connect_lat.max));
	if (has_traffic(o)) {
		const struct counters *c = &r->ctr;
		double per_s = r->measured_s > 0 ? (double)(c->received - c->duplicates) /
							    r->measured_s : 0;
		printf("settle            %.3f s (until the broker went quiet after the joins)\n",
		       r->settle_s);
		printf("measured          %.1f s (after %.1f s of warm-up)\n", r->measured_s,
		       o->warmup);
		printf("published         %" PRIu64 " (%" PRIu64 " sends skipped: bench behind)\n",
		       c->published, r->skipped);
		printf("deliveries        expected %" PRIu64 ", received %" PRIu64 ", lost %" PRIu64
		       " (%.3f %%)\n", c->expected, c->received, counters_lost(c),
		       c->expected ? 100.0 * (double)counters_lost(c) / (double)c->expected : 0.0);
		printf("anomalies         duplicates %" PRIu64 ", out-of-order %" PRIu64
		       ", misrouted %" PRIu64 ", server errors %" PRIu64 "\n",
		       c->duplicates, c->out_of_order, c->misrouted, c->errors);
		printf("delivered/s       %.0f\n", per_s);
		printf("latency           p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n",
		       ms(hist_percentile(&r->lat, 50)), ms(hist_percentile(&r->lat, 90)),
		       ms(hist_percentile(&r->lat, 99)), ms(r->lat.max));
		if (r->npids) {
			uint64_t got = c->received - c->duplicates;
			printf("broker CPU        %.2f s over %d process(es): %.3f s per million "
			       "deliveries\n", r->broker_cpu_s, r->npids,
			       got ? r->broker_cpu_s * 1e6 / (double)got : 0.0);
		}
		if (r->redis)
			printf("redis CPU         %.2f s: %.1f us per published message\n",
			       r->redis_cpu_s, c->published ? r->redis_cpu_s * 1e6 /
							      (double)c->published : 0.0);
	}
	if (r->npids && o->scenario == SC_S3)
		printf("broker RSS        %ld kB before, %ld kB after: %.2f kB per connection\n",
		       r->rss_kb_before, r->rss_kb_after,
		       r->connected ? (double)(r->rss_kb_after - r->rss_kb_before) /
					      (double)r->connected : 0.0);
	printf("bench CPU         %.2f s\n", r->bench_cpu_s);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

void report_print_json(const struct report *r, const struct options *o)
{
	const struct counters *c = &r->ctr;
	uint64_t got = c->received - c->duplicates;
	printf("{\"scenario\":");
	json_string(r->scenario);
	printf(",\"urls\":[");
	for (int i = 0; i < o->nurls; i++) {
		if (i)
			putchar(',');
		json_string(o->urls[i]);
	}
	printf("],\"clients\":%ld,\"connected\":%ld,\"failed\":%ld,\"connect_failed\":%ld"
	       ",\"first_error\":", r->clients, r->connected, r->failed, r->connect_failed);
	json_string(r->first_error);
	printf(",\"connect_s\":%.4f,\"connect_p50_ms\":%.3f,\"connect_p99_ms\":%.3f"
	       ",\"connect_max_ms\":%.3f", r->connect_s, ms(hist_percentile(&r->connect_lat, 50)),
	       ms(hist_percentile(&r->connect_lat, 99)), ms(r->connect_lat.max));
	if (has_traffic(o))
		printf(",\"settle_s\":%.3f", r->settle_s);
	if (has_traffic(o))
		printf(",\"rate\":%.1f,\"size\":%ld,\"warmup_s\":%.1f,\"measured_s\":%.3f"
		       ",\"published\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"expected\":%" PRIu64
		       ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicates\":%" PRIu64
		       ",\"out_of_order\":%" PRIu64 ",\"misrouted\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"delivered_per_s\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f"
		       ",\"max_ms\":%.3f", o->rate, o->size, o->warmup, r->measured_s, c->published,
		       r->skipped, c->expected, c->received, counters_lost(c), c->duplicates,
		       c->out_of_order, c->misrouted, c->errors,
		       r->measured_s > 0 ? (double)got / r->measured_s : 0.0,
		       ms(hist_percentile(&r->lat, 50)), ms(hist_percentile(&r->lat, 90)),
		       ms(hist_percentile(&r->lat, 99)), ms(r->lat.max));
	if (r->npids && has_traffic(o))
		printf(",\"broker_cpu_s\":%.3f,\"broker_cpu_s_per_million\":%.4f", r->broker_cpu_s,
		       got ? r->broker_cpu_s * 1e6 / (double)got : 0.0);
	if (r->redis && has_traffic(o))
		printf(",\"redis_cpu_s\":%.3f,\"redis_us_per_msg\":%.2f", r->redis_cpu_s,
		       c->published ? r->redis_cpu_s * 1e6 / (double)c->published : 0.0);
	if (r->npids && o->scenario == SC_S3)
		printf(",\"rss_kb_before\":%ld,\"rss_kb_after\":%ld,\"kb_per_conn\":%.3f",
		       r->rss_kb_before, r->rss_kb_after,
		       r->connected ? (double)(r->rss_kb_after - r->rss_kb_before) /
					      (double)r->connected : 0.0);
	printf(",\"bench_cpu_s\":%.3f}\n", r->bench_cpu_s);
}
