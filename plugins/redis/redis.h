/* The `redis` backplane: many confabd nodes share rooms through one Redis.
 *
 * Each file's first comment says what it does; the sections below say
 * which file defines what they declare. What this backplane shares with
 * redis_cluster (the text of messages, one connection on the loop, the
 * settings read alike, the Lua prelude, the local bookkeeping) is in
 * ../redislink.
 *
 * Everything runs on the broker's loop thread. Each connection is an
 * rlink: a libuv stream, hiredis's reply reader and command formatter,
 * none of hiredis's async API (rlink.h says why).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_REDIS_H
#define CONFAB_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <uv.h>
#include <confab/plugin.h>

#include <confab/dict.h>

#include "ranswer.h"
#include "rargs.h"
#include "rbase.h"
#include "rhistory.h"
#include "rlink.h"
#include "rops.h"
#include "rreply.h"
#include "rsettings.h"
#include "rwire.h"

/* Bounds that keep memory finite while Redis is slow. */
#define REDIS_MAX_INFLIGHT 4096    /* core requests waiting for Redis */
#define REDIS_MAX_HELD 1000        /* publishes of one room waiting for its SUBSCRIBE */
#define REDIS_LINGER_MS 1000       /* destroy: how long the goodbye may take */
#define REDIS_BACKOFF_FIRST_MS 100
#define REDIS_TICK_MS 250          /* how often probe and setup timeouts are checked */

typedef struct redis_state redis_state;
typedef struct rq rq;

/* ---- redis_scripts.c ---- */

enum redis_script {
	SCRIPT_PUBLISH,
	SCRIPT_DIRECT,
	SCRIPT_JOIN,
	SCRIPT_LEAVE,
	SCRIPT_ONLINE,
	SCRIPT_OFFLINE,
	SCRIPT_HEARTBEAT,
	SCRIPT_RECONCILE,
	SCRIPT_HISTORY,
	SCRIPT_GOODBYE,
	SCRIPT_PUBLISH_BATCH,
	SCRIPT_PRESENCE_BATCH,
	SCRIPT_EPOCH,
	SCRIPT_COUNT
};

/* The Lua text of each script, and a short name for logs. Every script
 * takes the key prefix as ARGV[1] and the channel prefix as ARGV[2]. */
extern const char *const redis_script_text[SCRIPT_COUNT];
extern const char *const redis_script_name[SCRIPT_COUNT];

/* ---- the text of messages: ../redislink/rwire.h ---- */

/* ---- redis_cmd.c ---- */

/* Called once per request: with Redis's reply, or with reply == NULL when
 * the link went away (or destroy gave up on it). `l` is the link the
 * reply came on (NULL with no reply). Handlers that change the link's
 * state act only when `l` is still s->cmd: a guard, as a link stops
 * being s->cmd only by being closed, after which it calls nothing. */
typedef void (*rq_handler)(redis_state *s, rq *q, const rlink *l, redisReply *reply);

struct rq {
	redis_state *s;
	rq *prev, *next;             /* in s->inflight while a link holds it, newest first */
	const rlink *link;           /* the link it was sent on */
	uint64_t sent_at;            /* uv_now when it was handed to the link */
	uint64_t sent_ns;            /* ... and uv_hrtime: its script's latency */
	rq *held_next;               /* in a room's held list, or s->batch */
	rq *subs;                    /* a batch: the publishes it carries */
	rq_handler handle;
	int script;                  /* enum redis_script, or -1: a plain command */
	int aux;                     /* handler's own use */
	bool retried;                /* NOSCRIPT: sent again with EVAL */
	bool by_eval;                /* sent with the script's text */
	bool core;                   /* the core waits for it (counts in n_core) */
	bool orphan;                 /* destroy answered the core already */
	bool sent;                   /* handed to a link: a lost reply leaves the
				      * outcome unknown (it may have run) */
	bool send_cb;                /* done.send (ABI 1.4 slots), not done.publish
				      * or done.status */
	uint64_t seq;                /* waiting for WAIT (redis_wait.c): its seq, */
	char *repeat;                /* ... or an idempotent repeat's "SEQ ID TS" */
	unsigned nkeys;              /* scripts: how many leading args are KEYS */
	rargs args;                  /* the command's (../redislink/rargs.h) */
	rops_done done;              /* the core's callback, by slot */
	void *arg;
};

/* A request for `script` (or -1 and a plain command in the args). */
rq *rq_new(redis_state *s, rq_handler handle, int script);
void rq_free(rq *q);
/* Hand the request to link `l` (queued there even while it connects).
 * 0: the handler will be called exactly once. Otherwise
 * CONFAB_EUNAVAILABLE (no link, or a failed one) or CONFAB_ENOMEM, and
 * nothing was sent: the caller still owns `q`. */
