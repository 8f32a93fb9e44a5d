#!/usr/bin/env python3
"""Check the layering of src/ (src/README.md, "Layers").

Every folder of src/ is a layer; the order below is bottom to top.  A
module (src/<layer>/<name>.c and .h) may include the headers of its own
layer and of the layers below it, never above.  Inside a layer the
include graph between modules must have no cycle.  Prints every
violation and exits 1 when there is one, 0 otherwise.

usage: scripts/layers.py [--graph]   (--graph: print who includes whom)
"""
import os
import re
import sys

LAYERS = ["base", "formats", "transport", "policy", "gateway", "admin", "app"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def modules(src):
    """{module name: (layer, [files])}"""
    mods = {}
    for layer in LAYERS:
        d = os.path.join(src, layer)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            name, ext = os.path.splitext(f)
            if ext not in (".c", ".h"):
                continue
            # <module>_priv.h is a module's private header: part of it.
            if name.endswith("_priv") and ext == ".h":
                name = name[: -len("_priv")]
            if name in mods and mods[name][0] != layer:  # noqa: E501
                sys.exit("layers.py: module %s is in both %s and %s" % (name, mods[name][0], layer))
            mods.setdefault(name, (layer, []))[1].append(os.path.join(d, f))
    return mods


def edges(mods):
    """{module: set of modules it includes}"""
    out = {}
    for name, (_, files) in mods.items():
        deps = set()
        for f in files:
            with open(f, encoding="utf-8") as fh:
                for inc in INCLUDE.findall(fh.read()):
                    dep = os.path.splitext(os.path.basename(inc))[0]
                    if dep.endswith("_priv"):
                        dep = dep[: -len("_priv")]
                    if dep != name and dep in mods:
                        deps.add(dep)
        out[name] = deps
    return out


def find_cycle(graph):
    """One cycle as a list of modules, or None (iterative DFS)."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n: WHITE for n in graph}
    for start in sorted(graph):
        if color[start] != WHITE:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        color[start] = GREY
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = BLACK
                stack.pop()
                path.pop()
                continue
            if color[nxt] == GREY:
                return path[path.index(nxt):] + [nxt]
            if color[nxt] == WHITE:
                color[nxt] = GREY
                stack.append((nxt, iter(sorted(graph[nxt]))))
                path.append(nxt)
    return None


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    src = os.path.join(root, "src")
    stray = [f for f in os.listdir(src) if f.endswith((".c", ".h"))]
    mods = modules(src)
    graph = edges(mods)
    problems = ["src/%s: every module belongs in a layer folder" % f for f in stray]
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    for name in sorted(graph):
        for dep in sorted(graph[name]):
            if rank[mods[dep][0]] > rank[mods[name][0]]:
                problems.append("%s/%s includes %s/%s: a layer may only call down"
                                % (mods[name][0], name, mods[dep][0], dep))
    cycle = find_cycle(graph)
    if cycle:
        problems.append("include cycle: " + " -> ".join(cycle))
    if "--graph" in sys.argv:
        for name in sorted(graph, key=lambda n: (rank[mods[n][0]], n)):
            print("%-10s %-14s -> %s" % (mods[name][0], name, " ".join(sorted(graph[name]))))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
