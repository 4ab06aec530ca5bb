#!/usr/bin/python3
"""Rooms have a life cycle (issue 14, item 4; docs/security.md, "Rooms"):
a room's seq, history and epoch expire room_ttl seconds after its last
activity, a room used again starts at seq 1 under a new epoch, `history`
with an old epoch says `truncated`, a node holds at most max_rooms rooms,
and a client that joins a fresh room, sends one message and leaves, over
and over, grows neither the node's memory nor Redis's.

Brokers (embedded backplane unless said):
  ttl      room_ttl = 2, rate_limit = 0, [ws] write_delay = 0 (the churn
           is one fast client)
  capped   max_rooms = 3
  redis, redis2  nodes on one real redis-server, as ttl

The memory checks run the churn twice, CHURN rooms each, and wait for the
rooms to expire after each: what the first run left behind is the
baseline, and the second run must not add to it. A node that kept every
room would grow by several KB a room, megabytes over a run.

SPDX-License-Identifier: MIT
"""
import asyncio
import itertools
import os
import re
import time

from confabtest import Client, SANITIZERS, SCALE, check, note
from redistest import Cluster, RedisSuite

ROOM_TTL = 2
# A room is gone ROOM_TTL after its last use, plus the embedded backplane's
# 1 s sweep (Redis expires keys in its 100 ms cycles); the rest is margin
# for a loaded machine.
GONE_AFTER = ROOM_TTL + 1.0 + 1.5 * SCALE
CHURN = int(os.environ.get("CONFAB_CHURN", 2000 if SANITIZERS else 5000))
# What the second churn may add to the node's RSS: far less than the rooms
# would cost if kept (several KB each: CHURN of them is over 5 MB).
RSS_SLACK_KB = 1024
REDIS_MEMORY_SLACK = 256 * 1024

if SANITIZERS:
    # ASan keeps freed memory in quarantine (256 MB by default) instead of
    # reusing it, which would count as growth: the brokers of this file run
    # without it (use-after-free is still caught, only not as long after).
    os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                  ":quarantine_size_mb=0").lstrip(":")

suite = RedisSuite("test_room_lifecycle", watchdog=150)
# write_delay = 0: the churn is one busy connection, whose replies the
# default would hold back 20 ms each.
ttl = suite.broker("ttl", broker={"room_ttl": ROOM_TTL, "rate_limit": 0},
                   sections={"ws": {"write_delay": 0}})
capped = suite.broker("capped", broker={"max_rooms": 3})
cluster = Cluster(suite, guests=("redis", "redis2"),
                  broker_keys={"room_ttl": ROOM_TTL, "rate_limit": 0},
                  ws_keys={"write_delay": 0})

_rooms = itertools.count(1)
EPOCH = re.compile(r"^[0-9a-f]{16}$")


def room(prefix="room"):
    """A room name no other check uses."""
    return "%s-%d-%d" % (prefix, int(time.time()), next(_rooms))


def started(b):
    if b.proc is None:
        b.start()
    return b


def rss_kb(b):
    with open("/proc/%d/status" % b.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % b.pid)


async def churn(c, prefix, n):
    """Join a fresh room, send one message, leave; n times. Returns the
    rooms per second it managed."""
    start = time.monotonic()
    for i in range(n):
        r = "%s-%d" % (prefix, i)
        await c.send({"type": "join", "room": r, "ref": "j%d" % i})
        await c.send({"type": "send", "room": r, "body": {"n": i}, "ref": "s%d" % i})
        await c.send({"type": "leave", "room": r, "ref": "l%d" % i})
        got = {}
        while len(got) < 3:
            f = await c.recv()
            if f.get("ref") in ("j%d" % i, "s%d" % i, "l%d" % i):
                got[f["ref"]] = f
        check(got["j%d" % i].get("type") == "joined" and got["s%d" % i].get("type") == "ack"
              and got["l%d" % i].get("type") == "left",
              "churn room %s: %s" % (r, list(got.values())))
    return n / (time.monotonic() - start)


async def joined(c, r):
    j = await c.join(r)
    check(EPOCH.match(j.get("epoch", "")), "joined has no epoch of 16 hex digits: %s" % j)
    return j["epoch"]


# ---- the embedded backplane ---------------------------------------------

