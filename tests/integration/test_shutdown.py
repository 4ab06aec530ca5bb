#!/usr/bin/python3
"""SIGTERM and SIGINT shut confabd down cleanly: every client gets a
WebSocket close 1001, the daemon exits 0, /healthz stops answering.

SPDX-License-Identifier: MIT
"""
import asyncio
import signal

from confabtest import (Suite, Client, STOP_TIMEOUT, check, note, http_get, listening)


suite = Suite("test_shutdown", watchdog=150)


async def shut_down_with(sig, name):
    node = suite.broker(name, broker={"node_id": name})
    port = node.start().port
    cs = [await Client.connect(port, name="C%d" % i) for i in range(3)]
    await cs[0].join("lobby")
    await cs[1].join("lobby")
    await cs[1].join("side")
    await cs[2].join("side")
    await cs[0].say("lobby", "bye soon")
    note("3 clients in rooms lobby and side; sending %s to pid %d" % (sig.name, node.pid))
    node.send_signal(sig)
    try:
        await asyncio.wait_for(asyncio.gather(*(c.ws.wait_closed() for c in cs)), STOP_TIMEOUT)
    except asyncio.TimeoutError:
        pass
    codes = [c.ws.close_code for c in cs]
    note("close codes: %r" % codes)
    code = await node.wait_async()
    check(codes == [1001, 1001, 1001], "close codes after %s: %r, want 1001 each" % (sig.name, codes))
    node.check_clean_exit(sig.name)
    note("confabd exited %s" % code)
    try:
        status, _, _ = http_get(port, "/healthz", timeout=2)
        answered = "answered %d" % status
    except OSError:
        answered = None
    check(answered is None, "/healthz %s after exit" % answered)
    check(not listening(port), "port %d still accepts connections" % port)


@suite.test
async def sigterm_closes_every_client_with_1001_and_exits_0():
    """SIGTERM with 3 clients: close 1001 to each, exit 0, /healthz gone."""
    await shut_down_with(signal.SIGTERM, "term")


@suite.test
async def sigint_does_the_same():
    """SIGINT with 3 clients: close 1001 to each, exit 0, /healthz gone."""
    await shut_down_with(signal.SIGINT, "int")


if __name__ == "__main__":
    suite.main()
