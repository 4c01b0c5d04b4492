/*
 * resolve.c - from a parsed sk_addr to concrete socket addresses
 * (getaddrinfo, or a sockaddr_un), and from socket addresses back to text
 * (getnameinfo).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "sockit.h"

static int resolve_unix(const sk_addr *a, sk_endpoint *out, size_t cap, size_t *n)
{
    if (cap == 0)
        return 0;
    memset(out, 0, sizeof *out);
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->sa;
    sun->sun_family = AF_UNIX;
    if (a->abstract) {
        sun->sun_path[0] = '\0';
        memcpy(sun->sun_path + 1, a->path, a->path_len);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + a->path_len);
    } else {
        memcpy(sun->sun_path, a->path, a->path_len + 1);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + a->path_len + 1);
    }
    out->family = AF_UNIX;
    out->socktype = a->transport == SK_UNIX ? SOCK_STREAM : SOCK_DGRAM;
    *n = 1;
    return 0;
}

static int same_endpoint(const sk_endpoint *x, const struct addrinfo *ai)
{
    return x->len == ai->ai_addrlen && memcmp(&x->sa, ai->ai_addr, ai->ai_addrlen) == 0;
}

int sk_resolve(const sk_addr *a, int flags, sk_endpoint *out, size_t cap, size_t *n, sk_err *err)
{
    char name[SK_NAME_MAX + SK_HOST_MAX];
    *n = 0;
    if (a->inherit) {
        char w[SK_HOST_MAX + 8];
        return sk_err_usage(err, "%s is a socket handed to a server, not an address to connect to",
                            sk_addr_format(a, w, sizeof w));
    }
    if (a->transport == SK_UNIX || a->transport == SK_UNIXGRAM)
        return resolve_unix(a, out, cap, n);

    int passive = (flags & SK_PASSIVE) != 0;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = a->family;
    hints.ai_socktype = a->transport == SK_UDP ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    const char *host = a->host[0] ? a->host : NULL;
    int family_order[2] = {AF_INET6, AF_INET};

    if (passive && host == NULL) {
        /* Wildcard server: IPv6 any (dual stack) first, IPv4 any second; sk_listen
         * skips the IPv4 one when the IPv6 socket also took IPv4. getaddrinfo's own
         * order for AI_PASSIVE differs between libcs, so build the list here. */
        for (int i = 0; i < 2 && *n < cap; i++) {
            int fam = family_order[i];
            if (a->family != AF_UNSPEC && a->family != fam)
                continue;
            sk_endpoint *e = &out[(*n)++];
            memset(e, 0, sizeof *e);
            e->family = fam;
            e->socktype = hints.ai_socktype;
            unsigned port = 0;
            sscanf(a->port, "%u", &port);
            if (fam == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&e->sa;
                s6->sin6_family = AF_INET6;
                s6->sin6_addr = in6addr_any;
                s6->sin6_port = htons((uint16_t)port);
                e->len = sizeof *s6;
            } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&e->sa;
                s4->sin_family = AF_INET;
                s4->sin_addr.s_addr = htonl(INADDR_ANY);
                s4->sin_port = htons((uint16_t)port);
                e->len = sizeof *s4;
            }
        }
        return 0;
    }

    int rc = getaddrinfo(host, a->port, &hints, &res);
    if (rc != 0) {
        int code = rc == EAI_SYSTEM ? errno : ENOENT;
        return sk_errf(err, code, "resolve %s: %s", sk_addr_format(a, name, sizeof name),
                       rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    }
    for (struct addrinfo *ai = res; ai != NULL && *n < cap; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof out->sa)
            continue;
        int dup = 0;
        for (size_t i = 0; i < *n; i++)
            dup |= same_endpoint(&out[i], ai);
        if (dup)
            continue;
        sk_endpoint *e = &out[(*n)++];
        memset(e, 0, sizeof *e);
        memcpy(&e->sa, ai->ai_addr, ai->ai_addrlen);
        e->len = ai->ai_addrlen;
        e->family = ai->ai_family;
        e->socktype = ai->ai_socktype;
    }
    freeaddrinfo(res);
    if (*n == 0)
        return sk_errf(err, ENOENT, "resolve %s: no usable address",
                       sk_addr_format(a, name, sizeof name));
    return 0;
}

