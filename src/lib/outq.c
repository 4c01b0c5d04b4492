/*
 * outq.c - operator output that never stalls the caller (see outq.h).
 *
 * One small queue per descriptor (stdout, stderr, an access log), each with
 * its own writer thread started the first time a line has to wait. The fast
 * path takes no thread at all: when poll() says the descriptor can take the
 * line now, it is written at once, which is also what keeps a forked worker
 * that reports and then calls _exit() from losing its lines.
 *
 * How a line is tried at once is decided once per descriptor (a regular
 * file: write; a socket: send with MSG_DONTWAIT; a pipe: pwritev2 with
 * RWF_NOWAIT where the kernel has it; otherwise poll, then write), so a line
 * costs one system call where it can. An event loop batches its lines
 * (sk__outq_batch_begin): whole lines gather in a per-thread buffer of
 * PIPE_BUF bytes and leave in one write before the loop sleeps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "outq.h"
#include "thread.h"
#include "sockit.h"

#ifndef PIPE_BUF
#define PIPE_BUF 512 /* POSIX minimum */
#endif

#define MAX_QUEUES 8 /* stdout, stderr, an access log (and the unit tests' own) */

struct line {
    struct line *next;
    size_t len;
    char data[];
};

struct queue {
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t more;  /* the writer waits for lines */
    pthread_cond_t empty; /* sk__outq_flush waits for the writer */
    struct line *head, *tail;
    size_t bytes;
    uint64_t dropped;
    int thread;  /* a writer thread runs in this process */
    int broken;  /* the reader went away (EPIPE) */
    int telling; /* the writer is telling notify_fn, with mu released */
    int how;     /* how a line is tried at once: one of the below */
};

#define HOW_WRITE 0  /* a regular file or /dev/null: never blocks, write at once */
#define HOW_POLL 1   /* a terminal (or anything else): poll, then write */
#define HOW_SEND 2   /* a socket: send(MSG_DONTWAIT) */
#define HOW_NOWAIT 3 /* a pipe: pwritev2(RWF_NOWAIT), HOW_POLL if the kernel refuses */

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct queue queues[MAX_QUEUES];
static int nqueues;
static sk__outq_notify_fn notify_fn;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

void sk__outq_set_notify(sk__outq_notify_fn fn)
{
    notify_fn = fn;
}

static void queue_init(struct queue *q, int fd)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->more, NULL);
    pthread_cond_init(&q->empty, &ca);
    pthread_condattr_destroy(&ca);
    q->fd = fd;
    q->head = q->tail = NULL;
    q->bytes = 0;
    q->dropped = 0;
    q->thread = 0;
    q->broken = 0;
    q->telling = 0;
    /* Decided once per descriptor: only pipes, terminals and sockets can
     * stall a writer, and each has its own way of not waiting. */
    struct stat st;
    q->how = HOW_POLL;
    if (fstat(fd, &st) == 0) {
        if (S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)))
            q->how = HOW_WRITE; /* a file, /dev/null */
        else if (S_ISSOCK(st.st_mode))
            q->how = HOW_SEND;
#ifdef RWF_NOWAIT
        else if (S_ISFIFO(st.st_mode))
            q->how = HOW_NOWAIT;
#endif
    }
}

static void free_lines(struct queue *q)
{
    while (q->head) {
        struct line *l = q->head;
        q->head = l->next;
        free(l);
    }
    q->tail = NULL;
    q->bytes = 0;
}

/* fork(): hold every lock across it, so that the child gets them in a known
 * state; the child then starts empty and without a writer thread (threads do
 * not survive fork), and the parent writes what it had queued. */
static void before_fork(void)
{
    pthread_mutex_lock(&table_mu);
    for (int i = 0; i < nqueues; i++)
        pthread_mutex_lock(&queues[i].mu);
}

static void after_fork_parent(void)
{
    for (int i = 0; i < nqueues; i++)
        pthread_mutex_unlock(&queues[i].mu);
    pthread_mutex_unlock(&table_mu);
}

static void after_fork_child(void)
{
    for (int i = 0; i < nqueues; i++) {
        struct queue *q = &queues[i];
        pthread_mutex_unlock(&q->mu);
        free_lines(q);
        int broken = q->broken;
        queue_init(q, q->fd);
        q->broken = broken;
    }
    pthread_mutex_unlock(&table_mu);
}

