/* test_proxy.c - unit tests for src/lib/proxy.c, the PROXY protocol parser.
 *
 * A generator builds v1 lines and v2 headers (every family, LOCAL, TLVs,
 * CRC32C good and bad); every valid header is fed whole, followed by data (a
 * second header included, which must not be consumed), and as every one of
 * its prefixes, which must all ask for more. Then the malformed cases that
 * broke other servers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockit.h"

/* ---- the generator ---- */

typedef struct hdr {
    uint8_t b[70000];
    size_t n;
} hdr;

static const uint8_t SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static void put(hdr *h, const void *p, size_t n)
{
    assert_true(h->n + n <= sizeof h->b);
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void put_tlv(hdr *h, uint8_t type, const void *v, size_t n)
{
    uint8_t t[3] = {type, (uint8_t)(n >> 8), (uint8_t)n};
    put(h, t, 3);
    put(h, v, n);
}

/* v2: cmd 0 LOCAL / 1 PROXY, famproto e.g. 0x11; the address block as given. */
static void v2_start(hdr *h, int cmd, uint8_t famproto)
{
    h->n = 0;
    put(h, SIG, 12);
    uint8_t vc[4] = {(uint8_t)(0x20 | cmd), famproto, 0, 0};
    put(h, vc, 4);
}

static void v2_finish(hdr *h)
{
    size_t len = h->n - 16;
    h->b[14] = (uint8_t)(len >> 8);
    h->b[15] = (uint8_t)len;
}

static void v2_inet(hdr *h, uint8_t famproto)
{
    v2_start(h, 1, famproto);
    uint8_t a[12] = {192, 0, 2, 1, 198, 51, 100, 7, 0x9c, 0x40, 0x01, 0xbb}; /* :40000 -> :443 */
    put(h, a, sizeof a);
}

static void v2_inet6(hdr *h, uint8_t famproto)
{
    v2_start(h, 1, famproto);
    uint8_t a[36] = {
        0x20,        0x01,        0x0d,     0xb8,        [15] = 1,    [16] = 0x20, [17] = 0x01,
        [18] = 0x0d, [19] = 0xb8, [31] = 2, [32] = 0x9c, [33] = 0x40, [34] = 0x01, [35] = 0xbb};
    put(h, a, sizeof a);
}

static void v2_unix(hdr *h, uint8_t famproto)
{
    v2_start(h, 1, famproto);
    uint8_t a[216] = {0};
    memcpy(a, "/run/client.sock", 16);
    memcpy(a + 108, "/run/server.sock", 16);
    put(h, a, sizeof a);
}

/* Add a CRC32C TLV and fill it in (corrupt: one bit wrong). */
static void v2_crc(hdr *h, int corrupt)
{
    uint8_t zero[4] = {0};
    put_tlv(h, 0x03, zero, 4);
    v2_finish(h);
    uint32_t c = sk_crc32c(h->b, h->n);
    if (corrupt)
        c ^= 0x10;
    uint8_t *p = h->b + h->n - 4;
    p[0] = (uint8_t)(c >> 24);
    p[1] = (uint8_t)(c >> 16);
    p[2] = (uint8_t)(c >> 8);
    p[3] = (uint8_t)c;
}

static void v1(hdr *h, const char *line)
{
    h->n = 0;
    put(h, line, strlen(line));
}

/* ---- the checks every valid header gets ---- */

static uint8_t scratch[140000];

/* Whole: its length; every prefix: 0; followed by data or a second header:
 * still its length only. Returns the parse of the whole. */
static sk_proxy_info check_valid(const hdr *h)
{
    sk_proxy_info info;
    int r = sk_proxy_parse(h->b, h->n, &info);
    if (r != (int)h->n)
        fail_msg("valid header of %zu bytes: got %d (%s at %zu)", h->n, r,
                 info.error ? info.error : "-", info.error_at);
    for (size_t k = 0; k < h->n; k++) {
        sk_proxy_info p;
        int rk = sk_proxy_parse(h->b, k, &p);
        if (rk != 0)
            fail_msg("prefix of %zu of %zu bytes: got %d (%s), not 0", k, h->n, rk,
                     p.error ? p.error : "-");
    }
    memcpy(scratch, h->b, h->n);
    memcpy(scratch + h->n, "GET / HTTP/1.0\r\n\r\n", 18);
    sk_proxy_info tmp;
    assert_int_equal(sk_proxy_parse(scratch, h->n + 18, &tmp), (int)h->n);
    memcpy(scratch + h->n, h->b, h->n); /* a second header: data, not ours */
    assert_int_equal(sk_proxy_parse(scratch, 2 * h->n, &tmp), (int)h->n);
    return info;
}

static int check_bad(const hdr *h, size_t *at)
{
    sk_proxy_info info;
    int r = sk_proxy_parse(h->b, h->n, &info);
    assert_true(r < 0);
    assert_non_null(info.error);
    if (at)
        *at = info.error_at;
    return r;
}

static void assert_v4(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
    const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(s->sin_family, AF_INET);
    assert_string_equal(inet_ntop(AF_INET, &s->sin_addr, text, sizeof text), addr);
    assert_int_equal(ntohs(s->sin_port), port);
}

static void assert_v6(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
    char text[INET6_ADDRSTRLEN];
    assert_int_equal(s->sin6_family, AF_INET6);
    assert_string_equal(inet_ntop(AF_INET6, &s->sin6_addr, text, sizeof text), addr);
    assert_int_equal(ntohs(s->sin6_port), port);
}

/* ---- v1 ---- */

static void test_v1_valid(void **state)
{
    (void)state;
    hdr *h = malloc(sizeof *h);
    v1(h, "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    sk_proxy_info i = check_valid(h);
    assert_int_equal(i.version, 1);
    assert_int_equal(i.local, 0);
    assert_int_equal(i.socktype, SOCK_STREAM);
    assert_v4(&i.src, "192.168.0.1", 56324);
    assert_v4(&i.dst, "192.168.0.11", 443);

    v1(h, "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
    i = check_valid(h);
    assert_v4(&i.src, "255.255.255.255", 65535);

    v1(h, "PROXY TCP4 0.0.0.0 10.0.0.1 0 1\r\n");
    i = check_valid(h);
    assert_v4(&i.src, "0.0.0.0", 0);

    v1(h, "PROXY TCP6 2001:db8::1 2001:DB8::2 40000 443\r\n");
    i = check_valid(h);
    assert_v6(&i.src, "2001:db8::1", 40000);
    assert_v6(&i.dst, "2001:db8::2", 443);

    /* The longest line the spec allows: 107 bytes. */
    v1(h, "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
    assert_int_equal(h->n, 107);
    i = check_valid(h);
    assert_int_equal(i.local, 1);

    v1(h, "PROXY UNKNOWN\r\n");
    i = check_valid(h);
    assert_int_equal(i.version, 1);
    assert_int_equal(i.local, 1);
    free(h);
}

static const struct {
    const char *line;
    int code;
    size_t at; /* (size_t)-1: any */
} v1_bad[] = {
    {"GET / HTTP/1.1\r\n", SK_PROXY_EBADSIG, 0},
    {"PROXZ TCP4", SK_PROXY_EBADSIG, 4},
    {"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", SK_PROXY_EBADSIG, 0},
    {"PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", SK_PROXY_EV1, (size_t)-1},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", SK_PROXY_EV1, 30},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX", SK_PROXY_EV1, 31},
    {"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n", SK_PROXY_EV1, (size_t)-1},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n", SK_PROXY_EV1, (size_t)-1},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", SK_PROXY_EV1, (size_t)-1},
    {"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", SK_PROXY_EV1, 11},
    {"PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", SK_PROXY_EV1, 11},
    {"PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n", SK_PROXY_EV1, 11},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n", SK_PROXY_EV1, 27},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n", SK_PROXY_EV1, 29},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n", SK_PROXY_EV1, 27},
    {"PROXY TCP4 ::1 ::1 1 2\r\n", SK_PROXY_EV1, 11},
    {"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n", SK_PROXY_EV1, 11},
    {"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n", SK_PROXY_EV1, 11},
    {"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", SK_PROXY_EV1, 11},
    {"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n", SK_PROXY_EV1, 6},
    {"PROXY UNKNOWNX\r\n", SK_PROXY_EV1, 6},
    {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\t\r\n", SK_PROXY_EV1, 30},
};

static void test_v1_malformed(void **state)
{
    (void)state;
    hdr *h = malloc(sizeof *h);
    for (size_t k = 0; k < sizeof v1_bad / sizeof v1_bad[0]; k++) {
        v1(h, v1_bad[k].line);
        size_t at;
        int r = check_bad(h, &at);
        if (r != v1_bad[k].code || (v1_bad[k].at != (size_t)-1 && at != v1_bad[k].at))
            fail_msg("\"%s\": got %d at %zu, want %d at %zu", v1_bad[k].line, r, at, v1_bad[k].code,
                     v1_bad[k].at);
    }
    /* No CRLF within 107 bytes: refused at 107, without waiting for more. */
    h->n = 0;
    put(h, "PROXY UNKNOWN ", 14);
    while (h->n < 107)
        put(h, "f", 1);
    size_t at;
    assert_int_equal(check_bad(h, &at), SK_PROXY_EV1);
    assert_int_equal(at, 107);
    /* 106 bytes and a CR: the LF would be byte 108. */
    h->n = 106;
    put(h, "\r", 1);
    assert_int_equal(check_bad(h, &at), SK_PROXY_EV1);
    /* A NUL or other binary byte in a v1 line ends it at once. */
    v1(h, "PROXY TCP4 1.2");
    h->b[h->n++] = 0;
    assert_int_equal(check_bad(h, &at), SK_PROXY_EV1);
    assert_int_equal(at, 14);
    free(h);
}

/* ---- v2 ---- */

static void test_v2_families(void **state)
{
    (void)state;
    hdr *h = malloc(sizeof *h);
    v2_inet(h, 0x11);
    v2_finish(h);
    sk_proxy_info i = check_valid(h);
    assert_int_equal(i.version, 2);
    assert_int_equal(i.local, 0);
    assert_int_equal(i.socktype, SOCK_STREAM);
    assert_v4(&i.src, "192.0.2.1", 40000);
    assert_v4(&i.dst, "198.51.100.7", 443);

    v2_inet(h, 0x12);
    v2_finish(h);
    i = check_valid(h);
    assert_int_equal(i.socktype, SOCK_DGRAM);

    v2_inet6(h, 0x21);
    v2_finish(h);
    i = check_valid(h);
    assert_v6(&i.src, "2001:db8::1", 40000);
    assert_v6(&i.dst, "2001:db8::2", 443);

    v2_inet6(h, 0x22);
    v2_finish(h);
    i = check_valid(h);
    assert_int_equal(i.socktype, SOCK_DGRAM);

    v2_unix(h, 0x31);
    v2_finish(h);
    i = check_valid(h);
    const struct sockaddr_un *u = (const struct sockaddr_un *)&i.src;
    assert_int_equal(u->sun_family, AF_UNIX);
    assert_string_equal(u->sun_path, "/run/client.sock");
    assert_int_equal(i.src_len, offsetof(struct sockaddr_un, sun_path) + 16);
    assert_string_equal(((const struct sockaddr_un *)&i.dst)->sun_path, "/run/server.sock");

    v2_unix(h, 0x32);
    v2_finish(h);
    i = check_valid(h);
    assert_int_equal(i.socktype, SOCK_DGRAM);

    /* UNSPEC with PROXY: the real endpoints. */
    v2_start(h, 1, 0x00);
    v2_finish(h);
    i = check_valid(h);
    assert_int_equal(i.local, 1);
    free(h);
}

static void test_v2_local(void **state)
{
    (void)state;
    hdr *h = malloc(sizeof *h);
    v2_start(h, 0, 0x00);
    v2_finish(h);
    sk_proxy_info i = check_valid(h);
    assert_int_equal(i.version, 2);
    assert_int_equal(i.local, 1);
    assert_int_equal(h->n, 16);

    /* LOCAL carrying an address (and a TLV): accepted, the address ignored,
     * and the length honoured: nothing of it is left as data. */
    v2_start(h, 0, 0x11);
    uint8_t a[12] = {10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2};
    put(h, a, sizeof a);
    put_tlv(h, 0x04, "pad", 3);
    v2_finish(h);
    i = check_valid(h);
    assert_int_equal(i.local, 1);
    assert_int_equal(i.src_len, 0);
    assert_int_equal(i.src.ss_family, 0);
    free(h);
}

static void test_v2_tlvs(void **state)
{
    (void)state;
    hdr *h = malloc(sizeof *h);
    v2_inet6(h, 0x21);
    put_tlv(h, 0x01, "h2", 2);
    put_tlv(h, 0x02, "example.com", 11);
    put_tlv(h, 0x04, "\0\0\0\0\0", 5); /* NOOP */
    uint8_t id[128];
    for (int k = 0; k < 128; k++)
        id[k] = (uint8_t)k;
    put_tlv(h, 0x05, id, sizeof id);
    uint8_t ssl[64];
    size_t sn = 0;
    ssl[sn++] = 0x07;                /* client: SSL, cert conn, cert sess */
    memcpy(ssl + sn, "\0\0\0\0", 4); /* verify: 0 */
    sn += 4;
    memcpy(ssl + sn, "\x21\x00\x07TLSv1.3", 10); /* version */
    sn += 10;
    memcpy(ssl + sn,
           "\x22\x00\x06"
           "client",
           9); /* CN */
    sn += 9;
    memcpy(ssl + sn,
           "\x23\x00\x04"
           "AES!",
           7);
    sn += 7;
    put_tlv(h, 0x20, ssl, sn);
    put_tlv(h, 0xE0, "custom", 6); /* skipped */
    put_tlv(h, 0x30, "ns1", 3);
    v2_crc(h, 0);
    assert_true(h->n > 108);
    sk_proxy_info i = check_valid(h);
    assert_int_equal(i.local, 0);
    assert_v6(&i.src, "2001:db8::1", 40000);
    assert_int_equal(i.alpn.len, 2);
    assert_memory_equal(i.alpn.p, "h2", 2);
    assert_int_equal(i.authority.len, 11);
    assert_memory_equal(i.authority.p, "example.com", 11);
    assert_int_equal(i.unique_id.len, 128);
    assert_memory_equal(i.unique_id.p, id, 128);
    assert_int_equal(i.crc32c, 1);
    assert_int_equal(i.ssl, 1);
    assert_int_equal(i.ssl_client, 0x07);
    assert_int_equal(i.ssl_verify, 0);
    assert_int_equal(i.ssl_version.len, 7);
    assert_memory_equal(i.ssl_version.p, "TLSv1.3", 7);
    assert_memory_equal(i.ssl_cn.p, "client", 6);
    assert_memory_equal(i.ssl_cipher.p, "AES!", 4);
    assert_null(i.ssl_sig_alg.p);
    assert_int_equal(i.netns.len, 3);

    /* The same header with a bad CRC. */
    h->b[h->n - 1] ^= 1;
    assert_int_equal(check_bad(h, NULL), SK_PROXY_ECRC);
    h->b[h->n - 1] ^= 1;
    /* A byte of an address changed: the CRC catches it. */
    h->b[20] ^= 0x40;
    assert_int_equal(check_bad(h, NULL), SK_PROXY_ECRC);
    h->b[20] ^= 0x40;
    assert_int_equal(sk_proxy_parse(h->b, h->n, &i), (int)h->n);

    /* The CRC TLV first, then others; and a corrupt one generated. */
    v2_inet(h, 0x11);
    v2_crc(h, 1);
    assert_int_equal(check_bad(h, NULL), SK_PROXY_ECRC);
    v2_inet(h, 0x11);
    v2_crc(h, 0);
    i = check_valid(h);
    assert_int_equal(i.crc32c, 1);

    /* A big header: 60000 bytes of TLVs. */
    v2_inet(h, 0x11);
    static uint8_t big[20000];
    for (int k = 0; k < 3; k++)
        put_tlv(h, 0x04, big, sizeof big);
    v2_finish(h);
    (void)check_valid(h);
    free(h);
}

static void test_v2_malformed(void **state)
{
    (void)state;
    hdr *h = malloc(sizeof *h);
    size_t at;
    /* Version 1 in the binary signature, command 2, family 4, protocol 3. */
    v2_inet(h, 0x11);
    v2_finish(h);
    h->b[12] = 0x11;
    assert_int_equal(check_bad(h, &at), SK_PROXY_EV2);
    assert_int_equal(at, 12);
    h->b[12] = 0x22;
    assert_int_equal(check_bad(h, &at), SK_PROXY_EV2);
    h->b[12] = 0x21;
    h->b[13] = 0x41;
    assert_int_equal(check_bad(h, &at), SK_PROXY_EV2);
    assert_int_equal(at, 13);
    h->b[13] = 0x13;
    assert_int_equal(check_bad(h, &at), SK_PROXY_EV2);
    /* Refused as soon as the bad byte is seen, not when 16 have come. */
    h->b[13] = 0x11;
    h->b[12] = 0x31;
    h->n = 13;
    assert_int_equal(check_bad(h, &at), SK_PROXY_EV2);

    /* The signature: wrong at byte 7. */
    v2_inet(h, 0x11);
    v2_finish(h);
    h->b[7] = 'q';
    assert_int_equal(check_bad(h, &at), SK_PROXY_EBADSIG);
    assert_int_equal(at, 7);
    h->n = 8; /* already with 8 bytes */
    assert_int_equal(check_bad(h, &at), SK_PROXY_EBADSIG);

    /* A length shorter than the family's address block. */
    v2_inet6(h, 0x21);
    v2_finish(h);
    h->b[15] = 35;
    h->n = 16 + 35;
    assert_int_equal(check_bad(h, &at), SK_PROXY_EV2);

    /* A TLV running past the end of the header. */
    v2_inet(h, 0x11);
    put_tlv(h, 0x02, "example.com", 11);
    v2_finish(h);
    h->b[16 + 12 + 2] = 12; /* the TLV claims 12 bytes, 11 follow */
    assert_int_equal(check_bad(h, &at), SK_PROXY_ETLV);
    assert_int_equal(at, 28);
    /* A TLV header cut by the end of the header. */
    v2_inet(h, 0x11);
    put(h, "\x01\x00", 2);
    v2_finish(h);
    assert_int_equal(check_bad(h, NULL), SK_PROXY_ETLV);
    /* A unique ID of 129 bytes. */
    v2_inet(h, 0x11);
    static uint8_t id[129];
    put_tlv(h, 0x05, id, sizeof id);
    v2_finish(h);
    assert_int_equal(check_bad(h, NULL), SK_PROXY_ETLV);
    /* A CRC32C TLV of 3 bytes; two ALPNs. */
    v2_inet(h, 0x11);
    put_tlv(h, 0x03, "abc", 3);
    v2_finish(h);
    assert_int_equal(check_bad(h, NULL), SK_PROXY_ETLV);
    v2_inet(h, 0x11);
    put_tlv(h, 0x01, "h2", 2);
    put_tlv(h, 0x01, "h3", 2);
    v2_finish(h);
    assert_int_equal(check_bad(h, NULL), SK_PROXY_ETLV);
    /* SSL: shorter than its fixed part; a sub-TLV past its TLV. */
    v2_inet(h, 0x11);
    put_tlv(h, 0x20, "\x01\0\0", 3);
    v2_finish(h);
    assert_int_equal(check_bad(h, NULL), SK_PROXY_ETLV);
    v2_inet(h, 0x11);
    put_tlv(h, 0x20, "\x01\0\0\0\0\x21\x00\x09TLSv1.3", 15);
    v2_finish(h);
    assert_int_equal(check_bad(h, NULL), SK_PROXY_ETLV);
    free(h);
}

static void test_second_header_and_split(void **state)
{
    (void)state;
    /* A v1 header followed by a v2 one: only the first is the header. */
    hdr *h = malloc(sizeof *h);
    hdr *h2 = malloc(sizeof *h2);
    v1(h, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
    size_t first = h->n;
    v2_inet(h2, 0x11);
    v2_finish(h2);
    put(h, h2->b, h2->n);
    sk_proxy_info i;
    assert_int_equal(sk_proxy_parse(h->b, h->n, &i), (int)first);
    assert_v4(&i.src, "1.2.3.4", 1);
    /* A header with TLVs fed in pieces of every size: the parse is the same
     * whatever the split (the caller re-parses its growing buffer). */
    v2_inet(h, 0x11);
    put_tlv(h, 0x02, "a.example", 9);
    put_tlv(h, 0x05, "id-42", 5);
    v2_crc(h, 0);
    for (size_t step = 1; step <= h->n; step++) {
        size_t have = 0;
        int r = 0;
        while (r == 0 && have < h->n) {
            have = have + step < h->n ? have + step : h->n;
            r = sk_proxy_parse(h->b, have, &i);
        }
        assert_int_equal(r, (int)h->n);
        assert_memory_equal(i.authority.p, "a.example", 9);
        assert_memory_equal(i.unique_id.p, "id-42", 5);
    }
    free(h);
    free(h2);
}

static void test_strerror_and_crc(void **state)
{
    (void)state;
    /* RFC 3720 B.4: 32 bytes of zeros -> 0x8A9136AA; "123456789" -> 0xE3069283. */
    uint8_t z[32] = {0};
    assert_int_equal(sk_crc32c(z, sizeof z), 0x8A9136AAu);
    assert_int_equal(sk_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
    assert_string_equal(sk_proxy_strerror(SK_PROXY_ECRC), "PROXY v2 header fails its CRC32C");
    assert_string_equal(sk_proxy_strerror(SK_PROXY_EBADSIG), "not a PROXY protocol header");
    sk_proxy_info i;
    assert_int_equal(sk_proxy_parse((const uint8_t *)"", 0, &i), 0);
    assert_int_equal(sk_proxy_parse((const uint8_t *)"\x16\x03\x01", 3, &i), SK_PROXY_EBADSIG);
    assert_int_equal(i.error_at, 0);
}

int main(void)
{
    alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_valid),
        cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_v2_families),
        cmocka_unit_test(test_v2_local),
        cmocka_unit_test(test_v2_tlvs),
        cmocka_unit_test(test_v2_malformed),
        cmocka_unit_test(test_second_header_and_split),
        cmocka_unit_test(test_strerror_and_crc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
