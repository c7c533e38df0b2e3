/* frozen_impl.h - internal: the layout of frozen values (interp_frozen.h), their accounting
 * space, and the Lua views. Not installed.
 *
 * A frozen value is a tree (or graph) of objects allocated in one arena owned by a root. Every
 * object starts with a header {kind, root}; `interp_frozen *` (the public type) is a pointer to
 * such a header: the root's own table, a nested table of it, or a buffer. Retaining any object
 * retains its root; the root frees the arena with its last reference. A table of one root may
 * hold objects of other roots (values frozen earlier): the root keeps a reference to each.
 *
 * Message handle (ext type INTERP_MSG_EXT_FROZEN): fixext 8, payload the object's address in
 * native byte order; the message holds one reference per handle (msg flag INTERP__MSG_HAS_FROZEN).
 * Only this process's encoder and builder write it; the validator of untrusted bytes refuses it.
 */
#ifndef INTERP_FROZEN_IMPL_H
#define INTERP_FROZEN_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "interp_frozen.h"

struct interp__account; /* budget.h */

enum { FZ_TABLE = 0x7a6c6254, FZ_BUFFER = 0x7a667542 };               /* object kinds */
enum { FZ_NIL, FZ_FALSE, FZ_TRUE, FZ_INT, FZ_FLOAT, FZ_STR, FZ_OBJ }; /* value types */

typedef struct fz_root fz_root;

struct interp_frozen { /* the header of every object */
    uint32_t kind;
    fz_root *root;
};

typedef struct fz_str {
    size_t len;
    char data[];
} fz_str;

typedef struct fz_val {
    uint8_t type;
    union {
        int64_t i;
        double d;
        const fz_str *s;
        const interp_frozen *o;
    } u;
} fz_val;

typedef struct fz_slot {
    fz_val key; /* FZ_NIL: empty */
    fz_val val;
} fz_slot;

/* Array parts: tagged values, or, when every element is a float (or every one an integer),
 * bare doubles (int64s): half the memory, and t[i] reads without a type switch. */
enum { FZ_ARR_VAL, FZ_ARR_FLOAT, FZ_ARR_INT };

typedef struct fz_table {
    interp_frozen h;
    uint32_t asize; /* keys 1..asize are in array (all non-nil); #t == asize */
    uint32_t hcap;  /* power of two, or 0 */
    uint32_t hcount;
    uint8_t akind; /* FZ_ARR_*: what array points at */
    const void *array;
    const fz_slot *hash;
} fz_table;

/* Element i (0-based, < asize) of t's array part. */
static inline fz_val interp__fz_at(const fz_table *t, uint32_t i)
{
    fz_val v;
    if (t->akind == FZ_ARR_FLOAT) {
        v.type = FZ_FLOAT;
        v.u.d = ((const double *)t->array)[i];
    } else if (t->akind == FZ_ARR_INT) {
        v.type = FZ_INT;
        v.u.i = ((const int64_t *)t->array)[i];
    } else {
        v = ((const fz_val *)t->array)[i];
    }
    return v;
}

typedef struct fz_buffer {
    interp_frozen h;
    const char *data;
    size_t len;
} fz_buffer;

/* A key as Lua stores it: an integral float in int64's range is that integer. False for nil
 * and NaN, which no table holds. */
static inline bool interp__fz_key_normalise(fz_val *k)
{
    if (k->type == FZ_NIL)
        return false;
    if (k->type == FZ_FLOAT) {
        double d = k->u.d;
        if (d != d)
            return false;
        if (d >= -0x1p63 && d < 0x1p63 && (double)(int64_t)d == d) {
            k->type = FZ_INT;
            k->u.i = (int64_t)d;
        }
    }
    return true;
}

/* The value of the boolean, integer or float *m (a float stays a float); false, *v untouched,
 * for any other type. */
static inline bool interp__fz_scalar_msg(const interp_msg_value *m, fz_val *v)
{
    if (m->type == INTERP_MSG_BOOL) {
        v->type = m->as.b ? FZ_TRUE : FZ_FALSE;
    } else if (m->type == INTERP_MSG_INT) {
        v->type = FZ_INT;
        v->u.i = m->as.i;
    } else if (m->type == INTERP_MSG_FLOAT) {
        v->type = FZ_FLOAT;
        v->u.d = m->as.d;
    } else {
        return false;
    }
    return true;
}

