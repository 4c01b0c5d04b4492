/* test_conn_proxy.c - the PROXY protocol stage (src/engine/conn_proxy.c) over
 * a socket pair: a header in pieces is taken as it comes (never a byte past
 * it), kept out of the output, then replaces the peer and opens the
 * connection; the bytes after it (a second header too) are the service's;
 * malformed headers never reach the service; the stage has its deadline. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

static int opened, closes;
static char got[4096];
static size_t ngot;

static void t_open(sk_conn *c)
{
    (void)c;
    opened++;
}

static void t_data(sk_conn *c, const uint8_t *d, size_t n)
{
    (void)c;
    assert_true(ngot + n <= sizeof got);
    memcpy(got + ngot, d, n);
    ngot += n;
}

static void t_close(sk_conn *c)
{
    (void)c;
    closes++;
}

static const sk_service test_svc = {
    .name = "test",
    .flags = SK_SVC_STREAM,
    .on_open = t_open,
    .on_data = t_data,
    .on_close = t_close,
};

static sk_server *srv;
static int peer_fd = -1;

static int setup(void **state)
{
    (void)state;
    opened = closes = 0;
    ngot = 0;
    sk_server_opts o = {.service = &test_svc, .proxy_protocol = 1};
    sk_err err;
    srv = sk_server_new(&o, &err);
    assert_non_null(srv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sk_server_free(srv);
    if (peer_fd >= 0)
        close(peer_fd);
    peer_fd = -1;
    return 0;
}

/* A connection over a socket pair, as accepted: peer_fd is the proxy's end. */
static sk_conn *accepted(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(sk_set_nonblock(sv[0], 1), 0);
    peer_fd = sv[1];
    sk_conn *c = sk__conn_accepted(srv, sv[0], NULL, 0, SK_UNIX);
    assert_non_null(c);
    assert_true(c->flags & SK_C_PROXY);
    return c;
}

static void put(const void *p, size_t n)
{
    assert_int_equal(write(peer_fd, p, n), (ssize_t)n);
}

static size_t v2_inet(uint8_t *h, const char *src, unsigned sport, const uint8_t *tlvs, size_t ntlv)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    memcpy(h, sig, 12);
    h[12] = 0x21;
    h[13] = 0x11;
    size_t len = 12 + ntlv;
    h[14] = (uint8_t)(len >> 8);
    h[15] = (uint8_t)len;
    assert_int_equal(inet_pton(AF_INET, src, h + 16), 1);
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", h + 20), 1);
    h[24] = (uint8_t)(sport >> 8), h[25] = (uint8_t)sport;
    h[26] = 0, h[27] = 80;
    memcpy(h + 28, tlvs, ntlv);
    return 28 + ntlv;
}

static void test_split_header_then_data(void **state)
{
    (void)state;
    uint8_t scratch[64]; /* smaller than the header: it is taken in several steps */
    sk_conn *c = accepted();
    sk__conn_begin(c); /* nothing there yet */
    assert_true(c->flags & SK_C_PROXY);
    uint8_t tlvs[100];
    tlvs[0] = 0x04, tlvs[1] = 0, tlvs[2] = 97; /* a NOOP TLV of 97 bytes */
    memset(tlvs + 3, 'N', 97);
    uint8_t h[200];
    size_t n = v2_inet(h, "127.0.0.9", 1234, tlvs, sizeof tlvs);
    const char *after = "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\ndata";
    for (size_t i = 0; i + 1 < n; i += 50) {
        size_t k = n - 1 - i < 50 ? n - 1 - i : 50;
        put(h + i, k);
        assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), SK_TP_AGAIN);
        assert_int_equal(opened, 0);
        /* What was taken is the header's: not output, not "pending". */
        assert_int_equal(sk_conn_pending(c), 0);
        assert_false(sk__conn_wants_write(c));
        assert_int_equal(sk__conn_interest(c), SK_TP_WANT_READ);
        assert_int_equal(c->out.len, i + k);
    }
    assert_int_equal(sk__conn_next_deadline(c, c->started_ms, -1),
                     c->started_ms + SK_PROXY_TIMEOUT_MS);
    put(h + n - 1, 1); /* the last byte, with what follows it */
    put(after, strlen(after));
    assert_true(sk__conn_pump_read(c, scratch, sizeof scratch) > 0);
    assert_int_equal(opened, 1);
    assert_false(c->flags & SK_C_PROXY);
    assert_int_equal(sk_conn_proxied(c), 1);
    assert_string_equal(sk_conn_peer_name(c), "tcp://127.0.0.9:1234");
    char host[64];
    unsigned port;
    sk_conn_peer_host_port(c, host, sizeof host, &port);
    assert_string_equal(host, "127.0.0.9");
    assert_int_equal(port, 1234);
    /* Everything after the header, and nothing of it, reached the service. */
    assert_int_equal(ngot, strlen(after));
    assert_memory_equal(got, after, ngot);
    sk__conn_destroy(c);
    assert_int_equal(closes, 1);
}

