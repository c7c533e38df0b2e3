/* test_pool_stress.c - the pool under load and races:
 *  - 4 host threads submit INTERP_STRESS_TASKS tasks each (default 50,000) mixing normal,
 *    failing, timing-out and self-cancelled tasks while a fifth thread cancels at random; then
 *    shutdown: every future ends exactly once, every callback runs exactly once, the stats add
 *    up;
 *  - shutdown_now while every worker is in an infinite loop with 10,000 tasks queued returns
 *    within the grace period plus 200 ms;
 *  - submit racing shutdown from 8 threads: each submit is rejected or resolved, none lost;
 *  - INTERP_STRESS_CYCLES (default 10,000) create/destroy cycles leave the thread and fd
 *    counts where they started. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core_impl.h"
#include "pool_util.h"

enum { HOSTS = 4 };

typedef struct stress {
    interp_pool *pool;
    size_t per_thread;
    interp_future **futures;       /* HOSTS * per_thread, written once by their submitter */
    atomic_int *callbacks;         /* calls per future */
    atomic_size_t published;       /* futures visible to the canceller */
    atomic_size_t progress[HOSTS]; /* per host thread: futures submitted so far */
    atomic_bool submitting_done;
    atomic_int submit_errors;
    atomic_size_t random_cancels;
} stress;

typedef struct host_arg {
    stress *s;
    int id;
} host_arg;

static void count_cb(interp_future *f, void *ud)
{
    (void)f;
    atomic_fetch_add((atomic_int *)ud, 1);
}

static void *host_main(void *arg)
{
    host_arg *h = arg;
    stress *s = h->s;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(h->id + 1);
    for (size_t i = 0; i < s->per_thread; i++) {
        size_t idx = (size_t)h->id * s->per_thread + i;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned kind = (unsigned)(rng % 100);
        interp_task t = {.fn = {.kind = INTERP_FN_NAME}};
        if (kind < 80) {
            t.fn.text = "double";
            t.args = interp_msg_int((int64_t)i);
        } else if (kind < 90) {
            t.fn.text = "boom";
        } else if (kind < 91) {
            t.fn.text = "spin";
            t.timeout = 0.002;
        } else {
            t.fn.text = "double"; /* cancelled right away below */
            t.args = interp_msg_int(1);
        }
        interp_future *f = NULL;
        if (interp_pool_submit_task(s->pool, &t, INTERP_FOREVER, &f) != INTERP_OK) {
            atomic_fetch_add(&s->submit_errors, 1);
            interp_msg_free(t.args);
            continue;
        }
        if (interp_future_on_done(f, count_cb, &s->callbacks[idx]) != INTERP_OK)
            atomic_fetch_add(&s->submit_errors, 1);
        __atomic_store_n(&s->futures[idx], f, __ATOMIC_RELEASE);
        atomic_fetch_add(&s->published, 1);
        atomic_store(&s->progress[h->id], i + 1);
        if (kind >= 91)
            (void)interp_future_cancel(f);
    }
    return NULL;
}

/* Cancels at random among the last 256 futures each host submitted (queued or running ones,
 * mostly); a slot is stored with release once its future is complete; NULL slots are
 * skipped. */
