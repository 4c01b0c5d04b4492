/* test_resolve.c - unit tests for src/lib/resolve.c: sk_resolve, sk_sockaddr_format/host_port. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockit.h"

static size_t resolve_ok(const char *text, int flags, sk_endpoint *out, size_t cap)
{
    sk_addr a;
    sk_err err = {0};
    size_t n = 99;
    if (sk_addr_parse(&a, text, &err) != 0)
        fail_msg("parse \"%s\": %s", text, err.msg);
    if (sk_resolve(&a, flags, out, cap, &n, &err) != 0)
        fail_msg("resolve \"%s\": %s", text, err.msg);
    assert_true(n <= cap);
    return n;
}

static const struct sockaddr_in *sin4(const sk_endpoint *e)
{
    return (const struct sockaddr_in *)&e->sa;
}

static const struct sockaddr_in6 *sin6(const sk_endpoint *e)
{
    return (const struct sockaddr_in6 *)&e->sa;
}

/* ---- sk_resolve: numeric hosts, client side */

static void test_resolve_ipv4(void **state)
{
    (void)state;
    sk_endpoint ep[SK_RESOLVE_MAX];
    assert_int_equal(resolve_ok("127.0.0.1:80", 0, ep, SK_RESOLVE_MAX), 1);
    assert_int_equal(ep[0].family, AF_INET);
    assert_int_equal(ep[0].socktype, SOCK_STREAM);
    assert_int_equal(ep[0].len, sizeof(struct sockaddr_in));
    assert_int_equal(sin4(&ep[0])->sin_family, AF_INET);
    assert_int_equal(sin4(&ep[0])->sin_port, htons(80));
    assert_int_equal(sin4(&ep[0])->sin_addr.s_addr, htonl(INADDR_LOOPBACK));

    assert_int_equal(resolve_ok("udp://127.0.0.1:53", 0, ep, SK_RESOLVE_MAX), 1);
    assert_int_equal(ep[0].socktype, SOCK_DGRAM);
    assert_int_equal(sin4(&ep[0])->sin_port, htons(53));
}

static void test_resolve_ipv6(void **state)
{
    (void)state;
    sk_endpoint ep[SK_RESOLVE_MAX];
    assert_int_equal(resolve_ok("[::1]:80", 0, ep, SK_RESOLVE_MAX), 1);
    assert_int_equal(ep[0].family, AF_INET6);
    assert_int_equal(ep[0].socktype, SOCK_STREAM);
    assert_int_equal(ep[0].len, sizeof(struct sockaddr_in6));
    assert_int_equal(sin6(&ep[0])->sin6_port, htons(80));
    assert_memory_equal(&sin6(&ep[0])->sin6_addr, &in6addr_loopback, sizeof(struct in6_addr));
}

static void test_resolve_localhost(void **state)
{
    (void)state;
    sk_endpoint ep[SK_RESOLVE_MAX];
    size_t n = resolve_ok("localhost:80", 0, ep, SK_RESOLVE_MAX);
    assert_true(n >= 1);
    int loopbacks = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ep[i].socktype, SOCK_STREAM);
        if (ep[i].family == AF_INET) {
            assert_int_equal(sin4(&ep[i])->sin_port, htons(80));
            loopbacks += (ntohl(sin4(&ep[i])->sin_addr.s_addr) >> 24) == 127;
        } else {
            assert_int_equal(ep[i].family, AF_INET6);
            assert_int_equal(sin6(&ep[i])->sin6_port, htons(80));
            loopbacks += IN6_IS_ADDR_LOOPBACK(&sin6(&ep[i])->sin6_addr);
        }
        for (size_t j = 0; j < i; j++) /* no duplicates */
            assert_false(ep[i].len == ep[j].len && memcmp(&ep[i].sa, &ep[j].sa, ep[i].len) == 0);
    }
    assert_true(loopbacks >= 1);
}

/* ---- sk_resolve: passive wildcard order and forced families */

