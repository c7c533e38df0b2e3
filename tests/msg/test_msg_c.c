/* test_msg_c.c - the C API of messages: constructors, builder, reader, printer. */
#include <float.h>
#include <math.h>
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
#include "msg_impl.h"

#include "alloc_fail.h" /* see tests/alloc_fail.cmake */

/* ---- helpers ----------------------------------------------------------------------------- */

/* A message holding exactly these bytes (an allocation of exactly that size, so that ASan
 * sees any over-read). */
static interp_msg *raw(const void *bytes, size_t n, uint32_t count, uint32_t flags)
{
    interp_msg *m = interp__msg_alloc(n, count, flags);
    assert_non_null(m);
    memcpy(m->data, bytes, n);
    return m;
}

static char *text_of(const interp_msg *m)
{
    char *s = NULL;
    assert_int_equal(interp_msg_to_text(m, &s), INTERP_OK);
    assert_non_null(s);
    return s;
}

static void assert_text(const interp_msg *m, const char *want)
{
    char *s = text_of(m);
    assert_string_equal(s, want);
    free(s);
}

static interp_msg *finish(interp_msg_builder *b)
{
    interp_msg *m = NULL;
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_OK);
    assert_non_null(m);
    return m;
}

static interp_msg_value first_value(const interp_msg *m)
{
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v));
    return v;
}

/* ---- constructors ------------------------------------------------------------------------- */

static void msg_c_constructors(void **state)
{
    (void)state;
    interp_msg *m = interp_msg_nil();
    assert_int_equal(interp_msg_count(m), 1);
    assert_int_equal(interp_msg_size(m), 1);
    assert_int_equal((uint8_t)interp_msg_data(m)[0], 0xc0);
    assert_int_equal(first_value(m).type, INTERP_MSG_NIL);
    interp_msg_free(m);

    m = interp_msg_bool(true);
    interp_msg_value v = first_value(m);
    assert_int_equal(v.type, INTERP_MSG_BOOL);
    assert_true(v.as.b);
    interp_msg_free(m);
    m = interp_msg_bool(false);
    v = first_value(m);
    assert_int_equal(v.type, INTERP_MSG_BOOL);
    assert_false(v.as.b);
    interp_msg_free(m);

    m = interp_msg_int(3);
    assert_int_equal(interp_msg_size(m), 1);
    v = first_value(m);
    assert_int_equal(v.type, INTERP_MSG_INT);
    assert_int_equal(v.as.i, 3);
    interp_msg_free(m);

    m = interp_msg_double(3.0); /* stays a float: float64, 9 bytes */
    assert_int_equal(interp_msg_size(m), 9);
    assert_int_equal((uint8_t)interp_msg_data(m)[0], 0xcb);
    v = first_value(m);
    assert_int_equal(v.type, INTERP_MSG_FLOAT);
    assert_true(v.as.d == 3.0);
    interp_msg_free(m);

    m = interp_msg_str("a\0b", 3);
    v = first_value(m);
    assert_int_equal(v.type, INTERP_MSG_STR);
    assert_int_equal(v.as.str.len, 3);
    assert_memory_equal(v.as.str.ptr, "a\0b", 3);
    interp_msg_free(m);

    m = interp_msg_cstr("hello");
    v = first_value(m);
    assert_int_equal(v.type, INTERP_MSG_STR);
    assert_int_equal(v.as.str.len, 5);
    assert_memory_equal(v.as.str.ptr, "hello", 5);
    interp_msg_free(m);

    m = interp_msg_str(NULL, 0); /* the empty string */
    v = first_value(m);
    assert_int_equal(v.type, INTERP_MSG_STR);
    assert_int_equal(v.as.str.len, 0);
    interp_msg_free(m);

    assert_null(interp_msg_str(NULL, 1));
    assert_null(interp_msg_cstr(NULL));
}

/* ---- scalars at every MessagePack size boundary --------------------------------------- */

static void check_int(int64_t x, size_t size)
{
    interp_msg *a = interp_msg_int(x);
    assert_non_null(a);
    assert_int_equal(interp_msg_size(a), size);
    interp_msg_value v = first_value(a);
    assert_int_equal(v.type, INTERP_MSG_INT);
    assert_true(v.as.i == x);

    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_int(b, x), INTERP_OK);
    interp_msg *c = finish(b);
    assert_int_equal(interp_msg_size(c), size);
    assert_memory_equal(interp_msg_data(c), interp_msg_data(a), size);
    interp_msg_free(a);
    interp_msg_free(c);
}

