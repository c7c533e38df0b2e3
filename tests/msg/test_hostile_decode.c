/* test_hostile_decode.c - a hostile tenant against the decoder (issue 12, item 1): tables whose
 * integer or float keys all share one main position in Lua's hash at the size the receiver
 * would pick. Before the planner, 2^16 such keys took 4.5 s to decode (2^18: 76 s), in the
 * host's f:result() or in another tenant's worker. Now each decodes in linear time with every
 * key kept, or (keys colliding at every size the planner tries) is refused with a reason.
 * Bounds: 1 s for what takes a few milliseconds here. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "interp_msg_lua.h"
#include "interp_pool.h"
#include "msg_plan.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A map of n pairs key -> true, keys from key(i), as a message. */
static interp_msg *key_map(uint32_t n, void (*key)(interp_msg_builder *, uint32_t, void *),
                           void *ud)
{
    interp_msg_builder *b = interp_msg_builder_new();
    assert_non_null(b);
    assert_int_equal(interp_msg_add_map(b, n), INTERP_OK);
    for (uint32_t i = 0; i < n; i++) {
        key(b, i, ud);
        assert_int_equal(interp_msg_add_bool(b, true), INTERP_OK);
    }
    interp_msg *m;
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_OK);
    return m;
}

/* keys j * (2^p - 1): all 0 modulo 2^p - 1, the natural size's divisor */
static void int_key(interp_msg_builder *b, uint32_t i, void *ud)
{
    int64_t m = *(int64_t *)ud;
    assert_int_equal(interp_msg_add_int(b, (int64_t)(i + 1) * m), INTERP_OK);
}

/* floats whose l_hashfloat (exponent + 2^31 x mantissa) is 0 modulo m */
typedef struct {
    int64_t m;
    double *keys;
} float_keys;

static void float_key(interp_msg_builder *b, uint32_t i, void *ud)
{
    float_keys *fk = ud;
    assert_int_equal(interp_msg_add_double(b, fk->keys[i]), INTERP_OK);
}

static uint32_t make_float_keys(int64_t m, uint32_t want, double *out)
{
    uint32_t n = 0;
    for (int e = 1; e < 30 && n < want; e++) {
        int64_t ni = (1LL << 30);
        ni += (m - (e + ni) % m) % m; /* e + ni == 0 (mod m) */
        for (; ni < (1LL << 31) && n < want; ni += m) {
            double x = ldexp((double)ni / 2147483648.0, e);
            if (x != floor(x)) /* integral floats become integer keys */
                out[n++] = x;
        }
    }
    return n;
}

/* Decode m into a fresh state; returns the seconds taken; *keys: the table's key count. */
static double decode_time(const interp_msg *m, int *rc, long *keys, char *why, size_t whylen)
{
    lua_State *L = luaL_newstate();
    interp_msg_error err;
    double t0 = now();
    *rc = interp_msg_to_lua(L, m, NULL, &err);
    double t = now() - t0;
    *keys = 0;
    if (*rc == INTERP_OK) {
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            lua_pop(L, 1);
            (*keys)++;
        }
    }
    snprintf(why, whylen, "%s", err.text);
    lua_close(L);
    return t;
}

static void decode_model_known(void **state)
{
    (void)state;
    /* this machine's Lua (5.4.4+) is predicted; blind mode would only be a fallback */
    interp__hash_model model = interp__plan_model();
    assert_int_equal(model,
                     LUA_VERSION_RELEASE_NUM >= 50404 ? INTERP__HASH_MOD : INTERP__HASH_POW2);
}

static void decode_colliding_integers(void **state)
{
    (void)state;
    char why[256];
    for (int p = 12; p <= 16; p += 2) {
        int64_t m = (1LL << p) - 1;
        interp_msg *msg = key_map(1u << p, int_key, &m);
        int rc;
        long keys;
        double t = decode_time(msg, &rc, &keys, why, sizeof why);
        printf("2^%d colliding integer keys (%zu bytes): %.1f ms\n", p, interp_msg_size(msg),
               t * 1e3);
        assert_int_equal(rc, INTERP_OK);
        assert_int_equal(keys, 1L << p); /* nothing lost */
        assert_true(t < 1.0);            /* was 4.5 s at 2^16 */
        interp_msg_free(msg);
    }
}

