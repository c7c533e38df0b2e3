/* pool_create.c - the pool of `interp-pool map`: local, or, when the command runs under
 * mpiexec with more than one rank and was built with Open MPI, an MPI pool (interp_mpi.h):
 * rank 0 reads stdin, writes the results in input order and shows the progress line; the
 * other ranks only compute (they serve until rank 0 is done). */
#include <stdlib.h>

#include "cli.h"

#ifdef INTERP_CLI_MPI
#include "interp_mpi.h"

static int mpi_state; /* 0: not used, 1: initialised, 2: a pool was made (collectively) */

/* Under mpiexec with several ranks (Open MPI's or PMIx's variables). */
static bool under_mpiexec(void)
{
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n)
        n = getenv("PMIX_SIZE");
    return n && atoi(n) > 1;
}

bool cli_mpi_root(void)
{
    if (!under_mpiexec())
        return true;
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    if (!r)
        r = getenv("PMIX_RANK");
    return !r || atoi(r) == 0;
}

int cli_pool_create(interp_pool **out, const interp_pool_options *o, char **err, bool *served)
{
    *served = false;
    if (!under_mpiexec())
        return interp_pool_create(out, o, err);
    int rc = interp_mpi_init(NULL, NULL, err);
    if (rc != INTERP_OK)
        return rc;
    mpi_state = 1;
    rc = interp_mpi_pool_create(out, MPI_COMM_WORLD, o, NULL, err);
    if (rc != INTERP_ERR_SYSTEM)
        mpi_state = 2;         /* every rank came back from the collective create */
    *served = !cli_mpi_root(); /* the root reports errors, once */
    return rc;
}

int cli_mpi_end(int status)
{
    if (mpi_state == 2)
        MPI_Finalize();
    else if (mpi_state == 1) /* the ranks may be left inside create: end the job */
        MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
    return status;
}
#else
bool cli_mpi_root(void) { return true; }

int cli_pool_create(interp_pool **out, const interp_pool_options *o, char **err, bool *served)
{
    *served = false;
    return interp_pool_create(out, o, err);
}

int cli_mpi_end(int status) { return status; }
#endif
