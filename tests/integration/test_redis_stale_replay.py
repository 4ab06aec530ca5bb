#!/usr/bin/python3
"""The redis backplane (issue 15, item 3): a script sent on a link that
failed can reach Redis late (held in kernel buffers, retransmitted after a
partition heals), after the node reconnected and reconciled. It must not
change the node's presence then: each reconcile starts a new generation of
the node's link, and every script that writes the node's state carries its
link's generation and does nothing when it is not the current one.

Node a reaches Redis through a proxy that can hold a command connection:
keep what the node sends, forward nothing back, keep the connection to
Redis open; and later release what it kept to Redis on that old
connection. Node b uses Redis directly and watches presence. presence_ttl
= 3 s (redistest.PRESENCE_TTL).

SPDX-License-Identifier: MIT
"""
import asyncio
import json

from confabtest import Client, check, note
from redistest import (DETECT_TIMEOUT, PRESENCE_TTL, RECOVER_TIMEOUT, Cluster, HoldProxy,
                       RedisServer, RedisSuite, log_count, wait_health)

suite = RedisSuite("test_redis_stale_replay", watchdog=120)
redis = RedisServer(suite.tmp)
proxy = HoldProxy(redis)
held = Cluster(suite, guests=("a",), redis=redis,
               redis_keys={"port": proxy.port, "probe_interval_ms": 500,
                           "probe_timeout_ms": 1500})
direct = Cluster(suite, guests=("b",), redis=redis, prefix=held.prefix)


async def start():
    await proxy.start()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, held.start)   # the proxy runs on this loop
    await loop.run_in_executor(None, direct.start)


def node_entries(node):
    """Redis's record of what `node` registered: its "R<TAB>U" entries."""
    out = held.redis.cli("SMEMBERS", "%snode:%s:pres" % (held.prefix, node))
    return set(l for l in out.splitlines() if l)


@suite.test
async def a_join_held_on_a_failed_link_and_replayed_after_the_reconcile_adds_no_ghost():
    """y on a and w on b are in a room. x on a sends a join to it while the proxy holds a's command connection; a's
    probe then goes unanswered, a drops the link and reconnects through a
    fresh connection, and reconciles (x is not in the room afterwards:
    `unavailable`, or `joined` and then `leave`). The proxy then releases
    the held bytes, the join among them, to Redis on the old connection.
    2 x presence_ttl later, presence on both nodes and Redis's keys still
    do not have x in the room."""
    await start()
    r = "stale-room"
    x = await Client.connect(held["a"].port, name="x@a")
    y = await Client.connect(held["a"].port, name="y@a")
    w = await Client.connect(direct["b"].port, name="w@b")
    await y.join(r)
    await w.join(r)
    members = sorted([y.user, w.user])

    n = proxy.hold_commands()
    check(n == 1, "the proxy holds %d command connections of node a, want 1" % n)
    await x.send({"type": "join", "room": r, "ref": "held-join"})
    for _ in range(40):
        if any(l.held and r.encode() in l.held for l in proxy.links):
            break
        await asyncio.sleep(0.05)
    check(any(l.held and r.encode() in l.held for l in proxy.links),
          "x's join never reached the held connection (held %d bytes)" % proxy.held_bytes())
    note("x's join is held in the proxy (%d bytes held)" % proxy.held_bytes())

    await wait_health([held["a"]], 503, DETECT_TIMEOUT, "the held command link")
    took = await wait_health([held["a"]], 200, RECOVER_TIMEOUT, "a's reconnect")
    note("a noticed the held link, reconnected and reconciled (%.1f s)" % took["a"])
    reply = await x.recv()
    check(reply.get("ref") == "held-join" and (
        reply.get("type") == "joined" or reply.get("code") == "unavailable"),
        "x: the held join -> %s, want joined or unavailable" % json.dumps(reply))
    note("x's join was answered %s" % json.dumps(reply))
    if reply.get("type") == "joined":
        await x.leave(r)
    users = await w.presence(r)
    check(x.user not in users, "before the replay, presence on b is %r with x" % users)

    sent = await proxy.release(settle=1.0)
    check(sent > 0, "the proxy had nothing to release")
    note("released %d held bytes to Redis on the old connection" % sent)
    await asyncio.sleep(2 * PRESENCE_TTL)

    for c in (w, y):
        users = await c.presence(r)
        check(users == members, "%s: presence of %s 2 x presence_ttl after the replay is %r, "
              "want %r (x is a ghost)" % (c.name, r, users, members))
    check(held.redis.cli("SISMEMBER", "%spres:%s" % (held.prefix, r), x.user) == "0",
          "Redis: %s is in pres:%s" % (x.user, r))
    entries = node_entries("a")
    check("%s\t%s" % (r, x.user) not in entries,
          "Redis: node a's record has x in %s: %r" % (r, sorted(entries)))
    check(held.redis.cli("EXISTS", "%spres:%s/%s" % (held.prefix, r, x.user)) == "0",
          "Redis: pres:%s/%s exists" % (r, x.user))
    await x.ping()
    await proxy.close()



@suite.test
async def a_node_behind_the_generation_redis_knows_registers_again_above_it():
    """Redis knows a newer generation of node b than b's own (a clock set
    back across a restart, or an old link's reconcile arriving late): b's
    next reconcile is refused, and b registers again above it instead of
    staying out of presence. The generation is set far ahead, then the
    nodes' command connections are killed so that b reconnects and
    reconciles."""
    await asyncio.get_running_loop().run_in_executor(None, direct.start)
    r = "behind-room"
    v1 = await Client.connect(direct["b"].port, name="v1@b")
    v2 = await Client.connect(direct["b"].port, name="v2@b")
    await v1.join(r)
    await v2.join(r)
    key = "%snode:b:gen" % held.prefix
    ahead = int(redis.cli("GET", key)) + 10 ** 9
    redis.cli("SET", key, ahead)
    redis.cli("DEL", "%spres:%s" % (held.prefix, r))   # what b's reconcile must restore
    redis.cli("CLIENT", "KILL", "TYPE", "normal")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        gen = int(redis.cli("GET", key))
        if gen > ahead:
            break
        check(loop.time() < deadline, "b's generation is still %d, not above %d, 10 s after "
              "its link was killed" % (gen, ahead))
        await asyncio.sleep(0.1)
    check(log_count(direct["b"], "Redis knows a newer link of node b") >= 1,
          "b did not log that Redis knew a newer generation")
    await wait_health([direct["b"]], 200, RECOVER_TIMEOUT, "b after the refused reconcile")
    users = await v1.presence(r)
    check(users == sorted([v1.user, v2.user]), "presence of %s is %r after b registered "
          "again, want both members" % (r, users))
    note("b registered again above the generation Redis knew (%d > %d)" % (gen, ahead))

if __name__ == "__main__":
    suite.main()
