/* msg_slab.h - internal to msg/ (and mpi/wire.c, which fills members from wire bytes, and
 * interp/call.c, whose map items put an integer result with interp__slab_int): the layout of
 * a slab and the inline producer steps that carve members from it. The slab's
 * life cycle, its cache and the doc live in msg_inner.h; the code in msg_slab.c. */
#ifndef INTERP_MSG_SLAB_H
#define INTERP_MSG_SLAB_H

#include <msgpuck.h>
#include <stdatomic.h>
#include <stddef.h>

#include "msg_impl.h"
#include "msg_inner.h"

/* below glibc's mmap threshold (128 KiB): an mmap'd block would be unmapped at its free and
 * fault its pages in afresh at every new slab */
enum { INTERP__SLAB_MAX = 60 << 10 };

struct interp__slab {
    atomic_size_t refs;        /* a bias while the producer holds it, minus the freed members */
    interp__slab_cache *cache; /* where it goes when its last member is freed, or NULL */
    size_t members;            /* producer only: members made */
    size_t used, cap;          /* producer only: bytes of data[] */
    _Alignas(16) char data[];
};
#define INTERP__SLAB_HEAD sizeof(interp__slab *) /* before each member: the slab's address */

/* A new slab of about `hint` bytes (clamped to INTERP__SLAB_MAX, at least `need`; a kept one of
 * `cache` when one fits, cache may be NULL) replacing *slab (released); NULL when out of
 * memory (*slab unchanged). */
interp__slab *interp__slab_grow(interp__slab_cache *cache, interp__slab **slab, size_t hint,
                                size_t need);

/* Room for a member of up to `size` data bytes at the end of *slab (a new slab if needed, see
 * interp__slab_grow): returns the message to fill (its data; header written by commit), or NULL
 * when out of memory. Nothing is taken until interp__slab_commit. Producer thread only. */
static inline interp_msg *interp__slab_reserve(interp__slab_cache *cache, interp__slab **slab,
                                               size_t hint, size_t size)
{
    size_t need = INTERP__SLAB_HEAD + sizeof(interp_msg) + size;
    interp__slab *sl = *slab;
    if (!sl || sl->cap - sl->used < need) {
        if (size > INTERP__SLAB_MAX || !(sl = interp__slab_grow(cache, slab, hint, need)))
            return NULL;
    }
    return (interp_msg *)(void *)(sl->data + sl->used + INTERP__SLAB_HEAD);
}

/* Take the member m that interp__slab_reserve returned, with `size` data bytes (at most the
 * reserved size) and its header set (INTERP__MSG_SLAB added to flags). */
static inline void interp__slab_commit(interp__slab *sl, interp_msg *m, size_t size, uint32_t count,
                                       uint32_t flags)
{
    char *at = (char *)m - INTERP__SLAB_HEAD;
    __builtin_memcpy(at, &sl, sizeof sl);
    m->size = size;
    m->count = count;
    m->flags = flags | INTERP__MSG_SLAB;
    sl->used += (INTERP__SLAB_HEAD + sizeof(interp_msg) + size + 7) & ~(size_t)7;
    sl->members++;
}

/* The message of the one integer v, as a member of *slab (see interp__slab_reserve for cache
 * and hint); NULL when out of memory. Inline: it is the usual result of a map item. */
static inline interp_msg *interp__slab_int(interp__slab_cache *cache, interp__slab **slab,
                                           size_t hint, int64_t v)
{
    interp_msg *m = interp__slab_reserve(cache, slab, hint, 9);
    if (!m)
        return NULL;
    char *w = m->data;
    size_t size = (size_t)((v >= 0 ? mp_encode_uint(w, (uint64_t)v) : mp_encode_int(w, v)) - w);
    interp__slab_commit(*slab, m, size, 1, 0);
    return m;
}

/* Drop n member references of sl (its members' frees); the slab goes with the last. Any
 * thread. */
void interp__slab_unref(interp__slab *sl, size_t n);

#endif
