/* test_frozen.c - frozen values from C: building from messages, handles in messages and their
 * references, refusal from untrusted bytes, buffers, the pool's registry and stats, views
 * outliving the pool, concurrent readers in many states. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>

#include "interp_frozen.h"
#include "interp_msg_lua.h"
#include "interp_ctx.h"
#include "interp_pool.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static size_t live_values(void)
{
    size_t v;
    interp_frozen_totals(&v, NULL);
    return v;
}

static interp_msg *packed(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    interp_msg *m = NULL;
    assert_int_equal(interp_msg_vpack(&m, fmt, ap), INTERP_OK);
    va_end(ap);
    return m;
}

static void assert_text(const interp_msg *m, const char *want)
{
    char *s = NULL;
    assert_int_equal(interp_msg_to_text(m, &s), INTERP_OK);
    assert_string_equal(s, want);
    free(s);
}

static interp_frozen *freeze_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    interp_msg *m = NULL;
    assert_int_equal(interp_msg_vpack(&m, fmt, ap), INTERP_OK);
    va_end(ap);
    interp_frozen *f = NULL;
    assert_int_equal(interp_frozen_from_msg(m, 0, &f), INTERP_OK);
    interp_msg_free(m);
    assert_non_null(f);
    return f;
}

/* A one-value message holding a handle to f. */
static interp_msg *handle_msg(const interp_frozen *f)
{
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_frozen(b, f), INTERP_OK);
    interp_msg *m = NULL;
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_OK);
    return m;
}

/* ---- building and thawing ------------------------------------------------------------------ */

static void frozen_round_trip(void **state)
{
    (void)state;
    size_t before = live_values();
    interp_frozen *f = freeze_fmt("[i d s b [s] {s i}]", 1, 2.5, "three", 1, "nested", "x", 7);
    assert_false(interp_frozen_is_buffer(f));
    assert_true(interp_frozen_size(f) > 0);
    assert_int_equal(live_values(), before + 1);
    interp_msg *m = NULL;
    assert_int_equal(interp_frozen_to_msg(f, &m), INTERP_OK);
    assert_text(m, "{1, 2.5, \"three\", true, {\"nested\"}, {x = 7}}");
    interp_msg_free(m);
    /* a map with integer keys 1..n, a nil inside an array, repeated keys (the last wins) */
    interp_frozen *g = freeze_fmt("{i s i s s i s i}", 2, "b", 1, "a", "k", 1, "k", 2);
    assert_int_equal(interp_frozen_to_msg(g, &m), INTERP_OK);
    char *text = NULL;
    assert_int_equal(interp_msg_to_text(m, &text), INTERP_OK);
    assert_non_null(strstr(text, "[1] = \"a\""));
    assert_non_null(strstr(text, "[2] = \"b\""));
    assert_non_null(strstr(text, "k = 2"));
    assert_null(strstr(text, "k = 1"));
    free(text);
    interp_msg_free(m);
    interp_frozen *h = freeze_fmt("[i n i]", 1, 3);
    assert_int_equal(interp_frozen_to_msg(h, &m), INTERP_OK);
    assert_text(m, "{[1] = 1, [3] = 3}");
    interp_msg_free(m);
    interp_frozen_release(f);
    interp_frozen_release(g);
    interp_frozen_release(h);
    assert_int_equal(live_values(), before);
}

/* Arrays of one type are stored bare: float32, uint64 above INT64_MAX (read as a float, so the
 * array is mixed), every integer width. */
