/* wire.c - the byte format between ranks (little helpers to write and to read it back with
 * bounds checks), non-blocking sends, and Lua's bytecode header. */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "mpi_impl.h"
#include "msg_inner.h"

/* ---- large buffers kept for the next message -------------------------------------------- */

/* A unit's or a reply's bytes are often above glibc's mmap threshold: such a block is unmapped
 * at its free (interrupting the other cores to flush their TLBs) and its pages fault in afresh
 * at the next. So the buffers of sends that completed and of receives are kept (up to
 * SPARES of them, at most SPARE_KEEP bytes each) for the next ones. Any thread. */
enum { SPARES = 8 };
#define SPARE_MIN ((size_t)16 << 10)
#define SPARE_KEEP ((size_t)2 << 20)

static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static char *spare[SPARES];
static size_t spare_cap[SPARES];

char *mpi__buf_take(size_t need, size_t *cap)
{
    if (need >= SPARE_MIN) {
        int best = -1;
        pthread_mutex_lock(&spare_mu);
        for (int i = 0; i < SPARES; i++)
            if (spare[i] && spare_cap[i] >= need && spare_cap[i] / 4 <= need &&
                (best < 0 || spare_cap[i] < spare_cap[best]))
                best = i;
        char *p = best >= 0 ? spare[best] : NULL;
        if (p) {
            *cap = spare_cap[best];
            spare[best] = NULL;
        }
        pthread_mutex_unlock(&spare_mu);
        if (p)
            return p;
    }
    *cap = need;
    return malloc(need ? need : 1);
}

void mpi__buf_give(char *p)
{
    size_t cap = p ? malloc_usable_size(p) : 0;
    if (cap >= SPARE_MIN && cap <= SPARE_KEEP) {
        pthread_mutex_lock(&spare_mu);
        int at = 0; /* an empty place, else the smallest buffer kept */
        for (int i = 0; i < SPARES && spare[at]; i++)
            if (!spare[i] || spare_cap[i] < spare_cap[at])
                at = i;
        char *out = spare[at] && spare_cap[at] >= cap ? p : spare[at];
        if (out != p) {
            spare[at] = p;
            spare_cap[at] = cap;
        }
        pthread_mutex_unlock(&spare_mu);
        p = out;
    }
    free(p);
}

/* ---- write ------------------------------------------------------------------------------ */

