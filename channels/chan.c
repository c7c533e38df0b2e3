/* chan.c - the channel: a bounded MPMC FIFO of message pointers (a ring buffer under one
 * mutex), blocking with monotonic deadlines, close, fair select, cancellable waits.
 *
 * A message is never copied here: send moves the pointer in, receive moves it out.
 *
 * Waking: a wake-up through a condition variable costs tens of microseconds on a loaded
 * machine, so a caller about to block first spins for a few microseconds, watching the queue
 * length through a relaxed atomic read (no lock traffic), and only then sleeps. Senders and
 * receivers count the sleepers, so the other side signals only when someone sleeps and has not
 * been signalled already. A blocked
 * select registers a waiter (its own mutex and condition variable) on every channel it watches;
 * a send to any of them, and close, fire the waiter.
 *
 * Lock order: token lock (sync.h) -> channel mutex -> select waiter mutex. A selector never
 * holds its waiter's mutex while it takes a channel mutex, and unlinks its waiter from every
 * channel (under that channel's mutex) before the waiter goes away, so a sender that found the
 * waiter on its list may still touch it. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan_impl.h"
#include "msg_impl.h"

enum { RING_MIN = 16, SELECT_STACK = 16 };
/* How long a caller about to block spins first. Long enough to cover the other side's work
 * for one small message (a Lua encode or decode takes about a microsecond), short enough that
 * a waiter that really has to wait wastes little. */
#define SPIN_NS 20000u

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
 * number of waiters that are awake but not yet back in the queue, and a skipped signal never
 * leaves a sleeper behind. */
typedef struct sleepers {
    int waiting;
    int woken;
} sleepers;

