#!/usr/bin/python3
"""With the redis backplane (issue 15, item 2), `joined` means joined:

  - Redis refuses writes (CONFIG SET maxmemory 1, noeviction: the join
    script fails with OOM): a `join` into a room that has members is
    answered `unavailable`, not `joined`; the session is not a member
    (`send` is `not_member`) and not in presence. A join sent twice at
    once is never answered `joined` while the user is not present; After CONFIG SET
    maxmemory 0, presence lists exactly the connected members within a few
    seconds, without a reconnect (the heartbeat's reconcile), the user
    whose `online` failed meanwhile is reachable by direct messages, and
    the same join works;
  - a link lost with a join in flight (the command connection stalled
    through a proxy, then closed under the node): `unavailable`, the
    session is not in the room, and joining again after the node is back
    works.

Nodes a and b use Redis directly; node p through a proxy that stalls its
command connection (probe_timeout_ms 1500). presence_ttl = 3.

SPDX-License-Identifier: MIT
"""
import asyncio
import json
import time

from confabtest import Client, RECV_TIMEOUT, check, note
from redistest import (RECOVER_TIMEOUT, Cluster, RedisSuite, StallProxy, log_count,
                       wait_health)

# "Within a few seconds" of Redis taking writes again: a heartbeat (at most
# 750 ms with presence_ttl 3) reconciles; a node forgotten by another one
# meanwhile registers again at its next heartbeat.
CONVERGE = 5.0

suite = RedisSuite("test_redis_join_failures", watchdog=120)
main = Cluster(suite, guests=("a", "b"))
proxy = StallProxy(main.redis)
behind = Cluster(suite, guests=("p",), redis=main.redis, prefix=main.prefix,
                 redis_keys={"port": proxy.port, "probe_interval_ms": 500,
                             "probe_timeout_ms": 1500, "reconnect_max_ms": 500})


async def reply_to(c, ref):
    """The frame that answers the request `ref` of client `c`, whatever its type."""
    return await c._wait_for(lambda f: f.get("ref") == ref, "reply to %s" % ref, RECV_TIMEOUT)


async def presence_becomes(c, room, want, timeout, what):
    """Poll `presence` of `room` from `c` until it is exactly `want`, and
    still is 1 s later. Returns how long it took."""
    start = time.monotonic()
    while True:
        got = sorted(await c.presence(room))
        if got == sorted(want):
            await asyncio.sleep(1.0)
            got = sorted(await c.presence(room))
            if got == sorted(want):
                return time.monotonic() - start
        check(time.monotonic() - start <= timeout,
              "%s: presence of %s is %s, want exactly %s within %.0fs"
              % (what, room, got, sorted(want), timeout))
        await asyncio.sleep(0.2)


async def truthful_double_join(node, member, room):
    """A client on `node` sends the same join twice at once, under OOM. The
    first is answered unavailable. The second may not be answered `joined`
    while the first still waits for Redis; it is unavailable too, or, when
    it came after the first was undone and its script went in one call
    behind that undo's leave (Redis lets a script that has already written
    go on writing under maxmemory), `joined`, and then truly joined:
    `presence` lists its user. The client then closes."""
    d = await Client.connect(node.port, name="twice@%s" % node.name)
    await d.send({"type": "join", "room": room, "ref": "twice-1"})
    await d.send({"type": "join", "room": room, "ref": "twice-2"})
    first, second = await reply_to(d, "twice-1"), await reply_to(d, "twice-2")
    check(first.get("type") == "error" and first.get("code") == "unavailable",
          "%s: the first of two joins under OOM answered %s, want error unavailable"
          % (d.name, json.dumps(first)))
    if second.get("type") == "joined":
        got = await member.presence(room)
        check(d.user in got, "%s: the second join was answered joined, but presence does "
              "not list %s: %s" % (d.name, d.user, got))
        note("the second of two joins came later and joined truly (presence lists it)")
    else:
        check(second.get("type") == "error" and second.get("code") == "unavailable",
              "%s: the second of two joins under OOM answered %s" % (d.name, json.dumps(second)))
        await d.error({"type": "send", "room": room, "body": "in?"}, "not_member")
        note("a join sent twice at once under OOM: both answered unavailable")
    await d.close()


