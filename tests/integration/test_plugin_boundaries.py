#!/usr/bin/python3
"""In-tree plugins use only the SDK, as a third-party plugin must: no
plugin compiles against core/ or links a core library, every header a
plugin includes by quotes is its own (or a sibling library's it names in
its Makefile.am: plugins/redislink for the Redis pair), and each built
plugin exports exactly one symbol, confab_plugin_entry.

SPDX-License-Identifier: MIT
"""
import os
import re
import subprocess

from confabtest import Suite, check, note, PLUGIN_BUILD_DIR

suite = Suite("test_plugin_boundaries", watchdog=60)
TOP = os.environ.get("CONFAB_TOP_SRCDIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
PLUGINS = os.path.join(TOP, "plugins")
# What a plugin's Makefile.am may put on the include path.
ALLOWED_INCLUDE = re.compile(r"^-I\$\((top_srcdir)\)/(sdk/include|plugins/[a-z_]+)$|"
                             r"^-I\$\((srcdir|builddir)\)$")


def plugin_dirs():
    return sorted(d for d in os.listdir(PLUGINS)
                  if os.path.isfile(os.path.join(PLUGINS, d, "Makefile.am")))


def makefile(d):
    with open(os.path.join(PLUGINS, d, "Makefile.am"), encoding="utf-8") as f:
        # join continuation lines, drop comments
        text = re.sub(r"\\\n", " ", f.read())
    return "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))


@suite.test
def plugin_makefiles_name_nothing_of_the_core():
    """No plugin Makefile.am adds core/ to the include path or links a core
    library; the only -I flags are the SDK's and plugin directories."""
    seen = 0
    for d in plugin_dirs():
        mk = makefile(d)
        check("core/" not in mk and "core)" not in mk,
              "plugins/%s/Makefile.am names the core: %r"
              % (d, [l for l in mk.splitlines() if "core" in l]))
        for flag in re.findall(r"-I\S+", mk):
            check(ALLOWED_INCLUDE.match(flag),
                  "plugins/%s/Makefile.am: %s is not the SDK or a plugin directory" % (d, flag))
            seen += 1
    note("%d Makefile.am files, %d -I flags, none under core/" % (len(plugin_dirs()), seen))


@suite.test
def plugin_sources_include_only_their_own_headers():
    """Every #include "x.h" of a plugin source is a file of the plugin, one
    generated in its build directory, or one of a plugin directory its
    Makefile.am adds with -I; <confab/...> headers are the SDK's."""
    sdk = set(os.listdir(os.path.join(TOP, "sdk", "include", "confab")))
    n = 0
    for d in plugin_dirs():
        mk = makefile(d)
        dirs = [os.path.join(PLUGINS, d)] + [
            os.path.join(TOP, m) for m in re.findall(r"-I\$\(top_srcdir\)/(plugins/[a-z_]+)", mk)]
        generated = set(re.findall(r"([A-Za-z0-9_]+\.h)\b", " ".join(
            l for l in mk.splitlines() if "BUILT_SOURCES" in l or "CLEANFILES" in l)))
        for name in sorted(os.listdir(os.path.join(PLUGINS, d))):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(PLUGINS, d, name), encoding="utf-8") as f:
                src = f.read()
            for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', src, re.M):
                n += 1
                check("/" not in inc, "plugins/%s/%s includes %r by a path" % (d, name, inc))
                check(inc in generated or any(os.path.isfile(os.path.join(x, inc)) for x in dirs),
                      "plugins/%s/%s includes %r, which is not the plugin's" % (d, name, inc))
            for inc in re.findall(r'^\s*#\s*include\s+<confab/([^>]+)>', src, re.M):
                check(inc in sdk, "plugins/%s/%s includes <confab/%s>, not in the SDK"
                      % (d, name, inc))
    note("%d quoted includes, every one the plugin's own" % n)


@suite.test
def each_built_plugin_exports_only_its_entry_point():
    """nm -D --defined-only on every built plugin shows confab_plugin_entry
    and nothing else."""
    built = []
    for d in plugin_dirs():
        so = os.path.join(PLUGIN_BUILD_DIR, d, ".libs", d + ".so")
        if not os.path.isfile(so):
            continue  # a convenience library (redislink), or left out by configure
        out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True,
                             text=True, timeout=30)
        check(out.returncode == 0, "nm %s: %s" % (so, out.stderr.strip()))
        syms = [l.split()[-1] for l in out.stdout.splitlines() if l.strip()]
        check(syms == ["confab_plugin_entry"], "%s exports %r" % (os.path.basename(so), syms))
        built.append(d)
    check(built, "no built plugin found under %s" % PLUGIN_BUILD_DIR)
    note("one exported symbol each: %s" % ", ".join(built))


if __name__ == "__main__":
    suite.main()
