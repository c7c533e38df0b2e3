/* frozen_lua.c - frozen tables in Lua: views, and the module functions (interp.freeze, thaw,
 * isfrozen, buffer, next, shared, mapfile).
 *
 * A view is a full userdata of one fz_view block: a tag (frozen_impl.h) and the object, on
 * which it holds one reference (dropped by __gc). Every function here finds its object through
 * the tag in the block, never through the metatable, so a task that swaps metatables
 * (debug.setmetatable in the full profile), calls a metamethod on a foreign value, or calls
 * __gc by hand gets an error, never a wrong read: a buffer's methods refuse a table's view, a
 * table's refuse a buffer's, both refuse anything that is not a live view.
 *
 * Views are cached per state in a weak table keyed by the object's address, so one object has
 * one view while it lives: t.a == t.a and rawequal(t.a, t.a) hold, and a view works as a key.
 * The metatables and the cache are reached through the metamethods' upvalues, or the registry
 * (by the address of a static, never by a name a script could guess). */
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "frozen_impl.h"
#include "interp_msg_lua.h"

static const char STATE_KEY = 0; /* registry: {cache, table and buffer metatables, next, cfg} */
static const char CFG_KEY = 0;   /* registry: the cfg block, until the per-state table holds it */
enum {
    S_CACHE = 1,
    S_TABLE_MT = 2,
    S_BUF_MT = 3,
    S_NEXT = 4,
    S_CFG = 5,
    S_HELD = 6,
    S_ANCHOR_MT = 7
};

const interp_frozen *interp__frozen_toobj(lua_State *L, int idx)
{
    fz_view *v = interp__fz_view(L, idx);
    return v ? v->obj : NULL;
}

const interp_frozen *interp__frozen_check(lua_State *L, int idx, uint32_t kind)
{
    fz_view *v = interp__fz_view_of(L, idx, kind);
    if (!v)
        luaL_typeerror(L, idx, kind == FZ_TABLE ? "frozen table" : "frozen buffer");
    return v->obj;
}

static inline const fz_table *check_table(lua_State *L, int idx)
{
    fz_view *v = interp__fz_view_of(L, idx, FZ_TABLE);
    if (v)
        return (const fz_table *)v->obj;
    return (const fz_table *)interp__frozen_check(L, idx, FZ_TABLE); /* raises */
}

/* The module's configuration, as the upvalue of its functions and in the per-state table. The
 * tag (as a view's, of a kind of its own) proves a block found in the per-state table is one
 * (the full profile's debug.getregistry reaches that table). */
typedef struct cfg_block {
    interp__frozen_lua_cfg cfg;
    uint64_t tag;
} cfg_block;
enum { FZ_CFG = 0x7a636667 };

const interp__frozen_lua_cfg *interp__frozen_cfg(lua_State *L, int st)
{
    lua_rawgeti(L, st, S_CFG);
    const cfg_block *c = lua_touserdata(L, -1);
    if (c && (lua_rawlen(L, -1) != sizeof *c || c->tag != interp__fz_tag(c, FZ_CFG)))
        c = NULL;
    lua_pop(L, 1);
    return c ? &c->cfg : NULL;
}

/* ---- what a state holds of shared values -------------------------------------------------
 *
 * The host's current version of a shared value is read by every state for free. A version
 * the host has replaced (or removed) lives on only as long as something holds it; when that
 * is a state's views, the state pays for it: the first state found holding it becomes its
 * payer (interp__frozen_charge) until its last reference goes, so a script keeping every
 * version it is shown runs into its own memory limit.
 *
 * A state with an account keeps, in S_HELD, a weak-valued table: root -> anchor, for every
 * root that was the current version of a shared value (unpaid) when the state made its first
 * view of it. An anchor is a block like a view's (kind FZ_ANCHOR) holding one reference; each
 * view of the root holds the anchor as its user value, so the entry lives exactly as long as
 * a view does (weak values are cleared before finalizers run). Before another such root
 * enters, settle() walks the table: entries paid for (by anyone) leave it, and a version no
 * longer current is charged to this state; past the limit (after a full collection) the new
 * view is refused with "not enough memory". So what a state holds without paying is at most
 * what was current when it last took a new version: one registry's worth. */
enum { FZ_ANCHOR = 0x7a616e63 };

static int a_gc(lua_State *L)
{
    fz_view *a = interp__fz_view_of(L, 1, FZ_ANCHOR);
    if (a) {
        a->tag = 0;
        interp_frozen_release(a->obj);
        a->obj = NULL;
    }
    return 0;
}

