/*
 * tls_opts.c - the TLS client options shared by `connect` and `bench`
 * (--tls, --ca, --pin, --insecure, --sni, --alpn, --cert, --key): their
 * getopt entries, their parsing, their help and the checks that need the
 * address, written once so both commands take them the same way.
 */
#include <stdio.h>

#include "cli.h"

int cli_tls_client_option(struct cli_tls_client *t, int ch, const char *arg)
{
    switch (ch) {
    case CLI_OPT_TLS: t->tls = 1; break;
    case CLI_OPT_CA: t->tls = 1, t->to.ca = arg; break;
    case CLI_OPT_PIN:
        if (t->to.npins == CLI_PINS_MAX)
            cli_usage("--pin: at most %d pins", CLI_PINS_MAX);
        t->tls = 1, t->pins[t->to.npins++] = arg;
        break;
    case CLI_OPT_INSECURE: t->tls = 1, t->to.insecure = 1; break;
    case CLI_OPT_SNI: t->tls = 1, t->to.sni = arg; break;
    case CLI_OPT_ALPN: t->tls = 1, t->to.alpn = arg; break;
    case CLI_OPT_CERT: t->tls = 1, t->to.cert = arg; break;
    case CLI_OPT_KEY: t->tls = 1, t->to.key = arg; break;
    default: return 0;
    }
    return 1;
}

void cli_tls_client_finish(struct cli_tls_client *t, const sk_addr *a)
{
    if (!t->tls)
        return;
    if (!sk_transport_is_stream(a->transport))
        cli_usage("--tls needs a stream address (TLS over datagrams, DTLS, is not supported)");
    if (a->family == AF_UNIX && !t->to.npins && !t->to.sni && !t->to.insecure)
        cli_usage("--tls over a Unix socket needs --pin sha256:..., --sni NAME or --insecure "
                  "(there is no host name to check the certificate against)");
    t->to.pins = t->pins;
    if (a->family != AF_UNIX)
        t->to.host = a->host[0] ? a->host : "localhost";
}

void cli_tls_client_help(FILE *f)
{
    fprintf(f, "  --tls          speak TLS 1.2/1.3\n"
               "  --ca FILE|DIR  trust these CA certificates (PEM) instead of the system's\n"
               "  --pin sha256:HEX  accept only a server whose public key (SubjectPublicKeyInfo)\n"
               "                 has this SHA-256 (repeatable); a pin alone trusts a\n"
               "                 self-signed server, as `serve --tls` prints it\n"
               "  --insecure     do not check the server's identity at all (warned about)\n"
               "  --sni NAME     send NAME as the server name and check the certificate for it\n"
               "                 (needed over a Unix socket, unless --pin or --insecure)\n"
               "  --alpn LIST    offer these protocols, comma-separated (e.g. h2,http/1.1)\n"
               "  --cert FILE    client certificate (PEM, with its chain) for mutual TLS\n"
               "  --key FILE     its private key (default: in the --cert file)\n");
}
