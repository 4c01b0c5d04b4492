/*
 * addr.c - the address syntax: parse words into sk_addr, and format back.
 *
 * Parsing does no I/O except one getservbyname() for a service-name port
 * ("http"), which is turned into its number here so that everything after
 * parsing deals only with numbers. Every error names the whole word and the
 * part that was wrong.
 */
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sockit.h"
#include "activate.h"

struct scheme {
    const char *name;
    sk_transport transport;
    int family;
};

static const struct scheme schemes[] = {
    {"tcp", SK_TCP, AF_UNSPEC}, {"udp", SK_UDP, AF_UNSPEC}, {"tcp4", SK_TCP, AF_INET},
    {"tcp6", SK_TCP, AF_INET6}, {"udp4", SK_UDP, AF_INET},  {"udp6", SK_UDP, AF_INET6},
};

#define BAD(...) sk_err_usage(err, __VA_ARGS__)

int sk_transport_is_stream(sk_transport t)
{
    return t == SK_TCP || t == SK_UNIX;
}

const char *sk_transport_name(sk_transport t)
{
    switch (t) {
    case SK_TCP: return "tcp";
    case SK_UDP: return "udp";
    case SK_UNIX: return "unix";
    case SK_UNIXGRAM: return "unixgram";
    }
    return "?";
}

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Validate PORT (a number or a service name) and store it as a number. */
static int parse_port(sk_addr *a, const char *text, const char *port, sk_err *err)
{
    if (*port == '\0')
        return BAD("bad address \"%s\": missing port", text);
    if (all_digits(port)) {
        /* Range check without overflow: at most 5 digits after leading zeros. */
        const char *p = port;
        while (p[0] == '0' && p[1] != '\0')
            p++;
        unsigned long v = 0;
        if (strlen(p) > 5)
            return BAD("bad address \"%s\": port out of range (0-65535)", text);
        for (; *p; p++)
            v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535)
            return BAD("bad address \"%s\": port out of range (0-65535)", text);
        snprintf(a->port, sizeof a->port, "%lu", v);
        return 0;
    }
    for (const char *p = port; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return BAD("bad address \"%s\": bad port \"%s\"", text, port);
    if (strlen(port) >= SK_PORT_MAX)
        return BAD("bad address \"%s\": bad port \"%s\"", text, port);
    const char *proto = a->transport == SK_UDP ? "udp" : "tcp";
    struct servent *se = getservbyname(port, proto);
    if (se == NULL)
        return BAD("bad address \"%s\": unknown port or service \"%s\"", text, port);
    snprintf(a->port, sizeof a->port, "%u", (unsigned)ntohs((uint16_t)se->s_port));
    return 0;
}

static int valid_host(const char *h, int bracketed)
{
    for (; *h; h++) {
        unsigned char c = (unsigned char)*h;
        if (isalnum(c) || c == '-' || c == '.' || c == '_')
            continue;
        if (bracketed && (c == ':' || c == '%'))
            continue;
        return 0;
    }
    return 1;
}

/* HOST:PORT, [V6]:PORT, :PORT, or (when bare_port_ok) PORT alone. */
static int parse_inet(sk_addr *a, const char *text, const char *rest, int bare_port_ok, sk_err *err)
{
    const char *port;
    size_t hostlen;
    const char *host = rest;
    int bracketed = 0;

    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        if (close == NULL)
            return BAD("bad address \"%s\": missing ']' after IPv6 address", text);
        host = rest + 1;
        hostlen = (size_t)(close - host);
        bracketed = 1;
        if (close[1] == '\0')
            return BAD("bad address \"%s\": missing port after ']'", text);
        if (close[1] != ':')
            return BAD("bad address \"%s\": expected ':' after ']'", text);
        port = close + 2;
        if (hostlen == 0)
            return BAD("bad address \"%s\": empty IPv6 address", text);
    } else {
        const char *colon = strrchr(rest, ':');
        if (colon == NULL) {
            if (bare_port_ok || all_digits(rest)) {
                hostlen = 0;
                port = rest;
            } else {
                return BAD("bad address \"%s\": missing port (HOST:PORT)", text);
            }
        } else {
            if (memchr(rest, ':', (size_t)(colon - rest)) != NULL)
                return BAD("bad address \"%s\": IPv6 address must be in brackets, "
                           "as [::1]:PORT",
                           text);
            hostlen = (size_t)(colon - rest);
            port = colon + 1;
        }
    }
    if (hostlen >= sizeof a->host)
        return BAD("bad address \"%s\": host name too long", text);
    memcpy(a->host, host, hostlen);
    a->host[hostlen] = '\0';
    if (!valid_host(a->host, bracketed))
        return BAD("bad address \"%s\": bad host \"%s\"", text, a->host);
    if (bracketed && a->family == AF_INET)
        return BAD("bad address \"%s\": IPv6 address with an IPv4-only transport", text);
    return parse_port(a, text, port, err);
}

