/* timers.c - one-shot timers for parked waits (a context's call parked in recv(timeout),
 * interp.sleep, or past its deadline while parked: ctx.c). A binary min-heap on the due time,
 * under the pool lock; the watchdog thread sleeps until the earliest one as it does for
 * deadlines, and fires the due ones. Each timer knows its place in the heap, so disarming (the
 * wait ended otherwise) is O(log n) and a heap never holds timers of waits that are over. */
#include <math.h>
#include <stdlib.h>

#include "core_impl.h"

static void put(interp__timers *ts, size_t i, interp__timer *t)
{
    ts->heap[i] = t;
    t->idx = i + 1;
}

static void sift_up(interp__timers *ts, size_t i)
{
    interp__timer *t = ts->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (ts->heap[parent]->at <= t->at)
            break;
        put(ts, i, ts->heap[parent]);
        i = parent;
    }
    put(ts, i, t);
}

static void sift_down(interp__timers *ts, size_t i)
{
    interp__timer *t = ts->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= ts->n)
            break;
        if (c + 1 < ts->n && ts->heap[c + 1]->at < ts->heap[c]->at)
            c++;
        if (t->at <= ts->heap[c]->at)
            break;
        put(ts, i, ts->heap[c]);
        i = c;
    }
    put(ts, i, t);
}

static void remove_locked(interp__timers *ts, interp__timer *t)
{
    size_t i = t->idx - 1;
    t->idx = 0;
    interp__timer *last = ts->heap[--ts->n];
    if (i == ts->n)
        return;
    put(ts, i, last);
    sift_down(ts, i);
    sift_up(ts, last->idx - 1);
}

/* Under pool->mu. */
int interp__timers_add_locked(interp__timers *ts, interp__timer *t, double at)
{
    if (t->idx)
        remove_locked(ts, t);
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? 2 * ts->cap : 64;
        interp__timer **h = realloc(ts->heap, cap * sizeof *h);
        if (!h)
            return INTERP_ERR_NOMEM;
        ts->heap = h;
        ts->cap = cap;
    }
    t->at = at;
    put(ts, ts->n++, t);
    sift_up(ts, ts->n - 1);
    return INTERP_OK;
}

void interp__timer_disarm(interp_pool *pool, interp__timer *t)
{
    interp__mutex_lock(&pool->mu);
    if (t->idx)
        remove_locked(&pool->timers, t);
    interp__mutex_unlock(&pool->mu);
}

double interp__timers_run_locked(interp__timers *ts, double now)
{
    while (ts->n > 0 && ts->heap[0]->at <= now) {
        interp__timer *t = ts->heap[0];
        remove_locked(ts, t);
        t->fire(t, now);
    }
    return ts->n > 0 ? ts->heap[0]->at : INFINITY;
}

void interp__timers_free(interp__timers *ts)
{
    free(ts->heap);
    ts->heap = NULL;
    ts->n = ts->cap = 0;
}
