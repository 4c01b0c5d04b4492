/*
 * engine.c - the worker threads of `sockit bench`.
 *
 * Each worker owns a share of the connections (slots) and one epoll loop over
 * them (edge-triggered: each socket is registered once and never modified).
 * Work per event is bounded (a few reads or writes); a connection that still
 * has work goes on the "again" list and is served on the next turn, so every
 * connection gets its turn. What a connection does is its mode's business
 * (w->mode: open, io, expire, verify); the engine connects, closes, counts
 * and keeps the time.
 *
 * Every deadline is a timer in the worker's heap (src/lib/timer.h), never a
 * scan: each connection has one, whose meaning follows its state (connecting:
 * the connect timeout; waiting: the retry after a failure; open: the mode's
 * reply timeout, which the mode re-arms lazily when it fires early), and the
 * worker has two (the run's end; the end of a hold). Times are nanoseconds
 * of bench_now(). The loop still wakes at least every 100 ms for the stop
 * flag and the progress counters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define EV_BATCH 256
#define RETRY_NS (20 * 1000000LL)      /* a failed connection tries again after this */
#define TURN_MAX_NS (100 * 1000000LL)  /* longest wait in epoll: stop flag, progress */
#define VERIFY_POLL_NS (5 * 1000000LL) /* hold over: how often to look for the verify flag */
#define RBUF_SIZE (256 * 1024)

const char *const bench_err_names[BE_NKINDS] = {
    "connect", "read", "write", "timeout", "mismatch", "http_status", "closed", "lost",
};

int64_t bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void bench_error(bench_worker *w, int kind)
{
    w->st.errors[kind]++; /* the whole run, warmup included: never hidden */
}

void bench_ok(bench_worker *w, int64_t t_start, int64_t now, uint64_t bytes)
{
    if (now < w->run->measure_start || now >= w->run->end)
        return;
    w->st.ops++;
    w->st.bytes += bytes;
    bench_hist_record(&w->st.hist, now > t_start ? (uint64_t)(now - t_start) : 0);
}

void bench_again(bench_worker *w, bench_conn *c, unsigned ev)
{
    c->again_ev |= (uint8_t)ev;
    if (!c->queued) {
        c->queued = 1;
        w->again[w->again_len++] = c;
    }
}

/* The heap has room for every timer of the worker (reserved by worker_init),
 * so arming never allocates and cannot fail. */
static void arm(bench_worker *w, sk__timer *t, int64_t at)
{
    (void)sk__timer_set(&w->timers, t, at);
}

void bench_conn_timer(bench_worker *w, bench_conn *c, int64_t at)
{
    arm(w, &c->timer, at);
}

/* ---------------------------------------------------------------- sockets */

static void conn_close(bench_worker *w, bench_conn *c)
{
    if (c->tp.fd >= 0) {
        if (w->cfg->tls)
            bench_tls_closing(w, c);
        sk__tp_close(&c->tp); /* also leaves the epoll set */
        if (c->state == BC_OPEN)
            w->open_now--;
    }
    c->tp.fd = -1;
    c->state = BC_CLOSED;
    c->blocked = c->rwant = c->bad = c->unsent = c->hup = 0;
    /* Messages in flight are abandoned; numbering goes on (fresh patterns). */
    if (c->out_off > 0)
        c->out_seq++;
    c->out_off = c->in_off = 0;
    c->done_seq = c->out_seq;
}

static void retry_later(bench_worker *w, bench_conn *c, int64_t now)
{
    c->state = BC_WAITING;
    arm(w, &c->timer, now + RETRY_NS);
}

static void dead(bench_worker *w, bench_conn *c)
{
    c->state = BC_DEAD;
    sk__timer_cancel(&w->timers, &c->timer);
    if (--w->remaining <= 0 && w->verifying)
        w->finished = 1;
}

void bench_conn_fail(bench_worker *w, bench_conn *c, int kind)
{
    bench_error(w, kind);
    conn_close(w, c);
    c->soft = 0;
    if (w->mode->flags & BENCH_F_HOLD) /* one connection each: a failure is final */
        dead(w, c);
    else
        retry_later(w, c, bench_now());
}

void bench_conn_finish(bench_worker *w, bench_conn *c)
{
    conn_close(w, c);
    dead(w, c);
}

static void connected(bench_worker *w, bench_conn *c, int64_t now)
{
    c->state = BC_OPEN;
    c->soft = 0;
    w->open_now++;
    w->st.connects++;
    c->t_progress = now;
    /* The reply timer; the mode re-arms it when it fires before anything is due. */
    arm(w, &c->timer, now + w->cfg->timeout_ns + 1);
    w->mode->open(w, c, now);
}

