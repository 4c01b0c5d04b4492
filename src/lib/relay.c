/*
 * relay.c - join a socket to a pair of plain descriptors (stdin/stdout), the
 * way netcat does: one poll() loop, one bounded buffer per direction (a side
 * that stops reading stops the other side from being read: backpressure), and
 * careful half-close.
 *
 *   in_fd --> [to_net] --> net_fd --> [to_out] --> out_fd
 */
#define _GNU_SOURCE /* splice */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/sendfile.h>
#endif
#include <unistd.h>

#include "sockit.h"

#define RELAY_BUF_DEFAULT 65536

struct side {
    sk_buf buf;
    int eof;  /* the reading end of this direction reached end of file */
    int done; /* everything delivered; the writing end was shut down */
};

static int would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

/* Read once from fd into b. Returns >0 bytes, 0 EOF, -1 error, -2 try later.
 * (A datagram of 0 bytes also returns 0; the caller knows which it reads.) */
static ssize_t fill(int fd, sk_buf *b, size_t chunk, int is_net)
{
    uint8_t *p = sk_buf_reserve(b, chunk);
    if (p == NULL)
        return -2; /* full: poll will not ask again until drained */
    ssize_t n = is_net ? recv(fd, p, chunk, 0) : read(fd, p, chunk);
    if (n < 0)
        return would_block(errno) ? -2 : -1;
    sk_buf_commit(b, (size_t)n);
    return n;
}

/* Write what b holds to fd. Returns 0 (progress or would block), -1 error. */
static int drain(int fd, sk_buf *b, int is_net, int dgram)
{
    while (b->len > 0) {
        ssize_t n = is_net ? send(fd, sk_buf_head(b), b->len, MSG_NOSIGNAL)
                           : write(fd, sk_buf_head(b), b->len);
        if (n < 0)
            return would_block(errno) ? 0 : -1;
        if (dgram) {
            sk_buf_consume(b, b->len); /* one datagram is sent whole or not at all */
            return 0;
        }
        sk_buf_consume(b, (size_t)n);
    }
    return 0;
}

enum { ZC_NONE, ZC_SPLICE, ZC_SENDFILE };
enum { ZC_MOVED, ZC_EOF, ZC_FULL, ZC_UNSUPPORTED, ZC_ERROR };
#define ZC_CHUNK (1u << 20)

/* Move input to the socket without copying it here, until one side would
 * block (at most a few chunks, so the other direction is served too). */
static int zero_copy(int zc, int in_fd, int net_fd, sk_relay_stats *st)
{
    for (int i = 0; i < 8; i++) {
        ssize_t n;
#ifdef __linux__
        if (zc == ZC_SPLICE)
            n = splice(in_fd, NULL, net_fd, NULL, ZC_CHUNK,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE);
        else
            n = sendfile(net_fd, in_fd, NULL, ZC_CHUNK);
#else
        (void)zc;
        (void)in_fd;
        (void)net_fd;
        errno = EINVAL;
        n = -1;
#endif
        if (n > 0) {
            st->to_net += (uint64_t)n;
            continue;
        }
        if (n == 0)
            return ZC_EOF;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            /* A spliced pipe said readable, a file always is: the socket is full. */
            return i == 0 ? ZC_FULL : ZC_MOVED;
        if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)
            return i == 0 ? ZC_UNSUPPORTED : ZC_MOVED;
        return ZC_ERROR;
    }
    return ZC_MOVED;
}

