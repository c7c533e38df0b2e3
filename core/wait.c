/* wait.c - waiting over many futures: interp_futures_wait (all / first completed / first
 * failure) and the as_completed iterator. Each registers one watch node per future with a
 * shared watcher; a future that ends fires its nodes (appending them to the watcher's ready
 * list) under its own lock, so the waiter sleeps on one condition variable whatever the number
 * of futures. */
#include <stdlib.h>

#include "core_impl.h"

static bool is_ended(interp_future *f)
{
    return atomic_load_explicit(&f->state, memory_order_acquire) == INTERP__F_ENDED;
}

/* Ended by a failure: Python's "raised" (a cancelled future did not raise). */
static bool is_failed(interp_future *f)
{
    int st = is_ended(f) ? interp_future_status(f) : INTERP_OK;
    return st != INTERP_OK && st != INTERP_ERR_CANCELLED;
}

/* INTERP_WAIT_FIRST_FAILURE with w watching every future: take the ended ones as they fire
 * until one failed or all n ended. false at the deadline. */
static bool wait_first_failure(interp__watcher *w, size_t n, const struct timespec *dl)
{
    for (size_t seen = 0;;) {
        interp__watch_node *node;
        while ((node = interp__watcher_take(w))) {
            seen++;
            if (is_failed(node->f))
                return true;
        }
        if (seen == n)
            return true;
        if (!interp__watcher_wait(w, seen + 1, dl))
            return false;
    }
}

int interp_futures_wait(interp_future *const fs[], size_t n, int mode, double timeout,
                        size_t *n_done)
{
    if (n_done)
        *n_done = 0;
    if ((n && !fs) || n > INTERP_WAIT_MAX_FUTURES || mode < INTERP_WAIT_ALL ||
        mode > INTERP_WAIT_FIRST_FAILURE || timeout != timeout)
        return INTERP_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return INTERP_ERR_INVALID;
    size_t want = mode == INTERP_WAIT_FIRST ? (n ? 1 : 0) : n;
    size_t done = 0;
    bool failed = false;
    for (size_t i = 0; i < n; i++) {
        done += is_ended(fs[i]);
        failed = failed || (mode == INTERP_WAIT_FIRST_FAILURE && is_failed(fs[i]));
    }
    int rc = INTERP_OK;
    if (done < want && !failed) {
        if (timeout == 0) {
            rc = INTERP_ERR_TIMEOUT;
        } else {
            interp__watch_node stack_nodes[16];
            interp__watch_node *nodes = n <= 16 ? stack_nodes : malloc(n * sizeof *nodes);
            if (!nodes)
                return INTERP_ERR_NOMEM;
            struct timespec dl;
            if (timeout > 0)
                dl = interp__deadline_in(timeout);
            interp__watcher w;
            interp__watcher_init(&w);
            for (size_t i = 0; i < n; i++)
                interp__watch(&w, &nodes[i], fs[i]);
            bool ok = mode == INTERP_WAIT_FIRST_FAILURE
                          ? wait_first_failure(&w, n, timeout > 0 ? &dl : NULL)
                          : interp__watcher_wait(&w, want, timeout > 0 ? &dl : NULL);
            for (size_t i = 0; i < n; i++)
                interp__unwatch(&nodes[i]);
            /* every fire has finished: each ran under a future lock that unwatch took */
            interp__watcher_destroy(&w);
            if (nodes != stack_nodes)
                free(nodes);
            rc = ok ? INTERP_OK : INTERP_ERR_TIMEOUT;
        }
        done = 0;
        for (size_t i = 0; i < n; i++)
            done += is_ended(fs[i]);
        if (done >= want)
            rc = INTERP_OK;
    }
    if (n_done)
        *n_done = done;
    return rc;
}

struct interp_as_completed {
    interp__watcher w;
    size_t n, yielded;
    interp__watch_node nodes[];
};

int interp_as_completed_new(interp_future *const fs[], size_t n, interp_as_completed **out)
{
    if (out)
        *out = NULL;
    if (!out || (n && !fs) || n > INTERP_WAIT_MAX_FUTURES)
        return INTERP_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return INTERP_ERR_INVALID;
    interp_as_completed *it = malloc(sizeof *it + n * sizeof(interp__watch_node));
    if (!it)
        return INTERP_ERR_NOMEM;
    interp__watcher_init(&it->w);
    it->n = n;
    it->yielded = 0;
    for (size_t i = 0; i < n; i++)
        interp__watch(&it->w, &it->nodes[i], fs[i]);
    *out = it;
    return INTERP_OK;
}

int interp_as_completed_next(interp_as_completed *it, double timeout, interp_future **f)
{
    if (f)
        *f = NULL;
    if (!it || !f || timeout != timeout)
        return INTERP_ERR_INVALID;
    if (it->yielded == it->n)
        return INTERP_ERR_CLOSED;
    interp__watch_node *node = interp__watcher_take(&it->w);
    if (!node && timeout != 0) {
        struct timespec dl;
        if (timeout > 0)
            dl = interp__deadline_in(timeout);
        interp__watcher_wait(&it->w, it->yielded + 1, timeout > 0 ? &dl : NULL);
        node = interp__watcher_take(&it->w);
    }
    if (!node)
        return INTERP_ERR_TIMEOUT;
    it->yielded++;
    *f = node->f;
    return INTERP_OK;
}

void interp_as_completed_free(interp_as_completed *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++)
        interp__unwatch(&it->nodes[i]);
    interp__watcher_destroy(&it->w);
    free(it);
}

double interp_now(void) { return interp__now(); }
