/* test_pool_growth_stress.c - workers started on demand, under races:
 *  - many threads submit to a fresh pool at once (a stats reader polls meanwhile): no more
 *    than max_workers ever run, every task ends once with the right result;
 *  - a burst of submits from several threads races shutdown, shutdown(cancel), shutdown_now or
 *    destroy: every future ends, every started thread is joined;
 *  - tasks that each wait for the next one through a channel, as many as `workers`: each needs
 *    its own worker at once, so a push that fails to start one deadlocks (the waits time out
 *    and the test fails instead of hanging); submitted in one burst, from two threads, through
 *    map, with idle workers already asleep, with the state recycled after every task;
 *  - initializers that fail in one state only, prestarted or started on demand;
 *  - map chunks while another thread submits; create/destroy loops on two threads at once;
 *    a worker abandoned by the watchdog while others start.
 * INTERP_STRESS_ROUNDS scales the rounds (default 3: about a second in Release, a few under
 * TSan). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>
#include <errno.h>
#include <unistd.h>

#include <cmocka.h>

#include "core_impl.h"
#include "pool_util.h"

/* Thread starts fail on demand (tests/pool_growth_stress.cmake links with
 * --wrap=pthread_create): after `skip_thread_starts` more calls, the next `fail_thread_starts`
 * calls fail with EAGAIN. */
static atomic_int fail_thread_starts, skip_thread_starts;
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    int skip = atomic_load(&skip_thread_starts);
    while (skip > 0 && !atomic_compare_exchange_weak(&skip_thread_starts, &skip, skip - 1))
        ;
    if (skip > 0)
        return __real_pthread_create(t, a, fn, arg);
    int left = atomic_load(&fail_thread_starts);
    while (left > 0 && !atomic_compare_exchange_weak(&fail_thread_starts, &left, left - 1))
        ;
    if (left > 0)
        return EAGAIN;
    return __real_pthread_create(t, a, fn, arg);
}

/* Functions of the pools here (besides UTIL_INIT's). chain(k, n, tag): task k waits for task
 * k + 1 (a message on channel tag..k), then lets task k - 1 go. */
static const char *const GROW_INIT =
    "function work(x) local s = 0 for i = 1, 300 do s = s + i end return x * 2, "
    "  interp.worker_id end\n"
    "function chain(k, n, tag)\n"
    "  if k < n - 1 then\n"
    "    local v, e = interp.channel(tag .. k):recv(10)\n"
    "    if v == nil then error('task ' .. k .. ' got no word from task ' .. (k + 1) .. ': ' ..\n"
    "                          tostring(e)) end\n"
    "  end\n"
    "  if k > 0 then interp.channel(tag .. (k - 1)):send(true) end\n"
    "  return k, interp.worker_id\n"
    "end\n";

static long rounds(long base)
{
    long r = base * util_env("INTERP_STRESS_ROUNDS", 3);
    return r > 0 ? r : 1;
}

static interp_pool *grow_pool(int workers, bool prestart, unsigned max_tasks)
{
    static char init[4096];
    if (!init[0])
        snprintf(init, sizeof init, "%s%s", UTIL_INIT, GROW_INIT);
    interp_pool_options o = interp_pool_defaults();
    o.workers = workers;
    o.prestart = prestart;
    o.max_tasks_per_worker = max_tasks;
    o.init_source = init;
    interp_pool *p = NULL;
    char *err = NULL;
    if (interp_pool_create(&p, &o, &err) != INTERP_OK) {
        fprintf(stderr, "pool create: %s\n", err ? err : "");
        abort();
    }
    return p;
}

/* The two values of a result (x * 2 or k, worker id); false if it is not two integers. */
static bool two_ints(const interp_msg *m, int64_t *a, int64_t *b)
{
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    if (!interp_msg_next(&it, &v) || v.type != INTERP_MSG_INT)
        return false;
    *a = v.as.i;
    if (!interp_msg_next(&it, &v) || v.type != INTERP_MSG_INT)
        return false;
    *b = v.as.i;
    return true;
}

/* r is the result of a task that doubled x on a worker whose id is below maxw. */
static void assert_doubled(const interp_msg *r, int64_t x, int64_t maxw)
{
    int64_t v = 0, wid = -1;
    assert_true(two_ints(r, &v, &wid));
    assert_int_equal(v, 2 * x);
    assert_true(wid >= 0 && wid < maxw);
}

