/* frozen.c - frozen values: roots and their arenas, reference counts, the seeded hash and
 * lookups, handles inside messages, buffers, process totals. Layout in frozen_impl.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"

#include "frozen_impl.h"
#include "msg_impl.h"
#include "msg_read.h"
#include "sync.h"

enum { CHUNK = 64 << 10, BIG = 8 << 10 };

typedef struct fz_block {
    struct fz_block *next;
    size_t size, used;
    _Alignas(16) char data[];
} fz_block;

struct fz_root {
    atomic_size_t refs;
    uint64_t k0, k1;            /* SipHash key of this value */
    fz_block *blocks;           /* the arena */
    size_t bytes;               /* charged: arena + root */
    size_t chunk;               /* size of the arena's next ordinary block */
    size_t limit;               /* while building: the most bytes it may take; 0: none */
    const interp_frozen **deps; /* other roots' objects held (one reference each) */
    size_t ndeps, capdeps;
    interp__frozen_space *space; /* charged there (one reference), or NULL */
    /* the account charged `bytes` (budget.h; one reference), or NULL: the freezing state's,
     * or the first holder's of a shared version the host has replaced (frozen_lua.c) */
    _Atomic(interp__account *) payer;
    atomic_uint published; /* names in a registry holding it (frozen_space.c) */
    /* buffers */
    fz_buffer buf;
    void (*release)(void *ud, const void *data, size_t len);
    void *release_ud;
};

static atomic_size_t total_values, total_bytes;

/* ---- randomness -------------------------------------------------------------------------- */

/* The secret of view tags: set before the first view exists (interp__fz_tag_init, from every
 * path that makes views), read-only afterwards. */
_Atomic uint64_t interp__fz_secret;
static pthread_once_t tag_once = PTHREAD_ONCE_INIT;
static void tag_init(void) { atomic_store(&interp__fz_secret, interp__random64() | 1); }
void interp__fz_tag_init(void) { pthread_once(&tag_once, tag_init); }

/* ---- SipHash-1-3 (Aumasson and Bernstein), keyed per value ---------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t siphash13(uint64_t k0, uint64_t k1, const unsigned char *p, size_t len)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575u, v1 = k1 ^ 0x646f72616e646f6du;
    uint64_t v2 = k0 ^ 0x6c7967656e657261u, v3 = k1 ^ 0x7465646279746573u;
    size_t n = len & ~(size_t)7;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t m = 0;
        for (int k = 7; k >= 0; k--)
            m = m << 8 | p[i + (size_t)k];
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t k = 0; k < (len & 7); k++)
        b |= (uint64_t)p[n + k] << (8 * k);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t interp__fz_hash(const fz_root *r, const fz_val *key)
{
    unsigned char b[8];
    uint64_t k1 = r->k1 ^ key->type; /* one key per type: 1 and "\1\0..." never collide by design */
    switch (key->type) {
    case FZ_STR:
        return siphash13(r->k0, k1, (const unsigned char *)key->u.s->data, key->u.s->len);
    case FZ_FALSE:
    case FZ_TRUE:
        return siphash13(r->k0, k1, NULL, 0);
    default: /* INT, FLOAT, OBJ: the 8 bytes of the payload */
        memcpy(b, &key->u, 8);
        return siphash13(r->k0, k1, b, 8);
    }
}

static bool same_key(const fz_val *a, const fz_val *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case FZ_FALSE:
    case FZ_TRUE:
        return true;
    case FZ_INT:
        return a->u.i == b->u.i;
    case FZ_FLOAT:
        return a->u.d == b->u.d;
    case FZ_STR:
        return a->u.s->len == b->u.s->len && memcmp(a->u.s->data, b->u.s->data, a->u.s->len) == 0;
    default:
        return a->u.o == b->u.o;
    }
}

const fz_slot *interp__fz_find(const fz_table *t, const fz_val *key)
{
    if (!t->hcap)
        return NULL;
    uint32_t mask = t->hcap - 1, i = (uint32_t)interp__fz_hash(t->h.root, key) & mask;
    for (;;) {
        const fz_slot *s = &t->hash[i];
        if (s->key.type == FZ_NIL)
            return NULL;
        if (same_key(&s->key, key))
            return s;
        i = (i + 1) & mask;
    }
}

