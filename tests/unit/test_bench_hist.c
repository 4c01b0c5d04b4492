/*
 * test_bench_hist.c - unit tests for the pieces of `sockit bench` that do no
 * I/O: the latency histogram (src/bench/hist.c) and the reply checkers
 * (src/bench/check.c: message patterns, streams, the HTTP response parser).
 * Linked with the bench objects ($(BUILD)/libsockit-bench.a).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hist.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A log-uniform value from 0 to about 2^36 ns (68 s): every decade is hit. */
static uint64_t rnd_latency(void)
{
    unsigned bits = (unsigned)(rnd() % 37);
    return bits == 0 ? 0 : rnd() & ((UINT64_C(1) << bits) - 1);
}

/* The exact value at percentile p: the ceil(p% * n)-th smallest. */
static uint64_t reference(const uint64_t *sorted, size_t n, double p)
{
    double want = p / 100.0 * (double)n;
    size_t rank = (size_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

/* ---- histogram */

static void test_hist_buckets(void **state)
{
    (void)state;
    /* Small values are exact; above, a bucket is at most 1/128 of its values wide. */
    for (uint64_t v = 0; v < 256; v++)
        assert_int_equal(bench_hist_highest(bench_hist_index(v)), v);
    for (int i = 0; i < 200000; i++) {
        uint64_t v = rnd_latency();
        size_t idx = bench_hist_index(v);
        assert_true(idx < BH_BUCKETS);
        uint64_t hi = bench_hist_highest(idx);
        assert_true(hi >= v);
        assert_true(hi - v <= v / 128);
        if (idx > 0)
            assert_true(bench_hist_highest(idx - 1) < v); /* buckets do not overlap */
    }
    /* Consecutive buckets tile the range with no gaps. */
    for (size_t i = 1; i < BH_BUCKETS; i++)
        assert_int_equal(bench_hist_index(bench_hist_highest(i - 1) + 1), i);
    assert_int_equal(bench_hist_index(UINT64_MAX), BH_BUCKETS - 1);
}

static void test_hist_percentiles_random(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    bench_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    bench_hist_init(h);
    double sum = 0;
    for (size_t i = 0; i < N; i++) {
        v[i] = rnd_latency();
        bench_hist_record(h, v[i]);
        sum += (double)v[i];
    }
    qsort(v, N, sizeof *v, cmp_u64);
    assert_int_equal(h->count, N);
    assert_int_equal(h->min, v[0]);
    assert_int_equal(h->max, v[N - 1]);
    assert_true(bench_hist_mean(h) > sum / N * 0.999999 && bench_hist_mean(h) < sum / N * 1.000001);
    const double ps[] = {0, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};
    uint64_t prev = 0;
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        uint64_t ref = reference(v, N, ps[k]);
        uint64_t got = bench_hist_percentile(h, ps[k]);
        assert_true(got >= ref);
        assert_true(got - ref <= ref / 128);
        assert_true(got >= prev); /* ordered */
        prev = got;
    }
    assert_int_equal(bench_hist_percentile(h, 100), v[N - 1]);
    free(v);
    free(h);
}

static void test_hist_merge(void **state)
{
    (void)state;
    bench_hist *all = malloc(sizeof *all), *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_true(all && a && b);
    bench_hist_init(all);
    bench_hist_init(a);
    bench_hist_init(b);
    for (int i = 0; i < 50000; i++) {
        uint64_t x = rnd_latency();
        bench_hist_record(all, x);
        bench_hist_record(rnd() & 1 ? a : b, x);
    }
    bench_hist *m = malloc(sizeof *m);
    assert_non_null(m);
    bench_hist_init(m);
    bench_hist_merge(m, a);
    bench_hist_merge(m, b);
    assert_int_equal(m->count, all->count);
    assert_int_equal(m->min, all->min);
    assert_int_equal(m->max, all->max);
    assert_memory_equal(m->b, all->b, sizeof m->b);
    for (double p = 0; p <= 100; p += 0.5)
        assert_int_equal(bench_hist_percentile(m, p), bench_hist_percentile(all, p));
    /* Merging an empty histogram changes nothing (its min is UINT64_MAX). */
    bench_hist empty;
    bench_hist_init(&empty);
    bench_hist_merge(m, &empty);
    assert_int_equal(m->min, all->min);
    assert_int_equal(m->count, all->count);
    free(all);
    free(a);
    free(b);
    free(m);
}

static void test_hist_extremes(void **state)
{
    (void)state;
    bench_hist h;
    bench_hist_init(&h);
    assert_int_equal(bench_hist_percentile(&h, 50), 0); /* empty */
    assert_int_equal(bench_hist_percentile(&h, 100), 0);
    assert_true(bench_hist_mean(&h) == 0.0);

    bench_hist_record(&h, 0);
    assert_int_equal(bench_hist_percentile(&h, 0), 0);
    assert_int_equal(bench_hist_percentile(&h, 100), 0);

    bench_hist_init(&h);
    bench_hist_record(&h, 1000); /* 1 us */
    for (double p = 0; p <= 100; p += 10)
        assert_int_equal(bench_hist_percentile(&h, p), 1000); /* never above max */

    /* 60 s is inside the range, with the usual precision. */
    bench_hist_init(&h);
    uint64_t sixty = UINT64_C(60000000000);
    bench_hist_record(&h, sixty);
    bench_hist_record(&h, 1);
    uint64_t p50 = bench_hist_percentile(&h, 50);
    assert_int_equal(p50, 1);
    assert_int_equal(bench_hist_percentile(&h, 100), sixty);
    assert_true(bench_hist_highest(bench_hist_index(sixty)) - sixty <= sixty / 128);

    /* Beyond the range: kept in the last bucket, max stays exact. */
    bench_hist_init(&h);
    uint64_t huge = UINT64_C(100) * 1000000000; /* 100 s */
    bench_hist_record(&h, huge);
    bench_hist_record(&h, UINT64_MAX);
    bench_hist_record(&h, 5);
    assert_int_equal(h.max, UINT64_MAX);
    assert_int_equal(bench_hist_percentile(&h, 100), UINT64_MAX);
    uint64_t p66 = bench_hist_percentile(&h, 66);
    assert_int_equal(p66, bench_hist_highest(BH_BUCKETS - 1)); /* clamped, 68.7 s */
    assert_int_equal(bench_hist_percentile(&h, 10), 5);
}

/* ---- message patterns */

static size_t build(uint32_t conn, uint64_t seq, size_t size, uint8_t *out)
{
    uint8_t hdr[BENCH_HDR];
    struct iovec iov[2];
    int n = bench_msg_iov(conn, seq, size, 0, hdr, iov);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    return len;
}

static void test_msg_roundtrip(void **state)
{
    (void)state;
    static uint8_t buf[BENCH_MSG_MAX], other[BENCH_MSG_MAX];
    const size_t sizes[] = {1, 3, 7, 8, 9, 64, 1000, 65507, BENCH_MSG_MAX};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t size = sizes[k];
        assert_int_equal(build(7, 12345, size, buf), size);
        assert_true(bench_msg_check(7, 12345, size, 0, buf, size));
        /* Any split into two pieces checks the same. */
        for (int t = 0; t < 50; t++) {
            size_t cut = (size_t)(rnd() % (size + 1));
            assert_true(bench_msg_check(7, 12345, size, 0, buf, cut));
            assert_true(bench_msg_check(7, 12345, size, cut, buf + cut, size - cut));
        }
        /* Rebuilding from the middle gives the same bytes. */
        uint8_t hdr[BENCH_HDR];
        struct iovec iov[2];
        size_t pos = size / 3, at = pos;
        int n = bench_msg_iov(7, 12345, size, pos, hdr, iov);
        for (int i = 0; i < n; i++) {
            assert_memory_equal(iov[i].iov_base, buf + at, iov[i].iov_len);
            at += iov[i].iov_len;
        }
        assert_int_equal(at, size);
        /* Past the end is never a match. */
        assert_false(bench_msg_check(7, 12345, size, 1, buf, size));
    }
    /* Unique per connection and sequence number. */
    build(7, 12345, 64, buf);
    build(7, 12346, 64, other);
    assert_memory_not_equal(buf, other, 64);
    assert_false(bench_msg_check(7, 12346, 64, 0, buf, 64));
    build(8, 12345, 64, other);
    assert_memory_not_equal(buf, other, 64);
    assert_false(bench_msg_check(8, 12345, 64, 0, buf, 64));
    /* The body alone differs too (not only the header). */
    build(7, 1, 4096, buf);
    build(7, 2, 4096, other);
    assert_memory_not_equal(buf + BENCH_HDR, other + BENCH_HDR, 4096 - BENCH_HDR);
}

