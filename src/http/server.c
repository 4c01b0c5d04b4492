/*
 * server.c - the `http` service: static files over HTTP/1.0 and 1.1.
 *
 * The steps of the seed's web server: read and parse the request (parser.c,
 * no I/O), translate the URL into a file name (decode, normalize, open beneath
 * the root: files.c), decide whether the request is authorized (auth.c), and
 * generate and send the response (here; file bodies leave by sendfile).
 *
 * Per connection, requests are handled in order as their heads complete
 * (keep-alive and pipelining); output is bounded: past HTTP_PAUSE_BYTES of
 * queued output the connection stops parsing until the queue drains.
 * Timers: the whole request head must arrive within header_timeout (trickled
 * bytes do not extend it: slowloris), and an idle keep-alive connection is
 * closed after keepalive_timeout.
 */
#define _GNU_SOURCE /* tm_gmtoff */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

#define HTTP_PAUSE_BYTES (256 * 1024)
#define HTTP_IN_MAX (1u << 20)
#define HTTP_BODY_DISCARD_MAX (1u << 20) /* a GET body larger than this is refused (413) */
#define HTTP_PATH_MAX 4096
#define HTTP_HEADER_TIMEOUT_MS 10000
#define HTTP_KEEPALIVE_TIMEOUT_MS 15000
#define HTTP_MAX_REQUESTS 1000

struct http_state {
    sk_http_config cfg;
    sk_http_cache *cache;
    int root_fd;
    const char *index;
    sk_http_auth *auth;
};

struct http_conn {
    sk_buf in;                /* bytes of requests not handled yet */
    uint64_t discard;         /* body bytes of the last request still to skip */
    unsigned requests;        /* handled on this connection */
    unsigned char closing;    /* no more requests: close once the output is sent */
    unsigned char in_request; /* part of a request head is here: the header timer runs */
};

/* What the access log needs to know about one response. */
struct outcome {
    int status;
    uint64_t body;
    const char *user;
};

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

/* Append a decimal number. */
static size_t put_u64(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

#define PUT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), sizeof(lit) - 1)

/* The Date header changes once a second: format it once a second per thread. */
static const char *http_now(void)
{
    static _Thread_local char buf[SK_HTTP_DATE_LEN + 1];
    static _Thread_local time_t last;
    time_t now = time(NULL);
    if (now != last) {
        sk_http_format_date((int64_t)now, buf);
        last = now;
    }
    return buf;
}

/* ---- the access log (Combined Log Format) ---- */

static size_t log_escaped(char *out, size_t cap, sk_http_slice s)
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

static void access_log(sk_conn *c, const sk_http_request *req, const struct outcome *o)
{
    const struct http_state *st = sk_conn_state(c);
    if (st->cfg.access_log_fd < 0)
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
        const sk_http_header *h = sk_http_find_header(req, "Referer");
        if (h)
            log_escaped(ref, sizeof ref, h->value);
        h = sk_http_find_header(req, "User-Agent");
        if (h)
            log_escaped(ua, sizeof ua, h->value);
    }
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    long off = tm.tm_gmtoff / 60;
    char line[4096];
    int n = snprintf(line, sizeof line,
                     "%s - %s [%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld] \"%s\" %d %llu \"%s\" "
                     "\"%s\"\n",
                     host, o->user && o->user[0] ? o->user : "-", tm.tm_mday, mon[tm.tm_mon],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
                     labs(off) / 60, labs(off) % 60, reqline, o->status,
                     (unsigned long long)o->body, ref, ua);
    if (n > 0)
        sk_write_all(st->cfg.access_log_fd, line,
                     (size_t)n < sizeof line ? (size_t)n : sizeof line - 1,
                     -1); /* one write per line: lines from several workers stay whole */
}

/* ---- responses ---- */

/* Start a response head in buf (at least 256 bytes): status line, Server,
 * Date, Connection. Returns its length. */