static void msg_c_int_boundaries(void **state)
{
    (void)state;
    struct {
        int64_t v;
        size_t size;
    } cases[] = {
        {0, 1},
        {1, 1},
        {127, 1}, /* positive fixint */
        {128, 2},
        {255, 2}, /* uint8 */
        {256, 3},
        {65535, 3}, /* uint16 */
        {65536, 5},
        {UINT32_MAX, 5}, /* uint32 */
        {(int64_t)UINT32_MAX + 1, 9},
        {INT64_MAX, 9}, /* uint64 */
        {-1, 1},
        {-32, 1}, /* negative fixint */
        {-33, 2},
        {-128, 2}, /* int8 */
        {-129, 3},
        {-32768, 3}, /* int16 */
        {-32769, 5},
        {INT32_MIN, 5}, /* int32 */
        {(int64_t)INT32_MIN - 1, 9},
        {INT64_MIN, 9}, /* int64 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_int(cases[i].v, cases[i].size);
}

/* Integers written by other encoders in forms ours never uses: signed forms for positive
 * values, unsigned above INT64_MAX. */
static void msg_c_int_foreign_forms(void **state)
{
    (void)state;
    const unsigned char bytes[] = {
        0xd0, 0x05,                                           /* int8 5 */
        0xd1, 0x7f, 0xff,                                     /* int16 32767 */
        0xd2, 0x80, 0x00, 0x00, 0x00,                         /* int32 INT32_MIN */
        0xd3, 0x80, 0,    0,    0,    0,    0,    0,    0,    /* int64 INT64_MIN */
        0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* uint64 INT64_MAX */
        0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* uint64 max: a float */
        0xcf, 0x80, 0,    0,    0,    0,    0,    0,    0,    /* 2^63: a float */
        0xca, 0x3f, 0xc0, 0x00, 0x00,                         /* float32 1.5 */
    };
    interp_msg *m = raw(bytes, sizeof bytes, 8, 0);
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    int64_t ints[] = {5, 32767, INT32_MIN, INT64_MIN, INT64_MAX};
    for (int i = 0; i < 5; i++) {
        assert_true(interp_msg_next(&it, &v));
        assert_int_equal(v.type, INTERP_MSG_INT);
        assert_true(v.as.i == ints[i]);
    }
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_FLOAT);
    assert_true(v.as.d == 18446744073709551615.0);
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_FLOAT);
    assert_true(v.as.d == 9223372036854775808.0);
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_FLOAT);
    assert_true(v.as.d == 1.5);
    assert_false(interp_msg_next(&it, &v));
    interp_msg_free(m);
}

static void check_str(size_t len, size_t head)
{
    char *s = malloc(len ? len : 1);
    assert_non_null(s);
    for (size_t i = 0; i < len; i++)
        s[i] = (char)(i * 7 + 1);
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_str(b, s, len), INTERP_OK);
    interp_msg *m = finish(b);
    assert_int_equal(interp_msg_size(m), head + len);
    interp_msg *c = interp_msg_str(s, len);
    assert_int_equal(interp_msg_size(c), head + len);
    assert_memory_equal(interp_msg_data(c), interp_msg_data(m), head + len);
    interp_msg_value v = first_value(m);
    assert_int_equal(v.type, INTERP_MSG_STR);
    assert_int_equal(v.as.str.len, len);
    if (len)
        assert_memory_equal(v.as.str.ptr, s, len);
    interp_msg_free(m);
    interp_msg_free(c);
    free(s);
}

static void msg_c_str_boundaries(void **state)
{
    (void)state;
    check_str(0, 1);
    check_str(31, 1); /* fixstr */
    check_str(32, 2); /* str8 */
    check_str(255, 2);
    check_str(256, 3); /* str16 */
    check_str(65535, 3);
    check_str(65536, 5); /* str32 */
}

static void msg_c_double_specials(void **state)
{
    (void)state;
    double cases[] = {3.0,      -0.0,      0.0,   0.1, DBL_MAX, DBL_MIN, 4.9406564584124654e-324,
                      INFINITY, -INFINITY, 1e300, -2.5};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        interp_msg_builder *b = interp_msg_builder_new();
        assert_int_equal(interp_msg_add_double(b, cases[i]), INTERP_OK);
        interp_msg *m = finish(b);
        assert_int_equal(interp_msg_size(m), 9);
        interp_msg_value v = first_value(m);
        assert_int_equal(v.type, INTERP_MSG_FLOAT);
        assert_memory_equal(&v.as.d, &cases[i], sizeof(double)); /* bit for bit */
        interp_msg_free(m);
    }
    interp_msg *m = interp_msg_double(NAN);
    interp_msg_value v = first_value(m);
    assert_int_equal(v.type, INTERP_MSG_FLOAT);
    assert_true(isnan(v.as.d));
    interp_msg_free(m);
}

/* ---- builder: nesting, counting, errors ------------------------------------------------ */

