/* test_msg_runs.c - long runs of plain values (numbers, nil, booleans): the encoder's and the
 * decoder's tight loops for them (a pool:map pack), interp_msg_push_lua going on from a run
 * into the full decoder, and interp_msg_store_lua. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "interp_msg_lua.h"

static const interp_msg_opts with_functions = {.allow_functions = true};

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    return L;
}

/* The values returned by chunk `src` in L, encoded (opts o); the stack is left as it was. */
static int encode_src(lua_State *L, const char *src, const interp_msg_opts *o, interp_msg **m,
                      interp_msg_error *err)
{
    int top = lua_gettop(L);
    if (luaL_loadstring(L, src) != LUA_OK || lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(L, -1));
    int n = lua_gettop(L) - top;
    int rc = interp_msg_from_lua(L, top + 1, n, o, m, err);
    assert_int_equal(lua_gettop(L), top + n);
    lua_settop(L, top);
    return rc;
}

/* Run chunk `check` with the table at the top of L as its `...`; it must return true. */
static void check_table(lua_State *L, const char *check)
{
    if (luaL_loadstring(L, check) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(L, -1));
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        fail_msg("check failed: %s", lua_tostring(L, -1));
    if (!lua_toboolean(L, -1))
        fail_msg("check returned false: %s", check);
    lua_pop(L, 1);
}

/* 300 values: every kind of plain value, a table and a string inside the run, subtypes kept */
static const char *const MIXED =
    "local t = {} "
    "for i = 1, 300 do "
    "  local k = i % 10 "
    "  t[i] = k == 0 and -i or k == 1 and i + 0.5 or k == 2 and math.maxinteger or "
    "    k == 3 and math.mininteger or k == 4 and (i % 4 == 0) or k == 5 and -0.0 or "
    "    k == 6 and 1e300 or k == 7 and 3.0 or k == 8 and 200 + i * 1000 or i "
    "end "
    "t[150] = {x = 1} t[151] = 'str' t[200] = nil "
    "return table.unpack(t, 1, 300)";
static const char *const MIXED_CHECK =
    "local t = ... "
    "for i = 1, 300 do "
    "  local k, v = i % 10, t[i] "
    "  local want = k == 0 and -i or k == 1 and i + 0.5 or k == 2 and math.maxinteger or "
    "    k == 3 and math.mininteger or k == 4 and (i % 4 == 0) or k == 5 and -0.0 or "
    "    k == 6 and 1e300 or k == 7 and 3.0 or k == 8 and 200 + i * 1000 or i "
    "  if i == 150 then assert(type(v) == 'table' and v.x == 1) "
    "  elseif i == 151 then assert(v == 'str') "
    "  elseif i == 200 then assert(v == nil) "
    "  else "
    "    assert(v == want, i) assert(math.type(v) == math.type(want), i) "
    "    if k == 5 then assert(1 / v < 0, 'negative zero') end "
    "  end "
    "end "
    "return true";

/* A run of plain values around a table and a string: through interp_msg_to_lua, every value
 * and its subtype as it was */
