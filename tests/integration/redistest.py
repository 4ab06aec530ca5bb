"""Helpers for the multi-node tests of the redis backplane (test_redis_*.py).

Every script starts its own redis-server on a free loopback port and
several confabd nodes (ws + redis plugins) that share it, then drives them
with real WebSocket clients (confabtest.Client). This module holds:

  RedisServer   one redis-server: start (waits for PING), stop by PID,
                restart on the same port and directory, cli() for redis-cli
  RedisProxy    a TCP proxy in front of Redis that can make subscription
                connections go silent while they stay open
  StallProxy    a RedisProxy that can stall command connections (no byte
                read or forwarded either way, nothing closed)
  DelayProxy    a RedisProxy that makes a node's commands reach Redis late
  Cluster       a RedisServer and named confabd nodes with one [redis]
                section (a prefix of their own, presence_ttl = 3)
  RedisSuite    confabtest.Suite that skips (exit 77) without redis-server
  health        readyz(), wait_health(): /readyz polled every 50 ms
  frames        collect() for bursts, history_all() for paged history

Environment (tests/Makefile.am): REDIS_SERVER and REDIS_CLI name the
programs (default: redis-server and redis-cli on PATH), the rest is
confabtest's.

SPDX-License-Identifier: MIT
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from confabtest import (Suite, WS_SO, PLUGIN_BUILD_DIR, SANITIZERS, SCALE, START_TIMEOUT,
                        STOP_TIMEOUT, TestFailure, check, fixture, http_get, reserve_port, skip,
                        spawn, tail)

REDIS_SO = os.path.join(PLUGIN_BUILD_DIR, "redis", ".libs", "redis.so")


def _setting(name, default):
    """$NAME, unless unset, empty or configure's "no" (not found)."""
    v = os.environ.get(name, "")
    return default if v in ("", "no") else v


REDIS_SERVER = _setting("REDIS_SERVER", "redis-server")
REDIS_CLI = _setting("REDIS_CLI", "redis-cli")

PRESENCE_TTL = 3                                  # [redis] presence_ttl of every test node
RECOVER_TIMEOUT = 15.0 * (2 if SANITIZERS else 1)  # Redis back -> /readyz 200 (backoff <= 5 s)
DETECT_TIMEOUT = 5.0 * SCALE                      # a dead subscription or Redis -> noticed
POLL = 0.05                                       # /readyz polling period


def _program(name):
    """Absolute path of `name` (a path or a name on PATH), or None."""
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    return shutil.which(name)


# ---- ports ---------------------------------------------------------------

def redis_port():
    """A port for redis-server, reserved: (port, socket). redis-server
    cannot bind port 0 and say which port it got (port 0 turns its TCP
    off), so the port is picked beforehand and held (confabtest.reserve_port)."""
    return reserve_port()


IN_USE = "Address already in use"   # redis-server's log line when its bind fails
START_TRIES = 3                     # ports a first start tries, in all


class ReservedPort:
    """The port of a server that cannot bind port 0 (redis-server), picked
    beforehand and held by `_reservation` (see confabtest.reserve_port).

    Two scripts can reserve the same port at the same moment; the second
    server to start then finds it in use. So a server's first start moves
    to a new port and tries again when its log says the port is in use, up
    to START_TRIES ports, but only while nobody has read `port`: whoever
    read it may have written it into a config. Reading `port` (or setting
    it) pins it; a restart always keeps its port (clients know it)."""

    _port = None
    _port_pinned = False
    _ever_started = False

    def _reserve(self):
        """A new (port, reservation); a subclass may need more than a port."""
        return redis_port()

    @property
    def port(self):
        self._port_pinned = True
        return self._port

    @port.setter
    def port(self, value):
        self._port = value
        self._port_pinned = True

    def _start_moving(self, start_once):
        """start_once(): spawn the server and wait until it answers (raises
        TestFailure when it does not). Retried on a new port as said above."""
        movable = not self._port_pinned and not self._ever_started
        self._ever_started = True
        for attempt in range(START_TRIES):
            seen = len(self.log())
            try:
                return start_once()
            except TestFailure:
                in_use = IN_USE in self.log()[seen:]
                if not (movable and in_use and attempt + 1 < START_TRIES):
                    raise
            if self.proc is not None:
                self.proc.wait()
            for s in (self._reservation if isinstance(self._reservation, list)
                      else [self._reservation]):
                s.close()
            self._port, self._reservation = self._reserve()
            self._port_pinned = False


