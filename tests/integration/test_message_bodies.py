#!/usr/bin/python3
"""A message is never amplified (issue 14, item 6): the body every member
gets, live and from history, is the sender's own bytes, so that
max_message_bytes bounds what everybody receives (plus the envelope).
Numbers keep their spelling: 0.1 arrives as 0.1, not 0.10000000000000001,
and a 64 KB frame full of numbers is delivered no larger than it was sent.

Checked on the raw text of the frames (a JSON parser on the client side
would hide a re-encoding), with the embedded backplane (one node) and with
Redis (sender and receiver on two nodes, so the body crosses pub/sub, and
history comes from Redis).

SPDX-License-Identifier: MIT
"""
import asyncio
import itertools
import json
import time

from confabtest import Client, RECV_TIMEOUT, TestFailure, check, note
from redistest import Cluster, RedisSuite

suite = RedisSuite("test_message_bodies", watchdog=120)
single = suite.broker("single")
cluster = Cluster(suite, guests=("a", "b"))

# The envelope a body gets around it: type, room, seq, id, from, ts, and
# for history the reply's own fields. Names are at most 64 bytes.
ENVELOPE = 400

_rooms = itertools.count(1)


def room():
    return "bodies-%d" % next(_rooms)


async def raw_frame(c, pred, what):
    """The raw text of the next frame of c that satisfies pred(parsed)."""
    deadline = time.monotonic() + RECV_TIMEOUT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("%s: no %s within %.1fs" % (c.name, what, RECV_TIMEOUT))
        try:
            text = await asyncio.wait_for(c.ws.recv(), left)
        except asyncio.TimeoutError:
            continue
        if pred(json.loads(text)):
            return text


def numbers_frame(r, limit=65536):
    """A send frame of `limit` bytes at most whose body is an array of
    numbers that a re-encoding would lengthen. Returns (frame, body)."""
    head = '{"type":"send","room":"%s","ref":"big","body":[' % r
    spellings = itertools.cycle(["0.1", "0.2", "0.3", "1.1", "2.675", "1e-7", "-0.7"])
    parts = []
    size = len(head) + 2
    while True:
        s = next(spellings)
        if size + len(s) + 1 > limit:
            break
        parts.append(s)
        size += len(s) + 1
    body = "[" + ",".join(parts) + "]"
    frame = head + ",".join(parts) + "]}"
    check(len(frame) <= limit, "the test's frame is %d bytes" % len(frame))
    return frame, body


async def check_bodies(sender, receiver, what):
    r = room()
    await sender.join(r)
    await receiver.join(r)

    # 0.1 stays 0.1
    await sender.send_raw('{"type":"send","room":"%s","body":0.1,"ref":"tenth"}' % r)
    text = await raw_frame(receiver, lambda f: f.get("type") == "message", "message")
    note("%s: live message %s" % (what, text))
    check('"body":0.1,' in text, "%s: 0.1 was delivered as %s" % (what, text))
    ack = await sender.expect("ack", ref="tenth")

    # 64 KB of numbers, live
    frame, body = numbers_frame(r)
    await sender.send_raw(frame)
    text = await raw_frame(receiver, lambda f: f.get("type") == "message", "message")
    note("%s: sent a %d-byte frame (body %d bytes); the member got %d bytes"
         % (what, len(frame), len(body), len(text)))
    check('"body":' + body + ',' in text,
          "%s: the delivered body is not the sender's bytes (%d bytes delivered)" % (what, len(text)))
    check(len(text) <= len(frame) + ENVELOPE,
          "%s: %d bytes delivered for a %d-byte frame" % (what, len(text), len(frame)))
    await sender.expect("ack", ref="big")

    # and from history
    await receiver.send({"type": "history", "room": r, "since": ack["seq"] - 1, "ref": "h"})
    text = await raw_frame(receiver, lambda f: f.get("ref") == "h", "history reply")
    h = json.loads(text)
    check(h.get("type") == "history" and len(h.get("messages", [])) == 2,
          "%s: history -> %s" % (what, text[:300]))
    note("%s: history of both: %d bytes" % (what, len(text)))
    check('"body":0.1,' in text, "%s: 0.1 comes back from history as %s"
          % (what, json.dumps(h["messages"][0])[:200]))
    check('"body":' + body + ',' in text,
          "%s: the body from history is not the sender's bytes" % what)
    check(len(text) <= len(frame) + 2 * ENVELOPE,
          "%s: history of the 64 KB frame is %d bytes" % (what, len(text)))


@suite.test
async def bodies_are_passed_on_as_sent_by_the_embedded_backplane():
    """One node: 0.1 and a 64 KB frame of numbers, live and from history."""
    port = single.start().port
    sender = await Client.connect(port, name="sender")
    receiver = await Client.connect(port, name="receiver")
    await check_bodies(sender, receiver, "embedded")


@suite.test
async def bodies_are_passed_on_as_sent_through_redis():
    """Two nodes sharing Redis: the same, across pub/sub and Redis history."""
    cluster.start()
    sender = await Client.connect(cluster["a"].port, name="sender@a")
    receiver = await Client.connect(cluster["b"].port, name="receiver@b")
    await check_bodies(sender, receiver, "redis")


if __name__ == "__main__":
    suite.main()
