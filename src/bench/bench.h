/*
 * bench.h - `sockit bench`, the load generator: its own room, src/bench/.
 *
 *   bench.h     this file: the run's configuration, the mode table's entry
 *               (bench_mode), a connection and a worker, the engine's calls
 *   modes.c     the mode table (one line per mode) and what every run derives
 *               from its mode (bench_mode_find, bench_prepare)
 *   mode_*.c    one mode each (echo, conn, http, bulk, udp, idle): a
 *               `bench_mode` saying what it sends, expects and counts
 *   stream.c    the writer and reader the stream modes share: a window of
 *               messages in flight, every reply byte checked
 *   engine.c    the worker threads: one epoll loop each over its connection
 *               slots; every deadline in a timer heap (src/lib/timer.h), every
 *               read and write through the transport seam (src/lib/transport.h)
 *   run.c       a run's phases: the clock's landmarks, the server measured
 *               around a hold, the measured seconds
 *   target.c    the loopback rule and the probe that picks the endpoint
 *   server.c    idle: the server's processes and their RSS, through /proc
 *   report.c    the report: a table, or one JSON object
 *   check.c/h   the reply checkers (message patterns, streams, HTTP): no I/O
 *   hist.c/h    the latency histogram: no I/O
 *
 * src/cli/bench.c parses the options, draws the progress line and exits;
 * nothing in this directory exits, and only the report prints (report.c and
 * the modes' describe/report entries, to the FILE they are given). Errors
 * come back as sk_err. The unit tests link these objects
 * ($(BUILD)/libsockit-bench.a).
 *
 * Adding a mode: write src/bench/mode_NAME.c defining
 * `const bench_mode bench_mode_NAME = {...}` (the fields below; a stream mode
 * mostly names a fill, check and consume and uses the bench_stream_* calls of
 * stream.c), and add NAME to BENCH_MODES in modes.c. --mode, --help's mode
 * list, the option checks and the report follow from the table. (Only a mode
 * with an option of its own also touches src/cli/bench.c's parser and help.)
 */
#ifndef SK_BENCH_H
#define SK_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "../lib/timer.h"
#include "../lib/transport.h"
#include "check.h"
#include "hist.h"
#include "sockit.h"

/* ------------------------------------------------------------------ a run */

enum bench_err {
    BE_CONNECT,
    BE_READ,
    BE_WRITE,
    BE_TIMEOUT,
    BE_MISMATCH,
    BE_HTTP_STATUS,
    BE_CLOSED,
    BE_LOST,
    BE_NKINDS
};
extern const char *const bench_err_names[BE_NKINDS];

typedef struct bench_mode bench_mode;

typedef struct bench_cfg {
    const bench_mode *mode;
    int connections, workers, pipeline;
    size_t size;
    int64_t duration_ns, warmup_ns, timeout_ns;
    int64_t connect_timeout_ns; /* at least 4 s: a full backlog costs SYN retries (1 s, 3 s) */
    int json, quiet, check_echo;
    long server_pid;
    const char *path;
    sk_addr addr;
    sk_endpoint ep; /* the endpoint that answered the probe */
    int spread_src; /* IPv4 loopback: bind clients to 127.0.0.1..254 */
    char target[SK_NAME_MAX];
    /* The transport over each new socket (bench --tls: a TLS one); NULL:
     * plain (sk__tp_plain). 0, or -1 with errno: the connect fails and fd
     * is still the caller's to close. Used by the workers and the probe. */
    int (*tp_open)(sk_tp *t, int fd, const struct bench_cfg *cfg);
    sk_tls *tls;      /* --tls: the client context (tp_open = bench_tls_open) */
    int tls_resume;   /* offer the last session again (not --no-resume) */
    uint8_t *request; /* http: the request */
    size_t request_len;
    /* Derived by bench_prepare (modes.c) from the mode and the options. */
    size_t msg_len;  /* bytes of one message (http: the request) */
    int ring;        /* messages in flight per connection at most: timestamps kept */
    uint64_t window; /* messages in flight allowed (UINT64_MAX: no limit) */
    int one_way;     /* nothing comes back: a message counts once written */
} bench_cfg;

typedef struct bench_stats {
    uint64_t ops, bytes, connects;
    uint64_t errors[BE_NKINDS];
    uint64_t status[6];             /* http: [1]..[5] = 1xx..5xx, [0] other */
    uint64_t tls_full, tls_resumed; /* --tls: handshakes completed (measured time) */
    bench_hist hist;
} bench_stats;

