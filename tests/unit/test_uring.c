/* test_uring.c - unit tests for the io_uring model: its pure helpers
 * (staging a send, tagging completions) everywhere, and, where the model is
 * built, a service's second descriptor (sk_conn_watch) and half-close driven
 * by it in process, next to the epoll model as the reference. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "sockit.h"
#include "uring.h"

static void test_stage_copies_in_order_up_to_cap(void **state)
{
    (void)state;
    char a[] = "hello ", b[] = "", c[] = "world";
    struct iovec iov[3] = {{a, 6}, {b, 0}, {c, 5}};
    uint8_t out[32];
    memset(out, '#', sizeof out);
    assert_int_equal(sk__uring_stage(iov, 3, out, sizeof out), 11);
    assert_memory_equal(out, "hello world", 11);
    assert_int_equal(out[11], '#');
    memset(out, '#', sizeof out);
    assert_int_equal(sk__uring_stage(iov, 3, out, 8), 8); /* cut inside the second part */
    assert_memory_equal(out, "hello wo", 8);
    assert_int_equal(out[8], '#');
    assert_int_equal(sk__uring_stage(iov, 3, out, 0), 0);
    assert_int_equal(sk__uring_stage(iov, 0, out, 32), 0);
}

static void test_user_data_round_trips(void **state)
{
    (void)state;
    void *p = malloc(64); /* malloc's alignment leaves the tag bits free */
    assert_non_null(p);
    assert_int_equal((uintptr_t)p & SK_URING_TAG_MASK, 0);
    for (unsigned tag = 0; tag <= SK_URING_TAG_MASK; tag++) {
        uint64_t ud = sk__uring_ud(p, tag);
        assert_ptr_equal(sk__uring_ud_obj(ud), p);
        assert_int_equal(sk__uring_ud_tag(ud), tag);
    }
    assert_int_equal(sk__uring_ud(NULL, 0), 0); /* "ignore this completion" */
    free(p);
}

#ifdef SK_HAVE_URING
/* A service that passes the peer's bytes through a pipe it watches: what the
 * peer sends is written into the pipe; what the watch reads comes back. At
 * the peer's EOF the pipe's write end closes; at the pipe's EOF the
 * connection closes. "half" in the input makes it half-close instead
 * (sk_conn_shutdown) once it has answered, and count what still arrives. */
typedef struct pipe_conn {
    int rd, wr;
    int half;
} pipe_conn;

static atomic_int after_half; /* bytes the service saw after its half-close */

static void pipe_readable(sk_conn *c, int fd, unsigned fired, void *arg)
{
    (void)fired;
    (void)arg;
    pipe_conn *p = sk_conn_data(c);
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        sk_conn_send(c, buf, (size_t)n);
        if (memmem(buf, (size_t)n, "half", 4) && !p->half) {
            p->half = 1;
            sk_conn_shutdown(c);
        }
        return;
    }
    if (n < 0 && errno == EAGAIN)
        return;
    sk_conn_watch(c, p->rd, 0, NULL, NULL);
    close(p->rd);
    p->rd = -1;
    sk_conn_close(c);
}

static void pipe_open(sk_conn *c)
{
    pipe_conn *p = sk_conn_data(c);
    int fds[2];
    p->rd = p->wr = -1;
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        sk_conn_close(c);
        return;
    }
    p->rd = fds[0];
    p->wr = fds[1];
    if (sk_conn_watch(c, p->rd, SK_WATCH_READ, pipe_readable, NULL) < 0)
        sk_conn_close(c);
}

static void pipe_data(sk_conn *c, const uint8_t *data, size_t len)
{
    pipe_conn *p = sk_conn_data(c);
    if (p->half) {
        atomic_fetch_add(&after_half, (int)len);
        return;
    }
    if (p->wr >= 0 && write(p->wr, data, len) != (ssize_t)len)
        sk_conn_close(c);
}

static void pipe_eof(sk_conn *c)
{
    pipe_conn *p = sk_conn_data(c);
    if (p->half) {
        sk_conn_close(c);
        return;
    }
    if (p->wr >= 0)
        close(p->wr);
    p->wr = -1;
}

static void pipe_close(sk_conn *c)
{
    pipe_conn *p = sk_conn_data(c);
    if (p->rd >= 0)
        close(p->rd);
    if (p->wr >= 0)
        close(p->wr);
}

static const sk_service pipe_svc = {
    .name = "pipe",
    .flags = SK_SVC_STREAM,
    .conn_size = sizeof(pipe_conn),
    .on_open = pipe_open,
    .on_data = pipe_data,
    .on_eof = pipe_eof,
    .on_close = pipe_close,
};

/* Echo that pauses its input for a while at each "P" (sk_conn_pause_read):
 * what comes meanwhile, the peer's EOF included, must arrive afterwards, in
 * order. */
static atomic_int while_paused; /* input the service was given while paused */

