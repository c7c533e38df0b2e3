/* pool_lua.c - the pool object of the Lua module: ip.new{...}, pool:submit, pool:map,
 * pool:channel, pool:shutdown, pool:stats, and its __gc / __close. */
#include <limits.h>
#include <lualib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp_ctx.h"
#include "lm.h"

typedef struct lm_pool {
    interp_pool *pool; /* NULL once destroyed (shutdown with wait, __close, __gc) */
    bool sandboxed;    /* functions as bytecode are refused before they are sent */
    int workers;
    int mapping; /* pool:map calls of this pool running on this thread */
} lm_pool;

static const char *const new_keys[] = {
    "workers",       "init",         "init_file",   "init_args",
    "sandbox",       "memory_limit", "timeout",     "max_tasks_per_worker",
    "max_queued",    "prestart",     "thread_name", "max_msg_size",
    "max_depth",     "cancel_grace", "stuck_grace", "libs",
    "memory_budget", NULL,
};
static const char *const map_keys[] = {"chunksize", "timeout", NULL};
static const char *const ctx_keys[] = {"name",    "init", "sandbox",    "memory_limit",
                                       "timeout", "libs", "time_slice", NULL};

/* Raise on a key of the options table at t that is not in `keys`: a typo must not be
 * silently ignored. */
static void check_keys(lua_State *L, int t, const char *where, const char *const keys[])
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: option names are strings, got a %s key", where,
                       luaL_typename(L, -1));
        const char *k = lua_tostring(L, -1);
        bool known = false;
        for (int i = 0; keys[i] && !known; i++)
            known = strcmp(k, keys[i]) == 0;
        if (!known)
            luaL_error(L, "%s: unknown option '%s'", where, k);
    }
}

