/* msg_pack.c - format-driven messages for C hosts: interp_msg_pack builds a message from a
 * format string and arguments (like Py_BuildValue), interp_msg_unpack reads one into pointers
 * (like PyArg_ParseTuple). The format grammar is in interp_msg.h.
 *
 * Both sit on the public builder and reader (msg_build.c, msg_read.c) and encode or decode
 * nothing themselves. Each works in passes over its own copy of the va_list, so that every
 * check happens before anything is built or written:
 *   - check_format: the format alone (letters, brackets, depth, map parity where it is known)
 *     and, for unpack, that no destination pointer is NULL;
 *   - pack: a counting pass reads the arguments and works out every array's and map's element
 *     count (the builder needs it up front, and an `m` argument adds as many elements as it
 *     holds values), then a building pass appends;
 *   - unpack: a matching pass checks the message against the format without writing, then a
 *     writing pass, which can no longer fail (the message is immutable), fills the pointers. */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>

#include "interp_msg.h"

_Static_assert(sizeof(long long) <= sizeof(int64_t), "long long wider than 64 bits");

enum { MAX_DEPTH = INTERP_MSG_PACK_MAX_DEPTH };

/* The largest integer that unpack `z` stores: SIZE_MAX where size_t is narrower. */
#define SIZE_LIMIT ((uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (int64_t)SIZE_MAX : INT64_MAX)