static void test_resolve_passive_wildcard(void **state)
{
    (void)state;
    sk_endpoint ep[SK_RESOLVE_MAX];
    assert_int_equal(resolve_ok("8080", SK_PASSIVE, ep, SK_RESOLVE_MAX), 2);
    assert_int_equal(ep[0].family, AF_INET6);
    assert_int_equal(ep[0].len, sizeof(struct sockaddr_in6));
    assert_int_equal(sin6(&ep[0])->sin6_family, AF_INET6);
    assert_true(IN6_IS_ADDR_UNSPECIFIED(&sin6(&ep[0])->sin6_addr));
    assert_int_equal(sin6(&ep[0])->sin6_port, htons(8080));
    assert_int_equal(ep[1].family, AF_INET);
    assert_int_equal(ep[1].len, sizeof(struct sockaddr_in));
    assert_int_equal(sin4(&ep[1])->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(sin4(&ep[1])->sin_port, htons(8080));
    assert_int_equal(ep[0].socktype, SOCK_STREAM);

    /* cap 1: only the first (IPv6) */
    assert_int_equal(resolve_ok("udp://:9", SK_PASSIVE, ep, 1), 1);
    assert_int_equal(ep[0].family, AF_INET6);
    assert_int_equal(ep[0].socktype, SOCK_DGRAM);
}

static void test_resolve_passive_family(void **state)
{
    (void)state;
    sk_endpoint ep[SK_RESOLVE_MAX];
    assert_int_equal(resolve_ok("tcp4://:80", SK_PASSIVE, ep, SK_RESOLVE_MAX), 1);
    assert_int_equal(ep[0].family, AF_INET);
    assert_int_equal(sin4(&ep[0])->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(sin4(&ep[0])->sin_port, htons(80));

    assert_int_equal(resolve_ok("udp6://:7", SK_PASSIVE, ep, SK_RESOLVE_MAX), 1);
    assert_int_equal(ep[0].family, AF_INET6);
    assert_int_equal(ep[0].socktype, SOCK_DGRAM);
    assert_int_equal(sin6(&ep[0])->sin6_port, htons(7));

    /* a passive address with a host is that host only */
    assert_int_equal(resolve_ok("127.0.0.1:0", SK_PASSIVE, ep, SK_RESOLVE_MAX), 1);
    assert_int_equal(sin4(&ep[0])->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
}

/* ---- sk_resolve: Unix paths and abstract names */

static void test_resolve_unix(void **state)
{
    (void)state;
    sk_endpoint ep[2];
    assert_int_equal(resolve_ok("unix:/tmp/x", 0, ep, 2), 1);
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&ep[0].sa;
    assert_int_equal(ep[0].family, AF_UNIX);
    assert_int_equal(ep[0].socktype, SOCK_STREAM);
    assert_int_equal(sun->sun_family, AF_UNIX);
    assert_int_equal(ep[0].len, offsetof(struct sockaddr_un, sun_path) + strlen("/tmp/x") + 1);
    assert_string_equal(sun->sun_path, "/tmp/x");

    assert_int_equal(resolve_ok("unixgram:/tmp/y", 0, ep, 2), 1);
    assert_int_equal(ep[0].socktype, SOCK_DGRAM);

    assert_int_equal(resolve_ok("unix:@abc", SK_PASSIVE, ep, 2), 1);
    sun = (const struct sockaddr_un *)&ep[0].sa;
    assert_int_equal(sun->sun_path[0], '\0');
    assert_memory_equal(sun->sun_path + 1, "abc", 3);
    assert_int_equal(ep[0].len, offsetof(struct sockaddr_un, sun_path) + 1 + 3);
}

static void test_resolve_unix_longest(void **state)
{
    (void)state;
    char text[200], path[SK_UNIX_PATH_MAX];
    sk_endpoint ep[1];
    memset(path, 'q', SK_UNIX_PATH_MAX - 1);
    path[0] = '/';
    path[SK_UNIX_PATH_MAX - 1] = '\0';
    snprintf(text, sizeof text, "unix:%s", path);
    assert_int_equal(resolve_ok(text, 0, ep, 1), 1);
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&ep[0].sa;
    assert_int_equal(ep[0].len, sizeof(struct sockaddr_un));
    assert_string_equal(sun->sun_path, path);

    snprintf(text, sizeof text, "unix:@%s", path + 1); /* 106-byte abstract name */
    assert_int_equal(resolve_ok(text, 0, ep, 1), 1);
    assert_int_equal(ep[0].len, offsetof(struct sockaddr_un, sun_path) + 1 + 106);
}

/* ---- sk_resolve: failures */

static void test_resolve_unknown_host(void **state)
{
    (void)state;
    sk_addr a;
    sk_err err = {0};
    sk_endpoint ep[SK_RESOLVE_MAX];
    size_t n = 77;
    assert_int_equal(sk_addr_parse(&a, "nosuchhost.invalid:80", &err), 0);
    assert_int_equal(sk_resolve(&a, 0, ep, SK_RESOLVE_MAX, &n, &err), -1);
    assert_int_equal(n, 0);
    assert_int_equal(strncmp(err.msg, "resolve ", 8), 0);
    assert_non_null(strstr(err.msg, "resolve tcp://nosuchhost.invalid:80: "));
    assert_int_equal(err.usage, 0);
    assert_int_not_equal(err.code, 0);

    /* an IPv4 literal under a forced IPv6 transport resolves to nothing */
    memset(&err, 0, sizeof err);
    assert_int_equal(sk_addr_parse(&a, "tcp6://127.0.0.1:80", &err), 0);
    assert_int_equal(sk_resolve(&a, 0, ep, SK_RESOLVE_MAX, &n, &err), -1);
    assert_non_null(strstr(err.msg, "resolve tcp6://127.0.0.1:80: "));
    assert_int_equal(sk_resolve(&a, 0, ep, SK_RESOLVE_MAX, &n, NULL), -1);
}

/* ---- sk_sockaddr_format and sk_sockaddr_host_port */

static struct sockaddr_in mk4(const char *ip, unsigned port)
{
    struct sockaddr_in s;
    memset(&s, 0, sizeof s);
    s.sin_family = AF_INET;
    s.sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, ip, &s.sin_addr), 1);
    return s;
}

static struct sockaddr_in6 mk6(const char *ip, unsigned port)
{
    struct sockaddr_in6 s;
    memset(&s, 0, sizeof s);
    s.sin6_family = AF_INET6;
    s.sin6_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET6, ip, &s.sin6_addr), 1);
    return s;
}

