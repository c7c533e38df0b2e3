/* frozen_lua_build.c - a frozen table straight from a Lua table (interp.freeze), without an
 * intermediate message.
 *
 * Recursive descent over the Lua value, bounded by max_depth (and lua_checkstack at each
 * level); reads are raw (lua_rawgeti, lua_next) and allocate nothing in the Lua heap, so the
 * walk never raises and a failure frees the half-built root. An identity map (the Lua object's
 * address -> the frozen object) keeps shared subtables and cycles shared, and stores a string
 * reached many times once. Array part: keys 1..n up to the first nil (n <= the border
 * lua_rawlen gives); bare doubles or int64s when all elements are floats or all integers.
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
    char *why;         /* the reason of a failure, at least 128 bytes */
} lbld;

static int lvalue(lbld *b, int idx, fz_val *out, int depth);

static int fail(lbld *b, int rc, const char *what)
{
    snprintf(b->why, 128, "%s", what);
    return rc;
}

static int nomem(lbld *b)
{
    return fail(b, INTERP_ERR_NOMEM, "not enough memory");
}

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

/* The array part of the table at idx: 1..n while non-nil (n <= border). One pass: the first
 * element's type decides an optimistic bare array (doubles or int64s); the first element of
 * another type turns it into tagged values (the bare array's arena space is then lost). */
static int array_part(lbld *b, int idx, fz_table *t, int depth)
{
    lua_State *L = b->L;
    lua_Unsigned border = lua_rawlen(L, idx);
    if (border == 0)
        return INTERP_OK;
    if (border > UINT32_MAX)
        border = UINT32_MAX;
    int kind = FZ_ARR_VAL;
    if (lua_rawgeti(L, idx, 1) == LUA_TNUMBER)
        kind = lua_isinteger(L, -1) ? FZ_ARR_INT : FZ_ARR_FLOAT;
    lua_pop(L, 1);
    void *arr = interp__fz_alloc(b->r, (size_t)border * (kind == FZ_ARR_VAL ? sizeof(fz_val) : 8));
    if (!arr)
        return nomem(b);
    t->akind = (uint8_t)kind;
    t->array = arr;
    uint32_t n = 0;
    while (n < border) {
        int ty = lua_rawgeti(L, idx, (lua_Integer)n + 1);
        if (ty == LUA_TNIL) {
            lua_pop(L, 1);
            break;
        }
        if (kind == FZ_ARR_FLOAT && ty == LUA_TNUMBER && !lua_isinteger(L, -1)) {
            ((double *)arr)[n++] = (double)lua_tonumber(L, -1);
            lua_pop(L, 1);
            continue;
        }
        if (kind == FZ_ARR_INT && ty == LUA_TNUMBER && lua_isinteger(L, -1)) {
            ((int64_t *)arr)[n++] = (int64_t)lua_tointeger(L, -1);
            lua_pop(L, 1);
            continue;
        }
        if (kind != FZ_ARR_VAL) { /* mixed after all: tagged values from here on */
            fz_val *vals = interp__fz_alloc(b->r, (size_t)border * sizeof *vals);
            if (!vals) {
                lua_pop(L, 1);
                return nomem(b);
            }
            for (uint32_t k = 0; k < n; k++) {
                t->asize = k + 1;
                vals[k] = interp__fz_at(t, k);
            }
            kind = FZ_ARR_VAL;
            t->akind = FZ_ARR_VAL;
            t->array = arr = vals;
        }
        int rc = lvalue(b, lua_gettop(L), &((fz_val *)arr)[n], depth + 1);
        lua_pop(L, 1);
        if (rc)
            return rc;
        n++;
    }
    t->asize = n;
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
    if (rc || (rc = array_part(b, idx, t, depth)))
        return rc;
    pairs ps = {0};
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* key -2, value -1 */
        int isint;
        lua_Integer k = lua_tointegerx(L, -2, &isint);
        if (isint && lua_type(L, -2) == LUA_TNUMBER && (lua_Unsigned)k - 1 < t->asize) {
            lua_pop(L, 1);
            continue;
        }
        fz_val key, val;
        int top = lua_gettop(L);
        if ((rc = lvalue(b, top - 1, &key, depth + 1)) || (rc = lvalue(b, top, &val, depth + 1)) ||
            (rc = add_pair(b, &ps, &key, &val))) {
            lua_pop(L, 2);
            free(ps.v);
            return rc;
        }
        lua_pop(L, 1);
    }
    if (ps.n > UINT32_MAX / 4) {
        free(ps.v);
        return fail(b, INTERP_ERR_LIMIT, "table too large");
    }
    if (ps.n) {
        uint32_t cap = 4;
        while (cap < ps.n * 2)
            cap *= 2;
        fz_slot *hash = interp__fz_alloc(b->r, (size_t)cap * sizeof *hash);
        if (!hash) {
            free(ps.v);
            return nomem(b);
        }
        memset(hash, 0, (size_t)cap * sizeof *hash);
        for (size_t i = 0; i < ps.n; i++) {
            bool dup;
            interp__fz_table_hash_init(b->r, hash, cap, &ps.v[i].key, &ps.v[i].val, &dup);
        }
        t->hcap = cap;
        t->hcount = (uint32_t)ps.n;
        t->hash = hash;
    }
    free(ps.v);
    return INTERP_OK;
}

static int lvalue(lbld *b, int idx, fz_val *out, int depth)
{
    lua_State *L = b->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: out->type = FZ_NIL; return INTERP_OK;
    case LUA_TBOOLEAN: out->type = lua_toboolean(L, idx) ? FZ_TRUE : FZ_FALSE; return INTERP_OK;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            out->type = FZ_INT;
            out->u.i = (int64_t)lua_tointeger(L, idx);
        } else {
            out->type = FZ_FLOAT;
            out->u.d = (double)lua_tonumber(L, idx);
        }
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
    case LUA_TTABLE: return ltable(b, idx, out, depth);
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
