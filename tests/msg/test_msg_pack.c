/* test_msg_pack.c - format-driven messages: interp_msg_pack / interp_msg_unpack (and the v
 * variants) against the builder, a real Lua state, and every error. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>

#include "interp_msg.h"
#include "interp_msg_lua.h"

#include "alloc_fail.h" /* see tests/alloc_fail.cmake */

/* ---- helpers ----------------------------------------------------------------------------- */

static interp_msg *pack_ok(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    interp_msg *m = NULL;
    int rc = interp_msg_vpack(&m, fmt, ap);
    va_end(ap);
    assert_int_equal(rc, INTERP_OK);
    assert_non_null(m);
    return m;
}

static interp_msg *finish(interp_msg_builder *b)
{
    interp_msg *m = NULL;
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_OK);
    assert_non_null(m);
    return m;
}

/* a and b hold the same values in the same bytes; both are freed. */
static void assert_same_and_free(interp_msg *a, interp_msg *b)
{
    assert_int_equal(interp_msg_count(a), interp_msg_count(b));
    assert_int_equal(interp_msg_size(a), interp_msg_size(b));
    if (interp_msg_size(a))
        assert_memory_equal(interp_msg_data(a), interp_msg_data(b), interp_msg_size(a));
    interp_msg_free(a);
    interp_msg_free(b);
}

/* pack must fail with `want` and leave *out NULL. */
static void pack_fails(int want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    interp_msg *m = (interp_msg *)&m; /* a non-NULL sentinel: pack must reset it */
    int rc = interp_msg_vpack(&m, fmt, ap);
    va_end(ap);
    assert_int_equal(rc, want);
    assert_null(m);
}

