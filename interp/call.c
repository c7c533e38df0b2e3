/* call.c - run tasks on a state: resolve the function (global by name, cached source chunk,
 * or a function message), decode the arguments, call, encode the results; errors with a
 * traceback; memory errors leave the state usable.
 *
 * interp__state_call is interp__state_map with one item. A map runs all its items inside ONE
 * lua_pcall of run_items, which lua_call's each item in turn; after an item's error the pcall
 * has unwound, so the C loop records the error and enters a new pcall at the next item.
 *
 * Per item, the usual case costs little beyond the Lua call itself: small argument messages
 * are pushed without setting up a decoder (interp__msg_push_small), small results are encoded
 * in place into a slab shared by the map's results (msg_inner.h: no malloc per result; one
 * integer, the commonest result, inline: interp__slab_int), the stack room is reserved once
 * per protected region, the integer results of several items pile up on the stack before one
 * settop clears them, and the watchdog's progress counter is one relaxed store. The C loop around
 * lua_call is the cheapest driver measured: a Lua loop calling fn per item, with the items
 * passed in a table or through C functions it calls, costs 1.6-1.7x as many instructions per
 * item with the Lua 5.4 of Debian (its API calls cost more than the C->Lua call they save). */
#include <lauxlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "interp_impl.h"
#include "msg_inner.h"
#include "msg_slab.h"
#include "park.h"

/* PH_START: an item is about to start (only the interrupt check can raise here: the item then
 * counts as not started). */
enum phase { PH_RESOLVE, PH_START, PH_ARGS, PH_RUN };
enum { SOURCE_CACHE_MAX = 256 };
/* Maps of at least this many items put small results in slabs (msg_inner.h): one allocation
 * for many results. SLAB_ITEM_GUESS: bytes a small result takes in a slab, to size the next. */
enum { SLAB_MIN_ITEMS = 8, SLAB_ITEM_GUESS = 32 };
/* Bytes of emptied result slabs a state keeps for its next maps while it is busy (about 270
 * slabs: the results of half a million small items), so that repeated maps reuse mapped memory
 * instead of faulting fresh pages (a 1M-item map on 2 workers costs a third more CPU time with
 * 2 MiB), and once idle (interp__state_idle), so that 64 workers after a big map hold 128 MiB
 * of slabs at most rather than 1 GiB. */
#define SLAB_CACHE_BYTES ((size_t)16 << 20)
#define SLAB_IDLE_BYTES ((size_t)2 << 20)

static const char source_cache_key = 0; /* registry: source text -> compiled chunk */
static const char trace_key = 0;        /* registry: traceback of a non-string error */

typedef struct run_ctx {
    interp_state *s;
    const interp_fn *fn;
    const interp_msg *const *args;
    interp_outcome *outs;
    size_t n;
    size_t next;        /* the item being run */
    bool packed;        /* interp__state_map_packed: every item a pack of calls */
    size_t sub;         /* packed: the call of the pack being run */
    interp__slab *slab; /* n >= SLAB_MIN_ITEMS: where small results go (released at the end) */
    bool slab_int;      /* an integer result goes straight into slab (interp__slab_int) */
    bool small_args;    /* max_size allows any small integer argument (interp__msg_small_uint) */
    enum phase phase;
    int resolve_status; /* PH_RESOLVE error: INTERP_ERR_NOTFOUND, _SCRIPT or _DECODE */
} run_ctx;

void interp__outcome_clear(interp_outcome *o)
{
    if (!o)
        return;
    interp_msg_free(o->result);
    free(o->error);
    interp_msg_free(o->error_value);
    memset(o, 0, sizeof *o);
}

/* Message handler: a string (or number) error gets the traceback appended; any other error
 * object is kept as it is and its traceback is set aside in the registry. Calls no Lua code
 * (no __tostring), since it may run with hooks disabled. */
static int msgh(lua_State *L)
{
    int t = lua_type(L, 1);
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        luaL_traceback(L, L, lua_tostring(L, 1), 1);
        return 1;
    }
    const char *what = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, what, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &trace_key);
    lua_settop(L, 1);
    return 1;
}

