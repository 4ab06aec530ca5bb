"""Shared helpers for confab's integration tests.

Every test script starts real confabd processes on free loopback ports and
talks to them the way a user would: HTTP for / and /healthz, WebSocket with
protocol v1 (docs/protocol.md) for chat. This module holds what they share:

  paths      CONFABD, CONFABCTL, WS_SO, fixture(), config writing (write_config)
  processes  Broker (one running confabd), run_confabd (a short-lived one);
             every process is registered and stopped by PID at the end
  network    reserve_port(), listening(), http_get(), Client (async WebSocket)
  running    Suite: named checks, PASS/FAIL lines, a watchdog, exit status;
             skip() when a test tool is missing (exit 77, automake's SKIP)

The variables set by tests/Makefile.am locate the build; when a script is
run by hand they default to an in-tree build next to this file.

SPDX-License-Identifier: MIT
"""
import asyncio
import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback



def skip(reason):
    """Skip the whole script: say what is missing and how to get it, and
    exit 77 (automake's SKIP). tools/run-tests (CI) fails on any skip."""
    print("SKIP: %s: %s" % (os.path.basename(sys.argv[0]), reason), flush=True)
    sys.exit(77)


try:
    import websockets
    import websockets.exceptions
except ImportError:  # configure checks for it; by hand it may be missing
    skip("the python3 websockets module is not installed (apt-get install python3-websockets)")

_TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(name, default):
    return os.environ.get(name) or default


CONFABD = _env("CONFABD", os.path.join(_TOP, "core", "confabd"))
CONFABCTL = _env("CONFABCTL", os.path.join(_TOP, "ctl", "confabctl"))
PLUGIN_BUILD_DIR = _env("CONFAB_PLUGIN_BUILD_DIR", os.path.join(_TOP, "plugins"))
FIXTURE_DIR = _env("CONFAB_FIXTURE_DIR", os.path.join(_TOP, "tests", "fixtures", ".libs"))
TOP_SRCDIR = _env("CONFAB_TOP_SRCDIR", _TOP)
TOP_BUILDDIR = _env("CONFAB_TOP_BUILDDIR", _TOP)
SANITIZERS = os.environ.get("CONFAB_SANITIZERS") == "yes"
MAKE = _env("MAKE", "make")
WS_SO = os.path.join(PLUGIN_BUILD_DIR, "ws", ".libs", "ws.so")
VERSION = "0.1.0"


def _abi_version():
    """(major, minor) of the SDK in this tree: what build info reports."""
    with open(os.path.join(TOP_SRCDIR, "sdk", "include", "confab", "common.h")) as f:
        text = f.read()
    return tuple(int(re.search(r"#define CONFAB_ABI_%s (\d+)" % part, text).group(1))
                 for part in ("MAJOR", "MINOR"))


ABI = _abi_version()

# The sanitizer build is several times slower: every bound scales with it.
SCALE = 4 if SANITIZERS else 1
RECV_TIMEOUT = 5.0 * SCALE       # one expected frame
START_TIMEOUT = 15.0 * SCALE     # confabd from exec to /readyz 200
STOP_TIMEOUT = 10.0 * SCALE      # confabd from SIGTERM to exit
QUICK_EXIT = 10.0 * SCALE        # a run that should fail or finish at once
QUIET = 1.0 * min(SCALE, 2)      # how long "nothing arrives" is watched

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")


def fixture(name):
    """Path of a fixture plugin built by tests/Makefile.am, e.g. fixture("fx_bad_magic")."""
    return os.path.join(FIXTURE_DIR, name + ".so")


def now_ms():
    return int(time.time() * 1000)


# ---- checks --------------------------------------------------------------

class TestFailure(Exception):
    """A check that did not hold; its message is the FAIL line's text."""


def check(cond, msg):
    """Fail the running test with `msg` unless `cond` holds."""
    if not cond:
        raise TestFailure(msg)
    return cond


