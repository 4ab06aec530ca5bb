#!/usr/bin/python3
"""The redis backplane (issue 3) survives Redis outages and its health tells
the truth:

  - a subscription killed while Redis stays up (CLIENT KILL TYPE pubsub) is
    noticed (/readyz 503) and repaired by the node itself;
  - Redis stopped mid-traffic: /readyz 503, requests that need Redis get
    `unavailable`, connections stay, no acked message is lost; after Redis
    restarts on the same port, /readyz 200 and delivery work again;
  - Redis down when confabd starts: it starts anyway (503, `unavailable`)
    and turns 200 once Redis is there;
  - /metrics (the strict parser of promtext.py) follows it: the links up,
    the subscriptions, the scripts' latencies, and the reconnect counted.

Two redis-servers: one for nodes a, b, c (with an append-only file, so that
what it acknowledged survives its restart) and, through a proxy that can
silence connections, for nodes p and q (another prefix; probes every
500 ms, 1500 ms to come back); one that is down when nodes x and y start.
Anonymous clients, presence_ttl = 3, history_size = 1000.

SPDX-License-Identifier: MIT
"""
import asyncio
import itertools
import json
import os
import time

from confabtest import Client, RECV_TIMEOUT, TestFailure, check, http_get, note
from promtext import scrape, value
from redistest import (DETECT_TIMEOUT, POLL, RECOVER_TIMEOUT, Cluster, RedisProxy, RedisServer,
                       RedisSuite, drain, readyz, history_all, log_count, seq_problems,
                       wait_health)

HISTORY_SIZE = 1000

suite = RedisSuite("test_redis_outage", watchdog=300)
main = Cluster(suite, guests=("a", "b", "c"), history_size=HISTORY_SIZE, persist=True)
proxy = RedisProxy(main.redis)
silent = Cluster(suite, guests=("p", "q"), redis=main.redis, prefix="ct-silent-%d:" % os.getpid(),
                 redis_keys={"port": proxy.port, "probe_interval_ms": 500,
                             "probe_timeout_ms": 1500})
late = Cluster(suite, guests=("x", "y"), redis=RedisServer(suite.tmp, "redis-late"),
               prefix="ct-late-%d:" % os.getpid(), history_size=HISTORY_SIZE)

_rooms = itertools.count(1)


def room(prefix="room"):
    """A room name no other check uses."""
    return "%s-%d" % (prefix, next(_rooms))


def nodes(cluster):
    return list(cluster.nodes.values())


async def one_client_per_node(cluster, r, prefix="m"):
    """A client on each node of `cluster`, all in room `r`."""
    out = []
    for n in nodes(cluster):
        c = await Client.connect(n.port, name="%s@%s" % (prefix, n.name))
        await c.join(r)
        out.append(c)
    return out


async def delivery_works(clients, r, what):
    """Each client sends once; every other client gets the message."""
    for sender in clients:
        ack = await sender.say(r, "%s from %s" % (what, sender.name))
        for c in clients:
            if c is sender:
                continue
            m = await c.expect("message", room=r, id=ack["id"])
            check(m.get("seq") == ack["seq"], "%s: message %s arrived with seq %r, ack says %r"
                  % (c.name, ack["id"], m.get("seq"), ack["seq"]))
    note("%s: a message sent on each node reached the other nodes" % what)


# ---- (a) a subscription that dies while Redis stays up -------------------

@suite.test
async def a_killed_subscription_turns_readyz_503_and_the_node_repairs_itself():
    """CLIENT KILL TYPE pubsub kills every node's subscription while their
    command connections and Redis stay up: each node notices (/readyz 503,
    or its log says "backplane down" when it recovered faster than the 50 ms
    polling could see), answers 200 again by itself, and cross-node delivery
    works again."""
    main.start()
    r = room()
    clients = await one_client_per_node(main, r)
    await delivery_works(clients, r, "before the kill")
    downs = {n.name: log_count(n, "backplane down") for n in nodes(main)}

    killed = main.redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
    check(killed.isdigit() and int(killed) >= len(main.nodes),
          "CLIENT KILL TYPE pubsub killed %r connections, want one per node (%d): the nodes were "
          "not subscribed" % (killed, len(main.nodes)))
    note("CLIENT KILL TYPE pubsub killed %s subscriptions" % killed)
    await noticed_and_repaired(main, downs, "CLIENT KILL TYPE pubsub")
    for c in clients:
        await c.ping()
    await delivery_works(clients, r, "after the subscriptions came back")


