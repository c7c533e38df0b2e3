/* cancel.c - interrupting a running task: the count hook, installed only when a task is
 * cancelled or times out, on every Lua thread of the state that may run it. Nothing of it is
 * visible to Lua code while no interrupt is pending: coroutine.*, xpcall and debug.sethook are
 * Lua's own, and no hook is installed (in Lua 5.4 any count hook slows every instruction).
 *
 * Finding the thread that runs. Hooks are per Lua thread, and the running one may be any
 * coroutine. The allocator keeps the set of the state's coroutines (threads.c: Lua announces
 * each thread it allocates), so the interrupting thread installs the hook on the main thread
 * and on every coroutine that may be running (status LUA_OK: running, normal, not started or
 * finished) under the set's lock, which no free of a coroutine passes. lua_sethook only sets a
 * few fields (ldebug.c documents it as safe from a signal handler); a running thread picks
 * them up at its next instruction. Suspended and dead coroutines are left alone from another
 * thread (their fields belong to whoever resumes or closes them): the first hook that fires
 * runs on the worker and arms every coroutine of the set, so any that is resumed or closed
 * later runs hooked, and coroutines created meanwhile inherit the hook from their creator
 * (lua_newthread copies it). One window stays: a coroutine resumed between the interrupt's
 * pass and the first hook. The pool's watchdog closes it by re-arming the threads that may run
 * every INTERP__IRQ_REARM_S while the interrupted task has not ended
 * (interp__state_rearm), which also takes back a hook that the task removed or replaced with
 * debug.sethook.
 *
 * What the hook does. Once fired it raises the cancellation error at the next instruction.
 * Then comes the grace (config cancel_grace, counted from that first raise): the hook stays
 * installed but quiet (it only looks at the clock every GRACE_COUNT instructions), so cleanup
 * runs to completion: <close> handlers, the task's own pcall error handling. After the grace
 * it escalates for good: count 1, striking at every instruction of every Lua thread of the
 * task, so nothing Lua code does can outlive it (`while true do pcall(function() while true
 * do end end) end` dies at once). A task that swallows the error and returns during the grace
 * still ends with the interrupt's status (call.c checks the reason after each item).
 *
 * Striking the run's base thread (the main thread of a pool task) raises the error; its
 * protected call gives hooks back on the way out. Striking another coroutine yields it
 * instead, where Lua allows that (a count event, no C call boundary below): its resumer
 * continues at once and meets its own hook. Raising there would kill the coroutine with hooks
 * disabled for good (Lua turns them off while a hook runs and only a protected call inside
 * the thread turns them back on), so its <close> handlers, run by whoever closes it later,
 * could never be stopped. Where a coroutine cannot yield (inside table.sort's comparator, a
 * gsub callback, ...) the error is raised; if nothing inside the coroutine can catch it, its
 * pending <close> values are defused first (their slots get a value whose __close does
 * nothing), since no hook could stop them. Lua also calls an xpcall message handler with
 * hooks disabled when the error comes out of a hook: before raising, the nearest handler on
 * the thread's stack (the error goes there) is swapped for one that returns the error as it
 * is. Each of these acts only in an interrupted task.
 *
 * What a task leaves: at its end every hook of the interrupt is taken off every coroutine and
 * the main thread's hook is set back to what the initializer left (none, or the initializer's
 * own: a coverage hook installed by the initializer sees every task). A hook a task installed
 * on a coroutine stays with that coroutine, as in Lua; one that an interrupt displaced is
 * gone.
 *
 * An interrupt may arrive just before its run enters the state (core publishes a run id, then
 * calls in): it is remembered for that id and applied by interp__irq_begin, so the first item
 * of the run already sees it. One pending interrupt is kept; a run that begins with another
 * id forgets it. */
#include <lauxlib.h>
#include <lua.h>
#include <time.h>

#include "interp_impl.h"

enum { GRACE_COUNT = 1000, REARM_BURST = 1000 };

/* The hook counts instructions and also sees every call: a C function looping over callbacks
 * (table.sort with a C comparator, say) runs no Lua instruction, but each callback is a call.
 * Neither costs anything until an interrupt installs the hook. */
#define IRQ_MASK (LUA_MASKCOUNT | LUA_MASKCALL)

static const char defused_key = 0; /* registry: the value a defused <close> slot gets */

long long interp__irq_grace_end(const interp_state *s)
{
    return (long long)interp__now_ns() + (long long)(s->sh->cancel_grace * 1e9);
}

static void irq_hook(lua_State *L, lua_Debug *ar);
static int restore_init_hook(lua_State *L);

