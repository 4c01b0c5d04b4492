/*
 * bench.c - `sockit bench [OPTIONS] ADDRESS`: the command line of the load
 * generator. Options, usage errors, the progress line, the run's phases and
 * the exit status; the load generator itself is in src/bench/ (the modes,
 * the engine, the checkers, the report).
 *
 * Load goes only to loopback (127.0.0.0/8, ::1) or Unix sockets: any other
 * target is refused before anything is sent. Every run ends by itself after
 * --warmup + -d seconds (at most an hour).
 */
#define _GNU_SOURCE /* getopt_long */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../bench/bench.h"
#include "cli.h"

#define SEC 1000000000LL
#define DURATION_MAX_S 3600
#define WARMUP_MAX_S 60

static bench_run g_run;
static struct cli_tls_client g_tls; /* --tls and the options it shares with connect */
static int g_no_resume;

static void bench_help(FILE *f)
{
    fprintf(f, "usage: sockit bench [OPTIONS] ADDRESS\n"
               "\n"
               "Load generator for loopback and Unix-socket servers. Every reply is checked:\n"
               "a fast wrong answer is an error, never a success.\n"
               "\n"
               "Modes (--mode, default echo):\n");
    for (size_t i = 0; bench_modes[i] != NULL; i++)
        fprintf(f, "  %-6s %s\n", bench_modes[i]->name, bench_modes[i]->help);
    fprintf(f, "\n"
               "Options:\n"
               "  -c, --connections N   connections (udp: sockets), default 50\n"
               "  -d, --duration SECS   measured time, default 5 (at most 3600)\n"
               "  -s, --size BYTES      message size (bulk: chunk size), default 64 (bulk 128k)\n"
               "  --pipeline N          echo, http: messages in flight per connection (1)\n"
               "  --workers N           threads, each with its own epoll loop (default: CPUs)\n"
               "  --warmup SECS         run this long first, uncounted (default 1, at most 60)\n"
               "  --timeout SECS        a reply later than this is an error (2; udp 0.2);\n"
               "                        a connect may take this or 4 s, the longer\n"
               "  --path PATH           http: the path to GET\n"
               "  --check-echo          bulk: read the stream back and check it\n"
               "  --server-pid PID      idle: the server (else found by its listening socket)\n"
               "  --json                one JSON object on stdout instead of the table\n"
               "  -q, --quiet           no progress line, no notes\n"
               "  -h, --help            this text\n"
               "\n"
               "TLS, for every stream mode (any of these implies --tls; as in connect):\n");
    cli_tls_client_help(f);
    fprintf(f, "  --no-resume    a full handshake for every connection (default: each worker\n"
               "                 offers the last session it got, so conn measures resumed\n"
               "                 handshakes after the first; the report counts both kinds)\n"
               "\n"
               "Throughput counts the bytes of checked replies (http: whole responses; bulk\n"
               "without --check-echo: bytes written). Latency: from a message's first byte\n"
               "written to its whole reply (conn: from the connect; bulk: to the chunk\n"
               "written, or echoed with --check-echo).\n"
               "Targets must be loopback (127.0.0.0/8, ::1) or Unix sockets. Errors are\n"
               "counted over the whole run, warmup included; ops and latency only after it.\n"
               "Exit status: 0 the run completed (errors are in the report), 1 nothing could\n"
               "connect, 2 usage error.\n");
}

static size_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        cli_usage("-s: expected a size in bytes, got \"%s\"", s);
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'k' || *end == 'K')
        v *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024, end++;
    if (*end != '\0' || errno == ERANGE || v < 1 || v > BENCH_MSG_MAX)
        cli_usage("-s: %s is not a size from 1 to %u bytes (k and m suffixes work)", s,
                  BENCH_MSG_MAX);
    return (size_t)v;
}

static int64_t parse_secs(const char *opt, const char *s, int64_t max_s)
{
    int ms = cli_seconds_ms(opt, s);
    if (ms > max_s * 1000)
        cli_usage("%s: %s is out of range (at most %lld seconds)", opt, s, (long long)max_s);
    return (int64_t)ms * 1000000LL;
}

