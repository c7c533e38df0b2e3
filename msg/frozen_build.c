/* frozen_build.c - a frozen table from a message (interp_frozen_from_msg).
 *
 * One walk over the message in order, by recursive descent bounded by max_depth (at most
 * MAX_DEPTH, so the C stack stays small). Tables are numbered as they begin, like the codec
 * (msg_impl.h), so a REF names the table object directly: shared subtables and cycles become
 * shared pointers inside the arena. A handle to another frozen value becomes a pointer to it,
 * and the new root keeps a reference to its root.
 *
 * Layout of one table: keys 1..n (n the first absent key, so #t is a border) go to the array
 * part; every other key to an open-addressing hash of load <= 1/2 keyed with the value's own
 * SipHash key. Keys are normalised as Lua does (a float with an integral value is that
 * integer); a nil or NaN key, or a function anywhere, is refused. A map's pairs are first
 * gathered in a scratch hash (a repeated key: the last wins; a nil value removes it, as a
 * decode into Lua would), then laid out. */
#include <stdlib.h>
#include <string.h>

#include "frozen_impl.h"
#include "msg_impl.h"
#include "msg_read.h"

enum { DEFAULT_DEPTH = 200, MAX_DEPTH = 1000 };

typedef struct bld {
    fz_root *r;
    const char *end;
    int max_depth;
    fz_table **objs;
    size_t nobj, capobj;
} bld;

static int value(bld *b, const char **p, fz_val *out, int depth);

static int add_obj(bld *b, fz_table *t)
{
    if (b->nobj == b->capobj) {
        size_t cap = b->capobj ? b->capobj * 2 : 64;
        fz_table **n = realloc(b->objs, cap * sizeof *n);
        if (!n)
            return INTERP_ERR_NOMEM;
        b->objs = n;
        b->capobj = cap;
    }
    b->objs[b->nobj++] = t;
    return INTERP_OK;
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t c = 4;
    while (c < n)
        c *= 2;
    return c;
}

/* A key as Lua would store it: INTERP_OK, or DECODE for nil and NaN. */
static int normalise_key(fz_val *k)
{
    return interp__fz_key_normalise(k) ? INTERP_OK : INTERP_ERR_DECODE;
}

/* Lay out t from `n` gathered entries (slots of a scratch hash of capacity cap, empty ones
 * and nil values skipped); `lookup` finds an integer key in the scratch. */
static int layout(bld *b, fz_table *t, const fz_slot *scratch, uint32_t cap)
{
    uint64_t asize = 0;
    for (;;) { /* the array part: 1..asize all present */
        fz_val k = {.type = FZ_INT, .u.i = (int64_t)asize + 1};
        fz_table probe = {.h = {FZ_TABLE, b->r}, .hcap = cap, .hash = scratch};
        fz_val v;
        if (!interp__fz_get(&probe, &k, &v) || v.type == FZ_NIL || asize == UINT32_MAX)
            break;
        asize++;
    }
    uint64_t rest = 0;
    for (uint32_t i = 0; i < cap; i++)
        if (scratch[i].key.type != FZ_NIL && scratch[i].val.type != FZ_NIL)
            rest++;
    rest -= asize;
    fz_val *arr = asize ? interp__fz_alloc(b->r, asize * sizeof *arr) : NULL;
    uint32_t hcap = rest ? pow2_at_least(rest * 2) : 0;
    fz_slot *hash = hcap ? interp__fz_alloc(b->r, (size_t)hcap * sizeof *hash) : NULL;
    if ((asize && !arr) || (hcap && !hash))
        return INTERP_ERR_NOMEM;
    if (hcap)
        memset(hash, 0, (size_t)hcap * sizeof *hash);
    for (uint32_t i = 0; i < cap; i++) {
        const fz_slot *s = &scratch[i];
        if (s->key.type == FZ_NIL || s->val.type == FZ_NIL)
            continue;
        if (s->key.type == FZ_INT && (uint64_t)s->key.u.i - 1 < asize) {
            arr[s->key.u.i - 1] = s->val;
        } else {
            bool dup;
            interp__fz_table_hash_init(b->r, hash, hcap, &s->key, &s->val, &dup);
        }
    }
    t->asize = (uint32_t)asize;
    t->array = arr;
    t->hcap = hcap;
    t->hcount = (uint32_t)rest;
    t->hash = hash;
    return INTERP_OK;
}

/* FZ_ARR_FLOAT when the n values at p are all floats, FZ_ARR_INT when all are integers that
 * fit int64, else FZ_ARR_VAL (0). A scan of the head bytes only (the message is valid). */