static void msg_c_builder_nesting(void **state)
{
    (void)state;
    /* 1, {10, {x = "y", [2] = {}}, 2.5}, "end" */
    interp_msg_builder *b = interp_msg_builder_new();
    assert_non_null(b);
    assert_int_equal(interp_msg_add_int(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_array(b, 3), INTERP_OK);
    assert_int_equal(interp_msg_add_int(b, 10), INTERP_OK);
    assert_int_equal(interp_msg_add_map(b, 2), INTERP_OK);
    assert_int_equal(interp_msg_add_cstr(b, "x"), INTERP_OK);
    assert_int_equal(interp_msg_add_cstr(b, "y"), INTERP_OK);
    assert_int_equal(interp_msg_add_int(b, 2), INTERP_OK);
    assert_int_equal(interp_msg_add_array(b, 0), INTERP_OK);
    assert_int_equal(interp_msg_add_double(b, 2.5), INTERP_OK);
    assert_int_equal(interp_msg_add_cstr(b, "end"), INTERP_OK);
    interp_msg *m = finish(b);
    assert_int_equal(interp_msg_count(m), 3);

    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v, e, k, x;
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.as.i, 1);
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_ARRAY);
    assert_int_equal(v.as.seq.count, 3);
    interp_msg_iter items = v.as.seq.items;
    assert_true(interp_msg_next(&items, &e));
    assert_int_equal(e.as.i, 10);
    assert_true(interp_msg_next(&items, &e));
    assert_int_equal(e.type, INTERP_MSG_MAP);
    assert_int_equal(e.as.seq.count, 2);
    assert_int_equal(e.as.seq.items.left, 4);
    interp_msg_iter kv = e.as.seq.items;
    assert_true(interp_msg_next(&kv, &k));
    assert_int_equal(k.type, INTERP_MSG_STR);
    assert_memory_equal(k.as.str.ptr, "x", 1);
    assert_true(interp_msg_next(&kv, &x));
    assert_memory_equal(x.as.str.ptr, "y", 1);
    assert_true(interp_msg_next(&kv, &k));
    assert_int_equal(k.as.i, 2);
    assert_true(interp_msg_next(&kv, &x));
    assert_int_equal(x.type, INTERP_MSG_ARRAY);
    assert_int_equal(x.as.seq.count, 0);
    assert_false(interp_msg_next(&x.as.seq.items, &e));
    assert_false(interp_msg_next(&kv, &k));
    assert_true(interp_msg_next(&items, &e)); /* past the whole map */
    assert_int_equal(e.type, INTERP_MSG_FLOAT);
    assert_true(e.as.d == 2.5);
    assert_false(interp_msg_next(&items, &e));
    assert_true(interp_msg_next(&it, &v)); /* past the whole array */
    assert_int_equal(v.type, INTERP_MSG_STR);
    assert_memory_equal(v.as.str.ptr, "end", 3);
    assert_false(interp_msg_next(&it, &v));
    assert_text(m, "1, {10, {x = \"y\", [2] = {}}, 2.5}, \"end\"");
    interp_msg_free(m);
}

static void msg_c_builder_empty(void **state)
{
    (void)state;
    interp_msg *m = finish(interp_msg_builder_new());
    assert_int_equal(interp_msg_count(m), 0);
    assert_int_equal(interp_msg_size(m), 0);
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    assert_false(interp_msg_next(&it, &v));
    assert_text(m, "");
    interp_msg_free(m);

    /* empty containers are complete at once */
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_map(b, 0), INTERP_OK);
    assert_int_equal(interp_msg_add_array(b, 0), INTERP_OK);
    m = finish(b);
    assert_int_equal(interp_msg_count(m), 2);
    assert_text(m, "{}, {}");
    interp_msg_free(m);
}

static void msg_c_builder_open_containers(void **state)
{
    (void)state;
    interp_msg *m = (interp_msg *)1;
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_array(b, 2), INTERP_OK);
    assert_int_equal(interp_msg_add_int(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_ERR_INVALID);
    assert_null(m);

    b = interp_msg_builder_new(); /* a map missing the value of its last pair */
    assert_int_equal(interp_msg_add_map(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_cstr(b, "k"), INTERP_OK);
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_ERR_INVALID);
    assert_null(m);

    b = interp_msg_builder_new(); /* the inner one complete, the outer not */
    assert_int_equal(interp_msg_add_array(b, 2), INTERP_OK);
    assert_int_equal(interp_msg_add_array(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_nil(b), INTERP_OK);
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_ERR_INVALID);
    assert_null(m);

    /* the same, completed: fine */
    b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_array(b, 2), INTERP_OK);
    assert_int_equal(interp_msg_add_array(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_nil(b), INTERP_OK);
    assert_int_equal(interp_msg_add_bool(b, false), INTERP_OK);
    m = finish(b);
    assert_int_equal(interp_msg_count(m), 1);
    assert_text(m, "{{nil}, false}");
    interp_msg_free(m);

    /* freeing an unfinished builder is fine, NULL too */
    b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_map(b, 3), INTERP_OK);
    interp_msg_builder_free(b);
    interp_msg_builder_free(NULL);
}

