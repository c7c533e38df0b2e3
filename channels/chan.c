/* chan.c - the channel: a bounded MPMC FIFO of message pointers, blocking with monotonic
 * deadlines, close, fair select, cancellable waits.
 *
 * A message is never copied here: send moves the pointer in, receive moves it out.
 *
 * The queue is lock-free (D. Vyukov's bounded MPMC ring: each cell carries a sequence number
 * telling whether it is ready to be written or read at a given position; head and tail are
 * claimed with compare-and-swap), so a sender and a receiver on two cores touch the mutex
 * only to sleep or to wake a sleeper. Close sets the top bit of tail: a send's CAS on tail
 * then fails, so no message can slip in after close (the check and the claim are one atomic
 * step).
 *
 * Blocking: a wake-up through a condition variable costs tens of microseconds on a loaded
 * machine, so a caller about to block first spins (pause, then sched_yield) for up to 20 us,
 * watching head and tail (plain atomic reads), and only then sleeps. Sleeping and waking follow Dekker's pattern: a
 * waiter announces itself (recv_interest/send_interest, seq_cst), then tries the queue once
 * more, then sleeps, all under the mutex; the other side changes the queue and reads the
 * interest count, and only when it is non-zero takes the mutex to signal. Every access to
 * head, tail, cell sequences and interest counts that takes part in this is seq_cst (no
 * fences: TSan does not model them; on x86 only the stores cost): either the waiter's retry
 * sees the change or the other side sees the waiter. Sleepers are counted (see `sleepers`),
 * so a signal is sent only to a sleeper not signalled already.
 *
 * A blocked select registers a waiter (its own mutex and condition variable) on every channel
 * it watches (counted in recv_interest too); a send to any of them, and close, fire it.
 *
 * Lock order: token lock (sync.h) -> channel mutex -> select waiter mutex. A selector never
 * holds its waiter's mutex while it takes a channel mutex, and unlinks its waiter from every
 * channel (under that channel's mutex) before the waiter goes away, so a sender that found the
 * waiter on the list may still touch it. */
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan_impl.h"
#include "msg_impl.h"

enum { SELECT_STACK = 16, CACHE_LINE = 64 };
/* How long a caller about to block spins first. Long enough to cover the other side's work
 * for one small message (a Lua encode or decode takes about a microsecond) and a short
 * preemption, short enough that a waiter that really has to wait wastes little (a sleep and
 * wake-up costs about as much). Measured: 2 us spins push the Lua ping-pong p50 from ~1.6 us
 * to ~8 us on this machine. */
#define SPIN_NS 20000u
static atomic_uint spin_ns = SPIN_NS;
#define CLOSED_BIT ((size_t)1 << (sizeof(size_t) * CHAR_BIT - 1))

typedef struct sel_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool fired; /* mu: a watched channel got a message or was closed */
} sel_waiter;

typedef struct sel_node {
    struct sel_node *prev, *next; /* the channel's list, under the channel's mu */
    sel_waiter *w;
} sel_node;

/* Threads asleep on one condition variable, and how many of them were signalled and have not
 * woken yet. A signal is sent only while waiting > woken: a thread already signalled will look
 * at the queue anyway, so signalling again (a system call per message on a busy channel) would
 * be wasted. Each signal unblocks a sleeper or finds all `waiting` ones already awake, and every
 * waiter decrements both counts when it wakes, for whatever reason; so woken never exceeds the
 * number of waiters that are awake but not yet back at the queue, and a skipped signal never
 * leaves a sleeper behind. */
typedef struct sleepers {
    int waiting;
    int woken;
} sleepers;

typedef struct cell {
    atomic_size_t seq; /* pos: free for the write at pos; pos + 1: holds the message of pos */
    interp_msg *m;
} cell;

