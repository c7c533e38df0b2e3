/* test_sandbox_attacks.c - a hostile plugin author against INTERP_SANDBOX_SAFE: C loops the
 * hook cannot reach, recursion through metamethods and callbacks, coroutine tricks, crafted
 * `load` readers and environments, hostile error objects and results, library state a task
 * could leave behind for the next one. Each attack asserts its exact outcome, and the same
 * state must then run an ordinary task.
 *
 * Two halves: a single state (interp/ API) for attacks that end by themselves, and a sandboxed
 * pool (memory limit, task deadline, default 1 MiB worker stacks) for attacks that only end by
 * their deadline. The pool's stuck_grace is long: a task that ended by abandonment (stuck in C
 * where no hook reaches) shows up in workers_abandoned, which must stay 0. */
#include "interp_test_util.h"

#include "interp_pool.h"

enum { LIMIT = 32 << 20 };

typedef struct attack {
    const char *src;
    int status; /* INTERP_OK: `text` is the exact result; otherwise a part of the error */
    const char *text;
} attack;

#define OK INTERP_OK
#define SCRIPT INTERP_ERR_SCRIPT
#define NOMEM INTERP_ERR_NOMEM
#define ENCODE INTERP_ERR_ENCODE

/* Attacks that end by themselves (an error, a limit, or a harmless result). */
static const attack attacks[] = {
    /* The real globals through the `next` of a read-only proxy (it used to iterate any
     * table's __index: the environment's metatable reads through to the globals). */
    {"local rn = pairs(string) return rn(_ENV)", SCRIPT, "not a read-only library table"},
    {"local rn = pairs(string) return rn({}, nil)", SCRIPT, "not a read-only library table"},
    {"local rn = pairs(string) return rn(setmetatable({}, {__index = {a = 1}}))", SCRIPT,
     "not a read-only library table"},
    {"local rn = pairs(math) local k, v = rn(math) return type(k), math[k] == v", OK,
     "\"string\", true"},
    {"_G = nil return _G, rawget(_ENV, '_G')", OK, "nil, nil"},
    /* string.rep: an empty result used to loop n times inside C */
    {"return #string.rep('', math.maxinteger)", OK, "0"},
    {"return #(''):rep(1e18, '')", OK, "0"},
    {"return string.rep('ab', 3, ','), string.rep('x', 0), string.rep('x', -5)", OK,
     "\"ab,ab,ab\", \"\", \"\""},
    {"return string.rep('x', 1e9)", NOMEM, "not enough memory"},
    {"return string.rep('x', 1e12)", SCRIPT, "resulting string too large"},
    {"return string.rep('x', math.maxinteger)", SCRIPT, "resulting string too large"},
    {"return string.rep('x', 2^9, ('y'):rep(2^20))", NOMEM, "not enough memory"},
    {"return string.rep()", SCRIPT, "bad argument #1 to 'rep'"},
    {"local t = {} for i = 1, 64 do t[i] = ('x'):rep(2^20) end return #t", NOMEM,
     "not enough memory"},
    /* formats */
    {"return string.format('%099999d', 1)", SCRIPT, "invalid conversion"},
    {"return string.format('%100s', 'x')", SCRIPT, "invalid conversion"},
    {"return #string.format('%99.99f', 1e308)", OK, "409"},
    {"return string.format('%s', setmetatable({}, {__tostring = function() return true end}))",
     SCRIPT, "'__tostring' must return a string"},
    {"return string.format('%d', 2^63)", SCRIPT, "number has no integer representation"},
    {"return string.pack('c2000000000', '')", NOMEM, "not enough memory"},
    {"return string.pack('i17', 1)", SCRIPT, "out of limits"},
    {"return string.unpack('c1000000000', 'x')", SCRIPT, "data string too short"},
    {"return string.unpack('z', 'abc')", SCRIPT, "unfinished string"},
    {"return #string.pack(('b'):rep(100000), table.unpack({}, 1, 100000))", SCRIPT,
     "number expected"},
    /* table functions: limits and ordinary behaviour kept by the sandbox's versions */
    {"return table.unpack({}, 1, 1e8)", SCRIPT, "too many results to unpack"},
    {"return select('#', table.unpack({}, 1, 100000))", OK, "100000"},
    {"return table.concat({1, 2, 3}, ', '), table.concat({'a', 'b', 'c'}, '', 2, 3)", OK,
     "\"1, 2, 3\", \"bc\""},
    {"return table.concat({1, {}, 3})", SCRIPT, "invalid value (at index 2) in table for 'concat'"},
    {"return table.concat({}, 'x', 1, 0), table.concat({'a'}, 'x', 1, 1)", OK, "\"\", \"a\""},
    {"local t = {1, 2, 3} table.insert(t, 4) table.insert(t, 1, 0) return table.concat(t, ',')", OK,
     "\"0,1,2,3,4\""},
    {"table.insert({}, 5, 1)", SCRIPT, "position out of bounds"},
    {"table.insert({}, 1, 2, 3)", SCRIPT, "wrong number of arguments to 'insert'"},
    {"local t = {1, 2, 3} return table.remove(t), table.remove(t, 1), #t, t[1]", OK, "3, 1, 1, 2"},
    {"return table.remove({}), table.remove({}, 0)", OK, "nil, nil"},
    {"table.remove({1}, 5)", SCRIPT, "position out of bounds"},
    {"local t = table.move({1, 2, 3}, 1, 3, 2) return table.concat(t, ',')", OK, "\"1,1,2,3\""},
    {"local t = table.move({1, 2, 3}, 2, 3, 1) return table.concat(t, ',')", OK, "\"2,3,3\""},
    {"return table.concat(table.move({1, 2}, 1, 2, 2, {9}), ',')", OK, "\"9,1,2\""},
    {"table.move({}, 1, math.maxinteger, 2)", SCRIPT, "destination wrap around"},
    {"table.move({}, -1, math.maxinteger, 1)", SCRIPT, "too many elements to move"},
    {"table.move(1, 1, 2, 1)", SCRIPT, "table expected"},
    {"local p = setmetatable({}, {__index = function(_, i) return i * 10 end, __len = function() "
     "return 3 end}) return table.concat(p, ',')",
     OK, "\"10,20,30\""},
    {"local t = {5, 2, 9, 1} table.sort(t) return table.concat(t, ',')", OK, "\"1,2,5,9\""},
    {"local t = {'b', 'a', 'c'} table.sort(t) return table.concat(t)", OK, "\"abc\""},
    {"local mt = {__lt = function(a, b) return a.v < b.v end} local t = {} "
     "for i = 1, 5 do t[i] = setmetatable({v = 6 - i}, mt) end table.sort(t) "
     "return t[1].v, t[5].v",
     OK, "1, 5"},
    {"local t = setmetatable({3, 1, 2}, {}) table.sort(t) return table.concat(t)", OK, "\"123\""},
    {"local t = {5, 2, 9, 1} table.sort(t, function(a, b) return a > b end) "
     "return table.concat(t, ',')",
     OK, "\"9,5,2,1\""},
    {"local t = {3, 1, 2} table.sort(t, rawequal) return #t", OK, "3"},
    {"local t = {} for i = 1, 100 do t[i] = i % 7 end table.sort(t, function() return true end)",
     SCRIPT, "invalid order function for sorting"},
    {"table.sort({1, 'x', 3})", SCRIPT, "attempt to compare"},
    {"table.sort({3, 2, 1}, 5)", SCRIPT, "bad argument #2 to 'sort'"},
    {"table.sort(setmetatable({}, {__len = function() return math.maxinteger end}))", SCRIPT,
     "array too big"},
    /* utf8 on big inputs: linear, bounded by the memory limit */
    {"return utf8.len(('\\u{10FFFF}'):rep(2^20))", OK, "1048576"},
    {"return utf8.codepoint(('a'):rep(2^21), 1, -1)", SCRIPT, "string slice too long"},
    {"return string.byte(('a'):rep(2^21), 1, -1)", SCRIPT, "string slice too long"},
    {"for p, c in utf8.codes(('\\xff'):rep(10)) do end", SCRIPT, "invalid UTF-8 code"},
    {"return utf8.char(0x7FFFFFFF):len(), utf8.offset('abc', 1e15)", OK, "6, nil"},
    {"return select(-1, 1, 2, 3), select('#', select(1e10, 1))", OK, "3, 0"},
    {"return select(-1e10, 1)", SCRIPT, "index out of range"},
    /* recursion through metamethods and callbacks: a clean error, never SIGSEGV */
    {"local t = setmetatable({}, {__index = function(t, k) return t[k .. 'x'] end}) return t.a",
     SCRIPT, "stack overflow"},
    {"local t = setmetatable({}, {__newindex = function(t, k, v) t[k .. 'x'] = v end}) t.a = 1",
     SCRIPT, "stack overflow"},
    {"local mt = {} mt.__concat = function(a, b) return a .. b end "
     "return setmetatable({}, mt) .. 'x'",
     SCRIPT, "stack overflow"},
    {"local mt = {} mt.__eq = function(a, b) return a == b end "
     "return setmetatable({}, mt) == setmetatable({}, mt)",
     SCRIPT, "stack overflow"},
    {"local mt = {} mt.__lt = function(a, b) return a < b end "
     "return setmetatable({}, mt) < setmetatable({}, mt)",
     SCRIPT, "stack overflow"},
    {"local mt = {} mt.__len = function(t) return #t end return #setmetatable({}, mt)", SCRIPT,
     "stack overflow"},
    {"local t = setmetatable({}, {__call = function(self) return (self()) end}) return t()", NOMEM,
     "not enough memory"}, /* the Lua stack outgrows the limit before its own */
    {"local mt = {} mt.__close = function(o) local y <close> = setmetatable({}, mt) end "
     "do local x <close> = setmetatable({}, mt) end",
     SCRIPT, "stack overflow"},
    {"local mt = {} mt.__tostring = tostring return tostring(setmetatable({}, mt))", SCRIPT,
     "stack overflow"},
    {"local function f(s) return (s:gsub('.', f)) end return f('ab')", SCRIPT, "stack overflow"},
    {"local function f(a, b) table.sort({2, 1}, f) return a < b end table.sort({2, 1}, f)", SCRIPT,
     "stack overflow"},
    {"local function f() return 1 + f() end return f()", NOMEM, "not enough memory"},
    {"local function nest(n) if n == 0 then return 0 end "
     "return coroutine.wrap(nest)(n - 1) + 1 end return nest(10000)",
     SCRIPT, "stack overflow"},
    {"return load(('('):rep(1e6))", OK, NULL}, /* result checked below: nil + message */
    /* coroutine tricks */
    {"return coroutine.close(coroutine.running())", SCRIPT, "cannot close a running coroutine"},
    {"local main = coroutine.running() return coroutine.wrap(function() "
     "return coroutine.close(main) end)()",
     SCRIPT, "cannot close a normal coroutine"},
    {"local co = coroutine.create(function() end) coroutine.resume(co) "
     "return coroutine.resume(co)",
     OK, "false, \"cannot resume dead coroutine\""},
    {"return coroutine.resume(coroutine.running())", OK,
     "false, \"cannot resume non-suspended coroutine\""},
    {"return coroutine.wrap(function() return coroutine.resume(coroutine.running()) end)()", OK,
     "false, \"cannot resume non-suspended coroutine\""},
    {"local co = coroutine.create(error) coroutine.resume(co, 'x') return coroutine.close(co)", OK,
     "false, \"x\""},
    {"local co = coroutine.wrap(function() return pcall(coroutine.yield, 1) end) "
     "return co(), co(2)",
     OK, "1, true, 2"},
    {"coroutine.yield()", SCRIPT, "attempt to yield from outside a coroutine"},
    {"coroutine.wrap(function() table.sort({1, 2, 3}, function(a, b) coroutine.yield() "
     "return a < b end) end)()",
     SCRIPT, "attempt to yield across a C-call boundary"},
    {"local t = setmetatable({}, {__index = coroutine.wrap(function(t, k) "
     "while true do t, k = coroutine.yield(k .. '!') end end)}) return t.a, t.b",
     OK, "\"a!\", \"b!\""},
    {"local f f = coroutine.wrap(function() f() end) f()", SCRIPT,
     "cannot resume non-suspended coroutine"},
    {"local co = coroutine.wrap(function() error(setmetatable({}, {__tostring = "
     "function() while true do end end})) end) co()",
     SCRIPT, "error object is a table value"},
    /* load: crafted readers and environments */
    {"local f, e = load(function() return {} end) return f, e:match('^[^\\n]*')", OK,
     "nil, \"reader function must return a string\""},
    {"local f, e = load(os.date) return f == nil, type(e)", OK, "true, \"string\""},
    {"local f, e = load(string.gmatch(('; '):rep(1000), '.')) return type(f)", OK, "\"function\""},
    {"return coroutine.wrap(function() return load(coroutine.yield) end)()", OK,
     "nil, \"attempt to yield across a C-call boundary\""},
    {"return load('return x', 'n', 't', setmetatable({}, {__index = function(_, k) "
     "return k end}))()",
     OK, "\"x\""},
    {"return load('return _ENV', 'n', 't', nil)()", OK, "nil"},
    {"return load('return string', 'n', 'bt')() == string", OK, "true"},
    /* hostile error objects: the host formats none of them with Lua code */
    {"error(setmetatable({}, {__tostring = function() while true do end end}))", SCRIPT,
     "error object is a table value"},
    {"error(setmetatable({}, {__index = function() while true do end end, "
     "__pairs = function() while true do end end}))",
     SCRIPT, "error object is a table value"},
    {"local t = {} t.self = t t[t] = t error(t)", SCRIPT, "error object is a table value"},
    {"error(coroutine.create(print))", SCRIPT, "error object is a thread value"},
    {"error()", SCRIPT, "error object is a nil value"},
    {"error(('x'):rep(2^20))", SCRIPT, "xxxxxxxx"},
    /* print: tostring runs Lua code, which the hook reaches; errors are clean */
    {"print(setmetatable({}, {__tostring = function() error('boom') end}))", SCRIPT, "boom"},
    {"print(setmetatable({}, {__tostring = function() return {} end}))", SCRIPT,
     "'__tostring' must return a string"},
    {"print(setmetatable({}, {__name = setmetatable({}, {__tostring = function() "
     "while true do end end})})) return 1",
     OK, "1"},
    /* hostile results: copied raw, no metamethod runs; limits hold */
    {"return setmetatable({a = 1}, {__pairs = function() while true do end end, "
     "__index = function() while true do end end, __len = function() while true do end end})",
     OK, "{a = 1}"},
    {"return print", ENCODE, "cannot copy the results"},
    {"return coroutine.create(print)", ENCODE, "cannot copy the results"},
    {"return {f = function() end}", ENCODE, "cannot copy the results"},
    {"local s = ('x'):rep(2^20) local t = {} for i = 1, 8 do t[i] = s end return t", ENCODE,
     "cannot copy the results"},
    {"local t = {} for i = 1, 300 do t = {t} end return t", ENCODE, "cannot copy the results"},
    /* os */
    {"return #os.date(('%Y'):rep(100000))", OK, "400000"},
    {"return os.date('%Ez')", SCRIPT, "invalid conversion specifier"},
    {"return os.date('%')", SCRIPT, "invalid conversion specifier"},
    {"return os.date('*t', 2^60)", SCRIPT, "cannot be represented"},
    {"return os.time({year = 2^40, month = 1, day = 1})", SCRIPT, "field 'year' is out-of-bound"},
    {"return os.time({year = 'x', month = 1, day = 1})", SCRIPT, "field 'year'"},
    {"return os.time({})", SCRIPT, "field 'year' missing in date table"},
    /* the proxies, raw */
    {"return rawlen(string), rawget(string, 'rep'), next(string), rawequal(string, string)", OK,
     "0, nil, nil, true"},
    {"return rawlen(interp), getmetatable(interp), rawget(interp, 'sleep')", OK, "0, false, nil"},
    {"rawset(interp, 'x', 1)", SCRIPT, "read-only"},
    {"interp.channel = nil", SCRIPT, "read-only"},
    {"return ('ab'):rep(2), ('x').rep('y', 2)", OK, "\"abab\", \"yy\""},
    {"return getmetatable('').__index.rep == string.rep", OK, "true"},
    /* metatables: __gc only at setmetatable time, read raw */
    {"return getmetatable(setmetatable({}, setmetatable({}, {__index = function() "
     "error('ran') end}))) ~= nil",
     OK, "true"},
    {"local mt = {} setmetatable(mt, {__index = {__gc = print}}) "
     "return getmetatable(setmetatable({}, mt)) == mt",
     OK, "true"},
    {"return setmetatable({}, {__gc = false})", SCRIPT, "__gc metamethods are not allowed"},
    {"local w = setmetatable({}, {__mode = 'k'}) w[{}] = 1 return next(w) ~= nil", OK, "true"},
    {"return collectgarbage('step')", SCRIPT, "only \"count\""},
    {"return ('abc'):gsub('%w', setmetatable({}, {__index = function(_, c) return c:upper() "
     "end}))",
     OK, "\"ABC\", 3"},
    {"return ('abc'):gsub('(%w)(%w)', setmetatable({a = 'X'}, {}), 1)", OK, "\"Xc\", 1"},
    {"return ('abc'):gsub('%w', setmetatable({}, {__index = function() return {} end}))", SCRIPT,
     "invalid replacement value (a table)"},
    {"return interp.channel('x', 2^28)", SCRIPT, "capacity above 65536 in the sandbox"},
    {"return interp.channel('x', 16)", SCRIPT, "this state belongs to no pool"},
    {"return interp.sleep(-1)", SCRIPT, "non-negative"},
    {"return interp.sleep(0/0)", SCRIPT, "non-negative"},
    {"return interp.sleep(0), interp.worker_id", OK, "nil, 7"},
};