static void msg_c_builder_bad_args(void **state)
{
    (void)state;
    assert_int_equal(interp_msg_add_nil(NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_add_int(NULL, 1), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_add_array(NULL, 1), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_add_msg(NULL, NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_builder_finish(NULL, NULL), INTERP_ERR_INVALID);
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_str(b, NULL, 3), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_add_cstr(b, NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_add_msg(b, NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_msg_add_str(b, "x", (size_t)UINT32_MAX + 1), INTERP_ERR_LIMIT);
    /* a refused argument appends nothing and the builder goes on */
    assert_int_equal(interp_msg_add_int(b, 7), INTERP_OK);
    interp_msg *m = finish(b);
    assert_int_equal(interp_msg_count(m), 1);
    assert_text(m, "7");
    interp_msg_free(m);
    assert_int_equal(interp_msg_to_text(NULL, NULL), INTERP_ERR_INVALID);
}

static void msg_c_builder_deep(void **state)
{
    (void)state;
    enum { DEPTH = 100000 };
    interp_msg_builder *b = interp_msg_builder_new();
    for (int i = 0; i < DEPTH; i++)
        assert_int_equal(interp_msg_add_array(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_int(b, 42), INTERP_OK);
    interp_msg *m = finish(b);
    assert_int_equal(interp_msg_count(m), 1);
    /* reading an array steps over all of it, so walking all levels would be quadratic:
     * read the outer three */
    interp_msg_value v = first_value(m);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(v.type, INTERP_MSG_ARRAY);
        assert_int_equal(v.as.seq.count, 1);
        interp_msg_iter in = v.as.seq.items;
        interp_msg_value inner, none;
        assert_true(interp_msg_next(&in, &inner));
        assert_false(interp_msg_next(&in, &none));
        v = inner;
    }
    assert_int_equal(v.type, INTERP_MSG_ARRAY);
    char *s = text_of(m); /* printed whole, no recursion */
    assert_int_equal(strlen(s), 2 * DEPTH + 2);
    assert_int_equal(s[0], '{');
    assert_memory_equal(s + DEPTH, "42", 2);
    assert_int_equal(s[2 * DEPTH + 1], '}');
    free(s);
    interp_msg_free(m);
}

/* 1 MiB string with NUL bytes, through the builder and the constructor. */
static void msg_c_big_string(void **state)
{
    (void)state;
    size_t len = 1 << 20;
    char *s = malloc(len);
    assert_non_null(s);
    for (size_t i = 0; i < len; i++)
        s[i] = (char)(i % 251); /* NUL every 251 bytes */
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_str(b, s, len), INTERP_OK);
    assert_int_equal(interp_msg_add_str(b, s, len), INTERP_OK);
    interp_msg *m = finish(b);
    assert_int_equal(interp_msg_count(m), 2);
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    for (int i = 0; i < 2; i++) {
        assert_true(interp_msg_next(&it, &v));
        assert_int_equal(v.type, INTERP_MSG_STR);
        assert_int_equal(v.as.str.len, len);
        assert_memory_equal(v.as.str.ptr, s, len);
    }
    assert_false(interp_msg_next(&it, &v));
    interp_msg *c = interp_msg_str(s, len);
    v = first_value(c);
    assert_int_equal(v.as.str.len, len);
    assert_memory_equal(v.as.str.ptr, s, len);
    interp_msg_free(c);
    interp_msg_free(m);
    free(s);
}

/* 10^5-element array and map. */
static void msg_c_big_array(void **state)
{
    (void)state;
    enum { N = 100000 };
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_array(b, N), INTERP_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(interp_msg_add_int(b, i * 3 - 1000), INTERP_OK);
    assert_int_equal(interp_msg_add_map(b, N), INTERP_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(interp_msg_add_int(b, i), INTERP_OK);
        assert_int_equal(interp_msg_add_double(b, i * 0.5), INTERP_OK);
    }
    interp_msg *m = finish(b);
    assert_int_equal(interp_msg_count(m), 2);
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v, e, k;
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_ARRAY);
    assert_int_equal(v.as.seq.count, N);
    int n = 0;
    while (interp_msg_next(&v.as.seq.items, &e)) {
        assert_int_equal(e.type, INTERP_MSG_INT);
        assert_true(e.as.i == n * 3 - 1000);
        n++;
    }
    assert_int_equal(n, N);
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_MAP);
    assert_int_equal(v.as.seq.count, N);
    n = 0;
    while (interp_msg_next(&v.as.seq.items, &k)) {
        assert_true(interp_msg_next(&v.as.seq.items, &e));
        assert_true(k.as.i == n);
        assert_int_equal(e.type, INTERP_MSG_FLOAT);
        assert_true(e.as.d == n * 0.5);
        n++;
    }
    assert_int_equal(n, N);
    assert_false(interp_msg_next(&it, &v));
    interp_msg_free(m);
}

/* ---- add_msg ----------------------------------------------------------------------------- */

static void msg_c_add_msg(void **state)
{
    (void)state;
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_int(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_cstr(b, "two"), INTERP_OK);
    interp_msg *two = finish(b);

    /* top level: both values count */
    b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_msg(b, two), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, two), INTERP_OK);
    interp_msg *m = finish(b);
    assert_int_equal(interp_msg_count(m), 4);
    assert_text(m, "1, \"two\", 1, \"two\"");
    interp_msg_free(m);

    /* inside an array: the two values are two elements */
    b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_array(b, 3), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, two), INTERP_OK);
    assert_int_equal(interp_msg_add_nil(b), INTERP_OK);
    m = finish(b);
    assert_int_equal(interp_msg_count(m), 1);
    assert_text(m, "{1, \"two\", nil}");
    interp_msg_free(m);

    /* a message that completes an array and goes on at the top level */
    b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_array(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, two), INTERP_OK);
    m = finish(b);
    assert_int_equal(interp_msg_count(m), 2);
    assert_text(m, "{1}, \"two\"");
    interp_msg_free(m);

    /* an empty message appends nothing */
    interp_msg *none = finish(interp_msg_builder_new());
    b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_array(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, none), INTERP_OK);
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_ERR_INVALID);
    interp_msg_free(none);
    interp_msg_free(two);
}

/* Extension values (wire format in msg_impl.h): a back-reference is a distance back to an
 * earlier table or function, so appending a message never rewrites it. */