/* A user-level variadic wrapper, as a host would write one around vunpack. */
static int unpack_via_v(const interp_msg *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = interp_msg_vunpack(m, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- pack ------------------------------------------------------------------------------- */

static void msg_pack_scalars_match_builder(void **state)
{
    (void)state;
    float f = 2.5f; /* promotes to double through `...` */
    interp_msg *p =
        pack_ok("n b b i i i l l L I I z d d d s S S", 1, 0, INT_MIN, 0, INT_MAX, LONG_MIN,
                LONG_MAX, LLONG_MAX, INT64_MIN, (int64_t)1 << 40, (size_t)300, 3.0, (double)f, -0.0,
                "hello", "a\0b", (size_t)3, (const char *)NULL, (size_t)0);

    interp_msg_builder *b = interp_msg_builder_new();
    assert_non_null(b);
    interp_msg_add_nil(b);
    interp_msg_add_bool(b, true);
    interp_msg_add_bool(b, false);
    interp_msg_add_int(b, INT_MIN);
    interp_msg_add_int(b, 0);
    interp_msg_add_int(b, INT_MAX);
    interp_msg_add_int(b, LONG_MIN);
    interp_msg_add_int(b, LONG_MAX);
    interp_msg_add_int(b, LLONG_MAX);
    interp_msg_add_int(b, INT64_MIN);
    interp_msg_add_int(b, (int64_t)1 << 40);
    interp_msg_add_int(b, 300);
    interp_msg_add_double(b, 3.0);
    interp_msg_add_double(b, 2.5);
    interp_msg_add_double(b, -0.0);
    interp_msg_add_cstr(b, "hello");
    interp_msg_add_str(b, "a\0b", 3);
    interp_msg_add_str(b, NULL, 0);
    interp_msg *want = finish(b);
    assert_int_equal(interp_msg_count(p), 18);
    assert_same_and_free(p, want);

    /* `b` takes any nonzero int as true */
    assert_same_and_free(pack_ok("b", 42), pack_ok("b", 1));
}

static void msg_pack_nesting_matches_builder(void **state)
{
    (void)state;
    interp_msg *two = pack_ok("i s", 7, "seven"); /* two values: two elements inside [ ] */
    interp_msg *empty = pack_ok("");
    interp_msg *p = pack_ok("[i [s {s d}] m] {s [] i {}} m [m] {m s i}", 1, "x", "k", 0.5, two, "a",
                            2, two, empty, two, "z", 9);

    interp_msg_builder *b = interp_msg_builder_new();
    interp_msg_add_array(b, 4); /* [i [s {s d}] m]: m gives two elements */
    interp_msg_add_int(b, 1);
    interp_msg_add_array(b, 2);
    interp_msg_add_cstr(b, "x");
    interp_msg_add_map(b, 1);
    interp_msg_add_cstr(b, "k");
    interp_msg_add_double(b, 0.5);
    interp_msg_add_msg(b, two);
    interp_msg_add_map(b, 2); /* {s [] i {}} */
    interp_msg_add_cstr(b, "a");
    interp_msg_add_array(b, 0);
    interp_msg_add_int(b, 2);
    interp_msg_add_map(b, 0);
    interp_msg_add_msg(b, two); /* m at top level: two values */
    interp_msg_add_array(b, 0); /* [m] of an empty message: an empty array */
    interp_msg_add_map(b, 2);   /* {m s i}: m is one key and value */
    interp_msg_add_msg(b, two);
    interp_msg_add_cstr(b, "z");
    interp_msg_add_int(b, 9);
    interp_msg *want = finish(b);
    assert_int_equal(interp_msg_count(p), 6);
    assert_same_and_free(p, want);
    interp_msg_free(two);
    interp_msg_free(empty);
}

static void msg_pack_empty_format(void **state)
{
    (void)state;
    interp_msg *m = pack_ok("");
    assert_int_equal(interp_msg_count(m), 0);
    assert_int_equal(interp_msg_size(m), 0);
    interp_msg_free(m);
    m = pack_ok(" ,\t\n, ");
    assert_int_equal(interp_msg_count(m), 0);
    assert_int_equal(interp_msg_size(m), 0);
    assert_int_equal(interp_msg_unpack(m, ""), INTERP_OK);
    assert_int_equal(interp_msg_unpack(m, "*"), INTERP_OK);
    assert_int_equal(interp_msg_unpack(m, "?"), INTERP_ERR_DECODE);
    interp_msg_free(m);
}

static void msg_pack_separators_ignored(void **state)
{
    (void)state;
    assert_same_and_free(pack_ok("i, s, d", 3, "x", 2.5), pack_ok("isd", 3, "x", 2.5));
    assert_same_and_free(pack_ok(" [ i ,\n\ti ] , { s , n }\r\n", 1, 2, "k"),
                         pack_ok("[ii]{sn}", 1, 2, "k"));

    interp_msg *m = pack_ok("isd", 3, "x", 2.5);
    int i = 0;
    const char *s = NULL;
    size_t len = 0;
    double d = 0;
    assert_int_equal(interp_msg_unpack(m, " i ,s,\td\n", &i, &s, &len, &d), INTERP_OK);
    assert_int_equal(i, 3);
    assert_int_equal(len, 1);
    assert_memory_equal(s, "x", 1);
    assert_true(d == 2.5);
    interp_msg_free(m);
}

static void msg_pack_pack_errors(void **state)
{
    (void)state;
    interp_msg *two = pack_ok("ii", 1, 2);
    interp_msg *one = pack_ok("i", 1);

    /* bad formats */
    pack_fails(INTERP_ERR_INVALID, "q");
    pack_fails(INTERP_ERR_INVALID, "i x", 1);
    pack_fails(INTERP_ERR_INVALID, "[i", 1);
    pack_fails(INTERP_ERR_INVALID, "i]", 1);
    pack_fails(INTERP_ERR_INVALID, "]");
    pack_fails(INTERP_ERR_INVALID, "[i}", 1);
    pack_fails(INTERP_ERR_INVALID, "{i]", 1);
    pack_fails(INTERP_ERR_INVALID, "{s}", "k");
    pack_fails(INTERP_ERR_INVALID, "{sis}", "k", 1, "j");
    pack_fails(INTERP_ERR_INVALID, "?"); /* unpack-only letters */
    pack_fails(INTERP_ERR_INVALID, "i*", 1);
    pack_fails(INTERP_ERR_INVALID, "%d", 1);
    /* a map whose item count is odd once `m` is counted */
    pack_fails(INTERP_ERR_INVALID, "{m}", one);
    pack_fails(INTERP_ERR_INVALID, "{s m}", "k", two);
    interp_msg *m = pack_ok("{m}", two); /* two values: one key, one value */
    assert_same_and_free(m, pack_ok("{ii}", 1, 2));

    /* bad arguments */
    pack_fails(INTERP_ERR_INVALID, "s", (const char *)NULL);
    pack_fails(INTERP_ERR_INVALID, "i [s]", 1, (const char *)NULL);
    pack_fails(INTERP_ERR_INVALID, "S", (const char *)NULL, (size_t)3);
    pack_fails(INTERP_ERR_INVALID, "m", (const interp_msg *)NULL);
    pack_fails(INTERP_ERR_LIMIT, "z", (size_t)INT64_MAX + 1);
    pack_fails(INTERP_ERR_LIMIT, "S", "x", (size_t)UINT32_MAX + 1); /* not read: too long */
    m = pack_ok("z", (size_t)INT64_MAX);
    assert_same_and_free(m, pack_ok("I", INT64_MAX));

    /* NULL out or fmt */
    assert_int_equal(interp_msg_pack(NULL, "i", 1), INTERP_ERR_INVALID);
    m = (interp_msg *)&m;
    assert_int_equal(interp_msg_pack(&m, NULL), INTERP_ERR_INVALID);
    assert_null(m);

    interp_msg_free(two);
    interp_msg_free(one);
}

static void msg_pack_depth_limit(void **state)
{
    (void)state;
    char fmt[2 * (INTERP_MSG_PACK_MAX_DEPTH + 1) + 2];
    int d = INTERP_MSG_PACK_MAX_DEPTH;
    memset(fmt, '[', (size_t)d);
    fmt[d] = 'i';
    memset(fmt + d + 1, ']', (size_t)d);
    fmt[2 * d + 1] = '\0';
    interp_msg *m = pack_ok(fmt, 5);
    int v = 0;
    assert_int_equal(interp_msg_unpack(m, fmt, &v), INTERP_OK);
    assert_int_equal(v, 5);
    interp_msg_free(m);

    d++;
    memset(fmt, '{', (size_t)d); /* depth is checked before map parity */
    fmt[d] = 'i';
    memset(fmt + d + 1, '}', (size_t)d);
    fmt[2 * d + 1] = '\0';
    pack_fails(INTERP_ERR_LIMIT, fmt, 5);
    memset(fmt, '[', (size_t)d);
    memset(fmt + d + 1, ']', (size_t)d);
    pack_fails(INTERP_ERR_LIMIT, fmt, 5);
    m = pack_ok("i", 5);
    assert_int_equal(interp_msg_unpack(m, fmt, &v), INTERP_ERR_LIMIT);
    interp_msg_free(m);

    /* many containers side by side are not nesting (and need more than the stack buffer) */
    char wide[3 * 100 + 1];
    for (int k = 0; k < 100; k++)
        memcpy(wide + 3 * k, "[n]", 3);
    wide[300] = '\0';
    m = pack_ok(wide);
    assert_int_equal(interp_msg_count(m), 100);
    assert_int_equal(interp_msg_size(m), 200); /* fixarray 1 + nil, 100 times */
    assert_int_equal(interp_msg_unpack(m, wide), INTERP_OK);
    interp_msg_free(m);
}

/* ---- a real Lua state ------------------------------------------------------------------ */

/* [-0, +n]: calls the function at index 2 with the values of the message at index 1 (light
 * userdata), returns what it returns. Run protected: interp_msg_push_lua may raise. */
static int call_with_msg(lua_State *L)
{
    const interp_msg *m = lua_touserdata(L, 1);
    lua_pushvalue(L, 2);
    int n = interp_msg_push_lua(L, m, NULL);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L) - 2;
}

static const char lua_check[] =
    "local n = select('#', ...)\n"
    "local a, b, c, s, x, t, z, arr, map = ...\n"
    "assert(n == 9, 'count ' .. n)\n"
    "assert(math.type(a) == 'integer' and a == 3)\n"
    "assert(math.type(b) == 'float' and b == 3.0)\n"
    "assert(math.type(c) == 'float' and c == 2.5)\n"
    "assert(s == 'a\\0b' and #s == 3)\n"
    "assert(x == 'x')\n"
    "assert(t == true and z == nil)\n"
    "assert(#arr == 2 and arr[1] == 1 and arr[2] == -2)\n"
    "assert(map.k == 5 and next(map, 'k') == nil)\n"
    "local shared = {7}\n"
    "return a + 1, b + 1, c, s .. '!', x, not t, z, arr, map, {shared, shared}\n";

static void msg_pack_lua_round_trip(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);

    interp_msg *m =
        pack_ok("i d d S s b n [i i] {s i}", 3, 3.0, 2.5, "a\0b", (size_t)3, "x", 1, 1, -2, "k", 5);
    lua_pushcfunction(L, call_with_msg);
    lua_pushlightuserdata(L, m);
    assert_int_equal(luaL_loadstring(L, lua_check), LUA_OK);
    int rc = lua_pcall(L, 2, LUA_MULTRET, 0);
    if (rc != LUA_OK)
        fail_msg("Lua: %s", lua_tostring(L, -1));
    assert_int_equal(lua_gettop(L), 10);
    assert_true(lua_isinteger(L, 1));
    assert_false(lua_isinteger(L, 2)); /* 3.0 + 1 is still a float */

    interp_msg *back = NULL;
    assert_int_equal(interp_msg_from_lua(L, 1, 10, NULL, &back, NULL), INTERP_OK);
    lua_settop(L, 0);

    int a = 0, t1 = 0, t2 = 0, k = 0;
    bool t = true;
    double b = 0, c = 0;
    const char *s = NULL, *x = NULL, *key = NULL;
    size_t slen = 0, xlen = 0, klen = 0;
    int64_t v = 0;
    assert_int_equal(interp_msg_unpack(back, "i d d S s b n [i i] {s i} [[I] ?]", &a, &b, &c, &s,
                                       &slen, &x, &xlen, &t, &t1, &t2, &key, &klen, &k, &v),
                     INTERP_OK);
    assert_int_equal(a, 4);
    assert_true(b == 4.0);
    assert_true(c == 2.5);
    assert_int_equal(slen, 4);
    assert_memory_equal(s, "a\0b!", 4);
    assert_int_equal(xlen, 1);
    assert_memory_equal(x, "x", 1);
    assert_false(t);
    assert_int_equal(t1, 1);
    assert_int_equal(t2, -2);
    assert_int_equal(klen, 1);
    assert_memory_equal(key, "k", 1);
    assert_int_equal(k, 5);
    assert_int_equal(v, 7);
    /* the float stays a float; the shared table's second use is a reference, not an array */
    assert_int_equal(interp_msg_unpack(back, "? i *", &a), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(back, "? d *", &b), INTERP_OK);
    assert_int_equal(interp_msg_unpack(back, "?????????[?[I]]", &v), INTERP_ERR_DECODE);
    interp_msg_free(back);
    interp_msg_free(m);
    lua_close(L);
}

