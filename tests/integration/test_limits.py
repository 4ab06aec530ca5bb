#!/usr/bin/python3
"""Limits against abusive clients (docs/auth.md, "Limits"): every [broker]
limit and [ws] send_queue_max hit, and answered the way the docs say.

One broker per limit, so that one limit never trips another:
  rate     rate_limit = 10, rate_burst = 5, flood_close = 100
  flood    rate_limit = 10, rate_burst = 5, flood_close = 20
  limits   max_rooms_per_session = 3, max_json_depth = 8,
           max_message_bytes = 1024, allowed_origins = https://ok.example
  conns    max_connections_per_address = 3
  alices   fx_good_auth (user = alice), max_sessions_per_user = 2
  teams    fx_good_auth (user = bob, rooms = team-*)
  expiry   fx_good_auth (user = carol, expires_in = 2)
  idle     idle_timeout = 2
  slow     rate_limit = 0, max_message_bytes = 131072, [ws] send_queue_max = 1 MiB

Some clients here are raw sockets (RawClient): a client that never
answers pings, never reads, or sends invalid UTF-8 is not something the
websockets module will be.

SPDX-License-Identifier: MIT
"""
import asyncio
import base64
import errno
import itertools
import json
import os
import select
import socket
import struct
import time

import websockets
import websockets.exceptions

from confabtest import (Suite, Client, WS_SO, RECV_TIMEOUT, SCALE, SANITIZERS, TestFailure,
                        fixture, check, note)

suite = Suite("test_limits", watchdog=240)
rate = suite.broker("rate", broker={"rate_limit": 10, "rate_burst": 5, "flood_close": 100})
flood = suite.broker("flood", broker={"rate_limit": 10, "rate_burst": 5, "flood_close": 20})
limits = suite.broker("limits", broker={"max_rooms_per_session": 3, "max_json_depth": 8,
                                        "max_message_bytes": 1024,
                                        "allowed_origins": "https://ok.example"})
conns = suite.broker("conns", broker={"max_connections_per_address": 3})
alices = suite.broker("alices", broker={"plugins": [WS_SO, fixture("fx_good_auth")],
                                        "max_sessions_per_user": 2},
                      sections={"fx_good_auth": {"user": "alice"}})
teams = suite.broker("teams", broker={"plugins": [WS_SO, fixture("fx_good_auth")]},
                     sections={"fx_good_auth": {"user": "bob", "rooms": "team-*"}})
expiry = suite.broker("expiry", broker={"plugins": [WS_SO, fixture("fx_good_auth")]},
                      sections={"fx_good_auth": {"user": "carol", "expires_in": 2}})
idle = suite.broker("idle", broker={"idle_timeout": 2})
slow = suite.broker("slow", broker={"rate_limit": 0, "max_message_bytes": 131072},
                    sections={"ws": {"send_queue_max": 1048576}})

_rooms = itertools.count(1)


def room(prefix="room"):
    """A room name no other check uses."""
    return "%s-%d" % (prefix, next(_rooms))


# ---- a raw WebSocket client ----------------------------------------------

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class Closed(Exception):
    """The server closed the TCP connection (EOF or reset)."""


class RawClient:
    """A WebSocket client on a plain blocking socket that does only what it
    is told: it answers no ping, reads only when asked, and sends any bytes
    in a (masked) frame."""

    def __init__(self, port, rcvbuf=None, timeout=RECV_TIMEOUT):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # before connect, so that the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Protocol: confab.v1\r\n\r\n" % (port, key)).encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        check(b" 101 " in status + b" ", "raw client: handshake answered %r" % head[:200])
        self.welcome = self.read_json()
        check(self.welcome.get("type") == "welcome", "raw client: first frame %r" % self.welcome)
        self.user = self.welcome.get("user")

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TestFailure("raw client: nothing from the server within %.1fs"
                              % self.sock.gettimeout()) from None
        except ConnectionResetError:
            raise Closed("reset") from None
        if not data:
            raise Closed("EOF")
        self.buf += data

    def _need(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        """(opcode, payload) of the next frame; raises Closed at EOF."""
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        check(not b1 & 0x80, "raw client: the server masked a frame")
        return b0 & 0x0F, self._need(n)

    def read_json(self):
        """The next text frame as JSON (pings are skipped, not answered)."""
        while True:
            op, data = self.read_frame()
            if op == OP_TEXT:
                return json.loads(data.decode("utf-8"))
            check(op == OP_PING, "raw client: frame %d %r instead of a text frame" % (op, data[:80]))

    def send_frame(self, op, payload, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | op])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send_json(self, obj):
        self.send_frame(OP_TEXT, json.dumps(obj).encode())

    def wait_closed(self, timeout):
        """Read (without answering) until the server closes the TCP
        connection. Returns (seconds it took, close code or None, opcodes seen)."""
        start = time.monotonic()
        code, ops = None, []
        self.sock.settimeout(0.2)
        while time.monotonic() - start < timeout:
            try:
                op, data = self.read_frame()
            except Closed:
                return time.monotonic() - start, code, ops
            except TestFailure:
                continue  # nothing within 0.2 s; keep waiting
            ops.append(op)
            if op == OP_CLOSE and len(data) >= 2:
                code = struct.unpack("!H", data[:2])[0]
        raise TestFailure("raw client: still connected %.1fs later (frames seen: %s, close %s)"
                          % (timeout, ops[:20], code))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


