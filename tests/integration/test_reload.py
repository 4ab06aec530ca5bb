#!/usr/bin/python3
"""Reloading broker.ini while serving (issue 12), the core's part:
  - SIGHUP with a changed [broker] limit (max_rooms_per_session) changes
    what an open session may do, and drops no connection;
  - log_level and allowed_origins take effect at once;
  - SIGHUP with a broken file keeps the running configuration, logs exactly
    one error line (the one `confabd -t` prints for that file) and a warning
    that the reload was refused, and the connections stay;
  - a changed node_id or plugin chain is logged as needing a restart and
    the running value kept, while the rest of the file applies;
  - `confabctl reload` answers ok, or exits 1 with the error line;
  - `confabd -t` on the running node's file passes (its port in use is a
    warning);
  - a level set by `confabctl log-level` lasts until a reload, which sets
    the file's level again and logs the change;
  - a plugin built before ABI 1.8 (no reload slot) whose section changed is
    named in a warning, and the rest applies;
  - a reload while draining is ignored.
The plugins' own parts (static, jwt, ws) have their own tests.

SPDX-License-Identifier: MIT
"""
import os
import re
import signal
import subprocess
import time

import websockets

from confabtest import (CONFABCTL, CONFABD, QUICK_EXIT, RECV_TIMEOUT, Client, Suite, WS_SO, check,
                        fixture, http_get, note)
from reloadtest import ERROR_LINE, t_error

suite = Suite("test_reload", watchdog=240)

def sock_path(name):
    return os.path.join(suite.tmp, name + ".sock")


def ctl(node, *args):
    p = subprocess.run([CONFABCTL, "-s", sock_path(node.name)] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=QUICK_EXIT)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


BASE = {"max_rooms_per_session": 2}


def node_with(name, **broker):
    b = dict(BASE, control_socket=sock_path(name))
    b.update(broker)
    return b


limits = suite.broker("limits", broker=node_with("limits"))


@suite.test
async def a_changed_limit_applies_to_open_sessions_without_dropping_them():
    """max_rooms_per_session 2 -> 3 by SIGHUP: the open session may join a
    third room, then not a fourth; it and its peer stay connected and chat."""
    port = limits.start().port
    a = await Client.connect(port, name="a")
    b = await Client.connect(port, name="b")
    for room in ("r1", "r2"):
        await a.join(room)
    await a.error({"type": "join", "room": "r3"}, "forbidden")
    await b.join("r3")

    limits.rewrite(node_with("limits", max_rooms_per_session=3))
    log = limits.reload("reloaded ")
    check(not ERROR_LINE.search(log), "a good reload logged an error:\n%s" % log)
    await a.join("r3")
    await a.error({"type": "join", "room": "r4"}, "forbidden")
    await a.say("r3", "after the reload")
    await b.expect("message", room="r3", body="after the reload")
    note("same sessions before and after: %s, %s" % (a.session, b.session))


@suite.test
async def a_broken_file_is_refused_whole_with_one_error_line():
    """max_rooms_per_session = lots, and log_level = debug beside it: one
    error line, the same `confabd -t` prints; the node keeps 3 rooms and
    info; the sessions stay."""
    a = await Client.connect(limits.port, name="a2")
    for room in ("x1", "x2", "x3"):
        await a.join(room)
    limits.rewrite(node_with("limits", max_rooms_per_session="lots", log_level="debug"))
    t_line = t_error(limits)

    log = limits.reload("reload refused")
    errors = ERROR_LINE.findall(log)
    check(len(errors) == 1, "want exactly one error line, got %d:\n%s" % (len(errors), log))
    check(t_line in log, "the reload's error is not confabd -t's line %r:\n%s" % (t_line, log))
    check(re.search(r"broker\.ini:\d+: \[broker\] max_rooms_per_session: 'lots'", log),
          "the error names neither the file's line nor the key:\n%s" % log)
    check("reloaded" not in log, "a refused reload says reloaded:\n%s" % log)
    await a.error({"type": "join", "room": "x4"}, "forbidden")
    await a.ping()
    # log_level stayed info: a scrape's debug line does not show
    start = len(limits.stderr())
    http_get(limits.port, "/metrics")
    time.sleep(0.3)
    check(" debug " not in limits.stderr()[start:], "log_level changed by a refused reload")


