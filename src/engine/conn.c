/*
 * conn.c - one stream connection, independent of the model that drives it.
 *
 * A model calls sk__conn_read when the socket is readable and sk__conn_write
 * when it is writable (blocking models after waiting on this one socket, event
 * models when the loop says so), and frees the connection when
 * sk__conn_finished says so. The service only ever sees the sk_conn_* calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

sk_conn *sk__conn_new(sk_server *s, int fd, const struct sockaddr *peer, socklen_t plen,
                      sk_transport t)
{
    sk_conn *c = calloc(1, sizeof *c + s->svc->conn_size);
    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->srv = s;
    c->transport = t;
    c->out.max = s->o.max_queue ? s->o.max_queue : SK_MAX_QUEUE_DEFAULT;
    c->started_ms = c->last_io_ms = sk_now_ms();
    c->loop_index = -1;
    if (peer != NULL && plen > 0 && t != SK_UNIX) {
        socklen_t n = plen < (socklen_t)sizeof c->peer.u ? plen : (socklen_t)sizeof c->peer.u;
        memcpy(&c->peer.u, peer, n);
        c->peer.len = n;
    } else {
        c->peer.u.sa.sa_family = AF_UNIX; /* Unix stream clients are unnamed */
        c->peer.len = sizeof(sa_family_t);
    }
    if (s->svc->flags & SK_SVC_SHARED) {
        c->inbox = calloc(1, sizeof *c->inbox);
        if (c->inbox == NULL || pthread_mutex_init(&c->inbox->mu, NULL) != 0) {
            free(c->inbox);
            free(c);
            return NULL;
        }
        c->inbox->buf.max = c->out.max;
    }
    atomic_fetch_add(&s->nconns, 1);
    return c;
}

void sk__conn_open(sk_conn *c)
{
    if (c->srv->o.verbose)
        sk__log_conn_open(c);
    if (c->srv->svc->on_open)
        c->srv->svc->on_open(c);
}

void sk__conn_read(sk_conn *c, uint8_t *scratch, size_t cap)
{
    if (c->flags & (SK_C_DEAD | SK_C_EOF))
        return;
    ssize_t n = recv(c->fd, scratch, cap, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        c->flags |= SK_C_DEAD; /* reset by peer, etc.: nothing more to do for it */
        return;
    }
    c->last_io_ms = sk_now_ms();
    if (n == 0) {
        c->flags |= SK_C_EOF;
        if (c->flags & SK_C_WSHUT)
            return; /* lingering close: this was the FIN we waited for */
        if (c->srv->svc->on_eof)
            c->srv->svc->on_eof(c);
        else
            sk_conn_close(c);
        return;
    }
    c->bytes_in += (uint64_t)n;
    if (c->flags & (SK_C_CLOSING | SK_C_WSHUT))
        return; /* the service is done with input: discard it */
    if (c->srv->svc->on_data)
        c->srv->svc->on_data(c, scratch, (size_t)n);
}

void sk__conn_write(sk_conn *c)
{
    /* A budget per call keeps one endless writer (chargen to a fast reader)
     * from starving the other connections of an event loop. */
    size_t budget = 4 * SK_READ_CHUNK * 4;
    while (c->out.len > 0 && !(c->flags & SK_C_DEAD) && budget > 0) {
        ssize_t n = send(c->fd, sk_buf_head(&c->out), c->out.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                c->flags |= SK_C_DEAD;
            return;
        }
        c->bytes_out += (uint64_t)n;
        budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
        c->last_io_ms = sk_now_ms();
        sk_buf_consume(&c->out, (size_t)n);
        if (c->out.len == 0 && (c->flags & SK_C_DRAIN) && !(c->flags & SK_C_CLOSING) &&
            c->srv->svc->on_drain)
            c->srv->svc->on_drain(c); /* may queue more: the loop goes on */
    }
    if (c->out.len == 0)
        sk_buf_free(&c->out); /* idle connections keep no buffer memory */
}

int sk__conn_wants_read(const sk_conn *c)
{
    if (c->flags & (SK_C_DEAD | SK_C_EOF))
        return 0;
    /* Backpressure: a peer that does not read our output cannot make us read
     * (and buffer) more of its input. */
    return c->out.len < SK_HIGH_WATER;
}

int sk__conn_wants_write(const sk_conn *c)
{
    if (c->flags & SK_C_DEAD)
        return 0;
    return c->out.len > 0 || ((c->flags & SK_C_DRAIN) && !(c->flags & SK_C_CLOSING));
}

int sk__conn_idle(const sk_conn *c)
{
    if (c->flags & SK_C_DRAIN)
        return 1; /* an endless generator (chargen) has no work "in flight" */
    if (c->out.len > 0)
        return 0;
    /* Bytes the peer sent that we have not read yet are a request in flight. */
    int unread = 0;
    if (!(c->flags & SK_C_EOF) && ioctl(c->fd, FIONREAD, &unread) == 0 && unread > 0)
        return 0;
    return 1;
}

