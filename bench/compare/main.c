/* main.c - bench_compare: the headline comparison. Runs every workload (workloads.c) on every
 * executor (sequential, gil, process, interp) with 1, 2 and online-CPUs workers, prints a
 * table, writes a CSV (and a PNG chart when gnuplot is installed), then prints the checks the
 * project promises as PASS/FAIL/NOISE lines.
 *
 * The executors of one workload run interleaved: round i runs every executor once, starting
 * with a different one each round, so a drift of a shared machine hits them alike. Speedups
 * and checks are paired ratios (the median of the per-round ratios, with their range),
 * never a ratio of two medians taken minutes apart (bench/paired.h).
 *
 * Exit status: 0 when every run returned the right results (checks may still FAIL, since a
 * loaded machine is not a wrong result; --strict turns a FAIL into exit status 3), 2 when a
 * run failed or returned a wrong result, 1 on bad usage. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"
#include "workloads.h"

static const bench_exec *const all_execs[] = {
    &bench_exec_sequential,
    &bench_exec_gil,
    &bench_exec_process,
    &bench_exec_interp,
};
enum { N_EXECS = sizeof all_execs / sizeof all_execs[0] };

typedef struct cmd_config {
    bool quick, strict;
    int runs;
    const char *csv, *python_csv, *only, *execs;
    wl_params p;
} cmd_config;

/* ---- peak resident memory --------------------------------------------------------------- */

/* Reset this process's peak RSS (VmHWM) to its current RSS; false where the kernel refuses. */
static bool hwm_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/* Peak RSS of this process in KiB: since the last reset, or over its lifetime. */
static long hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    if (kib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = ru.ru_maxrss;
    }
    return kib;
}

/* ---- measuring ------------------------------------------------------------------------ */

static _Noreturn void run_failed(const bench_exec *e, const workload *w, int workers,
                                 const char *err)
{
    fflush(stdout);
    fprintf(stderr, "bench_compare: %s on %s with %d workers FAILED: %s\n", w->name, e->name,
            workers, err);
    exit(2);
}

/* One row of a workload being measured: an executor with a number of workers, or the C
 * control on that many threads (e == NULL). */
typedef struct config {
    const bench_exec *e;
    int workers;
    bool prestart; /* interp with every worker started in create (startup's INFO line) */
    bench_row *r;
    void *ex; /* the running executor (not for startup) */
    long child_max;
} config;

static const char control_name[] = "control";
static uint64_t control_iters; /* the control's size: ~30 ms (quick) or ~100 ms on 1 thread */

static int config_order(const config *c)
{
    /* fork the process pools before any other executor starts threads */
    return c->e == &bench_exec_process ? 0 : 1;
}

/* One timed run of configuration k (round i): fills k->r->rounds[i]. */
static void run_one(const cmd_config *c, const workload *w, config *k, int i)
{
    char err[BENCH_ERRLEN] = "";
    long child = 0;
    double t = 0;
    hwm_reset();
    if (!k->e) {
        t = bench_control_run(k->workers, control_iters);
        k->r->tasks = (size_t)k->workers;
    } else if (!w->run) { /* startup: each run is a whole create / task / destroy cycle */
        bench_interp_prestart = k->prestart;
        int rc = bench_startup_once(k->e, k->workers, &t, &child, err);
        bench_interp_prestart = false;
        if (rc != INTERP_OK)
            run_failed(k->e, w, k->workers, err);
        k->child_max = child > k->child_max ? child : k->child_max;
        k->r->tasks = 1;
    } else if (w->run(k->e, k->ex, &c->p, &t, &k->r->tasks, err) != INTERP_OK) {
        k->e->destroy(k->ex, &child);
        run_failed(k->e, w, k->workers, err);
    }
    k->r->rounds[i] = t;
    long hwm = hwm_kib();
    k->r->rss_kib = hwm > k->r->rss_kib ? hwm : k->r->rss_kib;
}

