/* test_io.c - unit tests for src/lib/io.c: sk_write_all, sk_read_deadline, sk_wait_fd, EINTR. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sockit.h"

#define MIB (1024u * 1024u)

static uint8_t pattern(size_t i)
{
    return (uint8_t)(((uint32_t)i * 2654435761u) >> 24);
}

static uint8_t *make_pattern(size_t len)
{
    uint8_t *p = malloc(len);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = pattern(i);
    return p;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* A thread that reads fd slowly and checks the bytes against pattern(). */
struct reader {
    pthread_t tid;
    int fd;
    size_t expect;
    int delay_ms; /* before the first read */
    size_t chunk; /* bytes per read */
    int pause_us; /* between reads */
    size_t got;
    size_t bad_at; /* first mismatching offset, or SIZE_MAX */
    int err;       /* errno of a failed read */
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    uint8_t buf[65536];
    size_t chunk = r->chunk < sizeof buf ? r->chunk : sizeof buf;
    sleep_ms(r->delay_ms);
    while (r->got < r->expect) {
        ssize_t n = sk_read_deadline(r->fd, buf, chunk, sk_now_ms() + 10000);
        if (n < 0) {
            r->err = errno;
            break;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(r->got + (size_t)i) && r->bad_at == SIZE_MAX)
                r->bad_at = r->got + (size_t)i;
        r->got += (size_t)n;
        if (r->pause_us)
            usleep((useconds_t)r->pause_us);
    }
    return NULL;
}

/* Start the reader with SIGALRM blocked in it, so signals go to the main thread. */
static void reader_start(struct reader *r)
{
    sigset_t set, old;
    r->got = 0;
    r->bad_at = SIZE_MAX;
    r->err = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    assert_int_equal(pthread_create(&r->tid, NULL, reader_main, r), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void reader_check(struct reader *r)
{
    assert_int_equal(pthread_join(r->tid, NULL), 0);
    assert_int_equal(r->err, 0);
    assert_int_equal(r->got, r->expect);
    if (r->bad_at != SIZE_MAX)
        fail_msg("content differs at offset %zu", r->bad_at);
}

/* ---- sk_write_all: short writes and EAGAIN on a non-blocking socket, slow reader */

static void test_write_all_nonblocking_slow_reader(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    assert_int_equal(sk_set_nonblock(sv[0], 1), 0);
    size_t len = 4 * MIB;
    uint8_t *data = make_pattern(len);
    struct reader r = {.fd = sv[1], .expect = len, .delay_ms = 50, .chunk = 3000, .pause_us = 20};
    reader_start(&r);
    int64_t t0 = sk_now_ms();
    assert_int_equal(sk_write_all(sv[0], data, len, t0 + 15000), (ssize_t)len);
    reader_check(&r);
    close(sv[0]);
    close(sv[1]);
    free(data);
}

/* ---- sk_write_all: EPIPE without SIGPIPE (MSG_NOSIGNAL), and the deadline */

static void test_write_all_epipe_no_signal(void **state)
{
    (void)state;
    int sv[2];
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    errno = 0;
    assert_int_equal(sk_write_all(sv[0], "hello", 5, sk_now_ms() + 2000), -1);
    assert_int_equal(errno, EPIPE);
    close(sv[0]);
}

static void test_write_all_deadline(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(sk_set_nonblock(sv[0], 1), 0);
    size_t len = 8 * MIB; /* more than any socket buffer; nobody reads */
    uint8_t *data = make_pattern(len);
    int64_t t0 = sk_now_ms();
    errno = 0;
    assert_int_equal(sk_write_all(sv[0], data, len, t0 + 100), -1);
    assert_int_equal(errno, ETIMEDOUT);
    int64_t took = sk_now_ms() - t0;
    assert_true(took >= 50 && took < 5000);
    close(sv[0]);
    close(sv[1]);
    free(data);
}

/* ---- sk_write_all: pipes take the write() fallback, blocking and non-blocking */

static void test_write_all_pipe(void **state)
{
    (void)state;
    int p[2];
    char buf[16];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(sk_write_all(p[1], "through a pipe", 14, -1), 14);
    assert_int_equal(sk_read_deadline(p[0], buf, sizeof buf, sk_now_ms() + 1000), 14);
    assert_memory_equal(buf, "through a pipe", 14);
    assert_int_equal(sk_write_all(p[1], "", 0, -1), 0);

    /* 1 MiB through a non-blocking pipe (64 KiB buffer): EAGAIN in the write() path */
    size_t len = MIB;
    uint8_t *data = make_pattern(len);
    assert_int_equal(sk_set_nonblock(p[1], 1), 0);
    struct reader r = {.fd = p[0], .expect = len, .delay_ms = 30, .chunk = 5000, .pause_us = 50};
    reader_start(&r);
    assert_int_equal(sk_write_all(p[1], data, len, sk_now_ms() + 15000), (ssize_t)len);
    reader_check(&r);
    close(p[0]);
    close(p[1]);
    free(data);
}

/* ---- sk_read_deadline: timeout, data, end of file */

static void test_read_deadline(void **state)
{
    (void)state;
    int sv[2];
    char buf[16];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

    int64_t t0 = sk_now_ms();
    errno = 0;
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, t0 + 100), -1);
    assert_int_equal(errno, ETIMEDOUT);
    int64_t took = sk_now_ms() - t0;
    assert_true(took >= 50 && took < 5000);

    assert_int_equal(write(sv[1], "abc", 3), 3);
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, sk_now_ms() + 1000), 3);
    assert_memory_equal(buf, "abc", 3);
    /* no deadline, data ready */
    assert_int_equal(write(sv[1], "de", 2), 2);
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, -1), 2);
    assert_memory_equal(buf, "de", 2);
    /* a deadline already past still returns data that is there */
    assert_int_equal(write(sv[1], "f", 1), 1);
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, sk_now_ms() - 10), 1);
    /* at most cap bytes */
    assert_int_equal(write(sv[1], "0123456789", 10), 10);
    assert_int_equal(sk_read_deadline(sv[0], buf, 4, sk_now_ms() + 1000), 4);
    assert_memory_equal(buf, "0123", 4);
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, sk_now_ms() + 1000), 6);

    close(sv[1]);
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, sk_now_ms() + 1000), 0);
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, -1), 0);
    close(sv[0]);

    errno = 0;
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, -1), -1); /* closed fd */
    assert_int_equal(errno, EBADF);
}

