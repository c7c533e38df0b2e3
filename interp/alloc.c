/* alloc.c - the counting allocator of a worker state and interp/'s own checked allocations. */
#include "alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "msg_shstr.h"
#include "threads.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* the pack's free bytes are poisoned, as malloc's are: a use after free is reported */
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

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

/* ---- the pack ------------------------------------------------------------------------------
 * A state's creation (its libraries, the `interp` module, the host's additions) makes ~300
 * objects of 16 to 2048 bytes that live as long as the state. From
 * malloc each costs a chunk header and rounding to 16 (~16 bytes an object: 4.5 KiB of a 26
 * KiB state), and the temporaries of the creation (the first string table, outgrown table
 * parts) stay in the creating thread's tcache for good once it idles (~2 KiB). In the pack
 * they sit back to back, 8-aligned (as Lua's objects need; userdata, whose payload is the
 * host's, stay malloc'd for malloc's alignment), and a temporary's space goes to the next
 * object of its size. After the seal nothing new goes in; an object freed then leaves a hole
 * (bounded by the pack's size, which is what the state's creation used). */

enum { PACK_ALIGN = 8, PACK_OBJ_MAX = 4096, PACK_HOLES_MAX = 32 };
/* The first packs of a pool (made before any of its states is sealed, e.g. all prestarted
 * workers): what a state of the full profile without an initializer takes (21,880 bytes, Lua
 * 5.4.4 on x86-64). More is malloc'd; less leaves an unused tail (its pages are resident only
 * where the pack's last objects are). */
#define PACK_FIRST ((size_t)21888)
/* The largest pack: a host library or on_state callback that makes more leaves the rest
 * malloc'd (a pack object that dies after the seal leaves a hole for the state's life). */
#define PACK_MAX ((size_t)64 << 10)

typedef struct interp__pack_hole {
    struct interp__pack_hole *next;
    size_t size;
} pack_hole;

static size_t pack_round(size_t n) { return (n + PACK_ALIGN - 1) & ~(size_t)(PACK_ALIGN - 1); }

static bool in_pack(const interp__alloc *a, const void *p)
{
    return (uintptr_t)p - (uintptr_t)a->pack < a->pack_cap;
}

static bool pack_open(const interp__alloc *a) { return a->pack_span == SIZE_MAX; }

void interp__alloc_pack_open(interp__alloc *a, const atomic_size_t *hint)
{
    size_t cap = atomic_load_explicit((atomic_size_t *)hint, memory_order_relaxed);
    cap = !cap ? PACK_FIRST : cap < PACK_MAX ? cap : PACK_MAX;
    a->pack = malloc(cap);
    a->pack_cap = a->pack ? cap : 0;
    a->pack_used = a->pack_spill = 0;
    a->pack_holes = NULL;
    a->pack_nholes = 0;
    a->pack_span = a->pack ? SIZE_MAX : 0; /* open: every allocation takes the pack's path */
    if (a->pack)
        POISON(a->pack, cap);
}

void interp__alloc_pack_seal(interp__alloc *a, atomic_size_t *hint)
{
    if (!pack_open(a))
        return;
    a->pack_span = a->pack_cap; /* sealed: only the pack's own objects */
    size_t want = a->pack_used + a->pack_spill;
    a->pack_holes = NULL;
    atomic_store_explicit(hint, want ? want : PACK_ALIGN, memory_order_relaxed);
}

void interp__alloc_pack_free(interp__alloc *a)
{
    if (a->pack)
        UNPOISON(a->pack, a->pack_cap);
    free(a->pack);
    a->pack = NULL;
    a->pack_cap = a->pack_span = 0;
}

/* n bytes (rounded) from the pack while open: a hole of that size, else the end of a larger
 * hole (the rest stays a hole), else the pack's free end. */
static void *pack_take(interp__alloc *a, size_t n)
{
    pack_hole *larger = NULL;
    for (pack_hole **h = &a->pack_holes; *h; h = &(*h)->next) {
        if ((*h)->size == n) {
            pack_hole *p = *h;
            *h = p->next;
            a->pack_nholes--;
            UNPOISON(p, n);
            return p;
        }
        if (!larger && (*h)->size >= n + sizeof(pack_hole))
            larger = *h;
    }
    if (larger) {
        larger->size -= n;
        UNPOISON((char *)larger + larger->size, n);
        return (char *)larger + larger->size;
    }
    if (n > a->pack_cap - a->pack_used)
        return NULL;
    void *p = a->pack + a->pack_used;
    a->pack_used += n;
    UNPOISON(p, n);
    return p;
}

/* p (n bytes, rounded) is free again while the pack is open. */
static void pack_give(interp__alloc *a, void *p, size_t n)
{
    if ((char *)p + n == a->pack + a->pack_used) {
        a->pack_used -= n; /* the last object: the end moves back */
    } else if (n >= sizeof(pack_hole) && a->pack_nholes < PACK_HOLES_MAX) {
        pack_hole *h = p;
        h->size = n;
        h->next = a->pack_holes;
        a->pack_holes = h;
        a->pack_nholes++;
        POISON((char *)p + sizeof *h, n - sizeof *h); /* the header stays readable */
        return;
    }
    POISON(p, n);
}

