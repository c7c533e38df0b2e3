#!/usr/bin/env bash
# format_check.sh - the C sources follow .clang-format (clang-format 14's --dry-run --Werror).
# Checks every tracked .c and .h file (but those listed in scripts/format_pending.txt, if it
# exists: files left to reformat). `scripts/format_check.sh --fix FILE...` reformats the files
# given in place.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --fix ]; then
  shift
  exec clang-format -i --style=file "$@"
fi
pending=scripts/format_pending.txt
mapfile -t files < <(git ls-files '*.c' '*.h' | { if [ -f "$pending" ]; then grep -vxF -f "$pending"; else cat; fi; })
clang-format --dry-run --Werror --style=file "${files[@]}"
echo "format_check: ${#files[@]} files follow .clang-format"
