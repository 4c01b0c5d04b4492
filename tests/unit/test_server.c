/* test_server.c - sk_server_new's option checks and sk_server_listen. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers_need_a_model_with_workers),
        cmocka_unit_test(test_listen_tcp_port0),
        cmocka_unit_test(test_listen_errors_leave_nothing_open),
        cmocka_unit_test(test_listen_unix_live_socket_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