/* The integer option `key` of the table at t, `def` when absent; raises outside [min, max]. */
static lua_Integer opt_integer(lua_State *L, int t, const char *where, const char *key,
                               lua_Integer def, lua_Integer min, lua_Integer max)
{
    lua_Integer v = def;
    if (lua_getfield(L, t, key) != LUA_TNIL) {
        int isint = 0;
        v = lua_tointegerx(L, -1, &isint);
        if (!isint || v < min || v > max)
            luaL_error(L, "%s: option '%s' must be an integer from %I to %I, got %s", where, key,
                       min, max, luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
    return v;
}

/* The integer option `key` of the table at t for an int field of the C API, 0 when absent:
 * any integer, brought into int's range (the C API checks the value and says why it refuses
 * one). */
static int opt_int(lua_State *L, int t, const char *where, const char *key)
{
    lua_Integer v = opt_integer(L, t, where, key, 0, LUA_MININTEGER, LUA_MAXINTEGER);
    return v < INT_MIN ? INT_MIN : v > INT_MAX ? INT_MAX : (int)v;
}

/* The seconds option `key` (>= 0, 0: none). */
static double opt_seconds(lua_State *L, int t, const char *where, const char *key)
{
    double v = 0;
    if (lua_getfield(L, t, key) != LUA_TNIL) {
        int isnum = 0;
        v = (double)lua_tonumberx(L, -1, &isnum);
        if (!isnum || isnan(v) || v < 0)
            luaL_error(L, "%s: option '%s' must be a number of seconds >= 0 (0: none), got %s",
                       where, key, luaL_tolstring(L, -1, NULL));
        if (v > 1e9) /* beyond ~30 years: none (no deadline arithmetic overflows) */
            v = 0;
    }
    lua_pop(L, 1);
    return v;
}

/* The boolean option `key`, false when absent. */
static bool opt_boolean(lua_State *L, int t, const char *where, const char *key)
{
    int ty = lua_getfield(L, t, key);
    if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
        luaL_error(L, "%s: option '%s' must be a boolean, got %s", where, key,
                   luaL_typename(L, -1));
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* The string option `key`, or NULL. The value is left on the stack, which keeps the string
 * alive whatever metamethods of the options table do to the table later. */
static const char *opt_string(lua_State *L, int t, const char *where, const char *key)
{
    const char *s = NULL;
    int ty = lua_getfield(L, t, key);
    if (ty == LUA_TSTRING)
        s = lua_tostring(L, -1);
    else if (ty != LUA_TNIL)
        luaL_error(L, "%s: option '%s' must be a string, got %s", where, key, luaL_typename(L, -1));
    return s;
}

static interp_sandbox opt_sandbox(lua_State *L, int t, const char *where)
{
    interp_sandbox sb = INTERP_SANDBOX_NONE;
    int ty = lua_getfield(L, t, "sandbox");
    if (ty == LUA_TBOOLEAN) {
        sb = lua_toboolean(L, -1) ? INTERP_SANDBOX_SAFE : INTERP_SANDBOX_NONE;
    } else if (ty == LUA_TSTRING && strcmp(lua_tostring(L, -1), "safe") == 0) {
        sb = INTERP_SANDBOX_SAFE;
    } else if (ty == LUA_TSTRING && strcmp(lua_tostring(L, -1), "none") == 0) {
        sb = INTERP_SANDBOX_NONE;
    } else if (ty != LUA_TNIL) {
        luaL_error(L, "%s: option 'sandbox' must be true, false, \"safe\" or \"none\"", where);
    }
    lua_pop(L, 1);
    return sb;
}

/* ---- libs: C modules of the script opened in every worker state ------------------------
 * Each name is resolved here, in the script's state, as require's C searcher would: the file
 * on package.cpath, then its luaopen_ function (dots as underscores; with a hyphen, the name
 * up to it first, then the name after it). package.loadlib keeps the library loaded as long as
 * the script's state: the pool, created later, is finalized before it (Lua runs finalizers in
 * the reverse order of their marking). The functions become the pool's host libraries, all
 * allowed in the sandbox: listing a module is the script marking it safe for its workers. */

#define LM_MAX_LIBS INTERP_HOST_LIBS_MAX
#define LM_LIB_NAME INTERP_HOST_LIB_MAX_NAME

typedef struct lm_libs {
    interp_host_lib libs[LM_MAX_LIBS];
    char names[LM_MAX_LIBS][LM_LIB_NAME + 1];
} lm_libs;

/* Try package.loadlib(path, sym) (package table at pkg); the C function or NULL. */
static lua_CFunction try_loadlib(lua_State *L, int pkg, const char *path, const char *sym)
{
    lua_getfield(L, pkg, "loadlib");
    lua_pushstring(L, path);
    lua_pushstring(L, sym);
    lua_call(L, 2, 2);
    lua_CFunction fn = lua_tocfunction(L, -2);
    if (!fn)
        lua_replace(L, -2); /* keep the error text on top */
    else
        lua_pop(L, 1);
    return fn;
}

static lua_CFunction resolve_lib(lua_State *L, int pkg, const char *where, const char *name)
{
    int top = lua_gettop(L);
    if (lua_getfield(L, pkg, "searchpath") != LUA_TFUNCTION ||
        lua_getfield(L, pkg, "cpath") != LUA_TSTRING)
        luaL_error(L, "%s: option 'libs': package.searchpath or package.cpath is missing", where);
    lua_pushstring(L, name);
    lua_insert(L, -2);
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2))
        luaL_error(L, "%s: option 'libs': no C module '%s' on package.cpath:%s", where, name,
                   lua_tostring(L, -1));
    const char *path = lua_tostring(L, -2);
    const char *sym = luaL_gsub(L, name, ".", "_");
    const char *hyphen = strchr(sym, '-');
    lua_CFunction fn;
    if (hyphen) {
        lua_pushfstring(L, "luaopen_%s", lua_pushlstring(L, sym, (size_t)(hyphen - sym)));
        fn = try_loadlib(L, pkg, path, lua_tostring(L, -1));
        if (!fn)
            fn = try_loadlib(L, pkg, path, lua_pushfstring(L, "luaopen_%s", hyphen + 1));
    } else {
        fn = try_loadlib(L, pkg, path, lua_pushfstring(L, "luaopen_%s", sym));
    }
    if (!fn)
        luaL_error(L, "%s: option 'libs': C module '%s' (%s): %s", where, name, path,
                   lua_tostring(L, -1));
    lua_settop(L, top);
    return fn;
}

/* Option libs (a list of module names) into *libs and *n (left as they are when absent); the
 * buffer is a userdata left on the stack. */
static void opt_libs(lua_State *L, int t, const char *where, const interp_host_lib **libs,
                     size_t *nlibs)
{
    int ty = lua_getfield(L, t, "libs");
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (ty != LUA_TTABLE)
        luaL_error(L, "%s: option 'libs' must be a list of module names, got %s", where,
                   luaL_typename(L, -1));
    int list = lua_gettop(L);
    lua_Integer n = luaL_len(L, list);
    if (n < 0 || n > LM_MAX_LIBS)
        luaL_error(L, "%s: option 'libs' holds at most %d names", where, LM_MAX_LIBS);
    if (n == 0)
        return;
    lm_libs *b = lua_newuserdatauv(L, sizeof *b, 0);
    int pkg = lua_gettop(L) + 1;
    if (lua_getglobal(L, LUA_LOADLIBNAME) != LUA_TTABLE)
        luaL_error(L, "%s: option 'libs' needs the package library", where);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len = 0;
        if (lua_geti(L, list, i) != LUA_TSTRING)
            luaL_error(L, "%s: option 'libs': entry %I must be a module name, got %s", where, i,
                       luaL_typename(L, -1));
        const char *name = lua_tolstring(L, -1, &len);
        if (len == 0 || len > LM_LIB_NAME || strlen(name) != len)
            luaL_error(L, "%s: option 'libs': entry %I must be a name of 1..%d bytes", where, i,
                       LM_LIB_NAME);
        memcpy(b->names[i - 1], name, len + 1);
        b->libs[i - 1].name = b->names[i - 1];
        b->libs[i - 1].open = resolve_lib(L, pkg, where, b->names[i - 1]);
        b->libs[i - 1].sandbox = true;
        lua_pop(L, 1);
    }
    *libs = b->libs;
    *nlibs = (size_t)n;
}

