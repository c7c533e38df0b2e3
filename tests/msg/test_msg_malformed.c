/* test_msg_malformed.c - untrusted bytes: every truncation of valid messages, seeded random
 * mutations, and hand-made malformed input decode to an error (or, when a mutation happens to
 * be valid, to a value), never a crash or an over-read. Every input is copied into an
 * allocation of exactly its size, so that ASan sees any read past the end. */
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

/* Valid messages to damage: plain values, nesting, sharing, cycles, long strings, big
 * containers (16-bit headers), functions with upvalues (globals, joins, self references). */
static const char *const sources[] = {
    "1",
    "nil, true, false, -1, 300, -70000, 2^40 // 1, 1.5, math.mininteger",
    "'hello', '', string.rep('s', 300)",
    "{1, 2, {3, {4}}}",
    "{a = 1, b = {c = 'd', e = {}}, [2.5] = false}",
    "(function() local t = {x = 1} t.self = t return {t, t, {t}} end)()",
    "(function() local t = {} for i = 1, 20 do t[i] = {i, 'v' .. i} end t.n = 20 return t end)()",
    "(function() local t = {} for i = 1, 300 do t['k' .. i] = i end return t end)()",
    ("(function() local n, G = 0, _G local function f(x) n = n + x return G.tostring(n) end "
     "local function g() return n, f end return {f = f, g = g, fact = f} end)()"),
};
enum { NSOURCES = sizeof sources / sizeof *sources };

typedef struct corpus {
    interp_msg *m[NSOURCES];
    lua_State *L; /* decodes survivors */
} corpus;

static int setup(void **state)
{
    corpus *c = calloc(1, sizeof *c);
    lua_State *A = luaL_newstate();
    luaL_openlibs(A);
    interp_msg_opts o = {.allow_functions = true};
    for (int i = 0; i < NSOURCES; i++) {
        char src[1024];
        snprintf(src, sizeof src, "return %s", sources[i]);
        int top = lua_gettop(A);
        if (luaL_dostring(A, src) != LUA_OK)
            return -1;
        interp_msg_error err;
        if (interp_msg_from_lua(A, top + 1, lua_gettop(A) - top, &o, &c->m[i], &err) != INTERP_OK) {
            fprintf(stderr, "%s: %s\n", sources[i], err.text);
            return -1;
        }
        lua_settop(A, top);
    }
    lua_close(A);
    c->L = luaL_newstate();
    luaL_openlibs(c->L);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    corpus *c = *state;
    for (int i = 0; i < NSOURCES; i++)
        interp_msg_free(c->m[i]);
    lua_close(c->L);
    free(c);
    return 0;
}

/* Walk every value of a valid message with the C reader: it must see all of them. */
static void walk(const interp_msg *m)
{
    interp_msg_iter stack[256];
    int depth = 0;
    uint32_t top = 0;
    stack[0] = interp_msg_iter_init(m);
    for (;;) {
        interp_msg_value v;
        if (!interp_msg_next(&stack[depth], &v)) {
            assert_int_equal(stack[depth].left, 0);
            if (depth-- == 0)
                break;
            continue;
        }
        top += depth == 0;
        if (v.type == INTERP_MSG_ARRAY || v.type == INTERP_MSG_MAP) {
            assert_true(depth + 1 < 256);
            stack[++depth] = v.as.seq.items;
        }
    }
    assert_int_equal(top, interp_msg_count(m));
}

/* Validate `len` bytes held in an allocation of exactly that size; when valid, walk them with
 * the C reader and decode them (functions refused: a damaged function must never reach
 * lua_load) and check the stack. */
static int try_bytes(lua_State *L, const char *bytes, size_t len, int max_depth)
{
    char *exact = malloc(len ? len : 1);
    assert_non_null(exact);
    if (len)
        memcpy(exact, bytes, len);
    interp_msg *m = NULL;
    /* functions trusted: their payloads' validation is under test too */
    int rc = interp_msg_from_bytes_ex(len ? exact : NULL, len, max_depth,
                                      INTERP_MSG_TRUST_FUNCTIONS, &m);
    free(exact);
    if (rc != INTERP_OK) {
        assert_true(rc == INTERP_ERR_DECODE || rc == INTERP_ERR_LIMIT);
        assert_null(m);
        return rc;
    }
    walk(m);
    int top = lua_gettop(L);
    interp_msg_error err;
    int drc = interp_msg_to_lua(L, m, NULL, &err);
    if (drc == INTERP_OK)
        assert_int_equal(lua_gettop(L), top + (int)interp_msg_count(m));
    else
        assert_int_equal(lua_gettop(L), top);
    assert_true(drc == INTERP_OK || drc == INTERP_ERR_DECODE || drc == INTERP_ERR_LIMIT);
    lua_settop(L, top);
    interp_msg_free(m);
    return INTERP_OK;
}

