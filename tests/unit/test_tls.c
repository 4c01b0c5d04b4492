/* test_tls.c - unit tests for the TLS contexts (tls.c, tls_verify.c) and
 * transport (tp_tls.c): a client and a server in one process over a
 * non-blocking socket pair, both handshakes driven by the want flags.
 * Certificates are made at test time with OpenSSL's API in a temp dir. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "sockit.h"
#include "tls.h"
#include "transport.h"

static char dir[64];
static char path_buf[32][128];
static int npaths;

static const char *path(const char *name)
{
    char *p = path_buf[npaths++ % 32];
    snprintf(p, 128, "%s/%s", dir, name);
    return p;
}

/* ------------------------------------------------------------ certificates */

static void write_pem(const char *name, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(path(name), "w");
    assert_non_null(f);
    if (x)
        assert_true(PEM_write_X509(f, x));
    if (k)
        assert_true(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
    fclose(f);
}

/* A certificate for key, signed by issuer (self-signed when NULL), valid
 * from `from` to `to` seconds relative to now. */
static X509 *mkcert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *ikey,
                    long from, long to, int ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509_set_pubkey(x, key);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e =
        X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (san) {
        e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static EVP_PKEY *leaf_key;

/* ca, leaf (localhost, 127.0.0.1), other (other.test), expired, notyet,
 * ca2, client (from ca), client2 (from ca2). */
static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/sockit-tls-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    long day = 86400;
    EVP_PKEY *cak = EVP_EC_gen("P-256"), *ca2k = EVP_EC_gen("P-256");
    X509 *ca = mkcert(cak, "Test CA", NULL, NULL, NULL, -day, 30 * day, 1);
    X509 *ca2 = mkcert(ca2k, "Other CA", NULL, NULL, NULL, -day, 30 * day, 1);
    write_pem("ca.pem", ca, NULL);
    write_pem("ca2.pem", ca2, NULL);
    leaf_key = EVP_EC_gen("P-256");
    struct {
        const char *name, *cn, *san;
        X509 *ca;
        EVP_PKEY *cak;
        long from, to;
    } certs[] = {
        {"leaf", "localhost", "DNS:localhost,IP:127.0.0.1", ca, cak, -day, 30 * day},
        {"other", "other.test", "DNS:other.test", ca, cak, -day, 30 * day},
        {"expired", "localhost", "DNS:localhost", ca, cak, -10 * day, -day},
        {"notyet", "localhost", "DNS:localhost", ca, cak, 10 * day, 20 * day},
        {"client", "client", NULL, ca, cak, -day, 30 * day},
        {"client2", "client2", NULL, ca2, ca2k, -day, 30 * day},
    };
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++) {
        EVP_PKEY *k = i == 0 ? leaf_key : EVP_EC_gen("P-256");
        X509 *x = mkcert(k, certs[i].cn, certs[i].san, certs[i].ca, certs[i].cak, certs[i].from,
                         certs[i].to, 0);
        char n[64];
        snprintf(n, sizeof n, "%s.pem", certs[i].name);
        write_pem(n, x, NULL);
        snprintf(n, sizeof n, "%s.key", certs[i].name);
        write_pem(n, NULL, k);
        X509_free(x);
        if (i != 0)
            EVP_PKEY_free(k);
    }
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(ca2k);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"ca.pem",      "ca2.pem",     "leaf.pem",    "leaf.key",
                           "other.pem",   "other.key",   "expired.pem", "expired.key",
                           "notyet.pem",  "notyet.key",  "client.pem",  "client.key",
                           "client2.pem", "client2.key", "reload.pem",  "reload.key"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(path(names[i]));
    rmdir(dir);
    EVP_PKEY_free(leaf_key);
    return 0;
}

/* "sha256:HEX" of a key's SubjectPublicKeyInfo, computed here (not by the
 * library): DER of the public key, then SHA-256. */
