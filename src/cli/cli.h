/* cli.h - the command-line program: the only code that prints or exits. */
#ifndef SK_CLI_H
#define SK_CLI_H

#include <signal.h>
#include <stdio.h>

#include "sockit.h"

#define EXIT_USAGE 2

extern int cli_syslog; /* messages go to syslog(3) instead of stderr (serve --log syslog) */

/* "sockit: ..." on stderr, then exit 2 (usage) or 1 (runtime failure). */
_Noreturn void cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Exit with err's message: status 2 if it was the user's input, 1 otherwise. */
_Noreturn void cli_die(const sk_err *err);
/* "sockit: ..." on stderr; the program goes on. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Explain what getopt_long rejected (returned ':' or '?') and exit 2. */
_Noreturn void cli_bad_option(const char *cmd, int ch, char **argv);

/* Strict numbers: the whole word, in range, or a usage error naming the option. */
long cli_number(const char *opt, const char *s, long min, long max);
/* Seconds with an optional fraction ("1", "0.25"), returned in milliseconds. */
int cli_seconds_ms(const char *opt, const char *s);

/* The client's address: one word (ADDRESS) or the tutorial's two (HOST PORT).
 * words/argv are what is left after the options; exits 2 with `usage` otherwise. */
void cli_client_address(int words, char **argv, sk_addr *a, const char *usage);

/* `serve stdio` (stdio.c): join a client of one of the n listeners to stdin
 * and stdout. *live is the number of listeners a signal handler must close;
 * it is set to 0 once they are closed. Returns the exit status. */
struct cli_stdio_opts {
    int verbose;
    int keep_open; /* -k: one client after another, until a signal */
    int idle_timeout_ms;
    const sk_access *access; /* --allow/--deny: refused peers are closed (dropped) */
};
int cli_serve_stdio(sk_listener *ls, size_t n, const struct cli_stdio_opts *o,
                    volatile sig_atomic_t *live);

/* tls_opts.c: the TLS client options of connect and bench. */
#define CLI_PINS_MAX 16
struct cli_tls_client {
    int tls; /* --tls or any TLS option */
    sk_tls_client_opts to;
    const char *pins[CLI_PINS_MAX];
};
enum {
    CLI_OPT_TLS = 512,
    CLI_OPT_CA,
    CLI_OPT_PIN,
    CLI_OPT_INSECURE,
    CLI_OPT_SNI,
    CLI_OPT_ALPN,
    CLI_OPT_CERT,
    CLI_OPT_KEY
};
/* Their entries in a getopt_long table. */
#define CLI_TLS_CLIENT_LONGOPTS                                                                    \
    {"tls", no_argument, NULL, CLI_OPT_TLS}, {"ca", required_argument, NULL, CLI_OPT_CA},          \
        {"pin", required_argument, NULL, CLI_OPT_PIN},                                             \
        {"insecure", no_argument, NULL, CLI_OPT_INSECURE},                                         \
        {"sni", required_argument, NULL, CLI_OPT_SNI},                                             \
        {"alpn", required_argument, NULL, CLI_OPT_ALPN},                                           \
        {"cert", required_argument, NULL, CLI_OPT_CERT},                                           \
    {                                                                                              \
        "key", required_argument, NULL, CLI_OPT_KEY                                                \
    }
/* Take option ch (getopt's value) if it is one of them: 1, else 0. */
int cli_tls_client_option(struct cli_tls_client *t, int ch, const char *arg);
/* Once the address is known: usage errors (datagrams, Unix without a pin,
 * SNI or --insecure), and the host name checked. */
void cli_tls_client_finish(struct cli_tls_client *t, const sk_addr *a);
/* The options' lines for --help. */
void cli_tls_client_help(FILE *f);

int cli_serve(int argc, char **argv);
/* relay.c: `sockit relay` is serve's parser and server with the relay
 * service (cli_relay, in serve.c); these are its own parts. */
int cli_relay(int argc, char **argv);
void cli_relay_help(FILE *f);
/* Check LISTEN_ADDRESS TARGET_ADDRESS at argv[optind..]: usage errors exit 2.
 * Sets *target and *dgram (a datagram relay); returns the argc that leaves
 * only LISTEN_ADDRESS after optind. */
int cli_relay_words(int argc, char **argv, int optind_, int inetd, const char **target, int *dgram);
/* UDP to UDP (sk_forward_udp) with serve's parsed options. Returns the exit status. */
int cli_relay_udp(const sk_server_opts *o, const char *listen, const char *target, int quiet);
int cli_connect(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_send(int argc, char **argv);

#endif
