/* test_future.c - futures: wait with timeout, predicates, cancel (pending, running, blocked,
 * finished), callbacks (exactly once, on which thread, re-entrant use of the API), error
 * values, reference counting past the pool, futures_wait all/first/first failure and
 * as_completed. */
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pool_util.h"

static void future_wait_timeout_while_pending(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &f), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_future_wait(f, 0), INTERP_ERR_TIMEOUT);
    assert_int_equal(interp_future_wait(f, 0.01), INTERP_ERR_TIMEOUT);
    const interp_msg *r = (const interp_msg *)1;
    assert_int_equal(interp_future_result(f, 0.01, &r), INTERP_ERR_TIMEOUT);
    assert_null(r);
    assert_false(interp_future_done(f));
    assert_true(interp_future_running(f));
    assert_int_equal(interp_future_status(f), INTERP_ERR_AGAIN);
    assert_null(interp_future_error(f));
    util_send(p, "go", 1);
    assert_int_equal(interp_future_wait(f, INTERP_FOREVER), INTERP_OK);
    assert_true(interp_future_done(f));
    assert_false(interp_future_running(f));
    interp_future_release(f);
    assert_int_equal(interp_future_wait(NULL, 0), INTERP_ERR_INVALID);
    interp_pool_destroy(p);
}

typedef struct cb_rec {
    int calls;
    pthread_t thread;
    interp_future *seen;
    sem_t ran; /* posted after each call: orders the test thread after a worker's callback */
} cb_rec;

static void record_cb(interp_future *f, void *ud)
{
    cb_rec *r = ud;
    r->calls++;
    r->thread = pthread_self();
    r->seen = f;
    sem_post(&r->ran);
}

static void future_cancel_pending_never_runs(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *blocker, *f;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &blocker), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "mark", interp_msg_int(7), &f), INTERP_OK);
    cb_rec rec = {0};
    sem_init(&rec.ran, 0, 0);
    assert_int_equal(interp_future_on_done(f, record_cb, &rec), INTERP_OK);
    assert_false(interp_future_running(f));
    assert_int_equal(interp_future_cancel(f), INTERP_OK);
    /* cancelled at once, callback ran on this thread */
    assert_true(interp_future_done(f));
    assert_true(interp_future_cancelled(f));
    assert_int_equal(rec.calls, 1);
    assert_true(pthread_equal(rec.thread, pthread_self()));
    assert_ptr_equal(rec.seen, f);
    assert_int_equal(interp_future_result(f, 0, NULL), INTERP_ERR_CANCELLED);
    assert_non_null(interp_future_error(f));
    assert_int_equal(interp_future_cancel(f), INTERP_ERR_BUSY);
    util_send(p, "go", 1);
    assert_int_equal(interp_pool_shutdown(p, true, false), INTERP_OK);
    interp_chan *ran;
    interp_pool_channel(p, "ran", 0, &ran);
    assert_int_equal(interp_chan_len(ran), 0);
    interp_chan_release(ran);
    assert_int_equal(rec.calls, 1);
    interp_future_release(f);
    interp_future_release(blocker);
    interp_pool_destroy(p);
}

static void future_cancel_running(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_future *looping, *blocked;
    assert_int_equal(interp_pool_submit(p, "started_then_spin", NULL, &looping), INTERP_OK);
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &blocked), INTERP_OK);
    util_recv(p, "started");
    util_recv(p, "started");
    cb_rec rec = {0};
    sem_init(&rec.ran, 0, 0);
    interp_future_on_done(looping, record_cb, &rec);
    assert_true(interp_future_running(looping));
    assert_int_equal(interp_future_cancel(looping), INTERP_OK);
    assert_int_equal(interp_future_cancel(blocked), INTERP_OK);
    assert_int_equal(interp_future_result(looping, INTERP_FOREVER, NULL), INTERP_ERR_CANCELLED);
    assert_int_equal(interp_future_result(blocked, INTERP_FOREVER, NULL), INTERP_ERR_CANCELLED);
    assert_true(interp_future_cancelled(looping));
    assert_int_equal(interp_future_cancel(looping), INTERP_ERR_BUSY);
    /* the callback ran once, on the worker that ended the task */
    sem_wait(&rec.ran);
    assert_int_equal(rec.calls, 1);
    assert_false(pthread_equal(rec.thread, pthread_self()));
    interp_future_release(looping);
    interp_future_release(blocked);
    /* both workers still serve */
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(3), &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_OK);
    interp_future_release(f);
    interp_pool_destroy(p);
}