static void test_msg_mismatch_detected(void **state)
{
    (void)state;
    static uint8_t buf[4096];
    const size_t sizes[] = {1, 8, 64, 4096};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t size = sizes[k];
        build(3, 99, size, buf);
        for (size_t i = 0; i < size; i++) {
            uint8_t bit = (uint8_t)(1u << (rnd() % 8));
            buf[i] ^= bit; /* flip a bit, then check in pieces as reads would come */
            size_t cut = (size_t)(rnd() % (size + 1));
            int first = bench_msg_check(3, 99, size, 0, buf, cut);
            int second = bench_msg_check(3, 99, size, cut, buf + cut, size - cut);
            assert_false(first && second);
            assert_int_equal(first, i >= cut);
            assert_false(bench_msg_check(3, 99, size, 0, buf, size));
            buf[i] ^= bit;
        }
        assert_true(bench_msg_check(3, 99, size, 0, buf, size));
    }
}

static void test_stream(void **state)
{
    (void)state;
    static uint8_t buf[1 << 16];
    /* Across the end of the block: the stream wraps around. */
    for (uint64_t pos = BENCH_BLOCK - 1000; pos < BENCH_BLOCK * 3ull + 5; pos += BENCH_BLOCK) {
        struct iovec iov[2];
        size_t len = 0;
        int n = bench_stream_iov(5, pos, sizeof buf, iov);
        assert_true(n >= 1 && n <= 2);
        for (int i = 0; i < n; i++) {
            memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
            len += iov[i].iov_len;
        }
        assert_int_equal(len, sizeof buf);
        assert_true(bench_stream_check(5, pos, buf, sizeof buf));
        assert_true(bench_stream_check(5, pos + 100, buf + 100, 5000));
        assert_false(bench_stream_check(5, pos + 1, buf, 5000)); /* shifted by one */
        assert_false(bench_stream_check(6, pos, buf, 5000));     /* another connection */
        buf[40000] ^= 0x40;
        assert_false(bench_stream_check(5, pos, buf, sizeof buf));
    }
}

