#!/usr/bin/env python3
"""long_functions.py - list the C functions longer than a limit; fail on any not allowed.

A function is counted from the first line of its signature to its closing brace (the tree's
style: the body's braces stand alone at column 0). Usage:

    scripts/long_functions.py [--limit N] [--all] [files or folders...]

Without paths it reads the library (base/ msg/ channels/ interp/ core/) and lua/ cli/ mpi/.
It prints every function over the limit (--all: every function, longest first) and exits 1
when one of them is not in ALLOWED below. CI runs it in the release stage
(scripts/check.sh). A function on the list must say why it stays one piece."""
import os
import re
import sys

LIMIT = 80
FOLDERS = ["base", "msg", "channels", "interp", "core", "lua", "cli", "mpi"]

# (file, function): why it stays one piece. Keep this list short.
ALLOWED = {
    ("msg/msg_pack.c", "pack_pass"):
        "the format interpreter of interp_msg_pack: one case per format letter",
    ("base/lua_match.c", "match"):
        "the pattern interpreter: one switch over the pattern items, as lstrlib.c's match",
}

SIG_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def functions(path):
    """(name, first line, last line) of each function defined in path."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i] != "{":
            i += 1
            continue
        j = i - 1  # the signature: back to its line at column 0
        while j > 0 and lines[j].startswith((" ", "\t")):
            j -= 1
        k = i + 1
        while k < len(lines) and not lines[k].startswith("}"):
            k += 1
        head = " ".join(s.strip() for s in lines[j:i])
        m = SIG_NAME.search(head)
        if m and "=" not in head.split("(")[0]:  # not an initialised array or struct
            yield m.group(1), j + 1, k + 1
        i = k + 1


def sources(args):
    paths = args or FOLDERS
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in sorted(os.walk(p)):
                for n in sorted(names):
                    if n.endswith(".c"):
                        yield os.path.join(root, n)
        else:
            yield p


def main(argv):
    limit, show_all, args = LIMIT, False, []
    it = iter(argv)
    for a in it:
        if a == "--limit":
            limit = int(next(it))
        elif a == "--all":
            show_all = True
        else:
            args.append(a)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    if not args:
        os.chdir(root)
    found = []
    for path in sources(args):
        for name, first, last in functions(path):
            n = last - first + 1
            if show_all or n > limit:
                found.append((n, os.path.normpath(path), name, first))
    bad = 0
    for n, path, name, first in sorted(found, reverse=True):
        over = n > limit
        allowed = (path, name) in ALLOWED
        mark = "allowed" if over and allowed else ("TOO LONG" if over else "")
        print(f"{n:5d}  {path}:{first}  {name}  {mark}".rstrip())
        bad += over and not allowed
    if bad:
        print(f"long_functions: {bad} function(s) over {limit} lines; split them into named "
              f"steps (or, with a reason, add them to ALLOWED in {sys.argv[0]})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
