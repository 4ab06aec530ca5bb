/* The two links to Redis and the truth about their health.
 *
 *   cmd  scripts, PUBLISH of probes, queries: everything with a reply.
 *   sub  SUBSCRIBE / UNSUBSCRIBE only: a subscriber link, whose every
 *        push (subscribe confirmations, messages) comes to on_push.
 *        Keeping replies off it keeps the roles plain: a stall of one
 *        is told apart from a stall of the other (the probe, and the
 *        deadline of requests on cmd).
 *
 * Each is an rlink (../redislink/rlink.h): a libuv stream with hiredis's
 * reader. It resolves `host` with uv_getaddrinfo at every open, so a DNS
 * name never blocks the loop and a changed address is picked up at the
 * next reconnect; it sends AUTH itself before anything queued.
 *
 * Life of a link:
 *
 *   DOWN --timer--> CONNECTING --probe back--> UP
 *     ^                 |                       |
 *     +----- any failure of either connection --+
 *
 * CONNECTING opens both links and queues the setup at once, before they
 * are connected (a link writes it when it is, after its own AUTH): on cmd
 * SELECT, SCRIPT LOAD of every script, then the reconcile script (Redis's
 * record of this node := our bookkeeping); on sub one SUBSCRIBE of every
 * room channel we need and, last, our node channel. When the reconcile
 * has answered and the node channel is confirmed, a probe is published to the node channel; the link is UP
 * (health up) only when that probe comes back through the subscription.
 *
 * Any failure (a link's on_closed: refused, reset, closed, a name that
 * does not resolve, AUTH refused; an error in the setup; a probe that does
 * not come back within probe_timeout_ms; a request on cmd that Redis has
 * not answered within it; a setup that does not finish within it) closes
 * both links: health down, every request in flight fails (rlink_close
 * calls their callbacks with NULL: CONFAB_EUNAVAILABLE, or CONFAB_EUNKNOWN
 * for what was handed to the link), and a timer reconnects with new links
 * after a backoff that doubles from 100 ms up to reconnect_max_ms. A link
 * is never reused: a new one resolves the name again.
 *
 * While UP, a probe goes out every probe_interval_ms, and a heartbeat
 * (which also forgets nodes that stopped beating) every heartbeat_ms.
 * A link bounds only its connect (resolve, connect, AUTH): these timers,
 * and the deadline of every request on cmd (on_probe_tick), are the only
 * bound on how long a silent Redis goes unnoticed.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"
#include "rfail.h"

static void conn_connect(redis_state *s);

static uint64_t now(const redis_state *s)
{
	return uv_now(s->base.loop);
}

bool conn_serving(const redis_state *s)
{
	return s->link == LINK_UP && !s->destroying;
}

/* ---- handles: the instance is freed when the last one is gone ---- */

static void handle_gone(redis_state *s)
{
	s->handles--;
}

void conn_release(redis_state *s)
{
	handle_gone(s);
	if (s->handles == 0 && s->destroying)
		redis_state_free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
	conn_release(h->data);
}

static void close_timer(uv_timer_t *t)
{
	if (!uv_is_closing((uv_handle_t *)t))
		uv_close((uv_handle_t *)t, on_timer_closed);
}

void conn_close_timer(uv_timer_t *t)
{
	close_timer(t);
}

/* Close a link: its pending requests are answered with NULL now, and it
 * calls nothing of ours after this. The caller has cleared s->cmd or
 * s->sub first, so that those answers see the link gone. */
static void drop_link(redis_state *s, rlink *l)
{
	rlink_close(l);
	handle_gone(s);
}

void conn_link_drop(redis_state *s, rlink *l)
{
	drop_link(s, l);
}

rlink *conn_link_open(redis_state *s, const rlink_opts *o)
{
	rlink *l = rlink_open(s->base.loop, o);

	if (l != NULL)
		s->handles++;
	return l;
}

/* ---- going up ---- */