/* Returns false (after printing why) when the attack's outcome is not the expected one. */
static bool check_attack(fixture *f, const attack *a)
{
    interp_outcome o;
    fx_src(f, a->src, NULL, &o);
    bool ok = true;
    if (a->status == OK && a->text) {
        const char *got = fx_text(&o);
        if (strcmp(got, a->text) != 0) {
            print_error("attack `%s`: expected %s, got %s\n", a->src, a->text, got);
            ok = false;
        }
    } else if (a->status == OK) {
        if (o.status != OK) {
            print_error("attack `%s`: expected success, got %d: %s\n", a->src, o.status, o.error);
            ok = false;
        }
    } else if (o.status != a->status || !o.error || !strstr(o.error, a->text)) {
        print_error("attack `%s`: expected status %d with \"%s\", got %d: %.300s\n", a->src,
                    a->status, a->text, o.status, o.error ? o.error : fx_text(&o));
        ok = false;
    }
    interp__outcome_clear(&o);
    /* the same state runs an ordinary task afterwards, hook-free */
    fx_expect(f, "local s = 0 for i = 1, 1000 do s = s + i end return s, x", "500500, nil");
    assert_null(lua_gethook(interp__state_lua(f->s)));
    return ok;
}

static void open_limited(fixture *f)
{
    interp_config cfg = {
        .sandbox = INTERP_SANDBOX_SAFE, .memory_limit = LIMIT, .msg_opts = {.max_size = 4 << 20}};
    fx_open_cfg(f, &cfg);
}

