/* budget.c - the pool's memory budget and the accounts of its states (see budget.h). */
#include "budget.h"
#include "interp_status.h"

#include <stdio.h>
#include <stdlib.h>

#include "sync.h"

interp__budget *interp__budget_new(size_t limit)
{
    interp__budget *b = malloc(sizeof *b);
    if (!b)
        return NULL;
    atomic_init(&b->used, 0);
    atomic_init(&b->refs, 1);
    b->limit = limit;
    return b;
}

void interp__budget_retain(interp__budget *b)
{
    if (b)
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void interp__budget_release(interp__budget *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

size_t interp__budget_used(const interp__budget *b)
{
    return b ? atomic_load_explicit(&((interp__budget *)b)->used, memory_order_relaxed) : 0;
}

bool interp__budget_take(interp__budget *b, size_t n)
{
    if (!b)
        return true;
    size_t used = atomic_load_explicit(&b->used, memory_order_relaxed);
    do {
        if (b->limit && (n > b->limit || used > b->limit - n))
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&b->used, &used, used + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

void interp__budget_give(interp__budget *b, size_t n)
{
    if (b && n)
        atomic_fetch_sub_explicit(&b->used, n, memory_order_relaxed);
}

interp__account *interp__account_new(interp__budget *budget, const atomic_size_t *heap,
                                     size_t state_limit)
{
    interp__account *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    interp__budget_retain(budget);
    a->budget = budget;
    atomic_init(&a->refs, 1);
    interp__mutex_init(&a->mu);
    a->held = a->reserved = 0;
    atomic_init(&a->held_state, 0);
    a->state_limit = state_limit;
    a->heap = heap;
    return a;
}

void interp__account_retain(interp__account *a)
{
    if (a)
        atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
}

void interp__account_release(interp__account *a)
{
    if (!a || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    interp__budget_give(a->budget, a->reserved);
    interp__budget_release(a->budget);
    interp__mutex_destroy(&a->mu);
    free(a);
}

void interp__account_detach(interp__account *a)
{
    if (!a)
        return;
    interp__mutex_lock(&a->mu);
    a->heap = NULL;
    interp__mutex_unlock(&a->mu);
}

int interp__account_charge(interp__account *a, size_t n, bool for_state, char *why, size_t whylen)
{
    if (!a)
        return INTERP_OK;
    interp__mutex_lock(&a->mu);
    if (for_state && a->state_limit) {
        size_t heap = a->heap ? atomic_load_explicit(a->heap, memory_order_relaxed) : 0;
        size_t held = atomic_load_explicit(&a->held_state, memory_order_relaxed);
        if (heap + held + n < heap || heap + held + n > a->state_limit) {
            interp__mutex_unlock(&a->mu);
            if (why)
                snprintf(
                    why, whylen,
                    "not enough memory (state memory limit %zu bytes: %zu in the heap, %zu "
                    "held by the host for this state (channels, frozen values, waits), %zu more "
                    "asked)",
                    a->state_limit, heap, held, n);
            return INTERP_ERR_NOMEM;
        }
    }
    if (a->budget && a->held + n > a->reserved) {
        size_t need = a->held + n - a->reserved;
        size_t take = need > INTERP__BUDGET_BATCH ? need : INTERP__BUDGET_BATCH;
        if (!interp__budget_take(a->budget, take) && !interp__budget_take(a->budget, take = need)) {
            size_t used = interp__budget_used(a->budget);
            interp__mutex_unlock(&a->mu);
            if (why)
                snprintf(why, whylen,
                         "not enough memory (the pool's memory budget of %zu bytes is used up: "
                         "%zu held in channels, frozen values, waits, results and errors; %zu "
                         "more asked)",
                         a->budget->limit, used, n);
            return INTERP_ERR_NOMEM;
        }
        a->reserved += take;
    }
    a->held += n;
    if (for_state)
        atomic_fetch_add_explicit(&a->held_state, n, memory_order_relaxed);
    interp__mutex_unlock(&a->mu);
    return INTERP_OK;
}

void interp__account_refund(interp__account *a, size_t n, bool for_state)
{
    if (!a || !n)
        return;
    interp__mutex_lock(&a->mu);
    a->held -= n;
    if (for_state)
        atomic_fetch_sub_explicit(&a->held_state, n, memory_order_relaxed);
    if (a->budget && a->reserved - a->held > 2 * INTERP__BUDGET_BATCH) {
        size_t give = a->reserved - a->held - INTERP__BUDGET_BATCH;
        a->reserved -= give;
        interp__budget_give(a->budget, give);
    }
    interp__mutex_unlock(&a->mu);
}
