/*
 * mode_conn.c - `sockit bench --mode conn`: connect, send one message, read
 * its echo, close, and again (connections per second). The latency counts
 * from the connect.
 */
#include "bench.h"

/* One reply per connection: open the next one at once. */
static int conn_replied(bench_worker *w, bench_conn *c)
{
    bench_conn_recycle(w, c);
    return -1;
}

const bench_mode bench_mode_conn = {
    .name = "conn",
    .help = "connect, send one message, read its echo, close (connections/s)",
    .flags = BENCH_F_FROM_CONNECT,
    .size = 64,
    .timeout_ns = 2000000000LL,
    .open = bench_stream_open,
    .io = bench_stream_io,
    .expire = bench_stream_expire,
    .fill = bench_msg_fill,
    .check = bench_msg_verify,
    .replied = conn_replied,
};
