#!/usr/bin/python3
"""The redis backplane behind Redis Sentinel (issue 11): `[redis] sentinels`
and `master_name` instead of host and port; the nodes follow a failover.

A master, two replicas and three sentinels (down-after-milliseconds 2000,
failover-timeout 5000) on loopback, and two confabd nodes a and b with
`sentinels = ...`, `master_name = confab`, `ack_replicas = 1`.

Why two replicas: with ack_replicas = 1 an ack needs a replica in reach;
with a single replica there is none from the promotion until the old
master is back and synced (the sentinels turn a restarted old master into
a replica 8-10 s after it answers), so acks could not resume within 10 s
of the promotion without breaking "no replica in reach means
unavailable". With two, the replica that is not promoted is that replica.

Checked:
  - `sentinels` together with `host` is a configuration error (confabd -t);
  - chat across a and b through the master the sentinels name;
  - 5 rounds: kill -9 the master while three senders (two on a, one on b)
    send back to back; within 10 s of the promotion (the first
    +switch-master) a send made after it is acked on a and on b, and
    presence on a and b lists every member again; a message crosses from
    a to b and from b to a after it; the old master is restarted right
    after the promotion as it was first configured (redis-0 as a master
    with an empty data set, the others as replicas of redis-0's port) and
    the sentinels make it a replica of the new master;
  - no seq is acked twice for different ids (nor an id under two seqs), and
    every acked message is in `history` with its seq, id and body;
  - no data node gets a write from a client while it is not the master:
    MONITOR on every replica (from its start or restart until it is
    promoted) shows no EVAL/EVALSHA/FCALL/SET/PUBLISH/... except from the
    replication link, and INFO errorstats shows no READONLY refusal on any
    data node (a write refused by a replica never shows in MONITOR);
  - a sentinel that stops answering without closing (SIGSTOP) is left
    for the next one within probe_timeout_ms + probe_interval_ms, and a
    failover announced there is followed.

SPDX-License-Identifier: MIT
"""
import asyncio
import itertools
import signal
import json
import time

from confabtest import (WS_SO, Client, SANITIZERS, SCALE, TestFailure, check, note, run_confabd,
                        tail, write_config)
from redistest import REDIS_SO, RedisSuite, readyz, history_all
from sentineltest import CONVERT_TIMEOUT, SentinelCluster, SentinelGroup
from promtext import scrape, value

ROUNDS = 5
RESUME_WITHIN = 10.0 * (2 if SANITIZERS else 1)   # the bound, doubled under the sanitizers
REPLY_TIMEOUT = 20.0 * SCALE                       # any request gets some reply within this
PAUSE = 0.03                                       # between one sender's acked sends
HISTORY_SIZE = 20000

suite = RedisSuite("test_redis_sentinel", watchdog=360)
group = SentinelGroup(suite.tmp, replicas=2)
cluster = SentinelCluster(suite, group, guests=("a", "b"), history_size=HISTORY_SIZE,
                          broker_keys={"rate_limit": 0}, sentinel_keys={"ack_replicas": 1})

# A second group: passwords on the data nodes and on the sentinels, and
# sentinels that report names ("localhost"), not addresses.
named = SentinelGroup(suite.tmp, replicas=2, hostnames=True, password="data-pw",
                      sentinel_password="sentinel-pw")
AUTH_KEYS = {"password": "data-pw", "sentinel_password": "sentinel-pw", "ack_replicas": 1}
named_cluster = SentinelCluster(suite, named, guests=("p",), prefix="ct-named:",
                                sentinel_keys=AUTH_KEYS)
wrong_pw = SentinelCluster(suite, named, guests=("wrongpw",), prefix="ct-named:",
                           sentinel_keys=dict(AUTH_KEYS, sentinel_password="not-it"))
# A node of its own on the first group, started last: it watches the first
# sentinel of the list for failovers.
stall = SentinelCluster(suite, group, guests=("st",), prefix="ct-stall:",
                        sentinel_keys={"ack_replicas": 1})
