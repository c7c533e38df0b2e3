/* msg_slab.c - result slabs: many small messages carved from one block by one producer,
 * freed one by one from any thread, and the producer's cache of emptied slabs (msg_inner.h,
 * msg_slab.h). */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "msg_slab.h"

#define SLAB_BIAS ((size_t)1 << (sizeof(size_t) * 8 - 2))

struct interp__slab_cache {
    atomic_size_t refs; /* the producer, and every slab (live or kept) made with the cache */
    pthread_mutex_t mu; /* guards what follows */
    interp__slab *kept; /* full-size slabs whose members are all freed, linked through data */
    size_t nkept, max;  /* max: the limit now (busy_max, or idle_max while idle) */
    size_t busy_max, idle_max;
    bool open; /* false once the producer has released it */
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

void interp__slab_unref(interp__slab *sl, size_t n)
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
        interp__slab_unref(slab, SLAB_BIAS - slab->members);
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
                interp__slab_unref(run, k);
            run = sl;
            k = 0;
        }
        k++;
    }
    if (run)
        interp__slab_unref(run, k);
}
