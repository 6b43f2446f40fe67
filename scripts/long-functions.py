#!/usr/bin/env python3
"""Lists non-test Rust functions longer than a limit (lines from `fn` to its closing brace).

    scripts/long-functions.py [--limit N] [--all] PATH...

PATH is a file or a folder (searched for *.rs). Test code is skipped: files named tests.rs or
under a tests/ folder, `#[cfg(test)]` modules and `#[test]` functions. Exits 1 when a function is
over the limit, so it can gate CI.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from rust_text import code_only  # noqa: E402

FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")


def block_end(code, open_at):
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def functions(path):
    text = open(path, encoding="utf-8").read()
    code = code_only(text)
    line_of = lambda pos: code.count("\n", 0, pos) + 1
    # Ranges of test modules.
    tests = []
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", code):
        tests.append((m.start(), block_end(code, m.end() - 1)))
    for m in FN.finditer(code):
        start = m.start()
        # The body opens at the first `{` before a `;` (a `;` first means a declaration).
        j = start
        while j < len(code) and code[j] not in "{;":
            j += 1
        if j >= len(code) or code[j] == ";":
            continue
        end = block_end(code, j)
        before = code[max(0, start - 200) : start]
        is_test = any(a <= start <= b for a, b in tests) or re.search(r"#\[(tokio::)?test[^\]]*\]\s*(async\s+)?$", before.rstrip()[-80:] + " ") is not None
        yield m.group(1), line_of(start), line_of(end) - line_of(start) + 1, is_test


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=120)
    ap.add_argument("--all", action="store_true", help="list every function over the limit, tests included")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    files = []
    for p in args.paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files += [os.path.join(root, f) for f in names if f.endswith(".rs")]
        else:
            files.append(p)
    found = []
    for f in sorted(files):
        test_file = os.path.basename(f) == "tests.rs" or "/tests/" in f.replace(os.sep, "/") or f.startswith("tests/")
        for name, line, length, is_test in functions(f):
            if length > args.limit and (args.all or not (is_test or test_file)):
                found.append((length, f, line, name))
    for length, f, line, name in sorted(found, reverse=True):
        print(f"{length:5} {f}:{line} {name}")
    print(f"{len(found)} functions over {args.limit} lines", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
