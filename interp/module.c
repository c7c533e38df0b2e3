/* module.c - the `interp` Lua module of every worker state, print to the pool's sink, and an
 * os.exit that raises instead of ending the host process. */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frozen_impl.h"
#include "interp_impl.h"
#include "park.h"
#include "sandbox_impl.h"

/* interp.sleep(seconds): block this worker only (no other state is affected) until the time
 * has passed or the task is interrupted; an interrupted sleep raises the cancellation error. */
static int sleep_parked(lua_State *L, interp__park *p, double until);

static int sleep_k(lua_State *L, int status, lua_KContext kc)
{
    (void)status;
    (void)kc;
    interp__park *p = interp__state_of(L)->ctx.park;
    double until = p->until;
    interp__park_resumed(p);
    return sleep_parked(L, p, until);
}

/* A context's call sleeps parked (park.h): its thread runs other work meanwhile. */
static int sleep_parked(lua_State *L, interp__park *p, double until)
{
    interp__irq_check(L);
    if (interp__now() >= until)
        return 0;
    return interp__park_yield(L, p, until, NULL, NULL, 0, sleep_k);
}

static int l_sleep(lua_State *L)
{
    double sec = luaL_checknumber(L, 1);
    luaL_argcheck(L, sec >= 0 && !isnan(sec), 1, "expected a non-negative number of seconds");
    interp_state *s = interp__state_of(L);
    interp__irq_check(L);
    if (sec > 0 && interp__park_can(s->ctx.park, L))
        return sleep_parked(L, s->ctx.park, interp__now() + sec);
    if (sec > 0) {
        struct timespec dl = interp__deadline_in(sec);
        interp__cancel_arm(&s->cancel, &s->sleep_mu, &s->sleep_cv);
        interp__mutex_lock(&s->sleep_mu);
        while (!interp__cancel_reason(&s->cancel) &&
               interp__cond_wait_until(&s->sleep_cv, &s->sleep_mu, &dl)) {
        }
        interp__mutex_unlock(&s->sleep_mu);
        interp__cancel_disarm(&s->cancel);
        interp__irq_check(L);
    }
    return 0;
}

/* ---- interrupt polls ------------------------------------------------------------------
 * If the task is interrupted, call an empty Lua function: its one instruction meets the
 * cancellation hook exactly as the task's own code would (the first raise, the quiet grace,
 * then a raise at every poll), so C loops that poll behave like Lua loops. Costs one atomic
 * load while no interrupt is pending. */

static const char poll_fn_key = 0; /* registry: the empty Lua function */

/* The function is made at the first poll that finds an interrupt (most states never see one:
 * ~0.4 KiB of heap each, which an idle context would keep for nothing). If it cannot be made
 * (memory), that error is raised instead: the run is interrupted all the same, and its
 * outcome is the interrupt's (call.c reads the reason first). */
void interp__poll_irq(lua_State *L)
{
    if (!interp__cancel_reason(&interp__state_of(L)->cancel))
        return;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &poll_fn_key) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        if (luaL_loadbufferx(L, "", 0, "=poll", "t") != LUA_OK)
            lua_error(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &poll_fn_key);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &poll_fn_key);
    }
    lua_call(L, 0, 0);
}

/* Sandbox: interp.channel(name [, capacity]) with a capacity of at most SANDBOX_CHAN_CAP.
 * A new channel's ring is allocated (and written) at once by the host, outside the state's
 * memory limit, under the pool's channel lock: `interp.channel('x', 2^28)` would take 4 GiB
 * of host memory. Upvalue 1: the binding's interp.channel. */
#define SANDBOX_CHAN_CAP 65536

static int sb_channel(lua_State *L)
{
    lua_Integer cap = luaL_optinteger(L, 2, 0);
    if (cap > SANDBOX_CHAN_CAP)
        return luaL_argerror(
            L, 2, lua_pushfstring(L, "capacity above %d in the sandbox", SANDBOX_CHAN_CAP));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* The module's fields into the table at the top (its registry entries are already made). */
static void add_fields(lua_State *L)
{
    interp_state *s = interp__state_of(L);
    lua_pushinteger(L, s->worker_id);
    lua_setfield(L, -2, "worker_id");
    lua_pushcfunction(L, l_sleep);
    lua_setfield(L, -2, "sleep");
    /* the channel binding (interp.channel, interp.select), channels/chan_lua.c */
    interp__chan_lua_register_ctx(L, &s->ctx);
    /* frozen values (msg/frozen_lua.c): freeze, thaw, isfrozen, buffer, next, unpack, shared;
     * mapfile outside the sandbox */
    interp__frozen_lua_add_fns(L);
    if (s->sandbox) {
        lua_getfield(L, -1, "channel");
        lua_pushcclosure(L, sb_channel, 1);
        lua_setfield(L, -2, "channel");
    }
    if (s->sh->module_ext)
        s->sh->module_ext(L, s->sh->module_ext_ud);
}

/* ---- the module, made at first use (full profile) -------------------------------------
 * Most workers of a compute pool never touch `interp`, whose fields (closures and their names)
 * are ~1 KiB of every state's heap. In the full profile the table starts empty with a
 * metatable whose __index and __pairs fill it (the names a script set meanwhile are kept)
 * and then remove the metatable; until then rawget and next see an empty table and
 * getmetatable(interp) is that metatable. The registry entries that a channel or a frozen
 * value arriving in a task's arguments needs are made at once. The sandbox's `interp` (a
 * proxy of the module) is filled at once. */

static void fill(lua_State *L, int t)
{
    lua_createtable(L, 0, 16);
    add_fields(L);
    int built = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, built)) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, t) == LUA_TNIL) {
            lua_pushvalue(L, -3);
            lua_pushvalue(L, -3);
            lua_rawset(L, t);
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setmetatable(L, t);
}

