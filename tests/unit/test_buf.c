/* test_buf.c - unit tests for src/lib/buf.c: the sk_buf byte queue. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockit.h"

static void assert_content(const sk_buf *b, const void *want, size_t len)
{
    assert_int_equal(b->len, len);
    if (len > 0) {
        assert_non_null(b->data);
        assert_true(b->off + b->len <= b->cap);
        assert_memory_equal(sk_buf_head(b), want, len);
    }
}

/* ---- append and consume */

static void test_append_consume(void **state)
{
    (void)state;
    sk_buf b = {0};
    assert_int_equal(sk_buf_append(&b, "hello", 5), 0);
    assert_content(&b, "hello", 5);
    assert_int_equal(sk_buf_append(&b, " world", 6), 0);
    assert_content(&b, "hello world", 11);
    sk_buf_consume(&b, 2);
    assert_content(&b, "llo world", 9);
    sk_buf_consume(&b, 0);
    assert_content(&b, "llo world", 9);
    assert_int_equal(sk_buf_append(&b, "", 0), 0);
    assert_content(&b, "llo world", 9);
    sk_buf_consume(&b, 9);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    assert_int_equal(sk_buf_append(&b, "ab", 2), 0);
    sk_buf_consume(&b, 1000); /* more than there is: empties */
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    sk_buf_free(&b);
}

/* ---- reserve and commit */

static void test_reserve_commit(void **state)
{
    (void)state;
    sk_buf b = {0};
    uint8_t *p = sk_buf_reserve(&b, 10);
    assert_non_null(p);
    assert_true(b.cap >= 10);
    assert_int_equal(b.len, 0); /* reserving adds nothing */
    memcpy(p, "0123456789", 10);
    sk_buf_commit(&b, 4); /* commit only part of it */
    assert_content(&b, "0123", 4);
    p = sk_buf_reserve(&b, 3);
    assert_non_null(p);
    assert_ptr_equal(p, sk_buf_head(&b) + 4); /* right after the content */
    memcpy(p, "xyz", 3);
    sk_buf_commit(&b, 3);
    assert_content(&b, "0123xyz", 7);
    sk_buf_free(&b);
}

/* ---- growth keeps content; max gives ENOBUFS */

static void test_growth(void **state)
{
    (void)state;
    sk_buf b = {0};
    uint8_t chunk[1000];
    size_t total = 0;
    for (int i = 0; i < 300; i++) {
        memset(chunk, i & 0xff, sizeof chunk);
        assert_int_equal(sk_buf_append(&b, chunk, sizeof chunk), 0);
        total += sizeof chunk;
        assert_int_equal(b.len, total);
        assert_true(b.cap >= b.off + b.len);
    }
    for (int i = 0; i < 300; i++) {
        memset(chunk, i & 0xff, sizeof chunk);
        assert_memory_equal(sk_buf_head(&b) + (size_t)i * sizeof chunk, chunk, sizeof chunk);
    }
    /* one big reserve on a small buffer */
    sk_buf c = {0};
    assert_int_equal(sk_buf_append(&c, "abc", 3), 0);
    uint8_t *p = sk_buf_reserve(&c, 1u << 20);
    assert_non_null(p);
    assert_true(c.cap >= 3 + (1u << 20));
    p[(1u << 20) - 1] = 'z';
    assert_content(&c, "abc", 3);
    sk_buf_free(&b);
    sk_buf_free(&c);
}

