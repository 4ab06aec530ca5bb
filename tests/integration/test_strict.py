#!/usr/bin/python3
"""Strict HTTP and WebSocket at the ws transport (issue 14, item 9;
docs/security.md "HTTP and WebSocket strictness"): raw sockets and
hand-built frames, since client libraries do not send what is tested here.

SPDX-License-Identifier: MIT
"""
import os
import re
import socket
import struct
import time

from confabtest import Suite, check, note, RECV_TIMEOUT, SCALE

suite = Suite("test_strict", watchdog=120)
node = suite.broker("strict")

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % KEY)


def frame(payload, opcode=1, masked=True, fin=True):
    """One client frame, masked unless told otherwise."""
    b = bytes([(0x80 if fin else 0) | opcode])
    m = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        b += bytes([m | n])
    elif n < 65536:
        b += bytes([m | 126]) + struct.pack("!H", n)
    else:
        b += bytes([m | 127]) + struct.pack("!Q", n)
    if masked:
        k = os.urandom(4)
        b += k + bytes(c ^ k[i % 4] for i, c in enumerate(payload))
    else:
        b += payload
    return b


def read_until_closed(s, timeout):
    """Everything the server sends until it closes, and when it closed
    (None: still open at the timeout)."""
    s.settimeout(timeout)
    got, t0 = b"", time.monotonic()
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return got, time.monotonic() - t0
            got += d
    except ConnectionResetError:
        return got, time.monotonic() - t0
    except socket.timeout:
        return got, None


def http(port, request):
    s = socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT)
    s.sendall(request)
    got, secs = read_until_closed(s, RECV_TIMEOUT)
    s.close()
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", got)
    return (int(m.group(1)) if m else None), got, secs


def server_frames(data):
    """Parse the server's (unmasked) frames: [(opcode, payload)]."""
    out, i = [], 0
    while i + 2 <= len(data):
        op, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n = struct.unpack("!H", data[i:i + 2])[0]
            i += 2
        elif n == 127:
            n = struct.unpack("!Q", data[i:i + 8])[0]
            i += 8
        out.append((op, data[i:i + n]))
        i += n
    return out


