/*
 * tls_verify.c - checking the peer (chain, name, pins) and saying in one line
 * why a TLS connection failed and what to do about it.
 *
 * A client context replaces OpenSSL's certificate check with its own callback
 * so that a pin can trust a certificate no CA signed (the key is the
 * identity, as with curl's --pinnedpubkey), --insecure can skip the check,
 * and the failure can be described while the certificate is at hand.
 */
#define _GNU_SOURCE /* vasprintf */
#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls.h"

/* --------------------------------------------------- per-connection message */

static int conn_index = -1;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    struct sk__tls_conn_state *s = ptr;
    if (s) {
        free(s->msg);
        free(s);
    }
}

static void conn_index_init(void)
{
    conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, state_free);
}

int sk__tls_conn_index(void)
{
    pthread_once(&conn_once, conn_index_init);
    return conn_index;
}

static struct sk__tls_conn_state *state_of(SSL *ssl)
{
    struct sk__tls_conn_state *s = SSL_get_ex_data(ssl, sk__tls_conn_index());
    if (s == NULL && (s = calloc(1, sizeof *s + 1)) != NULL &&
        !SSL_set_ex_data(ssl, conn_index, s)) {
        free(s);
        s = NULL;
    }
    return s;
}

void sk__tls_fail(SSL *ssl, const char *fmt, ...)
{
    struct sk__tls_conn_state *s = state_of(ssl);
    if (s == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    if (m) {
        free(s->msg);
        s->msg = m;
    }
}

static const char *peer_of(SSL *ssl)
{
    struct sk__tls_conn_state *s = SSL_get_ex_data(ssl, sk__tls_conn_index());
    if (s && s->peer[0])
        return s->peer;
    return SSL_is_server(ssl) ? "the client" : "the server";
}

static int has_msg(SSL *ssl)
{
    struct sk__tls_conn_state *s = SSL_get_ex_data(ssl, sk__tls_conn_index());
    return s && s->msg;
}

/* ------------------------------------------------------------- keys, pins */

int sk__tls_spki_sha256(X509 *x, char *out, unsigned char *md)
{
    unsigned char *der = NULL, d[32];
    int n = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : -1;
    if (n <= 0)
        return -1;
    unsigned dl = 0;
    int ok = EVP_Digest(der, (size_t)n, d, &dl, EVP_sha256(), NULL) && dl == 32;
    OPENSSL_free(der);
    if (!ok)
        return -1;
    if (md)
        memcpy(md, d, 32);
    if (out) {
        memcpy(out, "sha256:", 7);
        for (int i = 0; i < 32; i++)
            sprintf(out + 7 + 2 * i, "%02x", d[i]);
    }
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sk__tls_parse_pin(const char *s, unsigned char *md)
{
    if (s == NULL || strncasecmp(s, "sha256:", 7) != 0)
        return -1;
    s += 7;
    int n = 0;
    for (; *s; s++) {
        if (*s == ':')
            continue;
        int h = hexval((unsigned char)s[0]);
        int l = s[1] ? hexval((unsigned char)s[1]) : -1;
        if (h < 0 || l < 0 || n == 32)
            return -1;
        md[n++] = (unsigned char)(h << 4 | l);
        s++;
    }
    return n == 32 ? 0 : -1;
}

/* ---------------------------------------------------- certificate details */

/* The names a certificate is for: its DNS and IP SANs (or its CN). */
static void cert_names(X509 *x, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t o = 0;
    GENERAL_NAMES *sans = x ? X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL) : NULL;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && o + 1 < cap; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        char one[64] = "";
        if (g->type == GEN_DNS) {
            snprintf(one, sizeof one, "%.*s", ASN1_STRING_length(g->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
            int l = ASN1_STRING_length(g->d.iPAddress);
            if (l == 4)
                snprintf(one, sizeof one, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
            else if (l == 16)
                inet_ntop(AF_INET6, a, one, sizeof one);
        }
        if (one[0])
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", one);
    }
    GENERAL_NAMES_free(sans);
    if (o == 0 && x) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)cap);
    }
    if (o >= cap)
        buf[cap - 1] = '\0';
}

