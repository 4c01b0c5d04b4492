/*
 * engine.h - internal to the server engine (src/engine). Not installed.
 *
 * The pieces:
 *   server.c     sk_server: options, listeners, stop (graceful and now), model registry
 *   conn.c       sk_conn: one connection as a state machine (no I/O): its buffers
 *                and the calls into the service
 *   conn_io.c    the only code that moves a connection's bytes through its
 *                transport (src/lib/transport.h), for every model
 *   policy.c     deadlines (service timer, idle, linger, grace) and interest
 *   blocking.c   drives one connection in its own flow of control;
 *                used by iterative, fork, thread and prefork
 *   acceptor.c   waiting on several listeners at once; accept with EMFILE shedding
 *   admit.c      who may connect: access list and per-source limits, at accept
 *   model_event.c  select/poll/epoll loops, one heap timer per connection
 *   model_uring.c  io_uring: completions for plain connections (uring_conn.c: the
 *                connections; uring_ring.c: the ring)
 *   model_*.c    one concurrency model each, exporting an sk_model
 */
#ifndef SK_ENGINE_H
#define SK_ENGINE_H

#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "sockit.h"
#include "../lib/timer.h"
#include "../lib/transport.h"

#define SK_READ_CHUNK 65536             /* one read()'s worth (blocking drivers: on the stack) */
#define SK_LOOP_READ_CHUNK (256 * 1024) /* an event loop's shared read buffer */
#define SK_HIGH_WATER (256 * 1024)      /* stop reading while this much output is queued */
#define SK_MAX_QUEUE_DEFAULT (4u << 20)
#define SK_GRACE_DEFAULT_MS 10000
#define SK_LINGER_MS 1000 /* after our close: wait this long for the peer's FIN */

struct sk__watch;

/* sk_server_on_readable: a descriptor of the program's, watched by the first
 * loop (its address is an io_uring completion's user_data: 16-aligned). */
typedef struct sk__hook {
    _Alignas(16) sk_server *s;
    int fd;
    int (*fn)(sk_server *s, int fd, void *arg);
    void *arg;
} sk__hook;

struct sk_server {
    sk_server_opts o;
    const sk_service *svc;
    const sk_model *model;
    void *svc_state;
    sk_listener *ls;
    size_t nls, capls;
    struct pollfd *pfds; /* acceptor.c: the listeners, the stop pipe, one more */
    /* Stop pipe: written once by sk_server_stop and never drained, so it stays
     * readable for every poller, in every process and thread that shares it. */
    int stop_rd, stop_wr;
    /* The same for sk_server_stop_now: busy connections are closed at once. */
    int now_rd, now_wr;
    atomic_int stopping_now;
    /* Busy connections in their grace period, counted across the processes
     * of fork/prefork (shared memory), for the one "stopping: ..." line. */
    struct sk_shared *shared;
    atomic_int announced; /* that line was logged */
    /* Set by sk_server_stop (a signal handler may call it: a lock-free atomic is
     * async-signal-safe) and by any flow of control that sees the stop pipe
     * readable in its own poll (a forked worker does not share the parent's flag). */
    atomic_int stopping;
    atomic_llong stop_ms; /* sk_now_ms() when this process first saw the stop; 0 before */
    int is_child;         /* a forked worker: stop requests come from the parent */
    int own_listeners;    /* this single flow of control may close the listeners at
                           * stop (iterative, a prefork worker) */
    int spare_fd;         /* reserve descriptor, released to shed a connection at EMFILE */
    atomic_long nconns;   /* connections open now (models that share memory) */
    atomic_uint reloads;  /* sk_server_reload calls: prefork replaces its workers */
    /* Set by the model: make a connection's owner call sk__conn_take_inbox. */
    void (*wake)(sk_conn *c);
    /* Set by an event model: make its loop watch w->fd for `events` (0: stop)
     * on behalf of w->c; was `old`. 0, or -1 (errno). NULL: the model polls
     * the connection's watches itself (blocking.c). */
    int (*watch)(struct sk__watch *w, unsigned old, unsigned events);
    atomic_ulong served;                 /* connections/datagrams finished, for --once */
    sk_limits *limits;                   /* access: per-source limits (admit.c), NULL if none */
    sk__hook hooks[SK_SERVER_HOOKS_MAX]; /* sk_server_on_readable (deploy.c) */
    int nhooks;
};
/* A hook's descriptor was readable: call the program; 0 to go on watching. */
int sk__hook_fire(sk__hook *h);

