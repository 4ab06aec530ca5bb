#!/usr/bin/python3
"""SIGTERM drains a node (docs/configuration.md, "Draining"): /readyz turns
503 and new WebSockets are refused at once while /healthz stays 200; after
drain_grace the sessions are closed with 1001 in batches spread evenly over
drain_window; then the node exits 0. A second SIGTERM, or SIGINT, stops at
once. One node, the embedded backplane: the drain through a load balancer
is test_drain.py's.

SPDX-License-Identifier: MIT
"""
import asyncio
import signal
import time

import websockets
import websockets.exceptions

from confabtest import (Suite, Client, SCALE, STOP_TIMEOUT, check, note, http_get)


suite = Suite("test_drain_spread", watchdog=150)

GRACE = 1      # drain_grace, seconds
WINDOW = 3     # drain_window, seconds
CLIENTS = 60


async def status_of(port, path):
    def get():
        try:
            return http_get(port, path, timeout=1.0)[0]
        except OSError:
            return None
    return await asyncio.get_running_loop().run_in_executor(None, get)


async def refused_status(port):
    """The HTTP status a new WebSocket handshake gets, or None if accepted."""
    try:
        ws = await websockets.connect("ws://127.0.0.1:%d/ws" % port, subprotocols=["confab.v1"],
                                      open_timeout=5)
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    await ws.close()
    return None


async def closed_at(c):
    """The monotonic time the server closed `c`."""
    await c.ws.wait_closed()
    return time.monotonic()


@suite.test
async def sigterm_refuses_new_clients_then_closes_sessions_spread_over_the_window():
    """60 clients, drain_grace 1 s, drain_window 3 s: at once /readyz 503,
    /healthz 200 and a new handshake 503; no close before the grace; every
    close is 1001, at most about a third of them in each third of the
    window; exit 0 once the window is over."""
    node = suite.broker("spread", broker={"drain_grace": GRACE, "drain_window": WINDOW})
    port = node.start().port
    cs = [await Client.connect(port, name="c%d" % i) for i in range(CLIENTS)]
    waits = [asyncio.ensure_future(closed_at(c)) for c in cs]
    t0 = time.monotonic()
    node.send_signal(signal.SIGTERM)

    ready = None
    while time.monotonic() < t0 + 1.0:
        ready = await status_of(port, "/readyz")
        if ready == 503:
            break
        await asyncio.sleep(0.02)
    took = time.monotonic() - t0
    check(ready == 503, "/readyz answered %s 1 s after SIGTERM (want 503)" % ready)
    health = await status_of(port, "/healthz")
    check(health == 200, "/healthz answered %s while draining (want 200: it serves)" % health)
    refused = await refused_status(port)
    check(refused == 503, "a new WebSocket while draining: %s (want refused with 503)"
          % ("accepted" if refused is None else refused))
    note("draining: /readyz 503 after %.2fs, /healthz 200, new handshake 503" % took)

    done, _ = await asyncio.wait(waits, timeout=GRACE + WINDOW + 5 * SCALE)
    check(len(done) == CLIENTS, "%d of %d clients closed within %.0fs"
          % (len(done), CLIENTS, GRACE + WINDOW + 5 * SCALE))
    times = sorted(w.result() - t0 for w in waits)
    codes = [c.ws.close_code for c in cs]
    check(all(code == 1001 for code in codes),
          "close codes %r (want 1001 each)" % sorted(set(codes)))
    check(times[0] >= GRACE - 0.05, "the first close came %.2fs after SIGTERM, before the %d s "
          "grace" % (times[0], GRACE))
    check(times[-1] <= GRACE + WINDOW + 0.5 * SCALE,
          "the last close came %.2fs after SIGTERM (window ends at %d s)" % (times[-1], GRACE + WINDOW))
    thirds = [0, 0, 0]
    for t in times:
        thirds[min(2, max(0, int((t - GRACE) * 3 / WINDOW)))] += 1
    limit = CLIENTS // 3 + CLIENTS // 10
    check(max(thirds) <= limit, "closes per third of the window %r: more than %d in one "
          "(a stampede, not a spread)" % (thirds, limit))
    check(min(thirds) > 0, "closes per third of the window %r: one third empty" % thirds)
    note("closes from %.2fs to %.2fs after SIGTERM; per third of the window: %r"
         % (times[0], times[-1], thirds))

    code = await node.wait_async()
    exited = time.monotonic() - t0
    node.check_clean_exit("SIGTERM")
    check(exited >= GRACE + WINDOW - 0.3, "exited %.2fs after SIGTERM, before the window's end"
          % exited)
    note("exit %s %.2fs after SIGTERM" % (code, exited))


async def stop_fast(sig_first, sig_second):
    node = suite.broker("fast%s" % sig_first.name.lower(),
                        broker={"drain_grace": 20, "drain_window": 20})
    port = node.start().port
    cs = [await Client.connect(port, name="c%d" % i) for i in range(5)]
    t0 = time.monotonic()
    node.send_signal(sig_first)
    if sig_second is not None:
        while await status_of(port, "/readyz") != 503 and time.monotonic() < t0 + 2:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        check(all(c.ws.close_code is None for c in cs), "a client closed during the grace")
        node.send_signal(sig_second)
    await asyncio.wait_for(asyncio.gather(*(c.ws.wait_closed() for c in cs)), 3 * SCALE)
    codes = [c.ws.close_code for c in cs]
    check(codes == [1001] * 5, "close codes %r (want 1001 each)" % codes)
    await node.wait_async(timeout=STOP_TIMEOUT)
    node.check_clean_exit(sig_first.name)
    took = time.monotonic() - t0
    check(took < 5 * SCALE, "exited %.1fs after the signal(s), not at once" % took)
    note("every client closed with 1001, exit 0, %.2fs after the first signal" % took)


@suite.test
async def a_second_sigterm_skips_the_wait():
    """drain_grace 20 s: SIGTERM drains (/readyz 503, nobody closed yet);
    a second SIGTERM closes everyone with 1001 and exits 0 at once."""
    await stop_fast(signal.SIGTERM, signal.SIGTERM)


@suite.test
async def sigint_during_a_drain_skips_the_wait():
    """drain_grace 20 s: SIGTERM drains; SIGINT then stops at once."""
    await stop_fast(signal.SIGTERM, signal.SIGINT)


@suite.test
async def sigint_alone_stops_at_once():
    """drain_grace 20 s: SIGINT (a terminal's Ctrl-C) does not drain: every
    client closed with 1001 and exit 0 at once."""
    await stop_fast(signal.SIGINT, None)


if __name__ == "__main__":
    suite.main()
