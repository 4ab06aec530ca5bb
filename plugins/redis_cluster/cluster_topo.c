/* The cluster's shape and the truth about its health.
 *
 * The slot map comes from CLUSTER SHARDS (CLUSTER SLOTS on a Redis older
 * than 7), asked on one "topology" link to a known master or a seed, in
 * turn. It is asked again every refresh_interval_ms, every second while
 * some partition is unserved, and soon after anything that says it
 * changed: a MOVED, a lost link, a `sunsubscribe` that Redis sent itself
 * (its slot migrated, or its master failed over).
 *
 * The masters and their links are cluster_master.c's.
 *
 * Health: up when every partition has a master that serves and the
 * config record matches; degraded or down otherwise (see topo_health).
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <confab/ratelimit.h>

#include "cluster.h"

static void topo_ask(cl_state *s);
static void connect_masters(cl_state *s);

static uint64_t now(const cl_state *s)
{
	return uv_now(s->base.loop);
}

bool topo_served(const cl_state *s, unsigned k)
{
	const cmaster *m = s->part[k].owner;

	return s->config_ok && m != NULL && m->state == M_UP && !s->destroying;
}

/* ---- health ---- */

/* Down (503, every request refused by the core) when nothing can be
 * served: no slot map, a bad seed list, a Redis not in cluster mode, a
 * config record that differs, or no partition with a master up. When
 * only some partitions are unserved (a master down before its replica is
 * promoted, uncovered slots), the rooms of the others keep working:
 * degraded (ABI 1.5: 503 with the reason, requests still come, and those
 * of unserved partitions get `unavailable`); a broker without the degraded
 * slot gets down instead. */
void topo_health(cl_state *s)
{
	char reason[sizeof(s->health_reason)] = "", part_reason[sizeof(s->health_reason)] = "";
	unsigned unserved = 0;
	const cmaster *down = NULL;
	bool up, degraded, can_degrade = CONFAB_HAS(s->base.host->backplane, degraded) &&
					 s->base.host->backplane->degraded != NULL;

	if (s->destroying)
		return;
	bool first_connect = false;

	for (unsigned k = 0; k < s->partitions; k++) {
		const cmaster *m = s->part[k].owner;

		if (m == NULL || m->state != M_UP) {
			unserved++;
			if (down == NULL && m != NULL)
				down = m;
			first_connect = first_connect ||
					(m != NULL && m->state == M_CONNECTING && !m->was_up);
		}
	}
	if (s->uncovered[0] != '\0')
		snprintf(part_reason, sizeof(part_reason), "%s", s->uncovered);
	else if (unserved > 0 && down != NULL)
		snprintf(part_reason, sizeof(part_reason), "%u of %u partitions are not served "
			 "(master %.100s: %.200s)", unserved, s->partitions, down->name,
			 down->last_reason[0] ? down->last_reason : "connecting");
	else if (unserved > 0)
		snprintf(part_reason, sizeof(part_reason), "%u of %u partitions have no master",
			 unserved, s->partitions);

	if (s->topo_problem[0] != '\0')
		snprintf(reason, sizeof(reason), "%s", s->topo_problem);
	else if (s->cluster_down[0] != '\0')
		snprintf(reason, sizeof(reason), "%s", s->cluster_down);
	else if (!s->have_map)
		snprintf(reason, sizeof(reason), "no slot map yet");
	else if (!s->config_ok)
		snprintf(reason, sizeof(reason), "%s", s->config_problem[0] ? s->config_problem
					      : "checking the cluster's config record");
	else if (unserved == s->partitions || (unserved > 0 && !can_degrade))
		snprintf(reason, sizeof(reason), "%s", part_reason);
	else if (unserved > 0 && !s->ever_served && first_connect)
		/* Starting: not "degraded" while the first connections are
		 * still being made, only once one of them failed. */
		snprintf(reason, sizeof(reason), "connecting to the cluster's masters");
	up = reason[0] == '\0';
	degraded = up && unserved > 0;
	if (up && !degraded)
		s->ever_served = true;

	if (up != s->health_up || (!up && strcmp(reason, s->health_reason) != 0)) {
		s->health_up = up;
		snprintf(s->health_reason, sizeof(s->health_reason), "%s", reason);
		s->base.host->backplane->health(s->base.ctx, up, up ? NULL : reason);
		if (!up)
			s->health_degraded = false;  /* down overrides it */
	}
	if (up && can_degrade &&
	    (degraded != s->health_degraded ||
	     (degraded && strcmp(part_reason, s->degraded_reason) != 0))) {
		s->health_degraded = degraded;
		snprintf(s->degraded_reason, sizeof(s->degraded_reason), "%s", part_reason);
		s->base.host->backplane->degraded(s->base.ctx, degraded,
						  degraded ? part_reason : NULL);
	}
}

