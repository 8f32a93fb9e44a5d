"""Check Prometheus text exposition format 0.0.4 strictly and print the
samples as JSON: {"name{label=...}": value}.  Exit 1 with a message on the
first violation.  Standard library only (no promtool needed)."""
import json
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s)(?:,(?:%s))*\})? (\S+)$" % (NAME, LABEL, LABEL))


def fail(msg, line):
    sys.exit("promparse: %s: %r" % (msg, line))


def main():
    types, helps, samples = {}, set(), {}
    hist = {}
    for line in sys.stdin.read().split("\n"):
        if line == "":
            continue
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            if name in helps:
                fail("duplicate HELP", line)
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                fail("bad TYPE", line)
            if parts[2] in types:
                fail("duplicate TYPE", line)
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            fail("bad sample line", line)
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        try:
            v = float(value.replace("+Inf", "inf"))
        except ValueError:
            fail("bad value", line)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in types and base not in types:
            fail("sample before its TYPE", line)
        key = name + labels
        if key in samples:
            fail("duplicate series", line)
        samples[key] = v
        if types.get(base) == "histogram" and name.endswith("_bucket"):
            series = re.sub(r',?le="[^"]*"', "", labels)
            prev = hist.get(base + series)
            if prev is not None and v < prev:
                fail("histogram buckets not cumulative", line)
            hist[base + series] = v
    print(json.dumps(samples))


if __name__ == "__main__":
    main()
