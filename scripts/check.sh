#!/usr/bin/env bash
# The README's second command (and CI's): build and run the whole test suite three times
# (Release, ASan+UBSan, TSan; separate build folders), then fuzz the message decoder.
# Before the Release stage, scripts/long_functions.py checks that no function is over 80 lines
# (but its allow-list) and scripts/format_check.sh that the C files follow .clang-format. After it, the same suite runs again with both cores kept busy
# (scripts/loaded.sh).
# The luarocks stage installs the rock into a scratch tree, uses it and removes it; the deb
# stage builds the Debian packages, unpacks them into a scratch root and builds against them.
# INTERP_FUZZ_SECONDS (default 60) sets the fuzzing time;
# INTERP_CHECK_ONLY=release|loaded|asan|tsan|luarocks|deb|fuzz runs one stage (loaded builds
# release first).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
only=${INTERP_CHECK_ONLY:-}

stage() { # name cmake-args...
  local name=$1; shift
  [ -n "$only" ] && [ "$only" != "$name" ] && return 0
  echo "=== $name ==="
  cmake -S . -B "build/$name" "$@" >/dev/null
  cmake --build "build/$name" -j"$jobs" >/dev/null
  (cd "build/$name" && ctest --output-on-failure -j"$jobs")
}

if [ -z "$only" ] || [ "$only" = release ]; then
  echo "=== long functions, format ==="
  scripts/long_functions.py # no function over 80 lines but its allow-list
  scripts/format_check.sh   # every C file follows .clang-format
fi
stage release -DCMAKE_BUILD_TYPE=Release
if [ -z "$only" ] || [ "$only" = loaded ]; then
  echo "=== loaded ==="
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release -j"$jobs" >/dev/null
  scripts/loaded.sh build/release
fi
stage asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINTERP_SANITIZE=address,undefined -DINTERP_BUILD_BENCH=OFF
# TSan needs a fixed address-space layout on kernels with high mmap randomisation.
TSAN_RUN=""
setarch "$(uname -m)" -R true 2>/dev/null && TSAN_RUN="setarch $(uname -m) -R"
if [ -z "$only" ] || [ "$only" = tsan ]; then
  echo "=== tsan ==="
  cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINTERP_SANITIZE=thread -DINTERP_BUILD_BENCH=OFF >/dev/null
  cmake --build build/tsan -j"$jobs" >/dev/null
  (cd build/tsan && $TSAN_RUN ctest --output-on-failure -j"$jobs")
fi
if [ -z "$only" ] || [ "$only" = luarocks ]; then
  echo "=== luarocks ==="
  scripts/rock_check.sh
fi
if [ -z "$only" ] || [ "$only" = deb ]; then
  echo "=== deb ==="
  scripts/deb_check.sh
fi
if [ -z "$only" ] || [ "$only" = fuzz ]; then
  echo "=== fuzz ==="
  CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINTERP_FUZZ=ON \
    -DINTERP_BUILD_TESTS=ON -DINTERP_BUILD_BENCH=OFF -DINTERP_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build build/fuzz -j"$jobs" --target fuzz_all >/dev/null
  cmake --build build/fuzz --target fuzz_run
fi
echo "check: all stages passed"
