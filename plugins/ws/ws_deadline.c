/* The handshake deadline: a connection that is not a WebSocket session
 * WS_HANDSHAKE_SECS after it was accepted is closed, whatever it is doing
 * (sending nothing, half a request, a request lws turns into something we
 * do not serve, such as CONNECT, a plain HTTP connection kept alive, or a
 * handshake still waiting for its admission after an upgrade).
 *
 * lws has timeouts for some of these states and none for others (after
 * CONNECT it holds the connection forever), and it resets them as a
 * request moves on; this one deadline covers every state. Every
 * connection gets the same time from its accept, so the connections in
 * the list are in deadline order when they are appended in accept order:
 * one timer, set for the head, and O(1) per connection. A TLS client
 * joins once its TLS handshake is done, with the deadline of its TCP
 * accept (one deadline for both handshakes): it is put in order from the
 * tail, past the clients accepted during its TLS handshake that finished
 * theirs first (a few; at most the connections the limits allow). A parked
 * handshake leaves the list and keeps its deadline in ws_park.c, where it
 * is answered 503 instead of dropped.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>

#include <uv.h>

#include "ws.h"

static void deadline_tick(uv_timer_t *t);

static void arm(ws_state *s)
{
	uint64_t now = uv_now(s->loop);
	ws_conn *head = s->young;

	if (s->young_timer == NULL)
		return;
	if (head == NULL) {
		uv_timer_stop(s->young_timer);
		return;
	}
	uv_timer_start(s->young_timer, deadline_tick,
		       head->deadline > now ? head->deadline - now : 0, 0);
}

static void deadline_tick(uv_timer_t *t)
{
	ws_state *s = t->data;
	uint64_t now = uv_now(t->loop);

	while (s->young != NULL && s->young->deadline <= now) {
		ws_conn *c = s->young;

		ws_deadline_leave(c);
		ws_conn_expired(c);     /* may free c */
	}
	arm(s);
}

int ws_deadline_start(ws_state *s)
{
	s->young_timer = malloc(sizeof(*s->young_timer));
	if (s->young_timer == NULL)
		return CONFAB_ENOMEM;
	uv_timer_init(s->loop, s->young_timer);
	s->young_timer->data = s;
	uv_unref((uv_handle_t *)s->young_timer);
	return 0;
}

void ws_deadline_join(ws_conn *c, uint64_t accepted_ms)
{
	ws_state *s = c->s;
	ws_conn *before = s->young_tail;

	c->deadline = accepted_ms + WS_HANDSHAKE_SECS * 1000u;
	/* In deadline order: a plain connection goes last; a TLS client,
	 * accepted before its handshake, a few places from the end. */
	while (before != NULL && before->deadline > c->deadline)
		before = before->young_prev;
	c->young_prev = before;
	c->young_next = before != NULL ? before->young_next : s->young;
	if (c->young_next != NULL)
		c->young_next->young_prev = c;
	else
		s->young_tail = c;
	if (before != NULL)
		before->young_next = c;
	else
		s->young = c;
	c->young = true;
	if (s->young == c)
		arm(s);
}

void ws_deadline_leave(ws_conn *c)
{
	ws_state *s = c->s;
	bool was_head = s->young == c;

	if (!c->young)
		return;
	c->young = false;
	if (c->young_prev != NULL)
		c->young_prev->young_next = c->young_next;
	else
		s->young = c->young_next;
	if (c->young_next != NULL)
		c->young_next->young_prev = c->young_prev;
	else
		s->young_tail = c->young_prev;
	c->young_prev = c->young_next = NULL;
	if (was_head)
		arm(s);
}

void ws_deadline_end(ws_state *s)
{
	ws_handle_free((uv_handle_t *)s->young_timer);
	s->young_timer = NULL;
}
