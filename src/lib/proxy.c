/*
 * proxy.c - the PROXY protocol parser, v1 and v2 (haproxy's
 * doc/proxy-protocol.txt), written from the specification. No I/O, no
 * allocation: the caller hands in what it has received so far.
 *
 * Strict on purpose. The header decides which address every later decision
 * (access lists, logs) is made about, so nothing is guessed: a buffer is a
 * header only if it starts with a signature, a v1 line must end in CRLF
 * within 107 bytes with canonical numbers, and a v2 header's own length is
 * the only length that counts (never "the address block, so the rest must be
 * data"), with every TLV checked against it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "sockit.h"

static const uint8_t v2sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char v1sig[6] = "PROXY ";

#define V2_HEAD 16

enum { PP2_ALPN = 0x01, PP2_AUTHORITY = 0x02, PP2_CRC32C = 0x03, PP2_NOOP = 0x04 };
enum { PP2_UNIQUE_ID = 0x05, PP2_SSL = 0x20, PP2_NETNS = 0x30 };
enum { SSL_VERSION = 0x21, SSL_CN = 0x22, SSL_CIPHER = 0x23, SSL_SIG_ALG = 0x24 };
enum { SSL_KEY_ALG = 0x25 };

uint32_t sk_crc32c(const uint8_t *buf, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= buf[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

const char *sk_proxy_strerror(int code)
{
    switch (code) {
    case SK_PROXY_EBADSIG: return "not a PROXY protocol header";
    case SK_PROXY_EV1: return "malformed PROXY v1 line";
    case SK_PROXY_EV2: return "malformed PROXY v2 header";
    case SK_PROXY_ETLV: return "malformed PROXY v2 TLV";
    case SK_PROXY_ECRC: return "PROXY v2 header fails its CRC32C";
    default: return code > 0 ? "complete" : code == 0 ? "incomplete" : "unknown error";
    }
}

static int fail(sk_proxy_info *out, int code, size_t at, const char *why)
{
    out->error = why;
    out->error_at = at;
    return code;
}

/* ------------------------------------------------------------------- v1 */

/* Four decimal numbers 0-255, no leading zeros. */
static int v1_ipv4(const char *s, size_t n, struct in_addr *a)
{
    uint8_t b[4];
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return -1;
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
            return -1;
        b[part] = (uint8_t)v;
    }
    if (i != n)
        return -1;
    memcpy(a, b, 4);
    return 0;
}

/* Hex groups and colons only (no embedded IPv4, no zone), 128 bits. */
static int v1_ipv6(const char *s, size_t n, struct in6_addr *a)
{
    char text[40];
    if (n == 0 || n > 39)
        return -1;
    for (size_t i = 0; i < n; i++) /* s is not NUL-terminated: check exactly n bytes */
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':'))
            return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(AF_INET6, text, a) == 1 ? 0 : -1;
}

/* Decimal 0-65535, no leading zeros. */
static int v1_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* The next field: up to a space (consumed) or, for the last one, the CR. */
static int v1_field(const char *line, size_t end, size_t *pos, int last, const char **f, size_t *n)
{
    size_t start = *pos, i = start;
    while (i < end && line[i] != ' ')
        i++;
    if (last ? i != end : i == end)
        return -1; /* a space too many, or one missing */
    *f = line + start;
    *n = i - start;
    *pos = last ? i : i + 1;
    return *n > 0 ? 0 : -1; /* exactly one space: no empty field */
}

