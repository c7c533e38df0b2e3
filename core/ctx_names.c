/* ctx_names.c - how a state reaches a context or a channel by name.
 *
 * Two kinds of names. The pool's: a named context (interp_ctx_options.name) is registered
 * pool-wide while it is open, as named channels are; full-profile states (anonymous tasks and
 * contexts) reach both by those names. A context's grants: names the host gave one context
 * (interp_ctx_grant_channel / interp_ctx_grant_context), local to it, each holding one
 * reference. A sandboxed context reaches only its grants: no pool-wide name, so a plugin can
 * neither guess another plugin's channel or context nor squat a name by creating a channel.
 * A sandboxed anonymous task reaches no context (channels by pool-wide name, as before).
 * Shared-value names (interp_ctx_grant_shared) are grants too, a namespace of their own,
 * each a pool name with rights; ctx_shared.c applies them.
 *
 * Locks: the registry's and each grant table's mutex are leaves (a reference is taken with an
 * atomic add under them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_impl.h"

struct interp__ctx_entry {
    interp__ctx_entry *next;
    interp_ctx *ctx; /* not retained: the context removes itself when closed */
    uint64_t hash;
};

static uint64_t name_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u ^ len;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
    h ^= h >> 31;
    return h * 0xbf58476d1ce4e5b9u;
}

void interp__ctx_names_init(interp__ctx_names *r)
{
    interp__mutex_init(&r->mu);
    r->buckets = NULL;
    r->nb = r->n = 0;
}

