/*
 * conn_tls.c - where an accepted connection gets its transport (plain, or
 * TLS when the server has a context), the TLS handshake step shared by every
 * model, and what the engine and the services learn about a TLS session.
 *
 * A TLS connection exists (and counts against --max-conns) from accept on,
 * but the service sees it only once its handshake is complete: until then it
 * carries SK_C_HANDSHAKE, its interest is what the handshake waits for and
 * its first deadline is the handshake deadline (policy.c). A plain connection
 * pays one pointer test here and nothing else.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "../lib/tls.h"

static int is_tls(const sk_conn *c)
{
    return c->tp.ops == &sk__tp_tls_ops;
}

sk_conn *sk__conn_accepted(sk_server *s, int fd, const struct sockaddr *peer, socklen_t plen,
                           sk_transport t)
{
    sk_tp tp;
    if (s->o.tls == NULL) {
        sk__tp_plain(&tp, fd);
    } else {
        char name[SK_NAME_MAX];
        sk_err err;
        const char *pn =
            t == SK_UNIX ? "unix peer" : sk_sockaddr_format(peer, plen, t, name, sizeof name);
        if (sk__tp_tls(&tp, s->o.tls, fd, 1, pn, &err) < 0) {
            sk_server_log(s, SK_LOG_ERROR, "%s: connection closed", err.msg);
            close(fd);
            return NULL;
        }
    }
    sk_conn *c = sk__conn_new(s, &tp, peer, plen, t);
    if (c == NULL) {
        sk_server_log(s, SK_LOG_ERROR, "out of memory: connection closed");
        sk__tp_close(&tp);
        return NULL;
    }
    if (s->o.tls)
        c->flags |= SK_C_HANDSHAKE;
    if (s->o.proxy_protocol)
        c->flags |= SK_C_PROXY; /* first the header (conn_proxy.c), then the rest */
    sk__conn_peer_cred(c);
    return c;
}

void sk__conn_begin(sk_conn *c)
{
    if (c->flags & SK_C_PROXY) {
        /* A proxy sends its header at once: it is often here already. Room
         * for the usual sizes (v1, v2 without long TLVs); a longer or late
         * header goes on when the socket is readable (sk__conn_pump_read). */
        uint8_t head[512];
        sk__conn_pump_proxy(c, head, sizeof head);
        return;
    }
    if (c->flags & SK_C_HANDSHAKE)
        sk__conn_pump_handshake(c); /* the ClientHello is often there already */
    else
        sk__conn_open(c);
}

ssize_t sk__conn_pump_handshake(sk_conn *c)
{
    int r = sk__tp_tls_handshake(&c->tp);
    if (r == 1) {
        c->flags &= (uint16_t) ~(SK_C_HANDSHAKE | SK_C_RD_WANTS_W);
        c->last_io_ms = sk_now_ms();
        sk__conn_open(c);
        return 1;
    }
    if (r == SK_TP_AGAIN) {
        if (c->tp.want & SK_TP_WANT_WRITE)
            c->flags |= SK_C_RD_WANTS_W;
        else
            c->flags &= (uint16_t)~SK_C_RD_WANTS_W;
        return SK_TP_AGAIN;
    }
    int e = errno;
    if (c->srv->o.verbose) {
        const char *why = sk__tp_tls_error(&c->tp);
        sk_server_log(c->srv, SK_LOG_INFO, "TLS handshake failed: %s: %s", sk_conn_peer_name(c),
                      why ? why
                      : e ? strerror(e)
                          : "connection closed");
    }
    sk__conn_feed_error(c, e);
    return SK_TP_ERR;
}

void sk__conn_tls_describe(sk_conn *c, char *buf, size_t cap)
{
    if (cap > 0)
        buf[0] = '\0';
    if (!is_tls(c))
        return;
    char subj[256];
    sk__tp_tls_peer_subject(&c->tp, subj, sizeof subj);
    snprintf(buf, cap, " (%s %s%s%s%s, kernel TLS %s)", sk__tp_tls_version(&c->tp),
             sk__tp_tls_cipher(&c->tp), sk__tp_tls_resumed(&c->tp) ? ", resumed" : "",
             subj[0] ? ", client " : "", subj,
             sk__tp_tls_ktls(&c->tp) ? "on: files by SSL_sendfile" : "off: files copied");
}

const char *sk_conn_tls_version(sk_conn *c)
{
    return is_tls(c) ? sk__tp_tls_version(&c->tp) : NULL;
}

const char *sk_conn_tls_cipher(sk_conn *c)
{
    return is_tls(c) ? sk__tp_tls_cipher(&c->tp) : NULL;
}

const char *sk_conn_tls_subject(sk_conn *c)
{
    static _Thread_local char buf[256];
    if (!is_tls(c))
        return NULL;
    sk__tp_tls_peer_subject(&c->tp, buf, sizeof buf);
    return buf[0] ? buf : NULL;
}
