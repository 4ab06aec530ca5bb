#!/usr/bin/python3
"""The redis backplane (issue 3) delivers across nodes: room messages reach
the members on every node in one seq order, which is also the order of
history; direct messages reach every session of a user on every node.

One redis-server and five confabd nodes sharing it (history_size = 1000):
  a, b, c   anonymous clients (guest-XXXXXXXX, a new user per connection)
  d, e      fx_good_auth admits every client as "alice": one user with
            sessions on two nodes

SPDX-License-Identifier: MIT
"""
import asyncio
import itertools
import json

from confabtest import Client, RECV_TIMEOUT, SCALE, check, note
from redistest import Cluster, RedisSuite, collect, history_all, seq_problems

HISTORY_SIZE = 1000
SENDERS = 3
PER_SENDER = 300

suite = RedisSuite("test_redis_delivery", watchdog=240)
# The 3 x 300 burst sends as fast as the clients can: lift the per-session
# rate limit (50 messages a second by default) that would refuse most of it.
cluster = Cluster(suite, guests=("a", "b", "c"), alices=("d", "e"), history_size=HISTORY_SIZE,
                  broker_keys={"rate_limit": 0})

_rooms = itertools.count(1)


def room(prefix="room"):
    """A room name no other check uses."""
    return "%s-%d" % (prefix, next(_rooms))


def dumps(x):
    return json.dumps(x, sort_keys=True)


async def connect(*specs):
    """Clients named NAME on node NODE, for each "NAME@NODE"."""
    cluster.start()
    out = []
    for spec in specs:
        name, node = spec.split("@")
        out.append(await Client.connect(cluster[node].port, name=spec))
    return out


async def join_all(r, clients):
    for c in clients:
        await c.join(r)


def check_message(c, m, ack, sender, body):
    for k, want in (("room", ack["room"]), ("seq", ack["seq"]), ("id", ack["id"]),
                    ("from", sender.user), ("ts", ack["ts"])):
        check(k in m and m[k] == want, "%s: message %s is %r, want %r (the sender's ack: %s)"
              % (c.name, k, m.get(k), want, json.dumps(ack)))
    check(dumps(m.get("body")) == dumps(body), "%s: body arrived as %s, want %s"
          % (c.name, dumps(m.get("body")), dumps(body)))


# ---- room messages -------------------------------------------------------

@suite.test
async def a_direct_message_right_after_welcome_reaches_the_new_user():
    """A guest's `welcome` means it can be reached: 30 times, a guest
    connects on c and, the moment its welcome arrives, a guest on a sends it
    a direct message: acked (not `offline`) and delivered."""
    sender, = await connect("dsender@a")
    rounds = 30
    for i in range(rounds):
        target, = await connect("target%d@c" % i)
        ack = await sender.request({"type": "direct", "to": target.user, "body": {"n": i}})
        check(ack.get("type") == "ack", "round %d: direct right after welcome -> %s"
              % (i, dumps(ack)))
        d = await target.expect("direct")
        check(d.get("body") == {"n": i}, "round %d: got %s" % (i, dumps(d)))
        await target.close()
    note("%d of %d direct messages sent right after welcome were acked and delivered"
         % (rounds, rounds))


@suite.test
async def a_message_sent_right_after_joined_reaches_the_new_member():
    """`joined` means the node is subscribed: 40 times, a guest on b joins a
    fresh room and, the moment its `joined` arrives, a member on a sends;
    the newcomer gets every one of those messages."""
    sender, = await connect("sender@a")
    rounds = 40
    for i in range(rounds):
        r = room("fresh")
        await sender.join(r)
        newcomer, = await connect("new%d@b" % i)
        await newcomer.join(r)
        ack = await sender.say(r, "right after joined %d" % i)
        m = await newcomer.expect("message", room=r)
        check(m.get("seq") == ack["seq"], "new%d: got seq %r, want %r" % (i, m.get("seq"), ack["seq"]))
        await newcomer.close()
    note("%d of %d messages sent right after `joined` reached the new member" % (rounds, rounds))


@suite.test
async def a_message_sent_on_a_reaches_the_members_on_a_b_and_c():
    """A guest on node a sends: the other members on a, b and c (and alice on
    d and e) each get the message once, with the ack's seq, id and ts; the
    sender gets the ack and no copy."""
    sender, a2, b1, c1, d1, e1 = await connect("sender@a", "a2@a", "b1@b", "c1@c", "d1@d", "e1@e")
    r = room()
    members = [a2, b1, c1, d1, e1]
    await join_all(r, [sender] + members)
    ack = await sender.say(r, {"text": "hello from a"})
    note("ack: %s" % json.dumps(ack))
    check(ack.get("seq") == 1, "the first message of a new room has seq %r, want 1" % ack.get("seq"))
    for c in members:
        m = await c.expect("message", room=r)
        check_message(c, m, ack, sender, {"text": "hello from a"})
    note("a2 (node a), b1 (b), c1 (c), d1 (d), e1 (e) got it")
    await sender.expect_nothing(type="message")
    for c in members:
        await c.expect_nothing(0.2, type="message")
    note("the sender got no copy, nobody got it twice")


