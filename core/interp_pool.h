/* interp_pool.h - the one header a C host includes.
 *
 * A pool of worker threads, each owning one isolated Lua 5.4 state. Tasks (a function and an
 * argument message) go in, result messages come out; nothing mutable is shared between states.
 * Semantics follow Python's concurrent.futures (submit, map, futures, wait, as_completed,
 * shutdown), plus cancellation of running tasks, per-task deadlines, per-state memory limits
 * and a sandbox.
 *
 * Conventions: every function returns INTERP_OK or an INTERP_ERR_* code (interp_strerror());
 * objects come out through pointer arguments; timeouts of calls that wait are seconds
 * (INTERP_FOREVER: no limit, 0: do not wait); fields of option structs, deadlines included,
 * mean "the default" when 0 (so a zero-initialised struct asks for every default), as written
 * at each field. Ownership of each message is written at each declaration. All functions are
 * thread-safe unless stated otherwise.
 */
#ifndef INTERP_POOL_H
#define INTERP_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "interp_chan.h"
#include "interp_frozen.h"
#include "interp_msg.h"
#include "interp_status.h"
#include "interp_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct interp_pool interp_pool;
typedef struct interp_future interp_future;

/* ---- version ---------------------------------------------------------------------------- */

/* The version of this header (CMakeLists.txt reads the project version from these lines).
 * The shared library's SONAME carries the major version: libinterp_pool.so.0. */
#define INTERP_POOL_VERSION_MAJOR 0
#define INTERP_POOL_VERSION_MINOR 1
#define INTERP_POOL_VERSION_PATCH 0
#define INTERP_POOL_VERSION_STRING "0.1.0"
/* One number to compare: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define INTERP_POOL_VERSION_NUMBER                                                                 \
    (INTERP_POOL_VERSION_MAJOR * 10000 + INTERP_POOL_VERSION_MINOR * 100 +                         \
     INTERP_POOL_VERSION_PATCH)

/* The version of the library actually linked, as "MAJOR.MINOR.PATCH" (static text), which may
 * be newer than the header a program was built with (a shared library). Never fails. */
INTERP_API const char *interp_pool_version(void);

/* ---- options ---------------------------------------------------------------------------- */

/* ABI: the options structs (interp_pool_options, interp_map_options) begin with
 * `struct_size`, the size of the struct as the caller's header had it, so that a later
 * library, whose struct has more fields at the end, reads only the fields the caller has
 * (later ones take their defaults). interp_pool_defaults() and the INTERP_*_OPTIONS_INIT
 * macros set it; 0 (a zero-initialised struct, `= {0}` or designated initialisers) means
 * the fields of ABI 0, that is every field of release 0.1 (so such code keeps working, but a
 * field added after 0.1 is read only when struct_size says the caller has it: set it with the
 * macro to use those). A struct larger than the library knows (a newer header with an older
 * library) is accepted when the bytes the library does not know are all zero, else refused
 * with INTERP_ERR_INVALID. */
