/*
 * server.c - the `http` service: static files over HTTP/1.0 and 1.1.
 *
 * The steps of the seed's web server: read and parse the request (parser.c,
 * no I/O), translate the URL into a file name (decode, normalize, open beneath
 * the root: files.c), decide whether the request is authorized (auth.c), and
 * generate and send the response (response.c; file bodies leave by sendfile).
 * Here: the connection, and the steps of one request (method, auth, target,
 * file or directory). The options are in config.c.
 *
 * Per connection, requests are handled in order as their heads complete
 * (keep-alive and pipelining); output is bounded: past HTTP_PAUSE_BYTES of
 * queued output the connection stops parsing until the queue drains.
 * Timers: the whole request head must arrive within header_timeout (trickled
 * bytes do not extend it: slowloris), and an idle keep-alive connection is
 * closed after keepalive_timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_internal.h"

#define HTTP_PAUSE_BYTES (256 * 1024)
#define HTTP_IN_MAX (1u << 20)
#define HTTP_BODY_DISCARD_MAX (1u << 20) /* a GET body larger than this is refused (413) */
#define HTTP_PATH_MAX 4096
#define HTTP_HEADER_TIMEOUT_MS 10000
#define HTTP_KEEPALIVE_TIMEOUT_MS 15000
#define HTTP_MAX_REQUESTS 1000

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

