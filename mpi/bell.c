/* bell.c - how a communication thread sleeps and who can wake it.
 *
 * A waker is a futex word and a count of its sleepers. Its thread sleeps on the word between
 * polls; a kick bumps the word and, only when someone sleeps there, makes one futex call. So
 * a kick that finds its thread awake costs one atomic add, and a sleep never misses a kick
 * made after its thread last woke (futex_wait compares the word it was given).
 *
 * The bell puts those words in memory shared by the ranks of the root's host (a POSIX shared
 * memory object the root makes at create; every rank of the host maps it; its name is unlinked
 * once the handshake is over). Then the root rings a rank when it sends it something and a
 * rank rings the root when it answers: neither needs to poll the other often, and a rank
 * waiting for work sleeps long yet starts it at once. Ranks on other hosts (the object is not
 * there, or its token differs) keep a waker of their own and are polled as before. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mpi_impl.h"

/* One rank's place in the bell, a cache line of its own. */
struct bell_slot {
    _Atomic uint32_t seq, sleepers;
    _Atomic uint32_t attached; /* the rank uses this slot's waker */
    _Atomic uint32_t no_pull;  /* slot 0's: a receiver could not take a large message alone */
    uint64_t token;            /* the root's random token: this is the segment the root made */
    char pad[40];
};

/* ---- waker ------------------------------------------------------------------------------ */

static void wake_word(_Atomic uint32_t *seq, _Atomic uint32_t *sleepers)
{
    atomic_fetch_add(seq, 1);
    if (atomic_load(sleepers)) /* the word is shared between processes: no FUTEX_PRIVATE */
        syscall(SYS_futex, (uint32_t *)seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void waker_init(waker *w)
{
    atomic_init(&w->own_seq, 0);
    atomic_init(&w->own_sleepers, 0);
    w->seq = &w->own_seq;
    w->sleepers = &w->own_sleepers;
    w->seen = 0;
}

void waker_destroy(waker *w) { (void)w; }

void waker_kick(waker *w) { wake_word(w->seq, w->sleepers); }

bool waker_pending(const waker *w) { return atomic_load(w->seq) != w->seen; }

bool waker_sleep(waker *w, double secs)
{
    uint32_t cur = atomic_load(w->seq);
    if (cur == w->seen) {
        struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
        atomic_fetch_add(w->sleepers, 1);
        syscall(SYS_futex, (uint32_t *)w->seq, FUTEX_WAIT, cur, &ts, NULL, 0);
        atomic_fetch_sub(w->sleepers, 1);
    }
    uint32_t was = w->seen;
    w->seen = atomic_load(w->seq);
    return w->seen != was;
}

/* ---- bell ------------------------------------------------------------------------------- */

static uint64_t random_token(void)
{
    uint64_t t = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &t, sizeof t) != (ssize_t)sizeof t)
            t = 0;
        close(fd);
    }
    return t ^ (uint64_t)getpid() << 32 ^ (uint64_t)(interp_now() * 1e9);
}

static bool map_slots(bell *b, int fd, int size)
{
    size_t bytes = (size_t)size * sizeof(struct bell_slot);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return false;
    b->slots = p;
    b->size = size;
    return true;
}

bool bell_create(bell *b, int size, char name[BELL_NAME_MAX], uint64_t *token)
{
    static _Atomic unsigned serial;
    memset(b, 0, sizeof *b);
    name[0] = '\0';
    *token = random_token();
    char nm[BELL_NAME_MAX];
    snprintf(nm, sizeof nm, "/interp_mpi.%d.%u.%08x", (int)getpid(), atomic_fetch_add(&serial, 1),
             (unsigned)*token);
    int fd = shm_open(nm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    if (ftruncate(fd, (off_t)((size_t)size * sizeof(struct bell_slot))) != 0 ||
        !map_slots(b, fd, size)) {
        if (fcntl(fd, F_GETFD) >= 0)
            close(fd);
        shm_unlink(nm);
        return false;
    }
    for (int k = 0; k < size; k++)
        b->slots[k].token = *token;
    memcpy(name, nm, sizeof nm);
    return true;
}

bool bell_open(bell *b, const char *name, uint64_t token, int size)
{
    memset(b, 0, sizeof *b);
    if (!name[0])
        return false;
    int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size != (off_t)((size_t)size * sizeof(struct bell_slot))) {
        close(fd);
        return false;
    }
    if (!map_slots(b, fd, size))
        return false;
    if (b->slots[0].token != token) { /* a namesake on another host's memory: not ours */
        bell_close(b);
        return false;
    }
    return true;
}

void bell_unlink(const char *name)
{
    if (name[0])
        shm_unlink(name);
}

void bell_close(bell *b)
{
    if (b->slots)
        munmap(b->slots, (size_t)b->size * sizeof(struct bell_slot));
    b->slots = NULL;
}

void bell_attach(bell *b, int k, waker *w)
{
    if (!b->slots)
        return;
    w->seq = &b->slots[k].seq;
    w->sleepers = &b->slots[k].sleepers;
    w->seen = atomic_load(w->seq);
    atomic_store(&b->slots[k].attached, 1);
}

bool bell_rings(const bell *b, int k)
{
    return b && b->slots && k >= 0 && k < b->size && atomic_load(&b->slots[k].attached);
}

void bell_ring(bell *b, int k)
{
    if (bell_rings(b, k))
        wake_word(&b->slots[k].seq, &b->slots[k].sleepers);
}

void bell_no_pull(bell *b)
{
    if (b && b->slots)
        atomic_store(&b->slots[0].no_pull, 1);
}

bool bell_pulls(const bell *b) { return b && b->slots && !atomic_load(&b->slots[0].no_pull); }
