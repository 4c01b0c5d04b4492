/*
 * deploy.c - serve under inetd and systemd: --inetd, --inetd-wait,
 * --idle-exit, --log, SIGHUP / SIGUSR2 / sd_notify (in the server's loop, or
 * a thread of ours under the blocking models).
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
#include <sys/socket.h>
#ifdef __linux__
#include <sys/timerfd.h>
#endif
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "../lib/activate.h"
#include "../lib/thread.h"
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
/* SIGHUP, SIGUSR2 and the stop signals write a byte here (async-signal-safe);
 * the rest (re-read files, tell the service manager, upgrade) runs where the
 * byte is read: in the server's event loop (sk_server_on_readable), so that
 * the serving process stays single-threaded (a second thread makes every
 * system call on a descriptor take a file reference: fdget), or, under the
 * blocking models, in a thread of our own. */
static int g_pipe_rd = -1, g_pipe_wr = -1;
static int g_in_loop; /* the server's loop reads the pipe */
static void (*g_reload)(void *);
static void *g_reload_arg;
/* Held for a reload: cli_deploy_end_reloads waits for one in progress. */
static pthread_mutex_t g_reload_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_stop_said;
static atomic_int g_upgrading; /* an upgrade thread runs (loop mode) */
static int g_handover_fd = -1; /* SIGUSR2, the new process: where to say "serving" */

static void say(const char *state)
{
    sk_err err;
    if (sk_notify(state, &err) < 0)
        cli_warn("%s", err.msg);
}

static void poke(char ch)
{
    if (g_pipe_wr < 0)
        return;
    int e = errno;
    ssize_t r = write(g_pipe_wr, &ch, 1);
    (void)r; /* a full pipe already holds bytes to act on */
    errno = e;
}

void cli_deploy_stopping(void)
{
    poke('s');
}

static void on_hup(int sig)
{
    (void)sig;
    poke('h');
}

static void on_usr2(int sig)
{
    (void)sig;
    poke('u');
}

/* A detached thread with no signals (they go to the serving flow of
 * control). 0, or pthread_create's error number. */
static int start_thread(void *(*fn)(void *), void *arg)
{
    return sk__thread_start(NULL, fn, arg, 1, 0);
}

static void upgrade(void);

/* In loop mode the upgrade, which waits up to 10 s for the new process,
 * gets a thread of its own for that while: the loop goes on serving. */
static void *upgrade_main(void *arg)
{
    (void)arg;
    upgrade();
    atomic_store(&g_upgrading, 0);
    return NULL;
}

static void act(char ch)
{
    int rc;
    if (ch == 's') {
        if (atomic_exchange(&g_stop_said, 1) == 0)
            say("STOPPING=1");
        return;
    }
    if (ch == 'u') {
        if (!g_in_loop)
            upgrade();
        else if (atomic_exchange(&g_upgrading, 1) != 0)
            cli_warn("SIGUSR2: an upgrade is already under way");
        else if ((rc = start_thread(upgrade_main, NULL)) != 0) {
            atomic_store(&g_upgrading, 0);
            cli_warn("SIGUSR2: pthread_create: %s: still serving", strerror(rc));
        }
        return;
    }
    /* Type=notify-reload: RELOADING=1 (with MONOTONIC_USEC), the work, READY=1. */
    say("RELOADING=1");
    pthread_mutex_lock(&g_reload_mu);
    if (g_reload)
        g_reload(g_reload_arg);
    pthread_mutex_unlock(&g_reload_mu);
    say("READY=1");
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
        act(ch);
    }
}

/* In the server's loop: the pipe (non-blocking) is readable. */
static int on_pipe(sk_server *s, int fd, void *arg)
{
    (void)s;
    (void)arg;
    for (;;) {
        char buf[64];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;
        for (ssize_t i = 0; i < n; i++)
            act(buf[i]);
    }
}

void cli_deploy_end_reloads(void)
{
    pthread_mutex_lock(&g_reload_mu);
    g_reload = NULL;
    pthread_mutex_unlock(&g_reload_mu);
}

