/* The cluster's shape and the truth about its health.
 *
 * The slot map comes from CLUSTER SHARDS (CLUSTER SLOTS on a Redis older
 * than 7), asked on one "topology" link to a known master or a seed, in
 * turn. It is asked again every refresh_interval_ms, every second while
 * some partition is unserved, and soon after anything that says it
 * changed: a MOVED, a lost link, a `sunsubscribe` that Redis sent itself
 * (its slot migrated, or its master failed over).
 *
 * Each master that owns a partition gets two links (rlink.h):
 *   cmd  scripts, WAIT, SPUBLISH of probes, queries;
 *   sub  SSUBSCRIBE / SUNSUBSCRIBE of its partitions' channels.
 * A master's life is the `redis` link's:
 *
 *   DOWN --backoff--> CONNECTING --probe back--> UP
 *     ^                   |                       |
 *     +------ a link fails, a setup error, -------+
 *             a request or probe overdue
 *
 * CONNECTING pipelines the setup at once: SCRIPT LOAD of every script and
 * the reconcile of every partition it owns (each a new generation) on cmd;
 * SSUBSCRIBE of the partitions this node needs, and of the one it probes
 * through (its lowest), on sub. Then a probe is SPUBLISHed on the probe
 * partition's channel; the master is UP when it comes back through sub.
 *
 * Health is up when every partition has an UP master and the config
 * record matches; anything else is down with one reason (see topo_health).
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <confab/ratelimit.h>

#include "cluster.h"

static void master_connect(cmaster *m);
static void topo_ask(cl_state *s);

static uint64_t now(const cl_state *s)
{
	return uv_now(s->loop);
}

/* ---- masters ---- */

static void on_master_timer_closed(uv_handle_t *h)
{
	cmaster *m = h->data;
	cl_state *s = m->s;

	free(m);
	cl_release(s);
}

static cmaster *find_master(cl_state *s, const char *host, int port)
{
	for (cmaster *m = s->masters; m != NULL; m = m->next)
		if (m->port == port && strcasecmp(m->host, host) == 0)
			return m;
	return NULL;
}

static cmaster *find_serial(cl_state *s, unsigned serial)
{
	for (cmaster *m = s->masters; m != NULL; m = m->next)
		if (m->serial == serial)
			return m;
	return NULL;
}

