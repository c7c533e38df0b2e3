/* test_msg_slab.c - the fast paths of small messages. Slabs (msg_impl.h): many small messages
 * carved from one block; a member reads, copies and frees like any message, from any thread and
 * in any order; the block goes back once its producer let go and its last member is freed
 * (ASan checks both ways). interp__msg_push_small: small argument lists without a decoder. */
#include <pthread.h>
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

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    return L;
}

/* Push the results of `return <expr>`; returns how many. */
static int eval(lua_State *L, const char *expr)
{
    char src[512];
    snprintf(src, sizeof src, "return %s", expr);
    int top = lua_gettop(L);
    if (luaL_loadstring(L, src) != LUA_OK || lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(L, -1));
    return lua_gettop(L) - top;
}

/* Small values land in the slab with exactly the bytes the ordinary encoder writes; others
 * (tables, long strings, too many values) come out as ordinary messages. Members decode back
 * to the same values. */
static void msg_slab_members_match_plain_messages(void **st)
{
    (void)st;
    static const struct {
        const char *expr;
        bool small;
    } cases[] = {
        {"42", true},
        {"-7", true},
        {"2^40 // 1", true},
        {"-2^62 // 1", true},
        {"1.5", true},
        {"0/0 ~= 0/0", true},
        {"nil", true},
        {"'text'", true},
        {"1, 'a', nil, false, 2.25", true},
        {"", true},
        {"('x'):rep(300)", false},
        {"{1, 2}", false},
        {"1, 2, 3, 4, 5, 6, 7, 8, 9", false},
    };
    lua_State *L = new_state();
    interp__slab *slab = NULL;
    interp_msg *members[sizeof cases / sizeof *cases];
    size_t n = sizeof cases / sizeof *cases;
    for (size_t i = 0; i < n; i++) {
        int k = eval(L, cases[i].expr);
        int first = lua_gettop(L) - k + 1;
        interp_msg *plain, *m;
        interp_msg_error e;
        assert_int_equal(interp_msg_from_lua(L, first, k, NULL, &plain, &e), INTERP_OK);
        assert_int_equal(interp__msg_from_lua_slab(L, first, k, NULL, NULL, &slab, 4096, &m, &e),
                         INTERP_OK);
        assert_int_equal(lua_gettop(L), first + k - 1); /* the values stay */
        assert_int_equal((m->flags & INTERP__MSG_SLAB) != 0, cases[i].small);
        assert_int_equal(interp_msg_count(m), interp_msg_count(plain));
        assert_int_equal(interp_msg_size(m), interp_msg_size(plain));
        assert_memory_equal(interp_msg_data(m), interp_msg_data(plain), interp_msg_size(m));
        /* decodes to equal values */
        assert_int_equal(interp_msg_to_lua(L, m, NULL, &e), INTERP_OK);
        for (int j = 0; j < k; j++) {
            int a = first + j, b = first + k + j;
            if (lua_type(L, a) == LUA_TTABLE)
                assert_int_equal(lua_rawlen(L, a), lua_rawlen(L, b));
            else if (lua_type(L, a) == LUA_TNUMBER)
                assert_int_equal(lua_isinteger(L, a), lua_isinteger(L, b));
            if (lua_type(L, a) != LUA_TTABLE &&
                !(lua_type(L, a) == LUA_TNUMBER && lua_tonumber(L, a) != lua_tonumber(L, a)))
                assert_true(lua_rawequal(L, a, b));
        }
        lua_settop(L, first - 1);
        interp_msg_free(plain);
        members[i] = m;
    }
    interp__slab_release(slab);
    for (size_t i = 0; i < n; i++)
        interp_msg_free(members[n - 1 - i]);
    lua_close(L);
}

