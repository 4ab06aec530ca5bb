#!/usr/bin/python3
"""GET /metrics: Prometheus text format 0.0.4, read by the strict parser
of promtext.py; the counters after known traffic; refused handshakes by
status; metrics = off and metrics_listen; a plugin's own series through the
ABI 1.7 slot (tests/fixtures/fx_metrics.c), and a 1.6 plugin beside it.
Every broker is stopped at the end, and its clean exit (status 0, no
sanitizer report) is a check of its own.

SPDX-License-Identifier: MIT
"""
import asyncio
import re
import socket

import tempfile
import time

from confabtest import (Suite, Client, TestFailure, check, note, http_get, fixture, reserve_port,
                        run_confabd, write_config, WS_SO, RECV_TIMEOUT, VERSION, ABI)
from promtext import scrape, value

suite = Suite("test_metrics", watchdog=240)


def answers(port, path, want, what):
    status, _, _ = http_get(port, path)
    check(status == want, "GET %s %s -> %d, want %d" % (path, what, status, want))


def scrape_cut(port, times=5):
    """GET /metrics and hang up after the first bytes: the broker drops the
    rest of the body (the sanitizer build's exit checks nothing leaks)."""
    for _ in range(times):
        s = socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            check(s.recv(64).startswith(b"HTTP/1.1 200"), "no 200 before the cut")
        finally:
            s.close()


