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
    /* The pack (alloc.c): one malloc'd block holding the objects a state makes while it is
     * created, back to back without malloc's chunk headers. Owner thread only. */
    char *pack;                           /* NULL: none */
    size_t pack_cap, pack_used;           /* its size; bytes handed out from its start */
    size_t pack_spill;                    /* bytes malloc'd while it was open and full */
    struct interp__pack_hole *pack_holes; /* freed objects while open, for the same size */
    unsigned pack_nholes;
    /* SIZE_MAX while open (new objects come from it, until interp__alloc_pack_seal), then
     * pack_cap: the allocator takes the pack's path for p when p - pack < pack_span */
    size_t pack_span;
} interp__alloc;

/* The lua_Alloc for lua_newstate(interp__alloc_fn, a). Frees and shrinks always succeed;
 * growth fails (returns NULL) when it would pass a->limit or when malloc fails (tests inject
 * such failures by wrapping malloc itself: tests/alloc_fail.h). */
void *interp__alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);

/* Give a (a state's allocator, before lua_newstate) a pack for the objects of its creation,
 * of the size *hint says (0: a default), where the last state alike stored what it needed.
 * Without one (malloc failed) every object is malloc'd, as after the seal. */
void interp__alloc_pack_open(interp__alloc *a, const atomic_size_t *hint);
/* The state is made: new objects are malloc'd from now on (the pack's objects stay in it
 * until freed; a freed one leaves a hole that is not reused). Stores in *hint what the pack
 * needed (what it holds and what did not fit). */
void interp__alloc_pack_seal(interp__alloc *a, atomic_size_t *hint);
/* After lua_close: free the pack. */
void interp__alloc_pack_free(interp__alloc *a);

/* malloc/realloc for interp/'s own C-side allocations (a size of 0 asks for 1 byte). */
void *interp__malloc(size_t n);
void *interp__realloc(void *p, size_t n);
/* A malloc'd copy of s[0..len) plus a NUL; NULL when out of memory. */
char *interp__strndup(const char *s, size_t len);
/* A malloc'd printf; NULL when out of memory. */
char *interp__strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
