/*
 * relay.c - join a socket to a pair of plain descriptors (stdin/stdout), the
 * way netcat does: one poll() loop, one bounded buffer per direction (a side
 * that stops reading stops the other side from being read: backpressure), and
 * careful half-close.
 *
 *   in_fd --pump_in--> [up] --pump_up--> socket --pump_down--> [down] --pump_out--> out_fd
 *
 * Every byte on the socket passes through the transport seam (transport.h), so
 * that an encrypting transport is one more ops table: a write may then wait
 * for readability (t->want), and a read may find bytes the transport already
 * holds (sk__tp_buffered). stdin and stdout stay plain read()/write().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sockit.h"
#include "transport.h"

#define RELAY_BUF_DEFAULT 65536
#define ZC_CHUNK (1u << 20)

enum { ZC_NONE, ZC_SPLICE, ZC_SENDFILE };

struct side {
    sk_buf buf;
    int eof;       /* the reading end of this direction reached end of file */
    int done;      /* everything delivered; the writing end was shut down */
    unsigned want; /* SK_TP_WANT_*: what the socket must be ready for (0: default) */
};

struct relay {
    const sk_relay_opts *o;
    sk_tp tp;
    int in_fd, out_fd;
    size_t chunk; /* one read: a whole datagram, or 64 KiB of a stream */
    struct side up, down;
    int zc;       /* ZC_*: input goes to the socket without a copy */
    int net_full; /* zero copy: the socket would not take more */
    int finished; /* the reader of our output went away: nothing more wanted */
    int last_cr;  /* crlf: the last input byte was a CR */
    int64_t last_activity, linger_from;
    uint64_t sent_after_eof; /* input sent after the peer's end of stream */
    int lost;                /* errno when the peer refused our input, else 0 */
    uint64_t lost_bytes;     /* input known not to have been delivered */
    sk_relay_stats *st;
    sk_err *err;
};

/* Indices into the pollfd array; -1 when not polled. */
struct slots {
    int in, net, out;
};

static short poll_events(unsigned want)
{
    return (short)(((want & SK_TP_WANT_READ) ? POLLIN : 0) |
                   ((want & SK_TP_WANT_WRITE) ? POLLOUT : 0));
}

/* Bytes of input still waiting after a failure: the rest of a regular file,
 * or what a pipe, socket or terminal holds unread. */
static uint64_t input_left(int fd)
{
    struct stat s;
    if (fd < 0 || fstat(fd, &s) < 0)
        return 0;
    if (S_ISREG(s.st_mode)) {
        off_t pos = lseek(fd, 0, SEEK_CUR);
        return pos >= 0 && s.st_size > pos ? (uint64_t)(s.st_size - pos) : 0;
    }
#ifdef FIONREAD
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) == 0 && n > 0)
        return (uint64_t)n;
#endif
    return 0;
}

/* The peer refused our input (EPIPE, ECONNRESET) or is gone while input was in
 * flight: stop reading input, keep delivering what it sent us, and fail at
 * the end saying how much was lost. */
static void input_refused(struct relay *r, int e)
{
    if (!r->lost) {
        r->lost = e;
        r->lost_bytes = r->sent_after_eof + r->up.buf.len + input_left(r->in_fd);
    }
    sk_buf_free(&r->up.buf);
    r->up.eof = r->up.done = 1;
}

static int up_wants_net(const struct relay *r)
{
    return r->up.buf.len > 0 || r->net_full || (r->up.eof && !r->up.done && r->o->stream);
}

static int down_wants_net(const struct relay *r)
{
    return !r->down.eof && r->down.buf.len + r->chunk <= r->down.buf.max;
}

/* LF -> CR LF in place, in the n bytes at p (room for 2n). *cr: the byte
 * before p was a CR (a CR LF split across two reads is not doubled). */
