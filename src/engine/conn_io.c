/*
 * conn_io.c - moving a connection's bytes through its transport: the one
 * place that reads, writes, sends files and shuts down for every model
 * (blocking drivers and event loops alike). conn.c decides what; this does it.
 *
 * The transport may be plain or encrypting: a write may have to wait for
 * readability (and a read for writability), which is recorded in the
 * connection's flags for sk__conn_interest (policy.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

#define OUT_IOV 8
#define DISCARD_MAX (64u << 20) /* dropped unseen in one call (SK_SVC_DISCARDS_INPUT) */
#define HEAD_SLACK (16u * 1024) /* see the file chunk in sk__conn_pump_write */
#define COPY_CHUNK 16384        /* copy_file's most per call */

static void note_want(sk_conn *c, uint16_t cross_flag, unsigned cross_want)
{
    if (c->tp.want & cross_want)
        c->flags |= cross_flag;
    else
        c->flags &= (uint16_t)~cross_flag;
}

ssize_t sk__conn_pump_read(sk_conn *c, uint8_t *scratch, size_t cap)
{
    if (!sk__conn_wants_read(c))
        return SK_TP_AGAIN;
    if (c->flags & SK_C_PROXY) { /* before anything: the PROXY header (conn_proxy.c) */
        ssize_t h = sk__conn_pump_proxy(c, scratch, cap);
        if (h != 1 || !sk__conn_wants_read(c))
            return h;
    }
    if (c->flags & SK_C_HANDSHAKE) {
        ssize_t h = sk__conn_pump_handshake(c);
        if (h != 1 || !sk__conn_wants_read(c))
            return h;
        /* done: application data may have come with the client's Finished */
    }
    void *arg;
    sk_conn_read_cb *hook = sk__conn_read_hook(c, &arg);
    /* A service that ignores its input: a TCP socket drops it in the kernel,
     * no copy, and as much as is there in one call. */
    int drop = hook == NULL && (c->srv->svc->flags & SK_SVC_DISCARDS_INPUT) &&
               c->transport == SK_TCP && sk__tp_can_discard(&c->tp);
    ssize_t n;
    if (hook != NULL) {
        /* The service moves the bytes itself (a relay's splice): keep the
         * bookkeeping a read would have done. */
        n = hook(c, c->tp.fd, arg);
        if (n > 0) {
            c->last_io_ms = sk_now_ms();
            c->bytes_in += (uint64_t)n;
            return n;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->tp.want = SK_TP_WANT_READ;
            n = SK_TP_AGAIN;
        } else if (n < 0) {
            n = SK_TP_ERR;
        }
    } else {
        n = drop ? sk__tp_discard(&c->tp, DISCARD_MAX) : sk__tp_read(&c->tp, scratch, cap);
    }
    if (n > 0) {
        c->flags &= (uint16_t)~SK_C_RD_WANTS_W;
        if (drop)
            sk__conn_feed_dropped(c, (size_t)n);
        else
            sk__conn_feed(c, scratch, (size_t)n);
    } else if (n == 0) {
        sk__conn_feed_eof(c);
    } else if (n == SK_TP_AGAIN) {
        note_want(c, SK_C_RD_WANTS_W, SK_TP_WANT_WRITE);
    } else {
        sk__conn_feed_error(c, errno);
    }
    return n;
}

/* The transport cannot send from the file (an encrypting one): copy it. */
static ssize_t copy_file(sk_conn *c, const sk__conn_file *f, size_t len)
{
    uint8_t tmp[COPY_CHUNK];
    if (len > sizeof tmp)
        len = sizeof tmp;
    ssize_t r;
    do
        r = pread(f->fd, tmp, len, f->off);
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        if (r == 0)
            errno = EIO;
        return SK_TP_ERR;
    }
    return sk__tp_write(&c->tp, tmp, (size_t)r, 0); /* nothing consumed until sent */
}

/* The common case, bytes only (an echo, a small reply): one write of the
 * queue without assembling iovecs. 1: done (all sent, the transport would
 * block, or the connection failed); 0: not taken, or some left (the general
 * loop goes on). */
static int write_bytes_only(sk_conn *c, size_t *budget)
{
    if (c->fhead != NULL || c->out.len == 0 || c->out.len > *budget ||
        (c->flags & (SK_C_DEAD | SK_C_DRAIN)))
        return 0;
    size_t len = c->out.len;
    ssize_t n = sk__tp_write(&c->tp, sk_buf_head(&c->out), len, 0);
    if (n == SK_TP_AGAIN) {
        note_want(c, SK_C_WR_WANTS_R, SK_TP_WANT_READ);
        return 1;
    }
    if (n < 0) {
        sk__conn_feed_error(c, errno);
        return 1;
    }
    if (n == 0)
        return 0;
    c->flags &= (uint16_t)~SK_C_WR_WANTS_R;
    sk__conn_sent(c, (size_t)n);
    *budget -= (size_t)n;
    /* Short on a plain socket: it is full (see sk__conn_pump_write). */
    return (size_t)n == len || c->tp.impl == NULL;
}