/* Every instruction before the first raise and after the grace; every GRACE_COUNT
 * instructions (a look at the clock) during the grace. */
static int hook_count(const interp_state *s)
{
    bool quiet = atomic_load_explicit(&s->raised, memory_order_relaxed) &&
                 !atomic_load_explicit(&s->escalated, memory_order_relaxed);
    return quiet ? GRACE_COUNT : 1;
}

static void arm(lua_State *T, int count)
{
    /* Re-arming resets the countdown: a loop that switches threads more often than every
     * GRACE_COUNT instructions would never see its hook fire. Leave a matching hook alone. */
    if (lua_gethook(T) == irq_hook && lua_gethookmask(T) == IRQ_MASK &&
        lua_gethookcount(T) == count)
        return;
    lua_sethook(T, irq_hook, IRQ_MASK, count);
}

typedef struct arm_pass {
    int count;
    bool all; /* the worker itself: every coroutine; another thread: those that may run */
} arm_pass;

/* From another thread the hook is always set again, even when it looks installed: the
 * worker's own stores race with ours (its countdown runs on while we reset it, a
 * debug.sethook of the task lands between our fields), and a torn result (the countdown
 * below zero, or the mask without the function) would never fire. Every re-arm is a fresh
 * start. */
static void arm_one(lua_State *co, void *ud)
{
    const arm_pass *p = ud;
    if (p->all)
        arm(co, p->count);
    else if (lua_status(co) == LUA_OK)
        lua_sethook(co, irq_hook, IRQ_MASK, p->count);
}

static void arm_threads(interp_state *s, bool all)
{
    arm_pass p = {.count = hook_count(s), .all = all};
    arm_one(s->L, &p);
    interp__threads_each(&s->threads, arm_one, &p);
}

static void disarm_one(lua_State *co, void *ud)
{
    (void)ud;
    if (lua_gethook(co) == irq_hook)
        lua_sethook(co, NULL, 0, 0);
}

/* ---- what a strike does besides raising ----------------------------------------------- */

static int pass_error(lua_State *L)
{
    lua_settop(L, 1);
    return 1;
}

static int close_nothing(lua_State *L)
{
    (void)L;
    return 0;
}

/* The level of the nearest pcall or xpcall frame on L's stack (where an error raised now
 * goes), -1 when none; *is_xpcall says which. */
static int nearest_protection(lua_State *L, interp_state *s, bool *is_xpcall, lua_Debug *at)
{
    for (int level = 0; lua_getstack(L, level, at); level++) {
        if (!lua_getinfo(L, "f", at))
            continue;
        lua_CFunction f = lua_tocfunction(L, -1);
        lua_pop(L, 1);
        if (f && (f == s->pcall_fn || f == s->xpcall_fn)) {
            *is_xpcall = f == s->xpcall_fn;
            return level;
        }
    }
    return -1;
}

/* Give every local of L's stack that holds a value with a __close metamethod a value whose
 * __close does nothing. Only for a coroutine about to die of the error: nothing of it runs
 * again but its <close> handlers, with hooks disabled. */
static void defuse_closers(lua_State *L)
{
    lua_Debug ar;
    for (int level = 0; lua_getstack(L, level, &ar); level++) {
        const char *name;
        for (int i = 1; (name = lua_getlocal(L, &ar, i)) != NULL; i++) {
            if (luaL_getmetafield(L, -1, "__close") != LUA_TNIL) {
                lua_pop(L, 2);
                lua_rawgetp(L, LUA_REGISTRYINDEX, &defused_key);
                if (!lua_setlocal(L, &ar, i))
                    lua_pop(L, 1);
            } else {
                lua_pop(L, 1);
            }
        }
    }
}

/* Raise the cancellation error on L from the hook. */
static void strike_raise(lua_State *L, interp_state *s, int reason, bool coroutine)
{
    lua_Debug at;
    bool is_xpcall = false;
    int level = nearest_protection(L, s, &is_xpcall, &at);
    if (level >= 0 && is_xpcall) {
        /* the handler sits in xpcall's second slot; the error handler index points there */
        lua_pushcfunction(L, pass_error);
        if (!lua_setlocal(L, &at, 2))
            lua_pop(L, 1);
    } else if (level < 0 && coroutine) {
        defuse_closers(L);
    }
    if (!atomic_load_explicit(&s->raised, memory_order_relaxed)) {
        /* the grace starts now: every thread goes quiet (count GRACE_COUNT) */
        atomic_store_explicit(&s->escalate_at, interp__irq_grace_end(s), memory_order_relaxed);
        atomic_store_explicit(&s->raised, true, memory_order_relaxed);
        arm_threads(s, true);
    }
    interp__irq_raise(L, s, reason);
}