/* Connection flags */
#define SK_C_EOF 0x01         /* peer shut down its sending side */
#define SK_C_CLOSING 0x02     /* close once output is flushed */
#define SK_C_DRAIN 0x04       /* service wants on_drain */
#define SK_C_DEAD 0x08        /* I/O error: close now, drop output */
#define SK_C_WSHUT 0x10       /* we shut down our sending side (lingering close) */
#define SK_C_TIMER 0x40       /* the service timer (timer_at) is set */
#define SK_C_WR_WANTS_R 0x80  /* the last write waits for readability (TLS) */
#define SK_C_RD_WANTS_W 0x100 /* the last read waits for writability (TLS) */
#define SK_C_HANDSHAKE 0x20   /* TLS handshake in progress: on_open not called yet */
#define SK_C_SHUT_AGAIN 0x400 /* our close_notify waits for writability (TLS) */
#define SK_C_PAUSED 0x800     /* the service paused reading (sk_conn_pause_read) */
#define SK_C_HALF 0x4000      /* the service asked for a half-close (sk_conn_shutdown) */
#define SK_C_HALF_DONE 0x8000 /* ... and our write side is shut: reading goes on */
#define SK_TLS_HANDSHAKE_MS 10000
/* The PROXY protocol stage (conn_proxy.c): the header is not complete yet.
 * The connection is not admitted (admit.c) or opened until it is; meanwhile
 * c->out holds the header bytes consumed so far (never output). */
#define SK_C_PROXY 0x1000   /* (0x200 is model_event.c's SK_C_AGAIN) */
#define SK_C_PROXIED 0x2000 /* the peer is the header's source (sk_conn_proxied) */
#define SK_PROXY_TIMEOUT_MS 3000

/* Bytes posted to a connection by other connections (SK_SVC_SHARED services),
 * waiting for the connection's own thread to move them to its output. */
typedef struct sk_inbox {
    pthread_mutex_t mu;
    sk_buf buf;
    int overflow;
    int queued; /* a wake-up is already on its way */
} sk_inbox;

/* A file region or shared memory queued for output, and the bytes queued after it. */
typedef struct sk_fileseg {
    struct sk_fileseg *next;
    int fd;
    off_t off;
    uint64_t left;
    sk_buf after;
    const uint8_t *mem;         /* not NULL: a memory segment (mem + off), no file */
    int pipe;                   /* fd is a pipe holding `left` bytes (splice), no offset */
    void (*release)(void *arg); /* NULL: close fd when done */
    void *arg;
} sk_fileseg;

typedef union sk__conn_align {
    void *p;
    int64_t i;
    double d;
} sk__conn_align;

/*
 * Kept small: an idle connection costs this plus the loop's bookkeeping (the
 * goal is under 256 bytes of memory per idle connection: 192 bytes, a
 * 208-byte malloc chunk). Hence the peer address shares its 32 bytes with the
 * flags, the service timer is a 32-bit wrapping time, the file queue has no
 * tail pointer and the broker's inbox lives after the service data.
 */
