/*
 * target.c - where `sockit bench` sends its load. Load goes only to loopback
 * (127.0.0.0/8, ::1) or Unix sockets: any other target is refused before
 * anything is sent. Each resolved endpoint is probed in turn (one connection;
 * for datagrams one datagram and its reply) and the first that answers is
 * the run's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"

static int is_loopback(const sk_endpoint *e)
{
    if (e->family == AF_UNIX)
        return 1;
    if (e->family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&e->sa;
        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    if (e->family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&e->sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* Resolve, and refuse anything that is not loopback or a Unix socket. */
static int resolve_loopback(bench_cfg *c, sk_endpoint *eps, size_t cap, size_t *n, sk_err *err)
{
    char name[SK_NAME_MAX + SK_HOST_MAX];
    sk_addr_format(&c->addr, name, sizeof name);
    if (sk_resolve(&c->addr, 0, eps, cap, n, err) < 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if (!is_loopback(&eps[i])) {
            char ep[SK_NAME_MAX];
            sk_sockaddr_format((struct sockaddr *)&eps[i].sa, eps[i].len, c->addr.transport, ep,
                               sizeof ep);
            int same = strcmp(name, ep) == 0;
            return sk_err_usage(err,
                                "bench: refusing %s%s%s%s: load goes only to loopback "
                                "(127.0.0.0/8, ::1) or Unix sockets",
                                name, same ? "" : " (", same ? "" : ep, same ? "" : ")");
        }
    }
    return 0;
}

/* One datagram out and any reply back on the connected socket t, by the deadline. */
static int probe_dgram(sk_tp *t, int64_t deadline)
{
    uint8_t msg[BENCH_HDR], reply[64];
    bench_msg_header(0xffffffffu, 0, msg);
    for (;;) {
        ssize_t n = sk__tp_write(t, msg, sizeof msg, 0);
        if (n >= 0)
            break;
        if (n != SK_TP_AGAIN || sk_wait_fd(t->fd, POLLOUT, deadline) != 1)
            return -1;
    }
    for (;;) {
        ssize_t n = sk__tp_read(t, reply, sizeof reply);
        if (n >= 0) /* any datagram, even an empty one */
            return 0;
        if (n != SK_TP_AGAIN)
            return -1;
        int r = sk_wait_fd(t->fd, POLLIN, deadline);
        if (r == 0)
            errno = ETIMEDOUT;
        if (r != 1)
            return -1;
    }
}

/* One connection (one datagram and its reply), to pick the endpoint. */
static int probe(const bench_cfg *c, const sk_endpoint *e)
{
    int fd = socket(e->family, e->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    sk_tp tp;
    sk__tp_plain(&tp, fd);
    if (c->tp_open != NULL && c->tp_open(&tp, fd, c) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    int64_t deadline = sk_now_ms() + c->connect_timeout_ns / 1000000;
    int ok = 0;
    if (e->family == AF_UNIX && e->socktype == SOCK_DGRAM) {
        struct sockaddr_un me = {.sun_family = AF_UNIX};
        if (bind(fd, (struct sockaddr *)&me, sizeof(sa_family_t)) < 0)
            goto out;
    }
    if (connect(fd, (const struct sockaddr *)&e->sa, e->len) < 0) {
        if (errno != EINPROGRESS)
            goto out;
        if (sk_wait_fd(fd, POLLOUT, deadline) != 1)
            goto out;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
            errno = soerr;
            goto out;
        }
    }
    if (e->socktype == SOCK_DGRAM && probe_dgram(&tp, deadline) < 0)
        goto out;
    ok = 1;
out:;
    int e2 = errno;
    sk__tp_close(&tp);
    errno = e2;
    return ok ? 0 : -1;
}

int bench_choose_target(bench_cfg *c, sk_err *err)
{
    sk_endpoint eps[SK_RESOLVE_MAX];
    size_t n = 0;
    if (resolve_loopback(c, eps, SK_RESOLVE_MAX, &n, err) < 0)
        return -1;
    int last = ECONNREFUSED;
    for (size_t i = 0; i < n; i++) {
        sk_sockaddr_format((struct sockaddr *)&eps[i].sa, eps[i].len, c->addr.transport, c->target,
                           sizeof c->target);
        if (probe(c, &eps[i]) == 0) {
            c->ep = eps[i];
            c->spread_src = c->ep.family == AF_INET && c->ep.socktype == SOCK_STREAM;
            return 0;
        }
        last = errno;
    }
    if ((c->mode->flags & BENCH_F_DGRAM) && last == ETIMEDOUT)
        return sk_errf(err, ETIMEDOUT, "no reply from %s within %.1f s: is it an echo service?",
                       c->target, (double)c->connect_timeout_ns / 1e9);
    return sk_errno(err, last, "connect %s", c->target);
}