static int head_start(char *buf, size_t cap, int status, const sk_http_request *req, int closing)
{
    (void)cap;
    char *p = buf;
    p += PUT(p, "HTTP/1.1 ");
    p += put_u64(p, (uint64_t)status);
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

/* A complete small response (an error page, a redirect) in one send. */
static void simple_response(sk_conn *c, const sk_http_request *req, int status, const char *extra,
                            struct outcome *o)
{
    struct http_conn *h = sk_conn_data(c);
    char body[256];
    int bn = 0;
    if (status != 304)
        bn = snprintf(body, sizeof body,
                      "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
                      "<body><h1>%d %s</h1></body></html>\n",
                      status, reason(status), status, reason(status));
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
        n += put_u64(p + n, (uint64_t)bn);
        n += PUT(p + n, "\r\n");
    }
    memcpy(p + n, extra ? extra : "", elen);
    n += elen;
    n += PUT(p + n, "\r\n");
    int is_head = req != NULL && sk_http_slice_eq(req->method, "HEAD");
    if (!is_head && bn > 0) {
        memcpy(p + n, body, (size_t)bn); /* head and body leave together */
        n += (size_t)bn;
        o->body = (uint64_t)bn;
    }
    sk_conn_send(c, p, n);
    sk_buf_free(&head);
    o->status = status;
}

static int etag_matches(sk_http_slice list, const char *etag)
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

/* Send a file (the caller's reference to f is passed on), with validators and
 * ranges. The head is assembled from pieces computed once per file. */