/* A thread that writes one message after a delay. */
struct late_writer {
    pthread_t tid;
    int fd;
    int delay_ms;
    const char *msg;
};

static void *late_writer_main(void *arg)
{
    struct late_writer *w = arg;
    sleep_ms(w->delay_ms);
    if (write(w->fd, w->msg, strlen(w->msg)) < 0)
        return (void *)1;
    return NULL;
}

static void late_writer_start(struct late_writer *w)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    assert_int_equal(pthread_create(&w->tid, NULL, late_writer_main, w), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void late_writer_join(struct late_writer *w)
{
    void *rv = (void *)1;
    assert_int_equal(pthread_join(w->tid, &rv), 0);
    assert_null(rv);
}

static void test_read_deadline_nonblocking_waits(void **state)
{
    (void)state;
    int sv[2];
    char buf[16];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(sk_set_nonblock(sv[0], 1), 0);
    /* non-blocking fd, no deadline: EAGAIN is waited out in poll */
    struct late_writer w = {.fd = sv[1], .delay_ms = 60, .msg = "late"};
    late_writer_start(&w);
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, -1), 4);
    assert_memory_equal(buf, "late", 4);
    late_writer_join(&w);
    close(sv[0]);
    close(sv[1]);
}

/* ---- sk_wait_fd and sk_now_ms */

static void test_wait_fd(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    int64_t t0 = sk_now_ms();
    assert_int_equal(sk_wait_fd(p[0], POLLIN, t0 + 80), 0);
    assert_true(sk_now_ms() - t0 >= 40);
    assert_int_equal(sk_wait_fd(p[0], POLLIN, 0), 0); /* long past */
    assert_int_equal(sk_wait_fd(p[1], POLLOUT, -1), 1);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(sk_wait_fd(p[0], POLLIN, sk_now_ms() + 1000), 1);
    assert_int_equal(sk_wait_fd(p[0], POLLIN, -1), 1);
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    /* hangup counts as ready: the next read reports it */
    assert_int_equal(sk_wait_fd(p[0], POLLIN, sk_now_ms() + 1000), 1);
    assert_int_equal(read(p[0], &c, 1), 0);
    close(p[0]);
}

