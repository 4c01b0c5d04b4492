/*
 * model_event.c - one process, one thread per event loop, many connections:
 * the tutorial's "single process concurrent server" done with select(), and
 * the same code with poll() and epoll(). The backend is the only difference
 * (see ev.h); --workers N runs N loops in N threads, all accepting.
 *
 * Each connection is non-blocking. The loop reads when the socket is readable
 * and the connection can take more (backpressure), writes as soon as output is
 * queued (and again when the socket is writable), and frees the connection
 * when it is finished. The reads and writes are conn_io.c's. Every deadline
 * (service timer, idle timeout, lingering close, shutdown grace) is one heap
 * timer per connection, armed at the earliest one policy.c gives: the loop
 * sleeps until the next deadline and looks only at the connections due.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/outq.h"
#include "engine.h"
#include "ev.h"

#define ACCEPT_BATCH 64
#define DGRAM_BATCH 64
#define ACCEPT_RETRY_MS 125 /* at --max-conns: look again for room this often */
/* Bytes one connection may write per wakeup: a share of PASS_BUDGET among
 * the connections ready in this wakeup, between SHARE_MIN and SHARE_MAX. So
 * a single fast reader gets large writes, and many readers of large files
 * (a slow-read attack) cannot make one pass of the loop so long that new
 * connections wait to be accepted and read. A connection that used its
 * share while its socket was still writable goes on the loop's ready list:
 * after the next (non-sleeping) wait's events, the list is served in order,
 * SHARE_MAX each, until the pass has written PASS_BUDGET (at least one is
 * served); the rest wait for the next pass. Asking the backend for
 * writability instead would cost an interest change each way (two epoll_ctl
 * per large response) for a socket known to be writable. */
#define PASS_BUDGET (16u << 20)
#define SHARE_MIN (64u * 1024)
#define SHARE_MAX (1u << 20)

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
    lwatch *lw;       /* one per listener */
    sk_listener *own; /* deploy (--reuseport): this loop's own sockets, NULL if shared */
    const sk__ev_backend *be;
    sk__ev_loop *loop;
    pthread_t tid;
    uint8_t *scratch;     /* one read's worth, shared by all connections of this loop */
    sk_dgram_batch *dbuf; /* datagrams in, replies out */
    sk_conn **conns;      /* every open connection, for shutdown */
    size_t nconns, capconns;
    sk__timers timers; /* each connection's earliest deadline */
    int64_t now;       /* sk_now_ms() after the last wait */
    /* Connections to serve again without waiting: bytes inside their
     * transport (decrypted, not yet read: readable although the socket is
     * not), or output left after their write share with the socket still
     * writable (the ready list). First in, first served: again[ahead..nagain). */
    sk_conn **again;
    size_t ahead, nagain, capagain;
    uint64_t pass_bytes; /* written in this pass (the budget) */
    int in_again;        /* serving the again list */
    int accepting;
    int stopping;
    int64_t grace_deadline;
    /* Cross-thread wake-ups (broker posts): a pipe and the connections to look at. */
    int wake_rd, wake_wr;
    pthread_mutex_t mu;
    sk_conn **pending;
    size_t npending, cappending;
    sk_err err;
    int failed;
} worker;

#define SK_C_AGAIN 0x200 /* in its worker's again list */
/* The flags that bring no deadline of their own (policy.c). Any other (the
 * service timer, lingering close, a handshake, a PROXY header, whatever is
 * added next) makes arm() ask policy.c: a list of the harmless ones, so that
 * a new flag is safe without an edit here. */
#define NO_DEADLINE_FLAGS                                                                          \
    (SK_C_EOF | SK_C_CLOSING | SK_C_DRAIN | SK_C_DEAD | SK_C_WR_WANTS_R | SK_C_RD_WANTS_W |        \
     SK_C_SHUT_AGAIN | SK_C_PAUSED | SK_C_HALF | SK_C_HALF_DONE | SK_C_AGAIN)

static void settle(worker *w, sk_conn *c);

static void set_accepting(worker *w, int on);

static int push(sk_conn ***v, size_t *n, size_t *cap, sk_conn *c)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        sk_conn **nv = realloc(*v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = c;
    return 0;
}

static void unlist(sk_conn **v, size_t *n, const sk_conn *c)
{
    for (size_t k = 0; k < *n; k++)
        if (v[k] == c)
            v[k] = v[--*n];
}