/* Push the function of a source task: the cached chunk, compiled on first use. */
static void push_source_chunk(lua_State *L, run_ctx *c)
{
    const interp_fn *fn = c->fn;
    size_t len = fn->len ? fn->len : strlen(fn->text);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &source_cache_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &source_cache_key);
        c->s->src_cached = 0;
    }
    lua_pushlstring(L, fn->text, len);
    if (lua_rawget(L, -2) == LUA_TFUNCTION) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    if (c->s->sandbox && len > c->s->sh->max_chunk) { /* the parser cannot be interrupted */
        c->resolve_status = INTERP_ERR_SCRIPT;
        luaL_error(L,
                   "source chunk of %I bytes: the sandbox compiles at most %I bytes in one "
                   "chunk (option max_chunk_size)",
                   (LUAI_UACINT)len, (LUAI_UACINT)c->s->sh->max_chunk);
    }
    if (luaL_loadbufferx(L, fn->text, len, "=task", "t") != LUA_OK) {
        c->resolve_status = INTERP_ERR_SCRIPT;
        lua_error(L); /* the syntax error, as the task's error */
    }
    if (c->s->src_cached >= SOURCE_CACHE_MAX) { /* bounded: start a new cache */
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &source_cache_key);
        lua_replace(L, -3);
        c->s->src_cached = 0;
    }
    lua_pushlstring(L, fn->text, len);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    c->s->src_cached++;
    lua_remove(L, -2);
}

/* Push the global `name` a call by name runs: in a sandboxed context, what its calls define
 * lives in its one environment (a chunk exec'd there, its initializer), not in the globals. */
static int get_global(lua_State *L, run_ctx *c, const char *name)
{
    if (c->s->sandbox && c->s->persistent)
        return interp__get_ctx_global(L, name);
    return lua_getglobal(L, name);
}

/* Push the task's function. Raises with c->resolve_status set. */
static void resolve(lua_State *L, run_ctx *c)
{
    const interp_fn *fn = c->fn;
    c->phase = PH_RESOLVE;
    if (fn->kind == INTERP__FN_NAME_LUA) {
        if (get_global(L, c, fn->text) != LUA_TFUNCTION || lua_iscfunction(L, -1)) {
            c->resolve_status = INTERP_ERR_NOTFOUND;
            luaL_error(L,
                       "'%s' is not a Lua function of the context (a sandboxed caller "
                       "reaches only the Lua functions its target defines)",
                       fn->text);
        }
        c->resolve_status = 0;
        return;
    }
    switch (fn->kind) {
    case INTERP_FN_NAME: {
        /* Looked up at each call (one short-string lookup through Lua's string cache), so a
         * global redefined by a task or the initializer is seen at once. */
        int t = get_global(L, c, fn->text);
        if (t != LUA_TFUNCTION &&
            !(t == LUA_TTABLE || t == LUA_TUSERDATA ? luaL_getmetafield(L, -1, "__call") != LUA_TNIL
                                                    : false)) {
            c->resolve_status = INTERP_ERR_NOTFOUND;
            luaL_error(L, "no global function '%s' in the worker state", fn->text);
        }
        if (t != LUA_TFUNCTION)
            lua_pop(L, 1); /* the __call field */
        break;
    }
    case INTERP_FN_SOURCE:
        push_source_chunk(L, c);
        break;
    case INTERP_FN_FUNCTION: {
        c->resolve_status = INTERP_ERR_DECODE;
        int n = interp_msg_push_lua(L, fn->function, &c->s->sh->msg_opts);
        if (n != 1 || lua_type(L, -1) != LUA_TFUNCTION)
            luaL_error(L, "the function message must hold exactly one function");
        break;
    }
    }
    c->resolve_status = 0;
}

/* Packed: the message that tells which call of the pack failed (its index from 0), or NULL
 * when it cannot be made (the first is named then). */
static interp_msg *sub_message(size_t sub) { return interp_msg_int((int64_t)sub); }

