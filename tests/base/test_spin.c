/* test_spin.c - the spin before a blocking wait (base/spin.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spin.h"

static bool never_ready(void *arg)
{
    (*(int *)arg)++;
    return false;
}

static bool ready_at_once(void *arg)
{
    (*(int *)arg)++;
    return true;
}

/* With no time budget, a spin looks at its condition once per pause and once more when it
 * first reads the clock; a spin told to yield first reads the clock at once. */
static void spin_yield_first_skips_the_pauses_once(void **state)
{
    (void)state;
    int plain = 0, first = 0, after = 0;
    assert_false(interp__spin(never_ready, &plain, 0));
    interp__spin_yield_first();
    assert_false(interp__spin(never_ready, &first, 0));
    assert_false(interp__spin(never_ready, &after, 0));
    assert_int_equal(first, 1);
    assert_true(plain > 1);
    assert_int_equal(after, plain); /* used by one spin only */
}

static void spin_pause_long_pauses_longer_once(void **state)
{
    (void)state;
    int plain = 0, longer = 0, after = 0, first = 0;
    /* a budget of 1 ns: spent once the clock is first read, after the pauses */
    assert_false(interp__spin_until(never_ready, &plain, 1000000, 1));
    interp__spin_pause_long();
    assert_false(interp__spin_until(never_ready, &longer, 1000000, 1));
    assert_false(interp__spin_until(never_ready, &after, 1000000, 1));
    assert_true(longer > plain);
    assert_int_equal(after, plain);
    interp__spin_pause_long();
    interp__spin_yield_first(); /* the CPU is shared: no pause at all */
    assert_false(interp__spin(never_ready, &first, 0));
    assert_int_equal(first, 1);
}

static void spin_yield_first_is_used_by_a_spin_that_succeeds(void **state)
{
    (void)state;
    int calls = 0, plain = 0;
    interp__spin_yield_first();
    assert_true(interp__spin(ready_at_once, &calls, 1000000));
    assert_int_equal(calls, 1);
    assert_false(interp__spin(never_ready, &plain, 0));
    assert_true(plain > 1);
}

static void spin_cpu_now_names_a_cpu(void **state)
{
    (void)state;
#ifdef __linux__
    assert_true(interp__cpu_now() >= 0);
#else
    assert_true(interp__cpu_now() >= -1);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spin_yield_first_skips_the_pauses_once),
        cmocka_unit_test(spin_pause_long_pauses_longer_once),
        cmocka_unit_test(spin_yield_first_is_used_by_a_spin_that_succeeds),
        cmocka_unit_test(spin_cpu_now_names_a_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
