/* create.c - the collective start of an MPI pool and the serving ranks' loop.
 *
 * Create: every rank duplicates the communicator; the root sends the options, the initializer
 * source (read from init_file here) and init_args to all; every rank makes its local pool and
 * answers with its status, worker count, pid and Lua bytecode header; the root tells everyone
 * whether all went well (else every rank returns the error, naming the rank that failed). All
 * of it with non-blocking collectives completed by polling with sleeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_impl.h"
#include "mpi_impl.h"

#define HELLO_SIZE 512
#define VERDICT_SIZE 512

static void set_err(char **err, const char *text)
{
    if (err && !*err)
        *err = interp__dup_text(text);
}

int interp_mpi_init(int *argc, char ***argv, char **err)
{
    if (err)
        *err = NULL;
    int flag = 0, provided = 0;
    MPI_Initialized(&flag);
    if (!flag) {
        if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
            set_err(err, "MPI_Init_thread failed");
            return INTERP_ERR_SYSTEM;
        }
    } else {
        MPI_Query_thread(&provided);
    }
    if (provided < MPI_THREAD_SERIALIZED) {
        set_err(err, "MPI gives less than MPI_THREAD_SERIALIZED");
        return INTERP_ERR_SYSTEM;
    }
    return INTERP_OK;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    wbuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        wb_put(&b, chunk, n);
    fclose(f);
    if (b.fail) {
        free(b.p);
        return NULL;
    }
    wb_u8(&b, 0);
    *len = b.len - 1;
    return b.p;
}

/* The root's configuration message: u32 status (INTERP_OK, or why create fails everywhere),
 * text (the error), then the options. */
static void put_config(wbuf *b, int status, const char *why, const interp_pool_options *o,
                       const char *init, size_t init_len, const interp_mpi_options *mo,
                       const char *bell_name, uint64_t bell_token)
{
    wb_u32(b, (uint32_t)status);
    wb_text(b, why);
    if (status != INTERP_OK)
        return;
    wb_u32(b, (uint32_t)o->workers);
    wb_u8(b, o->prestart);
    wb_blob(b, init, init_len);
    wb_msg(b, o->init_args);
    wb_u64(b, o->memory_limit);
    wb_u32(b, (uint32_t)o->sandbox);
    wb_f64(b, o->task_timeout);
    wb_f64(b, o->cancel_grace);
    wb_f64(b, o->stuck_grace);
    wb_u32(b, o->max_tasks_per_worker);
    wb_u64(b, o->max_msg_size);
    wb_u32(b, (uint32_t)o->max_depth);
    wb_u64(b, o->thread_stack_size);
    wb_text(b, o->thread_name);
    wb_f64(b, mo->heartbeat_timeout);
    wb_text(b, bell_name);
    wb_u64(b, bell_token);
}

typedef struct config {
    int status;
    char *why;
    interp_pool_options o;
    char *init, *thread_name;
    interp_msg *init_args;
    double heartbeat;
    char bell_name[BELL_NAME_MAX]; /* the root's bell (bell.c), empty for none */
    uint64_t bell_token;
} config;

static int get_config(const char *data, size_t len, config *c)
{
    rbuf b = {.p = data, .len = len};
    memset(c, 0, sizeof *c);
    c->status = (int32_t)rb_u32(&b);
    c->why = rb_text(&b);
    if (c->status != INTERP_OK)
        return b.fail ? INTERP_ERR_DECODE : c->status;
    c->o = interp_pool_defaults();
    c->o.workers = (int32_t)rb_u32(&b);
    c->o.prestart = rb_u8(&b) != 0;
    c->init = rb_text(&b);
    int rc = rb_msg(&b, 0, &c->init_args);
    c->o.memory_limit = (size_t)rb_u64(&b);
    c->o.sandbox = (interp_sandbox)rb_u32(&b);
    c->o.task_timeout = rb_f64(&b);
    c->o.cancel_grace = rb_f64(&b);
    c->o.stuck_grace = rb_f64(&b);
    c->o.max_tasks_per_worker = rb_u32(&b);
    c->o.max_msg_size = (size_t)rb_u64(&b);
    c->o.max_depth = (int32_t)rb_u32(&b);
    c->o.thread_stack_size = (size_t)rb_u64(&b);
    c->thread_name = rb_text(&b);
    c->heartbeat = rb_f64(&b);
    const char *bn;
    size_t bl;
    if (rb_blob(&b, &bn, &bl) && bn && bl < BELL_NAME_MAX)
        memcpy(c->bell_name, bn, bl);
    c->bell_token = rb_u64(&b);
    c->o.init_source = c->init;
    c->o.init_args = c->init_args;
    c->o.thread_name = c->thread_name;
    if (b.fail || rc != INTERP_OK) {
        c->status = INTERP_ERR_DECODE;
        return INTERP_ERR_DECODE;
    }
    return INTERP_OK;
}

