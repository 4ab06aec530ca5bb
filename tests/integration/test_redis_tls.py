#!/usr/bin/python3
"""TLS between the redis backplane and Redis (issue 11): `[redis] tls = yes`,
`tls_ca_file`, `tls_cert_file`/`tls_key_file`, `tls_server_name`,
`tls_verify`.

CAs and certificates are made with openssl at test time (tlstest.py): ca1
signs the servers' certificate (DNS:localhost, IP:127.0.0.1), an expired
one, and the client certificate; ca2 signs only client2. Three TLS-only
redis-servers (--port 0): `good`, `mutual` (wants a client certificate
from ca1) and `expired`.

Checked:
  - chat across two nodes over TLS (port = the TLS port, tls_ca_file = ca1);
  - each failure gives its own clear line in the node's log and /readyz
    503, and the node keeps running (it exits 0 on SIGTERM at the end):
      wrong CA (ca2)                     "certificate verify failed"
      tls_server_name = wrong.example    "hostname mismatch"
      a server that wants a client
      certificate, none configured       "requires a client certificate"
      an expired server certificate      "certificate has expired"
      a client certificate from ca2      "refused our client certificate"
      a CA file that is not a CA file    "cannot load the CA file" (at
                                         startup: exit non-zero; or at
                                         run time: 503)
  - with tls_cert_file/tls_key_file (from ca1) the mutual server works;
  - tls_verify = no logs a warning and works with the wrong CA.

SPDX-License-Identifier: MIT
"""
import asyncio
import itertools
import os
import re
import time

from confabtest import Client, check, note, tail
from redistest import DETECT_TIMEOUT, Cluster, RedisSuite, readyz
from tlstest import Certificates, TlsRedisServer

suite = RedisSuite("test_redis_tls", watchdog=240)
certs = Certificates(suite.tmp)
good = TlsRedisServer(suite.tmp, certs, "redis-good")
mutual = TlsRedisServer(suite.tmp, certs, "redis-mutual", auth_clients="yes")
expired = TlsRedisServer(suite.tmp, certs, "redis-expired", cert="expired")

CA1 = {"tls": "yes", "tls_ca_file": certs.crt("ca1")}


def tls_cluster(names, server, **keys):
    k = dict(CA1)
    k.update(keys)
    return Cluster(suite, guests=names, redis=server, redis_keys=k)


ok = tls_cluster(("a", "b"), good)
with_cert = tls_cluster(("m",), mutual, tls_cert_file=certs.crt("client"),
                        tls_key_file=certs.key("client"))
no_verify = tls_cluster(("nv",), good, tls_ca_file=certs.crt("ca2"), tls_verify="no")

# node name -> (cluster, what its log must say, what it must not say: the
# reasons of the other failures)
FAILURES = {
    "wrongca": (tls_cluster(("wrongca",), good, tls_ca_file=certs.crt("ca2")),
                "certificate verify failed",
                ("hostname mismatch", "has expired", "client certificate")),
    "wrongname": (tls_cluster(("wrongname",), good, tls_server_name="wrong.example"),
                  "hostname mismatch", ("has expired", "client certificate")),
    "nocert": (tls_cluster(("nocert",), mutual), "requires a client certificate",
               ("certificate verify failed", "refused our client certificate")),
    "expired": (tls_cluster(("expired",), expired), "certificate has expired",
                ("hostname mismatch", "client certificate")),
    "othercert": (tls_cluster(("othercert",), mutual, tls_cert_file=certs.crt("client2"),
                              tls_key_file=certs.key("client2")),
                  "refused our client certificate",
                  ("requires a client certificate", "certificate verify failed")),
}

_rooms = itertools.count(1)


def room(prefix="tls"):
    return "%s-%d" % (prefix, next(_rooms))


def lines_with(node, text):
    return [l for l in node.stderr().splitlines() if text.lower() in l.lower()]