/* Push the held table (made on first use, with the anchors' metatable). */
static void push_held(lua_State *L, int st)
{
    if (lua_rawgeti(L, st, S_HELD) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 2); /* anchors' metatable */
    lua_pushcfunction(L, a_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "frozen anchor");
    lua_setfield(L, -2, "__metatable");
    lua_rawseti(L, st, S_ANCHOR_MT);
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawseti(L, st, S_HELD);
}

/* One walk of the held table (at the top): drop what is paid for, charge what nobody pays
 * for any more. False when a charge did not fit (why says why). */
static bool settle_pass(lua_State *L, struct interp__account *acct, char *why, size_t n)
{
    int h = lua_gettop(L);
    bool ok = true;
    lua_pushnil(L);
    while (lua_next(L, h)) {
        fz_view *a =
            lua_type(L, -2) == LUA_TLIGHTUSERDATA ? interp__fz_view_of(L, -1, FZ_ANCHOR) : NULL;
        int standing = a ? interp__frozen_standing(a->obj) : FZ_PAID; /* not an anchor: out */
        if (standing == FZ_UNPAID && interp__frozen_charge(a->obj, acct, why, n) != INTERP_OK)
            ok = false;
        else if (standing != FZ_PUBLISHED)
            standing = FZ_PAID;
        lua_pop(L, 1);
        if (standing == FZ_PAID) { /* clearing a field during the walk is allowed */
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, h);
        }
    }
    return ok;
}

static void settle(lua_State *L, struct interp__account *acct)
{
    char why[256];
    if (settle_pass(L, acct, why, sizeof why))
        return;
    lua_gc(L, LUA_GCCOLLECT); /* views no longer reachable let their versions go */
    if (!settle_pass(L, acct, why, sizeof why))
        luaL_error(L, "cannot keep a replaced version of a shared value: %s", why);
}

/* For a view of o, the current version of a shared value: push its root's anchor in this
 * state (settling first when the root is new here) and return 1; 0, nothing pushed, when
 * this state has no account. May raise. */
static int push_anchor(lua_State *L, int st, const interp_frozen *o)
{
    const void *key = o->root;
    if (lua_rawgeti(L, st, S_HELD) == LUA_TTABLE) { /* the usual case: a root seen before */
        if (lua_rawgetp(L, -1, key) == LUA_TUSERDATA && interp__fz_view_of(L, -1, FZ_ANCHOR)) {
            lua_remove(L, -2);
            return 1;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    const interp__frozen_lua_cfg *cfg = interp__frozen_cfg(L, st);
    if (!cfg || !cfg->acct)
        return 0;
    push_held(L, st);
    settle(L, cfg->acct);
    fz_view *a = lua_newuserdatauv(L, sizeof *a, 0);
    a->tag = 0;
    a->obj = NULL;
    lua_rawgeti(L, st, S_ANCHOR_MT);
    lua_setmetatable(L, -2);
    a->obj = interp_frozen_retain(o);
    a->tag = interp__fz_tag(a, FZ_ANCHOR);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, key);
    lua_remove(L, -2);
    return 1;
}

/* ---- pushing values ----------------------------------------------------------------------- */

static void push_state(lua_State *L);

/* Push the view of o; the per-state table {cache, mts} is at index st. */
static void push_view(lua_State *L, int st, const interp_frozen *o)
{
    lua_rawgeti(L, st, S_CACHE);
    if (lua_rawgetp(L, -1, o) != LUA_TNIL && interp__fz_view(L, -1)) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1); /* none, or one whose __gc a script called by hand: a new one */
    int anchored = interp__frozen_standing(o) == FZ_PUBLISHED ? push_anchor(L, st, o) : 0;
    fz_view *v = lua_newuserdatauv(L, sizeof *v, anchored);
    v->tag = 0;
    v->obj = NULL;
    lua_rawgeti(L, st, o->kind == FZ_TABLE ? S_TABLE_MT : S_BUF_MT);
    lua_setmetatable(L, -2);
    v->obj = interp_frozen_retain(o); /* from here __gc drops it */
    v->tag = interp__fz_tag(v, o->kind);
    if (anchored) {
        lua_insert(L, -2); /* view, anchor */
        lua_setiuservalue(L, -2, 1);
    }
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, o);
    lua_remove(L, -2);
}

void interp__frozen_push(lua_State *L, const interp_frozen *o)
{
    luaL_checkstack(L, 12, "frozen view");
    push_state(L);
    push_view(L, lua_gettop(L), o);
    lua_remove(L, -2);
}

