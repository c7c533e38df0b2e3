/* sandbox.c - the library profiles of a worker state.
 *
 * Every profile: coroutine.resume/wrap/close track the running Lua thread (cancel.c), xpcall
 * never runs its handler in an interrupted task (cancel.c), print goes to the pool's sink,
 * os.exit raises an error, and the `interp` module is the global `interp`.
 *
 * INTERP_SANDBOX_NONE: every standard library (luaL_openlibs); globals persist from task to
 * task on the same state. debug.sethook raises in an interrupted task (it could remove the
 * cancellation hook). Not closed here (trusted code): a looping __gc finalizer runs with hooks
 * off and cannot be interrupted; debug.* can reach the registry.
 *
 * INTERP_SANDBOX_SAFE opens only what it keeps (luaL_requiref), never all-then-delete:
 *   base:      assert error getmetatable ipairs next pairs pcall print rawequal rawget rawlen
 *              rawset select setmetatable tonumber tostring type xpcall _VERSION _G, plus
 *              load (text chunks only; default environment: the task's own) and
 *              collectgarbage("count") only. Gone: dofile loadfile warn require.
 *   string:    all but string.dump; find/match/gmatch/gsub refuse patterns whose worst-case
 *              backtracking on the subject passes a budget (see pattern_cost below).
 *   table, math, utf8, coroutine (wrapped as above).
 *   os:        clock time date difftime, and exit (raises). Gone: execute getenv remove
 *              rename tmpname setlocale.
 *   interp:    the worker module.
 *   No io, debug, package. setmetatable refuses a metatable with __gc (finalizers run with
 *   hooks off, so no cancellation could stop one). rawset refuses the read-only tables.
 *   C loops the hook cannot reach poll the interrupt (table.*, gsub and load C callbacks;
 *   print in module.c); functions that call Lua back keep a C stack reserve; math.random is
 *   reseeded for every task; the globals lose _G once tasks run. (interp_types.h lists the
 *   rules and what stays open.)
 * Read-only: every library table above is an empty proxy (__index the real table, __newindex
 * raises, __pairs iterates the real table, __metatable false); the string metatable's
 * __index is the string proxy and getmetatable("") answers a read-only proxy of it.
 * Fresh environment: the state's real global table G (libraries, and whatever the trusted
 * initializer defines) is never handed to task code. A source task runs in a new table whose
 * metatable (shared, protected) reads through to G: its global writes die with it. Functions
 * defined by the initializer keep the initializer's environment G. */
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "interp_impl.h"

static const char ro_set_key = 0;  /* registry: set of read-only proxies */
static const char env_mt_key = 0;  /* registry: metatable of task environments */
static const char task_env_key = 0; /* registry: the running task's environment (or nil) */
static const char init_chunk_key = 0; /* registry: the initializer's main chunk */

/* ---- read-only proxies ---------------------------------------------------------------- */

static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to modify a read-only table");
}

/* The `next` that pairs(proxy) returns. A script can call it on any table: it must iterate
 * only a registered proxy's table (the environment's metatable reads through to the real
 * globals, whose _G is the real global table: handing that out would let a task write the
 * globals every later task sees). */
static int ro_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ro_set_key);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) == LUA_TNIL)
        return luaL_argerror(L, 1, "not a read-only library table");
    lua_settop(L, 2);
    if (!lua_getmetatable(L, 1) || lua_getfield(L, -1, "__index") != LUA_TTABLE)
        return 0;
    lua_pushvalue(L, 2);
    if (lua_next(L, -2))
        return 2;
    lua_pushnil(L);
    return 1;
}

static int ro_pairs(lua_State *L)
{
    lua_pushcfunction(L, ro_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Replace the table at the top of the stack by a read-only proxy of it. */
static void make_readonly(lua_State *L)
{
    lua_newtable(L); /* proxy */
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, ro_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ro_set_key);
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_remove(L, -2);
}

static int sb_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    lua_settop(L, 3);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ro_set_key);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) != LUA_TNIL)
        return luaL_error(L, "attempt to modify a read-only table");
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

/* ---- interrupt polls inside C loops ----------------------------------------------------
 * The cancellation hook counts Lua instructions, so a loop inside a C function that runs no
 * Lua code (table.move over a huge range, a sort or gsub calling C functions back) is out of
 * its reach. Such loops poll (interp__poll_irq, module.c) every POLL_EVERY iterations. */

#define POLL_EVERY 256

