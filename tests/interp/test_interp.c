/* test_interp.c - interp/: profiles, initializer, tasks by name / source / function, results,
 * errors with tracebacks, print, os.exit, the interp module, map. */
#include "interp_test_util.h"

#include <unistd.h>

static void interp_full_profile_has_all_libraries(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    fx_expect(&f, "return type(io), type(debug), type(package), type(require), type(dofile)",
              "\"table\", \"table\", \"table\", \"function\", \"function\"");
    fx_expect(&f, "return type(string.dump), type(os.getenv), type(interp), interp.worker_id",
              "\"function\", \"function\", \"table\", 7");
    fx_expect(&f, "return require('interp') == interp", "true");
    fx_close(&f);
}

static void interp_full_profile_globals_persist(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    fx_expect(&f, "counter = (counter or 0) + 1 return counter", "1");
    fx_expect(&f, "counter = (counter or 0) + 1 return counter", "2");
    fx_close(&f);
}

static void interp_sandbox_profile_keeps_the_listed_libraries(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE, NULL);
    fx_expect(&f,
              "return type(io), type(debug), type(package), type(require), type(dofile), "
              "type(loadfile), type(string.dump), type(warn)",
              "\"nil\", \"nil\", \"nil\", \"nil\", \"nil\", \"nil\", \"nil\", \"nil\"");
    fx_expect(&f,
              "return type(os.clock), type(os.time), type(os.date), type(os.difftime), "
              "type(os.getenv), type(os.execute), type(os.remove), type(os.setlocale)",
              "\"function\", \"function\", \"function\", \"function\", \"nil\", \"nil\", \"nil\", "
              "\"nil\"");
    fx_expect(&f,
              "return math.max(1, 5), string.format('%03d', 7), table.concat({1, 2}, ','), "
              "utf8.char(72), ('abc'):upper(), select('#', 1, 2)",
              "5, \"007\", \"1,2\", \"H\", \"ABC\", 2");
    fx_expect(&f,
              "local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) "
              "return b * 2 end) return co(1), co(10)",
              "2, 20");
    fx_expect(&f, "return collectgarbage('count') >= 0, interp.worker_id", "true, 7");
    fx_close(&f);
}

static void interp_initializer_defines_functions(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE,
            "function square(x) return x * x end\n"
            "function pair(a, b) return b, a, a + b end");
    interp_msg *arg = interp_msg_int(12);
    interp_outcome o;
    assert_int_equal(fx_name(&f, "square", arg, &o), INTERP_OK);
    assert_string_equal(fx_text(&o), "144");
    interp__outcome_clear(&o);
    interp_msg_free(arg);
    assert_int_equal(fx_name(&f, "pair", NULL, &o), INTERP_ERR_SCRIPT); /* nil + nil */
    assert_non_null(strstr(o.error, "arithmetic"));
    assert_non_null(strstr(o.error, "stack traceback:"));
    interp__outcome_clear(&o);
    fx_close(&f);
}

static void interp_initializer_args_and_file(void **st)
{
    (void)st;
    char path[] = "/tmp/interp_init_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *src = "local base = ...\nfunction add(x) return x + base end\n";
    assert_int_equal(write(fd, src, strlen(src)), (ssize_t)strlen(src));
    close(fd);
    interp_msg *base = interp_msg_int(100);
    interp_config cfg = {.init_file = path, .init_args = base};
    fixture f;
    fx_open_cfg(&f, &cfg);
    interp_msg_free(base); /* the shared part keeps its own copy */
    interp_msg *arg = interp_msg_int(5);
    interp_outcome o;
    assert_int_equal(fx_name(&f, "add", arg, &o), INTERP_OK);
    assert_string_equal(fx_text(&o), "105");
    interp__outcome_clear(&o);
    interp_msg_free(arg);
    fx_close(&f);
    unlink(path);
}