struct interp_chan {
    alignas(CACHE_LINE) atomic_size_t tail; /* next position to write; | CLOSED_BIT */
    alignas(CACHE_LINE) atomic_size_t head; /* next position to read */
    alignas(CACHE_LINE) atomic_int recv_interest; /* receivers about to sleep + selectors */
    atomic_int send_interest;                     /* senders about to sleep */
    atomic_long refs;
    cell *ring;          /* mask + 1 cells (a power of two >= capacity) */
    size_t mask;
    size_t capacity;
    size_t max_msg_size;
    pthread_mutex_t mu;
    pthread_cond_t not_empty; /* receivers sleep here */
    pthread_cond_t not_full;  /* senders sleep here */
    sleepers receivers;       /* mu */
    sleepers senders;         /* mu */
    sel_node *selectors;      /* mu: blocked selects watching this channel */
};

/* A select that served index i starts its next scan at i + 1 (per thread: a worker's selects
 * over the same channels rotate exactly; different call sites on one thread still rotate). */
static _Thread_local size_t select_cursor;

/* ---- small helpers ------------------------------------------------------------------- */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void interp__chan_set_spin(unsigned ns)
{
    atomic_store_explicit(&spin_ns, ns, memory_order_relaxed);
}

/* Spinning only helps when the other side can run meanwhile. */
static bool spin_allowed(void)
{
    static atomic_int ncpu; /* 0: not yet known */
    int n = atomic_load_explicit(&ncpu, memory_order_relaxed);
    if (n == 0) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        n = v > 0 ? (int)v : 1;
        atomic_store_explicit(&ncpu, n, memory_order_relaxed);
    }
    return n > 1;
}

/* Messages queued (a snapshot; a send or receive in progress may count already). */
static inline size_t count_of(const interp_chan *ch)
{
    size_t h = atomic_load_explicit((atomic_size_t *)&ch->head, memory_order_seq_cst);
    size_t t = atomic_load_explicit((atomic_size_t *)&ch->tail, memory_order_seq_cst);
    size_t n = (t & ~CLOSED_BIT) - h; /* head read first: tail >= it */
    return n > ch->capacity ? ch->capacity : n;
}

static inline bool closed_of(const interp_chan *ch)
{
    return atomic_load_explicit((atomic_size_t *)&ch->tail, memory_order_seq_cst) & CLOSED_BIT;
}

static inline int fired(interp__cancel *tok) { return tok ? interp__cancel_reason(tok) : 0; }

/* Spin until ready(chans, n) holds, the token fires, or the budget (or deadline) is spent.
 * True when it is worth trying again at once. */
typedef bool (*ready_fn)(interp_chan *const *chans, size_t n);

static bool spin_wait(ready_fn ready, interp_chan *const *chans, size_t n, interp__cancel *tok,
                      const struct timespec *dl)
{
    unsigned budget = atomic_load_explicit(&spin_ns, memory_order_relaxed);
    if (budget == 0 || !spin_allowed())
        return false;
    uint64_t end = now_ns() + budget;
    if (dl) {
        uint64_t d = (uint64_t)dl->tv_sec * 1000000000u + (uint64_t)dl->tv_nsec;
        if (d < end)
            end = d;
    }
    for (unsigned i = 1;; i++) {
        if (ready(chans, n) || fired(tok))
            return true;
        /* pause first; later yield too, so that on a machine with more runnable threads than
         * cores the thread we wait for gets to run (it may share our core) */
        if (i < 256)
            cpu_relax();
        else
            sched_yield();
        if ((i & 15) == 0 && now_ns() >= end)
            return false;
    }
}

static bool can_send(interp_chan *const *chans, size_t n)
{
    (void)n;
    return count_of(chans[0]) < chans[0]->capacity || closed_of(chans[0]);
}

/* A message is waiting, or every channel is closed (a closed channel among open ones does not
 * make a select ready: it waits on for the others). */
static bool can_recv(interp_chan *const *chans, size_t n)
{
    size_t closed = 0;
    for (size_t i = 0; i < n; i++) {
        if (count_of(chans[i]) > 0)
            return true;
        closed += closed_of(chans[i]);
    }
    return closed == n;
}

/* Parse a timeout: INTERP_ERR_INVALID for NaN; *dlp NULL for "forever" (and for 0, which
 * never waits), else the deadline in *dl. */
static int deadline_of(double timeout, struct timespec *dl, const struct timespec **dlp)
{
    if (isnan(timeout))
        return INTERP_ERR_INVALID;
    *dlp = NULL;
    if (timeout > 0) {
        *dl = interp__deadline_in(timeout);
        *dlp = dl;
    }
    return INTERP_OK;
}

