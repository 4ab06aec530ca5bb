#!/usr/bin/python3
"""The `static` auth plugin admits the users of its users_file by HTTP Basic
or ?user=&password=, with their room patterns, and never shows a password.
Reading the file again on a reload is test_reload_auth.py's subject.

Hashes are made at test time with `mkpasswd` (SHA-512 and yescrypt). The
plugin checks passwords on libuv's thread pool and answers later; `ws`
holds the handshake meanwhile, so a wrong password (or an unknown user) is
still an HTTP 401 "invalid credentials" and never an upgrade. These checks
read the raw HTTP answer to see that no 101 came first. Credentials it
cannot even parse, and clients without any, are refused the same way.

SPDX-License-Identifier: MIT
"""
import asyncio
import base64
import os
import re
import signal
import time
import urllib.parse

import websockets.exceptions

import confabtest
from confabtest import (Suite, WS_SO, PLUGIN_BUILD_DIR, RECV_TIMEOUT, SCALE,
                        check, fixture, note, run_confabd, write_config, write_text)
from statictest import (HASHES, PW, admitted, basic, hash_of, mkpasswd, open_ws,
                        refused_http, users_text)

suite = Suite("test_auth_static", watchdog=300, needs=[("mkpasswd", "whois")])
STATIC_SO = os.path.join(PLUGIN_BUILD_DIR, "static", ".libs", "static.so")

WRONG = "not-the-password-42"
ALL_SECRETS = list(PW.values()) + [WRONG]


def query(user, password):
    return "user=%s&password=%s" % (urllib.parse.quote(user, safe=""),
                                    urllib.parse.quote(password, safe=""))


async def raw_handshake(port, query="", headers=None):
    """Send a WebSocket handshake on a plain socket; return everything the
    broker writes until it hangs up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = ["GET /ws%s HTTP/1.1" % ("?" + query if query else ""),
             "Host: 127.0.0.1:%d" % port, "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode(),
             "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: confab.v1"]
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), RECV_TIMEOUT)
    finally:
        writer.close()


async def refused_401_before_upgrade(port, what, query="", headers=None):
    """The password is checked later, yet the answer is HTTP 401 'invalid
    credentials' and the connection never upgrades."""
    try:
        answer = (await raw_handshake(port, query, headers)).decode("latin-1")
    except asyncio.TimeoutError:
        raise confabtest.TestFailure("%s: no answer and no hang-up within %.0fs"
                                     % (what, RECV_TIMEOUT)) from None
    status = answer.split("\r\n", 1)[0]
    check("101" not in status and " 101 " not in answer,
          "%s: upgraded (%r); want HTTP 401 before any upgrade" % (what, status))
    check(status.startswith("HTTP/1.1 401"), "%s: answered %r, want HTTP/1.1 401" % (what, status))
    check("invalid credentials" in answer, "%s: the 401 does not say 'invalid credentials': %r"
          % (what, answer[-200:]))
    note("%s: %s, 'invalid credentials'" % (what, status))


def wait_log(b, pattern, since=0, timeout=RECV_TIMEOUT):
    """The first stderr line after offset `since` matching `pattern`."""
    deadline = time.monotonic() + timeout
    while True:
        text = b.stderr()[since:]
        m = re.search(pattern, text)
        # only a whole line: the log may be read while it is being written
        end = text.find("\n", m.start()) if m else -1
        if end >= 0:
            start = text.rfind("\n", 0, m.start()) + 1
            return text[start:end]
        check(time.monotonic() < deadline, "%s: no log line matching %r within %.0fs:\n%s"
              % (b.name, pattern, timeout, confabtest.tail(b.stderr())))
        time.sleep(0.05)


def static_broker(name, users, chain=None, extra=None):
    path = write_text(suite.tmp, name + "-users", users)
    sections = {"static": {"users_file": path}}
    sections.update(extra or {})
    # Every test here logs in from 127.0.0.1, wrong passwords included:
    # the lockout after failed logins is test_auth_flood.py's subject.
    b = suite.broker(name, broker={"plugins": chain or [WS_SO, STATIC_SO],
                                   "allow_anonymous": False, "log_level": "debug",
                                   "login_failures": 1000},
                     sections=sections)
    return b


