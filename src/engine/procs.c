/*
 * procs.c - child processes for the fork and prefork models: SIGCHLD turned
 * into a readable pipe (no work in the signal handler), reaping with waitpid
 * so no zombie is left, and a bounded wait for all children at shutdown.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"

static int chld_wr = -1; /* one process has one SIGCHLD: one pipe */

static void on_sigchld(int sig)
{
    (void)sig;
    int e = errno;
    ssize_t r = write(chld_wr, "c", 1);
    (void)r;
    errno = e;
}

int sk__procs_start(sk_procs *p, sk_err *err)
{
    memset(p, 0, sizeof *p);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return sk_errno(err, errno, "pipe");
    p->chld_rd = fds[0];
    chld_wr = fds[1];
    struct sigaction sa = {0};
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, &p->old);
    return 0;
}

void sk__procs_stop(sk_procs *p)
{
    sigaction(SIGCHLD, &p->old, NULL);
    close(p->chld_rd);
    close(chld_wr);
    chld_wr = -1;
    free(p->pids);
    p->pids = NULL;
    p->n = p->cap = 0;
}

int sk__procs_add(sk_procs *p, pid_t pid)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        pid_t *n = realloc(p->pids, cap * sizeof *n);
        if (n == NULL)
            return -1;
        p->pids = n;
        p->cap = cap;
    }
    p->pids[p->n++] = pid;
    return 0;
}

int sk__procs_reap(sk_procs *p, void (*on_exit)(pid_t, int, void *), void *arg)
{
    char junk[64];
    while (read(p->chld_rd, junk, sizeof junk) > 0) {
    }
    int reaped = 0, status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < p->n; i++) {
            if (p->pids[i] == pid) {
                p->pids[i] = p->pids[--p->n];
                break;
            }
        }
        reaped++;
        if (on_exit)
            on_exit(pid, status, arg);
    }
    return reaped;
}

void sk__procs_wait(sk_server *s, sk_procs *p, int timeout_ms, int watch_stop)
{
    struct pollfd w[2] = {{.fd = p->chld_rd, .events = POLLIN},
                          {.fd = s->stop_rd, .events = POLLIN}};
    if (poll(w, watch_stop ? 2 : 1, timeout_ms) > 0 && watch_stop && (w[1].revents & POLLIN))
        sk__saw_stop(s);
}

void sk__procs_wait_all(sk_server *s, sk_procs *p)
{
    int grace = s->o.grace_ms;
    int64_t deadline = -1;
    int now_seen = 0;
    sk__procs_reap(p, NULL, NULL);
    while (p->n > 0) {
        /* Not stopping (--once): wait as long as the children take. Stopping:
         * they enforce the grace period themselves; this is the backstop. */
        if (deadline < 0 && sk__stopping(s))
            deadline = sk_now_ms() + grace + 1000;
        if (!now_seen && sk__stopping_now(s)) {
            /* The children saw the stop-now pipe too and are closing. */
            now_seen = 1;
            int64_t soon = sk_now_ms() + 1000;
            if (deadline < 0 || soon < deadline)
                deadline = soon;
        }
        /* Once every child left is a busy one, say so. */
        long busy = atomic_load(&s->shared->busy);
        if (deadline >= 0 && busy > 0 && (size_t)busy >= p->n)
            sk__announce_stop(s, busy);
        if (deadline >= 0 && sk_now_ms() >= deadline) {
            for (size_t i = 0; i < p->n; i++)
                kill(p->pids[i], SIGKILL);
            while (p->n > 0 && waitpid(-1, NULL, 0) > 0)
                sk__procs_reap(p, NULL, NULL);
            break;
        }
        sk__procs_wait(s, p, 200, deadline < 0);
        sk__procs_reap(p, NULL, NULL);
    }
}

void sk__child_init(sk_server *s, sk_procs *p)
{
    s->is_child = 1;
    for (size_t i = 0; i < s->nls; i++) {
        if (!p->keep_listeners) {
            close(s->ls[i].fd); /* not sk_listener_close: the socket file is the parent's */
            s->ls[i].fd = -1;
        }
        s->ls[i].unlink_path[0] = '\0';
    }
    close(p->chld_rd);
    close(chld_wr);
    close(s->stop_wr);
    s->stop_wr = -1;
    struct sigaction dfl = {0}, ign = {0};
    dfl.sa_handler = SIG_DFL;
    ign.sa_handler = SIG_IGN;
    sigaction(SIGCHLD, &dfl, NULL);
    /* Ctrl-C reaches the whole process group: the parent turns it into a
     * graceful stop, which reaches children through the stop pipe. */
    sigaction(SIGINT, &ign, NULL);
    sigaction(SIGTERM, &dfl, NULL);
}
