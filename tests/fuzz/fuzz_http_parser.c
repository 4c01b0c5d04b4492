/*
 * fuzz_http_parser.c - libFuzzer target for src/http/parser.c and src/http/httputil.c.
 * Every function is called on the input, and the result is checked against
 * invariants; a violation aborts (a finding). Build and run: tests/fuzz/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/http/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void check_inside(const char *buf, size_t len, sk__http_slice s)
{
    if (s.p == NULL) {
        CHECK(s.n == 0);
        return;
    }
    if (s.n == 1 && s.p[0] == '/' && (s.p < buf || s.p >= buf + len))
        return; /* the documented static "/" of an absolute-form target */
    CHECK(s.p >= buf && s.n <= len && s.p <= buf + len - s.n);
}

static int parse(const char *buf, size_t len, const sk__http_limits *lim, size_t cap,
                 sk__http_request *q, sk__http_header *hdrs)
{
    memset(q, 0, sizeof *q);
    q->headers = hdrs;
    q->nheaders = cap;
    int rc = sk__http_parse_request(buf, len, q, lim);
    CHECK(rc > 0 || rc == 0 || rc == -400 || rc == -414 || rc == -431 || rc == -501 || rc == -505);
    if (rc <= 0)
        CHECK(q->nheaders == cap); /* untouched */
    return rc;
}

static void check_request(const char *buf, size_t len, int rc, const sk__http_request *q, size_t cap)
{
    CHECK((size_t)rc <= len && rc >= 14); /* "A / HTTP/1.0\n\n" is the shortest */
    /* The head ends with a line terminator (CRLF or a bare LF), then an empty line. */
    CHECK(buf[rc - 1] == '\n');
    CHECK(buf[rc - 2] == '\n' || (buf[rc - 2] == '\r' && buf[rc - 3] == '\n'));
    /* A CR appears only right before an LF. */
    for (int i = 0; i < rc; i++)
        CHECK(buf[i] != '\r' || buf[i + 1] == '\n');
    CHECK(q->nheaders <= cap);
    CHECK(q->minor == 0 || q->minor == 1);
    CHECK(q->keep_alive == 0 || q->keep_alive == 1);
    CHECK(!(q->chunked && q->has_content_length));
    CHECK(q->minor == 1 || !q->chunked);
    CHECK(q->minor == 0 || q->host.p != NULL);
    CHECK(q->has_content_length || q->content_length == 0);
    CHECK(q->method.n > 0 && q->target.n > 0 && q->path.n > 0);
    for (size_t i = 0; i < q->method.n; i++)
        CHECK(is_tchar((unsigned char)q->method.p[i]));
    for (size_t i = 0; i < q->target.n; i++)
        CHECK(q->target.p[i] > 0x20 && q->target.p[i] < 0x7f && q->target.p[i] != '#');
    CHECK(q->path.p[0] == '/' || (q->path.n == 1 && q->path.p[0] == '*'));
    CHECK(memchr(q->path.p, '?', q->path.n) == NULL);
    size_t rl = len < (size_t)rc ? len : (size_t)rc;
    check_inside(buf, rl, q->method);
    check_inside(buf, rl, q->target);
    check_inside(buf, rl, q->path);
    check_inside(buf, rl, q->query);
    check_inside(buf, rl, q->host);
    check_inside(buf, rl, q->if_modified_since);
    check_inside(buf, rl, q->if_none_match);
    check_inside(buf, rl, q->range);
    check_inside(buf, rl, q->if_range);
    check_inside(buf, rl, q->authorization);
    for (size_t i = 0; i < q->nheaders; i++) {
        sk__http_slice n = q->headers[i].name, v = q->headers[i].value;
        check_inside(buf, rl, n);
        check_inside(buf, rl, v);
        CHECK(n.n > 0);
        for (size_t k = 0; k < n.n; k++)
            CHECK(is_tchar((unsigned char)n.p[k]));
        for (size_t k = 0; k < v.n; k++) {
            unsigned char c = (unsigned char)v.p[k];
            CHECK(c >= 0x20 || c == '\t');
            CHECK(c != 0x7f);
        }
        if (v.n > 0)
            CHECK(v.p[0] != ' ' && v.p[0] != '\t' && v.p[v.n - 1] != ' ' && v.p[v.n - 1] != '\t');
    }
}

/* The result for a prefix of k bytes, given R for the whole input: a complete
 * head stays complete at the same length, an error is 0 or the same error, and
 * an incomplete input has incomplete prefixes. */
static void check_prefix(const uint8_t *data, size_t k, int whole, const sk__http_limits *lim,
                         size_t cap, sk__http_header *hdrs)
{
    sk__http_request q;
    char *b = malloc(k ? k : 1); /* exact size: ASan sees any read past k */
    CHECK(b != NULL);
    memcpy(b, data, k);
    int rc = parse(b, k, lim, cap, &q, hdrs);
    if (whole > 0)
        CHECK(rc == ((int)k < whole ? 0 : whole));
    else
        CHECK(rc == 0 || rc == whole);
    free(b);
}