main = static_broker("main", users_text("alice", "bob", "tina"))


@suite.test
async def right_password_by_basic_is_welcomed_as_that_user():
    """Basic credentials with the right password (SHA-512 and yescrypt) get a welcome as that user."""
    main.start()
    for user in ("alice", "bob"):
        c = await admitted(main.port, user, headers=basic(user, PW[user]))
        check(c.user == user, "welcome names %r, want %r" % (c.user, user))
        note("%s (%s) admitted by Basic" % (user, hash_of(user)[:3]))


@suite.test
async def right_password_in_the_query_is_welcomed_as_that_user():
    """?user=&password= (percent-encoded) with the right password gets a welcome as that user."""
    main.start()
    for user in ("alice", "bob"):
        c = await admitted(main.port, user, query=query(user, PW[user]))
        check(c.user == user, "welcome names %r, want %r" % (c.user, user))
    note("alice and bob admitted by the query")


@suite.test
async def wrong_password_is_refused_with_http_401_before_any_upgrade():
    """A wrong password, by Basic or query, checked on the thread pool: HTTP 401, never a 101."""
    main.start()
    # bob first: the "denied" line is rate-limited (one a second), so
    # alice's, right after it, is counted rather than written.
    await refused_401_before_upgrade(main.port, "bob, wrong password, query", query=query("bob", WRONG))
    await refused_401_before_upgrade(main.port, "alice, wrong password, Basic",
                                     headers=basic("alice", WRONG))
    line = wait_log(main, r"denied bob from 127\.0\.0\.1: invalid credentials")
    note("logged: " + line.strip())


@suite.test
async def unknown_user_is_refused_the_same_way():
    """An unknown user gets the same answer as a wrong password: HTTP 401 before any upgrade."""
    main.start()
    await refused_401_before_upgrade(main.port, "mallory, Basic", headers=basic("mallory", WRONG))
    await refused_401_before_upgrade(main.port, "mallory, query", query=query("mallory", WRONG))


@suite.test
async def malformed_credentials_are_refused_with_http_401():
    """Credentials that do not parse (bad base64, no ':', invalid name) are refused before the upgrade."""
    main.start()
    await refused_http(main.port, "bad base64", 401, headers={"Authorization": "Basic !!!not64"})
    await refused_http(main.port, "no colon", 401,
                       headers={"Authorization": "Basic " + base64.b64encode(b"alice").decode()})
    await refused_http(main.port, "invalid name", 401, headers=basic("al ice", WRONG))
    await refused_http(main.port, "password without user", 401, query="password=" + WRONG)
    line = wait_log(main, r"denied \(invalid name\) from")
    note("logged: " + line.strip())


@suite.test
async def no_credentials_is_refused_with_http_401_by_the_core():
    """No credentials: static ignores, allow_anonymous = false refuses with HTTP 401."""
    main.start()
    await refused_http(main.port, "no credentials", 401)
    await refused_http(main.port, "a user but no password", 401, query="user=alice")
    await refused_http(main.port, "a Bearer token", 401, headers={"Authorization": "Bearer abc"})


@suite.test
async def room_patterns_limit_the_user():
    """tina (team-*, staff) joins team-a and staff; lobby is forbidden. alice may join lobby."""
    main.start()
    tina = await admitted(main.port, "tina", headers=basic("tina", PW["tina"]))
    await tina.join("team-a")
    await tina.join("staff")
    await tina.say("team-a", "hello team")
    await tina.error({"type": "join", "room": "lobby"}, "forbidden")
    await tina.error({"type": "send", "room": "lobby", "body": "hi"}, "forbidden")
    alice = await admitted(main.port, "alice", headers=basic("alice", PW["alice"]))
    await alice.join("lobby")
    note("tina: team-a and staff joined, lobby forbidden; alice: lobby joined")


chain = static_broker("chain", users_text("alice"),
                      chain=[WS_SO, STATIC_SO, fixture("fx_good_auth")],
                      extra={"fx_good_auth": {"user": "fallback"}})


