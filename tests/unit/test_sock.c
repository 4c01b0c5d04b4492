/* test_sock.c - unit tests for src/lib/sock.c: sk_listen, sk_connect, sk_accept, fd flags. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockit.h"

static char tmpdir[64];

/* printf into one of a few rotating static buffers */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
    static char bufs[4][SK_ERR_MAX];
    static unsigned k;
    char *b = bufs[k++ % 4];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, SK_ERR_MAX, f, ap);
    va_end(ap);
    return b;
}

static const char *tpath(const char *name)
{
    static char p[SK_UNIX_PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static unsigned port_of(const sk_endpoint *e)
{
    if (e->family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&e->sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&e->sa)->sin6_port);
}

static void assert_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    assert_true(fl >= 0);
    if (!(fl & FD_CLOEXEC))
        fail_msg("fd %d is not close-on-exec", fd);
}

static int is_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    return (fl & O_NONBLOCK) != 0;
}

/* Every descriptor the library hands out below is checked for close-on-exec,
 * and sk_connect's for being blocking. */
static size_t listen_ok(const char *text, const sk_listen_opts *o, sk_listener *out, size_t cap)
{
    sk_addr a;
    sk_err err = {0};
    size_t n = 99;
    if (sk_addr_parse(&a, text, &err) != 0)
        fail_msg("parse \"%s\": %s", text, err.msg);
    if (sk_listen(&a, o, out, cap, &n, &err) != 0)
        fail_msg("listen \"%s\": %s", text, err.msg);
    for (size_t i = 0; i < n; i++)
        assert_cloexec(out[i].fd);
    return n;
}

/* sk_listen expected to fail; returns its message in err */
static void listen_fails(const char *text, sk_err *err)
{
    sk_addr a;
    sk_listener l[2];
    size_t n = 99;
    memset(err, 0, sizeof *err);
    assert_int_equal(sk_addr_parse(&a, text, err), 0);
    assert_int_equal(sk_listen(&a, NULL, l, 2, &n, err), -1);
    assert_int_equal(n, 0);
    assert_int_equal(err->usage, 0);
}

static int connect_ok(const char *text)
{
    sk_addr a;
    sk_err err = {0};
    if (sk_addr_parse(&a, text, &err) != 0)
        fail_msg("parse \"%s\": %s", text, err.msg);
    int fd = sk_connect(&a, 2000, NULL, &err);
    if (fd < 0)
        fail_msg("connect \"%s\": %s", text, err.msg);
    assert_cloexec(fd);
    assert_false(is_nonblock(fd));
    return fd;
}

