/* chan.c - the channel: a bounded MPMC FIFO of message pointers, blocking with monotonic
 * deadlines, close, cancellable waits. Select lives in chan_select.c; the struct body and
 * what the two files share, in chan_core.h.
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
 * machine, so a caller about to block first spins (interp__spin, base/spin.h) for up to 20 us,
 * watching head and tail (plain atomic reads), and only then sleeps. Sleeping and waking
 * follow Dekker's pattern: a waiter announces itself (interest[its side], seq_cst), then tries
 * the queue once more, then sleeps, all under the mutex; the other side changes the queue and
 * reads the interest count, and only when it is non-zero takes the mutex to signal. Every
 * access to head, tail, cell sequences and interest counts that takes part in this is seq_cst
 * (no fences: TSan does not model them; on x86 only the stores cost): either the waiter's
 * retry sees the change or the other side sees the waiter. Sleepers are counted (see
 * chan_sleepers), so a signal is sent only to a sleeper not signalled already.
 *
 * Send and receive are one algorithm seen from two sides (a sender waits for room and then
 * wakes a receiver, a receiver waits for a message and then wakes a sender): `transfer` below
 * serves both, the side a constant that the compiler folds.
 *
 * Lock order: token lock (sync.h) -> channel mutex -> select waiter mutex (chan_select.c). */
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan_core.h"
#include "spin.h"
#include "msg_charge.h"

/* How long a caller about to block spins first. Long enough to cover the other side's work
 * for one small message (a Lua encode or decode takes about a microsecond) and a short
 * preemption, short enough that a waiter that really has to wait wastes little (a sleep and
 * wake-up costs about as much). Measured: 2 us spins push the Lua ping-pong p50 from ~1.6 us
 * to ~8 us on this machine. */
#define SPIN_NS 20000u
static atomic_uint spin_ns = SPIN_NS;

/* ---- small helpers ------------------------------------------------------------------- */

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

/* Spin until ready(chans, n) holds, the token fires, or the budget (or deadline) is spent.
 * True when it is worth trying again at once. */
typedef bool (*ready_fn)(interp_chan *const *chans, size_t n);

typedef struct spin_arg {
    ready_fn ready;
    interp_chan *const *chans;
    size_t n;
    interp__cancel *tok;
} spin_arg;

static bool spin_ready(void *arg)
{
    const spin_arg *a = arg;
    return a->ready(a->chans, a->n) || chan_fired(a->tok);
}

static bool spin_wait(ready_fn ready, interp_chan *const *chans, size_t n, interp__cancel *tok,
                      const struct timespec *dl)
{
    unsigned budget = atomic_load_explicit(&spin_ns, memory_order_relaxed);
    if (budget == 0 || !spin_allowed())
        return false;
    spin_arg a = {ready, chans, n, tok};
    return interp__spin_until(spin_ready, &a, (long)budget, dl ? interp__timespec_ns(dl) : 0);
}

static bool can_send(interp_chan *const *chans, size_t n)
{
    (void)n;
    return chan_count(chans[0]) < chans[0]->capacity || chan_closed(chans[0]);
}

bool interp__chan_can_recv(interp_chan *const *chans, size_t n)
{
    size_t closed = 0;
    for (size_t i = 0; i < n; i++) {
        if (chan_count(chans[i]) > 0)
            return true;
        closed += chan_closed(chans[i]);
    }
    return closed == n;
}

bool interp__chan_spin_recv(interp_chan *const *chans, size_t n, interp__cancel *tok,
                            const struct timespec *dl)
{
    return spin_wait(interp__chan_can_recv, chans, n, tok, dl);
}

/* ---- the lock-free ring ---------------------------------------------------------------- */

/* INTERP_OK (m queued, with the account that pays for it), INTERP_ERR_CLOSED,
 * INTERP_ERR_AGAIN (full). */
static int ring_push(interp_chan *ch, interp_msg *m, interp__account *acct)
{
    size_t pos = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    for (;;) {
        if (pos & CHAN_CLOSED_BIT)
            return INTERP_ERR_CLOSED;
        chan_cell *c = &ch->ring[pos & ch->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_seq_cst);
        intptr_t dif = (intptr_t)(seq - pos);
        if (dif == 0) {
            /* a capacity below the ring size is enforced against head */
            if (ch->capacity <= ch->mask &&
                pos - atomic_load_explicit(&ch->head, memory_order_seq_cst) >= ch->capacity)
                return INTERP_ERR_AGAIN;
            if (atomic_compare_exchange_weak_explicit(&ch->tail, &pos, pos + 1,
                                                      memory_order_seq_cst, memory_order_relaxed)) {
                c->m = m;
                c->acct = acct;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_seq_cst);
                return INTERP_OK;
            }
        } else if (dif < 0) { /* the cell still holds the message of the previous lap: full */
            return chan_closed(ch) ? INTERP_ERR_CLOSED : INTERP_ERR_AGAIN;
        } else {
            pos = atomic_load_explicit(&ch->tail, memory_order_relaxed);
        }
    }
}

