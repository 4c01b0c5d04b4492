/*
 * serve.c - `sockit serve [OPTIONS] SERVICE ADDRESS...`
 *
 * Takes the parsed command line (serve_opts.c), opens every listener (so that
 * every error is reported before anything is served), then hands over to the library's
 * server engine. The `stdio` service is different: it joins one connection to
 * this process's stdin and stdout, as `nc -l` does, using the relay.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "../lib/outq.h"
#include "cli.h"
#include "deploy.h"
#include "serve.h"

static sk_server *g_server;
/* `sockit relay` is this command with the relay service (relay.c): the
 * stream relay's listening side is an ordinary server. */
/* serve stdio: the listeners a signal must clean up (until the peer is accepted). */
static sk_listener *g_stdio_ls;
static volatile sig_atomic_t g_stdio_n;

/* The first SIGINT/SIGTERM stops gracefully (busy connections get --grace),
 * the second stops now. */
static void on_stop_signal(int sig)
{
    (void)sig;
    static volatile sig_atomic_t seen;
    cli_deploy_stopping(); /* deploy: STOPPING=1 to the service manager */
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

/* deploy: under inetd, stdout is the client's: reports go to the log (fd 2). */
static int g_report_fd = STDOUT_FILENO;

/* Service output: one write per report keeps lines from forked workers whole;
 * the queue keeps a reader that stalls (`| less`, Ctrl-S) from stalling us. */
static void report_line(void *arg, const char *line, size_t len)
{
    (void)arg;
    char small[4096];
    char *buf = len + 1 <= sizeof small ? small : malloc(len + 1);
    if (buf == NULL)
        return;
    memcpy(buf, line, len);
    buf[len] = '\n';
    if (sk__outq_write(g_report_fd, buf, len + 1) < 0 && errno == EPIPE)
        sk_server_stop(g_server); /* nobody reads our output any more */
    if (buf != small)
        free(buf);
}

static void log_line(void *arg, int level, const char *line)
{
    (void)arg;
    if (cli_syslog) { /* deploy: --log syslog */
        syslog(level == SK_LOG_ERROR ? LOG_ERR : LOG_INFO, "%s", line);
        return;
    }
    char buf[640];
    int n = snprintf(buf, sizeof buf, "sockit: %s\n", line);
    if (n > 0)
        sk__outq_write(STDERR_FILENO, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static const char *g_stdout_lines = "report"; /* what goes to stdout, for the notice */

/* From the output queues: lines were dropped, or stdout's reader left. */
static void output_notice(int fd, uint64_t dropped, int e)
{
    if (e == EPIPE) {
        if (fd == STDOUT_FILENO)
            sk_server_stop(g_server);
        return;
    }
    const char *what = fd == STDOUT_FILENO   ? g_stdout_lines
                       : fd == STDERR_FILENO ? "log"
                                             : "access log";
    const char *where = fd == STDOUT_FILENO   ? "stdout"
                        : fd == STDERR_FILENO ? "stderr"
                                              : "the access log";
    char line[200];
    int n =
        e == ENOBUFS
            ? snprintf(line, sizeof line, "sockit: %s is not being read: dropping %s lines\n",
                       where, what)
            : snprintf(line, sizeof line, "sockit: %llu %s lines dropped: %s is not being read\n",
                       (unsigned long long)dropped, what, where);
    if (n > 0)
        sk__outq_write(STDERR_FILENO, line, (size_t)n);
}

/* At the end: what is still queued gets a moment (bounded: the reader may
 * never come back), then what was lost is counted on stderr. */
static void finish_output(void)
{
    sk__outq_flush(sk_now_ms() + 1000);
    sk__outq_flush(sk_now_ms() + 200); /* the notices themselves */
}

static int g_quiet;

/* The server's TLS context, before anything is bound: a bad file is reported
 * first. The ephemeral certificate's pin is printed even with -q (a script
 * needs it, as it needs the port). */
static sk_tls *make_tls(struct serve_cfg *c)
{
    sk_err err;
    sk_tls *tls = sk_tls_server_new(&c->to, &err);
    if (tls == NULL)
        cli_die(&err);
    char fp[80];
    if (sk_tls_is_ephemeral(tls) && sk_tls_fingerprint(tls, fp, sizeof fp) > 0)
        cli_warn("TLS certificate %s (pin it with connect --pin sha256:...)", fp);
    return tls;
}

static void install_signals(void (*handler)(int))
{
    sk_ignore_sigpipe();
    /* A write past a file size limit (RLIMIT_FSIZE: ulimit -f) then fails
     * with EFBIG, which recv refuses cleanly (code 24), instead of SIGXFSZ
     * killing the server. The program decides this, not the library. */
    signal(SIGXFSZ, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The name of one of our own listeners on a's transport and port, if any:
 * "Address already in use" then means the same address was given twice. */
static const char *same_port(const sk_addr *a, const sk_listener *ls, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (ls[j].transport != a->transport)
            continue;
        char host[SK_NAME_MAX];
        unsigned port;
        sk_sockaddr_host_port((const struct sockaddr *)&ls[j].local.sa, ls[j].local.len, host,
                              sizeof host, &port);
        char text[16];
        snprintf(text, sizeof text, "%u", port);
        if (a->transport == SK_UNIX || a->transport == SK_UNIXGRAM
                ? strcmp(ls[j].name + strlen(sk_transport_name(a->transport)) + 1, a->path) == 0
                : strcmp(text, a->port) == 0)
            return ls[j].name;
    }
    return NULL;
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
    sk_listen_opts lo = {.reuseport = c->reuseport}; /* deploy: --reuseport */
    if (c->reuseport && c->o.verbose)
        cli_deploy_migrate_note();
    for (int i = 0; i < c->naddrs; i++) {
        size_t n = 0;
        if (sk_listen(&addrs[i], &lo, ls + total, cap - total, &n, &err) < 0) {
            const char *twice = err.code == EADDRINUSE ? same_port(&addrs[i], ls, total) : NULL;
            for (size_t j = 0; j < total; j++)
                sk_listener_close(&ls[j]);
            if (twice)
                cli_usage("address %s given twice (as \"%s\" too)", twice, c->addrs[i]);
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

/* deploy: SIGHUP rebuilds the access list from the same options and swaps it
 * in; a bad file is one line and the old list stays. The old lists are kept
 * until exit (a thread may be checking a connection against one right now):
 * one list per reload, the honest simple choice. */
static sk_access **g_old_access;
static size_t g_nold;

static void reload_access(struct serve_cfg *c)
{
    if (c->nacc == 0)
        return;
    sk_access *a = sk_access_new();
    if (a == NULL) {
        cli_warn("SIGHUP: out of memory (the old access list stays)");
        return;
    }
    sk_err err;
    for (int i = 0; i < c->nacc; i++) {
        const struct access_arg *x = &c->acc[i];
        int rc = x->file ? sk_access_add_file(a, x->allow, x->arg, &err)
                         : sk_access_add(a, x->allow, x->arg, &err);
        if (rc < 0) {
            log_line(NULL, SK_LOG_ERROR, "SIGHUP: the old access list stays:");
            log_line(NULL, SK_LOG_ERROR, err.msg);
            sk_access_free(a);
            return;
        }
    }
    sk_access **o = realloc(g_old_access, (g_nold + 1) * sizeof *o);
    if (o == NULL) {
        sk_access_free(a);
        return;
    }
    g_old_access = o;
    g_old_access[g_nold++] = (sk_access *)sk_server_set_access(g_server, a);
    c->access = a;
    if (c->o.verbose)
        log_line(NULL, SK_LOG_INFO, "SIGHUP: access files re-read");
}

/* deploy: SIGHUP re-reads --proxy-from-file the same way (the old list is
 * kept until exit, with the old access lists); a bad file keeps the old one. */
static void reload_proxy_from(struct serve_cfg *c)
{
    if (!c->pfrom_files)
        return;
    sk_access *a = sk_access_new();
    sk_access **o = realloc(g_old_access, (g_nold + 1) * sizeof *o);
    if (o != NULL)
        g_old_access = o; /* room for the list this one replaces */
    if (a == NULL || o == NULL) {
        sk_access_free(a);
        cli_warn("SIGHUP: out of memory (the old --proxy-from list stays)");
        return;
    }
    sk_err err;
    for (int i = 0; i < c->npfrom; i++) {
        const struct access_arg *x = &c->pfrom[i];
        int rc =
            x->file ? sk_access_add_file(a, 1, x->arg, &err) : sk_access_add(a, 1, x->arg, &err);
        if (rc < 0) {
            log_line(NULL, SK_LOG_ERROR, "SIGHUP: the old --proxy-from list stays:");
            log_line(NULL, SK_LOG_ERROR, err.msg);
            sk_access_free(a);
            return;
        }
    }
    g_old_access[g_nold++] = (sk_access *)sk_server_set_proxy_from(g_server, a);
    c->proxy_from = a;
    if (c->o.verbose)
        log_line(NULL, SK_LOG_INFO, "SIGHUP: --proxy-from-file re-read");
}

/* SIGHUP, in the server's loop (a thread under the blocking models): every re-read in one place
 * (the TLS certificates' reload joins here). */
static void reload_all(void *arg)
{
    struct serve_cfg *c = arg;
    reload_access(c);
    reload_proxy_from(c);
    sk_err err;
    /* TLS: sk_tls_reload swaps the context under its lock, so every model's
     * new connections get it; fork children are forked with the context of
     * the moment; prefork's workers are replaced by sk_server_reload, which
     * comes last for that reason. Open connections are not touched. */
    if (c->o.tls) {
        char line[SK_ERR_MAX + 80];
        if (sk_tls_reload(c->o.tls, &err) < 0) {
            snprintf(line, sizeof line, "SIGHUP: %s (the old certificates stay in use)", err.msg);
            log_line(NULL, SK_LOG_ERROR, line);
        } else if (!g_quiet) {
            log_line(NULL, SK_LOG_INFO, "SIGHUP: TLS certificates and keys reloaded");
        }
    }
    int r = sk_server_reload(g_server, &err);
    if (r < 0) {
        char line[SK_ERR_MAX + 64];
        snprintf(line, sizeof line, "SIGHUP: %s (the old file stays in use)", err.msg);
        log_line(NULL, SK_LOG_ERROR, line);
    } else if (r > 0 && c->o.verbose) {
        log_line(NULL, SK_LOG_INFO, "SIGHUP: the service's files re-read");
    }
}

static int serve(int argc, char **argv, int relay)
{
    struct serve_cfg c = {.relay = relay};
    cli_deploy_early(argc, argv, &c.d); /* deploy: before any message */
    sk_notify_enabled();                /* read and unset NOTIFY_SOCKET before any child */
    cli__serve_parse(argc, argv, &c);
    if (c.relay_dgram) { /* UDP to UDP: its own loop (relay.c) */
        int rc = cli_relay_udp(&c.o, c.addrs[0], c.relay_target, c.quiet);
        sk_service_config_free(c.o.service, c.config);
        sk_access_free(c.access);
        free(c.acc);
        return rc;
    }
    if (c.inetd)
        g_report_fd = STDERR_FILENO;
    c.o.report = c.quiet ? NULL : report_line;
    c.o.log = log_line;
    sk__outq_set_notify(output_notice);

    sk_listener ls[MAX_LISTENERS];
    sk_err err;
    sk_server *s = NULL;
    g_quiet = c.quiet;
    if (c.tls)
        c.o.tls = make_tls(&c);
    if (c.o.service) {
        /* Create the server first: a service/model mismatch is a usage error
         * and should not wait for the addresses to bind. */
        s = sk_server_new(&c.o, &err);
        if (s == NULL)
            cli_die(&err);
    }
    install_signals(s ? on_stop_signal : on_stdio_signal);
    g_server = s;
    if (s && c.inetd == 1) { /* deploy: the one connection on standard input */
        int rc = sk_server_serve_fd(s, c.d.conn_fd, &err);
        g_server = NULL;
        sk_server_free(s);
        sk_tls_free(c.o.tls);
        sk_service_config_free(c.o.service, c.config);
        sk_access_free(c.access);
        sk_access_free(c.proxy_from);
        free(c.pfrom);
        free(c.acc);
        finish_output();
        if (rc < 0)
            cli_die(&err);
        return 0;
    }
    /* SIGHUP re-reads the access files, the service's files and the TLS
     * certificates (reload_all, in the server's loop or a thread of ours),
     * which also tells systemd. */
    if (s) {
        cli_deploy_signals(s,
                           c.nacc > 0 || c.svc_files || c.o.tls || c.pfrom_files ||
                                   sk_notify_enabled()
                               ? reload_all
                               : NULL,
                           &c);
        if (c.inetd == 0)
            cli_deploy_upgrade_init(argv - 1, s); /* SIGUSR2: main's argv */
    }
    if (c.inetd == 0 && s)
        cli_deploy_handover(&c.addrs, &c.naddrs); /* SIGUSR2: the old process's sockets */
    size_t n = open_listeners(&c, ls, MAX_LISTENERS);
    if (s == NULL) {
        g_stdio_ls = ls;
        g_stdio_n = (sig_atomic_t)n;
        struct cli_stdio_opts so = {.verbose = c.o.verbose,
                                    .keep_open = c.keep_open,
                                    .idle_timeout_ms = c.o.idle_timeout_ms,
                                    .access = c.access};
        return cli_serve_stdio(ls, n, &so, &g_stdio_n);
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
        if (c.o.service->describe(c.config, &ls[i], line, sizeof line) > 0) {
            char *u = c.o.tls ? strstr(line, "http://") : NULL;
            if (u) /* where to point a browser: the scheme it must use */
                cli_warn("%.*shttps://%s", (int)(u - line), line, u + strlen("http://"));
            else
                cli_warn("%s", line);
        }
    }
    if (c.inetd == 2)
        cli_deploy_idle_exit(s, c.idle_exit_ms, c.o.verbose);
    cli_deploy_ready(); /* every listener is open: READY=1 (NOTIFY_SOCKET) */
    int rc = sk_server_run(s, &err);
    cli_deploy_stopped();
    cli_deploy_end_reloads(); /* then the TLS context and access lists may go */
    g_server = NULL;
    sk_server_free(s);
    sk_tls_free(c.o.tls);
    sk_service_config_free(c.o.service, c.config);
    sk_access_free(c.access);
    sk_access_free(c.proxy_from);
    free(c.pfrom);
    for (size_t i = 0; i < g_nold; i++)
        sk_access_free(g_old_access[i]);
    free(g_old_access);
    free(c.acc);
    finish_output();
    if (rc < 0)
        cli_die(&err);
    return 0;
}

int cli_serve(int argc, char **argv)
{
    return serve(argc, argv, 0);
}

int cli_relay(int argc, char **argv)
{
    return serve(argc, argv, 1);
}