typedef struct interp_pool_options {
    size_t struct_size;            /* sizeof(interp_pool_options) or 0, see above */
    int workers;                   /* most worker threads, 0 to 4096; 0: the number of
                                      online CPUs (negative: INTERP_ERR_INVALID) */
    bool prestart;                 /* start every worker (thread and state) in create; false:
                                      the first starts in create, the others on demand, when
                                      a task finds no idle worker (as Python's executors do;
                                      one whose initializer fails then breaks the pool) */
    const char *init_source;       /* initializer: a Lua chunk run once in every new state (also
                                      in workers started later and in recycled states; for the
                                      first worker, on the thread calling create). Not a task:
                                      no deadline or cancel reaches it, and shutdown waits for
                                      it, so it must not block on what only a task or the host
                                      sends later */
    const char *init_file;         /* ... or a file holding it (read once, at create) */
    const interp_msg *init_args;   /* values passed to the initializer as `...` (borrowed: copied
                                      by interp_pool_create) */
    size_t memory_limit;           /* bytes per worker state; 0: none */
    interp_sandbox sandbox;        /* INTERP_SANDBOX_NONE (default) or INTERP_SANDBOX_SAFE */
    double task_timeout;           /* default deadline of every task, seconds; 0: none. Map
                                      items each get it too (a chunk is not one task): an item
                                      is interrupted once it has run between 1x and 2x
                                      task_timeout (checked without a clock read per item); it
                                      fails with INTERP_ERR_TIMEOUT and the items after it still
                                      run */
    double cancel_grace;           /* cleanup time after a cancel before escalation; 0: 0.01 s */
    double stuck_grace;            /* a task still running this long after its deadline, or
                                      cancel_grace + this long after a cancel or shutdown_now
                                      (stuck in C code no hook reaches), is abandoned and its
                                      worker replaced; 0: 1.0 s */
    unsigned max_tasks_per_worker; /* recycle a worker's state after this many tasks; 0: never */
    size_t max_queued;             /* bound on queued tasks; submit blocks when full; 0: none */
    size_t max_msg_size;           /* largest argument/result/channel message; 0: 256 MiB, or
                                      the memory limit in the sandbox when that is smaller */
    int max_depth;                 /* deepest table nesting in a message; 0: 200 */
    size_t thread_stack_size;      /* worker thread stack, bytes; 0: 1 MiB; floor 256 KiB */
    const char *thread_name;       /* name prefix of the pool's threads as top -H, ps and gdb show
                                      them: "<prefix>-<worker>", "<prefix>-wd" for the watchdog
                                      (the prefix is cut to 9 bytes, the name to the kernel's
                                      15); NULL: "interp" (Python's thread_name_prefix) */
    interp_print_fn print;         /* where workers' print() lines go, called on the printing
                                      worker's thread (on the thread calling create while the
                                      first worker's initializer runs); NULL: stdout */
    void *print_ud;
    /* Host C functions in every worker state (interp_types.h: interp_host_lib, with the
     * contract they must keep). Borrowed: the list and the names are copied by create. */
    const interp_host_lib *host_libs;
    size_t n_host_libs;       /* entries in host_libs, at most INTERP_HOST_LIBS_MAX (256) */
    interp_state_fn on_state; /* called in every new state before the initializer; NULL:
                                 none (interp_types.h) */
    void *on_state_ud;
    const char *package_path; /* package.path and package.cpath of every worker state in
                                 INTERP_SANDBOX_NONE (copied), so that require in a task finds
                                 what the host finds; NULL: Lua's defaults (LUA_PATH_5_4,
                                 LUA_PATH...). Ignored by the sandbox, which has no package */
    const char *package_cpath;
    /* CPU containment (README, "Containment"). */
    int max_abandoned;     /* abandoned workers (stuck in C code past stuck_grace) whose
                            threads may still run at once: each is demoted to
                            SCHED_IDLE (or nice 19) and renamed "<prefix>-ab" when
                            abandoned; one more breaks the pool (INTERP_ERR_BROKEN for
                            queued and later tasks, with the reason): create a new one.
                            0: INTERP_ABANDONED_DEFAULT (4); at most
                            INTERP_ABANDONED_MAX; < 0: INTERP_ERR_INVALID */
    size_t max_chunk_size; /* sandbox: the largest text chunk a task compiles, by load
                            (load returns nil and the reason) or as a source task (it
                            fails with INTERP_ERR_SCRIPT): Lua's parser cannot be
                            interrupted. 0: INTERP_SANDBOX_CHUNK_DEFAULT (32 KiB); at
                            most INTERP_SANDBOX_CHUNK_MAX */
    size_t memory_budget;  /* the most the pool's tasks may make the host hold outside
                              their heaps, bytes: messages queued on channels (the
                              sender pays until they are received), the channels they
                              create (ring and name), results and error texts waiting in
                              futures. Past it, a send, interp.channel or a task's result
                              fails with INTERP_ERR_NOMEM and says so. 0: none, but
                              for a sandbox with a memory_limit: 4 x workers x
                              memory_limit + 64 MiB. In the sandbox each state's
                              memory_limit also covers what it queued and the channels
                              it made (not its results) */
} interp_pool_options;

/* Options with struct_size set and every other field 0 (the defaults). */
#define INTERP_POOL_OPTIONS_INIT                                                                   \
    {                                                                                              \
        .struct_size = sizeof(interp_pool_options)                                                 \
    }

