/* core_impl.h - internal to core/: the pool, its workers, queue, futures and map chunks.
 *
 * Lock order (a thread holding one lock may only take locks further down this list):
 *   1. interp_future.mu      (a future's state, result, callbacks, watchers)
 *   1b. interp_ctx.mu        (a context's calls and phase; ctx.c)
 *   2. interp__queue.mu      (the task queue; taken under a future's lock to unlink a
 *                             cancelled task)
 *   3. interp_pool.mu        (worker slots, their states, deadlines, watchdog, lifecycle)
 *   4. interp__cancel.lock / channel locks (reached through interp__state_interrupt)
 * Leaf locks, never held while taking another: map_ctx.mu, interp__ctx_names.mu and
 * interp__grants.mu (ctx_names.c), interp__watcher.mu (taken under a
 * future's lock to fire a watcher), interp_pool.chans.mu.
 * No lock is held while Lua runs or while a user callback runs.
 *
 * Lifetimes: the pool is reference counted (the host's handle, plus one per worker struct);
 * worker structs are reference counted (their slot and their thread), so a thread abandoned
 * in a stuck C call can finish on its own after interp_pool_destroy; futures and map chunks
 * are reference counted separately from the pool. */
#ifndef INTERP_CORE_IMPL_H
#define INTERP_CORE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "budget.h"
#include "spin.h"
#include "status_text.h"
#include "interp.h"
#include "interp_ctx.h"
#include "interp_pool.h"
#include "start.h"
#include "sync.h"

/* ---- jobs and the queue (queue.c) ------------------------------------------------------ */

/* What a backend is told a job is (backend.h). */
enum { INTERP__JOB_TASK = 1, INTERP__JOB_CHUNK = 2, INTERP__JOB_CTX = 3 };

typedef struct interp__job interp__job;
struct interp__worker;
struct interp__backend_work;

/* What each kind of job does; one table per kind, in the file that owns the kind: a task
 * (task.c, interp__task_ops), a map chunk (map_chunk.c), a context (ctx.c). */
typedef struct interp__job_ops {
    int kind; /* INTERP__JOB_* */
    /* Worker: run the job on w (the queue's reference passes). false if the watchdog
     * abandoned w meanwhile (it has ended the job). */
    bool (*run)(struct interp__worker *w, interp__job *job);
    /* Taken out of the queue without running (shutdown, a broken pool, a cancel): end it with
     * status (CANCELLED, SHUTDOWN, BROKEN) and text, then drop the queue's reference. No lock
     * held. */
    void (*abort)(interp__job *job, int status, const char *text);
    /* Watchdog: the worker running the job was abandoned: end it with reason (TIMEOUT,
     * CANCELLED, SHUTDOWN); the worker keeps its reference until its call returns. NULL for a
     * kind that is never a run's job (a context runs its calls as tasks). */
    void (*abandoned)(interp__job *job, int reason);
    /* Backend: mark a queued job running and describe it in *w (zeroed, kind set); false when
     * it must not run (it has been ended and released here). NULL for a kind a backend pool
     * never queues (contexts). */
    bool (*take)(interp__job *job, struct interp__backend_work *w);
    /* Backend: why a taken job must not be sent after all, or 0 (interp__backend_stop_status). */
    int (*stop_status)(interp__job *job);
} interp__job_ops;

extern const interp__job_ops interp__task_ops, interp__chunk_ops, interp__ctx_ops;

/* The queue link at the start of every queued object (a future, a map chunk, a context). */
struct interp__job {
    struct interp__job *prev, *next; /* guarded by the queue lock */
    const interp__job_ops *ops;      /* its kind's operations, immutable */
    bool queued;                     /* guarded by the queue lock */
};

enum { INTERP__QUEUE_CPUS = 64 };
/* At most one wake-up a millisecond for a job only workers on the pusher's CPU spin for. */
#define INTERP__ESCAPE_NS 1000000u

