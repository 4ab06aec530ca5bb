#!/usr/bin/python3
"""Protocol v1 (docs/protocol.md) on one node: every request type, every
error code that applies on one node, with several real WebSocket clients.

Two brokers:
  guests  anonymous clients (guest- and 16 hex digits), max_message_bytes = 1024,
          history_size = 5
  alice   fx_good_auth admits every connection as "alice", so one user
          has several sessions; default history_size (100)

SPDX-License-Identifier: MIT
"""
import itertools
import json
import re

import websockets.exceptions

from confabtest import (Suite, Client, WS_SO, RECV_TIMEOUT, SCALE, fixture, check, note, now_ms)

suite = Suite("test_protocol", watchdog=240)
guests = suite.broker("guests", broker={"node_id": "node-g", "allow_anonymous": True,
                                        "max_message_bytes": 1024, "history_size": 5})
alices = suite.broker("alices", broker={"node_id": "node-a",
                                        "plugins": [WS_SO, fixture("fx_good_auth")]},
                      sections={"fx_good_auth": {"user": "alice"}})

down = suite.broker("down", broker={"node_id": "node-d",
                                    "plugins": [WS_SO, fixture("fx_backplane")]})

_rooms = itertools.count(1)


def room(prefix="room"):
    """A room name no other check uses."""
    return "%s-%d" % (prefix, next(_rooms))


def dumps(x):
    """Canonical JSON, so that true and 1 or 1 and 1.0 never compare equal."""
    return json.dumps(x, sort_keys=True)


async def clients(broker, *names):
    port = broker.start().port
    return [await Client.connect(port, name=n) for n in names]


def check_ts(ts, what):
    check(isinstance(ts, int) and not isinstance(ts, bool), "%s: ts %r is not an integer" % (what, ts))
    check(abs(ts - now_ms()) < 10000 * SCALE,
          "%s: ts %r is not within 10s of now (%d ms since the epoch)" % (what, ts, now_ms()))


# ---- welcome -------------------------------------------------------------

@suite.test
async def welcome_names_session_guest_user_node_and_protocol():
    """On open: {type: welcome, session, user: guest- and 16 hex digits, node: node_id, protocol: 1};
    two connections get different sessions and different guest users."""
    a, b = await clients(guests, "A", "B")
    for c in (a, b):
        w = c.welcome
        note("%s welcome: %s" % (c.name, json.dumps(w)))
        check(isinstance(w.get("session"), str) and w["session"],
              "session is not a non-empty string: %r" % w)
        check(isinstance(w.get("user"), str) and re.fullmatch(r"guest-[0-9a-f]{16}", w["user"]),
              "user is not guest- and 16 lowercase hex digits: %r" % w)
        check(w.get("node") == "node-g", "node is not the configured node_id node-g: %r" % w)
        check(w.get("protocol") == 1 and type(w.get("protocol")) is int, "protocol is not 1: %r" % w)
    check(a.session != b.session, "two connections share session %r" % a.session)
    check(a.user != b.user, "two anonymous connections share user %r" % a.user)


# ---- join / leave / member events ----------------------------------------

@suite.test
async def join_answers_joined_and_tells_the_others_once():
    """join -> joined; the others get member join; joining again -> joined
    again, and no second member event."""
    a, b = await clients(guests, "A", "B")
    r = room()
    await a.join(r)
    await b.join(r)
    ev = await a.expect("member", room=r, user=b.user)
    check(ev.get("event") == "join", "A: member event is not a join: %s" % json.dumps(ev))
    await b.expect_nothing(type="member")
    note("A saw %s" % json.dumps(ev))
    await b.join(r)
    await a.expect_nothing(type="member")
    note("second join by B: joined again, no second member event for A")


