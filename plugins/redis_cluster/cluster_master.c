/* The masters of the slot map and their two links each.
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
 * A master that owns no partition but that a redirection (ASK, MOVED) or
 * the config record's slot names gets a command link alone.
 *
 * SPDX-License-Identifier: MIT
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"
#include "rfail.h"

static uint64_t now(const cl_state *s)
{
	return uv_now(s->base.loop);
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

cmaster *master_by_serial(cl_state *s, unsigned serial)
{
	for (cmaster *m = s->masters; m != NULL; m = m->next)
		if (m->serial == serial)
			return m;
	return NULL;
}

cmaster *master_new(cl_state *s, const char *host, int port)
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
	uv_timer_init(s->base.loop, &m->timer);
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

void master_free(cmaster *m)
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
	wait_master_gone(s, m);
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

cmaster *master_get(cl_state *s, const char *host, int port)
{
	cmaster *m = master_new(s, host, port);

	/* Also a master that owns partitions but is not connected: the
	 * config record's check goes before any master is. */
	if (m != NULL && m->cmd == NULL && m->state == M_DOWN && !m->reconnecting &&
	    !s->destroying) {
		rlink_opts o = {
			.host = m->host, .port = m->port, .user = s->user, .password = s->password,
			.connect_timeout_ms = s->common.probe_timeout_ms, .on_closed = on_aux_closed,
			.arg = m,
			.tls = s->tls,
		};

		m->cmd = rlink_open(s->base.loop, &o);
	}
	return m;
}

/* ---- subscriptions ---- */

static int sub_cmd(rlink *l, const char *verb, const char *channel)
{
	const char *argv[2] = { verb, channel };

	return rlink_command(l, 2, argv, NULL, NULL, NULL);
}

