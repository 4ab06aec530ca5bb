#!/usr/bin/python3
"""The redis backplane (issue 3) keeps presence cluster-wide: `presence`
lists the members on every node, `member` join/leave events cross nodes
(first session in, last session out, counted over the whole cluster), and
the members of a node killed with SIGKILL are gone within presence_ttl + 2 s,
with `leave` events.

One redis-server and five confabd nodes sharing it (presence_ttl = 3):
  a, b, c   anonymous clients (guest-XXXXXXXX, a new user per connection)
  d, e      fx_good_auth admits every client as "alice": one user with
            sessions on two nodes

SPDX-License-Identifier: MIT
"""
import asyncio
import itertools
import signal
import time

from confabtest import Client, SANITIZERS, check, note
from redistest import PRESENCE_TTL, Cluster, RedisSuite

suite = RedisSuite("test_redis_presence", watchdog=240)
cluster = Cluster(suite, guests=("a", "b", "c"), alices=("d", "e"))

# The bound; the sanitizer build gets 2 s more for its slower loop.
GONE_WITHIN = PRESENCE_TTL + 2.0 + (2.0 if SANITIZERS else 0.0)

_rooms = itertools.count(1)


def room(prefix="room"):
    """A room name no other check uses."""
    return "%s-%d" % (prefix, next(_rooms))


async def connect(*specs):
    """Clients named NAME on node NODE, for each "NAME@NODE"."""
    cluster.start()
    out = []
    for spec in specs:
        name, node = spec.split("@")
        out.append(await Client.connect(cluster[node].port, name=spec))
    return out


async def quiet(clients, **fields):
    """None of `clients` gets a member event (with `fields`) for a while."""
    await asyncio.gather(*[c.expect_nothing(type="member", **fields) for c in clients])


@suite.test
async def joined_means_present_and_announced_everywhere():
    """30 times: x joins a room its node a is subscribed to already (a
    resident there), and the moment x has `joined`, presence on a lists x
    and y on b joins: y never hears of x's join (it came first); x hears
    y's."""
    rounds = 30
    for i in range(rounds):
        r = room("settle")
        resident, x, y = await connect("resident%d@a" % i, "x%d@a" % i, "y%d@b" % i)
        await resident.join(r)
        await x.join(r)
        users = await x.presence(r)
        check(sorted(users) == sorted([resident.user, x.user]),
              "x%d: presence right after joined is %r, want the resident and x" % (i, users))
        await y.join(r)
        await x.expect("member", room=r, user=y.user, event="join")
        await y.expect_nothing(0.2, type="member")
        for c in (resident, x, y):
            await c.close()
    note("%d rounds: presence listed the joiner at once, and no join was heard "
         "by someone who joined after it" % rounds)


@suite.test
async def presence_lists_the_members_on_every_node_sorted_once_each():
    """Guests on a, b, c and alice with two sessions on d and one on e join:
    presence asked on any node lists the four users sorted, alice once."""
    ga, gb, gc, d1, d2, e1 = await connect("ga@a", "gb@b", "gc@c", "alice1@d", "alice2@d",
                                           "alice3@e")
    r = room()
    everyone = [gc, d1, ga, e1, gb, d2]
    for c in everyone:
        await c.join(r)
    want = sorted([ga.user, gb.user, gc.user, "alice"])
    for c in everyone:
        users = await c.presence(r)
        check(users == want, "presence asked by %s: %r, want %r (sorted, each user once)"
              % (c.name, users, want))
    note("presence on a, b, c, d and e: %r" % want)