async def noticed_and_repaired(cluster, downs, what):
    """Every node of `cluster` shows that its subscription failed (/readyz
    503, polled every 50 ms, or a new "backplane down" line in its log
    beyond the counts `downs`) within DETECT_TIMEOUT, then answers 200."""
    since = time.monotonic()
    seen = {}   # node -> how the failure showed
    while len(seen) < len(cluster.nodes):
        for n in nodes(cluster):
            if n.name in seen:
                continue
            if await readyz(n) == 503:
                seen[n.name] = "/readyz 503 after %.2fs" % (time.monotonic() - since)
            elif log_count(n, "backplane down") > downs[n.name]:
                seen[n.name] = "no 503 seen, log says backplane down"
        if time.monotonic() - since > DETECT_TIMEOUT:
            raise TestFailure(
                "%.0fs after %s, /readyz of %s never answered 503 and its log has no new "
                "\"backplane down\" line: the dead subscription went unnoticed"
                % (DETECT_TIMEOUT, what,
                   ", ".join(n.name for n in nodes(cluster) if n.name not in seen)))
        await asyncio.sleep(POLL)
    for name in sorted(seen):
        note("node %s: %s" % (name, seen[name]))
    took = await wait_health(nodes(cluster), 200, RECOVER_TIMEOUT, "after " + what)
    note("/readyz 200 again on every node (%s)" % ", ".join(
        "%s after %.2fs" % (k, v) for k, v in sorted(took.items())))


@suite.test
async def a_subscription_that_goes_silent_turns_readyz_503_and_the_node_repairs_itself():
    """Nodes p and q reach Redis through a proxy. The proxy silently drops
    everything on their subscription connections, which stay open (no
    error, no close: the failure Nchan, Socket.IO's adapter and Centrifugo
    miss): each node notices within a few seconds through its probe
    (/readyz 503, or its log says "backplane down"), answers 200 again by
    itself, and cross-node delivery works again."""
    await proxy.start()
    try:
        await asyncio.get_running_loop().run_in_executor(None, silent.start)
        r = room("silent")
        clients = await one_client_per_node(silent, r, prefix="s")
        await delivery_works(clients, r, "before the silence")
        downs = {n.name: log_count(n, "backplane down") for n in nodes(silent)}
        n = proxy.silence_subscriptions()
        check(n >= len(silent.nodes), "the proxy saw %d subscription connections, want one per "
              "node (%d)" % (n, len(silent.nodes)))
        note("the proxy silenced %d subscription connections; they stay open" % n)
        await noticed_and_repaired(silent, downs, "the subscriptions went silent")
        for c in clients:
            await c.ping()
        await delivery_works(clients, r, "after the subscriptions came back")
    finally:
        await proxy.close()


# ---- (b) Redis stopped mid-traffic, then restarted -----------------------

class LinkMetrics:
    """What GET /metrics of a redis node says of its links."""

    def __init__(self, node):
        fams = scrape(node.port)
        self.up = {k: value(fams, "confab_redis_link_up", link=k) for k in ("command", "subscribe")}
        self.reconnects = {k: value(fams, "confab_redis_reconnects_total", link=k)
                           for k in ("command", "subscribe")}
        self.subscriptions = value(fams, "confab_redis_subscriptions")
        self.script_calls = sum(v for name, _, v in fams["confab_redis_script_seconds"]["samples"]
                                if name == "confab_redis_script_seconds_count")
        # every script has its series from the start (a scrape without it fails)
        value(fams, "confab_redis_script_seconds", "confab_redis_script_seconds_count",
              script="publish")

    def __str__(self):
        return "link_up %s, reconnects %s, subscriptions %g, script calls %g" % (
            self.up, self.reconnects, self.subscriptions, self.script_calls)