static void serve_file(sk_conn *c, const sk_http_request *req, sk_http_file *f, struct outcome *o)
{
    struct http_conn *h = sk_conn_data(c);
    uint64_t size = (uint64_t)f->st.st_size;
    int64_t since;
    int not_modified = req->if_none_match.p
                           ? etag_matches(req->if_none_match, f->etag)
                           : (req->if_modified_since.p &&
                              sk_http_parse_date(req->if_modified_since.p, req->if_modified_since.n,
                                                 &since) == 0 &&
                              (int64_t)f->st.st_mtime <= since);
    if (not_modified) {
        simple_response(c, req, 304, f->fixed, o);
        sk__http_file_release(f);
        return;
    }
    uint64_t first = 0, last = size ? size - 1 : 0, len = size;
    int status = 200;
    if (req->range.p) {
        int r = sk_http_parse_range(req->range.p, req->range.n, size, &first, &last);
        if (r == 0) {
            char cr[64];
            snprintf(cr, sizeof cr, "Content-Range: bytes */%llu\r\n", (unsigned long long)size);
            simple_response(c, req, 416, cr, o);
            sk__http_file_release(f);
            return;
        }
        if (r == 1) {
            status = 206;
            len = last - first + 1;
        } else {
            first = 0;
        }
    }
    char head[1024];
    size_t n = (size_t)head_start(head, sizeof head, status, req, h->closing);
    memcpy(head + n, f->fixed, f->fixed_len);
    n += f->fixed_len;
    n += PUT(head + n, "Content-Length: ");
    n += put_u64(head + n, len);
    n += PUT(head + n, "\r\n");
    if (status == 206) {
        n += PUT(head + n, "Content-Range: bytes ");
        n += put_u64(head + n, first);
        head[n++] = '-';
        n += put_u64(head + n, last);
        head[n++] = '/';
        n += put_u64(head + n, size);
        n += PUT(head + n, "\r\n");
    }
    n += PUT(head + n, "\r\n");
    sk_conn_send(c, head, n);
    o->status = status;
    if (sk_http_slice_eq(req->method, "HEAD")) {
        sk__http_file_release(f);
        return;
    }
    o->body = len;
    if (f->map)
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

static void serve_listing(sk_conn *c, const sk_http_request *req, int dir_fd, const char *url,
                          struct outcome *o)
{
    struct http_conn *h = sk_conn_data(c);
    sk_buf body = {.max = 8u << 20};
    if (sk__http_listing(dir_fd, url, &body) < 0) {
        sk_buf_free(&body);
        simple_response(c, req, 500, NULL, o);
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
    if (!sk_http_slice_eq(req->method, "HEAD")) {
        sk_conn_send(c, sk_buf_head(&body), body.len);
        o->body = body.len;
    }
    sk_buf_free(&body);
}

/* Percent-encode a decoded path for a header: unreserved characters and '/'
 * stay, every other byte becomes %XX. */
static int append_url_path(sk_buf *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
                    ch == '/';
        char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
        if (sk_buf_append(b, plain ? (const char *)&ch : enc, plain ? 1 : 3) < 0)
            return -1;
    }
    return 0;
}

static int is_known_method(sk_http_slice m)
{
    static const char *const known[] = {"POST",  "PUT",     "DELETE", "OPTIONS",
                                        "PATCH", "CONNECT", "TRACE"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (sk_http_slice_eq(m, known[i]))
            return 1;
    return 0;
}

/* Map a failed open to a status: missing is 404, escaping or forbidden 403. */
static int open_status(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG: return 404;
    case EXDEV:
    case ELOOP:
    case EACCES:
    case EPERM: return 403;
    default: return 500;
    }
}

static void respond(sk_conn *c, const sk_http_request *req, struct outcome *o)
{
    struct http_state *st = sk_conn_state(c);
    struct http_conn *h = sk_conn_data(c);
    int is_get = sk_http_slice_eq(req->method, "GET");
    int is_head = sk_http_slice_eq(req->method, "HEAD");
    int maxreq = st->cfg.max_requests > 0 ? st->cfg.max_requests : HTTP_MAX_REQUESTS;
    if (!req->keep_alive || h->requests + 1 >= (unsigned)maxreq)
        h->closing = 1;
    if (!is_get && !is_head) {
        /* The body of a method we do not serve is never parsed: close after. */
        h->closing = 1;
        simple_response(c, req, is_known_method(req->method) ? 405 : 501, "Allow: GET, HEAD\r\n",
                        o);
        return;
    }
    /* A GET/HEAD body is skipped, never taken for the next request. */
    if (req->chunked) {
        h->closing = 1;
        simple_response(c, req, 400, NULL, o);
        return;
    }
    if (req->has_content_length && req->content_length > 0) {
        if (req->content_length > HTTP_BODY_DISCARD_MAX) {
            h->closing = 1;
            simple_response(c, req, 413, NULL, o);
            return;
        }
        h->discard = req->content_length;
    }
    static _Thread_local char user[256];
    user[0] = '\0';
    o->user = user;
    if (st->auth && !sk__http_auth_check(st->auth, req->authorization, user, sizeof user)) {
        simple_response(c, req, 401,
                        "WWW-Authenticate: Basic realm=\"sockit\", charset=\"UTF-8\"\r\n", o);
        return;
    }
    char path[HTTP_PATH_MAX + 1];
    size_t plen;
    if (req->path.n > HTTP_PATH_MAX) {
        simple_response(c, req, 414, NULL, o);
        return;
    }
    if (sk_http_percent_decode(req->path.p, req->path.n, path, sizeof path, &plen) < 0 ||
        sk_http_normalize_path(path, plen, &plen) < 0) {
        simple_response(c, req, 400, NULL, o);
        return;
    }
    sk_http_file *f = sk__http_cache_get(st->cache, path, plen);
    if (f != NULL) {
        serve_file(c, req, f, o);
        return;
    }
    int fd = sk__http_open_beneath(st->root_fd, path + 1);
    if (fd < 0) {
        simple_response(c, req, open_status(errno), NULL, o);
        return;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        close(fd);
        simple_response(c, req, 500, NULL, o);
        return;
    }
    if (S_ISDIR(sb.st_mode)) {
        if (path[plen - 1] != '/') {
            /* /dir -> /dir/, so that relative links inside it resolve. */
            /* Built from the normalized path, re-encoded: "//host" was collapsed
             * to "/host", so the Location can never name another site. */
            sk_buf loc = {0};
            int bad = sk_buf_append(&loc, "Location: ", 10) < 0 ||
                      append_url_path(&loc, path, plen) < 0 || sk_buf_append(&loc, "/", 1) < 0 ||
                      (req->query.p && (sk_buf_append(&loc, "?", 1) < 0 ||
                                        sk_buf_append(&loc, req->query.p, req->query.n) < 0)) ||
                      sk_buf_append(&loc, "\r\n", 3) < 0; /* with the NUL */
            close(fd);
            simple_response(c, req, bad ? 500 : 301, bad ? NULL : (const char *)sk_buf_head(&loc),
                            o);
            sk_buf_free(&loc);
            return;
        }
        int ifd = sk__http_open_beneath(fd, st->index);
        struct stat isb;
        if (ifd >= 0 && fstat(ifd, &isb) == 0 && S_ISREG(isb.st_mode)) {
            close(fd);
            f = sk__http_file_new(st->cache, path, plen, ifd, &isb, st->index);
            if (f == NULL)
                simple_response(c, req, 500, NULL, o);
            else
                serve_file(c, req, f, o);
            return;
        }
        if (ifd >= 0)
            close(ifd);
        if (st->cfg.listing)
            serve_listing(c, req, fd, path, o);
        else
            simple_response(c, req, 403, NULL, o);
        close(fd);
        return;
    }
    if (!S_ISREG(sb.st_mode)) { /* FIFOs, devices, sockets: never */
        close(fd);
        simple_response(c, req, 403, NULL, o);
        return;
    }
    f = sk__http_file_new(st->cache, path, plen, fd, &sb, path);
    if (f == NULL)
        simple_response(c, req, 500, NULL, o);
    else
        serve_file(c, req, f, o);
}

/* ---- the connection ---- */

static void arm_timer(sk_conn *c)
{
    const struct http_state *st = sk_conn_state(c);
    const struct http_conn *h = sk_conn_data(c);
    int ms = h->in_request ? st->cfg.header_timeout_ms : st->cfg.keepalive_timeout_ms;
    sk_conn_set_timer(c, ms);
}

/* Handle every complete request in the input, in order. */
static void process(sk_conn *c)
{
    struct http_conn *h = sk_conn_data(c);
    while (!h->closing) {
        if (h->discard > 0) {
            size_t n = h->in.len < h->discard ? h->in.len : (size_t)h->discard;
            sk_buf_consume(&h->in, n);
            h->discard -= n;
            if (h->discard > 0)
                break;
        }
        if (h->in.len == 0)
            break;
        if (sk_conn_pending(c) >= HTTP_PAUSE_BYTES) {
            sk_conn_want_drain(c, 1); /* on_drain brings us back */
            return;
        }
        sk_http_header hdrs[SK_HTTP_MAX_HEADERS_DEFAULT];
        sk_http_request req = {.headers = hdrs, .nheaders = SK_HTTP_MAX_HEADERS_DEFAULT};
        int r = sk_http_parse_request((const char *)sk_buf_head(&h->in), h->in.len, &req, NULL);
        struct outcome o = {0};
        if (r == 0) {
            if (!h->in_request) {
                h->in_request = 1; /* the deadline for this head starts now, once */
                arm_timer(c);
            }
            break;
        }
        if (r < 0) {
            h->closing = 1;
            simple_response(c, NULL, -r, NULL, &o);
            access_log(c, NULL, &o);
            break;
        }
        respond(c, &req, &o);
        access_log(c, &req, &o);
        sk_buf_consume(&h->in, (size_t)r);
        h->requests++;
        h->in_request = 0;
    }
    sk_conn_want_drain(c, 0);
    if (h->closing) {
        sk_buf_free(&h->in);
        sk_conn_close(c);
        return;
    }
    if (h->in.len == 0)
        sk_buf_free(&h->in); /* an idle keep-alive connection holds no buffer */
    if (!h->in_request)
        arm_timer(c);
}

static void http_open(sk_conn *c)
{
    struct http_conn *h = sk_conn_data(c);
    h->in.max = HTTP_IN_MAX;
    h->in_request = 1; /* the first request's deadline runs from the connection */
    arm_timer(c);
}

static void http_data(sk_conn *c, const uint8_t *data, size_t len)
{
    struct http_conn *h = sk_conn_data(c);
    if (h->closing)
        return;
    if (h->discard > 0 && h->in.len == 0) {
        size_t n = len < h->discard ? len : (size_t)h->discard;
        data += n;
        len -= n;
        h->discard -= n;
    }
    if (sk_buf_append(&h->in, data, len) < 0) {
        h->closing = 1;
        sk_conn_close(c);
        return;
    }
    process(c);
}

static void http_drain(sk_conn *c)
{
    process(c);
}

static void http_eof(sk_conn *c)
{
    struct http_conn *h = sk_conn_data(c);
    process(c); /* pipelined requests before the half-close still get answers */
    h->closing = 1;
    sk_conn_close(c);
}

static void http_timeout(sk_conn *c)
{
    struct http_conn *h = sk_conn_data(c);
    if (sk_conn_pending(c) > 0) {
        arm_timer(c); /* still sending: the engine's idle timeout watches that */
        return;
    }
    if (h->in_request && h->requests + h->in.len > 0) {
        struct outcome o = {0};
        h->closing = 1;
        simple_response(c, NULL, 408, NULL, &o);
        access_log(c, NULL, &o);
    }
    h->closing = 1;
    sk_conn_close(c);
}

static void http_close(sk_conn *c)
{
    struct http_conn *h = sk_conn_data(c);
    sk_buf_free(&h->in);
}

static int http_init(sk_server *s, void **state, sk_err *err)
{
    const sk_http_config *cfg = sk_server_options(s)->service_config;
    struct http_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return sk_errno(err, ENOMEM, "http");
    if (cfg)
        st->cfg = *cfg;
    else
        st->cfg.access_log_fd = -1;
    if (st->cfg.header_timeout_ms <= 0)
        st->cfg.header_timeout_ms = HTTP_HEADER_TIMEOUT_MS;
    if (st->cfg.keepalive_timeout_ms <= 0)
        st->cfg.keepalive_timeout_ms = HTTP_KEEPALIVE_TIMEOUT_MS;
    st->index = st->cfg.index ? st->cfg.index : "index.html";
    if (strchr(st->index, '/') || strcmp(st->index, "..") == 0 || st->index[0] == '\0') {
        sk_err_usage(err, "--index \"%s\": expected a file name, without '/'", st->index);
        free(st);
        return -1;
    }
    const char *root = st->cfg.root ? st->cfg.root : ".";
    st->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->root_fd < 0) {
        int e = errno;
        free(st);
        return sk_errno(err, e, "--root %s", root);
    }
    if (st->cfg.auth_file && (st->auth = sk__http_auth_load(st->cfg.auth_file, err)) == NULL) {
        close(st->root_fd);
        free(st);
        return -1;
    }
    st->cache = sk__http_cache_new(); /* NULL (out of memory) just means no caching */
    *state = st;
    return 0;
}

static void http_fini(void *state)
{
    struct http_state *st = state;
    if (st == NULL)
        return;
    close(st->root_fd);
    sk__http_cache_free(st->cache);
    sk__http_auth_free(st->auth);
    free(st);
}

const sk_service sk__svc_http = {
    .name = "http",
    .summary = "static files over HTTP/1.1 (--root DIR, --index, --listing, --auth, --access-log)",
    .flags = SK_SVC_STREAM,
    .conn_size = sizeof(struct http_conn),
    .init = http_init,
    .fini = http_fini,
    .on_open = http_open,
    .on_data = http_data,
    .on_eof = http_eof,
    .on_drain = http_drain,
    .on_timeout = http_timeout,
    .on_close = http_close,
};