/* A copy or a concatenation of a member is an ordinary message. */
static void msg_slab_copies_are_ordinary(void **st)
{
    (void)st;
    lua_State *L = new_state();
    interp__slab *slab = NULL;
    eval(L, "7, 'seven'");
    interp_msg *m, *dup, *cat;
    assert_int_equal(interp__msg_from_lua_slab(L, 1, 2, NULL, NULL, &slab, 256, &m, NULL),
                     INTERP_OK);
    assert_true(m->flags & INTERP__MSG_SLAB);
    interp__slab_release(slab); /* the member keeps the slab */
    dup = interp_msg_dup(m);
    assert_non_null(dup);
    assert_int_equal(dup->flags & INTERP__MSG_SLAB, 0);
    interp_msg_builder *b = interp_msg_builder_new();
    assert_int_equal(interp_msg_add_int(b, 1), INTERP_OK);
    assert_int_equal(interp_msg_add_msg(b, m), INTERP_OK);
    assert_int_equal(interp_msg_builder_finish(b, &cat), INTERP_OK); /* frees b */
    assert_int_equal(cat->flags & INTERP__MSG_SLAB, 0);
    assert_int_equal(interp_msg_count(cat), 3);
    interp_msg_free(m); /* the slab goes here */
    assert_int_equal(interp_msg_size(dup), 7);
    interp_msg_free(dup);
    interp_msg_free(cat);
    interp_msg_free(NULL);
    interp__slab_release(NULL);
    lua_close(L);
}

/* Enough members for several slabs, freed before and after the producer lets go, in an order
 * that is neither the making order nor its reverse. */
static void msg_slab_memory_returns_after_the_last_member(void **st)
{
    (void)st;
    enum { N = 20000 };
    interp_msg **ms = malloc(N * sizeof *ms);
    interp__slab *slab = NULL, *first_slab = NULL;
    size_t slabs = 0;
    for (size_t i = 0; i < N; i++) {
        size_t size = i % 40; /* various sizes, 0 included */
        interp_msg *m = interp__slab_reserve(NULL, &slab, 4000, size);
        assert_non_null(m);
        memset(m->data, (int)(i & 0xff), size);
        interp__slab_commit(slab, m, size, 0, 0);
        if (slab != first_slab) {
            first_slab = slab;
            slabs++;
        }
        ms[i] = m;
    }
    assert_true(slabs > 10); /* hint 4000 bytes: many slabs */
    for (size_t i = 0; i < N; i += 3)
        interp_msg_free(ms[i]);
    interp__slab_release(slab);
    for (size_t i = 1; i < N; i += 3) {
        assert_int_equal(interp_msg_size(ms[i]), i % 40);
        if (i % 40)
            assert_int_equal((unsigned char)ms[i]->data[i % 40 - 1], i & 0xff);
        interp_msg_free(ms[i]);
    }
    for (size_t i = N; i-- > 0;)
        if (i % 3 == 2)
            interp_msg_free(ms[i]);
    free(ms);
}

/* Members freed on other threads while the producer goes on filling the same slab (TSan). */
typedef struct freer {
    interp_msg **ms;
    size_t from, to;
    pthread_barrier_t *go;
} freer;

static void *free_range(void *p)
{
    freer *f = p;
    pthread_barrier_wait(f->go);
    for (size_t i = f->from; i < f->to; i++)
        interp_msg_free(f->ms[i]);
    return NULL;
}

static void msg_slab_members_freed_on_other_threads(void **st)
{
    (void)st;
    enum { N = 4000, MORE = 4000 };
    interp_msg **ms = malloc((N + MORE) * sizeof *ms);
    interp__slab *slab = NULL;
    interp__slab_cache *cache =
        interp__slab_cache_new(1 << 20, 1 << 20); /* emptied slabs come back */
    assert_non_null(cache);
    for (size_t i = 0; i < N; i++) {
        interp_msg *m = interp__slab_reserve(cache, &slab, 1 << 20, 8);
        assert_non_null(m);
        memcpy(m->data, &i, sizeof i);
        interp__slab_commit(slab, m, sizeof i, 1, 0);
        ms[i] = m;
    }
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 3);
    freer f[2] = {{ms, 0, N / 2, &go}, {ms, N / 2, N, &go}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        pthread_create(&th[k], NULL, free_range, &f[k]);
    pthread_barrier_wait(&go); /* the freers start; production goes on in the same slab */
    for (size_t i = N; i < N + MORE; i++) {
        interp_msg *m = interp__slab_reserve(cache, &slab, 1 << 20, 8);
        assert_non_null(m);
        memcpy(m->data, &i, sizeof i);
        interp__slab_commit(slab, m, sizeof i, 1, 0);
        ms[i] = m;
    }
    interp__slab_release(slab);
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    pthread_barrier_destroy(&go);
    interp__slab_cache_release(cache); /* the members left are freed after it */
    for (size_t i = N; i < N + MORE; i++) {
        size_t v;
        memcpy(&v, ms[i]->data, sizeof v);
        assert_int_equal(v, i);
        interp_msg_free(ms[i]);
    }
    free(ms);
}