@suite.test
async def a_join_that_redis_refuses_is_unavailable_and_presence_recovers():
    """maxmemory 1: a join on either node is answered unavailable and
    leaves the session out of the room and out of presence; maxmemory 0:
    presence is exact again within a few seconds without a reconnect, and
    the join works."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, main.start)
    a, b = main["a"], main["b"]
    room = "oom"
    x = await Client.connect(a.port, name="x@a")
    y = await Client.connect(b.port, name="y@b")
    z = await Client.connect(b.port, name="z@b")
    for c in (x, y, z):
        await c.join(room)
    await presence_becomes(x, room, [x.user, y.user, z.user], CONVERGE, "before")
    reconnects = {n.name: log_count(n, "backplane down") for n in (a, b)}

    main.redis.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
    main.redis.cli("CONFIG", "SET", "maxmemory", "1")
    try:
        jb = await Client.connect(b.port, name="jb@b")
        ja = await Client.connect(a.port, name="ja@a")
        for j in (jb, ja):
            r = await j.request({"type": "join", "room": room})
            check(r.get("type") == "error" and r.get("code") == "unavailable",
                  "%s: join under OOM answered %s, want error unavailable"
                  % (j.name, json.dumps(r)))
            await j.error({"type": "send", "room": room, "body": "in?"}, "not_member")
        note("under maxmemory 1, joins on a and b were answered unavailable; the sessions "
             "are not members")
        await truthful_double_join(b, x, room)
        got = sorted(await x.presence(room))
        check(jb.user not in got and ja.user not in got,
              "presence under OOM lists a session whose join failed: %s" % got)
        await z.close()
    finally:
        main.redis.cli("CONFIG", "SET", "maxmemory", "0")
    took = await presence_becomes(x, room, [x.user, y.user], CONVERGE, "after maxmemory 0")
    await presence_becomes(y, room, [x.user, y.user], CONVERGE, "after maxmemory 0, on b")
    note("after maxmemory 0, presence lists exactly the connected members (%.1fs)" % took)
    for n in (a, b):
        check(log_count(n, "backplane down") == reconnects[n.name],
              "node %s reconnected: presence must recover without a reconnect" % n.name)
    # jb connected under OOM: its `online` failed; the reconcile recorded it.
    deadline = time.monotonic() + CONVERGE
    while True:
        r = await x.request({"type": "direct", "to": jb.user, "body": "hi"})
        if r.get("type") == "ack":
            break
        check(time.monotonic() < deadline, "a direct to %s (connected under OOM) is still "
              "answered %s" % (jb.user, json.dumps(r)))
        await asyncio.sleep(0.2)
    await jb.expect("direct", **{"from": x.user})
    for j in (jb, ja):
        await j.join(room)
    await presence_becomes(x, room, [x.user, y.user, jb.user, ja.user], CONVERGE,
                           "after joining again")
    note("both sessions joined after Redis recovered; presence is exact")


@suite.test
async def a_join_in_flight_when_the_link_is_lost_is_unavailable():
    """The join script waits on a stalled command connection; the
    connection is then closed under the node: the join is answered
    unavailable, the session is not in the room, and a join after the node
    is back works."""
    await proxy.start()
    try:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, main.start)
        await loop.run_in_executor(None, behind.start)
        a, p = main["a"], behind["p"]
        room = "lost"
        x = await Client.connect(a.port, name="x@a")
        await x.join(room)
        j = await Client.connect(p.port, name="j@p")

        n = proxy.stall_commands()
        check(n >= 1, "the proxy saw no command connection of node p to stall")
        await j.send({"type": "join", "room": room, "ref": "lost-join"})
        await j.expect_nothing(0.3, ref="lost-join")
        closed = proxy.close_stalled()
        t0 = time.monotonic()
        r = await j.expect("error", ref="lost-join", timeout=RECV_TIMEOUT)
        check(r.get("code") == "unavailable", "j: join in flight when the link was lost -> %s"
              % json.dumps(r))
        note("the join in flight was answered unavailable %.2fs after its link was closed "
             "(%d connection(s))" % (time.monotonic() - t0, closed))
        proxy.end_stall()
        await wait_health([p], 200, RECOVER_TIMEOUT, "after the link was lost")
        await j.error({"type": "send", "room": room, "body": "in?"}, "not_member")
        await j.error({"type": "presence", "room": room}, "not_member")
        got = await x.presence(room)
        check(j.user not in got, "presence lists %s, whose join was answered unavailable: %s"
              % (j.user, got))
        await j.join(room)
        await presence_becomes(x, room, [x.user, j.user], 5.0, "after joining again")
        note("not in the room after the failed join; joined again once the node was back")
    finally:
        await proxy.close()


if __name__ == "__main__":
    suite.main()
