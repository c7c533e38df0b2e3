/* test_sync.c - checked pthread wrappers, monotonic deadlines, cancellation token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <semaphore.h>

#include "interp_status.h"
#include "sync.h"

static void sync_deadline_in_future_not_passed(void **state)
{
    (void)state;
    struct timespec dl = interp__deadline_in(3600);
    assert_false(interp__deadline_passed(&dl));
    struct timespec now = interp__deadline_in(0);
    assert_true(interp__deadline_passed(&now));
    assert_true(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000L);
}

static void sync_timed_wait_reports_timeout(void **state)
{
    (void)state;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    interp__mutex_init(&mu);
    interp__cond_init(&cv);
    struct timespec dl = interp__deadline_in(0.01);
    interp__mutex_lock(&mu);
    bool in_time = true;
    while (in_time)
        in_time = interp__cond_wait_until(&cv, &mu, &dl);
    interp__mutex_unlock(&mu);
    assert_true(interp__deadline_passed(&dl));
    interp__cond_destroy(&cv);
    interp__mutex_destroy(&mu);
}

typedef struct waiter {
    interp__cancel tok;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sem_t armed;
    int seen;
} waiter;

/* Blocks with no deadline until the token fires: only a working fire can end it. */
static void *wait_for_cancel(void *arg)
{
    waiter *w = arg;
    interp__cancel_arm(&w->tok, &w->mu, &w->cv);
    sem_post(&w->armed);
    interp__mutex_lock(&w->mu);
    while (!interp__cancel_reason(&w->tok))
        interp__cond_wait_until(&w->cv, &w->mu, NULL);
    interp__mutex_unlock(&w->mu);
    interp__cancel_disarm(&w->tok);
    w->seen = interp__cancel_reason(&w->tok);
    return NULL;
}

static void sync_cancel_fire_wakes_armed_waiter(void **state)
{
    (void)state;
    for (int round = 0; round < 200; round++) {
        waiter w = {.seen = 0};
        interp__cancel_init(&w.tok);
        interp__mutex_init(&w.mu);
        interp__cond_init(&w.cv);
        sem_init(&w.armed, 0, 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, wait_for_cancel, &w), 0);
        if (round % 2)
            sem_wait(&w.armed); /* half the rounds fire before the waiter has armed */
        interp__cancel_fire(&w.tok, INTERP_ERR_TIMEOUT);
        pthread_join(t, NULL);
        if (!(round % 2))
            sem_wait(&w.armed);
        assert_int_equal(w.seen, INTERP_ERR_TIMEOUT);
        sem_destroy(&w.armed);
        interp__cond_destroy(&w.cv);
        interp__mutex_destroy(&w.mu);
        interp__cancel_destroy(&w.tok);
    }
}

static void sync_cancel_first_reason_wins_and_reset_clears(void **state)
{
    (void)state;
    interp__cancel tok;
    interp__cancel_init(&tok);
    assert_int_equal(interp__cancel_reason(&tok), 0);
    interp__cancel_fire(&tok, INTERP_ERR_CANCELLED);
    interp__cancel_fire(&tok, INTERP_ERR_SHUTDOWN);
    assert_int_equal(interp__cancel_reason(&tok), INTERP_ERR_CANCELLED);
    interp__cancel_reset(&tok);
    assert_int_equal(interp__cancel_reason(&tok), 0);
    interp__cancel_fire(&tok, INTERP_ERR_SHUTDOWN);
    assert_int_equal(interp__cancel_reason(&tok), INTERP_ERR_SHUTDOWN);
    interp__cancel_destroy(&tok);
}

static void sync_strerror_names_every_code(void **state)
{
    (void)state;
    for (int code = INTERP_OK; code >= INTERP_ERR_BUSY; code--)
        assert_string_not_equal(interp_strerror(code), "unknown status");
    assert_string_equal(interp_strerror(12345), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sync_deadline_in_future_not_passed),
        cmocka_unit_test(sync_timed_wait_reports_timeout),
        cmocka_unit_test(sync_cancel_fire_wakes_armed_waiter),
        cmocka_unit_test(sync_cancel_first_reason_wins_and_reset_clears),
        cmocka_unit_test(sync_strerror_names_every_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
