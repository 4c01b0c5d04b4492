/*
 * broker.c - everything one client sends goes to every other connected client
 * (ncat --broker). Runs under the models that share memory (thread and the
 * event loops); fork and prefork refuse it.
 *
 * Framing: input is forwarded in whole lines, so two clients talking at once
 * never interleave inside a line. A line longer than BROKER_LINE_MAX is
 * forwarded in pieces of that size; what is left at end of input goes as is.
 *
 * Slow readers: each client's queue is bounded (the server's per-connection
 * queue limit, 4 MiB by default). A client that lets it fill is disconnected.
 * Dropping bytes instead would silently corrupt the stream it receives;
 * waiting for it would let one client stall everyone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "services.h"

#define BROKER_LINE_MAX 65536

struct broker {
    pthread_mutex_t mu;
    sk_conn **members;
    size_t n, cap;
};

struct member {
    sk_buf partial; /* the unfinished line */
    size_t index;   /* in broker.members */
};

static int broker_init(sk_server *s, void **state, sk_err *err)
{
    (void)s;
    struct broker *b = calloc(1, sizeof *b);
    if (b == NULL)
        return sk_errno(err, ENOMEM, "broker");
    pthread_mutex_init(&b->mu, NULL);
    *state = b;
    return 0;
}

static void broker_fini(void *state)
{
    struct broker *b = state;
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b->members);
    free(b);
}

static void broker_open(sk_conn *c)
{
    struct broker *b = sk_conn_state(c);
    struct member *m = sk_conn_data(c);
    pthread_mutex_lock(&b->mu);
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        sk_conn **n = realloc(b->members, cap * sizeof *n);
        if (n == NULL) {
            pthread_mutex_unlock(&b->mu);
            sk_conn_close(c);
            m->index = (size_t)-1;
            return;
        }
        b->members = n;
        b->cap = cap;
    }
    m->index = b->n;
    b->members[b->n++] = c;
    pthread_mutex_unlock(&b->mu);
}

/* Send to every member but the sender. The lock keeps members alive while we
 * post to them (a member leaves in on_close, under the same lock). */
static void forward(sk_conn *from, const uint8_t *data, size_t len)
{
    struct broker *b = sk_conn_state(from);
    if (len == 0)
        return;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n; i++)
        if (b->members[i] != from)
            sk_conn_post(b->members[i], data, len);
    pthread_mutex_unlock(&b->mu);
}

static void broker_data(sk_conn *c, const uint8_t *data, size_t len)
{
    struct member *m = sk_conn_data(c);
    while (len > 0) {
        const uint8_t *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) + 1 : len;
        if (m->partial.len + take > BROKER_LINE_MAX)
            take = BROKER_LINE_MAX - m->partial.len;
        int complete =
            (nl && take == (size_t)(nl - data) + 1) || m->partial.len + take == BROKER_LINE_MAX;
        if (complete && m->partial.len == 0) {
            forward(c, data, take); /* the common case: no copy */
        } else {
            if (sk_buf_append(&m->partial, data, take) < 0) {
                sk_conn_close(c);
                return;
            }
            if (complete) {
                forward(c, sk_buf_head(&m->partial), m->partial.len);
                sk_buf_consume(&m->partial, m->partial.len);
            }
        }
        data += take;
        len -= take;
    }
}

static void broker_eof(sk_conn *c)
{
    struct member *m = sk_conn_data(c);
    forward(c, sk_buf_head(&m->partial), m->partial.len);
    sk_buf_free(&m->partial);
    sk_conn_close(c);
}

static void broker_close(sk_conn *c)
{
    struct broker *b = sk_conn_state(c);
    struct member *m = sk_conn_data(c);
    pthread_mutex_lock(&b->mu);
    if (m->index < b->n && b->members[m->index] == c) {
        b->members[m->index] = b->members[--b->n];
        ((struct member *)sk_conn_data(b->members[m->index]))->index = m->index;
    }
    pthread_mutex_unlock(&b->mu);
    sk_buf_free(&m->partial);
}

const sk_service sk__svc_broker = {
    .name = "broker",
    .summary = "relays each client's lines to every other client (ncat --broker)",
    .flags = SK_SVC_STREAM | SK_SVC_SHARED,
    .conn_size = sizeof(struct member),
    .init = broker_init,
    .fini = broker_fini,
    .on_open = broker_open,
    .on_data = broker_data,
    .on_eof = broker_eof,
    .on_close = broker_close,
};
