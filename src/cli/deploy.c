/*
 * deploy.c - serve under inetd and systemd: --inetd, --inetd-wait,
 * --idle-exit, --log, and the SIGHUP / sd_notify thread.
 *
 * inetd (and xinetd, and systemd with Accept=yes) put the socket on
 * descriptors 0, 1 and 2. In those modes nothing but the service's own bytes
 * may reach the client, so before anything else (option errors included) the
 * socket is moved to a descriptor of its own, 0 and 1 become /dev/null and 2
 * becomes the --log file (/dev/null, or syslog, otherwise).
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "../lib/activate.h"
#include "cli.h"
#include "deploy.h"

/* The value of option `name` in argv (--name VALUE or --name=VALUE), or NULL;
 * *seen set if the option appears at all. Stops at "--". */
static const char *scan(int argc, char **argv, const char *name, int *seen)
{
    size_t len = strlen(name);
    const char *v = NULL;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strncmp(argv[i], name, len) != 0)
            continue;
        if (argv[i][len] == '\0') {
            *seen = 1;
            v = i + 1 < argc ? argv[i + 1] : NULL;
        } else if (argv[i][len] == '=') {
            *seen = 1;
            v = argv[i] + len + 1;
        }
    }
    return v;
}

void cli_deploy_early(int argc, char **argv, struct cli_deploy *d)
{
    int inetd = 0, wait = 0, logged = 0;
    scan(argc, argv, "--inetd", &inetd);
    scan(argc, argv, "--inetd-wait", &wait);
    const char *log = scan(argc, argv, "--log", &logged);
    d->conn_fd = -1;
    d->log_seen = logged;
    int logfd = -1;
    if (log && strcmp(log, "syslog") == 0) {
        openlog("sockit", LOG_PID, LOG_DAEMON);
        cli_syslog = 1;
    } else if (log) {
        logfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (logfd < 0) {
            int e = errno;
            if (inetd || wait) { /* stderr is the client: say it in syslog */
                openlog("sockit", LOG_PID, LOG_DAEMON);
                cli_syslog = 1;
            }
            cli_fail("--log %s: %s", log, strerror(e));
        }
    }
    if (inetd && getenv("LISTEN_FDS") != NULL) {
        /* systemd Accept=yes without StandardInput=socket: the connection is
         * the one passed socket (descriptor 3); 0, 1 and 2 are not the
         * client's (the journal, /dev/null), so they stay as they are. */
        int fd;
        sk_err err;
        if (sk__sd_fds("", &fd, 1, &err) == 1) {
            d->conn_fd = fd;
            if (logfd >= 0 && dup2(logfd, STDERR_FILENO) < 0)
                cli_fail("--log %s: %s", log, strerror(errno));
            if (logfd >= 0)
                close(logfd);
            return;
        }
    }
    if (inetd || wait) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        d->conn_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        if (null < 0 || d->conn_fd < 0) {
            openlog("sockit", LOG_PID, LOG_DAEMON);
            cli_syslog = 1;
            cli_fail("%s: %s", null < 0 ? "/dev/null" : "descriptor 0", strerror(errno));
        }
        if (dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0 ||
            dup2(logfd >= 0 ? logfd : null, STDERR_FILENO) < 0) {
            openlog("sockit", LOG_PID, LOG_DAEMON);
            cli_syslog = 1;
            cli_fail("dup2: %s", strerror(errno));
        }
        close(null);
    } else if (logfd >= 0 && dup2(logfd, STDERR_FILENO) < 0) {
        cli_fail("--log %s: %s", log, strerror(errno));
    }
    if (logfd >= 0)
        close(logfd);
}

/* ------------------------------------------------------------------------ */
/* SIGHUP and the stop signals write a byte here (async-signal-safe); our own
 * thread does the rest: re-read files, tell the service manager. */
static int g_pipe_rd = -1, g_pipe_wr = -1;
static void (*g_reload)(void *);
static void *g_reload_arg;
static atomic_int g_stop_said;