int rq_send(redis_state *s, rlink *l, rq *q);
/* rq_send, and free `q` when it fails. */
int rq_send_or_free(redis_state *s, rlink *l, rq *q);
/* The oldest request still waiting for its reply on `l`, or NULL. A
 * connection answers in order: when this one is late, all are. */
const rq *rq_oldest(const redis_state *s, const rlink *l);
/* Answer every core request still waiting with CONFAB_EUNAVAILABLE now
 * (destroy): their replies, if any come, are then dropped. */
void rq_orphan_all(redis_state *s);

/* ---- the instance ---- */

typedef enum link_state {
	LINK_DOWN,                   /* no connection; a reconnect is scheduled */
	LINK_CONNECTING,             /* links open, setup or first probe pending */
	LINK_UP                      /* serving: the probe came back */
} link_state;

/* One `sentinels` entry: an address or a DNS name, and a port. */
typedef rset_addr redis_sentinel;

/* One room this node has users in (or had, while a SUBSCRIBE of it is
 * still unconfirmed). */
typedef struct lroom {
	confab_dict *users;                 /* this node's users in the room (no values) */
	unsigned subs_pending;       /* SUBSCRIBEs sent on the current connection, unconfirmed */
	rq *held, *held_tail;        /* publishes waiting for that confirmation */
	size_t n_held;
	unsigned joins_pending;      /* join scripts sent, not answered yet */
	rwait *waiting;              /* joins waiting for both, newest first */
	bool refreshed;              /* a publish that refreshed the room's expiry */
	uint64_t refreshed_at;       /* went through; uv_now of its answer */
	char epoch[CONFAB_EPOCH_MAX + 1];  /* the room's epoch as last heard ("": none yet) */
} lroom;

struct redis_state {
	rbase base;                  /* first: the host, the loop, what the core told us
				      * (rooms, users), the probes' nonce (rbase.h) */

	/* settings */
	char addr[256];              /* [redis] host: an address or a DNS name;
				      * with sentinels, the master they named last */
	int port;
	redis_sentinel sentinels[16];
	size_t n_sentinels;          /* 0: host/port, no Sentinel */
	char *master_name;
	char *sentinel_password;     /* NULL: no AUTH to the sentinels */
	unsigned ack_replicas;       /* WAIT for this many after publishes; 0: none */
	rtls_config *tls;            /* NULL: plain TCP; shared by every link */
	bool tls_no_verify;
	char *password;              /* NULL: no AUTH */
	long db;
	char *prefix;                /* keys: [redis] prefix */
	char *chan_prefix;           /* channels: prefix, plus "db<N>:" when db != 0 */
	char *node_chan;             /* chan_prefix "node:" node_id */
	const char *node_id;
	uint64_t gen;                /* the generation of the current link: set by
				      * each reconcile above every earlier one
				      * (wall-clock ms, or one more), carried by
				      * every script that writes this node's state
				      * (redis_scripts.c, node:N:gen) */
	rset_common common;          /* timings, [broker] limits */

	/* the links (redis_conn.c) */
	rlink *cmd;                  /* scripts, PUBLISH, queries */
	rlink *sub;                  /* SUBSCRIBE / UNSUBSCRIBE only (subscriber) */
	link_state link;
	bool cmd_ready;              /* setup of cmd answered */
	bool sub_ready;              /* the node channel's SUBSCRIBE confirmed */
	bool was_up;                 /* has been up since start */
	uint64_t connect_started;    /* uv_now when the current attempt began */
	uint64_t down_since;         /* uv_now when the link last went down */
	unsigned backoff_ms;
	unsigned attempts;           /* failed attempts in this outage */
	char last_reason[640];       /* of the latest failure, to log changes only
				      * (room for a 253-character host name twice) */
	char sha[SCRIPT_COUNT][41];  /* from SCRIPT LOAD; "" until known */
	bool sha_ok[SCRIPT_COUNT];   /* Redis has it: EVALSHA works */

	bool fail_at_once;           /* conn_fail: reconnect without the backoff */

	/* Sentinel (redis_sentinel.c) */
	rlink *sq;                   /* asking one sentinel where the master is */
	size_t sq_next;              /* the sentinel asked first next time */
	size_t sq_asked;             /* sentinels asked in this round */
	unsigned sq_unknown;         /* ... that do not know master_name */
	uint64_t sq_started;         /* uv_now when the current one was asked */
	char sq_why[600];            /* what each said, for the round's line */
	char sq_first[300];          /* what the first said, */
	bool sq_same;                /* ... and whether all said just that */
	rlink *ssub;                 /* subscribed to +switch-master on a sentinel */
	size_t ssub_idx;
	unsigned ssub_failures;      /* sentinels lost in a row without a subscribe */
	bool ssub_up, ssub_was_up;   /* the watch is subscribed; has been (metrics) */
	char ssub_last[300];         /* the last line about it: log changes only */
	uv_timer_t ssub_timer;       /* subscribes again after a whole round failed;
				      * while subscribed, PINGs the sentinel */
	bool ssub_ping_out;          /* a PING waits for its answer, */
	uint64_t ssub_ping_at;       /* ... sent at this uv_now */
	char odown_host[256];        /* the master the sentinels found down (+odown), */
	int odown_port;              /* ... "" when none: not written to for */
	uint64_t odown_at;           /* ... SENTINEL_ODOWN_HOLD_MS, or until -odown
				      * or +switch-master */

