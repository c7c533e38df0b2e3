/* msg_read.c - reading messages from C: the cursor (interp_msg_iter_init, interp_msg_next)
 * and the skipping helpers the builder and the printer share, all walking with the step of
 * msg_step.h (the library's one MessagePack tag switch, which the validator walks with too).
 *
 * Messages are valid MessagePack by construction (every path that makes one validates), but
 * this reader does not rely on it: every length is checked against `end` before a byte is
 * read, and anything unexpected ends the run (interp_msg_next returns false). MessagePack is
 * decoded by hand here rather than with msgpuck's mp_decode_*, which trust their input. */
#include <string.h>

#include "msg_impl.h"
#include "msg_read.h"
#include "msg_shstr.h"
#include "msg_step.h"

typedef interp__msg_head head;

/* The reader's view of a head: REF indexes within 32 bits, shared strings resolved to their
 * bytes. Returns false, *pos unchanged, on any fault. */
static bool read_head(const char **pos, const char *end, head *h)
{
    const char *p = *pos;
    if (interp__msg_head_step(&p, end, h) != INTERP__MSG_FAULT_NONE)
        return false;
    if (h->ext) {
        if (h->type == INTERP_MSG_REF) {
            if (h->as.ref > UINT32_MAX)
                return false;
            h->count = (uint32_t)h->as.ref;
        } else if (h->ext == INTERP__MSG_EXT_SHARED) {
            h->ptr = interp__shstr_bytes(h->ptr, &h->len);
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
