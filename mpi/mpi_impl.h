/* mpi_impl.h - internal to mpi/: the wire format between ranks, the per-rank server (a local
 * pool running what the root sends), the waker the communication loops sleep on, and the
 * root's backend.
 *
 * Ranks talk only through the pool's own duplicate of the host's communicator, point to point,
 * from one communication thread per rank (the root's backend thread; the thread calling
 * interp_mpi_serve elsewhere). No blocking MPI call is made while waiting for work: Open MPI's
 * blocking calls spin, so the loops poll (MPI_Iprobe / MPI_Test) and sleep between polls on a
 * waker (a futex word), backing off to a few milliseconds, woken early by local events and, on
 * the root's host, by the other side's ring (bell.c). */
#ifndef INTERP_MPI_IMPL_H
#define INTERP_MPI_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "interp.h"
#include "interp_mpi.h"
#include "msg_inner.h"

/* Point-to-point tags of the pool's communicator. */
enum {
    TAG_WORK = 0x4950, /* root -> rank: one task or chunk */
    TAG_CANCEL,        /* root -> rank: u64 id (0: every unit), i32 reason */
    TAG_STOP,          /* root -> rank: leave serve */
    TAG_DONE,          /* rank -> root: one unit's outcome */
    TAG_BEAT,          /* rank -> root: still here (sent when nothing else was for a while) */
    TAG_BYE,           /* rank -> root: left serve (answer to STOP) */
    TAG_FROZEN,        /* root -> rank: a frozen value (frozen_send.c), before its first use */
    TAG_FORGET,        /* root -> rank: u64 id: the root let the value go */
};

/* Units in flight per worker of a rank: one running, one waiting there, so a worker never
 * waits for a round trip to the root. */
#define MPI__UNITS_PER_WORKER 2

/* The largest chunk a map on an MPI pool picks by itself (a local pool's: 4,096): a chunk sent
 * to a rank costs a few wake-ups on both sides; at 16,384 tiny items these cost ~15% less
 * CPU per item than at 4,096, while the unit's buffers (~14 bytes an item each way) and the
 * items made again still fit the caches (at 65,536: ~40% more). */
#define MPI__AUTO_CHUNKSIZE_MAX 16384

/* ---- growing write buffer and bounds-checked reader (wire.c) ---------------------------- */

typedef struct wbuf {
    char *p;
    size_t len, cap;
    bool fail; /* out of memory: the buffer is unusable */
} wbuf;

void wb_put(wbuf *b, const void *data, size_t n);
/* Make room for n bytes in all (one allocation instead of doublings). */
void wb_reserve(wbuf *b, size_t n);
void wb_u8(wbuf *b, uint8_t v);
void wb_u32(wbuf *b, uint32_t v);
void wb_u64(wbuf *b, uint64_t v);
void wb_f64(wbuf *b, double v);
/* A length-prefixed byte string; data NULL: the "absent" mark. */
void wb_blob(wbuf *b, const void *data, size_t n);
void wb_msg(wbuf *b, const interp_msg *m);
/* The records of ms[0..n) (msg_inner.h: pointers stride bytes apart, entries may be NULL, none
 * may hold frozen handles). Marks b failed when out of memory (or one holds handles). */
void wb_records(wbuf *b, const interp_msg *const *ms, size_t stride, size_t n);
/* The same when interp__msg_wire_bytes said `bytes` and that none holds handles. */
void wb_records_sized(wbuf *b, const interp_msg *const *ms, size_t stride, size_t n, size_t bytes);
/* n records of no message. */
void wb_absent(wbuf *b, size_t n);
void wb_text(wbuf *b, const char *s);

typedef struct rbuf {
    const char *p;
    size_t len, at;
    bool fail; /* read past the end or malformed: every later read gives 0 */
} rbuf;

uint8_t rb_u8(rbuf *b);
uint32_t rb_u32(rbuf *b);
uint64_t rb_u64(rbuf *b);
double rb_f64(rbuf *b);
/* *data NULL when the blob was marked absent. false on malformed input. */
bool rb_blob(rbuf *b, const char **data, size_t *n);
/* Decode a message blob (validated; functions accepted: the bytes come from a rank of this
 * job); *m NULL when absent. INTERP_OK or the decode error. */
int rb_msg(rbuf *b, int max_depth, interp_msg **m);
/* Make out[0..n) (stride bytes apart) from the records wb_records wrote (msg_inner.h:
 * interp__msg_wire_take; the caller releases *slab with interp__slab_release once done).
 * INTERP_OK, INTERP_ERR_DECODE (b marked failed), INTERP_ERR_NOMEM. */