/* Sandbox: the next call gets an environment of its own (also the default one of `load`). */
static void push_env(lua_State *L, run_ctx *c, int fidx)
{
    if (c->s->persistent) /* a context: its globals stay from call to call */
        interp__push_persistent_env(L);
    else
        interp__push_task_env(L);
    if (c->fn->kind == INTERP_FN_SOURCE)
        lua_setupvalue(L, fidx, 1); /* a main chunk's only upvalue is _ENV */
    else
        lua_pop(L, 1);
}

/* A call begins: one relaxed store (the watchdog tells a new call from a long one by it), then
 * the interrupt check in `phase` (PH_START: an interrupt leaves the item not started). */
static void call_begins(lua_State *L, run_ctx *c, enum phase phase)
{
    _Atomic uint64_t *items = &c->s->items;
    atomic_store_explicit(items, atomic_load_explicit(items, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    c->phase = phase;
    interp__irq_check(L);
}

/* One item: fn(args...), every result kept. top: the stack's top before it (the integer
 * results of earlier items may lie between fidx and top); returns the top after it: an
 * integer result stays there, any other result goes now (a large string or table left on the
 * stack would count against the state's memory limit until the next settop). Inlined into the
 * loop of run_items (GCC would make it a call: ~10 more instructions per item). */
__attribute__((always_inline)) static inline int
run_one(lua_State *L, run_ctx *c, int fidx, int top, interp_outcome *o, const interp_msg *args)
{
    interp_state *s = c->s;
    const interp_msg_opts *opts = &s->sh->msg_opts;
    call_begins(L, c, PH_START);
    c->phase = PH_ARGS;
    if (s->sandbox)
        push_env(L, c, fidx);
    lua_pushvalue(L, fidx);
    int nargs = 0;
    int64_t v;
    if (args && c->small_args && interp__msg_small_uint(args, &v)) { /* the usual argument */
        lua_pushinteger(L, (lua_Integer)v);
        nargs = 1;
    } else if (args && (nargs = interp__msg_push_small(L, args, opts->max_size)) < 0) {
        nargs = interp_msg_push_lua(L, args, opts);
    }
    c->phase = PH_RUN;
    lua_call(L, nargs, LUA_MULTRET);
    interp__irq_check(L); /* it swallowed the interrupt and returned: still interrupted */
    int end = lua_gettop(L);
    size_t hint = (c->n - c->next) * SLAB_ITEM_GUESS;
    if (end == top + 1 && c->slab_int && lua_isinteger(L, end)) { /* the usual result */
        interp_msg *m =
            interp__slab_int(s->slab_cache, &c->slab, hint, lua_tointegerx(L, end, NULL));
        if (m) {
            o->status = INTERP_OK;
            o->result = m;
            return end;
        }
    }
    interp_msg_error e;
    if (c->n >= SLAB_MIN_ITEMS)
        o->status = interp__msg_from_lua_slab(L, top + 1, end - top, opts, s->slab_cache, &c->slab,
                                              hint, &o->result, &e);
    else
        o->status = interp_msg_from_lua(L, top + 1, end - top, opts, &o->result, &e);
    if (o->status != INTERP_OK) {
        if (o->status != INTERP_ERR_NOMEM)
            o->status = INTERP_ERR_ENCODE;
        o->error = interp__strdupf("cannot copy the results: %s", e.text);
    }
    lua_settop(L, top); /* only integers pile up: nothing they hold outlives its item */
    return top;
}

/* Packs of up to this many values keep their results beside them (run_pack), in states
 * without a memory limit: under one, a value still on the stack after its call could make
 * the pack fail where its collection would have made room. */
enum { PACK_SIDE_MAX = 1 << 16 };

/* One pack (interp__state_map_packed): fn(v) for each value v of args in turn, each a call
 * of its own (its own count for the watchdog, its own environment in a sandbox); the first
 * result of each call replaces its argument on the stack, and they leave as one message. */
static void run_pack(lua_State *L, run_ctx *c, int fidx, interp_outcome *o, const interp_msg *args)
{
    interp_state *s = c->s;
    const interp_msg_opts *opts = &s->sh->msg_opts;
    c->sub = 0;
    call_begins(L, c, PH_START);
    c->phase = PH_ARGS;
    int base = lua_gettop(L) + 1;
    uint32_t count = args ? interp_msg_count(args) : 0;
    /* each call's result lands above the values, after the results before it: they lie side
     * by side for the encoder, with no lua_replace per call; a pack too big for twice its
     * room on the stack, or in a state with a memory limit, replaces each value with its
     * result instead */
    bool side = count <= PACK_SIDE_MAX && !s->alloc.limit && lua_checkstack(L, 2 * (int)count + 4);
    if (!side && !lua_checkstack(L, (int)count + 4))
        luaL_error(L, "stack overflow (a pack of %d values)", (int)count);
    int k = args ? interp_msg_push_lua(L, args, opts) : 0;
    for (int j = 0; j < k; j++) {
        c->sub = (size_t)j;
        if (j) /* values before it ran: the pack has started */
            call_begins(L, c, PH_RUN);
        if (s->sandbox)
            push_env(L, c, fidx);
        lua_pushvalue(L, fidx);
        lua_pushvalue(L, base + j);
        c->phase = PH_RUN;
        lua_call(L, 1, 1);
        interp__irq_check(L);
        if (!side)
            lua_replace(L, base + j);
    }
    interp_msg_error e;
    o->status = interp_msg_from_lua(L, side ? base + k : base, k, opts, &o->result, &e);
    if (o->status != INTERP_OK) {
        if (o->status != INTERP_ERR_NOMEM)
            o->status = INTERP_ERR_ENCODE;
        /* the codec names the value [j] (from 1): that call is the one that failed */
        unsigned long at = e.text[0] == '[' ? strtoul(e.text + 1, NULL, 10) : 0;
        c->sub = at >= 1 ? (size_t)at - 1 : 0;
        o->error = interp__strdupf("cannot copy the results: %s", e.text);
        o->result = sub_message(c->sub);
    }
}

/* The results of up to this many stack slots pile up above the function before one
 * lua_settop clears them: a settop per item cost as much as a tenth of a small item's path. */
enum { PILE_SLOTS = 32 };

/* Protected: run items c->next .. n-1 with the function resolved here. */
static int run_items(lua_State *L)
{
    run_ctx *c = lua_touserdata(L, 1);
    resolve(L, c);
    int fidx = lua_gettop(L);
    /* room for the function and small argument lists, for every item, above at most
     * PILE_SLOTS results (lua_call and settop keep it) */
    if (!lua_checkstack(L, PILE_SLOTS + INTERP__MSG_SMALL_VALUES + 2))
        luaL_error(L, "stack overflow");
    if (c->packed) {
        for (; c->next < c->n; c->next++) {
            run_pack(L, c, fidx, &c->outs[c->next], c->args ? c->args[c->next] : NULL);
            lua_settop(L, fidx);
        }
        return 0;
    }
    int top = fidx;
    for (; c->next < c->n; c->next++) {
        top = run_one(L, c, fidx, top, &c->outs[c->next], c->args ? c->args[c->next] : NULL);
        if (top - fidx > PILE_SLOTS) {
            lua_settop(L, fidx);
            top = fidx;
        }
    }
    return 0;
}

/* Fill o from the error at the top of L after a failed pcall with status st. */
static void record_error(interp_state *s, lua_State *L, run_ctx *c, interp_outcome *o, int st)
{
    int reason = interp__cancel_reason(&s->cancel);
    size_t len = 0;
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (reason) {
        const char *irq = interp__irq_text(reason);
        o->status = reason;
        if (msg && strncmp(msg, irq, strlen(irq)) == 0)
            o->error = interp__strndup(msg, len);
        else
            o->error = interp__strdupf("%s (%s)", irq, msg ? msg : "error object dropped");
        return;
    }
    if (st == LUA_ERRMEM || (st == LUA_ERRERR && s->alloc.failed)) {
        o->status = INTERP_ERR_NOMEM;
        if (s->alloc.limit)
            o->error =
                interp__strdupf("not enough memory (state memory limit %zu bytes)", s->alloc.limit);
        else
            o->error = interp__strdupf("not enough memory");
        return;
    }
    if (c->phase == PH_RESOLVE)
        o->status = c->resolve_status ? c->resolve_status : INTERP_ERR_SCRIPT;
    else if (c->phase == PH_ARGS)
        o->status = INTERP_ERR_DECODE;
    else
        o->status = INTERP_ERR_SCRIPT;
    if (msg && o->status == INTERP_ERR_NOTFOUND) {
        /* raised by resolve itself: a traceback would only show "[C]: in ?" */
        const char *tb = strstr(msg, "\nstack traceback:");
        o->error = interp__strndup(msg, tb ? (size_t)(tb - msg) : len);
        return;
    }
    if (msg) {
        o->error = interp__strndup(msg, len);
        return;
    }
    /* A non-string error object: copy it; the text is its traceback. */
    if (c->phase == PH_RUN) {
        interp_msg_error e;
        if (interp_msg_from_lua(L, lua_gettop(L), 1, &s->sh->msg_opts, &o->error_value, &e) !=
            INTERP_OK)
            o->error_value = NULL;
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &trace_key);
    const char *tb = lua_tolstring(L, -1, &len);
    o->error = tb ? interp__strndup(tb, len) : interp__strdupf("(error object is not a string)");
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &trace_key);
}

/* Copy the outcome of item `from` into every item after it up to n (same status and text). */
static void spread(interp_outcome outs[], size_t from, size_t n)
{
    for (size_t i = from + 1; i < n; i++) {
        outs[i].status = outs[from].status;
        if (outs[from].error)
            outs[i].error = interp__strndup(outs[from].error, strlen(outs[from].error));
    }
}

/* After a memory error: collect, and give up on the state if it cannot breathe any more. */
static void recover_memory(interp_state *s)
{
    lua_gc(s->L, LUA_GCCOLLECT);
    size_t used = atomic_load_explicit(&s->alloc.in_use, memory_order_relaxed);
    if (s->alloc.limit && used > s->alloc.limit - s->alloc.limit / 8)
        s->broken = true;
}

static bool precheck(interp_state *s, const interp_fn *fn, interp_outcome *o)
{
    const char *why = NULL;
    o->status = INTERP_ERR_INVALID;
    if (interp__fn_check(fn, &why) != INTERP_OK)
        ;
    else if (fn->kind == INTERP_FN_FUNCTION && s->sandbox) {
        o->status = INTERP_ERR_DECODE;
        why = "a sandboxed state does not accept functions as bytecode";
    } else if (s->broken) {
        o->status = INTERP_ERR_BROKEN;
        why = "the state is broken and must be replaced";
    }
    if (!why) {
        o->status = INTERP_OK;
        return true;
    }
    o->error = interp__strdupf("%s", why);
    return false;
}

static size_t state_map(interp_state *s, uint64_t task_id, const interp_fn *fn, size_t n,
                        const interp_msg *const args[], interp_outcome outs[], bool packed)
{
    if (n == 0)
        return 0;
    if (!precheck(s, fn, &outs[0])) {
        spread(outs, 0, n);
        return 0;
    }
    size_t ran = n;
    lua_State *L = s->L;
    size_t max_size = s->sh->msg_opts.max_size;
    run_ctx c = {.s = s,
                 .fn = fn,
                 .args = args,
                 .outs = outs,
                 .n = n,
                 .packed = packed,
                 .slab_int = n >= SLAB_MIN_ITEMS && (!max_size || max_size >= 9),
                 .small_args = !max_size || max_size >= 5};
    if (n >= SLAB_MIN_ITEMS && !s->slab_cache)
        s->slab_cache =
            interp__slab_cache_new(SLAB_CACHE_BYTES, SLAB_IDLE_BYTES); /* NULL: uncached */
    s->alloc.failed = false;
    interp__irq_begin(s, task_id);
    lua_settop(L, 0);
    lua_pushcfunction(L, msgh);
    while (c.next < n) {
        lua_pushcfunction(L, run_items);
        lua_pushlightuserdata(L, &c);
        int st = lua_pcall(L, 1, 0, 1);
        if (st == LUA_OK)
            break;
        interp_outcome *o = &outs[c.next];
        interp__outcome_clear(o);
        record_error(s, L, &c, o, st);
        lua_settop(L, 1);
        if (packed && c.phase != PH_RESOLVE)
            o->result = sub_message(c.sub);
        if (st == LUA_ERRMEM || s->alloc.failed) {
            recover_memory(s);
            s->alloc.failed = false;
        }
        if (o->status == INTERP_ERR_TIMEOUT || o->status == INTERP_ERR_CANCELLED ||
            o->status == INTERP_ERR_SHUTDOWN || c.phase == PH_RESOLVE || s->broken) {
            /* every item not yet run shares the fate of this one; this one counts as run
             * unless it was stopped before it started */
            spread(outs, c.next, n);
            ran = c.phase == PH_RESOLVE || c.phase == PH_START ? c.next : c.next + 1;
            break;
        }
        c.next++;
    }
    lua_settop(L, 0);
    interp__irq_end(s);
    interp__slab_release(c.slab); /* the results keep it alive */
    return ran;
}

size_t interp__state_map(interp_state *s, uint64_t task_id, const interp_fn *fn, size_t n,
                         const interp_msg *const args[], interp_outcome outs[])
{
    return state_map(s, task_id, fn, n, args, outs, false);
}

size_t interp__state_map_packed(interp_state *s, uint64_t task_id, const interp_fn *fn, size_t n,
                                const interp_msg *const args[], interp_outcome outs[])
{
    return state_map(s, task_id, fn, n, args, outs, true);
}

void interp__state_idle(interp_state *s)
{
    size_t freed = interp__slab_cache_idle(s->slab_cache);
    interp__bigbuf_trim(); /* large message blocks kept for the next ones (msg_bigbuf.c) */
#ifdef __GLIBC__
    /* glibc keeps freed blocks in the worker's arena, where the host's frees put them back
     * scattered: without a trim the process would keep its resident size. Only after a big
     * map (several MiB let go), so it costs nothing to a pool that idles often. */
    if (freed >= 16)
        malloc_trim(0);
#else
    (void)freed;
#endif
}

int interp__state_call(interp_state *s, uint64_t task_id, const interp_fn *fn,
                       const interp_msg *args, interp_outcome *out)
{
    const interp_msg *one[1] = {args};
    memset(out, 0, sizeof *out);
    interp__state_map(s, task_id, fn, 1, one, out);
    return out->status;
}

/* ---- a context's call, run as a coroutine of the state ---------------------------------
 * A context's call runs in a coroutine (the state's `co`, kept in the registry and used again
 * by the next call once one ends normally), so that a wait inside it can yield to park the
 * context (channels/park.h) and its time slice can end in a yield from the hook: the worker
 * resumes it later, possibly on another thread. The coroutine's body makes the same protected
 * run as a task's (the same message handler, phases, results and errors), through lua_pcallk
 * and lua_callk so that it can be yielded across. Visible to Lua: coroutine.isyieldable() is
 * true at the call's top level, and the traceback's bottom frame is the coroutine's. */

static const char co_key = 0; /* registry: the coroutine of the call in progress */

struct interp__co_run {
    run_ctx c;
    interp_outcome *out;
    const interp_msg *arg[1];
};

static int co_inner_k(lua_State *L, int st, lua_KContext k)
{
    (void)st;
    interp__co_run *r = lua_touserdata(L, 1);
    run_ctx *c = &r->c;
    int fidx = (int)k;
    interp__irq_check(L); /* it swallowed the interrupt and returned: still interrupted */
    int nres = lua_gettop(L) - fidx;
    interp_msg_error e;
    interp_outcome *o = r->out;
    o->status = interp_msg_from_lua(L, fidx + 1, nres, &c->s->sh->msg_opts, &o->result, &e);
    if (o->status != INTERP_OK) {
        if (o->status != INTERP_ERR_NOMEM)
            o->status = INTERP_ERR_ENCODE;
        o->error = interp__strdupf("cannot copy the results: %s", e.text);
    }
    lua_settop(L, fidx);
    return 0;
}

/* Protected (inside the body's pcallk): resolve, push the arguments, call. */
static int co_inner(lua_State *L)
{
    interp__co_run *r = lua_touserdata(L, 1);
    run_ctx *c = &r->c;
    interp_state *s = c->s;
    resolve(L, c);
    int fidx = lua_gettop(L);
    if (!lua_checkstack(L, INTERP__MSG_SMALL_VALUES + 2))
        luaL_error(L, "stack overflow");
    c->phase = PH_START;
    interp__irq_check(L);
    c->phase = PH_ARGS;
    if (s->sandbox) {
        interp__push_persistent_env(L); /* a context: its globals stay from call to call */
        if (c->fn->kind == INTERP_FN_SOURCE)
            lua_setupvalue(L, fidx, 1); /* a main chunk's only upvalue is _ENV */
        else
            lua_pop(L, 1);
    }
    lua_pushvalue(L, fidx);
    int nargs = 0;
    const interp_msg *args = r->arg[0];
    if (args && (nargs = interp__msg_push_small(L, args, s->sh->msg_opts.max_size)) < 0)
        nargs = interp_msg_push_lua(L, args, &s->sh->msg_opts);
    r->arg[0] = NULL; /* the caller may free them once the first slice is over */
    c->phase = PH_RUN;
    lua_callk(L, nargs, LUA_MULTRET, fidx, co_inner_k);
    return co_inner_k(L, LUA_OK, fidx);
}

static int co_body_k(lua_State *L, int st, lua_KContext k)
{
    (void)k;
    interp__co_run *r = lua_touserdata(L, 1);
    if (st != LUA_OK && st != LUA_YIELD) {
        interp__outcome_clear(r->out);
        record_error(r->c.s, L, &r->c, r->out, st);
    }
    lua_settop(L, 0);
    return 0;
}

/* The coroutine's main function: argument 1 is the run (a light userdata). */
static int co_body(lua_State *L)
{
    lua_settop(L, 1);
    lua_pushcfunction(L, msgh);
    lua_pushcfunction(L, co_inner);
    lua_pushvalue(L, 1);
    int st = lua_pcallk(L, 1, 0, 2, 0, co_body_k);
    return co_body_k(L, st, 0);
}

/* Protected, on the main thread: a new coroutine for calls, anchored in the registry. */
static int co_make(lua_State *L)
{
    lua_newthread(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &co_key);
    return 1;
}

/* Is s->co still the coroutine the registry anchors? (The full profile's debug.getregistry
 * reaches the entry: a script may have dropped or replaced it.) Allocates nothing. */
static bool co_anchored(interp_state *s)
{
    lua_State *L = s->L;
    bool ok = s->co && lua_rawgetp(L, LUA_REGISTRYINDEX, &co_key) == LUA_TTHREAD &&
              lua_tothread(L, -1) == s->co;
    lua_settop(L, 0);
    return ok;
}

/* Forget the coroutine (it died, or holds a call that will not go on); the next call makes a
 * new one. */
static void co_forget(interp_state *s)
{
    lua_State *L = s->L;
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &co_key); /* an existing key: no allocation */
    s->co = NULL;
}