static void config_free(config *c)
{
    free(c->why);
    free(c->init);
    free(c->thread_name);
    interp_msg_free(c->init_args);
}

/* Broadcast the root's bytes (len and data) to every rank, without spinning. */
static int bcast_bytes(MPI_Comm comm, int root, wbuf *b)
{
    uint64_t len = b->len;
    MPI_Request req;
    if (MPI_Ibcast(&len, 1, MPI_UINT64_T, root, comm, &req) != MPI_SUCCESS ||
        mpi__wait(&req, NULL) != INTERP_OK)
        return INTERP_ERR_SYSTEM;
    if (len > (uint64_t)INT32_MAX)
        return INTERP_ERR_LIMIT;
    if (b->len != len) { /* a receiver */
        b->p = malloc(len ? (size_t)len : 1);
        if (!b->p)
            return INTERP_ERR_NOMEM; /* the others would hang: nothing better to do */
        b->len = b->cap = (size_t)len;
    }
    if (MPI_Ibcast(b->p, (int)len, MPI_BYTE, root, comm, &req) != MPI_SUCCESS ||
        mpi__wait(&req, NULL) != INTERP_OK)
        return INTERP_ERR_SYSTEM;
    return INTERP_OK;
}

static void put_hello(unsigned char out[HELLO_SIZE], int rc, int workers, const char *err)
{
    wbuf b = {0};
    unsigned char bc[64];
    size_t bc_len;
    mpi__bytecode_header(bc, &bc_len);
    wb_u32(&b, (uint32_t)rc);
    wb_u32(&b, (uint32_t)workers);
    wb_u32(&b, (uint32_t)getpid());
    wb_u32(&b, (uint32_t)bc_len);
    wb_put(&b, bc, 64);
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    wb_put(&b, host, sizeof host);
    char text[336] = "";
    if (err)
        snprintf(text, sizeof text, "%s", err);
    wb_put(&b, text, sizeof text);
    memset(out, 0, HELLO_SIZE);
    if (!b.fail)
        memcpy(out, b.p, b.len < HELLO_SIZE ? b.len : HELLO_SIZE);
    free(b.p);
}

static void get_hello(const unsigned char in[HELLO_SIZE], mpi__rank_hello *h)
{
    rbuf b = {.p = (const char *)in, .len = HELLO_SIZE};
    h->rc = (int32_t)rb_u32(&b);
    h->workers = (int32_t)rb_u32(&b);
    h->pid = (int32_t)rb_u32(&b);
    h->bc_len = rb_u32(&b);
    if (h->bc_len > 64)
        h->bc_len = 0;
    memcpy(h->bc, in + 16, 64);
    memcpy(h->host, in + 80, sizeof h->host);
    h->host[sizeof h->host - 1] = '\0';
    memcpy(h->err, in + 144, sizeof h->err);
    h->err[sizeof h->err - 1] = '\0';
}

/* Before anything is sent: MPI is up, the root is a rank of comm, and interp_mpi_serve is
 * not called on the root. *size and *me: comm's size and this rank. */
static int check_call(MPI_Comm comm, const interp_mpi_options *mo, bool must_root, int *size,
                      int *me, char **err)
{
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
        set_err(err, "MPI is not initialised (call interp_mpi_init first)");
        return INTERP_ERR_INVALID;
    }
    MPI_Comm_size(comm, size);
    MPI_Comm_rank(comm, me);
    if (mo->root < 0 || mo->root >= *size) {
        set_err(err, "interp_mpi_options.root: not a rank of the communicator");
        return INTERP_ERR_INVALID;
    }
    if (!must_root && *me == mo->root) {
        /* interp_mpi_serve on the root would wait for itself */
        set_err(err, "interp_mpi_serve called on the root rank");
        return INTERP_ERR_INVALID;
    }
    return INTERP_OK;
}

/* The root's configuration message into cb: the options and the initializer's text, or the
 * status and reason why they cannot be used. */
