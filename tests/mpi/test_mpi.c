/* test_mpi.c - the MPI pool under `mpiexec -n 3` (run by ctest, one case per run):
 *   map       map/map_stream/submit results equal the local pool's (bench_compare's cpu, tiny,
 *             data workloads), work reaches every rank, wait/as_completed, functions by value,
 *             channels and contexts refused (from the host and in tasks on every rank)
 *   errors    a script error, a deadline, a memory limit on remote ranks fail their future or
 *             map item only
 *   cancel    cancel reaches tasks running on remote ranks, a map's timeout and interrupt
 *             reach its chunks running there; the pool goes on
 *   shutdown  shutdown with work in flight (waiting, and now)
 *   lost      a rank stopped with SIGSTOP mid-map: its items fail naming it, within the
 *             heartbeat timeout plus a margin
 *   resubmit  the same with INTERP_MPI_LOST_RESUBMIT: every item succeeds
 *   killed    a rank killed mid-map: the job ends (killed.cmake checks the message)
 *   frozen    frozen tables and buffers as task and map arguments: sent once to each rank,
 *             shared by the tasks there, dropped by the root once the host lets go
 * Every case is bounded by alarm(). Rank 0 is the root and checks; the others serve. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "interp_ctx.h"
#include "interp_frozen.h"
#include "interp_mpi.h"
#include "mpi_impl.h" /* the bytecode header check */
#include "interp_msg_lua.h"

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static const char init_src[] =
    "function cpu_task(n) local s = 0 for i = 0, n - 1 do s = s + i end return s end\n"
    "function tiny_task(x) return x * 2 end\n"
    "function data_task(t) local s = 0.0 for i = 1, #t do s = s + t[i] end return s end\n"
    "function whoami(x) return tonumber(os.getenv('OMPI_COMM_WORLD_RANK')), x end\n"
    "function napping(s) interp.sleep(s) return tonumber(os.getenv('OMPI_COMM_WORLD_RANK')) end\n"
    "function spin() local x = 0 while true do x = x + 1 end end\n"
    "function fz_sum(t) local s = 0 for i = 1, #t do s = s + t[i] end "
    "  return s + t.extra.n, tonumber(os.getenv('OMPI_COMM_WORLD_RANK')), interp.isfrozen(t) end\n"
    "function fz_same(t) interp.sleep(0.02) local same = seen == t seen = t "
    "  return tonumber(os.getenv('OMPI_COMM_WORLD_RANK')), same end\n"
    "function fz_item(t, i) return t[i] + t.extra.n end\n"
    "function fz_buf(b) return #b, b:sub(2, 4) end\n"
    "function fz_back() return interp.freeze({1, 2}) end\n"
    "function try_channel(s) interp.sleep(s) local ok, e = pcall(interp.channel, 'c') "
    "  local h, why = interp.context('c') "
    "  return tonumber(os.getenv('OMPI_COMM_WORLD_RANK')), ok, tostring(e), h == nil, why end\n"
    "function fail(x) error('boom ' .. tostring(x)) end\n"
    "function hog() local t = {} for i = 1, 1e8 do t[i] = {i} end return #t end\n"
    "function maybe(x) if x % 5 == 0 then error('item ' .. x .. ' fails') end return x end\n"
    "function slow_cpu(n) local s = 0 for i = 1, n do s = s + i % 7 end "
    "  return tonumber(os.getenv('OMPI_COMM_WORLD_RANK')) end\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static interp_pool *mpi_pool(interp_pool_options *o, interp_mpi_options *mo, int *served)
{
    char *err = NULL;
    interp_pool *p = NULL;
    int rc = interp_mpi_pool_create(&p, MPI_COMM_WORLD, o, mo, &err);
    if (rc != INTERP_OK)
        fprintf(stderr, "create: %s: %s\n", interp_strerror(rc), err ? err : "");
    free(err);
    if (!p && served)
        (*served)++;
    return p;
}

static bool same_msg(const interp_msg *a, const interp_msg *b)
{
    if (!a || !b)
        return a == b;
    return interp_msg_size(a) == interp_msg_size(b) &&
           memcmp(interp_msg_data(a), interp_msg_data(b), interp_msg_size(a)) == 0;
}

/* ---- map -------------------------------------------------------------------------------- */

static void compare_map(interp_pool *mp, interp_pool *lp, const char *fn, size_t n, interp_msg **in)
{
    interp_msg **a = calloc(n, sizeof *a), **b = calloc(n, sizeof *b);
    int rca = interp_pool_map(mp, fn, n, (const interp_msg *const *)in, a, NULL);
    int rcb = interp_pool_map(lp, fn, n, (const interp_msg *const *)in, b, NULL);
    CHECK(rca == INTERP_OK && rcb == INTERP_OK, "%s: %d %d", fn, rca, rcb);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) {
        diff += !same_msg(a[i], b[i]);
        interp_msg_free(a[i]);
        interp_msg_free(b[i]);
    }
    CHECK(diff == 0, "%s: %zu of %zu results differ from the local pool's", fn, diff, n);
    free(a);
    free(b);
}

