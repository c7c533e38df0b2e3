/* root.c - the root's backend (core/backend.h): one communication thread takes the pool's
 * queued jobs, sends each as a unit to the rank with the most free capacity (the root's own
 * server is called directly; its map chunks go to its local pool's worker as they are),
 * matches replies to units, ends futures and chunks, watches the ranks' heartbeats and
 * carries cancels and shutdown to the ranks.
 *
 * Units are kept in a table guarded by r->mu (the communication thread changes it; interrupt
 * looks a job up in it from any thread). A unit ended at the root before its rank answered
 * (a map's timeout) stays as a ghost until the answer comes, so the rank's capacity stays
 * counted right. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "core_impl.h"
#include "mpi_impl.h"

typedef struct unit {
    struct unit *next; /* table chain / retry list */
    uint64_t id;
    interp__job *job; /* NULL: a ghost (ended here, its rank still runs it) */
    interp__backend_work w;
    int rank;
} unit;

typedef struct rank_st {
    int workers, cap, inflight;
    size_t items; /* items of the units in flight */
    double last_heard;
    bool lost, bye, bc_ok;
    const char *bc_why;
    int pid;
} rank_st;

typedef struct ireq {
    struct ireq *next;
    uint64_t id;
    int reason;
} ireq;

#define NBUCKETS 256

typedef struct root {
    interp_pool *pool;
    MPI_Comm comm;
    int size, me;
    rank_st *ranks;
    srv *local;
    waker *wk;  /* the local server kicks it too; in the bell, the ranks ring it */
    bell *bell; /* may be NULL */
    pthread_t thread;
    bool started;
    double hb;
    int on_lost, max_depth;
    pthread_mutex_t mu;
    pthread_cond_t idle_cv;
    /* guarded by mu */
    unit *table[NBUCKETS];
    size_t live; /* units with a job */
    ireq *ireqs;
    bool now_req, now_done, stop_req, stopped, idle;
    /* communication thread only */
    unit *retry_head, *retry_tail;
    uint64_t next_id;
    sendq sq;
    unsigned char bc[64];
    size_t bc_len;
    int rr;             /* where the search for a free rank starts */
    bool lastwords;     /* the SIGTERM handler is ours (lastwords.c) */
    double last_answer; /* when the loop last had something to do */
    double warm;        /* poll often until then (MPI__WARM) */
    fzsend fz;          /* frozen values sent to the ranks (frozen_send.c) */
    fzs_target fz_remote, fz_local;
    double fz_swept;           /* when the cache was last swept */
    interp__slab_cache *slabs; /* of the results (NULL: none) */
    /* the root's own map chunks, run by its local pool's worker (interp__backend_chunk_local):
     * how many are there, and how many ended since the loop last looked */
    atomic_int local_live, local_ended;
    atomic_uint pushes; /* jobs queued (be_wake): a wake-up they explain needs no polling */
    unsigned pushes_seen;
} root;

static size_t unit_items(const unit *u) { return u->w.kind == INTERP__JOB_TASK ? 1 : u->w.n; }

/* Rank k's in-flight count changed by delta units of `items` items. */
static void count(root *r, int k, int delta, size_t items)
{
    rank_st *s = &r->ranks[k];
    s->inflight += delta;
    s->items = delta > 0 ? s->items + items : s->items - items;
    mpi__lastwords_update(k, s->inflight, s->items, s->last_heard);
}

/* ---- the unit table (r->mu held) ------------------------------------------------------ */

static void table_put(root *r, unit *u)
{
    unit **b = &r->table[u->id % NBUCKETS];
    u->next = *b;
    *b = u;
    if (u->job)
        r->live++;
}

static unit *table_take(root *r, uint64_t id)
{
    for (unit **pp = &r->table[id % NBUCKETS]; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            unit *u = *pp;
            *pp = u->next;
            if (u->job)
                r->live--;
            return u;
        }
    return NULL;
}

static unit *table_find(root *r, uint64_t id)
{
    for (unit *u = r->table[id % NBUCKETS]; u; u = u->next)
        if (u->id == id)
            return u;
    return NULL;
}

/* ---- ending units ------------------------------------------------------------------------ */

