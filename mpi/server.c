/* server.c - one rank's executor: a local interp_pool running the units the root sends.
 *
 * A task becomes a local future whose on_done callback encodes the reply; a chunk goes to a
 * runner thread that runs it with interp_pool_map_fn (so it is cut and run exactly as a local
 * map's items are) and encodes the reply. Replies queue here and kick the communication
 * thread's waker; only that thread touches MPI and the list of units. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "mpi_impl.h"

typedef struct unit {
    struct unit *next;  /* in srv->units: the communication thread's own list */
    struct unit *qnext; /* in the runners' queue */
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
    atomic_bool stop; /* chunk: the root cancelled it (its map's interrupt polls this) */
} unit;

struct srv {
    interp_pool *pool;
    waker *wk;
    int workers, max_depth;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* runners wait here for chunks */
    unit *q_head, *q_tail;      /* guarded by mu */
    int nrunners, idle_runners; /* guarded by mu */
    bool stopping;              /* guarded by mu */
    pthread_t *runners;
    int max_runners;
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

/* A chunk's outcomes after its map (out, status and errors of n items, owned) as the reply to
 * unit id; everything is freed. */
static void answer_chunk(srv *s, uint64_t id, size_t n, interp_msg **out, int *status,
                         char **errors)
{
    size_t need = 4, nfail = 0; /* the reply's size, so that its buffer is allocated once */
    for (size_t i = 0; i < n; i++) {
        if (status[i] == INTERP_OK && interp__msg_holds_frozen(out[i])) {
            status[i] = INTERP_ERR_ENCODE;
            free(errors[i]);
            errors[i] = NULL;
        }
        if (status[i] != INTERP_OK) { /* its record is absent */
            interp_msg_free(out[i]);
            out[i] = NULL;
            nfail++;
            need += 48 + (errors[i] ? strlen(errors[i]) : sizeof frozen_result);
        }
        need += 12 + (out[i] ? interp_msg_size(out[i]) : 0);
    }
    reply *r = reply_new(id, n, need);
    if (r) {
        wb_u32(&r->buf, (uint32_t)nfail);
        for (size_t i = 0; nfail && i < n; i++)
            if (status[i] != INTERP_OK)
                put_failure(&r->buf, i, status[i],
                            errors[i] || status[i] != INTERP_ERR_ENCODE ? errors[i] : frozen_result,
                            NULL);
        wb_records(&r->buf, (const interp_msg *const *)out, sizeof *out, n);
    }
    interp__msg_free_many(out, n);
    for (size_t i = 0; i < n; i++)
        free(errors[i]);
    free(out);
    free(status);
    free(errors);
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

/* The chunk's map polls this (every INTERP_MAP_INTERRUPT_POLL s): once the root cancels the
 * chunk, its running items are interrupted and the rest end cancelled. */
static bool chunk_stopped(void *ud)
{
    return atomic_load_explicit(&((unit *)ud)->stop, memory_order_relaxed);
}

/* The local map's chunks of a unit of n items: one per worker, of at most 2048 items. A unit
 * is the root's chunk already (its size chosen for the whole job); cutting it finer only adds
 * hand-overs between this runner and the workers, each a wake-up that a loaded machine makes
 * late. The bound keeps a chunk's outcomes (32 bytes per item, allocated by each map) below
 * glibc's mmap threshold (128 KiB), which would map and fault in fresh pages every time. */
static size_t unit_chunksize(const srv *s, size_t n)
{
    size_t w = (size_t)s->workers;
    size_t cs = (n + w - 1) / w;
    return cs < 1 ? 1 : cs > 2048 ? 2048 : cs;
}

static void run_chunk(srv *s, unit *u)
{
    size_t n = u->n;
    uint64_t id = u->id;
    interp_msg **out = calloc(n ? n : 1, sizeof *out);
    int *status = calloc(n ? n : 1, sizeof *status);
    char **errors = calloc(n ? n : 1, sizeof *errors);
    if (!out || !status || !errors) {
        free(out);
        free(status);
        free(errors);
        drop_inputs(u);
        answer_failed(s, id, n, INTERP_ERR_NOMEM, "out of memory on the rank");
        return;
    }
    interp_map_options mo = {.stop_on_error = u->stop_on_error,
                             .chunksize = unit_chunksize(s, n),
                             .status = status,
                             .errors = errors,
                             .interrupted = chunk_stopped,
                             .interrupted_ud = u};
    interp_pool_map_fn(s->pool, &u->fn, n, (const interp_msg *const *)u->items, out, &mo);
    drop_inputs(u); /* u must not be touched once the reply is queued */
    answer_chunk(s, id, n, out, status, errors);
}

static void *runner_main(void *arg)
{
    srv *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->q_head && !s->stopping) {
            s->idle_runners++;
            pthread_cond_wait(&s->cv, &s->mu);
            s->idle_runners--;
        }
        unit *u = s->q_head;
        if (!u)
            break;
        s->q_head = u->qnext;
        if (!s->q_head)
            s->q_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        run_chunk(s, u);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Queue a chunk for the runners, starting one more when none is idle. */
static int queue_chunk(srv *s, unit *u)
{
    pthread_mutex_lock(&s->mu);
    u->qnext = NULL;
    if (s->q_tail)
        s->q_tail->qnext = u;
    else
        s->q_head = u;
    s->q_tail = u;
    int rc = INTERP_OK;
    if (s->idle_runners == 0 && s->nrunners < s->max_runners) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        if (pthread_create(&s->runners[s->nrunners], &a, runner_main, s) == 0)
            s->nrunners++;
        else if (s->nrunners == 0)
            rc = INTERP_ERR_SYSTEM;
        pthread_attr_destroy(&a);
    }
    if (rc != INTERP_OK) { /* no runner at all: take it back */
        s->q_head = s->q_tail = NULL;
    } else {
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
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
        rc = queue_chunk(s, u);
        if (rc != INTERP_OK)
            snprintf(why, sizeof why, "the rank cannot start a thread for the chunk");
    }
    if (rc != INTERP_OK) {
        if (u->items)
            for (size_t i = 0; i < u->n; i++)
                interp_msg_free(u->items[i]);
        free(u->items);
        u->items = NULL;
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
        else /* a chunk: its map stops at its next poll (its runner still answers) */
            atomic_store_explicit(&u->stop, true, memory_order_relaxed);
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
    s->max_runners = s->workers * MPI__UNITS_PER_WORKER;
    s->runners = calloc((size_t)s->max_runners, sizeof *s->runners);
    if (!s->runners) {
        interp_pool_destroy(s->pool);
        free(s);
        return INTERP_ERR_NOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    fzr_init(&s->fz);
    s->slabs = interp__slab_cache_new(MPI__SLAB_CACHE_BYTES, MPI__SLAB_IDLE_BYTES);
    *out = s;
    return INTERP_OK;
}

void srv_free(srv *s)
{
    if (!s)
        return;
    interp_pool_shutdown_now(s->pool);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nrunners; i++)
        pthread_join(s->runners[i], NULL);
    interp_pool_destroy(s->pool);
    for (reply *r = srv_replies(s), *next; r; r = next) {
        next = r->next;
        reply_free(r);
    }
    for (unit *u = s->units, *next; u; u = next) {
        next = u->next;
        interp_future_release(u->f);
        drop_inputs(u);
        free(u);
    }
    fzr_free(&s->fz);
    interp__slab_cache_release(s->slabs);
    free(s->runners);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