static void *canceller_main(void *arg)
{
    stress *s = arg;
    uint64_t rng = 12345;
    while (!atomic_load(&s->submitting_done)) {
        if (atomic_load(&s->published) == 0) {
            sched_yield();
            continue;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int h = (int)(rng % HOSTS);
        size_t made = atomic_load(&s->progress[h]);
        size_t back = (size_t)((rng >> 8) % 256);
        if (made <= back) {
            sched_yield();
            continue;
        }
        size_t idx = (size_t)h * s->per_thread + made - 1 - back;
        interp_future *f = __atomic_load_n(&s->futures[idx], __ATOMIC_ACQUIRE);
        if (f && interp_future_cancel(f) == INTERP_OK)
            atomic_fetch_add(&s->random_cancels, 1);
        if ((rng & 7) == 0)
            sched_yield(); /* steady cancels, not a lock storm on 2 cores */
    }
    return NULL;
}

static void stress_mixed_tasks_with_random_cancels(void **st)
{
    (void)st;
    stress s = {0};
    s.per_thread = (size_t)util_env("INTERP_STRESS_TASKS", 50000);
    size_t total = HOSTS * s.per_thread;
    s.pool = util_pool(2, NULL);
    s.futures = calloc(total, sizeof *s.futures);
    s.callbacks = calloc(total, sizeof *s.callbacks);
    double t0 = interp__now();
    pthread_t hosts[HOSTS], canceller;
    host_arg args[HOSTS];
    pthread_create(&canceller, NULL, canceller_main, &s);
    for (int i = 0; i < HOSTS; i++) {
        args[i] = (host_arg){.s = &s, .id = i};
        pthread_create(&hosts[i], NULL, host_main, &args[i]);
    }
    for (int i = 0; i < HOSTS; i++)
        pthread_join(hosts[i], NULL);
    atomic_store(&s.submitting_done, true);
    pthread_join(canceller, NULL);
    assert_int_equal(interp_pool_shutdown(s.pool, true, false), INTERP_OK);
    double t1 = interp__now();

    assert_int_equal(atomic_load(&s.submit_errors), 0);
    size_t done = 0, failed = 0, cancelled = 0;
    for (size_t i = 0; i < total; i++) {
        interp_future *f = s.futures[i];
        assert_non_null(f);
        if (!interp_future_done(f))
            fail_msg("future %zu (%s) not done: state %d", i, f->fn.text, atomic_load(&f->state));
        assert_int_equal(atomic_load(&s.callbacks[i]), 1);
        int rc = interp_future_status(f);
        if (rc == INTERP_OK)
            done++;
        else if (rc == INTERP_ERR_CANCELLED)
            cancelled++;
        else if (rc == INTERP_ERR_SCRIPT || rc == INTERP_ERR_TIMEOUT)
            failed++;
        else
            fail_msg("future %zu ended with %s", i, interp_strerror(rc));
        interp_future_release(f);
    }
    interp_pool_stats ps;
    interp_pool_get_stats(s.pool, &ps);
    assert_int_equal(ps.submitted, total);
    assert_int_equal(ps.done, done);
    assert_int_equal(ps.failed, failed);
    assert_int_equal(ps.cancelled, cancelled);
    assert_int_equal(done + failed + cancelled, total);
    printf("stress: %zu tasks (%zu done, %zu failed, %zu cancelled, %zu random cancels) "
           "in %.2f s\n",
           total, done, failed, cancelled, atomic_load(&s.random_cancels), t1 - t0);
    free(s.futures);
    free(s.callbacks);
    interp_pool_destroy(s.pool);
}

static void stress_shutdown_with_every_worker_in_infinite_loop(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_future *loops[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(interp_pool_submit(p, "started_then_spin", NULL, &loops[i]), INTERP_OK);
    util_recv(p, "started");
    util_recv(p, "started");
    enum { QUEUED = 10000 };
    interp_future **q = malloc(QUEUED * sizeof *q);
    for (int i = 0; i < QUEUED; i++)
        assert_int_equal(interp_pool_submit(p, "spin", NULL, &q[i]), INTERP_OK);
    double t0 = interp__now();
    assert_int_equal(interp_pool_shutdown_now(p), INTERP_OK);
    double elapsed = interp__now() - t0;
    printf("shutdown_now with 2 infinite loops and %d queued: %.1f ms\n", QUEUED, elapsed * 1e3);
    /* grace: the stuck grace (1 s default) bounds it even for a loop stuck in C; a Lua loop
     * is interrupted by the hook within the cancel grace */
    assert_true(elapsed < 1.0 + 0.2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(interp_future_status(loops[i]), INTERP_ERR_SHUTDOWN);
        interp_future_release(loops[i]);
    }
    for (int i = 0; i < QUEUED; i++) {
        assert_true(interp_future_cancelled(q[i]));
        interp_future_release(q[i]);
    }
    free(q);
    interp_pool_destroy(p);
}

typedef struct racer {
    interp_pool *pool;
    pthread_barrier_t *start;
    interp_future **accepted;
    size_t n_accepted, cap;
    size_t rejected;
    int bad_rc;
} racer;

static void *racer_main(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->start);
    for (;;) {
        interp_msg *a = interp_msg_int(1);
        interp_future *f;
        int rc = interp_pool_submit(r->pool, "double", a, &f);
        if (rc == INTERP_ERR_SHUTDOWN) {
            interp_msg_free(a);
            r->rejected++;
            break;
        }
        if (rc != INTERP_OK) {
            interp_msg_free(a);
            r->bad_rc = rc;
            break;
        }
        if (r->n_accepted == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 256;
            r->accepted = realloc(r->accepted, r->cap * sizeof *r->accepted);
        }
        r->accepted[r->n_accepted++] = f;
    }
    return NULL;
}

static void stress_submit_races_shutdown(void **st)
{
    (void)st;
    for (int round = 0; round < 4; round++) {
        interp_pool *p = util_pool(2, NULL);
        enum { N = 8 };
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, N + 1);
        racer rs[N] = {0};
        pthread_t th[N];
        for (int i = 0; i < N; i++) {
            rs[i].pool = p;
            rs[i].start = &start;
            pthread_create(&th[i], NULL, racer_main, &rs[i]);
        }
        pthread_barrier_wait(&start);
        /* let the racers get going: wait until the pool has seen some submissions */
        interp_pool_stats s;
        do {
            sched_yield();
            interp_pool_get_stats(p, &s);
        } while (s.submitted < 200);
        interp_pool_shutdown(p, false, round % 2 == 1);
        size_t accepted = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(rs[i].bad_rc, 0);
            assert_int_equal(rs[i].rejected, 1);
            accepted += rs[i].n_accepted;
        }
        interp_pool_shutdown(p, true, false);
        for (int i = 0; i < N; i++) {
            for (size_t k = 0; k < rs[i].n_accepted; k++) {
                interp_future *f = rs[i].accepted[k];
                assert_true(interp_future_done(f));
                int rc = interp_future_status(f);
                assert_true(rc == INTERP_OK || rc == INTERP_ERR_CANCELLED);
                interp_future_release(f);
            }
            free(rs[i].accepted);
        }
        interp_pool_get_stats(p, &s);
        assert_int_equal(s.submitted, accepted);
        assert_int_equal(s.done + s.cancelled, accepted);
        pthread_barrier_destroy(&start);
        interp_pool_destroy(p);
    }
}