#define poll_irq interp__poll_irq

static inline void poll_at(lua_State *L, lua_Unsigned i)
{
    if ((i & (POLL_EVERY - 1)) == POLL_EVERY - 1)
        poll_irq(L);
}

/* ---- C stack reserve -------------------------------------------------------------------
 * Lua stops C recursion after 200 levels, whatever each level costs. Library functions with a
 * luaL_Buffer on the C stack (string.format, gsub, table.concat, print) take ~1.5 KiB a level
 * (more under sanitizers), so `__tostring = function(o) return string.format('%s', o) end`
 * needs ~400 KiB: beyond the pool's 256 KiB floor, a SIGSEGV. The sandbox's versions of the
 * functions that call Lua code back refuse to start when less than STACK_RESERVE bytes of the
 * thread's stack remain (the message handler and the unwinding run in that reserve). */

#define STACK_RESERVE ((uintptr_t)96 << 10)

static _Thread_local uintptr_t stack_floor_tl; /* 0: not known yet; 1: cannot be known */

static uintptr_t stack_floor(void)
{
    if (!stack_floor_tl) {
        uintptr_t floor = 1;
        pthread_attr_t a;
        void *addr;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            if (pthread_attr_getstack(&a, &addr, &size) == 0 && size > 2 * STACK_RESERVE)
                floor = (uintptr_t)addr + STACK_RESERVE;
            pthread_attr_destroy(&a);
        }
        stack_floor_tl = floor;
    }
    return stack_floor_tl;
}

/* Raise "C stack overflow" when the running thread's stack is nearly used up. The frame
 * address, not a local's: under ASan a local may live on a heap "fake stack". */
static void check_c_stack(lua_State *L)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (here < stack_floor())
        luaL_error(L, "C stack overflow (the sandbox keeps %d KiB of the thread's stack in "
                      "reserve)", (int)(STACK_RESERVE >> 10));
}

/* Upvalue 1: the standard function. Checks the C stack, then calls it. */
static int stack_checked(lua_State *L)
{
    check_c_stack(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Upvalue 1: a C function, upvalue 2: calls so far. Calls it with every argument, polling. */
static int polled_call(lua_State *L)
{
    check_c_stack(L);
    lua_Unsigned k = (lua_Unsigned)lua_tointeger(L, lua_upvalueindex(2)) + 1u;
    lua_pushinteger(L, (lua_Integer)k);
    lua_replace(L, lua_upvalueindex(2));
    poll_at(L, k);
    int base = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, base, LUA_MULTRET);
    return lua_gettop(L);
}

/* Upvalue 1: a table, upvalue 2: lookups so far. t[first argument], polling: what gsub does
 * with a table replacement (the first capture, or the whole match, is the key). */
static int polled_index(lua_State *L)
{
    check_c_stack(L);
    lua_Unsigned k = (lua_Unsigned)lua_tointeger(L, lua_upvalueindex(2)) + 1u;
    lua_pushinteger(L, (lua_Integer)k);
    lua_replace(L, lua_upvalueindex(2));
    poll_at(L, k);
    lua_settop(L, 1);
    lua_gettable(L, lua_upvalueindex(1));
    return 1;
}

/* Replace the C function at idx by a polling closure around it. */
static void wrap_polled(lua_State *L, int idx)
{
    lua_pushvalue(L, idx);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, polled_call, 2);
    lua_replace(L, idx);
}

/* ---- guarded base functions ----------------------------------------------------------- */

static int sb_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    /* raw: a metatable's own __index must not run here (Lua itself reads __gc raw) */
    if (t == LUA_TTABLE && (lua_pushliteral(L, "__gc"), lua_rawget(L, 2)) != LUA_TNIL)
        return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox");
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the standard setmetatable */
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage: only \"count\" is allowed in the sandbox");
    int kb = lua_gc(L, LUA_GCCOUNT);
    int b = lua_gc(L, LUA_GCCOUNTB);
    lua_pushnumber(L, (lua_Number)kb + (lua_Number)b / 1024);
    return 1;
}

/* Push the running task's environment; outside a task (the initializer), the globals. */
static void push_current_env(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task_env_key) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushglobaltable(L);
    }
}