static int parse_unix(sk_addr *a, const char *text, const char *rest, sk_err *err)
{
    a->family = AF_UNIX;
    if (*rest == '\0')
        return BAD("bad address \"%s\": missing socket path", text);
    if (*rest == '@') {
        a->abstract = 1;
        rest++;
        if (*rest == '\0')
            return BAD("bad address \"%s\": missing abstract socket name after '@'", text);
    }
    size_t len = strlen(rest);
    /* The abstract name follows a leading NUL, so it has the same 107 bytes. */
    if (len > SK_UNIX_PATH_MAX - 1)
        return BAD("bad address \"%s\": socket path too long (%zu bytes, at most %d)", text, len,
                   SK_UNIX_PATH_MAX - 1);
    memcpy(a->path, rest, len + 1);
    a->path_len = len;
    return 0;
}

/* fd:N, sd:NAME, sd: - sockets handed to us (activate.c). */
static int parse_inherited(sk_addr *a, const char *text, sk_err *err)
{
    if (text[0] == 'f') {
        const char *p = text + 3;
        if (!all_digits(p) || strlen(p) > 6)
            return BAD("bad address \"%s\": expected fd:N, N a descriptor number", text);
        a->inherit = SK_INHERIT_FD;
        a->fd = atoi(p);
        return sk__inherited_type(a->fd, text, &a->transport, err);
    }
    const char *name = text + 3;
    if (strlen(name) >= sizeof a->host)
        return BAD("bad address \"%s\": socket name too long", text);
    for (const char *p = name; *p; p++)
        if (*p == ':')
            return BAD("bad address \"%s\": a socket name has no ':'", text);
    a->inherit = SK_INHERIT_SD;
    snprintf(a->host, sizeof a->host, "%s", name);
    int fds[SK_SD_MAX];
    int n = sk__sd_fds(name, fds, SK_SD_MAX, err);
    if (n < 0)
        return -1;
    /* The address's transport is the first socket's; each listener has its own. */
    return sk__inherited_type(fds[0], text, &a->transport, err);
}

int sk_addr_parse(sk_addr *a, const char *text, sk_err *err)
{
    memset(a, 0, sizeof *a);
    a->transport = SK_TCP;
    a->family = AF_UNSPEC;
    if (text == NULL || *text == '\0')
        return BAD("bad address \"\": empty");
    for (const char *p = text; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return BAD("bad address \"%s\": contains white space or control characters", text);

    if (strncmp(text, "fd:", 3) == 0 || strncmp(text, "sd:", 3) == 0)
        return parse_inherited(a, text, err);
    if (strncmp(text, "unix:", 5) == 0) {
        a->transport = SK_UNIX;
        return parse_unix(a, text, text + 5, err);
    }
    if (strncmp(text, "unixgram:", 9) == 0) {
        a->transport = SK_UNIXGRAM;
        return parse_unix(a, text, text + 9, err);
    }
    const char *sep = strstr(text, "://");
    if (sep != NULL) {
        size_t n = (size_t)(sep - text);
        for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
            if (strlen(schemes[i].name) == n && strncmp(text, schemes[i].name, n) == 0) {
                a->transport = schemes[i].transport;
                a->family = schemes[i].family;
                return parse_inet(a, text, sep + 3, 0, err);
            }
        }
        return BAD("bad address \"%s\": unknown transport \"%.*s\" (tcp, udp, tcp4, tcp6, udp4, "
                   "udp6, unix:, unixgram:)",
                   text, (int)(n > 32 ? 32 : n), text);
    }
    return parse_inet(a, text, text, 1, err);
}

int sk_addr_parse_host_port(sk_addr *a, const char *host, const char *port, sk_err *err)
{
    char text[SK_HOST_MAX + SK_PORT_MAX + 4];
    memset(a, 0, sizeof *a);
    a->transport = SK_TCP;
    a->family = AF_UNSPEC;
    snprintf(text, sizeof text, "%s %s", host, port);
    if (*host == '\0')
        return BAD("bad address \"%s\": empty host", text);
    size_t hl = strlen(host);
    int bracketed = host[0] == '[' && hl > 2 && host[hl - 1] == ']';
    if (bracketed) {
        host++;
        hl -= 2;
    }
    if (hl >= sizeof a->host)
        return BAD("bad address \"%s\": host name too long", text);
    memcpy(a->host, host, hl);
    a->host[hl] = '\0';
    /* Two words leave no ambiguity, so a bare IPv6 literal is fine here. */
    if (!valid_host(a->host, 1))
        return BAD("bad address \"%s\": bad host \"%s\"", text, a->host);
    return parse_port(a, text, port, err);
}

char *sk_addr_format(const sk_addr *a, char *buf, size_t cap)
{
    if (a->inherit == SK_INHERIT_FD) {
        snprintf(buf, cap, "fd:%d", a->fd);
        return buf;
    }
    if (a->inherit == SK_INHERIT_SD) {
        snprintf(buf, cap, "sd:%s", a->host);
        return buf;
    }
    if (a->transport == SK_UNIX || a->transport == SK_UNIXGRAM) {
        snprintf(buf, cap, "%s:%s%s", sk_transport_name(a->transport), a->abstract ? "@" : "",
                 a->path);
        return buf;
    }
    const char *scheme = sk_transport_name(a->transport);
    const char *fam = a->family == AF_INET ? "4" : a->family == AF_INET6 ? "6" : "";
    int v6 = strchr(a->host, ':') != NULL;
    snprintf(buf, cap, "%s%s://%s%s%s:%s", scheme, fam, v6 ? "[" : "", a->host, v6 ? "]" : "",
             a->port);
    return buf;
}
