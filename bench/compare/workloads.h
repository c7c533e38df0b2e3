/* workloads.h - the workloads of bench_compare, identical for every executor. */
#ifndef BENCH_WORKLOADS_H
#define BENCH_WORKLOADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

/* Sizes of one benchmark run (quick or full mode). */
typedef struct wl_params {
    int64_t cpu_n; /* each cpu task sums 0..cpu_n-1 */
    int cpu_tasks; /* 15, as in the Python articles */
    int io_tasks;  /* each sleeps io_ms */
    int io_ms;
    int tiny_tasks; /* x * 2 tasks */
    int data_tasks; /* each gets a table of data_len floats (1 MiB of numbers) */
    int data_len;
} wl_params;

/* One timed run of a workload on a running executor: *secs is the wall time of the part
 * that is timed (submitting and collecting, not building the inputs), *tasks the number of
 * tasks. Every result is checked: a wrong one returns INTERP_ERR_INVALID with err set. */
typedef int (*wl_run_fn)(const bench_exec *e, void *ex, const wl_params *p, double *secs,
                         size_t *tasks, char err[BENCH_ERRLEN]);

typedef struct workload {
    const char *name;
    const char *what;
    wl_run_fn run; /* NULL for startup, which times create + one task + destroy itself */
    bool warmup;   /* one untimed run first (cheap workloads: page faults, allocator growth) */
    bool control;  /* a speedup check uses it: the control runs in every round (bench/control.c) */
} workload;

extern const workload bench_workloads[];
extern const size_t bench_n_workloads;

/* The Lua chunk every executor runs once per state: the task functions. */
extern const char bench_init_source[];

/* startup: create an executor with `workers` workers, get one checked result, destroy it.
 * *secs is the time of all of it; *child_rss_kib as the executor's destroy reports it. */
int bench_startup_once(const bench_exec *e, int workers, double *secs, long *child_rss_kib,
                       char err[BENCH_ERRLEN]);

/* Close the host state the workloads use to build inputs and read results. */
void bench_workloads_done(void);

/* Seconds on the monotonic clock. */
double bench_now(void);

#endif
