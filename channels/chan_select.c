/* chan_select.c - receive from whichever of several channels first has a message.
 *
 * A select first scans its channels (fairly: from the one after the channel it served last),
 * then spins like a receiver (chan.c), then blocks: it registers a waiter (its own mutex and
 * condition variable) on every channel it watches, counted in that channel's receiver
 * interest, so that a send to any of them, and close, fire it (chan.c calls
 * interp__chan_fire_selectors_locked). Then it scans again.
 *
 * Lock order: token lock (sync.h) -> channel mutex -> select waiter mutex. A selector never
 * holds its waiter's mutex while it takes a channel mutex, and unlinks its waiter from every
 * channel (under that channel's mutex) before the waiter goes away, so a sender that found the
 * waiter on the list may still touch it. */
#include <stdlib.h>

#include "budget.h"
#include "chan_core.h"
#include "park.h"
#include "ptr_hash.h"

enum { SELECT_STACK = 16 };

typedef struct sel_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool fired; /* mu: a watched channel got a message or was closed */
} sel_waiter;

typedef struct chan_sel_node {
    struct chan_sel_node *prev, *next; /* the channel's list, under the channel's mu */
    sel_waiter *w;                     /* a blocked select's, or NULL for: */
    interp__park *park;                /* a parked wait's (park.h) */
    bool first;                        /* its channel's first place in the list: registered */
} sel_node;

/* A select that served index i starts its next scan at i + 1 (per thread: a worker's selects
 * over the same channels rotate exactly; different call sites on one thread still rotate). */
static INTERP__TLS size_t select_cursor;

void interp__chan_fire_selectors_locked(interp_chan *ch)
{
    for (sel_node *s = ch->selectors; s; s = s->next) {
        if (s->park) { /* makes the context runnable: takes only the queue's lock */
            interp__park_fire(s->park);
            continue;
        }
        interp__mutex_lock(&s->w->mu);
        s->w->fired = true;
        interp__cond_signal(&s->w->cv);
        interp__mutex_unlock(&s->w->mu);
    }
}

void interp__chan_fire_senders_locked(interp_chan *ch)
{
    for (sel_node *s = ch->send_watch; s; s = s->next)
        interp__park_fire(s->park);
}

/* One pass over the channels starting at `start`: INTERP_OK (*index, *out set),
 * INTERP_ERR_CLOSED (every channel closed and drained) or INTERP_ERR_AGAIN. */
static int select_scan(interp_chan *const chans[], size_t n, size_t start, size_t *index,
                       interp_msg **out)
{
    bool all_closed = true;
    for (size_t k = 0, i = start; k < n; k++, i = i + 1 == n ? 0 : i + 1) {
        interp_chan *ch = chans[i];
        if (chan_count(ch) == 0 && !chan_closed(ch)) { /* open and empty: skip it cheaply */
            all_closed = false;
            continue;
        }
        int rc = interp__chan_try_take(ch, out);
        if (rc == INTERP_OK) {
            *index = i;
            select_cursor = i + 1;
            return INTERP_OK;
        }
        if (rc == INTERP_ERR_AGAIN)
            all_closed = false;
    }
    return all_closed ? INTERP_ERR_CLOSED : INTERP_ERR_AGAIN;
}

