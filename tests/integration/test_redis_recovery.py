#!/usr/bin/python3
"""The redis backplane (issue 3) keeps history in Redis: a client that loses
its connection to one node, reconnects to ANY other node and asks
`history` with `since` = the last seq it saw gets exactly what it missed,
and `truncated` when the gap is older than what is kept.

One redis-server and three confabd nodes a, b, c sharing it, anonymous
clients, history_size = 20.

SPDX-License-Identifier: MIT
"""
import itertools
import json

from confabtest import Client, check, note
from redistest import Cluster, RedisSuite

HISTORY_SIZE = 20

suite = RedisSuite("test_redis_recovery", watchdog=240)
cluster = Cluster(suite, guests=("a", "b", "c"), history_size=HISTORY_SIZE)

_rooms = itertools.count(1)


def room(prefix="room"):
    """A room name no other check uses."""
    return "%s-%d" % (prefix, next(_rooms))


async def connect(name, node):
    cluster.start()
    return await Client.connect(cluster[node].port, name="%s@%s" % (name, node))


async def history(c, r, **args):
    q = {"type": "history", "room": r}
    q.update(args)
    h = await c.request(q)
    check(h.get("type") == "history" and h.get("room") == r
          and isinstance(h.get("messages"), list) and isinstance(h.get("truncated"), bool),
          "%s: history %s -> %s" % (c.name, json.dumps(args), json.dumps(h)[:300]))
    return h["messages"], h["truncated"]


def check_same(c, what, got, acks, sender):
    """The history messages `got` are exactly the acked messages `acks`, in order."""
    check([m.get("seq") for m in got] == [a["seq"] for a in acks],
          "%s: %s returned seqs %r, want %r" % (c.name, what, [m.get("seq") for m in got],
                                                [a["seq"] for a in acks]))
    for m, a in zip(got, acks):
        for k, want in (("type", "message"), ("room", a["room"]), ("id", a["id"]),
                        ("from", sender.user), ("body", "m%d" % a["seq"]), ("ts", a["ts"])):
            check(m.get(k) == want, "%s: %s: message %s is %r, want %r: %s"
                  % (c.name, what, k, m.get(k), want, json.dumps(m)))


async def drop(c, others, r):
    """Lose `c`'s connection abruptly (no close frame) and wait until the
    others see it leave the room."""
    c.ws.transport.abort()
    for o in others:
        await o.expect("member", room=r, user=c.user, event="leave")


@suite.test
async def a_client_that_drops_on_a_and_reconnects_to_c_gets_exactly_the_missed_messages():
    """x on node a sees seq 1..5 from s on node b, then its connection drops;
    s sends 7 more; x reconnects to node c, joins again and asks history
    since 5: it gets exactly seq 6..12 (ids, bodies, from, ts as acked),
    truncated false; the next message arrives live as seq 13."""
    x = await connect("x", "a")
    s = await connect("s", "b")
    r = room()
    await x.join(r)
    await s.join(r)
    for i in range(5):
        await s.say(r, "m%d" % (i + 1))
    seen = [(await x.expect("message", room=r))["seq"] for _ in range(5)]
    check(seen == [1, 2, 3, 4, 5], "x on node a saw seqs %r, want 1..5" % seen)
    last_seen = seen[-1]
    await drop(x, [s], r)
    note("x saw 1..5 on node a and dropped; s saw x leave")

    missed = [await s.say(r, "m%d" % (last_seen + i + 1)) for i in range(7)]
    check([a["seq"] for a in missed] == list(range(6, 13)),
          "acks while x was away have seqs %r, want 6..12" % [a["seq"] for a in missed])
    x2 = await connect("x-again", "c")
    await x2.join(r)
    got, truncated = await history(x2, r, since=last_seen)
    check_same(x2, "history since %d on node c" % last_seen, got, missed, s)
    check(truncated is False, "history since %d on node c says truncated with nothing dropped"
          % last_seen)
    note("on node c, history since 5 returned exactly seq 6..12, truncated false")

    ack = await s.say(r, "m13")
    m = await x2.expect("message", room=r)
    check(m.get("seq") == 13 and m.get("id") == ack["id"],
          "x on node c got %s live, want seq 13 id %s" % (json.dumps(m), ack["id"]))
    note("seq 13 arrived live on node c")


@suite.test
async def a_gap_older_than_history_size_says_truncated():
    """x sees seq 1..3, drops; 30 more are sent (history_size = 20 keeps seq
    14..33); on another node, history since 3 returns seq 14..33 with
    truncated true, since 13 returns the same with truncated false, since
    12 is truncated again; every node answers the same."""
    x = await connect("x", "a")
    s = await connect("s", "b")
    r = room()
    await x.join(r)
    await s.join(r)
    for i in range(3):
        await s.say(r, "m%d" % (i + 1))
    seen = [(await x.expect("message", room=r))["seq"] for _ in range(3)]
    check(seen == [1, 2, 3], "x saw seqs %r, want 1..3" % seen)
    await drop(x, [s], r)

    acks = [await s.say(r, "m%d" % (i + 4)) for i in range(30)]
    check([a["seq"] for a in acks] == list(range(4, 34)),
          "acks have seqs %r, want 4..33" % [a["seq"] for a in acks])
    kept = acks[-HISTORY_SIZE:]
    readers = [await connect("x-%s" % n, n) for n in ("c", "a", "b")]
    for c in readers:
        await c.join(r)
        for since, want_trunc in ((3, True), (13, False), (12, True)):
            got, truncated = await history(c, r, since=since)
            check_same(c, "history since %d" % since, got, kept, s)
            check(truncated is want_trunc, "%s: history since %d: truncated %r, want %r (history "
                  "keeps seq 14..33)" % (c.name, since, truncated, want_trunc))
        note("%s: since 3 -> 14..33 truncated; since 13 -> 14..33 complete; since 12 -> truncated"
             % c.name)



@suite.test
async def history_serves_the_last_history_size_however_long_the_stored_list():
    """140 messages with history_size = 20: Redis trims the room's list in
    steps (never past history_size + 64; here it holds 75), and history on
    any node returns exactly the last 20, seq 121..140; since 100 says
    truncated."""
    s = await connect("s140", "b")
    r = room()
    await s.join(r)
    acks = [await s.say(r, "m%d" % (i + 1)) for i in range(140)]
    kept = acks[-HISTORY_SIZE:]
    stored = int(cluster.redis.cli("LLEN", "%sroom:%s:hist" % (cluster.prefix, r)))
    check(HISTORY_SIZE <= stored <= HISTORY_SIZE + 64,
          "Redis holds %d messages for the room, want %d to %d" % (
              stored, HISTORY_SIZE, HISTORY_SIZE + 64))
    for node in ("a", "c"):
        c = await connect("h140-%s" % node, node)
        await c.join(r)
        got, truncated = await history(c, r)
        check_same(c, "history", got, kept, s)
        got, truncated = await history(c, r, since=100)
        check_same(c, "history since 100", got, kept, s)
        check(truncated is True, "%s: history since 100: truncated %r, want True" % (c.name, truncated))
    note("Redis stores %d; history returns seq %d..%d on a and c" % (
        stored, kept[0]["seq"], kept[-1]["seq"]))


if __name__ == "__main__":
    suite.main()