void wb_put(wbuf *b, const void *data, size_t n)
{
    if (b->fail)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        if (cap < b->len + n && b->len + n > 4096)
            cap = b->len + n; /* wb_reserve's size, or a large blob: exactly */
        while (cap < b->len + n)
            cap *= 2;
        char *p = b->p || cap < SPARE_MIN ? realloc(b->p, cap) : mpi__buf_take(cap, &cap);
        if (!p) {
            b->fail = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n && data)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

void wb_reserve(wbuf *b, size_t n)
{
    size_t len = b->len;
    if (n > b->cap && !b->fail) {
        wb_put(b, NULL, n - len); /* grows once to n */
        b->len = len;
    }
}

void wb_u8(wbuf *b, uint8_t v) { wb_put(b, &v, 1); }
/* integers little-endian whatever the rank's own order */
void wb_u32(wbuf *b, uint32_t v)
{
    unsigned char c[4];
    for (int i = 0; i < 4; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    if (!b->fail && b->cap - b->len >= 4) { /* the usual case: no call */
        memcpy(b->p + b->len, c, 4);
        b->len += 4;
        return;
    }
    wb_put(b, c, 4);
}

void wb_u64(wbuf *b, uint64_t v)
{
    unsigned char c[8];
    for (int i = 0; i < 8; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    wb_put(b, c, 8);
}

void wb_f64(wbuf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    wb_u64(b, u);
}

void wb_blob(wbuf *b, const void *data, size_t n)
{
    wb_u64(b, data ? (uint64_t)n : UINT64_MAX);
    if (data)
        wb_put(b, data, n);
}

void wb_msg(wbuf *b, const interp_msg *m)
{
    if (m)
        wb_blob(b, interp_msg_data(m), interp_msg_size(m));
    else
        wb_blob(b, NULL, 0);
}

void wb_records_sized(wbuf *b, const interp_msg *const *ms, size_t stride, size_t n, size_t bytes)
{
    size_t at = b->len;
    wb_put(b, NULL, bytes);
    if (!b->fail && !interp__msg_wire_put(b->p + at, ms, stride, n))
        b->fail = true;
}

void wb_records(wbuf *b, const interp_msg *const *ms, size_t stride, size_t n)
{
    bool frozen;
    size_t bytes = interp__msg_wire_bytes(ms, stride, n, &frozen);
    if (frozen)
        b->fail = true;
    else
        wb_records_sized(b, ms, stride, n, bytes);
}

void wb_absent(wbuf *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wb_u32(b, UINT32_MAX);
        wb_u64(b, 0);
    }
}

void wb_text(wbuf *b, const char *s) { wb_blob(b, s, s ? strlen(s) : 0); }

/* ---- read ------------------------------------------------------------------------------- */

static const char *take(rbuf *b, size_t n)
{
    if (b->fail || n > b->len - b->at) {
        b->fail = true;
        return NULL;
    }
    const char *p = b->p + b->at;
    b->at += n;
    return p;
}

uint8_t rb_u8(rbuf *b)
{
    const char *p = take(b, 1);
    return p ? (uint8_t)*p : 0;
}

/* n little-endian bytes; 0 past the end (take marks the buffer bad). */
static uint64_t take_le(rbuf *b, int n)
{
    uint64_t v = 0;
    const unsigned char *p = (const unsigned char *)take(b, (size_t)n);
    for (int i = 0; p && i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint32_t rb_u32(rbuf *b) { return (uint32_t)take_le(b, 4); }

uint64_t rb_u64(rbuf *b) { return take_le(b, 8); }

double rb_f64(rbuf *b)
{
    uint64_t u = rb_u64(b);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

bool rb_blob(rbuf *b, const char **data, size_t *n)
{
    uint64_t len = rb_u64(b);
    *data = NULL;
    *n = 0;
    if (b->fail)
        return false;
    if (len == UINT64_MAX)
        return true;
    const char *p = take(b, (size_t)len);
    if (!p)
        return false;
    *data = p;
    *n = (size_t)len;
    return true;
}

int rb_msg(rbuf *b, int max_depth, interp_msg **m)
{
    const char *d;
    size_t n;
    *m = NULL;
    if (!rb_blob(b, &d, &n))
        return INTERP_ERR_DECODE;
    if (!d)
        return INTERP_OK;
    /* the ranks of one job run one program: their bytes are as trusted as our own (a task's
     * values were encoded by the library on a rank, never written by a tenant) */
    return interp_msg_from_bytes_ex(d, n, max_depth, INTERP_MSG_TRUST_FUNCTIONS, m);
}

int rb_records(rbuf *b, interp__slab_cache *cache, interp__slab **slab, size_t n, interp_msg **out,
               size_t stride)
{
    const char *p = b->p + b->at;
    int rc = interp__msg_wire_take(cache, slab, &p, b->fail ? p : b->p + b->len, n, out, stride);
    b->at = (size_t)(p - b->p);
    if (rc == INTERP_ERR_DECODE)
        b->fail = true;
    return rc;
}

char *rb_text(rbuf *b)
{
    const char *d;
    size_t n;
    if (!rb_blob(b, &d, &n) || !d)
        return NULL;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, d, n);
        s[n] = '\0';
    }
    return s;
}

/* ---- sends ------------------------------------------------------------------------------ */

struct sendq_item {
    struct sendq_item *next;
    MPI_Request req;
    char *buf;
    int dest;
    bool ring, poll;
};

int sendq_post(sendq *q, MPI_Comm comm, int dest, int tag, char *buf, size_t len)
{
    struct sendq_item *it = malloc(sizeof *it);
    if (!it || len > (size_t)INT32_MAX) {
        free(it);
        free(buf);
        return INTERP_ERR_NOMEM;
    }
    if (MPI_Isend(buf, (int)len, MPI_BYTE, dest, tag, comm, &it->req) != MPI_SUCCESS) {
        free(it);
        free(buf);
        return INTERP_ERR_SYSTEM;
    }
    int flag = 0; /* progress once: what Isend left pending goes out before the ring */
    MPI_Test(&it->req, &flag, MPI_STATUS_IGNORE);
    it->buf = buf;
    it->dest = dest;
    /* a beat is only looked at when the root checks anyway; a large message completes only
     * once its receiver has taken it, so only a small one that had to wait for room rings
     * again at its end */
    it->ring = tag != TAG_BEAT && len <= MPI__RING_AGAIN_MAX;
    it->poll = len <= MPI__RING_AGAIN_MAX || !bell_rings(q->bell, dest);
    it->next = q->head;
    q->head = it;
    q->n++;
    q->npoll += it->poll;
    if (tag != TAG_BEAT)
        bell_ring(q->bell, dest);
    return INTERP_OK;
}

bool sendq_progress(sendq *q)
{
    bool any = false;
    for (struct sendq_item **pp = &q->head; *pp;) {
        struct sendq_item *it = *pp;
        int done = 0;
        MPI_Test(&it->req, &done, MPI_STATUS_IGNORE);
        if (!done) {
            pp = &it->next;
            continue;
        }
        *pp = it->next;
        /* a send that had to wait for room went out only now: its receiver may sleep */
        if (it->ring)
            bell_ring(q->bell, it->dest);
        mpi__buf_give(it->buf);
        q->npoll -= it->poll;
        free(it);
        q->n--;
        any = true;
    }
    return any;
}

size_t sendq_polled(const sendq *q) { return bell_pulls(q->bell) ? q->npoll : q->n; }

void sendq_drain(sendq *q, double secs)
{
    double end = interp_now() + secs, nap = 20e-6;
    while (q->head && interp_now() < end) {
        if (!sendq_progress(q)) {
            struct timespec ts = {0, (long)(nap * 1e9)};
            nanosleep(&ts, NULL);
            nap = nap < 5e-3 ? nap * 2 : nap;
        }
    }
    while (q->head) { /* not completed in time: the peer is gone; forget the requests */
        struct sendq_item *it = q->head;
        q->head = it->next;
        MPI_Request_free(&it->req); /* MPI may still read the buffer: it is left allocated */
        q->npoll -= it->poll;
        free(it);
        q->n--;
    }
}

char *mpi__recv_probed(MPI_Comm comm, MPI_Status *st, size_t *len, bell *bl)
{
    int count = 0;
    MPI_Get_count(st, MPI_BYTE, &count);
    size_t cap;
    char *buf = mpi__buf_take(count > 0 ? (size_t)count : 1, &cap);
    if (!buf)
        return NULL;
    int src = st->MPI_SOURCE;
    if ((size_t)count <= MPI__RING_AGAIN_MAX || !bell_rings(bl, src)) {
        MPI_Recv(buf, count, MPI_BYTE, src, st->MPI_TAG, comm, MPI_STATUS_IGNORE);
    } else {
        /* its sender does not poll for it: with a single copy this side takes it alone;
         * else (the transfer needs the sender's progress) the senders of the bell poll for
         * their large sends from now on, this one woken to see it */
        MPI_Request req;
        int done = 0;
        MPI_Irecv(buf, count, MPI_BYTE, src, st->MPI_TAG, comm, &req);
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) {
            bell_no_pull(bl);
            bell_ring(bl, src);
            MPI_Wait(&req, MPI_STATUS_IGNORE);
        }
    }
    *len = (size_t)count;
    return buf;
}

int mpi__iprobe(int src, MPI_Comm comm, int *flag, MPI_Status *st)
{
    int rc = MPI_Iprobe(src, MPI_ANY_TAG, comm, flag, st);
    if (rc == MPI_SUCCESS && !*flag)
        rc = MPI_Iprobe(src, MPI_ANY_TAG, comm, flag, st);
    return rc;
}

int mpi__wait(MPI_Request *req, MPI_Status *st)
{
    double nap = 20e-6;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, st ? st : MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return INTERP_ERR_SYSTEM;
        if (done)
            return INTERP_OK;
        struct timespec ts = {0, (long)(nap * 1e9)};
        nanosleep(&ts, NULL);
        nap = nap < 10e-3 ? nap * 2 : nap;
    }
}

/* ---- Lua's bytecode header -------------------------------------------------------------- */

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    wbuf *b = ud;
    wb_put(b, p, sz);
    return 0;
}

