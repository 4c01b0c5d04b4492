/*
 * relay_stream.c - the forwarding service behind `sockit relay` (stream
 * addresses: TCP and Unix, either side), sk_forward_service(). Not to be
 * confused with sk_relay (src/lib/relay.c), `connect`'s stdin/stdout <->
 * socket copy loop.
 *
 * Each accepted connection gets its own upstream socket: the target is
 * resolved on every connection (a name may move) and every address it
 * resolves to is tried in turn with a non-blocking connect, each bounded by
 * the connect timeout. The upstream socket is a second descriptor of the
 * connection (sk_conn_watch), so the same code runs under every model.
 *
 * Both directions have bounded buffers and backpressure:
 *   client -> target: on_data writes to the target; what does not fit waits
 *     in `toup` (at most one read's worth) while reading from the client is
 *     paused until the target drained it.
 *   target -> client: read from the target and queue with sk_conn_send; above
 *     FWD_HIGH_WATER queued, stop reading the target until the queue empties
 *     (on_drain).
 * Each direction's end of stream is passed on by itself (a half-close), and
 * the connection ends when both are done, or `linger` after the first.
 *
 * Zero copy (Linux, plain connections): relay_splice.c moves the bytes
 * through pipes with splice(2) instead of this file's copies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/resolve_cache.h"
#include "relay_stream.h"

#define FWD_HIGH_WATER (256u * 1024) /* stop reading the target above this much queued */
#define FWD_READ (64u * 1024)        /* one read from the target */
#define FWD_ROUNDS 4                 /* reads per wakeup: the loop's other connections wait */
/* Splicing costs two pipes per connection (four descriptors, eight system
 * calls to make and close them): worth it for bulk, not for a short
 * exchange. So a connection starts copying and switches once this much has
 * gone through it. */
#define FWD_SPLICE_AFTER (64u * 1024)

const sk_svc_option sk__fwd_options[] = {
    {"target", "ADDRESS", "relay: where to forward each connection (resolved every time)",
     SK_OPT_STRING},
    {"connect-timeout", "SECS",
     "relay: give up on an address of the target after SECS (-w; default: the kernel's)",
     SK_OPT_SECONDS},
    {"linger", "SECS",
     "relay: close SECS after the first direction ended (default: when both have)", SK_OPT_SECONDS},
    {"no-splice", NULL, "relay: copy through user space even where splice(2) works", SK_OPT_FLAG},
    {"send-proxy", "v1|v2",
     "relay: tell the target who the client is: a PROXY protocol header first", SK_OPT_STRING},
    {NULL, NULL, NULL, 0},
};

static void fwd_defaults(void *config)
{
    sk__fwd_cfg *c = config;
    c->linger_ms = -1;
}

static int parse_ms(const char *value)
{
    double d = strtod(value, NULL);
    if (d > 2000000.0)
        d = 2000000.0; /* sk_conn_set_timer takes an int of ms */
    int ms = (int)(d * 1000.0 + 0.5);
    return ms == 0 && d > 0 ? 1 : ms;
}

static int fwd_configure(void *config, const char *option, const char *value, sk_err *err)
{
    sk__fwd_cfg *c = config;
    if (strcmp(option, "target") == 0) {
        sk_err e;
        if (sk_addr_parse(&c->target, value, &e) < 0)
            return sk_err_usage(err, "target: %s", e.msg);
        if (c->target.inherit)
            return sk_err_usage(err, "target \"%s\": fd: and sd: are for listening addresses",
                                value);
        if (!sk_transport_is_stream(c->target.transport))
            return sk_err_usage(err,
                                "target \"%s\" is a datagram address: a stream relay forwards "
                                "to TCP or unix: (UDP to UDP: listen on a udp:// address)",
                                value);
        c->has_target = 1;
        return 0;
    }
    if (strcmp(option, "connect-timeout") == 0) {
        c->connect_timeout_ms = parse_ms(value);
        return 0;
    }
    if (strcmp(option, "linger") == 0) {
        c->linger_ms = parse_ms(value);
        return 0;
    }
    if (strcmp(option, "no-splice") == 0) {
        c->no_splice = 1;
        return 0;
    }
    if (strcmp(option, "send-proxy") == 0) {
        if (strcmp(value, "v1") == 0 || strcmp(value, "1") == 0)
            c->send_proxy = 1;
        else if (strcmp(value, "v2") == 0 || strcmp(value, "2") == 0)
            c->send_proxy = 2;
        else
            return sk_err_usage(err, "--send-proxy \"%s\": give v1 or v2", value);
        return 0;
    }
    return sk_err_usage(err, "--%s is not an option of the relay service", option);
}