@suite.test
async def log_level_and_allowed_origins_take_effect():
    """log_level = debug and allowed_origins = https://ok.example by
    SIGHUP: debug lines show; a handshake from another origin gets 403;
    the session opened before (no Origin) stays."""
    a = await Client.connect(limits.port, name="a3")
    limits.rewrite(node_with("limits", max_rooms_per_session=3, log_level="debug",
                             allowed_origins="https://ok.example"))
    limits.reload("reloaded ")
    start = len(limits.stderr())
    http_get(limits.port, "/metrics")
    limits.log_since(start, " debug ")
    try:
        ws = await websockets.connect("ws://127.0.0.1:%d/ws" % limits.port,
                                      subprotocols=["confab.v1"], origin="https://evil.example",
                                      open_timeout=RECV_TIMEOUT)
        await ws.close()
        check(False, "Origin https://evil.example admitted after the reload")
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == 403, "Origin https://evil.example: %d, want 403" % e.status_code)
    await a.ping()
    limits.rewrite(node_with("limits", max_rooms_per_session=3))
    limits.reload("reloaded ")


@suite.test
async def restart_only_settings_keep_their_running_value():
    """node_id and plugins changed: one warning each saying it needs a
    restart; the node keeps its id and chain; max_rooms_per_session, in the
    same file, applies."""
    a = await Client.connect(limits.port, name="a4")
    limits.rewrite(node_with("limits", node_id="renamed", max_rooms_per_session=1,
                             plugins=[WS_SO, fixture("fx_good_auth")]))
    log = limits.reload("reloaded ")
    for key in ("node_id", "plugins"):
        check(re.search(r"warn .*\[broker\] %s changed to .*: needs a restart; keeping" % key, log),
              "no needs-a-restart line for %s:\n%s" % (key, log))
    code, out, err = ctl(limits, "status")
    check(code == 0 and "node_id: limits" in out, "status after the reload: %s%s" % (out, err))
    b = await Client.connect(limits.port, name="b4")
    check(b.session.startswith("limits."), "a new session's id %r has a new node id" % b.session)
    check(b.user.startswith("guest-"), "the chain changed: %r admitted by an auth plugin" % b.user)
    await b.join("only")
    await b.error({"type": "join", "room": "second"}, "forbidden")
    await a.ping()
    limits.rewrite(node_with("limits", max_rooms_per_session=3))
    limits.reload("reloaded ")


@suite.test
def confabctl_reload_answers_ok_or_the_error():
    """confabctl reload: exit 0 naming the file; after a syntax error, exit 1
    with that error on stderr, and the node keeps serving."""
    code, out, err = ctl(limits, "reload")
    check(code == 0 and "reloaded: " + limits.config in out, "reload: %d %r %r" % (code, out, err))
    with open(limits.config, "a") as f:
        f.write("this line is not ini\n")
    code, out, err = ctl(limits, "reload")
    check(code == 1 and "reload refused" in err and "syntax error" in err
          and limits.config in err, "reload of a broken file: %d %r %r" % (code, out, err))
    check(http_get(limits.port, "/readyz")[0] == 200, "not ready after a refused reload")
    limits.rewrite(node_with("limits", max_rooms_per_session=3))