static void parse(int argc, char **argv, bench_cfg *c)
{
    enum {
        O_PIPE = 256,
        O_WORKERS,
        O_WARMUP,
        O_TIMEOUT,
        O_PATH,
        O_CHECK,
        O_PID,
        O_JSON,
        O_MODE,
        O_NO_RESUME
    };
    static const struct option longs[] = {
        {"mode", required_argument, NULL, O_MODE},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"size", required_argument, NULL, 's'},
        {"pipeline", required_argument, NULL, O_PIPE},
        {"workers", required_argument, NULL, O_WORKERS},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"path", required_argument, NULL, O_PATH},
        {"check-echo", no_argument, NULL, O_CHECK},
        {"server-pid", required_argument, NULL, O_PID},
        {"json", no_argument, NULL, O_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"no-resume", no_argument, NULL, O_NO_RESUME},
        CLI_TLS_CLIENT_LONGOPTS,
        {0},
    };
    const char *mode = "echo";
    int size_set = 0, pipe_set = 0;
    c->connections = 50;
    c->duration_ns = 5 * SEC;
    c->warmup_ns = 1 * SEC;
    c->size = 64;
    c->pipeline = 1;
    c->timeout_ns = -1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":c:d:s:qh", longs, NULL)) != -1) {
        if (cli_tls_client_option(&g_tls, ch, optarg))
            continue;
        switch (ch) {
        case O_MODE: mode = optarg; break;
        case 'c': c->connections = (int)cli_number("-c", optarg, 1, 1000000); break;
        case 'd': c->duration_ns = parse_secs("-d", optarg, DURATION_MAX_S); break;
        case 's':
            c->size = parse_size(optarg);
            size_set = 1;
            break;
        case O_PIPE:
            c->pipeline = (int)cli_number("--pipeline", optarg, 1, 1024);
            pipe_set = 1;
            break;
        case O_WORKERS: c->workers = (int)cli_number("--workers", optarg, 1, 1024); break;
        case O_WARMUP: c->warmup_ns = parse_secs("--warmup", optarg, WARMUP_MAX_S); break;
        case O_TIMEOUT: c->timeout_ns = parse_secs("--timeout", optarg, 60); break;
        case O_PATH: c->path = optarg; break;
        case O_CHECK: c->check_echo = 1; break;
        case O_PID: c->server_pid = cli_number("--server-pid", optarg, 1, 0x7fffffff); break;
        case O_JSON: c->json = 1; break;
        case 'q': c->quiet = 1; break;
        case O_NO_RESUME: g_no_resume = 1, g_tls.tls = 1; break;
        case 'h': bench_help(stdout); exit(0);
        default: cli_bad_option("bench", ch, argv);
        }
    }
    const bench_mode *m = bench_mode_find(mode);
    char list[128];
    if (m == NULL)
        cli_usage("unknown mode \"%s\" (%s)", mode, bench_mode_list(0, 0, list, sizeof list));
    c->mode = m;
    if (c->duration_ns <= 0)
        cli_usage("-d: the duration must be more than 0 seconds");
    if (c->timeout_ns == 0)
        cli_usage("--timeout: must be more than 0 seconds");
    if (c->timeout_ns < 0)
        c->timeout_ns = m->timeout_ns;
    c->connect_timeout_ns = c->timeout_ns > 4 * SEC ? c->timeout_ns : 4 * SEC;
    /* An option only some modes take: the table says which. */
    static const struct {
        unsigned flag;
        const char *opt;
    } only[] = {
        {BENCH_F_PIPELINE, "--pipeline"},
        {BENCH_F_PATH, "--path"},
        {BENCH_F_CHECK_ECHO, "--check-echo"},
        {BENCH_F_SERVER_PID, "--server-pid"},
    };
    int given[] = {pipe_set, c->path != NULL, c->check_echo, c->server_pid != 0};
    for (size_t i = 0; i < sizeof only / sizeof *only; i++)
        if (given[i] && !(m->flags & only[i].flag))
            cli_usage("%s is for --mode %s", only[i].opt,
                      bench_mode_list(only[i].flag, 1, list, sizeof list));
    if (size_set && (m->flags & BENCH_F_NO_SIZE))
        cli_usage("-s has no meaning for --mode %s (the response decides)", m->name);
    if (!c->path)
        c->path = "/";
    if (c->path[0] != '/' || strpbrk(c->path, " \r\n\t") != NULL)
        cli_usage("--path: \"%s\" must start with / and contain no spaces", c->path);
    if (!size_set)
        c->size = m->size;
    sk_err err;
    if (m->validate && m->validate(c, &err) < 0)
        cli_die(&err);

    cli_client_address(argc - optind, argv + optind, &c->addr,
                       "usage: sockit bench [OPTIONS] ADDRESS (see sockit bench --help)");
    int stream = sk_transport_is_stream(c->addr.transport);
    if ((m->flags & BENCH_F_DGRAM) && stream)
        cli_usage("--mode %s needs a datagram address (udp://HOST:PORT or unixgram:PATH)", mode);
    if (!(m->flags & BENCH_F_DGRAM) && !stream)
        cli_usage("--mode %s needs a stream address (HOST:PORT, tcp://, unix:PATH)", mode);
    cli_tls_client_finish(&g_tls, &c->addr);
    if (g_tls.tls) {
        if (g_tls.to.insecure && !c->quiet)
            cli_warn("warning: --insecure: the server's identity is not checked");
        if ((c->tls = sk_tls_client_new(&g_tls.to, &err)) == NULL)
            cli_die(&err);
        c->tp_open = bench_tls_open;
        c->tls_resume = !g_no_resume;
    }
}

