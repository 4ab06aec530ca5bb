"""HAProxy for the tests: Debian's haproxy run with the shipped
etc/haproxy.cfg, changed only in its addresses (loopback ones), in front
of two confabd nodes (or one, named twice).

The shipped file sends a PROXY protocol header to the nodes, which believe
it from the balancer's address in their [ws] proxy_protocol. On loopback
that address is BALANCER, 127.0.0.9, not 127.0.0.1: the harness's own
probes (/readyz at start) come from 127.0.0.1 without a header, and a
listed balancer must send one.

SPDX-License-Identifier: MIT
"""
import os
import re
import shutil
import sys
import time

from confabtest import SCALE, TOP_SRCDIR, TestFailure, check, http_get, reserve_port, spawn, tail

HAPROXY = shutil.which("haproxy") or next(
    (p for p in ("/usr/sbin/haproxy", "/sbin/haproxy") if os.access(p, os.X_OK)), None)


BALANCER = "127.0.0.9"


def haproxy_config(dir, front, health, node_a, node_b):
    """etc/haproxy.cfg with its addresses replaced by loopback ones, its
    connections to the nodes made from BALANCER (the source address of a
    real balancer is its own), and, not as root, without `user`/`group`,
    which only root can switch to."""
    with open(os.path.join(TOP_SRCDIR, "etc", "haproxy.cfg")) as f:
        text = f.read()
    swaps = [(r"(?m)^(\s*bind) :80$", r"\1 127.0.0.1:%d" % front),
             (r"(?m)^(\s*bind) 127\.0\.0\.1:8404$", r"\1 127.0.0.1:%d" % health),
             (r"(?m)^(\s*server node-a) 10\.0\.0\.11:8080", r"\1 127.0.0.1:%d" % node_a),
             (r"(?m)^(\s*server node-b) 10\.0\.0\.12:8080", r"\1 127.0.0.1:%d" % node_b),
             (r"(?m)^(\s*balance leastconn)$", r"\1\n    source %s" % BALANCER)]
    for pattern, repl in swaps:
        text, n = re.subn(pattern, repl, text)
        check(n == 1, "etc/haproxy.cfg: %r matched %d times (want once): the test adapts "
              "only the shipped addresses" % (pattern, n))
    if os.geteuid() != 0:
        text = re.sub(r"(?m)^\s*(user|group) haproxy$", "", text)
    path = os.path.join(dir, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(text)
    return path


class Haproxy:
    def __init__(self, tmp):
        self.dir = tmp
        # haproxy cannot bind port 0 and say which it got: reserved ports
        # (kept until stop; haproxy binds next to them with SO_REUSEADDR)
        (self.front, front_sock), (self.health, health_sock) = reserve_port(), reserve_port()
        self.reservations = [front_sock, health_sock]
        self.proc = None
        self.log_path = os.path.join(tmp, "haproxy.log")

    def start(self, node_a, node_b):
        cfg = haproxy_config(self.dir, self.front, self.health, node_a, node_b)
        out = open(self.log_path, "wb")
        try:
            # -db: in the foreground, whatever `daemon` says; -n: the
            # file's maxconn needs more descriptors than a test may open
            self.proc = spawn([HAPROXY, "-db", "-n", "4000", "-f", cfg], stdin=None,
                              stdout=out, stderr=out)
        finally:
            out.close()
        deadline = time.monotonic() + 10 * SCALE
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, "haproxy exited %s at start\n%s"
                  % (self.proc.returncode, tail(self.log())))
            try:
                if http_get(self.health, "/lb-health", timeout=1.0)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise TestFailure("haproxy: /lb-health not 200 within 10 s\n%s" % tail(self.log()))

    def log(self):
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        for sock in self.reservations:
            sock.close()
        self.reservations = []


def main(suite, needs_it_for):
    """Run the suite, or skip it (exit 77) when haproxy is not installed."""
    if HAPROXY is None:
        print("SKIP: haproxy is not installed (tools/install-deps installs it): %s"
              % needs_it_for)
        sys.exit(77)
    suite.main()