static int is_known_method(sk__http_slice m)
{
    static const char *const known[] = {"POST",  "PUT",     "DELETE", "OPTIONS",
                                        "PATCH", "CONNECT", "TRACE"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (sk__http_slice_eq(m, known[i]))
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

/* The method, and a body we will not read: 0 to go on, or -1 when answered. */
static int check_method(sk_conn *c, const sk__http_request *req, struct outcome *o)
{
    struct http_conn *h = sk_conn_data(c);
    if (!SK_HTTP_SLICE_IS(req->method, "GET") && !SK_HTTP_SLICE_IS(req->method, "HEAD")) {
        /* The body of a method we do not serve is never parsed: close after. */
        h->closing = 1;
        sk__http_simple_response(c, req, is_known_method(req->method) ? 405 : 501,
                                 "Allow: GET, HEAD\r\n", NULL, o);
        return -1;
    }
    /* A GET/HEAD body is skipped, never taken for the next request. */
    if (req->chunked) {
        h->closing = 1;
        sk__http_simple_response(c, req, 400, NULL, NULL, o);
        return -1;
    }
    if (req->has_content_length && req->content_length > 0) {
        if (req->content_length > HTTP_BODY_DISCARD_MAX) {
            h->closing = 1;
            sk__http_simple_response(c, req, 413, NULL, NULL, o);
            return -1;
        }
        h->discard = req->content_length;
    }
    return 0;
}

/* The request-target as a decoded, normalized path in path[0..*plen) (with
 * room for HTTP_PATH_MAX + 1 bytes). 0, or -1 when answered (414, 400). */
static int resolve_target(sk_conn *c, const sk__http_request *req, char *path, size_t *plen,
                          struct outcome *o)
{
    if (req->path.n > HTTP_PATH_MAX) {
        sk__http_simple_response(c, req, 414, NULL, NULL, o);
        return -1;
    }
    if (sk__http_percent_decode(req->path.p, req->path.n, path, HTTP_PATH_MAX + 1, plen) < 0 ||
        sk__http_normalize_path(path, *plen, plen) < 0) {
        sk__http_simple_response(c, req, 400, NULL, NULL, o);
        return -1;
    }
    return 0;
}

/* /dir -> /dir/, so that relative links inside it resolve. Built from the
 * normalized path, re-encoded: "//host" was collapsed to "/host", so the
 * Location can never name another site. */
static void redirect_to_dir(sk_conn *c, const sk__http_request *req, const char *path, size_t plen,
                            struct outcome *o)
{
    sk_buf loc = {0};
    int bad = sk_buf_append(&loc, "Location: ", 10) < 0 || append_url_path(&loc, path, plen) < 0 ||
              sk_buf_append(&loc, "/", 1) < 0 ||
              (req->query.p && (sk_buf_append(&loc, "?", 1) < 0 ||
                                sk_buf_append(&loc, req->query.p, req->query.n) < 0)) ||
              sk_buf_append(&loc, "\r\n", 3) < 0; /* with the NUL */
    sk__http_simple_response(c, req, bad ? 500 : 301, bad ? NULL : (const char *)sk_buf_head(&loc),
                             NULL, o);
    sk_buf_free(&loc);
}

/* A directory (path ends in '/'): its index file, else its listing, else 403. */
static void serve_dir(sk_conn *c, const sk__http_request *req, const char *path, size_t plen,
                      struct outcome *o)
{
    struct http_state *st = sk_conn_state(c);
    char rel[HTTP_PATH_MAX + NAME_MAX + 2];
    snprintf(rel, sizeof rel, "%s%s", path + 1, st->index);
    int ifd = sk__http_open_beneath(&st->root, rel);
    struct stat isb;
    if (ifd >= 0 && fstat(ifd, &isb) == 0 && S_ISREG(isb.st_mode)) {
        sk__http_file *f = sk__http_file_new(st->cache, path, plen, ifd, &isb, st->index);
        if (f == NULL)
            sk__http_simple_response(c, req, 500, NULL, NULL, o);
        else
            sk__http_serve_file(c, req, f, o);
        return;
    }
    if (ifd >= 0)
        close(ifd);
    if (st->cfg.listing) {
        sk__http_serve_listing(c, req, path, o);
        return;
    }
    sk__http_simple_response(c, req, 403, NULL, st->no_index_note, o);
}

static void respond(sk_conn *c, const sk__http_request *req, struct outcome *o)
{
    struct http_state *st = sk_conn_state(c);
    struct http_conn *h = sk_conn_data(c);
    int maxreq = st->cfg.max_requests > 0 ? st->cfg.max_requests : HTTP_MAX_REQUESTS;
    /* Stopping: this is the connection's last response ("Connection:
     * close"), so the client does not send another request on a connection
     * about to be closed (a race it could only lose). */
    if (!req->keep_alive || h->requests + 1 >= (unsigned)maxreq ||
        sk_server_stopping(sk_conn_server(c)))
        h->closing = 1;
    if (check_method(c, req, o) < 0)
        return;
    static _Thread_local char user[256];
    user[0] = '\0';
    o->user = user;
    const sk__http_auth *auth = __atomic_load_n(&st->auth, __ATOMIC_ACQUIRE); /* SIGHUP */
    if (auth && !sk__http_auth_check(auth, req->authorization, user, sizeof user)) {
        sk__http_simple_response(c, req, 401,
                                 "WWW-Authenticate: Basic realm=\"sockit\", charset=\"UTF-8\"\r\n",
                                 NULL, o);
        return;
    }
    char path[HTTP_PATH_MAX + 1];
    size_t plen;
    if (resolve_target(c, req, path, &plen, o) < 0)
        return;
    sk__http_file *f = sk__http_cache_get(st->cache, path, plen);
    if (f != NULL) {
        sk__http_serve_file(c, req, f, o);
        return;
    }
    int fd = sk__http_open_beneath(&st->root, path + 1);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        int status = fd < 0 ? open_status(errno) : 500;
        if (fd >= 0)
            close(fd);
        sk__http_simple_response(c, req, status, NULL, NULL, o);
        return;
    }
    if (S_ISREG(sb.st_mode)) {
        f = sk__http_file_new(st->cache, path, plen, fd, &sb, path);
        if (f == NULL)
            sk__http_simple_response(c, req, 500, NULL, NULL, o);
        else
            sk__http_serve_file(c, req, f, o);
        return;
    }
    close(fd);
    if (!S_ISDIR(sb.st_mode)) /* FIFOs, devices, sockets: never */
        sk__http_simple_response(c, req, 403, NULL, NULL, o);
    else if (path[plen - 1] != '/')
        redirect_to_dir(c, req, path, plen, o);
    else
        serve_dir(c, req, path, plen, o);
}

/* ---- the connection ---- */

static void arm_timer(sk_conn *c)
{
    const struct http_state *st = sk_conn_state(c);
    struct http_conn *h = sk_conn_data(c);
    int ms = h->in_request ? st->cfg.header_timeout_ms : st->cfg.keepalive_timeout_ms;
    h->idle_armed = 0;
    sk_conn_set_timer(c, ms);
}

/* A request answered and none begun: the keep-alive timeout runs from now.
 * Once its timer is set it stays (busy connections cost no timer work per
 * request): only the time is noted, and the timer, when it fires early,
 * is set again for what is left (http_timeout). */
static void arm_idle(sk_conn *c)
{
    struct http_conn *h = sk_conn_data(c);
    h->idle_since = sk__http_coarse_ms();
    if (h->idle_armed)
        return;
    arm_timer(c);
    h->idle_armed = 1;
}

/* Handle the complete requests at the start of p[0..n), in order (p is the
 * connection's kept input, or the bytes just read when nothing was kept).
 * Returns the bytes used; the rest (part of a request, or requests held back
 * while the output is over HTTP_PAUSE_BYTES: *paused) is the caller's to keep. */
static size_t handle(sk_conn *c, const char *p, size_t n, int *paused)
{
    struct http_conn *h = sk_conn_data(c);
    size_t used = 0;
    *paused = 0;
    while (!h->closing) {
        if (h->discard > 0) {
            size_t k = n - used < h->discard ? n - used : (size_t)h->discard;
            used += k;
            h->discard -= k;
            if (h->discard > 0)
                break;
        }
        if (used == n)
            break;
        if (sk_conn_pending(c) >= HTTP_PAUSE_BYTES) {
            *paused = 1; /* on_drain brings us back */
            break;
        }
        sk__http_header hdrs[SK_HTTP_MAX_HEADERS_DEFAULT];
        sk__http_request req = {.headers = hdrs, .nheaders = SK_HTTP_MAX_HEADERS_DEFAULT};
        int r = sk__http_parse_request(p + used, n - used, &req, NULL);
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
            sk__http_simple_response(c, NULL, -r, NULL, NULL, &o);
            sk__http_access_log(c, NULL, &o);
            break;
        }
        respond(c, &req, &o);
        sk__http_access_log(c, &req, &o);
        used += (size_t)r;
        h->requests++;
        h->in_request = 0;
    }
    return used;
}

