/* test_msg_bigbuf.c - the block of a freed large message is kept for the next large message
 * (msg/msg_bigbuf.c); small ones are not; a trim lets every kept block go. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "msg_impl.h"

/* A message of one bin value of n bytes, built the way the encoder builds one. */
static interp_msg *big(size_t n)
{
    interp__msgbuf b = {0};
    char *p = interp__msgbuf_reserve(&b, 5 + n);
    assert_non_null(p);
    p[0] = (char)0xc6;
    p[1] = (char)(n >> 24), p[2] = (char)(n >> 16), p[3] = (char)(n >> 8), p[4] = (char)n;
    memset(p + 5, 'x', n);
    b.used = 5 + n;
    interp_msg *m = interp__msgbuf_finish(&b, 1, 0);
    assert_non_null(m);
    return m;
}

static void large_blocks_are_reused(void **st)
{
    (void)st;
    interp__bigbuf_trim();
    interp_msg *a = big(1 << 20);
    void *first = a;
    interp_msg_free(a);
    interp_msg *b = big(1 << 20); /* same size class: the kept block */
    assert_ptr_equal(b, first);
    assert_int_equal(interp_msg_size(b), 5 + (1 << 20));
    assert_int_equal(interp_msg_data(b)[5 + 12345], 'x');
    interp_msg *c = big(1 << 20); /* none kept now: a block of its own */
    assert_ptr_not_equal(c, b);
    interp_msg_free(b);
    interp_msg_free(c);
    /* a message much smaller than the kept blocks does not take one */
    interp_msg *d = big(100 << 10);
    assert_ptr_not_equal(d, first);
    assert_ptr_not_equal(d, c);
    interp_msg_free(d);
    /* a copy of a large message may take a kept block; its bytes are the original's */
    interp_msg *e = big(1 << 20);
    interp_msg *f = interp_msg_dup(e);
    assert_non_null(f);
    assert_memory_equal(interp_msg_data(f), interp_msg_data(e), interp_msg_size(e));
    interp_msg_free(e);
    interp_msg_free(f);
    interp__bigbuf_trim(); /* nothing kept after this (ASan's leak check would tell) */
}

static void bigbuf_take_refuses_small_and_put_accepts_null(void **st)
{
    (void)st;
    assert_null(interp__bigbuf_take(1000));
    interp__bigbuf_put(NULL);
    void *p = malloc(1000); /* too small to keep: freed */
    interp__bigbuf_put(p);
    interp__bigbuf_trim();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(large_blocks_are_reused),
        cmocka_unit_test(bigbuf_take_refuses_small_and_put_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
