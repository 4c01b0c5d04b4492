/* test_server.c - sk_server_new's option checks, sk_server_listen and
 * sk_server_on_readable. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockit.h"

static const sk_service stream_only = {.name = "streamy", .flags = SK_SVC_STREAM};

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static sk_server *new_server(const char *model, int workers, sk_err *err)
{
    sk_server_opts o = {.service = &stream_only, .model = sk_model_find(model), .workers = workers};
    return sk_server_new(&o, err);
}

static void test_workers_need_a_model_with_workers(void **state)
{
    (void)state;
    sk_err err;
    assert_null(new_server("fork", 2, &err));
    assert_true(err.usage);
    assert_string_equal(err.msg, "--workers is not used by the fork model");
    assert_null(new_server("thread", 2, &err));
    assert_null(new_server("iterative", 1, &err));
    sk_server *s = new_server("prefork", 2, &err);
    assert_non_null(s);
    sk_server_free(s);
    s = new_server("poll", 2, &err);
    assert_non_null(s);
    sk_server_free(s);
}

static void test_listen_tcp_port0(void **state)
{
    (void)state;
    sk_err err;
    sk_server *s = new_server("poll", 0, &err);
    assert_non_null(s);
    assert_int_equal(sk_server_listen(s, "tcp://127.0.0.1:0", &err), 0);
    const sk_listener *l = sk_server_listener(s, 0);
    assert_non_null(l);
    assert_null(sk_server_listener(s, 1));
    assert_int_equal(l->transport, SK_TCP);
    assert_true(strncmp(l->name, "tcp://127.0.0.1:", 16) == 0);
    assert_string_not_equal(l->name, "tcp://127.0.0.1:0");
    sk_server_free(s);
}

static void test_listen_errors_leave_nothing_open(void **state)
{
    (void)state;
    sk_err err;
    sk_server *s = new_server("poll", 0, &err);
    assert_non_null(s);
    int before = open_fds();
    assert_int_equal(sk_server_listen(s, "tcp://:70000", &err), -1);
    assert_true(err.usage);
    assert_non_null(strstr(err.msg, "70000"));
    assert_int_equal(sk_server_listen(s, "udp://127.0.0.1:0", &err), -1);
    assert_true(err.usage);
    assert_string_equal(err.msg,
                        "service streamy does not run on datagram sockets (udp://127.0.0.1:0)");
    assert_null(sk_server_listener(s, 0));
    assert_int_equal(open_fds(), before);
    sk_server_free(s);
}

static void test_listen_unix_live_socket_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/sk_test_srv_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char addr[128];
    snprintf(addr, sizeof addr, "unix:%s/s.sock", dir);
    sk_err err;
    sk_server *a = new_server("poll", 0, &err), *b = new_server("poll", 0, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(sk_server_listen(a, addr, &err), 0);
    assert_string_equal(sk_server_listener(a, 0)->name, addr);
    int before = open_fds();
    assert_int_equal(sk_server_listen(b, addr, &err), -1); /* a live server's file */
    assert_false(err.usage);
    assert_int_equal(open_fds(), before);
    sk_server_free(b);
    sk_server_free(a); /* removes the socket file */
    char path[128];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    assert_int_equal(access(path, F_OK), -1);
    rmdir(dir);
}

struct hook_seen {
    char bytes[16];
    int n;
};

/* Reads what is there; a 'x' stops the server (as the CLI's stop notice may). */
static int on_pipe(sk_server *s, int fd, void *arg)
{
    struct hook_seen *h = arg;
    char c;
    ssize_t r;
    while ((r = read(fd, &c, 1)) == 1) {
        if (h->n < (int)sizeof h->bytes)
            h->bytes[h->n++] = c;
        if (c == 'x')
            sk_server_stop(s);
    }
    return r < 0 && errno == EAGAIN ? 0 : -1;
}

static void test_on_readable_runs_in_the_loop(void **state)
{
    (void)state;
    static const char *const loops[] = {"select", "poll", "epoll", "uring"};
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
        if (sk_model_find(loops[i]) == NULL)
            continue; /* not in this build */
        sk_err err;
        sk_server *s = new_server(loops[i], 2, &err);
        assert_non_null(s);
        assert_int_equal(sk_server_listen(s, "tcp://127.0.0.1:0", &err), 0);
        int p[2];
        assert_int_equal(pipe(p), 0);
        assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
        struct hook_seen h = {{0}, 0};
        assert_int_equal(sk_server_on_readable(s, p[0], on_pipe, &h, &err), 1);
        assert_int_equal(write(p[1], "ax", 2), 2);
        int rc = sk_server_run(s, &err);
        if (rc < 0 && strcmp(loops[i], "uring") == 0) {
            /* no io_uring in this kernel (or it is forbidden): nothing to test */
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(h.n, 2);
            assert_memory_equal(h.bytes, "ax", 2);
        }
        sk_server_free(s);
        close(p[0]);
        close(p[1]);
    }
}

static void test_on_readable_refused(void **state)
{
    (void)state;
    sk_err err;
    /* A blocking model has no loop: 0, the caller waits itself. */
    sk_server *s = new_server("thread", 0, &err);
    assert_non_null(s);
    assert_int_equal(sk_server_on_readable(s, 0, on_pipe, NULL, &err), 0);
    sk_server_free(s);
    s = new_server("poll", 0, &err);
    assert_non_null(s);
    assert_int_equal(sk_server_on_readable(s, -1, on_pipe, NULL, &err), -1);
    assert_true(err.usage);
    for (int i = 0; i < SK_SERVER_HOOKS_MAX; i++)
        assert_int_equal(sk_server_on_readable(s, 0, on_pipe, NULL, &err), 1);
    assert_int_equal(sk_server_on_readable(s, 0, on_pipe, NULL, &err), -1);
    assert_true(err.usage);
    sk_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers_need_a_model_with_workers),
        cmocka_unit_test(test_listen_tcp_port0),
        cmocka_unit_test(test_listen_errors_leave_nothing_open),
        cmocka_unit_test(test_listen_unix_live_socket_refused),
        cmocka_unit_test(test_on_readable_runs_in_the_loop),
        cmocka_unit_test(test_on_readable_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
