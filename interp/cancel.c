/* cancel.c - interrupting a running task: the count hook, installed only when a task is
 * cancelled or times out, on whichever Lua thread (main thread or coroutine) is running it.
 *
 * Cost while nothing fires: none inside the VM (no hook is installed; in Lua 5.4 any count hook
 * slows every instruction); a coroutine switch takes irq_mu once before and once after.
 *
 * The race between a coroutine switch (worker thread) and the installation (another thread) is
 * closed by one mutex, as skynet's service_snlua.c does: the worker publishes the thread it is
 * about to run under irq_mu and, if the task is already interrupted, installs the hook on it
 * itself; the interrupting thread sets the reason and installs the hook on the published
 * thread under the same mutex. Either way the thread that runs next carries the hook.
 * lua_sethook is documented (ldebug.c) as safe to call asynchronously from another thread.
 *
 * Once fired, the hook raises the cancellation error at the next instruction. Then comes the
 * grace (config cancel_grace, counted from that first raise): the hook stays installed but
 * quiet (it only looks at the clock every 1000 instructions), so cleanup runs to completion:
 * <close> handlers, the task's own pcall error handling. After the grace it escalates for
 * good: count 1, raising at every instruction of every Lua thread of the task, so nothing Lua
 * code does can outlive it (`while true do pcall(function() while true do end end) end` dies
 * at once). A task that swallows the first error and returns during the grace still ends with
 * the interrupt's status (call.c checks the reason after each item).
 *
 * An interrupt may arrive just before its run enters the state (core publishes a run id, then
 * calls in): it is remembered for that id and applied by interp__irq_begin, so the first item
 * of the run already sees it. One pending interrupt is kept; a run that begins with another
 * id forgets it.
 *
 * Hooks left on coroutines are not removed at the end of the task (a coroutine may have been
 * collected meanwhile): a hook that fires while no interrupt is pending removes itself, so a
 * coroutine resumed by a later task runs hook-free after its first hook check (at most 1000
 * of its instructions). */
#include <lauxlib.h>
#include <lua.h>
#include <time.h>

#include "interp_impl.h"

enum { GRACE_COUNT = 1000 };

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

const char *interp__irq_text(int reason)
{
    switch (reason) {
    case INTERP_ERR_TIMEOUT: return "interp: task timed out";
    case INTERP_ERR_SHUTDOWN: return "interp: task stopped by pool shutdown";
    default: return "interp: task cancelled";
    }
}

static void irq_hook(lua_State *L, lua_Debug *ar);

long long interp__irq_grace_end(const interp_state *s)
{
    return now_ns() + (long long)(s->sh->cancel_grace * 1e9);
}

/* The hook counts instructions and also sees every call: a C function looping over callbacks
 * (table.sort with a C comparator, say) runs no Lua instruction, but each callback is a call.
 * Neither costs anything until an interrupt installs the hook. */
#define IRQ_MASK (LUA_MASKCOUNT | LUA_MASKCALL)

/* Install the hook on L in the current mode (worker thread or, under irq_mu, the
 * interrupting thread): every instruction before the first raise and after the grace,
 * every GRACE_COUNT instructions (a look at the clock) during the grace. */
static void arm(interp_state *s, lua_State *L)
{
    bool quiet = atomic_load_explicit(&s->raised, memory_order_relaxed) &&
                 !atomic_load_explicit(&s->escalated, memory_order_relaxed);
    int count = quiet ? GRACE_COUNT : 1;
    /* Re-arming resets the countdown: a loop that switches threads more often than every
     * GRACE_COUNT instructions would never see its hook fire. Leave a matching hook alone. */
    if (lua_gethook(L) == irq_hook && lua_gethookmask(L) == IRQ_MASK &&
        lua_gethookcount(L) == count)
        return;
    lua_sethook(L, irq_hook, IRQ_MASK, count);
}

#define raise_interrupt interp__irq_raise

