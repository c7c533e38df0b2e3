#!/usr/bin/env bash
# The README's first command: install what is missing, build, run the headline demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
if [ -x build/release/bench/bench_compare ]; then
  exec build/release/bench/bench_compare --quick
fi
exec build/release/bench/bench_msg
