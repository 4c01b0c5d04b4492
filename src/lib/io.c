/* io.c - blocking-style I/O helpers that survive EINTR, short writes, EAGAIN and SIGPIPE. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sockit.h"

int64_t sk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sk_ignore_sigpipe(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}

int sk_wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int timeout = -1;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - sk_now_ms();
            if (left < 0)
                left = 0;
            timeout = left > 1000000000 ? 1000000000 : (int)left;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, timeout);
        if (r > 0)
            return 1; /* ready, or an error/hangup the next call will report */
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* sk_wait_fd, with running out of time reported as an error (ETIMEDOUT). */
static int wait_ready(int fd, short events, int64_t deadline_ms)
{
    int r = sk_wait_fd(fd, events, deadline_ms);
    if (r == 0)
        errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
}

ssize_t sk_write_all(int fd, const void *buf, size_t len, int64_t deadline_ms)
{
    const char *p = buf;
    size_t done = 0;
    int is_sock = 1; /* try send(MSG_NOSIGNAL) first; fall back to write() for files and pipes */
    while (done < len) {
        ssize_t n;
        if (is_sock) {
            n = send(fd, p + done, len - done, MSG_NOSIGNAL);
            if (n < 0 && errno == ENOTSOCK) {
                is_sock = 0;
                continue;
            }
        } else {
            n = write(fd, p + done, len - done);
        }
        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_ready(fd, POLLOUT, deadline_ms) < 0)
                return -1;
            continue;
        }
        return -1;
    }
    return (ssize_t)len;
}

ssize_t sk_read_deadline(int fd, void *buf, size_t cap, int64_t deadline_ms)
{
    for (;;) {
        if (deadline_ms >= 0 && wait_ready(fd, POLLIN, deadline_ms) < 0)
            return -1;
        ssize_t n = read(fd, buf, cap);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_ready(fd, POLLIN, deadline_ms) < 0)
                return -1;
            continue;
        }
        return -1;
    }
}
