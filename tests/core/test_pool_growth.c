/* test_pool_growth.c - workers start on demand: create starts one (it validates the
 * initializer), a task that finds no idle worker starts another, never more than `workers`;
 * prestart starts them all; a new worker whose state cannot be made breaks the pool. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>
#include <time.h>

#include <cmocka.h>

#include "core_impl.h"
#include "pool_util.h"

static interp_pool_stats stats(interp_pool *p)
{
    interp_pool_stats s;
    assert_int_equal(interp_pool_get_stats(p, &s), INTERP_OK);
    return s;
}

static void pool_starts_one_worker_then_grows_on_demand(void **st)
{
    (void)st;
    interp_pool *p = util_pool(3, NULL);
    interp_pool_stats s = stats(p);
    assert_int_equal(s.workers, 1);
    assert_int_equal(s.max_workers, 3);
    size_t use = 0;
    assert_int_equal(interp_pool_worker_memory(p, 1, &use, NULL), INTERP_ERR_NOTFOUND);

    /* Every task blocks until "go": each one that finds no idle worker starts one. */
    enum { N = 5 };
    interp_future *f[N];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &f[i]), INTERP_OK);
        util_recv(p, "started");
        assert_int_equal(stats(p).workers, i + 1);
    }
    assert_int_equal(interp_pool_worker_memory(p, 2, &use, NULL), INTERP_OK);
    assert_true(use > 0);
    /* All three are busy: more tasks queue, no fourth worker starts. */
    for (int i = 3; i < N; i++)
        assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &f[i]), INTERP_OK);
    s = stats(p);
    assert_int_equal(s.workers, 3);
    assert_int_equal(s.queued, 2);
    util_send(p, "go", N);
    for (int i = 0; i < N; i++) {
        const interp_msg *r = NULL;
        assert_int_equal(interp_future_result(f[i], INTERP_FOREVER, &r), INTERP_OK);
        interp_future_release(f[i]);
    }
    assert_int_equal(stats(p).workers, 3);
    interp_pool_destroy(p);
}

/* Wait until n workers wait in the queue for a job (spinning or asleep). */
static void wait_for_idle_workers(interp_pool *p, int n)
{
    for (;;) {
        interp__mutex_lock(&p->q.mu);
        int idle = p->q.n_spin + p->q.n_sleep;
        interp__mutex_unlock(&p->q.mu);
        if (idle >= n)
            return;
        sched_yield();
    }
}

/* An idle worker takes the next task: tasks one after another, each submitted once the worker
 * is back in the queue, never start a second worker. */
static void pool_reuses_an_idle_worker(void **st)
{
    (void)st;
    interp_pool *p = util_pool(4, NULL);
    for (int i = 0; i < 5; i++) {
        wait_for_idle_workers(p, 1);
        interp_future *f;
        assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(i), &f), INTERP_OK);
        const interp_msg *r = NULL;
        assert_int_equal(interp_future_result(f, INTERP_FOREVER, &r), INTERP_OK);
        assert_int_equal(util_int(r), 2 * i);
        interp_future_release(f);
    }
    assert_int_equal(stats(p).workers, 1);
    interp_pool_destroy(p);
}

/* Releases the map's items once both have started (or after 10 s, saying so). */
static void *release_when_both_started(void *arg)
{
    interp_pool *p = arg;
    interp_chan *ch;
    bool *both = malloc(sizeof *both);
    *both = interp_pool_channel(p, "started", 0, &ch) == INTERP_OK;
    for (int i = 0; i < 2 && *both; i++) {
        interp_msg *m = NULL;
        *both = interp_chan_recv(ch, 10.0, &m) == INTERP_OK;
        interp_msg_free(m);
    }
    interp_chan_release(ch);
    util_send(p, "go", 2);
    return both;
}

/* map queues its chunks at once: each that finds no idle worker starts one. Both items block
 * until both run, which only two workers can do. */
static void pool_map_starts_the_workers(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    pthread_t helper;
    assert_int_equal(pthread_create(&helper, NULL, release_when_both_started, p), 0);
    const interp_msg *in[2] = {NULL, NULL}; /* no arguments */
    interp_msg *out[2];
    interp_map_options mo = {.chunksize = 1};
    assert_int_equal(interp_pool_map(p, "started_then_wait", 2, in, out, &mo), INTERP_OK);
    void *both = NULL;
    pthread_join(helper, &both);
    assert_true(*(bool *)both);
    free(both);
    for (int i = 0; i < 2; i++)
        interp_msg_free(out[i]);
    assert_int_equal(stats(p).workers, 2);
    interp_pool_destroy(p);
}

static void prestart(interp_pool_options *o) { o->prestart = true; }

static void pool_prestart_starts_every_worker(void **st)
{
    (void)st;
    interp_pool *p = util_pool(3, prestart);
    interp_pool_stats s = stats(p);
    assert_int_equal(s.workers, 3);
    for (int i = 0; i < 3; i++) {
        size_t use = 0;
        assert_int_equal(interp_pool_worker_memory(p, i, &use, NULL), INTERP_OK);
        assert_true(use > 0);
    }
    interp_pool_destroy(p);
}