/* INTERP_OK (*out taken, its sender refunded), INTERP_ERR_CLOSED (closed and drained),
 * INTERP_ERR_AGAIN (empty). */
static int ring_pop(interp_chan *ch, interp_msg **out)
{
    size_t pos = atomic_load_explicit(&ch->head, memory_order_relaxed);
    for (;;) {
        chan_cell *c = &ch->ring[pos & ch->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_seq_cst);
        intptr_t dif = (intptr_t)(seq - (pos + 1));
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&ch->head, &pos, pos + 1,
                                                      memory_order_seq_cst, memory_order_relaxed)) {
                interp_msg *m = c->m;
                interp__account *acct = c->acct;
                c->m = NULL;
                c->acct = NULL;
                atomic_store_explicit(&c->seq, pos + ch->mask + 1, memory_order_seq_cst);
                if (acct) { /* received: the sender stops paying (an account's lock is a leaf) */
                    interp__account_refund(acct, interp__msg_charge(m), true);
                    interp__account_release(acct);
                }
                *out = m;
                return INTERP_OK;
            }
        } else if (dif < 0) { /* nothing published at pos */
            size_t t = atomic_load_explicit(&ch->tail, memory_order_seq_cst);
            if (!(t & CHAN_CLOSED_BIT))
                return INTERP_ERR_AGAIN;
            if ((t & ~CHAN_CLOSED_BIT) == pos)
                return INTERP_ERR_CLOSED; /* pos is head or behind it, and head <= tail */
            /* closed, but a sender that claimed pos before the close is still writing it
             * (or pos is stale): look again; the write is a few instructions away */
            interp__cpu_relax();
            pos = atomic_load_explicit(&ch->head, memory_order_relaxed);
        } else {
            pos = atomic_load_explicit(&ch->head, memory_order_relaxed);
        }
    }
}

/* One attempt of `side` without waiting: a sender pushes *slot (paid by acct), a receiver pops
 * into *slot. */
static inline int attempt(interp_chan *ch, int side, interp_msg **slot, interp__account *acct)
{
    return side == CHAN_SENDER ? ring_push(ch, *slot, acct) : ring_pop(ch, slot);
}

/* Whether `side` could go on now: room for a sender, a message for a receiver. */
static inline bool has_room_or_msg(const interp_chan *ch, int side)
{
    return side == CHAN_SENDER ? chan_count(ch) < ch->capacity : chan_count(ch) > 0;
}

/* ---- waking ------------------------------------------------------------------------------ */

/* Claim a sleeper to signal (see chan_sleepers): true when the caller must signal. mu held. */
static bool claim(chan_sleepers *s)
{
    if (s->waiting <= s->woken)
        return false;
    s->woken++;
    return true;
}

/* Sleep on w's condition variable (mu held), counted in w. False once the deadline has passed. */
static bool sleep_on(chan_waiters *w, pthread_mutex_t *mu, const struct timespec *dl)
{
    w->s.waiting++;
    bool ok = interp__cond_wait_until(&w->cv, mu, dl);
    w->s.waiting--;
    if (w->s.woken > 0)
        w->s.woken--;
    return ok;
}

/* Wake one sleeping waiter of `side`, if any: a sender after a message went out, a receiver
 * (and every blocked select) after one went in. */
static void wake(interp_chan *ch, int side)
{
    if (atomic_load_explicit(&ch->interest[side], memory_order_seq_cst) == 0)
        return;
    interp__mutex_lock(&ch->mu);
    if (side == CHAN_RECEIVER && ch->selectors)
        interp__chan_fire_selectors_locked(ch);
    if (side == CHAN_SENDER && ch->send_watch)
        interp__chan_fire_senders_locked(ch);
    bool signal = claim(&ch->waiters[side].s);
    interp__mutex_unlock(&ch->mu);
    if (signal)
        interp__cond_signal(&ch->waiters[side].cv);
}

/* ---- lifetime -------------------------------------------------------------------------- */

