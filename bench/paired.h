/* paired.h - figures that survive a drifting machine: paired, same-round ratios.
 *
 * Two things measured back to back (A's runs, then B's) see different machines when other
 * work comes and goes: the drift decides a comparison. The benchmarks here interleave them
 * instead (round i runs A, B, C, ... with the start rotated by i) and compare per round:
 * ratio_i = a_i / b_i. The figure is the median of those ratios, the spread their quartiles.
 * A check whose spread straddles its threshold says "within noise" instead of a verdict.
 * Header only (static functions), shared by bench_compare, bench_pool and bench/peers. */
#ifndef BENCH_PAIRED_H
#define BENCH_PAIRED_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

enum { PAIRED_MAX = 64 };

typedef struct paired_stat {
    double med, q1, q3; /* median and quartiles (linear interpolation) */
    int n;
} paired_stat;

static inline int paired__cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and quartiles of v[0..n) (n <= PAIRED_MAX; v is left unchanged). */
static inline paired_stat paired_of(const double *v, int n)
{
    double s[PAIRED_MAX];
    paired_stat r = {0, 0, 0, n};
    if (n <= 0)
        return r;
    n = n > PAIRED_MAX ? PAIRED_MAX : n;
    for (int i = 0; i < n; i++)
        s[i] = v[i];
    qsort(s, (size_t)n, sizeof s[0], paired__cmp);
    double q[3] = {0.25, 0.5, 0.75}, out[3];
    for (int k = 0; k < 3; k++) {
        double pos = q[k] * (n - 1);
        int lo = (int)pos;
        double f = pos - lo;
        out[k] = lo + 1 < n ? s[lo] * (1 - f) + s[lo + 1] * f : s[lo];
    }
    r.q1 = out[0], r.med = out[1], r.q3 = out[2];
    return r;
}

/* The per-round ratios num[i] / den[i] (times of the same round), summarised. */
static inline paired_stat paired_ratio(const double *num, const double *den, int n)
{
    double v[PAIRED_MAX];
    n = n > PAIRED_MAX ? PAIRED_MAX : n;
    for (int i = 0; i < n; i++)
        v[i] = den[i] > 0 ? num[i] / den[i] : 0;
    return paired_of(v, n);
}

typedef enum { PAIRED_PASS, PAIRED_FAIL, PAIRED_NOISE } paired_verdict;

/* PASS when the median is on the right side of threshold (>= when higher_ok, else <=) and
 * the quartiles do not straddle it, FAIL when the median is on the wrong side and they do
 * not straddle it, NOISE (within noise of the threshold) otherwise. */
static inline paired_verdict paired_judge(paired_stat s, double threshold, bool higher_ok)
{
    bool straddle = s.q1 < threshold && s.q3 > threshold;
    if (straddle)
        return PAIRED_NOISE;
    bool ok = higher_ok ? s.med >= threshold : s.med <= threshold;
    return ok ? PAIRED_PASS : PAIRED_FAIL;
}

static inline const char *paired_word(paired_verdict v)
{
    return v == PAIRED_PASS ? "PASS" : v == PAIRED_FAIL ? "FAIL" : "NOISE";
}

/* "1.91 [1.85..1.96]" into buf. */
static inline const char *paired_fmt(char *buf, size_t len, paired_stat s)
{
    snprintf(buf, len, "%.2f [%.2f..%.2f]", s.med, s.q1, s.q3);
    return buf;
}

#endif
