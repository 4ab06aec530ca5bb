"""Helpers for the tests of the redis_cluster backplane (test_cluster_*.py,
issue 9).

Every script starts its own Redis Cluster (6 redis-server processes by
default: 3 masters and 3 replicas, cluster-node-timeout 2000 ms) on free
loopback ports, and confabd nodes (ws + redis_cluster plugins) that use it,
then drives them with real WebSocket clients (confabtest.Client). This
module holds:

  RedisCluster   the redis-server processes: create (redis-cli --cluster
                 create), wait for cluster_state:ok and one slot map on
                 every node, stop by PID; call() (RESP over a socket) and
                 cli() (redis-cli); master_of_slot(); kill_master() and
                 wait_promoted(); restart() (a killed node back, as a
                 replica); migrate_slot() (SETSLOT IMPORTING/MIGRATING,
                 GETKEYSINSLOT + MIGRATE, SETSLOT NODE), safe while traffic
                 flows
  keyslot        CRC16 key slots with hash tags, as Redis computes them
  Layout         the partitions of /work/cluster-design.md (docs/
                 backplane-redis-cluster.md): part(name) (FNV-1a 32 % n),
                 the tag T_k and channel "{T_k}ch" of partition k, room
                 names whose partition falls on a given master
  ClusterNodes   confabd nodes with a [redis_cluster] section (seeds: the
                 cluster's ports), the way redistest.Cluster makes nodes
                 with a [redis] section
  ClusterSuite   a RedisSuite that skips (exit 77) when the redis_cluster
                 plugin is not built
  aio            run a blocking helper (kill, wait, migrate) in a thread,
                 so that the test's clients keep running meanwhile

Environment: REDIS_SERVER and REDIS_CLI (see redistest), and confabtest's.

SPDX-License-Identifier: MIT
"""
import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

from confabtest import (PLUGIN_BUILD_DIR, SANITIZERS, SCALE, START_TIMEOUT, STOP_TIMEOUT,
                        WS_SO, TestFailure, check, fixture, listening, skip, spawn, tail, _procs,
                        _ephemeral_range)
import redistest
from redistest import REDIS_CLI, REDIS_SERVER, RedisProcess, RedisSuite, _program

REDIS_CLUSTER_SO = os.path.join(PLUGIN_BUILD_DIR, "redis_cluster", ".libs", "redis_cluster.so")

NODE_TIMEOUT_MS = 2000                         # cluster-node-timeout of every test cluster
PRESENCE_TTL = 3                               # [redis_cluster] presence_ttl of the test nodes
CREATE_TIMEOUT = 30.0 * SCALE                  # redis-cli --cluster create -> ok everywhere
FAILOVER_TIMEOUT = 20.0 * SCALE                # kill -9 of a master -> its replica serves
SLOTS = 16384
POLL = 0.05


def aio(fn, *args, **kw):
    """Run the blocking `fn(*args, **kw)` in a thread; await the result."""
    return asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))


# ---- key slots -------------------------------------------------------------

