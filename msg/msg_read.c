/* msg_read.c - reading messages from C: the cursor (interp_msg_iter_init, interp_msg_next)
 * and the skipping helpers the builder and the printer share.
 *
 * Messages are valid MessagePack by construction (every path that makes one validates), but
 * this reader does not rely on it: every length is checked against `end` before a byte is
 * read, and anything unexpected ends the run (interp_msg_next returns false). MessagePack is
 * decoded by hand here rather than with msgpuck's mp_decode_*, which trust their input. */
#include <string.h>

#include "msg_impl.h"
#include "msg_read.h"
#include "msg_shstr.h"

/* Big-endian loads of n bytes (the caller has checked that they exist). */
static uint64_t load_be(const char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | (uint8_t)p[i];
    return v;
}

static double load_f64(const char *p)
{
    uint64_t bits = load_be(p, 8);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static float load_f32(const char *p)
{
    uint32_t bits = (uint32_t)load_be(p, 4);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* The head of one value. For str/bin/ext, `ptr`/`len` is the payload; for arrays and maps
 * `children` is the number of values that follow (maps: keys and values). */
typedef struct head {
    interp_msg_type type;
    int8_t ext; /* extension type, for REF/FUNCTION */
    union {
        bool b;
        int64_t i;
        double d;
    } as;
    const char *ptr;
    size_t len;
    uint32_t count;    /* arrays: elements, maps: pairs */
    uint64_t children; /* values nested directly inside (arrays: count, maps: 2 * count) */
} head;

/* Payload of `len` bytes at p: present before end? */
static bool fits(const char *p, const char *end, uint64_t len)
{
    return (uint64_t)(end - p) >= len;
}

/* Decode the head of the value at *pos (and step over a str/bin/ext payload). Returns false,
 * *pos unchanged, on truncation or a byte that starts no MessagePack value. Extension types
 * other than interp_pool's are refused (messages never hold them). */
static bool read_head(const char **pos, const char *end, head *h)
{
    const char *p = *pos;
    if (p >= end)
        return false;
    uint8_t c = (uint8_t)*p++;
    h->children = 0;
    int w = 0; /* width of a length or value field that follows the marker */
    if (c <= 0x7f) {
        h->type = INTERP_MSG_INT;
        h->as.i = c;
    } else if (c >= 0xe0) {
        h->type = INTERP_MSG_INT;
        h->as.i = (int8_t)c;
    } else if ((c & 0xf0) == 0x80 || (c & 0xf0) == 0x90) {
        h->type = (c & 0xf0) == 0x80 ? INTERP_MSG_MAP : INTERP_MSG_ARRAY;
        h->count = c & 0x0f;
        h->children = h->type == INTERP_MSG_MAP ? 2 * (uint64_t)h->count : h->count;
    } else if ((c & 0xe0) == 0xa0) {
        h->type = INTERP_MSG_STR;
        h->len = c & 0x1f;
        if (!fits(p, end, h->len))
            return false;
        h->ptr = p;
        p += h->len;
    } else {
        switch (c) {
        case 0xc0:
            h->type = INTERP_MSG_NIL;
            break;
        case 0xc2:
        case 0xc3:
            h->type = INTERP_MSG_BOOL;
            h->as.b = c == 0xc3;
            break;
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf: {
            w = 1 << (c - 0xcc);
            if (!fits(p, end, w))
                return false;
            uint64_t u = load_be(p, w);
            p += w;
            if (u > INT64_MAX) { /* no Lua integer holds it: the nearest float */
                h->type = INTERP_MSG_FLOAT;
                h->as.d = (double)u;
            } else {
                h->type = INTERP_MSG_INT;
                h->as.i = (int64_t)u;
            }
            break;
        }
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            w = 1 << (c - 0xd0);
            if (!fits(p, end, w))
                return false;
            uint64_t u = load_be(p, w);
            p += w;
            h->type = INTERP_MSG_INT;
            /* sign-extend the w-byte two's complement value */
            if (w == 8)
                h->as.i = (int64_t)u;
            else if (w == 4)
                h->as.i = (int32_t)(uint32_t)u;
            else if (w == 2)
                h->as.i = (int16_t)(uint16_t)u;
            else
                h->as.i = (int8_t)(uint8_t)u;
            break;
        }
        case 0xca:
            if (!fits(p, end, 4))
                return false;
            h->type = INTERP_MSG_FLOAT;
            h->as.d = load_f32(p);
            p += 4;
            break;
        case 0xcb:
            if (!fits(p, end, 8))
                return false;
            h->type = INTERP_MSG_FLOAT;
            h->as.d = load_f64(p);
            p += 8;
            break;
        case 0xd9:
        case 0xda:
        case 0xdb: /* str 8/16/32 */
        case 0xc4:
        case 0xc5:
        case 0xc6: /* bin 8/16/32 */
            w = 1 << (c >= 0xd9 ? c - 0xd9 : c - 0xc4);
            if (!fits(p, end, w))
                return false;
            h->len = load_be(p, w);
            p += w;
            if (!fits(p, end, h->len))
                return false;
            h->type = INTERP_MSG_STR;
            h->ptr = p;
            p += h->len;
            break;
        case 0xdc:
        case 0xdd:
        case 0xde:
        case 0xdf:
            w = c == 0xdc || c == 0xde ? 2 : 4;
            if (!fits(p, end, w))
                return false;
            h->count = (uint32_t)load_be(p, w);
            p += w;
            h->type = c <= 0xdd ? INTERP_MSG_ARRAY : INTERP_MSG_MAP;
            h->children = h->type == INTERP_MSG_MAP ? 2 * (uint64_t)h->count : h->count;
            break;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8: /* fixext 1/2/4/8/16 */
        case 0xc7:
        case 0xc8:
        case 0xc9: /* ext 8/16/32 */
            if (c >= 0xd4) {
                h->len = (size_t)1 << (c - 0xd4);
            } else {
                w = 1 << (c - 0xc7);
                if (!fits(p, end, w))
                    return false;
                h->len = load_be(p, w);
                p += w;
            }
            if (!fits(p, end, 1 + (uint64_t)h->len))
                return false;
            h->ext = (int8_t)(uint8_t)*p++;
            h->ptr = p;
            p += h->len;
            if (h->ext == INTERP_MSG_EXT_REF) {
                /* payload: a big-endian unsigned of 1, 2, 4 or 8 bytes (msg_impl.h) */
                if (h->len != 1 && h->len != 2 && h->len != 4 && h->len != 8)
                    return false;
                uint64_t ref = load_be(h->ptr, (int)h->len);
                if (ref > UINT32_MAX)
                    return false;
                h->type = INTERP_MSG_REF;
                h->count = (uint32_t)ref;
            } else if (h->ext == INTERP_MSG_EXT_FUNCTION) {
                h->type = INTERP_MSG_FUNCTION;
            } else if (h->ext == INTERP_MSG_EXT_FROZEN) {
                if (h->len != sizeof(void *))
                    return false;
                h->type = INTERP_MSG_FROZEN;
            } else if (h->ext == INTERP__MSG_EXT_SHARED && h->len == sizeof(void *)) {
                h->type = INTERP_MSG_STR; /* a shared string reads as the string */
                h->ptr = interp__shstr_bytes(h->ptr, &h->len);
            } else {
                return false;
            }
            break;
        default: /* 0xc1 (never used) */
            return false;
        }
    }
    *pos = p;
    return true;
}

bool interp__msg_skip(const char **pos, const char *end, uint64_t n, uint64_t *tables)
{
    const char *p = *pos;
    uint64_t found = 0;
    /* Every value read lowers the number still owed by one and adds its children: one
     * counter replaces a stack, because only the total of pending values matters. */
    while (n > 0) {
        head h;
        if (!read_head(&p, end, &h))
            return false;
        n--;
        if (h.type == INTERP_MSG_ARRAY || h.type == INTERP_MSG_MAP) {
            found++;
            /* each child needs at least one byte: a count beyond the bytes left is bogus,
             * and checking it here also keeps n far from overflowing */
            if (h.children > (uint64_t)(end - p))
                return false;
            n += h.children;
        }
    }
    *pos = p;
    if (tables)
        *tables += found;
    return true;
}

interp_msg_iter interp_msg_iter_init(const interp_msg *m)
{
    interp_msg_iter it = {m->data, m->data + m->size, m->count};
    return it;
}

/* A value from its head; containers get their items' cursor up to `end`. */
static bool value_of(const head *h, const char *after, const char *end, interp_msg_value *v)
{
    v->type = h->type;
    switch (h->type) {
    case INTERP_MSG_NIL:
        break;
    case INTERP_MSG_BOOL:
        v->as.b = h->as.b;
        break;
    case INTERP_MSG_INT:
        v->as.i = h->as.i;
        break;
    case INTERP_MSG_FLOAT:
        v->as.d = h->as.d;
        break;
    case INTERP_MSG_STR:
        v->as.str.ptr = h->ptr;
        v->as.str.len = h->len;
        break;
    case INTERP_MSG_REF:
        v->as.ref = h->count;
        break;
    case INTERP_MSG_FROZEN:
        memcpy(&v->as.frozen, h->ptr, sizeof v->as.frozen);
        break;
    case INTERP_MSG_FUNCTION:
        break; /* the payload was stepped over by read_head */
    case INTERP_MSG_ARRAY:
    case INTERP_MSG_MAP:
        if (h->children > UINT32_MAX) /* `left` is 32-bit; such a map needs > 8 GiB anyway */
            return false;
        v->as.seq.count = h->count;
        v->as.seq.items.pos = after;
        v->as.seq.items.end = end;
        v->as.seq.items.left = (uint32_t)h->children;
        break;
    }
    return true;
}

bool interp__msg_read_head(const char **pos, const char *end, interp_msg_value *v)
{
    const char *p = *pos;
    head h;
    if (!read_head(&p, end, &h) || !value_of(&h, p, end, v))
        return false;
    *pos = p;
    return true;
}

bool interp_msg_next(interp_msg_iter *it, interp_msg_value *v)
{
    if (it->left == 0 || !it->pos || it->pos >= it->end)
        return false;
    const char *p = it->pos;
    head h;
    if (!read_head(&p, it->end, &h) || !value_of(&h, p, it->end, v))
        return false;
    if (h.type == INTERP_MSG_ARRAY || h.type == INTERP_MSG_MAP) {
        if (!interp__msg_skip(&p, it->end, h.children, NULL))
            return false;
        v->as.seq.items.end = p; /* the elements' cursor ends where the container ends */
    }
    it->pos = p;
    it->left--;
    return true;
}

bool interp__msg_step(const char **pos, const char *end, interp_msg_type *type, uint32_t *ref)
{
    head h;
    if (!read_head(pos, end, &h))
        return false;
    *type = h.type;
    if (h.type == INTERP_MSG_REF)
        *ref = h.count;
    return true;
}