static void irq_hook(lua_State *L, lua_Debug *ar)
{
    interp_state *s = interp__state_of(L);
    int reason = interp__cancel_reason(&s->cancel);
    if (!reason) {
        /* Not reached: the task's end takes every hook off before it forgets the reason. */
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    if (L != s->base && lua_isyieldable(L) && ar->event == LUA_HOOKCALL) {
        /* A coroutine that can yield is yielded at its next count event, unless the function
         * it calls now is C code: that may take the hook off or loop, so strike now. */
        if (!lua_getinfo(L, "S", ar) || ar->what[0] != 'C')
            return;
    }
    /* seen by interp__state_rearm: the hook is in control now */
    atomic_store_explicit(&s->hook_fires,
                          atomic_load_explicit(&s->hook_fires, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (!s->armed_all) { /* first hook of this interrupt on the worker: arm every coroutine */
        s->armed_all = true;
        arm_threads(s, true);
    }
    if (atomic_load_explicit(&s->raised, memory_order_relaxed) &&
        !atomic_load_explicit(&s->escalated, memory_order_relaxed)) {
        if ((long long)interp__now_ns() <
            atomic_load_explicit(&s->escalate_at, memory_order_relaxed)) {
            arm(L, GRACE_COUNT); /* grace: let cleanup run */
            return;
        }
        atomic_store_explicit(&s->escalated, true, memory_order_relaxed);
        arm_threads(s, true);
    }
    if (L == s->base) {
        strike_raise(L, s, reason, false);
        return;
    }
    if (lua_isyieldable(L) && (ar->event == LUA_HOOKCOUNT || ar->event == LUA_HOOKLINE)) {
        lua_yield(L, 0); /* only count and line events may yield */
        return;
    }
    strike_raise(L, s, reason, true);
}

/* ---- the interrupt's life ------------------------------------------------------------- */

/* Under irq_mu: interrupt the running task. */
static void fire_locked(interp_state *s, int reason)
{
    atomic_store_explicit(&s->escalate_at, interp__irq_grace_end(s), memory_order_relaxed);
    atomic_store_explicit(&s->escalated, false, memory_order_relaxed);
    atomic_store_explicit(&s->raised, false, memory_order_relaxed);
    /* Fire first (wakes sleep and channel waits), then hook the threads. */
    interp__cancel_fire(&s->cancel, reason);
    arm_threads(s, false);
}

void interp__irq_begin(interp_state *s, uint64_t task_id)
{
    interp__irq_begin_on(s, task_id, s->L);
}

void interp__irq_begin_on(interp_state *s, uint64_t task_id, lua_State *base)
{
    interp__mutex_lock(&s->irq_mu);
    s->running_task = task_id;
    s->last_task = task_id;
    s->base = base;
    s->armed_all = false;
    /* An interrupt that arrived before the run entered the state applies now (the first item
     * checks the reason before it starts); one meant for another run is forgotten. */
    if (s->pending_task == task_id && s->pending_reason)
        fire_locked(s, s->pending_reason);
    s->pending_task = 0;
    s->pending_reason = 0;
    interp__mutex_unlock(&s->irq_mu);
}

void interp__irq_begin_closing(interp_state *s, uint64_t *task_id, lua_State *base, int reason)
{
    if (!*task_id)
        *task_id = s->last_task + 1;
    interp__irq_begin_on(s, *task_id, base);
    interp__mutex_lock(&s->irq_mu);
    if (!interp__cancel_reason(&s->cancel))
        fire_locked(s, reason);
    /* as after the first raise: the grace runs from now */
    atomic_store_explicit(&s->escalate_at, interp__irq_grace_end(s), memory_order_relaxed);
    atomic_store_explicit(&s->raised, true, memory_order_relaxed);
    interp__mutex_unlock(&s->irq_mu);
    /* a suspended coroutine is left alone by the interrupt's pass: this thread holds it */
    arm(base, hook_count(s));
}

int interp__irq_end(interp_state *s)
{
    interp__mutex_lock(&s->irq_mu);
    s->running_task = 0;
    int reason = interp__cancel_reason(&s->cancel);
    if (reason) {
        /* no interrupting thread arms anything any more (running_task is 0): take every hook
         * of the interrupt off, then forget it */
        interp__threads_each(&s->threads, disarm_one, NULL);
        interp__cancel_reset(&s->cancel);
        atomic_store_explicit(&s->escalated, false, memory_order_relaxed);
        atomic_store_explicit(&s->raised, false, memory_order_relaxed);
    }
    interp__mutex_unlock(&s->irq_mu);
    lua_State *L = s->L;
    if (lua_gethook(L) || s->init_hook) { /* nothing to do (no Lua call) in the usual case */
        lua_pushcfunction(L, restore_init_hook);
        lua_pushlightuserdata(L, s);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            lua_pop(L, 1);
            lua_sethook(L, NULL, 0, 0); /* out of memory: at least no stale hook */
        }
    }
    return reason;
}

/* The debug library keeps the Lua function of a hook in its registry table _HOOKKEY, by
 * thread (the C hook it installs is always the same): both go back to the initializer's. */
static const char init_hook_fn_key = 0; /* registry: that function after the initializer */

static int restore_init_hook(lua_State *L)
{
    interp_state *s = lua_touserdata(L, 1);
    lua_sethook(L, s->init_hook, s->init_hook_mask, s->init_hook_count);
    if (lua_getfield(L, LUA_REGISTRYINDEX, "_HOOKKEY") == LUA_TTABLE) {
        lua_pushthread(L);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &init_hook_fn_key);
        lua_rawset(L, -3);
    }
    return 0;
}

static int keep_init_hook(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, "_HOOKKEY") == LUA_TTABLE) {
        lua_pushthread(L);
        lua_rawget(L, -2);
    } else {
        lua_pushnil(L);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &init_hook_fn_key);
    return 0;
}

