#!/usr/bin/python3
"""Reloading broker.ini while serving (issue 12), the ws transport's part:
  - [broker] max_connections_per_address changed by SIGHUP changes who is
    admitted from then on, and drops no open connection;
  - [ws] listen changed is logged as needing a restart and the node keeps
    serving on the port it has;
  - a [ws] setting init would refuse (send_queue_max below what a message
    needs) refuses the reload with init's error line.
The TLS certificate's reload is in test_tls_listener.py.

SPDX-License-Identifier: MIT
"""
import websockets

from confabtest import Client, Suite, check, http_get, note, reserve_port

suite = Suite("test_reload_ws", watchdog=180)


async def refused_with(port, status, name):
    try:
        c = await Client.connect(port, name=name)
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == status, "%s: refused with %d, want %d" % (name, e.status_code, status))
        return
    await c.close()
    check(False, "%s was admitted; want %d" % (name, status))


node = suite.broker("ws-reload", broker={"max_connections_per_address": 2})


@suite.test
async def max_connections_per_address_changes_who_is_admitted_and_drops_nobody():
    """2 -> 3 by SIGHUP: a third client is admitted; 3 -> 1: the three stay
    and chat, a fourth gets 429."""
    port = node.start().port
    a = await Client.connect(port, name="a")
    b = await Client.connect(port, name="b")
    await refused_with(port, 429, "c-before")

    node.rewrite({"max_connections_per_address": 3})
    node.reload("reloaded ")
    c = await Client.connect(port, name="c")

    node.rewrite({"max_connections_per_address": 1})
    node.reload("reloaded ")
    await refused_with(port, 429, "d")
    for x in (a, b, c):
        await x.join("kept")
    await a.say("kept", "after two reloads")
    for x in (b, c):
        await x.expect("message", room="kept", body="after two reloads")
    note("sessions %s, %s, %s stayed" % (a.session, b.session, c.session))
    for x in (a, b, c):
        await x.close()


@suite.test
def a_changed_listen_needs_a_restart_and_the_old_port_keeps_serving():
    """[ws] listen = another port by SIGHUP: one warning, "needs a restart",
    and /healthz still answers on the port the node has."""
    port = node.start().port
    other, held = reserve_port()
    held.close()
    node.rewrite({"max_connections_per_address": 2},
                 {"ws": {"listen": "127.0.0.1:%d" % other}})
    log = node.reload("reloaded ")
    want = "warn  [ws] listen changed to '127.0.0.1:%d': needs a restart; keeping '127.0.0.1:0'" % other
    check(log.count(want) == 1, "want one line %r; the log has:\n%s" % (want, log))
    status, _, _ = http_get(port, "/healthz")
    check(status == 200, "GET /healthz on the old port after the reload: %d" % status)


@suite.test
async def a_bad_ws_setting_refuses_the_reload_with_inits_error():
    """send_queue_max = 1000 (less than a message needs): the reload is
    refused with the error init gives, and limits stay as they were."""
    port = node.start().port
    node.rewrite({"max_connections_per_address": 5}, {"ws": {"send_queue_max": 1000}})
    log = node.reload("reload refused")
    check("[ws] send_queue_max: 1000 is less than [broker] max_message_bytes" in log,
          "no send_queue_max error line:\n%s" % log)
    # max_connections_per_address is still 2 (from the last good reload)
    a = await Client.connect(port, name="a2")
    b = await Client.connect(port, name="b2")
    await refused_with(port, 429, "c2")
    await a.close()
    await b.close()


if __name__ == "__main__":
    suite.main()
