/*
 * tp_plain.c - the plain-socket transport: the operations of transport.h as
 * the system calls themselves, with MSG_NOSIGNAL, EINTR retried, and
 * sendfile/splice for zero-copy sends.
 */
#define _GNU_SOURCE /* splice, MSG_MORE */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sendfile.h>
#endif

#include "transport.h"

#ifndef MSG_MORE
#define MSG_MORE 0
#endif

/* A call failed with errno other than EINTR: wait for `want`, or give up. */
static ssize_t failed(sk_tp *t, unsigned want)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        t->want = want;
        return SK_TP_AGAIN;
    }
    return SK_TP_ERR;
}

static ssize_t plain_read(sk_tp *t, void *buf, size_t cap)
{
    for (;;) {
        ssize_t n = recv(t->fd, buf, cap, 0);
        if (n < 0 && errno == ENOTSOCK) /* a pipe or a terminal stands in for the socket */
            n = read(t->fd, buf, cap);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return failed(t, SK_TP_WANT_READ);
    }
}

#if defined(__linux__) && defined(MSG_TRUNC)
/* Linux drops a TCP socket's input with MSG_TRUNC and no buffer: the
 * bytes never reach user space (tcp_recvmsg). */
static ssize_t plain_discard(sk_tp *t, size_t max)
{
    for (;;) {
        ssize_t n = recv(t->fd, NULL, max, MSG_TRUNC);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return failed(t, SK_TP_WANT_READ);
    }
}
#define PLAIN_DISCARD plain_discard
#else
#define PLAIN_DISCARD NULL
#endif

static ssize_t plain_writev(sk_tp *t, const struct iovec *iov, int iovcnt, unsigned flags)
{
    int f = MSG_NOSIGNAL | ((flags & SK_TP_MORE) ? MSG_MORE : 0);
    for (;;) {
        ssize_t n;
        if (iovcnt == 1) {
            n = send(t->fd, iov[0].iov_base, iov[0].iov_len, f);
        } else {
            struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
            n = sendmsg(t->fd, &m, f);
        }
        if (n < 0 && errno == ENOTSOCK)
            n = writev(t->fd, iov, iovcnt);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return failed(t, SK_TP_WANT_WRITE);
    }
}

/* sendfile and splice take no MSG_NOSIGNAL: a peer that has gone raises
 * SIGPIPE, which kills a process that has not ignored it. Once the process is
 * known to ignore it (the usual case: the program called sk_ignore_sigpipe)
 * nothing more is done; otherwise SIGPIPE is held blocked in this thread for
 * the call, and one it raised is taken back before the mask is restored. */
static atomic_int g_sigpipe_ignored;

static int sigpipe_ignored(void)
{
    if (atomic_load_explicit(&g_sigpipe_ignored, memory_order_relaxed))
        return 1;
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) {
        atomic_store_explicit(&g_sigpipe_ignored, 1, memory_order_relaxed);
        return 1;
    }
    return 0;
}

static ssize_t sendfile_once(sk_tp *t, int fd, off_t *off, size_t len, unsigned flags);

static ssize_t plain_sendfile(sk_tp *t, int fd, off_t *off, size_t len, unsigned flags)
{
    if (sigpipe_ignored())
        return sendfile_once(t, fd, off, len, flags);
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old) != 0)
        return sendfile_once(t, fd, off, len, flags);
    int was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    ssize_t n = sendfile_once(t, fd, off, len, flags);
    int e = errno;
    if (n == SK_TP_ERR && e == EPIPE && !was_pending && !sigismember(&old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return n;
}

static ssize_t sendfile_once(sk_tp *t, int fd, off_t *off, size_t len, unsigned flags)
{
    for (;;) {
        ssize_t n;
#ifdef __linux__
        if (flags & SK_TP_PIPE)
            n = splice(fd, NULL, t->fd, NULL, len,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK |
                           ((flags & SK_TP_MORE) ? SPLICE_F_MORE : 0));
        else
            n = sendfile(t->fd, fd, off, len);
#else
        if (flags & SK_TP_PIPE)
            return SK_TP_UNSUPPORTED;
        char tmp[16384];
        if (len > sizeof tmp)
            len = sizeof tmp;
        n = off ? pread(fd, tmp, len, *off) : read(fd, tmp, len);
        if (n > 0) {
            struct iovec v = {tmp, (size_t)n};
            ssize_t w = plain_writev(t, &v, 1, flags);
            if (w < 0)
                return w; /* nothing consumed from a file at *off; a pipe read is lost */
            if (off)
                *off += w;
            n = w;
        }
#endif
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)
            return SK_TP_UNSUPPORTED;
        return failed(t, SK_TP_WANT_WRITE);
    }
}

static int plain_shutdown(sk_tp *t)
{
    return shutdown(t->fd, SHUT_WR) == 0 ? 0 : SK_TP_ERR;
}

static void plain_close(sk_tp *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

const sk_tp_ops sk__tp_plain_ops = {
    .name = "plain",
    .read = plain_read,
    .writev = plain_writev,
    .sendfile = plain_sendfile,
    .shutdown = plain_shutdown,
    .close = plain_close,
    .buffered = NULL,
    .discard = PLAIN_DISCARD,
};

void sk__tp_plain(sk_tp *t, int fd)
{
    t->ops = &sk__tp_plain_ops;
    t->impl = NULL;
    t->fd = fd;
    t->want = 0;
}
