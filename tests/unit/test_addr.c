/* test_addr.c - unit tests for src/lib/addr.c: the address syntax, parse and format. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockit.h"

static void parse_ok(sk_addr *a, const char *text)
{
    sk_err err = {0};
    int rc = sk_addr_parse(a, text, &err);
    if (rc != 0)
        fail_msg("sk_addr_parse(\"%s\") failed: %s", text, err.msg);
}

static void check_inet(const char *text, sk_transport t, int family, const char *host,
                       const char *port)
{
    sk_addr a;
    parse_ok(&a, text);
    assert_int_equal(a.transport, t);
    assert_int_equal(a.family, family);
    assert_string_equal(a.host, host);
    assert_string_equal(a.port, port);
    assert_string_equal(a.path, "");
    assert_int_equal(a.path_len, 0);
    assert_int_equal(a.abstract, 0);
}

/* ---- PORT alone: numbers, service names, leading zeros */

static void test_port_only(void **state)
{
    (void)state;
    check_inet("8080", SK_TCP, AF_UNSPEC, "", "8080");
    check_inet("0", SK_TCP, AF_UNSPEC, "", "0");
    check_inet("65535", SK_TCP, AF_UNSPEC, "", "65535");
    check_inet("http", SK_TCP, AF_UNSPEC, "", "80");
    check_inet("echo", SK_TCP, AF_UNSPEC, "", "7");
    check_inet("000000000080", SK_TCP, AF_UNSPEC, "", "80");
    check_inet("00000", SK_TCP, AF_UNSPEC, "", "0");
}

/* ---- HOST:PORT, [V6]:PORT, :PORT */

static void test_host_port_forms(void **state)
{
    (void)state;
    check_inet("localhost:51717", SK_TCP, AF_UNSPEC, "localhost", "51717");
    check_inet("127.0.0.1:80", SK_TCP, AF_UNSPEC, "127.0.0.1", "80");
    check_inet("my-host_1.example.com:http", SK_TCP, AF_UNSPEC, "my-host_1.example.com", "80");
    check_inet("[::1]:8080", SK_TCP, AF_UNSPEC, "::1", "8080");
    check_inet("[fe80::1%lo]:80", SK_TCP, AF_UNSPEC, "fe80::1%lo", "80");
    check_inet("[::]:0", SK_TCP, AF_UNSPEC, "::", "0");
    check_inet(":9000", SK_TCP, AF_UNSPEC, "", "9000");
    check_inet("h:000000000080", SK_TCP, AF_UNSPEC, "h", "80");
}

/* ---- scheme prefixes: transport and forced family */

static void test_schemes(void **state)
{
    (void)state;
    check_inet("tcp://h:1", SK_TCP, AF_UNSPEC, "h", "1");
    check_inet("udp://h:2", SK_UDP, AF_UNSPEC, "h", "2");
    check_inet("tcp4://h:3", SK_TCP, AF_INET, "h", "3");
    check_inet("tcp6://h:4", SK_TCP, AF_INET6, "h", "4");
    check_inet("udp4://h:5", SK_UDP, AF_INET, "h", "5");
    check_inet("udp6://h:6", SK_UDP, AF_INET6, "h", "6");
    check_inet("tcp6://[::1]:80", SK_TCP, AF_INET6, "::1", "80");
    check_inet("udp6://[::1]:7", SK_UDP, AF_INET6, "::1", "7");
    check_inet("tcp4://:80", SK_TCP, AF_INET, "", "80");
    check_inet("udp://:echo", SK_UDP, AF_UNSPEC, "", "7");
    check_inet("tcp://8080", SK_TCP, AF_UNSPEC, "", "8080"); /* all-digit rest: a port */
}

/* ---- Unix paths and abstract names */

static void check_unix(const char *text, sk_transport t, const char *path, int abstract)
{
    sk_addr a;
    parse_ok(&a, text);
    assert_int_equal(a.transport, t);
    assert_int_equal(a.family, AF_UNIX);
    assert_string_equal(a.path, path);
    assert_int_equal(a.path_len, strlen(path));
    assert_int_equal(a.abstract, abstract);
    assert_string_equal(a.host, "");
    assert_string_equal(a.port, "");
}

static void test_unix_forms(void **state)
{
    (void)state;
    check_unix("unix:/tmp/a.sock", SK_UNIX, "/tmp/a.sock", 0);
    check_unix("unixgram:/run/x", SK_UNIXGRAM, "/run/x", 0);
    check_unix("unix:rel/path", SK_UNIX, "rel/path", 0);
    check_unix("unix:@name", SK_UNIX, "name", 1);
    check_unix("unixgram:@n", SK_UNIXGRAM, "n", 1);
    check_unix("unix:/a:b", SK_UNIX, "/a:b", 0);
}