static void frozen_typed_arrays(void **state)
{
    (void)state;
    static const unsigned char f32[] = {0x92, 0xca, 0x3f, 0xc0, 0x00, 0x00, /* 1.5f */
                                        0xca, 0xc0, 0x20, 0x00, 0x00};      /* -2.5f */
    static const unsigned char big[] = {0x92, 0x01, 0xcf, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char ints[] = {0x96, 0x7f, 0xe0, 0xcc, 0xff, 0xd1, 0x80, 0x00,
                                         0xce, 0xff, 0xff, 0xff, 0xff, 0xd3, 0x80, 0,
                                         0,    0,    0,    0,    0,    0};
    const struct {
        const unsigned char *b;
        size_t n;
        const char *text;
    } cases[] = {
        {f32, sizeof f32, "{1.5, -2.5}"},
        {big, sizeof big, "{1, 1.8446744073709552e+19}"},
        {ints, sizeof ints, "{127, -32, 255, -32768, 4294967295, -9223372036854775808}"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        interp_msg *m = NULL, *back = NULL;
        assert_int_equal(interp_msg_from_bytes(cases[k].b, cases[k].n, 0, &m), INTERP_OK);
        interp_frozen *f = NULL;
        assert_int_equal(interp_frozen_from_msg(m, 0, &f), INTERP_OK);
        assert_int_equal(interp_frozen_to_msg(f, &back), INTERP_OK);
        assert_text(back, cases[k].text);
        interp_msg_free(m);
        interp_msg_free(back);
        interp_frozen_release(f);
    }
}

static void frozen_refuses_bad_input(void **state)
{
    (void)state;
    interp_frozen *f = NULL;
    interp_msg *m = packed("i", 3);
    assert_int_equal(interp_frozen_from_msg(m, 0, &f), INTERP_ERR_INVALID); /* not a table */
    interp_msg_free(m);
    m = packed("[i] [i]", 1, 2);
    assert_int_equal(interp_frozen_from_msg(m, 0, &f), INTERP_ERR_INVALID); /* two values */
    interp_msg_free(m);
    m = packed("{n i}", 1);
    assert_int_equal(interp_frozen_from_msg(m, 0, &f), INTERP_ERR_DECODE); /* nil key */
    interp_msg_free(m);
    m = packed("{d i}", NAN, 1);
    assert_int_equal(interp_frozen_from_msg(m, 0, &f), INTERP_ERR_DECODE); /* NaN key */
    interp_msg_free(m);
    m = packed("[[[[i]]]]", 1);
    assert_int_equal(interp_frozen_from_msg(m, 3, &f), INTERP_ERR_LIMIT);
    assert_int_equal(interp_frozen_from_msg(m, 4, &f), INTERP_OK);
    interp_frozen_release(f);
    interp_msg_free(m);
    assert_int_equal(interp_frozen_from_msg(NULL, 0, &f), INTERP_ERR_INVALID);
    /* a function */
    lua_State *L = luaL_newstate();
    luaL_dostring(L, "return {function() end}");
    interp_msg_opts o = {.allow_functions = true};
    assert_int_equal(interp_msg_from_lua(L, -1, 1, &o, &m, NULL), INTERP_OK);
    assert_int_equal(interp_frozen_from_msg(m, 0, &f), INTERP_ERR_DECODE);
    interp_msg_free(m);
    lua_close(L);
}

/* ---- reading from C ------------------------------------------------------------------------ */

static void assert_str_value(const interp_msg_value *v, const char *want)
{
    assert_int_equal(v->type, INTERP_MSG_STR);
    assert_int_equal(v->as.str.len, strlen(want));
    assert_memory_equal(v->as.str.ptr, want, strlen(want));
}

static void frozen_c_reader(void **state)
{
    (void)state;
    size_t before = live_values();
    interp_frozen *f = freeze_fmt("{i s i d i i s [s i] s s b i d s}", 1, "one", 2, 2.5, 3, 30,
                                  "sub", "x", 4, "name", "val", 1, 7, 1.5, "half");
    interp_msg_value v, k;
    assert_true(interp_frozen_is_table(f));
    assert_false(interp_frozen_is_buffer(f));
    assert_int_equal(interp_frozen_len(f), 3);
    assert_int_equal(interp_frozen_count(f), 7);
    /* by integer: the array part, and every index outside it */
    assert_true(interp_frozen_geti(f, 1, &v));
    assert_str_value(&v, "one");
    assert_true(interp_frozen_geti(f, 2, &v));
    assert_int_equal(v.type, INTERP_MSG_FLOAT);
    assert_true(v.as.d == 2.5);
    assert_true(interp_frozen_geti(f, 3, &v));
    assert_int_equal(v.type, INTERP_MSG_INT);
    assert_int_equal(v.as.i, 30);
    const int64_t outside[] = {0, 4, -1, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        v.type = INTERP_MSG_INT;
        assert_false(interp_frozen_geti(f, outside[i], &v));
        assert_int_equal(v.type, INTERP_MSG_NIL);
    }
    /* by string */
    assert_true(interp_frozen_getfield(f, "name", 4, &v));
    assert_str_value(&v, "val");
    assert_false(interp_frozen_getfield(f, "nam", 3, &v));
    assert_false(interp_frozen_getfield(f, "name\0", 5, &v));
    assert_false(interp_frozen_getfield(f, NULL, 0, &v));
    assert_false(interp_frozen_getfield(f, NULL, 4, &v));
    assert_int_equal(v.type, INTERP_MSG_NIL);
    /* nested: a table read with the same functions */
    assert_true(interp_frozen_getfield(f, "sub", 3, &v));
    assert_int_equal(v.type, INTERP_MSG_FROZEN);
    const interp_frozen *sub = v.as.frozen;
    assert_true(interp_frozen_is_table(sub));
    assert_int_equal(interp_frozen_len(sub), 2);
    assert_true(interp_frozen_geti(sub, 1, &v));
    assert_str_value(&v, "x");
    assert_true(interp_frozen_geti(sub, 2, &v) && v.type == INTERP_MSG_INT && v.as.i == 4);
    /* by any key: Lua's normalisation, identity of objects, keys no table holds */
    k.type = INTERP_MSG_BOOL;
    k.as.b = true;
    assert_true(interp_frozen_get(f, &k, &v) && v.type == INTERP_MSG_INT && v.as.i == 7);
    k.as.b = false;
    assert_false(interp_frozen_get(f, &k, &v));
    k.type = INTERP_MSG_FLOAT;
    k.as.d = 1.5;
    assert_true(interp_frozen_get(f, &k, &v));
    assert_str_value(&v, "half");
    k.as.d = 2.0; /* an integral float finds the integer key */
    assert_true(interp_frozen_get(f, &k, &v) && v.type == INTERP_MSG_FLOAT && v.as.d == 2.5);
    k.as.d = NAN;
    assert_false(interp_frozen_get(f, &k, &v));
    k.type = INTERP_MSG_STR;
    k.as.str.ptr = "sub";
    k.as.str.len = 3;
    assert_true(interp_frozen_get(f, &k, &v) && v.type == INTERP_MSG_FROZEN && v.as.frozen == sub);
    k.type = INTERP_MSG_FROZEN;
    k.as.frozen = sub;
    assert_false(interp_frozen_get(f, &k, &v));
    k.as.frozen = NULL;
    assert_false(interp_frozen_get(f, &k, &v));
    k.type = INTERP_MSG_NIL;
    assert_false(interp_frozen_get(f, &k, &v));
    k.type = INTERP_MSG_MAP;
    assert_false(interp_frozen_get(f, &k, &v));
    assert_false(interp_frozen_get(f, NULL, &v));
    /* iteration: the array part in order, then every other key once, each value as get gives */
    interp_frozen_iter it = interp_frozen_iter_init(f);
    int n = 0, seen_name = 0;
    while (interp_frozen_iter_next(&it, &k, &v)) {
        n++;
        if (n <= 3)
            assert_true(k.type == INTERP_MSG_INT && k.as.i == n);
        interp_msg_value again;
        assert_true(interp_frozen_get(f, &k, &again));
        assert_int_equal(again.type, v.type);
        switch (v.type) {
        case INTERP_MSG_INT:
            assert_true(again.as.i == v.as.i);
            break;
        case INTERP_MSG_FLOAT:
            assert_true(again.as.d == v.as.d);
            break;
        case INTERP_MSG_STR:
            assert_ptr_equal(again.as.str.ptr, v.as.str.ptr);
            break;
        case INTERP_MSG_FROZEN:
            assert_ptr_equal(again.as.frozen, v.as.frozen);
            break;
        default:
            fail_msg("unexpected type %d", (int)v.type);
        }
        seen_name += k.type == INTERP_MSG_STR && k.as.str.len == 4;
    }
    assert_int_equal(n, 7);
    assert_int_equal(seen_name, 1);
    assert_false(interp_frozen_iter_next(&it, &k, &v)); /* stays at the end */
    it = interp_frozen_iter_init(f);
    for (n = 0; interp_frozen_iter_next(&it, NULL, NULL);)
        n++;
    assert_int_equal(n, 7);
    /* a nested object outlives the reference it was read through once retained */
    interp_frozen *kept = interp_frozen_retain(sub);
    interp_frozen_release(f);
    assert_true(interp_frozen_geti(kept, 1, &v));
    assert_str_value(&v, "x");
    interp_frozen_release(kept);
    assert_int_equal(live_values(), before);

    /* NULL and buffers: nil everywhere, nothing read outside */
    interp_frozen *b = NULL;
    assert_int_equal(interp_frozen_bytes("12345", 5, &b), INTERP_OK);
    const interp_frozen *wrong[] = {NULL, b};
    for (int w = 0; w < 2; w++) {
        assert_false(interp_frozen_is_table(wrong[w]));
        assert_int_equal(interp_frozen_count(wrong[w]), 0);
        assert_false(interp_frozen_geti(wrong[w], 1, &v));
        assert_false(interp_frozen_getfield(wrong[w], "a", 1, &v));
        k.type = INTERP_MSG_INT;
        k.as.i = 1;
        assert_false(interp_frozen_get(wrong[w], &k, &v));
        it = interp_frozen_iter_init(wrong[w]);
        assert_false(interp_frozen_iter_next(&it, &k, &v));
        double d[2];
        assert_int_equal(interp_frozen_read_numbers(wrong[w], 1, 2, d), 0);
    }
    assert_int_equal(interp_frozen_len(NULL), 0);
    assert_int_equal(interp_frozen_len(b), 5);
    assert_false(interp_frozen_iter_next(NULL, &k, &v));
    interp_frozen_release(b);
}

/* interp_frozen_read_numbers over each kind of array part, at its bounds. */
static void frozen_c_read_numbers(void **state)
{
    (void)state;
    double out[8];
    interp_frozen *fl = freeze_fmt("[d d d d]", 0.5, 1.5, 2.5, 3.5);
    interp_frozen *in = freeze_fmt("[i i i]", 7, -8, 9);
    interp_frozen *mix = freeze_fmt("[d i s d]", 0.25, 4, "no", 1.0);
    assert_int_equal(interp_frozen_read_numbers(fl, 1, 8, out), 4);
    assert_true(out[0] == 0.5 && out[3] == 3.5);
    assert_int_equal(interp_frozen_read_numbers(fl, 3, 8, out), 2);
    assert_true(out[0] == 2.5 && out[1] == 3.5);
    assert_int_equal(interp_frozen_read_numbers(fl, 2, 1, out), 1);
    assert_true(out[0] == 1.5);
    out[0] = -1;
    assert_int_equal(interp_frozen_read_numbers(fl, 5, 1, out), 0);
    assert_int_equal(interp_frozen_read_numbers(fl, 0, 1, out), 0);
    assert_int_equal(interp_frozen_read_numbers(fl, INT64_MIN, 1, out), 0);
    assert_int_equal(interp_frozen_read_numbers(fl, INT64_MAX, 1, out), 0);
    assert_int_equal(interp_frozen_read_numbers(fl, 1, 0, out), 0);
    assert_int_equal(interp_frozen_read_numbers(fl, 1, 3, NULL), 0);
    assert_true(out[0] == -1); /* nothing written past what was returned */
    assert_int_equal(interp_frozen_read_numbers(in, 1, 8, out), 3);
    assert_true(out[0] == 7.0 && out[1] == -8.0 && out[2] == 9.0);
    assert_int_equal(interp_frozen_read_numbers(mix, 1, 8, out), 2); /* stops before "no" */
    assert_true(out[0] == 0.25 && out[1] == 4.0);
    assert_int_equal(interp_frozen_read_numbers(mix, 4, 8, out), 1);
    assert_true(out[0] == 1.0);
    interp_frozen_release(fl);
    interp_frozen_release(in);
    interp_frozen_release(mix);
}

/* ---- handles in messages ------------------------------------------------------------------- */

static void frozen_handles_hold_references(void **state)
{
    (void)state;
    size_t before = live_values();
    interp_frozen *f = freeze_fmt("[i i i]", 1, 2, 3);
    interp_msg *m = handle_msg(f);
    interp_msg *d = interp_msg_dup(m);
    interp_frozen_release(f); /* the messages keep it alive */
    assert_int_equal(live_values(), before + 1);
    interp_msg_iter it = interp_msg_iter_init(d);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_FROZEN);
    assert_ptr_equal(v.as.frozen, f);
    assert_text(d, "<frozen table>");
    /* concatenated into another message, and a builder dropped unfinished */
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_array(b, 2), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, m), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, d), INTERP_OK);
    interp_msg *both = NULL;
    assert_int_equal(interp_msg_builder_finish(b, &both), INTERP_OK);
    b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_msg(b, m), INTERP_OK);
    assert_int_equal(interp_msg_add_array(b, 3), INTERP_OK);
    assert_int_equal(interp_msg_add_frozen(b, v.as.frozen), INTERP_OK);
    interp_msg_builder_free(b);
    /* never from bytes: the handle's bytes are refused */
    interp_msg *forged = NULL;
    assert_int_equal(interp_msg_from_bytes(interp_msg_data(m), interp_msg_size(m), 0, &forged),
                     INTERP_ERR_DECODE);
    assert_null(forged);
    /* frozen into a new value by reference */
    interp_frozen *outer = NULL;
    assert_int_equal(interp_frozen_from_msg(both, 0, &outer), INTERP_OK);
    interp_msg_free(m);
    interp_msg_free(d);
    interp_msg_free(both);
    assert_int_equal(live_values(), before + 2);
    interp_msg *t = NULL;
    assert_int_equal(interp_frozen_to_msg(outer, &t), INTERP_OK);
    assert_text(t, "{{1, 2, 3}, @ref1}");
    interp_msg_free(t);
    interp_frozen_release(outer);
    assert_int_equal(live_values(), before);
    assert_int_equal(interp_msg_add_frozen(NULL, NULL), INTERP_ERR_INVALID);
}

