#!/usr/bin/python3
"""The redis_cluster backplane (issue 9) keeps serving a room whose hash
slot migrates to another master while traffic flows (MOVED, ASK, TRYAGAIN,
and the sunsubscribe push Redis sends to the old owner's subscribers).

A 6-process Redis Cluster (3 masters, 3 replicas) and three confabd nodes
a, b, c (partitions = 16, history_size = 20000, ack_replicas = 1). Three
senders (one per node) keep sending to a busy room, listeners on a and c
read it. The room's slot is moved to another master (SETSLOT IMPORTING /
MIGRATING, GETKEYSINSLOT + MIGRATE in small batches with pauses, SETSLOT
NODE), then back to the first, then to the third: three migrations under
traffic. Then: acks never stopped for long, every acked seq acked once;
every acked message was delivered to each listener or is in history;
each listener got its messages in increasing seq order; history equals
the acks; after the last move a new message still reaches both listeners
and the slot's new master holds the room's keys.

A node sends the requests of one loop turn for all partitions of one
master as one call; one that meets the migrating slot is refused as a
whole and sent per partition. The nodes log that at debug level: the
test checks that it happened (the path is exercised), a quiet partition
of the busy room's master also sending, so that such calls carry
publishes of two partitions.

SPDX-License-Identifier: MIT
"""
import asyncio
import json
import time

from confabtest import Client, SCALE, check, note
from redistest import history_all
from clustertest import (ClusterNodes, ClusterSuite, RedisCluster, Traffic, aio, call,
                         check_acks_unique)

HISTORY_SIZE = 20000
MAX_ACK_GAP = 10.0 * SCALE      # the longest a sender may go without an ack while migrating

suite = ClusterSuite("test_cluster_migration", watchdog=180)
rc = RedisCluster(suite.tmp)
nodes = ClusterNodes(suite, rc, guests=("a", "b", "c"), partitions=16,
                     history_size=HISTORY_SIZE, cluster_keys={"ack_replicas": 1},
                     broker_keys={"rate_limit": 0, "log_level": "debug"})
SPLIT_LINE = "each is sent alone"
layout = nodes.layout


def dumps(x):
    return json.dumps(x, sort_keys=True)


