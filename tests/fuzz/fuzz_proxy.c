/*
 * fuzz_proxy.c - libFuzzer target for src/lib/proxy.c, the PROXY protocol
 * parser. The result is checked against invariants; a violation aborts (a
 * finding). Build and run: tests/fuzz/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "sockit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_bytes(const uint8_t *buf, size_t len, int rc, sk_proxy_bytes b)
{
    if (b.p == NULL) {
        CHECK(b.len == 0);
        return;
    }
    /* Inside the header, not merely inside the buffer. */
    CHECK(b.p >= buf && b.len <= (size_t)rc && b.p + b.len <= buf + rc);
    (void)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes: ASan catches any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    sk_proxy_info info;
    int rc = sk_proxy_parse(buf, size, &info);
    CHECK(rc >= SK_PROXY_ECRC);
    CHECK(rc <= 0 || (size_t)rc <= size);
    if (rc < 0) {
        CHECK(info.error != NULL);
        CHECK(info.error_at <= size);
        CHECK(strcmp(sk_proxy_strerror(rc), "unknown error") != 0);
    }
    if (rc > 0) {
        CHECK(info.version == 1 || info.version == 2);
        if (info.version == 1) {
            CHECK(rc <= SK_PROXY_V1_MAX && buf[rc - 2] == '\r' && buf[rc - 1] == '\n');
            CHECK(memcmp(buf, "PROXY ", 6) == 0);
        } else {
            CHECK(rc >= 16 && (size_t)rc == 16 + ((size_t)buf[14] << 8 | buf[15]));
        }
        if (!info.local) {
            CHECK(info.src.ss_family == info.dst.ss_family);
            CHECK(info.src_len > 0 && info.src_len <= sizeof info.src);
            CHECK(info.socktype != 0);
        } else {
            CHECK(info.src_len == 0 && info.dst_len == 0);
        }
        check_bytes(buf, size, rc, info.alpn);
        check_bytes(buf, size, rc, info.authority);
        check_bytes(buf, size, rc, info.unique_id);
        check_bytes(buf, size, rc, info.netns);
        check_bytes(buf, size, rc, info.ssl_version);
        check_bytes(buf, size, rc, info.ssl_cn);
        check_bytes(buf, size, rc, info.ssl_cipher);
        CHECK(info.unique_id.len <= 128);
        /* What comes after the header never changes the header's parse. */
        sk_proxy_info again;
        CHECK(sk_proxy_parse(buf, (size_t)rc, &again) == rc);
    }
    /* Every prefix of a complete header asks for more; of a malformed input,
     * asks for more or is malformed too (never complete). */
    if (rc != 0 && size > 0) {
        size_t k = size > 300 ? 300 : size; /* bounded: keep runs fast */
        for (size_t n = 0; n < k && n < (size_t)(rc > 0 ? rc : (int)size); n++) {
            sk_proxy_info p;
            int r = sk_proxy_parse(buf, n, &p);
            CHECK(rc > 0 ? r == 0 : r <= 0);
        }
    }
    free(buf);
    return 0;
}