def note(msg):
    """Print one line saying what is being checked."""
    print("  - " + msg, flush=True)


def sanitizer_lines(text):
    return [l for l in text.splitlines() if any(m in l for m in SANITIZER_MARKERS)]


def tail(text, n=40):
    lines = text.splitlines()
    return "\n".join(("    | " + l) for l in lines[-n:])


# ---- processes -----------------------------------------------------------

_procs = []  # every process a test started, stopped by PID at the end


def spawn(args, **kw):
    """Start a process and register it so that it is stopped by PID at exit."""
    p = subprocess.Popen(args, **kw)
    _procs.append(p)
    return p


def _reap(p, grace=STOP_TIMEOUT):
    """Stop one registered process: SIGTERM, then SIGKILL after `grace`."""
    if p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    except OSError:
        pass


def reap_all(grace=STOP_TIMEOUT):
    for p in _procs:
        _reap(p, grace)


class Result:
    """What a short-lived process did."""

    def __init__(self, args, code, stdout, stderr, timed_out, listening_at_timeout):
        self.args = args
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        self.listening_at_timeout = listening_at_timeout

    def describe(self):
        return ("`%s` exited %s%s\n  stdout:\n%s\n  stderr:\n%s" % (
            " ".join(self.args), self.code,
            " (killed after timeout)" if self.timed_out else "",
            tail(self.stdout), tail(self.stderr)))


def run_confabd(args, timeout=QUICK_EXIT, port=None, env=None):
    """Run `confabd ARGS` to completion (killed after `timeout`).

    When it has to be killed and `port` is given, whether something was
    listening on that port at that moment is recorded."""
    argv = [CONFABD] + list(args)
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              stdin=subprocess.DEVNULL, env=env)
    timed_out = False
    was_listening = None
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        if port is not None:
            was_listening = listening(port)
        p.kill()
        out, err = p.communicate()
    return Result(argv, p.returncode, out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"), timed_out, was_listening)


# ---- network -------------------------------------------------------------

def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def reserve_port():
    """A loopback port BELOW the ephemeral range that nothing listens on,
    and a socket that keeps it so: (port, socket). Close the socket to let
    the port go.

    For a program that cannot bind port 0 and say which port it got
    (redis-server: port 0 turns its TCP off), and for a port that must not
    answer (a dead address; what `confabd -t` must not open). confabd
    itself binds port 0 (Broker). A port from the ephemeral range could be
    picked as the source port of a connect (a TCP self-connect that looks
    like a server) or by another process's bind to port 0. The reservation
    is bound with SO_REUSEADDR and never listens: a server that sets
    SO_REUSEADDR too (redis-server, confabd) can bind and listen next to
    it, connects are refused while nothing listens, and another script
    looking for a port finds this one taken. Two scripts can still reserve
    the same port at the same moment (both binds are allowed while neither
    listens): whoever starts a server on it must retry on another port
    when it is in use (redistest.RedisServer does)."""
    lo, _ = _ephemeral_range()
    first = 20000 if lo > 21000 else 1024
    for _ in range(200):
        port = random.randint(first, lo - 1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))   # no SO_REUSEADDR: fails if anyone has it
            except OSError:
                continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        if listening(port):
            s.close()
            continue
        return port, s
    raise TestFailure("no free loopback port below %d" % lo)


