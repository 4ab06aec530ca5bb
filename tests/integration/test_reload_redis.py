#!/usr/bin/python3
"""Reloading broker.ini (issue 12), the redis backplane's part: every key of
[redis] is read again and checked, and none applies while the node runs.

One node on a real redis-server that asks for a password; two clients chat
through it. Checked:
  - [redis] port changed (and probe_interval_ms written out at its default)
    by SIGHUP: one warning, naming port with the new and the old value; the
    reload goes through; the node keeps its Redis, even when its links are
    killed and it connects again; the clients go on chatting;
  - a bad value (presence_ttl = soon) by SIGHUP: exactly one error line,
    the one `confabd -t -c FILE` prints for that file, then "reload
    refused"; a [broker] change in the same file (max_rooms_per_session)
    does not apply;
  - a changed password: one warning that names the key and neither
    password; the node reconnects with the running one;
  - tls switched on: a CA file that is no certificate refuses the reload
    (confabd -t's line), a good one is logged as needing a restart.
test_reload_redis_cluster.py does the same for [redis_cluster].

SPDX-License-Identifier: MIT
"""
import asyncio
import os
import shutil
import socket

from confabtest import check, note
from redistest import (RECOVER_TIMEOUT, Cluster, RedisServer, RedisSuite, _setting,
                       wait_health)
import reloadtest
from reloadtest import (ERROR_LINE, chat, chatting, refused_whole, reload_clean, restarts, sighup,
                        t_error)

suite = RedisSuite("test_reload_redis", watchdog=240)

OPENSSL = _setting("OPENSSL", "openssl")   # as tlstest.py finds it
PASSWORD = "running-pw-5d1e"     # Redis's requirepass, and the node's password
redis = RedisServer(suite.tmp)
cluster = Cluster(suite, guests=("rl",), redis=redis, redis_keys={"password": PASSWORD},
                  broker_keys={"max_rooms_per_session": 2})


def node():
    return cluster["rl"]


def rewrite(redis_keys=None, broker_keys=None):
    reloadtest.rewrite(cluster, "rl", "redis", redis_keys, broker_keys)


def start():
    if not redis.running():
        redis.start()
        redis.cli("CONFIG", "SET", "requirepass", PASSWORD)
    cluster.start()


def kill_links():
    """Closes every connection the node has to Redis (the test's own
    survives), so that it must connect again with what it runs."""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5.0) as s:
        s.sendall(b"AUTH %s\r\nCLIENT KILL TYPE normal\r\nCLIENT KILL TYPE pubsub\r\n"
                  % PASSWORD.encode())
        got = b""
        while got.count(b"\r\n") < 3:
            chunk = s.recv(256)
            check(chunk, "Redis closed the connection after %r" % got)
            got += chunk
    replies = got.decode().split("\r\n")[:3]
    check(replies[0] == "+OK" and all(r.startswith(":") for r in replies[1:]),
          "AUTH and CLIENT KILL answered %r" % replies)
    killed = sum(int(r[1:]) for r in replies[1:])
    check(killed >= 2, "CLIENT KILL closed %d connections: the node had not both links" % killed)
    note("CLIENT KILL closed %d connections of the node" % killed)


async def reconnects_with_what_it_runs(a, b, room, what):
    """The node's links killed: it connects again (to the Redis, with the
    password, it started with) and the clients chat as before."""
    since = len(node().stderr())
    kill_links()
    log = await asyncio.get_running_loop().run_in_executor(
        None, node().log_since, since, "Redis is back", RECOVER_TIMEOUT)
    check("to Redis at 127.0.0.1:%d:" % redis.port in log,
          "the node lost its links to another Redis than 127.0.0.1:%d:\n%s" % (redis.port, log))
    await wait_health([node()], 200, RECOVER_TIMEOUT, "after CLIENT KILL (%s)" % what)
    await chat(a, b, room, "after the links came back")


