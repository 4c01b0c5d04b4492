/*
 * relay.c - `sockit relay [OPTIONS] LISTEN_ADDRESS TARGET_ADDRESS`
 *
 * A stream relay (TCP or Unix on either side) is `serve` with the relay
 * service (sk_forward_service): serve.c parses the options (every common
 * option of serve: models, access lists, limits, TLS on the listening side,
 * --reuseport, --grace ...) and runs the server; this file holds what is the
 * relay's own: its help, its two address words, and the UDP relay, which
 * is a loop of its own in the library (sk_forward_udp).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

void cli_relay_help(FILE *f)
{
    fprintf(f,
            "usage: sockit relay [OPTIONS] LISTEN_ADDRESS TARGET_ADDRESS\n"
            "\n"
            "Forwards every connection to LISTEN_ADDRESS to TARGET_ADDRESS: TCP or Unix on\n"
            "either side, or UDP to UDP (one upstream socket per client). Each direction's\n"
            "end of stream is passed on by itself; a connection closes when both are done.\n"
            "The target is resolved for every connection and each of its addresses tried.\n"
            "\n"
            "Options:\n"
            "  -w, --connect-timeout SECS  give up on an address of the target after SECS\n"
            "                        (then the next is tried; default: the kernel's)\n"
            "  --linger SECS         close SECS after the first direction ended (default:\n"
            "                        only when both have)\n"
            "  --idle-timeout SECS   close connections (UDP: sessions, default 60) idle this\n"
            "                        long\n"
            "  --no-splice           copy through user space even where splice(2) works\n"
            "  --send-proxy v1|v2    a PROXY protocol header to the target first, naming the\n"
            "                        client (as HAProxy's send-proxy[-v2]; stream relays)\n"
            "  --model MODEL         concurrency model (sockit serve --help; default %s)\n"
            "  --workers N           processes/threads/loops, for models that use them\n"
            "  --max-conns N         at most N connections at once\n"
            "  --grace SECS          on SIGINT/SIGTERM, time open connections get (default 10)\n"
            "  --allow SPEC, --deny SPEC, --allow-file FILE, --deny-file FILE\n"
            "                        who may connect (as for serve; UDP too)\n"
            "  --max-per-source N    connections (UDP: sessions) at once per source\n"
            "  --rate R/s[,burst=B]  new connections (sessions) per second per source\n"
            "  --reuseport           SO_REUSEPORT on the listening socket\n"
            "  --tls, --cert FILE, --key FILE, --client-ca FILE, --require-client-cert,\n"
            "  --alpn LIST           TLS on the listening side (the target gets plain bytes)\n"
            "  -v, --verbose         one line per connection: client, target endpoint, bytes\n"
            "                        each way, duration, which side closed first (or why the\n"
            "                        target could not be reached)\n"
            "  -q, --quiet           no messages but errors\n"
            "  -h, --help            this text\n"
            "\n"
            "Examples:\n"
            "  sockit relay 8080 example.com:80\n"
            "  sockit relay tcp://127.0.0.1:5432 unix:/run/postgresql/.s.PGSQL.5432\n"
            "  sockit relay udp://:5353 udp://10.0.0.53:53 --idle-timeout 30\n"
            "With port 0 the kernel picks a port, printed as \"sockit: listening on ADDRESS\".\n",
            sk_model_default());
}

int cli_relay_words(int argc, char **argv, int optind_, int inetd, const char **target, int *dgram)
{
    const char *usage = "usage: sockit relay [OPTIONS] LISTEN_ADDRESS TARGET_ADDRESS";
    if (inetd)
        cli_usage("relay: --inetd and --inetd-wait are for serve");
    if (argc - optind_ < 2)
        cli_usage("relay: missing %s (%s)",
                  argc == optind_ ? "LISTEN_ADDRESS and TARGET_ADDRESS" : "TARGET_ADDRESS", usage);
    if (argc - optind_ > 2)
        cli_usage("relay: one LISTEN_ADDRESS and one TARGET_ADDRESS, not also \"%s\" (%s)",
                  argv[optind_ + 2], usage);
    sk_addr l, t;
    sk_err err;
    if (sk_addr_parse(&l, argv[optind_], &err) < 0)
        cli_usage("relay: LISTEN_ADDRESS: %s", err.msg);
    if (sk_addr_parse(&t, argv[optind_ + 1], &err) < 0)
        cli_usage("relay: TARGET_ADDRESS: %s", err.msg);
    if (t.inherit)
        cli_usage("relay: TARGET_ADDRESS \"%s\": fd: and sd: name sockets to listen on",
                  argv[optind_ + 1]);
    int ls = sk_transport_is_stream(l.transport), ts = sk_transport_is_stream(t.transport);
    if (ls != ts)
        cli_usage("relay: %s is a %s address and %s a %s one: relay stream to stream (tcp, "
                  "unix) or datagram to datagram (udp)",
                  argv[optind_], ls ? "stream" : "datagram", argv[optind_ + 1],
                  ts ? "stream" : "datagram");
    *target = argv[optind_ + 1];
    *dgram = !ls;
    return optind_ + 1;
}

/* ---- UDP ---- */

static int g_stop_wr = -1;

static void on_udp_stop(int sig)
{
    (void)sig;
    int e = errno;
    ssize_t r = write(g_stop_wr, "s", 1);
    (void)r; /* a full pipe already says stop */
    errno = e;
}

static void udp_log(void *arg, int level, const char *line)
{
    (void)arg;
    (void)level;
    cli_warn("%s", line);
}

int cli_relay_udp(const sk_server_opts *o, const char *listen, const char *target, int quiet)
{
    sk_addr la, ta;
    sk_err err;
    if (sk_addr_parse(&la, listen, &err) < 0 || sk_addr_parse(&ta, target, &err) < 0)
        cli_die(&err);
    if (o->tls)
        cli_usage("relay: --tls needs stream addresses (DTLS is not supported)");
    sk_limits *limits = NULL;
    if (o->max_per_source > 0 || o->rate > 0) {
        limits = sk_limits_new(o->max_per_source, o->rate, o->burst, 0, &err);
        if (limits == NULL)
            cli_die(&err);
    }
    int stop[2];
    if (pipe2(stop, O_CLOEXEC | O_NONBLOCK) < 0)
        cli_fail("pipe: %s", strerror(errno));
    g_stop_wr = stop[1];
    sk_ignore_sigpipe();
    struct sigaction sa = {0};
    sa.sa_handler = on_udp_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    sk_listener ls[SK_RESOLVE_MAX];
    size_t n = 0;
    sk_listen_opts lo = {.reuseport = o->reuseport};
    if (sk_listen(&la, &lo, ls, SK_RESOLVE_MAX, &n, &err) < 0)
        cli_die(&err);
    for (size_t i = 1; i < n; i++) /* a name giving several: the first one serves */
        sk_listener_close(&ls[i]);
    int port0 = la.port[0] == '0' && la.port[1] == '\0';
    if (port0 || o->verbose)
        cli_warn("listening on %s", ls[0].name);
    if (!quiet)
        cli_warn("relaying %s to %s", ls[0].name, target);
    sk_forward_udp_opts fo = {.idle_timeout_ms = o->idle_timeout_ms,
                              .access = o->access,
                              .limits = limits,
                              .stop_fd = stop[0],
                              .verbose = o->verbose,
                              .log = udp_log};
    int rc = sk_forward_udp(ls[0].fd, &ta, &fo, NULL, &err);
    sk_listener_close(&ls[0]);
    sk_limits_free(limits);
    close(stop[0]);
    if (rc < 0)
        cli_die(&err);
    return 0;
}