@suite.test
def check_mode_passes_beside_the_running_node():
    """confabd -t on the file the node runs, while it holds its port (the
    step before a reload): OK, with one warning that the port is in use."""
    # The node's file says port 0 (the kernel picks): name the port it has.
    with open(limits.config) as f:
        text = f.read()
    pinned = os.path.join(limits.dir, "pinned.ini")
    with open(pinned, "w") as f:
        f.write(re.sub(r"(?m)^listen = 127\.0\.0\.1:0$", "listen = 127.0.0.1:%d" % limits.port, text))
    p = subprocess.run([CONFABD, "-t", "-c", pinned], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=QUICK_EXIT)
    code, out = p.returncode, p.stdout.decode("utf-8", "replace")
    check(code == 0 and "configuration OK" in out,
          "confabd -t beside the running node: %d\n%s" % (code, out))
    check(re.search(r"warn +\[ws\] listen: 127\.0\.0\.1:%d is in use" % limits.port, out),
          "confabd -t beside the running node: no warning about the port:\n%s" % out)
    check(not ERROR_LINE.search(out), "confabd -t beside the running node: an error:\n%s" % out)


@suite.test
def a_reload_sets_the_files_log_level_again():
    """confabctl log-level debug lasts until a reload: the reload sets the
    file's level (info) again and logs the change; status says info."""
    code, out, err = ctl(limits, "log-level", "debug")
    check(code == 0 and "debug" in out, "log-level debug: %d %r %r" % (code, out, err))
    log = limits.reload("reloaded ")
    check(re.search(r"info +\[core\] log level debug -> info \(broker\.ini\)", log),
          "the reload did not log the level it set:\n%s" % log)
    code, out, err = ctl(limits, "status")
    check(code == 0 and re.search(r"^log_level: info$", out, re.M),
          "status after the reload: %d %r %r" % (code, out, err))
    log = limits.reload("reloaded ")
    check("log level" not in log, "a reload that kept the level logged a change:\n%s" % log)


older = suite.broker("older", broker=node_with("older", plugins=[WS_SO, fixture("fx_older_minor")],
                                               allow_anonymous=False),
                     sections={"fx_older_minor": {"user": "alice"}})


@suite.test
async def a_plugin_without_the_reload_slot_keeps_its_settings():
    """fx_older_minor (ABI 1.0) with user alice -> bob by SIGHUP: a warning
    names it; it goes on admitting alice; [broker] changes apply."""
    older.start()
    a = await Client.connect(older.port, name="alice1")
    older.rewrite(node_with("older", plugins=[WS_SO, fixture("fx_older_minor")],
                            allow_anonymous=False, max_rooms_per_session=1),
                  sections={"fx_older_minor": {"user": "bob"}})
    log = older.reload("reloaded ")
    check(re.search(r"\[fx_older_minor\] changed, but plugin \S+ \(ABI 1\.0\) does not reload", log),
          "no warning for the plugin that does not reload:\n%s" % log)
    b = await Client.connect(older.port, name="alice2")
    check(b.user == "alice", "the 1.0 plugin admitted %r after the reload" % b.user)
    await b.join("one")
    await b.error({"type": "join", "room": "two"}, "forbidden")
    await a.ping()


draining = suite.broker("draining", broker=node_with("draining", drain_grace=30, drain_window=1))


@suite.test
async def a_reload_while_draining_is_ignored():
    """SIGTERM starts a 30 s drain; SIGHUP then logs that it is ignored and
    the draining node still exits 0 at a second SIGTERM."""
    draining.start()
    c = await Client.connect(draining.port, name="d")
    start = len(draining.stderr())
    draining.send_signal(signal.SIGTERM)
    draining.log_since(start, "draining")
    log = draining.reload("reload ignored")
    check("the node is draining" in log, "why the reload was ignored:\n%s" % log)
    code, out, err = ctl(draining, "reload")
    check(code == 1 and "draining" in err, "confabctl reload while draining: %d %r" % (code, err))
    await c.close()
    draining.send_signal(signal.SIGTERM)
    check(await draining.wait_async() == 0, "the draining node's exit status")


if __name__ == "__main__":
    suite.main()