static cmaster *new_master(cl_state *s, const char *host, int port)
{
	cmaster *m = find_master(s, host, port);

	if (m != NULL || s->destroying)
		return m;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->s = s;
	snprintf(m->host, sizeof(m->host), "%s", host);
	m->port = port;
	snprintf(m->name, sizeof(m->name), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	m->serial = ++s->next_serial;
	m->probe_part = -1;
	m->backoff_ms = CL_BACKOFF_FIRST_MS;
	uv_timer_init(s->loop, &m->timer);
	m->timer.data = m;
	s->handles++;
	m->next = s->masters;
	s->masters = m;
	return m;
}

static void close_links(cmaster *m)
{
	rlink *cmd = m->cmd, *sub = m->sub;

	/* First: what the closes call back sees this master without links. */
	m->cmd = m->sub = NULL;
	rlink_close(sub);
	rlink_close(cmd);
}

static void free_master(cmaster *m)
{
	cl_state *s = m->s;

	for (cmaster **pp = &s->masters; *pp != NULL; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	for (cq *q = s->pend; q != NULL; q = q->next)
		if (q->to == m)
			q->to = NULL;
	close_links(m);
	uv_timer_stop(&m->timer);
	uv_close((uv_handle_t *)&m->timer, on_master_timer_closed);
}

/* A command link alone, for a master that owns no partition but that a
 * redirection or the config record's slot names. */
static void on_aux_closed(rlink *l, const char *why, void *arg)
{
	cmaster *m = arg;

	(void)why;
	if (m->cmd == l) {
		m->cmd = NULL;
		rlink_close(l);
	}
}

cmaster *topo_master(cl_state *s, const char *host, int port)
{
	cmaster *m = new_master(s, host, port);

	if (m != NULL && m->owned == 0 && m->cmd == NULL && !s->destroying) {
		rlink_opts o = {
			.host = m->host, .port = m->port, .user = s->user, .password = s->password,
			.connect_timeout_ms = s->probe_timeout_ms, .on_closed = on_aux_closed, .arg = m,
		};

		m->cmd = rlink_open(s->loop, &o);
	}
	return m;
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
	bool up, degraded, can_degrade = CONFAB_HAS(s->host->backplane, degraded) &&
					 s->host->backplane->degraded != NULL;

	if (s->destroying)
		return;
	for (unsigned k = 0; k < s->partitions; k++) {
		const cmaster *m = s->part[k].owner;

		if (m == NULL || m->state != M_UP) {
			unserved++;
			if (down == NULL && m != NULL)
				down = m;
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
	up = reason[0] == '\0';
	degraded = up && unserved > 0;

	if (up != s->health_up || (!up && strcmp(reason, s->health_reason) != 0)) {
		s->health_up = up;
		snprintf(s->health_reason, sizeof(s->health_reason), "%s", reason);
		s->host->backplane->health(s->ctx, up, up ? NULL : reason);
		if (!up)
			s->health_degraded = false;  /* down overrides it */
	}
	if (up && can_degrade &&
	    (degraded != s->health_degraded ||
	     (degraded && strcmp(part_reason, s->degraded_reason) != 0))) {
		s->health_degraded = degraded;
		snprintf(s->degraded_reason, sizeof(s->degraded_reason), "%s", part_reason);
		s->host->backplane->degraded(s->ctx, degraded, degraded ? part_reason : NULL);
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

/* ---- subscriptions ---- */

static int sub_cmd(rlink *l, const char *verb, const char *channel)
{
	const char *argv[2] = { verb, channel };

	return rlink_command(l, 2, argv, NULL, NULL, NULL);
}

void topo_sync_sub(cl_state *s, unsigned k)
{
	partition *p = &s->part[k];
	cmaster *m = p->owner;
	bool wanted = m != NULL && (p->need > 0 || m->probe_part == (int)k);

	if (s->destroying)
		return;
	if (p->sub != SUB_NONE && (!wanted || p->sub_on != m)) {
		if (p->sub_on != NULL && p->sub_on->sub != NULL &&
		    sub_cmd(p->sub_on->sub, "SUNSUBSCRIBE", p->channel) == 0)
			p->unsubs++;
		p->sub = SUB_NONE;
		p->sub_on = NULL;
	}
	if (wanted && p->sub == SUB_NONE && m->sub != NULL &&
	    sub_cmd(m->sub, "SSUBSCRIBE", p->channel) == 0) {
		p->sub = SUB_PENDING;
		p->sub_on = m;
	}
}

/* ---- probes ---- */

static bool probe_reply(cl_state *s, cq *q, redisReply *reply)
{
	cmaster *m = find_serial(s, (unsigned)q->aux);

	if (reply == NULL || m == NULL || m->cmd == NULL || q->on_last != m)
		return true;
	if (reply->type == REDIS_REPLY_ERROR) {
		unsigned slot;
		char host[256];
		int port;

		if (rslot_redirect(reply->str, &slot, host, sizeof(host), &port) != 0)
			topo_refresh(s);  /* the probe partition moved: a new one is chosen */
		else
			topo_master_fail(m, "the probe's SPUBLISH on %s failed: %s", m->name,
					 reply->str);
	} else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0 && m->state == M_UP) {
		topo_master_fail(m, "%s has no subscriber on %s: this node's subscription is gone",
				 m->name, s->part[m->probe_part].channel);
	}
	return true;
}

static void probe_send(cmaster *m)
{
	cl_state *s = m->s;
	char token[96];
	char *text;
	cq *q;

	if (m->probe_part < 0 || m->cmd == NULL)
		return;
	snprintf(token, sizeof(token), "%s.%u.%" PRIu64, s->nonce, m->serial, ++m->probe_seq);
	text = wire_probe(token);
	q = cq_new(s, probe_reply, -1, m->probe_part);
	if (text == NULL || q == NULL || cq_args(q, "SPUBLISH") != 0 ||
	    cq_args(q, s->part[m->probe_part].channel) != 0 || cq_args(q, text) != 0) {
		free(text);
		cq_free(q);
		return;  /* out of memory: the next tick tries again */
	}
	free(text);
	q->aux = (int)m->serial;
	if (cq_send_on(s, m, q) != 0) {
		cq_free(q);
		return;
	}
	m->probe_out = true;
	m->probe_sent = now(s);
}

static void maybe_probe(cmaster *m)
{
	cl_state *s = m->s;

	if (m->state != M_CONNECTING || m->setup_pending > 0 || m->probe_out ||
	    m->probe_part < 0)
		return;
	if (s->part[m->probe_part].sub != SUB_OK || s->part[m->probe_part].sub_on != m)
		return;
	probe_send(m);
}

static void master_up(cmaster *m)
{
	cl_state *s = m->s;

	m->state = M_UP;
	m->backoff_ms = CL_BACKOFF_FIRST_MS;
	if (m->was_up)
		cl_log(s, CONFAB_LOG_INFO, "master %s is back after %" PRIu64 " ms", m->name,
		       now(s) - m->down_since);
	else
		cl_log(s, CONFAB_LOG_INFO, "master %s is up (%u partitions)", m->name, m->owned);
	m->was_up = true;
	m->last_reason[0] = '\0';
	topo_health(s);
}

void topo_probe_seen(cl_state *s, const char *token)
{
	size_t n = strlen(s->nonce);
	unsigned serial;
	uint64_t seq;
	cmaster *m;

	/* Every node subscribed to a partition sees every node's probes. */
	if (strncmp(token, s->nonce, n) != 0 || token[n] != '.' ||
	    sscanf(token + n + 1, "%u.%" SCNu64, &serial, &seq) != 2)
		return;
	if ((m = find_serial(s, serial)) == NULL || !m->probe_out || seq != m->probe_seq)
		return;
	m->probe_out = false;
	if (m->state == M_CONNECTING)
		master_up(m);
}

/* ---- setup ---- */

static bool script_load_reply(cl_state *s, cq *q, redisReply *reply)
{
	cmaster *m = q->on_last;

	if (reply == NULL || m == NULL || find_serial(s, m->serial) != m)
		return true;
	if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
		topo_master_fail(m, "SCRIPT LOAD of the %s script on %s failed: %s",
				 cl_script_name[q->aux], m->name,
				 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		return true;
	}
	memcpy(m->sha[q->aux], reply->str, 40);
	m->sha[q->aux][40] = '\0';
	m->sha_ok[q->aux] = true;
	if (m->setup_pending > 0 && --m->setup_pending == 0)
		maybe_probe(m);
	return true;
}

static bool setup_reconcile_reply(cl_state *s, cq *q, redisReply *reply)
{
	cmaster *m = find_serial(s, (unsigned)q->aux);

	if (reply != NULL && ops_reconcile_refused(s, q, reply))
		return true;  /* sent again above it, with this handler */
	if (reply == NULL || m == NULL)
		return true;
	if (reply->type == REDIS_REPLY_ERROR) {
		topo_master_fail(m, "registering this node's sessions in partition %d on %s "
				 "failed: %s", q->part, m->name, reply->str);
		return true;
	}
	if (m->setup_pending > 0 && --m->setup_pending == 0)
		maybe_probe(m);
	return true;
}

static bool later_reconcile_reply(cl_state *s, cq *q, redisReply *reply)
{
	if (reply != NULL && ops_reconcile_refused(s, q, reply))
		return true;
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
		if (reply != NULL)
			cl_log(s, CONFAB_LOG_WARN, "registering this node's sessions in partition %d "
			       "again failed: %s", q->part,
			       reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		s->part[q->part].dirty = true;  /* the next heartbeat tries again */
	}
	return true;
}

int topo_reconcile(cl_state *s, unsigned k, bool setup)
{
	cmaster *m = s->part[k].owner;
	cq *q = ops_reconcile_request(s, k);

	if (q == NULL) {
		s->part[k].dirty = true;
		return CONFAB_ENOMEM;
	}
	q->early = true;
	q->handle = setup ? setup_reconcile_reply : later_reconcile_reply;
	q->aux = m != NULL ? (int)m->serial : 0;
	if (setup && m != NULL)
		m->setup_pending++;
	s->part[k].dirty = false;
	cq_submit(s, q);
	return 0;
}

static void on_link_closed(rlink *l, const char *why, void *arg)
{
	cmaster *m = arg;

	if (l != m->cmd && l != m->sub)
		return;  /* an older link of this master, already replaced */
	topo_master_fail(m, "lost the %s link to master %s: %s",
			 l == m->sub ? "subscription" : "command", m->name, why);
}

static void on_push(rlink *l, redisReply *r, void *arg);

static void master_connect(cmaster *m)
{
	cl_state *s = m->s;
	rlink_opts o = {
		.host = m->host, .port = m->port, .user = s->user, .password = s->password,
		.connect_timeout_ms = s->probe_timeout_ms, .on_closed = on_link_closed, .arg = m,
	};

	close_links(m);  /* an aux command link, if any */
	m->state = M_CONNECTING;
	m->probe_out = false;
	m->setup_pending = 0;
	m->connect_started = now(s);
	m->cmd = rlink_open(s->loop, &o);
	o.subscriber = true;
	o.on_push = on_push;
	m->sub = rlink_open(s->loop, &o);
	if (m->cmd == NULL || m->sub == NULL) {
		topo_master_fail(m, "cannot open links to %s: out of memory", m->name);
		return;
	}
	for (int i = 0; i < CS_COUNT; i++) {
		cq *q = cq_new(s, script_load_reply, -1, -1);

		if (q != NULL)
			q->aux = i;
		if (q == NULL || cq_args(q, "SCRIPT") || cq_args(q, "LOAD") ||
		    cq_args(q, cl_script_text[i]) || cq_send_on(s, m, q) != 0) {
			cq_free(q);
			topo_master_fail(m, "cannot queue the setup of %s (out of memory?)", m->name);
			return;
		}
		m->setup_pending++;
	}
	for (unsigned k = 0; k < s->partitions; k++)
		if (s->part[k].owner == m) {
			s->part[k].sub = SUB_NONE;  /* a new link: nothing is subscribed */
			s->part[k].sub_on = NULL;
			s->part[k].unsubs = 0;
			topo_reconcile(s, k, true);
			topo_sync_sub(s, k);
		}
}

static void on_master_timer(uv_timer_t *t)
{
	cmaster *m = t->data;

	m->reconnecting = false;
	if (!m->s->destroying && m->state == M_DOWN && m->owned > 0)
		master_connect(m);
}

void topo_master_fail(cmaster *m, const char *fmt, ...)
{
	cl_state *s = m->s;
	char reason[sizeof(m->last_reason)];
	bool was_up = m->state == M_UP;
	va_list ap;

	if (s->destroying)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (was_up || strcmp(reason, m->last_reason) != 0)
		cl_log(s, CONFAB_LOG_WARN, "%s; retrying (backoff up to %u ms)", reason,
		       s->reconnect_max_ms);
	snprintf(m->last_reason, sizeof(m->last_reason), "%s", reason);
	if (was_up)
		m->down_since = now(s);
	m->state = M_DOWN;
	m->probe_out = false;
	m->setup_pending = 0;
	topo_health(s);
	/* Requests on the links are lost now (EUNKNOWN when they may have
	 * run); then what waited on this master's subscriptions fails. */
	close_links(m);
	for (unsigned k = 0; k < s->partitions; k++)
		if (s->part[k].sub_on == m || s->part[k].owner == m) {
			s->part[k].sub = SUB_NONE;
			s->part[k].sub_on = NULL;
			s->part[k].unsubs = 0;
			ops_part_reset(s, k, true);
		}
	topo_refresh(s);
	if (m->owned > 0 && !m->reconnecting) {
		m->reconnecting = true;
		uv_timer_start(&m->timer, on_master_timer, m->backoff_ms, 0);
		m->backoff_ms = m->backoff_ms * 2 > s->reconnect_max_ms ? s->reconnect_max_ms
									 : m->backoff_ms * 2;
	}
}

/* ---- pushes on a subscription link ---- */

static void on_push(rlink *l, redisReply *r, void *arg)
{
	cmaster *m = arg;
	cl_state *s = m->s;
	const char *type;
	int k;

	if (l != m->sub)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		/* An SSUBSCRIBE refused: MOVED when its slot moved meanwhile. */
		unsigned slot;
		char host[256];
		int port;

		if (rslot_redirect(r->str, &slot, host, sizeof(host), &port) != 0 &&
		    (k = part_of_slot(s, slot)) >= 0 && s->part[k].sub_on == m) {
			s->part[k].sub = SUB_NONE;
			s->part[k].sub_on = NULL;
		} else {
			cl_log(s, CONFAB_LOG_WARN, "master %s refused a subscription: %s", m->name,
			       r->str);
		}
		topo_refresh(s);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
		return;
	type = r->element[0]->str;
	k = part_of_channel(s, r->element[1]->str, r->element[1]->len);
	if (k < 0)
		return;
	partition *p = &s->part[k];

	if (strcmp(type, "smessage") == 0) {
		m->sub_heard = now(s);
		if (r->element[2]->type == REDIS_REPLY_STRING)
			ops_on_message(s, (unsigned)k, r->element[2]->str, r->element[2]->len);
	} else if (strcmp(type, "ssubscribe") == 0) {
		if (p->sub_on == m && p->sub == SUB_PENDING) {
			p->sub = SUB_OK;
			ops_part_subscribed(s, (unsigned)k);
			if (m->probe_part == k)
				maybe_probe(m);
		}
	} else if (strcmp(type, "sunsubscribe") == 0) {
		if (p->unsubs > 0) {
			p->unsubs--;     /* ours */
		} else if (p->sub_on == m && p->sub != SUB_NONE) {
			/* Redis's own: the slot left this master (migrated, or
			 * the master was demoted). Find the new owner. */
			cl_log(s, CONFAB_LOG_INFO, "master %s ended the subscription of partition %d "
			       "(its slot %u moved): refreshing the slot map", m->name, k, p->slot);
			p->sub = SUB_NONE;
			p->sub_on = NULL;
			topo_refresh(s);
		}
	}
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
	if (q == NULL || cq_args(q, s->config_key) || cq_args(q, s->config_value)) {
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
	topo_sync_sub(s, k);  /* unsubscribes from the old owner */
	/* The new owner may be a promoted replica that missed this node's
	 * last changes: register them again there, in a new generation. A
	 * master still connecting does it in its setup. */
	if (m != NULL && m->state == M_UP)
		topo_reconcile(s, k, false);
}

static void apply_map(cl_state *s, rslot_map *nm)
{
	unsigned unserved = 0;
	char list[160] = "";
	size_t used = 0;

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
			m = new_master(s, s->map.masters[o].host, s->map.masters[o].port);
		if (m == NULL) {
			if (unserved++ < 12 && used < sizeof(list) - 16)
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%u",
							 used ? ", " : "", k);
		} else {
			if (m->owned++ == 0)
				m->probe_part = (int)k;
		}
		if (s->part[k].owner != m)
			part_move(s, k, m);
	}
	/* Masters: connect those that own partitions, let go of the rest. */
	for (cmaster *m = s->masters, *next; m != NULL; m = next) {
		next = m->next;
		if (m->owned > 0) {
			if (m->state == M_DOWN && !m->reconnecting)
				master_connect(m);
			continue;
		}
		if (m->state != M_DOWN) {
			m->state = M_DOWN;
			rlink_close(m->sub);
			m->sub = NULL;
		}
		if (m->cmd == NULL || rlink_pending(m->cmd) == 0)
			free_master(m);
	}
	/* A probe partition may have changed hands. */
	for (unsigned k = 0; k < s->partitions; k++)
		topo_sync_sub(s, k);
	if (s->map.uncovered > 0) {
		char text[sizeof(s->uncovered)];

		snprintf(text, sizeof(text), "the cluster has %zu slots that no master serves; %u "
			 "of %u partitions are unserved (%s%s)", s->map.uncovered, unserved,
			 s->partitions, unserved ? list : "none of this node's",
			 unserved > 12 ? ", ..." : "");
		if (strcmp(text, s->uncovered) != 0)
			cl_log(s, CONFAB_LOG_ERROR, "%s", text);
		snprintf(s->uncovered, sizeof(s->uncovered), "%s", text);
	} else if (s->uncovered[0] != '\0') {
		cl_log(s, CONFAB_LOG_INFO, "every slot of the cluster has a master again");
		s->uncovered[0] = '\0';
	}
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
						 i ? ", " : "", s->seed_host[i], s->seed_port[i]);
		if (!s->have_map)
			set_problem(s, "no seed answers as a Redis Cluster node (%s); last: %s",
				    seeds, why);
	}
	s->topo_backoff = s->topo_backoff * 2 > s->reconnect_max_ms ? s->reconnect_max_ms
								  : s->topo_backoff * 2;
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
			host = s->seed_host[i - s->map.n_masters];
			port = s->seed_port[i - s->map.n_masters];
		}
		snprintf(s->topo_host, sizeof(s->topo_host), "%s", host);
		snprintf(s->topo_name, sizeof(s->topo_name), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
			 host, port);
		rlink_opts o = {
			.host = s->topo_host, .port = port, .user = s->user, .password = s->password,
			.connect_timeout_ms = s->probe_timeout_ms, .on_closed = on_topo_closed,
			.arg = s,
		};
		if ((s->topo = rlink_open(s->loop, &o)) == NULL)
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

static void check_master(cmaster *m, uint64_t n)
{
	cl_state *s = m->s;
	uint64_t oldest, limit = s->probe_timeout_ms;

	if (m->owned == 0 || m->state == M_DOWN)
		return;
	if (s->ack_replicas > 0)
		limit += s->ack_timeout_ms;  /* a WAIT may rightly take that long */
	if (m->state == M_CONNECTING && n - m->connect_started >= s->probe_timeout_ms) {
		topo_master_fail(m, "master %s did not complete the setup within %u ms", m->name,
				 s->probe_timeout_ms);
		return;
	}
	oldest = m->cmd != NULL ? rlink_oldest(m->cmd) : 0;
	if (m->state == M_UP && oldest != 0 && n - oldest >= limit) {
		topo_master_fail(m, "master %s did not answer a request within %" PRIu64 " ms",
				 m->name, limit);
		return;
	}
	if (m->probe_out) {
		/* A subscription still delivering is only behind: silence is
		 * what proves it dead (as in `redis`). */
		if (n - m->probe_sent >= s->probe_timeout_ms &&
		    !(m->state == M_UP && n - m->sub_heard < s->probe_timeout_ms))
			topo_master_fail(m, "the probe did not come back from %s within %u ms",
					 m->name, s->probe_timeout_ms);
		return;
	}
	if (m->state == M_UP && n - m->probe_sent >= s->probe_interval_ms)
		probe_send(m);
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
		check_master(m, n);
	}
	if (s->topo_busy && n - s->topo_last >= s->probe_timeout_ms) {
		char text[700];

		snprintf(text, sizeof(text), "%s did not answer CLUSTER SHARDS within %u ms",
			 s->topo_name, s->probe_timeout_ms);
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
			       s->presence_ttl_ms);
	if (reply->element[0]->integer == 1) {
		if (confab_ratelimit_allow(&taken_log, now(s), &skipped))
			cl_log(s, CONFAB_LOG_WARN, "this node had been taken for gone in partition %d "
			       "(no heartbeat for %u ms); registering its sessions again", q->part,
			       s->presence_ttl_ms);
		topo_reconcile(s, (unsigned)q->part, false);
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
			topo_reconcile(s, k, false);
			continue;
		}
		q = cq_new(s, heartbeat_reply, CS_HEARTBEAT, (int)k);
		if (q == NULL || cq_argf(q, "%snode:%s:gen", p->prefix, s->node_id) ||
		    cq_argf(q, "%snodes", p->prefix) || cq_args(q, p->prefix) ||
		    cq_args(q, p->channel) || cq_args(q, s->node_id) ||
		    cq_argf(q, "%" PRIu64, p->gen) || cq_argf(q, "%u", s->presence_ttl_ms)) {
			cq_free(q);
			continue;
		}
		q->nkeys = 2;
		cq_submit(s, q);
	}
}