async def refused(port, want, what, **kw):
    """A WebSocket handshake to port that must be refused with HTTP `want`."""
    try:
        ws = await asyncio.wait_for(websockets.connect(
            "ws://127.0.0.1:%d/ws" % port, subprotocols=["confab.v1"], ping_interval=None,
            open_timeout=RECV_TIMEOUT, **kw), RECV_TIMEOUT + 1)
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == want, "%s: refused with HTTP %d, want %d" % (what, e.status_code, want))
        note("%s: HTTP %d" % (what, e.status_code))
        return
    await ws.close()
    raise TestFailure("%s: admitted, want HTTP %d" % (what, want))


async def closed_with(c, timeout):
    """Wait until the server closes c; (seconds, close code, reason)."""
    start = time.monotonic()
    try:
        await asyncio.wait_for(c.ws.wait_closed(), timeout)
    except asyncio.TimeoutError:
        raise TestFailure("%s: still open after %.1fs (backlog: %s)"
                          % (c.name, timeout, json.dumps(c.backlog)[:300])) from None
    return time.monotonic() - start, c.ws.close_code, c.ws.close_reason


# ---- rate limit ----------------------------------------------------------

@suite.test
async def a_burst_over_the_rate_limit_gets_rate_limited_errors_echoing_refs():
    """rate_limit = 10, rate_burst = 5: 50 pings at once -> some pong, some
    error rate_limited with the ping's ref; each ping answered once; the
    connection stays up and works again after a pause."""
    c = await Client.connect(rate.start().port, name="burst")
    refs = ["p%d" % i for i in range(50)]
    for r in refs:
        await c.send({"type": "ping", "ref": r})
    got = {}
    deadline = time.monotonic() + RECV_TIMEOUT
    while len(got) < len(refs) and time.monotonic() < deadline:
        f = await c.recv(timeout=max(0.1, deadline - time.monotonic()))
        check(f.get("ref") in refs, "a frame without one of the ping refs: %s" % json.dumps(f))
        check(f["ref"] not in got, "ref %r answered twice: %s and %s"
              % (f["ref"], json.dumps(got.get(f["ref"])), json.dumps(f)))
        got[f["ref"]] = f
    check(len(got) == len(refs), "%d of 50 pings answered" % len(got))
    pongs = [r for r, f in got.items() if f.get("type") == "pong"]
    limited = [r for r, f in got.items() if f.get("type") == "error" and f.get("code") == "rate_limited"]
    note("%d pong, %d rate_limited" % (len(pongs), len(limited)))
    check(len(pongs) + len(limited) == 50, "answers other than pong/rate_limited: %s" % json.dumps(
        [f for f in got.values() if f.get("type") != "pong" and f.get("code") != "rate_limited"])[:300])
    check(5 <= len(pongs) <= 5 + 10 * SCALE, "%d pongs: want the burst (5) and not much more" % len(pongs))
    check(limited, "no rate_limited error")
    check(all(isinstance(got[r].get("message"), str) for r in limited), "rate_limited without a message")
    await asyncio.sleep(1.0)
    await c.ping()  # still connected, tokens back


@suite.test
async def a_client_that_keeps_flooding_is_closed_with_1008():
    """flood_close = 20: a client sending 200 pings at once is refused, and
    after 20 refusals closed with 1008 "rate limit exceeded"."""
    c = await Client.connect(flood.start().port, name="flooder")
    other = await Client.connect(flood.port, name="bystander")
    try:
        for i in range(200):
            await c.send({"type": "ping", "ref": i})
    except websockets.exceptions.ConnectionClosed:
        pass  # closed while still sending
    took, code, reason = await closed_with(c, RECV_TIMEOUT)
    note("closed after %.2fs with %s %r" % (took, code, reason))
    check(code == 1008, "flooder: close code %s %r, want 1008" % (code, reason))
    check("rate" in (reason or ""), "flooder: close reason %r does not mention the rate" % reason)
    await other.ping()