/* A condition of the map or the seeds: logged once when it changes. */
static void set_problem(cl_state *s, const char *fmt, ...) CONFAB_PRINTF(2, 3);
static void set_problem(cl_state *s, const char *fmt, ...)
{
	char text[sizeof(s->topo_problem)] = "";
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(text, sizeof(text), fmt, ap);
		va_end(ap);
	}
	if (strcmp(text, s->topo_problem) != 0) {
		if (text[0] != '\0')
			cl_log(s, CONFAB_LOG_ERROR, "%s", text);
		else if (s->topo_problem[0] != '\0')
			cl_log(s, CONFAB_LOG_INFO, "the cluster's slot map is usable again");
		snprintf(s->topo_problem, sizeof(s->topo_problem), "%s", text);
	}
	topo_health(s);
}

/* ---- the slot map ---- */

static bool config_reply(cl_state *s, cq *q, redisReply *reply)
{
	(void)q;
	s->config_busy = false;
	if (reply == NULL)
		return true;
	if (reply->type == REDIS_REPLY_STRING && strcmp(reply->str, s->config_value) == 0) {
		if (!s->config_ok && s->config_problem[0] != '\0')
			cl_log(s, CONFAB_LOG_INFO, "the cluster's record %s now matches this node",
			       s->config_key);
		s->config_ok = true;
		s->config_problem[0] = '\0';
		connect_masters(s);
	} else {
		char text[sizeof(s->config_problem)];

		if (reply->type == REDIS_REPLY_STRING)
			snprintf(text, sizeof(text), "this node has %s (prefix '%s'), the cluster's "
				 "record %s says %s: every node of a deployment must use the same "
				 "prefix and partitions; refusing", s->config_value, s->prefix,
				 s->config_key, reply->str);
		else
			snprintf(text, sizeof(text), "cannot read the cluster's record %s: %s",
				 s->config_key,
				 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		if (strcmp(text, s->config_problem) != 0)
			cl_log(s, CONFAB_LOG_ERROR, "%s", text);
		snprintf(s->config_problem, sizeof(s->config_problem), "%s", text);
		s->config_ok = false;
	}
	topo_health(s);
	return true;
}

static void config_check(cl_state *s)
{
	cq *q;

	if (s->config_busy)
		return;
	q = cq_new(s, config_reply, CS_CONFIG, -1);
	if (q == NULL || rargs_adds(&q->args, s->config_key) ||
	    rargs_adds(&q->args, s->config_value)) {
		cq_free(q);
		return;
	}
	q->slot = rslot_of(s->config_key, strlen(s->config_key));
	q->nkeys = 1;
	q->early = true;
	s->config_busy = true;
	cq_submit(s, q);
}

/* Partition k's slot now belongs to `m` (NULL: to nobody). */
static void part_move(cl_state *s, unsigned k, cmaster *m)
{
	partition *p = &s->part[k];

	p->owner = m;
	master_sync_sub(s, k);  /* unsubscribes from the old owner */
	/* The new owner may be a promoted replica that missed this node's
	 * last changes: register them again there, in a new generation. A
	 * master still connecting does it in its setup. */
	if (m != NULL && m->state == M_UP)
		master_reconcile(s, k, false);
}

/* Slots without a master that serves them: unassigned in the map, or
 * (CLUSTER INFO's cluster_slots_fail) owned by a master the cluster
 * flagged failed with no replica to take over. One line when it changes,
 * naming the partitions this leaves unserved. */
static void uncovered_update(cl_state *s)
{
	char text[sizeof(s->uncovered)] = "", list[160] = "";
	size_t used = 0;
	unsigned unserved = 0;

	if (s->map.uncovered == 0 && s->slots_fail <= 0) {
		if (s->uncovered[0] != '\0')
			cl_log(s, CONFAB_LOG_INFO, "every slot of the cluster has a master again");
		s->uncovered[0] = '\0';
		return;
	}
	for (unsigned k = 0; k < s->partitions; k++) {
		const cmaster *m = s->part[k].owner;

		if (m != NULL && (m->state != M_DOWN || s->slots_fail <= 0))
			continue;
		if (unserved++ < 12 && used < sizeof(list) - 16)
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%u",
						 used ? ", " : "", k);
	}
	snprintf(text, sizeof(text), "%zu slots of the cluster are uncovered (%zu without a master, "
		 "%ld whose master failed with no replica to take over); %u of %u partitions "
		 "are unserved (%s%s)", s->map.uncovered + (size_t)(s->slots_fail > 0 ? s->slots_fail : 0),
		 s->map.uncovered, s->slots_fail > 0 ? s->slots_fail : 0L, unserved, s->partitions,
		 unserved ? list : "none of this node's", unserved > 12 ? ", ..." : "");
	if (strcmp(text, s->uncovered) != 0)
		cl_log(s, CONFAB_LOG_ERROR, "%s", text);
	snprintf(s->uncovered, sizeof(s->uncovered), "%s", text);
}

