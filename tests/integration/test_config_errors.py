#!/usr/bin/python3
"""Every bad configuration is refused by `confabd -t -c FILE` and by
`confabd -c FILE`, with a non-zero exit, before any port opens, and with
one clear stderr line naming the file, the section and the key. A listen
port in use is the exception for -t: a warning, since -t runs beside the
live node that holds it.

SPDX-License-Identifier: MIT
"""
import os
import re
import shutil
import socket

from confabtest import (Suite, WS_SO, fixture, check, note, listening, reserve_port,
                        run_confabd, sanitizer_lines, write_config, write_text, tail)

suite = Suite("test_config_errors", watchdog=240)


class Case:
    """One bad configuration: a config file and what its error line holds."""

    def __init__(self, name, needles, broker=None, sections=None, text=None,
                 dash_t_passes=False, line_number=None):
        self.name = name
        # The port [ws] listen names, held (never listening) for the whole
        # script: nothing else can listen there, so a listener found on it
        # after a refused start would be confabd's.
        self.port, self._held = reserve_port()
        self.dir = os.path.join(suite.tmp, name)
        os.makedirs(self.dir)
        if text is not None:
            self.config = write_text(self.dir, "broker.ini", text.replace("PORT", str(self.port)))
        else:
            b = {"node_id": "cfg", "plugins": WS_SO}
            b.update(broker or {})
            secs = {"ws": {"listen": "127.0.0.1:%d" % self.port}}
            for sec, kv in (sections or {}).items():
                if kv is None:
                    secs.pop(sec, None)
                else:
                    secs.setdefault(sec, {}).update(kv)
            self.config = write_config(self.dir, b, secs)
        # Every error line names the configuration file.
        self.needles = [self.config] + list(needles)
        self.dash_t_passes = dash_t_passes
        self.line_number = line_number

    def rewrite(self, broker, needles):
        """Rewrite the config with these [broker] keys (for cases that
        first need files in self.dir)."""
        b = {"node_id": "cfg"}
        b.update(broker)
        self.config = write_config(self.dir, b, {"ws": {"listen": "127.0.0.1:%d" % self.port}})
        self.needles = [self.config] + list(needles)


def error_line(r, case):
    """The stderr line that holds every needle (and the line number)."""
    for line in r.stderr.splitlines():
        if not all(n in line for n in case.needles):
            continue
        if case.line_number is not None:
            rest = line.replace(case.config, "")
            if not re.search(r"(?<![0-9])%d(?![0-9])" % case.line_number, rest):
                continue
        return line
    return None


def check_refused(case, args):
    r = run_confabd(args + ["-c", case.config], port=case.port)
    what = "confabd %s" % " ".join(args + ["-c", case.config])
    check(not r.timed_out, "%s did not exit within the bound (listening on %d: %s)\n%s"
          % (what, case.port, r.listening_at_timeout, r.describe()))
    check(r.code != 0, "%s exited 0; want non-zero\n%s" % (what, r.describe()))
    check(r.code > 0, "%s died of signal %d\n%s" % (what, -r.code, r.describe()))
    line = error_line(r, case)
    want = ", ".join(repr(n) for n in case.needles)
    if case.line_number is not None:
        want += ", line %d" % case.line_number
    check(line is not None, "%s: no stderr line holds all of %s\n  stderr:\n%s"
          % (what, want, tail(r.stderr)))
    errors = [l for l in r.stderr.splitlines() if "error" in l.lower()]
    check(len(errors) == 1, "%s: want one error line, got %d:\n%s"
          % (what, len(errors), "\n".join("    | " + l for l in errors)))
    bad = sanitizer_lines(r.stderr)
    check(not bad, "%s: sanitizer report:\n%s" % (what, tail(r.stderr, 60)))
    return line


def refused(case):
    """Both -t and a real start refuse the config; the real start opens no port."""
    line = check_refused(case, ["-t"])
    note("-t: %s" % line.strip())
    line = check_refused(case, [])
    check(not listening(case.port), "something listens on %d after the refused start" % case.port)
    note("-c: %s" % line.strip())