/* Grow ptr (old bytes; NULL: a new object of Lua type `type`) to nsize bytes in the open
 * pack, or NULL when it does not go there. */
static void *pack_grow(interp__alloc *a, void *ptr, size_t old, size_t nsize, size_t type)
{
    if (nsize > PACK_OBJ_MAX)
        return NULL;
    if (!ptr)
        return type == LUA_TUSERDATA ? NULL : pack_take(a, pack_round(nsize));
    if (!in_pack(a, ptr))
        return NULL;
    size_t o = pack_round(old), n = pack_round(nsize);
    if ((char *)ptr + o == a->pack + a->pack_used && n - o <= a->pack_cap - a->pack_used) {
        a->pack_used += n - o; /* the last object grows in place */
        UNPOISON(ptr, n);
        return ptr;
    }
    void *p = pack_take(a, n);
    if (p) {
        memcpy(p, ptr, old);
        pack_give(a, ptr, o);
    }
    return p;
}

/* Outside the pack: free, grow or shrink (never fails) a block; large blocks carry their
 * sharing header (msg_shstr.h). */
static void plain_free(void *ptr, size_t old)
{
    if (old >= INTERP__SHBLOCK_MIN)
        interp__shblock_free(ptr); /* a message may still share it (msg_shstr.h) */
    else
        free(ptr);
}

static void *plain_grow(void *ptr, size_t old, size_t nsize)
{
    return nsize >= INTERP__SHBLOCK_MIN || old >= INTERP__SHBLOCK_MIN
               ? interp__shblock_realloc(ptr, old, nsize)
               : realloc(ptr, nsize);
}

static void *plain_shrink(void *ptr, size_t old, size_t nsize)
{
    /* if realloc cannot shrink in place and fails, keep the block */
    void *p =
        old >= INTERP__SHBLOCK_MIN ? interp__shblock_realloc(ptr, old, nsize) : realloc(ptr, nsize);
    return p ? p : ptr;
}

/* The pack's path: taken while it is open, and after for the objects in it (pack_span). Its
 * functions stay out of line (cold): a task's allocations pay one compare for it. */
static bool pack_path(const interp__alloc *a, const void *p)
{
    return (uintptr_t)p - (uintptr_t)a->pack < a->pack_span;
}

/* Free ptr (old bytes; NULL: nothing) on the pack's path. */
__attribute__((noinline, cold)) static void pack_release(interp__alloc *a, void *ptr, size_t old)
{
    if (in_pack(a, ptr)) {
        if (pack_open(a))
            pack_give(a, ptr, pack_round(old));
        else
            POISON(ptr, pack_round(old)); /* sealed: its bytes are never used again */
        return;
    }
    if (ptr && old <= PACK_OBJ_MAX) { /* the pack is open: most likely one that did not fit */
        size_t o = pack_round(old);
        a->pack_spill -= o < a->pack_spill ? o : a->pack_spill;
    }
    plain_free(ptr, old);
}

/* Grow ptr (old bytes, or a new object of Lua type `type`) to nsize bytes on the pack's path:
 * in the pack while it is open and has room, else from malloc. */
__attribute__((noinline, cold)) static void *pack_resize(interp__alloc *a, void *ptr, size_t old,
                                                         size_t nsize, size_t type)
{
    bool open = pack_open(a);
    if (open) {
        void *p = pack_grow(a, ptr, old, nsize, type);
        if (p)
            return p;
        if (nsize <= PACK_OBJ_MAX && (ptr || type != LUA_TUSERDATA))
            a->pack_spill += pack_round(nsize); /* the pack is full: the next one takes more */
    }
    if (!in_pack(a, ptr))
        return plain_grow(ptr, old, nsize);
    /* the object leaves the pack */
    void *p =
        nsize >= INTERP__SHBLOCK_MIN ? interp__shblock_realloc(NULL, 0, nsize) : malloc(nsize);
    if (p) {
        memcpy(p, ptr, old);
        if (open)
            pack_give(a, ptr, pack_round(old));
        else
            POISON(ptr, pack_round(old));
    }
    return p;
}

/* Shrink ptr (old bytes) to nsize > 0 on the pack's path: never fails. */
__attribute__((noinline, cold)) static void *pack_shrink(interp__alloc *a, void *ptr, size_t old,
                                                         size_t nsize)
{
    if (!in_pack(a, ptr))
        return plain_shrink(ptr, old, nsize);
    size_t o = pack_round(old), n = pack_round(nsize);
    if (pack_open(a) && (char *)ptr + o == a->pack + a->pack_used)
        a->pack_used -= o - n; /* the last object: the end moves back */
    POISON((char *)ptr + n, o - n);
    return ptr;
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
        if (pack_path(a, ptr))
            pack_release(a, ptr, old);
        else
            plain_free(ptr, old);
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
        void *p = pack_path(a, ptr) ? pack_resize(a, ptr, old, nsize, osize)
                                    : plain_grow(ptr, old, nsize);
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
    /* A shrink never fails. Lua now believes the block has nsize bytes and frees it as such. */
    void *p = pack_path(a, ptr) ? pack_shrink(a, ptr, old, nsize) : plain_shrink(ptr, old, nsize);
    atomic_store_explicit(&a->in_use, now - (old - nsize), memory_order_relaxed);
    return p;
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