/* ---- many submitters at once ------------------------------------------------------------ */

enum { SUBMITTERS = 4, PER_SUBMITTER = 24, MAXW = 3 };

typedef struct burst {
    interp_pool *pool;
    pthread_barrier_t go;
    int per;             /* tasks per submitter */
    atomic_bool stop;    /* ends the stats poller; submitters stop at the first error */
    atomic_int over_max; /* the poller saw more workers than max_workers */
    atomic_int polls;
    interp_future *f[SUBMITTERS][64];
    int n[SUBMITTERS];  /* futures each submitter got */
    int rc[SUBMITTERS]; /* the error that stopped it (INTERP_OK: none) */
} burst;

typedef struct sub_arg {
    burst *b;
    int id;
} sub_arg;

static void *submitter(void *arg)
{
    sub_arg *a = arg;
    burst *b = a->b;
    pthread_barrier_wait(&b->go);
    b->rc[a->id] = INTERP_OK;
    for (int i = 0; i < b->per; i++) {
        interp_msg *m = interp_msg_int(a->id * 1000 + i);
        int rc = interp_pool_submit(b->pool, "work", m, &b->f[a->id][i]);
        if (rc != INTERP_OK) {
            interp_msg_free(m);
            b->rc[a->id] = rc;
            break;
        }
        b->n[a->id] = i + 1;
    }
    return NULL;
}

static void *stats_poller(void *arg)
{
    burst *b = arg;
    pthread_barrier_wait(&b->go);
    while (!atomic_load(&b->stop)) {
        interp_pool_stats s;
        if (interp_pool_get_stats(b->pool, &s) != INTERP_OK || s.workers > s.max_workers)
            atomic_fetch_add(&b->over_max, 1);
        for (int w = 0; w < MAXW; w++) {
            size_t use = 0;
            int rc = interp_pool_worker_memory(b->pool, w, &use, NULL);
            if (rc != INTERP_OK && rc != INTERP_ERR_NOTFOUND)
                atomic_fetch_add(&b->over_max, 1);
        }
        atomic_fetch_add(&b->polls, 1);
        sched_yield();
    }
    return NULL;
}

static void pool_growth_stress_concurrent_submits_to_a_fresh_pool(void **st)
{
    (void)st;
    int threads_before = util_count_dir("/proc/self/task");
    for (long round = 0; round < rounds(20); round++) {
        burst *b = calloc(1, sizeof *b);
        b->pool = grow_pool(MAXW, round % 5 == 4, round % 3 == 2 ? 2 : 0);
        b->per = PER_SUBMITTER;
        pthread_barrier_init(&b->go, NULL, SUBMITTERS + 1);
        pthread_t t[SUBMITTERS], poller;
        sub_arg a[SUBMITTERS];
        for (int i = 0; i < SUBMITTERS; i++) {
            a[i] = (sub_arg){b, i};
            assert_int_equal(pthread_create(&t[i], NULL, submitter, &a[i]), 0);
        }
        assert_int_equal(pthread_create(&poller, NULL, stats_poller, b), 0);
        for (int i = 0; i < SUBMITTERS; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < SUBMITTERS; i++) {
            assert_int_equal(b->rc[i], INTERP_OK);
            assert_int_equal(b->n[i], PER_SUBMITTER);
            for (int k = 0; k < b->n[i]; k++) {
                const interp_msg *r = NULL;
                assert_int_equal(interp_future_result(b->f[i][k], 30.0, &r), INTERP_OK);
                assert_doubled(r, i * 1000 + k, MAXW);
                interp_future_release(b->f[i][k]);
            }
        }
        atomic_store(&b->stop, true);
        pthread_join(poller, NULL);
        assert_int_equal(atomic_load(&b->over_max), 0);
        interp_pool_stats s;
        assert_int_equal(interp_pool_get_stats(b->pool, &s), INTERP_OK);
        assert_true(s.workers >= 1 && s.workers <= MAXW);
        assert_int_equal(s.max_workers, MAXW);
        assert_int_equal(s.submitted, SUBMITTERS * PER_SUBMITTER);
        assert_int_equal(s.done, SUBMITTERS * PER_SUBMITTER);
        assert_int_equal(s.failed + s.cancelled, 0);
        /* at most the workers and the watchdog beside the threads of before */
        assert_true(util_threads_settled(threads_before + MAXW + 1) <= threads_before + MAXW + 1);
        interp_pool_destroy(b->pool);
        pthread_barrier_destroy(&b->go);
        free(b);
    }
    assert_true(util_threads_settled(threads_before) <= threads_before);
}

