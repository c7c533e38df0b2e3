/* paired.h - figures that survive a drifting machine: paired, same-round ratios.
 *
 * Two things measured back to back (A's runs, then B's) see different machines when other
 * work comes and goes: the drift decides a comparison. The benchmarks here interleave them
 * instead (round i runs A, B, C, ... with the start rotated by i) and compare per round:
 * ratio_i = a_i / b_i. The figure is the median of those ratios, the spread their range (the
 * lowest and the highest round). A check whose spread straddles its threshold says "within
 * noise" instead of a verdict: a verdict needs every round on the same side. (Quartiles were
 * too narrow: on a 2-core VM shared with other builds, five runs of five rounds gave PASS in
 * one run and FAIL in another with quartiles clear of the threshold in both.)
 * Header only (static functions), shared by bench_compare, bench_pool and bench/peers. */
#ifndef BENCH_PAIRED_H
#define BENCH_PAIRED_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

enum { PAIRED_MAX = 64 };

typedef struct paired_stat {
    double med;    /* median (linear interpolation between the middle two) */
    double lo, hi; /* the spread: lowest and highest */
    int n;
} paired_stat;

static inline int paired__cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and range of v[0..n) (n <= PAIRED_MAX; v is left unchanged). */
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
    r.med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    r.lo = s[0];
    r.hi = s[n - 1];
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

/* PASS when every round is on the right side of threshold (>= when higher_ok, else <=),
 * FAIL when every round is on the wrong side, NOISE (within noise of the threshold)
 * otherwise: the range straddles it. */
static inline paired_verdict paired_judge(paired_stat s, double threshold, bool higher_ok)
{
    bool straddle = s.lo < threshold && s.hi > threshold;
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
    snprintf(buf, len, "%.2f [%.2f..%.2f]", s.med, s.lo, s.hi);
    return buf;
}

#endif
