#!/usr/bin/python3
"""Hash tables resist flooding (issue 14, item 8), through a real confabd:
one client joins 20 000 rooms whose names all have one and the same
FNV-1a hash (the tables' unkeyed hash before issue 14), another client
on another node joins 20 000 random names of the same length (then a
second client each, the lesser of the two counts), and the colliding
names cost the node no more CPU time than the random ones, within 2x. A join puts the name in three tables (the session's rooms,
the node's rooms, the embedded backplane's rooms), so with the old hash
this was 3 x 20 000^2 / 2 string comparisons: seconds of CPU.

The names are built as Joux's multicollision: for each of 15 positions
a pair of 4-character blocks that take FNV-1a's state to the same value
(a birthday search), and any choice of one block of each pair gives the
same hash: 2^15 names of 60 bytes, all valid room names.

tests/unit/test_dict.c measures the table alone; this measures what a
client can make a node do.

SPDX-License-Identifier: MIT
"""
import asyncio
import os
import random
import time

from confabtest import Client, RECV_TIMEOUT, Suite, check, note

N = 20000
BLOCKS, BLOCK = 15, 4
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"

suite = Suite("test_room_name_flooding", watchdog=180)
keys = {"rate_limit": 0, "max_rooms_per_session": 0}
colliding = suite.broker("colliding", broker=keys)
spread = suite.broker("spread", broker=keys)


def fnv1a(h, data):
    for c in data:
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


def colliding_names(rng):
    pairs = []
    h = 2166136261
    for _ in range(BLOCKS):
        seen = {}
        while True:
            b = "".join(rng.choice(ALPHABET) for _ in range(BLOCK)).encode()
            s = fnv1a(h, b)
            other = seen.get(s)
            if other is not None and other != b:
                pairs.append((other, b))
                h = s
                break
            seen[s] = b
    names = []
    for i in range(N):
        names.append(b"".join(pairs[k][(i >> k) & 1] for k in range(BLOCKS)).decode())
    return names


def random_names(rng):
    return ["".join(rng.choice(ALPHABET) for _ in range(BLOCKS * BLOCK)) for _ in range(N)]


def cpu_seconds(pid):
    """utime + stime of the process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def join_all(node, names, what):
    """Join every name from one client, 500 at a time; the node's CPU
    seconds it took."""
    c = await Client.connect(node.port, name=what)
    t0 = cpu_seconds(node.pid)
    start = time.monotonic()
    for i in range(0, len(names), 500):
        batch = names[i:i + 500]
        for n in batch:
            await c.send({"type": "join", "room": n})
        for _ in batch:
            f = await c.recv(timeout=RECV_TIMEOUT * 4)
            check(f.get("type") == "joined", "%s: join -> %s" % (what, f))
    await c.ping()
    cpu = cpu_seconds(node.pid) - t0
    note("%s: %d joins in %.1fs, %.2f CPU seconds of confabd"
         % (what, len(names), time.monotonic() - start, cpu))
    return cpu


@suite.test
async def joining_20000_rooms_with_one_fnv1a_hash_costs_no_more_than_random_names():
    """20 000 colliding names against 20 000 random ones: within 2x."""
    rng = random.Random(14)
    t = time.monotonic()
    bad = colliding_names(rng)
    good = random_names(rng)
    check(len({fnv1a(2166136261, n.encode()) for n in bad}) == 1, "the names do not collide")
    check(len(set(bad)) == N, "the colliding names are not all different")
    note("names built in %.1fs" % (time.monotonic() - t))
    colliding.start()
    spread.start()
    # two clients on each node, alternately; the lesser of the two is the
    # one the shared machine disturbed less (the second finds the rooms
    # made, and still looks each name up in every table)
    cpu_good, cpu_bad = [], []
    for round in (1, 2):
        cpu_good.append(await join_all(spread, good, "random names %d" % round))
        cpu_bad.append(await join_all(colliding, bad, "colliding names %d" % round))
    cpu_good, cpu_bad = min(cpu_good), min(cpu_bad)
    # 1/100 s ticks: allow one tick of rounding on a short run
    check(cpu_bad <= 2 * cpu_good + 0.02,
          "colliding names cost %.2f CPU seconds, random ones %.2f" % (cpu_bad, cpu_good))


if __name__ == "__main__":
    suite.main()
