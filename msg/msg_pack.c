/* msg_pack.c - format-driven messages for C hosts (interp_msg_pack, like Py_BuildValue;
 * interp_msg_unpack, like PyArg_ParseTuple), on top of the public builder and reader: nothing
 * is encoded or decoded here. Each call makes passes over its own copies of the va_list so
 * that every check comes before anything is built or written: check_format looks at the
 * format (and, for unpack, the pointers); pack then counts (the builder needs each array's
 * and map's element count up front, and an `m` adds as many as it holds values) and builds;
 * unpack matches the message without writing, then writes, which can no longer fail. */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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

/* Consume the destination pointers of unpack letter c, each read as the type it is passed
 * as; false if one is NULL. */
static bool pointers_given(va_list *ap, char c)
{
    switch (c) {
    case 'b':
        return va_arg(*ap, bool *) != NULL;
    case 'i':
        return va_arg(*ap, int *) != NULL;
    case 'l':
        return va_arg(*ap, long *) != NULL;
    case 'L':
        return va_arg(*ap, long long *) != NULL;
    case 'I':
        return va_arg(*ap, int64_t *) != NULL;
    case 'z':
        return va_arg(*ap, size_t *) != NULL;
    case 'd':
        return va_arg(*ap, double *) != NULL;
    default: { /* 's', 'S': both are consumed */
        bool ptr = va_arg(*ap, const char **) != NULL;
        return va_arg(*ap, size_t *) != NULL && ptr;
    }
    }
}

/* Check the format alone: every letter known to this direction, brackets balanced and at most
 * MAX_DEPTH deep, `*` only last in its level, an even number of items in every map without
 * `m` (with `m` the count is known only from the arguments: the counting pass checks it).
 * *containers is set to the number of arrays and maps. For unpack, the destination pointers
 * are consumed from ap and checked too: a NULL one is INTERP_ERR_INVALID. */
static int check_format(const char *fmt, bool unpack, va_list *ap, size_t *containers)
{
    /* level 0 is the message; `dynamic`: holds an `m`, so the parity is not known yet */
    struct level {
        char open;
        bool dynamic;
        uint64_t items;
    } lvl[MAX_DEPTH + 1];
    int depth = 0;
    lvl[0] = (struct level){0, false, 0};
    *containers = 0;
    for (const char *p = item(fmt); *p; p = item(p + 1)) {
        bool pointers = false; /* the item takes destination pointers (unpack) */
        switch (*p) {
        case 'n':
        case 'b':
        case 'i':
        case 'l':
        case 'L':
        case 'I':
        case 'z':
        case 'd':
        case 's':
        case 'S':
            lvl[depth].items++;
            pointers = *p != 'n';
            break;
        case 'm':
            if (unpack)
                return INTERP_ERR_INVALID;
            lvl[depth].dynamic = true;
            break;
        case '?':
            if (!unpack)
                return INTERP_ERR_INVALID;
            lvl[depth].items++;
            break;
        case '*': /* last in its level: followed by ']', '}' or the end (strchr finds '\0') */
            if (!unpack || !strchr("]}", *item(p + 1)))
                return INTERP_ERR_INVALID;
            break;
        case '[':
        case '{':
            if (depth == MAX_DEPTH)
                return INTERP_ERR_LIMIT;
            lvl[depth].items++;
            lvl[++depth] = (struct level){*p, false, 0};
            (*containers)++;
            break;
        case ']':
        case '}':
            if (depth == 0 || *p != (lvl[depth].open == '[' ? ']' : '}'))
                return INTERP_ERR_INVALID;
            if (*p == '}' && !lvl[depth].dynamic && lvl[depth].items % 2)
                return INTERP_ERR_INVALID;
            depth--;
            break;
        default:
            return INTERP_ERR_INVALID;
        }
        if (unpack && pointers && !pointers_given(ap, *p))
            return INTERP_ERR_INVALID;
    }
    return depth > 0 ? INTERP_ERR_INVALID : INTERP_OK;
}

/* ---- pack ------------------------------------------------------------------------------ */

/* Read the argument of pack letter i, l, L, I or z as the type it is passed as into *v;
 * INTERP_ERR_LIMIT for a size_t above INT64_MAX (messages hold signed 64-bit integers). */
static int int_arg(va_list *ap, char c, int64_t *v)
{
    size_t z;
    switch (c) {
    case 'i':
        *v = va_arg(*ap, int);
        return INTERP_OK;
    case 'l':
        *v = va_arg(*ap, long);
        return INTERP_OK;
    case 'L':
        *v = va_arg(*ap, long long);
        return INTERP_OK;
    case 'I':
        *v = va_arg(*ap, int64_t);
        return INTERP_OK;
    default:
        z = va_arg(*ap, size_t);
        *v = (int64_t)z;
        return (uint64_t)z > (uint64_t)INT64_MAX ? INTERP_ERR_LIMIT : INTERP_OK;
    }
}

