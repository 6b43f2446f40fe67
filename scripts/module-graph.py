#!/usr/bin/env python3
"""Reports circles between the top-level modules of each crate (issue 21).

A top-level module is `proxy/src/<module>` (a folder or a `<module>.rs` file) or `src/<module>`.
An edge A -> B is a `crate::B…` path (in a `use`, a `use crate::{…}` group or an expression) or a
`super::…` path that climbs to the crate root, written in A's non-test code. Test code
(`tests.rs` files, `#[cfg(test)]` modules) may reach anything and is left out unless
`--include-tests`. Comments are left out, so doc links do not count.

Prints each circle (a strongly connected set of modules) with one line per edge and the first
place that edge is written; exits 1 when any crate checked has one.

    scripts/module-graph.py                 # both crates
    scripts/module-graph.py --crate proxy   # one crate (proxy or console)
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from rust_text import code_only  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = {"proxy": "proxy/src", "console": "src"}
ROOT_FILES = {"lib.rs", "main.rs"}


def strip_test_modules(text):
    """Blanks out `#[cfg(test)]` items (a `mod … { … }` or a single item), keeping line numbers."""
    out, pos = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < pos:
            continue
        out.append(text[pos:m.start()])
        brace = text.find("{", m.end())
        semi = text.find(";", m.end())
        if semi >= 0 and (brace < 0 or semi < brace):
            end = semi + 1  # `#[cfg(test)] mod tests;` or a `use`
        else:
            depth, j = 0, brace
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            end = j + 1
        out.append("\n" * text.count("\n", m.start(), end))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def expand_group(body):
    """`{a, b::{c, d}, self}` → first segments of each path inside."""
    firsts, depth, cur = [], 0, ""
    for c in body:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            firsts.append(cur)
            cur = ""
        else:
            cur += c
    firsts.append(cur)
    names = []
    for part in firsts:
        part = part.strip()
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)", part)
        if m:
            names.append(m.group(1))
    return names


def module_path(rel):
    """`session/mux.rs` → ['session', 'mux']; `session/mod.rs` → ['session']."""
    parts = rel[:-3].split("/")
    if parts[-1] == "mod":
        parts.pop()
    return parts


def first_segments(text, at, group):
    """The first segment of each path after a root prefix ending at `at` (`{…}` when `group`)."""
    if group:
        depth, j = 1, at
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        return expand_group(text[at:j - 1])
    seg = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[at:])
    return [seg.group(0)] if seg else []


def references(text, modpath):
    """(top-level module, line) for every path in `text` that reaches the crate root."""
    found = []
    # `super::super::x` from a module `depth` deep reaches the root after `depth` steps.
    roots = [(m, m.group(1)) for m in re.finditer(r"\bcrate::(\{)?", text)]
    roots += [(m, m.group(2)) for m in re.finditer(r"\b((?:super::)+)(\{)?", text)
              if m.group(1).count("super::") >= len(modpath)]
    for m, group in roots:
        line = text.count("\n", 0, m.start()) + 1
        found.extend((name, line) for name in first_segments(text, m.end(), group))
    return found


def graph(crate_dir, include_tests):
    base = os.path.join(ROOT, crate_dir)
    modules = set()
    for entry in os.listdir(base):
        if entry in ROOT_FILES:
            continue
        if entry.endswith(".rs"):
            modules.add(entry[:-3])
        elif os.path.isdir(os.path.join(base, entry)):
            modules.add(entry)
    edges = {}  # (a, b) -> first "file:line"
    for dirpath, _, files in os.walk(base):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), base).replace(os.sep, "/")
            if rel in ROOT_FILES:
                continue
            if not include_tests and (f == "tests.rs" or "/tests/" in "/" + rel):
                continue
            modpath = module_path(rel)
            src = modpath[0]
            with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                text = code_only(fh.read())
            if not include_tests:
                text = strip_test_modules(text)
            for name, line in references(text, modpath):
                if name in modules and name != src:
                    edges.setdefault((src, name), f"{crate_dir}/{rel}:{line}")
    return modules, edges


def circles(modules, edges):
    """Strongly connected sets of more than one module (Tarjan)."""
    succ = {m: sorted(b for (a, b) in edges if a == m) for m in modules}
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for m in sorted(modules):
        if m not in index:
            visit(m)
    return sorted(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--crate", choices=sorted(CRATES), action="append",
                   help="check this crate only (repeatable; default: both)")
    p.add_argument("--include-tests", action="store_true",
                   help="count imports made by test code too")
    p.add_argument("--edges", action="store_true", help="print every edge, not only circles")
    args = p.parse_args()
    failed = False
    for name in args.crate or sorted(CRATES):
        modules, edges = graph(CRATES[name], args.include_tests)
        found = circles(modules, edges)
        if args.edges:
            for (a, b), where in sorted(edges.items()):
                print(f"{name}: {a} -> {b}  ({where})")
        if not found:
            print(f"{name}: no circle between its {len(modules)} top-level modules")
            continue
        failed = True
        for comp in found:
            members = set(comp)
            print(f"{name}: circle between {', '.join(comp)}")
            for (a, b), where in sorted(edges.items()):
                if a in members and b in members:
                    print(f"    {a} -> {b}  ({where})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