/* Push v; metamethods have the per-state table as upvalue 1. */
static inline int push_val(lua_State *L, const fz_val *v)
{
    if (v->type == FZ_OBJ)
        push_view(L, lua_upvalueindex(1), v->u.o);
    else
        interp__fz_push_scalar(L, v); /* FZ_NIL included: its default pushes nil */
    return 1;
}

/* The frozen key for the Lua value at idx; false when no frozen table can hold it (a
 * function, a non-view userdata, NaN, nil). Strings are handled by the caller. */
static bool to_key(lua_State *L, int idx, fz_val *k)
{
    int t = lua_type(L, idx);
    if (interp__fz_scalar_lua(L, idx, t, k))
        return interp__fz_key_normalise(k);
    if (t != LUA_TUSERDATA)
        return false;
    k->type = FZ_OBJ;
    return (k->u.o = interp__frozen_toobj(L, idx)) != NULL;
}

/* ---- table metamethods -------------------------------------------------------------------- */

/* The hot path (t[i] in a loop) makes five API calls: touserdata, rawlen, isinteger,
 * tointeger, push. */
static int t_index(lua_State *L)
{
    const fz_table *t = check_table(L, 1);
    if (lua_isinteger(L, 2)) {
        lua_Integer i = lua_tointeger(L, 2);
        if ((lua_Unsigned)i - 1 < t->asize) {
            if (t->akind == FZ_ARR_FLOAT)
                lua_pushnumber(L, (lua_Number)((const double *)t->array)[i - 1]);
            else if (t->akind == FZ_ARR_INT)
                lua_pushinteger(L, (lua_Integer)((const int64_t *)t->array)[i - 1]);
            else
                push_val(L, &((const fz_val *)t->array)[i - 1]);
            return 1;
        }
    }
    const fz_val *v = NULL;
    fz_val found;
    if (lua_type(L, 2) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 2, &len);
        v = interp__fz_get_str(t, s, len);
    } else {
        fz_val k;
        if (to_key(L, 2, &k) && interp__fz_get(t, &k, &found))
            v = &found;
    }
    if (!v)
        lua_pushnil(L);
    else
        push_val(L, v);
    return 1;
}

static int t_newindex(lua_State *L) { return luaL_error(L, "attempt to modify a frozen table"); }

static int t_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_table(L, 1)->asize);
    return 1;
}

/* next(t, k) over a frozen table: the array part in order, then the hash slots in order. */
static int t_next(lua_State *L)
{
    const fz_table *t = check_table(L, 1);
    uint64_t pos = 0; /* first candidate: array index pos, then hash slot pos - asize */
    lua_settop(L, 2);
    if (!lua_isnil(L, 2)) {
        fz_val k;
        lua_Integer i;
        if (lua_isinteger(L, 2) && (i = lua_tointeger(L, 2), (lua_Unsigned)i - 1 < t->asize)) {
            pos = (uint64_t)i;
        } else {
            const fz_slot *s = NULL;
            if (lua_type(L, 2) == LUA_TSTRING) {
                size_t len;
                const char *str = lua_tolstring(L, 2, &len);
                const fz_val *v = interp__fz_get_str(t, str, len);
                s = v ? (const fz_slot *)(const void *)((const char *)v - offsetof(fz_slot, val))
                      : NULL;
            } else if (to_key(L, 2, &k)) {
                s = interp__fz_find(t, &k);
            }
            if (!s)
                return luaL_error(L, "invalid key to 'next'");
            pos = t->asize + (uint64_t)(s - t->hash) + 1;
        }
    }
    fz_val k, v;
    if (!interp__fz_next(t, &pos, &k, &v)) {
        lua_pushnil(L);
        return 1;
    }
    push_val(L, &k);
    push_val(L, &v);
    return 2;
}

static int t_pairs(lua_State *L)
{
    check_table(L, 1);
    lua_rawgeti(L, lua_upvalueindex(1), S_NEXT);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int v_gc(lua_State *L)
{
    fz_view *v = interp__fz_view(L, 1);
    if (v) { /* a second call (by hand) finds no tag and does nothing */
        v->tag = 0;
        interp_frozen_release(v->obj);
        v->obj = NULL;
    }
    return 0;
}

/* ---- per-state setup --------------------------------------------------------------------- */

static void set_closure(lua_State *L, int st, lua_CFunction f, const char *name)
{
    lua_pushvalue(L, st);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, -2, name);
}

