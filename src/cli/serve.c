/*
 * serve.c - `sockit serve [OPTIONS] SERVICE ADDRESS...`
 *
 * Parses the command line, opens every listener (so that every error is
 * reported before anything is served), then hands over to the library's
 * server engine. The `stdio` service is different: it joins one connection to
 * this process's stdin and stdout, as `nc -l` does, using the relay.
 */
#define _GNU_SOURCE /* getopt_long */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../http/http.h"
#include "cli.h"

#define MAX_LISTENERS 64

struct serve_cfg {
    sk_server_opts o;
    sk_http_config http;
    const char *http_opt; /* the first http-only option given, to refuse it elsewhere */
    const char *access_log;
    const char *service;
    int quiet;
    char **addrs;
    int naddrs;
};

static sk_server *g_server;
/* serve stdio: the listeners a signal must clean up (until the peer is accepted). */
static sk_listener *g_stdio_ls;
static volatile sig_atomic_t g_stdio_n;

/* The first SIGINT/SIGTERM stops gracefully (busy connections get --grace),
 * the second stops now. */
static void on_stop_signal(int sig)
{
    (void)sig;
    static volatile sig_atomic_t seen;
    if (seen++ == 0)
        sk_server_stop(g_server);
    else
        sk_server_stop_now(g_server);
}

/* serve stdio has no event loop to tell: clean up here and end. Only
 * async-signal-safe calls (close, lstat, unlink, _exit). */
static void on_stdio_signal(int sig)
{
    (void)sig;
    for (sig_atomic_t i = 0; i < g_stdio_n; i++)
        sk_listener_close(&g_stdio_ls[i]);
    _exit(0);
}

static void serve_help(FILE *f)
{
    fprintf(f, "usage: sockit serve [OPTIONS] SERVICE ADDRESS...\n\nServices:\n");
    for (const sk_service *const *s = sk_services(); *s; s++)
        fprintf(f, "  %-10s %s\n", (*s)->name, (*s)->summary);
    fprintf(f, "  %-10s %s\n", "stdio", "joins one connection to stdin/stdout (like nc -l)");
    fprintf(f, "\nModels (--model, default %s):\n", sk_model_default());
    for (const sk_model *const *m = sk_models(); *m; m++)
        fprintf(f, "  %-10s %s\n", (*m)->name, (*m)->summary);
    fprintf(f,
            "\nOptions:\n"
            "  --model MODEL         concurrency model (above)\n"
            "  --workers N           processes/threads/loops, for models that use them\n"
            "  --once                serve one connection or datagram, then exit\n"
            "  --max-conns N         at most N connections at once (others wait in the backlog)\n"
            "  --idle-timeout SECS   close connections idle this long\n"
            "  --grace SECS          on SIGINT/SIGTERM, time busy connections get to finish\n"
            "                        (default 10; idle ones are closed at once)\n"
            "  -v, --verbose         log each connection on stderr\n"
            "  -q, --quiet           no service output, no messages but errors\n"
            "  -h, --help            this text\n"
            "\nhttp only:\n"
            "  --root DIR            directory to serve (default .)\n"
            "  --index NAME          file served for a directory (default index.html)\n"
            "  --listing             list directories that have no index file\n"
            "  --auth FILE           require HTTP Basic auth against user:crypt-hash lines\n"
            "  --access-log FILE|-   Combined Log Format, to FILE or stdout\n"
            "\nWith port 0 the kernel picks a port; the address bound is printed on stderr as\n"
            "\"sockit: listening on ADDRESS\" (also with -v).\n");
}

/* Service output: one write per report keeps lines from forked workers whole. */
static void report_line(void *arg, const char *line, size_t len)
{
    (void)arg;
    char small[4096];
    char *buf = len + 1 <= sizeof small ? small : malloc(len + 1);
    if (buf == NULL)
        return;
    memcpy(buf, line, len);
    buf[len] = '\n';
    if (sk_write_all(STDOUT_FILENO, buf, len + 1, -1) < 0 && errno == EPIPE)
        sk_server_stop(g_server); /* nobody reads our output any more */
    if (buf != small)
        free(buf);
}

static void log_line(void *arg, int level, const char *line)
{
    (void)arg;
    (void)level;
    char buf[640];
    int n = snprintf(buf, sizeof buf, "sockit: %s\n", line);
    if (n > 0)
        sk_write_all(STDERR_FILENO, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1, -1);
}

