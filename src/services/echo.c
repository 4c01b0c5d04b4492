/*
 * echo.c - RFC 862: send back whatever arrives. Also reports each read as the
 * tutorial's echo server does: "Received N bytes from ADDR, port P".
 */
#include <string.h>

#include "services.h"

static void echo_data(sk_conn *c, const uint8_t *data, size_t len)
{
    sk_server *s = sk_conn_server(c);
    if (sk_server_options(s)->report) {
        if (sk_conn_transport(c) == SK_UNIX) { /* "unix peer pid 1234 uid 1000" */
            sk__report_received(s, len, sk_conn_peer_name(c));
        } else { /* "127.0.0.1, port 40000"; a PROXY v2 Unix source: "unix:PATH, port 0" */
            char host[SK_NAME_MAX], who[SK_NAME_MAX + 16];
            unsigned port;
            sk_conn_peer_host_port(c, host, sizeof host, &port);
            sk__host_port_words(who, sizeof who, host, port);
            sk__report_received(s, len, who);
        }
    }
    sk_conn_send(c, data, len);
}

static int echo_datagram(sk_dgram *d)
{
    if (sk_server_options(d->server)->report) {
        char who[SK_NAME_MAX + 16];
        sk__peer_words(d->peer, d->peerlen, d->transport, who, sizeof who);
        sk__report_received(d->server, d->len, who);
    }
    return sk_dgram_reply(d, d->data, d->len < d->cap ? d->len : d->cap);
}

const sk_service sk__svc_echo = {
    .name = "echo",
    .summary = "RFC 862: sends back everything it receives",
    .flags = SK_SVC_STREAM | SK_SVC_DGRAM,
    .on_data = echo_data,
    .on_datagram = echo_datagram,
};