int rb_records(rbuf *b, interp__slab_cache *cache, interp__slab **slab, size_t n, interp_msg **out,
               size_t stride);
/* A text blob as a malloc'd NUL-terminated string (NULL when absent). */
char *rb_text(rbuf *b);

/* A unit of work on the wire: WORK = u64 id, u8 kind (1 task, 2 chunk), u8 fn kind,
 * u8 stop_on_error, u8 frozen, f64 timeout (task: seconds, <= 0 none), blob fn (name, source
 * or function message), u64 n, then the n items (a task has one, its arguments): frozen 0:
 * their records (wb_records); frozen 1: each a message blob (validated there) followed by its
 * placeholder list (fzs_put_msg).
 * DONE = u64 id, u64 n, u32 f, f x (u64 index, i32 status, error text blob, error value blob)
 * for the items that failed (indexes rising), then the n results' records (a failed item's
 * absent). */
enum { UNIT_TASK = 1, UNIT_CHUNK = 2 };

/* ---- frozen values sent once to each rank (frozen_send.c) --------------------------------- */

/* The root's cache: each frozen object sent to a rank, its id, and which ranks have it. */
typedef struct fzsend {
    struct fz_entry **b;
    size_t n;
    uint64_t next_id;
    int size, me; /* ranks; the rank whose server shares the root's objects (-1: none) */
    int root;     /* the root's rank (never sent a copy) */
} fzsend;

/* Where fzs_put_msg sends a value a rank does not have yet, and fzs_sweep its forgetting. */
typedef struct fzs_target {
    /* the root's own server: hand it obj itself (a new reference). NULL for a remote rank */
    int (*local)(void *ud, uint64_t id, const interp_frozen *obj);
    /* post TAG_FROZEN bytes (ownership of buf passes) to rank */
    int (*send)(void *ud, int rank, char *buf, size_t len);
    /* rank k may drop value id */
    void (*forget)(void *ud, int rank, uint64_t id);
    void *ud;
} fzs_target;

void fzs_init(fzsend *c, int size, int me, int root);
/* Release every value (the ranks drop theirs at their end). */
void fzs_free(fzsend *c);
/* m holds frozen handles. */
bool fzs_holds(const interp_msg *m);
/* Write m (may be NULL) for `rank` as a blob, its handles as placeholders, then the list of
 * them (u32 count, count x (u64 offset, u64 id)); values rank lacks go first through t.
 * INTERP_OK, INTERP_ERR_NOMEM, or the error of a send. */
int fzs_put_msg(fzsend *c, wbuf *b, const interp_msg *m, int rank, const fzs_target *t);
/* Drop the values only the cache still holds, telling the ranks that have them. */
void fzs_sweep(fzsend *c, const fzs_target *t);

/* A rank's values by the root's ids (its communication thread only). */
typedef struct fzrecv {
    struct fz_have **b;
} fzrecv;

void fzr_init(fzrecv *r);
void fzr_free(fzrecv *r);
/* Keep obj (its reference passes; NULL: it could not be built, `why` says why) as value id. */
void fzr_put(fzrecv *r, uint64_t id, interp_frozen *obj, const char *why);
/* TAG_FROZEN: rebuild the value here. */
void fzr_recv(fzrecv *r, const char *data, size_t len, int max_depth);
/* TAG_FORGET. */
void fzr_forget(fzrecv *r, uint64_t id);
/* Read a message's placeholder list from b and turn the placeholders in m (validated, owned,
 * may be NULL when the list is empty) into handles to this rank's values. INTERP_OK, or
 * INTERP_ERR_DECODE with the reason in why (m then holds no reference). */
int fzr_patch(fzrecv *r, rbuf *b, interp_msg *m, char *why, size_t whylen);

/* ---- waker and bell (bell.c) ------------------------------------------------------------ */

/* The slabs of the small messages a communication thread makes (results on the root, items
 * on a rank), kept while the host frees them so that the next map's reuse them. */
#define MPI__SLAB_CACHE_BYTES ((size_t)16 << 20)
#define MPI__SLAB_IDLE_BYTES ((size_t)2 << 20)

/* What a communication thread sleeps on: a futex word (its own, or its slot of the bell). */
typedef struct waker {
    _Atomic uint32_t *seq, *sleepers;
    uint32_t seen; /* the sleeping thread's: the word when it last woke */
    _Atomic uint32_t own_seq, own_sleepers;
} waker;

void waker_init(waker *w);
void waker_destroy(waker *w);
/* Any thread, never blocks. */
void waker_kick(waker *w);
/* A kick came since the last sleep (the next sleep returns at once). */
bool waker_pending(const waker *w);
/* Sleep up to secs unless kicked (since the last sleep); true when kicked. One thread per
 * waker. */