static void spki_pin(EVP_PKEY *k, char out[80])
{
    unsigned char *der = NULL, md[32];
    int n = i2d_PUBKEY(k, &der);
    assert_true(n > 0);
    unsigned ml = 0;
    assert_true(EVP_Digest(der, (size_t)n, md, &ml, EVP_sha256(), NULL));
    OPENSSL_free(der);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* ------------------------------------------------------------------ driving */

struct link {
    sk_tls *cctx, *sctx;
    sk_tp c, s;
    int crc, src; /* handshake results: 1, SK_TP_ERR */
};

static void link_open(struct link *l, sk_tls *cctx, sk_tls *sctx)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    l->cctx = cctx;
    l->sctx = sctx;
    sk_err err;
    assert_int_equal(sk__tp_tls(&l->c, cctx, sv[0], 0, "unix:test-server", &err), 0);
    assert_int_equal(sk__tp_tls(&l->s, sctx, sv[1], 1, "unix:test-client", &err), 0);
}

/* Run both handshakes until each has finished or failed (or waits for a
 * peer that has given up). */
static void handshake(struct link *l)
{
    l->crc = l->src = SK_TP_AGAIN;
    for (int i = 0; i < 200 && (l->crc == SK_TP_AGAIN || l->src == SK_TP_AGAIN); i++) {
        if (l->crc == SK_TP_AGAIN)
            l->crc = sk__tp_tls_handshake(&l->c);
        if (l->src == SK_TP_AGAIN)
            l->src = sk__tp_tls_handshake(&l->s);
        if (l->crc == SK_TP_AGAIN)
            assert_true(l->c.want == SK_TP_WANT_READ || l->c.want == SK_TP_WANT_WRITE);
    }
}

static void link_close(struct link *l)
{
    sk__tp_close(&l->c);
    sk__tp_close(&l->s);
    sk_tls_free(l->cctx);
    sk_tls_free(l->sctx);
}

static sk_tls *client(sk_tls_client_opts o)
{
    sk_err err = {0};
    sk_tls *t = sk_tls_client_new(&o, &err);
    if (t == NULL)
        fail_msg("client context: %s", err.msg);
    return t;
}

static sk_tls *server(sk_tls_server_opts o)
{
    sk_err err = {0};
    sk_tls *t = sk_tls_server_new(&o, &err);
    if (t == NULL)
        fail_msg("server context: %s", err.msg);
    return t;
}

static sk_tls *server_leaf(void)
{
    sk_tls_pair p = {path("leaf.pem"), path("leaf.key")};
    return server((sk_tls_server_opts){.pairs = &p, .npairs = 1});
}

/* Read from t until SK_TP_AGAIN twice in a row (nothing more now). */
static ssize_t read_some(sk_tp *t, char *buf, size_t cap)
{
    for (int i = 0; i < 50; i++) {
        ssize_t n = sk__tp_read(t, buf, cap);
        if (n != SK_TP_AGAIN)
            return n;
    }
    return SK_TP_AGAIN;
}

static void expect_ok(struct link *l)
{
    handshake(l);
    if (l->crc != 1 || l->src != 1)
        fail_msg("handshake: client %d (%s), server %d (%s)", l->crc,
                 sk__tp_tls_error(&l->c) ? sk__tp_tls_error(&l->c) : "-", l->src,
                 sk__tp_tls_error(&l->s) ? sk__tp_tls_error(&l->s) : "-");
}

static void expect_client_error(struct link *l, const char *needle)
{
    handshake(l);
    assert_int_equal(l->crc, SK_TP_ERR);
    const char *m = sk__tp_tls_error(&l->c);
    assert_non_null(m);
    if (strstr(m, needle) == NULL)
        fail_msg("client error \"%s\" lacks \"%s\"", m, needle);
    assert_non_null(strchr(m, ':'));
    assert_null(strchr(m, '\n'));
}

/* ------------------------------------------------------------------- tests */

