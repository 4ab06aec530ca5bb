#!/usr/bin/python3
"""The redis_cluster backplane over TLS (issue 11: "the same TLS and DNS
options work there too"): a Redis Cluster whose six nodes speak only TLS
(`--port 0 --tls-port P --tls-cluster yes --tls-replication yes`), made
with `redis-cli --tls --cluster create`, the certificates made at test
time (tlstest.Certificates).

  - two nodes with `tls = yes`, `tls_ca_file` and a seed given by name
    (`localhost:P`: resolved without blocking, the server certificate is
    for localhost and 127.0.0.1) chat across nodes: the slot map names
    the masters' TLS ports, and every link to them verifies its
    certificate (masters announce 127.0.0.1: checked as an IP address);
  - a node with the wrong CA logs `certificate verify failed` with the CA
    file it used, answers /readyz 503 and keeps running;
  - a bad CA file is a configuration error: `confabd -t` fails with one
    line naming `tls_ca_file`.

SPDX-License-Identifier: MIT
"""
import asyncio
import os
import subprocess
import time

from confabtest import (SCALE, WS_SO, Client, TestFailure, check, note, run_confabd, spawn,
                        tail, write_config)
from redistest import REDIS_CLI, _program, readyz
from clustertest import REDIS_CLUSTER_SO, ClusterNodes, ClusterServer, ClusterSuite
from tlstest import Certificates

CREATE_TIMEOUT = 60.0 * SCALE

suite = ClusterSuite("test_cluster_tls", watchdog=180)
certs = Certificates(suite.tmp)


class TlsClusterServer(ClusterServer):
    """A cluster node that speaks TLS only, on its reserved port (the bus,
    port + 10000, over TLS too)."""

    def argv(self):
        a = super().argv()
        i = a.index("--port")
        a[i:i + 2] = ["--port", "0", "--tls-port", str(self.port)]
        return a + ["--tls-cluster", "yes", "--tls-replication", "yes",
                    "--tls-cert-file", certs.crt("server"),
                    "--tls-key-file", certs.key("server"),
                    "--tls-ca-cert-file", certs.crt("ca1"), "--tls-auth-clients", "no"]

    def cli(self, *args, timeout=10.0 * SCALE):
        argv = [_program(REDIS_CLI) or REDIS_CLI, "--tls", "--cacert", certs.crt("ca1"),
                "-h", "127.0.0.1", "-p", str(self.port)] + [str(x) for x in args]
        p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise TestFailure("`%s` did not finish within %.0fs" % (" ".join(argv), timeout))
        return p.returncode, out.decode("utf-8", "replace")

    def ping(self):
        """PING over TLS (RedisProcess.start waits for it): "PONG", or what came back."""
        return self.cli("PING", timeout=5.0)[1].strip() or "no answer"


class TlsCluster:
    """Six TLS-only nodes, 3 masters with a replica each."""

    def __init__(self, tmp):
        d = os.path.join(tmp, "tlsrc")
        os.makedirs(d, exist_ok=True)
        self.servers = [TlsClusterServer(d, i) for i in range(6)]

    def seeds(self):
        return ["127.0.0.1:%d" % s.port for s in self.servers]

    started = False

    def start(self):
        if self.started:
            return self
        self.started = True
        for s in self.servers:
            s.start()
        rc, out = self.servers[0].cli(
            "--cluster", "create", *self.seeds(), "--cluster-replicas", "1", "--cluster-yes",
            timeout=CREATE_TIMEOUT)
        check(rc == 0, "redis-cli --tls --cluster create failed:\n%s" % tail(out))
        deadline = time.monotonic() + CREATE_TIMEOUT
        while time.monotonic() < deadline:
            states = [s.cli("CLUSTER", "INFO")[1] for s in self.servers]
            links = [s.cli("INFO", "replication")[1] for s in self.servers]
            if (all("cluster_state:ok" in x for x in states)
                    and sum("master_link_status:up" in x for x in links) == 3):
                return self
            time.sleep(0.2)
        raise TestFailure("the TLS cluster did not settle within %.0fs" % CREATE_TIMEOUT)


