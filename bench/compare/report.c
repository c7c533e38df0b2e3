/* report.c - bench_compare's table, CSV, chart and checks. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report.h"

#ifndef BENCH_PLOT_GP
#define BENCH_PLOT_GP "bench/compare/plot.gp"
#endif

bench_row *report_add(bench_rows *rows)
{
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 32;
        bench_row *v = realloc(rows->v, cap * sizeof *v);
        if (!v) {
            fprintf(stderr, "bench_compare: out of memory\n");
            exit(2);
        }
        rows->v = v;
        rows->cap = cap;
    }
    bench_row *r = &rows->v[rows->n++];
    memset(r, 0, sizeof *r);
    return r;
}

void report_free(bench_rows *rows)
{
    free(rows->v);
    memset(rows, 0, sizeof *rows);
}

void report_header(const wl_params *p, bool quick, int cpus, int runs)
{
    printf("bench_compare (%s mode): %d online CPUs, median of %d runs (startup: of %d cycles)\n",
           quick ? "quick" : "full", cpus, runs, quick ? 7 : 21);
    printf("  cpu: %d tasks summing 0..%lld-1 | io: %d tasks sleeping %d ms | tiny: %d tasks x*2"
           " | data: %d tasks of %d floats | startup: create, 1 task, destroy\n",
           p->cpu_tasks, (long long)p->cpu_n, p->io_tasks, p->io_ms, p->tiny_tasks, p->data_tasks,
           p->data_len);
    printf("  executors interleaved within each round (start rotated); speedup: median over the"
           " rounds of\n  sequential's wall / this wall in the same round, [range]; peak RSS:"
           " this process plus its worker processes\n\n");
    printf("%-12s %-10s %7s %7s %11s %8s %13s %12s %13s\n", "workload", "executor", "workers",
           "tasks", "wall ms", "speedup", "spread", "tasks/s", "peak RSS MiB");
}

void report_row(const bench_row *r)
{
    char spread[32];
    snprintf(spread, sizeof spread, "[%.2f..%.2f]", r->speedup_lo, r->speedup_hi);
    printf("%-12s %-10s %7d %7zu %11.2f %8.2f %13s %12.0f %13.1f\n", r->workload, r->executor,
           r->workers, r->tasks, r->wall * 1e3, r->speedup, spread, r->tasks_per_s,
           (double)r->rss_kib / 1024.0);
    fflush(stdout);
}

static const bench_row *find(const bench_rows *rows, const char *workload, const char *exec,
                             int workers)
{
    for (size_t i = 0; i < rows->n; i++) {
        const bench_row *r = &rows->v[i];
        if (!strcmp(r->workload, workload) && !strcmp(r->executor, exec) && r->workers == workers)
            return r;
    }
    return NULL;
}

/* One check from paired ratios: ratio_i = num->rounds[i] / den->rounds[i] (same round), its
 * median against threshold (>= when higher_ok, else <=). Prints PASS / FAIL / NOISE (the
 * rounds straddle the threshold: within noise, no verdict) or SKIP; counts FAILs. */
static void check(int *fails, const char *name, const bench_row *num, const bench_row *den,
                  double threshold, bool higher_ok, const char *what)
{
    if (!num || !den) {
        printf("SKIP  %s (not measured in this run)\n", name);
        return;
    }
    int n = num->runs < den->runs ? num->runs : den->runs;
    paired_stat s = paired_ratio(num->rounds, den->rounds, n);
    paired_verdict v = paired_judge(s, threshold, higher_ok);
    char buf[64];
    printf("%-5s %s: %s %s %s %.2f%s\n", paired_word(v), name, what, paired_fmt(buf, sizeof buf, s),
           higher_ok ? ">=" : "<=", threshold,
           v == PAIRED_NOISE ? " (within noise: the rounds straddle it)" : "");
    if (v == PAIRED_FAIL)
        (*fails)++;
}

/* A speedup check against the machine's capacity in the same round: share_i = (seq_i / x_i)
 * / (c1_i / c2_i), where c1, c2 are the control on 1 and 2 threads (bench/control.c), judged
 * against speedup / 2 (the share of two cores that speedup stands for). A round where another
 * job took a core slows the control too, so the verdict stays; rounds where the control got
 * less than 1.5x judge nothing, and with fewer than 3 such rounds the check says NOISE with no
 * verdict (bench_control_share). The raw speedup is printed beside it. Without the control
 * rows: check() on the raw speedup. */
