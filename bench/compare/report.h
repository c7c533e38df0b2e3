/* report.h - bench_compare's output: the table, the CSV, the chart and the checks. */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "paired.h"
#include "workloads.h"

/* One measurement: an executor on a workload with a number of workers. */
typedef struct bench_row {
    const char *impl; /* "c" here, "python" in bench/python/compare.py's CSV */
    const char *executor;
    const char *workload;
    int workers;
    size_t tasks;
    int runs;
    double wall;    /* median wall time of the runs, seconds */
    double speedup; /* median of the per-round ratios sequential's wall / this wall */
    double speedup_lo, speedup_hi; /* their range over the rounds (the spread) */
    double rounds[PAIRED_MAX];     /* wall time of each run; run i of every row of a workload
                                    * belongs to the same interleaved round */
    double tasks_per_s;
    long rss_kib; /* peak resident memory, this process plus worker processes */
} bench_row;

typedef struct bench_rows {
    bench_row *v;
    size_t n, cap;
} bench_rows;

/* A new zeroed row at the end (exits on out of memory: nothing to measure without it). */
bench_row *report_add(bench_rows *rows);
void report_free(bench_rows *rows);

void report_header(const wl_params *p, bool quick, int cpus, int runs);
void report_row(const bench_row *r);
/* Print the promised checks as PASS / FAIL / NOISE / SKIP lines from paired, same-round
 * ratios (NOISE: their range straddle the threshold); returns the number of FAILs. */
/* prestart: the interp startup cycle on 2 workers with every worker started in create
 * (NULL: not measured), interleaved with the startup rows, printed beside the startup check. */
int report_checks(const bench_rows *rows, const bench_row *prestart);
/* Write the CSV (creating its folder if missing). 0 or -1 (a message on stderr). */
int report_csv(const bench_rows *rows, const char *path);
/* When gnuplot is installed: a PNG (the CSV's path with .png) of the speedup of each
 * executor per workload at `workers` workers, with the Python CSV's rows beside them when
 * python_csv (or build/compare_python.csv) is readable. */
void report_plot(const bench_rows *rows, const char *csv, const char *python_csv, int workers);

#endif
