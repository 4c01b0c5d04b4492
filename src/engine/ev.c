/* ev.c - the event loop: descriptor table and dispatch, on any backend. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ev.h"

#define SK_EV_BATCH 512

struct watch {
    unsigned mask;
    sk__ev_cb *cb;
    void *ud;
};

struct sk__ev_loop {
    const sk__ev_backend *be;
    void *st;
    struct watch *w; /* indexed by fd */
    int nw;
    int batch; /* events in the dispatch under way */
    sk__ev_fired fired[SK_EV_BATCH];
};

sk__ev_loop *sk__ev_new(const sk__ev_backend *be)
{
    sk__ev_loop *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->be = be;
    l->st = be->create();
    if (l->st == NULL) {
        free(l);
        return NULL;
    }
    return l;
}

void sk__ev_free(sk__ev_loop *l)
{
    if (l == NULL)
        return;
    l->be->destroy(l->st);
    free(l->w);
    free(l);
}

static int grow(sk__ev_loop *l, int fd)
{
    if (fd < l->nw)
        return 0;
    int n = l->nw ? l->nw : 256;
    while (n <= fd)
        n *= 2;
    struct watch *w = realloc(l->w, (size_t)n * sizeof *w);
    if (w == NULL)
        return -1;
    memset(w + l->nw, 0, (size_t)(n - l->nw) * sizeof *w);
    l->w = w;
    l->nw = n;
    return 0;
}

int sk__ev_watch(sk__ev_loop *l, int fd, unsigned mask, sk__ev_cb *cb, void *ud)
{
    if (fd < 0 || (l->be->fd_limit && fd >= l->be->fd_limit)) {
        errno = EMFILE;
        return -1;
    }
    if (grow(l, fd) < 0)
        return -1;
    struct watch *w = &l->w[fd];
    if (w->mask != mask && l->be->update(l->st, fd, w->mask, mask) < 0)
        return -1;
    w->mask = mask;
    w->cb = mask ? cb : NULL;
    w->ud = mask ? ud : NULL;
    return 0;
}

void sk__ev_forget(sk__ev_loop *l, int fd)
{
    if (fd < 0 || fd >= l->nw || l->w[fd].mask == 0)
        return;
    if (l->be->forget)
        l->be->forget(l->st, fd, l->w[fd].mask);
    else
        l->be->update(l->st, fd, l->w[fd].mask, 0);
    l->w[fd] = (struct watch){0};
}

unsigned sk__ev_mask(const sk__ev_loop *l, int fd)
{
    return fd >= 0 && fd < l->nw ? l->w[fd].mask : 0;
}

int sk__ev_run_once(sk__ev_loop *l, int timeout_ms)
{
    int n = l->be->wait(l->st, l->fired, SK_EV_BATCH, timeout_ms);
    l->batch = n > 0 ? n : 0;
    if (n <= 0)
        return n;
    for (int i = 0; i < n; i++) {
        int fd = l->fired[i].fd;
        /* A callback earlier in this batch may have stopped watching fd (or
         * closed it): deliver only what is still asked for. */
        if (fd >= l->nw)
            continue;
        struct watch *w = &l->w[fd];
        unsigned m = l->fired[i].mask & (w->mask | SK_EV_READ);
        if (w->mask == 0 || m == 0)
            continue;
        w->cb(l, fd, m, w->ud);
    }
    return n;
}

int sk__ev_batch(const sk__ev_loop *l)
{
    return l->batch;
}

const char *sk__ev_backend_name(const sk__ev_loop *l)
{
    return l->be->name;
}
