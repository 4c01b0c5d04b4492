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

#define MAX_LISTENERS 64
#define MAX_TLS_PAIRS 16

struct serve_cfg {
    sk_server_opts o;
    void *config; /* the service's settings, from its own options */
    const char *service;
    int quiet;
    int keep_open; /* stdio: -k */
    char **addrs;
    int naddrs;
    sk_access *access; /* --allow/--deny/--allow-file/--deny-file, NULL if none */
    /* TLS: any of its options implies --tls */
    int tls;
    sk_tls_server_opts to;
    sk_tls_pair pairs[MAX_TLS_PAIRS];
    /* deploy: --inetd (1) / --inetd-wait (2), --idle-exit, --log, --reuseport */
    int inetd;
    int idle_exit_ms;
    int reuseport;
    struct cli_deploy d;
    char wait_addr[32]; /* --inetd-wait: "fd:N", the socket from descriptor 0 */
    char *wait_addrs[1];
    struct access_arg { /* the access options in order, replayed on SIGHUP */
        int allow, file;
        const char *arg;
    } * acc;
    int nacc;
    int svc_files;            /* a file option of a service that re-reads on SIGHUP (http --auth) */
    sk_access *proxy_from;    /* --proxy-from/--proxy-from-file, NULL: loopback and unix */
    struct access_arg *pfrom; /* the same, replayed on SIGHUP when a file is among them */
    int npfrom, pfrom_files;
};

static sk_server *g_server;
/* `sockit relay` is this command with the relay service (relay.c): the
 * stream relay's listening side is an ordinary server. */
