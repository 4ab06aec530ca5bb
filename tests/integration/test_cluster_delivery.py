#!/usr/bin/python3
"""The redis_cluster backplane (issue 9) keeps every cross-node promise of
the redis backplane on a Redis Cluster, with sharded pub/sub and a bounded
number of subscriptions per node.

A 6-process Redis Cluster (3 masters, 3 replicas) and four confabd nodes
(partitions = 16, presence_ttl = 3, history_size = 1000):
  a, b, c   anonymous clients (guest-..., a new user per connection)
  d         fx_good_auth admits every client as "alice"
Rooms are picked so that their partitions fall on each of the 3 masters.

SPDX-License-Identifier: MIT
"""
import asyncio
import itertools
import json
import signal
import time

from confabtest import Client, SANITIZERS, SCALE, check, note
from promtext import scrape, value
from redistest import history_all, seq_problems
from clustertest import (PRESENCE_TTL, ClusterNodes, ClusterSuite, RedisCluster, call,
                         collect_rooms, node_shard_subscriptions)

PARTITIONS = 16
HISTORY_SIZE = 1000
MANY_ROOMS = 1000
WELCOME_ROUNDS = 60
GONE_WITHIN = PRESENCE_TTL + 2.0 + (2.0 if SANITIZERS else 0.0)

suite = ClusterSuite("test_cluster_delivery", watchdog=150)
rc = RedisCluster(suite.tmp)
nodes = ClusterNodes(suite, rc, guests=("a", "b", "c"), alices=("d",), partitions=PARTITIONS,
                     history_size=HISTORY_SIZE,
                     broker_keys={"rate_limit": 0, "max_rooms_per_session": MANY_ROOMS + 100})
layout = nodes.layout
_bases = itertools.count(1)


def script_calls(port):
    """How many script replies node `port`'s /metrics has timed, in all."""
    fams = scrape(port)
    return sum(v for name, _, v in fams["confab_redis_script_seconds"]["samples"]
               if name == "confab_redis_script_seconds_count")


async def link_metrics(port, masters):
    """/metrics of a node once both its links to each of `masters` masters
    count as up (refreshed every 100 ms tick; 3 s at most): (link_up by
    link, subscriptions)."""
    deadline = time.monotonic() + 3.0
    while True:
        fams = scrape(port)
        up = {k: value(fams, "confab_redis_link_up", link=k) for k in ("command", "subscribe")}
        if up == {"command": masters, "subscribe": masters} or time.monotonic() > deadline:
            return up, value(fams, "confab_redis_subscriptions")
        await asyncio.sleep(0.1)


def dumps(x):
    return json.dumps(x, sort_keys=True)


def rooms_per_master(base, count=1):
    """[(master port, [room names])] for each of the 3 masters: `count`
    fresh rooms each, in distinct partitions, whose slots that master owns."""
    nodes.start()
    b = "%s%d" % (base, next(_bases))
    used = set()
    out = []
    for m in rc.masters():
        names = layout.names_on(m, rc, b, count, exclude_parts=used)
        used |= {layout.part(n) for n in names}
        out.append((m, names))
    check(len(out) == 3, "the cluster has %d masters, want 3" % len(out))
    return out


async def connect(*specs):
    """Clients named NAME on node NODE, for each "NAME@NODE"."""
    nodes.start()
    out = []
    for spec in specs:
        name, node = spec.split("@")
        out.append(await Client.connect(nodes[node].port, name=spec))
    return out


@suite.test
async def the_cluster_and_the_nodes_start():
    """The cluster is created (3 masters with a replica each, cluster_state
    ok everywhere) and the four nodes answer /readyz 200."""
    await connect()
    note("cluster created and settled in %.1fs; masters %s" % (rc.create_seconds, rc.masters()))
    for m in rc.masters():
        check(len(rc.replicas_of(m)) == 1, "master %d has replicas %s" % (m, rc.replicas_of(m)))


