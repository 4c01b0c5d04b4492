/*
 * check.c - what `sockit bench` sends and how it checks what comes back,
 * with no I/O: the message patterns (echo, conn, udp, idle), the per-connection
 * streams (bulk), and an incremental HTTP/1.x response parser (http).
 *
 * Every payload is a window of one random block, so building a message costs
 * no per-byte work (iovecs point into the block) and checking a reply is a
 * memcmp against the same window.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "check.h"

static uint8_t block[BENCH_BLOCK];

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: every input bit reaches every output bit. */
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

void bench_pattern_init(void)
{
    uint64_t s = UINT64_C(0x736f636b69742121); /* fixed: runs are reproducible */
    for (size_t i = 0; i < BENCH_BLOCK; i += 8) {
        uint64_t v = mix64(s++);
        memcpy(block + i, &v, 8);
    }
}

void bench_msg_header(uint32_t conn, uint64_t seq, uint8_t hdr[BENCH_HDR])
{
    uint32_t s = (uint32_t)seq;
    for (int i = 0; i < 4; i++) {
        hdr[i] = (uint8_t)(conn >> (8 * i));
        hdr[4 + i] = (uint8_t)(s >> (8 * i));
    }
}

static const uint8_t *msg_body(uint32_t conn, uint64_t seq)
{
    uint64_t off = mix64(((uint64_t)conn << 32) ^ seq ^ (seq >> 32 << 48));
    return block + off % (BENCH_BLOCK - BENCH_MSG_MAX + 1);
}

int bench_msg_iov(uint32_t conn, uint64_t seq, size_t size, size_t pos, uint8_t hdr[BENCH_HDR],
                  struct iovec iov[2])
{
    int n = 0;
    if (pos >= size)
        return 0;
    size_t hlen = size < BENCH_HDR ? size : BENCH_HDR;
    if (pos < hlen) {
        bench_msg_header(conn, seq, hdr);
        iov[n].iov_base = hdr + pos;
        iov[n].iov_len = hlen - pos;
        n++;
        pos = hlen;
    }
    if (pos < size) {
        iov[n].iov_base = (void *)(msg_body(conn, seq) + (pos - BENCH_HDR));
        iov[n].iov_len = size - pos;
        n++;
    }
    return n;
}

int bench_msg_check(uint32_t conn, uint64_t seq, size_t size, size_t pos, const uint8_t *data,
                    size_t n)
{
    if (pos > size || n > size - pos)
        return 0;
    size_t hlen = size < BENCH_HDR ? size : BENCH_HDR;
    if (pos < hlen) {
        uint8_t hdr[BENCH_HDR];
        bench_msg_header(conn, seq, hdr);
        size_t k = hlen - pos < n ? hlen - pos : n;
        if (memcmp(data, hdr + pos, k) != 0)
            return 0;
        data += k;
        n -= k;
        pos += k;
    }
    if (n == 0)
        return 1;
    return memcmp(data, msg_body(conn, seq) + (pos - BENCH_HDR), n) == 0;
}

static size_t stream_index(uint32_t conn, uint64_t pos)
{
    return (size_t)((mix64(conn) + pos) % BENCH_BLOCK);
}

int bench_stream_iov(uint32_t conn, uint64_t pos, size_t len, struct iovec iov[2])
{
    int n = 0;
    while (len > 0 && n < 2) {
        size_t i = stream_index(conn, pos);
        size_t k = BENCH_BLOCK - i < len ? BENCH_BLOCK - i : len;
        iov[n].iov_base = block + i;
        iov[n].iov_len = k;
        n++;
        pos += k;
        len -= k;
    }
    return n;
}

int bench_stream_check(uint32_t conn, uint64_t pos, const uint8_t *data, size_t n)
{
    while (n > 0) {
        size_t i = stream_index(conn, pos);
        size_t k = BENCH_BLOCK - i < n ? BENCH_BLOCK - i : n;
        if (memcmp(data, block + i, k) != 0)
            return 0;
        data += k;
        pos += k;
        n -= k;
    }
    return 1;
}

/* ------------------------------------------------------------ HTTP responses */

enum { HP_STATUS, HP_HEADERS, HP_BODY, HP_DONE };
#define HTTP_LINE_LIMIT 8192  /* one status or header line */
#define HTTP_HEAD_LIMIT 65536 /* status line and headers together */

void bench_http_reset(bench_http *p)
{
    memset(p, 0, offsetof(bench_http, line));
    p->state = HP_STATUS;
    p->keep_alive = 1;
}

