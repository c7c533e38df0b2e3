/* chan_lua.c - the Lua face of channels: channel objects (full userdata holding one reference),
 * interp.select and interp.channel.
 *
 * Every blocking call goes through the cancellable variants (chan_impl.h) with the state's
 * token, so cancelling the task, its deadline and pool shutdown wake it. No channel lock is
 * ever held while Lua runs or allocates: encoding happens before the send, decoding after the
 * receive, and the message in between belongs to this C function alone.
 *
 * The worker context (token, message options, named-channel lookup) travels with the objects:
 * each channel object keeps the context of the state that made it, and select and channel are
 * closures over it. The state's extra space (lua_ctx.h) is read at one place only,
 * interp__chan_lua_register, which interp/ calls in its own worker states after filling it; a
 * host script's state (whose extra space Lua leaves uninitialised, and which an embedding
 * program may use for its own ends) never has it read.
 *
 * References: each object holds one for its whole life (released by __gc), so a call running
 * on it always holds a reference of its own (see interp_chan.h); select borrows the list's
 * objects, which the list keeps alive for the call. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "budget.h"
#include "msg_charge.h"
#include "chan_impl.h"
#include "lua_ctx.h"
#include "interp_chan_lua.h"
#include "park.h"
#include "status_text.h"

#define CHAN_MT "interp.channel"
enum { SELECT_STACK = 16 };

typedef struct chan_ud {
    interp_chan *ch;            /* one reference; NULL before it is set and after __gc */
    const interp__lua_ctx *ctx; /* of the state that made it; NULL: none (no token, defaults) */
    unsigned rights;            /* INTERP_CHAN_SEND | INTERP_CHAN_RECV: what its grant allows */
} chan_ud;

/* Registry key: the context interp__chan_lua_register recorded (a light userdata). */
static const char CTX_KEY = 0;

static chan_ud *check_chan(lua_State *L, int idx)
{
    chan_ud *u = luaL_checkudata(L, idx, CHAN_MT);
    if (!u->ch)
        luaL_argerror(L, idx, "channel already released");
    return u;
}

/* Raise unless u's grant allows `right` (INTERP_CHAN_SEND or _RECV) for the call `what`. */
static void check_right(lua_State *L, const chan_ud *u, unsigned right, const char *what)
{
    if (!(u->rights & right))
        luaL_error(L, "%s: this channel was granted %s only", what,
                   right == INTERP_CHAN_SEND ? "for receiving" : "for sending");
}

