/* test_chan_lua.c - the Lua binding of channels, in plain lua_States made here (each with an
 * interp__lua_ctx filled by the test), some of them running on their own threads. */
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chan_impl.h"
#include "lua_ctx.h"
#include "msg_impl.h"

typedef struct lstate {
    lua_State *L;
    interp__lua_ctx ctx;
    interp__cancel tok;
} lstate;

/* A named-channel registry standing in for the pool's (one fixed-size table). */
enum { REG_MAX = 4 };
static struct {
    pthread_mutex_t mu;
    const char *names[REG_MAX];
    interp_chan *chans[REG_MAX];
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int reg_lookup(void *ud, const char *name, size_t len, size_t capacity,
                      struct interp__account *acct, char *why, size_t whylen, interp_chan **out,
                      unsigned *rights)
{
    *rights = INTERP_CHAN_SENDRECV;
    (void)len;                           /* the binding checked it: no NUL inside */
    (void)acct, (void)why, (void)whylen; /* no budget here */
    (void)ud;
    int rc = INTERP_ERR_NOMEM;
    pthread_mutex_lock(&reg.mu);
    for (int i = 0; i < REG_MAX; i++) {
        if (reg.names[i] && strcmp(reg.names[i], name) == 0) {
            interp_chan_retain(reg.chans[i]);
            *out = reg.chans[i];
            rc = INTERP_OK;
            break;
        }
        if (!reg.names[i]) {
            rc = interp_chan_create(capacity ? capacity : 64, 0, &reg.chans[i]);
            if (rc == INTERP_OK) {
                reg.names[i] = strdup(name);
                interp_chan_retain(reg.chans[i]);
                *out = reg.chans[i];
            }
            break;
        }
    }
    pthread_mutex_unlock(&reg.mu);
    return rc;
}

static void reg_clear(void)
{
    for (int i = 0; i < REG_MAX; i++) {
        free((char *)reg.names[i]);
        interp_chan_release(reg.chans[i]);
        reg.names[i] = NULL;
        reg.chans[i] = NULL;
    }
}

/* A state with the standard libraries, `interp` = {select, channel} and a cancel token. */
static void ls_open(lstate *s)
{
    memset(s, 0, sizeof *s);
    s->L = luaL_newstate();
    assert_non_null(s->L);
    luaL_openlibs(s->L);
    interp__cancel_init(&s->tok);
    s->ctx.cancel = &s->tok;
    s->ctx.chan_lookup = reg_lookup;
    interp__lua_ctx_set(s->L, &s->ctx);
    lua_newtable(s->L);
    interp__chan_lua_register(s->L);
    lua_setglobal(s->L, "interp");
}

static void ls_close(lstate *s)
{
    lua_close(s->L);
    interp__cancel_destroy(&s->tok);
}

static void ls_set_chan(lstate *s, const char *name, interp_chan *ch)
{
    interp__chan_push(s->L, ch, &s->ctx);
    lua_setglobal(s->L, name);
}

/* Run code; returns the status, leaves the results (or the error) on the stack. */
static int ls_run(lstate *s, const char *code)
{
    lua_settop(s->L, 0);
    int rc = luaL_loadstring(s->L, code);
    if (rc == LUA_OK)
        rc = lua_pcall(s->L, 0, LUA_MULTRET, 0);
    return rc;
}

/* Run code that must succeed and return true; on failure show why. */
static void ls_ok(lstate *s, const char *code)
{
    int rc = ls_run(s, code);
    if (rc != LUA_OK)
        fail_msg("lua error: %s", lua_tostring(s->L, -1));
    if (!lua_toboolean(s->L, 1))
        fail_msg("script returned false: %s", code);
}

/* Run code that must raise an error containing `want`. */
static void ls_err(lstate *s, const char *code, const char *want)
{
    int rc = ls_run(s, code);
    assert_int_not_equal(rc, LUA_OK);
    const char *msg = lua_tostring(s->L, -1);
    assert_non_null(msg);
    if (!strstr(msg, want))
        fail_msg("error \"%s\" does not contain \"%s\"", msg, want);
}

/* A state running a chunk on its own thread: status and error text for the test thread. */
typedef struct {
    lstate *s;
    const char *code;
    sem_t *started;
    int rc;
    char err[256];
} run_arg;

static void *run_thread(void *p)
{
    run_arg *a = p;
    lua_settop(a->s->L, 0);
    a->rc = luaL_loadstring(a->s->L, a->code);
    if (a->started)
        sem_post(a->started);
    if (a->rc == LUA_OK)
        a->rc = lua_pcall(a->s->L, 0, 0, 0);
    if (a->rc != LUA_OK)
        snprintf(a->err, sizeof a->err, "%s", lua_tostring(a->s->L, -1));
    return NULL;
}

/* ---- cases ---------------------------------------------------------------------------------- */

/* Tables with cycles and shared subtables go from one state to another on two threads. */
static void chan_lua_send_recv_threads(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(4, 0, &ch), INTERP_OK);
    lstate a, b;
    ls_open(&a);
    ls_open(&b);
    ls_set_chan(&a, "ch", ch);
    ls_set_chan(&b, "ch", ch);
    run_arg ra = {.s = &a,
                  .code = "for i = 1, 2000 do\n"
                          "  local t = {n = i, s = ('x'):rep(i % 7), f = i + 0.5}\n"
                          "  t.self = t; local sub = {t}; t.a, t.b = sub, sub\n"
                          "  assert(ch:send(t) == true)\n"
                          "end\n"
                          "ch:send('done')"};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, &ra), 0);
    ls_ok(&b, "for i = 1, 2000 do\n"
              "  local t = ch:recv()\n"
              "  if t.n ~= i or t.self ~= t or t.a ~= t.b or t.a[1] ~= t then return false end\n"
              "  if t.s ~= ('x'):rep(i % 7) or t.f ~= i + 0.5 then return false end\n"
              "  if math.type(t.n) ~= 'integer' then return false end\n"
              "end\n"
              "return ch:recv() == 'done' and #ch == 0");
    pthread_join(t, NULL);
    assert_int_equal(ra.rc, LUA_OK);
    ls_close(&a);
    ls_close(&b);
    interp_chan_release(ch);
}

