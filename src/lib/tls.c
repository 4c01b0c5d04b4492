/*
 * tls.c - TLS contexts: one per role, made from options, holding an OpenSSL
 * SSL_CTX with sockit's one safe policy (TLS 1.2 and 1.3, ECDHE + AEAD for
 * 1.2, no renegotiation, no compression, buffers released while idle).
 *
 * A server's certificates live in a "generation" (its SSL_CTX plus the loaded
 * pairs) so that a reload builds a whole new one and swaps a pointer under a
 * lock: connections already made keep the SSL_CTX they started with
 * (reference counted), and a bad new file leaves the old generation in use.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls.h"

#define TLS12_SUITES                                                                               \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#ifndef SSL_OP_ENABLE_KTLS
#define SSL_OP_ENABLE_KTLS 0
#endif

struct pair {
    X509 *leaf;
    EVP_PKEY *key;
    STACK_OF(X509) * chain;
};

/* A server's loaded certificates; freed with its SSL_CTX (ex_data). */
struct gen {
    struct pair *pairs;
    size_t npairs;
    unsigned char *alpn; /* wire format; a copy, so the callback needs no sk_tls */
    size_t alpn_len;
};

struct sk_tls {
    int is_server;
    pthread_mutex_t lock; /* guards ctx (swapped by reload) */
    SSL_CTX *ctx;
    /* client */
    char *host, *sni;
    unsigned char (*pins)[32];
    size_t npins;
    int insecure;
    /* server: the options, kept for reload */
    char **certs, **keys;
    size_t npairs;
    char *client_ca;
    int require_client_cert;
    unsigned char *alpn; /* wire format (length-prefixed) */
    size_t alpn_len;
    int ephemeral;
    char fingerprint[80];
};

static int gen_index = -1;
static pthread_once_t gen_once = PTHREAD_ONCE_INIT;

static void pairs_free(struct pair *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        X509_free(p[i].leaf);
        EVP_PKEY_free(p[i].key);
        sk_X509_pop_free(p[i].chain, X509_free);
    }
    free(p);
}

static void gen_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    struct gen *g = ptr;
    if (g) {
        pairs_free(g->pairs, g->npairs);
        free(g->alpn);
        free(g);
    }
}

static void gen_index_init(void)
{
    gen_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, gen_free);
}

/* The first OpenSSL error's text, for messages; clears the queue. */
static const char *ossl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}

/* "TLS: --cert x.pem: no such file" when the file cannot be read. */
static int check_file(const char *opt, const char *path, int dir_ok, sk_err *err)
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

static SSL_CTX *ctx_new(int is_server, sk_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        sk_errf(err, ENOMEM, "TLS: cannot make a context: %s", ossl_reason());
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, TLS12_SUITES)) {
        sk_errf(err, EINVAL, "TLS: cannot set the protocol policy: %s", ossl_reason());
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
static int alpn_wire(const char *list, unsigned char **out, size_t *len, sk_err *err)
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

static char *dup_or_null(const char *s, int *fail)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *fail = 1;
    return d;
}

static sk_tls *tls_alloc(int is_server)
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
static int load_trust(SSL_CTX *ctx, const char *ca, const char *opt, sk_err *err)
{
    if (ca == NULL) {
        if (!SSL_CTX_set_default_verify_paths(ctx))
            return sk_errf(err, EIO, "TLS: cannot load the system trust store: %s", ossl_reason());
        return 0;
    }
    if (check_file(opt, ca, 1, err) < 0)
        return -1;
    struct stat st;
    int dir = stat(ca, &st) == 0 && S_ISDIR(st.st_mode);
    if (!SSL_CTX_load_verify_locations(ctx, dir ? NULL : ca, dir ? ca : NULL))
        return sk_errf(err, EINVAL, "TLS: %s %s: no usable PEM certificate (%s)", opt, ca,
                       ossl_reason());
    return 0;
}