/* Send a word each way between two connected stream sockets. */
static void exchange(int x, int y)
{
    char buf[16];
    int64_t dl = sk_now_ms() + 2000;
    assert_int_equal(sk_write_all(x, "ping", 4, dl), 4);
    assert_int_equal(sk_read_deadline(y, buf, sizeof buf, dl), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(sk_write_all(y, "pong!", 5, dl), 5);
    assert_int_equal(sk_read_deadline(x, buf, sizeof buf, dl), 5);
    assert_memory_equal(buf, "pong!", 5);
}

static int accept_ok(int lfd)
{
    assert_int_equal(sk_wait_fd(lfd, POLLIN, sk_now_ms() + 2000), 1);
    int fd = sk_accept(lfd, NULL, NULL, 0);
    assert_true(fd >= 0);
    assert_cloexec(fd);
    return fd;
}

/* A client connects to `text`, the listener accepts it, and they talk. With
 * `probed`, skip one empty connection that a liveness probe left in the backlog. */
static void serves(int lfd, const char *text, int probed)
{
    char buf[8];
    int c = connect_ok(text), s;
    assert_int_equal(sk_write_all(c, "hi", 2, sk_now_ms() + 2000), 2);
    ssize_t r = sk_read_deadline(s = accept_ok(lfd), buf, sizeof buf, sk_now_ms() + 2000);
    if (r == 0 && probed) {
        close(s);
        r = sk_read_deadline(s = accept_ok(lfd), buf, sizeof buf, sk_now_ms() + 2000);
    }
    assert_int_equal(r, 2);
    exchange(c, s);
    close(c);
    close(s);
}

static int file_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* ---- TCP listeners: kernel-chosen port, address in use, dual stack */

static void test_listen_tcp_port0(void **state)
{
    (void)state;
    sk_listener l;
    assert_int_equal(listen_ok("127.0.0.1:0", NULL, &l, 1), 1);
    assert_true(l.fd >= 0);
    assert_int_equal(l.transport, SK_TCP);
    assert_int_equal(l.local.family, AF_INET);
    unsigned port = port_of(&l.local);
    assert_true(port > 0 && port <= 65535);
    const char *want = fmt("tcp://127.0.0.1:%u", port);
    assert_string_equal(l.name, want);
    assert_string_equal(l.unlink_path, "");
    int acc = 0;
    socklen_t sl = sizeof acc;
    assert_int_equal(getsockopt(l.fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl), 0);
    assert_int_equal(acc, 1);
    assert_false(is_nonblock(l.fd));

    want = fmt("127.0.0.1:%u", port);
    serves(l.fd, want, 0);
    sk_listener_close(&l);
    assert_int_equal(l.fd, -1);
}

static void test_listen_in_use(void **state)
{
    (void)state;
    sk_listener l;
    sk_err err;
    assert_int_equal(listen_ok("127.0.0.1:0", NULL, &l, 1), 1);
    unsigned port = port_of(&l.local);
    const char *text = fmt("127.0.0.1:%u", port);
    listen_fails(text, &err);
    const char *want = fmt("bind tcp://127.0.0.1:%u", port);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "Address already in use"));
    assert_int_equal(err.code, EADDRINUSE);
    sk_listener_close(&l);
}

static void test_listen_wildcard_dual_stack(void **state)
{
    (void)state;
    sk_listener l[4];
    char buf[SK_NAME_MAX];
    assert_int_equal(listen_ok("0", NULL, l, 4), 1);
    assert_int_equal(l[0].local.family, AF_INET6);
    unsigned port = port_of(&l[0].local);
    assert_true(port > 0);
    const char *text = fmt("tcp://[::]:%u", port);
    assert_string_equal(l[0].name, text);

    text = fmt("127.0.0.1:%u", port);
    int c4 = connect_ok(text);
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    assert_int_equal(sk_wait_fd(l[0].fd, POLLIN, sk_now_ms() + 2000), 1);
    int s4 = sk_accept(l[0].fd, (struct sockaddr *)&peer, &pl, 0);
    assert_true(s4 >= 0);
    /* the IPv4 peer arrives IPv4-mapped and prints as IPv4 */
    sk_sockaddr_format((struct sockaddr *)&peer, pl, SK_TCP, buf, sizeof buf);
    assert_int_equal(strncmp(buf, "tcp://127.0.0.1:", 16), 0);
    exchange(c4, s4);

    text = fmt("[::1]:%u", port);
    serves(l[0].fd, text, 0);
    close(c4);
    close(s4);
    sk_listener_close(&l[0]);

    /* UDP wildcard: one socket too */
    assert_int_equal(listen_ok("udp://:0", NULL, l, 4), 1);
    assert_int_equal(l[0].transport, SK_UDP);
    assert_int_equal(l[0].local.family, AF_INET6);
    assert_int_equal(strncmp(l[0].name, "udp://[::]:", 11), 0);
    sk_listener_close(&l[0]);
}

/* ---- sk_connect failures */

static void test_connect_refused(void **state)
{
    (void)state;
    sk_listener l;
    sk_addr a;
    sk_err err = {0};
    /* a port that was just free: bind it, note it, close it */
    assert_int_equal(listen_ok("127.0.0.1:0", NULL, &l, 1), 1);
    unsigned port = port_of(&l.local);
    sk_listener_close(&l);
    const char *text = fmt("127.0.0.1:%u", port);
    assert_int_equal(sk_addr_parse(&a, text, &err), 0);
    assert_int_equal(sk_connect(&a, 2000, NULL, &err), -1);
    const char *want = fmt("connect tcp://127.0.0.1:%u: Connection refused", port);
    assert_string_equal(err.msg, want);
    assert_int_equal(err.code, ECONNREFUSED);
    assert_int_equal(err.usage, 0);

    /* a Unix path with nothing there */
    text = fmt("unix:%s", tpath("nothing"));
    assert_int_equal(sk_addr_parse(&a, text, &err), 0);
    assert_int_equal(sk_connect(&a, 0, NULL, &err), -1);
    want = fmt("connect unix:%s: No such file or directory", tpath("nothing"));
    assert_string_equal(err.msg, want);
    assert_int_equal(err.code, ENOENT);
}

