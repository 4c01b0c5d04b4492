/*
 * mode_echo.c - `sockit bench --mode echo`: persistent connections, each with
 * --pipeline messages of -s bytes in flight; every echo must come back
 * byte-identical (the message patterns of check.c).
 */
#include "bench.h"

static int echo_setup(bench_cfg *cfg, sk_err *err)
{
    (void)err;
    cfg->ring = cfg->pipeline;
    cfg->window = (uint64_t)cfg->pipeline;
    return 0;
}

static void echo_describe(const bench_cfg *c, FILE *f)
{
    fprintf(f, " (%zu-byte messages, pipeline %d)\n", c->size, c->pipeline);
}

const bench_mode bench_mode_echo = {
    .name = "echo",
    .help = "persistent connections, --pipeline messages of -s bytes in flight each;\n"
            "         the echo must be byte-identical",
    .flags = BENCH_F_PIPELINE,
    .size = 64,
    .timeout_ns = 2000000000LL,
    .setup = echo_setup,
    .open = bench_stream_open,
    .io = bench_stream_io,
    .expire = bench_stream_expire,
    .fill = bench_msg_fill,
    .check = bench_msg_verify,
    .describe = echo_describe,
};
