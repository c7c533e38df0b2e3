/* workloads.c - the workloads of bench_compare: inputs built before the clock starts, the
 * submitting and collecting timed, every result checked after. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "interp_frozen.h"
#include "interp_msg_lua.h"
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

/* ---- the host's own lua_State: builds argument messages and reads results with the same
 * codec the executors use (interp_msg_from_lua / interp_msg_to_lua) ---------------------- */

static lua_State *host;

static lua_State *host_state(void)
{
    if (!host && !(host = luaL_newstate())) {
        fprintf(stderr, "bench_compare: out of memory\n");
        exit(2);
    }
    return host;
}

void bench_workloads_done(void)
{
    if (host)
        lua_close(host);
    host = NULL;
}

/* A message holding the integer v, or NULL when out of memory. */
static interp_msg *msg_int(int64_t v)
{
    lua_State *L = host_state();
    interp_msg *m = NULL;
    lua_pushinteger(L, (lua_Integer)v);
    if (interp_msg_from_lua(L, -1, 1, NULL, &m, NULL) != INTERP_OK)
        m = NULL;
    lua_pop(L, 1);
    return m;
}

/* A message holding one table of n floats k/4 + 1/2 (exact in binary, and so is their sum,
 * so the check can be exact); *sum receives their sum. */
static int msg_floats(int n, interp_msg **out, double *sum)
{
    lua_State *L = host_state();
    *sum = 0.0;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        double v = (double)(i % 1024) * 0.25 + 0.5;
        *sum += v;
        lua_pushnumber(L, v);
        lua_rawseti(L, -2, i + 1);
    }
    int rc = interp_msg_from_lua(L, -1, 1, NULL, out, NULL);
    lua_pop(L, 1);
    return rc;
}

/* What a result must be: one integer, or one float. */
typedef struct expect {
    bool is_float;
    int64_t i;
    double d;
} expect;

/* Decode m into the host state and compare; on a mismatch describe it in err. */
static bool check_result(const interp_msg *m, const expect *x, const char *fn, size_t index,
                         char err[BENCH_ERRLEN])
{
    lua_State *L = host_state();
    int top = lua_gettop(L);
    bool ok = false;
    char got[200] = "(no result)";
    if (m && interp_msg_to_lua(L, m, NULL, NULL) == INTERP_OK) {
        int n = lua_gettop(L) - top;
        if (n == 1 && x->is_float)
            ok = lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1) &&
                 lua_tonumber(L, -1) == x->d;
        else if (n == 1)
            ok = lua_isinteger(L, -1) && lua_tointeger(L, -1) == x->i;
        if (!ok && n >= 1) {
            const char *t = luaL_tolstring(L, top + 1, NULL);
            snprintf(got, sizeof got, "%s (%s%s)", t, luaL_typename(L, top + 1),
                     n > 1 ? ", and more values" : "");
        }
    }
    lua_settop(L, top);
    if (!ok) {
        if (x->is_float)
            snprintf(err, BENCH_ERRLEN, "%s task %zu: wrong result %s, want %.17g", fn, index, got,
                     x->d);
        else
            snprintf(err, BENCH_ERRLEN, "%s task %zu: wrong result %s, want %lld", fn, index, got,
                     (long long)x->i);
    }
    return ok;
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
        if (!check_result(res[i], &want[i], fn, i, err))
            rc = INTERP_ERR_INVALID;
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
        if (!(a[i] = msg_int(value(i, ud)))) {
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
            if (!check_result(out[i], &(expect){.i = 2 * (int64_t)i}, "tiny_task (map)", i, err))
                rc = INTERP_ERR_INVALID;
    }
    for (size_t i = 0; in && i < n; i++)
        interp_msg_free(in[i]);
    for (size_t i = 0; out && i < n; i++)
        interp_msg_free(out[i]);
    free(in);
    free(out);
    return rc;
}

static int wl_data(const bench_exec *e, void *ex, const wl_params *p, double *secs, size_t *tasks,
                   char err[BENCH_ERRLEN])
{
    size_t n = *tasks = (size_t)p->data_tasks;
    double sum;
    interp_msg *table = NULL;
    int rc = msg_floats(p->data_len, &table, &sum);
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

/* data, shared: the same table frozen once (before the clock starts, as a host would at
 * load time); each task's argument is a handle to it, read in place by the task. */
static int wl_shared(const bench_exec *e, void *ex, const wl_params *p, double *secs, size_t *tasks,
                     char err[BENCH_ERRLEN])
{
    size_t n = *tasks = (size_t)p->data_tasks;
    double sum;
    interp_msg *table = NULL;
    interp_frozen *fz = NULL;
    int rc = msg_floats(p->data_len, &table, &sum);
    if (rc == INTERP_OK)
        rc = interp_frozen_from_msg(table, 0, &fz);
    interp_msg_free(table);
    interp_msg **args = rc == INTERP_OK ? calloc(n ? n : 1, sizeof *args) : NULL;
    expect *want = args ? calloc(n ? n : 1, sizeof *want) : NULL;
    for (size_t i = 0; want && i < n; i++) {
        want[i] = (expect){.is_float = true, .d = sum};
        interp_msg_builder *b = interp_msg_builder_new();
        if (!b || interp_msg_add_frozen(b, fz) != INTERP_OK ||
            interp_msg_builder_finish(b, &args[i]) != INTERP_OK) {
            interp_msg_builder_free(b);
            rc = INTERP_ERR_NOMEM;
        }
    }
    if (!want || rc != INTERP_OK) {
        snprintf(err, BENCH_ERRLEN, "shared: building the argument: %s",
                 interp_strerror(rc != INTERP_OK ? rc : INTERP_ERR_NOMEM));
        for (size_t i = 0; args && i < n; i++)
            interp_msg_free(args[i]);
        rc = rc != INTERP_OK ? rc : INTERP_ERR_NOMEM;
    } else {
        rc = run_submit(e, ex, "data_task", n, args, want, secs, err);
    }
    interp_frozen_release(fz);
    free(args);
    free(want);
    return rc;
}

int bench_startup_once(const bench_exec *e, int workers, double *secs, long *child_rss_kib,
                       char err[BENCH_ERRLEN])
{
    void *ex = NULL, *job = NULL;
    *child_rss_kib = 0;
    interp_msg *arg = msg_int(42);
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
        } else if (!check_result(res, &(expect){.i = 42}, "startup_task", 0, err)) {
            rc = INTERP_ERR_INVALID;
        }
        e->release(ex, job);
    }
    e->destroy(ex, child_rss_kib);
    *secs = bench_now() - t0;
    return rc;
}

const workload bench_workloads[] = {
    {"cpu", "15 tasks, each sums 0..N-1 in a Lua loop", wl_cpu, false, true},
    {"io", "tasks that sleep 20 ms (a network call) then return", wl_io, false, false},
    {"tiny-submit", "x * 2 tasks, submitted one by one", wl_tiny_submit, true, false},
    {"tiny-map", "x * 2 tasks, through map (chunked)", wl_tiny_map, true, false},
    {"data", "a 1 MiB table of numbers as argument, returns its sum", wl_data, true, false},
    /* in-process executors only: a handle means nothing in a forked worker */
    {"shared", "data's table frozen once, each task reads it in place", wl_shared, true, true},
    {"startup", "create the pool, get one result, destroy it", NULL, false, false},
};
const size_t bench_n_workloads = sizeof bench_workloads / sizeof bench_workloads[0];