/* ---- buffers -------------------------------------------------------------------------------- */

static int released;
static void count_release(void *ud, const void *data, size_t len)
{
    (void)data;
    (void)len;
    released += *(int *)ud;
}

static void frozen_buffers(void **state)
{
    (void)state;
    interp_frozen *b = NULL;
    assert_int_equal(interp_frozen_bytes("a\0b", 3, &b), INTERP_OK);
    size_t len = 0;
    const char *p = interp_frozen_data(b, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "a\0b", 3);
    assert_true(interp_frozen_is_buffer(b));
    interp_msg *m = NULL;
    assert_int_equal(interp_frozen_to_msg(b, &m), INTERP_OK);
    assert_text(m, "\"a\\0b\"");
    interp_msg_free(m);
    interp_frozen_release(b);

    static const char blob[] = "host bytes";
    int one = 1;
    released = 0;
    assert_int_equal(interp_frozen_wrap(blob, 10, count_release, &one, &b), INTERP_OK);
    interp_frozen_retain(b);
    interp_frozen_release(b);
    assert_int_equal(released, 0);
    interp_frozen_release(b);
    assert_int_equal(released, 1);
    assert_int_equal(interp_frozen_wrap(NULL, 3, NULL, NULL, &b), INTERP_ERR_INVALID);

    char path[] = "/tmp/test_frozen_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "mapped file\n", 12), 12);
    close(fd);
    assert_int_equal(interp_frozen_map_file(path, &b), INTERP_OK);
    p = interp_frozen_data(b, &len);
    assert_int_equal(len, 12);
    assert_memory_equal(p, "mapped file\n", 12);
    unlink(path);
    interp_frozen_release(b);
    assert_int_equal(interp_frozen_map_file(path, &b), INTERP_ERR_NOTFOUND);
}

