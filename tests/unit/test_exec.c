/*
 * test_exec.c - the exec service's pieces without a network: its options and
 * the words after -- (public API), the errors of init, and a child started
 * and ended by exec_spawn.c and exec_reap.c: only descriptors 0-2, exactly
 * the environment given, its own process group, and reaped with its group
 * killed, in the caller's flow of control and by the reaper thread.
 */
#define _GNU_SOURCE /* pipe2 */
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
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"

static const sk_service *exec_svc(void)
{
    const sk_service *s = sk_service_find("exec");
    assert_non_null(s);
    return s;
}

static void test_options_and_words(void **state)
{
    (void)state;
    const sk_service *ex = exec_svc();
    sk_err err;
    void *cfg = sk_service_config_new(ex, &err);
    assert_non_null(cfg);
    assert_int_equal(sk_service_set(ex, cfg, "env", "NOEQUALS", &err), -1);
    assert_true(err.usage);
    assert_non_null(strstr(err.msg, "NAME=VALUE"));
    assert_int_equal(sk_service_set(ex, cfg, "env", "1BAD=x", &err), -1);
    assert_int_equal(sk_service_set(ex, cfg, "env", "GOOD_1=a=b", &err), 0);
    assert_int_equal(sk_service_set(ex, cfg, "pass-env", "A-B", &err), -1);
    assert_int_equal(sk_service_set(ex, cfg, "timeout", "0", &err), -1);
    assert_int_equal(sk_service_set(ex, cfg, "timeout", "1.5", &err), 0);
    assert_int_equal(((sk__exec_cfg *)cfg)->timeout_ms, 1500);
    char *none[] = {NULL};
    assert_int_equal(sk_service_set_args(ex, cfg, 0, none, &err), -1);
    assert_non_null(strstr(err.msg, "nothing after --"));
    char *prog[] = {"cat", "-u", NULL};
    assert_int_equal(sk_service_set_args(ex, cfg, 2, prog, &err), 0);
    /* Another service takes no words after -- */
    const sk_service *echo = sk_service_find("echo");
    void *ecfg = sk_service_config_new(echo, &err);
    assert_int_equal(sk_service_set_args(echo, ecfg, 2, prog, &err), -1);
    assert_string_equal(err.msg, "the echo service takes no words after --");
    sk_service_config_free(echo, ecfg);
    sk_service_config_free(ex, cfg);
}

static sk_server *server_with(void *cfg, sk_err *err)
{
    sk_server_opts o = {
        .service = exec_svc(), .service_config = cfg, .model = sk_model_find("epoll")};
    return sk_server_new(&o, err);
}

static void test_init_errors(void **state)
{
    (void)state;
    const sk_service *ex = exec_svc();
    sk_err err;
    void *cfg = sk_service_config_new(ex, &err);
    assert_null(server_with(cfg, &err)); /* no program */
    assert_true(err.usage);
    assert_non_null(strstr(err.msg, "no program"));
    char *prog[] = {"no-such-program-skit", NULL};
    sk_service_set_args(ex, cfg, 1, prog, &err);
    assert_null(server_with(cfg, &err));
    assert_true(err.usage);
    assert_non_null(strstr(err.msg, "no-such-program-skit: not found in PATH"));
    sk_service_set(ex, cfg, "sh", "true", &err);
    assert_null(server_with(cfg, &err));
    assert_non_null(strstr(err.msg, "not both"));
    sk_service_config_free(ex, cfg);
}

/* A state made by init, as the server makes it, for the spawn tests. */
static sk__exec *make_state(const char *sh, sk_server **srv)
{
    const sk_service *ex = exec_svc();
    sk_err err;
    void *cfg = sk_service_config_new(ex, &err);
    sk_service_set(ex, cfg, "sh", sh, &err);
    sk_service_set(ex, cfg, "env", "GREETING=hi there", &err);
    *srv = server_with(cfg, &err);
    assert_non_null(*srv);
    void *st = NULL;
    assert_int_equal(sk__exec_init(*srv, &st, &err), 0);
    sk_service_config_free(ex, cfg); /* init kept nothing of it but copies and argv */
    return st;
}

