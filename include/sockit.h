/*
 * sockit.h - the public interface of libsockit.
 *
 * Conventions (every exported function follows them):
 *   - Names start with sk_ (types, functions) or SK_ (constants). Names with a
 *     double underscore (sk__) are internal and not part of this header.
 *   - A function that can fail takes an `sk_err *err` as its last argument and
 *     returns -1 (or NULL). On failure err->msg holds one line, without a
 *     trailing newline, naming what failed, e.g.
 *         bind tcp://0.0.0.0:8080: Address already in use
 *     err->code is the errno value (or 0), and err->usage is 1 when the caller's
 *     input was at fault (a malformed address) rather than the system.
 *     `err` may be NULL when the caller does not want the message.
 *     The exceptions, each documented where it is declared:
 *       - thin wrappers of a system call (sk_accept, sk_set_nonblock,
 *         sk_set_cloexec, sk_write_all, sk_read_deadline, sk_wait_fd,
 *         sk_unix_peer_cred) and the byte queue (sk_buf_*) report through
 *         errno, as the calls they wrap do;
 *       - a service's calls on its connection (sk_conn_send, sk_conn_queue,
 *         sk_conn_post) return -1 with no message: the connection is then
 *         closed, and there is nobody to tell but the log;
 *       - predicates and parsers that do no I/O return their answer
 *         (sk_access_check: 1 or 0; sk_proxy_parse: bytes used, 0 for "need
 *         more", or a negative status with sk_proxy_strerror);
 *       - functions that cannot fail return void or their buffer.
 *   - The library never prints and never exits. Text a service produces for
 *     the operator (the tutorial's "Here is the message: ...") goes through the
 *     report callback the caller installs in sk_server_opts.
 *   - Descriptors the library creates are close-on-exec. SIGPIPE never kills
 *     the process through library I/O (MSG_NOSIGNAL, or call sk_ignore_sigpipe).
 *   - Exported is exactly what this header declares. The library is compiled
 *     with -fvisibility=hidden, and the declarations below sit between
 *     `#pragma GCC visibility push(default)` and `pop` (gcc and clang), so a
 *     function is exported from libsockit.so if and only if it is declared
 *     here; everything else, including sk__* internals, stays inside. A
 *     definition that cannot see its declaration here (there should be none)
 *     would be marked SK_API. tests/integration/test_install.py checks that
 *     the exports and these declarations are the same set.
 */
#ifndef SOCKIT_H
#define SOCKIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SK_API __attribute__((visibility("default")))
#pragma GCC visibility push(default)
#else
#define SK_API
#endif

#define SOCKIT_VERSION "0.1.0"

/* ------------------------------------------------------------------ errors */

#define SK_ERR_MAX 320

typedef struct sk_err {
    int code;             /* errno value, 0 if none applies */
    int usage;            /* 1: bad input from the caller (exit 2), 0: runtime (exit 1) */
    char msg[SK_ERR_MAX]; /* one line, no trailing newline */
} sk_err;