/* ---- the lock-free ring ---------------------------------------------------------------- */

/* INTERP_OK (m queued), INTERP_ERR_CLOSED, INTERP_ERR_AGAIN (full). */
static int ring_push(interp_chan *ch, interp_msg *m)
{
    size_t pos = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    for (;;) {
        if (pos & CLOSED_BIT)
            return INTERP_ERR_CLOSED;
        cell *c = &ch->ring[pos & ch->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_seq_cst);
        intptr_t dif = (intptr_t)(seq - pos);
        if (dif == 0) {
            /* a capacity below the ring size is enforced against head */
            if (ch->capacity <= ch->mask &&
                pos - atomic_load_explicit(&ch->head, memory_order_seq_cst) >= ch->capacity)
                return INTERP_ERR_AGAIN;
            if (atomic_compare_exchange_weak_explicit(&ch->tail, &pos, pos + 1,
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                c->m = m;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_seq_cst);
                return INTERP_OK;
            }
        } else if (dif < 0) { /* the cell still holds the message of the previous lap: full */
            return closed_of(ch) ? INTERP_ERR_CLOSED : INTERP_ERR_AGAIN;
        } else {
            pos = atomic_load_explicit(&ch->tail, memory_order_relaxed);
        }
    }
}

/* INTERP_OK (*out taken), INTERP_ERR_CLOSED (closed and drained), INTERP_ERR_AGAIN (empty). */
static int ring_pop(interp_chan *ch, interp_msg **out)
{
    size_t pos = atomic_load_explicit(&ch->head, memory_order_relaxed);
    for (;;) {
        cell *c = &ch->ring[pos & ch->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_seq_cst);
        intptr_t dif = (intptr_t)(seq - (pos + 1));
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&ch->head, &pos, pos + 1,
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                *out = c->m;
                c->m = NULL;
                atomic_store_explicit(&c->seq, pos + ch->mask + 1, memory_order_seq_cst);
                return INTERP_OK;
            }
        } else if (dif < 0) { /* nothing published at pos */
            size_t t = atomic_load_explicit(&ch->tail, memory_order_seq_cst);
            if (!(t & CLOSED_BIT))
                return INTERP_ERR_AGAIN;
            if ((t & ~CLOSED_BIT) == pos)
                return INTERP_ERR_CLOSED; /* pos is head or behind it, and head <= tail */
            /* closed, but a sender that claimed pos before the close is still writing it
             * (or pos is stale): look again; the write is a few instructions away */
            cpu_relax();
            pos = atomic_load_explicit(&ch->head, memory_order_relaxed);
        } else {
            pos = atomic_load_explicit(&ch->head, memory_order_relaxed);
        }
    }
}

/* ---- waking ------------------------------------------------------------------------------ */

/* Claim a sleeper to signal (see sleepers): true when the caller must signal. mu held. */
static bool claim(sleepers *s)
{
    if (s->waiting <= s->woken)
        return false;
    s->woken++;
    return true;
}

/* Sleep on cv (mu held), counted in s. False once the deadline has passed. */
static bool sleep_on(sleepers *s, pthread_cond_t *cv, pthread_mutex_t *mu,
                     const struct timespec *dl)
{
    s->waiting++;
    bool ok = interp__cond_wait_until(cv, mu, dl);
    s->waiting--;
    if (s->woken > 0)
        s->woken--;
    return ok;
}

/* Fire every blocked select on ch. mu held. */
static void fire_selectors_locked(interp_chan *ch)
{
    for (sel_node *s = ch->selectors; s; s = s->next) {
        interp__mutex_lock(&s->w->mu);
        s->w->fired = true;
        interp__cond_signal(&s->w->cv);
        interp__mutex_unlock(&s->w->mu);
    }
}

/* After a message went in: wake one sleeping receiver and every blocked select, if any. */
static void notify_receivers(interp_chan *ch)
{
    if (atomic_load_explicit(&ch->recv_interest, memory_order_seq_cst) == 0)
        return;
    interp__mutex_lock(&ch->mu);
    fire_selectors_locked(ch);
    bool signal = claim(&ch->receivers);
    interp__mutex_unlock(&ch->mu);
    if (signal)
        interp__cond_signal(&ch->not_empty);
}

