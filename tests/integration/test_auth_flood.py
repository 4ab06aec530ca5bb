#!/usr/bin/python3
"""Password checks cannot be used against the service (docs/security.md,
"Authentication"): a flood of wrong passwords neither keeps a real user out
nor keeps the node busy after it stops; an address (and a user name, for
addresses that failed) with too many failed logins is refused with HTTP 429
before any hashing; an address may have one check awaited at a time.

Brokers with the `static` plugin and a yescrypt hash, with the shipped
defaults of every bound: `flood` with mkpasswd's default cost (about 20 ms
a check on the machine this was written on), `costly` with -R 7 (about
0.1 s, what the issue measured elsewhere), `locks` fresh for the lockout. The flood runs in a
child process so that the test's own measurements are not slowed by it;
its clients bind to 127.0.0.2..127.0.0.9 to be eight addresses, the real
user logs in from 127.0.0.10. CPU is the broker's utime + stime from
/proc/PID/stat.

SPDX-License-Identifier: MIT
"""
import asyncio
import base64
import multiprocessing
import os
import random
import re
import subprocess
import time

import websockets
import websockets.exceptions

from confabtest import (Suite, WS_SO, PLUGIN_BUILD_DIR, RECV_TIMEOUT, SCALE,
                        check, note, write_text)

suite = Suite("test_auth_flood", watchdog=150, needs=[("mkpasswd", "whois")])
STATIC_SO = os.path.join(PLUGIN_BUILD_DIR, "static", ".libs", "static.so")

PASSWORD = "bob's right password"
FLOOD_ADDRS = ["127.0.0.%d" % i for i in range(2, 10)]
GOOD_ADDR = "127.0.0.10"
FLOOD_RATE = 800          # handshakes a second, all addresses together
FLOOD_SECS = 4.0
LOGIN_BOUND = 1.0 * SCALE  # the bound; the sanitizer build is slower
IDLE_AFTER = 2.0          # CPU is idle this long after the flood stops...
IDLE_WINDOW = 1.0         # ... measured over this window
IDLE_CPU = 0.05           # CPU seconds in that window that still count as idle
CLK_TCK = os.sysconf("SC_CLK_TCK")


def mkpasswd(password, *cost):
    out = subprocess.run(["mkpasswd", "-m", "yescrypt"] + list(cost) + [password],
                         stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(out.returncode == 0, "mkpasswd -m yescrypt failed: %s" % out.stderr.decode())
    return out.stdout.decode().strip()


def static_broker(name, *cost):
    users = write_text(suite.tmp, name + "-users", "bob:%s\n" % mkpasswd(PASSWORD, *cost))
    return suite.broker(name, broker={"plugins": [WS_SO, STATIC_SO], "allow_anonymous": False},
                        sections={"static": {"users_file": users}})


broker = static_broker("flood")
costly = static_broker("costly", "-R", "7")
locks = static_broker("locks")      # a fresh one: the floods locked the name bob
names = static_broker("names")      # and one more for the name's own lockout


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime, stime


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def handshake(port, auth):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: confab.v1\r\nAuthorization: %s\r\n\r\n"
            % (port, key, auth)).encode()


