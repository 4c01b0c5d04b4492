/*
 * run.c - the phases of one `sockit bench` run: the server measured before a
 * hold, the clock's landmarks (warmup, measured time, hard end), the workers,
 * the server measured when the hold ends (then the connections are checked),
 * and the seconds the report divides by.
 */
#include "bench.h"

#define SEC 1000000000LL

int bench_server_init(const bench_cfg *cfg, bench_server *srv, sk_err *err)
{
    *srv = (bench_server){.rss_before_kb = -1, .rss_after_kb = -1, .held = -1};
    if (!(cfg->mode->flags & BENCH_F_HOLD))
        return 0;
    if (cfg->server_pid > 0) {
        srv->pids[0] = cfg->server_pid;
        srv->npids = 1;
    } else {
        srv->npids = bench_find_server(cfg, srv->pids, 16);
    }
    if (srv->npids > 0 && (srv->rss_before_kb = bench_rss_kb(srv->pids, srv->npids)) < 0) {
        if (cfg->server_pid > 0)
            return sk_err_usage(err, "--server-pid: cannot read the RSS of process %ld",
                                cfg->server_pid);
        return sk_errf(err, 0, "bench: cannot read the RSS of server pid %ld", srv->pids[0]);
    }
    return 0;
}

struct phase {
    const bench_cfg *cfg;
    bench_run *run;
    bench_server *srv;
    void (*progress)(void *arg, const bench_progress *p);
    void *arg;
};

/* In the main thread, about every 100 ms while the workers run. */
static void tick(void *arg, bench_worker *ws, int n)
{
    struct phase *ph = arg;
    bench_progress p = {.now = bench_now()};
    for (int i = 0; i < n; i++) {
        p.ops += atomic_load_explicit(&ws[i].pub_ops, memory_order_relaxed);
        p.errors += atomic_load_explicit(&ws[i].pub_errors, memory_order_relaxed);
        p.open += atomic_load_explicit(&ws[i].pub_open, memory_order_relaxed);
    }
    bench_run *run = ph->run;
    if ((ph->cfg->mode->flags & BENCH_F_HOLD) && p.now >= run->deadline &&
        !atomic_load(&run->verify)) {
        /* The hold is over: measure the server with every connection still
         * open, then let the workers check them. */
        ph->srv->held = p.open;
        if (ph->srv->npids > 0)
            ph->srv->rss_after_kb = bench_rss_kb(ph->srv->pids, ph->srv->npids);
        atomic_store_explicit(&run->verify, 1, memory_order_release);
    }
    if (ph->progress)
        ph->progress(ph->arg, &p);
}

int bench_run_all(const bench_cfg *cfg, bench_run *run, bench_server *srv, bench_stats *st,
                  double *secs, void (*progress)(void *arg, const bench_progress *p), void *arg,
                  sk_err *err)
{
    int hold = (cfg->mode->flags & BENCH_F_HOLD) != 0;
    run->t0 = bench_now();
    if (hold) {
        run->measure_start = run->t0;
        run->deadline = run->t0 + cfg->duration_ns;
        run->end = run->deadline + cfg->timeout_ns + 2 * SEC;
    } else {
        run->measure_start = run->t0 + cfg->warmup_ns;
        run->deadline = run->end = run->measure_start + cfg->duration_ns;
    }
    struct phase ph = {.cfg = cfg, .run = run, .srv = srv, .progress = progress, .arg = arg};
    int rc = bench_engine(cfg, run, st, tick, &ph, err);
    int64_t t_end = bench_now();
    if (rc < 0)
        return -1;
    if (hold && srv->held < 0) /* stopped before the hold ended */
        srv->held = 0;
    int64_t stop = hold ? run->deadline : run->end;
    if (t_end < stop)
        stop = t_end;
    *secs = (double)(stop - (hold ? run->t0 : run->measure_start)) / SEC;
    if (*secs < 0)
        *secs = 0;
    return 0;
}