/* Workers start with the script's package.path and cpath (left on the stack). */
static void script_paths(lua_State *L, interp_pool_options *o)
{
    if (lua_getglobal(L, LUA_LOADLIBNAME) != LUA_TTABLE)
        return;
    if (lua_getfield(L, -1, "path") == LUA_TSTRING)
        o->package_path = lua_tostring(L, -1);
    if (lua_getfield(L, -2, "cpath") == LUA_TSTRING)
        o->package_cpath = lua_tostring(L, -1);
}

int interp__lm_pool_new(lua_State *L)
{
    const char *where = "interp_pool.new";
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    check_keys(L, 1, where, new_keys);

    interp_pool_options o = interp_pool_defaults();
    o.workers = opt_int(L, 1, where, "workers");
    o.init_source = opt_string(L, 1, where, "init");
    o.init_file = opt_string(L, 1, where, "init_file");
    if (o.init_source && o.init_file)
        luaL_error(L, "%s: give either option 'init' or option 'init_file', not both", where);
    o.sandbox = opt_sandbox(L, 1, where);
    o.memory_limit = (size_t)opt_integer(L, 1, where, "memory_limit", 0, 0, LUA_MAXINTEGER);
    o.task_timeout = opt_seconds(L, 1, where, "timeout");
    o.max_tasks_per_worker =
        (unsigned)opt_integer(L, 1, where, "max_tasks_per_worker", 0, 0, 0xffffffffLL);
    o.max_queued = (size_t)opt_integer(L, 1, where, "max_queued", 0, 0, LUA_MAXINTEGER);
    o.prestart = opt_boolean(L, 1, where, "prestart");
    o.thread_name = opt_string(L, 1, where, "thread_name");
    o.max_msg_size = (size_t)opt_integer(L, 1, where, "max_msg_size", 0, 0, LUA_MAXINTEGER);
    o.max_depth = opt_int(L, 1, where, "max_depth");
    o.memory_budget = (size_t)opt_integer(L, 1, where, "memory_budget", 0, 0, LUA_MAXINTEGER);
    o.cancel_grace = opt_seconds(L, 1, where, "cancel_grace");
    o.stuck_grace = opt_seconds(L, 1, where, "stuck_grace");
    /* what these push stays on the stack until create returns */
    opt_libs(L, 1, where, &o.host_libs, &o.n_host_libs);
    script_paths(L, &o);

    /* The pool object exists before the pool, so that nothing allocated below can leak when
     * a later push raises a memory error. */
    lm_pool *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->pool = NULL;
    p->sandboxed = o.sandbox == INTERP_SANDBOX_SAFE;
    p->workers = 0;
    p->mapping = 0;
    luaL_setmetatable(L, LM_POOL_MT);
    int obj = lua_gettop(L);

    lm_box *box = interp__lm_box_new(L, 1, 1);
    int ty = lua_getfield(L, 1, "init_args");
    if (ty == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        if (n < 0 || n > 250)
            luaL_error(L, "%s: option 'init_args' holds at most 250 values", where);
        luaL_checkstack(L, (int)n, "init_args");
        int first = lua_gettop(L) + 1;
        for (lua_Integer i = 1; i <= n; i++)
            lua_geti(L, first - 1, i);
        interp__lm_encode(L, first, (int)n, where, "option 'init_args'", &box->msgs[0]);
        lua_settop(L, first - 1);
    } else if (ty != LUA_TNIL) {
        luaL_error(L, "%s: option 'init_args' must be a list of values, got %s", where,
                   luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    o.init_args = box->msgs[0];

    int rc = interp_pool_create(&p->pool, &o, &box->texts[0]);
    if (rc != INTERP_OK) {
        p->pool = NULL;
        char *text = box->texts[0];
        box->texts[0] = NULL;
        interp__lm_push_owned(L, text, interp_strerror(rc));
        return luaL_error(L, "%s: cannot create the pool: %s", where, lua_tostring(L, -1));
    }
    interp__lm_box_clear(box);
    interp_pool_stats st;
    if (interp_pool_get_stats(p->pool, &st) == INTERP_OK)
        p->workers = st.max_workers;
    lua_settop(L, obj);
    return 1;
}

/* The pool object at index 1, which must still have a pool. */
static lm_pool *check_open(lua_State *L, const char *where)
{
    lm_pool *p = luaL_checkudata(L, 1, LM_POOL_MT);
    if (!p->pool)
        luaL_error(L, "%s: the pool is shut down", where);
    return p;
}

/* p->pool again, right before it is used: Lua code that ran since check_open (a metamethod of
 * the list, a finalizer run by an allocation) may have shut the pool down. */
static interp_pool *live(lua_State *L, lm_pool *p, const char *where)
{
    if (!p->pool)
        luaL_error(L, "%s: the pool is shut down", where);
    return p->pool;
}

static int rc_error(lua_State *L, const char *where, int rc)
{
    if (rc == INTERP_ERR_SHUTDOWN)
        return luaL_error(L, "%s: the pool is shut down", where);
    return interp__lm_status_error(L, where, rc);
}

/* pool:submit(f, ...) -> future */
static int pool_submit(lua_State *L)
{
    const char *where = "pool:submit";
    lm_pool *p = check_open(L, where);
    int nargs = lua_gettop(L) - 2;
    if (nargs < 0)
        return luaL_error(L, "%s: expected a function or a function name", where);
    interp_fn fn;
    interp__lm_check_fn(L, 2, where, p->sandboxed, &fn);
    lm_future *lf = interp__lm_future_new(L);
    if (p->sandboxed)
        lf->opts = &interp__lm_msg_opts_untrusted;
    lua_pushvalue(L, 1); /* a future keeps its pool object alive: pending work is not dropped */
    lua_setiuservalue(L, -2, 1);
    /* Nothing below raises while the arguments are ours, except the encode, which raises
     * only when it failed (and then holds nothing). */
    interp_pool *pool = live(L, p, where);
    interp_msg *args = NULL;
    interp__lm_encode(L, 3, nargs, where, "the arguments", &args);
    interp_task task = {.fn = fn, .args = args, .timeout = 0};
    int rc = interp_pool_submit_task(pool, &task, INTERP_FOREVER, &lf->f);
    if (rc != INTERP_OK) {
        lf->f = NULL;
        interp_msg_free(args); /* refused: still ours */
        return rc_error(L, where, rc);
    }
    return 1;
}

/* pool:map runs in packs (interp_pool_map_packed): this thread reads pack after pack of the list
 * into one message each and writes each pack's results into the new list as the workers finish it,
 * while they run the packs after it; one message per pack each way. Stack of pool_map: 1 pool, 2
 * function, 3 list, 4 options, then the ones below. */
enum { MAP_OUT = 5, MAP_ERR = 6, MAP_BOX = 7 };
/* Items per pack when chunksize is not given: about 8 packs per worker, at most this many. */
#define MAP_PACK_AUTO_MAX 1024
/* At most this many items per pack (a pack's values sit on the stack at once). */
#define MAP_PACK_MAX 8192

typedef struct map_run {
    lua_State *L;
    const char *where;
    const interp_msg_opts *out_opts;
    lua_Integer n, pack; /* items; items per pack */
    bool raw;            /* the list has no metatable: raw reads, a third cheaper */
    /* the pack being read or written, in protected calls */
    lua_Integer first, k;
    interp_msg *msg;
    /* how it went */
    bool list_failed;   /* an item could not be copied: its error is at MAP_ERR */
    bool result_failed; /* a result could not be pushed: its error is at MAP_ERR */
    int fail_status;    /* the first failed item: status, index from 1, text (box texts[0]) */
    lua_Integer fail_item;
    lm_box *box;
} map_run;

/* Protected (r, list, new list): list[first+1 .. first+k] into r->msg; raises naming the item that
 * cannot be copied. */
static int map_read_pack(lua_State *L)
{
    map_run *r = lua_touserdata(L, 1);
    int k = (int)r->k;
    luaL_checkstack(L, k + 2, r->where);
    int base = lua_gettop(L) + 1;
    for (int j = 1; j <= k; j++) {
        if (r->raw)
            lua_rawgeti(L, 2, r->first + j);
        else
            lua_geti(L, 2, r->first + j);
    }
    interp_msg_error err; /* its text goes on from the item's name: ".x: <reason>" */
    int bad = 0;          /* which of the pack's values failed */
    if (interp_msg_from_lua_named(L, base, k, &interp__lm_msg_opts, &r->msg, &err, &bad) ==
        INTERP_OK)
        return 0;
    r->msg = NULL;
    return luaL_error(L, "%s: list[%I]%s", r->where, r->first + 1 + bad, err.text);
}

/* Protected (r, list, new list): the values of r->msg into the new list at first+1 .. */
static int map_write_pack(lua_State *L)
{
    map_run *r = lua_touserdata(L, 1);
    interp_msg_store_lua(L, r->msg, r->out_opts, 3, r->first); /* a fresh table: raw sets */
    return 0;
}

/* Run f(r, list, new list) protected; on an error, keep it at MAP_ERR. */
static bool map_protected(map_run *r, lua_CFunction f)
{
    lua_State *L = r->L;
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, r);
    lua_pushvalue(L, 3);
    lua_pushvalue(L, MAP_OUT);
    if (lua_pcall(L, 3, 0, 0) == LUA_OK)
        return true;
    lua_replace(L, MAP_ERR);
    return false;
}

static bool map_next_pack(void *ud, size_t index, interp_msg **args)
{
    map_run *r = ud;
    lua_Integer first = (lua_Integer)index * r->pack;
    if (first >= r->n || r->list_failed)
        return false;
    r->first = first;
    r->k = r->n - first < r->pack ? r->n - first : r->pack;
    if (!map_protected(r, map_read_pack)) {
        r->list_failed = true;
        return false;
    }
    *args = r->msg;
    r->msg = NULL;
    return true;
}

static void map_on_pack(void *ud, size_t index, int status, interp_msg *result, const char *error)
{
    map_run *r = ud;
    r->first = (lua_Integer)index * r->pack;
    if (status == INTERP_OK && !r->fail_status && !r->result_failed) {
        r->msg = result;
        r->result_failed = !map_protected(r, map_write_pack);
        r->msg = NULL;
    } else if (status != INTERP_OK && !r->fail_status) {
        lua_Integer sub = 0; /* the pack's call that failed */
        interp_msg_iter it;
        interp_msg_value v;
        if (result && (it = interp_msg_iter_init(result), interp_msg_next(&it, &v)) &&
            v.type == INTERP_MSG_INT && v.as.i >= 0)
            sub = v.as.i;
        r->fail_status = status;
        r->fail_item = r->first + sub + 1;
        const char *text = error ? error : interp_strerror(status);
        size_t len = strlen(text) + 1;
        r->box->texts[0] = malloc(len); /* NULL: the status's text is used */
        if (r->box->texts[0])
            memcpy(r->box->texts[0], text, len);
    }
    interp_msg_free(result);
}

/* pool:map failed: raise with the first failed item's error, or rc's. */
static int map_failed(lua_State *L, const char *where, const map_run *r, int rc)
{
    if (!r->fail_status)
        return rc_error(L, where, rc);
    const char *text = r->box->texts[0] ? r->box->texts[0] : interp_strerror(r->fail_status);
    if (r->fail_status == INTERP_ERR_SCRIPT)
        return luaL_error(L, "%s: item %I failed: %s", where, r->fail_item, text);
    return luaL_error(L, "%s: item %I failed (%s): %s", where, r->fail_item,
                      interp_strerror(r->fail_status), text);
}

/* Items per pack: chunksize, or about 8 packs per worker. */
static lua_Integer map_pack_size(lua_Integer n, size_t chunksize, int workers)
{
    lua_Integer pack = (lua_Integer)chunksize;
    if (!pack) {
        pack = n / ((lua_Integer)(workers > 0 ? workers : 1) * 8);
        pack = pack > MAP_PACK_AUTO_MAX ? MAP_PACK_AUTO_MAX : pack;
    }
    return pack < 1 ? 1 : pack > MAP_PACK_MAX ? MAP_PACK_MAX : pack;
}

/* pool:map(f, list [, {chunksize=, timeout=}]) -> results */
static int pool_map(lua_State *L)
{
    const char *where = "pool:map";
    lm_pool *p = check_open(L, where);
    luaL_checktype(L, 3, LUA_TTABLE);
    interp_map_options mo = {0};
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        check_keys(L, 4, where, map_keys);
        /* a negative chunksize reads as one past the bound */
        mo.chunksize =
            (size_t)opt_integer(L, 4, where, "chunksize", 0, LUA_MININTEGER, LUA_MAXINTEGER);
        mo.timeout = opt_seconds(L, 4, where, "timeout");
        const char *why;
        if (interp_map_check_sizes(mo.chunksize, 0, &why) != INTERP_OK)
            return luaL_error(L, "%s: option %s", where, why);
    }
    lua_settop(L, 4);
    lua_Integer n = luaL_len(L, 3);
    if (n < 0 || n > INT32_MAX) /* a __len may say anything: no size below may wrap */
        return luaL_error(L, "%s: the list's length %I is not from 0 to %d", where, n,
                          (int)INT32_MAX);
    lua_createtable(L, (int)n, 0); /* MAP_OUT */
    lua_pushnil(L);                /* MAP_ERR */
    map_run r = {.L = L, .where = where, .n = n, .box = interp__lm_box_new(L, 0, 1)};
    interp_fn fn; /* what it needs is kept above MAP_BOX */
    interp__lm_check_fn(L, 2, where, p->sandboxed, &fn);
    if (n == 0) {
        lua_settop(L, MAP_OUT);
        return 1;
    }
    r.out_opts = p->sandboxed ? &interp__lm_msg_opts_untrusted : &interp__lm_msg_opts;
    r.pack = map_pack_size(n, mo.chunksize, p->workers);
    r.raw = !lua_getmetatable(L, 3);
    if (!r.raw)
        lua_pop(L, 1);
    mo.chunksize = 1;     /* a pack per job */
    interp_lua_intr intr; /* Ctrl-C: the map cancels its packs, then we raise */
    interp_lua_intr_begin(L, &intr);
    mo.interrupted = interp_lua_intr_poll;
    mo.interrupted_ud = &intr;
    size_t window = INTERP_MAP_WINDOW_CHUNKS * (size_t)(p->workers > 0 ? p->workers : 1);
    interp_pool *pool = live(L, p, where);
    p->mapping++; /* Lua code run meanwhile (the list's metamethods, finalizers) cannot
                     destroy the pool under the map */
    int rc = interp_pool_map_packed(pool, &fn, map_next_pack, map_on_pack, &r, window, &mo);
    p->mapping--;
    if (rc == INTERP_ERR_CANCELLED && interp_lua_intr_seen(&intr)) {
        interp_lua_intr_consume(&intr);
        return interp_lua_intr_raise(L);
    }
    if (r.list_failed || (r.result_failed && rc == INTERP_OK && !r.fail_status)) {
        lua_pushvalue(L, MAP_ERR);
        return lua_error(L);
    }
    if (rc != INTERP_OK || r.fail_status)
        return map_failed(L, where, &r, rc);
    lua_settop(L, MAP_OUT);
    return 1;
}