/* Connect the masters that own partitions and have no links; only once
 * the config record matches: a node that will be refused writes nothing
 * (no reconcile, no generation key) into the deployment. */
static void connect_masters(cl_state *s)
{
	if (!s->config_ok)
		return;
	for (cmaster *m = s->masters; m != NULL; m = m->next)
		if (m->owned > 0 && m->state == M_DOWN && !m->reconnecting)
			master_connect(m);
	for (unsigned k = 0; k < s->partitions; k++)
		master_sync_sub(s, k);
}

static void apply_map(cl_state *s, rslot_map *nm)
{
	rslot_map_clear(&s->map);
	s->map = *nm;
	s->have_map = true;
	for (cmaster *m = s->masters; m != NULL; m = m->next) {
		m->owned = 0;
		m->probe_part = -1;
	}
	for (unsigned k = 0; k < s->partitions; k++) {
		int o = s->map.owner[s->part[k].slot];
		cmaster *m = NULL;

		if (o >= 0)
			m = master_new(s, s->map.masters[o].host, s->map.masters[o].port);
		if (m != NULL && m->owned++ == 0)
			m->probe_part = (int)k;
		if (s->part[k].owner != m)
			part_move(s, k, m);
	}
	/* Masters: let go of those that own nothing now. */
	for (cmaster *m = s->masters, *next; m != NULL; m = next) {
		next = m->next;
		if (m->owned > 0)
			continue;
		if (m->state != M_DOWN) {
			m->state = M_DOWN;
			rlink_close(m->sub);
			m->sub = NULL;
		}
		if (m->cmd == NULL || rlink_pending(m->cmd) == 0)
			master_free(m);
	}
	connect_masters(s);   /* and a probe partition may have changed hands */
	uncovered_update(s);
	set_problem(s, NULL);  /* the map came: seeds and cluster mode are fine */
	config_check(s);
	topo_health(s);
}

static void topo_close_link(cl_state *s)
{
	rlink *l = s->topo;

	s->topo = NULL;
	s->topo_busy = false;
	rlink_close(l);
}

static size_t candidates(const cl_state *s)
{
	return s->map.n_masters + s->n_seeds;
}

/* The topology link failed or gave nothing usable: the next candidate,
 * now while the round lasts, otherwise after a backoff (the tick). */
static void topo_next(cl_state *s, const char *why)
{
	topo_close_link(s);
	snprintf(s->topo_last_err, sizeof(s->topo_last_err), "%s", why);
	s->topo_next++;
	if (++s->topo_tried < candidates(s)) {
		topo_ask(s);
		return;
	}
	s->topo_tried = 0;
	if (!s->have_map || strncmp(s->topo_problem, "no seed", 7) == 0 ||
	    s->topo_problem[0] == '\0') {
		char seeds[200] = "";
		size_t used = 0;

		for (size_t i = 0; i < s->n_seeds && used < sizeof(seeds) - 8; i++)
			used += (size_t)snprintf(seeds + used, sizeof(seeds) - used, "%s%s:%d",
						 i ? ", " : "", s->seeds[i].host, s->seeds[i].port);
		if (!s->have_map)
			set_problem(s, "no seed answers as a Redis Cluster node (%s); last: %s",
				    seeds, why);
	}
	s->topo_backoff = s->topo_backoff * 2 > s->common.reconnect_max_ms
			? s->common.reconnect_max_ms : s->topo_backoff * 2;
}

static void on_topo_closed(rlink *l, const char *why, void *arg)
{
	cl_state *s = arg;
	char text[700];

	if (l != s->topo)
		return;
	snprintf(text, sizeof(text), "%s: %s", s->topo_name, why);
	topo_next(s, text);
}

