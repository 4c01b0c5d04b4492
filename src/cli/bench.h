/*
 * bench.h - `sockit bench`: the load generator's shared types.
 *
 *   bench.c         options, the loopback rule, the run's phases, output
 *   bench_engine.c  the worker threads: one epoll loop each, sockets, timers
 *   bench_modes.c   what each mode sends, expects and counts
 *   bench_check.c   the reply checkers (message patterns, HTTP responses): no I/O
 *   bench_hist.c    the latency histogram: no I/O
 */
#ifndef SK_BENCH_H
#define SK_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "sockit.h"

/* ------------------------------------------------------------- histogram */

/*
 * Log-linear (HDR-style) histogram of nanoseconds: values below 256 have a
 * bucket each; above, every power of two is split into 128 buckets, so a
 * bucket's width is at most 1/128 (0.8%) of its values. Values up to 2^36 ns
 * (68.7 s) are kept apart; larger ones share the last bucket. Constant size.
 */
#define BH_SUB_BITS 7
#define BH_SUB (1u << BH_SUB_BITS)
#define BH_TOP_BITS 36
#define BH_BUCKETS ((BH_TOP_BITS - BH_SUB_BITS + 1) << BH_SUB_BITS) /* 3840 */

typedef struct bench_hist {
    uint64_t count;
    uint64_t min, max; /* exact (max is not clamped) */
    double sum;
    uint64_t b[BH_BUCKETS];
} bench_hist;

void bench_hist_init(bench_hist *h);
void bench_hist_record(bench_hist *h, uint64_t v);
void bench_hist_merge(bench_hist *dst, const bench_hist *src);
/* The value at percentile p (0..100): the highest value of the bucket that
 * holds the ceil(p% * count)-th smallest value, never more than max. 0 if empty. */
uint64_t bench_hist_percentile(const bench_hist *h, double p);
double bench_hist_mean(const bench_hist *h);
/* Bucket of a value, and the highest value that bucket holds. */
size_t bench_hist_index(uint64_t v);
uint64_t bench_hist_highest(size_t idx);

/* --------------------------------------------------------------- checkers */

#define BENCH_HDR 8              /* message header: connection id, sequence number */
#define BENCH_MSG_MAX (1u << 20) /* largest -s */
#define BENCH_BLOCK (2u << 20)   /* the random block every payload is a window of */
#define BENCH_DGRAM_MAX 65507    /* largest UDP payload over IPv4 */

/* Fill the shared pattern block (once, before any thread uses it). */
void bench_pattern_init(void);

/*
 * Message `seq` of connection `conn`, `size` bytes: an 8-byte header (conn and
 * seq, little endian; cut short if size < 8), then a window of the random block
 * whose offset depends on both. Unique per connection and sequence number, and
 * built with no per-byte work: bench_msg_iov points at the bytes [pos, size)
 * (hdr is 8 bytes of caller storage for the header) and returns the iovec count
 * (0..2); bench_msg_check compares data[0..n) with bytes [pos, pos + n) by
 * memcmp and returns 1 if equal, 0 if not (or if the range passes size).
 */
int bench_msg_iov(uint32_t conn, uint64_t seq, size_t size, size_t pos, uint8_t hdr[BENCH_HDR],
                  struct iovec iov[2]);
int bench_msg_check(uint32_t conn, uint64_t seq, size_t size, size_t pos, const uint8_t *data,
                    size_t n);
/* The (conn, seq) in a header, for telling a late datagram from a wrong one. */
void bench_msg_header(uint32_t conn, uint64_t seq, uint8_t hdr[BENCH_HDR]);

/* One endless stream per connection (bulk): byte pos is block[(base(conn) + pos) % BLOCK]. */
int bench_stream_iov(uint32_t conn, uint64_t pos, size_t len, struct iovec iov[2]);
int bench_stream_check(uint32_t conn, uint64_t pos, const uint8_t *data, size_t n);

/* Incremental HTTP/1.x response parser: status line, headers, Content-Length
 * body (skipped, not looked at). No allocation; any split of the input works. */
typedef struct bench_http {
    int state;
    int status;      /* 100..999 once the status line is in */
    int keep_alive;  /* the connection may carry another request */
    int chunked;     /* Transfer-Encoding: chunked (not supported: an error) */
    int has_length;  /* Content-Length seen */
    int64_t remain;  /* body bytes left; -1: until the server closes */
    size_t line_len; /* bytes of the current line kept in line[] */
    size_t line_all; /* bytes of the current line seen */
    size_t head_all; /* bytes of the head so far */
    uint64_t bytes;  /* bytes of this response so far */
    char line[192];
} bench_http;

#define BENCH_HTTP_MORE 0   /* need more bytes */
#define BENCH_HTTP_DONE 1   /* one whole response; *used says where it ended */
#define BENCH_HTTP_ERROR -1 /* not an HTTP/1.x response we can frame */

