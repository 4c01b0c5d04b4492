/*
 * test_xfer_proto.c - unit tests for src/lib/xfer_proto.c (the transfer
 * protocol's frames) and the receiver's name checks (recv_fs.c): every frame
 * round-trips, every prefix of a frame is "need more" and never malformed,
 * and malformed payloads are refused; the sender's walk (xfer_walk.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recv_fs.h"
#include "xfer_proto.h"
#include "xfer_walk.h"

/* Every strict prefix of a frame needs more; the whole frame is complete. */
static void check_prefixes(const uint8_t *f, size_t n, uint8_t type)
{
    uint8_t t;
    uint32_t plen;
    for (size_t i = 0; i < n; i++) {
        int r = sk__xf_head(f, i, &t, &plen);
        if (i < SK_XF_HEAD)
            assert_int_equal(r, SK_XF_NEED);
        else
            assert_true(r == SK_XF_HEAD && i < SK_XF_HEAD + plen);
    }
    assert_int_equal(sk__xf_head(f, n, &t, &plen), SK_XF_HEAD);
    assert_int_equal(t, type);
    assert_int_equal(plen, n - SK_XF_HEAD);
}

static void test_hello(void **state)
{
    (void)state;
    uint8_t f[64];
    sk__xf_hello h = {1, SK_XF_SHA256, SK_XF_F_ZSTD | SK_XF_F_OVERWRITE, 1u << 20}, g;
    size_t n = sk__xf_put_hello(f, sizeof f, SK_XF_HELLO, &h);
    assert_int_equal(n, 17);
    assert_memory_equal(f, "\x01\x00\x00\x00\x0cSKXF\x00\x01\x02\x03\x00\x10\x00\x00", 17);
    check_prefixes(f, n, SK_XF_HELLO);
    assert_int_equal(sk__xf_get_hello(f + 5, 12, &g), 0);
    assert_int_equal(g.version, 1);
    assert_int_equal(g.hash, SK_XF_SHA256);
    assert_int_equal(g.chunk, 1u << 20);
    /* Every shorter or longer version-1 payload is malformed. */
    for (size_t i = 0; i < 12; i++)
        assert_int_equal(sk__xf_get_hello(f + 5, i, &g), SK_XF_BAD);
    assert_int_equal(sk__xf_get_hello(f + 5, 13, &g), SK_XF_BAD);
    /* Another version is decoded from its first 6 bytes, whatever follows. */
    uint8_t v2[] = "SKXF\x00\x02";
    assert_int_equal(sk__xf_get_hello(v2, 6, &g), 0);
    assert_int_equal(g.version, 2);
    uint8_t bad[] = "SKXG\x00\x01\x01\x00\x00\x10\x00\x00";
    assert_int_equal(sk__xf_get_hello(bad, 12, &g), SK_XF_BAD);
    assert_int_equal(sk__xf_put_hello(f, 16, SK_XF_HELLO, &h), 0);
}

static void test_head_malformed(void **state)
{
    (void)state;
    uint8_t t;
    uint32_t plen;
    uint8_t unknown[] = {0x7e, 0, 0, 0, 0};
    assert_int_equal(sk__xf_head(unknown, 1, &t, &plen), SK_XF_BAD);
    assert_int_equal(sk__xf_head(unknown, 0, &t, &plen), SK_XF_NEED);
    uint8_t huge[] = {SK_XF_CHUNK, 0x01, 0x00, 0x10, 0x01};
    assert_int_equal(sk__xf_head(huge, 5, &t, &plen), SK_XF_BAD);
    uint8_t max[5];
    sk__xf_put_head(max, SK_XF_CHUNK, SK_XF_MAX_PAYLOAD);
    assert_int_equal(sk__xf_head(max, 5, &t, &plen), SK_XF_HEAD);
    assert_int_equal(plen, SK_XF_MAX_PAYLOAD);
}