@suite.test
async def chain_static_then_fixture():
    """ws, static, fx_good_auth: no credentials pass on to fx (fallback); a wrong password is refused; alice is alice."""
    chain.start()
    c = await admitted(chain.port, "anon")
    check(c.user == "fallback", "no credentials: welcome names %r, want fallback" % c.user)
    await refused_401_before_upgrade(chain.port, "wrong password before fx", headers=basic("alice", WRONG))
    await refused_401_before_upgrade(chain.port, "unknown user before fx", query=query("zed", WRONG))
    c = await admitted(chain.port, "alice", query=query("alice", PW["alice"]))
    check(c.user == "alice", "right password: welcome names %r, want alice" % c.user)


@suite.test
async def shutdown_with_checks_in_flight_exits_0():
    """SIGTERM while many password checks are in flight: every client gets an answer, exit 0."""
    b = static_broker("busy", users_text("bob"))
    b.start()
    conns = [asyncio.ensure_future(open_ws(b.port, query("bob", WRONG))) for _ in range(24)]
    await asyncio.sleep(0.05)
    b.send_signal(signal.SIGTERM)
    results = await asyncio.gather(*conns, return_exceptions=True)
    seen = {}
    for r in results:
        if isinstance(r, websockets.exceptions.InvalidStatusCode):
            what = "HTTP %d" % r.status_code
        elif isinstance(r, Exception):
            what = type(r).__name__
        else:
            try:
                await asyncio.wait_for(r.recv(), RECV_TIMEOUT)
            except (websockets.exceptions.ConnectionClosed, asyncio.TimeoutError):
                pass
            await r.close()
            what = "close %s" % r.close_code
        seen[what] = seen.get(what, 0) + 1
    await b.wait_async()
    b.check_clean_exit()
    # Which answers the clients get depends on the race (a handshake still
    # waiting for its check is answered HTTP 503 by stop()); the point is
    # the clean exit.
    note("exit 0 with %d connections racing the shutdown: %s" % (len(conns), seen))


@suite.test
def stderr_never_holds_a_password():
    """No password, right or wrong, appears in any broker's stderr (log_level = debug)."""
    for b in suite.brokers:
        text = b.stderr()
        for pw in ALL_SECRETS:
            for form in {pw, urllib.parse.quote(pw, safe="")}:
                check(form not in text, "%s: stderr holds the password %r" % (b.name, form))
    note("checked %d brokers" % len(suite.brokers))


# libxcrypt hashes passwords of up to 511 bytes (CRYPT_MAX_PASSPHRASE_SIZE
# is 512); mkpasswd makes the hashes with the same library.
LONG_PW = {"long6": ("x" * 500 + "long-sha512")[:511], "longy": ("y" * 500 + "long-yescrypt")[:511]}
PW.update(LONG_PW)
ALL_SECRETS += list(LONG_PW.values())


def long_users():
    HASHES["long6"] = mkpasswd("sha-512", LONG_PW["long6"])
    HASHES["longy"] = mkpasswd("yescrypt", LONG_PW["longy"])
    return "long6:%s\nlongy:%s\n" % (HASHES["long6"], HASHES["longy"])