@suite.test
async def the_senders_other_sessions_on_every_node_get_it_and_the_sender_only_the_ack():
    """alice sends from node d: her other session on d and her session on
    node e get the message, as do the guests on a, b and c; the sending
    session gets only the ack."""
    alice1, alice2, alice3, ga, gb, gc = await connect("alice1@d", "alice2@d", "alice3@e",
                                                       "ga@a", "gb@b", "gc@c")
    for c in (alice1, alice2, alice3):
        check(c.user == "alice", "%s: fx_good_auth admits as alice, welcome says %r" % (c.name, c.user))
    check(len({alice1.session, alice2.session, alice3.session}) == 3,
          "alice's three connections do not have three sessions: %r"
          % ([alice1.session, alice2.session, alice3.session],))
    r = room()
    await join_all(r, [alice1, alice2, alice3, ga, gb, gc])
    ack = await alice1.say(r, "from alice on d")
    for c in (alice2, alice3, ga, gb, gc):
        m = await c.expect("message", room=r)
        check_message(c, m, ack, alice1, "from alice on d")
    note("alice2 (same node), alice3 (node e) and the guests on a, b, c got it")
    await alice1.expect_nothing(type="message")
    for c in (alice2, alice3):
        await c.expect_nothing(0.2, type="message")
    note("alice1, the sending session, got only the ack")


@suite.test
async def three_senders_on_three_nodes_900_messages_every_member_sees_seq_1_to_900_in_order():
    """Senders on a, b and c send 300 messages each into one room at once,
    without waiting for acks: the acks hold seq 1..900 once each; every
    member on every node receives all 900 (a sender: the 600 of the others)
    in seq order, without gaps or duplicates, with the sender's id, from and
    body; history (paged) returns the same 900 ids in the same order, on
    every node."""
    senders = await connect("sender-a@a", "sender-b@b", "sender-c@c")
    listeners = await connect("listen-a@a", "listen-b@b", "listen-c@c", "alice-d@d", "alice-e@e")
    r = room("burst")
    await join_all(r, senders + listeners)
    total = SENDERS * PER_SENDER

    async def send_burst(c):
        refs = []
        for i in range(PER_SENDER):
            ref = "%s-%d" % (c.name, i)
            refs.append(ref)
            await c.send({"type": "send", "room": r, "ref": ref,
                          "body": {"sender": c.name, "i": i}})
        return await collect(c, r, total - PER_SENDER, refs)

    results = await asyncio.wait_for(
        asyncio.gather(*[send_burst(c) for c in senders],
                       *[collect(c, r, total) for c in listeners]),
        timeout=120.0 * SCALE)
    sent, heard = results[:SENDERS], results[SENDERS:]

    # what each sender's acks say
    by_seq = {}   # seq -> (id, from, body)
    own = {}      # sender name -> its ack seqs
    for c, (_, replies) in zip(senders, sent):
        own[c.name] = []
        for i in range(PER_SENDER):
            a = replies["%s-%d" % (c.name, i)]
            check(a.get("type") == "ack" and a.get("room") == r and isinstance(a.get("seq"), int),
                  "%s: message %d was answered %s, want an ack" % (c.name, i, json.dumps(a)))
            check(a["seq"] not in by_seq, "seq %d was acked twice: to %s and to %s"
                  % (a["seq"], by_seq.get(a["seq"], ("?",))[0], a["id"]))
            by_seq[a["seq"]] = (a["id"], c.user, {"sender": c.name, "i": i})
            own[c.name].append(a["seq"])
    problem = seq_problems(sorted(by_seq), list(range(1, total + 1)))
    check(problem is None, "the acks of the %d messages do not hold seq 1..%d: %s"
          % (total, total, problem))
    note("the 900 acks hold seq 1..900 once each")

    def check_stream(c, messages, want):
        seqs = [m.get("seq") for m in messages]
        problem = seq_problems(seqs, want)
        check(problem is None, "%s (node %s) did not receive seq %d..%d in order: %s"
              % (c.name, c.name.split("-")[-1], want[0], want[-1], problem))
        for m in messages:
            mid, frm, body = by_seq[m["seq"]]
            check(m.get("id") == mid and m.get("from") == frm and dumps(m.get("body")) == dumps(body),
                  "%s: message seq %d is %s, want id %s from %s body %s"
                  % (c.name, m["seq"], json.dumps(m), mid, frm, dumps(body)))

    for c, (messages, _) in zip(listeners, heard):
        check_stream(c, messages, list(range(1, total + 1)))
    note("every listener (a, b, c, alice on d and e) got seq 1..900 in order, once each")
    for c, (messages, _) in zip(senders, sent):
        mine = set(own[c.name])
        check_stream(c, messages, [s for s in range(1, total + 1) if s not in mine])
    note("every sender got the other 600 in seq order and no copy of its own")
    await asyncio.gather(*[c.expect_nothing(type="message") for c in senders + listeners])

    want_ids = [by_seq[s][0] for s in range(1, total + 1)]
    for c in listeners:
        msgs, truncs = await history_all(c, r, HISTORY_SIZE)
        seqs = [m.get("seq") for m in msgs]
        problem = seq_problems(seqs, list(range(1, total + 1)))
        check(problem is None, "history on node %s: %s" % (c.name.split("-")[-1], problem))
        check([m.get("id") for m in msgs] == want_ids,
              "history on node %s: the ids differ from the acks' ids" % c.name.split("-")[-1])
        check(not any(truncs), "history on node %s says truncated (%r) with %d of %d kept"
              % (c.name.split("-")[-1], truncs, total, HISTORY_SIZE))
    note("history on a, b, c, d and e returns the same 900 ids in seq order, truncated false")


