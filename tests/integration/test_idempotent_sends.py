#!/usr/bin/python3
"""Idempotent sends and unknown outcomes (issue 15, item 4; protocol.md,
"Idempotent sends").

A `send` or `direct` may carry "idem": a key of the client's. Within
[broker] idem_window seconds (here WINDOW, short so that the test can see
it end), a repeat of the same key by the same sender in the same room (for
`direct`: to the same recipient) gets the first one's ack, same seq and
id, and nothing is stored or delivered again. Checked with the embedded
backplane (one node) and with Redis (nodes a and b), also across a forced
reconnect of the nodes' Redis links.

An `unavailable` whose outcome is unknown says "outcome":"unknown" and
carries the id the message would have had: node p reaches Redis through a
proxy that holds its command connection after the send, the link fails,
and the held bytes then reach Redis; the message is in history under that
id, and a retry with the same key gets its ack. The same for a `direct`:
delivered once, when released, and the retry gets its ack.

SPDX-License-Identifier: MIT
"""
import asyncio
import itertools
import json
import time

from confabtest import Client, check, note
from redistest import (DETECT_TIMEOUT, RECOVER_TIMEOUT, Cluster, HoldProxy, RedisServer,
                       RedisSuite, history_all, log_count, wait_health)

WINDOW = 4   # [broker] idem_window of every node here, seconds

suite = RedisSuite("test_idempotent_sends", watchdog=180)
single = suite.broker("single", broker={"allow_anonymous": True, "idem_window": WINDOW})
redis = RedisServer(suite.tmp)
proxy = HoldProxy(redis)
cluster = Cluster(suite, guests=("a", "b"), redis=redis, broker_keys={"idem_window": WINDOW})
held = Cluster(suite, guests=("p",), redis=redis, prefix=cluster.prefix,
               broker_keys={"idem_window": WINDOW},
               redis_keys={"port": proxy.port, "probe_interval_ms": 500,
                           "probe_timeout_ms": 1500})

_rooms = itertools.count(1)


def room(prefix="idem"):
    return "%s-%d" % (prefix, next(_rooms))


async def pair(port_s, port_r, r):
    """A sender and a receiver, both in room `r`."""
    s = await Client.connect(port_s, name="sender")
    rcv = await Client.connect(port_r, name="receiver")
    await s.join(r)
    await rcv.join(r)
    return s, rcv


async def send(c, r, body, idem=None):
    q = {"type": "send", "room": r, "body": body}
    if idem is not None:
        q["idem"] = idem
    a = await c.request(q)
    check(a.get("type") == "ack" and isinstance(a.get("seq"), int) and isinstance(a.get("id"), str),
          "%s: send %s -> %s" % (c.name, json.dumps(q), json.dumps(a)))
    return a


async def same_key_once(port_s, port_r, where):
    """The same key twice: one seq, one id, one stored message, one
    delivery; another key: another message."""
    r = room()
    s, rcv = await pair(port_s, port_r, r)
    near = await Client.connect(port_s, name="near")   # a member on the sender's node
    await near.join(r)
    first = await send(s, r, "hello", idem="k-1")
    again = await send(s, r, "hello", idem="k-1")
    check((again["seq"], again["id"], again["ts"]) == (first["seq"], first["id"], first["ts"]),
          "%s: the repeat's ack %s differs from the first %s" % (where, json.dumps(again),
                                                                json.dumps(first)))
    other = await send(s, r, "hello", idem="k-2")
    check(other["seq"] == first["seq"] + 1 and other["id"] != first["id"],
          "%s: another key got %s after %s" % (where, json.dumps(other), json.dumps(first)))
    for c in (rcv, near):
        m1 = await c.expect("message", room=r, seq=first["seq"])
        m2 = await c.expect("message", room=r, seq=other["seq"])
        check(m1["id"] == first["id"] and m2["id"] == other["id"], "%s: %s got %s, %s" % (
            where, c.name, json.dumps(m1), json.dumps(m2)))
    await asyncio.gather(rcv.expect_nothing(0.5, type="message"),
                         near.expect_nothing(0.5, type="message"))
    await near.close()
    msgs, _ = await history_all(rcv, r, 50)
    check([m["id"] for m in msgs] == [first["id"], other["id"]],
          "%s: history holds %r, want the two messages once each" % (
              where, [(m["seq"], m["id"]) for m in msgs]))
    return s, rcv, r, first


async def direct_once(s, rcv, where):
    q = {"type": "direct", "to": rcv.user, "body": "psst", "idem": "d-1"}
    a1 = await s.request(q)
    a2 = await s.request(q)
    check(a1.get("type") == "ack" and (a2.get("id"), a2.get("ts")) == (a1.get("id"), a1.get("ts")),
          "%s: direct twice with one key -> %s then %s" % (where, json.dumps(a1), json.dumps(a2)))
    d = await rcv.expect("direct", id=a1["id"])
    await rcv.expect_nothing(0.5, type="direct")
    note("%s: a direct sent twice with one key: one ack id, one delivery (%s)" % (where, d["id"]))


async def window_ends(s, rcv, r, first, where):
    """After WINDOW seconds the key is forgotten: the same key is a new message."""
    left = first["_at"] + WINDOW + 0.5 - time.monotonic()
    if left > 0:
        await asyncio.sleep(left)
    late = await send(s, r, "hello", idem="k-1")
    check(late["id"] != first["id"] and late["seq"] > first["seq"],
          "%s: %d s after the first, the key still gives %s" % (where, WINDOW, json.dumps(late)))
    await rcv.expect("message", room=r, id=late["id"])
    note("%s: after the window the key makes a new message (seq %d)" % (where, late["seq"]))


