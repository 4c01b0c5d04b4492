/* test_outq.c - unit tests for src/lib/outq.c: operator output that never blocks the caller. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "outq.h"
#include "sockit.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t seen_dropped;
static int seen_starting, seen_epipe;

static void on_notify(int fd, uint64_t dropped, int e)
{
    (void)fd;
    /* A slow receiver of the "N lines dropped" notice: a flush must still
     * wait for it (before the fix, a flush returned while the writer thread
     * was still in here, and the count was lost now and then). */
    if (e == 0 && dropped > 0)
        poll(NULL, 0, 100);
    pthread_mutex_lock(&mu);
    if (e == ENOBUFS)
        seen_starting++;
    else if (e == EPIPE)
        seen_epipe++;
    else
        seen_dropped += dropped;
    pthread_mutex_unlock(&mu);
}

/* Fill a pipe until it would block, through a second, non-blocking descriptor
 * for the same pipe, so the one outq writes to stays blocking. Returns bytes. */
static size_t fill_pipe(int wfd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", wfd);
    int nb = open(path, O_WRONLY | O_NONBLOCK);
    assert_true(nb >= 0);
    char junk[4096];
    memset(junk, 'j', sizeof junk);
    size_t total = 0;
    for (;;) {
        ssize_t n = write(nb, junk, sizeof junk);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    close(nb);
    return total;
}

/* A stalled reader: the call returns at once, lines wait or are dropped and
 * counted; once the reader reads, every kept line arrives whole and in order. */
static void test_stalled_reader_never_blocks(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    sk__outq_set_notify(on_notify);
    size_t junk = fill_pipe(p[1]);
    char line[1001];
    int queued = 0, dropped = 0;
    int64_t t0 = sk_now_ms();
    for (int i = 0; i < 400; i++) { /* 400 KB: more than the queue holds */
        snprintf(line, sizeof line, "%04d", i);
        memset(line + 4, 'x', sizeof line - 5);
        line[sizeof line - 2] = '\n';
        if (sk__outq_write(p[1], line, sizeof line - 1) == 0) {
            assert_int_equal(dropped, 0); /* nothing queued after a drop in a burst */
            queued++;
        } else {
            assert_int_equal(errno, ENOBUFS);
            dropped++;
        }
    }
    assert_true(sk_now_ms() - t0 < 5000); /* (it would block forever otherwise) */
    assert_true(queued > 0 && dropped > 0);
    pthread_mutex_lock(&mu);
    assert_int_equal(seen_starting, 1);
    assert_true(seen_dropped == 0);
    pthread_mutex_unlock(&mu);

    /* The reader comes back. */
    char buf[8192];
    size_t skip = junk, got = 0, want = (size_t)queued * 1000;
    char *all = malloc(want);
    assert_non_null(all);
    while (got < want) {
        ssize_t n = sk_read_deadline(p[0], buf, sizeof buf, sk_now_ms() + 5000);
        assert_true(n > 0);
        size_t off = 0;
        if (skip) {
            off = (size_t)n < skip ? (size_t)n : skip;
            skip -= off;
        }
        assert_true(got + ((size_t)n - off) <= want);
        memcpy(all + got, buf + off, (size_t)n - off);
        got += (size_t)n - off;
    }
    for (int i = 0; i < queued; i++) {
        char head[16];
        snprintf(head, sizeof head, "%04d", i);
        assert_memory_equal(all + (size_t)i * 1000, head, 4);
        assert_int_equal(all[(size_t)i * 1000 + 999], '\n');
    }
    free(all);
    /* Flowing again: the count of what was lost is told. */
    assert_int_equal(sk__outq_flush(sk_now_ms() + 2000), 0);
    pthread_mutex_lock(&mu);
    assert_true(seen_dropped == (uint64_t)dropped);
    pthread_mutex_unlock(&mu);

    /* The reader leaves: EPIPE, then every write fails at once. */
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(sk__outq_write(p[1], "x\n", 2), -1);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(sk__outq_write(p[1], "y\n", 2), -1);
    assert_int_equal(errno, EPIPE);
    close(p[1]);
}

/* Nothing readable on fd right now. */
static int empty_now(int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    return poll(&pf, 1, 0) == 0;
}

/* Queues are per descriptor number and live for the process: each test
 * writes to numbers of its own. */
static void move_to(int *fd, int to)
{
    assert_int_equal(dup2(*fd, to), to);
    close(*fd);
    *fd = to;
}

static void read_exactly(int fd, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        ssize_t n = sk_read_deadline(fd, buf + got, want - got, sk_now_ms() + 5000);
        assert_true(n > 0);
        got += (size_t)n;
    }
    buf[got] = '\0';
}