static void pause_data(sk_conn *c, const uint8_t *data, size_t len)
{
    int *paused = sk_conn_data(c);
    if (*paused)
        atomic_fetch_add(&while_paused, (int)len);
    sk_conn_send(c, data, len);
    if (memchr(data, 'P', len)) {
        *paused = 1;
        sk_conn_pause_read(c, 1);
        sk_conn_set_timer(c, 200);
    }
}

static void pause_timeout(sk_conn *c)
{
    *(int *)sk_conn_data(c) = 0;
    sk_conn_pause_read(c, 0);
}

static const sk_service pause_svc = {
    .name = "pause",
    .flags = SK_SVC_STREAM,
    .conn_size = sizeof(int),
    .on_data = pause_data,
    .on_timeout = pause_timeout,
};

static void *serve(void *arg)
{
    sk_err err;
    return (void *)(intptr_t)sk_server_run(arg, &err);
}

/* Read until EOF (or cap bytes), bounded by 5 s per wait. */
static size_t read_to_eof(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1)
            fail_msg("no answer within 5 s");
        ssize_t r = read(fd, buf + n, cap - n);
        if (r <= 0 || (n += (size_t)r) == cap)
            return n;
    }
}

static void check_server(const char *model, const sk_service *svc)
{
    sk_err err;
    sk_server_opts o = {.service = svc, .model = sk_model_find(model)};
    assert_non_null(o.model);
    sk_server *s = sk_server_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(sk_server_listen(s, "tcp://127.0.0.1:0", &err), 0);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(sk_server_listener(s, 0)->fd, (struct sockaddr *)&a, &alen), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, serve, s), 0);
    char buf[64];
    size_t n;
    int fd;
    if (svc == &pause_svc) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, alen), 0);
        assert_int_equal(write(fd, "P", 1), 1);
        n = read_to_eof(fd, buf, 1); /* the echo of P: input is paused now */
        assert_int_equal(n, 1);
        assert_int_equal(write(fd, "abc", 3), 3);
        shutdown(fd, SHUT_WR);
        n = read_to_eof(fd, buf, sizeof buf);
        assert_int_equal(n, 3);
        assert_memory_equal(buf, "abc", 3);
        assert_int_equal(atomic_load(&while_paused), 0);
        close(fd);
        /* The same without waiting for the echo: what follows "P" may come
         * in the same batch of completions and must be kept, EOF included. */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, alen), 0);
        assert_int_equal(write(fd, "P", 1), 1);
        assert_int_equal(write(fd, "xyz", 3), 3);
        shutdown(fd, SHUT_WR);
        n = read_to_eof(fd, buf, sizeof buf);
        assert_int_equal(n, 4);
        assert_memory_equal(buf, "Pxyz", 4);
        assert_int_equal(atomic_load(&while_paused), 0);
        close(fd);
        goto stop;
    }

    /* Through the pipe and back, then the close the pipe's EOF makes. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, alen), 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    shutdown(fd, SHUT_WR);
    n = read_to_eof(fd, buf, sizeof buf);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "hello", 5);
    close(fd);

    /* Half-close: the answer, then our EOF, and the peer's bytes still
     * reach the service. */
    atomic_store(&after_half, 0);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, alen), 0);
    assert_int_equal(write(fd, "half", 4), 4);
    n = read_to_eof(fd, buf, sizeof buf);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "half", 4);
    assert_int_equal(write(fd, "more", 4), 4);
    shutdown(fd, SHUT_WR);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1); /* the server's close after our EOF */
    close(fd);
    for (int i = 0; i < 500 && atomic_load(&after_half) < 4; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&after_half), 4);

stop:
    sk_server_stop(s);
    void *rc;
    assert_int_equal(pthread_join(t, &rc), 0);
    assert_int_equal((intptr_t)rc, 0);
    sk_server_free(s);
}

static void test_watch_and_half_close_epoll(void **state)
{
    (void)state;
    check_server("epoll", &pipe_svc); /* the reference the uring model must match */
}

static void test_pause_read_epoll(void **state)
{
    (void)state;
    check_server("epoll", &pause_svc);
}

static int have_uring(void)
{
    struct io_uring r;
    if (io_uring_queue_init(4, &r, 0) < 0)
        return 0; /* io_uring disabled here: nothing to test */
    io_uring_queue_exit(&r);
    return 1;
}

static void test_pause_read_uring(void **state)
{
    (void)state;
    if (!have_uring())
        skip();
    check_server("uring", &pause_svc);
}

static void test_watch_and_half_close_uring(void **state)
{
    (void)state;
    if (!have_uring())
        skip();
    check_server("uring", &pipe_svc);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_copies_in_order_up_to_cap),
        cmocka_unit_test(test_user_data_round_trips),
#ifdef SK_HAVE_URING
        cmocka_unit_test(test_watch_and_half_close_epoll),
        cmocka_unit_test(test_watch_and_half_close_uring),
        cmocka_unit_test(test_pause_read_epoll),
        cmocka_unit_test(test_pause_read_uring),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
