/* confab-bench: load generator and latency meter for confab (and, in the
 * generic mode, for any WebSocket pub/sub server). This file reads the
 * command line; scenarios.c does the work.
 *
 * SPDX-License-Identifier: MIT
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: confab-bench SCENARIO [options]\n"
		"\n"
		"scenarios:\n"
		"  s1       fan-out: --subscribers in one room, spread over the --url list;\n"
		"           --publishers (1) on the first URL, --rate msg/s in total\n"
		"  s2       chat: --rooms x --members, one publisher per room (rooms spread\n"
		"           over the URLs), --rate msg/s in total\n"
		"  s3       --subscribers idle connections: connect time and, with --pid,\n"
		"           broker RSS per connection\n"
		"  storm    connect --subscribers as fast as --concurrency allows\n"
		"  generic  any WebSocket pub/sub server: subscribers on --url, publishers\n"
		"           on --pub-url, --first-frame sent by each subscriber, frames\n"
		"           built from --template\n"
		"\n"
		"options:\n"
		"  --url ws://HOST:PORT/PATH   target (repeatable; default ws://127.0.0.1:8080/ws);\n"
		"                              wss://HOST:PORT/PATH for TLS (port 443 by default)\n"
		"  --pub-url URL               generic: where publishers connect (default: first --url)\n"
		"  --subscribers N             s1, s3, storm, generic (1000)\n"
		"  --rooms N, --members N      s2 (200, 10)\n"
		"  --rooms-by-node             s2: all members of a room on one URL (room i on URL\n"
		"                              i mod count), so that nodes share no room\n"
		"  --publishers N              per room, s1 and generic (1)\n"
		"  --rate R                    messages a second, all publishers together (100)\n"
		"  --size BYTES                message body size (64; the marker takes up to 48)\n"
		"  --duration S, --warmup S    measured seconds (10) after warm-up seconds (2)\n"
		"  --drain S                   at most this long for late deliveries (3)\n"
		"  --hold S                    s3: hold the connections this long before RSS (2)\n"
		"  --concurrency N             connects in flight at once (256)\n"
		"  --source-addr 127.0.0.X     bind connections to these addresses in turn (repeatable)\n"
		"  --token T                   add ?token=T to every URL\n"
		"  --cafile FILE               wss: verify the server's certificate (and its IP\n"
		"                              address or name) against these CAs (default: the\n"
		"                              system's CAs)\n"
		"  --insecure                  wss: do not verify the server's certificate\n"
		"  --cert FILE, --key FILE     wss: present this client certificate and key\n"
		"  --pid PID                   a broker process: CPU and RSS (repeatable)\n"
		"  --redis-pid PID             Redis: CPU per published message\n"
		"  --first-frame TEXT          generic: sent by each subscriber once connected\n"
"  --pub-first-frame TEXT      generic: sent by each publisher once connected\n"
		"  --template TEXT             publish frame; {room} {pub} {seq} {ts} {pad} are\n"
		"                              replaced; receivers look for p=PUB s=SEQ t=TS\n"
		"                              (default \"p={pub} s={seq} t={ts} {pad}\")\n"
		"  --json                      also print the report as one JSON line\n"
		"  --quiet                     no text report (with --json: only the JSON line)\n");
}

static int parse_long(const char *name, const char *v, long min, long *out)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (*v == '\0' || *end || n < min) {
		fprintf(stderr, "confab-bench: --%s %s: want an integer >= %ld\n", name, v, min);
		return -1;
	}
	*out = n;
	return 0;
}

static int parse_double(const char *name, const char *v, double min, double *out)
{
	char *end;
	double d = strtod(v, &end);
	if (*v == '\0' || *end || d < min) {
		fprintf(stderr, "confab-bench: --%s %s: want a number >= %g\n", name, v, min);
		return -1;
	}
	*out = d;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},
		{"pub-url", required_argument, NULL, 'U'},
		{"subscribers", required_argument, NULL, 'n'},
		{"rooms", required_argument, NULL, 'r'},
		{"members", required_argument, NULL, 'm'},
		{"publishers", required_argument, NULL, 'P'},
		{"rate", required_argument, NULL, 'R'},
		{"size", required_argument, NULL, 's'},
		{"duration", required_argument, NULL, 'd'},
		{"warmup", required_argument, NULL, 'w'},
		{"drain", required_argument, NULL, 'D'},
		{"hold", required_argument, NULL, 'H'},
		{"concurrency", required_argument, NULL, 'c'},
		{"source-addr", required_argument, NULL, 'S'},
		{"token", required_argument, NULL, 't'},
		{"cafile", required_argument, NULL, 'A'},
		{"insecure", no_argument, NULL, 'I'},
		{"cert", required_argument, NULL, 'C'},
		{"key", required_argument, NULL, 'K'},
		{"pid", required_argument, NULL, 'p'},
		{"redis-pid", required_argument, NULL, 'x'},
		{"first-frame", required_argument, NULL, 'f'},
		{"pub-first-frame", required_argument, NULL, 'F'},
		{"template", required_argument, NULL, 'T'},
		{"rooms-by-node", no_argument, NULL, 'L'},
		{"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct options o;
	options_defaults(&o);
	if (argc < 2 || argv[1][0] == '-') {
		usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	static const char *names[] = {"s1", "s2", "s3", "storm", "generic"};
	int found = 0;
	for (int i = 0; i < 5; i++)
		if (!strcmp(argv[1], names[i])) {
			o.scenario = (enum scenario)i;
			found = 1;
		}
	if (!found) {
		fprintf(stderr, "confab-bench: unknown scenario %s\n", argv[1]);
		usage(stderr);
		return 2;
	}
	optind = 2;
	int ch, bad = 0;
	long l;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			if (o.nurls == MAX_URLS) {
				fprintf(stderr, "confab-bench: at most %d --url\n", MAX_URLS);
				return 2;
			}
			o.urls[o.nurls++] = optarg;
			break;
		case 'U': o.pub_url = optarg; break;
		case 'n': bad |= parse_long("subscribers", optarg, 1, &o.subscribers); break;
		case 'r': bad |= parse_long("rooms", optarg, 1, &o.rooms); break;
		case 'm': bad |= parse_long("members", optarg, 1, &o.members); break;
		case 'P': bad |= parse_long("publishers", optarg, 1, &o.publishers); break;
		case 'R': bad |= parse_double("rate", optarg, 0, &o.rate); break;
		case 's': bad |= parse_long("size", optarg, 0, &o.size); break;
		case 'd': bad |= parse_double("duration", optarg, 0.1, &o.duration); break;
		case 'w': bad |= parse_double("warmup", optarg, 0, &o.warmup); break;
		case 'D': bad |= parse_double("drain", optarg, 0, &o.drain); break;
		case 'H': bad |= parse_double("hold", optarg, 0, &o.hold); break;
		case 'c': bad |= parse_long("concurrency", optarg, 1, &o.concurrency); break;
		case 'S':
			if (o.nsources == MAX_SOURCES) {
				fprintf(stderr, "confab-bench: at most %d --source-addr\n", MAX_SOURCES);
				return 2;
			}
			o.sources[o.nsources++] = optarg;
			break;
		case 't': o.token = optarg; break;
		case 'A': o.cafile = optarg; break;
		case 'I': o.insecure = 1; break;
		case 'C': o.cert = optarg; break;
		case 'K': o.key = optarg; break;
		case 'p':
			if (o.npids == MAX_PIDS) {
				fprintf(stderr, "confab-bench: at most %d --pid\n", MAX_PIDS);
				return 2;
			}
			bad |= parse_long("pid", optarg, 1, &l);
			o.pids[o.npids++] = (pid_t)l;
			break;
		case 'x':
			bad |= parse_long("redis-pid", optarg, 1, &l);
			o.redis_pid = (pid_t)l;
			break;
		case 'f': o.first_frame = optarg; break;
		case 'F': o.pub_first_frame = optarg; break;
		case 'T': o.template = optarg; break;
		case 'L': o.rooms_by_node = 1; break;
		case 'j': o.json = 1; break;
		case 'q': o.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (bad || optind != argc) {
		if (optind != argc)
			fprintf(stderr, "confab-bench: unexpected argument %s\n", argv[optind]);
		return 2;
	}
	if (o.cafile && o.insecure) {
		fprintf(stderr, "confab-bench: --cafile and --insecure: choose one\n");
		return 2;
	}
	if (!o.cert != !o.key) {
		fprintf(stderr, "confab-bench: --cert and --key go together\n");
		return 2;
	}
	if (o.nurls == 0)
		o.urls[o.nurls++] = "ws://127.0.0.1:8080/ws";
	if (o.size > (1 << 24)) {
		fprintf(stderr, "confab-bench: --size at most %d\n", 1 << 24);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	return bench_run(&o);
}
