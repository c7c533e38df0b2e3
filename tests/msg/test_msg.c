/* test_msg.c - the Lua codec: every type and edge of a message, between two lua_States. */
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
#include "msg_impl.h"

static const interp_msg_opts with_functions = {.allow_functions = true};

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    return L;
}

static void run(lua_State *L, const char *src)
{
    if (luaL_dostring(L, src) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(L, -1));
}

/* Run `return <expr>` in L; its results stay on the stack. Returns how many. */
static int eval(lua_State *L, const char *expr)
{
    int top = lua_gettop(L);
    char src[4096];
    snprintf(src, sizeof src, "return %s", expr);
    if (luaL_loadstring(L, src) != LUA_OK || lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(L, -1));
    return lua_gettop(L) - top;
}

/* Encode the values of `expr` (evaluated in L after `setup`); the stack is left as it was. */
static int encode_in(lua_State *L, const char *setup, const char *expr, const interp_msg_opts *o,
                     interp_msg **m, interp_msg_error *err)
{
    if (setup)
        run(L, setup);
    int top = lua_gettop(L);
    int n = eval(L, expr);
    int rc = interp_msg_from_lua(L, top + 1, n, o, m, err);
    assert_int_equal(lua_gettop(L), top + n); /* the encoder leaves the stack as it was */
    lua_settop(L, top);
    return rc;
}

/* Call `check` (a chunk receiving the decoded values as ...) in B with the values of m; it
 * must return true. */
static void check_in(lua_State *B, const interp_msg *m, const interp_msg_opts *o, const char *check)
{
    int top = lua_gettop(B);
    if (luaL_loadstring(B, check) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(B, -1));
    interp_msg_error err;
    int rc = interp_msg_to_lua(B, m, o, &err);
    if (rc != INTERP_OK)
        fail_msg("decode: %s (%s)", interp_strerror(rc), err.text);
    assert_int_equal(lua_gettop(B), top + 1 + (int)interp_msg_count(m));
    if (lua_pcall(B, (int)interp_msg_count(m), 1, 0) != LUA_OK)
        fail_msg("check failed: %s", lua_tostring(B, -1));
    if (!lua_toboolean(B, -1))
        fail_msg("check returned false: %s", check);
    lua_settop(B, top);
}

