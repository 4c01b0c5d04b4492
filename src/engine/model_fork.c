/*
 * model_fork.c - a process per connection: the tutorial's forking server,
 * without its zombies. The parent accepts; each child serves one connection
 * and exits; the parent reaps every child (procs.c).
 *
 * Costs a fork() per connection and a whole process per open connection;
 * connections share nothing, so a crash takes down one client, not the server.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

static int fork_run(sk_server *s, sk_err *err)
{
    sk_procs kids;
    if (sk__procs_start(&kids, err) < 0)
        return -1;
    sk_dgram_batch *dbuf = sk__dgram_batch_new();
    int rc = 0;
    if (dbuf == NULL) {
        rc = sk_errno(err, ENOMEM, "buffer");
        goto out;
    }
    while (!sk__stopping(s)) {
        sk__procs_reap(&kids, NULL, NULL);
        if (s->o.max_conns > 0 && kids.n >= (size_t)s->o.max_conns) {
            /* At the limit: new connections wait in the kernel's backlog until
             * a child exits (SIGCHLD wakes us). */
            sk__procs_wait(s, &kids, -1, 1);
            continue;
        }
        sk_accepted a;
        int i = sk__accept_next(s, kids.chld_rd, dbuf, 0, &a);
        if (i == SK_WAIT_STOP)
            break;
        if (i < 0)
            continue;
        pid_t pid = fork();
        if (pid < 0) {
            sk_server_log(s, SK_LOG_ERROR, "fork: %s: connection closed", strerror(errno));
            close(a.fd);
            poll(NULL, 0, 100); /* out of processes: back off rather than spin */
            continue;
        }
        if (pid == 0) {
            sk__child_init(s, &kids);
            sk__serve_stream_blocking(s, a.fd, (struct sockaddr *)&a.peer, a.plen, a.transport);
            _exit(0);
        }
        close(a.fd);
        if (sk__procs_add(&kids, pid) < 0)
            sk_server_log(s, SK_LOG_ERROR, "out of memory tracking children");
        if (sk__count_served(s))
            break;
    }
    /* Stop accepting at once: new clients are refused instead of queued. */
    for (size_t i = 0; i < s->nls; i++)
        sk_listener_close(&s->ls[i]);
    sk__procs_wait_all(s, &kids);
out:
    sk__procs_stop(&kids);
    sk__dgram_batch_free(dbuf);
    return rc;
}

const sk_model sk__model_fork = {
    .name = "fork",
    .summary = "a new process for each connection (the tutorial's forking server, reaped)",
    .caps = SK_MODEL_CONCURRENT,
    .run = fork_run,
};
