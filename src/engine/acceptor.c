/*
 * acceptor.c - for the models whose main loop waits for connections: wait on
 * all listeners and the stop pipe at once, and accept without ever spinning
 * when the process runs out of descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

int sk__wait_listeners(sk_server *s, int extra_fd, int timeout_ms)
{
    /* As many as there are listeners (sk_server_add_listener sizes it): one
     * accepting thread per process uses it. */
    struct pollfd *p = s->pfds;
    nfds_t n = 0;
    for (size_t i = 0; i < s->nls; i++)
        p[n++] = (struct pollfd){.fd = s->ls[i].fd, .events = POLLIN};
    nfds_t nl = n;
    p[n++] = (struct pollfd){.fd = s->stop_rd, .events = POLLIN};
    if (extra_fd >= 0)
        p[n++] = (struct pollfd){.fd = extra_fd, .events = POLLIN};
    int r = poll(p, n, timeout_ms);
    if (r <= 0)
        return -2; /* timeout, or EINTR (a child exited): the caller looks around */
    if (p[nl].revents) {
        sk__saw_stop(s);
        return -1;
    }
    /* Start the scan where the last one ended, so a busy listener cannot
     * starve the others. */
    static _Thread_local size_t next;
    for (size_t k = 0; k < nl; k++) {
        size_t i = (next + k) % nl;
        if (p[i].revents) {
            next = i + 1;
            return (int)i;
        }
    }
    return -2;
}

int sk__wait_work(sk_server *s, int extra_fd, sk_dgram_batch *dgrams)
{
    int i = sk__wait_listeners(s, extra_fd, -1);
    if (i < 0)
        return i == -1 ? SK_WAIT_STOP : SK_WAIT_AGAIN;
    const sk_listener *l = &s->ls[i];
    if (sk_transport_is_stream(l->transport))
        return i;
    /* Datagrams have no connection to hand to a process or thread: answer them here. */
    sk__serve_datagrams(s, l, 64, dgrams);
    return s->o.once && atomic_load(&s->served) > 0 ? SK_WAIT_STOP : SK_WAIT_AGAIN;
}

int sk__accept_next(sk_server *s, int extra_fd, sk_dgram_batch *dgrams, int nonblock,
                    sk_accepted *a)
{
    int i = sk__wait_work(s, extra_fd, dgrams);
    if (i < 0)
        return i;
    const sk_listener *l = &s->ls[i];
    a->transport = l->transport;
    a->plen = sizeof a->peer;
    a->fd = sk__accept(s, l, (struct sockaddr *)&a->peer, &a->plen, nonblock);
    return a->fd < 0 ? SK_WAIT_AGAIN : 0;
}

int sk__accept(sk_server *s, const sk_listener *l, struct sockaddr *peer, socklen_t *plen,
               int nonblock)
{
    int fd = sk_accept(l->fd, peer, plen, nonblock);
    /* access: --allow/--deny and per-source limits (admit.c). A refused peer
     * is closed before a byte is read or written. */
    if (fd >= 0 && !sk__admit(s, peer, *plen, l->transport)) {
        close(fd);
        errno = EAGAIN;
        return -1;
    }
    if (fd >= 0)
        return fd;
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK)
        return -1;
    if ((e == EMFILE || e == ENFILE) && s->spare_fd >= 0) {
        /* Out of descriptors. The pending connection would keep the listener
         * readable and the loop spinning: use the reserve descriptor to take
         * it off the queue and close it, then take the reserve back. */
        close(s->spare_fd);
        s->spare_fd = -1;
        int shed = accept(l->fd, NULL, NULL);
        if (shed >= 0)
            close(shed);
        s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        /* Under a flood this happens per connection: say it once a second. */
        static _Atomic int64_t last_said;
        static atomic_long shed_since;
        long n = atomic_fetch_add(&shed_since, 1) + 1;
        int64_t now = sk_now_ms(), last = atomic_load(&last_said);
        if (now - last >= 1000 && atomic_compare_exchange_strong(&last_said, &last, now)) {
            atomic_fetch_sub(&shed_since, n);
            sk_server_log(s, SK_LOG_ERROR,
                          "accept %s: too many open files: %ld connection(s) closed", l->name, n);
        }
        return -1;
    }
    sk_server_log(s, SK_LOG_ERROR, "accept %s: %s", l->name, strerror(e));
    if (e == ENOBUFS || e == ENOMEM || e == EMFILE || e == ENFILE) {
        /* Nothing to shed with: back off instead of spinning. */
        poll(NULL, 0, 100);
    }
    return -1;
}

/* Stopping: what already waits in a stream listener's backlog has finished its
 * handshake, and its client has likely sent a request: closing the listener
 * would reset it (a load balancer cannot retry a request the server took and
 * dropped). So an event loop takes those before it closes (policy.c gives
 * them their first bytes' time like any connection accepted a moment
 * earlier). Bounded, and by --max-conns. */
#define SK__DRAIN_MAX 4096

int sk__drain_backlog(sk_server *s, const sk_listener *l, sk__take_fn take, void *ud)
{
    if (!sk_transport_is_stream(l->transport))
        return 0;
    for (int n = 0; n < SK__DRAIN_MAX; n++) {
        if (s->o.max_conns > 0 && atomic_load(&s->nconns) >= s->o.max_conns)
            return -1;
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = sk__accept(s, l, (struct sockaddr *)&peer, &plen, 1);
        if (fd < 0)
            break;
        take(ud, l, fd, &peer, plen);
    }
    return 0;
}