static void raise_fd_limit(const bench_cfg *c)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = (rlim_t)c->connections + 64 + 2 * (rlim_t)c->workers;
    if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        cli_fail("bench: -c %d needs about %llu descriptors, the limit is %llu (ulimit -n)",
                 c->connections, (unsigned long long)want, (unsigned long long)rl.rlim_cur);
}

static int hold(const bench_cfg *c)
{
    return (c->mode->flags & BENCH_F_HOLD) != 0;
}

static void on_sigint(int sig)
{
    (void)sig;
    atomic_store(&g_run.stop, 1);
}

/* The progress line on a terminal, once a second. */
struct progress_line {
    const bench_cfg *cfg;
    int64_t last_print;
    uint64_t last_ops;
};

static void progress(void *arg, const bench_progress *p)
{
    struct progress_line *t = arg;
    int64_t now = p->now;
    if (now - t->last_print < SEC)
        return;
    double el = (double)(now - g_run.t0) / SEC;
    double total = (double)(g_run.deadline - g_run.t0) / SEC;
    double meas = (double)(now - g_run.measure_start) / SEC;
    /* The rate of the last second (ops start from 0 when the warmup ends). */
    double rate = (double)(p->ops >= t->last_ops ? p->ops - t->last_ops : p->ops) /
                  ((double)(now - t->last_print) / SEC);
    t->last_print = now;
    t->last_ops = p->ops;
    if (hold(t->cfg))
        fprintf(stderr, "\rsockit bench: %.0f/%.0f s, %d connections open, %llu errors\033[K", el,
                total, p->open, (unsigned long long)p->errors);
    else if (meas <= 0)
        fprintf(stderr, "\rsockit bench: %.0f/%.0f s, warming up, %d connections open\033[K", el,
                total, p->open);
    else
        fprintf(stderr, "\rsockit bench: %.0f/%.0f s, %llu ops, %.0f ops/s, %llu errors\033[K", el,
                total, (unsigned long long)p->ops, rate, (unsigned long long)p->errors);
    fflush(stderr);
}

int cli_bench(int argc, char **argv)
{
    static bench_cfg cfg;
    parse(argc, argv, &cfg);
    sk_ignore_sigpipe();
    bench_pattern_init();
    sk_err err;
    if (bench_choose_target(&cfg, &err) < 0 || bench_prepare(&cfg, &err) < 0)
        cli_die(&err);
    if (cfg.workers == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.workers = ncpu > 0 ? (int)ncpu : 1;
    }
    if (cfg.workers > cfg.connections)
        cfg.workers = cfg.connections;
    raise_fd_limit(&cfg);

    bench_server srv;
    if (bench_server_init(&cfg, &srv, &err) < 0)
        cli_die(&err);
    if (hold(&cfg) && cfg.server_pid == 0 && srv.npids == 0 && !cfg.quiet)
        cli_warn("bench: no process found listening on %s; no RSS figures (--server-pid PID)",
                 cfg.target);

    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int tty = !cfg.quiet && isatty(STDERR_FILENO);
    struct progress_line pl = {.cfg = &cfg, .last_print = bench_now()};
    bench_stats st;
    double secs = 0;
    int rc = bench_run_all(&cfg, &g_run, &srv, &st, &secs, tty ? progress : NULL, &pl, &err);
    if (tty) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    if (rc < 0)
        cli_die(&err);
    bench_report(stdout, &cfg, &st, secs, &srv);
    free(cfg.request);
    sk_tls_free(cfg.tls);
    if (st.connects == 0) {
        cli_warn("bench: no connection to %s succeeded", cfg.target);
        return 1;
    }
    return 0;
}
