#!/usr/bin/python3
"""[redis] host may be a DNS name (issue 9): the node resolves it without
blocking its loop, again at every reconnect.

  - host = localhost: two nodes come up (/readyz 200) and chat across
    each other, as with 127.0.0.1;
  - host = localhost with Redis down at start: 503, then 200 once Redis
    starts (each attempt resolves the name again);
  - host = no-such-host.invalid (RFC 2606: never resolves): the node starts
    and serves with /readyz 503, logs one line naming the host and the
    resolver's answer however often it retries, and answers `unavailable`;
  - host = 'not a host!': refused by `confabd -t`, with the key named.

SPDX-License-Identifier: MIT
"""
import asyncio
import os

from confabtest import (Client, WS_SO, check, note, run_confabd, write_config)
from redistest import (DETECT_TIMEOUT, RECOVER_TIMEOUT, REDIS_SO, Cluster, RedisServer,
                       RedisSuite, readyz, log_count, wait_health)

BAD_HOST = "no-such-host.invalid"

suite = RedisSuite("test_redis_dns")
named = Cluster(suite, guests=("a", "b"), redis_keys={"host": "localhost"})
late = Cluster(suite, guests=("l",), prefix="ct-dns-late-%d:" % os.getpid(),
               redis=RedisServer(suite.tmp, "redis-late"), redis_keys={"host": "localhost"})
unresolved = Cluster(suite, guests=("u",), prefix="ct-dns-%d:" % os.getpid(), redis=named.redis,
                     redis_keys={"host": BAD_HOST, "port": 6379, "reconnect_max_ms": 200})


@suite.test
async def host_localhost_is_resolved_and_two_nodes_chat():
    """Nodes a and b with host = localhost reach /readyz 200, and a
    message sent on a reaches b (and b's on a) with the same seq."""
    named.start()
    await wait_health(list(named.nodes.values()), 200, RECOVER_TIMEOUT, "host = localhost")
    ca = await Client.connect(named["a"].port, name="ca@a")
    cb = await Client.connect(named["b"].port, name="cb@b")
    for c in (ca, cb):
        await c.join("dns-room")
    for sender, receiver in ((ca, cb), (cb, ca)):
        ack = await sender.say("dns-room", "via localhost from %s" % sender.name)
        m = await receiver.expect("message", room="dns-room", id=ack["id"])
        check(m.get("seq") == ack["seq"], "%s got seq %r for %s, the ack says %r"
              % (receiver.name, m.get("seq"), ack["id"], ack["seq"]))
    note("a and b, host = localhost: 200, and messages cross both ways")


@suite.test
async def host_localhost_with_redis_down_turns_200_when_redis_starts():
    """Node l (host = localhost) starts while its Redis is down: /readyz
    503; once redis-server starts, 200 within the recovery bound."""
    late.start_nodes(want_status=None)
    status = await readyz(late["l"])
    check(status == 503, "node l with Redis down: /readyz %s, want 503" % status)
    await asyncio.get_running_loop().run_in_executor(None, late.redis.start)
    took = await wait_health([late["l"]], 200, RECOVER_TIMEOUT, "Redis started after node l")
    note("l: 503 while Redis was down, 200 %.2fs after it started" % took["l"])


@suite.test
async def a_name_that_does_not_resolve_gives_one_line_and_503():
    """Node u with host = no-such-host.invalid (reconnect backoff up to
    200 ms, so it retries many times): it serves, /readyz says 503 for
    3 s, a join gets `unavailable`, and its log has exactly one warning
    naming the host and saying it cannot be resolved."""
    unresolved.start_nodes(want_status=None)
    u = unresolved["u"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DETECT_TIMEOUT
    while log_count(u, "cannot resolve " + BAD_HOST) == 0 and loop.time() < deadline:
        await asyncio.sleep(0.1)
    check(log_count(u, "cannot resolve " + BAD_HOST) > 0,
          "no 'cannot resolve' line within %.0fs; stderr:\n%s" % (DETECT_TIMEOUT, u.stderr()))
    for _ in range(6):
        status = await readyz(u)
        check(status == 503, "node u, host %s: /readyz %s, want 503" % (BAD_HOST, status))
        await asyncio.sleep(0.5)
    c = await Client.connect(u.port, name="c@u")
    await c.error({"type": "join", "room": "dns-room"}, "unavailable")
    await c.ping()
    lines = [l for l in u.stderr().splitlines() if BAD_HOST in l and " warn " in l]
    check(len(lines) == 1, "%d warnings name %s, want 1 (retries are not logged "
          "again):\n%s" % (len(lines), BAD_HOST, "\n".join(lines[:5])))
    note("u: 503 for 3 s, join -> unavailable, one line: %s" % lines[0].strip())


@suite.test
def a_host_that_is_no_name_is_refused_by_dash_t():
    """confabd -t with host = 'not a host!' exits non-zero with a line that
    names [redis] host."""
    d = os.path.join(suite.tmp, "bad-host")
    os.makedirs(d)
    cfg = write_config(d, {"node_id": "bad", "plugins": [WS_SO, REDIS_SO]},
                       {"ws": {"listen": "127.0.0.1:0"},
                        "redis": {"host": "not a host!"}})
    r = run_confabd(["-t", "-c", cfg])
    check(r.code != 0, "confabd -t accepted host = 'not a host!':\n" + r.describe())
    check(any("host" in l and "not a host!" in l for l in r.stderr.splitlines()),
          "no line names the bad host:\n" + r.describe())
    note("refused: %s" % next(l for l in r.stderr.splitlines() if "not a host!" in l).strip())


if __name__ == "__main__":
    suite.main()