static void test_now_ms(void **state)
{
    (void)state;
    int64_t a = sk_now_ms();
    sleep_ms(30);
    int64_t b = sk_now_ms();
    assert_true(a > 0);
    assert_true(b - a >= 25 && b - a < 5000);
}

/* ---- EINTR: a SIGALRM handler without SA_RESTART interrupts waits and reads */

static volatile sig_atomic_t ticks;

static void on_tick(int sig)
{
    (void)sig;
    /* a backstop of its own: a test stuck for ~20 s dies as alarm(20) would */
    if (++ticks > 1000) {
        signal(SIGALRM, SIG_DFL);
        raise(SIGALRM);
    }
}

static unsigned alarm_left; /* of the alarm(20) backstop, while ticking */

static void start_ticking(void)
{
    alarm_left = alarm(0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART */
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    ticks = 0;
    struct itimerval it = {.it_interval = {0, 20000}, .it_value = {0, 20000}};
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
}

/* Also the teardown of test_eintr, so a failed assertion does not leave it ticking. */
static int stop_ticking(void **state)
{
    (void)state;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_DFL);
    if (alarm_left)
        alarm(alarm_left);
    alarm_left = 0;
    return 0;
}

static void test_eintr(void **state)
{
    (void)state;
    int sv[2];
    char buf[16];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    start_ticking();

    /* with a deadline: interrupted polls still end in the data */
    struct late_writer w = {.fd = sv[1], .delay_ms = 150, .msg = "data"};
    late_writer_start(&w);
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, sk_now_ms() + 3000), 4);
    assert_memory_equal(buf, "data", 4);
    late_writer_join(&w);
    sig_atomic_t seen = ticks;

    /* with a deadline and no data: a timeout, not an early EINTR */
    int64_t t0 = sk_now_ms();
    errno = 0;
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, t0 + 200), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(sk_now_ms() - t0 >= 150);

    /* blocking read without a deadline: interrupted read() is retried */
    w.delay_ms = 150;
    w.msg = "later";
    late_writer_start(&w);
    assert_int_equal(sk_read_deadline(sv[0], buf, sizeof buf, -1), 5);
    assert_memory_equal(buf, "later", 5);
    late_writer_join(&w);

    /* sk_wait_fd: interrupted, still times out at its deadline */
    t0 = sk_now_ms();
    assert_int_equal(sk_wait_fd(sv[0], POLLIN, t0 + 150), 0);
    assert_true(sk_now_ms() - t0 >= 100);

    /* blocking sk_write_all of 2 MiB to a late reader: interrupted sends resume */
    size_t len = 2 * MIB;
    uint8_t *data = make_pattern(len);
    struct reader r = {.fd = sv[1], .expect = len, .delay_ms = 150, .chunk = 65536};
    reader_start(&r);
    assert_int_equal(sk_write_all(sv[0], data, len, -1), (ssize_t)len);
    reader_check(&r);
    free(data);

    sig_atomic_t total = ticks;
    stop_ticking(NULL);
    assert_true(seen >= 2);   /* the first read was interrupted several times */
    assert_true(total >= 10); /* and so were the others */
    close(sv[0]);
    close(sv[1]);
}

/* ---- sk_ignore_sigpipe: in a child, a write to a widowed pipe fails with EPIPE */

static void test_ignore_sigpipe(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int p[2];
        alarm(5);
        if (pipe(p) < 0)
            _exit(3);
        close(p[0]);
        sk_ignore_sigpipe();
        ssize_t n = sk_write_all(p[1], "x", 1, -1); /* write() path: no MSG_NOSIGNAL */
        _exit(n == -1 && errno == EPIPE ? 0 : 4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_all_nonblocking_slow_reader),
        cmocka_unit_test(test_write_all_epipe_no_signal),
        cmocka_unit_test(test_write_all_deadline),
        cmocka_unit_test(test_write_all_pipe),
        cmocka_unit_test(test_read_deadline),
        cmocka_unit_test(test_read_deadline_nonblocking_waits),
        cmocka_unit_test(test_wait_fd),
        cmocka_unit_test(test_now_ms),
        cmocka_unit_test_teardown(test_eintr, stop_ticking),
        cmocka_unit_test(test_ignore_sigpipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
