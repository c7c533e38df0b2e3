/* frozen_lua_build.c - a frozen table straight from a Lua table (interp.freeze), without an
 * intermediate message.
 *
 * Recursive descent over the Lua value, bounded by max_depth (and lua_checkstack at each
 * level); reads are raw (lua_rawgeti, lua_next) and allocate nothing in the Lua heap, so the
 * walk never raises and a failure frees the half-built root. An identity map (the Lua object's
 * address -> the frozen object) keeps shared subtables and cycles shared, and stores a string
 * reached many times once. Array part: keys 1..n up to the first nil (n <= the border
 * lua_rawlen gives). A big array whose Lua array part has room past it is read by index, and
 * the lua_next walk over the other keys starts after it (walk_after_array); others are filled
 * in the one lua_next walk while the keys come as 1, 2, 3... (a second walk would double the
 * cost), else by lua_rawgeti before the walk over the other keys. Bare doubles or int64s when
 * all elements are floats or all integers.
 * Other keys go to the hash part. Views inside are kept by reference; functions, other
 * userdata and threads are refused. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frozen_impl.h"
#include "msg_lua_impl.h"

typedef struct lbld {
    lua_State *L;
    fz_root *r;
    interp__idmap ids; /* Lua table or string -> frozen table or string */
    int max_depth;
    char *why; /* the reason of a failure, at least 128 bytes */
} lbld;

static int lvalue(lbld *b, int idx, fz_val *out, int depth);

static int fail(lbld *b, int rc, const char *what)
{
    snprintf(b->why, 128, "%s", what);
    return rc;
}

static int nomem(lbld *b) { return fail(b, INTERP_ERR_NOMEM, "not enough memory"); }

/* Remember obj (a Lua object's address) -> p. */
static int remember(lbld *b, interp__idmap_slot *s, const void *obj, const void *p)
{
    return interp__idmap_insert(&b->ids, s, obj, (uint64_t)(uintptr_t)p) ? nomem(b) : INTERP_OK;
}

typedef struct pairs {
    fz_slot *v;
    size_t n, cap;
} pairs;

static int add_pair(lbld *b, pairs *ps, const fz_val *k, const fz_val *v)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        fz_slot *n = realloc(ps->v, cap * sizeof *n);
        if (!n)
            return nomem(b);
        ps->v = n;
        ps->cap = cap;
    }
    ps->v[ps->n].key = *k;
    ps->v[ps->n].val = *v;
    ps->n++;
    return INTERP_OK;
}

/* The array part being filled: bare doubles or int64s while every element is a float (an
 * integer), chosen by the first element; the first element of another type turns it into
 * tagged values (the bare array's arena space is then lost). */
typedef struct arr_fill {
    void *arr;
    int kind;
    uint32_t border; /* room for this many */
} arr_fill;

static int arr_start(lbld *b, fz_table *t, arr_fill *a, lua_Unsigned border, int first_type,
                     bool first_int)
{
    a->border = border > UINT32_MAX ? UINT32_MAX : (uint32_t)border;
    a->kind = FZ_ARR_VAL;
    if (first_type == LUA_TNUMBER)
        a->kind = first_int ? FZ_ARR_INT : FZ_ARR_FLOAT;
    a->arr =
        interp__fz_alloc(b->r, (size_t)a->border * (a->kind == FZ_ARR_VAL ? sizeof(fz_val) : 8));
    if (!a->arr)
        return nomem(b);
    t->akind = (uint8_t)a->kind;
    t->array = a->arr;
    t->asize = 0;
    return INTERP_OK;
}