static void runs_roundtrip(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    assert_int_equal(encode_src(A, MIXED, NULL, &m, NULL), INTERP_OK);
    assert_int_equal(interp_msg_count(m), 300);
    interp_msg_error err;
    assert_int_equal(interp_msg_to_lua(B, m, NULL, &err), INTERP_OK);
    assert_int_equal(lua_gettop(B), 300);
    lua_createtable(B, 300, 0);
    lua_insert(B, 1);
    for (int i = 300; i >= 1; i--)
        lua_rawseti(B, 1, i);
    check_table(B, MIXED_CHECK);
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

/* The size limit inside a run: refused with the limit's text, at the value that passes it */
static void runs_size_limit(void **state)
{
    (void)state;
    lua_State *A = new_state();
    interp_msg *m = NULL;
    interp_msg_error err;
    interp_msg_opts o = {.max_size = 100};
    assert_int_equal(encode_src(A,
                                "local t = {} for i = 1, 200 do t[i] = i * 1000 end "
                                "return table.unpack(t)",
                                &o, &m, &err),
                     INTERP_ERR_LIMIT);
    assert_null(m);
    /* 100 bytes hold 33 values of 3 bytes (uint 16); room for the widest number is asked
     * for each value, so the limit strikes a value or two early (as value by value) */
    assert_non_null(strstr(err.text, ": message larger than 100 bytes"));
    assert_true(strncmp(err.text, "[32]", 4) == 0 || strncmp(err.text, "[33]", 4) == 0 ||
                strncmp(err.text, "[34]", 4) == 0);
    /* well below the limit: fits */
    assert_int_equal(encode_src(A,
                                "local t = {} for i = 1, 20 do t[i] = i * 1000 end "
                                "return table.unpack(t)",
                                &o, &m, &err),
                     INTERP_OK);
    assert_int_equal(interp_msg_size(m), 60);
    interp_msg_free(m);
    lua_close(A);
}

static int push_cfn(lua_State *L)
{
    const interp_msg *m = lua_touserdata(L, 1);
    lua_settop(L, 0);
    int n = interp_msg_push_lua(L, m, NULL);
    lua_createtable(L, n, 0);
    lua_insert(L, 1);
    for (int i = n; i >= 1; i--)
        lua_rawseti(L, 1, i);
    return 1;
}

static int store_cfn(lua_State *L)
{
    const interp_msg *m = lua_touserdata(L, 1);
    lua_Integer first = lua_tointeger(L, 2);
    lua_settop(L, 0);
    lua_pushstring(L, "below");
    lua_newtable(L);
    lua_pushstring(L, "above");
    int n = interp_msg_store_lua(L, m, NULL, 2, first);
    assert_int_equal(lua_gettop(L), 3); /* the stack as it was */
    assert_string_equal(lua_tostring(L, 1), "below");
    assert_string_equal(lua_tostring(L, 3), "above");
    lua_pushinteger(L, n);
    lua_setfield(L, 2, "n");
    lua_pushvalue(L, 2);
    return 1;
}

/* interp_msg_push_lua from a run into the decoder and back; interp_msg_store_lua at an offset */
static void runs_push_and_store(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    assert_int_equal(encode_src(A, MIXED, NULL, &m, NULL), INTERP_OK);
    lua_pushcfunction(B, push_cfn);
    lua_pushlightuserdata(B, m);
    assert_int_equal(lua_pcall(B, 1, 1, 0), LUA_OK);
    check_table(B, MIXED_CHECK);
    lua_pushcfunction(B, store_cfn);
    lua_pushlightuserdata(B, m);
    lua_pushinteger(B, 0);
    assert_int_equal(lua_pcall(B, 2, 1, 0), LUA_OK);
    lua_getfield(B, -1, "n");
    assert_int_equal(lua_tointeger(B, -1), 300);
    lua_pop(B, 1);
    check_table(B, MIXED_CHECK);
    lua_pushcfunction(B, store_cfn);
    lua_pushlightuserdata(B, m);
    lua_pushinteger(B, 1000);
    assert_int_equal(lua_pcall(B, 2, 1, 0), LUA_OK);
    check_table(B, "local t = ... assert(t[1000] == nil and t[1001] == 1.5 and t[1300] == -300) "
                   "assert(t[1150].x == 1 and t[1151] == 'str' and t[1200] == nil) "
                   "return next(t) ~= nil and t[1] == nil");
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

/* Errors after a run name the value by its index, in both entry points */
static void runs_errors(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    assert_int_equal(encode_src(A,
                                "local t = {} for i = 1, 40 do t[i] = i end "
                                "t[41] = {f = function() end} t[42] = 7 return table.unpack(t)",
                                &with_functions, &m, NULL),
                     INTERP_OK);
    lua_pushcfunction(B, push_cfn);
    lua_pushlightuserdata(B, m);
    assert_int_equal(lua_pcall(B, 1, 1, 0), LUA_ERRRUN);
    assert_string_equal(lua_tostring(B, -1),
                        "[41].f: cannot accept a function (functions are not allowed)");
    lua_settop(B, 0);
    lua_pushcfunction(B, store_cfn);
    lua_pushlightuserdata(B, m);
    lua_pushinteger(B, 0);
    assert_int_equal(lua_pcall(B, 2, 1, 0), LUA_ERRRUN);
    assert_string_equal(lua_tostring(B, -1),
                        "[41].f: cannot accept a function (functions are not allowed)");
    lua_settop(B, 0);
    interp_msg_free(m);
    /* an uncopyable value in a run: its index and reason */
    interp_msg_error err;
    m = NULL;
    assert_int_equal(encode_src(A,
                                "local t = {} for i = 1, 100 do t[i] = i end "
                                "t[77] = io.stdout return table.unpack(t)",
                                NULL, &m, &err),
                     INTERP_ERR_ENCODE);
    assert_null(m);
    assert_string_equal(err.text, "[77]: cannot copy a userdata");
    lua_close(A);
    lua_close(B);
}

/* Arrays inside a value: runs of plain elements around tables, strings and holes keep their
 * places; an error after a run names the element */
static void runs_nested_arrays(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    static const char *const src =
        "local t = {} for i = 1, 200 do t[i] = i % 3 == 0 and i + 0.25 or -i end "
        "t[50] = {1, 2, 3, 'x'} t[51] = 'str' t[52] = true "
        "return {a = t, b = {t, t}}, t";
    assert_int_equal(encode_src(A, src, NULL, &m, NULL), INTERP_OK);
    interp_msg_error err;
    assert_int_equal(interp_msg_to_lua(B, m, NULL, &err), INTERP_OK);
    assert_int_equal(lua_gettop(B), 2);
    lua_pop(B, 1);
    check_table(B, "local v = ... local t = v.a "
                   "assert(v.b[1] == t and v.b[2] == t, 'identity') "
                   "for i = 1, 200 do "
                   "  local want = i % 3 == 0 and i + 0.25 or -i "
                   "  if i == 50 then assert(#t[i] == 4 and t[i][3] == 3 and t[i][4] == 'x') "
                   "  elseif i == 51 then assert(t[i] == 'str') "
                   "  elseif i == 52 then assert(t[i] == true) "
                   "  else assert(t[i] == want and math.type(t[i]) == math.type(want), i) end "
                   "end "
                   "return #t == 200");
    interp_msg_free(m);
    assert_int_equal(encode_src(A,
                                "local t = {} for i = 1, 60 do t[i] = i end "
                                "t[41] = {f = function() end} return {list = t}",
                                &with_functions, &m, NULL),
                     INTERP_OK);
    assert_int_equal(interp_msg_to_lua(B, m, NULL, &err), INTERP_ERR_DECODE);
    assert_string_equal(err.text,
                        "[1].list[41].f: cannot accept a function (functions are not allowed)");
    assert_int_equal(lua_gettop(B), 0);
    interp_msg_free(m);
    m = NULL;
    assert_int_equal(encode_src(A,
                                "local t = {} for i = 1, 100 do t[i] = i * 0.5 end "
                                "t[77] = io.stdout return 1, {list = t}",
                                NULL, &m, &err),
                     INTERP_ERR_ENCODE);
    assert_null(m);
    assert_string_equal(err.text, "[2].list[77]: cannot copy a userdata");
    lua_close(A);
    lua_close(B);
}

static int store_limit_cfn(lua_State *L)
{
    const interp_msg *m = lua_touserdata(L, 1);
    static const interp_msg_opts small = {.max_size = 10};
    lua_newtable(L);
    interp_msg_store_lua(L, m, &small, -1, 0);
    return 0;
}

static void runs_store_limit(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    assert_int_equal(encode_src(A, "return 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12", NULL, &m, NULL),
                     INTERP_OK);
    lua_pushcfunction(B, store_limit_cfn);
    lua_pushlightuserdata(B, m);
    assert_int_equal(lua_pcall(B, 1, 0, 0), LUA_ERRRUN);
    assert_string_equal(lua_tostring(B, -1), "message of 12 bytes, larger than 10");
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_roundtrip),      cmocka_unit_test(runs_size_limit),
        cmocka_unit_test(runs_push_and_store), cmocka_unit_test(runs_errors),
        cmocka_unit_test(runs_store_limit),    cmocka_unit_test(runs_nested_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
