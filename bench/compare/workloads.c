/* workloads.c - the workloads of bench_compare: inputs built before the clock starts, the
 * submitting and collecting timed, every result checked after. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workloads.h"

const char bench_init_source[] =
    "function cpu_task(n) local s = 0 for i = 0, n - 1 do s = s + i end return s end\n"
    "function io_task(ms) interp.sleep(ms / 1000) return ms end\n"
    "function tiny_task(x) return x * 2 end\n"
    "function data_task(t) local s = 0.0 for i = 1, #t do s = s + t[i] end return s end\n"
    "function startup_task(x) return x end\n";

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The single value of a result message. */
static bool single(const interp_msg *m, interp_msg_value *v)
{
    if (!m || interp_msg_count(m) != 1)
        return false;
    interp_msg_iter it = interp_msg_iter_init(m);
    return interp_msg_next(&it, v);
}

static bool is_int(const interp_msg *m, int64_t want)
{
    interp_msg_value v;
    return single(m, &v) && v.type == INTERP_MSG_INT && v.as.i == want;
}

static bool is_float(const interp_msg *m, double want)
{
    interp_msg_value v;
    return single(m, &v) && v.type == INTERP_MSG_FLOAT && v.as.d == want;
}

/* What a result must be: an integer (want_int) or a float (want_float). */
typedef struct expect {
    bool is_float;
    int64_t i;
    double d;
} expect;

static bool check(const interp_msg *m, const expect *x)
{
    return x->is_float ? is_float(m, x->d) : is_int(m, x->i);
}

static void describe(char err[BENCH_ERRLEN], const char *fn, size_t i, const interp_msg *m,
                     const expect *x)
{
    char *text = NULL;
    if (!m || interp_msg_to_text(m, &text) != INTERP_OK)
        text = NULL;
    if (x->is_float)
        snprintf(err, BENCH_ERRLEN, "%s task %zu: wrong result %s (want %.17g)", fn, i,
                 text ? text : "(none)", x->d);
    else
        snprintf(err, BENCH_ERRLEN, "%s task %zu: wrong result %s (want %lld)", fn, i,
                 text ? text : "(none)", (long long)x->i);
    free(text);
}

/* Submit n tasks one by one (args[i] handed over), then collect them in order; the clock
 * covers both. Checks every result against want[i] afterwards. */
static int run_submit(const bench_exec *e, void *ex, const char *fn, size_t n, interp_msg **args,
                      const expect *want, double *secs, char err[BENCH_ERRLEN])
{
    void **jobs = calloc(n, sizeof *jobs);
    const interp_msg **res = calloc(n, sizeof *res);
    int rc = INTERP_OK;
    size_t submitted = 0;
    if (!jobs || !res) {
        snprintf(err, BENCH_ERRLEN, "out of memory");
        rc = INTERP_ERR_NOMEM;
        goto out;
    }
    double t0 = bench_now();
    for (; submitted < n; submitted++) {
        if ((rc = e->submit(ex, fn, args[submitted], &jobs[submitted])) != INTERP_OK) {
            snprintf(err, BENCH_ERRLEN, "%s: submit: %s", fn, interp_strerror(rc));
            break;
        }
        args[submitted] = NULL;
    }
    for (size_t i = 0; i < submitted; i++) {
        const char *why = NULL;
        int r = e->result(ex, jobs[i], &res[i], &why);
        if (r != INTERP_OK && rc == INTERP_OK) {
            rc = r;
            snprintf(err, BENCH_ERRLEN, "%s task %zu failed: %s", fn, i, why ? why : "?");
        }
    }
    *secs = bench_now() - t0;
    for (size_t i = 0; i < submitted && rc == INTERP_OK; i++)
        if (!check(res[i], &want[i])) {
            describe(err, fn, i, res[i], &want[i]);
            rc = INTERP_ERR_INVALID;
        }
    for (size_t i = 0; i < submitted; i++)
        e->release(ex, jobs[i]);
out:
    for (size_t i = 0; i < n; i++)
        interp_msg_free(args[i]); /* those not handed over */
    free(jobs);
    free(res);
    return rc;
}

