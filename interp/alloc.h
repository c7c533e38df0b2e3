/* alloc.h - internal: the counting allocator of a worker state (lua_Alloc), with a memory
 * limit where only growth fails. */
#ifndef INTERP_ALLOC_H
#define INTERP_ALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct interp__threads;

typedef struct interp__alloc {
    atomic_size_t in_use; /* bytes currently allocated by the state; any thread may read */
    atomic_size_t peak;   /* highest in_use seen; any thread may read */
    size_t limit;         /* 0: none; set before the state exists, then read-only */
    /* bytes the host holds for this state that its limit also covers (budget.h: what it
     * queued on channels, the channels it made); NULL: none. Set before the state exists */
    const atomic_size_t *held;
    bool failed; /* an allocation was refused (limit or malloc); owner thread only,
                    cleared by the caller when it starts a task */
    struct interp__threads *threads; /* NULL: none; else the coroutines of the state are kept
                                        there (threads.h), its array counted in in_use */
} interp__alloc;

/* The lua_Alloc for lua_newstate(interp__alloc_fn, a). Frees and shrinks always succeed;
 * growth fails (returns NULL) when it would pass a->limit or when malloc fails (tests inject
 * such failures by wrapping malloc itself: tests/alloc_fail.h). */
void *interp__alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);

/* malloc/realloc for interp/'s own C-side allocations (a size of 0 asks for 1 byte). */
void *interp__malloc(size_t n);
void *interp__realloc(void *p, size_t n);
/* A malloc'd copy of s[0..len) plus a NUL; NULL when out of memory. */
char *interp__strndup(const char *s, size_t len);
/* A malloc'd printf; NULL when out of memory. */
char *interp__strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
