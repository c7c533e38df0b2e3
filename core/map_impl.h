/* map_impl.h - internal to core/map*.c: a map call's shared context and its chunks.
 * map.c is the calling side (cutting inputs into chunks, the window, delivery in order);
 * map_chunk.c is the worker side and the chunk's life cycle. */
#ifndef INTERP_MAP_IMPL_H
#define INTERP_MAP_IMPL_H

#include "core_impl.h"

typedef struct map_ctx {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool waiting;                     /* guarded by mu: the caller sleeps on cv ... */
    const struct map_chunk *wait_for; /* ... until this chunk is done (others do not wake it) */
    atomic_int stop;    /* written under mu (first wins): status for items not yet started */
    bool stop_on_error; /* immutable */
    bool packed;        /* immutable: interp_pool_map_packed (interp__state_map_packed) */
    /* map (not stream): the worker that ran a chunk moves its results straight into the
     * caller's slots (immutable pointers; each chunk writes only its own items, before it is
     * marked done under mu, which the caller takes before reading) */
    bool direct;
    interp_msg **out;
    int *status;
    char **errors;
    interp_fn fn; /* owned copy */
    char data[];
} map_ctx;

enum { CH_QUEUED, CH_RUNNING, CH_DONE };

typedef struct map_chunk {
    interp__job job; /* first */
    atomic_int refs;
    map_ctx *m;
    size_t first, n, cap;
    const interp_msg *const *args; /* n entries: into the caller's in[], or own */
    interp_msg **own;              /* stream: cap owned argument messages, else NULL */
    interp_outcome *outs;          /* cap entries, zeroed when not in use */
    int state;                     /* guarded by m->mu */
    int end_status;                /* guarded by m->mu: every item ended with this (not run) */
    bool skipped;                  /* guarded by m->mu: not run because an earlier item failed */
    interp__worker *worker;        /* guarded by m->mu while RUNNING */
    uint64_t id;
    atomic_bool done;
    /* direct delivery: what the worker delivered (read by the caller after done) */
    size_t n_ok, n_failed, n_cancelled, n_timed_out;
    int first_fail;         /* status of the chunk's first failed item, 0: none */
    struct map_chunk *next; /* the caller's window or free list */
} map_chunk;

map_ctx *interp__map_ctx_new(const interp_fn *fn, bool stop_on_error);
void interp__map_ctx_release(map_ctx *m);
/* A chunk for up to cap items (stream: with room for owned inputs); one reference. */
map_chunk *interp__chunk_new(map_ctx *m, size_t cap, bool stream);
void interp__chunk_release(map_chunk *c);
/* The chunk ended: ran (status 0), or every item ended with status without running. Wakes the
 * caller. failed: an item failed (stop_on_error then stops the map). */
void interp__chunk_finish(map_chunk *c, int status, bool failed);
/* Stop m's map with status (the first stop's status is kept); its chunks not yet running
 * end with it. */
void interp__map_stop(map_ctx *m, int status);
/* Interrupt c's run with status when a worker is running it. Returns whether c was running
 * (then a backend may hold it instead of a worker). */
bool interp__chunk_interrupt(map_chunk *c, int status);
/* Text for items that ended without running (skipped: because of stop_on_error). */
const char *interp__map_stop_text(int status, bool skipped);

#endif
