/* test_proxy_format.c - unit tests for sk_proxy_format (src/lib/proxy.c),
 * the PROXY header writer: every family of v1 and v2 written and read back by
 * sk_proxy_parse (the round trip), the exact v1 text, the fallbacks (UNKNOWN,
 * LOCAL) and a buffer too small. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockit.h"

static struct sockaddr_in v4(const char *a, unsigned port)
{
    struct sockaddr_in s;
    memset(&s, 0, sizeof s);
    s.sin_family = AF_INET;
    s.sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
    return s;
}

static struct sockaddr_in6 v6(const char *a, unsigned port)
{
    struct sockaddr_in6 s;
    memset(&s, 0, sizeof s);
    s.sin6_family = AF_INET6;
    s.sin6_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
    return s;
}

static socklen_t un(struct sockaddr_un *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->sun_family = AF_UNIX;
    snprintf(s->sun_path, sizeof s->sun_path, "%s", path);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

/* Write, parse back, check the length and that data after it is not taken. */
static void round_trip(int version, const struct sockaddr *src, socklen_t sl,
                       const struct sockaddr *dst, socklen_t dl, sk_proxy_info *pi)
{
    uint8_t buf[512];
    int n = sk_proxy_format(buf, sizeof buf, version, src, sl, dst, dl);
    assert_true(n > 0);
    assert_true(version == 1 ? n <= SK_PROXY_V1_MAX : n <= 16 + 216);
    memcpy(buf + n, "GET /", 5);
    assert_int_equal(sk_proxy_parse(buf, (size_t)n + 5, pi), n);
    assert_int_equal(pi->version, version);
    for (int k = 1; k < n; k++) /* every prefix asks for more */
        assert_int_equal(sk_proxy_parse(buf, (size_t)k, pi), 0);
    assert_int_equal(sk_proxy_parse(buf, (size_t)n, pi), n);
}

static void test_inet(void **state)
{
    (void)state;
    struct sockaddr_in s = v4("192.0.2.7", 40000), d = v4("127.0.0.1", 8080);
    for (int v = 1; v <= 2; v++) {
        sk_proxy_info pi;
        round_trip(v, (struct sockaddr *)&s, sizeof s, (struct sockaddr *)&d, sizeof d, &pi);
        assert_int_equal(pi.local, 0);
        assert_int_equal(pi.socktype, SOCK_STREAM);
        assert_int_equal(pi.src_len, sizeof(struct sockaddr_in));
        const struct sockaddr_in *ps = (const struct sockaddr_in *)&pi.src;
        const struct sockaddr_in *pd = (const struct sockaddr_in *)&pi.dst;
        assert_int_equal(ps->sin_family, AF_INET);
        assert_memory_equal(&ps->sin_addr, &s.sin_addr, 4);
        assert_memory_equal(&pd->sin_addr, &d.sin_addr, 4);
        assert_int_equal(ntohs(ps->sin_port), 40000);
        assert_int_equal(ntohs(pd->sin_port), 8080);
    }
    uint8_t buf[128];
    int n = sk_proxy_format(buf, sizeof buf, 1, (struct sockaddr *)&s, sizeof s,
                            (struct sockaddr *)&d, sizeof d);
    const char *want = "PROXY TCP4 192.0.2.7 127.0.0.1 40000 8080\r\n";
    assert_int_equal(n, (int)strlen(want));
    assert_memory_equal(buf, want, strlen(want));
    n = sk_proxy_format(buf, sizeof buf, 2, (struct sockaddr *)&s, sizeof s, (struct sockaddr *)&d,
                        sizeof d);
    assert_int_equal(n, 28);
    assert_int_equal(buf[12], 0x21); /* v2, PROXY */
    assert_int_equal(buf[13], 0x11); /* INET, STREAM */
}