/* The again list, in order. */
static int again_push(worker *w, sk_conn *c)
{
    if (w->nagain == w->capagain && w->ahead > 0) { /* room at the front: slide down */
        memmove(w->again, w->again + w->ahead, (w->nagain - w->ahead) * sizeof *w->again);
        w->nagain -= w->ahead;
        w->ahead = 0;
    }
    if (push(&w->again, &w->nagain, &w->capagain, c) < 0)
        return -1;
    c->flags |= SK_C_AGAIN;
    return 0;
}

static sk_conn *again_pop(worker *w)
{
    sk_conn *c = w->again[w->ahead++];
    if (w->ahead == w->nagain)
        w->ahead = w->nagain = 0;
    c->flags &= (uint16_t)~SK_C_AGAIN;
    return c;
}

static void again_remove(worker *w, const sk_conn *c)
{
    for (size_t k = w->ahead; k < w->nagain; k++)
        if (w->again[k] == c) {
            memmove(w->again + k, w->again + k + 1, (w->nagain - k - 1) * sizeof *w->again);
            if (--w->nagain == w->ahead)
                w->ahead = w->nagain = 0;
            return;
        }
}

static size_t again_len(const worker *w)
{
    return w->nagain - w->ahead;
}

static int add_conn(worker *w, sk_conn *c)
{
    c->loop_index = (int)w->nconns;
    return push(&w->conns, &w->nconns, &w->capconns, c);
}

static void drop(worker *w, sk_conn *c)
{
    sk__timer_cancel(&w->timers, &c->timer);
    if (c->flags & SK_C_AGAIN)
        again_remove(w, c);
    sk__ev_forget(w->loop, c->tp.fd); /* sk__conn_destroy closes it right after */
    size_t i = (size_t)c->loop_index;
    w->conns[i] = w->conns[--w->nconns];
    w->conns[i]->loop_index = (int)i;
    if (sk__conn_inbox(c)) {
        pthread_mutex_lock(&w->mu);
        unlist(w->pending, &w->npending, c);
        pthread_mutex_unlock(&w->mu);
    }
    sk__conn_destroy(c);
    if (!w->stopping && sk__count_served(w->s))
        sk_server_stop(w->s);
    if (!w->accepting && !w->stopping)
        set_accepting(w, 1);
}

static void on_conn(sk__ev_loop *loop, int fd, unsigned fired, void *ud)
{
    (void)loop;
    (void)fd;
    sk_conn *c = ud;
    worker *w = c->loop_data;
    if ((c->flags & SK_C_AGAIN) && !sk__conn_wants_read(c))
        return; /* on the ready list: its turn to write comes after the others' */
    if ((fired & SK_EV_READ) || ((fired & SK_EV_WRITE) && (c->flags & SK_C_RD_WANTS_W))) {
        if (sk__conn_wants_read(c))
            sk__conn_pump_read(c, w->scratch, SK_LOOP_READ_CHUNK);
        else if (!sk__conn_wants_write(c))
            sk__conn_feed_error(c, EPIPE); /* hangup or error, and nothing left to do */
    }
    settle(w, c);
}

/* A descriptor the connection's service watches (sk_conn_watch) fired. */
static void on_watch(sk__ev_loop *loop, int fd, unsigned fired, void *ud)
{
    (void)loop;
    (void)fd;
    sk__watch *wt = ud;
    sk_conn *c = wt->c;
    unsigned f = 0;
    if (fired & SK_EV_READ)
        f |= SK_WATCH_READ;
    if (fired & SK_EV_WRITE)
        f |= SK_WATCH_WRITE;
    sk__watch_fire(wt, f);
    settle(c->loop_data, c);
}

/* The server's watch hook: the service's descriptor joins this loop. */
static int ev_watch_fd(sk__watch *wt, unsigned old, unsigned events)
{
    (void)old;
    worker *w = wt->c->loop_data;
    unsigned mask = 0;
    if (events & SK_WATCH_READ)
        mask |= SK_EV_READ;
    if (events & SK_WATCH_WRITE)
        mask |= SK_EV_WRITE;
    return sk__ev_watch(w->loop, wt->fd, mask, on_watch, wt);
}

/* Arm c's timer at its earliest deadline. Lazily: a deadline that moved later
 * (the idle timeout after more I/O) keeps the earlier timer, which on firing
 * finds nothing due and re-arms, so busy connections cost no heap work. */