static void setup(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

static struct queue *queue_for(int fd)
{
    pthread_once(&setup_once, setup);
    struct queue *q = NULL;
    pthread_mutex_lock(&table_mu);
    for (int i = 0; i < nqueues && q == NULL; i++)
        if (queues[i].fd == fd)
            q = &queues[i];
    if (q == NULL && nqueues < MAX_QUEUES) {
        q = &queues[nqueues];
        queue_init(q, fd);
        nqueues++;
    }
    pthread_mutex_unlock(&table_mu);
    return q;
}

/* Blocking, whole: the writer thread's write. Returns 0 or an errno. */
static int write_whole(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            if (poll(&pf, 1, -1) < 0 && errno != EINTR)
                return errno;
        } else if (w == 0 || errno != EINTR) {
            return w == 0 ? EIO : errno;
        }
    }
    return 0;
}

static void notify(int fd, uint64_t dropped, int e)
{
    if (notify_fn)
        notify_fn(fd, dropped, e);
}

static void *writer_main(void *arg)
{
    struct queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (q->head == NULL)
            pthread_cond_wait(&q->more, &q->mu);
        struct line *l = q->head;
        pthread_mutex_unlock(&q->mu); /* the head stays queued while written */
        int e = write_whole(q->fd, l->data, l->len);
        pthread_mutex_lock(&q->mu);
        q->head = l->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->bytes -= l->len;
        free(l);
        int newly_broken = e == EPIPE && !q->broken;
        if (e == EPIPE) {
            q->broken = 1;
            free_lines(q);
        } else if (e != 0) {
            q->dropped++;
        }
        uint64_t d = 0;
        if (q->head == NULL) {
            d = q->dropped; /* output flows again: say what was lost */
            q->dropped = 0;
        }
        if (newly_broken || d) {
            q->telling = 1;
            pthread_mutex_unlock(&q->mu);
            notify(q->fd, newly_broken ? 0 : d, newly_broken ? EPIPE : 0);
            pthread_mutex_lock(&q->mu);
            q->telling = 0;
        }
        /* Empty only once the notice is out of our hands: a flush that
         * returned before it (at exit) would lose the count of lost lines. */
        if (q->head == NULL)
            pthread_cond_broadcast(&q->empty);
    }
    return NULL;
}

static int start_writer(struct queue *q)
{
    int rc = sk__thread_start(NULL, writer_main, q, 1, 64 * 1024);
    if (rc == 0)
        q->thread = 1;
    return rc;
}

/* Whether a write of up to PIPE_BUF bytes would go through now. */
static int writable_now(int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int r;
    while ((r = poll(&pf, 1, 0)) < 0 && errno == EINTR) {
    }
    return r == 1 && (pf.revents & (POLLOUT | POLLERR | POLLHUP | POLLNVAL));
}

/* One write that does not wait (q->how), or -1 with errno (EAGAIN: it would). */
static ssize_t write_now(struct queue *q, const char *p, size_t len)
{
    ssize_t w;
    for (;;) {
        if (q->how == HOW_SEND) {
            w = send(q->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
#ifdef RWF_NOWAIT
        } else if (q->how == HOW_NOWAIT) {
            struct iovec v = {.iov_base = (void *)p, .iov_len = len};
            w = pwritev2(q->fd, &v, 1, -1, RWF_NOWAIT);
            if (w < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)) {
                q->how = HOW_POLL; /* an older kernel: decided once more, for good */
                continue;
            }
#endif
        } else {
            if (q->how == HOW_POLL && !writable_now(q->fd)) {
                errno = EAGAIN;
                return -1;
            }
            w = write(q->fd, p, len);
        }
        if (w >= 0 || errno != EINTR)
            return w;
    }
}

/* Under q->mu: try the line at once. Returns 1 done, 0 queue what is left
 * (p and len advanced past what was written), -1 failed (errno). A line
 * longer than PIPE_BUF waits for the writer thread unless the descriptor
 * never blocks: only up to PIPE_BUF is a write to a pipe whole. */
static int try_direct(struct queue *q, const char **p, size_t *len)
{
    if (q->head != NULL || (q->how != HOW_WRITE && *len > PIPE_BUF))
        return 0;
    ssize_t w = write_now(q, *p, *len);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno == EPIPE)
            q->broken = 1;
        return -1;
    }
    *p += w;
    *len -= (size_t)w;
    return *len == 0;
}