static int lazy_index(lua_State *L)
{
    /* reachable by hand (getmetatable(interp).__index): fill rawsets into argument 1 */
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    fill(L, 1);
    lua_rawget(L, 1);
    return 1;
}

static int lazy_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1))
        return 2;
    lua_pushnil(L);
    return 1;
}

static int lazy_pairs(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    fill(L, 1);
    lua_pushcfunction(L, lazy_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void interp__push_module(lua_State *L)
{
    interp_state *s = interp__state_of(L);
    interp__chan_lua_set_ctx(L);
    /* a freeze must fit under this state's memory limit */
    interp__frozen_lua_cfg fz = {.acct = s->ctx.acct,
                                 .space = s->sh->frozen_space,
                                 .mem_in_use = &s->alloc.in_use,
                                 .mem_limit = s->alloc.limit,
                                 .max_depth = s->ctx.msg_opts.max_depth,
                                 .allow_files = !s->sandbox,
                                 .poll = interp__poll_irq};
    interp__frozen_lua_set_cfg(L, &fz);
    if (s->sandbox) {
        lua_createtable(L, 0, 16);
        add_fields(L);
        return;
    }
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, lazy_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lazy_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_setmetatable(L, -2);
}

void interp__lua_check_interrupt(lua_State *L) { interp__irq_check(L); }

/* print(...): tostring of each argument, tab-separated, handed to the sink line by line (a
 * text with embedded newlines becomes several lines), each line whole. The sink is C code
 * (stdout: a write and a flush per line): a text of millions of newlines polls the interrupt
 * between lines, or it would outlive the task's deadline. */
static int l_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        if (interp__state_of(L)->sandbox) /* no heap addresses (sandbox_ids.c) */
            interp__sandbox_tolstring(L, i, NULL);
        else
            luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    interp_state *s = interp__state_of(L);
    for (;;) {
        const char *nl = memchr(text, '\n', len);
        size_t line = nl ? (size_t)(nl - text) : len;
        s->sh->print(s->sh->print_ud, s->worker_id, text, line);
        if (!nl)
            break;
        interp__poll_irq(L); /* balanced: the text stays anchored at the top */
        text += line + 1;
        len -= line + 1;
    }
    return 0;
}

void interp__print_stdout(void *ud, int worker_id, const char *line, size_t len)
{
    (void)ud;
    (void)worker_id;
    /* stdio's own lock keeps the line whole against other workers and the host's stdio. */
    flockfile(stdout);
    fwrite_unlocked(line, 1, len, stdout);
    putc_unlocked('\n', stdout);
    fflush_unlocked(stdout);
    funlockfile(stdout);
}

static int l_exit(lua_State *L)
{
    return luaL_error(L, "os.exit is not allowed in a worker (end the task with return or "
                         "error instead)");
}

/* ---- warn ---------------------------------------------------------------------------------
 * As lua5.4's (lauxlib's warning function, stderr there): off until the control message
 * "@on", "@off" turns it off again; a message may come in pieces (tocont); each whole message
 * becomes "Lua warning: <message>" on the print sink, split at newlines like print. */

enum { WARN_OFF = 0, WARN_ON = 1, WARN_CONT = 2, WARN_MAX = 4096 };

static void warn_add(interp_state *s, const char *p, size_t n)
{
    if (!s->warn_buf && !(s->warn_buf = malloc(WARN_MAX)))
        return;
    if (n > WARN_MAX - s->warn_len)
        n = WARN_MAX - s->warn_len; /* a longer message is cut */
    memcpy(s->warn_buf + s->warn_len, p, n);
    s->warn_len += n;
}

static void warn_fn(void *ud, const char *msg, int tocont)
{
    interp_state *s = ud;
    if (s->warn_mode != WARN_CONT && !tocont && msg[0] == '@') { /* a control message */
        if (strcmp(msg, "@on") == 0)
            s->warn_mode = WARN_ON;
        else if (strcmp(msg, "@off") == 0)
            s->warn_mode = WARN_OFF;
        return;
    }
    if (s->warn_mode == WARN_OFF)
        return;
    if (s->warn_mode == WARN_ON) {
        s->warn_len = 0;
        warn_add(s, "Lua warning: ", 13);
    }
    warn_add(s, msg, strlen(msg));
    s->warn_mode = tocont ? WARN_CONT : WARN_ON;
    if (tocont || !s->warn_buf)
        return;
    const char *text = s->warn_buf;
    size_t len = s->warn_len;
    for (;;) {
        const char *nl = memchr(text, '\n', len);
        size_t line = nl ? (size_t)(nl - text) : len;
        s->sh->print(s->sh->print_ud, s->worker_id, text, line);
        if (!nl)
            break;
        text += line + 1;
        len -= line + 1;
    }
    s->warn_len = 0;
}

void interp__install_warn(interp_state *s) { lua_setwarnf(s->L, warn_fn, s); }

void interp__free_warn(interp_state *s)
{
    free(s->warn_buf);
    s->warn_buf = NULL;
}

void interp__install_io(lua_State *L, int g, int os)
{
    lua_pushcfunction(L, l_print);
    lua_setfield(L, g, "print");
    lua_pushcfunction(L, l_exit);
    lua_setfield(L, os, "exit");
}
