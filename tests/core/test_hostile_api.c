/* test_hostile_api.c - a hostile tenant against the codec and the API's sizes (issue 12):
 * every size and count is refused with INTERP_ERR_INVALID and a reason before anything is
 * allocated, names are exact, untrusted bytes never carry bytecode, and the encoder never
 * drops a key. Each test also shows that the next ordinary call works. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "interp_msg_lua.h"
#include "interp_pool.h"
#include "msg_impl.h"

static interp_pool *make_pool(bool sandbox)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    if (sandbox) {
        o.sandbox = INTERP_SANDBOX_SAFE;
        o.memory_limit = 16 << 20;
        o.task_timeout = 5.0;
    }
    o.init_source = "function id(...) return ... end";
    interp_pool *p;
    assert_int_equal(interp_pool_create(&p, &o, NULL), INTERP_OK);
    return p;
}

/* Run `src` as a task; returns its status, first line of the error in why. */
static int run(interp_pool *p, const char *src, char *why, size_t n)
{
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = src}};
    interp_future *f;
    int rc = interp_pool_submit_task(p, &t, INTERP_FOREVER, &f);
    if (rc != INTERP_OK)
        return rc;
    rc = interp_future_result(f, 30.0, NULL);
    const char *e = rc == INTERP_OK ? "" : interp_future_error(f);
    snprintf(why, n, "%.*s", (int)strcspn(e, "\n"), e);
    interp_future_release(f);
    return rc;
}

/* ---- item 7: a string key that looks like an integer ---------------------------------- */

static void hostile_encoder_keeps_string_keys(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    /* the array part holds 1, nil, 3 (length 3); "2" sits in the hash part */
    assert_int_equal(luaL_dostring(L, "local t = {1, nil, 3} t['2'] = 'two' "
                                      "local u = {} u[1] = 'a' u['1'] = 'b' return t, u"),
                     LUA_OK);
    interp_msg *m;
    interp_msg_error err;
    assert_int_equal(interp_msg_from_lua(L, 1, 2, NULL, &m, &err), INTERP_OK);
    lua_settop(L, 0);
    assert_int_equal(interp_msg_to_lua(L, m, NULL, &err), INTERP_OK);
    lua_setglobal(L, "u");
    lua_setglobal(L, "t");
    assert_int_equal(luaL_dostring(L, "assert(t[1] == 1 and t[2] == nil and t[3] == 3) "
                                      "assert(t['2'] == 'two', 'string key lost') "
                                      "assert(u[1] == 'a' and u['1'] == 'b')"),
                     LUA_OK);
    interp_msg_free(m);
    lua_close(L);

    /* the same through a sandboxed pool, both ways */
    interp_pool *p = make_pool(true);
    char why[256];
    assert_int_equal(run(p,
                         "local t = {1, nil, 3} t['2'] = 'two' "
                         "local r = interp.channel('k') r:send(t) local v = r:recv() "
                         "assert(v['2'] == 'two' and v[3] == 3, 'lost on a channel')",
                         why, sizeof why),
                     INTERP_OK);
    interp_pool_destroy(p);
}

/* ---- item 3: map sizes ------------------------------------------------------------------ */

static void hostile_map_chunksize(void **state)
{
    (void)state;
    interp_pool *p = make_pool(false);
    interp_msg *in[3] = {interp_msg_int(1), interp_msg_int(2), interp_msg_int(3)};
    interp_msg *out[3];
    int st[3];
    char *errs[3];
    const size_t bad[] = {(size_t)1 << 61, (size_t)1 << 59, (size_t)1 << 30, SIZE_MAX,
                          INTERP_MAP_MAX_CHUNKSIZE + 1};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        interp_map_options mo = {.chunksize = bad[k], .status = st, .errors = errs};
        assert_int_equal(interp_pool_map(p, "id", 3, (const interp_msg *const *)in, out, &mo),
                         INTERP_ERR_INVALID);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(st[i], INTERP_ERR_INVALID);
            assert_null(out[i]);
            assert_non_null(strstr(errs[i], "chunksize must be at most 1048576"));
            free(errs[i]);
        }
    }
    /* at the bound with 3 items: only 3 slots are reserved, it runs */
    interp_map_options mo = {.chunksize = INTERP_MAP_MAX_CHUNKSIZE, .status = st, .errors = errs};
    assert_int_equal(interp_pool_map(p, "id", 3, (const interp_msg *const *)in, out, &mo),
                     INTERP_OK);
    for (int i = 0; i < 3; i++) {
        interp_msg_iter it = interp_msg_iter_init(out[i]);
        interp_msg_value v;
        assert_true(interp_msg_next(&it, &v) && v.type == INTERP_MSG_INT && v.as.i == i + 1);
        interp_msg_free(out[i]);
        assert_null(errs[i]);
    }
    for (int i = 0; i < 3; i++)
        interp_msg_free(in[i]);
    interp_pool_destroy(p);
}

