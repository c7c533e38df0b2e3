/* msg_wire.c - messages as records for another process of the same program (the MPI pool's
 * ranks, mpi/), and the messages made back from them there without a second look.
 *
 * A record: u32 size (UINT32_MAX: no message), u32 top-level count, u32 content flags, then
 * the size bytes of MessagePack (a shared string's plain form), integers little-endian. The
 * loops below are the per-item cost of a map item sent to a rank, four times over (items out
 * and in, results out and in): they touch the header directly and copy small bodies inline. */
#include <string.h>

#include "frozen_impl.h"
#include "msg_impl.h"
#include "msg_inner.h"
#include "msg_shstr.h"

enum { RECORD_HEAD = 12 };

static inline void put_le32(char *p, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    memcpy(p, c, 4);
}

static inline uint32_t get_le32(const char *p)
{
    unsigned char c[4];
    memcpy(c, p, 4);
    return (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
}

/* n bytes from s to d: the few bytes of a small message without a call */
static inline void copy_small(char *d, const char *s, size_t n)
{
    if (n <= 16)
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    else
        memcpy(d, s, n);
}

static inline const interp_msg *nth(const interp_msg *const *ms, size_t stride, size_t i)
{
    return *(const interp_msg *const *)(const void *)((const char *)ms + i * stride);
}

size_t interp__msg_wire_bytes(const interp_msg *const *ms, size_t stride, size_t n, bool *frozen)
{
    size_t t = (size_t)RECORD_HEAD * n;
    bool f = false;
    for (size_t i = 0; i < n; i++) {
        const interp_msg *m = nth(ms, stride, i);
        /* the messages lie anywhere (a host's own, one allocation each): ask for a few ahead,
         * so that their headers come in from memory together rather than one by one */
        if (i + 8 < n)
            __builtin_prefetch(nth(ms, stride, i + 8));
        if (!m)
            continue;
        t += m->flags & INTERP__MSG_HAS_SHARED ? interp__shstr_tail_of(m)->plain_size : m->size;
        f |= (m->flags & INTERP__MSG_HAS_FROZEN) != 0;
    }
    *frozen = f;
    return t;
}

bool interp__msg_wire_put(char *dst, const interp_msg *const *ms, size_t stride, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const interp_msg *m = nth(ms, stride, i);
        if (!m) {
            put_le32(dst, UINT32_MAX);
            put_le32(dst + 4, 0);
            put_le32(dst + 8, 0);
            dst += RECORD_HEAD;
            continue;
        }
        const char *data = m->data;
        size_t size = m->size;
        if (m->flags & INTERP__MSG_HAS_SHARED) { /* the plain form, built once */
            data = interp_msg_data(m);
            size = interp_msg_size(m);
            if (!data)
                return false;
        }
        put_le32(dst, (uint32_t)size);
        put_le32(dst + 4, m->count);
        put_le32(dst + 8, m->flags & (INTERP__MSG_HAS_REFS | INTERP__MSG_HAS_FUNCTIONS));
        copy_small(dst + RECORD_HEAD, data, size);
        dst += RECORD_HEAD + size;
    }
    return true;
}

/* One message of `size` bytes from a record's body. */
static interp_msg *make(interp__slab_cache *cache, interp__slab **slab, const char *data,
                        uint32_t size, uint32_t count, uint32_t flags)
{
    flags &= INTERP__MSG_HAS_REFS | INTERP__MSG_HAS_FUNCTIONS; /* handles never travel */
    if (size <= INTERP__MSG_WIRE_SLAB) {
        interp_msg *m = interp__slab_reserve(cache, slab, INTERP__SLAB_MAX, size);
        if (m) {
            copy_small(m->data, data, size);
            interp__slab_commit(*slab, m, size, count, flags);
            return m;
        }
    }
    interp_msg *m = interp__msg_alloc(size, count, flags);
    if (m)
        memcpy(m->data, data, size);
    return m;
}

int interp__msg_wire_take(interp__slab_cache *cache, interp__slab **slab, const char **src,
                          const char *end, size_t n, interp_msg **out, size_t stride)
{
    const char *p = *src;
    int rc = INTERP_OK;
    size_t i = 0;
    for (; i < n; i++) {
        interp_msg **slot = (interp_msg **)(void *)((char *)out + i * stride);
        *slot = NULL;
        if ((size_t)(end - p) < RECORD_HEAD) {
            rc = INTERP_ERR_DECODE;
            break;
        }
        uint32_t size = get_le32(p);
        p += RECORD_HEAD;
        if (size == UINT32_MAX)
            continue;
        if ((size_t)(end - p) < size) {
            rc = INTERP_ERR_DECODE;
            break;
        }
        *slot = make(cache, slab, p, size, get_le32(p - 8), get_le32(p - 4));
        if (!*slot) {
            rc = INTERP_ERR_NOMEM;
            break;
        }
        p += size;
    }
    for (i++; rc != INTERP_OK && i < n; i++) /* every slot is set, made or NULL */
        *(interp_msg **)(void *)((char *)out + i * stride) = NULL;
    *src = p;
    return rc;
}

bool interp__msg_holds_frozen(const interp_msg *m)
{
    return m && (m->flags & INTERP__MSG_HAS_FROZEN);
}

char *interp__msg_bytes(interp_msg *m) { return m->data; }

void interp__msg_frozen_mark(interp_msg *m, bool holds)
{
    if (holds) {
        m->flags |= INTERP__MSG_HAS_FROZEN;
    } else if (m->flags & INTERP__MSG_HAS_FROZEN) {
        interp__frozen_msg_refs(m->data, m->size, -1);
        m->flags &= ~(uint32_t)INTERP__MSG_HAS_FROZEN;
    }
}