/* What every thread shares: the clock's landmarks and the stop/verify flags. */
typedef struct bench_run {
    int64_t t0;            /* start (bench_now) */
    int64_t measure_start; /* end of the warmup: count from here */
    int64_t deadline;      /* stop here (hold modes: the end of the hold) */
    int64_t end;           /* hard end (hold modes: the end of the verification) */
    atomic_int stop;       /* SIGINT */
    atomic_int verify;     /* hold modes: the server's RSS is measured, check the connections */
} bench_run;

enum { BC_CLOSED, BC_CONNECTING, BC_OPEN, BC_WAITING, BC_DEAD };
/* Readiness, in the transport's bits: a write's SK_TP_AGAIN names what it waits for. */
#define BEV_READ SK_TP_WANT_READ
#define BEV_WRITE SK_TP_WANT_WRITE

typedef struct bench_conn {
    sk_tp tp;          /* the connection (tp.fd < 0: none) */
    sk__timer timer;   /* its one deadline: connect, retry or reply timeout, by state */
    uint32_t id;       /* global connection number: the pattern's identity */
    uint8_t state;     /* BC_* */
    uint8_t queued;    /* on the worker's again list */
    uint8_t again_ev;  /* BEV_* to retry from the again list */
    uint8_t bad;       /* the reply being read already differed */
    uint8_t blocked;   /* the last write got SK_TP_AGAIN: the BEV_* it waits for */
    uint8_t rwant;     /* the last read waits for writability (TLS): BEV_WRITE */
    uint8_t active;    /* idle: verifying; udp: a datagram awaits its reply */
    uint8_t unsent;    /* udp: the datagram could not be sent yet */
    uint8_t soft;      /* unix connect found the backlog full: retrying, not failed */
    uint8_t hup;       /* the peer closed or failed: read to the end, not to a short read */
    uint64_t out_seq;  /* message at the write cursor */
    uint64_t done_seq; /* message whose reply is being read */
    size_t out_off, in_off;
    int64_t t_open;     /* when the connect started */
    int64_t t_progress; /* last write or read that moved */
    int64_t *ts;        /* ring: when each message in flight was first written */
    void *mstate;       /* the mode's own state (bench_mode.conn_state bytes) */
} bench_conn;

typedef struct bench_worker {
    int id, epfd;
    const bench_cfg *cfg;
    const bench_mode *mode;
    bench_run *run;
    bench_conn *conns;
    int nconns;
    int64_t *ts_store;
    unsigned char *mstate_store;
    sk__timers timers; /* every deadline of this worker: its connections', t_end, t_hold */
    sk__timer t_end;   /* run->end */
    sk__timer t_hold;  /* hold modes: run->deadline, then a poll of run->verify */
    bench_stats st;
    uint64_t src_next;               /* source address rotation */
    int finished;                    /* hold modes: every connection is verified or failed */
    int verifying;                   /* hold modes: the hold is over */
    int remaining;                   /* hold modes: connections not yet verified or failed */
    int open_now;                    /* connections open at the moment */
    bench_conn **again, **again_mem; /* again_mem: both lists (run one, fill the other) */
    int again_len;
    uint8_t *rbuf;
    size_t rcap;
    uint8_t hdr[64][BENCH_HDR];
    atomic_uint_fast64_t pub_ops, pub_errors; /* for the progress line */
    atomic_int pub_open;
    atomic_int done;   /* the thread has finished */
    void *tls_session; /* --tls: the session offered to the next connections */
} bench_worker;

/* idle: the server under test (server.c) */
typedef struct bench_server {
    long pids[16]; /* the processes holding the listening socket */
    int npids;
    long rss_before_kb, rss_after_kb; /* -1: unknown */
    int held;                         /* connections open when rss_after was taken */
} bench_server;

/* ------------------------------------------------------------- the modes */

/* bench_mode.flags */
#define BENCH_F_DGRAM 0x01u      /* needs a datagram address (else a stream one) */
#define BENCH_F_PIPELINE 0x02u   /* --pipeline applies */
#define BENCH_F_PATH 0x04u       /* --path applies; the report names it instead of -s */
#define BENCH_F_CHECK_ECHO 0x08u /* --check-echo applies */
#define BENCH_F_SERVER_PID 0x10u /* --server-pid applies */
#define BENCH_F_NO_SIZE 0x20u    /* -s has no meaning (the response decides) */
/* The run is a hold, then one check per connection: no warmup, a failed
 * connection stays closed, the engine calls verify when the hold is over,
 * the server's RSS is measured. */