static int push_chan_protected(lua_State *L)
{
    interp_chan_push_lua(L, (interp_chan *)lua_touserdata(L, 1));
    return 1;
}

int interp__lm_push_chan(lua_State *L, interp_chan *ch)
{
    /* The object takes a reference of its own; ours is dropped whatever happens. */
    lua_pushcfunction(L, push_chan_protected);
    lua_pushlightuserdata(L, ch);
    int rc = lua_pcall(L, 1, 1, 0);
    interp_chan_release(ch);
    if (rc != LUA_OK)
        return lua_error(L);
    return 1;
}

/* pool:channel(name [, capacity]) -> channel object shared with the workers'
 * interp.channel(name) */
const char *interp__lm_check_chan(lua_State *L, int idx, const char *where, size_t capacity)
{
    size_t len;
    const char *name = luaL_checklstring(L, idx, &len), *why;
    if (interp_chan_check(name, len, capacity, &why) != INTERP_OK)
        luaL_error(L, "%s: %s", where, why);
    return name;
}

static int pool_channel(lua_State *L)
{
    const char *where = "pool:channel";
    lm_pool *p = check_open(L, where);
    size_t cap = (size_t)luaL_optinteger(L, 3, 0); /* negative: past the bound */
    const char *name = interp__lm_check_chan(L, 2, where, cap);
    interp_chan *ch = NULL;
    int rc = interp_pool_channel(live(L, p, where), name, cap, &ch);
    if (rc != INTERP_OK)
        return rc_error(L, where, rc);
    return interp__lm_push_chan(L, ch);
}