/* End u's job with every item failing with status and text; frees u. */
static void fail_unit(unit *u, int status, const char *text)
{
    if (u->job && u->w.kind == INTERP__JOB_TASK) {
        interp__backend_task_end(u->job, status, NULL, interp__dup_text(text), NULL);
    } else if (u->job) {
        interp_outcome *outs = calloc(u->w.n ? u->w.n : 1, sizeof *outs);
        if (!outs) {
            interp__backend_chunk_end(u->job, NULL, status);
        } else {
            for (size_t i = 0; i < u->w.n; i++) {
                outs[i].status = status;
                outs[i].error = interp__dup_text(text);
            }
            interp__backend_chunk_end(u->job, outs, 0);
            free(outs);
        }
    }
    free(u);
}

static void retry_push(root *r, unit *u)
{
    u->next = NULL;
    if (r->retry_tail)
        r->retry_tail->next = u;
    else
        r->retry_head = u;
    r->retry_tail = u;
}

/* ---- sending ----------------------------------------------------------------------------- */

static void post(root *r, int dest, int tag, wbuf *b)
{
    if (b->fail) {
        free(b->p);
        return;
    }
    if (sendq_post(&r->sq, r->comm, dest, tag, b->p, b->len) == INTERP_ERR_SYSTEM) {
        fprintf(stderr, "interp_mpi: root: cannot send to rank %d; aborting the job\n", dest);
        MPI_Abort(r->comm, 70);
    }
}

static void send_cancel(root *r, int rank, uint64_t id, int reason)
{
    if (rank == r->me) {
        if (r->local)
            srv_cancel(r->local, id, reason);
        return;
    }
    if (r->ranks[rank].lost)
        return;
    wbuf b = {0};
    wb_u64(&b, id);
    wb_u32(&b, (uint32_t)reason);
    post(r, rank, TAG_CANCEL, &b);
}

static bool needs_bytecode(const interp__backend_work *w)
{
    return w->fn->kind == INTERP_FN_FUNCTION;
}

/* The rank with the most free places that can run w; -1 if none is free now; -2 if none
 * ever could (*why then says why). */
static int pick_rank(root *r, const interp__backend_work *w, const char **why)
{
    int best = -1, best_free = 0;
    bool any = false;
    *why = "no rank is left: every one was lost";
    for (int i = 0; i < r->size; i++) {
        int k = (r->rr + i) % r->size;
        rank_st *s = &r->ranks[k];
        if (s->lost || s->cap == 0)
            continue;
        if (needs_bytecode(w) && !s->bc_ok) {
            *why = s->bc_why;
            continue;
        }
        any = true;
        int free_places = s->cap - s->inflight;
        if (free_places > best_free) {
            best = k;
            best_free = free_places;
        }
    }
    if (best >= 0)
        r->rr = (best + 1) % r->size;
    return best >= 0 ? best : any ? -1 : -2;
}

/* Write u's WORK and send it to u->rank (its frozen values first, where that rank lacks
 * them). INTERP_OK, or why it cannot go (nothing was sent for it then). */
static int send_unit(root *r, unit *u)
{
    const interp__backend_work *w = &u->w;
    wbuf b = {0};
    size_t n = w->kind == INTERP__JOB_TASK ? 1 : w->n;
    const interp_msg *const *items = w->kind == INTERP__JOB_TASK ? &w->args : w->items;
    bool frozen = false;
    size_t need = 64 + (w->fn->kind == INTERP_FN_FUNCTION ? interp_msg_size(w->fn->function)
                                                          : strlen(w->fn->text));
    size_t bytes = items ? interp__msg_wire_bytes(items, sizeof *items, n, &frozen) : 0;
    wb_reserve(&b, need + bytes + 12 * n);
    wb_u64(&b, u->id);
    wb_u8(&b, w->kind == INTERP__JOB_TASK ? UNIT_TASK : UNIT_CHUNK);
    wb_u8(&b, (uint8_t)w->fn->kind);
    wb_u8(&b, w->stop_on_error);
    wb_u8(&b, frozen);
    wb_f64(&b, w->timeout);
    if (w->fn->kind == INTERP_FN_FUNCTION)
        wb_msg(&b, w->fn->function);
    else
        wb_blob(&b, w->fn->text,
                w->fn->kind == INTERP_FN_SOURCE && w->fn->len ? w->fn->len : strlen(w->fn->text));
    wb_u64(&b, n);
    const fzs_target *t = u->rank == r->me ? &r->fz_local : &r->fz_remote;
    int rc = INTERP_OK;
    if (!frozen && items)
        wb_records_sized(&b, items, sizeof *items, n, bytes);
    else if (!frozen)
        wb_absent(&b, n);
    for (size_t i = 0; frozen && i < n && rc == INTERP_OK; i++)
        rc = fzs_put_msg(&r->fz, &b, items[i], u->rank, t);
    if (rc == INTERP_OK && b.fail)
        rc = INTERP_ERR_NOMEM;
    if (rc != INTERP_OK) {
        free(b.p);
        return rc;
    }
    count(r, u->rank, 1, unit_items(u));
    if (u->rank == r->me) {
        srv_work(r->local, b.p, b.len);
        free(b.p);
    } else {
        post(r, u->rank, TAG_WORK, &b);
    }
    return INTERP_OK;
}