#define BENCH_F_HOLD 0x40u
#define BENCH_F_FROM_CONNECT 0x80u /* latency counts from the connect, not the first write */

struct bench_mode {
    const char *name;   /* --mode NAME */
    const char *help;   /* its entry in --help (further lines indented 9 spaces) */
    unsigned flags;     /* BENCH_F_* */
    size_t size;        /* -s by default */
    int64_t timeout_ns; /* --timeout by default */
    size_t conn_state;  /* bytes of state per connection (bench_conn.mstate), 0: none */

    /* After the common option checks (defaults applied): 0, or -1 with a
     * usage error in err. NULL: nothing more to check. */
    int (*validate)(bench_cfg *cfg, sk_err *err);
    /* Once the target is known: the bench_cfg fields derived from the mode
     * (msg_len, ring, window, one_way; bench_prepare set 1-message defaults)
     * and constant data (http's request). 0, or -1 with err. NULL: defaults. */
    int (*setup)(bench_cfg *cfg, sk_err *err);

    /* In a worker thread. `open`: connected (the mode starts writing);
     * `io`: readiness (BEV_*), or a turn from the again list; `expire`: the
     * connection's timer fired while open (a reply overdue? else re-arm it
     * with bench_conn_timer); `verify` (hold modes): the hold is over, make
     * this open connection prove it still works. */
    void (*open)(bench_worker *w, bench_conn *c, int64_t now);
    void (*io)(bench_worker *w, bench_conn *c, unsigned ev);
    void (*expire)(bench_worker *w, bench_conn *c, int64_t now);
    void (*verify)(bench_worker *w, bench_conn *c, int64_t now);

    /* Stream modes, called by stream.c. `fill`: iovecs (<= 2) for message
     * seq from byte off (hdr: 8 bytes of storage); `check`: 1 if the reply
     * bytes [pos, pos + n) of message seq are right; `consume` (NULL: the echo
     * of what was sent, through check): n bytes read, -1 if the connection
     * was closed or replaced; `replied` (NULL: keep going): after a reply was
     * counted, -1 if the mode closed the connection; `eof` (NULL: a `closed`
     * error): the server ended the stream. */
    int (*fill)(bench_worker *w, bench_conn *c, uint64_t seq, size_t off, uint8_t *hdr,
                struct iovec iov[2]);
    int (*check)(bench_worker *w, bench_conn *c, uint64_t seq, size_t pos, const uint8_t *p,
                 size_t n);
    int (*consume)(bench_worker *w, bench_conn *c, const uint8_t *p, size_t n, int64_t now);
    int (*replied)(bench_worker *w, bench_conn *c);
    void (*eof)(bench_worker *w, bench_conn *c);

    /* The report: `describe` writes the table's words after the mode's name
     * (NULL: " (N-byte messages)"); `report` (NULL: nothing) adds the mode's
     * own fields after the errors: JSON members when json, else table lines. */
    void (*describe)(const bench_cfg *c, FILE *f);
    void (*report)(const bench_cfg *c, const bench_stats *st, const bench_server *srv, FILE *f,
                   int json);
};

/* modes.c: the table, NULL-terminated, in --help's order. */
extern const bench_mode *const bench_modes[];
const bench_mode *bench_mode_find(const char *name);
/* "echo, conn, ..." of the modes whose flags include all of `flags`, "and"
 * before the last if `and`; into buf. */
const char *bench_mode_list(unsigned flags, int and, char *buf, size_t cap);
/* Derive the run's constants from its mode (bench_cfg's last fields). */
int bench_prepare(bench_cfg *cfg, sk_err *err);

/* ---------------------------------------------------------------- engine */

int64_t bench_now(void);
/* Run the workers from now to run->end; fills total. Returns 0, or -1 with a
 * message in err if the workers could not be started. `tick` is called in the
 * main thread about every 100 ms while they run (progress, the idle phases). */
int bench_engine(const bench_cfg *cfg, bench_run *run, bench_stats *total,
                 void (*tick)(void *arg, bench_worker *ws, int n), void *arg, sk_err *err);