tc = TlsCluster(suite.tmp)
good = ClusterNodes(suite, None, guests=("a", "b"), partitions=16,
                    seeds=["localhost:%d" % tc.servers[0].port],
                    cluster_keys={"tls": "yes", "tls_ca_file": certs.crt("ca1")})
wrong_ca = ClusterNodes(suite, None, guests=("w",), partitions=16,
                        seeds=["localhost:%d" % tc.servers[0].port],
                        prefix="cc-tls-wrong-%d:" % os.getpid(),
                        cluster_keys={"tls": "yes", "tls_ca_file": certs.crt("ca2")})


@suite.test
async def chat_over_tls():
    """Two nodes on the TLS-only cluster: joined, acked, delivered across
    nodes, in both directions, for rooms on every master."""
    certs.make()
    await asyncio.to_thread(tc.start)
    await asyncio.to_thread(good.start)
    rooms = ["tls-%d" % i for i in range(12)]   # 16 partitions: every master gets some
    ca = await Client.connect(good["a"].port, name="ca")
    cb = await Client.connect(good["b"].port, name="cb")
    for c in (ca, cb):
        for r in rooms:
            await c.join(r)
    for i, r in enumerate(rooms):
        sender, receiver = (ca, cb) if i % 2 == 0 else (cb, ca)
        ack = await sender.request({"type": "send", "room": r, "body": "hello %d" % i})
        check(ack.get("type") == "ack" and ack.get("seq") == 1,
              "the first message of %s: %r" % (r, ack))
        m = await receiver.expect("message", room=r)
        check(m["body"] == "hello %d" % i and m["seq"] == 1,
              "the other node delivered %r in %s" % (m, r))
    log = good["a"].stderr()
    check("TLS" in log and "backplane up" in log, "node a's log:\n%s" % tail(log))
    note("12 rooms over TLS: every message acked and delivered across nodes")


@suite.test
async def wrong_ca_is_one_clear_line():
    """A node whose CA did not sign the cluster's certificates: one line
    saying why, with the CA file, /readyz 503, still running."""
    certs.make()
    await asyncio.to_thread(tc.start)
    await asyncio.to_thread(wrong_ca.start, None)
    w = wrong_ca["w"]
    deadline = time.monotonic() + 15.0 * SCALE
    while time.monotonic() < deadline and "certificate verify failed" not in w.stderr():
        await asyncio.sleep(0.2)
    log = w.stderr()
    check("certificate verify failed" in log and certs.crt("ca2") in log,
          "no 'certificate verify failed' line naming the CA file:\n%s" % tail(log))
    await asyncio.sleep(2.0)
    status = await readyz(w)
    check(status == 503, "/readyz is %s with the wrong CA" % status)
    check(w.running(), "the node with the wrong CA exited")
    lines = [l for l in log.splitlines() if "certificate verify failed" in l]
    check(len(lines) <= 2, "the failure is logged again and again:\n%s" % "\n".join(lines))


@suite.test
async def bad_ca_file_is_a_config_error():
    """tls_ca_file that does not exist: confabd -t fails, naming the key."""
    d = os.path.join(suite.tmp, "badca")
    os.makedirs(d, exist_ok=True)
    ini = write_config(d, {"node_id": "x", "plugins": [WS_SO, REDIS_CLUSTER_SO]},
                       {"ws": {"listen": "127.0.0.1:1"},
                        "redis_cluster": {"seeds": "127.0.0.1:1", "tls": "yes",
                                          "tls_ca_file": os.path.join(d, "no-such-ca.crt")}})
    r = run_confabd(["-t", "-c", ini])
    out = r.stdout + r.stderr
    check(r.code != 0, "confabd -t passed with a missing CA file:\n%s" % r.describe())
    check("tls_ca_file" in out and "CA file" in out,
          "the error does not name tls_ca_file:\n%s" % r.describe())


suite.main()
