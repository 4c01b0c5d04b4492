/*
 * connect.c - `sockit connect [OPTIONS] ADDRESS` or `... HOST PORT`: the client.
 *
 * Default: stdin to the socket and the socket to stdout (the relay), binary
 * safe; at end of stdin the write side is shut down and output goes on until
 * the peer closes. --prompt is the tutorial's client: one line, one reply.
 */
#define _GNU_SOURCE /* getopt_long */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define DGRAM_LINGER_DEFAULT_MS 2000 /* UDP without -w: wait this long for replies */
#define PROMPT_REPLY_MAX (1u << 20)

struct connect_cfg {
    int prompt, zero, verbose, crlf;
    int timeout_ms;                  /* -w; 0 = none */
    int retry;                       /* --retry: more attempts while nobody listens yet */
    int send_proxy;                  /* --send-proxy v1|v2: 1 or 2; 0 = none */
    const char *src_host, *src_port; /* -s, -p */
    long port_lo, port_hi;           /* -z with a port range; 0 = none */
    sk_addr addr;
    struct cli_tls_client t; /* --tls and the other TLS options (tls_opts.c) */
};

static void connect_help(FILE *f)
{
    fprintf(f, "usage: sockit connect [OPTIONS] ADDRESS\n"
               "       sockit connect [OPTIONS] HOST PORT\n"
               "\n"
               "Copies stdin to the socket and the socket to stdout. At the end of stdin the\n"
               "socket's write side is shut down, and output continues until the peer closes.\n"
               "Over UDP it stops after -w seconds (default 2) of silence once stdin has ended.\n"
               "If the peer closes or resets the connection before all of stdin was sent, that\n"
               "is said on stderr and the exit status is 1.\n"
               "\n"
               "  --prompt       the tutorial client: \"Please enter the message: \", one line\n"
               "                 sent, the reply printed\n"
               "  -C, --crlf     send each newline of stdin as CR LF (line protocols: SMTP, HTTP)\n"
               "  -s ADDRESS     connect from this local address (TCP and UDP)\n"
               "  -p PORT        connect from this local port\n"
               "  --retry N      if nobody listens yet, try N more times (waits 0.1 s, doubling\n"
               "                 up to 1 s, between tries)\n"
               "  -w SECS        connect timeout, and give up after SECS without data\n"
               "  -z             only check that the address accepts a connection; with a port\n"
               "                 range (HOST 20-25, HOST:20-25) print \"ADDRESS accepts\n"
               "                 connections\" on stdout for each port that does (exit 0 if any\n"
               "                 does, 1 if none)\n"
               "  --send-proxy v1|v2  first send a PROXY protocol header (as HAProxy's\n"
               "                 send-proxy[-v2]) naming this socket's own addresses: the\n"
               "                 server (serve --proxy-protocol) sees them as the client's;\n"
               "                 before any byte of stdin, and before TLS\n"
               "  -v, --verbose  say what was connected, and the byte counts\n"
               "  -h, --help     this text\n"
               "\n"
               "TLS (any of these implies --tls; the server's certificate is verified against\n"
               "the system's trusted CAs and the host name, unless told otherwise):\n");
    cli_tls_client_help(f);
    fprintf(f, "  At the end of stdin a close_notify is sent, and an end of stream without the\n"
               "  server's is an error. The handshake must finish within -w seconds (default\n"
               "  10); -v prints the TLS version, cipher and ALPN protocol; -z also completes\n"
               "  the handshake.\n");
}

/* "20-25" as a port range, or 0. */
static int port_range(const char *w, long *lo, long *hi)
{
    const char *dash = strchr(w, '-');
    if (dash == NULL || dash == w || dash[1] == '\0' ||
        strspn(w, "0123456789") != (size_t)(dash - w) ||
        strspn(dash + 1, "0123456789") != strlen(dash + 1))
        return 0;
    char first[16];
    snprintf(first, sizeof first, "%.*s", (int)(dash - w), w);
    *lo = cli_number("port range", first, 1, 65535);
    *hi = cli_number("port range", dash + 1, 1, 65535);
    if (*lo > *hi)
        cli_usage("port range %s: the first port is above the last", w);
    return 1;
}

