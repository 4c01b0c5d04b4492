/*
 * transport.h - the seam between a connection and the wire. Internal (not
 * installed).
 *
 * Every byte a stream connection reads or writes goes through a small table
 * of operations chosen per connection, in the manner of redis's
 * ConnectionType: the plain-socket transport is the first implementation
 * (tp_plain.c); an encrypting one (TLS) is another table behind the same
 * calls. The code above the seam (the server's connections, the blocking
 * models, the stdin/stdout relay, the load generator) never calls recv, send,
 * sendmsg, sendfile or splice itself.
 *
 * Contract of every operation:
 *   > 0                 progress (bytes read, written or sent)
 *   0                   read: the peer's orderly end of stream (FIN, TLS
 *                       close_notify); sendfile: the file ended early
 *   SK_TP_AGAIN         no progress now: wait until t->want (SK_TP_WANT_READ
 *                       and/or SK_TP_WANT_WRITE) is ready, then call again. A
 *                       TLS handshake may make a write wait for readability.
 *   SK_TP_ERR           failure, errno set (ECONNRESET, EPIPE, ...): the
 *                       connection is dead
 *   SK_TP_UNSUPPORTED   sendfile only: this transport cannot send from that
 *                       descriptor without a copy; read it and use writev
 * EINTR is retried inside. No operation ever raises SIGPIPE.
 */
#ifndef SK_TRANSPORT_H
#define SK_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define SK_TP_ERR (-1)
#define SK_TP_AGAIN (-2)
#define SK_TP_UNSUPPORTED (-3)

#define SK_TP_WANT_READ 0x1u
#define SK_TP_WANT_WRITE 0x2u

/* writev/sendfile flags */
#define SK_TP_MORE 0x1u /* more follows at once: let it share packets (MSG_MORE) */
#define SK_TP_PIPE 0x2u /* sendfile: fd is a pipe (splice), else a regular file */

typedef struct sk_tp sk_tp;

typedef struct sk_tp_ops {
    const char *name; /* "plain", "tls" */
    ssize_t (*read)(sk_tp *t, void *buf, size_t cap);
    ssize_t (*writev)(sk_tp *t, const struct iovec *iov, int iovcnt, unsigned flags);
    /* Send up to len bytes of fd: from *off (advanced by what was sent), or
     * from fd's own position when off is NULL. */
    ssize_t (*sendfile)(sk_tp *t, int fd, off_t *off, size_t len, unsigned flags);
    /* End our sending side (FIN; TLS: close_notify then FIN). 0, SK_TP_AGAIN or SK_TP_ERR. */
    int (*shutdown)(sk_tp *t);
    /* Close the descriptor and free the transport's own state. */
    void (*close)(sk_tp *t);
    /* Bytes the transport already holds for the reader (decrypted TLS
     * records): readable although the socket is not. NULL: none ever. */
    size_t (*buffered)(const sk_tp *t);
    /* Drop up to max bytes of input without copying them anywhere (a TCP
     * socket on Linux: recv with MSG_TRUNC). Returns like read. NULL: the
     * transport cannot (read and throw away instead). For TCP sockets only:
     * the caller checks (a Unix stream socket does not drop on MSG_TRUNC). */
    ssize_t (*discard)(sk_tp *t, size_t max);
} sk_tp_ops;

/* Small, so that it can live inside every connection. */
struct sk_tp {
    const sk_tp_ops *ops;
    void *impl;    /* the transport's own state; NULL for plain sockets */
    int fd;        /* the socket (non-blocking for event models) */
    unsigned want; /* SK_TP_WANT_*: what the last SK_TP_AGAIN waits for */
};

extern const sk_tp_ops sk__tp_plain_ops;

/* Make t a plain-socket transport on fd (no allocation; cannot fail). */
void sk__tp_plain(sk_tp *t, int fd);

/* sk_relay (relay.c) over any transport; the caller keeps t and closes it. */
struct sk_relay_opts;
struct sk_relay_stats;
struct sk_err;
int sk__relay_tp(sk_tp *t, int in_fd, int out_fd, const struct sk_relay_opts *o,
                 struct sk_relay_stats *st, struct sk_err *err);

static inline ssize_t sk__tp_read(sk_tp *t, void *buf, size_t cap)
{
    return t->ops->read(t, buf, cap);
}

static inline ssize_t sk__tp_writev(sk_tp *t, const struct iovec *iov, int iovcnt, unsigned flags)
{
    return t->ops->writev(t, iov, iovcnt, flags);
}

/* Write one buffer (a writev of one). */
static inline ssize_t sk__tp_write(sk_tp *t, const void *buf, size_t len, unsigned flags)
{
    struct iovec v = {(void *)buf, len};
    return t->ops->writev(t, &v, 1, flags);
}

static inline ssize_t sk__tp_sendfile(sk_tp *t, int fd, off_t *off, size_t len, unsigned flags)
{
    return t->ops->sendfile(t, fd, off, len, flags);
}

static inline int sk__tp_shutdown(sk_tp *t)
{
    return t->ops->shutdown(t);
}

static inline void sk__tp_close(sk_tp *t)
{
    if (t->ops != NULL)
        t->ops->close(t);
    t->fd = -1;
}

/* 1 if t can drop input without a copy (sk__tp_discard). */
static inline int sk__tp_can_discard(const sk_tp *t)
{
    return t->ops->discard != NULL;
}

static inline ssize_t sk__tp_discard(sk_tp *t, size_t max)
{
    return t->ops->discard(t, max);
}

static inline size_t sk__tp_buffered(const sk_tp *t)
{
    return t->ops->buffered ? t->ops->buffered(t) : 0;
}

#endif
