/* The `redis_cluster` backplane: many confabd nodes share rooms through a
 * Redis Cluster (docs/backplane-redis-cluster.md).
 *
 * The meaning of every slot is the `redis` backplane's
 * (docs/backplane-redis.md); what differs is where things live:
 *   - rooms and users are mapped onto a fixed number of partitions, each
 *     with one hash tag, so one Lua script still orders, stores and
 *     publishes a room's message atomically on the master owning it;
 *   - live delivery is sharded pub/sub (SSUBSCRIBE / SPUBLISH), one
 *     channel per partition, and a node subscribes to the partitions it
 *     has members or users in, and drops the envelopes it does not need;
 *   - this node's presence record (node:N:*, its generation, the nodes
 *     heartbeat zset) is kept per partition, next to the rooms and users
 *     it describes.
 *
 * Everything runs on the broker's loop thread, on rlink connections
 * (../redislink/rlink.h), never hiredis's async API.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_CLUSTER_H
#define CONFAB_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
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
#include "rslot.h"
#include "rwire.h"

#define CL_MAX_INFLIGHT 4096   /* core requests waiting for Redis */
#define CL_MAX_HELD 1000       /* publishes of one partition waiting for its SSUBSCRIBE */
#define CL_LINGER_MS 1000      /* destroy: how long the goodbyes may take */
#define CL_BACKOFF_FIRST_MS 100
#define CL_TICK_MS 100         /* retries, deadlines, probes are checked this often */
#define CL_RETRY_MS 100        /* TRYAGAIN / CLUSTERDOWN / MOVED: resend after this */
#define CL_PARTITIONS_MAX 1024

typedef struct cl_state cl_state;
typedef struct cq cq;
typedef struct cmaster cmaster;
typedef struct wgroup wgroup;

/* ---- cluster_part.c ---- */

/* FNV-1a 32-bit of a name, modulo the partitions. */
unsigned part_of(const cl_state *s, const char *name);
/* Computes every partition's tag, key prefix, channel and slot.
 * 0 or CONFAB_ENOMEM. */
int part_init(cl_state *s);
/* The partition whose channel is `channel`, or -1. */
int part_of_channel(const cl_state *s, const char *channel, size_t len);
/* The partition whose slot is `slot`, or -1. */
int part_of_slot(const cl_state *s, unsigned slot);

/* ---- cluster_scripts.c ---- */

enum cl_script {
	CS_PUBLISH,
	CS_DIRECT,
	CS_JOIN,
	CS_LEAVE,
	CS_ONLINE,
	CS_OFFLINE,
	CS_HEARTBEAT,
	CS_RECONCILE,
	CS_HISTORY,
	CS_GOODBYE,
	CS_EPOCH,
	CS_CONFIG,
	CS_FLUSH,
	CS_PUBLISH_BATCH,
	CS_MULTI,                   /* several partitions of one master: cluster_cmd.c */
	CS_COUNT
};
extern const char *const cl_script_text[CS_COUNT];
extern const char *const cl_script_name[CS_COUNT];

/* ---- cluster_cmd.c ---- */

/* Called with the request's reply, or NULL when it was lost (link gone,
 * deadline passed, destroy): once, or, for a publish that waits for its
 * WAIT (cluster_wait.c), once more with WAIT's reply. Returns true when
 * the request is finished (the caller frees it), false when it waits. */
typedef bool (*cq_handler)(cl_state *s, cq *q, redisReply *reply);

