/* test_status.c - the one status table: every code has a distinct name and a text, names and
 * codes round-trip, and the enum keeps its ABI values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "interp_status.h"
#include "status_text.h"

#define ALL_CODES(NAME, value, name, text) INTERP_ERR_##NAME,
static const int codes[] = {INTERP_OK, INTERP_STATUS_MAP(ALL_CODES)};
#undef ALL_CODES
enum { NCODES = sizeof codes / sizeof codes[0] };

static void status_every_code_has_name_and_text(void **st)
{
    (void)st;
    for (int i = 0; i < NCODES; i++) {
        const char *name = interp_status_name(codes[i]);
        assert_non_null(name);
        assert_true(name[0] != '\0');
        const char *text = interp_strerror(codes[i]);
        assert_non_null(text);
        assert_string_not_equal(text, "unknown status");
        assert_non_null(interp__status_end_text(codes[i]));
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(name, interp_status_name(codes[j]));
            assert_int_not_equal(codes[i], codes[j]);
        }
    }
}

static void status_name_and_code_round_trip(void **st)
{
    (void)st;
    for (int i = 0; i < NCODES; i++)
        assert_int_equal(interp_status_code(interp_status_name(codes[i])), codes[i]);
    assert_int_equal(interp_status_code("timeout"), INTERP_ERR_TIMEOUT);
    assert_int_equal(interp_status_code("TIMEOUT"), 1);
    assert_int_equal(interp_status_code("no such status"), 1);
    assert_int_equal(interp_status_code(""), 1);
    assert_int_equal(interp_status_code(NULL), 1);
    assert_null(interp_status_name(1));
    assert_null(interp_status_name(-1000));
    assert_string_equal(interp_strerror(-1000), "unknown status");
}

/* The values are ABI: old binaries compare against these numbers. */
static void status_values_are_stable(void **st)
{
    (void)st;
    assert_int_equal(NCODES, 16);
    for (int i = 0; i < NCODES; i++)
        assert_int_equal(codes[i], -i);
    assert_int_equal(INTERP_ERR_NOMEM, -1);
    assert_int_equal(INTERP_ERR_SHUTDOWN, -11);
    assert_int_equal(INTERP_ERR_BUSY, -15);
    assert_string_equal(interp_strerror(INTERP_ERR_SHUTDOWN), "pool is shut down");
    assert_string_equal(interp_status_name(INTERP_ERR_SHUTDOWN), "shutdown");
}

/* One event, one text: the shutdown's two statuses read differently. */
static void status_shutdown_texts_are_distinct(void **st)
{
    (void)st;
    assert_string_not_equal(interp__status_end_text(INTERP_ERR_SHUTDOWN),
                            interp__status_end_text(INTERP_ERR_CANCELLED));
    assert_string_equal(interp__irq_text(INTERP_ERR_TIMEOUT), "interp: task timed out");
    assert_string_equal(interp__irq_text(INTERP_ERR_SHUTDOWN),
                        "interp: task stopped by pool shutdown");
    assert_string_equal(interp__irq_text(INTERP_ERR_CANCELLED), "interp: task cancelled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_every_code_has_name_and_text),
        cmocka_unit_test(status_name_and_code_round_trip),
        cmocka_unit_test(status_values_are_stable),
        cmocka_unit_test(status_shutdown_texts_are_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