static int sb_load(lua_State *L)
{
    check_c_stack(L);
    bool has_env = !lua_isnone(L, 4);
    lua_settop(L, 4);
    if (!lua_isnoneornil(L, 3) && !strchr(luaL_checkstring(L, 3), 't'))
        return luaL_error(L, "load: only text chunks are allowed in the sandbox");
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    if (lua_iscfunction(L, 1))
        wrap_polled(L, 1); /* a C reader runs inside the parser, out of the hook's reach */
    if (!has_env) {
        push_current_env(L);
        lua_replace(L, 4);
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* the standard load */
    lua_insert(L, 1);
    lua_call(L, 4, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- the random generator, reseeded for every task --------------------------------------
 * math.random's state belongs to the Lua state: a task could seed it (fixing the "random"
 * numbers of the next task) or read it out (xoshiro256** can be run backwards: the numbers an
 * earlier task drew). Each task starts from a fresh seed (clock, address and a counter mixed). */

static const char randomseed_key = 0; /* registry: the standard math.randomseed */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static void reseed_random(lua_State *L)
{
    static _Thread_local uint64_t counter; /* per thread: no cache line shared by workers */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t c = ++counter;
    uint64_t a = mix64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    uint64_t b = mix64(a ^ (uint64_t)(uintptr_t)L ^ mix64(c));
    lua_rawgetp(L, LUA_REGISTRYINDEX, &randomseed_key);
    lua_pushinteger(L, (lua_Integer)a);
    lua_pushinteger(L, (lua_Integer)b);
    lua_call(L, 2, 0);
}

void interp__sandbox_keep_init(lua_State *L, int idx)
{
    lua_pushvalue(L, idx);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &init_chunk_key);
}

/* Every task gets a fresh environment whose reads fall through to the shared, read-only-
 * library globals G. The functions the initializer defined share one _ENV upvalue (that of the
 * initializer's main chunk): it is pointed at the task's environment too, so a task called by
 * name writes its globals there, and they are gone for the next task. (Tables the initializer
 * built stay shared: a task that changes their contents changes them for later tasks.) */
void interp__push_task_env(lua_State *L)
{
    /* G._G is G itself: a task that clears its own _G (`_G = nil`) would read G's through the
     * environment's __index and could write every later task's globals. The initializer has
     * run: G._G goes (a raw no-op after the first task). */
    lua_pushglobaltable(L);
    lua_pushliteral(L, "_G");
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &env_mt_key);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &task_env_key);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &init_chunk_key) == LUA_TFUNCTION) {
        lua_pushvalue(L, -2);
        if (!lua_setupvalue(L, -2, 1)) /* a main chunk's only upvalue is _ENV */
            lua_pop(L, 1);
    }
    lua_pop(L, 1);
    reseed_random(L);
}

/* ---- bounded patterns ------------------------------------------------------------------
 * Lua's matcher backtracks inside C, where no hook reaches. Worst case, each quantified item
 * that is followed by more pattern (`*`, `+`, `-`, and the O(n) items %b and back-references)
 * may try every position of the subject for every choice of the items before it, and an
 * unanchored search repeats the whole at every start position: about n^(k+1) steps for a
 * subject of n bytes (n^k when anchored with ^), times 2 for each non-final `?`. The sandbox
 * refuses a call whose estimate passes 10^8.5 steps (a fraction of a second). A quantifier at
 * the very end of the pattern never backtracks and is free, so ordinary patterns on ordinary
 * subjects pass: e.g. "^(%w+)=(.*)$" on subjects up to ~17,000 bytes, "%s+" on any subject. */

#define PATTERN_BUDGET_LOG10 8.5

static size_t skip_class(const char *p, size_t i, size_t len)
{
    if (p[i] == '%')
        return i + 2 <= len ? i + 2 : len;
    if (p[i] == '[') {
        i++;
        if (i < len && p[i] == '^')
            i++;
        do { /* the first ']' of a set is literal */
            if (i >= len)
                return len;
            if (p[i] == '%')
                i++;
            i++;
        } while (i < len && p[i] != ']');
        return i < len ? i + 1 : len;
    }
    return i + 1;
}

/* True when nothing but closing captures follow position i. */
static bool only_closers(const char *p, size_t i, size_t len)
{
    for (; i < len; i++)
        if (p[i] != ')')
            return false;
    return true;
}