/* ---- HTTP responses */

static const char RESP[] = "HTTP/1.1 200 OK\r\n"
                           "Server: test\r\n"
                           "content-LENGTH:  5 \r\n"
                           "Content-Type: text/plain\r\n"
                           "\r\n"
                           "hello";

static void test_http_whole(void **state)
{
    (void)state;
    bench_http p;
    bench_http_reset(&p);
    size_t used;
    size_t len = strlen(RESP);
    assert_int_equal(bench_http_feed(&p, (const uint8_t *)RESP, len, &used), BENCH_HTTP_DONE);
    assert_int_equal(used, len);
    assert_int_equal(p.status, 200);
    assert_true(p.keep_alive);
    assert_int_equal(p.bytes, len);
}

static void test_http_split_reads(void **state)
{
    (void)state;
    /* Two pipelined responses, fed in every possible pair of pieces, and byte
     * by byte: the same two answers each time. */
    char two[512];
    snprintf(two, sizeof two, "%sHTTP/1.1 404 Not Found\nContent-Length: 3\n\nnop", RESP);
    size_t len = strlen(two), first_len = strlen(RESP);
    for (size_t cut = 0; cut <= len; cut++) {
        bench_http p;
        bench_http_reset(&p);
        int statuses[2], got = 0;
        size_t pieces[2][2] = {{0, cut}, {cut, len}};
        size_t done_at = 0;
        for (int k = 0; k < 2; k++) {
            size_t at = pieces[k][0], end = pieces[k][1];
            while (at < end) {
                size_t used;
                int r = bench_http_feed(&p, (const uint8_t *)two + at, end - at, &used);
                assert_int_not_equal(r, BENCH_HTTP_ERROR);
                at += used;
                if (r == BENCH_HTTP_MORE) {
                    assert_int_equal(at, end);
                    break;
                }
                assert_true(got < 2);
                statuses[got++] = p.status;
                if (got == 1)
                    done_at = at;
                bench_http_reset(&p);
            }
        }
        assert_int_equal(got, 2);
        assert_int_equal(statuses[0], 200);
        assert_int_equal(statuses[1], 404);
        assert_int_equal(done_at, first_len);
    }
    bench_http p;
    bench_http_reset(&p);
    int got = 0;
    for (size_t i = 0; i < len; i++) {
        size_t used;
        int r = bench_http_feed(&p, (const uint8_t *)two + i, 1, &used);
        assert_int_equal(used, 1);
        if (r == BENCH_HTTP_DONE) {
            got++;
            bench_http_reset(&p);
        }
    }
    assert_int_equal(got, 2);
}