static void root_config(wbuf *cb, const interp_pool_options *opts, const interp_mpi_options *mo,
                        const char *bell_name, uint64_t bell_token)
{
    interp_pool_options o = opts ? *opts : interp_pool_defaults();
    int provided = 0;
    MPI_Query_thread(&provided);
    char *file = NULL;
    size_t file_len = 0;
    int status = INTERP_OK;
    const char *why = NULL;
    if (provided < MPI_THREAD_SERIALIZED) {
        status = INTERP_ERR_INVALID;
        why = "the root needs MPI_THREAD_SERIALIZED (interp_mpi_init)";
    } else if (o.init_source && o.init_file) {
        status = INTERP_ERR_INVALID;
        why = "init_source and init_file are both set";
    } else if (o.init_file && !(file = read_file(o.init_file, &file_len))) {
        status = INTERP_ERR_NOTFOUND;
        why = "init_file: cannot read it";
    } else if (fzs_holds(o.init_args)) {
        status = INTERP_ERR_INVALID;
        why = "init_args holds a frozen value, which cannot go to the other ranks at create "
              "(its handle is an address in this process); pass it in tasks' arguments "
              "(sent once to each rank) or a plain copy in init_args";
    } else if (mo->on_lost != INTERP_MPI_LOST_FAIL && mo->on_lost != INTERP_MPI_LOST_RESUBMIT) {
        status = INTERP_ERR_INVALID;
        why = "interp_mpi_options.on_lost: unknown";
    } else if (mo->heartbeat_timeout != mo->heartbeat_timeout || mo->heartbeat_timeout < 0) {
        status = INTERP_ERR_INVALID;
        why = "interp_mpi_options.heartbeat_timeout: negative or NaN";
    }
    const char *src = file ? file : o.init_source;
    put_config(cb, status, why, &o, src,
               file  ? file_len
               : src ? strlen(src)
                     : 0,
               mo, bell_name, bell_token);
    free(file);
}

/* Step 1: the root's configuration, on every rank (*c; freed here on failure). Each rank's
 * own workers print where its caller said. */
static int share_config(MPI_Comm dup, const interp_mpi_options *mo, bool is_root,
                        const interp_pool_options *opts, const char *bell_name, uint64_t bell_token,
                        config *c, char **err)
{
    wbuf cb = {0};
    if (is_root)
        root_config(&cb, opts, mo, bell_name, bell_token);
    int rc = cb.fail ? INTERP_ERR_NOMEM : bcast_bytes(dup, mo->root, &cb);
    if (rc == INTERP_OK)
        rc = get_config(cb.p, cb.len, c);
    else
        memset(c, 0, sizeof *c);
    free(cb.p);
    if (rc != INTERP_OK) {
        set_err(err, c->why ? c->why : "the root's configuration did not arrive");
        config_free(c);
        return rc;
    }
    if (opts) {
        c->o.print = opts->print;
        c->o.print_ud = opts->print_ud;
    }
    return INTERP_OK;
}

/* Step 2: this rank's local pool in *s (none on an idle root, or when wk is NULL: out of
 * memory), and every rank's answer gathered at the root: returned there (malloc'd), NULL
 * elsewhere. A hand-shake that cannot happen aborts the job. */
static unsigned char *gather_hellos(MPI_Comm comm, MPI_Comm dup, const interp_mpi_options *mo,
                                    bool is_root, int size, int me, config *c, waker *wk, bell *bl,
                                    srv **s)
{
    char *lerr = NULL;
    int lrc = wk ? INTERP_OK : INTERP_ERR_NOMEM;
    if (wk) {
        waker_init(wk);
        bell_attach(bl, me, wk); /* before the hello: the root rings it from then on */
    }
    if (lrc == INTERP_OK && !(is_root && mo->root_idle))
        lrc = srv_new(s, &c->o, wk, &lerr);
    unsigned char hello[HELLO_SIZE];
    put_hello(hello, lrc, *s ? srv_workers(*s) : 0, lerr);
    free(lerr);
    unsigned char *all = is_root ? malloc((size_t)size * HELLO_SIZE) : NULL;
    if (is_root && !all) { /* cannot even collect: the job cannot go on */
        fprintf(stderr, "interp_mpi: root: out of memory at create; aborting the job\n");
        MPI_Abort(comm, 71);
    }
    MPI_Request req;
    if (MPI_Igather(hello, HELLO_SIZE, MPI_BYTE, all, HELLO_SIZE, MPI_BYTE, mo->root, dup, &req) !=
            MPI_SUCCESS ||
        mpi__wait(&req, NULL) != INTERP_OK) {
        fprintf(stderr, "interp_mpi: rank %d: the create handshake failed; aborting the job\n", me);
        MPI_Abort(comm, 71);
    }
    return all;
}

/* Step 3: the root's verdict (the first rank that failed, from the answers in all, which is
 * freed), on every rank. INTERP_OK, or the failure with its text in *err. On the root
 * *hellos: each rank's answer (malloc'd). */
