/* test_dgram.c - unit tests for src/engine/dgram.c: UDP_SEGMENT (GSO) runs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "engine.h"

static struct sockaddr_in peer_a, peer_b;

static int setup(void **state)
{
    (void)state;
    peer_a = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(5000)};
    peer_b = peer_a;
    inet_pton(AF_INET, "127.0.0.1", &peer_a.sin_addr);
    inet_pton(AF_INET, "127.0.0.2", &peer_b.sin_addr);
    return 0;
}

/* n replies to the peers named by who[] ('a' or 'b'), lengths len[]: the runs. */
static size_t runs(const char *who, const size_t *len, size_t *run)
{
    size_t n = strlen(who);
    const struct sockaddr *peer[128];
    socklen_t plen[128];
    for (size_t i = 0; i < n; i++) {
        peer[i] =
            who[i] == 'a' ? (const struct sockaddr *)&peer_a : (const struct sockaddr *)&peer_b;
        plen[i] = sizeof peer_a;
    }
    return sk__dgram_runs(len, peer, plen, n, run);
}

static void test_same_peer_same_size_is_one_run(void **state)
{
    (void)state;
    size_t len[] = {64, 64, 64, 64}, run[4];
    assert_int_equal(runs("aaaa", len, run), 1);
    assert_int_equal(run[0], 4);
}

static void test_peer_change_cuts_the_run(void **state)
{
    (void)state;
    size_t len[] = {64, 64, 64, 64, 64}, run[5];
    assert_int_equal(runs("aabba", len, run), 3);
    assert_int_equal(run[0], 2);
    assert_int_equal(run[1], 2);
    assert_int_equal(run[2], 1);
}

/* Only the last segment of a run may be shorter; a longer one starts anew. */
static void test_sizes(void **state)
{
    (void)state;
    size_t len[] = {100, 100, 40, 100, 100, 200, 200}, run[7];
    assert_int_equal(runs("aaaaaaa", len, run), 3);
    assert_int_equal(run[0], 3); /* 100 100 40 */
    assert_int_equal(run[1], 2); /* 100 100 (200 is longer) */
    assert_int_equal(run[2], 2); /* 200 200 */
}

/* An empty reply is never a segment; nor is one past the segment limit. */
static void test_empty_and_large(void **state)
{
    (void)state;
    size_t len[] = {0, 0, 10, 0, SK_GSO_SEG_MAX + 1, SK_GSO_SEG_MAX + 1}, run[6];
    assert_int_equal(runs("aaaaaa", len, run), 6); /* each alone */
    for (int r = 0; r < 6; r++)
        assert_int_equal(run[r], 1);
}

/* At most SK_GSO_MAX_SEGS segments and SK_GSO_MAX_BYTES bytes per run. */
static void test_limits(void **state)
{
    (void)state;
    size_t len[100], run[100];
    char who[101];
    for (int i = 0; i < 100; i++) {
        len[i] = 10;
        who[i] = 'a';
    }
    who[100] = '\0';
    assert_int_equal(runs(who, len, run), 2);
    assert_int_equal(run[0], SK_GSO_MAX_SEGS);
    assert_int_equal(run[1], 100 - SK_GSO_MAX_SEGS);
    for (int i = 0; i < 100; i++)
        len[i] = 1400;
    who[60] = '\0'; /* 60 x 1400 = 84000 bytes: more than one datagram holds */
    size_t n = runs(who, len, run), total = 0;
    assert_true(n >= 2);
    for (size_t r = 0; r < n; r++) {
        assert_true(run[r] * 1400 <= SK_GSO_MAX_BYTES);
        total += run[r];
    }
    assert_int_equal(total, 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_peer_same_size_is_one_run),
        cmocka_unit_test(test_peer_change_cuts_the_run),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_empty_and_large),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
