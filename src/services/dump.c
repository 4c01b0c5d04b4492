/*
 * dump.c - show every message or datagram received as hex, with the sender:
 *   Received 7 bytes from 127.0.0.1, port 40000:
 *   4d 65 73 73 61 67 65
 * The byte format is the HSE lecture's unix_d_server ("%02x " per byte), 16
 * bytes a line. Nothing is sent back.
 */
#include <stdio.h>
#include <stdlib.h>

#include "services.h"

static void dump(sk_server *s, const char *who, const uint8_t *p, size_t len)
{
    /* Each byte is 3 characters, each 16-byte line ends in a newline. */
    size_t cap = len * 3 + len / 16 + 2;
    char *hex = malloc(cap);
    if (hex == NULL)
        return;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[o++] = digits[p[i] >> 4];
        hex[o++] = digits[p[i] & 15];
        hex[o++] = ' ';
        if (i % 16 == 15 && i + 1 < len)
            hex[o++] = '\n';
    }
    hex[o] = '\0';
    sk_server_report(s, "Received %zu bytes from %s:\n%s", len, who, hex);
    free(hex);
}

static void dump_data(sk_conn *c, const uint8_t *data, size_t len)
{
    char who[SK_NAME_MAX + 16];
    if (sk_conn_transport(c) == SK_UNIX) { /* "unix peer pid 1234 uid 1000" */
        snprintf(who, sizeof who, "%s", sk_conn_peer_name(c));
    } else {
        char host[SK_NAME_MAX];
        unsigned port;
        sk_conn_peer_host_port(c, host, sizeof host, &port);
        snprintf(who, sizeof who, "%s, port %u", host, port);
    }
    dump(sk_conn_server(c), who, data, len);
}

static int dump_datagram(sk_dgram *d)
{
    char who[SK_NAME_MAX + 16];
    sk__peer_words(d->peer, d->peerlen, d->transport, who, sizeof who);
    dump(d->server, who, d->data, d->len);
    return 0;
}

const sk_service sk__svc_dump = {
    .name = "dump",
    .summary = "prints each message or datagram as hex, with the sender's address",
    .flags = SK_SVC_STREAM | SK_SVC_DGRAM,
    .on_data = dump_data,
    .on_datagram = dump_datagram,
};
