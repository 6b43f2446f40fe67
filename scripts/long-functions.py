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

FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")


def code_only(text):
    """The text with comments, strings and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif re.match(r"b?r#*\"", text[i : i + 40]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r"b?r(#*)\"", text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            # A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i : i + 12])
            if m:
                out.append(" " * m.end())
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


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