static void attacks_end_cleanly(void **st)
{
    (void)st;
    fixture f;
    open_limited(&f);
    size_t n = sizeof attacks / sizeof attacks[0], bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !check_attack(&f, &attacks[i]);
    assert_int_equal(bad, 0);
    printf("# %zu attacks ended cleanly\n", n);
    fx_close(&f);
}

/* Task A tries to leave something behind; task B, on the same state, must not see it. */
typedef struct poison {
    const char *poison;
    const char *check;
    const char *check_result;
} poison;

static const poison poisons[] = {
    /* the real globals through ro_next on the environment (now refused) */
    {"local rn = pairs(string) local k, v repeat k, v = rn(_ENV, k) until k == nil or k == '_G' "
     "v.leaked = 'poison' v.print = nil",
     "return leaked, type(print)", "nil, \"function\""},
    /* the real globals through the environment's __index once the task's own _G is gone */
    {"_G = nil _G.leaked = 'poison'", "return leaked", "nil"},
    {"_ENV._G = nil local G = _G G.print = nil", "return type(print)", "\"function\""},
    {"_G = nil local t = {} for k in pairs(_G) do t[#t + 1] = k end", "return _G == _ENV", "true"},
    {"math.randomseed(42)",
     "return math.random(1 << 40) ~= (function() "
     "math.randomseed(42) return math.random(1 << 40) end)()",
     "true"},
    {"table.insert = nil", "return type(table.insert)", "\"function\""},
    {"pcall(table.move, {}, 1, 3, 1, table)", "return type(table[1])", "\"nil\""},
    {"pcall(table.insert, string, 'x')", "return rawlen(string), string[1]", "0, nil"},
    {"pcall(table.remove, math)", "return type(math.pi)", "\"number\""},
    {"pcall(table.sort, coroutine)", "return type(coroutine.wrap)", "\"function\""},
    {"rawset(_ENV, 'x', 1) load('y = 2')()", "return x, y", "nil, nil"},
};

