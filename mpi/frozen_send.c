/* frozen_send.c - frozen values across the ranks of an MPI pool: each one is sent once to each
 * rank that needs it, then shared there by every task that rank runs.
 *
 * A frozen value's handle in a message is an address in one process. On the root, a unit whose
 * arguments hold handles is written with each handle (ext 3, fixext 8: 10 bytes) replaced by a
 * placeholder of the same size, an 8-byte string (str8: d9 08, then the value's id, u64
 * little-endian), and after each argument blob the list of the placeholders' offsets and ids.
 * The root's cache (fzsend) gives each frozen object an id and holds a reference to it; the
 * first unit that takes the object to a rank sends it there first (TAG_FROZEN: id, kind, the
 * table as an ordinary message or the buffer's bytes; MPI keeps the order of one sender's
 * messages to one receiver). The rank rebuilds it as a frozen value of its own (srv_frozen_*),
 * keyed by that id, and turns the placeholders back into handles to it after validating the
 * argument like any other (the handles are made there from the rank's own table, never read
 * from the bytes). The root's own local server gets the root's object itself (no copy).
 * When the root's last reference but the cache's goes (the host freed its messages and values),
 * a sweep drops the entry and tells the ranks that have it to forget it (TAG_FORGET); a rank's
 * tasks that still hold views keep its copy alive until they let go. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frozen_impl.h"
#include "mpi_impl.h"
#include "msg_inner.h"
#include "msg_read.h"

#define FZ_BUCKETS 64

typedef struct fz_entry {
    struct fz_entry *next;
    const interp_frozen *obj; /* one reference */
    uint64_t id;
    interp_msg *copy;     /* a table as a message, made on its first trip to a rank */
    unsigned char sent[]; /* per rank: it has the value */
} fz_entry;

static size_t bucket(const void *p) { return ((uintptr_t)p >> 4) % FZ_BUCKETS; }

void fzs_init(fzsend *c, int size, int me, int root)
{
    memset(c, 0, sizeof *c);
    c->size = size;
    c->me = me;
    c->root = root;
    c->b = calloc(FZ_BUCKETS, sizeof *c->b);
}

static void entry_free(fz_entry *e)
{
    interp_msg_free(e->copy);
    interp_frozen_release(e->obj);
    free(e);
}

void fzs_free(fzsend *c)
{
    for (size_t i = 0; c->b && i < FZ_BUCKETS; i++)
        while (c->b[i]) {
            fz_entry *e = c->b[i];
            c->b[i] = e->next;
            entry_free(e);
        }
    free(c->b);
    c->b = NULL;
    c->n = 0;
}

bool fzs_holds(const interp_msg *m) { return interp__msg_holds_frozen(m); }

static fz_entry *entry_of(fzsend *c, const interp_frozen *obj)
{
    if (!c->b)
        return NULL;
    fz_entry **head = &c->b[bucket(obj)];
    for (fz_entry *e = *head; e; e = e->next)
        if (e->obj == obj)
            return e;
    fz_entry *e = calloc(1, sizeof *e + (size_t)c->size);
    if (!e)
        return NULL;
    e->obj = interp_frozen_retain(obj);
    e->id = ++c->next_id;
    e->next = *head;
    *head = e;
    c->n++;
    return e;
}

/* TAG_FROZEN's bytes for e: u64 id, u8 kind (0 table, 1 buffer), blob. */
static int frozen_bytes(fz_entry *e, wbuf *b)
{
    size_t len = 0;
    const void *data = interp_frozen_data(e->obj, &len);
    bool buffer = interp_frozen_is_buffer(e->obj);
    if (!buffer) {
        if (!e->copy) {
            int rc = interp_frozen_to_msg(e->obj, &e->copy);
            if (rc != INTERP_OK)
                return rc;
        }
        data = interp_msg_data(e->copy);
        len = interp_msg_size(e->copy);
    }
    wb_reserve(b, len + 32);
    wb_u64(b, e->id);
    wb_u8(b, buffer ? 1 : 0);
    wb_blob(b, data ? data : "", len);
    return b->fail ? INTERP_ERR_NOMEM : INTERP_OK;
}