/* ---- a burst of submits racing the end of the pool -------------------------------------- */

enum { END_SHUTDOWN, END_SHUTDOWN_CANCEL, END_SHUTDOWN_NOW, END_DESTROY, END_MODES };

static void pool_growth_stress_burst_races_shutdown(void **st)
{
    (void)st;
    int threads_before = util_count_dir("/proc/self/task");
    for (long round = 0; round < rounds(40); round++) {
        int mode = (int)(round % END_MODES);
        burst *b = calloc(1, sizeof *b);
        b->pool = grow_pool(MAXW + 1, false, 0);
        b->per = 16;
        enum { NS = 3 };
        pthread_barrier_init(&b->go, NULL, NS + 1);
        pthread_t t[NS];
        sub_arg a[NS];
        for (int i = 0; i < NS; i++) {
            a[i] = (sub_arg){b, i};
            assert_int_equal(pthread_create(&t[i], NULL, submitter, &a[i]), 0);
        }
        pthread_barrier_wait(&b->go);
        if (mode == END_SHUTDOWN)
            assert_int_equal(interp_pool_shutdown(b->pool, true, false), INTERP_OK);
        else if (mode == END_SHUTDOWN_CANCEL)
            assert_int_equal(interp_pool_shutdown(b->pool, true, true), INTERP_OK);
        else if (mode == END_SHUTDOWN_NOW)
            assert_int_equal(interp_pool_shutdown_now(b->pool), INTERP_OK);
        for (int i = 0; i < NS; i++)
            pthread_join(t[i], NULL);
        if (mode == END_DESTROY) { /* right behind the burst: workers are still starting */
            interp_pool_destroy(b->pool);
            b->pool = NULL;
        } else {
            interp_pool_stats s;
            assert_int_equal(interp_pool_get_stats(b->pool, &s), INTERP_OK);
            assert_int_equal(s.workers, 0); /* every worker joined, none starting */
            assert_int_equal(s.queued, 0);
        }
        for (int i = 0; i < NS; i++) {
            if (b->rc[i] != INTERP_OK)
                assert_int_equal(b->rc[i], INTERP_ERR_SHUTDOWN);
            for (int k = 0; k < b->n[i]; k++) {
                interp_future *f = b->f[i][k];
                /* the pool has shut down (or is gone): every accepted task has ended */
                assert_true(interp_future_done(f));
                const interp_msg *r = NULL;
                int rc = interp_future_result(f, 0, &r);
                if (rc == INTERP_OK) {
                    assert_doubled(r, i * 1000 + k, MAXW + 1);
                } else if (mode == END_SHUTDOWN) {
                    fail_msg("task %d/%d: %s (%s)", i, k, interp_strerror(rc),
                             interp_future_error(f));
                } else {
                    assert_true(rc == INTERP_ERR_CANCELLED || rc == INTERP_ERR_SHUTDOWN);
                }
                interp_future_release(f);
            }
        }
        interp_pool_destroy(b->pool);
        assert_true(util_threads_settled(threads_before) <= threads_before);
        pthread_barrier_destroy(&b->go);
        free(b);
    }
}

/* ---- tasks that need every worker at once ----------------------------------------------- */

enum { CHAIN_N = 5 };

static interp_msg *chain_args(int k, int n, const char *tag)
{
    interp_msg_builder *bl = interp_msg_builder_new();
    interp_msg_add_int(bl, k);
    interp_msg_add_int(bl, n);
    interp_msg_add_str(bl, tag, strlen(tag));
    interp_msg *m = NULL;
    assert_int_equal(interp_msg_builder_finish(bl, &m), INTERP_OK);
    return m;
}

typedef struct chain_half {
    interp_pool *pool;
    pthread_barrier_t *go;
    const char *tag;
    int first, step; /* submits tasks first, first + step, ... < CHAIN_N */
    interp_future *f[CHAIN_N];
    int rc;
} chain_half;