/* Fill the options o points at, a struct of struct_size bytes (the caller's sizeof), with the
 * defaults: workers = online CPUs, cancel_grace 0.01, stuck_grace 1.0, thread_stack_size
 * 1 MiB, every other field 0 (no limits, full profile); struct_size is set. INTERP_ERR_INVALID
 * for a NULL o or a struct_size smaller than the first release's struct. Not thread-safe on
 * the same o. Callers use interp_pool_defaults(), which passes the size. */
INTERP_API int interp_pool_options_init(interp_pool_options *o, size_t struct_size);

/* The defaults, as interp_pool_options_init gives them. Inline, so that the struct returned
 * has the size of the caller's header whatever library version runs. */
static inline interp_pool_options interp_pool_defaults(void)
{
    interp_pool_options o = INTERP_POOL_OPTIONS_INIT;
    interp_pool_options_init(&o, sizeof o);
    return o;
}

/* ---- pool ---------------------------------------------------------------------------- */

/* Create a pool and start its first worker (every worker with prestart; the others start on
 * demand); each worker runs the initializer in its new state before taking tasks.
 * opts may be NULL (defaults). Returns INTERP_OK and *out; INTERP_ERR_SCRIPT when the
 * initializer fails to compile or run, or a host library's open or on_state raises (text in
 * *err), INTERP_ERR_NOTFOUND (init_file missing), INTERP_ERR_INVALID (NULL out, or a bad
 * option: a struct_size it cannot read, workers negative or above 4096, both init_source and
 * init_file, an unknown sandbox, negative or NaN seconds, a negative max_depth, a host library
 * without name or open, a name too long or given twice, more than 256 host libraries; the reason in
 * *err), INTERP_ERR_NOMEM, INTERP_ERR_SYSTEM (a thread could not start). err may be NULL;
 * otherwise *err is set to a malloc'd text on error (the caller frees it) and to NULL on
 * success. A state made after create (a worker started on demand, a recycled state, a
 * replacement) whose initializer, host library or on_state fails breaks the pool: queued and
 * later tasks fail with INTERP_ERR_BROKEN and a text naming that error; running tasks end
 * normally, and no future stays pending. */
INTERP_API int interp_pool_create(interp_pool **out, const interp_pool_options *opts, char **err);

/* Stop accepting tasks. wait: block until every worker has finished and exited.
 * cancel_pending: queued tasks end cancelled (status INTERP_ERR_CANCELLED, callbacks on the
 * calling thread) instead of running; running tasks run on (see shutdown_now). Idempotent;
 * later submits fail with INTERP_ERR_SHUTDOWN. Every submitted task ends in exactly one of
 * done, failed or cancelled. Called from a callback running on one of this pool's own threads,
 * wait is ignored (a worker cannot wait for itself). */
INTERP_API int interp_pool_shutdown(interp_pool *pool, bool wait, bool cancel_pending);
/* shutdown(wait = true, cancel_pending = true) that also interrupts running tasks (they fail
 * with INTERP_ERR_SHUTDOWN) and wakes workers blocked in sleep or channel calls. Returns once
 * every worker has exited: within the cancel grace for Lua code; a task stuck in a C call is
 * abandoned after stuck_grace (its thread exits on its own later). */
INTERP_API int interp_pool_shutdown_now(interp_pool *pool);

/* Shut down (waiting, queued tasks cancelled, running tasks interrupted), join and free the
 * pool. Futures still held by the host stay valid (each is done, failed or cancelled) until
 * released. NULL-safe. Not in a child process after fork() (the pool's threads are not there):
 * a child neither uses nor destroys its parent's pools. */
INTERP_API void interp_pool_destroy(interp_pool *pool);

/* ---- submit and futures --------------------------------------------------------------- */

/* A task in full. Zero-initialise, then set fn (and what else you need). */
typedef struct interp_task {
    interp_fn fn;     /* what to call */
    interp_msg *args; /* its arguments (every value of the message), or NULL. Ownership:
                         on INTERP_OK the pool owns it; on error the caller still does */
    double timeout;   /* deadline of this task in seconds from its start; 0: the pool's
                         task_timeout; < 0: none */
} interp_task;

/* Queue a task and return its future (*out: one reference, the caller releases it).
 * Blocks while the queue is full (max_queued) up to `queue_timeout` (INTERP_FOREVER: no
 * limit): INTERP_ERR_TIMEOUT. INTERP_ERR_SHUTDOWN after shutdown, INTERP_ERR_BROKEN when the
 * pool is broken, INTERP_ERR_NOMEM. */
