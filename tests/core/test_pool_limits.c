/* test_pool_limits.c - bounds that keep untrusted tasks from spending host memory: the default
 * message size limit of a sandboxed pool, and the number of named channels; the option bounds
 * and their texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "interp_pool.h"

static const char *INIT =
    "function big(n) local s = ('x'):rep(n) return {s, s, s, s, s, s, s, s} end\n"
    "function chans(n) for i = 1, n do interp.channel('c' .. i) end return n end\n";

static interp_pool *make(interp_sandbox sb, size_t memory_limit, size_t max_msg_size)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.init_source = INIT;
    o.sandbox = sb;
    o.memory_limit = memory_limit;
    o.max_msg_size = max_msg_size;
    interp_pool *p = NULL;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    return p;
}

static int run(interp_pool *p, const char *fn, int64_t arg, char **err)
{
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, fn, interp_msg_int(arg), &f), INTERP_OK);
    int rc = interp_future_result(f, INTERP_FOREVER, NULL);
    const char *e = interp_future_error(f);
    *err = e ? strdup(e) : NULL;
    interp_future_release(f);
    return rc;
}

/* A 1 MiB string repeated 8 times is an 8 MiB result: within the 4 MiB memory limit of the
 * state (the string is shared there), beyond it as bytes. The sandbox's default message limit
 * is the memory limit; an explicit max_msg_size or the full profile allow it. */
static void pool_sandbox_messages_default_to_the_memory_limit(void **st)
{
    (void)st;
    char *err = NULL;
    interp_pool *p = make(INTERP_SANDBOX_SAFE, 4u << 20, 0);
    assert_int_equal(run(p, "big", 1 << 20, &err), INTERP_ERR_ENCODE);
    assert_non_null(err);
    assert_non_null(strstr(err, "cannot copy the results"));
    free(err);
    assert_int_equal(run(p, "big", 1 << 10, &err), INTERP_OK); /* small results still pass */
    free(err);
    interp_pool_destroy(p);

    p = make(INTERP_SANDBOX_SAFE, 4u << 20, 64u << 20);
    assert_int_equal(run(p, "big", 1 << 20, &err), INTERP_OK);
    free(err);
    interp_pool_destroy(p);

    p = make(INTERP_SANDBOX_NONE, 4u << 20, 0);
    assert_int_equal(run(p, "big", 1 << 20, &err), INTERP_OK);
    free(err);
    interp_pool_destroy(p);
}

/* A task inventing channel names without end is stopped at the pool's bound, with an error
 * the task sees; the channels made before stay usable. */
static void pool_named_channels_are_bounded(void **st)
{
    (void)st;
    char *err = NULL;
    interp_pool *p = make(INTERP_SANDBOX_SAFE, 0, 0);
    assert_int_equal(run(p, "chans", 100, &err), INTERP_OK);
    free(err);
    assert_int_equal(run(p, "chans", 100000, &err), INTERP_ERR_SCRIPT);
    assert_non_null(err);
    free(err);
    interp_chan *ch = NULL;
    assert_int_equal(interp_pool_channel(p, "c1", 0, &ch), INTERP_OK);
    interp_chan_release(ch);
    assert_int_equal(interp_pool_channel(p, "one-too-many", 0, &ch), INTERP_ERR_LIMIT);
    assert_null(ch);
    interp_pool_destroy(p);
}

/* The bounds of workers, map sizes and channels, with the texts the front ends show. */
static void option_bounds_say_why(void **state)
{
    (void)state;
    interp_pool_options o = interp_pool_defaults();
    interp_pool *p = NULL;
    char *err = NULL;
    const int bad[] = {-1, INTERP_POOL_MAX_WORKERS + 1};
    for (size_t i = 0; i < 2; i++) {
        o.workers = bad[i];
        assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_INVALID);
        assert_string_equal(err, "workers must be from 0 (the online CPUs) to 4096");
        free(err);
    }
    const char *why = "";
    assert_int_equal(
        interp_map_check_sizes(INTERP_MAP_MAX_CHUNKSIZE, INTERP_MAP_MAX_IN_FLIGHT, &why),
        INTERP_OK);
    assert_null(why);
    assert_int_equal(interp_map_check_sizes(INTERP_MAP_MAX_CHUNKSIZE + 1, 0, &why),
                     INTERP_ERR_INVALID);
    assert_non_null(strstr(why, "chunksize must be at most 1048576"));
    assert_int_equal(interp_map_check_sizes(0, INTERP_MAP_MAX_IN_FLIGHT + 1, &why),
                     INTERP_ERR_INVALID);
    assert_non_null(strstr(why, "max_in_flight must be at most 16777216"));
    assert_int_equal(interp_chan_check("a", 1, INTERP_CHAN_MAX_CAPACITY, &why), INTERP_OK);
    assert_int_equal(interp_chan_check(NULL, 0, 0, &why), INTERP_OK);
    assert_int_equal(interp_chan_check(NULL, 0, INTERP_CHAN_MAX_CAPACITY + 1, &why),
                     INTERP_ERR_INVALID);
    assert_string_equal(why, "capacity must be from 1 to 1048576 (0: the default)");
    assert_int_equal(interp_chan_check("a\0b", 3, 1, &why), INTERP_ERR_INVALID);
    assert_string_equal(why, "a channel name is 1 to 256 bytes without NUL bytes");
    assert_int_equal(interp_chan_check("", 0, 1, &why), INTERP_ERR_INVALID);
    char long_name[INTERP_CHAN_MAX_NAME + 1];
    memset(long_name, 'n', sizeof long_name);
    assert_int_equal(interp_chan_check(long_name, sizeof long_name - 1, 1, &why), INTERP_OK);
    assert_int_equal(interp_chan_check(long_name, sizeof long_name, 1, &why), INTERP_ERR_INVALID);
    interp_chan *ch = NULL;
    assert_int_equal(interp_chan_create(INTERP_CHAN_MAX_CAPACITY + 1, 0, &ch), INTERP_ERR_INVALID);
    assert_null(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_sandbox_messages_default_to_the_memory_limit),
        cmocka_unit_test(pool_named_channels_are_bounded),
        cmocka_unit_test(option_bounds_say_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