static void test_connect_peer(void **state)
{
    (void)state;
    sk_listener l;
    sk_addr a;
    sk_endpoint peer;
    assert_int_equal(listen_ok("[::1]:0", NULL, &l, 1), 1);
    const char *text = fmt("[::1]:%u", port_of(&l.local));
    assert_int_equal(sk_addr_parse(&a, text, NULL), 0);
    memset(&peer, 0, sizeof peer);
    int c = sk_connect(&a, 0, &peer, NULL);
    assert_true(c >= 0);
    assert_int_equal(peer.family, AF_INET6);
    assert_int_equal(peer.socktype, SOCK_STREAM);
    assert_int_equal(port_of(&peer), port_of(&l.local));
    assert_false(is_nonblock(c)); /* sk_connect returns a blocking fd */
    close(c);
    sk_listener_close(&l);
}

/* ---- Unix stream listeners: socket files, stale files, live servers, foreign files */

static void test_unix_listen_close_removes(void **state)
{
    (void)state;
    sk_listener l;
    const char *p = tpath("s.sock");
    const char *text = fmt("unix:%s", p);
    assert_int_equal(listen_ok(text, NULL, &l, 1), 1);
    assert_int_equal(l.transport, SK_UNIX);
    assert_string_equal(l.name, text);
    assert_string_equal(l.unlink_path, p);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));

    serves(l.fd, text, 0);
    sk_listener_close(&l);
    assert_false(file_exists(p));
    sk_listener_close(&l); /* twice is harmless */
}

static void test_unix_stale_replaced(void **state)
{
    (void)state;
    sk_listener l;
    const char *p = tpath("stale.sock");
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    snprintf(su.sun_path, sizeof su.sun_path, "%s", p);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&su, sizeof su), 0);
    close(fd); /* a dead server's leftover file */
    assert_true(file_exists(p));

    const char *text = fmt("unix:%s", p);
    assert_int_equal(listen_ok(text, NULL, &l, 1), 1);
    serves(l.fd, text, 0);
    sk_listener_close(&l);
    assert_false(file_exists(p));
}

static void test_unix_live_server_kept(void **state)
{
    (void)state;
    static const char *const kinds[] = {"unix", "unixgram"};
    for (size_t i = 0; i < 2; i++) {
        sk_listener l;
        sk_err err;
        const char *p = tpath("live.sock");
        const char *text = fmt("%s:%s", kinds[i], p);
        assert_int_equal(listen_ok(text, NULL, &l, 1), 1);
        listen_fails(text, &err);
        assert_non_null(strstr(err.msg, "Address already in use"));
        assert_non_null(strstr(err.msg, text));
        assert_int_equal(err.code, EADDRINUSE);
        assert_true(file_exists(p)); /* the live server keeps its file */
        if (i == 0)
            serves(l.fd, text, 1); /* still serving */
        sk_listener_close(&l);
        assert_false(file_exists(p));
    }
}

static void test_unix_regular_file_kept(void **state)
{
    (void)state;
    sk_err err;
    char buf[16] = {0};
    const char *p = tpath("regular");
    int fd = open(p, O_CREAT | O_EXCL | O_RDWR, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "data", 4), 4);
    const char *text = fmt("unix:%s", p);
    listen_fails(text, &err);
    assert_non_null(strstr(err.msg, "not a socket"));
    assert_non_null(strstr(err.msg, p));
    assert_int_equal(pread(fd, buf, sizeof buf, 0), 4); /* still there, untouched */
    assert_string_equal(buf, "data");
    close(fd);
    unlink(p);
}

