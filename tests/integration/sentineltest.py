"""Helpers for the tests of the redis backplane behind Redis Sentinel (issue 11).

A SentinelGroup is one monitored master ("confab" by default), its
replicas and three sentinels, every one a real redis-server on a free
loopback port (redistest.redis_port: below the ephemeral range, reserved
for the whole script) with a directory of its own in the test's temp dir.
The sentinels are `redis-server sentinel-N.conf --sentinel` (Debian has no
redis-sentinel program in every install; this is the same binary).

Every process is started with confabtest.spawn(), so it is registered and
stopped by PID at the end of the script even when a test fails, and the
watchdog kills it by PID too.

  resp_command()   one command over a plain (or TLS) socket, RESP2 parsed
  DataNode         a RedisServer that may start as a replica (--replicaof)
                   and may need a password; role(), info(), kill()
  Sentinel         one sentinel process (writes its own config file)
  EventWatch       a thread per sentinel, PSUBSCRIBEd to every sentinel
                   event: +sdown, +odown, +switch-master, +convert-to-slave...
  CommandMonitor   MONITOR on a data node in a thread: every command it
                   gets from a client, with the server's timestamp and the
                   client's address (so a test can tell confab's commands
                   from the replication link's)
  SentinelGroup    the whole set: start(), addrs() for `[redis] sentinels`,
                   master_port() (SENTINEL get-master-addr-by-name),
                   kill_master(), wait_switch(), restart(), wait_replica(),
                   wait_healthy(), client_writes()
  SentinelCluster  redistest.Cluster whose nodes find Redis through the
                   group's sentinels (no host/port keys)

What the sentinels do here (measured on the 2-core test machine):
  - get-master-addr-by-name answers "127.0.0.1" and the port: sentinels
    report the address they monitor (IP, unless `hostnames=True`, where
    the group monitors "localhost" and every node announces "localhost";
    +switch-master then says "confab localhost P1 localhost P2");
  - down-after-milliseconds is 2000, not 1000: a sentinel pings every
    min(1000 ms, down-after), and a master it has just switched to gets
    its first PING about 1 s after the switch. With down-after 1000 a
    sentinel now and then declared the freshly promoted master +sdown
    1.02 s after +switch-master and failed over a second time (seen on
    this machine: round 4 of 5, the second master left with no replica);
  - after kill -9 of the master (timings measured with down-after 1000;
    add 1 s to each with 2000): +sdown 1.0 s later,
    +odown and the leader's election within 0.1 s, REPLICAOF NO ONE to the
    chosen replica, +promoted-slave about 0.9 s later (the sentinels'
    1 s INFO period), and +switch-master 2.2-2.4 s after the kill. The
    leader publishes it first; the other sentinels publish their own when
    its hello reaches them, 0-1.1 s later. get-master-addr-by-name names
    the promoted replica from +failover-state-reconf-slaves on, about
    0.1 s before the leader's +switch-master;
  - an old master restarted as it was configured (a master) is turned into
    a replica by the sentinels (+convert-to-slave) about 10 s after it
    answers again; until then ROLE says master, with an empty data set;
  - a replica gets the master's scripts as their effects (SET, PUBLISH...
    from the master's address, never EVALSHA); a write a client sends to
    a replica is refused with READONLY before it runs, so MONITOR does not
    show it but INFO errorstats counts it: client_writes() and
    readonly_errors() together see every write attempt on a replica.

SPDX-License-Identifier: MIT
"""
import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from confabtest import SCALE, START_TIMEOUT, TestFailure, check, spawn, tail
from redistest import REDIS_SERVER, Cluster, RedisServer, _program, redis_port

SWITCH_TIMEOUT = 30.0 * SCALE     # kill -9 of the master -> +switch-master seen by every sentinel
CONVERT_TIMEOUT = 40.0 * SCALE    # old master restarted -> ROLE slave, link up, sentinels agree
POLL = 0.1


