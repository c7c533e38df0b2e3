#!/usr/bin/env bash
# Run the Release test suite once while two busy loops keep both cores occupied: a test must
# hold on a loaded machine (never depend on which of two timers wins). Called by scripts/check.sh
# (stage "loaded") after the Release stage has built build/release; runs on its own too:
#   scripts/loaded.sh [BUILD_DIR]      (default build/release, which must be built)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/release}
[ -f "$dir/CTestTestfile.cmake" ] || { echo "loaded.sh: build $dir first" >&2; exit 2; }
loops=()
stop_loops() { for p in "${loops[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_loops EXIT
for _ in 1 2; do
  bash -c 'while :; do :; done' &
  loops+=($!)
done
echo "loaded.sh: busy loops ${loops[*]} on $(nproc) cores; running the suite in $dir"
(cd "$dir" && ctest --output-on-failure -j"$(nproc)")
