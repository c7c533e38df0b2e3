/* consumer.c - the smallest host of an installed interp_pool: map over a pool and check. */
#include <interp_pool.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2;
    o.init_source = "function square(x) return x * x end";
    interp_pool *pool;
    char *err = NULL;
    if (interp_pool_create(&pool, &o, &err) != INTERP_OK) {
        fprintf(stderr, "consumer: %s\n", err ? err : "cannot create the pool");
        free(err);
        return 1;
    }
    enum { N = 100 };
    interp_msg *in[N], *out[N];
    for (int i = 0; i < N; i++)
        in[i] = interp_msg_int(i);
    int rc = interp_pool_map(pool, "square", N, (const interp_msg *const *)in, out, NULL);
    int64_t sum = 0;
    for (int i = 0; i < N && rc == INTERP_OK; i++) {
        interp_msg_iter it = interp_msg_iter_init(out[i]);
        interp_msg_value v;
        if (interp_msg_next(&it, &v) && v.type == INTERP_MSG_INT)
            sum += v.as.i;
    }
    for (int i = 0; i < N; i++) {
        interp_msg_free(in[i]);
        if (rc == INTERP_OK)
            interp_msg_free(out[i]);
    }
    interp_pool_destroy(pool);
    if (rc != INTERP_OK || sum != 328350) {
        fprintf(stderr, "consumer: map gave %s, sum %lld\n", interp_strerror(rc), (long long)sum);
        return 1;
    }
    printf("consumer: ok (interp_pool %s, built with %s)\n", interp_pool_version(),
           INTERP_POOL_VERSION_STRING);
    return 0;
}