typedef struct interp__queue {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* idle workers sleep here */
    pthread_cond_t space_cv; /* submitters wait here while the queue is full */
    interp__job *head, *tail;
    size_t count;          /* queued jobs */
    atomic_size_t len;     /* == count, readable without the lock (spinning workers) */
    atomic_long hot_until; /* monotonic ns: idle workers keep spinning until then (a job is
                              coming: interp__queue_prewake) */
    size_t max;            /* bound for bounded pushes; 0: none */
    int n_sleep, n_spin, n_wake, n_space_wait;
    /* n_spin by CPU (those below INTERP__QUEUE_CPUS): a push does not count on a worker that
     * spins on its own CPU to take its job soon (queue.c, append_locked) */
    unsigned short spin_at[INTERP__QUEUE_CPUS];
    uint64_t escape_at;   /* monotonic ns: no wake for such a job before then (queue.c) */
    interp__start *start; /* the pool's worker start: its growth counts are guarded by mu */
    bool closed;
    atomic_bool closed_flag; /* == closed, lock-free */
    int reason;              /* INTERP_ERR_SHUTDOWN or INTERP_ERR_BROKEN once closed */
    void (*notify)(void *);  /* pools with a backend: called after each push (no lock held) */
    void *notify_ud;
    /* Contexts whose call is parked (ctx.c): not queued, linked through prev/next; while any
     * is parked, workers stay (one comes back to the queue when its wait fires). */
    interp__job *parked;
    int n_parked;
} interp__queue;

void interp__queue_init(interp__queue *q, size_t max, interp__start *start);
void interp__queue_destroy(interp__queue *q);
/* Append job. bounded: wait up to timeout (< 0: forever) while `max` jobs are queued.
 * INTERP_OK, the close reason once closed, or INTERP_ERR_TIMEOUT. Wakes one idle worker
 * unless enough workers are already awake. *grow (on INTERP_OK) says that no idle or starting
 * worker is left for the job and a worker may start: the caller must then call
 * interp__start_grow (the start is reserved for it, interp__start_want). */
int interp__queue_push(interp__queue *q, interp__job *job, double timeout, bool bounded,
                       bool *grow);
/* Take the oldest job (spinning briefly, then sleeping). NULL once closed and empty. With
 * idle > 0 (seconds) and idled non-NULL, a sleep with nothing to take ends after `idle`: then
 * NULL with *idled set (the caller may tidy up, then pop again). A worker's first pop after a
 * successful start passes *starting true: under the same hold of the queue lock it stops
 * counting as starting and either takes a job or counts as waiting, so a push never sees it
 * as neither (which would start a worker too many); *starting is then cleared. */
interp__job *interp__queue_pop(interp__queue *q, double idle, bool *idled, bool *starting);
/* Take the oldest job without waiting; NULL when none is queued. */
interp__job *interp__queue_try_pop(interp__queue *q);
/* A job is likely to be pushed within `ns` nanoseconds (a context being made, its first call
 * next): idle workers keep spinning until then, and one sleeping worker is woken unless one
 * spins or is being woken, so that a wake-up (tens of microseconds) is not paid after the
 * push. */
void interp__queue_prewake(interp__queue *q, long ns);
/* Unlink job if it is still queued; true if this call removed it. */
bool interp__queue_remove(interp__queue *q, interp__job *job);
/* Close (first reason wins); with take_all, also take every queued job (returned as a
 * chain through ->next). Wakes everyone waiting. */
interp__job *interp__queue_close(interp__queue *q, int reason, bool take_all);
size_t interp__queue_count(interp__queue *q);
/* Parking (ctx.c). The queue's lock is a leaf for these: a wake takes it under a channel's,
 * the pool's or a context's lock. park: under the lock, commit(job) (the context's RUNNING ->
 * PARKED) and, if it holds, keep job on the parked list; false if commit refused (a wake came
 * first: the caller goes on running it). push_ready: append job even when the queue is closed
 * (a context with work in progress: workers stay while it exists), taking it off the parked
 * list first if unpark; grow as interp__queue_push, or NULL: never start a worker (a caller
 * holding locks). wake_parked: move every parked job for which claim(job, ud) (under the
 * queue's lock) holds to the run queue (shutdown_now). */
bool interp__queue_park(interp__queue *q, interp__job *job, bool (*commit)(interp__job *job));
void interp__queue_push_ready(interp__queue *q, interp__job *job, bool unpark, bool *grow);
void interp__queue_wake_parked(interp__queue *q, bool (*claim)(interp__job *job, void *ud),
                               void *ud);

/* ---- workers (worker.c) ---------------------------------------------------------------- */

#define INTERP__TASK_ABANDONED UINT64_MAX