@suite.test
async def a_changed_port_is_logged_as_needing_a_restart_and_the_node_keeps_its_redis():
    """port -> another, probe_interval_ms = 1000 (its default) written out:
    one warning `port changed to 'NEW': needs a restart; keeping 'OLD'`,
    none for probe_interval_ms; reloaded; /readyz 200; the clients chat,
    also after the node's links to Redis are killed."""
    start()
    a, b = await chatting(node(), "port")
    other = redis.port + 1 if redis.port < 65535 else redis.port - 1
    rewrite({"port": other, "probe_interval_ms": 1000})
    log = sighup(node(), "reloaded ")
    warned = restarts(log, "redis")
    check(len(warned) == 1, "want one needs-a-restart line, got %d:\n%s" % (len(warned), log))
    want = "[redis] port changed to '%d': needs a restart; keeping '%d'" % (other, redis.port)
    check(want in warned[0], "the warning is %r, want %r" % (warned[0], want))
    check(not ERROR_LINE.search(log), "the reload logged an error:\n%s" % log)
    await wait_health([node()], 200, RECOVER_TIMEOUT, "after the reload")
    await chat(a, b, "port", "after the reload")
    await reconnects_with_what_it_runs(a, b, "port", "port changed")
    reload_clean(cluster, "rl", "redis", "after the port test")


@suite.test
async def a_bad_value_refuses_the_reload_with_confabd_t_s_line():
    """presence_ttl = soon, and max_rooms_per_session 2 -> 1 beside it:
    exactly one error line, the one `confabd -t` prints for the file, then
    "reload refused"; a session may still join a second room; the clients
    chat."""
    start()
    await refused_whole(cluster, "rl", "redis", "presence_ttl", "soon")


@suite.test
async def a_changed_password_is_logged_without_either_password():
    """password -> another: one warning `password changed: needs a restart`;
    neither password anywhere in the node's log; the node connects again
    with the running password."""
    start()
    a, b = await chatting(node(), "pw")
    new = "new-pw-c4a9"
    rewrite({"password": new})
    log = sighup(node(), "reloaded ")
    warned = restarts(log, "redis")
    check(len(warned) == 1 and "[redis] password changed: needs a restart" in warned[0],
          "want one warning for password, got:\n%s" % log)
    await reconnects_with_what_it_runs(a, b, "pw", "password changed")
    whole = node().stderr()
    for pw in (PASSWORD, new):
        check(pw not in whole, "the node's log shows a password:\n%s"
              % "\n".join(l for l in whole.splitlines() if pw in l))
    reload_clean(cluster, "rl", "redis", "after the password test")


@suite.test
async def tls_switched_on_is_checked_then_logged_as_needing_a_restart():
    """tls = yes with a tls_ca_file that is no certificate: refused with
    confabd -t's line; with the test CA: reloaded, two warnings (tls,
    tls_ca_file), the node still plain and serving. The certificate
    context the reload built to check the file is freed (no leak under
    the sanitizers)."""
    start()
    a, b = await chatting(node(), "tls")
    junk = os.path.join(suite.tmp, "not-a-ca.crt")
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    rewrite({"tls": "yes", "tls_ca_file": junk})
    t_line = t_error(node())
    check("[redis] tls_ca_file: " in t_line, "confabd -t said %r" % t_line)
    log = sighup(node(), "reload refused")
    check(t_line in log and len(ERROR_LINE.findall(log)) == 1,
          "the refused reload's lines are not confabd -t's %r:\n%s" % (t_line, log))
    if shutil.which(OPENSSL) is None:
        note("no %s: the reload with a good CA file is not tried" % OPENSSL)
    else:
        from tlstest import Certificates
        ca = Certificates(suite.tmp).make().crt("ca1")
        rewrite({"tls": "yes", "tls_ca_file": ca})
        warned = restarts(sighup(node(), "reloaded "), "redis")
        check(len(warned) == 2 and "[redis] tls changed to 'yes': needs a restart; keeping 'no'"
              in warned[0] and "[redis] tls_ca_file changed to '%s'" % ca in warned[1],
              "want the warnings for tls and tls_ca_file, got:\n%s" % "\n".join(warned))
    await chat(a, b, "tls", "after the reloads")
    reload_clean(cluster, "rl", "redis", "after the TLS test")


if __name__ == "__main__":
    suite.main()
