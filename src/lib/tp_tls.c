/*
 * tp_tls.c - the TLS transport: the operations of transport.h over an
 * OpenSSL SSL object (the transport's impl pointer), non-blocking throughout.
 *
 * The SSL writes through a socket BIO whose write is send(MSG_NOSIGNAL), so no
 * operation raises SIGPIPE; everything else (reads, kernel TLS controls) is
 * OpenSSL's own socket BIO, so kernel TLS still works where the kernel has it.
 */
#define _GNU_SOURCE
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "tls.h"

/* Small iovecs are copied into one record rather than sent one record each;
 * a buffer at least this large goes to SSL_write as it is (no copy). */
#define COALESCE_MAX 16384

/* ------------------------------------------------- the no-SIGPIPE socket BIO */

static BIO_METHOD *nosig_method;
static int (*sock_write)(BIO *, const char *, int);
static pthread_once_t method_once = PTHREAD_ONCE_INIT;
/* Set by tls_writev while the record being written is not the last of what
 * the caller offered: the record goes with MSG_MORE, so the kernel builds
 * full segments from several records instead of a packet each (fewer
 * packets, fewer wakeups of the receiver); the last record goes without it,
 * which pushes everything out. Per thread: a BIO write runs inside the SSL
 * call. */
static _Thread_local int more_records;

static int nosig_write(BIO *b, const char *buf, int len)
{
    if (BIO_get_ktls_send(b))
        return sock_write(b, buf, len); /* kernel TLS control messages need it */
    int fd = -1;
    BIO_get_fd(b, &fd);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = send(fd, buf, (size_t)len, MSG_NOSIGNAL | (more_records ? MSG_MORE : 0));
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)
            BIO_set_retry_write(b);
        return -1;
    }
}

static void method_init(void)
{
    const BIO_METHOD *s = BIO_s_socket();
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "sockit socket");
    if (m == NULL)
        return;
    sock_write = BIO_meth_get_write(s);
    if (!BIO_meth_set_write(m, nosig_write) || !BIO_meth_set_read(m, BIO_meth_get_read(s)) ||
        !BIO_meth_set_puts(m, BIO_meth_get_puts(s)) ||
        !BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(s)) ||
        !BIO_meth_set_create(m, BIO_meth_get_create(s)) ||
        !BIO_meth_set_destroy(m, BIO_meth_get_destroy(s))) {
        BIO_meth_free(m);
        return;
    }
    nosig_method = m;
}

/* ------------------------------------- the heap after a burst of handshakes */

/* A handshake allocates and frees far more than the connection keeps (its
 * buffers, the key exchange, the transcript), interleaved with what stays,
 * so after a burst of handshakes the heap is left with free holes among
 * the idle connections' state, resident until something reuses them. When
 * the last server handshake in progress ends and enough have completed
 * since the last time, the free pages go back to the kernel (glibc's
 * malloc_trim). Never while handshakes are in progress, and at most once
 * per TRIM_EVERY completed handshakes: a trim walks the whole heap. */
#define TRIM_EVERY 256

static atomic_long hs_in_progress, hs_since_trim;

static void handshake_begins(struct sk__tls_conn_state *s)
{
    s->in_handshake = 1;
    atomic_fetch_add(&hs_in_progress, 1);
}

static void handshake_ends(SSL *ssl, int completed)
{
    struct sk__tls_conn_state *s = ssl ? SSL_get_ex_data(ssl, sk__tls_conn_index()) : NULL;
    if (s == NULL || !s->in_handshake)
        return;
    s->in_handshake = 0;
    long done = completed ? atomic_fetch_add(&hs_since_trim, 1) + 1 : atomic_load(&hs_since_trim);
    if (atomic_fetch_sub(&hs_in_progress, 1) == 1 && done >= TRIM_EVERY) {
        atomic_store(&hs_since_trim, 0);
#ifdef __GLIBC__
        malloc_trim(0);
#endif
    }
}

/* ---------------------------------------------------------------- the ops */

static SSL *ssl_of(const sk_tp *t)
{
    return t->impl;
}

/* The result of an SSL call that did not succeed (r <= 0); e0 is errno just
 * after it. Sets t->want for SK_TP_AGAIN, errno for SK_TP_ERR. */