static void test_data_both_ways_and_half_close(void **state)
{
    (void)state;
    struct link l;
    link_open(&l, client((sk_tls_client_opts){.host = "localhost", .ca = path("ca.pem")}),
              server_leaf());
    expect_ok(&l);
    assert_string_equal(sk__tp_tls_version(&l.c), "TLSv1.3");
    size_t size = 1 << 20;
    unsigned char *up = malloc(size), *down = malloc(size), *got_up = malloc(size),
                  *got_down = malloc(size);
    assert_non_null(up);
    assert_non_null(got_down);
    FILE *r = fopen("/dev/urandom", "r");
    assert_non_null(r);
    assert_int_equal(fread(up, 1, size, r), size);
    assert_int_equal(fread(down, 1, size, r), size);
    fclose(r);
    size_t su = 0, sd = 0, ru = 0, rd = 0; /* sent/received up (c->s) and down */
    for (int i = 0; i < 100000 && (ru < size || rd < size); i++) {
        if (su < size) {
            /* alternate one big buffer with several small iovecs (coalesced) */
            ssize_t n;
            if (i % 2) {
                n = sk__tp_write(&l.c, up + su, size - su, 0);
            } else {
                size_t left = size - su, a = left < 100 ? left : 100;
                size_t b = left - a < 3000 ? left - a : 3000;
                struct iovec v[3] = {{up + su, a}, {up + su + a, b}, {up + su + a + b, 0}};
                n = sk__tp_writev(&l.c, v, 3, 0);
            }
            assert_true(n > 0 || n == SK_TP_AGAIN);
            if (n > 0)
                su += (size_t)n;
        }
        if (sd < size) {
            ssize_t n = sk__tp_write(&l.s, down + sd, size - sd, 0);
            assert_true(n > 0 || n == SK_TP_AGAIN);
            if (n > 0)
                sd += (size_t)n;
        }
        ssize_t n = sk__tp_read(&l.s, got_up + ru, size - ru);
        assert_true(n > 0 || n == SK_TP_AGAIN || ru == size);
        if (n > 0)
            ru += (size_t)n;
        n = sk__tp_read(&l.c, got_down + rd, size - rd);
        assert_true(n > 0 || n == SK_TP_AGAIN || rd == size);
        if (n > 0)
            rd += (size_t)n;
    }
    assert_int_equal(ru, size);
    assert_int_equal(rd, size);
    assert_memory_equal(up, got_up, size);
    assert_memory_equal(down, got_down, size);
    /* Half-close: the client's close_notify is the server's end of stream;
     * the server can still answer, then ends its side too. */
    assert_int_equal(sk__tp_shutdown(&l.c), 0);
    char buf[64];
    assert_int_equal(read_some(&l.s, buf, sizeof buf), 0);
    assert_int_equal(sk__tp_write(&l.s, "late reply", 10, 0), 10);
    assert_int_equal(read_some(&l.c, buf, sizeof buf), 10);
    assert_memory_equal(buf, "late reply", 10);
    assert_int_equal(sk__tp_shutdown(&l.s), 0);
    assert_int_equal(read_some(&l.c, buf, sizeof buf), 0);
    assert_null(sk__tp_tls_error(&l.c));
    free(up);
    free(down);
    free(got_up);
    free(got_down);
    link_close(&l);
}

static void test_truncation_is_an_error(void **state)
{
    (void)state;
    struct link l;
    link_open(&l, client((sk_tls_client_opts){.host = "localhost", .ca = path("ca.pem")}),
              server_leaf());
    expect_ok(&l);
    assert_int_equal(sk__tp_write(&l.s, "part", 4, 0), 4);
    sk__tp_close(&l.s); /* no close_notify */
    char buf[64];
    assert_int_equal(read_some(&l.c, buf, sizeof buf), 4);
    errno = 0;
    assert_int_equal(read_some(&l.c, buf, sizeof buf), SK_TP_ERR);
    assert_int_equal(errno, EPROTO);
    assert_string_equal(sk__tp_tls_error(&l.c),
                        "TLS: connection closed without close_notify: data may be truncated");
    link_close(&l);
}

static void test_pin_match_trusts_untrusted_server(void **state)
{
    (void)state;
    char pin[80];
    spki_pin(leaf_key, pin);
    const char *pins[] = {"sha256:" /* a wrong one first */
                          "0000000000000000000000000000000000000000000000000000000000000000",
                          pin};
    struct link l;
    /* no --ca: the leaf's CA is not trusted, the pin alone is enough */
    link_open(&l, client((sk_tls_client_opts){.host = "localhost", .pins = pins, .npins = 2}),
              server_leaf());
    expect_ok(&l);
    link_close(&l);
}