@suite.test
async def a_message_in_a_room_on_each_master_reaches_the_members_on_every_node():
    """For a room on each master: a guest on a sends, the members on b, c
    and d get it once with the ack's seq, id and ts; the sender gets no
    copy. The room's seq lives on that master, under the partition's key
    prefix ({T_k}room:R:seq)."""
    sender, gb, gc, alice = await connect("sender@a", "gb@b", "gc@c", "alice@d")
    calls = script_calls(nodes["a"].port)
    for m, (r,) in rooms_per_master("each"):
        for c in (sender, gb, gc, alice):
            await c.join(r)
        ack = await sender.say(r, {"to": r})
        check(ack.get("seq") == 1, "first message of %s: seq %r" % (r, ack.get("seq")))
        for c in (gb, gc, alice):
            msg = await c.expect("message", room=r)
            for k in ("seq", "id", "ts"):
                check(msg.get(k) == ack[k], "%s: %s of the message in %s is %r, want %r"
                      % (c.name, k, r, msg.get(k), ack[k]))
            check(msg.get("from") == sender.user and msg.get("body") == {"to": r},
                  "%s got %s" % (c.name, dumps(msg)))
        key = layout.keyprefix(layout.part(r)) + "room:%s:seq" % r
        got = call(m, "GET", key, raise_error=False)
        check(str(got) == "1", "GET %s on its master %d -> %r, want 1 (the room's seq under "
              "the partition's key prefix)" % (key, m, got))
        note("room %s (partition %d, slot %d, master %d): delivered on b, c, d; %s = 1"
             % (r, layout.part(r), layout.room_slot(r), m, key))
    for c in (sender, gb, gc, alice):
        await c.expect_nothing(0.3, type="message")
    up, subs = await link_metrics(nodes["a"].port, len(rc.masters()))
    check(up == {"command": 3, "subscribe": 3}, "/metrics of a: link_up %s, want both links "
          "of the 3 masters" % up)
    check(subs >= 3, "/metrics of a: %g subscriptions, want the partitions of the 3 rooms' at "
          "least" % subs)
    now_calls = script_calls(nodes["a"].port)
    check(now_calls >= calls + 6, "/metrics of a: %g script calls timed before 3 joins and 3 "
          "sends, %g after" % (calls, now_calls))
    note("/metrics of a: link_up %s, %g subscriptions, script calls %g -> %g"
         % (up, subs, calls, now_calls))


@suite.test
async def concurrent_senders_on_three_nodes_in_rooms_on_three_masters_one_order():
    """Senders on a, b and c each send 150 messages to each of 3 rooms (one
    per master) at once, without waiting for acks: each room's acks hold
    seq 1..450 once each; listeners on a, b, c and d get every room's 450
    messages in seq order, once each, with the acked id; each sender gets
    the others' 300 of each room in order; history on b returns the acked
    ids in order."""
    per = 150
    rooms = [names[0] for _, names in rooms_per_master("burst")]
    senders = await connect("s-a@a", "s-b@b", "s-c@c")
    listeners = await connect("l-a@a", "l-b@b", "l-c@c", "l-d@d")
    for c in senders + listeners:
        for r in rooms:
            await c.join(r)
    total = 3 * per

    async def burst(c):
        refs = []
        for i in range(per):
            for r in rooms:
                ref = "%s-%s-%d" % (c.name, r, i)
                refs.append(ref)
                await c.send({"type": "send", "room": r, "ref": ref,
                              "body": {"s": c.name, "i": i}})
        return await collect_rooms(c, {r: total - per for r in rooms}, refs,
                                   timeout=90.0 * SCALE)

    t0 = time.monotonic()
    results = await asyncio.wait_for(asyncio.gather(
        *[burst(c) for c in senders],
        *[collect_rooms(c, {r: total for r in rooms}, timeout=90.0 * SCALE) for c in listeners]),
        timeout=100.0 * SCALE)
    note("%d messages sent and delivered in %.1fs" % (3 * total, time.monotonic() - t0))
    sent, heard = results[:3], results[3:]
    for r in rooms:
        by_seq = {}
        own = {}
        for c, (_, replies) in zip(senders, sent):
            own[c.name] = set()
            for i in range(per):
                a = replies["%s-%s-%d" % (c.name, r, i)]
                check(a.get("type") == "ack" and isinstance(a.get("seq"), int),
                      "%s: message %d to %s answered %s" % (c.name, i, r, dumps(a)))
                check(a["seq"] not in by_seq, "%s: seq %d acked twice (%s and %s)"
                      % (r, a["seq"], by_seq.get(a["seq"]), a["id"]))
                by_seq[a["seq"]] = a["id"]
                own[c.name].add(a["seq"])
        problem = seq_problems(sorted(by_seq), list(range(1, total + 1)))
        check(problem is None, "%s: the acks are not seq 1..%d: %s" % (r, total, problem))
        for c, (got, _) in zip(listeners, heard):
            seqs = [m.get("seq") for m in got[r]]
            problem = seq_problems(seqs, list(range(1, total + 1)))
            check(problem is None, "%s on %s: %s" % (c.name, r, problem))
            bad = [m for m in got[r] if m.get("id") != by_seq[m["seq"]]]
            check(not bad, "%s on %s: message ids differ from the acks: %s"
                  % (c.name, r, dumps(bad[:2])))
        for c, (got, _) in zip(senders, sent):
            seqs = [m.get("seq") for m in got[r]]
            want = [s for s in range(1, total + 1) if s not in own[c.name]]
            problem = seq_problems(seqs, want)
            check(problem is None, "sender %s on %s: %s" % (c.name, r, problem))
        msgs, _ = await history_all(listeners[1], r, HISTORY_SIZE)
        check([m.get("id") for m in msgs] == [by_seq[s] for s in range(1, total + 1)],
              "history of %s on node b: seqs %s" % (r, seq_problems(
                  [m.get("seq") for m in msgs], list(range(1, total + 1)))))
        note("%s (master %d): acks 1..%d, every listener and sender in order, history equal"
             % (r, rc.master_of_slot(layout.room_slot(r)), total))
    await asyncio.gather(*[c.expect_nothing(0.5, type="message") for c in senders + listeners])


