/*
 * policy.c - when a connection must be looked at, and what it waits for:
 * the service timer, the idle timeout, the lingering close and the grace
 * period at stop, written once for every model (the blocking driver turns
 * the deadline into a poll() timeout, the event loops into a heap timer).
 */
#include "engine.h"

/* At stop, a connection with nothing in flight is idle and goes at once,
 * unless it was active in the last second: then its client may be sending
 * right now (a request on a connection accepted just before the stop, or the
 * next request on a keep-alive connection), and closing it would fail that
 * request. Under a steady load every connection is such a one, so a restart
 * would drop requests. These get until a second after their last I/O, and
 * at most a second after the stop began (http answers what comes with
 * "Connection: close"); the grace period bounds it too. */
#define SK_QUIET_MS 1000

static int64_t settle_deadline(const sk_conn *c)
{
    int64_t stop = (int64_t)atomic_load(&c->srv->stop_ms);
    int64_t d = c->last_io_ms + SK_QUIET_MS;
    if (stop > 0 && stop + SK_QUIET_MS < d)
        d = stop + SK_QUIET_MS;
    return d;
}

static int fresh(const sk_conn *c, int64_t now)
{
    return !(c->flags & (SK_C_EOF | SK_C_CLOSING | SK_C_DEAD | SK_C_WSHUT)) &&
           now < settle_deadline(c);
}

static int64_t earliest(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

int64_t sk__conn_next_deadline(const sk_conn *c, int64_t now, int64_t grace_deadline)
{
    int64_t d = grace_deadline;
    if (grace_deadline >= 0 && sk__conn_idle(c) && fresh(c, now))
        d = earliest(d, settle_deadline(c));
    if (c->flags & SK_C_PROXY) /* the PROXY header's deadline (conn_proxy.c) */
        d = earliest(d, c->started_ms + c->srv->o.proxy_timeout_ms);
    if (c->flags & SK_C_HANDSHAKE)
        d = earliest(d, c->started_ms + c->srv->o.tls_handshake_timeout_ms);
    if (c->flags & SK_C_TIMER)
        d = earliest(d, sk__conn_timer_deadline(c, now));
    if (c->flags & SK_C_WSHUT)
        d = earliest(d, c->last_io_ms + SK_LINGER_MS);
    else if (c->srv->o.idle_timeout_ms > 0)
        d = earliest(d, c->last_io_ms + c->srv->o.idle_timeout_ms);
    return d;
}

int sk__conn_expired(sk_conn *c, int64_t now, int64_t grace_deadline)
{
    sk_server *s = c->srv;
    if ((c->flags & SK_C_PROXY) && now - c->started_ms >= s->o.proxy_timeout_ms) {
        if (s->o.verbose)
            sk_server_log(s, SK_LOG_INFO, "PROXY header timeout: %s", sk_conn_peer_name(c));
        return SK_EXP_CLOSE;
    }
    if ((c->flags & SK_C_HANDSHAKE) && now - c->started_ms >= s->o.tls_handshake_timeout_ms) {
        if (s->o.verbose)
            sk_server_log(s, SK_LOG_INFO, "TLS handshake timeout: %s", sk_conn_peer_name(c));
        return SK_EXP_CLOSE;
    }
    if (c->flags & SK_C_WSHUT) {
        if (now - c->last_io_ms >= SK_LINGER_MS)
            return SK_EXP_CLOSE; /* the peer never sent its FIN: close anyway */
    } else if (s->o.idle_timeout_ms > 0 && now - c->last_io_ms >= s->o.idle_timeout_ms) {
        if (s->o.verbose)
            sk_server_log(s, SK_LOG_INFO, "idle timeout: %s", sk_conn_peer_name(c));
        return SK_EXP_CLOSE;
    }
    if (grace_deadline >= 0 && (now >= grace_deadline || sk__conn_may_stop(c)))
        return SK_EXP_CLOSE;
    if (sk__conn_check_timer(c, now))
        return SK_EXP_RAN; /* the service acted (e.g. answered 408): write, then decide */
    return SK_EXP_NONE;
}

unsigned sk__conn_interest(const sk_conn *c)
{
    unsigned m = 0;
    if (c->flags & SK_C_PROXY)
        return SK_TP_WANT_READ;    /* the PROXY header, read before anything else */
    if (c->flags & SK_C_HANDSHAKE) /* only the handshake's own wish */
        return c->tp.want ? c->tp.want : SK_TP_WANT_READ;
    if (c->flags & SK_C_SHUT_AGAIN)
        m |= c->tp.want; /* our close_notify waits (see conn_io.c) */
    int r = sk__conn_wants_read(c), w = sk__conn_wants_write(c);
    if (r || (w && (c->flags & SK_C_WR_WANTS_R)))
        m |= SK_TP_WANT_READ;
    if (w || (r && (c->flags & SK_C_RD_WANTS_W)))
        m |= SK_TP_WANT_WRITE;
    return m;
}

int sk__conn_may_stop(sk_conn *c)
{
    return sk__conn_idle(c) && !fresh(c, sk_now_ms());
}
