/* frozen_thaw.c - a frozen value back into an ordinary message (interp_frozen_to_msg): the
 * deep copy behind interp.thaw.
 *
 * Tables are numbered as they begin, as the codec does (msg_impl.h), so a table reached twice
 * (shared parts, cycles) is written once and then as a REF. A table with no hash part becomes
 * an array, any other a map (array part first). Nested frozen values of other roots are copied
 * too; buffers become strings. Recursive, bounded by MAX_DEPTH. */
#include <msgpuck.h>
#include <string.h>

#include "frozen_impl.h"
#include "msg_impl.h"
#include "msg_lua_impl.h"

enum { MAX_DEPTH = 1000 };

typedef struct thaw {
    interp__msgbuf buf;
    interp__idmap ids;
    uint64_t nobj;
    uint32_t flags;
} thaw;

static int put(thaw *t, const void *bytes, size_t n)
{
    char *w = interp__msgbuf_reserve(&t->buf, n);
    if (!w)
        return INTERP_ERR_NOMEM;
    memcpy(w, bytes, n);
    t->buf.used += n;
    return INTERP_OK;
}

static int put_str(thaw *t, const char *s, size_t len)
{
    if (len > UINT32_MAX)
        return INTERP_ERR_LIMIT;
    char h[5];
    int rc = put(t, h, (size_t)(mp_encode_strl(h, (uint32_t)len) - h));
    return rc ? rc : put(t, s, len);
}

static int put_value(thaw *t, const fz_val *v, int depth);

static int put_table(thaw *t, const fz_table *tb, int depth)
{
    interp__idmap_slot *s = interp__idmap_lookup(&t->ids, tb);
    char h[9];
    if (s->key) { /* a REF: the distance back, shortest fixext */
        uint64_t d = t->nobj - s->val;
        unsigned char r[6] = {0xd6, INTERP_MSG_EXT_REF};
        for (int k = 0; k < 4; k++)
            r[2 + k] = (unsigned char)(d >> (24 - 8 * k));
        t->flags |= INTERP__MSG_HAS_REFS;
        return d > UINT32_MAX ? INTERP_ERR_LIMIT : put(t, r, 6);
    }
    if (depth >= MAX_DEPTH)
        return INTERP_ERR_LIMIT;
    if (interp__idmap_insert(&t->ids, s, tb, t->nobj++))
        return INTERP_ERR_NOMEM;
    int rc;
    if (tb->hcount == 0) {
        if ((rc = put(t, h, (size_t)(mp_encode_array(h, tb->asize) - h))))
            return rc;
        for (uint32_t i = 0; i < tb->asize; i++) {
            fz_val v = interp__fz_at(tb, i);
            if ((rc = put_value(t, &v, depth + 1)))
                return rc;
        }
        return INTERP_OK;
    }
    uint64_t pairs = (uint64_t)tb->asize + tb->hcount;
    if (pairs > UINT32_MAX)
        return INTERP_ERR_LIMIT;
    if ((rc = put(t, h, (size_t)(mp_encode_map(h, (uint32_t)pairs) - h))))
        return rc;
    for (uint32_t i = 0; i < tb->asize; i++) {
        fz_val k = {.type = FZ_INT, .u.i = (int64_t)i + 1}, v = interp__fz_at(tb, i);
        if ((rc = put_value(t, &k, depth + 1)) || (rc = put_value(t, &v, depth + 1)))
            return rc;
    }
    for (uint32_t i = 0; i < tb->hcap; i++) {
        const fz_slot *sl = &tb->hash[i];
        if (sl->key.type == FZ_NIL)
            continue;
        if ((rc = put_value(t, &sl->key, depth + 1)) || (rc = put_value(t, &sl->val, depth + 1)))
            return rc;
    }
    return INTERP_OK;
}

static int put_value(thaw *t, const fz_val *v, int depth)
{
    char h[9];
    switch (v->type) {
    case FZ_NIL:
        return put(t, "\xc0", 1);
    case FZ_FALSE:
        return put(t, "\xc2", 1);
    case FZ_TRUE:
        return put(t, "\xc3", 1);
    case FZ_INT:
        return put(t, h,
                   (size_t)((v->u.i >= 0 ? mp_encode_uint(h, (uint64_t)v->u.i)
                                         : mp_encode_int(h, v->u.i)) -
                            h));
    case FZ_FLOAT:
        return put(t, h, (size_t)(mp_encode_double(h, v->u.d) - h));
    case FZ_STR:
        return put_str(t, v->u.s->data, v->u.s->len);
    default:
        if (v->u.o->kind == FZ_BUFFER) {
            const fz_buffer *b = (const fz_buffer *)v->u.o;
            return put_str(t, b->data, b->len);
        }
        return put_table(t, (const fz_table *)v->u.o, depth);
    }
}

int interp_frozen_to_msg(const interp_frozen *f, interp_msg **out)
{
    if (!f || !out)
        return INTERP_ERR_INVALID;
    thaw t = {.nobj = 0};
    interp__idmap_init(&t.ids);
    fz_val v = {.type = FZ_OBJ, .u.o = f};
    int rc = put_value(&t, &v, 0);
    interp__idmap_free(&t.ids);
    if (!rc && !(*out = interp__msgbuf_finish(&t.buf, 1, t.flags)))
        rc = INTERP_ERR_NOMEM;
    interp__msgbuf_free(&t.buf);
    return rc;
}
