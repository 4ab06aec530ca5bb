#!/usr/bin/python3
"""TLS on the ws listener ([ws] tls_cert, tls_key, tls_ca; issue 12):
clients chat over wss:// and read /healthz over https:// with a test CA
made by openssl now; a bad certificate or key is a `confabd -t` error
naming the key; client certificates are required with tls_ca; a plain
client and a client that never finishes its handshake are closed while
the node keeps serving; a renewed certificate is served to new
connections after SIGHUP while older ones stay up.

SPDX-License-Identifier: MIT
"""
import os
import shutil
import socket
import ssl
import subprocess
import time

from confabtest import (Suite, Client, WS_SO, check, note, http_get, run_confabd,
                        write_config, tail)
from tlstest import OPENSSL, Certificates, _program

suite = Suite("test_tls_listener", watchdog=240)
certs = Certificates(suite.tmp).make()

# The seconds a TLS handshake may take (WS_HANDSHAKE_SECS in ws.h).
HANDSHAKE_SECS = 10


def server_files(dir, name="server"):
    """Copies of certificate NAME and its key in `dir` (so that a test can
    replace them): (cert, key)."""
    certs.make()
    os.makedirs(dir, exist_ok=True)
    cert, key = os.path.join(dir, "tls.crt"), os.path.join(dir, "tls.key")
    shutil.copyfile(certs.crt(name), cert + ".new")
    shutil.copyfile(certs.key(name), key + ".new")
    os.replace(key + ".new", key)
    os.replace(cert + ".new", cert)
    return cert, key


