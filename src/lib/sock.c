/*
 * sock.c - opening sockets: server sockets (bind + listen), client sockets
 * (connect with a timeout, every resolved address in turn), accept.
 */
#define _GNU_SOURCE /* accept4, SOCK_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "resolve_cache.h"
#include "sockit.h"
#include "activate.h"

int sk_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    int nfl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    if (nfl != fl && fcntl(fd, F_SETFL, nfl) < 0)
        return -1;
    return 0;
}

int sk_set_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0)
        return -1;
    return (fl & FD_CLOEXEC) ? 0 : fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

static int new_socket(int family, int socktype, int nonblock)
{
#ifdef SOCK_CLOEXEC
    int fd = socket(family, socktype | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    return fd;
#else
    int fd = socket(family, socktype, 0);
    if (fd >= 0 && (sk_set_cloexec(fd) < 0 || (nonblock && sk_set_nonblock(fd, 1) < 0))) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
#endif
}

int sk_accept(int lfd, struct sockaddr *peer, socklen_t *peerlen, int nonblock)
{
    for (;;) {
#ifdef __linux__
        int fd = accept4(lfd, peer, peerlen, SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
#else
        int fd = accept(lfd, peer, peerlen);
        if (fd >= 0 && (sk_set_cloexec(fd) < 0 || (nonblock && sk_set_nonblock(fd, 1) < 0))) {
            close(fd);
            continue;
        }
#endif
        if (fd >= 0)
            return fd;
        /* A connection reset before we accepted it is not our error: take the next. */
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        return -1;
    }
}

static sk_transport transport_of(const sk_endpoint *e)
{
    if (e->family == AF_UNIX)
        return e->socktype == SOCK_STREAM ? SK_UNIX : SK_UNIXGRAM;
    return e->socktype == SOCK_STREAM ? SK_TCP : SK_UDP;
}

#ifdef __linux__
/*
 * Is a stream socket listening at path? Asked of /proc/net/unix, so that the
 * question does not itself connect (a live --once server would take the probe
 * for its one client). Returns 1 yes, 0 no, -1 cannot tell (no /proc, or a
 * socket bound under a relative name that may or may not be this path).
 */
static int unix_listening(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (f == NULL)
        return -1;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char line[4096];
    int verdict = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        /* Num RefCount Protocol Flags Type St Inode Path */
        unsigned long flags = 0;
        unsigned type = 0;
        int pos = 0;
        if (sscanf(line, "%*s %*s %*s %lx %x %*s %*s %n", &flags, &type, &pos) < 2 || pos == 0)
            continue;
        char *name = line + pos;
        name[strcspn(name, "\n")] = '\0';
        if (!(flags & 0x10000) || type != 1 /* SOCK_STREAM */)
            continue; /* not listening */
        if (strcmp(name, path) == 0) {
            verdict = 1;
            break;
        }
        const char *nb = strrchr(name, '/');
        if (name[0] != '/' && strcmp(nb ? nb + 1 : name, base) == 0)
            verdict = -1; /* a relative name ending the same way: cannot tell */
    }
    fclose(f);
    return verdict;
}
#endif

/*
 * A Unix socket path may hold a file already. A socket nobody answers on is a
 * leftover of a dead server: remove it. A live server's socket, or any file
 * that is not a socket, stays, and binding fails with a message saying why.
 */
static int clear_stale_unix(const sk_endpoint *e, const char *name, sk_err *err)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&e->sa;
    struct stat st;
    if (sun->sun_path[0] == '\0')
        return 0; /* abstract: vanishes with its last descriptor */
    if (lstat(sun->sun_path, &st) < 0)
        return errno == ENOENT ? 0 : sk_errno(err, errno, "bind %s", name);
    if (!S_ISSOCK(st.st_mode))
        return sk_errf(err, EEXIST, "bind %s: File exists and is not a socket", name);
#ifdef __linux__
    if (e->socktype == SOCK_STREAM && sun->sun_path[0] == '/') {
        int live = unix_listening(sun->sun_path);
        if (live == 1)
            return sk_errf(err, EADDRINUSE, "bind %s: Address already in use (a server is running)",
                           name);
        if (live == 0) {
            if (unlink(sun->sun_path) < 0 && errno != ENOENT)
                return sk_errno(err, errno, "bind %s: removing the stale socket", name);
            return 0;
        }
    }
#endif
    int fd = new_socket(AF_UNIX, e->socktype, 1);
    if (fd < 0)
        return sk_errno(err, errno, "socket %s", name);
    int r = connect(fd, (const struct sockaddr *)&e->sa, e->len);
    int cerr = errno;
    close(fd);
    if (r == 0 || cerr == EAGAIN || cerr == EINPROGRESS)
        return sk_errf(err, EADDRINUSE, "bind %s: Address already in use (a server is running)",
                       name);
    if (cerr != ECONNREFUSED)
        return sk_errno(err, cerr, "bind %s: checking the existing socket", name);
    if (unlink(sun->sun_path) < 0 && errno != ENOENT)
        return sk_errno(err, errno, "bind %s: removing the stale socket", name);
    return 0;
}

