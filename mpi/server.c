/* server.c - one rank's executor: a local interp_pool running the units the root sends.
 *
 * A task becomes a local future whose on_done callback encodes the reply; a chunk becomes a
 * batch of runs queued on the local pool (interp__backend_batch_run: map chunks of their own,
 * run as a local map's are), whose worker moves each run's results into the unit's arrays and,
 * for its last run, encodes the reply. Replies queue here and kick the communication thread's
 * waker; only that thread touches MPI and the list of units. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "core_impl.h"
#include "mpi_impl.h"

typedef struct unit {
    struct unit *next; /* in srv->units: the communication thread's own list */
    struct srv *s;
    uint64_t id;
    int kind;
    interp_future *f; /* task */
    interp_fn fn;     /* chunk */
    interp_msg *fnmsg;
    char *fntext;
    size_t n;
    interp_msg **items;
    bool stop_on_error;
    /* chunk: its runs, and the outcomes they gather (items still to end in pending) */
    interp__backend_batch *batch;
    interp_msg **out;
    int *status;
    char **errors;
    atomic_size_t pending;
} unit;

struct srv {
    interp_pool *pool;
    waker *wk;
    int workers, max_depth;
    pthread_mutex_t mu;
    reply *r_head, *r_tail;    /* guarded by mu */
    unit *units;               /* communication thread only */
    size_t busy;               /* communication thread only */
    fzrecv fz;                 /* communication thread only: frozen values by the root's id */
    interp__slab_cache *slabs; /* communication thread's: of the items (NULL: none) */
};

void srv_frozen(srv *s, const char *data, size_t len) { fzr_recv(&s->fz, data, len, s->max_depth); }
void srv_frozen_put(srv *s, uint64_t id, interp_frozen *obj) { fzr_put(&s->fz, id, obj, NULL); }
void srv_forget(srv *s, uint64_t id) { fzr_forget(&s->fz, id); }

int srv_workers(const srv *s) { return s->workers; }
interp_pool *srv_pool(srv *s) { return s->pool; }
size_t srv_busy(srv *s) { return s->busy; }

void reply_free(reply *r)
{
    if (r) {
        free(r->buf.p);
        free(r);
    }
}

static void drop_inputs(unit *u);

static void push_reply(srv *s, reply *r)
{
    pthread_mutex_lock(&s->mu);
    r->next = NULL;
    if (s->r_tail)
        s->r_tail->next = r;
    else
        s->r_head = r;
    s->r_tail = r;
    pthread_mutex_unlock(&s->mu);
    waker_kick(s->wk);
}

reply *srv_replies(srv *s)
{
    pthread_mutex_lock(&s->mu);
    reply *r = s->r_head;
    s->r_head = s->r_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    /* the units answered are done with: forget them */
    for (reply *x = r; x; x = x->next) {
        for (unit **pp = &s->units; *pp; pp = &(*pp)->next) {
            if ((*pp)->id != x->id)
                continue;
            unit *u = *pp;
            *pp = u->next;
            interp_future_release(u->f);
            drop_inputs(u); /* a task's function text (a chunk's went before its reply) */
            interp__backend_batch_release(u->batch);
            free(u);
            s->busy--;
            break;
        }
    }
    if (r && s->busy == 0) /* idle: the item slabs freed from now on go back to malloc */
        interp__slab_cache_idle(s->slabs);
    return r;
}

/* A reply for unit id of n items, its buffer made `reserve` bytes long at first. */
static reply *reply_new(uint64_t id, size_t n, size_t reserve)
{
    reply *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->id = id;
    wb_reserve(&r->buf, 16 + reserve);
    wb_u64(&r->buf, id);
    wb_u64(&r->buf, n);
    return r;
}

static const char frozen_result[] =
    "the result holds a frozen value, which cannot travel to another MPI rank (its handle is an "
    "address in that process); return a plain copy";

