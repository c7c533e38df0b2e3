/* msg_build.c - messages from C values: the one-value constructors (interp_msg_int, ...) and
 * the builder (interp_msg_builder_*, interp_msg_add_*).
 *
 * The builder writes MessagePack straight into an interp__msgbuf, whose allocation already
 * has the message header in front, so finishing hands the bytes over without a copy. Open
 * arrays and maps are tracked on a small heap-grown stack of "values still owed", so nesting
 * has no fixed limit and finish can tell a complete message from an unfinished one.
 *
 * Encoding choices: integers take the smallest MessagePack form (positive ones as uint, so any
 * decoder reads them as non-negative); doubles are always float64, so 3.0 stays a float and
 * every double survives bit for bit; strings are MessagePack str (binary-safe). */
#include <stdlib.h>
#include <string.h>

#include <msgpuck.h>

#include "frozen_impl.h"
#include "msg_impl.h"

/* Longest MessagePack head we write: marker + 8 bytes (uint64, float64, str32 is 5). */
enum { HEAD_MAX = 9 };

struct interp_msg_builder {
    interp__msgbuf buf;
    uint32_t count; /* complete top-level values */
    uint32_t flags; /* INTERP__MSG_* of everything appended */
    int err;        /* sticky failure: INTERP_ERR_NOMEM or INTERP_ERR_LIMIT */
    uint64_t *open; /* values still owed to each open array/map, innermost last */
    size_t depth;
    size_t cap;
};

/* ---- one-value messages --------------------------------------------------------------- */

static char *encode_int(char *p, int64_t v)
{
    return v >= 0 ? mp_encode_uint(p, (uint64_t)v) : mp_encode_int(p, v);
}

static uint32_t sizeof_int(int64_t v)
{
    return v >= 0 ? mp_sizeof_uint((uint64_t)v) : mp_sizeof_int(v);
}

static interp_msg *one_value(const char *bytes, size_t n)
{
    interp_msg *m = interp__msg_alloc(n, 1, 0);
    if (m)
        memcpy(m->data, bytes, n);
    return m;
}

interp_msg *interp_msg_nil(void)
{
    char b[1];
    return one_value(b, (size_t)(mp_encode_nil(b) - b));
}

interp_msg *interp_msg_bool(bool v)
{
    char b[1];
    return one_value(b, (size_t)(mp_encode_bool(b, v) - b));
}

interp_msg *interp_msg_int(int64_t v)
{
    char b[HEAD_MAX];
    return one_value(b, (size_t)(encode_int(b, v) - b));
}

interp_msg *interp_msg_double(double v)
{
    char b[HEAD_MAX];
    return one_value(b, (size_t)(mp_encode_double(b, v) - b));
}

interp_msg *interp_msg_str(const char *s, size_t len)
{
    if ((!s && len > 0) || len > UINT32_MAX)
        return NULL;
    interp_msg *m = interp__msg_alloc(mp_sizeof_str((uint32_t)len), 1, 0);
    if (!m)
        return NULL;
    char *p = mp_encode_strl(m->data, (uint32_t)len);
    if (len)
        memcpy(p, s, len);
    return m;
}

interp_msg *interp_msg_cstr(const char *s) { return s ? interp_msg_str(s, strlen(s)) : NULL; }

/* ---- builder ---------------------------------------------------------------------------- */

interp_msg_builder *interp_msg_builder_new(void) { return calloc(1, sizeof(interp_msg_builder)); }

void interp_msg_builder_free(interp_msg_builder *b)
{
    if (!b)
        return;
    if (b->buf.msg && (b->flags & INTERP__MSG_HAS_FROZEN)) /* the handles appended so far */
        interp__frozen_msg_refs(b->buf.msg->data, b->buf.used, -1);
    interp__msgbuf_free(&b->buf);
    free(b->open);
    free(b);
}

/* Room for n more bytes, or NULL with the builder failed for good. */
static char *reserve(interp_msg_builder *b, size_t n)
{
    char *p = interp__msgbuf_reserve(&b->buf, n);
    if (!p)
        b->err = INTERP_ERR_NOMEM;
    return p;
}

static void commit(interp_msg_builder *b, const char *end)
{
    b->buf.used = (size_t)(end - b->buf.msg->data);
}

/* One value was completed at the current level: pay it to the innermost open container; a
 * container paid in full is itself a completed value of its parent, and so on outwards. */
static void value_done(interp_msg_builder *b)
{
    while (b->depth > 0) {
        if (--b->open[b->depth - 1] > 0)
            return;
        b->depth--;
    }
    if (b->count == UINT32_MAX) { /* interp_msg_count() cannot say more */
        b->err = INTERP_ERR_LIMIT;
        return;
    }
    b->count++;
}

/* Common entry check: the builder exists and has not failed. */
#define CHECK(b)                                                                                   \
    do {                                                                                           \
        if (!(b))                                                                                  \
            return INTERP_ERR_INVALID;                                                             \
        if ((b)->err)                                                                              \
            return (b)->err;                                                                       \
    } while (0)

/* A value whose bytes end at `end` is complete: keep them and count it. */
static int written(interp_msg_builder *b, const char *end)
{
    commit(b, end);
    value_done(b);
    return b->err;
}

