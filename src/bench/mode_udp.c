/*
 * mode_udp.c - `sockit bench --mode udp`: datagram ping-pong on -c connected
 * sockets, one datagram in flight each. A reply that does not come within
 * --timeout is `lost` and a new datagram (a new sequence number) goes out; a
 * reply to an earlier datagram that comes late is told apart and ignored.
 * Connected datagram sockets go through the transport like streams; a read of
 * 0 bytes is an empty datagram here, not an end of stream.
 */
#include <errno.h>

#include "bench.h"

#define DGRAM_ROUNDS 64 /* datagrams read per turn */

static void udp_send(bench_worker *w, bench_conn *c, int fresh)
{
    if (fresh)
        c->out_seq++; /* a retry is a new datagram: a late reply is told apart */
    struct iovec iov[2];
    int niov = bench_msg_iov(c->id, c->out_seq, w->cfg->size, 0, w->hdr[0], iov);
    int64_t t = bench_now();
    c->ts[0] = t;
    c->t_progress = t;
    c->active = 1;
    c->unsent = 0;
    ssize_t n = sk__tp_writev(&c->tp, iov, niov, 0);
    if (n >= 0)
        return;
    if (n == SK_TP_AGAIN) {
        c->unsent = 1;
        c->blocked = (uint8_t)c->tp.want;
    } else if (errno == ECONNREFUSED) {
        bench_conn_fail(w, c, BE_WRITE);
    } /* else (ENOBUFS...): as if lost; the timer sends another */
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
        ssize_t n = sk__tp_read(&c->tp, w->rbuf, w->rcap);
        if (n == SK_TP_AGAIN)
            return;
        if (n < 0) {
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

static void udp_open(bench_worker *w, bench_conn *c, int64_t now)
{
    (void)now;
    c->active = 0;
    udp_send(w, c, 1);
}

static void udp_io(bench_worker *w, bench_conn *c, unsigned ev)
{
    if (ev & BEV_READ)
        udp_read(w, c);
    if (c->state == BC_OPEN && c->unsent && !c->blocked)
        udp_send(w, c, 0);
}

static void udp_expire(bench_worker *w, bench_conn *c, int64_t now)
{
    const bench_cfg *cfg = w->cfg;
    if (c->active && now - c->ts[0] > cfg->timeout_ns) {
        bench_error(w, BE_LOST);
        udp_send(w, c, 1);
        if (c->state != BC_OPEN)
            return;
    }
    bench_conn_timer(w, c, (c->active ? c->ts[0] : now) + cfg->timeout_ns + 1);
}

static int udp_validate(bench_cfg *cfg, sk_err *err)
{
    if (cfg->size < BENCH_HDR || cfg->size > BENCH_DGRAM_MAX)
        return sk_err_usage(err, "-s: udp datagrams are %d to %d bytes", BENCH_HDR,
                            BENCH_DGRAM_MAX);
    return 0;
}

const bench_mode bench_mode_udp = {
    .name = "udp",
    .help = "datagram ping-pong on -c sockets; no reply within --timeout: lost",
    .flags = BENCH_F_DGRAM,
    .size = 64,
    .timeout_ns = 200000000LL,
    .validate = udp_validate,
    .open = udp_open,
    .io = udp_io,
    .expire = udp_expire,
};
