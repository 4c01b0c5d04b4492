/*
 * model_event.c - one process, one thread per event loop, many connections:
 * the tutorial's "single process concurrent server" done with select(), and
 * the same code with poll() and epoll(). The backend is the only difference
 * (see ev.h); --workers N runs N loops in N threads, all accepting.
 *
 * Each connection is non-blocking. The loop reads when the socket is readable
 * and the connection can take more (backpressure), writes as soon as output is
 * queued (and again when the socket is writable), and frees the connection
 * when it is finished. Timers (idle timeout, lingering close, shutdown grace)
 * are checked by a sweep a few times a second, only while any is running.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "ev.h"

#define ACCEPT_BATCH 64
#define DGRAM_BATCH 64
#define SWEEP_MS 250

struct worker;

/* What a listener's callback needs: its worker and its listener. */
typedef struct lwatch {
    struct worker *w;
    const sk_listener *l;
} lwatch;

typedef struct worker {
    sk_server *s;
    atomic_int *stopped; /* workers that have begun stopping, shared by all */
    int nworkers;
    lwatch *lw; /* one per listener */
    const sk_ev_backend *be;
    sk_ev_loop *loop;
    pthread_t tid;
    uint8_t *scratch;     /* one read's worth, shared by all connections of this loop */
    sk_dgram_batch *dbuf; /* datagrams in, replies out */
    sk_conn **conns;      /* every open connection, for timers and shutdown */
    size_t nconns, capconns;
    size_t nlinger; /* connections in a lingering close: they need the timer sweep */
    int accepting;
    int stopping;
    int64_t grace_deadline;
    int64_t last_sweep;
    /* Cross-thread wake-ups (broker posts): a pipe and the connections to look at. */
    int wake_rd, wake_wr;
    pthread_mutex_t mu;
    sk_conn **pending;
    size_t npending, cappending;
    sk_err err;
    int failed;
} worker;

static void settle(worker *w, sk_conn *c);

static void set_accepting(worker *w, int on);

static int add_conn(worker *w, sk_conn *c)
{
    if (w->nconns == w->capconns) {
        size_t cap = w->capconns ? w->capconns * 2 : 64;
        sk_conn **n = realloc(w->conns, cap * sizeof *n);
        if (n == NULL)
            return -1;
        w->conns = n;
        w->capconns = cap;
    }
    c->loop_index = (int)w->nconns;
    w->conns[w->nconns++] = c;
    return 0;
}

static void drop(worker *w, sk_conn *c)
{
    if (c->flags & SK_C_LINGERING)
        w->nlinger--;
    sk_ev_forget(w->loop, c->fd); /* sk__conn_free closes it right after */
    size_t i = (size_t)c->loop_index;
    w->conns[i] = w->conns[--w->nconns];
    w->conns[i]->loop_index = (int)i;
    if (c->inbox) {
        pthread_mutex_lock(&w->mu);
        for (size_t k = 0; k < w->npending; k++)
            if (w->pending[k] == c)
                w->pending[k] = w->pending[--w->npending];
        pthread_mutex_unlock(&w->mu);
    }
    sk__conn_free(c);
    if (!w->stopping && sk__count_served(w->s))
        sk_server_stop(w->s);
    if (!w->accepting && !w->stopping)
        set_accepting(w, 1);
}

static void on_conn(sk_ev_loop *loop, int fd, unsigned fired, void *ud)
{
    (void)loop;
    (void)fd;
    sk_conn *c = ud;
    worker *w = c->loop_data;
    if (fired & SK_EV_READ) {
        if (sk__conn_wants_read(c) || (c->flags & SK_C_WSHUT))
            sk__conn_read(c, w->scratch, SK_LOOP_READ_CHUNK);
        else if (!sk__conn_wants_write(c))
            c->flags |= SK_C_DEAD; /* hangup or error, and nothing left to do */
    }
    settle(w, c);
}

