/*
 * model_thread.c - a thread per connection. Like fork, each connection has
 * its own flow of control and may block; unlike fork, creating one is cheap
 * and all connections share memory (so the broker runs here). One thread that
 * crashes takes the whole server with it.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "../lib/tls.h"

#define THREAD_STACK (256 * 1024) /* the blocking driver needs ~70 KiB */

/* One run of the model: how many connection threads are running. Not
 * process-wide, so two servers in one process do not wait for each other. */
struct threads {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long live;
};

struct job {
    sk_server *s;
    struct threads *ts;
    sk_accepted a;
};

static void *conn_thread(void *arg)
{
    struct job *j = arg;
    struct threads *ts = j->ts;
    sk__serve_stream_blocking(j->s, j->a.fd, (struct sockaddr *)&j->a.peer, j->a.plen,
                              j->a.transport);
    free(j);
    /* Once live reaches 0 the process may exit while this thread is still
     * on its way out: what OpenSSL keeps per thread goes first. */
    sk__tls_thread_end();
    pthread_mutex_lock(&ts->mu);
    ts->live--;
    pthread_cond_broadcast(&ts->cv);
    pthread_mutex_unlock(&ts->mu);
    return NULL;
}

/* Wait until fewer than `limit` threads run, the server stops, or deadline.
 * limit 1 with deadline -1 waits for all threads while not stopping. */
static void wait_live(sk_server *s, struct threads *ts, long limit, int64_t deadline)
{
    pthread_mutex_lock(&ts->mu);
    while (ts->live >= limit) {
        if (deadline >= 0 && sk_now_ms() >= deadline)
            break;
        if (limit > 1 && sk__stopping(s))
            break;
        /* Stopping: once every thread left is a busy one, say so. */
        long busy = atomic_load(&s->shared->busy);
        if (limit == 1 && sk__stopping(s) && busy > 0 && busy >= ts->live)
            sk__announce_stop(s, busy);
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 100 * 1000000L; /* re-check the stop flag ten times a second */
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ts->cv, &ts->mu, &t);
    }
    pthread_mutex_unlock(&ts->mu);
}

static long live_now(struct threads *ts)
{
    pthread_mutex_lock(&ts->mu);
    long n = ts->live;
    pthread_mutex_unlock(&ts->mu);
    return n;
}

static int thread_run(sk_server *s, sk_err *err)
{
    sk_dgram_batch *dbuf = sk__dgram_batch_new();
    if (dbuf == NULL)
        return sk_errno(err, ENOMEM, "buffer");
    struct threads ts = {.live = 0};
    pthread_mutex_init(&ts.mu, NULL);
    pthread_cond_init(&ts.cv, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    while (!sk__stopping(s)) {
        if (s->o.max_conns > 0) {
            wait_live(s, &ts, s->o.max_conns, -1); /* the rest wait in the backlog */
            if (sk__stopping(s))
                break;
        }
        struct job *j = malloc(sizeof *j);
        if (j == NULL) {
            poll(NULL, 0, 100);
            continue;
        }
        int i = sk__accept_next(s, -1, dbuf, 0, &j->a);
        if (i < 0) {
            free(j);
            if (i == SK_WAIT_STOP)
                break;
            continue;
        }
        j->s = s;
        j->ts = &ts;
        pthread_mutex_lock(&ts.mu);
        ts.live++;
        pthread_mutex_unlock(&ts.mu);
        pthread_t tid;
        int e = pthread_create(&tid, &attr, conn_thread, j);
        if (e != 0) {
            pthread_mutex_lock(&ts.mu);
            ts.live--;
            pthread_mutex_unlock(&ts.mu);
            sk_server_log(s, SK_LOG_ERROR, "pthread_create: %s: connection closed", strerror(e));
            close(j->a.fd);
            free(j);
            poll(NULL, 0, 100); /* out of threads: back off rather than spin */
            continue;
        }
        if (s->o.once)
            break;
    }
    pthread_attr_destroy(&attr);
    for (size_t i = 0; i < s->nls; i++)
        sk_listener_close(&s->ls[i]);
    /* Connection threads stop by themselves: at once when idle, after the
     * grace period when busy, at once on stop-now. Wait for them (the
     * backstop adds a second). */
    for (;;) {
        int stopping = sk__stopping(s);
        wait_live(s, &ts, 1, stopping ? sk_now_ms() + s->o.grace_ms + 1000 : sk_now_ms() + 200);
        if (live_now(&ts) == 0)
            break;
        if (stopping) {
            /* The backstop passed with threads still running: they use ts
             * and the server, so neither may go away under them. Wait. */
            wait_live(s, &ts, 1, -1);
            break;
        }
    }
    pthread_cond_destroy(&ts.cv);
    pthread_mutex_destroy(&ts.mu);
    sk__dgram_batch_free(dbuf);
    return 0;
}

const sk_model sk__model_thread = {
    .name = "thread",
    .summary = "a new thread for each connection",
    .caps = SK_MODEL_SHARED | SK_MODEL_CONCURRENT,
    .run = thread_run,
};