void bench_http_reset(bench_http *p);
int bench_http_feed(bench_http *p, const uint8_t *data, size_t len, size_t *used);
/* The server closed: DONE if that ended a body sent until close, MORE if no
 * response had begun, ERROR if one was cut short. */
int bench_http_eof(const bench_http *p);

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

enum bench_mode { BM_ECHO, BM_CONN, BM_HTTP, BM_BULK, BM_UDP, BM_IDLE };

typedef struct bench_cfg {
    enum bench_mode mode;
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
    uint8_t *request; /* http: the request */
    size_t request_len;
} bench_cfg;

typedef struct bench_stats {
    uint64_t ops, bytes, connects;
    uint64_t errors[BE_NKINDS];
    uint64_t status[6]; /* http: [1]..[5] = 1xx..5xx, [0] other */
    bench_hist hist;
} bench_stats;

/* What every thread shares: the clock's landmarks and the stop/verify flags. */
typedef struct bench_run {
    int64_t t0;            /* start (bench_now) */
    int64_t measure_start; /* end of the warmup: count from here */
    int64_t deadline;      /* stop here (idle: the end of the hold) */
    int64_t end;           /* hard end (idle: the end of the verification) */
    atomic_int stop;       /* SIGINT */
    atomic_int verify;     /* idle: the server's RSS is measured, check the connections */
} bench_run;

enum { BC_CLOSED, BC_CONNECTING, BC_OPEN, BC_WAITING, BC_DEAD };
#define BEV_READ 1u
#define BEV_WRITE 2u

typedef struct bench_conn {
    int fd;
    uint32_t id;       /* global connection number: the pattern's identity */
    uint8_t state;     /* BC_* */
    uint8_t queued;    /* on the worker's again list */
    uint8_t again_ev;  /* BEV_* to retry from the again list */
    uint8_t bad;       /* the reply being read already differed */
    uint8_t blocked;   /* the last write hit EAGAIN: wait for EPOLLOUT */
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
    bench_http *http;
} bench_conn;

typedef struct bench_worker {
    int id, epfd;
    const bench_cfg *cfg;
    bench_run *run;
    bench_conn *conns;
    int nconns;
    int ring; /* slots in each conn's ts ring */
    int64_t *ts_store;
    bench_http *http_store;
    bench_stats st;
    uint64_t src_next; /* source address rotation */
    int finished;      /* idle: every connection is verified or failed */
    int verifying;     /* idle: the hold is over */
    int remaining;     /* idle: connections not yet verified or failed */
    int open_now;      /* connections open at the moment */
    /* delayed reconnects: a FIFO (one constant delay keeps it sorted) */
    struct bench_delay {
        int32_t idx;
        int64_t at;
    } * delay;
    int d_head, d_len;
    bench_conn **again, **again_mem; /* again_mem: both lists (run one, fill the other) */
    int again_len;
    uint8_t *rbuf;
    size_t rcap;
    uint8_t hdr[64][BENCH_HDR];
    atomic_uint_fast64_t pub_ops, pub_errors; /* for the progress line */
    atomic_int pub_open;
    atomic_int done; /* the thread has finished */
} bench_worker;

/* engine */
int64_t bench_now(void);
/* Run the workers from now to run->end; fills total. Returns 0, or -1 with a
 * message in err if the workers could not be started. `tick` is called in the
 * main thread about every 100 ms while they run (progress, the idle phases). */
int bench_engine(const bench_cfg *cfg, bench_run *run, bench_stats *total,
                 void (*tick)(void *arg, bench_worker *ws, int n), void *arg, sk_err *err);
void bench_conn_fail(bench_worker *w, bench_conn *c, int kind); /* count, close, retry later */
void bench_conn_recycle(bench_worker *w, bench_conn *c);        /* close, reconnect at once */
void bench_conn_finish(bench_worker *w, bench_conn *c);         /* close for good */
void bench_again(bench_worker *w, bench_conn *c, unsigned ev);  /* budget spent: more next turn */
void bench_error(bench_worker *w, int kind);
/* A successful operation that started at t_start and ended at now. */
void bench_ok(bench_worker *w, int64_t t_start, int64_t now, uint64_t bytes);

/* idle: the server under test (bench_report.c) */
typedef struct bench_server {
    long pids[16]; /* the processes holding the listening socket */
    int npids;
    long rss_before_kb, rss_after_kb; /* -1: unknown */
    int held;                         /* connections open when rss_after was taken */
} bench_server;
int bench_find_server(const bench_cfg *c, long *pids, int cap);
long bench_rss_kb(const long *pids, int n);
void bench_report(const bench_cfg *c, const bench_stats *st, double secs, const bench_server *srv);

/* modes */
void bench_mode_open(bench_worker *w, bench_conn *c, int64_t now);
void bench_mode_io(bench_worker *w, bench_conn *c, unsigned ev);
void bench_mode_overdue(bench_worker *w, bench_conn *c, int64_t now);
void bench_mode_verify(bench_worker *w);
int bench_mode_ring(const bench_cfg *cfg);
int bench_build_request(bench_cfg *cfg);

#endif