struct sk_conn {
    sk_tp tp; /* the wire: ops, fd, what the last SK_TP_AGAIN waits for */
    int loop_index;
    uint32_t timer_at; /* sk_conn_set_timer deadline (low 32 bits of sk_now_ms) */
    sk_server *srv;
    sk_buf out;        /* bytes to send first */
    sk_fileseg *fhead; /* then files, each followed by its bytes */
    uint64_t fbytes;   /* file and after-file bytes queued */
    uint64_t bytes_in, bytes_out;
    int64_t started_ms, last_io_ms;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct {
            sa_family_t family; /* AF_UNIX: Unix stream peers are unnamed... */
            int pid;            /* ...so their credentials live here; -1 unknown */
            unsigned uid;
            int has_uid;
        } cred;
        struct {
            sa_family_t family; /* AF_UNIX with SK_C_PROXIED: a v2 header's Unix */
            /* source: its path (malloc'd), a char * kept in bytes (sk__conn_proxied_path):
             * a pointer member would align the union to 8 and grow sk_conn past
             * its 192-byte malloc chunk. */
            unsigned char path[sizeof(char *)];
        } proxied_unix;
    } peer;
    uint16_t flags;
    uint8_t peer_len;
    uint8_t transport;           /* sk_transport */
    void *loop_data;             /* owned by the model driving this connection */
    struct sk__watches *watches; /* descriptors the service watches (conn_watch.c), or NULL */
    sk__timer timer;             /* event models: armed at the earliest deadline (policy.c) */
    /* The service's conn_size bytes, then the inbox (SK_SVC_SHARED). Aligned
     * for pointers, 64-bit integers and doubles, not max_align_t: its 16 bytes
     * would round the struct up past one 192-byte malloc chunk. */
    _Alignas(sk__conn_align) unsigned char data[];
};

/* The path of a PROXY v2 Unix source (SK_C_PROXIED, family AF_UNIX). */
static inline char *sk__conn_proxied_path(const sk_conn *c)
{
    char *p;
    memcpy(&p, c->peer.proxied_unix.path, sizeof p);
    return p;
}

/* conn.c: the connection as a state machine. It never calls the kernel: a
 * model (through conn_io.c) feeds it what the transport read and sends what
 * it hands out. */
sk_conn *sk__conn_new(sk_server *s, const sk_tp *tp, const struct sockaddr *peer, socklen_t plen,
                      sk_transport t);
void sk__conn_open(sk_conn *c);
/* Bytes arrived (n > 0): the service sees them unless it is done with input. */
void sk__conn_feed(sk_conn *c, const uint8_t *data, size_t n);
/* n bytes arrived and were dropped unseen (SK_SVC_DISCARDS_INPUT): counted
 * as input, and no on_data. */
void sk__conn_feed_dropped(sk_conn *c, size_t n);
/* The peer's end of stream (FIN). */
void sk__conn_feed_eof(sk_conn *c);
/* A transport error (errno value): the connection is dead, its output dropped. */
void sk__conn_feed_error(sk_conn *c, int err);
/* What to send next. Fills up to max iovecs (queued bytes and shared memory)
 * and returns their number; or returns 0 and, if the head of the queue is a
 * file, fills *file (file->len > 0) for a sendfile. Nothing to send: 0 and
 * file->len == 0. *more is set when a file follows the iovecs (MSG_MORE).
 * Calls the service's on_drain when the queue is empty and it asked for it. */
typedef struct sk__conn_file {
    int fd;
    off_t off;
    uint64_t len;
    int pipe; /* fd is a pipe (SK_SEG_PIPE): splice, no offset */
} sk__conn_file;
int sk__conn_output(sk_conn *c, struct iovec *iov, int max, sk__conn_file *file, int *more);
/* The transport took n bytes of what sk__conn_output handed out. */
void sk__conn_sent(sk_conn *c, size_t n);
int sk__conn_wants_read(const sk_conn *c);
int sk__conn_wants_write(const sk_conn *c);
/* Closing: 0 not yet, 1 free it now, 2 shut down the write side (a lingering
 * close has begun: SK_C_WSHUT is set; the caller calls sk__tp_shutdown). */
int sk__conn_close_step(sk_conn *c);
/* 1 if the connection has no output in flight (may be closed at shutdown).
 * Input the peer sent and we did not read yet is not seen here: the models
 * read once at stop (sk__conn_pump_read), so a request already in the socket
 * is taken, and answering it makes the connection busy. */