static void attacks_leave_nothing_behind(void **st)
{
    (void)st;
    fixture f;
    open_limited(&f);
    for (size_t i = 0; i < sizeof poisons / sizeof poisons[0]; i++) {
        interp_outcome o;
        fx_src(&f, poisons[i].poison, NULL, &o);
        interp__outcome_clear(&o);
        fx_expect(&f, poisons[i].check, poisons[i].check_result);
    }
    fx_close(&f);
}

/* Two tasks draw different numbers (each starts from a fresh seed). */
static void attacks_random_is_reseeded_per_task(void **st)
{
    (void)st;
    fixture f;
    open_limited(&f);
    interp_outcome a, b;
    assert_int_equal(fx_src(&f, "return math.random(1 << 50)", NULL, &a), INTERP_OK);
    assert_int_equal(fx_src(&f, "return math.random(1 << 50)", NULL, &b), INTERP_OK);
    char *ta = NULL, *tb = NULL;
    assert_int_equal(interp_msg_to_text(a.result, &ta), INTERP_OK);
    assert_int_equal(interp_msg_to_text(b.result, &tb), INTERP_OK);
    assert_string_not_equal(ta, tb);
    free(ta);
    free(tb);
    interp__outcome_clear(&a);
    interp__outcome_clear(&b);
    fx_close(&f);
}

