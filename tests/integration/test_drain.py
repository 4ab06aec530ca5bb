#!/usr/bin/python3
"""Draining a node through a real HAProxy (issue 12): two confabd nodes
sharing a redis-server backplane behind Debian's haproxy, run with the
shipped etc/haproxy.cfg changed only in its addresses (haproxytest.py; the
nodes take its PROXY headers). 300 clients connect
through haproxy, a fifth of them keep sending; node a gets SIGTERM:
  - its /readyz answers 503 within 1 s, and haproxy sends every new client
    to node b well before drain_grace is over;
  - a's clients are closed with 1001 from drain_grace on, spread over
    drain_window (about a third of them in each third), and every one
    reconnects through haproxy to node b;
  - nothing acked is lost: every client has every acked message of its
    room, live or through `history since` after its reconnect;
  - a exits 0.
Skipped (exit 77) without haproxy or redis-server.

SPDX-License-Identifier: MIT
"""
import asyncio
import itertools
import json
import signal
import time

import websockets
import websockets.exceptions

from confabtest import SCALE, TestFailure, check, note
import haproxytest
from haproxytest import BALANCER, Haproxy
from redistest import Cluster, RedisSuite, readyz

CLIENTS = 300
ROOMS = 10
SENDER_EVERY = 5          # every fifth client sends
SEND_PERIOD = 0.5         # seconds between one sender's messages
GRACE = 3                 # drain_grace: > haproxy's detection (inter 1s + fastinter 250ms)
WINDOW = 3                # drain_window
DETECT = 1.6              # haproxy.cfg's worst case to mark a node down, with margin
HISTORY = 10000           # history_size: everything sent here stays recoverable

suite = RedisSuite("test_drain", watchdog=240)
_refs = itertools.count(1)
ACK_INFO = {}   # (room, seq) -> (sender, monotonic time of the ack): for failure reports


# ---- a client that reconnects ---------------------------------------------

class Member:
    """One chat client of a room, connected through haproxy. It keeps every
    message it sees; when the server closes it, it reconnects, joins again
    and asks `history since` the last seq it saw."""

    def __init__(self, port, i):
        self.port = port
        self.name = "m%d" % i
        self.room = "room%d" % (i % ROOMS)
        self.sender = i % SENDER_EVERY == 0
        self.seen = set()           # seqs of self.room, live or from history
        self.recovered_since = None  # (since, time) of the history after a reconnect
        self.joined_at = []         # monotonic time of each join
        self.own = set()            # seqs of its own messages (acked, never delivered to it)
        self.nodes = []             # the node of each connection, in order
        self.closes = []            # (code, monotonic time) of each close by the server
        self.refused = []           # HTTP statuses of refused reconnects
        self.ws = None
        self.waiting = {}
        self.reader = None
        self.stopping = False

    async def _connect(self):
        uri = "ws://127.0.0.1:%d/ws" % self.port
        deadline = time.monotonic() + 10 * SCALE
        while True:
            try:
                ws = await websockets.connect(uri, subprotocols=["confab.v1"], max_queue=None,
                                              ping_interval=None, compression=None,
                                              open_timeout=10 * SCALE)
                break
            except websockets.exceptions.InvalidStatusCode as e:
                self.refused.append(e.status_code)
            except OSError as e:
                self.refused.append(str(e))
            if time.monotonic() > deadline:
                raise TestFailure("%s: no connection through haproxy within 10 s (refusals %r)"
                                  % (self.name, self.refused[-5:]))
            await asyncio.sleep(0.05)
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10 * SCALE))
        check(welcome.get("type") == "welcome", "%s: first frame %r" % (self.name, welcome))
        self.ws = ws
        self.nodes.append(welcome["node"])
        self.reader = asyncio.ensure_future(self._read(ws))
        r = await self.request({"type": "join", "room": self.room})
        check(r.get("type") == "joined", "%s: join -> %s" % (self.name, json.dumps(r)))
        self.joined_at.append(time.monotonic())

    async def start(self):
        await self._connect()
        return self

    async def _read(self, ws):
        try:
            async for raw in ws:
                f = json.loads(raw)
                fut = self.waiting.pop(f.get("ref"), None)
                if fut is not None and not fut.done():
                    fut.set_result(f)
                elif f.get("type") == "message" and f.get("room") == self.room:
                    self.seen.add(f["seq"])
        except websockets.exceptions.ConnectionClosed:
            pass
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_result({"type": "closed"})
        self.waiting.clear()
        if not self.stopping:
            self.closes.append((ws.close_code, time.monotonic()))
            asyncio.ensure_future(self._reconnect())

    async def _reconnect(self):
        # What it had when closed: messages that arrive live once it has
        # joined again may be later than those it missed meanwhile.
        since = max(self.seen) if self.seen else 0
        try:
            await self._connect()
            await self._recover(since)
        except (TestFailure, websockets.exceptions.ConnectionClosed, asyncio.TimeoutError) as e:
            self.nodes.append("reconnect failed: %s" % e)

    async def _recover(self, since):
        # `since` is not from its own acks: an ack can overtake the
        # delivery of an earlier message of the room (they come by
        # different ways).
        self.recovered_since = (since, time.monotonic())
        while True:
            h = await self.request({"type": "history", "room": self.room, "since": since,
                                    "limit": 100})
            check(h.get("type") == "history", "%s: history -> %s" % (self.name, json.dumps(h)[:300]))
            check(not h.get("truncated"), "%s: history since %d truncated" % (self.name, since))
            for m in h["messages"]:
                self.seen.add(m["seq"])
            if len(h["messages"]) < 100 and not h.get("more"):
                return
            since = h["messages"][-1]["seq"]

    async def request(self, obj):
        ref = next(_refs)
        obj = dict(obj, ref=ref)
        fut = asyncio.get_running_loop().create_future()
        self.waiting[ref] = fut
        await self.ws.send(json.dumps(obj))
        return await asyncio.wait_for(fut, 10 * SCALE)

    async def close(self):
        self.stopping = True
        if self.ws:
            try:
                await asyncio.wait_for(self.ws.close(), 2)
            except Exception:
                self.ws.transport.abort()