static void link_up(redis_state *s)
{
	s->link = LINK_UP;
	s->backoff_ms = REDIS_BACKOFF_FIRST_MS;
	s->attempts = 0;
	s->last_reason[0] = '\0';
	if (s->was_up)
		redis_log(s, CONFAB_LOG_INFO, "Redis is back after %llu ms; resubscribed to %zu rooms",
			  (unsigned long long)(now(s) - s->down_since),
			  confab_dict_count(s->base.rooms));
	else if (s->n_sentinels > 0)
		redis_log(s, CONFAB_LOG_INFO, "connected to master '%s' at %s:%d (db %ld, "
			  "prefix '%s')", s->master_name, s->addr, s->port, s->db, s->prefix);
	else
		redis_log(s, CONFAB_LOG_INFO, "connected to Redis at %s:%d (db %ld, prefix '%s')",
			  s->addr, s->port, s->db, s->prefix);
	for (enum rbase_link k = RBASE_LINK_COMMAND; k <= RBASE_LINK_SUBSCRIBE; k++) {
		if (s->was_up)
			rbase_reconnected(&s->base, k);
		rbase_link_up(&s->base, k, 1);
	}
	s->was_up = true;
	s->base.host->backplane->health(s->base.ctx, true, NULL);
}

static void probe_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	(void)q;
	if (reply == NULL || ac != s->cmd)
		return;
	if (reply->type == REDIS_REPLY_ERROR)
		conn_fail(s, "the probe's PUBLISH failed: %s", reply->str);
	else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
		conn_fail(s, "Redis has no subscriber on %s: this node's subscription is gone",
			  s->node_chan);
}

static void probe_send(redis_state *s)
{
	char token[64];
	char *text;
	rq *q;

	snprintf(token, sizeof(token), "%s.%llu", s->base.nonce,
		 (unsigned long long)++s->probe_seq);
	text = wire_probe(token);
	q = rq_new(s, probe_reply, -1);
	if (text == NULL || q == NULL || rargs_adds(&q->args, "PUBLISH") != 0 ||
	    rargs_adds(&q->args, s->node_chan) != 0 || rargs_adds(&q->args, text) != 0) {
		free(text);
		rq_free(q);
		return;  /* out of memory: the next tick tries again */
	}
	free(text);
	if (rq_send_or_free(s, s->cmd, q) != 0)
		return;  /* the connection is going; its callback will follow */
	s->probe_out = true;
	s->probe_sent = now(s);
}

/* Both halves of the setup are done: prove that delivery works. */
static void maybe_probe(redis_state *s)
{
	if (s->link == LINK_CONNECTING && s->cmd_ready && s->sub_ready && !s->probe_out)
		probe_send(s);
}

void conn_probe_seen(redis_state *s, const char *token)
{
	size_t n = strlen(s->base.nonce);

	if (strncmp(token, s->base.nonce, n) != 0 || token[n] != '.') {
		if (!s->foreign_probe_warned)
			redis_log(s, CONFAB_LOG_WARN, "a probe of another process arrived on %s: "
				  "does another node use node_id '%s' with this Redis and prefix?",
				  s->node_chan, s->node_id);
		s->foreign_probe_warned = true;
		return;
	}
	if (!s->probe_out || strtoull(token + n + 1, NULL, 10) != s->probe_seq)
		return;  /* an older one */
	s->probe_out = false;
	if (s->link == LINK_CONNECTING)
		link_up(s);
}

/* ---- setup replies ---- */

static void setup_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	if (reply == NULL || ac != s->cmd)
		return;
	if (reply->type == REDIS_REPLY_ERROR)
		conn_fail(s, "%s failed: %s", q->args.argv[0], reply->str);
}

static void script_load_reply(redis_state *s, rq *q, const rlink *ac,
			      redisReply *reply)
{
	if (reply == NULL || ac != s->cmd)
		return;
	if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
		conn_fail(s, "SCRIPT LOAD of the %s script failed: %s",
			  redis_script_name[q->aux],
			  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		return;
	}
	memcpy(s->sha[q->aux], reply->str, 40);
	s->sha[q->aux][40] = '\0';
	s->sha_ok[q->aux] = true;
}

static void first_reconcile_reply(redis_state *s, rq *q, const rlink *ac,
				  redisReply *reply)
{
	(void)q;
	if (reply == NULL || ac != s->cmd)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		conn_fail(s, "registering this node's sessions failed: %s", reply->str);
		return;
	}
	if (ops_reconcile_refused(s, q, reply))
		return;
	s->cmd_ready = true;
	maybe_probe(s);
}

static void later_reconcile_reply(redis_state *s, rq *q, const rlink *ac,
				  redisReply *reply)
{
	if (ac == s->cmd && ops_reconcile_refused(s, q, reply))
		return;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
		redis_log(s, CONFAB_LOG_ERROR, "registering this node's sessions again failed: %s",
			  reply->str);
		s->presence_dirty = true;  /* the next heartbeat tries again */
	}
}