/* A metatable that gets __gc after setmetatable marks nothing for finalization: no finalizer
 * runs, at a full collection or at lua_close. */
static void attacks_late_gc_field_never_runs(void **st)
{
    (void)st;
    fixture f;
    open_limited(&f);
    fx_expect(&f,
              "local mt = {} local t = setmetatable({}, mt) mt.__gc = function() "
              "print('finalized') while true do end end "
              "local mt2 = {__index = {__gc = function() print('finalized') end}} "
              "setmetatable({}, mt2) return 1",
              "1");
    lua_gc(interp__state_lua(f.s), LUA_GCCOLLECT, 0);
    fx_expect(&f, "return collectgarbage('count') > 0", "true");
    assert_int_equal(f.out.n, 0);
    interp__state_destroy(f.s); /* lua_close runs pending finalizers: none */
    f.s = NULL;
    assert_int_equal(f.out.n, 0);
    fx_close(&f);
}

/* ---- attacks that end only by their deadline, in a sandboxed pool -------------------------- */

static const char *const hangs[] = {
    /* C loops over a range the script chooses (no allocation, no Lua code) */
    "table.move({}, 1, 1e15, 1)",
    "table.move({}, 1, 1e15, 2, {})",
    "table.remove(setmetatable({}, {__len = function() return math.maxinteger end}), 1)",
    "table.insert(setmetatable({}, {__len = function() return math.maxinteger - 1 end}), 1, 1)",
    /* C loops calling C functions back */
    "table.concat(setmetatable({}, {__index = table.concat}), '', 1, 1e15)",
    "table.sort(setmetatable({}, {__len = function() return 2^31 - 2 end}), tonumber)",
    "local mt = {__len = function() return 2^31 - 2 end, __lt = rawequal} "
    "mt.__index = assert table.sort(setmetatable({}, mt))",
    "string.gsub(('x'):rep(2^23), '', tonumber) while true do end",
    "string.gsub(('x'):rep(2^23), '', setmetatable({}, {__index = rawlen})) while true do end",
    "print(('\\n'):rep(2^22)) while true do end", /* 4 M lines, a flushed write each */
    /* Lua callbacks inside C (the hook reaches them) */
    "load(function() while true do end end) while true do end",
    "while true do load(function() return ' ' end) end", /* each load ends at max_chunk_size */
    "os.time(setmetatable({}, {__index = function() while true do end end}))",
    "string.format('%s', setmetatable({}, {__tostring = function() while true do end end}))",
    "tostring(setmetatable({}, {__name = 'x', __tostring = function() while true do end end}))",
    "local t = setmetatable({}, {__index = coroutine.wrap(function() while true do end end)}) "
    "return t.x",
    "local co = coroutine.wrap(function() while true do pcall(coroutine.yield) end end) "
    "local t = setmetatable({}, {__concat = function() while true do co() end end}) return t .. t",
    "table.sort({3, 1, 2}, function() while true do end end)",
    "local t = setmetatable({}, {__close = function() while true do end end}) "
    "do local x <close> = t end",
    "while true do pcall(table.move, {}, 1, 1e15, 1) end",
    "while true do pcall(string.rep, '', math.maxinteger) end",
};

