/*
 * admit.c - who may connect: the access list and the per-source limits,
 * checked once per accepted connection (before a byte is read or written) and
 * once per datagram (before the service sees it).
 *
 * The engine calls three things, each from one place:
 *   sk__admit          acceptor.c sk__accept (streams), dgram.c handle (datagrams),
 *                      deploy.c (inetd); on a PROXY listener it checks the real
 *                      peer against --proxy-from, and sk__admit_checks runs
 *                      once the header is in (conn_proxy.c)
 *   sk__admit_release  conn.c sk__conn_free
 *   sk__admit_needs_peer model_uring.c: whether a connection's peer must be
 *                      known at accept or may be asked for later
 *   sk__admit_init/fini server.c sk_server_new / sk_server_free
 */
#include <stdatomic.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/un.h>

#include "engine.h"

int sk__admit_init(sk_server *s, sk_err *err)
{
    s->limits = NULL;
    if (s->o.max_per_source <= 0 && s->o.rate <= 0)
        return 0;
    /* Created before any model forks, so every process shares the table. */
    s->limits = sk_limits_new(s->o.max_per_source, s->o.rate, s->o.burst, 0, err);
    return s->limits ? 0 : -1;
}

void sk__admit_fini(sk_server *s)
{
    if (s->is_child)
        return; /* the region is the parent's to unmap (children just exit) */
    sk_limits_free(s->limits);
    s->limits = NULL;
}

enum { WHY_ACCESS, WHY_COUNT, WHY_RATE, WHY_PROXY, WHY_N };

static const char *const why_text[WHY_N] = {
    "not allowed by the access list",
    "too many connections from this source (--max-per-source)",
    "too many new connections from this source (--rate)",
    "not a trusted PROXY protocol sender (--proxy-from)",
};

/* A flood of refusals must not become a flood of log lines: at most one line
 * per second per reason, with the number left unsaid since the last one. */
static void log_refusal(sk_server *s, int why, const struct sockaddr *peer, socklen_t len,
                        sk_transport t)
{
    static _Atomic int64_t last_said[WHY_N];
    static atomic_long unsaid[WHY_N];
    if (!s->o.verbose)
        return;
    int64_t now = sk_now_ms(), last = atomic_load(&last_said[why]);
    if (now - last < 1000 || !atomic_compare_exchange_strong(&last_said[why], &last, now)) {
        atomic_fetch_add(&unsaid[why], 1);
        return;
    }
    long more = atomic_exchange(&unsaid[why], 0);
    char name[SK_NAME_MAX];
    sk_sockaddr_format(peer, len, t, name, sizeof name);
    if (more > 0)
        sk_server_log(s, SK_LOG_INFO, "refused %s: %s (and %ld more since the last message)", name,
                      why_text[why], more);
    else
        sk_server_log(s, SK_LOG_INFO, "refused %s: %s", name, why_text[why]);
}

/* The default --proxy-from: a sender on this machine. */
static int is_local(const struct sockaddr *peer, socklen_t len)
{
    if (len < (socklen_t)sizeof(sa_family_t) || peer->sa_family == AF_UNIX)
        return 1; /* a Unix stream peer (unnamed ones come with no address) */
    if (peer->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
        return (ntohl(((const struct sockaddr_in *)peer)->sin_addr.s_addr) >> 24) == 127;
    if (peer->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            return a->s6_addr[12] == 127;
        return IN6_IS_ADDR_LOOPBACK(a);
    }
    return 0;
}

int sk__proxy_trusted(sk_server *s, const struct sockaddr *peer, socklen_t len, sk_transport t)
{
    struct sockaddr_un unix_peer;
    if (t == SK_UNIX && len < (socklen_t)sizeof(sa_family_t)) {
        memset(&unix_peer, 0, sizeof unix_peer); /* "unix" in a list matches it */
        unix_peer.sun_family = AF_UNIX;
        peer = (const struct sockaddr *)&unix_peer;
        len = sizeof(sa_family_t);
    }
    /* Acquire: SIGHUP may swap the list (sk_server_set_proxy_from). */
    const sk_access *from = __atomic_load_n(&s->o.proxy_from, __ATOMIC_ACQUIRE);
    int ok = from ? sk_access_check(from, peer, len) : is_local(peer, len);
    if (!ok)
        log_refusal(s, WHY_PROXY, peer, len, t);
    return ok;
}

int sk__admit(sk_server *s, const struct sockaddr *peer, socklen_t len, sk_transport t)
{
    /* A PROXY listener: the peer is the proxy. Only whether it may speak for
     * clients is checked now; the checks below wait for the address its
     * header carries (sk__admit_checks from conn_proxy.c). */
    if (s->o.proxy_protocol && sk_transport_is_stream(t))
        return sk__proxy_trusted(s, peer, len, t);
    return sk__admit_checks(s, peer, len, t);
}

int sk__admit_needs_peer(sk_server *s)
{
    return s->o.proxy_protocol || s->limits != NULL ||
           __atomic_load_n(&s->o.access, __ATOMIC_ACQUIRE) != NULL;
}

int sk__admit_checks(sk_server *s, const struct sockaddr *peer, socklen_t len, sk_transport t)
{
    /* An acquire load: SIGHUP may swap the list (sk_server_set_access, deploy.c). */
    const sk_access *access = __atomic_load_n(&s->o.access, __ATOMIC_ACQUIRE);
    if (access == NULL && s->limits == NULL)
        return 1;
    struct sockaddr_un unix_peer;
    if (t == SK_UNIX || t == SK_UNIXGRAM) {
        /* An unnamed Unix peer may come with no address at all: still "unix". */
        if (len < (socklen_t)sizeof(sa_family_t)) {
            memset(&unix_peer, 0, sizeof unix_peer);
            unix_peer.sun_family = AF_UNIX;
            peer = (const struct sockaddr *)&unix_peer;
            len = sizeof(sa_family_t);
        }
    }
    if (access && !sk_access_check(access, peer, len)) {
        log_refusal(s, WHY_ACCESS, peer, len, t);
        return 0;
    }
    if (s->limits) {
        unsigned flags = sk_transport_is_stream(t) ? SK_LIMITS_HOLD : 0;
        int r = sk_limits_acquire(s->limits, peer, len, sk_now_ms(), flags);
        if (r != SK_LIMIT_OK) {
            log_refusal(s, r == SK_LIMIT_COUNT ? WHY_COUNT : WHY_RATE, peer, len, t);
            return 0;
        }
    }
    return 1;
}

void sk__admit_release(sk_server *s, const struct sockaddr *peer, socklen_t len, sk_transport t)
{
    if (s->limits && sk_transport_is_stream(t))
        sk_limits_release(s->limits, peer, len);
}