/* Send the reconcile on the current command connection. */
static void reconcile_again(redis_state *s)
{
	rq *again = ops_reconcile_request(s);

	if (again == NULL) {
		s->presence_dirty = true;
		return;
	}
	again->handle = later_reconcile_reply;
	rq_send_or_free(s, s->cmd, again);
}

/* A plain setup command of two words on cmd. */
static int setup_cmd(redis_state *s, const char *a, const char *b)
{
	rq *q = rq_new(s, setup_reply, -1);

	if (q == NULL || rargs_adds(&q->args, a) != 0 || rargs_adds(&q->args, b) != 0) {
		rq_free(q);
		return CONFAB_ENOMEM;
	}
	return rq_send_or_free(s, s->cmd, q);
}

/* (AUTH is the link's own first command: rlink_opts.password.) */
int conn_setup_command_link(redis_state *s)
{
	char db[24];
	rq *q;

	snprintf(db, sizeof(db), "%ld", s->db);
	if (s->db != 0 && setup_cmd(s, "SELECT", db) != 0)
		return CONFAB_ERR;
	for (int i = 0; i < SCRIPT_COUNT; i++) {
		q = rq_new(s, script_load_reply, -1);
		if (q == NULL || rargs_adds(&q->args, "SCRIPT") != 0 ||
		    rargs_adds(&q->args, "LOAD") != 0 ||
		    rargs_adds(&q->args, redis_script_text[i]) != 0) {
			rq_free(q);
			return CONFAB_ENOMEM;
		}
		q->aux = i;
		if (rq_send_or_free(s, s->cmd, q) != 0)
			return CONFAB_ERR;
	}
	q = ops_reconcile_request(s);
	if (q == NULL)
		return CONFAB_ENOMEM;
	q->handle = first_reconcile_reply;
	return rq_send_or_free(s, s->cmd, q);
}

/* ---- the subscription link ---- */

static void on_push(rlink *l, redisReply *reply, void *arg)
{
	redis_state *s = arg;
	const char *type, *channel;
	size_t rlen = strlen(s->chan_prefix) + 5;  /* "room:" */

	if (reply == NULL || l != s->sub)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		/* A SUBSCRIBE refused (an ACL without the channel, say): a
		 * room, or this node's channel, would wait for its confirmation
		 * for ever. Say so and start again, as for any setup error. */
		conn_fail(s, "Redis refused a command on the subscription connection: %s",
			  reply->str);
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_STRING)
		return;
	type = reply->element[0]->str;
	channel = reply->element[1]->str;
	if (strcmp(type, "message") == 0) {
		s->sub_heard = now(s);
		if (reply->element[2]->type == REDIS_REPLY_STRING)
			ops_on_message(s, channel, reply->element[2]->str, reply->element[2]->len);
	} else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
		/* The third element is how many channels the link has now. */
		if (reply->element[2]->type == REDIS_REPLY_INTEGER)
			rbase_subscriptions(&s->base, reply->element[2]->integer);
	}
	if (strcmp(type, "subscribe") == 0) {
		if (strcmp(channel, s->node_chan) == 0) {
			if (!s->sub_ready) {
				s->sub_ready = true;
				maybe_probe(s);
			}
		} else if (strncmp(channel, s->chan_prefix, rlen - 5) == 0 &&
			   strncmp(channel + rlen - 5, "room:", 5) == 0) {
			ops_room_subscribed(s, channel + rlen);
		}
	}
}

static int sub_command(redis_state *s, const char *verb, const char *const *channels, size_t n)
{
	const char **argv = malloc((n + 1) * sizeof(*argv));
	int rc;

	if (argv == NULL)
		return CONFAB_ENOMEM;
	argv[0] = verb;
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = channels[i];
	/* No reply callback: the confirmations come to on_push. */
	rc = rlink_command(s->sub, (int)(n + 1), argv, NULL, NULL, NULL);
	free(argv);
	return rc;
}

static char *room_channel(const redis_state *s, const char *room)
{
	char *ch;

	if (asprintf(&ch, "%sroom:%s", s->chan_prefix, room) < 0)
		return NULL;
	return ch;
}