struct stream_ud {
    size_t n, next_expected, bad;
};

static bool next_in(void *ud, size_t i, interp_msg **args)
{
    struct stream_ud *s = ud;
    if (i >= s->n)
        return false;
    return interp_msg_pack(args, "I", (int64_t)i) == INTERP_OK;
}

static void on_res(void *ud, size_t i, int status, interp_msg *result, const char *error)
{
    (void)error;
    struct stream_ud *s = ud;
    int64_t v = -1;
    if (status != INTERP_OK || i != s->next_expected ||
        interp_msg_unpack(result, "I", &v) != INTERP_OK || v != (int64_t)(2 * i))
        s->bad++;
    s->next_expected++;
    interp_msg_free(result);
}

static void case_map(interp_pool *p)
{
    interp_pool_options lo = interp_pool_defaults();
    lo.workers = 2;
    lo.init_source = init_src;
    interp_pool *lp = NULL;
    CHECK(interp_pool_create(&lp, &lo, NULL) == INTERP_OK, "local pool");
    /* cpu: 64 tasks of 20000 steps; tiny: 20000 items; data: 16 tables of 4096 floats */
    size_t n = 20000;
    interp_msg **in = calloc(n, sizeof *in);
    for (size_t i = 0; i < 64; i++)
        interp_msg_pack(&in[i], "I", (int64_t)(20000 + i));
    compare_map(p, lp, "cpu_task", 64, in);
    for (size_t i = 0; i < 64; i++)
        interp_msg_free(in[i]);
    for (size_t i = 0; i < n; i++)
        interp_msg_pack(&in[i], "I", (int64_t)i);
    compare_map(p, lp, "tiny_task", n, in);
    for (size_t i = 0; i < n; i++)
        interp_msg_free(in[i]);
    for (size_t i = 0; i < 16; i++) {
        interp_msg_builder *b = interp_msg_builder_new();
        interp_msg_add_array(b, 4096);
        for (int k = 0; k < 4096; k++)
            interp_msg_add_double(b, (double)((k + (int)i) % 1024) * 0.25 + 0.5);
        interp_msg_builder_finish(b, &in[i]);
    }
    compare_map(p, lp, "data_task", 16, in);
    for (size_t i = 0; i < 16; i++)
        interp_msg_free(in[i]);
    free(in);
    interp_pool_destroy(lp);

    /* map_stream: input order */
    struct stream_ud su = {.n = 5000};
    interp_fn tiny = {.kind = INTERP_FN_NAME, .text = "tiny_task"};
    CHECK(interp_pool_map_stream(p, &tiny, next_in, on_res, &su, 0, NULL) == INTERP_OK, "stream");
    CHECK(su.next_expected == 5000 && su.bad == 0, "stream: %zu delivered, %zu bad",
          su.next_expected, su.bad);

    /* submit reaches every rank; wait and as_completed work on the futures */
    enum { NT = 12 };
    interp_future *fs[NT];
    for (int i = 0; i < NT; i++)
        CHECK(interp_pool_submitf(p, &fs[i], "napping", "d", 0.2) == INTERP_OK, "submit");
    size_t nd = 0;
    CHECK(interp_futures_wait(fs, NT, INTERP_WAIT_ALL, 30, &nd) == INTERP_OK && nd == NT,
          "wait all: %zu", nd);
    interp_as_completed *it;
    interp_as_completed_new(fs, NT, &it);
    int seen[3] = {0}, got = 0;
    interp_future *f;
    while (interp_as_completed_next(it, 10, &f) == INTERP_OK) {
        int64_t rank = -1;
        CHECK(interp_future_resultf(f, 0, "I", &rank) == INTERP_OK, "napping result");
        if (rank >= 0 && rank < 3)
            seen[rank]++;
        got++;
    }
    interp_as_completed_free(it);
    CHECK(got == NT, "as_completed gave %d", got);
    CHECK(seen[0] && seen[1] && seen[2], "tasks per rank: %d %d %d", seen[0], seen[1], seen[2]);
    for (int i = 0; i < NT; i++)
        interp_future_release(fs[i]);

    /* a source chunk and a function by value */
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = "local a, b = ... return a + b"}};
    interp_msg_pack(&t.args, "I, I", (int64_t)40, (int64_t)2);
    interp_future *sf;
    CHECK(interp_pool_submit_task(p, &t, INTERP_FOREVER, &sf) == INTERP_OK, "source task");
    int64_t sum = 0;
    CHECK(interp_future_resultf(sf, 30, "I", &sum) == INTERP_OK && sum == 42, "source: %lld",
          (long long)sum);
    interp_future_release(sf);

    /* a function by value (bytecode, checked against every rank's header at create) */
    lua_State *L = luaL_newstate();
    luaL_dostring(L, "local k = 3 return function(x) return x * k + 1 end");
    interp_msg *fm = NULL;
    interp_msg_opts mopt = {.allow_functions = true};
    CHECK(interp_msg_from_lua(L, -1, 1, &mopt, &fm, NULL) == INTERP_OK, "dump function");
    lua_close(L);
    interp_fn byval = {.kind = INTERP_FN_FUNCTION, .function = fm};
    enum { NF = 300 };
    interp_msg *fin[NF], *fout[NF];
    for (int i = 0; i < NF; i++)
        interp_msg_pack(&fin[i], "I", (int64_t)i);
    interp_map_options fo = {.chunksize = 7};
    CHECK(interp_pool_map_fn(p, &byval, NF, (const interp_msg *const *)fin, fout, &fo) == INTERP_OK,
          "map of a function by value");
    int fbad = 0;
    for (int i = 0; i < NF; i++) {
        int64_t v = -1;
        fbad += !fout[i] || interp_msg_unpack(fout[i], "I", &v) != INTERP_OK || v != 3 * i + 1;
        interp_msg_free(fout[i]);
        interp_msg_free(fin[i]);
    }
    CHECK(fbad == 0, "%d results of the function by value wrong", fbad);
    interp_msg_free(fm);

    /* channels and contexts do not span ranks: refused, from the host and from tasks */
    interp_chan *ch = NULL;
    CHECK(interp_pool_channel(p, "c", 4, &ch) == INTERP_ERR_INVALID && !ch, "channel refused");
    interp_ctx *ctx = NULL;
    char *cerr = NULL;
    CHECK(interp_ctx_create(p, NULL, &ctx, &cerr) == INTERP_ERR_INVALID && !ctx && cerr &&
              strstr(cerr, "backend"),
          "context refused: %s", cerr ? cerr : "(no text)");
    free(cerr);
    enum { NC = 9 };
    interp_future *cf[NC];
    for (int i = 0; i < NC; i++)
        CHECK(interp_pool_submitf(p, &cf[i], "try_channel", "d", 0.1) == INTERP_OK, "submit");
    int crank[3] = {0};
    for (int i = 0; i < NC; i++) {
        int64_t rank = -1;
        bool ok = true;
        const char *text = NULL, *ctext = NULL;
        size_t tlen = 0, ctlen = 0;
        bool cnil = false;
        CHECK(interp_future_resultf(cf[i], 30, "I, b, s, b, s", &rank, &ok, &text, &tlen, &cnil,
                                    &ctext, &ctlen) == INTERP_OK,
              "try_channel %d: %s", i,
              interp_future_error(cf[i]) ? interp_future_error(cf[i]) : "");
        CHECK(!ok && text && strstr(text, "do not span the ranks of an MPI pool"),
              "interp.channel in a task on rank %lld: %s", (long long)rank, text ? text : "");
        CHECK(cnil && ctext && strstr(ctext, "do not span the ranks of an MPI pool"),
              "interp.context in a task on rank %lld: %s", (long long)rank, ctext ? ctext : "");
        if (rank >= 0 && rank < 3)
            crank[rank]++;
        interp_future_release(cf[i]);
    }
    CHECK(crank[0] && crank[1] && crank[2], "channel tries per rank: %d %d %d", crank[0], crank[1],
          crank[2]);
    interp_pool_stats st;
    interp_pool_get_stats(p, &st);
    CHECK(st.max_workers == 3, "max_workers %d", st.max_workers);
}

