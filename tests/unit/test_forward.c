/* test_forward.c - the forwarder as a C program uses it (sockit.h only):
 * sk_forward_service configured by name and run by an sk_server, and
 * sk_forward_udp in a thread, stopped through its stop_fd. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

static void test_settings(void **state)
{
    (void)state;
    sk_err err;
    const sk_service *fwd = sk_forward_service();
    assert_non_null(fwd);
    void *cfg = sk_service_config_new(fwd, &err);
    assert_non_null(cfg);
    assert_int_equal(sk_service_set(fwd, cfg, "target", "udp://127.0.0.1:9", &err), -1);
    assert_true(err.usage);
    assert_non_null(strstr(err.msg, "is a datagram address"));
    assert_int_equal(sk_service_set(fwd, cfg, "target", "tcp://:99999", &err), -1);
    assert_non_null(strstr(err.msg, "port out of range"));
    assert_int_equal(sk_service_set(fwd, cfg, "linger", "soon", &err), -1);
    /* No target: the server refuses to start. */
    sk_server_opts o = {.service = fwd, .service_config = cfg};
    assert_null(sk_server_new(&o, &err));
    assert_true(err.usage);
    assert_non_null(strstr(err.msg, "no target"));
    sk_service_config_free(fwd, cfg);
}

/* A TCP server in a thread: reads to the end, answers "got N", closes. */
struct counter {
    int ls;
    unsigned short port;
    pthread_t tid;
};

static void *count_main(void *arg)
{
    struct counter *k = arg;
    int fd = accept(k->ls, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t r = sk_read_deadline(fd, buf, sizeof buf, sk_now_ms() + 10000);
        if (r <= 0)
            break;
        total += (size_t)r;
    }
    char reply[64];
    int n = snprintf(reply, sizeof reply, "got %zu", total);
    sk_write_all(fd, reply, (size_t)n, sk_now_ms() + 5000);
    close(fd);
    return NULL;
}

static void start_counter(struct counter *k)
{
    k->ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(k->ls >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(k->ls, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(k->ls, 4), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(k->ls, (struct sockaddr *)&sin, &len), 0);
    k->port = ntohs(sin.sin_port);
    assert_int_equal(pthread_create(&k->tid, NULL, count_main, k), 0);
}

static void *run_server(void *arg)
{
    sk_err err;
    return (void *)(intptr_t)sk_server_run(arg, &err);
}

/* The stream relay through the API: 300 KB up (past the switch to splice),
 * the client's end of stream passed on, the target's answer back. */
static void stream_relay(const char *model)
{
    sk_err err;
    struct counter k;
    start_counter(&k);
    const sk_service *fwd = sk_forward_service();
    void *cfg = sk_service_config_new(fwd, &err);
    assert_non_null(cfg);
    char target[64];
    snprintf(target, sizeof target, "tcp://127.0.0.1:%u", k.port);
    assert_int_equal(sk_service_set(fwd, cfg, "target", target, &err), 0);
    assert_int_equal(sk_service_set(fwd, cfg, "connect-timeout", "5", &err), 0);
    sk_server_opts o = {.service = fwd, .model = sk_model_find(model), .service_config = cfg};
    sk_server *s = sk_server_new(&o, &err);
    assert_non_null(s);
    assert_int_equal(sk_server_listen(s, "tcp://127.0.0.1:0", &err), 0);
    const sk_listener *l = sk_server_listener(s, 0);
    char word[SK_NAME_MAX];
    sk_sockaddr_format((const struct sockaddr *)&l->local.sa, l->local.len, SK_TCP, word,
                       sizeof word);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_server, s), 0);

    sk_addr a;
    assert_int_equal(sk_addr_parse(&a, word, &err), 0);
    int fd = sk_connect(&a, 5000, NULL, &err);
    assert_true(fd >= 0);
    static char big[300000];
    memset(big, 'x', sizeof big);
    assert_int_equal(sk_write_all(fd, big, sizeof big, sk_now_ms() + 10000), (ssize_t)sizeof big);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    char reply[64];
    size_t got = 0;
    for (;;) {
        ssize_t r = sk_read_deadline(fd, reply + got, sizeof reply - 1 - got, sk_now_ms() + 10000);
        assert_true(r >= 0);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    reply[got] = '\0';
    assert_string_equal(reply, "got 300000");
    close(fd);

    sk_server_stop(s);
    void *rc;
    assert_int_equal(pthread_join(t, &rc), 0);
    assert_int_equal((int)(intptr_t)rc, 0);
    sk_server_free(s);
    sk_service_config_free(fwd, cfg);
    pthread_join(k.tid, NULL);
    close(k.ls);
}