struct cq {
	cl_state *s;
	cq *prev, *next;             /* in s->reqs (on a link) or s->pend (waiting) */
	bool pending;                /* in s->pend */
	bool held;                   /* waits for its partition's subscription */
	cq_handler handle;
	int script;                  /* enum cl_script, or -1: a plain command */
	int part;                    /* the partition it is routed by, -1: by `slot` */
	unsigned slot;               /* the slot it is routed by */
	bool early;                  /* may go to a master still being set up */
	int aux;                     /* the handler's own use */
	unsigned nkeys;
	uint64_t deadline;           /* uv_now after which it fails */
	uint64_t sent_ns;            /* uv_hrtime when last handed to a link */
	uint64_t retry_at;           /* waiting to be resent (0: not waiting) */
	cmaster *on;                 /* the master whose link has it, or NULL */
	rlink *link;                 /* ... and that link (valid in the handler) */
	cmaster *on_last;            /* the master of the last reply (valid in the handler) */
	cmaster *to;                 /* MOVED/ASK: where to send it next, or NULL */
	bool asking;                 /* ... with ASKING first */
	bool by_eval, retried_eval;
	bool core, orphan;
	bool sent;                   /* went out at least once and may have run */
	bool waiting;                /* its script ran: it waits for its group's WAIT */
	wgroup *group;               /* publishes: the WAIT that covers it (cluster_wait.c) */
	cq *subs;                    /* a batch: the publishes it carries, in order */
	cq *bnext;                   /* in a batch, or in a partition's list for the next one */
	cq *parts;                   /* a multi: the per-partition requests it carries, in order */
	cq *pnext;                   /* in a multi, the turn's deferred list, or a master's share */
	bool send_cb;
	uint64_t seq;                /* publish: the seq the script gave */
	char *repeat;                /* publish_idem: "SEQ ID TS" of a repeat */
	rargs args;                  /* the command's (../redislink/rargs.h) */
	rops_done done;              /* the core's callback, by slot */
	void *arg;
};

cq *cq_new(cl_state *s, cq_handler handle, int script, int part);
void cq_free(cq *q);
/* Route `q` by its partition and send it. Its handler will be called
 * exactly once (possibly before this returns). Never fails: a request that
 * cannot go now waits for a retry until its deadline. */
void cq_submit(cl_state *s, cq *q);
/* Send `q` on exactly this master's command link, no routing, no retry
 * (setup, probes). 0 or CONFAB_EUNAVAILABLE (nothing sent, caller owns q). */
int cq_send_on(cl_state *s, cmaster *m, cq *q);
/* Resend requests whose retry is due; fail those past their deadline. */
void cq_tick(cl_state *s);
/* Send (or, `fail`, answer as lost) the requests held for partition k. */
void cq_release(cl_state *s, unsigned k, bool fail);
/* As cq_submit, at the end of the loop turn, with the other deferred
 * requests for the same master as one call (a multi script). Only for
 * the scripts the multi script carries (publish, publish_batch, flush,
 * heartbeat). */
void cq_defer(cl_state *s, cq *q);
/* End of the turn (cluster_batch.c's check): send what was deferred. */
void cq_send_deferred(cl_state *s);
/* destroy: answer what was deferred as lost. */
void cq_fail_deferred(cl_state *s);

/* ---- cluster_wait.c ---- */

/* A publish script went out on m's command link: it joins the group the
 * next WAIT on that link covers. */
void wait_sent(cl_state *s, cmaster *m, cq *q);
/* It will not be covered (an error or redirection answered it). */
void wait_ungroup(cq *q);
/* From the publish handler, its script done: wait for the group's WAIT
 * (true: the handler is called again with WAIT's reply, q->waiting set,
 * and q is freed after), or false: no WAIT can cover it. */
bool wait_join(cl_state *s, cq *q);
/* destroy: answer every waiter now (lost). */
void wait_orphan_all(cl_state *s);
/* The instance is being freed: free every group left. */
void wait_free_all(cl_state *s);
/* The master is going away: its group not yet covered fails. */
void wait_master_gone(cl_state *s, cmaster *m);
/* Answer every core request still waiting with its lost status (destroy). */
void cq_orphan_all(cl_state *s);
/* The instance is being freed: free whatever requests are left. */
void cq_free_all(cl_state *s);

/* ---- masters and partitions ---- */

typedef enum mstate { M_DOWN, M_CONNECTING, M_UP } mstate;