/* A producer's cache: slabs whose members have all been freed are used again for its next
 * members; the cache closes with members still alive, which are freed later. */
static void msg_slab_cache_reuses_emptied_slabs(void **st)
{
    (void)st;
    enum { N = 6000, MAXSLABS = 64 };
    interp__slab_cache *cache = interp__slab_cache_new(4 << 20, 4 << 20);
    assert_non_null(cache);
    interp_msg **ms = malloc(N * sizeof *ms);
    interp__slab *slab = NULL, *seen[MAXSLABS];
    size_t nseen = 0;
    for (size_t i = 0; i < N; i++) {
        ms[i] = interp__slab_reserve(cache, &slab, (size_t)1 << 20, 8);
        assert_non_null(ms[i]);
        interp__slab_commit(slab, ms[i], 8, 1, 0);
        if (!nseen || seen[nseen - 1] != slab) {
            assert_true(nseen < MAXSLABS);
            seen[nseen++] = slab;
        }
    }
    assert_true(nseen >= 3);
    interp__slab_release(slab);
    slab = NULL;
    for (size_t i = 0; i < N; i++)
        interp_msg_free(ms[i]);
    /* every slab was emptied and kept: the next members land in them again */
    size_t reused = 0;
    for (size_t i = 0; i < N; i++) {
        ms[i] = interp__slab_reserve(cache, &slab, (size_t)1 << 20, 8);
        assert_non_null(ms[i]);
        interp__slab_commit(slab, ms[i], 8, 1, 0);
        if (i == 0 || (i > 0 && (char *)ms[i] - (char *)ms[i - 1] != 32)) {
            for (size_t k = 0; k < nseen; k++)
                reused += seen[k] == slab;
        }
    }
    assert_true(reused >= nseen - 1);
    interp__slab_release(slab);
    interp__slab_cache_release(cache);
    for (size_t i = 0; i < N; i++)
        interp_msg_free(ms[i]);
    free(ms);
}

/* interp__msg_push_small: small scalar messages are pushed as they are; anything else, or a
 * message over the size limit, is left to interp_msg_push_lua (nothing pushed). */
static void msg_small_push_fast_path(void **st)
{
    (void)st;
    lua_State *L = new_state();
    static const char *const small[] = {"0",     "127",           "200",  "70000", "2^40 // 1",
                                        "-1",    "-300",          "1.25", "nil",   "true",
                                        "'abc'", "1, 'x', false", ""};
    for (size_t i = 0; i < sizeof small / sizeof *small; i++) {
        int k = eval(L, small[i]);
        interp_msg *m;
        assert_int_equal(interp_msg_from_lua(L, lua_gettop(L) - k + 1, k, NULL, &m, NULL),
                         INTERP_OK);
        int base = lua_gettop(L);
        assert_int_equal(interp__msg_push_small(L, m, 0), k);
        assert_int_equal(lua_gettop(L), base + k);
        for (int j = 1; j <= k; j++) {
            assert_int_equal(lua_type(L, base - k + j), lua_type(L, base + j));
            assert_true(lua_rawequal(L, base - k + j, base + j));
            if (lua_type(L, base + j) == LUA_TNUMBER)
                assert_int_equal(lua_isinteger(L, base - k + j), lua_isinteger(L, base + j));
        }
        if (interp_msg_size(m) > 1) /* one byte over the limit (0 would mean the default) */
            assert_int_equal(interp__msg_push_small(L, m, interp_msg_size(m) - 1), -1);
        assert_int_equal(lua_gettop(L), base + k);
        lua_settop(L, 0);
        interp_msg_free(m);
    }
    static const char *const other[] = {"{}", "1, {2}", "1, 2, 3, 4, 5, 6, 7, 8, 9"};
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        int k = eval(L, other[i]);
        interp_msg *m;
        assert_int_equal(interp_msg_from_lua(L, 1, k, NULL, &m, NULL), INTERP_OK);
        assert_int_equal(interp__msg_push_small(L, m, 0), -1);
        assert_int_equal(lua_gettop(L), k);
        lua_settop(L, 0);
        interp_msg_free(m);
    }
    lua_close(L);
}