typedef struct hang_run {
    interp_future *fu;
    double started;
} hang_run;

/* A sink as slow as stdout's: a write and a flush per line (to /dev/null). */
static void devnull_sink(void *ud, int worker_id, const char *line, size_t len)
{
    (void)worker_id;
    FILE *f = ud;
    fwrite(line, 1, len, f);
    putc('\n', f);
    fflush(f);
}

static void tweak_attack_pool(interp_pool_options *o, captured *sink)
{
    o->workers = 2;
    o->sandbox = INTERP_SANDBOX_SAFE;
    o->memory_limit = LIMIT;
    o->task_timeout = 0.2;
    o->cancel_grace = 0.05;
    o->stuck_grace = 20; /* an abandonment (a door still open) shows in workers_abandoned */
    o->print = capture_sink;
    o->print_ud = sink;
}

static interp_pool *attack_pool(captured *sink, size_t stack)
{
    interp_pool_options o = interp_pool_defaults();
    tweak_attack_pool(&o, sink);
    o.thread_stack_size = stack;
    interp_pool *p = NULL;
    char *err = NULL;
    if (interp_pool_create(&p, &o, &err) != INTERP_OK)
        fail_msg("pool create: %s", err ? err : "");
    return p;
}

static interp_future *submit_src(interp_pool *p, const char *src)
{
    interp_task t = {.fn = {.kind = INTERP_FN_SOURCE, .text = src}};
    interp_future *fu = NULL;
    assert_int_equal(interp_pool_submit_task(p, &t, INTERP_FOREVER, &fu), INTERP_OK);
    return fu;
}