PROBE_TIMEOUT_MS = 3000     # [redis] probe_timeout_ms's default
PROBE_INTERVAL_MS = 1000    # [redis] probe_interval_ms's default

_rooms = itertools.count(1)


def room(prefix="room"):
    return "%s-%d" % (prefix, next(_rooms))


def dumps(x):
    return json.dumps(x, sort_keys=True)


async def connect(*specs):
    """Clients named NAME on node NODE, for each "NAME@NODE"."""
    cluster.start()
    out = []
    for spec in specs:
        name, node = spec.split("@")
        out.append(await Client.connect(cluster[node].port, name=spec))
    return out


def forget_traffic(c):
    """Drop the room traffic a client has piled up (keeps requests fast)."""
    c.backlog = [f for f in c.backlog if f.get("type") not in ("message", "member")]


# ---- configuration -----------------------------------------------------------

@suite.test
def sentinels_and_host_together_are_a_configuration_error():
    """[redis] with both `sentinels` and `host`: confabd -t exits non-zero
    with a line that names both keys; `sentinels` alone passes -t."""
    d = suite.tmp
    both = write_config(d, {"node_id": "cfg", "plugins": [WS_SO, REDIS_SO]},
                        {"ws": {"listen": "127.0.0.1:1"},
                         "redis": {"host": "127.0.0.1", "port": 6379, "sentinels": group.addrs(),
                                   "master_name": "confab"}}, name="both.ini")
    r = run_confabd(["-t", "-c", both])
    check(not r.timed_out and r.code is not None and r.code > 0,
          "confabd -t with sentinels and host: want a non-zero exit\n%s" % r.describe())
    lines = [l for l in r.stderr.splitlines()
             if "sentinels" in l and "host" in l and "unknown key" not in l]
    check(lines, "confabd -t with sentinels and host: no stderr line names both keys\n%s"
          % r.describe())
    note("refused: %s" % lines[0].strip())
    alone = write_config(d, {"node_id": "cfg", "plugins": [WS_SO, REDIS_SO]},
                         {"ws": {"listen": "127.0.0.1:1"},
                          "redis": {"sentinels": group.addrs(), "master_name": "confab",
                                    "ack_replicas": 1}}, name="alone.ini")
    r = run_confabd(["-t", "-c", alone])
    check(r.code == 0, "confabd -t with sentinels and master_name (no host): want exit 0\n%s"
          % r.describe())
    note("`sentinels` + `master_name` alone pass confabd -t")


# ---- chat --------------------------------------------------------------------

@suite.test
async def nodes_find_the_master_through_the_sentinels_and_chat_across():
    """a and b start with only the sentinels' addresses; a message from a
    reaches b and one from b reaches a; presence lists both; the scripts
    ran on the master (its commandstats), never on a replica."""
    group.start()
    x, y = await connect("x@a", "y@b")
    r = room("chat")
    await x.join(r)
    await y.join(r)
    ack = await x.say(r, "from a")
    m = await y.expect("message", room=r)
    check(m.get("seq") == ack["seq"] and m.get("id") == ack["id"],
          "b got %s for the ack %s" % (dumps(m), dumps(ack)))
    ack = await y.say(r, "from b")
    m = await x.expect("message", room=r)
    check(m.get("seq") == ack["seq"] and m.get("id") == ack["id"],
          "a got %s for the ack %s" % (dumps(m), dumps(ack)))
    users = await x.presence(r)
    check(users == sorted([x.user, y.user]), "presence %r" % users)
    stats = await asyncio.to_thread(group.master().commandstats)
    scripts = sum(v for k, v in stats.items() if k in ("eval", "evalsha", "fcall"))
    check(scripts > 0, "the master (port %d) ran no script: %s" % (group.master_port(), stats))
    writes = group.client_writes()
    check(not writes, "writes sent to a replica: %s" % writes[:5])
    note("chat a <-> b through master %d (%d script calls there), none on a replica"
         % (group.master_port(), scripts))
    deadline = time.monotonic() + 5.0
    while True:
        fams = scrape(cluster["a"].port)
        up = {k: value(fams, "confab_redis_link_up", link=k)
              for k in ("command", "subscribe", "sentinel")}
        if up == {"command": 1, "subscribe": 1, "sentinel": 1} or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    check(up == {"command": 1, "subscribe": 1, "sentinel": 1},
          "/metrics of a: link_up %s, want the command, subscribe and sentinel links up" % up)
    note("/metrics of a: link_up %s" % up)


