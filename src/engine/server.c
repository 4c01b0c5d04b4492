/*
 * server.c - sk_server: what every model shares. Options, listeners, the stop
 * request, logging through the caller's callbacks, and the model registry.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"

static const sk_model *const models[] = {
    &sk__model_iterative,
    &sk__model_fork,
    &sk__model_thread,
    &sk__model_prefork,
    &sk__model_select,
    &sk__model_poll,
#ifdef __linux__
    &sk__model_epoll,
#endif
#ifdef SK_HAVE_URING
    &sk__model_uring, /* Linux with liburing (the Makefile's check) */
#endif
    NULL,
};

const sk_model *const *sk_models(void)
{
    return models;
}

const sk_model *sk_model_find(const char *name)
{
    for (size_t i = 0; models[i]; i++)
        if (strcmp(models[i]->name, name) == 0)
            return models[i];
    return NULL;
}

const char *sk_model_default(void)
{
    static const char *const prefer[] = {"epoll", "poll", "fork"};
    for (size_t i = 0; i < sizeof prefer / sizeof prefer[0]; i++)
        if (sk_model_find(prefer[i]))
            return prefer[i];
    return models[0]->name;
}

sk_server *sk_server_new(const sk_server_opts *o, sk_err *err)
{
    if (o->service == NULL) {
        sk_err_usage(err, "no service given");
        return NULL;
    }
    const sk_model *m = o->model ? o->model : sk_model_find(sk_model_default());
    unsigned need = SK_MODEL_SHARED | SK_MODEL_CONCURRENT;
    if ((o->service->flags & SK_SVC_SHARED) && (m->caps & need) != need) {
        sk_err_usage(err,
                     "service %s needs connections served at the same time in one process; "
                     "model %s %s (use thread, select, poll or epoll)",
                     o->service->name, m->name,
                     (m->caps & SK_MODEL_SHARED) ? "serves one connection at a time"
                                                 : "gives each connection its own process");
        return NULL;
    }
    if (o->workers > 0 && !(m->caps & SK_MODEL_WORKERS)) {
        sk_err_usage(err, "--workers is not used by the %s model", m->name);
        return NULL;
    }
    sk_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        sk_errno(err, ENOMEM, "server");
        return NULL;
    }
    s->o = *o;
    /* The defaults, resolved here once: the models read s->o as it is. */
    if (s->o.grace_ms <= 0)
        s->o.grace_ms = SK_GRACE_DEFAULT_MS;
    if (s->o.max_queue == 0)
        s->o.max_queue = SK_MAX_QUEUE_DEFAULT;
    if (s->o.tls_handshake_timeout_ms <= 0)
        s->o.tls_handshake_timeout_ms = SK_TLS_HANDSHAKE_MS;
    if (s->o.proxy_timeout_ms <= 0)
        s->o.proxy_timeout_ms = SK_PROXY_TIMEOUT_MS;
    s->svc = o->service;
    s->model = m;
    s->o.model = m;
    if (s->o.idle_timeout_ms == 0)
        s->o.idle_timeout_ms = s->svc->idle_timeout_ms; /* the service's default (http) */
    s->stop_rd = s->stop_wr = s->now_rd = s->now_wr = s->spare_fd = -1;
    int p[2], q[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        sk_errno(err, errno, "pipe");
        free(s);
        return NULL;
    }
    s->stop_rd = p[0];
    s->stop_wr = p[1];
    if (pipe2(q, O_CLOEXEC | O_NONBLOCK) < 0) {
        sk_errno(err, errno, "pipe");
        sk_server_free(s);
        return NULL;
    }
    s->now_rd = q[0];
    s->now_wr = q[1];
    s->shared =
        mmap(NULL, sizeof *s->shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s->shared == MAP_FAILED) {
        s->shared = NULL;
        sk_errno(err, errno, "mmap");
        sk_server_free(s);
        return NULL;
    }
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (sk__admit_init(s, err) < 0) { /* access: per-source limits (admit.c) */
        sk_server_free(s);
        return NULL;
    }
    if (s->svc->init && s->svc->init(s, &s->svc_state, err) < 0) {
        sk_server_free(s);
        return NULL;
    }
    return s;
}