/* Encode `expr` in one state (after `setup`), decode in another, run `check` there. */
static void roundtrip_opts(const char *setup, const char *expr, const char *check,
                           const interp_msg_opts *o)
{
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m = NULL;
    interp_msg_error err;
    int rc = encode_in(A, setup, expr, o, &m, &err);
    if (rc != INTERP_OK)
        fail_msg("encode %s: %s (%s)", expr, interp_strerror(rc), err.text);
    check_in(B, m, o, check);
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

static void roundtrip(const char *expr, const char *check)
{
    roundtrip_opts(NULL, expr, check, NULL);
}

/* The encode of `expr` fails with code and exactly `text`. */
static void refused(const char *setup, const char *expr, const interp_msg_opts *o, int code,
                    const char *text)
{
    lua_State *A = new_state();
    interp_msg *m = (interp_msg *)&m; /* must be reset to NULL */
    interp_msg_error err;
    int rc = encode_in(A, setup, expr, o, &m, &err);
    assert_int_equal(rc, code);
    assert_null(m);
    assert_string_equal(err.text, text);
    lua_close(A);
}

/* ---- scalars ----------------------------------------------------------------------------- */

static void msg_scalars_roundtrip(void **state)
{
    (void)state;
    roundtrip("nil, true, false, 0, 1, -1, 127, 128, -32, -33, 255, 256, 65535, 65536, "
              "4294967295, 4294967296, -2147483649, math.maxinteger, math.mininteger",
              "local n = select('#', ...) assert(n == 19, n) local v = {...} "
              "assert(v[1] == nil and v[2] == true and v[3] == false) "
              "local want = {0, 1, -1, 127, 128, -32, -33, 255, 256, 65535, 65536, 4294967295, "
              "4294967296, -2147483649, math.maxinteger, math.mininteger} "
              "for i, w in ipairs(want) do assert(v[i + 3] == w and math.type(v[i + 3]) == "
              "'integer', i) end return true");
}

static void msg_integer_vs_float(void **state)
{
    (void)state;
    roundtrip("3, 3.0, -0.0, 0.5, 1e308, -1e-308, 2^63, math.pi",
              "local a, b, c, d, e, f, g, h = ... "
              "assert(math.type(a) == 'integer' and a == 3) "
              "assert(math.type(b) == 'float' and b == 3) "
              "assert(math.type(c) == 'float' and c == 0 and 1 / c == -math.huge) "
              "assert(d == 0.5 and e == 1e308 and f == -1e-308 and g == 2^63 and h == math.pi) "
              "assert(math.type(g) == 'float') return true");
}

static void msg_nan_inf(void **state)
{
    (void)state;
    roundtrip("0/0, math.huge, -math.huge, {0/0, x = math.huge}",
              "local n, p, m, t = ... assert(n ~= n and math.type(n) == 'float') "
              "assert(p == math.huge and m == -math.huge) "
              "assert(t[1] ~= t[1] and t.x == math.huge) return true");
}

static void msg_strings_binary_safe(void **state)
{
    (void)state;
    roundtrip("'', 'a\\0b', '\\0', '\\255\\254', string.rep('x', 31), string.rep('y', 32), "
              "string.rep('z', 255), string.rep('w', 256), string.rep('v', 65536)",
              "local a, b, c, d, e, f, g, h, i = ... "
              "assert(a == '' and b == 'a\\0b' and #b == 3 and c == '\\0' and d == '\\255\\254') "
              "assert(e == string.rep('x', 31) and f == string.rep('y', 32)) "
              "assert(g == string.rep('z', 255) and h == string.rep('w', 256)) "
              "assert(i == string.rep('v', 65536)) return true");
}

static void msg_one_mib_string_with_nuls(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(i * 7 % 251); /* NULs every 251 bytes */
    lua_State *A = new_state(), *B = new_state();
    lua_pushlstring(A, buf, n);
    interp_msg *m;
    assert_int_equal(interp_msg_from_lua(A, -1, 1, NULL, &m, NULL), INTERP_OK);
    assert_true(interp_msg_size(m) == n + 5);
    assert_int_equal(interp_msg_to_lua(B, m, NULL, NULL), INTERP_OK);
    size_t len;
    const char *s = lua_tolstring(B, -1, &len);
    assert_true(len == n);
    assert_memory_equal(s, buf, n);
    interp_msg_free(m);
    free(buf);
    lua_close(A);
    lua_close(B);
}

/* ---- tables ------------------------------------------------------------------------------ */

static void msg_large_array(void **state)
{
    (void)state;
    roundtrip_opts("big = {} for i = 1, 100000 do big[i] = i * 2 end", "big",
                   "local t = ... assert(#t == 100000) for i = 1, 100000 do "
                   "assert(t[i] == i * 2) end assert(next(t, 100000) == nil) return true",
                   NULL);
}

static void msg_array_vs_map_wire(void **state)
{
    (void)state;
    lua_State *A = new_state();
    interp_msg *m;
    struct {
        const char *expr;
        unsigned char first;
    } cases[] = {
        {"{}", 0x90},            /* empty table: empty array */
        {"{1, 2, 3}", 0x93},     /* sequence: array */
        {"{1, nil, 3}", 0x82},   /* sparse: map */
        {"{[2] = 1}", 0x81},     /* does not start at 1: map */
        {"{1, 2, x = 3}", 0x83}, /* mixed: map */
        {"{[1.5] = 1}", 0x81},   /* float key: map */
        {"{n = 1}", 0x81},
        {"{1, {2}, 3, x = 4}", 0x84},   /* mixed, with a table element before the extra key */
        {"{1, 2, {3}, [5] = 5}", 0x84}, /* a hole after a table element */
        /* keys 1..3 inserted backwards (in the hash part, not in order): still an array */
        {"(function() local t = {} t[3] = 3 t[2] = {2} t[1] = 1 return t end)()", 0x93},
        {"(function() local t = {} for i = 20, 1, -1 do t[i] = i end return t end)()", 0xdc},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(encode_in(A, NULL, cases[i].expr, NULL, &m, NULL), INTERP_OK);
        assert_int_equal((unsigned char)interp_msg_data(m)[0], cases[i].first);
        assert_int_equal(interp_msg_count(m), 1);
        interp_msg_free(m);
    }
    /* map headers: counts learnt while writing get their shortest form (16-bit from 16 pairs);
     * a map whose body outgrows 4 KiB keeps a 32-bit header */
    struct {
        const char *setup;
        unsigned char first;
        unsigned pairs;
    } maps[] = {
        {"t = {} for i = 1, 15 do t['k' .. i] = i end", 0x8f, 15},
        {"t = {} for i = 1, 16 do t['k' .. i] = i end", 0xde, 16},
        {"t = {} for i = 1, 70000 do t['k' .. i] = i end", 0xdf, 70000},
        {"t = {} for i = 1, 3 do t['k' .. i] = string.rep('v', 2000) end", 0xdf, 3},
    };
    lua_State *B = new_state();
    for (size_t i = 0; i < sizeof maps / sizeof *maps; i++) {
        assert_int_equal(encode_in(A, maps[i].setup, "t", NULL, &m, NULL), INTERP_OK);
        assert_int_equal((unsigned char)interp_msg_data(m)[0], maps[i].first);
        interp_msg *v;
        assert_int_equal(interp_msg_from_bytes(interp_msg_data(m), interp_msg_size(m), 0, &v),
                         INTERP_OK);
        interp_msg_free(v);
        assert_int_equal(interp_msg_to_lua(B, m, NULL, NULL), INTERP_OK);
        lua_pushnil(B);
        unsigned n = 0;
        while (lua_next(B, -2)) {
            lua_pop(B, 1);
            n++;
        }
        assert_int_equal(n, maps[i].pairs);
        lua_settop(B, 0);
        interp_msg_free(m);
    }
    lua_close(B);
    /* exact bytes of a few values */
    assert_int_equal(encode_in(A, NULL, "3, 3.0, 'a', {7}, -1, true, nil", NULL, &m, NULL),
                     INTERP_OK);
    static const unsigned char want[] = {0x03, 0xcb, 0x40, 0x08, 0,    0,    0,    0,   0,
                                         0,    0xa1, 'a',  0x91, 0x07, 0xff, 0xc3, 0xc0};
    assert_int_equal(interp_msg_size(m), sizeof want);
    assert_memory_equal(interp_msg_data(m), want, sizeof want);
    assert_int_equal(interp_msg_count(m), 7);
    interp_msg_free(m);
    lua_close(A);
}

static void msg_sparse_and_mixed_tables(void **state)
{
    (void)state;
    roundtrip("{1, nil, 3}, {[1] = 'a', [3] = 'c'}, {10, 20, x = 'y', [-1] = 0, [0] = 0}, "
              "{[1.5] = 'f', [true] = false, [false] = true}",
              "local s, t, m, k = ... "
              "assert(s[1] == 1 and s[2] == nil and s[3] == 3) "
              "assert(t[1] == 'a' and t[2] == nil and t[3] == 'c') "
              "assert(m[1] == 10 and m[2] == 20 and m.x == 'y' and m[-1] == 0 and m[0] == 0) "
              "assert(k[1.5] == 'f' and k[true] == false and k[false] == true) return true");
}

static void msg_repeated_keys(void **state)
{
    (void)state;
    /* keys that look alike to the decoder's key cache (same length, first and last bytes),
     * keys with NULs, long keys, numbers as keys, in many records */
    roundtrip_opts(
        "recs = {} for i = 1, 300 do recs[i] = {axb = i, ayb = -i, ['a\\0b'] = 'n' .. i, "
        "[string.rep('k', 41)] = i, [string.rep('k', 40)] = -i, [1.5] = i} end",
        "recs",
        "local r = ... assert(#r == 300) for i = 1, 300 do local t = r[i] "
        "assert(t.axb == i and t.ayb == -i and t['a\\0b'] == 'n' .. i) "
        "assert(t[string.rep('k', 41)] == i and t[string.rep('k', 40)] == -i) "
        "assert(t[1.5] == i) local n = 0 for _ in pairs(t) do n = n + 1 end "
        "assert(n == 6) end return true",
        NULL);
}

static void msg_arrays_in_any_key_order(void **state)
{
    (void)state;
    roundtrip_opts("back = {} for i = 50, 1, -1 do back[i] = i % 2 == 0 and {i} or i end "
                   "mixed = {1, {2}, 3, x = 4} holes = {1, 2, {3}, [5] = 5}",
                   "back, mixed, holes",
                   "local b, m, h = ... assert(#b == 50) for i = 1, 50 do "
                   "if i % 2 == 0 then assert(b[i][1] == i) else assert(b[i] == i) end end "
                   "assert(m[1] == 1 and m[2][1] == 2 and m[3] == 3 and m.x == 4) "
                   "assert(h[1] == 1 and h[2] == 2 and h[3][1] == 3 and h[4] == nil and h[5] == 5) "
                   "return true",
                   NULL);
}

static void msg_empty_and_nested_tables(void **state)
{
    (void)state;
    roundtrip("{}, {{}, {{}}}, {a = {b = {c = {}}}}",
              "local e, n, d = ... assert(next(e) == nil) "
              "assert(#n == 2 and next(n[1]) == nil and next(n[2][1]) == nil) "
              "assert(next(d.a.b.c) == nil) return true");
}

static void msg_table_keys(void **state)
{
    (void)state;
    roundtrip("(function() local k = {name = 'key'} return {[k] = 'v', [k.name] = k} end)()",
              "local t = ... local k = t.key assert(type(k) == 'table' and k.name == 'key') "
              "assert(t[k] == 'v') return true");
}

static void msg_metatables_not_copied(void **state)
{
    (void)state;
    /* raw contents only: __index, __pairs and __len are neither copied nor called */
    roundtrip("setmetatable({1, 2}, {__index = function() error('called') end, "
              "__pairs = function() error('called') end, __len = function() error('called') end})",
              "local t = ... assert(getmetatable(t) == nil and #t == 2 and t[3] == nil) "
              "return true");
}

static void msg_shared_tables(void **state)
{
    (void)state;
    roundtrip_opts("t = {v = 1} u = {t, t, {t}}", "{a = t, b = t}, t, u",
                   "local x, t, u = ... assert(x.a == x.b and x.a == t and t.v == 1) "
                   "assert(u[1] == t and u[2] == t and u[3][1] == t) return true",
                   NULL);
}

static void msg_cycles(void **state)
{
    (void)state;
    roundtrip_opts("t = {} t.self = t a = {b = {}} a.b.c = a a.b.d = a.b "
                   "k = {} k[k] = k",
                   "t, a, k",
                   "local t, a, k = ... assert(t.self == t) "
                   "assert(a.b.c == a and a.b.d == a.b) assert(k[k] == k) return true",
                   NULL);
}

static void msg_refs_flags_and_bytes(void **state)
{
    (void)state;
    lua_State *A = new_state();
    interp_msg *m;
    assert_int_equal(encode_in(A, "t = {}", "{t, t}", NULL, &m, NULL), INTERP_OK);
    /* the outer array and t begin; the second t is a REF 1 object back (to t) */
    static const unsigned char want[] = {0x92, 0x90, 0xd4, INTERP_MSG_EXT_REF, 0x01};
    assert_int_equal(interp_msg_size(m), sizeof want);
    assert_memory_equal(interp_msg_data(m), want, sizeof want);
    assert_int_equal(m->flags, INTERP__MSG_HAS_REFS);
    interp_msg_free(m);
    /* distances: {a, {b}, a} -> the third element is 3 objects back (a, {b} and b since) */
    assert_int_equal(encode_in(A, "a = {} b = {}", "{a, {b}, a}", NULL, &m, NULL), INTERP_OK);
    static const unsigned char want3[] = {0x93, 0x90, 0x91, 0x90, 0xd4, INTERP_MSG_EXT_REF, 0x03};
    assert_int_equal(interp_msg_size(m), sizeof want3);
    assert_memory_equal(interp_msg_data(m), want3, sizeof want3);
    interp_msg_free(m);
    assert_int_equal(encode_in(A, NULL, "{1, {2}}, 'x'", NULL, &m, NULL), INTERP_OK);
    assert_int_equal(m->flags, 0);
    interp_msg_free(m);
    assert_int_equal(encode_in(A, NULL, "function() end", &with_functions, &m, NULL), INTERP_OK);
    assert_int_equal(m->flags, INTERP__MSG_HAS_FUNCTIONS);
    interp_msg_free(m);
    /* many objects: refs of 2 and 4 bytes */
    assert_int_equal(encode_in(A,
                               "big = {} for i = 1, 70000 do big[i] = {} end "
                               "big[70001] = big[300] big[70002] = big[69999]",
                               "big", NULL, &m, NULL),
                     INTERP_OK);
    lua_State *B = new_state();
    check_in(B, m, NULL,
             "local b = ... assert(#b == 70002 and b[70001] == b[300]) "
             "assert(b[70002] == b[69999] and b[1] ~= b[2]) return true");
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

static void msg_refs_survive_concatenation(void **state)
{
    (void)state;
    /* refs are distances back: the bytes of a message keep their meaning when appended after
     * other values, or wrapped into an array, without being rewritten */
    lua_State *A = new_state(), *B = new_state();
    interp_msg *first, *second, *m;
    assert_int_equal(encode_in(A, "x = {{}, {}}", "x, {x}", NULL, &first, NULL), INTERP_OK);
    assert_int_equal(encode_in(A, "t = {} t.self = t f = {a = t, b = {t}}", "f, t", &with_functions,
                               &second, NULL),
                     INTERP_OK);
    size_t n1 = interp_msg_size(first), n2 = interp_msg_size(second);
    char *bytes = malloc(1 + n1 + n2);
    assert_non_null(bytes);
    bytes[0] = (char)0x94; /* an array of the four values */
    memcpy(bytes + 1, interp_msg_data(first), n1);
    memcpy(bytes + 1 + n1, interp_msg_data(second), n2);
    assert_int_equal(interp_msg_from_bytes(bytes + 1, n1 + n2, 0, &m), INTERP_OK);
    assert_int_equal(interp_msg_count(m), 4);
    check_in(B, m, NULL,
             "local x, wx, f, t = ... assert(wx[1] == x and #x == 2) "
             "assert(f.a == t and f.b[1] == t and t.self == t) return true");
    interp_msg_free(m);
    assert_int_equal(interp_msg_from_bytes(bytes, 1 + n1 + n2, 0, &m), INTERP_OK);
    check_in(B, m, NULL,
             "local a = ... assert(a[2][1] == a[1] and a[3].a == a[4]) "
             "assert(a[4].self == a[4]) return true");
    interp_msg_free(m);
    free(bytes);
    interp_msg_free(first);
    interp_msg_free(second);
    lua_close(A);
    lua_close(B);
}

static void msg_many_values(void **state)
{
    (void)state;
    /* more top-level values than the fast path takes, with strings (the protected path) and a
     * message big enough for the decoder's helper slots: all of them need stack room */
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    run(A, "vals = {} for i = 1, 3000 do vals[i] = i % 3 == 0 and ('s' .. i) or i end");
    int top = lua_gettop(A);
    assert_int_equal(eval(A, "table.unpack(vals)"), 3000);
    assert_int_equal(interp_msg_from_lua(A, top + 1, 3000, NULL, &m, NULL), INTERP_OK);
    assert_int_equal(interp_msg_to_lua(B, m, NULL, NULL), INTERP_OK);
    assert_int_equal(lua_gettop(B), 3000);
    assert_string_equal(lua_tostring(B, 3), "s3");
    assert_int_equal(lua_tointeger(B, 2999), 2999);
    lua_settop(B, 0);
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

static void msg_zero_values(void **state)
{
    (void)state;
    lua_State *A = new_state();
    interp_msg *m;
    assert_int_equal(interp_msg_from_lua(A, 1, 0, NULL, &m, NULL), INTERP_OK);
    assert_int_equal(interp_msg_count(m), 0);
    assert_int_equal(interp_msg_size(m), 0);
    assert_int_equal(interp_msg_to_lua(A, m, NULL, NULL), INTERP_OK);
    assert_int_equal(lua_gettop(A), 0);
    interp_msg_free(m);
    lua_close(A);
}

/* ---- limits ------------------------------------------------------------------------------ */

static const char nest_fn[] = "function nest(n) local t = {} for i = 1, n - 1 do t = {t} end "
                              "return t end "
                              "function depth(t) local d = 0 while t do d = d + 1 t = t[1] end "
                              "return d end";

static void msg_depth_limit_encode(void **state)
{
    (void)state;
    lua_State *A = new_state();
    interp_msg *m;
    interp_msg_error err;
    run(A, nest_fn);
    assert_int_equal(encode_in(A, NULL, "nest(200)", NULL, &m, &err), INTERP_OK);
    interp_msg_free(m);
    assert_int_equal(encode_in(A, NULL, "nest(201)", NULL, &m, &err), INTERP_ERR_LIMIT);
    assert_null(m);
    assert_non_null(strstr(err.text, "nesting deeper than 200"));
    assert_true(strncmp(err.text, "[1][1][1]", 9) == 0);
    interp_msg_opts o = {.max_depth = 3};
    assert_int_equal(encode_in(A, NULL, "{a = {b = {}}}", &o, &m, &err), INTERP_OK);
    interp_msg_free(m);
    assert_int_equal(encode_in(A, NULL, "1, {a = {b = {c = {}}}}", &o, &m, &err), INTERP_ERR_LIMIT);
    assert_string_equal(err.text, "[2].a.b.c: nesting deeper than 3");
    /* a cycle is not deep: the back reference ends it */
    assert_int_equal(encode_in(A, "c = {} c[1] = {c}", "c", &o, &m, &err), INTERP_OK);
    interp_msg_free(m);
    lua_close(A);
}

static void msg_depth_limit_decode(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    interp_msg_error err;
    run(A, nest_fn);
    interp_msg_opts deep = {.max_depth = 300};
    assert_int_equal(encode_in(A, NULL, "nest(250)", &deep, &m, &err), INTERP_OK);
    lua_pushinteger(B, 42);
    assert_int_equal(interp_msg_to_lua(B, m, NULL, &err), INTERP_ERR_LIMIT);
    assert_non_null(strstr(err.text, "nesting deeper than 200"));
    assert_int_equal(lua_gettop(B), 1); /* nothing pushed */
    assert_int_equal(interp_msg_to_lua(B, m, &deep, &err), INTERP_OK);
    lua_setglobal(B, "got");
    run(B, nest_fn);
    run(B, "assert(depth(got) == 250)");
    /* bytes: the validator applies its own limit */
    interp_msg *copy;
    assert_int_equal(interp_msg_from_bytes(interp_msg_data(m), interp_msg_size(m), 0, &copy),
                     INTERP_ERR_LIMIT);
    assert_int_equal(interp_msg_from_bytes(interp_msg_data(m), interp_msg_size(m), 250, &copy),
                     INTERP_OK);
    interp_msg_free(copy);
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

static void msg_deep_values_do_not_overflow_c_stack(void **state)
{
    (void)state;
    /* 100000 nested tables: frames live on the heap, not the C stack */
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    interp_msg_error err;
    interp_msg_opts huge = {.max_depth = 1000000};
    run(A, nest_fn);
    assert_int_equal(encode_in(A, NULL, "nest(100000)", &huge, &m, &err), INTERP_OK);
    assert_int_equal(interp_msg_to_lua(B, m, &huge, &err), INTERP_OK);
    lua_setglobal(B, "got");
    run(B, nest_fn);
    run(B, "assert(depth(got) == 100000)");
    interp_msg *copy;
    assert_int_equal(interp_msg_from_bytes(interp_msg_data(m), interp_msg_size(m), 1000000, &copy),
                     INTERP_OK);
    interp_msg_free(copy);
    interp_msg_free(m);
    /* deeper than the Lua stack can hold (a map level takes two slots: its table and the
     * key): a clean LIMIT error, not a crash */
    assert_int_equal(encode_in(A, "deep = {} for i = 1, 520000 do deep = {x = deep} end", "deep",
                               &huge, &m, &err),
                     INTERP_ERR_LIMIT);
    assert_non_null(strstr(err.text, "Lua stack"));
    lua_close(A);
    lua_close(B);
}

static void msg_size_limit(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    interp_msg_error err;
    interp_msg_opts small = {.max_size = 100};
    assert_int_equal(encode_in(A, NULL, "string.rep('x', 95)", &small, &m, &err), INTERP_OK);
    assert_int_equal(interp_msg_size(m), 97);
    interp_msg_free(m);
    assert_int_equal(encode_in(A, NULL, "{s = string.rep('x', 99)}", &small, &m, &err),
                     INTERP_ERR_LIMIT);
    assert_string_equal(err.text, "[1].s: message larger than 100 bytes");
    assert_int_equal(
        encode_in(A, "many = {} for i = 1, 1000 do many[i] = i end", "many", &small, &m, &err),
        INTERP_ERR_LIMIT);
    assert_non_null(strstr(err.text, "message larger than 100 bytes"));
    /* decode refuses a message above its limit */
    assert_int_equal(encode_in(A, NULL, "string.rep('x', 200)", NULL, &m, &err), INTERP_OK);
    assert_int_equal(interp_msg_to_lua(B, m, &small, &err), INTERP_ERR_LIMIT);
    assert_int_equal(lua_gettop(B), 0);
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

/* ---- refused values and their paths -------------------------------------------------------- */

static void msg_refused_paths(void **state)
{
    (void)state;
    refused(NULL, "io.stdout", NULL, INTERP_ERR_ENCODE, "[1]: cannot copy a userdata");
    refused(NULL, "1, {handlers = {on_load = io.stdout}}", NULL, INTERP_ERR_ENCODE,
            "[2].handlers.on_load: cannot copy a userdata");
    refused(NULL, "{co = coroutine.create(print)}", NULL, INTERP_ERR_ENCODE,
            "[1].co: cannot copy a thread");
    refused(NULL, "{1, print}", &with_functions, INTERP_ERR_ENCODE,
            "[1][2]: cannot copy a C function");
    refused(NULL, "{f = function() end}", NULL, INTERP_ERR_ENCODE,
            "[1].f: cannot copy a function (functions are not allowed)");
    refused(NULL, "{[io.stdout] = 1}", NULL, INTERP_ERR_ENCODE, "[1]: key: cannot copy a userdata");
    refused(NULL, "{1, io.stdout, x = 1}", NULL, INTERP_ERR_ENCODE,
            "[1][2]: cannot copy a userdata");
    refused(NULL, "{1, {}, io.stdout, x = 1}", NULL, INTERP_ERR_ENCODE,
            "[1][3]: cannot copy a userdata");
    refused(NULL, "{[{io.stdout}] = 1}", NULL, INTERP_ERR_ENCODE,
            "[1]: key[1]: cannot copy a userdata");
    refused(NULL, "{['a b'] = {x = io.stdout}}", NULL, INTERP_ERR_ENCODE,
            "[1][\"a b\"].x: cannot copy a userdata");
    refused(NULL, "{[10] = {['end'] = io.stdout}}", NULL, INTERP_ERR_ENCODE,
            "[1][10][\"end\"]: cannot copy a userdata");
    refused(NULL, "{[2.5] = io.stdout}", NULL, INTERP_ERR_ENCODE,
            "[1][2.5]: cannot copy a userdata");
    refused(NULL, "{[true] = io.stdout}", NULL, INTERP_ERR_ENCODE,
            "[1][true]: cannot copy a userdata");
    /* the example of the documentation, exactly */
    refused("local sock = io.stdout "
            "handlers = {on_load = function() return sock end}",
            "1, {handlers = handlers}", &with_functions, INTERP_ERR_ENCODE,
            "[2].handlers.on_load: upvalue 'sock': cannot copy a userdata");
    refused("local p = print function g() return p end", "g", &with_functions, INTERP_ERR_ENCODE,
            "[1]: upvalue 'p': cannot copy a C function");
    refused("local cfg = {conn = io.stdout} function h() return cfg end", "{h}", &with_functions,
            INTERP_ERR_ENCODE, "[1][1]: upvalue 'cfg'.conn: cannot copy a userdata");
}

static void msg_failed_encode_leaves_state_clean(void **state)
{
    (void)state;
    /* fails after tables, a hash map larger than its inline part and deep frames were set up:
     * ASan checks that nothing leaks; the stack is checked by encode_in */
    lua_State *A = new_state();
    interp_msg *m;
    interp_msg_error err;
    run(A, nest_fn);
    run(A, "bad = {} for i = 1, 1000 do bad[i] = {i} end bad[1001] = nest(100) "
           "bad[1001][1] = io.stdout");
    assert_int_equal(encode_in(A, NULL, "bad", NULL, &m, &err), INTERP_ERR_ENCODE);
    assert_null(m);
    assert_string_equal(err.text, "[1][1001][1]: cannot copy a userdata");
    interp_msg_opts small = {.max_size = 2000};
    assert_int_equal(encode_in(A, NULL, "bad", &small, &m, &err), INTERP_ERR_LIMIT);
    /* NULL err is allowed */
    assert_int_equal(encode_in(A, NULL, "bad", NULL, &m, NULL), INTERP_ERR_ENCODE);
    lua_close(A);
}

static void msg_invalid_arguments(void **state)
{
    (void)state;
    lua_State *A = new_state();
    interp_msg *m;
    interp_msg_error err;
    lua_pushinteger(A, 1);
    assert_int_equal(interp_msg_from_lua(A, 1, 2, NULL, &m, &err), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_from_lua(A, 0, 1, NULL, &m, &err), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_from_lua(A, 1, -1, NULL, &m, &err), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_from_lua(A, 1, 1, NULL, NULL, &err), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_to_lua(A, NULL, NULL, &err), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_from_lua(A, -1, 1, NULL, &m, &err), INTERP_OK); /* relative */
    assert_int_equal(lua_gettop(A), 1);
    interp_msg_free(m);
    /* values in the middle of the stack */
    lua_pushstring(A, "two");
    lua_pushboolean(A, 1);
    lua_pushnil(A);
    assert_int_equal(interp_msg_from_lua(A, 2, 2, NULL, &m, &err), INTERP_OK);
    assert_int_equal(lua_gettop(A), 4);
    static const unsigned char want[] = {0xa3, 't', 'w', 'o', 0xc3};
    assert_int_equal(interp_msg_size(m), sizeof want);
    assert_memory_equal(interp_msg_data(m), want, sizeof want);
    interp_msg_free(m);
    lua_close(A);
}

/* ---- functions --------------------------------------------------------------------------- */

static void msg_function_with_upvalues(void **state)
{
    (void)state;
    roundtrip_opts("local base, step = 10, {by = 5} "
                   "function counter() local n = base return function() n = n + step.by "
                   "return n end end",
                   "counter()", "local f = ... assert(f() == 15 and f() == 20) return true",
                   &with_functions);
}

static void msg_function_env_rebound(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    interp_msg_error err;
    /* hello and set share their chunk's _ENV: the first carries the marker, the second a join */
    run(A, "greeting = 'sender' local G = _G "
           "function hello(x) return greeting .. x, G.greeting, string.upper(x) end "
           "function set(v) greeting = v end");
    assert_int_equal(encode_in(A, NULL, "hello, set", &with_functions, &m, &err), INTERP_OK);
    assert_int_equal(m->flags, INTERP__MSG_HAS_FUNCTIONS | INTERP__MSG_HAS_REFS);
    run(B, "greeting = 'receiver'");
    check_in(B, m, &with_functions,
             "local f, set = ... local a, b, c = f('!') assert(a == 'receiver!', a) "
             "assert(b == 'receiver' and c == '!') "
             "greeting = 'changed' assert(f('') == 'changed') "
             "set('by set') assert(greeting == 'by set' and f('') == 'by set') return true");
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

static void msg_function_recursive_and_shared(void **state)
{
    (void)state;
    /* fact is its own upvalue (REF to the function); inc and get share the variable n (JOIN) */
    roundtrip_opts("local function fact(n) if n < 2 then return 1 end return n * fact(n - 1) end "
                   "local n = 0 local function inc() n = n + 1 return n end "
                   "local function get() return n end "
                   "api = {fact = fact, inc = inc, get = get, again = fact}",
                   "api, api.inc",
                   "local api, inc = ... assert(api.fact(5) == 120 and api.again == api.fact) "
                   "assert(inc == api.inc) api.inc() inc() assert(api.get() == 2) return true",
                   &with_functions);
}

static void msg_function_cycle_through_upvalue(void **state)
{
    (void)state;
    roundtrip_opts("local t = {name = 't'} t.f = function() return t end obj = t", "obj",
                   "local t = ... assert(t.f() == t and t.f().name == 't') return true",
                   &with_functions);
}

static void msg_function_keeps_line_info(void **state)
{
    (void)state;
    roundtrip_opts("function boom()\n  local x = 1\n  error('boom')\nend", "boom",
                   "local f = ... local ok, e = pcall(f) assert(not ok) "
                   "assert(e:find(':3: boom'), e) return true",
                   &with_functions);
}

static void msg_function_refused_on_decode(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    interp_msg_error err;
    assert_int_equal(encode_in(A, NULL, "1, {x = {f = function() end}}", &with_functions, &m, &err),
                     INTERP_OK);
    lua_pushstring(B, "keep");
    assert_int_equal(interp_msg_to_lua(B, m, NULL, &err), INTERP_ERR_DECODE);
    assert_string_equal(err.text, "[2].x.f: cannot accept a function (functions are not allowed)");
    assert_int_equal(lua_gettop(B), 1);
    assert_string_equal(lua_tostring(B, 1), "keep");
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

/* ---- decode: memory errors, push_lua ------------------------------------------------------- */

typedef struct budget {
    size_t used, limit;
} budget;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    budget *b = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        b->used -= old;
        return NULL;
    }
    if (nsize > old && b->used + (nsize - old) > b->limit)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        b->used = b->used - old + nsize;
    return p;
}

static void msg_decode_nomem_leaves_stack(void **state)
{
    (void)state;
    lua_State *A = new_state();
    interp_msg *m;
    interp_msg_error err;
    assert_int_equal(encode_in(A,
                               "t = {} for i = 1, 2000 do t[i] = {name = 'item' .. i, i} end "
                               "t.self = t",
                               "7, t, string.rep('s', 10000)", NULL, &m, &err),
                     INTERP_OK);
    budget b = {0, (size_t)64 << 20};
    lua_State *B = lua_newstate(limited_alloc, &b);
    assert_non_null(B);
    luaL_openlibs(B);
    lua_gc(B, LUA_GCCOLLECT);
    size_t base = b.used;
    int nomem = 0, ok = 0;
    /* from far too little to enough: NOMEM with the stack untouched, or the whole value */
    for (size_t room = 0; room < 600000; room += room < 20000 ? 1500 : 25000) {
        b.limit = base + room;
        lua_pushboolean(B, 1);
        int rc = interp_msg_to_lua(B, m, NULL, &err);
        if (rc == INTERP_ERR_NOMEM) {
            nomem++;
            assert_int_equal(lua_gettop(B), 1);
            assert_string_equal(err.text, "out of memory");
        } else {
            assert_int_equal(rc, INTERP_OK);
            ok++;
            assert_int_equal(lua_gettop(B), 4);
            assert_int_equal(lua_tointeger(B, 2), 7);
        }
        lua_settop(B, 0);
        b.limit = (size_t)64 << 20;
        lua_gc(B, LUA_GCCOLLECT);
    }
    assert_true(nomem > 0);
    assert_true(ok > 0);
    interp_msg_free(m);
    lua_close(B);
    lua_close(A);
}

static int push_lua_cfn(lua_State *L)
{
    const interp_msg *m = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_pushstring(L, "below");
    int n = interp_msg_push_lua(L, m, NULL);
    lua_pushinteger(L, n);
    return n + 2;
}

static void msg_push_lua(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    assert_int_equal(encode_in(A, "t = {} t.t = t", "1, t, 'x'", NULL, &m, NULL), INTERP_OK);
    lua_pushcfunction(B, push_lua_cfn);
    lua_pushlightuserdata(B, m);
    assert_int_equal(lua_pcall(B, 1, LUA_MULTRET, 0), LUA_OK);
    assert_int_equal(lua_gettop(B), 5); /* "below", 1, t, 'x', count */
    assert_string_equal(lua_tostring(B, 1), "below");
    assert_int_equal(lua_tointeger(B, 2), 1);
    lua_getfield(B, 3, "t");
    assert_true(lua_rawequal(B, -1, 3));
    assert_string_equal(lua_tostring(B, 4), "x");
    assert_int_equal(lua_tointeger(B, 5), 3);
    lua_settop(B, 0);
    interp_msg_free(m);
    /* a big message (helper slots: objects, key cache) leaves only its values */
    assert_int_equal(encode_in(A,
                               "big = {} for i = 1, 100 do big[i] = {id = i, name = 'n' .. i} end "
                               "big.again = big[7]",
                               "big, 'end'", NULL, &m, NULL),
                     INTERP_OK);
    lua_pushcfunction(B, push_lua_cfn);
    lua_pushlightuserdata(B, m);
    assert_int_equal(lua_pcall(B, 1, LUA_MULTRET, 0), LUA_OK);
    assert_int_equal(lua_gettop(B), 4); /* "below", big, 'end', count */
    assert_string_equal(lua_tostring(B, 3), "end");
    lua_getfield(B, 2, "again");
    lua_rawgeti(B, 2, 7);
    assert_true(lua_rawequal(B, -1, -2));
    lua_getfield(B, -1, "name");
    assert_string_equal(lua_tostring(B, -1), "n7");
    lua_settop(B, 0);
    interp_msg_free(m);
    /* errors are raised with the reason */
    assert_int_equal(encode_in(A, NULL, "{f = function() end}", &with_functions, &m, NULL),
                     INTERP_OK);
    lua_pushcfunction(B, push_lua_cfn);
    lua_pushlightuserdata(B, m);
    assert_int_equal(lua_pcall(B, 1, LUA_MULTRET, 0), LUA_ERRRUN);
    assert_string_equal(lua_tostring(B, -1),
                        "[1].f: cannot accept a function (functions are not allowed)");
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

/* ---- bytes from elsewhere ------------------------------------------------------------------ */

static void msg_foreign_bytes(void **state)
{
    (void)state;
    lua_State *B = new_state();
    interp_msg *m;
    interp_msg_error err;
    /* uint64 above INT64_MAX -> float; float32 -> float; bin -> string; int8 -> integer */
    static const unsigned char bytes[] = {
        0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xca, 0x3f, 0xc0, 0x00, 0x00, 0xc4,
        0x02, 'h',  'i',  0xd0, 0x80, 0xd3, 0x80, 0,    0,    0,    0,    0,    0,    0};
    assert_int_equal(interp_msg_from_bytes(bytes, sizeof bytes, 0, &m), INTERP_OK);
    assert_int_equal(interp_msg_count(m), 5);
    check_in(B, m, NULL,
             "local u, f, s, i, mi = ... assert(math.type(u) == 'float' and u == 2^64) "
             "assert(math.type(f) == 'float' and f == 1.5 and s == 'hi') "
             "assert(math.type(i) == 'integer' and i == -128 and mi == math.mininteger) "
             "return true");
    interp_msg_free(m);
    /* keys Lua refuses: nil and NaN; the stack stays as it was */
    static const unsigned char nil_key[] = {0x81, 0xc0, 0x01};
    static const unsigned char nan_key[] = {0x92, 0x01, 0x81, 0xcb, 0x7f, 0xf8, 0,
                                            0,    0,    0,    0,    0,    0x01};
    assert_int_equal(interp_msg_from_bytes(nil_key, sizeof nil_key, 0, &m), INTERP_OK);
    assert_int_equal(interp_msg_to_lua(B, m, NULL, &err), INTERP_ERR_DECODE);
    assert_string_equal(err.text, "[1]: key: table key is nil");
    interp_msg_free(m);
    assert_int_equal(interp_msg_from_bytes(nan_key, sizeof nan_key, 0, &m), INTERP_OK);
    assert_int_equal(interp_msg_to_lua(B, m, NULL, &err), INTERP_ERR_DECODE);
    assert_string_equal(err.text, "[1][2]: key: table key is NaN");
    assert_int_equal(lua_gettop(B), 0);
    interp_msg_free(m);
    /* arrays with nil holes and maps with nil values are fine */
    static const unsigned char holes[] = {0x93, 0x01, 0xc0, 0x03, 0x81, 0xa1, 'k', 0xc0};
    assert_int_equal(interp_msg_from_bytes(holes, sizeof holes, 0, &m), INTERP_OK);
    check_in(B, m, NULL,
             "local a, t = ... assert(a[1] == 1 and a[2] == nil and a[3] == 3) "
             "assert(next(t) == nil) return true");
    interp_msg_free(m);
    lua_close(B);
}

/* interp_msg_from_lua_named: the index of the value that failed, and a text that goes on from
 * the caller's name for it. */
static void msg_named_errors(void **st)
{
    (void)st;
    lua_State *L = new_state();
    interp_msg *m = NULL;
    interp_msg_error err;
    int bad = -1;
    eval(L, "1, {a = {2, io.stdout}}, 3");
    assert_int_equal(interp_msg_from_lua_named(L, 1, 3, NULL, &m, &err, &bad), INTERP_ERR_ENCODE);
    assert_int_equal(bad, 1);
    assert_string_equal(err.text, ".a[2]: cannot copy a userdata");
    assert_null(m);
    lua_settop(L, 0);
    eval(L, "1, 2, io.stdout");
    assert_int_equal(interp_msg_from_lua_named(L, 1, 3, NULL, &m, &err, &bad), INTERP_ERR_ENCODE);
    assert_int_equal(bad, 2);
    assert_string_equal(err.text, ": cannot copy a userdata");
    /* the same values through interp_msg_from_lua: named by their place */
    assert_int_equal(interp_msg_from_lua(L, 1, 3, NULL, &m, &err), INTERP_ERR_ENCODE);
    assert_string_equal(err.text, "[3]: cannot copy a userdata");
    assert_int_equal(interp_msg_from_lua_named(L, 1, 2, NULL, &m, &err, &bad), INTERP_OK);
    assert_int_equal(bad, 0);
    assert_int_equal(interp_msg_count(m), 2);
    interp_msg_free(m);
    lua_close(L);
}

/* ---- runs of plain values: the codec's tight loops (a pool:map pack) ---------------------- */

/* T: 300 values of every plain kind, a table and a string inside the run, a hole; ROW(i) is
 * what T[i] must be. MIXED_CHECK checks a table t (subtypes and -0.0 too). */
#define MIXED_ROW                                                                                  \
    "function ROW(i) local k = i % 10 "                                                            \
    "  return k == 0 and -i or k == 1 and i + 0.5 or k == 2 and math.maxinteger or "               \
    "    k == 3 and math.mininteger or k == 4 and (i % 4 == 0) or k == 5 and -0.0 or "             \
    "    k == 6 and 1e300 or k == 7 and 3.0 or k == 8 and 200 + i * 1000 or i end "
static const char *const MIXED_SETUP =
    MIXED_ROW "T = {} for i = 1, 300 do T[i] = ROW(i) end T[150] = {x = 1} T[151] = 'str' "
              "T[200] = nil";
static const char *const MIXED_CHECK =
    MIXED_ROW "for i = 1, 300 do local v, want = t[i], ROW(i) "
              "  if i == 150 then assert(type(v) == 'table' and v.x == 1) "
              "  elseif i == 151 then assert(v == 'str') "
              "  elseif i == 200 then assert(v == nil) "
              "  else assert(v == want and math.type(v) == math.type(want), i) "
              "    if i % 10 == 5 then assert(1 / v < 0, 'negative zero') end end "
              "end return true";

static void runs_roundtrip(void **state)
{
    (void)state;
    char check[2048];
    snprintf(check, sizeof check, "local t = table.pack(...) assert(t.n == 300) %s", MIXED_CHECK);
    roundtrip_opts(MIXED_SETUP, "table.unpack(T, 1, 300)", check, NULL);
    /* the same inside a value (array runs), shared twice */
    snprintf(check, sizeof check, "local v = ... local t = v.a assert(v.b[2] == t) %s",
             MIXED_CHECK);
    roundtrip_opts(MIXED_SETUP, "{a = T, b = {1, T}}", check, NULL);
}

/* The size limit inside a run: room for the widest number is asked for each value, so the
 * limit strikes a value or two before the one that passes it (as value by value) */
static void runs_size_limit(void **state)
{
    (void)state;
    lua_State *A = new_state();
    interp_msg *m = NULL;
    interp_msg_error err;
    interp_msg_opts o = {.max_size = 100};
    run(A, "U = {} for i = 1, 200 do U[i] = i * 1000 end"); /* 3 bytes each */
    assert_int_equal(encode_in(A, NULL, "table.unpack(U)", &o, &m, &err), INTERP_ERR_LIMIT);
    assert_null(m);
    assert_non_null(strstr(err.text, "]: message larger than 100 bytes"));
    long at = strtol(err.text + 1, NULL, 10);
    assert_true(at >= 32 && at <= 34);
    assert_int_equal(encode_in(A, NULL, "table.unpack(U, 1, 20)", &o, &m, &err), INTERP_OK);
    assert_int_equal(interp_msg_size(m), 60);
    interp_msg_free(m);
    refused("V = {} for i = 1, 100 do V[i] = i end V[77] = io.stdout", "table.unpack(V)", NULL,
            INTERP_ERR_ENCODE, "[77]: cannot copy a userdata");
    refused("W = {} for i = 1, 100 do W[i] = i * 0.5 end W[77] = io.stdout", "1, {list = W}", NULL,
            INTERP_ERR_ENCODE, "[2].list[77]: cannot copy a userdata");
    lua_close(A);
}

/* interp_msg_push_lua or interp_msg_store_lua (at the offset given) in a protected call: the
 * values end up in a table, returned, with "n" their count. */
static int runs_cfn(lua_State *L)
{
    const interp_msg *m = lua_touserdata(L, 1);
    const interp_msg_opts *o = lua_touserdata(L, 2);
    bool store = lua_toboolean(L, 3);
    lua_Integer first = lua_tointeger(L, 4);
    lua_settop(L, 0);
    lua_pushstring(L, "below");
    lua_newtable(L);
    if (store) {
        lua_pushstring(L, "above");
        lua_pushinteger(L, interp_msg_store_lua(L, m, o, 2, first));
        assert_int_equal(lua_gettop(L), 4); /* the stack as it was */
        assert_string_equal(lua_tostring(L, 3), "above");
    } else {
        int n = interp_msg_push_lua(L, m, o);
        for (int i = n; i >= 1; i--)
            lua_rawseti(L, 2, i);
        lua_pushinteger(L, n);
    }
    lua_setfield(L, 2, "n");
    assert_string_equal(lua_tostring(L, 1), "below");
    lua_settop(L, 2);
    return 1;
}

/* Call runs_cfn on m; LUA_OK leaves its table on B's stack, an error its message. */
static int runs_call(lua_State *B, const interp_msg *m, const interp_msg_opts *o, bool store,
                     lua_Integer first)
{
    lua_pushcfunction(B, runs_cfn);
    lua_pushlightuserdata(B, (void *)m);
    lua_pushlightuserdata(B, (void *)o);
    lua_pushboolean(B, store);
    lua_pushinteger(B, first);
    return lua_pcall(B, 4, 1, 0);
}

/* Run chunk `check` on the table at the top of B (popped); it must return true. */
static void runs_check(lua_State *B, const char *check)
{
    if (luaL_loadstring(B, check) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(B, -1));
    lua_insert(B, -2);
    if (lua_pcall(B, 1, 1, 0) != LUA_OK || !lua_toboolean(B, -1))
        fail_msg("check failed: %s", lua_tostring(B, -1));
    lua_pop(B, 1);
}

/* interp_msg_push_lua from a run into the decoder and back; interp_msg_store_lua at an offset;
 * errors after a run name the value; the size limit before anything is stored */
static void runs_push_and_store(void **state)
{
    (void)state;
    lua_State *A = new_state(), *B = new_state();
    interp_msg *m;
    char check[2048];
    snprintf(check, sizeof check, "local t = ... assert(t.n == 300) %s", MIXED_CHECK);
    assert_int_equal(encode_in(A, MIXED_SETUP, "table.unpack(T, 1, 300)", NULL, &m, NULL),
                     INTERP_OK);
    assert_int_equal(runs_call(B, m, NULL, false, 0), LUA_OK);
    runs_check(B, check);
    assert_int_equal(runs_call(B, m, NULL, true, 0), LUA_OK);
    runs_check(B, check);
    assert_int_equal(runs_call(B, m, NULL, true, 1000), LUA_OK);
    runs_check(B, "local t = ... assert(t[1000] == nil and t[1001] == 1.5 and t[1300] == -300) "
                  "assert(t[1150].x == 1 and t[1151] == 'str' and t[1200] == nil) "
                  "return t[1] == nil and t.n == 300");
    /* indices past math.maxinteger: refused before anything is stored (no overflow) */
    assert_int_equal(runs_call(B, m, NULL, true, LUA_MAXINTEGER - 300), LUA_OK);
    lua_settop(B, 0);
    assert_int_equal(runs_call(B, m, NULL, true, LUA_MAXINTEGER - 299), LUA_ERRRUN);
    assert_non_null(strstr(lua_tostring(B, -1), "math.maxinteger"));
    lua_settop(B, 0);
    static const interp_msg_opts small = {.max_size = 10};
    assert_int_equal(runs_call(B, m, &small, true, 0), LUA_ERRRUN);
    assert_non_null(strstr(lua_tostring(B, -1), ", larger than 10"));
    lua_settop(B, 0);
    interp_msg_free(m);
    assert_int_equal(encode_in(A,
                               "X = {} for i = 1, 40 do X[i] = i end "
                               "X[41] = {f = function() end} X[42] = 7",
                               "table.unpack(X)", &with_functions, &m, NULL),
                     INTERP_OK);
    for (int store = 0; store <= 1; store++) {
        assert_int_equal(runs_call(B, m, NULL, store, 0), LUA_ERRRUN);
        assert_string_equal(lua_tostring(B, -1),
                            "[41].f: cannot accept a function (functions are not allowed)");
        lua_settop(B, 0);
    }
    interp_msg_free(m);
    /* inside a value: the element after a run */
    assert_int_equal(encode_in(A, NULL, "{list = X}", &with_functions, &m, NULL), INTERP_OK);
    interp_msg_error err;
    assert_int_equal(interp_msg_to_lua(B, m, NULL, &err), INTERP_ERR_DECODE);
    assert_string_equal(err.text,
                        "[1].list[41].f: cannot accept a function (functions are not allowed)");
    assert_int_equal(lua_gettop(B), 0);
    interp_msg_free(m);
    lua_close(A);
    lua_close(B);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(msg_scalars_roundtrip),
        cmocka_unit_test(msg_integer_vs_float),
        cmocka_unit_test(msg_nan_inf),
        cmocka_unit_test(msg_strings_binary_safe),
        cmocka_unit_test(msg_one_mib_string_with_nuls),
        cmocka_unit_test(msg_large_array),
        cmocka_unit_test(msg_array_vs_map_wire),
        cmocka_unit_test(msg_sparse_and_mixed_tables),
        cmocka_unit_test(msg_repeated_keys),
        cmocka_unit_test(msg_arrays_in_any_key_order),
        cmocka_unit_test(msg_empty_and_nested_tables),
        cmocka_unit_test(msg_table_keys),
        cmocka_unit_test(msg_metatables_not_copied),
        cmocka_unit_test(msg_shared_tables),
        cmocka_unit_test(msg_cycles),
        cmocka_unit_test(msg_refs_flags_and_bytes),
        cmocka_unit_test(msg_refs_survive_concatenation),
        cmocka_unit_test(msg_many_values),
        cmocka_unit_test(msg_zero_values),
        cmocka_unit_test(msg_depth_limit_encode),
        cmocka_unit_test(msg_depth_limit_decode),
        cmocka_unit_test(msg_deep_values_do_not_overflow_c_stack),
        cmocka_unit_test(msg_size_limit),
        cmocka_unit_test(msg_refused_paths),
        cmocka_unit_test(msg_failed_encode_leaves_state_clean),
        cmocka_unit_test(msg_invalid_arguments),
        cmocka_unit_test(msg_function_with_upvalues),
        cmocka_unit_test(msg_function_env_rebound),
        cmocka_unit_test(msg_function_recursive_and_shared),
        cmocka_unit_test(msg_function_cycle_through_upvalue),
        cmocka_unit_test(msg_function_keeps_line_info),
        cmocka_unit_test(msg_function_refused_on_decode),
        cmocka_unit_test(msg_decode_nomem_leaves_stack),
        cmocka_unit_test(msg_push_lua),
        cmocka_unit_test(msg_foreign_bytes),
        cmocka_unit_test(msg_named_errors),
        cmocka_unit_test(runs_roundtrip),
        cmocka_unit_test(runs_size_limit),
        cmocka_unit_test(runs_push_and_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