# ---- per-session, per-user, per-address limits ---------------------------

@suite.test
async def the_fourth_room_is_forbidden_with_max_rooms_per_session_3():
    """max_rooms_per_session = 3: three joins -> joined, the fourth ->
    forbidden; after a leave, a join works again."""
    c = await Client.connect(limits.start().port, name="joiner")
    rs = [room("cap") for _ in range(4)]
    for r in rs[:3]:
        await c.join(r)
    e = await c.error({"type": "join", "room": rs[3]}, "forbidden")
    note("4th join: %s" % e["message"])
    check("3" in e["message"], "the message does not name the limit 3: %r" % e["message"])
    await c.leave(rs[0])
    await c.join(rs[3])


@suite.test
async def a_third_session_of_one_user_is_refused_with_429():
    """max_sessions_per_user = 2 (every client is alice): two connect, the
    third -> HTTP 429; after one closes, a new one is admitted."""
    port = alices.start().port
    a = await Client.connect(port, name="alice-1")
    b = await Client.connect(port, name="alice-2")
    check(a.user == b.user == "alice", "users %r %r, want alice" % (a.user, b.user))
    await refused(port, 429, "third alice")
    await a.close()
    await admitted_soon(port, "alice again")


async def admitted_soon(port, name):
    """A client that must be admitted, at the latest shortly after a close."""
    deadline = time.monotonic() + 2.0 * SCALE
    while True:
        try:
            return await Client.connect(port, name=name)
        except websockets.exceptions.InvalidStatusCode as e:
            if time.monotonic() > deadline:
                raise TestFailure("%s: still refused with HTTP %d %.1fs after a close"
                                  % (name, e.status_code, 2.0 * SCALE)) from None
            await asyncio.sleep(0.1)


@suite.test
async def a_fourth_connection_from_one_address_is_refused_with_429():
    """max_connections_per_address = 3: three connect from 127.0.0.1, the
    fourth -> HTTP 429; after one closes, a new one is admitted."""
    port = conns.start().port
    cs = [await Client.connect(port, name="c%d" % i) for i in range(3)]
    await refused(port, 429, "fourth connection")
    await cs[0].close()
    await admitted_soon(port, "after a close")
    await cs[1].ping()


@suite.test
async def only_allowed_origins_are_admitted():
    """allowed_origins = https://ok.example: Origin https://evil.example ->
    403; Origin https://ok.example -> admitted; no Origin -> admitted."""
    port = limits.start().port
    await refused(port, 403, "Origin https://evil.example", origin="https://evil.example")
    ws = await asyncio.wait_for(websockets.connect(
        "ws://127.0.0.1:%d/ws" % port, subprotocols=["confab.v1"], ping_interval=None,
        origin="https://ok.example"), RECV_TIMEOUT)
    try:
        w = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
        check(w.get("type") == "welcome", "Origin https://ok.example: first frame %r" % w)
    finally:
        await ws.close()
    c = await Client.connect(port, name="no-origin")
    await c.ping()


# ---- idle timeout --------------------------------------------------------

@suite.test
async def a_client_that_answers_pings_stays_connected_past_the_idle_timeout():
    """idle_timeout = 2: a websockets client (it answers pings by itself)
    that sends nothing for 7 s is still connected, and pinged meanwhile."""
    c = await Client.connect(idle.start().port, name="quiet")
    pongs = []
    orig = c.ws.pong

    async def counting_pong(data=b""):
        pongs.append(time.monotonic())
        return await orig(data)
    c.ws.pong = counting_pong  # websockets answers pings through pong()
    await c.expect_nothing(7.0)
    check(not c.ws.closed, "closed with %s" % c.ws.close_code)
    note("answered %d server pings in 7 s" % len(pongs))
    check(pongs, "the server sent no WebSocket ping in 7 s of silence (idle_timeout = 2)")
    await c.ping()


@suite.test
def a_client_that_never_answers_pings_is_hung_up():
    """idle_timeout = 2: a raw client that completes the handshake and then
    never answers is pinged after ~2 s and hung up after ~4 s (within 6 s)."""
    raw = RawClient(idle.start().port)
    try:
        took, code, ops = raw.wait_closed(6.0 * (1.5 if SANITIZERS else 1))
        note("closed %.1fs after the welcome (frames: %s, close code %s)" % (took, ops, code))
        check(OP_PING in ops, "no ping before the hang-up (frames: %s)" % ops)
        check(took >= 1.5, "closed after %.1fs, before idle_timeout (2 s) could pass" % took)
    finally:
        raw.close()


