/*
 * tls_client.c - a TLS client on libsockit: stdin to the server, the server
 * to stdout, with the server's certificate verified.
 *
 *   tls_client HOSTNAME PORT [CAFILE | sha256:PIN]
 *
 * Trusts the system's CAs, or the CA certificates in CAFILE, or only the
 * server whose public key has that SHA-256 (what `sockit serve --tls`
 * prints). At the end of stdin it sends close_notify and prints the rest of
 * the reply; a reply cut short without close_notify is an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockit.h"

#define CONNECT_TIMEOUT_MS 10000

static void die(const sk_err *err)
{
    fprintf(stderr, "tls_client: %s\n", err->msg);
    exit(err->usage ? 2 : 1);
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: tls_client HOSTNAME PORT [CAFILE | sha256:PIN]\n");
        return 2;
    }
    sk_ignore_sigpipe();
    sk_err err;
    sk_addr addr;
    if (sk_addr_parse_host_port(&addr, argv[1], argv[2], &err) < 0)
        die(&err);
    const char *pin = argc == 4 && strncmp(argv[3], "sha256:", 7) == 0 ? argv[3] : NULL;
    sk_tls_client_opts o = {
        .host = argv[1],
        .ca = argc == 4 && !pin ? argv[3] : NULL,
        .pins = &pin,
        .npins = pin ? 1 : 0,
    };
    sk_tls *ctx = sk_tls_client_new(&o, &err);
    if (ctx == NULL)
        die(&err);
    sk_endpoint peer;
    int fd = sk_connect(&addr, CONNECT_TIMEOUT_MS, &peer, &err);
    if (fd < 0)
        die(&err);
    char name[SK_NAME_MAX];
    sk_sockaddr_format((struct sockaddr *)&peer.sa, peer.len, addr.transport, name, sizeof name);
    sk_tls_conn *conn = sk_tls_conn_new(ctx, fd, 0, name, CONNECT_TIMEOUT_MS, &err);
    if (conn == NULL)
        die(&err);
    sk_tls_info info;
    sk_tls_conn_info(conn, &info);
    fprintf(stderr, "tls_client: %s, %s, server %s\n", info.version, info.cipher,
            info.peer_subject[0] ? info.peer_subject : "(pinned key)");
    int rc = sk_tls_relay(conn, STDIN_FILENO, STDOUT_FILENO, NULL, NULL, &err);
    sk_tls_conn_close(conn);
    sk_tls_free(ctx);
    if (rc < 0)
        die(&err);
    return 0;
}
