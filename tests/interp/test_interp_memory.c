/* test_interp_memory.c - memory limits, recovery after memory errors, fault injection through
 * create / init / call / destroy, deep recursion on a small worker stack, and no growth over
 * 10,000 tasks. */
#include "interp_test_util.h"
#include "alloc_fail.h"

#include <lualib.h>

static void memory_bombs_fail_cleanly_and_the_state_recovers(void **st)
{
    (void)st;
    static const char *const bombs[] = {
        "return string.rep('x', 64 * 1024 * 1024)",
        "local t = {} for i = 1, 1e9 do t[i] = i end",
        "local t = {} for i = 1, 1e9 do t['k' .. i] = {i} end",
        "local s = 'xy' while true do s = s .. s end",
        "local t = {} for i = 1, 1e9 do t[#t + 1] = ('z'):rep(1000) .. i end",
    };
    for (int sb = 0; sb <= 1; sb++) {
        interp_config cfg = {.sandbox = (interp_sandbox)sb,
                             .memory_limit = 8u << 20,
                             .init_source = "function ok() return 'fine' end"};
        fixture f;
        fx_open_cfg(&f, &cfg);
        for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
            fx_expect_err(&f, bombs[i], INTERP_ERR_NOMEM, "not enough memory");
            assert_false(interp__state_broken(f.s));
            size_t used, peak;
            interp__state_memory(f.s, &used, &peak);
            assert_true(peak <= cfg.memory_limit);
            assert_true(used < cfg.memory_limit / 2);
            interp_outcome o;
            assert_int_equal(fx_name(&f, "ok", NULL, &o), INTERP_OK);
            assert_string_equal(fx_text(&o), "\"fine\"");
            interp__outcome_clear(&o);
        }
        /* a memory error caught by the task's own pcall is just a Lua error to it */
        fx_expect(&f, "local ok, e = pcall(string.rep, 'x', 64 * 1024 * 1024) return ok, e",
                  "false, \"not enough memory\"");
        fx_close(&f);
    }
}

static void memory_limit_holding_the_state_full_marks_it_broken(void **st)
{
    (void)st;
    interp_config cfg = {.memory_limit = 4u << 20};
    fixture f;
    fx_open_cfg(&f, &cfg);
    /* globals persist in the full profile: fill the state and keep it full */
    fx_expect_err(&f, "for i = 1, 1e9 do hoard = {hoard, ('q'):rep(100) .. i} end",
                  INTERP_ERR_NOMEM, "not enough memory");
    assert_true(interp__state_broken(f.s));
    interp_outcome o;
    assert_int_equal(fx_src(&f, "return 1", NULL, &o), INTERP_ERR_BROKEN);
    interp__outcome_clear(&o);
    fx_close(&f);
}

/* ---- deep recursion on a 1 MiB thread ---------------------------------------------------- */

static const char *const deep[] = {
    "local function f() return 1 + f() end return f()",
    "local function f() return pcall(f) end return f()",
    "local function f() local ok, e = pcall(f) error(e, 0) end return f()",
    "local mt = {} mt.__index = function(t, k) return setmetatable({}, mt)[k] end "
    "return setmetatable({}, mt).x",
    "local t = {} for i = 1, 1e5 do t = setmetatable({}, {__index = t}) end return t.x",
    "return load(string.rep('(', 1e6) .. string.rep(')', 1e6))",
    "return load('return ' .. string.rep('{', 1e5) .. string.rep('}', 1e5))",
    "local s = string.rep('a = {', 1e5) return load(s)",
    "local co = coroutine.wrap(function() local function f() return 1 + f() end return f() end) "
    "return co()",
    "local function f(n) return coroutine.wrap(function() return f(n + 1) end)() end return f(1)",
    "return tostring(setmetatable({}, {__tostring = function(t) return tostring(t) end}))",
    "local t = setmetatable({}, {__concat = function(a, b) return a .. b end}) return t .. 'x'",
};

typedef struct deep_run {
    interp_state *s;
    int status[sizeof deep / sizeof deep[0]];
    char text[sizeof deep / sizeof deep[0]][160];
    int after;
} deep_run;

static void *deep_main(void *p)
{
    deep_run *d = p;
    for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
        interp_fn fn = {.kind = INTERP_FN_SOURCE, .text = deep[i]};
        interp_outcome o;
        d->status[i] = interp__state_call(d->s, i + 1, &fn, NULL, &o);
        snprintf(d->text[i], sizeof d->text[i], "%s", o.error ? o.error : "");
        interp__outcome_clear(&o);
    }
    interp_fn ok = {.kind = INTERP_FN_SOURCE, .text = "return 1"};
    interp_outcome o;
    d->after = interp__state_call(d->s, 1000, &ok, NULL, &o);
    interp__outcome_clear(&o);
    return NULL;
}

