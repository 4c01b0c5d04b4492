/*
 * engine.h - internal to the server engine (src/engine). Not installed.
 *
 * The pieces:
 *   server.c     sk_server: options, listeners, stop signal, model registry
 *   conn.c       sk_conn: one connection's buffers and the calls into the service
 *   blocking.c   drives one connection (or one datagram) in its own flow of control;
 *                used by iterative, fork, thread and prefork
 *   acceptor.c   waiting on several listeners at once; accept with EMFILE shedding
 *   admit.c      who may connect: access list and per-source limits, at accept
 *   model_*.c    one concurrency model each, exporting an sk_model
 */
#ifndef SK_ENGINE_H
#define SK_ENGINE_H

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "sockit.h"

#define SK_READ_CHUNK 65536             /* one read()'s worth (blocking drivers: on the stack) */
#define SK_LOOP_READ_CHUNK (256 * 1024) /* an event loop's shared read buffer */
#define SK_HIGH_WATER (256 * 1024)      /* stop reading while this much output is queued */
#define SK_MAX_QUEUE_DEFAULT (4u << 20)
#define SK_GRACE_DEFAULT_MS 10000
#define SK_LINGER_MS 1000 /* after our close: wait this long for the peer's FIN */

struct sk_server {
    sk_server_opts o;
    const sk_service *svc;
    const sk_model *model;
    void *svc_state;
    sk_listener *ls;
    size_t nls, capls;
    /* Stop pipe: written once by sk_server_stop and never drained, so it stays
     * readable for every poller, in every process and thread that shares it. */
    int stop_rd, stop_wr;
    /* Set by sk_server_stop (a signal handler may call it: a lock-free atomic is
     * async-signal-safe) and by any flow of control that sees the stop pipe
     * readable in its own poll (a forked worker does not share the parent's flag). */
    atomic_int stopping;
    int is_child;       /* a forked worker: stop requests come from the parent */
    int own_listeners;  /* this single flow of control may close the listeners at
                         * stop (iterative, a prefork worker) */
    int spare_fd;       /* reserve descriptor, released to shed a connection at EMFILE */
    atomic_long nconns; /* connections open now (models that share memory) */
    /* Set by the model: make a connection's owner call sk__conn_take_inbox. */
    void (*wake)(sk_conn *c);
    atomic_ulong served; /* connections/datagrams finished, for --once */
    sk_limits *limits;   /* access: per-source limits (admit.c), NULL if none */
};

/* Peer address, compactly: connections must stay small (idle capacity). */
typedef struct sk_peer {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } u;
    socklen_t len;
} sk_peer;

/* Connection flags */
#define SK_C_EOF 0x01       /* peer shut down its sending side */
#define SK_C_CLOSING 0x02   /* close once output is flushed */
#define SK_C_DRAIN 0x04     /* service wants on_drain */
#define SK_C_DEAD 0x08      /* I/O error: close now, drop output */
#define SK_C_WSHUT 0x10     /* we shut down our sending side (lingering close) */
#define SK_C_LINGERING 0x20 /* counted in its event loop's lingering total */

/* Bytes posted to a connection by other connections (SK_SVC_SHARED services),
 * waiting for the connection's own thread to move them to its output. */
typedef struct sk_inbox {
    pthread_mutex_t mu;
    sk_buf buf;
    int overflow;
    int queued; /* a wake-up is already on its way */
} sk_inbox;

/* A file region queued for output, and the bytes queued after it. */
typedef struct sk_fileseg {
    struct sk_fileseg *next;
    int fd;
    off_t off;
    uint64_t left;
    sk_buf after;
    const uint8_t *mem;         /* not NULL: a memory segment (mem + off), no file */
    void (*release)(void *arg); /* NULL: close fd when done */
    void *arg;
} sk_fileseg;

/* Kept small: an idle connection costs this plus the loop's bookkeeping
 * (the goal is under 256 bytes of memory per idle connection). */
struct sk_conn {
    int fd;
    int loop_index;
    uint16_t flags;
    uint8_t transport; /* sk_transport */
    sk_server *srv;
    sk_buf out;                /* bytes to send first */
    sk_fileseg *fhead, *ftail; /* then files, each followed by its bytes */
    uint64_t fbytes;           /* file and after-file bytes queued */
    int64_t timer_at;          /* sk_conn_set_timer deadline, 0 = none */
    uint64_t bytes_in, bytes_out;
    int64_t started_ms, last_io_ms;
    sk_peer peer;
    void *loop_data;                            /* owned by the model driving this connection */
    sk_inbox *inbox;                            /* SK_SVC_SHARED services only */
    _Alignas(max_align_t) unsigned char data[]; /* service's conn_size bytes */
};

/* conn.c */
sk_conn *sk__conn_new(sk_server *s, int fd, const struct sockaddr *peer, socklen_t plen,
                      sk_transport t);
