/*
 * ev_select.c - the select() backend: the seed tutorial's single-process
 * concurrent server. Limited to descriptors below FD_SETSIZE (1024); the loop
 * refuses higher ones with EMFILE, and the model closes such connections.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "ev.h"

struct select_state {
    fd_set rd, wr;
    fd_set rd_out, wr_out;
    int maxfd;
};

static void *select_create(void)
{
    struct select_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    FD_ZERO(&s->rd);
    FD_ZERO(&s->wr);
    s->maxfd = -1;
    return s;
}

static void select_destroy(void *st)
{
    free(st);
}

static int select_update(void *st, int fd, unsigned old_mask, unsigned new_mask)
{
    struct select_state *s = st;
    (void)old_mask;
    if (fd >= FD_SETSIZE) {
        errno = EMFILE;
        return -1;
    }
    if (new_mask & SK_EV_READ)
        FD_SET(fd, &s->rd);
    else
        FD_CLR(fd, &s->rd);
    if (new_mask & SK_EV_WRITE)
        FD_SET(fd, &s->wr);
    else
        FD_CLR(fd, &s->wr);
    if (new_mask && fd > s->maxfd)
        s->maxfd = fd;
    while (s->maxfd >= 0 && !FD_ISSET(s->maxfd, &s->rd) && !FD_ISSET(s->maxfd, &s->wr))
        s->maxfd--;
    return 0;
}

static int select_wait(void *st, sk__ev_fired *fired, int max, int timeout_ms)
{
    struct select_state *s = st;
    s->rd_out = s->rd;
    s->wr_out = s->wr;
    struct timeval tv, *tvp = NULL;
    if (timeout_ms >= 0) {
        tv.tv_sec = timeout_ms / 1000;
        tv.tv_usec = (timeout_ms % 1000) * 1000;
        tvp = &tv;
    }
    int r = select(s->maxfd + 1, &s->rd_out, &s->wr_out, NULL, tvp);
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    int k = 0;
    for (int fd = 0; fd <= s->maxfd && k < max && r > 0; fd++) {
        unsigned m = 0;
        if (FD_ISSET(fd, &s->rd_out))
            m |= SK_EV_READ;
        if (FD_ISSET(fd, &s->wr_out))
            m |= SK_EV_WRITE;
        if (m) {
            fired[k].fd = fd;
            fired[k].mask = m;
            k++;
        }
    }
    return k;
}

const sk__ev_backend sk__ev_select = {
    .name = "select",
    .fd_limit = FD_SETSIZE,
    .create = select_create,
    .destroy = select_destroy,
    .update = select_update,
    .wait = select_wait,
};