/* The context select and channel close over. */
static const interp__lua_ctx *upvalue_ctx(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* Seconds from argument idx: absent or nil waits forever; negative too (as in C). */
static double opt_timeout(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return INTERP_FOREVER;
    double t = (double)luaL_checknumber(L, idx);
    if (isnan(t))
        luaL_argerror(L, idx, "timeout is NaN");
    return t;
}

static interp__cancel *token_of(const interp__lua_ctx *ctx) { return ctx ? ctx->cancel : NULL; }
static const interp_msg_opts *opts_of(const interp__lua_ctx *ctx)
{
    return ctx ? &ctx->msg_opts : NULL;
}

/* The error the task dies with when its token fires while it waits in a channel: the same
 * value interp/'s hook raises (interp__irq_text): a plain string without a position, so a
 * script sees one error whichever caught the interrupt. (The hook, installed by the same
 * interrupt, raises again if this one is caught.) */
static int raise_interrupted(lua_State *L, int reason)
{
    lua_pushstring(L, interp__irq_text(reason));
    return lua_error(L);
}

/* Turn a failed channel call into results or an error: nil, "timeout" (the call's own timeout,
 * 0 included); nil, "closed"; a raised error for an interrupted task and everything else. */
static int fail(lua_State *L, const char *what, int rc, const interp__lua_ctx *ctx)
{
    interp__cancel *tok = token_of(ctx);
    int reason = tok ? interp__cancel_reason(tok) : 0;
    if (reason)
        return raise_interrupted(L, reason);
    switch (rc) {
    case INTERP_ERR_TIMEOUT:
    case INTERP_ERR_AGAIN:
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        return 2;
    case INTERP_ERR_CLOSED:
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    default:
        return luaL_error(L, "%s: %s", what, interp_strerror(rc));
    }
}

/* Push the values of m and free it; raises (after freeing) when they cannot be decoded here. */
static int push_msg(lua_State *L, interp_msg *m, const interp__lua_ctx *ctx, const char *what)
{
    int top = lua_gettop(L);
    interp_msg_error err;
    /* The protected decode, so that m is freed whatever happens (a raising decode would leak
     * it, since nothing on the Lua side owns it). */
    int rc = interp_msg_to_lua(L, m, opts_of(ctx), &err);
    interp_msg_free(m);
    if (rc != INTERP_OK)
        return luaL_error(L, "%s: %s", what, err.text);
    return lua_gettop(L) - top;
}

/* A new channel object without a channel yet (so that a memory error raised while making it
 * leaks no reference). */
static chan_ud *new_ud(lua_State *L, const interp__lua_ctx *ctx)
{
    chan_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->ch = NULL;
    u->ctx = ctx;
    u->rights = INTERP_CHAN_SENDRECV;
    luaL_setmetatable(L, CHAN_MT);
    return u;
}

/* ---- methods ----------------------------------------------------------------------------- */

/* Waits of a host script (no task token: a worker's task is woken by its cancel instead) go
 * in slices that look for a Ctrl-C (interp_chan_lua.h). */
typedef struct chan_wait {
    interp_chan *ch;
    interp_chan *const *chans;
    size_t n, *idx;
    interp_msg *m, **out;
} chan_wait;

static int send_slice(void *ud, double slice)
{
    chan_wait *w = ud;
    return interp__chan_send_c(w->ch, w->m, slice, NULL);
}

static int recv_slice(void *ud, double slice)
{
    chan_wait *w = ud;
    return interp__chan_recv_c(w->ch, slice, NULL, w->out);
}

static int select_slice(void *ud, double slice)
{
    chan_wait *w = ud;
    return interp__chan_select_c(w->chans, w->n, slice, NULL, w->idx, w->out);
}

static int host_wait(lua_State *L, double timeout, interp_lua_intr_wait_fn fn, chan_wait *w,
                     bool *interrupted)
{
    return interp_lua_intr_wait(L, timeout, fn, w, interrupted);
}

static int send_parked(lua_State *L, chan_ud *u, interp__park *p, double until);
static interp__park *park_here(lua_State *L, const interp__lua_ctx *ctx);
static double until_of(double timeout);

/* A message a parked send holds across its yields: a full userdata, so that a call that never
 * resumes (its context dropped it) frees the message and refunds its charge when collected. */
#define SEND_BOX_MT "interp.channel.sending"
typedef struct send_box {
    interp_msg *m; /* NULL once sent */
    interp__account *acct;
    size_t charge;
} send_box;

static int send_box_gc(lua_State *L)
{
    send_box *b = lua_touserdata(L, 1);
    if (b && b->m) {
        interp__account_refund(b->acct, b->charge, true);
        interp_msg_free(b->m);
        b->m = NULL;
    }
    return 0;
}

static int l_send(lua_State *L)
{
    chan_ud *u = check_chan(L, 1);
    check_right(L, u, INTERP_CHAN_SEND, "send");
    luaL_checkany(L, 2);
    double timeout = opt_timeout(L, 3);
    const interp__lua_ctx *ctx = u->ctx;
    interp__park *p = timeout != 0 ? park_here(L, ctx) : NULL;
    send_box *box = NULL;
    if (p) { /* made first: a memory error raised here leaves nothing behind */
        lua_settop(L, 3);
        box = lua_newuserdatauv(L, sizeof *box, 0);
        box->m = NULL;
        if (luaL_newmetatable(L, SEND_BOX_MT)) {
            lua_pushcfunction(L, send_box_gc);
            lua_setfield(L, -2, "__gc");
        }
        lua_setmetatable(L, -2);
    }
    interp_msg *m;
    interp_msg_error err;
    int rc = interp_msg_from_lua(L, 2, 1, opts_of(ctx), &m, &err);
    if (rc != INTERP_OK)
        return luaL_error(L, "send: %s", err.text);
    size_t size = interp_msg_size(m);
    /* the sender pays for what it queues until it is received (budget.h) */
    interp__account *acct = ctx ? ctx->acct : NULL;
    size_t charge = interp__msg_charge(m);
    char why[256];
    /* past the limit: collect the heap's garbage first, as Lua does before a memory error */
    if (interp__account_charge(acct, charge, true, why, sizeof why) != INTERP_OK &&
        (lua_gc(L, LUA_GCCOLLECT),
         interp__account_charge(acct, charge, true, why, sizeof why) != INTERP_OK)) {
        interp_msg_free(m);
        return luaL_error(L, "send: %s", why);
    }
    if (box) {
        box->acct = acct;
        box->charge = charge;
        box->m = m;
        return send_parked(L, u, p, until_of(timeout));
    }
    bool interrupted = false;
    if (token_of(ctx)) {
        rc = interp__chan_send_paid(u->ch, m, timeout, token_of(ctx), acct);
    } else { /* a host state: nothing charged (it has no account), nothing carried */
        chan_wait w = {.ch = u->ch, .m = m};
        rc = host_wait(L, timeout, send_slice, &w, &interrupted);
        if (rc == INTERP_OK)
            interp__account_refund(acct, charge, true);
    }
    if (rc == INTERP_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    interp__account_refund(acct, charge, true);
    interp_msg_free(m); /* refused: still ours */
    if (interrupted)
        return interp_lua_intr_raise(L);
    if (rc == INTERP_ERR_LIMIT)
        return luaL_error(L, "send: message of %I bytes exceeds the channel's size limit",
                          (lua_Integer)size);
    return fail(L, "send", rc, ctx);
}

/* ---- parked waits (park.h): a context's call lets go of its thread while it waits ------ */

/* The park of L's state if the C function running on L may park now, else NULL. */
static interp__park *park_here(lua_State *L, const interp__lua_ctx *ctx)
{
    interp__park *p = ctx ? ctx->park : NULL;
    return interp__park_can(p, L) ? p : NULL;
}

/* The monotonic time a wait of `timeout` seconds ends (negative: never). */
static double until_of(double timeout) { return timeout < 0 ? INFINITY : interp__now() + timeout; }

/* What is left of a wait that ends at until, as a timeout argument (-1: none). */
static double left_of(double until)
{
    if (until == INFINITY)
        return INTERP_FOREVER;
    double left = until - interp__now();
    return left > 0 ? left : 0;
}

/* What the host holds in C while a wait over n channels is in progress is charged to the
 * waiting state (its memory limit; budget.h) past SELECT_STACK channels: a parked select's
 * registration, a blocked one's nodes (2-3x its list's own heap). Shorter waits hold under
 * 1.5 KiB, and a state waits on one thing at a time. Returns the bytes charged (0: none);
 * raises "select: not enough memory (...)" when they do not fit, after a full collection. */
static size_t charge_wait(lua_State *L, const interp__lua_ctx *ctx, size_t n)
{
    interp__account *acct = ctx ? ctx->acct : NULL;
    if (!acct || n <= SELECT_STACK)
        return 0;
    size_t bytes = interp__chan_wait_bytes(n);
    char why[256];
    if (interp__account_charge(acct, bytes, true, why, sizeof why) != INTERP_OK &&
        (lua_gc(L, LUA_GCCOLLECT),
         interp__account_charge(acct, bytes, true, why, sizeof why) != INTERP_OK))
        luaL_error(L, "select: %s", why);
    return bytes;
}

/* Watch chans (one for a sender) and yield to park with continuation k; when the registration
 * cannot be made (out of memory), returns 0 and the caller blocks instead. When the channel is
 * ready already, returns 1 (try again at once). The registration is charged to ctx's state
 * (charge_wait) until it is dropped. */
static int park_on(lua_State *L, interp__park *p, interp_chan *const *chans, size_t n, bool sender,
                   double until, lua_KFunction k, const interp__lua_ctx *ctx)
{
    bool ready;
    size_t paid = charge_wait(L, ctx, n);
    void *reg = interp__chan_watch(chans, n, sender, p, &ready);
    if (paid && reg)
        interp__chan_watch_pay(reg, ctx->acct, paid);
    else if (paid)
        interp__account_refund(ctx->acct, paid, true);
    if (!reg)
        return 0;
    if (ready) {
        interp__chan_unwatch(reg);
        return 1;
    }
    return interp__park_yield(L, p, until, interp__chan_unwatch, reg, 0, k);
}

/* In a send's or recv's continuation: the channel object (argument 1) and the end of its
 * wait; the wait's registration is dropped. */
static chan_ud *resumed(lua_State *L, double *until)
{
    chan_ud *u = check_chan(L, 1);
    *until = u->ctx->park->until;
    interp__park_resumed(u->ctx->park);
    return u;
}

static int send_k(lua_State *L, int status, lua_KContext kc)
{
    (void)status;
    (void)kc;
    double until;
    chan_ud *u = resumed(L, &until);
    return send_parked(L, u, u->ctx->park, until);
}

/* The message waits in the box at index 4 (arguments 1-3 below it). */
static int send_parked(lua_State *L, chan_ud *u, interp__park *p, double until)
{
    const interp__lua_ctx *ctx = u->ctx;
    send_box *b = lua_touserdata(L, 4);
    for (;;) {
        int rc = interp__chan_send_paid(u->ch, b->m, 0, token_of(ctx), b->acct);
        if (rc == INTERP_ERR_AGAIN && interp__now() < until &&
            park_on(L, p, &u->ch, 1, true, until, send_k, ctx))
            continue;                                        /* room already: try again */
        if (rc == INTERP_ERR_AGAIN && interp__now() < until) /* no memory to park: block */
            rc = interp__chan_send_paid(u->ch, b->m, left_of(until), token_of(ctx), b->acct);
        if (rc == INTERP_OK) {
            b->m = NULL; /* the channel's now, with its charge */
            lua_pushboolean(L, 1);
            return 1;
        }
        size_t size = interp_msg_size(b->m);
        lua_pushcfunction(L, send_box_gc); /* refused: refund and free now */
        lua_pushvalue(L, 4);
        lua_call(L, 1, 0);
        if (rc == INTERP_ERR_LIMIT)
            return luaL_error(L, "send: message of %I bytes exceeds the channel's size limit",
                              (lua_Integer)size);
        return fail(L, "send", rc, ctx);
    }
}

static int recv_parked(lua_State *L, chan_ud *u, interp__park *p, double until);

static int recv_k(lua_State *L, int status, lua_KContext kc)
{
    (void)status;
    (void)kc;
    double until;
    chan_ud *u = resumed(L, &until);
    return recv_parked(L, u, u->ctx->park, until);
}

static int recv_parked(lua_State *L, chan_ud *u, interp__park *p, double until)
{
    const interp__lua_ctx *ctx = u->ctx;
    for (;;) {
        interp_msg *m;
        int rc = interp__chan_recv_c(u->ch, 0, token_of(ctx), &m);
        if (rc == INTERP_ERR_AGAIN && interp__now() < until &&
            park_on(L, p, &u->ch, 1, false, until, recv_k, ctx))
            continue;                                        /* ready already: try again */
        if (rc == INTERP_ERR_AGAIN && interp__now() < until) /* no memory to park: block */
            rc = interp__chan_recv_c(u->ch, left_of(until), token_of(ctx), &m);
        if (rc != INTERP_OK)
            return fail(L, "recv", rc, ctx);
        return push_msg(L, m, ctx, "recv");
    }
}

static int l_recv(lua_State *L)
{
    chan_ud *u = check_chan(L, 1);
    check_right(L, u, INTERP_CHAN_RECV, "recv");
    double timeout = opt_timeout(L, 2);
    const interp__lua_ctx *ctx = u->ctx;
    interp_msg *m;
    int rc;
    bool interrupted = false;
    interp__park *p = timeout != 0 ? park_here(L, ctx) : NULL;
    if (p)
        return recv_parked(L, u, p, until_of(timeout));
    if (token_of(ctx)) {
        rc = interp__chan_recv_c(u->ch, timeout, token_of(ctx), &m);
    } else {
        chan_wait w = {.ch = u->ch, .out = &m};
        rc = host_wait(L, timeout, recv_slice, &w, &interrupted);
    }
    if (interrupted)
        return interp_lua_intr_raise(L);
    if (rc != INTERP_OK)
        return fail(L, "recv", rc, ctx);
    return push_msg(L, m, ctx, "recv");
}

static int l_close(lua_State *L)
{
    chan_ud *u = check_chan(L, 1);
    if (u->ctx && u->ctx->no_close)
        return luaL_error(L, "close: a sandboxed context cannot close a channel: its host granted "
                             "it, maybe to others too (send a last message instead)");
    interp_chan_close(u->ch);
    return 0;
}

interp_chan *interp_chan_test_lua(lua_State *L, int idx)
{
    chan_ud *u = luaL_testudata(L, idx, CHAN_MT);
    return u ? u->ch : NULL;
}

static int l_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)interp_chan_len(check_chan(L, 1)->ch));
    return 1;
}