/* ---- errors ----------------------------------------------------------------------------- */

static void case_errors(interp_pool *p)
{
    enum { N = 6 };
    interp_future *fe[N], *fd[N], *fm[N], *ok[N];
    for (int i = 0; i < N; i++) {
        interp_pool_submitf(p, &fe[i], "fail", "I", (int64_t)i);
        interp_task t = {.fn = {.kind = INTERP_FN_NAME, .text = "spin"}, .timeout = 0.3};
        interp_pool_submit_task(p, &t, INTERP_FOREVER, &fd[i]);
        interp_pool_submitf(p, &fm[i], "hog", "");
        interp_pool_submitf(p, &ok[i], "whoami", "I", (int64_t)i);
    }
    int ranks[3] = {0};
    for (int i = 0; i < N; i++) {
        CHECK(interp_future_result(fe[i], 60, NULL) == INTERP_ERR_SCRIPT, "error status");
        const char *e = interp_future_error(fe[i]);
        char want[32];
        snprintf(want, sizeof want, "boom %d", i);
        CHECK(e && strstr(e, want) && strstr(e, "stack traceback"), "error text: %s",
              e ? e : "(none)");
        CHECK(interp_future_result(fd[i], 60, NULL) == INTERP_ERR_TIMEOUT, "deadline: %d",
              interp_future_status(fd[i]));
        CHECK(interp_future_result(fm[i], 60, NULL) == INTERP_ERR_NOMEM, "memory: %d %s",
              interp_future_status(fm[i]),
              interp_future_error(fm[i]) ? interp_future_error(fm[i]) : "");
        int64_t r = -1, x = -1;
        CHECK(interp_future_resultf(ok[i], 60, "I, I", &r, &x) == INTERP_OK && x == i,
              "the others go on");
        if (r >= 0 && r < 3)
            ranks[r]++;
        interp_future_release(fe[i]);
        interp_future_release(fd[i]);
        interp_future_release(fm[i]);
        interp_future_release(ok[i]);
    }
    (void)ranks;
    /* a value a rank froze cannot come back to the root: refused, clearly */
    interp_future *ff = NULL;
    CHECK(interp_pool_submitf(p, &ff, "fz_back", "") == INTERP_OK, "submit fz_back");
    CHECK(interp_future_result(ff, 30, NULL) == INTERP_ERR_ENCODE &&
              strstr(interp_future_error(ff), "frozen value"),
          "frozen result: %d %s", interp_future_status(ff),
          interp_future_error(ff) ? interp_future_error(ff) : "");
    interp_future_release(ff);

    /* map: failing items fail alone, with their texts, on every rank */
    enum { M = 300 };
    interp_msg *in[M], *out[M];
    int status[M];
    char *errors[M];
    for (int i = 0; i < M; i++)
        interp_msg_pack(&in[i], "I", (int64_t)i);
    interp_map_options mo = {.status = status, .errors = errors, .chunksize = 10};
    int rc = interp_pool_map(p, "maybe", M, (const interp_msg *const *)in, out, &mo);
    CHECK(rc == INTERP_ERR_SCRIPT, "map rc %d", rc);
    int bad = 0;
    for (int i = 0; i < M; i++) {
        char want[32];
        snprintf(want, sizeof want, "item %d fails", i);
        if (i % 5 == 0)
            bad += !(status[i] == INTERP_ERR_SCRIPT && !out[i] && errors[i] &&
                     strstr(errors[i], want));
        else
            bad += !(status[i] == INTERP_OK && out[i] && !errors[i]);
        interp_msg_free(out[i]);
        free(errors[i]);
        interp_msg_free(in[i]);
    }
    CHECK(bad == 0, "%d map items wrong", bad);

    /* units larger than a rank's run (2048 items: several runs each, as a batch): the failing
     * item fails alone; with stop_on_error the map stops after it, every other item ending with
     * its own value or cancelled */
    enum { B = 15000, BAD = 6000 };
    interp_msg **bin = calloc(B, sizeof *bin), **bout = calloc(B, sizeof *bout);
    int *bst = calloc(B, sizeof *bst);
    CHECK(bin && bout && bst, "out of memory");
    for (int i = 0; i < B; i++) /* 5 i + 1 is never a multiple of 5: only item BAD fails */
        interp_msg_pack(&bin[i], "I", (int64_t)(i == BAD ? 5 : 5 * i + 1));
    for (int round = 0; round < 2; round++) {
        interp_map_options bo = {.status = bst, .chunksize = 5000, .stop_on_error = round == 1};
        rc = interp_pool_map(p, "maybe", B, (const interp_msg *const *)bin, bout, &bo);
        CHECK(rc == INTERP_ERR_SCRIPT, "big map rc %d (round %d)", rc, round);
        int wrong = 0, cancelled = 0;
        for (int i = 0; i < B; i++) {
            int64_t v = -1;
            if (i == BAD)
                wrong += bst[i] != INTERP_ERR_SCRIPT;
            else if (bst[i] == INTERP_OK)
                wrong += interp_msg_unpack(bout[i], "I", &v) != INTERP_OK || v != 5 * i + 1;
            else
                wrong += round == 0 || bst[i] != INTERP_ERR_CANCELLED;
            cancelled += bst[i] == INTERP_ERR_CANCELLED;
            interp_msg_free(bout[i]);
            bout[i] = NULL;
        }
        CHECK(wrong == 0, "big map (round %d): %d items wrong (%d cancelled)", round, wrong,
              cancelled);
    }
    for (int i = 0; i < B; i++)
        interp_msg_free(bin[i]);
    free(bin);
    free(bout);
    free(bst);
}

