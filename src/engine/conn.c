/*
 * conn.c - one stream connection as a state machine, independent of the
 * model that drives it and of the wire.
 *
 * It is fed what the transport read (sk__conn_feed, _eof, _error), hands out
 * what to send (sk__conn_output) and is told what went (sk__conn_sent); it
 * never calls the kernel for I/O, so a readiness loop (epoll), a blocking
 * driver or a completion ring (io_uring) can all drive it: conn_io.c is the
 * shared code that does the reads and writes (and closes the files a service
 * handed over, when they are sent).
 * The service only ever sees the sk_conn_* calls.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "engine.h"

/* Where the broker's inbox lives: after the service's bytes, in the same
 * allocation (only SK_SVC_SHARED services have one). */
static size_t inbox_offset(const sk_service *svc)
{
    size_t a = _Alignof(sk_inbox);
    return (offsetof(sk_conn, data) + svc->conn_size + a - 1) / a * a;
}

sk_inbox *sk__conn_inbox(const sk_conn *c)
{
    if (!(c->srv->svc->flags & SK_SVC_SHARED))
        return NULL;
    return (sk_inbox *)((char *)c + inbox_offset(c->srv->svc));
}

sk_conn *sk__conn_new(sk_server *s, const sk_tp *tp, const struct sockaddr *peer, socklen_t plen,
                      sk_transport t)
{
    int shared = (s->svc->flags & SK_SVC_SHARED) != 0;
    size_t size = shared ? inbox_offset(s->svc) + sizeof(sk_inbox)
                         : offsetof(sk_conn, data) + s->svc->conn_size;
    if (size < sizeof(sk_conn))
        size = sizeof(sk_conn);
    sk_conn *c = calloc(1, size);
    if (c == NULL)
        return NULL;
    c->tp = *tp;
    c->srv = s;
    c->transport = (uint8_t)t;
    c->out.max = s->o.max_queue;
    c->started_ms = c->last_io_ms = sk_now_ms();
    c->loop_index = -1;
    /* A TCP peer with no address yet (a completion model's accept brings
     * none) keeps peer_len 0 until something asks (known_peer). */
    if (peer != NULL && plen > 0 && t != SK_UNIX) {
        socklen_t n = plen < (socklen_t)sizeof c->peer ? plen : (socklen_t)sizeof c->peer;
        memcpy(&c->peer, peer, n);
        c->peer_len = (uint8_t)n;
    } else if (peer != NULL || t != SK_TCP) {
        c->peer.cred.family = AF_UNIX; /* Unix stream clients are unnamed */
        c->peer.cred.pid = -1;
        c->peer_len = sizeof(sa_family_t);
    }
    if (shared) {
        sk_inbox *in = sk__conn_inbox(c);
        if (pthread_mutex_init(&in->mu, NULL) != 0) {
            free(c);
            return NULL;
        }
        in->buf.max = c->out.max;
    }
    atomic_fetch_add(&s->nconns, 1);
    return c;
}

void sk__conn_open(sk_conn *c)
{
    if (c->srv->o.verbose && !(c->srv->svc->flags & SK_SVC_OWN_LOG)) {
        char tls[400];
        sk__conn_tls_describe(c, tls, sizeof tls);
        sk_server_log(c->srv, SK_LOG_INFO, "connection from %s%s", sk_conn_peer_name(c), tls);
    }
    if (c->srv->svc->on_open)
        c->srv->svc->on_open(c);
}

void sk__conn_feed(sk_conn *c, const uint8_t *data, size_t n)
{
    c->last_io_ms = sk_now_ms();
    c->bytes_in += (uint64_t)n;
    if (c->flags & (SK_C_CLOSING | SK_C_WSHUT | SK_C_DEAD))
        return; /* the service is done with input: discard it */
    if (c->srv->svc->on_data)
        c->srv->svc->on_data(c, data, n);
}

void sk__conn_feed_dropped(sk_conn *c, size_t n)
{
    c->last_io_ms = sk_now_ms();
    c->bytes_in += (uint64_t)n;
}