/* pool:share(name, v): register v (a frozen value, or a table or string frozen now) in the
 * pool's registry under name, replacing what was there (nil removes it); returns the view.
 * pool:shared(name): the view registered under name, or nil. */
static int push_frozen_protected(lua_State *L)
{
    interp_frozen_push_lua(L, lua_touserdata(L, 1));
    return 1;
}

static int pool_share(lua_State *L)
{
    const char *where = "pool:share";
    lm_pool *p = check_open(L, where);
    const char *name = luaL_checkstring(L, 2);
    lua_settop(L, 3);
    interp_frozen *made = NULL; /* our reference to a value frozen here */
    const interp_frozen *f = interp_frozen_test_lua(L, 3);
    int rc = INTERP_OK;
    interp_msg_error why = {"a table, string or frozen value expected"};
    if (!f && lua_type(L, 3) == LUA_TTABLE)
        rc = interp_frozen_from_lua(L, 3, 0, &made, &why);
    else if (!f && lua_type(L, 3) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 3, &len);
        rc = interp_frozen_bytes(s, len, &made);
        snprintf(why.text, sizeof why.text, "%s", interp_strerror(rc));
    } else if (!f && !lua_isnil(L, 3)) {
        rc = INTERP_ERR_INVALID;
    }
    if (rc != INTERP_OK)
        return luaL_error(L, "%s: cannot freeze: %s", where, why.text);
    if (made)
        f = made;
    rc = interp_pool_share(live(L, p, where), name, f);
    if (rc != INTERP_OK) {
        interp_frozen_release(made);
        return rc_error(L, where, rc);
    }
    if (!f)
        return 0;
    lua_pushcfunction(L, push_frozen_protected);
    lua_pushlightuserdata(L, (void *)f);
    rc = lua_pcall(L, 1, 1, 0);
    interp_frozen_release(made);
    if (rc != LUA_OK)
        return lua_error(L);
    return 1;
}