async def expect_line(node, text, timeout=DETECT_TIMEOUT + 5.0):
    """The first line of the node's log with `text` (case aside), waiting
    up to `timeout`; the node must keep running meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        found = lines_with(node, text)
        if found:
            return found[0]
        check(node.running(), "%s exited %s while waiting for a line with %r\n%s"
              % (node.name, node.proc.poll(), text, tail(node.stderr())))
        check(time.monotonic() < deadline, "%s: no log line with %r within %.0fs\n%s"
              % (node.name, text, timeout, tail(node.stderr())))
        await asyncio.sleep(0.05)


async def chat(x, y, where):
    r = room()
    await x.join(r)
    await y.join(r)
    ack = await x.say(r, "over TLS")
    m = await y.expect("message", room=r)
    check(m.get("seq") == ack["seq"] and m.get("id") == ack["id"] and m.get("body") == "over TLS",
          "%s: got %s for the ack %s" % (where, m, ack))
    return r


@suite.test
async def chat_across_two_nodes_over_tls():
    """a and b reach the TLS-only redis-server with tls_ca_file = ca1:
    /readyz 200, a message from a reaches b and one from b reaches a."""
    certs.make()
    ok.start()
    x = await Client.connect(ok["a"].port, name="x@a")
    y = await Client.connect(ok["b"].port, name="y@b")
    r = await chat(x, y, "a -> b")
    await chat(y, x, "b -> a")
    users = await x.presence(r)
    check(users == sorted([x.user, y.user]), "presence over TLS: %r" % users)
    out = await asyncio.to_thread(good.cli, "DBSIZE")
    check(out.isdigit() and int(out) > 0, "the TLS redis-server holds no key after the chat: %r"
          % out)
    note("chat a <-> b over TLS; the server (TLS only) holds %s keys" % out)


@suite.test
async def each_tls_failure_has_its_own_line_and_readyz_503():
    """Wrong CA, wrong server name, no client certificate for a server
    that wants one, an expired server certificate, a client certificate
    from another CA: each node logs its own reason and answers /readyz
    503, and keeps running."""
    certs.make()
    for srv in (good, mutual, expired):
        srv.start()
    for c, _, _ in FAILURES.values():
        c.start_nodes()
    for name, (c, want, others) in FAILURES.items():
        node = c[name]
        line = await expect_line(node, want)
        status = await readyz(node)
        check(status == 503, "%s: /readyz %s after %r (want 503)" % (name, status, line.strip()))
        for other in others:
            check(not lines_with(node, other), "%s: its log also says %r:\n%s"
                  % (name, other, tail(node.stderr())))
        check(node.running(), "%s is no longer running\n%s" % (name, tail(node.stderr())))
        note("%s: /readyz 503, %s" % (name, line.strip()[:200]))


@suite.test
async def a_client_certificate_makes_the_mutual_server_work():
    """With tls_cert_file/tls_key_file (from ca1) a node reaches the server
    that wants a client certificate: /readyz 200, a message is acked and
    comes back in history."""
    certs.make()
    with_cert.start()
    x = await Client.connect(with_cert["m"].port, name="x@m")
    r = room()
    await x.join(r)
    ack = await x.say(r, "with a client certificate")
    h = await x.request({"type": "history", "room": r})
    check([m.get("id") for m in h.get("messages", [])] == [ack["id"]],
          "history over mutual TLS: %s" % h)
    note("mutual TLS: acked seq %d and in history" % ack["seq"])


@suite.test
async def tls_verify_no_warns_and_works_with_the_wrong_ca():
    """tls_verify = no with tls_ca_file = ca2: a warning line names the
    switched-off verification; /readyz 200 and a message is acked."""
    certs.make()
    no_verify.start()
    node = no_verify["nv"]
    warn = [l for l in node.stderr().splitlines()
            if re.search(r"Z warn ", l) and re.search(r"verif", l, re.I)]
    check(warn, "no warning about tls_verify = no in the log:\n%s" % tail(node.stderr()))
    x = await Client.connect(node.port, name="x@nv")
    r = room()
    await x.join(r)
    ack = await x.say(r, "unverified")
    note("warned (%s); acked seq %d" % (warn[0].strip()[:160], ack["seq"]))


@suite.test
def a_ca_file_that_is_not_a_ca_gives_a_clear_line():
    """tls_ca_file naming a file that holds no certificate: confabd either
    refuses to start (non-zero exit) or serves /readyz 503; either way one
    line says "cannot load the CA file"."""
    certs.make()
    good.start()
    bad = os.path.join(suite.tmp, "not-a-ca.crt")
    with open(bad, "w") as f:
        f.write("this is not a certificate\n")
    c = tls_cluster(("badca",), good, tls_ca_file=bad)
    node = None
    try:
        c.start_nodes()
        node = c["badca"]
    except Exception as e:  # noqa: BLE001 - it may refuse to start
        node = c.nodes.get("badca")
        check(node is not None and node.proc is not None and node.proc.poll() not in (None, 0),
              "badca: neither running nor refused: %s" % e)
        check(lines_with(node, "cannot load the CA file"),
              "badca: exited %s without a line saying \"cannot load the CA file\"\n%s"
              % (node.proc.poll(), tail(node.stderr())))
        note("confabd refused to start (exit %s): %s" % (
            node.proc.poll(), lines_with(node, "cannot load the CA file")[0].strip()[:200]))
        return
    deadline = time.monotonic() + DETECT_TIMEOUT + 5.0
    while not lines_with(node, "cannot load the CA file"):
        check(time.monotonic() < deadline, "badca: no line saying \"cannot load the CA file\"\n%s"
              % tail(node.stderr()))
        time.sleep(0.05)
    status = asyncio.run(readyz(node))
    check(status == 503, "badca: /readyz %s (want 503)" % status)
    note("badca serves /readyz 503: %s" % lines_with(node, "cannot load the CA file")[0].strip()[:200])


if __name__ == "__main__":
    suite.main()
