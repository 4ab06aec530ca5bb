/* The bench's scenarios and their report. main.c fills `struct options`
 * from the command line; bench_run() runs one scenario and prints the
 * report.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_BENCH_SCENARIOS_H
#define CONFAB_BENCH_SCENARIOS_H

#include <stddef.h>
#include <sys/types.h>

#define MAX_URLS 16
#define MAX_SOURCES 64
#define MAX_PIDS 8

enum scenario { SC_S1, SC_S2, SC_S3, SC_STORM, SC_GENERIC };

struct options {
	enum scenario scenario;
	const char *urls[MAX_URLS];
	int nurls;
	const char *pub_url;         /* generic: where publishers connect (default urls[0]) */
	const char *sources[MAX_SOURCES];
	int nsources;
	pid_t pids[MAX_PIDS];        /* broker processes: CPU and RSS */
	int npids;
	pid_t redis_pid;             /* 0: none */
	long subscribers;            /* s1, s3, storm, generic */
	long rooms, members;         /* s2 */
	int rooms_by_node;           /* s2: all of a room's members on one URL */
	long publishers;             /* per room */
	double rate;                 /* messages a second, in total */
	long size;                   /* body bytes */
	double duration, warmup;     /* seconds */
	double drain;                /* seconds to wait for late deliveries */
	double hold;                 /* s3: seconds to hold the idle connections */
	long concurrency;            /* connects in flight at once */
	const char *token;
	/* wss:// (tls_client.h): verify against cafile, or nothing with
	 * insecure, or the system's CAs; a client certificate when cert. */
	const char *cafile;
	int insecure;
	const char *cert, *key;
	const char *first_frame;     /* generic: sent by each subscriber */
	const char *pub_first_frame; /* generic: sent by each publisher */
	const char *template;        /* generic */
	int json;
	int quiet;
};

void options_defaults(struct options *o);
/* Runs the scenario; returns the exit status (0: ran; 1: could not run). */
int bench_run(const struct options *o);

#endif
