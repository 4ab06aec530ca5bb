"""What the tests of the `static` auth plugin share: the test users and
their passwords, a users file of their hashes (made with `mkpasswd` at
test time), and clients that log in with them.

  users_text(*users)          a users file listing `users`
  basic(user, password)       an HTTP Basic `Authorization` header
  admitted(port, name, ...)   a Client after its welcome
  refused_http(port, ...)     the handshake is refused with a given status

SPDX-License-Identifier: MIT
"""
import asyncio
import base64
import subprocess

import websockets
import websockets.exceptions

import confabtest
from confabtest import Client, RECV_TIMEOUT, check, note

# Distinctive passwords: none of them may ever appear in a broker's stderr.
PW = {
    "alice": "correct horse #1",      # SHA-512
    "bob": "b0b&yes=crypt%",          # yescrypt; needs percent-encoding in a query
    "tina": "team-only pw",           # SHA-512, limited to team-*
    "carol": "carol-new-pw",          # added by a reload
}


def mkpasswd(method, password):
    out = subprocess.run(["mkpasswd", "-m", method, password], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(out.returncode == 0, "mkpasswd -m %s failed: %s" % (method, out.stderr.decode()))
    return out.stdout.decode().strip()


HASHES = {}


def hash_of(user):
    if user not in HASHES:
        HASHES[user] = mkpasswd("yescrypt" if user == "bob" else "sha-512", PW[user])
    return HASHES[user]


def users_text(*users):
    lines = ["# users of the test broker", ""]
    for u in users:
        line = "%s:%s" % (u, hash_of(u))
        if u == "tina":
            line += ":team-*, staff"
        lines.append(line)
    return "\n".join(lines) + "\n"


def basic(user, password):
    token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    return {"Authorization": "Basic " + token}


async def open_ws(port, query="", headers=None):
    uri = "ws://127.0.0.1:%d/ws" % port + ("?" + query if query else "")
    return await asyncio.wait_for(
        websockets.connect(uri, extra_headers=headers, subprotocols=["confab.v1"],
                           ping_interval=None, compression=None,
                           open_timeout=RECV_TIMEOUT, close_timeout=RECV_TIMEOUT),
        RECV_TIMEOUT + 1)


async def admitted(port, name, query="", headers=None):
    """Connect and read the welcome; returns the Client."""
    c = Client(await open_ws(port, query, headers), name)
    confabtest._open_clients.append(c)  # closed by the suite after each test
    first = await c.recv()
    check(first.get("type") == "welcome", "%s: first frame is not a welcome: %r" % (name, first))
    c.welcome, c.user = first, first.get("user")
    return c


async def refused_http(port, what, want, query="", headers=None):
    try:
        ws = await open_ws(port, query, headers)
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == want, "%s: refused with HTTP %d, want %d" % (what, e.status_code, want))
        note("%s: HTTP %d" % (what, e.status_code))
        return
    await ws.close()
    check(False, "%s: the handshake succeeded; want HTTP %d" % (what, want))