async def raw_status(port, addr, auth, timeout=RECV_TIMEOUT):
    """Send one handshake from `addr`; the HTTP status the broker answers
    (an int), or a word for what happened instead."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(addr, 0)), timeout)
    except (OSError, asyncio.TimeoutError):
        return "connect failed"
    try:
        writer.write(handshake(port, auth))
        data = await asyncio.wait_for(reader.readline(), timeout)
        m = re.match(rb"HTTP/1\.1 (\d{3})", data)
        return int(m.group(1)) if m else "hang-up"
    except asyncio.TimeoutError:
        return "timeout"
    except OSError:
        return "reset"
    finally:
        writer.transport.abort()


# ---- the flood, in a child process --------------------------------------

async def flood(port, rate, seconds):
    """`rate` wrong-password handshakes a second for `seconds`, spread over
    FLOOD_ADDRS, for bob and for names nobody has; at most 200 in flight
    per address. Returns (statuses {status: count}, started, elapsed)."""
    statuses, inflight = {}, {a: 0 for a in FLOOD_ADDRS}
    tasks = set()

    async def one(addr, user):
        inflight[addr] += 1
        try:
            st = await raw_status(port, addr, basic(user, "guess-%d" % random.getrandbits(32)),
                                  timeout=3.0)
        finally:
            inflight[addr] -= 1
        statuses[st] = statuses.get(st, 0) + 1

    t0 = time.monotonic()
    started = skipped = 0
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= seconds:
            break
        while started + skipped < int(rate * elapsed):
            addr = FLOOD_ADDRS[(started + skipped) % len(FLOOD_ADDRS)]
            if inflight[addr] >= 200:
                skipped += 1
                continue
            user = "bob" if random.random() < 0.5 else "u%d" % random.getrandbits(24)
            t = asyncio.ensure_future(one(addr, user))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            started += 1
        await asyncio.sleep(0.005)
    if tasks:
        await asyncio.wait(tasks, timeout=4.0)
    for t in tasks:
        t.cancel()
    if skipped:
        statuses["not sent: 200 in flight"] = skipped
    return statuses, started, time.monotonic() - t0


def flood_child(port, rate, seconds, conn):
    try:
        conn.send(asyncio.run(flood(port, rate, seconds)))
    finally:
        conn.close()
        os._exit(0)


def start_flood(port, rate, seconds):
    parent, child = multiprocessing.Pipe(duplex=False)
    p = multiprocessing.get_context("fork").Process(target=flood_child,
                                                    args=(port, rate, seconds, child))
    p.start()
    child.close()
    return p, parent


# ---- the real user -------------------------------------------------------

async def good_login(port):
    """bob's right password from GOOD_ADDR: seconds from connect to welcome."""
    t0 = time.monotonic()
    ws = await asyncio.wait_for(websockets.connect(
        "ws://127.0.0.1:%d/ws" % port, subprotocols=["confab.v1"],
        extra_headers={"Authorization": basic("bob", PASSWORD)}, local_addr=(GOOD_ADDR, 0),
        ping_interval=None, compression=None, open_timeout=RECV_TIMEOUT,
        close_timeout=2), RECV_TIMEOUT + 1)
    try:
        first = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        took = time.monotonic() - t0
    finally:
        await ws.close()
    check('"welcome"' in first and '"bob"' in first, "bob's login: first frame %r" % first)
    return took


