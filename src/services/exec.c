/*
 * exec.c - `sockit serve exec`: a program per connection, its stdin and
 * stdout joined to the connection (inetd nowait, ncat -k -e).
 *
 * The server keeps the connection and the child gets only its own ends of a
 * socket pair (stdin) and two pipes (stdout, stderr): a child that exits with
 * client input unread cannot make the kernel reset the connection and
 * destroy a reply not yet sent, as it would if it held the socket itself
 * (ncat #962). Both directions are bounded: client bytes wait here up to
 * IN_HIGH while the child does not read (then reading from the client
 * pauses), the child's bytes wait in the connection up to OUT_HIGH while the
 * client does not read (then reading from the child pauses).
 *
 * The ends of the streams are passed on one by one: the client's end closes
 * the child's stdin (once what was buffered went in), the end of the child's
 * stdout half-closes the connection. The connection ends when the child has
 * exited and its output is done: at the end of stdout, or, once the client
 * has ended too, when nothing more is waiting in the pipe (a background
 * process holding stdout does not keep a finished session open). A child's
 * exit is seen on its pidfd, watched like the pipes, in every model.
 * Ending the child (SIGTERM to its group, SIGKILL after --grace) is
 * exec_reap.c's; starting it exec_spawn.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "exec.h"

#define IN_HIGH (256 * 1024)  /* client bytes waiting for the child's stdin */
#define OUT_HIGH (256 * 1024) /* child bytes waiting for the client */
#define READ_SIZE (32 * 1024) /* one read of stdout (on the stack of the flow of control) */
#define LINE_CAP 480          /* a stderr line longer than this is logged in pieces */
#define POLL_MS 50            /* no pidfd: how often to ask whether the child exited */

enum {
    F_OPEN = 1,         /* on_open ran: the descriptors below are set */
    F_IN_EOF = 2,       /* the client ended its stream */
    F_IN_DONE = 4,      /* the child's stdin is closed (or it stopped reading it) */
    F_OUT_EOF = 8,      /* the child's stdout ended */
    F_EXITED = 16,      /* the child exited and was reaped */
    F_ENDING = 32,      /* exited, client done: read what stdout holds, then end */
    F_OUT_WAIT = 64,    /* stdout not read while the client catches up */
    F_FINISHED = 128,   /* sk_conn_close was called */
    F_ERR_PARTIAL = 256 /* the stderr line in progress was already cut */
};

typedef struct exec_conn {
    pid_t pid;
    int in, out, err, pidfd; /* our ends; -1 when closed */
    unsigned f;
    int stage;    /* --timeout: 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
    int64_t t_at; /* when the next stage is due (0: no --timeout) */
    sk_buf inbuf; /* client bytes the child's stdin did not take yet */
    char *line;   /* stderr: the line in progress (LINE_CAP bytes) */
    size_t linelen;
} exec_conn;

static void on_fd(sk_conn *c, int fd, unsigned fired, void *arg);

static void fd_close(sk_conn *c, int *fd)
{
    if (*fd < 0)
        return;
    sk_conn_watch(c, *fd, 0, NULL, NULL);
    close(*fd);
    *fd = -1;
}

/* -------------------------------------------------------------- stderr */

static void err_emit(sk_conn *c, exec_conn *x)
{
    size_t n = x->linelen;
    while (n > 0 && x->line[n - 1] == '\r')
        n--;
    char text[LINE_CAP + 1];
    sk__printable(text, (const uint8_t *)x->line, n);
    sk_server_log(sk_conn_server(c), SK_LOG_ERROR, "%s: %s", sk_conn_peer_name(c), text);
    x->linelen = 0;
}

static void err_bytes(sk_conn *c, exec_conn *x, const char *p, size_t n)
{
    if (x->line == NULL && (x->line = malloc(LINE_CAP)) == NULL)
        return; /* out of memory: the line is lost, the connection is not */
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (x->linelen > 0 || !(x->f & F_ERR_PARTIAL))
                err_emit(c, x);
            x->f &= ~(unsigned)F_ERR_PARTIAL;
            continue;
        }
        x->line[x->linelen++] = p[i];
        if (x->linelen == LINE_CAP) { /* bounded: log the piece, go on */
            err_emit(c, x);
            x->f |= F_ERR_PARTIAL;
        }
    }
}

/* Read what stderr holds (a bounded number of reads: a child that writes
 * stderr without end must not hold the loop); log complete lines. */