@suite.test
async def leave_answers_left_and_tells_the_others():
    """leave -> left; the others get member leave; the leaver is no member any more."""
    a, b = await clients(guests, "A", "B")
    r = room()
    await a.join(r)
    await b.join(r)
    await a.expect("member", room=r, user=b.user, event="join")
    await b.leave(r)
    await a.expect("member", room=r, user=b.user, event="leave")
    check(await a.presence(r) == [a.user], "presence still lists B after B left")
    await b.error({"type": "send", "room": r, "body": "still here?"}, "not_member")
    await a.expect_nothing(type="message")


@suite.test
async def closing_a_connection_leaves_every_room():
    """When B's connection closes, members of each of B's rooms get member leave."""
    a, b, c = await clients(guests, "A", "B", "C")
    r1, r2 = room(), room()
    await a.join(r1)
    await c.join(r2)
    await b.join(r1)
    await b.join(r2)
    await a.expect("member", room=r1, user=b.user, event="join")
    await c.expect("member", room=r2, user=b.user, event="join")
    await b.close()
    await a.expect("member", room=r1, user=b.user, event="leave")
    await c.expect("member", room=r2, user=b.user, event="leave")
    check(await a.presence(r1) == [a.user], "B still present in %s after closing" % r1)
    check(await c.presence(r2) == [c.user], "B still present in %s after closing" % r2)


# ---- send / message / ack ------------------------------------------------

@suite.test
async def send_acks_the_sender_and_delivers_to_every_other_member():
    """send -> ack {room, seq, id, ts} to the sender; message {room, seq, id,
    from, body, ts} with the same seq/id/ts to the others; no copy to the sender."""
    a, b, c = await clients(guests, "A", "B", "C")
    r = room()
    for x in (a, b, c):
        await x.join(r)
    ack = await a.say(r, "hello")
    note("ack: %s" % json.dumps(ack))
    check(ack.get("seq") == 1, "first message of a room has seq %r, want 1" % ack.get("seq"))
    check("id" in ack and ack["id"] is not None, "ack without id: %s" % json.dumps(ack))
    check_ts(ack.get("ts"), "ack")
    for x in (b, c):
        m = await x.expect("message", room=r)
        note("%s got: %s" % (x.name, json.dumps(m)))
        for k, want in (("seq", ack["seq"]), ("id", ack["id"]), ("from", a.user),
                        ("body", "hello"), ("ts", ack["ts"])):
            check(k in m and m[k] == want, "%s: message %s is %r, want %r" % (x.name, k, m.get(k), want))
    await a.expect_nothing(type="message")
    note("the sender got no copy")


@suite.test
async def bodies_of_every_json_type_arrive_unchanged():
    """A body may be any JSON value: string, number, object, array, null, true, false."""
    a, b = await clients(guests, "A", "B")
    r = room()
    await a.join(r)
    await b.join(r)
    bodies = ["text", "", "h\u00e9llo \u2603 \"quoted\" \\ \n tab\t", 0, -7, 42, 3.5, 1e300,
              9007199254740993, {"k": "v", "n": [1, {"deep": None}]}, {}, [1, "two", None, True],
              [], None, True, False]
    for body in bodies:
        await a.say(r, body)
        m = await b.expect("message", room=r)
        check(dumps(m.get("body")) == dumps(body),
              "body %s arrived as %s" % (dumps(body), dumps(m.get("body"))))
    note("%d bodies of every JSON type arrived unchanged" % len(bodies))


@suite.test
async def seq_counts_from_one_without_gaps_in_each_room():
    """seq is per room, from 1, without gaps; ids are unique; members see seq order."""
    a, b = await clients(guests, "A", "B")
    r1, r2 = room(), room()
    for x in (a, b):
        await x.join(r1)
        await x.join(r2)
    ids = []
    seqs = {r1: [], r2: []}
    for i, r in enumerate([r1, r1, r2, r1, r2, r1, r1, r2]):
        ack = await a.say(r, i)
        seqs[r].append(ack["seq"])
        ids.append(ack["id"])
    check(seqs[r1] == [1, 2, 3, 4, 5], "%s acks have seq %r, want 1..5" % (r1, seqs[r1]))
    check(seqs[r2] == [1, 2, 3], "%s acks have seq %r, want 1..3" % (r2, seqs[r2]))
    check(len(set(map(dumps, ids))) == len(ids), "ids are not unique: %r" % ids)
    got = {r1: [], r2: []}
    for _ in range(8):
        m = await b.expect("message")
        got[m["room"]].append(m["seq"])
    check(got == {r1: [1, 2, 3, 4, 5], r2: [1, 2, 3]}, "B saw seqs %r" % got)
    note("acks %r, B saw %r" % (seqs, got))