int sk__conn_idle(const sk_conn *c);
/* Run the service timer if it is due. Returns 1 if it ran. */
int sk__conn_check_timer(sk_conn *c, int64_t now);
/* The service timer's deadline, or -1. */
int64_t sk__conn_timer_deadline(const sk_conn *c, int64_t now);
void sk__conn_free(sk_conn *c);
/* In the connection's own thread: move posted bytes to its output. */
void sk__conn_take_inbox(sk_conn *c);
sk_inbox *sk__conn_inbox(const sk_conn *c); /* NULL unless SK_SVC_SHARED */

/* conn_io.c: the only code that moves a connection's bytes through its
 * transport, shared by every model. */
/* Read once (if the connection wants input) and feed what came. Returns the
 * transport's result (> 0, 0, SK_TP_AGAIN, SK_TP_ERR), or SK_TP_AGAIN when
 * nothing was asked for. */
ssize_t sk__conn_pump_read(sk_conn *c, uint8_t *scratch, size_t cap);
/* Write queued output until the transport would block, the queue is empty,
 * or `budget` bytes went (at most one file chunk of SK_FILE_CHUNK per call).
 * Returns 1 if the budget ran out with output left (call again soon), else 0. */
#define SK_FILE_CHUNK (1u << 20)
int sk__conn_pump_write(sk_conn *c, size_t budget);
/* Take the next closing step (sk__conn_close_step), shutting the transport's
 * write side when a lingering close begins. 1: free the connection now. */
int sk__conn_pump_close(sk_conn *c);
/* A Unix stream peer: take its credentials (SO_PEERCRED / getpeereid) for
 * sk_conn_peer_name and the logs. Nothing for other transports. */
void sk__conn_peer_cred(sk_conn *c);
/* A TCP connection made with no peer address (peer_len 0: io_uring's
 * multishot accept has none): ask the socket (getpeername), once something
 * wants the name (conn.c's sk_conn_peer_*). Left unknown if it fails. */
void sk__conn_peer_take(sk_conn *c);
/* Close a file descriptor a service handed over (sk_conn_queue) once sent. */
void sk__conn_close_file(int fd);
/* Free the connection (sk__conn_free: on_close, logs) and close its transport. */
void sk__conn_destroy(sk_conn *c);

/* policy.c: deadlines, timeouts and interest, written once for every model. */
/* The earliest time something must happen to c (service timer, idle
 * timeout, lingering close, grace_deadline when >= 0), or -1 for none. */
int64_t sk__conn_next_deadline(const sk_conn *c, int64_t now, int64_t grace_deadline);
/* At `now`: 0 nothing due, 1 close it now (idle timeout, linger over, grace
 * over; logged with -v), 2 the service timer ran (write, then decide). */
#define SK_EXP_NONE 0
#define SK_EXP_CLOSE 1
#define SK_EXP_RAN 2
int sk__conn_expired(sk_conn *c, int64_t now, int64_t grace_deadline);
/* What to wait for: SK_TP_WANT_READ and/or SK_TP_WANT_WRITE. */
unsigned sk__conn_interest(const sk_conn *c);
/* Stopping: 1 if c may go now (no output in flight). */
int sk__conn_may_stop(sk_conn *c);

/* conn_watch.c: a service's second descriptors (sk_conn_watch). The entries
 * live in one allocation per connection, made at the first watch, so their
 * addresses are stable: a model may hand them to its loop as callback data. */
#define SK_CONN_WATCH_MAX 4
typedef struct sk__watch {
    sk_conn *c;
    int fd;          /* -1: a free entry */
    unsigned events; /* SK_WATCH_READ | SK_WATCH_WRITE; 0 = a free entry */
    sk_conn_watch_cb *cb;
    void *arg;
} sk__watch;
typedef struct sk__watches {
    sk__watch w[SK_CONN_WATCH_MAX];
    sk_conn_read_cb *read_cb; /* sk_conn_read_hook: reads instead of the transport */
    void *read_arg;
} sk__watches;
/* Run a watch's callback for what fired (SK_WATCH_READ also for hangup and
 * error). The caller then settles the connection as after a read. */