int sk_server_add_listener(sk_server *s, const sk_listener *l, sk_err *err)
{
    int stream = sk_transport_is_stream(l->transport);
    if ((stream && !(s->svc->flags & SK_SVC_STREAM)) ||
        (!stream && !(s->svc->flags & SK_SVC_DGRAM)))
        return sk_err_usage(err, "service %s does not run on %s sockets (%s)", s->svc->name,
                            stream ? "stream" : "datagram", l->name);
    if (!stream && s->o.tls)
        return sk_err_usage(err, "TLS is for stream sockets: %s is a datagram address (no DTLS)",
                            l->name);
    if (!stream && s->o.proxy_protocol)
        return sk_err_usage(err,
                            "the PROXY protocol is for stream sockets: %s is a datagram "
                            "address (v2 over datagrams is not supported)",
                            l->name);
    if (s->nls == s->capls) {
        size_t cap = s->capls ? s->capls * 2 : 4;
        sk_listener *n = realloc(s->ls, cap * sizeof *n);
        if (n == NULL)
            return sk_errno(err, ENOMEM, "listener");
        s->ls = n;
        struct pollfd *p = realloc(s->pfds, (cap + 2) * sizeof *p);
        if (p == NULL)
            return sk_errno(err, ENOMEM, "listener");
        s->pfds = p;
        s->capls = cap;
    }
    /* Listeners are non-blocking in every model: a connection reset between
     * poll() and accept() must not block the server. */
    if (sk_set_nonblock(l->fd, 1) < 0)
        return sk_errno(err, errno, "fcntl %s", l->name);
    if (l->transport == SK_TCP) {
        /* Replies must not wait for Nagle's algorithm (request/response
         * protocols stall 40 ms on delayed ACKs). Set on the listener, the
         * accepted sockets inherit it (Linux): nothing per connection. */
        int one = 1;
        setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    s->ls[s->nls++] = *l;
    return 0;
}

int sk_server_listen(sk_server *s, const char *address, sk_err *err)
{
    sk_addr a;
    if (sk_addr_parse(&a, address, err) < 0)
        return -1;
    int stream = sk_transport_is_stream(a.transport);
    if (!(s->svc->flags & (stream ? SK_SVC_STREAM : SK_SVC_DGRAM)))
        return sk_err_usage(err, "service %s does not run on %s sockets (%s)", s->svc->name,
                            stream ? "stream" : "datagram", address);
    sk_listener ls[SK_RESOLVE_MAX];
    size_t n = 0;
    if (sk_listen(&a, NULL, ls, SK_RESOLVE_MAX, &n, err) < 0)
        return -1;
    size_t first = s->nls;
    for (size_t i = 0; i < n; i++) {
        if (sk_server_add_listener(s, &ls[i], err) < 0) {
            /* Nothing of this address stays open: neither the ones not
             * added nor the ones the server took already. */
            for (size_t j = i; j < n; j++)
                sk_listener_close(&ls[j]);
            while (s->nls > first)
                sk_listener_close(&s->ls[--s->nls]);
            return -1;
        }
    }
    return 0;
}

const sk_listener *sk_server_listener(const sk_server *s, size_t i)
{
    return i < s->nls ? &s->ls[i] : NULL;
}

int sk_server_run(sk_server *s, sk_err *err)
{
    if (s->nls == 0)
        return sk_err_usage(err, "no address to serve on");
    return s->model->run(s, err);
}

/* When the stop began (policy.c gives connections active just before it a
 * moment to finish). clock_gettime is async-signal-safe. */
static void note_stop_time(sk_server *s)
{
    long long none = 0;
    atomic_compare_exchange_strong(&s->stop_ms, &none, (long long)sk_now_ms());
}

void sk_server_stop(sk_server *s)
{
    /* Async-signal-safe: a flag and one write. The byte is never read back,
     * so the pipe stays readable for every process and thread polling it. */
    if (s == NULL || s->is_child)
        return;
    int e = errno;
    if (atomic_exchange(&s->stopping, 1) == 0) {
        note_stop_time(s);
        ssize_t r = write(s->stop_wr, "x", 1);
        (void)r;
    }
    errno = e;
}

void sk_server_stop_now(sk_server *s)
{
    /* Async-signal-safe, as sk_server_stop: flags and writes. */
    if (s == NULL || s->is_child)
        return;
    int e = errno;
    sk_server_stop(s);
    if (atomic_exchange(&s->stopping_now, 1) == 0) {
        ssize_t r = write(s->now_wr, "x", 1);
        (void)r;
    }
    errno = e;
}

int sk__stopping_now(sk_server *s)
{
    return atomic_load(&s->stopping_now);
}

void sk__saw_stop_now(sk_server *s)
{
    atomic_store(&s->stopping_now, 1);
}

void sk__grace_busy(sk_server *s, int delta)
{
    atomic_fetch_add(&s->shared->busy, delta);
}

void sk__announce_stop(sk_server *s, long busy)
{
    if (busy <= 0 || atomic_exchange(&s->announced, 1))
        return;
    int ms = s->o.grace_ms;
    char when[32];
    if (ms < 1000)
        snprintf(when, sizeof when, "%d ms", ms);
    else if (ms % 1000 == 0)
        snprintf(when, sizeof when, "%d s", ms / 1000);
    else
        snprintf(when, sizeof when, "%.1f s", ms / 1000.0);
    sk_server_log(s, SK_LOG_ERROR,
                  "stopping: %ld busy connection%s get%s up to %s to finish (Ctrl-C again to stop "
                  "now)",
                  busy, busy == 1 ? "" : "s", busy == 1 ? "s" : "", when);
}

int sk__stopping(sk_server *s)
{
    /* A flag read, no system call: every loop that waits also watches the
     * stop pipe and records what it sees there (sk__saw_stop). */
    return atomic_load(&s->stopping);
}

int sk_server_stopping(sk_server *s)
{
    return sk__stopping(s);
}

void sk__saw_stop(sk_server *s)
{
    note_stop_time(s);
    atomic_store(&s->stopping, 1);
}

void sk__stop_listening(sk_server *s)
{
    for (size_t i = 0; i < s->nls; i++) {
        if (s->ls[i].fd < 0)
            continue;
        if (s->is_child) { /* the socket file belongs to the parent */
            close(s->ls[i].fd);
            s->ls[i].fd = -1;
        } else {
            sk_listener_close(&s->ls[i]);
        }
    }
}

int sk__count_served(sk_server *s)
{
    unsigned long n = atomic_fetch_add(&s->served, 1) + 1;
    return s->o.once && n >= 1;
}

void sk_server_free(sk_server *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nls; i++)
        sk_listener_close(&s->ls[i]);
    free(s->ls);
    free(s->pfds);
    sk__admit_fini(s); /* access (admit.c) */
    if (s->svc->fini)
        s->svc->fini(s->svc_state);
    if (s->stop_rd >= 0)
        close(s->stop_rd);
    if (s->stop_wr >= 0)
        close(s->stop_wr);
    if (s->now_rd >= 0)
        close(s->now_rd);
    if (s->now_wr >= 0)
        close(s->now_wr);
    if (s->shared)
        munmap(s->shared, sizeof *s->shared);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    free(s);
}

const sk_server_opts *sk_server_options(const sk_server *s)
{
    return &s->o;
}

void sk_server_report(sk_server *s, const char *fmt, ...)
{
    if (s->o.report == NULL)
        return;
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        s->o.report(s->o.arg, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->o.report(s->o.arg, big, (size_t)n);
    free(big);
}

void sk_server_report_line(sk_server *s, const char *line, size_t len)
{
    if (s->o.report != NULL)
        s->o.report(s->o.arg, line, len);
}

void sk_server_log(sk_server *s, int level, const char *fmt, ...)
{
    if (s->o.log == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->o.log(s->o.arg, level, line);
}