@suite.test
async def member_events_cross_nodes_first_session_in_last_session_out():
    """Joins on one node are announced on the others; alice's second session
    (on another node) joining or leaving announces nothing; her last session
    leaving announces her leave everywhere; a guest closing its connection
    is announced as a leave on the other nodes."""
    ga, gb, gc, d1, e1 = await connect("ga@a", "gb@b", "gc@c", "alice1@d", "alice2@e")
    r = room()
    await ga.join(r)
    await gb.join(r)
    await ga.expect("member", room=r, user=gb.user, event="join")
    note("ga on a saw gb (node b) join")
    await gc.join(r)
    for c in (ga, gb):
        await c.expect("member", room=r, user=gc.user, event="join")
    note("ga and gb saw gc (node c) join")
    await d1.join(r)
    for c in (ga, gb, gc):
        await c.expect("member", room=r, user="alice", event="join")
    note("the guests saw alice (node d) join")
    await quiet([ga, gb, gc, d1])
    note("no other member events (none about oneself, none twice)")

    await e1.join(r)
    await quiet([ga, gb, gc, d1])
    note("alice's second session (node e) joining announced nothing")
    await e1.leave(r)
    await quiet([ga, gb, gc, d1])
    users = await ga.presence(r)
    check("alice" in users, "alice left presence when one of her two sessions (on node e) left: %r"
          % users)
    note("alice's session on e leaving announced nothing; she is still present")

    await d1.leave(r)
    for c in (ga, gb, gc):
        await c.expect("member", room=r, user="alice", event="leave")
    users = await gb.presence(r)
    check(users == sorted([ga.user, gb.user, gc.user]),
          "presence after alice's last session left: %r" % users)
    note("alice's last session leaving (node d) was announced on a, b and c")

    await gb.close()
    for c in (ga, gc):
        await c.expect("member", room=r, user=gb.user, event="leave")
    users = await gc.presence(r)
    check(users == sorted([ga.user, gc.user]), "presence after gb closed its connection: %r" % users)
    await quiet([ga, gc])
    note("gb closing its connection on b was announced on a and c, once")


@suite.test
async def kill_9_of_a_node_empties_its_members_within_presence_ttl_plus_2s_with_leave_events():
    """Nodes c (two guests) and e (alice, who also has a session on d) are
    killed with SIGKILL: within presence_ttl + 2 s of the kill, the members
    left on a, b and d get a leave for each of c's guests and presence no
    longer lists them; alice, still on d, stays and gets no leave."""
    ga, gb, gc1, gc2, d1, e1 = await connect("ga@a", "gb@b", "gc1@c", "gc2@c", "alice1@d",
                                             "alice2@e")
    r = room()
    for c in (ga, gb, gc1, gc2, d1, e1):
        await c.join(r)
    before = sorted([ga.user, gb.user, gc1.user, gc2.user, "alice"])
    for c in (ga, gb, d1):
        check(await c.presence(r) == before, "%s: presence before the kill is not %r" % (c.name, before))
    survivors = (ga, gb, d1)
    victims = (gc1.user, gc2.user)
    for c, joined_later in ((ga, (gb.user, gc1.user, gc2.user, "alice")),
                            (gb, (gc1.user, gc2.user, "alice"))):
        for u in joined_later:
            await c.expect("member", room=r, user=u, event="join")

    killed_at = time.monotonic()
    for n in ("c", "e"):
        code = cluster[n].stop(signal.SIGKILL)
        check(code == -signal.SIGKILL, "node %s: exit status %r after SIGKILL" % (n, code))
    note("killed nodes c and e (pids %s, %s)" % (cluster["c"].pid, cluster["e"].pid))

    deadline = killed_at + GONE_WITHIN
    want = sorted([ga.user, gb.user, "alice"])
    left_at = {}
    for c in survivors:
        for u in victims:
            left = deadline - time.monotonic()
            check(left > 0, "%s: no leave for %s within %.0fs of the kill" % (c.name, u, GONE_WITHIN))
            await c.expect("member", timeout=left, room=r, user=u, event="leave")
            left_at.setdefault(u, time.monotonic() - killed_at)
    note("a, b and d got a leave for both of c's guests, %.1fs and %.1fs after the kill"
         % (left_at[victims[0]], left_at[victims[1]]))
    while True:
        users = await ga.presence(r)
        if users == want:
            break
        check(time.monotonic() < deadline,
              "presence %.0fs after the kill of c and e is %r, want %r (presence_ttl = %d)"
              % (GONE_WITHIN, users, want, PRESENCE_TTL))
        await asyncio.sleep(0.1)
    note("presence is %r %.1fs after the kill (bound %.0fs)"
         % (users, time.monotonic() - killed_at, GONE_WITHIN))
    for c in (gb, d1):
        users = await c.presence(r)
        check(users == want, "%s: presence after the kill is %r, want %r" % (c.name, users, want))
    await quiet(survivors)
    note("alice (still on d) got no leave; no other member event")


if __name__ == "__main__":
    suite.main()
