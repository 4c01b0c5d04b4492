/*
 * ack.c - the tutorial's server: read one message, show it to the operator
 * ("Here is the message: ..."), answer "I got your message", close.
 *
 * The tutorial reads "a message" with one read() of 255 bytes, which is not
 * how streams work. Here a message is framed: it ends at the first newline,
 * or at end of stream, or at ACK_MAX bytes, whichever comes first.
 * Over datagrams a message is one datagram, answered "Got your message\n"
 * as the tutorial's datagram server does.
 */
#include <stdlib.h>
#include <string.h>

#include "services.h"

#define ACK_MAX 65536

struct ack_conn {
    sk_buf msg;
    int done;
};

static void deliver(sk_conn *c)
{
    struct ack_conn *a = sk_conn_data(c);
    if (a->done)
        return;
    a->done = 1;
    size_t n = a->msg.len;
    const uint8_t *p = n ? sk_buf_head(&a->msg) : (const uint8_t *)"";
    if (n > 0 && p[n - 1] == '\n')
        n--;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    char *text = malloc(n + 1);
    if (text != NULL) {
        sk_server_report(sk_conn_server(c), "Here is the message: %s", sk__printable(text, p, n));
        free(text);
    }
    sk_buf_free(&a->msg);
    sk_conn_send(c, "I got your message", 18);
    sk_conn_close(c);
}

static void ack_data(sk_conn *c, const uint8_t *data, size_t len)
{
    struct ack_conn *a = sk_conn_data(c);
    if (a->done)
        return;
    const uint8_t *nl = memchr(data, '\n', len);
    size_t take = nl ? (size_t)(nl - data) + 1 : len;
    if (a->msg.len + take > ACK_MAX)
        take = ACK_MAX - a->msg.len;
    if (sk_buf_append(&a->msg, data, take) < 0) {
        sk_conn_close(c);
        return;
    }
    if (nl || a->msg.len >= ACK_MAX)
        deliver(c);
}

static void ack_eof(sk_conn *c)
{
    deliver(c);
}

static void ack_close(sk_conn *c)
{
    struct ack_conn *a = sk_conn_data(c);
    sk_buf_free(&a->msg);
}

static int ack_datagram(sk_dgram *d)
{
    char *text = malloc(d->len + 1);
    if (text != NULL) {
        size_t n = d->len;
        if (n > 0 && d->data[n - 1] == '\n')
            n--;
        sk_server_report(d->server, "Received a datagram: %s", sk__printable(text, d->data, n));
        free(text);
    }
    static const char msg[] = "Got your message\n";
    return sk_dgram_reply(d, msg, sizeof msg - 1);
}

const sk_service sk__svc_ack = {
    .name = "ack",
    .summary = "the tutorial server: shows one message, replies \"I got your message\"",
    .flags = SK_SVC_STREAM | SK_SVC_DGRAM,
    .conn_size = sizeof(struct ack_conn),
    .on_data = ack_data,
    .on_eof = ack_eof,
    .on_close = ack_close,
    .on_datagram = ack_datagram,
};
