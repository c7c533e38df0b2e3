/* test_stack_trim.c - a worker that has been idle gives back the stack pages a deep task
 * touched (core/stack_trim.c): its resident stack falls back to a few pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp_pool.h"

/* Every level is a pcall: C frames (lua_pcall, the VM) on the worker's thread stack. */
static const char *INIT = "function deep(n)\n"
                          "  if n == 0 then return 0 end\n"
                          "  local ok, v = pcall(deep, n - 1)\n"
                          "  return v + 1\n"
                          "end\n";

enum { STACK = 3 << 20 }; /* a size no other mapping of the test has */

/* Resident KiB of the anonymous mappings of STACK bytes plus a guard (the pool's threads). */
static long stacks_kib(void)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    unsigned long lo, hi, size = 0;
    long kib = 0;
    while (fgets(line, sizeof line, f)) {
        long kb;
        char *dash = strchr(line, '-'), *sp = strchr(line, ' ');
        if (dash && sp && dash < sp && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
            size = hi - lo;
        else if (sscanf(line, "Rss: %ld kB", &kb) == 1 && size >= STACK &&
                 size <= STACK + 65536)
            kib += kb;
    }
    fclose(f);
    return kib;
}

static void idle_worker_gives_back_deep_stack_pages(void **st)
{
    (void)st;
#if defined(__SANITIZE_THREAD__)
    /* TSan keeps its own per-thread shadow and stack bookkeeping resident: the pages this
     * test counts are not the pool's to give back there. */
    skip();
#endif
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.init_source = INIT;
    o.thread_stack_size = STACK;
    interp_pool *p = NULL;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    interp_future *f;
    /* 180 nested pcalls: about a hundred KiB of C stack (under the C-call limit of 200) */
    assert_int_equal(interp_pool_submit(p, "deep", interp_msg_int(180), &f), INTERP_OK);
    const interp_msg *res;
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &res), INTERP_OK);
    interp_msg_iter it = interp_msg_iter_init(res);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_INT);
    assert_int_equal(v.as.i, 180);
    interp_future_release(f);
    /* Idle for 0.1 s, the worker trims its stack; allow a loaded machine 5 s. Without the
     * trim the deep task's pages (tens of KiB) would stay resident for the thread's life. */
    long kib = 0;
    for (int i = 0; i < 500; i++) {
        if ((kib = stacks_kib()) <= 24)
            break;
        usleep(10000);
    }
    printf("resident stack after idling: %ld KiB\n", kib);
    assert_true(kib <= 24);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_worker_gives_back_deep_stack_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