/* ---- cancel ----------------------------------------------------------------------------- */

static bool past(void *ud) { return now() > *(double *)ud; }

static void case_cancel(interp_pool *p)
{
    enum { N = 6 }; /* 3 ranks x 1 worker x 2 places: every rank runs one and holds one */
    interp_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK(interp_pool_submit(p, "spin", NULL, &fs[i]) == INTERP_OK, "submit");
    usleep(500 * 1000); /* they run (spinning) on every rank */
    for (int i = 0; i < N; i++)
        CHECK(interp_future_running(fs[i]), "task %d held by a rank", i);
    double t0 = now();
    for (int i = 0; i < N; i++)
        CHECK(interp_future_cancel(fs[i]) == INTERP_OK, "cancel %d", i);
    for (int i = 0; i < N; i++) {
        CHECK(interp_future_result(fs[i], 20, NULL) == INTERP_ERR_CANCELLED, "cancelled %d: %d", i,
              interp_future_status(fs[i]));
        interp_future_release(fs[i]);
    }
    CHECK(now() - t0 < 10, "cancel took %.2f s", now() - t0);
    /* the ranks' workers are free again */
    interp_future *f;
    int seen[3] = {0};
    for (int i = 0; i < 9; i++) {
        interp_pool_submitf(p, &f, "napping", "d", 0.05);
        int64_t r = -1;
        CHECK(interp_future_resultf(f, 30, "I", &r) == INTERP_OK, "after cancel");
        if (r >= 0 && r < 3)
            seen[r]++;
        interp_future_release(f);
    }
    CHECK(seen[0] + seen[1] + seen[2] == 9, "after cancel: %d %d %d", seen[0], seen[1], seen[2]);

    /* a map that times out, then one interrupted by its caller, while every rank runs its
     * chunks (spinning, no deadline of their own): the ranks stop them, their workers serve
     * the next tasks (else these would wait for ever behind the spinning chunks) */
    for (int round = 0; round < 2; round++) {
        enum { M = 6 };
        interp_msg *in[M] = {0};
        int status[M];
        interp_map_options mo = {.chunksize = 1, .status = status};
        double stop_at = now() + 0.5;
        if (round == 0)
            mo.timeout = 0.5;
        else {
            mo.interrupted = past;
            mo.interrupted_ud = &stop_at;
        }
        t0 = now();
        int rc = interp_pool_map(p, "spin", M, (const interp_msg *const *)in, NULL, &mo);
        CHECK(rc == (round == 0 ? INTERP_ERR_TIMEOUT : INTERP_ERR_CANCELLED), "spin map: %d", rc);
        CHECK(now() - t0 < 10, "the map took %.2f s", now() - t0);
        /* batches of tasks until each rank has run one (a rank whose stopped chunk answers
         * late gets none of the first batches: its places are still counted taken) */
        int seen2[3] = {0};
        double until = now() + 30;
        while (!(seen2[0] && seen2[1] && seen2[2]) && now() < until) {
            interp_future *fs2[6];
            for (int i = 0; i < 6; i++)
                interp_pool_submitf(p, &fs2[i], "napping", "d", 0.05);
            for (int i = 0; i < 6; i++) {
                int64_t r = -1;
                CHECK(interp_future_resultf(fs2[i], 30, "I", &r) == INTERP_OK,
                      "round %d: a task after the stopped map: %d", round,
                      interp_future_status(fs2[i]));
                if (r >= 0 && r < 3)
                    seen2[r]++;
                interp_future_release(fs2[i]);
            }
        }
        CHECK(seen2[0] && seen2[1] && seen2[2], "round %d: tasks per rank after the map: %d %d %d",
              round, seen2[0], seen2[1], seen2[2]);
    }
}