static int load_client_cert(SSL_CTX *ctx, const char *cert, const char *key, sk_err *err)
{
    if (key != NULL && cert == NULL)
        return sk_err_usage(err, "TLS: --key needs --cert");
    if (cert == NULL)
        return 0;
    if (check_file("--cert", cert, 0, err) < 0 || (key && check_file("--key", key, 0, err) < 0))
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return sk_errf(err, EINVAL, "TLS: --cert %s: not a PEM certificate (%s)", cert,
                       ossl_reason());
    if (SSL_CTX_use_PrivateKey_file(ctx, key ? key : cert, SSL_FILETYPE_PEM) != 1)
        return sk_errf(err, EINVAL, "TLS: --key %s: not a PEM private key (%s)", key ? key : cert,
                       ossl_reason());
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
    sk_tls *t = tls_alloc(0);
    if (t == NULL) {
        sk_errno(err, ENOMEM, "TLS");
        return NULL;
    }
    int fail = 0;
    t->host = dup_or_null(o->host, &fail);
    t->sni = dup_or_null(o->sni, &fail);
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
    if ((t->ctx = ctx_new(0, err)) == NULL)
        goto fail;
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(t->ctx, sk__tls_verify_cb, t);
    if (load_trust(t->ctx, o->ca, "--ca", err) < 0 ||
        load_client_cert(t->ctx, o->cert, o->key, err) < 0)
        goto fail;
    if (o->alpn) {
        if (alpn_wire(o->alpn, &t->alpn, &t->alpn_len, err) < 0)
            goto fail;
        if (SSL_CTX_set_alpn_protos(t->ctx, t->alpn, (unsigned)t->alpn_len) != 0) {
            sk_errf(err, EINVAL, "TLS: cannot set ALPN: %s", ossl_reason());
            goto fail;
        }
    }
    return t;
fail:
    sk_tls_free(t);
    return NULL;
}

/* ------------------------------------------------------------------ server */

/* Read one PEM pair: leaf, chain, key; checked to belong together. */
static int load_pair(const char *cert, const char *key, struct pair *p, sk_err *err)
{
    if (check_file("--cert", cert, 0, err) < 0 || (key && check_file("--key", key, 0, err) < 0))
        return -1;
    BIO *b = BIO_new_file(cert, "r");
    if (b == NULL)
        return sk_errf(err, EIO, "TLS: --cert %s: %s", cert, ossl_reason());
    p->leaf = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
    p->chain = sk_X509_new_null();
    X509 *x;
    while (p->leaf && p->chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(p->chain, x))
            X509_free(x);
    }
    ERR_clear_error(); /* the end of the file reads as "no start line" */
    BIO_free(b);
    if (p->leaf == NULL || p->chain == NULL)
        return sk_errf(err, EINVAL, "TLS: --cert %s: no PEM certificate in it", cert);
    const char *kf = key ? key : cert;
    b = BIO_new_file(kf, "r");
    p->key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (p->key == NULL) {
        ERR_clear_error();
        return sk_errf(err, EINVAL, "TLS: --key %s: no PEM private key in it (unencrypted)", kf);
    }
    if (X509_check_private_key(p->leaf, p->key) != 1) {
        ERR_clear_error();
        return sk_errf(err, EINVAL, "TLS: --key %s does not belong to --cert %s", kf, cert);
    }
    return 0;
}

/* ECDSA P-256, self-signed, for localhost, 127.0.0.1 and ::1; valid from an
 * hour ago (clock skew) for 30 days. */
static int make_ephemeral(struct pair *p, sk_err *err)
{
    p->key = EVP_EC_gen("P-256");
    p->leaf = X509_new();
    p->chain = sk_X509_new_null();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX v3;
    X509_EXTENSION *san = NULL, *eku = NULL;
    int ok = p->key && p->leaf && p->chain && name && X509_set_version(p->leaf, 2) &&
             ASN1_INTEGER_set_int64(X509_get_serialNumber(p->leaf), (int64_t)time(NULL)) &&
             X509_gmtime_adj(X509_getm_notBefore(p->leaf), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(p->leaf), 30L * 86400) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"localhost", -1, -1, 0) &&
             X509_set_subject_name(p->leaf, name) && X509_set_issuer_name(p->leaf, name) &&
             X509_set_pubkey(p->leaf, p->key);
    if (ok) {
        X509V3_set_ctx(&v3, p->leaf, p->leaf, NULL, NULL, 0);
        san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
                                  "DNS:localhost,IP:127.0.0.1,IP:::1");
        eku = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "serverAuth");
        ok = san && eku && X509_add_ext(p->leaf, san, -1) && X509_add_ext(p->leaf, eku, -1) &&
             X509_sign(p->leaf, p->key, EVP_sha256()) > 0;
    }
    X509_EXTENSION_free(san);
    X509_EXTENSION_free(eku);
    X509_NAME_free(name);
    if (!ok)
        return sk_errf(err, EIO, "TLS: cannot make an ephemeral certificate: %s", ossl_reason());
    return 0;
}