/* After handle(): close, wait for the output to drain, or wait for the next
 * request (an idle keep-alive connection holds no buffer). */
static void settle_input(sk_conn *c, int paused)
{
    struct http_conn *h = sk_conn_data(c);
    if (paused) {
        sk_conn_want_drain(c, 1);
        return;
    }
    sk_conn_want_drain(c, 0);
    if (h->closing) {
        sk_buf_free(&h->in);
        sk_conn_close(c);
        return;
    }
    if (h->in.len == 0)
        sk_buf_free(&h->in);
    if (!h->in_request)
        arm_idle(c);
}

/* Handle every complete request in the kept input. */
static void process(sk_conn *c)
{
    struct http_conn *h = sk_conn_data(c);
    int paused = 0;
    if (!h->closing)
        sk_buf_consume(&h->in, handle(c, (const char *)sk_buf_head(&h->in), h->in.len, &paused));
    settle_input(c, paused);
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
    if (h->in.len > 0) { /* the rest of a request: join it */
        if (sk_buf_append(&h->in, data, len) < 0) {
            h->closing = 1;
            sk_conn_close(c);
            return;
        }
        process(c);
        return;
    }
    /* The common case: whole requests, parsed where they were read; only
     * what is left over is copied and kept. */
    int paused;
    size_t used = handle(c, (const char *)data, len, &paused);
    if (!h->closing && used < len && sk_buf_append(&h->in, data + used, len - used) < 0) {
        h->closing = 1;
        sk_conn_close(c);
        return;
    }
    settle_input(c, paused);
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
    if (h->idle_armed && !h->in_request) { /* set before the last request: the rest */
        const struct http_state *st = sk_conn_state(c);
        int64_t left = h->idle_since + st->cfg.keepalive_timeout_ms - sk__http_coarse_ms();
        if (left > 0) {
            sk_conn_set_timer(c, (int)left);
            return;
        }
    }
    if (sk_conn_pending(c) > 0) {
        arm_timer(c); /* still sending: the engine's idle timeout watches that */
        return;
    }
    if (h->in_request && h->requests + h->in.len > 0) {
        struct outcome o = {0};
        h->closing = 1;
        sk__http_simple_response(c, NULL, 408, NULL, NULL, &o);
        sk__http_access_log(c, NULL, &o);
    }
    h->closing = 1;
    sk_conn_close(c);
}

