/*
 * blocking.c - serve one connection, or a burst of datagrams, in the caller's
 * own flow of control: the way the tutorial's servers work, used by the
 * iterative, fork, thread and prefork models.
 *
 * The socket is non-blocking and we wait in poll() on it alone. That is still
 * "one flow of control per connection" (the call returns only when the
 * connection is over), but it lets the same loop honour the idle timeout, the
 * stop request, and services like chargen that write while they read. The
 * reads and writes are conn_io.c's, the deadlines policy.c's: the same as
 * the event loops'.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

/* Another thread posted to this connection: poke its poll(). */
static void blocking_wake(sk_conn *c)
{
    int *wake_wr = c->loop_data;
    ssize_t r = write(*wake_wr, "w", 1);
    (void)r; /* a full pipe already holds a wake-up */
}

/* The service's own descriptors (sk_conn_watch), after the connection's in
 * the poll set: entry i of the set is watch i (fd -1, ignored, when free). */
static nfds_t watch_fds(const sk_conn *c, struct pollfd *p)
{
    if (c->watches == NULL)
        return 0;
    for (int i = 0; i < SK_CONN_WATCH_MAX; i++) {
        const sk__watch *w = &c->watches->w[i];
        p[i] = (struct pollfd){.fd = w->events ? w->fd : -1};
        if (w->events & SK_WATCH_READ)
            p[i].events |= POLLIN;
        if (w->events & SK_WATCH_WRITE)
            p[i].events |= POLLOUT;
    }
    return SK_CONN_WATCH_MAX;
}

/* Run the callbacks of the watches that fired; 1 if any did. The entries are
 * looked up again for each: a callback may stop or start another watch. */
