/* The broker: configuration, the plugin instances of the chain, the loop,
 * and the state of this node's sessions and rooms. One per process, passed
 * around explicitly. */
#ifndef CONFAB_CORE_BROKER_H
#define CONFAB_CORE_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <confab/plugin.h>

#include "config.h"
#include <confab/dict.h>
#include "counters.h"
#include "drain.h"
#include "expiry.h"
#include "loader.h"
#include "metrics.h"
#include "rooms.h"

typedef struct broker broker;

/* One plugin instance of the chain (or the embedded backplane). This is
 * the confab_ctx handed to the plugin: its handle in every host call. */
struct confab_ctx {
	broker *broker;
	char *name;                  /* instance and section name */
	loaded_plugin plugin;        /* file, handle, descriptor */
	config_section *section;     /* may be NULL: no section, no keys */
	void *state;                 /* what init returned */
	bool inited;
	bool started;
	bool reported;               /* the plugin reported a config error */
	int metric_auth;             /* auth plugins: the first of its results' series */
};

struct broker {
	config cfg;
	/* While a reload asks the plugins to prepare (reload.c): the new file,
	 * which the settings slots answer from. NULL otherwise. */
	config *reading;
	/* The configurations reloads replaced: kept until broker_destroy,
	 * because the strings config_get handed out live until destroy. */
	config *retired;
	size_t n_retired;
	uv_loop_t loop;
	bool check_only;             /* confabd -t: init, no start */

	confab_ctx **chain;          /* in chain order */
	size_t n_chain;
	confab_ctx *backplane;       /* a chain entry or the embedded one */
	confab_ctx *embedded;        /* set when no backplane plugin is in the chain */

	/* serving state */
	bool serving;                /* every plugin started */
	bool draining;               /* refusing new clients; sessions close over drain_window */
	bool stopping;
	bool backplane_up;
	bool backplane_degraded;     /* ABI 1.5 degraded(): /readyz 503, requests still served */

	/* this node's sessions */
	confab_dict *sessions;              /* session id -> confab_session */
	confab_dict *users;                 /* user -> user_sessions (see session.h) */
	rooms *rooms;                /* local membership */
	confab_dict *addresses;             /* remote address -> open connections (uintptr_t) */
	expiry expiry;               /* deadlines of the sessions whose credentials expire */
	struct auth_guard *auth_guard;  /* pending auth decisions, failed logins */
	size_t headroom;             /* in front of every frame: the most any transport asked */
	uint64_t next_session;
	uint64_t next_message;
	metrics metrics;             /* every Prometheus series, the core's and the plugins' */
	counters counters;           /* the core's own series ids */
	char run_id[24];             /* start time in base 36: makes ids unique across restarts */

	uv_signal_t sigint, sigterm, sighup;
	uv_timer_t stop_timer;
	drain drain;                 /* SIGTERM's graceful drain (broker_drain) */
	struct control *control;     /* confabctl's socket (control.c); NULL = none */
	uint64_t stop_deadline;
	int exit_code;
};

/* Reads the configuration, loads and initialises every plugin of the chain.
 * Logs one line and returns non-zero on the first problem. */
int broker_init(broker *b, const char *config_path, bool check_only);
/* Starts every plugin and serves until SIGINT, or SIGTERM and its drain;
 * returns the exit status. */
int broker_run(broker *b);
/* Destroys the plugins (loop still running to close their handles), then
 * closes the loop. Safe after a failed init. */
void broker_destroy(broker *b);

/* The configuration the settings slots read: the file a reload is
 * reading, else the one in use. */
config *broker_config(broker *b);

/* The instances in start order (the backplane, auth, transports); stop
 * and destroy go the other way. `out` holds n_chain + 1. */
size_t broker_start_order(broker *b, confab_ctx **out);

/* After init or reload() read a section: its keys the plugin did not
 * read, reported (against `cfg`) as unknown: CONFAB_EINVAL. */
int broker_unknown_keys(const config *cfg, const confab_ctx *ctx);

/* Warns once for each section of `cfg` no chain entry is named after. */
void broker_warn_unknown_sections(const broker *b, const config *cfg);

/* Takes the node out of service gracefully: new clients are refused at once (/readyz 503), and after
 * drain_grace seconds the sessions are closed with 1001, spread over
 * drain_window seconds; then the broker stops and broker_run returns 0.
 * SIGTERM and `confabctl drain` call it.
 * `why` names the cause in the log. Does nothing while draining or
 * stopping already. */
void broker_drain(broker *b, const char *why);

/* True while the node should get new clients: every plugin started, not
 * draining or stopping, the backplane up and not degraded. What /readyz
 * reports (host->healthy). */
bool broker_healthy(const broker *b);
/* Current time in ms since the epoch. */
int64_t broker_now_ms(void);

#endif
