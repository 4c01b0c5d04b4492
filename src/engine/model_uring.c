/*
 * model_uring.c - the eighth design: completion-based, on io_uring (Linux).
 *
 * The readiness models ask "may I read?" and then read; this one asks the
 * kernel to read and is told what was read. Per worker (--workers N: N rings
 * in N threads), one ring, set up single-issuer with deferred task running:
 * completions are produced only while the loop waits, in its own thread.
 *
 * Plain stream connections take the completion path: a multishot accept per
 * listener, a multishot receive per connection into the worker's
 * provided-buffer ring (no buffer per idle connection), at most one send in
 * flight per connection (a copy of what sk__conn_output hands out: the
 * connection's buffer may move while the kernel still reads it; a file goes
 * by sendfile, waiting for writability with a poll when the socket is full),
 * closes as ring operations, all submitted together by the one io_uring_enter that
 * also waits. Everything else is readiness through one-shot IORING_OP_POLL_ADD
 * (re-armed after each event, so a source not drained fires again): TLS
 * connections (the TLS transport reads and writes the socket itself),
 * datagram listeners, the stop pipes, the cross-thread wake pipe and the
 * services' own descriptors (sk_conn_watch).
 *
 * conn.c, conn_io.c and policy.c decide what happens, as in every model;
 * deadlines are the loop's timer heap (the wait's timeout); stop, grace and
 * --max-conns / --once behave as in model_event.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/outq.h"
#include "uring_loop.h"

#ifdef SK_HAVE_URING

/* ---- accepting ---- */

/* A connection accepted and admitted: serve it. */
static void new_conn(worker *w, const sk_listener *l, int fd, struct sockaddr_storage *peer,
                     socklen_t plen)
{
    sk_conn *c = sk__conn_accepted(w->s, fd, (struct sockaddr *)peer, plen, l->transport);
    if (c == NULL)
        return;
    uconn *u = calloc(1, sizeof *u);
    if (u == NULL || sk__uring_push(&w->conns, &w->nconns, &w->capconns, u) < 0) {
        free(u);
        sk_server_log(w->s, SK_LOG_ERROR, "out of memory: connection closed");
        sk__conn_destroy(c);
        return;
    }
    u->c = c;
    u->w = w;
    u->fd = fd;
    /* A PROXY header is read by the stage itself (peek, then exactly its
     * bytes), on readiness; the multishot receive starts after it. */
    u->plain_tp = c->tp.ops == &sk__tp_plain_ops;
    u->plain = u->plain_tp && !(c->flags & SK_C_PROXY);
    c->loop_data = u;
    sk__conn_begin(c);
    sk__uring_settle(w, u);
}

