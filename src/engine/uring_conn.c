/*
 * uring_conn.c - the io_uring model's connections (see model_uring.c for the
 * design): plain connections on the completion path (a multishot receive
 * into the loop's provided buffers, input kept aside while the connection
 * cannot take it, one send in flight from a copy of the queued bytes, files
 * by sendfile), TLS connections and the services' descriptors on one-shot
 * readiness polls, and closing (the record outlives the sk_conn until every
 * completion owed for it has come).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uring_loop.h"

#ifdef SK_HAVE_URING

int sk__uring_push(uconn ***v, size_t *n, size_t *cap, uconn *u)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        uconn **nv = realloc(*v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = u;
    return 0;
}

static void unlist(uconn **v, size_t *n, const uconn *u)
{
    for (size_t k = 0; k < *n; k++)
        if (v[k] == u)
            v[k] = v[--*n];
}

struct io_uring_sqe *sk__uring_sqe_for(worker *w, const void *obj, unsigned tag)
{
    struct io_uring_sqe *sqe = sk__uring_sqe(&w->ring);
    return sqe ? (io_uring_sqe_set_data64(sqe, sk__uring_ud(obj, tag)), sqe) : NULL;
}

/* Cancel the operation tagged `tag` of obj; its own completion (ECANCELED,
 * or what it did first) still comes, the cancel's only on failure. */