static int pool_shared(lua_State *L)
{
    const char *where = "pool:shared";
    lm_pool *p = check_open(L, where);
    const char *name = luaL_checkstring(L, 2);
    interp_frozen *f = NULL;
    int rc = interp_pool_shared(live(L, p, where), name, &f);
    if (rc != INTERP_OK)
        return rc_error(L, where, rc);
    if (!f)
        return 0;
    lua_pushcfunction(L, push_frozen_protected); /* the view takes its own reference */
    lua_pushlightuserdata(L, f);
    rc = lua_pcall(L, 1, 1, 0);
    interp_frozen_release(f);
    if (rc != LUA_OK)
        return lua_error(L);
    return 1;
}

/* A map of the pool runs below on this thread (the caller is a finalizer or a metamethod of its
 * list): waiting for the pool's tasks would wait for that map, and the pool must outlive it. */
static void check_not_mapping(lua_State *L, lm_pool *p, const char *where)
{
    if (p->mapping)
        luaL_error(L, "%s: a pool:map of this pool is running on this thread", where);
}

static void destroy(lm_pool *p)
{
    interp_pool *pool = p->pool;
    p->pool = NULL;
    interp_pool_destroy(pool);
}

/* pool:shutdown([wait [, cancel_pending]]): wait (default true) blocks until every task has
 * ended and frees the workers; cancel_pending (default false) cancels the queued tasks.
 * Idempotent. */
