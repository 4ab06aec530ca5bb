#!/usr/bin/python3
"""`welcome` means the user can be reached from every node (the redis
backplane): a direct message sent from another node the moment a client
is welcomed is acked and delivered, to every session of the user.

The race it guards: a node sends the user's `online` to Redis and the
`welcome` to the client together; a direct from another node can reach
Redis before that `online` does. The nodes a and d reach Redis through a
proxy each (one per test: a proxy lives on its test's event loop) that
forwards their commands DELAY late, so that window is wide and every
round would hit it; b and e use Redis directly.
  a, b  anonymous clients (a new guest user per connection)
  d, e  fx_good_auth admits every client as "alice"

SPDX-License-Identifier: MIT
"""
import asyncio
import json

from confabtest import Client, check, note
from redistest import Cluster, DelayProxy, RedisSuite

DELAY = 0.05
ROUNDS = 100

suite = RedisSuite("test_redis_welcome", watchdog=240)
direct = Cluster(suite, guests=("b",), alices=("e",))
proxies = {name: DelayProxy(direct.redis, DELAY) for name in ("a", "d")}
slow = {name: Cluster(suite, redis=direct.redis, prefix=direct.prefix,
                      redis_keys={"port": proxies[name].port},
                      **({"guests": (name,)} if name == "a" else {"alices": (name,)}))
        for name in ("a", "d")}


async def start(name):
    """Redis, b and e, and node `name` behind its proxy: its port."""
    await proxies[name].start()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, direct.start)
    await loop.run_in_executor(None, slow[name].start)
    return slow[name][name].port


@suite.test
async def a_direct_sent_from_another_node_the_moment_of_welcome_is_acked_and_delivered():
    """ROUNDS times, a guest connects on a (whose commands reach Redis
    DELAY late) and, the moment its welcome arrives, a guest on b sends it
    a direct message: acked, not `offline`, and delivered."""
    port = await start("a")
    try:
        sender = await Client.connect(direct["b"].port, name="sender@b")
        for i in range(ROUNDS):
            target = await Client.connect(port, name="target%d@a" % i)
            ack = await sender.request({"type": "direct", "to": target.user, "body": {"n": i}})
            check(ack.get("type") == "ack", "round %d: a direct right after %s's welcome -> %s"
                  % (i, target.user, json.dumps(ack)))
            d = await target.expect("direct")
            check(d.get("body") == {"n": i}, "round %d: got %s" % (i, json.dumps(d)))
            await target.close()
    finally:
        await proxies["a"].close()
    note("%d of %d direct messages sent right after welcome were acked and delivered"
         % (ROUNDS, ROUNDS))


@suite.test
async def a_direct_right_after_a_new_sessions_welcome_reaches_every_session_of_the_user():
    """alice has a session on e; ROUNDS times a new session of hers opens
    on d (commands DELAY late) and, the moment its welcome arrives, a guest
    on b sends alice a direct: acked, and received by both sessions."""
    port = await start("d")
    try:
        sender = await Client.connect(direct["b"].port, name="sender@b")
        old = await Client.connect(direct["e"].port, name="alice@e")
        for i in range(ROUNDS):
            new = await Client.connect(port, name="alice%d@d" % i)
            check(new.user == "alice", "the new session is %r, want alice" % new.user)
            ack = await sender.request({"type": "direct", "to": "alice", "body": {"n": i}})
            check(ack.get("type") == "ack", "round %d: direct -> %s" % (i, json.dumps(ack)))
            for c in (old, new):
                d = await c.expect("direct")
                check(d.get("body") == {"n": i},
                      "round %d: %s got %s" % (i, c.name, json.dumps(d)))
            await new.close()
    finally:
        await proxies["d"].close()
    note("%d of %d direct messages sent right after a new session's welcome reached both "
         "of alice's sessions" % (ROUNDS, ROUNDS))


if __name__ == "__main__":
    suite.main()
