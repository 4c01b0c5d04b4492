/*
 * tls_conn.c - the public TLS connection for clients (sockit connect, the
 * examples): a TLS transport with its handshake done, relayed like a socket.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"
#include "xfer_walk.h"

#define HANDSHAKE_DEFAULT_MS 10000

struct sk_tls_conn {
    sk_tp tp;
};

/* Free the transport but leave fd open (it is still the caller's). */
static void drop(sk_tls_conn *c)
{
    c->tp.fd = -1;
    sk__tp_close(&c->tp);
    free(c);
}

sk_tls_conn *sk_tls_conn_new(sk_tls *ctx, int fd, int is_server, const char *peer, int timeout_ms,
                             sk_err *err)
{
    if (ctx == NULL || fd < 0) {
        sk_err_usage(err, "TLS: no context or no socket");
        return NULL;
    }
    if (sk_set_nonblock(fd, 1) < 0) {
        sk_errno(err, errno, "fcntl socket");
        return NULL;
    }
    sk_tls_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        sk_errno(err, ENOMEM, "TLS");
        return NULL;
    }
    if (sk__tp_tls(&c->tp, ctx, fd, is_server, peer, err) < 0) {
        free(c);
        return NULL;
    }
    int ms = timeout_ms > 0 ? timeout_ms : HANDSHAKE_DEFAULT_MS;
    int64_t deadline = sk_now_ms() + ms;
    const char *who = peer && *peer ? peer : (is_server ? "the client" : "the server");
    for (;;) {
        int r = sk__tp_tls_handshake(&c->tp);
        if (r == 1)
            return c;
        if (r == SK_TP_AGAIN) {
            short ev = (short)(((c->tp.want & SK_TP_WANT_READ) ? POLLIN : 0) |
                               ((c->tp.want & SK_TP_WANT_WRITE) ? POLLOUT : 0));
            int w = sk_wait_fd(fd, ev, deadline);
            if (w > 0)
                continue;
            if (w == 0)
                sk_errf(err, ETIMEDOUT, "TLS: handshake with %s timed out after %d.%03d s", who,
                        ms / 1000, ms % 1000);
            else
                sk_errno(err, errno, "TLS: handshake with %s: poll", who);
            drop(c);
            return NULL;
        }
        const char *m = sk__tp_tls_error(&c->tp);
        if (m)
            sk_errf(err, errno, "%s", m);
        else
            sk_errno(err, errno, "TLS: handshake with %s failed", who);
        drop(c);
        return NULL;
    }
}

void sk_tls_conn_info(const sk_tls_conn *c, sk_tls_info *i)
{
    memset(i, 0, sizeof *i);
    snprintf(i->version, sizeof i->version, "%s", sk__tp_tls_version(&c->tp));
    snprintf(i->cipher, sizeof i->cipher, "%s", sk__tp_tls_cipher(&c->tp));
    sk__tp_tls_alpn(&c->tp, i->alpn, sizeof i->alpn);
    sk__tp_tls_peer_subject(&c->tp, i->peer_subject, sizeof i->peer_subject);
    i->resumed = sk__tp_tls_resumed(&c->tp);
    i->ktls_send = sk__tp_tls_ktls(&c->tp);
}

int sk_tls_relay(sk_tls_conn *c, int in_fd, int out_fd, const sk_relay_opts *o, sk_relay_stats *st,
                 sk_err *err)
{
    sk_relay_opts so = o ? *o : (sk_relay_opts){0};
    so.stream = 1;
    int rc = sk__relay_tp(&c->tp, in_fd, out_fd, &so, st, err);
    const char *m = sk__tp_tls_error(&c->tp);
    if (rc < 0 && m && err)
        sk_errf(err, err->code, "%s", m); /* what TLS said beats "read socket: Protocol error" */
    return rc;
}

void sk_tls_conn_close(sk_tls_conn *c)
{
    if (c == NULL)
        return;
    sk__tp_close(&c->tp);
    free(c);
}

int sk_xfer_send_tls(sk_tls_conn *c, const char *const *paths, size_t n, const sk_xfer_opts *o,
                     sk_xfer_stats *st, sk_err *err)
{
    int rc = sk__xfer_send_tp(&c->tp, paths, n, o, st, err);
    if (rc >= 0) {
        /* The end of the transfer is the protocol's; the close_notify tells the
         * receiver's TLS layer that nothing was cut. Bounded: a few tries. */
        for (int i = 0; i < 50 && sk__tp_shutdown(&c->tp) == SK_TP_AGAIN; i++)
            sk_wait_fd(c->tp.fd, (c->tp.want & SK_TP_WANT_READ) ? POLLIN : POLLOUT,
                       sk_now_ms() + 100);
    }
    return rc;
}