static int setup_subscription_link(redis_state *s)
{
	size_t n = confab_dict_count(s->base.rooms), k = 0;
	char **channels = calloc(n + 1, sizeof(*channels));
	confab_dict_iter it;
	const char *room;
	void *value;
	int rc = CONFAB_ENOMEM;

	if (channels == NULL)
		return CONFAB_ENOMEM;
	/* Every room we have users in (ops_subscriptions_reset dropped the
	 * others), then our node channel: its confirmation comes last. */
	RBASE_EACH(it, s->base.rooms, room, value) {
		lroom *r = value;

		if (confab_dict_count(r->users) == 0)
			continue;
		if ((channels[k] = room_channel(s, room)) == NULL)
			goto out;
		k++;
		r->subs_pending = 1;
	}
	channels[k++] = s->node_chan;
	rc = sub_command(s, "SUBSCRIBE", (const char *const *)channels, k);
out:
	for (size_t i = 0; i < k; i++)
		if (channels[i] != s->node_chan)
			free(channels[i]);
	free(channels);
	return rc;
}

void conn_subscribe(redis_state *s, const char *room, lroom *r)
{
	char *ch;

	if (s->sub == NULL || s->destroying || (ch = room_channel(s, room)) == NULL)
		return;
	if (sub_command(s, "SUBSCRIBE", (const char *const *)&ch, 1) == 0)
		r->subs_pending++;
	free(ch);
}

void conn_unsubscribe(redis_state *s, const char *room)
{
	char *ch;

	if (s->sub == NULL || s->destroying || (ch = room_channel(s, room)) == NULL)
		return;
	sub_command(s, "UNSUBSCRIBE", (const char *const *)&ch, 1);
	free(ch);
}

/* ---- connecting, failing ---- */

/* The link is gone for good: during destroy, the command link's goodbye
 * is over; otherwise the node starts again with new links. */
static void on_closed(rlink *l, const char *why, void *arg)
{
	redis_state *s = arg;

	if (s->destroying) {
		if (l == s->cmd) {
			s->cmd = NULL;
			drop_link(s, l);
			close_timer(&s->linger_timer);
		}
		return;
	}
	if (l != s->cmd && l != s->sub)
		return;  /* one given up already (not called after rlink_close) */
	/* Whichever of the two fails first while Redis is unreachable, the
	 * line is the same: it is logged once for the whole outage. */
	if (rlink_was_connected(l))
		conn_fail(s, "lost the %s connection to Redis at %s:%d: %s",
			  l == s->sub ? "subscription" : "command", s->addr, s->port, why);
	else
		conn_fail(s, "cannot connect to Redis at %s:%d: %s", s->addr, s->port, why);
}

/* A new link to Redis, connecting at once; NULL when out of memory. */
static rlink *open_link(redis_state *s, bool subscriber)
{
	const rlink_opts o = {
		.host = s->addr,
		.port = s->port,
		.password = s->password,
		/* resolve + connect + AUTH: the setup's own bound */
		.connect_timeout_ms = s->common.probe_timeout_ms,
		.subscriber = subscriber,
		.on_push = subscriber ? on_push : NULL,
		.on_closed = on_closed,
		.arg = s,
		.tls = s->tls,
	};

	return conn_link_open(s, &o);
}

void conn_open_links(redis_state *s)
{
	int rc;

	s->connect_started = now(s);
	if ((s->cmd = open_link(s, false)) == NULL || (s->sub = open_link(s, true)) == NULL) {
		conn_fail(s, "cannot connect to Redis at %s:%d: out of memory", s->addr, s->port);
		return;
	}
	/* Behind Sentinel the server named may have been demoted since (or
	 * restarted as an empty master the sentinels will soon demote): ROLE
	 * goes alone, and the setup, whose reconcile writes, only after it
	 * said master. */
	rc = s->n_sentinels > 0 ? sentinel_check_role(s) : conn_setup_command_link(s);
	if (rc != 0 || setup_subscription_link(s) != 0)
		conn_fail(s, "cannot queue the connection setup (out of memory?)");
}

static void conn_connect(redis_state *s)
{
	s->link = LINK_CONNECTING;
	s->cmd_ready = s->sub_ready = s->probe_out = false;
	s->presence_dirty = false;  /* the setup's reconcile registers everything */
	s->connect_started = now(s);
	if (s->n_sentinels > 0)
		sentinel_ask(s);    /* then conn_open_links */
	else
		conn_open_links(s);
}

