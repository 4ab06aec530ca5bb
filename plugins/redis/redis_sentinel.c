/* Redis Sentinel: where the master is, and when it moved.
 *
 * [redis] sentinels = h:p, h:p, ... and master_name, instead of host and
 * port. Three jobs:
 *
 *  - Asking (every connect, redis_conn.c's conn_connect): the sentinels
 *    are asked in turn, `SENTINEL get-master-addr-by-name master_name`,
 *    each on a short-lived link of its own, starting with the one that
 *    answered last. The first that names an address wins; the data links
 *    are opened to it (conn_open_links). When none does, the round fails
 *    with one line that says what each said (refused, AUTH failed, does
 *    not know the name), and the normal reconnect backoff asks again.
 *    The answer may be a name: rlink resolves it at every connect.
 *
 *  - ROLE first: the server a sentinel names may have been demoted since
 *    it answered, or be an old master restarted empty that the sentinels
 *    have not turned into a replica yet (that takes them about 10 s).
 *    Writing there would lose the writes (or be refused), so the command
 *    link sends ROLE alone and queues the setup (whose reconcile writes)
 *    only when it says "master"; anything else fails the connect, and the
 *    sentinels are asked again.
 *
 *  - Watching: one subscriber link to one sentinel, SUBSCRIBE
 *    +switch-master. A switch of master_name to another address fails
 *    the current links at once (conn_fail without the backoff): new
 *    links, resubscribe, reconcile, as after any outage. Without it the
 *    node would learn of a failover only when the old master's socket
 *    broke, which for a master cut off by the network (rather than
 *    killed) takes until the request deadline, and its writes in between
 *    would be lost. When that sentinel's link breaks, the next one is
 *    subscribed at once; after a whole round of failures, every
 *    reconnect_max_ms. A switch missed meanwhile is still noticed: the
 *    old master's links break, or ROLE refuses it.
 *
 *  - Not writing to a master the sentinels are failing over: +odown for
 *    our master (published by a sentinel when a quorum agrees it is
 *    down, before the leader promotes a replica) fails the links too,
 *    and that address is not used again until -odown, a +switch-master,
 *    or ODOWN_HOLD_MS. Why: a master that is alive but cut off from the
 *    sentinels (or, in the test, one they wrongly found down) keeps
 *    taking writes until the switch, and with two replicas WAIT 1 can
 *    count the one that is not promoted: those acks would be lost.
 *
 * Every link here gets the instance's TLS configuration and
 * sentinel_password (AUTH before anything else).
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"

/* How long a +odown keeps us away from that master when neither -odown
 * nor +switch-master follows (a failover that could not be done). */
#define ODOWN_HOLD_MS 30000

static void ask_next(redis_state *s);

/* host:port is the master the sentinels found down, lately. */
static bool found_down(const redis_state *s, const char *host, int port)
{
	return s->odown_host[0] != '\0' && strcmp(s->odown_host, host) == 0 &&
	       s->odown_port == port && uv_now(s->base.loop) - s->odown_at < ODOWN_HOLD_MS;
}

static const char *sentinel_name(const redis_state *s, size_t i, char *buf, size_t len)
{
	const redis_sentinel *e = &s->sentinels[i];

	snprintf(buf, len, strchr(e->host, ':') ? "[%s]:%d" : "%s:%d", e->host, e->port);
	return buf;
}

/* A link to sentinel `i`. */
static rlink *sentinel_link(redis_state *s, size_t i, bool subscriber, rlink_push_fn on_push,
			    rlink_closed_fn on_closed)
{
	const rlink_opts o = {
		.host = s->sentinels[i].host,
		.port = s->sentinels[i].port,
		.password = s->sentinel_password,
		.connect_timeout_ms = s->common.probe_timeout_ms,
		.subscriber = subscriber,
		.on_push = on_push,
		.on_closed = on_closed,
		.arg = s,
		.tls = s->tls,
	};

	return conn_link_open(s, &o);
}

/* ---- asking where the master is ---- */

