/* bench_mem.h - the process's resident memory, for the benchmarks that measure memory per
 * worker or per context (bench_pool, bench_ctx). Header only. */
#ifndef BENCH_MEM_H
#define BENCH_MEM_H

#include <stdio.h>
#include <unistd.h>

/* Resident KiB of the whole process (/proc/self/statm); 0 when it cannot be read. */
static inline long bench_rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

#endif
