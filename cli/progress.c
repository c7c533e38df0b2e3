/* progress.c - the progress line of `interp-pool map` on stderr: items done, failures, rate,
 * and, when the input is a regular file (its size known), the share done and an ETA measured
 * in bytes of input. Silent unless stderr is a terminal. */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

void cli_progress_init(cli_progress *p, int fd)
{
    memset(p, 0, sizeof *p);
    p->on = isatty(STDERR_FILENO);
    p->start = p->last = interp_now();
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        off_t pos = lseek(fd, 0, SEEK_CUR);
        p->total = st.st_size - (pos > 0 ? pos : 0);
    }
}

static void fmt_duration(char *buf, size_t n, double s)
{
    if (s < 0 || s > 359999)
        snprintf(buf, n, "--:--");
    else if (s >= 3600)
        snprintf(buf, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

static void draw(cli_progress *p, double now)
{
    double el = now - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    int width = 80;
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        width = ws.ws_col;
    char stats[160], t[32];
    int len = snprintf(stats, sizeof stats, " %zu items", p->done);
    if (p->failed)
        len += snprintf(stats + len, sizeof stats - (size_t)len, " (%zu failed)", p->failed);
    len += snprintf(stats + len, sizeof stats - (size_t)len, "  %.0f/s", rate);
    if (p->total > 0 && p->bytes_done > 0) {
        double frac = (double)p->bytes_done / (double)p->total;
        if (frac > 1)
            frac = 1;
        /* too early (or nothing done yet): no estimate worth showing */
        fmt_duration(t, sizeof t, frac > 0 && el >= 0.5 ? el * (1 - frac) / frac : -1);
        snprintf(stats + len, sizeof stats - (size_t)len, "  ETA %s", t);
        int bar = width - (int)strlen(stats) - 9;
        if (bar > 40)
            bar = 40;
        char b[48];
        int fill = bar > 0 ? (int)(frac * bar) : 0;
        for (int i = 0; i < bar; i++)
            b[i] = i < fill ? '#' : '.';
        b[bar > 0 ? bar : 0] = '\0';
        fprintf(stderr, "\r\033[K%3d%% [%s]%s", (int)(frac * 100), b, stats);
    } else {
        fmt_duration(t, sizeof t, el);
        snprintf(stats + len, sizeof stats - (size_t)len, "  %s elapsed", t);
        fprintf(stderr, "\r\033[K%s", stats + 1);
    }
    fflush(stderr);
    p->shown = true;
}

void cli_progress_update(cli_progress *p, size_t done, size_t failed, off_t bytes_done, bool force)
{
    p->done = done;
    p->failed = failed;
    p->bytes_done = bytes_done;
    if (!p->on)
        return;
    double now = interp_now();
    if (!force && p->shown && now - p->last < 0.1)
        return;
    p->last = now;
    draw(p, now);
}

void cli_progress_clear(cli_progress *p)
{
    if (p->on && p->shown) {
        fputs("\r\033[K", stderr);
        p->shown = false;
    }
}

void cli_progress_finish(cli_progress *p)
{
    if (!p->on)
        return;
    draw(p, interp_now());
    fputc('\n', stderr);
    p->shown = false;
}