typedef struct interp__worker {
    atomic_int refs;          /* its slot and its thread */
    struct interp_pool *pool; /* one pool reference, dropped with the last worker ref */
    int slot;
    pthread_t thread;
    atomic_int tid;      /* the thread's kernel id, stored by it when it starts */
    interp_state *state; /* written by the worker under pool->mu; read by it freely */
    /* the run in progress: cur_task is its id (0: none, INTERP__TASK_ABANDONED once the
     * watchdog took it over); run_job/run_kind are written before cur_task is published and
     * read by the watchdog only after it wins cur_task */
    _Atomic uint64_t cur_task;
    interp__job *run_job;
    uint64_t next_id;        /* worker thread only */
    unsigned tasks_on_state; /* worker thread only */
    /* guarded by pool->mu */
    uint64_t dl_id; /* task whose deadline is `deadline` (0: none) */
    double deadline;
    double dl_len;     /* the run's timeout: each item's allowance, seconds */
    uint64_t dl_items; /* interp__state_items when the item the deadline is for
                          runs: if another item has begun by the deadline, the
                          deadline moves to now + dl_len instead of firing */
    bool dl_fired;
    uint64_t esc_id; /* task to abandon at escalate_at unless it ends (0: none) */
    double escalate_at;
    double rearm_at; /* next interp__state_rearm of esc_id (the hook taken back) */
    int esc_reason;
    bool abandoned, exited, joined;
    int kind;                 /* INTERP__SPAWN_* (start.h): why it started; immutable */
    _Atomic(void *) stack_lo; /* its stack's low end (stack_trim.c), stored by its starter */
    /* a context's slice in progress (ctx.c), for preemption: when its time slice ends
     * (monotonic seconds; 0: no slice), stored by the worker, read by the watchdog */
    _Atomic double slice_end;
    /* and how long it may hold the thread once asked to yield (0: no bound; a sandboxed
     * context's), stored by the worker with slice_end; the run asked (its id) and when,
     * pool->mu (the preempt tick) */
    _Atomic double slice_hold;
    uint64_t asked_id;
    double asked_at;
    /* A context made runnable by the call this worker runs (a post or call to an idle one,
     * ctx.c), kept to run next on this thread instead of going through the queue: no other
     * thread's wake-up, no state moving between caches. Stored by the worker only; taken by
     * it once its job ends, or pushed to the queue by the watchdog (the preempt tick, an
     * abandonment), so it waits at most a tick for a long call. */
    _Atomic(struct interp__job *) held;
    unsigned handoffs; /* worker thread only: held jobs run since its last pop */
    bool may_hold;     /* worker thread only: it runs a context whose slices are ticked */
} interp__worker;

/* Start the worker of `slot` (a new thread; it gets its state as `kind` says, start.h), for
 * the worker start (start.c). pool->mu NOT held. INTERP_OK or INTERP_ERR_NOMEM /
 * INTERP_ERR_SYSTEM. */
int interp__worker_spawn(struct interp_pool *pool, int slot, int kind);
void interp__worker_release(interp__worker *w);
/* True on a worker or watchdog thread of pool (those must not wait for pool's workers). */
bool interp__on_pool_thread(const struct interp_pool *pool);
/* Keep job (a context made runnable) to run next on the calling thread, when it is a worker
 * of pool allowed to (may_hold, nothing held yet, and fewer than INTERP__HOLD_MAX held jobs in
 * a row while the queue has other work). false: push it to the queue as usual. */
bool interp__worker_hold(struct interp_pool *pool, struct interp__job *job);
/* Push w's held job, if any, to the queue (any thread; pool->mu may be held). true: a worker
 * should start for it (interp__start_grow, with no lock held; the holder may be blocked, so
 * without it the job could wait for good). */
bool interp__worker_flush_held(interp__worker *w);
/* Name the calling thread "<prefix>-<slot>" (slot < 0: "<prefix>-wd"). */
void interp__name_thread(const struct interp_pool *pool, int slot);
void interp__set_pool_thread(const struct interp_pool *pool);
/* Worker: publish that it starts running job; returns the run id. */
uint64_t interp__worker_begin(interp__worker *w, interp__job *job);
/* Worker: the run ended. false if the watchdog abandoned it meanwhile (the watchdog has ended
 * the job; the worker only drops its reference to it and exits). */
bool interp__worker_end(interp__worker *w, uint64_t id);

/* ---- timers (timers.c): one-shot wake-ups run by the watchdog thread --------------------- */

typedef struct interp__timer {
    double at;  /* monotonic seconds */
    size_t idx; /* its place in the heap + 1; 0: not armed */
    /* On the watchdog thread, pool->mu held, once `at` has passed (the timer is disarmed
     * first); may take only leaf locks (the queue's). */
    void (*fire)(struct interp__timer *t, double now);
} interp__timer;