static void test_wrong_pin(void **state)
{
    (void)state;
    char pin[80], msg[300];
    spki_pin(leaf_key, pin);
    const char *pins[] = {"sha256:ab"
                          "cd000000000000000000000000000000000000000000000000000000000000"};
    struct link l;
    link_open(&l,
              client((sk_tls_client_opts){
                  .host = "localhost", .ca = path("ca.pem"), .pins = pins, .npins = 1}),
              server_leaf());
    snprintf(msg, sizeof msg, "TLS: wrong pin: the server's key is %s (expected %s)", pin, pins[0]);
    expect_client_error(&l, msg);
    assert_int_equal(l.src, SK_TP_ERR); /* the server heard the alert */
    link_close(&l);
}

static void test_self_signed_refused_without_pin(void **state)
{
    (void)state;
    struct link l;
    link_open(&l, client((sk_tls_client_opts){.host = "localhost"}),
              server((sk_tls_server_opts){0}));
    expect_client_error(&l, "TLS: certificate verify failed for unix:test-server: self-signed "
                            "certificate (use --pin sha256:... or --ca FILE)");
    link_close(&l);
}

static void test_hostname_mismatch(void **state)
{
    (void)state;
    struct link l;
    link_open(&l, client((sk_tls_client_opts){.host = "example.org", .ca = path("ca.pem")}),
              server_leaf());
    expect_client_error(&l, "hostname mismatch (certificate is for localhost, 127.0.0.1; "
                            "use --sni NAME)");
    link_close(&l);
    /* an IP address is checked against the IP SANs */
    link_open(&l, client((sk_tls_client_opts){.host = "127.0.0.2", .ca = path("ca.pem")}),
              server_leaf());
    expect_client_error(&l, "IP address mismatch");
    link_close(&l);
    link_open(&l, client((sk_tls_client_opts){.host = "127.0.0.1", .ca = path("ca.pem")}),
              server_leaf());
    expect_ok(&l);
    link_close(&l);
}

static void test_untrusted_expired_notyet(void **state)
{
    (void)state;
    struct link l;
    link_open(&l, client((sk_tls_client_opts){.host = "localhost", .ca = path("ca2.pem")}),
              server_leaf());
    expect_client_error(&l, "unable to get local issuer certificate (its CA is not trusted");
    link_close(&l);
    const char *bad[][2] = {{"expired", "certificate has expired"},
                            {"notyet", "certificate is not yet valid"}};
    for (int i = 0; i < 2; i++) {
        char c[32], k[32];
        snprintf(c, sizeof c, "%s.pem", bad[i][0]);
        snprintf(k, sizeof k, "%s.key", bad[i][0]);
        sk_tls_pair p = {path(c), path(k)};
        link_open(&l, client((sk_tls_client_opts){.host = "localhost", .ca = path("ca.pem")}),
                  server((sk_tls_server_opts){.pairs = &p, .npairs = 1}));
        expect_client_error(&l, bad[i][1]);
        link_close(&l);
    }
}

static void test_alpn(void **state)
{
    (void)state;
    struct link l;
    sk_tls_pair p = {path("leaf.pem"), path("leaf.key")};
    link_open(&l,
              client((sk_tls_client_opts){
                  .host = "localhost", .ca = path("ca.pem"), .alpn = "foo,http/1.1"}),
              server((sk_tls_server_opts){.pairs = &p, .npairs = 1, .alpn = "h2,http/1.1"}));
    expect_ok(&l);
    char a[32], b[32];
    assert_string_equal(sk__tp_tls_alpn(&l.c, a, sizeof a), "http/1.1");
    assert_string_equal(sk__tp_tls_alpn(&l.s, b, sizeof b), "http/1.1");
    link_close(&l);
    /* nothing in common: refused (RFC 7301) */
    link_open(&l,
              client((sk_tls_client_opts){.host = "localhost", .ca = path("ca.pem"), .alpn = "x"}),
              server((sk_tls_server_opts){.pairs = &p, .npairs = 1, .alpn = "h2"}));
    expect_client_error(&l, "no application protocol");
    link_close(&l);
}