def handshake_status(port, origin=None):
    """A WebSocket upgrade by hand: the HTTP status it is answered with."""
    s = socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT)
    try:
        req = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: confab.v1\r\n")
        if origin:
            req += "Origin: %s\r\n" % origin
        s.sendall((req + "\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(1024)
            if not chunk:
                break
            head += chunk
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
        check(m, "no status line in %r" % head[:80])
        return int(m.group(1))
    finally:
        s.close()


# ---- the brokers ------------------------------------------------------------

main = suite.broker("metrics", broker={"allowed_origins": "https://ok.example"})
plugged = suite.broker("plugged", broker={"plugins": [WS_SO, fixture("fx_metrics"),
                                                      fixture("fx_metrics_v1_6")],
                                          "allow_anonymous": False},
                       sections={"fx_metrics": {"series": 20}})


@suite.test
def exposition_parses_strictly_with_every_core_family():
    """GET /metrics -> 200, Content-Type 0.0.4, a text the strict parser
    takes whole, with the core's and the transport's families and
    confab_build_info{version,abi="MAJOR.MINOR"} 1."""
    fams = scrape(main.start().port)
    for name in ("confab_sessions", "confab_sessions_total", "confab_rooms",
                 "confab_messages_received_total", "confab_messages_delivered_total",
                 "confab_acks_sent_total", "confab_errors_sent_total",
                 "confab_session_closes_total", "confab_backplane_up",
                 "confab_backplane_reconnects_total", "confab_backplane_publish_seconds",
                 "confab_send_ack_seconds", "confab_connections", "confab_connections_total",
                 "confab_bytes_received_total", "confab_bytes_sent_total",
                 "confab_send_queue_bytes", "confab_handshakes_refused_total"):
        check(name in fams, "family %s missing" % name)
    check(value(fams, "confab_build_info", version=VERSION, abi="%d.%d" % ABI) == 1, "build info")
    check(value(fams, "confab_backplane_up") == 1, "backplane not up")
    note("%d families" % len(fams))


@suite.test
async def counters_add_up_after_known_traffic():
    """3 members in a room, one sends 5 messages: 5 acks, 5 publishes and
    send->ack observations, 10 deliveries (everyone but the sender), 3
    sessions; 2 sends to a room not joined (not_member) and 3 frames that
    do not parse (bad_request) are counted as such."""
    port = main.start().port
    before = scrape(port)
    members = [await Client.connect(port, name="m%d" % i) for i in range(3)]
    for c in members:
        await c.join("lobby")
    for i in range(5):
        await members[0].say("lobby", "hello %d" % i)
    for c in members[1:]:
        for i in range(5):
            await c.expect("message", body="hello %d" % i)
    for _ in range(2):
        await members[1].error({"type": "send", "room": "elsewhere", "body": "x"}, "not_member")
    for _ in range(3):
        await members[2].send_raw("{not json")
        await members[2].expect("error", code="bad_request")
    after = scrape(port)

    def grew(family, sample=None, **labels):
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    check(grew("confab_messages_received_total", type="send") == 7, "sends received")
    check(grew("confab_acks_sent_total") == 5, "acks %d" % grew("confab_acks_sent_total"))
    check(grew("confab_messages_delivered_total", kind="message") == 2 * 5,
          "deliveries %d, want members-1 x messages = 10"
          % grew("confab_messages_delivered_total", kind="message"))
    check(grew("confab_messages_delivered_total", kind="member_join") == 0 + 1 + 2,
          "member_join deliveries")
    check(grew("confab_messages_received_total", type="join") == 3, "joins")
    check(grew("confab_messages_received_total", type="invalid") == 3, "invalid frames")
    check(grew("confab_errors_sent_total", code="not_member") == 2, "not_member errors")
    check(grew("confab_errors_sent_total", code="bad_request") == 3, "bad_request errors")
    for code in ("forbidden", "too_large", "rate_limited", "offline", "unavailable", "internal"):
        check(grew("confab_errors_sent_total", code=code) == 0, "%s errors" % code)
    check(grew("confab_send_ack_seconds", "confab_send_ack_seconds_count") == 5, "send->ack")
    check(grew("confab_backplane_publish_seconds", "confab_backplane_publish_seconds_count") == 5,
          "publish round trips")
    check(value(after, "confab_sessions") == 3, "sessions %d" % value(after, "confab_sessions"))
    check(grew("confab_sessions_total") == 3, "sessions total")
    check(value(after, "confab_rooms") == 1, "rooms %d" % value(after, "confab_rooms"))
    check(grew("confab_connections_total") >= 3, "connections")
    check(grew("confab_bytes_received_total") > 0 and grew("confab_bytes_sent_total") > 0, "bytes")
    for c in members:
        await c.close()
    deadline = asyncio.get_running_loop().time() + RECV_TIMEOUT
    while value(scrape(port), "confab_sessions") != 0:
        check(asyncio.get_running_loop().time() < deadline, "sessions still open after close")
        await asyncio.sleep(0.05)
    check(value(scrape(port), "confab_rooms") == 0, "rooms left after everyone left")


@suite.test
def handshakes_refused_are_counted_by_status():
    """Origin https://evil.example -> 403 twice: status="403" grows by 2; an
    allowed origin is upgraded (101) and not counted."""
    port = main.start().port
    before = value(scrape(port), "confab_handshakes_refused_total", status="403")
    check(handshake_status(port, origin="https://evil.example") == 403, "evil origin admitted")
    check(handshake_status(port, origin="https://evil.example") == 403, "evil origin admitted")
    check(handshake_status(port, origin="https://ok.example") == 101, "good origin refused")
    after = value(scrape(port), "confab_handshakes_refused_total", status="403")
    check(after - before == 2, "403s counted %d, want 2" % (after - before))


@suite.test
def a_plugins_series_appear_and_update_and_a_1_6_plugin_loads_beside_it():
    """fx_metrics (ABI 1.7) registers its series, which show at 0; every
    handshake it is asked about updates them; its 20 bulk gauges show; auth
    results count per plugin; allow_anonymous = false makes it a 401, counted;
    fx_metrics_v1_6 (built as 1.6, no slot) loads and is asked too."""
    port = plugged.start().port
    fams = scrape(port)
    check(value(fams, "confab_fx_auth_calls_total", outcome="ignored") == 0, "calls at start")
    check(value(fams, "confab_fx_check_seconds", "confab_fx_check_seconds_count") == 0, "histogram")
    check(fams["confab_fx_auth_calls_total"]["help"] ==
          'fx_metrics fixture series "quoted" \\\\ and a backslash', "help escaped")
    bulk = fams["confab_fx_bulk"]["samples"]
    check(len(bulk) == 20 and all(v == float(l["n"]) for _, l, v in bulk), "bulk series")
    for _ in range(3):
        check(handshake_status(port) == 401, "anonymous admitted")
    fams = scrape(port)
    check(value(fams, "confab_fx_auth_calls_total", outcome="ignored") == 3, "calls counted")
    check(value(fams, "confab_fx_last_query_bytes") == 0, "gauge set")
    check(value(fams, "confab_fx_check_seconds", "confab_fx_check_seconds_bucket", le="0.001") == 0
          and value(fams, "confab_fx_check_seconds", "confab_fx_check_seconds_bucket",
                    le="0.01") == 3, "buckets of 0.005 s")
    check(value(fams, "confab_handshakes_refused_total", status="401") == 3, "401s counted")
    for plugin in ("fx_metrics", "fx_metrics_v1_6"):
        check(value(fams, "confab_auth_results_total", plugin=plugin, result="ignore") == 3,
              "auth results of %s" % plugin)
        check(value(fams, "confab_auth_results_total", plugin=plugin, result="allow") == 0,
              "allows of %s" % plugin)


@suite.test
def ten_thousand_plugin_series_scrape_whole():
    """fx_metrics with series = 10000: the scrape parses and holds them all;
    scrapers that hang up in the middle leave the broker serving (and
    leaking nothing, under the sanitizers)."""
    b = suite.broker("bulk", broker={"plugins": [WS_SO, fixture("fx_metrics")]},
                     sections={"fx_metrics": {"series": 10000}})
    fams = scrape(b.start().port)
    check(len(fams["confab_fx_bulk"]["samples"]) == 10000, "bulk series")
    scrape_cut(b.port)
    check(len(scrape(b.port)["confab_fx_bulk"]["samples"]) == 10000, "bulk series after cuts")


@suite.test
def metrics_off_is_404():
    """[ws] metrics = off: GET /metrics -> 404; /healthz still 200."""
    b = suite.broker("off", sections={"ws": {"metrics": "off"}})
    port = b.start().port
    answers(port, "/metrics", 404, "with metrics = off")
    answers(port, "/healthz", 200, "with metrics = off")


apart = {}  # the metrics_listen broker's metrics port, for the next test


@suite.test
def metrics_listen_serves_there_and_not_on_the_main_listener():
    """[ws] metrics_listen = 127.0.0.1:P: /metrics answers on P (GET, and
    404 for other paths; scrapers may hang up early) and 404 on the main
    listener."""
    # metrics_listen has no port 0 with a log line to read it back: a
    # reserved port (libuv binds next to the reservation with SO_REUSEADDR)
    mport, apart["reservation"] = reserve_port()
    apart["port"] = mport
    b = suite.broker("apart", broker={"plugins": [WS_SO, fixture("fx_metrics")]},
                     sections={"ws": {"metrics_listen": "127.0.0.1:%d" % mport},
                               "fx_metrics": {"series": 10000}})
    port = b.start().port
    scrape_cut(mport)
    fams = scrape(mport)
    check("confab_sessions" in fams, "no core family on metrics_listen")
    answers(port, "/metrics", 404, "on the main listener")
    answers(mport, "/other", 404, "on metrics_listen")


@suite.test
def metrics_listen_holds_at_most_16_connections():
    """20 idle connections to metrics_listen: 16 are held (until their 10 s),
    4 are closed at once; once the idle ones go, scrapes are served again."""
    check("port" in apart, "the metrics_listen broker did not start")
    mport = apart["port"]
    idle = [socket.create_connection(("127.0.0.1", mport), timeout=RECV_TIMEOUT)
            for _ in range(20)]
    closed = 0
    try:
        for s in idle:
            s.settimeout(0.3)
            try:
                closed += s.recv(16) == b""
            except socket.timeout:
                pass
    finally:
        for s in idle:
            s.close()
    check(closed == 4, "%d of 20 idle connections closed at once, want 4" % closed)
    deadline = time.monotonic() + RECV_TIMEOUT
    while True:
        try:
            check("confab_sessions" in scrape(mport), "no core family")
            break
        except (OSError, TestFailure):
            check(time.monotonic() < deadline, "no scrape served after the idle ones left")
            time.sleep(0.05)


@suite.test
def a_bad_metrics_listen_is_a_config_error():
    """metrics_listen = nowhere: confabd -t names the key."""
    d = tempfile.mkdtemp(dir=suite.tmp)
    path = write_config(d, {"node_id": "bad", "plugins": WS_SO},
                        {"ws": {"listen": "127.0.0.1:0",
                                "metrics_listen": "nowhere"}})
    r = run_confabd(["-t", "-c", path])
    check(r.code == 1 and "metrics_listen" in r.stderr, "confabd -t: %s" % r.describe())


if __name__ == "__main__":
    suite.main()