static void fuzz_parser(const uint8_t *data, size_t size, const sk__http_limits *lim, size_t cap)
{
    sk__http_header hdrs[64];
    sk__http_request q;
    const char *buf = (const char *)data;
    int rc = parse(buf, size, lim, cap, &q, hdrs);
    if (rc > 0)
        check_request(buf, size, rc, &q, cap);
    if (size <= 160) {
        for (size_t k = 0; k < size; k++)
            check_prefix(data, k, rc, lim, cap, hdrs);
    } else {
        for (size_t k = size - 1, i = 0; i < 8; i++, k = k * 5 / 7)
            check_prefix(data, k, rc, lim, cap, hdrs);
        if (rc > 0)
            check_prefix(data, (size_t)rc, rc, lim, cap, hdrs);
    }
}

/* On success: a leading '/', no empty segment, no "." or "..", no '\\', no NUL,
 * no 0xc0/0xc1/0xf5-0xff, and the same non-empty segments as the input. */
static void check_normalized(const char *in, size_t n, const char *out, size_t m)
{
    CHECK(m >= 1 && m <= n && out[0] == '/' && out[m] == '\0');
    for (size_t i = 0; i < m; i++) {
        unsigned char c = (unsigned char)out[i];
        CHECK(c != '\\' && c != 0 && c != 0xc0 && c != 0xc1 && c < 0xf5);
        if (c == '/' && i + 1 < m)
            CHECK(out[i + 1] != '/');
    }
    size_t i = 0, j = 0;
    for (;;) {
        while (i < n && in[i] == '/')
            i++;
        while (j < m && out[j] == '/')
            j++;
        if (i == n || j == m)
            break;
        size_t a = i, b = j;
        while (i < n && in[i] != '/')
            i++;
        while (j < m && out[j] != '/')
            j++;
        CHECK(i - a == j - b && memcmp(in + a, out + b, i - a) == 0);
        CHECK(!(j - b == 1 && out[b] == '.'));
        CHECK(!(j - b == 2 && out[b] == '.' && out[b + 1] == '.'));
    }
    CHECK(i == n && j == m);
}

static void fuzz_paths(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char *out = malloc(size + 1), *copy = malloc(size + 1);
    CHECK(out != NULL && copy != NULL);
    size_t n = 0, m = 0, n2 = 0;
    int rc = sk__http_percent_decode(in, size, out, size + 1, &n);
    if (rc == 0) {
        CHECK(n <= size && out[n] == '\0' && memchr(out, 0, n) == NULL);
        memcpy(copy, in, size); /* in place gives the same */
        copy[size] = 'x';
        CHECK(sk__http_percent_decode(copy, size, copy, size + 1, &n2) == 0);
        CHECK(n2 == n && memcmp(copy, out, n + 1) == 0);
        CHECK(sk__http_percent_decode(in, size, copy, n, &n2) == -1); /* no room for the NUL */
        memcpy(copy, out, n + 1);
        if (sk__http_normalize_path(out, n, &m) == 0) {
            check_normalized(copy, n, out, m);
            size_t m2 = 0; /* idempotent */
            CHECK(sk__http_normalize_path(out, m, &m2) == 0 && m2 == m);
        }
    }
    /* also on the raw bytes, which may hold NUL */
    memcpy(copy, in, size);
    memcpy(out, in, size);
    if (sk__http_normalize_path(out, size, &m) == 0)
        check_normalized(copy, size, out, m);
    free(out);
    free(copy);
}

static void fuzz_range(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = {0, 1, 2, 100, 10000, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t a = 0, b = 0;
        int rc = sk__http_parse_range((const char *)data, size, sizes[i], &a, &b);
        CHECK(rc == -1 || rc == 0 || rc == 1);
        if (rc == 1)
            CHECK(a <= b && b < sizes[i]);
    }
}

static void fuzz_dates(const uint8_t *data, size_t size)
{
    char buf[SK_HTTP_DATE_LEN + 1];
    int64_t t = 0, back = 0;
    if (sk__http_parse_date((const char *)data, size, &t) == 0) {
        CHECK(size == 24 || size >= 29);
        CHECK(t >= -62167219200 && t <= 253402300800);
        if (t <= 253402300799) { /* the leap second of 9999-12-31 is clamped */
            CHECK(sk__http_format_date(t, buf) == SK_HTTP_DATE_LEN);
            CHECK(sk__http_parse_date(buf, SK_HTTP_DATE_LEN, &back) == 0 && back == t);
        }
    }
    if (size >= 8) {
        int64_t x;
        memcpy(&x, data, 8);
        CHECK(sk__http_format_date(x, buf) == SK_HTTP_DATE_LEN && buf[SK_HTTP_DATE_LEN] == '\0');
        CHECK(sk__http_parse_date(buf, SK_HTTP_DATE_LEN, &back) == 0);
        int64_t want = x < -62167219200 ? -62167219200 : x > 253402300799 ? 253402300799 : x;
        CHECK(back == want);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sk__http_limits small = {48, 128, 4};
    static const sk__http_limits tiny = {20, 24, 1};
    fuzz_parser(data, size, NULL, 64);
    fuzz_parser(data, size, &small, 8);
    fuzz_parser(data, size, &tiny, 2);
    fuzz_paths(data, size);
    fuzz_range(data, size);
    fuzz_dates(data, size);
    return 0;
}
