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
#include <unistd.h>

#include "outq.h"
#include "sockit.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t seen_dropped;
static int seen_starting, seen_epipe;

static void on_notify(int fd, uint64_t dropped, int e)
{
    (void)fd;
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

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_reader_never_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