static void *chain_submitter(void *arg)
{
    chain_half *h = arg;
    pthread_barrier_wait(h->go);
    h->rc = INTERP_OK;
    for (int k = h->first; k < CHAIN_N; k += h->step) {
        interp_msg *m = chain_args(k, CHAIN_N, h->tag);
        int rc = interp_pool_submit(h->pool, "chain", m, &h->f[k]);
        if (rc != INTERP_OK) {
            interp_msg_free(m);
            h->rc = rc;
            return NULL;
        }
    }
    return NULL;
}

/* Wait until n workers sit idle in the queue (spinning or asleep; asleep with want_asleep). */
static void wait_idle(interp_pool *p, int n, bool want_asleep)
{
    for (;;) {
        interp__mutex_lock(&p->q.mu);
        int idle = p->q.n_sleep + (want_asleep ? 0 : p->q.n_spin);
        interp__mutex_unlock(&p->q.mu);
        if (idle >= n)
            return;
        sched_yield();
    }
}

/* Make `warm` workers exist and sit idle: `warm` blocking tasks at once, then let them go. */
static void warm_up(interp_pool *p, int warm)
{
    interp_future *f[CHAIN_N];
    for (int i = 0; i < warm; i++) {
        assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &f[i]), INTERP_OK);
        util_recv(p, "started");
    }
    util_send(p, "go", warm);
    for (int i = 0; i < warm; i++) {
        assert_int_equal(interp_future_result(f[i], 30.0, NULL), INTERP_OK);
        interp_future_release(f[i]);
    }
    wait_idle(p, warm, true);
}

static void check_chain_result(int k, int rc, const interp_msg *r, const char *err, bool *wids)
{
    if (rc != INTERP_OK)
        fail_msg("chain task %d: %s: %s", k, interp_strerror(rc), err ? err : "");
    int64_t v = 0, wid = -1;
    assert_true(two_ints(r, &v, &wid));
    assert_int_equal(v, k);
    assert_true(wid >= 0 && wid < CHAIN_N);
    /* queued in order, tasks 0 .. n - 2 all wait for the last one: each on its own worker
     * (from two threads the last may run first, and its worker take another) */
    if (wids) {
        assert_false(wids[wid]);
        wids[wid] = true;
    }
}

static void pool_growth_stress_dependent_tasks_all_start(void **st)
{
    (void)st;
    enum { V_BURST, V_TWO_THREADS, V_MAP, V_RECYCLE, V_PRESTART_RECYCLE, V_VARIANTS };
    for (long round = 0; round < rounds(5 * V_VARIANTS); round++) {
        int variant = (int)(round % V_VARIANTS);
        int warm = (int)((round / V_VARIANTS) % CHAIN_N); /* workers started and idle first */
        unsigned max_tasks = variant == V_RECYCLE || variant == V_PRESTART_RECYCLE ? 1 : 0;
        interp_pool *p = grow_pool(CHAIN_N, variant == V_PRESTART_RECYCLE, max_tasks);
        if (warm > 1 && variant != V_PRESTART_RECYCLE)
            warm_up(p, warm);
        char tag[32];
        snprintf(tag, sizeof tag, "c%ld_", round);
        bool wids[CHAIN_N] = {false};
        if (variant == V_MAP) {
            const interp_msg *in[CHAIN_N];
            interp_msg *args[CHAIN_N], *out[CHAIN_N];
            int status[CHAIN_N];
            char *errors[CHAIN_N];
            for (int k = 0; k < CHAIN_N; k++)
                in[k] = args[k] = chain_args(k, CHAIN_N, tag);
            interp_map_options mo = {.chunksize = 1, .status = status, .errors = errors};
            int rc = interp_pool_map(p, "chain", CHAIN_N, in, out, &mo);
            for (int k = 0; k < CHAIN_N; k++) {
                check_chain_result(k, status[k], out[k], errors[k], wids);
                interp_msg_free(out[k]);
                free(errors[k]);
                interp_msg_free(args[k]);
            }
            assert_int_equal(rc, INTERP_OK);
        } else {
            pthread_barrier_t go;
            int nt = variant == V_TWO_THREADS ? 2 : 1;
            pthread_barrier_init(&go, NULL, (unsigned)nt);
            chain_half h[2];
            pthread_t t[2];
            for (int i = 0; i < nt; i++) {
                h[i] = (chain_half){.pool = p, .go = &go, .tag = tag, .first = i, .step = nt};
                assert_int_equal(pthread_create(&t[i], NULL, chain_submitter, &h[i]), 0);
            }
            for (int i = 0; i < nt; i++)
                pthread_join(t[i], NULL);
            pthread_barrier_destroy(&go);
            for (int i = 0; i < nt; i++)
                assert_int_equal(h[i].rc, INTERP_OK);
            for (int k = 0; k < CHAIN_N; k++) {
                interp_future *f = h[k % nt].f[k];
                const interp_msg *r = NULL;
                int rc = interp_future_result(f, 60.0, &r);
                check_chain_result(k, rc, r, interp_future_error(f), nt == 1 ? wids : NULL);
                interp_future_release(f);
            }
        }
        interp_pool_stats s;
        assert_int_equal(interp_pool_get_stats(p, &s), INTERP_OK);
        if (variant != V_TWO_THREADS && s.workers != CHAIN_N)
            fail_msg("round %ld (variant %d, %d warm): %d workers", round, variant, warm,
                     (int)s.workers);
        interp_pool_destroy(p);
    }
}