/* ADDRESS or HOST PORT, where the port may be a range (for -z). */
static void parse_address(struct connect_cfg *c, int words, char **argv)
{
    static const char usage[] = "usage: sockit connect [OPTIONS] ADDRESS | HOST PORT";
    char copy[SK_HOST_MAX + SK_PORT_MAX + 16];
    char *w[2] = {words > 0 ? argv[0] : NULL, words > 1 ? argv[1] : NULL};
    if (words == 1 || words == 2) {
        char *last = w[words - 1];
        char *colon = words == 1 ? strrchr(last, ':') : NULL;
        const char *port = words == 2 ? last : colon ? colon + 1 : "";
        if (port_range(port, &c->port_lo, &c->port_hi)) {
            if (!c->zero)
                cli_usage("a port range (%s) is for -z", port);
            /* Parse it with the first port; the others are set one by one. */
            snprintf(copy, sizeof copy, "%.*s%ld", (int)(port - last), last, c->port_lo);
            w[words - 1] = copy;
        }
    }
    cli_client_address(words, w, &c->addr, usage);
}

static void parse(int argc, char **argv, struct connect_cfg *c)
{
    enum { O_PROMPT = 256, O_RETRY, O_SEND_PROXY };
    static const struct option longs[] = {
        {"prompt", no_argument, NULL, O_PROMPT},
        {"retry", required_argument, NULL, O_RETRY},
        {"send-proxy", required_argument, NULL, O_SEND_PROXY},
        {"crlf", no_argument, NULL, 'C'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"timeout", required_argument, NULL, 'w'},
        CLI_TLS_CLIENT_LONGOPTS,
        {0},
    };
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":w:zvhCs:p:", longs, NULL)) != -1) {
        if (cli_tls_client_option(&c->t, ch, optarg))
            continue;
        switch (ch) {
        case O_PROMPT: c->prompt = 1; break;
        case O_RETRY: c->retry = (int)cli_number("--retry", optarg, 0, 1000000); break;
        case 'C': c->crlf = 1; break;
        case O_SEND_PROXY:
            if (strcmp(optarg, "v1") == 0 || strcmp(optarg, "1") == 0)
                c->send_proxy = 1;
            else if (strcmp(optarg, "v2") == 0 || strcmp(optarg, "2") == 0)
                c->send_proxy = 2;
            else
                cli_usage("--send-proxy \"%s\": expected v1 or v2", optarg);
            break;
        case 's': c->src_host = optarg; break;
        case 'p':
            if (strspn(optarg, "0123456789") == strlen(optarg))
                cli_number("-p", optarg, 1, 65535); /* a number in range, or a service name */
            c->src_port = optarg;
            break;
        case 'w':
            c->timeout_ms = cli_seconds_ms("-w", optarg);
            if (c->timeout_ms == 0)
                cli_usage("-w: the timeout must be more than 0 seconds");
            break;
        case 'z': c->zero = 1; break;
        case 'v': c->verbose = 1; break;
        case 'h': connect_help(stdout); exit(0);
        default: cli_bad_option("connect", ch, argv);
        }
    }
    if (c->prompt && c->zero)
        cli_usage("--prompt and -z cannot be used together");
    if (c->prompt && c->crlf)
        cli_usage("--prompt and -C cannot be used together");
    parse_address(c, argc - optind, argv + optind);
    if (c->send_proxy && !sk_transport_is_stream(c->addr.transport))
        cli_usage("--send-proxy needs a stream address (PROXY v2 over datagrams is not "
                  "supported)");
    if (c->send_proxy && c->port_lo)
        cli_usage("--send-proxy is not for a port range");
    if (c->zero && !sk_transport_is_stream(c->addr.transport))
        cli_usage("-z needs a stream address: a datagram socket accepts nothing to test");
    if ((c->src_host || c->src_port) &&
        (c->addr.transport == SK_UNIX || c->addr.transport == SK_UNIXGRAM))
        cli_usage("-s and -p are for TCP and UDP addresses, not %s",
                  sk_transport_name(c->addr.transport));
    cli_tls_client_finish(&c->t, &c->addr);
    if (c->t.tls && c->prompt)
        cli_usage("--prompt and --tls cannot be used together");
}

