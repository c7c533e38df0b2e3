#!/usr/bin/env bash
# Regenerate docs/compare.png, the README's chart, from a real run: bench_compare --quick
# (Release build), then gnuplot (docs/chart.gp). The title names the machine and the date.
#   scripts/chart.sh [OUT.png]      (default docs/compare.png)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/compare.png}
scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)" --target bench_compare >/dev/null
mkdir -p build/chart
load=$(cut -d' ' -f1 /proc/loadavg) # before the run: the run itself loads the cores
build/release/bench/bench_compare --quick --csv build/chart/compare.csv > build/chart/run.txt
csv=build/chart/compare.csv
# the largest worker count of the run, and from it: speedups per workload, tiny-task rates
awk -F, -f /dev/stdin "$csv" > build/chart/speed.dat <<'AWK'
$1 == "c" && $4 > max { max = $4 }
{ rows[NR] = $0 }
END {
  print "workload gil process interp"
  n = split("cpu io data shared", wl, " ")
  for (i = 1; i <= n; i++) {
    line = wl[i]; any = 0
    split("gil process interp", ex, " ")
    for (j = 1; j <= 3; j++) {
      v = "?"
      for (r in rows) { split(rows[r], f, ","); if (f[1] == "c" && f[2] == ex[j] && f[3] == wl[i] && f[4] == max) v = f[8] }
      if (v != "?") any = 1
      line = line " " v
    }
    if (any) print line
  }
}
AWK
awk -F, -f /dev/stdin "$csv" > build/chart/rates.dat <<'AWK'
$1 == "c" && $4 > max { max = $4 }
{ rows[NR] = $0 }
END {
  print "workload sequential gil process interp"
  n = split("tiny-submit tiny-map", wl, " ")
  for (i = 1; i <= n; i++) {
    line = wl[i]
    split("sequential gil process interp", ex, " ")
    for (j = 1; j <= 4; j++) {
      v = "?"
      for (r in rows) { split(rows[r], f, ","); if (f[1] == "c" && f[2] == ex[j] && f[3] == wl[i] && (f[4] == max || ex[j] == "sequential")) v = f[9] }
      line = line " " v
    }
    print line
  }
}
AWK
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
label="interp_pool vs. one locked state (gil) and forked processes (process): bench_compare --quick"
machine="$(hostname), $(nproc) cores ($cpu), load average $load before the run, $(date -u '+%Y-%m-%d %H:%M') UTC"
gnuplot -e "speedfile='build/chart/speed.dat'; ratefile='build/chart/rates.dat'; outfile='$out'; label='$label'; machine='$machine'" docs/chart.gp
echo "chart: $out (run: build/chart/run.txt)"
