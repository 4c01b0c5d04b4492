/*
 * check.h - what `sockit bench` sends and how it checks what comes back
 * (check.c): the message patterns, the per-connection streams and an
 * incremental HTTP/1.x response parser. No I/O.
 */
#ifndef SK_BENCH_CHECK_H
#define SK_BENCH_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

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

#endif