static void err_read(sk_conn *c, exec_conn *x)
{
    char buf[4096];
    for (int i = 0; i < 16 && x->err >= 0; i++) {
        ssize_t r = read(x->err, buf, sizeof buf);
        if (r > 0) {
            err_bytes(c, x, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (x->linelen > 0) /* the last line had no newline */
            err_emit(c, x);
        fd_close(c, &x->err);
    }
}

/* ------------------------------------------------------ the connection */

static void arm_timer(sk_conn *c, exec_conn *x)
{
    int64_t now = sk_now_ms(), next = x->t_at > 0 ? x->t_at : -1;
    if (!(x->f & (F_EXITED | F_FINISHED)) && x->pidfd < 0 && (x->f & F_OUT_EOF) &&
        (next < 0 || now + POLL_MS < next))
        next = now + POLL_MS;
    if (x->f & F_FINISHED)
        next = -1;
    sk_conn_set_timer(c, next < 0 ? 0 : next <= now ? 1 : (int)(next - now));
}

/* Both directions are done: close once the child's output has gone out. */
static void finish(sk_conn *c, exec_conn *x)
{
    if (x->f & F_FINISHED)
        return;
    x->f |= F_FINISHED;
    err_read(c, x);
    fd_close(c, &x->in);
    fd_close(c, &x->out);
    fd_close(c, &x->err);
    fd_close(c, &x->pidfd);
    sk_conn_set_timer(c, 0);
    sk_conn_close(c);
}

static void out_read(sk_conn *c, exec_conn *x);

/* What happened may end the connection (see the top of the file). */
static void check(sk_conn *c, exec_conn *x)
{
    if (x->f & F_FINISHED)
        return;
    if (!(x->f & F_EXITED)) {
        if (x->pidfd < 0 && (x->f & F_OUT_EOF))
            arm_timer(c, x); /* no pidfd: ask waitpid now and then */
        return;
    }
    if (x->f & F_OUT_EOF) {
        finish(c, x);
    } else if ((x->f & F_IN_EOF) && !(x->f & F_ENDING)) {
        x->f |= F_ENDING;
        if (!(x->f & F_OUT_WAIT))
            out_read(c, x);
    }
}

static void stdin_close(sk_conn *c, exec_conn *x)
{
    fd_close(c, &x->in);
    sk_buf_free(&x->inbuf);
    x->f |= F_IN_DONE;
    sk_conn_pause_read(c, 0); /* what the client still sends is read and dropped */
}

/* Send to the child's stdin what it takes now: bytes sent, or -1 when its
 * stdin is gone (it exited or closed it; the rest is dropped). */
static ssize_t stdin_send(sk_conn *c, exec_conn *x, const uint8_t *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = send(x->in, p + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        stdin_close(c, x); /* EPIPE: nobody reads it any more */
        return -1;
    }
    return (ssize_t)done;
}

static void exec_data(sk_conn *c, const uint8_t *data, size_t len)
{
    exec_conn *x = sk_conn_data(c);
    if (x->in < 0)
        return; /* the child's stdin is closed: nobody will read this */
    if (x->inbuf.len == 0) {
        ssize_t w = stdin_send(c, x, data, len);
        if (w < 0)
            return;
        data += w;
        len -= (size_t)w;
    }
    if (len == 0)
        return;
    if (sk_buf_append(&x->inbuf, data, len) < 0) {
        sk_server_log(sk_conn_server(c), SK_LOG_ERROR, "exec: %s: out of memory",
                      sk_conn_peer_name(c));
        finish(c, x);
        return;
    }
    if (sk_conn_watch(c, x->in, SK_WATCH_WRITE, on_fd, NULL) < 0) {
        finish(c, x);
        return;
    }
    if (x->inbuf.len >= IN_HIGH)
        sk_conn_pause_read(c, 1); /* backpressure: the child is not reading */
}

static void stdin_writable(sk_conn *c, exec_conn *x)
{
    ssize_t w = stdin_send(c, x, sk_buf_head(&x->inbuf), x->inbuf.len);
    if (w < 0)
        return;
    sk_buf_consume(&x->inbuf, (size_t)w);
    if (x->inbuf.len < IN_HIGH)
        sk_conn_pause_read(c, 0);
    if (x->inbuf.len > 0)
        return;
    sk_buf_free(&x->inbuf);
    sk_conn_watch(c, x->in, 0, NULL, NULL);
    if (x->f & F_IN_EOF)
        stdin_close(c, x); /* the client's end, passed on */
}

static void exec_eof(sk_conn *c)
{
    exec_conn *x = sk_conn_data(c);
    x->f |= F_IN_EOF;
    if (x->in >= 0 && x->inbuf.len == 0)
        stdin_close(c, x);
    check(c, x);
}

static void out_eof(sk_conn *c, exec_conn *x)
{
    fd_close(c, &x->out);
    x->f |= F_OUT_EOF;
    sk_conn_shutdown(c); /* the child's end, passed on: a half-close */
    check(c, x);
}

/* Read stdout into the connection until the pipe is empty or the client
 * falls OUT_HIGH behind (then wait for on_drain). */
static void out_read(sk_conn *c, exec_conn *x)
{
    char buf[READ_SIZE];
    while (x->out >= 0) {
        if (sk_conn_pending(c) >= OUT_HIGH) {
            sk_conn_watch(c, x->out, 0, NULL, NULL);
            x->f |= F_OUT_WAIT;
            sk_conn_want_drain(c, 1);
            return;
        }
        ssize_t r = read(x->out, buf, sizeof buf);
        if (r > 0) {
            if (sk_conn_send(c, buf, (size_t)r) < 0) {
                fd_close(c, &x->out); /* the connection is going: on_close ends the child */
                return;
            }
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN) {
            if (x->f & F_ENDING)
                finish(c, x);
            return;
        }
        out_eof(c, x); /* end of file (or an error, which ends it as well) */
        return;
    }
}

static void exec_drain(sk_conn *c)
{
    exec_conn *x = sk_conn_data(c);
    sk_conn_want_drain(c, 0);
    if (!(x->f & F_OUT_WAIT) || x->out < 0)
        return;
    x->f &= ~(unsigned)F_OUT_WAIT;
    if (sk_conn_watch(c, x->out, SK_WATCH_READ, on_fd, NULL) < 0) {
        finish(c, x);
        return;
    }
    out_read(c, x);
}

static void reaped(sk_conn *c, exec_conn *x, int status)
{
    x->f |= F_EXITED;
    fd_close(c, &x->pidfd);
    const sk__exec *ex = sk_conn_state(c);
    if (ex->verbose) {
        char how[64];
        sk_server_log(sk_conn_server(c), SK_LOG_INFO, "exec: %s: %s %s", sk_conn_peer_name(c),
                      ex->argv[0], sk__exec_status_text(status, how, sizeof how));
    }
    check(c, x);
}

static void on_fd(sk_conn *c, int fd, unsigned fired, void *arg)
{
    (void)arg;
    exec_conn *x = sk_conn_data(c);
    int status;
    if (fd == x->out)
        out_read(c, x);
    else if (fd == x->err)
        err_read(c, x);
    else if (fd == x->in && (fired & SK_WATCH_WRITE))
        stdin_writable(c, x);
    else if (fd == x->pidfd && sk__exec_try_reap(x->pid, &status))
        reaped(c, x, status);
}

static void exec_timeout(sk_conn *c)
{
    exec_conn *x = sk_conn_data(c);
    const sk__exec *ex = sk_conn_state(c);
    int64_t now = sk_now_ms();
    int status;
    if (!(x->f & F_EXITED) && x->pidfd < 0 && sk__exec_try_reap(x->pid, &status))
        reaped(c, x, status);
    if (x->f & F_FINISHED)
        return;
    if (x->t_at > 0 && now >= x->t_at) {
        if (x->stage == 0) {
            sk_server_log(sk_conn_server(c), SK_LOG_ERROR,
                          "exec: %s: %s still running after --timeout %g s: terminated",
                          sk_conn_peer_name(c), ex->argv[0], ex->timeout_ms / 1000.0);
            kill(-x->pid, SIGTERM);
            x->stage = 1;
            x->t_at = now + ex->grace_ms;
        } else if (x->stage == 1) {
            kill(-x->pid, SIGKILL);
            x->stage = 2;
            x->t_at = now + 1000; /* then the connection ends, output or not */
        } else {
            finish(c, x);
            return;
        }
    }
    arm_timer(c, x);
}

/* PROTO and the peer's addresses, as ucspi-tcp/ucspi-unix and CGI/systemd
 * name them. Strings in text (cap bytes); returns the number of variables. */
static size_t peer_vars(sk_conn *c, const char **vars, char *text, size_t cap)
{
    size_t n = 0, used = 0;
#define VAR(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(text + used, cap - used, __VA_ARGS__);                                   \
        if (k_ > 0 && (size_t)k_ < cap - used) {                                                   \
            vars[n++] = text + used;                                                               \
            used += (size_t)k_ + 1;                                                                \
        }                                                                                          \
    } while (0)
    int fd = sk_conn_fd(c);
    int proxied = sk_conn_proxied(c); /* the header's client replaces the peer */
    if (sk_conn_transport(c) == SK_UNIX && !proxied) {
        VAR("PROTO=UNIX");
#ifdef SO_PEERCRED
        struct ucred uc;
        socklen_t len = sizeof uc;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0) {
            VAR("UNIXREMOTEPID=%ld", (long)uc.pid);
            VAR("UNIXREMOTEEUID=%lu", (unsigned long)uc.uid);
            VAR("UNIXREMOTEEGID=%lu", (unsigned long)uc.gid);
        }
#else
        uid_t uid;
        gid_t gid;
        if (getpeereid(fd, &uid, &gid) == 0) {
            VAR("UNIXREMOTEEUID=%lu", (unsigned long)uid);
            VAR("UNIXREMOTEEGID=%lu", (unsigned long)gid);
        }
#endif
        return n;
    }
    /* The peer as the engine knows it (an IPv4 client on the dual-stack
     * socket as a.b.c.d; with the PROXY protocol, the client it names). */
    char host[SK_NAME_MAX];
    unsigned port;
    sk_conn_peer_host_port(c, host, sizeof host, &port);
    VAR("PROTO=%s", strchr(host, ':') ? "TCP6" : "TCP");
    VAR("TCPREMOTEIP=%s", host);
    VAR("TCPREMOTEPORT=%u", port);
    VAR("REMOTE_ADDR=%s", host);
    VAR("REMOTE_PORT=%u", port);
    if (proxied)
        VAR("SOCKIT_PROXIED=1");
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        sk_sockaddr_host_port((struct sockaddr *)&ss, sl, host, sizeof host, &port);
        VAR("TCPLOCALIP=%s", host);
        VAR("TCPLOCALPORT=%u", port);
    }