static void check_scaled(int *fails, const char *name, const bench_rows *rows, const char *wl,
                         const bench_row *x, double speedup)
{
    const bench_row *seq = find(rows, wl, "sequential", 1);
    const bench_row *c1 = find(rows, wl, "control", 1), *c2 = find(rows, wl, "control", 2);
    if (!seq || !x || !c1 || !c2) {
        check(fails, name, seq, x, speedup, true, "speedup");
        return;
    }
    int n = x->runs < PAIRED_MAX ? x->runs : PAIRED_MAX;
    double sp[PAIRED_MAX] = {0}, cs[PAIRED_MAX] = {0};
    for (int i = 0; i < n; i++) {
        sp[i] = seq->rounds[i] / x->rounds[i];
        cs[i] = c1->rounds[i] / c2->rounds[i];
    }
    int kept;
    paired_stat share = bench_control_share(sp, cs, n, &kept);
    paired_stat raw = paired_of(sp, n), ctl = paired_of(cs, n);
    double threshold = speedup / 2;
    char a[64], b[64], c[64];
    if (kept < 3) { /* no verdict: a busy machine, not a slow executor */
        printf("NOISE %s: speedup %s, the control (plain Lua states) %s in the same rounds: "
               "no verdict (the control got %.1fx or more in only %d of %d rounds: another job "
               "holds a core)\n",
               name, paired_fmt(a, sizeof a, raw), paired_fmt(b, sizeof b, ctl), BENCH_CONTROL_MIN,
               kept, n);
        return;
    }
    paired_verdict v = paired_judge(share, threshold, true);
    printf("%-5s %s: speedup %s, the control (plain Lua states) %s in the same rounds: share of "
           "the machine's "
           "parallelism %s >= %.2f (= %.2fx on two free cores; %d of %d rounds, where the control "
           "got %.1fx or more)%s\n",
           paired_word(v), name, paired_fmt(a, sizeof a, raw), paired_fmt(b, sizeof b, ctl),
           paired_fmt(c, sizeof c, share), threshold, speedup, kept, n, BENCH_CONTROL_MIN,
           v == PAIRED_NOISE ? " (within noise: the rounds straddle it)" : "");
    if (v == PAIRED_FAIL)
        (*fails)++;
}

int report_checks(const bench_rows *rows, const bench_row *prestart)
{
    int fails = 0;
    char name[128];
    printf("\nchecks (2 workers; paired ratio: median [lowest..highest round] over the rounds):\n");
    const bench_row *seq = find(rows, "cpu", "sequential", 1);
    check(&fails, "cpu, gil serialises", find(rows, "cpu", "gil", 2) ? seq : NULL,
          find(rows, "cpu", "gil", 2), 1.1, false, "speedup");
    const char *par[] = {"process", "interp"};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "cpu, %s runs in parallel", par[i]);
        check_scaled(&fails, name, rows, "cpu", find(rows, "cpu", par[i], 2), 1.8);
    }
    const char *pools[] = {"gil", "process", "interp"};
    seq = find(rows, "io", "sequential", 1);
    for (int i = 0; i < 3; i++) {
        bool any = false;
        for (size_t k = 0; k < rows->n; k++) {
            const bench_row *r = &rows->v[k];
            if (strcmp(r->workload, "io") || strcmp(r->executor, pools[i]) || r->workers < 2)
                continue;
            snprintf(name, sizeof name, "io, %s on %d workers overlaps the waits", pools[i],
                     r->workers);
            check(&fails, name, seq, r, 0.8 * r->workers, true, "speedup");
            any = true;
        }
        if (!any) {
            snprintf(name, sizeof name, "io, %s overlaps the waits", pools[i]);
            check(&fails, name, NULL, NULL, 0, true, "");
        }
    }
    const bench_row *ti = find(rows, "tiny-submit", "interp", 2);
    const bench_row *tp = find(rows, "tiny-submit", "process", 2);
    check(&fails, "tiny (one by one), interp >= 5x process tasks/s", tp, ti, 5, true,
          "interp/process tasks/s");
    ti = find(rows, "tiny-map", "interp", 2);
    tp = find(rows, "tiny-map", "process", 2);
    if (ti && tp) {
        char buf[64];
        printf("INFO  tiny (map, both chunked), interp vs process: %.0f vs %.0f tasks/s, paired "
               "%sx\n",
               ti->tasks_per_s, tp->tasks_per_s,
               paired_fmt(buf, sizeof buf, paired_ratio(tp->rounds, ti->rounds, ti->runs)));
    }
    const bench_row *si = find(rows, "startup", "interp", 2);
    const bench_row *sp = find(rows, "startup", "process", 2);
    check(&fails, "startup, interp >= 10x faster than process", sp, si, 10, true,
          "process/interp wall");
    if (si && sp)
        printf("      (medians: interp %.3f ms, process %.3f ms)\n", si->wall * 1e3,
               sp->wall * 1e3);
    if (sp && prestart) {
        char buf[64];
        printf("INFO  startup, interp with prestart (both workers started in create): %.3f ms, "
               "process/this %sx\n",
               prestart->wall * 1e3,
               paired_fmt(buf, sizeof buf, paired_ratio(sp->rounds, prestart->rounds, sp->runs)));
    }
    const bench_row *di = find(rows, "data", "interp", 2);
    const bench_row *dp = find(rows, "data", "process", 2);
    check(&fails, "data, interp within 1.5x of process or better", di, dp, 1.5, false,
          "interp/process wall");
    check_scaled(&fails, "shared (data frozen once), interp runs in parallel", rows, "shared",
                 find(rows, "shared", "interp", 2), 1.9);
    printf("%d check(s) failed\n", fails);
    return fails;
}