INTERP_API int interp_pool_submit_task(interp_pool *pool, const interp_task *task,
                                       double queue_timeout, interp_future **out);
/* Shorthand: call the global function `fn` with the values of args (owned by the pool on
 * INTERP_OK, by the caller on error; may be NULL). Waits without limit for queue space. */
INTERP_API int interp_pool_submit(interp_pool *pool, const char *fn, interp_msg *args,
                                  interp_future **out);
/* The same with the arguments built from a format (interp_msg_pack's letters, interp_msg.h):
 * interp_pool_submitf(pool, &f, "scaled", "i, d", 4, 0.5) calls scaled(4, 0.5). Errors of
 * the format as interp_msg_pack (nothing is submitted), then as interp_pool_submit. */
INTERP_API int interp_pool_submitf(interp_pool *pool, interp_future **out, const char *fn,
                                   const char *fmt, ...);

/* Wait until f is done, failed or cancelled. INTERP_OK when it is, INTERP_ERR_TIMEOUT when
 * timeout passed first, INTERP_ERR_INVALID for a NaN timeout. Does not say how the task ended:
 * see interp_future_status(). */
INTERP_API int interp_future_wait(interp_future *f, double timeout);
/* Wait, then report how the task ended: INTERP_OK and *result (borrowed: valid until f is
 * released; NULL-safe out) with every return value; or the failure: INTERP_ERR_SCRIPT,
 * INTERP_ERR_NOMEM (memory limit), INTERP_ERR_TIMEOUT (task deadline), INTERP_ERR_CANCELLED,
 * INTERP_ERR_SHUTDOWN (interrupted by shutdown), INTERP_ERR_BROKEN, INTERP_ERR_ENCODE (result
 * not copyable), INTERP_ERR_DECODE, INTERP_ERR_NOTFOUND (no such function). If the wait itself
 * times out, returns INTERP_ERR_TIMEOUT and interp_future_done() stays false. */
INTERP_API int interp_future_result(interp_future *f, double timeout, const interp_msg **result);
/* interp_future_result, then the results read as interp_msg_unpack reads them:
 * interp_future_resultf(f, 10.0, "i, s", &n, &text, &len). Returns the task's status when it
 * failed (or the wait timed out), else interp_msg_unpack's (INTERP_ERR_DECODE: the results do
 * not match the format; nothing is written then). Strings point into the result: valid until
 * f is released. */
INTERP_API int interp_future_resultf(interp_future *f, double timeout, const char *fmt, ...);
/* Text of a failure: Lua's message plus "\nstack traceback:\n..." for script errors, a
 * reason for the others; NULL while pending or after success. Valid until f is released. */
INTERP_API const char *interp_future_error(interp_future *f);
/* The error object of a script error that was not a string (a table, say), as a message
 * (borrowed like the result); NULL otherwise. */
INTERP_API const interp_msg *interp_future_error_value(interp_future *f);
/* The final status (as interp_future_result would return it), or INTERP_ERR_AGAIN while
 * the task is pending or running. Never blocks. */
INTERP_API int interp_future_status(interp_future *f);

INTERP_API bool interp_future_done(interp_future *f);    /* done, failed or cancelled */
INTERP_API bool interp_future_running(interp_future *f); /* a worker is running it now */
INTERP_API bool interp_future_cancelled(interp_future *f);

/* Cancel: a queued task never runs (returns INTERP_OK, the future is cancelled at once); a
 * running task is interrupted through the hook (returns INTERP_OK; it ends cancelled as soon
 * as the worker notices, within the cancel grace, even if it managed to return a result
 * meanwhile: INTERP_OK always means the future ends cancelled; a task stuck in a C call is
 * abandoned after stuck_grace); a finished task: INTERP_ERR_BUSY (nothing changes). Unlike
 * Python, running tasks can be cancelled. */
INTERP_API int interp_future_cancel(interp_future *f);

/* Run cb(f, ud) exactly once when f ends (done, failed or cancelled). Runs at once on the
 * calling thread if f has already ended; otherwise on the thread that ends it (a worker
 * thread; the thread calling cancel, shutdown or destroy; the pool's watchdog thread for a
 * task abandoned in a stuck C call), never under a pool lock, so cb may call any function of
 * this API (submit, result, cancel, shutdown; not destroy of its own pool). A callback that
 * blocks delays the worker that runs it. INTERP_ERR_NOMEM: cb will not run. */