@suite.test
async def sending_to_a_room_not_joined_is_not_member():
    """send, presence and history of a room one has not joined -> not_member."""
    a, = await clients(guests, "A")
    r = room()
    await a.error({"type": "send", "room": r, "body": "x"}, "not_member")
    await a.error({"type": "presence", "room": r}, "not_member")
    await a.error({"type": "history", "room": r}, "not_member")


# ---- presence ------------------------------------------------------------

@suite.test
async def presence_lists_the_members_sorted():
    """presence -> {room, users: [...]} sorted, each user once."""
    a, b, c = await clients(guests, "A", "B", "C")
    r = room()
    for x in (c, a, b):
        await x.join(r)
    users = await b.presence(r)
    note("presence: %r" % users)
    check(users == sorted([a.user, b.user, c.user]), "presence %r, want %r"
          % (users, sorted([a.user, b.user, c.user])))


@suite.test
async def a_user_with_two_sessions_counts_once():
    """alice in two sessions: presence lists her once; her second session
    joining tells nobody; her first session leaving tells nobody."""
    a1, a2 = await clients(alices, "alice1", "alice2")
    check(a1.user == "alice" and a2.user == "alice",
          "fx_good_auth admits as alice, welcome says %r and %r" % (a1.user, a2.user))
    check(a1.session != a2.session, "two connections share session %r" % a1.session)
    r = room()
    await a1.join(r)
    await a2.join(r)
    await a1.expect_nothing(type="member")
    check(await a1.presence(r) == ["alice"], "presence does not list alice exactly once")
    await a1.leave(r)
    await a2.expect_nothing(type="member")
    check(await a2.presence(r) == ["alice"], "presence after one of two sessions left")
    await a1.error({"type": "presence", "room": r}, "not_member")
    note("member events are per user, not per session")


# ---- history -------------------------------------------------------------

@suite.test
async def history_keeps_the_last_history_size_messages():
    """history_size = 5, 8 messages sent: history returns seq 4..8 oldest first;
    since/limit select, truncated says whether some were dropped."""
    a, b = await clients(guests, "A", "B")
    r = room()
    await a.join(r)
    acks = [await a.say(r, "m%d" % i) for i in range(1, 9)]

    async def hist(**args):
        q = {"type": "history", "room": r}
        q.update(args)
        h = await a.request(q)
        check(h.get("type") == "history" and h.get("room") == r
              and isinstance(h.get("messages"), list) and isinstance(h.get("truncated"), bool),
              "history %s -> %s" % (json.dumps(args), json.dumps(h)[:300]))
        return [m.get("seq") for m in h["messages"]], h["truncated"], h["messages"]

    seqs, _, msgs = await hist()
    check(seqs == [4, 5, 6, 7, 8], "history without since: seqs %r, want 4..8" % seqs)
    for m, ack in zip(msgs, acks[3:]):
        for k, want in (("type", "message"), ("room", r), ("seq", ack["seq"]), ("id", ack["id"]),
                        ("from", a.user), ("body", "m%d" % ack["seq"]), ("ts", ack["ts"])):
            check(m.get(k) == want, "history message %s is %r, want %r: %s"
                  % (k, m.get(k), want, json.dumps(m)))
    for args, want_seqs, want_trunc in [
            ({"since": 0}, [4, 5, 6, 7, 8], True),
            ({"since": 2}, [4, 5, 6, 7, 8], True),
            ({"since": 3}, [4, 5, 6, 7, 8], False),
            ({"since": 6}, [7, 8], False),
            ({"since": 8}, [], False)]:
        seqs, trunc, _ = await hist(**args)
        check((seqs, trunc) == (want_seqs, want_trunc), "history %s: seqs %r truncated %r, want %r %r"
              % (json.dumps(args), seqs, trunc, want_seqs, want_trunc))
        note("history %s -> %r truncated %s" % (json.dumps(args), seqs, trunc))
    seqs, _, _ = await hist(limit=2)
    check(seqs == [7, 8], "history limit=2: %r, want the last two [7, 8]" % seqs)
    seqs, _, _ = await hist(limit=100)
    check(seqs == [4, 5, 6, 7, 8], "history limit=100 (over history_size): %r, want 4..8" % seqs)
    await b.error({"type": "history", "room": r}, "not_member")