/* Measure every configuration of workload w interleaved: all executors are created first,
 * then round i runs each once, starting with configuration i mod n, so that a drift of the
 * machine hits every executor alike and the per-round ratios stay fair. */
static void measure_interleaved(const cmd_config *c, const workload *w, config *ks, int n)
{
    char err[BENCH_ERRLEN] = "";
    int runs = w->run ? c->runs : c->quick ? 7 : 21;
    for (int pass = 0; pass < 2 && w->run; pass++)
        for (int j = 0; j < n; j++) {
            config *k = &ks[j];
            if (!k->e || config_order(k) != pass)
                continue;
            bench_interp_prestart = k->prestart;
            int rc = k->e->create(&k->ex, k->workers, bench_init_source, err);
            bench_interp_prestart = false;
            if (rc != INTERP_OK)
                run_failed(k->e, w, k->workers, err);
            if (w->warmup &&
                w->run(k->e, k->ex, &c->p, &k->r->rounds[0], &k->r->tasks, err) != INTERP_OK)
                run_failed(k->e, w, k->workers, err);
        }
    for (int i = 0; i < runs; i++)
        for (int j = 0; j < n; j++)
            run_one(c, w, &ks[(i + j) % n], i);
    for (int j = 0; j < n && w->run; j++)
        if (ks[j].e)
            ks[j].e->destroy(ks[j].ex, &ks[j].child_max);
    const bench_row *seq = ks[0].r; /* configuration 0 is always sequential */
    for (int j = 0; j < n; j++) {
        bench_row *r = ks[j].r;
        if (!ks[j].e && ks[j].workers == 1)
            seq = r; /* the control's speedups: over its own 1-thread run (it follows) */
        r->impl = "c";
        r->executor = ks[j].e ? ks[j].e->name : control_name;
        r->workload = w->name;
        r->workers = ks[j].workers;
        r->runs = runs;
        r->wall = paired_of(r->rounds, runs).med;
        r->tasks_per_s = (double)r->tasks / r->wall;
        r->rss_kib += ks[j].child_max;
        paired_stat s = paired_ratio(seq->rounds, r->rounds, runs);
        r->speedup = s.med;
        r->speedup_lo = s.lo;
        r->speedup_hi = s.hi;
    }
}

/* ---- options ---------------------------------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: bench_compare [--quick] [--runs N] [--csv PATH] [--python-csv PATH]\n"
            "                     [--only WORKLOAD,...] [--exec EXECUTOR,...] [--strict]\n"
            "  --quick        small sizes, 5 runs each (under a minute on 2 cores)\n"
            "  --runs N       rounds (default 5; a noisy machine may want more): each runs every\n"
            "                 executor once, interleaved; medians and paired ratios are reported\n"
            "  --csv PATH     where to write the CSV (default build/compare.csv); the chart\n"
            "                 (when gnuplot is installed) goes beside it as .png\n"
            "  --python-csv PATH  put bench/python/compare.py's CSV into the chart too\n"
            "                 (default: build/compare_python.csv when it exists)\n"
            "  --only LIST    workloads among: cpu io tiny-submit tiny-map data shared startup\n"
            "  --exec LIST    executors among: sequential gil process interp\n"
            "  --strict       exit status 3 when a check FAILs\n");
}

static bool in_list(const char *list, const char *name)
{
    if (!list)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

static void parse(int argc, char **argv, cmd_config *c)
{
    memset(c, 0, sizeof *c);
    c->csv = "build/compare.csv";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick"))
            c->quick = true;
        else if (!strcmp(a, "--full"))
            c->quick = false;
        else if (!strcmp(a, "--strict"))
            c->strict = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            usage(stdout), exit(0);
        else if (v && !strcmp(a, "--runs"))
            c->runs = atoi(v), i++;
        else if (v && !strcmp(a, "--csv"))
            c->csv = v, i++;
        else if (v && !strcmp(a, "--python-csv"))
            c->python_csv = v, i++;
        else if (v && !strcmp(a, "--only"))
            c->only = v, i++;
        else if (v && !strcmp(a, "--exec"))
            c->execs = v, i++;
        else {
            fprintf(stderr, "bench_compare: bad argument '%s'\n", a);
            usage(stderr);
            exit(1);
        }
    }
    if (c->runs == 0)
        c->runs = 5; /* a median of 3 let one slow run of sequential fail a check */
    if (c->runs < 1 || c->runs > 64) {
        fprintf(stderr, "bench_compare: --runs must be 1..64\n");
        exit(1);
    }
    if (c->quick)
        c->p = (wl_params){.cpu_n = 2000000,
                           .cpu_tasks = 15,
                           .io_tasks = 8,
                           .io_ms = 20,
                           .tiny_tasks = 100000,
                           .data_tasks = 16,
                           .data_len = 131072};
    else
        c->p = (wl_params){.cpu_n = 10000000,
                           .cpu_tasks = 15,
                           .io_tasks = 32,
                           .io_ms = 20,
                           .tiny_tasks = 100000,
                           .data_tasks = 64,
                           .data_len = 131072};
}