static int set_port(sk_endpoint *e, uint16_t port)
{
    if (e->family == AF_INET)
        ((struct sockaddr_in *)&e->sa)->sin_port = htons(port);
    else if (e->family == AF_INET6)
        ((struct sockaddr_in6 *)&e->sa)->sin6_port = htons(port);
    return 0;
}

static uint16_t get_port(const sk_endpoint *e)
{
    if (e->family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&e->sa)->sin_port);
    if (e->family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&e->sa)->sin6_port);
    return 0;
}

static int is_wildcard(const sk_endpoint *e)
{
    if (e->family == AF_INET)
        return ((const struct sockaddr_in *)&e->sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (e->family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&e->sa)->sin6_addr);
    return 0;
}

/* Bind (and listen on) one endpoint. Returns 0 and fills l, or -1. */
static int listen_one(sk_endpoint *e, const sk_listen_opts *o, int dual_stack, sk_listener *l,
                      sk_err *err)
{
    char name[SK_NAME_MAX];
    sk_transport t = transport_of(e);
    sk_sockaddr_format((struct sockaddr *)&e->sa, e->len, t, name, sizeof name);
    memset(l, 0, sizeof *l);
    l->fd = -1;
    l->transport = t;

    if (e->family == AF_UNIX && clear_stale_unix(e, name, err) < 0)
        return -1;
    int fd = new_socket(e->family, e->socktype, o && o->nonblock);
    if (fd < 0)
        return sk_errno(err, errno, "socket %s", name);
    int one = 1, zero = 0;
    /* SO_REUSEADDR lets a restarted TCP server bind while old connections sit in
     * TIME_WAIT. Not for UDP: there it would let two servers share a port. */
    if (e->socktype == SOCK_STREAM && e->family != AF_UNIX &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail_errno_setsockopt;
    if (o && o->reuseport && e->family != AF_UNIX &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        goto fail_errno_setsockopt;
    if (e->family == AF_INET6) {
        /* The IPv6 wildcard also takes IPv4 (one socket, one port for both),
         * unless the user asked for IPv6 only (tcp6://); a specific IPv6
         * address means IPv6 only anyway. */
        int *v = (is_wildcard(e) && dual_stack) ? &zero : &one;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v, sizeof *v) < 0)
            goto fail_errno_setsockopt;
    }
    if (bind(fd, (struct sockaddr *)&e->sa, e->len) < 0) {
        sk_errno(err, errno, "bind %s", name);
        close(fd);
        return -1;
    }
    if (e->socktype == SOCK_STREAM) {
        int backlog = (o && o->backlog > 0) ? o->backlog : SK_BACKLOG_DEFAULT;
        if (listen(fd, backlog) < 0) {
            sk_errno(err, errno, "listen %s", name);
            close(fd);
            return -1;
        }
    }
    l->fd = fd;
    l->local = *e;
    l->local.len = sizeof l->local.sa;
    if (getsockname(fd, (struct sockaddr *)&l->local.sa, &l->local.len) < 0) {
        sk_errno(err, errno, "getsockname %s", name);
        close(fd);
        l->fd = -1;
        return -1;
    }
    if (e->family == AF_UNIX) {
        /* The kernel reports sun_path as bound; keep what we asked for instead,
         * which is the same and avoids trailing-NUL ambiguity. */
        l->local = *e;
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&e->sa;
        struct stat st;
        if (sun->sun_path[0] != '\0' && stat(sun->sun_path, &st) == 0) {
            snprintf(l->unlink_path, sizeof l->unlink_path, "%s", sun->sun_path);
            l->dev = st.st_dev;
            l->ino = st.st_ino;
        }
    }
    sk_sockaddr_format((struct sockaddr *)&l->local.sa, l->local.len, t, l->name, sizeof l->name);
    return 0;

fail_errno_setsockopt:
    sk_errno(err, errno, "setsockopt %s", name);
    close(fd);
    return -1;
}

