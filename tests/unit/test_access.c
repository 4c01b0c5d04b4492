/* test_access.c - unit tests for src/lib/access.c (the --allow/--deny grammar and
 * matching) and src/lib/limits.c (per-source counts, token bucket, bounded table). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sockit.h"

/* ---- peers ---- */

typedef struct peer {
    struct sockaddr_storage ss;
    socklen_t len;
} peer;

/* "1.2.3.4" (AF_INET), "::ffff:1.2.3.4" / "2001:db8::1" (AF_INET6), "unix". */
static peer P(const char *text)
{
    peer p;
    memset(&p, 0, sizeof p);
    if (strcmp(text, "unix") == 0) {
        struct sockaddr_un *u = (struct sockaddr_un *)&p.ss;
        u->sun_family = AF_UNIX;
        p.len = sizeof(sa_family_t); /* unnamed, as accept() reports it */
    } else if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&p.ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(40000);
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
        p.len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&p.ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(40000);
        assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
        p.len = sizeof *s4;
    }
    return p;
}

static int check(const sk_access *a, const char *who)
{
    peer p = P(who);
    return sk_access_check(a, (struct sockaddr *)&p.ss, p.len);
}

/* ---- the grammar ---- */

static const char *const valid[] = {
    "0.0.0.0/0",      "10.0.0.0/8", "127.0.0.1",  "127.0.0.1/32", "255.255.255.255",
    "192.168.1.0/24", "0.0.0.0",    "::1",        "::/0",         "2001:db8::/32",
    "fe80::/10",      "unix",       "1.2.3.4/30", "::",           "2001:db8:0:1::/64",
};

static const struct {
    const char *spec, *msg;
} invalid[] = {
    {"", "bad address \"\": empty (an IPv4 or IPv6 address or CIDR, or unix)"},
    {"1.2.3", "bad address \"1.2.3\": incomplete IPv4 address (four numbers needed)"},
    {"1", "bad address \"1\": incomplete IPv4 address (four numbers needed)"},
    {"010.0.0.1", "bad address \"010.0.0.1\": leading zeros are ambiguous (octal to some parsers)"},
    {"10.0.0.01", "bad address \"10.0.0.01\": leading zeros are ambiguous (octal to some parsers)"},
    {"10.0.0.1/8", "bad address \"10.0.0.1/8\": host bits set; did you mean 10.0.0.0/8?"},
    {"2001:db8::1/32",
     "bad address \"2001:db8::1/32\": host bits set; did you mean 2001:db8::/32?"},
    {"10.0.0.0/33", "bad address \"10.0.0.0/33\": prefix /33 out of range (0-32)"},
    {"::/129", "bad address \"::/129\": prefix /129 out of range (0-128)"},
    {"10.0.0.0/", "bad address \"10.0.0.0/\": missing prefix length after /"},
    {"10.0.0.0/08", "bad address \"10.0.0.0/08\": leading zeros in the prefix length"},
    {"10.0.0.0/-8", "bad address \"10.0.0.0/-8\": prefix length \"-8\" is not a number (0-32)"},
    {"256.0.0.1", "bad address \"256.0.0.1\": 256 is out of range (0-255)"},
    {"1.2.3.4.5", "bad address \"1.2.3.4.5\": too many numbers for an IPv4 address (four needed)"},
    {"1..3.4", "bad address \"1..3.4\": empty number in IPv4 address"},
    {"1.2.3.4.", "bad address \"1.2.3.4.\": empty number in IPv4 address"},
    {"example.com", "bad address \"example.com\": host names are not resolved; give an address"},
    {"localhost", "bad address \"localhost\": host names are not resolved; give an address"},
    {"0x7f.0.0.1",
     "bad address \"0x7f.0.0.1\": hexadecimal numbers are ambiguous: write four decimal numbers"},
    {" 1.2.3.4", "bad address \" 1.2.3.4\": not an IPv4 or IPv6 address, a CIDR block, or unix"},
    {"+1.2.3.4", "bad address \"+1.2.3.4\": not an IPv4 or IPv6 address, a CIDR block, or unix"},
    {"/8", "bad address \"/8\": missing address before /"},
    {"[::1]", "bad address \"[::1]\": no brackets around an IPv6 address here"},
    {"fe80::1%eth0", "bad address \"fe80::1%eth0\": zone indexes (%) are not supported"},
    {"1:2:3", "bad address \"1:2:3\": not an IPv6 address"},
    {"::ffff:10.0.0.1",
     "bad address \"::ffff:10.0.0.1\": an IPv4-mapped IPv6 address never matches (IPv4 "
     "clients are matched as IPv4): write the IPv4 address"},
    {"UNIX", "bad address \"UNIX\": host names are not resolved; give an address"},
};