/* What sentinel `i` said, for the round's line. */
__attribute__((format(printf, 3, 4)))
static void note(redis_state *s, size_t i, const char *fmt, ...)
{
	char name[300], what[300];
	size_t n = strlen(s->sq_why);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (n == 0) {
		snprintf(s->sq_first, sizeof(s->sq_first), "%s", what);
		s->sq_same = true;
	} else if (strcmp(s->sq_first, what) != 0) {
		s->sq_same = false;
	}
	snprintf(s->sq_why + n, sizeof(s->sq_why) - n, "%s%s: %s", n > 0 ? "; " : "",
		 sentinel_name(s, i, name, sizeof(name)), what);
}

static void close_query(redis_state *s)
{
	rlink *l = s->sq;

	s->sq = NULL;
	if (l != NULL)
		conn_link_drop(s, l);
}

/* The sentinel being asked gave no address: the next one. */
static void asked_in_vain(redis_state *s)
{
	close_query(s);
	s->sq_next = (s->sq_next + 1) % s->n_sentinels;
	ask_next(s);
}

static void query_reply(rlink *l, redisReply *reply, void *arg)
{
	redis_state *s = arg;
	const redisReply *h, *p;
	char *end;
	long port;

	if (reply == NULL || l != s->sq)
		return;  /* closed: on_closed says why (or we closed it) */
	if (reply->type == REDIS_REPLY_NIL) {
		s->sq_unknown++;
		note(s, s->sq_next, "does not know master '%s'", s->master_name);
		asked_in_vain(s);
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		note(s, s->sq_next, "%s%s", reply->str, strncmp(reply->str, "NOAUTH", 6) == 0 ?
		     " (set sentinel_password)" : "");
		asked_in_vain(s);
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    (h = reply->element[0])->type != REDIS_REPLY_STRING ||
	    (p = reply->element[1])->type != REDIS_REPLY_STRING ||
	    h->len == 0 || h->len >= sizeof(s->addr) ||
	    (port = strtol(p->str, &end, 10)) < 1 || port > 65535 || *end != '\0') {
		note(s, s->sq_next, "an answer that is not an address");
		asked_in_vain(s);
		return;
	}
	if (found_down(s, h->str, (int)port)) {
		note(s, s->sq_next, "names %s:%ld, which the sentinels found down (a failover "
		     "is under way)", h->str, port);
		asked_in_vain(s);
		return;
	}
	if (strcmp(s->addr, h->str) != 0 || s->port != (int)port) {
		char name[300];

		redis_log(s, s->addr[0] != '\0' ? CONFAB_LOG_INFO : CONFAB_LOG_DEBUG,
			  "sentinel %s names %s:%ld as master '%s'",
			  sentinel_name(s, s->sq_next, name, sizeof(name)), h->str, port,
			  s->master_name);
		snprintf(s->addr, sizeof(s->addr), "%s", h->str);
		s->port = (int)port;
	}
	close_query(s);
	conn_open_links(s);
}

static void query_closed(rlink *l, const char *why, void *arg)
{
	redis_state *s = arg;

	if (l != s->sq)
		return;
	note(s, s->sq_next, "%s%s", why, strncmp(why, "AUTH failed", 11) == 0 ?
	     " (is sentinel_password right?)" : "");
	asked_in_vain(s);
}

/* Every sentinel asked, none named the master: one line for them all. */
static void round_failed(redis_state *s)
{
	if (s->sq_unknown == s->n_sentinels)
		conn_fail(s, "no sentinel knows master '%s' (is master_name right?)",
			  s->master_name);
	else if (s->sq_same && s->n_sentinels > 1)
		/* "connection refused" three times says less than once. */
		conn_fail(s, "cannot find master '%s': every sentinel (%zu) failed the same way: "
			  "%s", s->master_name, s->n_sentinels, s->sq_first);
	else
		conn_fail(s, "cannot find master '%s': no sentinel named it: %s", s->master_name,
			  s->sq_why);
}