static int arm(worker *w, sk_conn *c)
{
    /* Only the idle timeout matters (no flag that brings a deadline of its
     * own, no grace): if armed, it stands (the idle deadline moves later
     * with I/O, never earlier); with no idle timeout there is nothing to arm.
     * No work per operation on a busy connection either way. */
    if (!w->stopping && !(c->flags & ~NO_DEADLINE_FLAGS) &&
        (sk__timer_armed(&c->timer) || c->srv->o.idle_timeout_ms <= 0))
        return 0;
    int64_t d = sk__conn_next_deadline(c, w->now, w->stopping ? w->grace_deadline : -1);
    if (d < 0 || (sk__timer_armed(&c->timer) && c->timer.at <= d))
        return 0;
    return sk__timer_set(&w->timers, &c->timer, d);
}

static size_t write_share(const worker *w)
{
    size_t share;
    if (w->in_again) { /* what is left of the pass's budget */
        share = w->pass_bytes < PASS_BUDGET ? PASS_BUDGET - (size_t)w->pass_bytes : 0;
    } else {
        int n = sk__ev_batch(w->loop);
        share = n > 0 ? PASS_BUDGET / (unsigned)n : SHARE_MAX;
    }
    return share < SHARE_MIN ? SHARE_MIN : share > SHARE_MAX ? SHARE_MAX : share;
}

/* After any event: write what is queued, then free or re-arm. */
static void settle(worker *w, sk_conn *c)
{
    /* optimistic: most writes complete at once */
    int more = 0;
    if (sk__conn_wants_write(c)) {
        uint64_t was = c->bytes_out;
        more = sk__conn_pump_write(c, write_share(w));
        w->pass_bytes += c->bytes_out - was;
    }
    if (sk__conn_pump_close(c) || (w->stopping && sk__conn_may_stop(c)) || arm(w, c) < 0) {
        drop(w, c);
        return;
    }
    /* On the ready list the interest stays as it is: the socket is known to
     * be writable, and reading paused by backpressure comes back before
     * the list lets the connection go. */
    if (more && ((c->flags & SK_C_AGAIN) || again_push(w, c) == 0))
        return;
    unsigned want = sk__conn_interest(c), mask = 0;
    if (want & SK_TP_WANT_READ)
        mask |= SK_EV_READ;
    if (want & SK_TP_WANT_WRITE)
        mask |= SK_EV_WRITE;
    if (mask != sk__ev_mask(w->loop, c->tp.fd) &&
        sk__ev_watch(w->loop, c->tp.fd, mask, on_conn, c) < 0) {
        c->flags |= SK_C_DEAD;
        drop(w, c);
        return;
    }
    if ((want & SK_TP_WANT_READ) && !(c->flags & SK_C_AGAIN) && sk__tp_buffered(&c->tp) > 0)
        again_push(w, c);
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

static void on_wake(sk__ev_loop *loop, int fd, unsigned fired, void *ud)
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

/* sk_server_on_readable: the program's descriptor (its SIGHUP pipe). */
static void on_hook(sk__ev_loop *loop, int fd, unsigned fired, void *ud)
{
    (void)fired;
    if (sk__hook_fire(ud) != 0)
        sk__ev_watch(loop, fd, 0, NULL, NULL);
}

static void new_conn(worker *w, const sk_listener *l, int fd, struct sockaddr *peer, socklen_t plen)
{
    sk_conn *c = sk__conn_accepted(w->s, fd, peer, plen, l->transport);
    if (c == NULL)
        return;
    c->loop_data = w;
    w->s->wake = ev_wake;
    w->s->watch = ev_watch_fd;
    if (add_conn(w, c) < 0) {
        sk_server_log(w->s, SK_LOG_ERROR, "out of memory: connection closed");
        sk__conn_destroy(c);
        return;
    }
    if (sk__ev_watch(w->loop, fd, SK_EV_READ, on_conn, c) < 0) {
        sk_server_log(w->s, SK_LOG_ERROR, "%s cannot watch descriptor %d: connection closed",
                      w->be->name, fd);
        c->flags |= SK_C_DEAD;
        drop(w, c);
        return;
    }
    sk__conn_begin(c);
    settle(w, c);
}

static void on_listener(sk__ev_loop *loop, int fd, unsigned fired, void *ud)
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
        sk__ev_watch(w->loop, w->lw[i].l->fd, on ? SK_EV_READ : 0, on_listener, &w->lw[i]);
    w->accepting = on;
}