/* Start x's program with a socket pair on stdin and a pipe on stdout and
 * stderr (as a connection does); returns its pid, *out our end of stdout. */
static pid_t start_child(sk__exec *x, int *out)
{
    int sp[2], op[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    assert_int_equal(pipe2(op, O_CLOEXEC), 0);
    const char *vars[] = {"PROTO=TCP", "TCPREMOTEIP=127.0.0.1"};
    char *env[SK_EXEC_PEER_VARS + 2 * SK_EXEC_ENV_MAX + 2];
    sk__exec_env(x, vars, 2, env, sizeof env / sizeof env[0]);
    sk_err err;
    pid_t pid = sk__exec_spawn(x, env, sp[1], op[1], op[1], &err);
    assert_true(pid > 0);
    close(sp[0]); /* its stdin ends at once */
    close(sp[1]);
    close(op[1]);
    *out = op[0];
    return pid;
}

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

static void test_child_gets_only_stdio_and_its_env(void **state)
{
    (void)state;
    sk_server *srv;
    sk__exec *x = make_state("env; ls /proc/$$/fd; ps -o pgid= -p $$", &srv);
    int out;
    pid_t pid = start_child(x, &out);
    char buf[8192];
    read_all(out, buf, sizeof buf);
    close(out);
    assert_non_null(strstr(buf, "PROTO=TCP\n"));
    assert_non_null(strstr(buf, "TCPREMOTEIP=127.0.0.1\n"));
    assert_non_null(strstr(buf, "GREETING=hi there\n"));
    assert_non_null(strstr(buf, "PATH="));
    assert_null(strstr(buf, "HOME="));
    /* The descriptors: exactly 0 1 2, one per line after the environment. */
    assert_non_null(strstr(buf, "\n0\n1\n2\n"));
    assert_null(strstr(buf, "\n3\n"));
    char group[32];
    snprintf(group, sizeof group, "%d\n", (int)pid); /* its own process group */
    assert_non_null(strstr(buf, group));
    sk__exec_end(pid, 0, -1, 1000, 1);
    errno = 0;
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1); /* reaped already */
    assert_int_equal(errno, ECHILD);
    sk__exec_fini(x);
    sk_server_free(srv);
}

static int running(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *r = strrchr(buf, ')');
    return r && r[1] == ' ' && r[2] != 'Z' && r[2] != 'X';
}

/* The child leaves a grandchild that ignores SIGTERM: the group gets SIGKILL
 * after the grace period, in the caller's flow (here = 1) or the reaper
 * thread's (here = 0, done by the time sk__exec_reap_fini returns). */
static void test_group_ended(void **state)
{
    (void)state;
    for (int here = 1; here >= 0; here--) {
        sk_server *srv;
        sk__exec *x =
            make_state("trap '' TERM; sleep 30 >/dev/null & echo $!; exec sleep 30", &srv);
        int out;
        pid_t pid = start_child(x, &out);
        char buf[64];
        ssize_t n = read(out, buf, sizeof buf - 1);
        assert_true(n > 0);
        buf[n] = '\0';
        pid_t grandchild = (pid_t)atoi(buf);
        assert_true(grandchild > 0 && running(grandchild));
        int pidfd = sk__exec_pidfd(pid);
        int64_t t0 = sk_now_ms();
        sk__exec_end(pid, 0, pidfd, 300, here);
        if (!here)
            sk__exec_reap_fini();
        assert_true(sk_now_ms() - t0 < 5000);
        assert_false(running(pid));
        for (int i = 0; i < 100 && running(grandchild); i++)
            usleep(10000); /* SIGKILL sent: it goes */
        assert_false(running(grandchild));
        errno = 0;
        assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
        if (pidfd >= 0)
            close(pidfd);
        close(out);
        sk__exec_fini(x);
        sk_server_free(srv);
    }
}

int main(void)
{
    sk_ignore_sigpipe();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_and_words),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_child_gets_only_stdio_and_its_env),
        cmocka_unit_test(test_group_ended),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
