/*
 * chargen.c - RFC 864: lines of 72 characters from the 95 printable ASCII
 * characters, each line starting one character later than the one before,
 * ending in CR LF. After 95 lines the pattern repeats.
 *
 * The whole 95-line cycle (95 * 74 = 7030 bytes) is built once; a stream is
 * fed from it in large slices whenever the output queue drains, so the
 * service does no per-byte work. Over UDP each datagram gets a reply of
 * CHARGEN_DGRAM_LINES whole lines (444 bytes, within the RFC's 0-512).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "services.h"

#define PRINTABLE 95
#define LINE_CHARS 72
#define LINE_LEN (LINE_CHARS + 2)
#define CYCLE (PRINTABLE * LINE_LEN)
#define CHARGEN_DGRAM_LINES 6
#define SLICE 65536

/* Two cycles back to back, so any slice of up to one cycle is contiguous. */
static uint8_t pattern[2 * CYCLE];
static pthread_once_t pattern_once = PTHREAD_ONCE_INIT;

static void build_pattern(void)
{
    for (int line = 0; line < 2 * PRINTABLE; line++) {
        uint8_t *p = pattern + (size_t)line * LINE_LEN;
        for (int i = 0; i < LINE_CHARS; i++)
            p[i] = (uint8_t)(' ' + (line + i) % PRINTABLE);
        p[LINE_CHARS] = '\r';
        p[LINE_CHARS + 1] = '\n';
    }
}

struct chargen_conn {
    size_t pos; /* offset in the cycle of the next byte to send */
};

static void chargen_fill(sk_conn *c)
{
    struct chargen_conn *g = sk_conn_data(c);
    size_t left = SLICE;
    while (left > 0) {
        size_t n = CYCLE - g->pos;
        if (n > left)
            n = left;
        if (sk_conn_send(c, pattern + g->pos, n) < 0)
            return;
        g->pos = (g->pos + n) % CYCLE;
        left -= n;
    }
}

static int chargen_init(sk_server *s, void **state, sk_err *err)
{
    (void)s;
    (void)state;
    (void)err;
    pthread_once(&pattern_once, build_pattern);
    return 0;
}

static void chargen_open(sk_conn *c)
{
    sk_conn_want_drain(c, 1);
    chargen_fill(c);
}

static void chargen_data(sk_conn *c, const uint8_t *data, size_t len)
{
    (void)c;
    (void)data;
    (void)len; /* RFC 864: received data is thrown away */
}

/* RFC 864: send "until the calling user terminates the connection". A
 * half-close is not that: keep going until writing fails. */
static void chargen_eof(sk_conn *c)
{
    (void)c;
}

static int chargen_datagram(sk_dgram *d)
{
    /* Successive datagrams continue the pattern where the last one ended.
     * Relaxed: concurrent workers may interleave starts, each reply stays valid. */
    static _Atomic unsigned next;
    unsigned line = atomic_fetch_add(&next, CHARGEN_DGRAM_LINES) % PRINTABLE;
    return sk_dgram_reply(d, pattern + (size_t)line * LINE_LEN, CHARGEN_DGRAM_LINES * LINE_LEN);
}

const sk_service sk__svc_chargen = {
    .name = "chargen",
    .summary = "RFC 864: sends the 72-character line pattern until the client closes",
    .flags = SK_SVC_STREAM | SK_SVC_DGRAM,
    .conn_size = sizeof(struct chargen_conn),
    .init = chargen_init,
    .on_open = chargen_open,
    .on_data = chargen_data,
    .on_drain = chargen_fill,
    .on_eof = chargen_eof,
    .on_datagram = chargen_datagram,
};