/* How many of this process's threads are named `name` (/proc/self/task/<tid>/comm). */
static int count_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f && fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = '\0';
        if (f)
            fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

/* count_named once it reads `want`, or after 10 s: a worker names itself when it starts
 * running, which may be after create has returned, and a joined thread of an earlier pool
 * with the same name may still be listed for a moment (the kernel wakes the joiner before it
 * removes the task). */
static int threads_named(const char *name, int want)
{
    int n = count_named(name);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (n != want) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 10)
            break;
        sched_yield();
        n = count_named(name);
    }
    return n;
}

static void render_names(interp_pool_options *o)
{
    o->prestart = true;
    o->thread_name = "render-pool-long"; /* cut to 9 bytes */
    o->task_timeout = 60;                /* starts the watchdog thread */
}

/* Worker threads are named "<prefix>-<worker>", the watchdog "<prefix>-wd" (top -H, gdb). */
static void pool_threads_are_named(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, render_names);
    assert_int_equal(threads_named("render-po-0", 1), 1);
    assert_int_equal(threads_named("render-po-1", 1), 1);
    assert_int_equal(threads_named("render-po-wd", 1), 1);
    interp_pool_destroy(p);
    p = util_pool(1, NULL);
    assert_int_equal(threads_named("interp-0", 1), 1);
    interp_pool_destroy(p);
}

/* create makes the first state itself while the prestarted workers open theirs and wait for
 * the compiled initializer: a syntax error or a failing initializer fails create with its
 * text, and every started thread is joined. */
static void pool_prestart_initializer_errors(void **st)
{
    (void)st;
    int threads_before = util_count_dir("/proc/self/task");
    const char *bad[] = {"x = = 1", "error('init says no')"};
    const char *want[] = {"unexpected symbol", "init says no"};
    for (int i = 0; i < 2; i++) {
        interp_pool_options o = interp_pool_defaults();
        o.workers = 3;
        o.prestart = true;
        o.init_source = bad[i];
        interp_pool *p = (interp_pool *)1;
        char *err = NULL;
        assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_SCRIPT);
        assert_null(p);
        assert_non_null(err);
        assert_non_null(strstr(err, want[i]));
        free(err);
    }
    assert_true(util_threads_settled(threads_before) <= threads_before);
}

/* The initializer runs in the first state, then refuses in every later one: the task that
 * needed a second worker fails with the initializer's error, the pool is broken, the running
 * task still ends well. */
static void pool_broken_when_a_new_worker_cannot_start(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2;
    o.init_source = UTIL_INIT_ONCE;
    interp_pool *p;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    interp_future *first, *second;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &first), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &second), INTERP_OK);
    assert_int_equal(interp_future_result(second, INTERP_FOREVER, NULL), INTERP_ERR_BROKEN);
    const char *why = interp_future_error(second);
    assert_non_null(why);
    assert_non_null(strstr(why, "a new worker could not create its state"));
    assert_non_null(strstr(why, "second initializer refused"));
    util_send(p, "go", 1);
    assert_int_equal(interp_future_result(first, INTERP_FOREVER, NULL), INTERP_OK);
    interp_msg *a = interp_msg_int(3);
    interp_future *late = NULL;
    assert_int_equal(interp_pool_submit(p, "double", a, &late), INTERP_ERR_BROKEN);
    interp_msg_free(a);
    interp_future_release(first);
    interp_future_release(second);
    interp_pool_destroy(p);
}

/* Shutdown right behind a burst of submits that start workers: every task ends, every started
 * thread is joined (the thread count comes back). */
static void pool_shutdown_while_workers_start(void **st)
{
    (void)st;
    int threads_before = util_count_dir("/proc/self/task");
    for (int round = 0; round < 50; round++) {
        interp_pool *p = util_pool(4, NULL);
        interp_future *f[8];
        for (int i = 0; i < 8; i++)
            assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(i), &f[i]), INTERP_OK);
        assert_int_equal(interp_pool_shutdown(p, true, false), INTERP_OK);
        for (int i = 0; i < 8; i++) {
            const interp_msg *r = NULL;
            assert_int_equal(interp_future_result(f[i], 0, &r), INTERP_OK);
            assert_int_equal(util_int(r), 2 * i);
            interp_future_release(f[i]);
        }
        assert_int_equal(stats(p).workers, 0);
        interp_pool_destroy(p);
    }
    assert_true(util_threads_settled(threads_before) <= threads_before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_starts_one_worker_then_grows_on_demand),
        cmocka_unit_test(pool_reuses_an_idle_worker),
        cmocka_unit_test(pool_map_starts_the_workers),
        cmocka_unit_test(pool_prestart_starts_every_worker),
        cmocka_unit_test(pool_prestart_initializer_errors),
        cmocka_unit_test(pool_threads_are_named),
        cmocka_unit_test(pool_broken_when_a_new_worker_cannot_start),
        cmocka_unit_test(pool_shutdown_while_workers_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