/* ---- initializers that fail in one state only ------------------------------------------- */

static char *init_failing_in(int k)
{
    static char src[4096];
    snprintf(src, sizeof src,
             "%s%sif interp.worker_id == %d then error('refused in state %d') end\n", UTIL_INIT,
             GROW_INIT, k, k);
    return src;
}

static void pool_growth_stress_prestart_initializer_fails_in_one_state(void **st)
{
    (void)st;
    enum { W = 4 };
    int threads_before = util_count_dir("/proc/self/task");
    for (long round = 0; round < rounds(3 * W); round++) {
        int k = (int)(round % W);
        interp_pool_options o = interp_pool_defaults();
        o.workers = W;
        o.prestart = true;
        o.init_source = init_failing_in(k);
        interp_pool *p = (interp_pool *)1;
        char *err = NULL;
        assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_SCRIPT);
        assert_null(p);
        assert_non_null(err);
        char want[32];
        snprintf(want, sizeof want, "refused in state %d", k);
        if (!strstr(err, want))
            fail_msg("create error: %s", err);
        free(err);
        assert_true(util_threads_settled(threads_before) <= threads_before);
    }
}

/* On demand: worker k is the k-th started, for the (k+1)-th task running at once. Its failure
 * breaks the pool: that task fails with the initializer's text, the running ones end well. */
static void pool_growth_stress_new_worker_fails_in_one_state(void **st)
{
    (void)st;
    enum { W = 4 };
    int threads_before = util_count_dir("/proc/self/task");
    for (long round = 0; round < rounds(2 * (W - 1)); round++) {
        int k = 1 + (int)(round % (W - 1));
        interp_pool_options o = interp_pool_defaults();
        o.workers = W;
        o.init_source = init_failing_in(k);
        interp_pool *p;
        assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
        interp_future *f[W];
        for (int i = 0; i < k; i++) {
            assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &f[i]), INTERP_OK);
            util_recv(p, "started");
        }
        interp_future *bad;
        assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(2), &bad), INTERP_OK);
        assert_int_equal(interp_future_result(bad, 30.0, NULL), INTERP_ERR_BROKEN);
        char want[32];
        snprintf(want, sizeof want, "refused in state %d", k);
        assert_non_null(strstr(interp_future_error(bad), want));
        interp_msg *a = interp_msg_int(1);
        interp_future *late = NULL;
        assert_int_equal(interp_pool_submit(p, "double", a, &late), INTERP_ERR_BROKEN);
        interp_msg_free(a);
        util_send(p, "go", k);
        for (int i = 0; i < k; i++) {
            assert_int_equal(interp_future_result(f[i], 30.0, NULL), INTERP_OK);
            interp_future_release(f[i]);
        }
        interp_future_release(bad);
        interp_pool_destroy(p);
        assert_true(util_threads_settled(threads_before) <= threads_before);
    }
}

/* A burst from several threads into a pool whose last worker cannot start: every task ends
 * (done, or failed because the pool broke), nothing hangs, every thread is joined. */