/* The server's state: the settings, and the target's addresses. */
typedef struct fwd_state {
    const sk__fwd_cfg *cfg;
    sk__rcache *rcache; /* resolved at start; looked up again off the loop */
} fwd_state;

static int fwd_init(sk_server *srv, void **state, sk_err *err)
{
    const sk__fwd_cfg *c = sk_server_options(srv)->service_config;
    if (c == NULL || !c->has_target)
        return sk_err_usage(err, "relay: no target address (set the target option)");
    fwd_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return sk_errno(err, ENOMEM, "relay");
    st->cfg = c;
    st->rcache = sk__rcache_new(&c->target, err);
    if (st->rcache == NULL) {
        free(st);
        return -1;
    }
    *state = st;
    return 0;
}

static void fwd_fini(void *state)
{
    fwd_state *st = state;
    if (st == NULL)
        return;
    sk__rcache_free(st->rcache);
    free(st);
}

static const sk__fwd_cfg *cfg_of(sk_conn *c)
{
    return ((const fwd_state *)sk_conn_state(c))->cfg;
}

static void note(sk__fwd *f, const char *fmt, const char *a, const char *b)
{
    if (f->why[0] == '\0')
        snprintf(f->why, sizeof f->why, fmt, a, b);
}

void sk__fwd_close(sk_conn *c, sk__fwd *f)
{
    f->closing = 1;
    sk_conn_close(c);
}

void sk__fwd_abort(sk_conn *c, sk__fwd *f)
{
    /* The target's stream broke (a reset): so does the client's. An orderly
     * end would tell the client that what it got was the whole of it. */
    f->closing = 1;
    sk_conn_abort(c);
}

/* Stop watching the upstream socket and close it. */
static void drop_upstream(sk_conn *c, sk__fwd *f)
{
    if (f->up < 0)
        return;
    sk_conn_watch(c, f->up, 0, NULL, NULL);
    close(f->up);
    f->up = -1;
    f->watching = 0;
}

void sk__fwd_watch(sk_conn *c, sk__fwd *f, unsigned events)
{
    if (f->up < 0 || events == f->watching)
        return;
    if (sk_conn_watch(c, f->up, events, sk__fwd_on_upstream, NULL) < 0) {
        note(f, "cannot watch the target's socket: %s%s", strerror(errno), "");
        sk__fwd_close(c, f);
        return;
    }
    f->watching = events;
}

/* Both directions done: close; one done: the linger timer starts. */
void sk__fwd_check_done(sk_conn *c, sk__fwd *f)
{
    int up_done = f->cl_eof && f->up_shut;
    int down_done = f->up_eof;
    if (up_done && down_done) {
        sk__fwd_close(c, f);
        return;
    }
    if ((up_done || down_done) && !f->lingering) {
        int linger = cfg_of(c)->linger_ms;
        if (linger < 0)
            return;
        f->lingering = 1;
        if (linger == 0) {
            note(f, "%s%s", "closed at the first end of stream (--linger 0)", "");
            sk__fwd_close(c, f);
        } else {
            sk_conn_set_timer(c, linger);
        }
    }
}

/* The client ended its direction, and everything it sent was delivered:
 * pass the end of stream on. */
static void shut_upstream(sk_conn *c, sk__fwd *f)
{
    if (f->up_shut || f->up < 0)
        return;
    f->up_shut = 1;
    if (shutdown(f->up, SHUT_WR) < 0 && errno != ENOTCONN)
        note(f, "shutdown of the target's side: %s%s", strerror(errno), "");
    sk__fwd_check_done(c, f);
}

/* Enough bytes went through by copying: splice from now on, if we may. */
static void maybe_splice(sk_conn *c, sk__fwd *f)
{
    if (!f->splice && !f->no_splice && f->up_bytes + f->down_bytes >= FWD_SPLICE_AFTER) {
        sk__fwd_splice_start(c, f);
        if (!f->splice)
            f->no_splice = 1; /* (TLS, no pipes): do not ask again */
    }
}

/* ---- client -> target (copying) ---- */

/* Write what waits for the target. 1: all gone, 0: wait for writability,
 * -1: the target does not take it any more (the relay is closed). */