/* An event loop's batch: lines wait in the thread's buffer until the flush
 * (or a line for another descriptor), then arrive whole and in order. */
static void test_batch_waits_for_flush(void **state)
{
    (void)state;
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    move_to(&a[1], 40);
    move_to(&b[1], 41);
    sk__outq_batch_begin();
    assert_int_equal(sk__outq_write(a[1], "one\n", 4), 0);
    assert_int_equal(sk__outq_write(a[1], "two\n", 4), 0);
    assert_true(empty_now(a[0]));                            /* batched, not written */
    assert_int_equal(sk__outq_write(b[1], "other\n", 6), 0); /* another fd: a's go first */
    char buf[64];
    read_exactly(a[0], buf, 8);
    assert_string_equal(buf, "one\ntwo\n");
    assert_true(empty_now(b[0]));
    sk__outq_batch_flush();
    read_exactly(b[0], buf, 6);
    assert_string_equal(buf, "other\n");
    /* A full buffer leaves at once, whole lines only. */
    char line[1000];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    for (int i = 0; i < 5; i++) /* 5000 bytes: more than PIPE_BUF (4096) */
        assert_int_equal(sk__outq_write(a[1], line, sizeof line), 0);
    char *big = malloc(5001);
    assert_non_null(big);
    read_exactly(a[0], big, 4000); /* the first four lines, before any flush */
    assert_true(empty_now(a[0]));
    sk__outq_batch_end(); /* the fifth */
    read_exactly(a[0], big, 1000);
    assert_int_equal(big[999], '\n');
    free(big);
    /* Not batching any more: written at once. */
    assert_int_equal(sk__outq_write(a[1], "now\n", 4), 0);
    read_exactly(a[0], buf, 4);
    assert_string_equal(buf, "now\n");
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}

/* The reader of a batch leaves: the flush tells the notify callback, and
 * later lines fail with EPIPE at once. */
static void test_batch_reader_gone(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    move_to(&p[1], 42);
    sk__outq_set_notify(on_notify);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_lock(&mu);
    int before = seen_epipe;
    pthread_mutex_unlock(&mu);
    sk__outq_batch_begin();
    assert_int_equal(sk__outq_write(p[1], "lost\n", 5), 0);
    close(p[0]);
    sk__outq_batch_flush();
    pthread_mutex_lock(&mu);
    assert_int_equal(seen_epipe, before + 1);
    pthread_mutex_unlock(&mu);
    assert_int_equal(sk__outq_write(p[1], "x\n", 2), -1);
    assert_int_equal(errno, EPIPE);
    sk__outq_batch_end();
    close(p[1]);
}

/* A socket as the output (decided once: send with MSG_DONTWAIT): a reader
 * that stalls never blocks the caller, and the lines arrive once it reads. */
static void test_socket_reader_stalls(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    move_to(&sv[1], 43);
    int small = 4096;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    char line[100];
    memset(line, 's', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    int64_t t0 = sk_now_ms();
    int kept = 0;
    for (int i = 0; i < 1000; i++) /* 100 KB into a few KB of buffers */
        if (sk__outq_write(sv[1], line, sizeof line) == 0)
            kept++;
    assert_true(sk_now_ms() - t0 < 5000); /* (a blocking write would hang) */
    assert_true(kept > 0);
    char *all = malloc((size_t)kept * sizeof line + 1);
    assert_non_null(all);
    read_exactly(sv[0], all, (size_t)kept * sizeof line);
    for (int i = 0; i < kept; i++)
        assert_int_equal(all[(size_t)i * sizeof line + sizeof line - 1], '\n');
    free(all);
    sk__outq_flush(sk_now_ms() + 2000);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_reader_never_blocks),
        cmocka_unit_test(test_batch_waits_for_flush),
        cmocka_unit_test(test_batch_reader_gone),
        cmocka_unit_test(test_socket_reader_stalls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