static void arm_listener(worker *w, lstate *ls)
{
    const sk_listener *l = ls->l;
    if (!sk_transport_is_stream(l->transport)) {
        ls->tag = T_DPOLL;
        sk__uring_poll_arm(w, ls, T_DPOLL, l->fd, POLLIN);
    } else if (w->s->o.max_conns > 0 || w->s->o.once || ls->emfile) {
        /* Under a limit (--max-conns, --once) a connection must not be
         * accepted before there is room, nor by two loops at once: what a
         * multishot accept took cannot be given back. And at EMFILE an armed
         * accept fails at once, pending connection or not: only readiness
         * says there is one to shed. So: readiness, then accept here. */
        ls->tag = T_LPOLL;
        sk__uring_poll_arm(w, ls, T_LPOLL, l->fd, POLLIN);
    } else {
        ls->tag = T_ACCEPT;
        io_uring_prep_multishot_accept(sk__uring_sqe_for(w, ls, T_ACCEPT), l->fd, NULL, NULL,
                                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    ls->armed = 1;
    ls->cancel = 0;
    w->lops++;
}

/* Accept (or stop accepting) as the limits say, on every stream listener. */
void sk__uring_sync_accept(worker *w)
{
    sk_server *s = w->s;
    int room = s->o.max_conns == 0 || atomic_load(&s->nconns) < s->o.max_conns;
    int on = w->accepting && !w->stopping && room;
    if (s->o.once && atomic_load(&s->served) > 0)
        on = 0;
    w->retry = w->accepting && !w->stopping && !room;
    for (size_t i = 0; i < s->nls; i++) {
        lstate *ls = &w->ls[i];
        if (!sk_transport_is_stream(ls->l->transport) || ls->l->fd < 0)
            continue;
        if (on && !ls->armed)
            arm_listener(w, ls);
        else if (!on && ls->armed && !ls->cancel) {
            sk__uring_cancel(w, ls, ls->tag);
            ls->cancel = 1;
        }
    }
}

static void on_accept(worker *w, lstate *ls, int res, unsigned flags)
{
    const sk_listener *l = ls->l;
    if (!(flags & IORING_CQE_F_MORE)) {
        ls->armed = ls->cancel = 0;
        w->lops--;
    }
    if (res >= 0) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (w->stopping) {
            close(res); /* came in while the cancel was on its way */
            return;
        }
        /* A multishot accept has one address buffer for every connection it
         * makes: the peer is asked for instead, and only when wanted (a -v
         * line, a report, a service that names it) unless admission looks
         * at it now (or TLS, which names the peer from the start). */
        if (l->transport == SK_TCP && w->s->o.tls == NULL && !sk__admit_needs_peer(w->s)) {
            new_conn(w, l, res, NULL, 0);
            return;
        }
        if (getpeername(res, (struct sockaddr *)&peer, &plen) < 0 ||
            !sk__admit(w->s, (struct sockaddr *)&peer, plen, l->transport))
            close(res); /* gone already (reset), or refused (admit.c) */
        else
            new_conn(w, l, res, &peer, plen);
    } else if (res == -EMFILE || res == -ENFILE) {
        ls->emfile = 1; /* readiness until a descriptor is free again (on_lpoll) */
    } else if (res != -ECANCELED && res != -EAGAIN && res != -EINTR) {
        sk_server_log(w->s, SK_LOG_ERROR, "accept %s: %s", l->name, strerror(-res));
        if (!(flags & IORING_CQE_F_MORE) && (res == -ENOBUFS || res == -ENOMEM)) {
            w->retry = 1; /* back off: the retry timer arms it again */
            return;
        }
    }
    if (!w->stopping)
        sk__uring_sync_accept(w);
}

/* A stream listener is readable: accept here, as the event loops do. */
static void on_lpoll(worker *w, lstate *ls, int res)
{
    ls->armed = ls->cancel = 0;
    w->lops--;
    if (w->stopping || res <= 0) {
        if (!w->stopping)
            sk__uring_sync_accept(w);
        return;
    }
    sk_server *s = w->s;
    for (int i = 0; i < 64 && w->accepting; i++) {
        if (s->o.max_conns > 0 && atomic_load(&s->nconns) >= s->o.max_conns)
            break; /* at the limit: new connections wait in the backlog */
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        /* admitted (admit.c), or shed at EMFILE with the reserve descriptor */
        int fd = sk__accept(s, ls->l, (struct sockaddr *)&peer, &plen, 1);
        if (fd < 0)
            break;
        ls->emfile = 0;
        new_conn(w, ls->l, fd, &peer, plen);
        if (s->o.once) {
            w->accepting = 0; /* one connection is all --once serves */
            break;
        }
    }
    sk__uring_sync_accept(w);
}

static void on_dpoll(worker *w, lstate *ls, int res)
{
    ls->armed = ls->cancel = 0;
    w->lops--;
    if (w->stopping)
        return;
    if (res > 0) {
        sk__serve_datagrams(w->s, ls->l, DGRAM_BATCH, w->dbuf);
        if (w->s->o.once && atomic_load(&w->s->served) > 0) {
            sk_server_stop(w->s);
            return;
        }
    }
    arm_listener(w, ls); /* one-shot: fires again at once if datagrams are left */
}

/* ---- cross-thread wake-ups (SK_SVC_SHARED) ---- */

static void uring_wake(sk_conn *c)
{
    uconn *u = c->loop_data;
    worker *w = u->w;
    pthread_mutex_lock(&w->mu);
    int first = w->npending == 0;
    if (sk__uring_push(&w->pending, &w->npending, &w->cappending, u) < 0) {
        pthread_mutex_unlock(&w->mu);
        return; /* the post stays in the inbox until the next wake-up */
    }
    pthread_mutex_unlock(&w->mu);
    if (first) {
        ssize_t r = write(w->wake_wr, "w", 1);
        (void)r;
    }
}

static void on_wake(worker *w)
{
    char junk[64];
    while (read(w->wake_rd, junk, sizeof junk) > 0) {
    }
    for (;;) {
        pthread_mutex_lock(&w->mu);
        uconn *u = w->npending ? w->pending[--w->npending] : NULL;
        pthread_mutex_unlock(&w->mu);
        if (u == NULL)
            break;
        sk__conn_take_inbox(u->c);
        sk__uring_settle(w, u);
    }
    sk__uring_poll_arm(w, w, T_WAKE, w->wake_rd, POLLIN);
}

/* sk_server_on_readable: the program's descriptor (its SIGHUP pipe), polled
 * once at a time and re-armed after the call. */
static void on_hook(worker *w, sk__hook *h, int res)
{
    if (res < 0) /* cancelled at the ring's end, or the descriptor is gone */
        return;
    if (sk__hook_fire(h) == 0)
        sk__uring_poll_arm(w, h, T_HOOK, h->fd, POLLIN);
}

/* ---- stopping ---- */

/* Stopping: take what waits in the listeners' backlogs before they close
 * (acceptor.c says why). */
static void take_one(void *ud, const sk_listener *l, int fd, struct sockaddr_storage *peer,
                     socklen_t plen)
{
    new_conn(ud, l, fd, peer, plen);
}

static void drain_backlog(worker *w)
{
    for (size_t i = 0; i < w->s->nls; i++)
        if (sk__drain_backlog(w->s, w->ls[i].l, take_one, w) < 0)
            return;
}

static void begin_stop(worker *w)
{
    if (w->stopping)
        return;
    if (w->accepting && !w->s->o.once && !sk__stopping_now(w->s))
        drain_backlog(w);
    w->stopping = 1;
    w->accepting = 0;
    for (size_t i = 0; i < w->s->nls; i++) {
        lstate *ls = &w->ls[i];
        if (ls->armed && !ls->cancel) {
            sk__uring_cancel(w, ls, ls->tag);
            ls->cancel = 1;
        }
    }
    sk__uring_poll_arm(w, w, T_NOW, w->s->now_rd, POLLIN);
    w->now = sk_now_ms();
    w->grace_deadline = w->now + w->s->o.grace_ms;
    /* Take a request already in the socket (it makes its connection busy);
     * then idle connections go now, busy ones get the grace period. Every
     * completion seen so far was handled, so this read comes after them. */
    for (size_t i = w->nconns; i-- > 0;) {
        if (i >= w->nconns)
            continue;
        uconn *u = w->conns[i];
        if (sk__uring_held_len(u) == 0 && !u->held_eof)
            sk__conn_pump_read(u->c, w->scratch, SK_LOOP_READ_CHUNK);
        sk__uring_settle(w, u);
    }
    /* Announced as busy: those with work in flight (not the ones only given
     * a moment for a request that may be on its way: policy.c). */
    int busy = 0;
    for (size_t i = 0; i < w->nconns; i++)
        busy += w->conns[i]->c != NULL &&
                (!sk__conn_idle(w->conns[i]->c) || sk__uring_held_len(w->conns[i]) > 0 ||
                 w->conns[i]->held_eof);
    sk__grace_busy(w->s, busy);
}

/* Once this loop's listener operations are over (the kernel holds a
 * listener while an accept is armed on it), its part of the stop is done;
 * the last loop closes the listeners and says how many are still busy. */
static void maybe_stopped(worker *w)
{
    if (!w->stopping || w->counted || w->lops > 0)
        return;
    w->counted = 1;
    sk__loop_listeners_release(w->s, w->own); /* deploy: this loop's own sockets */
    if (atomic_fetch_add(w->stopped, 1) + 1 == w->nworkers) {
        sk__stop_listening(w->s);
        sk__announce_stop(w->s, atomic_load(&w->s->shared->busy));
    }
}

/* ---- the loop ---- */

static void dispatch(worker *w, uint64_t ud, int res, unsigned flags)
{
    void *obj = sk__uring_ud_obj(ud);
    unsigned tag = sk__uring_ud_tag(ud);
    switch (tag) {
    case T_NONE: return;
    case T_RECV: sk__uring_on_recv(w, obj, res, flags); return;
    case T_SEND: sk__uring_on_send(w, obj, res); return;
    case T_CPOLL: sk__uring_on_cpoll(w, obj, res); return;
    case T_ACCEPT: on_accept(w, obj, res, flags); return;
    case T_DPOLL: on_dpoll(w, obj, res); return;
    case T_LPOLL: on_lpoll(w, obj, res); return;
    case T_STOP: w->stop_seen = 1; return;
    case T_NOW: w->now_seen = 1; return;
    case T_WAKE: on_wake(w); return;
    case T_HOOK: on_hook(w, obj, res); return;
    default: sk__uring_on_watch(w, obj, (int)(tag - T_WATCH0), res);
    }
}

static void fire_timers(worker *w)
{
    sk__timer *t;
    int64_t grace = w->stopping ? w->grace_deadline : -1;
    while ((t = sk__timers_pop_expired(&w->timers, w->now)) != NULL) {
        sk_conn *c = (sk_conn *)(void *)((char *)t - offsetof(sk_conn, timer));
        if (sk__conn_expired(c, w->now, grace) == SK_EXP_CLOSE)
            sk__uring_drop(w, c->loop_data);
        else
            sk__uring_settle(w, c->loop_data);
    }
}

static void run_again(worker *w)
{
    for (size_t i = w->nagain; i-- > 0;) {
        if (i >= w->nagain)
            continue;
        uconn *u = w->again[i];
        w->again[i] = w->again[--w->nagain];
        u->again = 0;
        if (sk__conn_wants_read(u->c))
            sk__conn_pump_read(u->c, w->scratch, SK_LOOP_READ_CHUNK);
        sk__uring_settle(w, u);
    }
}

/* Wait for completions (submitting what is queued in the same call) and
 * handle them. 0, or -1 with errno. */
static int run_once(worker *w, int timeout_ms)
{
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                   .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
    int r = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, timeout_ms < 0 ? NULL : &ts, NULL);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
        errno = -r;
        return -1;
    }
    w->now = sk_now_ms();
    for (;;) {
        struct {
            uint64_t ud;
            int res;
            unsigned flags;
        } batch[CQE_BATCH];
        unsigned head, n = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe)
        {
            batch[n].ud = cqe->user_data;
            batch[n].res = cqe->res;
            batch[n].flags = cqe->flags;
            if (++n == CQE_BATCH)
                break;
        }
        if (n == 0)
            break;
        io_uring_cq_advance(&w->ring, n);
        for (unsigned i = 0; i < n; i++)
            dispatch(w, batch[i].ud, batch[i].res, batch[i].flags);
    }
    return 0;
}

