/*
 * bench_modes.c - what each mode of `sockit bench` sends, expects and counts.
 *
 * The stream modes share one writer and one reader. The writer keeps up to a
 * window of messages in flight (echo and http: --pipeline; conn and idle: one;
 * bulk: unbounded, or 2 MiB with --check-echo), several per sendmsg, and
 * remembers when each was first written. The reader checks every reply byte
 * against what was sent (memcmp against the pattern, or the HTTP parser) and
 * counts each whole reply once: a success with its latency, or an error.
 *
 *   echo  persistent connections, messages of -s bytes, the echo must match
 *   conn  connect, one message, its echo, close; the latency includes connect
 *   http  keep-alive GETs; a non-2xx status is an http_status error
 *   bulk  one endless stream per connection (ops: chunks of -s bytes written,
 *         or with --check-echo echoed and checked, 2 MiB in flight at most)
 *   udp   one datagram in flight per socket; none back within --timeout: lost
 *   idle  connect, hold, then one echo each (bench_mode_verify)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bench.h"

#define MSGS_PER_WRITE 64 /* messages in one sendmsg (w->hdr holds their headers) */
#define WRITE_BYTES_MAX (256 * 1024)
#define WRITE_ROUNDS 4 /* sendmsg calls per turn before others get theirs */
#define READ_ROUNDS 8  /* reads per turn */
#define DGRAM_ROUNDS 64
#define BULK_WINDOW (2u << 20) /* bulk --check-echo: bytes in flight (2 to 64 chunks) */

int bench_mode_ring(const bench_cfg *cfg)
{
    switch (cfg->mode) {
    case BM_ECHO:
    case BM_HTTP: return cfg->pipeline;
    case BM_BULK: {
        if (!cfg->check_echo)
            return 1;
        size_t n = BULK_WINDOW / cfg->size;
        return n < 2 ? 2 : n > 64 ? 64 : (int)n;
    }
    default: return 1;
    }
}

int bench_build_request(bench_cfg *cfg)
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
    cfg->request = malloc(cap);
    if (cfg->request == NULL)
        return -1;
    int n =
        snprintf((char *)cfg->request, cap, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", cfg->path, host);
    cfg->request_len = (size_t)n;
    return 0;
}

static size_t msg_len(const bench_cfg *cfg)
{
    return cfg->mode == BM_HTTP ? cfg->request_len : cfg->size;
}

static uint64_t window(const bench_cfg *cfg)
{
    if (cfg->mode == BM_BULK && !cfg->check_echo)
        return UINT64_MAX;
    return (uint64_t)bench_mode_ring(cfg);
}

/* Messages written (a half-written one too) and not yet answered. */
static uint64_t in_flight(const bench_conn *c)
{
    return c->out_seq - c->done_seq + (c->out_off > 0);
}

static int fill(bench_worker *w, bench_conn *c, uint64_t seq, size_t off, uint8_t *hdr,
                struct iovec *iov)
{
    const bench_cfg *cfg = w->cfg;
    switch (cfg->mode) {
    case BM_HTTP:
        iov[0].iov_base = cfg->request + off;
        iov[0].iov_len = cfg->request_len - off;
        return 1;
    case BM_BULK: return bench_stream_iov(c->id, seq * cfg->size + off, cfg->size - off, iov);
    default: return bench_msg_iov(c->id, seq, cfg->size, off, hdr, iov);
    }
}

/* n bytes went out at time t (sendmsg returned at t_after). */
static void advance(bench_worker *w, bench_conn *c, size_t n, int64_t t, int64_t t_after)
{
    size_t len = msg_len(w->cfg);
    int on_write = w->cfg->mode == BM_BULK && !w->cfg->check_echo;
    while (n > 0) {
        if (c->out_off == 0)
            c->ts[c->out_seq % (uint64_t)w->ring] = t;
        size_t k = len - c->out_off < n ? len - c->out_off : n;
        c->out_off += k;
        n -= k;
        if (c->out_off == len) {
            if (on_write) /* bulk to discard: a chunk is done when the kernel took it */
                bench_ok(w, c->ts[c->out_seq % (uint64_t)w->ring], t_after, len);
            c->out_off = 0;
            c->out_seq++;
        }
    }
}

