/* msg.c - the message object: allocation, accessors, copy, free, and the buffer that
 * builds messages in place. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "msg_impl.h"

interp_msg *interp__msg_alloc(size_t size, uint32_t count, uint32_t flags)
{
    if (size > SIZE_MAX - sizeof(interp_msg))
        return NULL;
    interp_msg *m = malloc(sizeof(interp_msg) + size);
    if (!m)
        return NULL;
    m->size = size;
    m->count = count;
    m->flags = flags;
    return m;
}

uint32_t interp_msg_count(const interp_msg *m) { return m->count; }
const char *interp_msg_data(const interp_msg *m) { return m->data; }
size_t interp_msg_size(const interp_msg *m) { return m->size; }

interp_msg *interp_msg_dup(const interp_msg *m)
{
    interp_msg *c = interp__msg_alloc(m->size, m->count, m->flags & INTERP__MSG_CONTENT);
    if (c)
        memcpy(c->data, m->data, m->size);
    return c;
}

/* ---- slabs (msg_impl.h) ---- */

#define SLAB_BIAS ((size_t)1 << (sizeof(size_t) * 8 - 2))

static void slab_unref(interp__slab *sl, size_t n)
{
    if (atomic_fetch_sub_explicit(&sl->refs, n, memory_order_acq_rel) == n)
        free(sl);
}

interp__slab *interp__slab_grow(interp__slab **slab, size_t hint, size_t need)
{
    size_t cap = hint < INTERP__SLAB_MAX ? hint : INTERP__SLAB_MAX;
    if (cap < need)
        cap = need;
    interp__slab *n = malloc(sizeof *n + cap);
    if (!n)
        return NULL;
    atomic_init(&n->refs, SLAB_BIAS);
    n->members = 0;
    n->used = 0;
    n->cap = cap;
    interp__slab_release(*slab);
    *slab = n;
    return n;
}

void interp__slab_release(interp__slab *slab)
{
    if (slab)
        slab_unref(slab, SLAB_BIAS - slab->members);
}

void interp_msg_free(interp_msg *m)
{
    if (m && (m->flags & INTERP__MSG_SLAB)) {
        interp__slab *sl;
        memcpy(&sl, (char *)m - INTERP__SLAB_HEAD, sizeof sl);
        slab_unref(sl, 1);
        return;
    }
    free(m);
}

char *interp__msgbuf_reserve(interp__msgbuf *b, size_t more)
{
    if (b->msg && more <= b->cap - b->used)
        return b->msg->data + b->used;
    if (more > SIZE_MAX / 2 - b->used)
        return NULL;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->used < more)
        cap *= 2;
    /* realloc of a large block moves pages (mremap) rather than copying bytes */
    interp_msg *m = realloc(b->msg, sizeof(interp_msg) + cap);
    if (!m)
        return NULL;
    b->msg = m;
    b->cap = cap;
    return m->data + b->used;
}

interp_msg *interp__msgbuf_finish(interp__msgbuf *b, uint32_t count, uint32_t flags)
{
    if (!b->msg && !interp__msgbuf_reserve(b, 0))
        return NULL;
    interp_msg *m = b->msg;
    m->size = b->used;
    m->count = count;
    m->flags = flags;
    b->msg = NULL;
    b->used = b->cap = 0;
    return m;
}

void interp__msgbuf_free(interp__msgbuf *b)
{
    free(b->msg);
    b->msg = NULL;
    b->used = b->cap = 0;
}