# ---- direct messages -----------------------------------------------------

@suite.test
async def a_direct_message_reaches_a_user_on_another_node():
    """A guest on a sends a direct to a guest on c: c's guest gets it once
    with the ack's id and ts; the sender gets only the ack; nobody else gets it."""
    ga, gb, gc, d1 = await connect("ga@a", "gb@b", "gc@c", "alice@d")
    ack = await ga.request({"type": "direct", "to": gc.user, "body": {"hi": "c"}})
    check(ack.get("type") == "ack" and "id" in ack,
          "direct from node a to %s on node c -> %s, want an ack" % (gc.user, json.dumps(ack)))
    d = await gc.expect("direct")
    for k, want in (("id", ack["id"]), ("from", ga.user), ("to", gc.user),
                    ("body", {"hi": "c"}), ("ts", ack.get("ts"))):
        check(k in d and dumps(d[k]) == dumps(want), "the direct's %s is %r, want %r"
              % (k, d.get(k), want))
    note("gc on node c got %s" % json.dumps(d))
    await gc.expect_nothing(0.5, type="direct")
    await ga.expect_nothing(0.2, type="direct")
    await gb.expect_nothing(0.2, type="direct")
    await d1.expect_nothing(0.2, type="direct")


@suite.test
async def a_direct_message_reaches_every_session_of_the_user_on_every_node():
    """A direct to alice from node a reaches her two sessions on d and her
    session on e, once each; alice directing herself from d reaches her
    other sessions on d and e, and the sending session gets only the ack."""
    ga, alice1, alice2, alice3 = await connect("ga@a", "alice1@d", "alice2@d", "alice3@e")
    ack = await ga.request({"type": "direct", "to": "alice", "body": "to every alice"})
    check(ack.get("type") == "ack", "direct to alice -> %s, want an ack" % json.dumps(ack))
    for c in (alice1, alice2, alice3):
        d = await c.expect("direct", id=ack["id"])
        check(d.get("from") == ga.user and d.get("to") == "alice" and d.get("body") == "to every alice",
              "%s got %s" % (c.name, json.dumps(d)))
        await c.expect_nothing(0.3, type="direct")
    note("alice1 and alice2 (node d) and alice3 (node e) got it once each")

    ack = await alice1.request({"type": "direct", "to": "alice", "body": "sync my devices"})
    check(ack.get("type") == "ack", "alice directing herself -> %s, want an ack" % json.dumps(ack))
    for c in (alice2, alice3):
        d = await c.expect("direct", id=ack["id"])
        check(d.get("from") == "alice" and d.get("body") == "sync my devices",
              "%s got %s" % (c.name, json.dumps(d)))
    await alice1.expect_nothing(type="direct")
    await ga.expect_nothing(0.2, type="direct")
    note("alice2 and alice3 got alice1's direct to herself; alice1 only the ack")


@suite.test
async def a_direct_message_to_a_user_without_a_session_anywhere_is_offline():
    """direct to a user no node knows -> error offline; so is a direct to a
    guest whose only session (on another node) has closed."""
    ga, gc = await connect("ga@a", "gc@c")
    await ga.error({"type": "direct", "to": "nobody-here", "body": "hello?"}, "offline")
    await ga.error({"type": "direct", "to": "guest-00000000", "body": 1}, "offline")
    note("unknown users -> offline")
    gone = gc.user
    await gc.close()
    deadline = asyncio.get_running_loop().time() + RECV_TIMEOUT
    while True:
        r = await ga.request({"type": "direct", "to": gone, "body": "still there?"})
        if r.get("type") == "error" and r.get("code") == "offline":
            break
        check(r.get("type") == "ack", "direct to %s while it closes -> %s" % (gone, json.dumps(r)))
        check(asyncio.get_running_loop().time() < deadline,
              "direct to %s is still acked %.0fs after its only session (on node c) closed, "
              "want offline" % (gone, RECV_TIMEOUT))
        await asyncio.sleep(0.1)
    note("%s, whose only session on node c closed, is offline" % gone)


if __name__ == "__main__":
    suite.main()