static int share_verdict(MPI_Comm dup, int root, bool is_root, int size, unsigned char *all,
                         mpi__rank_hello **hellos, char **err)
{
    wbuf vb = {0};
    if (is_root) {
        *hellos = calloc((size_t)size, sizeof **hellos);
        int vrc = *hellos ? INTERP_OK : INTERP_ERR_NOMEM;
        char text[600] = "out of memory";
        for (int k = 0; *hellos && k < size; k++) {
            get_hello(all + (size_t)k * HELLO_SIZE, &(*hellos)[k]);
            if ((*hellos)[k].rc != INTERP_OK && vrc == INTERP_OK) {
                vrc = (*hellos)[k].rc;
                snprintf(text, sizeof text, "rank %d: %s", k, (*hellos)[k].err);
            }
        }
        wb_u32(&vb, (uint32_t)vrc);
        wb_text(&vb, vrc == INTERP_OK ? "" : text);
    }
    free(all);
    int rc = vb.fail ? INTERP_ERR_NOMEM : bcast_bytes(dup, root, &vb);
    rbuf rv = {.p = vb.p, .len = vb.len};
    int verdict = rc == INTERP_OK ? (int32_t)rb_u32(&rv) : rc;
    char *vtext = rc == INTERP_OK ? rb_text(&rv) : NULL;
    free(vb.p);
    if (verdict != INTERP_OK)
        set_err(err, vtext ? vtext : "an MPI pool could not be created");
    free(vtext);
    return verdict;
}

/* The part every rank runs. On the root returns the pool in *out; elsewhere serves. */
static int create(interp_pool **out, MPI_Comm comm, const interp_pool_options *opts,
                  const interp_mpi_options *mo_in, bool must_root, char **err)
{
    if (err)
        *err = NULL;
    if (out)
        *out = NULL;
    interp_mpi_options mo = mo_in ? *mo_in : (interp_mpi_options){0};
    int size, me;
    int rc = check_call(comm, &mo, must_root, &size, &me, err);
    if (rc != INTERP_OK)
        return rc;
    bool is_root = me == mo.root;
    MPI_Comm dup;
    MPI_Request req;
    if (MPI_Comm_idup(comm, &dup, &req) != MPI_SUCCESS || mpi__wait(&req, NULL) != INTERP_OK) {
        set_err(err, "MPI_Comm_idup failed");
        return INTERP_ERR_SYSTEM;
    }
    bell *bl = calloc(1, sizeof *bl); /* NULL: none (each rank's waker is its own) */
    char bell_name[BELL_NAME_MAX] = "";
    uint64_t bell_token = 0;
    if (is_root && bl)
        bell_create(bl, size, bell_name, &bell_token);
    config c;
    rc = share_config(dup, &mo, is_root, opts, bell_name, bell_token, &c, err);
    bool have_c = rc == INTERP_OK; /* share_config frees c when it fails */
    if (rc == INTERP_OK && !is_root && bl)
        bell_open(bl, c.bell_name, c.bell_token, size);
    double hb = rc == INTERP_OK && c.heartbeat > 0 ? c.heartbeat : 10.0;
    waker *wk = rc == INTERP_OK ? malloc(sizeof *wk) : NULL;
    srv *s = NULL;
    mpi__rank_hello *hellos = NULL;
    if (rc == INTERP_OK) {
        unsigned char *all = gather_hellos(comm, dup, &mo, is_root, size, me, &c, wk, bl, &s);
        rc = share_verdict(dup, mo.root, is_root, size, all, &hellos, err);
    }
    bell_unlink(bell_name);           /* every rank that could open it has (or failed to) */
    if (rc == INTERP_OK && is_root) { /* 4. run: the root's thread */
        interp_mpi_options m2 = mo;
        m2.heartbeat_timeout = hb;
        rc = mpi__root_start(out, dup, &c.o, &m2, s, wk, bl, hellos, err);
        free(hellos);
        config_free(&c);
        return rc;
    }
    if (have_c)
        config_free(&c);
    if (rc == INTERP_OK) /* 4. run: serve */
        rc = mpi__serve_loop(dup, mo.root, s, wk, bl, hb);
    free(hellos);
    srv_free(s);
    if (wk)
        waker_destroy(wk);
    free(wk);
    if (bl)
        bell_close(bl);
    free(bl);
    MPI_Comm_free(&dup);
    return rc;
}

int interp_mpi_pool_create(interp_pool **out, MPI_Comm comm, const interp_pool_options *opts,
                           const interp_mpi_options *mo, char **err)
{
    if (!out) {
        if (err)
            *err = NULL;
        return INTERP_ERR_INVALID;
    }
    return create(out, comm, opts, mo, true, err);
}