/* ---- unpack ----------------------------------------------------------------------------- */

static void msg_pack_unpack_letters(void **state)
{
    (void)state;
    interp_msg *m = pack_ok("n b i l L I z d i S s", 0, -7, LONG_MIN, LLONG_MIN, INT64_MAX,
                            (size_t)12345, 0.25, 6, "a\0b", (size_t)3, "");
    bool b = true;
    int i = 0;
    long l = 0;
    long long L = 0;
    int64_t I = 0;
    size_t z = 0, slen = 9, elen = 9;
    double d = 0, d2 = 0;
    const char *s = NULL, *e = NULL;
    assert_int_equal(interp_msg_unpack(m, "n b i l L I z d d s S", &b, &i, &l, &L, &I, &z, &d, &d2,
                                       &s, &slen, &e, &elen),
                     INTERP_OK);
    assert_false(b);
    assert_int_equal(i, -7);
    assert_true(l == LONG_MIN);
    assert_true(L == LLONG_MIN);
    assert_true(I == INT64_MAX);
    assert_int_equal(z, 12345);
    assert_true(d == 0.25);
    assert_true(d2 == 6.0); /* `d` converts an integer */
    assert_int_equal(slen, 3);
    assert_memory_equal(s, "a\0b", 3);
    /* borrowed: the bytes are inside the message */
    assert_true(s > interp_msg_data(m) && s + slen <= interp_msg_data(m) + interp_msg_size(m));
    assert_int_equal(elen, 0);
    assert_non_null(e);

    /* the same through a host's own variadic wrapper over vunpack */
    i = 0;
    assert_int_equal(unpack_via_v(m, "? ? i *", &i), INTERP_OK);
    assert_int_equal(i, -7);
    interp_msg_free(m);
}