static void test_grammar(void **state)
{
    (void)state;
    sk_access *a = sk_access_new();
    assert_non_null(a);
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        sk_err err = {0};
        if (sk_access_add(a, 0, valid[i], &err) != 0)
            fail_msg("\"%s\" refused: %s", valid[i], err.msg);
    }
    assert_int_equal(sk_access_count(a), sizeof valid / sizeof valid[0]);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        sk_err err = {0};
        assert_int_equal(sk_access_add(a, 1, invalid[i].spec, &err), -1);
        assert_int_equal(err.usage, 1);
        assert_string_equal(err.msg, invalid[i].msg);
    }
    /* Nothing was added by the failures, and no allow rule sneaked in. */
    assert_int_equal(sk_access_count(a), sizeof valid / sizeof valid[0]);
    sk_access_free(a);
}

/* ---- matching ---- */

static void test_empty_allows_all(void **state)
{
    (void)state;
    sk_access *a = sk_access_new();
    assert_int_equal(check(a, "1.2.3.4"), 1);
    assert_int_equal(check(a, "2001:db8::1"), 1);
    assert_int_equal(check(a, "unix"), 1);
    assert_int_equal(check(NULL, "1.2.3.4"), 1);
    sk_access_free(a);
}

static void test_v4_rules(void **state)
{
    (void)state;
    sk_access *a = sk_access_new();
    assert_int_equal(sk_access_add(a, 1, "127.0.0.2", NULL), 0);
    assert_int_equal(sk_access_add(a, 1, "10.1.0.0/16", NULL), 0);
    assert_int_equal(check(a, "127.0.0.2"), 1);
    assert_int_equal(check(a, "127.0.0.3"), 0); /* allow given: unmatched is denied */
    assert_int_equal(check(a, "10.1.255.255"), 1);
    assert_int_equal(check(a, "10.2.0.0"), 0);
    /* The same IPv4 clients through a dual-stack socket. */
    assert_int_equal(check(a, "::ffff:127.0.0.2"), 1);
    assert_int_equal(check(a, "::ffff:127.0.0.3"), 0);
    assert_int_equal(check(a, "::ffff:10.1.2.3"), 1);
    assert_int_equal(check(a, "::1"), 0);
    assert_int_equal(check(a, "unix"), 0);
    sk_access_free(a);
}

static void test_v6_rules_never_match_v4(void **state)
{
    (void)state;
    sk_access *a = sk_access_new();
    assert_int_equal(sk_access_add(a, 0, "::/0", NULL), 0);
    /* Only deny rules: unmatched peers are allowed. ::/0 is every IPv6 peer,
     * and no IPv4 peer, however it arrives. */
    assert_int_equal(check(a, "::1"), 0);
    assert_int_equal(check(a, "2001:db8::5"), 0);
    assert_int_equal(check(a, "1.2.3.4"), 1);
    assert_int_equal(check(a, "::ffff:1.2.3.4"), 1);
    assert_int_equal(check(a, "unix"), 1);
    sk_access_free(a);

    a = sk_access_new();
    assert_int_equal(sk_access_add(a, 0, "0.0.0.0/0", NULL), 0);
    assert_int_equal(check(a, "1.2.3.4"), 0);
    assert_int_equal(check(a, "::ffff:1.2.3.4"), 0); /* every IPv4 client */
    assert_int_equal(check(a, "::1"), 1);
    sk_access_free(a);

    a = sk_access_new();
    assert_int_equal(sk_access_add(a, 1, "2001:db8::/32", NULL), 0);
    assert_int_equal(sk_access_add(a, 1, "::1", NULL), 0);
    assert_int_equal(check(a, "2001:db8:ffff::1"), 1);
    assert_int_equal(check(a, "2001:db9::1"), 0);
    assert_int_equal(check(a, "::1"), 1);
    assert_int_equal(check(a, "::2"), 0);
    assert_int_equal(check(a, "127.0.0.1"), 0);
    sk_access_free(a);
}

static void test_first_match_wins(void **state)
{
    (void)state;
    sk_access *a = sk_access_new();
    assert_int_equal(sk_access_add(a, 1, "127.0.0.2", NULL), 0);
    assert_int_equal(sk_access_add(a, 0, "0.0.0.0/0", NULL), 0);
    assert_int_equal(check(a, "127.0.0.2"), 1);
    assert_int_equal(check(a, "127.0.0.3"), 0);
    assert_int_equal(check(a, "::1"), 0); /* an allow was given: unmatched denied */
    sk_access_free(a);

    a = sk_access_new(); /* the other order: the deny shadows the allow */
    assert_int_equal(sk_access_add(a, 0, "127.0.0.0/8", NULL), 0);
    assert_int_equal(sk_access_add(a, 1, "127.0.0.2", NULL), 0);
    assert_int_equal(sk_access_add(a, 1, "unix", NULL), 0);
    assert_int_equal(check(a, "127.0.0.2"), 0);
    assert_int_equal(check(a, "unix"), 1);
    sk_access_free(a);

    a = sk_access_new(); /* prefixes that do not end on a byte */
    assert_int_equal(sk_access_add(a, 1, "192.168.4.0/22", NULL), 0);
    assert_int_equal(check(a, "192.168.7.255"), 1);
    assert_int_equal(check(a, "192.168.8.0"), 0);
    assert_int_equal(check(a, "192.168.3.255"), 0);
    sk_access_free(a);
}