static void stress_create_destroy_cycles_leak_nothing(void **st)
{
    (void)st;
    long cycles = util_env("INTERP_STRESS_CYCLES", 10000);
    /* warm up once: the first pool may allocate process-lifetime things (malloc arenas) */
    interp_pool_destroy(util_pool(2, NULL));
    int threads0 = util_count_dir("/proc/self/task");
    int fds0 = util_count_dir("/proc/self/fd");
    double t0 = interp__now();
    for (long i = 0; i < cycles; i++) {
        interp_pool *p = util_pool(2, NULL);
        if (i % 100 == 0) {
            interp_future *f;
            assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(i), &f), INTERP_OK);
            assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_OK);
            interp_future_release(f);
        }
        interp_pool_destroy(p);
    }
    double t1 = interp__now();
    printf("%ld create/destroy cycles: %.2f s\n", cycles, t1 - t0);
    assert_true(util_threads_settled(threads0) <= threads0);
    assert_int_equal(util_count_dir("/proc/self/fd"), fds0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stress_mixed_tasks_with_random_cancels),
        cmocka_unit_test(stress_shutdown_with_every_worker_in_infinite_loop),
        cmocka_unit_test(stress_submit_races_shutdown),
        cmocka_unit_test(stress_create_destroy_cycles_leak_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