#undef VAR
    return n;
}

static void exec_open(sk_conn *c)
{
    exec_conn *x = sk_conn_data(c);
    const sk__exec *ex = sk_conn_state(c);
    x->in = x->out = x->err = x->pidfd = -1;
    x->f = F_OPEN;
    sk_err err;
    const char *vars[SK_EXEC_PEER_VARS];
    char text[1024];
    size_t nv = peer_vars(c, vars, text, sizeof text);
    int fds[3];
    x->pid = sk__exec_start(ex, vars, nv, fds, &err);
    if (x->pid < 0) {
        sk_server_log(sk_conn_server(c), SK_LOG_ERROR, "%s: %s", sk_conn_peer_name(c), err.msg);
        x->pid = 0;
        x->f |= F_FINISHED;
        sk_conn_close(c);
        return;
    }
    x->in = fds[0];
    x->out = fds[1];
    x->err = fds[2];
    x->pidfd = sk__exec_pidfd(x->pid);
    if (sk_conn_watch(c, x->out, SK_WATCH_READ, on_fd, NULL) < 0 ||
        sk_conn_watch(c, x->err, SK_WATCH_READ, on_fd, NULL) < 0 ||
        (x->pidfd >= 0 && sk_conn_watch(c, x->pidfd, SK_WATCH_READ, on_fd, NULL) < 0)) {
        sk_server_log(sk_conn_server(c), SK_LOG_ERROR, "exec: %s: %s", sk_conn_peer_name(c),
                      errno == EMFILE ? "descriptor too high for this model (use epoll)"
                                      : strerror(errno));
        finish(c, x); /* on_close ends the child */
        return;
    }
    if (ex->timeout_ms > 0) {
        x->t_at = sk_now_ms() + ex->timeout_ms;
        arm_timer(c, x);
    }
}