/* The slots of mark_firsts's set for n channels (0: none, pairwise). */
static size_t firsts_cap(size_t n)
{
    if (n <= SELECT_STACK)
        return 0;
    size_t cap = 2 * SELECT_STACK;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

/* Set nodes[i].first: chans[i] is not also at some j < i. A wait registers once per channel,
 * so a send fires each waiter once, whatever the list (a tenant's list of one channel 10^5
 * times made every send to it walk 10^5 nodes under the channel's lock). Pairwise for short
 * lists, else a set of 2n slots; false when out of memory. */
static bool mark_firsts(interp_chan *const chans[], size_t n, sel_node nodes[])
{
    if (n <= SELECT_STACK) {
        for (size_t i = 0; i < n; i++) {
            nodes[i].first = true;
            for (size_t j = 0; j < i && nodes[i].first; j++)
                nodes[i].first = chans[j] != chans[i];
        }
        return true;
    }
    size_t cap = firsts_cap(n);
    interp_chan **set = calloc(cap, sizeof *set);
    if (!set)
        return false;
    for (size_t i = 0; i < n; i++) {
        size_t k = interp__ptr_slot(chans[i], cap);
        while (set[k] && set[k] != chans[i])
            k = (k + 1) & (cap - 1);
        nodes[i].first = !set[k];
        set[k] = chans[i];
    }
    free(set);
    return true;
}

/* Register w on every channel; returns true if one already has a message or all are closed
 * (a send or close that happened before registration would otherwise be missed: the
 * registration counts in the receiver interest, so a later send sees it and fires w). */
static bool select_register(interp_chan *const chans[], size_t n, sel_node nodes[], sel_waiter *w)
{
    for (size_t i = 0; i < n; i++) {
        interp_chan *ch = chans[i];
        if (!nodes[i].first)
            continue;
        nodes[i].w = w;
        nodes[i].park = NULL;
        nodes[i].prev = NULL;
        interp__mutex_lock(&ch->mu);
        nodes[i].next = ch->selectors;
        if (ch->selectors)
            ch->selectors->prev = &nodes[i];
        ch->selectors = &nodes[i];
        atomic_fetch_add_explicit(&ch->interest[CHAN_RECEIVER], 1, memory_order_seq_cst);
        interp__mutex_unlock(&ch->mu);
    }
    return interp__chan_can_recv(chans, n);
}

static void select_unregister(interp_chan *const chans[], size_t n, sel_node nodes[])
{
    for (size_t i = 0; i < n; i++) {
        interp_chan *ch = chans[i];
        if (!nodes[i].first)
            continue;
        interp__mutex_lock(&ch->mu);
        if (nodes[i].prev)
            nodes[i].prev->next = nodes[i].next;
        else
            ch->selectors = nodes[i].next;
        if (nodes[i].next)
            nodes[i].next->prev = nodes[i].prev;
        atomic_fetch_sub_explicit(&ch->interest[CHAN_RECEIVER], 1, memory_order_relaxed);
        interp__mutex_unlock(&ch->mu);
    }
}

/* Sleep until a watched channel fires w, the token fires, or the deadline passes. Returns the
 * token's reason, INTERP_ERR_NOMEM, or INTERP_OK (scan again). */
static int select_block(interp_chan *const chans[], size_t n, interp__cancel *tok,
                        const struct timespec *dlp)
{
    sel_node stack_nodes[SELECT_STACK];
    sel_node *nodes = stack_nodes;
    if (n > SELECT_STACK && !(nodes = malloc(n * sizeof *nodes)))
        return INTERP_ERR_NOMEM;
    if (!mark_firsts(chans, n, nodes)) {
        if (nodes != stack_nodes)
            free(nodes);
        return INTERP_ERR_NOMEM;
    }
    sel_waiter w;
    interp__mutex_init(&w.mu);
    interp__cond_init(&w.cv);
    w.fired = false;

    bool ready = select_register(chans, n, nodes, &w);
    if (tok)
        interp__cancel_arm(tok, &w.mu, &w.cv);
    interp__mutex_lock(&w.mu);
    while (!ready && !w.fired && !chan_fired(tok))
        if (!interp__cond_wait_until(&w.cv, &w.mu, dlp))
            break;
    interp__mutex_unlock(&w.mu);
    if (tok)
        interp__cancel_disarm(tok);
    select_unregister(chans, n, nodes);

    interp__cond_destroy(&w.cv);
    interp__mutex_destroy(&w.mu);
    if (nodes != stack_nodes)
        free(nodes);
    return chan_fired(tok);
}

int interp__chan_select_c(interp_chan *const chans[], size_t n, double timeout, interp__cancel *tok,
                          size_t *index, interp_msg **out)
{
    if (!out || !index)
        return INTERP_ERR_INVALID;
    *out = NULL;
    if (!chans || n == 0 || n > INTERP_WAIT_MAX_FUTURES)
        return INTERP_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!chans[i])
            return INTERP_ERR_INVALID;
    struct timespec dl;
    const struct timespec *dlp;
    int rc = chan_deadline(timeout, &dl, &dlp);
    if (rc != INTERP_OK)
        return rc;

    bool spun = false;
    for (;;) {
        if ((rc = chan_fired(tok)))
            return rc;
        rc = select_scan(chans, n, select_cursor % n, index, out);
        if (rc != INTERP_ERR_AGAIN || timeout == 0)
            return rc;
        if (dlp && interp__deadline_passed(dlp))
            return INTERP_ERR_TIMEOUT;
        if (!spun) {
            spun = true;
            if (interp__chan_spin_recv(chans, n, tok, dlp))
                continue;
        }
        if ((rc = select_block(chans, n, tok, dlp)) != INTERP_OK)
            return rc;
    }
}

