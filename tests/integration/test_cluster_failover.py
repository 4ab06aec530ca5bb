#!/usr/bin/python3
"""The redis_cluster backplane (issue 9) loses no acknowledged message in a
failover and never gives one seq to two messages.

A 6-process Redis Cluster (3 masters, 3 replicas, cluster-node-timeout
2000 ms) and three confabd nodes a, b, c (ack_replicas = 1, partitions = 16,
history_size = 20000). Three senders (one per node) keep sending to one
busy room, listeners on a and c read it. Five rounds, each:
  1. kill -9 the master that owns the room's slot;
  2. wait until its replica is promoted (every Redis node agrees);
  3. start the killed node again: it rejoins as the new master's replica
     (with ack_replicas = 1 the promoted master, which has no replica left,
     cannot ack anything until one is back: the restart is part of
     recovering, and the 10 s are counted from the promotion);
  4. within 10 s of the promotion every sender has an ack for a message
     it sent after the promotion, and the listeners receive messages sent
     after it.
At the end: no seq was acked for two different ids; every acked message is
in history under its seq and id; a listener never saw another message
under an acked seq; history's seqs increase without duplicates; the room's
epoch never changed.

SPDX-License-Identifier: MIT
"""
import asyncio
import json
import time

from confabtest import Client, SCALE, check, note
from redistest import history_all, wait_health
from clustertest import (ClusterNodes, ClusterSuite, RedisCluster, Traffic, aio,
                         check_acks_unique)

ROUNDS = 5
RESUME_WITHIN = 10.0 * SCALE
HISTORY_SIZE = 20000

suite = ClusterSuite("test_cluster_failover", watchdog=240)
rc = RedisCluster(suite.tmp)
nodes = ClusterNodes(suite, rc, guests=("a", "b", "c"), partitions=16,
                     history_size=HISTORY_SIZE, cluster_keys={"ack_replicas": 1},
                     broker_keys={"rate_limit": 0})
layout = nodes.layout


def dumps(x):
    return json.dumps(x, sort_keys=True)


