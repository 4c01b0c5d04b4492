/*
 * tls.c - TLS contexts: one per role, made from options, holding an OpenSSL
 * SSL_CTX with sockit's one safe policy (TLS 1.2 and 1.3, ECDHE + AEAD for
 * 1.2, no renegotiation, no compression, buffers released while idle). The
 * client context is here, with what both roles share; the server's
 * certificates are in tls_server.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls.h"

#define TLS12_SUITES                                                                               \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#ifndef SSL_OP_ENABLE_KTLS
#define SSL_OP_ENABLE_KTLS 0
#endif

/* The first OpenSSL error's text, for messages; clears the queue. */
const char *sk__tls_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}

void sk__tls_thread_end(void)
{
    OPENSSL_thread_stop();
}

/* "TLS: --cert x.pem: no such file" when the file cannot be read. */
int sk__tls_check_file(const char *opt, const char *path, int dir_ok, sk_err *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return sk_errf(err, errno, "TLS: %s %s: %s", opt, path,
                       errno == ENOENT ? "no such file" : strerror(errno));
    if (S_ISDIR(st.st_mode) && !dir_ok)
        return sk_errf(err, EISDIR, "TLS: %s %s: is a directory, not a PEM file", opt, path);
    if (!S_ISDIR(st.st_mode) && access(path, R_OK) < 0)
        return sk_errf(err, errno, "TLS: %s %s: %s", opt, path, strerror(errno));
    return 0;
}

SSL_CTX *sk__tls_ctx_new(int is_server, sk_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        sk_errf(err, ENOMEM, "TLS: cannot make a context: %s", sk__tls_reason());
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, TLS12_SUITES)) {
        sk_errf(err, EINVAL, "TLS: cannot set the protocol policy: %s", sk__tls_reason());
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_ENABLE_KTLS);
    /* Partial writes and a moving buffer: the transport's contract is a
     * writev that may take part and be retried with the rest elsewhere.
     * Released buffers: an idle connection holds none (~34 KiB each). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1". */
int sk__tls_alpn_wire(const char *list, unsigned char **out, size_t *len, sk_err *err)
{
    size_t n = strlen(list);
    unsigned char *w = malloc(n + 1);
    if (w == NULL)
        return sk_errno(err, ENOMEM, "TLS: ALPN");
    size_t o = 0;
    const char *p = list;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == 0 || l > 255) {
            free(w);
            return sk_err_usage(err, "TLS: bad ALPN list \"%s\": each protocol 1-255 bytes", list);
        }
        w[o++] = (unsigned char)l;
        memcpy(w + o, p, l);
        o += l;
        if (c == NULL)
            break;
        p = c + 1;
    }
    *out = w;
    *len = o;
    return 0;
}

char *sk__tls_strdup(const char *s, int *fail)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *fail = 1;
    return d;
}