/* After any event: write what is queued, then free or re-arm. */
static void settle(worker *w, sk_conn *c)
{
    if (sk__conn_wants_write(c))
        sk__conn_write(c); /* optimistic: most writes complete without waiting */
    if (sk__conn_finished(c)) {
        drop(w, c);
        return;
    }
    if ((c->flags & (SK_C_WSHUT | SK_C_LINGERING)) == SK_C_WSHUT) {
        c->flags |= SK_C_LINGERING; /* its deadline now needs the sweep */
        w->nlinger++;
    }
    unsigned mask = 0;
    if (sk__conn_wants_read(c) || ((c->flags & SK_C_WSHUT) && !(c->flags & SK_C_EOF)))
        mask |= SK_EV_READ;
    if (sk__conn_wants_write(c))
        mask |= SK_EV_WRITE;
    if (mask != sk_ev_mask(w->loop, c->fd) && sk_ev_watch(w->loop, c->fd, mask, on_conn, c) < 0) {
        c->flags |= SK_C_DEAD;
        drop(w, c);
    }
}

static void ev_wake(sk_conn *c)
{
    worker *w = c->loop_data;
    pthread_mutex_lock(&w->mu);
    int first = w->npending == 0;
    if (w->npending == w->cappending) {
        size_t cap = w->cappending ? w->cappending * 2 : 64;
        sk_conn **n = realloc(w->pending, cap * sizeof *n);
        if (n == NULL) {
            pthread_mutex_unlock(&w->mu);
            return; /* the post stays in the inbox until the next wake-up */
        }
        w->pending = n;
        w->cappending = cap;
    }
    w->pending[w->npending++] = c;
    pthread_mutex_unlock(&w->mu);
    if (first) {
        ssize_t r = write(w->wake_wr, "w", 1);
        (void)r;
    }
}

static void on_wake(sk_ev_loop *loop, int fd, unsigned fired, void *ud)
{
    (void)loop;
    (void)fired;
    worker *w = ud;
    char junk[64];
    while (read(fd, junk, sizeof junk) > 0) {
    }
    for (;;) {
        pthread_mutex_lock(&w->mu);
        sk_conn *c = w->npending ? w->pending[--w->npending] : NULL;
        pthread_mutex_unlock(&w->mu);
        if (c == NULL)
            break;
        sk__conn_take_inbox(c);
        settle(w, c);
    }
}

static void new_conn(worker *w, const sk_listener *l, int fd, struct sockaddr *peer, socklen_t plen)
{
    sk_conn *c = sk__conn_new(w->s, fd, peer, plen, l->transport);
    if (c == NULL) {
        sk_server_log(w->s, SK_LOG_ERROR, "out of memory: connection closed");
        close(fd);
        return;
    }
    c->loop_data = w;
    w->s->wake = ev_wake;
    if (add_conn(w, c) < 0) {
        sk__conn_free(c);
        return;
    }
    if (sk_ev_watch(w->loop, fd, SK_EV_READ, on_conn, c) < 0) {
        sk_server_log(w->s, SK_LOG_ERROR, "%s cannot watch descriptor %d: connection closed",
                      w->be->name, fd);
        c->flags |= SK_C_DEAD;
        drop(w, c);
        return;
    }
    sk__conn_open(c);
    settle(w, c);
}

static void on_listener(sk_ev_loop *loop, int fd, unsigned fired, void *ud)
{
    (void)loop;
    (void)fd;
    (void)fired;
    const lwatch *lw = ud;
    const sk_listener *l = lw->l;
    worker *w = lw->w;
    if (!sk_transport_is_stream(l->transport)) {
        sk__serve_datagrams(w->s, l, DGRAM_BATCH, w->dbuf);
        if (w->s->o.once && atomic_load(&w->s->served) > 0)
            sk_server_stop(w->s);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && w->accepting; i++) {
        if (w->s->o.max_conns > 0 && atomic_load(&w->s->nconns) >= w->s->o.max_conns) {
            /* At the limit: new connections wait in the kernel's backlog. */
            set_accepting(w, 0);
            break;
        }
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int cfd = sk__accept(w->s, l, (struct sockaddr *)&peer, &plen, 1);
        if (cfd < 0)
            break;
        new_conn(w, l, cfd, (struct sockaddr *)&peer, plen);
        if (w->s->o.once) {
            set_accepting(w, 0); /* one connection is all --once serves */
            break;
        }
    }
}