int fzs_put_msg(fzsend *c, wbuf *b, const interp_msg *m, int rank, const fzs_target *t)
{
    if (!fzs_holds(m)) {
        wb_msg(b, m);
        wb_u32(b, 0);
        return INTERP_OK;
    }
    size_t at = b->len + 8; /* the message's bytes start after the blob's length */
    wb_msg(b, m);
    wbuf list = {0};
    uint32_t count = 0;
    const char *data = interp_msg_data(m), *p = data, *end = data + interp_msg_size(m);
    int rc = INTERP_OK;
    interp_msg_value v;
    while (rc == INTERP_OK && !b->fail && p < end) {
        const char *head = p;
        if (!interp__msg_read_head(&p, end, &v))
            break;
        if (v.type != INTERP_MSG_FROZEN)
            continue;
        fz_entry *e = entry_of(c, v.as.frozen);
        if (!e) {
            rc = INTERP_ERR_NOMEM;
            break;
        }
        if (!e->sent[rank]) {
            if (t->local) {
                rc = t->local(t->ud, e->id, e->obj);
            } else {
                wbuf fb = {0};
                rc = frozen_bytes(e, &fb);
                if (rc == INTERP_OK)
                    rc = t->send(t->ud, rank, fb.p, fb.len);
                else
                    free(fb.p);
            }
            if (rc != INTERP_OK)
                break;
            e->sent[rank] = 1;
            /* every other rank has it: the table's message copy is done with */
            bool all = true;
            for (int k = 0; k < c->size && all; k++)
                all = k == c->root || e->sent[k];
            if (all) {
                interp_msg_free(e->copy);
                e->copy = NULL;
            }
        }
        size_t off = (size_t)(head - data);
        char *ph = b->p + at + off; /* the handle's 10 bytes become the placeholder */
        ph[0] = (char)0xd9;
        ph[1] = 8;
        for (int i = 0; i < 8; i++)
            ph[2 + i] = (char)(e->id >> (8 * i));
        wb_u64(&list, off);
        wb_u64(&list, e->id);
        count++;
    }
    wb_u32(b, count);
    wb_put(b, list.p, list.len);
    if (list.fail)
        b->fail = true;
    free(list.p);
    return b->fail ? INTERP_ERR_NOMEM : rc;
}

void fzs_sweep(fzsend *c, const fzs_target *t)
{
    if (!c->n)
        return;
    for (size_t i = 0; i < FZ_BUCKETS; i++)
        for (fz_entry **pp = &c->b[i]; *pp;) {
            fz_entry *e = *pp;
            /* references to e's root held by the cache itself (its nested objects too), and
             * by the root's own server's table (one per value handed to it) */
            size_t ours = 0;
            for (size_t j = 0; j < FZ_BUCKETS; j++)
                for (fz_entry *x = c->b[j]; x; x = x->next)
                    if (x->obj->root == e->obj->root)
                        ours += 1 + (c->me >= 0 && x->sent[c->me]);
            if (interp__frozen_refs(e->obj) > ours) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            c->n--;
            for (int k = 0; k < c->size; k++)
                if (e->sent[k])
                    t->forget(t->ud, k, e->id);
            entry_free(e);
        }
}

/* ---- the rank's side ------------------------------------------------------------------------ */

typedef struct fz_have {
    struct fz_have *next;
    uint64_t id;
    interp_frozen *obj; /* one reference; NULL: it could not be built (why says why) */
    char why[120];
} fz_have;

void fzr_init(fzrecv *r)
{
    memset(r, 0, sizeof *r);
    r->b = calloc(FZ_BUCKETS, sizeof *r->b);
}

void fzr_free(fzrecv *r)
{
    for (size_t i = 0; r->b && i < FZ_BUCKETS; i++)
        while (r->b[i]) {
            fz_have *h = r->b[i];
            r->b[i] = h->next;
            interp_frozen_release(h->obj);
            free(h);
        }
    free(r->b);
    r->b = NULL;
}

static fz_have **have_at(fzrecv *r, uint64_t id)
{
    fz_have **pp = &r->b[id % FZ_BUCKETS];
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->next;
    return pp;
}