@suite.test
async def joined_message_and_history_carry_the_room_epoch():
    """joined, message, ack'd history all name the same epoch."""
    b = started(ttl)
    a, z = await Client.connect(b.port, "a"), await Client.connect(b.port, "z")
    r = room()
    e = await joined(a, r)
    check(await joined(z, r) == e, "two joins of one room got different epochs")
    await a.say(r, "hi")
    m = await z.expect("message", room=r)
    check(m.get("epoch") == e and m.get("seq") == 1, "message: %s (epoch %s)" % (m, e))
    h = await a.request({"type": "history", "room": r})
    check(h.get("epoch") == e and h.get("truncated") is False
          and [x.get("epoch") for x in h["messages"]] == [e], "history: %s" % h)
    # The epoch it knows: an ordinary answer.
    h = await a.request({"type": "history", "room": r, "since": 0, "epoch": e})
    check(h.get("truncated") is False and len(h["messages"]) == 1, "history with its epoch: %s" % h)
    await a.error({"type": "history", "room": r, "epoch": "NOT-AN-EPOCH"}, "bad_request")


@suite.test
async def a_room_unused_for_room_ttl_starts_again_at_seq_1_with_a_new_epoch():
    """seq 1..3, everyone leaves, room_ttl passes: seq 1 again, new epoch."""
    b = started(ttl)
    a = await Client.connect(b.port, "a")
    r = room()
    e1 = await joined(a, r)
    for i in range(3):
        ack = await a.say(r, i)
    check(ack["seq"] == 3, "third ack: %s" % ack)
    await a.leave(r)
    await asyncio.sleep(GONE_AFTER)
    e2 = await joined(a, r)
    check(e2 != e1, "the epoch did not change after room_ttl: %s" % e2)
    ack = await a.say(r, "again")
    check(ack["seq"] == 1, "first message after expiry: %s" % ack)


@suite.test
async def history_since_with_the_old_epoch_is_truncated_with_the_new_epoch():
    """A member idle past room_ttl asks history since its last seq with the
    epoch it knew: truncated, from the oldest kept, under the new epoch."""
    b = started(ttl)
    a, z = await Client.connect(b.port, "a"), await Client.connect(b.port, "z")
    r = room()
    e1 = await joined(a, r)
    await joined(z, r)
    for i in range(5):
        await a.say(r, i)
    await asyncio.sleep(GONE_AFTER)
    # Both are still members: presence is not part of what expires.
    check(sorted(await a.presence(r)) == sorted([a.user, z.user]), "presence after expiry")
    await a.say(r, "new life")
    m = await z.expect("message", room=r, body="new life")
    check(m.get("epoch") not in (None, e1), "message after expiry: %s" % m)
    e2 = m["epoch"]
    h = await z.request({"type": "history", "room": r, "since": 5, "epoch": e1})
    check(h.get("truncated") is True and h.get("epoch") == e2
          and [x["seq"] for x in h["messages"]] == [1], "history across the expiry: %s" % h)
    # An old client (no epoch) is not told; nothing else changes for it.
    h = await z.request({"type": "history", "room": r, "since": 0})
    check(h.get("truncated") is False and h.get("epoch") == e2, "history since 0: %s" % h)


@suite.test
async def max_rooms_refuses_a_join_of_one_more_room_with_unavailable():
    """max_rooms = 3: a fourth room is refused (unavailable), a room that is
    held already may still be joined, and a freed room makes space."""
    b = started(capped)
    a, z = await Client.connect(b.port, "a"), await Client.connect(b.port, "z")
    rs = [room("cap") for _ in range(4)]
    for r in rs[:3]:
        await a.join(r)
    err = await a.error({"type": "join", "room": rs[3]}, "unavailable")
    check("rooms" in err["message"], "refusal message: %s" % err)
    await z.error({"type": "join", "room": rs[3]}, "unavailable")
    await z.join(rs[0])
    await a.leave(rs[1])
    await z.join(rs[3])
    check("max_rooms" in b.stderr(), "no log line names max_rooms")


