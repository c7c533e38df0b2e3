/* test_alloc_pack.c - the pack of a state's allocator (interp/alloc.c): the objects made while
 * a state is created sit in one block; reallocs and frees keep their bytes and the count of
 * the state's heap, whether the object is in the pack, leaves it or was never in it; after
 * the seal new objects are malloc'd; the next pack is as large as the last one needed. */
#include "interp_test_util.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>

static bool in_pack(const interp__alloc *a, const void *p)
{
    return (uintptr_t)p - (uintptr_t)a->pack < a->pack_cap;
}

static size_t used_of(const interp__alloc *a)
{
    return atomic_load_explicit(&a->in_use, memory_order_relaxed);
}

static void *alloc(interp__alloc *a, void *p, size_t osize, size_t nsize)
{
    return interp__alloc_fn(a, p, osize, nsize);
}

static void fill(void *p, size_t n, int c) { memset(p, c, n); }

static bool holds(const void *p, size_t n, int c)
{
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != (unsigned char)c)
            return false;
    return true;
}

static void objects_move_in_and_out_of_the_pack_with_their_bytes(void **st)
{
    (void)st;
    atomic_size_t hint = 4096;
    interp__alloc a = {0};
    interp__alloc_pack_open(&a, &hint);
    assert_non_null(a.pack);
    assert_int_equal(a.pack_cap, 4096);

    void *x = alloc(&a, NULL, LUA_TTABLE, 40); /* in the pack, 8-aligned */
    void *y = alloc(&a, NULL, LUA_TSTRING, 100);
    assert_true(in_pack(&a, x) && in_pack(&a, y));
    assert_int_equal((uintptr_t)x % 8, 0);
    assert_int_equal((uintptr_t)y % 8, 0);
    void *u = alloc(&a, NULL, LUA_TUSERDATA, 64); /* the host's payload: malloc's alignment */
    assert_false(in_pack(&a, u));
    fill(x, 40, 1);
    fill(y, 100, 2);
    assert_int_equal(used_of(&a), 204);

    /* the last object grows in place; another one moves, with its bytes */
    assert_ptr_equal(alloc(&a, y, 100, 200), y);
    assert_true(holds(y, 100, 2));
    void *x2 = alloc(&a, x, 40, 80);
    assert_true(in_pack(&a, x2) && x2 != x);
    assert_true(holds(x2, 40, 1));
    /* the hole x left is taken by the next object of its size */
    assert_ptr_equal(alloc(&a, NULL, LUA_TTABLE, 40), x);
    alloc(&a, x, 40, 0);

    /* too large for the pack: malloc'd, and a pack object grown past it leaves the pack */
    void *big = alloc(&a, NULL, LUA_TSTRING, 8000);
    assert_false(in_pack(&a, big));
    fill(x2, 80, 3);
    void *x3 = alloc(&a, x2, 80, 6000);
    assert_false(in_pack(&a, x3));
    assert_true(holds(x3, 80, 3));

    /* full: the rest is malloc'd, and counted for the next pack */
    void *many[64];
    for (int i = 0; i < 64; i++)
        many[i] = alloc(&a, NULL, LUA_TTABLE, 96);
    assert_true(in_pack(&a, many[0]));
    assert_false(in_pack(&a, many[63]));
    interp__alloc_pack_seal(&a, &hint);
    assert_true(atomic_load(&hint) > 4096);

    /* sealed: new objects are malloc'd; the pack's still shrink, grow and free */
    void *z = alloc(&a, NULL, LUA_TTABLE, 40);
    assert_false(in_pack(&a, z));
    assert_ptr_equal(alloc(&a, y, 200, 50), y); /* a shrink stays where it is */
    assert_true(holds(y, 50, 2));
    void *y2 = alloc(&a, y, 50, 300);
    assert_false(in_pack(&a, y2));
    assert_true(holds(y2, 50, 2));

    for (int i = 0; i < 64; i++)
        alloc(&a, many[i], 96, 0);
    alloc(&a, z, 40, 0);
    alloc(&a, y2, 300, 0);
    alloc(&a, x3, 6000, 0);
    alloc(&a, big, 8000, 0);
    alloc(&a, u, 64, 0);
    assert_int_equal(used_of(&a), 0);
    interp__alloc_pack_free(&a);
    assert_null(a.pack);
}

/* A whole Lua state through a pack: libraries in it, then a workload after the seal that
 * frees, resizes and replaces the creation's objects (a sanitizer build checks the bytes). */
