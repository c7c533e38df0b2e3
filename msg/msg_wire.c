/* msg_wire.c - a message's parts for a copy in another process of the same program (the MPI
 * pool's ranks, mpi/), and the message made back from them there without a second look. */
#include <string.h>

#include "frozen_impl.h"
#include "msg_impl.h"
#include "msg_inner.h"

bool interp__msg_wire(const interp_msg *m, const char **data, size_t *size, uint32_t *count,
                      uint32_t *flags)
{
    if (m->flags & INTERP__MSG_HAS_SHARED) { /* a shared string's plain form, built once */
        *data = interp_msg_data(m);
        *size = interp_msg_size(m);
    } else {
        *data = m->data;
        *size = m->size;
    }
    *count = m->count;
    *flags = m->flags & INTERP__MSG_CONTENT;
    return *data != NULL;
}

interp_msg *interp__msg_from_wire(interp__slab_cache *cache, interp__slab **slab, const char *data,
                                  size_t size, uint32_t count, uint32_t flags)
{
    flags &= INTERP__MSG_HAS_REFS | INTERP__MSG_HAS_FUNCTIONS; /* handles never travel */
    if (slab && size <= INTERP__MSG_WIRE_SLAB) {
        interp_msg *m = interp__slab_reserve(cache, slab, INTERP__SLAB_MAX, size);
        if (m) {
            if (size <= 16) /* the many small results of a map: no call */
                for (size_t i = 0; i < size; i++)
                    m->data[i] = data[i];
            else
                memcpy(m->data, data, size);
            interp__slab_commit(*slab, m, size, count, flags);
            return m;
        }
    }
    interp_msg *m = interp__msg_alloc(size, count, flags);
    if (m && size)
        memcpy(m->data, data, size);
    return m;
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