static int l_gc(lua_State *L)
{
    chan_ud *u = luaL_checkudata(L, 1, CHAN_MT);
    interp_chan_release(u->ch);
    u->ch = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    chan_ud *u = luaL_checkudata(L, 1, CHAN_MT);
    if (u->ch)
        lua_pushfstring(L, "interp.channel (%p)", (void *)u->ch);
    else
        lua_pushliteral(L, "interp.channel (released)");
    return 1;
}

/* Two objects for the same channel (interp.channel("x") twice) are equal. */
static int l_eq(lua_State *L)
{
    chan_ud *a = luaL_testudata(L, 1, CHAN_MT), *b = luaL_testudata(L, 2, CHAN_MT);
    lua_pushboolean(L, a && b && a->ch == b->ch);
    return 1;
}

static void push_metatable(lua_State *L)
{
    if (luaL_newmetatable(L, CHAN_MT)) { /* sets __name */
        static const luaL_Reg meta[] = {{"__gc", l_gc},
                                        {"__len", l_len},
                                        {"__tostring", l_tostring},
                                        {"__eq", l_eq},
                                        {NULL, NULL}};
        static const luaL_Reg methods[] = {
            {"send", l_send}, {"recv", l_recv}, {"close", l_close}, {"len", l_len}, {NULL, NULL}};
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
}

void interp__chan_push(lua_State *L, interp_chan *ch, const interp__lua_ctx *ctx)
{
    push_metatable(L);
    lua_pop(L, 1);
    chan_ud *u = new_ud(L, ctx);
    interp_chan_retain(ch);
    u->ch = ch;
}

/* The context of a host's state (no worker): no token (waits end by timeout or close), no
 * named-channel lookup, functions allowed. Read-only: one for every host state. */
static const interp__lua_ctx host_ctx = {
    .cancel = NULL,
    .msg_opts = {.allow_functions = true},
    .worker_id = -1,
    .chan_lookup = NULL,
    .chan_lookup_ud = NULL,
};

/* L's context: a worker's, recorded by interp__chan_lua_register, else the host's. Never reads
 * the state's extra space (lua_ctx.h). */
static const interp__lua_ctx *ctx_here(lua_State *L)
{
    const interp__lua_ctx *worker = interp__chan_lua_ctx(L);
    return worker ? worker : &host_ctx;
}

void interp_chan_push_lua(lua_State *L, interp_chan *ch) { interp__chan_push(L, ch, ctx_here(L)); }

/* ---- interp.select, interp.channel ----------------------------------------------------------- */

static int select_body(lua_State *L, bool resumed);

static int select_k(lua_State *L, int status, lua_KContext kc)
{
    (void)status;
    (void)kc;
    return select_body(L, true);
}

static int l_select(lua_State *L) { return select_body(L, false); }

void interp_chan_push_select(lua_State *L)
{
    lua_newtable(L);
    interp__chan_lua_register_ctx(L, ctx_here(L));
    lua_getfield(L, -1, "select");
    lua_remove(L, -2);
}

/* A worker's blocking select, what it holds charged to its state while it waits (a select
 * that finds a message at once holds nothing and is charged nothing). */
static int select_paid(lua_State *L, const interp__lua_ctx *ctx, interp_chan *const *chans,
                       size_t n, double timeout, size_t *idx, interp_msg **m)
{
    int rc = interp__chan_select_c(chans, n, 0, token_of(ctx), idx, m);
    if (rc != INTERP_ERR_AGAIN || timeout == 0)
        return rc;
    size_t paid = charge_wait(L, ctx, n);
    rc = interp__chan_select_c(chans, n, timeout, token_of(ctx), idx, m);
    if (paid)
        interp__account_refund(ctx->acct, paid, true);
    return rc;
}

/* interp.select, first called (resumed false) or resumed after a park (the list and the
 * timeout are still arguments 1 and 2). */
static int select_body(lua_State *L, bool resumed)
{
    lua_settop(L, 2); /* a resumed select drops what its last pass left */
    luaL_checktype(L, 1, LUA_TTABLE);
    double timeout = resumed ? 0 : opt_timeout(L, 2);
    /* raw access: no metamethod (no Lua code) runs between reading the list and pushing the
     * channel that answered, so the borrowed pointers below stay held by the list's objects */
    lua_Unsigned n = lua_rawlen(L, 1);
    if (n == 0)
        return luaL_argerror(L, 1, "no channels to select from");
    if (n > (lua_Unsigned)(SIZE_MAX / sizeof(interp_chan *)) || n > (lua_Unsigned)INT32_MAX)
        return luaL_argerror(L, 1, "too many channels");
    interp_chan *stack_chans[SELECT_STACK];
    interp_chan **chans = stack_chans;
    if (n > SELECT_STACK)
        chans = lua_newuserdatauv(L, (size_t)n * sizeof *chans, 0);
    for (lua_Unsigned i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i + 1);
        chan_ud *u = luaL_testudata(L, -1, CHAN_MT);
        if (!u || !u->ch)
            return luaL_error(L, "select: element %I of the list is not a channel",
                              (lua_Integer)i + 1);
        if (!(u->rights & INTERP_CHAN_RECV))
            return luaL_error(L, "select: element %I: this channel was granted for sending only",
                              (lua_Integer)i + 1);
        chans[i] = u->ch;
        lua_pop(L, 1);
    }
    const interp__lua_ctx *ctx = upvalue_ctx(L);
    size_t idx;
    interp_msg *m;
    int rc;
    bool interrupted = false;
    interp__park *p = resumed ? ctx->park : timeout != 0 ? park_here(L, ctx) : NULL;
    if (p) {
        double until = resumed ? p->until : until_of(timeout);
        if (resumed)
            interp__park_resumed(p);
        for (;;) {
            rc = interp__chan_select_c(chans, (size_t)n, 0, token_of(ctx), &idx, &m);
            if (rc != INTERP_ERR_AGAIN || interp__now() >= until)
                break;
            if (!park_on(L, p, chans, (size_t)n, false, until, select_k, ctx)) {
                rc = select_paid(L, ctx, chans, (size_t)n, left_of(until), &idx, &m);
                break;
            }
        }
    } else if (token_of(ctx)) {
        rc = select_paid(L, ctx, chans, (size_t)n, timeout, &idx, &m);
    } else {
        chan_wait w = {.chans = chans, .n = (size_t)n, .idx = &idx, .out = &m};
        rc = host_wait(L, timeout, select_slice, &w, &interrupted);
    }
    if (interrupted)
        return interp_lua_intr_raise(L);
    if (rc != INTERP_OK)
        return fail(L, "select", rc, ctx);
    lua_rawgeti(L, 1, (lua_Integer)idx + 1);
    return 1 + push_msg(L, m, ctx, "select");
}

