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

static void dump(sk_server *s, const struct sockaddr *sa, socklen_t salen, sk_transport t,
                 const uint8_t *p, size_t len)
{
    char who[SK_NAME_MAX + 16];
    sk__peer_words(sa, salen, t, who, sizeof who);
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
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(sk_conn_fd(c), (struct sockaddr *)&ss, &sl) < 0)
        sl = 0;
    dump(sk_conn_server(c), (struct sockaddr *)&ss, sl, sk_conn_transport(c), data, len);
}

static int dump_datagram(sk_dgram *d)
{
    dump(d->server, d->peer, d->peerlen, d->transport, d->data, d->len);
    return 0;
}

const sk_service sk__svc_dump = {
    .name = "dump",
    .summary = "prints each message or datagram as hex, with the sender's address",
    .flags = SK_SVC_STREAM | SK_SVC_DGRAM,
    .on_data = dump_data,
    .on_datagram = dump_datagram,
};