static void *worker_main(void *arg);

static int ring_start(worker *w, sk_err *err)
{
    if (sk__uring_ring_init(&w->ring, RING_ENTRIES, err) < 0)
        return -1;
    w->ring_ok = 1;
    if (sk__uring_bufs_init(&w->ring, &w->bufs, NBUFS, BUF_SIZE, BGID, err) < 0)
        return -1;
    sk__uring_poll_arm(w, w, T_WAKE, w->wake_rd, POLLIN);
    sk__uring_poll_arm(w, w, T_STOP, w->s->stop_rd, POLLIN);
    for (int i = 0; w->index == 0 && i < w->s->nhooks; i++) /* the first loop is enough */
        sk__uring_poll_arm(w, &w->s->hooks[i], T_HOOK, w->s->hooks[i].fd, POLLIN);
    w->accepting = 1;
    for (size_t i = 0; i < w->s->nls; i++)
        if (!sk_transport_is_stream(w->ls[i].l->transport))
            arm_listener(w, &w->ls[i]);
    sk__uring_sync_accept(w);
    return 0;
}

/* The loop runs until stopped, every connection gone, the listener
 * operations over (their cancels complete in the next wait) and the kernel
 * done with the connections (zombies). A closed connection's receive
 * holds its socket open (the peer sees no EOF) until its cancel completes,
 * and with deferred task running that happens only while this thread waits:
 * a loop that ended first left them open until the last loop ended. The
 * wait is bounded (ZOMBIE_WAIT_MS); the ring's end cancels what is left. */
