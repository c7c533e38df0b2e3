/* test_lib_diff.c - the interruptible library functions (interp/lib_string.c, lib_sort.c) give
 * the same results and errors as Lua's own: tests/data/lib_diff_cases.lua (some 27,000 cases of
 * find/match/gmatch/gsub/rep/sort) runs in a plain Lua state and in worker states of both
 * profiles, and the texts it returns must be equal line by line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

#include "interp.h"
#include "interp_impl.h"
#include "interp_one_step.h"

static char *cases_path(void)
{
    const char *dir = getenv("INTERP_TEST_DATA");
    assert_non_null(dir);
    size_t n = strlen(dir) + 32;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/lib_diff_cases.lua", dir);
    return p;
}

/* Run the cases in L; returns a malloc'd copy of the text. */
static char *run_cases(lua_State *L)
{
    char *path = cases_path();
    if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
        fail_msg("cases: %s", lua_tostring(L, -1));
    free(path);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    assert_non_null(s);
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, s, len + 1);
    lua_pop(L, 1);
    return copy;
}

static void compare(const char *want, const char *got, const char *profile)
{
    size_t lines = 0;
    for (;;) {
        const char *we = strchr(want, '\n'), *ge = strchr(got, '\n');
        size_t wl = we ? (size_t)(we - want) : strlen(want);
        size_t gl = ge ? (size_t)(ge - got) : strlen(got);
        if (wl != gl || memcmp(want, got, wl) != 0)
            fail_msg("%s profile, case %zu differs:\n lua:    %.*s\n interp: %.*s", profile,
                     lines + 1, (int)(wl > 300 ? 300 : wl), want, (int)(gl > 300 ? 300 : gl), got);
        lines++;
        if (!we || !ge) {
            assert_true(!we && !ge);
            break;
        }
        want = we + 1;
        got = ge + 1;
    }
    printf("# %s profile: %zu cases agree with Lua's own functions\n", profile, lines);
    assert_true(lines > 20000);
}

static void check_profile(interp_sandbox sb, const char *name)
{
    lua_State *plain = luaL_newstate();
    assert_non_null(plain);
    luaL_openlibs(plain);
    char *want = run_cases(plain);
    lua_close(plain);

    interp_config cfg = {.sandbox = sb};
    interp_shared *sh = NULL;
    interp_state *s = NULL;
    char *err = NULL;
    assert_int_equal(interp__shared_create(&cfg, &sh, &err), INTERP_OK);
    assert_int_equal(interp__state_create(sh, 0, &s, &err), INTERP_OK);
    char *got = run_cases(interp__state_lua(s));
    compare(want, got, name);
    free(want);
    free(got);
    interp__state_destroy(s);
    interp__shared_destroy(sh);
}

static void lib_diff_full_profile(void **st)
{
    (void)st;
    check_profile(INTERP_SANDBOX_NONE, "full");
}

static void lib_diff_safe_profile(void **st)
{
    (void)st;
    check_profile(INTERP_SANDBOX_SAFE, "safe");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lib_diff_full_profile),
        cmocka_unit_test(lib_diff_safe_profile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
