/* The scenarios: who connects where, the publishing schedule, what a
 * receiver checks in each delivery. See scenarios.h and docs/performance.md.
 *
 * Every scenario is the same machine with other numbers: `rooms` rooms of
 * `members` subscribers and `pubs` publishers each (s1: one room; s2: many;
 * s3 and storm: connections in no room). A publisher's message carries
 * "p=PUB s=SEQ t=NS" (publisher id, its sequence from 1, the monotonic send
 * time); a receiver finds those three and checks them.
 *
 * SPDX-License-Identifier: MIT
 */
#include "scenarios.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "conn.h"
#include "report.h"
#include "stats.h"
#include "tls_client.h"

#define CONFAB_TEMPLATE "{\"type\":\"send\",\"room\":\"{room}\",\"body\":\"p={pub} s={seq} t={ts} {pad}\"}"
#define GENERIC_TEMPLATE "p={pub} s={seq} t={ts} {pad}"
#define MARK_BYTES 48            /* what the marker takes of --size */

enum phase { PH_CONNECT, PH_SETTLE, PH_HOLD, PH_PUBLISH, PH_DRAIN, PH_DONE };

struct client {
	struct conn c;           /* first: a conn is its client */
	struct bench *b;
	long room;               /* -1: none */
	long pub;                /* global publisher id; -1: a subscriber */
	uint8_t ready;
	uint8_t gone;
	uint64_t t_start;
	struct seq_track *tracks;    /* subscribers: one per publisher of the room */
};

struct bench {
	const struct options *o;
	uv_loop_t *loop;
	int confab;              /* speak the confab protocol (not generic) */
	struct target targets[MAX_URLS];
	struct target pub_target;
	SSL_CTX *tls_ctx;        /* for every wss:// target; NULL when there is none */
	struct sockaddr_in sources[MAX_SOURCES];
	int nsources;
	struct client *cl;
	size_t ncl, nsubs;
	long nrooms, members, pubs;  /* per room: members and publishers */
	long *room_ready;
	uint64_t *pub_seq;
	size_t next, in_flight, ready, failed;
	uv_timer_t tick;
	enum phase phase;
	uint64_t t_last_frame;
	uint64_t t0, t_ready, t_pub, t_measure, t_end, t_stop;
	uint64_t sent, pub_rr;
	int cpu_sampled;
	char *msg;
	size_t msg_cap;
	const char *template;
	pid_t pids[MAX_PIDS];
	struct proc_sample cpu0[MAX_PIDS], redis0;
	struct report r;
};

static struct client *client_of(struct conn *c)
{
	return (struct client *)c;
}

static void note_error(struct bench *b, const char *why)
{
	if (!b->r.first_error[0])
		snprintf(b->r.first_error, sizeof b->r.first_error, "%s", why);
}

static void connect_more(struct bench *b);

/* ---- receiving ---------------------------------------------------------- */

static int number_after(const uint8_t *d, size_t len, const char *anchor, uint64_t *out)
{
	const uint8_t *p = memmem(d, len, anchor, 2);
	if (!p)
		return -1;
	p += 2;
	const uint8_t *end = d + len;
	if (p >= end || *p < '0' || *p > '9')
		return -1;
	uint64_t v = 0;
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	*out = v;
	return 0;
}

static void on_delivery(struct client *cl, const uint8_t *d, size_t len)
{
	struct bench *b = cl->b;
	uint64_t now = uv_hrtime(), pub = 0, seq, ts;
	if (number_after(d, len, "s=", &seq) < 0 || number_after(d, len, "t=", &ts) < 0 ||
	    (number_after(d, len, "p=", &pub) < 0 && b->pubs > 1)) {
		if (b->confab && memmem(d, len, "\"type\":\"error\"", 14))
			b->r.ctr.errors++;
		b->r.ctr.other_frames++;
		return;
	}
	if (pub >= (uint64_t)(b->nrooms * b->pubs) || (long)(pub / (uint64_t)b->pubs) != cl->room) {
		b->r.ctr.misrouted++;
		return;
	}
	enum seq_verdict v = seq_track_see(&cl->tracks[pub % (uint64_t)b->pubs], seq);
	if (ts < b->t_measure || ts >= b->t_end)
		return;                       /* warm-up, or after the window */
	counters_see(&b->r.ctr, v);
	if (v != SEQ_DUPLICATE)
		hist_add(&b->r.lat, now > ts ? now - ts : 0);
}

