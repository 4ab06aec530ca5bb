#!/usr/bin/python3
"""The redis backplane (issue 15, item 1) notices a command connection that
stalls, whatever its subscription does:

  - node s reaches Redis through a proxy; node a directly. Clients on s are
    members of a room into which a client on a publishes all the time, so
    s's subscription stays busy;
  - the proxy stalls s's command connection: it reads and forwards nothing,
    either way, and closes nothing (and stalls s's new connections until
    the stall ends);
  - within the documented bound (probe_timeout_ms + a 250 ms tick after a
    request) s answers `unavailable` to a `send` and a `history` sent at the
    stall, and /readyz of s answers 503 (within probe_interval_ms +
    probe_timeout_ms + 250 ms of the stall); its log names the command
    connection;
  - the stall lasts past presence_ttl, so a forgets s's users (a's client
    sees them leave); after it ends, s reconnects and reconciles (they
    join again), answers 200, serves `send` and `history` again, receives
    a's messages again, and presence, asked on either node, lists exactly
    the room's members.

Node s: probes every 500 ms, 1500 ms to come back, reconnect backoff up to
1000 ms. presence_ttl = 3 on both.

SPDX-License-Identifier: MIT
"""
import asyncio
import json
import time

from confabtest import SANITIZERS, Client, TestFailure, check, note
from redistest import (POLL, PRESENCE_TTL, RECOVER_TIMEOUT, Cluster, RedisSuite, StallProxy,
                       readyz, log_count, wait_health)

PROBE_INTERVAL_MS = 500
PROBE_TIMEOUT_MS = 1500
TICK_MS = 250
# The documented bounds (docs/backplane-redis.md), plus what a loaded
# machine adds to answering and polling: 0.75 s, 2 s more under the
# sanitizers.
SLACK = 0.75 + (2.0 if SANITIZERS else 0.0)
REQUEST_BOUND = (PROBE_TIMEOUT_MS + TICK_MS) / 1000.0
DETECT_BOUND = (PROBE_INTERVAL_MS + PROBE_TIMEOUT_MS + TICK_MS) / 1000.0

suite = RedisSuite("test_redis_stall", watchdog=120)
direct = Cluster(suite, guests=("a",))
proxy = StallProxy(direct.redis)
stalled = Cluster(suite, guests=("s",), redis=direct.redis, prefix=direct.prefix,
                  redis_keys={"port": proxy.port, "probe_interval_ms": PROBE_INTERVAL_MS,
                              "probe_timeout_ms": PROBE_TIMEOUT_MS, "reconnect_max_ms": 1000})


class Publisher:
    """Sends to a room every 20 ms and checks every reply is an ack."""

    def __init__(self, client, room):
        self.c = client
        self.room = room
        self.acks = 0
        self.failure = None
        self.stopping = False
        self.task = asyncio.ensure_future(self.run())

    async def run(self):
        n = 0
        try:
            while not self.stopping:
                n += 1
                rep = await self.c.request({"type": "send", "room": self.room, "body": n})
                if rep.get("type") != "ack":
                    raise TestFailure("%s: send %d answered %s" % (self.c.name, n, json.dumps(rep)))
                self.acks += 1
                await asyncio.sleep(0.02)
        except TestFailure as e:
            self.failure = str(e)

    async def stop(self):
        self.stopping = True
        await self.task
        check(self.failure is None, self.failure or "")


async def answered_unavailable(c, ref, since, what):
    """The reply to `ref` is error unavailable within REQUEST_BOUND + SLACK
    of `since`; returns how long it took."""
    rep = await c.expect("error", timeout=REQUEST_BOUND + SLACK + 1.0, ref=ref)
    took = time.monotonic() - since
    check(rep.get("code") == "unavailable", "%s: %s answered %s, want unavailable"
          % (c.name, what, json.dumps(rep)))
    check(took <= REQUEST_BOUND + SLACK,
          "%s: %s answered unavailable after %.2fs, over the bound %.2fs (+%.2fs)"
          % (c.name, what, took, REQUEST_BOUND, SLACK))
    return took


async def exact_presence(clients, room, want):
    """Every client's `presence` of `room` is exactly `want`."""
    for c in clients:
        got = await c.presence(room)
        check(sorted(got) == sorted(want), "%s: presence of %s is %s, want exactly %s"
              % (c.name, room, got, sorted(want)))