static int l_channel(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    lua_Integer cap = luaL_optinteger(L, 2, 0);
    /* "a\0b" must not be the channel "a", nor "" a channel the host cannot name; a negative
     * capacity reads as one past every bound */
    const char *bad;
    if (interp_chan_check(name, len, (size_t)cap, &bad) != INTERP_OK)
        return luaL_error(L, "interp.channel: %s", bad);
    const interp__lua_ctx *ctx = upvalue_ctx(L);
    if (!ctx || !ctx->chan_lookup)
        return luaL_error(L, "interp.channel: this state belongs to no pool");
    push_metatable(L);
    lua_pop(L, 1);
    chan_ud *u = new_ud(L, ctx);
    interp_chan *ch;
    unsigned rights = INTERP_CHAN_SENDRECV;
    char why[256] = "";
    int rc = ctx->chan_lookup(ctx->chan_lookup_ud, name, len, (size_t)cap, ctx->acct, why,
                              sizeof why, &ch, &rights);
    if (rc == INTERP_ERR_NOMEM) { /* collect the heap's garbage first, then try once more */
        lua_gc(L, LUA_GCCOLLECT);
        rc = ctx->chan_lookup(ctx->chan_lookup_ud, name, len, (size_t)cap, ctx->acct, why,
                              sizeof why, &ch, &rights);
    }
    if (rc != INTERP_OK)
        return luaL_error(L, "interp.channel(\"%s\"): %s", name,
                          why[0] ? why : interp_strerror(rc));
    u->ch = ch; /* the lookup's new reference */
    u->rights = rights;
    return 1;
}