int sk__conn_pump_write(sk_conn *c, size_t budget)
{
    if (write_bytes_only(c, &budget))
        return 0;
    int files = 0;
    while (budget > 0) {
        struct iovec iov[OUT_IOV];
        sk__conn_file f;
        int more;
        int k = sk__conn_output(c, iov, OUT_IOV, &f, &more);
        ssize_t n;
        size_t asked = 0; /* what the call was asked to move */
        if (k > 0) {
            for (int i = 0; i < k; i++)
                asked += iov[i].iov_len;
            n = sk__tp_writev(&c->tp, iov, k, more ? SK_TP_MORE : 0);
        } else if (f.len > 0) {
            /* One file chunk per call: a reader of a large file takes its turn
             * with the other connections of the loop instead of filling its
             * socket buffer over and over before they are looked at. */
            if (files++ > 0)
                return 1;
            /* At most the budget, and at most SK_FILE_CHUNK; but the budget
             * is not cut by a response head written just before the body
             * (HEAD_SLACK): a 1 MiB body would otherwise leave a few hundred
             * bytes for another wakeup, and an interest change each way. */
            size_t len = f.len > SK_FILE_CHUNK ? SK_FILE_CHUNK : (size_t)f.len;
            if (len > budget + HEAD_SLACK)
                len = budget + HEAD_SLACK;
            off_t off = f.off;
            /* (a pipe may hold less than asked: short is not full there) */
            asked = f.pipe ? 0 : len;
            if (f.pipe) /* a relay's pipe (SK_SEG_PIPE: plain connections only) */
                n = sk__tp_sendfile(&c->tp, f.fd, NULL, len, SK_TP_PIPE);
            else
                n = sk__tp_sendfile(&c->tp, f.fd, &off, len, 0);
            if (n == SK_TP_UNSUPPORTED && f.pipe) {
                errno = EOPNOTSUPP;
                n = SK_TP_ERR;
            } else if (n == SK_TP_UNSUPPORTED) {
                asked = len < COPY_CHUNK ? len : COPY_CHUNK;
                n = copy_file(c, &f, len);
            }
            if (n == 0) {
                errno = EIO; /* the file shrank under us: the promised length cannot be kept */
                n = SK_TP_ERR;
            }
        } else {
            return 0; /* all sent */
        }
        if (n == SK_TP_AGAIN) {
            note_want(c, SK_C_WR_WANTS_R, SK_TP_WANT_READ);
            return 0;
        }
        if (n < 0) {
            sk__conn_feed_error(c, errno);
            return 0;
        }
        c->flags &= (uint16_t)~SK_C_WR_WANTS_R;
        sk__conn_sent(c, (size_t)n);
        /* A plain socket that took less than asked is full: wait for
         * writability (0), rather than learn it from one more call that
         * fails with EAGAIN, or count it as writable (1: the ready list). An
         * encrypting transport may stop at a record's end: go on. */
        if ((size_t)n < asked && c->tp.impl == NULL)
            return 0;
        budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
    }
    return sk__conn_wants_write(c);
}

/* Shut the write side (a TLS close_notify first). An encrypting transport
 * that cannot send its close_notify now (SK_TP_AGAIN) is asked again when
 * writable (SK_C_SHUT_AGAIN: policy.c waits for it) during the lingering
 * wait; only an error ends the connection at once. */
static int shut_write(sk_conn *c)
{
    int r = sk__tp_shutdown(&c->tp);
    if (r == SK_TP_ERR)
        return 1;
    if (r == SK_TP_AGAIN)
        c->flags |= SK_C_SHUT_AGAIN;
    else
        c->flags &= (uint16_t)~SK_C_SHUT_AGAIN;
    return 0;
}

int sk__conn_pump_close(sk_conn *c)
{
    if (c->flags & SK_C_SHUT_AGAIN) {
        if (c->flags & SK_C_DEAD)
            return 1;
        if (shut_write(c))
            return 1;
        if (c->flags & SK_C_SHUT_AGAIN)
            return 0; /* still waiting for writability */
    }
    int step = sk__conn_close_step(c);
    if (step == 2)
        return shut_write(c);
    /* The peer ended its stream first: a plain socket just closes, but an
     * encrypting transport (it has state: impl) still owes its close_notify,
     * or the peer sees a truncation and the session is not resumable. */
    if (step == 1 && c->tp.impl != NULL && !(c->flags & (SK_C_DEAD | SK_C_WSHUT))) {
        c->flags |= SK_C_WSHUT;
        if (shut_write(c))
            return 1;
        return (c->flags & SK_C_SHUT_AGAIN) ? 0 : 1;
    }
    return step;
}

void sk__conn_peer_cred(sk_conn *c)
{
    if (c->transport != SK_UNIX)
        return;
    int pid;
    unsigned uid;
    if (sk_unix_peer_cred(c->tp.fd, &pid, &uid) == 0) {
        c->peer.cred.pid = pid;
        c->peer.cred.uid = uid;
        c->peer.cred.has_uid = 1;
    }
}

void sk__conn_peer_take(sk_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(c->tp.fd, (struct sockaddr *)&ss, &len) < 0 || len == 0)
        return; /* reset already: named as an unnamed peer, as before the ask */
    if (len > (socklen_t)sizeof c->peer)
        len = (socklen_t)sizeof c->peer;
    memcpy(&c->peer, &ss, len);
    c->peer_len = (uint8_t)len;
}

void sk_conn_abort(sk_conn *c)
{
    /* Closed with a zero linger time, the socket sends a reset instead of
     * an orderly end of stream. */
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    if (c->tp.fd >= 0)
        (void)setsockopt(c->tp.fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
    c->flags |= SK_C_DEAD;
}

void sk__conn_close_file(int fd)
{
    close(fd);
}

void sk__conn_destroy(sk_conn *c)
{
    sk_tp tp = c->tp;
    sk__conn_free(c); /* the service's on_close runs while the socket is open */
    sk__tp_close(&tp);
}
