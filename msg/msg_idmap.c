/* msg_idmap.c - the encoder's identity map (pointer -> value); see msg_lua_impl.h. */
#include <stdlib.h>

#include "interp_status.h"
#include "msg_lua_impl.h"

enum { FIRST_HASH = 64 };

static int rehash(interp__idmap *m, const interp__idmap_slot *from, size_t n, size_t cap)
{
    interp__idmap_slot *t = calloc(cap, sizeof *t);
    if (!t)
        return INTERP_ERR_NOMEM;
    for (size_t k = 0; k < n; k++) {
        if (!from[k].key)
            continue;
        size_t i = interp__ptr_slot(from[k].key, cap);
        while (t[i].key)
            i = (i + 1) & (cap - 1);
        t[i] = from[k];
    }
    free(m->slots);
    m->slots = t;
    m->cap = cap;
    return INTERP_OK;
}

int interp__idmap_insert(interp__idmap *m, interp__idmap_slot *s, const void *key, uint64_t val)
{
    s->key = key;
    s->val = val;
    m->n++;
    if (!m->slots) /* list full: move to a hash table */
        return m->n < INTERP__IDMAP_LIST ? INTERP_OK : rehash(m, m->list, m->n, FIRST_HASH);
    if (m->n * 4 <= m->cap * 3) /* load <= 3/4: a smaller table, fewer cache misses */
        return INTERP_OK;
    return rehash(m, m->slots, m->cap, m->cap * 2);
}

void interp__idmap_free(interp__idmap *m)
{
    free(m->slots);
    interp__idmap_init(m);
}