static int flush_toup(sk_conn *c, sk__fwd *f)
{
    while (f->toup.len > 0) {
        ssize_t n = send(f->up, sk_buf_head(&f->toup), f->toup.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sk_buf_consume(&f->toup, (size_t)n);
            f->up_bytes += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        note(f, "target stopped taking data: %s%s", strerror(errno), "");
        sk__fwd_close(c, f);
        return -1;
    }
    sk_buf_free(&f->toup);
    return 1;
}

static void fwd_on_data(sk_conn *c, const uint8_t *data, size_t len)
{
    sk__fwd *f = sk_conn_data(c);
    if (f->up < 0 || f->phase != SK__FWD_OPEN)
        return; /* closing: nowhere to send it */
    if (f->toup.len == 0) {
        while (len > 0) {
            ssize_t n = send(f->up, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                data += n;
                len -= (size_t)n;
                f->up_bytes += (uint64_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            note(f, "target stopped taking data: %s%s", strerror(errno), "");
            sk__fwd_close(c, f);
            return;
        }
        if (len == 0) {
            maybe_splice(c, f);
            return;
        }
    }
    /* The target is full: keep this read's rest (bounded: reading stops
     * until it is gone) and wait for the target to take it. */
    if (sk_buf_append(&f->toup, data, len) < 0) {
        note(f, "out of memory%s%s", "", "");
        sk__fwd_close(c, f);
        return;
    }
    sk_conn_pause_read(c, 1);
    sk__fwd_watch(c, f, f->watching | SK_WATCH_WRITE);
}

static void fwd_on_eof(sk_conn *c)
{
    sk__fwd *f = sk_conn_data(c);
    f->cl_eof = 1;
    if (f->first == 0)
        f->first = 'c';
    if (f->phase != SK__FWD_OPEN) {
        sk__fwd_close(c, f);
        return;
    }
    if (f->toup.len == 0 && !sk__fwd_splice_pending(f))
        shut_upstream(c, f);
}

/* ---- target -> client (copying) ---- */

static void read_upstream(sk_conn *c, sk__fwd *f)
{
    uint8_t buf[FWD_READ];
    for (int round = 0; round < FWD_ROUNDS; round++) {
        if (sk_conn_pending(c) >= FWD_HIGH_WATER) {
            /* The client reads slowly: stop reading the target until the
             * queue is empty (on_drain), so memory stays bounded. */
            sk__fwd_watch(c, f, f->watching & ~SK_WATCH_READ);
            sk_conn_want_drain(c, 1);
            return;
        }
        ssize_t n = recv(f->up, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            f->down_bytes += (uint64_t)n;
            if (sk_conn_send(c, buf, (size_t)n) < 0) {
                note(f, "client's queue refused the target's data%s%s", "", "");
                sk__fwd_close(c, f);
                return;
            }
            if ((size_t)n < sizeof buf || (maybe_splice(c, f), f->splice))
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            note(f, "target: %s%s", strerror(errno), "");
            sk__fwd_abort(c, f);
            return;
        }
        sk__fwd_upstream_eof(c, f);
        return;
    }
}

void sk__fwd_upstream_eof(sk_conn *c, sk__fwd *f)
{
    f->up_eof = 1;
    if (f->first == 0)
        f->first = 't';
    sk__fwd_watch(c, f, f->watching & ~SK_WATCH_READ);
    sk_conn_shutdown(c); /* our FIN once the queue is out; the client may go on */
    sk__fwd_check_done(c, f);
}

static void fwd_on_drain(sk_conn *c)
{
    sk__fwd *f = sk_conn_data(c);
    sk_conn_want_drain(c, 0);
    if (f->phase == SK__FWD_OPEN && !f->up_eof)
        sk__fwd_watch(c, f, f->watching | SK_WATCH_READ);
}

/* ---- connecting ---- */

static void connected(sk_conn *c, sk__fwd *f);

/* Try the next address of the target; when none is left, give up. */
static void try_next(sk_conn *c, sk__fwd *f)
{
    const sk__fwd_cfg *cfg = cfg_of(c);
    while (f->next < f->neps) {
        const sk_endpoint *e = &f->eps[f->next++];
        char name[SK_NAME_MAX];
        sk_sockaddr_format((const struct sockaddr *)&e->sa, e->len, cfg->target.transport, name,
                           sizeof name);
        int fd = socket(e->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(f->why, sizeof f->why, "target down: socket for %s: %s", name,
                     strerror(errno));
            continue;
        }
        int r;
        do
            r = connect(fd, (const struct sockaddr *)&e->sa, e->len);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno != EINPROGRESS) {
            /* A Unix listener with a full backlog says EAGAIN: busy, next. */
            snprintf(f->why, sizeof f->why, "target down: connect %s: %s", name,
                     errno == EAGAIN ? "backlog full" : strerror(errno));
            close(fd);
            continue;
        }
        f->up = fd;
        snprintf(f->target, sizeof f->target, "%s", name);
        if (r == 0) {
            connected(c, f);
            return;
        }
        sk__fwd_watch(c, f, SK_WATCH_WRITE);
        if (cfg->connect_timeout_ms > 0)
            sk_conn_set_timer(c, cfg->connect_timeout_ms);
        return;
    }
    /* Every address failed: the client sees the connection close. */
    f->phase = SK__FWD_FAILED;
    free(f->eps);
    f->eps = NULL;
    if (f->why[0] == '\0')
        snprintf(f->why, sizeof f->why, "target down: no address");
    sk__fwd_close(c, f);
}

/* --send-proxy: the header goes first, before any of the client's bytes:
 * the client (as we see it: itself proxied, the client its header named)
 * and the address it reached us at. A fresh connection's send buffer takes
 * its at most 232 bytes whole; anything else is a failure to connect. */
static int send_proxy_header(sk_conn *c, sk__fwd *f, int version)
{
    socklen_t slen, dlen = sizeof(struct sockaddr_storage);
    const struct sockaddr *src = sk_conn_peer_addr(c, &slen);
    struct sockaddr_storage dst;
    if (src == NULL || getsockname(sk_conn_fd(c), (struct sockaddr *)&dst, &dlen) < 0)
        src = NULL; /* a Unix client: v1 UNKNOWN, v2 LOCAL */
    uint8_t h[256];
    int n = sk_proxy_format(h, sizeof h, version, src, slen, src ? (struct sockaddr *)&dst : NULL,
                            src ? dlen : 0);
    if (n < 0)
        return -1;
    ssize_t w;
    do
        w = send(f->up, h, (size_t)n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w == n)
        return 0;
    snprintf(f->why, sizeof f->why, "target %s: the PROXY header could not be sent: %s", f->target,
             w < 0 ? strerror(errno) : "short write");
    return -1;
}

static void connected(sk_conn *c, sk__fwd *f)
{
    int version = cfg_of(c)->send_proxy;
    if (version && send_proxy_header(c, f, version) < 0) {
        f->phase = SK__FWD_FAILED;
        sk__fwd_close(c, f);
        return;
    }
    f->phase = SK__FWD_OPEN;
    f->why[0] = '\0'; /* an earlier address's failure is not this connection's story */
    free(f->eps);
    f->eps = NULL;
    sk_conn_set_timer(c, 0);
    f->no_splice = (uint8_t)cfg_of(c)->no_splice; /* else zero copy once it pays (maybe_splice) */
    sk__fwd_watch(c, f, SK_WATCH_READ);
    sk_conn_pause_read(c, 0);
}

/* The upstream socket is ready: connect finished, writable, or readable. */
void sk__fwd_on_upstream(sk_conn *c, int fd, unsigned fired, void *arg)
{
    (void)arg;
    sk__fwd *f = sk_conn_data(c);
    if (fd != f->up)
        return;
    if (f->phase == SK__FWD_CONNECTING) {
        int e = 0;
        socklen_t len = sizeof e;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
            e = errno;
        if (e == 0 && (fired & SK_WATCH_WRITE)) {
            connected(c, f);
            return;
        }
        if (e == 0)
            e = ECONNREFUSED; /* hangup without an error: nothing answered */
        snprintf(f->why, sizeof f->why, "target down: connect %s: %s", f->target, strerror(e));
        drop_upstream(c, f);
        sk_conn_set_timer(c, 0);
        try_next(c, f);
        return;
    }
    if (f->phase != SK__FWD_OPEN)
        return;
    if (fired & SK_WATCH_WRITE) {
        int r = sk__fwd_splice_pending(f) ? sk__fwd_splice_flush(c, f) : flush_toup(c, f);
        if (r < 0)
            return;
        if (r == 1) {
            sk__fwd_watch(c, f, f->watching & ~SK_WATCH_WRITE);
            sk_conn_pause_read(c, 0);
            if (f->cl_eof)
                shut_upstream(c, f);
            else
                maybe_splice(c, f);
        }
    }
    if ((fired & SK_WATCH_READ) && (f->watching & SK_WATCH_READ)) {
        if (f->splice)
            sk__fwd_splice_down(c, f);
        else
            read_upstream(c, f);
    }
}

static void fwd_on_timeout(sk_conn *c)
{
    sk__fwd *f = sk_conn_data(c);
    if (f->phase == SK__FWD_CONNECTING) {
        snprintf(f->why, sizeof f->why, "target down: connect %s: timed out", f->target);
        drop_upstream(c, f);
        try_next(c, f);
        return;
    }
    note(f, "linger time over%s%s", "", "");
    sk__fwd_close(c, f);
}

static void fwd_on_open(sk_conn *c)
{
    sk__fwd *f = sk_conn_data(c);
    f->up = -1;
    f->pipe_in[0] = f->pipe_in[1] = f->pipe_out[0] = f->pipe_out[1] = -1;
    f->started_ms = sk_now_ms();
    f->phase = SK__FWD_CONNECTING;
    sk_conn_pause_read(c, 1); /* nothing to send the client's bytes to yet */
    f->eps = calloc(SK_RESOLVE_MAX, sizeof *f->eps);
    if (f->eps == NULL) {
        f->phase = SK__FWD_FAILED;
        snprintf(f->why, sizeof f->why, "out of memory");
        sk__fwd_close(c, f);
        return;
    }
    sk_err err;
    /* Never a wait for DNS here: the loop serves every other connection. */
    fwd_state *st = sk_conn_state(c);
    size_t n = sk__rcache_get(st->rcache, f->eps, SK_RESOLVE_MAX, &err);
    if (n == 0)
        snprintf(f->why, sizeof f->why, "target down: %.170s", err.msg);
    f->neps = (uint8_t)n;
    f->next = 0;
    try_next(c, f);
}

static void fwd_on_close(sk_conn *c)
{
    sk__fwd *f = sk_conn_data(c);
    sk_server *s = sk_conn_server(c);
    if (!f->closing && f->up >= 0 && f->phase == SK__FWD_OPEN &&
        !(f->cl_eof && f->up_shut && f->up_eof)) {
        /* Not the relay's decision: the client reset, or a timeout or stop
         * cut the connection. A FIN would tell the target that the client's
         * stream ended whole; a reset says it did not. */
        struct linger abort_now = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(f->up, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
        note(f, "cut short: %s%s", "the target's connection reset", "");
    }
    if (sk_server_options(s)->verbose) {
        char peer[SK_NAME_MAX];
        snprintf(peer, sizeof peer, "%s", sk_conn_peer_name(c));
        double secs = (double)(sk_now_ms() - f->started_ms) / 1000.0;
        const char *how = f->first == 'c'   ? "client closed first"
                          : f->first == 't' ? "target closed first"
                                            : "neither side closed";
        if (f->phase == SK__FWD_OPEN || f->phase == SK__FWD_CONNECTING)
            sk_server_log(s, SK_LOG_INFO,
                          "relay %s -> %s: %llu bytes to target, %llu bytes from target, "
                          "%.3f s, %s%s%s%s",
                          peer, f->target[0] ? f->target : "(none)",
                          (unsigned long long)f->up_bytes, (unsigned long long)f->down_bytes, secs,
                          how, f->splice ? ", spliced" : "", f->why[0] ? "; " : "", f->why);
        else
            sk_server_log(s, SK_LOG_INFO, "relay %s: %s", peer, f->why);
    }
    drop_upstream(c, f);
    sk__fwd_splice_end(f);
    sk_buf_free(&f->toup);
    free(f->eps);
    f->eps = NULL;
}

static size_t fwd_describe(const void *config, const sk_listener *l, char *buf, size_t cap)
{
    const sk__fwd_cfg *c = config;
    if (c == NULL || !c->has_target)
        return 0;
    char t[SK_NAME_MAX + 64];
    sk_addr_format(&c->target, t, sizeof t);
    int n = snprintf(buf, cap, "relaying %s to %s", l->name, t);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static const sk_service fwd_service = {
    .name = "relay",
    .summary = "forwards each connection to a target address (sockit relay)",
    .flags = SK_SVC_STREAM | SK_SVC_OWN_LOG, /* one -v line per connection: its own */
    .conn_size = sizeof(sk__fwd),
    .init = fwd_init,
    .fini = fwd_fini,
    .on_open = fwd_on_open,
    .on_data = fwd_on_data,
    .on_eof = fwd_on_eof,
    .on_drain = fwd_on_drain,
    .on_close = fwd_on_close,
    .on_timeout = fwd_on_timeout,
    .options = sk__fwd_options,
    .config_size = sizeof(sk__fwd_cfg),
    .config_defaults = fwd_defaults,
    .configure = fwd_configure,
    .describe = fwd_describe,
};

const sk_service *sk_forward_service(void)
{
    return &fwd_service;
}
