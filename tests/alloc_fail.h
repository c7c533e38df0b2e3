/* alloc_fail.h - allocation failure injection for a test executable linked with
 * tests/alloc_fail.cmake: the library's and the test's malloc, calloc and realloc go through
 * these __wrap_* functions (the library is static, so its objects are linked into the test
 * and --wrap applies to them). Include in exactly one file of the test. */
#ifndef ALLOC_FAIL_H
#define ALLOC_FAIL_H

#include <stdbool.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);

/* -1: never fail; otherwise the number of allocations that still succeed before each
 * further one fails. */
static long alloc_budget = -1;

static bool alloc_fails(void)
{
    if (alloc_budget < 0)
        return false;
    if (alloc_budget == 0)
        return true;
    alloc_budget--;
    return false;
}

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) { return alloc_fails() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return alloc_fails() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return alloc_fails() ? NULL : __real_realloc(p, n); }

#endif