void cli_deploy_signals(sk_server *s, void (*reload)(void *), void *arg)
{
    int p[2];
    sk_err err;
    g_reload = reload;
    g_reload_arg = arg;
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
        cli_fail("pipe: %s", strerror(errno));
    g_pipe_rd = p[0];
    g_pipe_wr = p[1];
    int r = sk_server_on_readable(s, g_pipe_rd, on_pipe, NULL, &err);
    if (r < 0)
        cli_die(&err);
    g_in_loop = r;
    if (!g_in_loop) { /* a blocking model: our own thread waits on the pipe */
        int fl = fcntl(g_pipe_rd, F_GETFL);
        if (fl < 0 || fcntl(g_pipe_rd, F_SETFL, fl & ~O_NONBLOCK) < 0)
            cli_fail("fcntl: %s", strerror(errno));
        int rc = start_thread(deploy_main, NULL);
        if (rc != 0)
            cli_fail("pthread_create: %s", strerror(rc));
    }
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
    if (g_handover_fd >= 0) { /* SIGUSR2: tell the old process we serve */
        ssize_t r = write(g_handover_fd, "R", 1);
        (void)r; /* the old process gone: nothing to tell */
        close(g_handover_fd);
        g_handover_fd = -1;
    }
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
    unsigned long last; /* served at the last look */
    int64_t since;      /* when something last happened */
};

/* How often to look: a quarter of a short idle time, else 4 times a second. */
static int idle_period_ms(int ms)
{
    return ms < 1000 ? ms / 4 + 1 : 250;
}

/* One look: 1 once the server was idle for ia->ms (and is now stopping). */
static int idle_look(struct idle_arg *ia)
{
    long open = 0;
    unsigned long served = 0;
    sk_server_counts(ia->s, &open, &served);
    int64_t now = sk_now_ms();
    if (open > 0 || served != ia->last) {
        ia->last = served;
        ia->since = now;
        return 0;
    }
    if (now - ia->since < ia->ms)
        return 0;
    if (ia->verbose)
        cli_warn("idle for %d ms: exiting (--idle-exit)", ia->ms);
    sk_server_stop(ia->s);
    return 1;
}

/* --inetd-wait: stop once nothing happened for --idle-exit (inetd then
 * watches the socket again and starts us at the next client). */
static void *idle_main(void *arg)
{
    struct idle_arg *ia = arg;
    do
        poll(NULL, 0, idle_period_ms(ia->ms));
    while (!idle_look(ia));
    return NULL;
}

#ifdef __linux__
/* The same looks from the server's loop, on a timerfd's ticks. */
static int idle_tick(sk_server *s, int fd, void *arg)
{
    (void)s;
    uint64_t ticks;
    ssize_t n = read(fd, &ticks, sizeof ticks);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return n != (ssize_t)sizeof ticks || idle_look(arg);
}

static int idle_in_loop(struct idle_arg *ia)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return 0;
    int p = idle_period_ms(ia->ms);
    struct timespec t = {.tv_sec = p / 1000, .tv_nsec = (long)(p % 1000) * 1000000};
    struct itimerspec its = {.it_interval = t, .it_value = t};
    sk_err err;
    if (timerfd_settime(fd, 0, &its, NULL) == 0 &&
        sk_server_on_readable(ia->s, fd, idle_tick, ia, &err) == 1)
        return 1; /* the timer stays open until we exit */
    close(fd);
    return 0;
}
#else
static int idle_in_loop(struct idle_arg *ia)
{
    (void)ia;
    return 0;
}
#endif