static void exec_close(sk_conn *c)
{
    exec_conn *x = sk_conn_data(c);
    if (!(x->f & F_OPEN))
        return;
    const sk__exec *ex = sk_conn_state(c);
    if (x->err >= 0)
        err_read(c, x);
    if (x->linelen > 0)
        err_emit(c, x);
    fd_close(c, &x->in);
    fd_close(c, &x->out);
    fd_close(c, &x->err);
    sk_buf_free(&x->inbuf);
    free(x->line);
    x->line = NULL;
    /* The connection is over: the child's group too (SIGTERM, then SIGKILL
     * after --grace), and the child reaped. */
    if (x->pid > 0)
        sk__exec_end(x->pid, (x->f & F_EXITED) != 0, x->pidfd, ex->grace_ms, ex->wait_here);
    fd_close(c, &x->pidfd);
}

const sk_service sk__svc_exec = {
    .name = "exec",
    .summary = "runs a program per connection (or datagram), joined to its stdin/stdout",
    .flags = SK_SVC_STREAM | SK_SVC_DGRAM,
    .conn_size = sizeof(exec_conn),
    .init = sk__exec_init,
    .fini = sk__exec_fini,
    .on_open = exec_open,
    .on_data = exec_data,
    .on_eof = exec_eof,
    .on_drain = exec_drain,
    .on_close = exec_close,
    .on_timeout = exec_timeout,
    .on_datagram = sk__exec_datagram,
    .options = sk__exec_options,
    .config_size = sizeof(sk__exec_cfg),
    .configure = sk__exec_configure,
    .args = sk__exec_args,
    .args_usage = "PROGRAM [ARGS...]",
};