/* Stop now: every connection goes, busy or not. */
static void on_now(sk__ev_loop *loop, int fd, unsigned fired, void *ud)
{
    (void)loop;
    (void)fired;
    worker *w = ud;
    sk__ev_watch(w->loop, fd, 0, NULL, NULL);
    while (w->nconns > 0)
        drop(w, w->conns[w->nconns - 1]);
}

/* Stopping: take the connections already in the listeners' backlogs before
 * they close (acceptor.c says why). */
static void take_one(void *ud, const sk_listener *l, int fd, struct sockaddr_storage *peer,
                     socklen_t plen)
{
    new_conn(ud, l, fd, (struct sockaddr *)peer, plen);
}

static void drain_backlog(worker *w)
{
    for (size_t i = 0; i < w->s->nls && w->accepting; i++)
        if (sk__drain_backlog(w->s, w->lw[i].l, take_one, w) < 0)
            return;
}

static void begin_stop(worker *w)
{
    if (w->stopping)
        return;
    if (!w->s->o.once && !sk__stopping_now(w->s))
        drain_backlog(w);
    set_accepting(w, 0);
    sk__loop_listeners_release(w->s, w->own); /* deploy: this loop's own sockets */
    w->stopping = 1;
    sk__ev_watch(w->loop, w->s->stop_rd, 0, NULL, NULL);
    /* (select cannot watch a descriptor past 1024: then the grace period
     * alone bounds the stop, as before there was a stop-now.) */
    sk__ev_watch(w->loop, w->s->now_rd, SK_EV_READ, on_now, w);
    w->now = sk_now_ms();
    w->grace_deadline = w->now + w->s->o.grace_ms;
    /* Take a request already in the socket (it makes its connection busy);
     * then idle connections go now, busy ones get the grace period (settle
     * drops the idle and arms the others' timers at the grace deadline). */
    for (size_t i = w->nconns; i-- > 0;) {
        if (i >= w->nconns)
            continue;
        sk_conn *c = w->conns[i];
        sk__conn_pump_read(c, w->scratch, SK_LOOP_READ_CHUNK);
        settle(w, c);
    }
    /* Announced as busy: those with work in flight (not the ones only given
     * a moment for a request that may be on its way: policy.c). */
    int busy = 0;
    for (size_t i = 0; i < w->nconns; i++)
        busy += !sk__conn_idle(w->conns[i]);
    sk__grace_busy(w->s, busy);
    /* The last loop to stop watching the listeners closes them (no other
     * thread can be in accept() on them any more), and says how many
     * connections are still busy in all loops. */
    if (atomic_fetch_add(w->stopped, 1) + 1 == w->nworkers) {
        sk__stop_listening(w->s);
        sk__announce_stop(w->s, atomic_load(&w->s->shared->busy));
    }
}

static void on_stop(sk__ev_loop *loop, int fd, unsigned fired, void *ud)
{
    (void)loop;
    (void)fd;
    (void)fired;
    begin_stop(ud);
}

/* The connections whose deadline came: close them, or let the service act,
 * or (a deadline that moved) re-arm. */
static void fire_timers(worker *w)
{
    sk__timer *t;
    int64_t grace = w->stopping ? w->grace_deadline : -1;
    while ((t = sk__timers_pop_expired(&w->timers, w->now)) != NULL) {
        sk_conn *c = (sk_conn *)(void *)((char *)t - offsetof(sk_conn, timer));
        if (sk__conn_expired(c, w->now, grace) == SK_EXP_CLOSE)
            drop(w, c);
        else
            settle(w, c);
    }
}

/* After everything the backend reported: connections with bytes buffered
 * inside their transport are served as if readable, and those on the ready
 * list write their next share (no read: input on the socket is reported by
 * the backend; a recv here would mostly find nothing). */