# ---- JSON depth, size, UTF-8 ---------------------------------------------

def nested(n):
    return "[" * n + "1" + "]" * n


@suite.test
async def json_deeper_than_max_json_depth_is_a_bad_request():
    """max_json_depth = 8 (the request object is a level): a body of 9
    nested arrays (depth 10) -> bad_request; of 7 (depth 8) -> ack; of 8
    (depth 9) -> bad_request; the connection stays."""
    c = await Client.connect(limits.start().port, name="deep")
    r = room("deep")
    await c.join(r)
    for arrays, ok in ((9, False), (7, True), (8, False)):
        text = '{"type":"send","room":"%s","ref":"d%d","body":%s}' % (r, arrays, nested(arrays))
        await c.send_raw(text)
        # Replies echo the ref, refusals too.
        f = await c._wait_for(lambda f: f.get("type") in ("ack", "error"),
                              "reply to %d nested arrays" % arrays, RECV_TIMEOUT)
        check(f.get("ref") == "d%d" % arrays, "the reply to %d nested arrays does not echo its ref: %s"
              % (arrays, json.dumps(f)))
        if ok:
            check(f.get("type") == "ack", "%d nested arrays in a body: %s, want an ack"
                  % (arrays, json.dumps(f)))
            note("%d arrays (depth %d): ack" % (arrays, arrays + 1))
        else:
            check(f.get("type") == "error" and f.get("code") == "bad_request",
                  "%d nested arrays in a body: %s, want bad_request" % (arrays, json.dumps(f)))
            note("%d arrays (depth %d): %s" % (arrays, arrays + 1, f.get("message")))
    # Deep brackets inside a string are text, not nesting.
    await c.say(r, "[" * 50)
    await c.ping()


@suite.test
async def a_message_over_max_message_bytes_is_too_large_and_the_connection_stays():
    """max_message_bytes = 1024: a 2000-byte frame -> error too_large; the
    connection stays and the next message works."""
    c = await Client.connect(limits.start().port, name="big")
    r = room("big")
    await c.join(r)
    await c.send({"type": "send", "room": r, "body": "x" * 2000, "ref": "big"})
    e = await c.expect("error", code="too_large")
    note("too_large: %s" % e.get("message"))
    await c.say(r, "small")
    await c.ping()


@suite.test
async def invalid_utf8_in_a_text_frame_closes_with_1007():
    """A text frame of bytes ff fe (not UTF-8) -> close 1007; other clients
    are not affected."""
    port = limits.start().port
    c = await Client.connect(port, name="bad-utf8")
    other = await Client.connect(port, name="bystander")
    await c.ws.write_frame(True, OP_TEXT, b'{"type":"ping","x":"\xff\xfe"}')
    took, code, reason = await closed_with(c, RECV_TIMEOUT)
    note("closed with %s %r" % (code, reason))
    check(code == 1007, "close code %s %r, want 1007" % (code, reason))
    await other.ping()


@suite.test
def invalid_utf8_on_a_raw_socket_closes_with_1007():
    """The same by hand: a masked text frame ff fe -> the server's close
    frame has code 1007, then the connection ends."""
    raw = RawClient(limits.start().port)
    try:
        raw.send_frame(OP_TEXT, b"\xff\xfe")
        took, code, ops = raw.wait_closed(RECV_TIMEOUT)
        check(code == 1007, "close code %s (frames %s), want 1007" % (code, ops))
    finally:
        raw.close()


# ---- permissions and expiry ----------------------------------------------

@suite.test
async def room_patterns_limit_join_send_presence_and_history():
    """fx_good_auth rooms = team-*: join team-1 -> joined; join, send,
    presence and history in lobby -> forbidden; team-1 works."""
    c = await Client.connect(teams.start().port, name="bob")
    check(c.user == "bob", "user %r, want bob" % c.user)
    await c.join("team-1")
    await c.say("team-1", "hi")
    await c.presence("team-1")
    for req in ({"type": "join", "room": "lobby"},
                {"type": "send", "room": "lobby", "body": "hi"},
                {"type": "presence", "room": "lobby"},
                {"type": "history", "room": "lobby"}):
        e = await c.error(req, "forbidden")
        note("%s lobby: forbidden (%s)" % (req["type"], e["message"]))
    h = await c.request({"type": "history", "room": "team-1"})
    check(h.get("type") == "history", "history team-1 -> %s" % json.dumps(h)[:300])