@suite.test
async def five_failovers_of_the_busy_rooms_master_lose_and_renumber_no_acked_message():
    """Five rounds of kill -9 of the room's master under traffic from three
    senders on three nodes: acks and delivery resume within 10 s of each
    promotion; no seq acked twice; every acked message in history; no
    listener sees another message under an acked seq; same room epoch."""
    nodes.start()
    room = "busy-failover"
    slot = layout.room_slot(room)
    senders = [await Client.connect(nodes[n].port, name="s-%s" % n) for n in ("a", "b", "c")]
    listeners = [await Client.connect(nodes[n].port, name="l-%s" % n) for n in ("a", "c")]
    epochs = set()
    for c in senders + listeners:
        j = await c.join(room)
        epochs.add(j.get("epoch"))
    check(len(epochs) == 1, "the nodes name different epochs for %s: %s" % (room, epochs))
    epoch = epochs.pop()
    note("room %s: partition %d, slot %d, master %d, epoch %s"
         % (room, layout.part(room), slot, rc.master_of_slot(slot), epoch))
    traffic = [Traffic(c, room, interval=0.03, window=8).start() for c in senders]
    listen = [Traffic(c, room, send=False).start() for c in listeners]
    everyone = traffic + listen
    try:
        await asyncio.sleep(1.5)
        check(all(t.acks() for t in traffic), "no acks before the first kill: errors %s"
              % [t.errors() for t in traffic])
        for rnd in range(1, ROUNDS + 1):
            master = await aio(rc.master_of_slot, slot)
            t_kill = time.monotonic()
            await aio(rc.kill_master, master)
            new, waited = await aio(rc.wait_promoted, slot, old=master)
            t_prom = time.monotonic()
            await aio(rc.restart, master)
            t_back = time.monotonic()
            # acks for messages sent after the promotion, per sender
            deadline = t_prom + RESUME_WITHIN
            while True:
                late = [t.c.name for t in traffic
                        if not any(ts >= t_prom for ts, _, _ in t.acks())]
                deaf = [l.c.name for l in listen
                        if not any(tm >= t_prom and _sent_after(traffic, f, t_prom)
                                   for tm, f in l.messages)]
                if not late and not deaf:
                    break
                closed = [t.c.name + ": " + t.closed for t in everyone if t.closed]
                check(not closed, "round %d: connections closed: %s" % (rnd, closed))
                check(time.monotonic() < deadline,
                      "round %d: %.0fs after the promotion of %d (the killed %d is back as a "
                      "replica since %.1fs after it), no ack yet for %s and no new message "
                      "for %s; errors since the kill: %s" % (
                          rnd, RESUME_WITHIN, new, master, t_back - t_prom, late, deaf,
                          [t.errors() for t in traffic]))
                await asyncio.sleep(0.05)
            resumed = time.monotonic() - t_prom
            note("round %d: killed master %d; %d promoted %.1fs after the kill; %d back as a "
                 "replica %.1fs later; acks and delivery resumed %.1fs after the promotion"
                 % (rnd, master, new, t_prom - t_kill, master, t_back - t_prom, resumed))
            await aio(rc.wait_ok)
            await wait_health([nodes[n] for n in ("a", "b", "c")], 200, 20.0 * SCALE,
                              "round %d" % rnd)
            await asyncio.sleep(1.0)
    finally:
        unanswered = []
        for t in everyone:
            unanswered += await t.stop()
    check(not unanswered, "requests never answered: %s" % unanswered[:5])
    errors = [t.errors() for t in traffic]
    total_acks = sum(len(t.acks()) for t in traffic)
    note("%d sends, %d acked; errors per sender: %s" % (
        sum(len(t.sent) for t in traffic), total_acks, errors))
    for t in traffic:
        bad = [f for _, (_, f) in t.replies.items()
               if f.get("type") not in ("ack", "error")
               or (f.get("type") == "error" and f.get("code") != "unavailable")]
        check(not bad, "%s: replies other than ack/unavailable: %s" % (t.c.name, dumps(bad[:3])))

    by_seq = check_acks_unique(traffic)
    note("%d acks: no seq acked for two ids" % len(by_seq))

    for l in listen:
        seen = {}
        for _, m in l.messages:
            s, i = m.get("seq"), m.get("id")
            if s in by_seq:
                check(i == by_seq[s], "%s received seq %d as %s, but it was acked as %s"
                      % (l.c.name, s, i, by_seq[s]))
            check(seen.get(i, s) == s, "%s received %s under seqs %s and %s"
                  % (l.c.name, i, seen.get(i), s))
            seen[i] = s
        missing = [s for s in by_seq if s not in {m.get("seq") for _, m in l.messages}]
        note("%s: %d messages, none contradicts an ack; %d acked seqs not received live "
             "(allowed around a failover, checked in history)" % (l.c.name, len(l.messages),
                                                                   len(missing)))

    reader = await Client.connect(nodes["b"].port, name="reader")
    await reader.join(room)
    msgs, _ = await history_all(reader, room, HISTORY_SIZE)
    seqs = [m.get("seq") for m in msgs]
    check(all(a < b for a, b in zip(seqs, seqs[1:])),
          "history's seqs do not increase: %s" % [(a, b) for a, b in zip(seqs, seqs[1:])
                                                  if a >= b][:5])
    hist = {m.get("seq"): m.get("id") for m in msgs}
    lost = [(s, i) for s, i in sorted(by_seq.items()) if s not in hist]
    check(not lost, "%d acked messages are not in history (seq, id): %s" % (len(lost), lost[:10]))
    renumbered = [(s, i, hist[s]) for s, i in sorted(by_seq.items()) if hist[s] != i]
    check(not renumbered, "%d acked seqs hold another message in history (seq, acked id, "
          "history id): %s" % (len(renumbered), renumbered[:10]))
    h = await reader.request({"type": "history", "room": room, "limit": 1})
    check(h.get("epoch") == epoch, "the room's epoch changed from %s to %s over the failovers"
          % (epoch, h.get("epoch")))
    note("history: %d messages, every one of the %d acks under its seq and id; epoch %s kept"
         % (len(msgs), len(by_seq), epoch))


def _sent_after(traffic, frame, t):
    """Whether a received message was sent (by one of `traffic`) after `t`."""
    body = frame.get("body")
    if not isinstance(body, dict):
        return False
    for tr in traffic:
        if tr.c.name == body.get("s"):
            sent = tr.sent.get("%s-%d" % (tr.c.name, body.get("i", -1)))
            return sent is not None and sent[0] >= t
    return False


if __name__ == "__main__":
    suite.main()
