/* Dead peers: a WebSocket ping after [broker] idle_timeout seconds (T)
 * without anything from the client, and a hang-up when another T passes
 * without an answer (or anything else).
 *
 * lws can do this itself (its "validity" policy), but it keeps every
 * connection's timer in one sorted list and inserts each new one by
 * walking the list from its head: with thousands of connections that walk
 * was a third of the broker's CPU while clients connect, and re-sorting on
 * every incoming message a tenth of it in chat traffic
 * (docs/performance.md). Here each connection only notes the loop time of
 * its last sign of life (a message, a pong), and one timer looks over all
 * of them once a second: O(connections) a second, nothing per message.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>

#include <uv.h>

#include "ws.h"

/* How often the connections are looked over (ms): the ping and the
 * hang-up come up to this much later than T and 2T. */
#define WS_IDLE_SWEEP_MS 1000

static void sweep(uv_timer_t *t)
{
	ws_state *s = t->data;
	uint32_t now = (uint32_t)uv_now(t->loop), t_ms = s->idle_ms;
	bool killed = false;

	for (ws_conn *c = s->conns; c != NULL; c = c->next) {
		uint32_t quiet;

		if (!c->established || c->wsi == NULL || c->close_sent ||
		    c->hung_up)
			continue;
		quiet = now - c->alive_ms;
		if (quiet < t_ms) {
			c->ping_sent = false;
		} else if (quiet >= 2 * t_ms) {
			/* No close frame: the peer is not there to read it.
			 * lws's own timeout path hangs up at once. */
			c->hung_up = true;
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
					LWS_TO_KILL_ASYNC);
			killed = true;
		} else if (!c->ping_sent) {
			c->ping_sent = true;
			ws_out_ping(c);
		}
	}
	/* lws runs due timeouts when its loop work comes round: wake it. */
	if (killed && s->lws != NULL)
		lws_cancel_service(s->lws);
}

int ws_idle_start(ws_state *s)
{
	if (s->idle_ms == 0)
		return 0;
	s->idle_timer = malloc(sizeof(*s->idle_timer));
	if (s->idle_timer == NULL)
		return CONFAB_ENOMEM;
	uv_timer_init(s->loop, s->idle_timer);
	s->idle_timer->data = s;
	uv_timer_start(s->idle_timer, sweep, WS_IDLE_SWEEP_MS, WS_IDLE_SWEEP_MS);
	/* The timer does not keep the loop alive on its own. */
	uv_unref((uv_handle_t *)s->idle_timer);
	return 0;
}

void ws_idle_alive(ws_conn *c)
{
	c->alive_ms = (uint32_t)uv_now(c->s->loop);
}

void ws_idle_end(ws_state *s)
{
	ws_handle_free((uv_handle_t *)s->idle_timer);
	s->idle_timer = NULL;
}
