/*
 * serve_opts.c - the command line of `sockit serve` and `sockit relay`: the
 * help text, the common options, each service's own options (from its
 * sk_svc_option table), and the checks that join them. serve.c runs what
 * this fills in.
 */
#define _GNU_SOURCE /* getopt_long */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"

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
                          int first, int relay)
{
    size_t nl = ncommon;
    memcpy(longs, common, ncommon * sizeof *common);
    const sk_service *relay_svc[] = {sk_forward_service(), NULL}; /* relay: its options first */
    for (const sk_service *const *s = relay ? relay_svc : sk_services(); *s;
         s = (*s == relay_svc[0] ? sk_services() : s + 1)) {
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

void cli__serve_parse(int argc, char **argv, struct serve_cfg *c)
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
    size_t nl = all_options(longs, common, ncommon, O_SVC, c->relay);
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
    while ((ch = getopt_long(dd, argv, c->relay ? ":vqkhw:" : ":vqkh", longs, NULL)) != -1) {
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
        default: cli_bad_option(c->relay ? "relay" : "serve", ch, argv);
        }
    }
    if (help) { /* `serve http --help`: the service's own options too */
        if (c->relay)
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
    if (c->relay && dd < argc) { /* relay: a "--" only ends the options */
        memmove(argv + dd, argv + dd + 1, (size_t)(argc - dd) * sizeof *argv);
        argc--;
        dd = argc;
    }
    if (c->relay) /* LISTEN_ADDRESS TARGET_ADDRESS: checked there, taken apart here */
        argc = cli_relay_words(argc, argv, optind, c->inetd, &c->relay_target, &c->relay_dgram);
    if (c->relay && !c->relay_dgram)
        given[ngiven++] = (struct svc_arg){"target", c->relay_target};
    if (c->relay && c->relay_dgram && ngiven > 0)
        cli_usage("--%s is for stream relays (a datagram relay takes --idle-timeout)",
                  given[0].name);
    if (optind >= argc)
        cli_usage("serve: missing SERVICE (see sockit serve --help)");
    c->service = c->relay ? "relay" : argv[optind++];
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
    if (!c->relay && strcmp(c->service, "stdio") != 0 && sk_service_find(c->service) == NULL &&
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
    const sk_service *svc = c->relay                           ? sk_forward_service()
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
    if (c->tls && c->to.alpn == NULL)
        c->to.alpn = svc->alpn; /* the service's own (http: what a browser needs to hear) */
    c->to.pairs = c->pairs;
}
