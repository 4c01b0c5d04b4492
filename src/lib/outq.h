/*
 * outq.h - lines for the operator (reports, logs, the access log) written
 * without ever stalling the caller. Internal (not installed).
 *
 * A server's event loop must not wait for whoever reads its standard output:
 * `sockit serve dump 9000 | less`, a terminal paused with Ctrl-S, a full pipe.
 * sk__outq_write() writes a line at once when the descriptor can take it
 * (poll() says so and the line fits in one atomic pipe write), and otherwise
 * queues it for a writer thread that blocks on the descriptor instead of the
 * caller. The queue is bounded: lines that do not fit are counted and dropped,
 * and the notify callback hears how many once output flows again (or at
 * sk__outq_flush). Each line is written with one write(), so lines from
 * several processes sharing the descriptor never interleave.
 *
 * Per process: after fork() the child starts empty (the parent writes what it
 * had queued) and starts its own writer thread when it first needs one. Lines
 * still queued when a process calls _exit() are lost; only a stalled reader
 * makes lines wait.
 */
#ifndef SK_OUTQ_H
#define SK_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#define SK_OUTQ_MAX_BYTES (256u * 1024u) /* queued per descriptor before dropping */

/* Called without locks held, from the writer thread, sk__outq_write or
 * sk__outq_flush: `dropped` lines were thrown away on fd (e == 0, once output
 * flows again or at the flush); fd's queue is full and lines are starting to
 * be dropped (e == ENOBUFS, dropped 0); or fd's reader went away (e == EPIPE;
 * later writes to fd fail with EPIPE). */
typedef void (*sk__outq_notify_fn)(int fd, uint64_t dropped, int e);

void sk__outq_set_notify(sk__outq_notify_fn fn);

/*
 * Write one line (or any record that must stay whole) to fd without blocking
 * the caller. Returns 0 when written or queued; -1 with errno ENOBUFS when it
 * was dropped (counted for the notify callback), EPIPE when fd's reader is
 * gone, or another errno from write(). Thread-safe.
 */
int sk__outq_write(int fd, const void *buf, size_t len);

/*
 * Batching, for an event loop: between sk__outq_batch_begin and
 * sk__outq_batch_end, this thread's lines (up to PIPE_BUF bytes of whole
 * lines for one descriptor) gather in a buffer and are written together, at
 * sk__outq_batch_flush (call it before the loop sleeps), when the buffer is
 * full, or when a line for another descriptor comes. sk__outq_write then
 * returns 0 for a line it buffered; a reader found gone at the flush is told
 * through the notify callback (EPIPE). Lines stay whole (one write of at
 * most PIPE_BUF) and in order.
 */
void sk__outq_batch_begin(void);
void sk__outq_batch_flush(void);
void sk__outq_batch_end(void);

/*
 * Wait until every queue of this process is written or deadline_ms (an
 * sk_now_ms() time) passes; lines still queued then count as dropped, and the
 * notify callback hears of every queue with dropped lines. For the end of
 * the program; returns the number of lines dropped in all.
 */
uint64_t sk__outq_flush(int64_t deadline_ms);

#endif