static int fire_watches(sk_conn *c, const struct pollfd *p, nfds_t n)
{
    int any = 0;
    for (nfds_t i = 0; i < n && c->watches != NULL; i++) {
        sk__watch *w = &c->watches->w[i];
        if (p[i].revents == 0 || p[i].fd < 0 || w->events == 0 || w->fd != p[i].fd)
            continue;
        unsigned f = 0;
        if (p[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
            f |= SK_WATCH_READ;
        if (p[i].revents & (POLLOUT | POLLERR))
            f |= SK_WATCH_WRITE;
        sk__watch_fire(w, f);
        any = 1;
    }
    return any;
}

/* Bytes per write round: the connection has this flow of control to itself. */
#define BLOCKING_WRITE_BUDGET (1u << 20)

void sk__serve_stream_blocking(sk_server *s, int fd, const struct sockaddr *peer, socklen_t plen,
                               sk_transport t)
{
    uint8_t scratch[SK_READ_CHUNK];
    if (sk_set_nonblock(fd, 1) < 0) {
        close(fd);
        return;
    }
    sk_conn *c = sk__conn_accepted(s, fd, peer, plen, t);
    if (c == NULL)
        return;
    int wake[2] = {-1, -1};
    if (sk__conn_inbox(c)) {
        if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0) {
            sk_server_log(s, SK_LOG_ERROR, "pipe: %s: connection dropped", strerror(errno));
            sk__conn_destroy(c);
            return;
        }
        c->loop_data = &wake[1];
        s->wake = blocking_wake; /* the same for every connection of this server */
    }
    sk__conn_begin(c);
    int64_t grace_deadline = -1;
    int took_last = 0; /* stopping: the request already in the socket was read */
    int counted = 0;   /* stopping: counted as busy (sk__grace_busy) */

    for (;;) {
        /* One budget per round, then poll: an endless writer (chargen to a
         * fast reader) still sees the stop request and its peer's input. */
        if (sk__conn_wants_write(c))
            sk__conn_pump_write(c, BLOCKING_WRITE_BUDGET);
        if (sk__conn_pump_close(c))
            break;
        int64_t now = sk_now_ms();
        if (sk__stopping_now(s))
            break; /* stop now: busy or not */
        if (grace_deadline < 0 && sk__stopping(s)) {
            if (s->own_listeners)
                sk__stop_listening(s);
            /* Shutting down: take a request that already arrived (it makes
             * the connection busy); an idle connection goes at once, a busy
             * one gets the grace period to finish what it is sending. */
            if (!took_last) {
                took_last = 1;
                if (sk__conn_pump_read(c, scratch, sizeof scratch) > 0)
                    continue;
            }
            if (sk__conn_may_stop(c))
                break;
            grace_deadline = now + s->o.grace_ms;
            /* (One only given a moment for a request that may be on its
             * way, policy.c, is not announced as busy.) */
            counted = !sk__conn_idle(c);
            if (counted)
                sk__grace_busy(s, 1);
            if (counted && s->model == &sk__model_iterative)
                sk__announce_stop(s, 1); /* the only connection: no one else counts */
        }
        int exp = sk__conn_expired(c, now, grace_deadline);
        if (exp == SK_EXP_CLOSE)
            break;
        if (exp == SK_EXP_RAN)
            continue; /* the service acted: write, then decide */

        int64_t deadline = sk__conn_next_deadline(c, now, grace_deadline);
        int timeout = -1;
        if (deadline >= 0)
            timeout = deadline <= now ? 0 : (int)(deadline - now);
        unsigned want = sk__conn_interest(c);
        if ((want & SK_TP_WANT_READ) && sk__tp_buffered(&c->tp) > 0)
            timeout = 0; /* bytes inside the transport are readable now */

        /* The stop pipe stays readable once written: in the grace period,
         * watch the stop-now pipe instead. */
        int stop_fd = grace_deadline < 0 ? s->stop_rd : s->now_rd;
        struct pollfd p[3 + SK_CONN_WATCH_MAX] = {
            {.fd = fd}, {.fd = wake[0], .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
        if (want & SK_TP_WANT_READ)
            p[0].events |= POLLIN;
        if (want & SK_TP_WANT_WRITE)
            p[0].events |= POLLOUT;
        /* Nothing wanted from the socket while the service waits on its
         * other side (paused, or its watches: a relay whose target has not
         * taken the client's last bytes yet): a hangup there (the peer
         * ended after our half-close) is no error. The event loops stop
         * watching such a socket; poll() would report the hangup anyway,
         * so leave the socket out until something is wanted from it. */
        if (want == 0 && ((c->flags & SK_C_PAUSED) || sk__conn_watching(c)))
            p[0].fd = -1;
        nfds_t np = 3 + watch_fds(c, p + 3);
        int r = poll(p, np, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fire_watches(c, p + 3, np - 3))
            continue; /* the service acted: write, then look again */
        if (p[2].revents & POLLIN) {
            if (grace_deadline < 0)
                sk__saw_stop(s); /* handled at the top of the loop */
            else
                sk__saw_stop_now(s);
            continue;
        }
        if (p[1].revents & POLLIN) {
            char junk[64];
            while (read(wake[0], junk, sizeof junk) > 0) {
            }
            sk__conn_take_inbox(c);
        }
        if (p[0].revents == 0 && !(timeout == 0 && sk__tp_buffered(&c->tp) > 0))
            continue; /* a deadline: looked at at the top of the loop */
        int readable = (p[0].revents & (POLLIN | POLLHUP | POLLERR)) ||
                       ((p[0].revents & POLLOUT) && (c->flags & SK_C_RD_WANTS_W)) ||
                       sk__tp_buffered(&c->tp) > 0;
        if (sk__conn_wants_read(c) && readable)
            sk__conn_pump_read(c, scratch, sizeof scratch);
        else if (!(p[0].revents & POLLOUT) && (p[0].revents & (POLLHUP | POLLERR)))
            sk__conn_feed_error(c, EPIPE); /* gone, and we had nothing to read for */
    }
    if (counted)
        sk__grace_busy(s, -1);
    sk__conn_destroy(c); /* unregisters from the service before the wake pipe goes */
    if (wake[0] >= 0) {
        close(wake[0]);
        close(wake[1]);
    }
}
