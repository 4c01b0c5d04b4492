/* test_transport.c - unit tests for src/lib/tp_plain.c: the plain-socket
 * transport's contract (transport.h) over socket pairs, pipes and files. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"
#include "transport.h"

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void test_read_write_eof(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    sk_tp a, b;
    sk__tp_plain(&a, sv[0]);
    sk__tp_plain(&b, sv[1]);
    char buf[64];
    assert_int_equal(sk__tp_read(&b, buf, sizeof buf), SK_TP_AGAIN);
    assert_int_equal(b.want, SK_TP_WANT_READ);
    struct iovec v[2] = {{"hello ", 6}, {"world", 5}};
    assert_int_equal(sk__tp_writev(&a, v, 2, 0), 11);
    assert_int_equal(sk__tp_write(&a, "!", 1, SK_TP_MORE), 1);
    assert_int_equal(sk__tp_read(&b, buf, sizeof buf), 12);
    assert_memory_equal(buf, "hello world!", 12);
    assert_int_equal(sk__tp_shutdown(&a), 0);
    assert_int_equal(sk__tp_read(&b, buf, sizeof buf), 0); /* orderly end */
    assert_int_equal(sk__tp_buffered(&b), 0);
    sk__tp_close(&a);
    assert_int_equal(a.fd, -1);
    sk__tp_close(&b);
}

static void test_full_then_again(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    sk_tp a;
    sk__tp_plain(&a, sv[0]);
    static char big[1 << 16];
    ssize_t n, total = 0;
    while ((n = sk__tp_write(&a, big, sizeof big, 0)) > 0)
        total += n;
    assert_int_equal(n, SK_TP_AGAIN);
    assert_int_equal(a.want, SK_TP_WANT_WRITE);
    assert_true(total > 0);
    sk__tp_close(&a);
    close(sv[1]);
}

static void test_reset_is_error_not_sigpipe(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    sk_tp a;
    sk__tp_plain(&a, sv[0]);
    close(sv[1]);
    /* Without MSG_NOSIGNAL this would kill the test with SIGPIPE. */
    assert_int_equal(sk__tp_write(&a, "x", 1, 0), SK_TP_ERR);
    assert_int_equal(errno, EPIPE);
    sk__tp_close(&a);
}

static void test_sendfile_file_and_pipe(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    sk_tp a;
    sk__tp_plain(&a, sv[0]);
    char path[] = "/tmp/sockit-tp-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    off_t off = 3;
    assert_int_equal(sk__tp_sendfile(&a, fd, &off, 4, 0), 4);
    assert_int_equal(off, 7);
    off = 10;
    assert_int_equal(sk__tp_sendfile(&a, fd, &off, 4, 0), 0); /* the file ended early */
    char buf[16];
    assert_int_equal(read(sv[1], buf, sizeof buf), 4);
    assert_memory_equal(buf, "3456", 4);
    close(fd);

    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "piped", 5), 5);
    ssize_t n = sk__tp_sendfile(&a, p[0], NULL, 1 << 16, SK_TP_PIPE);
#ifdef __linux__
    assert_int_equal(n, 5);
    assert_int_equal(read(sv[1], buf, sizeof buf), 5);
    assert_memory_equal(buf, "piped", 5);
#else
    assert_int_equal(n, SK_TP_UNSUPPORTED);
#endif
    close(p[0]);
    close(p[1]);
    sk__tp_close(&a);
    close(sv[1]);
}

/* sendfile and splice have no MSG_NOSIGNAL: with SIGPIPE at its default (a
 * program that never called sk_ignore_sigpipe), a peer that has gone must be
 * an error, not the death of the process. Runs first: once the transport has
 * seen SIGPIPE ignored it stops checking. */
static void test_sendfile_to_gone_peer_is_error_not_sigpipe(void **state)
{
    (void)state;
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigemptyset(&dfl.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
    int sv[2];
    pair(sv);
    close(sv[1]);
    sk_tp a;
    sk__tp_plain(&a, sv[0]);
    char path[] = "/tmp/sockit-tp-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    off_t off = 0;
    assert_int_equal(sk__tp_sendfile(&a, fd, &off, 10, 0), SK_TP_ERR);
    assert_int_equal(errno, EPIPE);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "piped", 5), 5);
    ssize_t n = sk__tp_sendfile(&a, p[0], NULL, 5, SK_TP_PIPE);
    assert_true(n == SK_TP_ERR || n == SK_TP_UNSUPPORTED);
    /* No SIGPIPE left pending to kill us once unblocked. */
    sigset_t pending;
    assert_int_equal(sigpending(&pending), 0);
    assert_false(sigismember(&pending, SIGPIPE));
    close(p[0]);
    close(p[1]);
    close(fd);
    sk__tp_close(&a);
    sigaction(SIGPIPE, &old, NULL);
}

static void test_pipe_stands_in_for_socket(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    sk_tp r, w;
    sk__tp_plain(&r, p[0]);
    sk__tp_plain(&w, p[1]);
    assert_int_equal(sk__tp_write(&w, "abc", 3, 0), 3);
    char buf[8];
    assert_int_equal(sk__tp_read(&r, buf, sizeof buf), 3);
    assert_int_equal(sk__tp_read(&r, buf, sizeof buf), SK_TP_AGAIN);
    sk__tp_close(&w);
    assert_int_equal(sk__tp_read(&r, buf, sizeof buf), 0);
    sk__tp_close(&r);
}

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sendfile_to_gone_peer_is_error_not_sigpipe),
        cmocka_unit_test(test_read_write_eof),
        cmocka_unit_test(test_full_then_again),
        cmocka_unit_test(test_reset_is_error_not_sigpipe),
        cmocka_unit_test(test_sendfile_file_and_pipe),
        cmocka_unit_test(test_pipe_stands_in_for_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