typedef struct interp__timers {
    interp__timer **heap; /* a binary min-heap on `at` */
    size_t n, cap;
} interp__timers;

/* Arm t for `at` (re-arm if armed); starts the watchdog if need be. INTERP_ERR_NOMEM. */
int interp__timer_arm(struct interp_pool *pool, interp__timer *t, double at);
/* Disarm t if armed (its fire does not run after this returns). */
void interp__timer_disarm(struct interp_pool *pool, interp__timer *t);
/* Watchdog, pool->mu held: fire every timer due at now; returns when the next is due
 * (INFINITY: none). */
double interp__timers_run_locked(interp__timers *ts, double now);
int interp__timers_add_locked(interp__timers *ts, interp__timer *t, double at);
void interp__timers_free(interp__timers *ts);

/* ---- pool (pool.c) ---------------------------------------------------------------------- */

/* Named channels of one pool (interp_pool_channel, interp.channel; chan_names.c): a bound,
 * because a task can invent names without end and each channel is host memory that lives
 * with the pool. */
#define INTERP__MAX_NAMED_CHANNELS INTERP_POOL_MAX_CHANNELS
#define INTERP__CHAN_BUCKETS 1024

typedef struct interp__chan_entry interp__chan_entry;
typedef struct interp__chan_names {
    pthread_mutex_t mu;     /* a leaf lock (but for the accounts' locks, taken under it) */
    interp__budget *budget; /* the pool's: pays for channels the host makes */
    interp__chan_entry *buckets[INTERP__CHAN_BUCKETS];
    size_t n; /* at most INTERP__MAX_NAMED_CHANNELS */
    uint64_t seed;
} interp__chan_names;

void interp__chan_names_init(interp__chan_names *r);
/* Release every channel (queued messages go with the last reference). */
void interp__chan_names_destroy(interp__chan_names *r);
/* INTERP_OK for a name of 1..INTERP_CHAN_MAX_NAME bytes without NUL, else INTERP_ERR_INVALID. */
int interp__chan_name_check(const char *name, size_t len);
/* The channel `name` (len bytes), created with `capacity` (0: 64) if new: its ring and name
 * are charged to acct (a worker state's) or, for NULL, to the pool's budget, until the pool
 * is destroyed. *out: a new reference. INTERP_ERR_INVALID (bad name, capacity past
 * INTERP_CHAN_MAX_CAPACITY), INTERP_ERR_LIMIT (INTERP__MAX_NAMED_CHANNELS names),
 * INTERP_ERR_NOMEM (the reason in why, whylen bytes, when a budget refused). */
int interp__chan_names_get(interp__chan_names *r, const char *name, size_t len, size_t capacity,
                           size_t max_msg_size, interp__account *acct, char *why, size_t whylen,
                           interp_chan **out);

/* Contexts by name (ctx_names.c): the pool-wide names of its named contexts. A leaf lock. */
typedef struct interp__ctx_entry interp__ctx_entry;
typedef struct interp__ctx_names {
    pthread_mutex_t mu;
    interp__ctx_entry **buckets; /* nb buckets (a power of two), grown as names come */
    size_t nb, n;
} interp__ctx_names;

struct interp_pool {
    atomic_int refs;
    interp__queue q;
    pthread_mutex_t mu;     /* the pool lock (see the lock order above) */
    pthread_cond_t wd_cv;   /* wakes the watchdog */
    interp__worker **slots; /* guarded by mu */
    int nworkers;
    interp__start start; /* how workers start, report and are joined (start.h) */
    pthread_t wd_thread;
    bool wd_started, wd_stop; /* guarded by mu */
    double wd_next;           /* guarded by mu: when the watchdog wakes next */
    atomic_bool stop_now;     /* shutdown_now: interrupt running tasks, run nothing more */
    bool broken;              /* guarded by mu */
    char *broken_reason;      /* guarded by mu, set once */
    interp_shared *shared;
    /* resolved options */
    double task_timeout, stuck_grace, cancel_grace;
    unsigned max_tasks_per_worker;
    int max_abandoned;            /* abandoned threads that may run at once (watchdog.c) */
    atomic_int abandoned_running; /* abandoned workers whose thread has not exited yet */
    size_t thread_stack;
    char thread_name[16]; /* the prefix, at most 9 bytes (room for "-4095" or "-wd") */
    size_t max_msg_size;
    interp__chan_names chans; /* channels by name */
    interp__ctx_names ctxs;   /* named contexts (ctx_names.c) */
    interp__budget *budget;   /* what tasks make the host hold (budget.h); never NULL */
    /* an external executor instead of worker threads (backend.h); NULL for a local pool */
    const struct interp__backend *backend;
    void *backend_ud;
    /* Why named channels and contexts are refused (a rank's local pool serving an MPI pool:
     * neither would span the processes); NULL: allowed. Set at create, before any Lua runs. */
    const char *span_refusal;
    /* frozen values: their accounting and the registry of names (frozen_impl.h); values the
     * states froze keep it alive after the pool */
    struct interp__frozen_space *frozen;
    interp__timers timers;      /* guarded by mu: parked waits' wake-ups (timers.c) */
    interp__timer preempt_tick; /* while contexts' slices run: looks for slices past their
                                   time (ctx.c); armed when preempt_ticking is set */
    atomic_bool preempt_ticking;
    int grow_owed; /* guarded by mu: workers the preempt tick wants started (the watchdog
                      starts them with mu released) */
    /* stats */
    atomic_uint_fast64_t st_submitted, st_done, st_failed, st_cancelled, st_timed_out, st_replaced,
        st_abandoned;
};