@suite.test
async def direct_messages_reach_every_session_of_the_user_and_offline_otherwise():
    """A guest on a directs a guest on c, and a guest on b directs alice's
    two sessions on d (each user's partition is wherever its name falls):
    each session gets it once, the sender only the ack; alice directing
    herself reaches her other session; a user with no session is
    `offline`, so is a guest whose only session on b closed."""
    ga, gb, gc, alice1, alice2 = await connect("ga@a", "gb@b", "gc@c", "alice1@d", "alice2@d")
    ack = await ga.request({"type": "direct", "to": gc.user, "body": {"hi": "c"}})
    check(ack.get("type") == "ack", "direct a -> c: %s" % dumps(ack))
    d = await gc.expect("direct", id=ack["id"])
    check(d.get("from") == ga.user and d.get("to") == gc.user and d.get("body") == {"hi": "c"}
          and d.get("ts") == ack.get("ts"), "gc got %s" % dumps(d))
    note("a -> c: delivered (user partition %d)" % layout.part(gc.user))
    ack = await gb.request({"type": "direct", "to": "alice", "body": "to both"})
    check(ack.get("type") == "ack", "direct b -> alice: %s" % dumps(ack))
    for c in (alice1, alice2):
        d = await c.expect("direct", id=ack["id"])
        check(d.get("from") == gb.user and d.get("body") == "to both", "%s got %s" % (c.name, dumps(d)))
    ack = await alice1.request({"type": "direct", "to": "alice", "body": "sync"})
    check(ack.get("type") == "ack", "alice to herself: %s" % dumps(ack))
    d = await alice2.expect("direct", id=ack["id"])
    note("b -> alice (2 sessions on d) and alice -> alice: delivered")
    for c in (ga, gb, gc, alice1, alice2):
        await c.expect_nothing(0.3, type="direct")
    await ga.error({"type": "direct", "to": "nobody-here", "body": 1}, "offline")
    gone = gb.user
    await gb.close()
    deadline = time.monotonic() + 5.0 * SCALE
    while True:
        r = await ga.request({"type": "direct", "to": gone, "body": "still there?"})
        if r.get("type") == "error" and r.get("code") == "offline":
            break
        check(r.get("type") == "ack", "direct to %s after its close -> %s" % (gone, dumps(r)))
        check(time.monotonic() < deadline, "%s still acked 5s after its only session closed" % gone)
        await asyncio.sleep(0.1)
    note("unknown user and closed guest: offline")