static void set_accepting(worker *w, int on)
{
    if (w->accepting == on)
        return;
    if (on && w->s->o.once && atomic_load(&w->s->served) > 0)
        return;
    for (size_t i = 0; i < w->s->nls; i++)
        sk_ev_watch(w->loop, w->s->ls[i].fd, on ? SK_EV_READ : 0, on_listener, &w->lw[i]);
    w->accepting = on;
}

static void begin_stop(worker *w)
{
    if (w->stopping)
        return;
    set_accepting(w, 0);
    w->stopping = 1;
    /* The last loop to stop watching the listeners closes them: no other
     * thread can be in accept() on them any more. */
    if (atomic_fetch_add(w->stopped, 1) + 1 == w->nworkers)
        sk__stop_listening(w->s);
    sk_ev_watch(w->loop, w->s->stop_rd, 0, NULL, NULL);
    int grace = w->s->o.grace_ms > 0 ? w->s->o.grace_ms : SK_GRACE_DEFAULT_MS;
    w->grace_deadline = sk_now_ms() + grace;
    /* Idle connections go now; busy ones get the grace period. */
    for (size_t i = w->nconns; i-- > 0;) {
        if (i < w->nconns && sk__conn_idle(w->conns[i]))
            drop(w, w->conns[i]);
    }
}

static void on_stop(sk_ev_loop *loop, int fd, unsigned fired, void *ud)
{
    (void)loop;
    (void)fd;
    (void)fired;
    begin_stop(ud);
}

static void sweep(worker *w)
{
    int64_t now = sk_now_ms();
    w->last_sweep = now;
    int idle = w->s->o.idle_timeout_ms;
    for (size_t i = w->nconns; i-- > 0;) {
        if (i >= w->nconns)
            continue;
        sk_conn *c = w->conns[i];
        int expired = 0;
        if (c->flags & SK_C_WSHUT)
            expired = now - c->last_io_ms >= SK_LINGER_MS;
        else if (idle > 0 && now - c->last_io_ms >= idle) {
            expired = 1;
            if (w->s->o.verbose)
                sk_server_log(w->s, SK_LOG_INFO, "idle timeout: %s", sk_conn_peer_name(c));
        }
        if (w->stopping && (now >= w->grace_deadline || sk__conn_idle(c)))
            expired = 1;
        if (expired)
            drop(w, c);
        else if (sk__conn_check_timer(c, now))
            settle(w, c);
    }
    if (!w->accepting && !w->stopping)
        set_accepting(w, 1); /* a connection of another loop may have closed */
}

static int needs_timer(const worker *w)
{
    if (w->stopping || !w->accepting || w->s->o.idle_timeout_ms > 0)
        return 1;
    if (w->s->svc->on_timeout && w->nconns > 0)
        return 1;          /* the service uses timers (http: header and keep-alive deadlines) */
    return w->nlinger > 0; /* counted as they start, not found by a scan per wakeup */
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    while (!(w->stopping && w->nconns == 0)) {
        int timer = needs_timer(w);
        if (sk_ev_run_once(w->loop, timer ? SWEEP_MS / 2 : -1) < 0) {
            sk_errno(&w->err, errno, "%s", w->be->name);
            w->failed = 1;
            break;
        }
        if (timer && sk_now_ms() - w->last_sweep >= SWEEP_MS / 2)
            sweep(w);
    }
    /* Whatever is left (an error exit): close it. */
    while (w->nconns > 0)
        drop(w, w->conns[w->nconns - 1]);
    return NULL;
}