@suite.test
async def rooms_churned_through_expire_and_rss_settles():
    """join a fresh room, send, leave, CHURN times, twice: after the rooms
    expire the node's RSS is where the first run left it."""
    b = started(ttl)
    a = await Client.connect(b.port, "churner")
    rate = await churn(a, room("warm"), CHURN)
    await asyncio.sleep(GONE_AFTER)
    base = rss_kb(b)
    rate2 = await churn(a, room("churn"), CHURN)
    peak = rss_kb(b)
    await asyncio.sleep(GONE_AFTER)
    after = rss_kb(b)
    note("%d rooms at %.0f and %.0f rooms/s; RSS %d KB, %d KB after the second churn, "
         "%d KB after expiry" % (CHURN, rate, rate2, base, peak, after))
    check(after - base <= RSS_SLACK_KB,
          "RSS grew by %d KB over %d rooms that expired (at most %d KB)"
          % (after - base, CHURN, RSS_SLACK_KB))


# ---- Redis ----------------------------------------------------------------

def redis_int(text, key=None):
    if key is None:
        return int(text.strip())
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError("no %s in %r" % (key, text[:200]))


def redis_counts():
    """(DBSIZE, INFO memory used_memory) of the cluster's Redis."""
    return (redis_int(cluster.redis.cli("DBSIZE")),
            redis_int(cluster.redis.cli("INFO", "memory"), "used_memory"))


async def wait_dbsize(at_most, timeout):
    deadline = time.monotonic() + timeout
    while True:
        n = redis_int(cluster.redis.cli("DBSIZE"))
        if n <= at_most or time.monotonic() > deadline:
            return n
        await asyncio.sleep(0.2)


@suite.test
async def redis_room_keys_carry_a_ttl_and_epoch():
    """Every key of a room's record has a TTL of at most room_ttl; seq 1
    again with a new epoch after it passes."""
    cluster.start()
    node = cluster["redis"]
    a = await Client.connect(node.port, "a")
    r = room("rk")
    e1 = await joined(a, r)
    ack = await a.say(r, "x")
    check(ack["seq"] == 1, "ack: %s" % ack)
    for k in ("seq", "hist", "epoch"):
        key = "%sroom:%s:%s" % (cluster.prefix, r, k)
        t = redis_int(cluster.redis.cli("TTL", key))
        check(0 < t <= ROOM_TTL, "TTL of %s is %d" % (key, t))
    h = await a.request({"type": "history", "room": r})
    check(h.get("epoch") == e1 and h["messages"][0].get("epoch") == e1, "history: %s" % h)
    await a.leave(r)
    await asyncio.sleep(GONE_AFTER)
    check(redis_int(cluster.redis.cli("EXISTS", "%sroom:%s:seq" % (cluster.prefix, r))) == 0,
          "the seq key outlived room_ttl")
    e2 = await joined(a, r)
    check(e2 != e1, "epoch unchanged after expiry")
    ack = await a.say(r, "y")
    check(ack["seq"] == 1, "first ack after expiry: %s" % ack)
    h = await a.request({"type": "history", "room": r, "since": 1, "epoch": e1})
    check(h.get("truncated") is True and h.get("epoch") == e2
          and [m["seq"] for m in h["messages"]] == [1], "history with the old epoch: %s" % h)


@suite.test
async def redis_a_room_in_use_keeps_its_seq_and_epoch_past_room_ttl():
    """A message every second for 4 s (twice room_ttl): seq 1..5 and one
    epoch, since each use refreshes the record."""
    cluster.start()
    node = cluster["redis"]
    a, z = await Client.connect(node.port, "a"), await Client.connect(node.port, "z")
    r = room("busy")
    e = await joined(a, r)
    await joined(z, r)
    for i in range(1, 6):
        ack = await a.say(r, i)
        check(ack["seq"] == i, "message %d got %s" % (i, ack))
        m = await z.expect("message", room=r, seq=i)
        check(m.get("epoch") == e, "message %d has epoch %s, the room %s" % (i, m.get("epoch"), e))
        if i < 5:
            await asyncio.sleep(1.0)
    # A burst: the node asks for a refresh at most every room_ttl/32, yet
    # the record must still expire at least room_ttl after the last one.
    for i in range(6, 26):
        await a.send({"type": "send", "room": r, "body": i, "ref": "b%d" % i})
    sent = time.monotonic()
    for i in range(6, 26):
        await a.expect("ack", ref="b%d" % i)
    pttl = redis_int(cluster.redis.cli("PTTL", "%sroom:%s:seq" % (cluster.prefix, r)))
    since = (time.monotonic() - sent) * 1000
    check(ROOM_TTL * 1000 - since <= pttl <= ROOM_TTL * 1000 * 17 / 16,
          "PTTL %d ms, %.0f ms after the last message of a burst was sent" % (pttl, since))