int sk__conn_finished(sk_conn *c)
{
    if (c->flags & SK_C_DEAD)
        return 1;
    if (!(c->flags & SK_C_CLOSING) || c->out.len > 0)
        return 0;
    if (c->flags & SK_C_EOF)
        return 1;
    if (!(c->flags & SK_C_WSHUT)) {
        /* Lingering close: send our FIN and wait (bounded, by the model) for the
         * peer's, reading and discarding. Closing with unread input would send a
         * reset, which can destroy the reply the peer has not read yet. */
        c->flags |= SK_C_WSHUT;
        if (shutdown(c->fd, SHUT_WR) < 0)
            return 1;
        c->last_io_ms = sk_now_ms();
    }
    return 0;
}

void sk__conn_free(sk_conn *c)
{
    sk_server *s = c->srv;
    if (s->svc->on_close)
        s->svc->on_close(c);
    if (s->o.verbose) {
        double secs = (double)(sk_now_ms() - c->started_ms) / 1000.0;
        sk_server_log(s, SK_LOG_INFO, "closed %s: %llu bytes in, %llu bytes out, %.3f s%s",
                      sk_conn_peer_name(c), (unsigned long long)c->bytes_in,
                      (unsigned long long)c->bytes_out, secs,
                      (c->flags & SK_C_DEAD) ? " (reset)" : "");
    }
    close(c->fd);
    sk_buf_free(&c->out);
    if (c->inbox) {
        pthread_mutex_destroy(&c->inbox->mu);
        sk_buf_free(&c->inbox->buf);
        free(c->inbox);
    }
    atomic_fetch_sub(&s->nconns, 1);
    free(c);
}

/* ---- the service's view ---- */

void *sk_conn_data(sk_conn *c)
{
    return c->data;
}

void *sk_conn_state(sk_conn *c)
{
    return c->srv->svc_state;
}

sk_server *sk_conn_server(sk_conn *c)
{
    return c->srv;
}

int sk_conn_fd(sk_conn *c)
{
    return c->fd;
}

sk_transport sk_conn_transport(const sk_conn *c)
{
    return c->transport;
}

int sk_conn_send(sk_conn *c, const void *data, size_t len)
{
    if (c->flags & (SK_C_DEAD | SK_C_CLOSING))
        return -1;
    if (sk_buf_append(&c->out, data, len) < 0) {
        /* Over the queue limit: the peer is not reading. Drop it rather than
         * grow without bound. */
        c->flags |= SK_C_DEAD;
        return -1;
    }
    return 0;
}

int sk_conn_post(sk_conn *c, const void *data, size_t len)
{
    sk_inbox *in = c->inbox;
    if (in == NULL || len == 0)
        return in == NULL ? -1 : 0;
    pthread_mutex_lock(&in->mu);
    int rc = 0, wake = 0;
    if (in->overflow) {
        rc = -1;
    } else if (sk_buf_append(&in->buf, data, len) < 0) {
        in->overflow = 1; /* the owner drops the connection when it wakes */
        sk_buf_free(&in->buf);
        rc = -1;
    }
    if (!in->queued) {
        in->queued = 1;
        wake = 1;
    }
    pthread_mutex_unlock(&in->mu);
    if (wake && c->wake)
        c->wake(c);
    return rc;
}

void sk__conn_take_inbox(sk_conn *c)
{
    sk_inbox *in = c->inbox;
    if (in == NULL)
        return;
    pthread_mutex_lock(&in->mu);
    in->queued = 0;
    if (in->overflow || c->out.len + in->buf.len > c->out.max) {
        c->flags |= SK_C_DEAD;
        if (c->srv->o.verbose)
            sk_server_log(c->srv, SK_LOG_INFO, "%s reads too slowly: queue full, dropped",
                          sk_conn_peer_name(c));
    } else if (in->buf.len > 0 && !(c->flags & SK_C_CLOSING)) {
        if (c->out.len == 0) {
            /* Take the whole buffer instead of copying it. */
            sk_buf t = c->out;
            c->out = in->buf;
            c->out.max = t.max;
            in->buf = t;
            in->buf.max = c->out.max;
        } else {
            sk_buf_append(&c->out, sk_buf_head(&in->buf), in->buf.len);
        }
    }
    sk_buf_consume(&in->buf, in->buf.len);
    pthread_mutex_unlock(&in->mu);
}

void sk_conn_close(sk_conn *c)
{
    c->flags |= SK_C_CLOSING;
}

void sk_conn_want_drain(sk_conn *c, int on)
{
    if (on)
        c->flags |= SK_C_DRAIN;
    else
        c->flags &= ~(unsigned)SK_C_DRAIN;
}

size_t sk_conn_pending(const sk_conn *c)
{
    return c->out.len;
}

const char *sk_conn_peer_name(sk_conn *c)
{
    static _Thread_local char buf[SK_NAME_MAX];
    return sk_sockaddr_format(&c->peer.u.sa, c->peer.len, c->transport, buf, sizeof buf);
}

void sk_conn_peer_host_port(sk_conn *c, char *host, size_t cap, unsigned *port)
{
    sk_sockaddr_host_port(&c->peer.u.sa, c->peer.len, host, cap, port);
}