/* Append the value at the top of the stack (of type ty) as element t->asize + 1. */
static int arr_put(lbld *b, fz_table *t, arr_fill *a, int ty, int depth)
{
    lua_State *L = b->L;
    uint32_t n = t->asize;
    if (a->kind == FZ_ARR_FLOAT && ty == LUA_TNUMBER && !lua_isinteger(L, -1)) {
        ((double *)a->arr)[n] = (double)lua_tonumber(L, -1);
        t->asize = n + 1;
        return INTERP_OK;
    }
    if (a->kind == FZ_ARR_INT && ty == LUA_TNUMBER && lua_isinteger(L, -1)) {
        ((int64_t *)a->arr)[n] = (int64_t)lua_tointeger(L, -1);
        t->asize = n + 1;
        return INTERP_OK;
    }
    if (a->kind != FZ_ARR_VAL) { /* mixed after all: tagged values from here on */
        fz_val *vals = interp__fz_alloc(b->r, (size_t)a->border * sizeof *vals);
        if (!vals)
            return nomem(b);
        for (uint32_t k = 0; k < n; k++)
            vals[k] = interp__fz_at(t, k);
        a->kind = FZ_ARR_VAL;
        t->akind = FZ_ARR_VAL;
        t->array = a->arr = vals;
    }
    int rc = lvalue(b, lua_gettop(L), &((fz_val *)a->arr)[n], depth + 1);
    if (rc == INTERP_OK)
        t->asize = n + 1;
    return rc;
}

/* The array part of the table at idx: 1..n while non-nil (n <= border), by lua_rawgeti. */
static int array_part(lbld *b, int idx, fz_table *t, int depth)
{
    lua_State *L = b->L;
    lua_Unsigned border = lua_rawlen(L, idx);
    if (border == 0)
        return INTERP_OK;
    arr_fill a;
    int ty = lua_rawgeti(L, idx, 1);
    int rc = arr_start(b, t, &a, border, ty, lua_isinteger(L, -1));
    lua_pop(L, 1);
    if (rc)
        return rc;
    while (t->asize < a.border) {
        ty = lua_rawgeti(L, idx, (lua_Integer)t->asize + 1);
        rc = ty == LUA_TNIL ? -1 : arr_put(b, t, &a, ty, depth);
        lua_pop(L, 1);
        if (rc)
            return rc < 0 ? INTERP_OK : rc;
    }
    return INTERP_OK;
}

/* Append the pair at the top of the stack (key -2, value -1) to ps. */
static int put_pair(lbld *b, pairs *ps, int depth)
{
    fz_val key, val;
    int top = lua_gettop(b->L), rc;
    if ((rc = lvalue(b, top - 1, &key, depth + 1)) || (rc = lvalue(b, top, &val, depth + 1)))
        return rc;
    return add_pair(b, ps, &key, &val);
}

/* One lua_next walk (the common case of a table with a length): while the keys come as 1, 2,
 * 3... their values fill the array part, every other pair goes to ps. Returns 1 when the walk
 * cannot stand for the array part (a key asize + 1 came out of order: the caller starts
 * again the slow way), 0 when done, or an error. The stack is as it was in every case. */
static int walk_in_order(lbld *b, int idx, fz_table *t, pairs *ps, lua_Unsigned border, int depth)
{
    lua_State *L = b->L;
    arr_fill a = {0};
    bool filling = true;
    int rc;
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* key -2, value -1 */
        if (filling) {
            if (lua_isinteger(L, -2) && lua_tointeger(L, -2) == (lua_Integer)t->asize + 1 &&
                (!t->array || t->asize < a.border)) {
                int ty = lua_type(L, -1);
                rc = t->array ? INTERP_OK : arr_start(b, t, &a, border, ty, lua_isinteger(L, -1));
                if (rc == INTERP_OK)
                    rc = arr_put(b, t, &a, ty, depth);
                if (rc) {
                    lua_pop(L, 2);
                    return rc;
                }
                lua_pop(L, 1);
                continue;
            }
            filling = false; /* from here on every pair goes to ps */
        }
        if ((rc = put_pair(b, ps, depth))) {
            lua_pop(L, 2);
            return rc;
        }
        lua_pop(L, 1);
    }
    /* the array part ends at the first absent key: asize + 1 must not be among the pairs */
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].key.type == FZ_INT && ps->v[i].key.u.i == (int64_t)t->asize + 1)
            return 1;
    return 0;
}

/* lua_next(t, k) with t and k at 1 and 2, under a pcall: it raises for a key that is neither
 * in the table nor an index of its array part. */
static int next_after(lua_State *L)
{
    lua_settop(L, 2);
    return lua_next(L, 1) ? 2 : 0;
}

enum { BIG_ARRAY = 64 }; /* from this border on, a pcall to find the array part is worth it */

