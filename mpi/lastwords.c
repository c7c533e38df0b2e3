/* lastwords.c - what the root says when the MPI runtime terminates it (mpi_impl.h). The
 * handler only reads plain numbers the communication thread keeps, calls kill(pid, 0) for the
 * ranks on its own host, formats by hand and write()s: nothing that is not async-signal-safe. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mpi_impl.h"

typedef struct lw_rank {
    int pid;
    bool same_host;
    volatile sig_atomic_t units;
    volatile long items;
    volatile long heard_ms; /* CLOCK_MONOTONIC milliseconds */
} lw_rank;

static lw_rank *lw;
static int lw_n, lw_me;
static struct sigaction lw_old;
static volatile sig_atomic_t lw_on;

typedef struct out {
    char buf[8192];
    size_t n;
} out;

static void put_s(out *o, const char *s)
{
    while (*s && o->n < sizeof o->buf - 1)
        o->buf[o->n++] = *s++;
}

static void put_l(out *o, long v)
{
    char t[24];
    int i = 0;
    if (v < 0) {
        put_s(o, "-");
        v = -v;
    }
    do {
        t[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i < 23);
    while (i > 0 && o->n < sizeof o->buf - 1)
        o->buf[o->n++] = t[--i];
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_term(int sig)
{
    static out o; /* not on the (possibly small) stack of whichever thread got the signal */
    o.n = 0;
    long now = now_ms();
    put_s(&o, "interp_mpi: root: terminated (signal ");
    put_l(&o, sig);
    put_s(&o, ") while its MPI pool was in use; what the ranks held:\n");
    int gone = 0;
    for (int k = 0; k < lw_n; k++) {
        if (k == lw_me)
            continue;
        lw_rank *r = &lw[k];
        bool exited = r->same_host && kill(r->pid, 0) == -1 && errno == ESRCH;
        gone += exited;
        put_s(&o, "  rank ");
        put_l(&o, k);
        put_s(&o, " (pid ");
        put_l(&o, r->pid);
        put_s(&o, "): ");
        put_l(&o, r->units);
        put_s(&o, " unit(s), ");
        put_l(&o, r->items);
        put_s(&o, " item(s) in flight, last heard ");
        long ms = now - r->heard_ms;
        put_l(&o, ms / 1000);
        put_s(&o, ".");
        put_l(&o, (ms % 1000) / 100);
        put_s(&o, " s ago");
        if (exited)
            put_s(&o, "; it has EXITED: the items it held are lost");
        put_s(&o, "\n");
    }
    if (!gone)
        put_s(&o, "  (no rank on this host has exited: the one that ended the job runs elsewhere "
                  "or was the runtime; mpiexec's message names it)\n");
    ssize_t w = write(STDERR_FILENO, o.buf, o.n);
    (void)w;
    sigaction(SIGTERM, &lw_old, NULL);
    raise(sig);
}

bool mpi__lastwords_install(int size, int me, const mpi__rank_hello *hello)
{
    if (lw_on)
        return false;
    struct sigaction cur;
    if (sigaction(SIGTERM, NULL, &cur) != 0 || cur.sa_handler != SIG_DFL ||
        (cur.sa_flags & SA_SIGINFO))
        return false; /* the host handles SIGTERM itself */
    lw = calloc((size_t)size, sizeof *lw);
    if (!lw)
        return false;
    long now = now_ms();
    for (int k = 0; k < size; k++) {
        lw[k].pid = hello[k].pid;
        lw[k].same_host = strcmp(hello[k].host, hello[me].host) == 0;
        lw[k].heard_ms = now;
    }
    lw_n = size;
    lw_me = me;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, &lw_old) != 0) {
        free(lw);
        lw = NULL;
        return false;
    }
    lw_on = 1;
    return true;
}

void mpi__lastwords_update(int k, int units, size_t items, double last_heard)
{
    if (!lw_on || k < 0 || k >= lw_n)
        return;
    lw[k].units = units;
    lw[k].items = (long)items;
    lw[k].heard_ms = (long)(last_heard * 1000);
}

void mpi__lastwords_remove(void)
{
    if (!lw_on)
        return;
    sigaction(SIGTERM, &lw_old, NULL);
    lw_on = 0;
    free(lw);
    lw = NULL;
}