# ---- failover ----------------------------------------------------------------

class Sender:
    """Sends to the room back to back (a new body each time), one request at
    a time; records (sent, replied, body, reply) with monotonic times."""

    def __init__(self, c, node):
        self.c = c
        self.node = node
        self.records = []
        self.n = 0

    async def run(self, r, stop, tag):
        while not stop.is_set():
            body = "%s/%s/%d" % (self.c.name, tag, self.n)
            self.n += 1
            sent = time.monotonic()
            reply = await self.c.request({"type": "send", "room": r, "body": body},
                                         timeout=REPLY_TIMEOUT)
            self.records.append((sent, time.monotonic(), body, reply))
            forget_traffic(self.c)
            ok = reply.get("type") == "ack"
            check(ok or (reply.get("type") == "error" and reply.get("code") == "unavailable"),
                  "%s: send -> %s (want an ack or `unavailable`)" % (self.c.name, dumps(reply)))
            if ok:
                check(reply.get("room") == r and isinstance(reply.get("seq"), int)
                      and isinstance(reply.get("id"), str),
                      "%s: ack without room/seq/id: %s" % (self.c.name, dumps(reply)))
            await asyncio.sleep(PAUSE if ok else 0.1)

    def acks(self):
        return [(body, rep) for _, _, body, rep in self.records if rep.get("type") == "ack"]


class Listener:
    """Reads everything a client receives: {message id: seq}."""

    def __init__(self, c):
        self.c = c
        self.ids = {}
        self.task = None

    async def _run(self):
        while True:
            try:
                f = await self.c._read(1.0)
            except Exception as e:     # noqa: BLE001 - a quiet second is not an error
                if "no frame within" in str(e):
                    continue
                raise
            if f.get("type") == "message":
                self.ids[f.get("id")] = f.get("seq")

    def start(self):
        self.task = asyncio.create_task(self._run())

    async def wait_for(self, msg_id, timeout):
        deadline = time.monotonic() + timeout
        while msg_id not in self.ids:
            if self.task.done():
                self.task.result()
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


async def presence_ok(c, r, want, timeout):
    """presence on c's node equals `want` (errors during a failover are
    answers too: not yet)."""
    forget_traffic(c)
    r = await c.request({"type": "presence", "room": r}, timeout=timeout)
    return r.get("type") == "presence" and r.get("users") == want, r


def check_acks(senders, history, where):
    """No seq acked for two ids, no id under two seqs, every ack in history
    with its seq, id and body. Returns the number of acks."""
    by_seq = {}
    by_id = {}
    n = 0
    for s in senders:
        for body, a in s.acks():
            n += 1
            by_seq.setdefault(a["seq"], set()).add(a["id"])
            by_id.setdefault(a["id"], set()).add(a["seq"])
            h = history.get(a["seq"])
            check(h is not None, "%s: %s's acked message seq %d id %s (%r) is not in history"
                  % (where, s.c.name, a["seq"], a["id"], body))
            check(h.get("id") == a["id"] and h.get("body") == body,
                  "%s: history has %s under seq %d; %s's ack said id %s, body %r"
                  % (where, dumps(h), a["seq"], s.c.name, a["id"], body))
    twice = {k: sorted(v) for k, v in by_seq.items() if len(v) > 1}
    check(not twice, "%s: seqs acked for different ids: %s" % (where, dict(list(twice.items())[:5])))
    twice = {k: sorted(v) for k, v in by_id.items() if len(v) > 1}
    check(not twice, "%s: ids acked under different seqs: %s" % (where, dict(list(twice.items())[:5])))
    return n


