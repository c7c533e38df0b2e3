/* test_ctx_grant_rights.c - direction-limited channel grants (interp_ctx_grant_channel_rights):
 * a plugin granted a shared request queue send-only cannot take other plugins' requests from
 * it (recv and select raise), one granted its replies receive-only cannot send on them; a
 * grant without rights is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ctx_util.h"

/* Run src in c; its status, and the first line of its error in why. */
static int exec_in(interp_ctx *c, const char *src, char *why, size_t n)
{
    interp_future *f;
    assert_int_equal(interp_ctx_exec(c, src, strlen(src), &f), INTERP_OK);
    return util_outcome(f, why, n);
}

static void test_send_only_and_receive_only(void **state)
{
    (void)state;
    interp_pool *p = util_pool(1, NULL);
    interp_chan *requests, *replies;
    assert_int_equal(interp_pool_channel(p, "requests", 8, &requests), INTERP_OK);
    assert_int_equal(interp_pool_channel(p, "replies", 8, &replies), INTERP_OK);
    interp_ctx *a = ctx_new(p, "plugin_a", INTERP_SANDBOX_SAFE, "x = 0");
    interp_ctx *b = ctx_new(p, "plugin_b", INTERP_SANDBOX_SAFE, "x = 0");
    assert_int_equal(interp_ctx_grant_channel_rights(a, "req", requests, INTERP_CHAN_SEND),
                     INTERP_OK);
    assert_int_equal(interp_ctx_grant_channel_rights(b, "req", requests, INTERP_CHAN_SEND),
                     INTERP_OK);
    assert_int_equal(interp_ctx_grant_channel_rights(a, "rep", replies, INTERP_CHAN_RECV),
                     INTERP_OK);
    char why[512];
    /* b queues a request; a may add its own but not take b's */
    assert_int_equal(exec_in(b, "interp.channel('req'):send('from b')", why, sizeof why),
                     INTERP_OK);
    assert_int_equal(exec_in(a, "interp.channel('req'):send('from a')", why, sizeof why),
                     INTERP_OK);
    assert_int_not_equal(exec_in(a, "return interp.channel('req'):recv(0)", why, sizeof why),
                         INTERP_OK);
    assert_non_null(strstr(why, "recv: this channel was granted for sending only"));
    assert_int_not_equal(
        exec_in(a, "return interp.select({interp.channel('req')}, 0)", why, sizeof why), INTERP_OK);
    assert_non_null(strstr(why, "granted for sending only"));
    assert_int_equal(interp_chan_len(requests), 2); /* nothing was taken */
    /* a's replies: received, never forged */
    assert_int_not_equal(exec_in(a, "interp.channel('rep'):send('forged')", why, sizeof why),
                         INTERP_OK);
    assert_non_null(strstr(why, "send: this channel was granted for receiving only"));
    assert_int_equal(interp_chan_send(replies, interp_msg_int(7), 1.0), INTERP_OK);
    assert_int_equal(exec_in(a,
                             "local ch = interp.channel('rep') assert(ch:len() == 1) "
                             "assert(ch:recv(1) == 7) "
                             "local c, v = interp.select({ch}, 0) assert(c == nil)",
                             why, sizeof why),
                     INTERP_OK);
    /* a grant replaced with both rights gives both */
    assert_int_equal(interp_ctx_grant_channel(a, "req", requests), INTERP_OK);
    assert_int_equal(
        exec_in(a, "assert(interp.channel('req'):recv(0) == 'from b')", why, sizeof why),
        INTERP_OK);
    assert_int_equal(interp_ctx_grant_channel_rights(a, "x", requests, 0), INTERP_ERR_INVALID);
    assert_int_equal(interp_ctx_grant_channel_rights(a, "x", requests, 4), INTERP_ERR_INVALID);
    interp_ctx_close(a);
    interp_ctx_close(b);
    interp_chan_release(requests);
    interp_chan_release(replies);
    interp_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_only_and_receive_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
