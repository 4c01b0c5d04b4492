/*
 * dgram.c - datagram services: receive, ask the service, send the reply.
 *
 * On Linux a batch of datagrams comes in with one recvmmsg() and the replies
 * go out with one sendmmsg(), so a busy UDP service makes two system calls
 * per batch instead of two per datagram; replies in a row to the same peer
 * leave as one UDP_SEGMENT (GSO) message (the kernel cuts it up: one trip
 * down the stack instead of one per reply), and the socket takes coalesced
 * receives (UDP_GRO), which are split here into their datagrams.
 * Elsewhere: recvfrom/sendto.
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
#include <netinet/udp.h> /* UDP_SEGMENT, UDP_GRO */
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#endif

#include "engine.h"

#ifdef __linux__
#define BATCH 16
#else
#define BATCH 1
#endif

/* Replies gathered before they are sent: one per datagram of a batch; a
 * coalesced (GRO) message may hold more, then they leave in several sends. */
#define OUT_SLOTS BATCH

struct sk_dgram_batch {
    uint8_t *in;  /* BATCH slots of SK_DGRAM_MAX */
    uint8_t *out; /* OUT_SLOTS replies of SK_DGRAM_MAX */
    struct sockaddr_storage peer[BATCH];
#ifdef __linux__
    struct mmsghdr rmsg[BATCH], smsg[OUT_SLOTS];
    struct iovec riov[BATCH], siov[OUT_SLOTS];
    /* UDP_GRO's segment size in, UDP_SEGMENT's out (one per run) */
    _Alignas(struct cmsghdr) char rctl[BATCH][CMSG_SPACE(sizeof(int))];
    _Alignas(struct cmsghdr) char sctl[OUT_SLOTS][CMSG_SPACE(sizeof(uint16_t))];
#endif
};

sk_dgram_batch *sk__dgram_batch_new(void)
{
    sk_dgram_batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->in = malloc((size_t)BATCH * SK_DGRAM_MAX);
    b->out = malloc((size_t)OUT_SLOTS * SK_DGRAM_MAX);
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
/* Linux: replies to the same peer go out as one UDP_SEGMENT (GSO) message
 * where the kernel has it; a kernel or device that refuses it turns it off
 * for the process (then one message per reply, as before). */
static atomic_int gso_off;

/* The same peer: an IPv4 or IPv6 address and port compared directly (the
 * common case, and cheaper than memcmp of the whole sockaddr). */
static int same_peer(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b,
                     socklen_t blen)
{
    if (alen != blen || a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return memcmp(a, b, (size_t)alen) == 0;
}

size_t sk__dgram_runs(const size_t *len, const struct sockaddr *const *peer, const socklen_t *plen,
                      size_t n, size_t *run)
{
    size_t nruns = 0;
    for (size_t i = 0; i < n;) {
        size_t k = 1, bytes = len[i];
        /* Same peer, same length (the segment size); the last may be
         * shorter; no empty segment; within one UDP datagram's limits. */
        while (len[i] > 0 && len[i] <= SK_GSO_SEG_MAX && i + k < n && k < SK_GSO_MAX_SEGS &&
               len[i + k] > 0 && len[i + k] <= len[i] && bytes + len[i + k] <= SK_GSO_MAX_BYTES &&
               same_peer(peer[i + k], plen[i + k], peer[i], plen[i])) {
            bytes += len[i + k];
            k++;
            if (len[i + k - 1] < len[i])
                break; /* a shorter one ends the run */
        }
        run[nruns++] = k;
        i += k;
    }
    return nruns;
}

/* Send one reply on its own (a GSO run the kernel refused, taken apart). */
static void send_one(int fd, struct msghdr *h, struct iovec *iov)
{
    struct msghdr m = {
        .msg_name = h->msg_name, .msg_namelen = h->msg_namelen, .msg_iov = iov, .msg_iovlen = 1};
    while (sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
}

/* Send the k replies gathered in b (siov, peers in smsg), in runs. */
static void send_replies(const sk_listener *l, sk_dgram_batch *b, unsigned k)
{
    size_t len[OUT_SLOTS], run[OUT_SLOTS];
    const struct sockaddr *peer[OUT_SLOTS];
    socklen_t plen[OUT_SLOTS];
    for (unsigned i = 0; i < k; i++) {
        len[i] = b->siov[i].iov_len;
        peer[i] = b->smsg[i].msg_hdr.msg_name;
        plen[i] = b->smsg[i].msg_hdr.msg_namelen;
    }
    size_t nruns = atomic_load_explicit(&gso_off, memory_order_relaxed) || l->transport != SK_UDP
                       ? k
                       : sk__dgram_runs(len, peer, plen, k, run);
    if (nruns == k)
        for (unsigned i = 0; i < k; i++)
            run[i] = 1;
    /* The runs become the messages, at the front of smsg. */
    struct mmsghdr msg[OUT_SLOTS];
    for (size_t r = 0, i = 0; r < nruns; i += run[r], r++) {
        msg[r].msg_hdr = (struct msghdr){.msg_name = (void *)peer[i],
                                         .msg_namelen = plen[i],
                                         .msg_iov = &b->siov[i],
                                         .msg_iovlen = run[r]};
        if (run[r] > 1) {
            struct cmsghdr *cm = (struct cmsghdr *)b->sctl[r];
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = (uint16_t)len[i];
            memcpy(CMSG_DATA(cm), &seg, sizeof seg);
            msg[r].msg_hdr.msg_control = cm;
            msg[r].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        }
    }
    for (size_t sent = 0; sent < nruns;) {
        int m = sendmmsg(l->fd, msg + sent, (unsigned)(nruns - sent), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0) {
            struct msghdr *h = &msg[sent].msg_hdr;
            if (h->msg_iovlen > 1 && errno != EAGAIN && errno != EWOULDBLOCK &&
                errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH) {
                /* GSO refused (an old kernel, a device without it): no more of
                 * it; these go one by one. */
                atomic_store_explicit(&gso_off, 1, memory_order_relaxed);
                for (size_t j = 0; j < h->msg_iovlen; j++)
                    send_one(l->fd, h, &h->msg_iov[j]);
            }
            /* Otherwise a full send buffer or an unreachable peer: skip that
             * reply, as the network may lose it. UDP promises no more. */
            sent++;
            continue;
        }
        sent += (unsigned)m;
    }
}

/* The segment size of a coalesced (UDP_GRO) message, or 0. */
static size_t gro_size(const struct msghdr *h)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm != NULL;
         cm = CMSG_NXTHDR((struct msghdr *)h, cm))
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
            int seg;
            memcpy(&seg, CMSG_DATA(cm), sizeof seg);
            return seg > 0 ? (size_t)seg : 0;
        }
    return 0;
}