static void chan_lua_timeouts(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(1, 0, &ch), INTERP_OK);
    lstate s;
    ls_open(&s);
    ls_set_chan(&s, "ch", ch);
    ls_ok(&s, "local t0 = os.clock()\n"
              "local v, err = ch:recv(0.02)\n"
              "if v ~= nil or err ~= 'timeout' then return false end\n"
              "v, err = ch:recv(0)\n"
              "if v ~= nil or err ~= 'timeout' then return false end\n"
              "assert(ch:send(1, 0))\n"
              "local ok, err2 = ch:send(2, 0)\n"
              "if ok ~= nil or err2 ~= 'timeout' then return false end\n"
              "ok, err2 = ch:send(2, 0.01)\n"
              "if ok ~= nil or err2 ~= 'timeout' then return false end\n"
              "return ch:recv() == 1 and #ch == 0");
    ls_err(&s, "ch:recv(0/0)", "NaN");
    ls_err(&s, "ch:recv('soon')", "number expected");
    ls_err(&s, "ch:send()", "value expected");
    ls_close(&s);
    interp_chan_release(ch);
}

static void chan_lua_closed(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(8, 0, &ch), INTERP_OK);
    lstate s;
    ls_open(&s);
    ls_set_chan(&s, "ch", ch);
    ls_ok(&s, "ch:send(1); ch:send(nil); ch:send({x = 'y'})\n"
              "ch:close(); ch:close()\n"
              "local ok, err = ch:send(4)\n"
              "if ok ~= nil or err ~= 'closed' then return false end\n"
              "if ch:recv() ~= 1 then return false end\n"
              "if select('#', ch:recv()) ~= 1 then return false end -- a nil that was sent\n"
              "if ch:recv().x ~= 'y' then return false end\n"
              "local v, e = ch:recv()\n"
              "if v ~= nil or e ~= 'closed' then return false end\n"
              "v, e = ch:recv(0)\n"
              "return v == nil and e == 'closed'");
    assert_true(interp_chan_is_closed(ch));
    ls_close(&s);
    interp_chan_release(ch);
}

