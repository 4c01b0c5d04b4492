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

typedef struct sk_ev_loop sk_ev_loop;
typedef void sk_ev_cb(sk_ev_loop *loop, int fd, unsigned fired, void *ud);

typedef struct sk_ev_fired {
    int fd;
    unsigned mask; /* SK_EV_READ (also for hangup and error) | SK_EV_WRITE */
} sk_ev_fired;

/* A backend: a table of four functions. */
typedef struct sk_ev_backend {
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
    int (*wait)(void *st, sk_ev_fired *fired, int max, int timeout_ms);
} sk_ev_backend;

extern const sk_ev_backend sk__ev_select;
extern const sk_ev_backend sk__ev_poll;
#ifdef __linux__
extern const sk_ev_backend sk__ev_epoll;
#endif

/* NULL on failure (errno). */
sk_ev_loop *sk_ev_new(const sk_ev_backend *be);
void sk_ev_free(sk_ev_loop *loop);
/* Watch fd for mask with cb(ud); mask 0 stops watching. 0, or -1 (errno;
 * EMFILE when the backend cannot watch a descriptor that high). */
int sk_ev_watch(sk_ev_loop *loop, int fd, unsigned mask, sk_ev_cb *cb, void *ud);
/* Stop watching fd because the caller is about to close it (cheaper than
 * sk_ev_watch(loop, fd, 0, ...) on some backends). */
void sk_ev_forget(sk_ev_loop *loop, int fd);
/* The mask fd is watched for (0 if none). */
unsigned sk_ev_mask(const sk_ev_loop *loop, int fd);
/* Wait once and run the callbacks. Returns events dispatched, or -1 on error. */
int sk_ev_run_once(sk_ev_loop *loop, int timeout_ms);
const char *sk_ev_backend_name(const sk_ev_loop *loop);
/* How many events the wait being dispatched returned (for sharing work). */
int sk_ev_batch(const sk_ev_loop *loop);

#endif
