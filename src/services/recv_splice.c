/*
 * recv_splice.c - the recv service's data path for big files (Linux): a
 * chunk's data goes socket -> pipe -> .part with splice(2), so the kernel
 * copies the socket's pages into the page cache itself instead of through
 * our buffer (recv, then pwrite), 1 MiB per call instead of ~256 KiB (fewer
 * calls, wakeups and ACKs). The chunk's hash reads a tee(2) of the same
 * pages from a second pipe, in 256 KiB pieces, right after the kernel's
 * copy read them (cache-hot). Measured by perf on a 1 GiB transfer into
 * /dev/shm: ~15% less receiver CPU than recv + pwrite (docs/PERFORMANCE.md).
 *
 * It runs as the connection's read hook (sk_conn_read_hook): frame heads and
 * everything that is not a raw chunk's data are read with recv() into a
 * buffer of the connection and fed to the same decoder as on_data
 * (sk__rx_data), and while a big file streams, only up to the end of the
 * next chunk's head, so that its data is left in the socket for splice.
 * Models that do not call read hooks (io_uring's completion path), TLS
 * connections and other systems keep the copying path of on_data.
 */
#define _GNU_SOURCE /* splice, F_SETPIPE_SZ */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "recv.h"

#ifdef __linux__

#define PIPE_SIZE (1024 * 1024) /* asked for; less if refused (a user's pipe quota) */
#define RBUF_SIZE (256 * 1024)  /* reads that are not spliced; read-back for the hash */
#define HOOK_BUDGET (4u << 20)  /* bytes per call: other connections get their turn */

/* The current chunk's data may be spliced now: nothing of it waits in our
 * buffer, it is raw and its file takes it. */
static int can_splice(const rx_conn *x)
{
    return x->phase == 1 && x->data_left > 0 && x->in.len == 0 && !x->discard;
}

/* How much to recv(): while a file has enough to come, only the rest of the
 * next chunk's frame head (its data is then spliced); otherwise a buffer. */
static size_t copy_want(const rx_conn *x)
{
    if (x->phase != 1 || x->data_left > 0 || x->qn == 0 || (x->flags & SK_XF_F_ZSTD))
        return RBUF_SIZE;
    const rx_file *f = &x->q[x->qh];
    if (!f->started || f->refused ||
        (f->size != SK_XF_SIZE_UNKNOWN && f->size - f->bytes < SK_RX_SPLICE_MIN))
        return RBUF_SIZE; /* (the rest of a file is copied with what follows it) */
    size_t head = SK_XF_HEAD + SK_XF_CHUNK_HEAD(x->hl);
    return x->in.len < head ? head - x->in.len : RBUF_SIZE;
}

