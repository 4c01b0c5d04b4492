/*
 * mode_http.c - `sockit bench --mode http`: keep-alive GET --path, --pipeline
 * requests in flight per connection. Responses are framed by the parser of
 * check.c (bodies are skipped, not looked at); a non-2xx status is an
 * http_status error, and the report counts the status classes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int http_setup(bench_cfg *cfg, sk_err *err)
{
    char host[SK_HOST_MAX + SK_PORT_MAX + 4];
    if (cfg->addr.transport == SK_UNIX)
        snprintf(host, sizeof host, "localhost");
    else if (strchr(cfg->addr.host, ':'))
        snprintf(host, sizeof host, "[%s]:%s", cfg->addr.host, cfg->addr.port);
    else
        snprintf(host, sizeof host, "%s:%s", cfg->addr.host[0] ? cfg->addr.host : "localhost",
                 cfg->addr.port);
    size_t cap = strlen(cfg->path) + strlen(host) + 64;
    free(cfg->request);
    cfg->request = malloc(cap);
    if (cfg->request == NULL)
        return sk_errf(err, ENOMEM, "bench: out of memory");
    int n =
        snprintf((char *)cfg->request, cap, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", cfg->path, host);
    cfg->request_len = (size_t)n;
    cfg->msg_len = cfg->request_len;
    cfg->ring = cfg->pipeline;
    cfg->window = (uint64_t)cfg->pipeline;
    return 0;
}

static int http_fill(bench_worker *w, bench_conn *c, uint64_t seq, size_t off, uint8_t *hdr,
                     struct iovec iov[2])
{
    (void)c, (void)seq, (void)hdr;
    iov[0].iov_base = w->cfg->request + off;
    iov[0].iov_len = w->cfg->request_len - off;
    return 1;
}

static void http_open(bench_worker *w, bench_conn *c, int64_t now)
{
    bench_http_reset(c->mstate);
    bench_stream_open(w, c, now);
}

/* A whole response: count it and its status class. -1 if the connection was
 * replaced (the server closes it). */
static int http_done(bench_worker *w, bench_conn *c, int64_t now)
{
    bench_http *h = c->mstate;
    int cls = h->status / 100;
    if (now >= w->run->measure_start && now < w->run->end)
        w->st.status[cls >= 1 && cls <= 5 ? cls : 0]++;
    int keep = h->keep_alive;
    uint64_t bytes = h->bytes;
    bench_http_reset(h);
    bench_stream_reply(w, c, now, cls == 2, BE_HTTP_STATUS, bytes);
    if (!keep) { /* the server closes: open another (requests after it are void) */
        bench_conn_recycle(w, c);
        return -1;
    }
    return 0;
}

static int http_consume(bench_worker *w, bench_conn *c, const uint8_t *p, size_t n, int64_t now)
{
    while (n > 0) {
        if (c->done_seq >= c->out_seq) { /* a response to no request */
            bench_conn_fail(w, c, BE_MISMATCH);
            return -1;
        }
        size_t used = 0;
        int r = bench_http_feed(c->mstate, p, n, &used);
        p += used;
        n -= used;
        if (r == BENCH_HTTP_ERROR) {
            bench_conn_fail(w, c, BE_MISMATCH);
            return -1;
        }
        if (r == BENCH_HTTP_MORE)
            return 0;
        if (http_done(w, c, now) < 0)
            return -1;
    }
    return 0;
}

/* The server closed: that may end a body sent until close. */
static void http_eof(bench_worker *w, bench_conn *c)
{
    if (bench_http_eof(c->mstate) == BENCH_HTTP_DONE) {
        if (http_done(w, c, bench_now()) == 0)
            bench_conn_recycle(w, c);
        return;
    }
    bench_conn_fail(w, c, BE_CLOSED);
}

static void http_describe(const bench_cfg *c, FILE *f)
{
    fprintf(f, " (GET %s, pipeline %d)\n", c->path, c->pipeline);
}

static void http_report(const bench_cfg *c, const bench_stats *st, const bench_server *srv, FILE *f,
                        int json)
{
    (void)c, (void)srv;
    if (json) {
        fprintf(f,
                ",\"status\":{\"1xx\":%llu,\"2xx\":%llu,\"3xx\":%llu,\"4xx\":%llu,"
                "\"5xx\":%llu,\"other\":%llu}",
                (unsigned long long)st->status[1], (unsigned long long)st->status[2],
                (unsigned long long)st->status[3], (unsigned long long)st->status[4],
                (unsigned long long)st->status[5], (unsigned long long)st->status[0]);
        return;
    }
    fprintf(f, "%-12s", "status");
    static const char *const cls[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int k = 1, first = 1; k <= 6; k++)
        if (st->status[k % 6]) {
            fprintf(f, "%s %s %llu", first ? "" : ",", cls[k % 6],
                    (unsigned long long)st->status[k % 6]);
            first = 0;
        }
    fputc('\n', f);
}

const bench_mode bench_mode_http = {
    .name = "http",
    .help = "keep-alive GET --path (default /); non-2xx responses are errors",
    .flags = BENCH_F_PIPELINE | BENCH_F_PATH | BENCH_F_NO_SIZE,
    .size = 64,
    .timeout_ns = 2000000000LL,
    .conn_state = sizeof(bench_http),
    .setup = http_setup,
    .open = http_open,
    .io = bench_stream_io,
    .expire = bench_stream_expire,
    .fill = http_fill,
    .consume = http_consume,
    .eof = http_eof,
    .describe = http_describe,
    .report = http_report,
};
