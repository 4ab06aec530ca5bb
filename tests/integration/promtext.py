"""The Prometheus text format 0.0.4 that GET /metrics serves, read by a
strict parser: any line that breaks the format is a TestFailure.

SPDX-License-Identifier: MIT
"""
import math
import re

from confabtest import TestFailure, check, http_get

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
VALUE = re.compile(r"(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|[-+]Inf|NaN)\Z")
TYPES = ("counter", "gauge", "histogram")


# ---- a strict parser of the text format ----------------------------------

def _labels(text, where):
    """'{a="x",b="y"}' -> dict; escapes \\\\, \\" and \\n only."""
    check(text.startswith("{") and text.endswith("}"), "%s: bad label set %r" % (where, text))
    body, out, i = text[1:-1], {}, 0
    check(body != "", "%s: empty braces" % where)
    while i < len(body):
        eq = body.find("=", i)
        check(eq > i, "%s: no label name at %r" % (where, body[i:]))
        name = body[i:eq]
        check(LABEL.match(name) and not name.startswith("__"), "%s: label name %r" % (where, name))
        check(body[eq + 1:eq + 2] == '"', "%s: label %s: value not quoted" % (where, name))
        j, value = eq + 2, []
        while True:
            check(j < len(body), "%s: label %s: unterminated value" % (where, name))
            c = body[j]
            if c == "\\":
                nxt = body[j + 1:j + 2]
                check(nxt in ("\\", '"', "n"), "%s: bad escape \\%s" % (where, nxt))
                value.append("\n" if nxt == "n" else nxt)
                j += 2
            elif c == '"':
                break
            else:
                check(c != "\n", "%s: raw newline in a label value" % where)
                value.append(c)
                j += 1
        check(name not in out, "%s: label %s twice" % (where, name))
        out[name] = "".join(value)
        i = j + 1
        if i < len(body):
            check(body[i] == ",", "%s: labels not separated by a comma at %r" % (where, body[i:]))
            i += 1
            check(i < len(body), "%s: trailing comma" % where)
    return out


def _sample(line, where):
    """'name{labels} value' -> (name, labels, float); no timestamps."""
    brace = line.find("{")
    space = line.rfind(" ")
    check(space > 0, "%s: no value" % where)
    if brace >= 0 and brace < space:
        close = line.rfind("}")
        check(close == space - 1, "%s: junk after the labels" % where)
        name, labels = line[:brace], _labels(line[brace:close + 1], where)
    else:
        name, labels = line[:space], {}
        check(" " not in name, "%s: more than a name and a value" % where)
    value = line[space + 1:]
    check(NAME.match(name), "%s: sample name %r" % (where, name))
    check(VALUE.match(value), "%s: value %r" % (where, value))
    return name, labels, float(value)


def parse(text):
    """Every family {name: {"type", "help", "samples": [(name, labels, value)]}},
    or TestFailure naming the first line that breaks the format."""
    check(text.endswith("\n"), "the text does not end with a newline")
    fams, current, seen = {}, None, set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (n, line[:120])
        check(line != "", "%s: empty line" % where)
        if line.startswith("# HELP "):
            name, sep, help_ = line[7:].partition(" ")
            check(sep and NAME.match(name), "%s: HELP without a name and text" % where)
            check(name not in fams, "%s: family %s twice" % (where, name))
            check(re.fullmatch(r"([^\\]|\\\\|\\n)*", help_), "%s: bad escape in HELP" % where)
            fams[name] = {"type": None, "help": help_, "samples": []}
            current = name
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            check(name == current, "%s: TYPE not right after its HELP" % where)
            check(fams[name]["type"] is None, "%s: TYPE twice" % where)
            check(typ in TYPES, "%s: type %r" % (where, typ))
            if typ == "counter":
                check(name.endswith("_total"), "%s: a counter not named *_total" % where)
            fams[name]["type"] = typ
        else:
            check(not line.startswith("#"), "%s: a comment other than HELP/TYPE" % where)
            check(current is not None and fams[current]["type"] is not None,
                  "%s: a sample before its family's HELP and TYPE" % where)
            name, labels, value = _sample(line, where)
            fam = fams[current]
            if fam["type"] == "histogram":
                check(name in (current + "_bucket", current + "_sum", current + "_count"),
                      "%s: %s in histogram %s" % (where, name, current))
                check(("le" in labels) == (name == current + "_bucket"), "%s: le misplaced" % where)
            else:
                check(name == current, "%s: sample %s in family %s" % (where, name, current))
            if fam["type"] == "counter":
                check(value >= 0, "%s: a negative counter" % where)
            key = (name, tuple(sorted(labels.items())))
            check(key not in seen, "%s: duplicate series" % where)
            seen.add(key)
            fam["samples"].append((name, labels, value))
    for name, fam in fams.items():
        check(fam["type"] is not None, "family %s has HELP but no TYPE" % name)
        check(fam["samples"], "family %s has no sample" % name)
        if fam["type"] == "histogram":
            _check_histogram(name, fam["samples"])
    # no family takes a name another one's samples use
    for name, fam in fams.items():
        if fam["type"] == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                check(name + suffix not in fams, "family %s clashes with %s" % (name + suffix, name))
    return fams


def _check_histogram(name, samples):
    """Per label set: buckets by increasing le, cumulative, +Inf last and
    equal to _count; _sum and _count present."""
    series = {}
    for sname, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sname.endswith("_bucket"):
            s["buckets"].append((float(labels["le"]), value))
        elif sname.endswith("_sum"):
            s["sum"] = value
        else:
            s["count"] = value
    for rest, s in series.items():
        what = "%s%s" % (name, dict(rest) if rest else "")
        check(s["sum"] is not None and s["count"] is not None, "%s: no _sum or _count" % what)
        les = [le for le, _ in s["buckets"]]
        check(les == sorted(les) and len(set(les)) == len(les), "%s: le not increasing" % what)
        check(les and math.isinf(les[-1]), "%s: no le=\"+Inf\" bucket last" % what)
        counts = [c for _, c in s["buckets"]]
        check(all(a <= b for a, b in zip(counts, counts[1:])), "%s: buckets not cumulative" % what)
        check(counts[-1] == s["count"], "%s: +Inf %s != _count %s" % (what, counts[-1], s["count"]))


def value(fams, family, sample=None, **labels):
    """The value of the series of `family` with exactly `labels`."""
    check(family in fams, "no family %s" % family)
    sample = sample or family
    for name, l, v in fams[family]["samples"]:
        if name == sample and l == labels:
            return v
    raise TestFailure("no series %s%s" % (sample, labels))


def scrape(port, path="/metrics"):
    status, headers, body = http_get(port, path)
    check(status == 200, "GET %s -> %d" % (path, status))
    check(headers.get("content-type") == CONTENT_TYPE,
          "content-type %r, want %r" % (headers.get("content-type"), CONTENT_TYPE))
    return parse(body.decode("utf-8"))