static void memory_deep_recursion_is_a_lua_error_on_a_1mib_stack(void **st)
{
    (void)st;
    for (int sb = 0; sb <= 1; sb++) {
        fixture f;
        fx_open(&f, (interp_sandbox)sb, NULL);
        deep_run d = {.s = f.s};
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 1u << 20);
        pthread_t th;
        assert_int_equal(pthread_create(&th, &attr, deep_main, &d), 0);
        pthread_join(th, NULL);
        pthread_attr_destroy(&attr);
        for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
            /* an error, or (pcall nesting) a normal end: never a crash */
            if (d.status[i] != INTERP_ERR_SCRIPT && d.status[i] != INTERP_OK &&
                d.status[i] != INTERP_ERR_ENCODE)
                fail_msg("deep %zu sandbox=%d: status %d %s", i, sb, d.status[i], d.text[i]);
        }
        assert_int_equal(d.status[0], INTERP_ERR_SCRIPT);
        assert_non_null(strstr(d.text[0], "stack overflow"));
        assert_int_equal(d.after, INTERP_OK);
        fx_close(&f);
    }
}

/* ---- fault injection ------------------------------------------------------------------- */

static void memory_fault_injection_every_allocation(void **st)
{
    (void)st;
    interp_msg *arg = interp_msg_int(5);
    int completed = 0;
    long k;
    for (k = 1; k < 50000 && !completed; k++) {
        int untouched_runs = 0;
        for (int sb = 0; sb <= 1; sb++) {
            alloc_budget = k;
            interp_config cfg = {.sandbox = (interp_sandbox)sb,
                                 .init_source = "function sq(x) local t = {x, x} return x * x end",
                                 .print = capture_sink};
            captured cap = {.n = 0};
            pthread_mutex_init(&cap.mu, NULL);
            cfg.print_ud = &cap;
            interp_shared *sh = NULL;
            interp_state *s = NULL;
            char *err = NULL;
            int rc = interp__shared_create(&cfg, &sh, &err);
            if (rc == INTERP_OK) {
                rc = interp__state_create(sh, 0, &s, &err);
                if (rc == INTERP_OK) {
                    interp_fn fn = {.kind = INTERP_FN_NAME, .text = "sq"};
                    interp_outcome o;
                    rc = interp__state_call(s, 1, &fn, arg, &o);
                    assert_true(rc == INTERP_OK || rc == INTERP_ERR_NOMEM);
                    interp__outcome_clear(&o);
                    interp_fn src = {.kind = INTERP_FN_SOURCE, .text = "print('x') return ..."};
                    rc = interp__state_call(s, 2, &src, arg, &o);
                    assert_true(rc == INTERP_OK || rc == INTERP_ERR_NOMEM);
                    interp__outcome_clear(&o);
                } else {
                    assert_true(rc == INTERP_ERR_NOMEM);
                    assert_null(s);
                }
            } else {
                assert_true(rc == INTERP_ERR_NOMEM);
                assert_null(sh);
            }
            free(err);
            bool untouched = alloc_budget > 0;
            interp__state_destroy(s);
            interp__shared_destroy(sh);
            alloc_budget = -1;
            pthread_mutex_destroy(&cap.mu);
            untouched_runs += untouched;
        }
        completed = untouched_runs == 2; /* k passed every allocation of both profiles */
    }
    interp_msg_free(arg);
    printf("# fault injection: failed allocation k = 1..%ld, all clean\n", k - 1);
    assert_true(completed);
}

/* ---- no growth over many tasks --------------------------------------------------------- */

static void memory_ten_thousand_tasks_return_to_baseline(void **st)
{
    (void)st;
    for (int sb = 0; sb <= 1; sb++) {
        fixture f;
        fx_open(&f, (interp_sandbox)sb,
                "function work(x) local t = {} for i = 1, 10 do "
                "t[i] = tostring(x + i) end return #t, t[1] end");
        lua_State *L = interp__state_lua(f.s);
        interp_msg *arg = interp_msg_int(3);
        const char *src = "local x = ... local s = ('y'):rep(x) g = s return #s";
        interp_outcome o;
        for (int i = 0; i < 10; i++) { /* warm up: caches, string table */
            fx_name(&f, "work", arg, &o);
            interp__outcome_clear(&o);
            fx_src(&f, src, arg, &o);
            interp__outcome_clear(&o);
        }
        lua_gc(L, LUA_GCCOLLECT);
        size_t base, now;
        interp__state_memory(f.s, &base, NULL);
        for (int i = 0; i < 10000; i++) {
            assert_int_equal(fx_name(&f, "work", arg, &o), INTERP_OK);
            interp__outcome_clear(&o);
            if (i % 10 == 0) {
                fx_src(&f, "error('e' .. ...)", arg, &o);
                interp__outcome_clear(&o);
            }
            assert_int_equal(fx_src(&f, src, arg, &o), INTERP_OK);
            interp__outcome_clear(&o);
        }
        lua_gc(L, LUA_GCCOLLECT);
        interp__state_memory(f.s, &now, NULL);
        printf("# sandbox=%d: idle state %zu bytes, after 21,000 tasks and a full GC %zu bytes\n",
               sb, base, now);
        assert_true(now <= base + 4096);
        interp_msg_free(arg);
        fx_close(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_bombs_fail_cleanly_and_the_state_recovers),
        cmocka_unit_test(memory_limit_holding_the_state_full_marks_it_broken),
        cmocka_unit_test(memory_deep_recursion_is_a_lua_error_on_a_1mib_stack),
        cmocka_unit_test(memory_fault_injection_every_allocation),
        cmocka_unit_test(memory_ten_thousand_tasks_return_to_baseline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
