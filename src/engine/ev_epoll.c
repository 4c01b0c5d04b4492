/* ev_epoll.c - the epoll backend (Linux): O(ready) waits, level-triggered. */
#ifdef __linux__
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ev.h"

#define EPOLL_BATCH 512

struct epoll_state {
    int epfd;
    struct epoll_event ev[EPOLL_BATCH];
};

static void *epoll_create_state(void)
{
    struct epoll_state *s = malloc(sizeof *s);
    if (s == NULL)
        return NULL;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void epoll_destroy(void *st)
{
    struct epoll_state *s = st;
    close(s->epfd);
    free(s);
}

static int epoll_update(void *st, int fd, unsigned old_mask, unsigned new_mask)
{
    struct epoll_state *s = st;
    struct epoll_event e = {0};
    e.data.fd = fd;
    if (new_mask & SK_EV_READ)
        e.events |= EPOLLIN | EPOLLRDHUP;
    if (new_mask & SK_EV_WRITE)
        e.events |= EPOLLOUT;
    int op = old_mask == 0 ? EPOLL_CTL_ADD : new_mask == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (epoll_ctl(s->epfd, op, fd, &e) == 0)
        return 0;
    /* The descriptor was closed (and so left the set) before we were told. */
    if (op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT))
        return 0;
    return -1;
}

static int epoll_wait_events(void *st, sk__ev_fired *fired, int max, int timeout_ms)
{
    struct epoll_state *s = st;
    if (max > EPOLL_BATCH)
        max = EPOLL_BATCH;
    int n = epoll_wait(s->epfd, s->ev, max, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        unsigned m = 0;
        uint32_t e = s->ev[i].events;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            m |= SK_EV_READ;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            m |= SK_EV_WRITE;
        fired[i].fd = s->ev[i].data.fd;
        fired[i].mask = m;
    }
    return n;
}

static void epoll_forget(void *st, int fd, unsigned old_mask)
{
    (void)st;
    (void)fd;
    (void)old_mask; /* close() takes it out of the interest list */
}

const sk__ev_backend sk__ev_epoll = {
    .name = "epoll",
    .fd_limit = 0,
    .create = epoll_create_state,
    .destroy = epoll_destroy,
    .update = epoll_update,
    .wait = epoll_wait_events,
    .forget = epoll_forget,
};
#endif
