/* proc_wire.c - the process pool's byte plumbing (whole reads and writes, frames, a bounded
 * cursor) and the worker process's main loop. The wire format is described in exec_proc.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "proc_wire.h"

/* 0: done; 1: end of file before the first byte; -1: error or end of file midway. */
int pw_read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0)
            return got == 0 ? 1 : -1;
        else if (errno != EINTR)
            return -1;
    }
    return 0;
}

int pw_writev_full(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t w = writev(fd, iov, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t left = (size_t)w;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

int pw_write_full(int fd, const void *buf, size_t n)
{
    struct iovec iov = {(void *)buf, n};
    return pw_writev_full(fd, &iov, 1);
}

bool pw_grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    char *nb = realloc(*buf, c);
    if (!nb)
        return false;
    *buf = nb;
    *cap = c;
    return true;
}

/* Read one frame's body into *buf. 0, 1 (clean end of file) or -1. */
int pw_read_frame(int fd, char **buf, size_t *cap, size_t *len)
{
    uint64_t n;
    int r = pw_read_full(fd, &n, sizeof n);
    if (r != 0)
        return r;
    if (n > PW_MAX_FRAME || !pw_grow(buf, cap, (size_t)n))
        return -1;
    *len = (size_t)n;
    return pw_read_full(fd, *buf, (size_t)n) == 0 ? 0 : -1;
}

const char *pw_take(pw_cursor *c, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = true;
        return NULL;
    }
    const char *r = c->p;
    c->p += n;
    return r;
}

uint32_t pw_take_u32(pw_cursor *c)
{
    uint32_t v = 0;
    const char *s = pw_take(c, sizeof v);
    if (s)
        memcpy(&v, s, sizeof v);
    return v;
}

uint64_t pw_take_u64(pw_cursor *c)
{
    uint64_t v = 0;
    const char *s = pw_take(c, sizeof v);
    if (s)
        memcpy(&v, s, sizeof v);
    return v;
}

/* Append bytes to a growable buffer; false when out of memory. */
bool pw_put(char **buf, size_t *cap, size_t *len, const void *data, size_t n)
{
    if (!pw_grow(buf, cap, *len + n))
        return false;
    memcpy(*buf + *len, data, n);
    *len += n;
    return true;
}

/* Append one response item. */
bool pw_put_item(char **buf, size_t *cap, size_t *len, int32_t status, const void *data, size_t n)
{
    uint64_t n64 = n;
    return pw_put(buf, cap, len, &status, sizeof status) &&
           pw_put(buf, cap, len, &n64, sizeof n64) && pw_put(buf, cap, len, data, n);
}

/* Send the response in buf[8..len) (buf[0..8) is room for the frame header). */
int pw_send_frame(int fd, char *buf, size_t len)
{
    uint64_t body = len - sizeof(uint64_t);
    memcpy(buf, &body, sizeof body);
    return pw_write_full(fd, buf, len);
}

_Noreturn void pw_child_main(int in_fd, int out_fd, const char *init)
{
    char err[BENCH_ERRLEN] = "";
    char *rbuf = NULL, *wbuf = NULL;
    size_t rcap = 0, wcap = 0, rlen = 0, wlen = sizeof(uint64_t);
    lua_State *L = NULL;
    int rc = bench_lua_new(&L, init, NULL, err);
    uint32_t one = 1;
    if (!pw_grow(&wbuf, &wcap, sizeof(uint64_t)) ||
        !pw_put(&wbuf, &wcap, &wlen, &one, sizeof one) ||
        !pw_put_item(&wbuf, &wcap, &wlen, rc, err, rc == INTERP_OK ? 0 : strlen(err)) ||
        pw_send_frame(out_fd, wbuf, wlen) != 0 || rc != INTERP_OK)
        _exit(1);
    while (pw_read_frame(in_fd, &rbuf, &rcap, &rlen) == 0) {
        pw_cursor c = {rbuf, rbuf + rlen, false};
        char fn[PW_MAX_FN + 1];
        uint32_t fn_len = pw_take_u32(&c);
        const char *fs = fn_len <= PW_MAX_FN ? pw_take(&c, fn_len) : NULL;
        if (!fs)
            _exit(2);
        memcpy(fn, fs, fn_len);
        fn[fn_len] = '\0';
        uint32_t k = pw_take_u32(&c);
        wlen = sizeof(uint64_t);
        if (!pw_put(&wbuf, &wcap, &wlen, &k, sizeof k))
            _exit(3);
        for (uint32_t i = 0; i < k; i++) {
            uint64_t n = pw_take_u64(&c);
            const char *bytes = pw_take(&c, (size_t)n);
            if (c.bad)
                _exit(2);
            interp_msg *args = NULL, *res = NULL;
            /* from our own parent process: its functions are trusted */
            rc = interp_msg_from_bytes_ex(bytes, (size_t)n, 0, INTERP_MSG_TRUST_FUNCTIONS, &args);
            if (rc == INTERP_OK)
                rc = bench_lua_call(L, fn, args, &res, err);
            else
                snprintf(err, sizeof err, "arguments: %s", interp_strerror(rc));
            bool ok = rc == INTERP_OK ? pw_put_item(&wbuf, &wcap, &wlen, rc, interp_msg_data(res),
                                                    interp_msg_size(res))
                                      : pw_put_item(&wbuf, &wcap, &wlen, rc, err, strlen(err));
            interp_msg_free(args);
            interp_msg_free(res);
            if (!ok)
                _exit(3);
        }
        if (pw_send_frame(out_fd, wbuf, wlen) != 0)
            _exit(4);
    }
    lua_close(L);
    free(rbuf);
    free(wbuf);
    _exit(0);
}