struct interp_chan {
    pthread_mutex_t mu;
    pthread_cond_t not_empty; /* receivers sleep here */
    pthread_cond_t not_full;  /* senders sleep here */
    interp_msg **ring;        /* mu: `slots` entries, the oldest at head */
    size_t slots;             /* mu: allocated entries, grown on demand up to capacity */
    size_t head;              /* mu */
    atomic_size_t count;      /* written under mu; read without it for spinning and len */
    atomic_bool closed;       /* written under mu */
    sleepers receivers;       /* mu: on not_empty */
    sleepers senders;         /* mu: on not_full */
    sel_node *selectors;      /* mu: blocked selects watching this channel */
    size_t capacity;
    size_t max_msg_size;
    atomic_long refs;
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

static inline size_t count_of(const interp_chan *ch)
{
    return atomic_load_explicit((atomic_size_t *)&ch->count, memory_order_relaxed);
}

static inline bool closed_of(const interp_chan *ch)
{
    return atomic_load_explicit((atomic_bool *)&ch->closed, memory_order_relaxed);
}

static inline int fired(interp__cancel *tok) { return tok ? interp__cancel_reason(tok) : 0; }

/* Spin until ready(ch, arg) holds, the token fires, or the budget is spent. True when it is
 * worth trying again at once. */
typedef bool (*ready_fn)(interp_chan *const *chans, size_t n);

static bool spin_wait(ready_fn ready, interp_chan *const *chans, size_t n, interp__cancel *tok,
                      const struct timespec *dl)
{
    if (!spin_allowed())
        return false;
    uint64_t end = now_ns() + SPIN_NS;
    if (dl) {
        uint64_t d = (uint64_t)dl->tv_sec * 1000000000u + (uint64_t)dl->tv_nsec;
        if (d < end)
            end = d;
    }
    for (unsigned i = 1;; i++) {
        if (ready(chans, n) || fired(tok))
            return true;
        cpu_relax();
        if ((i & 31) == 0 && now_ns() >= end)
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

/* ---- queue operations, under ch->mu -------------------------------------------------- */

static bool ring_grow(interp_chan *ch)
{
    size_t slots = ch->slots > ch->capacity / 2 ? ch->capacity : ch->slots * 2;
    interp_msg **ring = malloc(slots * sizeof *ring);
    if (!ring)
        return false;
    size_t n = count_of(ch);
    for (size_t i = 0, j = ch->head; i < n; i++) {
        ring[i] = ch->ring[j];
        if (++j == ch->slots)
            j = 0;
    }
    free(ch->ring);
    ch->ring = ring;
    ch->slots = slots;
    ch->head = 0;
    return true;
}

/* Claim a sleeper to signal (see sleepers): true when the caller must signal. */
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

/* Wake whoever waits for a message on ch: one sleeping receiver (returned: signal it after
 * unlocking) and every blocked select. */
static bool wake_receivers_locked(interp_chan *ch)
{
    for (sel_node *s = ch->selectors; s; s = s->next) {
        interp__mutex_lock(&s->w->mu);
        s->w->fired = true;
        interp__cond_signal(&s->w->cv);
        interp__mutex_unlock(&s->w->mu);
    }
    return claim(&ch->receivers);
}

/* INTERP_OK (m queued; *signal says a receiver must be signalled), INTERP_ERR_CLOSED,
 * INTERP_ERR_AGAIN (full), INTERP_ERR_NOMEM (the ring could not grow). */
static int try_send_locked(interp_chan *ch, interp_msg *m, bool *signal)
{
    if (closed_of(ch))
        return INTERP_ERR_CLOSED;
    size_t n = count_of(ch);
    if (n >= ch->capacity)
        return INTERP_ERR_AGAIN;
    if (n == ch->slots && !ring_grow(ch))
        return INTERP_ERR_NOMEM;
    size_t tail = ch->head + n;
    if (tail >= ch->slots)
        tail -= ch->slots;
    ch->ring[tail] = m;
    atomic_store_explicit(&ch->count, n + 1, memory_order_relaxed);
    *signal = wake_receivers_locked(ch);
    return INTERP_OK;
}

/* INTERP_OK (*out taken; *signal says a sender must be signalled), INTERP_ERR_CLOSED (closed
 * and drained), INTERP_ERR_AGAIN (empty). */
static int try_recv_locked(interp_chan *ch, interp_msg **out, bool *signal)
{
    size_t n = count_of(ch);
    if (n == 0)
        return closed_of(ch) ? INTERP_ERR_CLOSED : INTERP_ERR_AGAIN;
    *out = ch->ring[ch->head];
    ch->ring[ch->head] = NULL;
    if (++ch->head == ch->slots)
        ch->head = 0;
    atomic_store_explicit(&ch->count, n - 1, memory_order_relaxed);
    *signal = claim(&ch->senders);
    return INTERP_OK;
}

/* ---- lifetime -------------------------------------------------------------------------- */

/* The channel mutex is held for a few instructions at a time by threads on different cores:
 * an adaptive mutex spins briefly on contention instead of sleeping in the kernel at once. */
static void chan_mutex_init(pthread_mutex_t *mu)
{
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) == 0) {
        int rv = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
        if (rv == 0)
            rv = pthread_mutex_init(mu, &a);
        pthread_mutexattr_destroy(&a);
        if (rv == 0)
            return;
    }
#endif
    interp__mutex_init(mu);
}

int interp_chan_create(size_t capacity, size_t max_msg_size, interp_chan **out)
{
    if (!out)
        return INTERP_ERR_INVALID;
    *out = NULL;
    if (capacity == 0 || capacity > SIZE_MAX / sizeof(interp_msg *))
        return INTERP_ERR_INVALID;
    interp_chan *ch = calloc(1, sizeof *ch);
    if (!ch)
        return INTERP_ERR_NOMEM;
    ch->slots = capacity < RING_MIN ? capacity : RING_MIN;
    ch->ring = calloc(ch->slots, sizeof *ch->ring);
    if (!ch->ring) {
        free(ch);
        return INTERP_ERR_NOMEM;
    }
    chan_mutex_init(&ch->mu);
    interp__cond_init(&ch->not_empty);
    interp__cond_init(&ch->not_full);
    atomic_init(&ch->count, 0);
    atomic_init(&ch->closed, false);
    atomic_init(&ch->refs, 1);
    ch->capacity = capacity;
    ch->max_msg_size = max_msg_size;
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
    /* last reference: nobody else can be inside a call on ch */
    for (size_t i = 0, j = ch->head, n = count_of(ch); i < n; i++) {
        interp_msg_free(ch->ring[j]);
        if (++j == ch->slots)
            j = 0;
    }
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
    interp__mutex_lock(&ch->mu);
    if (!closed_of(ch)) {
        atomic_store_explicit(&ch->closed, true, memory_order_relaxed);
        wake_receivers_locked(ch);
        if (ch->receivers.waiting)
            interp__cond_broadcast(&ch->not_empty);
        if (ch->senders.waiting)
            interp__cond_broadcast(&ch->not_full);
    }
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

    bool signal = false;
    interp__mutex_lock(&ch->mu);
    rc = try_send_locked(ch, m, &signal);
    interp__mutex_unlock(&ch->mu);
    if (rc == INTERP_ERR_AGAIN && timeout != 0 && spin_wait(can_send, &ch, 1, tok, dlp)) {
        if ((rc = fired(tok)))
            return rc;
        interp__mutex_lock(&ch->mu);
        rc = try_send_locked(ch, m, &signal);
        interp__mutex_unlock(&ch->mu);
    }
    if (rc == INTERP_ERR_AGAIN && timeout != 0) {
        bool timed_out = false, pass_on = false;
        if (tok)
            interp__cancel_arm(tok, &ch->mu, &ch->not_full);
        interp__mutex_lock(&ch->mu);
        for (;;) {
            rc = try_send_locked(ch, m, &signal);
            if (rc != INTERP_ERR_AGAIN)
                break;
            if ((rc = fired(tok)))
                break;
            if (timed_out) {
                rc = INTERP_ERR_TIMEOUT;
                break;
            }
            timed_out = !sleep_on(&ch->senders, &ch->not_full, &ch->mu, dlp);
        }
        /* We may have consumed a signal meant for a sender that can go on: pass it on. */
        if (rc != INTERP_OK && count_of(ch) < ch->capacity && !closed_of(ch))
            pass_on = claim(&ch->senders);
        interp__mutex_unlock(&ch->mu);
        if (tok)
            interp__cancel_disarm(tok);
        if (pass_on)
            interp__cond_signal(&ch->not_full);
    }
    if (signal)
        interp__cond_signal(&ch->not_empty);
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

    bool signal = false;
    interp__mutex_lock(&ch->mu);
    rc = try_recv_locked(ch, out, &signal);
    interp__mutex_unlock(&ch->mu);
    if (rc == INTERP_ERR_AGAIN && timeout != 0 && spin_wait(can_recv, &ch, 1, tok, dlp)) {
        if ((rc = fired(tok)))
            return rc;
        interp__mutex_lock(&ch->mu);
        rc = try_recv_locked(ch, out, &signal);
        interp__mutex_unlock(&ch->mu);
    }
    if (rc == INTERP_ERR_AGAIN && timeout != 0) {
        bool timed_out = false, pass_on = false;
        if (tok)
            interp__cancel_arm(tok, &ch->mu, &ch->not_empty);
        interp__mutex_lock(&ch->mu);
        for (;;) {
            rc = try_recv_locked(ch, out, &signal);
            if (rc != INTERP_ERR_AGAIN)
                break;
            if ((rc = fired(tok)))
                break;
            if (timed_out) {
                rc = INTERP_ERR_TIMEOUT;
                break;
            }
            timed_out = !sleep_on(&ch->receivers, &ch->not_empty, &ch->mu, dlp);
        }
        if (rc != INTERP_OK && count_of(ch) > 0)
            pass_on = claim(&ch->receivers);
        interp__mutex_unlock(&ch->mu);
        if (tok)
            interp__cancel_disarm(tok);
        if (pass_on)
            interp__cond_signal(&ch->not_empty);
    }
    if (signal)
        interp__cond_signal(&ch->not_full);
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
        if (count_of(ch) == 0 && !closed_of(ch)) { /* open and empty: skip without locking */
            all_closed = false;
            continue;
        }
        bool signal = false;
        interp__mutex_lock(&ch->mu);
        int rc = try_recv_locked(ch, out, &signal);
        interp__mutex_unlock(&ch->mu);
        if (signal)
            interp__cond_signal(&ch->not_full);
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

/* Register w on every channel; returns true if one already has a message or all are closed
 * (a send or close that happened before registration would otherwise be missed). */
static bool select_register(interp_chan *const chans[], size_t n, sel_node nodes[], sel_waiter *w)
{
    bool ready = false;
    size_t closed = 0;
    for (size_t i = 0; i < n; i++) {
        interp_chan *ch = chans[i];
        nodes[i].w = w;
        nodes[i].prev = NULL;
        interp__mutex_lock(&ch->mu);
        nodes[i].next = ch->selectors;
        if (ch->selectors)
            ch->selectors->prev = &nodes[i];
        ch->selectors = &nodes[i];
        if (count_of(ch) > 0)
            ready = true;
        closed += closed_of(ch);
        interp__mutex_unlock(&ch->mu);
    }
    return ready || closed == n;
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
