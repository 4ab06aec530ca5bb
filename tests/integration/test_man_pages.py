#!/usr/bin/python3
"""The man pages: each renders without a warning (groff -ww), and
broker.ini(5) names every key of docs/configuration.md's tables, so that
the two cannot drift apart unnoticed. (tools/test-packages checks the key
list again on the installed package.)

SPDX-License-Identifier: MIT
"""
import glob
import os
import re
import shutil
import subprocess

from confabtest import Suite, check, note, skip

suite = Suite("test_man_pages", watchdog=60)
TOP = os.environ.get("CONFAB_TOP_SRCDIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
PAGES = sorted(glob.glob(os.path.join(TOP, "man", "*.[1-8]")))


@suite.test
def every_page_renders_without_warnings():
    """groff -ww -z -man on each page prints nothing and exits 0."""
    groff = shutil.which("groff")
    if groff is None:
        skip("groff not found (apt-get install groff-base)")
    check(PAGES, "no man pages under %s/man" % TOP)
    for page in PAGES:
        r = subprocess.run([groff, "-ww", "-z", "-man", page], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0 and not r.stderr.strip(),
              "%s: groff said %r" % (os.path.basename(page), r.stderr.strip()[:500]))
    note("%d pages: %s" % (len(PAGES), ", ".join(os.path.basename(p) for p in PAGES)))


@suite.test
def broker_ini_5_names_every_documented_key():
    """Each `key` of docs/configuration.md's tables is a .B line of broker.ini(5)."""
    with open(os.path.join(TOP, "docs", "configuration.md"), encoding="utf-8") as f:
        keys = re.findall(r"(?m)^\| `([a-z_]+)` \|", f.read())
    with open(os.path.join(TOP, "man", "broker.ini.5"), encoding="utf-8") as f:
        page = set(re.findall(r"(?m)^\.B ([a-z_]+)$", f.read()))
    missing = [k for k in keys if k not in page]
    check(keys, "no keys found in docs/configuration.md")
    check(not missing, "man/broker.ini.5 lacks %s (documented in docs/configuration.md)"
          % ", ".join(missing))
    note("%d keys, all in broker.ini(5)" % len(keys))


if __name__ == "__main__":
    suite.main()
