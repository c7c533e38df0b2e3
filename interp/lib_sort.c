/* lib_sort.c - table.sort, written here so that it can be interrupted (lib_impl.h): without a
 * comparator Lua's sort compares inside C, where no hook reaches (a string compared with `<`
 * costs its length: one long string referenced many times made a sort of minutes).
 *
 * A quicksort on the table in place (lua_geti/lua_seti, so __index and __newindex apply as in
 * Lua's), median of three, the middle element chosen at random on large ranges so that no
 * input is quadratic on purpose, and recursion only into the smaller part (depth log n).
 * Every comparison is a tick, plus one per 256 bytes of the strings compared with `<`.
 * Same contract as Lua's: the order of equal elements is unspecified; a comparator that is
 * not a strict weak order may raise "invalid order function for sorting" (the partition found
 * an element out of its range), and the table is then left in some permutation of itself. */
#include <lauxlib.h>
#include <limits.h>
#include <stdint.h>
#include <time.h>

#include "lib_impl.h"
#include "sandbox_impl.h"

typedef unsigned int idx_t; /* positions fit: n < INT_MAX is checked */

typedef struct sorter {
    lua_State *L;
    int has_fn; /* argument 2 is the comparator */
    interp__ticker tick;
    unsigned rnd; /* pivot choice on large ranges */
} sorter;

/* a[i] < a[j], the values at stack indices i and j (negative allowed). */
static int less(sorter *so, int i, int j)
{
    lua_State *L = so->L;
    if (so->has_fn) {
        interp__tick(&so->tick, 1);
        i = lua_absindex(L, i);
        j = lua_absindex(L, j);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, i);
        lua_pushvalue(L, j);
        lua_call(L, 2, 1);
        int r = lua_toboolean(L, -1);
        lua_pop(L, 1);
        return r;
    }
    /* a string costs its length (rawlen: 0 for numbers; a table's border, harmless) */
    interp__tick(&so->tick, 1 + (long)(lua_rawlen(L, i) >> 8));
    return lua_compare(L, i, j, LUA_OPLT);
}

/* a[i] = top, a[j] = the value below it; pops both. */
static void set2(lua_State *L, idx_t i, idx_t j)
{
    lua_seti(L, 1, i);
    lua_seti(L, 1, j);
}

static void bad_order(lua_State *L) { luaL_error(L, "invalid order function for sorting"); }

/* The pivot P is on the stack top (popped on return) and at a[up - 1]; a[lo] <= P <= a[up].
 * Moves the elements below P to the left of the returned position and those above it to the
 * right; P ends at the returned position. */
static idx_t partition(sorter *so, idx_t lo, idx_t up)
{
    lua_State *L = so->L;
    idx_t i = lo, j = up - 1;
    for (;;) {
        /* up from the left while a[i] < P */
        for (;;) {
            lua_geti(L, 1, ++i);
            if (!less(so, -1, -2))
                break;
            if (i == up - 1) /* a[up - 1] is P: nothing is below P */
                bad_order(L);
            lua_pop(L, 1);
        }
        /* down from the right while P < a[j] */
        for (;;) {
            lua_geti(L, 1, --j);
            if (!less(so, -3, -1))
                break;
            if (j < i) /* crossed over an element that must be <= P */
                bad_order(L);
            lua_pop(L, 1);
        }
        if (j < i) { /* done: a[i] >= P goes to up - 1, P to i (pops a[i] and P) */
            lua_pop(L, 1);
            set2(L, up - 1, i);
            return i;
        }
        set2(L, i, j); /* a[i] and a[j] were the wrong way round: swap */
    }
}

static idx_t choose_pivot(sorter *so, idx_t lo, idx_t up)
{
    idx_t span = up - lo;
    if (span < 100)
        return lo + span / 2;
    so->rnd = so->rnd * 1103515245u + 12345u;
    idx_t quarter = span / 4;
    return lo + quarter + (so->rnd >> 8) % (2 * quarter);
}

static void sort_range(sorter *so, idx_t lo, idx_t up)
{
    lua_State *L = so->L;
    while (lo < up) {
        /* order a[lo] and a[up] */
        lua_geti(L, 1, lo);
        lua_geti(L, 1, up);
        if (less(so, -1, -2))
            set2(L, lo, up);
        else
            lua_pop(L, 2);
        if (up - lo == 1)
            return;
        /* the median of a[lo], a[p], a[up] goes to p */
        idx_t p = choose_pivot(so, lo, up);
        lua_geti(L, 1, p);
        lua_geti(L, 1, lo);
        if (less(so, -2, -1)) { /* a[p] < a[lo] */
            set2(L, p, lo);
        } else {
            lua_pop(L, 1);
            lua_geti(L, 1, up);
            if (less(so, -1, -2)) /* a[up] < a[p] */
                set2(L, p, up);
            else
                lua_pop(L, 2);
        }
        if (up - lo == 2)
            return;
        /* P = a[p], parked at up - 1 */
        lua_geti(L, 1, p);
        lua_pushvalue(L, -1);
        lua_geti(L, 1, up - 1);
        set2(L, p, up - 1);
        p = partition(so, lo, up); /* takes P off the stack */
        /* the smaller side by recursion, the larger by looping */
        if (p - lo < up - p) {
            sort_range(so, lo, p - 1);
            lo = p + 1;
        } else {
            sort_range(so, p + 1, up);
            up = p - 1;
        }
    }
}

/* Lua's rule for table arguments: a table, or a value whose metatable has the fields the
 * operation needs (here __index, __newindex and __len). */
static void check_table(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE)
        return;
    static const char *const need[] = {"__index", "__newindex", "__len"};
    for (int i = 0; i < 3; i++) {
        if (luaL_getmetafield(L, 1, need[i]) == LUA_TNIL)
            luaL_checktype(L, 1, LUA_TTABLE); /* raises "table expected" */
        lua_pop(L, 1);
    }
}

static int lib_sort(lua_State *L)
{
    check_table(L);
    lua_Integer n = luaL_len(L, 1);
    if (n > 1) {
        luaL_argcheck(L, n < INT_MAX, 1, "array too big");
        if (!lua_isnoneornil(L, 2))
            luaL_checktype(L, 2, LUA_TFUNCTION);
        lua_settop(L, 2);
        if (interp__state_of(L)->sandbox) /* comparisons call Lua back: keep the reserve */
            interp__sandbox_check_c_stack(L);
        sorter so = {.L = L, .has_fn = !lua_isnil(L, 2)};
        interp__ticker_init(&so.tick, L);
        so.rnd = (unsigned)clock() ^ (unsigned)(uintptr_t)&so;
        luaL_checkstack(L, 40, "sort"); /* a partition keeps a few values on the stack */
        sort_range(&so, 1, (idx_t)n);
    }
    return 0;
}

void interp__lib_table(lua_State *L)
{
    lua_pushcfunction(L, lib_sort);
    lua_setfield(L, -2, "sort");
}