static void malformed_valid_messages_pass(void **state)
{
    corpus *c = *state;
    for (int i = 0; i < NSOURCES; i++) {
        const interp_msg *m = c->m[i];
        interp_msg *copy;
        assert_int_equal(interp_msg_from_bytes_ex(interp_msg_data(m), interp_msg_size(m), 0,
                                                  INTERP_MSG_TRUST_FUNCTIONS, &copy),
                         INTERP_OK);
        interp_msg *plain;
        int rc = interp_msg_from_bytes(interp_msg_data(m), interp_msg_size(m), 0, &plain);
        /* untrusted bytes: functions refused (their bytecode would reach lua_load unverified) */
        assert_int_equal(rc,
                         (m->flags & INTERP__MSG_HAS_FUNCTIONS) ? INTERP_ERR_DECODE : INTERP_OK);
        interp_msg_free(plain);
        assert_int_equal(interp_msg_count(copy), interp_msg_count(m));
        assert_int_equal(copy->flags, m->flags);
        interp_msg_free(copy);
    }
}

static void malformed_every_truncation(void **state)
{
    corpus *c = *state;
    int errors = 0;
    for (int i = 0; i < NSOURCES; i++) {
        const interp_msg *m = c->m[i];
        for (size_t len = 0; len < interp_msg_size(m); len++) {
            int rc = try_bytes(c->L, interp_msg_data(m), len, 0);
            /* one value: every non-empty strict prefix is an error; several values: a prefix
             * that ends between two values is a valid shorter stream */
            if (interp_msg_count(m) == 1 && len > 0)
                assert_int_equal(rc, INTERP_ERR_DECODE);
            errors += rc != INTERP_OK;
        }
    }
    assert_true(errors > 1000);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint32_t rnd(uint32_t below)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % below);
}

static void malformed_random_mutations(void **state)
{
    corpus *c = *state;
    static const unsigned char interesting[] = {
        0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc7, 0xc9, 0xca, 0xcb,
        0xcf, 0xd4, 0xd6, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff, 0x01, 0x02, 0x03};
    int errors = 0, valid = 0;
    for (int iter = 0; iter < 4000; iter++) {
        const interp_msg *m = c->m[rnd(NSOURCES)];
        size_t len = interp_msg_size(m);
        char *buf = malloc(len + 16);
        assert_non_null(buf);
        memcpy(buf, interp_msg_data(m), len);
        int edits = 1 + (int)rnd(3);
        for (int k = 0; k < edits && len > 0; k++) {
            size_t at = rnd((uint32_t)len);
            switch (rnd(5)) {
            case 0:
                buf[at] = (char)rnd(256);
                break;
            case 1:
                buf[at] ^= (char)(1u << rnd(8));
                break;
            case 2:
                buf[at] = (char)interesting[rnd(sizeof interesting)];
                break;
            case 3: /* insert a byte */
                if (len < interp_msg_size(m) + 15) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = (char)interesting[rnd(sizeof interesting)];
                    len++;
                }
                break;
            default: /* delete a byte */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            }
        }
        if (try_bytes(c->L, buf, len, 0) == INTERP_OK)
            valid++;
        else
            errors++;
        free(buf);
    }
    assert_true(errors > 1000);
    assert_true(valid > 0); /* some mutations (inside strings, numbers) stay valid */
}

/* Bytes that must fail with `code` and a reason containing `why`. */
static void bad(const void *bytes, size_t len, int max_depth, int code, const char *why)
{
    char *exact = malloc(len);
    assert_non_null(exact);
    memcpy(exact, bytes, len);
    uint32_t count, flags;
    char text[256];
    int rc = interp__msg_validate(exact, len, max_depth, &count, &flags, text, sizeof text);
    free(exact);
    assert_int_equal(rc, code);
    if (!strstr(text, why))
        fail_msg("'%s' does not contain '%s'", text, why);
}

#define BAD(code, why, ...)                                                                        \
    do {                                                                                           \
        static const unsigned char b_[] = {__VA_ARGS__};                                           \
        bad(b_, sizeof b_, 0, code, why);                                                          \
    } while (0)

/* bin 8 header + "\x1bLua" + 2 more bytes: a (fake) bytecode accepted by the validator */
#define CODE 0xc4, 0x06, 0x1b, 'L', 'u', 'a', 0x54, 0x00