static void pool_growth_stress_burst_into_a_pool_that_breaks(void **st)
{
    (void)st;
    int threads_before = util_count_dir("/proc/self/task");
    int broke = 0;
    for (long round = 0; round < rounds(12); round++) {
        interp_pool_options o = interp_pool_defaults();
        o.workers = MAXW;
        o.init_source = init_failing_in(1 + (int)(round % (MAXW - 1)));
        burst *b = calloc(1, sizeof *b);
        assert_int_equal(interp_pool_create(&b->pool, &o, NULL), INTERP_OK);
        b->per = 16;
        pthread_barrier_init(&b->go, NULL, SUBMITTERS);
        pthread_t t[SUBMITTERS];
        sub_arg a[SUBMITTERS];
        for (int i = 0; i < SUBMITTERS; i++) {
            a[i] = (sub_arg){b, i};
            assert_int_equal(pthread_create(&t[i], NULL, submitter, &a[i]), 0);
        }
        for (int i = 0; i < SUBMITTERS; i++)
            pthread_join(t[i], NULL);
        bool any_broken = false;
        for (int i = 0; i < SUBMITTERS; i++) {
            if (b->rc[i] != INTERP_OK) {
                assert_int_equal(b->rc[i], INTERP_ERR_BROKEN);
                any_broken = true;
            }
            for (int k = 0; k < b->n[i]; k++) {
                const interp_msg *r = NULL;
                int rc = interp_future_result(b->f[i][k], 30.0, &r);
                if (rc == INTERP_OK) {
                    assert_doubled(r, i * 1000 + k, INT64_MAX);
                } else {
                    assert_int_equal(rc, INTERP_ERR_BROKEN);
                    assert_non_null(strstr(interp_future_error(b->f[i][k]), "refused in"));
                    any_broken = true;
                }
                interp_future_release(b->f[i][k]);
            }
        }
        broke += any_broken;
        interp_pool_destroy(b->pool);
        pthread_barrier_destroy(&b->go);
        free(b);
        assert_true(util_threads_settled(threads_before) <= threads_before);
    }
    printf("pools broken by a new worker: %d of %ld\n", broke, rounds(12));
}

/* ---- map chunks while another thread submits -------------------------------------------- */

static void *submit_while_mapping(void *arg)
{
    burst *b = arg;
    sub_arg a = {b, 0};
    submitter(&a);
    return NULL;
}

static void pool_growth_stress_map_while_another_thread_submits(void **st)
{
    (void)st;
    enum { N = 96 };
    for (long round = 0; round < rounds(10); round++) {
        burst *b = calloc(1, sizeof *b);
        b->pool = grow_pool(MAXW + 1, false, round % 2 ? 3 : 0);
        b->per = 48;
        pthread_barrier_init(&b->go, NULL, 2);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, submit_while_mapping, b), 0);
        const interp_msg *in[N];
        interp_msg *args[N], *out[N];
        for (int i = 0; i < N; i++)
            in[i] = args[i] = interp_msg_int(i);
        interp_map_options mo = {.chunksize = 1 + (size_t)(round % 4)};
        pthread_barrier_wait(&b->go);
        assert_int_equal(interp_pool_map(b->pool, "work", N, in, out, &mo), INTERP_OK);
        pthread_join(t, NULL);
        for (int i = 0; i < N; i++) {
            int64_t v = 0, wid = -1;
            assert_true(two_ints(out[i], &v, &wid));
            assert_int_equal(v, 2 * i);
            assert_true(wid >= 0 && wid <= MAXW);
            interp_msg_free(out[i]);
            interp_msg_free(args[i]);
        }
        assert_int_equal(b->rc[0], INTERP_OK);
        for (int k = 0; k < b->n[0]; k++) {
            const interp_msg *r = NULL;
            assert_int_equal(interp_future_result(b->f[0][k], 30.0, &r), INTERP_OK);
            assert_doubled(r, k, INT64_MAX);
            interp_future_release(b->f[0][k]);
        }
        interp_pool_stats s;
        assert_int_equal(interp_pool_get_stats(b->pool, &s), INTERP_OK);
        assert_true(s.workers <= MAXW + 1);
        interp_pool_destroy(b->pool);
        pthread_barrier_destroy(&b->go);
        free(b);
    }
}

/* ---- create and destroy on two threads at once ------------------------------------------ */

typedef struct cycler {
    pthread_barrier_t *go;
    long cycles;
    int id;
    int failures;
} cycler;