def session(port):
    """A raw WebSocket session past its welcome: (socket, leftover bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT)
    s.sendall((UPGRADE + "Sec-WebSocket-Protocol: confab.v1\r\n\r\n").encode())
    got = b""
    while b"\r\n\r\n" not in got or b"welcome" not in got:
        d = s.recv(65536)
        check(d, "closed during the handshake: %r" % got)
        got += d
    check(got.startswith(b"HTTP/1.1 101 "), "handshake answered %r" % got[:60])
    return s


# ---- HTTP ---------------------------------------------------------------

@suite.test
def ambiguous_request_framing_is_400_and_closed():
    """Two Content-Length headers (different, or not), Content-Length with
    Transfer-Encoding, Transfer-Encoding on a GET (plain or a WebSocket
    handshake): 400, and the connection closed at once."""
    port = node.start().port
    cases = {
        "two different Content-Length":
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n",
        "two equal Content-Length":
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        "Content-Length and Transfer-Encoding":
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
        "Transfer-Encoding on a GET":
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding on a handshake":
            (UPGRADE + "Transfer-Encoding: chunked\r\n\r\n").encode(),
        "two Content-Length on a handshake":
            (UPGRADE + "Content-Length: 0\r\nContent-Length: 1\r\n\r\n").encode(),
    }
    for name, req in cases.items():
        status, got, secs = http(port, req)
        check(status == 400, "%s -> %r" % (name, got[:80]))
        check(secs is not None and secs < 2.0 * SCALE, "%s: not closed at once" % name)
        check(b" 101 " not in got, "%s: upgraded" % name)
        note("%s -> 400, closed" % name)
    status, _, _ = http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    check(status == 200, "one Content-Length: 0 on a GET -> %s" % status)


@suite.test
def plain_http_answers_close_the_connection():
    """GET /healthz with keep-alive: answered, then the server closes (every
    request goes through the same checks)."""
    port = node.start().port
    status, got, secs = http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                   b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    check(status == 200, "GET /healthz -> %r" % got[:80])
    check(got.count(b"HTTP/1.1 ") == 1, "two answers on one connection: %r" % got)
    check(re.search(rb"(?i)\r\nconnection: close\r\n", got), "no Connection: close: %r" % got)
    check(secs is not None, "the connection stayed open")


# ---- WebSocket ----------------------------------------------------------

@suite.test
def a_valid_close_is_echoed():
    """Close 1000 "bye" -> the server's close 1000 "bye"; an empty close ->
    an empty close."""
    port = node.start().port
    for payload in (struct.pack("!H", 1000) + b"bye", struct.pack("!H", 4000) + b"x", b""):
        s = session(port)
        s.sendall(frame(payload, opcode=8))
        got, secs = read_until_closed(s, RECV_TIMEOUT)
        s.close()
        frames = server_frames(got[got.find(b"\x88"):])
        check(frames and frames[0] == (8, payload), "close %r answered %r" % (payload, frames))


@suite.test
def a_bad_close_is_answered_1002_and_never_echoed():
    """Close frames with codes outside 1000-4999, reserved (1004, 1005,
    1006, 1015) or unassigned (1016-2999), a reason that is not UTF-8, or a
    1-byte payload: the server's close is 1002, with nothing of the
    client's in it; the connection ends."""
    port = node.start().port
    bad = [struct.pack("!H", c) + b"CLIENT" for c in (0, 999, 1004, 1005, 1006, 1015, 1016,
                                                        2000, 2999, 5000, 65535)]
    bad += [struct.pack("!H", 1000) + b"\xff\xfeCLIENT", struct.pack("!H", 1000) + b"\xed\xa0\x80",
            b"\x03"]
    for payload in bad:
        s = session(port)
        s.sendall(frame(payload, opcode=8))
        # 1-byte payloads: lws waits up to 5 s for an answer to its close
        got, secs = read_until_closed(s, 8.0 * SCALE)
        s.close()
        at = got.find(b"\x88")
        frames = server_frames(got[at:]) if at >= 0 else []
        check(frames, "close %r: no close frame back (%r)" % (payload, got[-60:]))
        op, body = frames[0]
        check(op == 8 and len(body) >= 2 and struct.unpack("!H", body[:2])[0] == 1002,
              "close %r answered %r, want 1002" % (payload, frames[0]))
        check(b"CLIENT" not in body and b"\xff" not in body,
              "close %r: the client's reason was echoed: %r" % (payload, body))
        check(secs is not None, "close %r: connection still open" % payload)
        note("close %r -> 1002 %r, closed after %.2f s" % (payload[:8], body[2:], secs))


@suite.test
def garbage_is_refused_or_closed_and_the_node_serves_on():
    """300 connections of random bytes, random request lines and cut
    handshakes (each ended by the client): every one is answered with a
    4xx or closed, at once; the node still serves /healthz after."""
    import random
    rnd = random.Random(14)
    port = node.start().port
    pieces = [UPGRADE.encode(), b"GET / HTTP/1.1\r\n", b"\r\n", b"Host: x\r\n",
              b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n", b" ", b":",
              b"\x00", b"\xff\xfe", b"GET", b"HTTP/1.1", b"/ws", b"Upgrade: websocket\r\n"]
    statuses = {}
    for i in range(300):
        kind = i % 3
        if kind == 0:
            data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300)))
        elif kind == 1:
            data = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12)))
        else:
            full = (UPGRADE + "\r\n").encode() + frame(b'{"type":"ping"}')
            data = full[:rnd.randint(1, len(full))]
        s = socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        got, secs = read_until_closed(s, 3.0 * SCALE)
        s.close()
        check(secs is not None, "%r: still open after %.0f s" % (data[:60], 3.0 * SCALE))
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", got)
        st = int(m.group(1)) if m else None
        statuses[st] = statuses.get(st, 0) + 1
    note("answers: %s" % ", ".join("%s: %d" % (k, v) for k, v in sorted(statuses.items(),
                                                                      key=lambda kv: str(kv[0]))))
    check(http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200,
          "/healthz after the garbage")


