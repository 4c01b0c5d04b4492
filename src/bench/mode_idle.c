/*
 * mode_idle.c - `sockit bench --mode idle`: open -c connections, hold them -d
 * seconds sending nothing, then check that each still echoes one message
 * (the engine calls verify when the hold is over). Each connection is one op;
 * one that fails is not reopened. The report adds the server's RSS before and
 * with the connections held (found by src/cli/bench.c through server.c), and
 * so its memory per idle connection.
 */
#include "bench.h"

static void idle_open(bench_worker *w, bench_conn *c, int64_t now)
{
    (void)w, (void)now;
    c->active = 0; /* nothing is sent until the hold is over */
}

static void idle_io(bench_worker *w, bench_conn *c, unsigned ev)
{
    if ((ev & BEV_READ) && bench_stream_read(w, c) < 0)
        return;
    if (c->active)
        bench_stream_pump(w, c);
}

static void idle_expire(bench_worker *w, bench_conn *c, int64_t now)
{
    if (c->active) {
        bench_stream_expire(w, c, now);
        return;
    }
    bench_conn_timer(w, c, now + w->cfg->timeout_ns + 1); /* held: nothing is overdue */
}

static void idle_verify(bench_worker *w, bench_conn *c, int64_t now)
{
    c->active = 1;
    c->t_progress = now;
    bench_conn_timer(w, c, now + w->cfg->timeout_ns + 1);
    bench_stream_pump(w, c);
}

/* The one reply: the connection has proved itself; close it for good. */
static int idle_replied(bench_worker *w, bench_conn *c)
{
    bench_conn_finish(w, c);
    return -1;
}

static int idle_validate(bench_cfg *cfg, sk_err *err)
{
    (void)err;
    cfg->warmup_ns = 0; /* the hold is the run */
    return 0;
}

/* Server memory per connection held, if it is known. */
static int per_conn_bytes(const bench_server *srv, long *out)
{
    if (srv->rss_before_kb < 0 || srv->rss_after_kb < 0 || srv->held <= 0)
        return 0;
    *out = (srv->rss_after_kb - srv->rss_before_kb) * 1024 / srv->held;
    return 1;
}

static void idle_report(const bench_cfg *c, const bench_stats *st, const bench_server *srv, FILE *f,
                        int json)
{
    (void)c, (void)st;
    long per;
    if (json) {
        fprintf(f, ",\"held\":%d,\"server_pids\":[", srv->held);
        for (int i = 0; i < srv->npids; i++)
            fprintf(f, "%s%ld", i ? "," : "", srv->pids[i]);
        fputc(']', f);
        if (srv->rss_before_kb >= 0 && srv->rss_after_kb >= 0)
            fprintf(f, ",\"rss_before_kb\":%ld,\"rss_after_kb\":%ld", srv->rss_before_kb,
                    srv->rss_after_kb);
        else
            fprintf(f, ",\"rss_before_kb\":null,\"rss_after_kb\":null");
        if (per_conn_bytes(srv, &per))
            fprintf(f, ",\"rss_per_conn_bytes\":%ld", per);
        else
            fprintf(f, ",\"rss_per_conn_bytes\":null");
        return;
    }
    if (srv->rss_before_kb >= 0 && srv->rss_after_kb >= 0)
        fprintf(f, "%-12s %ld kB before, %ld kB with %d connections held (pid %ld%s)\n",
                "server RSS", srv->rss_before_kb, srv->rss_after_kb, srv->held, srv->pids[0],
                srv->npids > 1 ? " and others" : "");
    if (per_conn_bytes(srv, &per))
        fprintf(f, "%-12s %ld bytes per idle connection\n", "per conn", per);
}

const bench_mode bench_mode_idle = {
    .name = "idle",
    .help = "open -c connections, hold them -d seconds, then check that each\n"
            "         still echoes; reports the server's RSS per idle connection (use a\n"
            "         freshly started server: memory it freed before is reused)",
    .flags = BENCH_F_SERVER_PID | BENCH_F_HOLD,
    .size = 64,
    .timeout_ns = 2000000000LL,
    .validate = idle_validate,
    .open = idle_open,
    .io = idle_io,
    .expire = idle_expire,
    .verify = idle_verify,
    .fill = bench_msg_fill,
    .check = bench_msg_verify,
    .replied = idle_replied,
    .report = idle_report,
};