static int pool_shutdown(lua_State *L)
{
    lm_pool *p = luaL_checkudata(L, 1, LM_POOL_MT);
    bool wait = lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2);
    bool cancel = lua_toboolean(L, 3);
    if (!p->pool)
        return 0;
    if (wait)
        check_not_mapping(L, p, "pool:shutdown");
    int rc = interp_pool_shutdown(p->pool, wait, cancel);
    if (rc != INTERP_OK)
        return interp__lm_status_error(L, "pool:shutdown", rc);
    if (wait)
        destroy(p);
    return 0;
}

/* `local pool <close> = ip.new{...}`: wait for the tasks, as Python's `with` does; when the
 * block is left by an error, queued tasks are cancelled rather than run for nobody. */
static int pool_close(lua_State *L)
{
    lm_pool *p = luaL_checkudata(L, 1, LM_POOL_MT);
    if (p->pool) {
        check_not_mapping(L, p, "pool:__close");
        interp_pool_shutdown(p->pool, true, !lua_isnoneornil(L, 2));
        destroy(p);
    }
    return 0;
}

/* Collected (or the script ended) without a shutdown: cancel what is queued, interrupt what
 * runs, join. Futures still referenced stay readable (each is done, failed or cancelled). */
static int pool_gc(lua_State *L)
{
    lm_pool *p = luaL_checkudata(L, 1, LM_POOL_MT);
    if (p->pool)
        destroy(p);
    return 0;
}