/* ---- frozen values to the ranks (frozen_send.c) ------------------------------------------- */

static int fz_local(void *ud, uint64_t id, const interp_frozen *obj)
{
    root *r = ud;
    srv_frozen_put(r->local, id, interp_frozen_retain(obj));
    return INTERP_OK;
}

static int fz_send(void *ud, int rank, char *buf, size_t len)
{
    root *r = ud;
    wbuf b = {.p = buf, .len = len, .cap = len};
    post(r, rank, TAG_FROZEN, &b);
    return INTERP_OK;
}

static void fz_forget(void *ud, int rank, uint64_t id)
{
    root *r = ud;
    if (rank == r->me) {
        if (r->local)
            srv_forget(r->local, id);
        return;
    }
    if (r->ranks[rank].lost)
        return;
    wbuf b = {0};
    wb_u64(&b, id);
    post(r, rank, TAG_FORGET, &b);
}

/* End a taken job that was not sent, with status, as its kind ends. */
static void end_taken(interp__job *job, int kind, int status)
{
    if (kind == INTERP__JOB_TASK)
        interp__backend_task_end(job, status, NULL, NULL, NULL);
    else
        interp__backend_chunk_end(job, NULL, status);
}

/* While some rank has room: the next queued job as a unit, at the head of the (empty) retry
 * list. NULL when nothing is to be sent now. */
static unit *take_unit(root *r)
{
    for (;;) {
        bool room = false;
        for (int k = 0; k < r->size && !room; k++)
            room = !r->ranks[k].lost && r->ranks[k].inflight < r->ranks[k].cap;
        if (!room)
            return NULL;
        interp__backend_work w;
        interp__job *job = interp__backend_take(r->pool, &w);
        if (!job)
            return NULL;
        unit *u = calloc(1, sizeof *u);
        if (u) {
            u->job = job;
            u->w = w;
            retry_push(r, u);
            return u;
        }
        unit tmp = {.job = job, .w = w};
        unit *t = malloc(sizeof *t);
        if (t) {
            *t = tmp;
            fail_unit(t, INTERP_ERR_NOMEM, "out of memory on the root");
        } else {
            end_taken(job, w.kind, INTERP_ERR_NOMEM);
        }
    }
}

/* No rank can run u (pick_rank said why): fail it. */
static void refuse_unit(unit *u, const char *why)
{
    char text[300];
    if (needs_bytecode(&u->w))
        snprintf(text, sizeof text,
                 "no rank can load the function's bytecode (%s differs "
                 "from the root's); pass it as source (INTERP_FN_SOURCE) or by name",
                 why);
    else
        snprintf(text, sizeof text, "%s", why);
    fail_unit(u, needs_bytecode(&u->w) ? INTERP_ERR_DECODE : INTERP_ERR_BROKEN, text);
}

/* A local chunk ended (its worker's thread, or the root's). */
static void local_done(void *ud)
{
    root *r = ud;
    atomic_fetch_add_explicit(&r->local_ended, 1, memory_order_release);
    waker_kick(r->wk);
}

/* The root's own share of a map: its local pool's worker runs the chunk itself, reading the
 * job's items in place and delivering the results into the caller's slots (no unit, no copy;
 * interrupts reach it as any local chunk's). Frees u. */
static void give_local(root *r, unit *u)
{
    count(r, r->me, 1, 0);
    atomic_fetch_add_explicit(&r->local_live, 1, memory_order_relaxed);
    interp__backend_chunk_local(u->job, srv_pool(r->local), local_done, r);
    free(u);
}

