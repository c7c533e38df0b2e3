/* state.c - create and destroy a worker state: allocator, extra-space context, profile,
 * initializer (from the pool's cached bytecode). */
#include <lauxlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_impl.h"
#include "msg_inner.h"
#include "msg_shstr.h"

/* Every call into a state is protected, so a panic is a bug of this library: say so loudly
 * rather than let Lua call abort() silently. */
static int on_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "interp_pool: unprotected Lua error: %s\n", msg ? msg : "(not a string)");
    fflush(stderr);
    return 0; /* Lua aborts */
}

static int traceback_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Protected: open the library profile. */
static int open_libs(lua_State *L)
{
    interp__open_profile(L);
    interp__irq_open(L);
    return 0;
}

/* Protected: the allocator sees coroutines where lua_getextraspace says they are (threads.h);
 * a Lua built otherwise cannot be interrupted inside coroutines, so it is refused. */
static int check_threads(lua_State *L)
{
    interp_state *s = lua_touserdata(L, 1);
    lua_State *co = lua_newthread(L);
    if (!interp__threads_has(&s->threads, co))
        return luaL_error(L, "this Lua build does not allocate threads as Lua 5.4 does "
                             "(lua_getextraspace): coroutines could not be interrupted");
    return 0;
}

/* Protected: load the initializer's bytecode and run it with its args. */
static int run_init(lua_State *L)
{
    interp_state *s = lua_touserdata(L, 1);
    if (s->sh->init_code) {
        /* The bytecode was made by this library from the configured source: trusted, so it
         * is loaded with mode "b" in every profile. */
        if (luaL_loadbufferx(L, s->sh->init_code, s->sh->init_code_len, "=init", "b") != LUA_OK)
            return lua_error(L);
        if (s->sandbox)
            interp__sandbox_keep_init(L, -1);
        int nargs = 0;
        if (s->sh->init_args)
            nargs = interp_msg_push_lua(L, s->sh->init_args, &s->sh->msg_opts);
        lua_call(L, nargs, 0);
    }
    return 0;
}

/* Run step (open_libs, the host's steps or run_init) protected; on error set *err to
 * `what` and the message, and return its status. */
static int protected_step(interp_state *s, lua_CFunction step, const char *what, char **err)
{
    lua_State *L = s->L;
    lua_pushcfunction(L, traceback_handler);
    lua_pushcfunction(L, step);
    lua_pushlightuserdata(L, s);
    int st = lua_pcall(L, 1, 0, 1);
    int rc = INTERP_OK;
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (st == LUA_ERRMEM || (st == LUA_ERRERR && s->alloc.failed) || s->alloc.failed) {
            rc = INTERP_ERR_NOMEM;
            *err = interp__strdupf("cannot create a state: out of memory (%s)",
                                   msg ? msg : "no message");
        } else {
            rc = INTERP_ERR_SCRIPT;
            *err = interp__strdupf("%s%s", what, msg ? msg : "(no message)");
        }
    }
    lua_settop(L, 0);
    return rc;
}

int interp__state_init(interp_state *s, char **err)
{
    *err = NULL;
    int rc = protected_step(s, run_init, "initializer failed: ", err);
    interp__irq_keep_init_hook(s);
    return rc;
}

/* The parts of a state around its lua_State, made and freed together (the slab cache is
 * made later, by the first call that needs it). */
static void free_parts(interp_state *s)
{
    interp__account_detach(s->ctx.acct);  /* a later charge must not read the freed heap */
    interp__account_release(s->ctx.acct); /* what it charged stays until refunded */
    interp__slab_cache_release(s->slab_cache);
    interp__cond_destroy(&s->sleep_cv);
    interp__mutex_destroy(&s->sleep_mu);
    interp__threads_destroy(&s->threads);
    interp__mutex_destroy(&s->irq_mu);
    interp__cancel_destroy(&s->cancel);
    interp__alloc_pack_free(&s->alloc); /* after lua_close: its objects are gone */
    free(s);
}

/* A state without its lua_State yet: its allocator, locks, interrupt and the context its Lua
 * bindings reach. NULL when out of memory. */