# ---- a redis-server process -----------------------------------------------

class RedisProcess(ReservedPort):
    """What every redis-server of the tests shares (plain, cluster node):
    a subclass sets name, proc, starts, log_path and argv(); this starts it
    by PID, moving its first start to a new port when its own is in use
    (ReservedPort), and waits until PING answers PONG."""

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=START_TIMEOUT):
        """Start redis-server (no-op when it runs) and wait until PING
        answers PONG; a first start moves to another port when its own is
        in use (ReservedPort)."""
        if self.running():
            return self
        return self._start_moving(lambda: self._start_once(timeout))

    def _start_once(self, timeout):
        out = open(self.log_path, "ab")
        try:
            self.proc = spawn(self.argv(), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        finally:
            out.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        last = "nothing listening"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("%s: redis-server exited %s at start (port %d)\n%s" % (
                    self.name, self.proc.returncode, self.port, tail(self.log())))
            last = self.ping()
            if last == "PONG":
                return self
            time.sleep(POLL)
        raise TestFailure("%s: redis-server on port %d does not answer PING within %.0fs (%s)\n%s"
                          % (self.name, self.port, timeout, last, tail(self.log())))

    def ping(self):
        """PING over a plain socket: "PONG", or what went wrong."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.sendall(b"PING\r\n")
                data = s.recv(64).decode("ascii", "replace").strip()
                return data[1:] if data.startswith("+") else (data or "no answer")
        except OSError as e:
            return str(e)


# ---- redis-server --------------------------------------------------------

class RedisServer(RedisProcess):
    """One redis-server on 127.0.0.1:PORT with its own directory.

    persist=True keeps the data across stop/restart (append-only file,
    fsync on every write), so that what Redis acknowledged before a stop is
    still there after the restart; otherwise nothing is written to disk."""

    def __init__(self, tmp, name="redis", persist=False):
        self.name = name
        self._port, self._reservation = redis_port()   # held for the whole script
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=tmp)
        self.log_path = os.path.join(self.dir, "redis.log")
        self.persist = persist
        self.proc = None
        self.starts = 0

    def argv(self):
        return [_program(REDIS_SERVER) or REDIS_SERVER,
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "yes" if self.persist else "no",
                "--appendfsync", "always", "--daemonize", "no", "--dir", self.dir,
                "--logfile", ""]

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stop by PID: `sig` (SIGTERM), then SIGKILL after `timeout`. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def _inline(self, args, timeout):
        line = " ".join(str(a) for a in args)
        check(all(" " not in str(a) and str(a) for a in args),
              "inline command %r: arguments must be non-empty words" % line)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
                s.sendall(line.encode() + b"\r\n")
                data = b""
                while not data.endswith(b"\r\n") or (data[:1] == b"$" and data.count(b"\r\n") < 2
                                                      and not data.startswith(b"$-1")):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        except OSError as e:
            raise TestFailure("%s: %s: %s" % (self.name, line, e)) from None
        text = data.decode("utf-8", "replace")
        check(not text.startswith("-"), "%s: %s -> %s" % (self.name, line, text.strip()))
        return text.split("\r\n")[1] if text.startswith("$") else text[1:].strip()

    def restart(self):
        """Stop (if running) and start again on the same port and directory."""
        self.stop()
        return self.start()

    def cli(self, *args, timeout=10.0 * SCALE):
        """Run `redis-cli -h 127.0.0.1 -p PORT ARGS`; returns its stdout, stripped.
        Without redis-cli, the command goes as an inline command over a
        socket (simple replies only: status, error, integer, bulk string)."""
        if _program(REDIS_CLI) is None:
            return self._inline(args, timeout)
        argv = [_program(REDIS_CLI), "-h", "127.0.0.1", "-p", str(self.port)]
        argv += [str(a) for a in args]
        p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise TestFailure("`%s` did not finish within %.0fs" % (" ".join(argv), timeout))
        out = out.decode("utf-8", "replace").strip()
        check(p.returncode == 0, "`%s` exited %s: %s %s" % (
            " ".join(argv), p.returncode, out, err.decode("utf-8", "replace").strip()))
        return out


# ---- a proxy that silences subscriptions ---------------------------------

class RedisProxy:
    """A TCP proxy on 127.0.0.1:PORT in front of a RedisServer, run on the
    test's asyncio loop (so the loop must never block while it serves).

    silence_subscriptions() makes every connection that has sent SUBSCRIBE
    drop what goes through it, both ways, while its TCP connection stays
    open: a subscription that died silently, as seen from the node.
    Connections opened later are served normally."""

    class _Link:
        def __init__(self, writers):
            self.writers = writers
            self.subscriber = False
            self.silent = False
            self.open = True

    def __init__(self, redis):
        self.redis = redis
        self.port, self._reservation = redis_port()
        self.server = None
        self.links = []

    async def start(self):
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port,
                                                 reuse_address=True)
        return self

    async def _accept(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.redis.port)
        except OSError:
            writer.close()
            return
        link = self._new_link((writer, up_writer))
        self.links.append(link)
        await self._forward(reader, writer, up_reader, up_writer, link)
        link.open = False

    async def _forward(self, reader, writer, up_reader, up_writer, link):
        """Carry a link's bytes both ways until both sides are done."""
        await asyncio.gather(self._pump(reader, up_writer, link, True),
                             self._pump(up_reader, writer, link, False))

    def _new_link(self, writers):
        """A subclass's links may start in a state of its own."""
        return self._Link(writers)

    @staticmethod
    def _note_subscriber(link, data, upstream):
        """Mark a link whose node sent SUBSCRIBE: its subscription."""
        if upstream and any(w in data.upper() for w in (b"\r\nSUBSCRIBE\r\n",
                                                        b"\r\nPSUBSCRIBE\r\n")):
            link.subscriber = True   # the command name, as a RESP bulk string

    @staticmethod
    async def _pump(src, dst, link, upstream):
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                RedisProxy._note_subscriber(link, data, upstream)
                if link.silent:
                    continue
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            dst.close()

    def silence_subscriptions(self):
        """Silence every open subscriber connection; returns how many."""
        n = 0
        for link in self.links:
            if link.open and link.subscriber and not link.silent:
                link.silent = True
                n += 1
        return n

    async def close(self):
        if self.server:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for link in self.links:
            for w in link.writers:
                w.close()


# ---- a proxy that stalls command connections (issue 15) -------------------

class StallProxy(RedisProxy):
    """A RedisProxy that can also stall command connections: a network path
    that stops forwarding without breaking.

    stall_commands() stops every open connection that has not sent
    SUBSCRIBE: the proxy no longer reads from either side (so the bytes
    pile up in the kernel's buffers, and then the sender's), forwards
    nothing, and closes nothing. Subscriptions keep flowing. Connections
    accepted while the stall lasts are stalled from their first byte, both
    ways, whatever they are. end_stall() closes every stalled connection
    without forwarding what it held (no stale replay: the node has given up
    on those bytes) and serves new connections normally again.
    close_stalled() closes them but keeps stalling new ones."""

    def __init__(self, redis):
        super().__init__(redis)
        self.stalling = False

    def _new_link(self, writers):
        link = self._Link(writers)
        link.stalled = self.stalling
        return link

    @staticmethod
    async def _pump(src, dst, link, upstream):
        try:
            while True:
                while getattr(link, "stalled", False) and link.open:
                    await asyncio.sleep(0.02)      # read nothing: TCP backs up
                if not link.open:
                    break
                data = await src.read(65536)
                if not data:
                    break
                RedisProxy._note_subscriber(link, data, upstream)
                while getattr(link, "stalled", False) and link.open:
                    await asyncio.sleep(0.02)      # read just before the stall: held
                if not link.open or link.silent:
                    if not link.open:
                        break
                    continue
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            dst.close()

    def stall_commands(self):
        """Stall every open command connection, and every new connection
        until end_stall(); returns how many open ones were stalled."""
        self.stalling = True
        n = 0
        for link in self.links:
            if link.open and not link.subscriber and not getattr(link, "stalled", False):
                link.stalled = True
                n += 1
        return n

    def close_stalled(self):
        """Close every stalled connection (what it held is dropped);
        returns how many."""
        n = 0
        for link in self.links:
            if link.open and getattr(link, "stalled", False):
                link.open = False
                for w in link.writers:
                    w.close()
                n += 1
        return n

    def end_stall(self):
        """Stop stalling new connections and close the stalled ones."""
        self.stalling = False
        return self.close_stalled()

    async def close(self):
        self.stalling = False
        for link in self.links:
            link.open = False   # ends the pumps that wait out a stall
        await super().close()


# ---- a proxy that makes a node's commands reach Redis late ----------------

class DelayProxy(RedisProxy):
    """A RedisProxy that forwards what a node sends on a command connection
    (one that never sent SUBSCRIBE) `delay` seconds late, in order: a node
    whose requests reach Redis after other nodes' sent later, as a busy
    link or a loaded node makes them. Replies and subscriptions flow at
    once."""

    def __init__(self, redis, delay):
        super().__init__(redis)
        self.delay = delay

    class _Late:
        """Between the node's side of a link and Redis's: what the node
        sends is written here, stamped with when it is due, and read back
        from here when due, in order."""

        def __init__(self, link, delay):
            self.link = link
            self.delay = delay
            self.queue = asyncio.Queue()

        def write(self, data):
            late = 0 if self.link.subscriber else self.delay
            self.queue.put_nowait((asyncio.get_running_loop().time() + late, data))

        async def drain(self):
            pass

        def close(self):
            self.queue.put_nowait((0, b""))

        async def read(self, _n):
            due, data = await self.queue.get()
            wait = due - asyncio.get_running_loop().time()
            if data and wait > 0:
                await asyncio.sleep(wait)
            return data

    async def _forward(self, reader, writer, up_reader, up_writer, link):
        late = self._Late(link, self.delay)
        await asyncio.gather(self._pump(reader, late, link, True),
                             self._pump(late, up_writer, link, True),
                             self._pump(up_reader, writer, link, False))


# ---- confabd nodes sharing one Redis -------------------------------------

_REDIS_PORT = object()   # in a node's [redis] spec: the RedisServer's port, once known


class Cluster:
    """A RedisServer and confabd nodes that use it as their backplane.

    `guests` name nodes that admit anonymous clients (guest- and 16 hex digits, a new
    user per connection); `alices` name nodes that also load the fixture
    auth plugin fx_good_auth with user = alice, so that every client of
    those nodes is the user "alice" (one user, sessions on several nodes).
    The node name is its node_id. The nodes are made (and their ports
    picked) only when the cluster starts, so that no other process takes a
    port between its choice and its use. Every node is registered with the
    suite, so it is stopped by PID and checked (exit 0, no sanitizer
    report) at the end."""

    def __init__(self, suite, guests=(), alices=(), redis=None, prefix=None,
                 history_size=None, persist=False, redis_keys=None, broker_keys=None,
                 ws_keys=None):
        self.suite = suite
        self.redis = redis or RedisServer(suite.tmp, "redis", persist=persist)
        self.prefix = prefix or "ct-%s-%d:" % (suite.name, os.getpid())
        self.nodes = {}
        self.start_error = None
        self.specs = []
        # The port is read when the nodes are made, after Redis has
        # started: until then it may still move (ReservedPort).
        redis_sec = {"host": "127.0.0.1", "port": _REDIS_PORT, "prefix": self.prefix,
                     "presence_ttl": PRESENCE_TTL}
        redis_sec.update(redis_keys or {})
        for name in list(guests) + list(alices):
            plugins = [WS_SO, REDIS_SO]
            secs = {"redis": dict(redis_sec)}
            if ws_keys:
                secs["ws"] = dict(ws_keys)
            if name in alices:
                plugins.append(fixture("fx_good_auth"))
                secs["fx_good_auth"] = {"user": "alice"}
            b = {"node_id": name, "plugins": plugins, "allow_anonymous": True}
            if history_size is not None:
                b["history_size"] = history_size
            b.update(broker_keys or {})
            self.specs.append((name, b, secs))

    def __getitem__(self, name):
        return self.nodes[name]

    def _make_nodes(self):
        for name, b, secs in self.specs:
            if secs.get("redis", {}).get("port") is _REDIS_PORT:
                secs["redis"]["port"] = self.redis.port
            if name not in self.nodes:
                self.nodes[name] = self.suite.broker(name, broker=b, sections=secs)

    def _plugin_built(self):
        check(os.path.exists(REDIS_SO), "the redis plugin is not built: no %s" % REDIS_SO)

    def start(self):
        """Start Redis, then every node, and wait for /readyz 200 on each."""
        if self.start_error:
            raise TestFailure(self.start_error)
        try:
            self._plugin_built()
            self.redis.start()
            self._make_nodes()
            for b in self.nodes.values():
                b.start()
        except TestFailure as e:
            self.start_error = str(e)
            raise
        return self

    def start_nodes(self, want_status=None):
        """Start the nodes only (Redis may be down): wait for any /readyz answer."""
        self._plugin_built()
        self._make_nodes()
        for b in self.nodes.values():
            b.start(want_status=want_status)
        return self


class RedisSuite(Suite):
    """A Suite that needs redis-server: without it the script is skipped
    (exit 77), as automake expects. The watchdog is scaled 4x under the
    sanitizers, like every timeout."""

    def __init__(self, name, watchdog=240):
        # Suite doubles the watchdog under the sanitizers; double it again.
        super().__init__(name, watchdog=watchdog * (2 if SANITIZERS else 1))

    def main(self):
        if _program(REDIS_SERVER) is None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            skip("redis-server not found (%s): apt-get install redis-server, or set REDIS_SERVER"
                 % REDIS_SERVER)
        super().main()


# ---- health --------------------------------------------------------------

async def readyz(node):
    """GET /readyz of `node` without blocking the loop: the status, or None."""
    def get():
        try:
            return http_get(node.port, "/readyz", timeout=1.0)[0]
        except OSError:
            return None
    return await asyncio.get_running_loop().run_in_executor(None, get)


async def wait_health(nodes, want, timeout, what):
    """Poll /readyz of every node every 50 ms until each has answered
    `want` once. Returns {node name: seconds until it did}."""
    start = time.monotonic()
    got = {}
    last = {}
    while True:
        for n in nodes:
            if n.name in got:
                continue
            last[n.name] = await readyz(n)
            if last[n.name] == want:
                got[n.name] = time.monotonic() - start
        if len(got) == len(nodes):
            return got
        if time.monotonic() - start > timeout:
            raise TestFailure("%s: /readyz of %s did not answer %d within %.0fs (last answers: %s)"
                              % (what, ", ".join(n.name for n in nodes if n.name not in got),
                                 want, timeout, json.dumps(last)))
        await asyncio.sleep(POLL)


def log_count(node, text):
    """How many lines of the node's stderr contain `text`."""
    return sum(1 for l in node.stderr().splitlines() if text in l)


# ---- frames --------------------------------------------------------------

async def collect(c, room, n_messages, acks=(), timeout=60.0 * SCALE):
    """Read frames of client `c` until it has `n_messages` message frames of
    `room` and a reply for every ref in `acks`. Returns (messages in arrival
    order, {ref: reply}). Other frames (member events) stay in the backlog."""
    want = set(acks)
    replies = {}
    messages = []
    others = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < n_messages or want:
            if c.backlog:
                f = c.backlog.pop(0)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure(
                        "%s: after %.0fs it has %d of %d messages of %s and is still waiting for "
                        "%d replies (last message: %s)" % (
                            c.name, timeout, len(messages), n_messages, room, len(want),
                            json.dumps(messages[-1]) if messages else "none"))
                try:
                    f = await c._read(left)
                except TestFailure as e:
                    if "no frame within" not in str(e):
                        raise
                    continue
            ref = f.get("ref")
            if ref in want:
                want.discard(ref)
                replies[ref] = f
            elif f.get("type") == "message" and f.get("room") == room:
                messages.append(f)
            else:
                others.append(f)
    finally:
        c.backlog[0:0] = others
    return messages, replies


async def drain(c, seconds=0.3):
    """Read whatever `c` receives for `seconds` into its backlog."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            c.backlog.append(await c._read(left))
        except TestFailure as e:
            if "no frame within" in str(e):
                return
            raise


async def history_all(c, room, page, since=0):
    """Every message of `room` after `since`, read page by page (limit =
    `page`, since = the last seq of the previous page) until a page comes
    back short without "more" (a reply cut to the connection's send budget
    says "more": true). Returns (messages, [truncated of each page])."""
    messages = []
    truncs = []
    while True:
        h = await c.request({"type": "history", "room": room, "since": since, "limit": page})
        check(h.get("type") == "history" and isinstance(h.get("messages"), list)
              and isinstance(h.get("truncated"), bool),
              "%s: history of %s since %d -> %s" % (c.name, room, since, json.dumps(h)[:300]))
        messages += h["messages"]
        truncs.append(h["truncated"])
        if len(h["messages"]) < page and not h.get("more"):
            return messages, truncs
        since = h["messages"][-1].get("seq")
        check(isinstance(since, int), "%s: history message without an integer seq: %s"
              % (c.name, json.dumps(h["messages"][-1])))


def seq_problems(seqs, want):
    """Describe how the list `seqs` differs from `want` (None when equal)."""
    if seqs == want:
        return None
    dups = sorted({s for s in seqs if seqs.count(s) > 1}) if len(seqs) < 5000 else []
    missing = sorted(set(want) - set(seqs))
    extra = sorted(set(seqs) - set(want))
    first = next((i for i, (a, b) in enumerate(zip(seqs, want)) if a != b), min(len(seqs), len(want)))
    return ("%d seqs instead of %d; first difference at position %d (got %s, want %s); "
            "duplicates %s; missing %s; unexpected %s" % (
                len(seqs), len(want), first, seqs[first:first + 5], want[first:first + 5],
                dups[:10], missing[:10], extra[:10]))


# ---- a proxy that holds a command connection's bytes, then replays them ----

class HoldProxy(RedisProxy):
    """RedisProxy with a "hold then release" mode for command connections
    (those that never sent SUBSCRIBE): what a stalled path does to a node's
    requests, and what TCP does with them when the path heals.

    hold_commands() makes every open command connection keep what the node
    sends (not forwarded) and drop Redis's replies; its server-side
    connection stays open even when the node closes its end. release()
    then writes the held bytes to Redis on that old server-side connection,
    as a late retransmission would, waits `settle` seconds for Redis to
    carry them out and closes it. Connections opened later are served
    normally."""

    class _Link(RedisProxy._Link):
        def __init__(self, writers):
            super().__init__(writers)
            self.held = None        # bytes kept while holding, else None

    @staticmethod
    async def _pump(src, dst, link, upstream):
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                RedisProxy._note_subscriber(link, data, upstream)
                if link.held is not None:
                    if upstream:
                        link.held += data
                    continue
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if not (upstream and link.held is not None):
                dst.close()     # a held link's Redis side stays open for release()

    def hold_commands(self):
        """Hold every open command connection; returns how many."""
        n = 0
        for link in self.links:
            if link.open and not link.subscriber and link.held is None:
                link.held = b""
                n += 1
        return n

    def held_bytes(self):
        return sum(len(l.held) for l in self.links if l.held)

    async def release(self, settle=1.0):
        """Send what every held connection kept to Redis on its old
        server-side connection, then close it. Returns the bytes sent."""
        n = 0
        held = [l for l in self.links if l.held is not None]
        for link in held:
            up = link.writers[1]
            data, link.held = link.held, b""
            if data and not up.is_closing():
                up.write(data)
                await up.drain()
                n += len(data)
        await asyncio.sleep(settle)
        for link in held:
            for w in link.writers:
                w.close()
        return n