@suite.test
async def passwords_of_512_bytes_or_more_are_refused_401_at_once():
    """511-byte passwords (SHA-512 and yescrypt) log in, each check within 1 s; 512, 1024 and
    2048 bytes get HTTP 401 "password too long" at once, without a check, by Basic and query."""
    b = static_broker("long", long_users())
    b.start()
    for user, pw in LONG_PW.items():
        check(len(pw) == 511, "test setup: %d bytes" % len(pw))
        for how in ("basic", "query"):
            t = time.monotonic()
            c = await admitted(b.port, user, **({"headers": basic(user, pw)} if how == "basic"
                                                else {"query": query(user, pw)}))
            took = time.monotonic() - t
            check(c.user == user, "welcome names %r, want %r" % (c.user, user))
            check(took < 1.0 * SCALE, "%s, 511 bytes by %s: %.2f s" % (user, how, took))
            await c.close()
            note("%s (%s), a 511-byte password by %s: welcomed in %.3f s"
                 % (user, hash_of(user)[:3], how, took))
    for n in (512, 1024, 2048):
        for how in ("basic", "query"):
            pw = LONG_PW["long6"] + "z" * (n - 511)
            kw = {"headers": basic("long6", pw)} if how == "basic" else {"query": query("long6", pw)}
            t = time.monotonic()
            answer = (await raw_handshake(b.port, **kw)).decode("latin-1")
            took = time.monotonic() - t
            status = answer.split("\r\n", 1)[0]
            check(status.startswith("HTTP/1.1 401") and "password too long" in answer,
                  "%d bytes by %s: %r, want HTTP 401 'password too long'" % (n, how, answer[-200:]))
            check(took < 1.0 * SCALE, "%d bytes by %s: answered after %.2f s" % (n, how, took))
            note("%d bytes by %s: %s 'password too long' in %.3f s" % (n, how, status, took))
    check("password of 512 bytes or more" in b.stderr(), "no log line says why:\n"
          + confabtest.tail(b.stderr()))


def dash_t(name, users_file):
    d = os.path.join(suite.tmp, name)
    os.makedirs(d)
    sections = {"ws": {"listen": "127.0.0.1:0"}, "static": {}}
    if users_file is not None:
        sections["static"]["users_file"] = users_file
    cfg = write_config(d, {"node_id": "t", "plugins": [WS_SO, STATIC_SO]}, sections)
    r = run_confabd(["-t", "-c", cfg])
    check(r.code == 1, "confabd -t exited %s, want 1\n%s" % (r.code, r.describe()))
    lines = [l for l in r.stderr.splitlines() if "[static] users_file" in l]
    check(len(lines) == 1, "want one line naming [static] users_file, got %d\n%s"
          % (len(lines), r.describe()))
    check(not confabtest.sanitizer_lines(r.stderr), "sanitizer report\n" + r.describe())
    note(lines[0].strip())
    return lines[0]


@suite.test
def dash_t_refuses_a_missing_users_file():
    """users_file unset, or naming no file: `confabd -t` exits 1 with one line naming [static] users_file."""
    dash_t("unset", None)
    line = dash_t("missing", os.path.join(suite.tmp, "no-such-users"))
    check("no-such-users" in line, "the line does not name the file: %r" % line)


@suite.test
def dash_t_refuses_a_malformed_line_with_its_number():
    """A malformed line (3), a bad hash (4), a bad name, a duplicate, a guest- name: -t exits 1
    naming the file's line."""
    good = "alice:%s\n" % hash_of("alice")
    cases = {
        "no-hash": ("# c\n\n" + "bob\n", 3),
        "bad-hash": ("# c\n\n" + good + "bob:$1$abc$def\n", 4),
        "bad-name": (good + "b o b:%s\n" % hash_of("alice"), 2),
        "twice": (good + "# again\n" + good, 3),
        "empty-pattern": (good + "tina:%s:team-*,,x\n" % hash_of("alice"), 2),
        "guest-name": (good + "Guest-1:%s\n" % hash_of("alice"), 2),
    }
    for name, (text, lineno) in cases.items():
        path = write_text(suite.tmp, name + "-users", text)
        line = dash_t(name, path)
        check("%s:%d:" % (path, lineno) in line,
              "%s: the line does not name %s:%d: %r" % (name, path, lineno, line))


@suite.test
def dash_t_accepts_a_good_file():
    """A good users file with comments, blank lines and patterns passes `confabd -t`."""
    d = os.path.join(suite.tmp, "good")
    os.makedirs(d)
    path = write_text(d, "users", "  # comment\n\n" + users_text("alice", "bob", "tina"))
    cfg = write_config(d, {"node_id": "t", "plugins": [WS_SO, STATIC_SO]},
                       {"ws": {"listen": "127.0.0.1:0"}, "static": {"users_file": path}})
    r = run_confabd(["-t", "-c", cfg])
    check(r.code == 0, "confabd -t exited %s, want 0\n%s" % (r.code, r.describe()))


if __name__ == "__main__":
    suite.main()