static void test_entry(void **state)
{
    (void)state;
    uint8_t f[256];
    sk__xf_entry e = {.type = SK_XF_SYMLINK,
                      .mode = 0777,
                      .mtime_sec = -5,
                      .mtime_nsec = 999999999,
                      .name = (const uint8_t *)"d/l",
                      .name_len = 3,
                      .target = (const uint8_t *)"../x",
                      .target_len = 4},
                 g;
    size_t n = sk__xf_put_entry(f, sizeof f, &e);
    assert_int_equal(n, 5 + 26 + 3 + 4);
    check_prefixes(f, n, SK_XF_ENTRY);
    assert_int_equal(sk__xf_get_entry(f + 5, n - 5, &g), 0);
    assert_int_equal(g.type, SK_XF_SYMLINK);
    assert_int_equal(g.mtime_sec, -5);
    assert_int_equal(g.mtime_nsec, 999999999);
    assert_memory_equal(g.name, "d/l", 3);
    assert_memory_equal(g.target, "../x", 4);
    for (size_t i = 0; i < 26; i++)
        assert_int_equal(sk__xf_get_entry(f + 5, i, &g), SK_XF_BAD);
    /* A symlink without target, a file with one, bad fields. */
    assert_int_equal(sk__xf_get_entry(f + 5, 26 + 3, &g), SK_XF_BAD);
    uint8_t p[64];
    memcpy(p, f + 5, n - 5);
    p[0] = SK_XF_FILE;
    assert_int_equal(sk__xf_get_entry(p, n - 5, &g), SK_XF_BAD);
    memcpy(p, f + 5, n - 5);
    p[0] = 9;
    assert_int_equal(sk__xf_get_entry(p, n - 5, &g), SK_XF_BAD);
    memcpy(p, f + 5, n - 5);
    p[2] = 0x10; /* mode 010777 */
    assert_int_equal(sk__xf_get_entry(p, n - 5, &g), SK_XF_BAD);
    memcpy(p, f + 5, n - 5);
    p[20] = 0x3b; /* nanoseconds >= 10^9 */
    p[21] = 0x9a;
    p[22] = 0xca;
    p[23] = 0x00;
    assert_int_equal(sk__xf_get_entry(p, n - 5, &g), SK_XF_BAD);
    memcpy(p, f + 5, n - 5);
    p[25] = 200; /* name longer than the payload */
    assert_int_equal(sk__xf_get_entry(p, n - 5, &g), SK_XF_BAD);
    /* A stream: unknown size exactly with the flag. */
    sk__xf_entry s = {.type = SK_XF_FILE,
                      .flags = SK_XF_E_STREAM,
                      .size = SK_XF_SIZE_UNKNOWN,
                      .name = (const uint8_t *)"x",
                      .name_len = 1};
    n = sk__xf_put_entry(f, sizeof f, &s);
    assert_int_equal(sk__xf_get_entry(f + 5, n - 5, &g), 0);
    s.flags = 0;
    n = sk__xf_put_entry(f, sizeof f, &s);
    assert_int_equal(sk__xf_get_entry(f + 5, n - 5, &g), SK_XF_BAD);
}

