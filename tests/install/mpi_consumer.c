/* mpi_consumer.c - the smallest host of an installed interp_pool_mpi: under mpiexec, a map over
 * the ranks, checked on the root (the other ranks serve inside the create call). */
#include <interp_mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    char *err = NULL;
    if (interp_mpi_init(&argc, &argv, &err) != INTERP_OK) {
        fprintf(stderr, "mpi consumer: %s\n", err ? err : "no MPI");
        return 1;
    }
    interp_pool_options o = interp_pool_defaults();
    o.workers = 1;
    o.init_source = "function square(x) return x * x end";
    interp_pool *pool = NULL;
    int rc = interp_mpi_pool_create(&pool, MPI_COMM_WORLD, &o, NULL, &err);
    if (rc != INTERP_OK) {
        fprintf(stderr, "mpi consumer: %s\n", err ? err : interp_strerror(rc));
        free(err);
        MPI_Finalize();
        return 1;
    }
    if (pool) { /* the root */
        enum { N = 100 };
        interp_msg *in[N], *out[N];
        for (int i = 0; i < N; i++)
            in[i] = interp_msg_int(i);
        rc = interp_pool_map(pool, "square", N, (const interp_msg *const *)in, out, NULL);
        int64_t sum = 0;
        for (int i = 0; i < N; i++) {
            int64_t v = 0;
            if (rc == INTERP_OK && interp_msg_unpack(out[i], "I", &v) == INTERP_OK)
                sum += v;
            if (rc == INTERP_OK)
                interp_msg_free(out[i]);
            interp_msg_free(in[i]);
        }
        interp_pool_destroy(pool);
        int size = 0;
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (rc == INTERP_OK && sum == 328350)
            printf("mpi consumer: ok (%d ranks)\n", size);
        else
            printf("mpi consumer: map %s, sum %lld\n", interp_strerror(rc), (long long)sum);
        rc = rc == INTERP_OK && sum == 328350 ? INTERP_OK : INTERP_ERR_SCRIPT;
    }
    MPI_Finalize();
    return rc == INTERP_OK ? 0 : 1;
}