static int loop_over(worker *w)
{
    if (!(w->stopping && w->nconns == 0 && w->counted))
        return 0;
    if (w->nzombies == 0)
        return 1;
    if (w->zombie_deadline == 0)
        w->zombie_deadline = w->now + ZOMBIE_WAIT_MS;
    return w->now >= w->zombie_deadline;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    if (!w->ring_ok && ring_start(w, &w->err) < 0) {
        w->failed = 1;
        sk_server_stop(w->s);
        return NULL;
    }
    sk__outq_batch_begin(); /* reports and logs: one write per wakeup, not per line */
    while (!loop_over(w)) {
        sk__outq_batch_flush(); /* before sleeping */
        w->now = sk_now_ms();
        int timeout = w->nagain ? 0 : sk__timers_timeout(&w->timers, w->now);
        if (w->retry && (timeout < 0 || timeout > ACCEPT_RETRY_MS))
            timeout = ACCEPT_RETRY_MS;
        if (w->zombie_deadline > 0 && (timeout < 0 || timeout > w->zombie_deadline - w->now))
            timeout = (int)(w->zombie_deadline > w->now ? w->zombie_deadline - w->now : 0);
        if (run_once(w, timeout) < 0) {
            sk_errno(&w->err, errno, "io_uring");
            w->failed = 1;
            break;
        }
        if (w->stop_seen && !w->stopping) {
            sk__saw_stop(w->s);
            begin_stop(w);
        }
        if (w->now_seen) {
            sk__saw_stop_now(w->s);
            while (w->nconns > 0)
                sk__uring_drop(w, w->conns[w->nconns - 1]);
        }
        maybe_stopped(w);
        w->now = sk_now_ms();
        fire_timers(w);
        run_again(w);
        if (w->retry && !w->stopping)
            sk__uring_sync_accept(w); /* a connection of another loop may have closed */
    }
    while (w->nconns > 0) /* an error exit: close what is left */
        sk__uring_drop(w, w->conns[w->nconns - 1]);
    io_uring_submit(&w->ring); /* the closes */
    sk__outq_batch_end();
    return NULL;
}