static double pattern_cost_log10(size_t n, const char *p, size_t len, bool anchor_ok)
{
    double logn = log10((double)n + 1.0);
    size_t i = 0;
    int k = 0, opt = 0;
    bool anchored = anchor_ok && len > 0 && p[0] == '^';
    if (anchored)
        i = 1;
    while (i < len) {
        char c = p[i];
        if (c == '(' || c == ')') {
            i++;
            continue;
        }
        if (c == '$' && i + 1 == len)
            break;
        if (c == '%' && i + 1 < len) {
            char d = p[i + 1];
            if (d == 'b') { /* %bxy scans up to the end of the subject */
                i = i + 4 <= len ? i + 4 : len;
                if (!only_closers(p, i, len))
                    k++;
                continue;
            }
            if (d == 'f') { /* frontier: a set, no repetition */
                i += 2;
                if (i < len)
                    i = skip_class(p, i, len);
                continue;
            }
            if (d >= '0' && d <= '9') { /* back-reference: O(n) compare */
                i += 2;
                k++;
                continue;
            }
        }
        i = skip_class(p, i, len);
        if (i < len && (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?')) {
            char q = p[i++];
            if (!only_closers(p, i, len)) {
                if (q == '?')
                    opt++;
                else
                    k++;
            }
        }
    }
    return (anchored ? 0.0 : logn) + k * logn + opt * log10(2.0);
}

/* string.find/match/gmatch/gsub: upvalue 1 the standard function, upvalue 2 the kind
 * (1: find, honouring its `plain` argument; 2: gmatch, where ^ is no anchor; 3: gsub, whose
 * C-function replacement is polled; 0: match). */
static int sb_pattern(lua_State *L)
{
    check_c_stack(L);
    size_t n, plen;
    luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &plen);
    int kind = (int)lua_tointeger(L, lua_upvalueindex(2));
    bool plain = kind == 1 && lua_toboolean(L, 4);
    if (kind == 3 && lua_iscfunction(L, 3))
        wrap_polled(L, 3); /* called back once per match, inside the C matcher */
    else if (kind == 3 && lua_type(L, 3) == LUA_TTABLE && lua_getmetatable(L, 3)) {
        lua_pop(L, 1); /* its __index may be a C function, queried once per match */
        lua_settop(L, 4);
        lua_pushvalue(L, 3);
        lua_pushinteger(L, 0);
        lua_pushcclosure(L, polled_index, 2);
        lua_replace(L, 3);
        if (lua_isnil(L, 4))
            lua_settop(L, 3);
    }
    if (!plain && pattern_cost_log10(n, p, plen, kind != 2) > PATTERN_BUDGET_LOG10)
        return luaL_error(L, "pattern too complex for a subject of %d bytes (the sandbox bounds "
                             "backtracking; simplify the pattern or split the subject)", (int)n);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void wrap_pattern_fn(lua_State *L, const char *name, int kind)
{
    lua_getfield(L, -1, name);
    lua_pushinteger(L, kind);
    lua_pushcclosure(L, sb_pattern, 2);
    lua_setfield(L, -2, name);
}

/* ---- loops bounded by the interrupt ---------------------------------------------------
 * Loops whose length a script chooses with a number rather than with memory it owns: Lua's
 * table.insert/remove/move/concat walk a range (#t may come from __len, and raw nils are
 * free to read and write: `table.move({}, 1, 1e15, 1)` runs for days without allocating),
 * and string.rep of an empty string copies nothing n times. The sandbox's versions keep
 * Lua's behaviour and messages and poll the interrupt (above) in their loops. table.sort
 * calls its comparator (or, without one, a C comparator doing `<`) through a polling
 * closure unless it is a Lua function (which the hook reaches): comparisons outnumber the
 * element moves, so the sort polls as often as it works. */

enum { TAB_R = 1, TAB_W = 2, TAB_L = 4 };

/* Lua's rule: a table, or a value with the metamethods the operation needs. */
static void check_tab(lua_State *L, int arg, int what)
{
    if (lua_type(L, arg) == LUA_TTABLE)
        return;
    static const char *const ev[] = {"__index", "__newindex", "__len"};
    for (int i = 0; i < 3; i++) {
        if (!(what & (1 << i)))
            continue;
        if (luaL_getmetafield(L, arg, ev[i]) == LUA_TNIL)
            luaL_checktype(L, arg, LUA_TTABLE); /* raises "table expected" */
        lua_pop(L, 1);
    }
}

static int sb_tinsert(lua_State *L)
{
    check_c_stack(L);
    check_tab(L, 1, TAB_R | TAB_W | TAB_L);
    lua_Integer e = (lua_Integer)((lua_Unsigned)luaL_len(L, 1) + 1u); /* first empty slot */
    lua_Integer pos = e;
    switch (lua_gettop(L)) {
    case 2:
        break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        for (lua_Integer i = e; i > pos; i--) { /* shift up */
            poll_at(L, (lua_Unsigned)(e - i));
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
        }
        break;
    default:
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

static int sb_tremove(lua_State *L)
{
    check_c_stack(L);
    check_tab(L, 1, TAB_R | TAB_W | TAB_L);
    lua_Integer size = luaL_len(L, 1);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2,
                      "position out of bounds");
    lua_geti(L, 1, pos); /* the result */
    for (lua_Unsigned n = 0; pos < size; pos++, n++) { /* shift down */
        poll_at(L, n);
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

static int sb_tmove(lua_State *L)
{
    check_c_stack(L);
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = lua_isnoneornil(L, 5) ? 1 : 5;
    check_tab(L, 1, TAB_R);
    check_tab(L, tt, TAB_W);
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f + 1; /* elements to move */
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
            for (lua_Integer i = 0; i < n; i++) {
                poll_at(L, (lua_Unsigned)i);
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
            }
        } else { /* overlapping, destination after the source: copy backwards */
            for (lua_Integer i = n - 1; i >= 0; i--) {
                poll_at(L, (lua_Unsigned)(n - 1 - i));
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
            }
        }
    }
    lua_pushvalue(L, tt);
    return 1;
}

static void concat_field(lua_State *L, luaL_Buffer *b, lua_Integer i)
{
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid value (at index %I) in table for 'concat'", (LUAI_UACINT)i);
    luaL_addvalue(b);
}

static int sb_tconcat(lua_State *L)
{
    check_c_stack(L);
    check_tab(L, 1, TAB_R | TAB_L);
    lua_Integer last = luaL_len(L, 1);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    last = luaL_optinteger(L, 4, last);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Unsigned n = 0; i < last; i++, n++) {
        poll_at(L, n); /* balanced: the buffer's use of the stack is undisturbed */
        concat_field(L, &b, i);
        luaL_addlstring(&b, sep, lsep);
    }
    if (i == last)
        concat_field(L, &b, i);
    luaL_pushresult(&b);
    return 1;
}

/* Upvalue 1: calls so far. `<` of its two arguments, polling. */
static int sort_less(lua_State *L)
{
    lua_Unsigned k = (lua_Unsigned)lua_tointeger(L, lua_upvalueindex(1)) + 1u;
    lua_pushinteger(L, (lua_Integer)k);
    lua_replace(L, lua_upvalueindex(1));
    poll_at(L, k);
    lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
    return 1;
}

/* True when argument 1 is a table without metatable holding only numbers, or only strings,
 * from 1 to its length: sorting it calls nothing (no comparator, no metamethod), and its
 * length is memory the task owns. One raw pass, cheap next to the sort. */
static bool plain_sortable(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE || lua_getmetatable(L, 1)) {
        if (lua_type(L, 1) == LUA_TTABLE)
            lua_pop(L, 1);
        return false;
    }
    lua_Unsigned n = lua_rawlen(L, 1);
    int kind = LUA_TNONE;
    for (lua_Unsigned i = 1; i <= n; i++) {
        int t = lua_rawgeti(L, 1, (lua_Integer)i);
        lua_pop(L, 1);
        if (t != LUA_TNUMBER && t != LUA_TSTRING)
            return false;
        if (kind != LUA_TNONE && t != kind)
            return false;
        kind = t;
    }
    return true;
}