static void parse(int argc, char **argv, struct serve_cfg *c)
{
    enum {
        O_MODEL = 256,
        O_WORKERS,
        O_ONCE,
        O_MAXCONNS,
        O_IDLE,
        O_GRACE,
        O_ROOT,
        O_INDEX,
        O_LISTING,
        O_AUTH,
        O_ACCESS_LOG
    };
    static const struct option longs[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"workers", required_argument, NULL, O_WORKERS},
        {"once", no_argument, NULL, O_ONCE},
        {"max-conns", required_argument, NULL, O_MAXCONNS},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"grace", required_argument, NULL, O_GRACE},
        {"root", required_argument, NULL, O_ROOT},
        {"index", required_argument, NULL, O_INDEX},
        {"listing", no_argument, NULL, O_LISTING},
        {"auth", required_argument, NULL, O_AUTH},
        {"access-log", required_argument, NULL, O_ACCESS_LOG},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *model = NULL;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":vqh", longs, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: model = optarg; break;
        case O_WORKERS: c->o.workers = (int)cli_number("--workers", optarg, 1, 1024); break;
        case O_ONCE: c->o.once = 1; break;
        case O_MAXCONNS: c->o.max_conns = (int)cli_number("--max-conns", optarg, 1, 1000000); break;
        case O_IDLE: c->o.idle_timeout_ms = cli_seconds_ms("--idle-timeout", optarg); break;
        case O_GRACE:
            c->o.grace_ms = cli_seconds_ms("--grace", optarg);
            if (c->o.grace_ms == 0)
                c->o.grace_ms = 1; /* "0" means: do not wait (the library's 0 is the default) */
            break;
        case O_ROOT: c->http.root = optarg, c->http_opt = "--root"; break;
        case O_INDEX: c->http.index = optarg, c->http_opt = "--index"; break;
        case O_LISTING: c->http.listing = 1, c->http_opt = "--listing"; break;
        case O_AUTH: c->http.auth_file = optarg, c->http_opt = "--auth"; break;
        case O_ACCESS_LOG: c->access_log = optarg, c->http_opt = "--access-log"; break;
        case 'v': c->o.verbose = 1; break;
        case 'q': c->quiet = 1; break;
        case 'h': serve_help(stdout); exit(0);
        default: cli_bad_option("serve", ch, argv);
        }
    }
    if (c->quiet && c->o.verbose)
        cli_usage("-q and -v contradict each other");
    if (optind >= argc)
        cli_usage("serve: missing SERVICE (see sockit serve --help)");
    c->service = argv[optind++];
    if (optind >= argc)
        cli_usage("serve %s: missing ADDRESS (e.g. 8080, udp://:7, unix:/tmp/s)", c->service);
    c->addrs = argv + optind;
    c->naddrs = argc - optind;
    if (c->naddrs > MAX_LISTENERS)
        cli_usage("serve: too many addresses (at most %d)", MAX_LISTENERS);
    if (model) {
        c->o.model = sk_model_find(model);
        if (c->o.model == NULL) {
            char names[256] = "";
            for (const sk_model *const *m = sk_models(); *m; m++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         names[0] ? ", " : "", (*m)->name);
            cli_usage("unknown model \"%s\" (%s)", model, names);
        }
    }
    if (c->http_opt && strcmp(c->service, "http") != 0)
        cli_usage("%s is an option of the http service, not of %s", c->http_opt, c->service);
    if (strcmp(c->service, "stdio") != 0) {
        c->o.service = sk_service_find(c->service);
        if (c->o.service == NULL) {
            char names[256] = "";
            for (const sk_service *const *s = sk_services(); *s; s++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s, ", (*s)->name);
            cli_usage("unknown service \"%s\" (%sstdio)", c->service, names);
        }
    }
}

