/* test_conn_splice.c - the engine's zero-copy seams for a relay: the read
 * hook (sk_conn_read_hook: the service moves the peer's bytes itself, the
 * engine keeps its bookkeeping) and pipe segments (SK_SEG_PIPE: bytes
 * waiting in a pipe, spliced to the peer), over real socket pairs. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

static int datas, eofs, releases, hook_calls;
static ssize_t hook_result;
static int hook_errno;
static char hook_got[64];

static void t_data(sk_conn *c, const uint8_t *d, size_t n)
{
    (void)c, (void)d, (void)n;
    datas++;
}

static void t_eof(sk_conn *c)
{
    (void)c;
    eofs++;
}

static const sk_service test_svc = {
    .name = "test",
    .flags = SK_SVC_STREAM,
    .on_data = t_data,
    .on_eof = t_eof,
};

static sk_server *srv;
static int sv[2];

static int setup(void **state)
{
    (void)state;
    datas = eofs = releases = hook_calls = 0;
    sk_server_opts o = {.service = &test_svc};
    sk_err err;
    srv = sk_server_new(&o, &err);
    assert_non_null(srv);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sk_server_free(srv);
    close(sv[1]);
    return 0;
}

static sk_conn *new_conn(void)
{
    sk_tp tp;
    sk__tp_plain(&tp, sv[0]);
    sk_conn *c = sk__conn_new(srv, &tp, NULL, 0, SK_UNIX);
    assert_non_null(c);
    sk__conn_open(c);
    return c;
}

/* The hook reads the socket itself (as a relay's splice would). */
static ssize_t hook(sk_conn *c, int fd, void *arg)
{
    (void)c;
    assert_ptr_equal(arg, &hook_calls);
    hook_calls++;
    if (hook_result != 0) {
        errno = hook_errno;
        return hook_result;
    }
    return read(fd, hook_got, sizeof hook_got);
}

static void test_read_hook_bookkeeping(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    assert_int_equal(sk_conn_read_hook(c, hook, &hook_calls), 0);
    uint8_t scratch[64];
    assert_int_equal(write(sv[1], "hello", 5), 5);
    c->last_io_ms = 0;
    hook_result = 0;
    assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), 5);
    assert_int_equal(hook_calls, 1);
    assert_memory_equal(hook_got, "hello", 5);
    assert_int_equal(datas, 0); /* the bytes went the hook's way, not on_data */
    assert_int_equal(c->bytes_in, 5);
    assert_true(c->last_io_ms > 0); /* the idle clock restarted */
    /* Nothing to read: the hook's EAGAIN is the transport's AGAIN. */
    assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), SK_TP_AGAIN);
    assert_int_equal(c->tp.want, SK_TP_WANT_READ);
    /* The peer's end of stream: on_eof, as after a read of 0. */
    shutdown(sv[1], SHUT_WR);
    assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), 0);
    assert_int_equal(eofs, 1);
    assert_int_equal(hook_calls, 3);
    sk__conn_destroy(c);
}

static void test_read_hook_error_kills(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    assert_int_equal(sk_conn_read_hook(c, hook, &hook_calls), 0);
    hook_result = -1;
    hook_errno = ECONNRESET;
    uint8_t scratch[8];
    assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), SK_TP_ERR);
    assert_true(c->flags & SK_C_DEAD);
    hook_result = 0;
    sk__conn_destroy(c);
}

/* Closing: the engine reads (and discards) by itself again; cb NULL removes the hook. */
static void test_read_hook_not_while_closing(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    assert_int_equal(sk_conn_read_hook(c, hook, &hook_calls), 0);
    hook_result = 0;
    sk_conn_close(c);
    assert_int_equal(sk__conn_close_step(c), 2); /* lingering: reads and discards */
    assert_int_equal(write(sv[1], "junk", 4), 4);
    uint8_t scratch[16];
    assert_int_equal(sk__conn_pump_read(c, scratch, sizeof scratch), 4);
    assert_int_equal(hook_calls, 0);
    sk__conn_destroy(c);

    close(sv[1]);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    sk_conn *d = new_conn();
    assert_int_equal(sk_conn_read_hook(d, hook, &hook_calls), 0);
    assert_int_equal(sk_conn_read_hook(d, NULL, NULL), 0);
    assert_int_equal(write(sv[1], "data", 4), 4);
    assert_int_equal(sk__conn_pump_read(d, scratch, sizeof scratch), 4);
    assert_int_equal(hook_calls, 0);
    assert_int_equal(datas, 1);
    sk__conn_destroy(d);
}