static void test_unix_path_limits(void **state)
{
    (void)state;
    char path[200], text[220];
    sk_addr a;
    sk_err err = {0};

    /* 107 bytes: the longest path that fits sun_path with its NUL */
    memset(path, 'p', 107);
    path[0] = '/';
    path[107] = '\0';
    snprintf(text, sizeof text, "unix:%s", path);
    check_unix(text, SK_UNIX, path, 0);
    assert_int_equal(strlen(path), 107);
    snprintf(text, sizeof text, "unixgram:@%s", path + 1);
    check_unix(text, SK_UNIXGRAM, path + 1, 1);

    /* 108 bytes: refused */
    memset(path, 'p', 108);
    path[0] = '/';
    path[108] = '\0';
    snprintf(text, sizeof text, "unix:%s", path);
    assert_int_equal(sk_addr_parse(&a, text, &err), -1);
    assert_int_equal(err.usage, 1);
    assert_non_null(strstr(err.msg, "socket path too long (108 bytes, at most 107)"));
    /* and an abstract name of 108 (it would need 109 bytes of sun_path) */
    snprintf(text, sizeof text, "unix:@%s", path);
    memset(&err, 0, sizeof err);
    assert_int_equal(sk_addr_parse(&a, text, &err), -1);
    assert_int_equal(err.usage, 1);
    assert_non_null(strstr(err.msg, "too long"));
}

/* ---- malformed words: every one is a usage error naming the word and the fault */

struct bad_case {
    const char *text;
    const char *want;
};