/* ---- the space of a pool: accounting and the registry of names --------------------------- */
typedef struct interp__frozen_space interp__frozen_space;

/* A new space (one reference) or NULL when out of memory. */
interp__frozen_space *interp__frozen_space_new(void);
interp__frozen_space *interp__frozen_space_retain(interp__frozen_space *sp);
/* Drop a reference; the last frees it (its names are dropped by interp__frozen_space_clear). */
void interp__frozen_space_release(interp__frozen_space *sp);
/* Drop every name (the owner, a pool, is going away). */
void interp__frozen_space_clear(interp__frozen_space *sp);
/* Values made in the space and alive now, and their bytes. NULL-safe (zeros). */
/* Count a value of `bytes` made (> 0) or freed (< 0): the budget hook. */
void interp__frozen_space_charge(interp__frozen_space *sp, long long bytes);
void interp__frozen_space_totals(interp__frozen_space *sp, size_t *values, size_t *bytes);
/* Name registry: set (f NULL removes; `replace` false refuses a name already set with
 * INTERP_ERR_BUSY), get (a new reference in *out, NULL when unset). INTERP_ERR_INVALID for a
 * name of 0 or more than 255 bytes, INTERP_ERR_LIMIT past 4096 names, INTERP_ERR_NOMEM. */
int interp__frozen_space_set(interp__frozen_space *sp, const char *name, size_t len,
                             const interp_frozen *f, bool replace);
int interp__frozen_space_get(interp__frozen_space *sp, const char *name, size_t len,
                             interp_frozen **out);

/* ---- building (frozen_build.c) --------------------------------------------------------- */
/* interp_frozen_from_msg, charging the value to space (may be NULL). */
int interp__frozen_build(const interp_msg *m, int max_depth, interp__frozen_space *space,
                         interp_frozen **out);

/* A buffer holding a copy of data, charged to space (may be NULL). */
int interp__frozen_buffer_copy(const void *data, size_t len, interp__frozen_space *space,
                               interp_frozen **out);

/* ---- core (frozen.c) ----------------------------------------------------------------------- */
/* Seeded hash of a key value (never FZ_NIL), with the root's key. */
uint64_t interp__fz_hash(const fz_root *r, const fz_val *key);
/* The value under key in t into *out: false when absent. key must be normalised (an integral
 * float is an FZ_INT; never NaN). */
bool interp__fz_get(const fz_table *t, const fz_val *key, fz_val *out);
/* The same for a string key (bytes need not live in a frozen value), and the hash slot of a
 * key (NULL when absent or in the array part). */
const fz_val *interp__fz_get_str(const fz_table *t, const char *s, size_t len);
const fz_slot *interp__fz_find(const fz_table *t, const fz_val *key);
/* The entry of t at cursor *pos (0: the first; array part 1..asize, then the hash slots in
 * order): its key and value, and *pos moved past it; false at the end. */
bool interp__fz_next(const fz_table *t, uint64_t *pos, fz_val *key, fz_val *val);
/* Retain (delta +1) or release (-1) every handle in len bytes of messages: complete values, or
 * a builder's partial buffer (heads are complete). */
void interp__frozen_msg_refs(const char *data, size_t len, int delta);
/* References held now to f's root (by any of its objects): a snapshot (mpi/ frees what only
 * its own cache still holds). */
size_t interp__frozen_refs(const interp_frozen *f);
/* The root's seed and arena are private to frozen.c; these give builders what they need. */
fz_root *interp__fz_root_new(uint32_t kind, interp__frozen_space *space);
void *interp__fz_alloc(fz_root *r, size_t size);
int interp__fz_root_dep(fz_root *r, const interp_frozen *dep); /* keep a reference */
void interp__fz_root_limit(fz_root *r, size_t limit); /* allocations fail past it (0: none) */
void interp__fz_root_done(fz_root *r, const interp_frozen *top); /* count its bytes */
void interp__fz_root_free(fz_root *r); /* a root never handed out (build failed) */
void interp__fz_table_hash_init(fz_root *r, fz_slot *slots, uint32_t cap, const fz_val *key,
                                const fz_val *val, bool *dup);

