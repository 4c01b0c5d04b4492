/*
 * exec_dgram.c - `serve exec` on a datagram address: each datagram runs the
 * program with the datagram on its stdin; what it writes to stdout (up to
 * SK_DGRAM_MAX bytes; the rest is read and dropped) is the reply, nothing
 * written means no reply. The program runs to its end in the caller's flow
 * of control, bounded by --timeout (default SK_EXEC_DGRAM_TIMEOUT): SIGTERM
 * to its group, SIGKILL --grace later.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exec.h"

#define LINE_CAP 480

struct run {
    sk_dgram *d;
    const sk__exec *x;
    char who[SK_NAME_MAX + 16];
    char line[LINE_CAP + 1];
    size_t linelen;
};

static void log_line(struct run *r)
{
    char text[LINE_CAP + 1];
    sk__printable(text, (const uint8_t *)r->line, r->linelen);
    sk_server_log(r->d->server, SK_LOG_ERROR, "%s: %s", r->who, text);
    r->linelen = 0;
}

static void err_bytes(struct run *r, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            log_line(r);
            continue;
        }
        r->line[r->linelen++] = p[i];
        if (r->linelen == LINE_CAP)
            log_line(r);
    }
}

/* PROTO=UDP or UDP6 and the sender, as for streams (REMOTE_ADDR, ...). */
static size_t peer_vars(const sk_dgram *d, const char **vars, char *text, size_t cap)
{
    size_t n = 0, used = 0;
    char host[SK_NAME_MAX];
    unsigned port;
    const char *proto = "UNIX";
    if (d->transport == SK_UDP) {
        sk_sockaddr_host_port(d->peer, d->peerlen, host, sizeof host, &port);
        proto = strchr(host, ':') ? "UDP6" : "UDP";
    }
    int k = snprintf(text, cap, "PROTO=%s", proto);
    vars[n++] = text;
    used = (size_t)k + 1;
    if (d->transport == SK_UDP) {
        const char *fmt[4] = {"UDPREMOTEIP=%s", "UDPREMOTEPORT=%u", "REMOTE_ADDR=%s",
                              "REMOTE_PORT=%u"};
        for (int i = 0; i < 4 && used < cap; i++) {
            k = i % 2 == 0 ? snprintf(text + used, cap - used, fmt[i], host)
                           : snprintf(text + used, cap - used, fmt[i], port);
            if (k > 0 && (size_t)k < cap - used) {
                vars[n++] = text + used;
                used += (size_t)k + 1;
            }
        }
    }
    return n;
}

/* Feed the datagram, collect stdout and stderr until both end; the child's
 * end is bounded by deadline (then SIGTERM, and SIGKILL --grace later). */
static int64_t pump(struct run *r, pid_t pid, int in, int out, int errfd)
{
    sk_dgram *d = r->d;
    size_t sent = 0;
    int64_t deadline =
        sk_now_ms() + (r->x->timeout_ms > 0 ? r->x->timeout_ms : SK_EXEC_DGRAM_TIMEOUT);
    int stage = 0;
    char junk[4096];
    /* The largest UDP payload over IPv4 (65535 - 8 - 20): a longer reply
     * could not be sent at all, so it is cut here. */
    size_t cap = d->transport == SK_UDP && d->cap > 65507 ? 65507 : d->cap;
    if (d->len == 0) {
        close(in);
        in = -1;
    }
    while (out >= 0 || errfd >= 0) {
        int64_t now = sk_now_ms();
        if (now >= deadline) {
            if (stage == 0)
                sk_server_log(d->server, SK_LOG_ERROR,
                              "exec: %s: %s still running after %g s: "
                              "terminated",
                              r->who, r->x->argv[0],
                              (r->x->timeout_ms > 0 ? r->x->timeout_ms : SK_EXEC_DGRAM_TIMEOUT) /
                                  1000.0);
            if (stage >= 2)
                break; /* something outside the group holds its pipes */
            kill(-pid, stage == 0 ? SIGTERM : SIGKILL);
            deadline = now + (stage == 0 ? r->x->grace_ms : 1000);
            stage++;
            continue;
        }
        struct pollfd p[3] = {{.fd = in, .events = POLLOUT},
                              {.fd = out, .events = POLLIN},
                              {.fd = errfd, .events = POLLIN}};
        int rc = poll(p, 3, (int)(deadline - now));
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        if (in >= 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(in, d->data + sent, d->len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == d->len) {
                close(in); /* all of it, or the child does not read: its end of input */
                in = -1;
            }
        }
        if (out >= 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) {
            size_t room = cap - d->reply_len;
            ssize_t k = read(out, room ? (void *)(d->reply + d->reply_len) : (void *)junk,
                             room ? room : sizeof junk);
            if (k > 0 && room)
                d->reply_len += (size_t)k;
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                close(out);
                out = -1;
            }
        }
        if (errfd >= 0 && (p[2].revents & (POLLIN | POLLERR | POLLHUP))) {
            ssize_t k = read(errfd, junk, sizeof junk);
            if (k > 0)
                err_bytes(r, junk, (size_t)k);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                close(errfd);
                errfd = -1;
            }
        }
    }
    if (r->linelen > 0)
        log_line(r);
    int fds[3] = {in, out, errfd};
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return stage == 0 ? deadline : 0;
}

int sk__exec_datagram(sk_dgram *d)
{
    const sk__exec *x = d->state;
    struct run r = {.d = d, .x = x};
    sk__peer_words(d->peer, d->peerlen, d->transport, r.who, sizeof r.who);
    d->reply_len = 0;
    sk_err err;
    const char *vars[SK_EXEC_PEER_VARS];
    char text[512];
    size_t nv = peer_vars(d, vars, text, sizeof text);
    int fds[3];
    pid_t pid = sk__exec_start(x, vars, nv, fds, &err);
    if (pid < 0) {
        sk_server_log(d->server, SK_LOG_ERROR, "%s: %s", r.who, err.msg);
        return 0;
    }
    int pidfd = sk__exec_pidfd(pid);
    int64_t deadline = pump(&r, pid, fds[0], fds[1], fds[2]);
    /* Its output is done: the child is ending or has ended. Give it until
     * the deadline to exit by itself, then end it and its group. */
    int status = 0, done;
    while (!(done = sk__exec_try_reap(pid, &status)) && sk_now_ms() < deadline) {
        int64_t left = deadline - sk_now_ms();
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        poll(pidfd >= 0 ? &p : NULL, pidfd >= 0 ? 1 : 0,
             pidfd >= 0 ? (int)(left > 0 ? left : 0) : 5);
    }
    if (x->verbose && done) {
        char how[64];
        sk_server_log(d->server, SK_LOG_INFO, "exec: %s: %s %s", r.who, x->argv[0],
                      sk__exec_status_text(status, how, sizeof how));
    }
    sk__exec_end(pid, done, pidfd, x->grace_ms, x->wait_here);
    if (pidfd >= 0)
        close(pidfd);
    return d->reply_len > 0;
}