/* pool:stats() -> table of counters */
static int pool_stats(lua_State *L)
{
    lm_pool *p = check_open(L, "pool:stats");
    interp_pool_stats st;
    int rc = interp_pool_get_stats(p->pool, &st);
    if (rc != INTERP_OK)
        return interp__lm_status_error(L, "pool:stats", rc);
    lua_createtable(L, 0, 11);
    interp__lm_set_int(L, "submitted", (lua_Integer)st.submitted);
    interp__lm_set_int(L, "done", (lua_Integer)st.done);
    interp__lm_set_int(L, "failed", (lua_Integer)st.failed);
    interp__lm_set_int(L, "cancelled", (lua_Integer)st.cancelled);
    interp__lm_set_int(L, "timed_out", (lua_Integer)st.timed_out);
    interp__lm_set_int(L, "states_replaced", (lua_Integer)st.states_replaced);
    interp__lm_set_int(L, "workers_abandoned", (lua_Integer)st.workers_abandoned);
    interp__lm_set_int(L, "queued", (lua_Integer)st.queued);
    interp__lm_set_int(L, "workers", st.workers);
    interp__lm_set_int(L, "max_workers", st.max_workers);
    interp__lm_set_int(L, "memory_in_use", (lua_Integer)st.memory_in_use);
    interp__lm_set_int(L, "memory_peak", (lua_Integer)st.memory_peak);
    interp__lm_set_int(L, "frozen_values", (lua_Integer)st.frozen_values);
    interp__lm_set_int(L, "frozen_bytes", (lua_Integer)st.frozen_bytes);
    return 1;
}

static int pool_tostring(lua_State *L)
{
    lm_pool *p = luaL_checkudata(L, 1, LM_POOL_MT);
    if (p->pool)
        lua_pushfstring(L, "interp_pool.pool (%d workers): %p", p->workers, (void *)p);
    else
        lua_pushfstring(L, "interp_pool.pool (shut down): %p", (void *)p);
    return 1;
}

/* pool:context{name=, init=, sandbox=, memory_limit=, timeout=, libs=, time_slice=} ->
 * context (time_slice: seconds, or false: never preempted) */
static int pool_context(lua_State *L)
{
    const char *where = "pool:context";
    lm_pool *p = check_open(L, where);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_newtable(L);
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    check_keys(L, 2, where, ctx_keys);
    interp_ctx_options o;
    memset(&o, 0, sizeof o);
    o.name = opt_string(L, 2, where, "name"); /* left on the stack: kept alive */
    o.init_source = opt_string(L, 2, where, "init");
    if (o.init_source)
        o.init_source_len = lua_rawlen(L, -1);
    o.sandbox = opt_sandbox(L, 2, where);
    o.memory_limit = (size_t)opt_integer(L, 2, where, "memory_limit", 0, 0, LUA_MAXINTEGER);
    o.timeout = opt_seconds(L, 2, where, "timeout");
    lua_getfield(L, 2, "time_slice");
    bool never = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    o.time_slice = never ? -1 : opt_seconds(L, 2, where, "time_slice");
    opt_libs(L, 2, where, &o.host_libs, &o.n_host_libs);
    if (o.init_source && o.init_source_len == 0)
        o.init_source = NULL;
    return interp__lm_ctx_new(L, 1, live(L, p, where), &o, p->sandboxed);
}

static const luaL_Reg pool_methods[] = {
    {"context", pool_context},   {"submit", pool_submit}, {"map", pool_map},
    {"channel", pool_channel},   {"share", pool_share},   {"shared", pool_shared},
    {"shutdown", pool_shutdown}, {"stats", pool_stats},   {NULL, NULL},
};

static const luaL_Reg pool_meta[] = {
    {"__gc", pool_gc},
    {"__close", pool_close},
    {"__tostring", pool_tostring},
    {NULL, NULL},
};

void interp__lm_pool_register(lua_State *L)
{
    interp__lm_register_class(L, LM_POOL_MT, pool_meta, pool_methods);
}
