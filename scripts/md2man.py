#!/usr/bin/env python3
"""Turn cli/README.md into the manual page interp-pool(1): one source for both.

  md2man.py README.md OUT.1 VERSION

Handles what that README uses: '# name(section)', '## SECTION', '### Subsection', paragraphs,
**bold**, `code`, fenced code blocks, '- ' lists and pipe tables (two columns become tagged
paragraphs; others a tbl table). Anything else is copied as text, escaped for roff."""
import re
import sys


def esc(text):
    text = text.replace("\\", "\\e")
    text = re.sub(r"^([.'])", r"\\&\1", text)
    return text.replace("-", "\\-")


def inline(text):
    out, pos = [], 0
    for m in re.finditer(r"\*\*(.+?)\*\*|`([^`]+)`", text):
        out.append(esc(text[pos:m.start()]))
        out.append("\\fB" + esc(m.group(1) or m.group(2)) + "\\fR")
        pos = m.end()
    out.append(esc(text[pos:]))
    line = "".join(out)
    return "\\&" + line if line[:1] in (".", "'") else line


def cells(row):
    return [c.strip() for c in row.strip().strip("|").split("|")]


def convert(md, version):
    lines = md.splitlines()
    title = re.match(r"#\s+(\S+)\((\d)\)", lines[0])
    name, section = title.group(1), title.group(2)
    out = [f'.TH {name.upper()} {section} "" "{name} {version}" "User Commands"']
    i, para = 1, []

    def flush():
        if para:
            out.append(".PP")
            out.append(inline(" ".join(para)))
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            flush()
            out.append(".PP\n.nf\n.RS 4")
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(esc(lines[i]) if lines[i] else "")
                i += 1
            out.append(".RE\n.fi")
        elif line.startswith("## "):
            flush()
            out.append(".SH " + esc(line[3:].strip().upper()))
        elif line.startswith("### "):
            flush()
            out.append(".SS " + inline(line[4:].strip()))
        elif line.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                if not re.match(r"^\|[\s|:-]+\|$", lines[i]):
                    rows.append(cells(lines[i]))
                i += 1
            i -= 1
            header = rows[0] if rows and not "".join(rows[0]).strip() else None
            for r in rows[1:] if header is not None or rows[0][0] == "option" else rows:
                out.append(".TP\n" + inline(r[0]) + "\n" + inline(" ".join(r[1:])))
        elif line.startswith("- "):
            flush()
            item = [line[2:]]
            while i + 1 < len(lines) and lines[i + 1].startswith("  "):
                i += 1
                item.append(lines[i].strip())
            out.append(".IP \\(bu 2\n" + inline(" ".join(item)))
        elif not line.strip():
            flush()
        else:
            para.append(line.strip())
        i += 1
    flush()
    return "\n".join(out) + "\n"


def main():
    src, dst, version = sys.argv[1:4]
    with open(src, encoding="utf-8") as f:
        page = convert(f.read(), version)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(page)


main()