/* IPv4-mapped IPv6 (::ffff:1.2.3.4), as a dual-stack server sees IPv4 peers. */
static int v4mapped(const struct sockaddr *sa, struct sockaddr_in *out)
{
    if (sa->sa_family != AF_INET6)
        return 0;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return 0;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = s6->sin6_port;
    memcpy(&out->sin_addr, s6->sin6_addr.s6_addr + 12, 4);
    return 1;
}

/* IPv4 as inet_ntop (and so getnameinfo's NI_NUMERICHOST) writes it, without
 * stdio: a report line per read names its peer, and glibc's path there is
 * sprintf. buf holds at least INET_ADDRSTRLEN; returns the length. */
static size_t ipv4_text(const struct in_addr *a, char *buf)
{
    const unsigned char *b = (const unsigned char *)&a->s_addr;
    size_t o = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            buf[o++] = (char)('0' + v / 100);
        if (v >= 10)
            buf[o++] = (char)('0' + v / 10 % 10);
        buf[o++] = (char)('0' + v % 10);
        if (i < 3)
            buf[o++] = '.';
    }
    buf[o] = '\0';
    return o;
}

/* The common case of sk_sockaddr_host_port without getnameinfo and sscanf:
 * an IPv4 address, or an IPv6 one with no scope (whose name getnameinfo
 * would look up). Returns 0 where the general path must answer. */
static int host_port_fast(const struct sockaddr *sa, socklen_t len, char *host, size_t cap,
                          unsigned *port)
{
    char text[INET6_ADDRSTRLEN];
    size_t n;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        n = ipv4_text(&s4->sin_addr, text);
        *port = ntohs(s4->sin_port);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6) &&
               ((const struct sockaddr_in6 *)sa)->sin6_scope_id == 0) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof text) == NULL)
            return 0;
        n = strlen(text);
        *port = ntohs(s6->sin6_port);
    } else {
        return 0;
    }
    if (n >= cap) { /* getnameinfo's overflow: let it say so */
        *port = 0;
        return 0;
    }
    memcpy(host, text, n + 1);
    return 1;
}

void sk_sockaddr_host_port(const struct sockaddr *sa, socklen_t len, char *host, size_t cap,
                           unsigned *port)
{
    struct sockaddr_in mapped;
    *port = 0;
    if (cap == 0)
        return;
    host[0] = '\0';
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t)) {
        snprintf(host, cap, "unnamed");
        return;
    }
    if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
        size_t plen = len - offsetof(struct sockaddr_un, sun_path);
        if (len <= offsetof(struct sockaddr_un, sun_path) || plen == 0) {
            snprintf(host, cap, "unnamed");
        } else if (sun->sun_path[0] == '\0') {
            /* Abstract: the name may hold any bytes; show printable ones. */
            size_t o = 0;
            if (o + 1 < cap)
                host[o++] = '@';
            for (size_t i = 1; i < plen && o + 1 < cap; i++) {
                unsigned char c = (unsigned char)sun->sun_path[i];
                host[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
            }
            host[o] = '\0';
        } else {
            snprintf(host, cap, "%.*s", (int)strnlen(sun->sun_path, plen), sun->sun_path);
        }
        return;
    }
    if (v4mapped(sa, &mapped)) {
        sa = (const struct sockaddr *)&mapped;
        len = sizeof mapped;
    }
    if (host_port_fast(sa, len, host, cap, port))
        return;
    char serv[16];
    if (getnameinfo(sa, len, host, (socklen_t)cap, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(host, cap, "?");
        return;
    }
    unsigned p = 0;
    sscanf(serv, "%u", &p);
    *port = p;
}

char *sk_sockaddr_format(const struct sockaddr *sa, socklen_t len, sk_transport t, char *buf,
                         size_t cap)
{
    char host[SK_NAME_MAX];
    unsigned port;
    sk_sockaddr_host_port(sa, len, host, sizeof host, &port);
    if (t == SK_UNIX || t == SK_UNIXGRAM) {
        const char *h = strcmp(host, "unnamed") == 0 ? "" : host;
        snprintf(buf, cap, "%s:%s", sk_transport_name(t), h);
    } else if (strchr(host, ':') != NULL) {
        snprintf(buf, cap, "%s://[%s]:%u", sk_transport_name(t), host, port);
    } else {
        snprintf(buf, cap, "%s://%s:%u", sk_transport_name(t), host, port);
    }
    return buf;
}