bool waker_sleep(waker *w, double secs);

/* The wakers of the ranks on the root's host, in memory they share (bell.c). */
typedef struct bell {
    struct bell_slot *slots; /* NULL: no bell */
    int size;
} bell;
#define BELL_NAME_MAX 64
/* Root: make the shared object for size ranks, its name and token to send to the ranks.
 * false (no bell, *b zeroed, name empty) when the system has none to give. */
bool bell_create(bell *b, int size, char name[BELL_NAME_MAX], uint64_t *token);
/* Another rank: map the root's object; false when it is not there or not the root's. */
bool bell_open(bell *b, const char *name, uint64_t token, int size);
/* Remove the object's name once every rank had its chance to open it. */
void bell_unlink(const char *name);
void bell_close(bell *b);
/* Rank k's waker w sleeps on its slot from now on (the others can ring it). */
void bell_attach(bell *b, int k, waker *w);
/* Rank k is woken by bell_ring (its waker is in b). */
bool bell_rings(const bell *b, int k);
/* Kick rank k's waker if it is in the bell, else nothing. Any thread. */
void bell_ring(bell *b, int k);
/* A receiver could not take a large message without its sender's progress (Open MPI without
 * its single copy): from now on every rank of the bell polls for its large sends. */
void bell_no_pull(bell *b);
/* Receivers of the bell take large messages alone (no bell_no_pull yet). */
bool bell_pulls(const bell *b);

/* The longest sleep between polls while units are out, `quiet` seconds after the loop last
 * had something to do: 0.5 ms, growing to 5 ms as quiet/16 (units that run long are answered
 * at most ~6% of their time late; their ranks' and the root's polls cost less while they run). */
static inline double busy_cap(double quiet)
{
    double c = quiet / 16;
    return c < 500e-6 ? 500e-6 : c > 5e-3 ? 5e-3 : c;
}
/* The longest sleep between polls of a rank with nothing to do: work that comes after a pause
 * starts at most this late. */
#define MPI__IDLE_NAP 0.025
/* The same for a rank the root rings (bell.c): it is woken for anything the root sends. */
#define MPI__BELL_NAP 0.1
/* The longest sleep of a rank the root rings while it runs units, and of the root while the
 * ranks that ring it hold units: both are woken for what they wait for; this bounds the wait
 * should a ring come with another event before its message could be probed. */
#define MPI__RUNG_NAP 0.005
/* After a ring or a kick that found nothing to do (nor a push to the root's queue explains),
 * how long a loop keeps polling often: a ring can come before its message is there to be
 * probed (the sender's MPI still has to push it out). Most such wake-ups are rings for
 * messages taken already: a short while is enough. */
#define MPI__WARM 0.002

/* ---- server: one rank's local pool running units (server.c) ---------------------------- */

typedef struct reply {
    struct reply *next;
    uint64_t id;
    wbuf buf; /* the whole DONE message */
} reply;

typedef struct srv srv;

/* Create the rank's local pool with opts (print etc. as given). Replies are queued and wk
 * kicked. INTERP_OK, or the pool's error (text in *err). */
int srv_new(srv **out, const interp_pool_options *opts, waker *wk, char **err);
int srv_workers(const srv *s);
/* The local pool (the root runs its own map chunks there: interp__backend_chunk_local). */
interp_pool *srv_pool(srv *s);
/* A WORK message (bytes borrowed). A unit that cannot be decoded is answered with its error. */
void srv_work(srv *s, const char *data, size_t len);
/* TAG_FROZEN's bytes (borrowed): keep the value for the units that use it. */
void srv_frozen(srv *s, const char *data, size_t len);
/* The root's own server: value id is obj itself (the reference passes). */
void srv_frozen_put(srv *s, uint64_t id, interp_frozen *obj);
/* TAG_FORGET. */
void srv_forget(srv *s, uint64_t id);
/* Interrupt unit id (0: every unit, and the local pool shuts down now: reason SHUTDOWN). */
void srv_cancel(srv *s, uint64_t id, int reason);
/* Take every finished reply (a chain, oldest first; the caller frees each with reply_free). */
reply *srv_replies(srv *s);
void reply_free(reply *r);
/* Units received and not yet answered. */
size_t srv_busy(srv *s);
/* Shut the local pool down now, wait for every unit, free. */
void srv_free(srv *s);

/* Lua's bytecode header on this build (string.dump of an empty function, up to its first
 * instruction count): *n bytes into buf (at most 64). */
void mpi__bytecode_header(unsigned char buf[64], size_t *n);
/* Compare two headers: NULL when equal, else a static text naming the first field that
 * differs. */