static void attacks_hangs_end_by_the_deadline(void **st)
{
    (void)st;
    captured sink = {.n = 0};
    pthread_mutex_init(&sink.mu, NULL);
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    interp_pool_options o = interp_pool_defaults();
    tweak_attack_pool(&o, &sink);
    o.print = devnull_sink;
    o.print_ud = devnull;
    interp_pool *p = NULL;
    char *err = NULL;
    if (interp_pool_create(&p, &o, &err) != INTERP_OK)
        fail_msg("pool create: %s", err ? err : "");
    size_t n = sizeof hangs / sizeof hangs[0];
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double t0 = interp__now();
        interp_future *fu = submit_src(p, hangs[i]);
        int rc = interp_future_result(fu, INTERP_FOREVER, NULL);
        double took = interp__now() - t0;
        if (took > worst)
            worst = took;
        if (getenv("INTERP_TEST_VERBOSE"))
            printf("# %.3f s: %s\n", took, hangs[i]);
        if (rc != INTERP_ERR_TIMEOUT)
            fail_msg("hang `%s`: expected a timeout, got %d: %s", hangs[i], rc,
                     interp_future_error(fu) ? interp_future_error(fu) : "");
        interp_future_release(fu);
        interp_pool_stats s;
        assert_int_equal(interp_pool_get_stats(p, &s), INTERP_OK);
        if (s.workers_abandoned != 0)
            fail_msg("hang `%s`: its worker had to be abandoned (stuck in C)", hangs[i]);
    }
    /* the workers still run ordinary tasks; a channel of a sane capacity is there */
    interp_future *fu = submit_src(p, "local c = interp.channel('sb', 100) c:send(41) "
                                      "return c:recv() + 1");
    const interp_msg *r41 = NULL;
    assert_int_equal(interp_future_result(fu, INTERP_FOREVER, &r41), INTERP_OK);
    char *t41 = NULL;
    assert_int_equal(interp_msg_to_text(r41, &t41), INTERP_OK);
    assert_string_equal(t41, "42");
    free(t41);
    interp_future_release(fu);
    fu = submit_src(p, "return interp.channel('huge', 2^28)");
    assert_int_equal(interp_future_result(fu, INTERP_FOREVER, NULL), INTERP_ERR_SCRIPT);
    assert_non_null(strstr(interp_future_error(fu), "capacity above 65536"));
    interp_future_release(fu);
    fu = submit_src(p, "return 6 * 7");
    const interp_msg *res = NULL;
    assert_int_equal(interp_future_result(fu, INTERP_FOREVER, &res), INTERP_OK);
    char *text = NULL;
    assert_int_equal(interp_msg_to_text(res, &text), INTERP_OK);
    assert_string_equal(text, "42");
    free(text);
    interp_future_release(fu);
    printf("# %zu hangs ended by their 0.2 s deadline, slowest after %.3f s\n", n, worst);
    interp_pool_destroy(p);
    fclose(devnull);
    pthread_mutex_destroy(&sink.mu);
}