/* Case-insensitive "does the header line start with name:", giving the value. */
static const char *header_value(const char *line, size_t len, const char *name)
{
    size_t k = strlen(name);
    if (len <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return NULL;
    const char *v = line + k + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    return v;
}

static int has_token(const char *v, const char *token)
{
    size_t k = strlen(token);
    for (; *v; v++)
        if (strncasecmp(v, token, k) == 0)
            return 1;
    return 0;
}

static int parse_status(bench_http *p, const char *l, size_t len)
{
    /* HTTP/1.x SP DIGIT DIGIT DIGIT [SP reason] */
    if (len < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ')
        return -1;
    if (!isdigit((unsigned char)l[9]) || !isdigit((unsigned char)l[10]) ||
        !isdigit((unsigned char)l[11]) || (len > 12 && l[12] != ' '))
        return -1;
    p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (p->status < 100)
        return -1;
    p->keep_alive = l[7] == '1';
    p->state = HP_HEADERS;
    return 0;
}

static int end_of_head(bench_http *p)
{
    if (p->status < 200) { /* 1xx: an interim response; the real one follows */
        int keep = p->keep_alive;
        bench_http_reset(p);
        p->keep_alive = keep;
        return 0;
    }
    if (p->chunked)
        return -1;
    if (p->status == 204 || p->status == 304 || (p->has_length && p->remain == 0)) {
        p->state = HP_DONE;
    } else if (p->has_length) {
        p->state = HP_BODY;
    } else {
        p->remain = -1; /* the body ends when the server closes */
        p->keep_alive = 0;
        p->state = HP_BODY;
    }
    return 0;
}

static int parse_header(bench_http *p, const char *l, size_t len)
{
    if (len == 0)
        return end_of_head(p);
    const char *v;
    if ((v = header_value(l, len, "content-length")) != NULL) {
        int64_t n = 0;
        const char *d = v;
        for (; *d >= '0' && *d <= '9'; d++) {
            n = n * 10 + (*d - '0');
            if (n > (INT64_C(1) << 50))
                return -1;
        }
        while (*d == ' ' || *d == '\t')
            d++;
        if (d == v || *d != '\0' || (p->has_length && p->remain != n))
            return -1;
        p->has_length = 1;
        p->remain = n;
    } else if ((v = header_value(l, len, "connection")) != NULL) {
        if (has_token(v, "close"))
            p->keep_alive = 0;
        else if (has_token(v, "keep-alive"))
            p->keep_alive = 1;
    } else if ((v = header_value(l, len, "transfer-encoding")) != NULL) {
        if (has_token(v, "chunked"))
            p->chunked = 1;
    }
    return 0;
}

int bench_http_feed(bench_http *p, const uint8_t *data, size_t len, size_t *used)
{
    size_t i = 0;
    int rc = BENCH_HTTP_MORE;
    while (i < len && p->state != HP_DONE) {
        if (p->state == HP_BODY) {
            if (p->remain < 0) { /* until close: everything is body */
                i = len;
                break;
            }
            size_t k = (uint64_t)p->remain < len - i ? (size_t)p->remain : len - i;
            i += k;
            p->remain -= (int64_t)k;
            if (p->remain == 0)
                p->state = HP_DONE;
            continue;
        }
        const uint8_t *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) + 1 : len;
        size_t k = end - i;
        size_t room = sizeof p->line - 1 - p->line_len;
        memcpy(p->line + p->line_len, data + i, k < room ? k : room);
        p->line_len += k < room ? k : room;
        p->line_all += k;
        p->head_all += k;
        i = end;
        if (p->line_all > HTTP_LINE_LIMIT || p->head_all > HTTP_HEAD_LIMIT) {
            rc = BENCH_HTTP_ERROR;
            break;
        }
        if (nl == NULL)
            break;
        /* A whole line: drop its CRLF (or LF); a long one keeps only its start. */
        size_t n = p->line_len;
        if (p->line_all == p->line_len) {
            n--;
            if (n > 0 && p->line[n - 1] == '\r')
                n--;
        }
        p->line[n] = '\0';
        int r = p->state == HP_STATUS ? parse_status(p, p->line, n) : parse_header(p, p->line, n);
        p->line_len = p->line_all = 0;
        if (r < 0) {
            rc = BENCH_HTTP_ERROR;
            break;
        }
    }
    p->bytes += i;
    *used = i;
    if (rc == BENCH_HTTP_ERROR)
        return rc;
    return p->state == HP_DONE ? BENCH_HTTP_DONE : BENCH_HTTP_MORE;
}

int bench_http_eof(const bench_http *p)
{
    if (p->state == HP_BODY && p->remain < 0)
        return BENCH_HTTP_DONE;
    if (p->state == HP_STATUS && p->line_all == 0 && p->bytes == 0)
        return BENCH_HTTP_MORE;
    return BENCH_HTTP_ERROR;
}