static int parse_v1(const uint8_t *buf, size_t len, sk_proxy_info *out)
{
    const char *line = (const char *)buf;
    size_t lim = len < SK_PROXY_V1_MAX ? len : SK_PROXY_V1_MAX;
    size_t cr = 0;
    int found = 0;
    for (size_t i = sizeof v1sig; i < lim; i++) {
        uint8_t c = buf[i];
        if (c == '\r') {
            if (i + 1 >= SK_PROXY_V1_MAX)
                return fail(out, SK_PROXY_EV1, i + 1, "v1: no CRLF within 107 bytes");
            if (i + 1 == len)
                return 0; /* the LF may be on its way */
            if (buf[i + 1] != '\n')
                return fail(out, SK_PROXY_EV1, i + 1, "v1: CR not followed by LF");
            cr = i;
            found = 1;
            break;
        }
        if (c == '\n')
            return fail(out, SK_PROXY_EV1, i, "v1: LF without CR");
        if (c < 0x20 || c > 0x7e)
            return fail(out, SK_PROXY_EV1, i, "v1: a byte that is not printable US-ASCII");
    }
    if (!found) {
        if (len >= SK_PROXY_V1_MAX)
            return fail(out, SK_PROXY_EV1, SK_PROXY_V1_MAX, "v1: no CRLF within 107 bytes");
        return 0;
    }
    size_t total = cr + 2, pos = sizeof v1sig;
    const char *f;
    size_t n;
    out->version = 1;
    /* UNKNOWN: the rest of the line is to be ignored. */
    if (cr - pos >= 7 && memcmp(line + pos, "UNKNOWN", 7) == 0 &&
        (cr - pos == 7 || line[pos + 7] == ' ')) {
        out->local = 1;
        return (int)total;
    }
    if (v1_field(line, cr, &pos, 0, &f, &n) < 0)
        return fail(out, SK_PROXY_EV1, pos, "v1: missing protocol");
    int six;
    if (n == 4 && memcmp(f, "TCP4", 4) == 0)
        six = 0;
    else if (n == 4 && memcmp(f, "TCP6", 4) == 0)
        six = 1;
    else
        return fail(out, SK_PROXY_EV1, (size_t)(f - line),
                    "v1: protocol is not TCP4, TCP6 or UNKNOWN");
    const char *fs[4];
    size_t ns[4], at[4];
    for (int k = 0; k < 4; k++) {
        at[k] = pos;
        if (v1_field(line, cr, &pos, k == 3, &fs[k], &ns[k]) < 0)
            return fail(out, SK_PROXY_EV1, pos,
                        "v1: expected source, destination, source port and destination "
                        "port, each after exactly one space");
    }
    uint16_t sport, dport;
    if (v1_port(fs[2], ns[2], &sport) < 0 || v1_port(fs[3], ns[3], &dport) < 0)
        return fail(out, SK_PROXY_EV1, v1_port(fs[2], ns[2], &sport) < 0 ? at[2] : at[3],
                    "v1: a port is not a decimal number 0-65535 without leading zeros");
    out->socktype = SOCK_STREAM;
    if (!six) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d4 = (struct sockaddr_in *)&out->dst;
        if (v1_ipv4(fs[0], ns[0], &s4->sin_addr) < 0)
            return fail(out, SK_PROXY_EV1, at[0], "v1: bad TCP4 source address");
        if (v1_ipv4(fs[1], ns[1], &d4->sin_addr) < 0)
            return fail(out, SK_PROXY_EV1, at[1], "v1: bad TCP4 destination address");
        s4->sin_family = d4->sin_family = AF_INET;
        s4->sin_port = htons(sport);
        d4->sin_port = htons(dport);
        out->src_len = out->dst_len = sizeof(struct sockaddr_in);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&out->dst;
        if (v1_ipv6(fs[0], ns[0], &s6->sin6_addr) < 0)
            return fail(out, SK_PROXY_EV1, at[0], "v1: bad TCP6 source address");
        if (v1_ipv6(fs[1], ns[1], &d6->sin6_addr) < 0)
            return fail(out, SK_PROXY_EV1, at[1], "v1: bad TCP6 destination address");
        s6->sin6_family = d6->sin6_family = AF_INET6;
        s6->sin6_port = htons(sport);
        d6->sin6_port = htons(dport);
        out->src_len = out->dst_len = sizeof(struct sockaddr_in6);
    }
    return (int)total;
}

/* ------------------------------------------------------------------- v2 */

static int set_once(sk_proxy_bytes *b, const uint8_t *p, size_t n)
{
    if (b->p != NULL)
        return -1; /* twice: which one is meant? */
    b->p = p;
    b->len = n;
    return 0;
}