int sk_relay(int net_fd, int in_fd, int out_fd, const sk_relay_opts *o, sk_relay_stats *st,
             sk_err *err)
{
    sk_relay_opts def = {0};
    if (o == NULL)
        o = &def;
    size_t bufsize = o->bufsize ? o->bufsize : RELAY_BUF_DEFAULT;
    size_t chunk = SK_DGRAM_MAX; /* one read: a whole datagram, or 64 KiB of a stream */
    sk_relay_stats dummy;
    if (st == NULL)
        st = &dummy;
    memset(st, 0, sizeof *st);

    /* The socket is non-blocking so one slow side never stalls the loop. The
     * caller's stdin/stdout are left as they are (they may be shared with other
     * processes); poll() says when each is ready. */
    if (sk_set_nonblock(net_fd, 1) < 0)
        return sk_errno(err, errno, "fcntl socket");

    struct side up = {.buf = {.max = chunk}};             /* in -> net: one read at a time */
    struct side down = {.buf = {.max = bufsize + chunk}}; /* net -> out */
    int rc = 0;
    int64_t last_activity = sk_now_ms();
    int64_t linger_from = -1;

    if (in_fd < 0)
        up.eof = 1;
    /* Zero copy for the way out: a pipe on input is spliced to the socket, a
     * regular file is sent with sendfile(); the bytes never enter our memory. */
    int zc = ZC_NONE, net_full = 0;
    struct stat in_st;
    if (o->stream && in_fd >= 0 && fstat(in_fd, &in_st) == 0)
        zc = S_ISFIFO(in_st.st_mode) ? ZC_SPLICE : S_ISREG(in_st.st_mode) ? ZC_SENDFILE : ZC_NONE;
    for (;;) {
        /* Stream input finished and delivered: half-close so the peer sees EOF. */
        if (up.eof && up.buf.len == 0 && !up.done) {
            up.done = 1;
            if (o->stream) {
                if (shutdown(net_fd, SHUT_WR) < 0 && errno != ENOTCONN) {
                    rc = sk_errno(err, errno, "shutdown socket");
                    break;
                }
            } else {
                linger_from = sk_now_ms();
            }
        }
        /* Peer closed and all it sent is written out: finished once our input
         * is delivered too (or at once, for a terminal that may never end). */
        if (down.eof && down.buf.len == 0 && (up.done || o->stop_at_peer_eof))
            break;
        if (!o->stream && up.done && linger_from >= 0 && o->dgram_linger_ms >= 0 &&
            sk_now_ms() - linger_from >= o->dgram_linger_ms)
            break;

        struct pollfd p[3];
        int np = 0, i_in = -1, i_net, i_out = -1;
        if (!up.eof && up.buf.len == 0 && zc != ZC_SENDFILE && !(zc && net_full)) {
            /* Read input only when its buffer is empty: for datagrams one read is
             * one datagram; for streams it keeps memory bounded. */
            i_in = np;
            p[np++] = (struct pollfd){.fd = in_fd, .events = POLLIN};
        }
        i_net = np;
        p[np] = (struct pollfd){.fd = net_fd, .events = 0};
        if (zc && net_full && !up.eof)
            p[np].events |= POLLOUT;
        if (!down.eof && down.buf.len + chunk <= down.buf.max)
            p[np].events |= POLLIN;
        if (up.buf.len > 0)
            p[np].events |= POLLOUT;
        np++;
        if (down.buf.len > 0) {
            i_out = np;
            p[np++] = (struct pollfd){.fd = out_fd, .events = POLLOUT};
        }

        int timeout = -1;
        int64_t now = sk_now_ms();
        if (o->idle_timeout_ms > 0) {
            int64_t left = last_activity + o->idle_timeout_ms - now;
            timeout = left < 0 ? 0 : (int)left;
        }
        if (!o->stream && linger_from >= 0 && o->dgram_linger_ms >= 0) {
            int64_t left = linger_from + o->dgram_linger_ms - now;
            if (left < 0)
                left = 0;
            if (timeout < 0 || left < timeout)
                timeout = (int)left;
        }
        if (zc == ZC_SENDFILE && !up.eof && !net_full)
            timeout = 0; /* a file is always ready: go straight to sendfile */
        int r = poll(p, (nfds_t)np, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = sk_errno(err, errno, "poll");
            break;
        }
        if (zc && net_full && (p[i_net].revents & (POLLOUT | POLLERR | POLLHUP)))
            net_full = 0;
        if (zc && !up.eof && !net_full &&
            (zc == ZC_SENDFILE || (i_in >= 0 && (p[i_in].revents & (POLLIN | POLLHUP))))) {
            int zr = zero_copy(zc, in_fd, net_fd, st);
            if (zr == ZC_EOF) {
                up.eof = 1;
            } else if (zr == ZC_FULL) {
                net_full = 1;
            } else if (zr == ZC_UNSUPPORTED) {
                zc = ZC_NONE; /* e.g. a file system without splice: plain reads */
            } else if (zr == ZC_ERROR) {
                if (errno == EPIPE || errno == ECONNRESET) {
                    up.eof = up.done = 1;
                } else {
                    rc = sk_errno(err, errno, "send standard input to socket");
                    break;
                }
            } else {
                last_activity = sk_now_ms();
            }
            i_in = -1; /* consumed here, not by the copying path below */
        }
        if (r == 0) {
            if (o->idle_timeout_ms > 0 && sk_now_ms() - last_activity >= o->idle_timeout_ms &&
                (o->stream || linger_from < 0)) {
                rc = sk_errf(err, ETIMEDOUT, "no data for %d.%03d s, giving up",
                             o->idle_timeout_ms / 1000, o->idle_timeout_ms % 1000);
                break;
            }
            continue;
        }

        if (i_in >= 0 && (p[i_in].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = fill(in_fd, &up.buf, chunk, 0);
            if (n == 0) {
                up.eof = 1;
            } else if (n == -1) {
                rc = sk_errno(err, errno, "read standard input");
                break;
            } else if (n > 0) {
                last_activity = sk_now_ms();
            }
        }
        short nre = p[i_net].revents;
        if ((nre & POLLOUT) || (up.buf.len > 0 && (nre & (POLLERR | POLLHUP)))) {
            size_t before = up.buf.len;
            if (drain(net_fd, &up.buf, 1, !o->stream) < 0) {
                /* The peer went away while we still had input for it. Keep what it
                 * already sent us flowing to the output; report only real errors. */
                if (errno == EPIPE || errno == ECONNRESET) {
                    before = 0; /* dropped, not sent */
                    sk_buf_free(&up.buf);
                    up.eof = up.done = 1;
                } else {
                    rc = sk_errno(err, errno, "write socket");
                    break;
                }
            }
            if (before > up.buf.len)
                st->to_net += before - up.buf.len;
            if (before != up.buf.len)
                last_activity = sk_now_ms();
        }
        if (!down.eof && (nre & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = fill(net_fd, &down.buf, chunk, 1);
            if (n == 0 && o->stream) {
                down.eof = 1;
            } else if (n == -1) {
                if (errno == ECONNREFUSED && !o->stream) {
                    rc = sk_errno(err, errno, "read socket (no server at that address?)");
                } else {
                    rc = sk_errno(err, errno, "read socket");
                }
                break;
            } else if (n >= 0) {
                st->from_net += (uint64_t)n;
                last_activity = sk_now_ms();
                if (linger_from >= 0)
                    linger_from = last_activity; /* a reply: wait again for the next */
            }
        }
        if (i_out >= 0 && (p[i_out].revents & (POLLOUT | POLLERR | POLLHUP))) {
            if (drain(out_fd, &down.buf, 0, 0) < 0) {
                /* The reader of our output went away (`| head`): nothing more is
                 * wanted, which is the end, not a failure. */
                if (errno != EPIPE)
                    rc = sk_errno(err, errno, "write standard output");
                sk_buf_free(&down.buf);
                break;
            }
        }
    }
    /* Deliver what is left for the output even on error, within reason. */
    if (down.buf.len > 0)
        sk_write_all(out_fd, sk_buf_head(&down.buf), down.buf.len, sk_now_ms() + 5000);
    sk_buf_free(&up.buf);
    sk_buf_free(&down.buf);
    return rc;
}