static interp_msg **int_args(size_t n, int64_t (*value)(size_t i, const void *ud), const void *ud)
{
    interp_msg **a = calloc(n ? n : 1, sizeof *a);
    for (size_t i = 0; a && i < n; i++)
        if (!(a[i] = interp_msg_int(value(i, ud)))) {
            for (size_t k = 0; k < i; k++)
                interp_msg_free(a[k]);
            free(a);
            return NULL;
        }
    return a;
}

static int64_t const_value(size_t i, const void *ud)
{
    (void)i;
    return *(const int64_t *)ud;
}

static int64_t index_value(size_t i, const void *ud)
{
    (void)ud;
    return (int64_t)i;
}

/* Build the arguments and expectations of n tasks, run them, free everything. */
static int run_ints(const bench_exec *e, void *ex, const char *fn, size_t n,
                    int64_t (*value)(size_t, const void *), const void *ud, int64_t mul,
                    int64_t add, double *secs, char err[BENCH_ERRLEN])
{
    interp_msg **args = int_args(n, value, ud);
    expect *want = calloc(n ? n : 1, sizeof *want);
    if (!args || !want) {
        free(want);
        free(args);
        snprintf(err, BENCH_ERRLEN, "out of memory");
        return INTERP_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        want[i] = (expect){.i = value(i, ud) * mul + add};
    int rc = run_submit(e, ex, fn, n, args, want, secs, err);
    free(args);
    free(want);
    return rc;
}

static int wl_cpu(const bench_exec *e, void *ex, const wl_params *p, double *secs, size_t *tasks,
                  char err[BENCH_ERRLEN])
{
    *tasks = (size_t)p->cpu_tasks;
    int64_t n = p->cpu_n; /* every task returns n * (n - 1) / 2 */
    int64_t sum = n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
    return run_ints(e, ex, "cpu_task", *tasks, const_value, &n, 0, sum, secs, err);
}

static int wl_io(const bench_exec *e, void *ex, const wl_params *p, double *secs, size_t *tasks,
                 char err[BENCH_ERRLEN])
{
    *tasks = (size_t)p->io_tasks;
    int64_t ms = p->io_ms;
    return run_ints(e, ex, "io_task", *tasks, const_value, &ms, 1, 0, secs, err);
}

static int wl_tiny_submit(const bench_exec *e, void *ex, const wl_params *p, double *secs,
                          size_t *tasks, char err[BENCH_ERRLEN])
{
    *tasks = (size_t)p->tiny_tasks;
    return run_ints(e, ex, "tiny_task", *tasks, index_value, NULL, 2, 0, secs, err);
}

static int wl_tiny_map(const bench_exec *e, void *ex, const wl_params *p, double *secs,
                       size_t *tasks, char err[BENCH_ERRLEN])
{
    size_t n = *tasks = (size_t)p->tiny_tasks;
    interp_msg **in = int_args(n, index_value, NULL);
    interp_msg **out = calloc(n ? n : 1, sizeof *out);
    int rc = INTERP_ERR_NOMEM;
    snprintf(err, BENCH_ERRLEN, "out of memory");
    if (in && out) {
        double t0 = bench_now();
        rc = e->map(ex, "tiny_task", n, (const interp_msg *const *)in, out, err);
        *secs = bench_now() - t0;
        for (size_t i = 0; i < n && rc == INTERP_OK; i++)
            if (!is_int(out[i], 2 * (int64_t)i)) {
                expect x = {.i = 2 * (int64_t)i};
                describe(err, "tiny_task (map)", i, out[i], &x);
                rc = INTERP_ERR_INVALID;
            }
    }
    for (size_t i = 0; in && i < n; i++)
        interp_msg_free(in[i]);
    for (size_t i = 0; out && i < n; i++)
        interp_msg_free(out[i]);
    free(in);
    free(out);
    return rc;
}

static int wl_data(const bench_exec *e, void *ex, const wl_params *p, double *secs,
                   size_t *tasks, char err[BENCH_ERRLEN])
{
    size_t n = *tasks = (size_t)p->data_tasks;
    /* values k/4 + 1/2 are exact in binary and so is their sum: the check can be exact */
    interp_msg_builder *b = interp_msg_builder_new();
    double sum = 0.0;
    int rc = b ? interp_msg_add_array(b, (uint32_t)p->data_len) : INTERP_ERR_NOMEM;
    for (int i = 0; i < p->data_len && rc == INTERP_OK; i++) {
        double v = (double)(i % 1024) * 0.25 + 0.5;
        sum += v;
        rc = interp_msg_add_double(b, v);
    }
    interp_msg *table = NULL;
    if (rc == INTERP_OK)
        rc = interp_msg_builder_finish(b, &table);
    else
        interp_msg_builder_free(b);
    interp_msg **args = rc == INTERP_OK ? calloc(n ? n : 1, sizeof *args) : NULL;
    expect *want = args ? calloc(n ? n : 1, sizeof *want) : NULL;
    for (size_t i = 0; want && i < n; i++) {
        want[i] = (expect){.is_float = true, .d = sum};
        if (!(args[i] = interp_msg_dup(table)))
            rc = INTERP_ERR_NOMEM;
    }
    if (!want || rc != INTERP_OK) {
        snprintf(err, BENCH_ERRLEN, "data: building the argument: %s",
                 interp_strerror(rc != INTERP_OK ? rc : INTERP_ERR_NOMEM));
        for (size_t i = 0; args && i < n; i++)
            interp_msg_free(args[i]);
        rc = rc != INTERP_OK ? rc : INTERP_ERR_NOMEM;
    } else {
        rc = run_submit(e, ex, "data_task", n, args, want, secs, err);
    }
    interp_msg_free(table);
    free(args);
    free(want);
    return rc;
}

int bench_startup_once(const bench_exec *e, int workers, double *secs, long *child_rss_kib,
                       char err[BENCH_ERRLEN])
{
    void *ex = NULL, *job = NULL;
    *child_rss_kib = 0;
    interp_msg *arg = interp_msg_int(42);
    if (!arg) {
        snprintf(err, BENCH_ERRLEN, "out of memory");
        return INTERP_ERR_NOMEM;
    }
    double t0 = bench_now();
    int rc = e->create(&ex, workers, bench_init_source, err);
    if (rc != INTERP_OK) {
        interp_msg_free(arg);
        return rc;
    }
    rc = e->submit(ex, "startup_task", arg, &job);
    if (rc != INTERP_OK) {
        interp_msg_free(arg);
        snprintf(err, BENCH_ERRLEN, "startup: submit: %s", interp_strerror(rc));
    } else {
        const interp_msg *res = NULL;
        const char *why = NULL;
        rc = e->result(ex, job, &res, &why);
        if (rc != INTERP_OK) {
            snprintf(err, BENCH_ERRLEN, "startup task failed: %s", why ? why : "?");
        } else if (!is_int(res, 42)) {
            expect x = {.i = 42};
            describe(err, "startup_task", 0, res, &x);
            rc = INTERP_ERR_INVALID;
        }
        e->release(ex, job);
    }
    e->destroy(ex, child_rss_kib);
    *secs = bench_now() - t0;
    return rc;
}

const workload bench_workloads[] = {
    {"cpu", "15 tasks, each sums 0..N-1 in a Lua loop", wl_cpu, false},
    {"io", "tasks that sleep 20 ms (a network call) then return", wl_io, false},
    {"tiny-submit", "x * 2 tasks, submitted one by one", wl_tiny_submit, true},
    {"tiny-map", "x * 2 tasks, through map (chunked)", wl_tiny_map, true},
    {"data", "a 1 MiB table of numbers as argument, returns its sum", wl_data, true},
    {"startup", "create the pool, get one result, destroy it", NULL, false},
};
const size_t bench_n_workloads = sizeof bench_workloads / sizeof bench_workloads[0];