/* ---- in a pool ------------------------------------------------------------------------------ */

static const char *const INIT =
    "function read_cfg() local c = interp.shared('cfg') return c.n + #c, c[1] end\n"
    "function make() return interp.freeze({made = {1, 2, 3}}) end\n"
    "function sum(t) local s = 0 for i = 1, #t do s = s + t[i] end return s end\n"
    "function publish()\n"
    "  local ok = pcall(interp.shared, 'cfg', {}) collectgarbage() collectgarbage() return ok\n"
    "end\n";

static void frozen_in_pool(void **state)
{
    (void)state;
    size_t before = live_values();
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2;
    o.init_source = INIT;
    interp_pool *pool = NULL;
    assert_int_equal(interp_pool_create(&pool, &o, NULL), INTERP_OK);
    interp_frozen *cfg = freeze_fmt("{i s i s s i}", 1, "a", 2, "b", "n", 10);
    assert_int_equal(interp_pool_share(pool, "cfg", cfg), INTERP_OK);
    interp_frozen *back = NULL;
    assert_int_equal(interp_pool_shared(pool, "cfg", &back), INTERP_OK);
    assert_ptr_equal(back, cfg);
    interp_frozen_release(back);
    assert_int_equal(interp_pool_shared(pool, "absent", &back), INTERP_OK);
    assert_null(back);
    interp_frozen_release(cfg); /* the registry keeps it */
    interp_frozen *tmp = freeze_fmt("[i]", 1);
    assert_int_equal(interp_pool_share(pool, "tmp", tmp), INTERP_OK);
    assert_int_equal(interp_pool_share(pool, "tmp", tmp), INTERP_OK);  /* replaced by itself */
    assert_int_equal(interp_pool_share(pool, "tmp", NULL), INTERP_OK); /* removed */
    assert_int_equal(interp_pool_shared(pool, "tmp", &back), INTERP_OK);
    assert_null(back);
    assert_int_equal(live_values(), before + 2);
    interp_frozen_release(tmp);
    assert_int_equal(live_values(), before + 1);

    interp_future *f = NULL;
    long long n = 0;
    const char *s = NULL;
    size_t len = 0;
    assert_int_equal(interp_pool_submit(pool, "read_cfg", NULL, &f), INTERP_OK);
    assert_int_equal(interp_future_resultf(f, 10.0, "L s", &n, &s, &len), INTERP_OK);
    assert_int_equal(n, 12);
    assert_memory_equal(s, "a", 1);
    interp_future_release(f);
    bool ok = true;
    assert_int_equal(interp_pool_submit(pool, "publish", NULL, &f), INTERP_OK);
    assert_int_equal(interp_future_resultf(f, 10.0, "b *", &ok), INTERP_OK);
    assert_false(ok); /* a script never replaces a name */
    interp_future_release(f);

    /* a value frozen by a task, returned, kept after the pool is gone */
    assert_int_equal(interp_pool_submit(pool, "make", NULL, &f), INTERP_OK);
    const interp_msg *res = NULL;
    assert_int_equal(interp_future_result(f, 10.0, &res), INTERP_OK);
    interp_msg_iter it = interp_msg_iter_init(res);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_FROZEN);
    interp_frozen *made = interp_frozen_retain(v.as.frozen);
    interp_future_release(f);
    interp_pool_stats st;
    assert_int_equal(interp_pool_get_stats(pool, &st), INTERP_OK);
    assert_int_equal(st.frozen_values, 1);
    assert_int_equal(st.frozen_bytes, interp_frozen_size(made));

    /* a big frozen array summed by tasks: the argument is a handle, not a copy */
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_array(b, 10000), INTERP_OK);
    for (int i = 1; i <= 10000; i++)
        assert_int_equal(interp_msg_add_int(b, i), INTERP_OK);
    interp_msg *arr = NULL;
    assert_int_equal(interp_msg_builder_finish(b, &arr), INTERP_OK);
    interp_frozen *big = NULL;
    assert_int_equal(interp_frozen_from_msg(arr, 0, &big), INTERP_OK);
    interp_msg_free(arr);
    interp_future *fs[8];
    for (int k = 0; k < 8; k++) {
        interp_msg *args = handle_msg(big);
        assert_true(interp_msg_size(args) < 16);
        assert_int_equal(interp_pool_submit(pool, "sum", args, &fs[k]), INTERP_OK);
    }
    for (int k = 0; k < 8; k++) {
        assert_int_equal(interp_future_resultf(fs[k], 10.0, "L", &n), INTERP_OK);
        assert_int_equal(n, 50005000);
        interp_future_release(fs[k]);
    }
    interp_frozen_release(big);
    interp_pool_destroy(pool);

    interp_msg *m = NULL;
    assert_int_equal(interp_frozen_to_msg(made, &m), INTERP_OK);
    assert_text(m, "{made = {1, 2, 3}}");
    interp_msg_free(m);
    interp_frozen_release(made);
    assert_int_equal(live_values(), before);
}