/* Lua API (results convention):
 *   ch:send(v [, timeout])  -> true; or nil, "timeout" | nil, "closed"
 *   ch:recv([timeout])      -> the value (exactly the values of the message: one for a value
 *                              sent from Lua); or nil, "timeout" | nil, "closed". A nil that
 *                              was sent arrives as a single nil: test the second result.
 *   ch:close(), ch:len(), #ch
 *   interp.select({ch1, ch2, ...} [, timeout]) -> ch, value (ch is the list's own object); or
 *                              nil, "timeout" | nil, "closed" (every channel closed and drained)
 *   interp.channel(name [, capacity]) -> the pool's channel `name` (created if new)
 * timeout: seconds; absent, nil or negative waits without limit; 0 only tries ("timeout" if it
 * would block). Raised errors: a value that cannot be copied (with its path), a message above
 * the channel's size limit, a received value this state refuses (a function in a sandboxed
 * state, say: that message is consumed and dropped), and "interp: task cancelled"
 * / "timed out" / "stopped by pool shutdown" when the worker's task is interrupted while it
 * waits. */
void interp__chan_lua_register_ctx(lua_State *L, const interp__lua_ctx *ctx)
{
    lua_pushlightuserdata(L, (void *)ctx);
    lua_pushcclosure(L, l_select, 1);
    lua_setfield(L, -2, "select");
    lua_pushlightuserdata(L, (void *)ctx);
    lua_pushcclosure(L, l_channel, 1);
    lua_setfield(L, -2, "channel");
}

void interp__chan_lua_set_ctx(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)interp__lua_ctx_get(L));
    lua_rawsetp(L, LUA_REGISTRYINDEX, &CTX_KEY);
}

void interp__chan_lua_register(lua_State *L)
{
    interp__chan_lua_set_ctx(L);
    interp__chan_lua_register_ctx(L, interp__lua_ctx_get(L));
}

const interp__lua_ctx *interp__chan_lua_ctx(lua_State *L)
{
    const interp__lua_ctx *ctx = NULL;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &CTX_KEY) == LUA_TLIGHTUSERDATA)
        ctx = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return ctx;
}