static size_t crlf_expand(uint8_t *p, size_t n, int *cr)
{
    size_t add = 0;
    int prev = *cr;
    for (size_t i = 0; i < n; i++) {
        add += p[i] == '\n' && !prev;
        prev = p[i] == '\r';
    }
    int first_cr = *cr;
    *cr = prev;
    /* Backwards, so that every byte moves once; p[i - 1] is still unmoved
     * when it is looked at, since the write position never passes i. */
    for (size_t i = n, j = n + add; i-- > 0;) {
        uint8_t c = p[i];
        p[--j] = c;
        if (c == '\n' && !(i > 0 ? p[i - 1] == '\r' : first_cr))
            p[--j] = '\r';
    }
    return n + add;
}

/* Read input once into up (a datagram per read, for datagram sockets). */
static int pump_in(struct relay *r)
{
    uint8_t *p = sk_buf_reserve(&r->up.buf, r->o->crlf ? 2 * r->chunk : r->chunk);
    if (p == NULL)
        return 0;
    ssize_t n = read(r->in_fd, p, r->chunk);
    if (n > 0 && r->o->crlf)
        n = (ssize_t)crlf_expand(p, (size_t)n, &r->last_cr);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        return sk_errno(r->err, errno, "read standard input");
    }
    if (n == 0)
        r->up.eof = 1;
    sk_buf_commit(&r->up.buf, (size_t)n);
    if (n > 0)
        r->last_activity = sk_now_ms();
    return 0;
}

/* Send what up holds. A datagram is sent whole or not at all. */
static int pump_up(struct relay *r)
{
    while (r->up.buf.len > 0) {
        ssize_t n = sk__tp_write(&r->tp, sk_buf_head(&r->up.buf), r->up.buf.len, 0);
        if (n == SK_TP_AGAIN) {
            r->up.want = r->tp.want;
            return 0;
        }
        if (n < 0) {
            if (errno == EPIPE || errno == ECONNRESET) {
                input_refused(r, errno);
                return 0;
            }
            return sk_errno(r->err, errno, "write socket");
        }
        r->up.want = 0;
        size_t sent = r->o->stream ? (size_t)n : r->up.buf.len;
        sk_buf_consume(&r->up.buf, sent);
        r->st->to_net += (uint64_t)n;
        if (r->down.eof)
            r->sent_after_eof += (uint64_t)n;
        r->last_activity = sk_now_ms();
        if (!r->o->stream)
            break;
    }
    return 0;
}

/* Move input to the socket without copying it here (splice from a pipe,
 * sendfile from a file), until the socket would block: at most a few chunks,
 * so that the other direction is served too. */
static int pump_zero_copy(struct relay *r)
{
    unsigned flags = r->zc == ZC_SPLICE ? SK_TP_PIPE : 0;
    for (int i = 0; i < 8; i++) {
        ssize_t n = sk__tp_sendfile(&r->tp, r->in_fd, NULL, ZC_CHUNK, flags);
        if (n > 0) {
            r->up.want = 0;
            r->st->to_net += (uint64_t)n;
            if (r->down.eof)
                r->sent_after_eof += (uint64_t)n;
            r->last_activity = sk_now_ms();
            continue;
        }
        if (n == 0) {
            r->up.eof = 1;
        } else if (n == SK_TP_AGAIN) {
            /* A spliced pipe said readable, a file always is: the socket is full. */
            if (i == 0) {
                r->net_full = 1;
                r->up.want = r->tp.want;
            }
        } else if (n == SK_TP_UNSUPPORTED) {
            if (i == 0)
                r->zc = ZC_NONE; /* e.g. a file system without splice: plain reads */
        } else if (errno == EPIPE || errno == ECONNRESET) {
            input_refused(r, errno);
        } else {
            return sk_errno(r->err, errno, "send standard input to socket");
        }
        return 0;
    }
    return 0;
}

