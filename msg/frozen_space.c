/* frozen_space.c - where frozen values are charged and found by name: one per pool.
 *
 * The space counts the values its states froze that are still alive, and their bytes: each
 * value counted once, however many states read it (readers' limits never see it). A value
 * keeps its space alive (one reference) so that it may outlive the pool that made it. This
 * counter is the hook for a pool-wide memory budget: interp__frozen_space_charge is the one
 * place where frozen bytes come and go.
 *
 * The registry maps names to values (one reference each), under one mutex held only for the
 * list's loads and stores (a leaf lock: nothing else is taken while it is held; a value's
 * release, which may free a large arena, happens after unlocking). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "frozen_impl.h"
#include "sync.h"

enum { MAX_NAMES = 4096, MAX_NAME = 255 };

typedef struct fz_name {
    struct fz_name *next;
    const interp_frozen *value;
    size_t len;
    char name[];
} fz_name;

struct interp__frozen_space {
    atomic_size_t refs;
    atomic_size_t values, bytes;
    pthread_mutex_t mu; /* guards names, nnames */
    fz_name *names;
    size_t nnames;
};

interp__frozen_space *interp__frozen_space_new(void)
{
    interp__frozen_space *sp = calloc(1, sizeof *sp);
    if (!sp)
        return NULL;
    atomic_init(&sp->refs, 1);
    interp__mutex_init(&sp->mu);
    return sp;
}

interp__frozen_space *interp__frozen_space_retain(interp__frozen_space *sp)
{
    atomic_fetch_add_explicit(&sp->refs, 1, memory_order_relaxed);
    return sp;
}

void interp__frozen_space_release(interp__frozen_space *sp)
{
    if (!sp || atomic_fetch_sub_explicit(&sp->refs, 1, memory_order_acq_rel) != 1)
        return;
    interp__frozen_space_clear(sp);
    interp__mutex_destroy(&sp->mu);
    free(sp);
}

void interp__frozen_space_charge(interp__frozen_space *sp, long long bytes)
{
    if (bytes >= 0) {
        atomic_fetch_add(&sp->values, 1);
        atomic_fetch_add(&sp->bytes, (size_t)bytes);
    } else {
        atomic_fetch_sub(&sp->values, 1);
        atomic_fetch_sub(&sp->bytes, (size_t)-bytes);
    }
}

void interp__frozen_space_totals(interp__frozen_space *sp, size_t *values, size_t *bytes)
{
    if (values)
        *values = sp ? atomic_load(&sp->values) : 0;
    if (bytes)
        *bytes = sp ? atomic_load(&sp->bytes) : 0;
}

void interp__frozen_space_clear(interp__frozen_space *sp)
{
    if (!sp)
        return;
    interp__mutex_lock(&sp->mu);
    fz_name *list = sp->names;
    sp->names = NULL;
    sp->nnames = 0;
    interp__mutex_unlock(&sp->mu);
    for (fz_name *n = list, *next; n; n = next) {
        next = n->next;
        interp__frozen_publish(n->value, -1);
        interp_frozen_release(n->value);
        free(n);
    }
}

static fz_name **find(interp__frozen_space *sp, const char *name, size_t len)
{
    fz_name **at = &sp->names;
    while (*at && ((*at)->len != len || memcmp((*at)->name, name, len) != 0))
        at = &(*at)->next;
    return at;
}

int interp__frozen_space_set(interp__frozen_space *sp, const char *name, size_t len,
                             const interp_frozen *f, bool replace)
{
    if (!sp || !name || len == 0 || len > MAX_NAME)
        return INTERP_ERR_INVALID;
    fz_name *fresh = NULL;
    if (f) {
        if (!(fresh = malloc(sizeof *fresh + len)))
            return INTERP_ERR_NOMEM;
        memcpy(fresh->name, name, len);
        fresh->len = len;
        fresh->value = interp_frozen_retain(f);
    }
    const interp_frozen *old = NULL;
    int rc = INTERP_OK;
    interp__mutex_lock(&sp->mu);
    fz_name **at = find(sp, name, len);
    if (*at && !replace) {
        rc = INTERP_ERR_BUSY;
    } else if (*at) {
        fz_name *n = *at;
        old = n->value;
        interp__frozen_publish(old, -1);
        if (fresh) {
            n->value = fresh->value;
            fresh->value = NULL;
            interp__frozen_publish(n->value, +1);
        } else {
            *at = n->next;
            sp->nnames--;
            n->value = NULL; /* released below as `old` */
            fresh = n;       /* freed below */
        }
    } else if (fresh && sp->nnames >= MAX_NAMES) {
        rc = INTERP_ERR_LIMIT;
    } else if (fresh) {
        interp__frozen_publish(fresh->value, +1);
        fresh->next = sp->names;
        sp->names = fresh;
        sp->nnames++;
        fresh = NULL;
    }
    interp__mutex_unlock(&sp->mu);
    if (fresh) {
        interp_frozen_release(fresh->value);
        free(fresh);
    }
    interp_frozen_release(old);
    return rc;
}

int interp__frozen_space_get(interp__frozen_space *sp, const char *name, size_t len,
                             interp_frozen **out)
{
    if (!sp || !name || len == 0 || len > MAX_NAME || !out)
        return INTERP_ERR_INVALID;
    interp__mutex_lock(&sp->mu);
    fz_name *n = *find(sp, name, len);
    *out = n ? interp_frozen_retain(n->value) : NULL;
    interp__mutex_unlock(&sp->mu);
    return INTERP_OK;
}
