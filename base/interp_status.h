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

/* The one list of status codes: XX(NAME, value, name, text) for each. It generates the enum
 * below, interp_strerror(), interp_status_name() and interp_status_code(), so that codes,
 * texts and names cannot drift apart (libuv's UV_ERRNO_MAP does the same). The values are
 * part of the ABI: never renumber one; a new code takes the next free negative value. */
#define INTERP_STATUS_MAP(XX)                                                                      \
    /* out of memory, or a state's memory limit was reached */                                     \
    XX(NOMEM, -1, "nomem", "out of memory")                                                        \
    /* a bad argument (NULL where an object is required, ...) */                                   \
    XX(INVALID, -2, "invalid", "invalid argument")                                                 \
    /* a value cannot be copied into a message (path in the text) */                               \
    XX(ENCODE, -3, "encode", "value cannot be copied")                                             \
    /* malformed message bytes, or a value the receiver refuses */                                 \
    XX(DECODE, -4, "decode", "malformed or refused message")                                       \
    /* a depth, size or count limit was exceeded (or an integer does not fit the C type) */        \
    XX(LIMIT, -5, "limit", "depth or size limit exceeded")                                         \
    /* the Lua code raised an error (text + traceback available) */                                \
    XX(SCRIPT, -6, "script", "script error")                                                       \
    /* a deadline passed (task deadline or a wait's timeout) */                                    \
    XX(TIMEOUT, -7, "timeout", "timed out")                                                        \
    /* the task or wait was cancelled (also a queued task the pool's shutdown dropped) */          \
    XX(CANCELLED, -8, "cancelled", "cancelled")                                                    \
    /* the channel is closed (and drained, for receive) */                                         \
    XX(CLOSED, -9, "closed", "closed")                                                             \
    /* a try-variant would have blocked (channel full or empty) */                                 \
    XX(AGAIN, -10, "again", "would block")                                                         \
    /* the pool is shut down: no new tasks are accepted (also the status of a task                 \
     * interrupted by shutdown_now or destroy) */                                                  \
    XX(SHUTDOWN, -11, "shutdown", "pool is shut down")                                             \
    /* the pool cannot go on (no state could be created, ...) */                                   \
    XX(BROKEN, -12, "broken", "pool is broken")                                                    \
    /* no such function, channel or file */                                                        \
    XX(NOTFOUND, -13, "notfound", "not found")                                                     \
    /* an operating system call failed (thread creation, ...) */                                   \
    XX(SYSTEM, -14, "system", "system call failed")                                                \
    /* the call does not apply in the object's state (cancel of a task that has ended) */          \
    XX(BUSY, -15, "busy", "busy")

#define INTERP__STATUS_ENUM(NAME, value, name, text) INTERP_ERR_##NAME = value,
enum { INTERP_OK = 0, INTERP_STATUS_MAP(INTERP__STATUS_ENUM) };
#undef INTERP__STATUS_ENUM

/* A short static English description of a status code ("unknown status" for others).
 * Thread-safe; never returns NULL. */
INTERP_API const char *interp_strerror(int status);

/* The short lower-case name of a status code: "ok", "nomem", "timeout", "cancelled", ... (the
 * INTERP_ERR_ suffix in lower case; these are also the names the Lua module and the CLI
 * print), or NULL for a value that is not a status code. Thread-safe. */
INTERP_API const char *interp_status_name(int status);

/* The status code whose interp_status_name() is `name` (case-sensitive), or 1 (never a status
 * code) when there is none or name is NULL. Thread-safe. */
INTERP_API int interp_status_code(const char *name);

#ifdef __cplusplus
}
#endif
#endif