static void chan_lua_methods(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(8, 0, &ch), INTERP_OK);
    lstate s;
    ls_open(&s);
    ls_set_chan(&s, "ch", ch);
    ls_set_chan(&s, "same", ch);
    ls_ok(&s, "ch:send('a'); ch:send('b')\n"
              "return #ch == 2 and ch:len() == 2 and ch == same and rawequal(ch, same) == false\n"
              "  and tostring(ch):match('^interp.channel') ~= nil\n"
              "  and getmetatable(ch) == 'locked'");
    ls_err(&s, "ch.send(42, 1)", "interp.channel expected");
    ls_err(&s, "ch.recv({})", "interp.channel expected");
    assert_int_equal(interp_chan_len(ch), 2);
    ls_close(&s); /* __gc drops the two references */
    interp_chan_release(ch);
}

static void chan_lua_select(void **state)
{
    (void)state;
    interp_chan *c[20];
    lstate s;
    ls_open(&s);
    lua_newtable(s.L);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(interp_chan_create(4, 0, &c[i]), INTERP_OK);
        interp__chan_push(s.L, c[i], &s.ctx);
        lua_rawseti(s.L, -2, i + 1);
    }
    lua_setglobal(s.L, "all");
    ls_ok(&s, "local a, b = all[1], all[2]\n"
              "b:send('hello')\n"
              "local ch, v = interp.select({a, b})\n"
              "if not rawequal(ch, b) or v ~= 'hello' then return false end\n"
              "local x, err = interp.select({a, b}, 0.01)\n"
              "if x ~= nil or err ~= 'timeout' then return false end\n"
              "-- fair: with both ready, service alternates\n"
              "for i = 1, 3 do a:send('a'); b:send('b') end\n"
              "local seen = ''\n"
              "for i = 1, 6 do local _, w = interp.select({a, b}); seen = seen .. w end\n"
              "if seen ~= 'ababab' and seen ~= 'bababa' then return false end\n"
              "-- more channels than fit on the C stack\n"
              "all[17]:send(17)\n"
              "ch, v = interp.select(all)\n"
              "if not rawequal(ch, all[17]) or v ~= 17 then return false end\n"
              "a:close(); b:close()\n"
              "x, err = interp.select({a, b})\n"
              "return x == nil and err == 'closed'");
    ls_err(&s, "interp.select({})", "no channels");
    ls_err(&s, "interp.select({all[1], 5})", "element 2 of the list is not a channel");
    ls_err(&s, "interp.select(all[1])", "table expected");
    ls_close(&s);
    for (int i = 0; i < 20; i++)
        interp_chan_release(c[i]);
}

/* A select blocked in one state is woken by a send from another state on another thread. */
static void chan_lua_select_wakes(void **state)
{
    (void)state;
    interp_chan *a, *b;
    assert_int_equal(interp_chan_create(1, 0, &a), INTERP_OK);
    assert_int_equal(interp_chan_create(1, 0, &b), INTERP_OK);
    lstate x, y;
    ls_open(&x);
    ls_open(&y);
    ls_set_chan(&x, "a", a);
    ls_set_chan(&x, "b", b);
    ls_set_chan(&y, "b", b);
    sem_t started;
    sem_init(&started, 0, 0);
    run_arg r = {.s = &x,
                 .started = &started,
                 .code = "local ch, v = interp.select({a, b})\n"
                         "assert(rawequal(ch, b) and v.k == 'v', 'wrong select result')"};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, &r), 0);
    sem_wait(&started);
    ls_ok(&y, "return b:send({k = 'v'})");
    pthread_join(t, NULL);
    if (r.rc != LUA_OK)
        fail_msg("%s", r.err);
    sem_destroy(&started);
    ls_close(&x);
    ls_close(&y);
    interp_chan_release(a);
    interp_chan_release(b);
}