/* ---- shutdown --------------------------------------------------------------------------- */

static int cb_ran;

/* A callback runs on the pool's communication thread: a waiting shutdown from it must not wait
 * for that thread (it would never return). */
static void shutdown_from_callback(interp_future *f, void *ud)
{
    (void)f;
    interp_pool_shutdown(ud, true, false);
    cb_ran++;
}

static void case_shutdown(interp_pool *p, int round)
{
    enum { N = 12 };
    interp_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK(interp_pool_submitf(p, &fs[i], round == 0 ? "napping" : "spin", round == 0 ? "d" : "",
                                  0.2) == INTERP_OK,
              "submit");
    if (round == 1)
        CHECK(interp_future_on_done(fs[0], shutdown_from_callback, p) == INTERP_OK, "on_done");
    usleep(100 * 1000);
    double t0 = now();
    if (round == 0) {
        interp_pool_shutdown(p, true, false); /* every task runs to its end */
        for (int i = 0; i < N; i++)
            CHECK(interp_future_done(fs[i]) && interp_future_status(fs[i]) == INTERP_OK,
                  "task %d after shutdown(wait): %d", i, interp_future_status(fs[i]));
    } else {
        interp_pool_shutdown_now(p); /* running ones interrupted, queued ones cancelled */
        CHECK(cb_ran == 1, "the callback that shut down ran: %d", cb_ran);
        for (int i = 0; i < N; i++) {
            int st = interp_future_status(fs[i]);
            CHECK(st == INTERP_ERR_SHUTDOWN || st == INTERP_ERR_CANCELLED,
                  "task %d after shutdown_now: %d", i, st);
        }
    }
    CHECK(now() - t0 < 20, "shutdown took %.2f s", now() - t0);
    interp_future *f = NULL;
    CHECK(interp_pool_submit(p, "whoami", NULL, &f) == INTERP_ERR_SHUTDOWN, "submit after");
    for (int i = 0; i < N; i++)
        interp_future_release(fs[i]);
}