static void msg_c_add_msg_flags_and_refs(void **state)
{
    (void)state;
    /* {{}, @ref1}: the ref names the most recently begun object, the inner table */
    const unsigned char t[] = {0x92, 0x90, 0xd4, INTERP_MSG_EXT_REF, 0x01};
    interp_msg *refs = raw(t, sizeof t, 1, INTERP__MSG_HAS_REFS);
    const unsigned char f[] = {0xc7, 0x03, INTERP_MSG_EXT_FUNCTION, 'a', 'b', 'c'};
    interp_msg *fn = raw(f, sizeof f, 1, INTERP__MSG_HAS_FUNCTIONS);

    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_msg(b, refs), INTERP_OK);
    interp_msg *m = finish(b);
    assert_int_equal(m->flags, INTERP__MSG_HAS_REFS);
    assert_int_equal(interp_msg_size(m), sizeof t);
    assert_memory_equal(interp_msg_data(m), t, sizeof t);
    assert_text(m, "{{}, @ref1}");
    interp_msg_free(m);

    /* behind other tables: the same bytes; flags of both kinds are kept */
    b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_array(b, 2), INTERP_OK);
    assert_int_equal(interp_msg_add_map(b, 0), INTERP_OK);
    assert_int_equal(interp_msg_add_array(b, 0), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, fn), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, refs), INTERP_OK);
    assert_int_equal(interp_msg_add_array(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, refs), INTERP_OK);
    m = finish(b);
    assert_int_equal(m->flags, INTERP__MSG_HAS_REFS | INTERP__MSG_HAS_FUNCTIONS);
    assert_int_equal(interp_msg_count(m), 4);
    assert_int_equal(interp_msg_size(m), 3 + sizeof f + 2 * sizeof t + 1);
    assert_memory_equal(interp_msg_data(m) + 3 + sizeof f, t, sizeof t);
    assert_text(m, "{{}, {}}, <function>, {{}, @ref1}, {{{}, @ref1}}");
    interp_msg_free(m);

    /* a builder with no reference of its own has no flags */
    b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_array(b, 0), INTERP_OK);
    m = finish(b);
    assert_int_equal(m->flags, 0);
    interp_msg_free(m);
    interp_msg_free(fn);
    interp_msg_free(refs);
}

/* End to end with the Lua codec: a message holding a shared table and a cycle, appended by
 * the builder behind other tables, still decodes to one table reached twice and to a table
 * that holds itself (back-references are distances, msg_impl.h). */
static void msg_c_add_msg_lua_refs(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    assert_int_equal(luaL_dostring(L, "local t = {} local c = {} c.self = c return {t, t}, c"),
                     LUA_OK);
    interp_msg *shared = NULL;
    interp_msg_error err;
    assert_int_equal(interp_msg_from_lua(L, 1, 2, NULL, &shared, &err), INTERP_OK);
    lua_settop(L, 0);

    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_map(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_cstr(b, "k"), INTERP_OK);
    assert_int_equal(interp_msg_add_array(b, 0), INTERP_OK);
    assert_int_equal(interp_msg_add_array(b, 2), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, shared), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, shared), INTERP_OK);
    interp_msg *m = finish(b);
    assert_int_equal(interp_msg_count(m), 4); /* {k = {}}, {{t, t}, c}, {t, t}, c */
    /* the copy is accepted by the validator of untrusted bytes */
    interp_msg *copy = NULL;
    assert_int_equal(interp_msg_from_bytes(interp_msg_data(m), interp_msg_size(m), 0, &copy),
                     INTERP_OK);
    interp_msg_free(copy);

    assert_int_equal(interp_msg_to_lua(L, m, NULL, &err), INTERP_OK);
    assert_int_equal(lua_gettop(L), 4);
    lua_setglobal(L, "c2");
    lua_setglobal(L, "s2");
    lua_setglobal(L, "pair");
    lua_setglobal(L, "first");
    int rc = luaL_dostring(
        L, "assert(type(first.k) == 'table' and next(first.k) == nil, 'first')\n"
           "local s1, c1 = pair[1], pair[2]\n"
           "assert(s1[1] == s1[2] and type(s1[1]) == 'table', 'shared table inside the array')\n"
           "assert(c1.self == c1, 'cycle inside the array')\n"
           "assert(s2[1] == s2[2] and s2[1] ~= s1[1], 'shared table at the top level')\n"
           "assert(c2.self == c2 and c2 ~= c1, 'cycle at the top level')\n"
           "return true");
    if (rc != LUA_OK)
        print_error("%s\n", lua_tostring(L, -1));
    lua_close(L); /* freed before asserting: a failure leaks nothing */
    interp_msg_free(m);
    interp_msg_free(shared);
    assert_int_equal(rc, LUA_OK);
}

/* ---- reader: foreign forms and robustness ---------------------------------------------- */

static void msg_c_reader_forms(void **state)
{
    (void)state;
    const unsigned char bytes[] = {
        0xc4, 0x02,
        'h',  'i', /* bin8: a STR */
        0xc5, 0x00,
        0x01, 'x', /* bin16 */
        0xc6, 0x00,
        0x00, 0x00,
        0x01, 'y', /* bin32 */
        0xd9, 0x01,
        'a', /* str8 */
        0xda, 0x00,
        0x01, 'b', /* str16 */
        0xdb, 0x00,
        0x00, 0x00,
        0x01, 'c', /* str32 */
        0xdc, 0x00,
        0x01, 0x01, /* array16 {1} */
        0xdd, 0x00,
        0x00, 0x00,
        0x01, 0x02, /* array32 {2} */
        0xde, 0x00,
        0x01, 0x01,
        0x02, /* map16 {[1] = 2} */
        0xdf, 0x00,
        0x00, 0x00,
        0x01, 0xa1,
        'k',  0xc0, /* map32 {k = nil} */
        0xd4, INTERP_MSG_EXT_REF,
        0x05, /* fixext1 ref 5 */
        0xd5, INTERP_MSG_EXT_REF,
        0x01, 0x2c, /* fixext2 ref 300 */
        0xd6, INTERP_MSG_EXT_REF,
        0x00, 0x01,
        0x00, 0x00, /* fixext4 ref 65536 */
        0xc8, 0x00,
        0x02, INTERP_MSG_EXT_FUNCTION,
        0x91, 0x01, /* ext16 function */
        0xd6, INTERP_MSG_EXT_FUNCTION,
        1,    2,
        3,    4, /* fixext4 function */
        0xc3,
    };
    interp_msg *m = raw(bytes, sizeof bytes, 16, 0);
    assert_text(m, "\"hi\", \"x\", \"y\", \"a\", \"b\", \"c\", {1}, {2}, {[1] = 2}, {k = nil}, "
                   "@ref5, @ref300, @ref65536, <function>, <function>, true");
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_STR);
    assert_int_equal(v.as.str.len, 2);
    assert_memory_equal(v.as.str.ptr, "hi", 2);
    for (int i = 0; i < 12; i++)
        assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_REF);
    assert_int_equal(v.as.ref, 65536);
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_FUNCTION);
    assert_true(interp_msg_next(&it, &v));
    assert_int_equal(v.type, INTERP_MSG_FUNCTION);
    assert_true(interp_msg_next(&it, &v)); /* the payload was skipped whole */
    assert_int_equal(v.type, INTERP_MSG_BOOL);
    assert_false(interp_msg_next(&it, &v));
    interp_msg_free(m);
}