@suite.test
async def a_direct_sent_from_another_node_the_moment_of_welcome_is_acked_and_delivered():
    """WELCOME_ROUNDS times, a fresh guest connects on c and, the moment
    its welcome arrives, a guest on a sends it a direct: acked, not
    `offline`, and delivered. Each guest's user partition is wherever its
    name falls, often one that c is not subscribed to yet: the user's
    online waits for that subscription, and the welcome for the online."""
    sender, = await connect("wsender@a")
    for i in range(WELCOME_ROUNDS):
        target, = await connect("target%d@c" % i)
        ack = await sender.request({"type": "direct", "to": target.user, "body": {"n": i}})
        check(ack.get("type") == "ack", "round %d: a direct right after %s's welcome "
              "(partition %d) -> %s" % (i, target.user, layout.part(target.user), dumps(ack)))
        d = await target.expect("direct", id=ack["id"])
        check(d.get("body") == {"n": i}, "round %d: got %s" % (i, dumps(d)))
        await target.close()
    note("%d of %d direct messages sent right after welcome were acked and delivered"
         % (WELCOME_ROUNDS, WELCOME_ROUNDS))


@suite.test
async def direct_messages_to_users_in_partitions_on_each_master():
    """Guests connect on c until there is one whose user partition is on
    each master; a guest on a directs each of them: delivered once each,
    with the ack's id."""
    sender, = await connect("dsender@a")
    masters = rc.masters()
    picked = {}
    for i in range(60):
        g, = await connect("g%d@c" % i)
        m = rc.master_of_slot(layout.slot(layout.part(g.user)))
        if m in picked:
            await g.close()
            continue
        picked[m] = g
        if len(picked) == len(masters):
            break
    check(len(picked) == len(masters), "60 guests cover only masters %s" % sorted(picked))
    for m, g in sorted(picked.items()):
        ack = await sender.request({"type": "direct", "to": g.user, "body": {"m": m}})
        check(ack.get("type") == "ack", "direct to %s (partition %d on %d) -> %s"
              % (g.user, layout.part(g.user), m, dumps(ack)))
        d = await g.expect("direct", id=ack["id"])
        check(d.get("body") == {"m": m} and d.get("from") == sender.user, "%s got %s"
              % (g.name, dumps(d)))
    for g in picked.values():
        await g.expect_nothing(0.3, type="direct")
    note("directs to users in partitions %s on masters %s delivered once each"
         % ([layout.part(g.user) for _, g in sorted(picked.items())], sorted(picked)))


@suite.test
async def presence_and_member_events_cross_nodes_in_rooms_on_every_master():
    """In a room on each master, guests on a, b, c and alice on d join in
    turn: each earlier member hears each later join once; presence asked on
    any node lists the 4 users sorted; alice leaving and a guest closing
    its connection are heard on the other nodes as leaves."""
    for m, (r,) in rooms_per_master("pres"):
        ga, gb, gc, alice = await connect("ga@a", "gb@b", "gc@c", "alice@d")
        order = [ga, gb, gc, alice]
        for i, c in enumerate(order):
            await c.join(r)
            for earlier in order[:i]:
                await earlier.expect("member", room=r, user=c.user, event="join")
        want = sorted([ga.user, gb.user, gc.user, "alice"])
        for c in order:
            users = await c.presence(r)
            check(users == want, "%s: presence of %s is %r, want %r" % (c.name, r, users, want))
        await alice.leave(r)
        for c in (ga, gb, gc):
            await c.expect("member", room=r, user="alice", event="leave")
        await gb.close()
        for c in (ga, gc):
            await c.expect("member", room=r, user=gb.user, event="leave")
        users = await gc.presence(r)
        check(users == sorted([ga.user, gc.user]), "presence of %s after the leaves: %r" % (r, users))
        await asyncio.gather(*[c.expect_nothing(0.3, type="member") for c in (ga, gc)])
        note("room %s (master %d): joins, presence, leaves across a, b, c, d" % (r, m))
        for c in (ga, gc, alice):
            await c.close()