/* Write while the window allows, a bounded number of times. */
static void pump(bench_worker *w, bench_conn *c)
{
    const bench_cfg *cfg = w->cfg;
    size_t len = msg_len(cfg);
    uint64_t win = window(cfg);
    if (cfg->mode == BM_IDLE && !c->active)
        return;
    for (int round = 0; round < WRITE_ROUNDS; round++) {
        if (c->blocked || c->state != BC_OPEN)
            return;
        struct iovec iov[2 * MSGS_PER_WRITE];
        int niov = 0, nmsg = 0;
        size_t bytes = 0;
        uint64_t seq = c->out_seq;
        size_t off = c->out_off;
        while (nmsg < MSGS_PER_WRITE && bytes < WRITE_BYTES_MAX) {
            if (off == 0 && seq - c->done_seq >= win)
                break;
            niov += fill(w, c, seq, off, w->hdr[nmsg], iov + niov);
            bytes += len - off;
            nmsg++;
            seq++;
            off = 0;
        }
        if (nmsg == 0)
            return; /* the window is full: replies open it */
        int64_t t = bench_now();
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->blocked = 1; /* EPOLLOUT will come */
                return;
            }
            if (errno == EINTR)
                continue;
            bench_conn_fail(w, c, BE_WRITE);
            return;
        }
        /* Only bulk to discard needs the time the write returned. */
        int64_t t_after = cfg->mode == BM_BULK && !cfg->check_echo ? bench_now() : t;
        c->t_progress = t_after;
        advance(w, c, (size_t)n, t, t_after);
    }
    bench_again(w, c, BEV_WRITE);
}

/* A whole reply to message done_seq: count it. Returns -1 if the connection
 * was closed or replaced (conn, idle, http's Connection: close). */
static int reply_done(bench_worker *w, bench_conn *c, int64_t now, int ok, int kind, uint64_t bytes)
{
    const bench_cfg *cfg = w->cfg;
    int64_t t0 = cfg->mode == BM_CONN ? c->t_open : c->ts[c->done_seq % (uint64_t)w->ring];
    if (ok)
        bench_ok(w, t0, now, bytes);
    else
        bench_error(w, kind);
    c->bad = 0;
    c->in_off = 0;
    c->done_seq++;
    if (cfg->mode == BM_CONN) {
        bench_conn_recycle(w, c);
        return -1;
    }
    if (cfg->mode == BM_IDLE) {
        bench_conn_finish(w, c);
        return -1;
    }
    return 0;
}

/* Echoed bytes (echo, conn, idle, bulk --check-echo): compare with what was sent. */
static int consume_echo(bench_worker *w, bench_conn *c, const uint8_t *p, size_t n, int64_t now)
{
    const bench_cfg *cfg = w->cfg;
    size_t len = cfg->size;
    if (cfg->mode == BM_BULK && !cfg->check_echo)
        return 0; /* not checked: let it go */
    while (n > 0) {
        /* Of the message being answered, how much has been sent? More coming
         * back than went out is a wrong answer, and the stream is lost. */
        size_t sent = c->done_seq < c->out_seq ? len : c->done_seq == c->out_seq ? c->out_off : 0;
        size_t k = len - c->in_off < n ? len - c->in_off : n;
        if (k > sent - c->in_off) {
            bench_conn_fail(w, c, BE_MISMATCH);
            return -1;
        }
        if (!c->bad) {
            int same = cfg->mode == BM_BULK
                           ? bench_stream_check(c->id, c->done_seq * len + c->in_off, p, k)
                           : bench_msg_check(c->id, c->done_seq, len, c->in_off, p, k);
            c->bad = !same;
        }
        c->in_off += k;
        p += k;
        n -= k;
        if (c->in_off == len && reply_done(w, c, now, !c->bad, BE_MISMATCH, len) < 0)
            return -1;
    }
    return 0;
}

static int http_done(bench_worker *w, bench_conn *c, int64_t now)
{
    bench_http *h = c->http;
    int cls = h->status / 100;
    if (now >= w->run->measure_start && now < w->run->end)
        w->st.status[cls >= 1 && cls <= 5 ? cls : 0]++;
    int keep = h->keep_alive;
    uint64_t bytes = h->bytes;
    bench_http_reset(h);
    reply_done(w, c, now, cls == 2, BE_HTTP_STATUS, bytes);
    if (!keep) { /* the server closes: open another (requests after it are void) */
        bench_conn_recycle(w, c);
        return -1;
    }
    return 0;
}