void sk__conn_feed_eof(sk_conn *c)
{
    if (c->flags & SK_C_EOF)
        return;
    c->last_io_ms = sk_now_ms();
    c->flags |= SK_C_EOF;
    if (c->flags & (SK_C_WSHUT | SK_C_DEAD))
        return; /* lingering close: this was the FIN we waited for */
    if (c->srv->svc->on_eof)
        c->srv->svc->on_eof(c);
    else
        sk_conn_close(c);
}

void sk__conn_feed_error(sk_conn *c, int err)
{
    (void)err; /* reset by peer, etc.: nothing more to do for it */
    c->flags |= SK_C_DEAD;
}

/* Total bytes queued for the peer (buffered and file). */
static uint64_t pending(const sk_conn *c)
{
    if (c->flags & SK_C_PROXY)
        return 0; /* c->out holds the PROXY header read so far: not output */
    return c->out.len + c->fbytes;
}

static sk_fileseg *last_seg(const sk_conn *c)
{
    sk_fileseg *f = c->fhead;
    while (f && f->next)
        f = f->next; /* short: one segment per queued file or shared buffer */
    return f;
}

/* Where newly queued bytes go: after the last queued segment, if any. */
static sk_buf *tail_buf(sk_conn *c)
{
    sk_fileseg *f = last_seg(c);
    return f ? &f->after : &c->out;
}

static void fileseg_done(sk_fileseg *f)
{
    if (f->release)
        f->release(f->arg);
    else if (f->fd >= 0)
        sk__conn_close_file(f->fd); /* the descriptor the service handed over */
}

/* The head segment is sent: its trailing bytes become the front of the queue. */
static void pop_seg(sk_conn *c)
{
    sk_fileseg *f = c->fhead;
    c->fhead = f->next;
    fileseg_done(f);
    c->fbytes -= f->after.len;
    sk_buf_free(&c->out); /* empty: the head segment is only sent once out is */
    size_t max = c->out.max;
    c->out = f->after;
    c->out.max = max;
    free(f);
}

int sk__conn_output(sk_conn *c, struct iovec *iov, int max, sk__conn_file *file, int *more)
{
    file->len = 0;
    file->pipe = 0;
    *more = 0;
    for (int round = 0; round < 2; round++) {
        if (c->flags & SK_C_DEAD)
            return 0;
        while (c->out.len == 0 && c->fhead && c->fhead->left == 0)
            pop_seg(c);
        int k = 0;
        if (c->out.len > 0 && k < max)
            iov[k++] = (struct iovec){(void *)sk_buf_head(&c->out), c->out.len};
        /* Shared memory and the bytes after it leave in the same call, up to
         * the first file (which gets MSG_MORE so head and body share packets). */
        for (sk_fileseg *f = c->fhead; f && k < max; f = f->next) {
            if (f->mem == NULL) {
                *more = k > 0;
                if (k == 0) {
                    file->fd = f->fd;
                    file->off = f->off;
                    file->len = f->left;
                    file->pipe = f->pipe;
                }
                break;
            }
            if (f->left > 0)
                iov[k++] = (struct iovec){(void *)(f->mem + f->off), (size_t)f->left};
            if (f->after.len > 0 && k < max)
                iov[k++] = (struct iovec){(void *)sk_buf_head(&f->after), f->after.len};
            if (f->after.len == 0 && f->next == NULL)
                break;
            if (f->left > 0 && f->after.len > 0 && k >= max)
                break;
        }
        if (k > 0 || file->len > 0)
            return k;
        if (c->out.len == 0)
            sk_buf_free(&c->out); /* idle connections keep no buffer memory */
        if (round > 0 || !(c->flags & SK_C_DRAIN) || (c->flags & SK_C_CLOSING) ||
            !c->srv->svc->on_drain)
            return 0;
        c->srv->svc->on_drain(c); /* may queue more: look again */
    }
    return 0;
}

void sk__conn_sent(sk_conn *c, size_t n)
{
    c->bytes_out += (uint64_t)n;
    c->last_io_ms = sk_now_ms();
    while (n > 0) {
        if (c->out.len > 0) {
            size_t k = n < c->out.len ? n : c->out.len;
            sk_buf_consume(&c->out, k);
            n -= k;
            continue;
        }
        sk_fileseg *f = c->fhead;
        if (f == NULL)
            break; /* more than was handed out: cannot happen */
        uint64_t k = n < f->left ? n : f->left;
        if (!f->pipe)
            f->off += (off_t)k;
        f->left -= k;
        c->fbytes -= k;
        n -= (size_t)k;
        if (f->left == 0)
            pop_seg(c);
    }
    while (c->out.len == 0 && c->fhead && c->fhead->left == 0)
        pop_seg(c);
    if (c->out.len == 0 && c->fhead == NULL)
        sk_buf_free(&c->out);
}