/* Push the per-state table, creating it (and the metatables) on first use. */
static void push_state(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &STATE_KEY) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    luaL_checkstack(L, 8, "frozen views"); /* callers reserved room for the table alone */
    interp__fz_tag_init();
    lua_createtable(L, 7, 0);
    int st = lua_gettop(L);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &CFG_KEY) != LUA_TNIL) { /* a worker's state */
        lua_rawseti(L, st, S_CFG);
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &CFG_KEY);
    } else {
        lua_pop(L, 1);
    }
    lua_pushvalue(L, st);
    lua_pushcclosure(L, t_next, 1);
    lua_rawseti(L, st, S_NEXT);
    lua_createtable(L, 0, 1); /* cache: weak values */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawseti(L, st, S_CACHE);

    lua_createtable(L, 0, 10); /* tables */
    set_closure(L, st, t_index, "__index");
    lua_pushcfunction(L, t_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, t_len);
    lua_setfield(L, -2, "__len");
    set_closure(L, st, t_pairs, "__pairs");
    lua_pushcfunction(L, v_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "frozen table"); /* tostring: "frozen table: 0x..." (no __tostring: the
                                           sandbox's tostring then shows no heap address) */
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, "frozen table");
    lua_setfield(L, -2, "__metatable");
    lua_rawseti(L, st, S_TABLE_MT);

    lua_createtable(L, 0, 8); /* buffers */
    lua_createtable(L, 0, 8); /* methods */
    interp__frozen_buf_methods(L, st);
    lua_setfield(L, -2, "__index");
    interp__frozen_buf_meta(L);
    lua_pushcfunction(L, v_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "frozen buffer");
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, "frozen buffer");
    lua_setfield(L, -2, "__metatable");
    lua_rawseti(L, st, S_BUF_MT);

    lua_pushvalue(L, st);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &STATE_KEY);
}

/* ---- module functions ---------------------------------------------------------------------- */

static const interp__frozen_lua_cfg *cfg_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int push_protected(lua_State *L)
{
    interp__frozen_push(L, lua_touserdata(L, 1));
    return 1;
}

/* Push the view of f and drop the caller's reference (the view holds its own), also when
 * making the view fails (a memory error, raised again after the release). */
static void push_owned(lua_State *L, interp_frozen *f)
{
    lua_pushcfunction(L, push_protected);
    lua_pushlightuserdata(L, f);
    int rc = lua_pcall(L, 1, 1, 0);
    interp_frozen_release(f);
    if (rc != LUA_OK)
        lua_error(L);
}

/* What the state's memory limit leaves (at least 1); 0: no limit. */
static size_t room_of(const interp__frozen_lua_cfg *cfg)
{
    if (!cfg->mem_limit || !cfg->mem_in_use)
        return 0;
    size_t used = atomic_load(cfg->mem_in_use);
    return used < cfg->mem_limit ? cfg->mem_limit - used : 1;
}

static int charge_check(lua_State *L, const interp__frozen_lua_cfg *cfg, interp_frozen *f)
{
    size_t bytes = interp_frozen_size(f);
    /* held by the host outside the heap: charged to this state until the value goes */
    char why[256];
    if (interp__frozen_charge(f, cfg->acct, why, sizeof why) != INTERP_OK &&
        (lua_gc(L, LUA_GCCOLLECT), interp__frozen_charge(f, cfg->acct, why, sizeof why)) !=
            INTERP_OK) {
        interp_frozen_release(f);
        return luaL_error(L, "cannot freeze: %s", why);
    }
    if (cfg->mem_limit && cfg->mem_in_use &&
        atomic_load(cfg->mem_in_use) + bytes > cfg->mem_limit) {
        interp_frozen_release(f);
        return luaL_error(L, "not enough memory to freeze (%d bytes, limit %d)", (int)bytes,
                          (int)cfg->mem_limit);
    }
    return 0;
}

