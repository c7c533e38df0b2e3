/* test_abi.c - what keeps old binaries working with a newer shared library: size-tagged
 * options (struct_size: 0 for zero-initialised structs, smaller structs of older headers,
 * larger ones of newer headers), stats written only as far as the caller's struct goes, and
 * the version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "interp_pool.h"

static int64_t square_sum(interp_pool *p, const interp_map_options *mo, int *rc_out)
{
    enum { N = 10 };
    interp_msg *in[N], *out[N];
    for (int i = 0; i < N; i++)
        in[i] = interp_msg_int(i);
    int rc = interp_pool_map(p, "sq", N, (const interp_msg *const *)in, out, mo);
    int64_t sum = 0;
    for (int i = 0; i < N; i++) {
        interp_msg_free(in[i]);
        if (rc == INTERP_OK) {
            interp_msg_iter it = interp_msg_iter_init(out[i]);
            interp_msg_value v;
            if (interp_msg_next(&it, &v) && v.type == INTERP_MSG_INT)
                sum += v.as.i;
            interp_msg_free(out[i]);
        }
    }
    *rc_out = rc;
    return sum;
}

static void abi_zero_initialised_options_work(void **st)
{
    (void)st;
    interp_pool_options o = {0};
    o.workers = 1;
    o.init_source = "function sq(x) return x * x end";
    interp_pool *p = NULL;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    interp_map_options mo = {.chunksize = 3};
    int rc;
    assert_int_equal(square_sum(p, &mo, &rc), 285);
    assert_int_equal(rc, INTERP_OK);
    interp_map_options mi = INTERP_MAP_OPTIONS_INIT;
    assert_int_equal(mi.struct_size, sizeof mi);
    assert_int_equal(square_sum(p, &mi, &rc), 285);
    assert_int_equal(rc, INTERP_OK);
    interp_pool_destroy(p);
}

static void abi_defaults_carry_their_size(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    assert_int_equal(o.struct_size, sizeof o);
    assert_true(o.workers >= 1);
    assert_true(o.cancel_grace > 0 && o.stuck_grace > 0 && o.thread_stack_size > 0);
    interp_pool_options i = INTERP_POOL_OPTIONS_INIT;
    assert_int_equal(i.struct_size, sizeof i);
    assert_int_equal(i.workers, 0);
    assert_int_equal(interp_pool_options_init(NULL, sizeof o), INTERP_ERR_INVALID);
    assert_int_equal(interp_pool_options_init(&o, 8), INTERP_ERR_INVALID);
}

/* A newer header's struct: this library's fields, then one it does not know. */
typedef struct newer_options {
    interp_pool_options known;
    int64_t future_field;
} newer_options;

static void abi_newer_struct_accepted_only_when_new_bytes_are_zero(void **st)
{
    (void)st;
    newer_options n;
    memset(&n, 0, sizeof n);
    n.known.struct_size = sizeof n;
    n.known.workers = 1;
    n.known.init_source = "function sq(x) return x * x end";
    interp_pool *p = NULL;
    assert_int_equal(interp_pool_create(&p, &n.known, NULL), INTERP_OK);
    int rc;
    assert_int_equal(square_sum(p, NULL, &rc), 285);
    interp_pool_destroy(p);

    n.future_field = 7;
    char *err = NULL;
    assert_int_equal(interp_pool_create(&p, &n.known, &err), INTERP_ERR_INVALID);
    assert_null(p);
    assert_non_null(err);
    assert_non_null(strstr(err, "newer"));
    free(err);
}

static void abi_too_small_struct_size_refused(void **st)
{
    (void)st;
    interp_pool_options o = {.struct_size = 4, .workers = 1};
    interp_pool *p = NULL;
    char *err = NULL;
    assert_int_equal(interp_pool_create(&p, &o, &err), INTERP_ERR_INVALID);
    assert_null(p);
    assert_non_null(err);
    assert_non_null(strstr(err, "struct_size"));
    free(err);

    o = (interp_pool_options){.workers = 1, .init_source = "function sq(x) return x * x end"};
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    int status[10];
    for (int i = 0; i < 10; i++)
        status[i] = 12345;
    interp_map_options mo = {.struct_size = 3, .status = status};
    int rc;
    square_sum(p, &mo, &rc);
    assert_int_equal(rc, INTERP_ERR_INVALID);
    assert_int_equal(status[0], 12345); /* an unreadable struct is not written through */
    interp_pool_destroy(p);
}

static void abi_stats_written_only_as_far_as_the_caller_has(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.init_source = "function sq(x) return x * x end";
    interp_pool *p = NULL;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    int rc;
    square_sum(p, NULL, &rc);
    assert_int_equal(rc, INTERP_OK);

    /* an older header's stats: only the counters up to timed_out */
    size_t old = offsetof(interp_pool_stats, timed_out);
    unsigned char buf[sizeof(interp_pool_stats) + 16];
    memset(buf, 0xAB, sizeof buf);
    assert_int_equal(interp_pool_get_stats_sized(p, (interp_pool_stats *)(void *)buf, old),
                     INTERP_OK);
    for (size_t i = old; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xAB);
    uint64_t submitted;
    memcpy(&submitted, buf + offsetof(interp_pool_stats, submitted), sizeof submitted);
    assert_true(submitted >= 1);

    /* a newer header's stats: the fields this library does not know are zeroed */
    memset(buf, 0xAB, sizeof buf);
    assert_int_equal(interp_pool_get_stats_sized(p, (interp_pool_stats *)(void *)buf, sizeof buf),
                     INTERP_OK);
    for (size_t i = sizeof(interp_pool_stats); i < sizeof buf; i++)
        assert_int_equal(buf[i], 0);
    interp_pool_stats s;
    assert_int_equal(interp_pool_get_stats(p, &s), INTERP_OK);
    assert_int_equal(s.max_workers, 1);
    assert_int_equal(interp_pool_get_stats(p, NULL), INTERP_ERR_INVALID);
    interp_pool_destroy(p);
}

static void abi_version_matches_the_header(void **st)
{
    (void)st;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", INTERP_POOL_VERSION_MAJOR, INTERP_POOL_VERSION_MINOR,
             INTERP_POOL_VERSION_PATCH);
    assert_string_equal(interp_pool_version(), want);
    assert_string_equal(INTERP_POOL_VERSION_STRING, want);
    assert_int_equal(INTERP_POOL_VERSION_NUMBER, INTERP_POOL_VERSION_MAJOR * 10000 +
                                                     INTERP_POOL_VERSION_MINOR * 100 +
                                                     INTERP_POOL_VERSION_PATCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(abi_zero_initialised_options_work),
        cmocka_unit_test(abi_defaults_carry_their_size),
        cmocka_unit_test(abi_newer_struct_accepted_only_when_new_bytes_are_zero),
        cmocka_unit_test(abi_too_small_struct_size_refused),
        cmocka_unit_test(abi_stats_written_only_as_far_as_the_caller_has),
        cmocka_unit_test(abi_version_matches_the_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
