#!/usr/bin/python3
"""The SDK example plugin (sdk/examples/allowlist) builds OUT OF TREE
against an installed copy of the SDK, using only
`pkg-config --cflags confab-plugin`, and loads into confabd.

SPDX-License-Identifier: MIT
"""
import asyncio
import json
import os
import shlex
import shutil
import socket
import subprocess

import websockets.exceptions

from confabtest import (Suite, Client, WS_SO, MAKE, TOP_BUILDDIR, TOP_SRCDIR, SCALE,
                        check, note, run_confabd, spawn, tail, write_config)

suite = Suite("test_sdk_example", watchdog=300)
state = {}  # what the build steps found, for the later checks

DEST = os.path.join(suite.tmp, "dest")
EXAMPLE = os.path.join(suite.tmp, "allowlist")
DEPS = os.path.join(suite.tmp, "allowlist.deps")


def run(args, cwd=None, env=None, timeout=120 * SCALE):
    """Run a build command; returns (exit status, output)."""
    p = spawn(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return p.returncode, out.decode("utf-8", "replace")


def user_env(**extra):
    """The environment of someone building a plugin outside confab's tree:
    no make state inherited from `make check`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CPATH",
                        "C_INCLUDE_PATH", "PKG_CONFIG_LIBDIR")}
    env.update(extra)
    return env


def need(key):
    check(key in state, "an earlier step failed (%s unknown)" % key)
    return state[key]


@suite.test
def sdk_installs_into_a_destdir():
    """make -C BUILDDIR/sdk install DESTDIR=TMP puts the headers and confab-plugin.pc under TMP."""
    code, out = run(shlex.split(MAKE) + ["-s", "-C", os.path.join(TOP_BUILDDIR, "sdk"),
                                         "install", "DESTDIR=" + DEST])
    check(code == 0, "make install exited %s:\n%s" % (code, tail(out)))
    pcs = [os.path.join(d, f) for d, _, fs in os.walk(DEST) for f in fs if f == "confab-plugin.pc"]
    check(len(pcs) == 1, "want one confab-plugin.pc under %s, found %r" % (DEST, pcs))
    headers = [os.path.join(d, f) for d, _, fs in os.walk(DEST) for f in fs
               if f == "plugin.h" and os.path.basename(d) == "confab"]
    check(len(headers) == 1, "want one confab/plugin.h under %s, found %r" % (DEST, headers))
    state["pcdir"] = os.path.dirname(pcs[0])
    state["incdir"] = os.path.dirname(os.path.dirname(headers[0]))
    note("installed %s and %s" % (pcs[0][len(DEST):], headers[0][len(DEST):]))


@suite.test
def pkg_config_points_into_the_destdir():
    """With PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR set, pkg-config --cflags names TMP's include dir."""
    env = user_env(PKG_CONFIG_PATH=need("pcdir"), PKG_CONFIG_SYSROOT_DIR=DEST)
    code, out = run(["pkg-config", "--cflags", "confab-plugin"], env=env)
    check(code == 0, "pkg-config --cflags confab-plugin exited %s: %s" % (code, out))
    check(DEST in out, "pkg-config --cflags %r does not point into %s" % (out.strip(), DEST))
    check("-I" + state["incdir"] in out.split(),
          "pkg-config --cflags %r does not name %s" % (out.strip(), state["incdir"]))
    state["env"] = env
    note("pkg-config --cflags confab-plugin: %s" % out.strip())


@suite.test
def example_builds_out_of_tree_with_the_installed_headers():
    """A copy of sdk/examples/allowlist outside the tree builds with `make`;
    every confab header the compiler read came from TMP."""
    env = dict(need("env"))
    shutil.copytree(os.path.join(TOP_SRCDIR, "sdk", "examples", "allowlist"), EXAMPLE)
    # Under distcheck the source tree is read-only, and so is the copy.
    for d, _, fs in os.walk(EXAMPLE):
        os.chmod(d, 0o755)
        for f in fs:
            os.chmod(os.path.join(d, f), 0o644)
    # GCC writes the headers it reads (system ones too) to this file.
    env["SUNPRO_DEPENDENCIES"] = DEPS + " allowlist"
    code, out = run(["make"], cwd=EXAMPLE, env=env)
    check(code == 0, "make in %s exited %s:\n%s" % (EXAMPLE, code, tail(out)))
    sos = [os.path.join(d, f) for d, _, fs in os.walk(EXAMPLE) for f in fs if f == "allowlist.so"]
    check(len(sos) == 1, "want one allowlist.so in %s, found %r:\n%s" % (EXAMPLE, sos, tail(out)))
    state["so"] = sos[0]
    if os.path.exists(DEPS):
        with open(DEPS) as f:
            used = [w for w in f.read().replace("\\\n", " ").split() if "/confab/" in w]
        check(used, "the compiler read no confab/*.h header?\n" + open(DEPS).read())
        outside = [h for h in used if not os.path.realpath(h).startswith(os.path.realpath(DEST) + os.sep)]
        check(not outside, "headers read from outside %s: %r" % (DEST, outside))
        note("the compiler read %d confab headers, all under %s" % (len(used), DEST))
    else:
        note("the compiler wrote no dependency list; relying on the pkg-config check")
    note("built %s" % state["so"])


def config(dirname, **broker):
    d = os.path.join(suite.tmp, dirname)
    os.makedirs(d, exist_ok=True)
    b = {"node_id": "sdk", "plugins": [WS_SO, need("so")], "allow_anonymous": False}
    b.update(broker)
    return d, b, {"allowlist": {"users": ["alice", "bob"]}}


@suite.test
def check_mode_loads_the_example():
    """confabd -t with ws.so and the built allowlist.so exits 0."""
    d, b, secs = config("check")
    secs["ws"] = {"listen": "127.0.0.1:1"}
    r = run_confabd(["-t", "-c", write_config(d, b, secs)])
    check(r.code == 0, "want exit 0: " + r.describe())


node = suite.broker("sdk", broker={"node_id": "sdk", "allow_anonymous": False},
                    sections={"allowlist": {"users": ["alice", "bob"]}})


def start_node():
    if not node.proc:
        # The chain names the .so built above, so the config is rewritten now.
        _, b, secs = config("run")
        secs["ws"] = {"listen": "127.0.0.1:0"}
        node.config = write_config(node.dir, b, secs)
    return node.start().port


def raw_status_line(port, query):
    """The status line the server answers to a bare WebSocket handshake."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5 * SCALE)
    try:
        s.sendall(("GET /ws%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: confab.v1\r\n\r\n"
                   % (("?" + query) if query else "", port)).encode())
        return s.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
    except OSError as e:
        return "(%s)" % e
    finally:
        s.close()


async def refused(query, statuses, close_codes, what):
    port = start_node()
    try:
        c = await Client.connect(port, name=what, query=query, welcome=False)
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code in statuses, "%s: handshake refused with %d, want one of %r"
              % (what, e.status_code, statuses))
        note("%s: handshake refused with HTTP %d" % (what, e.status_code))
        return
    except websockets.exceptions.InvalidMessage as e:
        check(False, "%s: the WebSocket client cannot read the server's answer (%s: %s); "
              "the server's status line: %r" % (what, e, e.__cause__, raw_status_line(port, query)))
    # Accepted at the HTTP level: the transport must close at once, before any welcome.
    try:
        frame = await asyncio.wait_for(c.ws.recv(), 5 * SCALE)
        check(False, "%s: admitted, got %s" % (what, frame[:200]))
    except websockets.exceptions.ConnectionClosed:
        pass
    except asyncio.TimeoutError:
        check(False, "%s: neither refused nor closed" % what)
    check(c.ws.close_code in close_codes, "%s: closed with %s, want one of %r"
          % (what, c.ws.close_code, close_codes))
    note("%s: upgraded, then closed with %d" % (what, c.ws.close_code))


@suite.test
async def listed_user_is_admitted():
    """ws://.../ws?user=alice -> welcome with user alice."""
    c = await Client.connect(start_node(), name="alice", query="user=alice")
    check(c.user == "alice", "welcome user %r, want alice: %s" % (c.user, json.dumps(c.welcome)))
    await c.ping()


@suite.test
async def unlisted_user_is_refused():
    """?user=mallory -> handshake refused with 403 (or a close 4403 after the upgrade)."""
    await refused("user=mallory", (403,), (4403,), "mallory")


@suite.test
async def anonymous_client_is_refused():
    """No user with allow_anonymous = false -> refused with 401 or 403 (or close 4401/4403)."""
    await refused("", (401, 403), (4401, 4403), "anonymous")


@suite.test
async def the_last_session_of_a_user_leaving_tells_the_others_once():
    """alice in two sessions and bob in a room: bob sees alice join once,
    her first session leaving tells nobody, her last one tells bob."""
    port = start_node()
    a1 = await Client.connect(port, name="alice1", query="user=alice")
    a2 = await Client.connect(port, name="alice2", query="user=alice")
    b = await Client.connect(port, name="bob", query="user=bob")
    room = "tea"
    await b.join(room)
    await a1.join(room)
    await b.expect("member", room=room, user="alice", event="join")
    await a2.join(room)
    await b.expect_nothing(type="member")
    check(await b.presence(room) == ["alice", "bob"], "presence is not [alice, bob]")
    await a1.leave(room)
    await b.expect_nothing(type="member")
    await a2.close()
    await b.expect("member", room=room, user="alice", event="leave")
    await b.expect_nothing(type="member")
    check(await b.presence(room) == ["bob"], "presence is not [bob] after alice left")
    note("bob saw one join and one leave for alice's two sessions")


if __name__ == "__main__":
    suite.main()
