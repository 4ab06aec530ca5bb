#!/usr/bin/python3
"""An auth plugin that answers later (fx_slow_auth: after delay_ms, on a
libuv timer) still gets the handshake answered the way docs/auth.md says:
an HTTP status before any upgrade when it refuses, the upgrade once it
allows. Meanwhile `ws` holds the handshake without upgrading ("parked",
plugins/ws/ws_park.c); these checks read the raw HTTP answers to see that
no 101 goes out before the decision.

Brokers:
  allow    fx_slow_auth allows alice after 600 ms
  deny     fx_slow_auth refuses with 403 "fixture says no" after 300 ms
  ignore   fx_slow_auth ignores after 300 ms, then fx_good_auth allows bob
  anon     fx_slow_auth ignores after 300 ms, allow_anonymous = false: 401
  late     fx_slow_auth takes 60 s: ws answers 503 at its 10 s limit

SPDX-License-Identifier: MIT
"""
import asyncio
import base64
import os
import signal
import time

from confabtest import (Suite, Client, WS_SO, QUIET, RECV_TIMEOUT, SCALE, check, fixture, note)

suite = Suite("test_auth_async", watchdog=240)
SLOW = fixture("fx_slow_auth")


def slow_broker(name, slow, chain_tail=(), broker=None, extra=None):
    # These check how ws holds handshakes, many at once from one address:
    # the bounds on pending decisions are off (test_auth_flood.py has them).
    b = {"plugins": [WS_SO, SLOW] + list(chain_tail), "max_sessions_per_user": 0,
         "max_pending_auth_per_address": 0, "max_pending_auth": 0}
    b.update(broker or {})
    sections = {"fx_slow_auth": slow}
    sections.update(extra or {})
    return suite.broker(name, broker=b, sections=sections)


allow = slow_broker("allow", {"user": "alice", "delay_ms": 600})
deny = slow_broker("deny", {"deny": "fixture says no", "delay_ms": 300})
ignore = slow_broker("ignore", {"delay_ms": 300}, chain_tail=[fixture("fx_good_auth")],
                     extra={"fx_good_auth": {"user": "bob"}})
anon = slow_broker("anon", {"delay_ms": 300}, broker={"allow_anonymous": False})
# with the shipped bound of one awaited decision per address
late = slow_broker("late", {"user": "alice", "delay_ms": 60000},
                   broker={"max_pending_auth_per_address": 1, "max_pending_auth": 16})


def handshake_bytes(port, host=None, extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: confab.v1\r\n%s\r\n"
            % (host or "127.0.0.1:%d" % port, key, extra)).encode()


def masked_text(payload):
    """A client text frame (masked), for frames sent behind a handshake."""
    k = os.urandom(4)
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + k + bytes(c ^ k[i % 4] for i, c in enumerate(payload))