/* A listener for a forced family (tcp6://) is named the way it was asked
 * for: "tcp6://[::]:80", not "tcp://[::]:80", which would also take IPv4. */
static void name_family(sk_listener *l, int family)
{
    char *sep = strstr(l->name, "://");
    if (sep == NULL || sep + 1 + strlen(sep) >= l->name + sizeof l->name)
        return;
    memmove(sep + 1, sep, strlen(sep) + 1);
    *sep = family == AF_INET ? '4' : '6';
}

int sk_listen(const sk_addr *a, const sk_listen_opts *o, sk_listener *out, size_t cap, size_t *n,
              sk_err *err)
{
    sk_endpoint eps[SK_RESOLVE_MAX];
    size_t neps = 0;
    *n = 0;
    if (!a->inherit && sk_resolve(a, SK_PASSIVE, eps, SK_RESOLVE_MAX, &neps, err) < 0)
        return -1;
    if (a->inherit) /* fd:N, sd:NAME: adopted, not bound (activate.c) */
        return sk__listen_inherited(a, out, cap, n, err);
    uint16_t chosen_port = 0;
    int dual_stack = 0;
    for (size_t i = 0; i < neps; i++) {
        sk_endpoint *e = &eps[i];
        if (dual_stack && e->family == AF_INET && is_wildcard(e))
            continue; /* the IPv6 wildcard socket already takes IPv4 */
        if (*n >= cap)
            break;
        if (e->family != AF_UNIX && get_port(e) == 0 && chosen_port != 0)
            set_port(e, chosen_port); /* port 0: one kernel-picked port for all */
        sk_err e1;
        if (listen_one(e, o, a->family == AF_UNSPEC, &out[*n], &e1) < 0) {
            /* No IPv6 on this host: the IPv4 wildcard that follows serves alone. */
            if (e->family == AF_INET6 && is_wildcard(e) &&
                (e1.code == EAFNOSUPPORT || e1.code == EADDRNOTAVAIL) && i + 1 < neps)
                continue;
            if (err)
                *err = e1;
            for (size_t j = 0; j < *n; j++)
                sk_listener_close(&out[j]);
            *n = 0;
            return -1;
        }
        if (a->family == AF_INET || a->family == AF_INET6)
            name_family(&out[*n], a->family);
        if (e->family == AF_INET6 && is_wildcard(e) && a->family == AF_UNSPEC)
            dual_stack = 1;
        if (chosen_port == 0)
            chosen_port = get_port(&out[*n].local);
        (*n)++;
    }
    return 0;
}