/* Local chunks that ended since the last look: their places are free again. */
static bool local_ended(root *r)
{
    int d = atomic_exchange_explicit(&r->local_ended, 0, memory_order_acquire);
    if (d) {
        count(r, r->me, -d, 0);
        atomic_fetch_sub_explicit(&r->local_live, d, memory_order_relaxed);
    }
    return d > 0;
}

/* Send what can go now: resubmitted units first, then queued jobs. */
static bool dispatch(root *r)
{
    bool any = false;
    for (;;) {
        unit *u = r->retry_head ? r->retry_head : take_unit(r);
        if (!u)
            break;
        interp__backend_work w = u->w;
        const char *why;
        int k = pick_rank(r, &w, &why);
        if (k == -1)
            break; /* wait for room */
        r->retry_head = u->next;
        if (!r->retry_head)
            r->retry_tail = NULL;
        any = true;
        if (k == -2) {
            refuse_unit(u, why);
            continue;
        }
        if (k == r->me && w.kind == INTERP__JOB_CHUNK) {
            give_local(r, u);
            continue;
        }
        u->id = ++r->next_id;
        u->rank = k;
        pthread_mutex_lock(&r->mu);
        table_put(r, u);
        pthread_mutex_unlock(&r->mu);
        /* a cancel or a map timeout that came while it was being taken found no unit */
        int st = interp__backend_stop_status(u->job);
        if (st) {
            pthread_mutex_lock(&r->mu);
            table_take(r, u->id);
            pthread_mutex_unlock(&r->mu);
            end_taken(u->job, w.kind, st);
            free(u);
            continue;
        }
        int rc = send_unit(r, u);
        if (rc != INTERP_OK) {
            pthread_mutex_lock(&r->mu);
            table_take(r, u->id);
            pthread_mutex_unlock(&r->mu);
            fail_unit(u, rc,
                      "out of memory on the root sending the unit (or a frozen value "
                      "of its arguments)");
        }
    }
    return any;
}

/* ---- receiving --------------------------------------------------------------------------- */

/* One failed item of a DONE into outs (want of them, the others still INTERP_OK). */
static bool read_failure(root *r, rbuf *b, interp_outcome *outs, size_t want, uint64_t *next)
{
    uint64_t i = rb_u64(b);
    int status = (int32_t)rb_u32(b);
    if (b->fail || i < *next || i >= want || status == INTERP_OK)
        return false;
    *next = i + 1;
    interp_outcome *o = &outs[i];
    o->status = status;
    o->error = rb_text(b);
    int rc = rb_msg(b, r->max_depth, &o->error_value);
    if (b->fail)
        return false;
    if (rc != INTERP_OK) { /* an error value this root refuses (its limits) */
        interp__outcome_clear(o);
        o->status = rc;
        o->error = interp__dup_text("the error value sent by the rank could not be decoded");
    } else if (!o->error) {
        o->error = interp__dup_text(interp_strerror(status));
    }
    return true;
}

/* The outcomes of a DONE (after its id and count) into outs[0..want), zeroed (a chunk's own
 * slots are kept so: backend.h; clearing them again was ~2% of this thread's time): every
 * slot set; false (and none left holding anything) when malformed. A result this root cannot
 * make (memory) fails that item. */
static bool read_outcomes(root *r, rbuf *b, interp_outcome *outs, size_t want)
{
    uint32_t nfail = rb_u32(b);
    bool ok = !b->fail && nfail <= want;
    uint64_t next = 0;
    for (uint32_t k = 0; ok && k < nfail; k++)
        ok = read_failure(r, b, outs, want, &next);
    interp__slab *slab = NULL;
    int rc = ok ? rb_records(b, r->slabs, &slab, want, &outs[0].result, sizeof *outs)
                : INTERP_ERR_DECODE;
    interp__slab_release(slab);   /* its members live on in the outcomes */
    if (rc == INTERP_ERR_NOMEM) { /* those not made fail; the others stand */
        for (size_t i = 0; i < want; i++)
            if (outs[i].status == INTERP_OK && !outs[i].result) {
                outs[i].status = INTERP_ERR_NOMEM;
                outs[i].error = interp__dup_text("out of memory on the root for the result");
            }
    } else if (rc != INTERP_OK) {
        for (size_t i = 0; i < want; i++)
            interp__outcome_clear(&outs[i]);
        return false;
    }
    return true;
}