static void test_malformed_table(void **state)
{
    (void)state;
    char longhost[300], longport[60];
    memset(longhost, 'h', 256);
    snprintf(longhost + 256, sizeof longhost - 256, ":80");
    memset(longport + 2, '1', 40); /* h: and a 40-digit port */
    longport[0] = 'h';
    longport[1] = ':';
    longport[42] = '\0';

    const struct bad_case cases[] = {
        {"tcp://:70000", "port out of range (0-65535)"},
        {":abc", "unknown port or service \"abc\""},
        {"[::1", "missing ']'"},
        {"[::1]", "missing port after ']'"},
        {"[::1]80", "expected ':' after ']'"},
        {"[::1]:", "missing port"},
        {"[]:80", "empty IPv6 address"},
        {"unix:", "missing socket path"},
        {"unixgram:", "missing socket path"},
        {"unix:@", "missing abstract socket name"},
        {"unixgram:@", "missing abstract socket name"},
        {"", "empty"},
        {"foo://x:1", "unknown transport \"foo\""},
        {"://x:1", "unknown transport"},
        {"::1:80", "IPv6 address must be in brackets"},
        {"host:", "missing port"},
        {"tcp://host", "missing port (HOST:PORT)"},
        {"99999", "port out of range"},
        {"65536", "port out of range"},
        {"-1", "unknown port or service \"-1\""},
        {"1 2", "white space"},
        {"host:80\n", "control characters"},
        {"\thost:80", "white space"},
        {"tcp4://[::1]:80", "IPv6 address with an IPv4-only transport"},
        {"udp4://[::1]:80", "IPv4-only"},
        {"a b:80", "white space"},
        {"h@st:80", "bad host \"h@st\""},
        {"h:p!rt", "bad port \"p!rt\""},
        {"h:nosuchservicename", "unknown port or service"},
        {longhost, "host name too long"},
        {longport, "port out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sk_addr a;
        sk_err err = {0};
        int rc = sk_addr_parse(&a, cases[i].text, &err);
        if (rc != -1)
            fail_msg("case %zu \"%s\": accepted", i, cases[i].text);
        if (err.usage != 1 || err.code != EINVAL)
            fail_msg("case %zu \"%s\": usage=%d code=%d", i, cases[i].text, err.usage, err.code);
        if (strstr(err.msg, cases[i].want) == NULL)
            fail_msg("case %zu \"%s\": msg \"%s\" lacks \"%s\"", i, cases[i].text, err.msg,
                     cases[i].want);
        if (strncmp(err.msg, "bad address \"", 13) != 0)
            fail_msg("case %zu: msg \"%s\" does not start with 'bad address \"'", i, err.msg);
        if (strchr(err.msg, '\n') != NULL || strchr(err.msg, '\r') != NULL)
            fail_msg("case %zu: msg is not one line", i);
    }
}

static void test_malformed_exact_message(void **state)
{
    (void)state;
    sk_addr a;
    sk_err err = {0};
    assert_int_equal(sk_addr_parse(&a, "tcp://:70000", &err), -1);
    assert_string_equal(err.msg, "bad address \"tcp://:70000\": port out of range (0-65535)");
    assert_int_equal(err.usage, 1);

    /* the newline in the word does not split the message */
    assert_int_equal(sk_addr_parse(&a, "host:80\n", &err), -1);
    assert_string_equal(err.msg,
                        "bad address \"host:80 \": contains white space or control characters");

    /* a NULL text and a NULL err are both fine */
    assert_int_equal(sk_addr_parse(&a, NULL, &err), -1);
    assert_int_equal(err.usage, 1);
    assert_int_equal(sk_addr_parse(&a, "[::1", NULL), -1);
}

/* ---- the longest accepted parts: a 255-byte host, a 40-digit zero-padded port */

static void test_host_length_limit(void **state)
{
    (void)state;
    char text[320], host[256];
    memset(host, 'h', 255);
    host[255] = '\0';
    snprintf(text, sizeof text, "%s:80", host);
    check_inet(text, SK_TCP, AF_UNSPEC, host, "80"); /* 255 fits with its NUL */
    /* 40 digits, but leading zeros: port 80 */
    memset(text, '0', 40);
    memcpy(text + 38, "80", 3);
    check_inet(text, SK_TCP, AF_UNSPEC, "", "80");
}

/* ---- the two-word form HOST PORT */

static void test_parse_host_port(void **state)
{
    (void)state;
    sk_addr a;
    sk_err err = {0};

    assert_int_equal(sk_addr_parse_host_port(&a, "localhost", "51717", &err), 0);
    assert_int_equal(a.transport, SK_TCP);
    assert_int_equal(a.family, AF_UNSPEC);
    assert_string_equal(a.host, "localhost");
    assert_string_equal(a.port, "51717");

    assert_int_equal(sk_addr_parse_host_port(&a, "::1", "80", &err), 0);
    assert_string_equal(a.host, "::1");
    assert_string_equal(a.port, "80");

    assert_int_equal(sk_addr_parse_host_port(&a, "[::1]", "http", &err), 0);
    assert_string_equal(a.host, "::1");
    assert_string_equal(a.port, "80");

    assert_int_equal(sk_addr_parse_host_port(&a, "h", "0080", &err), 0);
    assert_string_equal(a.port, "80");

    memset(&err, 0, sizeof err);
    assert_int_equal(sk_addr_parse_host_port(&a, "", "80", &err), -1);
    assert_int_equal(err.usage, 1);
    assert_string_equal(err.msg, "bad address \" 80\": empty host");

    memset(&err, 0, sizeof err);
    assert_int_equal(sk_addr_parse_host_port(&a, "h", "x y", &err), -1);
    assert_int_equal(err.usage, 1);
    assert_non_null(strstr(err.msg, "bad port \"x y\""));

    memset(&err, 0, sizeof err);
    assert_int_equal(sk_addr_parse_host_port(&a, "h", "70000", &err), -1);
    assert_int_equal(err.usage, 1);
    assert_non_null(strstr(err.msg, "port out of range"));

    memset(&err, 0, sizeof err);
    assert_int_equal(sk_addr_parse_host_port(&a, "h", "", &err), -1);
    assert_non_null(strstr(err.msg, "missing port"));

    memset(&err, 0, sizeof err);
    assert_int_equal(sk_addr_parse_host_port(&a, "a b", "80", &err), -1);
    assert_int_equal(err.usage, 1);
    assert_non_null(strstr(err.msg, "bad host"));
}

/* ---- format: canonical text, and parse -> format -> parse round trips */

static void test_format_canonical(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"8080", "tcp://:8080"},
        {"localhost:http", "tcp://localhost:80"},
        {"[::1]:80", "tcp://[::1]:80"},
        {"udp6://[::1]:echo", "udp6://[::1]:7"},
        {"tcp4://127.0.0.1:0", "tcp4://127.0.0.1:0"},
        {"udp://h:0009", "udp://h:9"},
        {"unix:/tmp/s", "unix:/tmp/s"},
        {"unixgram:@x", "unixgram:@x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sk_addr a;
        char buf[SK_NAME_MAX + SK_HOST_MAX];
        parse_ok(&a, cases[i][0]);
        assert_ptr_equal(sk_addr_format(&a, buf, sizeof buf), buf);
        assert_string_equal(buf, cases[i][1]);
    }
}

