#!/usr/bin/python3
"""confabd in a Type=notify unit: the test plays systemd's end of
NOTIFY_SOCKET (a Unix datagram socket it binds) and sees READY=1 once the
node serves, WATCHDOG=1 every half WATCHDOG_USEC from the loop, STOPPING=1
when SIGTERM starts the drain. Skipped when confabd was built without
libsystemd.

SPDX-License-Identifier: MIT
"""
import os
import signal
import socket
import threading
import time

from confabtest import (Suite, TOP_BUILDDIR, _bound_port, check, http_get, note, skip)


def built_with_systemd():
    try:
        with open(os.path.join(TOP_BUILDDIR, "confab-build.h")) as f:
            return "#define HAVE_SYSTEMD 1" in f.read()
    except OSError:
        return False


if not built_with_systemd():
    skip("confabd was built without libsystemd, so it sends nothing to NOTIFY_SOCKET "
         "(apt-get install libsystemd-dev, then run configure again)")

suite = Suite("test_notify", watchdog=90)

WATCHDOG_USEC = 400000   # a ping every 200 ms


class Systemd:
    """systemd's end of NOTIFY_SOCKET: keeps every datagram with the time it
    arrived. `on_ready` runs in the receiving thread the moment READY=1
    arrives, before anything else is read."""

    def __init__(self, name):
        self.path = os.path.join(suite.tmp, name + ".notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []        # (time.monotonic(), [lines])
        self.on_ready = None
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            lines = data.decode("utf-8", "replace").split("\n")
            if "READY=1" in lines and self.on_ready:
                self.on_ready()
            with self.lock:
                self.messages.append((time.monotonic(), lines))

    def times(self, line, since=0.0):
        """When each datagram holding `line` arrived (at or after `since`)."""
        with self.lock:
            return [t for t, lines in self.messages if line in lines and t >= since]

    def statuses(self):
        with self.lock:
            return [l for _, lines in self.messages for l in lines if l.startswith("STATUS=")]

    def wait_for(self, line, timeout, since=0.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.times(line, since)
            if got:
                return got[0]
            time.sleep(0.02)
        return None

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()


def notified_node(name, extra_env=None, broker=None):
    systemd = Systemd(name)
    env = {"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    env.update(extra_env or {})
    node = suite.broker(name, broker=broker, env=env)
    # What the node answers on /healthz the moment READY=1 arrives: the
    # port is in its log by then if every plugin started before READY=1.
    probe = []

    def on_ready():
        port = _bound_port(node.stderr())
        if port is None:
            probe.append("no \"listening on\" line in the log yet")
            return
        try:
            probe.append(http_get(port, "/healthz", timeout=2)[0])
        except OSError as e:
            probe.append("GET /healthz: %s" % e)
    systemd.on_ready = on_ready
    return systemd, node, probe


@suite.test
def ready_arrives_once_the_node_serves():
    """READY=1 comes once, with STATUS=serving as node NAME, when /healthz
    already answers 200."""
    systemd, node, probe = notified_node("ready")
    try:
        node.start()
        check(systemd.wait_for("READY=1", 5) is not None,
              "no READY=1 on NOTIFY_SOCKET although /readyz answers 200\n%s" % node.stderr())
        check(probe == [200], "GET /healthz when READY=1 arrived: %r, want [200]" % probe)
        check(len(systemd.times("READY=1")) == 1,
              "READY=1 sent %d times" % len(systemd.times("READY=1")))
        check("STATUS=serving as node ready" in systemd.statuses(),
              "STATUS lines: %r" % systemd.statuses())
        note("READY=1 with %r; /healthz answered 200 then" % systemd.statuses()[0])
        node.stop()
        node.check_clean_exit()
    finally:
        systemd.close()


@suite.test
def watchdog_pings_come_every_half_interval():
    """WATCHDOG_USEC=400000: at least 3 WATCHDOG=1 within 1 s of READY=1,
    and none once confabd has exited."""
    systemd, node, _ = notified_node("pings")
    try:
        node.start()
        ready = systemd.wait_for("READY=1", 5)
        check(ready is not None, "no READY=1\n%s" % node.stderr())
        time.sleep(1.0 - (time.monotonic() - ready))
        pings = [t for t in systemd.times("WATCHDOG=1", ready) if t <= ready + 1.0]
        check(len(pings) >= 3, "%d WATCHDOG=1 within 1 s of READY=1, want >= 3 (every 200 ms)"
              % len(pings))
        note("%d WATCHDOG=1 within 1 s of READY=1" % len(pings))
        node.stop()
        node.check_clean_exit()
        exited = time.monotonic()
        time.sleep(0.5)
        check(not systemd.times("WATCHDOG=1", exited), "WATCHDOG=1 after confabd exited")
    finally:
        systemd.close()


@suite.test
def sigterm_sends_stopping_and_the_pings_go_on_while_draining():
    """SIGTERM: STOPPING=1 with a draining status at once; the watchdog
    pings on through drain_grace (1 s); confabd exits 0."""
    systemd, node, _ = notified_node("stopping", broker={"drain_grace": 1, "drain_window": 1})
    try:
        node.start()
        check(systemd.wait_for("READY=1", 5) is not None, "no READY=1\n%s" % node.stderr())
        check(not systemd.times("STOPPING=1"), "STOPPING=1 before any signal")
        sent = time.monotonic()
        node.send_signal(signal.SIGTERM)
        stopping = systemd.wait_for("STOPPING=1", 1.0, since=sent)
        check(stopping is not None, "no STOPPING=1 within 1 s of SIGTERM\n%s" % node.stderr())
        check("STATUS=SIGTERM: draining 0 sessions" in systemd.statuses(),
              "STATUS lines: %r" % systemd.statuses())
        node.wait()
        node.check_clean_exit()
        during = systemd.times("WATCHDOG=1", stopping)
        check(len(during) >= 3, "%d WATCHDOG=1 during the 2 s drain, want >= 3" % len(during))
        note("STOPPING=1 %.0f ms after SIGTERM; %d pings while draining"
             % ((stopping - sent) * 1000, len(during)))
    finally:
        systemd.close()


@suite.test
def no_pings_when_the_watchdog_is_another_process_s():
    """WATCHDOG_PID names another process (sd_watchdog_enabled(3)): READY=1
    still comes, no WATCHDOG=1."""
    systemd, node, _ = notified_node("otherpid", extra_env={"WATCHDOG_PID": "1"})
    try:
        node.start()
        ready = systemd.wait_for("READY=1", 5)
        check(ready is not None, "no READY=1\n%s" % node.stderr())
        time.sleep(0.6)
        check(not systemd.times("WATCHDOG=1"), "WATCHDOG=1 although WATCHDOG_PID is 1")
        node.stop()
        node.check_clean_exit()
    finally:
        systemd.close()


@suite.test
def a_watchdog_without_a_notify_socket_changes_nothing():
    """WATCHDOG_USEC without NOTIFY_SOCKET: the node serves and exits 0."""
    node = suite.broker("nosocket", env={"WATCHDOG_USEC": str(WATCHDOG_USEC)})
    node.start()
    time.sleep(0.5)
    node.stop()
    node.check_clean_exit()


if __name__ == "__main__":
    suite.main()