static void test_start_chunk_end_result(void **state)
{
    (void)state;
    uint8_t f[512], hashes[3 * 16];
    for (size_t i = 0; i < sizeof hashes; i++)
        hashes[i] = (uint8_t)i;
    sk__xf_start s;
    size_t n = sk__xf_put_start(f, sizeof f, SK_XF_OK, 3, hashes, 16, NULL);
    check_prefixes(f, n, SK_XF_START);
    assert_int_equal(sk__xf_get_start(f + 5, n - 5, 16, &s), 0);
    assert_int_equal(s.chunks, 3);
    assert_memory_equal(s.hashes, hashes, sizeof hashes);
    assert_int_equal(s.message_len, 0);
    assert_int_equal(sk__xf_get_start(f + 5, n - 6, 16, &s), SK_XF_BAD); /* a hash cut */
    n = sk__xf_put_start(f, sizeof f, SK_XF_E_EXISTS, 0, NULL, 16, "exists");
    assert_int_equal(sk__xf_get_start(f + 5, n - 5, 16, &s), 0);
    assert_int_equal(s.code, SK_XF_E_EXISTS);
    assert_memory_equal(s.message, "exists", 6);

    uint8_t h[16] = {1, 2, 3};
    sk__xf_chunk c;
    n = sk__xf_put_chunk_head(f, sizeof f, 7, SK_XF_RAW, 100, h, 16, 100);
    assert_int_equal(n, 5 + SK_XF_CHUNK_HEAD(16));
    assert_int_equal(sk__xf_get_chunk(f + 5, n - 5, 29 + 100, 16, 4096, &c), 0);
    assert_int_equal(c.index, 7);
    assert_int_equal(c.data_len, 100);
    for (size_t i = 0; i < n - 5; i++)
        assert_int_equal(sk__xf_get_chunk(f + 5, i, 129, 16, 4096, &c), SK_XF_BAD);
    /* Raw data of another length than raw_len; raw_len over the chunk size; 0. */
    assert_int_equal(sk__xf_get_chunk(f + 5, n - 5, 29 + 99, 16, 4096, &c), SK_XF_BAD);
    assert_int_equal(sk__xf_get_chunk(f + 5, n - 5, 29 + 100, 16, 64, &c), SK_XF_BAD);
    n = sk__xf_put_chunk_head(f, sizeof f, 0, SK_XF_RAW, 0, h, 16, 0);
    assert_int_equal(sk__xf_get_chunk(f + 5, n - 5, 29, 16, 4096, &c), SK_XF_BAD);
    n = sk__xf_put_chunk_head(f, sizeof f, 0, 5, 10, h, 16, 10);
    assert_int_equal(sk__xf_get_chunk(f + 5, n - 5, 39, 16, 4096, &c), SK_XF_BAD);

    sk__xf_end e;
    n = sk__xf_put_end(f, sizeof f, 0, 12345, 2, h, 16);
    check_prefixes(f, n, SK_XF_END);
    assert_int_equal(sk__xf_get_end(f + 5, n - 5, 16, &e), 0);
    assert_int_equal(e.size, 12345);
    assert_int_equal(e.chunks, 2);
    assert_int_equal(sk__xf_get_end(f + 5, n - 5, 32, &e), SK_XF_BAD);
    f[5] = 2; /* status */
    assert_int_equal(sk__xf_get_end(f + 5, n - 5, 16, &e), SK_XF_BAD);

    sk__xf_result r;
    n = sk__xf_put_result(f, sizeof f, SK_XF_E_CORRUPT, 0, NULL, 32, "bad chunk");
    check_prefixes(f, n, SK_XF_RESULT);
    assert_int_equal(sk__xf_get_result(f + 5, n - 5, 32, &r), 0);
    assert_int_equal(r.code, SK_XF_E_CORRUPT);
    assert_memory_equal(r.message, "bad chunk", 9);
    assert_int_equal(sk__xf_get_result(f + 5, 41, 32, &r), SK_XF_BAD);

    uint64_t files, bytes;
    n = sk__xf_put_summary(f, sizeof f, 3, 1ull << 40);
    check_prefixes(f, n, SK_XF_SUMMARY);
    assert_int_equal(sk__xf_get_summary(f + 5, 16, &files, &bytes), 0);
    assert_int_equal(bytes, 1ull << 40);
    assert_int_equal(sk__xf_get_summary(f + 5, 15, &files, &bytes), SK_XF_BAD);

    uint16_t v, code;
    const uint8_t *m;
    size_t ml;
    n = sk__xf_put_refuse(f, sizeof f, 1, SK_XF_E_VERSION, "upgrade");
    check_prefixes(f, n, SK_XF_REFUSE);
    assert_int_equal(sk__xf_get_refuse(f + 5, n - 5, &v, &code, &m, &ml), 0);
    assert_int_equal(code, SK_XF_E_VERSION);
    assert_int_equal(ml, 7);
    assert_int_equal(sk__xf_get_refuse(f + 5, 3, &v, &code, &m, &ml), SK_XF_BAD);
}

static void test_hashes(void **state)
{
    (void)state;
    sk__xf_hash h;
    uint8_t a[32], b[32];
    assert_int_equal(sk__xf_hash_init(&h, SK_XF_SHA256), 0);
    sk__xf_hash_once(&h, "abc", 3, a);
    assert_memory_equal(a,
                        "\xba\x78\x16\xbf\x8f\x01\xcf\xea\x41\x41\x40\xde\x5d\xae\x22\x23"
                        "\xb0\x03\x61\xa3\x96\x17\x7a\x9c\xb4\x10\xff\x61\xf2\x00\x15\xad",
                        32);
    sk__xf_hash_update(&h, "a", 1);
    sk__xf_hash_update(&h, "bc", 2);
    sk__xf_hash_final(&h, b);
    assert_memory_equal(a, b, 32);
    sk__xf_hash_free(&h);
    assert_int_equal(sk__xf_hash_init(&h, SK_XF_XXH3), 0);
    sk__xf_hash_once(&h, "abc", 3, a);
    sk__xf_hash_update(&h, "ab", 2);
    sk__xf_hash_update(&h, "c", 1);
    sk__xf_hash_final(&h, b);
    assert_memory_equal(a, b, 16);
    sk__xf_hash_once(&h, "abd", 3, b);
    assert_memory_not_equal(a, b, 16);
    sk__xf_hash_free(&h);
    assert_int_equal(sk__xf_hash_init(&h, 9), -1);
}

