/* interp_one_step.h - for tests and benchmarks: the interpreter layer's two-step set-up
 * (interp/interp.h) done in one call each, as the pool itself never needs. Header only. */
#ifndef INTERP_ONE_STEP_H
#define INTERP_ONE_STEP_H

#include <stddef.h>

#include "interp.h"

/* interp__shared_new then interp__shared_compile: validate cfg and compile its initializer.
 * On error nothing is left allocated, *out is NULL and *err a malloc'd text (or NULL). */
static inline int interp__shared_create(const interp_config *cfg, interp_shared **out, char **err)
{
    int rc = interp__shared_new(cfg, out, err);
    if (rc == INTERP_OK && (rc = interp__shared_compile(*out, cfg, err)) != INTERP_OK) {
        interp__shared_destroy(*out);
        *out = NULL;
    }
    return rc;
}

/* interp__state_open then interp__state_init: a state with the initializer run. On error
 * nothing is left allocated, *out is NULL and *err a malloc'd text (or NULL). */
static inline int interp__state_create(interp_shared *sh, int worker_id, interp_state **out,
                                       char **err)
{
    int rc = interp__state_open(sh, worker_id, out, err);
    if (rc == INTERP_OK && (rc = interp__state_init(*out, err)) != INTERP_OK) {
        interp__state_destroy(*out);
        *out = NULL;
    }
    return rc;
}

#endif