void mpi__bytecode_header(unsigned char buf[64], size_t *n)
{
    *n = 0;
    lua_State *L = luaL_newstate();
    if (!L)
        return;
    wbuf b = {0};
    if (luaL_loadstring(L, "return") == LUA_OK)
        lua_dump(L, dump_writer, &b, 1);
    lua_close(L);
    /* 5.4: signature 4, version 1, format 1, LUAC_DATA 6, sizes of Instruction, lua_Integer,
     * lua_Number (1 each), LUAC_INT (lua_Integer bytes), LUAC_NUM (lua_Number bytes) */
    size_t h = 15;
    if (!b.fail && b.len >= h)
        h += (size_t)(unsigned char)b.p[13] + (size_t)(unsigned char)b.p[14];
    if (!b.fail && b.len >= h && h <= 64) {
        memcpy(buf, b.p, h);
        *n = h;
    }
    free(b.p);
}

const char *mpi__bytecode_differs(const unsigned char *a, size_t na, const unsigned char *b,
                                  size_t nb)
{
    if (na < 15 || nb < 15)
        return "no bytecode header";
    if (memcmp(a, b, 4) != 0)
        return "signature";
    if (a[4] != b[4])
        return "Lua version";
    if (a[5] != b[5])
        return "bytecode format";
    if (memcmp(a + 6, b + 6, 6) != 0)
        return "LUAC_DATA (a corrupted or converted chunk)";
    if (a[12] != b[12])
        return "size of Instruction";
    if (a[13] != b[13])
        return "size of lua_Integer";
    if (a[14] != b[14])
        return "size of lua_Number";
    if (na != nb || memcmp(a + 15, b + 15, (size_t)a[13]) != 0)
        return "integer format (byte order)";
    if (memcmp(a + 15 + a[13], b + 15 + b[13], (size_t)a[14]) != 0)
        return "float format";
    return NULL;
}
