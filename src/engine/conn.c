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
#ifdef __linux__
#include <sys/sendfile.h>
#endif
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
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

/* Total bytes queued for the peer (buffered and file). */
static uint64_t pending(const sk_conn *c)
{
    return c->out.len + c->fbytes;
}

/* Where newly queued bytes go: after the last queued file, if any. */
static sk_buf *tail_buf(sk_conn *c)
{
    return c->ftail ? &c->ftail->after : &c->out;
}

/* Send part of the head file. Returns bytes sent, 0 if the socket is full, -1 on error. */
static ssize_t send_file_part(sk_conn *c, sk_fileseg *f)
{
    size_t want = f->left > (1u << 20) ? (1u << 20) : (size_t)f->left;
#ifdef __linux__
    ssize_t n = sendfile(c->fd, f->fd, &f->off, want);
#else
    char tmp[16384];
    if (want > sizeof tmp)
        want = sizeof tmp;
    ssize_t n = pread(f->fd, tmp, want, f->off);
    if (n > 0) {
        ssize_t w = send(c->fd, tmp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            f->off += w;
        n = w;
    }
#endif
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    if (n == 0) {
        errno = EIO; /* the file shrank under us: the promised length cannot be kept */
        return -1;
    }
    return n;
}

static void fileseg_done(sk_fileseg *f)
{
    if (f->release)
        f->release(f->arg);
    else if (f->fd >= 0)
        close(f->fd);
}

/* The head file is sent: its trailing bytes become the front of the queue. */
static void pop_file(sk_conn *c)
{
    sk_fileseg *f = c->fhead;
    c->fhead = f->next;
    if (c->fhead == NULL)
        c->ftail = NULL;
    fileseg_done(f);
    c->fbytes -= f->after.len;
    sk_buf_free(&c->out); /* empty: the head file is only sent once out is */
    size_t max = c->out.max;
    c->out = f->after;
    c->out.max = max;
    free(f);
}

void sk__conn_write(sk_conn *c)
{
    /* A budget per call keeps one endless writer (chargen to a fast reader)
     * from starving the other connections of an event loop. */
    size_t budget = 4 * SK_READ_CHUNK * 4;
    while (!(c->flags & SK_C_DEAD) && budget > 0) {
        ssize_t n;
        sk_fileseg *m = c->fhead && c->fhead->mem && c->fhead->left ? c->fhead : NULL;
        if (c->out.len > 0 || m != NULL) {
            /* Buffered bytes and a memory segment after them leave in one call;
             * before a file, MSG_MORE lets the head and the body share packets. */
            struct iovec iov[2];
            int k = 0;
            if (c->out.len > 0)
                iov[k++] = (struct iovec){(void *)sk_buf_head(&c->out), c->out.len};
            if (m != NULL)
                iov[k++] = (struct iovec){(void *)(m->mem + m->off), (size_t)m->left};
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)k};
            int more = c->fhead && !m ? MSG_MORE : 0;
            n = k == 1 && m == NULL
                    ? send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | more)
                    : sendmsg(c->fd, &msg, MSG_NOSIGNAL | more);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    c->flags |= SK_C_DEAD;
                break;
            }
            size_t from_buf = (size_t)n < c->out.len ? (size_t)n : c->out.len;
            sk_buf_consume(&c->out, from_buf);
            if ((size_t)n > from_buf) {
                m->off += (off_t)((size_t)n - from_buf);
                m->left -= (size_t)n - from_buf;
                c->fbytes -= (size_t)n - from_buf;
            }
        } else if (c->fhead != NULL) {
            if (c->fhead->left == 0) {
                pop_file(c);
                continue;
            }
            n = send_file_part(c, c->fhead);
            if (n < 0)
                c->flags |= SK_C_DEAD;
            if (n <= 0)
                break;
            c->fhead->left -= (uint64_t)n;
            c->fbytes -= (uint64_t)n;
        } else {
            if ((c->flags & SK_C_DRAIN) && !(c->flags & SK_C_CLOSING) && c->srv->svc->on_drain) {
                c->srv->svc->on_drain(c); /* may queue more: the loop goes on */
                if (pending(c) > 0)
                    continue;
            }
            break;
        }
        c->bytes_out += (uint64_t)n;
        budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
        c->last_io_ms = sk_now_ms();
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
    if (c->flags & SK_C_DRAIN)
        return 1; /* an endless generator (chargen) has no work "in flight" */
    if (pending(c) > 0)
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
    if (!(c->flags & SK_C_CLOSING) || pending(c) > 0)
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
    sk__admit_release(s, &c->peer.u.sa, c->peer.len, c->transport); /* access (admit.c) */
    sk_buf_free(&c->out);
    while (c->fhead) {
        sk_fileseg *f = c->fhead;
        c->fhead = f->next;
        fileseg_done(f);
        sk_buf_free(&f->after);
        free(f);
    }
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

int sk_conn_sendfile_shared(sk_conn *c, int fd, off_t off, uint64_t len, void (*release)(void *arg),
                            void *arg)
{
    sk_fileseg tmp = {.fd = fd, .release = release, .arg = arg};
    if ((c->flags & (SK_C_DEAD | SK_C_CLOSING)) || len == 0) {
        fileseg_done(&tmp);
        return len == 0 && !(c->flags & (SK_C_DEAD | SK_C_CLOSING)) ? 0 : -1;
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
    if (c->ftail)
        c->ftail->next = f;
    else
        c->fhead = f;
    c->ftail = f;
    c->fbytes += len;
    return 0;
}

int sk_conn_send_shared(sk_conn *c, const void *mem, size_t len, void (*release)(void *arg),
                        void *arg)
{
    if (sk_conn_sendfile_shared(c, -1, 0, len, release, arg) < 0 || len == 0)
        return len == 0 ? 0 : -1;
    c->ftail->mem = mem;
    return 0;
}

int sk_conn_sendfile(sk_conn *c, int fd, off_t off, uint64_t len)
{
    return sk_conn_sendfile_shared(c, fd, off, len, NULL, NULL);
}

void sk_conn_set_timer(sk_conn *c, int ms)
{
    c->timer_at = ms > 0 ? sk_now_ms() + ms : 0;
}

int sk__conn_check_timer(sk_conn *c, int64_t now)
{
    if (c->timer_at == 0 || now < c->timer_at)
        return 0;
    c->timer_at = 0;
    if (c->srv->svc->on_timeout)
        c->srv->svc->on_timeout(c);
    else
        sk_conn_close(c);
    return 1;
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
    if (wake && c->srv->wake)
        c->srv->wake(c);
    return rc;
}

void sk__conn_take_inbox(sk_conn *c)
{
    sk_inbox *in = c->inbox;
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
        c->flags &= ~(unsigned)SK_C_DRAIN;
}

size_t sk_conn_pending(const sk_conn *c)
{
    return (size_t)pending(c);
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