static void worker_free(worker *w)
{
    sk_ev_free(w->loop);
    free(w->scratch);
    sk__dgram_batch_free(w->dbuf);
    free(w->conns);
    free(w->pending);
    free(w->lw);
    if (w->wake_rd >= 0)
        close(w->wake_rd);
    if (w->wake_wr >= 0)
        close(w->wake_wr);
    pthread_mutex_destroy(&w->mu);
}

static int worker_init(worker *w, sk_server *s, const sk_ev_backend *be, sk_err *err)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->be = be;
    w->wake_rd = w->wake_wr = -1;
    pthread_mutex_init(&w->mu, NULL);
    w->loop = sk_ev_new(be);
    w->scratch = malloc(SK_LOOP_READ_CHUNK);
    w->dbuf = sk__dgram_batch_new();
    w->lw = calloc(s->nls, sizeof *w->lw);
    int p[2];
    if (w->loop == NULL || w->scratch == NULL || w->dbuf == NULL || w->lw == NULL)
        return sk_errno(err, errno ? errno : ENOMEM, "%s: event loop", be->name);
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
        return sk_errno(err, errno, "pipe");
    w->wake_rd = p[0];
    w->wake_wr = p[1];
    if (sk_ev_watch(w->loop, w->wake_rd, SK_EV_READ, on_wake, w) < 0 ||
        sk_ev_watch(w->loop, s->stop_rd, SK_EV_READ, on_stop, w) < 0)
        return sk_errno(err, errno, "%s: watch", be->name);
    for (size_t i = 0; i < s->nls; i++)
        w->lw[i] = (lwatch){.w = w, .l = &s->ls[i]};
    set_accepting(w, 1);
    return 0;
}

static int event_run(sk_server *s, const sk_ev_backend *be, sk_err *err)
{
    int n = s->o.workers > 0 ? s->o.workers : 1;
    worker *ws = calloc((size_t)n, sizeof *ws);
    if (ws == NULL)
        return sk_errno(err, ENOMEM, "workers");
    int rc = 0, started = 0;
    atomic_int stopped;
    atomic_init(&stopped, 0);
    for (; started < n; started++) {
        if (worker_init(&ws[started], s, be, err) < 0) {
            rc = -1;
            worker_free(&ws[started]);
            break;
        }
        ws[started].stopped = &stopped;
        ws[started].nworkers = n;
        if (started > 0 && pthread_create(&ws[started].tid, NULL, worker_main, &ws[started]) != 0) {
            rc = sk_errno(err, errno, "pthread_create");
            worker_free(&ws[started]);
            break;
        }
    }
    if (rc == 0)
        worker_main(&ws[0]);
    else
        sk_server_stop(s);
    for (int i = 1; i < started; i++)
        pthread_join(ws[i].tid, NULL);
    for (int i = 0; i < started; i++) {
        if (ws[i].failed && rc == 0) {
            *err = ws[i].err;
            rc = -1;
        }
        worker_free(&ws[i]);
    }
    free(ws);
    return rc;
}

static int run_select(sk_server *s, sk_err *err)
{
    return event_run(s, &sk__ev_select, err);
}

static int run_poll(sk_server *s, sk_err *err)
{
    return event_run(s, &sk__ev_poll, err);
}

const sk_model sk__model_select = {
    .name = "select",
    .summary = "one process, one select() loop (descriptors below 1024)",
    .caps = SK_MODEL_SHARED | SK_MODEL_CONCURRENT,
    .run = run_select,
};

const sk_model sk__model_poll = {
    .name = "poll",
    .summary = "one process, one poll() loop per worker",
    .caps = SK_MODEL_SHARED | SK_MODEL_CONCURRENT,
    .run = run_poll,
};

#ifdef __linux__
static int run_epoll(sk_server *s, sk_err *err)
{
    return event_run(s, &sk__ev_epoll, err);
}

const sk_model sk__model_epoll = {
    .name = "epoll",
    .summary = "one process, one epoll loop per worker (Linux; the default)",
    .caps = SK_MODEL_SHARED | SK_MODEL_CONCURRENT,
    .run = run_epoll,
};
#endif