static void on_reconnect_tick(uv_timer_t *t)
{
	redis_state *s = t->data;

	if (!s->destroying && s->link == LINK_DOWN)
		conn_connect(s);
}

void conn_reconnect_now(redis_state *s)
{
	if (!s->destroying && s->link == LINK_DOWN)
		uv_timer_start(&s->reconnect_timer, on_reconnect_tick, 0, 0);
}

void conn_fail(redis_state *s, const char *fmt, ...)
{
	char reason[sizeof(s->last_reason)];
	rlink *cmd = s->cmd, *sub = s->sub;
	bool was_up = s->link == LINK_UP;

	if (s->destroying)
		return;
	RFAIL_FORMAT(reason, fmt);

	s->cmd = s->sub = NULL;
	s->link = LINK_DOWN;
	rbase_link_up(&s->base, RBASE_LINK_COMMAND, 0);
	rbase_link_up(&s->base, RBASE_LINK_SUBSCRIBE, 0);
	rbase_subscriptions(&s->base, 0);
	s->cmd_ready = s->sub_ready = s->probe_out = false;
	sentinel_stop_asking(s);
	if (was_up)
		s->down_since = now(s);
	/* First, so that whatever the core does meanwhile sees us down. The
	 * core logs the change from up to down with the reason. */
	s->base.host->backplane->health(s->base.ctx, false, reason);
	if (!was_up && strcmp(reason, s->last_reason) != 0)
		redis_log(s, CONFAB_LOG_WARN, "%s; retrying (backoff up to %u ms)", reason,
			  s->common.reconnect_max_ms);
	else
		redis_log(s, CONFAB_LOG_DEBUG, "%s (attempt %u)", reason, s->attempts + 1);
	snprintf(s->last_reason, sizeof(s->last_reason), "%s", reason);
	s->attempts++;

	/* Requests in flight get NULL replies now: EUNAVAILABLE (or
	 * EUNKNOWN) to the core. */
	wait_link_gone(s);
	if (cmd != NULL)
		drop_link(s, cmd);
	if (sub != NULL)
		drop_link(s, sub);
	ops_subscriptions_reset(s);

	/* A failover the sentinels announced: the new master is there now,
	 * and waiting would only lengthen the outage. */
	uv_timer_start(&s->reconnect_timer, on_reconnect_tick, s->fail_at_once ? 0 : s->backoff_ms,
		       0);
	s->fail_at_once = false;
	s->backoff_ms = s->backoff_ms * 2 > s->common.reconnect_max_ms ? s->common.reconnect_max_ms
								 : s->backoff_ms * 2;
}

/* ---- timers ---- */

/* Every request on the command connection has a deadline: Redis answers
 * a connection's requests in order, so when its oldest request has waited
 * probe_timeout_ms, the connection (or Redis) is stuck, whatever the
 * subscription is doing. A path that stalls without breaking looks exactly
 * like this: no error, no close, only silence on one connection, while
 * the other one may still carry other nodes' messages. Measured on a
 * stalled command connection before this check: a `send` and a `history`
 * went unanswered for 23 s while /healthz said 200. The probe's PUBLISH
 * and the heartbeat are requests too, so a stall is noticed within
 * probe_interval_ms + probe_timeout_ms + a tick even when clients ask
 * nothing. */
static bool command_overdue(redis_state *s, uint64_t n)
{
	const rq *q = s->cmd != NULL ? rq_oldest(s, s->cmd) : NULL;

	return q != NULL && n - q->sent_at >= s->common.probe_timeout_ms;
}