int interp_mpi_serve(MPI_Comm comm, const interp_mpi_options *mo, char **err)
{
    return create(NULL, comm, NULL, mo, false, err);
}

/* ---- the serving ranks' loop -------------------------------------------------------------- */

/* One message from the root (tag, len bytes at buf, borrowed). true for a stop. */
static bool serve_message(srv *s, int tag, const char *buf, size_t len)
{
    rbuf b = {.p = buf, .len = len};
    if (tag == TAG_WORK) {
        srv_work(s, buf, len);
    } else if (tag == TAG_CANCEL) {
        uint64_t id = rb_u64(&b);
        int reason = (int32_t)rb_u32(&b);
        if (!b.fail)
            srv_cancel(s, id, reason);
    } else if (tag == TAG_FROZEN) {
        srv_frozen(s, buf, len);
    } else if (tag == TAG_FORGET) {
        uint64_t id = rb_u64(&b);
        if (!b.fail)
            srv_forget(s, id);
    }
    return tag == TAG_STOP;
}

/* Take every message the root has sent. 1: some, 0: none, -1: MPI failed. */
static int serve_incoming(MPI_Comm comm, int root, srv *s, bell *bl, bool *stop)
{
    int any = 0;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (mpi__iprobe(root, comm, &flag, &st) != MPI_SUCCESS) {
            fprintf(stderr, "interp_mpi: a rank's MPI_Iprobe failed; it stops serving\n");
            return -1;
        }
        if (!flag)
            return any;
        any = 1;
        size_t len = 0;
        char *buf = mpi__recv_probed(comm, &st, &len, bl);
        if (buf && serve_message(s, st.MPI_TAG, buf, len))
            *stop = true;
        mpi__buf_give(buf);
    }
}

int mpi__serve_loop(MPI_Comm comm, int root, srv *s, waker *wk, bell *bl, double hb)
{
    sendq sq = {.bell = bl};
    int me = 0;
    MPI_Comm_rank(comm, &me);
    bool rung = bell_rings(bl, me);
    double last_sent = interp_now(), last_busy = last_sent, warm = 0, nap = 20e-6;
    bool stop = false, woke = false;
    while (!stop) {
        bool busy = sendq_progress(&sq);
        int in = serve_incoming(comm, root, s, bl, &stop);
        if (in < 0)
            return INTERP_ERR_SYSTEM;
        busy |= in > 0;
        for (reply *r = srv_replies(s), *next; r; r = next) {
            next = r->next;
            if (!r->buf.fail) {
                sendq_post(&sq, comm, root, TAG_DONE, r->buf.p, r->buf.len);
                r->buf.p = NULL;
                last_sent = interp_now();
            }
            reply_free(r);
            busy = true;
        }
        if (interp_now() - last_sent > hb / 4) {
            char *beat = malloc(1);
            if (beat) {
                beat[0] = 0;
                sendq_post(&sq, comm, root, TAG_BEAT, beat, 1);
            }
            last_sent = interp_now();
        }
        if (busy) {
            nap = 20e-6;
            woke = false;
            last_busy = interp_now();
            continue;
        }
        if (woke) /* woken for nothing: a ring may come before its message can be probed */
            warm = interp_now() + MPI__WARM;
        woke = false;
        /* sends waiting for room go out only as this thread polls (not a large one to a root
         * that rings this rank: the root pulls it, and its completion, seen at the next
         * wake-up, frees only its buffer); a root that rings this rank wakes it for whatever
         * it sends; else the root's next units arrive only by polling, and while idle only a
         * stop or new work can come, a few ms late is nothing */
        double now = interp_now();
        size_t polled = sendq_polled(&sq);
        bool poll = now < warm || polled || (!rung && srv_busy(s));
        double cap = now < warm ? busy_cap(0)
                     : polled   ? busy_cap(now - last_busy)
                     : !rung    ? (srv_busy(s) ? busy_cap(now - last_busy) : MPI__IDLE_NAP)
                     : srv_busy(s) || sq.n ? MPI__RUNG_NAP
                                           : MPI__BELL_NAP;
        if (cap > hb / 8)
            cap = hb / 8;
        bool pending = waker_pending(wk); /* a kick came while this thread was busy */
        if (waker_sleep(wk, poll ? nap : cap)) {
            nap = 20e-6;
            woke = !pending;
        } else {
            nap = nap * 2 < cap ? nap * 2 : cap;
        }
    }
    char *bye = malloc(1);
    if (bye) {
        bye[0] = 0;
        sendq_post(&sq, comm, root, TAG_BYE, bye, 1);
    }
    sendq_drain(&sq, hb);
    return INTERP_OK;
}