static ssize_t failed(sk_tp *t, int r, int e0, int *retry)
{
    SSL *ssl = ssl_of(t);
    int e = SSL_get_error(ssl, r);
    *retry = 0;
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        if (e0 == EINTR) {
            *retry = 1; /* a signal, not a full or empty socket */
            return SK_TP_AGAIN;
        }
        t->want = e == SSL_ERROR_WANT_READ ? SK_TP_WANT_READ : SK_TP_WANT_WRITE;
        return SK_TP_AGAIN;
    case SSL_ERROR_ZERO_RETURN: return 0; /* close_notify: the end of the stream */
    default:
        errno = e0;
        errno = sk__tls_explain(ssl, e);
        return SK_TP_ERR;
    }
}

static ssize_t tls_read(sk_tp *t, void *buf, size_t cap)
{
    for (;;) {
        size_t n = 0;
        errno = 0;
        int r = SSL_read_ex(ssl_of(t), buf, cap, &n);
        if (r == 1)
            return (ssize_t)n;
        int retry;
        ssize_t x = failed(t, r, errno, &retry);
        if (!retry)
            return x;
    }
}

static ssize_t tls_writev(sk_tp *t, const struct iovec *iov, int iovcnt, unsigned flags)
{
    (void)flags;
    char small[COALESCE_MAX];
    const void *p;
    size_t len;
    if (iovcnt == 1 || (iovcnt > 0 && iov[0].iov_len >= COALESCE_MAX)) {
        p = iov[0].iov_base;
        len = iov[0].iov_len;
    } else {
        /* Deterministic for the same bytes: a retry after SK_TP_AGAIN copies
         * the same prefix again, as SSL_write requires. */
        len = 0;
        for (int i = 0; i < iovcnt && len < sizeof small; i++) {
            size_t k = iov[i].iov_len;
            if (k > sizeof small - len)
                k = sizeof small - len;
            memcpy(small + len, iov[i].iov_base, k);
            len += k;
        }
        p = small;
    }
    if (len == 0)
        return 0;
    /* With partial writes, SSL_write_ex takes one record (16 KiB) a call.
     * When more than that is offered, the caller calls again at once with
     * the rest: this record may wait in the kernel for the next one. A
     * retry after SK_TP_AGAIN offers the same bytes (SSL_write's rule), and
     * a record is never left pending behind a count of bytes taken. */
    for (;;) {
        size_t n = 0;
        errno = 0;
        more_records = len > SSL3_RT_MAX_PLAIN_LENGTH;
        int r = SSL_write_ex(ssl_of(t), p, len, &n);
        more_records = 0;
        if (r == 1)
            return (ssize_t)n;
        int retry;
        ssize_t x = failed(t, r, errno, &retry);
        if (!retry)
            return x == 0 ? (errno = EPIPE, SK_TP_ERR) : x;
    }
}

static ssize_t tls_sendfile(sk_tp *t, int fd, off_t *off, size_t len, unsigned flags)
{
#ifndef OPENSSL_NO_KTLS
    SSL *ssl = ssl_of(t);
    if (!(flags & SK_TP_PIPE) && BIO_get_ktls_send(SSL_get_wbio(ssl))) {
        off_t pos = off ? *off : lseek(fd, 0, SEEK_CUR);
        if (pos < 0)
            return SK_TP_UNSUPPORTED;
        for (;;) {
            errno = 0;
            ossl_ssize_t n = SSL_sendfile(ssl, fd, pos, len, 0);
            if (n > 0) {
                if (off)
                    *off += n;
                else if (lseek(fd, pos + n, SEEK_SET) < 0)
                    return SK_TP_ERR;
                return n;
            }
            int retry;
            ssize_t x = failed(t, (int)n, errno, &retry);
            if (!retry)
                return x;
        }
    }
#else
    (void)t, (void)fd, (void)off, (void)len, (void)flags;
#endif
    return SK_TP_UNSUPPORTED; /* the caller reads the file and writes it */
}

static int tls_shutdown(sk_tp *t)
{
    SSL *ssl = ssl_of(t);
    for (;;) {
        errno = 0;
        int r = SSL_shutdown(ssl); /* 0: close_notify sent; 1: and the peer's received */
        if (r >= 0)
            break;
        int retry;
        ssize_t x = failed(t, r, errno, &retry);
        if (retry)
            continue;
        return x == SK_TP_AGAIN ? SK_TP_AGAIN : SK_TP_ERR;
    }
    if (shutdown(t->fd, SHUT_WR) < 0 && errno != ENOTCONN && errno != ENOTSOCK)
        return SK_TP_ERR;
    return 0;
}