void sk__watch_fire(sk__watch *w, unsigned fired);
/* Stop every watch left (before on_close, which may close the descriptors)
 * and free them. */
void sk__conn_unwatch_all(sk_conn *c);
/* 1 if the service watches any descriptor (the connection is busy). */
int sk__conn_watching(const sk_conn *c);
/* The service's read hook (sk_conn_read_hook) if it applies now: a plain
 * connection that is not closing. NULL: read through the transport. */
sk_conn_read_cb *sk__conn_read_hook(const sk_conn *c, void **arg);

/* conn_tls.c: the one place an accepted connection is made, for every model */
/* Make the connection for fd with its transport (TLS when the server has a
 * context: SK_C_HANDSHAKE is then set), peer credentials taken. NULL (logged,
 * fd closed) on failure. */
sk_conn *sk__conn_accepted(sk_server *s, int fd, const struct sockaddr *peer, socklen_t plen,
                           sk_transport t);
/* Start it: on_open for a plain connection, the first handshake step for TLS;
 * behind --proxy-protocol, first a try at the PROXY header (conn_proxy.c). */
void sk__conn_begin(sk_conn *c);
/* One handshake step (SK_C_HANDSHAKE set): 1 done (on_open called),
 * SK_TP_AGAIN (c->tp.want), SK_TP_ERR (logged with -v, the connection dead). */
ssize_t sk__conn_pump_handshake(sk_conn *c);
/* The TLS part of the -v "connection from" line (" (TLSv1.3 ...)"), "" if plain. */
void sk__conn_tls_describe(sk_conn *c, char *buf, size_t cap);

/* conn_proxy.c: the PROXY protocol stage, before TLS and on_open */
/* One step (SK_C_PROXY set): peek, consume at most the header. 1 done (the
 * peer replaced, admitted, the TLS handshake begun or on_open called),
 * SK_TP_AGAIN (wait for readability), SK_TP_ERR (logged with -v, the
 * connection dead). scratch: at least 16 bytes, ideally SK_PROXY_V2_MAX. */
ssize_t sk__conn_pump_proxy(sk_conn *c, uint8_t *scratch, size_t cap);

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
/* An event loop's UDP listener: ask for coalesced receives (UDP_GRO, Linux;
 * best effort, nothing elsewhere). sk__serve_datagrams splits them. */
void sk__dgram_listener_setup(const sk_listener *l);
/* Linux: group n replies into UDP_SEGMENT (GSO) runs: replies in a row to
 * the same peer, all of a run's but the last of the same non-zero length
 * (the segment size), the last no longer; at most SK_GSO_MAX_SEGS replies
 * and SK_GSO_MAX_BYTES in a run. Fills run[] with each run's number of
 * replies (a run of 1 is sent plain) and returns the number of runs. */
#define SK_GSO_MAX_SEGS 64      /* UDP_MAX_SEGMENTS of older kernels */
#define SK_GSO_MAX_BYTES 65000u /* one UDP datagram's payload, with room */
#define SK_GSO_SEG_MAX 1400u    /* larger segments may exceed a path's MTU */
size_t sk__dgram_runs(const size_t *len, const struct sockaddr *const *peer, const socklen_t *plen,
                      size_t n, size_t *run);
/* deploy.c: a second socket bound to l's address with SO_REUSEPORT (the
 * --workers N --reuseport loops each have their own). TCP and UDP. Returns 0,
 * 1 when l itself has no SO_REUSEPORT (out = l: the loop shares it), or -1. */
int sk__listener_reuseport_copy(const sk_listener *l, sk_listener *out, sk_err *err);
/* --workers N --reuseport, for the event loops (epoll, uring): a loop's own
 * view of s's listeners, its own SO_REUSEPORT socket on each TCP/UDP address
 * (Unix sockets stay shared: the entry is s's own). Returns nls entries, or
 * NULL with err (nothing left open). */