static void on_probe_tick(uv_timer_t *t)
{
	redis_state *s = t->data;
	uint64_t n = now(s);
	/* This loop itself stood still (a long stall of the process): the
	 * replies may wait unread in the sockets, and the timers run before
	 * the sockets are read. Judge nothing until they have been. */
	bool loop_stalled = s->last_tick != 0 && n - s->last_tick > 4 * (uint64_t)s->tick_ms;

	s->last_tick = n;
	if (s->destroying || loop_stalled)
		return;
	/* Asking the sentinels: each has the same bound. */
	if (s->sq != NULL) {
		if (n - s->sq_started >= s->common.probe_timeout_ms)
			sentinel_ask_timeout(s);
		return;
	}
	/* While connecting, the setup's own bound below says it better. */
	if (s->link == LINK_UP && command_overdue(s, n)) {
		conn_fail(s, "Redis did not answer a request on the command connection "
			  "within %u ms", s->common.probe_timeout_ms);
		return;
	}
	if (s->probe_out) {
		/* A subscription that is still delivering is alive, only
		 * behind (an overloaded node): the probe waits in its backlog.
		 * Reconnecting then would drop what is queued in the socket,
		 * acked messages among them. Silence is what proves it dead.
		 * (The command connection's share is checked above.) */
		if (n - s->probe_sent >= s->common.probe_timeout_ms &&
		    !(s->link == LINK_UP && n - s->sub_heard < s->common.probe_timeout_ms))
			conn_fail(s, "the probe did not come back through the subscription "
				  "within %u ms", s->common.probe_timeout_ms);
		return;
	}
	if (s->link == LINK_CONNECTING && n - s->connect_started >= s->common.probe_timeout_ms) {
		conn_fail(s, "Redis at %s:%d did not complete the connection setup within %u ms",
			  s->addr, s->port, s->common.probe_timeout_ms);
		return;
	}
	if (s->link == LINK_UP && n - s->probe_sent >= s->common.probe_interval_ms)
		probe_send(s);
}

static void heartbeat_reply(redis_state *s, rq *q, const rlink *ac,
			    redisReply *reply)
{
	(void)q;
	if (reply == NULL || ac != s->cmd)
		return;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER) {
		redis_log(s, CONFAB_LOG_ERROR, "the heartbeat failed: %s",
			  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		return;
	}
	for (size_t i = 1; i < reply->elements; i++)
		if (reply->element[i]->type == REDIS_REPLY_STRING)
			redis_log(s, CONFAB_LOG_INFO, "node %s was silent for more than %u ms: "
				  "its sessions are gone from presence", reply->element[i]->str,
				  s->common.presence_ttl_ms);
	if (reply->element[0]->integer == 1) {
		/* Another node forgot us (this loop stalled, or the heartbeat
		 * could not get through): register everything again. */
		redis_log(s, CONFAB_LOG_WARN, "this node had been taken for gone (no heartbeat "
			  "for %u ms); registering its sessions again", s->common.presence_ttl_ms);
		reconcile_again(s);
	}
}

static void on_heartbeat_tick(uv_timer_t *t)
{
	redis_state *s = t->data;
	rq *q;

	if (s->destroying || s->cmd == NULL || !s->cmd_ready)
		return;
	q = rq_new(s, heartbeat_reply, SCRIPT_HEARTBEAT);
	if (q == NULL || rargs_adds(&q->args, s->prefix) != 0 ||
	    rargs_adds(&q->args, s->chan_prefix) != 0 ||
	    rargs_adds(&q->args, s->node_id) != 0 ||
	    rargs_addf(&q->args, "%llu", (unsigned long long)s->gen) != 0 ||
	    rargs_addf(&q->args, "%u", s->common.presence_ttl_ms) != 0) {
		rq_free(q);
		return;
	}
	rq_send_or_free(s, s->cmd, q);
	/* A presence script failed (Redis answered OOM, say): Redis's record
	 * of this node is wrong until a reconcile, which is retried here,
	 * every heartbeat, until one goes through. Presence is then exact
	 * again within a heartbeat of Redis recovering, without a reconnect. */
	if (s->presence_dirty && s->link == LINK_UP) {
		s->presence_dirty = false;
		reconcile_again(s);
	}
}

static void on_linger_tick(uv_timer_t *t)
{
	redis_state *s = t->data;

	if (s->cmd != NULL) {
		rlink *cmd = s->cmd;

		redis_log(s, CONFAB_LOG_WARN, "Redis did not answer the goodbye within %d ms; "
			  "other nodes will forget this one after presence_ttl", REDIS_LINGER_MS);
		s->cmd = NULL;
		drop_link(s, cmd);
	}
	close_timer(t);
}

/* ---- start, destroy ---- */

static void init_timer(redis_state *s, uv_timer_t *t)
{
	uv_timer_init(s->base.loop, t);
	t->data = s;
	s->handles++;
}

