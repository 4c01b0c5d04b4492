/*
 * stream.c - the writer and reader every stream mode of `sockit bench`
 * shares (echo, conn, http, bulk, idle; udp has its own).
 *
 * The writer keeps up to a window of messages in flight (cfg->window), several
 * per writev, and remembers when each was first written. The reader checks
 * every reply byte against what was sent (the mode's check, or its own
 * consume: the HTTP parser) and counts each whole reply once: a success with
 * its latency, or an error. What differs per mode comes from its bench_mode
 * (fill, check, consume, replied, eof) and from bench_cfg's derived fields.
 * All I/O goes through the connection's transport (c->tp).
 */
#include <stdint.h>

#include "bench.h"

#define MSGS_PER_WRITE 64 /* messages in one writev (w->hdr holds their headers) */
#define WRITE_BYTES_MAX (256 * 1024)
#define WRITE_ROUNDS 4 /* writev calls per turn before others get theirs */
#define READ_ROUNDS 8  /* reads per turn */

int bench_msg_fill(bench_worker *w, bench_conn *c, uint64_t seq, size_t off, uint8_t *hdr,
                   struct iovec iov[2])
{
    return bench_msg_iov(c->id, seq, w->cfg->size, off, hdr, iov);
}

int bench_msg_verify(bench_worker *w, bench_conn *c, uint64_t seq, size_t pos, const uint8_t *p,
                     size_t n)
{
    return bench_msg_check(c->id, seq, w->cfg->size, pos, p, n);
}

/* Messages written (a half-written one too) and not yet answered. */
static uint64_t in_flight(const bench_conn *c)
{
    return c->out_seq - c->done_seq + (c->out_off > 0);
}

/* n bytes went out at time t (the write returned at t_after). */
static void advance(bench_worker *w, bench_conn *c, size_t n, int64_t t, int64_t t_after)
{
    size_t len = w->cfg->msg_len;
    uint64_t ring = (uint64_t)w->cfg->ring;
    while (n > 0) {
        if (c->out_off == 0)
            c->ts[c->out_seq % ring] = t;
        size_t k = len - c->out_off < n ? len - c->out_off : n;
        c->out_off += k;
        n -= k;
        if (c->out_off == len) {
            if (w->cfg->one_way) /* nothing comes back: done when the kernel took it */
                bench_ok(w, c->ts[c->out_seq % ring], t_after, len);
            c->out_off = 0;
            c->out_seq++;
        }
    }
}

void bench_stream_pump(bench_worker *w, bench_conn *c)
{
    const bench_cfg *cfg = w->cfg;
    size_t len = cfg->msg_len;
    for (int round = 0; round < WRITE_ROUNDS; round++) {
        if (c->blocked || c->state != BC_OPEN)
            return;
        struct iovec iov[2 * MSGS_PER_WRITE];
        int niov = 0, nmsg = 0;
        size_t bytes = 0;
        uint64_t seq = c->out_seq;
        size_t off = c->out_off;
        while (nmsg < MSGS_PER_WRITE && bytes < WRITE_BYTES_MAX) {
            if (off == 0 && seq - c->done_seq >= cfg->window)
                break;
            niov += w->mode->fill(w, c, seq, off, w->hdr[nmsg], iov + niov);
            bytes += len - off;
            nmsg++;
            seq++;
            off = 0;
        }
        if (nmsg == 0)
            return; /* the window is full: replies open it */
        int64_t t = bench_now();
        ssize_t n = sk__tp_writev(&c->tp, iov, niov, 0);
        if (n == SK_TP_AGAIN) {
            c->blocked = (uint8_t)c->tp.want; /* that readiness will come */
            return;
        }
        if (n < 0) {
            bench_conn_fail(w, c, BE_WRITE);
            return;
        }
        /* Only a one-way stream needs the time the write returned. */
        int64_t t_after = cfg->one_way ? bench_now() : t;
        c->t_progress = t_after;
        advance(w, c, (size_t)n, t, t_after);
    }
    bench_again(w, c, BEV_WRITE);
}