static void asn1_time_text(const ASN1_TIME *t, char *buf, size_t cap)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b && ASN1_TIME_print(b, t)) {
        int n = BIO_read(b, buf, (int)cap - 1);
        buf[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

/* The message for a failed chain or name check of cert x. */
static void describe_verify(SSL *ssl, int e, X509 *leaf, X509 *bad, int server_side)
{
    const char *why = X509_verify_cert_error_string(e);
    const char *who = server_side ? "client certificate" : "certificate";
    char extra[300] = "";
    switch (e) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        if (!server_side)
            snprintf(extra, sizeof extra, " (use --pin sha256:... or --ca FILE)");
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        snprintf(extra, sizeof extra,
                 server_side ? " (not signed by --client-ca)"
                             : " (its CA is not trusted here: use --ca FILE "
                               "with that CA, or --pin sha256:...)");
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH: {
        char names[200];
        cert_names(leaf, names, sizeof names);
        snprintf(extra, sizeof extra, " (certificate is for %s; use --sni NAME)",
                 names[0] ? names : "no name");
        break;
    }
    case X509_V_ERR_CERT_HAS_EXPIRED: {
        char t[64] = "";
        if (bad || leaf)
            asn1_time_text(X509_get0_notAfter(bad ? bad : leaf), t, sizeof t);
        snprintf(extra, sizeof extra, " (on %s; renew it, or check this machine's clock)",
                 t[0] ? t : "?");
        break;
    }
    case X509_V_ERR_CERT_NOT_YET_VALID: {
        char t[64] = "";
        if (bad || leaf)
            asn1_time_text(X509_get0_notBefore(bad ? bad : leaf), t, sizeof t);
        snprintf(extra, sizeof extra, " (valid from %s; check the clocks)", t[0] ? t : "?");
        break;
    }
    default: break;
    }
    sk__tls_fail(ssl, "TLS: %s verify failed for %s: %s%s", who, peer_of(ssl), why, extra);
}

int sk__tls_verify_cb(X509_STORE_CTX *sctx, void *arg)
{
    sk_tls *t = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    const unsigned char(*pins)[32];
    size_t npins;
    int insecure;
    sk__tls_client_checks(t, &pins, &npins, &insecure);
    int ok = X509_verify_cert(sctx) == 1;
    X509 *leaf = X509_STORE_CTX_get0_cert(sctx);
    if (npins) {
        char fp[80];
        unsigned char md[32];
        if (sk__tls_spki_sha256(leaf, fp, md) == 0) {
            for (size_t i = 0; i < npins; i++) {
                if (memcmp(md, pins[i], 32) == 0) {
                    X509_STORE_CTX_set_error(sctx, X509_V_OK);
                    return 1;
                }
            }
            char want[80] = "sha256:";
            for (int i = 0; i < 32; i++)
                sprintf(want + 7 + 2 * i, "%02x", pins[0][i]);
            if (ssl)
                sk__tls_fail(ssl, "TLS: wrong pin: the server's key is %s (expected %s%s)", fp,
                             want, npins > 1 ? " or another pin given" : "");
        }
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    if (insecure) {
        X509_STORE_CTX_set_error(sctx, X509_V_OK);
        return 1;
    }
    if (!ok && ssl)
        describe_verify(ssl, X509_STORE_CTX_get_error(sctx), leaf,
                        X509_STORE_CTX_get_current_cert(sctx), 0);
    return ok;
}

/* A server's check of client certificates: OpenSSL's own, with the failure
 * described while the certificate is at hand (after it, the session holds
 * none). */
int sk__tls_server_verify_cb(int ok, X509_STORE_CTX *sctx)
{
    if (!ok) {
        SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
        if (ssl && !has_msg(ssl))
            describe_verify(ssl, X509_STORE_CTX_get_error(sctx), X509_STORE_CTX_get0_cert(sctx),
                            X509_STORE_CTX_get_current_cert(sctx), 1);
    }
    return ok;
}

/* ------------------------------------------------------- failure messages */

static const char *alert_hint(int alert, int server_side)
{
    switch (alert) {
    case SSL_AD_CERTIFICATE_REQUIRED:
        return server_side ? "" : " (it wants a client certificate: use --cert FILE --key FILE)";
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_ACCESS_DENIED: return " (it does not accept our certificate)";
    case SSL_AD_NO_APPLICATION_PROTOCOL: return " (no application protocol in common: see --alpn)";
    case SSL_AD_HANDSHAKE_FAILURE:
    case SSL_AD_PROTOCOL_VERSION:
    case SSL_AD_INSUFFICIENT_SECURITY:
        return " (nothing in common: sockit speaks TLS 1.2 and 1.3, ECDHE with AEAD ciphers "
               "only)";
    default: return "";
    }
}

int sk__tls_explain(SSL *ssl, int e)
{
    int saved = errno;
    int server_side = SSL_is_server(ssl);
    /* (After a fatal error the state machine reads as "in init": whether
     * both Finished messages went by is what says the handshake was done.) */
    int in_handshake =
        SSL_get_finished(ssl, NULL, 0) == 0 || SSL_get_peer_finished(ssl, NULL, 0) == 0;
    const char *peer = peer_of(ssl);
    const char *other = server_side ? "a TLS client" : "a TLS server";
    int ret = EPROTO;
    if (e == SSL_ERROR_SYSCALL) {
        ERR_clear_error();
        if (saved != 0) {
            if (in_handshake && !has_msg(ssl))
                sk__tls_fail(ssl, "TLS: handshake with %s failed: %s", peer, strerror(saved));
            return saved;
        }
        e = SSL_ERROR_SSL; /* an EOF OpenSSL did not classify: treat as one */
    }
    unsigned long ev = ERR_peek_error();
    int reason = ev ? ERR_GET_REASON(ev) : SSL_R_UNEXPECTED_EOF_WHILE_READING;
    const char *text = ev ? ERR_reason_error_string(ev) : NULL;
    if (text == NULL)
        text = "protocol error";
    if (has_msg(ssl)) {
        /* already described (the verify callback) */
    } else if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        if (in_handshake)
            sk__tls_fail(ssl, "TLS: %s closed the connection during the handshake (is it %s?)",
                         peer, other);
        else
            sk__tls_fail(ssl, "TLS: connection closed without close_notify: data may be "
                              "truncated");
    } else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(ssl);
        X509 *pc = SSL_get0_peer_certificate(ssl);
        describe_verify(ssl, (int)v, pc, pc, server_side);
    } else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        sk__tls_fail(ssl, "TLS: %s sent no client certificate, and one is required", peer);
    } else if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
        int alert = reason - SSL_AD_REASON_OFFSET;
        const char *d = SSL_alert_desc_string_long(alert);
        if (alert == SSL_AD_CERTIFICATE_REQUIRED) /* TLS 1.3 alerts OpenSSL 3.0 has no text for */
            d = "certificate required";
        else if (alert == SSL_AD_NO_APPLICATION_PROTOCOL)
            d = "no application protocol";
        else if (alert == SSL_AD_MISSING_EXTENSION)
            d = "missing extension";
        sk__tls_fail(ssl, "TLS: %s refused the connection: %s%s", peer, d,
                     alert_hint(alert, server_side));
    } else if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
               reason == SSL_R_RECORD_LENGTH_MISMATCH || reason == SSL_R_HTTP_REQUEST ||
               reason == SSL_R_UNKNOWN_PROTOCOL ||
               (in_handshake && reason == SSL_R_UNEXPECTED_MESSAGE)) {
        sk__tls_fail(ssl, "TLS: handshake with %s failed: %s (is it %s?)", peer, text, other);
    } else if (reason == SSL_R_NO_SHARED_CIPHER || reason == SSL_R_UNSUPPORTED_PROTOCOL ||
               reason == SSL_R_NO_PROTOCOLS_AVAILABLE) {
        sk__tls_fail(ssl, "TLS: handshake with %s failed: %s%s", peer, text,
                     alert_hint(SSL_AD_HANDSHAKE_FAILURE, server_side));
    } else {
        sk__tls_fail(ssl, "TLS: %s%s: %s", in_handshake ? "handshake with " : "connection to ",
                     peer, text);
    }
    ERR_clear_error();
    return ret;
}