@suite.test
async def five_failovers_under_traffic_lose_no_acked_message_and_resume_within_10s():
    """5 rounds of kill -9 of the master under traffic from three senders:
    acks resume on a and b and presence is right within 10 s of the
    promotion; no seq acked twice; every ack in history; no client write
    on any data node while it is not the master."""
    group.start()
    s1, s2, s3, la, lb, wa, wb = await connect("s1@a", "s2@b", "s3@a", "la@a", "lb@b",
                                               "wa@a", "wb@b")
    r = room("failover")
    everyone = [s1, s2, s3, la, lb, wa, wb]
    for c in everyone:
        await c.join(r)
    want = sorted(c.user for c in everyone)
    senders = [Sender(s1, "a"), Sender(s2, "b"), Sender(s3, "a")]
    listeners = {"a": Listener(la), "b": Listener(lb)}
    for li in listeners.values():
        li.start()
    watchers = {"a": wa, "b": wb}
    timings = []
    tasks = []
    try:
        await failover_rounds(r, want, senders, listeners, watchers, timings, tasks)
    finally:
        for t in tasks + [li.task for li in listeners.values()]:
            t.cancel()
        await asyncio.gather(*tasks, *[li.task for li in listeners.values()],
                             return_exceptions=True)


async def failover_rounds(r, want, senders, listeners, watchers, timings, tasks):
    wa, wb = watchers["a"], watchers["b"]
    for rnd in range(1, ROUNDS + 1):
        await group.wait_healthy()
        stop = asyncio.Event()
        tasks[:] = [asyncio.create_task(s.run(r, stop, "r%d" % rnd)) for s in senders]
        t0 = time.monotonic()
        await asyncio.sleep(1.0)
        for node in ("a", "b"):
            check(any(rec[0] >= t0 and rec[3].get("type") == "ack"
                      for s in senders if s.node == node for rec in s.records),
                  "round %d: no ack on node %s in the second before the kill" % (rnd, node))

        old, t_kill = await asyncio.to_thread(group.kill_master)
        sw = await group.wait_switch(old.port, t_kill)
        t_promo = sw["first"]
        await asyncio.to_thread(group.restart, old)
        t_restart = time.monotonic()

        deadline = t_promo + RESUME_WITHIN
        resumed = {}
        present = {}
        last_presence = {}
        while len(resumed) < 2 or len(present) < 2:
            for t in tasks:
                if t.done():
                    t.result()       # a sender failed: raise its failure
            for s in senders:
                if s.node in resumed:
                    continue
                for sent, replied, _, rep in s.records:
                    if sent > t_promo and rep.get("type") == "ack":
                        resumed[s.node] = replied - t_promo
                        break
            for node, w in watchers.items():
                if node in present:
                    continue
                ok, rep = await presence_ok(w, r, want, max(1.0, deadline - time.monotonic()) + 2.0)
                last_presence[node] = rep
                if ok:
                    present[node] = time.monotonic() - t_promo
            if len(resumed) == 2 and len(present) == 2:
                break
            if time.monotonic() > deadline:
                errors = {s.c.name: [rec[3].get("code") for rec in s.records if rec[0] > t_promo][-5:]
                          for s in senders}
                raise TestFailure(
                    "round %d: %.0fs after the promotion (kill of %s, port %d -> %d): acks resumed "
                    "on %s, presence right on %s (want both a and b). Replies since: %s; last "
                    "presence: %s" % (rnd, RESUME_WITHIN, old.name, old.port, sw["port"],
                                      sorted(resumed), sorted(present), errors,
                                      dumps(last_presence)[:600]))
            await asyncio.sleep(0.1)
        late = {k: round(v, 2) for k, v in list(resumed.items()) + [("presence " + n, t) for n, t
                                                                  in present.items()]
                if v > RESUME_WITHIN}
        check(not late, "round %d: later than %.0fs after the promotion (seconds): %s"
              % (rnd, RESUME_WITHIN, late))

        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), REPLY_TIMEOUT + 5)

        for src, dst in (("a", "b"), ("b", "a")):
            forget_traffic(watchers[src])
            ack = await watchers[src].say(r, "probe %d %s->%s" % (rnd, src, dst))
            check(await listeners[dst].wait_for(ack["id"], 5.0 * SCALE),
                  "round %d: the probe %s from %s did not reach the listener on %s"
                  % (rnd, ack["id"], src, dst))

        forget_traffic(wa)
        msgs, _ = await history_all(wa, r, page=1000)
        history = {m["seq"]: m for m in msgs}
        n_acks = check_acks(senders, history, "round %d" % rnd)

        await group.wait_replica(old, timeout=CONVERT_TIMEOUT)
        convert = time.monotonic() - t_restart
        writes = group.client_writes()
        check(not writes, "round %d: writes from a client on a node that was not the master: %s"
              % (rnd, writes[:5]))
        refused = await asyncio.to_thread(group.readonly_errors)
        check(not refused, "round %d: writes refused with READONLY (sent to a replica): %s"
              % (rnd, refused))
        timings.append((sw["first"] - t_kill, resumed["a"], resumed["b"],
                        max(present.values()), convert))
        unavailable = sum(1 for s in senders for rec in s.records
                          if rec[0] > t_kill - 1 and rec[3].get("type") == "error")
        note("round %d: kill -9 %s (port %d); +switch-master to %d %.1fs later (all sentinels "
             "+%.2fs); acks resumed %.1fs (a) / %.1fs (b) after it, presence right after %.1fs; "
             "%d `unavailable` around it; old master a replica %.1fs after its restart; "
             "%d acks so far, all in history" % (
                 rnd, old.name, old.port, sw["port"], sw["first"] - t_kill, sw["all"] - sw["first"],
                 resumed["a"], resumed["b"], max(present.values()), unavailable, convert, n_acks))

    forget_traffic(wb)
    msgs, _ = await history_all(wb, r, page=1000)
    n = check_acks(senders, {m["seq"]: m for m in msgs}, "history read on b")
    check(not group.monitor_errors(), "MONITOR connections failed: %s" % group.monitor_errors())
    worst = [max(t[i] for t in timings) for i in range(5)]
    note("%d rounds, %d acks, all in history on a and b; worst: switch %.1fs after the kill, "
         "acks %.1fs / %.1fs and presence %.1fs after the switch, restarted master a replica "
         "after %.1fs" % (ROUNDS, n, *worst))