static socklen_t mkun(struct sockaddr_un *s, const char *path, size_t len, int abstract)
{
    memset(s, 0, sizeof *s);
    s->sun_family = AF_UNIX;
    memcpy(s->sun_path + (abstract ? 1 : 0), path, len);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1); /* NUL before or after */
}

static void test_sockaddr_format_inet(void **state)
{
    (void)state;
    char buf[SK_NAME_MAX];
    struct sockaddr_in s4 = mk4("127.0.0.1", 80);
    struct sockaddr_in6 s6 = mk6("::1", 7);
    struct sockaddr_in6 m6 = mk6("::ffff:1.2.3.4", 5);

    assert_ptr_equal(sk_sockaddr_format((struct sockaddr *)&s4, sizeof s4, SK_TCP, buf, sizeof buf),
                     buf);
    assert_string_equal(buf, "tcp://127.0.0.1:80");
    sk_sockaddr_format((struct sockaddr *)&s6, sizeof s6, SK_UDP, buf, sizeof buf);
    assert_string_equal(buf, "udp://[::1]:7");
    sk_sockaddr_format((struct sockaddr *)&m6, sizeof m6, SK_TCP, buf, sizeof buf);
    assert_string_equal(buf, "tcp://1.2.3.4:5");
    s6 = mk6("::", 0);
    sk_sockaddr_format((struct sockaddr *)&s6, sizeof s6, SK_TCP, buf, sizeof buf);
    assert_string_equal(buf, "tcp://[::]:0");
    s4 = mk4("0.0.0.0", 65535);
    sk_sockaddr_format((struct sockaddr *)&s4, sizeof s4, SK_UDP, buf, sizeof buf);
    assert_string_equal(buf, "udp://0.0.0.0:65535");

    /* truncated, still terminated */
    char small[10];
    sk_sockaddr_format((struct sockaddr *)&m6, sizeof m6, SK_TCP, small, sizeof small);
    assert_string_equal(small, "tcp://1.2");
}