int conn_start(redis_state *s)
{
	unsigned tick;

	init_timer(s, &s->reconnect_timer);
	init_timer(s, &s->probe_timer);
	init_timer(s, &s->heartbeat_timer);
	init_timer(s, &s->linger_timer);
	uv_check_init(s->base.loop, &s->batch_check);
	s->batch_check.data = s;
	s->handles++;
	init_timer(s, &s->batch_timer);
	uv_check_init(s->base.loop, &s->wait_check);
	s->wait_check.data = s;
	s->handles++;
	init_timer(s, &s->ssub_timer);
	s->backoff_ms = REDIS_BACKOFF_FIRST_MS;
	/* The tick is finer than the interval so that a timeout is seen
	 * within REDIS_TICK_MS of expiring. */
	tick = s->common.probe_interval_ms < REDIS_TICK_MS ? s->common.probe_interval_ms
							   : REDIS_TICK_MS;
	s->tick_ms = tick;
	uv_timer_start(&s->probe_timer, on_probe_tick, tick, tick);
	uv_timer_start(&s->heartbeat_timer, on_heartbeat_tick, s->common.heartbeat_ms,
		       s->common.heartbeat_ms);
	sentinel_watch(s);
	conn_connect(s);
	return 0;
}

static void goodbye_reply(redis_state *s, rq *q, const rlink *ac, redisReply *reply)
{
	(void)q;
	if (reply == NULL)
		return;  /* the link went: on_closed (or the linger timer) finishes */
	if (reply->type == REDIS_REPLY_ERROR)
		redis_log(s, CONFAB_LOG_WARN, "the goodbye failed: %s", reply->str);
	/* Done: close once the replies still due are in (conn_reply_done). */
	if (s->cmd != NULL && ac == s->cmd)
		s->goodbye_done = true;
}

void conn_reply_done(redis_state *s)
{
	rlink *cmd = s->cmd;

	/* A reply never comes after its link's later ones, but a NOSCRIPT
	 * retry sent before the goodbye's reply came answers after it: the
	 * link closes when nothing at all is waiting on it. */
	if (!s->destroying || !s->goodbye_done || cmd == NULL || s->inflight != NULL)
		return;
	s->cmd = NULL;
	drop_link(s, cmd);
	close_timer(&s->linger_timer);  /* its close frees s, when it is the last */
}

void conn_destroy(redis_state *s)
{
	s->destroying = true;
	s->handles++;  /* this function: nothing is freed under it */

	close_timer(&s->reconnect_timer);
	close_timer(&s->probe_timer);
	close_timer(&s->heartbeat_timer);

	/* The core hears about every request now, before destroy returns. */
	batch_fail_all(s);
	if (!uv_is_closing((uv_handle_t *)&s->batch_check))
		uv_close((uv_handle_t *)&s->batch_check, on_timer_closed);
	close_timer(&s->batch_timer);
	sentinel_stop_asking(s);
	sentinel_unwatch(s);   /* closes ssub_timer */
	wait_link_gone(s);
	if (!uv_is_closing((uv_handle_t *)&s->wait_check))
		uv_close((uv_handle_t *)&s->wait_check, on_timer_closed);
	rq_orphan_all(s);
	/* Welcomes still waiting for an online go now; the replies that
	 * come later change nothing. */
	ronline_fail(s->base.onlines, NULL, NULL, UINT64_MAX, true);
	ops_subscriptions_reset(s);

	if (s->sub != NULL) {
		rlink *sub = s->sub;

		s->sub = NULL;
		drop_link(s, sub);
	}
	if (s->cmd != NULL) {
		/* A clean goodbye: what is left of this node leaves now, with
		 * member events, instead of after presence_ttl. Its reply closes
		 * the connection (until then a NOSCRIPT can still be retried);
		 * the linger timer bounds the wait. */
		rq *q = rq_new(s, goodbye_reply, SCRIPT_GOODBYE);

		if (q == NULL || rargs_adds(&q->args, s->prefix) != 0 ||
		    rargs_adds(&q->args, s->chan_prefix) != 0 ||
		    rargs_adds(&q->args, s->node_id) != 0 ||
		    rargs_addf(&q->args, "%llu", (unsigned long long)s->gen) != 0 ||
		    rq_send(s, s->cmd, q) != 0) {
			rlink *cmd = s->cmd;

			rq_free(q);
			s->cmd = NULL;
			drop_link(s, cmd);
		}
	}
	if (s->cmd != NULL)
		uv_timer_start(&s->linger_timer, on_linger_tick, REDIS_LINGER_MS, 0);
	else
		close_timer(&s->linger_timer);
	conn_release(s);
}
