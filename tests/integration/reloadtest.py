"""What the reload tests share (issue 12): SIGHUP a running node and read
the log lines it caused, and ask `confabd -t` what it says of the node's
file, whose error line a refused reload must log word for word.

SPDX-License-Identifier: MIT
"""
import re
import signal
import subprocess
import time

from confabtest import CONFABD, QUICK_EXIT, RECV_TIMEOUT, check

ERROR_LINE = re.compile(r"^\S+ error ", re.M)


def wait_log(node, start, needle, timeout=RECV_TIMEOUT):
    """The log written after offset `start` once it holds `needle`."""
    deadline = time.monotonic() + timeout
    while True:
        new = node.stderr()[start:]
        if needle in new:
            return new
        check(time.monotonic() < deadline, "%s: no %r in the log within %.0f s; it has:\n%s"
              % (node.name, needle, timeout, new[-3000:]))
        time.sleep(0.05)


def sighup(node, expect):
    """SIGHUP; the log lines it caused, once `expect` is among them."""
    start = len(node.stderr())
    node.send_signal(signal.SIGHUP)
    return wait_log(node, start, expect)


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