class Sender:
    """Sends a message to room `r` every 50 ms and waits for each reply:
    acks and `unavailable` errors are recorded, anything else (or no reply)
    is a failure."""

    def __init__(self, client, r):
        self.c = client
        self.r = r
        self.acks = []          # acks, in order
        self.unavailable = 0
        self.failure = None
        self.stopping = False
        self.task = None
        self.n = 0

    def start(self):
        self.task = asyncio.ensure_future(self.run())

    async def run(self):
        try:
            while not self.stopping:
                self.n += 1
                rep = await self.c.request({"type": "send", "room": self.r, "body": "t%d" % self.n})
                if rep.get("type") == "ack":
                    self.acks.append(rep)
                elif rep.get("type") == "error" and rep.get("code") == "unavailable":
                    self.unavailable += 1
                else:
                    raise TestFailure("%s: send %d answered %s, want an ack or error unavailable"
                                      % (self.c.name, self.n, json.dumps(rep)))
                await asyncio.sleep(0.05)
        except TestFailure as e:
            self.failure = str(e)

    def alive(self):
        check(self.failure is None, self.failure or "")
        check(not self.task.done(), "%s: the sending loop ended" % self.c.name)

    async def wait_for(self, cond, what, timeout):
        deadline = time.monotonic() + timeout
        while not cond():
            self.alive()
            check(time.monotonic() < deadline, "%s: %s within %.0fs (acks %d, unavailable %d)"
                  % (self.c.name, what, timeout, len(self.acks), self.unavailable))
            await asyncio.sleep(POLL)

    async def stop(self):
        self.stopping = True
        await asyncio.wait_for(self.task, RECV_TIMEOUT + 1)
        check(self.failure is None, self.failure or "")


@suite.test
async def redis_stopped_mid_traffic_unavailable_meanwhile_then_200_and_no_acked_message_lost():
    """A client on a sends every 50 ms while Redis is stopped (SIGTERM):
    every node's /readyz turns 503; sends, presence, history, join and
    direct get error unavailable; every connection stays open (ping ->
    pong). Redis restarts on the same port: every node answers 200 within
    15 s, the sender is acked again, delivery crosses nodes, presence is
    whole again, and history holds every message that was ever acked."""
    main.start()
    r = room("traffic")
    s, lb, mc = await one_client_per_node(main, r, prefix="t")
    sender = Sender(s, r)
    sender.start()
    await sender.wait_for(lambda: len(sender.acks) >= 10, "10 acks before the outage", RECV_TIMEOUT)
    note("sending every 50 ms from node a: %d acked" % len(sender.acks))
    before = LinkMetrics(main.nodes["a"])
    check(before.up == {"command": 1, "subscribe": 1}, "/metrics before the outage: %s" % before)
    check(before.subscriptions >= 2, "/metrics: %g subscriptions, want the node's channel and "
          "room %s's at least" % (before.subscriptions, r))
    check(before.script_calls >= 10, "/metrics: %g script calls after 10 acked sends"
          % before.script_calls)
    note("/metrics of a: %s" % before)

    loop = asyncio.get_running_loop()
    stopped_at = time.monotonic()
    code = await loop.run_in_executor(None, main.redis.stop)
    note("redis-server stopped (exit status %s) with %d acked" % (code, len(sender.acks)))
    took = await wait_health(nodes(main), 503, DETECT_TIMEOUT, "Redis stopped")
    note("/readyz 503 on every node (%s)" % ", ".join(
        "%s after %.2fs" % (k, v) for k, v in sorted(took.items())))
    acked_when_down = len(sender.acks)
    down = LinkMetrics(main.nodes["a"])
    check(down.up == {"command": 0, "subscribe": 0} and down.subscriptions == 0,
          "/metrics while Redis is down: %s" % down)
    await sender.wait_for(lambda: sender.unavailable >= 5, "5 sends answered unavailable",
                          RECV_TIMEOUT)
    check(len(sender.acks) == acked_when_down,
          "%d sends were acked while every node said 503" % (len(sender.acks) - acked_when_down))
    note("sends from a are answered unavailable (%d so far)" % sender.unavailable)

    for c in (lb, mc):
        await c.error({"type": "send", "room": r, "body": "during the outage"}, "unavailable")
        await c.error({"type": "presence", "room": r}, "unavailable")
        await c.error({"type": "history", "room": r}, "unavailable")
        await c.error({"type": "join", "room": room()}, "unavailable")
        await c.error({"type": "direct", "to": s.user, "body": "hi"}, "unavailable")
        await c.ping()
    await lb.expect_nothing(0.5, type="message", body="during the outage")
    note("on b and c: send, presence, history, join, direct -> unavailable; ping -> pong")
    await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - stopped_at)))

    await loop.run_in_executor(None, main.redis.start)
    restarted_at = time.monotonic()
    note("redis-server restarted on port %d" % main.redis.port)
    took = await wait_health(nodes(main), 200, RECOVER_TIMEOUT, "Redis restarted")
    note("/readyz 200 on every node (%s)" % ", ".join(
        "%s after %.2fs" % (k, v) for k, v in sorted(took.items())))
    acked_after = len(sender.acks)
    await sender.wait_for(lambda: len(sender.acks) >= acked_after + 5,
                          "5 more acks after Redis came back", RECOVER_TIMEOUT)
    await sender.stop()
    note("sends are acked again: %d acked, %d unavailable in all, %.1fs after the restart"
         % (len(sender.acks), sender.unavailable, time.monotonic() - restarted_at))
    after = LinkMetrics(main.nodes["a"])
    check(after.up == {"command": 1, "subscribe": 1} and after.subscriptions >= 2,
          "/metrics after Redis came back: %s" % after)
    check(all(after.reconnects[k] >= before.reconnects[k] + 1 for k in after.reconnects),
          "/metrics: reconnects %s before the outage, %s after" % (before.reconnects,
                                                               after.reconnects))
    check(after.script_calls >= before.script_calls + 5, "/metrics: script calls %g before, "
          "%g after 5 more acks" % (before.script_calls, after.script_calls))
    note("/metrics of a after the restart: %s" % after)

    for c in (s, lb, mc):
        await c.ping()
    want = sorted([s.user, lb.user, mc.user])
    for c in (s, lb, mc):
        users = await c.presence(r)
        check(users == want, "%s: presence after the outage is %r, want %r (every node's "
              "members registered again)" % (c.name, users, want))
    note("every connection stayed open; presence lists the three members again")

    for c in (lb, mc):
        await drain(c)
        live = [m.get("seq") for m in c.backlog if m.get("type") == "message" and m.get("room") == r]
        check(live == sorted(set(live)), "%s: live messages arrived out of seq order or twice: %r"
              % (c.name, live))
    await delivery_works([s, lb, mc], r, "after Redis restarted")

    msgs, _ = await history_all(mc, r, HISTORY_SIZE)
    in_history = {m.get("id"): m.get("seq") for m in msgs}
    lost = [a for a in sender.acks if in_history.get(a["id"]) != a["seq"]]
    check(not lost, "%d acked messages are not in history with their acked seq, e.g. %s"
          % (len(lost), json.dumps(lost[:3])))
    seqs = [m.get("seq") for m in msgs]
    problem = seq_problems(seqs, list(range(1, len(seqs) + 1)))
    check(problem is None, "history after the outage is not seq 1..%d: %s" % (len(seqs), problem))
    note("history holds all %d acked messages, seq 1..%d without gaps" % (len(sender.acks), len(seqs)))


