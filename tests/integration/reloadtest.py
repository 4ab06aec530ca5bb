"""What the reload tests share (issue 12): SIGHUP a running node and read
the log lines it caused, ask `confabd -t` what it says of the node's file
(whose error line a refused reload must log word for word), write a
backplane node's file again with some keys changed, and two clients that
chat through a node.

SPDX-License-Identifier: MIT
"""
import re
import subprocess

from confabtest import CONFABD, QUICK_EXIT, Client, check

ERROR_LINE = re.compile(r"^\S+ error ", re.M)


def sighup(node, expect):
    """SIGHUP; the log lines it caused, once `expect` is among them."""
    return node.reload(expect)


def check_t(node):
    """What `confabd -t` says of the node's file now: (status, output)."""
    p = subprocess.run([CONFABD, "-t", "-c", node.config], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=QUICK_EXIT)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def t_error(node):
    """The message of the one error line `confabd -t` prints for the node's
    file now (what follows the line's "[who] "); it must refuse the file."""
    code, out = check_t(node)
    check(code == 1, "confabd -t passed a broken file: %s" % out)
    lines = [l for l in out.splitlines() if " error " in l]
    check(len(lines) == 1, "confabd -t printed %d error lines:\n%s" % (len(lines), out))
    return lines[0].split("] ", 1)[1]


def restarts(log, who):
    """The lines of `log` where plugin `who` warns that a change needs a restart."""
    return re.findall(r"^\S+ warn +\[%s\] .*needs a restart.*$" % re.escape(who), log, re.M)


def rewrite(nodes, name, section, keys=None, broker_keys=None):
    """Node `name` of `nodes` (a redistest.Cluster or clustertest.ClusterNodes):
    its broker.ini as it started, with these keys of [section] and [broker]
    changed."""
    spec = [s for s in nodes.specs if s[0] == name][0]
    secs = {k: dict(v) for k, v in spec[2].items()}
    secs[section].update(keys or {})
    nodes[name].rewrite(broker=dict(spec[1], **(broker_keys or {})), sections=secs)


def reload_clean(nodes, name, section, what):
    """The file node `name` started with, read again: no warning, no error."""
    rewrite(nodes, name, section)
    log = sighup(nodes[name], "reloaded ")
    check(not restarts(log, section) and not ERROR_LINE.search(log),
          "%s: reloading the file the node started with logged:\n%s" % (what, log))


async def chat(a, b, room, what):
    """a and b, both in `room`, each say something the other hears."""
    await a.say(room, "from a " + what)
    await b.expect("message", room=room, body="from a " + what)
    await b.say(room, "from b " + what)
    await a.expect("message", room=room, body="from b " + what)


async def chatting(node, room):
    """Two clients of `node` in `room`, which have chatted once."""
    a = await Client.connect(node.port, name="a-" + room)
    b = await Client.connect(node.port, name="b-" + room)
    await a.join(room)
    await b.join(room)
    await chat(a, b, room, "before the reload")
    return a, b


async def refused_whole(nodes, name, section, key, bad):
    """Node `name` of `nodes` (max_rooms_per_session 2) gets `key` = `bad`
    in [section], and max_rooms_per_session = 1 beside it, by SIGHUP:
    exactly one error line, the one `confabd -t` prints for the file, then
    "reload refused"; a session may still join a second room, not a third;
    two clients chat on. Then the file it started with is reloaded."""
    node = nodes[name]
    a, b = await chatting(node, "bad")
    rewrite(nodes, name, section, {key: bad}, {"max_rooms_per_session": 1})
    t_line = t_error(node)
    check("[%s] %s: '%s'" % (section, key, bad) in t_line, "confabd -t said %r" % t_line)
    log = sighup(node, "reload refused")
    errors = ERROR_LINE.findall(log)
    check(len(errors) == 1, "want exactly one error line, got %d:\n%s" % (len(errors), log))
    check(t_line in log, "the reload's error is not confabd -t's line %r:\n%s" % (t_line, log))
    check("reloaded" not in log, "a refused reload says reloaded:\n%s" % log)
    await a.join("second")     # max_rooms_per_session is still 2
    await a.error({"type": "join", "room": "third"}, "forbidden")
    await chat(a, b, "bad", "after the refused reload")
    reload_clean(nodes, name, section, "after the bad value")