int main(int argc, char **argv)
{
    cmd_config c;
    parse(argc, argv, &c);
    signal(SIGPIPE, SIG_IGN);

    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int cpus = online > 0 ? (int)online : 1;
    int wl_list[3] = {1, 2, cpus}, n_w = cpus > 2 ? 3 : 2;

    bench_rows rows = {0};
    bench_row prestart_row = {0};
    bool have_prestart = false;
    report_header(&c.p, c.quick, cpus, c.runs);
    control_iters = bench_control_iters(c.quick ? 0.03 : 0.1);
    for (size_t wi = 0; wi < bench_n_workloads; wi++) {
        const workload *w = &bench_workloads[wi];
        if (!in_list(c.only, w->name))
            continue;
        config ks[3 * N_EXECS + 3];
        int n = 0;
        size_t first = rows.n;
        for (int ei = 0; ei < N_EXECS; ei++) {
            const bench_exec *e = all_execs[ei];
            bool seq = e == &bench_exec_sequential;
            if (!seq && !in_list(c.execs, e->name))
                continue; /* sequential always runs: it is what speedups are measured against */
            if (e == &bench_exec_process && strcmp(w->name, "shared") == 0)
                continue; /* a frozen value's handle is an address: in-process executors only */
            for (int k = 0; k < (seq ? 1 : n_w); k++)
                ks[n++] = (config){.e = e, .workers = wl_list[k]};
        }
        for (int k = 0; k < 2 && w->control; k++) /* the machine's capacity, 1 and 2 threads */
            ks[n++] = (config){.e = NULL, .workers = 1 + k};
        for (int j = 0; j < n; j++)
            report_add(&rows);
        for (int j = 0; j < n; j++)
            ks[j].r = &rows.v[first + (size_t)j];
        /* The startup cycle also with every worker started in create: interp's pools start
         * their workers on demand by default, as Python's executors do. */
        if (!w->run && in_list(c.execs, bench_exec_interp.name)) {
            ks[n++] = (config){
                .e = &bench_exec_interp, .workers = 2, .prestart = true, .r = &prestart_row};
            have_prestart = true;
        }
        measure_interleaved(&c, w, ks, n);
        for (size_t j = first; j < rows.n; j++)
            report_row(&rows.v[j]);
    }
    int failed = report_checks(&rows, have_prestart ? &prestart_row : NULL);
    if (report_csv(&rows, c.csv) == 0)
        printf("\nCSV: %s\n", c.csv);
    report_plot(&rows, c.csv, c.python_csv, wl_list[n_w - 1]);
    report_free(&rows);
    bench_workloads_done();
    return failed && c.strict ? 3 : 0;
}
