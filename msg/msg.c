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
    interp_msg *m = size >= INTERP__BIGBUF_MIN / 2 ? interp__bigbuf_take(sizeof(interp_msg) + size)
                                                   : NULL;
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

/* ---- slabs (msg_impl.h) ---- */

#define SLAB_BIAS ((size_t)1 << (sizeof(size_t) * 8 - 2))

struct interp__slab_cache {
    atomic_size_t refs;  /* the producer, and every slab (live or kept) made with the cache */
    pthread_mutex_t mu;  /* guards what follows */
    interp__slab *kept;  /* full-size slabs whose members are all freed, linked through data */
    size_t nkept, max;   /* max: the limit now (busy_max, or idle_max while idle) */
    size_t busy_max, idle_max;
    bool open;           /* false once the producer has released it */
};

static void cache_unref(interp__slab_cache *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Keep sl (no member, nobody holds it) for the producer's next slab; false if the cache is
 * closed or full. */
static bool cache_put(interp__slab_cache *c, interp__slab *sl)
{
    bool kept = false;
    pthread_mutex_lock(&c->mu);
    if (c->open && c->nkept < c->max) {
        memcpy(sl->data, &c->kept, sizeof c->kept);
        c->kept = sl;
        c->nkept++;
        kept = true;
    }
    pthread_mutex_unlock(&c->mu);
    return kept;
}

static interp__slab *cache_take(interp__slab_cache *c)
{
    pthread_mutex_lock(&c->mu);
    c->max = c->busy_max; /* the producer is busy again (interp__slab_cache_idle) */
    interp__slab *sl = c->kept;
    if (sl) {
        memcpy(&c->kept, sl->data, sizeof c->kept);
        c->nkept--;
    }
    pthread_mutex_unlock(&c->mu);
    return sl;
}

static void slab_free(interp__slab *sl)
{
    interp__slab_cache *c = sl->cache;
    free(sl);
    if (c)
        cache_unref(c);
}

static void slab_unref(interp__slab *sl, size_t n)
{
    if (atomic_fetch_sub_explicit(&sl->refs, n, memory_order_acq_rel) != n)
        return;
    if (sl->cache && sl->cap == INTERP__SLAB_MAX && cache_put(sl->cache, sl))
        return;
    slab_free(sl);
}

interp__slab_cache *interp__slab_cache_new(size_t max_bytes, size_t idle_bytes)
{
    interp__slab_cache *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->kept = NULL;
    c->nkept = 0;
    c->busy_max = max_bytes / (sizeof(interp__slab) + INTERP__SLAB_MAX);
    c->idle_max = idle_bytes / (sizeof(interp__slab) + INTERP__SLAB_MAX);
    if (c->idle_max > c->busy_max)
        c->idle_max = c->busy_max;
    c->max = c->busy_max;
    c->open = true;
    return c;
}

/* Free the kept slabs in list sl (linked through data; no lock held). */
static void free_kept(interp__slab *sl)
{
    while (sl) {
        interp__slab *next;
        memcpy(&next, sl->data, sizeof next);
        slab_free(sl);
        sl = next;
    }
}

size_t interp__slab_cache_idle(interp__slab_cache *c)
{
    if (!c)
        return 0;
    size_t n = 0;
    interp__slab *drop = NULL;
    pthread_mutex_lock(&c->mu);
    c->max = c->idle_max;
    while (c->nkept > c->max) {
        interp__slab *sl = c->kept;
        memcpy(&c->kept, sl->data, sizeof c->kept);
        c->nkept--;
        memcpy(sl->data, &drop, sizeof drop);
        drop = sl;
        n++;
    }
    pthread_mutex_unlock(&c->mu);
    free_kept(drop);
    return n;
}

size_t interp__slab_cache_kept(interp__slab_cache *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->nkept;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void interp__slab_cache_release(interp__slab_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->open = false;
    interp__slab *sl = c->kept;
    c->kept = NULL;
    c->nkept = 0;
    pthread_mutex_unlock(&c->mu);
    free_kept(sl);
    cache_unref(c);
}

interp__slab *interp__slab_grow(interp__slab_cache *cache, interp__slab **slab, size_t hint,
                                size_t need)
{
    size_t cap = hint < INTERP__SLAB_MAX ? hint : INTERP__SLAB_MAX;
    if (cap < need)
        cap = need;
    interp__slab *n = cache && cap == INTERP__SLAB_MAX ? cache_take(cache) : NULL;
    if (!n) {
        n = malloc(sizeof *n + cap);
        if (!n)
            return NULL;
        n->cap = cap;
        n->cache = cache;
        if (cache)
            atomic_fetch_add_explicit(&cache->refs, 1, memory_order_relaxed);
    }
    atomic_init(&n->refs, SLAB_BIAS);
    n->members = 0;
    n->used = 0;
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
    if (m && (m->flags & INTERP__MSG_HAS_FROZEN))
        interp__frozen_msg_refs(m->data, m->size, -1);
    if (m && (m->flags & INTERP__MSG_HAS_SHARED))
        interp__shstr_msg_release(m);
    if (m && m->size >= INTERP__BIGBUF_MIN / 2)
        interp__bigbuf_put(m); /* kept for the next large message when it is large */
    else
        free(m);
}

void interp__msg_free_many(interp_msg **ms, size_t n)
{
    interp__slab *run = NULL; /* members of one slab in a row: one reference drop for all */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        interp_msg *m = ms[i];
        if (!m)
            continue;
        ms[i] = NULL;
        if (!(m->flags & INTERP__MSG_SLAB)) {
            interp_msg_free(m);
            continue;
        }
        interp__slab *sl;
        memcpy(&sl, (char *)m - INTERP__SLAB_HEAD, sizeof sl);
        if (sl != run) {
            if (run)
                slab_unref(run, k);
            run = sl;
            k = 0;
        }
        k++;
    }
    if (run)
        slab_unref(run, k);
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
    interp_msg *m = cap >= INTERP__BIGBUF_MIN / 2 ? interp__bigbuf_take(sizeof(interp_msg) + cap)
                                                  : NULL;
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
