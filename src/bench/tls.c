/*
 * tls.c - `sockit bench --tls`: each connection's transport is a TLS client
 * (bench_cfg.tp_open), the handshake runs inside its first write and read,
 * and when a connection closes its handshake is counted, full or resumed.
 * With resumption on (the default; --no-resume turns it off) a worker keeps
 * the last resumable session it saw and offers it on its next connections,
 * as a browser or a load balancer does; closing sends a close_notify first,
 * so the session stays resumable.
 */
#include <errno.h>

#include <openssl/ssl.h>

#include "../lib/tls.h"
#include "bench.h"

int bench_tls_open(sk_tp *t, int fd, const bench_cfg *cfg)
{
    sk_err err;
    if (sk__tp_tls(t, cfg->tls, fd, 0, cfg->target, &err) < 0) {
        errno = err.code ? err.code : ENOMEM;
        return -1;
    }
    return 0;
}

void bench_tls_opened(bench_worker *w, bench_conn *c)
{
    if (w->tls_session != NULL && c->tp.ops == &sk__tp_tls_ops)
        SSL_set_session(c->tp.impl, w->tls_session);
}

void bench_tls_closing(bench_worker *w, bench_conn *c)
{
    SSL *ssl = c->tp.impl;
    if (c->tp.ops != &sk__tp_tls_ops || ssl == NULL || !SSL_is_init_finished(ssl))
        return;
    int64_t now = bench_now();
    if (now >= w->run->measure_start && now < w->run->end) {
        if (SSL_session_reused(ssl))
            w->st.tls_resumed++;
        else
            w->st.tls_full++;
    }
    if (!w->cfg->tls_resume)
        return;
    (void)sk__tp_shutdown(&c->tp); /* best effort: a session closed without it is lost */
    SSL_SESSION *s = SSL_get1_session(ssl);
    if (s != NULL && SSL_SESSION_is_resumable(s) && s != w->tls_session) {
        SSL_SESSION_free(w->tls_session);
        w->tls_session = s;
    } else {
        SSL_SESSION_free(s);
    }
}

void bench_tls_worker_free(bench_worker *w)
{
    SSL_SESSION_free(w->tls_session);
    w->tls_session = NULL;
}
