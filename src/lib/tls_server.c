/*
 * tls_server.c - a server's TLS context: its certificate/key pairs (chosen by
 * the client's SNI), or an ephemeral self-signed one; client certificates,
 * ALPN, session resumption, and reload.
 *
 * A server's certificates live in a "generation" (its SSL_CTX plus the loaded
 * pairs) so that a reload builds a whole new one and swaps a pointer under a
 * lock: connections already made keep the SSL_CTX they started with
 * (reference counted), and a bad new file leaves the old generation in use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls.h"

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

/* ------------------------------------------------------------------ server */

/* Read one PEM pair: leaf, chain, key; checked to belong together. */
static int load_pair(const char *cert, const char *key, struct pair *p, sk_err *err)
{
    if (sk__tls_check_file("--cert", cert, 0, err) < 0 ||
        (key && sk__tls_check_file("--key", key, 0, err) < 0))
        return -1;
    BIO *b = BIO_new_file(cert, "r");
    if (b == NULL)
        return sk_errf(err, EIO, "TLS: --cert %s: %s", cert, sk__tls_reason());
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
        return sk_errf(err, EIO, "TLS: cannot make an ephemeral certificate: %s", sk__tls_reason());
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
    if ((ctx = sk__tls_ctx_new(1, err)) == NULL)
        goto fail;
    if (!SSL_CTX_set_ex_data(ctx, gen_index, g)) {
        sk_errno(err, ENOMEM, "TLS");
        goto fail;
    }
    g = NULL; /* owned by ctx now */
    struct gen *cg = SSL_CTX_get_ex_data(ctx, gen_index);
    if (SSL_CTX_use_cert_and_key(ctx, cg->pairs[0].leaf, cg->pairs[0].key, cg->pairs[0].chain, 1) !=
        1) {
        sk_errf(err, EINVAL, "TLS: cannot use the certificate: %s", sk__tls_reason());
        goto fail;
    }
    SSL_CTX_set_cert_cb(ctx, cert_cb, NULL);
    /* Resumption by tickets only (OpenSSL's keys, per context): stateless,
     * so every process of a forking model resumes what another made, and a
     * full handshake stores nothing (an internal cache would, under a lock,
     * and only for its own process): as nginx's default. The id context is
     * what makes resumption allowed when client certs are verified. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"sockit", 6);
    if (t->client_ca) {
        if (sk__tls_load_trust(ctx, t->client_ca, "--client-ca", err) < 0)
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
    sk_tls *t = sk__tls_alloc(1);
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
            t->certs[i] = sk__tls_strdup(o->pairs[i].cert, &fail);
            t->keys[i] = sk__tls_strdup(o->pairs[i].key, &fail);
            t->npairs = i + 1;
        }
    }
    t->client_ca = sk__tls_strdup(o->client_ca, &fail);
    t->require_client_cert = o->require_client_cert;
    if (fail) {
        sk_errno(err, ENOMEM, "TLS");
        goto fail;
    }
    if (o->alpn && sk__tls_alpn_wire(o->alpn, &t->alpn, &t->alpn_len, err) < 0)
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