typedef void (*interp_future_cb)(interp_future *f, void *ud);
INTERP_API int interp_future_on_done(interp_future *f, interp_future_cb cb, void *ud);

/* Reference counting: a future outlives its pool safely. NULL-safe release. */
INTERP_API void interp_future_retain(interp_future *f);
INTERP_API void interp_future_release(interp_future *f);

/* Wait over n futures. mode INTERP_WAIT_ALL: until all have ended; INTERP_WAIT_FIRST: until
 * at least one has ended (Python's FIRST_COMPLETED); INTERP_WAIT_FIRST_FAILURE: until one has
 * failed (any status but INTERP_OK and INTERP_ERR_CANCELLED), or else all have ended (Python's
 * FIRST_EXCEPTION). INTERP_OK, or INTERP_ERR_TIMEOUT. *n_done (may be NULL) counts the ended
 * ones. INTERP_ERR_INVALID for a NULL future, an unknown mode, a NaN timeout or n past
 * INTERP_WAIT_MAX_FUTURES (interp_limits.h). */
enum { INTERP_WAIT_ALL = 0, INTERP_WAIT_FIRST = 1, INTERP_WAIT_FIRST_FAILURE = 2 };
INTERP_API int interp_futures_wait(interp_future *const fs[], size_t n, int mode, double timeout,
                                   size_t *n_done);

/* as_completed: yields futures in the order they end. Not thread-safe (one thread uses one
 * iterator). Borrows fs, which must stay valid while the iterator lives. INTERP_ERR_INVALID
 * for a NULL future or n past INTERP_WAIT_MAX_FUTURES. */
typedef struct interp_as_completed interp_as_completed;
INTERP_API int interp_as_completed_new(interp_future *const fs[], size_t n,
                                       interp_as_completed **out);
/* Next ended future (borrowed from fs) or, after all n: INTERP_ERR_CLOSED.
 * INTERP_ERR_TIMEOUT if none ends within timeout. */
INTERP_API int interp_as_completed_next(interp_as_completed *it, double timeout, interp_future **f);
INTERP_API void interp_as_completed_free(interp_as_completed *it);

/* Seconds on the monotonic clock (CLOCK_MONOTONIC), the clock every timeout and deadline of the
 * library is measured on: for a host's own deadlines and timings. */
INTERP_API double interp_now(void);

/* ---- map ------------------------------------------------------------------------------ */

typedef struct interp_map_options {
    size_t struct_size; /* sizeof(interp_map_options) or 0 (ABI 0), as for the pool's
                           options: INTERP_MAP_OPTIONS_INIT sets it */
    size_t chunksize;   /* inputs per worker task; 0: chosen from n and the worker count
                           (n / (8 x workers), within 1..4096); at most
                           INTERP_MAP_MAX_CHUNKSIZE (2^20), else INTERP_ERR_INVALID (the
                           reason in errors[i]); never more than n are reserved */
    double timeout;     /* overall, seconds; 0 or < 0: none. Items not finished by then
                           fail with INTERP_ERR_TIMEOUT */
    bool stop_on_error; /* after the first failure, items not yet started end cancelled */
    int *status;        /* optional, n entries: each item's status (map and map_fn;
                           map_stream hands both to on_result instead) */
    char **errors;      /* optional, n entries: each failed item's text (malloc'd, the
                           caller frees each), NULL for items that succeeded */
    /* Optional, for a Ctrl-C in a host: polled on the calling thread every
       INTERP_MAP_INTERRUPT_POLL seconds while the map waits for results (and before each
       input of a stream is read). Returning true stops the map as its timeout would: no
       more inputs are read, queued items end at once, running ones are interrupted; every
       item not done ends with INTERP_ERR_CANCELLED ("cancelled: interrupted") and the map
       returns INTERP_ERR_CANCELLED. Called without any lock held. */
    bool (*interrupted)(void *ud);
    void *interrupted_ud;
} interp_map_options;
/* The default window of a map in chunks per worker: a map_stream given max_in_flight 0 keeps
 * this many x chunksize x workers items queued or running, and pool:imap (whose calls are
 * chunks of one) this many x workers calls. Enough to keep every worker busy while the caller
 * reads results, few enough to bound memory. */
