/* interp_mpi.h - an interp_pool that spans the ranks of an MPI communicator (Open MPI).
 *
 * The pool a host gets from interp_mpi_pool_create is an ordinary interp_pool: submit,
 * futures, wait, as_completed, cancel, map, map_fn, map_stream, shutdown, stats and destroy
 * work unchanged (mpi4py.futures' executor is the model). The root rank holds the futures; every
 * rank (the root too unless root_idle) runs a local pool with the same options and the same
 * initializer (init source and init_args are sent to every rank at create); tasks and map
 * chunks go to the ranks with free capacity (MPI__UNITS_PER_WORKER units per worker), map
 * results come back in input order. A map's own chunk size (chunksize 0) is items / (8 x
 * workers) within 1 to 16,384 here (4,096 on a local pool): a chunk sent to a rank costs
 * more. Every other rank serves until the root destroys the pool.
 *
 * MPI: the host initialises MPI (interp_mpi_init does it) with at least MPI_THREAD_SERIALIZED
 * on the root (its communication thread is not the main thread; the host makes no MPI call on
 * any thread while the pool lives) and MPI_THREAD_FUNNELED elsewhere (serve runs its loop on
 * the calling thread). The pool works on its own duplicate of comm. Waiting ranks poll with
 * backoff sleeps (Open MPI's blocking calls spin): an idle rank costs well under 1% of a core.
 *
 * Faults: a task's error, deadline or memory limit on a remote rank fails that future (or map
 * item) only, with the same status and text as on a local pool. Cancel reaches a task running
 * on a remote rank, and so do a map's timeout and interrupt (its chunks stop there). A rank
 * that sends nothing for heartbeat_timeout seconds (stopped, hung, cut off) is lost: no more
 * work goes to it, and each unit it held fails with INTERP_ERR_BROKEN and a text naming the
 * rank (INTERP_MPI_LOST_FAIL, the default), or is sent to the other ranks
 * (INTERP_MPI_LOST_RESUBMIT: tasks may then run twice). A rank that dies ends the whole job
 * under Open MPI 4.1 (no ULFM): mpiexec names it. MPI_Abort is called only when the root
 * cannot go on (its communication fails).
 *
 * Frozen values (interp_frozen.h) in a task's or map item's arguments are sent once to each
 * rank that runs one (then shared by every task there) and dropped there once the root's host
 * holds no more reference to them; a result holding one fails with INTERP_ERR_ENCODE.
 *
 * Callbacks (interp_future_on_done) of an MPI pool's futures run on its communication thread:
 * they must not block, nor wait for the same pool (a map, a result of one of its futures);
 * interp_pool_shutdown from one does not wait, as from a local pool's worker.
 *
 * Not on an MPI pool (neither spans processes): named channels (interp_pool_channel returns
 * INTERP_ERR_INVALID, and interp.channel in a task on any rank raises "named channels and
 * contexts do not span the ranks of an MPI pool ..."), contexts (interp_ctx_create:
 * INTERP_ERR_INVALID), per-worker memory (interp_pool_worker_memory: INTERP_ERR_NOTFOUND).
 */
#ifndef INTERP_MPI_H
#define INTERP_MPI_H

#include <mpi.h>

#include "interp_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { INTERP_MPI_LOST_FAIL = 0, INTERP_MPI_LOST_RESUBMIT = 1 };

typedef struct interp_mpi_options {
    int root;                 /* the rank that holds the futures (default 0) */
    bool root_idle;           /* the root runs no local workers (default: it computes too) */
    double heartbeat_timeout; /* seconds without a word from a rank before it is lost;
                                 0: 10 s. Ranks send a heartbeat every quarter of it */
    int on_lost;              /* INTERP_MPI_LOST_FAIL (default) or INTERP_MPI_LOST_RESUBMIT */
} interp_mpi_options;

/* MPI_Init_thread with MPI_THREAD_SERIALIZED unless MPI is already initialised. INTERP_OK, or
 * INTERP_ERR_SYSTEM when MPI cannot give at least MPI_THREAD_SERIALIZED (text in *err, which
 * may be NULL; malloc'd, the caller frees it). Not thread-safe (call it from main). */
int interp_mpi_init(int *argc, char ***argv, char **err);

/* Collective over comm: every rank calls it with the same mo->root. On the root: creates the
 * pool (*out; opts as interp_pool_create's: init source/file and init_args are read here and
 * sent to every rank, whose local pools take the same options) and returns once every rank
 * has its local pool; INTERP_ERR_SCRIPT etc. as interp_pool_create when any rank fails to
 * create its local pool (the text names the rank), INTERP_ERR_SYSTEM for MPI or thread
 * failures, INTERP_ERR_INVALID for bad options. On the other ranks: serves (blocking: runs
 * what the root sends) until the root destroys the pool, then returns INTERP_OK with *out
 * NULL, or the creation error (then every rank returns it). On every rank, opts->print and
 * print_ud (when opts is given) are where that rank's own workers print (NULL: its stdout);
 * nothing else of a non-root rank's opts is used. err as interp_pool_create's. */
int interp_mpi_pool_create(interp_pool **out, MPI_Comm comm, const interp_pool_options *opts,
                           const interp_mpi_options *mo, char **err);

/* The non-root side alone (what interp_mpi_pool_create does on a non-root rank). */
int interp_mpi_serve(MPI_Comm comm, const interp_mpi_options *mo, char **err);

#ifdef __cplusplus
}
#endif
#endif