/* A context keeps a view in its globals from one call to the next; the value outlives the
 * context and the pool. */
static void frozen_to_a_context(void **state)
{
    (void)state;
    size_t before = live_values();
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    interp_pool *pool = NULL;
    assert_int_equal(interp_pool_create(&pool, &o, NULL), INTERP_OK);
    interp_ctx_options co = {.name = "keeper",
                             .init_source = "function keep(t) KEPT = t return #t end\n"
                                            "function read(i) return KEPT[i] end\n"};
    interp_ctx *ctx = NULL;
    assert_int_equal(interp_ctx_create(pool, &co, &ctx, NULL), INTERP_OK);
    interp_frozen *f = freeze_fmt("[i i i]", 10, 20, 30);
    interp_future *fu = NULL;
    long long n = 0;
    assert_int_equal(interp_ctx_call(ctx, "keep", handle_msg(f), &fu), INTERP_OK);
    interp_frozen_release(f); /* the context's view keeps it */
    assert_int_equal(interp_future_resultf(fu, 10.0, "L", &n), INTERP_OK);
    assert_int_equal(n, 3);
    interp_future_release(fu);
    assert_int_equal(interp_ctx_call(ctx, "read", packed("i", 2), &fu), INTERP_OK);
    assert_int_equal(interp_future_resultf(fu, 10.0, "L", &n), INTERP_OK);
    assert_int_equal(n, 20);
    interp_future_release(fu);
    assert_int_equal(live_values(), before + 1);
    interp_ctx_close(ctx);
    interp_pool_destroy(pool); /* the context's state goes, and with it the last reference */
    assert_int_equal(live_values(), before);
}