/* frozen_lua_build.c: freeze the Lua table at idx directly (no message). Nesting deeper than
 * max_depth (clamped to 200; 0: 200) is INTERP_ERR_LIMIT; more than `limit` bytes (0: none)
 * INTERP_ERR_NOMEM; a function, thread or foreign userdata INTERP_ERR_ENCODE. Never raises;
 * why (>= 128 bytes) gets the reason. */
int interp__frozen_from_lua(lua_State *L, int idx, int max_depth, size_t limit,
                            interp__frozen_space *space, interp_frozen **out, char *why);

/* ---- Lua (frozen_lua.c, frozen_buf.c) ----------------------------------------------------- */
/* The value of the Lua boolean or number at idx, whose lua_type is t (a float stays a float);
 * false, *v untouched, for any other type. */
static inline bool interp__fz_scalar_lua(lua_State *L, int idx, int t, fz_val *v)
{
    if (t == LUA_TBOOLEAN) {
        v->type = lua_toboolean(L, idx) ? FZ_TRUE : FZ_FALSE;
    } else if (t == LUA_TNUMBER && lua_isinteger(L, idx)) {
        v->type = FZ_INT;
        v->u.i = (int64_t)lua_tointeger(L, idx);
    } else if (t == LUA_TNUMBER) {
        v->type = FZ_FLOAT;
        v->u.d = (double)lua_tonumber(L, idx);
    } else {
        return false;
    }
    return true;
}
/* Push v, which is no table or buffer (nil for anything else): interp__fz_scalar_lua's
 * inverse, strings included (copied into the state). */
static inline void interp__fz_push_scalar(lua_State *L, const fz_val *v)
{
    switch (v->type) {
    case FZ_FALSE:
    case FZ_TRUE:
        lua_pushboolean(L, v->type == FZ_TRUE);
        break;
    case FZ_INT:
        lua_pushinteger(L, (lua_Integer)v->u.i);
        break;
    case FZ_FLOAT:
        lua_pushnumber(L, (lua_Number)v->u.d);
        break;
    case FZ_STR:
        lua_pushlstring(L, v->u.s->data, v->u.s->len);
        break;
    default:
        lua_pushnil(L);
        break;
    }
}
/* The frozen object a full userdata at idx is a live view of, or NULL (any other value, a
 * view already collected, a forged or foreign block). Reads no metatable. */
const interp_frozen *interp__frozen_toobj(lua_State *L, int idx);
/* Push the view of o (cached per state: the same object gives the same userdata while it
 * lives); raises on memory error. */
void interp__frozen_push(lua_State *L, const interp_frozen *o);
/* Add freeze, thaw, isfrozen, buffer, next (and shared, mapfile when allowed) to the table at
 * the top of the stack. space: where values frozen here are charged and names are found (may
 * be NULL: no registry; interp.shared raises). mem_in_use/mem_limit: the freezing state's
 * memory (a freeze must fit under its limit; NULL/0: none). allow_files: interp.mapfile. */
/* frozen.c: charge f's bytes to acct (the state that froze it, or the first to hold it once
 * nobody else pays: budget.h) until its last reference goes: its memory limit and the pool's
 * budget count it. So are the values f holds by reference that nobody pays for (a view of a
 * shared value frozen inside it). INTERP_OK (also for a NULL acct, or a value already paid for, by
 * another state first when two race), or INTERP_ERR_NOMEM with the reason in why. Any thread. */
int interp__frozen_charge(const interp_frozen *f, struct interp__account *acct, char *why,
                          size_t whylen);
/* frozen.c: count a name of a registry that holds f (delta +1) or let go of it (-1). */
void interp__frozen_publish(const interp_frozen *f, int delta);
/* Who pays for f's root now: FZ_PAID (an account), FZ_PUBLISHED (nobody, but a registry names
 * it: the host's current version of a shared value), FZ_UNPAID (nobody: a host-made value,
 * or a shared version the host has replaced or removed). A snapshot. */
