/* test_queue.c - the pool's task queue (core/queue.c): whom a push wakes. The worker counts
 * are set by hand (no thread sleeps or spins), so every outcome is decided by the counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core_impl.h"

typedef struct fixture {
    interp__start start;
    interp__queue q;
} fixture;

static void setup_queue(fixture *fx, unsigned short spinning_here)
{
    interp__start_init(&fx->start, 1); /* no slot left to grow into: push never starts one */
    interp__queue_init(&fx->q, 0, &fx->start);
    fx->q.n_sleep = 1; /* one worker asleep, one spinning */
    fx->q.n_spin = 1;
    for (int c = 0; c < INTERP__QUEUE_CPUS; c++) /* "here" whatever CPU the push runs on */
        fx->q.spin_at[c] = spinning_here;
}

static void teardown_queue(fixture *fx)
{
    interp__queue_destroy(&fx->q);
    interp__start_destroy(&fx->start);
}

static int push_wakes(fixture *fx)
{
    interp__job job;
    memset(&job, 0, sizeof job);
    bool grow = true;
    fx->q.n_wake = 0;
    assert_int_equal(interp__queue_push(&fx->q, &job, 0, false, &grow), INTERP_OK);
    assert_false(grow);
    assert_ptr_equal(interp__queue_try_pop(&fx->q), &job);
    return fx->q.n_wake;
}

/* A worker spinning elsewhere takes the job: nobody is woken. */
static void queue_spinner_elsewhere_takes_the_job(void **state)
{
    (void)state;
    fixture fx;
    setup_queue(&fx, 0);
    assert_int_equal(push_wakes(&fx), 0);
    teardown_queue(&fx);
}

/* Only a worker on the pusher's CPU spins: the sleeper is woken, but not again at once. */
static void queue_spinner_here_wakes_a_sleeper_now_and_then(void **state)
{
    (void)state;
#ifdef __linux__
    fixture fx;
    setup_queue(&fx, 1);
    assert_int_equal(push_wakes(&fx), 1);
    assert_true(fx.q.escape_at > 0);
    fx.q.escape_at = UINT64_MAX; /* within the interval, whatever the machine's speed */
    assert_int_equal(push_wakes(&fx), 0);
    fx.q.escape_at = 0;
    assert_int_equal(push_wakes(&fx), 1);
    teardown_queue(&fx);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queue_spinner_elsewhere_takes_the_job),
        cmocka_unit_test(queue_spinner_here_wakes_a_sleeper_now_and_then),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
