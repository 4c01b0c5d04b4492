/*
 * access.c - access lists (--allow/--deny): one strict grammar, first match wins.
 *
 * The grammar is strict because a lenient one has bitten many servers:
 * "010.0.0.1" is 10.0.0.1 to some parsers and 8.0.0.1 to others (octal),
 * "1.2.3" is 1.2.0.3 to inet_aton, and "10.0.0.1/8" may mean the operator
 * thought of one host or of the whole block. All of those are refused with
 * the reason, never guessed. IPv4 is parsed by hand: inet_pton's IPv4 rules
 * differ between systems.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "sockit.h"

enum { R_V4 = 4, R_V6 = 6, R_UNIX = 1 };

typedef struct rule {
    uint8_t allow;
    uint8_t kind;   /* R_V4, R_V6, R_UNIX */
    uint8_t prefix; /* bits */
    uint8_t addr[16];
} rule;

struct sk_access {
    rule *r;
    size_t n, cap;
    int any_allow; /* unmatched peers are denied */
};

sk_access *sk_access_new(void)
{
    return calloc(1, sizeof(sk_access));
}

void sk_access_free(sk_access *a)
{
    if (a == NULL)
        return;
    free(a->r);
    free(a);
}

size_t sk_access_count(const sk_access *a)
{
    return a ? a->n : 0;
}

static int bad(sk_err *err, const char *spec, const char *why)
{
    return sk_err_usage(err, "bad address \"%s\": %s", spec, why);
}

/* Four decimal numbers 0-255 separated by dots, no leading zeros, nothing else. */
static int parse_v4(const char *s, size_t len, uint8_t out[4], const char *spec, sk_err *err)
{
    size_t i = 0;
    int part = 0;
    char why[128];
    while (1) {
        size_t start = i;
        unsigned v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 4)
            v = v * 10 + (unsigned)(s[i++] - '0');
        size_t nd = i - start;
        if (nd == 0)
            return bad(err, spec, "empty number in IPv4 address");
        if (part == 4)
            return bad(err, spec, "too many numbers for an IPv4 address (four needed)");
        if (nd > 3 || v > 255) {
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
            snprintf(why, sizeof why, "%.*s is out of range (0-255)", (int)(i - start), s + start);
            return bad(err, spec, why);
        }
        if (nd > 1 && s[start] == '0')
            return bad(err, spec, "leading zeros are ambiguous (octal to some parsers)");
        out[part++] = (uint8_t)v;
        if (i == len)
            break;
        if (s[i] != '.')
            return bad(err, spec, "not an IPv4 address");
        i++;
    }
    if (part < 4)
        return bad(err, spec, "incomplete IPv4 address (four numbers needed)");
    return 0;
}

/* A prefix length: decimal, no sign, no leading zeros, 0..max. */
static int parse_prefix(const char *s, int max, const char *spec, sk_err *err)
{
    char why[128];
    size_t n = strlen(s);
    if (n == 0)
        return bad(err, spec, "missing prefix length after /");
    if (strspn(s, "0123456789") != n || n > 3) {
        snprintf(why, sizeof why, "prefix length \"%s\" is not a number (0-%d)", s, max);
        return bad(err, spec, why);
    }
    if (n > 1 && s[0] == '0')
        return bad(err, spec, "leading zeros in the prefix length");
    int v = atoi(s);
    if (v > max) {
        snprintf(why, sizeof why, "prefix /%d out of range (0-%d)", v, max);
        return bad(err, spec, why);
    }
    return v;
}

static void mask(uint8_t *addr, int bytes, int prefix)
{
    for (int i = 0; i < bytes; i++) {
        int bits = prefix - i * 8;
        uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
        addr[i] &= m;
    }
}

/* A hostname-looking word: letters, digits, dots, hyphens, at least one letter. */
static int looks_like_name(const char *s)
{
    int letter = 0;
    for (; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
            letter = 1;
        else if (!((*s >= '0' && *s <= '9') || *s == '.' || *s == '-'))
            return 0;
    }
    return letter;
}