static void test_max_limit(void **state)
{
    (void)state;
    sk_buf b = {.max = 100};
    uint8_t data[100];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    assert_int_equal(sk_buf_append(&b, data, 60), 0);
    assert_int_equal(sk_buf_append(&b, data + 60, 40), 0); /* exactly max */
    assert_content(&b, data, 100);
    assert_true(b.cap <= b.max);
    errno = 0;
    assert_int_equal(sk_buf_append(&b, "x", 1), -1);
    assert_int_equal(errno, ENOBUFS);
    assert_content(&b, data, 100); /* unchanged */
    errno = 0;
    assert_null(sk_buf_reserve(&b, 1));
    assert_int_equal(errno, ENOBUFS);
    sk_buf_consume(&b, 30);
    assert_int_equal(sk_buf_append(&b, data, 30), 0); /* room again */
    assert_int_equal(b.len, 100);
    assert_memory_equal(sk_buf_head(&b), data + 30, 70);
    assert_memory_equal(sk_buf_head(&b) + 70, data, 30);
    assert_true(b.cap <= b.max);

    sk_buf big = {.max = 5000};
    errno = 0;
    assert_null(sk_buf_reserve(&big, 5001));
    assert_int_equal(errno, ENOBUFS);
    assert_non_null(sk_buf_reserve(&big, 5000)); /* growth is clamped to max, not refused */
    assert_int_equal(big.cap, 5000);
    sk_buf_free(&b);
    sk_buf_free(&big);
}

/* ---- compaction: consumed space is reused without losing content */

static void test_compaction(void **state)
{
    (void)state;
    sk_buf b = {0};
    uint8_t in[8192], want[8192];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(sk_buf_append(&b, in, 3000), 0);
    size_t cap = b.cap;
    sk_buf_consume(&b, 2500); /* 500 left, far from the front */
    assert_int_equal(b.off, 2500);
    size_t room = cap - b.len; /* fits only once the front is reclaimed */
    assert_true(room > b.cap - b.off - b.len);
    assert_true(room <= sizeof in);
    assert_int_equal(sk_buf_append(&b, in, room), 0);
    memcpy(want, in + 2500, 500);
    memcpy(want + 500, in, room);
    assert_content(&b, want, 500 + room);
    assert_int_equal(b.cap, cap); /* compacted, not grown */
    assert_int_equal(b.off, 0);
    sk_buf_free(&b);
}

/* ---- free, then use again */

static void test_free_reuse(void **state)
{
    (void)state;
    sk_buf b = {.max = 64};
    assert_int_equal(sk_buf_append(&b, "first", 5), 0);
    sk_buf_consume(&b, 1);
    sk_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.off, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 64); /* the limit stays */
    assert_int_equal(sk_buf_append(&b, "second", 6), 0);
    assert_content(&b, "second", 6);
    sk_buf_free(&b);
    sk_buf_free(&b); /* twice is harmless */
    assert_null(b.data);
    errno = 0;
    assert_null(sk_buf_reserve(&b, 65));
    assert_int_equal(errno, ENOBUFS);
}

/* ---- randomized: 1000 operations against a plain-array model */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

static void run_model(uint64_t seed, size_t max)
{
    enum { CAP = 1 << 18 };
    uint8_t *model = malloc(CAP), *src = malloc(8192);
    size_t mlen = 0;
    sk_buf b = {.max = max};
    assert_non_null(model);
    assert_non_null(src);
    rng_state = seed;
    for (int op = 0; op < 1000; op++) {
        uint32_t kind = rnd(10);
        size_t n = rnd(kind < 2 ? 8192 : 3000);
        for (size_t i = 0; i < n; i++)
            src[i] = (uint8_t)rnd(256);
        int fits = (max == 0 || mlen + n <= max) && mlen + n <= CAP;
        if (kind < 4) { /* append */
            if (mlen + n > CAP)
                continue;
            int rc = sk_buf_append(&b, src, n);
            if (fits) {
                assert_int_equal(rc, 0);
                memcpy(model + mlen, src, n);
                mlen += n;
            } else {
                assert_int_equal(rc, -1);
                assert_int_equal(errno, ENOBUFS);
            }
        } else if (kind < 7) { /* consume */
            sk_buf_consume(&b, n);
            size_t k = n < mlen ? n : mlen;
            memmove(model, model + k, mlen - k);
            mlen -= k;
        } else if (kind < 9) { /* reserve n, commit part */
            if (mlen + n > CAP || n == 0)
                continue;
            uint8_t *p = sk_buf_reserve(&b, n);
            if (!fits) {
                assert_null(p);
                continue;
            }
            assert_non_null(p);
            size_t k = rnd((uint32_t)n + 1);
            memcpy(p, src, k);
            sk_buf_commit(&b, k);
            memcpy(model + mlen, src, k);
            mlen += k;
        } else if (rnd(10) == 0) { /* occasionally free */
            sk_buf_free(&b);
            mlen = 0;
        }
        if (b.len != mlen)
            fail_msg("seed %llu op %d: len %zu, model %zu", (unsigned long long)seed, op, b.len,
                     mlen);
        if (mlen && memcmp(sk_buf_head(&b), model, mlen) != 0)
            fail_msg("seed %llu op %d: content differs", (unsigned long long)seed, op);
        if (max)
            assert_true(b.cap <= max);
    }
    sk_buf_free(&b);
    free(model);
    free(src);
}