# ---- (c) Redis down when confabd starts ----------------------------------

@suite.test
async def confabd_starts_with_redis_down_answers_unavailable_and_turns_200_when_redis_starts():
    """Nodes x and y start while their Redis is down: they serve (/readyz
    503, /healthz 200, WebSocket clients admitted), join and direct get unavailable, ping
    works; once redis-server starts, both answer 200 within 15 s and the
    same connections can join and chat across the two nodes."""
    late.start_nodes(want_status=None)
    for n in nodes(late):
        status = await readyz(n)
        check(status == 503, "node %s with Redis down: /readyz %s, want 503" % (n.name, status))
    await asyncio.sleep(1.0)
    for n in nodes(late):
        status = await readyz(n)
        check(status == 503, "node %s, 1 s later, Redis still down: /readyz %s, want 503"
              % (n.name, status))
    for n in nodes(late):
        status = await asyncio.get_running_loop().run_in_executor(
            None, lambda: http_get(n.port, "/healthz", timeout=1.0)[0])
        check(status == 200, "node %s with Redis down: /healthz %s, want 200 (the process "
              "serves; /readyz says it should get no new clients)" % (n.name, status))
    note("x and y serve with /readyz 503 and /healthz 200")
    cx = await Client.connect(late["x"].port, name="cx@x")
    cy = await Client.connect(late["y"].port, name="cy@y")
    r = room("late")
    for c in (cx, cy):
        await c.error({"type": "join", "room": r}, "unavailable")
        await c.error({"type": "direct", "to": "someone", "body": 1}, "unavailable")
        await c.ping()
    note("join and direct -> unavailable, ping -> pong")

    await asyncio.get_running_loop().run_in_executor(None, late.redis.start)
    took = await wait_health(nodes(late), 200, RECOVER_TIMEOUT, "Redis started after the nodes")
    note("/readyz 200 on x and y (%s) after redis-server started" % ", ".join(
        "%s after %.2fs" % (k, v) for k, v in sorted(took.items())))
    for c in (cx, cy):
        await c.join(r)
    await cx.expect("member", room=r, user=cy.user, event="join")
    await delivery_works([cx, cy], r, "once Redis is up")


if __name__ == "__main__":
    suite.main()