static void become_ready(struct client *cl)
{
	struct bench *b = cl->b;
	cl->ready = 1;
	b->ready++;
	b->in_flight--;
	hist_add(&b->r.connect_lat, uv_hrtime() - cl->t_start);
	if (cl->pub < 0 && cl->room >= 0)
		b->room_ready[cl->room]++;
	connect_more(b);
}

static void send_join(struct client *cl)
{
	char buf[128];
	int n = snprintf(buf, sizeof buf, "{\"type\":\"join\",\"room\":\"bench-%ld\"}", cl->room);
	conn_send_text(&cl->c, buf, (size_t)n);
}

static void on_message(struct conn *c, const uint8_t *d, size_t len)
{
	struct client *cl = client_of(c);
	struct bench *b = cl->b;
	b->t_last_frame = uv_hrtime();
	if (cl->ready) {
		if (cl->pub < 0)
			on_delivery(cl, d, len);
		else if (b->confab && memmem(d, len, "\"type\":\"error\"", 14)) {
			b->r.ctr.errors++;
			char why[128];
			snprintf(why, sizeof why, "publisher got %.*s", (int)(len > 100 ? 100 : len),
				 (const char *)d);
			note_error(b, why);
		}
		return;
	}
	/* Not ready yet: the confab welcome, then the joined reply. */
	if (memmem(d, len, "\"type\":\"welcome\"", 16)) {
		if (cl->room >= 0)
			send_join(cl);
		else
			become_ready(cl);
	} else if (memmem(d, len, "\"type\":\"joined\"", 15)) {
		become_ready(cl);
	} else if (memmem(d, len, "\"type\":\"error\"", 14)) {
		char why[128];
		snprintf(why, sizeof why, "join refused: %.*s", (int)(len > 100 ? 100 : len),
			 (const char *)d);
		note_error(b, why);
		b->failed++;
		b->r.connect_failed++;
		b->in_flight--;
		cl->gone = 1;
		conn_close(c);
		connect_more(b);
	}
}

static void on_open(struct conn *c)
{
	struct client *cl = client_of(c);
	struct bench *b = cl->b;
	if (b->confab)
		return;                       /* wait for the welcome */
	const char *first = cl->pub < 0 ? b->o->first_frame : b->o->pub_first_frame;
	if (first)
		conn_send_text(c, first, strlen(first));
	become_ready(cl);
}

static void on_close(struct conn *c, const char *why)
{
	struct client *cl = client_of(c);
	struct bench *b = cl->b;
	cl->gone = 1;
	note_error(b, why);
	b->failed++;
	if (!cl->ready)
		b->r.connect_failed++;
	if (cl->ready) {
		if (cl->pub < 0 && cl->room >= 0)
			b->room_ready[cl->room]--;
		b->ready--;
	} else {
		b->in_flight--;
		connect_more(b);
	}
}

static const struct conn_ops client_ops = {on_open, on_message, on_close};

/* ---- connecting --------------------------------------------------------- */

static const struct target *target_for(struct bench *b, size_t i, struct client *cl)
{
	const struct options *o = b->o;
	if (cl->pub >= 0) {
		if (!b->confab)
			return &b->pub_target;
		return o->scenario == SC_S2 ? &b->targets[cl->room % o->nurls] : &b->targets[0];
	}
	/* --rooms-by-node: a room lives on one node, as its publisher does, so
	 * the nodes share no room (what a backplane's filtering then costs). */
	if (o->scenario == SC_S2 && o->rooms_by_node && cl->room >= 0)
		return &b->targets[cl->room % o->nurls];
	long m = cl->room >= 0 ? (long)(i % (size_t)b->members) : (long)i;
	return &b->targets[m % o->nurls];
}

static void connect_more(struct bench *b)
{
	while (b->phase == PH_CONNECT && b->next < b->ncl &&
	       b->in_flight < (size_t)b->o->concurrency) {
		size_t i = b->next++;
		struct client *cl = &b->cl[i];
		cl->t_start = uv_hrtime();
		const struct sockaddr_in *src = b->nsources ? &b->sources[i % (size_t)b->nsources] : NULL;
		int rc = conn_start(&cl->c, b->loop, target_for(b, i, cl), src, &client_ops);
		if (rc < 0) {
			note_error(b, uv_strerror(rc));
			b->failed++;
			b->r.connect_failed++;
			cl->gone = 1;
			continue;
		}
		b->in_flight++;
	}
}