void bench_conn_fail(bench_worker *w, bench_conn *c, int kind);    /* count, close, retry later */
void bench_conn_recycle(bench_worker *w, bench_conn *c);           /* close, reconnect at once */
void bench_conn_finish(bench_worker *w, bench_conn *c);            /* close for good */
void bench_conn_timer(bench_worker *w, bench_conn *c, int64_t at); /* (re-)arm its deadline */
void bench_again(bench_worker *w, bench_conn *c, unsigned ev); /* budget spent: more next turn */
void bench_error(bench_worker *w, int kind);
/* A successful operation that started at t_start and ended at now. */
void bench_ok(bench_worker *w, int64_t t_start, int64_t now, uint64_t bytes);

/* ---------------------------------------------------------------- tls.c */

/* bench_cfg.tp_open for --tls. */
int bench_tls_open(sk_tp *t, int fd, const bench_cfg *cfg);
/* A TLS connection was made: offer the worker's session (resumption). */
void bench_tls_opened(bench_worker *w, bench_conn *c);
/* It is about to close: count its handshake, keep its session. */
void bench_tls_closing(bench_worker *w, bench_conn *c);
void bench_tls_worker_free(bench_worker *w);

/* ---------------------------------------------------------------- stream.c */

void bench_stream_open(bench_worker *w, bench_conn *c, int64_t now);
void bench_stream_io(bench_worker *w, bench_conn *c, unsigned ev);
void bench_stream_expire(bench_worker *w, bench_conn *c, int64_t now);
/* Write while the window allows, a bounded number of times. */
void bench_stream_pump(bench_worker *w, bench_conn *c);
/* Read what is there; -1 if the connection was closed or replaced meanwhile. */
int bench_stream_read(bench_worker *w, bench_conn *c);
/* A whole reply to message done_seq: count it; -1 if the connection was closed. */
int bench_stream_reply(bench_worker *w, bench_conn *c, int64_t now, int ok, int kind,
                       uint64_t bytes);
/* Echoed bytes: compare with what was sent (mode->check). */
int bench_stream_echo(bench_worker *w, bench_conn *c, const uint8_t *p, size_t n, int64_t now);
/* The message patterns of check.h as a mode's fill and check (echo, conn, idle). */
int bench_msg_fill(bench_worker *w, bench_conn *c, uint64_t seq, size_t off, uint8_t *hdr,
                   struct iovec iov[2]);
int bench_msg_verify(bench_worker *w, bench_conn *c, uint64_t seq, size_t pos, const uint8_t *p,
                     size_t n);

/* ------------------------------------------------- target.c, server.c, report.c */

/* Resolve cfg->addr, refuse anything but loopback and Unix sockets (a usage
 * error), and probe each endpoint (one connection, or one datagram and its
 * reply) until one answers: sets cfg->ep, cfg->target, cfg->spread_src.
 * Returns 0, or -1 with err. */
int bench_choose_target(bench_cfg *cfg, sk_err *err);

/* run.c: one run. bench_server_init: for hold modes, the server's processes
 * (--server-pid, else found by the listening socket; none found: npids 0) and
 * their RSS now; 0, or -1 with err. bench_run_all: the clock's landmarks in
 * run, the workers, the server's RSS when the hold ends; fills st and the
 * measured seconds. `progress` (NULL: none) is called in the calling thread
 * about every 100 ms. 0, or -1 with err if the workers could not start. */
typedef struct bench_progress {
    int64_t now; /* bench_now() */
    uint64_t ops, errors;
    int open; /* connections open */
} bench_progress;
int bench_server_init(const bench_cfg *cfg, bench_server *srv, sk_err *err);
int bench_run_all(const bench_cfg *cfg, bench_run *run, bench_server *srv, bench_stats *st,
                  double *secs, void (*progress)(void *arg, const bench_progress *p), void *arg,
                  sk_err *err);

/* The processes listening on the target (at most cap), and their summed
 * VmRSS in kB (-1 if one cannot be read). */
int bench_find_server(const bench_cfg *c, long *pids, int cap);
long bench_rss_kb(const long *pids, int n);

/* The report on f: a table, or one JSON line with c->json. */
void bench_report(FILE *f, const bench_cfg *c, const bench_stats *st, double secs,
                  const bench_server *srv);
void bench_json_string(FILE *f, const char *s);

#endif