sk_listener *sk__loop_listeners_new(sk_server *s, sk_err *err);
/* The loop stops accepting: close its own sockets, the entries become s's
 * (still valid for whoever looks). NULL is fine. */
void sk__loop_listeners_release(sk_server *s, sk_listener *own);
/* The same, then free the view. NULL is fine. */
void sk__loop_listeners_free(sk_server *s, sk_listener *own);

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
/* A connection just accepted, and where from. */
typedef struct sk_accepted {
    int fd;
    sk_transport transport;
    socklen_t plen;
    struct sockaddr_storage peer;
} sk_accepted;
/* The head of every blocking model's loop: sk__wait_work, then accept one
 * connection. Returns 0 with *a filled, SK_WAIT_STOP or SK_WAIT_AGAIN. */
int sk__accept_next(sk_server *s, int extra_fd, sk_dgram_batch *dgrams, int nonblock,
                    sk_accepted *a);
/* Accept from listener l. Returns fd, or -1 (nothing to accept, or shed at EMFILE). */
int sk__accept(sk_server *s, const sk_listener *l, struct sockaddr *peer, socklen_t *plen,
               int nonblock);
/* An event loop stopping: accept what waits in l's backlog (a stream
 * listener's; a datagram one is skipped) and hand each to take. Returns 0, or
 * -1 once --max-conns is reached (take no more from any listener). */
typedef void (*sk__take_fn)(void *ud, const sk_listener *l, int fd, struct sockaddr_storage *peer,
                            socklen_t plen);
int sk__drain_backlog(sk_server *s, const sk_listener *l, sk__take_fn take, void *ud);

/* admit.c: access lists and per-source limits (--allow, --max-per-source, --rate) */
int sk__admit_init(sk_server *s, sk_err *err); /* in sk_server_new, before any fork */
void sk__admit_fini(sk_server *s);
/* 1: serve this peer; 0: refuse it (logged at -v, rate-limited). A stream
 * peer admitted is counted until sk__admit_release. */
int sk__admit(sk_server *s, const struct sockaddr *peer, socklen_t len, sk_transport t);
/* The same checks, for the address a PROXY header carried (conn_proxy.c):
 * sk__admit only checks a PROXY listener's real peer against --proxy-from. */
int sk__admit_checks(sk_server *s, const struct sockaddr *peer, socklen_t len, sk_transport t);
/* Whether sk__admit would look at a new stream connection's peer (access
 * list, per-source limits, PROXY listener): if not, a model may take the
 * peer later (sk__conn_peer_take). */
int sk__admit_needs_peer(sk_server *s);
/* A PROXY listener's real peer against --proxy-from (default: loopback and
 * Unix peers): 1 trusted, 0 not (logged at -v, rate-limited). */
int sk__proxy_trusted(sk_server *s, const struct sockaddr *peer, socklen_t len, sk_transport t);
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
typedef struct sk_shared {
    atomic_long busy;
} sk_shared;
int sk__stopping(sk_server *s);
/* sk_server_stop_now was called (or its pipe seen readable): close now. */
int sk__stopping_now(sk_server *s);
void sk__saw_stop_now(sk_server *s);
/* A connection enters (+1) or leaves (-1) its grace period. */
void sk__grace_busy(sk_server *s, int delta);
/* Log, once, how many busy connections get how long (when busy > 0). */
void sk__announce_stop(sk_server *s, long busy);
/* The stop pipe was seen readable: remember it (for sk__stopping). */
void sk__saw_stop(sk_server *s);
/* Close this process's listening sockets (removing Unix socket files unless a
 * child): new clients are refused and the backlog is reset at once, rather
 * than left waiting while busy connections finish. Idempotent. */
void sk__stop_listening(sk_server *s);
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
#ifdef SK_HAVE_URING
extern const sk_model sk__model_uring;
#endif

#endif
