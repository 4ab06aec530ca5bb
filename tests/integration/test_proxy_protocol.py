#!/usr/bin/python3
"""[ws] proxy_protocol: behind a load balancer each client counts, logs and
authenticates under its own address, which the balancer's PROXY protocol
header names (docs/configuration.md, "Behind a load balancer").

One node with proxy_protocol = 127.0.0.9 (haproxytest.BALANCER) and
max_connections_per_address = 2; Debian's haproxy with the shipped
etc/haproxy.cfg (send-proxy-v2, check-send-proxy) in front of it.
  - through haproxy, clients from 127.0.0.2 and 127.0.0.3 are logged under
    those addresses; the third from 127.0.0.2 gets 429 while 127.0.0.3's
    first is admitted; haproxy's health checks (v2 LOCAL headers) keep the
    node in its pool;
  - a v1 header, sent by hand from the balancer's address in two pieces
    with the upgrade behind it, names the client (192.0.2.7); masked
    frames are served and an unmasked one is closed with 1002 (the frame
    check's stream offsets count the header);
  - from the balancer's address, a request without a header, or with a
    malformed one, is answered 400; from any other address a request is
    served as usual, and a PROXY header from there is not believed (405);
  - a reload that drops the balancer from the list applies to new
    connections;
  - confabd -t refuses a list entry that is not an address, and
    proxy_protocol with tls_cert, naming [ws] proxy_protocol.
Skipped (exit 77) without haproxy.

SPDX-License-Identifier: MIT
"""
import asyncio
import base64
import json
import os
import socket
import struct
import time

import websockets
import websockets.exceptions

from confabtest import (RECV_TIMEOUT, Suite, TestFailure, WS_SO, check, note, run_confabd,
                        write_config)
import haproxytest
from haproxytest import BALANCER, Haproxy
from tlstest import Certificates

suite = Suite("test_proxy_protocol", watchdog=120)

WS_KEYS = {"proxy_protocol": BALANCER}
node = suite.broker("node", broker={"max_connections_per_address": 2}, sections={"ws": WS_KEYS})


def opened_from(since, addr):
    """The session ids logged as opened from `addr` since offset `since`."""
    out = []
    for line in node.stderr()[since:].splitlines():
        if " open: user " in line and line.endswith(" from " + addr):
            out.append(line.split("[session] ", 1)[1].split(" ", 1)[0])
    return out