/* ---- frozen values: sent once to each rank, shared there, released with the root's ------- */

/* {1, 2, ..., n, extra = {n = 7}} frozen */
static interp_frozen *make_frozen(int n)
{
    interp_msg_builder *b = interp_msg_builder_new();
    interp_msg_add_map(b, (uint32_t)n + 1);
    for (int i = 1; i <= n; i++) {
        interp_msg_add_int(b, i);
        interp_msg_add_int(b, i);
    }
    interp_msg_add_cstr(b, "extra");
    interp_msg_add_map(b, 1);
    interp_msg_add_cstr(b, "n");
    interp_msg_add_int(b, 7);
    interp_msg *m = NULL;
    interp_frozen *f = NULL;
    CHECK(interp_msg_builder_finish(b, &m) == INTERP_OK, "build");
    CHECK(interp_frozen_from_msg(m, 0, &f) == INTERP_OK, "freeze");
    interp_msg_free(m);
    return f;
}

static interp_msg *with_frozen(const interp_frozen *f, int64_t i)
{
    interp_msg_builder *b = interp_msg_builder_new();
    interp_msg_add_frozen(b, f);
    if (i >= 0)
        interp_msg_add_int(b, i);
    interp_msg *m = NULL;
    interp_msg_builder_finish(b, &m);
    return m;
}

static void case_frozen(interp_pool *p, bool root_idle, size_t values0)
{
    enum { N = 1000, NT = 12, M = 300 };
    interp_frozen *t = make_frozen(N);
    interp_msg *arg = with_frozen(t, -1);
    /* tasks: every rank reads the same table, as a frozen view */
    interp_future *fs[NT];
    for (int i = 0; i < NT; i++)
        CHECK(interp_pool_submit(p, "fz_sum", interp_msg_dup(arg), &fs[i]) == INTERP_OK, "submit");
    int seen[3] = {0};
    for (int i = 0; i < NT; i++) {
        int64_t sum = 0, rank = -1;
        bool isf = false;
        CHECK(interp_future_resultf(fs[i], 30, "I, I, b", &sum, &rank, &isf) == INTERP_OK,
              "fz_sum: %d %s", interp_future_status(fs[i]),
              interp_future_error(fs[i]) ? interp_future_error(fs[i]) : "");
        CHECK(sum == (int64_t)N * (N + 1) / 2 + 7 && isf, "fz_sum gave %lld (frozen: %d)",
              (long long)sum, isf);
        if (rank >= 0 && rank < 3)
            seen[rank]++;
        interp_future_release(fs[i]);
    }
    CHECK(seen[1] && seen[2] && (root_idle ? !seen[0] : seen[0] > 0), "fz_sum per rank: %d %d %d",
          seen[0], seen[1], seen[2]);
    /* sent once: every task on a rank's (single) state gets the very same object, so the view
     * a task kept in a global is the one the next task gets (a copy per unit would differ) */
    int firsts[3] = {0}, runs[3] = {0};
    for (int i = 0; i < NT; i++)
        CHECK(interp_pool_submit(p, "fz_same", interp_msg_dup(arg), &fs[i]) == INTERP_OK, "submit");
    for (int i = 0; i < NT; i++) {
        int64_t rank = -1;
        bool same = false;
        CHECK(interp_future_resultf(fs[i], 30, "I, b", &rank, &same) == INTERP_OK, "fz_same");
        if (rank >= 0 && rank < 3) {
            runs[rank]++;
            firsts[rank] += !same;
        }
        interp_future_release(fs[i]);
    }
    for (int k = 0; k < 3; k++)
        CHECK(firsts[k] == (runs[k] > 0), "rank %d: %d of %d tasks saw a new object", k, firsts[k],
              runs[k]);
    /* a map whose every item holds the table */
    interp_msg *in[M], *out[M];
    for (int i = 0; i < M; i++)
        in[i] = with_frozen(t, i % N + 1);
    interp_map_options mo = {.chunksize = 10};
    CHECK(interp_pool_map(p, "fz_item", M, (const interp_msg *const *)in, out, &mo) == INTERP_OK,
          "map with frozen items");
    int bad = 0;
    for (int i = 0; i < M; i++) {
        int64_t v = -1;
        bad += !out[i] || interp_msg_unpack(out[i], "I", &v) != INTERP_OK || v != i % N + 1 + 7;
        interp_msg_free(out[i]);
        interp_msg_free(in[i]);
    }
    CHECK(bad == 0, "%d map items wrong", bad);
    /* a buffer */
    interp_frozen *buf = NULL;
    CHECK(interp_frozen_bytes("abcde", 5, &buf) == INTERP_OK, "buffer");
    interp_msg *barg = with_frozen(buf, -1);
    interp_frozen_release(buf);
    for (int i = 0; i < 6; i++) {
        interp_future *f = NULL;
        CHECK(interp_pool_submit(p, "fz_buf", interp_msg_dup(barg), &f) == INTERP_OK, "submit");
        int64_t len = 0;
        const char *sub = NULL;
        size_t sublen = 0;
        CHECK(interp_future_resultf(f, 30, "I, s", &len, &sub, &sublen) == INTERP_OK && len == 5 &&
                  sublen == 3 && !memcmp(sub, "bcd", 3),
              "fz_buf");
        interp_future_release(f);
    }
    interp_msg_free(barg);
    /* the root lets go: its cache drops the values within a sweep (the root computes nothing
     * when root_idle, so then nothing else of this process holds them) */
    interp_msg_free(arg);
    interp_frozen_release(t);
    if (root_idle) {
        size_t values = 0, bytes = 0;
        double t0 = now();
        do {
            usleep(20 * 1000);
            interp_frozen_totals(&values, &bytes);
        } while (values > values0 && now() - t0 < 10);
        CHECK(values == values0, "frozen values alive on the root: %zu, before: %zu", values,
              values0);
    }
}