/* Upvalue 1: the standard table.sort. */
static int sb_tsort(lua_State *L)
{
    check_c_stack(L);
    check_tab(L, 1, TAB_R | TAB_W | TAB_L); /* errors named after sort, not after the wrapper */
    if (lua_isnoneornil(L, 2) && plain_sortable(L)) {
        lua_settop(L, 1); /* no call can happen: Lua's own sort, at full speed */
    } else if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushinteger(L, 0);
        lua_pushcclosure(L, sort_less, 1);
    } else if (lua_iscfunction(L, 2)) {
        lua_settop(L, 2);
        wrap_polled(L, 2);
    } else {
        luaL_checktype(L, 2, LUA_TFUNCTION); /* a Lua function: the hook reaches it */
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

/* Upvalue 1: the standard string.rep. An empty result is built without looping n times. */
static int sb_srep(lua_State *L)
{
    size_t l, lsep;
    luaL_checklstring(L, 1, &l);
    luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (l == 0 && lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static void wrap_std(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, fn, 1);
    lua_setfield(L, -2, name);
}

static void set_fn(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, name);
}

/* ---- profiles ------------------------------------------------------------------------- */

/* Set G[name] to a read-only proxy of the library table at the top (popped). */
static void set_library(lua_State *L, int g, const char *name)
{
    make_readonly(L);
    lua_setfield(L, g, name);
}

static void open_sandbox(lua_State *L)
{
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ro_set_key);

    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    int g = lua_gettop(L);
    static const char *const gone[] = {"dofile", "loadfile", "warn", "require", NULL};
    for (int i = 0; gone[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, g, gone[i]);
    }
    lua_pushcfunction(L, sb_rawset);
    lua_setfield(L, g, "rawset");
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setfield(L, g, "collectgarbage");
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setfield(L, g, "setmetatable");
    lua_getfield(L, g, "load");
    lua_pushcclosure(L, sb_load, 1);
    lua_setfield(L, g, "load");

    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    wrap_pattern_fn(L, "find", 1);
    wrap_pattern_fn(L, "match", 0);
    wrap_pattern_fn(L, "gmatch", 2);
    wrap_pattern_fn(L, "gsub", 3);
    wrap_std(L, "rep", sb_srep);
    wrap_std(L, "format", stack_checked);
    set_library(L, g, LUA_STRLIBNAME);
    /* The string metatable: __index the read-only string table, and what getmetatable("")
     * returns is a read-only proxy of the metatable itself. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_getfield(L, g, LUA_STRLIBNAME);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    make_readonly(L);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
    set_fn(L, "insert", sb_tinsert);
    set_fn(L, "remove", sb_tremove);
    set_fn(L, "move", sb_tmove);
    set_fn(L, "concat", sb_tconcat);
    wrap_std(L, "sort", sb_tsort);
    set_library(L, g, LUA_TABLIBNAME);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);
    lua_getfield(L, -1, "randomseed");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &randomseed_key);
    set_library(L, g, LUA_MATHLIBNAME);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 0);
    set_library(L, g, LUA_UTF8LIBNAME);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 0);
    interp__wrap_coroutines(L);
    set_library(L, g, LUA_COLIBNAME);

    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    lua_createtable(L, 0, 5);
    static const char *const kept_os[] = {"clock", "time", "date", "difftime", NULL};
    for (int i = 0; kept_os[i]; i++) {
        lua_getfield(L, -2, kept_os[i]);
        lua_setfield(L, -2, kept_os[i]);
    }
    lua_remove(L, -2);
    interp__install_io(L, g, lua_gettop(L));
    set_library(L, g, LUA_OSLIBNAME);
    lua_getfield(L, g, "print");
    lua_pushcclosure(L, stack_checked, 1);
    lua_setfield(L, g, "print");

    interp__push_module(L);
    set_library(L, g, "interp");

    interp__push_xpcall(L);
    lua_setfield(L, g, "xpcall");

    /* The metatable of every task environment: reads fall through to G; protected. */
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, g);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &env_mt_key);
    lua_settop(L, g - 1);
}

/* Full profile: debug.sethook would let a cancelled task take the cancellation hook off its
 * own thread; once the task is interrupted it raises the cancellation error instead. */
static int full_sethook(lua_State *L)
{
    interp__irq_check(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

static void open_full(lua_State *L)
{
    luaL_openlibs(L);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    lua_getfield(L, g, LUA_COLIBNAME);
    interp__wrap_coroutines(L);
    lua_pop(L, 1);
    lua_getfield(L, g, LUA_OSLIBNAME);
    interp__install_io(L, g, lua_gettop(L));
    lua_pop(L, 1);
    interp__push_xpcall(L);
    lua_setfield(L, g, "xpcall");
    lua_getfield(L, g, LUA_DBLIBNAME);
    lua_getfield(L, -1, "sethook");
    lua_pushcclosure(L, full_sethook, 1);
    lua_setfield(L, -2, "sethook");
    lua_pop(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    interp__push_module(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, g, "interp");
    lua_setfield(L, -2, "interp"); /* require "interp" works too */
    lua_settop(L, g - 1);
}

int interp__open_profile(lua_State *L)
{
    if (interp__state_of(L)->sandbox)
        open_sandbox(L);
    else
        open_full(L);
    return 0;
}