static void interp_initializer_failures_are_reported(void **st)
{
    (void)st;
    interp_shared *sh;
    char *err = NULL;
    interp_config cfg = {.init_source = "function f( return 1 end"};
    assert_int_equal(interp__shared_create(&cfg, &sh, &err), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(err, "init:1:"));
    free(err);

    interp_config cfg2 = {.init_file = "/nonexistent/dir/init.lua"};
    assert_int_equal(interp__shared_create(&cfg2, &sh, &err), INTERP_ERR_NOTFOUND);
    assert_non_null(strstr(err, "/nonexistent/dir/init.lua"));
    free(err);

    interp_config cfg3 = {.sandbox = 9};
    assert_int_equal(interp__shared_create(&cfg3, &sh, &err), INTERP_ERR_INVALID);
    free(err);

    /* compiles, but fails when run: reported by state creation, with a traceback */
    interp_config cfg4 = {.init_source = "local function boom() error('init exploded') end\n"
                                         "boom()"};
    assert_int_equal(interp__shared_create(&cfg4, &sh, &err), INTERP_OK);
    interp_state *s;
    assert_int_equal(interp__state_create(sh, 0, &s, &err), INTERP_ERR_SCRIPT);
    assert_null(s);
    assert_non_null(strstr(err, "init exploded"));
    assert_non_null(strstr(err, "stack traceback:"));
    free(err);
    interp__shared_destroy(sh);
}

static void interp_task_by_source_with_args_and_results(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    interp_msg *arg = interp_msg_int(20);
    interp_outcome o;
    assert_int_equal(fx_src(&f, "local x = ... return x + 1, x * 2.5, 'text', nil, true", arg, &o),
                     INTERP_OK);
    assert_int_equal(interp_msg_count(o.result), 5);
    assert_string_equal(fx_text(&o), "21, 50.0, \"text\", nil, true");
    interp__outcome_clear(&o);
    /* no results: an empty message */
    assert_int_equal(fx_src(&f, "local x = ...", arg, &o), INTERP_OK);
    assert_int_equal(interp_msg_count(o.result), 0);
    interp__outcome_clear(&o);
    interp_msg_free(arg);
    fx_close(&f);
}

static void interp_task_errors_carry_text_and_traceback(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE, NULL);
    interp_outcome o;
    assert_int_equal(fx_src(&f,
                            "local function inner() error('bad thing') end\n"
                            "local function outer() inner() end\nouter()",
                            NULL, &o),
                     INTERP_ERR_SCRIPT);
    assert_non_null(strstr(o.error, "task:1: bad thing"));
    assert_non_null(strstr(o.error, "stack traceback:"));
    assert_non_null(strstr(o.error, "in upvalue 'inner'"));
    assert_null(o.error_value);
    interp__outcome_clear(&o);
    fx_expect_err(&f, "return 1 +", INTERP_ERR_SCRIPT, "task:1:");
    fx_expect_err(&f, "error(42)", INTERP_ERR_SCRIPT, "42");
    fx_close(&f);
}

static void interp_table_error_objects_become_error_value(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    interp_outcome o;
    assert_int_equal(fx_src(&f, "error({code = 7})", NULL, &o), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(o.error, "(error object is a table value)"));
    assert_non_null(strstr(o.error, "stack traceback:"));
    assert_non_null(o.error_value);
    char *t;
    assert_int_equal(interp_msg_to_text(o.error_value, &t), INTERP_OK);
    assert_non_null(strstr(t, "code = 7"));
    free(t);
    interp__outcome_clear(&o);
    /* an error object that cannot be copied: text only */
    assert_int_equal(fx_src(&f, "error(coroutine.create(print))", NULL, &o), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(o.error, "thread value"));
    assert_null(o.error_value);
    interp__outcome_clear(&o);
    fx_close(&f);
}

static void interp_uncopyable_results_name_the_path(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    fx_expect_err(&f, "return 1, coroutine.create(print)", INTERP_ERR_ENCODE, "[2]");
    fx_expect_err(&f, "return {a = {io.stdout}}", INTERP_ERR_ENCODE, "userdata");
    fx_expect(&f, "return 'still fine'", "\"still fine\"");
    fx_close(&f);
}