/* One failed item of a DONE. */
static void put_failure(wbuf *b, size_t i, int status, const char *error,
                        const interp_msg *error_value)
{
    if (interp__msg_holds_frozen(error_value)) {
        status = INTERP_ERR_ENCODE;
        error = frozen_result;
        error_value = NULL;
    }
    wb_u64(b, i);
    wb_u32(b, (uint32_t)status);
    wb_text(b, error ? error : interp_strerror(status));
    wb_msg(b, error_value); /* a shared string's plain form; absent when out of memory */
}

/* Every item of unit id ends with status and text (a unit that could not be started). */
static void answer_failed(srv *s, uint64_t id, size_t n, int status, const char *text)
{
    reply *r = reply_new(id, n, n * (40 + strlen(text)));
    if (!r)
        return; /* out of memory: the root's heartbeat check cannot see this; nothing better */
    wb_u32(&r->buf, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        put_failure(&r->buf, i, status, text, NULL);
    wb_absent(&r->buf, n);
    push_reply(s, r);
}

static void task_done(interp_future *f, void *ud)
{
    unit *u = ud;
    const interp_msg *res = NULL;
    int st = interp_future_result(f, 0, &res);
    const char *error = interp_future_error(f);
    if (st == INTERP_OK && interp__msg_holds_frozen(res)) {
        st = INTERP_ERR_ENCODE;
        error = frozen_result;
    }
    if (st != INTERP_OK)
        res = NULL;
    reply *r = reply_new(u->id, 1, 64 + (res ? interp_msg_size(res) : 0));
    if (!r)
        return;
    wb_u32(&r->buf, st != INTERP_OK);
    if (st != INTERP_OK)
        put_failure(&r->buf, 0, st, error, interp_future_error_value(f));
    wb_records(&r->buf, &res, sizeof res, 1);
    if (r->buf.fail) { /* out of memory for a large result: say so instead */
        reply_free(r);
        answer_failed(u->s, u->id, 1, INTERP_ERR_NOMEM, "out of memory encoding the result");
        return;
    }
    push_reply(u->s, r);
}

/* A chunk's outcomes (out, status and errors of n items, owned: one block of mpi__buf_take at
 * out) as the reply to unit id; everything is freed. */
static void answer_chunk(srv *s, uint64_t id, size_t n, interp_msg **out, int *status,
                         char **errors)
{
    size_t nfail = 0;
    for (size_t i = 0; i < n; i++)
        nfail += status[i] != INTERP_OK;
    bool frozen = false; /* the records' size, so that the reply is allocated once */
    size_t bytes = interp__msg_wire_bytes((const interp_msg *const *)out, sizeof *out, n, &frozen);
    size_t need = 4 + bytes;
    for (size_t i = 0; (frozen || nfail) && i < n; i++) {
        if (status[i] == INTERP_OK && interp__msg_holds_frozen(out[i])) {
            status[i] = INTERP_ERR_ENCODE;
            free(errors[i]);
            errors[i] = NULL;
            nfail++;
        }
        if (status[i] != INTERP_OK) { /* its record is absent */
            interp_msg_free(out[i]);
            out[i] = NULL;
            need += 48 + (errors[i] ? strlen(errors[i]) : sizeof frozen_result);
        }
    }
    reply *r = reply_new(id, n, need);
    if (r) {
        wb_u32(&r->buf, (uint32_t)nfail);
        for (size_t i = 0; nfail && i < n; i++)
            if (status[i] != INTERP_OK)
                put_failure(&r->buf, i, status[i],
                            errors[i] || status[i] != INTERP_ERR_ENCODE ? errors[i] : frozen_result,
                            NULL);
        if (frozen || nfail) /* results were dropped: their size again */
            wb_records(&r->buf, (const interp_msg *const *)out, sizeof *out, n);
        else
            wb_records_sized(&r->buf, (const interp_msg *const *)out, sizeof *out, n, bytes);
    }
    interp__msg_free_many(out, n);
    for (size_t i = 0; nfail && i < n; i++)
        free(errors[i]);
    mpi__buf_give((char *)out); /* status and errors are in the same block */
    if (!r || r->buf.fail) {
        reply_free(r);
        answer_failed(s, id, n, INTERP_ERR_NOMEM, "out of memory encoding the results");
    } else {
        push_reply(s, r);
    }
}

/* The unit's inputs are done with (before its reply goes: the reply's taker frees u). */
static void drop_inputs(unit *u)
{
    if (u->items)
        interp__msg_free_many(u->items, u->n);
    free(u->items);
    u->items = NULL;
    interp_msg_free(u->fnmsg);
    u->fnmsg = NULL;
    free(u->fntext);
    u->fntext = NULL;
}

/* A unit's items run in runs of at most this many: a run's outcomes (32 bytes per item) stay
 * below glibc's mmap threshold (128 KiB), which would map and fault in fresh pages at every
 * run; each run is a job of the local pool, so its workers share a unit's runs. */
#define MPI__RUN_ITEMS 2048

/* A run of chunk unit ud ended (its worker's thread, or the watchdog's): its outcomes go into
 * the unit's arrays; the last run's thread answers the unit. */
static void run_done(void *ud, size_t first, size_t count, interp_outcome *outs, int status,
                     const char *text)
{
    unit *u = ud;
    for (size_t i = 0; i < count; i++) {
        size_t k = first + i;
        if (outs) {
            u->status[k] = outs[i].status;
            u->out[k] = outs[i].result;
            u->errors[k] = outs[i].error;
            outs[i].result = NULL;
            outs[i].error = NULL;
        } else {
            u->status[k] = status;
            u->out[k] = NULL;
            u->errors[k] = interp__dup_text(text);
        }
    }
    if (atomic_fetch_sub_explicit(&u->pending, count, memory_order_acq_rel) != count)
        return;
    interp_msg **out = u->out;
    int *st = u->status;
    char **errors = u->errors;
    u->out = NULL;
    u->status = NULL;
    u->errors = NULL;
    drop_inputs(u); /* every run has ended: the items are read no more */
    answer_chunk(u->s, u->id, u->n, out, st, errors); /* u must not be touched from here on */
}

/* Start chunk unit u: its runs queued on the local pool. */
static int start_chunk(srv *s, unit *u)
{
    size_t n = u->n, cap;
    /* one block (a kept one, its pages already there): results, errors, statuses, each slot
     * written by run_done (not cleared first: ~1.5% of this thread's time at 16,384 items) */
    size_t bytes = n * (sizeof *u->out + sizeof *u->errors + sizeof *u->status);
    char *block = mpi__buf_take(bytes ? bytes : 1, &cap);
    if (!block)
        return INTERP_ERR_NOMEM;
    u->out = (interp_msg **)(void *)block;
    u->errors = (char **)(void *)(block + n * sizeof *u->out);
    u->status = (int *)(void *)(block + n * (sizeof *u->out + sizeof *u->errors));
    atomic_init(&u->pending, n);
    if (n == 0) {
        answer_chunk(s, u->id, 0, u->out, u->status, u->errors);
        u->out = NULL;
        u->status = NULL;
        u->errors = NULL;
        return INTERP_OK;
    }
    return interp__backend_batch_run(s->pool, &u->fn, n, (const interp_msg *const *)u->items,
                                     u->stop_on_error, MPI__RUN_ITEMS, run_done, u, &u->batch);
}

/* u's function (kind fkind) from its fl bytes at fd: a function message decoded, or a name or
 * source copied. INTERP_OK, or the failure with why set. */
static int unit_fn(srv *s, unit *u, int fkind, const char *fd, size_t fl, char *why, size_t whylen)
{
    u->fn.kind = (interp_fn_kind)fkind;
    if (fkind == INTERP_FN_FUNCTION) {
        int rc =
            interp_msg_from_bytes_ex(fd, fl, s->max_depth, INTERP_MSG_TRUST_FUNCTIONS, &u->fnmsg);
        u->fn.function = u->fnmsg;
        if (rc != INTERP_OK)
            snprintf(why, whylen, "the function could not be decoded on this rank: %s",
                     interp_strerror(rc));
        return rc;
    }
    u->fntext = malloc(fl + 1);
    if (!u->fntext)
        return INTERP_ERR_NOMEM;
    memcpy(u->fntext, fd, fl);
    u->fntext[fl] = '\0';
    u->fn.text = u->fntext;
    u->fn.len = fkind == INTERP_FN_SOURCE ? fl : 0;
    return INTERP_OK;
}

/* u's n items from b (frozen: each a message of its own with its handles patched in, else
 * in one slab). INTERP_OK, or the failure with why set. */
static int unit_items(srv *s, unit *u, rbuf *b, bool frozen, char *why, size_t whylen)
{
    u->items = calloc(u->n ? u->n : 1, sizeof *u->items);
    if (!u->items)
        return INTERP_ERR_NOMEM;
    int rc = INTERP_OK;
    interp__slab *slab = NULL;
    if (!frozen) {
        rc = rb_records(b, s->slabs, &slab, u->n, u->items, sizeof *u->items);
        interp__slab_release(slab);
        if (rc != INTERP_OK)
            snprintf(why, whylen, "the arguments could not be made on this rank: %s",
                     interp_strerror(rc));
        return rc;
    }
    for (size_t i = 0; rc == INTERP_OK && i < u->n; i++) {
        /* an item that will hold handles is a message of its own (a slab's members never
         * release handles), validated */
        rc = rb_msg(b, s->max_depth, &u->items[i]);
        if (rc != INTERP_OK)
            snprintf(why, whylen, "the arguments could not be decoded on this rank: %s",
                     interp_strerror(rc));
        else
            rc = fzr_patch(&s->fz, b, u->items[i], why, whylen);
    }
    return rc;
}

/* Submit task unit u to the rank's pool, to be answered when it ends. INTERP_OK, or the
 * failure with why set. */
static int start_task(srv *s, unit *u, double timeout, char *why, size_t whylen)
{
    interp_task t = {.fn = u->fn, .args = u->items[0], .timeout = timeout > 0 ? timeout : -1};
    int rc = interp_pool_submit_task(s->pool, &t, INTERP_FOREVER, &u->f);
    if (rc == INTERP_OK) {
        u->items[0] = NULL; /* the pool's now */
        rc = interp_future_on_done(u->f, task_done, u);
        if (rc != INTERP_OK) { /* cannot be told when it ends: cancel and answer now */
            interp_future_cancel(u->f);
            snprintf(why, whylen, "out of memory on the rank");
        }
    } else {
        snprintf(why, whylen, "the rank's pool refused the task: %s", interp_strerror(rc));
    }
    if (!u->items[0]) { /* handed over (or never decoded): the array is done with */
        free(u->items);
        u->items = NULL;
    }
    return rc;
}

void srv_work(srv *s, const char *data, size_t len)
{
    rbuf b = {.p = data, .len = len};
    uint64_t id = rb_u64(&b);
    int kind = rb_u8(&b);
    int fkind = rb_u8(&b);
    bool stop_on_error = rb_u8(&b) != 0;
    bool frozen = rb_u8(&b) != 0;
    double timeout = rb_f64(&b);
    const char *fd;
    size_t fl;
    rb_blob(&b, &fd, &fl);
    uint64_t n = rb_u64(&b);
    if (b.fail || !id || (kind != UNIT_TASK && kind != UNIT_CHUNK) || !fd ||
        (kind == UNIT_TASK && n != 1) || n > len || fkind < INTERP_FN_NAME ||
        fkind > INTERP_FN_FUNCTION) {
        fprintf(stderr, "interp_mpi: a malformed unit from the root was dropped\n");
        return;
    }
    unit *u = calloc(1, sizeof *u);
    if (!u) {
        answer_failed(s, id, (size_t)n, INTERP_ERR_NOMEM, "out of memory on the rank");
        return;
    }
    u->s = s;
    u->id = id;
    u->kind = kind;
    u->n = (size_t)n;
    u->stop_on_error = stop_on_error;
    char why[160] = "";
    int rc = unit_fn(s, u, fkind, fd, fl, why, sizeof why);
    if (rc == INTERP_OK)
        rc = unit_items(s, u, &b, frozen, why, sizeof why);
    u->next = s->units;
    s->units = u;
    s->busy++;
    if (rc == INTERP_OK && kind == UNIT_TASK) {
        rc = start_task(s, u, timeout, why, sizeof why);
    } else if (rc == INTERP_OK) {
        rc = start_chunk(s, u);
        if (rc != INTERP_OK)
            snprintf(why, sizeof why, "out of memory on the rank");
    }
    if (rc != INTERP_OK) {
        if (u->items)
            for (size_t i = 0; i < u->n; i++)
                interp_msg_free(u->items[i]);
        free(u->items);
        u->items = NULL;
        mpi__buf_give((char *)u->out);
        u->out = NULL;
        u->status = NULL;
        u->errors = NULL;
        answer_failed(s, id, u->n, rc, why[0] ? why : interp_strerror(rc));
    }
}

void srv_cancel(srv *s, uint64_t id, int reason)
{
    if (id == 0) {
        interp_pool_shutdown_now(s->pool); /* running tasks end with INTERP_ERR_SHUTDOWN */
        return;
    }
    (void)reason;
    for (unit *u = s->units; u; u = u->next) {
        if (u->id != id)
            continue;
        if (u->f)
            interp_future_cancel(u->f);
        else if (u->batch) /* a chunk: its runs stop (its last run's thread still answers) */
            interp__backend_batch_stop(u->batch, INTERP_ERR_CANCELLED);
        return;
    }
}

int srv_new(srv **out, const interp_pool_options *opts, waker *wk, char **err)
{
    *out = NULL;
    srv *s = calloc(1, sizeof *s);
    if (!s)
        return INTERP_ERR_NOMEM;
    interp_pool_options o = *opts;
    o.max_queued = 0; /* the root bounds what is in flight; a full queue must not block here */
    int rc = interp__pool_create_rank(&s->pool, &o,
                                      "named channels and contexts do not span the ranks of an "
                                      "MPI pool (this pool runs on one rank of one)",
                                      err);
    if (rc != INTERP_OK) {
        free(s);
        return rc;
    }
    interp_pool_stats st;
    interp_pool_get_stats(s->pool, &st);
    s->workers = st.max_workers;
    s->max_depth = opts->max_depth;
    s->wk = wk;
    pthread_mutex_init(&s->mu, NULL);
    fzr_init(&s->fz);
    s->slabs = interp__slab_cache_new(MPI__SLAB_CACHE_BYTES, MPI__SLAB_IDLE_BYTES);
    *out = s;
    return INTERP_OK;
}

void srv_free(srv *s)
{
    if (!s)
        return;
    interp_pool_shutdown_now(s->pool); /* every run ends (answered) before destroy returns */
    interp_pool_destroy(s->pool);
    for (reply *r = srv_replies(s), *next; r; r = next) {
        next = r->next;
        reply_free(r);
    }
    for (unit *u = s->units, *next; u; u = next) {
        next = u->next;
        interp_future_release(u->f);
        drop_inputs(u);
        interp__backend_batch_release(u->batch);
        free(u);
    }
    fzr_free(&s->fz);
    interp__slab_cache_release(s->slabs);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
