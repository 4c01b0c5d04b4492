/*
 * ev.h - the event loop shared by the select, poll and epoll models.
 *
 * The loop knows file descriptors, interest masks and callbacks; a backend
 * (ev_select.c, ev_poll.c, ev_epoll.c) knows only how to wait. The loop never
 * knows which backend runs, as in redis's ae.c.
 */
#ifndef SK_EV_H
#define SK_EV_H

#define SK_EV_READ 1u
#define SK_EV_WRITE 2u

typedef struct sk__ev_loop sk__ev_loop;
typedef void sk__ev_cb(sk__ev_loop *loop, int fd, unsigned fired, void *ud);

typedef struct sk__ev_fired {
    int fd;
    unsigned mask; /* SK_EV_READ (also for hangup and error) | SK_EV_WRITE */
} sk__ev_fired;

/* A backend: a table of four functions. */
typedef struct sk__ev_backend {
    const char *name;
    int fd_limit; /* descriptors it can watch are < fd_limit; 0 = any */
    void *(*create)(void);
    void (*destroy)(void *st);
    /* Change the interest in fd from old_mask to new_mask (0 = not watched). 0 or -1 (errno). */
    int (*update)(void *st, int fd, unsigned old_mask, unsigned new_mask);
    /* fd is about to be closed: stop watching it (NULL: update to 0). epoll
     * needs no call at all: closing a descriptor removes it from the set. */
    void (*forget)(void *st, int fd, unsigned old_mask);
    /* Wait at most timeout_ms (-1: no limit). Fill at most max events; return
     * their number, 0 on timeout or EINTR, -1 on error (errno). */
    int (*wait)(void *st, sk__ev_fired *fired, int max, int timeout_ms);
} sk__ev_backend;

extern const sk__ev_backend sk__ev_select;
extern const sk__ev_backend sk__ev_poll;
#ifdef __linux__
extern const sk__ev_backend sk__ev_epoll;
#endif

/* NULL on failure (errno). */
sk__ev_loop *sk__ev_new(const sk__ev_backend *be);
void sk__ev_free(sk__ev_loop *loop);
/* Watch fd for mask with cb(ud); mask 0 stops watching. 0, or -1 (errno;
 * EMFILE when the backend cannot watch a descriptor that high). */
int sk__ev_watch(sk__ev_loop *loop, int fd, unsigned mask, sk__ev_cb *cb, void *ud);
/* Stop watching fd because the caller is about to close it (cheaper than
 * sk__ev_watch(loop, fd, 0, ...) on some backends). */
void sk__ev_forget(sk__ev_loop *loop, int fd);
/* The mask fd is watched for (0 if none). */
unsigned sk__ev_mask(const sk__ev_loop *loop, int fd);
/* Wait once and run the callbacks. Returns events dispatched, or -1 on error. */
int sk__ev_run_once(sk__ev_loop *loop, int timeout_ms);
const char *sk__ev_backend_name(const sk__ev_loop *loop);
/* How many events the wait being dispatched returned (for sharing work). */
int sk__ev_batch(const sk__ev_loop *loop);

#endif