static void topo_reply(rlink *l, redisReply *reply, void *arg)
{
	cl_state *s = arg;
	rslot_map nm;
	char why[200];
	int rc;

	if (l != s->topo || reply == NULL)
		return;  /* closed: on_topo_closed, or ours */
	s->topo_busy = false;
	if (reply->type == REDIS_REPLY_ERROR) {
		char text[700];

		if (!s->topo_slots && strstr(reply->str, "nknown subcommand") != NULL) {
			s->topo_slots = true;  /* Redis before 7: CLUSTER SLOTS */
			topo_ask(s);
			return;
		}
		if (strstr(reply->str, "cluster support disabled") != NULL) {
			set_problem(s, "%s is not in cluster mode (cluster-enabled no): redis_cluster "
				    "needs a Redis Cluster", s->topo_name);
			topo_close_link(s);
			s->topo_next++;
			return;
		}
		snprintf(text, sizeof(text), "%s answered %s", s->topo_name, reply->str);
		topo_next(s, text);
		return;
	}
	rslot_map_init(&nm);
	nm.tls = s->map.tls;  /* TLS links: the map names the nodes' TLS ports */
	rc = s->topo_slots ? rslot_parse_slots(&nm, reply, s->topo_host, why, sizeof(why))
			   : rslot_parse_shards(&nm, reply, s->topo_host, why, sizeof(why));
	if (rc != 0) {
		char text[700];

		rslot_map_clear(&nm);
		snprintf(text, sizeof(text), "the slot map from %s cannot be read: %s",
			 s->topo_name, why);
		topo_next(s, text);
		return;
	}
	s->topo_tried = 0;
	s->topo_backoff = CL_BACKOFF_FIRST_MS;
	apply_map(s, &nm);
	if (s->topo_again) {
		s->topo_again = false;
		topo_ask(s);
	}
}

/* A field of CLUSTER INFO ("name:value\r\n" lines), or -1. */
static long info_field(const char *text, const char *name)
{
	const char *p = strstr(text, name);
	size_t n = strlen(name);

	return p != NULL && p[n] == ':' ? strtol(p + n + 1, NULL, 10) : -1;
}

/* With cluster-require-full-coverage yes (the default), a cluster with a
 * slot whose master failed and has no replica to promote refuses every
 * command (CLUSTERDOWN) until the slot is served again: the map still
 * names the failed master, so this is how it is seen, and said. */
static void topo_info_reply(rlink *l, redisReply *reply, void *arg)
{
	cl_state *s = arg;
	char text[sizeof(s->cluster_down)] = "";

	if (l != s->topo || reply == NULL || reply->type != REDIS_REPLY_STRING)
		return;
	s->slots_fail = info_field(reply->str, "cluster_slots_fail");
	if (s->have_map)
		uncovered_update(s);
	if (strstr(reply->str, "cluster_state:fail") != NULL)
		snprintf(text, sizeof(text), "the cluster is down (cluster_state:fail; %ld slots "
			 "served by a failed master, %ld of 16384 assigned): Redis refuses every "
			 "request until each slot has a master again (a master down with no replica "
			 "to promote?)", info_field(reply->str, "cluster_slots_fail"),
			 info_field(reply->str, "cluster_slots_assigned"));
	if (strcmp(text, s->cluster_down) == 0)
		return;
	if (text[0] != '\0')
		cl_log(s, CONFAB_LOG_ERROR, "%s", text);
	else
		cl_log(s, CONFAB_LOG_INFO, "the cluster is up again (cluster_state:ok)");
	snprintf(s->cluster_down, sizeof(s->cluster_down), "%s", text);
	topo_health(s);
}

static void topo_ask(cl_state *s)
{
	static const char *shards[] = { "CLUSTER", "SHARDS" };
	static const char *slots[] = { "CLUSTER", "SLOTS" };
	static const char *info[] = { "CLUSTER", "INFO" };

	if (s->destroying || s->topo_busy)
		return;
	s->topo_last = now(s);
	if (s->topo == NULL) {
		size_t n = candidates(s), i = s->topo_next % n;
		const char *host;
		int port;

		if (i < s->map.n_masters) {
			host = s->map.masters[i].host;
			port = s->map.masters[i].port;
		} else {
			host = s->seeds[i - s->map.n_masters].host;
			port = s->seeds[i - s->map.n_masters].port;
		}
		snprintf(s->topo_host, sizeof(s->topo_host), "%s", host);
		snprintf(s->topo_name, sizeof(s->topo_name), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
			 host, port);
		rlink_opts o = {
			.host = s->topo_host, .port = port, .user = s->user, .password = s->password,
			.connect_timeout_ms = s->common.probe_timeout_ms,
			.on_closed = on_topo_closed,
			.arg = s, .tls = s->tls,
		};
		if ((s->topo = rlink_open(s->base.loop, &o)) == NULL)
			return;  /* out of memory: the tick tries again */
	}
	if (rlink_command(s->topo, 2, s->topo_slots ? slots : shards, NULL, topo_reply, s) != 0 ||
	    rlink_command(s->topo, 2, info, NULL, topo_info_reply, s) != 0) {
		topo_close_link(s);
		return;
	}
	s->topo_busy = true;
}