/* Read every value of every run, depth first, without recursion limits (test data is
 * shallow); returns false as soon as the reader refuses. */
static bool walk(interp_msg_iter it, int depth)
{
    interp_msg_value v;
    while (it.left > 0) {
        if (!interp_msg_next(&it, &v))
            return false;
        if ((v.type == INTERP_MSG_ARRAY || v.type == INTERP_MSG_MAP) &&
            (depth > 50 || !walk(v.as.seq.items, depth + 1)))
            return false;
    }
    return true;
}

static void msg_c_reader_truncated(void **state)
{
    (void)state;
    const unsigned char good[] = {
        0x93,
        0x01,
        0xcd,
        0x01,
        0x00,
        0x82,
        0xa1,
        'a',
        0xcb,
        0x40,
        0x08,
        0,
        0,
        0,
        0,
        0,
        0,
        0xc4,
        0x01,
        0x00,
        0xdc,
        0x00,
        0x02,
        0xc0,
        0xc2,
        0xc7,
        0x01,
        INTERP_MSG_EXT_FUNCTION,
        0x00,
        0xd4,
        INTERP_MSG_EXT_REF,
        0x00,
        0xd3,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
    };
    interp_msg *m = raw(good, sizeof good, 4, 0);
    assert_true(walk(interp_msg_iter_init(m), 0));
    interp_msg_free(m);
    /* every proper prefix, in an allocation of exactly its size: refused, no over-read */
    for (size_t n = 0; n < sizeof good; n++) {
        m = raw(good, n, 4, 0);
        assert_false(walk(interp_msg_iter_init(m), 0));
        char *s = (char *)1;
        assert_int_equal(interp_msg_to_text(m, &s), INTERP_ERR_DECODE);
        assert_null(s);
        interp_msg_free(m);
    }
}

static void msg_c_reader_refuses_garbage(void **state)
{
    (void)state;
    const unsigned char *cases[] = {
        (const unsigned char *)"\xc1",                     /* never used */
        (const unsigned char *)"\xd4\x07\x00",             /* unknown extension type */
        (const unsigned char *)"\xc7\x03\x01\x00\x00\x01", /* ref payload of 3 bytes */
        (const unsigned char *)"\xd7\x01\x00\x00\x00\x01\x00\x00\x00\x00", /* ref 2^32 */
        (const unsigned char *)"\xdd\xff\xff\xff\xff\x01", /* count beyond the bytes */
        (const unsigned char *)"\xdf\x7f\xff\xff\xff\x01", /* map count beyond the bytes */
    };
    size_t lens[] = {1, 3, 6, 10, 6, 6};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        interp_msg *m = raw(cases[i], lens[i], 1, 0);
        interp_msg_iter it = interp_msg_iter_init(m);
        interp_msg_value v;
        assert_false(interp_msg_next(&it, &v));
        interp_msg_free(m);
    }
    /* a count larger than the values present */
    interp_msg *m = raw("\x01", 1, 2, 0);
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    assert_true(interp_msg_next(&it, &v));
    assert_false(interp_msg_next(&it, &v));
    interp_msg_free(m);
}

/* Random mutations of a valid message, read with the C reader and the printer straight
 * (not validated first): they may fail, never read outside the bytes (ASan watches: each
 * message is an allocation of exactly its size). */
static void msg_c_reader_mutations(void **state)
{
    (void)state;
    interp_msg_builder *b = interp_msg_builder_new();
    interp_msg_add_map(b, 3);
    interp_msg_add_cstr(b, "list");
    interp_msg_add_array(b, 4);
    interp_msg_add_int(b, -70000);
    interp_msg_add_double(b, 0.25);
    interp_msg_add_str(b, "bytes\0here", 10);
    interp_msg_add_array(b, 0);
    interp_msg_add_int(b, 300);
    interp_msg_add_map(b, 1);
    interp_msg_add_bool(b, true);
    interp_msg_add_nil(b);
    interp_msg_add_cstr(b, "tail");
    interp_msg_add_int(b, INT64_MIN);
    interp_msg *good = finish(b);
    size_t n = interp_msg_size(good);
    uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64: the same cases every run */
    int readable = 0;
    for (int round = 0; round < 5000; round++) {
        interp_msg *m = raw(interp_msg_data(good), n, 1 + round % 3, 0);
        for (int k = 0; k < 1 + round % 4; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            m->data[x % n] = (char)(x >> 32);
        }
        char *t = NULL;
        int rc = interp_msg_to_text(m, &t);
        assert_true(rc == INTERP_OK || rc == INTERP_ERR_DECODE);
        assert_true(rc == INTERP_OK ? t != NULL : t == NULL);
        free(t);
        if (walk(interp_msg_iter_init(m), 0))
            readable++;
        interp_msg_free(m);
    }
    assert_true(readable > 0 && readable < 5000); /* both outcomes were exercised */
    interp_msg_free(good);
}

