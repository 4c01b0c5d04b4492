/*
 * conn_proxy.c - the PROXY protocol stage (sk_server_opts.proxy_protocol):
 * an accepted connection's first bytes must be a v1 or v2 header from a
 * trusted proxy, saying who the real client is. It runs before the TLS
 * handshake and before on_open, for every model (conn_io.c's read pump calls
 * it while SK_C_PROXY is set; policy.c gives it its deadline and interest).
 *
 * Never a byte past the header: what follows it (a TLS ClientHello, the first
 * request, a second header) belongs to the transport and the service. So the
 * header is looked at with MSG_PEEK and only its own bytes are taken off the
 * socket. This is the one place that calls recv on a connection outside the
 * transports: the stage comes before any transport, and no transport peeks.
 *
 * A header that arrives in pieces: while the parser says "incomplete", every
 * byte seen so far is part of the header, so it is taken (a level-triggered
 * loop would otherwise wake again at once for bytes it already saw) and kept
 * in c->out, which holds no output before on_open (conn.c's pending() ignores
 * it during the stage). The common case, a header that arrives whole, costs
 * one peek and one recv of its length, and no allocation.
 *
 * Then the header's source replaces the peer (c->peer: access list and
 * per-source limits through admit.c, logs, services), unless it is LOCAL or
 * UNKNOWN (the proxy's own health check: the real endpoints stay).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "engine.h"

static ssize_t recv_retry(int fd, uint8_t *buf, size_t n, int flags)
{
    ssize_t r;
    do
        r = recv(fd, buf, n, flags);
    while (r < 0 && errno == EINTR);
    return r;
}

/* Take n bytes already seen with MSG_PEEK off the socket (they are there: a
 * stream's queued bytes do not go away). */
static int consume(int fd, uint8_t *scratch, size_t cap, size_t n)
{
    while (n > 0) {
        ssize_t r = recv_retry(fd, scratch, n < cap ? n : cap, 0);
        if (r <= 0) {
            if (r == 0 || errno == EAGAIN || errno == EWOULDBLOCK)
                errno = EPROTO;
            return -1;
        }
        n -= (size_t)r;
    }
    return 0;
}

/* How many more bytes can still belong to the header, given the first
 * `have` of them (the parser rejects everything past these bounds). */
static size_t room(const uint8_t *head, size_t have)
{
    if (have > 0 && head[0] == 'P')
        return have < SK_PROXY_V1_MAX ? SK_PROXY_V1_MAX - have : 1;
    if (have >= 16) {
        size_t total = 16 + ((size_t)head[14] << 8 | head[15]);
        return total > have ? total - have : 1;
    }
    return SK_PROXY_V2_MAX - have;
}

static void fail(sk_conn *c, int err, const char *real, const char *why)
{
    if (c->srv->o.verbose)
        sk_server_log(c->srv, SK_LOG_INFO, "PROXY header from %s: %s: connection closed", real,
                      why);
    sk__conn_feed_error(c, err);
}

/* The header is in: replace the peer and admit the connection. 0, or -1
 * (refused: logged by admit.c; out of memory: logged here). */
static int apply(sk_conn *c, const sk_proxy_info *pi, const char *real)
{
    sk_server *s = c->srv;
    if (pi->local) {
        if (s->o.verbose)
            sk_server_log(s, SK_LOG_INFO, "PROXY v%d %s from %s: the real endpoints stay",
                          pi->version, pi->version == 1 ? "UNKNOWN" : "LOCAL", real);
        return sk__admit_checks(s, &c->peer.sa, c->peer_len, (sk_transport)c->transport) ? 0 : -1;
    }
    const struct sockaddr *src = (const struct sockaddr *)&pi->src;
    char *path = NULL;
    if (src->sa_family == AF_UNIX) {
        char host[SK_NAME_MAX];
        unsigned port;
        sk_sockaddr_host_port(src, pi->src_len, host, sizeof host, &port);
        if ((path = strdup(host)) == NULL) {
            sk_server_log(s, SK_LOG_ERROR, "out of memory: connection closed");
            return -1;
        }
    } else if (pi->src_len > (socklen_t)sizeof c->peer) {
        return -1; /* the parser gives AF_INET, AF_INET6 or AF_UNIX only */
    }
    sk_transport t = src->sa_family == AF_UNIX ? SK_UNIX : SK_TCP;
    if (!sk__admit_checks(s, src, pi->src_len, t)) {
        free(path);
        return -1;
    }
    if (path) {
        memset(&c->peer, 0, sizeof c->peer);
        c->peer.proxied_unix.family = AF_UNIX;
        memcpy(c->peer.proxied_unix.path, &path, sizeof path);
        c->peer_len = sizeof(sa_family_t);
    } else {
        memcpy(&c->peer, src, pi->src_len);
        c->peer_len = (uint8_t)pi->src_len;
    }
    c->flags |= SK_C_PROXIED;
    if (s->o.verbose)
        sk_server_log(s, SK_LOG_INFO, "PROXY v%d from %s: client %s", pi->version, real,
                      sk_conn_peer_name(c));
    return 0;
}