static int consume_http(bench_worker *w, bench_conn *c, const uint8_t *p, size_t n, int64_t now)
{
    while (n > 0) {
        if (c->done_seq >= c->out_seq) { /* a response to no request */
            bench_conn_fail(w, c, BE_MISMATCH);
            return -1;
        }
        size_t used = 0;
        int r = bench_http_feed(c->http, p, n, &used);
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

static void on_eof(bench_worker *w, bench_conn *c)
{
    if (w->cfg->mode == BM_HTTP) {
        int r = bench_http_eof(c->http);
        if (r == BENCH_HTTP_DONE) {
            if (http_done(w, c, bench_now()) == 0)
                bench_conn_recycle(w, c);
            return;
        }
    }
    bench_conn_fail(w, c, BE_CLOSED); /* an echo or keep-alive server does not hang up */
}

/* Read what is there (a bounded number of reads). Returns -1 if the
 * connection was closed or replaced meanwhile. */
static int read_stream(bench_worker *w, bench_conn *c)
{
    for (int round = 0; round < READ_ROUNDS; round++) {
        ssize_t n = recv(c->fd, w->rbuf, w->rcap, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            bench_conn_fail(w, c, BE_READ);
            return -1;
        }
        if (n == 0) {
            on_eof(w, c);
            return -1;
        }
        int64_t now = bench_now();
        c->t_progress = now;
        int r = w->cfg->mode == BM_HTTP ? consume_http(w, c, w->rbuf, (size_t)n, now)
                                        : consume_echo(w, c, w->rbuf, (size_t)n, now);
        if (r < 0)
            return -1;
        if ((size_t)n < w->rcap && !c->hup)
            return 0; /* a short read emptied the socket; more data is a new edge */
    }
    bench_again(w, c, BEV_READ);
    return 0;
}

/* ---------------------------------------------------------------------- udp */

static void udp_send(bench_worker *w, bench_conn *c, int fresh)
{
    if (fresh)
        c->out_seq++; /* a retry is a new datagram: a late reply is told apart */
    struct iovec iov[2];
    int niov = bench_msg_iov(c->id, c->out_seq, w->cfg->size, 0, w->hdr[0], iov);
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    int64_t t = bench_now();
    c->ts[0] = t;
    c->t_progress = t;
    c->active = 1;
    c->unsent = 0;
    if (sendmsg(c->fd, &mh, MSG_NOSIGNAL) >= 0)
        return;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->unsent = 1;
        c->blocked = 1;
    } else if (errno == ECONNREFUSED) {
        bench_conn_fail(w, c, BE_WRITE);
    } /* else (ENOBUFS...): as if lost; the sweep sends another */
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A reply to an earlier datagram of this socket (its retry already went out). */
static int udp_late(const bench_conn *c, const uint8_t *p, size_t n, size_t size)
{
    if (n != size || le32(p) != c->id)
        return 0;
    uint32_t back = (uint32_t)c->out_seq - le32(p + 4);
    if (back == 0 || back > c->out_seq || back > 0x7fffffffu)
        return 0;
    return bench_msg_check(c->id, c->out_seq - back, size, 0, p, n);
}

static void udp_read(bench_worker *w, bench_conn *c)
{
    size_t size = w->cfg->size;
    for (int round = 0; round < DGRAM_ROUNDS; round++) {
        ssize_t n = recv(c->fd, w->rbuf, w->rcap, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            bench_conn_fail(w, c, BE_READ); /* ECONNREFUSED: nobody at the port */
            return;
        }
        int64_t now = bench_now();
        const uint8_t *p = w->rbuf;
        if ((size_t)n == size && c->active &&
            bench_msg_check(c->id, c->out_seq, size, 0, p, size)) {
            bench_ok(w, c->ts[0], now, size);
        } else if (udp_late(c, p, (size_t)n, size) || !c->active) {
            continue; /* late: already counted as lost */
        } else {
            bench_error(w, BE_MISMATCH);
        }
        c->active = 0;
        udp_send(w, c, 1);
        if (c->state != BC_OPEN)
            return;
    }
    bench_again(w, c, BEV_READ);
}

/* ------------------------------------------------------------ mode entries */

void bench_mode_open(bench_worker *w, bench_conn *c, int64_t now)
{
    (void)now;
    c->active = 0;
    if (w->cfg->mode == BM_UDP) {
        udp_send(w, c, 1);
        return;
    }
    if (c->http)
        bench_http_reset(c->http);
    pump(w, c);
}

void bench_mode_io(bench_worker *w, bench_conn *c, unsigned ev)
{
    if (w->cfg->mode == BM_UDP) {
        if (ev & BEV_READ)
            udp_read(w, c);
        if (c->state == BC_OPEN && c->unsent && !c->blocked)
            udp_send(w, c, 0);
        return;
    }
    if ((ev & BEV_READ) && read_stream(w, c) < 0)
        return;
    pump(w, c);
}

void bench_mode_overdue(bench_worker *w, bench_conn *c, int64_t now)
{
    const bench_cfg *cfg = w->cfg;
    if (cfg->mode == BM_UDP) {
        if (c->active && now - c->ts[0] > cfg->timeout_ns) {
            bench_error(w, BE_LOST);
            udp_send(w, c, 1);
        }
        return;
    }
    int waiting = in_flight(c) > 0 || c->blocked || (cfg->mode == BM_BULK && !cfg->check_echo);
    if (cfg->mode == BM_IDLE && !c->active)
        waiting = 0;
    if (waiting && now - c->t_progress > cfg->timeout_ns)
        bench_conn_fail(w, c, BE_TIMEOUT);
}

/* Idle: the hold is over; every connection must now answer one echo. */
void bench_mode_verify(bench_worker *w)
{
    int64_t now = bench_now();
    for (int i = 0; i < w->nconns; i++) {
        bench_conn *c = &w->conns[i];
        if (c->state == BC_OPEN) {
            c->active = 1;
            c->t_progress = now;
            pump(w, c);
        } else if (c->state == BC_CONNECTING || c->state == BC_WAITING) {
            bench_conn_fail(w, c, BE_CONNECT); /* not even connected after the hold */
        }
    }
    if (w->remaining <= 0)
        w->finished = 1;
}
