#!/usr/bin/python3
"""What one connection holds is bounded, replies included (issue 14,
item 5): [ws] send_queue_max bounds everything the node holds for a
client, and history and presence replies larger than what a connection
can take come in pages ("more": true, docs/protocol.md).

  pages    a history larger than the budget comes in pages, every message
           retrievable in order, embedded and through Redis; the
           presence of a huge room too (its users put in Redis as other
           nodes would)
  memory   N clients that stop reading right after the handshake (raw
           sockets with a 4 KB receive buffer) are fed room traffic, a
           long history and the presence of a huge room; the node's peak
           RSS (VmHWM, reset before each feed) grows by at most
           N x send_queue_max plus a small overhead

Nodes (send_queue_max = 256 KiB, so pages are at most 128 KiB):
  single   embedded backplane, history_size = 200
  a, b     two nodes sharing Redis, history_size = 200

Before each memory check a client that reads makes the same request
once, and the peak RSS that takes (what serving one request needs: the
backplane's answer, freed right after) is allowed on top: what is
bounded is what the node holds for clients that do not read.

SPDX-License-Identifier: MIT
"""
import asyncio
import base64
import itertools
import json
import os
import socket
import struct
import time

from confabtest import Client, RECV_TIMEOUT, SCALE, SANITIZERS, TestFailure, check, note
from redistest import Cluster, RedisSuite

QUEUE_MAX = 256 * 1024
HISTORY = 200
N_MUTE = 24
if SANITIZERS:
    # ASan keeps freed memory in quarantine (256 MB by default), which
    # would be counted as growth.
    os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                  ":quarantine_size_mb=8").lstrip(":")

suite = RedisSuite("test_bounded_replies", watchdog=180)
keys = {"rate_limit": 0, "history_size": HISTORY}
single = suite.broker("single", broker=keys, sections={"ws": {"send_queue_max": QUEUE_MAX}})
cluster = Cluster(suite, guests=("a", "b"), history_size=HISTORY,
                  broker_keys={"rate_limit": 0})
# the cluster's nodes get the same cap
for _, _, secs in cluster.specs:
    secs["ws"] = {"send_queue_max": QUEUE_MAX}

_rooms = itertools.count(1)


def room(prefix="r"):
    return "%s-%d" % (prefix, next(_rooms))


# ---- helpers -------------------------------------------------------------

async def raw_reply(c, obj, timeout=RECV_TIMEOUT):
    """Send obj with a fresh ref; (raw text, parsed) of the reply."""
    ref = "q%d" % next(_rooms)
    obj = dict(obj, ref=ref)
    await c.send(obj)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        check(left > 0, "%s: no reply to %s" % (c.name, json.dumps(obj)[:200]))
        try:
            text = await asyncio.wait_for(c.ws.recv(), left)
        except asyncio.TimeoutError:
            continue
        f = json.loads(text)
        if f.get("ref") == ref:
            return text, f


async def fill_history(c, r, n, size):
    """n messages of about `size` bytes into r; their bodies, by seq."""
    bodies = {}
    for i in range(n):
        body = "%05d:" % i + "x" * (size - 6)
        await c.send({"type": "send", "room": r, "body": body, "ref": "h%d" % i})
        bodies[i] = body
    seqs = {}
    for _ in range(n):
        f = await c.expect("ack")
        seqs[int(f["ref"][1:])] = f["seq"]
    return {seqs[i]: b for i, b in bodies.items()}


async def read_history_pages(c, r, want):
    """Read r's whole history page by page; check it is `want` ({seq:
    body}) in order. Returns (pages, largest page in bytes)."""
    since, got, pages, largest = 0, [], 0, 0
    while True:
        text, h = await raw_reply(c, {"type": "history", "room": r, "since": since,
                                      "limit": HISTORY})
        check(h.get("type") == "history" and isinstance(h.get("more"), bool),
              "history -> %s" % text[:300])
        pages += 1
        largest = max(largest, len(text))
        got += h["messages"]
        if not h["more"]:
            break
        check(h["messages"], "a page with more:true and no message")
        since = h["messages"][-1]["seq"]
    seqs = [m["seq"] for m in got]
    check(seqs == sorted(want), "history seqs %s... want %s..." % (seqs[:10], sorted(want)[:10]))
    for m in got:
        check(m["body"] == want[m["seq"]], "message %d has another body" % m["seq"])
    return pages, largest


