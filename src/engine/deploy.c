/*
 * deploy.c - what running under inetd and systemd needs from the engine:
 * serving one connection that is already open (inetd `nowait`, systemd
 * Accept=yes), the counts an idle exit watches (inetd `wait`), swapping
 * the access list on SIGHUP, and the program's descriptors that the first
 * loop watches for it (its SIGHUP pipe: no thread of its own to wait).
 */
#define _GNU_SOURCE /* SOCK_CLOEXEC, SOCK_NONBLOCK */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

int sk_server_serve_fd(sk_server *s, int fd, sk_err *err)
{
    int type = 0;
    socklen_t tl = sizeof type;
    struct sockaddr_storage self, peer;
    socklen_t sl = sizeof self, pl = sizeof peer;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0) {
        int e = errno;
        close(fd);
        if (e == ENOTSOCK || e == EBADF)
            return sk_err_usage(err, "descriptor %d is %s", fd,
                                e == EBADF ? "not open" : "not a socket (inetd mode)");
        return sk_errno(err, e, "getsockopt SO_TYPE");
    }
    if (type != SOCK_STREAM) {
        close(fd);
        return sk_err_usage(err,
                            "descriptor %d is a datagram socket, not a connection (a "
                            "datagram service under inetd is `wait`: --inetd-wait)",
                            fd);
    }
    if (getsockname(fd, (struct sockaddr *)&self, &sl) < 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &pl) < 0) {
        int e = errno;
        close(fd);
        if (e == ENOTCONN)
            return sk_err_usage(err,
                                "descriptor %d is a stream socket that is not connected "
                                "(a listening socket is --inetd-wait or fd:%d)",
                                fd, fd);
        return sk_errno(err, e, "getpeername");
    }
    sk_transport t = self.ss_family == AF_UNIX ? SK_UNIX : SK_TCP;
    if (!(s->svc->flags & SK_SVC_STREAM)) {
        close(fd);
        return sk_err_usage(err, "service %s does not run on stream sockets", s->svc->name);
    }
    if (sk_set_cloexec(fd) < 0) {
        int e = errno;
        close(fd);
        return sk_errno(err, e, "fcntl");
    }
    if (!sk__admit(s, (struct sockaddr *)&peer, pl, t)) {
        close(fd); /* refused: logged by admit (with -v), as at accept */
        return 0;
    }
    s->own_listeners = 1;
    sk__serve_stream_blocking(s, fd, (struct sockaddr *)&peer, pl, t);
    sk__count_served(s);
    return 0;
}

int sk_server_reload(sk_server *s, sk_err *err)
{
    int r = s->svc->reload ? s->svc->reload(s, s->svc_state, err) : 0;
    /* Whatever was reloaded before this point (the TLS context, the access
     * list, the service's files) reaches the workers prefork forked up front
     * by replacing them (model_prefork.c); last, so that the new workers are
     * forked from a parent with everything swapped in and no reload under
     * way. The other models see the swapped pointers. */
    atomic_fetch_add(&s->reloads, 1);
    return r;
}

int sk_server_on_readable(sk_server *s, int fd, int (*fn)(sk_server *s, int fd, void *arg),
                          void *arg, sk_err *err)
{
    if (fd < 0 || fn == NULL)
        return sk_err_usage(err, "sk_server_on_readable: %s", fd < 0 ? "no descriptor" : "no call");
    if (!(s->model->caps & SK_MODEL_LOOP))
        return 0; /* no loop of ours: the caller waits on fd itself */
    if (s->nhooks == SK_SERVER_HOOKS_MAX)
        return sk_err_usage(err, "sk_server_on_readable: more than %d descriptors",
                            SK_SERVER_HOOKS_MAX);
    s->hooks[s->nhooks++] = (sk__hook){.s = s, .fd = fd, .fn = fn, .arg = arg};
    return 1;
}

int sk__hook_fire(sk__hook *h)
{
    return h->fn(h->s, h->fd, h->arg);
}

void sk_server_counts(const sk_server *s, long *open, unsigned long *served)
{
    if (open)
        *open = atomic_load(&((sk_server *)s)->nconns);
    if (served)
        *served = atomic_load(&((sk_server *)s)->served);
}

void sk_server_disown_listeners(sk_server *s)
{
    for (size_t i = 0; i < s->nls; i++)
        s->ls[i].unlink_path[0] = '\0';
}

const sk_access *sk_server_set_access(sk_server *s, const sk_access *a)
{
    /* admit.c reads the pointer with an acquire load: a connection is checked
     * against the old list or the new one, never a mix. */
    return __atomic_exchange_n(&s->o.access, a, __ATOMIC_ACQ_REL);
}

int sk__listener_reuseport_copy(const sk_listener *l, sk_listener *out, sk_err *err)
{
    /* Another socket bound to the same address: the kernel spreads new
     * connections (datagrams) between the sockets by a hash of the peer. */
    *out = *l;
    int on = 0;
    socklen_t ol = sizeof on;
    if (getsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &on, &ol) < 0 || !on)
        return 1; /* not a SO_REUSEPORT socket (systemd's without ReusePort=yes): shared */
    out->fd = -1;
    int stream = sk_transport_is_stream(l->transport);
    int fd = socket(l->local.sa.ss_family,
                    (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return sk_errno(err, errno, "socket %s", l->name);
    int one = 1, v6only = 0;
    socklen_t vl = sizeof v6only;
    if ((stream && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        (l->local.sa.ss_family == AF_INET6 &&
         (getsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &vl) < 0 ||
          setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)))
        goto fail;
    if (l->transport == SK_TCP)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&l->local.sa, l->local.len) < 0)
        goto fail;
    if (stream && listen(fd, SK_BACKLOG_DEFAULT) < 0)
        goto fail;
    *out = *l;
    out->fd = fd;
    out->unlink_path[0] = '\0';
    return 0;
fail:;
    int e = errno;
    close(fd);
    return sk_errno(err, e, "--reuseport: a socket for another loop on %s", l->name);
}

sk_listener *sk__loop_listeners_new(sk_server *s, sk_err *err)
{
    sk_listener *own = calloc(s->nls, sizeof *own);
    if (own == NULL) {
        sk_errno(err, ENOMEM, "listeners");
        return NULL;
    }
    for (size_t i = 0; i < s->nls; i++)
        own[i] = s->ls[i];
    for (size_t i = 0; i < s->nls; i++) {
        if ((s->ls[i].transport == SK_TCP || s->ls[i].transport == SK_UDP) &&
            sk__listener_reuseport_copy(&s->ls[i], &own[i], err) < 0) {
            own[i] = s->ls[i];
            sk__loop_listeners_free(s, own);
            return NULL;
        }
    }
    return own;
}

void sk__loop_listeners_release(sk_server *s, sk_listener *own)
{
    for (size_t i = 0; own && i < s->nls; i++) {
        if (own[i].fd >= 0 && own[i].fd != s->ls[i].fd)
            close(own[i].fd);
        own[i] = s->ls[i];
    }
}

void sk__loop_listeners_free(sk_server *s, sk_listener *own)
{
    sk__loop_listeners_release(s, own);
    free(own);
}