static int parse_ssl(const uint8_t *buf, size_t off, size_t n, sk_proxy_info *out)
{
    const uint8_t *v = buf + off;
    if (out->ssl)
        return fail(out, SK_PROXY_ETLV, off, "v2: two SSL TLVs");
    if (n < 5)
        return fail(out, SK_PROXY_ETLV, off, "v2: SSL TLV shorter than its 5 fixed bytes");
    out->ssl = 1;
    out->ssl_client = v[0];
    out->ssl_verify = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4];
    size_t i = 5;
    while (i < n) {
        if (n - i < 3)
            return fail(out, SK_PROXY_ETLV, off + i, "v2: SSL sub-TLV header runs past its TLV");
        uint8_t t = v[i];
        size_t l = (size_t)v[i + 1] << 8 | v[i + 2];
        if (l > n - i - 3)
            return fail(out, SK_PROXY_ETLV, off + i, "v2: SSL sub-TLV runs past its TLV");
        const uint8_t *p = v + i + 3;
        sk_proxy_bytes *dst = t == SSL_VERSION   ? &out->ssl_version
                              : t == SSL_CN      ? &out->ssl_cn
                              : t == SSL_CIPHER  ? &out->ssl_cipher
                              : t == SSL_SIG_ALG ? &out->ssl_sig_alg
                              : t == SSL_KEY_ALG ? &out->ssl_key_alg
                                                 : NULL;
        if (dst && set_once(dst, p, l) < 0)
            return fail(out, SK_PROXY_ETLV, off + i, "v2: an SSL sub-TLV given twice");
        i += 3 + l;
    }
    return 0;
}

static int parse_tlvs(const uint8_t *buf, size_t off, size_t end, sk_proxy_info *out)
{
    size_t crc_at = 0;
    while (off < end) {
        if (end - off < 3)
            return fail(out, SK_PROXY_ETLV, off, "v2: TLV header runs past the end of the header");
        uint8_t t = buf[off];
        size_t l = (size_t)buf[off + 1] << 8 | buf[off + 2];
        if (l > end - off - 3)
            return fail(out, SK_PROXY_ETLV, off, "v2: TLV runs past the end of the header");
        const uint8_t *p = buf + off + 3;
        int dup = 0;
        switch (t) {
        case PP2_ALPN: dup = set_once(&out->alpn, p, l); break;
        case PP2_AUTHORITY: dup = set_once(&out->authority, p, l); break;
        case PP2_NETNS: dup = set_once(&out->netns, p, l); break;
        case PP2_UNIQUE_ID:
            if (l > 128)
                return fail(out, SK_PROXY_ETLV, off, "v2: unique ID longer than 128 bytes");
            dup = set_once(&out->unique_id, p, l);
            break;
        case PP2_CRC32C:
            if (l != 4)
                return fail(out, SK_PROXY_ETLV, off, "v2: CRC32C TLV is not 4 bytes");
            if (crc_at)
                dup = -1;
            crc_at = off + 3;
            break;
        case PP2_SSL:
            if (parse_ssl(buf, off + 3, l, out) < 0)
                return SK_PROXY_ETLV;
            break;
        default: break; /* NOOP, custom, experimental: skipped */
        }
        if (dup)
            return fail(out, SK_PROXY_ETLV, off, "v2: a TLV given twice");
        off += 3 + l;
    }
    if (crc_at) {
        /* The CRC of the whole header with the CRC field taken as zeros. */
        static const uint8_t zero[4];
        uint32_t want = (uint32_t)buf[crc_at] << 24 | (uint32_t)buf[crc_at + 1] << 16 |
                        (uint32_t)buf[crc_at + 2] << 8 | buf[crc_at + 3];
        uint32_t crc = 0xFFFFFFFFu;
        for (size_t i = 0; i < end; i++) {
            uint8_t c = i >= crc_at && i < crc_at + 4 ? zero[i - crc_at] : buf[i];
            crc ^= c;
            for (int k = 0; k < 8; k++)
                crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
        }
        if (~crc != want)
            return fail(out, SK_PROXY_ECRC, crc_at, "v2: CRC32C mismatch");
        out->crc32c = 1;
    }
    return 0;
}