static void on_done(root *r, int src, const char *data, size_t len)
{
    rbuf b = {.p = data, .len = len};
    uint64_t id = rb_u64(&b);
    uint64_t n = rb_u64(&b);
    pthread_mutex_lock(&r->mu);
    unit *u = table_find(r, id);
    if (u && u->rank == src)
        table_take(r, id);
    else
        u = NULL; /* a late answer for a unit already failed or sent elsewhere */
    pthread_mutex_unlock(&r->mu);
    if (!u)
        return;
    count(r, src, -1, unit_items(u));
    if (!u->job) {
        free(u);
        return;
    }
    size_t want = u->w.kind == INTERP__JOB_TASK ? 1 : u->w.n;
    /* a chunk's results are made straight into its own slots */
    interp_outcome one = {.status = INTERP_OK};
    interp_outcome *outs =
        u->w.kind == INTERP__JOB_TASK ? &one : interp__backend_chunk_slots(u->job);
    if (b.fail || n != want || !read_outcomes(r, &b, outs, want)) {
        char text[120];
        snprintf(text, sizeof text, "rank %d sent a malformed answer", src);
        fail_unit(u, INTERP_ERR_DECODE, text);
        return;
    }
    if (u->w.kind == INTERP__JOB_TASK)
        interp__backend_task_end(u->job, outs[0].status, outs[0].result, outs[0].error,
                                 outs[0].error_value);
    else
        interp__backend_chunk_end(u->job, outs, 0);
    free(u);
}

static bool poll_incoming(root *r)
{
    bool any = false;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (mpi__iprobe(MPI_ANY_SOURCE, r->comm, &flag, &st) != MPI_SUCCESS) {
            fprintf(stderr, "interp_mpi: root: MPI_Iprobe failed; aborting the job\n");
            MPI_Abort(r->comm, 70);
        }
        if (!flag)
            return any;
        any = true;
        size_t len = 0;
        char *buf = mpi__recv_probed(r->comm, &st, &len, r->bell);
        int src = st.MPI_SOURCE;
        if (src < 0 || src >= r->size || src == r->me) {
            mpi__buf_give(buf);
            continue;
        }
        r->ranks[src].last_heard = interp_now();
        mpi__lastwords_update(src, r->ranks[src].inflight, r->ranks[src].items,
                              r->ranks[src].last_heard);
        if (buf && st.MPI_TAG == TAG_DONE)
            on_done(r, src, buf, len);
        else if (st.MPI_TAG == TAG_BYE)
            r->ranks[src].bye = true;
        mpi__buf_give(buf);
    }
}

static bool local_replies(root *r)
{
    if (!r->local)
        return false;
    reply *rp = srv_replies(r->local);
    bool any = rp != NULL;
    while (rp) {
        reply *next = rp->next;
        on_done(r, r->me, rp->buf.p, rp->buf.len);
        reply_free(rp);
        rp = next;
    }
    return any;
}

/* ---- interrupts, shutdown, heartbeats ---------------------------------------------------- */

static bool interrupts(root *r)
{
    pthread_mutex_lock(&r->mu);
    ireq *q = r->ireqs;
    r->ireqs = NULL;
    bool now = r->now_req && !r->now_done;
    r->now_done = r->now_req;
    pthread_mutex_unlock(&r->mu);
    bool any = q || now;
    while (q) {
        ireq *next = q->next;
        pthread_mutex_lock(&r->mu);
        unit *u = table_find(r, q->id);
        int rank = u ? u->rank : -1;
        interp__job *job = u ? u->job : NULL;
        int kind = u ? u->w.kind : 0;
        /* a chunk (its map timed out or was interrupted) ends here at once: its rank is told
         * to stop it too, and its late answer is dropped (the root's own chunks are not
         * units: their map interrupts their worker itself) */
        bool ghost = job && kind == INTERP__JOB_CHUNK;
        if (ghost) {
            u->job = NULL; /* a ghost from here on */
            r->live--;
        }
        pthread_mutex_unlock(&r->mu);
        if (ghost)
            interp__backend_chunk_end(job, NULL, q->reason);
        if (job) /* a task ends when its rank answers; a chunk's rank stops it early */
            send_cancel(r, rank, q->id, q->reason);
        free(q);
        q = next;
    }
    if (now) {
        for (int k = 0; k < r->size; k++)
            if (r->ranks[k].cap > 0)
                send_cancel(r, k, 0, INTERP_ERR_SHUTDOWN);
        while (r->retry_head) {
            unit *u = r->retry_head;
            r->retry_head = u->next;
            fail_unit(u, INTERP_ERR_SHUTDOWN, interp__status_end_text(INTERP_ERR_SHUTDOWN));
        }
        r->retry_tail = NULL;
    }
    return any;
}