/* One master of the slot map (or one an ASK named). */
struct cmaster {
	cl_state *s;
	cmaster *next;               /* in s->masters */
	char host[256];
	int port;
	char name[280];              /* "host:port" for logs */
	unsigned serial;             /* in probe tokens */
	rlink *cmd, *sub;
	mstate state;
	unsigned owned;              /* partitions it serves in the current map */
	int probe_part;              /* the partition probed through (lowest owned), -1 */
	unsigned setup_pending;      /* SCRIPT LOADs and reconciles not answered */
	bool probe_out;
	uint64_t probe_seq, probe_sent, sub_heard, connect_started, down_since;
	unsigned backoff_ms;
	uv_timer_t timer;            /* reconnect; closing it frees the master */
	bool reconnecting;           /* the timer is set */
	char sha[CS_COUNT][41];
	bool sha_ok[CS_COUNT];
	char last_reason[200];
	bool was_up;
	bool gone;                   /* no longer in the map: freed when idle */
	wgroup *open;                /* publishes sent since its last WAIT */
	bool wait_out;               /* a WAIT is in flight */
	bool wait_short;             /* the last WAIT said fewer than ack_replicas */
	uint64_t full_wait_at;       /* uv_now of its last WAIT with ack_timeout_ms */
	cq *share, *share_tail;      /* cq_send_deferred: this turn's requests for it */
	bool no_multi;               /* it could not load the multi script (Redis < 7) */
	cmaster *share_next;         /* ... in the list of masters that have some */
};

typedef enum substate { SUB_NONE, SUB_PENDING, SUB_OK } substate;

typedef struct partition {
	char *prefix;                /* "{" tag "}": every key of the partition starts so */
	char *channel;               /* prefix "ch" */
	unsigned slot;
	cmaster *owner;              /* NULL: no master serves its slot */
	size_t need;                 /* local rooms with users + local users in it */
	substate sub;
	cmaster *sub_on;             /* the master the SSUBSCRIBE went to */
	unsigned unsubs;             /* our SUNSUBSCRIBEs whose push has not come */
	unsigned unsub_serial;       /* ... sent to this master */
	uint64_t gen;                /* generation of this node's record in it */
	bool dirty;                  /* a presence script failed: reconcile again */
	size_t n_held;               /* publishes waiting for the subscription */
	size_t onlines_waiting;      /* local users announced once it is subscribed */
	cq *batch, *batch_tail;      /* publishes of this loop turn (cluster_batch.c) */
} partition;

/* ---- cluster_master.c ---- */

/* A master by address, created (without links) when unknown; NULL: ENOMEM
 * or destroying. */
cmaster *master_new(cl_state *s, const char *host, int port);
/* master_new, with a command link of its own when it owns no partition
 * (a redirection's target, the config record's master). */
cmaster *master_get(cl_state *s, const char *host, int port);
cmaster *master_by_serial(cl_state *s, unsigned serial);
/* Open both links and send the setup (the partitions it owns now). */
void master_connect(cmaster *m);
/* Close its links (their requests are lost) and free it. */
void master_free(cmaster *m);
/* Sets confab_redis_link_up{link} to how many masters of the slot map
 * are up with that link, and confab_redis_subscriptions to how many
 * partitions are subscribed (each tick: bounded whatever the topology). */
void master_metrics(cl_state *s);
/* A link failed: close both, fail what depends on it, reconnect. */
void master_fail(cmaster *m, const char *fmt, ...) CONFAB_PRINTF(2, 3);
/* The tick: setup, request and probe deadlines; the periodic probe. */
void master_check(cmaster *m, uint64_t now);
/* Subscribe or unsubscribe partition k as its need says. */
void master_sync_sub(cl_state *s, unsigned k);
/* A probe came back (token) through some master's subscription. */
void master_probe_seen(cl_state *s, const char *token);
/* A reconcile of partition k on its current owner (`setup`: part of the
 * owner's setup, which waits for it). */
int master_reconcile(cl_state *s, unsigned k, bool setup);

/* ---- cluster_topo.c ---- */

/* start(): timers, the first map refresh. 0 or a negative code. */
int topo_start(cl_state *s);
/* destroy(): goodbyes, close everything; frees s when all is closed. */
void topo_destroy(cl_state *s);
/* Ask for a new slot map soon (coalesced). */
void topo_refresh(cl_state *s);
/* Can requests of partition k go out now? */
bool topo_served(const cl_state *s, unsigned k);
/* Recompute and report health (up, degraded, down). */
void topo_health(cl_state *s);