/* ---- printer -------------------------------------------------------------------------- */

static void msg_c_print_types(void **state)
{
    (void)state;
    interp_msg_builder *b = interp_msg_builder_new();
    interp_msg_add_int(b, 1);
    interp_msg_add_str(b, "a\0b", 3);
    interp_msg_add_array(b, 3);
    interp_msg_add_int(b, 1);
    interp_msg_add_double(b, 2.5);
    interp_msg_add_bool(b, true);
    interp_msg_add_map(b, 2);
    interp_msg_add_cstr(b, "x");
    interp_msg_add_nil(b);
    interp_msg_add_cstr(b, "k k");
    assert_int_equal(interp_msg_add_map(b, 0), INTERP_OK);
    interp_msg *m = finish(b);
    assert_text(m, "1, \"a\\0b\", {1, 2.5, true}, {x = nil, [\"k k\"] = {}}");
    interp_msg_free(m);

    struct {
        double d;
        const char *want;
    } floats[] = {
        {3.0, "3.0"},
        {-0.0, "-0.0"},
        {0.0, "0.0"},
        {0.1, "0.1"},
        {2.5, "2.5"},
        {1e20, "1e+20"},
        {1.0 / 3, "0.3333333333333333"},
        {-1e-300, "-1e-300"},
        {123456789.0, "123456789.0"},
        {INFINITY, "inf"},
        {-INFINITY, "-inf"},
        {NAN, "nan"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {5e-324, "5e-324"},
        {1e-310, "1e-310"},
        {100.0, "100.0"},
        {1e15, "1000000000000000.0"},
        {1e16, "1e+16"},
        {12345678901234567.0, "1.2345678901234568e+16"},
        {1234.5, "1234.5"},
        {1e-4, "0.0001"},
        {1.5e-5, "1.5e-05"},
        {-123456789.125, "-123456789.125"},
    };
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++) {
        m = interp_msg_double(floats[i].d);
        assert_text(m, floats[i].want);
        interp_msg_free(m);
    }
    struct {
        int64_t i;
        const char *want;
    } ints[] = {
        {3, "3"},
        {-1, "-1"},
        {0, "0"},
        {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        m = interp_msg_int(ints[i].i);
        assert_text(m, ints[i].want);
        interp_msg_free(m);
    }
    m = interp_msg_nil();
    assert_text(m, "nil");
    interp_msg_free(m);
    m = interp_msg_bool(false);
    assert_text(m, "false");
    interp_msg_free(m);
    const unsigned char ext[] = {0xd4, INTERP_MSG_EXT_REF, 0x03, 0xd4, INTERP_MSG_EXT_FUNCTION, 0};
    m = raw(ext, sizeof ext, 2, INTERP__MSG_HAS_REFS | INTERP__MSG_HAS_FUNCTIONS);
    assert_text(m, "@ref3, <function>");
    interp_msg_free(m);
}

static void msg_c_print_strings(void **state)
{
    (void)state;
    struct {
        const char *s;
        size_t len;
        const char *want;
    } cases[] = {
        {"plain text", 10, "\"plain text\""},
        {"q\"b\\", 4, "\"q\\\"b\\\\\""},
        {"\n\t\r\a\b\f\v", 7, "\"\\n\\t\\r\\a\\b\\f\\v\""},
        {"\0001", 2, "\"\\0001\""}, /* a digit follows: three digits */
        {"\001x\177", 3, "\"\\1x\\127\""},
        {"\xff\xfe", 2, "\"\\255\\254\""},          /* not UTF-8 */
        {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},      /* well-formed UTF-8 stays */
        {"\xc3", 1, "\"\\195\""},                   /* truncated UTF-8 */
        {"\xc0\x80", 2, "\"\\192\\128\""},          /* overlong */
        {"\xed\xa0\x80", 3, "\"\\237\\160\\128\""}, /* surrogate */
        {"\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""},
        {"", 0, "\"\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        interp_msg *m = interp_msg_str(cases[i].s, cases[i].len);
        assert_text(m, cases[i].want);
        interp_msg_free(m);
    }
}

static void msg_c_print_keys(void **state)
{
    (void)state;
    interp_msg_builder *b = interp_msg_builder_new();
    interp_msg_add_map(b, 9);
    interp_msg_add_cstr(b, "name");
    interp_msg_add_int(b, 1);
    interp_msg_add_cstr(b, "_x9");
    interp_msg_add_int(b, 2);
    interp_msg_add_cstr(b, "end");
    interp_msg_add_int(b, 3); /* reserved word */
    interp_msg_add_cstr(b, "9a");
    interp_msg_add_int(b, 4);
    interp_msg_add_cstr(b, "");
    interp_msg_add_int(b, 5);
    interp_msg_add_int(b, -7);
    interp_msg_add_cstr(b, "neg");
    interp_msg_add_double(b, 1.5);
    interp_msg_add_bool(b, true);
    interp_msg_add_array(b, 2);
    interp_msg_add_int(b, 1);
    interp_msg_add_int(b, 2);
    interp_msg_add_map(b, 1);
    interp_msg_add_map(b, 1);
    interp_msg_add_cstr(b, "a");
    interp_msg_add_nil(b);
    interp_msg_add_cstr(b, "v");
    interp_msg_add_array(b, 1);
    interp_msg_add_cstr(b, "w");
    interp_msg_add_map(b, 0);
    interp_msg *m = finish(b);
    assert_text(m, "{name = 1, _x9 = 2, [\"end\"] = 3, [\"9a\"] = 4, [\"\"] = 5, "
                   "[-7] = \"neg\", [1.5] = true, [{1, 2}] = {[{a = nil}] = \"v\"}, "
                   "[{\"w\"}] = {}}");
    interp_msg_free(m);
}

/* ---- allocation failures ---------------------------------------------------------------- */

/* A builder sequence that allocates several times (buffer growth, stack growth). */
static int build_under_budget(interp_msg **out)
{
    *out = NULL;
    interp_msg_builder *b = interp_msg_builder_new();
    if (!b)
        return INTERP_ERR_NOMEM;
    int rc = INTERP_OK;
    for (int i = 0; i < 40 && !rc; i++) /* deeper than the first stack allocation */
        rc = interp_msg_add_array(b, 2);
    for (int i = 0; i < 41 && !rc; i++) /* the leaves that complete every array */
        rc = i % 2 ? interp_msg_add_str(b, "0123456789abcdef0123456789abcdef", 32)
                   : interp_msg_add_double(b, i);
    int rc2 = interp_msg_builder_finish(b, out);
    if (rc) /* a failed append is sticky: finish reports it too */
        assert_int_equal(rc2, rc);
    return rc2;
}

static void msg_c_nomem(void **state)
{
    (void)state;
    int failures = 0;
    for (long budget = 0;; budget++) {
        interp_msg *m = (interp_msg *)1;
        alloc_budget = budget;
        int rc = build_under_budget(&m);
        alloc_budget = -1;
        if (rc == INTERP_OK) {
            assert_non_null(m);
            assert_int_equal(interp_msg_count(m), 1);
            interp_msg_free(m);
            break;
        }
        assert_int_equal(rc, INTERP_ERR_NOMEM);
        assert_null(m);
        failures++;
        assert_true(budget < 1000);
    }
    assert_true(failures >= 3); /* builder, buffer, stack at least */

    /* constructors and the printer */
    alloc_budget = 0;
    interp_msg *m = interp_msg_int(1);
    interp_msg *s = interp_msg_cstr("x");
    alloc_budget = -1;
    assert_null(m);
    assert_null(s);
    m = interp_msg_cstr("some text to print");
    for (long budget = 0;; budget++) {
        char *t = (char *)1;
        alloc_budget = budget;
        int rc = interp_msg_to_text(m, &t);
        alloc_budget = -1;
        if (rc == INTERP_OK) {
            assert_string_equal(t, "\"some text to print\"");
            free(t);
            break;
        }
        assert_int_equal(rc, INTERP_ERR_NOMEM);
        assert_null(t);
    }
    interp_msg_free(m);

    /* a failed add_msg leaves nothing half-appended and is sticky */
    interp_msg *big = interp_msg_str(NULL, 0);
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_nil(b), INTERP_OK);
    char chunk[4096] = {0};
    interp_msg *c = interp_msg_str(chunk, sizeof chunk);
    alloc_budget = 0;
    assert_int_equal(interp_msg_add_msg(b, c), INTERP_ERR_NOMEM);
    alloc_budget = -1;
    assert_int_equal(interp_msg_add_msg(b, big), INTERP_ERR_NOMEM);
    assert_int_equal(interp_msg_add_nil(b), INTERP_ERR_NOMEM);
    interp_msg *out = (interp_msg *)1;
    assert_int_equal(interp_msg_builder_finish(b, &out), INTERP_ERR_NOMEM);
    assert_null(out);
    interp_msg_free(c);
    interp_msg_free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(msg_c_constructors),
        cmocka_unit_test(msg_c_int_boundaries),
        cmocka_unit_test(msg_c_int_foreign_forms),
        cmocka_unit_test(msg_c_str_boundaries),
        cmocka_unit_test(msg_c_double_specials),
        cmocka_unit_test(msg_c_builder_nesting),
        cmocka_unit_test(msg_c_builder_empty),
        cmocka_unit_test(msg_c_builder_open_containers),
        cmocka_unit_test(msg_c_builder_bad_args),
        cmocka_unit_test(msg_c_builder_deep),
        cmocka_unit_test(msg_c_big_string),
        cmocka_unit_test(msg_c_big_array),
        cmocka_unit_test(msg_c_add_msg),
        cmocka_unit_test(msg_c_add_msg_flags_and_refs),
        cmocka_unit_test(msg_c_add_msg_lua_refs),
        cmocka_unit_test(msg_c_reader_forms),
        cmocka_unit_test(msg_c_reader_truncated),
        cmocka_unit_test(msg_c_reader_refuses_garbage),
        cmocka_unit_test(msg_c_reader_mutations),
        cmocka_unit_test(msg_c_print_types),
        cmocka_unit_test(msg_c_print_strings),
        cmocka_unit_test(msg_c_print_keys),
        cmocka_unit_test(msg_c_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
