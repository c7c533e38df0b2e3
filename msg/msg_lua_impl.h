/* msg_lua_impl.h - internal to the Lua codec (msg_encode.c, msg_decode.c): the path of a
 * value inside a message, for error texts such as
 *   [2].handlers.on_load: upvalue 'sock': cannot copy a userdata
 * Segments: `[i]` (i-th top-level value, 1-based, or array element), `.name` (identifier
 * string key), `["k k"]` (other string key, escaped, shortened), `[3]`, `[2.5]`, `[true]`
 * (other keys), `: key` (inside a table key), `: upvalue 'name'` (inside a function's upvalue).
 * Building a path never touches the Lua heap: keys are read from the stack without conversion.
 */
#ifndef INTERP_MSG_LUA_IMPL_H
#define INTERP_MSG_LUA_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "ptr_hash.h"

enum { INTERP__PATH_CAP = 1024, INTERP__PATH_HEAD = 96 };

/* A path being built. When it outgrows its buffer the middle is dropped (the head, which
 * names the top-level value, and the tail, which names the culprit, are kept). */
typedef struct interp__path {
    char buf[INTERP__PATH_CAP];
    size_t len;
    bool cut; /* something was dropped after the first INTERP__PATH_HEAD bytes */
} interp__path;

void interp__path_init(interp__path *p);
/* Append `[i]`. */
void interp__path_index(interp__path *p, long long i);
/* Append the segment for the table key at stack index idx (see above). */
void interp__path_key(interp__path *p, lua_State *L, int idx);
/* Append `: key`. */
void interp__path_in_key(interp__path *p);
/* Append `: upvalue 'name'` (name of `len` bytes, need not be NUL-terminated). */
void interp__path_upvalue(interp__path *p, const char *name, size_t len);
/* Write "path: reason" into out (outlen bytes, NUL-terminated, shortened in the middle of the
 * path if needed). An empty path gives the reason alone. */
void interp__path_finish(const interp__path *p, const char *reason, char *out, size_t outlen);

/* ---- identity map of the encoder (msg_idmap.c): pointer -> 64-bit value ------------------
 * The first few entries live in a short inline list (a linear scan beats hashing and needs no
 * setup, which keeps one-table messages cheap); beyond it, open addressing with linear probing
 * at load <= 3/4. Keys are the addresses of live Lua objects (tables, closures, upvalue
 * cells), never NULL. */
enum { INTERP__IDMAP_LIST = 8 };

typedef struct interp__idmap_slot {
    const void *key; /* NULL: empty */
    uint64_t val;
} interp__idmap_slot;

typedef struct interp__idmap {
    interp__idmap_slot *slots; /* the hash table; NULL while the entries fit in `list` */
    size_t n, cap;
    interp__idmap_slot list[INTERP__IDMAP_LIST];
} interp__idmap;

static inline void interp__idmap_init(interp__idmap *m)
{
    m->slots = NULL;
    m->n = m->cap = 0;
}

/* The entry for key, or the empty entry where it would go (its key is NULL). */
static inline interp__idmap_slot *interp__idmap_lookup(interp__idmap *m, const void *key)
{
    if (!m->slots) {
        for (size_t k = 0; k < m->n; k++)
            if (m->list[k].key == key)
                return &m->list[k];
        m->list[m->n].key = NULL; /* n < INTERP__IDMAP_LIST while in list mode */
        return &m->list[m->n];
    }
    size_t i = interp__ptr_slot(key, m->cap);
    while (m->slots[i].key && m->slots[i].key != key)
        i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

/* Fill the empty entry s (from lookup, with no call in between) with key -> val. INTERP_OK,
 * or INTERP_ERR_NOMEM: growing failed, and the map may then only be freed. */
int interp__idmap_insert(interp__idmap *m, interp__idmap_slot *s, const void *key, uint64_t val);
void interp__idmap_free(interp__idmap *m);

#endif
