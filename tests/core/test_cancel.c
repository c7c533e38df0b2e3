/* test_cancel.c - interrupting running tasks: deadlines and cancels from another thread end
 * every evasion (pcall loops, coroutines, xpcall handlers, __close handlers), cleanup gets its
 * grace, no hook stays behind, and the state keeps working.
 *
 * Ordering: the task calls `started()` (a C function of the test) which posts a semaphore;
 * the interrupting thread waits for it, then (for deadlines) waits out the deadline, then calls
 * interp__state_interrupt. The wall-clock figures are printed, and asserted only with a bound
 * generous enough for a loaded machine; the exact figures are the benchmark's job. */
#include "interp_test_util.h"

#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

typedef struct interrupter {
    interp_state *s;
    uint64_t task;
    int reason;
    double delay; /* seconds after started() */
    sem_t started;
    double fired_at;
    atomic_bool done; /* the call has returned: stop re-arming */
    pthread_t th;
} interrupter;

static int l_started(lua_State *L)
{
    interrupter *in = lua_touserdata(L, lua_upvalueindex(1));
    sem_post(&in->started);
    return 0;
}

static void *interrupter_main(void *p)
{
    interrupter *in = p;
    sem_wait(&in->started);
    if (in->delay > 0) {
        struct timespec ts = {.tv_sec = (time_t)in->delay,
                              .tv_nsec = (long)((in->delay - (time_t)in->delay) * 1e9)};
        nanosleep(&ts, NULL); /* the deadline itself, not an ordering device */
    }
    in->fired_at = interp__now();
    interp__state_interrupt(in->s, in->task, in->reason);
    /* as the pool's watchdog does: re-arm until the run ends (a task may take the hook off) */
    while (!atomic_load(&in->done)) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(INTERP__IRQ_REARM_S * 1e9)};
        nanosleep(&ts, NULL);
        interp__state_rearm(in->s, in->task);
    }
    return NULL;
}

/* Run src as task `task` while another thread interrupts it `delay` s after started(). Returns
 * the status; *stop_s is the time from the interrupt to the end of the call. */
static int run_interrupted(fixture *f, const char *src, int reason, double delay, interp_outcome *o,
                           double *stop_s)
{
    interrupter in = {.s = f->s, .task = ++f->task, .reason = reason, .delay = delay};
    sem_init(&in.started, 0, 0);
    lua_State *L = interp__state_lua(f->s);
    lua_pushlightuserdata(L, &in);
    lua_pushcclosure(L, l_started, 1);
    lua_setglobal(L, "started");
    pthread_create(&in.th, NULL, interrupter_main, &in);
    interp_fn fn = {.kind = INTERP_FN_SOURCE, .text = src};
    int rc = interp__state_call(f->s, in.task, &fn, NULL, o);
    double end = interp__now();
    atomic_store(&in.done, true);
    pthread_join(in.th, NULL);
    sem_destroy(&in.started);
    *stop_s = end - in.fired_at;
    return rc;
}

/* After an interrupted task: no hook on the main thread, and the state runs tasks normally. */
static void assert_clean_after(fixture *f)
{
    assert_null(lua_gethook(interp__state_lua(f->s)));
    fx_expect(f, "local s = 0 for i = 1, 100000 do s = s + i end return s", "5000050000");
    assert_null(lua_gethook(interp__state_lua(f->s)));
}

static const char *const evasions[] = {
    "started() while true do end",
    "started() local i = 0 while true do i = i + 1 end",
    "started() while true do pcall(function() while true do end end) end",
    "started() while true do pcall(error, 'x') end",
    "started() coroutine.wrap(function() while true do end end)()",
    "started() coroutine.wrap(function() coroutine.wrap(function() "
    "  while true do pcall(function() while true do end end) end end)() end)()",
    "started() while true do coroutine.resume(coroutine.create(function() "
    "  while true do end end)) end",
    "started() local co = coroutine.wrap(function() while true do pcall(coroutine.yield) end end) "
    "while true do co() end",
    "started() xpcall(function() while true do end end, function() while true do end end)",
    "started() while true do xpcall(function() while true do end end, function(e) return e end) "
    "end",
    "started() while true do xpcall(error, function() while true do end end) end",
    "started() do local x <close> = setmetatable({}, {__close = function() while true do end end}) "
    "  while true do end end",
    "started() while true do pcall(function() local x <close> = setmetatable({}, "
    "  {__close = function() while true do end end}) error('e') end) end",
    "started() coroutine.wrap(function() local x <close> = setmetatable({}, "
    "  {__close = function() while true do end end}) while true do end end)()",
    "started() while true do local co = coroutine.create(function() local x <close> = "
    "  setmetatable({}, {__close = function() while true do end end}) coroutine.yield() end) "
    "  coroutine.resume(co) coroutine.close(co) end",
    "started() table.sort({3, 2, 1, 5, 4}, function(a, b) while true do end end)",
    "started() string.gsub('aaa', 'a', function() while true do end end)",
    "started() local t = setmetatable({}, {__index = function() while true do end end}) return t.x",
    "started() load('while true do end')()",
    "started() while true do pcall(interp.sleep, 100) end",
    "started() interp.sleep(1000)",
    "started() local s = '' while true do s = ('x'):rep(100) .. tostring(#s) end",
    "started() while true do pcall(function() while true do end end) "
    "  if debug then pcall(debug.sethook) end end",
    /* hooks taken off from inside a coroutine, again and again */
    "started() coroutine.wrap(function() if debug then debug.sethook(function() end, 'l') "
    "  while true do debug.sethook() end else while true do end end end)()",
    /* a C loop calling a C function: no Lua instruction runs, but every callback is a call */
    "local s = ('x'):rep(5e7) started() while true do s:gsub('.', tostring) end",
};

