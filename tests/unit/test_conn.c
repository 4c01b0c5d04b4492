/* test_conn.c - the connection state machine (src/engine/conn.c) driven
 * without any socket: bytes, end of file and errors are fed in, the output
 * is taken as iovecs and file segments, and nothing touches the network. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* A test service: echoes what it gets; "CLOSE" closes; "BIG n" queues n
 * bytes; "FILE" queues the test file; counts its callbacks. */
static int opened, eofs, drains, closes, timeouts, releases;
static const char *file_path;

static void t_open(sk_conn *c)
{
    (void)c;
    opened++;
}

static void t_data(sk_conn *c, const uint8_t *d, size_t n)
{
    if (n == 5 && memcmp(d, "CLOSE", 5) == 0) {
        sk_conn_close(c);
    } else if (n > 4 && memcmp(d, "BIG ", 4) == 0) {
        size_t big = (size_t)atol((const char *)d + 4);
        char *p = calloc(1, big);
        assert_non_null(p);
        sk_conn_send(c, p, big);
        free(p);
    } else if (n == 4 && memcmp(d, "FILE", 4) == 0) {
        int fd = open(file_path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        sk_conn_send(c, "head", 4);
        assert_int_equal(
            sk_conn_queue(c, &(sk_seg){.kind = SK_SEG_FILE, .fd = fd, .off = 2, .len = 6}), 0);
        sk_conn_send(c, "tail", 4);
    } else {
        sk_conn_send(c, d, n);
    }
}

static void t_eof(sk_conn *c)
{
    eofs++;
    sk_conn_send(c, "bye", 3);
    sk_conn_close(c);
}

static void t_drain(sk_conn *c)
{
    drains++;
    if (drains < 3)
        sk_conn_send(c, "more", 4);
    else
        sk_conn_want_drain(c, 0);
}

static void t_close(sk_conn *c)
{
    (void)c;
    closes++;
}

static void t_timeout(sk_conn *c)
{
    timeouts++;
    sk_conn_send(c, "408", 3);
}

static const sk_service test_svc = {
    .name = "test",
    .flags = SK_SVC_STREAM,
    .on_open = t_open,
    .on_data = t_data,
    .on_eof = t_eof,
    .on_drain = t_drain,
    .on_close = t_close,
    .on_timeout = t_timeout,
};

static sk_server *srv;

static int setup(void **state)
{
    (void)state;
    opened = eofs = drains = closes = timeouts = releases = 0;
    sk_server_opts o = {.service = &test_svc, .max_queue = 1 << 20};
    sk_err err;
    srv = sk_server_new(&o, &err);
    assert_non_null(srv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sk_server_free(srv);
    return 0;
}

static sk_conn *new_conn(void)
{
    sk_tp tp;
    sk__tp_plain(&tp, -1); /* never used: the test does the "I/O" */
    sk_conn *c = sk__conn_new(srv, &tp, NULL, 0, SK_TCP);
    assert_non_null(c);
    sk__conn_open(c);
    return c;
}

/* Everything queued, as one string (files read from their descriptors). */
static size_t take_output(sk_conn *c, char *out, size_t cap)
{
    size_t got = 0;
    for (;;) {
        struct iovec iov[4];
        sk__conn_file f;
        int more;
        int k = sk__conn_output(c, iov, 4, &f, &more);
        if (k == 0 && f.len == 0)
            return got;
        size_t n = 0;
        if (k > 0) {
            /* Take only the first iovec: partial writes must be accounted right. */
            n = iov[0].iov_len;
            assert_true(got + n <= cap);
            memcpy(out + got, iov[0].iov_base, n);
        } else {
            assert_true(got + f.len <= cap);
            ssize_t r = pread(f.fd, out + got, (size_t)f.len, f.off);
            assert_int_equal(r, (ssize_t)f.len);
            n = (size_t)r;
        }
        got += n;
        sk__conn_sent(c, n);
    }
}

static void test_echo_and_eof(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    assert_int_equal(opened, 1);
    assert_true(sk__conn_wants_read(c));
    assert_false(sk__conn_wants_write(c));
    sk__conn_feed(c, (const uint8_t *)"hello", 5);
    assert_true(sk__conn_wants_write(c));
    assert_int_equal(sk_conn_pending(c), 5);

    struct iovec iov[4];
    sk__conn_file f;
    int more;
    assert_int_equal(sk__conn_output(c, iov, 4, &f, &more), 1);
    assert_int_equal(iov[0].iov_len, 5);
    assert_memory_equal(iov[0].iov_base, "hello", 5);
    sk__conn_sent(c, 2); /* a short write */
    assert_int_equal(sk__conn_output(c, iov, 4, &f, &more), 1);
    assert_memory_equal(iov[0].iov_base, "llo", 3);
    sk__conn_sent(c, 3);
    assert_int_equal(sk__conn_output(c, iov, 4, &f, &more), 0);
    assert_int_equal(f.len, 0);
    assert_int_equal(sk__conn_close_step(c), 0);

    sk__conn_feed_eof(c);
    assert_int_equal(eofs, 1);
    assert_false(sk__conn_wants_read(c));
    char out[16];
    assert_int_equal(take_output(c, out, sizeof out), 3);
    assert_memory_equal(out, "bye", 3);
    assert_int_equal(sk__conn_close_step(c), 1); /* EOF seen, output gone: free now */
    sk__conn_free(c);
    assert_int_equal(closes, 1);
}

static void test_lingering_close(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    sk__conn_feed(c, (const uint8_t *)"CLOSE", 5);
    assert_int_equal(sk__conn_close_step(c), 2); /* shut down the write side */
    assert_true(c->flags & SK_C_WSHUT);
    assert_int_equal(sk__conn_close_step(c), 0); /* then wait for the peer's FIN */
    assert_true(sk__conn_wants_read(c));
    sk__conn_feed(c, (const uint8_t *)"late", 4); /* discarded */
    assert_int_equal(sk_conn_pending(c), 0);
    assert_int_equal(sk__conn_interest(c), SK_TP_WANT_READ);
    /* The linger deadline is policy's: a second after the last I/O. */
    int64_t now = c->last_io_ms;
    assert_int_equal(sk__conn_next_deadline(c, now, -1), now + SK_LINGER_MS);
    assert_int_equal(sk__conn_expired(c, now + 10, -1), SK_EXP_NONE);
    assert_int_equal(sk__conn_expired(c, now + SK_LINGER_MS, -1), SK_EXP_CLOSE);
    sk__conn_feed_eof(c);
    assert_int_equal(eofs, 0); /* the FIN we waited for is not the service's */
    assert_int_equal(sk__conn_close_step(c), 1);
    sk__conn_free(c);
}

static void test_error_drops_output(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    sk__conn_feed(c, (const uint8_t *)"abc", 3);
    sk__conn_feed_error(c, ECONNRESET);
    assert_false(sk__conn_wants_write(c));
    assert_false(sk__conn_wants_read(c));
    assert_int_equal(sk__conn_close_step(c), 1);
    sk__conn_free(c);
    assert_int_equal(closes, 1);
}

static void test_backpressure(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    char cmd[32];
    int n = snprintf(cmd, sizeof cmd, "BIG %d", SK_HIGH_WATER);
    sk__conn_feed(c, (const uint8_t *)cmd, (size_t)n);
    assert_int_equal(sk_conn_pending(c), SK_HIGH_WATER);
    assert_false(sk__conn_wants_read(c)); /* at the high-water mark: stop reading */
    assert_int_equal(sk__conn_interest(c), SK_TP_WANT_WRITE);
    sk__conn_sent(c, 1);
    assert_true(sk__conn_wants_read(c));
    sk__conn_free(c);
}

static void test_queue_limit(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    char cmd[32];
    int n = snprintf(cmd, sizeof cmd, "BIG %d", (1 << 20) + 1); /* past max_queue */
    sk__conn_feed(c, (const uint8_t *)cmd, (size_t)n);
    assert_false(sk__conn_wants_write(c)); /* dropped, not grown */
    assert_int_equal(sk__conn_close_step(c), 1);
    sk__conn_free(c);
}

static void test_file_segments(void **state)
{
    (void)state;
    char path[] = "/tmp/sk_test_conn_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    close(fd);
    file_path = path;

    sk_conn *c = new_conn();
    sk__conn_feed(c, (const uint8_t *)"FILE", 4);
    assert_int_equal(sk_conn_pending(c), 4 + 6 + 4);
    struct iovec iov[4];
    sk__conn_file f;
    int more;
    /* The head bytes first, with MORE: the file follows at once. */
    assert_int_equal(sk__conn_output(c, iov, 4, &f, &more), 1);
    assert_true(more);
    assert_memory_equal(iov[0].iov_base, "head", 4);
    sk__conn_sent(c, 4);
    /* Then the file segment, by descriptor and offset. */
    assert_int_equal(sk__conn_output(c, iov, 4, &f, &more), 0);
    assert_int_equal(f.len, 6);
    assert_int_equal(f.off, 2);
    sk__conn_sent(c, 2); /* part of it */
    assert_int_equal(sk__conn_output(c, iov, 4, &f, &more), 0);
    assert_int_equal(f.len, 4);
    assert_int_equal(f.off, 4);
    char rest[32];
    size_t got = take_output(c, rest, sizeof rest);
    assert_int_equal(got, 8);
    assert_memory_equal(rest, "4567tail", 8);
    assert_int_equal(sk_conn_pending(c), 0);
    sk__conn_free(c);
    unlink(path);
}

static void release_cb(void *arg)
{
    (void)arg;
    releases++;
}

static void test_shared_memory_in_one_call(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    static const char body[] = "BODY";
    sk_conn_send(c, "H:", 2);
    assert_int_equal(
        sk_conn_queue(c,
                      &(sk_seg){.kind = SK_SEG_MEM, .mem = body, .len = 4, .release = release_cb}),
        0);
    sk_conn_send(c, "!", 1);
    struct iovec iov[4];
    sk__conn_file f;
    int more;
    /* Queued bytes, the shared memory and the bytes after it: one writev. */
    assert_int_equal(sk__conn_output(c, iov, 4, &f, &more), 3);
    assert_false(more);
    assert_memory_equal(iov[1].iov_base, "BODY", 4);
    sk__conn_sent(c, 2 + 4 + 1);
    assert_int_equal(releases, 1);
    assert_int_equal(sk_conn_pending(c), 0);
    sk__conn_free(c);
}

static void test_queue_ownership(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    assert_int_equal(sk_conn_queue(c, &(sk_seg){.kind = SK_SEG_BYTES, .mem = "ab", .len = 2}), 0);
    assert_int_equal(sk_conn_pending(c), 2);
    /* len 0: nothing queued, the owner released at once. */
    assert_int_equal(
        sk_conn_queue(c,
                      &(sk_seg){.kind = SK_SEG_MEM, .mem = "x", .len = 0, .release = release_cb}),
        0);
    assert_int_equal(releases, 1);
    /* Closing: refused, and still released exactly once. */
    sk_conn_close(c);
    assert_int_equal(
        sk_conn_queue(c,
                      &(sk_seg){.kind = SK_SEG_MEM, .mem = "x", .len = 1, .release = release_cb}),
        -1);
    assert_int_equal(releases, 2);
    /* An owned file descriptor is closed when refused. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(sk_conn_queue(c, &(sk_seg){.kind = SK_SEG_FILE, .fd = p[0], .len = 5}), -1);
    assert_int_equal(fcntl(p[0], F_GETFD), -1);
    close(p[1]);
    /* A shared one is released, not closed. */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(
        sk_conn_queue(c,
                      &(sk_seg){.kind = SK_SEG_FILE, .fd = p[0], .len = 5, .release = release_cb}),
        -1);
    assert_int_equal(releases, 3);
    assert_true(fcntl(p[0], F_GETFD) >= 0);
    close(p[0]);
    close(p[1]);
    sk__conn_free(c);
    /* Queued segments are released when the connection goes unsent. */
    c = new_conn();
    assert_int_equal(
        sk_conn_queue(c,
                      &(sk_seg){.kind = SK_SEG_MEM, .mem = "xy", .len = 2, .release = release_cb}),
        0);
    assert_int_equal(releases, 3);
    sk__conn_free(c);
    assert_int_equal(releases, 4);
}

static void test_drain_and_timer(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    sk_conn_want_drain(c, 1);
    char out[64];
    assert_int_equal(take_output(c, out, sizeof out), 8); /* two on_drain rounds */
    assert_int_equal(drains, 3);
    assert_false(sk__conn_wants_write(c));

    int64_t now = sk_now_ms();
    sk_conn_set_timer(c, 500);
    int64_t d = sk__conn_next_deadline(c, now, -1);
    assert_true(d >= now + 500 && d <= now + 600);
    assert_int_equal(sk__conn_expired(c, d - 1, -1), SK_EXP_NONE);
    assert_int_equal(sk__conn_expired(c, d, -1), SK_EXP_RAN);
    assert_int_equal(timeouts, 1);
    assert_int_equal(sk__conn_next_deadline(c, now, -1), -1);
    /* Stopping: an idle connection may go; the grace deadline bounds a busy one. */
    assert_int_equal(sk__conn_expired(c, d, d + 100), SK_EXP_NONE); /* "408" queued: busy */
    assert_int_equal(take_output(c, out, sizeof out), 3);
    c->last_io_ms -= 2000; /* quiet for a while (see test_stop_settle_window) */
    assert_int_equal(sk__conn_expired(c, d, d + 100), SK_EXP_CLOSE); /* now idle */
    sk__conn_free(c);
}

/* Stopping: an idle connection active less than a second ago (a request may
 * be on its way) gets until a second after its last I/O, and at most a second
 * after the stop began; then it may go. One quiet for longer goes at once. */
static void test_stop_settle_window(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    int64_t now = sk_now_ms();
    c->last_io_ms = now - 200;
    atomic_store(&srv->stop_ms, (long long)now);
    int64_t grace = now + 10000;
    assert_false(sk__conn_may_stop(c));
    assert_int_equal(sk__conn_next_deadline(c, now, grace), now + 800); /* last I/O + 1 s */
    assert_int_equal(sk__conn_expired(c, now, grace), SK_EXP_NONE);
    c->last_io_ms = now + 500; /* a request came and was answered */
    assert_int_equal(sk__conn_next_deadline(c, now + 500, grace), now + 1000); /* stop + 1 s */
    c->last_io_ms = now - 1000; /* quiet for a second: idle */
    assert_true(sk__conn_may_stop(c));
    assert_int_equal(sk__conn_expired(c, now, grace), SK_EXP_CLOSE);
    atomic_store(&srv->stop_ms, 0);
    sk__conn_free(c);
}

static void test_grace_for_busy(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    sk__conn_feed(c, (const uint8_t *)"busy", 4);
    int64_t now = sk_now_ms();
    assert_false(sk__conn_may_stop(c));
    assert_int_equal(sk__conn_next_deadline(c, now, now + 10000), now + 10000);
    assert_int_equal(sk__conn_expired(c, now, now + 10000), SK_EXP_NONE);
    assert_int_equal(sk__conn_expired(c, now + 10000, now + 10000), SK_EXP_CLOSE);
    sk__conn_free(c);
}

/* A fake transport, as a TLS one behaves: a write may wait for readability,
 * and it may hold decrypted bytes. It takes at most `room` bytes per write. */
static size_t fake_room;
static unsigned fake_want;
static char fake_wire[256];
static size_t fake_wired;

static ssize_t fake_read(sk_tp *t, void *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    t->want = SK_TP_WANT_WRITE; /* renegotiating: the read waits for writability */
    return SK_TP_AGAIN;
}

static ssize_t fake_writev(sk_tp *t, const struct iovec *iov, int n, unsigned flags)
{
    (void)flags;
    size_t took = 0;
    for (int i = 0; i < n && took < fake_room; i++) {
        size_t k = iov[i].iov_len < fake_room - took ? iov[i].iov_len : fake_room - took;
        memcpy(fake_wire + fake_wired, iov[i].iov_base, k);
        fake_wired += k;
        took += k;
    }
    if (took == 0) {
        t->want = fake_want;
        return SK_TP_AGAIN;
    }
    fake_room -= took;
    return (ssize_t)took;
}

static ssize_t fake_sendfile(sk_tp *t, int fd, off_t *off, size_t len, unsigned flags)
{
    (void)t;
    (void)fd;
    (void)off;
    (void)len;
    (void)flags;
    return SK_TP_UNSUPPORTED;
}

static int fake_shut_result, fake_shuts;

static int fake_shutdown(sk_tp *t)
{
    fake_shuts++;
    if (fake_shut_result == SK_TP_AGAIN)
        t->want = SK_TP_WANT_WRITE;
    return fake_shut_result;
}

static void fake_close(sk_tp *t)
{
    (void)t;
}

static size_t fake_buffered(const sk_tp *t)
{
    (void)t;
    return 7;
}

static const sk_tp_ops fake_ops = {.name = "fake",
                                   .read = fake_read,
                                   .writev = fake_writev,
                                   .sendfile = fake_sendfile,
                                   .shutdown = fake_shutdown,
                                   .close = fake_close,
                                   .buffered = fake_buffered};

static void test_transport_wants_are_honoured(void **state)
{
    (void)state;
    sk_tp tp = {.ops = &fake_ops, .fd = -1};
    sk_conn *c = sk__conn_new(srv, &tp, NULL, 0, SK_TCP);
    assert_non_null(c);
    sk__conn_open(c);
    fake_room = 3;
    fake_wired = 0;
    fake_want = SK_TP_WANT_READ;
    sk__conn_feed(c, (const uint8_t *)"hello", 5);
    assert_int_equal(sk__conn_pump_write(c, 1 << 20), 0);
    assert_int_equal(fake_wired, 3); /* a short write, then AGAIN wanting READ */
    assert_memory_equal(fake_wire, "hel", 3);
    assert_int_equal(sk_conn_pending(c), 2);
    /* The write waits for readability: the model must watch for it even
     * when the connection would not read (here: it would anyway). */
    assert_true(sk__conn_interest(c) & SK_TP_WANT_READ);
    assert_true(sk__conn_interest(c) & SK_TP_WANT_WRITE);
    /* A read that waits for writability makes the model watch for it. */
    assert_int_equal(sk__conn_pump_read(c, (uint8_t[16]){0}, 16), SK_TP_AGAIN);
    fake_room = 100;
    assert_int_equal(sk__conn_pump_write(c, 1 << 20), 0);
    assert_int_equal(sk_conn_pending(c), 0);
    assert_memory_equal(fake_wire, "hello", 5);
    assert_int_equal(sk__conn_interest(c), SK_TP_WANT_READ | SK_TP_WANT_WRITE);
    assert_int_equal(sk__tp_buffered(&c->tp), 7);
    sk__conn_destroy(c);
}

static void test_file_copied_when_transport_cannot_sendfile(void **state)
{
    (void)state;
    char path[] = "/tmp/sk_test_conn_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    close(fd);
    file_path = path;
    sk_tp tp = {.ops = &fake_ops, .fd = -1};
    sk_conn *c = sk__conn_new(srv, &tp, NULL, 0, SK_TCP);
    assert_non_null(c);
    fake_room = 100;
    fake_wired = 0;
    sk__conn_feed(c, (const uint8_t *)"FILE", 4);
    while (sk__conn_pump_write(c, 1 << 20)) {
    }
    assert_int_equal(fake_wired, 14);
    assert_memory_equal(fake_wire, "head234567tail", 14);
    assert_int_equal(sk_conn_pending(c), 0);
    sk__conn_destroy(c);
    unlink(path);
}

/* An encrypting transport's close_notify that cannot go now (SK_TP_AGAIN)
 * is asked again when writable, and one is owed even when the peer ended
 * its stream first (the plain transport just closes then). */
static void test_shutdown_retried_and_owed_after_peer_eof(void **state)
{
    (void)state;
    int state_of_transport;
    sk_tp tp = {.ops = &fake_ops, .fd = -1, .impl = &state_of_transport};
    sk_conn *c = sk__conn_new(srv, &tp, NULL, 0, SK_TCP);
    assert_non_null(c);
    sk__conn_open(c);
    fake_shuts = 0;
    fake_shut_result = SK_TP_AGAIN;
    sk__conn_feed(c, (const uint8_t *)"CLOSE", 5);
    assert_int_equal(sk__conn_pump_close(c), 0);
    assert_int_equal(fake_shuts, 1);
    assert_true(sk__conn_interest(c) & SK_TP_WANT_WRITE); /* waits to send it */
    fake_shut_result = 0;
    assert_int_equal(sk__conn_pump_close(c), 0); /* sent: now the lingering wait */
    assert_int_equal(fake_shuts, 2);
    assert_int_equal(sk__conn_pump_close(c), 0);
    assert_int_equal(fake_shuts, 2); /* once sent, never again */
    sk__conn_destroy(c);

    c = sk__conn_new(srv, &tp, NULL, 0, SK_TCP);
    assert_non_null(c);
    sk__conn_open(c);
    fake_shuts = 0;
    fake_room = 100;
    sk__conn_feed_eof(c); /* t_eof: "bye", then close */
    assert_int_equal(sk__conn_pump_write(c, 1 << 20), 0);
    assert_int_equal(sk__conn_pump_close(c), 1);
    assert_int_equal(fake_shuts, 1);
    sk__conn_destroy(c);
}

/* A connection in its TLS handshake: its interest is the handshake's, its
 * deadline the handshake deadline, and the service never hears of it if
 * the handshake does not finish. */
/* sk_conn_pause_read: no reading (nor read interest) while paused, output still goes. */
static void test_pause_read(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    sk__conn_feed(c, (const uint8_t *)"ab", 2);
    sk_conn_pause_read(c, 1);
    assert_false(sk__conn_wants_read(c));
    assert_int_equal(sk__conn_interest(c), SK_TP_WANT_WRITE);
    char out[8];
    assert_int_equal(take_output(c, out, sizeof out), 2);
    assert_int_equal(sk__conn_interest(c), 0);
    sk_conn_pause_read(c, 0);
    assert_true(sk__conn_wants_read(c));
    assert_int_equal(sk__conn_interest(c), SK_TP_WANT_READ);
    sk__conn_free(c);
}

/* sk_conn_shutdown: our FIN after the queued output, then the peer's bytes
 * still reach the service; sk_conn_close then waits for the peer's FIN only. */
static void test_half_close(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    sk__conn_feed(c, (const uint8_t *)"xyz", 3);
    sk_conn_shutdown(c);
    assert_int_equal(sk_conn_send(c, "no", 2), -1); /* nothing more after our end */
    assert_int_equal(sk__conn_close_step(c), 0);    /* output first */
    char out[8];
    assert_int_equal(take_output(c, out, sizeof out), 3);
    assert_int_equal(sk__conn_close_step(c), 2); /* now shut the write side */
    assert_int_equal(sk__conn_close_step(c), 0); /* once */
    assert_false(c->flags & SK_C_WSHUT);         /* not a lingering close */
    assert_true(sk__conn_wants_read(c));
    uint64_t before = c->bytes_in;
    sk__conn_feed(c, (const uint8_t *)"late", 4); /* reaches the service (which
                                                   * cannot answer: refused) */
    assert_int_equal(c->bytes_in, before + 4);
    assert_int_equal(sk_conn_pending(c), 0);
    sk_conn_close(c);
    assert_int_equal(sk__conn_close_step(c), 0); /* already shut: wait for the FIN */
    assert_true(c->flags & SK_C_WSHUT);
    sk__conn_feed_eof(c);
    assert_int_equal(sk__conn_close_step(c), 1);
    sk__conn_free(c);
}

static int watch_fired;
static void t_watch_cb(sk_conn *c, int fd, unsigned fired, void *arg)
{
    (void)c;
    (void)fd;
    (void)arg;
    watch_fired += (int)fired;
}

/* sk_conn_watch: entries kept (at most SK_CONN_WATCH_MAX), a watching
 * connection is busy, and everything left is stopped at free. */
static void test_watches(void **state)
{
    (void)state;
    sk_conn *c = new_conn();
    assert_true(sk__conn_idle(c));
    assert_int_equal(sk_conn_watch(c, 7, SK_WATCH_READ, t_watch_cb, NULL), 0);
    assert_false(sk__conn_idle(c)); /* a child or upstream may still send */
    assert_int_equal(sk_conn_watch(c, 7, SK_WATCH_READ | SK_WATCH_WRITE, t_watch_cb, NULL), 0);
    for (int fd = 8; fd < 7 + SK_CONN_WATCH_MAX; fd++)
        assert_int_equal(sk_conn_watch(c, fd, SK_WATCH_WRITE, t_watch_cb, NULL), 0);
    errno = 0;
    assert_int_equal(sk_conn_watch(c, 99, SK_WATCH_READ, t_watch_cb, NULL), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(sk_conn_watch(c, 99, SK_WATCH_READ, NULL, NULL), -1); /* no callback */
    watch_fired = 0;
    sk__watch_fire(&c->watches->w[0], SK_WATCH_WRITE);
    assert_int_equal(watch_fired, SK_WATCH_WRITE);
    for (int fd = 7; fd < 7 + SK_CONN_WATCH_MAX; fd++)
        assert_int_equal(sk_conn_watch(c, fd, 0, NULL, NULL), 0);
    assert_true(sk__conn_idle(c));
    assert_int_equal(sk_conn_watch(c, 9, SK_WATCH_READ, t_watch_cb, NULL), 0);
    sk__conn_free(c); /* frees the watch left (LeakSanitizer would tell) */
    assert_int_equal(closes, 1);
}

static void test_handshake_state(void **state)
{
    (void)state;
    sk_tp tp = {.ops = &fake_ops, .fd = -1};
    sk_conn *c = sk__conn_new(srv, &tp, NULL, 0, SK_TCP);
    assert_non_null(c);
    c->flags |= SK_C_HANDSHAKE;
    c->tp.want = SK_TP_WANT_WRITE;
    assert_int_equal(sk__conn_interest(c), SK_TP_WANT_WRITE);
    c->tp.want = SK_TP_WANT_READ;
    assert_int_equal(sk__conn_interest(c), SK_TP_WANT_READ);
    int64_t now = c->started_ms;
    assert_int_equal(sk__conn_next_deadline(c, now, -1), now + SK_TLS_HANDSHAKE_MS);
    assert_int_equal(sk__conn_expired(c, now + 10, -1), SK_EXP_NONE);
    assert_int_equal(sk__conn_expired(c, now + SK_TLS_HANDSHAKE_MS, -1), SK_EXP_CLOSE);
    sk__conn_destroy(c);
    assert_int_equal(opened, 0);
    assert_int_equal(closes, 0); /* no on_close without on_open */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_and_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lingering_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_drops_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_memory_in_one_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_ownership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_and_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_for_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_wants_are_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_copied_when_transport_cannot_sendfile, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_retried_and_owed_after_peer_eof, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_handshake_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_settle_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