static void decode_colliding_floats(void **state)
{
    (void)state;
    enum { P = 16, N = 1 << P };
    double *keys = malloc(N * sizeof *keys);
    assert_non_null(keys);
    float_keys fk = {.m = (1LL << P) - 1, .keys = keys};
    assert_int_equal(make_float_keys(fk.m, N, keys), N);
    interp_msg *msg = key_map(N, float_key, &fk);
    char why[256];
    int rc;
    long n;
    double t = decode_time(msg, &rc, &n, why, sizeof why);
    printf("2^%d colliding float keys (%zu bytes): %.1f ms\n", P, interp_msg_size(msg), t * 1e3);
    assert_int_equal(rc, INTERP_OK);
    assert_int_equal(n, N);
    assert_true(t < 1.0);
    interp_msg_free(msg);
    free(keys);
}

/* keys colliding at 2^10, 2^11 and 2^12 nodes at once: refused, quickly, with the reason */
static void decode_colliding_everywhere_refused(void **state)
{
    (void)state;
    int64_t m = 1023LL * 2047 * 4095 / 3; /* lcm(2^10 - 1, 2^11 - 1, 2^12 - 1) */
    interp_msg *msg = key_map(1024, int_key, &m);
    char why[256];
    int rc;
    long n;
    double t = decode_time(msg, &rc, &n, why, sizeof why);
    assert_int_equal(rc, INTERP_ERR_DECODE);
    assert_non_null(strstr(why, "[1]: table of 1024 keys refused: its number keys collide"));
    assert_true(t < 1.0);
    interp_msg_free(msg);
    /* the same keys inside a small map decode (31 links at most) */
    msg = key_map(INTERP__PLAN_MIN - 1, int_key, &m);
    decode_time(msg, &rc, &n, why, sizeof why);
    assert_int_equal(rc, INTERP_OK);
    assert_int_equal(n, INTERP__PLAN_MIN - 1);
    interp_msg_free(msg);
}

/* Through a sandboxed pool: the worker decodes the colliding table as an argument and returns
 * it, within the deadline; a second tenant's task runs right after. */
static void decode_colliding_in_worker(void **state)
{
    (void)state;
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.sandbox = INTERP_SANDBOX_SAFE;
    o.memory_limit = 32 << 20;
    /* The deadline is not what is tested (a sanitizer build on a loaded machine may take a
     * second): a quadratic decode of these keys takes seconds even in a release build, and
     * the fuzz target's step counter checks linearity exactly. */
    o.task_timeout = 5.0;
    interp_pool *pool;
    assert_int_equal(interp_pool_create(&pool, &o, NULL), INTERP_OK);
    int64_t m = (1LL << 16) - 1;
    interp_msg *msg = key_map(1u << 16, int_key, &m);
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE,
                            .text = "local t = ... local n = 0 for _ in pairs(t) do n = n + 1 end "
                                    "return n, t"},
                     .args = msg};
    interp_future *f;
    double t0 = now();
    assert_int_equal(interp_pool_submit_task(pool, &t, INTERP_FOREVER, &f), INTERP_OK);
    const interp_msg *r;
    assert_int_equal(interp_future_result(f, 30.0, &r), INTERP_OK);
    double took = now() - t0;
    assert_true(took < 5.0 + 1.0 + 1.0); /* deadline + stuck_grace + 1 s */
    int64_t n;
    assert_int_equal(interp_msg_unpack(r, "l ?", &n), INTERP_OK);
    assert_int_equal(n, 1 << 16);
    /* the host decodes the result too, in linear time */
    lua_State *L = luaL_newstate();
    interp_msg_error err;
    t0 = now();
    assert_int_equal(interp_msg_to_lua(L, r, NULL, &err), INTERP_OK);
    assert_true(now() - t0 < 5.0); /* seconds when quadratic; milliseconds here */
    lua_close(L);
    interp_future_release(f);
    interp_task next = {.fn = {.kind = INTERP_FN_SOURCE, .text = "return 42"}};
    assert_int_equal(interp_pool_submit_task(pool, &next, INTERP_FOREVER, &f), INTERP_OK);
    assert_int_equal(interp_future_result(f, 30.0, NULL), INTERP_OK);
    interp_future_release(f);
    interp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decode_model_known),
        cmocka_unit_test(decode_colliding_integers),
        cmocka_unit_test(decode_colliding_floats),
        cmocka_unit_test(decode_colliding_everywhere_refused),
        cmocka_unit_test(decode_colliding_in_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