@suite.test
async def history_limit_defaults_to_50():
    """With history_size 100 and 60 messages, history without limit returns the last 50."""
    a, = await clients(alices, "alice")
    r = room()
    await a.join(r)
    for i in range(60):
        await a.say(r, i)
    h = await a.request({"type": "history", "room": r})
    seqs = [m.get("seq") for m in h.get("messages", [])]
    check(seqs == list(range(11, 61)), "history without limit: %d messages %r..., want seq 11..60"
          % (len(seqs), seqs[:3]))


# ---- direct --------------------------------------------------------------

@suite.test
async def direct_to_an_online_user_reaches_them():
    """direct -> ack {id, ts}; the addressee gets {direct, id, from, to, body, ts}; nobody else."""
    a, b, c = await clients(guests, "A", "B", "C")
    ack = await a.request({"type": "direct", "to": b.user, "body": {"hi": "there"}})
    check(ack.get("type") == "ack" and "id" in ack, "direct -> %s" % json.dumps(ack))
    check_ts(ack.get("ts"), "direct ack")
    d = await b.expect("direct")
    note("B got %s" % json.dumps(d))
    for k, want in (("id", ack["id"]), ("from", a.user), ("to", b.user),
                    ("body", {"hi": "there"}), ("ts", ack["ts"])):
        check(k in d and dumps(d[k]) == dumps(want), "direct %s is %r, want %r" % (k, d.get(k), want))
    await a.expect_nothing(type="direct")
    await c.expect_nothing(0.2, type="direct")


@suite.test
async def direct_reaches_every_session_of_the_user():
    """A direct to alice reaches each of alice's sessions."""
    a1, a2, a3 = await clients(alices, "alice1", "alice2", "alice3")
    ack = await a1.request({"type": "direct", "to": "alice", "body": "to all of me"})
    check(ack.get("type") == "ack", "direct -> %s" % json.dumps(ack))
    for x in (a2, a3):
        d = await x.expect("direct", id=ack["id"])
        check(d.get("from") == "alice" and d.get("to") == "alice" and d.get("body") == "to all of me",
              "%s got %s" % (x.name, json.dumps(d)))
    note("alice2 and alice3 got the direct (alice1, the sender, is not checked)")


@suite.test
async def direct_to_a_user_without_a_session_is_offline():
    """direct to a user with no session -> error offline."""
    a, = await clients(guests, "A")
    await a.error({"type": "direct", "to": "nobody-here", "body": "hello?"}, "offline")
    await a.error({"type": "direct", "to": "guest-0000000000000000", "body": 1}, "offline")


# ---- ping / ref ----------------------------------------------------------

@suite.test
async def ping_answers_pong():
    """ping -> pong."""
    a, = await clients(guests, "A")
    await a.send({"type": "ping"})
    r = await a.recv()
    check(r.get("type") == "pong", "ping -> %s" % json.dumps(r))


