/* proc_wire.h - the process pool's byte plumbing and its worker process (proc_wire.c).
 * Wire format: see exec_proc.c. Host byte order: parent and children are one program. */
#ifndef BENCH_PROC_WIRE_H
#define BENCH_PROC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "bench.h"

enum { PW_MAX_FN = 255 };                /* longest function name on the wire */
#define PW_MAX_FRAME ((uint64_t)1 << 31) /* largest frame body accepted */

/* Read exactly n bytes. 0: done; 1: end of file before the first byte; -1: error or end of
 * file midway. Retries on EINTR. */
int pw_read_full(int fd, void *buf, size_t n);
/* Write every byte of iov[0..cnt) (iov is consumed). 0, or -1 with errno (EPIPE included). */
int pw_writev_full(int fd, struct iovec *iov, int cnt);
int pw_write_full(int fd, const void *buf, size_t n);
/* Make *buf hold at least need bytes (doubling). false when out of memory. */
bool pw_grow(char **buf, size_t *cap, size_t need);
/* Append n bytes at *len. false when out of memory. */
bool pw_put(char **buf, size_t *cap, size_t *len, const void *data, size_t n);
/* Append one response item: i32 status, u64 length, bytes. */
bool pw_put_item(char **buf, size_t *cap, size_t *len, int32_t status, const void *data, size_t n);
/* Fill buf[0..8) with the body length (len - 8) and write the whole frame. 0 or -1. */
int pw_send_frame(int fd, char *buf, size_t len);
/* Read one frame's body into *buf (grown as needed), its length into *len. 0, 1 (clean end of
 * file) or -1 (error, truncation, or a body over PW_MAX_FRAME). */
int pw_read_frame(int fd, char **buf, size_t *cap, size_t *len);

/* A cursor over a received body that never reads past its end. */
typedef struct pw_cursor {
    const char *p, *end;
    bool bad;
} pw_cursor;

/* The next n bytes, or NULL (and c->bad set) when fewer are left. */
const char *pw_take(pw_cursor *c, size_t n);
uint32_t pw_take_u32(pw_cursor *c); /* 0 (and c->bad) past the end */
uint64_t pw_take_u64(pw_cursor *c);

/* The worker process: build a state running init, report how that went (the first frame),
 * then answer request frames from in_fd with response frames on out_fd until end of file.
 * Never returns: _exit(0) after a clean end, non-zero on a broken pipe or a bad request. */
_Noreturn void pw_child_main(int in_fd, int out_fd, const char *init);

#endif