bool interp__fz_get(const fz_table *t, const fz_val *key, fz_val *out)
{
    if (key->type == FZ_INT && (uint64_t)key->u.i - 1 < t->asize) {
        *out = interp__fz_at(t, (uint32_t)(key->u.i - 1));
        return true;
    }
    const fz_slot *s = interp__fz_find(t, key);
    if (s)
        *out = s->val;
    return s != NULL;
}

const fz_val *interp__fz_get_str(const fz_table *t, const char *str, size_t len)
{
    if (!t->hcap)
        return NULL;
    const fz_root *r = t->h.root;
    uint32_t mask = t->hcap - 1;
    uint32_t i = (uint32_t)siphash13(r->k0, r->k1 ^ FZ_STR, (const unsigned char *)str, len) & mask;
    for (;;) {
        const fz_slot *s = &t->hash[i];
        if (s->key.type == FZ_NIL)
            return NULL;
        if (s->key.type == FZ_STR && s->key.u.s->len == len &&
            memcmp(s->key.u.s->data, str, len) == 0)
            return &s->val;
        i = (i + 1) & mask;
    }
}

bool interp__fz_next(const fz_table *t, uint64_t *pos, fz_val *key, fz_val *val)
{
    uint64_t p = *pos;
    if (p < t->asize) {
        key->type = FZ_INT;
        key->u.i = (int64_t)p + 1;
        *val = interp__fz_at(t, (uint32_t)p);
        *pos = p + 1;
        return true;
    }
    for (uint64_t j = p - t->asize; j < t->hcap; j++) {
        if (t->hash[j].key.type != FZ_NIL) {
            *key = t->hash[j].key;
            *val = t->hash[j].val;
            *pos = t->asize + j + 1;
            return true;
        }
    }
    *pos = (uint64_t)t->asize + t->hcap;
    return false;
}

void interp__fz_table_hash_init(fz_root *r, fz_slot *slots, uint32_t cap, const fz_val *key,
                                const fz_val *val, bool *dup)
{
    uint32_t mask = cap - 1, i = (uint32_t)interp__fz_hash(r, key) & mask;
    *dup = false;
    while (slots[i].key.type != FZ_NIL) {
        if (same_key(&slots[i].key, key)) { /* a repeated key: the last one wins, as in Lua */
            slots[i].val = *val;
            *dup = true;
            return;
        }
        i = (i + 1) & mask;
    }
    slots[i].key = *key;
    slots[i].val = *val;
}

/* ---- roots -------------------------------------------------------------------------------- */

fz_root *interp__fz_root_new(uint32_t kind, interp__frozen_space *space)
{
    fz_root *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    atomic_init(&r->payer, NULL);
    atomic_init(&r->published, 0);
    r->k0 = interp__random64();
    r->k1 = interp__random64();
    r->bytes = sizeof *r;
    r->chunk = 2 * BIG;
    r->buf.h.kind = kind;
    r->buf.h.root = r;
    r->space = space ? interp__frozen_space_retain(space) : NULL;
    return r;
}

