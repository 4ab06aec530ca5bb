#!/usr/bin/python3
"""The redis_cluster backplane (issue 9) on bad configurations: each gives
one clear error line in the node's log and /readyz 503, without a crash,
and, where only some slots are unserved, the rooms on healthy masters keep
working.

  - seeds that do not answer (two reserved loopback ports, nothing listening)
  - a seed that is a plain redis-server (cluster-enabled no)
  - mismatched `partitions` between two nodes of one deployment (same
    prefix): the second node is refused, the first keeps serving
  - a 3-master cluster without replicas (and cluster-require-full-coverage
    no, so that the healthy masters keep answering) with one master killed:
    its slots are uncovered; the node says so and answers 503 (degraded),
    rooms whose partitions are on the two healthy masters keep working
    (join, send, delivery across nodes, history), rooms on the dead master
    get `unavailable`

The log lines are matched loosely, on the key words of the design's wording.

SPDX-License-Identifier: MIT
"""
import asyncio
import json
import os
import re
import time

from confabtest import Client, SCALE, check, note, tail
from redistest import readyz, wait_health
from clustertest import (PRESENCE_TTL, ClusterNodes, ClusterSuite, PlainServer, RedisCluster,
                         aio, call, free_dead_port)

DETECT = 15.0 * SCALE          # a bad configuration -> 503 and its log line
STEADY = 3.0                   # 503 holds (no flapping to 200) this long

suite = ClusterSuite("test_cluster_config_errors", watchdog=200)

_dead = [free_dead_port() for _ in range(2)]       # (port, reservations), never listening
dead_ports = [p for p, _ in _dead]
dead = ClusterNodes(suite, None, guests=("dead",), seeds=["127.0.0.1:%d" % p for p in dead_ports],
                    prefix="cc-dead-%d:" % os.getpid())

plain = PlainServer(suite.tmp)
notcluster = ClusterNodes(suite, None, guests=("plain",), seeds=["127.0.0.1:%d" % plain.port],
                          prefix="cc-plain-%d:" % os.getpid())

rc3 = RedisCluster(suite.tmp, masters=3, replicas=0,
                   extra_args=["--cluster-require-full-coverage", "no"], name="rc3")
mismatch_prefix = "cc-mm-%d:" % os.getpid()
# rc3 has no replicas: ack_replicas = 0, or no send could be acked
mm = ClusterNodes(suite, rc3, guests=("mm16",), prefix=mismatch_prefix, partitions=16,
                  cluster_keys={"ack_replicas": 0})
mm_bad = ClusterNodes(suite, rc3, guests=("mm32",), prefix=mismatch_prefix, partitions=32,
                      cluster_keys={"ack_replicas": 0})
rc3full = RedisCluster(suite.tmp, masters=3, replicas=0, name="rc3full")   # full coverage required
fullcov = ClusterNodes(suite, rc3full, guests=("f1",), partitions=16,
                       prefix="cc-full-%d:" % os.getpid(), cluster_keys={"ack_replicas": 0})
uncovered = ClusterNodes(suite, rc3, guests=("u1", "u2"), partitions=16,
                         prefix="cc-unc-%d:" % os.getpid(),
                         cluster_keys={"ack_replicas": 0})


def dumps(x):
    return json.dumps(x, sort_keys=True)


LEVEL = re.compile(r"\b(error|warn)\s+\[redis_cluster\]")


def problem_lines(node, match):
    """The warn and error lines of the plugin in `node`'s log that satisfy
    match(line lower-cased)."""
    return [l for l in node.stderr().splitlines() if LEVEL.search(l) and match(l.lower())]


async def wait_503_and_line(node, what, match, steady=STEADY, need_line=True):
    """/readyz of `node` answers 503 (within DETECT s) and keeps answering
    503 for `steady` s, while the node runs; one warn or error line of the
    plugin satisfies match(line lower-cased) (unless need_line is false).
    Returns that line (or None)."""
    t0 = time.monotonic()
    line = None
    while True:
        check(node.running(), "%s: confabd exited (%s) on %s\n%s" % (
            node.name, node.proc.returncode, what, tail(node.stderr())))
        status = await readyz(node)
        lines = problem_lines(node, match) if need_line else ["(not asked for)"]
        if status == 503 and lines:
            line = lines[0]
            break
        check(time.monotonic() - t0 < DETECT,
              "%s: %s: after %.0fs /readyz answers %s and %s\n%s" % (
                  node.name, what, DETECT, status,
                  "the log has the line" if lines else "no log line matches",
                  tail(node.stderr(), 15)))
        await asyncio.sleep(0.1)
    t1 = time.monotonic()
    while time.monotonic() - t1 < steady:
        status = await readyz(node)
        check(status == 503, "%s: %s: /readyz answered %s %.1fs after the first 503"
              % (node.name, what, status, time.monotonic() - t1))
        check(node.running(), "%s: confabd exited on %s" % (node.name, what))
        await asyncio.sleep(0.2)
    return line