void sk__conn_open(sk_conn *c);
/* Read what is available (once; nonblocking fd) and feed the service. */
void sk__conn_read(sk_conn *c, uint8_t *scratch, size_t cap);
/* Write queued output; call on_drain when it empties. */
void sk__conn_write(sk_conn *c);
int sk__conn_wants_read(const sk_conn *c);
int sk__conn_wants_write(const sk_conn *c);
/* 1 when the connection should be freed now. May start a lingering close. */
int sk__conn_finished(sk_conn *c);
/* 1 if the connection has no output in flight (may be closed at shutdown). */
int sk__conn_idle(const sk_conn *c);
/* Run the service timer if it is due. Returns 1 if it ran. */
int sk__conn_check_timer(sk_conn *c, int64_t now);
void sk__conn_free(sk_conn *c);
/* In the connection's own thread: move posted bytes to its output. */
void sk__conn_take_inbox(sk_conn *c);

/* blocking.c */
/* Serve one accepted stream connection to the end in this flow of control. */
void sk__serve_stream_blocking(sk_server *s, int fd, const struct sockaddr *peer, socklen_t plen,
                               sk_transport t);

/* dgram.c: datagram services, batched with recvmmsg/sendmmsg where available */
typedef struct sk_dgram_batch sk_dgram_batch;
sk_dgram_batch *sk__dgram_batch_new(void); /* NULL when out of memory */
void sk__dgram_batch_free(sk_dgram_batch *b);
/* Receive and answer datagrams on a listener until it would block (at most
 * `max`). Returns how many were handled. */
int sk__serve_datagrams(sk_server *s, const sk_listener *l, int max, sk_dgram_batch *b);

/* acceptor.c */
/* Wait for a listener to be ready (or the stop pipe, or extra_fd). Returns the
 * listener index, -1 on stop, -2 on timeout or extra_fd readiness. */
int sk__wait_listeners(sk_server *s, int extra_fd, int timeout_ms);
/* The head of every accept loop: wait, answer ready datagram listeners here,
 * and return the index of a stream listener ready to accept, or
 * SK_WAIT_STOP (stop requested, or --once served its datagram), or
 * SK_WAIT_AGAIN (nothing to accept: woken by extra_fd, a signal, ...). */
#define SK_WAIT_STOP (-1)
#define SK_WAIT_AGAIN (-2)
int sk__wait_work(sk_server *s, int extra_fd, sk_dgram_batch *dgrams);
/* Accept from listener l. Returns fd, or -1 (nothing to accept, or shed at EMFILE). */
int sk__accept(sk_server *s, const sk_listener *l, struct sockaddr *peer, socklen_t *plen,
               int nonblock);

/* admit.c: access lists and per-source limits (--allow, --max-per-source, --rate) */
int sk__admit_init(sk_server *s, sk_err *err); /* in sk_server_new, before any fork */
void sk__admit_fini(sk_server *s);
/* 1: serve this peer; 0: refuse it (logged at -v, rate-limited). A stream
 * peer admitted is counted until sk__admit_release. */
int sk__admit(sk_server *s, const struct sockaddr *peer, socklen_t len, sk_transport t);
void sk__admit_release(sk_server *s, const struct sockaddr *peer, socklen_t len, sk_transport t);

/* procs.c: child processes (fork, prefork) */
typedef struct sk_procs {
    pid_t *pids;
    size_t n, cap;
    int chld_rd;        /* readable after SIGCHLD */
    int keep_listeners; /* children keep the listening sockets (prefork) */
    struct sigaction old;
} sk_procs;
int sk__procs_start(sk_procs *p, sk_err *err);
void sk__procs_stop(sk_procs *p);
int sk__procs_add(sk_procs *p, pid_t pid);
/* Reap every exited child; on_exit (if any) gets each pid and wait status. */
int sk__procs_reap(sk_procs *p, void (*on_exit)(pid_t, int, void *), void *arg);
/* Sleep until a child exits, timeout_ms passes, or (watch_stop) a stop is requested. */
void sk__procs_wait(sk_server *s, sk_procs *p, int timeout_ms, int watch_stop);
/* Wait for all children; bounded by the grace period once the server stops. */
void sk__procs_wait_all(sk_server *s, sk_procs *p);
/* In a new child: drop the parent's descriptors and signal handlers. */
void sk__child_init(sk_server *s, sk_procs *p);

/* server.c */
int sk__stopping(sk_server *s);
/* The stop pipe was seen readable: remember it (for sk__stopping). */
void sk__saw_stop(sk_server *s);
/* Close this process's listening sockets (removing Unix socket files unless a
 * child): new clients are refused and the backlog is reset at once, rather
 * than left waiting while busy connections finish. Idempotent. */
void sk__stop_listening(sk_server *s);
void sk__log_conn_open(sk_conn *c);
/* Service finished one unit of work: returns 1 if --once says stop now. */
int sk__count_served(sk_server *s);

/* The models */
extern const sk_model sk__model_iterative;
extern const sk_model sk__model_fork;
extern const sk_model sk__model_thread;
extern const sk_model sk__model_prefork;
extern const sk_model sk__model_select;
extern const sk_model sk__model_poll;
#ifdef __linux__
extern const sk_model sk__model_epoll;
#endif

#endif