void interp__ctx_names_destroy(interp__ctx_names *r)
{
    for (size_t b = 0; b < r->nb; b++) {
        for (interp__ctx_entry *e = r->buckets[b], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(r->buckets);
    interp__mutex_destroy(&r->mu);
}

static bool same_name(interp_ctx *ctx, const char *name, size_t len)
{
    const char *n = interp_ctx_name(ctx);
    return strlen(n) == len && memcmp(n, name, len) == 0;
}

/* Under r->mu: double the buckets when the names outnumber them. false: out of memory. */
static bool grow_locked(interp__ctx_names *r)
{
    if (r->n < r->nb)
        return true;
    size_t nb = r->nb ? r->nb * 2 : 64;
    interp__ctx_entry **b = calloc(nb, sizeof *b);
    if (!b)
        return r->nb > 0; /* a full table still works, with longer chains */
    for (size_t i = 0; i < r->nb; i++) {
        for (interp__ctx_entry *e = r->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->nb = nb;
    return true;
}

int interp__ctx_names_add(interp__ctx_names *r, interp_ctx *ctx)
{
    const char *name = interp_ctx_name(ctx);
    size_t len = strlen(name);
    interp__ctx_entry *e = malloc(sizeof *e);
    if (!e)
        return INTERP_ERR_NOMEM;
    e->ctx = ctx;
    e->hash = name_hash(name, len);
    interp__mutex_lock(&r->mu);
    if (!grow_locked(r)) {
        interp__mutex_unlock(&r->mu);
        free(e);
        return INTERP_ERR_NOMEM;
    }
    interp__ctx_entry **head = &r->buckets[e->hash & (r->nb - 1)];
    for (interp__ctx_entry *x = *head; x; x = x->next) {
        if (x->hash == e->hash && same_name(x->ctx, name, len)) {
            interp__mutex_unlock(&r->mu);
            free(e);
            return INTERP_ERR_INVALID;
        }
    }
    e->next = *head;
    *head = e;
    r->n++;
    interp__mutex_unlock(&r->mu);
    return INTERP_OK;
}

void interp__ctx_names_remove(interp__ctx_names *r, interp_ctx *ctx)
{
    const char *name = interp_ctx_name(ctx);
    uint64_t h = name_hash(name, strlen(name));
    interp__ctx_entry *gone = NULL;
    interp__mutex_lock(&r->mu);
    if (r->nb) {
        for (interp__ctx_entry **p = &r->buckets[h & (r->nb - 1)]; *p; p = &(*p)->next) {
            if ((*p)->ctx == ctx) {
                gone = *p;
                *p = gone->next;
                r->n--;
                break;
            }
        }
    }
    interp__mutex_unlock(&r->mu);
    free(gone);
}

interp_ctx *interp__ctx_names_find(interp__ctx_names *r, const char *name, size_t len)
{
    uint64_t h = name_hash(name, len);
    interp_ctx *found = NULL;
    interp__mutex_lock(&r->mu);
    if (r->nb) {
        for (interp__ctx_entry *e = r->buckets[h & (r->nb - 1)]; e; e = e->next) {
            if (e->hash == h && same_name(e->ctx, name, len)) {
                found = e->ctx;
                interp__ctx_retain(found); /* registered: the host's reference is still held */
                break;
            }
        }
    }
    interp__mutex_unlock(&r->mu);
    return found;
}

/* ---- grants ----------------------------------------------------------------------------- */

struct interp__grant {
    char *name;
    size_t len;
    interp_chan *ch; /* one of the two, retained, or neither: a shared name */
    interp_ctx *ctx;
    char *target;    /* a shared name: the pool's name it stands for (NUL-terminated) */
    unsigned rights; /* a shared name's INTERP_SHARED_*, a channel's INTERP_CHAN_* */
};

void interp__grants_init(interp__grants *g)
{
    interp__mutex_init(&g->mu);
    g->v = NULL;
    g->n = g->cap = 0;
    g->closed = false;
}

static void grant_free(interp__grant *x)
{
    if (x->ch)
        interp_chan_release(x->ch);
    if (x->ctx)
        interp__ctx_release(x->ctx);
    free(x->target);
    free(x->name);
}

void interp__grants_clear(interp__grants *g)
{
    interp__mutex_lock(&g->mu);
    interp__grant *v = g->v;
    size_t n = g->n;
    g->v = NULL;
    g->n = g->cap = 0;
    g->closed = true;
    interp__mutex_unlock(&g->mu);
    /* outside the lock: a context's last reference may go here */
    for (size_t i = 0; i < n; i++)
        grant_free(&v[i]);
    free(v);
}

void interp__grants_destroy(interp__grants *g)
{
    interp__grants_clear(g);
    interp__mutex_destroy(&g->mu);
}

static interp__grant *find_locked(interp__grants *g, const char *name, size_t len, bool shared)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->v[i].len == len && memcmp(g->v[i].name, name, len) == 0 &&
            !g->v[i].target == !shared)
            return &g->v[i];
    return NULL;
}

/* Add or replace a grant: x's channel, context or shared name (retained or allocated by the
 * caller for it; taken over on INTERP_OK). Shared names are a namespace of their own. */
static int grants_put(interp__grants *g, const char *name, interp__grant x)
{
    size_t len = strlen(name);
    char *copy = malloc(len + 1);
    if (!copy)
        return INTERP_ERR_NOMEM;
    memcpy(copy, name, len + 1);
    x.name = copy;
    x.len = len;
    interp__grant old = {0};
    int rc = INTERP_OK;
    interp__mutex_lock(&g->mu);
    interp__grant *at = find_locked(g, name, len, x.target != NULL);
    if (g->closed) {
        rc = INTERP_ERR_CANCELLED;
    } else if (!at && g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        interp__grant *v = realloc(g->v, cap * sizeof *v);
        if (v) {
            g->v = v;
            g->cap = cap;
        } else {
            rc = INTERP_ERR_NOMEM;
        }
    }
    if (rc == INTERP_OK) {
        if (at)
            old = *at;
        else
            at = &g->v[g->n++];
        *at = x;
    }
    interp__mutex_unlock(&g->mu);
    if (rc != INTERP_OK) {
        free(copy);
        return rc;
    }
    grant_free(&old);
    return INTERP_OK;
}

/* The grant `name` if it is of the kind asked for (a context or a channel), retained; its
 * rights in *rights. */
static void *grants_get(interp__grants *g, const char *name, size_t len, bool ctx, unsigned *rights)
{
    void *out = NULL;
    interp__mutex_lock(&g->mu);
    interp__grant *x = find_locked(g, name, len, false);
    if (x && ctx && x->ctx) {
        interp__ctx_retain(x->ctx);
        out = x->ctx;
    } else if (x && !ctx && x->ch) {
        interp_chan_retain(x->ch);
        out = x->ch;
        *rights = x->rights;
    }
    interp__mutex_unlock(&g->mu);
    return out;
}

interp_chan *interp__grants_chan(interp__grants *g, const char *name, size_t len, unsigned *rights)
{
    return grants_get(g, name, len, false, rights);
}

interp_ctx *interp__grants_ctx(interp__grants *g, const char *name, size_t len)
{
    unsigned none;
    return grants_get(g, name, len, true, &none);
}

static int check_grant_name(const char *name)
{
    if (!name)
        return INTERP_ERR_INVALID;
    size_t len = strnlen(name, INTERP_CHAN_MAX_NAME + 1);
    return len == 0 || len > INTERP_CHAN_MAX_NAME ? INTERP_ERR_INVALID : INTERP_OK;
}

int interp_ctx_grant_channel(interp_ctx *ctx, const char *name, interp_chan *ch)
{
    return interp_ctx_grant_channel_rights(ctx, name, ch, INTERP_CHAN_SENDRECV);
}

int interp_ctx_grant_channel_rights(interp_ctx *ctx, const char *name, interp_chan *ch,
                                    unsigned rights)
{
    if (!ctx || !ch || check_grant_name(name) != INTERP_OK || rights == 0 ||
        (rights & ~(unsigned)INTERP_CHAN_SENDRECV))
        return INTERP_ERR_INVALID;
    interp_chan_retain(ch);
    int rc = grants_put(interp__ctx_grants(ctx), name, (interp__grant){.ch = ch, .rights = rights});
    if (rc != INTERP_OK)
        interp_chan_release(ch);
    return rc;
}

int interp_ctx_grant_context(interp_ctx *ctx, const char *name, interp_ctx *target)
{
    if (!ctx || !target || check_grant_name(name) != INTERP_OK ||
        interp__ctx_pool(ctx) != interp__ctx_pool(target))
        return INTERP_ERR_INVALID;
    interp__ctx_retain(target);
    int rc = grants_put(interp__ctx_grants(ctx), name, (interp__grant){.ctx = target});
    if (rc != INTERP_OK)
        interp__ctx_release(target);
    return rc;
}

int interp_ctx_grant_shared(interp_ctx *ctx, const char *name, const char *pool_name,
                            unsigned rights)
{
    if (!pool_name)
        pool_name = name;
    if (!ctx || !name || !rights || (rights & ~(unsigned)INTERP_SHARED_RW) ||
        strnlen(name, INTERP_SHARED_MAX_NAME + 1) - 1 >= INTERP_SHARED_MAX_NAME ||
        strnlen(pool_name, INTERP_SHARED_MAX_NAME + 1) - 1 >= INTERP_SHARED_MAX_NAME)
        return INTERP_ERR_INVALID;
    size_t tlen = strlen(pool_name);
    char *target = malloc(tlen + 1);
    if (!target)
        return INTERP_ERR_NOMEM;
    memcpy(target, pool_name, tlen + 1);
    int rc = grants_put(interp__ctx_grants(ctx), name,
                        (interp__grant){.target = target, .rights = rights});
    if (rc != INTERP_OK)
        free(target);
    return rc;
}

int interp__grants_shared(interp__grants *g, const char *name, size_t len, unsigned want, char *out,
                          size_t *outlen)
{
    int r = 0;
    interp__mutex_lock(&g->mu);
    interp__grant *x = find_locked(g, name, len, true);
    if (x && (x->rights & want) == want) {
        *outlen = strlen(x->target); /* at most INTERP_SHARED_MAX_NAME */
        memcpy(out, x->target, *outlen);
        r = 1;
    } else if (x) {
        r = -1;
    }
    interp__mutex_unlock(&g->mu);
    return r;
}

/* ---- lookups from states ---------------------------------------------------------------- */

int interp__ctx_chan_lookup(void *ud, const char *name, size_t len, size_t capacity,
                            interp__account *acct, char *why, size_t whylen, interp_chan **out,
                            unsigned *rights)
{
    interp_ctx *ctx = ud;
    unsigned granted = INTERP_CHAN_SENDRECV;
    *out = interp__grants_chan(interp__ctx_grants(ctx), name, len, &granted);
    if (rights)
        *rights = granted; /* a pool name (below): both */
    if (*out)
        return INTERP_OK;
    if (interp__ctx_sandboxed(ctx)) {
        if (why && whylen)
            snprintf(why, whylen,
                     "no channel of that name was granted to this context (a "
                     "sandboxed context reaches only the channels its host "
                     "granted it)");
        return INTERP_ERR_NOTFOUND;
    }
    interp_pool *pool = interp__ctx_pool(ctx);
    return interp__chan_names_get(&pool->chans, name, len, capacity, pool->max_msg_size, acct, why,
                                  whylen, out);
}

interp_ctx *interp__ctx_reach(interp_pool *pool, interp_ctx *from, bool sandboxed, const char *name,
                              size_t len)
{
    if (from) {
        interp_ctx *c = interp__grants_ctx(interp__ctx_grants(from), name, len);
        if (c || sandboxed)
            return c;
    } else if (sandboxed) {
        return NULL;
    }
    return interp__ctx_names_find(&pool->ctxs, name, len);
}