static void co_end(interp_state *s)
{
    if (s->ctx.park)
        s->ctx.park->base = NULL;
    free(s->co_run);
    s->co_run = NULL;
}

/* One slice: resume the coroutine (nargs values on its stack) until the call ends, parks or
 * yields from the hook. */
static int co_slice(interp_state *s, uint64_t task_id, int nargs, interp_outcome *out, int *irq)
{
    interp__co_run *r = s->co_run;
    lua_State *co = s->co;
    r->out = out;
    s->alloc.failed = false;
    interp__irq_begin_on(s, task_id, co);
    int nres = 0;
    int st = lua_resume(co, s->L, nargs, &nres);
    int step = INTERP__STEP_DONE;
    if (st == LUA_YIELD) {
        lua_pop(co, nres);
        interp__park *p = s->ctx.park;
        if (p && p->want)
            step = INTERP__STEP_PARK;
        else if (s->preempt_yield) {
            s->preempt_yield = false;
            step = INTERP__STEP_YIELD;
        } else {
            /* coroutine.yield at the call's own level: as lua5.4 outside a coroutine, the call
             * fails (here it cannot go on, so no pcall of it catches this) */
            interp__outcome_clear(out);
            out->status = INTERP_ERR_SCRIPT;
            out->error = interp__strdupf("attempt to yield from outside a coroutine");
            if (p)
                interp__park_resumed(p);
            co_forget(s);
        }
    } else if (st != LUA_OK) {
        /* the body itself failed (out of memory before its pcall, an error in the handler) */
        interp__outcome_clear(out);
        record_error(s, co, &r->c, out, st);
        co_forget(s);
    }
    if (st != LUA_YIELD &&
        (st == LUA_ERRMEM || s->alloc.failed || out->status == INTERP_ERR_NOMEM)) {
        recover_memory(s);
        s->alloc.failed = false;
    }
    *irq = interp__irq_end(s); /* from here no preemption is armed for this run */
    if (s->co)
        interp__preempt_disarm(s->co); /* armed, but the slice ended first */
    s->preempt_yield = false;
    if (step == INTERP__STEP_DONE)
        co_end(s);
    return step;
}

