#!/usr/bin/python3
"""confabctl and the control socket ([broker] control_socket, issue 12):
  - status counts this node's sessions and rooms; --json prints the object;
  - log-level debug makes debug lines appear in the log at once;
  - drain: /readyz 503 at once, clients closed with 1001, exit 0;
  - the socket has mode 0600, is owned by the user confabd runs as, and
    another user (nobody, via setpriv) is refused; it is gone after exit;
  - a garbage or too-long request gets an error answer, a silent one is
    answered after 5 s, connections over the limit are closed, and the node
    keeps serving throughout;
  - a stale socket file is replaced; one a process answers on stops the
    start with one clear line;
  - (reload: test_reload.py);
  - confabd -t refuses a control_socket in a directory that does not exist.

SPDX-License-Identifier: MIT
"""
import asyncio
import json
import os
import shutil
import socket
import stat
import subprocess
import time

from confabtest import (CONFABCTL, QUICK_EXIT, RECV_TIMEOUT, SCALE, Client, Suite,
                        check, http_get, note, run_confabd, tail, write_config, WS_SO)

suite = Suite("test_control", watchdog=240)


def sock_path(name):
    return os.path.join(suite.tmp, name + ".sock")


def control_node(name, **broker):
    b = {"control_socket": sock_path(name)}
    b.update(broker)
    return suite.broker(name, broker=b)


def ctl(*args, user=None):
    """Runs confabctl ARGS (as `user` through setpriv); (exit status, stdout, stderr)."""
    argv = [CONFABCTL] + list(args)
    if user:
        argv = ["setpriv", "--reuid=%s" % user, "--regid=nogroup", "--clear-groups"] + argv
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=QUICK_EXIT)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def fields(out):
    """confabctl's "key: value" lines as a dict."""
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def status(node):
    code, out, err = ctl("-s", sock_path(node.name), "status")
    check(code == 0, "confabctl status exited %d: %s%s" % (code, out, err))
    return fields(out)