async def raw_answer(port, quiet=0.0, timeout=RECV_TIMEOUT, request=None, until_closed=False):
    """Send a handshake on a plain socket. Check that nothing at all comes
    back for `quiet` seconds (the decision is not made yet), then return
    the status line and what followed, up to the end of the headers (or
    the hang-up; with until_closed, everything until the hang-up or the
    timeout)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request or handshake_bytes(port))
        await writer.drain()
        if quiet:
            try:
                early = await asyncio.wait_for(reader.read(1), quiet)
            except asyncio.TimeoutError:
                early = None
            check(early is None, "an answer came within %.1fs, before the plugin decided: %r"
                  % (quiet, early))
        data = b""
        deadline = time.monotonic() + timeout
        # a 101 ends with its headers; a refusal with the hang-up
        while until_closed or not (data.startswith(b"HTTP/1.1 101") and b"\r\n\r\n" in data):
            left = deadline - time.monotonic()
            if until_closed and left <= 0:
                break
            check(left > 0, "no complete answer within %.0fs: %r" % (timeout, data[:300]))
            try:
                chunk = await asyncio.wait_for(reader.read(4096), left)
            except asyncio.TimeoutError:
                if until_closed:
                    break
                raise
            if not chunk:
                break
            data += chunk
        return data.decode("latin-1")
    finally:
        writer.close()


def status_of(answer):
    return answer.split("\r\n", 1)[0]


@suite.test
async def a_late_allow_upgrades_only_after_the_decision():
    """alice is allowed 600 ms later: nothing comes back before that, then 101 and a welcome."""
    allow.start()
    answer = await raw_answer(allow.port, quiet=0.3)
    check(status_of(answer).startswith("HTTP/1.1 101"), "answered %r, want 101" % status_of(answer))
    check("Sec-WebSocket-Protocol: confab.v1" in answer,
          "the 101 does not name the subprotocol: %r" % answer)
    c, d = [await Client.connect(allow.port, n) for n in ("alice", "alice2")]
    check(c.user == "alice", "welcome names %r, want alice" % c.user)
    await c.join("lobby")
    await d.join("lobby")
    await c.say("lobby", "hello after a slow admission")
    await d.expect("message", room="lobby", body="hello after a slow admission")
    note("no answer for 0.3 s, then %s; two sessions joined and chatted" % status_of(answer))


@suite.test
async def a_late_refusal_is_an_http_status_without_upgrade():
    """A refusal 300 ms later is HTTP 403 with its reason; the connection never upgrades."""
    deny.start()
    answer = await raw_answer(deny.port, quiet=0.15)
    check(status_of(answer).startswith("HTTP/1.1 403"), "answered %r, want 403" % status_of(answer))
    check("101" not in status_of(answer) and "fixture says no" in answer,
          "the 403 does not carry the reason: %r" % answer[-300:])
    note("%s with 'fixture says no'" % status_of(answer))


@suite.test
async def long_headers_still_wait_for_the_decision():
    """A Host of 200, 4000 and 15000 bytes, or a 15000-byte Cookie: the
    handshake still waits for its decision and gets its HTTP status (403
    from deny, 101 from allow), never an upgrade before it."""
    deny.start()
    allow.start()
    for what, host, extra in (("Host 200", "h" * 200, ""), ("Host 4000", "h" * 4000, ""),
                              ("Host 15000", "h" * 15000, ""),
                              ("Cookie 15000", None, "Cookie: c=%s\r\n" % ("v" * 15000))):
        answer = await raw_answer(deny.port, quiet=0.15,
                                  request=handshake_bytes(deny.port, host, extra))
        check(status_of(answer).startswith("HTTP/1.1 403"),
              "%s: deny answered %r, want 403" % (what, status_of(answer)))
        answer = await raw_answer(allow.port, quiet=0.3,
                                  request=handshake_bytes(allow.port, host, extra))
        check(status_of(answer).startswith("HTTP/1.1 101"),
              "%s: allow answered %r, want 101" % (what, status_of(answer)))
        note("%s: 403 / 101 after the decision" % what)


@suite.test
async def frames_sent_behind_the_handshake_are_not_dropped():
    """A handshake and two pings in the same TCP segment, before the 101:
    after the slow allow, the welcome and both pongs come back."""
    allow.start()
    req = handshake_bytes(allow.port) + masked_text(b'{"type":"ping","ref":1}') + \
        masked_text(b'{"type":"ping","ref":2}')
    answer = await raw_answer(allow.port, quiet=0.3, request=req, until_closed=True,
                              timeout=2.0 * SCALE)
    check(status_of(answer).startswith("HTTP/1.1 101"), "answered %r" % status_of(answer))
    body = answer.split("\r\n\r\n", 1)[1]
    check('"type":"welcome"' in body, "no welcome: %r" % body[:300])
    for ref in (1, 2):
        check('{"type":"pong","ref":%d}' % ref in body, "pong %d missing: %r" % (ref, body[:400]))


@suite.test
def parked_handshakes_log_no_libwebsockets_warning():
    """Every handshake above was parked: none of them left a
    libwebsockets warning (adopt_socket_readbuf) in the log."""
    for b in (allow, deny):
        log = b.stderr()
        check("adopt_socket_readbuf" not in log and "libwebsockets:" not in log,
              "%s logged: %r" % (b.name, [l for l in log.splitlines() if "libwebsockets" in l][:3]))


@suite.test
async def a_late_ignore_passes_on_down_the_chain():
    """fx_slow_auth ignores after 300 ms; fx_good_auth then allows bob."""
    ignore.start()
    c = await Client.connect(ignore.port, "bob")
    check(c.user == "bob", "welcome names %r, want bob" % c.user)
    anon.start()
    answer = await raw_answer(anon.port, quiet=0.15)
    check(status_of(answer).startswith("HTTP/1.1 401"),
          "ignored by every plugin, allow_anonymous = false: answered %r, want 401"
          % status_of(answer))
    note("ignore then fx_good_auth: bob; ignore with allow_anonymous = false: %s"
         % status_of(answer))


@suite.test
async def many_handshakes_wait_at_once_and_all_get_in():
    """40 handshakes waiting at the same time are all admitted; the other 39 get one's room message."""
    allow.start()
    n = 40
    clients = await asyncio.gather(*[Client.connect(allow.port, "c%d" % i) for i in range(n)])
    for c in clients:
        await c.join("crowd")
    await clients[0].say("crowd", "to the other 39")
    for c in clients[1:]:
        await c.expect("message", room="crowd", body="to the other 39")
    note("%d slow admissions at once, all welcomed and all got the message" % n)


