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
    sk_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        sk_errno(err, ENOMEM, "server");
        return NULL;
    }
    s->o = *o;
    s->svc = o->service;
    s->model = m;
    s->o.model = m;
    if (s->o.idle_timeout_ms == 0)
        s->o.idle_timeout_ms = s->svc->idle_timeout_ms; /* the service's default (http) */
    s->stop_rd = s->stop_wr = s->spare_fd = -1;
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        sk_errno(err, errno, "pipe");
        free(s);
        return NULL;
    }
    s->stop_rd = p[0];
    s->stop_wr = p[1];
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
    if (s->nls == s->capls) {
        size_t cap = s->capls ? s->capls * 2 : 4;
        sk_listener *n = realloc(s->ls, cap * sizeof *n);
        if (n == NULL)
            return sk_errno(err, ENOMEM, "listener");
        s->ls = n;
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

int sk_server_run(sk_server *s, sk_err *err)
{
    if (s->nls == 0)
        return sk_err_usage(err, "no address to serve on");
    return s->model->run(s, err);
}

void sk_server_stop(sk_server *s)
{
    /* Async-signal-safe: a flag and one write. The byte is never read back,
     * so the pipe stays readable for every process and thread polling it. */
    if (s == NULL || s->is_child)
        return;
    int e = errno;
    if (atomic_exchange(&s->stopping, 1) == 0) {
        ssize_t r = write(s->stop_wr, "x", 1);
        (void)r;
    }
    errno = e;
}

int sk__stopping(sk_server *s)
{
    /* A flag read, no system call: every loop that waits also watches the
     * stop pipe and records what it sees there (sk__saw_stop). */
    return atomic_load(&s->stopping);
}

void sk__saw_stop(sk_server *s)
{
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
    sk__admit_fini(s); /* access (admit.c) */
    if (s->svc->fini)
        s->svc->fini(s->svc_state);
    if (s->stop_rd >= 0)
        close(s->stop_rd);
    if (s->stop_wr >= 0)
        close(s->stop_wr);
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

void sk__log_conn_open(sk_conn *c)
{
    sk_server_log(c->srv, SK_LOG_INFO, "connection from %s", sk_conn_peer_name(c));
}