/* After a message went out: wake one sleeping sender, if any. */
static void notify_senders(interp_chan *ch)
{
    if (atomic_load_explicit(&ch->send_interest, memory_order_seq_cst) == 0)
        return;
    interp__mutex_lock(&ch->mu);
    bool signal = claim(&ch->senders);
    interp__mutex_unlock(&ch->mu);
    if (signal)
        interp__cond_signal(&ch->not_full);
}

/* ---- lifetime -------------------------------------------------------------------------- */

int interp_chan_create(size_t capacity, size_t max_msg_size, interp_chan **out)
{
    if (!out)
        return INTERP_ERR_INVALID;
    *out = NULL;
    if (capacity == 0 || capacity > (SIZE_MAX >> 2) / sizeof(cell))
        return INTERP_ERR_INVALID;
    size_t cells = 2; /* with one cell, "full at pos" and "free at pos + 1" look the same */
    while (cells < capacity)
        cells <<= 1;
    /* aligned: the struct keeps head and tail on cache lines of their own */
    size_t size = (sizeof(interp_chan) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    interp_chan *ch = aligned_alloc(CACHE_LINE, size);
    if (!ch)
        return INTERP_ERR_NOMEM;
    memset(ch, 0, size);
    ch->ring = malloc(cells * sizeof *ch->ring);
    if (!ch->ring) {
        free(ch);
        return INTERP_ERR_NOMEM;
    }
    for (size_t i = 0; i < cells; i++) {
        atomic_init(&ch->ring[i].seq, i);
        ch->ring[i].m = NULL;
    }
    ch->mask = cells - 1;
    ch->capacity = capacity;
    ch->max_msg_size = max_msg_size;
    atomic_init(&ch->tail, 0);
    atomic_init(&ch->head, 0);
    atomic_init(&ch->recv_interest, 0);
    atomic_init(&ch->send_interest, 0);
    atomic_init(&ch->refs, 1);
    interp__mutex_init(&ch->mu);
    interp__cond_init(&ch->not_empty);
    interp__cond_init(&ch->not_full);
    *out = ch;
    return INTERP_OK;
}

void interp_chan_retain(interp_chan *ch)
{
    if (ch)
        atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
}

void interp_chan_release(interp_chan *ch)
{
    if (!ch || atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* the last reference: nobody else is inside a call on ch */
    interp_msg *m;
    while (ring_pop(ch, &m) == INTERP_OK)
        interp_msg_free(m);
    free(ch->ring);
    interp__cond_destroy(&ch->not_full);
    interp__cond_destroy(&ch->not_empty);
    interp__mutex_destroy(&ch->mu);
    free(ch);
}

void interp_chan_close(interp_chan *ch)
{
    if (!ch)
        return;
    if (atomic_fetch_or_explicit(&ch->tail, CLOSED_BIT, memory_order_seq_cst) & CLOSED_BIT)
        return; /* closed already */
    /* a waiter checks closed under mu before it sleeps: taking mu orders this after it */
    interp__mutex_lock(&ch->mu);
    fire_selectors_locked(ch);
    if (ch->receivers.waiting)
        interp__cond_broadcast(&ch->not_empty);
    if (ch->senders.waiting)
        interp__cond_broadcast(&ch->not_full);
    interp__mutex_unlock(&ch->mu);
}

bool interp_chan_is_closed(const interp_chan *ch) { return ch && closed_of(ch); }
size_t interp_chan_len(const interp_chan *ch) { return ch ? count_of(ch) : 0; }
size_t interp_chan_capacity(const interp_chan *ch) { return ch ? ch->capacity : 0; }

/* ---- send and receive ------------------------------------------------------------------- */

int interp__chan_send_c(interp_chan *ch, interp_msg *m, double timeout, interp__cancel *tok)
{
    if (!ch || !m)
        return INTERP_ERR_INVALID;
    struct timespec dl;
    const struct timespec *dlp;
    int rc = deadline_of(timeout, &dl, &dlp);
    if (rc != INTERP_OK)
        return rc;
    if (ch->max_msg_size && interp_msg_size(m) > ch->max_msg_size)
        return INTERP_ERR_LIMIT;
    if ((rc = fired(tok)))
        return rc;

    rc = ring_push(ch, m);
    if (rc == INTERP_ERR_AGAIN && timeout != 0 && spin_wait(can_send, &ch, 1, tok, dlp)) {
        if ((rc = fired(tok)))
            return rc;
        rc = ring_push(ch, m);
    }
    if (rc == INTERP_ERR_AGAIN && timeout != 0) {
        bool timed_out = false;
        if (tok)
            interp__cancel_arm(tok, &ch->mu, &ch->not_full);
        interp__mutex_lock(&ch->mu);
        for (;;) {
            atomic_fetch_add_explicit(&ch->send_interest, 1, memory_order_seq_cst);
            rc = ring_push(ch, m);
            if (rc == INTERP_ERR_AGAIN && fired(tok))
                rc = fired(tok);
            else if (rc == INTERP_ERR_AGAIN && timed_out)
                rc = INTERP_ERR_TIMEOUT;
            if (rc == INTERP_ERR_AGAIN)
                timed_out = !sleep_on(&ch->senders, &ch->not_full, &ch->mu, dlp);
            atomic_fetch_sub_explicit(&ch->send_interest, 1, memory_order_relaxed);
            if (rc != INTERP_ERR_AGAIN)
                break;
        }
        interp__mutex_unlock(&ch->mu);
        if (tok)
            interp__cancel_disarm(tok);
        /* we may have consumed a signal meant for a sender that can go on: pass it on */
        if (rc != INTERP_OK && rc != INTERP_ERR_CLOSED && count_of(ch) < ch->capacity)
            notify_senders(ch);
    }
    if (rc == INTERP_OK)
        notify_receivers(ch);
    return rc;
}

int interp__chan_recv_c(interp_chan *ch, double timeout, interp__cancel *tok, interp_msg **out)
{
    if (!out)
        return INTERP_ERR_INVALID;
    *out = NULL;
    if (!ch)
        return INTERP_ERR_INVALID;
    struct timespec dl;
    const struct timespec *dlp;
    int rc = deadline_of(timeout, &dl, &dlp);
    if (rc != INTERP_OK)
        return rc;
    if ((rc = fired(tok)))
        return rc;

    rc = ring_pop(ch, out);
    if (rc == INTERP_ERR_AGAIN && timeout != 0 && spin_wait(can_recv, &ch, 1, tok, dlp)) {
        if ((rc = fired(tok)))
            return rc;
        rc = ring_pop(ch, out);
    }
    if (rc == INTERP_ERR_AGAIN && timeout != 0) {
        bool timed_out = false;
        if (tok)
            interp__cancel_arm(tok, &ch->mu, &ch->not_empty);
        interp__mutex_lock(&ch->mu);
        for (;;) {
            atomic_fetch_add_explicit(&ch->recv_interest, 1, memory_order_seq_cst);
            rc = ring_pop(ch, out);
            if (rc == INTERP_ERR_AGAIN && fired(tok))
                rc = fired(tok);
            else if (rc == INTERP_ERR_AGAIN && timed_out)
                rc = INTERP_ERR_TIMEOUT;
            if (rc == INTERP_ERR_AGAIN)
                timed_out = !sleep_on(&ch->receivers, &ch->not_empty, &ch->mu, dlp);
            atomic_fetch_sub_explicit(&ch->recv_interest, 1, memory_order_relaxed);
            if (rc != INTERP_ERR_AGAIN)
                break;
        }
        interp__mutex_unlock(&ch->mu);
        if (tok)
            interp__cancel_disarm(tok);
        if (rc != INTERP_OK && rc != INTERP_ERR_CLOSED && count_of(ch) > 0)
            notify_receivers(ch); /* pass on a signal we may have consumed */
    }
    if (rc == INTERP_OK)
        notify_senders(ch);
    return rc;
}

int interp_chan_send(interp_chan *ch, interp_msg *m, double timeout)
{
    return interp__chan_send_c(ch, m, timeout, NULL);
}

int interp_chan_recv(interp_chan *ch, double timeout, interp_msg **out)
{
    return interp__chan_recv_c(ch, timeout, NULL, out);
}

/* ---- select ------------------------------------------------------------------------------ */

/* One pass over the channels starting at `start`: INTERP_OK (*index, *out set),
 * INTERP_ERR_CLOSED (every channel closed and drained) or INTERP_ERR_AGAIN. */
static int select_scan(interp_chan *const chans[], size_t n, size_t start, size_t *index,
                       interp_msg **out)
{
    bool all_closed = true;
    for (size_t k = 0, i = start; k < n; k++, i = i + 1 == n ? 0 : i + 1) {
        interp_chan *ch = chans[i];
        if (count_of(ch) == 0 && !closed_of(ch)) { /* open and empty: skip it cheaply */
            all_closed = false;
            continue;
        }
        int rc = ring_pop(ch, out);
        if (rc == INTERP_OK) {
            notify_senders(ch);
            *index = i;
            select_cursor = i + 1;
            return INTERP_OK;
        }
        if (rc == INTERP_ERR_AGAIN)
            all_closed = false;
    }
    return all_closed ? INTERP_ERR_CLOSED : INTERP_ERR_AGAIN;
}

/* Register w on every channel; returns true if one already has a message or all are closed
 * (a send or close that happened before registration would otherwise be missed: the
 * registration counts in recv_interest, so a later send sees it and fires w). */
static bool select_register(interp_chan *const chans[], size_t n, sel_node nodes[], sel_waiter *w)
{
    for (size_t i = 0; i < n; i++) {
        interp_chan *ch = chans[i];
        nodes[i].w = w;
        nodes[i].prev = NULL;
        interp__mutex_lock(&ch->mu);
        nodes[i].next = ch->selectors;
        if (ch->selectors)
            ch->selectors->prev = &nodes[i];
        ch->selectors = &nodes[i];
        atomic_fetch_add_explicit(&ch->recv_interest, 1, memory_order_seq_cst);
        interp__mutex_unlock(&ch->mu);
    }
    return can_recv(chans, n);
}

static void select_unregister(interp_chan *const chans[], size_t n, sel_node nodes[])
{
    for (size_t i = 0; i < n; i++) {
        interp_chan *ch = chans[i];
        interp__mutex_lock(&ch->mu);
        if (nodes[i].prev)
            nodes[i].prev->next = nodes[i].next;
        else
            ch->selectors = nodes[i].next;
        if (nodes[i].next)
            nodes[i].next->prev = nodes[i].prev;
        atomic_fetch_sub_explicit(&ch->recv_interest, 1, memory_order_relaxed);
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
    sel_waiter w;
    interp__mutex_init(&w.mu);
    interp__cond_init(&w.cv);
    w.fired = false;

    bool ready = select_register(chans, n, nodes, &w);
    if (tok)
        interp__cancel_arm(tok, &w.mu, &w.cv);
    interp__mutex_lock(&w.mu);
    while (!ready && !w.fired && !fired(tok))
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
    return fired(tok);
}

int interp__chan_select_c(interp_chan *const chans[], size_t n, double timeout,
                          interp__cancel *tok, size_t *index, interp_msg **out)
{
    if (!out || !index)
        return INTERP_ERR_INVALID;
    *out = NULL;
    if (!chans || n == 0)
        return INTERP_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!chans[i])
            return INTERP_ERR_INVALID;
    struct timespec dl;
    const struct timespec *dlp;
    int rc = deadline_of(timeout, &dl, &dlp);
    if (rc != INTERP_OK)
        return rc;

    bool spun = false;
    for (;;) {
        if ((rc = fired(tok)))
            return rc;
        rc = select_scan(chans, n, select_cursor % n, index, out);
        if (rc != INTERP_ERR_AGAIN || timeout == 0)
            return rc;
        if (dlp && interp__deadline_passed(dlp))
            return INTERP_ERR_TIMEOUT;
        if (!spun) {
            spun = true;
            if (spin_wait(can_recv, chans, n, tok, dlp))
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