def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data):
    """CRC16-CCITT (XMODEM), Redis Cluster's: crc16(b"123456789") == 0x31C3."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def keyslot(key):
    """The hash slot of `key` (str or bytes), hash tags included: the text
    between the first '{' and the next '}', when not empty."""
    if isinstance(key, str):
        key = key.encode()
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key) % SLOTS


# ---- the partitions of the design ------------------------------------------

def fnv1a_32(text):
    h = 2166136261
    for b in (text.encode() if isinstance(text, str) else text):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


class Layout:
    """The partitions of one deployment (prefix, partitions):

      part(name)   = fnv1a_32(name) % partitions, for room and user names
      tag(k)       = T_k = prefix + k + "." + s, the smallest s >= 0 whose
                     slot (of "{T_k}") is in [k*16384/n, (k+1)*16384/n)
      keyprefix(k) = "{T_k}", channel(k) = "{T_k}ch", slot(k)
      config_key   = "{" + prefix + "config}"
    """

    def __init__(self, prefix, partitions):
        self.prefix = prefix
        self.partitions = partitions
        self._tags = {}

    def part(self, name):
        return fnv1a_32(name) % self.partitions

    def tag(self, k):
        check(0 <= k < self.partitions, "partition %r out of 0..%d" % (k, self.partitions - 1))
        if k not in self._tags:
            lo = k * SLOTS // self.partitions
            hi = (k + 1) * SLOTS // self.partitions
            s = 0
            while not lo <= keyslot("%s%d.%d" % (self.prefix, k, s)) < hi:
                s += 1
            self._tags[k] = "%s%d.%d" % (self.prefix, k, s)
        return self._tags[k]

    def keyprefix(self, k):
        return "{%s}" % self.tag(k)

    def channel(self, k):
        return "{%s}ch" % self.tag(k)

    def slot(self, k):
        return keyslot(self.keyprefix(k))

    def room_slot(self, room):
        return self.slot(self.part(room))

    def room_channel(self, room):
        return self.channel(self.part(room))

    @property
    def config_key(self):
        return "{%sconfig}" % self.prefix

    def channels(self):
        """Every partition channel of this deployment."""
        return {self.channel(k) for k in range(self.partitions)}

    def names_on(self, master_port, rc, base, count=1, exclude_parts=()):
        """`count` names BASE-i whose partitions' slots the master on
        `master_port` owns (per rc's current slot map), each in a partition
        none of the others (nor `exclude_parts`) use."""
        out = []
        used = set(exclude_parts)
        for i in range(100000):
            name = "%s-%d" % (base, i)
            k = self.part(name)
            if k in used:
                continue
            if rc.master_of_slot(self.slot(k)) == master_port:
                out.append(name)
                used.add(k)
                if len(out) == count:
                    return out
        raise TestFailure("no %d names %s-N in distinct partitions on the master on port %d "
                          "(%d partitions)" % (count, base, master_port, self.partitions))


# ---- RESP over a socket ----------------------------------------------------

class RespError(Exception):
    """An error reply (-ERR ..., -MOVED ...): its text is str(e)."""


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        else:
            b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise OSError("connection closed by the server")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+",):
            return rest.decode("utf-8", "replace")
        if t == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
        if t in (b"*", b">", b"~"):
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        if t == b"%":
            n = int(rest)
            items = [self.reply() for _ in range(2 * n)]
            return dict(zip(items[0::2], items[1::2]))
        if t == b"_":
            return None
        raise OSError("unexpected RESP reply %r" % line[:80])


def call(port, *args, timeout=5.0 * SCALE, raise_error=True):
    """One command to 127.0.0.1:`port` over a fresh connection (RESP2):
    the parsed reply (str, int, None, nested lists). An error reply raises
    RespError (or is returned, with raise_error=False); no answer raises OSError."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(_encode(args))
        r = _Reader(s).reply()
    if isinstance(r, RespError) and raise_error:
        raise r
    return r


def _info_fields(text):
    out = {}
    for line in (text or "").splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


# ---- ports -----------------------------------------------------------------

def cluster_port():
    """A free loopback port P below the ephemeral range such that the cluster
    bus port P + 10000 is also free and below it, and sockets that keep both
    reserved (see confabtest.reserve_port): (port, [sockets])."""
    lo, _ = _ephemeral_range()
    first = 20000 if lo > 31000 else 1024
    last = lo - 1 - 10000
    check(last > first + 100, "no room below the ephemeral range (%d) for a port and its "
          "cluster bus port (+10000)" % lo)
    for _ in range(500):
        port = random.randint(first, last)
        held = []
        ok = True
        for p in (port, port + 10000):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                s.close()
                ok = False
                break
            held.append(s)
            if listening(p):
                ok = False
                break
        if ok:
            return port, held
        for s in held:
            s.close()
    raise TestFailure("no free loopback port pair P, P+10000 below %d for a cluster node" % lo)


# ---- one redis-server of the cluster ---------------------------------------

class ClusterServer(RedisProcess):
    """One redis-server --cluster-enabled yes on 127.0.0.1:PORT (bus PORT+10000).
    Its first start moves to another port pair when its own is in use
    (redistest.ReservedPort, through RedisProcess); the directory keeps the
    first port's name."""

    def __init__(self, tmp, index, cluster_enabled=True, extra_args=()):
        self._port, self._reservation = cluster_port()
        self.index = index
        self.name = "cluster node %d" % index
        self.dir = os.path.join(tmp, str(self._port))
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "redis.log")
        self.conf_path = os.path.join(tmp, "nodes-%d.conf" % self._port)
        self.cluster_enabled = cluster_enabled
        self.extra_args = list(extra_args)
        self.proc = None
        self.starts = 0

    def argv(self):
        a = [_program(REDIS_SERVER) or REDIS_SERVER,
             "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", self.dir, "--logfile", "",
             # a restarted node syncs at once instead of waiting 5 s for
             # more replicas to share a diskless transfer
             "--repl-diskless-sync-delay", "0",
             # DEBUG SLEEP makes a replica fall behind (RedisCluster.lag_replicas)
             "--enable-debug-command", "local"]
        if self.cluster_enabled:
            a += ["--cluster-enabled", "yes",
                  "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                  "--cluster-config-file", self.conf_path]
        return a + self.extra_args

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def _reserve(self):
        return cluster_port()

    def kill(self, sig=signal.SIGKILL):
        """Send `sig` by PID and wait for the exit (SIGKILL after STOP_TIMEOUT)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        try:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def stop(self):
        return self.kill(signal.SIGTERM)


# ---- the cluster -------------------------------------------------------------

class RedisCluster:
    """A Redis Cluster of `masters` masters with `replicas` replicas each
    (6 processes by default) on free loopback ports, made with
    `redis-cli --cluster create ... --cluster-replicas N --cluster-yes`.

    Every process is registered with confabtest (stopped by PID when the
    script ends, whatever happened, and killed by the suite's watchdog);
    stop() stops them earlier. `extra_args` go to every redis-server (e.g.
    ["--cluster-require-full-coverage", "no"]). The methods block: from a
    coroutine, run the slow ones (start, kill_master + wait_promoted,
    restart, migrate_slot) with `await aio(rc.method, ...)`."""

    def __init__(self, tmp, masters=3, replicas=1, extra_args=(), name="rc"):
        self.tmp = tempfile.mkdtemp(prefix=name + "-", dir=tmp)
        self.masters_wanted = masters
        self.replicas_wanted = replicas
        self.servers = [ClusterServer(self.tmp, i, extra_args=extra_args)
                        for i in range(masters * (1 + replicas))]
        self.started = False
        self.start_error = None
        self.killed = set()        # ports killed with kill_master()/kill() and not restarted
        self.lock = threading.Lock()

    # -- talking to nodes --

    @property
    def ports(self):
        return [s.port for s in self.servers]

    @property
    def by_port(self):
        """{port: server}, read when needed: a port may move at the first start."""
        return {s.port: s for s in self.servers}

    def live_ports(self):
        return [s.port for s in self.servers if s.running()]

    def seeds(self, n=None):
        """host:port of the first `n` (all) nodes, for [redis_cluster] seeds."""
        return ["127.0.0.1:%d" % p for p in self.ports[:n]]

    def call(self, port, *args, **kw):
        """RESP command to the node on `port` (see call())."""
        return call(port, *args, **kw)

    def cli(self, port, *args, timeout=10.0 * SCALE):
        """`redis-cli -h 127.0.0.1 -p PORT ARGS...`: its stdout, stripped
        (raises TestFailure on a non-zero exit or an error reply)."""
        argv = [_program(REDIS_CLI) or REDIS_CLI, "-h", "127.0.0.1", "-p", str(port)]
        argv += [str(a) for a in args]
        p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise TestFailure("`%s` did not finish within %.0fs" % (" ".join(argv), timeout))
        finally:
            self._forget(p)
        out = out.decode("utf-8", "replace").strip()
        check(p.returncode == 0 and not out.startswith("ERR") and not out.startswith("(error)"),
              "`%s` exited %s: %s %s" % (" ".join(argv), p.returncode, out,
                                        err.decode("utf-8", "replace").strip()))
        return out

    @staticmethod
    def _forget(p):
        try:
            _procs.remove(p)
        except ValueError:
            pass

    def info(self, port, section=None):
        return _info_fields(call(port, "INFO", *([section] if section else [])))

    def cluster_info(self, port):
        return _info_fields(call(port, "CLUSTER", "INFO"))

    def node_id(self, port):
        return call(port, "CLUSTER", "MYID")

    def nodes(self, port):
        """CLUSTER NODES seen by `port`: [{id, port, flags, master, slots}]."""
        out = []
        for line in call(port, "CLUSTER", "NODES").splitlines():
            f = line.split()
            if len(f) < 8:
                continue
            addr = f[1].split("@")[0]
            p = int(addr.rsplit(":", 1)[1]) if addr.rsplit(":", 1)[1].isdigit() else 0
            slots = []
            for s in f[8:]:
                if s.startswith("["):
                    continue       # [slot->-id] migrating / [slot-<-id] importing
                a, _, b = s.partition("-")
                slots.append((int(a), int(b or a)))
            out.append({"id": f[0], "port": p, "flags": f[2].split(","), "master": f[3],
                        "link": f[7], "slots": slots})
        return out

    def slot_map(self, port):
        """{(start, end): master port} from CLUSTER SLOTS asked of `port`."""
        m = {}
        for r in call(port, "CLUSTER", "SLOTS"):
            m[(int(r[0]), int(r[1]))] = int(r[2][1])
        return m

    def master_of_slot(self, slot, port=None):
        """The port of the master that owns `slot`, per the node on `port`
        (default: the first live node), or None when the slot is uncovered."""
        ask = [port] if port else self.live_ports()
        last = None
        for p in ask:
            try:
                for (a, b), mp in self.slot_map(p).items():
                    if a <= slot <= b:
                        return mp
                return None
            except (OSError, RespError) as e:
                last = e
        raise TestFailure("no node answers CLUSTER SLOTS (%s)" % last)

    def masters(self):
        """Ports of the masters that own slots, per the first live node, sorted
        by their first slot."""
        m = self.slot_map(self.live_ports()[0])
        seen = []
        for (a, _), p in sorted(m.items()):
            if p not in seen:
                seen.append(p)
        return seen

    def replicas_of(self, master_port):
        """Ports of the replicas connected to `master_port` (its INFO replication)."""
        out = []
        for k, v in self.info(master_port, "replication").items():
            if re.match(r"slave\d+$", k):
                f = dict(x.split("=", 1) for x in v.split(",") if "=" in x)
                if f.get("state") == "online":
                    out.append(int(f["port"]))
        return out

    def roles(self, port):
        """{port: master's port, or "master"} of the nodes `port` knows as
        not failed, per its CLUSTER NODES."""
        ns = self.nodes(port)
        by_id = {n["id"]: n["port"] for n in ns}
        out = {}
        for n in ns:
            if "fail" in n["flags"] or "fail?" in n["flags"] or "handshake" in n["flags"]:
                continue
            out[n["port"]] = "master" if n["master"] == "-" else by_id.get(n["master"], "?")
        return out

    def keyslot_of(self, key, port=None):
        """CLUSTER KEYSLOT asked of a node."""
        return call(port or self.live_ports()[0], "CLUSTER", "KEYSLOT", key)

    # -- start, state, stop --

    def start(self, timeout=CREATE_TIMEOUT):
        """Start the processes, create the cluster and wait until every node
        says cluster_state:ok, knows every node, agrees on the slot map, and
        every replica's link to its master is up. Idempotent."""
        with self.lock:
            if self.start_error:
                raise TestFailure(self.start_error)
            if self.started:
                return self
            t0 = time.monotonic()
            try:
                for s in self.servers:
                    s.start()
                self._create(timeout)
                self.wait_ok(timeout=max(1.0, timeout - (time.monotonic() - t0)))
            except TestFailure as e:
                self.start_error = str(e)
                raise
            self.started = True
            self.create_seconds = time.monotonic() - t0
            return self

    def _create(self, timeout):
        argv = [_program(REDIS_CLI) or REDIS_CLI, "--cluster", "create"]
        argv += ["127.0.0.1:%d" % p for p in self.ports]
        argv += ["--cluster-replicas", str(self.replicas_wanted), "--cluster-yes"]
        p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            raise TestFailure("`%s` did not finish within %.0fs:\n%s" % (
                " ".join(argv), timeout, tail(out.decode("utf-8", "replace"))))
        finally:
            self._forget(p)
        text = out.decode("utf-8", "replace")
        check(p.returncode == 0 and "[OK] All 16384 slots covered" in text,
              "`%s` exited %s:\n%s" % (" ".join(argv), p.returncode, tail(text)))

    def state(self, port):
        """(cluster_state, known nodes, slot map) seen by one node, or None."""
        try:
            ci = self.cluster_info(port)
            return ci.get("cluster_state"), int(ci.get("cluster_known_nodes", 0)), \
                self.slot_map(port)
        except (OSError, RespError, ValueError):
            return None

    def problems(self, expect_nodes=None, need_replicas=True, need_ok=True):
        """What keeps the cluster from being settled (None when settled):
        every live node ok, knowing `expect_nodes` nodes, one slot map
        covering all slots, and (need_replicas) every live replica's link up."""
        live = self.live_ports()
        if not live:
            return "no live node"
        maps = {}
        for p in live:
            st = self.state(p)
            if st is None:
                return "node %d does not answer" % p
            state, known, smap = st
            if need_ok and state != "ok":
                return "node %d says cluster_state:%s" % (p, state)
            if expect_nodes and known != expect_nodes:
                return "node %d knows %d nodes, want %d" % (p, known, expect_nodes)
            maps[p] = smap
        first = maps[live[0]]
        for p, m in maps.items():
            if m != first:
                return "nodes %d and %d disagree on the slot map: %s / %s" % (
                    live[0], p, sorted(first.items()), sorted(m.items()))
        if need_ok:
            covered = sum(b - a + 1 for a, b in first)
            if covered != SLOTS:
                return "the slot map covers %d slots" % covered
        views = {}
        for p in live:
            try:
                views[p] = {q: r for q, r in self.roles(p).items() if q in live}
            except (OSError, RespError):
                return "node %d does not answer CLUSTER NODES" % p
        for p, v in views.items():
            if v != views[live[0]]:
                return "nodes %d and %d disagree on who replicates whom: %s / %s" % (
                    live[0], p, views[live[0]], v)
            if set(v) != set(live):
                return "node %d does not see every live node as up: %s" % (p, sorted(v))
        dead_masters = [mp for mp in first.values() if mp not in live]
        if dead_masters:
            return "the slot map names dead masters %s" % dead_masters
        if need_replicas:
            masters = set(first.values())
            for p in live:
                if p in masters:
                    continue
                try:
                    r = self.info(p, "replication")
                except (OSError, RespError):
                    return "node %d does not answer INFO" % p
                if r.get("role") != "slave":
                    return "node %d is %s, not a replica" % (p, r.get("role"))
                if r.get("master_link_status") != "up":
                    return "replica %d: master_link_status:%s" % (p, r.get("master_link_status"))
                if int(r.get("master_port", 0)) not in masters:
                    return "replica %d replicates %s, not a master of the map" % (
                        p, r.get("master_port"))
        return None

    def wait_ok(self, timeout=CREATE_TIMEOUT, need_replicas=True, what="the cluster"):
        """Wait until problems() is None, at most `timeout` s. Returns the seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.problems(expect_nodes=len(self.servers), need_replicas=need_replicas)
            if last is None:
                return time.monotonic() - t0
            time.sleep(0.1)
        raise TestFailure("%s is not settled within %.0fs: %s\n%s" % (
            what, timeout, last, self.describe()))

    def describe(self):
        lines = []
        for s in self.servers:
            if not s.running():
                lines.append("    | %d: not running (pid %s)" % (s.port, s.pid))
                continue
            try:
                for n in self.nodes(s.port):
                    if "myself" in n["flags"]:
                        lines.append("    | %d: %s %s slots %s state %s" % (
                            s.port, n["id"][:8], ",".join(n["flags"]), n["slots"],
                            self.cluster_info(s.port).get("cluster_state")))
            except (OSError, RespError) as e:
                lines.append("    | %d: %s" % (s.port, e))
        return "\n".join(lines)

    def stop(self):
        """Stop every process by PID (SIGTERM, then SIGKILL)."""
        for s in self.servers:
            s.stop()

    # -- failures --

    def kill(self, port):
        """kill -9 the node on `port` (by PID); returns its exit status."""
        code = self.by_port[port].kill(signal.SIGKILL)
        self.killed.add(port)
        return code

    def kill_master(self, port):
        """kill -9 a master; returns the ports of its replicas (live before the kill)."""
        replicas = self.replicas_of(port)
        check(self.info(port, "replication").get("role") == "master",
              "kill_master(%d): it is not a master" % port)
        self.kill(port)
        return replicas

    def cut_replication(self, master_port):
        """Break the replication links of a master (CLIENT KILL TYPE replica
        on it): until its replicas reconnect (their next replication cron,
        up to a second later) what it stores is on it alone. Returns how
        many links were cut."""
        return call(master_port, "CLIENT", "KILL", "TYPE", "replica")

    def lag_replicas(self, master_port, seconds):
        """Make the replicas of a master fall behind for `seconds`: each is
        frozen (DEBUG SLEEP, in a thread) and the master's replication links
        are cut, so that what the master stores meanwhile is on it alone (a
        frozen replica cannot reconnect and resync). Returns (replica ports,
        links cut, the threads: join them to know the freeze is over)."""
        reps = self.replicas_of(master_port)
        threads = []
        for p in reps:
            t = threading.Thread(target=lambda p=p: call(p, "DEBUG", "SLEEP", seconds,
                                                         timeout=seconds + 10.0 * SCALE,
                                                         raise_error=False), daemon=True)
            t.start()
            threads.append(t)
        time.sleep(0.05)            # the freeze has begun
        n = self.cut_replication(master_port)
        return reps, n, threads

    def wait_promoted(self, slot, timeout=FAILOVER_TIMEOUT, old=None):
        """After a kill: wait until every live node says cluster_state:ok and
        agrees that a live master (not `old`) owns `slot`. Returns (its
        port, seconds waited)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.problems(need_replicas=False)
            if last is None:
                mp = self.master_of_slot(slot)
                if mp is not None and mp != old and self.by_port[mp].running():
                    return mp, time.monotonic() - t0
                last = "slot %d is still owned by %s" % (slot, mp)
            time.sleep(0.1)
        raise TestFailure("no replica promoted for slot %d within %.0fs: %s\n%s" % (
            slot, timeout, last, self.describe()))

    def wait_failed(self, port, timeout=FAILOVER_TIMEOUT):
        """After a kill: wait until every live node flags `port` as failed
        (FAIL, not just PFAIL). Returns the seconds waited."""
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < timeout:
            views = {}
            for p in self.live_ports():
                try:
                    views[p] = [n["flags"] for n in self.nodes(p) if n["port"] == port]
                except (OSError, RespError) as e:
                    views[p] = str(e)
            last = views
            if all(isinstance(v, list) and v and "fail" in v[0] for v in views.values()):
                return time.monotonic() - t0
            time.sleep(0.1)
        raise TestFailure("node %d is not flagged fail everywhere within %.0fs: %s"
                          % (port, timeout, last))

    def restart(self, port, timeout=CREATE_TIMEOUT):
        """Start a killed node again (its nodes-P.conf is kept: it rejoins and
        becomes a replica of the master that took over); wait until the whole
        cluster is settled again (all nodes ok, one map, replicas in sync)."""
        s = self.by_port[port]
        s.start()
        self.killed.discard(port)
        return self.wait_ok(timeout=timeout, what="the cluster after restarting %d" % port)

    # -- slot migration --

    def migrate_slot(self, slot, dst_port, batch=100, timeout=60.0 * SCALE, pause=0.0,
                     on_step=None):
        """Move `slot` to the master on `dst_port` the way redis-cli's reshard
        does, safe while clients write: SETSLOT IMPORTING on the destination,
        MIGRATING on the source, GETKEYSINSLOT + MIGRATE in batches until the
        source holds no key of the slot, then SETSLOT NODE on the
        destination, the source and every other master. `pause` seconds are
        slept after each batch (to keep the slot in migration while traffic
        flows); on_step(name) is called at each step. Returns the number of
        keys moved."""
        src_port = self.master_of_slot(slot)
        check(src_port is not None, "migrate_slot(%d): the slot has no master" % slot)
        check(src_port != dst_port, "migrate_slot(%d): already on %d" % (slot, dst_port))
        src_id, dst_id = self.node_id(src_port), self.node_id(dst_port)
        step = on_step or (lambda name: None)
        call(dst_port, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        call(src_port, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        step("migrating")
        moved = 0
        deadline = time.monotonic() + timeout
        while True:
            check(time.monotonic() < deadline, "migrate_slot(%d): keys still on %d after %.0fs"
                  % (slot, src_port, timeout))
            keys = call(src_port, "CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            r = call(src_port, "MIGRATE", "127.0.0.1", dst_port, "", 0, 5000, "KEYS", *keys,
                     raise_error=False)
            if isinstance(r, RespError):
                raise TestFailure("migrate_slot(%d): MIGRATE of %d keys from %d to %d: %s"
                                  % (slot, len(keys), src_port, dst_port, r))
            moved += len(keys)
            step("batch")
            if pause:
                time.sleep(pause)
        for p in [dst_port, src_port] + [m for m in self.masters() if m not in (dst_port, src_port)]:
            call(p, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        step("moved")
        # every node sees the new owner (gossip reaches the replicas quickly)
        t0 = time.monotonic()
        while True:
            owners = {p: self.master_of_slot(slot, p) for p in self.live_ports()}
            if all(o == dst_port for o in owners.values()):
                break
            check(time.monotonic() - t0 < 10.0 * SCALE,
                  "migrate_slot(%d): nodes still disagree on its owner: %s" % (slot, owners))
            time.sleep(0.05)
        return moved

    # -- pub/sub views --

    def shard_channels(self, port, pattern=None):
        """PUBSUB SHARDCHANNELS [pattern] on one node."""
        return call(port, "PUBSUB", "SHARDCHANNELS", *([pattern] if pattern else []))

    def shardnumsub(self, port, *channels):
        """{channel: subscribers} from PUBSUB SHARDNUMSUB on one node."""
        r = call(port, "PUBSUB", "SHARDNUMSUB", *channels)
        return dict(zip(r[0::2], r[1::2]))

    def classic_channels(self, port):
        return call(port, "PUBSUB", "CHANNELS")


# ---- a plain redis-server (not in cluster mode) -------------------------

class PlainServer(ClusterServer):
    """A redis-server with cluster-enabled no, on a port chosen like the
    cluster's (for the "not a cluster" configuration error)."""

    def __init__(self, tmp):
        d = tempfile.mkdtemp(prefix="plain-", dir=tmp)
        super().__init__(d, 0, cluster_enabled=False)


def free_dead_port():
    """A loopback port nothing listens on, reserved (never listening) so that
    nobody takes it: (port, sockets). A seed that does not answer."""
    return cluster_port()


# ---- confabd nodes on the cluster ------------------------------------------

class ClusterNodes:
    """confabd nodes (ws + redis_cluster) on a RedisCluster, in the manner of
    redistest.Cluster: `guests` admit anonymous clients, `alices` also load
    fx_good_auth (every client is "alice"). Each node gets
    [redis_cluster] seeds (every cluster port; `seeds` overrides), prefix
    (one per script), presence_ttl (3) and `cluster_keys`; `per_node`
    ({name: {key: value}}) overrides keys of one node. The nodes are made
    (and their ports picked) when they start, registered with the suite:
    stopped by PID and checked (exit 0, no sanitizer report) at the end."""

    def __init__(self, suite, rc, guests=(), alices=(), prefix=None, partitions=None,
                 history_size=None, cluster_keys=None, broker_keys=None, ws_keys=None,
                 seeds=None, per_node=None):
        self.suite = suite
        self.rc = rc
        self.redis = rc
        self.prefix = prefix or "cc-%s-%d:" % (suite.name.replace("test_", ""), os.getpid())
        self.partitions = partitions
        self.nodes = {}
        self.start_error = None
        self.specs = []
        self._seeds = seeds
        sec = {"prefix": self.prefix, "presence_ttl": PRESENCE_TTL}
        if partitions is not None:
            sec["partitions"] = partitions
        sec.update(cluster_keys or {})
        self.section = sec
        for name in list(guests) + list(alices):
            plugins = [WS_SO, REDIS_CLUSTER_SO]
            secs = {"redis_cluster": dict(sec)}
            secs["redis_cluster"].update((per_node or {}).get(name, {}))
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

    @property
    def layout(self):
        """The deployment's Layout (partitions: as configured, else 128, the
        design's default)."""
        return Layout(self.prefix, self.partitions or 128)

    def __getitem__(self, name):
        return self.nodes[name]

    def _make_nodes(self):
        check(self.rc is not None or self._seeds is not None,
              "ClusterNodes without a RedisCluster need seeds")
        for name, b, secs in self.specs:
            if name not in self.nodes:
                s = secs["redis_cluster"]
                if "seeds" not in s:
                    s["seeds"] = self._seeds if self._seeds is not None else self.rc.seeds()
                self.nodes[name] = self.suite.broker(name, broker=b, sections=secs)

    def start(self, want_status=200):
        """Start the Redis Cluster (if not yet), then every node, and wait
        for /readyz `want_status` (200; None: any answer) on each."""
        if self.start_error:
            raise TestFailure(self.start_error)
        try:
            check(os.path.exists(REDIS_CLUSTER_SO),
                  "the redis_cluster plugin is not built: no %s" % REDIS_CLUSTER_SO)
            if self.rc is not None:
                self.rc.start()
            self._make_nodes()
            for b in self.nodes.values():
                b.start(want_status=want_status)
        except TestFailure as e:
            self.start_error = str(e)
            raise
        return self


class ClusterSuite(RedisSuite):
    """A RedisSuite (skipped without redis-server) that is also skipped
    (exit 77) when the redis_cluster plugin is not built, without redis-cli
    (which creates the clusters), or when redis-server is older than 7 (no
    sharded pub/sub)."""

    def main(self):
        import shutil
        if _program(REDIS_SERVER) is not None and not os.path.exists(REDIS_CLUSTER_SO):
            shutil.rmtree(self.tmp, ignore_errors=True)
            skip("the redis_cluster plugin is not built (no %s)" % REDIS_CLUSTER_SO)
        if _program(REDIS_SERVER) is not None and _program(REDIS_CLI) is None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            skip("redis-cli not found (%s): apt-get install redis-tools, or set REDIS_CLI; "
                 "it creates the test clusters" % REDIS_CLI)
        if _program(REDIS_SERVER) is not None:
            try:
                v = subprocess.run([_program(REDIS_SERVER), "--version"], capture_output=True,
                                   timeout=10).stdout.decode()
                major = int(re.search(r"v=(\d+)\.", v).group(1))
            except (OSError, subprocess.SubprocessError, AttributeError, ValueError):
                major = 0
            if major < 7:
                shutil.rmtree(self.tmp, ignore_errors=True)
                skip("redis-server is not Redis 7 or later (%r): no sharded pub/sub" % v.strip()
                     if major else "cannot tell redis-server's version")
        super().main()


# ---- what a confabd node holds on the cluster -------------------------------

def local_tcp_ports(pid):
    """(local port, remote port) of the TCP sockets process `pid` has open
    (via /proc). Both, because Linux gives the same ephemeral local port to
    connections to different destinations: a local port alone could match
    another process's link to another Redis."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    try:
        for fd in os.listdir(fd_dir):
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 9 and parts[9] in inodes:
                        ports.add((int(parts[1].rsplit(":", 1)[1], 16),
                                   int(parts[2].rsplit(":", 1)[1], 16)))
        except OSError:
            pass
    return ports


def client_list(port):
    """CLIENT LIST of one node: [{field: value}]."""
    out = []
    for line in call(port, "CLIENT", "LIST").splitlines():
        out.append(dict(x.split("=", 1) for x in line.split() if "=" in x))
    return out


def node_links(rc, pid):
    """{redis port: [CLIENT LIST entries]} of the connections process `pid`
    holds to each live cluster node."""
    mine = local_tcp_ports(pid)
    out = {}
    for p in rc.live_ports():
        try:
            entries = client_list(p)
        except (OSError, RespError):
            continue
        out[p] = [e for e in entries
                  if e.get("addr", "").startswith("127.0.0.1:")
                  and (int(e["addr"].rsplit(":", 1)[1]), p) in mine]
    return out


def node_shard_subscriptions(rc, pid):
    """How many sharded subscriptions (ssub) process `pid` holds, summed over
    every live cluster node, and {port: (links, ssub, sub, psub)}."""
    total = 0
    detail = {}
    for p, entries in node_links(rc, pid).items():
        ss = sum(int(e.get("ssub", 0)) for e in entries)
        detail[p] = (len(entries), ss, sum(int(e.get("sub", 0)) for e in entries),
                     sum(int(e.get("psub", 0)) for e in entries))
        total += ss
    return total, detail


async def collect_rooms(c, counts, acks=(), timeout=60.0 * SCALE):
    """Read frames of client `c` until it has counts[room] message frames
    of each room and a reply for every ref in `acks`. Returns ({room:
    [messages in arrival order]}, {ref: reply}). Other frames are kept in
    the backlog."""
    import json
    want = set(acks)
    replies = {}
    got = {r: [] for r in counts}
    others = []
    deadline = time.monotonic() + timeout

    def short():
        return any(len(got[r]) < n for r, n in counts.items())
    try:
        while short() or want:
            if c.backlog:
                f = c.backlog.pop(0)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure(
                        "%s: after %.0fs it has %s messages (want %s) and waits for %d replies "
                        "(e.g. %s)" % (c.name, timeout, {r: len(m) for r, m in got.items()},
                                       counts, len(want), sorted(want)[:3]))
                try:
                    f = await c._read(left)
                except TestFailure as e:
                    if "no frame within" not in str(e):
                        raise
                    continue
            ref = f.get("ref")
            if ref is not None and ref in want:
                want.discard(ref)
                replies[ref] = f
            elif f.get("type") == "message" and f.get("room") in got:
                got[f["room"]].append(f)
            else:
                others.append(f)
    finally:
        c.backlog[0:0] = others
    return got, replies


# ---- steady traffic (failover and migration tests) ---------------------------

class Traffic:
    """Keeps client `c` sending to `room` (when `send` is true) every
    `interval` s with at most `window` requests unanswered, and records
    everything it receives, with the time (time.monotonic()):

      sent      {ref: (t, i)}           what was sent (body {"s": name, "i": i})
      replies   {ref: (t, frame)}       ack or error of each
      messages  [(t, frame)]            message frames of the room
      others    [(t, frame)]            everything else

    start() runs the reader (and writer) as tasks; stop() stops sending and
    waits (bounded) for the replies still due."""

    def __init__(self, c, room, send=True, interval=0.02, window=8, idem=False):
        self.c = c
        self.room = room
        self.send = send
        self.interval = interval
        self.window = window
        self.idem = idem
        self.sent = {}
        self.replies = {}
        self.messages = []
        self.others = []
        self.running = False
        self.closed = None
        self._tasks = []
        self._i = 0

    def start(self):
        self.running = True
        self._tasks.append(asyncio.ensure_future(self._read()))
        if self.send:
            self._tasks.append(asyncio.ensure_future(self._write()))
        return self

    def inflight(self):
        return len(self.sent) - len(self.replies)

    async def _read(self):
        import json
        import websockets.exceptions
        try:
            while True:
                raw = await self.c.ws.recv()
                t = time.monotonic()
                try:
                    f = json.loads(raw)
                except ValueError:
                    self.others.append((t, {"raw": raw[:200]}))
                    continue
                ref = f.get("ref") if isinstance(f, dict) else None
                if ref is not None and ref in self.sent:
                    self.replies[ref] = (t, f)
                elif f.get("type") == "message" and f.get("room") == self.room:
                    self.messages.append((t, f))
                else:
                    self.others.append((t, f))
        except websockets.exceptions.ConnectionClosed as e:
            self.closed = "closed (code %s %r)" % (self.c.ws.close_code, self.c.ws.close_reason)
        except asyncio.CancelledError:
            pass

    async def _write(self):
        import json
        try:
            while self.running and self.closed is None:
                if self.inflight() < self.window:
                    i = self._i
                    self._i += 1
                    ref = "%s-%d" % (self.c.name, i)
                    req = {"type": "send", "room": self.room, "ref": ref,
                           "body": {"s": self.c.name, "i": i}}
                    if self.idem:
                        req["idem"] = ref
                    self.sent[ref] = (time.monotonic(), i)
                    await self.c.ws.send(json.dumps(req))
                await asyncio.sleep(self.interval)
        except asyncio.CancelledError:
            pass
        except Exception as e:    # a closed connection: recorded by the reader
            self.closed = self.closed or "send failed: %r" % e

    async def stop(self, timeout=15.0 * SCALE):
        """Stop sending; wait until every request has its reply (at most
        `timeout` s); stop reading. Returns the refs left unanswered."""
        self.running = False
        deadline = time.monotonic() + timeout
        while self.inflight() > 0 and time.monotonic() < deadline and self.closed is None:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        return [r for r in self.sent if r not in self.replies]

    def acks(self):
        """[(t_send, t_reply, ack frame)] of the acked sends."""
        out = []
        for ref, (t, f) in self.replies.items():
            if f.get("type") == "ack":
                out.append((self.sent[ref][0], t, f))
        return out

    def errors(self):
        """{code or code/outcome: count} of the error replies."""
        out = {}
        for _, (_, f) in self.replies.items():
            if f.get("type") == "error":
                k = f.get("code", "?") + ("/" + f["outcome"] if "outcome" in f else "")
                out[k] = out.get(k, 0) + 1
        return out


def check_acks_unique(traffics, what=""):
    """No seq acked to two different ids over all `traffics`; returns {seq: id}."""
    by_seq = {}
    for tr in traffics:
        for _, _, a in tr.acks():
            s, i = a.get("seq"), a.get("id")
            check(isinstance(s, int) and isinstance(i, str), "%s: ack without seq/id: %s" % (
                tr.c.name, a))
            check(by_seq.get(s, i) == i, "%sseq %s was acked for two different messages: %s and %s"
                  % (what, s, by_seq.get(s), i))
            by_seq[s] = i
    ids = {}
    for s, i in by_seq.items():
        check(i not in ids, "%sid %s was acked under two seqs: %s and %s" % (what, i, ids.get(i), s))
        ids[i] = s
    return by_seq