static void install_signals(void (*handler)(int))
{
    sk_ignore_sigpipe();
    struct sigaction sa = {0};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Open every listener for every address; print what port 0 became. */
static size_t open_listeners(struct serve_cfg *c, sk_listener *ls, size_t cap)
{
    size_t total = 0;
    sk_addr addrs[MAX_LISTENERS];
    sk_err err;
    /* Parse them all first: a typo in the third address is a usage error
     * before anything is bound. */
    for (int i = 0; i < c->naddrs; i++) {
        if (sk_addr_parse(&addrs[i], c->addrs[i], &err) < 0)
            cli_die(&err);
        /* Refuse a transport the service cannot use before binding anything. */
        const sk_service *svc = c->o.service;
        int stream = sk_transport_is_stream(addrs[i].transport);
        if (svc && !(svc->flags & (stream ? SK_SVC_STREAM : SK_SVC_DGRAM)))
            cli_usage("service %s does not run on %s sockets (%s)", svc->name,
                      stream ? "stream" : "datagram", c->addrs[i]);
    }
    for (int i = 0; i < c->naddrs; i++) {
        size_t n = 0;
        if (sk_listen(&addrs[i], NULL, ls + total, cap - total, &n, &err) < 0) {
            for (size_t j = 0; j < total; j++)
                sk_listener_close(&ls[j]);
            cli_die(&err);
        }
        int port0 = addrs[i].port[0] == '0' && addrs[i].port[1] == '\0';
        for (size_t j = total; j < total + n; j++)
            if (port0 || c->o.verbose) /* even with -q: a script needs the port */
                cli_warn("listening on %s", ls[j].name);
        total += n;
    }
    return total;
}

/* `serve stdio`: one peer joined to stdin/stdout. */
static int serve_stdio(struct serve_cfg *c, sk_listener *ls, size_t n)
{
    struct pollfd p[MAX_LISTENERS];
    for (size_t i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = ls[i].fd, .events = POLLIN};
    int fd = -1;
    size_t which = 0;
    while (fd < 0) {
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            cli_fail("poll: %s", strerror(errno));
        }
        for (which = 0; which < n && !p[which].revents; which++) {
        }
        if (which == n)
            continue;
        sk_listener *l = &ls[which];
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        char name[SK_NAME_MAX];
        if (sk_transport_is_stream(l->transport)) {
            fd = sk_accept(l->fd, (struct sockaddr *)&peer, &plen, 0);
            if (fd < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                cli_fail("accept %s: %s", l->name, strerror(errno));
            }
        } else {
            /* The first datagram picks the peer; connect() so only it is heard. */
            uint8_t dgram[SK_DGRAM_MAX];
            ssize_t got = recvfrom(l->fd, dgram, sizeof dgram, 0, (struct sockaddr *)&peer, &plen);
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                cli_fail("recvfrom %s: %s", l->name, strerror(errno));
            }
            if (plen > (socklen_t)sizeof(sa_family_t) &&
                connect(l->fd, (struct sockaddr *)&peer, plen) < 0)
                cli_fail("connect %s: %s", l->name, strerror(errno));
            if (sk_write_all(STDOUT_FILENO, dgram, (size_t)got, -1) < 0)
                cli_fail("write standard output: %s", strerror(errno));
            fd = l->fd;
            l->fd = -1; /* the relay owns it now */
        }
        if (c->o.verbose)
            cli_warn("connection from %s", sk_sockaddr_format((struct sockaddr *)&peer, plen,
                                                              l->transport, name, sizeof name));
    }
    int stream = sk_transport_is_stream(ls[which].transport);
    g_stdio_n = 0; /* from here on a signal just ends the relay */
    for (size_t i = 0; i < n; i++)
        sk_listener_close(&ls[i]); /* like nc -l: one peer, then done */
    sk_relay_opts ro = {.stream = stream,
                        .idle_timeout_ms = c->o.idle_timeout_ms,
                        .dgram_linger_ms = c->o.idle_timeout_ms};
    if (!stream && ro.dgram_linger_ms == 0)
        ro.dgram_linger_ms = -1; /* a datagram server keeps listening to its peer */
    sk_relay_stats st;
    sk_err err;
    int rc = sk_relay(fd, STDIN_FILENO, STDOUT_FILENO, &ro, &st, &err);
    close(fd);
    if (c->o.verbose)
        cli_warn("closed: %llu bytes in, %llu bytes out", (unsigned long long)st.from_net,
                 (unsigned long long)st.to_net);
    if (rc < 0)
        cli_die(&err);
    return 0;
}

int cli_serve(int argc, char **argv)
{
    struct serve_cfg c = {0};
    parse(argc, argv, &c);
    c.o.report = c.quiet ? NULL : report_line;
    c.o.log = log_line;
    c.http.access_log_fd = -1;
    if (c.access_log) {
        c.http.access_log_fd =
            strcmp(c.access_log, "-") == 0
                ? STDOUT_FILENO
                : open(c.access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (c.http.access_log_fd < 0)
            cli_fail("--access-log %s: %s", c.access_log, strerror(errno));
    }
    if (c.o.service && strcmp(c.o.service->name, "http") == 0) {
        c.o.service_config = &c.http;
        if (c.o.idle_timeout_ms == 0)
            c.o.idle_timeout_ms = 60000; /* a client that stops reading a response */
    }

    sk_listener ls[MAX_LISTENERS];
    sk_err err;
    sk_server *s = NULL;
    if (c.o.service) {
        /* Create the server first: a service/model mismatch is a usage error
         * and should not wait for the addresses to bind. */
        s = sk_server_new(&c.o, &err);
        if (s == NULL)
            cli_die(&err);
    }
    install_signals(s ? on_stop_signal : on_stdio_signal);
    g_server = s;
    size_t n = open_listeners(&c, ls, MAX_LISTENERS);
    if (s == NULL) {
        g_stdio_ls = ls;
        g_stdio_n = (sig_atomic_t)n;
        return serve_stdio(&c, ls, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (sk_server_add_listener(s, &ls[i], &err) < 0) {
            for (size_t j = i; j < n; j++)
                sk_listener_close(&ls[j]);
            sk_server_free(s);
            cli_die(&err);
        }
    }
    int rc = sk_server_run(s, &err);
    g_server = NULL;
    sk_server_free(s);
    if (rc < 0)
        cli_die(&err);
    return 0;
}