size_t interp__chan_footprint(size_t capacity)
{
    size_t cells = 2;
    while (cells < capacity)
        cells <<= 1;
    return sizeof(interp_chan) + CHAN_CACHE_LINE + cells * sizeof(chan_cell);
}

int interp_chan_check(const char *name, size_t len, size_t capacity, const char **why)
{
    _Static_assert(INTERP_CHAN_MAX_CAPACITY == 1048576 && INTERP_CHAN_MAX_NAME == 256,
                   "the texts below");
    *why = NULL;
    if (capacity > INTERP_CHAN_MAX_CAPACITY)
        *why = "capacity must be from 1 to 1048576 (0: the default)";
    else if (name && (len == 0 || len > INTERP_CHAN_MAX_NAME || memchr(name, '\0', len)))
        *why = "a channel name is 1 to 256 bytes without NUL bytes";
    return *why ? INTERP_ERR_INVALID : INTERP_OK;
}

int interp_chan_create(size_t capacity, size_t max_msg_size, interp_chan **out)
{
    if (!out)
        return INTERP_ERR_INVALID;
    *out = NULL;
    const char *why;
    if (capacity == 0 || interp_chan_check(NULL, 0, capacity, &why) != INTERP_OK)
        return INTERP_ERR_INVALID;
    size_t cells = 2; /* with one cell, "full at pos" and "free at pos + 1" look the same */
    while (cells < capacity)
        cells <<= 1;
    /* aligned: the struct keeps head and tail on cache lines of their own */
    size_t size = (sizeof(interp_chan) + CHAN_CACHE_LINE - 1) / CHAN_CACHE_LINE * CHAN_CACHE_LINE;
    interp_chan *ch = aligned_alloc(CHAN_CACHE_LINE, size);
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
        ch->ring[i].acct = NULL;
    }
    ch->mask = cells - 1;
    ch->capacity = capacity;
    ch->max_msg_size = max_msg_size;
    atomic_init(&ch->tail, 0);
    atomic_init(&ch->head, 0);
    atomic_init(&ch->refs, 1);
    interp__mutex_init(&ch->mu);
    for (int side = 0; side < 2; side++) {
        atomic_init(&ch->interest[side], 0);
        atomic_init(&ch->spin_cpu[side], -1);
        interp__cond_init(&ch->waiters[side].cv);
    }
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
    /* the last reference: by the reference rule (interp_chan.h) nobody is inside a call on ch */
    interp_msg *m;
    while (ring_pop(ch, &m) == INTERP_OK)
        interp_msg_free(m);
    free(ch->ring);
    for (int side = 0; side < 2; side++)
        interp__cond_destroy(&ch->waiters[side].cv);
    interp__mutex_destroy(&ch->mu);
    free(ch);
}

void interp_chan_close(interp_chan *ch)
{
    if (!ch)
        return;
    if (atomic_fetch_or_explicit(&ch->tail, CHAN_CLOSED_BIT, memory_order_seq_cst) &
        CHAN_CLOSED_BIT)
        return; /* closed already */
    /* a waiter checks closed under mu before it sleeps: taking mu orders this after it */
    interp__mutex_lock(&ch->mu);
    interp__chan_fire_selectors_locked(ch);
    interp__chan_fire_senders_locked(ch);
    for (int side = 0; side < 2; side++)
        if (ch->waiters[side].s.waiting)
            interp__cond_broadcast(&ch->waiters[side].cv);
    interp__mutex_unlock(&ch->mu);
}

bool interp_chan_is_closed(const interp_chan *ch) { return ch && chan_closed(ch); }
size_t interp_chan_len(const interp_chan *ch) { return ch ? chan_count(ch) : 0; }
size_t interp_chan_capacity(const interp_chan *ch) { return ch ? ch->capacity : 0; }

/* ---- send and receive ------------------------------------------------------------------- */

/* `side` found the channel not ready (full for a sender, empty for a receiver) and may wait:
 * spin, then sleep until an attempt succeeds, the channel is closed (and, for a receiver,
 * drained), the token fires or the deadline passes. Returns the last attempt's result, the
 * token's reason or INTERP_ERR_TIMEOUT. */