static void interp_task_by_name_not_found(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, "not_a_function = 3");
    interp_outcome o;
    assert_int_equal(fx_name(&f, "missing", NULL, &o), INTERP_ERR_NOTFOUND);
    assert_string_equal(o.error, "no global function 'missing' in the worker state");
    interp__outcome_clear(&o);
    assert_int_equal(fx_name(&f, "not_a_function", NULL, &o), INTERP_ERR_NOTFOUND);
    interp__outcome_clear(&o);
    /* a global redefined by a task is what the name calls next */
    fx_expect(&f, "function later() return 'v1' end", "");
    assert_int_equal(fx_name(&f, "later", NULL, &o), INTERP_OK);
    assert_string_equal(fx_text(&o), "\"v1\"");
    interp__outcome_clear(&o);
    fx_expect(&f, "function later() return 'v2' end", "");
    assert_int_equal(fx_name(&f, "later", NULL, &o), INTERP_OK);
    assert_string_equal(fx_text(&o), "\"v2\"");
    interp__outcome_clear(&o);
    fx_close(&f);
}

static void interp_task_by_function_message(void **st)
{
    (void)st;
    /* A function copied as bytecode from another state (full profile only). */
    lua_State *src = luaL_newstate();
    assert_int_equal(luaL_dostring(src, "local k = 3 return function(x) return x * k end"), 0);
    interp_msg_opts opts = {.allow_functions = true};
    interp_msg *fm;
    interp_msg_error e;
    assert_int_equal(interp_msg_from_lua(src, -1, 1, &opts, &fm, &e), INTERP_OK);
    lua_close(src);

    interp_config cfg = {.msg_opts = {.allow_functions = true}};
    fixture f;
    fx_open_cfg(&f, &cfg);
    interp_fn fn = {.kind = INTERP_FN_FUNCTION, .function = fm};
    interp_msg *arg = interp_msg_int(14);
    interp_outcome o;
    assert_int_equal(interp__state_call(f.s, ++f.task, &fn, arg, &o), INTERP_OK);
    assert_string_equal(fx_text(&o), "42");
    interp__outcome_clear(&o);
    fx_close(&f);

    fixture g;
    fx_open(&g, INTERP_SANDBOX_SAFE, NULL);
    assert_int_equal(interp__state_call(g.s, ++g.task, &fn, arg, &o), INTERP_ERR_DECODE);
    assert_non_null(strstr(o.error, "sandbox"));
    interp__outcome_clear(&o);
    fx_close(&g);
    interp_msg_free(arg);
    interp_msg_free(fm);
}

static void interp_print_goes_to_the_sink_as_lines(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE, NULL);
    fx_expect(&f, "print('a', 1, nil, true) print('two\\nlines') print()", "");
    assert_int_equal(f.out.n, 4);
    assert_string_equal(f.out.lines[0], "a\t1\tnil\ttrue");
    assert_string_equal(f.out.lines[1], "two");
    assert_string_equal(f.out.lines[2], "lines");
    assert_string_equal(f.out.lines[3], "");
    fx_close(&f);
}

static void interp_os_exit_raises_in_every_profile(void **st)
{
    (void)st;
    for (int sb = 0; sb <= 1; sb++) {
        fixture f;
        fx_open(&f, (interp_sandbox)sb, NULL);
        fx_expect_err(&f, "os.exit(0)", INTERP_ERR_SCRIPT, "os.exit is not allowed");
        fx_expect_err(&f, "os.exit(true, true)", INTERP_ERR_SCRIPT, "os.exit is not allowed");
        fx_close(&f);
    }
}

static void interp_sleep_blocks_and_validates(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE, NULL);
    fx_expect(&f, "local t = os.clock() interp.sleep(0.01) interp.sleep(0) return true", "true");
    fx_expect_err(&f, "interp.sleep(-1)", INTERP_ERR_SCRIPT, "non-negative");
    fx_expect_err(&f, "interp.sleep(0/0)", INTERP_ERR_SCRIPT, "non-negative");
    fx_expect_err(&f, "interp.sleep('x')", INTERP_ERR_SCRIPT, "number expected");
    fx_close(&f);
}