/* ---- a rank stopped or killed mid-map ---------------------------------------------------- */

/* The CPU time a process has used so far (user + system), in seconds; -1 if unreadable. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long utime = 0, stime = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void case_lost(interp_pool *p, const int *pids, bool resubmit, bool kill_it, double hb)
{
    enum { M = 60 };
    interp_msg *in[M], *out[M];
    int status[M];
    char *errors[M];
    for (int i = 0; i < M; i++)
        interp_msg_pack(&in[i], "I", (int64_t)3000000);
    /* Stops (or kills) rank 2 once the map is under way: when rank 2 has computed for 50 ms
     * (its CPU time, not a sleep, so that a fast map cannot end before the signal), it holds
     * items in flight and most of the map is still ahead. */
    double cpu0 = proc_cpu_s(pids[2]);
    pid_t child = fork();
    if (child == 0) {
        double t0 = now();
        while (proc_cpu_s(pids[2]) - cpu0 < 0.05 && now() - t0 < 30)
            usleep(2000);
        kill(pids[2], kill_it ? SIGKILL : SIGSTOP);
        _exit(0);
    }
    interp_map_options mo = {.status = status, .errors = errors, .chunksize = 1};
    double t0 = now();
    int rc = interp_pool_map(p, "slow_cpu", M, (const interp_msg *const *)in, out, &mo);
    double took = now() - t0;
    kill(pids[2], SIGCONT);
    int ok = 0, lost = 0, other = 0;
    for (int i = 0; i < M; i++) {
        if (status[i] == INTERP_OK)
            ok++;
        else if (status[i] == INTERP_ERR_BROKEN && errors[i] && strstr(errors[i], "rank 2") &&
                 strstr(errors[i], "stopped answering"))
            lost++;
        else {
            other++;
            fprintf(stderr, "item %d: %d %s\n", i, status[i], errors[i] ? errors[i] : "");
        }
        interp_msg_free(out[i]);
        free(errors[i]);
        interp_msg_free(in[i]);
    }
    printf("lost case: rc %d, %d ok, %d lost, %d other, %.2f s\n", rc, ok, lost, other, took);
    CHECK(other == 0, "items with other outcomes: %d", other);
    if (resubmit)
        CHECK(ok == M && rc == INTERP_OK, "resubmitted: %d ok", ok);
    else
        CHECK(lost > 0 && rc == INTERP_ERR_BROKEN, "lost items %d rc %d", lost, rc);
    /* the map's own work takes a few seconds here; the stop adds at most the heartbeat
     * timeout, plus a generous margin for a loaded machine */
    CHECK(took < hb + 30, "map took %.2f s", took);
}

/* ---- the bytecode header check (no ranks needed) ----------------------------------------- */

