/*
 * tls.h - the TLS transport (tp_tls.c) and the internals shared by the TLS
 * files (tls.c: contexts; tls_verify.c: checking the peer and saying why it
 * failed; tls_conn.c: the public client connection). Internal (not installed).
 *
 * How the engine (server side) uses it, per accepted connection on a
 * listener that has a TLS context:
 *     if (sk__tp_tls(&c->tp, ctx, fd, 1, peer_text, &err) < 0) -> log, close fd
 *     then, with the connection's first deadline (10 s) armed:
 *         sk__tp_tls_handshake(&c->tp): 1 done (cancel that deadline, on_open),
 *         SK_TP_AGAIN (wait for c->tp.want), SK_TP_ERR (log
 *         sk__tp_tls_error(&c->tp), sk__tp_close)
 * A connection still in its handshake counts against --max-conns. A client's
 * close_notify reads as 0 (end of stream); answering it with sk__tp_shutdown
 * before sk__tp_close keeps the session resumable (a TLS connection closed
 * without close_notify loses its session). Blocking
 * models do the same on a non-blocking fd with poll(), or call the handshake
 * on a blocking fd (it then returns 1 or SK_TP_ERR).
 */
#ifndef SK_TLS_H
#define SK_TLS_H

#include <pthread.h>

#include <openssl/ssl.h>

#include "sockit.h"
#include "transport.h"

extern const sk_tp_ops sk__tp_tls_ops;

/* Make t a TLS transport on fd (client: is_server 0). The handshake starts
 * with the first operation (or sk__tp_tls_handshake). peer_name_for_errors
 * ("tcp://127.0.0.1:8443", may be NULL) is copied. Returns 0, or -1 with err
 * (out of memory); fd is then left open. */
int sk__tp_tls(sk_tp *t, sk_tls *ctx, int fd, int is_server, const char *peer_name_for_errors,
               sk_err *err);
/* Drive the handshake: 1 done, SK_TP_AGAIN (t->want), SK_TP_ERR (errno). */
int sk__tp_tls_handshake(sk_tp *t);
/* After SK_TP_ERR: one line saying what went wrong and what to do, or NULL
 * when it was a plain system error (errno says it). */
const char *sk__tp_tls_error(const sk_tp *t);
/* Negotiated parameters ("" / 0 before the handshake). */
const char *sk__tp_tls_version(const sk_tp *t);
const char *sk__tp_tls_cipher(const sk_tp *t);
/* The ALPN protocol agreed, copied into buf (cap bytes); "" if none. */
const char *sk__tp_tls_alpn(const sk_tp *t, char *buf, size_t cap);
/* The verified peer certificate's subject ("CN=client,O=x"), "" if none. */
const char *sk__tp_tls_peer_subject(const sk_tp *t, char *buf, size_t cap);
int sk__tp_tls_resumed(const sk_tp *t);
/* 1 when kernel TLS sends (SSL_sendfile works). */
int sk__tp_tls_ktls(const sk_tp *t);

/* ---- shared by the TLS files */

/* A context (tls.c: client and shared parts; tls_server.c: the server's). */
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

/* Free what OpenSSL keeps for the calling thread (its random generators,
 * its error queue). OpenSSL frees it when a thread exits, but a detached
 * thread that says "done" before exiting may be overtaken by the process's
 * exit (OPENSSL_cleanup then forgets it: a leak under LeakSanitizer): such a
 * thread calls this first. Harmless in a thread that never used OpenSSL. */
void sk__tls_thread_end(void);
/* The first OpenSSL error's text, for messages; clears the queue. */
const char *sk__tls_reason(void);
/* "TLS: --cert x.pem: no such file" when the file cannot be read. 0 or -1. */
int sk__tls_check_file(const char *opt, const char *path, int dir_ok, sk_err *err);
/* An SSL_CTX with the policy (versions, suites, options, modes). */
SSL_CTX *sk__tls_ctx_new(int is_server, sk_err *err);
/* "h2,http/1.1" -> "\x02h2\x08http/1.1" (malloc'd). 0 or -1. */
int sk__tls_alpn_wire(const char *list, unsigned char **out, size_t *len, sk_err *err);
/* strdup that tolerates NULL and records failure in *fail. */
char *sk__tls_strdup(const char *s, int *fail);
sk_tls *sk__tls_alloc(int is_server);
/* Trust for verifying peers: the system store (ca NULL), or a file or dir. */
int sk__tls_load_trust(SSL_CTX *ctx, const char *ca, const char *opt, sk_err *err);

/* Per-connection extras, as the SSL's app data: the peer's name for errors
 * and, after a failure, the message. */
struct sk__tls_conn_state {
    char *msg;
    int in_handshake; /* a server's, counted in tp_tls.c's handshakes in progress */
    char peer[];
};

/* The SSL ex_data index of the state above (freed with the SSL). */
int sk__tls_conn_index(void);
/* A new SSL from ctx (with the host to check, for clients); no BIO yet. */
SSL *sk__tls_new_ssl(sk_tls *ctx, int is_server, sk_err *err);
/* Record msg (printf) as the connection's error. */
void sk__tls_fail(SSL *ssl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Describe the failure of an SSL call whose SSL_get_error was `e` (with the
 * OpenSSL error queue) in the connection's message; returns the errno. */
int sk__tls_explain(SSL *ssl, int e);
/* The server's verify callback for client certificates (messages only). */
int sk__tls_server_verify_cb(int ok, X509_STORE_CTX *sctx);
/* The verify callback for client contexts (pins, insecure, messages). */
int sk__tls_verify_cb(X509_STORE_CTX *sctx, void *arg);
/* "sha256:HEX" of x's SubjectPublicKeyInfo into out (>= 72 bytes); raw digest
 * into md (32 bytes) when not NULL. 0 or -1. */
int sk__tls_spki_sha256(X509 *x, char *out, unsigned char *md);
/* Parse "sha256:HEX" (64 hex digits; colons allowed) into 32 bytes. 0 or -1. */
int sk__tls_parse_pin(const char *s, unsigned char *md);
/* What the client context checks a certificate against. */
int sk__tls_client_checks(const sk_tls *ctx, const unsigned char (**pins)[32], size_t *npins,
                          int *insecure);

#endif
