/* alloc.c - the counting allocator of a worker state and interp/'s own checked allocations. */
#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "msg_shstr.h"
#include "threads.h"

static void note_peak(interp__alloc *a, size_t now)
{
    atomic_store_explicit(&a->in_use, now, memory_order_relaxed);
    if (now > atomic_load_explicit(&a->peak, memory_order_relaxed))
        atomic_store_explicit(&a->peak, now, memory_order_relaxed);
}

/* A new coroutine: its block, and its place in the set (whose growth counts too). */
static void *new_thread(interp__alloc *a, size_t now, size_t nsize)
{
    size_t before = interp__threads_bytes(a->threads);
    size_t grow = nsize + (interp__threads_bytes_after_add(a->threads) - before);
    size_t held = a->held ? atomic_load_explicit(a->held, memory_order_relaxed) : 0;
    if (a->limit && (now + grow + held > a->limit || now + grow < now)) {
        a->failed = true;
        return NULL;
    }
    void *p = malloc(nsize);
    if (!p) {
        a->failed = true;
        return NULL;
    }
    if (!interp__threads_add(a->threads, p, nsize)) {
        free(p);
        a->failed = true;
        return NULL;
    }
    note_peak(a, now + nsize + (interp__threads_bytes(a->threads) - before));
    return p;
}

void *interp__alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    interp__alloc *a = ud;
    /* Lua passes the object type instead of a size when ptr is NULL. */
    size_t old = ptr ? osize : 0;

    /* Only the thread that owns the state allocates, so plain loads and stores of the counters
     * (no read-modify-write: no locked instruction per allocation) cannot race with another
     * allocation; other threads only read them. */
    size_t now = atomic_load_explicit(&a->in_use, memory_order_relaxed);
    if (nsize == 0) {
        if (a->threads && ptr) {
            /* a collected coroutine leaves the set (which may shrink its array) */
            size_t before = interp__threads_bytes(a->threads);
            interp__threads_forget(a->threads, ptr, osize);
            now -= before - interp__threads_bytes(a->threads);
        }
        if (old >= INTERP__SHBLOCK_MIN)
            interp__shblock_free(ptr); /* a message may still share it (msg_shstr.h) */
        else
            free(ptr);
        atomic_store_explicit(&a->in_use, now - old, memory_order_relaxed);
        return NULL;
    }
    if (!ptr && osize == LUA_TTHREAD && a->threads)
        return new_thread(a, now, nsize);
    if (nsize > old) {
        size_t grow = nsize - old;
        /* one relaxed load of the state's own account: no shared counter per allocation */
        size_t held = a->held ? atomic_load_explicit(a->held, memory_order_relaxed) : 0;
        if (a->limit && (now + grow + held > a->limit || now + grow < now)) {
            a->failed = true;
            return NULL;
        }
        void *p = nsize >= INTERP__SHBLOCK_MIN || old >= INTERP__SHBLOCK_MIN
                      ? interp__shblock_realloc(ptr, old, nsize)
                      : realloc(ptr, nsize);
        if (!p) {
            a->failed = true;
            return NULL;
        }
        now += grow;
        atomic_store_explicit(&a->in_use, now, memory_order_relaxed);
        if (now > atomic_load_explicit(&a->peak, memory_order_relaxed))
            atomic_store_explicit(&a->peak, now, memory_order_relaxed);
        return p;
    }
    /* A shrink never fails: if realloc cannot shrink in place and fails, keep the block. */
    void *p =
        old >= INTERP__SHBLOCK_MIN ? interp__shblock_realloc(ptr, old, nsize) : realloc(ptr, nsize);
    /* Lua now believes the block has nsize bytes and will free it as such. */
    atomic_store_explicit(&a->in_use, now - (old - nsize), memory_order_relaxed);
    return p ? p : ptr;
}

void *interp__malloc(size_t n) { return malloc(n ? n : 1); }

void *interp__realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }

char *interp__strndup(const char *s, size_t len)
{
    char *d = interp__malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *interp__strdupf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *d = interp__malloc((size_t)n + 1);
    if (!d)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}
