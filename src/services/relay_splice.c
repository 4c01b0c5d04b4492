/*
 * relay_splice.c - the stream relay without user-space copies (Linux): both
 * directions go socket -> pipe -> socket with splice(2), so the bytes stay
 * in the kernel's pages.
 *
 *   client -> target: the connection's read hook (sk_conn_read_hook) splices
 *     what the client sent into pipe_in and at once on to the target; what
 *     the target does not take stays in the pipe (in_pending) while reading
 *     from the client is paused, until the target is writable again.
 *   target -> client: when the target is readable, splice into pipe_out and
 *     queue what came as an SK_SEG_PIPE segment: the engine splices it to
 *     the client. The pipe holds exactly the queued segments' bytes; once
 *     it is half full, reading the target waits until the client took all
 *     (on_drain).
 *
 * TLS connections (their bytes need user space) and other systems keep the
 * copying path of relay_stream.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "relay_stream.h"

#ifdef __linux__

#define PIPE_SIZE (256 * 1024) /* asked for; the default 64 KiB if refused */

static void note(sk__fwd *f, const char *what)
{
    if (f->why[0] == '\0')
        snprintf(f->why, sizeof f->why, "%s: %s", what, strerror(errno));
}

/* Returns the pipe's capacity, or -1. */
static int make_pipe(int p[2])
{
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    int cap = fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE); /* fewer, larger moves */
    if (cap < 0)
        cap = fcntl(p[1], F_GETPIPE_SZ); /* refused (a user's pipe quota): the default */
    return cap > 0 ? cap : 65536;
}

static void close_pipe(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
}

/* Nothing to release: the pipe is the relay's, closed in on_close. */
static void keep_pipe(void *arg)
{
    (void)arg;
}

int sk__fwd_splice_pending(const sk__fwd *f)
{
    return f->in_pending > 0;
}

int sk__fwd_splice_flush(sk_conn *c, sk__fwd *f)
{
    while (f->in_pending > 0) {
        ssize_t n = splice(f->pipe_in[0], NULL, f->up, NULL, f->in_pending,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            f->in_pending -= (size_t)n;
            f->up_bytes += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n == 0)
            errno = EIO;
        note(f, "target stopped taking data");
        sk__fwd_close(c, f);
        return -1;
    }
    return 1;
}

/* The read hook: the client is readable. Its bytes go into the pipe and on
 * to the target; what the target does not take waits in the pipe, and the
 * client is read on until the pipe is half full (then paused until the
 * target took it all), so a slow target costs few interest changes. */
static ssize_t splice_up(sk_conn *c, int fd, void *arg)
{
    sk__fwd *f = arg;
    if (f->in_pending >= f->pipe_in_cap / 2) { /* (paused by now: see below) */
        errno = EAGAIN;
        return -1;
    }
    ssize_t n;
    do
        n = splice(fd, NULL, f->pipe_in[1], NULL, f->pipe_in_cap - f->in_pending,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n; /* 0: the client's end of stream; -1: EAGAIN or its error */
    f->in_pending += (size_t)n;
    int r = 0;
    if (!(f->watching & SK_WATCH_WRITE)) /* (else the target is known to be full) */
        r = sk__fwd_splice_flush(c, f);
    if (r == 0) { /* the target is full: wait for it */
        sk__fwd_watch(c, f, f->watching | SK_WATCH_WRITE);
        if (f->in_pending >= f->pipe_in_cap / 2)
            sk_conn_pause_read(c, 1); /* and the client waits for us */
    }
    return n;
}

void sk__fwd_splice_start(sk_conn *c, sk__fwd *f)
{
    if (sk_conn_tls_version(c) != NULL)
        return; /* TLS: the copying path decrypts */
    int in_cap = make_pipe(f->pipe_in);
    if (in_cap < 0)
        return;
    f->pipe_in_cap = (size_t)in_cap;
    int cap = make_pipe(f->pipe_out);
    if (cap < 0) {
        close_pipe(f->pipe_in);
        return;
    }
    f->pipe_cap = (size_t)cap;
    if (sk_conn_read_hook(c, splice_up, f) < 0) {
        close_pipe(f->pipe_in);
        close_pipe(f->pipe_out);
        return;
    }
    f->splice = 1;
}

void sk__fwd_splice_down(sk_conn *c, sk__fwd *f)
{
    /* The pipe holds exactly the queued segments (bytes copied before the
     * switch may come first in the queue: they leave first). While it is
     * less than half full, splice on behind them; past that, wait until the
     * client took it all (on_drain) rather than wake for every few bytes. */
    size_t pending = sk_conn_pending(c);
    if (pending >= f->pipe_cap / 2) {
        sk__fwd_watch(c, f, f->watching & ~SK_WATCH_READ);
        sk_conn_want_drain(c, 1);
        return;
    }
    ssize_t n;
    do
        n = splice(f->up, NULL, f->pipe_out[1], NULL, PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        if (pending > 0) { /* maybe the pipe is full, not the socket empty: no spinning */
            sk__fwd_watch(c, f, f->watching & ~SK_WATCH_READ);
            sk_conn_want_drain(c, 1);
        }
        return;
    }
    if (n < 0) {
        note(f, "target");
        sk__fwd_abort(c, f);
        return;
    }
    if (n == 0) {
        sk__fwd_upstream_eof(c, f);
        return;
    }
    f->down_bytes += (uint64_t)n;
    sk_seg seg = {
        .kind = SK_SEG_PIPE, .fd = f->pipe_out[0], .len = (uint64_t)n, .release = keep_pipe};
    if (sk_conn_queue(c, &seg) < 0) {
        note(f, "client's queue refused the target's data");
        sk__fwd_close(c, f);
    }
}

void sk__fwd_splice_end(sk__fwd *f)
{
    close_pipe(f->pipe_in);
    close_pipe(f->pipe_out);
    f->in_pending = 0;
}

#else /* no splice: the copying path does it all */

void sk__fwd_splice_start(sk_conn *c, sk__fwd *f)
{
    (void)c, (void)f;
}
int sk__fwd_splice_pending(const sk__fwd *f)
{
    (void)f;
    return 0;
}
int sk__fwd_splice_flush(sk_conn *c, sk__fwd *f)
{
    (void)c, (void)f;
    return 1;
}
void sk__fwd_splice_down(sk_conn *c, sk__fwd *f)
{
    (void)c, (void)f;
}
void sk__fwd_splice_end(sk__fwd *f)
{
    (void)f;
}

#endif