/* ---- publishing --------------------------------------------------------- */

static int expand(struct bench *b, struct client *pub, uint64_t seq, uint64_t ts)
{
	size_t holes = 0;
	for (const char *h = b->template; (h = strchr(h, '{')) != NULL; h++)
		holes++;
	size_t need = strlen(b->template) + holes * ((size_t)b->o->size + 32) + 1;
	if (need > b->msg_cap) {
		char *n = realloc(b->msg, need);
		if (!n)
			return -1;
		b->msg = n;
		b->msg_cap = need;
	}
	char *out = b->msg;
	const char *t = b->template;
	size_t pad = b->o->size > MARK_BYTES ? (size_t)b->o->size - MARK_BYTES : 0;
	while (*t) {
		if (*t == '{') {
			const char *e = strchr(t, '}');
			size_t k = e ? (size_t)(e - t + 1) : 0;
			if (k == 6 && !memcmp(t, "{room}", 6))
				out += sprintf(out, "bench-%ld", pub->room);
			else if (k == 5 && !memcmp(t, "{pub}", 5))
				out += sprintf(out, "%ld", pub->pub);
			else if (k == 5 && !memcmp(t, "{seq}", 5))
				out += sprintf(out, "%llu", (unsigned long long)seq);
			else if (k == 4 && !memcmp(t, "{ts}", 4))
				out += sprintf(out, "%llu", (unsigned long long)ts);
			else if (k == 5 && !memcmp(t, "{pad}", 5)) {
				memset(out, 'x', pad);
				out += pad;
			} else
				k = 0;
			if (k) {
				t += k;
				continue;
			}
		}
		*out++ = *t++;
	}
	return (int)(out - b->msg);
}

static void publish_one(struct bench *b, uint64_t now)
{
	size_t npub = (size_t)(b->nrooms * b->pubs);
	struct client *pub = &b->cl[b->nsubs + (b->pub_rr++ % npub)];
	int measured = now >= b->t_measure && now < b->t_end;
	if (!pub->ready || pub->gone || pub->c.queued > (4u << 20)) {
		b->r.skipped++;
		return;
	}
	uint64_t seq = ++b->pub_seq[pub->pub];
	int n = expand(b, pub, seq, now);
	if (n < 0 || conn_send_text(&pub->c, b->msg, (size_t)n) < 0) {
		b->r.skipped++;
		return;
	}
	if (measured) {
		b->r.ctr.published++;
		b->r.ctr.expected += (uint64_t)b->room_ready[pub->room];
	}
}

/* ---- the clock ---------------------------------------------------------- */

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static uint64_t ns_of(double s)
{
	return (uint64_t)(s * 1e9);
}

static void finish(struct bench *b)
{
	b->phase = PH_DONE;
	uv_timer_stop(&b->tick);
	uv_close((uv_handle_t *)&b->tick, NULL);
	for (size_t i = 0; i < b->ncl; i++)
		conn_close(&b->cl[i].c);
}

static void sample_cpu(struct bench *b, int end)
{
	struct report *r = &b->r;
	for (int i = 0; i < b->o->npids; i++) {
		struct proc_sample s = proc_sample_take(b->o->pids[i]);
		if (!end)
			b->cpu0[i] = s;
		else
			r->broker_cpu_s += s.cpu_s - b->cpu0[i].cpu_s;
	}
	if (b->o->redis_pid) {
		struct proc_sample s = proc_sample_take(b->o->redis_pid);
		if (!end)
			b->redis0 = s;
		else
			r->redis_cpu_s = s.cpu_s - b->redis0.cpu_s;
	}
}

static long rss_total(const struct options *o)
{
	long kb = 0;
	for (int i = 0; i < o->npids; i++)
		kb += proc_sample_take(o->pids[i]).rss_kb;
	return kb;
}