void sk__dgram_listener_setup(const sk_listener *l)
{
    if (l->transport != SK_UDP)
        return;
    /* Coalesced receives: fewer, larger messages from the kernel, taken
     * apart below. Best effort: without it, one message per datagram. */
    int on = 1;
    (void)setsockopt(l->fd, SOL_UDP, UDP_GRO, &on, sizeof on);
}

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
                                                 .msg_iovlen = 1,
                                                 .msg_control = b->rctl[i],
                                                 .msg_controllen = sizeof b->rctl[i]};
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
            struct sockaddr *peer = (struct sockaddr *)&b->peer[i];
            socklen_t plen = b->rmsg[i].msg_hdr.msg_namelen;
            const uint8_t *in = b->in + (size_t)i * SK_DGRAM_MAX;
            size_t total = b->rmsg[i].msg_len, seg = gro_size(&b->rmsg[i].msg_hdr);
            if (seg == 0 || seg > total)
                seg = total;
            /* One message, or several datagrams the kernel coalesced (GRO). */
            for (size_t off = 0; !stop && (off < total || (total == 0 && off == 0));) {
                size_t len = total - off < seg ? total - off : seg;
                if (k == OUT_SLOTS) {
                    send_replies(l, b, k);
                    k = 0;
                }
                uint8_t *reply = b->out + (size_t)k * SK_DGRAM_MAX;
                ssize_t r = handle(s, l, in + off, len, peer, plen, reply);
                if (r >= 0) {
                    b->siov[k] = (struct iovec){.iov_base = reply, .iov_len = (size_t)r};
                    b->smsg[k].msg_hdr = (struct msghdr){.msg_name = peer, .msg_namelen = plen};
                    k++;
                }
                handled++;
                stop = r != -2 && sk__count_served(s); /* access: -2 refused (admit.c) */
                off += len;
                if (len == 0)
                    break;
            }
        }
        if (k > 0)
            send_replies(l, b, k);
        if (stop || (unsigned)n < want)
            break; /* the queue is empty, or --once is done */
    }
    return handled;
}
#else
void sk__dgram_listener_setup(const sk_listener *l)
{
    (void)l;
}

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