static void irq_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    interp_state *s = interp__state_of(L);
    int reason = interp__cancel_reason(&s->cancel);
    if (!reason) {
        /* A hook left from an earlier task on a coroutine. Remove it, unless an interrupt is
         * being installed right now (then keep it: it is armed again). */
        interp__mutex_lock(&s->irq_mu);
        if (!interp__cancel_reason(&s->cancel))
            lua_sethook(L, NULL, 0, 0);
        interp__mutex_unlock(&s->irq_mu);
        return;
    }
    if (!atomic_load_explicit(&s->raised, memory_order_relaxed)) {
        lua_sethook(L, irq_hook, IRQ_MASK, GRACE_COUNT);
        raise_interrupt(L, s, reason);
    }
    if (!atomic_load_explicit(&s->escalated, memory_order_relaxed)) {
        if (now_ns() < atomic_load_explicit(&s->escalate_at, memory_order_relaxed))
            return; /* grace: let cleanup run */
        atomic_store_explicit(&s->escalated, true, memory_order_relaxed);
    }
    if (lua_gethookcount(L) != 1)
        lua_sethook(L, irq_hook, IRQ_MASK, 1);
    raise_interrupt(L, s, reason);
}

/* Under irq_mu: interrupt the running task (s->current is the Lua thread running it). */
static void fire_locked(interp_state *s, int reason)
{
    atomic_store_explicit(&s->escalate_at, interp__irq_grace_end(s), memory_order_relaxed);
    atomic_store_explicit(&s->escalated, false, memory_order_relaxed);
    atomic_store_explicit(&s->raised, false, memory_order_relaxed);
    /* Fire first (wakes sleep and channel waits), then hook the running thread. */
    interp__cancel_fire(&s->cancel, reason);
    arm(s, s->current);
}

void interp__irq_begin(interp_state *s, uint64_t task_id)
{
    interp__mutex_lock(&s->irq_mu);
    s->running_task = task_id;
    s->last_task = task_id;
    s->current = s->L;
    /* An interrupt that arrived before the run entered the state applies now (the first item
     * checks the reason before it starts); one meant for another run is forgotten. */
    if (s->pending_task == task_id && s->pending_reason)
        fire_locked(s, s->pending_reason);
    s->pending_task = 0;
    s->pending_reason = 0;
    interp__mutex_unlock(&s->irq_mu);
}

int interp__irq_end(interp_state *s)
{
    interp__mutex_lock(&s->irq_mu);
    s->running_task = 0;
    s->current = NULL;
    int reason = interp__cancel_reason(&s->cancel);
    if (reason) {
        lua_sethook(s->L, NULL, 0, 0);
        interp__cancel_reset(&s->cancel);
        atomic_store_explicit(&s->escalated, false, memory_order_relaxed);
        atomic_store_explicit(&s->raised, false, memory_order_relaxed);
    }
    interp__mutex_unlock(&s->irq_mu);
    return reason;
}

void interp__state_interrupt(interp_state *s, uint64_t task_id, int reason)
{
    if (!s || task_id == 0)
        return;
    if (reason != INTERP_ERR_TIMEOUT && reason != INTERP_ERR_SHUTDOWN)
        reason = INTERP_ERR_CANCELLED;
    interp__mutex_lock(&s->irq_mu);
    if (s->running_task == task_id) {
        if (!interp__cancel_reason(&s->cancel))
            fire_locked(s, reason);
    } else if (task_id != s->last_task && !(s->pending_task == task_id && s->pending_reason)) {
        /* Not begun yet (the caller publishes a run just before it enters the state): remember
         * it for interp__irq_begin. The first reason wins, as for a running task. A run that
         * has ended (last_task) is not interrupted any more. */
        s->pending_task = task_id;
        s->pending_reason = reason;
    }
    interp__mutex_unlock(&s->irq_mu);
}

uint64_t interp__state_items(const interp_state *s)
{
    return atomic_load_explicit(&((interp_state *)s)->items, memory_order_relaxed);
}

lua_State *interp__irq_switch(interp_state *s, lua_State *to)
{
    interp__mutex_lock(&s->irq_mu);
    lua_State *prev = s->current;
    s->current = to;
    if (to && interp__cancel_reason(&s->cancel))
        arm(s, to);
    interp__mutex_unlock(&s->irq_mu);
    return prev;
}



/* ---- coroutine.resume / wrap / close, tracking the running thread -------------------- */

/* Resume co with the narg values on top of L. Returns the number of results moved to L, or -1
 * with an error value on top of L. */