/* SNI: the first pair whose certificate names match; else the default. */
static int cert_cb(SSL *ssl, void *arg)
{
    (void)arg;
    struct gen *g = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), gen_index);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (g == NULL || g->npairs < 2 || name == NULL)
        return 1;
    for (size_t i = 0; i < g->npairs; i++) {
        if (X509_check_host(g->pairs[i].leaf, name, 0, 0, NULL) == 1) {
            if (i > 0 && SSL_use_cert_and_key(ssl, g->pairs[i].leaf, g->pairs[i].key,
                                              g->pairs[i].chain, 1) != 1)
                return 0;
            return 1;
        }
    }
    return 1;
}

/* RFC 7301: the first of our protocols the client offers; none in common is
 * a fatal no_application_protocol alert. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)arg;
    struct gen *g = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), gen_index);
    unsigned char *o = NULL;
    if (g == NULL || g->alpn == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&o, outlen, g->alpn, (unsigned)g->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

/* A complete server SSL_CTX from the options (a new generation). */
static SSL_CTX *server_build(sk_tls *t, struct pair *eph, sk_err *err)
{
    pthread_once(&gen_once, gen_index_init);
    struct gen *g = calloc(1, sizeof *g);
    size_t n = eph ? 1 : t->npairs;
    if (g == NULL || (g->pairs = calloc(n, sizeof *g->pairs)) == NULL) {
        free(g);
        sk_errno(err, ENOMEM, "TLS");
        return NULL;
    }
    SSL_CTX *ctx = NULL;
    if (t->alpn) {
        if ((g->alpn = malloc(t->alpn_len)) == NULL) {
            sk_errno(err, ENOMEM, "TLS");
            goto fail;
        }
        memcpy(g->alpn, t->alpn, t->alpn_len);
        g->alpn_len = t->alpn_len;
    }
    if (eph) {
        g->pairs[0] = *eph;
        /* shared with the sk_tls's own copy: take references */
        X509_up_ref(eph->leaf);
        EVP_PKEY_up_ref(eph->key);
        g->pairs[0].chain = sk_X509_new_null();
        g->npairs = 1;
    } else {
        for (; g->npairs < n; g->npairs++)
            if (load_pair(t->certs[g->npairs], t->keys[g->npairs], &g->pairs[g->npairs], err) < 0) {
                g->npairs++;
                goto fail;
            }
    }
    if ((ctx = ctx_new(1, err)) == NULL)
        goto fail;
    if (!SSL_CTX_set_ex_data(ctx, gen_index, g)) {
        sk_errno(err, ENOMEM, "TLS");
        goto fail;
    }
    g = NULL; /* owned by ctx now */
    struct gen *cg = SSL_CTX_get_ex_data(ctx, gen_index);
    if (SSL_CTX_use_cert_and_key(ctx, cg->pairs[0].leaf, cg->pairs[0].key, cg->pairs[0].chain, 1) !=
        1) {
        sk_errf(err, EINVAL, "TLS: cannot use the certificate: %s", ossl_reason());
        goto fail;
    }
    SSL_CTX_set_cert_cb(ctx, cert_cb, NULL);
    /* Resumption: tickets (OpenSSL's keys) and the internal cache; the id
     * context is what makes resumption allowed when client certs are verified. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"sockit", 6);
    if (t->client_ca) {
        if (load_trust(ctx, t->client_ca, "--client-ca", err) < 0)
            goto fail;
        struct stat st;
        if (stat(t->client_ca, &st) == 0 && !S_ISDIR(st.st_mode)) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca);
            if (names)
                SSL_CTX_set_client_CA_list(ctx, names);
            ERR_clear_error();
        }
        SSL_CTX_set_verify(
            ctx, SSL_VERIFY_PEER | (t->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
            sk__tls_server_verify_cb);
    }
    if (t->alpn)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
fail:
    if (g)
        gen_free(NULL, g, NULL, 0, 0, NULL);
    SSL_CTX_free(ctx);
    return NULL;
}

sk_tls *sk_tls_server_new(const sk_tls_server_opts *o, sk_err *err)
{
    static const sk_tls_server_opts none = {0};
    if (o == NULL)
        o = &none;
    if (o->require_client_cert && o->client_ca == NULL) {
        sk_err_usage(err, "TLS: --require-client-cert needs --client-ca FILE");
        return NULL;
    }
    sk_tls *t = tls_alloc(1);
    if (t == NULL) {
        sk_errno(err, ENOMEM, "TLS");
        return NULL;
    }
    int fail = 0;
    if (o->npairs) {
        t->certs = calloc(o->npairs, sizeof *t->certs);
        t->keys = calloc(o->npairs, sizeof *t->keys);
        fail = t->certs == NULL || t->keys == NULL;
        for (size_t i = 0; !fail && i < o->npairs; i++) {
            if (o->pairs[i].cert == NULL) {
                sk_err_usage(err, "TLS: --key without --cert");
                goto fail;
            }
            t->certs[i] = dup_or_null(o->pairs[i].cert, &fail);
            t->keys[i] = dup_or_null(o->pairs[i].key, &fail);
            t->npairs = i + 1;
        }
    }
    t->client_ca = dup_or_null(o->client_ca, &fail);
    t->require_client_cert = o->require_client_cert;
    if (fail) {
        sk_errno(err, ENOMEM, "TLS");
        goto fail;
    }
    if (o->alpn && alpn_wire(o->alpn, &t->alpn, &t->alpn_len, err) < 0)
        goto fail;
    struct pair eph = {0};
    if (t->npairs == 0) {
        if (make_ephemeral(&eph, err) < 0) {
            X509_free(eph.leaf);
            EVP_PKEY_free(eph.key);
            sk_X509_free(eph.chain);
            goto fail;
        }
        t->ephemeral = 1;
    }
    t->ctx = server_build(t, t->ephemeral ? &eph : NULL, err);
    if (t->ctx) {
        struct gen *g = SSL_CTX_get_ex_data(t->ctx, gen_index);
        if (sk__tls_spki_sha256(g->pairs[0].leaf, t->fingerprint, NULL) < 0)
            t->fingerprint[0] = '\0';
    }
    if (t->ephemeral) {
        X509_free(eph.leaf);
        EVP_PKEY_free(eph.key);
        sk_X509_free(eph.chain);
    }
    if (t->ctx == NULL)
        goto fail;
    return t;
fail:
    sk_tls_free(t);
    return NULL;
}

int sk_tls_reload(sk_tls *t, sk_err *err)
{
    if (t == NULL || !t->is_server)
        return sk_err_usage(err, "TLS: only a server's certificates can be reloaded");
    if (t->ephemeral)
        return 0; /* nothing on disk to re-read */
    SSL_CTX *n = server_build(t, NULL, err);
    if (n == NULL)
        return -1;
    char fp[sizeof t->fingerprint];
    struct gen *g = SSL_CTX_get_ex_data(n, gen_index);
    if (sk__tls_spki_sha256(g->pairs[0].leaf, fp, NULL) < 0)
        fp[0] = '\0';
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx;
    t->ctx = n;
    memcpy(t->fingerprint, fp, sizeof fp);
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old); /* live connections hold their own references */
    return 0;
}

int sk_tls_fingerprint(const sk_tls *t, char *buf, size_t cap)
{
    if (t == NULL || t->fingerprint[0] == '\0' || cap < 72)
        return -1;
    pthread_mutex_lock((pthread_mutex_t *)&t->lock);
    size_t n = strlen(t->fingerprint);
    memcpy(buf, t->fingerprint, n + 1);
    pthread_mutex_unlock((pthread_mutex_t *)&t->lock);
    return (int)n;
}

int sk_tls_is_ephemeral(const sk_tls *t)
{
    return t && t->ephemeral;
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
        sk_errf(err, ENOMEM, "TLS: %s", ossl_reason());
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
        sk_err_usage(err, "TLS: cannot check the certificate for \"%s\": %s", name, ossl_reason());
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}