static void msg_pack_unpack_skip(void **state)
{
    (void)state;
    interp_msg *m = pack_ok("i [i {s i} s] s", 1, 2, "k", 3, "deep", "last");
    const char *s = NULL;
    size_t len = 0;
    /* `?` skips a whole value, containers included */
    assert_int_equal(interp_msg_unpack(m, "? ? s", &s, &len), INTERP_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(s, "last", 4);
    assert_int_equal(interp_msg_unpack(m, "???"), INTERP_OK);
    assert_int_equal(interp_msg_unpack(m, "??"), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "????"), INTERP_ERR_DECODE);
    /* `*` skips the rest, zero values included */
    int i = 0;
    assert_int_equal(interp_msg_unpack(m, "i *", &i), INTERP_OK);
    assert_int_equal(i, 1);
    assert_int_equal(interp_msg_unpack(m, "*"), INTERP_OK);
    assert_int_equal(interp_msg_unpack(m, "? ? ? *"), INTERP_OK);
    assert_int_equal(interp_msg_unpack(m, "? ? ? ? *"), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "? [i *] ?", &i), INTERP_OK);
    assert_int_equal(i, 2);
    assert_int_equal(interp_msg_unpack(m, "? [? ? s *] ?", &s, &len), INTERP_OK);
    assert_memory_equal(s, "deep", 4);
    assert_int_equal(interp_msg_unpack(m, "? [? {*} *] ?"), INTERP_OK);
    interp_msg_free(m);
}