static void malformed_hand_made(void **state)
{
    (void)state;
    BAD(INTERP_ERR_DECODE, "reserved byte 0xc1", 0xc1);
    BAD(INTERP_ERR_DECODE, "truncated", 0xd9);
    BAD(INTERP_ERR_DECODE, "truncated", 0xd9, 0x05, 'a');
    BAD(INTERP_ERR_DECODE, "truncated", 0xcb, 0, 0);
    BAD(INTERP_ERR_DECODE, "more elements than bytes", 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0);
    BAD(INTERP_ERR_DECODE, "more elements than bytes", 0xdf, 0x80, 0, 0, 0, 0xc0, 0xc0);
    BAD(INTERP_ERR_DECODE, "truncated", 0x92, 0x01);
    BAD(INTERP_ERR_DECODE, "unknown extension type 5", 0xd4, 0x05, 0x00);
    BAD(INTERP_ERR_DECODE, "unknown extension type -1", 0xd6, 0xff, 0, 0, 0, 0);
    BAD(INTERP_ERR_DECODE, "reference 1 objects back, only 0 begun", 0xd4, 0x01, 0x01);
    BAD(INTERP_ERR_DECODE, "reference 2 objects back, only 1 begun", 0x91, 0xd4, 0x01, 0x02);
    BAD(INTERP_ERR_DECODE, "reference 0 objects back", 0x91, 0xd4, 0x01, 0x00);
    BAD(INTERP_ERR_DECODE, "reference of 3 bytes", 0x91, 0xc7, 0x03, 0x01, 0, 0, 0);
    BAD(INTERP_ERR_DECODE, "truncated", 0xc8, 0x01, 0x00, 0x01, 0x00);
    /* functions */
    BAD(INTERP_ERR_DECODE, "is not a bin", 0xd4, 0x02, 0x00);
    BAD(INTERP_ERR_DECODE, "not Lua bytecode", 0xc7, 0x06, 0x02, 0xc4, 0x03, 'L', 'u', 'a', 0x00);
    BAD(INTERP_ERR_DECODE, "truncated function (upvalue count)", 0xc7, 0x08, 0x02, CODE);
    BAD(INTERP_ERR_DECODE, "function with 300 upvalues", 0xc7, 0x0b, 0x02, CODE, 0xcd, 0x01, 0x2c);
    BAD(INTERP_ERR_DECODE, "truncated function (upvalue name)", 0xc7, 0x09, 0x02, CODE, 0x01);
    BAD(INTERP_ERR_DECODE, "unknown upvalue tag 7", 0xc7, 0x0b, 0x02, CODE, 0x01, 0xa0, 0x07);
    BAD(INTERP_ERR_DECODE, "upvalue tag is not an unsigned", 0xc7, 0x0b, 0x02, CODE, 0x01, 0xa0,
        0xff);
    BAD(INTERP_ERR_DECODE, "stray bytes", 0xc7, 0x0a, 0x02, CODE, 0x00, 0xc0);
    BAD(INTERP_ERR_DECODE, "truncated", 0xc7, 0x0b, 0x02, CODE, 0x01, 0xa0, 0x00); /* no value */
    /* the value of an upvalue cannot run past the payload */
    BAD(INTERP_ERR_DECODE, "truncated", 0xc7, 0x0c, 0x02, CODE, 0x01, 0xa0, 0x00, 0xa1, 'x');
    BAD(INTERP_ERR_DECODE, "joined to 2 objects back, not a function", 0x91, 0xc7, 0x0d, 0x02, CODE,
        0x01, 0xa0, 0x02, 0x02, 0x00);
    BAD(INTERP_ERR_DECODE, "joined to 0 objects back, not a function", 0xc7, 0x0d, 0x02, CODE, 0x01,
        0xa0, 0x02, 0x00, 0x00);
    BAD(INTERP_ERR_DECODE, "upvalue joined to upvalue 1 of a function with 1", 0xc7, 0x0d, 0x02,
        CODE, 0x01, 0xa0, 0x02, 0x01, 0x01);
    /* a function whose upvalue 0 is joined to itself (1 object back): valid structure */
    {
        static const unsigned char ok[] = {0xc7, 0x0d, 0x02, CODE, 0x01, 0xa0, 0x02, 0x01, 0x00};
        uint32_t count, flags;
        assert_int_equal(
            interp__msg_validate((const char *)ok, sizeof ok, 0, &count, &flags, NULL, 0),
            INTERP_OK);
        assert_int_equal(flags, INTERP__MSG_HAS_FUNCTIONS | INTERP__MSG_HAS_REFS);
        interp_msg *m;
        assert_int_equal(interp_msg_from_bytes(ok, sizeof ok, 0, &m), INTERP_ERR_DECODE);
        assert_null(m);
        assert_int_equal(interp_msg_from_bytes_ex(ok, sizeof ok, 0, INTERP_MSG_TRUST_FUNCTIONS, &m),
                         INTERP_OK);
        lua_State *L = luaL_newstate();
        interp_msg_error err;
        /* refused without allow_functions; with it, the fake bytecode fails to load */
        assert_int_equal(interp_msg_to_lua(L, m, NULL, &err), INTERP_ERR_DECODE);
        interp_msg_opts o = {.allow_functions = true};
        assert_int_equal(interp_msg_to_lua(L, m, &o, &err), INTERP_ERR_DECODE);
        assert_non_null(strstr(err.text, "cannot load function"));
        assert_int_equal(lua_gettop(L), 0);
        lua_close(L);
        interp_msg_free(m);
    }
    /* NULL with bytes is invalid; no bytes is zero values */
    interp_msg *m;
    assert_int_equal(interp_msg_from_bytes(NULL, 3, 0, &m), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_from_bytes(NULL, 0, 0, &m), INTERP_OK);
    assert_int_equal(interp_msg_count(m), 0);
    interp_msg_free(m);
}