@suite.test
async def ref_is_echoed_on_replies_acks_and_errors():
    """A string or number ref comes back on the reply, the ack and the error."""
    a, b = await clients(guests, "A", "B")
    r = room()
    for ref in ("s-1", 42, "", 0, -3, 2.5):
        got = await a.request({"type": "join", "room": r, "ref": ref})
        check(got.get("type") == "joined", "join ref %r -> %s" % (ref, json.dumps(got)))
        got = await a.request({"type": "send", "room": r, "body": 1, "ref": ref})
        check(got.get("type") == "ack", "send ref %r -> %s" % (ref, json.dumps(got)))
        got = await a.request({"type": "ping", "ref": ref})
        check(got.get("type") == "pong", "ping ref %r -> %s" % (ref, json.dumps(got)))
        got = await a.request({"type": "presence", "room": r, "ref": ref})
        check(got.get("type") == "presence", "presence ref %r -> %s" % (ref, json.dumps(got)))
        got = await a.request({"type": "history", "room": r, "ref": ref})
        check(got.get("type") == "history", "history ref %r -> %s" % (ref, json.dumps(got)))
        got = await a.request({"type": "direct", "to": b.user, "body": 1, "ref": ref})
        check(got.get("type") == "ack", "direct ref %r -> %s" % (ref, json.dumps(got)))
        got = await b.request({"type": "send", "room": r, "body": 1, "ref": ref})
        check(got.get("type") == "error" and got.get("code") == "not_member",
              "error ref %r -> %s" % (ref, json.dumps(got)))
        got = await b.request({"type": "no-such-type", "ref": ref})
        check(got.get("type") == "error" and got.get("code") == "bad_request",
              "bad_request ref %r -> %s" % (ref, json.dumps(got)))
        got = await a.request({"type": "leave", "room": r, "ref": ref})
        check(got.get("type") == "left", "leave ref %r -> %s" % (ref, json.dumps(got)))
        note("ref %s echoed on joined, ack, pong, presence, history, direct ack, errors, left"
             % json.dumps(ref))


# ---- errors --------------------------------------------------------------

async def expect_bad_request(c, frame, what):
    await c.send_raw(frame)
    e = await c.recv()
    check(e.get("type") == "error" and e.get("code") == "bad_request",
          "%s -> want error bad_request, got %s" % (what, json.dumps(e)[:300]))
    check(isinstance(e.get("message"), str), "error without message: %s" % json.dumps(e))


@suite.test
async def malformed_frames_get_bad_request_and_the_connection_stays():
    """Not JSON, not an object, unknown/missing type, missing or mistyped
    fields, binary frames -> bad_request; the connection keeps working."""
    a, = await clients(guests, "A")
    r = room()
    await a.join(r)
    cases = [
        ("this is not json", "text that is not JSON"),
        ('{"type": "join", "room": ', "truncated JSON"),
        ("[1, 2, 3]", "a JSON array"),
        ('"join"', "a JSON string"),
        ("42", "a JSON number"),
        ("null", "JSON null"),
        ("{}", "an object without type"),
        ('{"type": 5}', "a number as type"),
        ('{"type": "dance"}', "an unknown type"),
        ('{"type": "join"}', "join without room"),
        ('{"type": "join", "room": 5}', "join with a number as room"),
        ('{"type": "send", "room": "%s"}' % r, "send without body"),
        ('{"type": "send", "body": 1}', "send without room"),
        ('{"type": "direct", "body": 1}', "direct without to"),
        ('{"type": "direct", "to": 5, "body": 1}', "direct with a number as to"),
        ('{"type": "history", "room": "%s", "since": "x"}' % r, "history with a string since"),
        ('{"type": "history", "room": "%s", "limit": "x"}' % r, "history with a string limit"),
        ('{"type": "ping", "ref": {"a": 1}}', "an object as ref"),
        ('{"type": "ping", "ref": true}', "true as ref"),
        (b'{"type": "ping"}', "a binary frame"),
    ]
    for frame, what in cases:
        await expect_bad_request(a, frame, what)
        note("%s -> bad_request" % what)
    await a.ping()
    note("the connection still works")


