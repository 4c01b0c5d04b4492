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

#define THREAD_STACK (256 * 1024) /* the blocking driver needs ~70 KiB */

struct job {
    sk_server *s;
    int fd;
    struct sockaddr_storage peer;
    socklen_t plen;
    sk_transport t;
};

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv = PTHREAD_COND_INITIALIZER;
static long live; /* connection threads running */

static void *conn_thread(void *arg)
{
    struct job *j = arg;
    sk__serve_stream_blocking(j->s, j->fd, (struct sockaddr *)&j->peer, j->plen, j->t);
    free(j);
    pthread_mutex_lock(&live_mu);
    live--;
    pthread_cond_broadcast(&live_cv);
    pthread_mutex_unlock(&live_mu);
    return NULL;
}

/* Wait until fewer than `limit` threads run, the server stops, or deadline.
 * limit 1 with deadline -1 waits for all threads while not stopping. */
static void wait_live(sk_server *s, long limit, int64_t deadline)
{
    pthread_mutex_lock(&live_mu);
    while (live >= limit) {
        if (deadline >= 0 && sk_now_ms() >= deadline)
            break;
        if (limit > 1 && sk__stopping(s))
            break;
        /* Stopping: once every thread left is a busy one, say so. */
        long busy = atomic_load(&s->shared->busy);
        if (limit == 1 && sk__stopping(s) && busy > 0 && busy >= live)
            sk__announce_stop(s, busy);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L; /* re-check the stop flag ten times a second */
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&live_cv, &live_mu, &ts);
    }
    pthread_mutex_unlock(&live_mu);
}

static int thread_run(sk_server *s, sk_err *err)
{
    sk_dgram_batch *dbuf = sk__dgram_batch_new();
    if (dbuf == NULL)
        return sk_errno(err, ENOMEM, "buffer");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    while (!sk__stopping(s)) {
        if (s->o.max_conns > 0) {
            wait_live(s, s->o.max_conns, -1); /* the rest wait in the backlog */
            if (sk__stopping(s))
                break;
        }
        int i = sk__wait_work(s, -1, dbuf);
        if (i == SK_WAIT_STOP)
            break;
        if (i < 0)
            continue;
        const sk_listener *l = &s->ls[i];
        struct job *j = malloc(sizeof *j);
        if (j == NULL) {
            poll(NULL, 0, 100);
            continue;
        }
        j->s = s;
        j->t = l->transport;
        j->plen = sizeof j->peer;
        j->fd = sk__accept(s, l, (struct sockaddr *)&j->peer, &j->plen, 0);
        if (j->fd < 0) {
            free(j);
            continue;
        }
        pthread_mutex_lock(&live_mu);
        live++;
        pthread_mutex_unlock(&live_mu);
        pthread_t tid;
        int e = pthread_create(&tid, &attr, conn_thread, j);
        if (e != 0) {
            pthread_mutex_lock(&live_mu);
            live--;
            pthread_mutex_unlock(&live_mu);
            sk_server_log(s, SK_LOG_ERROR, "pthread_create: %s: connection closed", strerror(e));
            close(j->fd);
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
     * grace period when busy. Wait for them (the backstop adds a second). */
    int grace = s->o.grace_ms;
    for (;;) {
        int stopping = sk__stopping(s);
        wait_live(s, 1, stopping ? sk_now_ms() + grace + 1000 : sk_now_ms() + 200);
        pthread_mutex_lock(&live_mu);
        long left = live;
        pthread_mutex_unlock(&live_mu);
        if (left == 0 || stopping)
            break;
    }
    sk__dgram_batch_free(dbuf);
    return 0;
}

const sk_model sk__model_thread = {
    .name = "thread",
    .summary = "a new thread for each connection",
    .caps = SK_MODEL_SHARED | SK_MODEL_CONCURRENT,
    .run = thread_run,
};