static void unix_addr(struct sockaddr_storage *ss, socklen_t *len, const uint8_t *p)
{
    struct sockaddr_un *u = (struct sockaddr_un *)ss;
    u->sun_family = AF_UNIX;
    memcpy(u->sun_path, p, 108);
    size_t n;
    if (p[0] != 0) {
        n = strnlen(u->sun_path, 108);
    } else { /* abstract: the name is all 108 bytes, less trailing NULs */
        n = 108;
        while (n > 1 && p[n - 1] == 0)
            n--;
        if (n == 1)
            n = 0; /* all zeros: unnamed */
    }
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

static int parse_v2(const uint8_t *buf, size_t len, sk_proxy_info *out)
{
    if (len > 12 && (buf[12] >> 4) != 2)
        return fail(out, SK_PROXY_EV2, 12, "v2: version is not 2");
    if (len > 12 && (buf[12] & 0xF) > 1)
        return fail(out, SK_PROXY_EV2, 12, "v2: command is neither LOCAL nor PROXY");
    int local = len > 12 && (buf[12] & 0xF) == 0;
    if (len > 13 && !local && ((buf[13] >> 4) > 3 || (buf[13] & 0xF) > 2))
        return fail(out, SK_PROXY_EV2, 13, "v2: unknown address family or protocol");
    if (len < V2_HEAD)
        return 0;
    size_t total = V2_HEAD + ((size_t)buf[14] << 8 | buf[15]);
    if (len < total)
        return 0;
    out->version = 2;
    if (local) {
        /* A health check from the proxy itself: the real endpoints are the
         * ones to use, and the block (family, address, TLVs) is skipped. */
        out->local = 1;
        return (int)total;
    }
    int fam = buf[13] >> 4, proto = buf[13] & 0xF;
    if (fam == 0 || proto == 0) {
        out->local = 1; /* UNSPEC: the real endpoints (the spec allows either) */
        return (int)total;
    }
    static const size_t need[4] = {0, 12, 36, 216};
    const uint8_t *a = buf + V2_HEAD;
    if (total - V2_HEAD < need[fam])
        return fail(out, SK_PROXY_EV2, 14, "v2: length shorter than the address block");
    out->socktype = proto == 1 ? SOCK_STREAM : SOCK_DGRAM;
    if (fam == 1) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d4 = (struct sockaddr_in *)&out->dst;
        s4->sin_family = d4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a, 4);
        memcpy(&d4->sin_addr, a + 4, 4);
        memcpy(&s4->sin_port, a + 8, 2);
        memcpy(&d4->sin_port, a + 10, 2);
        out->src_len = out->dst_len = sizeof(struct sockaddr_in);
    } else if (fam == 2) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&out->dst;
        s6->sin6_family = d6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a, 16);
        memcpy(&d6->sin6_addr, a + 16, 16);
        memcpy(&s6->sin6_port, a + 32, 2);
        memcpy(&d6->sin6_port, a + 34, 2);
        out->src_len = out->dst_len = sizeof(struct sockaddr_in6);
    } else {
        unix_addr(&out->src, &out->src_len, a);
        unix_addr(&out->dst, &out->dst_len, a + 108);
    }
    int rc = parse_tlvs(buf, V2_HEAD + need[fam], total, out);
    return rc < 0 ? rc : (int)total;
}

int sk_proxy_parse(const uint8_t *buf, size_t len, sk_proxy_info *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return 0;
    /* The two signatures differ at the first byte: it picks the one to
     * match, and the first byte that does not fit it fits neither. */
    const uint8_t *sig = buf[0] == 'P' ? (const uint8_t *)v1sig : v2sig;
    size_t n = buf[0] == 'P' ? sizeof v1sig : sizeof v2sig;
    for (size_t i = 0; i < n && i < len; i++)
        if (buf[i] != sig[i])
            return fail(out, SK_PROXY_EBADSIG, i, "not a PROXY protocol header");
    if (len < n)
        return 0;
    return sig == v2sig ? parse_v2(buf, len, out) : parse_v1(buf, len, out);
}

/* --------------------------------------------------------------- writing */

/* An IPv4-mapped IPv6 address as plain IPv4 (a dual-stack socket's view of
 * an IPv4 peer): a proxy says TCP4 / INET for it. */
static int as_family(const struct sockaddr *sa, socklen_t len, struct sockaddr_storage *out)
{
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return AF_UNSPEC;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(out, sa, sizeof(struct sockaddr_in));
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)out;
            memset(s4, 0, sizeof *s4);
            s4->sin_family = AF_INET;
            s4->sin_port = s6->sin6_port;
            memcpy(&s4->sin_addr, s6->sin6_addr.s6_addr + 12, 4);
            return AF_INET;
        }
        memcpy(out, sa, sizeof(struct sockaddr_in6));
        return AF_INET6;
    }
    if (sa->sa_family == AF_UNIX) {
        memset(out, 0, sizeof *out);
        size_t n =
            (size_t)len < sizeof(struct sockaddr_un) ? (size_t)len : sizeof(struct sockaddr_un);
        memcpy(out, sa, n);
        return AF_UNIX;
    }
    return AF_UNSPEC;
}