# ---- unmasked client frames (RFC 6455 5.1) ------------------------------

def ping_msg(ref, size=None):
    """A ping message, padded with spaces to `size` bytes."""
    m = b'{"type":"ping","ref":%d}' % ref
    return m if size is None else m + b" " * (size - len(m))


def until_text(s, want, buf=b""):
    """Read server frames until a text frame holds `want`: (frames, rest).
    Fails on a close or at the timeout."""
    s.settimeout(RECV_TIMEOUT)
    seen = []
    while True:
        frames, used = parse_some(buf)
        buf = buf[used:]
        for op, body in frames:
            seen.append((op, body[:80]))
            check(op != 8, "closed while waiting for %r: %r" % (want, body))
            if op == 1 and want in body:
                return seen, buf
        d = s.recv(65536)
        check(d, "connection ended while waiting for %r (%r)" % (want, seen))
        buf += d


def parse_some(data):
    """Whole server frames at the start of data: ([(opcode, payload)], bytes used)."""
    out, i = [], 0
    while i + 2 <= len(data):
        op, n, j = data[i] & 0x0F, data[i + 1] & 0x7F, i + 2
        if n == 126:
            if j + 2 > len(data):
                break
            n, j = struct.unpack("!H", data[j:j + 2])[0], j + 2
        elif n == 127:
            if j + 8 > len(data):
                break
            n, j = struct.unpack("!Q", data[j:j + 8])[0], j + 8
        if j + n > len(data):
            break
        out.append((op, data[j:j + n]))
        i = j + n
    return out, i


def closed_1002(s, what):
    """The server's next close is 1002 and the connection ends."""
    got, secs = read_until_closed(s, 8.0 * SCALE)
    s.close()
    frames, _ = parse_some(got)
    closes = [b for op, b in frames if op == 8]
    check(closes, "%s: no close frame (%r, closed after %s s)" % (what, got[-80:], secs))
    check(len(closes[0]) >= 2 and struct.unpack("!H", closes[0][:2])[0] == 1002,
          "%s: closed with %r, want 1002" % (what, closes[0]))
    check(secs is not None, "%s: the connection stayed open" % what)
    check(not any(op == 1 and b"UNMASKED" in b for op, b in frames),
          "%s: the unmasked frame was served" % what)
    note("%s -> 1002 %r, closed after %.2f s" % (what, closes[0][2:], secs))


@suite.test
def an_unmasked_frame_after_a_good_one_is_closed_1002():
    """A masked ping is answered; an unmasked text frame after it gets the
    server's close 1002 and the connection ends; so do an unmasked ping and
    an unmasked close."""
    port = node.start().port
    cases = [("text", frame(b'{"type":"ping","ref":2,"x":"UNMASKED"}', masked=False)),
             ("ping", frame(b"UNMASKED", opcode=9, masked=False)),
             ("close", frame(struct.pack("!H", 1000) + b"UNMASKED", opcode=8, masked=False))]
    for name, bad in cases:
        s = session(port)
        s.sendall(frame(ping_msg(1)))
        until_text(s, b'"pong"')
        s.sendall(bad)
        closed_1002(s, "an unmasked %s after a good frame" % name)
    check(http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200, "/healthz after")