# ---- paging --------------------------------------------------------------

async def check_history_pages(c, writer, what):
    r = room("hist")
    await writer.join(r)
    want = await fill_history(writer, r, 150, 4000)          # 600 KB
    await c.join(r)   # after: 600 KB of live messages would overflow its queue
    pages, largest = await read_history_pages(c, r, want)
    note("%s: 150 messages (600 KB) in %d pages, the largest %d bytes" % (what, pages, largest))
    check(pages >= 5, "%s: only %d pages for 600 KB with a 256 KiB queue" % (what, pages))
    check(largest <= QUEUE_MAX // 2, "%s: a page of %d bytes (half the queue is %d)"
          % (what, largest, QUEUE_MAX // 2))
    # without since: the oldest of the last `limit` first, then since
    text, h = await raw_reply(c, {"type": "history", "room": r, "limit": HISTORY})
    check(h["more"] and h["messages"][0]["seq"] == 1,
          "%s: history without since -> %s" % (what, text[:200]))


@suite.test
async def a_history_larger_than_the_budget_comes_in_pages_embedded():
    """150 messages of 4 KB: pages of at most 128 KiB, every message once, in order."""
    port = single.start().port
    writer = await Client.connect(port, name="writer")
    reader = await Client.connect(port, name="reader")
    await check_history_pages(reader, writer, "embedded")


@suite.test
async def a_history_larger_than_the_budget_comes_in_pages_through_redis():
    """The same with Redis history, writer and reader on two nodes."""
    cluster.start()
    writer = await Client.connect(cluster["a"].port, name="writer@a")
    reader = await Client.connect(cluster["b"].port, name="reader@b")
    await check_history_pages(reader, writer, "redis")


def redis_command(port, *args):
    """One command to Redis; its first reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        s.sendall(b"".join(out))
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            check(chunk, "Redis closed the connection")
            data += chunk
        return data.split(b"\r\n", 1)[0].decode()


def huge_room(r, n):
    """n users present in r on other nodes: what their nodes' join
    scripts would have put in Redis (docs/backplane-redis.md)."""
    key = cluster.prefix + "pres:" + r
    for start in range(0, n, 5000):
        users = ["u%06d-elsewhere" % i for i in range(start, min(n, start + 5000))]
        reply = redis_command(cluster.redis.port, "SADD", key, *users)
        check(reply.startswith(":"), "SADD -> %s" % reply)


@suite.test
async def the_presence_of_a_huge_room_comes_in_pages():
    """30 000 users (540 KB of names): pages of at most 128 KiB, each user once, in order."""
    cluster.start()
    r = room("stadium")
    huge_room(r, 30000)
    c = await Client.connect(cluster["a"].port, name="c@a")
    await c.join(r)
    users, after, pages, largest = [], None, 0, 0
    while True:
        q = {"type": "presence", "room": r}
        if after:
            q["after"] = after
        text, p = await raw_reply(c, q)
        check(p.get("type") == "presence" and isinstance(p.get("more"), bool),
              "presence -> %s" % text[:300])
        pages += 1
        largest = max(largest, len(text))
        users += p["users"]
        if not p["more"]:
            break
        after = p["users"][-1]
    note("30 001 users in %d pages, the largest %d bytes" % (pages, largest))
    check(users == sorted(set(users)), "the pages are not one sorted list without repeats")
    check(len(users) == 30001 and c.user in users, "%d users, want 30001" % len(users))
    check(largest <= QUEUE_MAX // 2, "a page of %d bytes" % largest)


# ---- memory --------------------------------------------------------------

class Mute:
    """A WebSocket client that completes its handshake, then only sends:
    it never reads a byte more, and its receive buffer is 4 KB."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(RECV_TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           % (port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)   # the handshake only, not a byte of the frames
            if not chunk:
                raise TestFailure("mute client: the handshake was refused")
            head += chunk
        check(b" 101 " in head.split(b"\r\n", 1)[0] + b" ", "mute client: %r" % head[:100])

    def send(self, obj):
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack("!H", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def close(self):
        self.sock.close()


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise TestFailure("no %s in /proc/%d/status" % (field, pid))


def reset_peak(pid):
    """Make VmHWM start again from the current RSS."""
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")
    return status_kb(pid, "VmRSS")


async def fed(node, r, what, feed, served=None, one=None):
    """N_MUTE mute clients in r; `feed(mutes)` feeds them, `served(watcher)`
    returns once the node has answered all of it (a request of its own
    that queues behind theirs). `one(watcher)` makes one such request as
    a client that reads: the node's peak RSS while it is served is what
    serving a request takes (the backplane's answer, freed right after:
    for the presence of 100 000 users, hiredis's reply objects are about
    10 MB), and it is measured first. The peak RSS growth while the
    mutes are fed must stay under N x send_queue_max plus that, plus a
    small overhead."""
    mutes = [Mute(node.port) for _ in range(N_MUTE)]
    try:
        for m in mutes:
            m.send({"type": "join", "room": r})
        watcher = await Client.connect(node.port, name="watcher")
        await watcher.join(r)
        serving = 0
        if one:
            base = reset_peak(node.pid)
            await one(watcher)
            serving = max(0, status_kb(node.pid, "VmHWM") - base)
        base = reset_peak(node.pid)
        start = time.monotonic()
        await feed(mutes)
        await asyncio.sleep(1.0)      # let the node read what the mutes sent
        if served:
            await served(watcher)
        await watcher.ping()
        peak = status_kb(node.pid, "VmHWM")
        # under ASan, its 8 MB quarantine of freed memory and the red
        # zones around every allocation come on top
        extra = 12288 if SANITIZERS else 0
        bound = N_MUTE * QUEUE_MAX // 1024 + serving + 4096 + extra
        note("%s: %d clients that do not read; RSS %d kB before, peak +%d kB "
             "(bound %d x %d kB + %d kB to serve one request + 4 MB%s = %d kB), %.1fs"
             % (what, N_MUTE, base, peak - base, N_MUTE, QUEUE_MAX // 1024, serving,
                " + 12 MB for ASan" if SANITIZERS else "", bound, time.monotonic() - start))
        check(peak - base <= bound, "%s: the node's RSS grew by %d kB, bound %d kB"
              % (what, peak - base, bound))
        await watcher.close()
    finally:
        for m in mutes:
            m.close()


@suite.test
async def clients_that_do_not_read_hold_at_most_their_cap_fed_room_traffic():
    """A reading member sends 40 messages of 60 KB into the mutes' room."""
    port = single.start().port
    r = room("traffic")
    sender = await Client.connect(port, name="sender")
    await sender.join(r)

    async def feed(mutes):
        for i in range(40):
            await sender.say(r, "%03d" % i + "y" * 60000)
    await fed(single, r, "room traffic", feed)


@suite.test
async def clients_that_do_not_read_hold_at_most_their_cap_fed_history():
    """The room holds 200 messages of 60 KB (12 MB); each mute asks for all
    of it 4 times (before paging, one reply each was queued whole)."""
    port = single.start().port
    r = room("bighist")
    writer = await Client.connect(port, name="writer")
    await writer.join(r)
    await fill_history(writer, r, HISTORY, 60000)

    async def one(watcher):
        await raw_reply(watcher, {"type": "history", "room": r, "since": 0, "limit": HISTORY})

    async def feed(mutes):
        for _ in range(4):
            for m in mutes:
                m.send({"type": "history", "room": r, "since": 0, "limit": HISTORY})
    await fed(single, r, "history", feed, one=one)


@suite.test
async def clients_that_do_not_read_hold_at_most_their_cap_fed_presence_of_a_huge_room():
    """The room has 100 000 users (1.8 MB of names, in Redis); each mute
    asks for its presence twice (before paging, the first reply was
    queued whole)."""
    cluster.start()
    node = cluster["a"]
    r = room("arena")
    huge_room(r, 100000)

    async def one(watcher):
        text, p = await raw_reply(watcher, {"type": "presence", "room": r})
        check(p.get("more") is True, "presence of 100 000 users was not paged: %s" % text[:200])

    async def feed(mutes):
        for _ in range(2):
            for m in mutes:
                m.send({"type": "presence", "room": r})

    async def served(watcher):
        # presence goes to Redis on one connection, in order: the
        # watcher's answer comes after every answer to the mutes (48
        # lists of 100 000 users: seconds on a busy machine)
        await raw_reply(watcher, {"type": "presence", "room": r}, timeout=30 * SCALE)
    await fed(node, r, "presence", feed, served, one)


if __name__ == "__main__":
    suite.main()