def case_test(name, doc, make):
    """Register a check named `name` that builds a Case with `make()` and
    expects it refused."""
    def fn():
        refused(make())
    fn.__name__ = name
    fn.__doc__ = doc
    suite.test(fn)


# ---- [broker] ------------------------------------------------------------

case_test("unknown_key_in_broker_is_refused",
          "colour = red in [broker] names [broker] and colour.",
          lambda: Case("unknown_key", ["[broker]", "colour"], broker={"colour": "red"}))


def missing_plugin():
    d = os.path.join(suite.tmp, "empty-plugin-dir")
    os.makedirs(d, exist_ok=True)
    return Case("missing_plugin", ["[broker]", "plugins", os.path.join(d, "nope.so")],
                broker={"plugin_dir": d, "plugins": [WS_SO, "nope"]})


case_test("missing_plugin_file_is_refused",
          "plugins = nope with plugin_dir = DIR names [broker], plugins and DIR/nope.so.",
          missing_plugin)


def not_a_shared_object():
    c = Case("not_shared_object", [])
    junk = write_text(c.dir, "junk.so", "this is not an ELF shared object\n")
    c.rewrite({"plugins": [WS_SO, junk]}, ["[broker]", "plugins", junk])
    return c


case_test("file_that_is_not_a_shared_object_is_refused",
          "A text file named junk.so in the chain names [broker], plugins and the file.",
          not_a_shared_object)


def fixture_case(fx, extra=(), sections=None):
    path = fixture(fx)
    return lambda: Case(fx, ["[broker]", "plugins", path] + list(extra),
                        broker={"plugins": [WS_SO, path]}, sections=sections)


for fx, extra, what in [
        ("fx_no_symbol", [], "exports no confab_plugin_entry"),
        ("fx_bad_magic", [], "has a bad magic number"),
        ("fx_major_mismatch", ["major"], "was built for another ABI major"),
        ("fx_newer_minor", ["minor"], "was built for a newer ABI minor"),
        ("fx_bad_kind", ["kind"], "declares an unknown kind"),
        ("fx_kind_mismatch", [], "declares one kind and carries another's ops"),
        ("fx_missing_slot", [], "leaves a mandatory slot NULL")]:
    case_test("plugin_that_%s_is_refused" % fx[3:],
              "A plugin that %s: the line names [broker], plugins and the file%s."
              % (what, (" and says " + ", ".join(extra)) if extra else ""),
              fixture_case(fx, extra))

case_test("plugin_whose_init_fails_is_refused",
          "fx_init_fails reports its bad key: the line names [fx_init_fails] and secret.",
          lambda: Case("init_fails", ["[fx_init_fails]", "secret"],
                       broker={"plugins": [WS_SO, fixture("fx_init_fails")]}))


@suite.test
def one_backplane_plugin_is_accepted():
    """Control for the next check: ws + fx_backplane.so passes -t."""
    c = Case("one_backplane", [], broker={"plugins": [WS_SO, fixture("fx_backplane")]})
    r = run_confabd(["-t", "-c", c.config])
    check(r.code == 0, "want exit 0: " + r.describe())


def two_backplanes():
    c = Case("two_backplanes", [])
    copy = os.path.join(c.dir, "fx_backplane2.so")
    shutil.copyfile(fixture("fx_backplane"), copy)
    c.rewrite({"plugins": [WS_SO, fixture("fx_backplane"), copy]},
              ["[broker]", "plugins", "backplane"])
    return c


case_test("two_backplanes_are_refused",
          "fx_backplane.so and a copy fx_backplane2.so in one chain: names [broker], plugins, backplane.",
          two_backplanes)

case_test("chain_without_a_transport_is_refused",
          "plugins = fx_good_auth.so alone: names [broker], plugins and transport.",
          lambda: Case("no_transport", ["[broker]", "plugins", "transport"],
                       broker={"plugins": fixture("fx_good_auth")},
                       sections={"ws": None, "fx_good_auth": {"user": "alice"}}))

for key, value in [("log_level", "loud"), ("max_message_bytes", "abc"),
                   ("history_size", "-1"), ("allow_anonymous", "maybe")]:
    case_test("bad_%s_is_refused" % key,
              "%s = %s in [broker] names [broker] and %s." % (key, value, key),
              (lambda k, v: lambda: Case("bad_" + k, ["[broker]", k], broker={k: v}))(key, value))

