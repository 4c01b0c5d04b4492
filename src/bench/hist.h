/*
 * hist.h - the latency histogram of `sockit bench` (hist.c): no I/O.
 *
 * Log-linear (HDR-style) histogram of nanoseconds: values below 256 have a
 * bucket each; above, every power of two is split into 128 buckets, so a
 * bucket's width is at most 1/128 (0.8%) of its values. Values up to 2^36 ns
 * (68.7 s) are kept apart; larger ones share the last bucket. Constant size,
 * one per worker thread, merged at the end.
 */
#ifndef SK_BENCH_HIST_H
#define SK_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define BH_SUB_BITS 7
#define BH_SUB (1u << BH_SUB_BITS)
#define BH_TOP_BITS 36
#define BH_BUCKETS ((BH_TOP_BITS - BH_SUB_BITS + 1) << BH_SUB_BITS) /* 3840 */

typedef struct bench_hist {
    uint64_t count;
    uint64_t min, max; /* exact (max is not clamped) */
    double sum;
    uint64_t b[BH_BUCKETS];
} bench_hist;

void bench_hist_init(bench_hist *h);
void bench_hist_record(bench_hist *h, uint64_t v);
void bench_hist_merge(bench_hist *dst, const bench_hist *src);
/* The value at percentile p (0..100): the highest value of the bucket that
 * holds the ceil(p% * count)-th smallest value, never more than max. 0 if empty. */
uint64_t bench_hist_percentile(const bench_hist *h, double p);
double bench_hist_mean(const bench_hist *h);
/* Bucket of a value, and the highest value that bucket holds. */
size_t bench_hist_index(uint64_t v);
uint64_t bench_hist_highest(size_t idx);

#endif
