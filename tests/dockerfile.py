#!/usr/bin/env python3
"""Read the project's Dockerfile (python3 standard library only).

usage: dockerfile.py DOCKERFILE runs STAGE   the RUN commands of a stage, one a line
       dockerfile.py DOCKERFILE json         every stage as JSON:
           [{"from": IMAGE, "name": NAME or null,
             "instructions": [[KEYWORD, ARGUMENTS], ...]}, ...]

Handles what a Dockerfile of this project may use: parser directives and
comments, backslash continuations, keywords in any case.  Heredocs and a
custom escape character are refused, so that nothing is misread.
static_root.t runs the build stage's RUN commands exactly as printed here;
dockerfile.t checks that they are only the ones it expects.
"""
import json
import re
import sys


def parse(text):
    stages = []
    logical = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not logical and re.match(r"^\s*#", line):
            if re.match(r"^\s*#\s*escape\s*=", line):
                raise SystemExit("dockerfile.py: a custom escape character is not supported")
            continue
        if logical and re.match(r"^\s*#", line):
            continue  # comment lines inside a continuation are dropped by docker too
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        if logical.strip():
            keyword, _, args = logical.strip().partition(" ")
            keyword = keyword.upper()
            args = " ".join(args.split())
            if "<<" in args and keyword in ("RUN", "COPY"):
                raise SystemExit("dockerfile.py: heredocs are not supported")
            if keyword == "FROM":
                m = re.match(r"^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$", args, re.I)
                if not m:
                    raise SystemExit("dockerfile.py: cannot read FROM " + args)
                stages.append({"from": m.group(1), "name": m.group(2), "instructions": []})
            elif not stages:
                if keyword != "ARG":
                    raise SystemExit("dockerfile.py: %s before the first FROM" % keyword)
            else:
                stages[-1]["instructions"].append([keyword, args])
        logical = ""
    return stages


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        stages = parse(f.read())
    if sys.argv[2] == "json":
        print(json.dumps(stages, indent=1))
    elif sys.argv[2] == "runs" and len(sys.argv) == 4:
        named = [s for s in stages if s["name"] == sys.argv[3]]
        if len(named) != 1:
            raise SystemExit("dockerfile.py: no single stage named " + sys.argv[3])
        for kw, args in named[0]["instructions"]:
            if kw == "RUN":
                print(args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
