/* interp_status.h - status codes shared by every interp_pool API.
 *
 * Every function of the library that can fail returns an int: INTERP_OK (0) or one of the
 * negative INTERP_ERR_* codes below. interp_strerror() turns a code into a short English text.
 * Where more detail exists (a Lua traceback, the path of a value that cannot be copied), the
 * function that produced it says where to read it.
 */
#ifndef INTERP_STATUS_H
#define INTERP_STATUS_H

#if defined(__GNUC__)
#define INTERP_API __attribute__((visibility("default")))
#else
#define INTERP_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum {
    INTERP_OK = 0,
    INTERP_ERR_NOMEM = -1,     /* out of memory, or a state's memory limit was reached */
    INTERP_ERR_INVALID = -2,   /* a bad argument (NULL where an object is required, ...) */
    INTERP_ERR_ENCODE = -3,    /* a value cannot be copied into a message (path in the text) */
    INTERP_ERR_DECODE = -4,    /* malformed message bytes, or a value the receiver refuses */
    INTERP_ERR_LIMIT = -5,     /* a depth, size or count limit was exceeded (or an integer
                                  does not fit the C type asked for) */
    INTERP_ERR_SCRIPT = -6,    /* the Lua code raised an error (text + traceback available) */
    INTERP_ERR_TIMEOUT = -7,   /* a deadline passed (task deadline or a wait's timeout) */
    INTERP_ERR_CANCELLED = -8, /* the task or wait was cancelled */
    INTERP_ERR_CLOSED = -9,    /* the channel is closed (and drained, for receive) */
    INTERP_ERR_AGAIN = -10,    /* a try-variant would have blocked (channel full or empty) */
    INTERP_ERR_SHUTDOWN = -11, /* the pool is shut down: no new tasks are accepted (also the
                                  status of a task interrupted by shutdown_now or destroy) */
    INTERP_ERR_BROKEN = -12,   /* the pool cannot go on (no state could be created, ...) */
    INTERP_ERR_NOTFOUND = -13, /* no such function, channel or file */
    INTERP_ERR_SYSTEM = -14,   /* an operating system call failed (thread creation, ...) */
    INTERP_ERR_BUSY = -15,     /* the call does not apply in the object's state (cancel of a
                                  task that has already ended) */
};

/* A short static English description of a status code ("unknown status" for others).
 * Thread-safe; never returns NULL. */
INTERP_API const char *interp_strerror(int status);

#ifdef __cplusplus
}
#endif
#endif