@suite.test
async def redis_every_message_names_the_epoch_on_every_node():
    """Only a life's first message carries its epoch through Redis; each
    node labels the rest with the epoch it learnt (join, seq 1, history):
    a member on another node, joined after the first message, gets the
    same epoch on every message and in history, and the new one after an
    expiry."""
    cluster.start()
    a = await Client.connect(cluster["redis"].port, "a")
    z = await Client.connect(cluster["redis2"].port, "z")
    r = room("xnode")
    e = await joined(a, r)
    await a.say(r, 1)
    check(await joined(z, r) == e, "a join on the other node got another epoch")
    for i in (2, 3):
        await a.say(r, i)
        m = await z.expect("message", room=r, seq=i)
        check(m.get("epoch") == e, "message %d on the other node: %s (epoch %s)" % (i, m, e))
    h = await z.request({"type": "history", "room": r})
    check([x.get("epoch") for x in h["messages"]] == [e] * 3 and h.get("epoch") == e,
          "history on the other node: %s" % h)
    await asyncio.sleep(GONE_AFTER)
    await a.say(r, "new life")
    m1 = await z.expect("message", room=r, body="new life")
    await a.say(r, "second")
    m2 = await z.expect("message", room=r, body="second")
    check(m1["seq"] == 1 and m2["seq"] == 2 and m1.get("epoch") not in (None, e)
          and m2.get("epoch") == m1["epoch"], "after expiry: %s, %s" % (m1, m2))


@suite.test
async def redis_rooms_churned_through_leave_neither_keys_nor_memory():
    """The churn, twice, through Redis: DBSIZE falls back to what it was
    before within room_ttl + slack, Redis's used_memory and the node's RSS
    settle where the first run left them."""
    cluster.start()
    node = cluster["redis"]
    idle = redis_int(cluster.redis.cli("DBSIZE"))
    a = await Client.connect(node.port, "churner")
    keys0, _ = redis_counts()
    rate = await churn(a, room("rwarm"), CHURN)
    await asyncio.sleep(GONE_AFTER)
    keys1 = await wait_dbsize(keys0, 5.0 * SCALE)
    keys_base, mem_base = redis_counts()
    rss_base = rss_kb(node)
    rate2 = await churn(a, room("rchurn"), CHURN)
    keys_peak, mem_peak = redis_counts()
    keys2 = await wait_dbsize(keys0, GONE_AFTER + 5.0 * SCALE)
    await asyncio.sleep(0.5)
    keys_after, mem_after = redis_counts()
    rss_after = rss_kb(node)
    note("%d rooms at %.0f and %.0f rooms/s; DBSIZE %d before, %d at the peak, %d after; "
         "used_memory %d, %d at the peak, %d after; node RSS %d KB, %d KB after"
         % (CHURN, rate, rate2, keys0, keys_peak, keys_after, mem_base, mem_peak, mem_after,
            rss_base, rss_after))
    check(keys1 <= keys0 and keys2 <= keys0,
          "DBSIZE did not fall back to %d after room_ttl: %d, then %d" % (keys0, keys1, keys2))
    check(keys_peak > keys0, "the churn made no keys at all (%d)" % keys_peak)
    check(mem_after - mem_base <= REDIS_MEMORY_SLACK,
          "Redis used_memory grew by %d bytes over %d expired rooms"
          % (mem_after - mem_base, CHURN))
    check(rss_after - rss_base <= RSS_SLACK_KB,
          "node RSS grew by %d KB over %d rooms" % (rss_after - rss_base, CHURN))
    await a.close()
    # Nobody left: the presence keys of the rooms and of the user go too.
    n = await wait_dbsize(idle, 5.0 * SCALE)
    check(n <= idle, "DBSIZE %d after the client left, %d before it came" % (n, idle))


if __name__ == "__main__":
    suite.main()