int interp_chan_select(interp_chan *const chans[], size_t n, double timeout, size_t *index,
                       interp_msg **out)
{
    return interp__chan_select_c(chans, n, timeout, NULL, index, out);
}

/* ---- parked waits (park.h) ------------------------------------------------------------- */

typedef struct chan_watch {
    size_t n;
    int side;
    interp_chan **chans;   /* retained */
    interp__account *acct; /* paid `paid` bytes for this wait (retained), or NULL */
    size_t paid;
    sel_node nodes[];
} chan_watch;

size_t interp__chan_wait_bytes(size_t n)
{
    return sizeof(chan_watch) + n * (sizeof(sel_node) + sizeof(interp_chan *)) +
           firsts_cap(n) * sizeof(interp_chan *);
}

void interp__chan_watch_pay(void *reg, interp__account *acct, size_t bytes)
{
    chan_watch *cw = reg;
    interp__account_retain(acct);
    cw->acct = acct;
    cw->paid = bytes;
}

static sel_node **watch_list(interp_chan *ch, int side)
{
    return side == CHAN_SENDER ? &ch->send_watch : &ch->selectors;
}

void *interp__chan_watch(interp_chan *const chans[], size_t n, bool sender, interp__park *p,
                         bool *ready)
{
    int side = sender ? CHAN_SENDER : CHAN_RECEIVER;
    chan_watch *cw = malloc(sizeof *cw + n * sizeof(sel_node) + n * sizeof(interp_chan *));
    if (!cw)
        return NULL;
    if (!mark_firsts(chans, n, cw->nodes)) {
        free(cw);
        return NULL;
    }
    cw->n = n;
    cw->side = side;
    cw->acct = NULL;
    cw->paid = 0;
    cw->chans = (interp_chan **)(void *)&cw->nodes[n];
    for (size_t i = 0; i < n; i++) {
        interp_chan *ch = chans[i];
        cw->chans[i] = ch;
        sel_node *node = &cw->nodes[i];
        if (!node->first)
            continue;
        interp_chan_retain(ch);
        node->w = NULL;
        node->park = p;
        node->prev = NULL;
        interp__mutex_lock(&ch->mu);
        sel_node **head = watch_list(ch, side);
        node->next = *head;
        if (*head)
            (*head)->prev = node;
        *head = node;
        /* counted as a waiter of its side: a send (or receive) then takes the lock and fires */
        atomic_fetch_add_explicit(&ch->interest[side], 1, memory_order_seq_cst);
        interp__mutex_unlock(&ch->mu);
    }
    /* after registering (Dekker, as the blocking waits): a change made before it is seen
     * here, one made after it fires p */
    if (sender)
        *ready = chan_count(chans[0]) < chans[0]->capacity || chan_closed(chans[0]);
    else
        *ready = interp__chan_can_recv(chans, n);
    return cw;
}

void interp__chan_unwatch(void *reg)
{
    chan_watch *cw = reg;
    if (!cw)
        return;
    for (size_t i = 0; i < cw->n; i++) {
        interp_chan *ch = cw->chans[i];
        sel_node *node = &cw->nodes[i];
        if (!node->first)
            continue;
        interp__mutex_lock(&ch->mu);
        if (node->prev)
            node->prev->next = node->next;
        else
            *watch_list(ch, cw->side) = node->next;
        if (node->next)
            node->next->prev = node->prev;
        atomic_fetch_sub_explicit(&ch->interest[cw->side], 1, memory_order_relaxed);
        interp__mutex_unlock(&ch->mu);
        interp_chan_release(ch);
    }
    if (cw->acct) {
        interp__account_refund(cw->acct, cw->paid, true);
        interp__account_release(cw->acct);
    }
    free(cw);
}