/* Freeze the value at idx; leaves the view (or the value itself) at the top. */
static void freeze_at(lua_State *L, const interp__frozen_lua_cfg *cfg, int idx)
{
    idx = lua_absindex(L, idx);
    int t = lua_type(L, idx);
    interp_frozen *f = NULL;
    int rc;
    if (t == LUA_TTABLE) {
        char why[160];
        if ((rc = interp__frozen_from_lua(L, idx, cfg->max_depth, room_of(cfg), cfg->space, &f,
                                          why)))
            luaL_error(L, "cannot freeze: %s", why);
    } else if (t == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (cfg->mem_limit && cfg->mem_in_use &&
            atomic_load(cfg->mem_in_use) + len > cfg->mem_limit)
            luaL_error(L, "cannot freeze: not enough memory");
        if ((rc = interp__frozen_buffer_copy(s, len, cfg->space, &f)))
            luaL_error(L, "cannot freeze: %s", interp_strerror(rc));
    } else if (t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER ||
               interp__frozen_toobj(L, idx)) {
        lua_pushvalue(L, idx); /* already immutable */
        return;
    } else {
        luaL_error(L, "cannot freeze a %s", luaL_typename(L, idx));
    }
    charge_check(L, cfg, f);
    push_owned(L, f);
}

static int l_freeze(lua_State *L)
{
    luaL_checkany(L, 1);
    freeze_at(L, cfg_of(L), 1);
    return 1;
}

static int l_isfrozen(lua_State *L)
{
    lua_pushboolean(L, interp__frozen_toobj(L, 1) != NULL);
    return 1;
}

static int l_thaw(lua_State *L)
{
    luaL_checkany(L, 1);
    const interp_frozen *o = interp__frozen_toobj(L, 1);
    if (!o) {
        lua_settop(L, 1);
        return 1;
    }
    if (o->kind == FZ_BUFFER) {
        const fz_buffer *b = (const fz_buffer *)o;
        lua_pushlstring(L, b->data, b->len);
        return 1;
    }
    interp__frozen_lua_thaw(L, o); /* frozen_lua_thaw.c */
    return 1;
}

static int l_next(lua_State *L)
{
    check_table(L, 1);
    push_state(L);
    lua_rawgeti(L, -1, S_NEXT);
    lua_replace(L, -2);
    lua_insert(L, 1);
    lua_settop(L, 3);
    lua_call(L, 2, LUA_MULTRET);
    return lua_gettop(L);
}

/* interp.unpack(t [, i [, j]]): table.unpack for a frozen table, reading the array part
 * directly (no metamethod call per element): the bulk reader of big arrays. */
static int l_unpack(lua_State *L)
{
    const fz_table *t = check_table(L, 1);
    lua_Integer i = luaL_optinteger(L, 2, 1);
    lua_Integer j = luaL_opt(L, luaL_checkinteger, 3, (lua_Integer)t->asize);
    if (i > j)
        return 0;
    lua_Unsigned n = (lua_Unsigned)j - (lua_Unsigned)i;
    /* n values, the state table, and what push_view pushes for a moment */
    if (n >= (lua_Unsigned)INT_MAX - 8 || !lua_checkstack(L, (int)(++n) + 12))
        return luaL_error(L, "too many results to unpack");
    if (i >= 1 && (lua_Unsigned)j <= t->asize && t->akind != FZ_ARR_VAL) {
        /* a run of a bare array: no type to look at, no view to make */
        if (t->akind == FZ_ARR_FLOAT)
            for (const double *a = (const double *)t->array + (i - 1), *e = a + n; a < e; a++)
                lua_pushnumber(L, (lua_Number)*a);
        else
            for (const int64_t *a = (const int64_t *)t->array + (i - 1), *e = a + n; a < e; a++)
                lua_pushinteger(L, (lua_Integer)*a);
        return (int)n;
    }
    push_state(L);
    int st = lua_gettop(L);
    for (lua_Integer k = i;; k++) {
        fz_val v, key = {.type = FZ_INT, .u.i = (int64_t)k};
        if ((lua_Unsigned)k - 1 < t->asize)
            v = interp__fz_at(t, (uint32_t)(k - 1));
        else if (!interp__fz_get(t, &key, &v))
            v.type = FZ_NIL;
        if (v.type == FZ_OBJ)
            push_view(L, st, v.u.o);
        else
            interp__fz_push_scalar(L, &v);
        if (k == j)
            break;
    }
    lua_remove(L, st);
    return (int)n;
}

static int l_buffer(lua_State *L)
{
    luaL_checkstring(L, 1);
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_typeerror(L, 1, "string");
    freeze_at(L, cfg_of(L), 1);
    return 1;
}

/* interp.shared(name) -> the value registered under name, or nil;
 * interp.shared(name, v) -> freezes v (if needed) and registers it; a name is set once. */