static void future_callback_after_completion_runs_at_once(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(3), &f), INTERP_OK);
    assert_int_equal(interp_future_wait(f, INTERP_FOREVER), INTERP_OK);
    cb_rec a = {0}, b = {0};
    sem_init(&a.ran, 0, 0);
    sem_init(&b.ran, 0, 0);
    assert_int_equal(interp_future_on_done(f, record_cb, &a), INTERP_OK);
    assert_int_equal(a.calls, 1);
    assert_true(pthread_equal(a.thread, pthread_self()));
    assert_int_equal(interp_future_on_done(f, record_cb, &b), INTERP_OK);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(interp_future_on_done(f, NULL, NULL), INTERP_ERR_INVALID);
    interp_future_release(f);
    interp_pool_destroy(p);
}

static void future_many_callbacks_each_once(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &f), INTERP_OK);
    util_recv(p, "started");
    cb_rec recs[5] = {0};
    for (int i = 0; i < 5; i++)
        sem_init(&recs[i].ran, 0, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(interp_future_on_done(f, record_cb, &recs[i]), INTERP_OK);
    util_send(p, "go", 1);
    assert_int_equal(interp_future_wait(f, INTERP_FOREVER), INTERP_OK);
    interp_pool_shutdown(p, true, false); /* the callbacks ran before the worker exited */
    for (int i = 0; i < 5; i++)
        assert_int_equal(recs[i].calls, 1);
    interp_future_release(f);
    interp_pool_destroy(p);
}

/* A callback on a worker thread uses the API: submit, result (of a finished future), cancel,
 * shutdown without waiting for itself. */
typedef struct reentrant {
    interp_pool *pool;
    interp_future *child;
    int child_rc;
    int cancel_rc;
    int shutdown_rc;
    interp_future *other;
    sem_t finished; /* waiters wake before callbacks run: the test waits for this instead */
} reentrant;

static void reentrant_cb(interp_future *f, void *ud)
{
    reentrant *r = ud;
    r->child_rc = interp_pool_submit(r->pool, "double", interp_msg_int(5), &r->child);
    const interp_msg *res;
    (void)interp_future_result(f, 0, &res);
    r->cancel_rc = interp_future_cancel(r->other);
    r->shutdown_rc = interp_pool_shutdown(r->pool, true, false);
    sem_post(&r->finished);
}

static void future_callback_may_call_the_api(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *blocker, *other;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &blocker), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &other), INTERP_OK);
    reentrant r = {.pool = p, .other = other};
    sem_init(&r.finished, 0, 0);
    interp_future_on_done(blocker, reentrant_cb, &r);
    util_send(p, "go", 1);
    assert_int_equal(interp_future_wait(blocker, INTERP_FOREVER), INTERP_OK);
    sem_wait(&r.finished);
    sem_destroy(&r.finished);
    interp_pool_shutdown(p, true, false);
    assert_int_equal(r.child_rc, INTERP_OK);
    assert_int_equal(r.cancel_rc, INTERP_OK);
    assert_int_equal(r.shutdown_rc, INTERP_OK);
    assert_true(interp_future_cancelled(other));
    /* the child was queued before shutdown: it ran (drain) */
    const interp_msg *res;
    assert_int_equal(interp_future_result(r.child, INTERP_FOREVER, &res), INTERP_OK);
    assert_int_equal(util_int(res), 10);
    interp_future_release(r.child);
    interp_future_release(other);
    interp_future_release(blocker);
    interp_pool_destroy(p);
}

