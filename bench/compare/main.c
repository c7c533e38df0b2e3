/* main.c - bench_compare: the headline comparison. Runs every workload (workloads.c) on every
 * executor (sequential, gil, process, interp) with 1, 2 and online-CPUs workers, prints a
 * table, writes a CSV (and a PNG chart when gnuplot is installed), then prints the checks the
 * project promises as PASS/FAIL lines.
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

typedef struct config {
    bool quick, strict;
    int runs;
    const char *csv, *python_csv, *only, *execs;
    wl_params p;
} config;

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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static _Noreturn void run_failed(const bench_exec *e, const workload *w, int workers,
                                 const char *err)
{
    fflush(stdout);
    fprintf(stderr, "bench_compare: %s on %s with %d workers FAILED: %s\n", w->name, e->name,
            workers, err);
    exit(2);
}

/* Time `runs` runs of workload w on a fresh executor; fill r. */
static void measure(const config *c, const bench_exec *e, const workload *w, int workers,
                    bench_row *r)
{
    char err[BENCH_ERRLEN] = "";
    double t[64];
    int runs = c->runs;
    long child = 0, child_max = 0;
    hwm_reset();
    if (!w->run) { /* startup: each run is a whole create / task / destroy cycle */
        runs = c->quick ? 7 : 21;
        for (int i = 0; i < runs; i++) {
            if (bench_startup_once(e, workers, &t[i], &child, err) != INTERP_OK)
                run_failed(e, w, workers, err);
            child_max = child > child_max ? child : child_max;
        }
        r->tasks = 1;
    } else {
        void *ex = NULL;
        if (e->create(&ex, workers, bench_init_source, err) != INTERP_OK)
            run_failed(e, w, workers, err);
        if (w->warmup && w->run(e, ex, &c->p, &t[0], &r->tasks, err) != INTERP_OK) {
            e->destroy(ex, &child);
            run_failed(e, w, workers, err);
        }
        for (int i = 0; i < runs; i++)
            if (w->run(e, ex, &c->p, &t[i], &r->tasks, err) != INTERP_OK) {
                e->destroy(ex, &child);
                run_failed(e, w, workers, err);
            }
        e->destroy(ex, &child_max);
    }
    r->impl = "c";
    r->executor = e->name;
    r->workload = w->name;
    r->workers = workers;
    r->runs = runs;
    r->wall = median(t, runs);
    r->tasks_per_s = (double)r->tasks / r->wall;
    r->rss_kib = hwm_kib() + child_max;
}

/* ---- options ---------------------------------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: bench_compare [--quick] [--runs N] [--csv PATH] [--python-csv PATH]\n"
            "                     [--only WORKLOAD,...] [--exec EXECUTOR,...] [--strict]\n"
            "  --quick        small sizes, 5 runs each (under a minute on 2 cores)\n"
            "  --runs N       timed runs per row, the median is reported (default 5; a noisy machine may want more)\n"
            "  --csv PATH     where to write the CSV (default build/compare.csv); the chart\n"
            "                 (when gnuplot is installed) goes beside it as .png\n"
            "  --python-csv PATH  put bench/python/compare.py's CSV into the chart too\n"
            "                 (default: build/compare_python.csv when it exists)\n"
            "  --only LIST    workloads among: cpu io tiny-submit tiny-map data startup\n"
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

static void parse(int argc, char **argv, config *c)
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
        c->p = (wl_params){.cpu_n = 2000000, .cpu_tasks = 15, .io_tasks = 8, .io_ms = 20,
                           .tiny_tasks = 100000, .data_tasks = 16, .data_len = 131072};
    else
        c->p = (wl_params){.cpu_n = 10000000, .cpu_tasks = 15, .io_tasks = 32, .io_ms = 20,
                           .tiny_tasks = 100000, .data_tasks = 64, .data_len = 131072};
}

int main(int argc, char **argv)
{
    config c;
    parse(argc, argv, &c);
    signal(SIGPIPE, SIG_IGN);

    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int cpus = online > 0 ? (int)online : 1;
    int wl_list[3] = {1, 2, cpus}, n_w = cpus > 2 ? 3 : 2;

    bench_rows rows = {0};
    report_header(&c.p, c.quick, cpus, c.runs);
    for (size_t wi = 0; wi < bench_n_workloads; wi++) {
        const workload *w = &bench_workloads[wi];
        if (!in_list(c.only, w->name))
            continue;
        double seq_wall = 0;
        for (int ei = 0; ei < N_EXECS; ei++) {
            const bench_exec *e = all_execs[ei];
            bool seq = e == &bench_exec_sequential;
            if (!seq && !in_list(c.execs, e->name))
                continue; /* sequential always runs: it is what speedups are measured against */
            for (int k = 0; k < (seq ? 1 : n_w); k++) {
                bench_row *r = report_add(&rows);
                measure(&c, e, w, wl_list[k], r);
                if (seq)
                    seq_wall = r->wall;
                r->speedup = seq_wall > 0 ? seq_wall / r->wall : 0;
                report_row(r);
            }
        }
    }
    /* The startup cycle again with every worker started in create: interp's pools start
     * their workers on demand by default, as Python's executors do. */
    double prestart_wall = 0;
    for (size_t wi = 0; wi < bench_n_workloads; wi++) {
        const workload *w = &bench_workloads[wi];
        if (strcmp(w->name, "startup") != 0 || !in_list(c.only, w->name) ||
            !in_list(c.execs, bench_exec_interp.name))
            continue;
        bench_row r = {0};
        bench_interp_prestart = true;
        measure(&c, &bench_exec_interp, w, 2, &r);
        bench_interp_prestart = false;
        prestart_wall = r.wall;
    }
    int failed = report_checks(&rows, prestart_wall);
    if (report_csv(&rows, c.csv) == 0)
        printf("\nCSV: %s\n", c.csv);
    report_plot(&rows, c.csv, c.python_csv, wl_list[n_w - 1]);
    report_free(&rows);
    bench_workloads_done();
    return failed && c.strict ? 3 : 0;
}