static void tls_close(sk_tp *t)
{
    handshake_ends(ssl_of(t), 0);
    SSL_free(ssl_of(t)); /* frees the BIO and the per-connection state */
    t->impl = NULL;
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

static size_t tls_buffered(const sk_tp *t)
{
    int n = SSL_pending(ssl_of(t));
    return n > 0 ? (size_t)n : 0;
}

const sk_tp_ops sk__tp_tls_ops = {
    .name = "tls",
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = tls_sendfile,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .buffered = tls_buffered,
};

int sk__tp_tls(sk_tp *t, sk_tls *ctx, int fd, int is_server, const char *peer_name_for_errors,
               sk_err *err)
{
    pthread_once(&method_once, method_init);
    if (nosig_method == NULL)
        return sk_errf(err, ENOMEM, "TLS: cannot make the socket BIO");
    SSL *ssl = sk__tls_new_ssl(ctx, is_server, err);
    if (ssl == NULL)
        return -1;
    const char *peer = peer_name_for_errors ? peer_name_for_errors : "";
    size_t pl = strlen(peer);
    struct sk__tls_conn_state *s = calloc(1, sizeof *s + pl + 1);
    BIO *b = BIO_new(nosig_method);
    if (s == NULL || b == NULL || !SSL_set_ex_data(ssl, sk__tls_conn_index(), s)) {
        free(s);
        BIO_free(b);
        SSL_free(ssl);
        ERR_clear_error();
        return sk_errno(err, ENOMEM, "TLS");
    }
    memcpy(s->peer, peer, pl + 1);
    if (is_server)
        handshake_begins(s);
    BIO_set_fd(b, fd, BIO_NOCLOSE);
    SSL_set_bio(ssl, b, b);
    t->ops = &sk__tp_tls_ops;
    t->impl = ssl;
    t->fd = fd;
    t->want = 0;
    return 0;
}

int sk__tp_tls_handshake(sk_tp *t)
{
    for (;;) {
        errno = 0;
        int r = SSL_do_handshake(ssl_of(t));
        if (r == 1) {
            handshake_ends(ssl_of(t), 1);
            return 1;
        }
        int retry;
        ssize_t x = failed(t, r, errno, &retry);
        if (retry)
            continue;
        if (x == 0) { /* close_notify during the handshake */
            sk__tls_fail(ssl_of(t), "TLS: the peer closed the connection during the handshake");
            errno = EPROTO;
            return SK_TP_ERR;
        }
        return (int)x;
    }
}

const char *sk__tp_tls_error(const sk_tp *t)
{
    if (t->ops != &sk__tp_tls_ops || t->impl == NULL)
        return NULL;
    struct sk__tls_conn_state *s = SSL_get_ex_data(ssl_of(t), sk__tls_conn_index());
    return s ? s->msg : NULL;
}

const char *sk__tp_tls_version(const sk_tp *t)
{
    return SSL_is_init_finished(ssl_of(t)) ? SSL_get_version(ssl_of(t)) : "";
}

const char *sk__tp_tls_cipher(const sk_tp *t)
{
    const char *c = SSL_get_cipher_name(ssl_of(t));
    return c && SSL_is_init_finished(ssl_of(t)) ? c : "";
}

const char *sk__tp_tls_alpn(const sk_tp *t, char *buf, size_t cap)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl_of(t), &p, &n);
    if (cap == 0)
        return "";
    if (n >= cap)
        n = (unsigned)cap - 1;
    if (n)
        memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

const char *sk__tp_tls_peer_subject(const sk_tp *t, char *buf, size_t cap)
{
    SSL *ssl = ssl_of(t);
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (cap == 0)
        return "";
    buf[0] = '\0';
    /* Only a certificate that was checked names anybody. */
    if (x && SSL_get_verify_result(ssl) == X509_V_OK) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
            int n = BIO_read(b, buf, (int)cap - 1);
            buf[n > 0 ? n : 0] = '\0';
        }
        BIO_free(b);
    }
    return buf;
}

int sk__tp_tls_resumed(const sk_tp *t)
{
    return SSL_session_reused(ssl_of(t));
}

int sk__tp_tls_ktls(const sk_tp *t)
{
    return BIO_get_ktls_send(SSL_get_wbio(ssl_of(t))) ? 1 : 0;
}