static void future_error_value(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "boom_table", NULL, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, NULL), INTERP_ERR_SCRIPT);
    const interp_msg *v = interp_future_error_value(f);
    assert_non_null(v);
    char *text;
    assert_int_equal(interp_msg_to_text(v, &text), INTERP_OK);
    assert_non_null(strstr(text, "42"));
    free(text);
    assert_non_null(interp_future_error(f));
    interp_future_release(f);
    interp_pool_destroy(p);
}

static void future_outlives_pool(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(50), &f), INTERP_OK);
    interp_future_retain(f);
    assert_int_equal(interp_future_wait(f, INTERP_FOREVER), INTERP_OK);
    interp_pool_destroy(p);
    interp_future_release(f);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, 0, &r), INTERP_OK);
    assert_int_equal(util_int(r), 100);
    cb_rec rec = {0};
    sem_init(&rec.ran, 0, 0);
    assert_int_equal(interp_future_on_done(f, record_cb, &rec), INTERP_OK);
    assert_int_equal(rec.calls, 1);
    interp_future_release(f);
    interp_future_release(NULL);
}

/* fs[0] and fs[2] run and wait for "go" (one per worker of a 2-worker pool); fs[1] has ended
 * between them. */
static void blocked_done_blocked(interp_pool *p, interp_future *fs[3])
{
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &fs[0]), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &fs[1]), INTERP_OK);
    assert_int_equal(interp_future_wait(fs[1], INTERP_FOREVER), INTERP_OK);
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &fs[2]), INTERP_OK);
    util_recv(p, "started");
}

static void futures_wait_all_and_first(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_future *fs[3];
    blocked_done_blocked(p, fs);
    size_t done = 99;
    assert_int_equal(interp_futures_wait(fs, 3, INTERP_WAIT_FIRST, INTERP_FOREVER, &done),
                     INTERP_OK);
    assert_int_equal(done, 1);
    assert_int_equal(interp_futures_wait(fs, 3, INTERP_WAIT_ALL, 0.02, &done), INTERP_ERR_TIMEOUT);
    assert_int_equal(done, 1);
    assert_int_equal(interp_futures_wait(fs, 3, INTERP_WAIT_ALL, 0, &done), INTERP_ERR_TIMEOUT);
    interp_future *pending[2] = {fs[0], fs[2]};
    assert_int_equal(interp_futures_wait(pending, 2, INTERP_WAIT_FIRST, 0.01, &done),
                     INTERP_ERR_TIMEOUT);
    assert_int_equal(done, 0);
    util_send(p, "go", 1);
    assert_int_equal(interp_futures_wait(pending, 2, INTERP_WAIT_FIRST, INTERP_FOREVER, &done),
                     INTERP_OK);
    assert_true(done >= 1);
    util_send(p, "go", 1);
    assert_int_equal(interp_futures_wait(fs, 3, INTERP_WAIT_ALL, INTERP_FOREVER, &done), INTERP_OK);
    assert_int_equal(done, 3);
    assert_int_equal(interp_futures_wait(fs, 3, 7, 0, &done), INTERP_ERR_INVALID);
    assert_int_equal(interp_futures_wait(NULL, 0, INTERP_WAIT_ALL, 0, &done), INTERP_OK);
    for (int i = 0; i < 3; i++)
        interp_future_release(fs[i]);
    interp_pool_destroy(p);
}