static void chan_lua_errors(void **state)
{
    (void)state;
    interp_chan *ch, *small;
    assert_int_equal(interp_chan_create(4, 0, &ch), INTERP_OK);
    assert_int_equal(interp_chan_create(4, 16, &small), INTERP_OK);
    lstate s;
    ls_open(&s);
    ls_set_chan(&s, "ch", ch);
    ls_set_chan(&s, "small", small);
    ls_err(&s, "ch:send({1, {handlers = {f = io.stdout}}})", ".handlers.f: cannot copy a userdata");
    ls_err(&s, "ch:send({co = coroutine.create(print)})", "cannot copy a thread");
    ls_err(&s, "ch:send(print)", "cannot copy a C function");
    ls_err(&s, "small:send(('x'):rep(100))", "exceeds the channel's size limit");
    assert_int_equal(interp_chan_len(ch), 0);
    assert_int_equal(interp_chan_len(small), 0);
    ls_ok(&s, "return small:send('short')");
    /* the state's own message limit applies when encoding */
    s.ctx.msg_opts.max_size = 32;
    ls_err(&s, "ch:send(('y'):rep(64))", "send:");
    s.ctx.msg_opts.max_size = 0;
    /* a function arriving in a state that refuses functions */
    s.ctx.msg_opts.allow_functions = true;
    ls_ok(&s, "return ch:send(function() return 1 end)");
    s.ctx.msg_opts.allow_functions = false;
    ls_err(&s, "ch:recv()", "recv:");
    assert_int_equal(interp_chan_len(ch), 0); /* the refused message was freed, not requeued */
    /* a state without a pool */
    s.ctx.chan_lookup = NULL;
    ls_err(&s, "interp.channel('x')", "belongs to no pool");
    ls_close(&s);
    interp_chan_release(ch);
    interp_chan_release(small);
}

static void chan_lua_named(void **state)
{
    (void)state;
    lstate x, y;
    ls_open(&x);
    ls_open(&y);
    ls_ok(&x, "local c = interp.channel('jobs', 2)\n"
              "c:send('one')\n"
              "return c == interp.channel('jobs')");
    ls_ok(&y, "local c = interp.channel('jobs')\n"
              "return c:recv() == 'one' and #c == 0");
    ls_err(&x, "interp.channel('jobs', -1)", "capacity");
    ls_err(&x, "interp.channel()", "string expected");
    ls_close(&x);
    ls_close(&y);
    reg_clear();
}

/* A state blocked in recv, send or select is woken when its token fires, with the error. */
static void chan_lua_cancel(void **state)
{
    (void)state;
    interp_chan *empty, *full;
    assert_int_equal(interp_chan_create(1, 0, &empty), INTERP_OK);
    assert_int_equal(interp_chan_create(1, 0, &full), INTERP_OK);
    interp_msg *nil = interp__msg_alloc(1, 1, 0);
    assert_non_null(nil);
    nil->data[0] = (char)0xc0;
    assert_int_equal(interp_chan_send(full, nil, 0), INTERP_OK);
    static const char *codes[3] = {"empty:recv()", "full:send(1)", "interp.select({empty})"};
    static const int reasons[3] = {INTERP_ERR_CANCELLED, INTERP_ERR_TIMEOUT, INTERP_ERR_SHUTDOWN};
    static const char *texts[3] = {"interp: task cancelled", "interp: task timed out",
                                   "interp: task stopped by pool shutdown"};
    for (int i = 0; i < 3; i++) {
        lstate s;
        ls_open(&s);
        ls_set_chan(&s, "empty", empty);
        ls_set_chan(&s, "full", full);
        sem_t started;
        sem_init(&started, 0, 0);
        run_arg r = {.s = &s, .code = codes[i], .started = &started};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, run_thread, &r), 0);
        sem_wait(&started);
        interp__cancel_fire(&s.tok, reasons[i]);
        pthread_join(t, NULL);
        assert_int_equal(r.rc, LUA_ERRRUN);
        if (strcmp(r.err, texts[i]) != 0) /* exactly interp/'s error value */
            fail_msg("error \"%s\" is not \"%s\"", r.err, texts[i]);
        sem_destroy(&started);
        ls_close(&s);
    }
    assert_int_equal(interp_chan_len(full), 1);
    interp_chan_release(empty);
    interp_chan_release(full);
}