@suite.test
async def a_client_that_drops_on_a_gets_what_it_missed_from_history_on_c():
    """x on a sees seq 1..5 from s on b, then its connection drops; s sends
    7 more; x reconnects to c, joins again and asks history since 5: it
    gets exactly seq 6..12 as acked, truncated false; the next message
    arrives live as seq 13. In a room on each master."""
    for m, (r,) in rooms_per_master("recover"):
        x, s = await connect("x@a", "s@b")
        await x.join(r)
        await s.join(r)
        for i in range(5):
            await s.say(r, "m%d" % (i + 1))
        seen = [(await x.expect("message", room=r))["seq"] for _ in range(5)]
        check(seen == [1, 2, 3, 4, 5], "x saw %r" % seen)
        x.ws.transport.abort()
        await s.expect("member", room=r, user=x.user, event="leave", timeout=10.0 * SCALE)
        acks = [await s.say(r, "m%d" % (i + 6)) for i in range(7)]
        x2, = await connect("x2@c")
        await x2.join(r)
        h = await x2.request({"type": "history", "room": r, "since": 5})
        check(h.get("type") == "history" and h.get("truncated") is False,
              "history since 5 on c: %s" % dumps(h)[:300])
        got = [(m_.get("seq"), m_.get("id"), m_.get("body")) for m_ in h["messages"]]
        want = [(a["seq"], a["id"], "m%d" % a["seq"]) for a in acks]
        check(got == want, "history since 5 on c: %r, want %r" % (got, want))
        a = await s.say(r, "live")
        msg = await x2.expect("message", room=r)
        check(msg.get("seq") == 13 == a["seq"], "live after recovery: %s" % dumps(msg))
        note("room %s (master %d): history since 5 on c = 6..12, then 13 live" % (r, m))
        for c in (s, x2):
            await c.close()


@suite.test
async def sharded_channels_on_the_masters_and_no_classic_channel_anywhere():
    """With members of a room on each master on a, b and c: PUBSUB
    SHARDNUMSUB on the room's master counts >= 3 subscribers of the room's
    partition channel {T_k}ch (one per node); PUBSUB CHANNELS and NUMPAT on
    every node of the cluster (masters and replicas) show no channel of this
    deployment and no pattern."""
    clients = await connect("sa@a", "sb@b", "sc@c")
    placed = rooms_per_master("shard")
    for _, (r,) in placed:
        for c in clients:
            await c.join(r)
    for m, (r,) in placed:
        ch = layout.room_channel(r)
        n = rc.shardnumsub(m, ch).get(ch, 0)
        check(n >= 3, "PUBSUB SHARDNUMSUB %s on master %d (owner of %s) -> %d, want >= 3 "
              "(nodes a, b, c have members)" % (ch, m, r, n))
        listed = rc.shard_channels(m)
        check(ch in listed, "PUBSUB SHARDCHANNELS on %d does not list %s: %s" % (m, ch, listed))
        note("master %d: %s has %d sharded subscribers" % (m, ch, n))
    for p in rc.live_ports():
        chans = [c for c in rc.classic_channels(p) if nodes.prefix in c or "room" in c]
        check(not chans, "PUBSUB CHANNELS on %d lists %s: room traffic must be sharded" % (p, chans))
        numpat = call(p, "PUBSUB", "NUMPAT")
        check(numpat == 0, "PUBSUB NUMPAT on %d is %r, want 0" % (p, numpat))
    note("no classic channel or pattern on any of the 6 nodes")