/* One pass over a checked format. Without a builder (counting pass): read the arguments,
 * refuse bad ones, and store each container's count (pairs for maps) in counts[], in the
 * order the containers open. With a builder (building pass): append, taking the counts. */
static int pack_pass(const char *fmt, va_list *ap, interp_msg_builder *b, uint32_t *counts)
{
    struct {
        uint64_t values;
        size_t slot;
    } lvl[MAX_DEPTH + 1] = {{0}};
    int depth = 0;
    size_t slots = 0;
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
        case 'i':
        case 'l':
        case 'L':
        case 'I':
        case 'z': {
            int64_t v;
            if ((rc = int_arg(ap, *p, &v)))
                return rc;
            if (b)
                rc = interp_msg_add_int(b, v);
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
        case '[':
        case '{':
            if (b)
                rc = *p == '[' ? interp_msg_add_array(b, counts[slots])
                               : interp_msg_add_map(b, counts[slots]);
            depth++;
            lvl[depth].values = 0;
            lvl[depth].slot = slots++;
            added = 0; /* the container counts in its parent once closed */
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
        counts = calloc(containers, sizeof *counts);
        if (!counts)
            return INTERP_ERR_NOMEM;
    }
    va_list args;
    va_copy(args, ap);
    rc = pack_pass(fmt, &args, NULL, counts);
    va_end(args);
    interp_msg_builder *b = rc ? NULL : interp_msg_builder_new();
    if (!rc && !b)
        rc = INTERP_ERR_NOMEM;
    if (b) {
        va_copy(args, ap);
        rc = pack_pass(fmt, &args, b, counts);
        va_end(args);
        if (rc)
            interp_msg_builder_free(b);
        else
            rc = interp_msg_builder_finish(b, out); /* frees b in every case */
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

/* The integer in v if it fits the C type of unpack letter c: INTERP_ERR_DECODE if v is not
 * an integer, INTERP_ERR_LIMIT if it does not fit. */
static int integer(const interp_msg_value *v, char c, int64_t *out)
{
    if (v->type != INTERP_MSG_INT)
        return INTERP_ERR_DECODE;
    int64_t i = v->as.i;
    bool fits = c == 'i'   ? i >= INT_MIN && i <= INT_MAX
                : c == 'l' ? i >= LONG_MIN && i <= LONG_MAX
                : c == 'L' ? i >= LLONG_MIN && i <= LLONG_MAX
                : c == 'z' ? i >= 0 && i <= SIZE_LIMIT
                           : true; /* 'I' */
    if (!fits)
        return INTERP_ERR_LIMIT;
    *out = i;
    return INTERP_OK;
}

/* Store i (checked to fit) through the next pointer, of the type of unpack letter c. */
static void store_int(va_list *ap, char c, int64_t i)
{
    switch (c) {
    case 'i':
        *va_arg(*ap, int *) = (int)i;
        break;
    case 'l':
        *va_arg(*ap, long *) = (long)i;
        break;
    case 'L':
        *va_arg(*ap, long long *) = (long long)i;
        break;
    case 'z':
        *va_arg(*ap, size_t *) = (size_t)i;
        break;
    default:
        *va_arg(*ap, int64_t *) = i;
        break;
    }
}

/* One pass over a checked format. Without `ap` (matching pass): check that m has the shape
 * and types the format asks for, writing nothing. With `ap` (writing pass, after a matching
 * pass succeeded): store every value. */
static int unpack_pass(const interp_msg *m, const char *fmt, va_list *ap)
{
    interp_msg_iter it[MAX_DEPTH + 1]; /* the run being read at each level */
    bool rest[MAX_DEPTH + 1] = {0};    /* `*` seen: the level's remaining values are skipped */
    int depth = 0;
    it[0] = interp_msg_iter_init(m);
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
        case '?':
            if (*p == 'n' && v.type != INTERP_MSG_NIL)
                return INTERP_ERR_DECODE;
            break;
        case 'b':
            if (v.type != INTERP_MSG_BOOL)
                return INTERP_ERR_DECODE;
            if (ap)
                *va_arg(*ap, bool *) = v.as.b;
            break;
        case 'i':
        case 'l':
        case 'L':
        case 'I':
        case 'z':
            if ((rc = integer(&v, *p, &i)))
                return rc;
            if (ap)
                store_int(ap, *p, i);
            break;
        case 'd':
            if (v.type != INTERP_MSG_FLOAT && v.type != INTERP_MSG_INT)
                return INTERP_ERR_DECODE;
            if (ap)
                *va_arg(*ap, double *) = v.type == INTERP_MSG_INT ? (double)v.as.i : v.as.d;
            break;
        case 's':
        case 'S':
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
    if (!rc)
        rc = unpack_pass(m, fmt, NULL);
    if (!rc) {
        va_copy(args, ap);
        rc = unpack_pass(m, fmt, &args);
        va_end(args);
    }
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