static void interp_map_runs_items_in_order_and_survives_errors(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE,
            "function inv(x) if x == 0 then error('zero') end "
            "return 12 // x end");
    enum { N = 6 };
    interp_msg *in[N];
    interp_outcome out[N];
    memset(out, 0, sizeof out);
    int v[N] = {1, 2, 0, 3, 0, 4};
    for (int i = 0; i < N; i++)
        in[i] = interp_msg_int(v[i]);
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = "inv"};
    uint64_t items = interp__state_items(f.s);
    assert_int_equal(interp__state_map(f.s, ++f.task, &fn, N, (const interp_msg *const *)in, out),
                     N);
    assert_int_equal(interp__state_items(f.s) - items, N); /* one per item begun */
    const char *want[N] = {"12", "6", NULL, "4", NULL, "3"};
    for (int i = 0; i < N; i++) {
        if (want[i]) {
            assert_int_equal(out[i].status, INTERP_OK);
            assert_string_equal(fx_text(&out[i]), want[i]);
        } else {
            assert_int_equal(out[i].status, INTERP_ERR_SCRIPT);
            assert_non_null(strstr(out[i].error, "zero"));
        }
        interp__outcome_clear(&out[i]);
        interp_msg_free(in[i]);
    }
    /* unknown function: every item says so */
    interp_fn missing = {.kind = INTERP_FN_NAME, .text = "nope"};
    interp_outcome o2[3];
    memset(o2, 0, sizeof o2);
    assert_int_equal(interp__state_map(f.s, ++f.task, &missing, 3, NULL, o2), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o2[i].status, INTERP_ERR_NOTFOUND);
        assert_null(strstr(o2[i].error, "traceback"));
        interp__outcome_clear(&o2[i]);
    }
    fx_close(&f);
}

/* A map keeps every result of every item, whatever their count (none, one, two, more than
 * the stack room the items' results share between two clean-ups), and an error after many
 * results piled up fails its item only; in both profiles (a sandbox sets each call's
 * environment). */
static void interp_map_keeps_every_result_count(void **st)
{
    (void)st;
    for (int profile = 0; profile < 2; profile++) {
        fixture f;
        fx_open(&f, profile ? INTERP_SANDBOX_SAFE : INTERP_SANDBOX_NONE,
                "function many(x) local k = x % 6 "
                "if k == 0 then return end "
                "if k == 1 then return x * 2 end "
                "if k == 2 then return x, 0.5 end "
                "if k == 3 then local t = {} for i = 1, 40 do t[i] = x end "
                "return table.unpack(t) end "
                "if k == 4 then error('four') end "
                "return tostring(x) end");
        enum { N = 90 };
        interp_msg *in[N];
        interp_outcome out[N];
        memset(out, 0, sizeof out);
        for (int i = 0; i < N; i++)
            in[i] = interp_msg_int(i);
        interp_fn fn = {.kind = INTERP_FN_NAME, .text = "many"};
        assert_int_equal(
            interp__state_map(f.s, ++f.task, &fn, N, (const interp_msg *const *)in, out), N);
        const uint32_t count[6] = {0, 1, 2, 40, 0, 1};
        for (int i = 0; i < N; i++) {
            char want[32];
            if (i % 6 == 4) {
                assert_int_equal(out[i].status, INTERP_ERR_SCRIPT);
                assert_non_null(strstr(out[i].error, "four"));
            } else {
                assert_int_equal(out[i].status, INTERP_OK);
                assert_int_equal(interp_msg_count(out[i].result), count[i % 6]);
            }
            if (i % 6 == 1) {
                snprintf(want, sizeof want, "%d", 2 * i);
                assert_string_equal(fx_text(&out[i]), want);
            } else if (i % 6 == 2) {
                snprintf(want, sizeof want, "%d, 0.5", i);
                assert_string_equal(fx_text(&out[i]), want);
            } else if (i % 6 == 5) {
                snprintf(want, sizeof want, "\"%d\"", i);
                assert_string_equal(fx_text(&out[i]), want);
            }
            interp__outcome_clear(&out[i]);
            interp_msg_free(in[i]);
        }
        fx_close(&f);
    }
}

/* A chunk of thousands of items that all return integers (they pile on the stack between
 * clean-ups) keeps each one's result, an error fails its item only, and an item that needs
 * a deep stack after a pile runs as it would alone; in both profiles. */