int bench_stream_reply(bench_worker *w, bench_conn *c, int64_t now, int ok, int kind,
                       uint64_t bytes)
{
    const bench_mode *m = w->mode;
    int64_t t0 =
        (m->flags & BENCH_F_FROM_CONNECT) ? c->t_open : c->ts[c->done_seq % (uint64_t)w->cfg->ring];
    if (ok)
        bench_ok(w, t0, now, bytes);
    else
        bench_error(w, kind);
    c->bad = 0;
    c->in_off = 0;
    c->done_seq++;
    return m->replied ? m->replied(w, c) : 0;
}

int bench_stream_echo(bench_worker *w, bench_conn *c, const uint8_t *p, size_t n, int64_t now)
{
    size_t len = w->cfg->msg_len;
    while (n > 0) {
        /* Of the message being answered, how much has been sent? More coming
         * back than went out is a wrong answer, and the stream is lost. */
        size_t sent = c->done_seq < c->out_seq ? len : c->done_seq == c->out_seq ? c->out_off : 0;
        size_t k = len - c->in_off < n ? len - c->in_off : n;
        if (k > sent - c->in_off) {
            bench_conn_fail(w, c, BE_MISMATCH);
            return -1;
        }
        if (!c->bad)
            c->bad = !w->mode->check(w, c, c->done_seq, c->in_off, p, k);
        c->in_off += k;
        p += k;
        n -= k;
        if (c->in_off == len && bench_stream_reply(w, c, now, !c->bad, BE_MISMATCH, len) < 0)
            return -1;
    }
    return 0;
}

int bench_stream_read(bench_worker *w, bench_conn *c)
{
    const bench_mode *m = w->mode;
    for (int round = 0; round < READ_ROUNDS; round++) {
        ssize_t n = sk__tp_read(&c->tp, w->rbuf, w->rcap);
        if (n == SK_TP_AGAIN) {
            /* A transport may need to write before it can read (TLS). */
            c->rwant = (uint8_t)(c->tp.want & BEV_WRITE);
            return 0;
        }
        if (n < 0) {
            bench_conn_fail(w, c, BE_READ);
            return -1;
        }
        if (n == 0) {
            if (m->eof)
                m->eof(w, c);
            else /* an echo or keep-alive server does not hang up */
                bench_conn_fail(w, c, BE_CLOSED);
            return -1;
        }
        int64_t now = bench_now();
        c->t_progress = now;
        int r = m->consume ? m->consume(w, c, w->rbuf, (size_t)n, now)
                           : bench_stream_echo(w, c, w->rbuf, (size_t)n, now);
        if (r < 0)
            return -1;
        /* A short read emptied the socket (more data is a new edge), unless
         * the transport holds more, or the end of the stream is already here.
         * Not for a transport with state (impl: TLS): it returns one record
         * per read, and the socket may hold more records that make no new
         * edge, so it is read until it says SK_TP_AGAIN. */
        if ((size_t)n < w->rcap && !c->hup && c->tp.impl == NULL)
            return 0;
    }
    bench_again(w, c, BEV_READ);
    return 0;
}

void bench_stream_open(bench_worker *w, bench_conn *c, int64_t now)
{
    (void)now;
    c->active = 0;
    bench_stream_pump(w, c);
}

void bench_stream_io(bench_worker *w, bench_conn *c, unsigned ev)
{
    if ((ev & BEV_READ) && bench_stream_read(w, c) < 0)
        return;
    bench_stream_pump(w, c);
}

void bench_stream_expire(bench_worker *w, bench_conn *c, int64_t now)
{
    const bench_cfg *cfg = w->cfg;
    int waiting = in_flight(c) > 0 || c->blocked || cfg->one_way;
    if (waiting && now - c->t_progress > cfg->timeout_ns) {
        bench_conn_fail(w, c, BE_TIMEOUT);
        return;
    }
    /* Not overdue yet: look again when it would be (progress moves it on). */
    bench_conn_timer(w, c, (waiting ? c->t_progress : now) + cfg->timeout_ns + 1);
}
