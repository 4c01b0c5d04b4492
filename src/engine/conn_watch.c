/*
 * conn_watch.c - a service's second descriptors (sk_conn_watch), pausing and
 * half-closing: what a service needs to join a connection to something else
 * (exec's child, a relay's upstream) with backpressure both ways; and the
 * read hook (sk_conn_read_hook), with which a relay splices the peer's bytes
 * on without the engine reading them.
 *
 * The entries are kept here, with the connection; how they are waited on is
 * the model's: an event loop registers each with its backend through the
 * server's `watch` hook, the blocking driver adds them to its poll() set.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine.h"

static sk__watch *find(sk__watches *ws, int fd)
{
    for (int i = 0; i < SK_CONN_WATCH_MAX; i++)
        if (ws->w[i].events != 0 && ws->w[i].fd == fd)
            return &ws->w[i];
    return NULL;
}

/* The entries (and the read hook), made at first use. */
static int ensure(sk_conn *c)
{
    if (c->watches == NULL && (c->watches = calloc(1, sizeof *c->watches)) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

int sk_conn_read_hook(sk_conn *c, sk_conn_read_cb *cb, void *arg)
{
    if (cb == NULL) {
        if (c->watches != NULL)
            c->watches->read_cb = NULL;
        return 0;
    }
    if (c->tp.impl != NULL || c->tp.ops != &sk__tp_plain_ops) {
        errno = EOPNOTSUPP; /* TLS: the bytes on the socket are not the peer's data */
        return -1;
    }
    if (ensure(c) < 0)
        return -1;
    c->watches->read_cb = cb;
    c->watches->read_arg = arg;
    return 0;
}

sk_conn_read_cb *sk__conn_read_hook(const sk_conn *c, void **arg)
{
    if (c->watches == NULL || c->watches->read_cb == NULL ||
        (c->flags & (SK_C_CLOSING | SK_C_WSHUT | SK_C_DEAD | SK_C_HANDSHAKE)))
        return NULL; /* closing: the engine reads and discards by itself */
    *arg = c->watches->read_arg;
    return c->watches->read_cb;
}

int sk_conn_watch(sk_conn *c, int fd, unsigned events, sk_conn_watch_cb *cb, void *arg)
{
    events &= SK_WATCH_READ | SK_WATCH_WRITE;
    if (fd < 0 || (events != 0 && cb == NULL)) {
        errno = EINVAL;
        return -1;
    }
    if (c->watches == NULL) {
        if (events == 0)
            return 0;
        if (ensure(c) < 0)
            return -1;
    }
    sk__watch *w = find(c->watches, fd);
    if (w == NULL) {
        if (events == 0)
            return 0;
        for (int i = 0; i < SK_CONN_WATCH_MAX && w == NULL; i++)
            if (c->watches->w[i].events == 0)
                w = &c->watches->w[i];
        if (w == NULL) {
            errno = ENOSPC;
            return -1;
        }
        *w = (sk__watch){.c = c, .fd = fd};
    }
    unsigned old = w->events;
    if (c->srv->watch != NULL && old != events && c->srv->watch(w, old, events) < 0)
        return -1; /* unchanged */
    w->events = events;
    w->cb = cb;
    w->arg = arg;
    return 0;
}

void sk__watch_fire(sk__watch *w, unsigned fired)
{
    if (w->events != 0 && w->cb != NULL)
        w->cb(w->c, w->fd, fired, w->arg);
}

void sk__conn_unwatch_all(sk_conn *c)
{
    if (c->watches == NULL)
        return;
    for (int i = 0; i < SK_CONN_WATCH_MAX; i++) {
        sk__watch *w = &c->watches->w[i];
        if (w->events != 0 && c->srv->watch != NULL)
            c->srv->watch(w, w->events, 0);
        w->events = 0;
    }
    free(c->watches);
    c->watches = NULL;
}

int sk__conn_watching(const sk_conn *c)
{
    if (c->watches == NULL)
        return 0;
    for (int i = 0; i < SK_CONN_WATCH_MAX; i++)
        if (c->watches->w[i].events != 0)
            return 1;
    return 0;
}

void sk_conn_pause_read(sk_conn *c, int on)
{
    if (on)
        c->flags |= SK_C_PAUSED;
    else
        c->flags &= (uint16_t)~SK_C_PAUSED;
}

void sk_conn_shutdown(sk_conn *c)
{
    c->flags |= SK_C_HALF;
}
