/* wait_lua.c - waiting on many futures from Lua: ip.wait(futs, mode [, timeout]) and
 * ip.as_completed(futs [, timeout]), an iterator for a generic `for`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lm.h"

/* The futures of the list at idx, in order, into a new array userdata pushed on the stack.
 * The array's user value is a table holding the same future objects by index: it keeps them
 * alive (the pointers are borrowed from them) whatever the list's metamethods do later. */
static interp_future **collect(lua_State *L, int idx, const char *where, size_t *n)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    if (len < 0 || (lua_Unsigned)len > (SIZE_MAX / sizeof(void *)) / 2 || len > 0x7fffffff)
        luaL_error(L, "%s: bad list length", where);
    interp_future **fs = lua_newuserdatauv(L, (size_t)len * sizeof *fs + 1, 1);
    lua_createtable(L, (int)len, 0);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        lm_future *lf = interp__lm_future_test(L, -1);
        if (!lf)
            luaL_error(L, "%s: futs[%I] is not a future (got %s)", where, i, luaL_typename(L, -1));
        fs[i - 1] = lf->f;
        lua_rawseti(L, -2, i);
    }
    lua_setiuservalue(L, -2, 1);
    *n = (size_t)len;
    return fs;
}

struct many {
    interp_future **fs;
    size_t n;
    int mode;
};

static int many_slice(void *ud, double slice)
{
    struct many *w = ud;
    return interp_futures_wait(w->fs, w->n, w->mode, slice, NULL);
}

/* ip.wait(futs [, mode [, timeout]]) -> done, not_done (lists of the future objects of futs,
 * in their order). mode "all" (default): until every future has ended; "first": until at
 * least one has; "first_failure": until one has failed, or else all have ended. When the
 * timeout passes first, not_done is simply not empty. */
int interp__lm_wait(lua_State *L)
{
    static const char *const modes[] = {"all", "first", "first_failure", NULL};
    static const int mode_of[] = {INTERP_WAIT_ALL, INTERP_WAIT_FIRST, INTERP_WAIT_FIRST_FAILURE};
    const char *where = "interp_pool.wait";
    int mode = mode_of[luaL_checkoption(L, 2, "all", modes)];
    double timeout = interp__lm_opt_timeout(L, 3, where);
    size_t n;
    interp_future **fs = collect(L, 1, where, &n);
    int objs = lua_gettop(L) + 1;
    lua_getiuservalue(L, -1, 1); /* the future objects, by index */
    if (n > 0) {
        struct many w = {fs, n, mode};
        bool interrupted;
        int rc = interp_lua_intr_wait(L, timeout, many_slice, &w, &interrupted);
        if (interrupted) { /* Ctrl-C: cancel what it waited on, as leaving <close> would */
            for (size_t i = 0; i < n; i++)
                interp_future_cancel(fs[i]);
            return interp_lua_intr_raise(L);
        }
        if (rc != INTERP_OK && rc != INTERP_ERR_TIMEOUT)
            return interp__lm_status_error(L, where, rc);
    }
    lua_newtable(L);
    int done = lua_gettop(L);
    lua_newtable(L);
    lua_Integer nd = 0, nn = 0;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, objs, (lua_Integer)i + 1);
        if (interp_future_done(fs[i]))
            lua_seti(L, done, ++nd);
        else
            lua_seti(L, done + 1, ++nn);
    }
    return 2;
}

/* The iterator state of as_completed. */
typedef struct lm_ac {
    interp_as_completed *it; /* NULL once exhausted or closed */
    size_t n, left;
    double deadline; /* monotonic seconds; < 0: none */
    double timeout;
    struct slot {
        interp_future *f;
        lua_Integer idx;
    } * slots;          /* sorted by f */
    interp_future **fs; /* distinct futures, borrowed by `it`; the objects live in uservalue 1 */
} lm_ac;