static void test_sni_picks_second_pair(void **state)
{
    (void)state;
    sk_tls_pair p[2] = {{path("leaf.pem"), path("leaf.key")},
                        {path("other.pem"), path("other.key")}};
    char subj[256];
    const char *names[][2] = {{"other.test", "CN=other.test"}, {"localhost", "CN=localhost"}};
    for (int i = 0; i < 2; i++) {
        struct link l;
        link_open(&l, client((sk_tls_client_opts){.sni = names[i][0], .ca = path("ca.pem")}),
                  server((sk_tls_server_opts){.pairs = p, .npairs = 2}));
        expect_ok(&l);
        assert_string_equal(sk__tp_tls_peer_subject(&l.c, subj, sizeof subj), names[i][1]);
        link_close(&l);
    }
}

static sk_tls *mtls_server(void)
{
    return server((sk_tls_server_opts){.pairs = &(sk_tls_pair){path("leaf.pem"), path("leaf.key")},
                                       .npairs = 1,
                                       .client_ca = path("ca.pem"),
                                       .require_client_cert = 1});
}

/* The client may finish its TLS 1.3 handshake before the server has judged
 * its certificate: the refusal then arrives on its first read. */
static void expect_refused(struct link *l, const char *client_says, const char *server_says)
{
    handshake(l);
    assert_int_equal(l->src, SK_TP_ERR);
    const char *m = sk__tp_tls_error(&l->s);
    assert_non_null(m);
    if (strstr(m, server_says) == NULL)
        fail_msg("server error \"%s\" lacks \"%s\"", m, server_says);
    if (l->crc == 1) {
        char buf[16];
        assert_int_equal(read_some(&l->c, buf, sizeof buf), SK_TP_ERR);
    } else {
        assert_int_equal(l->crc, SK_TP_ERR);
    }
    m = sk__tp_tls_error(&l->c);
    assert_non_null(m);
    if (strstr(m, client_says) == NULL)
        fail_msg("client error \"%s\" lacks \"%s\"", m, client_says);
}

static void test_mutual_tls(void **state)
{
    (void)state;
    struct link l;
    char subj[256];
    /* with a certificate from the CA: accepted, and its subject known */
    link_open(&l,
              client((sk_tls_client_opts){.host = "localhost",
                                          .ca = path("ca.pem"),
                                          .cert = path("client.pem"),
                                          .key = path("client.key")}),
              mtls_server());
    expect_ok(&l);
    char buf[8];
    assert_int_equal(sk__tp_write(&l.c, "x", 1, 0), 1);
    assert_int_equal(read_some(&l.s, buf, sizeof buf), 1);
    assert_string_equal(sk__tp_tls_peer_subject(&l.s, subj, sizeof subj), "CN=client");
    link_close(&l);
    /* required and missing */
    link_open(&l, client((sk_tls_client_opts){.host = "localhost", .ca = path("ca.pem")}),
              mtls_server());
    expect_refused(&l, "refused the connection: certificate required (it wants a client",
                   "TLS: unix:test-client sent no client certificate, and one is required");
    link_close(&l);
    /* from another CA */
    link_open(&l,
              client((sk_tls_client_opts){.host = "localhost",
                                          .ca = path("ca.pem"),
                                          .cert = path("client2.pem"),
                                          .key = path("client2.key")}),
              mtls_server());
    expect_refused(&l, "refused the connection",
                   "TLS: client certificate verify failed for unix:test-client: unable to get "
                   "local issuer certificate (not signed by --client-ca)");
    link_close(&l);
    /* expired: said with its date (the certificate is gone after the check) */
    link_open(&l,
              client((sk_tls_client_opts){.host = "localhost",
                                          .ca = path("ca.pem"),
                                          .cert = path("expired.pem"),
                                          .key = path("expired.key")}),
              mtls_server());
    expect_refused(&l, "refused the connection",
                   "TLS: client certificate verify failed for unix:test-client: certificate "
                   "has expired (on ");
    link_close(&l);
}

