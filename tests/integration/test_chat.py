#!/usr/bin/python3
"""Two users chat in a room and see each other as members — what two
browser tabs on the chat page do.

SPDX-License-Identifier: MIT
"""
import asyncio
import json

from confabtest import Suite, Client, check, note

suite = Suite("test_chat", watchdog=180)
node = suite.broker("chat", broker={"node_id": "chat-node"})


async def two_users_in_lobby():
    port = node.start().port
    a = await Client.connect(port, name="A")
    b = await Client.connect(port, name="B")
    check(a.user != b.user, "two tabs got the same user %r" % a.user)
    return a, b


@suite.test
async def two_users_see_each_other_as_members():
    """A joins lobby, then B: A sees B join, both see both in presence."""
    a, b = await two_users_in_lobby()
    await a.join("lobby")
    await b.join("lobby")
    ev = await a.expect("member", room="lobby", user=b.user)
    check(ev.get("event") == "join", "A saw %s" % json.dumps(ev))
    want = sorted([a.user, b.user])
    for x in (a, b):
        users = await x.presence("lobby")
        check(users == want, "%s: presence %r, want %r" % (x.name, users, want))
    note("A and B (%s, %s) see each other in lobby" % (a.user, b.user))


def check_conversation(a, b, sent, received, first_seq):
    """sent[X]: (seq, body) of X's acks; received[X]: the message frames X
    got. Each side saw the other's messages, in seq order, with the seqs
    of the sender's acks; together the seqs are first_seq.. without gaps."""
    for me, other in ((a, b), (b, a)):
        got = received[me.name]
        froms = {m.get("from") for m in got}
        check(froms <= {other.user}, "%s got messages from %r, want only %r" % (me.name, froms, other.user))
        seqs = [m.get("seq") for m in got]
        check(seqs == sorted(seqs), "%s saw %s's messages out of seq order: %r" % (me.name, other.name, seqs))
        want = sent[other.name]
        check(seqs == [s for s, _ in want],
              "%s saw seqs %r of %s's messages; %s's acks say %r" % (me.name, seqs, other.name, other.name,
                                                                   [s for s, _ in want]))
        check([m.get("body") for m in got] == [body for _, body in want],
              "%s saw other bodies than %s sent" % (me.name, other.name))
    every = sorted(s for side in sent.values() for s, _ in side)
    n = len(every)
    check(every == list(range(first_seq, first_seq + n)),
          "the room's seqs are not %d..%d without gaps: %r" % (first_seq, first_seq + n - 1, every))


@suite.test
async def a_hundred_alternating_messages_arrive_in_seq_order():
    """A and B take turns, 100 messages: each sees the other's in order, seq 1..100."""
    a, b = await two_users_in_lobby()
    room = "lobby-turns"
    await a.join(room)
    await b.join(room)
    await a.expect("member", room=room, user=b.user)
    sent = {"A": [], "B": []}
    received = {"A": [], "B": []}
    for i in range(100):
        me, other = (a, b) if i % 2 == 0 else (b, a)
        body = {"n": i, "text": "message %d from %s" % (i, me.name)}
        ack = await me.say(room, body)
        sent[me.name].append((ack["seq"], body))
        m = await other.expect("message", room=room)
        check(m.get("seq") == ack["seq"] and m.get("body") == body,
              "%s: got %s, want seq %d %s" % (other.name, json.dumps(m)[:200], ack["seq"], body))
        received[other.name].append(m)
    check_conversation(a, b, sent, received, 1)
    note("100 alternating messages, seq 1..100, each side in order")


@suite.test
async def both_users_typing_at_once_still_see_one_order():
    """A and B each send 50 without waiting: one gapless seq order, seen in order by both."""
    a, b = await two_users_in_lobby()
    room = "lobby-burst"
    await a.join(room)
    await b.join(room)
    await a.expect("member", room=room, user=b.user)

    async def burst(me):
        refs = []
        for i in range(50):
            ref = "%s-%d" % (me.name, i)
            await me.send({"type": "send", "room": room, "body": "%s says %d" % (me.name, i), "ref": ref})
            refs.append(ref)
        return refs

    await asyncio.gather(burst(a), burst(b))
    sent = {}
    for me in (a, b):
        acks = []
        for i in range(50):
            ack = await me.expect("ack", ref="%s-%d" % (me.name, i))
            acks.append((ack["seq"], "%s says %d" % (me.name, i)))
        check([s for s, _ in acks] == sorted(s for s, _ in acks),
              "%s's acks are not in seq order: %r" % (me.name, [s for s, _ in acks]))
        sent[me.name] = acks
    received = {}
    for me in (a, b):
        received[me.name] = [await me.expect("message", room=room) for _ in range(50)]
    check_conversation(a, b, sent, received, 1)
    await a.expect_nothing(type="message")
    await b.expect_nothing(type="message")
    note("100 messages sent concurrently, seq 1..100, each side in order")


if __name__ == "__main__":
    suite.main()