static void interp_map_of_many_integer_results(void **st)
{
    (void)st;
    for (int profile = 0; profile < 2; profile++) {
        fixture f;
        fx_open(&f, profile ? INTERP_SANDBOX_SAFE : INTERP_SANDBOX_NONE,
                "local function deep(n) if n == 0 then return 0 end return 1 + deep(n - 1) end "
                "function ints(x) if x % 997 == 996 then error('bad ' .. x) end "
                "if x % 1500 == 1499 then return deep(150) - 150 + x end return x - 7 end");
        enum { N = 3000 };
        interp_msg **in = malloc(N * sizeof *in);
        interp_outcome *out = calloc(N, sizeof *out);
        assert_non_null(in);
        assert_non_null(out);
        for (int i = 0; i < N; i++)
            in[i] = interp_msg_int(i);
        interp_fn fn = {.kind = INTERP_FN_NAME, .text = "ints"};
        assert_int_equal(
            interp__state_map(f.s, ++f.task, &fn, N, (const interp_msg *const *)in, out), N);
        for (int i = 0; i < N; i++) {
            char want[32];
            if (i % 997 == 996) {
                assert_int_equal(out[i].status, INTERP_ERR_SCRIPT);
                snprintf(want, sizeof want, "bad %d", i);
                assert_non_null(strstr(out[i].error, want));
            } else {
                assert_int_equal(out[i].status, INTERP_OK);
                snprintf(want, sizeof want, "%d", i % 1500 == 1499 ? i : i - 7);
                assert_string_equal(fx_text(&out[i]), want);
            }
            interp__outcome_clear(&out[i]);
            interp_msg_free(in[i]);
        }
        free(in);
        free(out);
        fx_close(&f);
    }
}

/* Under a memory limit, a map whose items each return a fresh large string runs them all:
 * an item's results leave the stack once copied (only integer results wait there for the
 * next clean-up), so the limit never holds more than one item's string. */
static void interp_map_under_a_memory_limit_drops_each_result(void **st)
{
    (void)st;
    fixture f;
    interp_config cfg = {.init_source = "function big(x) return ('x'):rep(1 << 20) .. x end",
                         .memory_limit = 8u << 20};
    fx_open_cfg(&f, &cfg);
    enum { N = 40 };
    interp_msg *in[N];
    interp_outcome out[N];
    memset(out, 0, sizeof out);
    for (int i = 0; i < N; i++)
        in[i] = interp_msg_int(i);
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = "big"};
    assert_int_equal(interp__state_map(f.s, ++f.task, &fn, N, (const interp_msg *const *)in, out),
                     N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].status, INTERP_OK);
        assert_true(interp_msg_size(out[i].result) > (1u << 20));
        interp__outcome_clear(&out[i]);
        interp_msg_free(in[i]);
    }
    fx_close(&f);
}

/* A pack of n values: 0, 1, ..., n - 1. */
static interp_msg *pack_upto(int n)
{
    interp_msg_builder *b = interp_msg_builder_new();
    interp_msg *m = NULL;
    for (int i = 0; i < n; i++)
        assert_int_equal(interp_msg_add_int(b, i), INTERP_OK);
    assert_int_equal(interp_msg_builder_finish(b, &m), INTERP_OK);
    return m;
}

/* Packed: the first result of each call, in order, for a small pack and for one past the size
 * whose results are kept beside the values (those replace each value instead); a failing call
 * ends its pack and names its index; the next pack runs. */
static void interp_map_packed_keeps_first_results_in_order(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE,
            "function dbl(x) if x == 5 then error('five') end return x * 2, 'dropped' end");
    enum { BIG = 70000 };
    interp_msg *in[3] = {pack_upto(5), pack_upto(BIG), pack_upto(3)};
    interp_outcome out[3];
    memset(out, 0, sizeof out);
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = "dbl"};
    assert_int_equal(
        interp__state_map_packed(f.s, ++f.task, &fn, 3, (const interp_msg *const *)in, out), 3);
    assert_int_equal(out[0].status, INTERP_OK);
    assert_string_equal(fx_text(&out[0]), "0, 2, 4, 6, 8");
    assert_int_equal(out[1].status, INTERP_ERR_SCRIPT); /* the call of 5 */
    assert_non_null(strstr(out[1].error, "five"));
    assert_string_equal(fx_text(&(interp_outcome){.result = out[1].result}), "5");
    assert_int_equal(out[2].status, INTERP_OK);
    assert_string_equal(fx_text(&out[2]), "0, 2, 4");
    /* the big pack without the failing value: every result, in order */
    interp_fn odd = {.kind = INTERP_FN_SOURCE, .text = "return (...) * 2 + 1"};
    interp_outcome big;
    memset(&big, 0, sizeof big);
    assert_int_equal(
        interp__state_map_packed(f.s, ++f.task, &odd, 1, (const interp_msg *const *)&in[1], &big),
        1);
    assert_int_equal(big.status, INTERP_OK);
    assert_int_equal(interp_msg_count(big.result), BIG);
    int v[3];
    assert_int_equal(interp_msg_unpack(big.result, "iii*", &v[0], &v[1], &v[2]), INTERP_OK);
    assert_true(v[0] == 1 && v[1] == 3 && v[2] == 5);
    for (int i = 0; i < 3; i++) {
        interp__outcome_clear(&out[i]);
        interp_msg_free(in[i]);
    }
    interp__outcome_clear(&big);
    fx_close(&f);
}

