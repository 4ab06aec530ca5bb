/* The core's own Prometheus families (docs/metrics.md): registered once at
 * start in the broker's registry, then counted where things happen, each
 * with one call that is an index and an add. */
#ifndef CONFAB_CORE_COUNTERS_H
#define CONFAB_CORE_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"

typedef struct broker broker;
typedef struct confab_ctx confab_ctx;

/* Why the core closed a session (confab_session_closes_total's reason). */
typedef enum counters_close {
	COUNTERS_CLOSE_SLOW_CONSUMER,  /* its outbound queue was full */
	COUNTERS_CLOSE_FLOOD,          /* it kept going over the rate limit */
	COUNTERS_CLOSE_EXPIRED,        /* its credentials expired */
	COUNTERS_CLOSE_N
} counters_close;

/* A request frame that did not parse (beside protocol.h's request types). */
#define COUNTERS_REQ_INVALID 7

/* Series ids: the first of each group, the rest follow in order. */
typedef struct counters {
	int sessions, sessions_total, rooms;
	int received;                /* + request_type, or + COUNTERS_REQ_INVALID */
	int delivered;               /* + confab_env_kind - 1 (message, direct, join, leave) */
	int acks;
	int errors;                  /* + the code's index (counters.c) */
	int closes;                  /* + counters_close */
	int backplane_up, reconnects, publish_seconds, send_ack_seconds;
	bool backplane_seen_up;      /* the first "up" is not a reconnect */
} counters;

/* Registers the core's families and the auth results of every auth plugin
 * of the chain. 0 or CONFAB_ENOMEM. */
int counters_init(broker *b);
/* Sets the gauges that are read rather than counted, before a render. */
void counters_collect(broker *b);

void counters_error(broker *b, const char *code);
void counters_auth(broker *b, confab_ctx *plugin, uint32_t decision);
/* An authenticate() call that failed. */
void counters_auth_failed(broker *b, confab_ctx *plugin);
void counters_backplane(broker *b, bool up);
/* Seconds since `t0_ns` (uv_hrtime) into histogram `series`. */
void counters_since(broker *b, int series, uint64_t t0_ns);

#endif
