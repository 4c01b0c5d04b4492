/*
 * uring_loop.h - what the io_uring model's two halves share: the loop
 * (model_uring.c: accepting, waking, stopping, waiting) and the connections
 * (uring_conn.c: the completion path, the readiness path, closing). Internal
 * to src/engine; only with liburing (SK_HAVE_URING).
 */
#ifndef SK_URING_LOOP_H
#define SK_URING_LOOP_H

#include "engine.h"
#include "uring.h"

#ifdef SK_HAVE_URING

#define RING_ENTRIES 1024
#define NBUFS 256             /* provided buffers per worker... */
#define BUF_SIZE (16 * 1024)  /* ...of this size (4 MiB per worker) */
#define BGID 1                /* the buffer group of each worker's ring */
#define STAGE_MAX (64 * 1024) /* bytes in one send */
#define STAGE_SMALL 4096      /* send buffers this small are reused through a pool... */
#define POOL_MAX 256          /* ...of at most this many per worker */
#define CQE_BATCH 64
#define DGRAM_BATCH 64
#define ACCEPT_RETRY_MS 125
#define ZOMBIE_WAIT_MS 2000 /* at the end: the longest wait for closed connections' completions */
#define WRITE_SHARE (1u << 20) /* TLS connections: bytes written per event */

enum {
    T_NONE = 0, /* cancels and closes: their completions are ignored */
    T_RECV,
    T_SEND,
    T_CPOLL,  /* readiness of a TLS connection */
    T_WATCH0, /* ...T_WATCH0 + SK_CONN_WATCH_MAX - 1: sk_conn_watch descriptors */
    T_ACCEPT = T_WATCH0 + SK_CONN_WATCH_MAX,
    T_DPOLL, /* a datagram listener is readable */
    T_LPOLL, /* a stream listener is readable (accepting under a limit, or at EMFILE) */
    T_STOP,
    T_NOW,
    T_WAKE,
    T_HOOK, /* sk_server_on_readable: the program's descriptor */
};
_Static_assert(T_HOOK <= SK_URING_TAG_MASK, "io_uring user_data tags: 4 bits");

enum { R_IDLE, R_ARMED, R_CANCEL };

struct worker;

/* One poll in flight: what it was armed for. */
typedef struct upoll {
    int fd;
    uint8_t mask; /* POLLIN | POLLOUT */
    uint8_t armed, cancel, dirty;
} upoll;

/* The model's side of a connection. It outlives the sk_conn while the
 * kernel still owes completions for it (inflight), since their user_data
 * point here and its send buffer may still be read. */
typedef struct uconn {
    _Alignas(16) sk_conn *c; /* NULL once closed */
    struct worker *w;
    sk_buf *held; /* input that came while the connection could not take it, or NULL */
    uint8_t *stage;
    upoll *wt; /* the service's descriptors (SK_CONN_WATCH_MAX), NULL until one */
    int fd;
    uint32_t stage_cap;
    uint32_t zidx;    /* closed, awaiting completions: its place in w->zombies */
    uint8_t inflight; /* at most recv, send, cpoll and the watches */
    uint8_t plain;    /* completion path (else readiness: TLS) */
    uint8_t plain_tp; /* a plain socket: the completion path once its PROXY stage is over */
    uint8_t recv;     /* R_IDLE, R_ARMED, R_CANCEL */
    uint8_t sending;  /* a send in flight */
    uint8_t held_eof;
    uint8_t again;  /* in the worker's again list */
    uint8_t wready; /* plain: the socket is full (a send's EAGAIN, a file): wait for writability */
    upoll cpoll;    /* TLS; plain: writability while the socket is full */
} uconn;

typedef struct lstate {
    _Alignas(16) struct worker *w;
    const sk_listener *l;
    uint8_t armed, cancel;
    uint8_t emfile; /* out of descriptors: readiness and acceptor.c's shedding */
    unsigned tag;   /* what is armed: T_ACCEPT, T_LPOLL or T_DPOLL */
} lstate;

typedef struct worker {
    _Alignas(16) sk_server *s;
    atomic_int *stopped;
    int nworkers, index, ring_ok;
    struct io_uring ring;
    sk__uring_bufs bufs;
    lstate *ls;
    sk_listener *own; /* --reuseport: this loop's own sockets, NULL if shared */
    uint8_t *scratch; /* TLS reads, the read at stop */
    sk_dgram_batch *dbuf;
    uconn **conns; /* open connections (c != NULL) */
    size_t nconns, capconns;
    uconn **zombies;         /* closed, awaiting completions (their memory is read by the kernel) */
    uint8_t *pool[POOL_MAX]; /* free send buffers of STAGE_SMALL bytes */
    size_t npool;
    size_t nzombies, capzombies;
    uconn **again;
    size_t nagain, capagain;
    sk__timers timers;
    int64_t now;
    int accepting, stopping, counted, stop_seen, now_seen, retry;
    unsigned lops; /* listener operations in flight */
    int64_t grace_deadline;
    int64_t zombie_deadline; /* at the end, waiting for the zombies: until then (0: not yet) */
    int wake_rd, wake_wr;
    pthread_mutex_t mu;
    uconn **pending;
    size_t npending, cappending;
    sk_err err;
    int failed;
    pthread_t tid;
} worker;

/* uring_conn.c */
int sk__uring_push(uconn ***v, size_t *n, size_t *cap, uconn *u);
/* A submission entry for obj's operation `tag`, and those that cancel
 * (the operation's own completion still comes) or poll once. */
struct io_uring_sqe *sk__uring_sqe_for(worker *w, const void *obj, unsigned tag);
void sk__uring_cancel(worker *w, const void *obj, unsigned tag);
void sk__uring_poll_arm(worker *w, const void *obj, unsigned tag, int fd, unsigned mask);
size_t sk__uring_held_len(const uconn *u);
void sk__uring_uconn_free(uconn *u);
int sk__uring_watch(sk__watch *wt, unsigned old, unsigned events); /* the server's hook */
/* The completions of a connection's operations. */
void sk__uring_on_watch(worker *w, uconn *u, int i, int res);
void sk__uring_on_recv(worker *w, uconn *u, int res, unsigned flags);
void sk__uring_on_send(worker *w, uconn *u, int res);
void sk__uring_on_cpoll(worker *w, uconn *u, int res);
/* After anything happened to a connection: send, close or re-arm. */
void sk__uring_settle(worker *w, uconn *u);
/* Close it now (on_close; the record stays until the kernel is done with it). */
void sk__uring_drop(worker *w, uconn *u);

/* model_uring.c */
/* Accept (or stop accepting) as the limits say, on every stream listener. */
void sk__uring_sync_accept(worker *w);

#endif /* SK_HAVE_URING */
#endif
