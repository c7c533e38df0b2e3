/* test_stack_trim.c - a worker that has been idle gives back the stack pages a deep task
 * touched (core/stack_trim.c): its resident stack falls back to what a worker that only ran a
 * shallow task keeps. */
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
        else if (sscanf(line, "Rss: %ld kB", &kb) == 1 && size >= STACK && size <= STACK + 65536)
            kib += kb;
    }
    fclose(f);
    return kib;
}

/* Run deep(depth) on a fresh one-worker pool, let the worker idle, and return the resident
 * KiB of the pool's thread stacks once it is at most until_kib, or (until_kib < 0) once two
 * readings 0.2 s apart agree; at most 10 s either way. */
static long idle_stack_after(int depth, long until_kib)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.init_source = INIT;
    o.thread_stack_size = STACK;
    interp_pool *p = NULL;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "deep", interp_msg_int(depth), &f), INTERP_OK);
    const interp_msg *res;
    assert_int_equal(interp_future_result(f, INTERP_FOREVER, &res), INTERP_OK);
    interp_msg_iter it = interp_msg_iter_init(res);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_INT);
    assert_int_equal(v.as.i, depth);
    interp_future_release(f);
    /* Idle for 0.1 s, the worker trims its stack. Two equal readings do not prove that the
     * trim ran (on a loaded machine the worker may not have been scheduled between them), so
     * the deep run waits for the figure it expects and fails only after 10 s (100x the idle
     * period). */
    long kib = stacks_kib(), prev = -1;
    for (int i = 0; i < 50; i++) {
        if (until_kib >= 0 ? kib <= until_kib : kib == prev)
            break;
        usleep(200000);
        prev = kib;
        kib = stacks_kib();
    }
    interp_pool_destroy(p);
    return kib;
}

static void idle_worker_gives_back_deep_stack_pages(void **st)
{
    (void)st;
    /* The baseline: a worker that only went shallow. What sits at the top of a thread's
     * stack differs between builds (glibc's thread descriptor and TLS; ThreadSanitizer keeps
     * its per-thread state of hundreds of KiB there), so the deep run is compared to it. */
    long shallow = idle_stack_after(1, -1);
    /* 180 nested pcalls: about a hundred KiB of C stack (under the C-call limit of 200).
     * Without the trim, those pages would stay resident for the thread's life (+128 KiB
     * measured in a Release build). */
    long deep = idle_stack_after(180, shallow + 16);
    printf("resident stack after idling: %ld KiB (shallow task: %ld KiB)\n", deep, shallow);
    assert_true(deep <= shallow + 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_worker_gives_back_deep_stack_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