static bool no_input(void *ud, size_t i, interp_msg **args)
{
    (void)ud, (void)i, (void)args;
    return false;
}

static void ignore_result(void *ud, size_t i, int status, interp_msg *r, const char *e)
{
    (void)ud, (void)i, (void)status, (void)e;
    interp_msg_free(r);
}

static void hostile_map_stream_sizes(void **state)
{
    (void)state;
    interp_pool *p = make_pool(false);
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = "id"};
    assert_int_equal(interp_pool_map_stream(p, &fn, no_input, ignore_result, NULL, SIZE_MAX, NULL),
                     INTERP_ERR_INVALID);
    interp_map_options mo = {.chunksize = (size_t)1 << 61};
    assert_int_equal(interp_pool_map_stream(p, &fn, no_input, ignore_result, NULL, 0, &mo),
                     INTERP_ERR_INVALID);
    mo.chunksize = 0;
    mo.timeout = NAN;
    assert_int_equal(interp_pool_map_stream(p, &fn, no_input, ignore_result, NULL, 0, &mo),
                     INTERP_ERR_INVALID);
    assert_int_equal(interp_pool_map_stream(p, &fn, no_input, ignore_result, NULL, 0, NULL),
                     INTERP_OK);
    interp_pool_destroy(p);
}

/* One rule for a function everywhere (interp__fn_check): an empty name, a NULL text or message
 * and an unknown kind are refused by submit, map and map_stream alike. */
static void hostile_bad_functions_refused_everywhere(void **state)
{
    (void)state;
    interp_pool *p = make_pool(false);
    const interp_fn bad[] = {
        {.kind = INTERP_FN_NAME, .text = ""},      {.kind = INTERP_FN_NAME, .text = NULL},
        {.kind = INTERP_FN_SOURCE, .text = NULL},  {.kind = INTERP_FN_FUNCTION, .function = NULL},
        {.kind = (interp_fn_kind)7, .text = "id"},
    };
    interp_msg *in[1] = {interp_msg_int(1)};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        interp_task t = {.fn = bad[k]};
        interp_future *f = NULL;
        assert_int_equal(interp_pool_submit_task(p, &t, 0, &f), INTERP_ERR_INVALID);
        assert_null(f);
        interp_msg *out[1];
        assert_int_equal(
            interp_pool_map_fn(p, &bad[k], 1, (const interp_msg *const *)in, out, NULL),
            INTERP_ERR_INVALID);
        assert_int_equal(interp_pool_map_fn(p, &bad[k], 0, NULL, NULL, NULL), INTERP_ERR_INVALID);
        assert_int_equal(interp_pool_map_stream(p, &bad[k], no_input, ignore_result, NULL, 0, NULL),
                         INTERP_ERR_INVALID);
    }
    assert_int_equal(interp_pool_map_fn(p, NULL, 0, NULL, NULL, NULL), INTERP_ERR_INVALID);
    interp_msg_free(in[0]);
    interp_pool_destroy(p);
}

/* ---- waits and channels: counts and timeouts --------------------------------------------- */

static void hostile_wait_sizes(void **state)
{
    (void)state;
    interp_pool *p = make_pool(false);
    interp_future *f;
    assert_int_equal(interp_pool_submit(p, "id", interp_msg_int(1), &f), INTERP_OK);
    assert_int_equal(interp_future_wait(f, NAN), INTERP_ERR_INVALID);
    interp_future *fs[1] = {f};
    assert_int_equal(interp_futures_wait(fs, INTERP_WAIT_MAX_FUTURES + 1, INTERP_WAIT_ALL, 0, NULL),
                     INTERP_ERR_INVALID);
    assert_int_equal(interp_futures_wait(fs, SIZE_MAX, INTERP_WAIT_ALL, 0, NULL),
                     INTERP_ERR_INVALID);
    interp_as_completed *it;
    assert_int_equal(interp_as_completed_new(fs, SIZE_MAX, &it), INTERP_ERR_INVALID);
    assert_int_equal(interp_future_wait(f, 30.0), INTERP_OK);
    interp_future_release(f);

    interp_chan *ch;
    assert_int_equal(interp_chan_create(INTERP_CHAN_MAX_CAPACITY + 1, 0, &ch), INTERP_ERR_INVALID);
    assert_int_equal(interp_chan_create(SIZE_MAX, 0, &ch), INTERP_ERR_INVALID);
    assert_int_equal(interp_chan_create(4, 0, &ch), INTERP_OK);
    size_t idx;
    interp_msg *m;
    interp_chan *chans[1] = {ch};
    assert_int_equal(interp_chan_select(chans, SIZE_MAX, 0, &idx, &m), INTERP_ERR_INVALID);
    assert_int_equal(interp_chan_select(chans, 1, NAN, &idx, &m), INTERP_ERR_INVALID);
    assert_int_equal(interp_chan_select(chans, 1, 0, &idx, &m), INTERP_ERR_AGAIN);
    interp_chan_release(ch);
    interp_pool_destroy(p);
}