void cli_deploy_idle_exit(sk_server *s, int ms, int verbose)
{
    static struct idle_arg ia;
    ia = (struct idle_arg){.s = s, .ms = ms, .verbose = verbose, .since = sk_now_ms()};
    sk_server_counts(s, NULL, &ia.last);
    int rc = 0;
    if (!idle_in_loop(&ia)) /* a blocking model (or no timerfd): a thread looks */
        rc = start_thread(idle_main, &ia);
    if (rc != 0)
        cli_fail("pthread_create: %s", strerror(rc));
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

/* ------------------------------------------------------------------------ */
/* SIGUSR2: binary upgrade, as nginx does it. We start the program again
 * (argv[0], possibly a new binary) with the same arguments and hand it our
 * listening sockets over a Unix socket (SCM_RIGHTS); once it says it serves,
 * we stop accepting and drain with --grace. The sockets are the same ones, so
 * a connection queued in the kernel meanwhile is served by one or the other. */
static char **g_main_argv;
static sk_server *g_up_srv;
static char g_handover_words[SK_SD_MAX][24];
static char *g_handover_addrs[SK_SD_MAX];

#define HANDOVER_ENV "SOCKIT_HANDOVER_FD"

static void upgrade(void)
{
    extern char **environ;
    sk_server *s = g_up_srv;
    int fds[SK_SD_MAX];
    int n = 0;
    for (const sk_listener *l; n < SK_SD_MAX && (l = sk_server_listener(s, (size_t)n)) != NULL;)
        fds[n++] = l->fd;
    int sv[2];
    if (n == 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        cli_warn("SIGUSR2: %s: still serving", n ? strerror(errno) : "no listeners");
        return;
    }
    /* Everything the child needs is built before fork: after it, only
     * async-signal-safe calls until exec. */
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = calloc(nenv + 2, sizeof *envp);
    char var[48];
    snprintf(var, sizeof var, "%s=%d", HANDOVER_ENV, sv[1]);
    if (envp == NULL) {
        close(sv[0]);
        close(sv[1]);
        cli_warn("SIGUSR2: out of memory: still serving");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], HANDOVER_ENV "=", sizeof HANDOVER_ENV) != 0)
            envp[k++] = environ[i];
    envp[k++] = var;
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        fcntl(sv[1], F_SETFD, 0);
        environ = envp;
        execvp(g_main_argv[0], g_main_argv);
        _exit(127);
    }
    free(envp);
    close(sv[1]);
    if (pid < 0) {
        cli_warn("SIGUSR2: fork: %s: still serving", strerror(errno));
        close(sv[0]);
        return;
    }
    char byte = 'L';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int) * SK_SD_MAX)];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
    ssize_t r;
    do
        r = sendmsg(sv[0], &m, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    /* Wait (bounded) for the new process to serve: then it is its turn. */
    struct pollfd p = {.fd = sv[0], .events = POLLIN};
    int ready = 0;
    if (r == 1 && poll(&p, 1, 10000) == 1 && read(sv[0], &byte, 1) == 1 && byte == 'R')
        ready = 1;
    close(sv[0]);
    if (!ready) {
        waitpid(pid, NULL, WNOHANG); /* it exited (the socket closed): no zombie */
        cli_warn("SIGUSR2: the new process %ld did not start serving: still serving", (long)pid);
        return;
    }
    cli_warn("SIGUSR2: process %ld serves now; stopping (busy connections get --grace)", (long)pid);
    sk_server_disown_listeners(s); /* its Unix socket files are the new process's now */
    sk_server_stop(s);
}

void cli_deploy_upgrade_init(char **main_argv, sk_server *s)
{
    g_main_argv = main_argv;
    g_up_srv = s;
    struct sigaction sa = {0};
    sa.sa_handler = on_usr2;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
}

int cli_deploy_handover(char ***addrs, int *naddrs)
{
    const char *v = getenv(HANDOVER_ENV);
    if (v == NULL)
        return 0;
    int hfd = atoi(v);
    sk__env_scrub(HANDOVER_ENV);
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int) * SK_SD_MAX)];
        struct cmsghdr align;
    } u;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t r;
    do
        r = recvmsg(hfd, &m, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    struct cmsghdr *cm = r == 1 ? CMSG_FIRSTHDR(&m) : NULL;
    if (cm == NULL || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
        cli_fail("%s: no listening sockets came from the old process", HANDOVER_ENV);
    int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    int fds[SK_SD_MAX];
    memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) {
        snprintf(g_handover_words[i], sizeof g_handover_words[i], "fd:%d", fds[i]);
        g_handover_addrs[i] = g_handover_words[i];
    }
    fcntl(hfd, F_SETFD, FD_CLOEXEC);
    g_handover_fd = hfd;
    *addrs = g_handover_addrs;
    *naddrs = n;
    return 1;
}