/* Parse spec into r (kind, addr, prefix). Returns 0 or -1 with a usage error. */
static int parse_spec(const char *spec, rule *r, sk_err *err)
{
    char why[160];
    size_t len = strlen(spec);
    if (len == 0)
        return bad(err, spec, "empty (an IPv4 or IPv6 address or CIDR, or unix)");
    if (strcmp(spec, "unix") == 0) {
        r->kind = R_UNIX;
        return 0;
    }
    if (len > 64)
        return bad(err, spec, "too long for an address");
    char text[80];
    memcpy(text, spec, len + 1);
    char *slash = strchr(text, '/');
    if (slash)
        *slash = '\0';
    const char *host = text;
    if (strchr(host, ':')) {
        if (host[0] == '[' || strchr(host, ']'))
            return bad(err, spec, "no brackets around an IPv6 address here");
        if (strchr(host, '%'))
            return bad(err, spec, "zone indexes (%) are not supported");
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return bad(err, spec, "not an IPv6 address");
        if (IN6_IS_ADDR_V4MAPPED(&a6))
            return bad(err, spec,
                       "an IPv4-mapped IPv6 address never matches (IPv4 clients are matched as "
                       "IPv4): write the IPv4 address");
        r->kind = R_V6;
        memcpy(r->addr, &a6, 16);
        r->prefix = 128;
    } else if (host[0] != '\0' && strspn(host, "0123456789.") == strlen(host)) {
        if (parse_v4(host, strlen(host), r->addr, spec, err) < 0)
            return -1;
        r->kind = R_V4;
        r->prefix = 32;
    } else if (host[0] == '\0') {
        return bad(err, spec, "missing address before /");
    } else if ((host[0] == '0' && (host[1] == 'x' || host[1] == 'X')) || strstr(host, ".0x") ||
               strstr(host, ".0X")) {
        return bad(err, spec, "hexadecimal numbers are ambiguous: write four decimal numbers");
    } else if (looks_like_name(host)) {
        return bad(err, spec, "host names are not resolved; give an address");
    } else {
        return bad(err, spec, "not an IPv4 or IPv6 address, a CIDR block, or unix");
    }
    if (slash) {
        int max = r->kind == R_V4 ? 32 : 128;
        int p = parse_prefix(slash + 1, max, spec, err);
        if (p < 0)
            return -1;
        int bytes = r->kind == R_V4 ? 4 : 16;
        uint8_t net[16];
        memcpy(net, r->addr, 16);
        mask(net, bytes, p);
        if (memcmp(net, r->addr, (size_t)bytes) != 0) {
            char ntext[INET6_ADDRSTRLEN];
            inet_ntop(r->kind == R_V4 ? AF_INET : AF_INET6, net, ntext, sizeof ntext);
            snprintf(why, sizeof why, "host bits set; did you mean %s/%d?", ntext, p);
            return bad(err, spec, why);
        }
        r->prefix = (uint8_t)p;
    }
    return 0;
}

static int push(sk_access *a, const rule *r, sk_err *err)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        rule *n = realloc(a->r, cap * sizeof *n);
        if (n == NULL)
            return sk_errno(err, ENOMEM, "access list");
        a->r = n;
        a->cap = cap;
    }
    a->r[a->n++] = *r;
    return 0;
}

int sk_access_add(sk_access *a, int allow, const char *spec, sk_err *err)
{
    rule r = {.allow = allow ? 1 : 0};
    if (spec == NULL)
        spec = "";
    if (parse_spec(spec, &r, err) < 0 || push(a, &r, err) < 0)
        return -1;
    if (allow)
        a->any_allow = 1;
    return 0;
}

int sk_access_add_file(sk_access *a, int allow, const char *path, sk_err *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int e = errno;
        sk_errno(err, e, "%s", path);
        if (err)
            err->usage = 1; /* the operator named a file that is not there */
        return -1;
    }
    size_t before = a->n;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned lineno = 0;
    int rc = 0;
    errno = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)got)) {
            rc = sk_err_usage(err, "%s:%u: a NUL byte (not a text file?)", path, lineno);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
            *--e = '\0';
        if (*s == '\0')
            continue;
        if (strpbrk(s, " \t")) {
            rc = sk_err_usage(err, "%s:%u: \"%s\": one address per line", path, lineno, s);
            break;
        }
        sk_err e1;
        if (sk_access_add(a, allow, s, &e1) < 0) {
            rc = e1.usage ? sk_err_usage(err, "%s:%u: %s", path, lineno, e1.msg)
                          : sk_errf(err, e1.code, "%s:%u: %s", path, lineno, e1.msg);
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        int e = errno ? errno : EIO;
        rc = sk_errno(err, e, "read %s", path);
        if (err && e == EISDIR)
            err->usage = 1; /* a directory named where a file belongs */
    }
    free(line);
    fclose(f);
    if (rc < 0) {
        a->n = before; /* all of the file or none of it */
        return -1;
    }
    if (allow)
        a->any_allow = 1;
    return 0;
}

/* The peer as a rule would see it: kind and 16 address bytes. 0 if unknown. */
static int peer_key(const struct sockaddr *sa, socklen_t len, uint8_t addr[16])
{
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return 0;
    if (sa->sa_family == AF_UNIX)
        return R_UNIX;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return R_V4;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) { /* an IPv4 client on a dual-stack socket */
            memcpy(addr, a6->s6_addr + 12, 4);
            return R_V4;
        }
        memcpy(addr, a6, 16);
        return R_V6;
    }
    return 0;
}

static int matches(const rule *r, int kind, const uint8_t *addr)
{
    if (r->kind != kind)
        return 0;
    if (kind == R_UNIX)
        return 1;
    int full = r->prefix / 8, rest = r->prefix % 8;
    if (memcmp(r->addr, addr, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (r->addr[full] & m) == (addr[full] & m);
}

int sk_access_check(const sk_access *a, const struct sockaddr *peer, socklen_t len)
{
    if (a == NULL || (a->n == 0 && !a->any_allow))
        return 1;
    uint8_t addr[16];
    int kind = peer_key(peer, len, addr);
    for (size_t i = 0; kind && i < a->n; i++)
        if (matches(&a->r[i], kind, addr))
            return a->r[i].allow;
    return !a->any_allow;
}
