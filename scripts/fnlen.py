#!/usr/bin/env python3
"""List the functions of src/ longer than a limit (default 80 lines, the
project's rule: STYLE, "no function over 80 lines").  A function is a
top-level definition: a line starting in column 0 that is not a
declaration, followed by a body from "{" in column 0 to "}" in column 0.
Exit 1 when one is over the limit.

usage: scripts/fnlen.py [LIMIT]"""
import glob
import os
import sys


def functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    start = None
    for i, line in enumerate(lines):
        if line == "{" and i > 0:
            # the signature may span lines: walk back to its first line
            j = i - 1
            while j > 0 and lines[j - 1].strip() and not lines[j - 1].endswith((";", "}", "*/")) \
                    and not lines[j - 1].startswith(("#", "/*", " *")):
                j -= 1
            start = (j, lines[j])
        elif line == "}" and start:
            yield start[1], start[0] + 1, i - start[0] + 1
            start = None


def main():
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 80
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    bad = 0
    for path in sorted(glob.glob(os.path.join(root, "src", "*", "*.c"))):
        for sig, line, n in functions(path):
            if n > limit:
                bad += 1
                print("%s:%d: %d lines: %s" % (os.path.relpath(path, root), line, n, sig.strip()))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
