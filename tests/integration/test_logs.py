#!/usr/bin/python3
"""What confabd's log says, as docs/configuration.md#logs describes: one
info line per session opened and closed, log_format = json (one object per
line, the plugins' lines too), and client text escaped in both formats so
that it can neither put a control character in the log nor forge a line.

The client text comes through fx_slow_auth's log_query, which logs each
handshake's query decoded: a newline, ESC, DEL, a C1 control and
bytes that are not UTF-8, as a plugin could log any client string.

SPDX-License-Identifier: MIT
"""
import asyncio
import json
import re
import signal
import time

from confabtest import (Suite, Client, WS_SO, check, fixture, note, run_confabd, write_config)

suite = Suite("test_logs", watchdog=120)
SLOW = fixture("fx_slow_auth")

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TEXT_LINE = re.compile(STAMP + r" (error|warn |info |debug) \[[^\]]+\] ")
# A newline, a line that looks like confabd's own, ESC [31m, DEL, U+009B
# (C1 CSI), and 0xff and a lone 0xc3 (not UTF-8).
# fx_slow_auth decodes ~XX (lws would decode %XX itself, and drops what
# follows some control characters).
HOSTILE = ("x=~0A2000-01-01T00:00:00.000Z~20error~20[core]~20forged~0D"
           "~1B[31mred~7F~C2~9Bc1~FF~C3end")


def log_broker(name, fmt=None):
    b = {"plugins": [WS_SO, SLOW]}
    if fmt:
        b["log_format"] = fmt
    return suite.broker(name, broker=b, sections={
        "fx_slow_auth": {"user": "alice", "delay_ms": 0, "log_query": "true"}})


text = log_broker("text")
js = log_broker("json", "json")


def raw_log(b):
    with open(b.stderr_path, "rb") as f:
        return f.read()


def wait_for_log(b, pred, what, timeout=5.0):
    """The log's lines once one of them satisfies pred."""
    deadline = time.monotonic() + timeout
    while True:
        lines = raw_log(b).decode("utf-8").splitlines()
        if any(pred(line) for line in lines):
            return lines
        if time.monotonic() > deadline:
            check(False, "%s: no %s in the log within %.0fs:\n%s"
                  % (b.name, what, timeout, "\n".join(lines[-20:])))
        time.sleep(0.05)


def check_no_control_bytes(b):
    """Every byte of the log is UTF-8 with no control character but the
    newlines that end lines."""
    data = raw_log(b)
    data.decode("utf-8")  # raises on invalid UTF-8
    bad = [c for c in data if (c < 0x20 and c != 0x0a) or c == 0x7f]
    check(not bad, "%s: control bytes in the log: %r" % (b.name, sorted(set(bad))))
    check(b"\xc2\x9b" not in data and b"\xc2\x85" not in data,
          "%s: a C1 control character in the log" % b.name)


async def one_session(b, query=""):
    """Connects, reads the welcome and closes from the client side."""
    c = await Client.connect(b.port, query=query)
    session = c.session
    await c.close()
    return session


@suite.test
async def text_connect_and_disconnect_give_one_info_line_each():
    """Text format: one info line when the session opens (session, user,
    address) and one when the client closes it (its close code 1000, by
    the client, duration)."""
    text.start()
    session = await one_session(text)
    lines = wait_for_log(text, lambda l: session + " closed" in l, "disconnect line")
    mine = [l for l in lines if session in l]
    check(len(mine) == 2, "want 2 lines naming %s, got:\n%s" % (session, "\n".join(mine)))
    check(re.fullmatch(STAMP + r" info  \[session\] " + re.escape(session) +
                       r" open: user alice from 127\.0\.0\.1", mine[0]),
          "connect line: %r" % mine[0])
    check(re.fullmatch(STAMP + r" info  \[session\] " + re.escape(session) +
                       r" closed: user alice from 127\.0\.0\.1, code 1000 \(by the client\), "
                       r"after \d+ ms", mine[1]), "disconnect line: %r" % mine[1])
    note(mine[1])


@suite.test
async def the_disconnect_line_has_the_clients_close_code_or_1006():
    """A client's close code of its own (4321, whose reason is not logged),
    a close frame without a code (1005), a connection dropped without a
    close frame (1006, connection lost) and an unmasked frame (1002, the
    transport's own close) each give their code in the disconnect line."""
    async def ended(how):
        c = await Client.connect(text.port)
        await how(c.ws)
        await asyncio.sleep(0.2)  # abort() closes the socket on the next loop turn
        lines = wait_for_log(text, lambda l: c.session + " closed" in l, "disconnect line")
        return [l for l in lines if c.session + " closed" in l][0]

    async def code_4321(ws):
        await ws.close(code=4321, reason="see you\nforged")

    async def no_code(ws):
        ws.transport.write(bytes([0x88, 0x80, 1, 2, 3, 4]))   # close, masked, empty

    async def dropped(ws):
        ws.transport.abort()

    async def unmasked(ws):
        ws.transport.write(bytes([0x81, 0x02]) + b"hi")

    for how, want in ((code_4321, r"code 4321 \(by the client\)"),
                      (no_code, r"code 1005 \(by the client\)"),
                      (dropped, r"code 1006 \(connection lost\)"),
                      (unmasked, r"code 1002 \(unmasked frame\)")):
        line = await ended(how)
        check(re.search(r" closed: user alice from 127\.0\.0\.1, %s, after \d+ ms$" % want, line),
              "%s: disconnect line %r, want %s" % (how.__name__, line, want))
        check("see you" not in line, "the client's close reason is in the log: %r" % line)
        note(line)