static void http_close(sk_conn *c)
{
    struct http_conn *h = sk_conn_data(c);
    sk_buf_free(&h->in);
}

static int open_access_log(struct http_state *st, sk_err *err)
{
    const char *path = st->cfg.access_log;
    st->access_log_fd = -1;
    if (path == NULL)
        return 0;
    st->access_log_fd = strcmp(path, "-") == 0
                            ? STDOUT_FILENO
                            : open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (st->access_log_fd < 0)
        return sk_errno(err, errno, "--access-log %s", path);
    return 0;
}

static void http_fini(void *state);

/* "no index.html here, and directory listing is off (--listing)", the index
 * name HTML-escaped: the 403 page says why and what would change it. */
static void make_no_index_note(struct http_state *st)
{
    char name[300];
    size_t n = 0;
    for (const char *p = st->index; *p && n + 7 < sizeof name; p++) {
        const char *rep = *p == '<'   ? "&lt;"
                          : *p == '>' ? "&gt;"
                          : *p == '&' ? "&amp;"
                          : *p == '"' ? "&quot;"
                                      : NULL;
        size_t k = rep ? strlen(rep) : 1;
        memcpy(name + n, rep ? rep : p, k);
        n += k;
    }
    name[n] = '\0';
    snprintf(st->no_index_note, sizeof st->no_index_note,
             "no %s here, and directory listing is off (--listing)", name);
}

static int http_init(sk_server *s, void **state, sk_err *err)
{
    const sk__http_config *cfg = sk_server_options(s)->service_config;
    struct http_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return sk_errno(err, ENOMEM, "http");
    if (cfg)
        st->cfg = *cfg;
    st->root.fd = st->access_log_fd = -1;
    if (st->cfg.header_timeout_ms <= 0)
        st->cfg.header_timeout_ms = HTTP_HEADER_TIMEOUT_MS;
    if (st->cfg.keepalive_timeout_ms <= 0)
        st->cfg.keepalive_timeout_ms = HTTP_KEEPALIVE_TIMEOUT_MS;
    st->index = st->cfg.index ? st->cfg.index : "index.html";
    if (strchr(st->index, '/') || strcmp(st->index, "..") == 0 || st->index[0] == '\0') {
        sk_err_usage(err, "--index \"%s\": expected a file name, without '/'", st->index);
        http_fini(st);
        return -1;
    }
    make_no_index_note(st);
    const char *root = st->cfg.root ? st->cfg.root : ".";
    if (sk__http_root_open(&st->root, root) < 0) {
        int e = errno;
        http_fini(st);
        return sk_errno(err, e, "--root %s", root);
    }
    if ((st->cfg.auth_file && (st->auth = sk__http_auth_load(st->cfg.auth_file, err)) == NULL) ||
        open_access_log(st, err) < 0) {
        http_fini(st);
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
    if (st->root.fd >= 0)
        close(st->root.fd);
    if (st->access_log_fd > STDERR_FILENO)
        close(st->access_log_fd);
    sk__http_cache_free(st->cache);
    sk__http_auth_free(st->auth);
    for (size_t i = 0; i < st->nold_auth; i++)
        sk__http_auth_free(st->old_auth[i]);
    free(st->old_auth);
    free(st);
}

/* SIGHUP: the --auth file again. A bad file leaves the old one in use. */
static int http_reload(sk_server *srv, void *state, sk_err *err)
{
    (void)srv;
    struct http_state *st = state;
    if (st->cfg.auth_file == NULL)
        return 0;
    sk__http_auth *a = sk__http_auth_load(st->cfg.auth_file, err);
    if (a == NULL)
        return -1;
    sk__http_auth **o = realloc(st->old_auth, (st->nold_auth + 1) * sizeof *o);
    if (o == NULL) {
        sk__http_auth_free(a);
        return sk_errno(err, ENOMEM, "--auth %s", st->cfg.auth_file);
    }
    st->old_auth = o;
    st->old_auth[st->nold_auth++] = __atomic_exchange_n(&st->auth, a, __ATOMIC_ACQ_REL);
    return 1;
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
    .options = sk__http_options,
    .reload = http_reload,
    .config_size = sizeof(sk__http_config),
    .configure = sk__http_configure,
    .idle_timeout_ms = 60000, /* a client that stops reading a response */
    .describe = sk__http_describe,
    .alpn = "http/1.1",
};