static void t_release(void *arg)
{
    assert_ptr_equal(arg, &releases);
    releases++;
}

/* A transport that is not the plain one (TLS): no hook, no pipe segment. */
static ssize_t fake_read(sk_tp *t, void *b, size_t n)
{
    (void)t, (void)b, (void)n;
    return SK_TP_AGAIN;
}
static const sk_tp_ops fake_ops = {.name = "fake", .read = fake_read};

static void test_not_on_other_transports(void **state)
{
    (void)state;
    int impl;
    sk_tp tp = {.ops = &fake_ops, .impl = &impl, .fd = -1};
    sk_conn *c = sk__conn_new(srv, &tp, NULL, 0, SK_TCP);
    assert_non_null(c);
    errno = 0;
    assert_int_equal(sk_conn_read_hook(c, hook, NULL), -1);
    assert_int_equal(errno, EOPNOTSUPP);
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    sk_seg seg = {
        .kind = SK_SEG_PIPE, .fd = p[0], .len = 3, .release = t_release, .arg = &releases};
    errno = 0;
    assert_int_equal(sk_conn_queue(c, &seg), -1);
    assert_int_equal(errno, EOPNOTSUPP);
    assert_int_equal(releases, 1); /* handed back at once, as promised */
    assert_int_equal(sk_conn_pending(c), 0);
    sk__conn_free(c);
    close(p[0]);
    close(p[1]);
}

/* SK_SEG_PIPE: the pipe's bytes leave between the bytes queued around them,
 * spliced; the caller's release runs once and the pipe stays the caller's. */
static void test_pipe_segment(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    assert_int_equal(write(p[1], "pipedata", 8), 8);
    assert_int_equal(sk_conn_send(c, "head", 4), 0);
    sk_seg seg = {
        .kind = SK_SEG_PIPE, .fd = p[0], .len = 8, .release = t_release, .arg = &releases};
    assert_int_equal(sk_conn_queue(c, &seg), 0);
    assert_int_equal(sk_conn_send(c, "tail", 4), 0);
    assert_int_equal(sk_conn_pending(c), 16);
    for (int i = 0; i < 8 && sk_conn_pending(c) > 0; i++)
        sk__conn_pump_write(c, 1 << 20);
    assert_int_equal(sk_conn_pending(c), 0);
    assert_int_equal(c->bytes_out, 16);
    char got[32];
    assert_int_equal(read(sv[1], got, sizeof got), 16);
    assert_memory_equal(got, "headpipedatatail", 16);
    assert_int_equal(releases, 1);
    assert_true(fcntl(p[0], F_GETFD) >= 0); /* not closed: it has a release */
    /* A second chunk through the same pipe. */
    assert_int_equal(write(p[1], "again", 5), 5);
    seg.len = 5;
    assert_int_equal(sk_conn_queue(c, &seg), 0);
    sk__conn_pump_write(c, 1 << 20);
    assert_int_equal(read(sv[1], got, sizeof got), 5);
    assert_memory_equal(got, "again", 5);
    assert_int_equal(releases, 2);
    /* Dropped unsent (the connection goes): released all the same. */
    assert_int_equal(write(p[1], "lost", 4), 4);
    seg.len = 4;
    assert_int_equal(sk_conn_queue(c, &seg), 0);
    sk__conn_destroy(c);
    assert_int_equal(releases, 3);
    close(p[0]);
    close(p[1]);
}

/* sk_conn_abort: the queued output is dropped and the peer gets a reset. */
static void test_abort_resets(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(ls, 1), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sin, &len), 0);
    int peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(peer, (struct sockaddr *)&sin, sizeof sin), 0);
    int fd = accept(ls, NULL, NULL);
    assert_true(fd >= 0);
    sk_tp tp;
    sk__tp_plain(&tp, fd);
    sk_conn *c = sk__conn_new(srv, &tp, NULL, 0, SK_TCP);
    assert_non_null(c);
    sk__conn_open(c);
    assert_int_equal(sk_conn_send(c, "never sent", 10), 0);
    sk_conn_abort(c);
    assert_int_equal(sk__conn_close_step(c), 1); /* at once, output dropped */
    sk__conn_destroy(c);
    char b[16];
    errno = 0;
    assert_int_equal(recv(peer, b, sizeof b, 0), -1);
    assert_int_equal(errno, ECONNRESET);
    close(peer);
    close(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_hook_bookkeeping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_hook_error_kills, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_hook_not_while_closing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_on_other_transports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipe_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_resets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