int interp_msg_add_nil(interp_msg_builder *b)
{
    CHECK(b);
    char *p = reserve(b, 1);
    return p ? written(b, mp_encode_nil(p)) : b->err;
}

int interp_msg_add_bool(interp_msg_builder *b, bool v)
{
    CHECK(b);
    char *p = reserve(b, 1);
    return p ? written(b, mp_encode_bool(p, v)) : b->err;
}

int interp_msg_add_int(interp_msg_builder *b, int64_t v)
{
    CHECK(b);
    char *p = reserve(b, sizeof_int(v));
    return p ? written(b, encode_int(p, v)) : b->err;
}

int interp_msg_add_double(interp_msg_builder *b, double v)
{
    CHECK(b);
    char *p = reserve(b, mp_sizeof_double(v));
    return p ? written(b, mp_encode_double(p, v)) : b->err;
}

int interp_msg_add_str(interp_msg_builder *b, const char *s, size_t len)
{
    CHECK(b);
    if (!s && len > 0)
        return INTERP_ERR_INVALID;
    if (len > UINT32_MAX) /* the longest MessagePack str; nothing is appended */
        return INTERP_ERR_LIMIT;
    char *p = reserve(b, mp_sizeof_str((uint32_t)len));
    if (!p)
        return b->err;
    p = mp_encode_strl(p, (uint32_t)len);
    if (len)
        memcpy(p, s, len);
    return written(b, p + len);
}

int interp_msg_add_cstr(interp_msg_builder *b, const char *s)
{
    CHECK(b);
    if (!s)
        return INTERP_ERR_INVALID;
    return interp_msg_add_str(b, s, strlen(s));
}

/* Open a container owing `values` values (an empty one is complete at once). */
static int open_container(interp_msg_builder *b, char *p, uint64_t values)
{
    if (values == 0)
        return written(b, p);
    if (b->depth == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        uint64_t *open =
            cap <= SIZE_MAX / sizeof *open ? realloc(b->open, cap * sizeof *open) : NULL;
        if (!open)
            return b->err = INTERP_ERR_NOMEM;
        b->open = open;
        b->cap = cap;
    }
    commit(b, p); /* only now: a failed push leaves no orphan head behind */
    b->open[b->depth++] = values;
    return INTERP_OK;
}

int interp_msg_add_array(interp_msg_builder *b, uint32_t count)
{
    CHECK(b);
    char *p = reserve(b, mp_sizeof_array(count));
    if (!p)
        return b->err;
    return open_container(b, mp_encode_array(p, count), count);
}

int interp_msg_add_map(interp_msg_builder *b, uint32_t pairs)
{
    CHECK(b);
    char *p = reserve(b, mp_sizeof_map(pairs));
    if (!p)
        return b->err;
    return open_container(b, mp_encode_map(p, pairs), 2 * (uint64_t)pairs);
}

/* Append bytes verbatim. */
static int append(interp_msg_builder *b, const char *s, size_t n)
{
    char *p = reserve(b, n);
    if (!p)
        return b->err;
    if (n)
        memcpy(p, s, n);
    commit(b, p + n);
    return INTERP_OK;
}

int interp_msg_add_msg(interp_msg_builder *b, const interp_msg *m)
{
    CHECK(b);
    if (!m)
        return INTERP_ERR_INVALID;
    /* Back-references are distances back to an earlier object (msg_impl.h), so m's bytes
     * mean the same after other values: copied as they are. */
    const char *bytes = interp_msg_data(m); /* shared strings: their plain form (msg_shstr.h) */
    if (!bytes)
        return b->err = INTERP_ERR_NOMEM;
    int rc = append(b, bytes, interp_msg_size(m));
    if (rc)
        return rc;
    b->flags |= m->flags & INTERP__MSG_CONTENT;
    if (m->flags & INTERP__MSG_HAS_FROZEN)
        interp__frozen_msg_refs(m->data, m->size, +1);
    uint32_t n = m->count;
    for (; n > 0 && b->depth > 0; n--) /* paid into open containers one by one */
        value_done(b);
    if (n > UINT32_MAX - b->count) /* the rest are top-level values: counted at once */
        return b->err = INTERP_ERR_LIMIT;
    b->count += n;
    return b->err;
}

int interp_msg_builder_finish(interp_msg_builder *b, interp_msg **out)
{
    if (!b || !out) {
        interp_msg_builder_free(b);
        return INTERP_ERR_INVALID;
    }
    *out = NULL;
    int rc = b->err;
    if (!rc && b->depth > 0)
        rc = INTERP_ERR_INVALID; /* an array or map still owes values */
    if (!rc) {
        *out = interp__msgbuf_finish(&b->buf, b->count, b->flags);
        if (!*out)
            rc = INTERP_ERR_NOMEM;
    }
    interp_msg_builder_free(b);
    return rc;
}

int interp__msg_add_raw(interp_msg_builder *b, const char *bytes, size_t n, uint32_t flags,
                        const interp_frozen *f)
{
    CHECK(b);
    int rc = append(b, bytes, n);
    if (rc)
        return rc;
    interp_frozen_retain(f);
    b->flags |= flags;
    value_done(b);
    return b->err;
}