static void lose_rank(root *r, int k, double silent)
{
    rank_st *s = &r->ranks[k];
    s->lost = true;
    char text[300];
    snprintf(text, sizeof text,
             "rank %d (pid %d) stopped answering: nothing heard from it for %.1f s (heartbeat "
             "timeout %.1f s); what it held is lost",
             k, s->pid, silent, r->hb);
    unit *mine = NULL;
    pthread_mutex_lock(&r->mu);
    for (int b = 0; b < NBUCKETS; b++)
        for (unit **pp = &r->table[b]; *pp;) {
            unit *u = *pp;
            if (u->rank != k) {
                pp = &u->next;
                continue;
            }
            *pp = u->next;
            if (u->job)
                r->live--;
            u->next = mine;
            mine = u;
        }
    pthread_mutex_unlock(&r->mu);
    size_t n = 0, resent = 0;
    while (mine) {
        unit *u = mine;
        mine = u->next;
        count(r, k, -1, unit_items(u));
        if (!u->job) {
            free(u);
            continue;
        }
        n += u->w.kind == INTERP__JOB_TASK ? 1 : u->w.n;
        if (r->on_lost == INTERP_MPI_LOST_RESUBMIT && !r->now_done) {
            resent += u->w.kind == INTERP__JOB_TASK ? 1 : u->w.n;
            retry_push(r, u);
        } else {
            fail_unit(u, INTERP_ERR_BROKEN, text);
        }
    }
    fprintf(stderr,
            "interp_mpi: root: rank %d (pid %d) lost: silent for %.1f s; %zu item(s) it "
            "held %s\n",
            k, s->pid, silent, n, resent ? "sent to the other ranks" : "failed");
}

static void heartbeats(root *r)
{
    double now = interp_now();
    for (int k = 0; k < r->size; k++) {
        rank_st *s = &r->ranks[k];
        if (k == r->me || s->lost || s->bye)
            continue;
        if (now - s->last_heard > r->hb)
            lose_rank(r, k, now - s->last_heard);
    }
}

static void update_idle(root *r)
{
    bool idle = !r->retry_head && interp__backend_drained(r->pool);
    pthread_mutex_lock(&r->mu);
    idle = idle && r->live == 0 && atomic_load_explicit(&r->local_live, memory_order_relaxed) == 0;
    bool now_idle = idle && !r->idle;
    if (idle != r->idle) {
        r->idle = idle;
        if (idle)
            pthread_cond_broadcast(&r->idle_cv);
    }
    pthread_mutex_unlock(&r->mu);
    if (now_idle) /* the result slabs the host frees from now on go back to malloc */
        interp__slab_cache_idle(r->slabs);
}

/* Tell every rank to leave serve and wait (bounded) for their goodbyes. */
static void stop_ranks(root *r)
{
    for (int k = 0; k < r->size; k++) {
        if (k == r->me)
            continue;
        wbuf b = {0};
        wb_u8(&b, 0);
        post(r, k, TAG_STOP, &b);
    }
    double end = interp_now() + r->hb, nap = 20e-6;
    for (;;) {
        sendq_progress(&r->sq);
        bool any = poll_incoming(r);
        bool all = true;
        for (int k = 0; k < r->size; k++)
            if (k != r->me && !r->ranks[k].bye && !r->ranks[k].lost)
                all = false;
        if (all || interp_now() > end)
            break;
        if (!any) {
            waker_sleep(r->wk, nap);
            nap = nap < 5e-3 ? nap * 2 : nap;
        }
    }
    for (int k = 0; k < r->size; k++)
        if (k != r->me && !r->ranks[k].bye)
            fprintf(stderr, "interp_mpi: root: rank %d (pid %d) did not confirm the stop\n", k,
                    r->ranks[k].pid);
    sendq_drain(&r->sq, 1.0);
}

