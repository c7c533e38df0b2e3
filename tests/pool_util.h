/* pool_util.h - helpers shared by the core/ tests (test_pool, test_future, test_map,
 * test_pool_stress). Header-only; every function is static. */
#ifndef POOL_UTIL_H
#define POOL_UTIL_H

#include <dirent.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp_pool.h"
#include "sync.h"

/* Functions every test pool knows. Ordering goes through channels: a task that must be seen
 * running sends on "started" and then blocks on "go" (or loops) until the test says so. */
static const char *const UTIL_INIT =
    "function double(x) return x * 2 end\n"
    "function add(a, b) return a + b end\n"
    "function boom(msg) error(msg or 'boom') end\n"
    "function boom_table() error({code = 42}) end\n"
    "function spin() while true do end end\n"
    "function started_then_spin() interp.channel('started'):send(true) while true do end end\n"
    "function started_then_wait()\n"
    "  interp.channel('started'):send(true)\n"
    "  return interp.channel('go'):recv()\n"
    "end\n"
    "function wait_go() return interp.channel('go'):recv() end\n"
    "function mark(i) interp.channel('ran'):send(i) return i end\n"
    "function hog(n) local t = {} for i = 1, n do t[i] = string.rep('x', 1024) end return #t end\n"
    "function many() return 1, 'two', {3} end\n"
    "counter = 0\n"
    "function count() counter = counter + 1 return counter end\n";

/* An initializer that runs in the first state of a pool and fails in every later one
 * ("second initializer refused"), with started_then_wait and double. */
static const char *const UTIL_INIT_ONCE =
    "local ch = interp.channel('inits')\n"
    "if ch:len() > 0 then error('second initializer refused') end\n"
    "ch:send(true)\n"
    "function started_then_wait()\n"
    "  interp.channel('started'):send(true)\n"
    "  return interp.channel('go'):recv()\n"
    "end\n"
    "function double(x) return 2 * x end\n";

static inline interp_pool *util_pool(int workers, void (*tweak)(interp_pool_options *))
{
    interp_pool_options o = interp_pool_defaults();
    o.workers = workers;
    o.init_source = UTIL_INIT;
    if (tweak)
        tweak(&o);
    interp_pool *p = NULL;
    char *err = NULL;
    int rc = interp_pool_create(&p, &o, &err);
    if (rc != INTERP_OK) {
        fprintf(stderr, "pool create: %s: %s\n", interp_strerror(rc), err ? err : "");
        free(err);
        abort();
    }
    return p;
}

/* Wait (up to 60 s) for f and release it: its status, "ok" or the first line of its error in
 * why (n bytes). */
static inline int util_outcome(interp_future *f, char *why, size_t n)
{
    int rc = interp_future_result(f, 60.0, NULL);
    const char *e = rc == INTERP_OK ? "ok" : interp_future_error(f);
    snprintf(why, n, "%.*s", (int)strcspn(e, "\n"), e);
    interp_future_release(f);
    return rc;
}

static inline int64_t util_int(const interp_msg *m)
{
    interp_msg_iter it = interp_msg_iter_init(m);
    interp_msg_value v;
    if (!interp_msg_next(&it, &v) || v.type != INTERP_MSG_INT)
        return INT64_MIN;
    return v.as.i;
}

/* A message of n integers. */
static inline interp_msg *util_ints(int n, ...)
{
    interp_msg_builder *b = interp_msg_builder_new();
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        interp_msg_add_int(b, va_arg(ap, int64_t));
    va_end(ap);
    interp_msg *m = NULL;
    interp_msg_builder_finish(b, &m);
    return m;
}

/* Block until a worker has sent on the pool's channel `name`. */
static inline void util_recv(interp_pool *p, const char *name)
{
    interp_chan *ch;
    if (interp_pool_channel(p, name, 0, &ch) != INTERP_OK)
        abort();
    interp_msg *m = NULL;
    if (interp_chan_recv(ch, INTERP_FOREVER, &m) != INTERP_OK)
        abort();
    interp_msg_free(m);
    interp_chan_release(ch);
}

/* Send n `true` values on the pool's channel `name`. */
static inline void util_send(interp_pool *p, const char *name, int n)
{
    interp_chan *ch;
    if (interp_pool_channel(p, name, 0, &ch) != INTERP_OK)
        abort();
    for (int i = 0; i < n; i++)
        if (interp_chan_send(ch, interp_msg_bool(true), INTERP_FOREVER) != INTERP_OK)
            abort();
    interp_chan_release(ch);
}

static inline int util_count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* The number of this process's threads once it is at most `want` (or after 30 s): a joined
 * thread leaves /proc/self/task a moment after pthread_join returns (the kernel wakes the
 * joiner before it finishes the exit). Callers assert "at most": a thread of an earlier test
 * still leaving when `want` was counted may be gone by now; only a count above is a leak. */
static inline int util_threads_settled(int want)
{
    int n = util_count_dir("/proc/self/task");
    /* a time bound, not a count of yields: on a loaded machine the exiting thread may wait
     * long for a core */
    for (double end = interp__now() + 30; n > want && interp__now() < end;) {
        sched_yield();
        n = util_count_dir("/proc/self/task");
    }
    return n;
}

/* A worker abandoned in a blocking read of the pipe fds: let the read return, close the pipe
 * and wait (up to 30 s) for the thread to finish on its own. The thread count it then has. */
static inline int util_unblock_abandoned(int fds[2], int want)
{
    if (write(fds[1], "x", 1) != 1)
        return -1;
    close(fds[1]);
    int n = util_count_dir("/proc/self/task");
    for (double end = interp__now() + 30; n > want && interp__now() < end;) {
        sched_yield();
        n = util_count_dir("/proc/self/task");
    }
    close(fds[0]);
    return n;
}

static inline long util_env(const char *name, long dflt)
{
    const char *s = getenv(name);
    return s && *s ? strtol(s, NULL, 10) : dflt;
}

#endif