sk_tls *sk__tls_alloc(int is_server)
{
    sk_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->is_server = is_server;
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

/* ------------------------------------------------------------------ client */

/* Where the client's trust comes from: the system store, or --ca. */
int sk__tls_load_trust(SSL_CTX *ctx, const char *ca, const char *opt, sk_err *err)
{
    if (ca == NULL) {
        if (!SSL_CTX_set_default_verify_paths(ctx))
            return sk_errf(err, EIO, "TLS: cannot load the system trust store: %s",
                           sk__tls_reason());
        return 0;
    }
    if (sk__tls_check_file(opt, ca, 1, err) < 0)
        return -1;
    struct stat st;
    int dir = stat(ca, &st) == 0 && S_ISDIR(st.st_mode);
    if (!SSL_CTX_load_verify_locations(ctx, dir ? NULL : ca, dir ? ca : NULL))
        return sk_errf(err, EINVAL, "TLS: %s %s: no usable PEM certificate (%s)", opt, ca,
                       sk__tls_reason());
    return 0;
}

static int load_client_cert(SSL_CTX *ctx, const char *cert, const char *key, sk_err *err)
{
    if (key != NULL && cert == NULL)
        return sk_err_usage(err, "TLS: --key needs --cert");
    if (cert == NULL)
        return 0;
    if (sk__tls_check_file("--cert", cert, 0, err) < 0 ||
        (key && sk__tls_check_file("--key", key, 0, err) < 0))
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return sk_errf(err, EINVAL, "TLS: --cert %s: not a PEM certificate (%s)", cert,
                       sk__tls_reason());
    if (SSL_CTX_use_PrivateKey_file(ctx, key ? key : cert, SSL_FILETYPE_PEM) != 1)
        return sk_errf(err, EINVAL, "TLS: --key %s: not a PEM private key (%s)", key ? key : cert,
                       sk__tls_reason());
    if (SSL_CTX_check_private_key(ctx) != 1)
        return sk_errf(err, EINVAL, "TLS: --key %s does not belong to --cert %s", key ? key : cert,
                       cert);
    return 0;
}

sk_tls *sk_tls_client_new(const sk_tls_client_opts *o, sk_err *err)
{
    static const sk_tls_client_opts none = {0};
    if (o == NULL)
        o = &none;
    const char *name = o->sni ? o->sni : o->host;
    if ((name == NULL || *name == '\0') && o->npins == 0 && !o->insecure) {
        sk_err_usage(err, "TLS: no server name to check the certificate against "
                          "(use --sni NAME, --pin sha256:... or --insecure)");
        return NULL;
    }
    sk_tls *t = sk__tls_alloc(0);
    if (t == NULL) {
        sk_errno(err, ENOMEM, "TLS");
        return NULL;
    }
    int fail = 0;
    t->host = sk__tls_strdup(o->host, &fail);
    t->sni = sk__tls_strdup(o->sni, &fail);
    t->insecure = o->insecure;
    if (fail || (o->npins && (t->pins = calloc(o->npins, sizeof *t->pins)) == NULL)) {
        sk_errno(err, ENOMEM, "TLS");
        goto fail;
    }
    for (size_t i = 0; i < o->npins; i++) {
        if (sk__tls_parse_pin(o->pins[i], t->pins[i]) < 0) {
            sk_err_usage(err, "TLS: bad pin \"%s\": expected sha256: and 64 hex digits",
                         o->pins[i]);
            goto fail;
        }
    }
    t->npins = o->npins;
    if ((t->ctx = sk__tls_ctx_new(0, err)) == NULL)
        goto fail;
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(t->ctx, sk__tls_verify_cb, t);
    if (sk__tls_load_trust(t->ctx, o->ca, "--ca", err) < 0 ||
        load_client_cert(t->ctx, o->cert, o->key, err) < 0)
        goto fail;
    if (o->alpn) {
        if (sk__tls_alpn_wire(o->alpn, &t->alpn, &t->alpn_len, err) < 0)
            goto fail;
        if (SSL_CTX_set_alpn_protos(t->ctx, t->alpn, (unsigned)t->alpn_len) != 0) {
            sk_errf(err, EINVAL, "TLS: cannot set ALPN: %s", sk__tls_reason());
            goto fail;
        }
    }
    return t;
fail:
    sk_tls_free(t);
    return NULL;
}

void sk_tls_free(sk_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t->host);
    free(t->sni);
    free(t->pins);
    for (size_t i = 0; i < t->npairs; i++) {
        free(t->certs[i]);
        free(t->keys[i]);
    }
    free(t->certs);
    free(t->keys);
    free(t->client_ca);
    free(t->alpn);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* ----------------------------------------------------- for the other files */

int sk__tls_client_checks(const sk_tls *t, const unsigned char (**pins)[32], size_t *npins,
                          int *insecure)
{
    *pins = (const unsigned char(*)[32])t->pins;
    *npins = t->npins;
    *insecure = t->insecure;
    return 0;
}

static int is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

SSL *sk__tls_new_ssl(sk_tls *t, int is_server, sk_err *err)
{
    if (is_server != t->is_server) {
        sk_err_usage(err, "TLS: a %s context cannot make a %s connection",
                     t->is_server ? "server" : "client", is_server ? "server" : "client");
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    if (ssl == NULL) {
        sk_errf(err, ENOMEM, "TLS: %s", sk__tls_reason());
        return NULL;
    }
    if (is_server) {
        SSL_set_accept_state(ssl);
        return ssl;
    }
    SSL_set_connect_state(ssl);
    const char *name = t->sni ? t->sni : t->host;
    int ok = 1;
    if (name && *name) {
        if (is_ip(name)) {
            /* RFC 6066: no addresses in SNI; the certificate must list the IP. */
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
        } else {
            ok = SSL_set_tlsext_host_name(ssl, name) && SSL_set1_host(ssl, name);
        }
    }
    if (!ok) {
        sk_err_usage(err, "TLS: cannot check the certificate for \"%s\": %s", name,
                     sk__tls_reason());
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}