ssize_t sk__conn_pump_proxy(sk_conn *c, uint8_t *scratch, size_t cap)
{
    sk_server *s = c->srv;
    int fd = c->tp.fd;
    size_t have = c->out.len; /* header bytes taken in earlier steps */
    size_t want = room(sk_buf_head(&c->out), have);
    ssize_t n = recv_retry(fd, scratch, want < cap ? want : cap, MSG_PEEK);
    char real[SK_NAME_MAX]; /* the proxy, for the messages */
    real[0] = '\0';
    if (s->o.verbose)
        snprintf(real, sizeof real, "%s", sk_conn_peer_name(c));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return SK_TP_AGAIN;
        fail(c, errno, real, strerror(errno));
        return SK_TP_ERR;
    }
    if (n == 0) {
        fail(c, 0, real,
             have ? "end of stream inside the header" : "end of stream before any header");
        return SK_TP_ERR;
    }
    const uint8_t *buf = scratch;
    size_t len = (size_t)n;
    c->out.max = 0; /* the header's own bound (room()) applies, not --max-queue */
    if (have > 0) { /* the header so far, then what is new */
        if (sk_buf_append(&c->out, scratch, len) < 0) {
            fail(c, ENOMEM, real, "out of memory");
            return SK_TP_ERR;
        }
        buf = sk_buf_head(&c->out);
        len = c->out.len;
    }
    sk_proxy_info pi;
    int r = sk_proxy_parse(buf, len, &pi);
    if (r < 0) {
        fail(c, EPROTO, real, pi.error ? pi.error : sk_proxy_strerror(r));
        return SK_TP_ERR;
    }
    if (r == 0) { /* every byte seen is the header's: take them, wait for more */
        if (have == 0 && sk_buf_append(&c->out, scratch, len) < 0) {
            fail(c, ENOMEM, real, "out of memory");
            return SK_TP_ERR;
        }
        if (consume(fd, scratch, cap, (size_t)n) < 0) {
            fail(c, errno, real, strerror(errno));
            return SK_TP_ERR;
        }
        return SK_TP_AGAIN;
    }
    /* Complete: take exactly its remaining bytes (consume() overwrites
     * scratch, so pi's TLV pointers are stale after it; the addresses apply()
     * uses are copies inside pi). */
    if (consume(fd, scratch, cap, (size_t)r - have) < 0) {
        fail(c, errno, real, strerror(errno));
        return SK_TP_ERR;
    }
    sk_buf_free(&c->out);
    c->out.max = s->o.max_queue;
    if (apply(c, &pi, real) < 0) {
        sk__conn_feed_error(c, EACCES); /* SK_C_PROXY stays: never admitted, never opened */
        return SK_TP_ERR;
    }
    /* Admitted: from here on a close releases the peer's count (conn.c). */
    c->flags &= (uint16_t)~SK_C_PROXY;
    c->last_io_ms = sk_now_ms();
    sk__conn_begin(c); /* the TLS handshake, or on_open */
    return 1;
}

const sk_access *sk_server_set_proxy_from(sk_server *s, const sk_access *a)
{
    /* admit.c loads it with acquire: a sender is checked against one list. */
    return __atomic_exchange_n(&s->o.proxy_from, a, __ATOMIC_ACQ_REL);
}