void topo_refresh(cl_state *s)
{
	if (s->destroying)
		return;
	if (s->topo_busy)
		s->topo_again = true;
	else
		topo_ask(s);
}

/* ---- timers ---- */

static bool all_served(const cl_state *s)
{
	for (unsigned k = 0; k < s->partitions; k++)
		if (!topo_served(s, k))
			return false;
	return true;
}

static void on_tick(uv_timer_t *t)
{
	cl_state *s = t->data;
	uint64_t n = now(s);
	bool stalled = s->last_tick != 0 && n - s->last_tick > 10 * CL_TICK_MS;
	uint64_t every;

	s->last_tick = n;
	if (s->destroying || stalled)
		return;  /* replies may wait unread: judge nothing this time */
	cq_tick(s);
	ops_tick(s);
	for (cmaster *m = s->masters, *next; m != NULL; m = next) {
		next = m->next;
		master_check(m, n);
	}
	master_metrics(s);
	if (s->topo_busy && n - s->topo_last >= s->common.probe_timeout_ms) {
		char text[700];

		snprintf(text, sizeof(text), "%s did not answer CLUSTER SHARDS within %u ms",
			 s->topo_name, s->common.probe_timeout_ms);
		topo_next(s, text);
		return;
	}
	if (s->topo_tried == 0 && s->topo_problem[0] != '\0' && !s->have_map)
		every = s->topo_backoff;
	else
		every = all_served(s) ? s->refresh_interval_ms : 1000;
	if (!s->topo_busy && n - s->topo_last >= every)
		topo_ask(s);
}

static confab_ratelimit forgot_log = CONFAB_RATELIMIT_INIT(1000);
static confab_ratelimit taken_log = CONFAB_RATELIMIT_INIT(1000);

static bool heartbeat_reply(cl_state *s, cq *q, redisReply *reply)
{
	uint64_t skipped;

	if (reply == NULL)
		return true;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER) {
		if (confab_ratelimit_allow(&forgot_log, now(s), &skipped))
			cl_log(s, CONFAB_LOG_ERROR, "the heartbeat of partition %d failed: %s",
			       q->part, reply->type == REDIS_REPLY_ERROR ? reply->str
									: "unexpected reply");
		return true;
	}
	/* A dead node is forgotten in every partition, one heartbeat each:
	 * one line for all of them. */
	for (size_t i = 1; i < reply->elements; i++)
		if (reply->element[i]->type == REDIS_REPLY_STRING &&
		    confab_ratelimit_allow(&forgot_log, now(s), &skipped))
			cl_log(s, CONFAB_LOG_INFO, "node %s was silent for more than %u ms: its "
			       "sessions are gone from presence", reply->element[i]->str,
			       s->common.presence_ttl_ms);
	if (reply->element[0]->integer == 1) {
		if (confab_ratelimit_allow(&taken_log, now(s), &skipped))
			cl_log(s, CONFAB_LOG_WARN, "this node had been taken for gone in partition %d "
			       "(no heartbeat for %u ms); registering its sessions again", q->part,
			       s->common.presence_ttl_ms);
		master_reconcile(s, (unsigned)q->part, false);
	}
	return true;
}