/* A big array whose border + 1 is a slot of the Lua table's own array part (the common case
 * of a table filled by a loop, whose array part has grown to a power of two): every key
 * 1..border + 1 lives in that array part, so the keys come by index (lua_rawgeti, much cheaper
 * than lua_next) and the walk over the rest starts right after border + 1. Returns 1 when
 * border + 1 is not such a slot (a pcall of lua_next on an absent key raised: nothing done),
 * 0 when done, or an error (an interrupt met by that call included). The stack is as it was
 * in every case. */
static int walk_after_array(lbld *b, int idx, fz_table *t, pairs *ps, lua_Unsigned border,
                            int depth)
{
    lua_State *L = b->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, next_after);
    lua_pushvalue(L, idx);
    lua_pushinteger(L, (lua_Integer)border + 1);
    int st = lua_pcall(L, 2, 2, 0);
    if (st != LUA_OK) {
        /* lua_next's own error: border + 1 is no array slot. Anything else (the interrupt
         * hook meeting the call, memory) ends the freeze with its text. */
        const char *e = lua_tostring(L, -1);
        int rc = st == LUA_ERRRUN && e && strcmp(e, "invalid key to 'next'") == 0
                     ? 1
                     : fail(b, st == LUA_ERRMEM ? INTERP_ERR_NOMEM : INTERP_ERR_SCRIPT,
                            e ? e : "error while reading the table");
        lua_settop(L, top);
        return rc;
    }
    /* the pair after border + 1 (or nil, nil) is at top + 1, top + 2 */
    int rc = array_part(b, idx, t, depth);
    for (lua_Unsigned k = (lua_Unsigned)t->asize + 2; rc == INTERP_OK && k <= border; k++) {
        if (lua_rawgeti(L, idx, (lua_Integer)k) != LUA_TNIL) { /* after a hole: a hash key */
            lua_pushinteger(L, (lua_Integer)k);
            lua_insert(L, -2);
            rc = put_pair(b, ps, depth);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    if (rc || lua_isnil(L, top + 1)) {
        lua_settop(L, top);
        return rc;
    }
    do { /* key -2, value -1 */
        if ((rc = put_pair(b, ps, depth))) {
            lua_settop(L, top);
            return rc;
        }
        lua_pop(L, 1);
    } while (lua_next(L, idx));
    return INTERP_OK;
}

/* A table with no length, or its keys out of order: the array part by index, then the
 * other keys into ps (what a first walk made is found again through the identity map). */
static int walk_any_order(lbld *b, int idx, fz_table *t, pairs *ps, int depth)
{
    lua_State *L = b->L;
    ps->n = 0;
    t->asize = 0;
    t->array = NULL;
    int rc = array_part(b, idx, t, depth);
    if (rc)
        return rc;
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* key -2, value -1 */
        int isint;
        lua_Integer k = lua_tointegerx(L, -2, &isint);
        if (isint && lua_type(L, -2) == LUA_TNUMBER && (lua_Unsigned)k - 1 < t->asize) {
            lua_pop(L, 1);
            continue;
        }
        if ((rc = put_pair(b, ps, depth))) {
            lua_pop(L, 2);
            return rc;
        }
        lua_pop(L, 1);
    }
    return INTERP_OK;
}

/* t's hash part from the pairs ps holds (ps stays the caller's). */
static int hash_part(lbld *b, fz_table *t, const pairs *ps)
{
    if (ps->n > UINT32_MAX / 4)
        return fail(b, INTERP_ERR_LIMIT, "table too large");
    if (!ps->n)
        return INTERP_OK;
    uint32_t cap = 4;
    while (cap < ps->n * 2)
        cap *= 2;
    fz_slot *hash = interp__fz_alloc(b->r, (size_t)cap * sizeof *hash);
    if (!hash)
        return nomem(b);
    memset(hash, 0, (size_t)cap * sizeof *hash);
    for (size_t i = 0; i < ps->n; i++) {
        bool dup;
        interp__fz_table_hash_init(b->r, hash, cap, &ps->v[i].key, &ps->v[i].val, &dup);
    }
    t->hcap = cap;
    t->hcount = (uint32_t)ps->n;
    t->hash = hash;
    return INTERP_OK;
}