void master_sync_sub(cl_state *s, unsigned k)
{
	partition *p = &s->part[k];
	cmaster *m = p->owner;
	bool wanted = m != NULL && (p->need > 0 || m->probe_part == (int)k);

	if (s->destroying)
		return;
	if (p->sub != SUB_NONE && (!wanted || p->sub_on != m)) {
		if (p->sub_on != NULL && p->sub_on->sub != NULL &&
		    sub_cmd(p->sub_on->sub, "SUNSUBSCRIBE", p->channel) == 0) {
			/* counted per master: a push from another is not ours */
			if (p->unsub_serial != p->sub_on->serial)
				p->unsubs = 0;
			p->unsub_serial = p->sub_on->serial;
			p->unsubs++;
		}
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
	cmaster *m = master_by_serial(s, (unsigned)q->aux);

	if (reply == NULL || m == NULL || m->cmd == NULL || q->on_last != m)
		return true;
	if (reply->type == REDIS_REPLY_ERROR) {
		unsigned slot;
		char host[256];
		int port;

		if (rslot_redirect(reply->str, &slot, host, sizeof(host), &port) != 0)
			topo_refresh(s);  /* the probe partition moved: a new one is chosen */
		else
			master_fail(m, "the probe's SPUBLISH on %s failed: %s", m->name,
					 reply->str);
	} else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0 && m->state == M_UP &&
		   q->part == m->probe_part) {
		/* (a probe on a partition it no longer probes through may
		 * rightly find nobody: this node unsubscribed it) */
		master_fail(m, "%s has no subscriber on %s: this node's subscription is gone",
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
	snprintf(token, sizeof(token), "%s.%u.%" PRIu64, s->base.nonce, m->serial, ++m->probe_seq);
	text = wire_probe(token);
	q = cq_new(s, probe_reply, -1, m->probe_part);
	if (text == NULL || q == NULL || rargs_adds(&q->args, "SPUBLISH") != 0 ||
	    rargs_adds(&q->args, s->part[m->probe_part].channel) != 0 ||
	    rargs_adds(&q->args, text) != 0) {
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
	if (m->was_up) {
		rbase_reconnected(&s->base, RBASE_LINK_COMMAND);
		rbase_reconnected(&s->base, RBASE_LINK_SUBSCRIBE);
		cl_log(s, CONFAB_LOG_INFO, "master %s is back after %" PRIu64 " ms", m->name,
		       now(s) - m->down_since);
	} else {
		cl_log(s, CONFAB_LOG_INFO, "master %s is up (%u partitions)", m->name, m->owned);
	}
	m->was_up = true;
	m->last_reason[0] = '\0';
	topo_health(s);
}

void master_probe_seen(cl_state *s, const char *token)
{
	size_t n = strlen(s->base.nonce);
	unsigned serial;
	uint64_t seq;
	cmaster *m;

	/* Every node subscribed to a partition sees every node's probes. */
	if (strncmp(token, s->base.nonce, n) != 0 || token[n] != '.' ||
	    sscanf(token + n + 1, "%u.%" SCNu64, &serial, &seq) != 2)
		return;
	if ((m = master_by_serial(s, serial)) == NULL || !m->probe_out || seq != m->probe_seq)
		return;
	m->probe_out = false;
	if (m->state == M_CONNECTING)
		master_up(m);
}

/* ---- setup ---- */

static bool script_load_reply(cl_state *s, cq *q, redisReply *reply)
{
	cmaster *m = q->on_last;

	if (reply == NULL || m == NULL || master_by_serial(s, m->serial) != m)
		return true;
	if (q->aux == CS_MULTI && (reply->type != REDIS_REPLY_STRING || reply->len != 40)) {
		/* A Redis before 7 knows no script flags (the shebang line is
		 * a syntax error there): this master gets one call per
		 * partition, as it always did. */
		if (!m->no_multi)
			cl_log(s, CONFAB_LOG_INFO, "%s cannot load the multi script (%s): one call "
			       "per partition there", m->name,
			       reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		m->no_multi = true;
		if (m->setup_pending > 0 && --m->setup_pending == 0)
			maybe_probe(m);
		return true;
	}
	if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
		master_fail(m, "SCRIPT LOAD of the %s script on %s failed: %s",
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
	cmaster *m = master_by_serial(s, (unsigned)q->aux);

	if (reply != NULL && ops_reconcile_refused(s, q, reply))
		return true;  /* sent again above it, with this handler */
	if (reply == NULL || m == NULL)
		return true;
	if (reply->type == REDIS_REPLY_ERROR) {
		master_fail(m, "registering this node's sessions in partition %d on %s "
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

int master_reconcile(cl_state *s, unsigned k, bool setup)
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
	master_fail(m, "lost the %s link to master %s: %s",
			 l == m->sub ? "subscription" : "command", m->name, why);
}

static void on_push(rlink *l, redisReply *r, void *arg);

void master_connect(cmaster *m)
{
	cl_state *s = m->s;
	rlink_opts o = {
		.host = m->host, .port = m->port, .user = s->user, .password = s->password,
		.connect_timeout_ms = s->common.probe_timeout_ms, .on_closed = on_link_closed,
		.arg = m,
		.tls = s->tls,
	};

	close_links(m);  /* an aux command link, if any */
	m->state = M_CONNECTING;
	m->probe_out = false;
	m->setup_pending = 0;
	m->connect_started = now(s);
	m->cmd = rlink_open(s->base.loop, &o);
	o.subscriber = true;
	o.on_push = on_push;
	m->sub = rlink_open(s->base.loop, &o);
	if (m->cmd == NULL || m->sub == NULL) {
		master_fail(m, "cannot open links to %s: out of memory", m->name);
		return;
	}
	m->no_multi = false;   /* asked again: the process may be another one now */
	for (int i = 0; i < CS_COUNT; i++) {
		cq *q = cq_new(s, script_load_reply, -1, -1);

		if (q != NULL)
			q->aux = i;
		if (q == NULL || rargs_adds(&q->args, "SCRIPT") || rargs_adds(&q->args, "LOAD") ||
		    rargs_adds(&q->args, cl_script_text[i]) || cq_send_on(s, m, q) != 0) {
			cq_free(q);
			master_fail(m, "cannot queue the setup of %s (out of memory?)", m->name);
			return;
		}
		m->setup_pending++;
	}
	for (unsigned k = 0; k < s->partitions; k++)
		if (s->part[k].owner == m) {
			s->part[k].sub = SUB_NONE;  /* a new link: nothing is subscribed */
			s->part[k].sub_on = NULL;
			s->part[k].unsubs = 0;
			master_reconcile(s, k, true);
			master_sync_sub(s, k);
		}
}

static void on_master_timer(uv_timer_t *t)
{
	cmaster *m = t->data;

	m->reconnecting = false;
	/* Not while the config record is refused: the record's check
	 * connects the masters once it matches. */
	if (!m->s->destroying && m->state == M_DOWN && m->owned > 0 && m->s->config_ok)
		master_connect(m);
}

void master_fail(cmaster *m, const char *fmt, ...)
{
	cl_state *s = m->s;
	char reason[sizeof(m->last_reason)];
	bool was_up = m->state == M_UP;

	if (s->destroying)
		return;
	RFAIL_FORMAT(reason, fmt);
	if (was_up || strcmp(reason, m->last_reason) != 0)
		cl_log(s, CONFAB_LOG_WARN, "%s; retrying (backoff up to %u ms)", reason,
		       s->common.reconnect_max_ms);
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
		m->backoff_ms = m->backoff_ms * 2 > s->common.reconnect_max_ms
				? s->common.reconnect_max_ms : m->backoff_ms * 2;
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
		if (p->unsubs > 0 && p->unsub_serial == m->serial) {
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

/* ---- metrics ---- */

void master_metrics(cl_state *s)
{
	int64_t cmd = 0, sub = 0, subs = 0;

	for (const cmaster *m = s->masters; m != NULL; m = m->next) {
		if (m->owned == 0 || m->state != M_UP)
			continue;
		cmd += m->cmd != NULL;
		sub += m->sub != NULL;
	}
	for (unsigned k = 0; k < s->partitions; k++)
		subs += s->part[k].sub == SUB_OK;
	rbase_link_up(&s->base, RBASE_LINK_COMMAND, cmd);
	rbase_link_up(&s->base, RBASE_LINK_SUBSCRIBE, sub);
	rbase_subscriptions(&s->base, subs);
}

/* ---- deadlines ---- */

void master_check(cmaster *m, uint64_t n)
{
	cl_state *s = m->s;
	uint64_t oldest, limit = s->common.probe_timeout_ms;

	if (m->owned == 0 || m->state == M_DOWN)
		return;
	if (s->ack_replicas > 0)
		limit += s->ack_timeout_ms;  /* a WAIT may rightly take that long */
	if (m->state == M_CONNECTING && n - m->connect_started >= s->common.probe_timeout_ms) {
		master_fail(m, "master %s did not complete the setup within %u ms", m->name,
				 s->common.probe_timeout_ms);
		return;
	}
	oldest = m->cmd != NULL ? rlink_oldest(m->cmd) : 0;
	if (m->state == M_UP && oldest != 0 && n - oldest >= limit) {
		master_fail(m, "master %s did not answer a request within %" PRIu64 " ms",
				 m->name, limit);
		return;
	}
	if (m->probe_out) {
		/* A subscription still delivering is only behind: silence is
		 * what proves it dead (as in `redis`). */
		if (n - m->probe_sent >= s->common.probe_timeout_ms &&
		    !(m->state == M_UP && n - m->sub_heard < s->common.probe_timeout_ms))
			master_fail(m, "the probe did not come back from %s within %u ms",
					 m->name, s->common.probe_timeout_ms);
		return;
	}
	if (m->state == M_UP && n - m->probe_sent >= s->common.probe_interval_ms)
		probe_send(m);
}
