/* chan_names.c - the named channels of one pool (interp_pool_channel, interp.channel).
 *
 * Names come from untrusted tasks: each is bounded (1..INTERP_CHAN_MAX_NAME bytes, no NUL), a
 * pool holds at most INTERP__MAX_NAMED_CHANNELS of them, and a lookup costs one hash and a
 * short chain, not a scan of every name under the lock. The hash is seeded per pool (from
 * getrandom, else the clock and an address), so a task cannot pick names that share a chain;
 * even if it did, a chain is at most 4096 names of at most 256 bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan_impl.h"
#include "core_impl.h"

struct interp__chan_entry {
    struct interp__chan_entry *next;
    interp_chan *ch;
    interp__account *acct; /* who pays for the channel (the state that made it), or NULL */
    size_t charge;         /* bytes charged to acct, or to the budget when acct is NULL */
    uint64_t hash;
    size_t len;
    char name[];
};

void interp__chan_names_init(interp__chan_names *r)
{
    r->budget = NULL; /* set with the pool's options (options.c) */
    interp__mutex_init(&r->mu);
    memset(r->buckets, 0, sizeof r->buckets);
    r->n = 0;
    r->seed = interp__random64();
}

void interp__chan_names_destroy(interp__chan_names *r)
{
    for (size_t b = 0; b < INTERP__CHAN_BUCKETS; b++) {
        for (interp__chan_entry *e = r->buckets[b], *next; e; e = next) {
            next = e->next;
            interp_chan_release(e->ch); /* queued messages refund their senders */
            if (e->acct)
                interp__account_refund(e->acct, e->charge, true);
            else
                interp__budget_give(r->budget, e->charge);
            interp__account_release(e->acct);
            free(e);
        }
    }
    interp__mutex_destroy(&r->mu);
}

static uint64_t name_hash(uint64_t seed, const char *s, size_t len)
{
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15u);
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
        h ^= h >> 29;
    }
    h *= 0xbf58476d1ce4e5b9u;
    return h ^ (h >> 31);
}

int interp__chan_name_check(const char *name, size_t len)
{
    const char *why;
    return name ? interp_chan_check(name, len, 0, &why) : INTERP_ERR_INVALID;
}

int interp__chan_names_get(interp__chan_names *r, const char *name, size_t len, size_t capacity,
                           size_t max_msg_size, interp__account *acct, char *why, size_t whylen,
                           interp_chan **out)
{
    *out = NULL;
    const char *bad;
    if (!name || interp_chan_check(name, len, capacity, &bad) != INTERP_OK) {
        if (why && whylen)
            snprintf(why, whylen, "%s", name ? bad : "no name");
        return INTERP_ERR_INVALID;
    }
    uint64_t h = name_hash(r->seed, name, len);
    interp__chan_entry **bucket = &r->buckets[h & (INTERP__CHAN_BUCKETS - 1)];
    interp__mutex_lock(&r->mu);
    for (interp__chan_entry *e = *bucket; e; e = e->next) {
        if (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0) {
            interp_chan_retain(e->ch);
            *out = e->ch;
            interp__mutex_unlock(&r->mu);
            return INTERP_OK;
        }
    }
    int rc = INTERP_ERR_LIMIT; /* a task creating names without end: host memory */
    interp__chan_entry *e = NULL;
    if (r->n >= INTERP__MAX_NAMED_CHANNELS)
        goto err_unlock;
    /* the ring and the name are paid for before they exist (the account's lock is a leaf) */
    capacity = capacity ? capacity : 64;
    size_t charge = interp__chan_footprint(capacity) + sizeof *e + len + 1;
    if (acct) {
        if ((rc = interp__account_charge(acct, charge, true, why, whylen)) != INTERP_OK)
            goto err_unlock;
    } else if (!interp__budget_take(r->budget, charge)) {
        rc = INTERP_ERR_NOMEM;
        if (why)
            snprintf(why, whylen,
                     "not enough memory (the pool's memory budget of %zu bytes "
                     "is used up)",
                     r->budget->limit);
        goto err_unlock;
    }
    rc = INTERP_ERR_NOMEM;
    if (!(e = malloc(sizeof *e + len + 1)))
        goto err_refund;
    if ((rc = interp_chan_create(capacity, max_msg_size, &e->ch)) != INTERP_OK)
        goto err_refund;
    interp__account_retain(acct);
    e->acct = acct;
    e->charge = charge;
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    e->len = len;
    e->hash = h;
    e->next = *bucket;
    *bucket = e;
    r->n++;
    interp_chan_retain(e->ch);
    *out = e->ch;
    interp__mutex_unlock(&r->mu);
    return INTERP_OK;
err_refund:
    if (acct)
        interp__account_refund(acct, charge, true);
    else
        interp__budget_give(r->budget, charge);
err_unlock:
    interp__mutex_unlock(&r->mu);
    free(e);
    return rc;
}
