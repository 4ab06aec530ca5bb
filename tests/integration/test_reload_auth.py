#!/usr/bin/python3
"""The auth plugins take part in a reload (SIGHUP or `confabctl reload`,
issue #12): a changed `static` users file or `jwt` key applies to the next
clients while open sessions stay; a bad one refuses the whole reload with
the one error line `confabd -t` gives, and the node keeps what it runs.

SPDX-License-Identifier: MIT
"""
import os
import re
import signal
import subprocess
import time

import statictest
from confabtest import (CONFABCTL, QUICK_EXIT, RECV_TIMEOUT, Suite, WS_SO, PLUGIN_BUILD_DIR,
                        check, note, run_confabd, tail, write_config, write_text)
from jwttest import KeyPair, token
from statictest import PW, basic, hash_of, refused_http, users_text

suite = Suite("test_reload_auth", watchdog=300, needs=[("mkpasswd", "whois")])
STATIC_SO = os.path.join(PLUGIN_BUILD_DIR, "static", ".libs", "static.so")
JWT_SO = os.path.join(PLUGIN_BUILD_DIR, "jwt", ".libs", "jwt.so")
OLD_SECRET = "the-secret-before-the-rotation-0123"
NEW_SECRET = "the-secret-after-the-rotation-45678"


class Node:
    """A broker whose broker.ini a test rewrites before a reload."""

    def __init__(self, name, chain, sections):
        self.sock = os.path.join(suite.tmp, name + ".sock")
        self.broker_keys = {"plugins": [WS_SO] + chain, "allow_anonymous": False,
                            "login_failures": 1000, "control_socket": self.sock}
        self.sections = sections
        self.b = suite.broker(name, broker=self.broker_keys, sections=sections)

    def start(self):
        self.b.start()
        return self

    @property
    def port(self):
        return self.b.port

    def rewrite(self, section, **changes):
        """broker.ini again, with `changes` in [section] (None: key removed)."""
        kv = dict(self.sections[section])
        for k, v in changes.items():
            if v is None:
                kv.pop(k, None)
            else:
                kv[k] = v
        self.sections = dict(self.sections, **{section: kv})
        secs = {"ws": {"listen": "127.0.0.1:0"}}
        secs.update(self.sections)
        write_config(self.b.dir, dict({"node_id": self.b.name}, **self.broker_keys), secs)

    def sighup(self, want):
        """SIGHUP, then the first log line after it matching `want`, and
        the log written since the signal up to that line."""
        since = len(self.b.stderr())
        self.b.send_signal(signal.SIGHUP)
        return self.wait_log(want, since)

    def wait_log(self, want, since):
        deadline = time.monotonic() + RECV_TIMEOUT
        while True:
            text = self.b.stderr()[since:]
            m = re.search(want, text)
            end = text.find("\n", m.start()) if m else -1
            if end >= 0:  # whole lines only: the log may be being written
                return text[text.rfind("\n", 0, m.start()) + 1:end], text[:end + 1]
            check(time.monotonic() < deadline, "%s: no log line matching %r within %.0fs:\n%s"
                  % (self.b.name, want, RECV_TIMEOUT, tail(self.b.stderr())))
            time.sleep(0.05)

    def ctl_reload(self):
        p = subprocess.run([CONFABCTL, "-s", self.sock, "reload"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=QUICK_EXIT)
        return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


def error_lines(text):
    return [l for l in text.splitlines() if " error " in l]


def one_error_naming(node, text, *names):
    """`text` (the log of one reload) holds exactly one error line, naming
    each of `names`, and the core's warning that it refused the reload."""
    errors = error_lines(text)
    check(len(errors) == 1, "%s: want one error line for the refused reload, got %d:\n%s"
          % (node.b.name, len(errors), text))
    for name in names:
        check(name in errors[0], "%s: the error line does not name %r: %r"
              % (node.b.name, name, errors[0]))
    check("reload refused" in text, "%s: no 'reload refused' line:\n%s" % (node.b.name, text))
    note("logged: " + errors[0].strip())


async def admitted(node, user, query="", headers=None):
    """A Client welcomed as `user`."""
    c = await statictest.admitted(node.port, user, query, headers)
    check(c.user == user, "%s: welcomed as %r, want %r" % (node.b.name, c.user, user))
    return c


async def refused_401(node, what, query="", headers=None):
    await refused_http(node.port, "%s: %s" % (node.b.name, what), 401, query, headers)


async def still_chats(old, new, room):
    """The session opened before the reload is up: a client admitted after
    it gets what the old one says."""
    await new.join(room)
    await old.say(room, "still here after the reload")
    await new.expect("message", room=room, body="still here after the reload")


def users_file(name, *users):
    return write_text(suite.tmp, name + "-users", users_text(*users))


# ---- static --------------------------------------------------------------

st = Node("st", [STATIC_SO], {"static": {"users_file": users_file("st", "alice", "bob")}})


@suite.test
async def static_a_user_added_is_admitted_and_a_removed_one_refused_after_sighup():
    """carol added, bob removed, SIGHUP: carol is welcomed, bob refused 401, alice's open session chats on."""
    st.start()
    alice = await admitted(st, "alice", headers=basic("alice", PW["alice"]))
    await alice.join("lobby")
    await refused_401(st, "carol before the reload", headers=basic("carol", PW["carol"]))
    users_file("st", "alice", "carol")
    line, _ = st.sighup(r"reloaded 2 users from ")
    note("logged: " + line.strip())
    carol = await admitted(st, "carol", headers=basic("carol", PW["carol"]))
    await refused_401(st, "bob after the reload", headers=basic("bob", PW["bob"]))
    await still_chats(alice, carol, "lobby")


@suite.test
async def static_a_broken_users_file_on_sighup_refuses_the_reload_with_one_error_line():
    """A bad line 2 on SIGHUP: one error line naming FILE:2, the users before still admitted, sessions up."""
    st.start()
    carol = await admitted(st, "carol", headers=basic("carol", PW["carol"]))
    await carol.join("lobby")
    path = write_text(suite.tmp, "st-users", "alice:%s\nthis line is broken\n" % hash_of("alice"))
    _, text = st.sighup(r"reload refused")
    one_error_naming(st, text, path + ":2:", "[static] users_file")
    dash_t = run_confabd(["-t", "-c", st.b.config])
    check(dash_t.code == 1 and [l.split(" error ", 1)[1] for l in error_lines(dash_t.stderr)]
          == [error_lines(text)[0].split(" error ", 1)[1]],
          "confabd -t does not give the reload's error line:\n%s\n%s" % (dash_t.describe(), text))
    again = await admitted(st, "carol", headers=basic("carol", PW["carol"]))  # not in the bad file
    await still_chats(carol, again, "lobby")
    users_file("st", "alice", "carol")


@suite.test
async def static_confabctl_reload_applies_a_good_file_and_prints_the_error_of_a_bad_one():
    """`confabctl reload`: a bad file exits 1 printing FILE:LINE, nothing changes; a good one exits 0 and applies."""
    st.start()
    path = write_text(suite.tmp, "st-users", users_text("alice", "bob") + "carol\n")  # line 5
    since = len(st.b.stderr())
    code, out = st.ctl_reload()
    check(code == 1 and path + ":5:" in out,
          "confabctl reload of a bad file: exit %d, want 1 and %s:5: in %r" % (code, path, out))
    note("confabctl: " + out.strip())
    _, text = st.wait_log(r"reload refused", since)
    one_error_naming(st, text, path + ":5:")
    await refused_401(st, "bob (in the refused file)", headers=basic("bob", PW["bob"]))

    users_file("st", "alice", "bob")
    code, out = st.ctl_reload()
    check(code == 0, "confabctl reload of a good file: exit %d %r" % (code, out))
    await admitted(st, "bob", headers=basic("bob", PW["bob"]))
    await refused_401(st, "carol (no longer listed)", headers=basic("carol", PW["carol"]))


# ---- jwt -------------------------------------------------------------------

SECRET_FILE = write_text(suite.tmp, "jwt.secret", OLD_SECRET + "\n")
RSA = KeyPair.rsa()
RSA_PEM = write_text(suite.tmp, "rsa.pub.pem", RSA.public_pem.decode())

jw = Node("jw", [JWT_SO], {"jwt": {"secret_file": SECRET_FILE}})
jr = Node("jr", [JWT_SO], {"jwt": {"public_key_file": RSA_PEM}})


def hs256(sub, secret):
    return "token=" + token({"sub": sub, "exp": int(time.time()) + 600}, "HS256", secret)


@suite.test
async def jwt_a_rotated_secret_file_applies_on_sighup_and_open_sessions_stay():
    """secret_file rotated, SIGHUP: the new secret's tokens are welcomed, the old one's refused 401, sessions stay."""
    jw.start()
    old = await admitted(jw, "olga", query=hs256("olga", OLD_SECRET))
    await old.join("lobby")
    write_text(suite.tmp, "jwt.secret", NEW_SECRET + "\n")
    line, _ = jw.sighup(r"reloaded: accepting HS256 tokens")
    note("logged: " + line.strip())
    nina = await admitted(jw, "nina", query=hs256("nina", NEW_SECRET))
    await refused_401(jw, "a token of the old secret", query=hs256("olga", OLD_SECRET))
    await still_chats(old, nina, "lobby")


@suite.test
async def jwt_a_public_key_file_that_is_not_a_key_refuses_the_reload_and_the_old_key_works():
    """public_key_file overwritten with no key, SIGHUP: one error line naming it; RS256 tokens still welcomed."""
    jr.start()
    rs = "token=" + token({"sub": "rita", "exp": int(time.time()) + 600}, "RS256", RSA)
    rita = await admitted(jr, "rita", query=rs)
    await rita.join("lobby")
    write_text(suite.tmp, "rsa.pub.pem", "-----BEGIN PUBLIC KEY-----\nnot a key\n")
    _, text = jr.sighup(r"reload refused")
    one_error_naming(jr, text, "[jwt] public_key_file", RSA_PEM)
    again = await admitted(jr, "rita", query=rs)
    await still_chats(rita, again, "lobby")
    write_text(suite.tmp, "rsa.pub.pem", RSA.public_pem.decode())


# ---- all or none -------------------------------------------------------------

both = Node("both", [STATIC_SO, JWT_SO],
            {"static": {"users_file": users_file("both", "alice")},
             "jwt": {"secret": OLD_SECRET}})


@suite.test
async def a_bad_jwt_section_refuses_a_good_static_change_too():
    """[static] adds carol but [jwt] is broken: the reload is refused whole (carol still 401); fixed, it applies."""
    both.start()
    users_file("both", "alice", "carol")
    both.rewrite("jwt", secret=None, secret_file=os.path.join(suite.tmp, "no-such-secret"))
    _, text = both.sighup(r"reload refused")
    one_error_naming(both, text, "[jwt] secret_file", "no-such-secret")
    await refused_401(both, "carol (the reload was refused)", headers=basic("carol", PW["carol"]))
    await admitted(both, "olga", query=hs256("olga", OLD_SECRET))

    both.rewrite("jwt", secret_file=None, secret=NEW_SECRET)
    line, _ = both.sighup(r"reloaded 2 users from ")
    note("fixed: " + line.strip())
    await admitted(both, "carol", headers=basic("carol", PW["carol"]))
    await admitted(both, "nina", query=hs256("nina", NEW_SECRET))


@suite.test
def every_node_exits_0_on_sigterm_without_sanitizer_reports():
    """After the reloads, SIGTERM: each node exits 0 with no sanitizer report."""
    for node in (st, jw, jr, both):
        if node.b.proc is None:
            continue
        node.b.stop()
        node.b.check_clean_exit()


if __name__ == "__main__":
    suite.main()