void sk_listener_close(sk_listener *l)
{
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    if (l->unlink_path[0]) {
        /* Remove the file only if it is still the socket we bound, not one a
         * newer server put in its place. */
        struct stat st;
        if (lstat(l->unlink_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
            st.st_ino == l->ino)
            unlink(l->unlink_path);
        l->unlink_path[0] = '\0';
    }
}

/* Connect one endpoint within timeout_ms, from src if not NULL. Returns a
 * blocking fd or -1 (errno; *bind_failed set when binding src failed). */
int sk__connect_one(const sk_endpoint *e, const sk_endpoint *src, int timeout_ms, int *bind_failed)
{
    int fd = new_socket(e->family, e->socktype, e->family != AF_UNIX);
    if (fd < 0)
        return -1;
    if (src != NULL) {
        int one = 1;
        /* A chosen source port may still be in TIME_WAIT from the last run. */
        if (get_port(src) != 0)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (const struct sockaddr *)&src->sa, src->len) < 0) {
            *bind_failed = 1;
            goto fail;
        }
    }
    if (e->family == AF_UNIX && e->socktype == SOCK_DGRAM) {
#ifdef __linux__
        /* Autobind: a unique abstract name, so the server can reply to us. */
        struct sockaddr_un me = {.sun_family = AF_UNIX};
        if (bind(fd, (struct sockaddr *)&me, sizeof(sa_family_t)) < 0)
            goto fail;
#endif
    }
    if (e->family == AF_UNIX) {
        /* Unix connect completes at once or blocks only while the backlog is
         * full; bound that wait with a send timeout instead of poll. */
        if (timeout_ms > 0) {
            struct timeval tv = {.tv_sec = timeout_ms / 1000,
                                 .tv_usec = (timeout_ms % 1000) * 1000};
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        }
        int r;
        do
            r = connect(fd, (const struct sockaddr *)&e->sa, e->len);
        while (r < 0 && errno == EINTR);
        if (r < 0) {
            if (errno == EAGAIN)
                errno = ETIMEDOUT;
            goto fail;
        }
        struct timeval zero = {0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
        return fd;
    }
    if (connect(fd, (const struct sockaddr *)&e->sa, e->len) < 0) {
        if (errno != EINPROGRESS && errno != EINTR)
            goto fail;
        int64_t deadline = timeout_ms > 0 ? sk_now_ms() + timeout_ms : -1;
        int r = sk_wait_fd(fd, POLLOUT, deadline);
        if (r < 0)
            goto fail;
        if (r == 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            goto fail;
        if (soerr != 0) {
            errno = soerr;
            goto fail;
        }
    }
    if (sk_set_nonblock(fd, 0) < 0)
        goto fail;
    return fd;
fail:;
    int e2 = errno;
    close(fd);
    errno = e2;
    return -1;
}

/* The source endpoints for -s/-p: src_host (empty: any) and src_port
 * (empty: any), resolved for a's transport. */
static int resolve_source(const sk_addr *a, const char *src_host, const char *src_port,
                          sk_endpoint *out, size_t *n, sk_err *err)
{
    if (a->transport == SK_UNIX || a->transport == SK_UNIXGRAM)
        return sk_err_usage(err, "a source address or port is for TCP and UDP, not %s",
                            sk_transport_name(a->transport));
    sk_addr src = {.transport = a->transport, .family = a->family};
    if (strlen(src_host ? src_host : "") >= sizeof src.host ||
        strlen(src_port ? src_port : "") >= sizeof src.port)
        return sk_err_usage(err, "source address too long");
    snprintf(src.host, sizeof src.host, "%s", src_host ? src_host : "");
    snprintf(src.port, sizeof src.port, "%s", src_port && *src_port ? src_port : "0");
    return sk_resolve(&src, SK_PASSIVE, out, SK_RESOLVE_MAX, n, err);
}

int sk_connect_from(const sk_addr *a, const char *src_host, const char *src_port, int timeout_ms,
                    sk_endpoint *peer, sk_err *err)
{
    sk_endpoint eps[SK_RESOLVE_MAX], srcs[SK_RESOLVE_MAX];
    size_t n = 0, nsrc = 0;
    int want_src = (src_host && *src_host) || (src_port && *src_port);
    if (want_src && resolve_source(a, src_host, src_port, srcs, &nsrc, err) < 0)
        return -1;
    if (sk_resolve(a, 0, eps, SK_RESOLVE_MAX, &n, err) < 0)
        return -1;
    int last = ECONNREFUSED, bind_failed = 0, tried = 0;
    const sk_endpoint *last_src = NULL;
    size_t last_i = 0;
    for (size_t i = 0; i < n; i++) {
        const sk_endpoint *src = NULL;
        for (size_t j = 0; want_src && j < nsrc && src == NULL; j++)
            if (srcs[j].family == eps[i].family)
                src = &srcs[j];
        if (want_src && src == NULL)
            continue; /* an IPv6 peer cannot be reached from an IPv4 source */
        tried++;
        bind_failed = 0;
        int fd = sk__connect_one(&eps[i], src, timeout_ms, &bind_failed);
        if (fd >= 0) {
            if (peer)
                *peer = eps[i];
            return fd;
        }
        last = errno;
        last_i = i;
        last_src = bind_failed ? src : NULL;
    }
    char name[SK_NAME_MAX];
    if (tried == 0 && n > 0) {
        sk_sockaddr_format((struct sockaddr *)&eps[0].sa, eps[0].len, transport_of(&eps[0]), name,
                           sizeof name);
        return sk_err_usage(err, "connect %s: the source address is of another family", name);
    }
    if (last_src) {
        sk_sockaddr_format((struct sockaddr *)&last_src->sa, last_src->len, a->transport, name,
                           sizeof name);
        return sk_errno(err, last, "bind source %s", name);
    }
    sk_sockaddr_format((struct sockaddr *)&eps[last_i].sa, eps[last_i].len,
                       transport_of(&eps[last_i]), name, sizeof name);
    return sk_errno(err, last, "connect %s", name);
}

int sk_connect(const sk_addr *a, int timeout_ms, sk_endpoint *peer, sk_err *err)
{
    return sk_connect_from(a, NULL, NULL, timeout_ms, peer, err);
}