/* ---- files ---- */

static char *write_file(const char *text)
{
    char *path = strdup("/tmp/skit-access-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_files(void **state)
{
    (void)state;
    char *good = write_file("# office\n10.0.0.0/8   # the LAN\n\n  ::1\r\nunix\n");
    sk_access *a = sk_access_new();
    sk_err err = {0};
    assert_int_equal(sk_access_add_file(a, 1, good, &err), 0);
    assert_int_equal(sk_access_count(a), 3);
    assert_int_equal(check(a, "10.9.9.9"), 1);
    assert_int_equal(check(a, "::1"), 1);
    assert_int_equal(check(a, "unix"), 1);
    assert_int_equal(check(a, "11.0.0.1"), 0);

    char *bad = write_file("10.0.0.0/8\n# fine\n010.0.0.1\n");
    char want[512];
    snprintf(want, sizeof want,
             "%s:3: bad address \"010.0.0.1\": leading zeros are ambiguous (octal to some "
             "parsers)",
             bad);
    assert_int_equal(sk_access_add_file(a, 0, bad, &err), -1);
    assert_int_equal(err.usage, 1);
    assert_string_equal(err.msg, want);
    assert_int_equal(sk_access_count(a), 3); /* none of the bad file's rules */

    char *two = write_file("1.2.3.4 5.6.7.8\n");
    snprintf(want, sizeof want, "%s:1: \"1.2.3.4 5.6.7.8\": one address per line", two);
    assert_int_equal(sk_access_add_file(a, 0, two, &err), -1);
    assert_string_equal(err.msg, want);

    assert_int_equal(sk_access_add_file(a, 0, "/nonexistent/deny.txt", &err), -1);
    assert_int_equal(err.usage, 1);
    assert_string_equal(err.msg, "/nonexistent/deny.txt: No such file or directory");
    assert_int_equal(sk_access_add_file(a, 0, "/", &err), -1);
    assert_int_equal(err.usage, 1);
    assert_string_equal(err.msg, "read /: Is a directory");
    sk_access_free(a);

    /* An empty allow file still means "only these": nobody. */
    char *empty = write_file("# nobody yet\n");
    a = sk_access_new();
    assert_int_equal(sk_access_add_file(a, 1, empty, &err), 0);
    assert_int_equal(sk_access_count(a), 0);
    assert_int_equal(check(a, "127.0.0.1"), 0);
    sk_access_free(a);

    for (char *p[] = {good, bad, two, empty}, **q = p; q < p + 4; q++) {
        unlink(*q);
        free(*q);
    }
}

/* ---- limits ---- */

static int acquire(sk_limits *l, const char *who, int64_t now, unsigned flags)
{
    peer p = P(who);
    return sk_limits_acquire(l, (struct sockaddr *)&p.ss, p.len, now, flags);
}

static void release(sk_limits *l, const char *who)
{
    peer p = P(who);
    sk_limits_release(l, (struct sockaddr *)&p.ss, p.len);
}

static int held(sk_limits *l, const char *who)
{
    peer p = P(who);
    return sk_limits_held(l, (struct sockaddr *)&p.ss, p.len);
}

static void test_limits_count(void **state)
{
    (void)state;
    sk_limits *l = sk_limits_new(2, 0, 0, 0, NULL);
    assert_non_null(l);
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    /* An IPv4-mapped peer is the same source as its IPv4 address. */
    assert_int_equal(acquire(l, "::ffff:10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_COUNT);
    assert_int_equal(held(l, "10.0.0.1"), 2);
    /* Only that source is refused. */
    assert_int_equal(acquire(l, "10.0.0.2", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    /* A datagram is not a held connection: no count limit. */
    assert_int_equal(acquire(l, "10.0.0.1", 0, 0), SK_LIMIT_OK);
    release(l, "10.0.0.1");
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    release(l, "10.0.0.1");
    release(l, "10.0.0.1");
    release(l, "10.0.0.1"); /* one too many: harmless */
    assert_int_equal(held(l, "10.0.0.1"), 0);
    /* IPv6: one /64 is one source. */
    assert_int_equal(acquire(l, "2001:db8:1:2::1", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    assert_int_equal(acquire(l, "2001:db8:1:2:ffff::9", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    assert_int_equal(acquire(l, "2001:db8:1:2::77", 0, SK_LIMITS_HOLD), SK_LIMIT_COUNT);
    assert_int_equal(acquire(l, "2001:db8:1:3::1", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    /* Unix peers are not limited. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(acquire(l, "unix", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    sk_limits_free(l);
}

static void test_limits_rate(void **state)
{
    (void)state;
    /* 2 per second, burst 3, on an injected clock (ms). */
    sk_limits *l = sk_limits_new(0, 2, 3, 0, NULL);
    assert_non_null(l);
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(acquire(l, "10.0.0.1", t, SK_LIMITS_HOLD), SK_LIMIT_OK);
    assert_int_equal(acquire(l, "10.0.0.1", t, SK_LIMITS_HOLD), SK_LIMIT_RATE);
    assert_int_equal(acquire(l, "10.0.0.1", t, 0), SK_LIMIT_RATE); /* datagrams too */
    assert_int_equal(acquire(l, "10.0.0.2", t, SK_LIMITS_HOLD), SK_LIMIT_OK);
    /* 499 ms: still less than one token; 500 ms: one. */
    assert_int_equal(acquire(l, "10.0.0.1", t + 499, SK_LIMITS_HOLD), SK_LIMIT_RATE);
    assert_int_equal(acquire(l, "10.0.0.1", t + 500, SK_LIMITS_HOLD), SK_LIMIT_OK);
    assert_int_equal(acquire(l, "10.0.0.1", t + 500, SK_LIMITS_HOLD), SK_LIMIT_RATE);
    /* A long pause refills to the burst, not beyond. */
    t += 3600 * 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(acquire(l, "10.0.0.1", t, 0), SK_LIMIT_OK);
    assert_int_equal(acquire(l, "10.0.0.1", t, 0), SK_LIMIT_RATE);
    sk_limits_free(l);

    /* Default burst = R; refusal by count does not spend a token. */
    l = sk_limits_new(1, 2, 0, 0, NULL);
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_COUNT);
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_COUNT);
    release(l, "10.0.0.1");
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    release(l, "10.0.0.1");
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_RATE);
    sk_limits_free(l);

    sk_err err = {0};
    assert_null(sk_limits_new(-1, 0, 0, 0, &err));
    assert_int_equal(err.usage, 1);
}

static void test_limits_bounded_lru(void **state)
{
    (void)state;
    /* Room for 4 sources, rate 1/s, burst 1: a remembered source has no token
     * left; a forgotten one starts again with a full bucket. */
    sk_limits *l = sk_limits_new(0, 1, 1, 4, NULL);
    const char *src[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(acquire(l, src[i], 0, 0), SK_LIMIT_OK);
    assert_int_equal(sk_limits_sources(l), 4);
    /* 10.0.0.1 seen again (refused, but seen): now 10.0.0.2 is the least recent. */
    assert_int_equal(acquire(l, src[0], 0, 0), SK_LIMIT_RATE);
    assert_int_equal(acquire(l, src[4], 0, 0), SK_LIMIT_OK); /* evicts 10.0.0.2 */
    assert_int_equal(sk_limits_sources(l), 4);
    assert_int_equal(acquire(l, src[0], 0, 0), SK_LIMIT_RATE); /* remembered */
    assert_int_equal(acquire(l, src[2], 0, 0), SK_LIMIT_RATE); /* remembered */
    assert_int_equal(acquire(l, src[1], 0, 0), SK_LIMIT_OK);   /* forgotten: fresh */
    sk_limits_free(l);

    /* Many sources through a small table: bounded, and still correct. */
    l = sk_limits_new(1, 0, 0, 64, NULL);
    for (int i = 0; i < 10000; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(0x0a000000u + (unsigned)i)};
        assert_int_equal(sk_limits_acquire(l, (struct sockaddr *)&sa, sizeof sa, i, SK_LIMITS_HOLD),
                         SK_LIMIT_OK);
        assert_true(sk_limits_sources(l) <= 64);
        sk_limits_release(l, (struct sockaddr *)&sa, sizeof sa);
    }
    sk_limits_free(l);
}

static void test_limits_shared_across_fork(void **state)
{
    (void)state;
    /* The fork model: the parent accepts (acquire), the child closes (release). */
    sk_limits *l = sk_limits_new(1, 0, 0, 0, NULL);
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_COUNT);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        release(l, "10.0.0.1");
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(acquire(l, "10.0.0.1", 0, SK_LIMITS_HOLD), SK_LIMIT_OK);
    sk_limits_free(l);
}

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_empty_allows_all),
        cmocka_unit_test(test_v4_rules),
        cmocka_unit_test(test_v6_rules_never_match_v4),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_limits_count),
        cmocka_unit_test(test_limits_rate),
        cmocka_unit_test(test_limits_bounded_lru),
        cmocka_unit_test(test_limits_shared_across_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