static interp_state *new_parts(interp_shared *sh, int worker_id)
{
    interp_state *s = interp__malloc(sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->sh = sh;
    s->worker_id = worker_id;
    s->sandbox = sh->sandbox == INTERP_SANDBOX_SAFE;
    s->alloc.limit = sh->memory_limit;
    atomic_init(&s->alloc.in_use, 0);
    atomic_init(&s->alloc.peak, 0);
    atomic_init(&s->escalate_at, 0);
    atomic_init(&s->escalated, false);
    atomic_init(&s->raised, false);
    atomic_init(&s->hook_fires, 0);
    interp__cancel_init(&s->cancel);
    interp__mutex_init(&s->irq_mu);
    interp__threads_init(&s->threads);
    interp__mutex_init(&s->sleep_mu);
    interp__cond_init(&s->sleep_cv);
    s->ctx.cancel = &s->cancel;
    s->ctx.msg_opts = sh->msg_opts;
    s->ctx.worker_id = worker_id;
    s->ctx.chan_lookup = sh->chan_lookup;
    s->ctx.chan_lookup_ud = sh->chan_lookup_ud;
    /* an account when something would count: a pool total, or a sandbox's own limit */
    size_t state_limit = s->sandbox ? sh->memory_limit : 0;
    if (sh->budget && (sh->budget->limit || state_limit)) {
        s->ctx.acct = interp__account_new(sh->budget, &s->alloc.in_use, state_limit);
        if (!s->ctx.acct) {
            free_parts(s);
            return NULL;
        }
        if (state_limit)
            s->alloc.held = &s->ctx.acct->held_state;
    }
    return s;
}

/* Open s's lua_State: the libraries of its profile, then the host's additions (steps of their
 * own, skipped when not configured: a state per worker start; most pools have none). */
static int open_lua(interp_state *s, char **err)
{
    interp__shstr_enable(interp__alloc_fn); /* its large strings can cross without a copy */
    /* the objects made until the seal (the end of this function) are packed (alloc.c) */
    interp__alloc_pack_open(&s->alloc, &s->sh->pack_hint);
    s->L = lua_newstate(interp__alloc_fn, &s->alloc);
    if (!s->L) {
        *err = interp__strdupf("cannot create a state: out of memory");
        return INTERP_ERR_NOMEM;
    }
    lua_atpanic(s->L, on_panic);
    interp__install_warn(s);
    interp__lua_ctx_set(s->L, &s->ctx);
    s->alloc.threads = &s->threads; /* from now on: every coroutine is kept in the set */

    /* A property of the Lua library: checked by the first state of the process only (the
     * coroutine it makes would stay in every state's heap until a collection). */
    static atomic_int threads_ok; /* 0: not checked yet, 1: checked, as Lua 5.4 does */
    int rc = INTERP_OK;
    if (!atomic_load_explicit(&threads_ok, memory_order_acquire)) {
        rc = protected_step(s, check_threads, "", err);
        if (rc == INTERP_OK)
            atomic_store_explicit(&threads_ok, 1, memory_order_release);
    }
    if (rc == INTERP_OK)
        rc = protected_step(s, open_libs, "initializer failed: ", err);
    if (rc == INTERP_OK && interp__hostlibs_wanted(s->sh))
        rc = protected_step(s, interp__open_hostlibs, "", err);
    if (rc == INTERP_OK && s->sh->on_state)
        rc = protected_step(s, interp__run_on_state, "on_state failed: ", err);
    /* What the initializer and the tasks make is malloc'd (alloc.c: its garbage would leave
     * holes in the pack for good); sh's hint is its one mutable field. */
    interp__alloc_pack_seal(&s->alloc, (atomic_size_t *)&s->sh->pack_hint);
    if (rc != INTERP_OK) {
        lua_close(s->L);
        interp__free_warn(s);
    }
    return rc;
}

int interp__state_open(interp_shared *sh, int worker_id, interp_state **out, char **err)
{
    *out = NULL;
    *err = NULL;
    if (!sh) {
        *err = interp__strdupf("no shared configuration");
        return INTERP_ERR_INVALID;
    }
    interp_state *s = new_parts(sh, worker_id);
    if (!s) {
        *err = interp__strdupf("cannot create a state: out of memory");
        return INTERP_ERR_NOMEM;
    }
    int rc = open_lua(s, err);
    if (rc != INTERP_OK) {
        free_parts(s);
        return rc;
    }
    *out = s;
    return INTERP_OK;
}

void interp__state_destroy(interp_state *s)
{
    if (!s)
        return;
    interp__state_call_close(s, 0, INTERP_ERR_SHUTDOWN); /* a call left suspended: closed */
    lua_close(s->L); /* frees the coroutines through the allocator and the set */
    interp__free_warn(s);
    free_parts(s);
}

struct interp__account *interp__state_account(interp_state *s) { return s->ctx.acct; }

void interp__state_set_persistent(interp_state *s)
{
    s->persistent = true;
    s->ctx.no_close = s->sandbox; /* a context's channels are its host's grants */
}

bool interp__state_broken(const interp_state *s) { return s->broken; }

void interp__state_memory(const interp_state *s, size_t *in_use, size_t *peak)
{
    if (in_use)
        *in_use = atomic_load_explicit(&((interp_state *)s)->alloc.in_use, memory_order_relaxed);
    if (peak)
        *peak = atomic_load_explicit(&((interp_state *)s)->alloc.peak, memory_order_relaxed);
}

struct lua_State *interp__state_lua(interp_state *s) { return s->L; }