static void test_ephemeral_fingerprint(void **state)
{
    (void)state;
    sk_tls *s = server((sk_tls_server_opts){0});
    assert_true(sk_tls_is_ephemeral(s));
    char fp[80];
    assert_int_equal(sk_tls_fingerprint(s, fp, sizeof fp), 71);
    assert_int_equal(sk_tls_fingerprint(s, fp, 10), -1);
    const char *pins[] = {fp};
    struct link l;
    link_open(&l, client((sk_tls_client_opts){.pins = pins, .npins = 1}), s);
    expect_ok(&l);
    /* the same digest, computed here from the key the server presented */
    SSL *ssl = l.c.impl;
    char mine[80];
    spki_pin(X509_get0_pubkey(SSL_get0_peer_certificate(ssl)), mine);
    assert_string_equal(fp, mine);
    /* and the certificate is for localhost, 127.0.0.1 and ::1 */
    X509 *x = SSL_get0_peer_certificate(ssl);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(x)), EVP_PKEY_EC);
    link_close(&l);
}

static void copy_file(const char *from, const char *to)
{
    char buf[8192];
    FILE *a = fopen(from, "r"), *b = fopen(to, "w");
    assert_non_null(a);
    assert_non_null(b);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

static void test_reload_keeps_old_on_error(void **state)
{
    (void)state;
    copy_file(path("leaf.pem"), path("reload.pem"));
    copy_file(path("leaf.key"), path("reload.key"));
    sk_tls_pair p = {path("reload.pem"), path("reload.key")};
    sk_tls *s = server((sk_tls_server_opts){.pairs = &p, .npairs = 1});
    char before[80], after[80];
    assert_true(sk_tls_fingerprint(s, before, sizeof before) > 0);
    FILE *f = fopen(path("reload.pem"), "w");
    fputs("not a certificate\n", f);
    fclose(f);
    sk_err err;
    assert_int_equal(sk_tls_reload(s, &err), -1);
    assert_non_null(strstr(err.msg, "reload.pem: no PEM certificate"));
    struct link l;
    link_open(&l, client((sk_tls_client_opts){.host = "localhost", .ca = path("ca.pem")}), s);
    expect_ok(&l); /* the old certificate is still served */
    /* a good new pair: used from the next connection on */
    copy_file(path("other.pem"), path("reload.pem"));
    copy_file(path("other.key"), path("reload.key"));
    assert_int_equal(sk_tls_reload(s, &err), 0);
    assert_true(sk_tls_fingerprint(s, after, sizeof after) > 0);
    assert_string_not_equal(before, after);
    char buf[4];
    assert_int_equal(sk__tp_write(&l.c, "ok", 2, 0), 2); /* old connection unharmed */
    assert_int_equal(read_some(&l.s, buf, sizeof buf), 2);
    sk__tp_close(&l.c);
    sk__tp_close(&l.s);
    sk_tls_free(l.cctx);
    link_open(&l, client((sk_tls_client_opts){.sni = "other.test", .ca = path("ca.pem")}), s);
    expect_ok(&l);
    link_close(&l);
}

static void test_bad_options(void **state)
{
    (void)state;
    sk_err err;
    const char *pins[] = {"sha1:abcd"};
    assert_null(sk_tls_client_new(
        &(sk_tls_client_opts){.host = "localhost", .pins = pins, .npins = 1}, &err));
    assert_int_equal(err.usage, 1);
    assert_non_null(strstr(err.msg, "bad pin \"sha1:abcd\""));
    assert_null(sk_tls_client_new(&(sk_tls_client_opts){0}, &err));
    assert_non_null(strstr(err.msg, "no server name"));
    assert_null(sk_tls_client_new(
        &(sk_tls_client_opts){.host = "localhost", .cert = "/nonexistent/c.pem"}, &err));
    assert_string_equal(err.msg, "TLS: --cert /nonexistent/c.pem: no such file");
    assert_null(sk_tls_client_new(&(sk_tls_client_opts){.host = "localhost", .ca = "/nope"}, &err));
    assert_string_equal(err.msg, "TLS: --ca /nope: no such file");
    sk_tls_pair p = {path("leaf.pem"), path("other.key")};
    assert_null(sk_tls_server_new(&(sk_tls_server_opts){.pairs = &p, .npairs = 1}, &err));
    assert_non_null(strstr(err.msg, "does not belong to --cert"));
    assert_null(sk_tls_server_new(&(sk_tls_server_opts){.require_client_cert = 1}, &err));
    assert_non_null(strstr(err.msg, "needs --client-ca"));
    assert_null(sk_tls_server_new(&(sk_tls_server_opts){.alpn = "a,,b"}, &err));
    assert_non_null(strstr(err.msg, "bad ALPN list"));
}

static void test_plain_peer_is_explained(void **state)
{
    (void)state;
    /* A server that answers our ClientHello with plain text. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    sk_tls *c = client((sk_tls_client_opts){.insecure = 1});
    sk_tp t;
    assert_int_equal(sk__tp_tls(&t, c, sv[0], 0, "unix:plain", NULL), 0);
    assert_int_equal(sk__tp_tls_handshake(&t), SK_TP_AGAIN);
    assert_int_equal(write(sv[1], "HTTP/1.0 400 Bad Request\r\n\r\n", 28), 28);
    assert_int_equal(sk__tp_tls_handshake(&t), SK_TP_ERR);
    const char *m = sk__tp_tls_error(&t);
    assert_non_null(m);
    if (strstr(m, "handshake with unix:plain failed") == NULL ||
        strstr(m, "(is it a TLS server?)") == NULL)
        fail_msg("%s", m);
    sk__tp_close(&t);
    close(sv[1]);
    sk_tls_free(c);
}

static void test_policy_tls12_suites_and_old_versions(void **state)
{
    (void)state;
    struct link l;
    /* TLS 1.2: an ECDHE + AEAD suite */
    link_open(&l, client((sk_tls_client_opts){.host = "localhost", .ca = path("ca.pem")}),
              server_leaf());
    assert_true(SSL_set_max_proto_version(l.c.impl, TLS1_2_VERSION));
    expect_ok(&l);
    assert_string_equal(sk__tp_tls_version(&l.s), "TLSv1.2");
    assert_string_equal(sk__tp_tls_cipher(&l.s), "ECDHE-ECDSA-AES128-GCM-SHA256");
    link_close(&l);
    /* a client offering only RSA key exchange or CBC suites: refused */
    const char *weak[] = {"AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA"};
    for (int i = 0; i < 2; i++) {
        link_open(&l, client((sk_tls_client_opts){.host = "localhost", .ca = path("ca.pem")}),
                  server_leaf());
        assert_true(SSL_set_max_proto_version(l.c.impl, TLS1_2_VERSION));
        assert_true(SSL_set_cipher_list(l.c.impl, weak[i]));
        handshake(&l);
        assert_int_equal(l.src, SK_TP_ERR);
        assert_non_null(strstr(sk__tp_tls_error(&l.s), "no shared cipher"));
        link_close(&l);
    }
    /* TLS 1.1 and older: refused */
    link_open(&l, client((sk_tls_client_opts){.host = "localhost", .insecure = 1}), server_leaf());
    SSL_set_security_level(l.c.impl, 0);
    assert_true(SSL_set_min_proto_version(l.c.impl, TLS1_VERSION));
    assert_true(SSL_set_max_proto_version(l.c.impl, TLS1_1_VERSION));
    handshake(&l);
    assert_int_equal(l.src, SK_TP_ERR);
    assert_int_equal(l.crc, SK_TP_ERR);
    link_close(&l);
    /* no renegotiation, no compression, buffers released while idle */
    sk_tls *s = server_leaf();
    link_open(&l, client((sk_tls_client_opts){.host = "localhost", .ca = path("ca.pem")}), s);
    uint64_t opts = SSL_get_options(l.s.impl);
    assert_true(opts & SSL_OP_NO_RENEGOTIATION);
    assert_true(opts & SSL_OP_NO_COMPRESSION);
    assert_true(SSL_get_mode(l.s.impl) & SSL_MODE_RELEASE_BUFFERS);
    assert_true(SSL_get_mode(l.c.impl) & SSL_MODE_RELEASE_BUFFERS);
    link_close(&l);
}

static void test_write_to_closed_peer_is_error_not_sigpipe(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_DFL); /* a raised SIGPIPE would kill this test */
    struct link l;
    link_open(&l, client((sk_tls_client_opts){.host = "localhost", .ca = path("ca.pem")}),
              server_leaf());
    expect_ok(&l);
    sk__tp_close(&l.s);
    static char big[65536];
    ssize_t n = 0;
    for (int i = 0; i < 100 && n != SK_TP_ERR; i++)
        n = sk__tp_write(&l.c, big, sizeof big, 0);
    assert_int_equal(n, SK_TP_ERR);
    assert_true(errno == EPIPE || errno == ECONNRESET);
    link_close(&l);
}