static int format_v1(uint8_t *out, size_t cap, int fam, const struct sockaddr_storage *src,
                     const struct sockaddr_storage *dst)
{
    char buf[SK_PROXY_V1_MAX + 1]; /* snprintf's NUL is not the header's */
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    unsigned sp = 0, dp = 0;
    int n;
    if (fam == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)src;
        const struct sockaddr_in *b = (const struct sockaddr_in *)dst;
        inet_ntop(AF_INET, &a->sin_addr, s, sizeof s);
        inet_ntop(AF_INET, &b->sin_addr, d, sizeof d);
        sp = ntohs(a->sin_port), dp = ntohs(b->sin_port);
    } else if (fam == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)dst;
        inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof s);
        inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof d);
        sp = ntohs(a->sin6_port), dp = ntohs(b->sin6_port);
    }
    if (fam == AF_INET || fam == AF_INET6) /* at most 104 bytes: two full IPv6 addresses */
        n = snprintf(buf, sizeof buf, "PROXY %s %s %s %u %u\r\n", fam == AF_INET ? "TCP4" : "TCP6",
                     s, d, sp, dp);
    else
        n = snprintf(buf, sizeof buf, "PROXY UNKNOWN\r\n");
    if (n <= 0 || (size_t)n >= sizeof buf || (size_t)n > cap)
        return -1;
    memcpy(out, buf, (size_t)n);
    return n;
}

static int format_v2(uint8_t *buf, size_t cap, int fam, const struct sockaddr_storage *src,
                     const struct sockaddr_storage *dst)
{
    size_t body = fam == AF_INET ? 12 : fam == AF_INET6 ? 36 : fam == AF_UNIX ? 216 : 0;
    if (cap < V2_HEAD + body)
        return -1;
    memcpy(buf, v2sig, sizeof v2sig);
    buf[12] = body ? 0x21 : 0x20; /* version 2, PROXY or LOCAL */
    buf[13] = fam == AF_INET ? 0x11 : fam == AF_INET6 ? 0x21 : fam == AF_UNIX ? 0x31 : 0x00;
    buf[14] = (uint8_t)(body >> 8);
    buf[15] = (uint8_t)body;
    uint8_t *a = buf + V2_HEAD;
    if (fam == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
        const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;
        memcpy(a, &s4->sin_addr, 4);
        memcpy(a + 4, &d4->sin_addr, 4);
        memcpy(a + 8, &s4->sin_port, 2);
        memcpy(a + 10, &d4->sin_port, 2);
    } else if (fam == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
        const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)dst;
        memcpy(a, &s6->sin6_addr, 16);
        memcpy(a + 16, &d6->sin6_addr, 16);
        memcpy(a + 32, &s6->sin6_port, 2);
        memcpy(a + 34, &d6->sin6_port, 2);
    } else if (fam == AF_UNIX) {
        /* sun_path as the kernel gave it (as_family zero-filled the rest):
         * a path NUL-padded, or an abstract name with its leading NUL. */
        memcpy(a, ((const struct sockaddr_un *)src)->sun_path, 108);
        memcpy(a + 108, ((const struct sockaddr_un *)dst)->sun_path, 108);
    }
    return (int)(V2_HEAD + body);
}

int sk_proxy_format(uint8_t *buf, size_t cap, int version, const struct sockaddr *src,
                    socklen_t src_len, const struct sockaddr *dst, socklen_t dst_len)
{
    struct sockaddr_storage s, d;
    int fs = as_family(src, src_len, &s), fd = as_family(dst, dst_len, &d);
    int fam = fs == fd ? fs : AF_UNSPEC; /* one header carries one family */
    if (version == 1)
        return format_v1(buf, cap, fam == AF_UNIX ? AF_UNSPEC : fam, &s, &d);
    if (version == 2)
        return format_v2(buf, cap, fam, &s, &d);
    return -1;
}