/* Make n members of 8 bytes in full-size slabs; the producer lets go of its last slab. */
static void produce(interp__slab_cache *cache, interp_msg **ms, size_t n)
{
    interp__slab *slab = NULL;
    for (size_t i = 0; i < n; i++) {
        ms[i] = interp__slab_reserve(cache, &slab, (size_t)1 << 20, 8);
        assert_non_null(ms[i]);
        memcpy(ms[i]->data, &i, sizeof i);
        interp__slab_commit(slab, ms[i], 8, 1, 0);
    }
    interp__slab_release(slab);
}

static void free_all(interp_msg **ms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t v;
        memcpy(&v, ms[i]->data, sizeof v);
        assert_int_equal(v, i);
        interp_msg_free(ms[i]);
    }
}

/* interp__msg_free_many: members of several slabs, interleaved with plain messages and NULLs,
 * all go (one reference drop per run of one slab); every slab comes back to the cache. */
static void msg_free_many_drops_runs(void **st)
{
    (void)st;
    enum { N = 6000 };
    interp__slab_cache *cache = interp__slab_cache_new(4 << 20, 4 << 20);
    assert_non_null(cache);
    interp_msg **ms = malloc((N + 3) * sizeof *ms);
    assert_non_null(ms);
    produce(cache, ms, N);
    ms[N] = interp_msg_int(7); /* plain ones, and a hole */
    ms[N + 1] = NULL;
    ms[N + 2] = interp_msg_str("x", 1);
    interp_msg *tmp = ms[10]; /* out of order: a run is broken and resumed */
    ms[10] = ms[N];
    ms[N] = tmp;
    interp__msg_free_many(ms, N + 3);
    for (size_t i = 0; i < N + 3; i++)
        assert_null(ms[i]);
    assert_true(interp__slab_cache_kept(cache) >= N * 32 / INTERP__SLAB_MAX);
    interp__slab_cache_release(cache);
    free(ms);
}

/* A busy producer's cache keeps up to max_bytes of emptied slabs; once idle, up to idle_bytes
 * (the excess is freed at once, and slabs emptied later are freed beyond it); its next
 * full-size slab makes it busy again. */
static void msg_slab_cache_keeps_little_while_idle(void **st)
{
    (void)st;
    enum { N = 12000 }; /* 32 bytes a member: more than 5 full slabs */
    size_t one = sizeof(interp__slab) + INTERP__SLAB_MAX;
    interp__slab_cache *cache = interp__slab_cache_new(16 * one, 2 * one);
    assert_non_null(cache);
    interp_msg **ms = malloc(N * sizeof *ms);
    produce(cache, ms, N);
    free_all(ms, N);
    size_t busy = interp__slab_cache_kept(cache);
    assert_true(busy >= 5);
    assert_int_equal(interp__slab_cache_idle(cache), busy - 2); /* the excess goes now */
    assert_int_equal(interp__slab_cache_kept(cache), 2);
    produce(cache, ms, N); /* busy again: takes the 2 kept, makes the rest */
    assert_int_equal(interp__slab_cache_kept(cache), 0);
    free_all(ms, N);
    assert_int_equal(interp__slab_cache_kept(cache), busy);
    produce(cache, ms, N);
    /* idle while the members live: nothing to free now, they come back later */
    assert_int_equal(interp__slab_cache_idle(cache), 0);
    free_all(ms, N);
    assert_int_equal(interp__slab_cache_kept(cache), 2);
    interp__slab_cache_release(cache);
    assert_int_equal(interp__slab_cache_kept(NULL), 0);
    assert_int_equal(interp__slab_cache_idle(NULL), 0);
    free(ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(msg_slab_members_match_plain_messages),
        cmocka_unit_test(msg_slab_copies_are_ordinary),
        cmocka_unit_test(msg_slab_memory_returns_after_the_last_member),
        cmocka_unit_test(msg_slab_members_freed_on_other_threads),
        cmocka_unit_test(msg_slab_cache_reuses_emptied_slabs),
        cmocka_unit_test(msg_slab_cache_keeps_little_while_idle),
        cmocka_unit_test(msg_small_push_fast_path),
        cmocka_unit_test(msg_free_many_drops_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