static void *create_destroy_loop(void *arg)
{
    cycler *c = arg;
    pthread_barrier_wait(c->go);
    for (long i = 0; i < c->cycles; i++) {
        interp_pool *p = grow_pool(MAXW, (i + c->id) % 3 == 0, 0);
        interp_future *f[4];
        int n = (int)(i % 5); /* 0 .. 4 tasks, some left running for destroy */
        for (int k = 0; k < n; k++) {
            if (interp_pool_submit(p, "work", interp_msg_int(k), &f[k]) != INTERP_OK) {
                c->failures++;
                n = k;
                break;
            }
        }
        if (i % 2 == 0) {
            for (int k = 0; k < n; k++) {
                const interp_msg *r = NULL;
                int64_t v = 0, wid = -1;
                if (interp_future_result(f[k], 30.0, &r) != INTERP_OK || !two_ints(r, &v, &wid) ||
                    v != 2 * k)
                    c->failures++;
            }
        }
        interp_pool_destroy(p);
        for (int k = 0; k < n; k++) {
            /* after destroy every future has ended: done, or cancelled / interrupted */
            int rc = interp_future_status(f[k]);
            if (rc != INTERP_OK && rc != INTERP_ERR_CANCELLED && rc != INTERP_ERR_SHUTDOWN)
                c->failures++;
            interp_future_release(f[k]);
        }
    }
    return NULL;
}