/* The TLS session: handshake (verified), then the relay through it. */
static int run_tls(struct connect_cfg *c, sk_tls *ctx, int fd, const char *name)
{
    sk_err err;
    sk_tls_conn *tc = sk_tls_conn_new(ctx, fd, 0, name, c->timeout_ms, &err);
    if (tc == NULL)
        cli_die(&err);
    if (c->verbose) {
        sk_tls_info i;
        sk_tls_conn_info(tc, &i);
        cli_warn("TLS: %s, cipher %s, ALPN %s%s%s, kernel TLS %s", i.version, i.cipher,
                 i.alpn[0] ? i.alpn : "none", i.peer_subject[0] ? ", server " : "", i.peer_subject,
                 i.ktls_send ? "on" : "off");
    }
    int rc = 0;
    if (!c->zero) {
        sk_relay_opts ro = {
            .stream = 1,
            .stop_at_peer_eof = isatty(STDIN_FILENO),
            .idle_timeout_ms = c->timeout_ms,
            .crlf = c->crlf,
        };
        sk_relay_stats st;
        rc = sk_tls_relay(tc, STDIN_FILENO, STDOUT_FILENO, &ro, &st, &err);
        if (c->verbose)
            cli_warn("%llu bytes sent, %llu bytes received", (unsigned long long)st.to_net,
                     (unsigned long long)st.from_net);
    } else if (c->verbose) {
        cli_warn("%s accepts TLS connections", name);
    }
    sk_tls_conn_close(tc);
    sk_tls_free(ctx);
    if (rc < 0)
        cli_die(&err);
    return 0;
}

/* Read one line from stdin, however long (the tutorial read 255 bytes). */
static char *read_line(size_t *len)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        if (ferror(stdin))
            cli_fail("read standard input: %s", strerror(errno));
        free(line);
        *len = 0;
        return NULL;
    }
    *len = (size_t)n;
    return line;
}