static void worker_free(worker *w)
{
    if (w->ring_ok) {
        /* The ring first: it cancels what is in flight, and only then is
         * the memory the kernel could still fill unmapped. */
        io_uring_queue_exit(&w->ring);
        sk__uring_bufs_free(NULL, &w->bufs);
    }
    for (size_t i = 0; i < w->nzombies; i++)
        sk__uring_uconn_free(w->zombies[i]); /* awaited completions the ring's end cancelled */
    free(w->zombies);
    while (w->npool > 0)
        free(w->pool[--w->npool]);
    free(w->scratch);
    sk__dgram_batch_free(w->dbuf);
    free(w->conns);
    free(w->again);
    sk__timers_free(&w->timers);
    free(w->pending);
    free(w->ls);
    sk__loop_listeners_free(w->s, w->own);
    if (w->wake_rd >= 0)
        close(w->wake_rd);
    if (w->wake_wr >= 0)
        close(w->wake_wr);
    pthread_mutex_destroy(&w->mu);
}

static int own_listeners(worker *w, sk_err *err)
{
    if ((w->own = sk__loop_listeners_new(w->s, err)) == NULL)
        return -1;
    for (size_t i = 0; i < w->s->nls; i++)
        w->ls[i].l = &w->own[i];
    return 0;
}

static int worker_init(worker *w, sk_server *s, int index, sk_err *err)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->index = index;
    w->wake_rd = w->wake_wr = -1;
    pthread_mutex_init(&w->mu, NULL);
    w->scratch = malloc(SK_LOOP_READ_CHUNK);
    w->dbuf = sk__dgram_batch_new();
    w->ls = calloc(s->nls, sizeof *w->ls);
    int p[2];
    if (w->scratch == NULL || w->dbuf == NULL || w->ls == NULL)
        return sk_errno(err, ENOMEM, "io_uring: loop");
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
        return sk_errno(err, errno, "pipe");
    w->wake_rd = p[0];
    w->wake_wr = p[1];
    for (size_t i = 0; i < s->nls; i++)
        w->ls[i] = (lstate){.w = w, .l = &s->ls[i]};
    if (index > 0 && s->o.reuseport && own_listeners(w, err) < 0)
        return -1;
    s->wake = uring_wake;
    s->watch = sk__uring_watch;
    /* The first ring is made here, in the thread that runs it, so that a
     * kernel without io_uring fails the start with its reason; the others
     * in their own threads (each ring has a single issuer). */
    if (index == 0 && ring_start(w, err) < 0)
        return -1;
    return 0;
}

static int run_uring(sk_server *s, sk_err *err)
{
    int n = s->o.workers > 0 ? s->o.workers : 1;
    worker *ws = calloc((size_t)n, sizeof *ws);
    if (ws == NULL)
        return sk_errno(err, ENOMEM, "workers");
    int rc = 0, started = 0;
    atomic_int stopped;
    atomic_init(&stopped, 0);
    for (; started < n; started++) {
        if (worker_init(&ws[started], s, started, err) < 0) {
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

const sk_model sk__model_uring = {
    .name = "uring",
    .summary = "one process, one io_uring per worker: completions, not readiness (Linux)",
    .caps = SK_MODEL_SHARED | SK_MODEL_CONCURRENT | SK_MODEL_WORKERS | SK_MODEL_LOOP,
    .run = run_uring,
};

#endif