static void cancel_deadline_ends_every_evasion(void **st)
{
    (void)st;
    size_t n = sizeof evasions / sizeof evasions[0];
    for (int sb = 0; sb <= 1; sb++) {
        fixture f;
        fx_open(&f, (interp_sandbox)sb, NULL);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            interp_outcome o;
            double stop;
            if (getenv("INTERP_TEST_VERBOSE"))
                printf("# evasion %zu sandbox=%d\n", i, sb), fflush(stdout);
            int rc = run_interrupted(&f, evasions[i], INTERP_ERR_TIMEOUT, 0.02, &o, &stop);
            if (rc != INTERP_ERR_TIMEOUT || !o.error || !strstr(o.error, "timed out"))
                fail_msg("evasion %zu (%s) sandbox=%d: status %d, %s", i, evasions[i], sb, rc,
                         o.error ? o.error : "");
            if (stop > worst)
                worst = stop;
            assert_true(stop < 2.0);
            interp__outcome_clear(&o);
            assert_clean_after(&f);
        }
        printf("# sandbox=%d: %zu evasions, slowest stop after its deadline: %.1f ms "
               "(default grace 10 ms)\n",
               sb, n, worst * 1e3);
        fx_close(&f);
    }
}

static void cancel_plain_loop_stops_without_grace(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE, NULL);
    interp_outcome o;
    double stop;
    assert_int_equal(
        run_interrupted(&f, "started() while true do end", INTERP_ERR_CANCELLED, 0, &o, &stop),
        INTERP_ERR_CANCELLED);
    assert_non_null(strstr(o.error, "interp: task cancelled"));
    assert_non_null(strstr(o.error, "stack traceback:"));
    printf("# cancel of a plain loop took %.3f ms\n", stop * 1e3);
    assert_true(stop < 2.0);
    interp__outcome_clear(&o);
    assert_clean_after(&f);
    fx_close(&f);
}

static void cancel_well_behaved_close_handler_completes(void **st)
{
    (void)st;
    fixture f;
    /* a long grace: on a loaded machine (or under TSan) the worker may lose the CPU for tens
     * of milliseconds in the middle of its cleanup */
    interp_config cfg = {.cancel_grace = 1.0};
    fx_open_cfg(&f, &cfg);
    interp_outcome o;
    double stop;
    int rc = run_interrupted(
        &f,
        "closed = nil started() local x <close> = setmetatable({}, {__close = function() "
        "local s = 0 for i = 1, 20000 do s = s + i end closed = s end}) while true do end",
        INTERP_ERR_CANCELLED, 0.01, &o, &stop);
    assert_int_equal(rc, INTERP_ERR_CANCELLED);
    interp__outcome_clear(&o);
    fx_expect(&f, "return closed", "200010000");
    /* cleanup by the task's own error handling also runs, and the task still ends cancelled */
    rc = run_interrupted(
        &f,
        "cleaned = nil started() local ok = pcall(function() while true do end end) "
        "local s = 0 for i = 1, 20000 do s = s + i end cleaned = s return 'swallowed'",
        INTERP_ERR_CANCELLED, 0.01, &o, &stop);
    assert_int_equal(rc, INTERP_ERR_CANCELLED);
    assert_null(o.result);
    interp__outcome_clear(&o);
    fx_expect(&f, "return cleaned", "200010000");
    assert_clean_after(&f);
    fx_close(&f);
}