static void test_names(void **state)
{
    (void)state;
    const char *why;
    const char *ok[] = {"a", "a/b/c", "caf\xc3\xa9", "..a", "a..", ".hidden", "x.part", "a b"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(sk__rx_check_name((const uint8_t *)ok[i], strlen(ok[i]), 64, &why), 0);
    const char *bad[] = {
        "/a",       "..",           "../a",         "a/..",     "a/../b",
        ".",        "./a",          "a/./b",        "a//b",     "a/",
        "a\x01",    "a\n",          "\x7f",         "\xc2\x85", "\xff",
        "\xc0\xaf", "\xed\xa0\x80", "\xe0\x80\xaf", ".x.part",  "d/.x.part.journal"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sk__rx_check_name((const uint8_t *)bad[i], strlen(bad[i]), 64, &why),
                         SK_XF_E_NAME);
    assert_int_equal(sk__rx_check_name((const uint8_t *)"a/b/c", 5, 2, &why), SK_XF_E_LIMIT);
    assert_int_equal(sk__rx_check_name((const uint8_t *)"a\0b", 3, 64, &why), SK_XF_E_NAME);
    assert_true(sk__rx_target_inside("d/l", (const uint8_t *)"../x", 4));
    assert_false(sk__rx_target_inside("d/l", (const uint8_t *)"../../x", 7));
    assert_false(sk__rx_target_inside("l", (const uint8_t *)"/etc", 4));
    assert_true(sk__rx_target_inside("l", (const uint8_t *)"a/../b", 6));
    assert_false(sk__rx_target_inside("l", (const uint8_t *)"a/../../b", 9));
    /* The sender's own judgement of a tree's symlinks (link names relative to the tree). */
    assert_true(sk__xw_inside("sub/l", "../f"));
    assert_true(sk__xw_inside("l", "./x/../y"));
    assert_false(sk__xw_inside("l", "../f"));
    assert_false(sk__xw_inside("sub/l", "../../f"));
    assert_false(sk__xw_inside("l", "/etc/passwd"));
    assert_false(sk__xw_inside("l", ""));
}

/* A tree's regular files are stat'ed when their turn comes: one gone by
 * then, or turned into a directory, is refused; one grown is sent at its new
 * size. */
static void test_walk_stat_later(void **state)
{
    (void)state;
    char top[] = "/tmp/skit-walk-XXXXXX", p[64];
    assert_non_null(mkdtemp(top));
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", top, names[i]);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs("1234", f);
        fclose(f);
    }
    sk__xw_list l = {0};
    sk_err err;
    const char *paths[] = {top};
    assert_int_equal(sk__xw_build(&l, paths, 1, 1, NULL, &err), 0);
    assert_int_equal(l.n, 4); /* the directory, then a, b, c */
    snprintf(p, sizeof p, "%s/a", top);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof p, "%s/b", top);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/c", top);
    FILE *f = fopen(p, "a");
    assert_non_null(f);
    fputs("5678", f);
    fclose(f);
    for (size_t i = 1; i < 4; i++) {
        assert_int_equal(l.v[i].type, SK_XF_FILE);
        sk__xw_stat(&l.v[i]);
        sk__xw_stat(&l.v[i]); /* once only */
    }
    assert_non_null(l.v[1].refused);
    assert_non_null(strstr(l.v[1].refused, "No such file"));
    assert_non_null(l.v[2].refused);
    assert_non_null(strstr(l.v[2].refused, "no longer a regular file"));
    assert_null(l.v[3].refused);
    assert_int_equal(l.v[3].st.st_size, 8);
    sk__xw_free(&l);
    snprintf(p, sizeof p, "%s/b", top);
    rmdir(p);
    snprintf(p, sizeof p, "%s/c", top);
    unlink(p);
    rmdir(top);
}

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello),           cmocka_unit_test(test_head_malformed),
        cmocka_unit_test(test_entry),           cmocka_unit_test(test_start_chunk_end_result),
        cmocka_unit_test(test_hashes),          cmocka_unit_test(test_names),
        cmocka_unit_test(test_walk_stat_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
