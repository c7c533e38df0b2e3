/* chan_core.h - internal to chan.c and chan_select.c: the body of interp_chan and the pieces
 * of the channel that select shares with send and receive.
 *
 * chan.c owns the ring, sleeping and waking, lifetime, send and receive; chan_select.c owns
 * the select waiters (a list per channel, fired by every send and by close). Nothing outside
 * these two files includes this header: the rest of the library sees the channel through
 * interp_chan.h and chan_impl.h.
 *
 * Lock order: token lock (sync.h) -> channel mutex -> select waiter mutex. */
#ifndef INTERP_CHAN_CORE_H
#define INTERP_CHAN_CORE_H

#include <limits.h>
#include <math.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "budget.h"
#include "chan_impl.h"

enum { CHAN_CACHE_LINE = 64 };
#define CHAN_CLOSED_BIT ((size_t)1 << (sizeof(size_t) * CHAR_BIT - 1))

/* The two kinds of waiter of a channel: a sender waits for room, a receiver for a message.
 * Index of interp_chan's `interest` and `waiters`. */
enum { CHAN_SENDER = 0, CHAN_RECEIVER = 1 };

/* Threads asleep on one condition variable, and how many of them were signalled and have not
 * woken yet. A signal is sent only while waiting > woken: a thread already signalled will look
 * at the queue anyway, so signalling again (a system call per message on a busy channel) would
 * be wasted. Each signal unblocks a sleeper or finds all `waiting` ones already awake, and every
 * waiter decrements both counts when it wakes, for whatever reason; so woken never exceeds the
 * number of waiters that are awake but not yet back at the queue, and a skipped signal never
 * leaves a sleeper behind. */
typedef struct chan_sleepers {
    int waiting;
    int woken;
} chan_sleepers;

typedef struct chan_waiters {
    pthread_cond_t cv; /* they sleep here */
    chan_sleepers s;   /* mu */
} chan_waiters;

typedef struct chan_cell {
    atomic_size_t seq; /* pos: free for the write at pos; pos + 1: holds the message of pos */
    interp_msg *m;
    interp__account *acct; /* who pays for m while it is queued (budget.h); NULL: nobody */
} chan_cell;

struct chan_sel_node; /* chan_select.c */

struct interp_chan {
    alignas(CHAN_CACHE_LINE) atomic_size_t tail; /* next position to write; | CLOSED_BIT */
    alignas(CHAN_CACHE_LINE) atomic_size_t head; /* next position to read */
    /* [CHAN_SENDER]: senders about to sleep; [CHAN_RECEIVER]: receivers about to sleep, and
     * blocked selects */
    alignas(CHAN_CACHE_LINE) atomic_int interest[2];
    /* [side]: the CPU of a waiter of that side spinning now, -1: none (a hint: a transfer
     * that finds the other side's spinner on its own CPU yields first in its next spin) */
    atomic_int spin_cpu[2];
    atomic_long refs;
    chan_cell *ring; /* mask + 1 cells (a power of two >= capacity) */
    size_t mask;
    size_t capacity;
    size_t max_msg_size;
    pthread_mutex_t mu;
    chan_waiters waiters[2];          /* [CHAN_SENDER], [CHAN_RECEIVER] */
    struct chan_sel_node *selectors;  /* mu: blocked selects and parked receivers (park.h) */
    struct chan_sel_node *send_watch; /* mu: parked senders waiting for room */
};

/* Messages queued (a snapshot; a send or receive in progress may count already). */
static inline size_t chan_count(const interp_chan *ch)
{
    size_t h = atomic_load_explicit((atomic_size_t *)&ch->head, memory_order_seq_cst);
    size_t t = atomic_load_explicit((atomic_size_t *)&ch->tail, memory_order_seq_cst);
    size_t n = (t & ~CHAN_CLOSED_BIT) - h; /* head read first: tail >= it */
    return n > ch->capacity ? ch->capacity : n;
}

static inline bool chan_closed(const interp_chan *ch)
{
    return atomic_load_explicit((atomic_size_t *)&ch->tail, memory_order_seq_cst) & CHAN_CLOSED_BIT;
}

/* The token's reason, 0 for none (tok may be NULL). */
static inline int chan_fired(interp__cancel *tok) { return tok ? interp__cancel_reason(tok) : 0; }

/* Parse a timeout: INTERP_ERR_INVALID for NaN; *dlp NULL for "forever" (and for 0, which
 * never waits), else the deadline in *dl. */
static inline int chan_deadline(double timeout, struct timespec *dl, const struct timespec **dlp)
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

/* ---- chan.c ------------------------------------------------------------------------------ */

/* A message is waiting on one of chans, or every one is closed (a closed channel among open
 * ones does not make a select ready: it waits on for the others). */
bool interp__chan_can_recv(interp_chan *const *chans, size_t n);
/* Spin (see chan.c) until interp__chan_can_recv(chans, n), the token fires, or the spin budget
 * (or the deadline) is spent. True when it is worth trying again at once. */
bool interp__chan_spin_recv(interp_chan *const *chans, size_t n, interp__cancel *tok,
                            const struct timespec *dl);
/* Take the oldest message without waiting, and wake a sender that waits for room.
 * INTERP_OK (*out taken), INTERP_ERR_CLOSED (closed and drained), INTERP_ERR_AGAIN (empty). */
int interp__chan_try_take(interp_chan *ch, interp_msg **out);

/* ---- chan_select.c ----------------------------------------------------------------------- */

/* Fire every blocked select and parked receiver on ch (a message went in, or ch was closed).
 * ch->mu held. */
void interp__chan_fire_selectors_locked(interp_chan *ch);
/* Fire every parked sender on ch (a message went out, or ch was closed). ch->mu held. */
void interp__chan_fire_senders_locked(interp_chan *ch);

#endif