/* A second connection offering the first one's session is resumed: TLS 1.3
 * and 1.2 tickets, and the server's session cache (1.2 without tickets), with
 * client certificates verified (the session id context). */
static void test_session_resumption(void **state)
{
    (void)state;
    sk_tls *s = mtls_server();
    for (int mode = 0; mode < 3; mode++) {
        sk_tls_client_opts co = {.host = "localhost",
                                 .ca = path("ca.pem"),
                                 .cert = path("client.pem"),
                                 .key = path("client.key")};
        sk_tls *c = client(co);
        SSL_SESSION *sess = NULL;
        for (int round = 0; round < 2; round++) {
            struct link l;
            link_open(&l, c, s);
            if (mode > 0)
                assert_true(SSL_set_max_proto_version(l.c.impl, TLS1_2_VERSION));
            if (mode == 2)
                SSL_set_options(l.c.impl, SSL_OP_NO_TICKET);
            if (sess)
                assert_true(SSL_set_session(l.c.impl, sess));
            expect_ok(&l);
            /* TLS 1.3 tickets come after the handshake: let the client read them */
            char buf[8];
            assert_int_equal(sk__tp_write(&l.s, "x", 1, 0), 1);
            assert_int_equal(read_some(&l.c, buf, sizeof buf), 1);
            /* Tickets only (the server keeps no session cache, as nginx by
             * default): a TLS 1.2 client that refuses tickets is not resumed. */
            int want = mode == 2 ? 0 : round;
            if (sk__tp_tls_resumed(&l.s) != want)
                fail_msg("mode %d round %d: resumed %d", mode, round, !want);
            assert_int_equal(sk__tp_tls_resumed(&l.c), want);
            if (round == 0) {
                sess = SSL_get1_session(l.c.impl);
                assert_non_null(sess);
            }
            /* an orderly close: a session that ended without close_notify
             * is not resumable */
            assert_int_equal(sk__tp_shutdown(&l.c), 0);
            assert_int_equal(read_some(&l.s, buf, sizeof buf), 0);
            assert_int_equal(sk__tp_shutdown(&l.s), 0);
            assert_true(mode == 2 || SSL_SESSION_is_resumable(sess));
            sk__tp_close(&l.c);
            sk__tp_close(&l.s);
        }
        SSL_SESSION_free(sess);
        sk_tls_free(c);
    }
    sk_tls_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_both_ways_and_half_close),
        cmocka_unit_test(test_truncation_is_an_error),
        cmocka_unit_test(test_pin_match_trusts_untrusted_server),
        cmocka_unit_test(test_wrong_pin),
        cmocka_unit_test(test_self_signed_refused_without_pin),
        cmocka_unit_test(test_hostname_mismatch),
        cmocka_unit_test(test_untrusted_expired_notyet),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_sni_picks_second_pair),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_ephemeral_fingerprint),
        cmocka_unit_test(test_reload_keeps_old_on_error),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_plain_peer_is_explained),
        cmocka_unit_test(test_policy_tls12_suites_and_old_versions),
        cmocka_unit_test(test_write_to_closed_peer_is_error_not_sigpipe),
        cmocka_unit_test(test_session_resumption),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