int sk__conn_wants_read(const sk_conn *c)
{
    if (c->flags & (SK_C_DEAD | SK_C_EOF))
        return 0;
    if (c->flags & SK_C_WSHUT)
        return 1; /* lingering close: read and discard until the peer's FIN */
    if (c->flags & SK_C_PAUSED)
        return 0; /* the service's other side is full (sk_conn_pause_read) */
    /* Backpressure: a peer that does not read our output cannot make us read
     * (and buffer) more of its input. */
    return pending(c) < SK_HIGH_WATER;
}

int sk__conn_wants_write(const sk_conn *c)
{
    if (c->flags & SK_C_DEAD)
        return 0;
    return pending(c) > 0 || ((c->flags & SK_C_DRAIN) && !(c->flags & SK_C_CLOSING));
}

int sk__conn_idle(const sk_conn *c)
{
    if (sk__conn_watching(c))
        return 0; /* joined to a child or an upstream: bytes may be on their way */
    if (c->flags & SK_C_DRAIN)
        return 1; /* an endless generator (chargen) has no work "in flight" */
    return pending(c) == 0;
}

int sk__conn_close_step(sk_conn *c)
{
    if (c->flags & SK_C_DEAD)
        return 1;
    if (pending(c) > 0)
        return 0;
    if (!(c->flags & SK_C_CLOSING)) {
        /* A half-close (sk_conn_shutdown): our FIN once the output is out,
         * then the peer's bytes still reach the service. */
        if ((c->flags & (SK_C_HALF | SK_C_HALF_DONE)) == SK_C_HALF) {
            c->flags |= SK_C_HALF_DONE;
            return 2;
        }
        return 0;
    }
    if (c->flags & SK_C_EOF)
        return 1;
    if (c->flags & SK_C_WSHUT)
        return 0;
    if (c->flags & SK_C_HALF_DONE) {
        /* Already shut: just wait (bounded) for the peer's FIN. */
        c->flags |= SK_C_WSHUT;
        c->last_io_ms = sk_now_ms();
        return 0;
    }
    /* Lingering close: send our FIN and wait (bounded, see policy.c) for the
     * peer's, reading and discarding. Closing with unread input would send a
     * reset, which can destroy the reply the peer has not read yet. */
    c->flags |= SK_C_WSHUT;
    c->last_io_ms = sk_now_ms();
    return 2;
}