/* ---- cluster_ops.c ---- */

typedef struct gap_item gap_item;

typedef struct lroom {
	confab_dict *users;
	unsigned part;
	uint64_t last_seq;           /* the last message delivered here (0: none yet) */
	bool filling;                /* missed messages are being read from history */
	int fill_id;                 /* ... by the request with this aux */
	gap_item *gq, *gq_tail;      /* envelopes waiting for that, oldest first */
	size_t gq_n;
	unsigned joins_pending;
	rwait *waiting;              /* newest first */
	bool refreshed;
	uint64_t refreshed_at;
	char epoch[CONFAB_EPOCH_MAX + 1];
} lroom;

/* cluster_gap.c: a room envelope (parsed `m` of `text`) for local room
 * `r`: delivered in seq order, gaps filled from history first. */
void gap_envelope(cl_state *s, const char *room, lroom *r, const char *text, size_t len,
		  wire_msg *m);
/* Partition k is subscribed again: its rooms read what they missed. */
void gap_resubscribed(cl_state *s, unsigned k);
void gap_free(lroom *r);

extern const confab_backplane_ops cluster_backplane_ops;
/* May a core request for partition k go out now? 0 or CONFAB_EUNAVAILABLE. */
int ops_admit(cl_state *s, unsigned k);
/* The request is the core's from now on (counted, answered at destroy). */
void ops_own(cl_state *s, cq *q, void *arg);
/* The room's record keys (seq, hist, epoch) in q's partition; the prefix
 * and channel of q's partition (ARGV[1..2] of every script). */
int ops_record_keys(const cl_state *s, cq *q, const char *room);
int ops_prefixes(const cl_state *s, cq *q);

/* cluster_query.c: the backplane's read slots. */
int query_presence(void *state, const char *room, confab_presence_done done, void *arg);
int query_history(void *state, const char *room, bool has_since, uint64_t since, size_t limit,
		  confab_history_done done, void *arg);
int query_history_epoch(void *state, const char *room, const char *epoch, bool has_since,
			uint64_t since, size_t limit, confab_history_epoch_done done, void *arg);
int query_room_epoch(void *state, const char *room, confab_epoch_done done, void *arg);
/* The reconcile request of partition k (new generation). NULL: ENOMEM. */
cq *ops_reconcile_request(cl_state *s, unsigned k);
/* A reconcile reply that says Redis knows a newer generation: resend
 * above it; true when it was that. */
bool ops_reconcile_refused(cl_state *s, cq *q, const redisReply *reply);
/* Partition k's subscription is confirmed: release held publishes and
 * the joins that waited for it. */
void ops_part_subscribed(cl_state *s, unsigned k);
/* Partition k's subscription (or master) is gone: fail held publishes and
 * waiting joins of its rooms when `fail`. */
void ops_part_reset(cl_state *s, unsigned k, bool fail);
/* A message on partition k's channel. */
void ops_on_message(cl_state *s, unsigned k, const char *text, size_t len);
/* Deadline of waiting joins and held publishes. */
void ops_tick(cl_state *s);
int ops_reply_status(cl_state *s, const char *what, const redisReply *reply);
void ops_free(cl_state *s);
/* WAIT said the replicas have these rooms' messages (all of partition k)
 * up to `up_to`: publish them (the flush script). */
void ops_flush(cl_state *s, unsigned k, const char *const *rooms, const uint64_t *up_to,
	       size_t n);
/* The publish request's handler: the script's reply, then (q->waiting)
 * WAIT's. Answers the core and returns true, or false while it waits. */
bool ops_publish_reply(cl_state *s, cq *q, redisReply *reply);
/* Answer a publish request (done.publish or done.send). */
void ops_publish_answer(cl_state *s, cq *q, int status);
/* A publish request's room (its arguments after the keys). */
#define PUB_ROOM(q) ((q)->args.argv[(q)->nkeys + 2])