static void test_stream_relay_epoll(void **state)
{
    (void)state;
    stream_relay(sk_model_find("epoll") ? "epoll" : "poll");
}

static void test_stream_relay_thread(void **state)
{
    (void)state;
    stream_relay("thread");
}

/* ---- UDP ---- */

struct udp_run {
    int lfd;
    sk_addr target;
    sk_forward_udp_opts o;
    sk_forward_udp_stats st;
    int rc;
    pthread_t tid;
};

static void *udp_main(void *arg)
{
    struct udp_run *u = arg;
    sk_err err;
    u->rc = sk_forward_udp(u->lfd, &u->target, &u->o, &u->st, &err);
    return NULL;
}

static int udp_socket(unsigned short *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void test_udp_relay(void **state)
{
    (void)state;
    unsigned short tport, lport, cport;
    int target = udp_socket(&tport); /* the test answers for the target */
    struct udp_run u = {0};
    u.lfd = udp_socket(&lport);
    char word[64];
    snprintf(word, sizeof word, "udp://127.0.0.1:%u", tport);
    sk_err err;
    assert_int_equal(sk_addr_parse(&u.target, word, &err), 0);
    int stop[2];
    assert_int_equal(pipe2(stop, O_CLOEXEC), 0);
    u.o = (sk_forward_udp_opts){.stop_fd = stop[0], .idle_timeout_ms = 5000};
    assert_int_equal(pthread_create(&u.tid, NULL, udp_main, &u), 0);

    int client = udp_socket(&cport);
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_port = htons(lport), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(sendto(client, "ping", 4, 0, (struct sockaddr *)&to, sizeof to), 4);
    char buf[64];
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(target, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_not_equal(ntohs(from.sin_port), cport); /* the session's own socket */
    /* Two answers to one datagram: a relay passes both on. */
    assert_int_equal(sendto(target, "pong1", 5, 0, (struct sockaddr *)&from, flen), 5);
    assert_int_equal(sendto(target, "pong2", 5, 0, (struct sockaddr *)&from, flen), 5);
    assert_int_equal(recv(client, buf, sizeof buf, 0), 5);
    assert_memory_equal(buf, "pong1", 5);
    assert_int_equal(recv(client, buf, sizeof buf, 0), 5);
    assert_memory_equal(buf, "pong2", 5);

    /* Bursts past one batch (recvmmsg/sendmmsg) each way, in order. */
    for (int i = 0; i < 40; i++) {
        char d[16];
        int len = snprintf(d, sizeof d, "up %d", i);
        assert_int_equal(sendto(client, d, (size_t)len, 0, (struct sockaddr *)&to, sizeof to), len);
    }
    for (int i = 0; i < 40; i++) {
        char want[16];
        int len = snprintf(want, sizeof want, "up %d", i);
        assert_int_equal(recv(target, buf, sizeof buf, 0), len);
        assert_memory_equal(buf, want, (size_t)len);
    }
    for (int i = 0; i < 40; i++) {
        char d[16];
        int len = snprintf(d, sizeof d, "down %d", i);
        assert_int_equal(sendto(target, d, (size_t)len, 0, (struct sockaddr *)&from, flen), len);
    }
    for (int i = 0; i < 40; i++) {
        char want[16];
        int len = snprintf(want, sizeof want, "down %d", i);
        assert_int_equal(recv(client, buf, sizeof buf, 0), len);
        assert_memory_equal(buf, want, (size_t)len);
    }

    assert_int_equal(write(stop[1], "s", 1), 1);
    assert_int_equal(pthread_join(u.tid, NULL), 0);
    assert_int_equal(u.rc, 0);
    assert_int_equal(u.st.sessions, 1);
    assert_int_equal(u.st.to_target, 41);
    assert_int_equal(u.st.from_target, 42);
    close(client);
    close(target);
    close(u.lfd);
    close(stop[0]);
    close(stop[1]);
}

static void test_udp_refuses_stream_target(void **state)
{
    (void)state;
    unsigned short port;
    int fd = udp_socket(&port);
    sk_addr t;
    sk_err err;
    assert_int_equal(sk_addr_parse(&t, "tcp://127.0.0.1:9", &err), 0);
    assert_int_equal(sk_forward_udp(fd, &t, NULL, NULL, &err), -1);
    assert_true(err.usage);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_stream_relay_epoll),
        cmocka_unit_test(test_stream_relay_thread),
        cmocka_unit_test(test_udp_relay),
        cmocka_unit_test(test_udp_refuses_stream_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
