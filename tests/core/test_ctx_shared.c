/* test_ctx_shared.c - shared values (interp.shared) follow the reach rule of channels and
 * contexts: a sandboxed context reads and registers only the pool's names its host granted
 * it (interp_ctx_grant_shared), so a plugin can neither read nor shadow another's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctx_util.h"
#include "interp_frozen.h"

/* The pool's value under name: its field x, or INT64_MIN when none is registered. */
static int64_t shared_x(interp_pool *p, const char *name)
{
    interp_frozen *f = NULL;
    assert_int_equal(interp_pool_shared(p, name, &f), INTERP_OK);
    if (!f)
        return INT64_MIN;
    interp_msg_value v;
    int64_t x = interp_frozen_getfield(f, "x", 1, &v) && v.type == INTERP_MSG_INT ? v.as.i : -1;
    interp_frozen_release(f);
    return x;
}

static void share_x(interp_pool *p, const char *name, int64_t x)
{
    interp_msg *m = NULL;
    assert_int_equal(interp_msg_pack(&m, "{sI}", "x", x), INTERP_OK);
    interp_frozen *f = NULL;
    assert_int_equal(interp_frozen_from_msg(m, 0, &f), INTERP_OK);
    interp_msg_free(m);
    assert_int_equal(interp_pool_share(p, name, f), INTERP_OK);
    interp_frozen_release(f);
}

static void test_plugin_cannot_read_or_shadow_another(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    share_x(p, "host.config", 7);
    interp_ctx *a = ctx_new(p, "plugin_a", INTERP_SANDBOX_SAFE, "x = 0");
    interp_ctx *b = ctx_new(p, "plugin_b", INTERP_SANDBOX_SAFE, "x = 0");
    /* a reads the host's config as "config" and publishes its own data as "out" */
    assert_int_equal(interp_ctx_grant_shared(a, "config", "host.config", INTERP_SHARED_READ),
                     INTERP_OK);
    assert_int_equal(interp_ctx_grant_shared(a, "out", "a.data", INTERP_SHARED_REGISTER),
                     INTERP_OK);

    /* b, granted nothing: every name reads nil, the pool's and a's own local ones */
    assert_int_equal(run_int(b, "for _, n in ipairs{'host.config', 'a.data', 'config', 'out'} do\n"
                                "  if interp.shared(n) ~= nil then return 0 end\n"
                                "end\n"
                                "return 1"),
                     1);
    /* b cannot squat the name a will publish under, nor overwrite the host's */
    assert_int_equal(run_int(b, "local n = 0\n"
                                "for _, k in ipairs{'a.data', 'host.config', 'out'} do\n"
                                "  local ok, e = pcall(interp.shared, k, {x = 666})\n"
                                "  if not ok and e:find('not granted') then n = n + 1 end\n"
                                "end\n"
                                "return n"),
                     3);
    assert_int_equal(shared_x(p, "a.data"), INT64_MIN);
    assert_int_equal(shared_x(p, "host.config"), 7);

    /* a: what was granted works, by the local names, and only with the rights given */
    assert_int_equal(run_int(a, "return interp.shared('config').x"), 7);
    assert_int_equal(run_int(a, "return interp.shared('out', {x = 11}).x"), 11);
    assert_int_equal(shared_x(p, "a.data"), 11);
    assert_int_equal(run_int(a, "return interp.shared('out') == nil and 1 or 0"), 1); /* no READ */
    assert_int_equal(run_int(a, "local ok, e = pcall(interp.shared, 'config', {x = 1})\n"
                                "return not ok and e:find('read%-only') and 1 or 0"),
                     1);
    /* a registers once, as any Lua code: no replacing its value either */
    assert_int_equal(run_int(a, "return pcall(interp.shared, 'out', {x = 12}) and 0 or 1"), 1);
    assert_int_equal(shared_x(p, "a.data"), 11);
    /* a read sees the host's later replacement */
    share_x(p, "host.config", 8);
    assert_int_equal(run_int(a, "return interp.shared('config').x"), 8);

    /* b, granted a's data read-only under its own name, reads it; still cannot write it */
    assert_int_equal(interp_ctx_grant_shared(b, "peer", "a.data", INTERP_SHARED_READ), INTERP_OK);
    assert_int_equal(run_int(b, "return interp.shared('peer').x"), 11);
    assert_int_equal(run_int(b, "return pcall(interp.shared, 'peer', {x = 1}) and 0 or 1"), 1);
    /* shared grants are a namespace apart: a channel grant of the same name leaves them */
    interp_chan *ch = NULL;
    assert_int_equal(interp_chan_create(4, 0, &ch), INTERP_OK);
    assert_int_equal(interp_ctx_grant_channel(b, "peer", ch), INTERP_OK);
    assert_int_equal(run_int(b, "return interp.shared('peer').x"), 11);
    interp_chan_release(ch);

    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_pool_destroy(p);
}

static void test_full_profile_and_tasks(void **state)
{
    (void)state;
    interp_pool *p = util_pool(2, NULL);
    share_x(p, "v", 1);
    share_x(p, "w", 2);
    interp_ctx *full = ctx_new(p, "full", INTERP_SANDBOX_NONE, "x = 0");
    /* grants first (v stands for w here), then the pool's names */
    assert_int_equal(interp_ctx_grant_shared(full, "v", "w", INTERP_SHARED_RW), INTERP_OK);
    assert_int_equal(run_int(full, "return interp.shared('v').x * 10 + interp.shared('w').x"), 22);
    assert_int_equal(run_int(full, "interp.shared('mine', {x = 5}) return 1"), 1);
    assert_int_equal(shared_x(p, "mine"), 5);
    /* anonymous tasks reach the pool's names, as before */
    int64_t r = 0;
    assert_int_equal(task_run(p, "return interp.shared('mine').x + interp.shared('v').x", &r),
                     INTERP_OK);
    assert_int_equal(r, 6);
    /* arguments are checked; closed contexts refuse */
    assert_int_equal(interp_ctx_grant_shared(full, "", "w", INTERP_SHARED_READ),
                     INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_grant_shared(full, "a", "", INTERP_SHARED_READ),
                     INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_grant_shared(full, "a", "w", 0), INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_grant_shared(full, "a", "w", 4), INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_grant_shared(NULL, "a", "w", 1), INTERP_ERR_INVALID);
    char big[INTERP_SHARED_MAX_NAME + 2];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(interp_ctx_grant_shared(full, big, "w", 1), INTERP_ERR_INVALID);
    big[INTERP_SHARED_MAX_NAME] = '\0'; /* 255 bytes: the longest */
    assert_int_equal(interp_ctx_grant_shared(full, big, NULL, 1), INTERP_OK);
    interp_ctx_close(full);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_cannot_read_or_shadow_another),
        cmocka_unit_test(test_full_profile_and_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