void *interp__fz_alloc(fz_root *r, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    fz_block *b = r->blocks;
    if (!b || b->size - b->used < size) {
        size_t cap = size > BIG ? size : r->chunk - sizeof(fz_block);
        if (r->limit && (cap > r->limit || r->bytes + sizeof(fz_block) + cap > r->limit))
            return NULL;                     /* over the freezing state's memory limit */
        if (size <= BIG && r->chunk < CHUNK) /* small values stay small; big ones grow */
            r->chunk *= 2;
        fz_block *n = malloc(sizeof *n + cap);
        if (!n)
            return NULL;
        n->size = cap;
        n->used = 0;
        r->bytes += sizeof *n + cap;
        if (size > BIG && b) { /* a big block goes behind the current chunk, which stays open */
            n->next = b->next;
            b->next = n;
        } else {
            n->next = b;
            r->blocks = n;
        }
        b = n;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

void interp__fz_root_limit(fz_root *r, size_t limit) { r->limit = limit; }

int interp__fz_root_dep(fz_root *r, const interp_frozen *dep)
{
    for (size_t k = r->ndeps; k > 0 && k + 8 > r->ndeps; k--) /* the last few: repeats are common */
        if (r->deps[k - 1]->root == dep->root)
            return INTERP_OK;
    if (r->ndeps == r->capdeps) {
        size_t cap = r->capdeps ? r->capdeps * 2 : 4;
        const interp_frozen **n = realloc(r->deps, cap * sizeof *n);
        if (!n)
            return INTERP_ERR_NOMEM;
        r->deps = n;
        r->capdeps = cap;
    }
    r->deps[r->ndeps++] = interp_frozen_retain(dep);
    return INTERP_OK;
}

void interp__fz_root_done(fz_root *r, const interp_frozen *top)
{
    (void)top;
    r->limit = 0;
    atomic_fetch_add(&total_values, 1);
    atomic_fetch_add(&total_bytes, r->bytes);
    if (r->space)
        interp__frozen_space_charge(r->space, (long long)r->bytes);
}

void interp__fz_root_free(fz_root *r)
{
    for (fz_block *b = r->blocks, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    for (size_t k = 0; k < r->ndeps; k++)
        interp_frozen_release(r->deps[k]);
    free(r->deps);
    if (r->release)
        r->release(r->release_ud, r->buf.data, r->buf.len);
    if (r->space)
        interp__frozen_space_release(r->space);
    free(r);
}

interp_frozen *interp_frozen_retain(const interp_frozen *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->root->refs, 1, memory_order_relaxed);
    return (interp_frozen *)f;
}

size_t interp__frozen_refs(const interp_frozen *f)
{
    return atomic_load_explicit(&f->root->refs, memory_order_acquire);
}

void interp_frozen_release(const interp_frozen *f)
{
    if (!f)
        return;
    fz_root *r = f->root;
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    atomic_fetch_sub(&total_values, 1);
    atomic_fetch_sub(&total_bytes, r->bytes);
    if (r->space)
        interp__frozen_space_charge(r->space, -(long long)r->bytes);
    interp__account *payer = atomic_load(&r->payer);
    if (payer) { /* the paying state stops paying (budget.h) */
        interp__account_refund(payer, r->bytes, true);
        interp__account_release(payer);
    }
    interp__fz_root_free(r);
}

/* Make acct r's payer unless somebody pays already (of two racing, one wins). */
static int pay_root(fz_root *r, interp__account *acct, char *why, size_t whylen)
{
    if (atomic_load(&r->payer))
        return INTERP_OK;
    int rc = interp__account_charge(acct, r->bytes, true, why, whylen);
    if (rc != INTERP_OK)
        return rc;
    interp__account_retain(acct);
    interp__account *none = NULL;
    if (!atomic_compare_exchange_strong(&r->payer, &none, acct)) { /* another state won */
        interp__account_refund(acct, r->bytes, true);
        interp__account_release(acct);
    }
    return INTERP_OK;
}

int interp__frozen_charge(const interp_frozen *f, interp__account *acct, char *why, size_t whylen)
{
    fz_root *r = f->root;
    if (!acct)
        return INTERP_OK;
    int rc = pay_root(r, acct, why, whylen);
    /* and the values it keeps alive that nobody pays for (one level: what a state froze in),
     * such as the host's current version of a shared value: once replaced, r alone would keep
     * it for free */
    for (size_t k = 0; rc == INTERP_OK && k < r->ndeps; k++)
        rc = pay_root(r->deps[k]->root, acct, why, whylen);
    return rc;
}

void interp__frozen_publish(const interp_frozen *f, int delta)
{
    if (delta > 0)
        atomic_fetch_add(&f->root->published, 1);
    else
        atomic_fetch_sub(&f->root->published, 1);
}

int interp__frozen_standing(const interp_frozen *f)
{
    const fz_root *r = f->root;
    if (atomic_load_explicit(&r->payer, memory_order_acquire))
        return FZ_PAID;
    return atomic_load_explicit(&r->published, memory_order_acquire) ? FZ_PUBLISHED : FZ_UNPAID;
}

bool interp_frozen_is_buffer(const interp_frozen *f) { return f && f->kind == FZ_BUFFER; }

const void *interp_frozen_data(const interp_frozen *f, size_t *len)
{
    if (!interp_frozen_is_buffer(f)) {
        if (len)
            *len = 0;
        return NULL;
    }
    const fz_buffer *b = (const fz_buffer *)f;
    if (len)
        *len = b->len;
    return b->data;
}

size_t interp_frozen_size(const interp_frozen *f) { return f ? f->root->bytes : 0; }

void interp_frozen_totals(size_t *values, size_t *bytes)
{
    if (values)
        *values = atomic_load(&total_values);
    if (bytes)
        *bytes = atomic_load(&total_bytes);
}

/* ---- buffers ------------------------------------------------------------------------------ */

static int buffer_root(const void *data, size_t len, size_t charged,
                       void (*release)(void *, const void *, size_t), void *ud, interp_frozen **out)
{
    fz_root *r = interp__fz_root_new(FZ_BUFFER, NULL);
    if (!r)
        return INTERP_ERR_NOMEM;
    r->buf.data = data;
    r->buf.len = len;
    r->release = release;
    r->release_ud = ud;
    r->bytes += charged;
    interp__fz_root_done(r, &r->buf.h);
    *out = &r->buf.h;
    return INTERP_OK;
}

int interp__frozen_buffer_copy(const void *data, size_t len, interp__frozen_space *space,
                               interp_frozen **out)
{
    if (!out || (!data && len))
        return INTERP_ERR_INVALID;
    fz_root *r = interp__fz_root_new(FZ_BUFFER, space);
    if (!r)
        return INTERP_ERR_NOMEM;
    char *copy = len ? interp__fz_alloc(r, len) : NULL;
    if (len && !copy) {
        interp__fz_root_free(r);
        return INTERP_ERR_NOMEM;
    }
    if (len)
        memcpy(copy, data, len);
    r->buf.data = copy ? copy : "";
    r->buf.len = len;
    interp__fz_root_done(r, &r->buf.h);
    *out = &r->buf.h;
    return INTERP_OK;
}

int interp_frozen_bytes(const void *data, size_t len, interp_frozen **out)
{
    return interp__frozen_buffer_copy(data, len, NULL, out);
}

int interp_frozen_wrap(const void *data, size_t len,
                       void (*release)(void *ud, const void *data, size_t len), void *ud,
                       interp_frozen **out)
{
    if (!out || (!data && len))
        return INTERP_ERR_INVALID;
    return buffer_root(data ? data : "", len, len, release, ud, out);
}

static void unmap(void *ud, const void *data, size_t len)
{
    (void)ud;
    munmap((void *)data, len);
}

static void free_bytes(void *ud, const void *data, size_t len)
{
    (void)ud;
    (void)len;
    free((void *)data);
}

int interp_frozen_map_file(const char *path, interp_frozen **out)
{
    if (!path || !out)
        return INTERP_ERR_INVALID;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? INTERP_ERR_NOTFOUND : INTERP_ERR_SYSTEM;
    struct stat st;
    int rc = INTERP_ERR_SYSTEM;
    if (fstat(fd, &st) != 0)
        goto err_close;
    if (S_ISREG(st.st_mode)) {
        size_t len = (size_t)st.st_size;
        if (len == 0) {
            close(fd);
            return interp_frozen_bytes("", 0, out);
        }
        void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            goto err_close;
        close(fd);
        if ((rc = buffer_root(p, len, len, unmap, NULL, out)))
            munmap(p, len);
        return rc;
    }
    /* not a regular file: read it once */
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            rc = INTERP_ERR_NOMEM;
            goto err_close;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free(buf);
            goto err_close;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len == cap) {
            char *n = realloc(buf, cap *= 2);
            if (!n)
                free(buf);
            buf = n;
        }
    }
    close(fd);
    if ((rc = buffer_root(buf, len, cap, free_bytes, NULL, out)))
        free(buf);
    return rc;
err_close:
    close(fd);
    return rc;
}

/* ---- handles in messages ---------------------------------------------------------------- */

void interp__frozen_msg_refs(const char *data, size_t len, int delta)
{
    const char *p = data, *end = data + len;
    interp_msg_value v;
    while (p < end && interp__msg_read_head(&p, end, &v)) {
        if (v.type != INTERP_MSG_FROZEN)
            continue;
        if (delta > 0)
            interp_frozen_retain(v.as.frozen);
        else
            interp_frozen_release(v.as.frozen);
    }
}

int interp_msg_add_frozen(interp_msg_builder *b, const interp_frozen *f)
{
    if (!f)
        return INTERP_ERR_INVALID;
    char w[10];
    w[0] = (char)0xd7;
    w[1] = INTERP_MSG_EXT_FROZEN;
    memcpy(w + 2, &f, sizeof f);
    return interp__msg_add_raw(b, w, sizeof w, INTERP__MSG_HAS_FROZEN, f);
}