void fzr_put(fzrecv *r, uint64_t id, interp_frozen *obj, const char *why)
{
    if (!r->b) {
        interp_frozen_release(obj);
        return;
    }
    fz_have **pp = have_at(r, id);
    fz_have *h = *pp;
    if (!h && !(h = calloc(1, sizeof *h))) {
        interp_frozen_release(obj); /* the units using it fail: "unknown" */
        return;
    }
    if (*pp)
        interp_frozen_release(h->obj);
    else
        *pp = h;
    h->id = id;
    h->obj = obj;
    snprintf(h->why, sizeof h->why, "%s", why ? why : "");
}

void fzr_recv(fzrecv *r, const char *data, size_t len, int max_depth)
{
    rbuf b = {.p = data, .len = len};
    uint64_t id = rb_u64(&b);
    bool buffer = rb_u8(&b) != 0;
    interp_frozen *obj = NULL;
    int rc;
    if (buffer) {
        const char *d;
        size_t n;
        rc = rb_blob(&b, &d, &n) && d ? interp_frozen_bytes(d, n, &obj) : INTERP_ERR_DECODE;
    } else {
        interp_msg *m = NULL;
        rc = rb_msg(&b, max_depth, &m);
        if (rc == INTERP_OK)
            rc = m ? interp_frozen_from_msg(m, max_depth, &obj) : INTERP_ERR_DECODE;
        interp_msg_free(m);
    }
    if (b.fail || !id)
        return;
    char why[120] = "";
    if (rc != INTERP_OK)
        snprintf(why, sizeof why, "a frozen value could not be rebuilt on this rank: %s",
                 interp_strerror(rc));
    fzr_put(r, id, rc == INTERP_OK ? obj : NULL, why);
}

void fzr_forget(fzrecv *r, uint64_t id)
{
    if (!r->b)
        return;
    fz_have **pp = have_at(r, id);
    fz_have *h = *pp;
    if (h) {
        *pp = h->next;
        interp_frozen_release(h->obj);
        free(h);
    }
}

/* Drop the references of the handles patched in so far; m is only fit to be freed then. */
static void unpatch(interp_msg *m) { interp__msg_frozen_mark(m, false); }

int fzr_patch(fzrecv *r, rbuf *b, interp_msg *m, char *why, size_t whylen)
{
    uint32_t count = rb_u32(b);
    if (b->fail)
        return INTERP_ERR_DECODE;
    if (!count)
        return INTERP_OK;
    if (!m || count > interp_msg_size(m) / 10) {
        snprintf(why, whylen, "malformed frozen value list");
        return INTERP_ERR_DECODE;
    }
    char *data = interp__msg_bytes(m); /* validated here: no shared strings, no handles */
    const char *p = data, *end = data + interp_msg_size(m);
    uint64_t off = rb_u64(b), id = rb_u64(b);
    uint32_t done = 0;
    interp_msg_type type;
    uint32_t ref;
    /* every listed offset must be the head of an 8-byte str8 in the validated message */
    while (done < count && !b->fail && p < end) {
        const char *head = p;
        if (!interp__msg_step(&p, end, &type, &ref))
            break;
        if ((size_t)(head - data) != off)
            continue;
        if (type != INTERP_MSG_STR || p - head != 10 || (unsigned char)head[0] != 0xd9 ||
            head[1] != 8)
            break;
        fz_have *h = r->b ? *have_at(r, id) : NULL;
        if (!h || !h->obj) {
            snprintf(why, whylen, "%s",
                     h && h->why[0] ? h->why : "a frozen value the root sent is not known here");
            unpatch(m);
            return INTERP_ERR_DECODE;
        }
        const interp_frozen *obj = interp_frozen_retain(h->obj);
        data[head - data] = (char)0xd7;
        data[head - data + 1] = INTERP_MSG_EXT_FROZEN;
        memcpy(data + (head - data) + 2, &obj, sizeof obj);
        interp__msg_frozen_mark(m, true);
        if (++done < count) {
            uint64_t next = rb_u64(b);
            id = rb_u64(b);
            if (next <= off)
                break;
            off = next;
        }
    }
    if (done < count || b->fail) {
        unpatch(m);
        snprintf(why, whylen, "malformed frozen value list");
        return INTERP_ERR_DECODE;
    }
    return INTERP_OK;
}