	/* WAIT (redis_wait.c) */
	rq *wait_open, *wait_open_tail; /* publishes answered since the last WAIT */
	const rlink *wait_link;      /* ... on this link */
	bool wait_out;               /* a WAIT is in flight */
	bool wait_short;             /* the last WAIT found too few replicas */
	uv_check_t wait_check;       /* sends the WAIT at the end of the turn */

	/* the probe */
	uint64_t probe_seq;
	bool probe_out;              /* a probe is on its way */
	uint64_t probe_sent;         /* uv_now when it was sent */
	uint64_t sub_heard;          /* uv_now of the subscription's last message */
	unsigned tick_ms;            /* the period of the probe timer */
	uint64_t last_tick;          /* uv_now of its last run */
	bool foreign_probe_warned;

	/* timers */
	uv_timer_t reconnect_timer, probe_timer, heartbeat_timer, linger_timer;
	int handles;                 /* open timers, links, and destroy itself */

	bool destroying;
	bool goodbye_done;           /* destroy: the goodbye's reply came */

	/* the core's requests (redis_ops.c) */
	rq *inflight;                /* requests the links hold, newest first */
	rq *inflight_tail;           /* ... and the oldest */
	bool presence_dirty;         /* a presence script failed: reconcile at the next heartbeat */
	rq *batch, *batch_tail;      /* publishes for the end of the turn */
	uv_check_t batch_check;      /* sends them at the end of the turn */
	uv_timer_t batch_timer;      /* ... or when the batch window ends */
	uint64_t batch_sent_at;      /* uv_now of the last send */
};
/* rbase_new allocates the state through its base */
_Static_assert(offsetof(redis_state, base) == 0, "rbase first");
_Static_assert(SCRIPT_COUNT <= RBASE_SCRIPTS_MAX, "a script_seconds series per script");

#define redis_log(s, level, ...) ((s)->base.host->log((s)->base.ctx, (level), __VA_ARGS__))

/* ---- redis.c ---- */

/* Frees the instance and everything it owns (no handle may be open). */
void redis_state_free(redis_state *s);

/* ---- redis_conn.c ---- */

/* start(): timers, first connection attempt. 0 or a negative code. */
int conn_start(redis_state *s);
/* destroy(): goodbye, close everything; frees `s` when the last handle
 * is closed (maybe at once). */
void conn_destroy(redis_state *s);
/* Frees `s` once nothing is open any more. */
void conn_release(redis_state *s);
/* Close both links, report health down, schedule a reconnect with new
 * links. */
void conn_fail(redis_state *s, const char *fmt, ...) CONFAB_PRINTF(2, 3);
/* A request on the command link was answered (rq_free'd): during destroy,
 * the link closes once the goodbye and everything before it are in. */
void conn_reply_done(redis_state *s);
/* True when requests of the core are served. */
bool conn_serving(const redis_state *s);
/* SUBSCRIBE / UNSUBSCRIBE a room's channel on the current connection
 * (nothing when there is none: the next setup subscribes what is needed). */
void conn_subscribe(redis_state *s, const char *room, lroom *r);
void conn_unsubscribe(redis_state *s, const char *room);
/* A probe came back on our node channel. */
void conn_probe_seen(redis_state *s, const char *token);

/* The rest of the connect: open both links to s->addr:s->port and queue
 * their setup (redis_sentinel.c calls it once a sentinel named the
 * master). */
void conn_open_links(redis_state *s);
/* A new link counted in s->handles (redis_sentinel.c's too); NULL when out
 * of memory. */
rlink *conn_link_open(redis_state *s, const rlink_opts *o);
/* rlink_close, and the handle count. */
void conn_link_drop(redis_state *s, rlink *l);
/* Close one of the instance's timers (counted in s->handles). */
void conn_close_timer(uv_timer_t *t);
/* While down: reconnect now instead of after the backoff. */
void conn_reconnect_now(redis_state *s);

/* ---- redis_sentinel.c ---- */

/* Ask the sentinels, one after the other, where master_name is; then
 * conn_open_links, or conn_fail with one line for the whole round. */