@suite.test
async def an_expired_token_closes_the_session_with_4001():
    """fx_good_auth expires_in = 2: the session is closed with 4001 "token
    expired" about 2 s after it opened (within 4 s)."""
    start = time.monotonic()
    c = await Client.connect(expiry.start().port, name="carol")
    await c.ping()
    took, code, reason = await closed_with(c, 4.0 * (1.5 if SANITIZERS else 1))
    took = time.monotonic() - start
    note("closed %.1fs after connecting with %s %r" % (took, code, reason))
    check(code == 4001 and reason == "token expired",
          "close %s %r, want 4001 'token expired'" % (code, reason))
    check(took >= 1.5, "closed after %.1fs, before the 2 s expiry" % took)


# ---- slow consumer -------------------------------------------------------

def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise TestFailure("no VmRSS in /proc/%d/status" % pid)


@suite.test
async def a_client_that_never_reads_is_closed_and_memory_stays_bounded():
    """[ws] send_queue_max = 1 MiB: a raw client in a room never reads while
    another client sends 800 messages of 64 KB (50 MB) into the room. The
    sender's acks keep coming, the slow client is closed (it leaves the
    room's presence; its socket ends, with 1008 if the close frame got
    out), and confabd's RSS grows by well under 50 MB."""
    if SANITIZERS:
        # ASan keeps freed memory in quarantine (256 MB by default), which
        # would be counted as growth.
        os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                      ":quarantine_size_mb=8").lstrip(":")
    port = slow.start().port
    r = room("slow")
    raw = RawClient(port, rcvbuf=4096)
    try:
        raw.send_json({"type": "join", "room": r, "ref": "j"})
        f = raw.read_json()
        check(f.get("type") == "joined" and f.get("ref") == "j", "raw join -> %r" % f)
        # From here on the raw client reads nothing.
        sender = await Client.connect(port, name="sender")
        await sender.join(r)
        check(raw.user in await sender.presence(r), "the slow client is not in the room")
        rss0 = vmrss_kb(slow.pid)
        peak = rss0
        body = "x" * 65000
        start = time.monotonic()
        sent = acked = 0
        gone_at = None
        batch = 16
        while sent < 800:
            refs = []
            for _ in range(batch):
                ref = "m%d" % sent
                await sender.send({"type": "send", "room": r, "body": body, "ref": ref})
                refs.append(ref)
                sent += 1
            # its own messages come back too: keep only the acks
            want = set(refs)
            while want:
                f = await sender._read(RECV_TIMEOUT)
                if f.get("ref") in want:
                    check(f.get("type") == "ack", "send %s -> %s" % (f["ref"], json.dumps(f)[:300]))
                    want.discard(f["ref"])
                    acked += 1
            peak = max(peak, vmrss_kb(slow.pid))
            if gone_at is None and sent % 160 == 0:
                if raw.user not in await sender.presence(r):
                    gone_at = sent
            check(time.monotonic() - start < 25 * SCALE,
                  "only %d of 800 messages acked after %ds" % (acked, 25 * SCALE))
        note("800 messages (%.0f MB) sent and acked in %.1fs" % (800 * 65000 / 1e6,
                                                                   time.monotonic() - start))
        deadline = time.monotonic() + 10 * SCALE
        while raw.user in await sender.presence(r):
            check(time.monotonic() < deadline, "the slow client is still in the room %ds after "
                  "50 MB were sent to it" % (10 * SCALE))
            await asyncio.sleep(0.2)
        note("slow client out of the room %s" % ("after %d messages" % gone_at if gone_at
                                                 else "after the last message"))
        peak = max(peak, vmrss_kb(slow.pid))
        after = vmrss_kb(slow.pid)
        bound = 40 * 1024 * (2 if SANITIZERS else 1)
        note("confabd VmRSS: %d kB at the start, peak %d kB (+%d kB), %d kB at the end"
             % (rss0, peak, peak - rss0, after))
        check(peak - rss0 < bound, "confabd's RSS grew by %d kB (bound %d kB)" % (peak - rss0, bound))
        # The server ended the connection: reading now finds the buffered
        # messages, then 1008 or the end of the connection.
        took, code, ops = raw.wait_closed(RECV_TIMEOUT)
        note("slow client's socket: %d frames, then %s" % (len(ops), "close %s" % code if code
                                                           else "EOF/reset"))
        check(code in (None, 1008), "slow client closed with %s, want 1008" % code)
        await sender.ping()
    finally:
        raw.close()


if __name__ == "__main__":
    suite.main()