@suite.test
async def passwords_and_sentinels_that_report_names():
    """Data nodes with requirepass, sentinels with requirepass and
    announce-hostnames (get-master-addr-by-name answers "localhost"): node p
    with password and sentinel_password chats; after a kill -9 of the
    master it acks again within 10 s of the promotion (it resolves the new
    name); a node with a wrong sentinel_password says so and answers
    /readyz 503."""
    named.start()
    host, _ = await asyncio.to_thread(named.master_addr)
    check(host == "localhost", "the sentinels report %r, not a name" % host)
    named_cluster.start()
    x = await Client.connect(named_cluster["p"].port, name="x@p")
    r = room("named")
    await x.join(r)
    first = await x.say(r, "before")
    old, t_kill = await asyncio.to_thread(named.kill_master)
    sw = await named.wait_switch(old.port, t_kill)
    deadline = sw["first"] + RESUME_WITHIN
    while True:
        rep = await x.request({"type": "send", "room": r, "body": "after"}, timeout=REPLY_TIMEOUT)
        if rep.get("type") == "ack":
            break
        check(rep.get("code") == "unavailable", "send after the failover -> %s" % dumps(rep))
        check(time.monotonic() < deadline, "no ack within %.0fs of the promotion to localhost:%d "
              "(last reply %s)" % (RESUME_WITHIN, sw["port"], dumps(rep)))
        await asyncio.sleep(0.1)
    took = time.monotonic() - sw["first"]
    h = await x.request({"type": "history", "room": r})
    ids = [m.get("id") for m in h.get("messages", [])]
    check(first["id"] in ids and rep["id"] in ids, "history after the failover: %s" % dumps(h)[:500])
    note("password + sentinel_password, master reported as localhost: acked again %.1fs after "
         "+switch-master to localhost:%d" % (took, sw["port"]))

    wrong_pw.start_nodes()
    node = wrong_pw["wrongpw"]
    deadline = time.monotonic() + 10.0 * SCALE
    while True:
        lines = [l for l in node.stderr().splitlines()
                 if "sentinel" in l.lower() and ("wrongpass" in l.lower() or "password" in l.lower())]
        status = await readyz(node)
        if lines and status == 503:
            break
        check(node.running(), "wrongpw exited\n%s" % tail(node.stderr()))
        check(time.monotonic() < deadline, "wrongpw: /readyz %s; no line about the sentinel's "
              "password\n%s" % (status, tail(node.stderr())))
        await asyncio.sleep(0.1)
    note("wrong sentinel_password: /readyz 503, %s" % lines[0].strip()[:200])