static void test_unix_close_keeps_foreign_file(void **state)
{
    (void)state;
    sk_listener l, l2;
    const char *p = tpath("foreign.sock");
    const char *text = fmt("unix:%s", p);
    assert_int_equal(listen_ok(text, NULL, &l, 1), 1);
    /* someone removes our file and a newer server binds the same path */
    assert_int_equal(unlink(p), 0);
    assert_int_equal(listen_ok(text, NULL, &l2, 1), 1);
    sk_listener_close(&l);
    assert_true(file_exists(p)); /* not ours any more: left alone */
    serves(l2.fd, text, 0);
    sk_listener_close(&l2);
    assert_false(file_exists(p));
}

/* ---- Unix datagrams: the client autobinds and gets replies */

static void test_unixgram_exchange(void **state)
{
    (void)state;
    sk_listener l;
    char buf[64];
    const char *text = fmt("unixgram:%s", tpath("dg.sock"));
    assert_int_equal(listen_ok(text, NULL, &l, 1), 1);
    assert_int_equal(l.transport, SK_UNIXGRAM);
    assert_int_equal(l.local.socktype, SOCK_DGRAM);
    assert_string_equal(l.name, text);

    int c = connect_ok(text);
    struct sockaddr_un me;
    socklen_t ml = sizeof me;
    assert_int_equal(getsockname(c, (struct sockaddr *)&me, &ml), 0);
    assert_true(ml > offsetof(struct sockaddr_un, sun_path) + 1);
    assert_int_equal(me.sun_path[0], '\0'); /* autobound abstract name */

    assert_int_equal(send(c, "question", 8, 0), 8);
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    assert_int_equal(sk_wait_fd(l.fd, POLLIN, sk_now_ms() + 2000), 1);
    assert_int_equal(recvfrom(l.fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 8);
    assert_memory_equal(buf, "question", 8);
    assert_int_equal(fl, ml);
    assert_memory_equal(&from, &me, ml);
    assert_int_equal(sendto(l.fd, "answer", 6, 0, (struct sockaddr *)&from, fl), 6);
    assert_int_equal(sk_read_deadline(c, buf, sizeof buf, sk_now_ms() + 2000), 6);
    assert_memory_equal(buf, "answer", 6);
    close(c);
    sk_listener_close(&l);
    assert_false(file_exists(tpath("dg.sock")));
}

/* ---- abstract namespace */

static void test_abstract(void **state)
{
    (void)state;
    sk_listener l;
    sk_err err;
    const char *text = fmt("unix:@sockit-test-%ld", (long)getpid());
    assert_int_equal(listen_ok(text, NULL, &l, 1), 1);
    assert_string_equal(l.name, text);
    assert_string_equal(l.unlink_path, "");
    listen_fails(text, &err);
    assert_non_null(strstr(err.msg, "Address already in use"));
    serves(l.fd, text, 1);
    sk_listener_close(&l);

    text = fmt("unixgram:@sockit-test-dg-%ld", (long)getpid());
    assert_int_equal(listen_ok(text, NULL, &l, 1), 1);
    int c = connect_ok(text);
    char buf[8];
    assert_int_equal(send(c, "x", 1, 0), 1);
    assert_int_equal(sk_read_deadline(l.fd, buf, sizeof buf, sk_now_ms() + 2000), 1);
    assert_int_equal(buf[0], 'x');
    close(c);
    sk_listener_close(&l);
}

/* ---- sk_accept flags and listener options (nonblock, backlog) */

static void test_accept_flags(void **state)
{
    (void)state;
    sk_listener l;
    sk_listen_opts o = {.nonblock = 1, .backlog = 8};
    assert_int_equal(listen_ok("127.0.0.1:0", &o, &l, 1), 1);
    assert_true(is_nonblock(l.fd));
    errno = 0;
    assert_int_equal(sk_accept(l.fd, NULL, NULL, 0), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);

    const char *text = fmt("127.0.0.1:%u", port_of(&l.local));
    int c1 = connect_ok(text), c2 = connect_ok(text);
    assert_int_equal(sk_wait_fd(l.fd, POLLIN, sk_now_ms() + 2000), 1);
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    int s1 = sk_accept(l.fd, (struct sockaddr *)&peer, &pl, 0);
    assert_true(s1 >= 0);
    assert_int_equal(pl, sizeof(struct sockaddr_in));
    assert_cloexec(s1);
    assert_false(is_nonblock(s1));
    assert_int_equal(sk_wait_fd(l.fd, POLLIN, sk_now_ms() + 2000), 1);
    int s2 = sk_accept(l.fd, NULL, NULL, 1);
    assert_true(s2 >= 0);
    assert_cloexec(s2);
    assert_true(is_nonblock(s2));
    exchange(c1, s1);
    close(c1);
    close(c2);
    close(s1);
    close(s2);
    sk_listener_close(&l);
    assert_int_equal(sk_accept(-1, NULL, NULL, 0), -1);
    assert_int_equal(errno, EBADF);
}

/* ---- UDP: a connected client and a server socket talk (IPv4, and dual stack) */

static void test_udp_exchange(void **state)
{
    (void)state;
    static const char *const words[][2] = {{"udp://127.0.0.1:0", "udp://127.0.0.1:%u"},
                                           {"udp://:0", "udp://[::1]:%u"},
                                           {"udp://:0", "udp://127.0.0.1:%u"}};
    for (size_t i = 0; i < 3; i++) {
        sk_listener l;
        char buf[16];
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        assert_int_equal(listen_ok(words[i][0], NULL, &l, 1), 1);
        int c = connect_ok(fmt(words[i][1], port_of(&l.local)));
        assert_int_equal(send(c, "dgram", 5, 0), 5);
        assert_int_equal(sk_wait_fd(l.fd, POLLIN, sk_now_ms() + 2000), 1);
        assert_int_equal(recvfrom(l.fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 5);
        assert_memory_equal(buf, "dgram", 5);
        assert_int_equal(sendto(l.fd, "reply", 5, 0, (struct sockaddr *)&from, fl), 5);
        assert_int_equal(sk_read_deadline(c, buf, sizeof buf, sk_now_ms() + 2000), 5);
        assert_memory_equal(buf, "reply", 5);
        close(c);
        sk_listener_close(&l);
    }
}

/* ---- sk_set_nonblock / sk_set_cloexec */

static void test_fd_flag_helpers(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(sk_set_nonblock(p[0], 1), 0);
    assert_true(is_nonblock(p[0]));
    assert_int_equal(sk_set_nonblock(p[0], 1), 0);
    assert_int_equal(sk_set_nonblock(p[0], 0), 0);
    assert_false(is_nonblock(p[0]));
    assert_int_equal(fcntl(p[1], F_GETFD) & FD_CLOEXEC, 0);
    assert_int_equal(sk_set_cloexec(p[1]), 0);
    assert_cloexec(p[1]);
    assert_int_equal(sk_set_cloexec(p[1]), 0);
    close(p[0]);
    close(p[1]);
    assert_int_equal(sk_set_nonblock(p[0], 1), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(sk_set_cloexec(p[0]), -1);
    assert_int_equal(errno, EBADF);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sockit-test-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    static const char *const names[] = {"s.sock",  "stale.sock",   "live.sock",
                                        "regular", "foreign.sock", "dg.sock"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tpath(names[i]));
    return rmdir(tmpdir);
}

int main(void)
{
    alarm(20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_tcp_port0),
        cmocka_unit_test(test_listen_in_use),
        cmocka_unit_test(test_listen_wildcard_dual_stack),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_peer),
        cmocka_unit_test(test_unix_listen_close_removes),
        cmocka_unit_test(test_unix_stale_replaced),
        cmocka_unit_test(test_unix_live_server_kept),
        cmocka_unit_test(test_unix_regular_file_kept),
        cmocka_unit_test(test_unix_close_keeps_foreign_file),
        cmocka_unit_test(test_unixgram_exchange),
        cmocka_unit_test(test_abstract),
        cmocka_unit_test(test_accept_flags),
        cmocka_unit_test(test_udp_exchange),
        cmocka_unit_test(test_fd_flag_helpers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