void interp__pool_retain(interp_pool *pool);
void interp__pool_release(interp_pool *pool);
/* The pool cannot go on: fail every queued job with INTERP_ERR_BROKEN and `reason`.
 * No lock held. */
void interp__pool_break(interp_pool *pool, const char *reason);
/* Count one task outcome in the stats. */
void interp__pool_count(interp_pool *pool, int status);

/* ---- watchdog (watchdog.c) -------------------------------------------------------------- */

int interp__watchdog_start(interp_pool *pool);
void interp__watchdog_stop(interp_pool *pool); /* joins it; after every worker is joined */
/* Worker, just before run `id` enters its state: every item of the run (a task is one item)
 * must end within `timeout` seconds (> 0). The watchdog interrupts the run with
 * INTERP_ERR_TIMEOUT when an item has run past its deadline; when, at a deadline, a newer item
 * has begun (interp__state_items moved), the deadline moves to now + timeout instead. So each
 * item gets between timeout and 2 x timeout, and the check costs the run one relaxed store per
 * item. */
void interp__watchdog_deadline(interp__worker *w, uint64_t id, double timeout);
/* Any thread: interrupt run `id` of w with reason (CANCELLED, TIMEOUT, SHUTDOWN) if it is
 * still running, and abandon it after the stuck grace if it does not end. No lock held. */
void interp__interrupt_run(interp__worker *w, uint64_t id, int reason);
/* The same, pool->mu held (the watchdog's timers). */
void interp__interrupt_run_locked(interp__worker *w, uint64_t id, int reason);

/* ---- futures (future.c) ---------------------------------------------------------------- */

typedef struct interp__watcher interp__watcher;
typedef struct interp__watch_node {
    struct interp__watch_node *prev, *next; /* in the future's list, guarded by its lock */
    struct interp__watch_node *ready_next;  /* in the watcher's ready list */
    interp__watcher *w;
    interp_future *f;
    bool linked; /* guarded by the future's lock */
} interp__watch_node;

/* Sleeping side of waits over one or many futures. */
struct interp__watcher {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t fired; /* guarded by mu */
    interp__watch_node *ready_head, *ready_tail;
    struct interp__park *park; /* non-NULL: a parked wait's; a fire fires it instead */
};

void interp__watcher_init(interp__watcher *w);
void interp__watcher_destroy(interp__watcher *w);
/* Link node (for future f) into f's watchers; if f has already ended, the node is fired at
 * once. */
void interp__watch(interp__watcher *w, interp__watch_node *node, interp_future *f);
/* Unlink node if it has not fired. */
void interp__unwatch(interp__watch_node *node);
/* Pop the next fired node, or NULL (watcher lock NOT held). */
interp__watch_node *interp__watcher_take(interp__watcher *w);
/* Wait until at least `want` nodes have fired, or deadline (NULL: none). */
bool interp__watcher_wait(interp__watcher *w, size_t want, const struct timespec *deadline);

enum { INTERP__F_PENDING = 0, INTERP__F_RUNNING = 1, INTERP__F_ENDED = 2 };

typedef struct interp__cb_node {
    struct interp__cb_node *next;
    interp_future_cb cb;
    void *ud;
} interp__cb_node;