static int g_relay;
static const char *g_relay_target;
static int g_relay_dgram; /* a datagram LISTEN_ADDRESS: sk_forward_udp instead */
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
        fprintf(f, "usage: sockit serve [OPTIONS] %s ADDRESS...%s%s\n\n%s: %s\n", svc->name,
                svc->args_usage ? " -- " : "", svc->args_usage ? svc->args_usage : "", svc->name,
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
            "  --allow SPEC          serve only peers SPEC names (repeatable; with --deny,\n"
            "                        checked in the order given, first match wins)\n"
            "  --deny SPEC           refuse peers SPEC names (repeatable). SPEC: an IPv4 or\n"
            "                        IPv6 address or CIDR (10.0.0.0/8, 2001:db8::/32, ::1),\n"
            "                        or unix. Given any --allow, unmatched peers are refused\n"
            "  --allow-file FILE     --allow for each line of FILE (# comments)\n"
            "  --deny-file FILE      --deny for each line of FILE\n"
            "  --max-per-source N    at most N connections at once per source address (IPv6:\n"
            "                        per /64); only that source is refused\n"
            "  --rate R/s[,burst=B]  at most R new connections (datagrams) per second per\n"
            "                        source, B at once (default B = R)\n"
            "  --reuseport           SO_REUSEPORT: several sockit processes share the port,\n"
            "                        and with --workers N each loop has its own socket\n"
            "  --inetd               no ADDRESS: serve the one connection on standard input\n"
            "                        and exit (inetd nowait, systemd Accept=yes)\n"
            "  --inetd-wait          no ADDRESS: standard input is a listening or datagram\n"
            "                        socket; serve it until idle (inetd wait)\n"
            "  --idle-exit SECS      --inetd-wait: exit when idle this long (default 10)\n"
            "  --log FILE|syslog     messages (and reports, with --inetd*) go to FILE or\n"
            "                        syslog; with --inetd* the default is nowhere: only the\n"
            "                        service's bytes reach descriptors 0, 1 and 2\n"
            "  --proxy-protocol      every connection starts with a PROXY protocol header (v1\n"
            "                        or v2, as HAProxy's send-proxy[-v2]); its client address\n"
            "                        is the peer for --allow/--deny, limits, logs, services\n"
            "  --proxy-from SPEC     proxies trusted to send it (repeatable, SPEC as --allow;\n"
            "                        default 127.0.0.0/8, ::1 and unix); implies the above\n"
            "  --proxy-from-file FILE  --proxy-from for each line of FILE (# comments)\n"
            "  --proxy-timeout SECS  close a connection whose header is not in by then\n"
            "                        (default 3)\n"
            "  -v, --verbose         log each connection on stderr\n"
            "  -q, --quiet           no service output, no messages but errors\n"
            "  -k, --keep-open       stdio: after a client leaves, wait for the next (nc -lk)\n"
            "  -h, --help            this text (sockit serve SERVICE --help: its options too)\n"
            "\nTLS (stream services; any of these implies --tls):\n"
            "  --tls                 speak TLS 1.2/1.3; without --cert an ephemeral certificate\n"
            "                        is made and its pin printed on stderr\n"
            "  --cert FILE           certificate (PEM, leaf then chain); repeatable: the first\n"
            "                        is the default, others are chosen by the client's SNI\n"
            "  --key FILE            the private key of the --cert before it (default: in it)\n"
            "  --client-ca FILE      ask for client certificates, verified against FILE/DIR\n"
            "  --require-client-cert refuse clients without one (needs --client-ca)\n"
            "  --alpn LIST           protocols offered, comma-separated (http: http/1.1)\n"
            "  --tls-handshake-timeout SECS  close a handshake not done by then (default 10)\n"
            "SIGHUP re-reads the certificates and keys (open connections go on).\n");
    for (const sk_service *const *s = sk_services(); *s; s++) {
        if ((svc && *s != svc) || (*s)->options == NULL || (*s)->options->name == NULL)
            continue;
        fprintf(f, "\n%s only:\n", (*s)->name);
        for (const sk_svc_option *o = (*s)->options; o->name; o++)
            option_help(f, o->name, o->arg, o->help);
    }
    if (svc && strcmp(svc->name, "exec") == 0)
        fprintf(f, "\nexec runs PROGRAM (no shell; --sh 'COMMAND' for one) for each connection,\n"
                   "its stdin and stdout joined to it, in its own process group: at the end of\n"
                   "the connection (or of the server) the group gets SIGTERM, then SIGKILL after\n"
                   "--grace. Its stderr goes to sockit's, each line after the client's address.\n"
                   "On a datagram address, each datagram runs PROGRAM with the datagram on stdin;\n"
                   "its stdout (up to 64 KiB) is the reply. The environment holds only PATH,\n"
                   "--env and --pass-env, and: PROTO (TCP, TCP6, UNIX; UDP, UDP6), TCPREMOTEIP,\n"
                   "TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT, REMOTE_ADDR, REMOTE_PORT, and for\n"
                   "Unix clients UNIXREMOTEPID, UNIXREMOTEEUID, UNIXREMOTEEGID.\n");
    fprintf(f, "\nWith port 0 the kernel picks a port; the address bound is printed on stderr as\n"
               "\"sockit: listening on ADDRESS\" (also with -v).\n"
               "ADDRESS may also be a socket handed over: fd:N (descriptor N), sd:NAME or sd:\n"
               "(systemd socket activation). With NOTIFY_SOCKET set, READY=1, RELOADING=1 and\n"
               "STOPPING=1 are sent (Type=notify). SIGHUP re-reads --allow-file/--deny-file,\n"
               "--proxy-from-file and http's --auth; SIGUSR2 starts the program again (a new\n"
               "binary, same arguments), hands it the listening sockets, then stops (--grace).\n");
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