static int open_socket(bench_worker *w)
{
    const bench_cfg *cfg = w->cfg;
    const sk_endpoint *ep = &cfg->ep;
    int fd = socket(ep->family, ep->socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (ep->family == AF_UNIX && ep->socktype == SOCK_DGRAM) {
        /* Autobind a unique abstract name, so that the server can reply. */
        struct sockaddr_un me = {.sun_family = AF_UNIX};
        if (bind(fd, (struct sockaddr *)&me, sizeof(sa_family_t)) < 0)
            goto fail;
    }
    if (cfg->spread_src) {
        /* 127.0.0.1..254 as source addresses: each has its own ephemeral
         * ports, so many connections (and TIME_WAITs) fit. The port is only
         * chosen at connect time, for the whole 4-tuple. Best effort: without
         * it the bind picks a port at once, which also works. */
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(w->src_next++ % 254));
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
            goto fail;
    }
    if (ep->socktype == SOCK_STREAM && ep->family != AF_UNIX)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* latency only */
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

static void conn_connect(bench_worker *w, bench_conn *c, int64_t now)
{
    const sk_endpoint *ep = &w->cfg->ep;
    if (!c->soft)
        c->t_open = now;
    int fd = open_socket(w);
    if (fd < 0) {
        bench_conn_fail(w, c, BE_CONNECT);
        return;
    }
    int r = connect(fd, (const struct sockaddr *)&ep->sa, ep->len);
    if (r < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        /* A Unix listener's backlog is full: wait for it, within the timeout. */
        if (e == EAGAIN && ep->family == AF_UNIX && now - c->t_open < w->cfg->connect_timeout_ns) {
            c->soft = 1;
            retry_later(w, c, now);
            return;
        }
        bench_conn_fail(w, c, BE_CONNECT);
        return;
    }
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
        close(fd);
        bench_conn_fail(w, c, BE_CONNECT);
        return;
    }
    if (w->cfg->tp_open == NULL) {
        sk__tp_plain(&c->tp, fd);
    } else if (w->cfg->tp_open(&c->tp, fd, w->cfg) < 0) {
        close(fd);
        bench_conn_fail(w, c, BE_CONNECT);
        return;
    } else if (w->cfg->tls) {
        bench_tls_opened(w, c);
    }
    c->state = BC_CONNECTING;
    if (r == 0)
        connected(w, c, now);
    else
        arm(w, &c->timer, c->t_open + w->cfg->connect_timeout_ns + 1);
}

void bench_conn_recycle(bench_worker *w, bench_conn *c)
{
    conn_close(w, c);
    conn_connect(w, c, bench_now());
}

/* ------------------------------------------------------------------ the loop */

