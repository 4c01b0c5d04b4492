/*
 * relay_udp.c - sk_forward_udp: `sockit relay udp://... udp://...`.
 *
 * A datagram service answers one datagram with at most one reply, which is
 * not what a relay does (a DNS or game server may answer many times, or
 * first), so the UDP relay is its own small loop on poll(): one listening
 * socket, one connected upstream socket per client address (a "session"),
 * so that what the target sends on a session goes back to its client. The
 * table of sessions is bounded (the least recently active is forgotten when
 * it is full) and a session silent for the idle timeout is closed. The
 * access list and the per-source limits apply to new sessions (a datagram
 * from a denied peer is dropped).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "resolve_cache.h"
#include "sockit.h"

#define UDP_IDLE_DEFAULT_MS 60000
#define UDP_SESSIONS_DEFAULT 4096
#define UDP_BATCH 64 /* datagrams per socket per wakeup: the others get their turn */
#define UDP_MMSG 16  /* datagrams per system call */

#ifdef __linux__
typedef struct mmsghdr batch_msg;
static int recv_batch(int fd, batch_msg *m, unsigned n, int flags)
{
    return recvmmsg(fd, m, n, flags, NULL);
}
static int send_batch(int fd, batch_msg *m, unsigned n, int flags)
{
    return sendmmsg(fd, m, n, flags);
}
#else
/* Elsewhere one datagram per call, through the same shapes. */
typedef struct batch_msg {
    struct msghdr msg_hdr;
    unsigned msg_len;
} batch_msg;
static int recv_batch(int fd, batch_msg *m, unsigned n, int flags)
{
    (void)n;
    ssize_t r = recvmsg(fd, &m[0].msg_hdr, flags);
    if (r < 0)
        return -1;
    m[0].msg_len = (unsigned)r;
    return 1;
}
static int send_batch(int fd, batch_msg *m, unsigned n, int flags)
{
    (void)n;
    ssize_t r = sendmsg(fd, &m[0].msg_hdr, flags);
    if (r < 0)
        return -1;
    m[0].msg_len = (unsigned)r;
    return 1;
}
#endif

typedef struct session {
    struct sockaddr_storage peer;
    socklen_t plen;
    int fd;   /* connected to the target */
    int held; /* counted in the per-source limits */
    int64_t started_ms, last_ms;
    uint64_t to_target, from_target;
} session;

typedef struct fwd_udp {
    int lfd;
    sk_transport t; /* of the listener: how peers are named */
    const sk_addr *target;
    sk__rcache *rcache; /* the target's addresses, looked up off this loop */
    const sk_forward_udp_opts *o;
    sk_forward_udp_stats *st;
    session *s;
    size_t n, cap;
    int idle_ms;
    int64_t last_refusal_ms;
    uint64_t refusals_unlogged;
    /* One batch of datagrams (recvmmsg/sendmmsg where the system has them). */
    uint8_t *bufs; /* UDP_MMSG * SK_DGRAM_MAX */
    struct sockaddr_storage peers[UDP_MMSG];
    struct iovec iov[UDP_MMSG];
    batch_msg msg[UDP_MMSG];
} fwd_udp;

