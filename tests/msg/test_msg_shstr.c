/* test_msg_shstr.c - a large string crosses with one copy (msg/msg_shstr.h): the message names
 * the sending state's block instead of copying it, and every owner path keeps the bytes alive
 * exactly as long as someone holds them (run under ASan: a use after free or a leak fails). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "interp_msg_lua.h"
#include "interp_pool.h"
#include "msg_impl.h"
#include "msg_shstr.h"

#define BIG ((size_t)1 << 20)

/* A state made like a worker's: the counting allocator, which heads large blocks. */
typedef struct wstate {
    interp__alloc a;
    lua_State *L;
} wstate;

static wstate *wopen(void)
{
    wstate *w = calloc(1, sizeof *w);
    assert_non_null(w);
    interp__shstr_enable(interp__alloc_fn);
    w->L = lua_newstate(interp__alloc_fn, &w->a);
    assert_non_null(w->L);
    luaL_openlibs(w->L);
    return w;
}

static void wclose(wstate *w)
{
    lua_close(w->L);
    assert_int_equal(atomic_load(&w->a.in_use), 0);
    free(w);
}

/* Push a string of n bytes whose byte i is 'a' + i % 23 (so a wrong offset shows). */
static void push_pattern(lua_State *L, size_t n)
{
    char *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('a' + i % 23);
    lua_pushlstring(L, b, n);
    free(b);
}

static bool is_pattern(const char *s, size_t n, size_t want)
{
    if (n != want)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] != (char)('a' + i % 23))
            return false;
    return true;
}

/* Encode the value at the top of L (left there). */
static interp_msg *enc_top(lua_State *L)
{
    interp_msg *m = NULL;
    interp_msg_error e;
    assert_int_equal(interp_msg_from_lua(L, -1, 1, NULL, &m, &e), INTERP_OK);
    return m;
}

/* Decode m into a plain state (the host's kind) and check it is the pattern string. */
static void check_decodes(const interp_msg *m, size_t want)
{
    lua_State *H = luaL_newstate();
    assert_int_equal(interp_msg_to_lua(H, m, NULL, NULL), INTERP_OK);
    size_t n;
    const char *s = lua_tolstring(H, -1, &n);
    assert_non_null(s);
    assert_true(is_pattern(s, n, want));
    lua_close(H);
}

static void shared_and_plain_forms_agree(void **st)
{
    (void)st;
    wstate *w = wopen();
    push_pattern(w->L, BIG);
    interp_msg *m = enc_top(w->L);
    assert_true(m->flags & INTERP__MSG_HAS_SHARED);
    assert_true(m->size <= 16); /* a handle, not the bytes */
    /* the same string from a host's state: plain bytes; both show the same */
    lua_State *H = luaL_newstate();
    push_pattern(H, BIG);
    interp_msg *p = enc_top(H);
    assert_false(p->flags & INTERP__MSG_HAS_SHARED);
    assert_int_equal(interp_msg_size(m), interp_msg_size(p));
    assert_memory_equal(interp_msg_data(m), interp_msg_data(p), interp_msg_size(p));
    assert_ptr_equal(interp_msg_data(m), interp_msg_data(m)); /* built once */
    /* the C reader sees a string */
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_STR);
    assert_true(is_pattern(v.as.str.ptr, v.as.str.len, BIG));
    /* its plain bytes are a valid message from outside; a handle from outside is refused */
    interp_msg *q = NULL;
    assert_int_equal(interp_msg_from_bytes(interp_msg_data(m), interp_msg_size(m), 0, &q),
                     INTERP_OK);
    check_decodes(q, BIG);
    interp_msg_free(q);
    assert_int_not_equal(interp_msg_from_bytes(m->data, m->size, 0, &q), INTERP_OK);
    /* a short string is copied as before */
    lua_pushstring(w->L, "short");
    interp_msg *s = enc_top(w->L);
    assert_false(s->flags & INTERP__MSG_HAS_SHARED);
    interp_msg_free(s);
    check_decodes(m, BIG);
    interp_msg_free(m);
    interp_msg_free(p);
    lua_close(H);
    wclose(w);
}