void sk__uring_cancel(worker *w, const void *obj, unsigned tag)
{
    struct io_uring_sqe *sqe = sk__uring_sqe(&w->ring);
    io_uring_prep_cancel64(sqe, sk__uring_ud(obj, tag), 0);
    io_uring_sqe_set_data64(sqe, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void sk__uring_poll_arm(worker *w, const void *obj, unsigned tag, int fd, unsigned mask)
{
    io_uring_prep_poll_add(sk__uring_sqe_for(w, obj, tag), fd, mask);
}

static unsigned poll_mask(unsigned want_tp)
{
    return ((want_tp & SK_TP_WANT_READ) ? POLLIN : 0u) |
           ((want_tp & SK_TP_WANT_WRITE) ? POLLOUT : 0u);
}

size_t sk__uring_held_len(const uconn *u)
{
    return u->held ? u->held->len : 0;
}

void sk__uring_uconn_free(uconn *u)
{
    if (u->held) {
        sk_buf_free(u->held);
        free(u->held);
    }
    free(u->stage);
    free(u->wt);
    free(u);
}

/* A zombie's last completion came. */
static void zombie_free(worker *w, uconn *u)
{
    w->zombies[u->zidx] = w->zombies[--w->nzombies];
    w->zombies[u->zidx]->zidx = u->zidx;
    sk__uring_uconn_free(u);
}

/* A completion of u's arrived: one operation fewer in flight. */
static int done_op(uconn *u)
{
    u->inflight--;
    if (u->c == NULL && u->inflight == 0) {
        if (u->w != NULL)
            zombie_free(u->w, u);
        else
            sk__uring_uconn_free(u); /* not listed: there was no memory for it */
        return 0;
    }
    return u->c != NULL;
}

/* ---- the service's descriptors (sk_conn_watch) ---- */

/* The server's watch hook: what to watch is read from the connection's
 * watches when it is settled (after every callback); a change re-arms. */
int sk__uring_watch(sk__watch *wt, unsigned old, unsigned events)
{
    (void)old;
    (void)events;
    uconn *u = wt->c->loop_data;
    if (u->wt == NULL && (u->wt = calloc(SK_CONN_WATCH_MAX, sizeof *u->wt)) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    u->wt[wt - wt->c->watches->w].dirty = 1;
    return 0;
}

static void sync_watches(worker *w, uconn *u)
{
    sk_conn *c = u->c;
    for (int i = 0; u->wt && i < SK_CONN_WATCH_MAX; i++) {
        upoll *p = &u->wt[i];
        const sk__watch *e = c && c->watches && c->watches->w[i].events ? &c->watches->w[i] : NULL;
        uint8_t mask = 0;
        if (e)
            mask = (uint8_t)(((e->events & SK_WATCH_READ) ? POLLIN : 0) |
                             ((e->events & SK_WATCH_WRITE) ? POLLOUT : 0));
        if (p->armed) {
            if ((p->dirty || !e || e->fd != p->fd || mask != p->mask) && !p->cancel) {
                sk__uring_cancel(w, u, T_WATCH0 + (unsigned)i);
                p->cancel = 1;
            }
        } else if (e) {
            sk__uring_poll_arm(w, u, T_WATCH0 + (unsigned)i, e->fd, mask);
            *p = (upoll){.fd = e->fd, .mask = mask, .armed = 1};
            u->inflight++;
        }
    }
}

void sk__uring_on_watch(worker *w, uconn *u, int i, int res)
{
    upoll *p = &u->wt[i];
    int changed = p->dirty || p->cancel;
    p->armed = p->cancel = 0;
    if (!done_op(u))
        return;
    sk_conn *c = u->c;
    if (res > 0 && !changed && c->watches && c->watches->w[i].events &&
        c->watches->w[i].fd == p->fd) {
        unsigned f = 0;
        if (res & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))
            f |= SK_WATCH_READ; /* as the epoll loop reports them */
        if (res & (POLLOUT | POLLHUP | POLLERR))
            f |= SK_WATCH_WRITE;
        sk__watch_fire(&c->watches->w[i], f);
    }
    sk__uring_settle(w, u);
}

/* ---- closing ---- */

void sk__uring_drop(worker *w, uconn *u)
{
    sk_conn *c = u->c;
    sk__timer_cancel(&w->timers, &c->timer);
    if (u->again)
        unlist(w->again, &w->nagain, u);
    unlist(w->conns, &w->nconns, u);
    if (sk__conn_inbox(c)) {
        pthread_mutex_lock(&w->mu);
        unlist(w->pending, &w->npending, u);
        pthread_mutex_unlock(&w->mu);
    }
    if (u->recv == R_ARMED) {
        sk__uring_cancel(w, u, T_RECV);
        u->recv = R_CANCEL;
    }
    if (u->sending)
        sk__uring_cancel(w, u, T_SEND);
    if (u->cpoll.armed && !u->cpoll.cancel) {
        sk__uring_cancel(w, u, T_CPOLL);
        u->cpoll.cancel = 1;
    }
    sk_tp tp = c->tp;
    sk__conn_free(c); /* on_close, the -v line; the watches end here */
    u->c = NULL;
    sync_watches(w, u); /* cancels what is armed */
    if (u->plain) {
        /* Closed by the ring, with the other submissions of this pass. The
         * cancels above name the operations, not the descriptor: they work
         * whether or not it is closed first. */
        struct io_uring_sqe *sqe = sk__uring_sqe_for(w, NULL, T_NONE);
        io_uring_prep_close(sqe, tp.fd);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    } else {
        sk__tp_close(&tp);
    }
    if (u->inflight == 0)
        sk__uring_uconn_free(u);
    else if (sk__uring_push(&w->zombies, &w->nzombies, &w->capzombies, u) == 0)
        u->zidx = (uint32_t)(w->nzombies - 1);
    else
        u->w = NULL; /* out of memory: freed at its last completion, not at exit */
    if (!w->stopping && sk__count_served(w->s))
        sk_server_stop(w->s);
    if (!w->stopping)
        sk__uring_sync_accept(w);
}

/* ---- the completion path: plain connections ---- */

/* Input has come: to the service, or kept while it cannot take it
 * (backpressure, paused) until settle finds it can. */
static int may_feed(const uconn *u)
{
    const sk_conn *c = u->c;
    return sk__conn_wants_read(c) || (c->flags & (SK_C_CLOSING | SK_C_WSHUT | SK_C_DEAD));
}

static void deliver(uconn *u, const uint8_t *data, size_t n)
{
    if (sk__uring_held_len(u) == 0 && may_feed(u))
        sk__conn_feed(u->c, data, n);
    else if ((u->held == NULL && (u->held = calloc(1, sizeof *u->held)) == NULL) ||
             sk_buf_append(u->held, data, n) < 0)
        sk__conn_feed_error(u->c, ENOMEM);
}

static void feed_held(uconn *u)
{
    if (sk__uring_held_len(u) > 0 && may_feed(u)) {
        sk_buf *h = u->held;
        u->held = NULL;
        sk__conn_feed(u->c, sk_buf_head(h), h->len);
        sk_buf_free(h);
        free(h);
    }
    if (u->held_eof && sk__uring_held_len(u) == 0 && may_feed(u)) {
        u->held_eof = 0;
        sk__conn_feed_eof(u->c);
    }
}

void sk__uring_on_recv(worker *w, uconn *u, int res, unsigned flags)
{
    int alive = u->c != NULL;
    if (flags & IORING_CQE_F_BUFFER) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        if (alive && res > 0)
            deliver(u, w->bufs.mem + (size_t)bid * w->bufs.size, (size_t)res);
        sk__uring_bufs_recycle(&w->bufs, bid);
    }
    if (!(flags & IORING_CQE_F_MORE)) {
        u->recv = R_IDLE; /* ended: EOF, error, no buffer left, cancelled */
        if (!done_op(u))
            return;
    } else if (!alive) {
        return;
    }
    if (res == 0) {
        if (sk__uring_held_len(u) == 0 && may_feed(u))
            sk__conn_feed_eof(u->c);
        else
            u->held_eof = 1;
    } else if (res < 0 && res != -ECANCELED && res != -ENOBUFS) {
        if (res == -EINVAL) { /* settle re-arms after ENOBUFS, not after this */
            static atomic_int said;
            if (atomic_exchange(&said, 1) == 0)
                sk_server_log(w->s, SK_LOG_ERROR,
                              "io_uring: multishot receive refused by this kernel (Linux 6.0 or "
                              "later): use --model epoll");
        }
        sk__conn_feed_error(u->c, -res);
    }
    sk__uring_settle(w, u);
}

/* A send buffer of at least want bytes for u: its own, or a small one from
 * the worker's pool (a connection keeps none while it has nothing to send,
 * so idle connections cost no send buffer). */
static int stage_room(worker *w, uconn *u, size_t want)
{
    if (u->stage_cap >= want)
        return 0;
    if (u->stage == NULL && want <= STAGE_SMALL && w->npool > 0) {
        u->stage = w->pool[--w->npool];
        u->stage_cap = STAGE_SMALL;
        return 0;
    }
    size_t cap = want < STAGE_SMALL ? STAGE_SMALL : want;
    uint8_t *n = realloc(u->stage, cap);
    if (n == NULL)
        return -1;
    u->stage = n;
    u->stage_cap = (uint32_t)cap;
    return 0;
}

/* Submit the next send. 1 if the head of the queue is a file: that one is
 * sent by the caller (sendfile, no copy through this process). */
static int start_send(worker *w, uconn *u)
{
    sk_conn *c = u->c;
    struct iovec iov[8];
    sk__conn_file f;
    int more;
    int k = sk__conn_output(c, iov, 8, &f, &more);
    size_t n;
    if (k > 0) {
        size_t want = 0;
        for (int i = 0; i < k; i++)
            want += iov[i].iov_len;
        if (want > STAGE_MAX)
            want = STAGE_MAX;
        if (stage_room(w, u, want) < 0) {
            sk__conn_feed_error(c, ENOMEM);
            return 0;
        }
        n = sk__uring_stage(iov, k, u->stage, want);
    } else {
        return f.len > 0;
    }
    /* MSG_DONTWAIT: a full socket completes the send with EAGAIN and
     * settle waits for writability with the connection's poll. Without it
     * the kernel polls by itself, and a send that a slow reader makes retry
     * often (128 times) goes to an io-wq thread, where a send blocks
     * whatever the socket's O_NONBLOCK: a kernel thread per slow reader. */
    io_uring_prep_send(sk__uring_sqe_for(w, u, T_SEND), u->fd, u->stage, n,
                       MSG_NOSIGNAL | MSG_DONTWAIT | (more ? MSG_MORE : 0));
    u->sending = 1;
    u->inflight++;
    return 0;
}

void sk__uring_on_send(worker *w, uconn *u, int res)
{
    u->sending = 0;
    if (!done_op(u))
        return;
    if (res > 0)
        sk__conn_sent(u->c, (size_t)res);
    else if (res == -EAGAIN)
        u->wready = 1; /* full: the same bytes again once it is writable */
    else if (res < 0 && res != -ECANCELED)
        sk__conn_feed_error(u->c, -res);
    else if (res == 0)
        sk__conn_feed_error(u->c, EPIPE);
    sk__uring_settle(w, u);
}

/* ---- the readiness path: TLS connections ---- */

void sk__uring_on_cpoll(worker *w, uconn *u, int res)
{
    u->cpoll.armed = u->cpoll.cancel = 0;
    if (!done_op(u))
        return;
    sk_conn *c = u->c;
    u->wready = 0;
    if (res > 0 && !u->plain) {
        int rd = res & (POLLIN | POLLRDHUP | POLLHUP | POLLERR);
        int wr = res & (POLLOUT | POLLHUP | POLLERR);
        if (rd || (wr && (c->flags & SK_C_RD_WANTS_W))) {
            if (sk__conn_wants_read(c))
                sk__conn_pump_read(c, w->scratch, SK_LOOP_READ_CHUNK);
            else if (!sk__conn_wants_write(c))
                sk__conn_feed_error(c, EPIPE); /* hangup or error, nothing left to do */
        }
    }
    sk__uring_settle(w, u);
}

static int arm_timer(worker *w, sk_conn *c)
{
    int64_t d = sk__conn_next_deadline(c, w->now, w->stopping ? w->grace_deadline : -1);
    if (d < 0 || (sk__timer_armed(&c->timer) && c->timer.at <= d))
        return 0;
    return sk__timer_set(&w->timers, &c->timer, d);
}

/* The connection's own readiness poll: armed for mask (0: none). */
static void sync_cpoll(worker *w, uconn *u, unsigned mask)
{
    upoll *p = &u->cpoll;
    if (p->armed && p->mask != mask && !p->cancel) {
        sk__uring_cancel(w, u, T_CPOLL);
        p->cancel = 1;
    } else if (!p->armed && mask) {
        sk__uring_poll_arm(w, u, T_CPOLL, u->fd, mask);
        *p = (upoll){.fd = u->fd, .mask = mask, .armed = 1};
        u->inflight++;
    }
}

/* After anything happened to a connection: send, close or re-arm. */
void sk__uring_settle(worker *w, uconn *u)
{
    sk_conn *c = u->c;
    if (!u->plain && u->plain_tp && !(c->flags & (SK_C_PROXY | SK_C_DEAD)))
        u->plain = 1; /* the PROXY stage is over: completions from now on */
    if (u->plain) {
        feed_held(u);
        if (!u->sending && !u->wready && sk__conn_wants_write(c) && start_send(w, u) == 1 &&
            !u->cpoll.armed) {
            /* A file, sent by the kernel from the page cache as the event
             * loops do (a send from the ring would need a copy here first);
             * when the socket is full, readiness says when to go on. */
            sk__conn_pump_write(c, WRITE_SHARE);
            u->wready = sk__conn_wants_write(c) && !(c->flags & SK_C_DEAD);
        }
    } else if (sk__conn_wants_write(c)) {
        sk__conn_pump_write(c, WRITE_SHARE);
    }
    /* Input kept aside (paused, or over the high-water mark) is work in
     * flight that conn.c cannot see: such a connection is busy at stop. */
    int held = sk__uring_held_len(u) > 0 || u->held_eof;
    if (sk__conn_pump_close(c) || (w->stopping && !held && sk__conn_may_stop(c)) ||
        arm_timer(w, c) < 0) {
        sk__uring_drop(w, u);
        return;
    }
    if (u->plain) {
        sync_cpoll(w, u, u->wready && sk__conn_wants_write(c) ? POLLOUT : 0);
        int want = sk__conn_wants_read(c) && sk__uring_held_len(u) == 0 && !u->held_eof;
        if (want && u->recv == R_IDLE) {
            struct io_uring_sqe *sqe = sk__uring_sqe_for(w, u, T_RECV);
            io_uring_prep_recv_multishot(sqe, u->fd, NULL, 0, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = BGID;
            u->recv = R_ARMED;
            u->inflight++;
        } else if (!want && u->recv == R_ARMED) {
            sk__uring_cancel(w, u, T_RECV);
            u->recv = R_CANCEL;
        }
        if (u->stage && !u->sending && !sk__conn_wants_write(c)) {
            if (u->stage_cap == STAGE_SMALL && w->npool < POOL_MAX)
                w->pool[w->npool++] = u->stage;
            else
                free(u->stage);
            u->stage = NULL;
            u->stage_cap = 0;
        }
    } else {
        unsigned want = sk__conn_interest(c);
        sync_cpoll(w, u, poll_mask(want));
        /* Bytes already decrypted inside the transport: no readiness will
         * say so; served after this pass, as if readable. */
        if ((want & SK_TP_WANT_READ) && !u->again && sk__tp_buffered(&c->tp) > 0 &&
            sk__uring_push(&w->again, &w->nagain, &w->capagain, u) == 0)
            u->again = 1;
    }
    sync_watches(w, u);
}

#endif