static int typed_kind(const char *at, const char *end, uint32_t n)
{
    const unsigned char *p = (const unsigned char *)at, *e = (const unsigned char *)end;
    uint32_t floats = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (p >= e)
            return FZ_ARR_VAL;
        unsigned c = *p;
        if (c == 0xcb)
            p += 9, floats++;
        else if (c == 0xca)
            p += 5, floats++;
        else if (c <= 0x7f || c >= 0xe0)
            p += 1;
        else if (c == 0xcc || c == 0xd0)
            p += 2;
        else if (c == 0xcd || c == 0xd1)
            p += 3;
        else if (c == 0xce || c == 0xd2)
            p += 5;
        else if (c == 0xd3 || (c == 0xcf && p + 1 < e && p[1] < 0x80)) /* uint64 <= INT64_MAX */
            p += 9;
        else
            return FZ_ARR_VAL;
        if (floats && floats != i + 1)
            return FZ_ARR_VAL;
    }
    return floats == n ? FZ_ARR_FLOAT : floats == 0 ? FZ_ARR_INT : FZ_ARR_VAL;
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = v << 8 | p[k];
    return v;
}

/* Read the n values typed_kind accepted into arr (doubles or int64s), advancing *at. */
static void read_typed(const char **at, uint32_t n, int kind, void *arr)
{
    const unsigned char *p = (const unsigned char *)*at;
    double *d = arr;
    int64_t *q = arr;
    for (uint32_t i = 0; i < n; i++) {
        unsigned c = *p;
        if (kind == FZ_ARR_FLOAT) {
            if (c == 0xcb) {
                uint64_t bits = be(p + 1, 8);
                memcpy(&d[i], &bits, 8);
                p += 9;
            } else {
                uint32_t bits = (uint32_t)be(p + 1, 4);
                float f;
                memcpy(&f, &bits, 4);
                d[i] = (double)f;
                p += 5;
            }
            continue;
        }
        if (c <= 0x7f) {
            q[i] = (int64_t)c;
            p += 1;
        } else if (c >= 0xe0) {
            q[i] = (int64_t)(int8_t)c;
            p += 1;
        } else {
            int w = c == 0xcc || c == 0xd0   ? 1
                    : c == 0xcd || c == 0xd1 ? 2
                    : c == 0xce || c == 0xd2 ? 4
                                             : 8;
            uint64_t u = be(p + 1, w);
            if (c >= 0xd0) /* signed: sign-extend from w bytes */
                q[i] = w == 8 ? (int64_t)u : (int64_t)(u << (64 - 8 * w)) >> (64 - 8 * w);
            else
                q[i] = (int64_t)u;
            p += 1 + w;
        }
    }
    *at = (const char *)p;
}

static int table(bld *b, const char **p, const interp_msg_value *v, fz_val *out, int depth)
{
    if (depth >= b->max_depth)
        return INTERP_ERR_LIMIT;
    fz_table *t = interp__fz_alloc(b->r, sizeof *t);
    if (!t || add_obj(b, t))
        return INTERP_ERR_NOMEM;
    memset(t, 0, sizeof *t);
    t->h.kind = FZ_TABLE;
    t->h.root = b->r;
    out->type = FZ_OBJ;
    out->u.o = &t->h;
    uint32_t n = v->as.seq.count;
    int rc = INTERP_OK;
    if (v->type == INTERP_MSG_ARRAY && n > 0 && (t->akind = typed_kind(*p, b->end, n))) {
        /* all floats or all integers: read straight into a bare array */
        void *arr = interp__fz_alloc(b->r, (size_t)n * 8);
        if (!arr)
            return INTERP_ERR_NOMEM;
        read_typed(p, n, t->akind, arr);
        t->asize = n;
        t->array = arr;
        return INTERP_OK;
    }
    if (v->type == INTERP_MSG_ARRAY) {
        fz_val *arr = n ? interp__fz_alloc(b->r, (size_t)n * sizeof *arr) : NULL;
        if (n && !arr)
            return INTERP_ERR_NOMEM;
        for (uint32_t i = 0; i < n; i++)
            if ((rc = value(b, p, &arr[i], depth + 1)))
                return rc;
        uint32_t k = 0;
        while (k < n && arr[k].type != FZ_NIL)
            k++;
        t->asize = k;
        t->array = arr;
        if (k == n)
            return INTERP_OK;
        /* a nil inside: what follows goes through the general layout */
        uint32_t cap = pow2_at_least((uint64_t)n * 2);
        fz_slot *scratch = calloc(cap, sizeof *scratch);
        if (!scratch)
            return INTERP_ERR_NOMEM;
        for (uint32_t i = 0; i < n; i++) {
            bool dup;
            fz_val key = {.type = FZ_INT, .u.i = (int64_t)i + 1};
            if (arr[i].type != FZ_NIL)
                interp__fz_table_hash_init(b->r, scratch, cap, &key, &arr[i], &dup);
        }
        rc = layout(b, t, scratch, cap);
        free(scratch);
        return rc;
    }
    uint32_t cap = pow2_at_least((uint64_t)n * 2);
    fz_slot *scratch = calloc(cap, sizeof *scratch);
    if (!scratch)
        return INTERP_ERR_NOMEM;
    for (uint32_t i = 0; i < n && !rc; i++) {
        fz_val key, val;
        bool dup;
        if (!(rc = value(b, p, &key, depth + 1)) && !(rc = normalise_key(&key)) &&
            !(rc = value(b, p, &val, depth + 1)))
            interp__fz_table_hash_init(b->r, scratch, cap, &key, &val, &dup);
    }
    if (!rc)
        rc = layout(b, t, scratch, cap);
    free(scratch);
    return rc;
}