/* The sender's state closes (every block Lua had freed) before the receiver decodes. */
static void outlives_the_sending_state(void **st)
{
    (void)st;
    wstate *w = wopen();
    push_pattern(w->L, BIG);
    interp_msg *m = enc_top(w->L);
    interp_msg *d = interp_msg_dup(m); /* a copy holds its own reference */
    assert_true(d->flags & INTERP__MSG_HAS_SHARED);
    wclose(w);
    check_decodes(m, BIG);
    interp_msg_free(m);
    check_decodes(d, BIG);
    assert_int_equal(interp_msg_size(d), BIG + 5);
    interp_msg_free(d);
}

/* Lua collects the string while the message lives; the state goes on making big blocks. */
static void outlives_the_string(void **st)
{
    (void)st;
    wstate *w = wopen();
    push_pattern(w->L, BIG);
    interp_msg *m = enc_top(w->L);
    size_t before = atomic_load(&w->a.in_use);
    lua_pop(w->L, 1);
    lua_gc(w->L, LUA_GCCOLLECT);
    assert_true(atomic_load(&w->a.in_use) + BIG <= before); /* the heap let go of it */
    /* tables growing through and shrinking below the header threshold */
    assert_int_equal(luaL_dostring(w->L, "local t = {} for i = 1, 100000 do t[i] = i end "
                                         "for i = 1, 100000 do t[i] = nil end "
                                         "collectgarbage() t = nil collectgarbage()"),
                     LUA_OK);
    check_decodes(m, BIG);
    interp_msg_free(m);
    wclose(w);
}

static void *free_on_thread(void *m)
{
    interp_msg_free(m);
    return NULL;
}

/* The message is freed on another thread while Lua still holds the string, and the other way
 * round. */
static void freed_on_another_thread(void **st)
{
    (void)st;
    wstate *w = wopen();
    push_pattern(w->L, BIG);
    for (int round = 0; round < 2; round++) {
        interp_msg *m = enc_top(w->L);
        interp_msg *c = interp_msg_dup(m);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, free_on_thread, m), 0);
        if (round == 1) { /* Lua drops the string while the thread frees */
            lua_pop(w->L, 1);
            lua_gc(w->L, LUA_GCCOLLECT);
        }
        assert_int_equal(pthread_join(t, NULL), 0);
        check_decodes(c, BIG);
        interp_msg_free(c);
    }
    wclose(w);
}

/* Inside a table, several times, as a map key, inside a function (copied), concatenated by the
 * C builder (its plain form); a message over max_size is refused at both ends. */
static void tables_functions_builder_limits(void **st)
{
    (void)st;
    wstate *w = wopen();
    lua_State *L = w->L;
    push_pattern(L, BIG);
    lua_setglobal(L, "s");
    assert_int_equal(luaL_dostring(L, "return {s, 7, s, [s] = true, n = {s}}"), LUA_OK);
    interp_msg *m = enc_top(L);
    assert_true(m->flags & INTERP__MSG_HAS_SHARED);
    assert_true(interp_msg_size(m) > 4 * BIG);
    lua_State *H = luaL_newstate();
    assert_int_equal(interp_msg_to_lua(H, m, NULL, NULL), INTERP_OK);
    lua_rawgeti(H, -1, 3);
    size_t n;
    const char *s = lua_tolstring(H, -1, &n);
    assert_true(is_pattern(s, n, BIG));
    lua_pushvalue(H, -1);
    lua_rawget(H, -3); /* t[s] */
    assert_true(lua_toboolean(H, -1));
    lua_settop(H, 0);

    /* the builder appends the plain form */
    interp_msg_builder *b = interp_msg_builder_new();
    assert_non_null(b);
    assert_int_equal(interp_msg_add_int(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, m), INTERP_OK);
    interp_msg *cat = NULL;
    assert_int_equal(interp_msg_builder_finish(b, &cat), INTERP_OK);
    assert_false(cat->flags & INTERP__MSG_HAS_SHARED);
    assert_int_equal(interp_msg_size(cat), 1 + interp_msg_size(m));
    interp_msg_free(cat);

    /* a function's upvalue is copied (handles never sit in a function's payload) */
    assert_int_equal(luaL_dostring(L, "local u = s return function() return #u end"), LUA_OK);
    interp_msg_opts fo = {.allow_functions = true};
    interp_msg *f = NULL;
    assert_int_equal(interp_msg_from_lua(L, -1, 1, &fo, &f, NULL), INTERP_OK);
    assert_false(f->flags & INTERP__MSG_HAS_SHARED);
    assert_true(f->size > BIG);
    interp_msg_free(f);

    /* limits count the string in full */
    interp_msg_opts small = {.max_size = BIG / 2};
    interp_msg *x = NULL;
    interp_msg_error e;
    lua_getglobal(L, "s");
    assert_int_equal(interp_msg_from_lua(L, -1, 1, &small, &x, &e), INTERP_ERR_LIMIT);
    assert_null(x);
    interp_msg *one = enc_top(L);
    assert_int_equal(interp_msg_to_lua(H, one, &small, &e), INTERP_ERR_LIMIT);
    interp_msg_free(one);
    lua_close(H);
    interp_msg_free(m);
    wclose(w);
}