int interp__state_call_begin(interp_state *s, uint64_t task_id, const interp_fn *fn,
                             const interp_msg *args, interp_outcome *out, int *irq)
{
    memset(out, 0, sizeof *out);
    *irq = 0;
    if (!precheck(s, fn, out))
        return INTERP__STEP_DONE;
    interp__co_run *r = malloc(sizeof *r); /* not calloc: glibc's calloc skips its cache */
    lua_State *L = s->L;
    if (r && !co_anchored(s)) { /* the first call, or the coroutine was forgotten */
        s->co = NULL;
        lua_pushcfunction(L, co_make);
        if (lua_pcall(L, 0, 1, 0) == LUA_OK)
            s->co = lua_tothread(L, -1); /* the registry anchors it */
        lua_settop(L, 0);
    }
    if (!r || !s->co) {
        free(r);
        out->status = INTERP_ERR_NOMEM;
        out->error = interp__strdupf("not enough memory");
        return INTERP__STEP_DONE;
    }
    r->c = (run_ctx){.s = s, .fn = fn, .outs = out, .n = 1};
    r->out = out;
    r->arg[0] = args;
    s->co_run = r;
    if (s->ctx.park) {
        s->ctx.park->base = s->co;
        s->ctx.park->want = false;
    }
    lua_settop(s->co, 0);
    lua_pushcfunction(s->co, co_body);
    lua_pushlightuserdata(s->co, r);
    /* one relaxed store per call: the watchdog tells a new call from a long one by it */
    atomic_store_explicit(&s->items, atomic_load_explicit(&s->items, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return co_slice(s, task_id, 1, out, irq);
}

int interp__state_call_resume(interp_state *s, uint64_t task_id, interp_outcome *out, int *irq)
{
    memset(out, 0, sizeof *out);
    *irq = 0;
    atomic_store_explicit(&s->items, atomic_load_explicit(&s->items, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return co_slice(s, task_id, 0, out, irq);
}

void interp__state_call_drop(interp_state *s)
{
    if (!s || !s->co_run)
        return;
    if (s->ctx.park)
        interp__park_resumed(s->ctx.park);
    co_forget(s);
    co_end(s);
}

void interp__state_call_close(interp_state *s, uint64_t task_id, int reason)
{
    if (!s || !s->co_run)
        return;
    if (s->sandbox) {
        /* a tenant's handlers never run here: the hook bounds their Lua code, but nothing
         * bounds a C path it cannot reach (a __call chain, a rehash), and this thread (the
         * host's, in a destroy) cannot be abandoned as a worker's is. Freeing the coroutine
         * runs no __close. */
        interp__state_call_drop(s);
        return;
    }
    if (s->ctx.park)
        interp__park_resumed(s->ctx.park);
    co_end(s); /* nothing parks from here */
    lua_State *co = s->co;
    if (co_anchored(s)) { /* else a script dropped it: nothing of it is left to close */
        interp__irq_begin_closing(s, &task_id, co, reason);
#if LUA_VERSION_RELEASE_NUM >= 50406
        lua_closethread(co, s->L);
#else
        lua_resetthread(co); /* Lua 5.4.4 and 5.4.5 */
#endif
        interp__irq_end(s);
    }
    co_forget(s);
}

void interp__state_set_park(interp_state *s, struct interp__park *p) { s->ctx.park = p; }