@suite.test
async def an_unmasked_frame_after_a_late_allow_is_closed_1002():
    """A handshake parked for its decision: an unmasked frame sent behind it
    gets a close 1002 after the 101; one sent after the welcome too (the
    check follows the socket lws gets back)."""
    allow.start()
    bad = bytes([0x89, 0x08]) + b"UNMASKED"          # an unmasked ping
    close_1002 = "\x88\x10\x03\xeaunmasked frame"
    answer = await raw_answer(allow.port, request=handshake_bytes(allow.port) + bad,
                              until_closed=True, timeout=RECV_TIMEOUT)
    check(status_of(answer).startswith("HTTP/1.1 101"), "answered %r, want 101" % status_of(answer))
    check(close_1002 in answer, "no close 1002 after the 101: %r" % answer[-120:])
    reader, writer = await asyncio.open_connection("127.0.0.1", allow.port)
    try:
        writer.write(handshake_bytes(allow.port))
        await writer.drain()
        data = b""
        while b"welcome" not in data:
            chunk = await asyncio.wait_for(reader.read(4096), RECV_TIMEOUT)
            check(chunk, "closed before the welcome: %r" % data)
            data += chunk
        writer.write(bad)
        await writer.drain()
        data = b""
        while True:
            chunk = await asyncio.wait_for(reader.read(4096), RECV_TIMEOUT)
            if not chunk:
                break
            data += chunk
        check(close_1002.encode("latin-1") in data, "no close 1002 after the welcome: %r" % data)
    finally:
        writer.close()
    note("behind the parked handshake and after the welcome: close 1002, connection ended")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@suite.test
async def clients_that_leave_while_waiting_leave_nothing_behind():
    """30 clients hang up before their admission; the broker keeps no descriptor of theirs."""
    allow.start()
    await (await Client.connect(allow.port, "warm")).close()
    await asyncio.sleep(0.7)
    before = open_fds(allow.pid)
    for _ in range(30):
        reader, writer = await asyncio.open_connection("127.0.0.1", allow.port)
        writer.write(handshake_bytes(allow.port))
        await writer.drain()
        writer.close()
    await asyncio.sleep(0.6 * SCALE + 1.0)   # every decision made, every socket handed back
    deadline = time.monotonic() + RECV_TIMEOUT
    while open_fds(allow.pid) > before and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    after = open_fds(allow.pid)
    check(after <= before, "descriptors: %d before, %d after 30 abandoned handshakes"
          % (before, after))
    c = await Client.connect(allow.port, "after")
    await c.ping()
    note("descriptors %d before, %d after; the broker still admits" % (before, after))


@suite.test
async def a_decision_that_never_comes_is_a_503_after_10_s():
    """The plugin takes 60 s: ws answers HTTP 503 'authentication timed out' at 10 s; the
    core cancels the plugin's answer and the address may have a decision awaited again."""
    late.start()
    t0 = time.monotonic()
    answer = await raw_answer(late.port, quiet=1.0, timeout=30 * SCALE)
    took = time.monotonic() - t0
    check(status_of(answer).startswith("HTTP/1.1 503"), "answered %r, want 503" % status_of(answer))
    check("authentication timed out" in answer, "the 503 does not say why: %r" % answer[-200:])
    check(took >= 9.0, "answered after %.1fs, before the 10 s limit" % took)
    note("%s 'authentication timed out' after %.1fs" % (status_of(answer), took))
    # The core cancelled the plugin's pending answer (ABI 1.3 cancel) and
    # gave its place back: the same address may be waited on again.
    check("cancelled a pending answer" in late.stderr(),
          "the plugin's pending answer was not cancelled:\n" + late.stderr()[-1500:])
    reader, writer = await asyncio.open_connection("127.0.0.1", late.port)
    try:
        writer.write(handshake_bytes(late.port))
        try:
            early = await asyncio.wait_for(reader.read(64), QUIET)
        except asyncio.TimeoutError:
            early = None
        check(early is None, "the next handshake from the address was answered at once "
              "(%r): the timed-out decision still holds its place" % early)
    finally:
        writer.close()
    note("the pending answer was cancelled; the next handshake waits, not 429")


@suite.test
async def sigterm_answers_waiting_handshakes_with_503_and_exits_0():
    """SIGTERM while handshakes wait: each gets HTTP 503 (never a 101), and confabd exits 0."""
    b = slow_broker("stopping", {"user": "alice", "delay_ms": 30000})
    b.start()
    waiting = [asyncio.ensure_future(raw_answer(b.port)) for _ in range(10)]
    await asyncio.sleep(0.5)
    b.send_signal(signal.SIGTERM)
    answers = await asyncio.gather(*waiting)
    statuses = sorted(set(status_of(a) for a in answers))
    check(statuses == ["HTTP/1.1 503 Service Unavailable"],
          "answers to waiting handshakes at SIGTERM: %r, want only 503" % statuses)
    await b.wait_async()
    b.check_clean_exit()
    note("10 waiting handshakes answered %s; exit 0" % statuses[0])


if __name__ == "__main__":
    suite.main()