def count_lines(node, match):
    return len(problem_lines(node, match))


@suite.test
async def seeds_that_do_not_answer_give_one_clear_line_and_503():
    """Seeds on two loopback ports where nothing listens: the node starts,
    answers /readyz 503, logs a line naming a seed, and does not flood the
    log (at most one such line a second on average) while it retries."""
    dead.start(want_status=None)
    node = dead["dead"]

    def match(l):
        return any("127.0.0.1:%d" % p in l for p in dead_ports) and any(
            w in l for w in ("seed", "reach", "answer"))
    line = await wait_503_and_line(node, "dead seeds", match)
    note("line: %s" % line.strip())
    t0 = time.monotonic()
    n0 = count_lines(node, match)
    await asyncio.sleep(3.0)
    n1 = count_lines(node, match)
    check(n1 - n0 <= 3 + 1, "%d such lines within %.0fs: the retries flood the log\n%s"
          % (n1 - n0, time.monotonic() - t0, tail(node.stderr(), 10)))
    c = await Client.connect(node.port, name="dead-client")
    await c.error({"type": "join", "room": "lobby"}, "unavailable")
    note("503 steady, %d lines in %.0fs of retries, join -> unavailable" % (n1 - n0, 3.0))


@suite.test
async def a_seed_that_is_not_in_cluster_mode_gives_one_clear_line_and_503():
    """A plain redis-server (cluster-enabled no) as the only seed: 503 and a
    line saying it is not in cluster mode."""
    await aio(plain.start)
    notcluster.start(want_status=None)
    node = notcluster["plain"]

    def match(l):
        return ("cluster" in l and any(w in l for w in ("mode", "enabled", "disabled", "support"))
                and "127.0.0.1:%d" % plain.port in l)
    line = await wait_503_and_line(node, "a non-cluster seed", match)
    note("line: %s" % line.strip())


@suite.test
async def mismatched_partitions_between_two_nodes_are_refused():
    """Node mm16 (partitions = 16) serves; node mm32, same prefix but
    partitions = 32, answers 503 with a line naming both values, and writes
    nothing into the deployment (no key naming mm32 under the prefix, and
    mm16 never sees mm32 as a node); mm16 keeps serving (/readyz 200, a
    join and a send work)."""
    mm.start()
    note("the 3-master cluster (no replicas) is settled; mm16 serves")
    c = await Client.connect(mm["mm16"].port, name="mm16-client")
    await c.join("before-refusal")
    mm_bad.start(want_status=None)
    node = mm_bad["mm32"]

    def match(l):
        return "partitions" in l and "32" in l and "16" in l
    line = await wait_503_and_line(node, "partitions = 32 against a record of 16", match)
    note("line: %s" % line.strip())
    await asyncio.sleep(PRESENCE_TTL + 1.0)
    written = []
    for m in rc3.masters():
        cursor = "0"
        while True:
            cursor, keys = call(m, "SCAN", cursor, "MATCH", "*%s*" % mismatch_prefix, "COUNT", 1000)
            written += [(m, k) for k in keys if "mm32" in k]
            if cursor == "0":
                break
    ours = mm.layout
    shared = [(m, k) for m, k in written
              if any(k.startswith(ours.keyprefix(i)) for i in range(ours.partitions))]
    listed = []
    for i in range(ours.partitions):
        owner = rc3.master_of_slot(ours.slot(i))
        t = call(owner, "TYPE", ours.keyprefix(i) + "nodes", raise_error=False)
        if t == "zset":
            members = call(owner, "ZRANGE", ours.keyprefix(i) + "nodes", 0, -1)
        elif t == "set":
            members = call(owner, "SMEMBERS", ours.keyprefix(i) + "nodes")
        else:
            members = []
        if "mm32" in members:
            listed.append(ours.keyprefix(i) + "nodes")
    check(not written, "the refused node mm32 wrote %d keys into the deployment, %d of them "
          "under the tags of the deployment's 16 partitions (%s), and is a member of %s; "
          "e.g. %s" % (len(written), len(shared), [k for _, k in shared][:3], listed[:3],
                       written[:5]))
    seen = [l for l in mm["mm16"].stderr().splitlines() if "mm32" in l]
    check(not seen, "mm16 saw the refused node mm32 as a node of its deployment:\n%s"
          % tail("\n".join(seen), 5))
    note("no key names mm32; mm16's log never mentions it")
    await wait_health([mm["mm16"]], 200, 5.0 * SCALE, "mm16 after mm32 was refused")
    await c.join("still-fine")
    await c.say("still-fine", "hello")
    note("mm16: 200, join and send work")


_uncovered = {}


