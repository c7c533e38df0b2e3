#!/usr/bin/env python3
"""Build the README's API tour into one C program, so that the tour cannot rot.

Usage: extract_tour.py README.md OUT.c

Every ```c block of README.md is part of the tour, in order. A block whose first line is
`/* file scope */` goes before main() (callbacks, helpers); every other block is pasted into
the body of main(). Each block is preceded by a #line directive, so compiler errors and the
tour's own checks (__LINE__) name the README line. OUT.c is rewritten only when its text
changes, so an unrelated edit of the README rebuilds nothing.
"""
import os
import re
import sys

FENCE_OPEN = re.compile(r"^```c\s*$")
FENCE_CLOSE = re.compile(r"^```\s*$")
FILE_SCOPE = "/* file scope */"

PROLOGUE = """\
/* Generated from README.md by tests/readme/extract_tour.py: do not edit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_ctx.h"
#include "interp_pool.h"
"""


def blocks(path):
    """Yield (first line number of the code, code lines) for every ```c block."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        if FENCE_OPEN.match(lines[i]):
            start = i + 1
            j = start
            while j < len(lines) and not FENCE_CLOSE.match(lines[j]):
                j += 1
            if j == len(lines):
                sys.exit(f"{path}:{i + 1}: a ```c block is not closed")
            yield start + 1, lines[start:j]
            i = j
        i += 1


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: extract_tour.py README.md OUT.c")
    readme, out = sys.argv[1], sys.argv[2]
    where = os.path.abspath(readme).replace("\\", "\\\\").replace('"', '\\"')
    scope, body = [], []
    for line_no, code in blocks(readme):
        text = f'#line {line_no} "{where}"\n' + "\n".join(code) + "\n"
        if code and code[0].strip() == FILE_SCOPE:
            scope.append(text)
        else:
            body.append(text)
    if not body:
        sys.exit(f"{readme}: no ```c block for the body of main()")
    program = (PROLOGUE + "\n" + "\n".join(scope) + "\nint main(void)\n{\n" + "\n".join(body)
               + "\nreturn 0;\n}\n")
    try:
        with open(out, encoding="utf-8") as f:
            if f.read() == program:
                return
    except OSError:
        pass
    with open(out, "w", encoding="utf-8") as f:
        f.write(program)


if __name__ == "__main__":
    main()