static void *root_main(void *arg)
{
    root *r = arg;
    pthread_setname_np(pthread_self(), "interp-mpi");
    r->last_answer = interp_now();
    interp__set_pool_thread(r->pool); /* callbacks run here: shutdown from one must not wait */
    double nap = 20e-6;
    bool woke = false; /* the last sleep ended with a kick or a ring */
    for (;;) {
        bool busy = sendq_progress(&r->sq);
        busy |= poll_incoming(r);
        busy |= local_replies(r);
        busy |= local_ended(r);
        busy |= interrupts(r);
        busy |= dispatch(r);
        heartbeats(r);
        if (r->fz.n && interp_now() - r->fz_swept > 0.05) {
            fzs_sweep(&r->fz, &r->fz_remote);
            r->fz_swept = interp_now();
        }
        update_idle(r);
        pthread_mutex_lock(&r->mu);
        bool stop = r->stop_req;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        if (busy) {
            nap = 20e-6;
            woke = false;
            r->last_answer = interp_now();
            continue;
        }
        /* a wake-up that found nothing to do: a ring whose message cannot be probed yet (the
         * sender's MPI has not pushed it out), so poll often for a while (rare: mpi__iprobe
         * looks twice, the first look of Open MPI's may only pull the message in) */
        unsigned pushes = atomic_load_explicit(&r->pushes, memory_order_relaxed);
        if (woke && pushes == r->pushes_seen) {
            r->warm = interp_now() + MPI__WARM;
        }
        r->pushes_seen = pushes;
        woke = false;
        /* units in flight on a rank that cannot ring: their answers come only by polling, so
         * poll often, as for sends still waiting to go out (but large ones to ranks that ring:
         * they pull them, sendq); else the ranks ring when they answer (and the queue's pushes
         * kick the waker): sleep until then, with a bound while units or sends are out in
         * case a ring came with another event before its message */
        bool poll = sendq_polled(&r->sq) > 0, out = r->sq.n > 0;
        for (int k = 0; k < r->size; k++) {
            poll |= k != r->me && r->ranks[k].inflight && !bell_rings(r->bell, k);
            out |= k != r->me && r->ranks[k].inflight;
        }
        bool warm = interp_now() < r->warm;
        double cap = warm   ? busy_cap(0)
                     : poll ? busy_cap(interp_now() - r->last_answer)
                     : out  ? MPI__RUNG_NAP
                            : (r->hb / 8 < 0.05 ? r->hb / 8 : 0.05);
        bool pending = waker_pending(r->wk); /* a kick came while this thread was busy */
        if (waker_sleep(r->wk, warm || poll ? nap : cap)) {
            nap = 20e-6;
            woke = !pending;
        } else {
            nap = nap * 2 < cap ? nap * 2 : cap;
        }
    }
    stop_ranks(r);
    MPI_Comm_free(&r->comm);
    pthread_mutex_lock(&r->mu);
    r->stopped = true;
    pthread_cond_broadcast(&r->idle_cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- backend hooks ----------------------------------------------------------------------- */

static void be_wake(void *ud)
{
    root *r = ud;
    atomic_fetch_add_explicit(&r->pushes, 1, memory_order_relaxed);
    waker_kick(r->wk);
}

static void be_interrupt(void *ud, interp__job *job, int reason)
{
    root *r = ud;
    ireq *q = malloc(sizeof *q);
    pthread_mutex_lock(&r->mu);
    uint64_t id = 0;
    for (int b = 0; b < NBUCKETS && !id && !r->stopped; b++)
        for (unit *u = r->table[b]; u; u = u->next)
            if (u->job == job) {
                id = u->id;
                break;
            }
    if (id && q) {
        q->id = id;
        q->reason = reason;
        q->next = r->ireqs;
        r->ireqs = q;
        q = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    free(q);
    waker_kick(r->wk);
}

static void be_shutdown(void *ud, bool now, bool wait)
{
    root *r = ud;
    pthread_mutex_lock(&r->mu);
    if (now)
        r->now_req = true;
    pthread_mutex_unlock(&r->mu);
    waker_kick(r->wk);
    if (!wait)
        return;
    pthread_mutex_lock(&r->mu);
    while (!r->idle && !r->stopped && r->started)
        pthread_cond_wait(&r->idle_cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static void be_stop(void *ud)
{
    root *r = ud;
    pthread_mutex_lock(&r->mu);
    bool started = r->started;
    r->stop_req = true;
    pthread_mutex_unlock(&r->mu);
    waker_kick(r->wk);
    if (started) {
        pthread_join(r->thread, NULL);
        r->started = false;
    }
    if (r->lastwords)
        mpi__lastwords_remove();
    r->lastwords = false;
    fzs_free(&r->fz);
    srv_free(r->local);
    r->local = NULL;
}

static void be_free(void *ud)
{
    root *r = ud;
    if (!r->stopped && !r->started) { /* never ran: the ranks still wait for their stop */
        stop_ranks(r);
        MPI_Comm_free(&r->comm);
        r->stopped = true;
    }
    if (r->lastwords)
        mpi__lastwords_remove();
    fzs_free(&r->fz);
    srv_free(r->local);
    for (int b = 0; b < NBUCKETS; b++)
        while (r->table[b]) {
            unit *u = r->table[b];
            r->table[b] = u->next;
            free(u);
        }
    while (r->ireqs) {
        ireq *q = r->ireqs;
        r->ireqs = q->next;
        free(q);
    }
    free(r->ranks);
    interp__slab_cache_release(r->slabs);
    waker_destroy(r->wk);
    free(r->wk);
    if (r->bell)
        bell_close(r->bell);
    free(r->bell);
    pthread_cond_destroy(&r->idle_cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static const interp__backend mpi_backend = {
    .wake = be_wake,
    .interrupt = be_interrupt,
    .shutdown = be_shutdown,
    .stop = be_stop,
    .free = be_free,
    .auto_chunksize_max = MPI__AUTO_CHUNKSIZE_MAX,
};

int mpi__root_start(interp_pool **out, MPI_Comm comm, const interp_pool_options *opts,
                    const interp_mpi_options *mo, srv *local, waker *wk, bell *bl,
                    const mpi__rank_hello *hello, char **err)
{
    root *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "interp_mpi: root: out of memory at create; aborting the job\n");
        MPI_Abort(comm, 71); /* the ranks serve already: they would wait for ever */
    }
    r->wk = wk;
    r->bell = bl;
    r->sq.bell = bl;
    r->comm = comm;
    MPI_Comm_size(comm, &r->size);
    MPI_Comm_rank(comm, &r->me);
    r->local = local;
    r->hb = mo->heartbeat_timeout > 0 ? mo->heartbeat_timeout : 10.0;
    r->on_lost = mo->on_lost;
    r->max_depth = opts ? opts->max_depth : 0;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->idle_cv, NULL);
    r->slabs = interp__slab_cache_new(MPI__SLAB_CACHE_BYTES, MPI__SLAB_IDLE_BYTES);
    mpi__bytecode_header(r->bc, &r->bc_len);
    r->ranks = calloc((size_t)r->size, sizeof *r->ranks);
    fzs_init(&r->fz, r->size, local ? r->me : -1, r->me);
    r->fz_remote = (fzs_target){.send = fz_send, .forget = fz_forget, .ud = r};
    r->fz_local = (fzs_target){.local = fz_local, .forget = fz_forget, .ud = r};
    int total = 0;
    double now = interp_now();
    for (int k = 0; r->ranks && k < r->size; k++) {
        rank_st *s = &r->ranks[k];
        s->workers = hello[k].workers;
        s->cap = s->workers * MPI__UNITS_PER_WORKER;
        s->pid = hello[k].pid;
        s->last_heard = now;
        s->bc_why = mpi__bytecode_differs(hello[k].bc, hello[k].bc_len, r->bc, r->bc_len);
        s->bc_ok = s->bc_why == NULL;
        total += s->workers;
    }
    if (!r->ranks) {
        be_free(r);
        return INTERP_ERR_NOMEM;
    }
    if (total < 1) {
        if (err)
            *err = interp__dup_text("no rank runs workers (root_idle with a single rank)");
        be_free(r);
        return INTERP_ERR_INVALID;
    }
    interp_pool *pool;
    int rc = interp__pool_create_backend(&pool, opts, total, &mpi_backend, r, err);
    if (rc != INTERP_OK)
        return rc; /* r freed (ranks told to stop) */
    r->pool = pool;
    r->lastwords = mpi__lastwords_install(r->size, r->me, hello);
    r->started = true;
    if (pthread_create(&r->thread, NULL, root_main, r) != 0) {
        r->started = false;
        if (err)
            *err = interp__dup_text("cannot start the MPI communication thread");
        interp_pool_destroy(pool);
        return INTERP_ERR_SYSTEM;
    }
    *out = pool;
    return INTERP_OK;
}