static void say(const char *state)
{
    sk_err err;
    if (sk_notify(state, &err) < 0)
        cli_warn("%s", err.msg);
}

void cli_deploy_stopping(void)
{
    if (g_pipe_wr < 0)
        return;
    int e = errno;
    ssize_t r = write(g_pipe_wr, "s", 1);
    (void)r; /* a full pipe already holds one */
    errno = e;
}

static void on_hup(int sig)
{
    (void)sig;
    int e = errno;
    ssize_t r = write(g_pipe_wr, "h", 1);
    (void)r;
    errno = e;
}

static void *deploy_main(void *arg)
{
    (void)arg;
    for (;;) {
        char ch;
        ssize_t n = read(g_pipe_rd, &ch, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        if (ch == 's') {
            if (atomic_exchange(&g_stop_said, 1) == 0)
                say("STOPPING=1");
            continue;
        }
        /* Type=notify-reload: RELOADING=1 (with MONOTONIC_USEC), the work, READY=1. */
        say("RELOADING=1");
        if (g_reload)
            g_reload(g_reload_arg);
        say("READY=1");
    }
}

void cli_deploy_signals(void (*reload)(void *), void *arg)
{
    int p[2];
    pthread_t tid;
    g_reload = reload;
    g_reload_arg = arg;
    if (pipe2(p, O_CLOEXEC) < 0)
        cli_fail("pipe: %s", strerror(errno));
    g_pipe_rd = p[0];
    g_pipe_wr = p[1];
    if (fcntl(g_pipe_wr, F_SETFL, O_NONBLOCK) < 0)
        cli_fail("fcntl: %s", strerror(errno));
    /* The thread takes no signals: they go to the serving threads, as before. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&tid, NULL, deploy_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        cli_fail("pthread_create: %s", strerror(rc));
    pthread_detach(tid);
    if (reload) {
        struct sigaction sa = {0};
        sa.sa_handler = on_hup;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(SIGHUP, &sa, NULL);
    }
}

void cli_deploy_ready(void)
{
    say("READY=1");
}

void cli_deploy_stopped(void)
{
    if (atomic_exchange(&g_stop_said, 1) == 0)
        say("STOPPING=1");
}

/* ------------------------------------------------------------------------ */
struct idle_arg {
    sk_server *s;
    int ms;
    int verbose;
};

/* --inetd-wait: stop once nothing happened for --idle-exit (inetd then
 * watches the socket again and starts us at the next client). */
static void *idle_main(void *arg)
{
    struct idle_arg *ia = arg;
    unsigned long last = 0;
    long open = 0;
    sk_server_counts(ia->s, &open, &last);
    int64_t since = sk_now_ms();
    for (;;) {
        poll(NULL, 0, ia->ms < 1000 ? ia->ms / 4 + 1 : 250);
        unsigned long served = 0;
        sk_server_counts(ia->s, &open, &served);
        int64_t now = sk_now_ms();
        if (open > 0 || served != last) {
            last = served;
            since = now;
        } else if (now - since >= ia->ms) {
            if (ia->verbose)
                cli_warn("idle for %d ms: exiting (--idle-exit)", ia->ms);
            sk_server_stop(ia->s);
            return NULL;
        }
    }
}

void cli_deploy_idle_exit(sk_server *s, int ms, int verbose)
{
    static struct idle_arg ia;
    ia = (struct idle_arg){s, ms, verbose};
    pthread_t tid;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&tid, NULL, idle_main, &ia);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        cli_fail("pthread_create: %s", strerror(rc));
    pthread_detach(tid);
}

void cli_deploy_migrate_note(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_migrate_req", "re");
    if (f == NULL)
        return; /* not Linux, or too old a kernel: nothing to say */
    int v = -1;
    if (fscanf(f, "%d", &v) == 1 && v == 0)
        cli_warn("--reuseport: net.ipv4.tcp_migrate_req is 0, so connections queued on a "
                 "listener that closes are lost (sysctl -w net.ipv4.tcp_migrate_req=1 hands "
                 "them to the others)");
    fclose(f);
}
