/* msg.c - the message object: allocation, accessors, copy, free, and the buffer that
 * builds messages in place. */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "frozen_impl.h"
#include "msg_impl.h"
#include "msg_inner.h"
#include "msg_shstr.h"

interp_msg *interp__msg_alloc(size_t size, uint32_t count, uint32_t flags)
{
    if (size > SIZE_MAX - sizeof(interp_msg))
        return NULL;
    interp_msg *m =
        size >= INTERP__BIGBUF_MIN / 2 ? interp__bigbuf_take(sizeof(interp_msg) + size) : NULL;
    if (!m)
        m = malloc(sizeof(interp_msg) + size);
    if (!m)
        return NULL;
    m->size = size;
    m->count = count;
    m->flags = flags;
    return m;
}

uint32_t interp_msg_count(const interp_msg *m) { return m->count; }
/* a message holding shared strings (msg_shstr.h) shows its plain form */
const char *interp_msg_data(const interp_msg *m)
{
    return m->flags & INTERP__MSG_HAS_SHARED ? interp__shstr_plain(m) : m->data;
}
size_t interp_msg_size(const interp_msg *m)
{
    return m->flags & INTERP__MSG_HAS_SHARED ? interp__shstr_tail_of(m)->plain_size : m->size;
}

size_t interp__msg_embed_size(const interp_msg *m)
{
    return sizeof(interp_msg) + m->size + _Alignof(interp_msg) - 1;
}

const interp_msg *interp__msg_embed(void *room, const interp_msg *m)
{
    uintptr_t p = (uintptr_t)room;
    p = (p + _Alignof(interp_msg) - 1) & ~(uintptr_t)(_Alignof(interp_msg) - 1);
    interp_msg *c = (interp_msg *)p;
    memcpy(c, m, sizeof(interp_msg) + m->size);
    c->flags &= INTERP__MSG_CONTENT; /* never a slab member */
    return c;
}

interp_msg *interp_msg_dup(const interp_msg *m)
{
    bool shared = m->flags & INTERP__MSG_HAS_SHARED;
    size_t room = shared ? interp__shstr_tail_room(m->size) : 0;
    if (m->size > SIZE_MAX - sizeof(interp_msg) - room)
        return NULL;
    interp_msg *c = interp__msg_alloc(m->size + room, m->count,
                                      m->flags & (INTERP__MSG_CONTENT | INTERP__MSG_HAS_SHARED));
    if (!c)
        return NULL;
    c->size = m->size;
    if (m->flags & INTERP__MSG_HAS_FROZEN)
        interp__frozen_msg_refs(m->data, m->size, +1);
    memcpy(c->data, m->data, m->size);
    if (shared) {
        interp__shstr_msg_refs(m->data, m->size, +1);
        interp__shstr_tail *t = interp__shstr_tail_of(c);
        t->plain_size = interp__shstr_tail_of(m)->plain_size;
        atomic_init(&t->plain, NULL);
    }
    return c;
}

void interp_msg_free(interp_msg *m)
{
    if (m && (m->flags & INTERP__MSG_SLAB)) {
        interp__slab *sl;
        memcpy(&sl, (char *)m - INTERP__SLAB_HEAD, sizeof sl);
        interp__slab_unref(sl, 1);
        return;
    }
    if (m && (m->flags & INTERP__MSG_HAS_FROZEN))
        interp__frozen_msg_refs(m->data, m->size, -1);
    if (m && (m->flags & INTERP__MSG_HAS_SHARED))
        interp__shstr_msg_release(m);
    if (m && m->size >= INTERP__BIGBUF_MIN / 2)
        interp__bigbuf_put(m); /* kept for the next large message when it is large */
    else
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
    /* a large buffer: a kept block (msg_bigbuf.c) when one fits, its pages already mapped */
    interp_msg *m =
        cap >= INTERP__BIGBUF_MIN / 2 ? interp__bigbuf_take(sizeof(interp_msg) + cap) : NULL;
    if (m) {
        if (b->msg) {
            memcpy(m, b->msg, sizeof(interp_msg) + b->used);
            free(b->msg);
        }
    } else {
        /* realloc of a large block moves pages (mremap) rather than copying bytes */
        m = realloc(b->msg, sizeof(interp_msg) + cap);
    }
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