static void test_inet6_and_mapped(void **state)
{
    (void)state;
    struct sockaddr_in6 s = v6("2001:db8::5", 1234), d = v6("::1", 443);
    for (int v = 1; v <= 2; v++) {
        sk_proxy_info pi;
        round_trip(v, (struct sockaddr *)&s, sizeof s, (struct sockaddr *)&d, sizeof d, &pi);
        const struct sockaddr_in6 *ps = (const struct sockaddr_in6 *)&pi.src;
        assert_int_equal(ps->sin6_family, AF_INET6);
        assert_memory_equal(&ps->sin6_addr, &s.sin6_addr, 16);
        assert_int_equal(ntohs(ps->sin6_port), 1234);
        assert_int_equal(ntohs(((const struct sockaddr_in6 *)&pi.dst)->sin6_port), 443);
    }
    /* A dual-stack socket's view of IPv4 peers: said as TCP4 / INET. */
    struct sockaddr_in6 ms = v6("::ffff:127.0.0.7", 5555), md = v6("::ffff:127.0.0.1", 80);
    uint8_t buf[128];
    int n = sk_proxy_format(buf, sizeof buf, 1, (struct sockaddr *)&ms, sizeof ms,
                            (struct sockaddr *)&md, sizeof md);
    const char *want = "PROXY TCP4 127.0.0.7 127.0.0.1 5555 80\r\n";
    assert_int_equal(n, (int)strlen(want));
    assert_memory_equal(buf, want, strlen(want));
    sk_proxy_info pi;
    round_trip(2, (struct sockaddr *)&ms, sizeof ms, (struct sockaddr *)&md, sizeof md, &pi);
    assert_int_equal(pi.src.ss_family, AF_INET);
}

static void test_unix(void **state)
{
    (void)state;
    struct sockaddr_un s, d;
    socklen_t sl = un(&s, "/run/client.sock"), dl = un(&d, "/run/sockit.sock");
    sk_proxy_info pi;
    round_trip(2, (struct sockaddr *)&s, sl, (struct sockaddr *)&d, dl, &pi);
    assert_int_equal(pi.local, 0);
    assert_int_equal(pi.src.ss_family, AF_UNIX);
    assert_string_equal(((struct sockaddr_un *)&pi.src)->sun_path, "/run/client.sock");
    assert_string_equal(((struct sockaddr_un *)&pi.dst)->sun_path, "/run/sockit.sock");
    /* v1 has no Unix family: UNKNOWN, the receiver keeps the real endpoints. */
    uint8_t buf[128];
    int n =
        sk_proxy_format(buf, sizeof buf, 1, (struct sockaddr *)&s, sl, (struct sockaddr *)&d, dl);
    assert_int_equal(n, 15);
    assert_memory_equal(buf, "PROXY UNKNOWN\r\n", 15);
    round_trip(1, (struct sockaddr *)&s, sl, (struct sockaddr *)&d, dl, &pi);
    assert_int_equal(pi.local, 1);
}

static void test_local_and_mixed(void **state)
{
    (void)state;
    struct sockaddr_in s = v4("10.0.0.1", 1);
    struct sockaddr_in6 d = v6("::1", 2);
    sk_proxy_info pi;
    /* Families differ: no honest PROXY line, so LOCAL / UNKNOWN. */
    round_trip(2, (struct sockaddr *)&s, sizeof s, (struct sockaddr *)&d, sizeof d, &pi);
    assert_int_equal(pi.local, 1);
    round_trip(1, (struct sockaddr *)&s, sizeof s, (struct sockaddr *)&d, sizeof d, &pi);
    assert_int_equal(pi.local, 1);
    /* No source: LOCAL, 16 bytes. */
    uint8_t buf[64];
    assert_int_equal(sk_proxy_format(buf, sizeof buf, 2, NULL, 0, NULL, 0), 16);
    assert_int_equal(buf[12], 0x20);
    assert_int_equal(buf[13], 0x00);
    round_trip(2, NULL, 0, NULL, 0, &pi);
    assert_int_equal(pi.local, 1);
}

static void test_errors(void **state)
{
    (void)state;
    struct sockaddr_in s = v4("192.0.2.7", 40000), d = v4("127.0.0.1", 8080);
    uint8_t buf[64];
    assert_int_equal(sk_proxy_format(buf, sizeof buf, 3, (struct sockaddr *)&s, sizeof s,
                                     (struct sockaddr *)&d, sizeof d),
                     -1);
    assert_int_equal(sk_proxy_format(buf, 27, 2, (struct sockaddr *)&s, sizeof s,
                                     (struct sockaddr *)&d, sizeof d),
                     -1);
    assert_int_equal(sk_proxy_format(buf, 20, 1, (struct sockaddr *)&s, sizeof s,
                                     (struct sockaddr *)&d, sizeof d),
                     -1);
    assert_int_equal(sk_proxy_format(buf, 14, 1, NULL, 0, NULL, 0), -1);
    assert_int_equal(sk_proxy_format(buf, 15, 1, NULL, 0, NULL, 0), 15); /* no NUL written */
}

int main(void)
{
    alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inet),   cmocka_unit_test(test_inet6_and_mapped),
        cmocka_unit_test(test_unix),   cmocka_unit_test(test_local_and_mixed),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