/* Write or queue one record of `lines` lines (see sk__outq_write). */
static int put(int fd, const void *buf, size_t len, uint64_t lines)
{
    struct queue *q = queue_for(fd);
    if (q == NULL) { /* more descriptors than queues: not one of ours */
        errno = ENOBUFS;
        return -1;
    }
    const char *p = buf;
    pthread_mutex_lock(&q->mu);
    int rc = q->broken ? (errno = EPIPE, -1) : try_direct(q, &p, &len);
    if (rc != 0) {
        int e = errno;
        pthread_mutex_unlock(&q->mu);
        errno = e;
        return rc < 0 ? -1 : 0;
    }
    struct line *l = NULL;
    if (q->bytes + len <= SK_OUTQ_MAX_BYTES && (q->thread || start_writer(q) == 0))
        l = malloc(sizeof *l + len);
    if (l == NULL) {
        int first = q->dropped == 0;
        q->dropped += lines;
        pthread_mutex_unlock(&q->mu);
        if (first) /* say so now: a worker process may never see the flow resume */
            notify(fd, 0, ENOBUFS);
        errno = ENOBUFS;
        return -1;
    }
    l->next = NULL;
    l->len = len;
    memcpy(l->data, p, len);
    if (q->tail)
        q->tail->next = l;
    else
        q->head = l;
    q->tail = l;
    q->bytes += len;
    pthread_cond_signal(&q->more);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

/* This thread's batch (sk__outq_batch_begin): whole lines for one descriptor. */
static _Thread_local struct {
    int on;
    int fd;
    size_t len;
    uint64_t lines;
    char buf[PIPE_BUF];
} batch;

void sk__outq_batch_begin(void)
{
    batch.on = 1;
}

void sk__outq_batch_flush(void)
{
    if (batch.len == 0)
        return;
    size_t len = batch.len;
    uint64_t lines = batch.lines;
    batch.len = 0;
    batch.lines = 0;
    /* The caller of sk__outq_write saw 0: a reader gone is told as the
     * writer thread tells it. */
    if (put(batch.fd, batch.buf, len, lines) < 0 && errno == EPIPE)
        notify(batch.fd, 0, EPIPE);
}

void sk__outq_batch_end(void)
{
    sk__outq_batch_flush();
    batch.on = 0;
}

int sk__outq_write(int fd, const void *buf, size_t len)
{
    if (!batch.on)
        return put(fd, buf, len, 1);
    if (batch.len > 0 && (batch.fd != fd || batch.len + len > sizeof batch.buf))
        sk__outq_batch_flush();
    if (len > sizeof batch.buf)
        return put(fd, buf, len, 1);
    if (batch.len == 0) {
        struct queue *q = queue_for(fd);
        if (q == NULL) {
            errno = ENOBUFS;
            return -1;
        }
        pthread_mutex_lock(&q->mu);
        int broken = q->broken;
        pthread_mutex_unlock(&q->mu);
        if (broken) {
            errno = EPIPE;
            return -1;
        }
        batch.fd = fd;
    }
    memcpy(batch.buf + batch.len, buf, len);
    batch.len += len;
    batch.lines++;
    return 0;
}

static void wait_empty(struct queue *q, int64_t deadline_ms)
{
    /* The queue is empty when no line is left and the writer is not still
     * telling what was lost: the head goes before the notice does. */
    while (q->head != NULL || q->telling) {
        int64_t left = deadline_ms - sk_now_ms();
        if (left <= 0)
            return;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&q->empty, &q->mu, &ts);
    }
}

uint64_t sk__outq_flush(int64_t deadline_ms)
{
    uint64_t total = 0;
    pthread_mutex_lock(&table_mu);
    int n = nqueues;
    pthread_mutex_unlock(&table_mu);
    for (int i = 0; i < n; i++) {
        struct queue *q = &queues[i];
        pthread_mutex_lock(&q->mu);
        wait_empty(q, deadline_ms);
        uint64_t d = q->dropped;
        q->dropped = 0;
        /* Still queued: lost too. The head may be in the writer's hands. */
        struct line *l = q->head ? q->head->next : NULL;
        if (q->head) {
            d++;
            q->head->next = NULL;
            q->tail = q->head;
            q->bytes = q->head->len;
        }
        while (l) {
            struct line *next = l->next;
            free(l);
            d++;
            l = next;
        }
        pthread_mutex_unlock(&q->mu);
        if (d)
            notify(q->fd, d, 0);
        total += d;
    }
    return total;
}