static void pool_growth_stress_create_destroy_on_two_threads(void **st)
{
    (void)st;
    int threads_before = util_count_dir("/proc/self/task");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    cycler c[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        c[i] = (cycler){.go = &go, .cycles = rounds(60), .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, create_destroy_loop, &c[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    assert_int_equal(c[0].failures, 0);
    assert_int_equal(c[1].failures, 0);
    assert_true(util_threads_settled(threads_before) <= threads_before);
}

/* ---- the watchdog abandons a worker while others start ---------------------------------- */

static void pool_growth_stress_abandon_while_growing(void **st)
{
    (void)st;
    int threads_before = util_count_dir("/proc/self/task");
    for (long round = 0; round < rounds(3); round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        interp_pool_options o = interp_pool_defaults();
        o.workers = MAXW;
        o.stuck_grace = 0.02;
        o.init_source = init_failing_in(-1); /* never fails */
        burst *b = calloc(1, sizeof *b);
        assert_int_equal(interp_pool_create(&b->pool, &o, NULL), INTERP_OK);
        char src[256];
        snprintf(src, sizeof src,
                 "local f = io.open('/proc/self/fd/%d', 'r') interp.channel('started'):send(true) "
                 "local s = f:read(1) f:close() return s",
                 fds[0]);
        interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = src}, .timeout = 0.02};
        interp_future *stuck;
        assert_int_equal(interp_pool_submit_task(b->pool, &t, INTERP_FOREVER, &stuck), INTERP_OK);
        util_recv(b->pool, "started");
        /* tasks from two threads while the stuck one passes its deadline and is abandoned */
        b->per = 40;
        pthread_barrier_init(&b->go, NULL, 2);
        pthread_t th[2];
        sub_arg a[2];
        for (int i = 0; i < 2; i++) {
            a[i] = (sub_arg){b, i};
            assert_int_equal(pthread_create(&th[i], NULL, submitter, &a[i]), 0);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        assert_int_equal(interp_future_result(stuck, 30.0, NULL), INTERP_ERR_TIMEOUT);
        assert_non_null(strstr(interp_future_error(stuck), "abandoned"));
        for (int i = 0; i < 2; i++) {
            assert_int_equal(b->rc[i], INTERP_OK);
            for (int k = 0; k < b->n[i]; k++) {
                const interp_msg *r = NULL;
                assert_int_equal(interp_future_result(b->f[i][k], 30.0, &r), INTERP_OK);
                assert_doubled(r, i * 1000 + k, INT64_MAX);
                interp_future_release(b->f[i][k]);
            }
        }
        interp_pool_stats s;
        assert_int_equal(interp_pool_get_stats(b->pool, &s), INTERP_OK);
        assert_int_equal(s.workers_abandoned, 1);
        assert_true(s.workers >= 1 && s.workers <= MAXW);
        interp_pool_destroy(b->pool);
        interp_future_release(stuck);
        assert_int_equal(util_unblock_abandoned(fds, threads_before), threads_before);
        pthread_barrier_destroy(&b->go);
        free(b);
    }
}

/* ---- a worker that cannot start --------------------------------------------------------- */

/* A push whose new worker's thread cannot start: the task waits for a worker there is, the
 * pool's start count comes back (shutdown(wait) returns, nothing leaks) and the next push
 * starts the worker after all; create fails cleanly when its own threads cannot start. */
static void pool_growth_stress_thread_start_fails(void **st)
{
    (void)st;
    int threads_before = util_threads_settled(util_count_dir("/proc/self/task"));
    int tried = 0;
    for (long round = 0; round < rounds(4); round++) {
        interp_pool *p = grow_pool(2, false, 0); /* one start to lose, if a failure lost it */
        interp_future *busy, *f;
        wait_idle(p, 1, false); /* the first worker waits for a job: it takes the next one */
        assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &busy), INTERP_OK);
        util_recv(p, "started");
        atomic_store(&fail_thread_starts, 1);
        assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(21), &f), INTERP_OK);
        /* Did that submit start a worker? Not if the first one stepped out of the queue for
         * a moment (its idle tidy-up) when the busy task came, so that one started then. */
        if (atomic_exchange(&fail_thread_starts, 0) == 0) {
            tried++;
            interp_pool_stats s;
            assert_int_equal(interp_pool_get_stats(p, &s), INTERP_OK);
            assert_int_equal(s.workers, 1);
            assert_int_equal(s.queued, 1);
            assert_int_equal(atomic_load(&p->start.n_starting), 0);
            /* The start was given back: the next push starts a worker, which runs both
             * queued tasks while the busy one still waits. */
            interp_future *g;
            assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &g), INTERP_OK);
            const interp_msg *r = NULL;
            assert_int_equal(interp_future_result(g, 10.0, &r), INTERP_OK);
            assert_int_equal(util_int(r), 2);
            assert_int_equal(interp_future_result(f, 30.0, &r), INTERP_OK);
            assert_false(interp_future_done(busy));
            assert_int_equal(interp_pool_get_stats(p, &s), INTERP_OK);
            assert_int_equal(s.workers, 2);
            interp_future_release(g);
        }
        util_send(p, "go", 1);
        const interp_msg *r = NULL;
        assert_int_equal(interp_future_result(f, 30.0, &r), INTERP_OK);
        assert_int_equal(util_int(r), 42);
        assert_int_equal(interp_future_result(busy, 30.0, NULL), INTERP_OK);
        interp_future_release(f);
        interp_future_release(busy);
        if (round % 2)
            assert_int_equal(interp_pool_shutdown(p, true, false), INTERP_OK);
        interp_pool_destroy(p);
        assert_true(util_threads_settled(threads_before) <= threads_before);

        /* create: the first worker's thread, or the second (prestarted) one's, cannot start */
        interp_pool_options o = interp_pool_defaults();
        o.workers = MAXW;
        o.prestart = round % 2;
        o.init_source = UTIL_INIT;
        atomic_store(&skip_thread_starts, o.prestart ? 1 : 0);
        atomic_store(&fail_thread_starts, 1);
        interp_pool *q = (interp_pool *)1;
        char *err = NULL;
        assert_int_equal(interp_pool_create(&q, &o, &err), INTERP_ERR_SYSTEM);
        assert_int_equal(atomic_load(&fail_thread_starts), 0);
        assert_null(q);
        assert_non_null(err);
        free(err);
        assert_true(util_threads_settled(threads_before) <= threads_before);
    }
    assert_true(tried > 0);
}

int main(void)
{
    /* A pool made and destroyed once first: sanitizer runtimes start helper threads of their
     * own on first need, which the thread counts below must not see. */
    interp_pool_destroy(grow_pool(2, true, 0));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_growth_stress_concurrent_submits_to_a_fresh_pool),
        cmocka_unit_test(pool_growth_stress_burst_races_shutdown),
        cmocka_unit_test(pool_growth_stress_dependent_tasks_all_start),
        cmocka_unit_test(pool_growth_stress_prestart_initializer_fails_in_one_state),
        cmocka_unit_test(pool_growth_stress_new_worker_fails_in_one_state),
        cmocka_unit_test(pool_growth_stress_burst_into_a_pool_that_breaks),
        cmocka_unit_test(pool_growth_stress_map_while_another_thread_submits),
        cmocka_unit_test(pool_growth_stress_create_destroy_on_two_threads),
        cmocka_unit_test(pool_growth_stress_abandon_while_growing),
        cmocka_unit_test(pool_growth_stress_thread_start_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