static void msg_pack_unpack_containers(void **state)
{
    (void)state;
    interp_msg *m = pack_ok("[i i i] {s i s [d]} [] {}", 1, 2, 3, "a", 10, "b", 0.5);
    int x = 0, y = 0, z = 0, va = 0;
    const char *ka = NULL, *kb = NULL;
    size_t la = 0, lb = 0;
    double d = 0;
    assert_int_equal(
        interp_msg_unpack(m, "[iii] {si s[d]} [] {}", &x, &y, &z, &ka, &la, &va, &kb, &lb, &d),
        INTERP_OK);
    assert_int_equal(x, 1);
    assert_int_equal(y, 2);
    assert_int_equal(z, 3);
    assert_memory_equal(ka, "a", la);
    assert_int_equal(va, 10);
    assert_memory_equal(kb, "b", lb);
    assert_true(d == 0.5);

    /* element counts: exact unless `*` ends the bracket */
    assert_int_equal(interp_msg_unpack(m, "[ii] *", &x, &y), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "[ii*] *", &x, &y), INTERP_OK);
    assert_int_equal(interp_msg_unpack(m, "[iii*] *", &x, &y, &z), INTERP_OK);
    assert_int_equal(interp_msg_unpack(m, "[iiii*] *", &x, &y, &z, &va), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "[iiii] *", &x, &y, &z, &va), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "? {si} *", &ka, &la, &va), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "? {si*} *", &ka, &la, &va), INTERP_OK);
    assert_int_equal(interp_msg_unpack(m, "? ? [*] {*}"), INTERP_OK);
    assert_int_equal(interp_msg_unpack(m, "? ? [?] {}"), INTERP_ERR_DECODE);
    /* array and map are distinct */
    assert_int_equal(interp_msg_unpack(m, "{*} *"), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "? [*] *"), INTERP_ERR_DECODE);
    interp_msg_free(m);
}

static void msg_pack_unpack_type_mismatch(void **state)
{
    (void)state;
    interp_msg *m = pack_ok("d s i n b I", 3.0, "2.5", 7, 1, (int64_t)1 << 40);
    int i = 0;
    bool b = false;
    double d = 0;
    size_t z = 0, len = 0;
    long long L = 0;
    const char *s = NULL;
    assert_int_equal(interp_msg_unpack(m, "i *", &i), INTERP_ERR_DECODE); /* 3.0 */
    assert_int_equal(interp_msg_unpack(m, "I *", &L), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "? d *", &d), INTERP_ERR_DECODE); /* "2.5" */
    assert_int_equal(interp_msg_unpack(m, "? i *", &i), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "? ? s *", &s, &len), INTERP_ERR_DECODE); /* 7 */
    assert_int_equal(interp_msg_unpack(m, "? ? b *", &b), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "? ? n *"), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "? ? [*] *"), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "? ? ? b *", &b), INTERP_ERR_DECODE); /* nil */
    assert_int_equal(interp_msg_unpack(m, "? ? ? s *", &s, &len), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "? ? ? ? i *", &i), INTERP_ERR_DECODE); /* true */
    /* integers that do not fit the C type */
    assert_int_equal(interp_msg_unpack(m, "? ? ? ? ? i", &i), INTERP_ERR_LIMIT);
    assert_int_equal(interp_msg_unpack(m, "? ? ? ? ? L", &L), INTERP_OK);
    assert_true(L == (long long)1 << 40);
    interp_msg_free(m);

    m = pack_ok("i I I", -1, (int64_t)INT_MAX + 1, (int64_t)INT_MIN - 1);
    assert_int_equal(interp_msg_unpack(m, "z *", &z), INTERP_ERR_LIMIT);
    assert_int_equal(interp_msg_unpack(m, "? i *", &i), INTERP_ERR_LIMIT);
    assert_int_equal(interp_msg_unpack(m, "? ? i", &i), INTERP_ERR_LIMIT);
    assert_int_equal(interp_msg_unpack(m, "i *", &i), INTERP_OK);
    assert_int_equal(i, -1);
    interp_msg_free(m);

    /* an unsigned 64-bit integer above INT64_MAX (from a foreign encoder) reads as a float */
    const unsigned char big[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(interp_msg_from_bytes(big, sizeof big, 0, &m), INTERP_OK);
    assert_int_equal(interp_msg_unpack(m, "z", &z), INTERP_ERR_DECODE);
    assert_int_equal(interp_msg_unpack(m, "d", &d), INTERP_OK);
    assert_true(d == 18446744073709551615.0);
    interp_msg_free(m);
}