static void interp_source_chunks_are_cached_per_state(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    /* the chunk object is the same function on the second call */
    fx_expect(&f,
              "local me = debug.getinfo(1, 'f').func seen = seen or {} "
              "local n = (seen[me] or 0) + 1 seen[me] = n return n",
              "1");
    fx_expect(&f,
              "local me = debug.getinfo(1, 'f').func seen = seen or {} "
              "local n = (seen[me] or 0) + 1 seen[me] = n return n",
              "2");
    /* many distinct chunks: the cache stays bounded and correct */
    char src[64];
    for (int i = 0; i < 600; i++) {
        snprintf(src, sizeof src, "return %d", i);
        interp_outcome o;
        assert_int_equal(fx_src(&f, src, NULL, &o), INTERP_OK);
        interp__outcome_clear(&o);
    }
    assert_true(f.s->src_cached <= 256);
    fx_close(&f);
}

static void interp_invalid_calls_are_refused(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    interp_outcome o;
    assert_int_equal(interp__state_call(f.s, 1, NULL, NULL, &o), INTERP_ERR_INVALID);
    interp__outcome_clear(&o);
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = NULL};
    assert_int_equal(interp__state_call(f.s, 2, &fn, NULL, &o), INTERP_ERR_INVALID);
    interp__outcome_clear(&o);
    /* the same rule as the pool's submit and map (interp__fn_check) */
    fn.text = "";
    assert_int_equal(interp__state_call(f.s, 3, &fn, NULL, &o), INTERP_ERR_INVALID);
    assert_non_null(o.error);
    assert_non_null(strstr(o.error, "empty"));
    interp__outcome_clear(&o);
    interp__state_destroy(NULL);
    interp__shared_destroy(NULL);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(interp_full_profile_has_all_libraries),
        cmocka_unit_test(interp_full_profile_globals_persist),
        cmocka_unit_test(interp_sandbox_profile_keeps_the_listed_libraries),
        cmocka_unit_test(interp_initializer_defines_functions),
        cmocka_unit_test(interp_initializer_args_and_file),
        cmocka_unit_test(interp_initializer_failures_are_reported),
        cmocka_unit_test(interp_task_by_source_with_args_and_results),
        cmocka_unit_test(interp_task_errors_carry_text_and_traceback),
        cmocka_unit_test(interp_table_error_objects_become_error_value),
        cmocka_unit_test(interp_uncopyable_results_name_the_path),
        cmocka_unit_test(interp_task_by_name_not_found),
        cmocka_unit_test(interp_task_by_function_message),
        cmocka_unit_test(interp_print_goes_to_the_sink_as_lines),
        cmocka_unit_test(interp_os_exit_raises_in_every_profile),
        cmocka_unit_test(interp_sleep_blocks_and_validates),
        cmocka_unit_test(interp_map_runs_items_in_order_and_survives_errors),
        cmocka_unit_test(interp_map_keeps_every_result_count),
        cmocka_unit_test(interp_map_of_many_integer_results),
        cmocka_unit_test(interp_map_packed_keeps_first_results_in_order),
        cmocka_unit_test(interp_map_under_a_memory_limit_drops_each_result),
        cmocka_unit_test(interp_source_chunks_are_cached_per_state),
        cmocka_unit_test(interp_invalid_calls_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