static int value(bld *b, const char **p, fz_val *out, int depth)
{
    interp_msg_value v;
    if (!interp__msg_read_head(p, b->end, &v))
        return INTERP_ERR_DECODE;
    if (interp__fz_scalar_msg(&v, out))
        return INTERP_OK;
    switch (v.type) {
    case INTERP_MSG_NIL:
        out->type = FZ_NIL;
        return INTERP_OK;
    case INTERP_MSG_STR: {
        fz_str *s = interp__fz_alloc(b->r, sizeof *s + v.as.str.len);
        if (!s)
            return INTERP_ERR_NOMEM;
        s->len = v.as.str.len;
        memcpy(s->data, v.as.str.ptr, s->len);
        out->type = FZ_STR;
        out->u.s = s;
        return INTERP_OK;
    }
    case INTERP_MSG_ARRAY:
    case INTERP_MSG_MAP:
        return table(b, p, &v, out, depth);
    case INTERP_MSG_REF:
        if (v.as.ref == 0 || v.as.ref > b->nobj)
            return INTERP_ERR_DECODE;
        out->type = FZ_OBJ;
        out->u.o = &b->objs[b->nobj - v.as.ref]->h;
        return INTERP_OK;
    case INTERP_MSG_FROZEN:
        out->type = FZ_OBJ;
        out->u.o = v.as.frozen;
        return v.as.frozen->root == b->r ? INTERP_OK : interp__fz_root_dep(b->r, v.as.frozen);
    default: /* functions */
        return INTERP_ERR_DECODE;
    }
}

int interp__frozen_build(const interp_msg *m, int max_depth, interp__frozen_space *space,
                         interp_frozen **out)
{
    if (!m || !out || interp_msg_count(m) != 1)
        return INTERP_ERR_INVALID;
    /* the bytes as they are: a shared string's handle reads as the string (msg_shstr.h) */
    const char *p = m->data, *end = p + m->size;
    interp_msg_value top;
    const char *q = p;
    if (!interp__msg_read_head(&q, end, &top))
        return INTERP_ERR_DECODE;
    if (top.type == INTERP_MSG_FROZEN) { /* already frozen */
        *out = interp_frozen_retain(top.as.frozen);
        return INTERP_OK;
    }
    if (top.type != INTERP_MSG_ARRAY && top.type != INTERP_MSG_MAP)
        return INTERP_ERR_INVALID;
    bld b = {.end = end,
             .max_depth = max_depth <= 0          ? DEFAULT_DEPTH
                          : max_depth > MAX_DEPTH ? MAX_DEPTH
                                                  : max_depth};
    if (!(b.r = interp__fz_root_new(FZ_TABLE, space)))
        return INTERP_ERR_NOMEM;
    fz_val v;
    int rc = value(&b, &p, &v, 0);
    free(b.objs);
    if (rc) {
        interp__fz_root_free(b.r);
        return rc;
    }
    interp__fz_root_done(b.r, v.u.o);
    *out = (interp_frozen *)v.u.o;
    return INTERP_OK;
}

int interp_frozen_from_msg(const interp_msg *m, int max_depth, interp_frozen **out)
{
    return interp__frozen_build(m, max_depth, NULL, out);
}