@suite.test
async def a_stalled_command_connection_is_noticed_while_the_subscription_is_busy():
    """A command connection that stops forwarding without closing, while
    the subscription keeps receiving another node's messages: `send` and
    `history` answered `unavailable` within probe_timeout_ms + 250 ms,
    /readyz 503 within probe_interval_ms + probe_timeout_ms + 250 ms;
    after the stall, the node serves again and presence is exact."""
    await proxy.start()
    try:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, direct.start)
        await loop.run_in_executor(None, stalled.start)
        a, s = direct["a"], stalled["s"]
        room = "busy"
        pub = await Client.connect(a.port, name="pub@a")
        await pub.join(room)
        m1 = await Client.connect(s.port, name="m1@s")
        m2 = await Client.connect(s.port, name="m2@s")
        await m1.join(room)
        await m2.join(room)
        members = [pub.user, m1.user, m2.user]
        await exact_presence([pub, m1], room, members)

        publisher = Publisher(pub, room)
        await m1.expect("message", room=room, timeout=5.0)
        downs = log_count(s, "did not answer a request on the command connection")

        n = proxy.stall_commands()
        t0 = time.monotonic()
        check(n >= 1, "the proxy saw no command connection of node s to stall")
        note("stalled %d command connection(s) of node s; a keeps publishing every 20 ms" % n)
        await m1.send({"type": "send", "room": room, "body": "during the stall", "ref": "st-send"})
        await m1.send({"type": "history", "room": room, "ref": "st-hist"})

        # The subscription is busy all along: messages of a keep arriving.
        heard = 0
        while time.monotonic() - t0 < 0.5 * PROBE_TIMEOUT_MS / 1000.0:
            await m2.expect("message", room=room, timeout=2.0)
            heard += 1
        note("node s's subscription delivered %d messages of a after the stall began" % heard)

        took_send = await answered_unavailable(m1, "st-send", t0, "send")
        took_hist = await answered_unavailable(m1, "st-hist", t0, "history")
        note("send answered unavailable after %.2fs, history after %.2fs (bound %.2fs)"
             % (took_send, took_hist, REQUEST_BOUND))

        while await readyz(s) != 503:
            check(time.monotonic() - t0 <= DETECT_BOUND + SLACK,
                  "/readyz of s still not 503 %.2fs after the stall (bound %.2fs +%.2fs)"
                  % (time.monotonic() - t0, DETECT_BOUND, SLACK))
            await asyncio.sleep(POLL)
        note("/readyz of s answered 503 %.2fs after the stall (bound %.2fs)"
             % (time.monotonic() - t0, DETECT_BOUND))
        check(log_count(s, "did not answer a request on the command connection") > downs,
              "node s's log does not say its command connection went unanswered")
        await m2.error({"type": "send", "room": room, "body": "down"}, "unavailable")

        # Past presence_ttl, so that a forgets s's users meanwhile.
        await asyncio.sleep(max(0.0, PRESENCE_TTL + 2.0 - (time.monotonic() - t0)))
        closed = proxy.end_stall()
        t1 = time.monotonic()
        note("the stall ended after %.1fs (%d stalled connections closed)" % (t1 - t0, closed))
        took = await wait_health([s], 200, RECOVER_TIMEOUT, "after the stall")
        note("/readyz of s 200 again %.2fs after the stall ended" % took["s"])

        await publisher.stop()
        note("a's publisher got %d acks, every send acknowledged" % publisher.acks)
        ack = await m1.say(room, "after the stall")
        h = await m1.request({"type": "history", "room": room, "limit": 5})
        check(h.get("type") == "history" and any(x.get("id") == ack["id"] for x in h["messages"]),
              "m1: history after the stall lacks its own message %s: %s"
              % (ack["id"], json.dumps(h)[:300]))
        marker = await pub.say(room, "from a, after the stall")
        await m1.expect("message", room=room, id=marker["id"])
        await m2.expect("message", room=room, id=marker["id"])
        await exact_presence([pub, m1, m2], room, members)
        note("after the stall: send, history, delivery from a, and presence %s on both nodes"
             % sorted(members))
        # The stall outlasted presence_ttl + a heartbeat: a forgot s's users
        # (leave events); s's reconcile brought them back (join events).
        events = [(f["event"], f["user"]) for f in pub.backlog if f.get("type") == "member"]
        for m in (m1, m2):
            mine = [e for e, u in events if u == m.user]
            check("leave" in mine and "join" in mine[mine.index("leave"):],
                  "%s: a's client saw member events %s for it, want a leave (forgotten during "
                  "the stall) and then a join (reconciled after it)" % (m.name, mine))
        note("a's client saw %s leave and join again: forgotten, then reconciled" %
             " and ".join(m.name for m in (m1, m2)))
    finally:
        await proxy.close()


if __name__ == "__main__":
    suite.main()