static void test_random_model(void **state)
{
    (void)state;
    run_model(1, 0);
    run_model(0x5eed, 0);
    run_model(42, 20000);
    run_model(7, 5000);
}

/* ---- known bugs (see the report): overflow in the size checks, reserve(0) */

static void test_regress_reserve_overflow(void **state)
{
    (void)state;
    sk_buf b = {0};
    assert_int_equal(sk_buf_append(&b, "0123456789", 10), 0);
    assert_null(sk_buf_reserve(&b, SIZE_MAX - 5)); /* len + n wraps to 4 */
    sk_buf_free(&b);
    sk_buf m = {.max = 100};
    assert_int_equal(sk_buf_append(&m, "0123456789", 10), 0);
    errno = 0;
    assert_null(sk_buf_reserve(&m, SIZE_MAX - 5)); /* slips past the max check */
    assert_int_equal(errno, ENOBUFS);
    sk_buf_free(&m);
}

static void test_regress_reserve_zero(void **state)
{
    (void)state;
    sk_buf b = {0};
    assert_non_null(sk_buf_reserve(&b, 0)); /* NULL means failure, but nothing failed */
    sk_buf_free(&b);
}

/* A request-response connection frees its small buffers whenever they
 * empty: the blocks are kept by the thread and handed out again (most
 * recently freed first), not returned to malloc each time. A buffer with a
 * smaller limit, or grown past the small size, is an ordinary allocation. */
static void test_small_blocks_reused(void **state)
{
    (void)state;
    sk_buf b[3] = {{0}};
    uint8_t *was[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sk_buf_append(&b[i], "request", 7), 0);
        was[i] = b[i].data;
    }
    for (int i = 0; i < 3; i++)
        sk_buf_free(&b[i]);
    for (int i = 2; i >= 0; i--) {
        assert_int_equal(sk_buf_append(&b[i], "next", 4), 0);
        assert_ptr_equal(b[i].data, was[i]);
        assert_memory_equal(sk_buf_head(&b[i]), "next", 4);
    }
    /* Grown: the small block goes back, the big one is its own. */
    uint8_t big[10000];
    memset(big, 'b', sizeof big);
    assert_int_equal(sk_buf_append(&b[0], big, sizeof big), 0);
    assert_true(b[0].cap > 4096);
    assert_memory_equal(sk_buf_head(&b[0]), "next", 4);
    for (int i = 0; i < 3; i++)
        sk_buf_free(&b[i]);
    sk_buf small = {.max = 100};
    assert_int_equal(sk_buf_append(&small, "x", 1), 0);
    assert_int_equal(small.cap, 100);
    sk_buf_free(&small);
}

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_consume),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_max_limit),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_free_reuse),
        cmocka_unit_test(test_random_model),
        cmocka_unit_test(test_regress_reserve_overflow),
        cmocka_unit_test(test_regress_reserve_zero),
        cmocka_unit_test(test_small_blocks_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