static void on_tick(uv_timer_t *t)
{
	struct bench *b = t->data;
	const struct options *o = b->o;
	uint64_t now = uv_hrtime();
	int traffic = o->scenario != SC_S3 && o->scenario != SC_STORM;
	double connect_limit = 30.0 + (double)b->ncl / 200.0;

	switch (b->phase) {
	case PH_CONNECT:
		if (b->ready + b->failed < b->ncl && secs(now - b->t0) < connect_limit)
			return;
		b->t_ready = now;
		b->r.connected = (long)b->ready;
		b->r.connect_s = secs(now - b->t0);
		if (!traffic) {
			b->phase = PH_HOLD;
			b->t_stop = now + ns_of(o->scenario == SC_S3 ? o->hold : 0);
			return;
		}
		/* Let the broker finish what the joins caused (member events to
		 * every member: O(members^2) frames) before the clock starts. */
		b->phase = PH_SETTLE;
		return;
	case PH_SETTLE:
		if (now - b->t_last_frame < ns_of(0.5) && now - b->t_ready < ns_of(60))
			return;
		b->r.settle_s = secs(now - b->t_ready);
		b->phase = PH_PUBLISH;
		b->t_pub = now;
		b->t_measure = now + ns_of(o->warmup);
		b->t_end = b->t_measure + ns_of(o->duration);
		return;
	case PH_HOLD:
		if (now < b->t_stop)
			return;
		if (o->scenario == SC_S3)
			b->r.rss_kb_after = rss_total(o);
		finish(b);
		return;
	case PH_PUBLISH: {
		if (now >= b->t_measure && !b->cpu_sampled) {
			sample_cpu(b, 0);
			b->cpu_sampled = 1;
		}
		if (now >= b->t_end) {
			sample_cpu(b, 1);
			b->r.measured_s = secs(b->t_end - b->t_measure);
			b->phase = PH_DRAIN;
			b->t_stop = now + ns_of(o->drain);
			return;
		}
		uint64_t due = (uint64_t)(secs(now - b->t_pub) * o->rate);
		if (due > b->sent + (uint64_t)o->rate + 1) {
			b->r.skipped += due - b->sent - (uint64_t)o->rate;
			b->sent = due - (uint64_t)o->rate;
		}
		while (b->sent < due) {
			b->sent++;
			publish_one(b, uv_hrtime());
		}
		return;
	}
	case PH_DRAIN:
		if (now < b->t_stop && counters_lost(&b->r.ctr) > 0)
			return;
		finish(b);
		return;
	case PH_DONE:
		return;
	}
}

/* ---- setup -------------------------------------------------------------- */

void options_defaults(struct options *o)
{
	memset(o, 0, sizeof *o);
	o->scenario = SC_S1;
	o->subscribers = 1000;
	o->rooms = 200;
	o->members = 10;
	o->publishers = 1;
	o->rate = 100;
	o->size = 64;
	o->duration = 10;
	o->warmup = 2;
	o->drain = 3;
	o->hold = 2;
	o->concurrency = 256;
}

static const char *scenario_name(enum scenario s)
{
	static const char *names[] = {"s1", "s2", "s3", "storm", "generic"};
	return names[s];
}

/* One TLS context for the run, made only when a URL is wss://, and lent
 * to each wss:// target. */
static int setup_tls(struct bench *b, const struct options *o)
{
	int any = b->pub_target.tls;
	for (int i = 0; i < o->nurls; i++)
		any |= b->targets[i].tls;
	if (!any)
		return 0;
	struct tls_client_opts to = {o->cafile, o->insecure, o->cert, o->key};
	char err[256];
	b->tls_ctx = tls_client_ctx_new(&to, err, sizeof err);
	if (!b->tls_ctx) {
		fprintf(stderr, "confab-bench: %s\n", err);
		return -1;
	}
	for (int i = 0; i < o->nurls; i++)
		b->targets[i].tls_ctx = b->tls_ctx;
	b->pub_target.tls_ctx = b->tls_ctx;
	return 0;
}