void sentinel_ask(redis_state *s);
/* The sentinel asked did not answer within probe_timeout_ms: the next. */
void sentinel_ask_timeout(redis_state *s);
/* Stop asking (conn_fail, destroy). */
void sentinel_stop_asking(redis_state *s);
/* The command link's first command: ROLE, whose answer must be "master"
 * before anything else is sent (sentinel_role_ok then queues the setup). */
int sentinel_check_role(redis_state *s);
/* Subscribe to +switch-master on one sentinel (start), stop (destroy). */
void sentinel_watch(redis_state *s);
void sentinel_unwatch(redis_state *s);
/* ROLE said master: the rest of the command link's setup. */
int conn_setup_command_link(redis_state *s);

/* ---- redis_wait.c ---- */

/* A publish request `q` was carried out on link `l` with `seq` (or was an
 * idempotent repeat, `repeat`): answer it now, or when a WAIT says
 * ack_replicas replicas have it (then `q` is taken: true). */
bool wait_hold(redis_state *s, rq *q, const rlink *l, uint64_t seq, const char *repeat);
/* The link the held publishes ran on is gone (conn_fail, destroy): they
 * answer CONFAB_EUNKNOWN now. */
void wait_link_gone(redis_state *s);

/* ---- redis_batch.c ---- */

/* Send `q` (a publish, the core's, or a join, leave, online or offline
 * script) with the others of this turn of the loop, in order. A publish's
 * handler is called exactly once, as with rq_send; so is a presence
 * change's, with the reply of the call that carried it (a batch's reply
 * for every change in it) or NULL when it was lost. */
void batch_send(redis_state *s, rq *q);
/* Answer every publish still waiting with CONFAB_EUNAVAILABLE and drop the
 * rest (destroy). */
void batch_fail_all(redis_state *s);

/* ---- redis_ops.c ---- */

/* The arguments of a publish request, in order (redis_ops.c builds them,
 * redis_batch.c reads them). */
enum { PUB_SEQ_KEY, PUB_HIST_KEY, PUB_EPOCH_KEY, PUB_P, PUB_C, PUB_ROOM, PUB_HEAD_A,
       PUB_HEAD_B, PUB_BODY, PUB_HISTORY_SIZE, PUB_ROOM_TTL, PUB_FRESH, PUB_REFRESH,
       /* publish_idem's (ABI 1.4) only: the idem key's name ("" for none),
	* idem_window, the message's id and ts. A publish with a key is
	* always sent alone (redis_batch.c). */
       PUB_IDEM, PUB_WINDOW, PUB_ID, PUB_TS };
/* The status of a request whose reply is lost (reply NULL): it may have
 * run when it was sent (CONFAB_EUNKNOWN), not when it never left this
 * node (CONFAB_EUNAVAILABLE). */
int ops_lost_status(const rq *q);
/* A publish request with an idem key. */
bool ops_has_idem(const rq *q);
/* Answer a publish request: done.publish or done.send, whichever the
 * core gave. `repeat` is the text "SEQ ID TS" of an idempotent repeat
 * (NULL for a new message: then id and ts are the request's). */
void ops_publish_answer(redis_state *s, rq *q, int status, uint64_t seq, const char *repeat);

/* The arguments of a presence request (join, leave, online, offline):
 * P, C, node, generation, then the room (join, leave) and the user. */
enum { PRES_P, PRES_C, PRES_NODE, PRES_GEN, PRES_ROOM };
/* A reconcile's reply that says Redis knows a newer generation of this
 * node than the one it carried: takes a generation above it and sends the
 * reconcile again (with the same handler). true when the reply was that. */
bool ops_reconcile_refused(redis_state *s, const rq *q, const redisReply *reply);
/* A publish request was carried out: when it refreshed its room's expiry,
 * the next refresh is due room_ttl/32 from now. */
void ops_published(redis_state *s, const rq *q);


extern const confab_backplane_ops redis_backplane_ops;
/* The reconcile request: make Redis's record of this node equal to the
 * bookkeeping. NULL when out of memory. */
rq *ops_reconcile_request(redis_state *s);
/* Log an unexpected reply once, where it is decided, and say what the
 * core should answer. */
int ops_reply_status(redis_state *s, const char *what, const redisReply *reply);
/* A room's SUBSCRIBE was confirmed: release what waited for it. */
void ops_room_subscribed(redis_state *s, const char *room);
/* The subscription connection is gone: fail held publishes, forget
 * pending SUBSCRIBEs, drop rooms nobody is in. */
void ops_subscriptions_reset(redis_state *s);
/* A message arrived on one of our channels. */
void ops_on_message(redis_state *s, const char *channel, const char *text, size_t len);
/* Frees the bookkeeping (destroy). */
void ops_free(redis_state *s);
/* Free function for lroom values (confab_dict_free). */
void ops_lroom_free(void *p);

/* How rops.h makes, frees and reads this plugin's lroom values. */
extern const rops_room_kind ops_lroom_kind;

#endif /* CONFAB_REDIS_H */
