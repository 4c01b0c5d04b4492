/*
 * mode_bulk.c - `sockit bench --mode bulk`: one endless stream per connection,
 * written as fast as it goes; an op is a chunk of -s bytes. Without
 * --check-echo nothing is read back (a chunk counts when the kernel took it,
 * e.g. for a discard server); with it, the stream comes back from an echo
 * server and every byte is checked, at most 2 MiB in flight.
 */
#include "bench.h"

#define BULK_WINDOW (2u << 20) /* --check-echo: bytes in flight (2 to 64 chunks) */

static int bulk_setup(bench_cfg *cfg, sk_err *err)
{
    (void)err;
    cfg->one_way = !cfg->check_echo;
    if (cfg->one_way) {
        cfg->ring = 1;
        cfg->window = UINT64_MAX;
    } else {
        size_t n = BULK_WINDOW / cfg->size;
        cfg->ring = n < 2 ? 2 : n > 64 ? 64 : (int)n;
        cfg->window = (uint64_t)cfg->ring;
    }
    return 0;
}

static int bulk_fill(bench_worker *w, bench_conn *c, uint64_t seq, size_t off, uint8_t *hdr,
                     struct iovec iov[2])
{
    (void)hdr;
    size_t size = w->cfg->size;
    return bench_stream_iov(c->id, seq * size + off, size - off, iov);
}

static int bulk_check(bench_worker *w, bench_conn *c, uint64_t seq, size_t pos, const uint8_t *p,
                      size_t n)
{
    return bench_stream_check(c->id, seq * w->cfg->size + pos, p, n);
}

static int bulk_consume(bench_worker *w, bench_conn *c, const uint8_t *p, size_t n, int64_t now)
{
    if (w->cfg->one_way)
        return 0; /* not checked: let it go */
    return bench_stream_echo(w, c, p, n, now);
}

static void bulk_describe(const bench_cfg *c, FILE *f)
{
    fprintf(f, " (%zu-byte chunks%s)\n", c->size, c->check_echo ? ", echo checked" : "");
}

const bench_mode bench_mode_bulk = {
    .name = "bulk",
    .help = "one stream per connection, written as fast as it goes (bytes/s);\n"
            "         --check-echo reads it back from an echo server and checks it",
    .flags = BENCH_F_CHECK_ECHO,
    .size = 128 * 1024,
    .timeout_ns = 2000000000LL,
    .setup = bulk_setup,
    .open = bench_stream_open,
    .io = bench_stream_io,
    .expire = bench_stream_expire,
    .fill = bulk_fill,
    .check = bulk_check,
    .consume = bulk_consume,
    .describe = bulk_describe,
};
