#!/bin/sh
# Fuzz one libFuzzer target on a scratch copy of its committed seed corpus, for
# $INTERP_FUZZ_SECONDS seconds (default 60). Exits non-zero on any finding (crash, leak,
# timeout, sanitizer report); the reproducer is left in the work directory.
# Usage: run_fuzz.sh <fuzzer binary> <seed corpus dir> <work dir>
set -eu
bin=$1 seeds=$2 work=$3
secs=${INTERP_FUZZ_SECONDS:-60}
rm -rf "$work/corpus"
mkdir -p "$work/corpus"
cp "$seeds"/* "$work/corpus/"
echo "fuzzing $(basename "$bin") for ${secs}s (corpus: $(ls "$work/corpus" | wc -l) seeds)"
# -timeout=2: an input of at most 16 KiB that takes 2 s is a finding (the decoder is linear:
# milliseconds under the sanitizers)
exec "$bin" -max_total_time="$secs" -timeout=2 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus"