struct interp_future {
    interp__job job; /* first: the queue link */
    atomic_int refs;
    atomic_int state; /* INTERP__F_*; ENDED is published after the outcome */
    atomic_bool cancel_requested;
    /* Hints for the spins of a round trip (future.c, interp__spin_yield_first): the CPU of the
     * last thread to wait for it, and of the thread that ended it (-1: none yet). */
    atomic_int wait_cpu, end_cpu;
    pthread_mutex_t mu;
    interp_pool *pool;      /* valid while pending or running (see future.c) */
    interp__worker *worker; /* guarded by mu: the worker running it */
    uint64_t task_id;       /* guarded by mu */
    int status;             /* final, written before ENDED */
    interp_msg *result;
    char *error;
    interp_msg *error_value;
    interp__account *acct; /* pays for result, error and error_value (retained), or NULL */
    size_t charge;         /* bytes charged to acct */
    bool charge_for_state; /* acct is the caller's args_acct: charged against its limit too */
    interp_future_cb cb0;  /* callbacks, guarded by mu */
    void *ud0;
    interp__cb_node *cbs, *cbs_tail;
    interp__watch_node *watchers; /* guarded by mu */
    /* the task */
    interp_fn fn;
    interp_msg *args;           /* owned; freed once the task has run */
    double timeout;             /* resolved: > 0 seconds, or none */
    bool ctx_post;              /* a context's posted call (ctx.c): failures reported */
    interp__account *args_acct; /* a call made from a state (ctx_lua_state.c) pays for its
                                   future and arguments until released (retained), or NULL */
    size_t args_charge;
    struct interp_ctx *ctx; /* a context's call: its context (ctx.c, retained), else
                               NULL */
    char data[];            /* fn text / function message */
};

/* A zeroed pool with its locks, condition variables, channel names, queue and worker start set
 * up, one reference, no workers (init_ready: interp__start_init's); NULL when out of memory.
 * Released by interp__pool_release. */
interp_pool *interp__pool_alloc(size_t max_queued, int init_ready);

/* A malloc'd copy of the NUL-terminated s (plain malloc: error texts of futures and of
 * create, freed by their owner); NULL for NULL or when out of memory. */
char *interp__dup_text(const char *s);

/* Make a future for task (one allocation; fn copied). 2 references: caller and queue. */
int interp__future_new(interp_pool *pool, const interp_task *task, interp_future **out);
/* Free a future that was never published (submit failed); does not free args. */
void interp__future_discard(interp_future *f);
/* End f if its state is `from` (PENDING or RUNNING; -1: either) with the given outcome
 * (ownership of result/error/error_value passes; freed if f had already ended). Fires
 * watchers and runs callbacks on this thread. Returns true if this call ended f. No lock
 * held. */
bool interp__future_end(interp_future *f, int from, int status, interp_msg *result, char *error,
                        interp_msg *error_value);
/* interp__future_end for a worker: the outcome is charged to acct (may be NULL) until f is
 * released (budget.h); when the budget refuses, f fails with INTERP_ERR_NOMEM and the reason
 * instead (the results are freed). */
bool interp__future_end_paid(interp_future *f, int from, int status, interp_msg *result,
                             char *error, interp_msg *error_value, interp__account *acct);

/* ---- contexts (ctx.c) ------------------------------------------------------------------ */

/* Calls a worker runs from one context before it gives its thread to the next job. */
#define INTERP__CTX_BATCH 8
/* Held jobs a worker runs in a row (interp__worker_hold) before the queue's others get a
 * turn. */
#define INTERP__HOLD_MAX 64

/* A context's job (interp__ctx_ops) runs a batch of its calls on the worker that popped it
 * (its state stands in w's slot meanwhile), then requeues it if calls are left; aborted, its
 * pending calls end with the status and text. */
/* Interrupt f, a call of ctx that is running or parked (any thread, no lock held; called by
 * interp_future_cancel with a reference to ctx). */
void interp__ctx_interrupt_call(struct interp_ctx *ctx, interp_future *f, int reason);
/* shutdown_now: every parked call of pool is woken and ends with INTERP_ERR_SHUTDOWN. */
void interp__ctx_wake_parked(interp_pool *pool, int reason);
/* The fire of the pool's preempt_tick timer (set by interp__pool_alloc). */
void interp__ctx_preempt_tick(interp__timer *t, double now);
/* The context whose state has the park p. */
struct interp_ctx *interp__ctx_of_park(struct interp__park *p);
/* The wait-for graph of contexts: before the call in progress of self waits for a call of
 * target, INTERP_OK (recorded until interp__ctx_wait_end, or the call's end), or
 * INTERP_ERR_INVALID when target is self or waits, directly or through others, for self (the
 * wait would never end). */