/* Read the socket once into down. */
static int pump_down(struct relay *r)
{
    uint8_t *p = sk_buf_reserve(&r->down.buf, r->chunk);
    if (p == NULL)
        return 0; /* full: not polled again until drained */
    ssize_t n = sk__tp_read(&r->tp, p, r->chunk);
    if (n == SK_TP_AGAIN) {
        r->down.want = r->tp.want;
        return 0;
    }
    r->down.want = 0;
    if (n < 0) {
        int reset = errno == ECONNRESET || errno == EPIPE;
        if (reset && !r->lost && !r->up.done &&
            (r->up.buf.len > 0 || (!r->up.eof && r->st->to_net > 0) || input_left(r->in_fd) > 0))
            input_refused(r, errno); /* the reset cut our input short: say that */
        if (r->lost) {               /* failing already: that error says more */
            r->down.eof = 1;
            return 0;
        }
        if (errno == ECONNREFUSED && !r->o->stream)
            return sk_errno(r->err, errno, "read socket (no server at that address?)");
        return sk_errno(r->err, errno, "read socket");
    }
    if (n == 0 && r->o->stream) {
        r->down.eof = 1;
        return 0;
    }
    /* (A datagram of 0 bytes is a datagram, not an end.) */
    sk_buf_commit(&r->down.buf, (size_t)n);
    r->st->from_net += (uint64_t)n;
    r->last_activity = sk_now_ms();
    if (r->linger_from >= 0)
        r->linger_from = r->last_activity; /* a reply: wait again for the next */
    return 0;
}