/* ---- start, destroy ---- */

static void on_handle_closed(uv_handle_t *h)
{
	cl_release(h->data);
}

static void init_timer(cl_state *s, uv_timer_t *t)
{
	uv_timer_init(s->loop, t);
	t->data = s;
	s->handles++;
}

int topo_start(cl_state *s)
{
	init_timer(s, &s->tick);
	init_timer(s, &s->heartbeat_timer);
	init_timer(s, &s->linger_timer);
	s->topo_backoff = CL_BACKOFF_FIRST_MS;
	uv_timer_start(&s->tick, on_tick, CL_TICK_MS, CL_TICK_MS);
	uv_timer_start(&s->heartbeat_timer, on_heartbeat, s->heartbeat_ms, s->heartbeat_ms);
	topo_health(s);
	topo_ask(s);
	return 0;
}

static void close_all(cl_state *s)
{
	topo_close_link(s);
	while (s->masters != NULL)
		free_master(s->masters);
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
		if (q == NULL || cq_argf(q, "%snode:%s:gen", p->prefix, s->node_id) ||
		    cq_argf(q, "%snodes", p->prefix) || cq_args(q, p->prefix) ||
		    cq_args(q, p->channel) || cq_args(q, s->node_id) ||
		    cq_argf(q, "%" PRIu64, p->gen) || cq_send_on(s, m, q) != 0) {
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