/* mkdir -p of the folder holding path (best effort). */
static void make_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0777);
            *p = '/';
        }
}

static const char csv_header[] =
    "impl,executor,workload,workers,tasks,runs,wall_s,speedup,tasks_per_s,peak_rss_kib\n";

int report_csv(const bench_rows *rows, const char *path)
{
    make_parent(path);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_compare: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs(csv_header, f);
    for (size_t i = 0; i < rows->n; i++) {
        const bench_row *r = &rows->v[i];
        fprintf(f, "%s,%s,%s,%d,%zu,%d,%.6f,%.6g,%.1f,%ld\n", r->impl, r->executor, r->workload,
                r->workers, r->tasks, r->runs, r->wall, r->speedup, r->tasks_per_s, r->rss_kib);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_compare: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the chart -------------------------------------------------------------------------- */

enum { MAX_SERIES = 8, MAX_WL = 16 };

typedef struct chart {
    const char *series[MAX_SERIES];
    int n_series;
    char workloads[MAX_WL][32];
    int n_wl;
    double v[MAX_WL][MAX_SERIES];
} chart;

static int chart_index(const char **names, int *n, int max, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(names[i], name))
            return i;
    return *n < max ? (names[*n] = name, (*n)++) : -1;
}

static void chart_put(chart *c, const char *workload, const char *series, double speedup)
{
    int w = -1;
    for (int i = 0; i < c->n_wl; i++)
        if (!strcmp(c->workloads[i], workload))
            w = i;
    if (w < 0 && c->n_wl < MAX_WL) {
        w = c->n_wl++;
        snprintf(c->workloads[w], sizeof c->workloads[w], "%s", workload);
        for (int s = 0; s < MAX_SERIES; s++)
            c->v[w][s] = NAN;
    }
    int s = chart_index(c->series, &c->n_series, MAX_SERIES, series);
    if (w >= 0 && s >= 0)
        c->v[w][s] = speedup;
}

/* The Python CSV's rows at `workers` workers, as series "py-<executor>". */
static void chart_python(chart *c, const char *path, int workers)
{
    static char names[MAX_SERIES][40];
    FILE *f = fopen(path, "r");
    char line[512];
    int used = 0;
    while (f && fgets(line, sizeof line, f)) {
        char impl[32], exec[32], wl[32];
        int w;
        double speedup;
        if (sscanf(line, "%31[^,],%31[^,],%31[^,],%d,%*[^,],%*[^,],%*[^,],%lf", impl, exec, wl, &w,
                   &speedup) != 5 ||
            w != workers || !strcmp(exec, "sequential"))
            continue;
        char name[40];
        snprintf(name, sizeof name, "py-%s", exec);
        int k = 0;
        while (k < used && strcmp(names[k], name))
            k++;
        if (k == used) {
            if (used == MAX_SERIES)
                continue;
            snprintf(names[used++], sizeof names[0], "%s", name);
        }
        chart_put(c, wl, names[k], speedup);
    }
    if (f)
        fclose(f);
}

void report_plot(const bench_rows *rows, const char *csv, const char *python_csv, int workers)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        printf("chart: skipped (gnuplot is not installed; Debian: apt install gnuplot-nox)\n");
        return;
    }
    chart c = {0};
    for (size_t i = 0; i < rows->n; i++) {
        const bench_row *r = &rows->v[i];
        if (r->workers == workers && strcmp(r->executor, "sequential"))
            chart_put(&c, r->workload, r->executor, r->speedup);
    }
    const char *py = python_csv ? python_csv : "build/compare_python.csv";
    chart_python(&c, py, workers);

    char base[4096], dat[4200], png[4200], cmd[9000];
    snprintf(base, sizeof base, "%s", csv);
    char *dot = strrchr(base, '.'), *slash = strrchr(base, '/');
    if (dot && (!slash || dot > slash))
        *dot = '\0';
    snprintf(dat, sizeof dat, "%s_chart.dat", base);
    snprintf(png, sizeof png, "%s.png", base);
    FILE *f = fopen(dat, "w");
    if (!f) {
        fprintf(stderr, "bench_compare: cannot write %s: %s\n", dat, strerror(errno));
        return;
    }
    fprintf(f, "workload");
    for (int s = 0; s < c.n_series; s++)
        fprintf(f, " %s", c.series[s]);
    fprintf(f, "\n");
    for (int w = 0; w < c.n_wl; w++) {
        fprintf(f, "%s", c.workloads[w]);
        for (int s = 0; s < c.n_series; s++)
            if (isnan(c.v[w][s]))
                fprintf(f, " ?");
            else
                fprintf(f, " %.6g", c.v[w][s]);
        fprintf(f, "\n");
    }
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "gnuplot -e \"datafile='%s'; outfile='%s'; nworkers=%d; nseries=%d\" '%s'", dat, png,
             workers, c.n_series, BENCH_PLOT_GP);
    if (system(cmd) == 0)
        printf("chart: %s\n", png);
    else
        fprintf(stderr, "bench_compare: gnuplot failed (%s)\n", cmd);
}