async def flood_and_login(broker, login_bound=LOGIN_BOUND):
    broker.start()
    idle_login = await good_login(broker.port)
    note("bob's login with no flood: %.3f s" % idle_login)
    cpu0 = cpu_seconds(broker.pid)
    log0 = len(broker.stderr())
    proc, result = start_flood(broker.port, FLOOD_RATE, FLOOD_SECS)
    t0 = time.monotonic()
    try:
        logins = []
        for at in (0.5, 1.5, 2.5, 3.5):
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            logins.append(await good_login(broker.port))
        got = await asyncio.get_running_loop().run_in_executor(
            None, lambda: result.poll(FLOOD_SECS + 10) and result.recv())
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    check(got, "the flood process sent no result")
    t_stop = time.monotonic()
    statuses, started, elapsed = got
    cpu_flood = cpu_seconds(broker.pid) - cpu0
    note("flood: %d handshakes in %.1f s (%.0f a second) from %d addresses: %s"
         % (started, elapsed, started / elapsed, len(FLOOD_ADDRS),
            ", ".join("%s: %d" % kv for kv in sorted(statuses.items(), key=str))))
    note("bob's logins during the flood: %s s (bound %.1f s)"
         % (", ".join("%.3f" % t for t in logins), login_bound))
    note("broker CPU during the flood: %.2f s in %.1f s" % (cpu_flood, t_stop - t0))
    check(started / elapsed >= FLOOD_RATE / 2 / SCALE,
          "the flood reached only %.0f handshakes a second" % (started / elapsed))
    check(all(t <= login_bound for t in logins),
          "a login took longer than %.1f s during the flood: %s" % (login_bound, logins))
    wrong = {k: v for k, v in statuses.items() if k not in (401, 429, 503, "not sent: 200 in flight")}
    check(not wrong, "wrong passwords got answers other than 401/429/503: %s" % wrong)
    check(statuses.get(429, 0) > statuses.get(401, 0),
          "most of the flood should be refused with 429 before hashing: %s" % statuses)

    await asyncio.sleep(max(0.0, t_stop + IDLE_AFTER - time.monotonic()))
    c1 = cpu_seconds(broker.pid)
    await asyncio.sleep(IDLE_WINDOW)
    idle = cpu_seconds(broker.pid) - c1
    note("broker CPU from %.0f to %.0f s after the flood: %.3f s" % (IDLE_AFTER, IDLE_AFTER + IDLE_WINDOW, idle))
    check(idle <= IDLE_CPU, "the broker used %.3f s of CPU %.0f-%.0f s after the flood stopped; "
          "want at most %.2f (idle)" % (idle, IDLE_AFTER, IDLE_AFTER + IDLE_WINDOW, IDLE_CPU))

    log = broker.stderr()[log0:]
    refused = log.count("refused a connection from")
    denied = log.count("[static] denied")
    secs = time.monotonic() - t0
    note("log lines during and after the flood: %d 'refused a connection', %d 'denied'"
         % (refused, denied))
    check(refused <= secs + 2 and denied <= 2 * (secs + 2),
          "refusals are not rate-limited: %d 'refused' and %d 'denied' lines in %.0f s"
          % (refused, denied, secs))
    # With slow checks the flood may end before any address failed 5 times
    # (failing addresses share two places): then nothing is locked yet.
    locked = re.search(r"failed logins: address 127\.0\.0\.\d locked", log)
    if statuses.get(401, 0) >= 5 * len(FLOOD_ADDRS):
        check(locked, "no line says an address was locked:\n" + log[-2000:])
    note("an address was locked: %s" % ("yes" if locked else "not yet"))
    # bob is not locked out of his own account from his own address
    after = await good_login(broker.port)
    note("bob's login after the flood: %.3f s" % after)


@suite.test
async def a_real_user_logs_in_within_1_s_during_a_flood_and_cpu_is_idle_2_s_after():
    """800 wrong-password handshakes a second from 8 addresses for 4 s: bob's right password
    from a 9th address is welcomed within 1 s (at 0.5, 1.5, 2.5 and 3.5 s into the flood); the
    flood gets only 401/429/503; the broker's CPU is idle 2 s after the flood stops; refusals
    are logged at most about once a second."""
    await flood_and_login(broker)


@suite.test
async def the_same_with_a_yescrypt_hash_that_costs_0_1_s():
    """The same flood against a yescrypt hash made with mkpasswd -R 7 (about 0.1 s a check):
    the same bounds, except that bob's logins are only required within 3 s (measured: 0.1-0.7 s).
    At the flood's start 8 fresh addresses are indistinguishable from bob, and his check can
    wait behind theirs: 9 x 0.1 s on 2 cores, with nothing else running. On a machine shared
    with other builds that is not what the 1 s bound measures."""
    await flood_and_login(costly, login_bound=3.0 * SCALE)