@suite.test
async def a_node_with_1000_rooms_joined_holds_at_most_partitions_sharded_subscriptions():
    """One client on b joins 1000 rooms (every partition has some): node b
    holds at most 16 (partitions) sharded subscriptions in all (ssub of its
    connections, CLIENT LIST on every cluster node) and no classic one; the
    deployment's sharded channels on the masters are partition channels
    only, at most 16; a message to one of the rooms from a reaches it, and
    a message to a room it has not joined (same partition) does not."""
    many, = await connect("many@b")
    sender, = await connect("sender@a")
    rooms = ["many-%d" % i for i in range(MANY_ROOMS)]
    t0 = time.monotonic()
    for i in range(0, MANY_ROOMS, 100):
        chunk = rooms[i:i + 100]
        refs = []
        for r in chunk:
            refs.append("j-" + r)
            await many.send({"type": "join", "room": r, "ref": "j-" + r})
        _, replies = await collect_rooms(many, {}, refs, timeout=30.0 * SCALE)
        bad = [(ref, f) for ref, f in replies.items() if f.get("type") != "joined"]
        check(not bad, "joins refused: %s" % dumps(bad[:3]))
    note("1000 joins answered `joined` in %.1fs" % (time.monotonic() - t0))
    check(len({layout.part(r) for r in rooms}) == PARTITIONS, "the 1000 rooms miss a partition")

    total, detail = node_shard_subscriptions(rc, nodes["b"].pid)
    note("node b's links per redis port (links, ssub, sub, psub): %s" % detail)
    check(any(d[0] for d in detail.values()), "found no connection of node b (pid %d) in the "
          "CLIENT LIST of any cluster node" % nodes["b"].pid)
    check(1 <= total <= PARTITIONS, "node b holds %d sharded subscriptions with %d rooms joined; "
          "want at most partitions = %d" % (total, MANY_ROOMS, PARTITIONS))
    classic = sum(d[2] + d[3] for d in detail.values())
    check(classic == 0, "node b holds %d classic subscriptions" % classic)
    ours = set()
    for m in rc.masters():
        ours |= {c for c in rc.shard_channels(m) if nodes.prefix in c}
    check(ours <= layout.channels() and len(ours) <= PARTITIONS,
          "the deployment's sharded channels are not partition channels only: %s"
          % sorted(ours - layout.channels())[:5])
    note("node b: %d sharded subscriptions; the masters hold %d channels of this deployment"
         % (total, len(ours)))

    target = rooms[500]
    other = next("other-%d" % i for i in range(10000)
                 if layout.part("other-%d" % i) == layout.part(target))
    await sender.join(target)
    await sender.join(other)
    await sender.say(other, "not for many")
    ack = await sender.say(target, "for many")
    msg = await many.expect("message", room=target)
    check(msg.get("id") == ack["id"], "many got %s" % dumps(msg))
    await many.expect_nothing(0.5, type="message", room=other)
    note("delivered in %s; nothing from %s (same partition %d, not joined)"
         % (target, other, layout.part(target)))


@suite.test
async def kill_9_of_a_node_its_members_leave_within_presence_ttl_plus_2s():
    """Node c (two guests, in a room on each master) is killed with
    SIGKILL: within presence_ttl + 2 s the members on a, b and d get a
    leave for each of c's guests in every room, and presence no longer
    lists them; nobody else leaves."""
    ga, gb, gc1, gc2, alice = await connect("ga@a", "gb@b", "gc1@c", "gc2@c", "alice@d")
    placed = [names[0] for _, names in rooms_per_master("kill")]
    for r in placed:
        for c in (ga, gb, gc1, gc2, alice):
            await c.join(r)
    for r in placed:
        for c in (ga, gb, alice):
            users = await c.presence(r)
            check(len(users) == 5, "%s: presence of %s before the kill: %r" % (c.name, r, users))
    killed_at = time.monotonic()
    code = nodes["c"].stop(signal.SIGKILL)
    check(code == -signal.SIGKILL, "node c: exit status %r after SIGKILL" % code)
    deadline = killed_at + GONE_WITHIN
    for r in placed:
        for c in (ga, gb, alice):
            for u in (gc1.user, gc2.user):
                left = deadline - time.monotonic()
                check(left > 0, "%s: no leave of %s in %s within %.0fs of the kill"
                      % (c.name, u, r, GONE_WITHIN))
                await c.expect("member", timeout=left, room=r, user=u, event="leave")
    note("a, b and d heard c's guests leave 3 rooms within %.1fs" % (time.monotonic() - killed_at))
    want = sorted([ga.user, gb.user, "alice"])
    for r in placed:
        users = await ga.presence(r)
        check(users == want, "presence of %s after the kill: %r, want %r" % (r, users, want))
    await asyncio.gather(*[c.expect_nothing(0.5, type="member", event="leave")
                           for c in (ga, gb, alice)])
    note("presence lists the 3 survivors; no other leave")


if __name__ == "__main__":
    suite.main()