case_test("line_that_is_not_key_value_is_refused",
          "A syntax error names the file and the line number.",
          lambda: Case("syntax_error", [], line_number=5, text=(
              "; a syntax error on line 5\n"
              "[broker]\n"
              "node_id = cfg\n"
              "plugins = " + WS_SO + "\n"
              "this line is not a key and a value\n"
              "\n"
              "[ws]\n"
              "listen = 127.0.0.1:PORT\n")))

# ---- [ws] ----------------------------------------------------------------

case_test("unknown_key_in_ws_is_refused",
          "lisen = ... in [ws] names [ws] and lisen.",
          lambda: Case("ws_unknown_key", ["[ws]", "lisen"], sections={"ws": {"lisen": "127.0.0.1:1"}}))

case_test("listen_that_is_not_an_address_is_refused",
          "listen = nonsense names [ws] and listen.",
          lambda: Case("listen_nonsense", ["[ws]", "listen"], sections={"ws": {"listen": "nonsense"}}))

case_test("listen_port_out_of_range_is_refused",
          "listen = 127.0.0.1:99999 names [ws] and listen.",
          lambda: Case("listen_99999", ["[ws]", "listen"],
                       sections={"ws": {"listen": "127.0.0.1:99999"}}))

# [ws]'s numbers are read through the host's settings slot: its wording.
for name, key, value, says, why in [
        ("write_delay_that_is_not_milliseconds_is_refused", "write_delay", "soon",
         "'soon' is not a number from 0 to 1000", "not a number"),
        ("write_delay_over_a_second_is_refused", "write_delay", "5000",
         "'5000' is not a number from 0 to 1000", "over the 1000 ms cap"),
        ("send_queue_max_of_zero_is_refused", "send_queue_max", "0",
         "'0' is not a number from 1 to", "a cap must be positive")]:
    case_test(name,
              "%s = %s (%s) names [ws] and %s, and says so: %s." % (key, value, why, key, says),
              (lambda n, k, v, w: lambda: Case(n, ["[ws]", k, w], sections={"ws": {k: v}}))
              (key + "_" + value, key, value, says))

case_test("send_queue_max_below_the_largest_message_is_refused",
          "send_queue_max = 65536 with the default max_message_bytes (65536) names "
          "[ws], send_queue_max and what it must hold.",
          lambda: Case("send_queue_max_small", ["[ws]", "send_queue_max",
                                                "65536 is less than [broker] max_message_bytes "
                                                "(65536) + 4096"],
                       sections={"ws": {"send_queue_max": "65536"}}))


@suite.test
def port_in_use_is_refused_at_start_and_a_warning_for_check_mode():
    """With [ws] listen held by another socket (as a running node holds its
    own), confabd -c exits non-zero with a line naming the file, [ws],
    listen and the port. confabd -t, which binds without listening to find
    out, passes with one warning naming listen and the port: it is run
    beside the live node before a reload, and must not fail for the port
    that node holds."""
    c = Case("port_in_use", ["[ws]", "listen"])
    c.needles.append(str(c.port))
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR: it binds next to the Case's reservation (which
        # never listens), as a server would; once it listens, confabd's
        # bind fails.
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", c.port))
        holder.listen(1)
        r = run_confabd(["-t", "-c", c.config], port=c.port)
        check(r.code == 0 and "configuration OK" in r.stdout + r.stderr,
              "confabd -t with the port in use: want OK\n%s" % r.describe())
        warnings = [l for l in r.stderr.splitlines() if " warn " in l]
        check(len(warnings) == 1 and "[ws] listen: 127.0.0.1:%d is in use" % c.port in warnings[0],
              "confabd -t with the port in use: want one warning naming it\n%s" % r.describe())
        check(not sanitizer_lines(r.stderr), "sanitizer report:\n%s" % tail(r.stderr, 60))
        note("-t: %s" % warnings[0].strip())
        note("-c: %s" % check_refused(c, []).strip())
    finally:
        holder.close()


if __name__ == "__main__":
    suite.main()