static void cancel_wrong_task_or_idle_state_has_no_effect(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE, NULL);
    interp__state_interrupt(f.s, 12345, INTERP_ERR_CANCELLED);  /* nothing running */
    interp__state_interrupt(f.s, f.task, INTERP_ERR_CANCELLED); /* the previous task */
    fx_expect(&f, "return 1", "1");
    assert_null(lua_gethook(interp__state_lua(f.s)));
    fx_close(&f);
}

/* An interrupt that arrives before its run has begun is kept for that run, which stops before
 * its first item; one meant for another id is forgotten once a run begins. */
static void cancel_before_the_run_begins_is_kept(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE, "function dbl(x) return x * 2 end");
    interp_fn fn = {.kind = INTERP_FN_SOURCE, .text = "return 1"};
    interp_outcome o;
    uint64_t id = ++f.task;
    interp__state_interrupt(f.s, id, INTERP_ERR_TIMEOUT);
    assert_int_equal(interp__state_call(f.s, id, &fn, NULL, &o), INTERP_ERR_TIMEOUT);
    assert_non_null(strstr(o.error, "timed out"));
    interp__outcome_clear(&o);
    assert_null(lua_gethook(interp__state_lua(f.s)));

    /* a map: no item starts; every item carries the interrupt */
    enum { N = 4 };
    interp_msg *args[N];
    interp_outcome outs[N];
    memset(outs, 0, sizeof outs);
    for (int i = 0; i < N; i++)
        args[i] = interp_msg_int(i);
    interp_fn dbl = {.kind = INTERP_FN_NAME, .text = "dbl"};
    id = ++f.task;
    interp__state_interrupt(f.s, id, INTERP_ERR_CANCELLED);
    interp__state_interrupt(f.s, id, INTERP_ERR_SHUTDOWN); /* the first reason wins */
    uint64_t items = interp__state_items(f.s);
    assert_int_equal(interp__state_map(f.s, id, &dbl, N, (const interp_msg *const *)args, outs), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(outs[i].status, INTERP_ERR_CANCELLED);
        interp__outcome_clear(&outs[i]);
    }
    assert_true(interp__state_items(f.s) - items <= 1); /* at most the first one began */

    /* pending for another id: the run that begins forgets it, and it does not come back */
    uint64_t other = f.task + 100;
    interp__state_interrupt(f.s, other, INTERP_ERR_CANCELLED);
    fx_expect(&f, "return 2", "2");
    assert_int_equal(interp__state_call(f.s, other, &fn, NULL, &o), INTERP_OK);
    interp__outcome_clear(&o);
    for (int i = 0; i < N; i++)
        interp_msg_free(args[i]);
    assert_clean_after(&f);
    fx_close(&f);
}

static void cancel_reasons_map_to_statuses(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_SAFE, NULL);
    const int reasons[] = {INTERP_ERR_CANCELLED, INTERP_ERR_TIMEOUT, INTERP_ERR_SHUTDOWN};
    for (int i = 0; i < 3; i++) {
        interp_outcome o;
        double stop;
        assert_int_equal(
            run_interrupted(&f, "started() interp.sleep(1000)", reasons[i], 0, &o, &stop),
            reasons[i]);
        interp__outcome_clear(&o);
    }
    assert_clean_after(&f);
    fx_close(&f);
}

static void cancel_stops_a_map_and_fails_the_rest(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE,
            "function work(x) if x == 3 then started() "
            "while true do end end return x end");
    interrupter in = {.s = f.s, .task = ++f.task, .reason = INTERP_ERR_CANCELLED};
    sem_init(&in.started, 0, 0);
    lua_State *L = interp__state_lua(f.s);
    lua_pushlightuserdata(L, &in);
    lua_pushcclosure(L, l_started, 1);
    lua_setglobal(L, "started");
    pthread_create(&in.th, NULL, interrupter_main, &in);
    enum { N = 6 };
    interp_msg *args[N];
    interp_outcome outs[N];
    memset(outs, 0, sizeof outs);
    for (int i = 0; i < N; i++)
        args[i] = interp_msg_int(i + 1);
    interp_fn fn = {.kind = INTERP_FN_NAME, .text = "work"};
    /* items 1 and 2 ran, item 3 was interrupted while it ran: 3 items ran */
    assert_int_equal(interp__state_map(f.s, in.task, &fn, N, (const interp_msg *const *)args, outs),
                     3);
    atomic_store(&in.done, true);
    pthread_join(in.th, NULL);
    sem_destroy(&in.started);
    for (int i = 0; i < N; i++) {
        assert_int_equal(outs[i].status, i < 2 ? INTERP_OK : INTERP_ERR_CANCELLED);
        interp__outcome_clear(&outs[i]);
        interp_msg_free(args[i]);
    }
    assert_clean_after(&f);
    fx_close(&f);
}