static void logf_(fwd_udp *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(fwd_udp *u, const char *fmt, ...)
{
    if (!u->o->verbose || u->o->log == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    u->o->log(u->o->arg, SK_LOG_INFO, line);
}

/* A refused sender, logged at most once a second (a flood of datagrams
 * must not become a flood of lines), with the number left out. */
static void refused(fwd_udp *u, const char *name, const char *why)
{
    int64_t now = sk_now_ms();
    if (u->last_refusal_ms != 0 && now - u->last_refusal_ms < 1000) {
        u->refusals_unlogged++;
        return;
    }
    if (u->refusals_unlogged > 0)
        logf_(u, "refused %s: %s (and %llu more datagrams refused in the last second)", name, why,
              (unsigned long long)u->refusals_unlogged);
    else
        logf_(u, "refused %s: %s", name, why);
    u->last_refusal_ms = now;
    u->refusals_unlogged = 0;
}

static void end_session(fwd_udp *u, size_t i, const char *why)
{
    session *s = &u->s[i];
    char peer[SK_NAME_MAX];
    sk_sockaddr_format((struct sockaddr *)&s->peer, s->plen, u->t, peer, sizeof peer);
    logf_(u, "udp session %s closed: %llu datagrams to target, %llu from target, %.3f s, %s", peer,
          (unsigned long long)s->to_target, (unsigned long long)s->from_target,
          (double)(sk_now_ms() - s->started_ms) / 1000.0, why);
    close(s->fd);
    if (s->held && u->o->limits)
        sk_limits_release(u->o->limits, (struct sockaddr *)&s->peer, s->plen);
    u->s[i] = u->s[--u->n];
}

static session *find(fwd_udp *u, const struct sockaddr *peer, socklen_t plen)
{
    for (size_t i = 0; i < u->n; i++)
        if (u->s[i].plen == plen && memcmp(&u->s[i].peer, peer, plen) == 0)
            return &u->s[i];
    return NULL;
}

/* A new client: its own socket connected to the target (resolved now). */
static session *open_session(fwd_udp *u, const struct sockaddr *peer, socklen_t plen)
{
    char name[SK_NAME_MAX];
    sk_sockaddr_format(peer, plen, u->t, name, sizeof name);
    if (u->o->access && !sk_access_check(u->o->access, peer, plen)) {
        refused(u, name, "not allowed by the access list");
        return NULL; /* dropped before anything is done for it */
    }
    int held = 0;
    if (u->o->limits) {
        int r = sk_limits_acquire(u->o->limits, peer, plen, sk_now_ms(), SK_LIMITS_HOLD);
        if (r != SK_LIMIT_OK) {
            refused(u, name,
                    r == SK_LIMIT_COUNT ? "too many sessions from its source"
                                        : "too many new sessions from its source");
            return NULL;
        }
        held = 1;
    }
    if (u->n == u->cap) { /* full: the least recently active session goes */
        size_t old = 0;
        for (size_t i = 1; i < u->n; i++)
            if (u->s[i].last_ms < u->s[old].last_ms)
                old = i;
        end_session(u, old, "forgotten (session table full)");
    }
    sk_err err;
    sk_endpoint ep;
    int fd = sk__rcache_connect(u->rcache, 0, &ep, &err); /* no wait for DNS */
    if (fd < 0 || sk_set_nonblock(fd, 1) < 0) {
        logf_(u, "udp %s: target: %s", name, fd < 0 ? err.msg : strerror(errno));
        if (fd >= 0)
            close(fd);
        if (held)
            sk_limits_release(u->o->limits, peer, plen);
        return NULL;
    }
    session *s = &u->s[u->n++];
    memset(s, 0, sizeof *s);
    memcpy(&s->peer, peer, plen);
    s->plen = plen;
    s->fd = fd;
    s->held = held;
    s->started_ms = s->last_ms = sk_now_ms();
    if (u->st)
        u->st->sessions++;
    char tname[SK_NAME_MAX];
    sk_sockaddr_format((struct sockaddr *)&ep.sa, ep.len, u->target->transport, tname,
                       sizeof tname);
    logf_(u, "udp session %s -> %s", name, tname);
    return s;
}

/* Make the batch's headers ready for a receive of up to n datagrams. */
static void arm_batch(fwd_udp *u, unsigned n, int named)
{
    for (unsigned i = 0; i < n; i++) {
        u->iov[i] = (struct iovec){u->bufs + (size_t)i * SK_DGRAM_MAX, SK_DGRAM_MAX};
        u->msg[i].msg_hdr = (struct msghdr){.msg_iov = &u->iov[i], .msg_iovlen = 1};
        if (named) {
            u->msg[i].msg_hdr.msg_name = &u->peers[i];
            u->msg[i].msg_hdr.msg_namelen = sizeof u->peers[i];
        }
    }
}

/* One datagram from a client: to its session's socket. */
static void from_client(fwd_udp *u, const struct sockaddr *peer, socklen_t plen,
                        const uint8_t *data, size_t len)
{
    if (plen <= (socklen_t)sizeof(sa_family_t)) {
        if (u->st)
            u->st->dropped++; /* an unnamed Unix sender: no way to answer it */
        return;
    }
    session *s = find(u, peer, plen);
    if (s == NULL)
        s = open_session(u, peer, plen);
    if (s == NULL) {
        if (u->st)
            u->st->dropped++;
        return;
    }
    s->last_ms = sk_now_ms();
    ssize_t w;
    do
        w = send(s->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (u->st)
            u->st->dropped++; /* full, or the target said no (ICMP): UDP may lose it */
        return;
    }
    s->to_target++;
    if (u->st)
        u->st->to_target++;
}

/* Datagrams from clients, a batch per call. */
static void from_clients(fwd_udp *u)
{
    for (int got = 0; got < UDP_BATCH;) {
        arm_batch(u, UDP_MMSG, 1);
        int n = recv_batch(u->lfd, u->msg, UDP_MMSG, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN, or an error reported by an earlier send (ICMP): next time */
        }
        for (int i = 0; i < n; i++)
            from_client(u, (struct sockaddr *)&u->peers[i], u->msg[i].msg_hdr.msg_namelen,
                        u->bufs + (size_t)i * SK_DGRAM_MAX, u->msg[i].msg_len);
        got += n;
        if (n < UDP_MMSG)
            return;
    }
}

/* Datagrams from the target on a session: back to its client, a batch each way. */
static void from_target(fwd_udp *u, session *s)
{
    for (int got = 0; got < UDP_BATCH;) {
        arm_batch(u, UDP_MMSG, 0);
        int n = recv_batch(s->fd, u->msg, UDP_MMSG, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == ECONNREFUSED)
                continue; /* a refusal is about an earlier datagram: go on */
            return;
        }
        s->last_ms = sk_now_ms();
        for (int i = 0; i < n; i++) {
            u->iov[i].iov_len = u->msg[i].msg_len;
            u->msg[i].msg_hdr.msg_name = &s->peer;
            u->msg[i].msg_hdr.msg_namelen = s->plen;
        }
        for (int sent = 0; sent < n;) {
            int w = send_batch(u->lfd, u->msg + sent, (unsigned)(n - sent),
                               MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) { /* the client's side is full or gone: UDP may lose them */
                if (u->st)
                    u->st->dropped += (uint64_t)(n - sent);
                break;
            }
            sent += w;
            s->from_target += (uint64_t)w;
            if (u->st)
                u->st->from_target += (uint64_t)w;
        }
        got += n;
        if (n < UDP_MMSG)
            return;
    }
}

int sk_forward_udp(int listen_fd, const sk_addr *target, const sk_forward_udp_opts *o,
                   sk_forward_udp_stats *st, sk_err *err)
{
    sk_forward_udp_opts defaults = {.stop_fd = -1};
    if (o == NULL)
        o = &defaults;
    if (st)
        memset(st, 0, sizeof *st);
    if (sk_transport_is_stream(target->transport))
        return sk_err_usage(err, "relay: a datagram listener forwards to a datagram target (udp:// "
                                 "or unixgram:), not to a stream");
    struct sockaddr_storage me;
    socklen_t mlen = sizeof me;
    if (getsockname(listen_fd, (struct sockaddr *)&me, &mlen) < 0)
        return sk_errno(err, errno, "relay: the listening socket");
    fwd_udp *u = calloc(1, sizeof *u);
    if (u == NULL)
        return sk_errno(err, ENOMEM, "relay");
    u->lfd = listen_fd;
    u->t = me.ss_family == AF_UNIX ? SK_UNIXGRAM : SK_UDP;
    u->target = target;
    u->o = o;
    u->st = st;
    u->cap = o->max_sessions ? o->max_sessions : UDP_SESSIONS_DEFAULT;
    u->idle_ms = o->idle_timeout_ms > 0 ? o->idle_timeout_ms : UDP_IDLE_DEFAULT_MS;
    u->s = calloc(u->cap, sizeof *u->s);
    u->bufs = malloc((size_t)UDP_MMSG * SK_DGRAM_MAX);
    struct pollfd *p = calloc(u->cap + 2, sizeof *p);
    int rc = 0;
    if (u->s == NULL || p == NULL || u->bufs == NULL) {
        rc = sk_errno(err, ENOMEM, "relay: %zu sessions", u->cap);
        goto out;
    }
    u->rcache = sk__rcache_new(target, err);
    if (u->rcache == NULL) {
        rc = -1;
        goto out;
    }
    for (;;) {
        /* Close the sessions that went silent; sleep until the next one would. */
        int64_t now = sk_now_ms(), next = -1;
        for (size_t i = 0; i < u->n;) {
            int64_t at = u->s[i].last_ms + u->idle_ms;
            if (at <= now) {
                end_session(u, i, "idle");
                continue;
            }
            if (next < 0 || at < next)
                next = at;
            i++;
        }
        p[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
        p[1] = (struct pollfd){.fd = o->stop_fd, .events = POLLIN};
        size_t np = 2 + u->n;
        for (size_t i = 0; i < u->n; i++)
            p[2 + i] = (struct pollfd){.fd = u->s[i].fd, .events = POLLIN};
        int timeout = next < 0 ? -1 : (int)(next - now);
        int r = poll(p, np, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = sk_errno(err, errno, "relay: poll");
            break;
        }
        if (p[1].revents)
            break; /* stop */
        /* Sessions first (their slots move when one ends: walk backwards). */
        for (size_t i = u->n; i-- > 0;)
            if (p[2 + i].revents)
                from_target(u, &u->s[i]);
        if (p[0].revents & POLLNVAL) {
            rc = sk_errf(err, EBADF, "relay: the listening socket is not open");
            break;
        }
        if (p[0].revents & (POLLIN | POLLERR))
            from_clients(u); /* (a pending error is taken by the read) */
    }
out:
    while (u->n > 0)
        end_session(u, u->n - 1, "stopped");
    sk__rcache_free(u->rcache);
    free(p);
    free(u->s);
    free(u->bufs);
    free(u);
    return rc;
}