/* submitf / resultf: one call each, arguments and results through format letters. */
static void future_submitf_and_resultf(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_future *f;
    assert_int_equal(interp_pool_submitf(p, &f, "add", "i, i", 2, 3), INTERP_OK);
    int n = 0;
    assert_int_equal(interp_future_resultf(f, INTERP_FOREVER, "i", &n), INTERP_OK);
    assert_int_equal(n, 5);
    interp_future_release(f);

    assert_int_equal(interp_pool_submitf(p, &f, "many", ""), INTERP_OK);
    long long one = 0, three = 0;
    const char *two = NULL;
    size_t len = 0;
    double d = -1;
    /* the results do not match: DECODE, nothing written */
    assert_int_equal(interp_future_resultf(f, INTERP_FOREVER, "d", &d), INTERP_ERR_DECODE);
    assert_true(d == -1);
    assert_int_equal(interp_future_resultf(f, 0, "L, s, [L]", &one, &two, &len, &three), INTERP_OK);
    assert_true(one == 1 && three == 3 && len == 3 && memcmp(two, "two", 3) == 0);
    interp_future_release(f);

    /* a failed task: its status */
    assert_int_equal(interp_pool_submitf(p, &f, "boom", "s", "no"), INTERP_OK);
    assert_int_equal(interp_future_resultf(f, INTERP_FOREVER, "*"), INTERP_ERR_SCRIPT);
    interp_future_release(f);
    /* the wait times out */
    assert_int_equal(interp_pool_submitf(p, &f, "started_then_wait", ""), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_future_resultf(f, 0.01, "*"), INTERP_ERR_TIMEOUT);
    util_send(p, "go", 1);
    assert_int_equal(interp_future_resultf(f, INTERP_FOREVER, "b", &(bool){false}), INTERP_OK);
    interp_future_release(f);

    /* a bad format submits nothing */
    interp_pool_stats s0, s1;
    assert_int_equal(interp_pool_get_stats(p, &s0), INTERP_OK);
    f = (interp_future *)1;
    assert_int_equal(interp_pool_submitf(p, &f, "add", "i, q", 1), INTERP_ERR_INVALID);
    assert_null(f);
    assert_int_equal(interp_pool_get_stats(p, &s1), INTERP_OK);
    assert_int_equal(s1.submitted, s0.submitted);
    assert_int_equal(interp_pool_submitf(NULL, &f, "add", ""), INTERP_ERR_INVALID);
    assert_int_equal(interp_future_resultf(NULL, 0, ""), INTERP_ERR_INVALID);
    interp_pool_destroy(p);
}

/* FIRST_FAILURE: returns once one failed (a cancellation is not a failure), or else all ended. */
static void futures_wait_first_failure(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_future *f[4];
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &f[0]), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(1), &f[1]), INTERP_OK);
    assert_int_equal(interp_future_wait(f[1], INTERP_FOREVER), INTERP_OK);
    size_t done = 99;
    /* one succeeded, one runs on: nothing to return for */
    assert_int_equal(interp_futures_wait(f, 2, INTERP_WAIT_FIRST_FAILURE, 0.02, &done),
                     INTERP_ERR_TIMEOUT);
    assert_int_equal(done, 1);
    assert_int_equal(interp_pool_submit(p, "boom", NULL, &f[2]), INTERP_OK);
    assert_int_equal(interp_futures_wait(f, 3, INTERP_WAIT_FIRST_FAILURE, INTERP_FOREVER, &done),
                     INTERP_OK);
    assert_int_equal(done, 2);
    assert_false(interp_future_done(f[0]));
    assert_int_equal(interp_future_status(f[2]), INTERP_ERR_SCRIPT);

    assert_int_equal(interp_future_cancel(f[0]), INTERP_OK);
    assert_int_equal(interp_future_wait(f[0], INTERP_FOREVER), INTERP_OK);
    assert_true(interp_future_cancelled(f[0]));
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &f[3]), INTERP_OK);
    util_recv(p, "started");
    interp_future *g[2] = {f[0], f[3]};
    assert_int_equal(interp_futures_wait(g, 2, INTERP_WAIT_FIRST_FAILURE, 0.02, &done),
                     INTERP_ERR_TIMEOUT);
    assert_int_equal(done, 1);
    util_send(p, "go", 1);
    assert_int_equal(interp_futures_wait(g, 2, INTERP_WAIT_FIRST_FAILURE, INTERP_FOREVER, &done),
                     INTERP_OK);
    assert_int_equal(done, 2);
    for (int i = 0; i < 4; i++)
        interp_future_release(f[i]);
    interp_pool_destroy(p);
}