static void malformed_self_reference_decodes(void **state)
{
    corpus *c = *state;
    /* [ref 1 back]: an array holding itself; {ref: ref}: a map keyed by itself (2-byte ref) */
    static const unsigned char arr[] = {0x91, 0xd4, 0x01, 0x01};
    static const unsigned char map[] = {0x81, 0xd4, 0x01, 0x01, 0xd5, 0x01, 0x00, 0x01};
    interp_msg *m;
    assert_int_equal(interp_msg_from_bytes(arr, sizeof arr, 0, &m), INTERP_OK);
    assert_int_equal(interp_msg_to_lua(c->L, m, NULL, NULL), INTERP_OK);
    lua_rawgeti(c->L, -1, 1);
    assert_true(lua_rawequal(c->L, -1, -2));
    lua_settop(c->L, 0);
    interp_msg_free(m);
    assert_int_equal(interp_msg_from_bytes(map, sizeof map, 0, &m), INTERP_OK);
    assert_int_equal(interp_msg_to_lua(c->L, m, NULL, NULL), INTERP_OK);
    lua_pushvalue(c->L, -1);
    lua_rawget(c->L, -2);
    assert_true(lua_rawequal(c->L, -1, -2));
    lua_settop(c->L, 0);
    interp_msg_free(m);
}

static void malformed_depth_bombs(void **state)
{
    corpus *c = *state;
    /* 100000 nested one-element arrays: LIMIT at the default depth, without recursion */
    size_t n = 100000;
    unsigned char *b = malloc(n + 1);
    assert_non_null(b);
    memset(b, 0x91, n);
    b[n] = 0xc0;
    bad(b, n + 1, 0, INTERP_ERR_LIMIT, "nesting deeper than 200");
    bad(b, n + 1, 99999, INTERP_ERR_LIMIT, "nesting deeper than 99999");
    bad(b, n, 1000000, INTERP_ERR_DECODE, "truncated");
    /* allowed by a huge limit: validated and decoded iteratively */
    interp_msg *m;
    assert_int_equal(interp_msg_from_bytes(b, n + 1, 1000000, &m), INTERP_OK);
    interp_msg_error err;
    assert_int_equal(interp_msg_to_lua(c->L, m, NULL, &err), INTERP_ERR_LIMIT);
    assert_int_equal(lua_gettop(c->L), 0);
    interp_msg_opts deep = {.max_depth = 1000000};
    assert_int_equal(interp_msg_to_lua(c->L, m, &deep, &err), INTERP_OK);
    int depth = 0;
    while (lua_type(c->L, -1) == LUA_TTABLE) {
        lua_rawgeti(c->L, -1, 1);
        lua_remove(c->L, -2);
        depth++;
    }
    assert_int_equal(depth, (int)n);
    lua_settop(c->L, 0);
    interp_msg_free(m);
    free(b);
    /* nested maps deeper than the Lua stack holds (two slots a level): LIMIT, not a crash */
    n = 520000;
    b = malloc(2 * n + 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[2 * i] = 0x81, b[2 * i + 1] = 0x01;
    b[2 * n] = 0xc0;
    assert_int_equal(interp_msg_from_bytes(b, 2 * n + 1, 1000000, &m), INTERP_OK);
    assert_int_equal(interp_msg_to_lua(c->L, m, &deep, &err), INTERP_ERR_LIMIT);
    assert_non_null(strstr(err.text, "Lua stack"));
    assert_int_equal(lua_gettop(c->L), 0);
    interp_msg_free(m);
    free(b);
    lua_gc(c->L, LUA_GCCOLLECT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malformed_valid_messages_pass),
        cmocka_unit_test(malformed_every_truncation),
        cmocka_unit_test(malformed_random_mutations),
        cmocka_unit_test(malformed_hand_made),
        cmocka_unit_test(malformed_self_reference_decodes),
        cmocka_unit_test(malformed_depth_bombs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
