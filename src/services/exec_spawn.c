/*
 * exec_spawn.c - starting one child: descriptors 0, 1 and 2 and nothing
 * else, its own process group, default signal dispositions and an empty
 * signal mask (even when sockit itself runs under nohup, with signals
 * ignored), and exactly the environment it is given.
 *
 * glibc's posix_spawn does it all in a vfork-like child (CLONE_VM|
 * CLONE_VFORK): no copy of the server's page tables, which is what makes a
 * process per short connection affordable in a large server. Where the
 * system has no "close every other descriptor" spawn action, a fork()ed
 * child does the same steps with async-signal-safe calls only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HAVE_SPAWN_CLOSEFROM 1
#endif

/* What the child gets must not be 0, 1 or 2 (a server started with them
 * closed): dup2 onto itself would leave it close-on-exec, or one would be
 * clobbered by another's dup2. A copy above 2 (the caller's stays open). */
static int above_stdio(int fd)
{
    return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

#ifdef HAVE_SPAWN_CLOSEFROM
static pid_t spawn(const sk__exec *x, char *const *env, const int fds[3], int *e)
{
    posix_spawn_file_actions_t fa;
    if ((*e = posix_spawn_file_actions_init(&fa)) != 0)
        return -1;
    pid_t pid = -1;
    for (int i = 0; i < 3 && *e == 0; i++)
        *e = posix_spawn_file_actions_adddup2(&fa, fds[i], i);
    if (*e == 0)
        *e = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (*e == 0)
        *e = posix_spawn(&pid, x->path, &fa, &x->attr, x->argv, env);
    posix_spawn_file_actions_destroy(&fa);
    return *e == 0 ? pid : -1;
}
#else
/* The child's steps, async-signal-safe only; a failed exec is reported to the
 * parent through a close-on-exec pipe (it reads EOF when exec succeeded). */
static pid_t spawn(const sk__exec *x, char *const *env, const int fds[3], int *e)
{
    int rep[2];
    if (pipe(rep) < 0 || sk_set_cloexec(rep[0]) < 0 || sk_set_cloexec(rep[1]) < 0) {
        *e = errno;
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        struct sigaction dfl = {0};
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++)
            sigaction(s, &dfl, NULL); /* SIGKILL, SIGSTOP: refused, harmless */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int ok = 1;
        for (int i = 0; i < 3; i++)
            ok = ok && dup2(fds[i], i) == i;
        if (ok) {
            long max = sysconf(_SC_OPEN_MAX);
            for (long fd = 3; fd < (max > 0 ? max : 1024); fd++)
                if (fd != rep[1])
                    close((int)fd);
            execve(x->path, x->argv, env);
        }
        int err = errno;
        ssize_t w = write(rep[1], &err, sizeof err);
        (void)w;
        _exit(127);
    }
    *e = pid < 0 ? errno : 0;
    close(rep[1]);
    if (pid > 0) {
        int child_err;
        ssize_t r;
        while ((r = read(rep[0], &child_err, sizeof child_err)) < 0 && errno == EINTR) {
        }
        if (r == (ssize_t)sizeof child_err) {
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            *e = child_err;
            pid = -1;
        }
    }
    close(rep[0]);
    return pid;
}
#endif

pid_t sk__exec_spawn(const sk__exec *x, char *const *env, int in, int out, int errfd, sk_err *err)
{
    const int given[3] = {in, out, errfd};
    int fds[3] = {in, out, errfd}, e = 0;
    for (int i = 0; i < 3 && e == 0; i++)
        if (fds[i] <= 2 && (fds[i] = above_stdio(fds[i])) < 0)
            e = errno;
    pid_t pid = e == 0 ? spawn(x, env, fds, &e) : -1;
    for (int i = 0; i < 3; i++) /* the copies above_stdio made */
        if (fds[i] >= 0 && fds[i] != given[i])
            close(fds[i]);
    if (pid < 0)
        return sk_errno(err, e, "exec %s", x->path), -1;
    return pid;
}

int sk__exec_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    /* Race-free: pid is our unreaped child, so the number is still its. */
    return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by itself */
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

int sk__exec_try_reap(pid_t pid, int *status)
{
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            *status = st;
            return 1;
        }
        if (r == 0)
            return 0;
        if (errno == EINTR)
            continue;
        /* ECHILD: SIGCHLD ignored (the kernel reaps for us), or someone's
         * waitpid(-1) took it. Either way it is gone. */
        *status = -1;
        return 1;
    }
}

const char *sk__exec_status_text(int status, char *buf, size_t cap)
{
    if (status == -1)
        snprintf(buf, cap, "ended");
    else if (WIFEXITED(status))
        snprintf(buf, cap, "exited %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, cap, "ended (status 0x%x)", (unsigned)status);
    return buf;
}

pid_t sk__exec_start(const sk__exec *x, const char *const *peer_vars, size_t npeer, int fds[3],
                     sk_err *err)
{
    int sp[2] = {-1, -1}, op[2] = {-1, -1}, ep[2] = {-1, -1};
    pid_t pid = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 || pipe2(op, O_CLOEXEC) < 0 ||
        pipe2(ep, O_CLOEXEC) < 0) {
        sk_errno(err, errno, "exec: pipe");
    } else {
        char *env[SK_EXEC_PEER_VARS + 2 * SK_EXEC_ENV_MAX + 2];
        sk__exec_env(x, peer_vars, npeer, env, sizeof env / sizeof env[0]);
        pid = sk__exec_spawn(x, env, sp[1], op[1], ep[1], err);
    }
    int ours[3] = {sp[0], op[0], ep[0]}, theirs[3] = {sp[1], op[1], ep[1]};
    for (int i = 0; i < 3; i++) {
        if (theirs[i] >= 0)
            close(theirs[i]); /* the child has its copies */
        if (pid < 0 && ours[i] >= 0)
            close(ours[i]);
        /* Not at creation: O_NONBLOCK would be the child's too. On a fresh
         * pipe this cannot fail; if it did, a read would wait at the
         * child's pace, which the caller's deadlines still bound. */
        if (pid >= 0)
            (void)sk_set_nonblock(ours[i], 1);
        fds[i] = pid >= 0 ? ours[i] : -1;
    }
    if (pid >= 0)
        shutdown(fds[0], SHUT_RD);
    return pid;
}