def listening(port):
    """True when something accepts TCP connections on 127.0.0.1:port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(("127.0.0.1", port))
        # A connect to a free ephemeral port can, very rarely, connect the
        # socket to itself; that is not a listener.
        return s.getsockname() != s.getpeername()
    except OSError:
        return False
    finally:
        s.close()


def http_get(port, path, timeout=RECV_TIMEOUT, context=None):
    """GET http://127.0.0.1:port/path -> (status, headers with lower-case names, body bytes);
    https:// with `context` (an ssl.SSLContext).

    Raises OSError when nothing answers."""
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
        return r.status, headers, body
    finally:
        conn.close()


# ---- configuration -------------------------------------------------------

def _ini_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v)


# [broker] keys every written broker.ini gets unless the test sets them.
QUICK_STOP = {"drain_grace": 0, "drain_window": 0}


def write_config(dir, broker, sections=None, name="broker.ini"):
    """Write broker.ini into `dir`: a [broker] section from the dict `broker`
    and one section per entry of `sections` ({name: {key: value}}).
    Lists are joined with ", ", booleans become true/false. Returns the path."""
    lines = ["; written by confab's integration tests", "[broker]"]

    def add(k, v):
        # Debian's inih reads lines of at most 198 bytes: a long list (the
        # chain, with the build tree's absolute paths) goes one item per
        # indented continuation line, as docs/configuration.md shows.
        if isinstance(v, (list, tuple)) and len("%s = %s" % (k, _ini_value(v))) > 150:
            lines.append("%s = %s" % (k, _ini_value(v[0])))
            lines.extend("    %s" % _ini_value(item) for item in v[1:])
        else:
            lines.append("%s = %s" % (k, _ini_value(v)))

    for k, v in broker.items():
        add(k, v)
    # SIGTERM stops a test's node at once (as SIGINT does) unless the test
    # asks for a drain: the harness stops every node with SIGTERM.
    for k, v in QUICK_STOP.items():
        if k not in broker:
            add(k, v)
    for sec, kv in (sections or {}).items():
        lines.append("")
        lines.append("[%s]" % sec)
        for k, v in kv.items():
            add(k, v)
    path = os.path.join(dir, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def write_text(dir, name, text):
    path = os.path.join(dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- a running broker ----------------------------------------------------

# ws's info line once it listens: "[ws] listening on http://127.0.0.1:PORT/ ...",
# or with log_format = json: ..."who":"ws","msg":"listening on http://...";
# https:// with [ws] tls_cert.
_LISTENING = re.compile(r'(?:\[ws\] |"who":"ws","msg":")listening on '
                        r"https?://(?:\[[^\]]*\]|[^/:\s]+):(\d+)/")


def _bound_port(log):
    """The port of the first "listening on" line of a confabd log, or None."""
    m = _LISTENING.search(log)
    return int(m.group(1)) if m else None


class Broker:
    """One confabd serving the ws transport on a loopback port of its own.

    `broker` overrides/extends the [broker] keys (plugins defaults to the
    built ws.so); `sections` adds or extends sections ([ws] listen is set).

    [ws] listen is 127.0.0.1:0: confabd binds a port the kernel picks and
    names it in its "listening on" line (info: log_level must be info or
    debug), which start() reads into `port`.
    A port picked here and bound later by confabd could be taken by another
    process in between (and that one's /healthz would pass for ours). A
    Broker runs once: no test restarts a confabd today. One that must come
    back where clients know it would write listen = 127.0.0.1:PORT with the
    port it had, and treat "in use" as a failure, since its clients and
    peers could not find it elsewhere either."""

    def __init__(self, tmp, name="broker", broker=None, sections=None, nofile=None, env=None):
        self.name = name
        self.nofile = nofile      # RLIMIT_NOFILE for this confabd only
        self.env = env            # variables added to this confabd's environment
        self.port = None          # the port confabd bound, once start() has read it
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=tmp)
        self.config = self.rewrite(broker, sections)
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.proc = None
        self.code = None          # exit status once stopped
        self.killed = False       # had to be SIGKILLed
        self.start_error = None
        self.healthz_status = None  # what /readyz answered when start() returned
        self.ssl_context = None   # set for a [ws] with tls_cert: start() asks over https

    def rewrite(self, broker=None, sections=None):
        """(Re)writes this node's broker.ini from the defaults and the given
        [broker] keys and sections, as the constructor does: a test then sends
        SIGHUP (or confabctl reload) to have a running node read it."""
        b = {"node_id": self.name, "plugins": WS_SO}
        b.update(broker or {})
        secs = {"ws": {"listen": "127.0.0.1:0"}}
        for sec, kv in (sections or {}).items():
            secs.setdefault(sec, {}).update(kv)
        return write_config(self.dir, b, secs)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stderr(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self, timeout=START_TIMEOUT, want_status=200):
        """Start confabd -c CONFIG and wait until GET /readyz answers
        `want_status` (200: ready for clients, its backplane up; None: any
        HTTP answer)."""
        if self.start_error:
            raise TestFailure(self.start_error)
        if self.proc:
            return self
        err = open(self.stderr_path, "wb")
        try:
            preexec = None
            if self.nofile is not None:
                import resource
                n = self.nofile
                preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
            env = dict(os.environ, **self.env) if self.env else None
            self.proc = spawn([CONFABD, "-c", self.config], stdin=subprocess.DEVNULL,
                              stdout=err, stderr=err, preexec_fn=preexec, env=env)
        finally:
            err.close()
        deadline = time.monotonic() + timeout
        last = "nothing listening"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.start_error = "%s: confabd exited %s before serving\n%s" % (
                    self.name, self.proc.returncode, tail(self.stderr()))
                raise TestFailure(self.start_error)
            if self.port is None:
                self.port = _bound_port(self.stderr())
                if self.port is None:
                    last = "no \"listening on\" line in its log yet"
                    time.sleep(0.05)
                    continue
            try:
                status, _, body = http_get(self.port, "/readyz", timeout=1.0,
                                           context=self.ssl_context)
                if want_status is None or status == want_status:
                    self.healthz_status = status
                    return self
                last = "GET /readyz answered %d %r" % (status, body[:80])
            except OSError as e:
                last = "GET /readyz: %s" % e
            time.sleep(0.05)
        self.start_error = "%s: not serving within %.0fs (%s)\n%s" % (
            self.name, timeout, last, tail(self.stderr()))
        raise TestFailure(self.start_error)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def log_since(self, start, expect, timeout=RECV_TIMEOUT, after="since then"):
        """The log written after offset `start` (len(stderr()) taken before
        the action), once it holds `expect`."""
        deadline = time.monotonic() + timeout
        while True:
            new = self.stderr()[start:]
            if expect in new:
                return new
            check(time.monotonic() < deadline, "%s: no %r in the log within %.0f s %s; "
                  "it has:\n%s" % (self.name, expect, timeout, after, new[-3000:]))
            time.sleep(0.05)

    def reload(self, expect, timeout=RECV_TIMEOUT):
        """SIGHUP (the configuration is read again); the log written since,
        once it holds `expect` (e.g. "reloaded ", "reload refused")."""
        start = len(self.stderr())
        self.send_signal(signal.SIGHUP)
        return self.log_since(start, expect, timeout, "of SIGHUP")

    def wait(self, timeout=STOP_TIMEOUT):
        """Wait for exit; SIGKILL after `timeout`. Returns the exit status
        (None when it had to be killed)."""
        try:
            self.code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.killed = True
            self.proc.kill()
            self.proc.wait()
            self.code = None
        return self.code

    async def wait_async(self, timeout=STOP_TIMEOUT):
        """Like wait(), without blocking the asyncio loop (clients keep
        answering close frames meanwhile)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.wait(timeout=0.01 if self.proc.poll() is None else 1)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Send `sig` (SIGTERM) and wait for the exit status (None if killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.send_signal(sig)
        return self.wait(timeout)

    def check_clean_exit(self, signame="SIGTERM"):
        """The broker exited by itself with status 0 and no sanitizer report."""
        check(not self.killed, "%s: still running %.0fs after %s; killed\n%s" % (
            self.name, STOP_TIMEOUT, signame, tail(self.stderr())))
        check(self.code == 0, "%s: exit status %s after %s (want 0)\n%s" % (
            self.name, self.code, signame, tail(self.stderr())))
        bad = sanitizer_lines(self.stderr())
        check(not bad, "%s: sanitizer report in stderr:\n%s" % (self.name, tail(self.stderr(), 80)))


# ---- a WebSocket client speaking protocol v1 -----------------------------

_refs = itertools.count(1)
_open_clients = []


class Client:
    """An async protocol v1 client. Frames that arrive while waiting for
    something else are kept, in order, in `backlog`."""

    def __init__(self, ws, name):
        self.ws = ws
        self.name = name
        self.backlog = []
        self.welcome = None
        self.user = None
        self.session = None

    @classmethod
    async def connect(cls, port, name="client", query="", subprotocols=("confab.v1",),
                      path="/ws", timeout=RECV_TIMEOUT, welcome=True, ssl_context=None):
        """Open ws://127.0.0.1:PORT/ws[?query] (wss:// with `ssl_context`)
        and read the welcome frame.

        Raises websockets' InvalidStatusCode when the handshake is refused."""
        uri = "%s://127.0.0.1:%d%s" % ("wss" if ssl_context else "ws", port, path)
        if query:
            uri += "?" + query
        kw = dict(max_size=1 << 24, max_queue=None, ping_interval=None, compression=None,
                  open_timeout=timeout, close_timeout=timeout)
        if ssl_context is not None:
            kw["ssl"] = ssl_context
        if subprotocols is not None:
            kw["subprotocols"] = list(subprotocols)
        ws = await asyncio.wait_for(websockets.connect(uri, **kw), timeout + 1)
        c = cls(ws, name)
        _open_clients.append(c)
        if welcome:
            first = await c._read(timeout)
            check(first.get("type") == "welcome",
                  "%s: first frame is not a welcome: %r" % (name, first))
            c.welcome = first
            c.user = first.get("user")
            c.session = first.get("session")
        return c

    async def _read(self, timeout):
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise TestFailure("%s: no frame within %.1fs (backlog: %s)" % (
                self.name, timeout, self._backlog_text())) from None
        except websockets.exceptions.ConnectionClosed as e:
            raise TestFailure("%s: connection closed (code %s %r) while waiting for a frame"
                              % (self.name, self.ws.close_code, self.ws.close_reason)) from e
        check(isinstance(raw, str), "%s: got a binary frame %r" % (self.name, raw[:80]))
        try:
            obj = json.loads(raw)
        except ValueError:
            raise TestFailure("%s: frame is not JSON: %r" % (self.name, raw[:200])) from None
        check(isinstance(obj, dict), "%s: frame is not a JSON object: %r" % (self.name, raw[:200]))
        return obj

    def _backlog_text(self):
        return json.dumps(self.backlog)[:600] if self.backlog else "empty"

    async def send(self, obj):
        await self.ws.send(json.dumps(obj))

    async def send_raw(self, data):
        """Send a text (str) or binary (bytes) frame as is."""
        await self.ws.send(data)

    async def recv(self, timeout=RECV_TIMEOUT):
        """The next frame: the oldest of the backlog, else a new one."""
        if self.backlog:
            return self.backlog.pop(0)
        return await self._read(timeout)

    async def _wait_for(self, pred, what, timeout):
        for i, f in enumerate(self.backlog):
            if pred(f):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("%s: no %s within %.1fs (backlog: %s)" % (
                    self.name, what, timeout, self._backlog_text()))
            try:
                f = await self._read(left)
            except TestFailure as e:
                if "no frame within" in str(e):
                    raise TestFailure("%s: no %s within %.1fs (backlog: %s)" % (
                        self.name, what, timeout, self._backlog_text())) from None
                raise
            if pred(f):
                return f
            self.backlog.append(f)

    async def request(self, obj, timeout=RECV_TIMEOUT):
        """Send `obj` with a unique ref (unless it has one) and return the
        frame that echoes that ref (reply, ack or error)."""
        obj = dict(obj)
        if "ref" not in obj:
            obj["ref"] = "r%d" % next(_refs)
        ref = obj["ref"]
        await self.send(obj)

        def same_ref(f):
            return "ref" in f and f["ref"] == ref and type(f["ref"]) is type(ref)
        return await self._wait_for(same_ref, "reply with ref %r to %s" % (ref, json.dumps(obj)[:200]),
                                    timeout)

    async def expect(self, type, timeout=RECV_TIMEOUT, **fields):
        """The next frame of `type` whose fields equal `fields` (pass
        {"from": u} as **{"from": u})."""
        def match(f):
            return f.get("type") == type and all(k in f and f[k] == v for k, v in fields.items())
        what = "%s frame%s" % (type, (" with " + json.dumps(fields)) if fields else "")
        return await self._wait_for(match, what, timeout)

    async def expect_nothing(self, seconds=QUIET, type=None, **fields):
        """Fail if a frame (of `type`, with `fields`) is waiting or arrives
        within `seconds`. Other frames go to the backlog."""
        def match(f):
            return ((type is None or f.get("type") == type)
                    and all(k in f and f[k] == v for k, v in fields.items()))
        what = "frame" if type is None else "%s frame" % type
        for f in self.backlog:
            check(not match(f), "%s: unexpected %s %s" % (self.name, what, json.dumps(f)[:300]))
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except asyncio.TimeoutError:
                return
            except websockets.exceptions.ConnectionClosed:
                raise TestFailure("%s: connection closed (code %s) while it should stay open"
                                  % (self.name, self.ws.close_code)) from None
            try:
                f = json.loads(raw)
            except (ValueError, TypeError):
                raise TestFailure("%s: unexpected non-JSON frame %r" % (self.name, raw[:200])) from None
            check(not match(f), "%s: unexpected %s %s" % (self.name, what, json.dumps(f)[:300]))
            self.backlog.append(f)

    async def error(self, obj, code, timeout=RECV_TIMEOUT):
        """Send `obj` as a request and check that the reply is error `code`."""
        r = await self.request(obj, timeout)
        check(r.get("type") == "error" and r.get("code") == code,
              "%s: %s -> want error %s, got %s" % (self.name, json.dumps(obj)[:200], code,
                                                  json.dumps(r)[:300]))
        check(isinstance(r.get("message"), str),
              "%s: error without a message string: %s" % (self.name, json.dumps(r)))
        return r

    async def join(self, room):
        r = await self.request({"type": "join", "room": room})
        check(r.get("type") == "joined" and r.get("room") == room,
              "%s: join %r -> %s" % (self.name, room, json.dumps(r)))
        return r

    async def leave(self, room):
        r = await self.request({"type": "leave", "room": room})
        check(r.get("type") == "left" and r.get("room") == room,
              "%s: leave %r -> %s" % (self.name, room, json.dumps(r)))
        return r

    async def say(self, room, body):
        """Send `body` to `room`; return the ack."""
        r = await self.request({"type": "send", "room": room, "body": body})
        check(r.get("type") == "ack" and r.get("room") == room,
              "%s: send to %r -> %s" % (self.name, room, json.dumps(r)[:300]))
        return r

    async def presence(self, room):
        r = await self.request({"type": "presence", "room": room})
        check(r.get("type") == "presence" and r.get("room") == room
              and isinstance(r.get("users"), list),
              "%s: presence %r -> %s" % (self.name, room, json.dumps(r)[:300]))
        return r["users"]

    async def ping(self):
        r = await self.request({"type": "ping"})
        check(r.get("type") == "pong", "%s: ping -> %s" % (self.name, json.dumps(r)))

    async def close(self, timeout=RECV_TIMEOUT):
        if self in _open_clients:
            _open_clients.remove(self)
        try:
            await asyncio.wait_for(self.ws.close(), timeout)
        except Exception:
            self.ws.transport.abort()


async def close_all_clients():
    for c in list(_open_clients):
        await c.close(timeout=2.0)
    _open_clients.clear()


# ---- running a suite -----------------------------------------------------

class Suite:
    """Named checks run in order. Brokers made with suite.broker() are
    stopped at the end with SIGTERM, which is itself a check (exit 0, no
    sanitizer report)."""

    def __init__(self, name, watchdog=180, needs=()):
        # needs: (program, Debian package) pairs of test-only programs the
        # script runs; without one the script is skipped before it starts.
        for program, package in needs:
            if shutil.which(program) is None:
                skip("%s not found (apt-get install %s)" % (program, package))
        self.name = name
        self.tests = []
        self.brokers = []
        self.watchdog = int(watchdog * (2 if SANITIZERS else 1))
        self.tmp = tempfile.mkdtemp(prefix="confab-%s-" % name)
        self.passed = 0
        self.failed = 0

    def test(self, fn):
        """Decorator: register a check (plain or async function); its
        docstring is printed as what it checks."""
        self.tests.append(fn)
        return fn

    def broker(self, name="broker", broker=None, sections=None, nofile=None, env=None):
        b = Broker(self.tmp, name, broker, sections, nofile, env)
        self.brokers.append(b)
        return b

    def _result(self, name, err):
        if err is None:
            self.passed += 1
            print("PASS %s" % name, flush=True)
        else:
            self.failed += 1
            print("FAIL %s: %s" % (name, err), flush=True)

    def _run_one(self, fn):
        doc = (fn.__doc__ or "").strip()
        print("# %s%s" % (fn.__name__, (": " + " ".join(doc.split())) if doc else ""), flush=True)
        try:
            if asyncio.iscoroutinefunction(fn):
                async def wrapped():
                    try:
                        await fn()
                    finally:
                        await close_all_clients()
                asyncio.run(wrapped())
            else:
                fn()
        except TestFailure as e:
            return str(e)
        except Exception:
            return "unexpected exception:\n" + traceback.format_exc()
        return None

    def _on_watchdog(self, signum, frame):
        print("FAIL watchdog: %s did not finish within %ds; killing its processes"
              % (self.name, self.watchdog), flush=True)
        for p in _procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
        for b in self.brokers:
            if b.proc:
                print("  stderr of %s (pid %s):\n%s" % (b.name, b.pid, tail(b.stderr())), flush=True)
        if not os.environ.get("CONFAB_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        os._exit(1)

    def main(self):
        signal.signal(signal.SIGALRM, self._on_watchdog)
        signal.alarm(self.watchdog)
        print("== %s (confabd %s%s)" % (self.name, CONFABD, ", sanitizers" if SANITIZERS else ""),
              flush=True)
        try:
            if not os.access(CONFABD, os.X_OK):
                self._result("confabd is built", "no executable at %s" % CONFABD)
            else:
                for fn in self.tests:
                    self._result(fn.__name__, self._run_one(fn))
            for b in self.brokers:
                if b.proc is None:
                    continue
                if b.killed or b.start_error:
                    continue  # the test that stopped or started it reported that
                if b.proc.poll() is not None and b.code is None:
                    self._result("%s_was_still_serving_at_the_end" % b.name,
                                 "%s exited %s on its own\n%s" % (b.name, b.proc.returncode,
                                                                  tail(b.stderr())))
                    continue
                if b.code is None and not b.killed:
                    b.stop(signal.SIGTERM)
                    err = None
                    try:
                        b.check_clean_exit()
                    except TestFailure as e:
                        err = str(e)
                    self._result("%s_exits_0_on_SIGTERM_without_sanitizer_reports" % b.name, err)
            if self.failed:
                for b in self.brokers:
                    if b.proc:
                        print("  stderr of %s (pid %s, config %s):\n%s"
                              % (b.name, b.pid, b.config, tail(b.stderr(), 60)))
        except KeyboardInterrupt:
            self._result("interrupted", "KeyboardInterrupt")
        finally:
            reap_all()
            signal.alarm(0)
            if os.environ.get("CONFAB_KEEP_TMP"):
                print("  temporary files kept in %s" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)