static void ask_next(redis_state *s)
{
	const char *argv[3] = { "SENTINEL", "get-master-addr-by-name", s->master_name };

	if (s->sq_asked == s->n_sentinels) {
		round_failed(s);
		return;
	}
	s->sq_asked++;
	s->sq_started = uv_now(s->base.loop);
	s->sq = sentinel_link(s, s->sq_next, false, NULL, query_closed);
	if (s->sq == NULL) {
		conn_fail(s, "cannot ask the sentinels: out of memory");
		return;
	}
	if (rlink_command(s->sq, 3, argv, NULL, query_reply, s) != 0) {
		note(s, s->sq_next, "out of memory");
		asked_in_vain(s);
	}
}

void sentinel_ask(redis_state *s)
{
	s->sq_asked = 0;
	s->sq_unknown = 0;
	s->sq_why[0] = '\0';
	ask_next(s);
}

void sentinel_ask_timeout(redis_state *s)
{
	note(s, s->sq_next, "no answer within %u ms", s->common.probe_timeout_ms);
	asked_in_vain(s);
}

void sentinel_stop_asking(redis_state *s)
{
	close_query(s);
}

/* ---- ROLE before anything else ---- */

static void role_reply(redis_state *s, rq *q, const rlink *l, redisReply *reply)
{
	const char *role;

	(void)q;
	if (reply == NULL || l != s->cmd)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		conn_fail(s, "ROLE failed at %s:%d: %s", s->addr, s->port, reply->str);
		return;
	}
	role = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
	       reply->element[0]->type == REDIS_REPLY_STRING ? reply->element[0]->str : "?";
	if (strcmp(role, "master") != 0) {
		/* Demoted since the sentinel answered, or about to be: ask them
		 * again (after the backoff) rather than write here. */
		conn_fail(s, "%s:%d, named master '%s' by a sentinel, says it is a %s: not "
			  "writing there", s->addr, s->port, s->master_name,
			  strcmp(role, "slave") == 0 ? "replica" : role);
		return;
	}
	if (conn_setup_command_link(s) != 0)
		conn_fail(s, "cannot queue the connection setup (out of memory?)");
}

int sentinel_check_role(redis_state *s)
{
	rq *q = rq_new(s, role_reply, -1);

	if (q == NULL || rargs_adds(&q->args, "ROLE") != 0) {
		rq_free(q);
		return CONFAB_ENOMEM;
	}
	if (rq_send_or_free(s, s->cmd, q) != 0)
		return CONFAB_ERR;
	return 0;
}

/* ---- watching for +switch-master ---- */

static void watch_open(redis_state *s);
static void on_watch_tick(uv_timer_t *t);
static void on_watch_ping(uv_timer_t *t);