void sk__conn_free(sk_conn *c)
{
    sk_server *s = c->srv;
    /* A connection that never finished its TLS handshake never reached the
     * service (and its failure was logged): no on_close, no "closed" line. */
    int opened = !(c->flags & (SK_C_HANDSHAKE | SK_C_PROXY));
    sk__conn_unwatch_all(c); /* before on_close, which may close them */
    if (opened && s->svc->on_close)
        s->svc->on_close(c);
    if (opened && s->o.verbose && !(s->svc->flags & SK_SVC_OWN_LOG)) {
        double secs = (double)(sk_now_ms() - c->started_ms) / 1000.0;
        sk_server_log(s, SK_LOG_INFO, "closed %s: %llu bytes in, %llu bytes out, %.3f s%s",
                      sk_conn_peer_name(c), (unsigned long long)c->bytes_in,
                      (unsigned long long)c->bytes_out, secs,
                      (c->flags & SK_C_DEAD) ? " (reset)" : "");
    }
    sk_buf_free(&c->out); /* the transport is the caller's to close (conn_io.c) */
    /* access (admit.c); a PROXY connection is admitted only after its header */
    if (!(c->flags & SK_C_PROXY))
        sk__admit_release(s, &c->peer.sa, c->peer_len, c->transport);
    if ((c->flags & SK_C_PROXIED) && c->peer.sa.sa_family == AF_UNIX)
        free(sk__conn_proxied_path(c));
    while (c->fhead) {
        sk_fileseg *f = c->fhead;
        c->fhead = f->next;
        fileseg_done(f);
        sk_buf_free(&f->after);
        free(f);
    }
    sk_inbox *in = sk__conn_inbox(c);
    if (in) {
        pthread_mutex_destroy(&in->mu);
        sk_buf_free(&in->buf);
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
    return c->tp.fd;
}

sk_transport sk_conn_transport(const sk_conn *c)
{
    return (sk_transport)c->transport;
}

int sk_conn_send(sk_conn *c, const void *data, size_t len)
{
    if (c->flags & (SK_C_DEAD | SK_C_CLOSING | SK_C_HALF))
        return -1;
    sk_buf *b = tail_buf(c);
    if (b != &c->out)
        b->max = c->out.max;
    if (sk_buf_append(b, data, len) < 0) {
        /* Over the queue limit: the peer is not reading. Drop it rather than
         * grow without bound. */
        c->flags |= SK_C_DEAD;
        return -1;
    }
    if (b != &c->out)
        c->fbytes += len;
    return 0;
}

/* Queue a file (mem == NULL) or shared memory segment. The segment's owner
 * is told (release, or close for an owned fd) at once when it cannot be queued. */
static int queue_seg(sk_conn *c, int fd, off_t off, uint64_t len, const void *mem,
                     void (*release)(void *arg), void *arg)
{
    sk_fileseg tmp = {.fd = fd, .release = release, .arg = arg};
    const uint16_t done = SK_C_DEAD | SK_C_CLOSING | SK_C_HALF;
    if ((c->flags & done) || len == 0) {
        fileseg_done(&tmp);
        return len == 0 && !(c->flags & done) ? 0 : -1;
    }
    sk_fileseg *f = calloc(1, sizeof *f);
    if (f == NULL) {
        fileseg_done(&tmp);
        c->flags |= SK_C_DEAD;
        return -1;
    }
    *f = tmp;
    f->off = off;
    f->left = len;
    f->mem = mem;
    sk_fileseg *last = last_seg(c);
    if (last)
        last->next = f;
    else
        c->fhead = f;
    c->fbytes += len;
    return 0;
}

int sk_conn_queue(sk_conn *c, const sk_seg *seg)
{
    switch (seg->kind) {
    case SK_SEG_BYTES: return sk_conn_send(c, seg->mem, (size_t)seg->len);
    case SK_SEG_MEM:
        if (seg->mem == NULL && seg->len > 0)
            break;
        return queue_seg(c, -1, 0, seg->len, seg->mem, seg->release, seg->arg);
    case SK_SEG_FILE:
        if (seg->fd < 0)
            break;
        return queue_seg(c, seg->fd, seg->off, seg->len, NULL, seg->release, seg->arg);
    case SK_SEG_PIPE:
#ifdef __linux__
        if (seg->fd < 0 || c->tp.impl != NULL || c->tp.ops != &sk__tp_plain_ops)
            break; /* splice sends a pipe's bytes to a plain socket only */
        if (queue_seg(c, seg->fd, 0, seg->len, NULL, seg->release, seg->arg) < 0)
            return -1;
        if (seg->len > 0)
            last_seg(c)->pipe = 1;
        return 0;
#else
        break;
#endif
    }
    /* A malformed segment: still hand it back to its owner, as promised. */
    int owned = seg->kind == SK_SEG_FILE || seg->kind == SK_SEG_PIPE;
    sk_fileseg tmp = {.fd = owned ? seg->fd : -1, .release = seg->release, .arg = seg->arg};
    if (seg->kind == SK_SEG_PIPE && seg->fd >= 0) {
        fileseg_done(&tmp);
        errno = EOPNOTSUPP;
        return -1;
    }
    fileseg_done(&tmp);
    errno = EINVAL;
    return -1;
}

void sk_conn_set_timer(sk_conn *c, int ms)
{
    if (ms > 0) {
        c->timer_at = (uint32_t)(sk_now_ms() + ms);
        c->flags |= SK_C_TIMER;
    } else {
        c->flags &= ~SK_C_TIMER;
    }
}

/* The deadline is kept as 32 bits of the millisecond clock: it is never more
 * than INT32_MAX ms away (the `int ms` of sk_conn_set_timer), so the signed
 * difference from now recovers it whatever the clock's high bits are. */
int64_t sk__conn_timer_deadline(const sk_conn *c, int64_t now)
{
    if (!(c->flags & SK_C_TIMER))
        return -1;
    return now + (int32_t)(c->timer_at - (uint32_t)now);
}

int sk__conn_check_timer(sk_conn *c, int64_t now)
{
    int64_t at = sk__conn_timer_deadline(c, now);
    if (at < 0 || now < at)
        return 0;
    c->flags &= ~SK_C_TIMER;
    if (c->srv->svc->on_timeout)
        c->srv->svc->on_timeout(c);
    else
        sk_conn_close(c);
    return 1;
}

int sk_conn_post(sk_conn *c, const void *data, size_t len)
{
    sk_inbox *in = sk__conn_inbox(c);
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
    if (wake && c->srv->wake)
        c->srv->wake(c);
    return rc;
}

void sk__conn_take_inbox(sk_conn *c)
{
    sk_inbox *in = sk__conn_inbox(c);
    if (in == NULL)
        return;
    pthread_mutex_lock(&in->mu);
    in->queued = 0;
    if (in->overflow || pending(c) + in->buf.len > c->out.max) {
        c->flags |= SK_C_DEAD;
        if (c->srv->o.verbose)
            sk_server_log(c->srv, SK_LOG_INFO, "%s reads too slowly: queue full, dropped",
                          sk_conn_peer_name(c));
    } else if (in->buf.len > 0 && !(c->flags & SK_C_CLOSING)) {
        if (c->out.len == 0 && c->fhead == NULL) {
            /* Take the whole buffer instead of copying it. */
            sk_buf t = c->out;
            c->out = in->buf;
            c->out.max = t.max;
            in->buf = t;
            in->buf.max = c->out.max;
        } else {
            sk_conn_send(c, sk_buf_head(&in->buf), in->buf.len);
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
        c->flags &= ~SK_C_DRAIN;
}

size_t sk_conn_pending(const sk_conn *c)
{
    return (size_t)pending(c);
}

/* A TCP peer not taken at accept is asked for the first time it is wanted,
 * so a server that never names it (-q, no access rules) never asks. */
static void known_peer(sk_conn *c)
{
    if (c->peer_len == 0 && c->transport == SK_TCP)
        sk__conn_peer_take(c);
}

const char *sk_conn_peer_name(sk_conn *c)
{
    known_peer(c);
    static _Thread_local char buf[SK_NAME_MAX];
    if (c->flags & SK_C_PROXIED) { /* the header's source: an address, never credentials */
        if (c->peer.sa.sa_family == AF_UNIX) {
            snprintf(buf, sizeof buf, "unix:%s", sk__conn_proxied_path(c));
            return buf;
        }
        return sk_sockaddr_format(&c->peer.sa, c->peer_len, SK_TCP, buf, sizeof buf);
    }
    if (c->transport == SK_UNIX && c->peer.cred.has_uid)
        return sk_unix_peer_format(c->peer.cred.pid, c->peer.cred.uid, buf, sizeof buf);
    return sk_sockaddr_format(&c->peer.sa, c->peer_len, c->transport, buf, sizeof buf);
}

const struct sockaddr *sk_conn_peer_addr(sk_conn *c, socklen_t *len)
{
    known_peer(c);
    *len = 0;
    if (c->peer.sa.sa_family != AF_INET && c->peer.sa.sa_family != AF_INET6)
        return NULL;
    *len = c->peer_len;
    return &c->peer.sa;
}

void sk_conn_peer_host_port(sk_conn *c, char *host, size_t cap, unsigned *port)
{
    known_peer(c);
    if ((c->flags & SK_C_PROXIED) && c->peer.sa.sa_family == AF_UNIX) {
        *port = 0; /* a PROXY v2 Unix source: "unix:PATH", as the access log shows it */
        if (cap > 0)
            snprintf(host, cap, "unix:%s", sk__conn_proxied_path(c));
        return;
    }
    sk_sockaddr_host_port(&c->peer.sa, c->peer_len, host, cap, port);
}

int sk_conn_proxied(const sk_conn *c)
{
    return (c->flags & SK_C_PROXIED) != 0;
}
