/*
 * model_prefork.c - N processes started up front, each accepting and serving
 * one connection at a time from the shared listening sockets (Apache's
 * prefork). No fork() per connection, so short connections are far cheaper
 * than with `fork`; concurrency is capped at N. The parent only supervises:
 * a worker that dies is replaced, and at shutdown all are waited for.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"

#define EXIT_SERVED_ONCE 3 /* a worker's way of saying "--once is done" */

static void worker(sk_server *s)
{
    sk_dgram_batch *dbuf = sk__dgram_batch_new();
    if (dbuf == NULL)
        _exit(1);
    s->own_listeners = 1; /* this process's copies of the listening sockets */
    while (!sk__stopping(s)) {
        /* Every worker polls the listeners; the one whose accept() wins serves
         * the connection, the others get EAGAIN and go back to waiting. */
        sk_accepted a;
        int i = sk__accept_next(s, -1, dbuf, 1, &a);
        if (i == SK_WAIT_STOP && s->o.once && atomic_load(&s->served) > 0)
            _exit(EXIT_SERVED_ONCE);
        if (i == SK_WAIT_STOP)
            break;
        if (i < 0)
            continue;
        sk__serve_stream_blocking(s, a.fd, (struct sockaddr *)&a.peer, a.plen, a.transport);
        if (sk__count_served(s))
            _exit(EXIT_SERVED_ONCE);
    }
    sk__stop_listening(s);
    _exit(0);
}

struct supervisor {
    sk_server *s;
    int once_done;
    int died_early; /* workers that exited on their own */
};

static void on_exit_cb(pid_t pid, int status, void *arg)
{
    (void)pid;
    struct supervisor *sv = arg;
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SERVED_ONCE)
        sv->once_done = 1;
    else if (!sk__stopping(sv->s))
        sv->died_early++;
}

static int spawn(sk_server *s, sk_procs *p)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        sk__child_init(s, p);
        worker(s);
    }
    return sk__procs_add(p, pid);
}

static long default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 4 : n * 2; /* blocking workers: some are always waiting on I/O */
}

static int prefork_run(sk_server *s, sk_err *err)
{
    sk_procs kids;
    if (sk__procs_start(&kids, err) < 0)
        return -1;
    kids.keep_listeners = 1;
    long n = s->o.workers > 0 ? s->o.workers : default_workers();
    /* Each worker serves one connection at a time, so the worker count is the
     * connection limit: --max-conns caps it. */
    if (s->o.max_conns > 0 && n > s->o.max_conns)
        n = s->o.max_conns;
    struct supervisor sv = {.s = s};
    int rc = 0;
    for (long i = 0; i < n; i++) {
        if (spawn(s, &kids) < 0) {
            rc = sk_errno(err, errno, "fork");
            sk_server_stop(s);
            break;
        }
    }
    while (!sk__stopping(s) && !sv.once_done) {
        sk__procs_wait(s, &kids, 1000, 1);
        sk__procs_reap(&kids, on_exit_cb, &sv);
        if (sv.died_early > 0) {
            sk_server_log(s, SK_LOG_ERROR, "%d worker(s) died; starting new ones", sv.died_early);
            sv.died_early = 0;
            poll(NULL, 0, 100); /* a worker that dies at once must not make us spin */
        }
        while (!sk__stopping(s) && !sv.once_done && kids.n < (size_t)n) {
            if (spawn(s, &kids) < 0) {
                sk_server_log(s, SK_LOG_ERROR, "fork: %s", strerror(errno));
                break;
            }
        }
    }
    sk__stop_listening(s);
    if (sv.once_done)
        sk_server_stop(s); /* the other workers are idle: they go at once */
    sk__procs_wait_all(s, &kids);
    sk__procs_stop(&kids);
    return rc;
}

const sk_model sk__model_prefork = {
    .name = "prefork",
    .summary = "N processes started up front, each serving one connection at a time",
    .caps = SK_MODEL_CONCURRENT | SK_MODEL_WORKERS,
    .run = prefork_run,
};