def raw_request(path, data, timeout=RECV_TIMEOUT):
    """Sends `data` on the control socket and reads until the node closes."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        return read_to_close(s)


def read_to_close(s):
    """What the node sent until it closed. A node that closes with part of
    a request unread resets the connection after its answer (Linux)."""
    got = b""
    while True:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk


def readyz(port):
    return http_get(port, "/readyz", timeout=2)[0]


@suite.test
async def status_counts_sessions_and_rooms():
    """status: version, state, 3 sessions in 2 rooms after they join; --json the same."""
    node = control_node("counts").start()
    s = status(node)
    check(s.get("version") == "0.1.0" and s.get("state") == "serving"
          and s.get("sessions") == "0" and s.get("rooms") == "0"
          and s.get("backplane") == "embedded" and s.get("backplane_state") == "up"
          and s.get("ready") == "true" and s.get("uptime_s", "").isdigit(),
          "status before any client: %r" % s)
    cs = [await Client.connect(node.port, name="C%d" % i) for i in range(3)]
    await cs[0].join("lobby")
    await cs[1].join("lobby")
    await cs[2].join("side")
    s = status(node)
    note("after 3 clients joined lobby, lobby, side: %r" % s)
    check(s.get("sessions") == "3" and s.get("rooms") == "2", "status: %r" % s)
    code, out, err = ctl("-s", sock_path(node.name), "--json", "status")
    j = json.loads(out)
    check(code == 0 and j.get("ok") is True and j.get("sessions") == 3 and j.get("rooms") == 2,
          "--json status: %d %r %r" % (code, out, err))
    await cs[2].leave("side")
    s = status(node)
    check(s.get("rooms") == "1", "after the only member of side left: %r" % s)


@suite.test
async def log_level_debug_shows_debug_lines():
    """log-level debug: a scrape of /metrics logs its debug line; log-level
    info hides such lines again."""
    node = control_node("loglevel").start()
    c = await Client.connect(node.port, name="before")
    await c.ping()
    http_get(node.port, "/metrics")
    check(" debug " not in node.stderr(), "debug lines at log level info:\n%s" % tail(node.stderr()))
    code, out, err = ctl("-s", sock_path(node.name), "log-level", "debug")
    check(code == 0 and fields(out).get("log_level") == "debug" and fields(out).get("was") == "info",
          "log-level debug: %d %r %r" % (code, out, err))
    http_get(node.port, "/metrics")
    deadline = time.monotonic() + RECV_TIMEOUT
    while "debug [metrics]" not in node.stderr() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    check("debug [metrics]" in node.stderr(),
          "no debug line after log-level debug:\n%s" % tail(node.stderr()))
    check(status(node).get("log_level") == "debug", "status does not say log_level debug")
    code, out, err = ctl("-s", sock_path(node.name), "log-level", "loud")
    check(code == 1 and "error, warn, info, debug" in err,
          "log-level loud: want exit 1 naming the levels, got %d %r %r" % (code, out, err))
    code, _, _ = ctl("-s", sock_path(node.name), "log-level", "info")
    check(code == 0, "log-level info exited %d" % code)
    n = node.stderr().count(" debug ")
    http_get(node.port, "/metrics")
    c3 = await Client.connect(node.port, name="quiet")
    await c3.ping()
    await asyncio.sleep(0.2)
    check(node.stderr().count(" debug ") == n, "debug lines after log-level info:\n%s"
          % tail(node.stderr()))


@suite.test
async def drain_refuses_new_clients_and_closes_sessions_with_1001():
    """drain: /readyz 503 at once, both clients closed 1001 after grace, exit 0, socket removed."""
    node = control_node("drainer", drain_grace=1, drain_window=1).start()
    cs = [await Client.connect(node.port, name="D%d" % i) for i in range(2)]
    await cs[0].join("lobby")
    check(readyz(node.port) == 200, "/readyz before the drain is not 200")
    code, out, err = ctl("-s", sock_path(node.name), "drain")
    check(code == 0 and fields(out).get("drain") == "started",
          "drain: %d %r %r" % (code, out, err))
    check(readyz(node.port) == 503, "/readyz right after drain is not 503")
    s = status(node)
    check(s.get("state") == "draining" and s.get("ready") == "false", "status while draining: %r" % s)
    code, out, _ = ctl("-s", sock_path(node.name), "drain")
    check(code == 0 and fields(out).get("drain") == "already draining",
          "a second drain: %d %r" % (code, out))
    try:
        await asyncio.wait_for(asyncio.gather(*(c.ws.wait_closed() for c in cs)),
                               10 * SCALE)
    except asyncio.TimeoutError:
        pass
    codes = [c.ws.close_code for c in cs]
    check(codes == [1001, 1001], "close codes after drain: %r, want 1001 each" % codes)
    await node.wait_async()
    node.check_clean_exit("confabctl drain")
    check(not os.path.exists(sock_path(node.name)), "the socket file is still there after exit")


@suite.test
def socket_is_0600_owned_by_its_user_and_refuses_other_users():
    """The socket file: mode 0600, owned by confabd's user; nobody (setpriv) is refused."""
    node = control_node("perm").start()
    st = os.lstat(sock_path(node.name))
    note("socket %s: mode %o uid %d" % (sock_path(node.name), stat.S_IMODE(st.st_mode), st.st_uid))
    check(stat.S_ISSOCK(st.st_mode), "not a socket")
    check(stat.S_IMODE(st.st_mode) == 0o600, "mode %o, want 600" % stat.S_IMODE(st.st_mode))
    check(st.st_uid == os.geteuid(), "owned by uid %d, not %d" % (st.st_uid, os.geteuid()))
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        note("not root or no setpriv: the other-user check needs both; skipped")
        return
    # nobody may reach the socket's directory: only the socket's mode stops it
    for d in (suite.tmp,):
        os.chmod(d, 0o755)
    code, out, err = ctl("-s", sock_path(node.name), "status", user="nobody")
    note("as nobody: exit %d, %s" % (code, err.strip()))
    check(code == 1 and "Permission denied" in err,
          "confabctl as nobody: want exit 1 with Permission denied, got %d %r %r" % (code, out, err))
    check(status(node).get("state") == "serving", "the node does not serve its own user any more")