/* Deep C recursion on a worker thread's own stack, of the default size and of the pool's
 * floor (256 KiB): clean errors, never SIGSEGV. Lua stops C recursion at 200 levels whatever
 * they cost; string.format through __tostring needed ~400 KiB before the sandbox kept a
 * reserve (interp/sandbox_bounds.c, interp__sandbox_check_c_stack). */
static const char *const deep[] = {
    "local t = setmetatable({}, {__index = function(t, k) return t[k .. 'x'] end}) return t.a",
    "local mt = {} mt.__tostring = tostring return tostring(setmetatable({}, mt))",
    "local mt = {} mt.__tostring = function(o) return string.format('%s', o) end "
    "return tostring(setmetatable({}, mt))",
    "local function f(s) return (s:gsub('.', f)) end return f('ab')",
    "local function f(a, b) table.sort({2, 1}, f) return a < b end table.sort({2, 1}, f)",
    "local function f(t) return table.concat(setmetatable({}, {__index = function() "
    "return f() end, __len = function() return 1 end})) end return f()",
    "local function nest(n) if n == 0 then return 0 end "
    "return coroutine.wrap(nest)(n - 1) + 1 end return nest(10000)",
    "local function f() return assert(load(function() return f() end)) end return f()",
    "local mt = {} mt.__close = function(o) local y <close> = setmetatable({}, mt) end "
    "do local x <close> = setmetatable({}, mt) end",
    "local function f(s) return (('x'):rep(2):gsub('x', function() return f() end)) end "
    "return f()",
    "local function f() return select('#', table.unpack(setmetatable({}, {__index = "
    "function() return f() end}), 1, 2)) end return f()",
};

static void run_deep(size_t stack)
{
    captured sink = {.n = 0};
    pthread_mutex_init(&sink.mu, NULL);
    interp_pool *p = attack_pool(&sink, stack);
    for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
        if (getenv("INTERP_TEST_VERBOSE")) {
            printf("# deep (stack %zu): %s\n", stack, deep[i]);
            fflush(stdout);
        }
        interp_future *fu = submit_src(p, deep[i]);
        int rc = interp_future_result(fu, INTERP_FOREVER, NULL);
        const char *e = interp_future_error(fu);
        if (rc != INTERP_ERR_SCRIPT || !e || !strstr(e, "stack overflow"))
            fail_msg("deep `%s`: expected a stack overflow error, got %d: %.300s", deep[i], rc,
                     e ? e : "");
        interp_future_release(fu);
    }
    interp_pool_destroy(p);
    pthread_mutex_destroy(&sink.mu);
}

static void attacks_deep_recursion_on_default_stacks(void **st)
{
    (void)st;
    run_deep(0);
}

static void attacks_deep_recursion_on_the_smallest_stacks(void **st)
{
    (void)st;
    run_deep((size_t)256 << 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attacks_end_cleanly),
        cmocka_unit_test(attacks_leave_nothing_behind),
        cmocka_unit_test(attacks_random_is_reseeded_per_task),
        cmocka_unit_test(attacks_late_gc_field_never_runs),
        cmocka_unit_test(attacks_hangs_end_by_the_deadline),
        cmocka_unit_test(attacks_deep_recursion_on_default_stacks),
        cmocka_unit_test(attacks_deep_recursion_on_the_smallest_stacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