/* The next significant character of a format: separators are skipped. */
static const char *item(const char *p)
{
    while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static int closer_of(char open)
{
    return open == '[' ? ']' : '}';
}

/* Consume the destination pointers of unpack letter c, each read as the type it is passed
 * as; false if one is NULL. */
static bool pointers_given(va_list *ap, char c)
{
    switch (c) {
    case 'b': return va_arg(*ap, bool *) != NULL;
    case 'i': return va_arg(*ap, int *) != NULL;
    case 'l': return va_arg(*ap, long *) != NULL;
    case 'L': return va_arg(*ap, long long *) != NULL;
    case 'I': return va_arg(*ap, int64_t *) != NULL;
    case 'z': return va_arg(*ap, size_t *) != NULL;
    case 'd': return va_arg(*ap, double *) != NULL;
    default: { /* 's', 'S': both are consumed */
        bool ptr = va_arg(*ap, const char **) != NULL;
        return va_arg(*ap, size_t *) != NULL && ptr;
    }
    }
}

/* Check the format alone: every letter known to this direction, brackets balanced and at most
 * MAX_DEPTH deep, `*` only last in its level, an even number of items in every map without
 * `m` (with `m` the count is known only from the arguments: the counting pass checks it).
 * *containers is set to the number of arrays and maps. For unpack with `ap`, the destination
 * pointers are consumed and checked too: a NULL one is INTERP_ERR_INVALID. */
static int check_format(const char *fmt, bool unpack, va_list *ap, size_t *containers)
{
    char open[MAX_DEPTH + 1] = {0};  /* bracket of each level; level 0 is the message */
    uint64_t items[MAX_DEPTH + 1] = {0};
    bool dynamic[MAX_DEPTH + 1] = {0}; /* holds an `m`: parity unknown yet */
    int depth = 0;
    size_t n = 0;
    for (const char *p = item(fmt); *p; p = item(p + 1)) {
        bool pointers = false; /* the item takes destination pointers (unpack) */
        switch (*p) {
        case 'n':
            items[depth]++;
            break;
        case 'b': case 'i': case 'l': case 'L': case 'I': case 'z': case 'd':
        case 's': case 'S':
            items[depth]++;
            pointers = true;
            break;
        case 'm':
            if (unpack)
                return INTERP_ERR_INVALID;
            dynamic[depth] = true;
            break;
        case '?':
            if (!unpack)
                return INTERP_ERR_INVALID;
            items[depth]++;
            break;
        case '*': {
            char next = *item(p + 1);
            if (!unpack || (next != '\0' && next != ']' && next != '}'))
                return INTERP_ERR_INVALID;
            break;
        }
        case '[': case '{':
            if (depth == MAX_DEPTH)
                return INTERP_ERR_LIMIT;
            items[depth]++;
            depth++;
            open[depth] = *p;
            items[depth] = 0;
            dynamic[depth] = false;
            n++;
            break;
        case ']': case '}':
            if (depth == 0 || *p != closer_of(open[depth]))
                return INTERP_ERR_INVALID;
            if (*p == '}' && !dynamic[depth] && items[depth] % 2)
                return INTERP_ERR_INVALID;
            depth--;
            break;
        default:
            return INTERP_ERR_INVALID;
        }
        if (unpack && ap && pointers && !pointers_given(ap, *p))
            return INTERP_ERR_INVALID;
    }
    if (depth > 0)
        return INTERP_ERR_INVALID;
    *containers = n;
    return INTERP_OK;
}

/* ---- pack ------------------------------------------------------------------------------ */

/* One pass over a checked format. Without a builder (counting pass): read the arguments,
 * refuse bad ones, and store each container's count (pairs for maps) in counts[], in the
 * order the containers open. With a builder (building pass): append, taking the counts. */
static int pack_pass(const char *fmt, va_list *ap, interp_msg_builder *b, uint32_t *counts)
{
    struct { uint64_t values; size_t slot; } lvl[MAX_DEPTH + 1];
    int depth = 0;
    size_t slots = 0;
    lvl[0].values = 0;
    for (const char *p = item(fmt); *p; p = item(p + 1)) {
        int rc = INTERP_OK;
        uint64_t added = 1; /* values this item adds to the current level */
        switch (*p) {
        case 'n':
            if (b)
                rc = interp_msg_add_nil(b);
            break;
        case 'b': {
            int v = va_arg(*ap, int);
            if (b)
                rc = interp_msg_add_bool(b, v != 0);
            break;
        }
        case 'i': {
            int v = va_arg(*ap, int);
            if (b)
                rc = interp_msg_add_int(b, v);
            break;
        }
        case 'l': {
            long v = va_arg(*ap, long);
            if (b)
                rc = interp_msg_add_int(b, v);
            break;
        }
        case 'L': {
            long long v = va_arg(*ap, long long);
            if (b)
                rc = interp_msg_add_int(b, v);
            break;
        }
        case 'I': {
            int64_t v = va_arg(*ap, int64_t);
            if (b)
                rc = interp_msg_add_int(b, v);
            break;
        }
        case 'z': {
            size_t v = va_arg(*ap, size_t);
            if ((uint64_t)v > (uint64_t)INT64_MAX) /* messages hold signed 64-bit integers */
                return INTERP_ERR_LIMIT;
            if (b)
                rc = interp_msg_add_int(b, (int64_t)v);
            break;
        }
        case 'd': {
            double v = va_arg(*ap, double);
            if (b)
                rc = interp_msg_add_double(b, v);
            break;
        }
        case 's': {
            const char *s = va_arg(*ap, const char *);
            if (!s)
                return INTERP_ERR_INVALID;
            if (b)
                rc = interp_msg_add_cstr(b, s);
            break;
        }
        case 'S': {
            const char *s = va_arg(*ap, const char *);
            size_t len = va_arg(*ap, size_t);
            if (!s && len > 0)
                return INTERP_ERR_INVALID;
            if (len > UINT32_MAX)
                return INTERP_ERR_LIMIT;
            if (b)
                rc = interp_msg_add_str(b, s, len);
            break;
        }
        case 'm': {
            const interp_msg *m = va_arg(*ap, const interp_msg *);
            if (!m)
                return INTERP_ERR_INVALID;
            added = interp_msg_count(m);
            if (b)
                rc = interp_msg_add_msg(b, m);
            break;
        }
        case '[': case '{':
            if (b)
                rc = *p == '[' ? interp_msg_add_array(b, counts[slots])
                               : interp_msg_add_map(b, counts[slots]);
            lvl[depth].values++; /* the container is one value of its parent */
            depth++;
            lvl[depth].values = 0;
            lvl[depth].slot = slots++;
            added = 0;
            break;
        default: { /* ']' or '}': check_format admits nothing else here */
            uint64_t n = lvl[depth].values;
            if (!b) {
                if (*p == '}') {
                    if (n % 2) /* an `m` made the key/value items odd */
                        return INTERP_ERR_INVALID;
                    n /= 2;
                }
                if (n > UINT32_MAX)
                    return INTERP_ERR_LIMIT;
                counts[lvl[depth].slot] = (uint32_t)n;
            }
            depth--;
            added = 0;
            break;
        }
        }
        if (rc)
            return rc;
        lvl[depth].values += added;
    }
    return lvl[0].values > UINT32_MAX ? INTERP_ERR_LIMIT : INTERP_OK;
}

int interp_msg_vpack(interp_msg **out, const char *fmt, va_list ap)
{
    if (!out)
        return INTERP_ERR_INVALID;
    *out = NULL;
    if (!fmt)
        return INTERP_ERR_INVALID;
    size_t containers;
    int rc = check_format(fmt, false, NULL, &containers);
    if (rc)
        return rc;
    uint32_t small[16];
    uint32_t *counts = small;
    if (containers > sizeof small / sizeof *small) {
        counts = containers <= SIZE_MAX / sizeof *counts ? malloc(containers * sizeof *counts)
                                                         : NULL;
        if (!counts)
            return INTERP_ERR_NOMEM;
    }
    va_list args;
    va_copy(args, ap);
    rc = pack_pass(fmt, &args, NULL, counts);
    va_end(args);
    if (!rc) {
        interp_msg_builder *b = interp_msg_builder_new();
        if (!b) {
            rc = INTERP_ERR_NOMEM;
        } else {
            va_copy(args, ap);
            rc = pack_pass(fmt, &args, b, counts);
            va_end(args);
            if (rc)
                interp_msg_builder_free(b);
            else
                rc = interp_msg_builder_finish(b, out); /* frees b in every case */
        }
    }
    if (counts != small)
        free(counts);
    return rc;
}

int interp_msg_pack(interp_msg **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = interp_msg_vpack(out, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- unpack ---------------------------------------------------------------------------- */

/* The integer in v if it lies within [lo, hi]: INTERP_ERR_DECODE if v is not an integer,
 * INTERP_ERR_LIMIT if it does not fit. */
static int integer(const interp_msg_value *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (v->type != INTERP_MSG_INT)
        return INTERP_ERR_DECODE;
    if (v->as.i < lo || v->as.i > hi)
        return INTERP_ERR_LIMIT;
    *out = v->as.i;
    return INTERP_OK;
}

/* One pass over a checked format. Without `ap` (matching pass): check that m has the shape
 * and types the format asks for, writing nothing. With `ap` (writing pass, after a matching
 * pass succeeded): store every value. */
static int unpack_pass(const interp_msg *m, const char *fmt, va_list *ap)
{
    interp_msg_iter it[MAX_DEPTH + 1]; /* the run being read at each level */
    bool rest[MAX_DEPTH + 1];          /* `*` seen: the level's remaining values are skipped */
    int depth = 0;
    it[0] = interp_msg_iter_init(m);
    rest[0] = false;
    for (const char *p = item(fmt); *p; p = item(p + 1)) {
        if (*p == '*') {
            rest[depth] = true;
            continue;
        }
        if (*p == ']' || *p == '}') {
            if (!rest[depth] && it[depth].left > 0)
                return INTERP_ERR_DECODE; /* more elements than items */
            depth--;
            continue;
        }
        interp_msg_value v;
        if (!interp_msg_next(&it[depth], &v))
            return INTERP_ERR_DECODE; /* fewer values than items */
        int64_t i = 0;
        int rc = INTERP_OK;
        switch (*p) {
        case 'n':
            if (v.type != INTERP_MSG_NIL)
                return INTERP_ERR_DECODE;
            break;
        case '?':
            break;
        case 'b':
            if (v.type != INTERP_MSG_BOOL)
                return INTERP_ERR_DECODE;
            if (ap)
                *va_arg(*ap, bool *) = v.as.b;
            break;
        case 'i':
            if ((rc = integer(&v, INT_MIN, INT_MAX, &i)))
                return rc;
            if (ap)
                *va_arg(*ap, int *) = (int)i;
            break;
        case 'l':
            if ((rc = integer(&v, LONG_MIN, LONG_MAX, &i)))
                return rc;
            if (ap)
                *va_arg(*ap, long *) = (long)i;
            break;
        case 'L':
            if ((rc = integer(&v, LLONG_MIN, LLONG_MAX, &i)))
                return rc;
            if (ap)
                *va_arg(*ap, long long *) = (long long)i;
            break;
        case 'I':
            if ((rc = integer(&v, INT64_MIN, INT64_MAX, &i)))
                return rc;
            if (ap)
                *va_arg(*ap, int64_t *) = i;
            break;
        case 'z':
            if ((rc = integer(&v, 0, SIZE_LIMIT, &i)))
                return rc;
            if (ap)
                *va_arg(*ap, size_t *) = (size_t)i;
            break;
        case 'd':
            if (v.type != INTERP_MSG_FLOAT && v.type != INTERP_MSG_INT)
                return INTERP_ERR_DECODE;
            if (ap)
                *va_arg(*ap, double *) = v.type == INTERP_MSG_INT ? (double)v.as.i : v.as.d;
            break;
        case 's': case 'S':
            if (v.type != INTERP_MSG_STR)
                return INTERP_ERR_DECODE;
            if (ap) {
                *va_arg(*ap, const char **) = v.as.str.ptr;
                *va_arg(*ap, size_t *) = v.as.str.len;
            }
            break;
        default: /* '[' or '{': check_format admits nothing else here */
            if (v.type != (*p == '[' ? INTERP_MSG_ARRAY : INTERP_MSG_MAP))
                return INTERP_ERR_DECODE;
            depth++;
            it[depth] = v.as.seq.items;
            rest[depth] = false;
            break;
        }
    }
    if (!rest[0] && it[0].left > 0)
        return INTERP_ERR_DECODE; /* more values than items */
    return INTERP_OK;
}

int interp_msg_vunpack(const interp_msg *m, const char *fmt, va_list ap)
{
    if (!m || !fmt)
        return INTERP_ERR_INVALID;
    size_t containers;
    va_list args;
    va_copy(args, ap);
    int rc = check_format(fmt, true, &args, &containers);
    va_end(args);
    if (rc)
        return rc;
    rc = unpack_pass(m, fmt, NULL);
    if (rc)
        return rc;
    va_copy(args, ap);
    rc = unpack_pass(m, fmt, &args);
    va_end(args);
    return rc;
}

int interp_msg_unpack(const interp_msg *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = interp_msg_vunpack(m, fmt, ap);
    va_end(ap);
    return rc;
}