static int l_shared(lua_State *L)
{
    const interp__frozen_lua_cfg *cfg = cfg_of(L);
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (!cfg->space)
        return luaL_error(L, "no registry of shared values here");
    if (lua_gettop(L) < 2) {
        interp_frozen *f;
        int rc = interp__frozen_space_get(cfg->space, name, len, &f);
        if (rc)
            return luaL_argerror(L, 1, interp_strerror(rc));
        if (!f)
            return 0;
        push_owned(L, f);
        return 1;
    }
    freeze_at(L, cfg, 2);
    const interp_frozen *o = interp__frozen_toobj(L, -1);
    if (!o)
        return luaL_argerror(L, 2, "a table, string or frozen value expected");
    int rc = interp__frozen_space_set(cfg->space, name, len, o, false);
    if (rc == INTERP_ERR_BUSY)
        return luaL_error(L, "shared value '%s' already exists", name);
    if (rc)
        return luaL_error(L, "cannot share '%s': %s", name, interp_strerror(rc));
    return 1;
}

static int l_mapfile(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    interp_frozen *f;
    int rc = interp_frozen_map_file(path, &f);
    if (rc) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, interp_strerror(rc));
        return 2;
    }
    charge_check(L, cfg_of(L), f);
    push_owned(L, f);
    return 1;
}

void interp__frozen_lua_set_cfg(lua_State *L, const interp__frozen_lua_cfg *cfg)
{
    cfg_block *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->cfg = *cfg;
    interp__fz_tag_init();
    c->tag = interp__fz_tag(c, FZ_CFG);
    /* The per-state table and its metatables (2.5 KiB) are made by the first view or frozen
     * call (push_state), which moves the block there: most states never see a frozen value. */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &CFG_KEY);
}

/* Push the block interp__frozen_lua_set_cfg recorded, wherever it is now (nil: none). */
static void push_cfg(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &CFG_KEY) != LUA_TNIL)
        return;
    lua_pop(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &STATE_KEY) == LUA_TTABLE)
        lua_rawgeti(L, -1, S_CFG);
    else
        lua_pushnil(L);
    lua_remove(L, -2);
}

void interp__frozen_lua_add_fns(lua_State *L)
{
    push_cfg(L);
    const cfg_block *c = lua_touserdata(L, -1);
    if (!c)
        luaL_error(L, "frozen values: no configuration in this state");
    int cu = lua_gettop(L);
    lua_pushvalue(L, cu);
    lua_pushcclosure(L, l_freeze, 1);
    lua_setfield(L, cu - 1, "freeze");
    lua_pushcfunction(L, l_isfrozen);
    lua_setfield(L, cu - 1, "isfrozen");
    lua_pushcfunction(L, l_thaw);
    lua_setfield(L, cu - 1, "thaw");
    lua_pushcfunction(L, l_next);
    lua_setfield(L, cu - 1, "next");
    lua_pushcfunction(L, l_unpack);
    lua_setfield(L, cu - 1, "unpack");
    lua_pushvalue(L, cu);
    lua_pushcclosure(L, l_buffer, 1);
    lua_setfield(L, cu - 1, "buffer");
    if (c->cfg.space) {
        lua_pushvalue(L, cu);
        lua_pushcclosure(L, l_shared, 1);
        lua_setfield(L, cu - 1, "shared");
    }
    if (c->cfg.allow_files) {
        lua_pushvalue(L, cu);
        lua_pushcclosure(L, l_mapfile, 1);
        lua_setfield(L, cu - 1, "mapfile");
    }
    lua_settop(L, cu - 1);
}

void interp__frozen_lua_register(lua_State *L, const interp__frozen_lua_cfg *cfg)
{
    interp__frozen_lua_set_cfg(L, cfg);
    interp__frozen_lua_add_fns(L);
}

void interp_frozen_push_lua(lua_State *L, const interp_frozen *f) { interp__frozen_push(L, f); }

const interp_frozen *interp_frozen_test_lua(lua_State *L, int idx)
{
    return interp__frozen_toobj(L, idx);
}

int interp_frozen_from_lua(lua_State *L, int idx, int max_depth, interp_frozen **out,
                           interp_msg_error *err)
{
    interp_msg_error local;
    err = err ? err : &local;
    if (!out || lua_type(L, idx) != LUA_TTABLE) {
        snprintf(err->text, sizeof err->text, "a table expected");
        return INTERP_ERR_INVALID;
    }
    return interp__frozen_from_lua(L, idx, max_depth, 0, NULL, out, err->text);
}

void interp_frozen_lua_open(lua_State *L)
{
    interp__frozen_lua_cfg cfg = {.allow_files = true};
    interp__frozen_lua_register(L, &cfg);
}
