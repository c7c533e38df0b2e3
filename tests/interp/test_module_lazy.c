/* test_module_lazy.c - the `interp` module of a full-profile state is filled at first use
 * (interp/module.c): until then an empty table with a metatable; any read or pairs fills it
 * with every field, keeps the names a script set, and drops the metatable; a frozen value that
 * arrives before the module is filled works, and so does the module after it. */
#include "interp_test_util.h"

static void the_module_is_filled_at_first_read(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    fx_expect(&f, "return rawget(interp, 'sleep'), getmetatable(interp) ~= nil, next(interp)",
              "nil, true, nil");
    fx_expect(&f, "return type(interp.sleep), getmetatable(interp), rawget(interp, 'worker_id')",
              "\"function\", nil, 7");
    fx_expect(&f, "return type(rawget(interp, 'channel')), type(rawget(interp, 'freeze'))",
              "\"function\", \"function\"");
    fx_close(&f);
}

static void pairs_fills_it_and_a_scripts_names_stay(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    fx_expect(&f,
              "local n, seen = 0, {} for k, v in pairs(interp) do n = n + 1 seen[k] = type(v) end "
              "return n >= 10, seen.select, seen.thaw, getmetatable(interp)",
              "true, \"function\", \"function\", nil");
    fx_close(&f);
    fx_open(&f, INTERP_SANDBOX_NONE, "interp.sleep = 42 interp.mine = 'x'");
    fx_expect(&f, "return interp.sleep, type(interp.freeze), interp.mine, interp.sleep",
              "42, \"function\", \"x\", 42");
    fx_close(&f);
}

static void a_frozen_value_before_the_module(void **st)
{
    (void)st;
    fixture a, b;
    fx_open(&a, INTERP_SANDBOX_NONE, NULL);
    fx_open(&b, INTERP_SANDBOX_NONE, NULL);
    interp_outcome made;
    assert_int_equal(fx_src(&a, "return interp.freeze{k = 5, t = {1, 2}}", NULL, &made), INTERP_OK);
    /* b's first frozen view moves its configuration; the module made after finds it */
    interp_outcome o;
    fx_src(&b,
           "local v = ... local k, n = v.k, #v.t "
           "return k, n, interp.isfrozen(v), interp.thaw(v).t[2], interp.freeze{1}[1]",
           made.result, &o);
    assert_string_equal(fx_text(&o), "5, 2, true, 2, 1");
    interp__outcome_clear(&o);
    interp__outcome_clear(&made);
    fx_close(&b);
    fx_close(&a);
}

static void the_sandbox_fills_it_at_once(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE, NULL);
    fx_expect(&f, "return getmetatable(interp), type(interp.sleep)", "false, \"function\"");
    fx_close(&f);
}

/* The metatable's functions are reachable (getmetatable(interp)): called on anything but a
 * table they raise, and never touch a value that is not the module's (a number's metatable). */
static void its_metamethods_called_by_hand(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    fx_expect(&f,
              "local mt = getmetatable(interp) "
              "local ok1 = pcall(mt.__index, 1, 'sleep') "
              "local ok2 = pcall(mt.__index, 'x', 'sleep') "
              "local ok3 = pcall(mt.__pairs, nil) "
              "return ok1, ok2, ok3, getmetatable('').__index == string, type(interp.sleep)",
              "false, false, false, true, \"function\"");
    fx_close(&f);
}

/* Under a memory limit, a fill that runs out of memory fails the read with a memory error and
 * leaves the module to fill at the next read, complete. */
static void a_fill_out_of_memory_is_tried_again(void **st)
{
    (void)st;
    fixture f;
    interp_config cfg = {.sandbox = INTERP_SANDBOX_NONE, .memory_limit = 256 * 1024};
    fx_open_cfg(&f, &cfg);
    fx_expect(&f,
              "local read = function() return interp.sleep end "
              "local head pcall(function() while true do head = {head} end end) "
              "local ok, failed = pcall(read) head = nil collectgarbage() "
              "local n = 0 for k in pairs(interp) do n = n + 1 end "
              "return not ok and failed:find('memory') ~= nil, type(interp.sleep), n >= 10, "
              "getmetatable(interp)",
              "true, \"function\", true, nil");
    fx_close(&f);
}

/* A script that drops or replaces the filler first leaves itself without the functions, but
 * what arrives in a task's arguments (a frozen value) still works: its needs were recorded at
 * the state's creation, not in the module. */
static void a_script_that_drops_the_filler(void **st)
{
    (void)st;
    fixture a, b;
    fx_open(&a, INTERP_SANDBOX_NONE, NULL);
    fx_open(&b, INTERP_SANDBOX_NONE, "setmetatable(interp, {__index = function() return 1 end})");
    interp_outcome made;
    assert_int_equal(fx_src(&a, "return interp.freeze{k = 5, t = {1, 2}}", NULL, &made), INTERP_OK);
    interp_outcome o;
    fx_src(&b, "local v = ... return v.k, #v.t, v.t[2], interp.sleep, rawget(interp, 'thaw')",
           made.result, &o);
    assert_string_equal(fx_text(&o), "5, 2, 2, 1, nil");
    interp__outcome_clear(&o);
    fx_expect(&b, "setmetatable(interp, nil) return interp.freeze, next(interp)", "nil, nil");
    interp__outcome_clear(&made);
    fx_close(&b);
    fx_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_module_is_filled_at_first_read),
        cmocka_unit_test(pairs_fills_it_and_a_scripts_names_stay),
        cmocka_unit_test(a_frozen_value_before_the_module),
        cmocka_unit_test(the_sandbox_fills_it_at_once),
        cmocka_unit_test(its_metamethods_called_by_hand),
        cmocka_unit_test(a_fill_out_of_memory_is_tried_again),
        cmocka_unit_test(a_script_that_drops_the_filler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
