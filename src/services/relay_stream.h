/* relay_stream.h - internal to the stream relay service (relay_stream.c, relay_splice.c). */
#ifndef SK_RELAY_STREAM_H
#define SK_RELAY_STREAM_H

#include "sockit.h"

/* The service's settings (sk_service_set(sk_forward_service(), ...)). */
typedef struct sk__fwd_cfg {
    sk_addr target;
    int has_target;
    int connect_timeout_ms; /* per address; 0: the kernel's */
    int linger_ms;          /* after the first direction ended; -1: no limit */
    int no_splice;          /* copy even where splice would do */
    int send_proxy;         /* 0, or 1 / 2: a PROXY header of that version first (--send-proxy) */
} sk__fwd_cfg;

enum { SK__FWD_CONNECTING = 1, SK__FWD_OPEN, SK__FWD_FAILED };

/* One relayed connection (the service's per-connection bytes). */
typedef struct sk__fwd {
    int up;            /* the target's socket, -1 when none */
    unsigned watching; /* SK_WATCH_* asked for on `up` */
    uint8_t phase;     /* SK__FWD_* */
    uint8_t cl_eof;    /* the client ended its direction */
    uint8_t up_shut;   /* ... and we passed it on (shutdown of up's write side) */
    uint8_t up_eof;    /* the target ended its direction (passed on: sk_conn_shutdown) */
    uint8_t first;     /* who ended first: 'c' client, 't' target, 0 neither */
    uint8_t lingering; /* the linger timer runs */
    uint8_t splice;    /* zero copy through the pipes below */
    uint8_t no_splice; /* copy to the end (--no-splice, TLS, no pipes) */
    uint8_t closing;   /* the relay itself ended the connection (sk__fwd_close) */
    uint8_t neps, next;
    sk_endpoint *eps;   /* the target's addresses while connecting */
    sk_buf toup;        /* client bytes the target did not take yet (copying) */
    int pipe_in[2];     /* splice: client -> pipe -> target */
    int pipe_out[2];    /* splice: target -> pipe -> client (an SK_SEG_PIPE segment) */
    size_t in_pending;  /* bytes in pipe_in the target has not taken */
    size_t pipe_cap;    /* pipe_out's capacity */
    size_t pipe_in_cap; /* pipe_in's */
    uint64_t up_bytes, down_bytes;
    int64_t started_ms;
    char target[SK_NAME_MAX]; /* the address tried or connected */
    char why[192];            /* what went wrong, for the -v line */
} sk__fwd;

extern const sk_svc_option sk__fwd_options[];

/* relay_stream.c */
/* End the connection (sk_conn_close), as the relay decided: a connection the
 * engine ends otherwise (the client's reset, a timeout) resets the target. */
void sk__fwd_close(sk_conn *c, sk__fwd *f);
/* The target reset: reset the client too (sk_conn_abort). */
void sk__fwd_abort(sk_conn *c, sk__fwd *f);
void sk__fwd_on_upstream(sk_conn *c, int fd, unsigned fired, void *arg);
void sk__fwd_watch(sk_conn *c, sk__fwd *f, unsigned events);
void sk__fwd_check_done(sk_conn *c, sk__fwd *f);
void sk__fwd_upstream_eof(sk_conn *c, sk__fwd *f);

/* relay_splice.c: zero copy on Linux for plain connections. */
/* Switch the connection to splicing if it can (sets f->splice). */
void sk__fwd_splice_start(sk_conn *c, sk__fwd *f);
/* 1 if client bytes wait in the pipe for the target. */
int sk__fwd_splice_pending(const sk__fwd *f);
/* Move the waiting client bytes to the target: 1 all gone, 0 wait for
 * writability, -1 the target refused them (the connection is closing). */
int sk__fwd_splice_flush(sk_conn *c, sk__fwd *f);
/* The target is readable: move its bytes to the client through the pipe. */
void sk__fwd_splice_down(sk_conn *c, sk__fwd *f);
/* Close the pipes. */
void sk__fwd_splice_end(sk__fwd *f);

#endif