static int wait_and_retry(interp_chan *ch, int side, interp_msg **slot, interp__account *acct,
                          interp__cancel *tok, const struct timespec *dlp)
{
    int rc;
    atomic_store_explicit(&ch->spin_cpu[side], interp__cpu_now(), memory_order_relaxed);
    bool spun = spin_wait(side == CHAN_SENDER ? can_send : interp__chan_can_recv, &ch, 1, tok, dlp);
    atomic_store_explicit(&ch->spin_cpu[side], -1, memory_order_relaxed);
    if (spun) {
        if ((rc = chan_fired(tok)))
            return rc;
        if ((rc = attempt(ch, side, slot, acct)) != INTERP_ERR_AGAIN)
            return rc;
    }
    chan_waiters *w = &ch->waiters[side];
    bool timed_out = false;
    if (tok)
        interp__cancel_arm(tok, &ch->mu, &w->cv);
    interp__mutex_lock(&ch->mu);
    for (;;) {
        atomic_fetch_add_explicit(&ch->interest[side], 1, memory_order_seq_cst);
        rc = attempt(ch, side, slot, acct);
        if (rc == INTERP_ERR_AGAIN && chan_fired(tok))
            rc = chan_fired(tok);
        else if (rc == INTERP_ERR_AGAIN && timed_out)
            rc = INTERP_ERR_TIMEOUT;
        if (rc == INTERP_ERR_AGAIN)
            timed_out = !sleep_on(w, &ch->mu, dlp);
        atomic_fetch_sub_explicit(&ch->interest[side], 1, memory_order_relaxed);
        if (rc != INTERP_ERR_AGAIN)
            break;
    }
    interp__mutex_unlock(&ch->mu);
    if (tok)
        interp__cancel_disarm(tok);
    /* we may have consumed a signal meant for a waiter of our side that can go on: pass it on */
    if (rc != INTERP_OK && rc != INTERP_ERR_CLOSED && has_room_or_msg(ch, side))
        wake(ch, side);
    return rc;
}

/* Send (side CHAN_SENDER, *slot the message) or receive (CHAN_RECEIVER, into *slot), the
 * arguments checked already; on success wake a waiter of the other side. Inlined into both
 * callers, so that `side` is a constant there. */
static inline __attribute__((always_inline)) int transfer(interp_chan *ch, int side,
                                                          interp_msg **slot, interp__account *acct,
                                                          double timeout, interp__cancel *tok)
{
    struct timespec dl;
    const struct timespec *dlp;
    int rc = chan_deadline(timeout, &dl, &dlp);
    if (rc != INTERP_OK)
        return rc;
    if ((rc = chan_fired(tok)))
        return rc;
    rc = attempt(ch, side, slot, acct);
    if (rc == INTERP_ERR_AGAIN && timeout != 0)
        rc = wait_and_retry(ch, side, slot, acct, tok, dlp);
    if (rc == INTERP_OK) {
        int other = side == CHAN_SENDER ? CHAN_RECEIVER : CHAN_SENDER;
        /* the other side spins on this CPU: it goes on only once this thread lets go */
        int cpu = atomic_load_explicit(&ch->spin_cpu[other], memory_order_relaxed);
        if (cpu >= 0 && cpu == interp__cpu_now())
            interp__spin_yield_first();
        wake(ch, other);
    }
    return rc;
}

int interp__chan_send_paid(interp_chan *ch, interp_msg *m, double timeout, interp__cancel *tok,
                           interp__account *acct)
{
    if (!ch || !m || isnan(timeout)) /* a NaN timeout before the size limit, as ever */
        return INTERP_ERR_INVALID;
    if (ch->max_msg_size && interp_msg_size(m) > ch->max_msg_size)
        return INTERP_ERR_LIMIT;
    if (acct)
        interp__account_retain(acct); /* the cell's, dropped when m is received */
    int rc = transfer(ch, CHAN_SENDER, &m, acct, timeout, tok);
    if (rc != INTERP_OK && acct)
        interp__account_release(acct);
    return rc;
}

int interp__chan_send_c(interp_chan *ch, interp_msg *m, double timeout, interp__cancel *tok)
{
    return interp__chan_send_paid(ch, m, timeout, tok, NULL);
}

int interp__chan_recv_c(interp_chan *ch, double timeout, interp__cancel *tok, interp_msg **out)
{
    if (!out)
        return INTERP_ERR_INVALID;
    *out = NULL;
    if (!ch)
        return INTERP_ERR_INVALID;
    return transfer(ch, CHAN_RECEIVER, out, NULL, timeout, tok);
}

int interp__chan_try_take(interp_chan *ch, interp_msg **out)
{
    int rc = ring_pop(ch, out);
    if (rc == INTERP_OK)
        wake(ch, CHAN_SENDER);
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