static void a_lua_state_lives_and_dies_across_its_pack(void **st)
{
    (void)st;
    atomic_size_t hint = 0;
    for (int round = 0; round < 2; round++) {
        interp__alloc a = {0};
        interp__alloc_pack_open(&a, &hint);
        lua_State *L = lua_newstate(interp__alloc_fn, &a);
        assert_non_null(L);
        assert_true(in_pack(&a, L));
        luaL_openlibs(L);
        size_t made = a.pack_used;
        assert_true(made > 10000);
        interp__alloc_pack_seal(&a, &hint);
        assert_true(atomic_load(&hint) >= made);
        static const char *const work =
            "string, table = nil, nil collectgarbage() "
            "local t = {} for i = 1, 2000 do t['k' .. i] = {i} _G['g' .. i] = i end "
            "for i = 1, 2000 do _G['g' .. i] = nil end collectgarbage() "
            "return #t + select('#', math.floor(1.5), os.time())";
        assert_int_equal(luaL_dostring(L, work), LUA_OK);
        assert_true(lua_gc(L, LUA_GCCOUNT) * 1024 + lua_gc(L, LUA_GCCOUNTB) == (int)used_of(&a));
        lua_close(L);
        assert_int_equal(used_of(&a), 0);
        interp__alloc_pack_free(&a);
    }
}

/* The initializer's objects are malloc'd: its garbage leaves no holes in the pack. A pool's
 * next state gets a pack of what the last one needed. */
static void the_initializer_stays_out_of_the_pack(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE,
            "local t = {} for i = 1, 20000 do t[i] = {i, tostring(i)} end keep = {1, 2, 3}");
    const interp__alloc *a = &f.s->alloc;
    assert_non_null(a->pack);
    assert_true(a->pack_used > 10000 && a->pack_used <= 32768); /* the libraries, not t */
    lua_State *L = interp__state_lua(f.s);
    lua_getglobal(L, "keep"); /* made by the initializer: malloc'd */
    assert_false(in_pack(a, lua_topointer(L, -1)));
    lua_pop(L, 1);
    lua_getglobal(L, "string"); /* made by the libraries: packed */
    assert_true(in_pack(a, lua_topointer(L, -1)));
    lua_pop(L, 1);
    size_t need = atomic_load(&f.sh->pack_hint);
    assert_true(need >= a->pack_used && need <= 32768);
    interp_state *second;
    char *err = NULL;
    assert_int_equal(interp__state_create(f.sh, 8, &second, &err), INTERP_OK);
    assert_int_equal(second->alloc.pack_cap, need);
    interp__state_destroy(second);
    fx_expect(&f, "return #keep", "3");
    fx_close(&f);
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* Under ASan the pack's free bytes are poisoned as malloc's would be: its unused end, a hole
 * (past the hole's own header), the tail a shrink gave up, and an object freed after the seal,
 * so that a use after free of a creation object is reported. */
static void its_free_bytes_are_poisoned_under_asan(void **st)
{
    (void)st;
    atomic_size_t hint = 4096;
    interp__alloc a = {0};
    interp__alloc_pack_open(&a, &hint);
    char *x = alloc(&a, NULL, LUA_TTABLE, 64);
    char *y = alloc(&a, NULL, LUA_TSTRING, 64);
    char *z = alloc(&a, NULL, LUA_TSTRING, 64);
    assert_false(__asan_region_is_poisoned(x, 64) || __asan_region_is_poisoned(y, 64));
    assert_true(__asan_address_is_poisoned(z + 64)); /* the unused end */
    alloc(&a, x, 64, 0);                             /* a hole */
    assert_true(__asan_address_is_poisoned(x + 32));
    assert_ptr_equal(alloc(&a, y, 64, 8), y); /* a shrink in the middle */
    assert_true(__asan_address_is_poisoned(y + 16));
    assert_false(__asan_region_is_poisoned(y, 8));
    char *x2 = alloc(&a, NULL, LUA_TTABLE, 64); /* the hole again, usable */
    assert_ptr_equal(x2, x);
    assert_false(__asan_region_is_poisoned(x2, 64));
    assert_ptr_equal(alloc(&a, z, 64, 128), z); /* the last grows in place */
    assert_false(__asan_region_is_poisoned(z, 128));
    interp__alloc_pack_seal(&a, &hint);
    alloc(&a, z, 128, 0); /* sealed: a freed object stays poisoned */
    assert_true(__asan_address_is_poisoned(z) && __asan_address_is_poisoned(z + 120));
    alloc(&a, x2, 64, 0);
    alloc(&a, y, 8, 0);
    assert_int_equal(used_of(&a), 0);
    interp__alloc_pack_free(&a);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(objects_move_in_and_out_of_the_pack_with_their_bytes),
        cmocka_unit_test(a_lua_state_lives_and_dies_across_its_pack),
        cmocka_unit_test(the_initializer_stays_out_of_the_pack),
#if defined(__SANITIZE_ADDRESS__)
        cmocka_unit_test(its_free_bytes_are_poisoned_under_asan),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