static void test_never_reads_past_the_header(void **state)
{
    (void)state;
    uint8_t scratch[4096];
    sk_conn *c = accepted();
    const char *hdr = "PROXY TCP6 2001:db8::1 ::1 5 6\r\n";
    put(hdr, strlen(hdr));
    put("\x16\x03\x01rest", 7); /* a ClientHello, say: the transport's */
    assert_int_equal(sk__conn_pump_proxy(c, scratch, sizeof scratch), 1);
    assert_int_equal(opened, 1);
    char buf[16];
    assert_int_equal(recv(c->tp.fd, buf, sizeof buf, 0), 7);
    assert_memory_equal(buf, "\x16\x03\x01rest", 7);
    assert_string_equal(sk_conn_peer_name(c), "tcp://[2001:db8::1]:5");
    sk__conn_destroy(c);
}

static void test_unix_source_and_local(void **state)
{
    (void)state;
    uint8_t scratch[4096];
    sk_conn *c = accepted();
    uint8_t h[16 + 216];
    memcpy(h, "\r\n\r\n\0\r\nQUIT\n", 12);
    h[12] = 0x21, h[13] = 0x31, h[14] = 0, h[15] = 216;
    memset(h + 16, 0, 216);
    strcpy((char *)h + 16, "/run/client.sock");
    put(h, sizeof h);
    assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), SK_TP_AGAIN);
    assert_int_equal(opened, 1);
    assert_string_equal(sk_conn_peer_name(c), "unix:/run/client.sock");
    char host[64];
    unsigned port = 9;
    sk_conn_peer_host_port(c, host, sizeof host, &port);
    assert_string_equal(host, "unix:/run/client.sock");
    assert_int_equal(port, 0);
    sk__conn_destroy(c); /* the path is freed (ASan would say) */
    close(peer_fd);
    /* LOCAL: the real peer stays, not proxied. */
    c = accepted();
    h[12] = 0x20;
    put(h, sizeof h);
    assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), SK_TP_AGAIN);
    assert_int_equal(opened, 2);
    assert_int_equal(sk_conn_proxied(c), 0);
    assert_int_equal(strncmp(sk_conn_peer_name(c), "unix", 4), 0);
    assert_null(strstr(sk_conn_peer_name(c), "client.sock"));
    sk__conn_destroy(c);
}

static void test_malformed_and_late(void **state)
{
    (void)state;
    uint8_t scratch[4096];
    static const char *const bad[] = {"GET / HTTP/1.1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
                                      "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sk_conn *c = accepted();
        put(bad[i], strlen(bad[i]));
        assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), SK_TP_ERR);
        assert_true(c->flags & SK_C_DEAD);
        assert_int_equal(sk__conn_pump_close(c), 1);
        sk__conn_destroy(c);
        close(peer_fd);
    }
    /* The end of stream inside a header. */
    sk_conn *c = accepted();
    put("PROXY TCP4 1.2", 14);
    assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), SK_TP_AGAIN);
    shutdown(peer_fd, SHUT_WR);
    assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), SK_TP_ERR);
    sk__conn_destroy(c);
    close(peer_fd);
    /* Late: closed at the stage's deadline. */
    c = accepted();
    int64_t t0 = c->started_ms;
    assert_int_equal(sk__conn_expired(c, t0 + SK_PROXY_TIMEOUT_MS - 1, -1), SK_EXP_NONE);
    assert_int_equal(sk__conn_expired(c, t0 + SK_PROXY_TIMEOUT_MS, -1), SK_EXP_CLOSE);
    sk__conn_destroy(c);
    assert_int_equal(opened, 0);
    assert_int_equal(closes, 0); /* never opened: no on_close */
}

/* The stage adds no field: an idle connection still fits the size engine.h
 * promises (192 bytes since sk_conn_watch's pointer), the Unix source's path
 * pointer included. */
static void test_conn_size(void **state)
{
    (void)state;
    assert_true(sizeof(struct sk_conn) <= 192);
}

int main(void)
{
    alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_header_then_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_reads_past_the_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_source_and_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_and_late, setup, teardown),
        cmocka_unit_test(test_conn_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