static void on_event(bench_worker *w, bench_conn *c, uint32_t events)
{
    /* The end of the stream is already here: it makes no edge of its own any
     * more, so the reader must go on to it (edge-triggered). */
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->hup = 1;
    if (c->state == BC_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(c->tp.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
            bench_conn_fail(w, c, BE_CONNECT);
            return;
        }
        connected(w, c, bench_now());
        if (c->state == BC_OPEN && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
            w->mode->io(w, c, BEV_READ);
        return;
    }
    if (c->state != BC_OPEN)
        return;
    unsigned ev = 0;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
        ev |= BEV_READ;
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        ev |= BEV_WRITE;
    if (c->blocked & ev) /* what the last write waited for is here */
        c->blocked = 0;
    if (c->rwant & ev) { /* ... and what the last read waited for */
        c->rwant = 0;
        ev |= BEV_READ;
    }
    w->mode->io(w, c, ev);
}

/* A connection's timer fired: what it means depends on the state. */
static void conn_expired(bench_worker *w, bench_conn *c, int64_t now)
{
    switch (c->state) {
    case BC_CONNECTING: bench_conn_fail(w, c, BE_CONNECT); break;
    case BC_WAITING: conn_connect(w, c, now); break;
    case BC_OPEN: w->mode->expire(w, c, now); break;
    default: break;
    }
}

/* Run what is due; returns 1 when the run's end has come. */
static int run_timers(bench_worker *w, int64_t now)
{
    sk__timer *t;
    while ((t = sk__timers_pop_expired(&w->timers, now)) != NULL) {
        if (t == &w->t_end)
            return 1;
        if (t == &w->t_hold) {
            /* The hold is over: the main thread measures the server, then
             * raises the verify flag; look for it often. */
            if (!w->verifying)
                arm(w, &w->t_hold, now + VERIFY_POLL_NS);
            continue;
        }
        conn_expired(w, (bench_conn *)(void *)((char *)t - offsetof(bench_conn, timer)), now);
    }
    return 0;
}

static void run_again(bench_worker *w, bench_conn **list, int n)
{
    for (int i = 0; i < n; i++) {
        bench_conn *c = list[i];
        unsigned ev = c->again_ev;
        c->queued = 0;
        c->again_ev = 0;
        if (c->state == BC_OPEN)
            w->mode->io(w, c, ev);
    }
}

/* Hold modes: the hold is over; every open connection must now prove itself. */
static void verify_all(bench_worker *w, int64_t now)
{
    w->verifying = 1;
    sk__timer_cancel(&w->timers, &w->t_hold);
    for (int i = 0; i < w->nconns; i++) {
        bench_conn *c = &w->conns[i];
        if (c->state == BC_OPEN)
            w->mode->verify(w, c, now);
        else if (c->state == BC_CONNECTING || c->state == BC_WAITING)
            bench_conn_fail(w, c, BE_CONNECT); /* not even connected after the hold */
    }
    if (w->remaining <= 0)
        w->finished = 1;
}

static void publish(bench_worker *w)
{
    uint64_t errs = 0;
    for (int k = 0; k < BE_NKINDS; k++)
        errs += w->st.errors[k];
    atomic_store_explicit(&w->pub_ops, w->st.ops, memory_order_relaxed);
    atomic_store_explicit(&w->pub_errors, errs, memory_order_relaxed);
    atomic_store_explicit(&w->pub_open, w->open_now, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
    bench_worker *w = arg;
    bench_run *run = w->run;
    int hold = (w->mode->flags & BENCH_F_HOLD) != 0;
    bench_conn **spare = w->again_mem + w->nconns; /* the list being run */
    int64_t now = bench_now();
    arm(w, &w->t_end, run->end);
    if (hold)
        arm(w, &w->t_hold, run->deadline);
    for (int i = 0; i < w->nconns && now < run->end; i++)
        conn_connect(w, &w->conns[i], now);
    struct epoll_event evs[EV_BATCH];
    for (;;) {
        now = bench_now();
        publish(w);
        if (atomic_load_explicit(&run->stop, memory_order_relaxed) || w->finished)
            break;
        if (hold && !w->verifying && atomic_load_explicit(&run->verify, memory_order_acquire)) {
            verify_all(w, now);
            if (w->remaining <= 0)
                break;
        }
        if (run_timers(w, now))
            break;
        if (w->again_len > 0) {
            bench_conn **list = w->again;
            int n = w->again_len;
            w->again = spare;
            w->again_len = 0;
            spare = list;
            run_again(w, list, n);
        }
        now = bench_now();
        int64_t wake = now + TURN_MAX_NS;
        sk__timer *next = sk__timers_peek(&w->timers);
        if (next != NULL && next->at < wake)
            wake = next->at;
        int tmo = 0;
        if (w->again_len == 0 && wake > now)
            tmo = (int)((wake - now + 999999) / 1000000);
        int n = epoll_wait(w->epfd, evs, EV_BATCH, tmo);
        /* n < 0: EINTR (a signal: the stop flag is looked at next turn); the
         * other errors (EBADF, EFAULT, EINVAL) cannot happen with these arguments. */
        for (int i = 0; i < n; i++)
            on_event(w, evs[i].data.ptr, evs[i].events);
    }
    /* Hold modes: a connection still unanswered when time ran out timed out. */
    if (hold && w->verifying)
        for (int i = 0; i < w->nconns; i++)
            if (w->conns[i].state == BC_OPEN && w->conns[i].active)
                bench_error(w, BE_TIMEOUT);
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i].tp.fd >= 0)
            conn_close(w, &w->conns[i]);
    publish(w);
    atomic_store_explicit(&w->done, 1, memory_order_release);
    return NULL;
}

/* ------------------------------------------------------------------ set up */

/* Grow the heap to hold every timer of the worker at once, so that arming
 * one never allocates (nor fails) in the loop. */
static int reserve_timers(bench_worker *w)
{
    for (int i = 0; i < w->nconns; i++)
        if (sk__timer_set(&w->timers, &w->conns[i].timer, 0) < 0)
            return -1;
    if (sk__timer_set(&w->timers, &w->t_end, 0) < 0 || sk__timer_set(&w->timers, &w->t_hold, 0) < 0)
        return -1;
    for (int i = 0; i < w->nconns; i++)
        sk__timer_cancel(&w->timers, &w->conns[i].timer);
    sk__timer_cancel(&w->timers, &w->t_end);
    sk__timer_cancel(&w->timers, &w->t_hold);
    return 0;
}