static void test_format_round_trip(void **state)
{
    (void)state;
    /* clang-format off */
    static const char *const words[] = {
        "8080", "0", "http", "localhost:51717", ":9", "[::1]:80", "[fe80::1%lo]:80", "[::]:0",
        "tcp://h:1", "udp://h:2", "tcp4://h:3", "tcp6://[::1]:4", "udp4://:5", "udp6://h:6",
        "unix:/tmp/a.sock", "unixgram:/x", "unix:@name", "unixgram:@n", "example.com:00443",
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        sk_addr a, b;
        char buf[SK_NAME_MAX + SK_HOST_MAX];
        parse_ok(&a, words[i]);
        sk_addr_format(&a, buf, sizeof buf);
        parse_ok(&b, buf);
        assert_int_equal(a.transport, b.transport);
        assert_int_equal(a.family, b.family);
        assert_string_equal(a.host, b.host);
        assert_string_equal(a.port, b.port);
        assert_string_equal(a.path, b.path);
        assert_int_equal(a.path_len, b.path_len);
        assert_int_equal(a.abstract, b.abstract);
        if (memcmp(&a, &b, sizeof a) != 0)
            fail_msg("\"%s\" -> \"%s\": structs differ", words[i], buf);
    }
}

static void test_format_truncates(void **state)
{
    (void)state;
    sk_addr a;
    char buf[8];
    memset(buf, 'X', sizeof buf);
    parse_ok(&a, "localhost:51717");
    sk_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "tcp://l"); /* NUL-terminated within cap */
}

/* ---- transports */

static void test_transports(void **state)
{
    (void)state;
    assert_int_equal(sk_transport_is_stream(SK_TCP), 1);
    assert_int_equal(sk_transport_is_stream(SK_UNIX), 1);
    assert_int_equal(sk_transport_is_stream(SK_UDP), 0);
    assert_int_equal(sk_transport_is_stream(SK_UNIXGRAM), 0);
    assert_string_equal(sk_transport_name(SK_TCP), "tcp");
    assert_string_equal(sk_transport_name(SK_UDP), "udp");
    assert_string_equal(sk_transport_name(SK_UNIX), "unix");
    assert_string_equal(sk_transport_name(SK_UNIXGRAM), "unixgram");
    assert_string_equal(sk_transport_name((sk_transport)0), "?");
}

/* fd:N: the transport is the socket's own; what is not a listening or
 * datagram socket is a usage error naming the descriptor. */
static void test_inherited_fd(void **state)
{
    (void)state;
    sk_addr a;
    sk_err err;
    char buf[64];
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    assert_true(u >= 0 && l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sun, sizeof(sa_family_t)), 0); /* autobind */
    assert_int_equal(listen(l, 1), 0);
    snprintf(buf, sizeof buf, "fd:%d", u);
    assert_int_equal(sk_addr_parse(&a, buf, &err), 0);
    assert_int_equal(a.transport, SK_UDP);
    assert_int_equal(a.inherit, SK_INHERIT_FD);
    assert_int_equal(a.fd, u);
    char out[64];
    assert_string_equal(sk_addr_format(&a, out, sizeof out), buf);
    snprintf(buf, sizeof buf, "fd:%d", l);
    assert_int_equal(sk_addr_parse(&a, buf, &err), 0);
    assert_int_equal(a.transport, SK_UNIX);
    /* A stream socket that is not listening. */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    snprintf(buf, sizeof buf, "fd:%d", c);
    assert_int_equal(sk_addr_parse(&a, buf, &err), -1);
    assert_int_equal(err.usage, 1);
    assert_non_null(strstr(err.msg, "is a stream socket that is not listening"));
    close(c);
    close(u);
    close(l);
    assert_int_equal(sk_addr_parse(&a, "fd:x", &err), -1);
    assert_string_equal(err.msg, "bad address \"fd:x\": expected fd:N, N a descriptor number");
    assert_int_equal(sk_addr_parse(&a, "fd:", &err), -1);
    assert_int_equal(sk_addr_parse(&a, "fd:9999", &err), -1);
    assert_string_equal(err.msg, "fd:9999: descriptor 9999 is not open");
    assert_int_equal(sk_addr_parse(&a, "sd:a:b", &err), -1);
    assert_int_equal(err.usage, 1);
    /* No LISTEN_FDS in a unit test's environment. */
    unsetenv("LISTEN_FDS");
    assert_int_equal(sk_addr_parse(&a, "sd:web", &err), -1);
    assert_string_equal(err.msg,
                        "bad address \"sd:web\": no sockets were passed (LISTEN_FDS is not set)");
}

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_port_only),         cmocka_unit_test(test_inherited_fd),
        cmocka_unit_test(test_host_port_forms),   cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_unix_forms),        cmocka_unit_test(test_unix_path_limits),
        cmocka_unit_test(test_malformed_table),   cmocka_unit_test(test_malformed_exact_message),
        cmocka_unit_test(test_host_length_limit), cmocka_unit_test(test_parse_host_port),
        cmocka_unit_test(test_format_canonical),  cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_format_truncates),  cmocka_unit_test(test_transports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