static int resume_tracked(lua_State *L, lua_State *co, int narg)
{
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    lua_xmove(L, co, narg);
    interp_state *s = interp__state_of(L);
    lua_State *prev = interp__irq_switch(s, co);
    int nres = 0;
    int st = lua_resume(co, L, narg, &nres);
    interp__irq_switch(s, prev);
    if (st == LUA_OK || st == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);
    return -1;
}

/* Close the to-be-closed variables of a dead or suspended coroutine, with co marked as the
 * running thread (its __close handlers are Lua code the hook must reach). Returns the status
 * of lua_resetthread; on error its error value is pushed on L. A coroutine that died from the
 * cancellation error is not closed while the task is interrupted: Lua left hooks disabled on
 * it (the error came out of a hook), so its handlers could not be stopped. */
static int close_tracked(lua_State *L, lua_State *co)
{
    interp_state *s = interp__state_of(L);
    int st = lua_status(co);
    int reason = interp__cancel_reason(&s->cancel);
    if (st != LUA_OK && st != LUA_YIELD && reason) {
        lua_pushstring(L, interp__irq_text(reason));
        return st;
    }
    lua_State *prev = interp__irq_switch(s, co);
    st = lua_resetthread(co);
    interp__irq_switch(s, prev);
    if (st != LUA_OK)
        lua_xmove(co, L, 1);
    return st;
}

static lua_State *check_co(lua_State *L, int arg)
{
    lua_State *co = lua_tothread(L, arg);
    luaL_argexpected(L, co != NULL, arg, "coroutine");
    return co;
}

static int co_resume(lua_State *L)
{
    lua_State *co = check_co(L, 1);
    int n = resume_tracked(L, co, lua_gettop(L) - 1);
    if (n < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(n + 1));
    return n + 1;
}

static int co_wrapped(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int n = resume_tracked(L, co, lua_gettop(L));
    if (n >= 0)
        return n;
    int st = lua_status(co);
    if (st != LUA_OK && st != LUA_YIELD) {
        /* The coroutine died: close its variables, report the error they end with. */
        st = close_tracked(L, co);
        if (st != LUA_OK)
            lua_remove(L, -2); /* the error the closing ended with replaces the first */
    }
    if (st != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING &&
        !interp__cancel_reason(&interp__state_of(L)->cancel)) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int co_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, co_wrapped, 1);
    return 1;
}

static int co_close(lua_State *L)
{
    lua_State *co = check_co(L, 1);
    int st = lua_status(co);
    lua_Debug ar;
    bool closable;
    if (co == L)
        closable = false; /* running */
    else if (st == LUA_YIELD)
        closable = true;
    else if (st == LUA_OK)
        closable = !lua_getstack(co, 0, &ar); /* not "normal" (it resumed another) */
    else
        closable = true; /* dead with an error */
    if (!closable)
        return luaL_error(L, "cannot close a %s coroutine", co == L ? "running" : "normal");
    st = close_tracked(L, co);
    if (st == LUA_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

void interp__wrap_coroutines(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"resume", co_resume}, {"wrap", co_wrap}, {"close", co_close}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}

/* ---- xpcall whose message handler never runs in an interrupted task -------------------
 * Lua calls a message handler with hooks disabled when the error came out of a hook (the
 * cancellation error does), so a looping handler could not be stopped. This xpcall calls the
 * user's handler only while the task is not interrupted; otherwise the error passes through
 * unchanged. Tracebacks taken by a handler of an ordinary error stay exact. */

static int xpcall_handler(lua_State *L)
{
    if (interp__cancel_reason(&interp__state_of(L)->cancel))
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int xpcall_guarded(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushboolean(L, 1);       /* first result if no error */
    lua_pushvalue(L, 1);         /* function */
    lua_rotate(L, 3, 2);         /* move both below the arguments */
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, xpcall_handler, 1);
    lua_replace(L, 2);           /* the guarded handler takes the user's place */
    int st = lua_pcall(L, n - 2, LUA_MULTRET, 2);
    if (st != LUA_OK) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    return lua_gettop(L) - 2;
}

void interp__push_xpcall(lua_State *L)
{
    lua_pushcfunction(L, xpcall_guarded);
}