/* Write what down holds to the output. */
static int pump_out(struct relay *r)
{
    sk_buf *b = &r->down.buf;
    while (b->len > 0) {
        ssize_t n = write(r->out_fd, sk_buf_head(b), b->len);
        if (n >= 0) {
            sk_buf_consume(b, (size_t)n);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        sk_buf_free(b);
        /* The reader of our output went away (`| head`): nothing more is
         * wanted, which is the end, not a failure. */
        r->finished = 1;
        return errno == EPIPE ? 0 : sk_errno(r->err, errno, "write standard output");
    }
    return 0;
}

/* The peer closed its end (a Unix socket's full close, or a reset after our
 * input met its closed socket): nothing more can be delivered. Input it did
 * not get is a failure; otherwise this is just the end. */
static void peer_gone(struct relay *r)
{
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(r->tp.fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e == 0)
        e = EPIPE;
    if (r->up.buf.len > 0 || r->sent_after_eof > 0)
        input_refused(r, e);
    r->up.eof = r->up.done = 1;
}

/* Half-close when input is delivered; 1 when the relay is finished. */
static int relay_advance(struct relay *r)
{
    struct side *up = &r->up;
    if (up->eof && up->buf.len == 0 && !up->done) {
        if (!r->o->stream) {
            up->done = 1;
            r->linger_from = sk_now_ms();
        } else {
            int s = sk__tp_shutdown(&r->tp);
            if (s == SK_TP_AGAIN)
                up->want = r->tp.want;
            else if (s < 0 && errno != ENOTCONN)
                return sk_errno(r->err, errno, "shutdown socket");
            else
                up->done = 1;
        }
    }
    if (r->finished)
        return 1;
    /* Peer closed and all it sent is written out: finished once our input is
     * delivered too (or at once, for a terminal that may never end). */
    if (r->down.eof && r->down.buf.len == 0 && (up->done || r->o->stop_at_peer_eof))
        return 1;
    if (!r->o->stream && up->done && r->linger_from >= 0 && r->o->dgram_linger_ms >= 0 &&
        sk_now_ms() - r->linger_from >= r->o->dgram_linger_ms)
        return 1;
    return 0;
}

static int poll_timeout(const struct relay *r)
{
    int timeout = -1;
    int64_t now = sk_now_ms();
    if (r->o->idle_timeout_ms > 0) {
        int64_t left = r->last_activity + r->o->idle_timeout_ms - now;
        timeout = left < 0 ? 0 : (int)left;
    }
    if (!r->o->stream && r->linger_from >= 0 && r->o->dgram_linger_ms >= 0) {
        int64_t left = r->linger_from + r->o->dgram_linger_ms - now;
        if (left < 0)
            left = 0;
        if (timeout < 0 || left < timeout)
            timeout = (int)left;
    }
    if (r->zc == ZC_SENDFILE && !r->up.eof && !r->net_full)
        timeout = 0; /* a file is always ready: go straight to sendfile */
    if (down_wants_net(r) && sk__tp_buffered(&r->tp) > 0)
        timeout = 0; /* the transport already holds bytes to read */
    return timeout;
}

static int poll_setup(const struct relay *r, struct pollfd *p, struct slots *s)
{
    int n = 0;
    s->in = s->out = -1;
    if (!r->up.eof && r->up.buf.len == 0 && r->zc != ZC_SENDFILE && !(r->zc && r->net_full)) {
        /* Read input only when its buffer is empty: for datagrams one read is
         * one datagram; for streams it keeps memory bounded. */
        s->in = n;
        p[n++] = (struct pollfd){.fd = r->in_fd, .events = POLLIN};
    }
    short ev = 0;
    if (up_wants_net(r))
        ev |= poll_events(r->up.want ? r->up.want : SK_TP_WANT_WRITE);
    if (down_wants_net(r))
        ev |= poll_events(r->down.want ? r->down.want : SK_TP_WANT_READ);
    /* With nothing to do on the socket it stays in the set only to hear that
     * the peer is gone (POLLHUP/POLLERR), and only once its stream has ended:
     * before that, a hang-up is read as the end of stream when there is room. */
    s->net = n;
    p[n++] = (struct pollfd){.fd = ev || r->down.eof ? r->tp.fd : -1, .events = ev};
    if (r->down.buf.len > 0) {
        s->out = n;
        p[n++] = (struct pollfd){.fd = r->out_fd, .events = POLLOUT};
    }
    return n;
}

/* Act on what poll() reported. */
static int relay_step(struct relay *r, const struct pollfd *p, const struct slots *s)
{
    short nre = p[s->net].revents;
    short hup = POLLERR | POLLHUP;
    if (r->net_full && (nre & (poll_events(r->up.want) | hup)))
        r->net_full = 0;
    int in_ready = s->in >= 0 && (p[s->in].revents & (POLLIN | hup));
    if (r->zc && !r->up.eof && !r->net_full && (r->zc == ZC_SENDFILE || in_ready)) {
        if (pump_zero_copy(r) < 0)
            return -1;
        in_ready = 0; /* consumed there, not by the copying path */
    }
    if (in_ready && pump_in(r) < 0)
        return -1;
    short up_ev = poll_events(r->up.want ? r->up.want : SK_TP_WANT_WRITE);
    if (r->up.buf.len > 0 && (nre & (up_ev | hup)) && pump_up(r) < 0)
        return -1;
    short down_ev = poll_events(r->down.want ? r->down.want : SK_TP_WANT_READ);
    if (down_wants_net(r) && ((nre & (down_ev | hup)) || sk__tp_buffered(&r->tp) > 0) &&
        pump_down(r) < 0)
        return -1;
    if (r->down.eof && !r->up.done && (nre & hup))
        peer_gone(r);
    if (s->out >= 0 && (p[s->out].revents & (POLLOUT | hup)) && pump_out(r) < 0)
        return -1;
    return 0;
}

static int idle_expired(struct relay *r)
{
    if (r->o->idle_timeout_ms <= 0 || sk_now_ms() - r->last_activity < r->o->idle_timeout_ms)
        return 0;
    if (!r->o->stream && r->linger_from >= 0)
        return 0; /* lingering for replies: the linger decides */
    return 1;
}

static int relay_loop(struct relay *r)
{
    for (;;) {
        int fin = relay_advance(r);
        if (fin != 0)
            return fin < 0 ? -1 : 0;
        struct pollfd p[3];
        struct slots s;
        int np = poll_setup(r, p, &s);
        int ready = poll(p, (nfds_t)np, poll_timeout(r));
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            return sk_errno(r->err, errno, "poll");
        }
        if (ready == 0 && !(r->zc == ZC_SENDFILE || sk__tp_buffered(&r->tp) > 0)) {
            if (idle_expired(r))
                return sk_errf(r->err, ETIMEDOUT, "no data for %d.%03d s, giving up",
                               r->o->idle_timeout_ms / 1000, r->o->idle_timeout_ms % 1000);
            continue;
        }
        if (relay_step(r, p, &s) < 0)
            return -1;
    }
}