/* Through a pool: a worker sends big strings on a channel and returns one; the pool is
 * destroyed before the host reads either. */
static void through_a_pool_destroyed_first(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.init_source = "function produce(n) local s = string.rep('xy', n // 2) "
                    "interp.channel('big', 4):send(s) return s, #s end";
    interp_pool *pool = NULL;
    assert_int_equal(interp_pool_create(&pool, &o, NULL), INTERP_OK);
    interp_chan *ch = NULL;
    assert_int_equal(interp_pool_channel(pool, "big", 4, &ch), INTERP_OK);
    interp_future *f = NULL;
    assert_int_equal(interp_pool_submitf(pool, &f, "produce", "i", (int)BIG), INTERP_OK);
    assert_int_equal(interp_future_wait(f, -1), INTERP_OK);
    interp_pool_destroy(pool);
    interp_msg *got = NULL;
    assert_int_equal(interp_chan_recv(ch, 1.0, &got), INTERP_OK);
    const interp_msg *res = NULL;
    assert_int_equal(interp_future_result(f, 0, &res), INTERP_OK);
    assert_true(res->flags & INTERP__MSG_HAS_SHARED);
    for (int k = 0; k < 2; k++) {
        interp_msg_iter it = interp_msg_iter_init(k ? res : got);
        interp_msg_value v;
        assert_true(interp_msg_next(&it, &v));
        assert_int_equal(v.type, INTERP_MSG_STR);
        assert_int_equal(v.as.str.len, BIG);
        assert_int_equal(v.as.str.ptr[BIG - 1], 'y');
    }
    interp_msg_free(got);
    interp_future_release(f);
    interp_chan_release(ch);
}

/* What a queued message holds is charged in full: a budget of 3 MiB takes two 1 MiB strings
 * on a channel nobody reads, not a third. */
static void budget_counts_shared_bytes(void **st)
{
    (void)st;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.memory_budget = 3 * BIG;
    o.init_source = "function fill() local s = string.rep('z', 1 << 20) "
                    "local ch = interp.channel('q', 16) local n = 0 "
                    "while true do local ok = pcall(ch.send, ch, s, 0) "
                    "if not ok then return n end n = n + 1 end end";
    interp_pool *pool = NULL;
    assert_int_equal(interp_pool_create(&pool, &o, NULL), INTERP_OK);
    interp_future *f = NULL;
    assert_int_equal(interp_pool_submitf(pool, &f, "fill", ""), INTERP_OK);
    int64_t sent = -1;
    assert_int_equal(interp_future_resultf(f, -1, "I", &sent), INTERP_OK);
    assert_true(sent >= 1 && sent <= 2);
    interp_future_release(f);
    interp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shared_and_plain_forms_agree),
        cmocka_unit_test(outlives_the_sending_state),
        cmocka_unit_test(outlives_the_string),
        cmocka_unit_test(freed_on_another_thread),
        cmocka_unit_test(tables_functions_builder_limits),
        cmocka_unit_test(through_a_pool_destroyed_first),
        cmocka_unit_test(budget_counts_shared_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