static void case_bytecode(void)
{
    unsigned char h[64], o[64];
    size_t n = 0;
    mpi__bytecode_header(h, &n);
    CHECK(n == 31 && memcmp(h, "\x1bLua", 4) == 0 && h[4] == 0x54, "header of %zu bytes", n);
    CHECK(mpi__bytecode_differs(h, n, h, n) == NULL, "equal headers");
    struct {
        int at;
        const char *want;
    } flips[] = {
        {4, "Lua version"},          {5, "bytecode format"},      {8, "LUAC_DATA"},
        {12, "size of Instruction"}, {13, "size of lua_Integer"}, {14, "size of lua_Number"},
        {15, "integer format"},      {23, "float format"}};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(o, h, n);
        o[flips[i].at] ^= 1;
        const char *why = mpi__bytecode_differs(o, n, h, n);
        CHECK(why && strstr(why, flips[i].want), "byte %d: %s", flips[i].at, why ? why : "(equal)");
    }
    /* the other byte order: LUAC_INT 0x5678 written big-endian */
    memcpy(o, h, n);
    for (int k = 0; k < 8; k++)
        o[15 + k] = h[15 + 7 - k];
    const char *why = mpi__bytecode_differs(o, n, h, n);
    CHECK(why && strstr(why, "byte order"), "byte order: %s", why ? why : "(equal)");
    CHECK(mpi__bytecode_differs(h, 3, h, n) != NULL, "a short header");
}

int main(int argc, char **argv)
{
    char *err = NULL;
    if (interp_mpi_init(&argc, &argv, &err) != INTERP_OK) {
        fprintf(stderr, "mpi init: %s\n", err);
        return 2;
    }
    const char *which = argc > 1 ? argv[1] : "map";
    alarm(100); /* every case is bounded; ctest's timeout is the second line */
    int me, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int pid = getpid(), pids[16] = {0};
    MPI_Gather(&pid, 1, MPI_INT, pids, 1, MPI_INT, 0, MPI_COMM_WORLD);
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.init_source = init_src;
    interp_mpi_options mo = {0};
    bool lost = !strcmp(which, "lost") || !strcmp(which, "resubmit") || !strcmp(which, "killed");
    if (!strcmp(which, "errors"))
        o.memory_limit = 32u << 20;
    if (lost) {
        /* killed: mpiexec ends the job long before the root would call the rank lost */
        mo.heartbeat_timeout = !strcmp(which, "killed") ? 30 : 1.5;
        mo.on_lost = !strcmp(which, "resubmit") ? INTERP_MPI_LOST_RESUBMIT : INTERP_MPI_LOST_FAIL;
    }
    if (!strcmp(which, "bytecode")) {
        if (me == 0)
            case_bytecode();
        if (me == 0)
            printf("%s: %s (%d failures)\n", which, failures ? "FAILED" : "ok", failures);
        MPI_Finalize();
        return failures ? 1 : 0;
    }
    if (!strcmp(which, "frozen")) { /* a frozen value in init_args: refused on every rank */
        interp_frozen *f = make_frozen(3);
        interp_pool_options fo = o;
        interp_msg *fargs = with_frozen(f, -1);
        fo.init_args = fargs;
        interp_frozen_release(f);
        interp_pool *p = NULL;
        char *ferr = NULL;
        int rc = interp_mpi_pool_create(&p, MPI_COMM_WORLD, &fo, &mo, &ferr);
        CHECK(rc == INTERP_ERR_INVALID && !p && (me != 0 || (ferr && strstr(ferr, "init_args"))),
              "a frozen init_args: %d %s", rc, ferr ? ferr : "");
        free(ferr);
        interp_msg_free(fargs);
    }
    int rounds = !strcmp(which, "shutdown") || !strcmp(which, "frozen") ? 2 : 1, served = 0;
    size_t values0 = 0, bytes0 = 0;
    interp_frozen_totals(&values0, &bytes0);
    for (int round = 0; round < rounds; round++) {
        mo.root_idle = !strcmp(which, "frozen") && round == 1;
        interp_pool *p = mpi_pool(&o, &mo, &served);
        if (!p)
            continue; /* a serving rank: the root destroyed this pool */
        if (!strcmp(which, "map"))
            case_map(p);
        else if (!strcmp(which, "errors"))
            case_errors(p);
        else if (!strcmp(which, "cancel"))
            case_cancel(p);
        else if (!strcmp(which, "shutdown"))
            case_shutdown(p, round);
        else if (!strcmp(which, "frozen"))
            case_frozen(p, mo.root_idle, values0);
        else if (lost)
            case_lost(p, pids, !strcmp(which, "resubmit"), !strcmp(which, "killed"), 1.5);
        double t0 = now();
        interp_pool_destroy(p);
        CHECK(now() - t0 < 20, "destroy took %.2f s", now() - t0);
    }
    if (me == 0)
        printf("%s: %s (%d failures)\n", which, failures ? "FAILED" : "ok", failures);
    MPI_Finalize();
    return failures ? 1 : 0;
}