def make_renewed():
    """A second certificate for the same names from ca1 ("renewed": another
    subject, key and serial)."""
    certs.make()
    if os.path.exists(certs.crt("renewed")):
        return
    o = _program(OPENSSL) or OPENSSL
    for argv in ([o, "req", "-config", "c.cnf", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "renewed.key",
                  "-subj", "/CN=renewed", "-out", "renewed.csr"],
                 [o, "x509", "-req", "-in", "renewed.csr", "-CA", "ca1.crt", "-CAkey", "ca1.key",
                  "-CAcreateserial", "-extfile", "c.cnf", "-extensions", "server", "-days", "2",
                  "-out", "renewed.crt"]):
        p = subprocess.run(argv, cwd=certs.dir, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        check(p.returncode == 0, "openssl failed:\n%s" % tail(p.stdout.decode("utf-8", "replace")))


def tls_broker(name, ws=None, broker=None, nofile=None):
    """A broker whose [ws] serves TLS with a copy of the server certificate
    (node.tls_files: its paths); `ws` adds [ws] keys."""
    d = os.path.join(suite.tmp, name + "-tls")
    cert, key = server_files(d)
    keys = {"tls_cert": cert, "tls_key": key}
    keys.update(ws or {})
    node = suite.broker(name, broker=dict({"log_level": "debug"}, **(broker or {})),
                        sections={"ws": keys}, nofile=nofile)
    node.ssl_context = certs.context()
    node.tls_files = (cert, key)
    return node


def peer_cert(port, ctx=None):
    """The DER certificate a new TLS connection to the port is served."""
    ctx = ctx or certs.context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.getpeercert(binary_form=True)


def file_der(path):
    with open(path, encoding="ascii") as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def closed_within(sock, seconds):
    """Read until EOF or a reset; True if that came within `seconds`."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


async def chat_pair(port, ctx, room="tls"):
    a = await Client.connect(port, name="A", ssl_context=ctx)
    b = await Client.connect(port, name="B", ssl_context=ctx)
    await a.join(room)
    await b.join(room)
    ack = await a.say(room, "over TLS")
    check(ack.get("type") == "ack", "A's message was not acked: %r" % ack)
    await b.expect("message", room=room, body="over TLS")
    return a, b


node = tls_broker("tls")


@suite.test
async def wss_clients_chat_and_healthz_is_served_over_https():
    """Two wss:// clients trusting the test CA: welcome, join, send/ack,
    the other receives; GET /healthz over https is 200."""
    port = node.start().port
    check("listening on https://" in node.stderr(), "no https:// in the listening line:\n%s"
          % tail(node.stderr()))
    a, b = await chat_pair(port, node.ssl_context)
    status, _, body = http_get(port, "/healthz", context=node.ssl_context)
    check(status == 200, "GET /healthz over https: %d %r" % (status, body[:80]))
    await a.close()
    await b.close()


@suite.test
def a_plain_client_is_closed_and_the_node_keeps_serving():
    """ws:// to the TLS port: the connection closes (no HTTP answer in
    clear); then a wss client and https still work."""
    port = node.start().port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        check(closed_within(s, 5), "a plain request to the TLS port was not closed within 5 s")
    status, _, _ = http_get(port, "/healthz", context=node.ssl_context)
    check(status == 200, "GET /healthz over https after a plain client: %d" % status)


@suite.test
def a_handshake_that_never_ends_is_closed_by_the_deadline():
    """A TCP client that sends half a ClientHello is closed about
    WS_HANDSHAKE_SECS after its accept."""
    port = node.start().port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        t0 = time.monotonic()
        check(closed_within(s, HANDSHAKE_SECS + 5),
              "a stalled TLS handshake was still open after %d s" % (HANDSHAKE_SECS + 5))
        took = time.monotonic() - t0
        check(took >= HANDSHAKE_SECS - 1, "closed after %.1f s, before the deadline" % took)
    note("closed after %.1f s" % took)


@suite.test
def the_tls_and_websocket_handshakes_share_one_deadline():
    """A client that takes 6 s over its TLS handshake, then sends no HTTP
    request, is closed WS_HANDSHAKE_SECS after its TCP accept, not 10 s
    after its TLS handshake."""
    port = node.start().port
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    try:
        time.sleep(6)
        s = node.ssl_context.wrap_socket(raw, server_hostname="localhost")
        check(time.monotonic() - t0 < HANDSHAKE_SECS - 2, "the TLS handshake took too long")
        check(closed_within(s, HANDSHAKE_SECS + 5), "still open %d s after the accept"
              % (2 * HANDSHAKE_SECS))
        took = time.monotonic() - t0
        check(HANDSHAKE_SECS - 1 <= took <= HANDSHAKE_SECS + 2,
              "closed %.1f s after the TCP accept; want about %d" % (took, HANDSHAKE_SECS))
        s.close()
    finally:
        raw.close()
    note("closed %.1f s after the TCP accept (TLS done after 6 s)" % took)


def no_room_while_held(port, n, what):
    """While `n` TCP connections to the port are held (in their TLS
    handshake), a TLS client is refused; once they go, one gets through
    within 5 s."""
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    try:
        time.sleep(0.5)
        try:
            peer_cert(port)
            check(False, "a TLS client got through past %s" % what)
        except (ssl.SSLError, OSError):
            pass
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            peer_cert(port)
            return
        except (ssl.SSLError, OSError) as e:
            check(time.monotonic() < deadline, "no TLS client admitted after the others left: %s" % e)
            time.sleep(0.1)


limited = tls_broker("tls-limited", broker={"max_connections_per_address": 2})


@suite.test
def handshakes_count_against_max_connections_per_address():
    """With max_connections_per_address = 2, two TCP connections still in
    their TLS handshake leave no room for a third client, until they go."""
    no_room_while_held(limited.start().port, 2, "two handshakes in progress")


few_descriptors = tls_broker("tls-nofile", broker={"max_connections_per_address": 0}, nofile=110)


@suite.test
def tls_clients_are_capped_at_what_the_descriptor_limit_holds():
    """RLIMIT_NOFILE 110: (110 - 32 headroom) / 3 = 26 TLS clients, said at
    start; 26 connections are held, the 27th is closed, and the node still
    serves once they go."""
    port = few_descriptors.start().port
    check("at most 26 clients" in few_descriptors.stderr(),
          "no line capping TLS clients at 26:\n%s" % tail(few_descriptors.stderr()))
    no_room_while_held(port, 26, "26 clients with RLIMIT_NOFILE 110")


def ws_frame(payload, opcode=1, masked=True):
    """One client frame (payloads under 64 KB), masked unless told otherwise."""
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big"))
    if not masked:
        return head + payload
    head = bytearray(head)
    head[1] |= 0x80
    k = os.urandom(4)
    return bytes(head) + k + bytes(c ^ k[i % 4] for i, c in enumerate(payload))


def read_tls_until(s, needle, timeout=10):
    """Bytes read from TLS socket `s` until `needle` is among them, or it
    closes: (bytes, closed)."""
    s.settimeout(timeout)
    got = b""
    while needle not in got:
        try:
            d = s.recv(65536)
        except (socket.timeout, ssl.SSLError, OSError):
            return got, False
        if not d:
            return got, True
        got += d
    return got, False


@suite.test
def unmasked_frames_are_still_refused_over_tls():
    """The unmasked-frame check sees through the relay: masked pings of
    several sizes are answered over TLS; an unmasked one then gets close
    1002, and the check was never turned off."""
    port = node.start().port
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with node.ssl_context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  b"Sec-WebSocket-Protocol: confab.v1\r\n\r\n")
        got, _ = read_tls_until(s, b"welcome")
        check(got.startswith(b"HTTP/1.1 101 "), "handshake over TLS answered %r" % got[:60])
        for ref, size in enumerate((30, 125, 126, 20000), start=1):
            m = b'{"type":"ping","ref":%d}' % ref
            s.sendall(ws_frame(m + b" " * max(0, size - len(m))))
            got, closed = read_tls_until(s, b'"ref":%d' % ref)
            check(not closed and b'"ref":%d' % ref in got, "ping %d over TLS not answered" % ref)
        s.sendall(ws_frame(b"UNMASKED", opcode=9, masked=False))
        got, closed = read_tls_until(s, b"\x88\x02\x03\xea")
        check(b"\x03\xea" in got, "no close 1002 after an unmasked frame over TLS: %r" % got[-40:])
    check("are not checked" not in node.stderr(),
          "the unmasked-frame check was turned off over TLS:\n%s" % tail(node.stderr()))


def config_line(path, key):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.split("=")[0].strip() == key:
                return n
    return None


def dash_t_error(name, ws, key):
    """`confabd -t` with these [ws] keys exits 1 with one error line naming
    the file, the key's line, [ws] and the key; that line."""
    d = os.path.join(suite.tmp, name)
    os.makedirs(d, exist_ok=True)
    cfg = write_config(d, {"node_id": name, "plugins": WS_SO},
                       {"ws": dict({"listen": "127.0.0.1:0"}, **ws)})
    r = run_confabd(["-t", "-c", cfg])
    check(not r.timed_out and r.code == 1, "confabd -t: %s" % r.describe())
    want = "%s:%d:" % (cfg, config_line(cfg, key))
    lines = [l for l in r.stderr.splitlines() if want in l and "[ws]" in l and key in l]
    check(len(lines) == 1, "no one line with %r, [ws] and %s:\n%s" % (want, key, r.stderr))
    return lines[0]