@suite.test
async def a_stalled_sentinel_is_left_for_the_next_one():
    """The sentinel node st watches for failovers (the first of the list)
    is stopped (SIGSTOP: its connections stay open, nothing answers): within
    probe_timeout_ms + probe_interval_ms st logs that it lost it (no
    answer to PING) and watches on the second; a SENTINEL FAILOVER asked
    of the second (the old master stays up, so only the watch can tell st)
    then reaches st as +switch-master, and a send is acked again."""
    await group.wait_healthy()
    stall.start()
    node = stall["st"]
    x = await Client.connect(node.port, name="x@st")
    r = room("stall")
    await x.join(r)
    await x.say(r, "before")
    first, second = group.sentinels[0], group.sentinels[1]
    old_port = (await asyncio.to_thread(group.master_addr, second))[1]
    time.sleep(2 * PROBE_INTERVAL_MS / 1000)   # a few PINGs answered first
    start = len(node.stderr())
    first.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        lost = "lost sentinel 127.0.0.1:%d (no answer to PING within %d ms): watching for " \
               "failovers on 127.0.0.1:%d instead" % (first.port, PROBE_TIMEOUT_MS, second.port)
        node.log_since(start, lost, timeout=(PROBE_TIMEOUT_MS + PROBE_INTERVAL_MS) / 1000 * SCALE
                       + 2.0, after="since %s was stopped" % first.name)
        note("%.1fs after SIGSTOP of %s: %s" % (time.monotonic() - t0, first.name, lost))
        time.sleep(0.5)   # subscribed on the second
        start = len(node.stderr())
        check(second.command("SENTINEL", "FAILOVER", group.master_name) == "OK",
              "SENTINEL FAILOVER refused")
        moved = "the sentinels moved master '%s' from 127.0.0.1:%d to" % (group.master_name,
                                                                          old_port)
        log = node.log_since(start, moved, timeout=20.0 * SCALE, after="since SENTINEL FAILOVER")
        note(next(l for l in log.splitlines() if moved in l).strip())
        deadline = time.monotonic() + RESUME_WITHIN
        while True:
            rep = await x.request({"type": "send", "room": r, "body": "after"},
                                  timeout=REPLY_TIMEOUT)
            if rep.get("type") == "ack":
                break
            check(rep.get("code") == "unavailable", "send after the failover -> %s" % dumps(rep))
            check(time.monotonic() < deadline, "no ack within %.0fs of +switch-master (last "
                  "reply %s)" % (RESUME_WITHIN, dumps(rep)))
            await asyncio.sleep(0.1)
    finally:
        first.proc.send_signal(signal.SIGCONT)


if __name__ == "__main__":
    suite.main()
