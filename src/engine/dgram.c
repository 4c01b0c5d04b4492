/*
 * dgram.c - datagram services: receive, ask the service, send the reply.
 *
 * On Linux a batch of datagrams comes in with one recvmmsg() and the replies
 * go out with one sendmmsg(), so a busy UDP service makes two system calls
 * per batch instead of two per datagram. Elsewhere: recvfrom/sendto.
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "engine.h"

#ifdef __linux__
#define BATCH 16
#else
#define BATCH 1
#endif

struct sk_dgram_batch {
    uint8_t *in;  /* BATCH slots of SK_DGRAM_MAX */
    uint8_t *out; /* BATCH replies of SK_DGRAM_MAX */
    struct sockaddr_storage peer[BATCH];
#ifdef __linux__
    struct mmsghdr rmsg[BATCH], smsg[BATCH];
    struct iovec riov[BATCH], siov[BATCH];
#endif
};

sk_dgram_batch *sk__dgram_batch_new(void)
{
    sk_dgram_batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->in = malloc((size_t)BATCH * SK_DGRAM_MAX);
    b->out = malloc((size_t)BATCH * SK_DGRAM_MAX);
    if (b->in == NULL || b->out == NULL) {
        sk__dgram_batch_free(b);
        return NULL;
    }
    return b;
}

void sk__dgram_batch_free(sk_dgram_batch *b)
{
    if (b == NULL)
        return;
    free(b->in);
    free(b->out);
    free(b);
}

/* The old echo/chargen loop attack: a forged datagram from one UDP service's
 * port to another's makes them answer each other forever. Real clients use
 * ports above 1023; only our own port is allowed below that. */
static int peer_allowed(const sk_listener *l, const struct sockaddr *sa)
{
    unsigned port = 0, mine = 0;
    if (sa->sa_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    else if (sa->sa_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    else
        return 1;
    if (l->local.family == AF_INET)
        mine = ntohs(((const struct sockaddr_in *)&l->local.sa)->sin_port);
    else if (l->local.family == AF_INET6)
        mine = ntohs(((const struct sockaddr_in6 *)&l->local.sa)->sin6_port);
    return port >= 1024 || port == mine;
}

/* One datagram through the service. Returns the reply length, -1 for none, or
 * -2 when the sender was refused (access: not served, so --once goes on). */
static ssize_t handle(sk_server *s, const sk_listener *l, const uint8_t *in, size_t len,
                      const struct sockaddr *peer, socklen_t plen, uint8_t *reply)
{
    char name[SK_NAME_MAX];
    if (s->o.verbose)
        sk_sockaddr_format(peer, plen, l->transport, name, sizeof name);
    if (!peer_allowed(l, peer)) {
        if (s->o.verbose)
            sk_server_log(s, SK_LOG_INFO, "ignored datagram from privileged port: %s", name);
        return -1;
    }
    if (!sk__admit(s, peer, plen, l->transport)) /* access: --allow/--deny, --rate (admit.c) */
        return -2;
    sk_dgram d = {.server = s,
                  .state = s->svc_state,
                  .data = in,
                  .len = len,
                  .peer = peer,
                  .peerlen = plen,
                  .transport = l->transport,
                  .reply = reply,
                  .cap = SK_DGRAM_MAX};
    int answer = s->svc->on_datagram && s->svc->on_datagram(&d);
    size_t rlen = d.reply_len <= d.cap ? d.reply_len : d.cap;
    /* An unnamed Unix datagram sender cannot be answered. */
    if (answer && plen <= (socklen_t)sizeof(sa_family_t))
        answer = 0;
    if (s->o.verbose)
        sk_server_log(s, SK_LOG_INFO, "datagram from %s: %zu bytes in, %zu bytes out", name, len,
                      answer ? rlen : 0);
    return answer ? (ssize_t)rlen : -1;
}

#ifdef __linux__
int sk__serve_datagrams(sk_server *s, const sk_listener *l, int max, sk_dgram_batch *b)
{
    int handled = 0;
    while (handled < max) {
        unsigned want = (unsigned)(max - handled < BATCH ? max - handled : BATCH);
        if (s->o.once)
            want = 1; /* --once: exactly one datagram */
        for (unsigned i = 0; i < want; i++) {
            b->riov[i] = (struct iovec){.iov_base = b->in + (size_t)i * SK_DGRAM_MAX,
                                        .iov_len = SK_DGRAM_MAX};
            b->rmsg[i].msg_hdr = (struct msghdr){.msg_name = &b->peer[i],
                                                 .msg_namelen = sizeof b->peer[i],
                                                 .msg_iov = &b->riov[i],
                                                 .msg_iovlen = 1};
        }
        int n = recvmmsg(l->fd, b->rmsg, want, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* EAGAIN: done for now. Anything else (an ICMP error reported for an
             * earlier reply) concerns no datagram we hold: also done for now. */
            break;
        }
        if (n == 0)
            break;
        unsigned k = 0; /* replies to send */
        int stop = 0;
        for (int i = 0; i < n && !stop; i++) {
            uint8_t *reply = b->out + (size_t)k * SK_DGRAM_MAX;
            struct sockaddr *peer = (struct sockaddr *)&b->peer[i];
            socklen_t plen = b->rmsg[i].msg_hdr.msg_namelen;
            ssize_t r = handle(s, l, b->in + (size_t)i * SK_DGRAM_MAX, b->rmsg[i].msg_len, peer,
                               plen, reply);
            if (r >= 0) {
                b->siov[k] = (struct iovec){.iov_base = reply, .iov_len = (size_t)r};
                b->smsg[k].msg_hdr = (struct msghdr){
                    .msg_name = peer, .msg_namelen = plen, .msg_iov = &b->siov[k], .msg_iovlen = 1};
                k++;
            }
            handled++;
            stop = r != -2 && sk__count_served(s); /* access: -2 refused (admit.c) */
        }
        for (unsigned sent = 0; sent < k;) {
            int m = sendmmsg(l->fd, b->smsg + sent, k - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (m < 0 && errno == EINTR)
                continue;
            if (m <= 0) {
                /* A full send buffer or an unreachable peer: skip that reply, as
                 * the network may lose it. UDP promises no more. */
                sent++;
                continue;
            }
            sent += (unsigned)m;
        }
        if (stop || (unsigned)n < want)
            break; /* the queue is empty, or --once is done */
    }
    return handled;
}
#else
int sk__serve_datagrams(sk_server *s, const sk_listener *l, int max, sk_dgram_batch *b)
{
    int handled = 0;
    while (handled < max) {
        socklen_t plen = sizeof b->peer[0];
        ssize_t n = recvfrom(l->fd, b->in, SK_DGRAM_MAX, MSG_DONTWAIT,
                             (struct sockaddr *)&b->peer[0], &plen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        handled++;
        ssize_t r = handle(s, l, b->in, (size_t)n, (struct sockaddr *)&b->peer[0], plen, b->out);
        if (r >= 0) {
            ssize_t w;
            do
                w = sendto(l->fd, b->out, (size_t)r, MSG_DONTWAIT | MSG_NOSIGNAL,
                           (struct sockaddr *)&b->peer[0], plen);
            while (w < 0 && errno == EINTR);
        }
        if (r != -2 && sk__count_served(s)) /* access: -2 refused (admit.c) */
            break;
    }
    return handled;
}
#endif
