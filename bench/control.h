/* control.h - the machine's own parallel capacity for Lua code, measured beside a benchmark.
 *
 * Shared by bench_compare (its speedup checks) and bench_pool (the seed workload): run in
 * every round beside what is judged, the control's 2-thread speedup says how much parallelism
 * the machine gave Lua code that round (control.c says why a Lua loop, not a C one). */
#ifndef BENCH_CONTROL_H
#define BENCH_CONTROL_H

#include <stdint.h>

#include "paired.h"

/* Wall seconds of `iters` steps of a Lua loop (`s = s + i`) split evenly over `threads` plain
 * threads, each in a plain lua_State of its own (start, state and join included). Exits the
 * program with a message if a thread cannot start or the loop's result is wrong. */
double bench_control_run(int threads, uint64_t iters);

/* How many steps the 1-thread control takes to run about `secs` seconds here. */
uint64_t bench_control_iters(double secs);

/* A speedup judged against the control: share_i = speedup_i / control_i over the rounds where
 * the control got at least BENCH_CONTROL_MIN (the machine gave Lua code 1.5 cores or more);
 * *kept says how many rounds that was. In a round where another job holds a core, a pool that
 * serialises everything would look as good as a parallel one (both ~1x: share 1), so such
 * rounds judge nothing; with fewer than 3 kept, say so instead of a verdict. */
#define BENCH_CONTROL_MIN 1.5
paired_stat bench_control_share(const double *speedup, const double *control, int n, int *kept);

#endif
