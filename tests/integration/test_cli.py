#!/usr/bin/python3
"""confabd's command line: -V, -h, unknown options, -t and a missing -c file.

SPDX-License-Identifier: MIT
"""
import os

from confabtest import (Suite, WS_SO, VERSION, check, note, listening, reserve_port,
                        run_confabd, write_config)

suite = Suite("test_cli", watchdog=120)


def good_config(port):
    d = os.path.join(suite.tmp, "good-%d" % port)
    os.makedirs(d)
    return write_config(d, {"node_id": "cli", "plugins": WS_SO},
                        {"ws": {"listen": "127.0.0.1:%d" % port}})


@suite.test
def version_flag_prints_the_version():
    """confabd -V prints 0.1.0 on stdout and exits 0."""
    r = run_confabd(["-V"])
    check(r.code == 0, "want exit 0: " + r.describe())
    check(VERSION in r.stdout, "stdout does not name version %s: %s" % (VERSION, r.describe()))


@suite.test
def help_flag_prints_usage_with_c_and_t():
    """confabd -h prints a usage text naming -c and -t on stdout and exits 0."""
    r = run_confabd(["-h"])
    check(r.code == 0, "want exit 0: " + r.describe())
    out = r.stdout
    check("usage" in out.lower(), "no usage text on stdout: " + r.describe())
    check("-c" in out and "-t" in out, "usage does not mention -c and -t: " + r.describe())


@suite.test
def unknown_option_fails_with_usage():
    """confabd -Z exits non-zero and prints the usage."""
    r = run_confabd(["-Z"])
    check(not r.timed_out and r.code not in (0, None), "want a non-zero exit: " + r.describe())
    both = r.stdout + r.stderr
    check("usage" in both.lower() and "-c" in both, "no usage text: " + r.describe())


@suite.test
def check_mode_accepts_a_good_config_without_opening_the_port():
    """confabd -t -c good.ini exits 0 and never listens on [ws] listen."""
    # A port held (never listening) for the whole check: nothing else can
    # listen there, so whatever does is confabd's.
    port, held = reserve_port()
    try:
        cfg = good_config(port)
        r = run_confabd(["-t", "-c", cfg], port=port)
        check(not r.timed_out, "-t did not exit (listening on %d at the time: %s): %s"
              % (port, r.listening_at_timeout, r.describe()))
        check(r.code == 0, "want exit 0: " + r.describe())
        check(not listening(port), "something listens on %d after -t" % port)
    finally:
        held.close()
    note("-t exited 0 and port %d stayed free" % port)


@suite.test
def check_mode_accepts_port_0():
    """[ws] listen = 127.0.0.1:0 (a free port, picked at start) passes confabd -t."""
    r = run_confabd(["-t", "-c", good_config(0)])
    check(r.code == 0, "want exit 0: " + r.describe())


@suite.test
def missing_config_file_is_one_line_naming_it():
    """confabd -c missing.ini exits non-zero at once with one line naming the file."""
    missing = os.path.join(suite.tmp, "missing.ini")
    for args in (["-c", missing], ["-t", "-c", missing]):
        r = run_confabd(args)
        check(not r.timed_out and r.code not in (0, None), "want a non-zero exit: " + r.describe())
        naming = [l for l in r.stderr.splitlines() if missing in l]
        check(len(naming) == 1, "want exactly one stderr line naming %s: %s" % (missing, r.describe()))
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(len(lines) <= 2, "want one line (plus at most a summary): " + r.describe())
        note("%s: %s" % (" ".join(args[:-1]), naming[0].strip()))


if __name__ == "__main__":
    suite.main()
