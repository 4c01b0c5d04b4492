/* ev_poll.c - the poll() backend: portable, no descriptor limit, O(watched) waits. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "ev.h"

struct poll_state {
    struct pollfd *p; /* dense array of watched descriptors */
    int n, cap;
    int *pos; /* fd -> index in p, or -1 */
    int npos;
};

static void *poll_create(void)
{
    return calloc(1, sizeof(struct poll_state));
}

static void poll_destroy(void *st)
{
    struct poll_state *s = st;
    free(s->p);
    free(s->pos);
    free(s);
}

static short events_of(unsigned mask)
{
    return (short)(((mask & SK_EV_READ) ? POLLIN : 0) | ((mask & SK_EV_WRITE) ? POLLOUT : 0));
}

static int poll_update(void *st, int fd, unsigned old_mask, unsigned new_mask)
{
    struct poll_state *s = st;
    (void)old_mask;
    if (fd >= s->npos) {
        int n = s->npos ? s->npos : 256;
        while (n <= fd)
            n *= 2;
        int *pos = realloc(s->pos, (size_t)n * sizeof *pos);
        if (pos == NULL)
            return -1;
        for (int i = s->npos; i < n; i++)
            pos[i] = -1;
        s->pos = pos;
        s->npos = n;
    }
    int i = s->pos[fd];
    if (new_mask == 0) {
        if (i >= 0) { /* swap the last entry into the hole */
            s->p[i] = s->p[--s->n];
            s->pos[s->p[i].fd] = i;
            s->pos[fd] = -1;
        }
        return 0;
    }
    if (i < 0) {
        if (s->n == s->cap) {
            int cap = s->cap ? s->cap * 2 : 256;
            struct pollfd *p = realloc(s->p, (size_t)cap * sizeof *p);
            if (p == NULL)
                return -1;
            s->p = p;
            s->cap = cap;
        }
        i = s->n++;
        s->p[i].fd = fd;
        s->pos[fd] = i;
    }
    s->p[i].events = events_of(new_mask);
    s->p[i].revents = 0;
    return 0;
}

static int poll_wait(void *st, sk__ev_fired *fired, int max, int timeout_ms)
{
    struct poll_state *s = st;
    int r = poll(s->p, (nfds_t)s->n, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    int k = 0;
    for (int i = 0; i < s->n && k < max && r > 0; i++) {
        short re = s->p[i].revents;
        if (re == 0)
            continue;
        r--;
        unsigned m = 0;
        if (re & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
            m |= SK_EV_READ;
        if (re & (POLLOUT | POLLHUP | POLLERR))
            m |= SK_EV_WRITE;
        fired[k].fd = s->p[i].fd;
        fired[k].mask = m;
        k++;
    }
    return k;
}

const sk__ev_backend sk__ev_poll = {
    .name = "poll",
    .fd_limit = 0,
    .create = poll_create,
    .destroy = poll_destroy,
    .update = poll_update,
    .wait = poll_wait,
};