static void test_sockaddr_format_unix(void **state)
{
    (void)state;
    char buf[SK_NAME_MAX];
    struct sockaddr_un su;
    socklen_t len;

    len = mkun(&su, "/run/x.sock", strlen("/run/x.sock"), 0);
    sk_sockaddr_format((struct sockaddr *)&su, len, SK_UNIX, buf, sizeof buf);
    assert_string_equal(buf, "unix:/run/x.sock");

    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + 4);
    mkun(&su, "name", 4, 1);
    sk_sockaddr_format((struct sockaddr *)&su, len, SK_UNIX, buf, sizeof buf);
    assert_string_equal(buf, "unix:@name");
    sk_sockaddr_format((struct sockaddr *)&su, len, SK_UNIXGRAM, buf, sizeof buf);
    assert_string_equal(buf, "unixgram:@name");

    /* unnamed: only the family (what getpeername gives for an unbound client) */
    sk_sockaddr_format((struct sockaddr *)&su, sizeof(sa_family_t), SK_UNIX, buf, sizeof buf);
    assert_string_equal(buf, "unix:");
    sk_sockaddr_format((struct sockaddr *)&su, 0, SK_UNIXGRAM, buf, sizeof buf);
    assert_string_equal(buf, "unixgram:");
    sk_sockaddr_format(NULL, 0, SK_UNIX, buf, sizeof buf);
    assert_string_equal(buf, "unix:");

    /* abstract name with unprintable bytes: shown as '?' */
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + 3);
    mkun(&su, "a\nb", 3, 1);
    sk_sockaddr_format((struct sockaddr *)&su, len, SK_UNIX, buf, sizeof buf);
    assert_string_equal(buf, "unix:@a?b");

    /* a path filling all of sun_path, without a NUL */
    memset(&su, 0, sizeof su);
    su.sun_family = AF_UNIX;
    memset(su.sun_path, 'z', sizeof su.sun_path);
    su.sun_path[0] = '/';
    sk_sockaddr_format((struct sockaddr *)&su, sizeof su, SK_UNIX, buf, sizeof buf);
    assert_int_equal(strlen(buf), 5 + sizeof su.sun_path);
    assert_int_equal(strncmp(buf, "unix:/zzz", 9), 0);
}

static void test_sockaddr_host_port(void **state)
{
    (void)state;
    char host[SK_NAME_MAX];
    unsigned port = 12345;
    struct sockaddr_in s4 = mk4("127.0.0.1", 40000);
    struct sockaddr_in6 s6 = mk6("::1", 443);
    struct sockaddr_in6 m6 = mk6("::ffff:10.0.0.1", 5);
    struct sockaddr_un su;

    sk_sockaddr_host_port((struct sockaddr *)&s4, sizeof s4, host, sizeof host, &port);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 40000);
    sk_sockaddr_host_port((struct sockaddr *)&s6, sizeof s6, host, sizeof host, &port);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 443);
    sk_sockaddr_host_port((struct sockaddr *)&m6, sizeof m6, host, sizeof host, &port);
    assert_string_equal(host, "10.0.0.1");
    assert_int_equal(port, 5);

    port = 9;
    socklen_t len = mkun(&su, "/tmp/s", 6, 0);
    sk_sockaddr_host_port((struct sockaddr *)&su, len, host, sizeof host, &port);
    assert_string_equal(host, "/tmp/s");
    assert_int_equal(port, 0);

    port = 9;
    sk_sockaddr_host_port((struct sockaddr *)&su, sizeof(sa_family_t), host, sizeof host, &port);
    assert_string_equal(host, "unnamed");
    assert_int_equal(port, 0);

    /* small buffers truncate; cap 0 writes nothing */
    char small[5];
    sk_sockaddr_host_port((struct sockaddr *)&s4, sizeof s4, small, sizeof small, &port);
    assert_int_equal(strnlen(small, sizeof small) < sizeof small, 1);
    small[0] = 'K';
    sk_sockaddr_host_port((struct sockaddr *)&s4, sizeof s4, small, 0, &port);
    assert_int_equal(small[0], 'K');
    assert_int_equal(port, 0);
}

/* The stdio-free path (IPv4, IPv6 without a scope) answers what getnameinfo
 * with NI_NUMERICHOST|NI_NUMERICSERV answers, byte for byte. */
static void expect_as_getnameinfo(const struct sockaddr *sa, socklen_t len)
{
    char want[NI_MAXHOST], serv[NI_MAXSERV], host[SK_NAME_MAX];
    unsigned port = 7;
    assert_int_equal(
        getnameinfo(sa, len, want, sizeof want, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV),
        0);
    sk_sockaddr_host_port(sa, len, host, sizeof host, &port);
    assert_string_equal(host, want);
    assert_int_equal(port, (unsigned)atoi(serv));
}