async def through(lb, src):
    """A WebSocket through haproxy from source address `src`: (ws, welcome)
    or (None, HTTP status)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((src, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", lb.front))
    try:
        ws = await websockets.connect("ws://127.0.0.1:%d/ws" % lb.front, sock=sock,
                                      open_timeout=RECV_TIMEOUT, ping_interval=None)
    except websockets.exceptions.InvalidStatusCode as e:
        return None, e.status_code
    return ws, json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))


@suite.test
async def through_haproxy_each_client_counts_under_its_own_address():
    """Two clients from 127.0.0.2 admitted, the third 429; one from
    127.0.0.3 admitted; the log names each client's address; after 3 s of
    health checks the node still takes clients through haproxy."""
    node.start()
    lb = Haproxy(suite.tmp)
    try:
        lb.start(node.port, node.port)
        since = len(node.stderr())
        a1, w1 = await through(lb, "127.0.0.2")
        a2, w2 = await through(lb, "127.0.0.2")
        a3, status = await through(lb, "127.0.0.2")
        check(a1 and a2 and w1["type"] == w2["type"] == "welcome",
              "the first two from 127.0.0.2: %r %r" % (w1, w2))
        check(a3 is None and status == 429, "the third from 127.0.0.2: %r" % (status,))
        b1, wb = await through(lb, "127.0.0.3")
        check(b1 is not None and wb["type"] == "welcome", "the first from 127.0.0.3: %r" % wb)
        time.sleep(0.2)
        check(sorted(opened_from(since, "127.0.0.2")) == sorted([w1["session"], w2["session"]])
              and opened_from(since, "127.0.0.3") == [wb["session"]],
              "the log does not name the clients' addresses:\n%s" % node.stderr()[since:])
        await asyncio.sleep(3)
        c1, wc = await through(lb, "127.0.0.4")
        check(c1 is not None and wc["type"] == "welcome",
              "after 3 s of health checks: %r\nhaproxy:\n%s" % (wc, lb.log()[-2000:]))
        for ws in (a1, a2, b1, c1):
            await ws.close()
        note("through haproxy: 127.0.0.2 x2 admitted, the third 429; 127.0.0.3 and 127.0.0.4 "
             "admitted; the log names each")
    finally:
        lb.stop()


def ws_frame(payload, opcode=1, masked=True):
    key = b"\x11\x22\x33\x44"
    head = bytes([0x80 | opcode])
    if masked:
        body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return head + bytes([0x80 | len(payload)]) + key + body
    return head + bytes([len(payload)]) + payload


def upgrade_request(port):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            "\r\n" % (port, key)).encode()


def read_until(s, needle, timeout=RECV_TIMEOUT):
    data = b""
    deadline = time.monotonic() + timeout
    s.settimeout(0.2)
    while needle not in data:
        if time.monotonic() > deadline:
            raise TestFailure("no %r within %.0fs; got %r" % (needle, timeout, data[:300]))
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            raise TestFailure("closed before %r; got %r" % (needle, data[:300]))
        data += chunk
    return data


def from_addr(src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.connect(("127.0.0.1", node.port))
    return s


@suite.test
def a_v1_header_names_the_client_and_unmasked_frames_are_still_refused():
    """From the balancer's address: "PROXY TCP4 192.0.2.7 ..." in two
    pieces, the upgrade behind it: 101, a session from 192.0.2.7; a masked
    ping is answered; an unmasked frame is closed with 1002."""
    node.start()
    since = len(node.stderr())
    with from_addr(BALANCER) as s:
        s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 ")
        time.sleep(0.1)
        s.sendall(b"80\r\n" + upgrade_request(node.port))
        head = read_until(s, b'"welcome"')   # the 101 and the welcome may come together
        check(head.startswith(b"HTTP/1.1 101"), "no 101: %r" % head[:100])
        s.sendall(ws_frame(b'{"type":"ping","ref":"p1"}'))
        read_until(s, b'"pong"')
        s.sendall(ws_frame(b"hi", masked=False))
        read_until(s, b"\x03\xeaunmasked frame")
    deadline = time.monotonic() + RECV_TIMEOUT
    while not opened_from(since, "192.0.2.7") or "code 1002" not in node.stderr()[since:]:
        check(time.monotonic() < deadline, "the log has no session from 192.0.2.7 closed "
              "with 1002:\n%s" % node.stderr()[since:])
        time.sleep(0.05)
    check("not checked" not in node.stderr()[since:],
          "the frame check gave up:\n%s" % node.stderr()[since:])
    note("v1 header from %s: a session from 192.0.2.7, pong, then 1002" % BALANCER)


def http_status(s, request):
    s.sendall(request)
    head = read_until(s, b"\r\n")
    return int(head.split(b" ", 2)[1])


@suite.test
def only_listed_balancers_are_believed_and_they_must_send_a_header():
    """From 127.0.0.9: no header -> 400, a malformed one -> 400, a v2 LOCAL
    header (a health check) -> /readyz 200. From 127.0.0.5: /readyz 200
    without a header; with a PROXY header -> 405 (not believed: a request
    whose method is PROXY)."""
    node.start()
    get = b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    local = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    cases = [(BALANCER, get, 400, "no header"),
             (BALANCER, b"PROXY TCP4 192.0.2.700 127.0.0.1 1 2\r\n" + get, 400, "bad v1"),
             (BALANCER, local + get, 200, "v2 LOCAL"),
             ("127.0.0.5", get, 200, "another address, no header"),
             # "PROXY" read as a request line's method: 405
             ("127.0.0.5", b"PROXY TCP4 192.0.2.7 127.0.0.1 1 2\r\n" + get, 405,
              "another address, with a header")]
    for src, req, want, what in cases:
        with from_addr(src) as s:
            got = http_status(s, req)
        check(got == want, "%s from %s: %d, want %d" % (what, src, got, want))
    note("; ".join("%s from %s: %d" % (what, src, want) for src, _, want, what in cases))


@suite.test
def a_reload_without_the_balancer_applies_to_new_connections():
    """proxy_protocol dropped by SIGHUP: a request from 127.0.0.9 without a
    header is served again."""
    node.start()
    node.rewrite(broker={"max_connections_per_address": 2}, sections={"ws": {}})
    node.reload("reloaded ")
    with from_addr(BALANCER) as s:
        got = http_status(s, b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check(got == 200, "from %s after the reload: %d, want 200" % (BALANCER, got))
    node.rewrite(broker={"max_connections_per_address": 2}, sections={"ws": WS_KEYS})
    node.reload("reloaded ")


@suite.test
def check_mode_refuses_a_bad_list_and_tls_with_it():
    """confabd -t: `proxy_protocol = 10.0.0.21, lb-b` and proxy_protocol with
    tls_cert each fail with a line naming [ws] proxy_protocol."""
    d = suite.tmp
    bad = write_config(d, {"plugins": WS_SO}, {"ws": {"listen": "127.0.0.1:0",
                                                      "proxy_protocol": "10.0.0.21, lb-b"}},
                       name="bad.ini")
    r = run_confabd(["-t", "-c", bad])
    check(r.code == 1 and "[ws] proxy_protocol: 'lb-b' is not an IP address" in r.stderr,
          "a name in the list:\n%s" % r.describe())
    certs = Certificates(d).make()
    tls = write_config(d, {"plugins": WS_SO}, {"ws": {"listen": "127.0.0.1:0",
                                                      "proxy_protocol": "10.0.0.21",
                                                      "tls_cert": certs.crt("server"),
                                                      "tls_key": certs.key("server")}},
                       name="tls.ini")
    r = run_confabd(["-t", "-c", tls])
    check(r.code == 1 and "[ws] proxy_protocol: and tls_cert together" in r.stderr,
          "proxy_protocol with tls_cert:\n%s" % r.describe())
    note("refused: a name in the list; proxy_protocol with tls_cert")


if __name__ == "__main__":
    haproxytest.main(suite, "the PROXY protocol test runs it")