/* cluster_batch.c: send `q` (a publish without idem key, not held) with
 * the other publishes of its partition in this loop turn, as one script.
 * Its handler is called exactly once, as with cq_submit. */
void batch_add(cl_state *s, cq *q);
/* Start the end-of-turn check (batches, deferred requests). */
void batch_start(cl_state *s);
/* Make sure the end-of-turn check runs this turn. */
void batch_wake(cl_state *s);
/* destroy: answer what waits for the end of the turn (unavailable). */
void batch_fail_all(cl_state *s);

/* ---- the instance ---- */

struct cl_state {
	rbase base;                  /* first: the host, the loop, what the core told us
				      * (rooms, users), the probes' nonce (rbase.h) */

	/* settings */
	rset_addr *seeds;            /* [redis_cluster] seeds */
	size_t n_seeds;
	rtls_config *tls;            /* NULL: plain TCP; shared by every link */
	bool tls_no_verify;
	char *user, *password;
	char *prefix;
	unsigned partitions;
	unsigned ack_replicas;
	unsigned ack_timeout_ms;
	const char *node_id;
	rset_common common;          /* timings, [broker] limits */
	unsigned refresh_interval_ms;
	char *config_key, *config_value;

	partition *part;
	int16_t *slot_part;          /* slot -> partition, -1 */
	unsigned next_serial;

	/* topology */
	cmaster *masters;
	rslot_map map;
	bool have_map;
	rlink *topo;                 /* the link the map is asked on */
	size_t topo_next;            /* the next candidate to try */
	size_t topo_tried;           /* candidates failed in a row */
	char topo_host[256];         /* the topo link's host */
	char topo_name[280];
	bool topo_slots;             /* ask CLUSTER SLOTS (no CLUSTER SHARDS) */
	char topo_last_err[700];
	bool topo_busy, topo_again;
	uint64_t topo_last;          /* uv_now of the last refresh asked */
	unsigned topo_backoff;
	char topo_problem[700];      /* what keeps the map from being usable ("" none) */
	bool config_ok, config_busy;
	char config_problem[400];
	char cluster_down[400];      /* CLUSTER INFO says cluster_state:fail, "" ok */
	long slots_fail;             /* CLUSTER INFO's cluster_slots_fail */
	char uncovered[700];         /* uncovered slots (partitions unserved), "" none */
	bool health_up, health_degraded;
	bool ever_served;            /* every partition was served once */
	char health_reason[800], degraded_reason[800];

	uv_timer_t tick, heartbeat_timer, linger_timer;
	uv_check_t wait_check;       /* sends the WAITs at the end of the turn */
	uv_check_t batch_check;      /* sends the turn's publish batches */
	wgroup *groups;              /* every WAIT group alive */
	int handles;
	uint64_t last_tick;
	unsigned goodbyes;           /* destroy: goodbyes not answered */
	bool destroying;

	/* bookkeeping */
	cq *reqs, *reqs_tail;        /* requests a link holds, oldest first */
	cq *pend, *pend_tail;        /* requests waiting (retry, held), oldest first */
	uint64_t waits_checked;      /* uv_now when waiting joins were last timed out */
	cq *deferred, *deferred_tail; /* cq_defer: for the end of the turn, oldest first */
	unsigned long n_multi;       /* multi calls sent */
	unsigned long n_split;       /* ... refused as a whole and sent per partition */
};
/* rbase_new allocates the state through its base */
_Static_assert(offsetof(cl_state, base) == 0, "rbase first");
_Static_assert(CS_COUNT <= RBASE_SCRIPTS_MAX, "a script_seconds series per script");

#define cl_log(s, level, ...) ((s)->base.host->log((s)->base.ctx, (level), __VA_ARGS__))

/* cluster.c */
void cl_state_free(cl_state *s);
void cl_release(cl_state *s);

/* How rops.h makes, frees and reads this plugin's lroom values. */
extern const rops_room_kind ops_lroom_kind;

#endif /* CONFAB_CLUSTER_H */