@suite.test
async def a_busy_rooms_slot_moves_three_times_under_traffic_without_loss_or_disorder():
    """Three migrations of the busy room's slot (to each other master in
    turn) while three senders on three nodes send: acks keep coming (no gap
    over 10 s), no seq acked twice, every acked message reaches each
    listener or is in history, listeners see increasing seqs, history holds
    every ack under its seq and id."""
    nodes.start()
    room = "busy-migrating"
    k = layout.part(room)
    slot = layout.room_slot(room)
    key_prefix = layout.keyprefix(k)
    senders = [await Client.connect(nodes[n].port, name="s-%s" % n) for n in ("a", "b", "c")]
    listeners = [await Client.connect(nodes[n].port, name="l-%s" % n) for n in ("a", "c")]
    for c in senders + listeners:
        await c.join(room)
    traffic = [Traffic(c, room, interval=0.02, window=8).start() for c in senders]
    listen = [Traffic(c, room, send=False).start() for c in listeners]
    first = rc.master_of_slot(slot)
    # a room of another partition on the same master, also busy: a
    # node's calls to that master carry both partitions
    side = next(n for n in ("side-%d" % i for i in range(10000))
                if layout.part(n) != k and rc.master_of_slot(layout.room_slot(n)) == first)
    side_c = await Client.connect(nodes["a"].port, name="side")
    await side_c.join(side)
    side_t = Traffic(side_c, side, interval=0.01, window=8).start()
    everyone = traffic + listen + [side_t]
    others = [m for m in rc.masters() if m != first]
    path = [others[0], first, others[1]]
    log = []
    try:
        await asyncio.sleep(1.5)
        check(all(t.acks() for t in traffic), "no acks before the first migration: %s"
              % [t.errors() for t in traffic])
        for dst in path:
            src = rc.master_of_slot(slot)
            n_keys = len(call(src, "CLUSTER", "GETKEYSINSLOT", slot, 1000))
            t0 = time.monotonic()
            moved = await aio(rc.migrate_slot, slot, dst, batch=2, pause=0.3)
            log.append((src, dst, moved, time.monotonic() - t0))
            note("slot %d (partition %d, %d keys) moved from %d to %d: %d keys migrated "
                 "in %.1fs" % (slot, k, n_keys, src, dst, moved, time.monotonic() - t0))
            check(moved >= 1, "the slot held no key of the room to migrate")
            await asyncio.sleep(2.0)
            closed = [t.c.name + ": " + t.closed for t in everyone if t.closed]
            check(not closed, "connections closed: %s" % closed)
    finally:
        unanswered = []
        for t in everyone:
            unanswered += await t.stop()
    check(not unanswered, "requests never answered: %s" % unanswered[:5])
    check(side_t.acks(), "the side room got no ack: %s" % side_t.errors())
    splits = publishing = 0
    for n in ("a", "b", "c"):
        with open(nodes[n].stderr_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if SPLIT_LINE in line:
                    splits += 1
                    publishing += " (0 publishing)" not in line
    note("%d calls for several partitions were refused during the migrations and sent "
         "per partition, %d of them with publishes" % (splits, publishing))
    check(splits >= 1 and publishing >= 1, "no call for several partitions (with publishes) "
          "was refused and split: the per-partition path after a refusal was not exercised "
          "(%d, %d)" % (splits, publishing))
    for t in traffic:
        bad = [f for _, (_, f) in t.replies.items()
               if f.get("type") not in ("ack", "error")
               or (f.get("type") == "error" and f.get("code") != "unavailable")]
        check(not bad, "%s: replies other than ack/unavailable: %s" % (t.c.name, dumps(bad[:3])))
        times = sorted(tr for _, tr, _ in t.acks())
        gaps = [b - a for a, b in zip(times, times[1:])]
        check(gaps and max(gaps) < MAX_ACK_GAP, "%s: the acks stopped for %.1fs (%d acks)"
              % (t.c.name, max(gaps or [0]), len(times)))
    note("%d sends, %d acks; errors per sender %s; longest gap between two acks of a "
         "sender %.2fs" % (sum(len(t.sent) for t in traffic), sum(len(t.acks()) for t in traffic),
                           [t.errors() for t in traffic],
                           max(max(b - a for a, b in zip(sorted(x for _, x, _ in t.acks()),
                                                         sorted(x for _, x, _ in t.acks())[1:]))
                               for t in traffic)))
    errors = sum(sum(t.errors().values()) for t in traffic)
    by_seq = check_acks_unique(traffic)

    reader = await Client.connect(nodes["b"].port, name="reader")
    await reader.join(room)
    msgs, _ = await history_all(reader, room, HISTORY_SIZE)
    hist = {m.get("seq"): m.get("id") for m in msgs}
    seqs = [m.get("seq") for m in msgs]
    check(seqs == list(range(1, len(seqs) + 1)),
          "history's seqs are not 1..%d without gaps: first problems %s" % (
              len(seqs), [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1][:5]))
    lost = [(s, i) for s, i in sorted(by_seq.items()) if hist.get(s) != i]
    check(not lost, "%d acked messages are not in history under their seq (seq, id): %s"
          % (len(lost), lost[:10]))
    if errors == 0:
        check(len(seqs) == len(by_seq), "history holds %d messages, %d were acked and none "
              "refused" % (len(seqs), len(by_seq)))

    for l in listen:
        got = [m.get("seq") for _, m in l.messages]
        check(all(a < b for a, b in zip(got, got[1:])),
              "%s: seqs out of order: %s" % (l.c.name, [(a, b) for a, b in zip(got, got[1:])
                                                       if a >= b][:5]))
        for _, m in l.messages:
            check(hist.get(m.get("seq")) == m.get("id"), "%s received seq %s as %s, history "
                  "has %s" % (l.c.name, m.get("seq"), m.get("id"), hist.get(m.get("seq"))))
        missed = sorted(set(by_seq) - set(got))
        note("%s: %d messages in order; %d acked ones not received live (in history)"
             % (l.c.name, len(got), len(missed)))
    note("history: seq 1..%d, every one of the %d acks under its seq and id"
         % (len(seqs), len(by_seq)))

    # after the moves: live delivery and the keys on the slot's owner
    owner = rc.master_of_slot(slot)
    s = await Client.connect(nodes["a"].port, name="after")
    l1 = await Client.connect(nodes["b"].port, name="after-l1")
    l2 = await Client.connect(nodes["c"].port, name="after-l2")
    for c in (s, l1, l2):
        await c.join(room)
    ack = await s.say(room, "after the moves")
    for c in (l1, l2):
        m = await c.expect("message", room=room)
        check(m.get("seq") == ack["seq"], "%s: got seq %s, want %s" % (c.name, m.get("seq"),
                                                                       ack["seq"]))
    seq_key = key_prefix + "room:%s:seq" % room
    v = call(owner, "GET", seq_key, raise_error=False)
    check(str(v) == str(ack["seq"]), "GET %s on the slot's owner %d -> %r, want %d"
          % (seq_key, owner, v, ack["seq"]))
    note("after 3 moves: delivered live on b and c (seq %d); %s on master %d"
         % (ack["seq"], seq_key, owner))
    ch = layout.channel(k)
    n = rc.shardnumsub(owner, ch).get(ch, 0)
    check(n >= 3, "PUBSUB SHARDNUMSUB %s on the new owner %d -> %d, want >= 3 (a, b and c "
          "have members)" % (ch, owner, n))
    for m in rc.masters():
        if m != owner:
            check(ch not in rc.shard_channels(m), "master %d (not the owner) still lists %s"
                  % (m, ch))
    note("the nodes' subscriptions to %s followed the slot to %d (%d subscribers), none is "
         "left on the other masters" % (ch, owner, n))


if __name__ == "__main__":
    suite.main()