static void cancel_leaves_no_hook_on_coroutines(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE, NULL);
    interp_outcome o;
    double stop;
    /* a coroutine that was running when the hook was installed survives in a global */
    int rc = run_interrupted(&f,
                             "keep = coroutine.create(function() "
                             "while true do local ok = pcall(coroutine.yield) end end) "
                             "started() while true do coroutine.resume(keep) end",
                             INTERP_ERR_CANCELLED, 0, &o, &stop);
    assert_int_equal(rc, INTERP_ERR_CANCELLED);
    interp__outcome_clear(&o);
    /* if it survived (the first raise may have struck inside it instead), resuming it in a
     * later task works, and its leftover hook removes itself at its first check (within 1000
     * instructions of the coroutine) */
    fx_expect(&f,
              "local alive = coroutine.status(keep) ~= 'dead' "
              "if alive then for i = 1, 500 do assert(coroutine.resume(keep)) end end "
              "return not alive or debug.gethook(keep) == nil",
              "true");
    fx_close(&f);
}

/* Issue 12, item 5: a coroutine stopped by a cancel, kept in a table of the initializer and
 * closed by a later task, runs its looping __close handler where the hook reaches it (or not
 * at all): that later task ends within its own deadline. Once while the coroutine runs Lua
 * code (it is yielded: its hooks stay on), once inside table.sort's comparator (it cannot
 * yield: its pending <close> values are defused before the raise). */
static void cancel_killed_coroutine_closed_later_stays_reachable(void **st)
{
    (void)st;
    static const char *const bodies[] = {
        "started() while true do end",
        "started() table.sort({3, 2, 1}, function() while true do end end)",
    };
    for (int sb = 0; sb <= 1; sb++) {
        for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
            fixture f;
            fx_open(&f, (interp_sandbox)sb, "keep = {}");
            char src[512];
            snprintf(src, sizeof src,
                     "keep.co = coroutine.create(function() local x <close> = setmetatable({}, "
                     "{__close = function() while true do end end}) %s end) "
                     "coroutine.resume(keep.co) while true do end",
                     bodies[i]);
            interp_outcome o;
            double stop;
            assert_int_equal(run_interrupted(&f, src, INTERP_ERR_TIMEOUT, 0.02, &o, &stop),
                             INTERP_ERR_TIMEOUT);
            interp__outcome_clear(&o);
            int rc = run_interrupted(&f,
                                     "started() local ok, e = coroutine.close(keep.co) "
                                     "while true do end",
                                     INTERP_ERR_TIMEOUT, 0.02, &o, &stop);
            printf("# sandbox=%d body %zu: the later close ended %.1f ms after its deadline\n", sb,
                   i, stop * 1e3);
            assert_int_equal(rc, INTERP_ERR_TIMEOUT);
            assert_true(stop < 1.0);
            interp__outcome_clear(&o);
            assert_clean_after(&f);
            fx_close(&f);
        }
    }
}

/* What a task leaves for the next ones: a hook it set on the main thread ends with it (one
 * that fails every event would otherwise fail every later task), the initializer's hook stays
 * for every task, a hook set on a coroutine stays with the coroutine (as in Lua). */
static void cancel_hooks_left_by_a_task(void **st)
{
    (void)st;
    fixture f;
    fx_open(&f, INTERP_SANDBOX_NONE,
            "calls = 0 debug.sethook(function() calls = calls + 1 end, "
            "'', 100)");
    fx_expect_err(&f, "debug.sethook(function() error('stale hook') end, 'l')\nlocal x = 1",
                  INTERP_ERR_SCRIPT, "stale hook");
    fx_expect(&f, "local h, m, n = debug.gethook() return m .. n", "\"100\"");
    fx_expect(&f, "local before = calls for i = 1, 1e4 do end return calls > before", "true");
    fx_expect(&f,
              "keep = coroutine.create(function() coroutine.yield() end) "
              "debug.sethook(keep, print, 'l') return true",
              "true");
    fx_expect(&f, "return debug.gethook(keep) == print", "true");
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cancel_plain_loop_stops_without_grace),
        cmocka_unit_test(cancel_deadline_ends_every_evasion),
        cmocka_unit_test(cancel_well_behaved_close_handler_completes),
        cmocka_unit_test(cancel_wrong_task_or_idle_state_has_no_effect),
        cmocka_unit_test(cancel_before_the_run_begins_is_kept),
        cmocka_unit_test(cancel_reasons_map_to_statuses),
        cmocka_unit_test(cancel_stops_a_map_and_fails_the_rest),
        cmocka_unit_test(cancel_leaves_no_hook_on_coroutines),
        cmocka_unit_test(cancel_killed_coroutine_closed_later_stays_reachable),
        cmocka_unit_test(cancel_hooks_left_by_a_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
