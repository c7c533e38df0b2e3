/* start.h - internal to core/: the worker start, one object per pool that knows how workers
 * come and go (start.c; docs/DESIGN.md, Workers).
 *
 * A slot gets a worker in one of four ways: as the first worker of interp_pool_create (create
 * makes its state on the calling thread while the thread starts, and hands it over), as one of
 * create's prestarted workers (each makes its state and reports), on demand for a push that
 * found no idle or starting worker, or in place of an abandoned worker (the watchdog). Each
 * has a start and an await below; shutdown's join waits on the same object.
 *
 * Locks: the growth counts are guarded by the lock of the queue the object is attached to (a
 * push decides under it); the rest by the pool lock, whose holder broadcasts `cv` at every
 * change a waiter looks at. */
#ifndef INTERP_CORE_START_H
#define INTERP_CORE_START_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "interp.h"

struct interp_pool;
struct interp__worker;

typedef struct interp__start {
    /* growth, guarded by the queue lock */
    int to_start;          /* slots that may still get a worker on demand */
    atomic_int n_starting; /* started for a push (or by create), not taking jobs yet: they count
                              as idle; changed under the queue lock, read by joins without it */
    /* slots, guarded by the pool lock */
    pthread_cond_t cv;  /* a worker started, reported or exited; a start or join ended */
    bool *slot_taken;   /* the slot has, or is getting, a worker (a failed start frees it) */
    int busy;           /* replacement starts and joins under way (a join waits them out) */
    atomic_int n_exits; /* workers that exited (joins spin on it) */
    /* create's hand-shake; changed under the pool lock, read by spinners without it */
    atomic_int init_ready; /* 0 while create compiles the initializer, then 1, or -1: failed */
    atomic_int handoff;    /* the first worker's state: 0 until create hands it over (1) or
                              gives up (-1) */
    atomic_int n_reported; /* prestarted workers that reported how their state's making went */
    int rc, rc_slot;       /* the failure reported by the lowest slot (rc INTERP_OK: none) */
    char *err;             /* its text (malloc'd), taken by interp__start_await */
} interp__start;

/* Why a worker starts (interp__worker.kind). */
enum { INTERP__SPAWN_FIRST = 1, INTERP__SPAWN_INITIAL, INTERP__SPAWN_GROW, INTERP__SPAWN_REPLACE };

/* Set up (no slot yet; init_ready 0 for a local pool, whose create compiles the initializer,
 * 1 for a backend pool). */
void interp__start_init(interp__start *s, int init_ready);
void interp__start_destroy(interp__start *s);
/* Allocate pool->slots and the slot marks for pool->nworkers slots. INTERP_OK or
 * INTERP_ERR_NOMEM (freed with the pool). */
int interp__start_alloc_slots(struct interp_pool *pool);

/* Queue lock held, from a push: `queued` jobs wait and `waiting` workers wait for jobs. true
 * when no waiting or starting worker is left for the newest job and a slot may still get a
 * worker: the start is reserved, and the pusher must call interp__start_grow. */
static inline bool interp__start_want(interp__start *s, size_t queued, int waiting)
{
    if (s->to_start <= 0)
        return false;
    int starting = atomic_load_explicit(&s->n_starting, memory_order_relaxed);
    if (queued <= (size_t)(waiting + starting))
        return false;
    s->to_start--;
    atomic_store_explicit(&s->n_starting, starting + 1, memory_order_relaxed);
    return true;
}

/* ---- create ---------------------------------------------------------------------------- */

/* Take slots 0..n-1 (n >= 1) and start their workers: slot 0 as the first worker (it waits
 * for the state create hands over), the others as prestarted ones (each makes its state and
 * reports); the other slots may start on demand. Returns how many threads started; when one
 * cannot start, those after it are not tried and *rc is INTERP_ERR_NOMEM / INTERP_ERR_SYSTEM
 * (else untouched). No lock held. */
int interp__start_initial(struct interp_pool *pool, int n, int *rc);
/* The initializer's bytecode is ready (ok) or will never be: wakes the workers waiting in
 * interp__start_await_init. */
void interp__start_compiled(struct interp_pool *pool, bool ok);
/* Give the first worker its state (NULL: create failed; it exits). With started == 0 there is
 * no first worker: state is destroyed. */
void interp__start_hand_over(struct interp_pool *pool, int started, interp_state *state);
/* Wait until the started - 1 prestarted workers have reported (spinning first: they make their
 * states in parallel in tens of microseconds). INTERP_OK, or the lowest slot's failure with its
 * text moved to *err (err may be NULL; *err is set only when NULL). */
int interp__start_await(struct interp_pool *pool, int started, char **err);

/* ---- growth and replacement ------------------------------------------------------------ */

/* Start one more worker on demand, after interp__start_want said so (on the pushing thread,
 * which pays the thread start). When the thread cannot be created, the job waits for the
 * workers there are and a later push tries again. No lock held. */
void interp__start_grow(struct interp_pool *pool);
/* Watchdog, pool lock held: a replacement for slot's abandoned worker is coming (joins wait
 * for interp__start_replace). */
void interp__start_replace_locked(struct interp_pool *pool);
/* Watchdog, no lock held, after interp__start_replace_locked: start the replacement when
 * `spawn` (else give the start up); a replacement that cannot start breaks the pool. */
void interp__start_replace(struct interp_pool *pool, int slot, bool spawn);

/* ---- the worker's side ----------------------------------------------------------------- */

/* Wait until create's initializer is compiled: 1 (ready) or -1 (failed). Returns at once for
 * states made later. */
int interp__start_await_init(struct interp_pool *pool);
/* The first worker: wait for the state create makes for it (create stores it in the worker's
 * w->state). INTERP_OK, or INTERP_ERR_CANCELLED when create gave up (create reports why). */
int interp__start_await_first(struct interp_pool *pool);
/* The worker counts as starting (interp__start_want) until its first pop: every kind but a
 * replacement (which takes the abandoned worker's place). */
bool interp__start_counts(const struct interp__worker *w);
/* Queue lock held: one starting worker is ready (its first pop) or gone (a failed start). */
void interp__start_started_locked(interp__start *s);
/* The worker's state is made (rc INTERP_OK) or not (err: its text, malloc'd or NULL; taken).
 * Tells whoever waits: the queue (the worker takes jobs now), create (prestarted workers), or
 * for a later start the pool breaks with the reason. true when the worker goes on. */
bool interp__start_report(struct interp__worker *w, int rc, char *err);
/* The worker's thread is about to exit (joinable): joins may take it. */
void interp__start_exited(struct interp__worker *w);

/* ---- shutdown -------------------------------------------------------------------------- */

/* Join every worker that exits; returns once every slot's worker is joined (or its slot is
 * empty) and no start is under way. Several threads may call it at once. No lock held. */
void interp__start_join_all(struct interp_pool *pool);

#endif