@suite.test
def an_unmasked_frame_behind_the_handshake_is_closed_1002_after_the_101():
    """Frames in the same TCP segment as the handshake: a masked ping is
    served, the unmasked frame behind it gets 1002 after the 101."""
    port = node.start().port
    for bad in (frame(b'{"type":"ping","ref":2,"x":"UNMASKED"}', masked=False),
                frame(b"UNMASKED", opcode=9, masked=False)):
        s = socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall((UPGRADE + "Sec-WebSocket-Protocol: confab.v1\r\n\r\n").encode()
                  + frame(ping_msg(1)) + bad)
        got, secs = read_until_closed(s, 8.0 * SCALE)
        s.close()
        check(got.startswith(b"HTTP/1.1 101 "), "not upgraded: %r" % got[:60])
        frames, _ = parse_some(got[got.find(b"\r\n\r\n") + 4:])
        check(any(op == 1 and b'"pong"' in b for op, b in frames),
              "the good frame was not served: %r" % frames)
        closes = [b for op, b in frames if op == 8]
        check(closes and struct.unpack("!H", closes[0][:2])[0] == 1002,
              "closed with %r, want 1002" % closes)
        check(secs is not None, "the connection stayed open")
        note("101, pong, close 1002 after %.2f s" % secs)


@suite.test
def masked_frames_of_every_size_keep_working():
    """Masked messages of 125, 126, 65535 and 65536 bytes, one of 70000
    (over max_message_bytes: error too_large, the connection stays), a message
    in three fragments with a ping between them, and pings: all served on
    one connection; an unmasked ping after them is still refused."""
    port = node.start().port
    s = session(port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    for ref, size in enumerate((125, 126, 65535), start=1):
        s.sendall(frame(ping_msg(ref, size)))
        _, buf = until_text(s, b'"ref":%d' % ref, buf)
    s.sendall(frame(ping_msg(4, 65536)))
    _, buf = until_text(s, b'"ref":4', buf)
    s.sendall(frame(ping_msg(5, 70000)))
    _, buf = until_text(s, b"too_large", buf)
    m = ping_msg(6, 3000)
    s.sendall(frame(m[:1000], fin=False) + frame(b"p1", opcode=9))
    s.sendall(frame(m[1000:2000], opcode=0, fin=False))
    s.sendall(frame(b"p2", opcode=9) + frame(m[2000:], opcode=0))
    seen, buf = until_text(s, b'"ref":6', buf)
    check(sum(1 for op, _ in seen if op == 10) >= 1, "no pong frame for the pings: %r" % seen)
    s.sendall(frame(ping_msg(7)))
    _, buf = until_text(s, b'"ref":7', buf)
    # The walk kept up with all of it: an unmasked frame now is still seen.
    s.sendall(frame(b"UNMASKED", opcode=9, masked=False))
    closed_1002(s, "an unmasked ping after every size")
    check("are not checked" not in node.stderr(), "the check was turned off:\n%s" % node.stderr())


@suite.test
def a_large_message_in_many_segments_is_not_refused():
    """A 60000-byte masked message sent 700 bytes at a time, then 20 small
    messages in one write, three times over: every one served; an unmasked
    frame after them is still refused (the walk kept up)."""
    port = node.start().port
    s = session(port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf, ref = b"", 1
    for _ in range(3):
        data = frame(ping_msg(ref, 60000))
        for i in range(0, len(data), 700):
            s.sendall(data[i:i + 700])
            time.sleep(0.001)
        _, buf = until_text(s, b'"ref":%d' % ref, buf)
        ref += 1
        s.sendall(b"".join(frame(ping_msg(ref + i, 100 + 37 * i)) for i in range(20)))
        _, buf = until_text(s, b'"ref":%d' % (ref + 19), buf)
        ref += 20
    s.sendall(frame(b'{"x":"UNMASKED"}', masked=False))
    closed_1002(s, "an unmasked frame after the large messages")
    check("are not checked" not in node.stderr(), "the check was turned off:\n%s" % node.stderr())


if __name__ == "__main__":
    suite.main()
