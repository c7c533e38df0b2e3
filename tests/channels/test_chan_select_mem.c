/* test_chan_select_mem.c - what a waiting interp.select makes the host hold in C (its nodes,
 * a parked registration: 2-3x its list) is charged to the selecting state's memory limit
 * (channels/chan_lua.c, charge_wait): a list that fits in the heap but whose wait would not
 * gets "select: not enough memory", a blocked select (a pool task) and a parked one (a
 * context's call) alike; a select that fits waits as before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctx_util.h"

#define LIMIT ((size_t)8 << 20)

/* 200000 places of one channel: 4 MiB of list and 1.6 MiB of borrowed pointers in the heap,
 * about 13 MiB in C while it waits. */
static const char *const BIG = "local ch = interp.channel('q') local l = {} "
                               "for i = 1, 200000 do l[i] = ch end "
                               "return interp.select(l, 0.5)";
/* 2000 places: under 200 KiB in C. */
static const char *const SMALL = "local ch = interp.channel('q') local l = {} "
                                 "for i = 1, 2000 do l[i] = ch end "
                                 "local v, e = interp.select(l, 0.05) "
                                 "assert(v == nil and e == 'timeout', tostring(e)) return 1";

static void sandboxed(interp_pool_options *o)
{
    o->sandbox = INTERP_SANDBOX_SAFE;
    o->memory_limit = LIMIT;
    o->task_timeout = 60.0;
}

static void blocked_select_is_charged(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, sandboxed);
    char why[512];
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = BIG}};
    interp_future *f;
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    int rc = util_outcome(f, why, sizeof why);
    printf("blocked select of 200000: %s\n", why);
    assert_int_not_equal(rc, INTERP_OK);
    assert_non_null(strstr(why, "select: not enough memory"));
    /* a select that finds a message at once waits for nothing: nothing to charge */
    t.fn.text = "local ch = interp.channel('q') ch:send(5) local l = {} "
                "for i = 1, 200000 do l[i] = ch end "
                "local c, v = interp.select(l, 0.5) assert(c == ch and v == 5) return 1";
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
    assert_int_equal(util_outcome(f, why, sizeof why), INTERP_OK);
    t.fn.text = SMALL;
    for (int i = 0; i < 3; i++) { /* refunded: it fits again and again */
        assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &f), INTERP_OK);
        assert_int_equal(util_outcome(f, why, sizeof why), INTERP_OK);
    }
    interp_pool_destroy(p);
}

static void parked_select_is_charged(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, sandboxed);
    interp_chan *q;
    assert_int_equal(interp_pool_channel(p, "q", 4, &q), INTERP_OK);
    interp_ctx *c = ctx_new(p, "plugin", INTERP_SANDBOX_SAFE, "x = 0");
    assert_int_equal(interp_ctx_grant_channel(c, "q", q), INTERP_OK);
    char why[512];
    interp_future *f;
    assert_int_equal(interp_ctx_exec(c, BIG, strlen(BIG), &f), INTERP_OK);
    int rc = util_outcome(f, why, sizeof why);
    printf("parked select of 200000: %s\n", why);
    assert_int_not_equal(rc, INTERP_OK);
    assert_non_null(strstr(why, "select: not enough memory"));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(interp_ctx_exec(c, SMALL, strlen(SMALL), &f), INTERP_OK);
        rc = util_outcome(f, why, sizeof why);
        if (rc != INTERP_OK)
            printf("small select: %s\n", why);
        assert_int_equal(rc, INTERP_OK);
    }
    interp_ctx_close(c);
    interp_chan_release(q);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blocked_select_is_charged),
        cmocka_unit_test(parked_select_is_charged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