# ---- RESP over a socket ---------------------------------------------------

class RespError(TestFailure):
    """An error reply (-ERR ...) to a command."""


class _ErrorReply(str):
    """An error nested in an array reply (EXEC)."""


def _read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed in the middle of a reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode("utf-8", "replace")
    if kind == b"-":
        return _ErrorReply(rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("connection closed in the middle of a bulk string")
        return data[:-2].decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ConnectionError("not a RESP reply: %r" % line[:80])


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespConn:
    """One blocking connection to 127.0.0.1:port (TLS when `tls` is an
    ssl.SSLContext; server_hostname for its check). AUTHs with `password`."""

    def __init__(self, port, password=None, timeout=2.0, tls=None, server_hostname="localhost",
                 host="127.0.0.1"):
        self.port = port
        s = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            try:
                s = tls.wrap_socket(s, server_hostname=server_hostname)
            except (OSError, ssl.SSLError):
                s.close()
                raise
        self.sock = s
        self.f = s.makefile("rb")
        if password:
            self.command("AUTH", password)

    def send(self, *args):
        self.sock.sendall(_encode(args))

    def read(self):
        return _read_reply(self.f)

    def command(self, *args):
        self.send(*args)
        r = self.read()
        if isinstance(r, _ErrorReply):
            raise RespError("port %d: %s -> -%s" % (self.port, " ".join(str(a) for a in args)[:200], r))
        return r

    def close(self):
        for x in (self.f, self.sock):
            try:
                x.close()
            except OSError:
                pass


def resp_command(port, *args, password=None, timeout=2.0, tls=None, server_hostname="localhost"):
    """Send one command to 127.0.0.1:port, return the parsed reply. An
    error reply raises RespError; a network failure raises TestFailure."""
    try:
        c = RespConn(port, password=password, timeout=timeout, tls=tls,
                     server_hostname=server_hostname)
    except (OSError, ssl.SSLError) as e:
        raise TestFailure("port %d: %s: cannot connect: %s" % (port, args[0], e)) from None
    try:
        return c.command(*args)
    except (OSError, ConnectionError) as e:
        raise TestFailure("port %d: %s: %s" % (port, " ".join(str(a) for a in args)[:100], e)) from None
    finally:
        c.close()


def parse_info(text):
    """INFO text -> {key: value} (values as strings)."""
    out = {}
    for line in (text or "").splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


def pairs(flat):
    """A flat [k1, v1, k2, v2, ...] reply (SENTINEL master) -> dict."""
    return dict(zip(flat[0::2], flat[1::2])) if isinstance(flat, list) else {}


# ---- data nodes ----------------------------------------------------------

class DataNode(RedisServer):
    """A redis-server of the group. `replica_of` is a callable that gives
    the port to replicate at (re)start, or None for a master; `announce`
    sets replica-announce-ip (e.g. "localhost")."""

    def __init__(self, tmp, name, replica_of=None, password=None, announce=None):
        super().__init__(tmp, name)
        self.replica_of = replica_of
        self.password = password
        self.announce = announce
        self.started_at = None        # time.time() of the last start

    def argv(self):
        a = super().argv() + ["--repl-diskless-sync-delay", "0"]
        if self.replica_of is not None:
            a += ["--replicaof", "127.0.0.1", str(self.replica_of())]
        if self.password:
            a += ["--requirepass", self.password, "--masterauth", self.password]
        if self.announce:
            a += ["--replica-announce-ip", self.announce]
        return a

    def start(self, timeout=START_TIMEOUT):
        if not self.running():
            self.started_at = time.time()
        return super().start(timeout)

    def ping(self):
        try:
            return resp_command(self.port, "PING", password=self.password, timeout=1.0)
        except TestFailure as e:
            return str(e)

    def command(self, *args, timeout=2.0):
        return resp_command(self.port, *args, password=self.password, timeout=timeout)

    def role(self):
        """ROLE's first element ("master", "slave"), or None when it does not answer."""
        try:
            r = self.command("ROLE", timeout=1.0)
        except TestFailure:
            return None
        return r[0] if isinstance(r, list) and r else None

    def info(self, section=""):
        return parse_info(self.command("INFO", section) if section else self.command("INFO"))

    def commandstats(self):
        """{command: calls} from INFO commandstats (e.g. {"evalsha": 12})."""
        out = {}
        for k, v in self.info("commandstats").items():
            if k.startswith("cmdstat_"):
                m = re.search(r"(?:^|,)calls=(\d+)", v)
                out[k[len("cmdstat_"):]] = int(m.group(1)) if m else 0
        return out

    def errorstats(self):
        """{error code: count} from INFO errorstats (e.g. {"READONLY": 2})."""
        out = {}
        for k, v in self.info("errorstats").items():
            if k.startswith("errorstat_"):
                m = re.search(r"count=(\d+)", v)
                out[k[len("errorstat_"):]] = int(m.group(1)) if m else 0
        return out

    def kill(self):
        """kill -9 by PID; returns the exit status."""
        return self.stop(signal.SIGKILL)


# ---- sentinels -----------------------------------------------------------

class Sentinel:
    """One `redis-server sentinel.conf --sentinel` on 127.0.0.1:port."""

    def __init__(self, tmp, name, password=None):
        self.name = name
        # Unlike a data node (redistest.ReservedPort), a sentinel keeps its
        # port even when it is in use at start: the nodes' [redis]
        # sentinels list names it when they are made, before it starts.
        self.port, self._reservation = redis_port()
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=tmp)
        self.conf = os.path.join(self.dir, "sentinel.conf")
        self.log_path = os.path.join(self.dir, "sentinel.log")
        self.password = password
        self.proc = None

    def write_conf(self, lines):
        with open(self.conf, "w") as f:
            f.write("\n".join(["port %d" % self.port, "bind 127.0.0.1", "daemonize no",
                               "protected-mode no", "dir %s" % self.dir, 'logfile ""']
                              + list(lines)) + "\n")

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=START_TIMEOUT):
        if self.running():
            return self
        out = open(self.log_path, "ab")
        try:
            self.proc = spawn([_program(REDIS_SERVER) or REDIS_SERVER, self.conf, "--sentinel"],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        last = "nothing"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("%s: sentinel exited %s at start\n%s"
                                  % (self.name, self.proc.returncode, tail(self.log())))
            try:
                last = self.command("PING", timeout=1.0)
                if last == "PONG":
                    return self
            except TestFailure as e:
                last = str(e)
            time.sleep(0.05)
        raise TestFailure("%s: sentinel on port %d does not answer PING within %.0fs (%s)\n%s"
                          % (self.name, self.port, timeout, last, tail(self.log())))

    def command(self, *args, timeout=2.0):
        return resp_command(self.port, *args, password=self.password, timeout=timeout)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class EventWatch(threading.Thread):
    """PSUBSCRIBE * on one sentinel: every event it publishes, as
    (time.monotonic(), time.time(), channel, payload) in `events`.
    Reconnects (every 0.2 s) while the sentinel is away."""

    def __init__(self, sentinel):
        super().__init__(daemon=True, name="events-" + sentinel.name)
        self.sentinel = sentinel
        self.events = []
        self.lock = threading.Lock()
        self.stopping = False
        self.conn = None
        self.subscribed = threading.Event()

    def run(self):
        while not self.stopping:
            try:
                self.conn = RespConn(self.sentinel.port, password=self.sentinel.password,
                                     timeout=2.0)
                self.conn.sock.settimeout(None)
                self.conn.send("PSUBSCRIBE", "*")
                self.conn.read()
                self.subscribed.set()
                while not self.stopping:
                    r = self.conn.read()
                    if isinstance(r, list) and len(r) == 4 and r[0] == "pmessage":
                        with self.lock:
                            self.events.append((time.monotonic(), time.time(), r[2], r[3]))
            except (OSError, ConnectionError, ValueError, TestFailure):
                if self.conn:
                    self.conn.close()
                time.sleep(0.2)

    def find_all(self, since=0.0):
        with self.lock:
            return [e for e in self.events if e[0] >= since]

    def find(self, channel, since=0.0, contains=None):
        """Events on `channel` at or after monotonic time `since`."""
        with self.lock:
            return [e for e in self.events if e[2] == channel and e[0] >= since
                    and (contains is None or contains in e[3])]

    def stop(self):
        self.stopping = True
        if self.conn:
            try:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.conn.close()


# ---- MONITOR -------------------------------------------------------------

_MON_LINE = re.compile(r'^(\d+\.\d+) \[(\d+) ([^\]]+)\] (.*)$')
_MON_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')


class CommandMonitor(threading.Thread):
    """MONITOR on a data node: `commands` is a list of
    (server time.time(), client address "ip:port" or "lua"/"unix...",
    COMMAND upper case, [args]). Admin commands (REPLICAOF, CONFIG...) do
    not show in MONITOR; everything else a client sends does. Started
    right after the node answers PING, stopped with stop()."""

    def __init__(self, node):
        super().__init__(daemon=True, name="monitor-" + node.name)
        self.node = node
        self.commands = []
        self.lock = threading.Lock()
        self.stopping = False
        self.ready = threading.Event()
        self.error = None
        self.conn = RespConn(node.port, password=node.password, timeout=2.0)
        self.conn.sock.settimeout(None)
        self.conn.send("MONITOR")
        r = self.conn.read()
        check(r == "OK", "%s: MONITOR -> %r" % (node.name, r))
        self.started_at = time.time()

    def run(self):
        try:
            while not self.stopping:
                line = self.conn.f.readline()
                if not line:
                    break
                m = _MON_LINE.match(line.decode("utf-8", "replace").rstrip("\r\n")[1:])
                if not m:
                    continue
                args = [a.encode("latin-1", "replace").decode("unicode_escape", "replace")
                        for a in _MON_ARG.findall(m.group(4))]
                if not args:
                    continue
                with self.lock:
                    self.commands.append((float(m.group(1)), m.group(3), args[0].upper(), args[1:]))
        except (OSError, ValueError) as e:
            if not self.stopping:
                self.error = str(e)

    def snapshot(self):
        with self.lock:
            return list(self.commands)

    def stop(self):
        self.stopping = True
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


# Commands that change data (or reach subscribers) as a backplane would send
# them; a replica must never get one from a client. PUBLISH on the
# sentinels' own hello channel is the sentinels' and is left out; so are
# MULTI/EXEC (the sentinels wrap their REPLICAOF in one; the commands of a
# transaction show one by one) and SCRIPT LOAD (it changes no data).
WRITE_COMMANDS = frozenset("""
EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO
SET SETEX PSETEX SETNX GETSET GETDEL GETEX DEL UNLINK EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST
INCR INCRBY DECR DECRBY APPEND HSET HSETNX HMSET HDEL HINCRBY ZADD ZREM ZINCRBY
ZREMRANGEBYSCORE ZREMRANGEBYRANK SADD SREM SPOP LPUSH RPUSH LPOP RPOP LTRIM LREM LSET
XADD XTRIM XDEL RENAME COPY RESTORE PUBLISH SPUBLISH FLUSHDB FLUSHALL WAIT
""".split())


def is_client_write(cmd, args):
    if cmd not in WRITE_COMMANDS:
        return False
    if cmd == "PUBLISH" and args and args[0] == "__sentinel__:hello":
        return False
    return True


# ---- the group -------------------------------------------------------------

class SentinelGroup:
    """A master, `replicas` replicas and `sentinels` sentinels on loopback.

    down_after_ms / failover_timeout_ms go to every sentinel's config;
    `password` is the data nodes' requirepass (and masterauth, and the
    sentinels' auth-pass); `sentinel_password` the sentinels' requirepass
    (and sentinel-pass between them). hostnames=True monitors "localhost"
    with `sentinel resolve-hostnames yes` and `announce-hostnames yes`,
    every node announcing "localhost": get-master-addr-by-name then
    answers a name."""

    def __init__(self, tmp, master_name="confab", replicas=1, sentinels=3, quorum=2,
                 down_after_ms=2000, failover_timeout_ms=5000, password=None,
                 sentinel_password=None, hostnames=False):
        self.tmp = tmp
        self.master_name = master_name
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.password = password
        self.sentinel_password = sentinel_password
        self.hostnames = hostnames
        announce = "localhost" if hostnames else None
        first = DataNode(tmp, "redis-0", password=password, announce=announce)
        self.nodes = [first]
        for i in range(replicas):
            self.nodes.append(DataNode(tmp, "redis-%d" % (i + 1), replica_of=lambda: first.port,
                                       password=password, announce=announce))
        self.sentinels = [Sentinel(tmp, "sentinel-%d" % (i + 1), password=sentinel_password)
                          for i in range(sentinels)]
        self.watches = []
        self.monitors = {}            # node name -> CommandMonitor (replicas only)
        self.windows = []             # closed windows: (node name, CommandMonitor, start, end)
        self.started = False
        self.start_error = None
        self.log = []                 # (time.monotonic(), text): what the harness did
        self.readonly = {}            # node name -> READONLY errors of its killed processes

    # -- addresses ----------------------------------------------------------

    @property
    def port(self):
        """The first master's port (redistest.Cluster wants a .port)."""
        return self.nodes[0].port

    def addrs(self):
        """`[redis] sentinels` value: "127.0.0.1:P1, 127.0.0.1:P2, ..."."""
        return ", ".join("127.0.0.1:%d" % s.port for s in self.sentinels)

    def node(self, port):
        for n in self.nodes:
            if n.port == int(port):
                return n
        raise TestFailure("no data node of the group on port %s" % port)

    def data_ports(self):
        return {n.port for n in self.nodes}

    def note(self, text):
        self.log.append((time.monotonic(), text))

    # -- start / stop --------------------------------------------------------

    def _sentinel_conf(self):
        host = "localhost" if self.hostnames else "127.0.0.1"
        n = self.master_name
        lines = []
        if self.hostnames:
            lines += ["sentinel resolve-hostnames yes", "sentinel announce-hostnames yes",
                      "sentinel announce-ip localhost"]
        lines += ["sentinel monitor %s %s %d %d" % (n, host, self.nodes[0].port, self.quorum),
                  "sentinel down-after-milliseconds %s %d" % (n, self.down_after_ms),
                  "sentinel failover-timeout %s %d" % (n, self.failover_timeout_ms),
                  "sentinel parallel-syncs %s 1" % n]
        if self.password:
            lines.append("sentinel auth-pass %s %s" % (n, self.password))
        if self.sentinel_password:
            lines += ["requirepass %s" % self.sentinel_password,
                      "sentinel sentinel-pass %s" % self.sentinel_password]
        return lines

    def start(self, timeout=CONVERT_TIMEOUT):
        """Start the data nodes, wait for every replica's link, then the
        sentinels, and wait until every sentinel knows the master, every
        replica and the other sentinels. Idempotent."""
        if self.start_error:
            raise TestFailure(self.start_error)
        if self.started:
            return self
        try:
            for n in self.nodes:
                n.start()
            for n in self.nodes[1:]:
                self.monitors[n.name] = CommandMonitor(n)
                self.monitors[n.name].start()
            for s in self.sentinels:
                s.write_conf(self._sentinel_conf())
                s.start()
                w = EventWatch(s)
                w.start()
                self.watches.append(w)
            for w in self.watches:
                check(w.subscribed.wait(5.0), "%s: PSUBSCRIBE * did not answer" % w.sentinel.name)
            self.wait_healthy_sync(timeout)
        except TestFailure as e:
            self.start_error = "sentinel group: %s" % e
            raise
        self.started = True
        self.note("group started: master %d, replicas %s, sentinels %s" % (
            self.nodes[0].port, [n.port for n in self.nodes[1:]], [s.port for s in self.sentinels]))
        return self

    def stop(self):
        """Stop the watchers and monitors, then every process by PID."""
        for w in self.watches:
            w.stop()
        for m in self.monitors.values():
            m.stop()
        for s in self.sentinels:
            s.stop()
        for n in self.nodes:
            n.stop()

    # -- questions -----------------------------------------------------------

    def master_addr(self, sentinel=None):
        """(host, port) that `sentinel` (the first that answers) reports."""
        last = None
        for s in ([sentinel] if sentinel else self.sentinels):
            try:
                r = s.command("SENTINEL", "get-master-addr-by-name", self.master_name)
                if isinstance(r, list) and len(r) == 2:
                    return r[0], int(r[1])
                last = "%s answered %r" % (s.name, r)
            except TestFailure as e:
                last = str(e)
        raise TestFailure("no sentinel reports the master: %s" % last)

    def master_port(self):
        return self.master_addr()[1]

    def master(self):
        return self.node(self.master_port())

    def replicas(self):
        m = self.master_port()
        return [n for n in self.nodes if n.port != m]

    def role(self, port):
        return self.node(port).role()

    def _health_problems(self):
        """What keeps the group from being ready for a failover (a list)."""
        problems = []
        addrs = set()
        for s in self.sentinels:
            try:
                addrs.add(self.master_addr(s))
                m = pairs(s.command("SENTINEL", "master", self.master_name))
                reps = [pairs(r) for r in s.command("SENTINEL", "replicas", self.master_name)]
            except TestFailure as e:
                problems.append(str(e))
                continue
            if m.get("flags") != "master":
                problems.append("%s: master flags %s" % (s.name, m.get("flags")))
            if int(m.get("num-other-sentinels", 0)) != len(self.sentinels) - 1:
                problems.append("%s: knows %s other sentinels" % (s.name, m.get("num-other-sentinels")))
            good = [r for r in reps if r.get("flags") == "slave"
                    and r.get("master-link-status") == "ok"]
            if len(good) != len(self.nodes) - 1:
                problems.append("%s: replicas %s" % (s.name, [(r.get("port"), r.get("flags"),
                                                              r.get("master-link-status"))
                                                             for r in reps]))
        if len(addrs) != 1:
            problems.append("the sentinels disagree on the master: %s" % sorted(addrs))
            return problems
        (_, mport), = addrs
        try:
            info = self.node(mport).info("replication")
        except TestFailure as e:
            return problems + [str(e)]
        if info.get("role") != "master":
            problems.append("port %d: role %s" % (mport, info.get("role")))
        online = [v for k, v in info.items() if re.match(r"slave\d+$", k) and "state=online" in v]
        if len(online) != len(self.nodes) - 1:
            problems.append("port %d: %d replicas online (%s)" % (mport, len(online), info))
        for n in self.nodes:
            if n.port == mport:
                continue
            try:
                ri = n.info("replication")
            except TestFailure as e:
                problems.append(str(e))
                continue
            if ri.get("role") != "slave" or ri.get("master_port") != str(mport) \
                    or ri.get("master_link_status") != "up":
                problems.append("%s: role %s master_port %s link %s" % (
                    n.name, ri.get("role"), ri.get("master_port"), ri.get("master_link_status")))
        return problems

    def wait_healthy_sync(self, timeout=CONVERT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            problems = self._health_problems()
            if not problems:
                return
            if time.monotonic() > deadline:
                raise TestFailure("the sentinel group is not ready within %.0fs: %s"
                                  % (timeout, "; ".join(problems)[:1500]))
            time.sleep(POLL)

    async def wait_healthy(self, timeout=CONVERT_TIMEOUT):
        """Every sentinel agrees on the master, knows the other sentinels
        and sees every replica as a plain "slave" with its link ok; the
        master has them all online; each replica's ROLE is slave of it."""
        deadline = time.monotonic() + timeout
        while True:
            problems = await asyncio.to_thread(self._health_problems)
            if not problems:
                return
            if time.monotonic() > deadline:
                raise TestFailure("the sentinel group is not ready within %.0fs: %s"
                                  % (timeout, "; ".join(problems)[:1500]))
            await asyncio.sleep(POLL)

    # -- failover --------------------------------------------------------------

    def kill_master(self):
        """kill -9 the current master (as the sentinels report it). Returns
        (node, time.monotonic() of the kill). Its CommandMonitor window (if
        it had one as a replica) was closed when it was promoted."""
        node = self.master()
        self._close_window_of_promoted(node)
        try:
            self.readonly[node.name] = self.readonly.get(node.name, 0) + \
                node.errorstats().get("READONLY", 0)
        except TestFailure:
            pass
        node.kill()
        t = time.monotonic()
        self.note("kill -9 %s (port %d)" % (node.name, node.port))
        return node, t

    async def wait_switch(self, old_port, since, timeout=SWITCH_TIMEOUT):
        """Wait until every sentinel has published +switch-master away from
        `old_port` (after monotonic time `since`) and reports the same new
        master. Returns {"port", "first" (monotonic time of the first
        +switch-master seen), "all" (of the last), "per_sentinel"}."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {}
            for w in self.watches:
                ev = [e for e in w.find("+switch-master", since)
                      if e[3].split()[:3][-1:] == [str(old_port)]]
                if ev:
                    seen[w.sentinel.name] = ev[0]
            if len(seen) == len(self.watches):
                ports = {int(e[3].split()[4]) for e in seen.values()}
                try:
                    reported = set()
                    for s in self.sentinels:
                        reported.add((await asyncio.to_thread(self.master_addr, s))[1])
                except TestFailure:
                    reported = set()
                if len(ports) == 1 and reported == ports:
                    port, = ports
                    first = min(e[0] for e in seen.values())
                    last = max(e[0] for e in seen.values())
                    new = self.node(port)
                    self._close_window_of_promoted(new, at=time.time())
                    self.note("+switch-master %d -> %d seen by all sentinels" % (old_port, port))
                    return {"port": port, "first": first, "all": last,
                            "per_sentinel": {k: v[0] for k, v in seen.items()}}
            if time.monotonic() > deadline:
                raise TestFailure(
                    "no +switch-master away from port %d on every sentinel within %.0fs "
                    "(seen on %s); events: %s" % (old_port, timeout, sorted(seen),
                                                 self.events_text(since)))
            await asyncio.sleep(0.05)

    def events_text(self, since=0.0, limit=40):
        evs = []
        for w in self.watches:
            evs += [(e[0], w.sentinel.name, e[2], e[3]) for e in w.find_all(since)]
        evs.sort()
        return "; ".join("%.2f %s %s %s" % e for e in evs[-limit:])

    def restart(self, node, as_replica=False):
        """Start a killed node again on its port and directory. By default
        as it was configured (the first master comes back as a master, and
        the sentinels must turn it into a replica); as_replica=True starts
        it with --replicaof the current master. A MONITOR is started on it
        at once (its replica window: no client may write to it)."""
        check(not node.running(), "%s is still running" % node.name)
        saved = node.replica_of
        if as_replica:
            port = self.master_port()
            node.replica_of = lambda: port
        try:
            node.start()
        finally:
            node.replica_of = saved
        mon = CommandMonitor(node)
        mon.start()
        self.monitors[node.name] = mon
        self.note("restarted %s (port %d)%s" % (node.name, node.port,
                                                " as a replica" if as_replica else ""))
        return node

    async def wait_replica(self, node, timeout=CONVERT_TIMEOUT):
        """Wait until `node` says ROLE slave of the current master with its
        link up. Returns the seconds it took."""
        start = time.monotonic()
        deadline = start + timeout
        last = None
        while True:
            try:
                mport = (await asyncio.to_thread(self.master_addr))[1]
                ri = await asyncio.to_thread(node.info, "replication")
                last = (ri.get("role"), ri.get("master_port"), ri.get("master_link_status"))
                if last == ("slave", str(mport), "up"):
                    return time.monotonic() - start
            except TestFailure as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise TestFailure("%s (port %d) is not a replica of the master with its link up "
                                  "within %.0fs of the restart (role, master_port, link: %s); "
                                  "events: %s" % (node.name, node.port, timeout, last,
                                                  self.events_text(start - 1)))
            await asyncio.sleep(POLL)

    # -- writes to replicas ------------------------------------------------------

    def _close_window_of_promoted(self, node, at=None):
        mon = self.monitors.pop(node.name, None)
        if mon is not None:
            end = at if at is not None else time.time()
            self.windows.append((node.name, mon, mon.started_at, end))
            mon.stop()

    def client_writes(self):
        """Every write command that a client (not the replication link, not
        a sentinel's hello) sent to a data node while it was not the master:
        from the start of its MONITOR (right after it answered PING as a
        replica, or after its restart) until it was promoted, or now.
        A list of (node name, server time, client address, command, args)."""
        data = self.data_ports()
        found = []
        spans = list(self.windows) + [(name, mon, mon.started_at, time.time())
                                      for name, mon in self.monitors.items()]
        for name, mon, start, end in spans:
            for ts, addr, cmd, args in mon.snapshot():
                if ts < start or ts > end:
                    continue
                port = addr.rsplit(":", 1)[-1]
                if port.isdigit() and int(port) in data:
                    continue          # the replication link from the master
                if is_client_write(cmd, args):
                    found.append((name, ts, addr, cmd, [a[:40] for a in args[:3]]))
        return found

    def readonly_errors(self):
        """{node name: READONLY error replies} over every process of each
        node (killed ones counted at their kill): a write that reached a
        replica and was refused there. MONITOR does not show such a
        command (it is refused before it runs); INFO errorstats counts it.
        Nothing in the harness or the sentinels writes to a replica."""
        out = dict(self.readonly)
        for n in self.nodes:
            if n.running():
                try:
                    out[n.name] = out.get(n.name, 0) + n.errorstats().get("READONLY", 0)
                except TestFailure:
                    pass
        return {k: v for k, v in out.items() if v}

    def monitor_errors(self):
        return ["%s: %s" % (n, m.error) for n, m in self.monitors.items() if m.error]


# ---- confabd nodes that find Redis through the sentinels -------------------

class SentinelCluster(Cluster):
    """redistest.Cluster whose nodes have `sentinels` and `master_name`
    (plus `sentinel_keys`) in [redis] and no host or port."""

    def __init__(self, suite, group, guests=(), alices=(), sentinel_keys=None, **kw):
        super().__init__(suite, guests=guests, alices=alices, redis=group, **kw)
        for _, _, secs in self.specs:
            r = secs["redis"]
            r.pop("host", None)
            r.pop("port", None)
            r["sentinels"] = group.addrs()
            r["master_name"] = group.master_name
            r.update(sentinel_keys or {})


def sentinel_available():
    """redis-server (which runs a sentinel with --sentinel) is there."""
    return _program(REDIS_SERVER) is not None


def have(program):
    return shutil.which(program) is not None
