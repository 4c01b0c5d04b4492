/*
 * model_prefork.c - N processes started up front, each accepting and serving
 * one connection at a time from the shared listening sockets (Apache's
 * prefork). No fork() per connection, so short connections are far cheaper
 * than with `fork`; concurrency is capped at N. The parent only supervises:
 * a worker that dies is replaced, and at shutdown all are waited for.
 *
 * A worker keeps what it was forked with (the TLS context, the access list,
 * the service's files). After a reload in the parent (sk_server_reload,
 * SIGHUP) the workers are replaced gracefully, as Apache's graceful restart
 * does: each generation of workers shares a "retire" pipe whose write end
 * only the parent holds; closing it makes the read end readable in every
 * worker of that generation, which then accepts no more and exits once its
 * connection is done, while a new generation forked from the reloaded parent
 * takes the new connections. No connection is dropped, and the worker
 * count (the connection limit) holds across generations: a new worker is
 * forked only as an old one leaves (an idle one at once, a busy one when its
 * connection is done).
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

#define EXIT_SERVED_ONCE 3 /* a worker's way of saying "--once is done" */
#define EXIT_RETIRED 4     /* replaced after a reload, its connection done */

/* The parent closed this generation's retire pipe: take no more connections. */
static int retired(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

static void worker(sk_server *s, int retire_fd)
{
    sk_dgram_batch *dbuf = sk__dgram_batch_new();
    if (dbuf == NULL)
        _exit(1);
    s->own_listeners = 1; /* this process's copies of the listening sockets */
    while (!sk__stopping(s)) {
        /* Every worker polls the listeners; the one whose accept() wins serves
         * the connection, the others get EAGAIN and go back to waiting. */
        if (retired(retire_fd))
            _exit(EXIT_RETIRED);
        sk_accepted a;
        int i = sk__accept_next(s, retire_fd, dbuf, 1, &a);
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
    int retire[2];  /* this generation's retire pipe */
    pid_t *cur;     /* this generation's workers (the others are retiring) */
    size_t ncur;
    size_t nall;      /* workers alive, of every generation */
    unsigned reloads; /* sk_server_reload calls seen */
};

static void on_exit_cb(pid_t pid, int status, void *arg)
{
    struct supervisor *sv = arg;
    int was_cur = 0;
    sv->nall--;
    for (size_t i = 0; i < sv->ncur; i++)
        if (sv->cur[i] == pid) {
            sv->cur[i] = sv->cur[--sv->ncur];
            was_cur = 1;
            break;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SERVED_ONCE)
        sv->once_done = 1;
    else if (was_cur && !sk__stopping(sv->s))
        sv->died_early++;
}

static int spawn(sk_server *s, sk_procs *p, struct supervisor *sv)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        sk__child_init(s, p);
        close(sv->retire[1]); /* only the parent may end the generation */
        worker(s, sv->retire[0]);
    }
    sv->cur[sv->ncur++] = pid;
    sv->nall++;
    return sk__procs_add(p, pid);
}

/* A new generation's retire pipe; the old one's closing retires its workers. */
static int new_generation(struct supervisor *sv)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    if (sv->retire[0] >= 0) {
        close(sv->retire[0]);
        close(sv->retire[1]);
    }
    sv->retire[0] = fds[0];
    sv->retire[1] = fds[1];
    sv->ncur = 0;
    return 0;
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
    struct supervisor sv = {.s = s, .retire = {-1, -1}, .reloads = atomic_load(&s->reloads)};
    if ((sv.cur = calloc((size_t)n, sizeof *sv.cur)) == NULL || new_generation(&sv) < 0) {
        free(sv.cur);
        sk__procs_stop(&kids);
        return sk_errno(err, errno ? errno : ENOMEM, "prefork");
    }
    int rc = 0;
    for (long i = 0; i < n; i++) {
        if (spawn(s, &kids, &sv) < 0) {
            rc = sk_errno(err, errno, "fork");
            sk_server_stop(s);
            break;
        }
    }
    while (!sk__stopping(s) && !sv.once_done) {
        /* Woken by a child's exit or a stop; a reload is seen within 250 ms. */
        sk__procs_wait(s, &kids, 250, 1);
        sk__procs_reap(&kids, on_exit_cb, &sv);
        unsigned r = atomic_load(&s->reloads);
        if (r != sv.reloads && !sk__stopping(s)) {
            if (new_generation(&sv) < 0) {
                sk_server_log(s, SK_LOG_ERROR, "reload: pipe: %s: the workers stay",
                              strerror(errno));
            } else {
                sv.reloads = r;
                if (s->o.verbose)
                    sk_server_log(s, SK_LOG_INFO, "reload: new workers; the old ones retire");
            }
        }
        if (sv.died_early > 0) {
            sk_server_log(s, SK_LOG_ERROR, "%d worker(s) died; starting new ones", sv.died_early);
            sv.died_early = 0;
            poll(NULL, 0, 100); /* a worker that dies at once must not make us spin */
        }
        /* Retiring workers count: --workers is the connection limit. */
        while (!sk__stopping(s) && !sv.once_done && sv.nall < (size_t)n) {
            if (spawn(s, &kids, &sv) < 0) {
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
    close(sv.retire[0]);
    close(sv.retire[1]);
    free(sv.cur);
    return rc;
}

const sk_model sk__model_prefork = {
    .name = "prefork",
    .summary = "N processes started up front, each serving one connection at a time",
    .caps = SK_MODEL_CONCURRENT | SK_MODEL_WORKERS,
    .run = prefork_run,
};