@suite.test
async def bad_requests_get_errors_and_the_node_keeps_serving():
    """Garbage, a 300-byte line, a NUL, a silent client (answered after 5 s), too many at once."""
    node = control_node("garbage").start()
    path = sock_path(node.name)
    c = await Client.connect(node.port, name="bystander")
    await c.join("lobby")
    for data, want in ((b"hello there\n", "unknown request"),
                       (b"x" * 300 + b"\n", "longer than 256 bytes"),
                       (b"status\x00\n", "NUL"),
                       (b"\xff\xfe\n", "unknown request"),
                       (b"status", '"ok":true')):       # no newline, then EOF
        got = await asyncio.get_running_loop().run_in_executor(
            None, raw_request_half_closed, path, data)
        note("%r -> %r" % (data[:20], got[:120]))
        check(want in got.decode("utf-8", "replace") and got.endswith(b"\n"),
              "request %r: answer %r, want one containing %r" % (data[:40], got, want))
    await c.ping()

    # a client that says nothing does not stop others; it is answered in 5 s
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(path)
    t0 = time.monotonic()
    check(status(node).get("state") == "serving", "status while a client is silent")
    silent.settimeout(10 * SCALE)
    got = read_to_close(silent)
    took = time.monotonic() - t0
    silent.close()
    note("the silent client was answered %r after %.1f s" % (got, took))
    check(b"no request line within 5 s" in got and 4.0 <= took <= 8.0 * SCALE,
          "silent client: %r after %.1f s" % (got, took))

    # four idle connections are served; a fifth is closed unanswered
    idle = []
    for _ in range(4):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        idle.append(s)
    time.sleep(0.2)
    extra = socket.socket(socket.AF_UNIX)
    extra.settimeout(RECV_TIMEOUT)
    extra.connect(path)
    try:
        extra.sendall(b"status\n")
        got = read_to_close(extra)
    except (BrokenPipeError, ConnectionResetError):
        got = b""                  # closed before the request went out: unanswered too
    extra.close()
    check(got == b"", "a fifth connection at once was answered: %r" % got)
    for s in idle:
        s.close()
    time.sleep(0.2)
    check(status(node).get("sessions") == "1", "status after the idle ones closed")
    await c.say("lobby", "still here")


def raw_request_half_closed(path, data):
    """Sends `data`, shuts down the sending side, reads the answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(RECV_TIMEOUT)
        s.connect(path)
        s.sendall(data)
        if not data.endswith(b"\n"):
            s.shutdown(socket.SHUT_WR)
        return read_to_close(s)


@suite.test
def a_stale_socket_is_replaced_and_a_live_one_stops_the_start():
    """A socket file nothing answers on is replaced; one a process listens on stops confabd."""
    path = sock_path("stale")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()                          # the file stays, nothing answers: a crashed run
    check(os.path.exists(path), "the stale socket file was not made")
    node = control_node("stale").start()
    check(status(node).get("state") == "serving", "status on the replaced socket")
    check("replacing the stale control socket" in node.stderr(), "no line about the stale socket")

    path = sock_path("taken")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen(4)
    try:
        d = os.path.join(suite.tmp, "taken")
        os.mkdir(d)
        cfg = write_config(d, {"plugins": WS_SO, "control_socket": path},
                           {"ws": {"listen": "127.0.0.1:0"}})
        r = run_confabd(["-c", cfg])
        note("with the socket taken: exit %s, %s" % (r.code, r.stderr.strip().splitlines()[-1:]))
        check(r.code == 1 and "is another confabd running with it?" in r.stderr
              and "listening on" not in r.stderr,
              "confabd with a live socket at control_socket:\n" + r.describe())
        check(os.path.exists(path), "confabd removed the socket another process listens on")
    finally:
        live.close()


@suite.test
def check_mode_refuses_a_missing_directory():
    """confabd -t: control_socket in a directory that does not exist -> one line, exit 1."""
    d = os.path.join(suite.tmp, "check")
    os.mkdir(d)
    cfg = write_config(d, {"plugins": WS_SO, "control_socket": os.path.join(d, "no", "c.sock")},
                       {"ws": {"listen": "127.0.0.1:0"}})
    r = run_confabd(["-t", "-c", cfg])
    check(r.code == 1 and "control_socket" in r.stderr and "does not exist" in r.stderr,
          "confabd -t with a missing directory:\n" + r.describe())
    cfg = write_config(d, {"plugins": WS_SO, "control_socket": os.path.join(d, "c.sock")},
                       {"ws": {"listen": "127.0.0.1:0"}})
    r = run_confabd(["-t", "-c", cfg])
    check(r.code == 0 and not os.path.exists(os.path.join(d, "c.sock")),
          "confabd -t with a good control_socket:\n" + r.describe())
    code, out, err = ctl("-c", cfg, "status")
    check(code == 1 and "is confabd running?" in err, "confabctl -c with no node: %d %r" % (code, err))
    cfg = write_config(d, {"plugins": WS_SO}, {"ws": {"listen": "127.0.0.1:0"}})
    code, out, err = ctl("-c", cfg, "status")
    check(code == 1 and "no [broker] control_socket" in err,
          "confabctl -c without control_socket: %d %r" % (code, err))


if __name__ == "__main__":
    suite.main()