@suite.test
async def an_address_with_too_many_failed_logins_gets_429_before_any_hashing():
    """From 127.0.0.11: 5 wrong passwords get 401; then every attempt, the right password too,
    gets 429 and costs no hashing (100 attempts cost less CPU than 10 checks would); another
    address logs in as bob; after the 1 s lock the right password gets in; one more failure
    locks for 2 s."""
    locks.start()
    addr, other = "127.0.0.11", "127.0.0.12"
    t = time.monotonic()
    for i in range(5):
        st = await raw_status(locks.port, addr, basic("bob", "wrong-%d" % i))
        check(st == 401, "wrong password %d: %s, want 401" % (i + 1, st))
    check_cost = (time.monotonic() - t) / 5
    st = await raw_status(locks.port, addr, basic("bob", "wrong-5"))
    check(st == 429, "after 5 failures: %s, want 429" % st)
    cpu0 = cpu_seconds(locks.pid)
    sts = [await raw_status(locks.port, addr, basic("u%d" % i, "x")) for i in range(100)]
    cpu = cpu_seconds(locks.pid) - cpu0
    note("5 checks took %.3f s each; 100 attempts while locked: %s, %.3f s of CPU"
         % (check_cost, sorted(set(sts), key=str), cpu))
    check(set(sts) <= {429}, "attempts while locked: %s, want only 429" % set(sts))
    # a yescrypt check costs >= 10 ms of CPU: 100 checks would be >= 1 s
    check(cpu < 0.5, "100 refused attempts cost %.3f s of CPU: were they hashed?" % cpu)
    st = await raw_status(locks.port, addr, basic("bob", PASSWORD))
    check(st == 429, "the right password from the locked address: %s, want 429" % st)
    st = await raw_status(locks.port, other, basic("bob", PASSWORD))
    check(st == 101, "the right password from %s: %s, want 101" % (other, st))
    await asyncio.sleep(1.2)
    st = await raw_status(locks.port, addr, basic("bob", PASSWORD))
    check(st == 101, "the right password 1.2 s later: %s, want 101 (the first lock is 1 s)" % st)
    st = await raw_status(locks.port, addr, basic("bob", "wrong-6"))
    check(st == 401, "a 6th wrong password after the lock: %s, want 401" % st)
    await asyncio.sleep(1.2)
    st = await raw_status(locks.port, addr, basic("bob", PASSWORD))
    check(st == 429, "1.2 s after the 6th failure: %s, want 429 (the lock doubled to 2 s)" % st)
    await asyncio.sleep(1.0)
    st = await raw_status(locks.port, addr, basic("bob", PASSWORD))
    check(st == 101, "2.2 s after the 6th failure: %s, want 101" % st)
    note("locked 1 s after 5 failures, 2 s after 6; another address was never locked out")


@suite.test
async def an_address_may_have_one_check_awaited_at_a_time():
    """Five handshakes at once from 127.0.0.13: one is checked (401), the others get 429 at once."""
    locks.start()
    sts = await asyncio.gather(*[raw_status(locks.port, "127.0.0.13", basic("bob", "w%d" % i))
                                 for i in range(5)])
    note("five at once: %s" % sorted(sts, key=str))
    check(set(sts) <= {401, 429} and 401 in sts, "answers %s, want 401 and 429s" % sts)
    check(429 in sts, "no handshake was refused for the pending bound: %s" % sts)


@suite.test
async def a_user_name_guessed_from_many_addresses_is_locked_for_those_addresses_only():
    """Five addresses guess bob's password once each: the name bob is locked (5 failures), so
    those addresses get 429 for bob, right password or not, while one of them may still try
    another name (401), and an address that never failed logs in as bob."""
    names.start()
    guessers = ["127.0.0.%d" % i for i in range(20, 25)]
    for a in guessers:
        st = await raw_status(names.port, a, basic("bob", "guess-from-" + a))
        check(st == 401, "%s's guess: %s, want 401" % (a, st))
    st = await raw_status(names.port, guessers[0], basic("bob", PASSWORD))
    check(st == 429, "bob's right password from a guesser: %s, want 429 (the name is locked)" % st)
    st = await raw_status(names.port, guessers[1], basic("carol", "x"))
    check(st == 401, "another name from a guesser: %s, want 401 (only bob is locked)" % st)
    st = await raw_status(names.port, "127.0.0.25", basic("bob", PASSWORD))
    check(st == 101, "bob from an address that never failed: %s, want 101" % st)
    note("5 guesses from 5 addresses lock bob for them (429), not for 127.0.0.25 (101)")
    check(re.search(r"user name bob locked for 1\.0 s", names.stderr()),
          "no line says the name was locked:\n" + names.stderr()[-1500:])


if __name__ == "__main__":
    suite.main()