static int setup(struct bench *b, const struct options *o)
{
	char err[256], query[300] = "";
	if (o->token)
		snprintf(query, sizeof query, "token=%s", o->token);
	for (int i = 0; i < o->nurls; i++)
		if (target_parse(&b->targets[i], o->urls[i], query, err, sizeof err) < 0) {
			fprintf(stderr, "confab-bench: %s\n", err);
			return -1;
		}
	if (target_parse(&b->pub_target, o->pub_url ? o->pub_url : o->urls[0], query, err,
			 sizeof err) < 0) {
		fprintf(stderr, "confab-bench: %s\n", err);
		return -1;
	}
	if (setup_tls(b, o) < 0)
		return -1;
	for (int i = 0; i < o->nsources; i++) {
		if (uv_ip4_addr(o->sources[i], 0, &b->sources[i]) != 0) {
			fprintf(stderr, "confab-bench: --source-addr %s: not an IPv4 address\n",
				o->sources[i]);
			return -1;
		}
	}
	b->nsources = o->nsources;
	b->confab = o->scenario != SC_GENERIC;
	b->template = o->template ? o->template : b->confab ? CONFAB_TEMPLATE : GENERIC_TEMPLATE;
	switch (o->scenario) {
	case SC_S2:
		b->nrooms = o->rooms;
		b->members = o->members;
		b->pubs = 1;
		break;
	case SC_S1:
	case SC_GENERIC:
		b->nrooms = 1;
		b->members = o->subscribers;
		b->pubs = o->publishers;
		break;
	case SC_S3:
	case SC_STORM:
		b->nrooms = 0;
		b->members = o->subscribers;
		b->pubs = 0;
		break;
	}
	if (b->nrooms < 0 || b->members < 1 || b->pubs < 0 || (b->nrooms && b->pubs < 1)) {
		fprintf(stderr, "confab-bench: rooms, members/subscribers and publishers must be >= 1\n");
		return -1;
	}
	b->nsubs = (size_t)(b->nrooms ? b->nrooms * b->members : b->members);
	size_t npub = (size_t)(b->nrooms * b->pubs);
	b->ncl = b->nsubs + npub;
	b->cl = calloc(b->ncl, sizeof *b->cl);
	b->room_ready = calloc((size_t)b->nrooms + 1, sizeof *b->room_ready);
	b->pub_seq = calloc(npub + 1, sizeof *b->pub_seq);
	struct seq_track *tracks = calloc(b->nsubs * (size_t)(b->pubs ? b->pubs : 1),
					  sizeof *tracks);
	if (!b->cl || !b->room_ready || !b->pub_seq || !tracks) {
		fprintf(stderr, "confab-bench: out of memory\n");
		free(tracks);
		return -1;
	}
	for (size_t i = 0; i < b->ncl; i++) {
		struct client *cl = &b->cl[i];
		cl->b = b;
		if (i < b->nsubs) {
			cl->pub = -1;
			cl->room = b->nrooms ? (long)(i / (size_t)b->members) : -1;
			cl->tracks = tracks + i * (size_t)(b->pubs ? b->pubs : 1);
		} else {
			cl->pub = (long)(i - b->nsubs);
			cl->room = cl->pub / b->pubs;
		}
	}
	b->r.scenario = scenario_name(o->scenario);
	b->r.clients = (long)b->ncl;
	hist_reset(&b->r.lat);
	hist_reset(&b->r.connect_lat);
	return 0;
}

static void raise_fd_limit(size_t want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int bench_run(const struct options *o)
{
	struct bench *b = calloc(1, sizeof *b);
	if (!b)
		return 1;
	b->o = o;
	int rc = 1;
	if (setup(b, o) < 0)
		goto out;
	raise_fd_limit(b->ncl);
	uv_loop_t loop;
	uv_loop_init(&loop);
	b->loop = &loop;
	uv_timer_init(&loop, &b->tick);
	b->tick.data = b;
	b->r.npids = o->npids;
	b->r.redis = o->redis_pid != 0;
	if (o->scenario == SC_S3)
		b->r.rss_kb_before = rss_total(o);
	b->phase = PH_CONNECT;
	b->t0 = uv_hrtime();
	connect_more(b);
	uv_timer_start(&b->tick, on_tick, 1, 1);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_walk(&loop, walk_close, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	b->r.bench_cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	b->r.failed = (long)b->failed;
	if (!o->quiet)
		report_print_text(&b->r, o);
	if (o->json)
		report_print_json(&b->r, o);
	fflush(stdout);
	rc = b->r.connected > 0 ? 0 : 1;
out:
	if (b->cl) {
		for (size_t i = 0; i < b->ncl; i++)
			ws_parser_free(&b->cl[i].c.parser), free(b->cl[i].c.pend);
		free(b->nsubs ? b->cl[0].tracks : NULL);
	}
	free(b->cl);
	tls_client_ctx_free(b->tls_ctx);
	free(b->room_ready);
	free(b->pub_seq);
	free(b->msg);
	free(b);
	return rc;
}