int sk_relay(int net_fd, int in_fd, int out_fd, const sk_relay_opts *o, sk_relay_stats *st,
             sk_err *err)
{
    sk_tp tp;
    sk__tp_plain(&tp, net_fd);
    return sk__relay_tp(&tp, in_fd, out_fd, o, st, err);
}

int sk__relay_tp(sk_tp *tp, int in_fd, int out_fd, const sk_relay_opts *o, sk_relay_stats *st,
                 sk_err *err)
{
    static const sk_relay_opts def = {0};
    sk_relay_stats dummy;
    struct relay r = {.o = o ? o : &def, .in_fd = in_fd, .out_fd = out_fd, .err = err};
    r.st = st ? st : &dummy;
    memset(r.st, 0, sizeof *r.st);
    size_t bufsize = r.o->bufsize ? r.o->bufsize : RELAY_BUF_DEFAULT;
    r.chunk = SK_DGRAM_MAX;
    r.up.buf.max = r.chunk * (r.o->crlf ? 2 : 1); /* in -> net: one read at a time */
    r.down.buf.max = bufsize + r.chunk;           /* net -> out */
    r.last_activity = sk_now_ms();
    r.linger_from = -1;
    /* The socket is non-blocking so one slow side never stalls the loop. The
     * caller's stdin/stdout are left as they are (they may be shared with other
     * processes); poll() says when each is ready. */
    if (sk_set_nonblock(tp->fd, 1) < 0)
        return sk_errno(err, errno, "fcntl socket");
    r.tp = *tp; /* (the transport's state is behind impl, shared) */
    if (in_fd < 0)
        r.up.eof = 1;
    /* Zero copy for the way out: a pipe on input is spliced to the socket, a
     * regular file is sent with sendfile(); the bytes never enter our memory. */
    struct stat in_st;
    if (r.o->stream && !r.o->crlf && in_fd >= 0 && fstat(in_fd, &in_st) == 0)
        r.zc = S_ISFIFO(in_st.st_mode) ? ZC_SPLICE : S_ISREG(in_st.st_mode) ? ZC_SENDFILE : ZC_NONE;

    /* splice() and sendfile() have no MSG_NOSIGNAL, and write() to a closed
     * pipe raises SIGPIPE too: hold it blocked here, and take back any that
     * our own calls raised, so a closed peer is an error code, not death. */
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    int blocked = pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set) == 0;
    int rc = relay_loop(&r);
    if (blocked && !sigismember(&old_set, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {
        }
        pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    }
    /* Deliver what is left for the output even on error, within reason. */
    if (r.down.buf.len > 0 && !r.finished)
        sk_write_all(out_fd, sk_buf_head(&r.down.buf), r.down.buf.len, sk_now_ms() + 5000);
    sk_buf_free(&r.up.buf);
    sk_buf_free(&r.down.buf);
    const char *how =
        r.lost == ECONNRESET ? "connection reset by peer" : "connection closed by peer";
    if (rc == 0 && r.lost && r.lost_bytes > 0)
        rc = sk_errf(err, r.lost, "%s: %llu bytes of input not delivered", how,
                     (unsigned long long)r.lost_bytes);
    else if (rc == 0 && r.lost) /* (how much more input there was is unknown) */
        rc = sk_errf(err, r.lost, "%s: the rest of the input was not delivered (%llu bytes sent)",
                     how, (unsigned long long)r.st->to_net);
    return rc;
}