static int ltable(lbld *b, int idx, fz_val *out, int depth)
{
    lua_State *L = b->L;
    const void *p = lua_topointer(L, idx);
    interp__idmap_slot *s = interp__idmap_lookup(&b->ids, p);
    out->type = FZ_OBJ;
    if (s->key) {
        out->u.o = (const interp_frozen *)(uintptr_t)s->val;
        return INTERP_OK;
    }
    if (depth >= b->max_depth)
        return fail(b, INTERP_ERR_LIMIT, "tables nested too deeply");
    if (!lua_checkstack(L, 6))
        return fail(b, INTERP_ERR_LIMIT, "no room on the Lua stack");
    fz_table *t = interp__fz_alloc(b->r, sizeof *t);
    if (!t)
        return nomem(b);
    memset(t, 0, sizeof *t);
    t->h.kind = FZ_TABLE;
    t->h.root = b->r;
    out->u.o = &t->h;
    int rc = remember(b, s, p, t);
    if (rc)
        return rc;
    pairs ps = {0};
    lua_Unsigned border = lua_rawlen(L, idx);
    if (border >= BIG_ARRAY && border < UINT32_MAX &&
        (rc = walk_after_array(b, idx, t, &ps, border, depth)) <= 0) {
        if (rc) {
            free(ps.v);
            return rc;
        }
    } else if (border && (rc = walk_in_order(b, idx, t, &ps, border, depth)) <= 0) {
        if (rc) {
            free(ps.v);
            return rc;
        }
    } else if ((rc = walk_any_order(b, idx, t, &ps, depth))) {
        free(ps.v);
        return rc;
    }
    rc = hash_part(b, t, &ps);
    free(ps.v);
    return rc;
}

static int lvalue(lbld *b, int idx, fz_val *out, int depth)
{
    lua_State *L = b->L;
    int t = lua_type(L, idx);
    if (interp__fz_scalar_lua(L, idx, t, out))
        return INTERP_OK;
    switch (t) {
    case LUA_TNIL:
        out->type = FZ_NIL;
        return INTERP_OK;
    case LUA_TSTRING: {
        const void *p = lua_topointer(L, idx);
        interp__idmap_slot *s = interp__idmap_lookup(&b->ids, p);
        out->type = FZ_STR;
        if (s->key) { /* the same string met before: stored once */
            out->u.s = (const fz_str *)(uintptr_t)s->val;
            return INTERP_OK;
        }
        size_t len;
        const char *str = lua_tolstring(L, idx, &len);
        fz_str *fs = interp__fz_alloc(b->r, sizeof *fs + len);
        if (!fs)
            return nomem(b);
        fs->len = len;
        memcpy(fs->data, str, len);
        out->u.s = fs;
        return remember(b, s, p, fs);
    }
    case LUA_TTABLE:
        return ltable(b, idx, out, depth);
    case LUA_TUSERDATA: {
        const interp_frozen *o = interp__frozen_toobj(L, idx);
        if (!o)
            return fail(b, INTERP_ERR_ENCODE, "cannot freeze a userdata");
        out->type = FZ_OBJ;
        out->u.o = o;
        return interp__fz_root_dep(b->r, o) ? nomem(b) : INTERP_OK;
    }
    default: {
        char what[64];
        snprintf(what, sizeof what, "cannot freeze a %s", luaL_typename(L, idx));
        return fail(b, INTERP_ERR_ENCODE, what);
    }
    }
}

int interp__frozen_from_lua(lua_State *L, int idx, int max_depth, size_t limit,
                            interp__frozen_space *space, interp_frozen **out, char *why)
{
    /* recursion: at most 200 levels, whatever the options allow (a 256 KiB worker stack) */
    lbld b = {.L = L, .max_depth = max_depth > 0 && max_depth < 200 ? max_depth : 200, .why = why};
    why[0] = '\0';
    if (!(b.r = interp__fz_root_new(FZ_TABLE, space)))
        return nomem(&b);
    interp__fz_root_limit(b.r, limit);
    interp__idmap_init(&b.ids);
    fz_val v;
    int top = lua_gettop(L);
    int rc = ltable(&b, lua_absindex(L, idx), &v, 0);
    lua_settop(L, top);
    interp__idmap_free(&b.ids);
    if (rc) {
        interp__fz_root_free(b.r);
        return rc;
    }
    interp__fz_root_done(b.r, v.u.o);
    *out = (interp_frozen *)v.u.o;
    return INTERP_OK;
}