#define INTERP_MAP_WINDOW_CHUNKS 4
/* How often interp_map_options.interrupted is polled while a map waits, seconds. */
#define INTERP_MAP_INTERRUPT_POLL 0.02
/* Map options with struct_size set and every other field 0 (the defaults). */
#define INTERP_MAP_OPTIONS_INIT                                                                    \
    {                                                                                              \
        .struct_size = sizeof(interp_map_options)                                                  \
    }

/* Apply fn to each of the n argument messages in[i] (borrowed; each message's values are the
 * arguments; NULL: no arguments), in parallel, chunked. Blocks until every item has ended.
 * out[i] receives item i's results (owned by the caller: free each with interp_msg_free, in
 * any order, on any thread) or NULL if it failed; out may be NULL when only the statuses
 * matter (results are then freed). Small results (a few numbers, booleans, short strings)
 * share blocks of up to 60 KiB, one malloc per block instead of one per result; a block's
 * memory returns when its last result is freed (to the worker that made it, which keeps up to
 * 16 MiB of such blocks for its next maps until its state is recycled or the pool destroyed).
 * Returns
 * INTERP_OK when every item succeeded; otherwise the status of the lowest-numbered failed item
 * (items cancelled only because of stop_on_error count last), and (when opts->status/errors
 * are given) every item's outcome. opts may be NULL. INTERP_ERR_SHUTDOWN / INTERP_ERR_BROKEN
 * for items the pool refused; INTERP_ERR_INVALID for a NULL pool, in NULL with n > 0, a NaN
 * timeout or a chunksize past its bound (every item then has that status and the reason), or
 * a struct_size it cannot read (then no field of opts is touched). */
INTERP_API int interp_pool_map(interp_pool *pool, const char *fn, size_t n,
                               const interp_msg *const in[], interp_msg *out[],
                               const interp_map_options *opts);
/* The same for any interp_fn (source chunk, copied function). */
INTERP_API int interp_pool_map_fn(interp_pool *pool, const interp_fn *fn, size_t n,
                                  const interp_msg *const in[], interp_msg *out[],
                                  const interp_map_options *opts);

/* Iterator form for inputs too many to hold at once: `next_input` is called on the calling
 * thread for item 0, 1, ... until it returns false; it hands over ownership of *args.
 * `on_result` is called on the calling thread in input order with each item's status and
 * results (ownership passes to the callee; NULL on failure) and error text (borrowed).
 * At most `max_in_flight` items (0: INTERP_MAP_WINDOW_CHUNKS (4) x chunksize x workers;
 * chunksize 0: 16 here; at most
 * INTERP_MAP_MAX_IN_FLIGHT, else INTERP_ERR_INVALID) are queued or running at once, so memory
 * stays bounded. Once an item fails with stop_on_error, or the
 * timeout passes, next_input is not called any more. Returns INTERP_OK when every item
 * succeeded, else as interp_pool_map. */
typedef bool (*interp_map_next_fn)(void *ud, size_t index, interp_msg **args);
typedef void (*interp_map_result_fn)(void *ud, size_t index, int status, interp_msg *result,
                                     const char *error);
/* Whether a map's chunksize and max_in_flight are within their bounds (INTERP_MAP_MAX_CHUNKSIZE,
 * INTERP_MAP_MAX_IN_FLIGHT), the check every map function makes before it starts: INTERP_OK, or
 * INTERP_ERR_INVALID with *why (a static text). For a front end that reports a bad option
 * before it reads any input. */
INTERP_API int interp_map_check_sizes(size_t chunksize, size_t max_in_flight, const char **why);

INTERP_API int interp_pool_map_stream(interp_pool *pool, const interp_fn *fn,
                                      interp_map_next_fn next_input, interp_map_result_fn on_result,
                                      void *ud, size_t max_in_flight,
                                      const interp_map_options *opts);