static void hostile_channel_names(void **state)
{
    (void)state;
    interp_pool *p = make_pool(true);
    interp_chan *ch;
    char name[INTERP_CHAN_MAX_NAME + 2];
    memset(name, 'n', sizeof name);
    name[INTERP_CHAN_MAX_NAME + 1] = '\0';
    assert_int_equal(interp_pool_channel(p, name, 0, &ch), INTERP_ERR_INVALID); /* 257 bytes */
    assert_null(ch);
    assert_int_equal(interp_pool_channel(p, "", 0, &ch), INTERP_ERR_INVALID);
    assert_int_equal(interp_pool_channel(p, "c", INTERP_CHAN_MAX_CAPACITY + 1, &ch),
                     INTERP_ERR_INVALID);
    name[INTERP_CHAN_MAX_NAME] = '\0';
    assert_int_equal(interp_pool_channel(p, name, 0, &ch), INTERP_OK); /* 256 bytes */
    interp_chan_release(ch);

    char why[256];
    /* "a\0b" is not the channel "a"; "" is refused, not a channel the host cannot open */
    assert_int_equal(run(p, "interp.channel('a\\0b')", why, sizeof why), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(why, "without NUL bytes"));
    assert_int_equal(run(p, "interp.channel('')", why, sizeof why), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(why, "1 to 256 bytes"));
    assert_int_equal(run(p, "interp.channel(('x'):rep(3 << 20))", why, sizeof why),
                     INTERP_ERR_SCRIPT);
    assert_non_null(strstr(why, "1 to 256 bytes"));
    assert_int_equal(run(p, "interp.channel('big', 1 << 40)", why, sizeof why), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(why, "capacity"));
    /* the host and the task meet on the name exactly */
    assert_int_equal(run(p, "interp.channel('a'):send(1)", why, sizeof why), INTERP_OK);
    assert_int_equal(interp_pool_channel(p, "a", 0, &ch), INTERP_OK);
    assert_int_equal(interp_chan_len(ch), 1);
    interp_chan_release(ch);
    /* many names cost one hash each: 4096 names, then LIMIT, then the old ones still work */
    assert_int_equal(
        run(p, "for i = 1, 4096 - 2 do interp.channel('n' .. i, 1) end", why, sizeof why),
        INTERP_OK);
    assert_int_equal(run(p, "interp.channel('one too many')", why, sizeof why), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(why, "limit"));
    assert_int_equal(run(p, "for i = 1, 4094 do interp.channel('n' .. i) end", why, sizeof why),
                     INTERP_OK);
    interp_pool_destroy(p);
}

/* ---- item 6: untrusted bytes carry no bytecode ------------------------------------------ */

static void hostile_from_bytes_functions(void **state)
{
    (void)state;
    /* a real function, encoded by a full-profile state */
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    assert_int_equal(luaL_dostring(L, "local up = 7 return function() return up end"), LUA_OK);
    interp_msg_opts fo = {.allow_functions = true};
    interp_msg *m;
    interp_msg_error err;
    assert_int_equal(interp_msg_from_lua(L, 1, 1, &fo, &m, &err), INTERP_OK);
    interp_msg *copy;
    assert_int_equal(interp_msg_from_bytes(interp_msg_data(m), interp_msg_size(m), 0, &copy),
                     INTERP_ERR_DECODE);
    assert_null(copy);
    /* inside an array too */
    unsigned char wrapped[1 << 12];
    assert_true(interp_msg_size(m) + 1 < sizeof wrapped);
    wrapped[0] = 0x91;
    memcpy(wrapped + 1, interp_msg_data(m), interp_msg_size(m));
    assert_int_equal(interp_msg_from_bytes(wrapped, interp_msg_size(m) + 1, 0, &copy),
                     INTERP_ERR_DECODE);
    /* asked for explicitly: accepted, and it loads */
    assert_int_equal(interp_msg_from_bytes_ex(interp_msg_data(m), interp_msg_size(m), 0,
                                              INTERP_MSG_TRUST_FUNCTIONS, &copy),
                     INTERP_OK);
    lua_settop(L, 0);
    assert_int_equal(interp_msg_to_lua(L, copy, &fo, &err), INTERP_OK);
    assert_int_equal(lua_pcall(L, 0, 1, 0), LUA_OK);
    assert_int_equal(lua_tointeger(L, -1), 7);
    interp_msg_free(copy);
    interp_msg_free(m);
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hostile_encoder_keeps_string_keys),
        cmocka_unit_test(hostile_map_chunksize),
        cmocka_unit_test(hostile_map_stream_sizes),
        cmocka_unit_test(hostile_bad_functions_refused_everywhere),
        cmocka_unit_test(hostile_wait_sizes),
        cmocka_unit_test(hostile_channel_names),
        cmocka_unit_test(hostile_from_bytes_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