/* A host state: never given a context, its extra space full of garbage (Lua leaves the main
 * thread's slot uninitialised; an embedding program may use it), with a coroutine created
 * before the binding is registered (it copies the slot). Channels work there, in the main
 * thread and in the coroutine, and nothing reads or writes the slot; a channel object keeps the
 * context it was made with (a fired token fails its wait), whatever the extra space holds. */
static void chan_lua_host_state_garbage_extraspace(void **state)
{
    (void)state;
    unsigned char garbage[LUA_EXTRASPACE];
    memset(garbage, 0xa5, sizeof garbage);
    lstate s;
    memset(&s, 0, sizeof s);
    s.L = luaL_newstate();
    assert_non_null(s.L);
    memcpy(lua_getextraspace(s.L), garbage, LUA_EXTRASPACE);
    luaL_openlibs(s.L);
    interp__cancel_init(&s.tok);
    ls_ok(&s, "co = coroutine.create(function(ch, other)\n"
              "  assert(ch:send({1, 'co'}))\n"
              "  local got, v = interp.select({other, ch})\n"
              "  return rawequal(got, ch) and v[2] == 'co' and #ch == 0\n"
              "end)\n"
              "return true");
    lua_newtable(s.L);
    interp__chan_lua_register_ctx(s.L, NULL);
    lua_setglobal(s.L, "interp");
    assert_null(interp__chan_lua_ctx(s.L));
    interp_chan *ch, *other, *cancelled;
    assert_int_equal(interp_chan_create(2, 0, &ch), INTERP_OK);
    assert_int_equal(interp_chan_create(2, 0, &other), INTERP_OK);
    assert_int_equal(interp_chan_create(2, 0, &cancelled), INTERP_OK);
    interp__chan_push(s.L, ch, NULL);
    lua_setglobal(s.L, "ch");
    interp__chan_push(s.L, other, NULL);
    lua_setglobal(s.L, "other");
    /* an object made with a context whose token has fired */
    interp__cancel_fire(&s.tok, INTERP_ERR_CANCELLED);
    s.ctx.cancel = &s.tok;
    interp__chan_push(s.L, cancelled, &s.ctx);
    lua_setglobal(s.L, "cancelled");

    ls_ok(&s, "local ok, r = coroutine.resume(co, ch, other)\n"
              "if not (ok and r) then return false end\n"
              "assert(ch:send('main'))\n"
              "if ch:recv() ~= 'main' or ch:len() ~= 0 then return false end\n"
              "local function failed(want, v, err) return v == nil and err == want end\n"
              "if not failed('timeout', ch:recv(0.01)) then return false end\n"
              "if not failed('timeout', interp.select({ch, other}, 0)) then return false end\n"
              "local w = coroutine.wrap(function() return ch:send(2), ch:recv(), #ch end)\n"
              "local sent, got, n = w()\n"
              "if not sent or got ~= 2 or n ~= 0 then return false end\n"
              "ch:close()\n"
              "return failed('closed', ch:recv())");
    ls_err(&s, "return interp.channel('x')", "belongs to no pool");
    ls_err(&s, "return cancelled:recv()", "interp: task cancelled");
    assert_memory_equal(lua_getextraspace(s.L), garbage, LUA_EXTRASPACE);
    ls_close(&s);
    interp_chan_release(ch);
    interp_chan_release(other);
    interp_chan_release(cancelled);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chan_lua_send_recv_threads),
        cmocka_unit_test(chan_lua_timeouts),
        cmocka_unit_test(chan_lua_closed),
        cmocka_unit_test(chan_lua_methods),
        cmocka_unit_test(chan_lua_select),
        cmocka_unit_test(chan_lua_select_wakes),
        cmocka_unit_test(chan_lua_errors),
        cmocka_unit_test(chan_lua_named),
        cmocka_unit_test(chan_lua_cancel),
        cmocka_unit_test(chan_lua_host_state_garbage_extraspace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
