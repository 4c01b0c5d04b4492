/*
 * exec_reap.c - ending a child once its connection (or datagram) is over:
 * SIGTERM to its process group, SIGKILL --grace later to whatever of the
 * group is left, and the child reaped, so no zombie and no orphan outlives
 * the connection.
 *
 * Only our own children are waited for, by pid (never waitpid(-1): the fork
 * and prefork models reap their own processes). A blocking model does it in
 * the connection's own flow of control; an event loop must not wait, so it
 * hands the child to a thread of this process that is started at the first
 * need (and anew in a forked process: threads do not survive fork). The leader is reaped as soon as
 * it exits; its group is then probed with kill(-pgid, 0), and once it is empty nothing more is
 * sent: a process group id is only free for reuse once no process is in it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/thread.h"
#include "exec.h"

#define GIVE_UP_MS 5000 /* after SIGKILL: a process stuck in the kernel is left to init */

typedef struct ending {
    pid_t pid; /* also its process group */
    int reaped;
    int killed;
    int64_t kill_at;
    int64_t scan_at; /* when /proc may be looked at again */
} ending;

/* Is a process of group pgid still running? kill(-pgid, 0) also counts
 * zombies: grandchildren that ended and wait for their new parent (init,
 * or a subreaper that reaps late) to reap them, which must not hold us for
 * --grace. Linux: look in /proc (only for groups that outlived their
 * leader, which is rare); elsewhere trust kill. */
static int group_running(pid_t pgid)
{
    if (kill(-pgid, 0) < 0 && errno == ESRCH)
        return 0;
#ifdef __linux__
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 1;
    int running = 0;
    struct dirent *de;
    while (!running && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        /* "pid (comm) S ppid pgrp ...": comm may hold anything but ')' last */
        char *r = strrchr(buf, ')');
        char state;
        long ppid, pgrp;
        if (r && sscanf(r + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3 && pgrp == pgid &&
            state != 'Z' && state != 'X')
            running = 1;
    }
    closedir(d);
    return running;
#else
    return 1;
#endif
}

/* One step; 1 when nothing is left to do for e. */
static int step(ending *e, int64_t now)
{
    int status;
    if (!e->reaped)
        e->reaped = sk__exec_try_reap(e->pid, &status);
    /* While the leader is unreaped it still holds the group id: signals to
     * the group cannot reach a stranger. Once reaped, a group with nothing
     * running in it is done. */
    if (e->reaped && now >= e->scan_at) {
        if (!group_running(e->pid))
            return 1;
        e->scan_at = now + 100;
    }
    if (!e->killed && now >= e->kill_at) {
        kill(-e->pid, SIGKILL);
        if (!e->reaped)
            kill(e->pid, SIGKILL); /* it may have left its group (setsid) */
        e->killed = 1;
    }
    if (e->killed && (e->reaped || now >= e->kill_at + GIVE_UP_MS))
        return 1; /* everything of it got SIGKILL */
    return 0;
}

/* In the caller's flow of control: wait for the leader on its pidfd (or in
 * short sleeps), the group in short sleeps, at most until SIGKILL and reaped. */
static void end_here(ending *e, int pidfd)
{
    for (;;) {
        int64_t now = sk_now_ms();
        if (step(e, now))
            return;
        int64_t left = (e->killed ? e->kill_at + GIVE_UP_MS : e->kill_at) - now;
        int ms = left < 0 ? 0 : left > 20 ? 20 : (int)left;
        if (!e->reaped && pidfd >= 0) {
            struct pollfd p = {.fd = pidfd, .events = POLLIN};
            poll(&p, 1, (int)(left < 0 ? 0 : left > 1000 ? 1000 : left));
        } else {
            poll(NULL, 0, ms);
        }
    }
}

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pid_t owner; /* the process whose thread this is */
    int running, stop, joinable;
    pthread_t thread;
    ending *v;
    size_t n, cap;
} R = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *reaper(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&R.mu);
    while (R.n > 0 || !R.stop) {
        int64_t now = sk_now_ms();
        for (size_t i = 0; i < R.n;) {
            if (step(&R.v[i], now))
                R.v[i] = R.v[--R.n];
            else
                i++;
        }
        if (R.n == 0 && !R.stop) {
            pthread_cond_wait(&R.cv, &R.mu);
            continue;
        }
        if (R.n == 0)
            break;
        /* Children exit on their own schedule: look again soon (a few
         * entries at most, each a waitpid and a kill(0)). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&R.cv, &R.mu, &ts);
    }
    R.running = 0;
    pthread_mutex_unlock(&R.mu);
    return NULL;
}

/* A process forked from one with a reaper has the memory but not the thread
 * (nor the children): it starts afresh. At fork only the forking thread
 * exists in the child, so this runs alone there (a mutex another thread held
 * at that moment is made anew). */
static void after_fork_in_child(void)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    R.mu = mu;
    R.cv = cv;
    R.owner = getpid();
    R.running = R.stop = R.joinable = 0;
    R.n = 0;
}

static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, after_fork_in_child);
    R.owner = getpid();
}

static pthread_once_t R_once = PTHREAD_ONCE_INIT;

static void hand_over(const ending *e)
{
    pthread_once(&R_once, register_fork_handler);
    pthread_mutex_lock(&R.mu);
    if (R.n == R.cap) {
        size_t cap = R.cap ? R.cap * 2 : 16;
        ending *v = realloc(R.v, cap * sizeof *v);
        if (v == NULL) {
            pthread_mutex_unlock(&R.mu);
            ending copy = *e;
            end_here(&copy, -1); /* out of memory: wait here rather than leak it */
            return;
        }
        R.v = v;
        R.cap = cap;
    }
    R.v[R.n++] = *e;
    R.stop = 0;
    if (!R.running) {
        if (R.joinable) /* a previous thread that finished */
            pthread_join(R.thread, NULL);
        R.joinable = 0;
        if (sk__thread_start(&R.thread, reaper, NULL, 0, 0) == 0)
            R.running = R.joinable = 1;
        if (!R.running) {
            ending copy = R.v[--R.n];
            pthread_mutex_unlock(&R.mu);
            end_here(&copy, -1);
            return;
        }
    }
    pthread_cond_signal(&R.cv);
    pthread_mutex_unlock(&R.mu);
}

void sk__exec_end(pid_t pid, int reaped, int pidfd, int grace_ms, int here)
{
    ending e = {.pid = pid, .reaped = reaped, .kill_at = sk_now_ms() + grace_ms};
    if (kill(-pid, SIGTERM) < 0 && errno == ESRCH) {
        if (reaped)
            return;         /* the usual end: the child exited and took nothing with it */
        kill(pid, SIGTERM); /* it left its group (setsid) */
    }
    if (step(&e, sk_now_ms()))
        return;
    if (here)
        end_here(&e, pidfd);
    else
        hand_over(&e);
}

void sk__exec_reap_fini(void)
{
    if (R.owner != getpid())
        return; /* no thread of this process */
    pthread_mutex_lock(&R.mu);
    R.stop = 1;
    pthread_cond_signal(&R.cv);
    pthread_mutex_unlock(&R.mu);
    if (R.joinable)
        pthread_join(R.thread, NULL);
    R.joinable = 0;
    free(R.v);
    R.v = NULL;
    R.n = R.cap = 0;
}