static void msg_pack_unpack_format_errors(void **state)
{
    (void)state;
    interp_msg *m = pack_ok("i [i] {s i}", 1, 2, "k", 3);
    interp_msg *one = pack_ok("i", 1);
    int i = 0;
    const char *s = NULL;
    size_t len = 0;
    const char *bad[] = {
        "q", "i x",   "[",   "]",       "[i}",   "{i]",       "i [i] {s i", "i ] [i] {s i}",
        "m", "i * ?", "* *", "[* i] *", "{s} *", "{s i s} *", "{s *} *",
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        /* pointers for as many items as any of these could take */
        int rc = interp_msg_unpack(m, bad[k], &i, &i, &s, &len, &i, &i);
        if (rc != INTERP_ERR_INVALID)
            fail_msg("format \"%s\": %d", bad[k], rc);
    }
    /* a bad format is INVALID even when the message would mismatch first */
    assert_int_equal(interp_msg_unpack(one, "s q", &s, &len), INTERP_ERR_INVALID);
    interp_msg_free(m);
    interp_msg_free(one);
}

static void msg_pack_unpack_null_arguments(void **state)
{
    (void)state;
    interp_msg *m = pack_ok("i s", 1, "x");
    int i = 0;
    const char *s = NULL;
    size_t len = 0;
    assert_int_equal(interp_msg_unpack(NULL, "i s", &i, &s, &len), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_unpack(m, NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_unpack(m, "i s", (int *)NULL, &s, &len), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_unpack(m, "i s", &i, (const char **)NULL, &len),
                     INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_unpack(m, "i s", &i, &s, (size_t *)NULL), INTERP_ERR_INVALID);
    /* a NULL pointer is INVALID even where the message mismatches first */
    double d = 0;
    assert_int_equal(interp_msg_unpack(m, "d s", &d, &s, (size_t *)NULL), INTERP_ERR_INVALID);
    assert_int_equal(i, 0);
    assert_true(d == 0);
    assert_null(s);
    interp_msg_free(m);
}

/* On every failure no pointer is written, however far the match got. */
typedef struct sink {
    int i;
    const char *s;
    size_t len;
    double d;
    bool b;
    int last;
} sink;

static void assert_untouched(const sink *k)
{
    assert_int_equal(k->i, -1);
    assert_ptr_equal(k->s, (const char *)k);
    assert_int_equal(k->len, 99);
    assert_true(k->d == -1);
    assert_false(k->b);
    assert_int_equal(k->last, -1);
}

static void msg_pack_unpack_nothing_written(void **state)
{
    (void)state;
    interp_msg *m = pack_ok("i s [d b] I", 5, "str", 1.5, 1, (int64_t)1 << 40);
    sink k = {-1, NULL, 99, -1, false, -1};
    k.s = (const char *)&k;
    /* each fails only at its last items, after everything before matched */
    assert_int_equal(interp_msg_unpack(m, "i s [d b] n", &k.i, &k.s, &k.len, &k.d, &k.b),
                     INTERP_ERR_DECODE); /* type */
    assert_untouched(&k);
    assert_int_equal(interp_msg_unpack(m, "i s [d b] i", &k.i, &k.s, &k.len, &k.d, &k.b, &k.last),
                     INTERP_ERR_LIMIT); /* range */
    assert_untouched(&k);
    assert_int_equal(interp_msg_unpack(m, "i s [d b] ? i", &k.i, &k.s, &k.len, &k.d, &k.b, &k.last),
                     INTERP_ERR_DECODE); /* too few values */
    assert_untouched(&k);
    assert_int_equal(interp_msg_unpack(m, "i s [d b]", &k.i, &k.s, &k.len, &k.d, &k.b),
                     INTERP_ERR_DECODE); /* too many values */
    assert_untouched(&k);
    assert_int_equal(interp_msg_unpack(m, "i s [d b n] *", &k.i, &k.s, &k.len, &k.d, &k.b),
                     INTERP_ERR_DECODE); /* too few elements */
    assert_untouched(&k);
    assert_int_equal(interp_msg_unpack(m, "i s [d] *", &k.i, &k.s, &k.len, &k.d),
                     INTERP_ERR_DECODE); /* too many elements */
    assert_untouched(&k);
    assert_int_equal(interp_msg_unpack(m, "i s [d i] *", &k.i, &k.s, &k.len, &k.d, &k.last),
                     INTERP_ERR_DECODE); /* type inside the array */
    assert_untouched(&k);

    int64_t big = 0;
    assert_int_equal(interp_msg_unpack(m, "i s [d b] I", &k.i, &k.s, &k.len, &k.d, &k.b, &big),
                     INTERP_OK);
    assert_int_equal(k.i, 5);
    assert_int_equal(k.len, 3);
    assert_memory_equal(k.s, "str", 3);
    assert_true(k.d == 1.5);
    assert_true(k.b);
    assert_true(big == (int64_t)1 << 40);
    interp_msg_free(m);
}

/* Every allocation failure is reported as NOMEM with nothing built and nothing leaked. */
static void msg_pack_nomem(void **state)
{
    (void)state;
    interp_msg *inner = pack_ok("[s s]", "abc", "def");
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    /* more than 16 containers: the counts go to the heap; a long string grows the buffer */
    const char *fmt = "[n][n][n][n][n][n][n][n][n][n][n][n][n][n][n][n][n][n] {s m} s";
    int failures = 0;
    for (long budget = 0;; budget++) {
        interp_msg *m = (interp_msg *)&m;
        alloc_budget = budget;
        int rc = interp_msg_pack(&m, fmt, "k", inner, big);
        alloc_budget = -1;
        if (rc == INTERP_OK) {
            assert_non_null(m);
            assert_int_equal(interp_msg_count(m), 20);
            interp_msg_free(m);
            break;
        }
        assert_int_equal(rc, INTERP_ERR_NOMEM);
        assert_null(m);
        failures++;
        assert_true(budget < 100);
    }
    assert_true(failures >= 3); /* counts, builder, its buffer at least */

    /* unpack allocates nothing */
    interp_msg *m = pack_ok("i [i]", 1, 2);
    int a = 0, b = 0;
    alloc_budget = 0;
    int rc = interp_msg_unpack(m, "i [i]", &a, &b);
    alloc_budget = -1;
    assert_int_equal(rc, INTERP_OK);
    assert_int_equal(b, 2);
    interp_msg_free(m);
    interp_msg_free(inner);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(msg_pack_scalars_match_builder),
        cmocka_unit_test(msg_pack_nesting_matches_builder),
        cmocka_unit_test(msg_pack_empty_format),
        cmocka_unit_test(msg_pack_separators_ignored),
        cmocka_unit_test(msg_pack_pack_errors),
        cmocka_unit_test(msg_pack_depth_limit),
        cmocka_unit_test(msg_pack_lua_round_trip),
        cmocka_unit_test(msg_pack_unpack_letters),
        cmocka_unit_test(msg_pack_unpack_skip),
        cmocka_unit_test(msg_pack_unpack_containers),
        cmocka_unit_test(msg_pack_unpack_type_mismatch),
        cmocka_unit_test(msg_pack_unpack_format_errors),
        cmocka_unit_test(msg_pack_unpack_null_arguments),
        cmocka_unit_test(msg_pack_unpack_nothing_written),
        cmocka_unit_test(msg_pack_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