static void run_again(worker *w)
{
    /* Those queued before this wakeup, first come first served; one that
     * queues itself again goes to the back. */
    w->in_again = 1;
    size_t n = again_len(w);
    for (size_t k = 0; k < n && again_len(w) > 0 && (k == 0 || w->pass_bytes < PASS_BUDGET); k++) {
        sk_conn *c = again_pop(w);
        if (sk__tp_buffered(&c->tp) > 0)
            on_conn(w->loop, c->tp.fd, SK_EV_READ, c);
        else
            settle(w, c);
    }
    w->in_again = 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    sk__outq_batch_begin(); /* reports and logs: one write per wakeup, not per line */
    while (!(w->stopping && w->nconns == 0)) {
        sk__outq_batch_flush(); /* before sleeping */
        w->now = sk_now_ms();
        int timeout = again_len(w) ? 0 : sk__timers_timeout(&w->timers, w->now);
        w->pass_bytes = 0;
        int retry = !w->accepting && !w->stopping && w->s->o.max_conns > 0;
        if (retry && (timeout < 0 || timeout > ACCEPT_RETRY_MS))
            timeout = ACCEPT_RETRY_MS;
        if (sk__ev_run_once(w->loop, timeout) < 0) {
            sk_errno(&w->err, errno, "%s", w->be->name);
            w->failed = 1;
            break;
        }
        w->now = sk_now_ms();
        fire_timers(w);
        run_again(w);
        if (retry && !w->accepting && !w->stopping)
            set_accepting(w, 1); /* a connection of another loop may have closed */
    }
    /* Whatever is left (an error exit): close it. */
    while (w->nconns > 0)
        drop(w, w->conns[w->nconns - 1]);
    sk__outq_batch_end();
    return NULL;
}

static void worker_free(worker *w)
{
    sk__ev_free(w->loop);
    free(w->scratch);
    sk__dgram_batch_free(w->dbuf);
    free(w->conns);
    free(w->again);
    sk__timers_free(&w->timers);
    free(w->pending);
    free(w->lw);
    sk__loop_listeners_free(w->s, w->own); /* deploy: --reuseport */
    if (w->wake_rd >= 0)
        close(w->wake_rd);
    if (w->wake_wr >= 0)
        close(w->wake_wr);
    pthread_mutex_destroy(&w->mu);
}

/* deploy: --workers N --reuseport: loops after the first get their own
 * sockets on the TCP/UDP addresses (Unix sockets stay shared). */
static int own_listeners(worker *w, sk_err *err)
{
    if ((w->own = sk__loop_listeners_new(w->s, err)) == NULL)
        return -1;
    for (size_t i = 0; i < w->s->nls; i++)
        w->lw[i].l = &w->own[i];
    return 0;
}

static int worker_init(worker *w, sk_server *s, const sk__ev_backend *be, int index, sk_err *err)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->be = be;
    w->wake_rd = w->wake_wr = -1;
    pthread_mutex_init(&w->mu, NULL);
    w->loop = sk__ev_new(be);
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
    if (sk__ev_watch(w->loop, w->wake_rd, SK_EV_READ, on_wake, w) < 0 ||
        sk__ev_watch(w->loop, s->stop_rd, SK_EV_READ, on_stop, w) < 0)
        return sk_errno(err, errno, "%s: watch", be->name);
    for (int i = 0; index == 0 && i < s->nhooks; i++) /* the first loop is enough */
        if (sk__ev_watch(w->loop, s->hooks[i].fd, SK_EV_READ, on_hook, &s->hooks[i]) < 0)
            return sk_errno(err, errno, "%s: watch descriptor %d", be->name, s->hooks[i].fd);
    for (size_t i = 0; i < s->nls; i++)
        w->lw[i] = (lwatch){.w = w, .l = &s->ls[i]};
    if (index > 0 && s->o.reuseport && own_listeners(w, err) < 0)
        return -1;
    for (size_t i = 0; i < s->nls; i++)
        sk__dgram_listener_setup(w->lw[i].l);
    set_accepting(w, 1);
    return 0;
}

static int event_run(sk_server *s, const sk__ev_backend *be, sk_err *err)
{
    int n = s->o.workers > 0 ? s->o.workers : 1;
    worker *ws = calloc((size_t)n, sizeof *ws);
    if (ws == NULL)
        return sk_errno(err, ENOMEM, "workers");
    int rc = 0, started = 0;
    atomic_int stopped;
    atomic_init(&stopped, 0);
    for (; started < n; started++) {
        if (worker_init(&ws[started], s, be, started, err) < 0) {
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
    .caps = SK_MODEL_SHARED | SK_MODEL_CONCURRENT | SK_MODEL_WORKERS | SK_MODEL_LOOP,
    .run = run_select,
};

const sk_model sk__model_poll = {
    .name = "poll",
    .summary = "one process, one poll() loop per worker",
    .caps = SK_MODEL_SHARED | SK_MODEL_CONCURRENT | SK_MODEL_WORKERS | SK_MODEL_LOOP,
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
    .caps = SK_MODEL_SHARED | SK_MODEL_CONCURRENT | SK_MODEL_WORKERS | SK_MODEL_LOOP,
    .run = run_epoll,
};
#endif
