/*
 * response.c - one response of the http service: the status line and common
 * fields, small pages (errors, redirects), files (validators, If-Range,
 * ranges; bodies leave by sendfile, from a mapping, or copied after the head),
 * listings, and the access log (Combined Log Format; with -v also a short line
 * per request).
 */
#define _GNU_SOURCE /* tm_gmtoff */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/fmt.h"
#include "../lib/outq.h"
#include "http_internal.h"

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

#define PUT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), sizeof(lit) - 1)

/* The Date header changes once a second: format it once a second per thread. */
static const char *http_now(void)
{
    static _Thread_local char buf[SK_HTTP_DATE_LEN + 1];
    static _Thread_local time_t last;
    time_t now = time(NULL);
    if (now != last) {
        sk__http_format_date((int64_t)now, buf);
        last = now;
    }
    return buf;
}

/* ---- the access log (Combined Log Format) ---- */

static size_t log_escaped(char *out, size_t cap, sk__http_slice s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < s.n && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return o;
}

void sk__http_access_log(sk_conn *c, const sk__http_request *req, const struct outcome *o)
{
    const struct http_state *st = sk_conn_state(c);
    sk_server *srv = sk_conn_server(c);
    int verbose = sk_server_options(srv)->verbose;
    if (st->access_log_fd < 0 && !verbose)
        return;
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char host[SK_NAME_MAX], reqline[2048] = "-", ref[512] = "-", ua[512] = "-";
    unsigned port;
    sk_conn_peer_host_port(c, host, sizeof host, &port);
    if (req != NULL) {
        char m[64], t[1400];
        log_escaped(m, sizeof m, req->method);
        log_escaped(t, sizeof t, req->target);
        snprintf(reqline, sizeof reqline, "%s %s HTTP/1.%d", m, t, req->minor);
        const sk__http_header *h = sk__http_find_header(req, "Referer");
        if (h)
            log_escaped(ref, sizeof ref, h->value);
        h = sk__http_find_header(req, "User-Agent");
        if (h)
            log_escaped(ua, sizeof ua, h->value);
    }
    /* Over TLS, the version and cipher follow as one more quoted field:
     * "TLSv1.3 TLS_AES_256_GCM_SHA384" (plain connections: nothing). */
    char tls[96] = "";
    const char *tv = sk_conn_tls_version(c);
    if (tv)
        snprintf(tls, sizeof tls, " \"%s %s\"", tv, sk_conn_tls_cipher(c));
    /* -v: `127.0.0.1 "GET /a.txt HTTP/1.1" 200 1234` on stderr, as the CLI logs. */
    if (verbose)
        sk_server_log(srv, SK_LOG_INFO, "%s \"%s\" %d %llu%s", host, reqline, o->status,
                      (unsigned long long)o->body, tls);
    if (st->access_log_fd < 0)
        return;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    long off = tm.tm_gmtoff / 60;
    char line[4096];
    int n = snprintf(line, sizeof line,
                     "%s - %s [%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld] \"%s\" %d %llu \"%s\" "
                     "\"%s\"%s\n",
                     host, o->user && o->user[0] ? o->user : "-", tm.tm_mday, mon[tm.tm_mon],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
                     labs(off) / 60, labs(off) % 60, reqline, o->status,
                     (unsigned long long)o->body, ref, ua, tls);
    /* One write per line (lines from several workers stay whole), queued
     * rather than stalling the server when the log's reader is slow. */
    if (n > 0)
        sk__outq_write(st->access_log_fd, line,
                       (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* ---- responses ---- */

/* Start a response head in buf (at least 256 bytes): status line, Server,
 * Date, Connection. Returns its length. */
static int head_start(char *buf, size_t cap, int status, const sk__http_request *req, int closing)
{
    (void)cap;
    char *p = buf;
    p += PUT(p, "HTTP/1.1 ");
    p += sk__fmt_u64(p, (uint64_t)status);
    *p++ = ' ';
    const char *r = reason(status);
    size_t rl = strlen(r);
    memcpy(p, r, rl);
    p += rl;
    p += PUT(p, "\r\nServer: sockit/" SOCKIT_VERSION "\r\nDate: ");
    memcpy(p, http_now(), SK_HTTP_DATE_LEN);
    p += SK_HTTP_DATE_LEN;
    p += PUT(p, "\r\n");
    if (closing)
        p += PUT(p, "Connection: close\r\n");
    else if (req != NULL && req->minor == 0)
        p += PUT(p, "Connection: keep-alive\r\n");
    return (int)(p - buf);
}

void sk__http_simple_response(sk_conn *c, const sk__http_request *req, int status,
                              const char *extra, const char *note, struct outcome *o)
{
    struct http_conn *h = sk_conn_data(c);
    char body[1024];
    int bn = 0;
    if (status != 304)
        bn = snprintf(body, sizeof body,
                      "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
                      "<body><h1>%d %s</h1>%s%s%s</body></html>\n",
                      status, reason(status), status, reason(status), note ? "<p>" : "",
                      note ? note : "", note ? "</p>" : "");
    if (bn < 0 || (size_t)bn >= sizeof body)
        bn = 0; /* cannot happen with the notes we write; never send a cut page */
    /* extra may be long (a Location): size the head for it, never truncate. */
    size_t elen = extra ? strlen(extra) : 0;
    sk_buf head = {0};
    char *p = (char *)sk_buf_reserve(&head, 512 + elen + (size_t)bn);
    if (p == NULL) {
        h->closing = 1;
        return;
    }
    size_t n = (size_t)head_start(p, 256, status, req, h->closing);
    if (status != 304) {
        n += PUT(p + n, "Content-Type: text/html; charset=utf-8\r\nContent-Length: ");
        n += sk__fmt_u64(p + n, (uint64_t)bn);
        n += PUT(p + n, "\r\n");
    }
    memcpy(p + n, extra ? extra : "", elen);
    n += elen;
    n += PUT(p + n, "\r\n");
    int is_head = req != NULL && SK_HTTP_SLICE_IS(req->method, "HEAD");
    if (!is_head && bn > 0) {
        memcpy(p + n, body, (size_t)bn); /* head and body leave together */
        n += (size_t)bn;
        o->body = (uint64_t)bn;
    }
    sk_conn_send(c, p, n);
    sk_buf_free(&head);
    o->status = status;
}

static int etag_matches(sk__http_slice list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list.p, *end = list.p + list.n;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *start = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > start && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e - start == 1 && *start == '*')
            return 1;
        if (e - start > 2 && start[0] == 'W' && start[1] == '/')
            start += 2; /* weak comparison (RFC 9110 13.1.2) */
        if ((size_t)(e - start) == elen && memcmp(start, etag, elen) == 0)
            return 1;
    }
    return 0;
}

/* If-None-Match (which wins when present, RFC 9110 13.2.2) or If-Modified-Since:
 * 1 if the client's copy is current (answer 304). */
static int not_modified(const sk__http_request *req, const sk__http_file *f)
{
    int64_t since;
    if (req->if_none_match.p)
        return etag_matches(req->if_none_match, f->etag);
    return req->if_modified_since.p &&
           sk__http_parse_date(req->if_modified_since.p, req->if_modified_since.n, &since) == 0 &&
           (int64_t)f->st.st_mtime <= since;
}

/* RFC 9110 13.1.5: a Range counts only if If-Range (when sent) still names
 * this representation: an entity tag by strong comparison (a weak tag never
 * matches), or an HTTP-date equal to Last-Modified, and only while that is a
 * strong validator (at least a second older than Date). Otherwise the whole
 * file is sent, so that a client resuming a download never splices two
 * versions. */
static int if_range_holds(const sk__http_request *req, const sk__http_file *f)
{
    sk__http_slice v = req->if_range;
    int64_t t;
    if (v.p == NULL)
        return 1;
    if (v.n > 0 && (v.p[0] == '"' || (v.n > 1 && v.p[0] == 'W' && v.p[1] == '/')))
        return sk__http_slice_eq(v, f->etag);
    return sk__http_parse_date(v.p, v.n, &t) == 0 && t == (int64_t)f->st.st_mtime &&
           (int64_t)f->st.st_mtime < (int64_t)time(NULL);
}

/* The status line and fields of a 200 or 206 for f. Returns the length. */
static size_t file_head(char *head, int status, const sk__http_request *req, int closing,
                        const sk__http_file *f, uint64_t first, uint64_t last, uint64_t len)
{
    size_t n = (size_t)head_start(head, 256, status, req, closing);
    memcpy(head + n, f->fixed, f->fixed_len);
    n += f->fixed_len;
    n += PUT(head + n, "Content-Length: ");
    n += sk__fmt_u64(head + n, len);
    n += PUT(head + n, "\r\n");
    if (status == 206) {
        n += PUT(head + n, "Content-Range: bytes ");
        n += sk__fmt_u64(head + n, first);
        head[n++] = '-';
        n += sk__fmt_u64(head + n, last);
        head[n++] = '/';
        n += sk__fmt_u64(head + n, (uint64_t)f->st.st_size);
        n += PUT(head + n, "\r\n");
    }
    n += PUT(head + n, "\r\n");
    return n;
}

/* Conditional checks, then the range, then the head, then the body. The head
 * is assembled from pieces computed once per file. */
void sk__http_serve_file(sk_conn *c, const sk__http_request *req, sk__http_file *f,
                         struct outcome *o)
{
    struct http_conn *h = sk_conn_data(c);
    uint64_t size = (uint64_t)f->st.st_size;
    if (not_modified(req, f)) {
        sk__http_simple_response(c, req, 304, f->fixed, NULL, o);
        sk__http_file_release(f);
        return;
    }
    uint64_t first = 0, last = size ? size - 1 : 0, len = size;
    int status = 200;
    if (req->range.p && if_range_holds(req, f)) {
        int r = sk__http_parse_range(req->range.p, req->range.n, size, &first, &last);
        if (r == 0) {
            char cr[64];
            snprintf(cr, sizeof cr, "Content-Range: bytes */%llu\r\n", (unsigned long long)size);
            sk__http_simple_response(c, req, 416, cr, NULL, o);
            sk__http_file_release(f);
            return;
        }
        if (r == 1) {
            status = 206;
            len = last - first + 1;
        } else {
            first = 0; /* a range we do not take: the whole file */
        }
    }
    char head[1024];
    sk_conn_send(c, head, file_head(head, status, req, h->closing, f, first, last, len));
    o->status = status;
    if (SK_HTTP_SLICE_IS(req->method, "HEAD")) {
        sk__http_file_release(f);
        return;
    }
    o->body = len;
    if (f->copy) { /* after the head in the same buffer: one send() for both */
        sk_conn_send(c, f->copy + first, (size_t)len);
        sk__http_file_release(f);
    } else if (f->map)
        sk_conn_queue(c, &(sk_seg){.kind = SK_SEG_MEM,
                                   .mem = f->map + first,
                                   .len = len,
                                   .release = sk__http_file_release,
                                   .arg = f});
    else
        sk_conn_queue(c, &(sk_seg){.kind = SK_SEG_FILE,
                                   .fd = f->fd,
                                   .off = (off_t)first,
                                   .len = len,
                                   .release = sk__http_file_release,
                                   .arg = f});
}

void sk__http_serve_listing(sk_conn *c, const sk__http_request *req, const char *url,
                            struct outcome *o)
{
    struct http_conn *h = sk_conn_data(c);
    const struct http_state *st = sk_conn_state(c);
    sk_buf body = {.max = 8u << 20};
    if (sk__http_listing(&st->root, url, &body) < 0) {
        sk_buf_free(&body);
        sk__http_simple_response(c, req, 500, NULL, NULL, o);
        return;
    }
    char head[512];
    int n = head_start(head, sizeof head, 200, req, h->closing);
    n += snprintf(head + n, sizeof head - (size_t)n,
                  "Content-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
                  "Cache-Control: no-cache\r\n\r\n",
                  body.len);
    sk_conn_send(c, head, (size_t)n);
    o->status = 200;
    if (!SK_HTTP_SLICE_IS(req->method, "HEAD")) {
        sk_conn_send(c, sk_buf_head(&body), body.len);
        o->body = body.len;
    }
    sk_buf_free(&body);
}