/* The tutorial's exchange: prompt, one line out, the whole reply in. */
static int run_prompt(struct connect_cfg *c, int fd)
{
    int stream = sk_transport_is_stream(c->addr.transport);
    fputs("Please enter the message: ", stdout);
    fflush(stdout);
    size_t len;
    char *line = read_line(&len);
    if (sk_write_all(fd, line ? line : "", len, -1) < 0)
        cli_fail("write socket: %s", strerror(errno));
    free(line);
    int64_t deadline = c->timeout_ms ? sk_now_ms() + c->timeout_ms : -1;
    if (!stream) {
        if (deadline < 0)
            deadline = sk_now_ms() + DGRAM_LINGER_DEFAULT_MS;
        static uint8_t reply[SK_DGRAM_MAX];
        ssize_t n = sk_read_deadline(fd, reply, sizeof reply, deadline);
        if (n < 0)
            cli_fail("no reply: %s", errno == ETIMEDOUT ? "timed out" : strerror(errno));
        fputs("Got an ack: ", stdout);
        fwrite(reply, 1, (size_t)n, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    /* The message is sent: say so, then read until the server closes, so a
     * reply that arrives in several pieces is printed whole. */
    if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
        cli_fail("shutdown socket: %s", strerror(errno));
    sk_buf reply = {.max = PROMPT_REPLY_MAX};
    for (;;) {
        uint8_t *p = sk_buf_reserve(&reply, 4096);
        if (p == NULL)
            cli_fail("reply longer than %u bytes", PROMPT_REPLY_MAX);
        ssize_t n = sk_read_deadline(fd, p, 4096, deadline);
        if (n < 0)
            cli_fail("read socket: %s", errno == ETIMEDOUT ? "timed out" : strerror(errno));
        if (n == 0)
            break;
        sk_buf_commit(&reply, (size_t)n);
    }
    if (reply.len)
        fwrite(sk_buf_head(&reply), 1, reply.len, stdout);
    if (reply.len == 0 || sk_buf_head(&reply)[reply.len - 1] != '\n')
        fputc('\n', stdout);
    sk_buf_free(&reply);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* --send-proxy: the header a proxy would send for this very connection (its
 * source is our socket's address, its destination the server's), written
 * whole before anything else, TLS included. */
static void send_proxy_header(const struct connect_cfg *c, int fd, const sk_endpoint *peer)
{
    struct sockaddr_storage self;
    socklen_t sl = sizeof self;
    if (getsockname(fd, (struct sockaddr *)&self, &sl) < 0)
        cli_fail("getsockname: %s", strerror(errno));
    uint8_t hdr[SK_PROXY_V1_MAX + 232];
    int n = sk_proxy_format(hdr, sizeof hdr, c->send_proxy, (struct sockaddr *)&self, sl,
                            (const struct sockaddr *)&peer->sa, peer->len);
    if (n < 0)
        cli_fail("--send-proxy: cannot write a v%d header", c->send_proxy);
    int64_t deadline = c->timeout_ms ? sk_now_ms() + c->timeout_ms : -1;
    if (sk_write_all(fd, hdr, (size_t)n, deadline) < 0)
        cli_fail("send the PROXY header: %s", strerror(errno));
    if (c->verbose)
        cli_warn("sent a PROXY v%d header (%d bytes)", c->send_proxy, n);
}

static int retryable(int e)
{
    /* Nobody listening yet (or the backlog of a server still starting is full). */
    return e == ECONNREFUSED || e == ENOENT || e == ECONNRESET || e == EAGAIN || e == ETIMEDOUT;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Connect, trying again (--retry) with a short back-off while nobody listens. */
static int connect_retrying(const struct connect_cfg *c, sk_endpoint *peer, sk_err *err)
{
    int delay = 100;
    for (int attempt = 0;; attempt++) {
        int fd = sk_connect_from(&c->addr, c->src_host, c->src_port, c->timeout_ms, peer, err);
        if (fd >= 0 || attempt >= c->retry || err->usage || !retryable(err->code))
            return fd;
        if (c->verbose)
            cli_warn("%s; trying again in %d.%d s", err->msg, delay / 1000, delay % 1000 / 100);
        sleep_ms(delay);
        delay = delay * 2 > 1000 ? 1000 : delay * 2;
    }
}

/* -z over a port range: a line on stdout for each port that accepts. */
static int scan_ports(struct connect_cfg *c)
{
    int open = 0;
    for (long port = c->port_lo; port <= c->port_hi; port++) {
        snprintf(c->addr.port, sizeof c->addr.port, "%ld", port);
        sk_err err;
        sk_endpoint peer;
        int fd = sk_connect_from(&c->addr, c->src_host, c->src_port, c->timeout_ms, &peer, &err);
        if (fd < 0) {
            if (err.usage)
                cli_die(&err);
            if (c->verbose) /* closed ports are silent otherwise, as with nc -z */
                cli_warn("%s", err.msg);
            continue;
        }
        close(fd);
        char name[SK_NAME_MAX];
        sk_sockaddr_format((struct sockaddr *)&peer.sa, peer.len, c->addr.transport, name,
                           sizeof name);
        printf("%s accepts connections\n", name);
        fflush(stdout);
        open++;
    }
    return open > 0 ? 0 : 1;
}

static int run_relay(const struct connect_cfg *c, int fd)
{
    int stream = sk_transport_is_stream(c->addr.transport);
    sk_relay_opts ro = {
        .stream = stream,
        .stop_at_peer_eof = isatty(STDIN_FILENO),
        .idle_timeout_ms = c->timeout_ms,
        .dgram_linger_ms = c->timeout_ms ? c->timeout_ms : DGRAM_LINGER_DEFAULT_MS,
        .crlf = c->crlf,
    };
    sk_relay_stats st;
    sk_err err;
    int rc = sk_relay(fd, STDIN_FILENO, STDOUT_FILENO, &ro, &st, &err);
    if (c->verbose)
        cli_warn("%llu bytes sent, %llu bytes received", (unsigned long long)st.to_net,
                 (unsigned long long)st.from_net);
    if (rc < 0) {
        close(fd);
        cli_die(&err);
    }
    return 0;
}

int cli_connect(int argc, char **argv)
{
    struct connect_cfg c = {0};
    parse(argc, argv, &c);
    sk_ignore_sigpipe();
    if (c.port_lo)
        return scan_ports(&c);
    sk_err err;
    sk_tls *tls = NULL; /* made first: a bad file is reported before connecting */
    if (c.t.tls) {
        if (c.t.to.insecure)
            cli_warn("warning: --insecure: the server's identity is not checked");
        if ((tls = sk_tls_client_new(&c.t.to, &err)) == NULL)
            cli_die(&err);
    }
    sk_endpoint peer;
    int fd = connect_retrying(&c, &peer, &err);
    if (fd < 0) {
        /* -z, as nc -z: a port that is closed (or does not answer) is told by
         * the exit status alone; -v says why. Other failures are still said. */
        if (c.zero && !c.verbose && !err.usage &&
            (err.code == ECONNREFUSED || err.code == ETIMEDOUT || err.code == EHOSTUNREACH ||
             err.code == ENETUNREACH))
            return 1;
        cli_die(&err);
    }
    char name[SK_NAME_MAX];
    sk_sockaddr_format((struct sockaddr *)&peer.sa, peer.len, c.addr.transport, name, sizeof name);
    if (c.send_proxy)
        send_proxy_header(&c, fd, &peer);
    if (c.t.tls) {
        if (c.verbose)
            cli_warn("connected to %s", name);
        return run_tls(&c, tls, fd, name);
    }
    if (c.zero) {
        if (c.verbose)
            cli_warn("%s accepts connections", name);
        close(fd);
        return 0;
    }
    if (c.verbose)
        cli_warn("connected to %s", name);
    int rc = c.prompt ? run_prompt(&c, fd) : run_relay(&c, fd);
    close(fd);
    return rc;
}