/* One line per distinct state of the watch, not one per retry. */
__attribute__((format(printf, 3, 4)))
static void watch_log(redis_state *s, int level, const char *fmt, ...)
{
	char line[sizeof(s->ssub_last)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (strcmp(line, s->ssub_last) == 0)
		return;
	snprintf(s->ssub_last, sizeof(s->ssub_last), "%s", line);
	redis_log(s, level, "%s", line);
}

/* "+switch-master" says "<name> <old ip> <old port> <new ip> <new port>". */
static void switched(redis_state *s, const char *text)
{
	char name[256], old_host[256], new_host[256];
	int old_port, new_port;

	if (sscanf(text, "%255s %255s %d %255s %d", name, old_host, &old_port, new_host,
		   &new_port) != 5 || strcmp(name, s->master_name) != 0 ||
	    new_port < 1 || new_port > 65535)
		return;
	s->odown_host[0] = '\0';
	if (strcmp(new_host, s->addr) == 0 && new_port == s->port && s->sq == NULL &&
	    s->link != LINK_DOWN)
		return;  /* there already (a sentinel named it before the event came) */
	redis_log(s, CONFAB_LOG_INFO, "the sentinels moved master '%s' from %s:%d to %s:%d: "
		  "reconnecting", s->master_name, old_host, old_port, new_host, new_port);
	/* Straight to the new address, whatever the backoff had reached. */
	s->backoff_ms = REDIS_BACKOFF_FIRST_MS;
	if (s->link == LINK_DOWN) {
		conn_reconnect_now(s);
		return;
	}
	s->fail_at_once = true;
	conn_fail(s, "master '%s' moved from %s:%d to %s:%d (failover)", s->master_name,
		  old_host, old_port, new_host, new_port);
}

/* "+odown" / "-odown" say "master <name> <ip> <port> ...". */
static void odown(redis_state *s, const char *text, bool down)
{
	char type[16], name[256], host[256];
	int port;

	if (sscanf(text, "%15s %255s %255s %d", type, name, host, &port) != 4 ||
	    strcmp(type, "master") != 0 || strcmp(name, s->master_name) != 0)
		return;
	if (!down) {
		if (strcmp(host, s->odown_host) == 0 && port == s->odown_port) {
			s->odown_host[0] = '\0';
			redis_log(s, CONFAB_LOG_INFO, "the sentinels see master '%s' at %s:%d "
				  "again (-odown)", s->master_name, host, port);
			conn_reconnect_now(s);
		}
		return;
	}
	snprintf(s->odown_host, sizeof(s->odown_host), "%s", host);
	s->odown_port = port;
	s->odown_at = uv_now(s->base.loop);
	if (s->link != LINK_DOWN && strcmp(host, s->addr) == 0 && port == s->port)
		conn_fail(s, "the sentinels found master '%s' at %s:%d down (+odown): not "
			  "writing there while they fail over", s->master_name, host, port);
}

/* The watch's link is lost or refused: confab_redis_link_up{link="sentinel"} 0. */
static void watch_down(redis_state *s)
{
	s->ssub_up = false;
	rbase_link_up(&s->base, RBASE_LINK_SENTINEL, 0);
}

static void watch_push(rlink *l, redisReply *reply, void *arg)
{
	redis_state *s = arg;
	char name[300];

	if (l != s->ssub || reply == NULL)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		/* A SUBSCRIBE refused: another sentinel may take it. */
		watch_log(s, CONFAB_LOG_WARN, "sentinel %s refused SUBSCRIBE +switch-master: %s",
			  sentinel_name(s, s->ssub_idx, name, sizeof(name)), reply->str);
		watch_down(s);
		s->ssub = NULL;
		conn_link_drop(s, l);  /* no on_closed for it: move on here */
		s->ssub_idx = (s->ssub_idx + 1) % s->n_sentinels;
		if (++s->ssub_failures < s->n_sentinels)
			watch_open(s);
		else
			uv_timer_start(&s->ssub_timer, on_watch_tick,
				       s->common.reconnect_max_ms, 0);
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(reply->element[0]->str, "subscribe") == 0) {
		s->ssub_failures = 0;
		s->ssub_ping_out = false;
		uv_timer_start(&s->ssub_timer, on_watch_ping, s->common.probe_interval_ms,
			       s->common.probe_interval_ms);
		if (!s->ssub_up) {
			if (s->ssub_was_up)
				rbase_reconnected(&s->base, RBASE_LINK_SENTINEL);
			s->ssub_up = s->ssub_was_up = true;
			rbase_link_up(&s->base, RBASE_LINK_SENTINEL, 1);
		}
		watch_log(s, CONFAB_LOG_DEBUG, "watching for failovers on sentinel %s",
			  sentinel_name(s, s->ssub_idx, name, sizeof(name)));
	} else if (strcmp(reply->element[0]->str, "message") == 0 &&
		   reply->element[2]->type == REDIS_REPLY_STRING &&
		   reply->element[1]->type == REDIS_REPLY_STRING) {
		const char *channel = reply->element[1]->str, *text = reply->element[2]->str;

		if (strcmp(channel, "+switch-master") == 0)
			switched(s, text);
		else if (strcmp(channel, "+odown") == 0 || strcmp(channel, "-odown") == 0)
			odown(s, text, channel[0] == '+');
	}
}