const char *mpi__bytecode_differs(const unsigned char *a, size_t na, const unsigned char *b,
                                  size_t nb);

/* ---- root (root.c) ---------------------------------------------------------------------- */

/* What create learned from each rank at the handshake. */
typedef struct mpi__rank_hello {
    int32_t rc;      /* its local pool's creation status */
    int32_t workers; /* its local pool's workers (0: the root runs none) */
    int32_t pid;
    uint32_t bc_len;
    unsigned char bc[64];
    char host[64]; /* its host name */
    char err[336]; /* its creation error, cut */
} mpi__rank_hello;

/* Build the root's pool over comm (already the pool's own duplicate; ownership of comm, local,
 * wk, the waker local kicks, and bl, the bell (may be NULL), passes). INTERP_OK and *out. */
int mpi__root_start(interp_pool **out, MPI_Comm comm, const interp_pool_options *opts,
                    const interp_mpi_options *mo, srv *local, waker *wk, bell *bl,
                    const mpi__rank_hello *hello, char **err);

/* ---- the root's last words (lastwords.c) ------------------------------------------------
 *
 * Under Open MPI 4.1 a rank that dies ends the job: mpiexec terminates the others (SIGTERM).
 * While an MPI pool lives, the root catches SIGTERM (only if nobody else handles it) and, in
 * the handler, writes what each rank held and which of the ranks on its host has exited,
 * then dies of the signal as it would have. */

/* Install (ranks' pids and whether each runs on the root's host). false when not installed
 * (a handler is already there, or another pool has it). */
bool mpi__lastwords_install(int size, int me, const mpi__rank_hello *hello);
/* The communication thread's view of rank k (async-signal-safe to read). */
void mpi__lastwords_update(int k, int units, size_t items, double last_heard);
void mpi__lastwords_remove(void);

/* Non-root: the communication loop until the root says stop (bl: the bell, may be NULL or
 * empty; the caller closes it after freeing s). */
int mpi__serve_loop(MPI_Comm comm, int root, srv *s, waker *wk, bell *bl, double heartbeat);

/* Sends up to this size may go out eagerly (Open MPI's shared-memory eager limit is 4 KiB):
 * one that had to wait for room rings its receiver again when it completes. A larger one
 * completes only once its receiver took it: no second ring. */
#define MPI__RING_AGAIN_MAX 4096

/* Pending non-blocking sends of one communication thread. A large send to a rank of the bell
 * needs no polling: its receiver pulls it (Open MPI's single copy) and its completion, seen at
 * this thread's next wake-up (the answer it was sent for), frees only its buffer. A receiver
 * that finds it needs the sender's progress after all rings it as it waits and says so
 * (bell_no_pull): from then on large sends are polled for too, as the others are. */
typedef struct sendq {
    struct sendq_item *head;
    size_t n;
    size_t npoll; /* of them, the small ones and those to ranks outside the bell */
    bell *bell;   /* rung for each send (but beats) as it is posted, a small one as it completes */
} sendq;
/* Send len bytes (ownership of buf passes) to dest with tag, without blocking; ring dest. */
int sendq_post(sendq *q, MPI_Comm comm, int dest, int tag, char *buf, size_t len);
/* Complete finished sends; true if any did. */
bool sendq_progress(sendq *q);
/* How many pending sends this thread must poll for. */
size_t sendq_polled(const sendq *q);
/* Wait (polling with sleeps) until every send completed or `secs` passed. */
void sendq_drain(sendq *q, double secs);
/* A buffer of at least need bytes (*cap of them): a kept one (mpi__buf_give) or malloc'd. */
char *mpi__buf_take(size_t need, size_t *cap);
/* Keep malloc'd buffer p for a later take (a large one), or free it. NULL-safe. */
void mpi__buf_give(char *p);
/* Receive a probed message into a buffer of mpi__buf_take (its owner gives it back). A large
 * one from a rank of bell bl (may be NULL) that cannot be taken at once rings its sender
 * until it is (its sender may not poll for it: sendq). */
char *mpi__recv_probed(MPI_Comm comm, MPI_Status *st, size_t *len, bell *bl);
/* MPI_Iprobe that looks twice when the first look finds nothing: Open MPI's first look may
 * only progress, pulling in a message that it then does not match (a rung thread woken for
 * it would find nothing and fall back to polling). */
int mpi__iprobe(int src, MPI_Comm comm, int *flag, MPI_Status *st);
/* Wait for a request, polling with backoff sleeps (never Open MPI's spinning wait). */
int mpi__wait(MPI_Request *req, MPI_Status *st);

#endif
