/* budget.h - internal: the memory budget, one model for everything a task makes the host hold
 * outside its own heap.
 *
 * A pool has one budget (interp__budget: a limit and what is reserved from it). Each worker
 * state that needs accounting has an account (interp__account) drawing on it. Whatever a task
 * makes the host hold is charged to its state's account when it is made and refunded when it
 * goes, whichever thread that is on:
 *   - a message it queued on a channel: from the send until it is received (or the channel is
 *     freed): the sender pays (chan.c keeps the account in the ring's cell);
 *   - a named channel it created: the ring and the name, until the pool is destroyed;
 *   - its task's result, error text and error value, while they wait in the future for the
 *     host (until the future is released).
 * In the sandbox the account also counts against the state's own memory limit: heap plus
 * queued messages plus channels it made never pass it (interp__alloc reads `held_state`);
 * results and errors count for the pool only (the host decides how long it keeps futures).
 *
 * Batches: an account takes room from the pool's budget INTERP__BUDGET_BATCH bytes at a time
 * and gives back what it holds beyond two batches, so the pool's counter (one atomic shared by
 * every worker) moves once per batch, not once per message; the state's own heap allocations
 * never touch either (the allocator reads one relaxed atomic of its own account).
 *
 * The hook for other kinds of host-held memory (frozen shared values, say): charge the
 * making state's account with interp__account_charge(acct, bytes, true, ...) when the value is
 * made, keep a reference to the account with the value, and interp__account_refund plus
 * interp__account_release when its last reference goes. Nothing else is needed: the limits,
 * the texts and the stats follow.
 *
 * Lock order: an account's mutex is a leaf (taken under a channel's mutex by a receive that
 * refunds; never held while taking another lock). */
#ifndef INTERP_BUDGET_H
#define INTERP_BUDGET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define INTERP__BUDGET_BATCH ((size_t)256 << 10)

typedef struct interp__budget {
    atomic_size_t used; /* reserved by accounts and charged directly */
    atomic_long refs;
    size_t limit; /* 0: none (then only accounts with a state limit exist) */
} interp__budget;

typedef struct interp__account {
    interp__budget *budget; /* retained; NULL: no pool total */
    atomic_long refs;
    pthread_mutex_t mu;
    size_t held;               /* mu: charged now */
    size_t reserved;           /* mu: taken from budget (>= held when budget) */
    atomic_size_t held_state;  /* charged now against the state's limit (the allocator reads) */
    size_t state_limit;        /* the state's memory limit counting held_state; 0: none */
    const atomic_size_t *heap; /* the state's heap in use, for texts and the limit check */
} interp__account;

/* A budget of `limit` bytes (0: none), one reference. NULL when out of memory. */
interp__budget *interp__budget_new(size_t limit);
void interp__budget_retain(interp__budget *b);
void interp__budget_release(interp__budget *b);
/* Bytes in use (reserved by accounts, or charged directly). NULL-safe: 0. */
size_t interp__budget_used(const interp__budget *b);
/* Charge / refund b directly (a host-made channel's ring). False when it would pass the limit.
 * NULL-safe: always true / nothing. */
bool interp__budget_take(interp__budget *b, size_t n);
void interp__budget_give(interp__budget *b, size_t n);

/* An account on budget (may be NULL) for a state whose heap counter is `heap` and whose limit
 * counting held_state is state_limit (0: none). One reference. NULL when out of memory. */
interp__account *interp__account_new(interp__budget *budget, const atomic_size_t *heap,
                                     size_t state_limit);
void interp__account_retain(interp__account *a);
/* The state is going: later charges count no heap (the account may outlive the state: a
 * future it pays for). NULL-safe. */
void interp__account_detach(interp__account *a);
/* Drop a reference; the last gives back what the account reserved. NULL-safe. */
void interp__account_release(interp__account *a);
/* Charge n bytes (for_state: also against the state's limit). INTERP_OK; INTERP_ERR_NOMEM with
 * the reason in why (whylen bytes, may be NULL) when it would pass the state's limit or the
 * pool's budget (nothing charged then). NULL-safe: a NULL account accepts everything. */
int interp__account_charge(interp__account *a, size_t n, bool for_state, char *why, size_t whylen);
/* Give back n bytes charged with the same for_state. NULL-safe. Any thread. */
void interp__account_refund(interp__account *a, size_t n, bool for_state);

#endif