/* The watched sentinel is gone (its link closed, or it stopped answering):
 * the next one. */
static void watch_lost(redis_state *s, rlink *l, const char *why)
{
	char name[300], next[300];

	watch_down(s);
	s->ssub = NULL;
	s->ssub_ping_out = false;
	uv_timer_stop(&s->ssub_timer);
	conn_link_drop(s, l);
	if (s->destroying)
		return;
	sentinel_name(s, s->ssub_idx, name, sizeof(name));
	s->ssub_idx = (s->ssub_idx + 1) % s->n_sentinels;
	if (++s->ssub_failures < s->n_sentinels) {
		watch_log(s, CONFAB_LOG_WARN, "lost sentinel %s (%s): watching for failovers on "
			  "%s instead", name, why,
			  sentinel_name(s, s->ssub_idx, next, sizeof(next)));
		watch_open(s);
		return;
	}
	/* None of them: try again later rather than spin. */
	watch_log(s, CONFAB_LOG_WARN, "no sentinel can be subscribed to for failovers (the last, "
		  "%s: %s); trying again every %u ms", name, why, s->common.reconnect_max_ms);
	uv_timer_start(&s->ssub_timer, on_watch_tick, s->common.reconnect_max_ms, 0);
}

static void watch_closed(rlink *l, const char *why, void *arg)
{
	redis_state *s = arg;

	if (l == s->ssub)
		watch_lost(s, l, why);
}

/* A sentinel that stops answering without closing (stopped, its machine
 * frozen, a firewall dropping its packets) would leave the watch deaf to
 * failovers while the link looks fine. So while subscribed, a PING goes
 * out every probe_interval_ms, and one not answered within
 * probe_timeout_ms loses that sentinel as a close does. */
static void watch_pong(rlink *l, redisReply *reply, void *arg)
{
	redis_state *s = arg;

	if (l == s->ssub && reply != NULL)
		s->ssub_ping_out = false;  /* an error answer is an answer too */
}

static void on_watch_ping(uv_timer_t *t)
{
	redis_state *s = t->data;
	const char *argv[1] = { "PING" };
	char why[80];

	if (s->ssub == NULL || !s->ssub_up)
		return;
	if (s->ssub_ping_out) {
		if (uv_now(s->base.loop) - s->ssub_ping_at < s->common.probe_timeout_ms)
			return;
		snprintf(why, sizeof(why), "no answer to PING within %u ms",
			 s->common.probe_timeout_ms);
		watch_lost(s, s->ssub, why);
		return;
	}
	if (rlink_command(s->ssub, 1, argv, NULL, watch_pong, s) != 0)
		return;  /* not queued (the link is failing, or memory ran out) */
	s->ssub_ping_out = true;
	s->ssub_ping_at = uv_now(s->base.loop);
}

static void watch_open(redis_state *s)
{
	const char *argv[4] = { "SUBSCRIBE", "+switch-master", "+odown", "-odown" };

	if (s->destroying || s->ssub != NULL)
		return;
	s->ssub = sentinel_link(s, s->ssub_idx, true, watch_push, watch_closed);
	if (s->ssub == NULL) {
		uv_timer_start(&s->ssub_timer, on_watch_tick, s->common.reconnect_max_ms, 0);
		return;
	}
	/* No reply callback: the confirmation is a push. */
	rlink_command(s->ssub, 4, argv, NULL, NULL, NULL);
}

static void on_watch_tick(uv_timer_t *t)
{
	redis_state *s = t->data;

	s->ssub_failures = 0;
	watch_open(s);
}

void sentinel_watch(redis_state *s)
{
	if (s->n_sentinels == 0)
		return;
	uv_timer_start(&s->ssub_timer, on_watch_tick, 0, 0);
}

void sentinel_unwatch(redis_state *s)
{
	rlink *l = s->ssub;

	s->ssub = NULL;
	if (l != NULL)
		conn_link_drop(s, l);
	conn_close_timer(&s->ssub_timer);
}
