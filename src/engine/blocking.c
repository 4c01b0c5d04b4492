/*
 * blocking.c - serve one connection, or a burst of datagrams, in the caller's
 * own flow of control: the way the tutorial's servers work, used by the
 * iterative, fork, thread and prefork models.
 *
 * The socket is non-blocking and we wait in poll() on it alone. That is still
 * "one flow of control per connection" (the call returns only when the
 * connection is over), but it lets the same loop honour the idle timeout, the
 * stop request, and services like chargen that write while they read.
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

static int64_t min_deadline(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* Another thread posted to this connection: poke its poll(). */
static void blocking_wake(sk_conn *c)
{
    int *wake_wr = c->loop_data;
    ssize_t r = write(*wake_wr, "w", 1);
    (void)r; /* a full pipe already holds a wake-up */
}

void sk__serve_stream_blocking(sk_server *s, int fd, const struct sockaddr *peer, socklen_t plen,
                               sk_transport t)
{
    uint8_t scratch[SK_READ_CHUNK];
    if (sk_set_nonblock(fd, 1) < 0) {
        close(fd);
        return;
    }
    sk_conn *c = sk__conn_new(s, fd, peer, plen, t);
    if (c == NULL) {
        sk_server_log(s, SK_LOG_ERROR, "out of memory: connection dropped");
        close(fd);
        return;
    }
    int wake[2] = {-1, -1};
    if (c->inbox) {
        if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0) {
            sk_server_log(s, SK_LOG_ERROR, "pipe: %s: connection dropped", strerror(errno));
            sk__conn_free(c);
            return;
        }
        c->loop_data = &wake[1];
        s->wake = blocking_wake; /* the same for every connection of this server */
    }
    sk__conn_open(c);
    int grace_ms = s->o.grace_ms > 0 ? s->o.grace_ms : SK_GRACE_DEFAULT_MS;
    int64_t grace_deadline = -1;

    for (;;) {
        if (sk__conn_wants_write(c))
            sk__conn_write(c);
        if (sk__conn_finished(c))
            break;
        int64_t now = sk_now_ms();
        if (grace_deadline < 0 && sk__stopping(s)) {
            if (s->own_listeners)
                sk__stop_listening(s);
            /* Shutting down: an idle connection goes at once, a busy one gets
             * the grace period to finish what it is sending. */
            if (sk__conn_idle(c))
                break;
            grace_deadline = now + grace_ms;
        }
        /* Stopping: go when the work is done, or when the grace period is. */
        if (grace_deadline >= 0 && (now >= grace_deadline || sk__conn_idle(c)))
            break;

        int64_t deadline = grace_deadline;
        if (c->timer_at)
            deadline = min_deadline(deadline, c->timer_at);
        if (c->flags & SK_C_WSHUT)
            deadline = min_deadline(deadline, c->last_io_ms + SK_LINGER_MS);
        else if (s->o.idle_timeout_ms > 0)
            deadline = min_deadline(deadline, c->last_io_ms + s->o.idle_timeout_ms);
        int timeout = -1;
        if (deadline >= 0)
            timeout = deadline <= now ? 0 : (int)(deadline - now);

        struct pollfd p[3] = {
            {.fd = fd}, {.fd = wake[0], .events = POLLIN}, {.fd = s->stop_rd, .events = POLLIN}};
        if (sk__conn_wants_read(c))
            p[0].events |= POLLIN;
        if (sk__conn_wants_write(c))
            p[0].events |= POLLOUT;
        nfds_t np = grace_deadline < 0 ? 3 : 2; /* the stop pipe stays readable once set */
        int r = poll(p, np, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (np == 3 && (p[2].revents & POLLIN)) {
            sk__saw_stop(s); /* handled at the top of the loop */
            continue;
        }
        if (r == 0) {
            now = sk_now_ms();
            if (sk__conn_check_timer(c, now))
                continue; /* the service acted (e.g. answered 408): write, then decide */
            if (c->flags & SK_C_WSHUT)
                break; /* the peer never sent its FIN: close anyway */
            if (s->o.idle_timeout_ms > 0 && now - c->last_io_ms >= s->o.idle_timeout_ms) {
                if (s->o.verbose)
                    sk_server_log(s, SK_LOG_INFO, "idle timeout: %s", sk_conn_peer_name(c));
                break;
            }
            continue;
        }
        if (p[1].revents & POLLIN) {
            char junk[64];
            while (read(wake[0], junk, sizeof junk) > 0) {
            }
            sk__conn_take_inbox(c);
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (sk__conn_wants_read(c))
                sk__conn_read(c, scratch, sizeof scratch);
            else if (!(p[0].revents & POLLOUT) && (p[0].revents & (POLLHUP | POLLERR)))
                c->flags |= SK_C_DEAD; /* gone, and we had nothing to read for */
        }
    }
    sk__conn_free(c); /* unregisters from the service before the wake pipe goes */
    if (wake[0] >= 0) {
        close(wake[0]);
        close(wake[1]);
    }
}