void interp__irq_keep_init_hook(interp_state *s)
{
    lua_State *L = s->L;
    s->init_hook = lua_gethook(L);
    s->init_hook_mask = lua_gethookmask(L);
    s->init_hook_count = lua_gethookcount(L);
    if (s->init_hook) {
        lua_pushcfunction(L, keep_init_hook);
        if (lua_pcall(L, 0, 0, 0) != LUA_OK)
            lua_pop(L, 1);
    }
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

void interp__state_rearm(interp_state *s, uint64_t task_id)
{
    if (!s || task_id == 0)
        return;
    interp__mutex_lock(&s->irq_mu);
    if (s->running_task == task_id && interp__cancel_reason(&s->cancel)) {
        /* A task that keeps taking the hook off (debug.sethook in a loop) spends most of its
         * time in that C function, where our hook is installed only to be removed: arm again
         * until the hook has been seen to fire, a few hundred times at most (microseconds). */
        unsigned seen = atomic_load_explicit(&s->hook_fires, memory_order_relaxed);
        for (int i = 0; i < REARM_BURST; i++) {
            arm_threads(s, false);
            if (atomic_load_explicit(&s->hook_fires, memory_order_relaxed) != seen)
                break;
        }
    }
    interp__mutex_unlock(&s->irq_mu);
}

uint64_t interp__state_items(const interp_state *s)
{
    return atomic_load_explicit(&((interp_state *)s)->items, memory_order_relaxed);
}

/* Protected, after the profile is open: what the hook needs of the state. */
void interp__irq_open(lua_State *L)
{
    interp_state *s = interp__state_of(L);
    lua_getglobal(L, "pcall");
    s->pcall_fn = lua_tocfunction(L, -1);
    lua_getglobal(L, "xpcall");
    s->xpcall_fn = lua_tocfunction(L, -1);
    lua_pop(L, 2);
    lua_newtable(L);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, close_nothing);
    lua_setfield(L, -2, "__close");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &defused_key);
}

/* ---- preemption of a context's call (core/ctx.c) -------------------------------------- */

static void preempt_hook(lua_State *L, lua_Debug *ar)
{
    interp_state *s = interp__state_of(L);
    if (L != s->base) { /* a coroutine made while it was armed inherited it */
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    if (ar->event == LUA_HOOKCOUNT && lua_isyieldable(L)) {
        lua_sethook(L, NULL, 0, 0);
        s->preempt_yield = true;
        lua_yield(L, 0); /* count hooks may yield (Lua 5.4) */
        return;
    }
    lua_sethook(L, preempt_hook, LUA_MASKCOUNT, 1000); /* inside a C boundary: later */
}

void interp__state_preempt(interp_state *s, uint64_t task_id)
{
    if (!s || task_id == 0)
        return;
    interp__mutex_lock(&s->irq_mu);
    if (s->running_task == task_id && s->base != s->L && !interp__cancel_reason(&s->cancel) &&
        !lua_gethook(s->base))
        lua_sethook(s->base, preempt_hook, LUA_MASKCOUNT, 1);
    interp__mutex_unlock(&s->irq_mu);
}

void interp__preempt_disarm(lua_State *co)
{
    if (lua_gethook(co) == preempt_hook)
        lua_sethook(co, NULL, 0, 0);
}