static ssize_t take_copy(sk_conn *c, rx_conn *x, int fd)
{
    ssize_t n;
    do
        n = recv(fd, x->rbuf, copy_want(x), MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        sk__rx_data(c, x->rbuf, (size_t)n);
    return n;
}

/* Empty a pipe after a failed write: those bytes belong to a refused file. */
static void drain(rx_conn *x, int fd)
{
    ssize_t r;
    while ((r = read(fd, x->rbuf, RBUF_SIZE)) > 0 || (r < 0 && errno == EINTR))
        ;
}

/* Hash n bytes of the copy pipe (tee'd from the data pipe). 0, or -1 with errno. */
static int hash_copy(rx_conn *x, size_t n)
{
    while (n > 0) {
        ssize_t r = read(x->copy[0], x->rbuf, n < RBUF_SIZE ? n : RBUF_SIZE);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        sk__xf_hash_update(&x->ch, x->rbuf, (size_t)r);
        n -= (size_t)r;
    }
    return 0;
}

/* Hash what was just written, [off, off + n) of the part, reading it back
 * from the page cache in pieces that stay in the CPU's cache (where the copy
 * pipe is missing or took less). 0, or -1 with errno. */
static int hash_back(rx_conn *x, int part, uint64_t off, size_t n)
{
    while (n > 0) {
        ssize_t r = pread(part, x->rbuf, n < RBUF_SIZE ? n : RBUF_SIZE, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* (the part shrank under us) */
            return -1;
        }
        sk__xf_hash_update(&x->ch, x->rbuf, (size_t)r);
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return 0;
}

/* Splice what the socket has of the current chunk's data into the part. */
static ssize_t take_data(sk_conn *c, rx_conn *x, int fd)
{
    size_t want = x->data_left < x->pipe_cap ? (size_t)x->data_left : x->pipe_cap;
    ssize_t n;
    do
        n = splice(fd, NULL, x->pipe[1], NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n;
    rx_file *f = &x->q[x->qh];
    ssize_t t = 0;
    if (x->copy[0] >= 0) {
        do
            t = tee(x->pipe[0], x->copy[1], (size_t)n, SPLICE_F_NONBLOCK);
        while (t < 0 && errno == EINTR);
        if (t < 0)
            t = 0;
    }
    loff_t off = (loff_t)x->cur_off;
    size_t left = (size_t)n;
    while (left > 0) {
        ssize_t w = splice(x->pipe[0], NULL, f->part, &off, left, SPLICE_F_MOVE);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            drain(x, x->pipe[0]);
            if (t > 0)
                drain(x, x->copy[0]);
            sk__rx_write_failed(c, e);
            break;
        }
        left -= (size_t)w;
    }
    if (left == 0 && (hash_copy(x, (size_t)t) < 0 ||
                      hash_back(x, f->part, x->cur_off + (uint64_t)t, (size_t)(n - t)) < 0))
        sk__rx_write_failed(c, errno);
    x->cur_off += (uint64_t)n;
    x->data_left -= (uint64_t)n;
    if (x->data_left == 0)
        sk__rx_chunk_done(c);
    return n;
}

/* The read hook: as much as the socket has, up to a budget. An error or the
 * end of stream after some bytes is kept for the next call. */
static ssize_t rx_read(sk_conn *c, int fd, void *arg)
{
    rx_conn *x = arg;
    if (x->read_eof)
        return 0;
    if (x->read_err) {
        errno = x->read_err;
        x->read_err = 0;
        return -1;
    }
    size_t total = 0;
    while (total < HOOK_BUDGET && (total == 0 || x->phase != 2)) {
        ssize_t n = can_splice(x) ? take_data(c, x, fd) : take_copy(c, x, fd);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (total == 0)
            return n;
        if (n == 0)
            x->read_eof = 1;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            x->read_err = errno;
        break;
    }
    sk__rx_flush(c); /* a refusal or a stored file's answer from the spliced data */
    return (ssize_t)total;
}

void sk__rx_splice_start(sk_conn *c, rx_conn *x)
{
    if (x->splice != 0)
        return; /* tried already */
    x->splice = -1;
    if (sk_conn_tls_version(c) != NULL)
        return; /* TLS: the bytes need decrypting */
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        return;
    int cap = fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);
    if (cap < 0)
        cap = fcntl(p[1], F_GETPIPE_SZ);
    x->rbuf = malloc(RBUF_SIZE);
    if (cap <= 0 || x->rbuf == NULL || sk_conn_read_hook(c, rx_read, x) < 0) {
        close(p[0]);
        close(p[1]);
        free(x->rbuf);
        x->rbuf = NULL;
        return;
    }
    x->pipe[0] = p[0];
    x->pipe[1] = p[1];
    x->pipe_cap = (size_t)cap;
    x->splice = 1;
    x->copy[0] = x->copy[1] = -1;
    /* The hash reads a tee'd copy of the pipe's pages (the socket's, just
     * copied into the file: still in the CPU's cache); without the second
     * pipe it reads the part back (page-cache lookups, and the pages
     * activated on the LRU: ~5% more CPU). */
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
        if (fcntl(p[1], F_SETPIPE_SZ, cap) < cap) {
            close(p[0]);
            close(p[1]);
        } else {
            x->copy[0] = p[0];
            x->copy[1] = p[1];
        }
    }
}

void sk__rx_splice_end(rx_conn *x)
{
    if (x->splice == 1) {
        close(x->pipe[0]);
        close(x->pipe[1]);
        if (x->copy[0] >= 0) {
            close(x->copy[0]);
            close(x->copy[1]);
        }
    }
    x->splice = -1;
    free(x->rbuf);
    x->rbuf = NULL;
}

#else /* no splice: on_data does it all */

void sk__rx_splice_start(sk_conn *c, rx_conn *x)
{
    (void)c, (void)x;
}

void sk__rx_splice_end(rx_conn *x)
{
    (void)x;
}

#endif