static void on_heartbeat(uv_timer_t *t)
{
	cl_state *s = t->data;

	if (s->destroying)
		return;
	for (unsigned k = 0; k < s->partitions; k++) {
		partition *p = &s->part[k];
		cq *q;

		if (!topo_served(s, k))
			continue;
		if (p->dirty) {
			master_reconcile(s, k, false);
			continue;
		}
		q = cq_new(s, heartbeat_reply, CS_HEARTBEAT, (int)k);
		if (q == NULL || rargs_addf(&q->args, "%snode:%s:gen", p->prefix, s->node_id) ||
		    rargs_addf(&q->args, "%snodes", p->prefix) || rargs_adds(&q->args, p->prefix) ||
		    rargs_adds(&q->args, p->channel) || rargs_adds(&q->args, s->node_id) ||
		    rargs_addf(&q->args, "%" PRIu64, p->gen) ||
		    rargs_addf(&q->args, "%u", s->common.presence_ttl_ms)) {
			cq_free(q);
			continue;
		}
		q->nkeys = 2;
		/* One call per master for all its partitions (cluster_cmd.c):
		 * a heartbeat per partition was `partitions` calls a second
		 * per node, in one burst. */
		cq_defer(s, q);
	}
}

/* ---- start, destroy ---- */

static void on_handle_closed(uv_handle_t *h)
{
	cl_release(h->data);
}

static void init_timer(cl_state *s, uv_timer_t *t)
{
	uv_timer_init(s->base.loop, t);
	t->data = s;
	s->handles++;
}

int topo_start(cl_state *s)
{
	init_timer(s, &s->tick);
	init_timer(s, &s->heartbeat_timer);
	init_timer(s, &s->linger_timer);
	uv_check_init(s->base.loop, &s->wait_check);
	s->wait_check.data = s;
	s->handles++;
	batch_start(s);
	s->topo_backoff = CL_BACKOFF_FIRST_MS;
	uv_timer_start(&s->tick, on_tick, CL_TICK_MS, CL_TICK_MS);
	uv_timer_start(&s->heartbeat_timer, on_heartbeat, s->common.heartbeat_ms,
		s->common.heartbeat_ms);
	topo_health(s);
	topo_ask(s);
	return 0;
}

static void close_all(cl_state *s)
{
	topo_close_link(s);
	while (s->masters != NULL)
		master_free(s->masters);
	if (!uv_is_closing((uv_handle_t *)&s->linger_timer))
		uv_close((uv_handle_t *)&s->linger_timer, on_handle_closed);
}

static bool goodbye_reply(cl_state *s, cq *q, redisReply *reply)
{
	(void)q;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
		cl_log(s, CONFAB_LOG_WARN, "the goodbye of partition %d failed: %s", q->part,
		       reply->str);
	if (s->goodbyes > 0 && --s->goodbyes == 0)
		close_all(s);
	return true;
}

static void on_linger(uv_timer_t *t)
{
	cl_state *s = t->data;

	if (s->goodbyes > 0)
		cl_log(s, CONFAB_LOG_WARN, "the cluster did not answer %u goodbyes within %d ms; "
		       "other nodes will forget this one after presence_ttl", s->goodbyes,
		       CL_LINGER_MS);
	s->goodbyes = 0;
	close_all(s);
}

void topo_destroy(cl_state *s)
{
	s->destroying = true;
	s->handles++;  /* this function: nothing is freed under it */
	uv_close((uv_handle_t *)&s->tick, on_handle_closed);
	uv_close((uv_handle_t *)&s->heartbeat_timer, on_handle_closed);
	uv_close((uv_handle_t *)&s->wait_check, on_handle_closed);
	uv_close((uv_handle_t *)&s->batch_check, on_handle_closed);
	batch_fail_all(s);
	cq_orphan_all(s);
	for (unsigned k = 0; k < s->partitions; k++)
		ops_part_reset(s, k, true);

	/* A clean goodbye in every partition: what is left of this node
	 * leaves now, with member events, rather than after presence_ttl. */
	for (unsigned k = 0; k < s->partitions; k++) {
		partition *p = &s->part[k];
		cmaster *m = p->owner;
		cq *q;

		if (m == NULL || m->state != M_UP)
			continue;
		q = cq_new(s, goodbye_reply, CS_GOODBYE, (int)k);
		if (q != NULL)
			q->nkeys = 2;
		if (q == NULL || rargs_addf(&q->args, "%snode:%s:gen", p->prefix, s->node_id) ||
		    rargs_addf(&q->args, "%snodes", p->prefix) || rargs_adds(&q->args, p->prefix) ||
		    rargs_adds(&q->args, p->channel) || rargs_adds(&q->args, s->node_id) ||
		    rargs_addf(&q->args, "%" PRIu64, p->gen) || cq_send_on(s, m, q) != 0) {
			cq_free(q);
			continue;
		}
		s->goodbyes++;
	}
	if (s->goodbyes > 0)
		uv_timer_start(&s->linger_timer, on_linger, CL_LINGER_MS, 0);
	else
		close_all(s);
	cl_release(s);
}
