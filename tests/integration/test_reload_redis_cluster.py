#!/usr/bin/python3
"""Reloading broker.ini (issue 12), the redis_cluster backplane's part: as
for [redis] (test_reload_redis.py), every key of [redis_cluster] is read
again and checked, and none applies while the node runs.

One node on a 3-master Redis Cluster (no replicas: ack_replicas = 0); two
clients chat through it. Checked:
  - seeds (fewer of them), refresh_interval_ms and password changed, and
    ack_timeout_ms written out at its default, by SIGHUP: one warning for
    each of the three, seeds and refresh_interval_ms with the new and the
    old value, password with neither; the reload goes through; /readyz 200
    and the clients chat;
  - a bad value (partitions = lots) by SIGHUP: exactly one error line, the
    one `confabd -t -c FILE` prints, then "reload refused"; a [broker]
    change in the same file (max_rooms_per_session) does not apply.

SPDX-License-Identifier: MIT
"""
from confabtest import check
from redistest import RECOVER_TIMEOUT, wait_health
from clustertest import ClusterNodes, ClusterSuite, RedisCluster
import reloadtest
from reloadtest import ERROR_LINE, chat, chatting, refused_whole, reload_clean, restarts, sighup

suite = ClusterSuite("test_reload_redis_cluster", watchdog=240)

rc = RedisCluster(suite.tmp, masters=3, replicas=0, name="rcr")
nodes = ClusterNodes(suite, rc, guests=("cr",), partitions=16, cluster_keys={"ack_replicas": 0},
                     broker_keys={"max_rooms_per_session": 2})


def node():
    return nodes["cr"]


def rewrite(keys=None, broker_keys=None):
    reloadtest.rewrite(nodes, "cr", "redis_cluster", keys, broker_keys)


@suite.test
async def changed_settings_are_logged_as_needing_a_restart_and_the_node_keeps_serving():
    """seeds -> the first only, refresh_interval_ms 5000 -> 7000, a password
    set, ack_timeout_ms = 1000 (its default) written out: three warnings,
    none for ack_timeout_ms; reloaded; /readyz 200; the clients chat."""
    nodes.start()
    a, b = await chatting(node(), "changed")
    secret = "cluster-pw-81b0"
    rewrite({"seeds": rc.seeds(1), "refresh_interval_ms": 7000, "password": secret,
             "ack_timeout_ms": 1000})
    log = sighup(node(), "reloaded ")
    warned = restarts(log, "redis_cluster")
    check(len(warned) == 3, "want 3 needs-a-restart lines, got %d:\n%s" % (len(warned), log))
    for want in ("[redis_cluster] seeds changed to '%s': needs a restart; keeping '%s'"
                 % (rc.seeds(1)[0], ", ".join(rc.seeds())),
                 "[redis_cluster] refresh_interval_ms changed to '7000': needs a restart; "
                 "keeping '5000'",
                 "[redis_cluster] password changed: needs a restart"):
        check(any(want in l for l in warned), "no line %r among:\n%s" % (want, "\n".join(warned)))
    check(secret not in node().stderr(), "the node's log shows the password")
    check(not ERROR_LINE.search(log), "the reload logged an error:\n%s" % log)
    await wait_health([node()], 200, RECOVER_TIMEOUT, "after the reload")
    await chat(a, b, "changed", "after the reload")
    reload_clean(nodes, "cr", "redis_cluster", "after the changed settings")


@suite.test
async def a_bad_value_refuses_the_reload_with_confabd_t_s_line():
    """partitions = lots, and max_rooms_per_session 2 -> 1 beside it:
    exactly one error line, confabd -t's, then "reload refused"; a session
    may still join a second room; the clients chat."""
    nodes.start()
    await refused_whole(nodes, "cr", "redis_cluster", "partitions", "lots")


if __name__ == "__main__":
    suite.main()
