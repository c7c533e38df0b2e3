/* frozen_read.c - reading frozen tables from C (interp_frozen.h): lengths, lookups by integer,
 * string or any key, iteration, bulk reads of numbers. Every entry point checks the object's
 * kind first, so a NULL, a buffer or a nested object of the wrong kind reads as nil. */
#include <string.h>

#include "frozen_impl.h"

static const fz_table *table_of(const interp_frozen *f)
{
    return f && f->kind == FZ_TABLE ? (const fz_table *)f : NULL;
}

/* A frozen value as a message value (borrowed pointers). */
static void to_value(const fz_val *v, interp_msg_value *out)
{
    switch (v->type) {
    case FZ_FALSE:
    case FZ_TRUE:
        out->type = INTERP_MSG_BOOL;
        out->as.b = v->type == FZ_TRUE;
        break;
    case FZ_INT:
        out->type = INTERP_MSG_INT;
        out->as.i = v->u.i;
        break;
    case FZ_FLOAT:
        out->type = INTERP_MSG_FLOAT;
        out->as.d = v->u.d;
        break;
    case FZ_STR:
        out->type = INTERP_MSG_STR;
        out->as.str.ptr = v->u.s->data;
        out->as.str.len = v->u.s->len;
        break;
    case FZ_OBJ:
        out->type = INTERP_MSG_FROZEN;
        out->as.frozen = v->u.o;
        break;
    default:
        out->type = INTERP_MSG_NIL;
        break;
    }
}

static bool found(const fz_val *v, interp_msg_value *out)
{
    if (!v) {
        out->type = INTERP_MSG_NIL;
        return false;
    }
    to_value(v, out);
    return true;
}

bool interp_frozen_is_table(const interp_frozen *f) { return table_of(f) != NULL; }

size_t interp_frozen_len(const interp_frozen *f)
{
    if (!f)
        return 0;
    if (f->kind == FZ_BUFFER)
        return ((const fz_buffer *)f)->len;
    const fz_table *t = table_of(f);
    return t ? t->asize : 0;
}

size_t interp_frozen_count(const interp_frozen *f)
{
    const fz_table *t = table_of(f);
    return t ? (size_t)t->asize + t->hcount : 0;
}

bool interp_frozen_geti(const interp_frozen *f, int64_t i, interp_msg_value *out)
{
    const fz_table *t = table_of(f);
    fz_val key = {.type = FZ_INT, .u.i = i}, v;
    return found(t && interp__fz_get(t, &key, &v) ? &v : NULL, out);
}

bool interp_frozen_getfield(const interp_frozen *f, const char *key, size_t len,
                            interp_msg_value *out)
{
    const fz_table *t = table_of(f);
    if (!key && len) /* no bytes to compare */
        t = NULL;
    return found(t ? interp__fz_get_str(t, key ? key : "", len) : NULL, out);
}

bool interp_frozen_get(const interp_frozen *f, const interp_msg_value *key, interp_msg_value *out)
{
    const fz_table *t = table_of(f);
    if (!t || !key)
        return found(NULL, out);
    fz_val k, v;
    if (!interp__fz_scalar_msg(key, &k)) {
        if (key->type == INTERP_MSG_STR)
            return interp_frozen_getfield(f, key->as.str.ptr, key->as.str.len, out);
        if (key->type != INTERP_MSG_FROZEN)
            return found(NULL, out); /* nil, and types no frozen table holds */
        k.type = FZ_OBJ;
        k.u.o = key->as.frozen;
    }
    if (!interp__fz_key_normalise(&k) || (k.type == FZ_OBJ && !k.u.o))
        return found(NULL, out);
    return found(interp__fz_get(t, &k, &v) ? &v : NULL, out);
}

interp_frozen_iter interp_frozen_iter_init(const interp_frozen *t)
{
    interp_frozen_iter it = {.t = table_of(t) ? t : NULL, .pos = 0};
    return it;
}

bool interp_frozen_iter_next(interp_frozen_iter *it, interp_msg_value *key, interp_msg_value *val)
{
    const fz_table *t = it ? table_of(it->t) : NULL;
    fz_val k, v;
    if (!t || !interp__fz_next(t, &it->pos, &k, &v))
        return false;
    if (key)
        to_value(&k, key);
    if (val)
        to_value(&v, val);
    return true;
}

size_t interp_frozen_read_numbers(const interp_frozen *f, int64_t first, size_t n, double *out)
{
    const fz_table *t = table_of(f);
    if (!t || !out || first < 1 || (uint64_t)first > t->asize)
        return 0;
    size_t at = (size_t)first - 1, left = t->asize - at;
    if (n > left)
        n = left;
    if (t->akind == FZ_ARR_FLOAT) {
        memcpy(out, (const double *)t->array + at, n * sizeof *out);
        return n;
    }
    if (t->akind == FZ_ARR_INT) {
        const int64_t *a = (const int64_t *)t->array + at;
        for (size_t k = 0; k < n; k++)
            out[k] = (double)a[k];
        return n;
    }
    const fz_val *a = (const fz_val *)t->array + at;
    for (size_t k = 0; k < n; k++) {
        if (a[k].type == FZ_FLOAT)
            out[k] = a[k].u.d;
        else if (a[k].type == FZ_INT)
            out[k] = (double)a[k].u.i;
        else
            return k;
    }
    return n;
}