async def send_loop(m, acked, stop):
    """Send to m's room every SEND_PERIOD until `stop`; record what is acked."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            r = await m.request({"type": "send", "room": m.room, "body": "%s-%d" % (m.name, n)})
            if r.get("type") == "ack":
                acked[m.room].add(r["seq"])
                ACK_INFO[(m.room, r["seq"])] = (m.name, time.monotonic())
                m.own.add(r["seq"])   # a sender gets the ack, never a copy
        except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError, AttributeError):
            pass   # closed by the drain: not acked, not owed
        try:
            await asyncio.wait_for(stop.wait(), SEND_PERIOD)
        except asyncio.TimeoutError:
            pass


async def probe(port):
    """A new client through haproxy: the node that welcomed it, or the
    HTTP status it was refused with."""
    try:
        ws = await websockets.connect("ws://127.0.0.1:%d/ws" % port, subprotocols=["confab.v1"],
                                      open_timeout=5 * SCALE)
    except websockets.exceptions.InvalidStatusCode as e:
        return "refused %d" % e.status_code
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), 5 * SCALE)).get("node")
    finally:
        await ws.close()


@suite.test
async def sigterm_drains_a_node_through_haproxy_without_losing_an_acked_message():
    """300 clients through haproxy on nodes a and b (redis backplane);
    SIGTERM a: /readyz 503 within 1 s, new clients go to b, a's clients are
    closed with 1001 spread over drain_window and all reconnect to b,
    every acked message reaches every member, a exits 0."""
    cluster = Cluster(suite, guests=["a", "b"], history_size=HISTORY,
                      broker_keys={"drain_grace": GRACE, "drain_window": WINDOW,
                                   # every test client comes from 127.0.0.1
                                   "max_connections_per_address": 0},
                      # the shipped haproxy.cfg sends PROXY v2 headers
                      ws_keys={"proxy_protocol": BALANCER}).start()
    a, b = cluster["a"], cluster["b"]
    lb = Haproxy(suite.tmp)
    members = []
    try:
        lb.start(a.port, b.port)
        for i in range(0, CLIENTS, 50):
            members += await asyncio.gather(*(Member(lb.front, j).start()
                                              for j in range(i, min(i + 50, CLIENTS))))
        on_a = [m for m in members if m.nodes[0] == "a"]
        on_b = [m for m in members if m.nodes[0] == "b"]
        note("%d clients through haproxy: %d on a, %d on b" % (len(members), len(on_a), len(on_b)))
        check(len(on_a) >= CLIENTS // 4 and len(on_b) >= CLIENTS // 4,
              "haproxy (leastconn) put %d clients on a and %d on b" % (len(on_a), len(on_b)))

        acked = {"room%d" % r: set() for r in range(ROOMS)}
        stop = asyncio.Event()
        senders = [asyncio.ensure_future(send_loop(m, acked, stop)) for m in members if m.sender]
        await asyncio.sleep(1.0)

        t0 = time.monotonic()
        a.send_signal(signal.SIGTERM)
        status = None
        while time.monotonic() < t0 + 1.0:
            status = await readyz(a)
            if status == 503:
                break
            await asyncio.sleep(0.02)
        check(status == 503, "/readyz of a answered %s 1 s after SIGTERM (want 503)" % status)
        note("/readyz of a: 503 %.2fs after SIGTERM" % (time.monotonic() - t0))

        # New clients from haproxy's detection bound to the end of the grace.
        await asyncio.sleep(max(0, t0 + DETECT - time.monotonic()))
        probes = []
        while time.monotonic() < t0 + GRACE - 0.3:
            probes.append(await probe(lb.front))
            await asyncio.sleep(0.1)
        check(probes and all(p == "b" for p in probes),
              "new clients through haproxy %.1fs-%.1fs after SIGTERM landed on %r (want b "
              "only)" % (DETECT, GRACE - 0.3, sorted(set(probes))))
        check(all(not m.closes for m in on_a), "a client of a was closed during the grace")
        note("%d new clients during the grace, from %.1fs on: all on b" % (len(probes), DETECT))

        deadline = t0 + GRACE + WINDOW + 10 * SCALE
        while time.monotonic() < deadline and not all(len(m.nodes) >= 2 for m in on_a):
            await asyncio.sleep(0.1)
        code = await a.wait_async(timeout=max(1, deadline - time.monotonic()))
        a.check_clean_exit("SIGTERM")
        note("a exited %s %.2fs after SIGTERM" % (code, time.monotonic() - t0))

        closes = [m.closes[0] for m in on_a if m.closes]
        check(len(closes) == len(on_a), "%d of a's %d clients were closed"
              % (len(closes), len(on_a)))
        codes = sorted({c for c, _ in closes})
        check(codes == [1001], "a closed its clients with %r (want 1001)" % codes)
        times = sorted(t - t0 for _, t in closes)
        check(times[0] >= GRACE - 0.05, "first close %.2fs after SIGTERM, before the grace "
              "(%d s)" % (times[0], GRACE))
        thirds = [0, 0, 0]
        for t in times:
            thirds[min(2, max(0, int((t - GRACE) * 3 / WINDOW)))] += 1
        limit = len(times) // 3 + len(times) // 10
        check(max(thirds) <= limit and min(thirds) > 0,
              "closes per third of drain_window %r (want at most %d in each, none empty)"
              % (thirds, limit))
        note("a's %d clients closed with 1001 %.2fs-%.2fs after SIGTERM; per third of the "
             "window %r" % (len(times), times[0], times[-1], thirds))

        moved = [m.nodes[1] if len(m.nodes) > 1 else None for m in on_a]
        check(all(n == "b" for n in moved), "a's clients reconnected to %r (want b each)"
              % sorted({str(n) for n in moved}))
        refused = [r for m in on_a for r in m.refused]
        check(not refused, "reconnects refused %d times (%r): haproxy still sent them to a"
              % (len(refused), sorted({str(r) for r in refused})))
        note("all %d reconnected through haproxy to b at the first try" % len(on_a))

        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*senders)
        await asyncio.sleep(1.0 * SCALE)   # the last messages arrive
        total = sum(len(s) for s in acked.values())
        check(total >= 100, "only %d messages acked during the test" % total)
        lost = []
        for m in members:
            missing = acked[m.room] - m.seen - m.own
            if missing:
                first = min(missing)
                sender, at = ACK_INFO.get((m.room, first), ("?", t0))
                lost.append("%s (%s, %s): %d missing, e.g. %s; %d acked to %s at %.3fs; closed "
                            "at %s, joined at %s, history since %s; seen near it %s" % (
                    m.name, m.room, "->".join(m.nodes), len(missing), sorted(missing)[:5],
                    first, sender, at - t0, ["%.3f" % (t - t0) for _, t in m.closes],
                    ["%.3f" % (t - t0) for t in m.joined_at],
                    m.recovered_since and (m.recovered_since[0], "%.3f" % (m.recovered_since[1] - t0)),
                    sorted(x for x in m.seen | m.own if abs(x - first) < 6)))
        check(not lost, "acked messages a member never got (%d members): %s"
              % (len(lost), "; ".join(lost[:5])))
        note("%d messages acked across %d rooms; every member of each room has every one"
             % (total, ROOMS))
    finally:
        await asyncio.gather(*(m.close() for m in members))
        lb.stop()
        b.stop(signal.SIGINT)     # at once: nobody to drain for
        b.check_clean_exit("SIGINT")


if __name__ == "__main__":
    haproxytest.main(suite, "the drain through a load balancer needs it")
