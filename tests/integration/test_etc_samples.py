#!/usr/bin/python3
"""The deployment samples in etc/ pass their own tools' checks: haproxy -c
on haproxy.cfg, keepalived -t on keepalived.conf, systemd-analyze verify on
confabd.service. Each file is checked as shipped, except where noted in the
output (a path that only exists once installed). A tool that is not
installed is reported and its check skipped; with none of them the script
is skipped (exit 77). tools/install-deps installs haproxy and keepalived.

SPDX-License-Identifier: MIT
"""
import os
import re
import shutil
import subprocess
import sys

from confabtest import CONFABD, TOP_SRCDIR, Suite, check, note

suite = Suite("test_etc_samples", watchdog=120)


def etc(name):
    return os.path.join(TOP_SRCDIR, "etc", name)


def tool(name):
    return shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/sbin/" + name) if os.access(p, os.X_OK)), None)


def run(argv, timeout=60):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout,
                       start_new_session=True)   # keepalived -t signals its own group
    return p.returncode, p.stdout.decode("utf-8", "replace")


HAPROXY, KEEPALIVED, SYSTEMD_ANALYZE = tool("haproxy"), tool("keepalived"), tool("systemd-analyze")


@suite.test
def haproxy_accepts_the_shipped_haproxy_cfg():
    """haproxy -c -f etc/haproxy.cfg: "Configuration file is valid", exit 0."""
    if HAPROXY is None:
        note("haproxy is not installed: check skipped")
        return
    code, out = run([HAPROXY, "-c", "-f", etc("haproxy.cfg")])
    check(code == 0, "haproxy -c exit %d:\n%s" % (code, out))
    note(out.strip().splitlines()[-1] if out.strip() else "valid")


# Debian 12's keepalived 2.2.7 kills itself with SIGTERM at the end of every
# config test that uses script security (keepalived issue 2617, fixed in
# 2.2.8): exit 143 and no verdict, valid file or not.
KEEPALIVED_SCRIPT_SECURITY = re.compile(r"(?m)^\s*(enable_script_security|script_user .*)$")


@suite.test
def keepalived_accepts_the_shipped_keepalived_conf():
    """keepalived -t -f etc/keepalived.conf reports nothing wrong. Where its
    config test cannot run with script security (keepalived 2.2.7), the
    file is checked without those two lines and the output says so."""
    if KEEPALIVED is None:
        note("keepalived is not installed: check skipped")
        return
    code, out = run([KEEPALIVED, "-t", "-f", etc("keepalived.conf")])
    if code == 0 and not out.strip():
        note("keepalived -t: exit 0, nothing reported")
        return
    if code == -15 and not out.strip():
        with open(etc("keepalived.conf")) as f:
            text = f.read()
        text, n = KEEPALIVED_SCRIPT_SECURITY.subn("", text)
        check(n == 2, "keepalived -t was killed by SIGTERM and the file has %d script "
              "security lines (want 2)" % n)
        path = os.path.join(suite.tmp, "keepalived.conf")
        with open(path, "w") as f:
            f.write(text)
        code, out = run([KEEPALIVED, "-t", "-f", path])
        # Without script security it warns about exactly that, which is
        # why the shipped file has it.
        lines = [l for l in out.splitlines() if l.strip() and
                 "scripts are being executed but script_security not enabled" not in l]
        check(not lines, "keepalived -t (without script security) reports:\n%s" % out)
        note("this keepalived's config test is killed by SIGTERM with script security "
             "(keepalived 2.2.7, issue 2617): checked without enable_script_security and "
             "script_user: nothing else reported (exit %d)" % code)
        return
    check(False, "keepalived -t exit %d:\n%s" % (code, out))


@suite.test
def systemd_analyze_verifies_the_shipped_unit():
    """systemd-analyze verify etc/confabd.service, with ExecStart pointing
    at the built confabd (the installed path does not exist here)."""
    if SYSTEMD_ANALYZE is None:
        note("systemd-analyze is not installed: check skipped")
        return
    with open(etc("confabd.service")) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^ExecStart=/usr/local/bin/confabd ", "ExecStart=%s " % CONFABD, text)
    check(n == 1, "etc/confabd.service: no ExecStart=/usr/local/bin/confabd line")
    d = os.path.join(suite.tmp, "unit")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "confabd.service")
    with open(path, "w") as f:
        f.write(text)
    code, out = run([SYSTEMD_ANALYZE, "verify", path])
    check(code == 0 and "confabd.service" not in out,
          "systemd-analyze verify exit %d:\n%s" % (code, out))
    m = re.search(r"(?m)^TimeoutStopSec=(\d+)s$", text)
    check(m and int(m.group(1)) >= 5 + 10 + 3 + 5,
          "TimeoutStopSec must cover drain_grace 5 s + drain_window 10 s + 3 s of closing, "
          "with margin: %s" % (m.group(0) if m else "not set"))
    note("systemd-analyze verify: exit 0; %s" % m.group(0))


def shipped_units():
    """The source tree's top and the units it ships: etc/confabd.service and
    the Debian package's, when there is a debian/."""
    top = os.path.dirname(os.path.dirname(etc("confabd.service")))
    units = [etc("confabd.service"), os.path.join(top, "debian", "confab.confabd.service")]
    if not os.path.exists(units[1]):
        units.pop()  # the release tarball has no debian/ (distcheck)
    return top, units


@suite.test
def both_units_give_the_drain_time_to_finish():
    """etc/confabd.service and the Debian package's unit: TimeoutStopSec
    covers drain_grace 5 s + drain_window 10 s + 3 s of closing, with margin
    (else systemd kills a draining node)."""
    top, units = shipped_units()
    for path in units:
        with open(path) as f:
            m = re.search(r"(?m)^TimeoutStopSec=(\d+)s$", f.read())
        check(m and int(m.group(1)) >= 5 + 10 + 3 + 5, "%s: %s" % (
            os.path.relpath(path, top), m.group(0) if m else "no TimeoutStopSec"))
    note("%s wait long enough" % " and ".join(os.path.relpath(p, top) for p in units))


@suite.test
def both_units_wait_for_ready_and_watch_the_loop():
    """etc/confabd.service and the Debian package's unit: Type=notify with
    NotifyAccess=main and a WatchdogSec (confabd pings from its loop), and
    ExecReload sending SIGHUP (confabd reloads broker.ini on it)."""
    top, units = shipped_units()
    for path in units:
        with open(path) as f:
            text = f.read()
        name = os.path.relpath(path, top)
        for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30s"):
            check(re.search(r"(?m)^%s$" % line, text), "%s: no %s line" % (name, line))
        check(re.search(r"(?m)^ExecReload=/bin/kill -HUP \$MAINPID$", text),
              "%s: no ExecReload sending SIGHUP to confabd" % name)
    note("%s: Type=notify, WatchdogSec=30s" % " and ".join(os.path.relpath(p, top) for p in units))


if __name__ == "__main__":
    if not (HAPROXY or KEEPALIVED or SYSTEMD_ANALYZE):
        print("SKIP: none of haproxy, keepalived, systemd-analyze is installed "
              "(tools/install-deps installs the first two)")
        sys.exit(77)
    suite.main()