int interp__ctx_wait_begin(struct interp_ctx *self, struct interp_ctx *target);
void interp__ctx_wait_end(struct interp_ctx *self);

/* interp_ctx_call_task / interp_ctx_post for Lua code in a state: the future and its
 * arguments are charged to payer (the calling state's account, against its limit; NULL: no
 * one) until the future is released. INTERP_ERR_NOMEM with the reason in why when refused. */
int interp__ctx_call_paid(interp_ctx *ctx, const interp_task *task, bool post, interp_future **out,
                          interp__account *payer, char *why, size_t whylen);

/* task.c: run one task future f on w's current state (the queue's reference to f is
 * dropped). false if w was abandoned meanwhile. */
bool interp__worker_run_task(interp__worker *w, interp_future *f);

/* Wait until f ends, `timeout` seconds pass (< 0: no limit; 0: only look) or tok (NULL: none)
 * fires; spins briefly first. INTERP_OK (ended), INTERP_ERR_TIMEOUT, or the token's reason.
 * interp_future_wait is this without a token. */
int interp__future_wait_tok(interp_future *f, double timeout, interp__cancel *tok);
/* The one wait of Lua code (a task's or a context call's, in L) on a future: until f ends,
 * `timeout` seconds pass (< 0: no limit) or the run's token tok (NULL: none) fires. INTERP_OK
 * (ended), INTERP_ERR_TIMEOUT, or the token's reason (the caller then raises it with
 * interp__lua_check_interrupt). Blocks the thread (spinning briefly first); a context's call
 * that can park waits parked instead (ctx_lua_state.c, wait_parked). */
int interp__lua_wait_future(struct lua_State *L, interp__cancel *tok, interp_future *f,
                            double timeout);

/* A context's struct lives while referenced (the host's handle, the queue, Lua handles in
 * states, grants); its state lives until it is closed and no worker runs it, so handles held
 * by states in a cycle free each other once their contexts are closed. */
void interp__ctx_retain(interp_ctx *ctx);
void interp__ctx_release(interp_ctx *ctx);
interp_pool *interp__ctx_pool(const interp_ctx *ctx);
/* The context's state runs the sandbox profile: it reaches only what was granted to it. */
bool interp__ctx_sandboxed(const interp_ctx *ctx);

/* ---- names and grants of contexts (ctx_names.c) ------------------------------------- */

void interp__ctx_names_init(interp__ctx_names *r);
void interp__ctx_names_destroy(interp__ctx_names *r); /* after every context is unnamed */
/* Register ctx under its name (interp_ctx_name). INTERP_ERR_INVALID when the name is taken,
 * INTERP_ERR_NOMEM. */
int interp__ctx_names_add(interp__ctx_names *r, interp_ctx *ctx);
void interp__ctx_names_remove(interp__ctx_names *r, interp_ctx *ctx);
/* The context named name (len bytes), retained, or NULL. */
interp_ctx *interp__ctx_names_find(interp__ctx_names *r, const char *name, size_t len);

/* What the host granted one context (interp_ctx_grant_*): names local to that context,
 * each a channel or a context, one reference held per grant. Its own leaf lock. */
typedef struct interp__grant interp__grant;
typedef struct interp__grants {
    pthread_mutex_t mu;
    interp__grant *v; /* guarded by mu */
    size_t n, cap;
    bool closed; /* cleared for good: later grants are refused */
} interp__grants;
void interp__grants_init(interp__grants *g);
/* Release every grant and refuse later ones (the context is closed). */
void interp__grants_clear(interp__grants *g);
void interp__grants_destroy(interp__grants *g);
/* The granted channel / context `name`, retained, or NULL; a channel's rights in *rights. */
interp_chan *interp__grants_chan(interp__grants *g, const char *name, size_t len, unsigned *rights);
interp_ctx *interp__grants_ctx(interp__grants *g, const char *name, size_t len);
interp__grants *interp__ctx_grants(interp_ctx *ctx);
/* The shared-value grant `name` (len bytes) with the rights `want` (INTERP_SHARED_*): 1 and
 * the pool's name it stands for in out (room for INTERP_SHARED_MAX_NAME bytes, not
 * NUL-terminated) and *outlen; -1: granted without those rights; 0: not granted. */
int interp__grants_shared(interp__grants *g, const char *name, size_t len, unsigned want, char *out,
                          size_t *outlen);