static void test_sockaddr_host_port_as_getnameinfo(void **state)
{
    (void)state;
    static const char *const v4[] = {"0.0.0.0",     "1.2.3.4",      "9.10.99.100",
                                     "10.0.0.255",  "127.0.0.1",    "172.16.254.1",
                                     "192.168.1.1", "200.19.9.250", "255.255.255.255"};
    static const unsigned ports[] = {0, 1, 9, 10, 99, 100, 999, 1000, 40000, 65535};
    for (size_t i = 0; i < sizeof v4 / sizeof v4[0]; i++)
        for (size_t j = 0; j < sizeof ports / sizeof ports[0]; j++) {
            struct sockaddr_in s4 = mk4(v4[i], ports[j]);
            expect_as_getnameinfo((struct sockaddr *)&s4, sizeof s4);
        }
    for (unsigned b = 0; b < 256; b++) { /* every octet value, in every position */
        struct sockaddr_in s4 = mk4("0.0.0.0", b);
        unsigned char *o = (unsigned char *)&s4.sin_addr.s_addr;
        o[b % 4] = (unsigned char)b;
        o[(b + 1) % 4] = (unsigned char)(255 - b);
        expect_as_getnameinfo((struct sockaddr *)&s4, sizeof s4);
    }
    static const char *const v6[] = {
        "::",         "::1",        "2001:db8::1", "fe80::1",    "::1.2.3.4",
        "1:0:0:1::1", "1::2:0:0:3", "ffff::",      "::fffe:0:1", "64:ff9b::1.2.3.4"};
    for (size_t i = 0; i < sizeof v6 / sizeof v6[0]; i++) {
        struct sockaddr_in6 s6 = mk6(v6[i], 51717);
        expect_as_getnameinfo((struct sockaddr *)&s6, sizeof s6);
    }
}

/* ---- resolve then format: the text comes back */

static void test_resolve_format_round_trip(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"127.0.0.1:80", "tcp://127.0.0.1:80"},
        {"udp://[::1]:7", "udp://[::1]:7"},
        {"tcp://[::ffff:1.2.3.4]:5", "tcp://1.2.3.4:5"},
        {"unix:/tmp/sock", "unix:/tmp/sock"},
        {"unixgram:@abc", "unixgram:@abc"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sk_endpoint ep[SK_RESOLVE_MAX];
        char buf[SK_NAME_MAX];
        sk_addr a;
        assert_int_equal(resolve_ok(cases[i][0], 0, ep, SK_RESOLVE_MAX), 1);
        assert_int_equal(sk_addr_parse(&a, cases[i][0], NULL), 0);
        sk_sockaddr_format((struct sockaddr *)&ep[0].sa, ep[0].len, a.transport, buf, sizeof buf);
        assert_string_equal(buf, cases[i][1]);
    }
}

static void test_resolve_scope_id(void **state)
{
    (void)state;
    unsigned idx = if_nametoindex("lo");
    if (idx == 0)
        skip();
    sk_endpoint ep[SK_RESOLVE_MAX];
    char buf[SK_NAME_MAX];
    assert_int_equal(resolve_ok("[fe80::1%lo]:80", 0, ep, SK_RESOLVE_MAX), 1);
    assert_int_equal(ep[0].family, AF_INET6);
    assert_int_equal(sin6(&ep[0])->sin6_scope_id, idx);
    sk_sockaddr_format((struct sockaddr *)&ep[0].sa, ep[0].len, SK_TCP, buf, sizeof buf);
    assert_string_equal(buf, "tcp://[fe80::1%lo]:80");
}

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_ipv4),
        cmocka_unit_test(test_resolve_ipv6),
        cmocka_unit_test(test_resolve_localhost),
        cmocka_unit_test(test_resolve_passive_wildcard),
        cmocka_unit_test(test_resolve_passive_family),
        cmocka_unit_test(test_resolve_unix),
        cmocka_unit_test(test_resolve_unix_longest),
        cmocka_unit_test(test_resolve_unknown_host),
        cmocka_unit_test(test_sockaddr_format_inet),
        cmocka_unit_test(test_sockaddr_format_unix),
        cmocka_unit_test(test_sockaddr_host_port),
        cmocka_unit_test(test_sockaddr_host_port_as_getnameinfo),
        cmocka_unit_test(test_resolve_format_round_trip),
        cmocka_unit_test(test_resolve_scope_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