/* Many futures (more than the on-stack node array) in one wait. */
static void futures_wait_many(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    enum { N = 100 };
    interp_future *fs[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(interp_pool_submit(p, "double", interp_msg_int(i), &fs[i]), INTERP_OK);
    size_t done;
    assert_int_equal(interp_futures_wait(fs, N, INTERP_WAIT_ALL, INTERP_FOREVER, &done), INTERP_OK);
    assert_int_equal(done, N);
    for (int i = 0; i < N; i++)
        interp_future_release(fs[i]);
    interp_pool_destroy(p);
}

static void as_completed_yields_in_completion_order(void **st)
{
    (void)st;
    interp_pool *p = util_pool(2, NULL);
    interp_future *fs[3];
    blocked_done_blocked(p, fs);
    interp_as_completed *it;
    assert_int_equal(interp_as_completed_new(fs, 3, &it), INTERP_OK);
    interp_future *f;
    assert_int_equal(interp_as_completed_next(it, INTERP_FOREVER, &f), INTERP_OK);
    assert_ptr_equal(f, fs[1]);
    assert_int_equal(interp_as_completed_next(it, 0, &f), INTERP_ERR_TIMEOUT);
    assert_int_equal(interp_as_completed_next(it, 0.01, &f), INTERP_ERR_TIMEOUT);
    assert_int_equal(interp_future_cancel(fs[2]), INTERP_OK);
    assert_int_equal(interp_as_completed_next(it, INTERP_FOREVER, &f), INTERP_OK);
    assert_ptr_equal(f, fs[2]);
    util_send(p, "go", 1);
    assert_int_equal(interp_as_completed_next(it, INTERP_FOREVER, &f), INTERP_OK);
    assert_ptr_equal(f, fs[0]);
    assert_int_equal(interp_as_completed_next(it, INTERP_FOREVER, &f), INTERP_ERR_CLOSED);
    interp_as_completed_free(it);
    interp_as_completed_free(NULL);
    /* freeing an iterator before the futures end unhooks it */
    interp_future *g;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &g), INTERP_OK);
    util_recv(p, "started");
    assert_int_equal(interp_as_completed_new(&g, 1, &it), INTERP_OK);
    interp_as_completed_free(it);
    util_send(p, "go", 1);
    assert_int_equal(interp_future_wait(g, INTERP_FOREVER), INTERP_OK);
    interp_future_release(g);
    for (int i = 0; i < 3; i++)
        interp_future_release(fs[i]);
    interp_pool_destroy(p);
}

/* Several host threads wait on one future at once; all wake when it ends. */
typedef struct waiter_arg {
    interp_future *f;
    int rc;
} waiter_arg;

static void *waiter(void *arg)
{
    waiter_arg *w = arg;
    w->rc = interp_future_result(w->f, INTERP_FOREVER, NULL);
    return NULL;
}

static void future_many_waiters(void **st)
{
    (void)st;
    interp_pool *p = util_pool(1, NULL);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "started_then_wait", NULL, &f), INTERP_OK);
    util_recv(p, "started");
    pthread_t th[4];
    waiter_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (waiter_arg){.f = f, .rc = 99};
        pthread_create(&th[i], NULL, waiter, &args[i]);
    }
    util_send(p, "go", 1);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].rc, INTERP_OK);
    }
    interp_future_release(f);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(future_wait_timeout_while_pending),
        cmocka_unit_test(future_cancel_pending_never_runs),
        cmocka_unit_test(future_cancel_running),
        cmocka_unit_test(future_callback_after_completion_runs_at_once),
        cmocka_unit_test(future_many_callbacks_each_once),
        cmocka_unit_test(future_callback_may_call_the_api),
        cmocka_unit_test(future_error_value),
        cmocka_unit_test(future_outlives_pool),
        cmocka_unit_test(futures_wait_all_and_first),
        cmocka_unit_test(futures_wait_first_failure),
        cmocka_unit_test(future_submitf_and_resultf),
        cmocka_unit_test(futures_wait_many),
        cmocka_unit_test(as_completed_yields_in_completion_order),
        cmocka_unit_test(future_many_waiters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