@suite.test
async def text_escapes_client_control_characters_and_forges_no_line():
    """Text format: a client string with a newline, CR, ESC, DEL, C1 and bad
    UTF-8 logged by a plugin stays on its one line, escaped as \\xNN."""
    await one_session(text, HOSTILE)
    lines = wait_for_log(text, lambda l: "query: x=" in l, "query line")
    check_no_control_bytes(text)
    for line in lines:
        check(TEXT_LINE.match(line), "a line that is not confabd's: %r" % line)
    q = [l for l in lines if "query: x=" in l]
    check(len(q) == 1, "want one query line, got %r" % q)
    check(q[0].endswith(r"query: x=\x0A2000-01-01T00:00:00.000Z error [core] forged\x0D"
                        r"\x1B[31mred\x7F\xC2\x9Bc1\xFF\xC3end"),
          "query line: %r" % q[0])
    check(not any(l.startswith("2000-") for l in lines), "a forged line in the log")
    note(q[0])


@suite.test
async def json_gives_one_object_per_line_with_event_fields():
    """log_format = json: every line of a whole run (start, plugins, client
    text, sessions, SIGTERM) is one JSON object with time, level, who and
    msg; connect and disconnect lines carry event, session, user, addr,
    code, duration_ms."""
    js.start()
    session = await one_session(js, HOSTILE)
    wait_for_log(js, lambda l: session in l and '"disconnect"' in l, "disconnect line")
    # one more, still open at SIGTERM: the core closes it with 1001
    c = await Client.connect(js.port)
    js.send_signal(signal.SIGTERM)
    await js.wait_async()
    js.check_clean_exit()
    check_no_control_bytes(js)
    objs = []
    for line in raw_log(js).decode("utf-8").split("\n")[:-1]:
        try:
            o = json.loads(line)
        except ValueError as e:
            check(False, "not one JSON object: %r (%s)" % (line, e))
        check(isinstance(o, dict), "not an object: %r" % line)
        check(re.fullmatch(STAMP, o.get("time", "")), "time %r" % o.get("time"))
        check(o.get("level") in ("error", "warn", "info", "debug"), "level in %r" % line)
        check(isinstance(o.get("who"), str) and isinstance(o.get("msg"), str), line)
        objs.append(o)
    whos = set(o["who"] for o in objs)
    check({"ws", "fx_slow_auth", "session"} <= whos, "who: %r" % whos)
    q = [o for o in objs if o["msg"].startswith("query: x=")]
    check(len(q) == 1 and q[0]["msg"] == ("query: x=\n2000-01-01T00:00:00.000Z error [core] "
                                          "forged\r\x1b[31mred\x7f\x9bc1\ufffd\ufffdend"),
          "query lines: %r" % q)

    def events(name, sess):
        return [o for o in objs if o.get("event") == name and o.get("session") == sess]
    conn, disc = events("connect", session), events("disconnect", session)
    check(len(conn) == 1 and len(disc) == 1, "events of %s: %r %r" % (session, conn, disc))
    check(conn[0]["level"] == "info" and conn[0]["user"] == "alice" and
          conn[0]["addr"] == "127.0.0.1", "connect: %r" % conn[0])
    d = disc[0]
    check(d["level"] == "info" and d["user"] == "alice" and d["addr"] == "127.0.0.1" and
          d["code"] == 1000 and d["reason"] == "by the client" and isinstance(d["duration_ms"], int)
          and d["duration_ms"] >= 0, "disconnect: %r" % d)
    last = events("disconnect", c.session)
    check(len(last) == 1 and last[0]["code"] == 1001 and
          last[0]["reason"] == "server shutting down", "disconnect at SIGTERM: %r" % last)
    note("%d lines, all JSON; %s" % (len(objs), json.dumps(last[0])))


@suite.test
def check_refuses_an_unknown_log_format_with_file_and_line():
    """confabd -t refuses log_format = yaml, naming the file and line."""
    path = write_config(suite.tmp, {"plugins": WS_SO, "log_format": "yaml"},
                        {"ws": {"listen": "127.0.0.1:0"}}, name="yaml.ini")
    with open(path) as f:
        n = [i + 1 for i, l in enumerate(f.read().split("\n")) if l.startswith("log_format")][0]
    r = run_confabd(["-t", "-c", path])
    check(r.code == 1, r.describe())
    want = "%s:%d:" % (path, n)
    check(want in r.stderr and "log_format" in r.stderr and "'yaml'" in r.stderr, r.describe())
    note(r.stderr.strip())


if __name__ == "__main__":
    suite.main()