/* ---- concurrent readers --------------------------------------------------------------------- */

typedef struct reader {
    pthread_t th;
    const interp_msg *msg;
    long long sum;
    int rc;
} reader;

static void *read_thread(void *arg)
{
    reader *r = arg;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    r->rc = luaL_loadstring(L, "local t = ... local s = 0\n"
                               "for round = 1, 20 do\n"
                               "  for i = 1, #t do s = s + t[i] end\n"
                               "  for k, v in pairs(t.map) do s = s + v end\n"
                               "end\n"
                               "return s");
    if (r->rc == LUA_OK && (r->rc = interp_msg_to_lua(L, r->msg, NULL, NULL)) == INTERP_OK &&
        (r->rc = lua_pcall(L, 1, 1, 0)) == LUA_OK)
        r->sum = (long long)lua_tointeger(L, -1);
    lua_close(L); /* the view's __gc drops its reference, concurrently with the others */
    return NULL;
}

static void frozen_concurrent_readers(void **state)
{
    (void)state;
    size_t before = live_values();
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_map(b, 1001), INTERP_OK);
    for (int i = 1; i <= 1000; i++) {
        assert_int_equal(interp_msg_add_int(b, i), INTERP_OK);
        assert_int_equal(interp_msg_add_int(b, i), INTERP_OK);
    }
    assert_int_equal(interp_msg_add_cstr(b, "map"), INTERP_OK);
    assert_int_equal(interp_msg_add_map(b, 50), INTERP_OK);
    for (int i = 0; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(interp_msg_add_cstr(b, key), INTERP_OK);
        assert_int_equal(interp_msg_add_int(b, 1), INTERP_OK);
    }
    interp_msg *m = NULL;
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_OK);
    interp_frozen *f = NULL;
    assert_int_equal(interp_frozen_from_msg(m, 0, &f), INTERP_OK);
    interp_msg_free(m);
    interp_msg *h = handle_msg(f);
    interp_frozen_release(f);
    enum { N = 4 };
    reader r[N];
    for (int k = 0; k < N; k++) {
        r[k] = (reader){.msg = h, .rc = -1};
        assert_int_equal(pthread_create(&r[k].th, NULL, read_thread, &r[k]), 0);
    }
    for (int k = 0; k < N; k++) {
        pthread_join(r[k].th, NULL);
        assert_int_equal(r[k].rc, 0);
        assert_int_equal(r[k].sum, 20LL * (500500 + 50));
    }
    interp_msg_free(h);
    assert_int_equal(live_values(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frozen_round_trip),
        cmocka_unit_test(frozen_typed_arrays),
        cmocka_unit_test(frozen_c_reader),
        cmocka_unit_test(frozen_c_read_numbers),
        cmocka_unit_test(frozen_refuses_bad_input),
        cmocka_unit_test(frozen_handles_hold_references),
        cmocka_unit_test(frozen_buffers),
        cmocka_unit_test(frozen_in_pool),
        cmocka_unit_test(frozen_to_a_context),
        cmocka_unit_test(frozen_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