/* "ack, echo, ..., stdio" for messages. */
static const char *service_names(void)
{
    static char names[256];
    names[0] = '\0';
    for (const sk_service *const *s = sk_services(); *s; s++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s, ", (*s)->name);
    snprintf(names + strlen(names), sizeof names - strlen(names), "stdio");
    return names;
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
    const sk_service *relay[] = {sk_forward_service(), NULL}; /* relay: its options first */
    for (const sk_service *const *s = g_relay ? relay : sk_services(); *s;
         s = (*s == relay[0] ? sk_services() : s + 1)) {
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

/* --allow, --deny, --allow-file, --deny-file: into one list, in the order given. */
static void access_option(struct serve_cfg *c, int allow, int file, const char *arg)
{
    sk_err err;
    if (c->access == NULL && (c->access = sk_access_new()) == NULL)
        cli_fail("out of memory");
    c->o.access = c->access;
    struct access_arg *na = realloc(c->acc, (size_t)(c->nacc + 1) * sizeof *na);
    if (na == NULL)
        cli_fail("out of memory");
    c->acc = na;
    c->acc[c->nacc++] = (struct access_arg){allow, file, arg};
    int rc = file ? sk_access_add_file(c->access, allow, arg, &err)
                  : sk_access_add(c->access, allow, arg, &err);
    if (rc < 0) {
        if (!file && err.usage) /* name the option; a file's messages name the file */
            cli_usage("%s: %s", allow ? "--allow" : "--deny", err.msg);
        cli_die(&err);
    }
}

/* --proxy-from SPEC, --proxy-from-file FILE: the proxies trusted to send a
 * PROXY header (the --allow grammar). Either implies --proxy-protocol. */
static void proxy_from_option(struct serve_cfg *c, int file, const char *arg)
{
    sk_err err;
    if (c->proxy_from == NULL && (c->proxy_from = sk_access_new()) == NULL)
        cli_fail("out of memory");
    c->o.proxy_from = c->proxy_from;
    c->o.proxy_protocol = 1;
    struct access_arg *na = realloc(c->pfrom, (size_t)(c->npfrom + 1) * sizeof *na);
    if (na == NULL)
        cli_fail("out of memory");
    c->pfrom = na;
    c->pfrom[c->npfrom++] = (struct access_arg){1, file, arg};
    c->pfrom_files |= file;
    int rc = file ? sk_access_add_file(c->proxy_from, 1, arg, &err)
                  : sk_access_add(c->proxy_from, 1, arg, &err);
    if (rc < 0) {
        if (!file && err.usage)
            cli_usage("--proxy-from: %s", err.msg);
        cli_die(&err);
    }
}

/* --rate R/s[,burst=B]: R new connections (datagrams) per second per source. */
static void parse_rate(struct serve_cfg *c, const char *arg)
{
    const char *form = "expected R/s or R/s,burst=B (e.g. 10/s,burst=20)";
    char *end;
    errno = 0;
    double r = strtod(arg, &end);
    if (end == arg || arg[0] < '0' || arg[0] > '9' || errno || !(r > 0) || r > 1e6 ||
        strncmp(end, "/s", 2) != 0)
        cli_usage("--rate \"%s\": %s, R a number above 0 (at most 1000000)", arg, form);
    end += 2;
    c->o.rate = r;
    if (*end == '\0')
        return;
    if (strncmp(end, ",burst=", 7) != 0)
        cli_usage("--rate \"%s\": %s", arg, form);
    c->o.burst = (int)cli_number("--rate burst", end + 7, 1, 1000000);
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
        O_ALLOW,
        O_DENY,
        O_ALLOW_FILE,
        O_DENY_FILE,
        O_PER_SOURCE,
        O_RATE,
        O_TLS,
        O_CERT,
        O_KEY,
        O_CLIENT_CA,
        O_REQUIRE_CC,
        O_ALPN,
        O_HS_TIMEOUT,
        O_REUSEPORT,
        O_INETD,
        O_INETD_WAIT,
        O_IDLE_EXIT,
        O_LOG,
        O_PROXY,
        O_PROXY_FROM,
        O_PROXY_FROM_FILE,
        O_PROXY_TIMEOUT,
        O_SVC = 1024
    };
    static const struct option common[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"workers", required_argument, NULL, O_WORKERS},
        {"once", no_argument, NULL, O_ONCE},
        {"max-conns", required_argument, NULL, O_MAXCONNS},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"grace", required_argument, NULL, O_GRACE},
        {"allow", required_argument, NULL, O_ALLOW},
        {"deny", required_argument, NULL, O_DENY},
        {"allow-file", required_argument, NULL, O_ALLOW_FILE},
        {"deny-file", required_argument, NULL, O_DENY_FILE},
        {"max-per-source", required_argument, NULL, O_PER_SOURCE},
        {"rate", required_argument, NULL, O_RATE},
        {"reuseport", no_argument, NULL, O_REUSEPORT},
        {"inetd", no_argument, NULL, O_INETD},
        {"inetd-wait", no_argument, NULL, O_INETD_WAIT},
        {"idle-exit", required_argument, NULL, O_IDLE_EXIT},
        {"log", required_argument, NULL, O_LOG},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"keep-open", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {"tls", no_argument, NULL, O_TLS},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"client-ca", required_argument, NULL, O_CLIENT_CA},
        {"require-client-cert", no_argument, NULL, O_REQUIRE_CC},
        {"alpn", required_argument, NULL, O_ALPN},
        {"tls-handshake-timeout", required_argument, NULL, O_HS_TIMEOUT},
        {"proxy-protocol", no_argument, NULL, O_PROXY},
        {"proxy-from", required_argument, NULL, O_PROXY_FROM},
        {"proxy-from-file", required_argument, NULL, O_PROXY_FROM_FILE},
        {"proxy-timeout", required_argument, NULL, O_PROXY_TIMEOUT},
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
    /* exec: `ADDRESS... -- PROGRAM ARGS`: options end at the first "--" (the
     * program's own options are not ours), and getopt, which would move that
     * "--" before the words it skipped, only sees what comes before it. */
    int dd = argc;
    for (int i = 1; i < argc && dd == argc; i++)
        if (strcmp(argv[i], "--") == 0)
            dd = i;
    while ((ch = getopt_long(dd, argv, g_relay ? ":vqkhw:" : ":vqkh", longs, NULL)) != -1) {
        if (ch >= O_SVC && ch < O_SVC + (int)(nl - ncommon)) {
            given[ngiven++] = (struct svc_arg){longs[ncommon + (size_t)(ch - O_SVC)].name, optarg};
            continue;
        }
        if (ch == 'w') { /* relay -w SECS, as connect's */
            given[ngiven++] = (struct svc_arg){"connect-timeout", optarg};
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
        case O_ALLOW:
        case O_DENY:
        case O_ALLOW_FILE:
        case O_DENY_FILE:
            access_option(c, ch == O_ALLOW || ch == O_ALLOW_FILE,
                          ch == O_ALLOW_FILE || ch == O_DENY_FILE, optarg);
            break;
        case O_PER_SOURCE:
            c->o.max_per_source = (int)cli_number("--max-per-source", optarg, 1, 1000000);
            break;
        case O_RATE: parse_rate(c, optarg); break;
        case O_REUSEPORT: c->reuseport = c->o.reuseport = 1; break;
        case O_INETD:
        case O_INETD_WAIT:
            if (c->inetd && c->inetd != (ch == O_INETD ? 1 : 2))
                cli_usage("--inetd and --inetd-wait contradict each other");
            c->inetd = ch == O_INETD ? 1 : 2;
            break;
        case O_IDLE_EXIT: c->idle_exit_ms = cli_seconds_ms("--idle-exit", optarg); break;
        case O_LOG: /* done before parsing (cli_deploy_early) */
            if (!c->d.log_seen)
                cli_usage("spell out --log in full (it must be seen before anything else)");
            break;
        case 'v': c->o.verbose = 1; break;
        case 'q': c->quiet = 1; break;
        case 'k': c->keep_open = 1; break;
        case 'h': help = 1; break;
        case O_TLS: c->tls = 1; break;
        case O_CERT:
            if (c->to.npairs == MAX_TLS_PAIRS)
                cli_usage("--cert: at most %d certificates", MAX_TLS_PAIRS);
            c->tls = 1, c->pairs[c->to.npairs++].cert = optarg;
            break;
        case O_KEY:
            if (c->to.npairs == 0 || c->pairs[c->to.npairs - 1].key)
                cli_usage("--key %s: give it after its --cert FILE", optarg);
            c->tls = 1, c->pairs[c->to.npairs - 1].key = optarg;
            break;
        case O_CLIENT_CA: c->tls = 1, c->to.client_ca = optarg; break;
        case O_REQUIRE_CC: c->tls = 1, c->to.require_client_cert = 1; break;
        case O_ALPN: c->tls = 1, c->to.alpn = optarg; break;
        case O_HS_TIMEOUT:
            c->tls = 1;
            c->o.tls_handshake_timeout_ms = cli_seconds_ms("--tls-handshake-timeout", optarg);
            if (c->o.tls_handshake_timeout_ms == 0)
                cli_usage("--tls-handshake-timeout: give a time above 0");
            break;
        case O_PROXY: c->o.proxy_protocol = 1; break;
        case O_PROXY_FROM:
        case O_PROXY_FROM_FILE: proxy_from_option(c, ch == O_PROXY_FROM_FILE, optarg); break;
        case O_PROXY_TIMEOUT:
            c->o.proxy_protocol = 1;
            c->o.proxy_timeout_ms = cli_seconds_ms("--proxy-timeout", optarg);
            if (c->o.proxy_timeout_ms == 0)
                cli_usage("--proxy-timeout: give a time above 0");
            break;
        default: cli_bad_option(g_relay ? "relay" : "serve", ch, argv);
        }
    }
    if (help) { /* `serve http --help`: the service's own options too */
        if (g_relay)
            cli_relay_help(stdout);
        else
            serve_help(stdout, optind < dd ? sk_service_find(argv[optind]) : NULL);
        exit(0);
    }
    if (c->quiet && c->o.verbose)
        cli_usage("-q and -v contradict each other");
    if (optind == dd && dd < argc) { /* `serve -- echo 8080`: all words after "--" */
        optind = dd + 1;
        dd = argc;
    }
    if (g_relay && dd < argc) { /* relay: a "--" only ends the options */
        memmove(argv + dd, argv + dd + 1, (size_t)(argc - dd) * sizeof *argv);
        argc--;
        dd = argc;
    }
    if (g_relay) /* LISTEN_ADDRESS TARGET_ADDRESS: checked there, taken apart here */
        argc = cli_relay_words(argc, argv, optind, c->inetd, &g_relay_target, &g_relay_dgram);
    if (g_relay && !g_relay_dgram)
        given[ngiven++] = (struct svc_arg){"target", g_relay_target};
    if (g_relay && g_relay_dgram && ngiven > 0)
        cli_usage("--%s is for stream relays (a datagram relay takes --idle-timeout)",
                  given[0].name);
    if (optind >= argc)
        cli_usage("serve: missing SERVICE (see sockit serve --help)");
    c->service = g_relay ? "relay" : argv[optind++];
    /* The words after "--": a service's (exec's program), else more addresses. */
    const sk_service *args_svc = sk_service_find(c->service);
    char **words_after = NULL;
    int nwords_after = 0;
    if (dd < argc && args_svc && args_svc->args) {
        words_after = argv + dd + 1;
        nwords_after = argc - dd - 1;
        argc = dd;
    } else if (dd < argc) {
        memmove(argv + dd, argv + dd + 1, (size_t)(argc - dd) * sizeof *argv);
        argc--; /* the "--" is gone; argv[argc] is NULL again */
    }
    sk_addr a;
    if (!g_relay && strcmp(c->service, "stdio") != 0 && sk_service_find(c->service) == NULL &&
        sk_addr_parse(&a, c->service, NULL) == 0) /* `sockit serve 8080` */
        cli_usage("\"%s\" is an address; the service comes first: sockit serve SERVICE "
                  "ADDRESS (services: %s)",
                  c->service, service_names());
    if (c->inetd && optind < argc)
        cli_usage("%s takes no ADDRESS (the socket is on standard input): \"%s\"",
                  c->inetd == 1 ? "--inetd" : "--inetd-wait", argv[optind]);
    if (c->inetd && c->d.conn_fd < 0) /* an abbreviation the early scan did not see */
        cli_usage("spell out %s in full (it must be seen before anything else)",
                  c->inetd == 1 ? "--inetd" : "--inetd-wait");
    if (c->idle_exit_ms && c->inetd != 2)
        cli_usage("--idle-exit is for --inetd-wait");
    if (c->inetd == 2) { /* adopt the socket from descriptor 0 as a listener */
        if (c->idle_exit_ms == 0)
            c->idle_exit_ms = 10000;
        snprintf(c->wait_addr, sizeof c->wait_addr, "fd:%d", c->d.conn_fd);
        c->wait_addrs[0] = c->wait_addr;
        c->addrs = c->wait_addrs;
        c->naddrs = 1;
    } else if (c->inetd == 0) {
        if (optind >= argc)
            cli_usage("serve %s: missing ADDRESS (e.g. 8080, udp://:7, unix:/tmp/s)", c->service);
        c->addrs = argv + optind;
        c->naddrs = argc - optind;
    }
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
    if (strcmp(c->service, "stdio") == 0 && (c->o.max_per_source || c->o.rate > 0))
        cli_usage("--max-per-source and --rate are not for the stdio service (it serves one "
                  "client at a time); --allow and --deny are");
    if (c->inetd && strcmp(c->service, "stdio") == 0)
        cli_usage("--inetd and --inetd-wait are not for the stdio service (the connection is "
                  "already on standard input and output)");
    if (c->keep_open && strcmp(c->service, "stdio") != 0)
        cli_usage("-k/--keep-open is an option of the stdio service, not of %s", c->service);
    const sk_service *svc = g_relay                            ? sk_forward_service()
                            : strcmp(c->service, "stdio") != 0 ? sk_service_find(c->service)
                                                               : NULL;
    for (size_t i = 0; i < ngiven; i++)
        if (svc == NULL || sk_service_option(svc, given[i].name) == NULL)
            cli_usage("--%s is an option of the %s service, not of %s", given[i].name,
                      option_owner(given[i].name)->name, c->service);
    if (strcmp(c->service, "stdio") != 0) {
        c->o.service = svc;
        if (c->o.service == NULL) {
            cli_usage("unknown service \"%s\" (%s)", c->service, service_names());
        }
        sk_err err;
        if ((c->config = sk_service_config_new(svc, &err)) == NULL)
            cli_die(&err);
        for (size_t i = 0; i < ngiven; i++) {
            if (sk_service_set(svc, c->config, given[i].name, given[i].value, &err) < 0)
                cli_die(&err);
            const sk_svc_option *so = sk_service_option(svc, given[i].name);
            if (svc->reload && so && so->kind == SK_OPT_PATH)
                c->svc_files = 1; /* deploy: SIGHUP has something to re-read */
        }
        if (words_after && sk_service_set_args(svc, c->config, nwords_after, words_after, &err) < 0)
            cli_die(&err);
        c->o.service_config = c->config;
    }
    free(given);
    given = NULL;
    if (c->tls && svc == NULL)
        cli_usage("serve stdio does not speak TLS (use a service, or socat OPENSSL-LISTEN:)");
    if (c->to.require_client_cert && c->to.client_ca == NULL)
        cli_usage("--require-client-cert needs --client-ca FILE (the CA client certificates "
                  "are checked against)");
    if (c->o.proxy_protocol && svc == NULL)
        cli_usage("serve stdio does not take the PROXY protocol (use a service)");
    for (int i = 0; c->o.proxy_protocol && i < c->naddrs; i++)
        if (sk_addr_parse(&a, c->addrs[i], NULL) == 0 && !sk_transport_is_stream(a.transport))
            cli_usage("--proxy-protocol needs stream addresses: %s is a datagram address (PROXY "
                      "v2 over datagrams is not supported)",
                      c->addrs[i]);
    for (int i = 0; c->tls && i < c->naddrs; i++) /* before the context is made */
        if (sk_addr_parse(&a, c->addrs[i], NULL) == 0 && !sk_transport_is_stream(a.transport))
            cli_usage("--tls needs stream addresses: %s is a datagram address (DTLS is not "
                      "supported)",
                      c->addrs[i]);
    if (c->tls && c->to.alpn == NULL && strcmp(svc->name, "http") == 0)
        c->to.alpn = "http/1.1"; /* what a browser or curl needs to hear */
    c->to.pairs = c->pairs;
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

/* SIGHUP, in the deploy thread: every re-read in one place (the TLS
 * certificates' reload joins here). */
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

int cli_relay(int argc, char **argv)
{
    g_relay = 1;
    return cli_serve(argc, argv);
}

int cli_serve(int argc, char **argv)
{
    struct serve_cfg c = {0};
    cli_deploy_early(argc, argv, &c.d); /* deploy: before any message */
    sk_notify_enabled();                /* read and unset NOTIFY_SOCKET before any child */
    parse(argc, argv, &c);
    if (g_relay_dgram) { /* UDP to UDP: its own loop (relay.c) */
        int rc = cli_relay_udp(&c.o, c.addrs[0], g_relay_target, c.quiet);
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
     * certificates (reload_all, in the deploy thread), which also tells systemd. */
    if (s) {
        cli_deploy_signals(c.nacc > 0 || c.svc_files || c.o.tls || c.pfrom_files ||
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
