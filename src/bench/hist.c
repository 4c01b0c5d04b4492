/*
 * hist.c - the latency histogram of `sockit bench`: log-linear buckets
 * (HDR style) over nanoseconds, constant memory, merged across threads.
 *
 * A value v below 256 has its own bucket. Above, with e = floor(log2 v), the
 * bucket is ((e - 7) << 7) + (v >> (e - 7)): the top 8 bits of v, so each
 * power of two has 128 buckets and a bucket is at most 1/128 of its values
 * wide. Values of 2^36 ns (68.7 s) and more share the last bucket.
 */
#include <string.h>

#include "hist.h"

#define BH_TOP_VALUE ((UINT64_C(1) << BH_TOP_BITS) - 1)

void bench_hist_init(bench_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

size_t bench_hist_index(uint64_t v)
{
    if (v > BH_TOP_VALUE)
        v = BH_TOP_VALUE;
    if (v < 2 * BH_SUB)
        return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - BH_SUB_BITS;
    return ((size_t)shift << BH_SUB_BITS) + (size_t)(v >> shift);
}

uint64_t bench_hist_highest(size_t idx)
{
    if (idx < 2 * BH_SUB)
        return idx;
    unsigned shift = (unsigned)(idx >> BH_SUB_BITS) - 1;
    uint64_t top = (uint64_t)idx - ((uint64_t)shift << BH_SUB_BITS); /* 128..255 */
    return ((top + 1) << shift) - 1;
}

void bench_hist_record(bench_hist *h, uint64_t v)
{
    h->b[bench_hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void bench_hist_merge(bench_hist *dst, const bench_hist *src)
{
    if (src->count == 0)
        return;
    for (size_t i = 0; i < BH_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t bench_hist_percentile(const bench_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p >= 100.0)
        return h->max;
    if (p < 0.0)
        p = 0.0;
    /* The rank of the value wanted: ceil(p% of count), at least the first. */
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (size_t i = 0; i < BH_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = bench_hist_highest(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double bench_hist_mean(const bench_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
