/* msg_bigbuf.c - large message blocks kept for the next large message.
 *
 * A message of a megabyte is one malloc block; glibc serves it from a fresh mapping (mmap,
 * or heap growth) whose pages fault in and are zeroed at the first write, and gives it back
 * to the kernel at free. A stream of large messages (1 MiB strings through a channel, large
 * results) paid that at every message: a third of the time of the copy itself. The block of
 * a freed large message now waits here, up to BIG_SLOTS blocks and BIG_KEEP bytes, for the
 * next large message of any thread, which writes into pages already mapped. An idle worker
 * empties the cache (interp__bigbuf_trim), so a burst does not pin memory. */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "msg_impl.h"

enum { BIG_SLOTS = 4 };
#define BIG_KEEP ((size_t)32 << 20)

static pthread_mutex_t big_mu = PTHREAD_MUTEX_INITIALIZER;
static void *big_blk[BIG_SLOTS];
static size_t big_cap[BIG_SLOTS]; /* usable bytes of big_blk[i] */
static size_t big_bytes;

static size_t usable(void *p)
{
#ifdef __GLIBC__
    return malloc_usable_size(p);
#else
    (void)p;
    return 0; /* unknown: never kept */
#endif
}

void *interp__bigbuf_take(size_t need)
{
    if (need < INTERP__BIGBUF_MIN)
        return NULL;
    void *p = NULL;
    pthread_mutex_lock(&big_mu);
    int best = -1;
    for (int i = 0; i < BIG_SLOTS; i++) /* the smallest block that fits, and not 4x too big */
        if (big_blk[i] && big_cap[i] >= need && big_cap[i] / 4 <= need &&
            (best < 0 || big_cap[i] < big_cap[best]))
            best = i;
    if (best >= 0) {
        p = big_blk[best];
        big_bytes -= big_cap[best];
        big_blk[best] = NULL;
    }
    pthread_mutex_unlock(&big_mu);
    return p;
}

void interp__bigbuf_put(void *p)
{
    size_t cap = p ? usable(p) : 0;
    if (cap < INTERP__BIGBUF_MIN || cap > BIG_KEEP) {
        free(p);
        return;
    }
    pthread_mutex_lock(&big_mu);
    int slot = -1;
    for (int i = 0; i < BIG_SLOTS && slot < 0; i++)
        if (!big_blk[i])
            slot = i;
    if (slot >= 0 && big_bytes + cap <= BIG_KEEP) {
        big_blk[slot] = p;
        big_cap[slot] = cap;
        big_bytes += cap;
        p = NULL;
    }
    pthread_mutex_unlock(&big_mu);
    free(p);
}

void interp__bigbuf_trim(void)
{
    void *drop[BIG_SLOTS];
    int n = 0;
    pthread_mutex_lock(&big_mu);
    for (int i = 0; i < BIG_SLOTS; i++)
        if (big_blk[i]) {
            drop[n++] = big_blk[i];
            big_blk[i] = NULL;
        }
    big_bytes = 0;
    pthread_mutex_unlock(&big_mu);
    for (int i = 0; i < n; i++)
        free(drop[i]);
}