/* interp_pool_map_stream where each item is a pack: a message of k values, one call fn(value)
 * each, run one after the other by one worker. next_pack and on_pack run on the calling thread;
 * on_pack gets, in order, each pack's status and, when it succeeded, a message of k values: the
 * first result of each call; when it failed, the error of its failed call and a message of one
 * integer, that call's index in the pack (from 0), or NULL (then the first; also when the pack
 * never ran). The calls after a failed one in its pack do not run; other packs do. One message
 * per pack each way instead of one per call: the per-call costs of a message (allocation,
 * header, validation) and of a job are paid once per pack (the Lua module's pool:map).
 * chunksize in opts counts packs per job (pass 1: a pack is a chunk of its own); the window is
 * max_in_flight packs. INTERP_ERR_INVALID for a pool with a backend (MPI). */
INTERP_API int interp_pool_map_packed(interp_pool *pool, const interp_fn *fn,
                                      interp_map_next_fn next_pack, interp_map_result_fn on_pack,
                                      void *ud, size_t max_in_flight,
                                      const interp_map_options *opts);

/* ---- channels --------------------------------------------------------------------------- */

/* The pool's channel `name`, created with `capacity` (0: 64) if it does not exist yet. Workers
 * reach the same channel with interp.channel(name). *out holds a new reference.
 * INTERP_ERR_LIMIT once the pool has 4096 named channels (host and workers together). */
INTERP_API int interp_pool_channel(interp_pool *pool, const char *name, size_t capacity,
                                   interp_chan **out);

/* ---- shared (frozen) values by name ------------------------------------------------------ */

/* Register f (interp_frozen.h) under `name` (1..255 bytes, NUL-terminated) in the pool's
 * registry, replacing what was there (f NULL: remove the name). The registry keeps its own
 * reference; the caller keeps its. Scripts read it with interp.shared(name) and may add names
 * that are not taken yet (never replace). Non-blocking (a short lock), thread-safe.
 * INTERP_ERR_INVALID, INTERP_ERR_LIMIT (4096 names), INTERP_ERR_NOMEM. */
INTERP_API int interp_pool_share(interp_pool *pool, const char *name, const interp_frozen *f);
/* The value registered under name: INTERP_OK with *out a new reference, or NULL when the name
 * is unset. INTERP_ERR_INVALID for a bad argument. Thread-safe. */
INTERP_API int interp_pool_shared(interp_pool *pool, const char *name, interp_frozen **out);

/* ---- stats ------------------------------------------------------------------------------ */

typedef struct interp_pool_stats {
    uint64_t submitted, done, failed, cancelled;
    uint64_t timed_out;         /* failed by their deadline (part of failed) */
    uint64_t states_replaced;   /* after memory errors, recycling, abandoned workers */
    uint64_t workers_abandoned; /* stuck in a C call past deadline + stuck_grace */
    size_t queued;              /* now */
    int workers;                /* worker threads running now */
    int max_workers;            /* the most it may run (options.workers) */
    size_t memory_in_use;       /* all worker states, bytes */
    size_t memory_peak;         /* highest single-state peak, bytes */
    size_t frozen_values;       /* frozen values made by this pool's states, alive now */
    size_t frozen_bytes;        /* their bytes, outside every state (each counted once) */
    int abandoned_running;      /* abandoned workers whose threads still run (demoted): at
                                   most max_abandoned while the pool takes work; the one
                                   past it breaks the pool (workers + max_abandoned threads
                                   in all) */
    size_t budget_in_use;       /* bytes reserved from the memory budget (held by the host for
                                   tasks: queued messages, channels, results), in batches of
                                   256 KiB per state; 0 without accounting */
    size_t budget_limit;        /* the memory budget in force; 0: none */
} interp_pool_stats;
/* Fill *st (the whole struct: no field needs setting first). INTERP_ERR_INVALID for a NULL
 * pool or st. An inline wrapper passes the caller's sizeof, so that a later library whose
 * stats have more fields writes only those the caller's struct has. */
INTERP_API int interp_pool_get_stats_sized(interp_pool *pool, interp_pool_stats *st,
                                           size_t struct_size);
static inline int interp_pool_get_stats(interp_pool *pool, interp_pool_stats *st)
{
    return interp_pool_get_stats_sized(pool, st, sizeof *st);
}
/* Per worker: memory in use and peak of worker i's current state (0 <= i < max_workers, else
 * INTERP_ERR_INVALID; INTERP_ERR_NOTFOUND while worker i has not started or has no state). */
INTERP_API int interp_pool_worker_memory(interp_pool *pool, int worker, size_t *in_use,
                                         size_t *peak);

#ifdef __cplusplus
}
#endif
#endif