static int parse_one(const char *text, bench_http *p)
{
    bench_http_reset(p);
    size_t used;
    return bench_http_feed(p, (const uint8_t *)text, strlen(text), &used);
}

static void test_http_variants(void **state)
{
    (void)state;
    bench_http p;
    /* Connection: close, and HTTP/1.0 without keep-alive, end the connection. */
    assert_int_equal(
        parse_one("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", &p),
        BENCH_HTTP_DONE);
    assert_false(p.keep_alive);
    assert_int_equal(parse_one("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", &p),
                     BENCH_HTTP_DONE);
    assert_false(p.keep_alive);
    assert_int_equal(
        parse_one("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", &p),
        BENCH_HTTP_DONE);
    assert_true(p.keep_alive);
    /* 204 and 304 have no body; a 1xx is followed by the real response. */
    assert_int_equal(parse_one("HTTP/1.1 204 No Content\r\n\r\n", &p), BENCH_HTTP_DONE);
    assert_int_equal(parse_one("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", &p),
                     BENCH_HTTP_DONE);
    assert_int_equal(
        parse_one("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nab",
                  &p),
        BENCH_HTTP_DONE);
    assert_int_equal(p.status, 500);
    /* No length: the body runs until the server closes. */
    assert_int_equal(parse_one("HTTP/1.1 200 OK\r\n\r\nsome body", &p), BENCH_HTTP_MORE);
    assert_false(p.keep_alive);
    assert_int_equal(bench_http_eof(&p), BENCH_HTTP_DONE);
    /* Closed between responses, and in the middle of one. */
    bench_http_reset(&p);
    assert_int_equal(bench_http_eof(&p), BENCH_HTTP_MORE);
    assert_int_equal(parse_one("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &p),
                     BENCH_HTTP_MORE);
    assert_int_equal(bench_http_eof(&p), BENCH_HTTP_ERROR);
    assert_int_equal(parse_one("HTTP/1.1 200 O", &p), BENCH_HTTP_MORE);
    assert_int_equal(bench_http_eof(&p), BENCH_HTTP_ERROR);
}

static void test_http_errors(void **state)
{
    (void)state;
    bench_http p;
    const char *bad[] = {
        "hello world\r\n",
        "HTTP/2 200 OK\r\n",
        "HTTP/1.1 20 OK\r\n",
        "HTTP/1.1 2000 OK\r\n",
        "HTTP/1.1 abc OK\r\n",
        "HTTP/1.1 099 Low\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(parse_one(bad[i], &p), BENCH_HTTP_ERROR);
    /* A header line without end is refused once it is too long. */
    static char big[20000];
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', sizeof big - 21);
    assert_int_equal(parse_one(big, &p), BENCH_HTTP_ERROR);
    /* A long but finite header is fine (only its start is kept). */
    static char ok[4000];
    int n = snprintf(ok, sizeof ok, "HTTP/1.1 200 OK\r\nX-Long: ");
    memset(ok + n, 'b', 3000);
    snprintf(ok + n + 3000, sizeof ok - (size_t)n - 3000, "\r\nContent-Length: 2\r\n\r\nhi");
    assert_int_equal(parse_one(ok, &p), BENCH_HTTP_DONE);
    assert_int_equal(p.status, 200);
}

int main(void)
{
    bench_pattern_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets),     cmocka_unit_test(test_hist_percentiles_random),
        cmocka_unit_test(test_hist_merge),       cmocka_unit_test(test_hist_extremes),
        cmocka_unit_test(test_msg_roundtrip),    cmocka_unit_test(test_msg_mismatch_detected),
        cmocka_unit_test(test_stream),           cmocka_unit_test(test_http_whole),
        cmocka_unit_test(test_http_split_reads), cmocka_unit_test(test_http_variants),
        cmocka_unit_test(test_http_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