static int slot_cmp(const void *a, const void *b)
{
    const struct slot *x = a, *y = b;
    uintptr_t a1 = (uintptr_t)x->f, b1 = (uintptr_t)y->f;
    if (a1 != b1)
        return a1 < b1 ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void ac_free(lm_ac *ac)
{
    interp_as_completed_free(ac->it);
    ac->it = NULL;
}

static int ac_gc(lua_State *L)
{
    ac_free(luaL_checkudata(L, 1, LM_ASCOMPLETED_MT));
    return 0;
}

struct next {
    interp_as_completed *it;
    interp_future **f;
};

static int next_slice(void *ud, double slice)
{
    struct next *w = ud;
    return interp_as_completed_next(w->it, slice, w->f);
}

/* The iterator: the next future to end, or nil after the last. */
static int ac_next(lua_State *L)
{
    lm_ac *ac = luaL_checkudata(L, lua_upvalueindex(1), LM_ASCOMPLETED_MT);
    if (!ac->it)
        return 0;
    double timeout = INTERP_FOREVER;
    if (ac->deadline >= 0) {
        timeout = ac->deadline - interp_now();
        if (timeout < 0)
            timeout = 0;
    }
    interp_future *f = NULL;
    struct next w = {ac->it, &f};
    bool interrupted;
    int rc = interp_lua_intr_wait(L, timeout, next_slice, &w, &interrupted);
    if (interrupted) { /* Ctrl-C: cancel the futures still pending, as the closer would */
        for (size_t i = 0; i < ac->n; i++)
            interp_future_cancel(ac->fs[i]);
        return interp_lua_intr_raise(L);
    }
    if (rc == INTERP_ERR_CLOSED) {
        ac_free(ac);
        return 0;
    }
    if (rc == INTERP_ERR_TIMEOUT)
        return luaL_error(L,
                          "interp_pool.as_completed: timed out after %f s with %I of %I "
                          "futures still pending",
                          ac->timeout, (lua_Integer)ac->left, (lua_Integer)ac->n);
    if (rc != INTERP_OK)
        return interp__lm_status_error(L, "interp_pool.as_completed", rc);
    struct slot key = {f, 0};
    size_t lo = 0, hi = ac->n; /* first slot with slot.f >= f */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)ac->slots[mid].f < (uintptr_t)key.f)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == ac->n || ac->slots[lo].f != f)
        return luaL_error(L, "interp_pool.as_completed: unknown future returned");
    ac->left--;
    lua_getiuservalue(L, lua_upvalueindex(1), 1);
    lua_geti(L, -1, ac->slots[lo].idx);
    return 1;
}

/* ip.as_completed(futs [, timeout]) -> iterator, nil, nil, closer. Yields each distinct future
 * of futs once, in the order they end. timeout bounds the whole iteration: when it passes
 * with futures still pending the iterator raises. */
int interp__lm_as_completed(lua_State *L)
{
    const char *where = "interp_pool.as_completed";
    double timeout = interp__lm_opt_timeout(L, 2, where);
    lua_settop(L, 1);
    size_t n;
    interp_future **all = collect(L, 1, where, &n); /* index 2 */
    size_t size = sizeof(lm_ac) + n * (sizeof(struct slot) + sizeof(interp_future *));
    lm_ac *ac = lua_newuserdatauv(L, size, 1); /* index 3 */
    memset(ac, 0, sizeof *ac);
    ac->slots = (struct slot *)(ac + 1);
    ac->fs = (interp_future **)(ac->slots + n);
    ac->timeout = timeout;
    ac->deadline = timeout < 0 ? -1 : interp_now() + timeout;
    luaL_setmetatable(L, LM_ASCOMPLETED_MT);
    lua_getiuservalue(L, 2, 1); /* the objects, by index (collect's anchor) */
    lua_setiuservalue(L, 3, 1);
    for (size_t i = 0; i < n; i++) {
        ac->slots[i].f = all[i];
        ac->slots[i].idx = (lua_Integer)i + 1;
    }
    /* Distinct futures only: one listed twice is yielded once (at its first index). */
    qsort(ac->slots, n, sizeof *ac->slots, slot_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || ac->slots[m - 1].f != ac->slots[i].f)
            ac->slots[m++] = ac->slots[i];
    ac->n = ac->left = m;
    for (size_t i = 0; i < m; i++)
        ac->fs[i] = ac->slots[i].f;
    if (m > 0) {
        int rc = interp_as_completed_new(ac->fs, m, &ac->it);
        if (rc != INTERP_OK) {
            ac->it = NULL;
            return interp__lm_status_error(L, where, rc);
        }
    }
    lua_pushvalue(L, 3);
    lua_pushcclosure(L, ac_next, 1);
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushvalue(L, 3); /* closing value: leaving the loop early frees the iterator */
    return 4;
}

void interp__lm_wait_register(lua_State *L)
{
    static const luaL_Reg meta[] = {{"__gc", ac_gc}, {"__close", ac_gc}, {NULL, NULL}};
    interp__lm_register_class(L, LM_ASCOMPLETED_MT, meta, NULL);
}