/* The channel lookup of a context's state (lua_ctx.h's chan_lookup, ud: the context): its
 * grants, then, in the full profile only, the pool's names. */
int interp__ctx_chan_lookup(void *ud, const char *name, size_t len, size_t capacity,
                            interp__account *acct, char *why, size_t whylen, interp_chan **out,
                            unsigned *rights);
/* The context `name` (len bytes) as seen from a state: `from` is the context running there
 * (NULL: an anonymous task of pool; sandboxed: that task's profile). Retained, or NULL. */
interp_ctx *interp__ctx_reach(interp_pool *pool, interp_ctx *from, bool sandboxed, const char *name,
                              size_t len);

/* ctx_lua_state.c: the module extensions (interp_config.module_ext) that give `interp.context`
 * and `interp.self` to a pool's worker states (ud: the pool) and a context's state (ud: it). */
void interp__ctx_lua_open_pool(struct lua_State *L, void *ud);
void interp__ctx_lua_open_ctx(struct lua_State *L, void *ud);
/* ctx_shared.c: interp.shared in a context's state (the `interp` table at the top) reaches
 * the pool's shared values through ctx's grants (sandbox: only those). */
void interp__ctx_shared_open(struct lua_State *L, interp_ctx *ctx);

/* ---- map (map.c) ------------------------------------------------------------------------ */

/* A map chunk's job is interp__chunk_ops (map_chunk.c). */
/* A chunk taken out of the queue without running: its items end with status. */
void interp__chunk_abort(interp__job *job, int status);
/* The chunk's items ran into its outcomes (by a worker or a backend): deliver them (map: into
 * the caller's slots), end the chunk and drop the runner's reference. */
void interp__chunk_complete(interp__job *job);

/* ---- ABI (abi.c) ------------------------------------------------------------------------ */

/* The sizes of the options structs of ABI 0, which struct_size 0 stands for. Every field is
 * part of ABI 0 until release 0.1 ships with its SONAME; a field appended after that must
 * turn these into the fixed byte counts of that release (offsetof the first new field). */
#define INTERP__POOL_OPTIONS_SIZE_0 sizeof(interp_pool_options)
#define INTERP__MAP_OPTIONS_SIZE_0 sizeof(interp_map_options)

/* Copy a caller's struct of src_size bytes (0: abi0_size) into this library's of dst_size:
 * fields the caller's struct lacks become 0; bytes past dst_size (a newer header) must be 0.
 * INTERP_ERR_INVALID with *why set otherwise, or for a size below abi0_size. */
int interp__struct_in(void *dst, size_t dst_size, const void *src, size_t src_size,
                      size_t abi0_size, const char **why);
/* Copy this library's struct (src_size bytes) into a caller's of dst_size: only the fields it
 * has; fields this library does not know (a newer header) are zeroed. */
void interp__struct_out(void *dst, size_t dst_size, const void *src, size_t src_size);

/* ---- stack_trim.c: an idle worker gives back the stack pages it does not use ------------ */

/* The lowest usable address of thread t's stack (above its guard), or NULL where it cannot
 * be known (then interp__stack_trim does nothing). Asked by the thread that started t: what
 * glibc allocates to answer stays in the asking thread's cache, which an idle worker's would
 * keep for good (~0.25 KiB). */
void *interp__stack_bounds(pthread_t t);
/* Drop the resident pages of the calling thread's stack from lo up to one page below the
 * caller's frame (madvise MADV_DONTNEED). Call only at a shallow point: the frames above are
 * kept, the pages below read back as zeroes. */
void interp__stack_trim(void *lo);

/* ---- options (options.c) ---------------------------------------------------------------- */

/* Validate o and fill the pool's resolved fields and the interpreter config (pointing into
 * o). INTERP_ERR_INVALID with *why set. */
int interp__options_resolve(const interp_pool_options *o, interp_pool *pool, interp_config *cfg,
                            const char **why);
int interp__online_cpus(void);

/* Spin budgets (nanoseconds) before sleeping. A condvar wake-up costs tens of microseconds
 * (figures in docs/DESIGN.md, Workers); spinning a little longer than that keeps a round trip
 * in single microseconds. */
#define INTERP__WORKER_SPIN_NS 50000L
#define INTERP__WAIT_SPIN_NS 50000L
/* A worker with nothing to run for this long (seconds) lets its state drop the memory it keeps
 * for the next tasks (interp__state_idle). */
#define INTERP__WORKER_IDLE_S 0.1

#endif