/* Fill err (if not NULL) with a formatted message; returns -1 for `return sk_errf(...)`. */
int sk_errf(sk_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* As sk_errf, but appends ": strerror(code)". */
int sk_errno(sk_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* As sk_errf, and marks the error as the caller's (usage) fault. */
int sk_err_usage(sk_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --------------------------------------------------------------- addresses */

typedef enum sk_transport {
    SK_TCP = 1,  /* stream over IP */
    SK_UDP,      /* datagram over IP */
    SK_UNIX,     /* Unix-domain stream */
    SK_UNIXGRAM, /* Unix-domain datagram */
} sk_transport;

#define SK_HOST_MAX 256
#define SK_PORT_MAX 33
#define SK_UNIX_PATH_MAX 108 /* sizeof(sun_path) on Linux: 107 bytes and a NUL */

/*
 * A parsed, not yet resolved, address. The syntax (README "Addresses", sockit(1) ADDRESSES):
 *   PORT | HOST:PORT | [V6]:PORT | tcp://.. udp://.. tcp4:// tcp6:// udp4:// udp6://
 *   unix:PATH | unixgram:PATH | unix:@NAME | unixgram:@NAME
 *   fd:N | sd:NAME | sd:        (servers only: sockets handed to us, see below)
 *
 * Inherited sockets (deploy): `fd:N` is an open listening stream socket or a
 * datagram socket on descriptor N (inetd's `wait` mode gives it as fd:0);
 * `sd:NAME` the sockets systemd passed (socket activation) whose
 * LISTEN_FDNAMES entry is NAME, `sd:` all of them. Parsing these forms looks
 * at the descriptor: the transport is the socket's own (TCP, UDP, Unix stream
 * or datagram, from SO_TYPE and SO_DOMAIN), and a descriptor that is not open,
 * not a socket, or a stream socket that is not listening, is a usage error
 * naming it. The first sd: parse reads LISTEN_PID (not ours: no sockets were
 * passed), LISTEN_FDS and LISTEN_FDNAMES, makes the descriptors close-on-exec
 * and unsets the three variables, so that children do not inherit them.
 * sk_listen adopts such sockets as they are (no bind, no listen, no socket
 * option changed but close-on-exec) and never unlinks their files.
 */
#define SK_INHERIT_FD 1 /* fd:N */
#define SK_INHERIT_SD 2 /* sd:NAME, sd: (NAME "" = every passed socket) */
typedef struct sk_addr {
    sk_transport transport;
    int family;                  /* AF_UNSPEC, AF_INET, AF_INET6 (forced), or AF_UNIX */
    char host[SK_HOST_MAX];      /* "" = wildcard (server) or localhost (client) */
    char port[SK_PORT_MAX];      /* number or service name; "" for Unix */
    char path[SK_UNIX_PATH_MAX]; /* Unix: file path, or abstract name without '@' */
    size_t path_len;
    int abstract; /* Linux abstract namespace (unix:@NAME) */
    int inherit;  /* 0, SK_INHERIT_FD (descriptor in fd) or SK_INHERIT_SD (name in host) */
    int fd;
} sk_addr;

/*
 * Parse one address word. Returns 0, or -1 with a usage error such as
 *   bad address "tcp://:70000": port out of range (0-65535)
 */
int sk_addr_parse(sk_addr *a, const char *text, sk_err *err);

/* Parse the tutorial's two-word client form `HOST PORT` (TCP). Same contract. */
int sk_addr_parse_host_port(sk_addr *a, const char *host, const char *port, sk_err *err);

/* 1 if the transport is a stream (TCP, Unix stream), 0 for datagrams. */
int sk_transport_is_stream(sk_transport t);
/* "tcp", "udp", "unix", "unixgram". */
const char *sk_transport_name(sk_transport t);

/* Write the address back in canonical text form. Returns buf. */
char *sk_addr_format(const sk_addr *a, char *buf, size_t cap);

/* A concrete socket address, as resolution or the kernel produce them. */
typedef struct sk_endpoint {
    struct sockaddr_storage sa;
    socklen_t len;
    int family;   /* AF_INET, AF_INET6, AF_UNIX */
    int socktype; /* SOCK_STREAM or SOCK_DGRAM */
} sk_endpoint;

#define SK_RESOLVE_MAX 16
#define SK_PASSIVE 1 /* resolve for a server: empty host = wildcard (IPv6+IPv4) */

/*
 * Resolve with getaddrinfo (or build a sockaddr_un). Writes at most `cap`
 * endpoints to out and their number to *n. Returns 0, or -1 with messages like
 *   resolve tcp://nosuch.invalid:80: Name or service not known
 */
int sk_resolve(const sk_addr *a, int flags, sk_endpoint *out, size_t cap, size_t *n, sk_err *err);

#define SK_NAME_MAX (SK_UNIX_PATH_MAX + 16)

/*
 * Format a socket address as an address word: "tcp://127.0.0.1:80",
 * "udp://[::1]:7", "unix:/run/x.sock", "unix:@name", "unix:" (unnamed).
 * Never fails; returns buf.
 */
char *sk_sockaddr_format(const struct sockaddr *sa, socklen_t len, sk_transport t, char *buf,
                         size_t cap);

/*
 * A Unix stream socket's peer, the one way sockit describes it everywhere
 * (-v logs, service reports, serve stdio): "unix peer pid 1234 uid 1000", or
 * "unix peer uid 1000" where the system gives no pid (pid <= 0). Returns buf.
 */
char *sk_unix_peer_format(int pid, unsigned uid, char *buf, size_t cap);
/*
 * The credentials of a connected Unix stream socket's peer (SO_PEERCRED;
 * getpeereid where there is no pid: *pid is then 0). Returns 0, or -1 with
 * errno (not a Unix socket, no peer, or no way to ask on this system).
 */
int sk_unix_peer_cred(int fd, int *pid, unsigned *uid);

/*
 * Split a socket address into a printable host and a port, for messages like
 * "Received 5 bytes from 127.0.0.1, port 40000". Unix addresses give their path
 * (or "unnamed") and port 0. IPv4-mapped IPv6 addresses print as IPv4.
 */
void sk_sockaddr_host_port(const struct sockaddr *sa, socklen_t len, char *host, size_t cap,
                           unsigned *port);

/* ------------------------------------------------------------------ sockets */

#define SK_BACKLOG_DEFAULT 4096 /* clamped by the kernel to net.core.somaxconn */

typedef struct sk_listen_opts {
    int backlog;   /* 0 = SK_BACKLOG_DEFAULT */
    int reuseport; /* set SO_REUSEPORT (prefork-style sharding) */
    int nonblock;  /* leave the listening socket non-blocking */
} sk_listen_opts;

typedef struct sk_listener {
    int fd;
    sk_transport transport;
    sk_endpoint local;                  /* what the kernel actually bound (getsockname) */
    char name[SK_NAME_MAX];             /* local formatted, e.g. "tcp://[::]:40123" */
    char unlink_path[SK_UNIX_PATH_MAX]; /* socket file we created, "" if none (and for
                                         * adopted fd:/sd: sockets: never ours to remove) */
    dev_t dev;                          /* identity of that file, so we only remove our own */
    ino_t ino;
} sk_listener;

/*
 * Open server sockets for an address: bind (and listen, for streams) every
 * resolved endpoint. A wildcard TCP/UDP address gives one dual-stack IPv6
 * socket (IPv4 too), or an IPv4 one where IPv6 is unavailable. With port 0 the
 * kernel picks the port, and later endpoints of the same address reuse it.
 * A Unix socket file left by a dead server is replaced; a live server's, or a
 * file that is not a socket, is an error. Writes up to `cap` listeners to out,
 * their number to *n. Returns 0 or -1 (nothing left open on failure).
 */
int sk_listen(const sk_addr *a, const sk_listen_opts *o, sk_listener *out, size_t cap, size_t *n,
              sk_err *err);

/* Close a listener; remove its Unix socket file if that file is still ours. */
void sk_listener_close(sk_listener *l);

/*
 * Connect to an address, trying every resolved endpoint in turn, each with
 * `timeout_ms` (<= 0: the kernel's own timeout). Datagram sockets are connected
 * too (so only the peer's replies arrive); a Unix datagram client binds an
 * autobound (abstract) name so that it can receive replies.
 * Returns a blocking, close-on-exec descriptor, or -1 with e.g.
 *   connect tcp://127.0.0.1:9: Connection refused
 * If peer is not NULL it receives the endpoint that answered.
 */
int sk_connect(const sk_addr *a, int timeout_ms, sk_endpoint *peer, sk_err *err);

/*
 * As sk_connect, from a chosen source (netcat's -s and -p): the socket is
 * bound to src_host (a name or literal; NULL or "" = any) and src_port (NULL
 * or "" = any) before it connects, the source resolved for each endpoint's
 * family (an endpoint the source has no address for is skipped). TCP and UDP
 * only. Returns the descriptor, or -1 with e.g.
 *   bind source tcp://10.9.9.9:0: Cannot assign requested address
 */
int sk_connect_from(const sk_addr *a, const char *src_host, const char *src_port, int timeout_ms,
                    sk_endpoint *peer, sk_err *err);

/* accept() with close-on-exec (and O_NONBLOCK when nonblock), retrying EINTR and
 * ECONNABORTED. Returns the fd, or -1 with errno set (EAGAIN, EMFILE, ...). */
int sk_accept(int lfd, struct sockaddr *peer, socklen_t *peerlen, int nonblock);

/*
 * Tell the service manager how we are (sd_notify(3), without libsystemd):
 * send `state`, one or more "KEY=VALUE" lines such as "READY=1", "STOPPING=1",
 * "RELOADING=1" (MONOTONIC_USEC=now is added, as Type=notify-reload wants) or
 * "STATUS=serving 3 connections", as one datagram to the Unix socket named by
 * NOTIFY_SOCKET (a path, or @NAME: abstract). NOTIFY_SOCKET is read on the
 * first call (or sk_notify_enabled) and unset, so children do not inherit it.
 * Returns 1 sent, 0 when NOTIFY_SOCKET is not set (nothing to do), -1 with
 * err (a malformed NOTIFY_SOCKET is a usage error). Thread-safe.
 */
int sk_notify(const char *state, sk_err *err);
/* 1 if NOTIFY_SOCKET was set (sk_notify has somewhere to send), else 0. */
int sk_notify_enabled(void);

int sk_set_nonblock(int fd, int on); /* 0 or -1 with errno */
int sk_set_cloexec(int fd);          /* 0 or -1 with errno */

/* --------------------------------------------------------------------- I/O */

/* Monotonic clock in milliseconds. */
int64_t sk_now_ms(void);

/* Ignore SIGPIPE process-wide (writes then fail with EPIPE). */
void sk_ignore_sigpipe(void);

/*
 * Write all len bytes (looping over short writes, EINTR, and EAGAIN on a
 * non-blocking fd by waiting in poll). Uses send(MSG_NOSIGNAL) on sockets.
 * `deadline_ms` is an sk_now_ms() time, or -1 for none.
 * Returns len, or -1 with errno set (ETIMEDOUT at the deadline).
 */
ssize_t sk_write_all(int fd, const void *buf, size_t len, int64_t deadline_ms);

/*
 * Read at most cap bytes, waiting until deadline_ms (sk_now_ms() time, -1 for
 * none). Retries EINTR. Returns bytes read (>0), 0 at end of file, or -1 with
 * errno set (ETIMEDOUT when the deadline passed with nothing to read).
 */
ssize_t sk_read_deadline(int fd, void *buf, size_t cap, int64_t deadline_ms);

/*
 * Wait until fd is ready for `events` (POLLIN/POLLOUT) or the deadline.
 * Returns 1 ready, 0 timed out, -1 error (errno). Retries EINTR.
 */
int sk_wait_fd(int fd, short events, int64_t deadline_ms);

/* ----------------------------------------------------------------- buffers */

/*
 * A byte queue: bytes are appended at the end and consumed from the front.
 * Storage is allocated on first use and grows up to `max` bytes (0 = no limit).
 */
typedef struct sk_buf {
    uint8_t *data;
    size_t off; /* start of unconsumed bytes */
    size_t len; /* number of unconsumed bytes */
    size_t cap;
    size_t max;
} sk_buf;

/* Append n bytes. Returns 0, or -1 (errno ENOBUFS past max, ENOMEM). */
int sk_buf_append(sk_buf *b, const void *p, size_t n);
/* Drop n bytes from the front. */
void sk_buf_consume(sk_buf *b, size_t n);
/* Pointer to the first unconsumed byte. */
static inline const uint8_t *sk_buf_head(const sk_buf *b)
{
    return b->data ? b->data + b->off : (const uint8_t *)"";
}
/* Make room for n more bytes at the tail (compacting or growing) and return a
 * pointer to it; commit what was written with sk_buf_commit. NULL with errno
 * ENOBUFS (past max) or ENOMEM. */
uint8_t *sk_buf_reserve(sk_buf *b, size_t n);
void sk_buf_commit(sk_buf *b, size_t n);
/* Free the storage (the buffer may be used again). */
void sk_buf_free(sk_buf *b);

/* -------------------------------------------------------------------- relay */

typedef struct sk_relay_opts {
    int idle_timeout_ms;  /* stop after this much silence both ways (0 = none) */
    int dgram_linger_ms;  /* datagrams: after input ends, stop after this much silence
                           * (< 0: never; go on until the idle timeout) */
    int stream;           /* 1: net_fd is a stream (half-close at input EOF) */
    int stop_at_peer_eof; /* streams: end when the peer closes, even if input goes on
                           * (for a terminal on stdin; otherwise input is still sent
                           * until it ends or the peer refuses it) */
    size_t bufsize;       /* received bytes that may wait for out_fd; 0 = 64 KiB */
    int crlf;             /* send each LF of input as CR LF (a CR LF stays as it is), as
                           * nc -C does for line protocols (SMTP, HTTP by hand) */
} sk_relay_opts;

typedef struct sk_relay_stats {
    uint64_t to_net;   /* bytes sent */
    uint64_t from_net; /* bytes received */
} sk_relay_stats;

/*
 * Copy in_fd to net_fd and net_fd to out_fd until both directions are done,
 * with bounded buffers (a slow side stops the other from reading further).
 * out_fd is written when poll() says it is writable; if it is a blocking pipe
 * a large write may still wait for its reader (the caller's descriptors are
 * not switched to non-blocking mode, since other processes may share them).
 * Streams: at end of input, the socket's write side is shut down and the relay
 * keeps copying from the network until the peer closes. Datagrams: each read
 * of input becomes one datagram; after input ends, the relay stops after
 * dgram_linger_ms without a datagram. Returns 0, or -1 on an I/O error
 * (e.g. "read socket: Connection reset by peer"). Input the peer refused or
 * could no longer take (it closed or reset the connection first) is an error
 * too, after what the peer sent has been written out:
 *   connection reset by peer: 12345 bytes of input not delivered
 * (err->code ECONNRESET or EPIPE). SIGPIPE is held blocked while the relay
 * runs, so a closed peer or output is an error, never the end of the process.
 */
int sk_relay(int net_fd, int in_fd, int out_fd, const sk_relay_opts *o, sk_relay_stats *st,
             sk_err *err);

/* --------------------------------------------------------------------- TLS */

/*
 * TLS contexts (OpenSSL 3). One sk_tls holds the settings for one role: a
 * client's trust (CA, pins, name checked) or a server's certificates. Both
 * roles speak TLS 1.2 and 1.3 only, TLS 1.2 with ECDHE + AEAD suites only, no
 * renegotiation, no compression; OpenSSL's buffers are released while a
 * connection is idle, and kernel TLS is asked for where the kernel has it.
 *
 * TLS connections write with send(MSG_NOSIGNAL): they never raise SIGPIPE.
 *
 * Server side, for the engine: a listener with a TLS context makes each
 * accepted connection's transport with
 *     sk__tp_tls(&c->tp, ctx, fd, 1, "tcp://PEER:PORT", &err)   (src/lib/tls.h)
 * instead of sk__tp_plain(), then drives sk__tp_tls_handshake(&c->tp) (1 done,
 * SK_TP_AGAIN: wait for c->tp.want, SK_TP_ERR: close, log
 * sk__tp_tls_error(&c->tp)) before the service's on_open. The handshake
 * counts against --max-conns and its deadline (10 s by default) is the
 * connection's first timer; after it, reads, writes, shutdown and close are
 * the ordinary transport calls (a write may wait for readability: t->want).
 */
typedef struct sk_tls sk_tls;

typedef struct sk_tls_client_opts {
    const char *host;        /* the server's name or address as the user gave it: checked
                              * against the certificate (and sent as SNI if a name) */
    const char *sni;         /* send this name instead, and check the certificate for it */
    const char *ca;          /* PEM file or hashed directory replacing the system store */
    const char *const *pins; /* "sha256:HEX" (SHA-256 of the SubjectPublicKeyInfo); the
                              * leaf key must match one; a match alone is trusted */
    size_t npins;
    int insecure;     /* no verification at all (pins still apply when given) */
    const char *alpn; /* comma list offered, e.g. "h2,http/1.1" */
    const char *cert; /* client certificate (PEM, with chain) and its key */
    const char *key;  /* NULL: the key is in cert's file */
} sk_tls_client_opts;

typedef struct sk_tls_pair {
    const char *cert; /* PEM: the leaf first, then its chain */
    const char *key;  /* PEM private key; NULL: in cert's file */
} sk_tls_pair;

typedef struct sk_tls_server_opts {
    const sk_tls_pair *pairs; /* the first is the default; another is used when its
                               * names match the client's SNI. None: an ephemeral
                               * self-signed ECDSA P-256 certificate (localhost,
                               * 127.0.0.1, ::1), see sk_tls_fingerprint */
    size_t npairs;
    const char *client_ca;   /* verify client certificates against this (file or dir) */
    int require_client_cert; /* refuse clients without one (needs client_ca) */
    const char *alpn;        /* comma list, in our order of preference */
} sk_tls_server_opts;

/* Create a context. Returns NULL with err on failure: one line naming the
 * file or setting and what to do, e.g. "TLS: --cert x.pem: no such file"
 * (err->usage set for bad settings). The options' strings are copied. */
sk_tls *sk_tls_client_new(const sk_tls_client_opts *o, sk_err *err);
sk_tls *sk_tls_server_new(const sk_tls_server_opts *o, sk_err *err);
/* Re-read a server's certificate, key and CA files (on SIGHUP). Connections
 * made later use the new ones; on error (-1, err) the old ones stay in use.
 * Not async-signal-safe: call it from the loop, not from the handler. */
int sk_tls_reload(sk_tls *ctx, sk_err *err);
/* "sha256:<64 hex>": the SPKI SHA-256 of a server's (first) certificate,
 * what a client pins. Returns the length written, or -1 if cap < 72 or ctx
 * has no certificate. */
int sk_tls_fingerprint(const sk_tls *ctx, char *buf, size_t cap);
/* 1 when the server made its own ephemeral certificate. */
int sk_tls_is_ephemeral(const sk_tls *ctx);
/* Free a context. Established connections made from it keep what they need;
 * a client context must outlive the handshakes it checks. NULL is allowed. */
void sk_tls_free(sk_tls *ctx);

/* One TLS connection over a connected stream socket, for clients. */
typedef struct sk_tls_conn sk_tls_conn;

typedef struct sk_tls_info {
    char version[16];       /* "TLSv1.3" */
    char cipher[64];        /* "TLS_AES_256_GCM_SHA384" */
    char alpn[64];          /* the protocol agreed, "" if none */
    char peer_subject[256]; /* the verified peer certificate's subject, "" if none */
    int resumed;            /* the session was resumed */
    int ktls_send;          /* kernel TLS is sending */
} sk_tls_info;

/*
 * Start TLS on the connected socket fd and complete the handshake, within
 * timeout_ms (<= 0: 10 s). fd is made non-blocking. peer names the peer in
 * errors ("tcp://127.0.0.1:8443"). Returns the connection, which owns fd from
 * then on, or NULL with err ("TLS: certificate verify failed for ...: ...");
 * on failure fd stays the caller's to close.
 */
sk_tls_conn *sk_tls_conn_new(sk_tls *ctx, int fd, int is_server, const char *peer, int timeout_ms,
                             sk_err *err);
void sk_tls_conn_info(const sk_tls_conn *c, sk_tls_info *info);
/* sk_relay over the TLS connection: at end of input a close_notify is sent
 * and the relay reads until the peer's; an end of stream without one is an
 * error ("TLS: connection closed without close_notify: data may be
 * truncated"). Returns 0 or -1 with err. */
int sk_tls_relay(sk_tls_conn *c, int in_fd, int out_fd, const sk_relay_opts *o, sk_relay_stats *st,
                 sk_err *err);
/* Close the socket and free the connection (no close_notify: sk_tls_relay
 * sends it). NULL is allowed. */
void sk_tls_conn_close(sk_tls_conn *c);

/* ---------------------------------------------------------- access control */

/*
 * An access list: who may connect (--allow/--deny). Rules are kept in the
 * order they were added; the first rule that matches a peer decides. When at
 * least one allow rule (or an allow file, even an empty one) was added, a
 * peer no rule matches is denied; with deny rules only, it is allowed. An
 * empty list allows everyone.
 *
 * SPEC, the one grammar: an IPv4 or IPv6 address, or a CIDR block
 * (`10.0.0.0/8`, `2001:db8::/32`, `::1`), or `unix` (peers on Unix sockets).
 * IPv4 is read strictly: four decimal numbers 0-255, no leading zeros, nothing
 * else. Names are never resolved. An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`,
 * what a dual-stack socket reports for an IPv4 client) is matched as the IPv4
 * address it carries: IPv6 rules, `::/0` included, never match an IPv4 client,
 * and `0.0.0.0/0` matches every IPv4 client.
 *
 * The list is read-only once built: sk_access_check may be called from any
 * number of threads (and processes) at once.
 */
typedef struct sk_access sk_access;

/* A new, empty list (allows everyone), or NULL when out of memory. Free it
 * with sk_access_free. */
sk_access *sk_access_new(void);
/*
 * Append one rule: allow (1) or deny (0) the peers SPEC names. Returns 0, or
 * -1 with a usage error naming the entry, e.g.
 *   bad address "10.0.0.1/8": host bits set; did you mean 10.0.0.0/8?
 *   bad address "1.2.3": incomplete IPv4 address (four numbers needed)
 *   bad address "010.0.0.1": leading zeros are ambiguous (octal to some parsers)
 *   bad address "example.com": host names are not resolved; give an address
 * (or ENOMEM, not a usage error). Nothing is added on failure.
 */
int sk_access_add(sk_access *a, int allow, const char *spec, sk_err *err);
/*
 * Append the rules of a file: one SPEC per line; `#` starts a comment; blank
 * lines and spaces around a SPEC are ignored. An allow file makes unmatched
 * peers denied even if it holds no rule. Returns 0, or -1 with an error
 * naming the file and line:
 *   deny.txt:3: bad address "010.0.0.1": leading zeros are ambiguous (octal to some parsers)
 * (a file that cannot be read: "deny.txt: No such file or directory", a usage
 * error too). On failure no rule of the file is added.
 */
int sk_access_add_file(sk_access *a, int allow, const char *path, sk_err *err);
/* 1 if the peer is allowed, 0 if denied. `len` is what accept()/recvfrom()
 * returned; an AF_UNIX peer (named or not) is a "unix" peer. A peer of
 * another family, or too short to hold its address, matches no rule. */
int sk_access_check(const sk_access *a, const struct sockaddr *peer, socklen_t len);
/* The number of rules (for messages such as "3 access rules"). */
size_t sk_access_count(const sk_access *a);
void sk_access_free(sk_access *a); /* NULL is fine */

/*
 * Per-source limits: at most max_per_source connections at once from one
 * source, and a token bucket of `rate` new connections (or datagrams) per
 * second with room for `burst`, per source. A source is an IPv4 address (an
 * IPv4-mapped IPv6 peer counts as its IPv4 address) or an IPv6 /64; Unix
 * peers are not limited. Only the offending source is refused.
 *
 * The table of sources has a fixed capacity; when it is full, the least
 * recently seen source is forgotten first. Lookups are O(1) (a hash table).
 * The table lives in memory shared with child processes (MAP_SHARED) under a
 * process-shared mutex, so a forking server's processes share one count:
 * create it before fork. All calls are thread-safe.
 */
typedef struct sk_limits sk_limits;

#define SK_LIMITS_CAPACITY_DEFAULT 65536

/* max_per_source: 0 = no count limit; rate: new connections per second per
 * source, 0 = no rate limit; burst: the bucket's size (0 = rate, at least 1);
 * capacity: sources remembered (0 = SK_LIMITS_CAPACITY_DEFAULT).
 * Returns the table, or NULL with err (a usage error for bad values). */
sk_limits *sk_limits_new(int max_per_source, double rate, int burst, size_t capacity, sk_err *err);

#define SK_LIMIT_OK 0    /* admitted */
#define SK_LIMIT_COUNT 1 /* refused: max_per_source connections already open */
#define SK_LIMIT_RATE 2  /* refused: the source's bucket is empty */

#define SK_LIMITS_HOLD 0x1 /* count a connection (release it with sk_limits_release) */

/*
 * A new connection (flags SK_LIMITS_HOLD) or datagram (0) from peer at time
 * now_ms (sk_now_ms(), or any monotonic milliseconds: tests inject a clock).
 * Returns SK_LIMIT_OK (a held connection is counted, and a token taken),
 * SK_LIMIT_COUNT or SK_LIMIT_RATE (nothing counted, no token taken).
 */
int sk_limits_acquire(sk_limits *l, const struct sockaddr *peer, socklen_t len, int64_t now_ms,
                      unsigned flags);
/* A held connection from peer ended. Harmless if the source was forgotten. */
void sk_limits_release(sk_limits *l, const struct sockaddr *peer, socklen_t len);
/* Sources remembered now (for tests and statistics). */
size_t sk_limits_sources(sk_limits *l);
/* Connections held now by peer's source (0 if unknown). */
int sk_limits_held(sk_limits *l, const struct sockaddr *peer, socklen_t len);
void sk_limits_free(sk_limits *l); /* in the process that created it; NULL is fine */

/* ------------------------------------------------------- the PROXY protocol */

/*
 * The PROXY protocol (haproxy's doc/proxy-protocol.txt), v1 (text) and v2
 * (binary), as a load balancer puts it in front of a connection to say who
 * the real client is. The parser does no I/O and no allocation (as
 * picohttpparser): call it with everything received so far, again with more
 * when it asks for more.
 */
typedef struct sk_proxy_bytes {
    const uint8_t *p; /* into the caller's buffer; NULL when absent */
    size_t len;
} sk_proxy_bytes;

typedef struct sk_proxy_info {
    int version; /* 1 or 2 */
    /* 1: use the connection's real endpoints, src/dst are not set: v2 LOCAL
     * (a health check; an address it carries is ignored, as the spec says),
     * v1 UNKNOWN, or a v2 PROXY header of family or protocol UNSPEC. */
    int local;
    int socktype; /* SOCK_STREAM or SOCK_DGRAM (v1: always SOCK_STREAM); 0 if local */
    struct sockaddr_storage src, dst; /* AF_INET, AF_INET6 or AF_UNIX (v2) */
    socklen_t src_len, dst_len;
    /* v2 TLVs (each points into the buffer parsed; absent: p NULL) */
    sk_proxy_bytes alpn, authority, unique_id, netns;
    int crc32c; /* 1: a CRC32C TLV was present and verified */
    int ssl;    /* 1: an SSL TLV was present */
    uint8_t ssl_client;
    uint32_t ssl_verify;
    sk_proxy_bytes ssl_version, ssl_cn, ssl_cipher, ssl_sig_alg, ssl_key_alg;
    /* On error: what was wrong ("v1: no CRLF within 107 bytes") and the offset
     * of the byte that showed it. */
    const char *error;
    size_t error_at;
} sk_proxy_info;

#define SK_PROXY_V1_MAX 107 /* a v1 line, CRLF included */

/* Negative results of sk_proxy_parse */
#define SK_PROXY_EBADSIG (-1) /* neither signature: not a PROXY header */
#define SK_PROXY_EV1 (-2)     /* a malformed v1 line */
#define SK_PROXY_EV2 (-3)     /* a malformed v2 header */
#define SK_PROXY_ETLV (-4)    /* a v2 TLV out of bounds or malformed */
#define SK_PROXY_ECRC (-5)    /* the v2 CRC32C TLV does not match the header */

/*
 * Parse the header at the start of buf[0..len). Returns:
 *   > 0  complete: the header's length (bytes after it, a second header
 *        included, are the connection's data and are not looked at);
 *   0    incomplete so far: call again with more bytes;
 *   < 0  malformed (SK_PROXY_E*): out->error and out->error_at say why and
 *        where. The caller must close the connection.
 * Never guesses: buf must start with one of the two signatures, and a buffer
 * is malformed at the first byte that rules both out. Strict as the spec: a
 * v1 line ends in CRLF within 107 bytes, with canonical addresses and
 * numbers (no leading zeros); a v2 header's length is always honoured, its
 * TLVs are parsed within bounds, and a CRC32C TLV is verified.
 * out is filled on success (and partly on error); pointers in it point into buf.
 */
int sk_proxy_parse(const uint8_t *buf, size_t len, sk_proxy_info *out);
/* A short text for a negative result ("malformed v2 header"). */
const char *sk_proxy_strerror(int code);
/* CRC32C (Castagnoli, RFC 4960 appendix B) of buf, for writers of v2 headers. */
uint32_t sk_crc32c(const uint8_t *buf, size_t len);

#define SK_PROXY_V2_MAX (16 + 65535) /* a v2 header: 16 fixed bytes and its length */
/*
 * Write a PROXY header saying that the connection from src to dst is being
 * passed on (what a proxy sends first on its connection to the server).
 * version 1: "PROXY TCP4|TCP6 ...\r\n" for two addresses of one IP family
 * (an IPv4-mapped IPv6 pair is written as TCP4), "PROXY UNKNOWN\r\n" for
 * anything else (Unix sockets, mixed families, src NULL). version 2: PROXY
 * over TCP (INET, INET6) or UNIX STREAM (the paths, NUL-padded to 108 bytes),
 * or LOCAL when src is NULL or the families differ or are not IP/Unix (the
 * receiver then uses the connection's real endpoints). No TLVs.
 * Returns the header's length (at most 107 for v1, 232 for v2), or -1 if cap
 * is too small or version is neither 1 nor 2. Nothing is allocated.
 */
int sk_proxy_format(uint8_t *buf, size_t cap, int version, const struct sockaddr *src,
                    socklen_t src_len, const struct sockaddr *dst, socklen_t dst_len);

/* ------------------------------------------------------------ the server */

typedef struct sk_server sk_server;
typedef struct sk_conn sk_conn;

/*
 * One datagram as a datagram service sees it (on_datagram), the way a stream
 * service sees a connection: the server, the service's state, the bytes that
 * arrived and their sender, and room for at most one reply. All of it belongs
 * to the engine and is valid only during the call.
 */
typedef struct sk_dgram {
    sk_server *server;
    void *state; /* the service's global state (from init) */
    const uint8_t *data;
    size_t len;
    const struct sockaddr *peer; /* the sender; peerlen <= sizeof(sa_family_t): unnamed */
    socklen_t peerlen;
    sk_transport transport;
    uint8_t *reply;   /* cap bytes where the reply may be written */
    size_t cap;       /* SK_DGRAM_MAX */
    size_t reply_len; /* in: 0; out: the reply's length */
} sk_dgram;

/* Copy len bytes (at most d->cap) to d->reply and set d->reply_len. Returns 1
 * (so `return sk_dgram_reply(d, p, n);` answers), or 0 if len > d->cap. */
int sk_dgram_reply(sk_dgram *d, const void *data, size_t len);

/* Service flags */
#define SK_SVC_STREAM 0x1u /* runs on stream transports (on_open .. on_close) */
#define SK_SVC_DGRAM 0x2u  /* runs on datagram transports (on_datagram) */
#define SK_SVC_SHARED                                                                              \
    0x4u /* connections interact: needs a model that serves them at the                            \
          * same time in one address space (thread, select, poll, epoll) */
/* hotpath: the service never looks at what a stream connection sends
 * (discard): the engine may drop those bytes in the kernel without copying
 * them (TCP on Linux) and without calling on_data; they are still counted. */
#define SK_SVC_DISCARDS_INPUT 0x100u

/* With verbose, the service logs its own line per connection (the relay):
 * the engine's "connection from" and "closed" lines are left out. */
#define SK_SVC_OWN_LOG 0x8u

#define SK_DGRAM_MAX 65536 /* largest datagram a service receives or sends */

/*
 * Service options. A service declares the command-line options it takes in a
 * table and receives their values through its configure callback, into a
 * settings struct of its own (config_size bytes). `sockit serve` builds its
 * --help and its option parsing from these tables; a program using the
 * library sets the same options by name:
 *
 *     const sk_service *http = sk_service_find("http");
 *     void *cfg = sk_service_config_new(http, &err);
 *     sk_service_set(http, cfg, "root", "/srv/www", &err);
 *     sk_service_set(http, cfg, "listing", NULL, &err);
 *     sk_server_opts o = {.service = http, .service_config = cfg};
 *     ... sk_server_new(&o, &err) ... sk_server_free(s);
 *     sk_service_config_free(http, cfg);
 */
typedef enum sk_opt_kind {
    SK_OPT_FLAG = 1, /* no value: on when given ("--listing") */
    SK_OPT_STRING,   /* any non-empty text */
    SK_OPT_NUMBER,   /* a non-negative decimal integer ("1000") */
    SK_OPT_SECONDS,  /* non-negative seconds with an optional fraction ("1.5") */
    SK_OPT_PATH,     /* a file or directory name (non-empty; "-" may mean stdout) */
} sk_opt_kind;

typedef struct sk_svc_option {
    const char *name; /* without the dashes: "root" is --root; NULL ends a table */
    const char *arg;  /* the value's name in --help ("DIR"); NULL for a flag */
    const char *help; /* one line for --help */
    sk_opt_kind kind;
} sk_svc_option;

/*
 * A service is a protocol handler, written once and run unchanged by every
 * concurrency model. Stream callbacks run in the connection's own flow of
 * control; they never block: they queue output with sk_conn_send() and return.
 * Every callback is optional.
 */
typedef struct sk_service {
    const char *name;
    const char *summary; /* one line for --help */
    unsigned flags;      /* SK_SVC_* */
    size_t conn_size;    /* bytes of zeroed per-connection state (sk_conn_data) */

    /* Once, before serving. *state is passed to every connection
     * (sk_conn_state). State that must survive fork() belongs in shared memory. */
    int (*init)(sk_server *srv, void **state, sk_err *err);
    void (*fini)(void *state);

    void (*on_open)(sk_conn *c);                                  /* connected */
    void (*on_data)(sk_conn *c, const uint8_t *data, size_t len); /* bytes arrived */
    void (*on_eof)(sk_conn *c);     /* peer shut down its side; default: close when flushed */
    void (*on_drain)(sk_conn *c);   /* output queue emptied, after sk_conn_want_drain(c,1) */
    void (*on_close)(sk_conn *c);   /* about to be freed */
    void (*on_timeout)(sk_conn *c); /* the timer of sk_conn_set_timer ran out */

    /* One datagram in, at most one out: write up to d->cap bytes to d->reply,
     * set d->reply_len, and return 1 to send the reply or 0 to stay silent. */
    int (*on_datagram)(sk_dgram *d);

    /* Options (see sk_svc_option): the table, ending with {NULL}, or NULL.
     * A service with options has config_size > 0 and configure. */
    const sk_svc_option *options;
    size_t config_size; /* bytes of the service's settings (sk_service_config_new) */
    /* Fill freshly zeroed settings with the defaults; NULL: all zero. */
    void (*config_defaults)(void *config);
    /* Take one option's value (option: the name from the table; value: NULL
     * for a flag, else text already checked against the option's kind).
     * Strings are not copied: they must outlive the settings (argv does).
     * Returns 0, or -1 with a usage error naming the option. */
    int (*configure)(void *config, const char *option, const char *value, sk_err *err);
    /* Used by sk_server_new when sk_server_opts.idle_timeout_ms is 0; 0: none. */
    int idle_timeout_ms;
    /* One line for the operator saying what a listener serves, e.g.
     * "serving /srv/www at http://[::]:8080/", without "sockit: " or a newline.
     * config is the settings (NULL: the defaults). Writes at most cap bytes
     * (NUL included) and returns the length, or 0 when there is nothing to say. */
    size_t (*describe)(const void *config, const sk_listener *l, char *buf, size_t cap);
    /* SIGHUP (sk_server_reload): re-read the files the service read at init
     * (http: --auth) and swap them in for new requests. Returns 1 if it
     * re-read something, 0 if there was nothing to re-read, -1 with err (the
     * old files stay in use). NULL: nothing to re-read. */
    int (*reload)(sk_server *srv, void *state, sk_err *err);
    /* The words after `--` on the command line (exec: the program and its
     * arguments), through sk_service_set_args; NULL: the service takes none.
     * argv is not copied: it must outlive the settings (main's argv does).
     * args_usage names them in --help ("PROGRAM [ARGS...]"). */
    int (*args)(void *config, int argc, char *const *argv, sk_err *err);
    const char *args_usage;
    /* Over TLS, the application protocols (ALPN, comma-separated) offered when
     * the operator names none (http: "http/1.1", what browsers and curl ask
     * for). NULL: none. */
    const char *alpn;
} sk_service;

/* Find a built-in service by name (ack, echo, ...), or NULL. */
const sk_service *sk_service_find(const char *name);
/* The built-in services, NULL-terminated. */
const sk_service *const *sk_services(void);

/* The option of svc called name (without dashes), or NULL. */
const sk_svc_option *sk_service_option(const sk_service *svc, const char *name);
/* New settings for svc holding its defaults (config_size bytes; a service
 * without settings still gets a valid, empty object). Free them with
 * sk_service_config_free once no server uses them. NULL with err if out of memory. */
void *sk_service_config_new(const sk_service *svc, sk_err *err);
void sk_service_config_free(const sk_service *svc, void *config);
/*
 * Set option name (without dashes) of svc in config (from sk_service_config_new)
 * to value (NULL for a flag). The value is checked against the option's kind
 * first. Returns 0, or -1 with a usage error such as
 *   --root is an option of the http service, not of echo
 *   --listing takes no value
 *   --index needs a value (NAME)
 */
int sk_service_set(const sk_service *svc, void *config, const char *name, const char *value,
                   sk_err *err);

/* ------------------------------------------------------- the exec service */

/*
 * `exec` runs a program per connection (inetd nowait, ncat -k -e) with its
 * stdin and stdout joined to the connection, and per datagram (the datagram
 * on stdin, its stdout the reply). The program is given as the words after
 * `--` (sk_service_set_args), or as a shell command with the option "sh":
 *
 *     const sk_service *ex = sk_service_find("exec");
 *     void *cfg = sk_service_config_new(ex, &err);
 *     char *prog[] = {"/bin/cat", NULL};
 *     sk_service_set_args(ex, cfg, 1, prog, &err);
 *     sk_service_set(ex, cfg, "timeout", "30", &err);   (also "env", "pass-env")
 *
 * Set the words after `--` on the command line for svc (exec: PROGRAM and
 * its ARGS). argv is borrowed, not copied. Returns 0, or -1 with a usage
 * error (the service takes no such words, or they are malformed), e.g.
 *   the echo service takes no words after --
 */
int sk_service_set_args(const sk_service *svc, void *config, int argc, char *const *argv,
                        sk_err *err);

/* Connection interface for service callbacks. */
void *sk_conn_data(sk_conn *c);  /* the service's per-connection bytes */
void *sk_conn_state(sk_conn *c); /* the service's global state (from init) */
sk_server *sk_conn_server(sk_conn *c);
int sk_conn_fd(sk_conn *c);
sk_transport sk_conn_transport(const sk_conn *c);
/* Queue bytes for the peer (a copy is taken). Returns 0, or -1 if the
 * connection is closing or its queue limit was passed (the connection is then
 * closed). The simple case of sk_conn_queue. */
int sk_conn_send(sk_conn *c, const void *data, size_t len);
/*
 * Queue bytes for another connection, from any thread (the broker's fan-out).
 * Only for services with SK_SVC_SHARED. The bytes join the target's queue in
 * its own thread; the target is closed if its queue passes its limit (a slow
 * reader is dropped, never allowed to grow memory without bound).
 * Returns 0, or -1 if the target is over its limit or closing.
 * Lifetime: target must not have been freed. It is alive from before its
 * on_open until its on_close returns, and on_close runs in the target's own
 * thread: so keep the connections you post to in a list under your own lock,
 * add them in on_open, remove them in on_close under that lock, and post only
 * while holding it (as the broker does). The bytes are copied before return.
 */
int sk_conn_post(sk_conn *target, const void *data, size_t len);
/*
 * One piece of output, for sk_conn_queue:
 *   SK_SEG_BYTES  len bytes at mem, copied now (as sk_conn_send).
 *   SK_SEG_MEM    len bytes at mem, sent in place without a copy (a mapped
 *                 file, a shared buffer): mem must stay valid until the
 *                 connection calls release(arg) (release may be NULL for
 *                 memory that lives as long as the program).
 *   SK_SEG_FILE   len bytes of the open file fd from offset off, sent with
 *                 sendfile() where the system has it (never a user-space copy
 *                 on a plain socket). With release NULL the connection owns fd
 *                 and closes it when sent or dropped; otherwise fd stays the
 *                 caller's and the connection calls release(arg) once it no
 *                 longer needs it (descriptors shared between responses). If the
 *                 file turns out shorter than len, the connection is reset: the
 *                 length promised to the peer cannot be kept.
 *   SK_SEG_PIPE   len bytes already waiting in the pipe fd (its read end,
 *                 non-blocking), sent with splice() without a user-space copy
 *                 (Linux, plain connections only: elsewhere, and over TLS, the
 *                 call fails with EOPNOTSUPP). The pipe must hold exactly the
 *                 queued PIPE segments' bytes, in order; release and fd
 *                 ownership as for FILE (a relay passes a release and keeps
 *                 its pipe).
 */
typedef enum sk_seg_kind { SK_SEG_BYTES = 1, SK_SEG_MEM, SK_SEG_FILE, SK_SEG_PIPE } sk_seg_kind;
typedef struct sk_seg {
    sk_seg_kind kind;
    const void *mem; /* BYTES, MEM */
    int fd;          /* FILE, PIPE */
    off_t off;       /* FILE: where the bytes start */
    uint64_t len;
    void (*release)(void *arg); /* MEM, FILE, PIPE: see above */
    void *arg;
} sk_seg;
/*
 * Queue a segment after everything queued so far (bytes queued later go after
 * it; a MEM segment directly after queued bytes leaves in the same sendmsg).
 * Returns 0, or -1 if the connection is closing, out of memory or over its
 * queue limit (it is then closed). Either way the segment's owner is told when
 * the connection is done with it: release(arg) or close(fd) is called exactly
 * once, at once when the call fails or len is 0.
 */
int sk_conn_queue(sk_conn *c, const sk_seg *seg);
/* Call the service's on_timeout after ms milliseconds (0 cancels). One timer
 * per connection; setting it again replaces it. Without on_timeout the
 * connection is closed. */
void sk_conn_set_timer(sk_conn *c, int ms);
/* Close once the queued output has been written. */
void sk_conn_close(sk_conn *c);
/* Close now with a reset (RST) instead of an orderly end of stream: queued
 * output is dropped, and the peer learns that the stream broke (a relay
 * whose target reset). on_close still runs. */
void sk_conn_abort(sk_conn *c);
/* Ask for on_drain whenever the output queue empties (chargen's generator). */
void sk_conn_want_drain(sk_conn *c, int on);
/* Bytes queued and not yet written. */
size_t sk_conn_pending(const sk_conn *c);

/*
 * A second descriptor, driven in the connection's own flow of control: a
 * child's pipes (exec), the upstream socket of a relay. The service's
 * callback runs when fd is ready for `events`, in whatever model serves the
 * connection (an event loop watches fd in its loop; a blocking driver polls it
 * with the connection's socket), and afterwards the connection is settled as
 * after on_data: queued output is written, a close or pause takes effect.
 */
#define SK_WATCH_READ 1u  /* readable (also reported on hangup and error) */
#define SK_WATCH_WRITE 2u /* writable */
typedef void sk_conn_watch_cb(sk_conn *c, int fd, unsigned fired, void *arg);
/*
 * Watch fd (non-blocking; it stays the caller's: the engine never reads,
 * writes or closes it) for events, calling cb(c, fd, fired, arg); calling it
 * again for the same fd changes the events, events 0 stops watching. Stop
 * watching a descriptor before closing it; watches left when the connection
 * ends are stopped before on_close, so on_close may close them. A connection
 * with a watch is busy: at stop it gets the grace period. At most 4 per
 * connection. Returns 0, or -1 with errno: ENOSPC (too many), EMFILE (a
 * descriptor the model cannot watch, e.g. >= 1024 under select), ENOMEM.
 */
int sk_conn_watch(sk_conn *c, int fd, unsigned events, sk_conn_watch_cb *cb, void *arg);
/* Stop (on = 1) or resume (0) reading from the peer: backpressure, while
 * what the peer sends has nowhere to go (a child not reading its stdin).
 * Output is still written; the peer's end of stream is seen after resuming. */
void sk_conn_pause_read(sk_conn *c, int on);
/* Half-close: once the queued output is written, end our direction of the
 * stream (the peer reads end of file; TLS sends its close_notify) while the
 * peer's bytes still arrive through on_data and on_eof. Nothing more can be
 * queued. sk_conn_close still ends the connection. */
void sk_conn_shutdown(sk_conn *c);
/*
 * Read hook (zero copy: a relay splices the peer's bytes into a pipe): while
 * set on a plain connection, the engine calls cb(c, fd, arg) whenever it would
 * read from the peer, instead of reading itself; cb moves the bytes from fd
 * (the connection's socket) wherever it likes and returns how many it took
 * (> 0: counted as bytes in, the idle clock restarts; on_data is not
 * called), 0 at the peer's end of stream (on_eof follows), or -1 with errno:
 * EAGAIN (nothing to read now; wait for readability) or an error (the
 * connection is reset, as after a failed read). Backpressure is the
 * service's: sk_conn_pause_read while its other side is full. Once the
 * connection is closing the engine reads (and discards) by itself again.
 * cb NULL removes the hook. Returns 0, or -1 with errno: EOPNOTSUPP (a TLS
 * connection: its bytes must be decrypted; copy them from on_data), ENOMEM.
 */
typedef ssize_t sk_conn_read_cb(sk_conn *c, int fd, void *arg);
int sk_conn_read_hook(sk_conn *c, sk_conn_read_cb *cb, void *arg);
/*
 * The peer as an address word ("tcp://127.0.0.1:40000"); a Unix stream peer
 * by the credentials the kernel gives ("unix peer pid 1234 uid 1000", or
 * "unix peer uid 1000" where there is no pid, else "unix:"). The string is in a buffer of the
 * calling thread, valid until that thread's next sk_conn_peer_name call (on any connection): copy
 * it to keep it. sk_conn_peer_host_port splits the address into host and port (Unix: the path or
 * "unnamed", port 0) into the caller's buffer.
 */
const char *sk_conn_peer_name(sk_conn *c);
void sk_conn_peer_host_port(sk_conn *c, char *host, size_t cap, unsigned *port);
/* The peer's address as the engine holds it (the PROXY header's source on a
 * proxied connection), or NULL for a Unix stream peer (unnamed) or a v2
 * header's Unix source. *len is set to its length. Valid while c is. */
const struct sockaddr *sk_conn_peer_addr(sk_conn *c, socklen_t *len);
/*
 * The TLS session of a connection made on a TLS server (sk_server_opts.tls),
 * or NULL for a plain connection. Services only see a connection once its
 * handshake is complete (on_open comes after it). Version and cipher are
 * static strings ("TLSv1.3", "TLS_AES_256_GCM_SHA384"). The subject is the
 * client certificate's, verified against the server's client CA (RFC 2253:
 * "CN=alice,O=Example"), NULL when the client sent none; it lives in a
 * buffer of the calling thread, valid until its next sk_conn_tls_subject call.
 */
const char *sk_conn_tls_version(sk_conn *c);
const char *sk_conn_tls_cipher(sk_conn *c);
const char *sk_conn_tls_subject(sk_conn *c);
/*
 * PROXY protocol (sk_server_opts.proxy_protocol): 1 if the connection's peer
 * (sk_conn_peer_name, sk_conn_peer_host_port, the access list and limits) is
 * the client address a trusted proxy's header carried, 0 if it is the
 * socket's own peer (no PROXY protocol, or a LOCAL / UNKNOWN header: the
 * proxy's own health check). A v2 header's Unix source shows as "unix:PATH".
 */
int sk_conn_proxied(const sk_conn *c);
/* Replace the trusted PROXY senders (sk_server_opts.proxy_from; NULL: the
 * default, loopback and Unix peers), as sk_server_set_access does for the
 * access list (SIGHUP re-reading --proxy-from-file): checked at every accept
 * from now on; returns the old list, still the caller's (free it only when
 * no thread serves). Forked processes keep theirs. Thread-safe. */
const sk_access *sk_server_set_proxy_from(sk_server *s, const sk_access *a);

/* Concurrency models */
#define SK_MODEL_SHARED 0x1u     /* connections share one address space */
#define SK_MODEL_CONCURRENT 0x2u /* many connections are served at the same time */
#define SK_MODEL_WORKERS 0x4u    /* opts.workers means something (processes, loops) */
#define SK_MODEL_LOOP 0x8u /* an event loop in sk_server_run's thread: sk_server_on_readable */

typedef struct sk_model {
    const char *name;
    const char *summary;
    unsigned caps; /* SK_MODEL_* */
    /* Serve until stopped (or after one connection/datagram with opts.once).
     * Returns 0 on a clean stop, -1 on error. */
    int (*run)(sk_server *srv, sk_err *err);
} sk_model;

const sk_model *sk_model_find(const char *name); /* NULL if unknown */
const sk_model *const *sk_models(void);          /* NULL-terminated */
const char *sk_model_default(void);              /* "epoll" where available */

/* Log levels for the log callback */
#define SK_LOG_ERROR 0
#define SK_LOG_INFO 1 /* -v: connection open/close lines */

typedef struct sk_server_opts {
    const sk_service *service;
    const sk_model *model; /* NULL = sk_model_default() */
    int workers;           /* processes/threads/loops for models that use them; 0 = default */
    int once;              /* serve one connection or datagram, then stop */
    int max_conns;         /* 0 = no limit */
    int idle_timeout_ms;   /* 0 = none */
    int grace_ms;          /* on stop: time for busy connections to finish; 0 = 10 s */
    int verbose;           /* log each connection through `log` */
    size_t max_queue;      /* per-connection output queue limit; 0 = 4 MiB */
    /* Who may connect: checked at accept, before a byte is read or written (a
     * datagram from a denied peer is dropped). NULL = everyone. The list is the
     * caller's and must outlive the server. */
    const sk_access *access;
    int max_per_source; /* connections at once per source (see sk_limits); 0 = no limit */
    double rate;        /* new connections (datagrams) per second per source; 0 = no limit */
    /* With workers on an event model (select, poll, epoll): each loop after
     * the first opens its own SO_REUSEPORT socket on every TCP/UDP listener's
     * address (the listeners must have been opened with reuseport), so the
     * kernel spreads connections between loops instead of all loops waking
     * on one socket. A listener without SO_REUSEPORT (an adopted sd: socket
     * systemd opened without ReusePort=yes) stays shared. */
    int reuseport;
    int burst; /* the rate's bucket size; 0 = rate (at least 1) */
    const void
        *service_config; /* the service's settings (sk_service_config_new); NULL = defaults */
    /* Service output for the operator ("Here is the message: hi"): one or more
     * lines, without the final newline. Called once per report, so a caller
     * that writes it with one write() keeps reports from several processes
     * from interleaving. NULL: discard (-q). */
    void (*report)(void *arg, const char *line, size_t len);
    /* Diagnostics: errors and, with verbose, connection logs. One line, no newline. */
    void (*log)(void *arg, int level, const char *line);
    void *arg; /* passed to report and log */
    /* TLS on every stream listener (sk_tls_server_new; NULL: plain). Borrowed:
     * it must outlive the server; sk_tls_reload on it (SIGHUP) reaches the
     * connections made afterwards. A datagram listener is refused with it. */
    sk_tls *tls;
    int tls_handshake_timeout_ms; /* a connection still in its handshake this long
                                   * is closed (logged with verbose); 0 = 10 s */
    /* The PROXY protocol, v1 or v2, received (sk_proxy_parse): every stream
     * connection must begin with a complete, valid header (before TLS, before
     * the service sees the connection or sends a byte), within
     * proxy_timeout_ms, from a peer in proxy_from; anything else is closed
     * (logged with verbose). The header's source then replaces the peer: the
     * access list and per-source limits are checked against it (not against
     * the proxy), logs and services see it (sk_conn_proxied). A datagram
     * listener is refused with it. */
    int proxy_protocol;
    /* The proxies trusted to send a header, checked at accept on the real
     * peer. Borrowed, as access. NULL: loopback (127.0.0.0/8, ::1) and Unix
     * peers (a Unix socket is reachable only from this machine). */
    const sk_access *proxy_from;
    int proxy_timeout_ms; /* a header not complete by then: closed; 0 = 3 s */
} sk_server_opts;

/* Create a server. Returns NULL with err on failure (e.g. service/model mismatch). */
sk_server *sk_server_new(const sk_server_opts *o, sk_err *err);
/* Hand a listener to the server (it closes it in sk_server_free). Returns 0 or -1. */
int sk_server_add_listener(sk_server *s, const sk_listener *l, sk_err *err);
/*
 * Listen on an address word (the syntax of sk_addr_parse: "8080",
 * "tcp://[::1]:0", "unix:/run/x.sock", ...) and hand every listener it gives
 * to the server, as sk_listen (default backlog, one dual-stack socket for a
 * wildcard, a dead server's Unix socket file replaced) and
 * sk_server_add_listener do. A transport the service does not run on is
 * refused before anything is bound. Returns 0, or -1 with err (usage errors
 * for a malformed address; nothing of this address is left open).
 */
int sk_server_listen(sk_server *s, const char *address, sk_err *err);
/*
 * Serve one connection that is already open (inetd `nowait`, systemd
 * Accept=yes: the connection is on standard input): fd is a connected stream
 * socket, which the server takes over (closed when done, also on error). It
 * is checked against the access list and served to its end in the caller's
 * flow of control (the blocking driver, whatever the model), honouring the
 * idle timeout and sk_server_stop. No listener is needed. Returns 0 (also
 * when the access list refused the peer), or -1 with err: a usage error when
 * fd is not a connected stream socket.
 */
int sk_server_serve_fd(sk_server *s, int fd, sk_err *err);
/* Connections open now and connections (datagrams) served so far, for an idle
 * exit (inetd `wait`). `open` counts in models that share memory (thread,
 * select, poll, epoll, iterative); NULL pointers are skipped. Thread-safe. */
void sk_server_counts(const sk_server *s, long *open, unsigned long *served);
/* Replace the access list (SIGHUP re-reading --allow-file): new connections
 * and datagrams are checked against `a` (NULL: everyone) from now on. Returns
 * the old list, which the caller still owns; a thread may be checking a
 * connection against it at this moment, so free it only when no thread
 * serves (the CLI keeps it until exit). A fork child keeps the list it was
 * forked with; prefork's workers get the new one once sk_server_reload is
 * called (they are replaced). Thread-safe. */
const sk_access *sk_server_set_access(sk_server *s, const sk_access *a);
/*
 * Re-read what the service reads from files (SIGHUP; http: the --auth file),
 * for the requests that come after. Call it from any one thread while the
 * server runs (the CLI's SIGHUP thread does), last in a reload: after
 * sk_tls_reload and sk_server_set_access. Under prefork it then replaces the
 * workers, which keep what they were forked with, gracefully (new workers
 * forked from this process take the new connections within 250 ms; an old
 * one takes no more and exits once its connection is done), whatever this
 * call returns. A fork child keeps what it was forked with. Returns 1 if
 * something was re-read, 0 if the service has nothing to re-read, -1 with
 * err when a file is bad: then what was in use stays in use. (The access
 * list is the caller's: see sk_server_set_access.)
 */
int sk_server_reload(sk_server *s, sk_err *err);
/*
 * Have the serving loop call fn(s, fd, arg) whenever fd is readable (or at
 * its end, or in error): the program's own work on an event (a self-pipe
 * that its SIGHUP handler writes to, a timerfd) then runs in the loop's
 * thread, between the connections' events, and the process needs no thread
 * of its own to wait for it. Call it before sk_server_run, at most
 * SK_SERVER_HOOKS_MAX times. fn runs in the first loop only (one is enough
 * with opts.workers > 1), until sk_server_run returns (also during the grace
 * period of a stop). It must read what made fd readable (else it is called
 * again at once) and not block for long: the loop serves no connection
 * meanwhile. It may call sk_server_stop, sk_server_reload,
 * sk_server_set_access, sk_server_counts. It returns 0 to go on being
 * called, anything else to stop watching fd. The server never closes fd.
 * Returns 1 when the model runs such a loop (caps SK_MODEL_LOOP: select,
 * poll, epoll, uring), 0 when it does not (iterative, fork, thread,
 * prefork: nothing is watched, the caller waits on fd itself, e.g. in a
 * thread), -1 with err when fd is negative or SK_SERVER_HOOKS_MAX are taken.
 */
#define SK_SERVER_HOOKS_MAX 4
int sk_server_on_readable(sk_server *s, int fd, int (*fn)(sk_server *s, int fd, void *arg),
                          void *arg, sk_err *err);
/* Forget the server's Unix socket files: at stop they are not removed (a new
 * process took the listeners over: SIGUSR2). Call it from the thread that
 * stops the server, before sk_server_stop. */
void sk_server_disown_listeners(sk_server *s);
/* The server's i-th listener, in the order added (e.g. to print the port the
 * kernel picked for port 0), or NULL when i is past the last. */
const sk_listener *sk_server_listener(const sk_server *s, size_t i);
/* Run the model. Returns 0 after sk_server_stop() or --once, -1 on a fatal error. */
int sk_server_run(sk_server *s, sk_err *err);
/*
 * Ask the server to stop. Async-signal-safe: call it from a SIGINT/SIGTERM
 * handler. New connections are refused at once (those already in the
 * listeners' backlogs are taken first, event models); idle connections are
 * closed, except that one active in the last second gets up to a second for
 * a request that may be on its way; busy ones (output in flight, or a request
 * that already arrived) get opts.grace_ms to finish. When there are any, one line is logged through
 * opts.log at SK_LOG_ERROR (so it shows without verbose, and with -q):
 *   stopping: 3 busy connections get up to 10 s to finish (Ctrl-C again to stop now)
 */
void sk_server_stop(sk_server *s);
/* 1 once a stop was asked for (as seen by the calling thread's loop or
 * process), else 0: a service ends keep-alive then (http answers with
 * "Connection: close"), so clients stop reusing connections that are about to
 * go. A connection the server accepted just before the stop, whose client has
 * sent nothing yet, is not idle: it gets up to a second (within the grace
 * period) for its first request, which the client would not retry. */
int sk_server_stopping(sk_server *s);
/* Stop now: as sk_server_stop, and busy connections are closed at once
 * (their unsent output is dropped), in every thread and worker process.
 * Async-signal-safe: the CLI calls it on the second SIGINT/SIGTERM. */
void sk_server_stop_now(sk_server *s);
/* Close listeners (removing Unix socket files) and free everything. */
void sk_server_free(sk_server *s);
/* The options the server runs with (for services). */
const sk_server_opts *sk_server_options(const sk_server *s);
/* Send a line to the operator through opts.report (printf-style). */
void sk_server_report(sk_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a line already formatted (len bytes, no newline): no printf,
 * for a service that reports on every read. Does nothing without opts.report. */
void sk_server_report_line(sk_server *s, const char *line, size_t len);
/* Emit a log line through opts.log (printf-style). */
void sk_server_log(sk_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------- forwarding (sockit relay) */

/*
 * The port forwarder behind `sockit relay` (not to be confused with sk_relay
 * above, which joins a socket to stdin/stdout for `connect`).
 *
 * Streams: a service, run by an sk_server like any other (so access lists,
 * per-source limits, every model, TLS on the listening side apply). Each
 * connection gets its own connection to the target: the target is resolved
 * on every connection and each address tried in turn (non-blocking, in the
 * connection's flow of control). Each direction's end of stream is passed on
 * by itself; the connection ends when both directions are done (or `linger`
 * after the first); both directions have bounded buffers (a slow reader on
 * either side stops reading from the other); a reset on either side is
 * passed on as a reset (a cut stream never looks whole). On Linux, plain connections
 * move their bytes with splice() through pipes (no user-space copy).
 * Settings, by name (sk_service_set):
 *   "target"           ADDRESS: a stream address (tcp://, HOST:PORT, unix:); required
 *   "connect-timeout"  SECS per address (default: the kernel's)
 *   "linger"           SECS: close this long after the first direction ended
 *                      (default: no limit)
 *   "no-splice"        flag: always copy
 * With opts.verbose, one line per connection is logged when it ends: the
 * client, the target's endpoint, bytes each way, duration, which side
 * ended first (or why the target could not be reached):
 *   relay tcp://127.0.0.1:40000 -> tcp://127.0.0.1:8080: 10 bytes to target,
 *   20 bytes from target, 0.004 s, client closed first
 * The service is never NULL and lives as long as the program.
 */
const sk_service *sk_forward_service(void);

typedef struct sk_forward_udp_opts {
    int idle_timeout_ms;     /* a session silent this long is forgotten; 0 = 60 s */
    size_t max_sessions;     /* sessions at once (the oldest is forgotten); 0 = 4096 */
    const sk_access *access; /* who may send (others' datagrams dropped); NULL = everyone */
    sk_limits *limits;       /* per-source sessions at once and new sessions per second;
                              * NULL = none */
    int stop_fd;             /* readable (a pipe a signal handler writes to): return;
                              * -1 = never */
    int verbose;             /* log each session's start and end through log */
    void (*log)(void *arg, int level, const char *line); /* NULL: silent */
    void *arg;
} sk_forward_udp_opts;

typedef struct sk_forward_udp_stats {
    uint64_t sessions;               /* sessions opened */
    uint64_t to_target, from_target; /* datagrams relayed each way */
    uint64_t dropped;                /* datagrams dropped (denied, limited, failed) */
} sk_forward_udp_stats;

/*
 * Relay datagrams from the bound datagram socket listen_fd (sk_listen) to
 * target: each client address gets its own upstream socket, connected to the
 * target (resolved for each new session), so replies go back to the client
 * that caused them; a session silent for idle_timeout_ms is closed. Runs
 * until o->stop_fd is readable; returns 0 then, or -1 with err (a usage
 * error for a target that is not a datagram address). listen_fd stays the
 * caller's; st (may be NULL) is filled in either case.
 */
int sk_forward_udp(int listen_fd, const sk_addr *target, const sk_forward_udp_opts *o,
                   sk_forward_udp_stats *st, sk_err *err);

/* ----------------------------------------------------------- file transfer */

/*
 * Sending files to a `recv` service (docs/PROTOCOL.md): every file is split
 * into chunks, each chunk hashed on the way and verified by the receiver on
 * arrival; the receiver stores a file under its name only after its whole
 * hash matched (atomic: .NAME.part, fsync, rename, fsync of the directory),
 * and a cut transfer resumes from the last verified chunk when sent again.
 * The receiving side is the service sk_service_find("recv"), configured with
 * sk_service_set(svc, cfg, "dir", DIR, &err) (and "max-size", "max-files",
 * "max-depth", "part-ttl").
 */
#define SK_XFER_XXH3 1   /* XXH3-128: the default, detects corruption at memory speed */
#define SK_XFER_SHA256 2 /* SHA-256 */

typedef enum sk_xfer_status {
    SK_XFER_SENDING = 1, /* progress: `done` grew */
    SK_XFER_STORED,      /* the receiver stored and verified it (hash: its hash) */
    SK_XFER_REFUSED,     /* refused by the receiver or the sender (reason) */
} sk_xfer_status;

/* What on_file is told: valid only during the call. */
typedef struct sk_xfer_file {
    const char *name; /* the name as sent ("dir/sub/file") */
    const char *path; /* the local path ("-" for standard input) */
    int type;         /* 1 file, 2 directory, 3 symlink */
    uint64_t size;    /* UINT64_MAX: not known (standard input) */
    uint64_t done;    /* bytes the receiver has: resumed + sent so far */
    uint64_t resumed; /* bytes it already had from an earlier, cut transfer */
    sk_xfer_status status;
    const char *reason;  /* SK_XFER_REFUSED: why, one line */
    const uint8_t *hash; /* SK_XFER_STORED: the receiver's whole-file hash */
    size_t hash_len;
} sk_xfer_file;

typedef struct sk_xfer_opts {
    int hash;            /* SK_XFER_XXH3 (0 means that too) or SK_XFER_SHA256 */
    int recursive;       /* directories are sent as trees (they land as DIR/...) */
    int overwrite;       /* the receiver may replace existing files */
    int no_resume;       /* ignore partial files on the receiver; start over */
    int compress;        /* zstd per chunk, if the receiver agrees */
    const char *name;    /* the name for the only PATH; required for "-" (stdin) */
    uint32_t chunk_size; /* a power of two, 4 KiB .. 8 MiB; 0: 1 MiB */
    int timeout_ms;      /* longest wait for an answer; 0: 120 s */
    /* Progress (SENDING, after each chunk) and each entry's outcome; NULL: none. */
    void (*on_file)(void *arg, const sk_xfer_file *f);
    void *arg;
} sk_xfer_opts;

typedef struct sk_xfer_stats {
    uint64_t stored;  /* entries stored and verified (files, directories, symlinks) */
    uint64_t refused; /* entries refused, by either side */
    uint64_t bytes;   /* bytes of the files stored */
    uint64_t sent;    /* file bytes sent in this run (resumed ones excluded) */
    uint64_t wire;    /* bytes written to the connection */
    int compressed;   /* the receiver agreed to compression */
} sk_xfer_stats;

/*
 * Send the n paths (files; directories with o->recursive; "-" for standard
 * input) over fd, a connected stream socket to a recv service, and end the
 * transfer. fd stays open and the caller's. Each entry's outcome goes to
 * o->on_file. Returns 0 when every entry was stored and verified, 1 when
 * some were refused (the rest went on), or -1 with err when the transfer as
 * a whole failed, e.g.
 *   receiver refused the transfer: receiver speaks protocol 1, sender 2: upgrade the receiver
 *   connection lost: Connection reset by peer
 * st (may be NULL) is filled in every case.
 */
int sk_xfer_send(int fd, const char *const *paths, size_t n, const sk_xfer_opts *o,
                 sk_xfer_stats *st, sk_err *err);
/* As sk_xfer_send, over an established TLS connection (sk_tls_conn_new, its
 * handshake done); on success the close_notify is sent, so the receiver sees
 * a proper end. The connection stays the caller's (sk_tls_conn_close). */
int sk_xfer_send_tls(sk_tls_conn *c, const char *const *paths, size_t n, const sk_xfer_opts *o,
                     sk_xfer_stats *st, sk_err *err);

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* SOCKIT_H */