@suite.test
async def room_names_are_1_to_64_bytes_of_the_allowed_characters():
    """Rooms: 1-64 bytes of A-Z a-z 0-9 _ . : -; anything else -> bad_request."""
    a, = await clients(guests, "A")
    for ok in ("a" * 64, "AZaz09_.:-", "x"):
        await a.join(ok)
        note("room %r (%d bytes) accepted" % (ok, len(ok)))
    for bad in ("", "a" * 65, "has space", "a/b", "caf\u00e9", "semi;colon", "tab\there", "q?x"):
        for t in ("join", "send", "presence", "history", "leave"):
            q = {"type": t, "room": bad}
            if t == "send":
                q["body"] = 1
            await a.error(q, "bad_request")
        note("room %r -> bad_request for join, send, presence, history, leave" % bad)


@suite.test
async def frame_over_max_message_bytes_is_too_large_and_the_connection_stays():
    """max_message_bytes = 1024: a 2000-byte frame -> too_large and is
    dropped; frames up to 1024 bytes pass; the connection keeps working."""
    a, b = await clients(guests, "A", "B")
    r = room()
    await a.join(r)
    await b.join(r)
    big = json.dumps({"type": "send", "room": r, "body": "x" * 2000})
    check(len(big) > 2000, "test frame too small")
    await a.send_raw(big)
    e = await a.expect("error")
    check(e.get("code") == "too_large", "2000-byte frame -> %s, want too_large" % json.dumps(e))
    await b.expect_nothing(type="message")
    note("2000 bytes -> too_large, not delivered")
    await a.ping()
    frame = {"type": "send", "room": r, "body": ""}
    frame["body"] = "y" * (1024 - len(json.dumps(frame)))
    check(len(json.dumps(frame)) == 1024, "could not build a 1024-byte frame")
    await a.send_raw(json.dumps(frame))
    ack = await a.expect("ack", room=r)
    m = await b.expect("message", room=r)
    check(m.get("seq") == ack.get("seq") and m.get("body") == frame["body"],
          "1024-byte message arrived as %s" % json.dumps(m)[:200])
    note("a frame of exactly 1024 bytes passes")


@suite.test
async def a_bad_frame_does_not_disturb_other_sessions():
    """Garbage, binary and oversized frames from A change nothing for B."""
    a, b = await clients(guests, "A", "B")
    r = room()
    await a.join(r)
    await b.join(r)
    await a.expect("member", room=r, user=b.user)
    await a.send_raw("garbage{")
    await a.send_raw(b"\x00\x01binary")
    await a.send_raw("z" * 3000)
    await a.send_raw('{"type": "send", "room": "%s"}' % r)
    await b.expect_nothing()
    await b.ping()
    ack = await b.say(r, "still fine")
    m = await a.expect("message", room=r)
    check(m.get("id") == ack.get("id"), "A did not get B's message: %s" % json.dumps(m))
    codes = []
    for _ in range(4):
        codes.append((await a.expect("error")).get("code"))
    check(codes == ["bad_request", "bad_request", "too_large", "bad_request"],
          "A's errors: %r" % codes)
    await a.ping()


# ---- backplane down ------------------------------------------------------

@suite.test
async def requests_that_need_the_backplane_are_unavailable_while_it_is_down():
    """fx_backplane answers every operation with CONFAB_EUNAVAILABLE: join
    and direct get error unavailable and the connection keeps working (or
    the handshake itself is refused with 503)."""
    port = down.start(want_status=None).port
    note("/readyz with the backplane down: %d" % down.healthz_status)
    try:
        a = await Client.connect(port, name="A")
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == 503, "handshake refused with %d, want 503" % e.status_code)
        note("the handshake is refused with 503 while the backplane is down")
        return
    await a.ping()
    await a.error({"type": "join", "room": "lobby"}, "unavailable")
    await a.error({"type": "direct", "to": a.user, "body": 1}, "unavailable")
    await a.ping()


if __name__ == "__main__":
    suite.main()