enum { FZ_PAID = 1, FZ_PUBLISHED, FZ_UNPAID };
int interp__frozen_standing(const interp_frozen *f);
/* frozen_lua_thaw.c: push o (a table) as ordinary Lua values, each of its tables and long
 * strings made once (interp.thaw); raises on a memory error or nesting past 1000 levels. */
void interp__frozen_lua_thaw(lua_State *L, const interp_frozen *o);
typedef struct interp__frozen_lua_cfg {
    struct interp__account *acct; /* pays for what this state freezes (budget.h); NULL: none */
    interp__frozen_space *space;
    const atomic_size_t *mem_in_use;
    size_t mem_limit;
    int max_depth; /* nesting a freeze accepts (0: 200, at most 200) */
    bool allow_files;
    /* Called every few thousand steps of work a buffer's find/match/gmatch does inside C (the
     * interrupt poll of interp/, which may raise); NULL: none. */
    void (*poll)(lua_State *L);
} interp__frozen_lua_cfg;
void interp__frozen_lua_register(lua_State *L, const interp__frozen_lua_cfg *cfg);
/* frozen_lua.c: interp__frozen_lua_register in two halves, for a module whose functions are
 * made later (interp/module.c): record cfg in L's state (views find it there), then the
 * functions into the table at the top, bound to what was recorded (raises if nothing was). */
void interp__frozen_lua_set_cfg(lua_State *L, const interp__frozen_lua_cfg *cfg);
void interp__frozen_lua_add_fns(lua_State *L);
/* frozen_lua.c: the configuration the last interp__frozen_lua_register gave L's state, found
 * through the per-state table at index st; NULL when none was given (views only). */
const interp__frozen_lua_cfg *interp__frozen_cfg(lua_State *L, int st);
/* frozen_buf.c: the buffer metatable's fields (methods) into the table at the top; st: the
 * index of the per-state table (an upvalue of the pattern methods). */
void interp__frozen_buf_methods(lua_State *L, int st);
/* frozen_buf.c: __len and __newindex into the buffer metatable at the top. */
void interp__frozen_buf_meta(lua_State *L);
/* The view block (both kinds): a tag proves the block is one of ours. */
typedef struct fz_view {
    uint64_t tag; /* interp__fz_tag(block, kind) while live, 0 after __gc */
    const interp_frozen *obj;
} fz_view;
/* Tags: the process's secret (random, set once by interp__fz_tag_init before the first view)
 * mixed with the block's address and the object's kind, so a tag copied to another block is
 * wrong there, and one compare checks both that the block is a live view and of which kind. */
extern _Atomic uint64_t interp__fz_secret;
void interp__fz_tag_init(void);
static inline uint64_t interp__fz_tag(const void *block, uint32_t kind)
{
    return atomic_load_explicit(&interp__fz_secret, memory_order_relaxed) ^
           ((uint64_t)(uintptr_t)block * 0x9E3779B97F4A7C15u) ^ kind;
}
/* The live view block of `kind` at idx, or NULL. Two API calls: a userdata's block is read
 * only once lua_rawlen says it is a full userdata of our size (0 for light userdata). */
static inline fz_view *interp__fz_view_of(lua_State *L, int idx, uint32_t kind)
{
    fz_view *v = (fz_view *)lua_touserdata(L, idx);
    if (v && lua_rawlen(L, idx) == sizeof *v && v->tag == interp__fz_tag(v, kind))
        return v;
    return NULL;
}
/* The live view block (either kind) at idx, or NULL. */
static inline fz_view *interp__fz_view(lua_State *L, int idx)
{
    fz_view *v = (fz_view *)lua_touserdata(L, idx);
    if (v && lua_rawlen(L, idx) == sizeof *v &&
        (v->tag == interp__fz_tag(v, FZ_TABLE) || v->tag == interp__fz_tag(v, FZ_BUFFER)))
        return v;
    return NULL;
}
/* The object of the view at idx if it is of `kind`, else raises "frozen <what> expected". */
const interp_frozen *interp__frozen_check(lua_State *L, int idx, uint32_t kind);

#endif