static int worker_init(bench_worker *w, const bench_cfg *cfg, bench_run *run, int id, int first,
                       int n)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->cfg = cfg;
    w->mode = cfg->mode;
    w->run = run;
    w->nconns = n;
    w->remaining = n;
    w->src_next = (uint64_t)first;
    bench_hist_init(&w->st.hist);
    size_t state = w->mode->conn_state;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->conns = calloc((size_t)n, sizeof *w->conns);
    w->ts_store = calloc((size_t)n * (size_t)cfg->ring, sizeof *w->ts_store);
    w->again = w->again_mem = calloc(2 * (size_t)n, sizeof *w->again);
    w->rcap = RBUF_SIZE;
    w->rbuf = malloc(w->rcap);
    if (state > 0)
        w->mstate_store = calloc((size_t)n, state);
    if (w->epfd < 0 || !w->conns || !w->ts_store || !w->again || !w->rbuf ||
        (state > 0 && !w->mstate_store))
        return -1;
    for (int i = 0; i < n; i++) {
        bench_conn *c = &w->conns[i];
        c->tp.fd = -1;
        c->id = (uint32_t)(first + i);
        c->ts = w->ts_store + (size_t)i * (size_t)cfg->ring;
        if (state > 0)
            c->mstate = w->mstate_store + (size_t)i * state;
    }
    return reserve_timers(w);
}

static void worker_free(bench_worker *w)
{
    if (w->epfd >= 0)
        close(w->epfd);
    sk__timers_free(&w->timers);
    free(w->conns);
    free(w->ts_store);
    free(w->again_mem);
    free(w->rbuf);
    free(w->mstate_store);
    bench_tls_worker_free(w);
}

int bench_engine(const bench_cfg *cfg, bench_run *run, bench_stats *total,
                 void (*tick)(void *arg, bench_worker *ws, int n), void *arg, sk_err *err)
{
    int nw = cfg->workers;
    if (cfg->ring < 1 || cfg->msg_len < 1 || nw < 1)
        return sk_errf(err, EINVAL, "bench: the run is not prepared (bench_prepare)");
    bench_worker *ws = calloc((size_t)nw, sizeof *ws);
    pthread_t *th = calloc((size_t)nw, sizeof *th);
    if (ws == NULL || th == NULL) {
        free(ws);
        free(th);
        return sk_errno(err, ENOMEM, "bench: workers");
    }
    int first = 0, started = 0, rc = 0;
    for (int i = 0; i < nw; i++)
        ws[i].epfd = -1;
    for (int i = 0; i < nw; i++) {
        int n = cfg->connections / nw + (i < cfg->connections % nw);
        errno = 0;
        if (worker_init(&ws[i], cfg, run, i, first, n) < 0) {
            rc = sk_errno(err, errno ? errno : ENOMEM, "bench: worker %d", i);
            break;
        }
        first += n;
    }
    for (int i = 0; rc == 0 && i < nw; i++) {
        int e = pthread_create(&th[i], NULL, worker_main, &ws[i]);
        if (e != 0) {
            atomic_store(&run->stop, 1);
            rc = sk_errno(err, e, "bench: start a worker thread");
            break;
        }
        started++;
    }
    for (;;) {
        int done = 0;
        for (int i = 0; i < started; i++)
            done += atomic_load_explicit(&ws[i].done, memory_order_acquire);
        if (done == started)
            break;
        struct timespec nap = {0, 100 * 1000000L};
        nanosleep(&nap, NULL); /* EINTR: only sooner */
        if (tick && rc == 0)
            tick(arg, ws, started);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    memset(total, 0, sizeof *total);
    bench_hist_init(&total->hist);
    for (int i = 0; i < nw; i++) {
        bench_stats *s = &ws[i].st;
        total->ops += s->ops;
        total->bytes += s->bytes;
        total->connects += s->connects;
        total->tls_full += s->tls_full;
        total->tls_resumed += s->tls_resumed;
        for (int k = 0; k < BE_NKINDS; k++)
            total->errors[k] += s->errors[k];
        for (int k = 0; k < 6; k++)
            total->status[k] += s->status[k];
        bench_hist_merge(&total->hist, &s->hist);
        worker_free(&ws[i]);
    }
    free(ws);
    free(th);
    return rc;
}
