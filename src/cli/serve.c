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
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define MAX_LISTENERS 64

struct serve_cfg {
    sk_server_opts o;
    void *config; /* the service's settings, from its own options */
    const char *service;
    int quiet;
    char **addrs;
    int naddrs;
};

static sk_server *g_server;
/* serve stdio: the listeners a signal must clean up (until the peer is accepted). */
static sk_listener *g_stdio_ls;
static volatile sig_atomic_t g_stdio_n;

static void on_stop_signal(int sig)
{
    (void)sig;
    sk_server_stop(g_server);
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

/* "  --root DIR            directory to serve (default .)" */
static void option_help(FILE *f, const char *name, const char *arg, const char *help)
{
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", name, arg ? " " : "", arg ? arg : "");
    if (strlen(left) < 20)
        fprintf(f, "  %-20s  %s\n", left, help);
    else
        fprintf(f, "  %s\n  %-20s  %s\n", left, "", help);
}

/* Without a service: every service and model, the common options. With one:
 * its summary, the common options, then the options it declares. */
static void serve_help(FILE *f, const sk_service *svc)
{
    if (svc) {
        fprintf(f, "usage: sockit serve [OPTIONS] %s ADDRESS...\n\n%s: %s\n", svc->name, svc->name,
                svc->summary);
    } else {
        fprintf(f, "usage: sockit serve [OPTIONS] SERVICE ADDRESS...\n\nServices:\n");
        for (const sk_service *const *s = sk_services(); *s; s++)
            fprintf(f, "  %-10s %s\n", (*s)->name, (*s)->summary);
        fprintf(f, "  %-10s %s\n", "stdio", "joins one connection to stdin/stdout (like nc -l)");
    }
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
            "  -h, --help            this text (sockit serve SERVICE --help: its options too)\n");
    for (const sk_service *const *s = sk_services(); *s; s++) {
        if ((svc && *s != svc) || (*s)->options == NULL || (*s)->options->name == NULL)
            continue;
        fprintf(f, "\n%s only:\n", (*s)->name);
        for (const sk_svc_option *o = (*s)->options; o->name; o++)
            option_help(f, o->name, o->arg, o->help);
    }
    fprintf(f, "\nWith port 0 the kernel picks a port; the address bound is printed on stderr as\n"
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

/* The service that declares option name (the registry is searched in order). */
static const sk_service *option_owner(const char *name)
{
    for (const sk_service *const *s = sk_services(); *s; s++)
        if (sk_service_option(*s, name))
            return *s;
    return NULL;
}

#define MAX_SVC_OPTS 128

/* A service option as given on the command line, for after the service is known. */
struct svc_arg {
    const char *name;
    const char *value; /* NULL for a flag */
};

/* The common options, then every service's own (the first declaration of a
 * name decides; a service cannot take over a common option): the service
 * word may come after its options, so they are collected now and handed to
 * the service once it is known. Service option i gets the value first + i.
 * Returns the number of options; longs[n] is the terminator. */
static size_t all_options(struct option *longs, const struct option *common, size_t ncommon,
                          int first)
{
    size_t nl = ncommon;
    memcpy(longs, common, ncommon * sizeof *common);
    for (const sk_service *const *s = sk_services(); *s; s++) {
        for (const sk_svc_option *o = (*s)->options; o && o->name; o++) {
            size_t k = 0;
            while (k < nl && strcmp(longs[k].name, o->name) != 0)
                k++;
            if (k < nl || nl - ncommon >= MAX_SVC_OPTS)
                continue;
            int has_arg = o->kind == SK_OPT_FLAG ? no_argument : required_argument;
            longs[nl] = (struct option){o->name, has_arg, NULL, first + (int)(nl - ncommon)};
            nl++;
        }
    }
    longs[nl] = (struct option){0};
    return nl;
}

static void parse(int argc, char **argv, struct serve_cfg *c)
{
    enum { O_MODEL = 256, O_WORKERS, O_ONCE, O_MAXCONNS, O_IDLE, O_GRACE, O_SVC = 1024 };
    static const struct option common[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"workers", required_argument, NULL, O_WORKERS},
        {"once", no_argument, NULL, O_ONCE},
        {"max-conns", required_argument, NULL, O_MAXCONNS},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"grace", required_argument, NULL, O_GRACE},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
    };
    struct option longs[sizeof common / sizeof common[0] + MAX_SVC_OPTS + 1];
    size_t ncommon = sizeof common / sizeof common[0];
    size_t nl = all_options(longs, common, ncommon, O_SVC);
    /* Static: still reachable when a usage error exits below. */
    static struct svc_arg *given;
    given = calloc((size_t)argc + 1, sizeof *given);
    if (given == NULL)
        cli_fail("out of memory");
    size_t ngiven = 0;
    const char *model = NULL;
    int help = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":vqh", longs, NULL)) != -1) {
        if (ch >= O_SVC && ch < O_SVC + (int)(nl - ncommon)) {
            given[ngiven++] = (struct svc_arg){longs[ncommon + (size_t)(ch - O_SVC)].name, optarg};
            continue;
        }
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
        case 'v': c->o.verbose = 1; break;
        case 'q': c->quiet = 1; break;
        case 'h': help = 1; break;
        default: cli_bad_option("serve", ch, argv);
        }
    }
    if (help) { /* `serve http --help`: the service's own options too */
        serve_help(stdout, optind < argc ? sk_service_find(argv[optind]) : NULL);
        exit(0);
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
    const sk_service *svc = strcmp(c->service, "stdio") != 0 ? sk_service_find(c->service) : NULL;
    for (size_t i = 0; i < ngiven; i++)
        if (svc == NULL || sk_service_option(svc, given[i].name) == NULL)
            cli_usage("--%s is an option of the %s service, not of %s", given[i].name,
                      option_owner(given[i].name)->name, c->service);
    if (strcmp(c->service, "stdio") != 0) {
        c->o.service = svc;
        if (c->o.service == NULL) {
            char names[256] = "";
            for (const sk_service *const *s = sk_services(); *s; s++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s, ", (*s)->name);
            cli_usage("unknown service \"%s\" (%sstdio)", c->service, names);
        }
        sk_err err;
        if ((c->config = sk_service_config_new(svc, &err)) == NULL)
            cli_die(&err);
        for (size_t i = 0; i < ngiven; i++)
            if (sk_service_set(svc, c->config, given[i].name, given[i].value, &err) < 0)
                cli_die(&err);
        c->o.service_config = c->config;
    }
    free(given);
    given = NULL;
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

/* A directory where an address should be (`serve http /tmp`): if the service
 * takes a directory option, say how to give it. */
static void dir_hint(const struct serve_cfg *c, const char *word, sk_err *err)
{
    struct stat st;
    if (c->o.service == NULL || stat(word, &st) < 0 || !S_ISDIR(st.st_mode))
        return;
    for (const sk_svc_option *o = c->o.service->options; o && o->name; o++) {
        if (o->kind == SK_OPT_PATH && o->arg && strcmp(o->arg, "DIR") == 0) {
            size_t len = strlen(err->msg);
            snprintf(err->msg + len, sizeof err->msg - len,
                     " (to serve a directory: sockit serve %s --%s %s PORT)", c->o.service->name,
                     o->name, word);
            return;
        }
    }
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
        if (sk_addr_parse(&addrs[i], c->addrs[i], &err) < 0) {
            dir_hint(c, c->addrs[i], &err);
            cli_die(&err);
        }
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
    /* "sockit: serving /srv/www at http://[::]:8080/": where to point a browser. */
    for (size_t i = 0; i < n && !c.quiet && c.o.service->describe; i++) {
        char line[SK_NAME_MAX + 4200];
        if (c.o.service->describe(c.config, &ls[i], line, sizeof line) > 0)
            cli_warn("%s", line);
    }
    int rc = sk_server_run(s, &err);
    g_server = NULL;
    sk_server_free(s);
    sk_service_config_free(c.o.service, c.config);
    if (rc < 0)
        cli_die(&err);
    return 0;
}