@suite.test
async def uncovered_slots_give_503_and_rooms_on_healthy_masters_keep_working():
    """A master of the 3-master cluster (no replicas) is killed: its slots
    are uncovered. Nodes u1 and u2 answer 503 (degraded) and keep doing so;
    in rooms whose partitions are on the two live masters, send (delivered
    from u1 to u2), history, and join and send in new rooms work; a room on
    the dead master gets `unavailable`."""
    uncovered.start()
    layout = uncovered.layout
    masters = rc3.masters()
    check(len(masters) == 3, "rc3 has masters %s" % masters)
    rooms = {m: layout.names_on(m, rc3, "unc")[0] for m in masters}
    victim = masters[2]
    x = await Client.connect(uncovered["u1"].port, name="x@u1")
    y = await Client.connect(uncovered["u2"].port, name="y@u2")
    for r in rooms.values():
        await x.join(r)
        await y.join(r)
        await x.say(r, "before")
        await y.expect("message", room=r)
    note("rooms %s on masters %s work" % (list(rooms.values()), masters))

    await aio(rc3.kill, victim)
    _uncovered["victim"] = victim
    waited = await aio(rc3.wait_failed, victim)
    note("master %d killed; flagged fail by the others after %.1fs" % (victim, waited))
    for n in ("u1", "u2"):
        await wait_503_and_line(uncovered[n], "uncovered slots", None, steady=1.0,
                                need_line=False)
    note("u1 and u2 answer 503")

    for m in masters[:2]:
        r = rooms[m]
        ack = await x.say(r, "while degraded")
        msg = await y.expect("message", room=r, id=ack["id"])
        check(msg.get("seq") == ack["seq"], "y got %s" % dumps(msg))
        fresh = layout.names_on(m, rc3, "fresh-%d" % m)[0]
        await y.join(fresh)
        await x.join(fresh)
        ack2 = await y.say(fresh, "new room while degraded")
        await x.expect("message", room=fresh, id=ack2["id"])
        h = await y.request({"type": "history", "room": r, "limit": 5})
        check(h.get("type") == "history" and any(m_.get("id") == ack["id"]
                                                 for m_ in h.get("messages", [])),
              "history of %s while degraded: %s" % (r, dumps(h)[:300]))
        note("room %s (master %d): send, delivery, history and a new room %s work" % (
            r, m, fresh))
    r = rooms[victim]
    t0 = time.monotonic()
    e = await x.request({"type": "send", "room": r, "body": "to the dead shard"},
                        timeout=15.0 * SCALE)
    check(e.get("type") == "error" and e.get("code") == "unavailable",
          "send to %s (its master %d is dead) -> %s, want unavailable" % (r, victim, dumps(e)))
    note("room %s on the dead master: unavailable after %.1fs" % (r, time.monotonic() - t0))
    for n in ("u1", "u2"):
        status = await readyz(uncovered[n])
        check(status == 503, "%s: /readyz %s while slots are uncovered" % (n, status))


@suite.test
async def uncovered_slots_are_named_in_a_log_line():
    """Once the cluster flags the killed master as failed, u1 and u2 each
    log a line saying that slots are uncovered (the design: how many slots
    and which partitions), not only that a link to that master broke."""
    check("victim" in _uncovered, "the previous check did not kill a master")

    def match(l):
        return "slot" in l and any(w in l for w in ("uncover", "not covered", "no master",
                                                     "without a master", "no live master",
                                                     "unowned", "unassigned"))
    for n in ("u1", "u2"):
        line = await wait_503_and_line(uncovered[n], "uncovered slots", match, steady=0.5)
        note("%s: %s" % (n, line.strip()))


@suite.test
async def a_master_down_with_full_coverage_required_gives_503_and_a_line():
    """The same with Redis's default cluster-require-full-coverage yes: the
    whole cluster refuses commands (cluster_state:fail), so no room can
    work: the node answers 503 with a line saying the cluster is down, and
    a send in a room on a live master gets `unavailable` (not a hang)."""
    fullcov.start()
    layout = fullcov.layout
    masters = rc3full.masters()
    x = await Client.connect(fullcov["f1"].port, name="x@f1")
    r = layout.names_on(masters[0], rc3full, "full")[0]
    await x.join(r)
    await x.say(r, "before")
    await aio(rc3full.kill, masters[2])
    await aio(rc3full.wait_failed, masters[2])

    def match(l):
        return "cluster" in l and ("cluster_state:fail" in l or "down" in l)
    line = await wait_503_and_line(fullcov["f1"], "a master down, full coverage required",
                                   match, steady=1.0)
    note("line: %s" % line.strip())
    t0 = time.monotonic()
    e = await x.request({"type": "send", "room": r, "body": "cluster down"}, timeout=15.0 * SCALE)
    check(e.get("type") == "error" and e.get("code") == "unavailable",
          "send to %s (on live master %d) while the cluster is down -> %s, want unavailable"
          % (r, masters[0], dumps(e)))
    note("send in a room on a live master: unavailable after %.1fs" % (time.monotonic() - t0))


if __name__ == "__main__":
    suite.main()