@suite.test
async def embedded_the_same_key_is_one_message_until_the_window_ends():
    port = single.start().port
    s, rcv, r, first = await same_key_once(port, port, "embedded")
    first["_at"] = time.monotonic() - 0.2
    await direct_once(s, rcv, "embedded")
    await window_ends(s, rcv, r, first, "embedded")


@suite.test
async def redis_the_same_key_is_one_message_across_nodes_and_reconnects():
    await asyncio.get_running_loop().run_in_executor(None, cluster.start)
    t0 = time.monotonic()
    s, rcv, r, first = await same_key_once(cluster["a"].port, cluster["b"].port, "redis")
    first["_at"] = t0
    await direct_once(s, rcv, "redis")
    # every node's command connection is killed: they reconnect and reconcile
    downs = log_count(cluster["a"], "backplane down")
    killed = redis.cli("CLIENT", "KILL", "TYPE", "normal")
    note("CLIENT KILL TYPE normal: %s connections" % killed)
    for _ in range(100):
        if log_count(cluster["a"], "backplane down") > downs:
            break
        await asyncio.sleep(0.05)
    check(log_count(cluster["a"], "backplane down") > downs, "a did not see its link killed")
    await wait_health([cluster["a"], cluster["b"]], 200, RECOVER_TIMEOUT, "after CLIENT KILL")
    for _ in range(100):
        a = await s.request({"type": "send", "room": r, "body": "hello", "idem": "k-1"})
        if a.get("code") != "unavailable":
            break
        await asyncio.sleep(0.05)
    check(a.get("type") == "ack" and (a["seq"], a["id"]) == (first["seq"], first["id"]),
          "redis: after the reconnect the key gives %s, want the first ack %s" % (
              json.dumps(a), json.dumps(first)))
    await rcv.expect_nothing(0.5, type="message")
    check(time.monotonic() - t0 < WINDOW, "the reconnect took longer than the window (%d s)"
          % WINDOW)
    await window_ends(s, rcv, r, first, "redis")


@suite.test
async def a_send_whose_answer_is_lost_says_outcome_unknown_with_the_id_history_has():
    await proxy.start()
    try:
        await asyncio.get_running_loop().run_in_executor(None, cluster.start)
        await asyncio.get_running_loop().run_in_executor(None, held.start)
        r = room("unknown")
        s, rcv = await pair(held["p"].port, cluster["b"].port, r)
        n = proxy.hold_commands()
        check(n == 1, "the proxy holds %d command connections of p, want 1" % n)
        err = await s.request({"type": "send", "room": r, "body": "maybe", "idem": "u-1",
                               "ref": "lost"}, timeout=DETECT_TIMEOUT + 2)
        check(any(l.held and b"u-1" in l.held for l in proxy.links),
              "the send never reached the held connection")
        check(err.get("ref") == "lost" and err.get("type") == "error"
              and err.get("code") == "unavailable" and err.get("outcome") == "unknown"
              and isinstance(err.get("id"), str) and err["id"],
              "the lost send -> %s, want unavailable with outcome unknown and an id"
              % json.dumps(err))
        note("the lost send: %s" % json.dumps(err))
        await wait_health([held["p"]], 200, RECOVER_TIMEOUT, "p after the held link")
        sent = await proxy.release(settle=0.5)
        check(sent > 0, "nothing held to release")
        m = await rcv.expect("message", room=r, id=err["id"])
        msgs, _ = await history_all(rcv, r, 50)
        check([x["id"] for x in msgs] == [err["id"]],
              "history holds %r, want the message %s once" % ([x["id"] for x in msgs], err["id"]))
        a = await send(s, r, "maybe", idem="u-1")
        check((a["seq"], a["id"]) == (m["seq"], err["id"]),
              "the retry with the same key -> %s, want seq %d id %s" % (json.dumps(a), m["seq"],
                                                                       err["id"]))
        await rcv.expect_nothing(0.5, type="message")
        note("released to Redis, the message is stored under that id (seq %d); the retry "
             "with the same key got its ack" % m["seq"])

        # the same for a direct message
        n = proxy.hold_commands()
        check(n == 1, "the proxy holds %d command connections of p, want 1" % n)
        q = {"type": "direct", "to": rcv.user, "body": "maybe", "idem": "u-2", "ref": "lost-d"}
        err = await s.request(q, timeout=DETECT_TIMEOUT + 2)
        check(err.get("code") == "unavailable" and err.get("outcome") == "unknown"
              and isinstance(err.get("id"), str) and err["id"],
              "the lost direct -> %s, want unavailable with outcome unknown and an id"
              % json.dumps(err))
        await wait_health([held["p"]], 200, RECOVER_TIMEOUT, "p after the second held link")
        check(await proxy.release(settle=0.5) > 0, "nothing held to release")
        await rcv.expect("direct", id=err["id"])
        del q["ref"]
        a = await s.request(q)
        check(a.get("type") == "ack" and a.get("id") == err["id"],
              "the direct's retry -> %s, want the ack of %s" % (json.dumps(a), err["id"]))
        await rcv.expect_nothing(0.5, type="direct")
        note("a lost direct: outcome unknown with id %s, delivered once when released, the "
             "retry got its ack" % err["id"])
    finally:
        await proxy.close()


if __name__ == "__main__":
    suite.main()