@suite.test
def a_key_that_does_not_match_the_certificate_fails_confabd_t_on_tls_key():
    """tls_key from another certificate: `confabd -t` exits 1 naming tls_key."""
    certs.make()
    line = dash_t_error("wrong-key", {"tls_cert": certs.crt("server"),
                                      "tls_key": certs.key("client")}, "tls_key")
    check("mismatch" in line, "the line does not say why: %s" % line)
    note(line)


@suite.test
def a_missing_certificate_fails_confabd_t_on_tls_cert():
    """tls_cert names no file: `confabd -t` exits 1 naming tls_cert and the
    system's reason."""
    certs.make()
    missing = os.path.join(suite.tmp, "no-such.crt")
    line = dash_t_error("no-cert", {"tls_cert": missing, "tls_key": certs.key("server")},
                        "tls_cert")
    check("cannot read certificate %s: No such file" % missing in line,
          "the line does not say what: %s" % line)
    note(line)


mutual = tls_broker("tls-ca", ws={"tls_ca": certs.crt("ca1")})
mutual.ssl_context = certs.context(client="client")


@suite.test
async def with_tls_ca_a_client_needs_a_certificate_from_that_ca():
    """tls_ca = ca1: a client without a certificate is refused in the
    handshake; one with a certificate from ca1 chats."""
    port = mutual.start().port
    try:
        await Client.connect(port, name="anonymous", ssl_context=certs.context())
        check(False, "a client without a certificate was admitted")
    except (ssl.SSLError, OSError, Exception) as e:
        check(not isinstance(e, AssertionError), "unexpected: %r" % e)
        note("without a certificate: %s" % type(e).__name__)
    ctx = certs.context(client="client")
    a, b = await chat_pair(port, ctx)
    await a.close()
    await b.close()


renewing = tls_broker("tls-renew")


@suite.test
async def a_renewed_certificate_is_served_after_sighup_and_older_connections_stay():
    """The certificate files are replaced and SIGHUP sent: a new connection
    is served the new certificate; a client connected before keeps
    chatting."""
    make_renewed()
    port = renewing.start().port
    cert, key = renewing.tls_files
    check(peer_cert(port) == file_der(certs.crt("server")), "not served the first certificate")
    a, b = await chat_pair(port, renewing.ssl_context, room="before")
    shutil.copyfile(certs.key("renewed"), key + ".new")
    shutil.copyfile(certs.crt("renewed"), cert + ".new")
    os.replace(key + ".new", key)
    os.replace(cert + ".new", cert)
    renewing.reload("reloaded ")
    check(peer_cert(port) == file_der(certs.crt("renewed")),
          "a new connection after SIGHUP is not served the renewed certificate")
    ack = await a.say("before", "still here")
    check(ack.get("type") == "ack", "the older connection's message was not acked: %r" % ack)
    await b.expect("message", room="before", body="still here")
    c = await Client.connect(port, name="C", ssl_context=renewing.ssl_context)
    await c.join("before")
    await c.say("before", "renewed")
    await a.expect("message", room="before", body="renewed")
    for x in (a, b, c):
        await x.close()


if __name__ == "__main__":
    suite.main()
