/*
 * xfer_send.c - the sending side of the transfer protocol (docs/PROTOCOL.md)
 * over a transport (sk_tp), so that TLS works the same way once it is a
 * transport. Entries go out in batches: their headers, then the receiver's
 * answers (where to start each file: 0, or after the chunks it already has),
 * then the data of every file back to back; the receiver's verdicts come back
 * in order while the next files are sent, so many small files cost one round
 * trip per batch, not one per file. Each chunk is read with a large read,
 * hashed, and written with one writev together with its frame head; small
 * chunks (small files) are queued and leave many to a write.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "transport.h"
#include "xfer_proto.h"
#include "xfer_walk.h"

/* Chunks shorter than this are queued with the other frames (copied) rather
 * than written on their own; the queue is written once it holds this much. */
#define TX_COALESCE (64u << 10)
#define TX_QUEUED_MAX (256u << 10)

typedef struct tx {
    sk_tp *tp;
    const sk_xfer_opts *o;
    sk_xfer_stats *st;
    sk_err *err;
    sk__xw_list list;
    uint8_t hash, flags;
    size_t hl;
    uint32_t chunk;
    int zstd;
    sk_buf out, in;
    uint8_t *buf, *zbuf;
    size_t zcap;
    ZSTD_CCtx *cctx;
    sk__xf_hash ch, whole;
    /* entries waiting for START (announced) and files waiting for RESULT */
    size_t *wait_start, nws, ws_head;
    size_t *wait_result, nwr, wr_head;
    size_t cur;    /* the file being sent (index), or SIZE_MAX */
    int cur_abort; /* its RESULT came early: stop sending it */
    uint64_t *resumed, *done;
    uint8_t **offer;  /* per file: the prefix's chunk hashes the receiver offered */
    uint64_t *noffer; /* and how many */
    int64_t timeout_ms;
    int summary_seen;
} tx;

static void report(tx *t, size_t i, sk_xfer_status status, const char *reason, const uint8_t *hash)
{
    sk__xw_entry *e = &t->list.v[i];
    if (status == SK_XFER_STORED) {
        t->st->stored++;
        if (e->type == SK_XF_FILE)
            t->st->bytes += t->done[i];
    } else if (status == SK_XFER_REFUSED) {
        t->st->refused++;
    }
    if (t->o->on_file == NULL)
        return;
    sk_xfer_file f = {e->name,    e->path,
                      e->type,    S_ISFIFO(e->st.st_mode) ? UINT64_MAX : (uint64_t)e->st.st_size,
                      t->done[i], t->resumed[i],
                      status,     reason,
                      hash,       hash ? t->hl : 0};
    if (e->type != SK_XF_FILE)
        f.size = 0;
    t->o->on_file(t->o->arg, &f);
}

static int pump(tx *t, int wait);

/* Write everything in out, then the iovecs (if any). */
static int flush(tx *t, const struct iovec *extra, int nextra)
{
    struct iovec v[4];
    int n = 0;
    if (t->out.len)
        v[n++] = (struct iovec){(void *)sk_buf_head(&t->out), t->out.len};
    for (int i = 0; i < nextra; i++)
        v[n++] = extra[i];
    int k = 0;
    while (k < n) {
        ssize_t w = sk__tp_writev(t->tp, v + k, n - k, 0);
        if (w == SK_TP_AGAIN) {
            /* While the receiver takes no more, read what it says: it stops
             * reading while its answers to us pile up, so a sender that only
             * wrote would wait for ever. */
            struct pollfd p = {t->tp->fd, POLLIN, 0};
            if (t->tp->want & SK_TP_WANT_WRITE || !t->tp->want)
                p.events |= POLLOUT;
            int r = sk__tp_buffered(t->tp) ? 1 : poll(&p, 1, (int)t->timeout_ms);
            if (r < 0 && errno != EINTR)
                return sk_errno(t->err, errno, "poll");
            if (r == 0)
                return sk_errf(t->err, ETIMEDOUT, "connection stalled: the receiver takes no data");
            if ((r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) || sk__tp_buffered(t->tp))
                if (pump(t, 0) < 0)
                    return -1;
            continue;
        }
        if (w < 0)
            return sk_errno(t->err, errno, "connection lost");
        t->st->wire += (uint64_t)w;
        for (size_t left = (size_t)w; left > 0 && k < n;) {
            if (left >= v[k].iov_len) {
                left -= v[k].iov_len;
                k++;
            } else {
                v[k].iov_base = (uint8_t *)v[k].iov_base + left;
                v[k].iov_len -= left;
                left = 0;
            }
        }
    }
    sk_buf_consume(&t->out, t->out.len);
    return 0;
}

static int put(tx *t, const uint8_t *f, size_t n)
{
    if (n == 0)
        return sk_errf(t->err, EINVAL, "frame too long");
    if (sk_buf_append(&t->out, f, n) < 0)
        return sk_errno(t->err, ENOMEM, "send");
    return 0;
}

static void text(char *dst, size_t cap, const uint8_t *p, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = p[i] < 0x20 || p[i] == 0x7f ? '?' : (char)p[i];
    dst[n] = '\0';
}

static int keep_offer(tx *t, size_t i, const sk__xf_start *s);

/* "WHAT: strerror(e)", malloc'd (NULL if out of memory: a reason is optional). */
static char *reason_dup(const char *what, int e)
{
    char buf[200];
    snprintf(buf, sizeof buf, "%s: %s", what, strerror(e));
    return strdup(buf);
}

/* Handle one whole frame from the receiver. */
static int on_frame(tx *t, uint8_t type, const uint8_t *p, uint32_t plen)
{
    char msg[400];
    if (type == SK_XF_REFUSE) {
        uint16_t v, code;
        const uint8_t *m;
        size_t ml;
        if (sk__xf_get_refuse(p, plen, &v, &code, &m, &ml) < 0)
            return sk_errf(t->err, EPROTO, "malformed REFUSE from the receiver");
        text(msg, sizeof msg, m, ml);
        return sk_errf(t->err, EPROTO, "receiver refused the transfer: %s", msg);
    }
    if (type == SK_XF_START && t->nws > t->ws_head) {
        sk__xf_start s;
        if (sk__xf_get_start(p, plen, t->hl, &s) < 0)
            return sk_errf(t->err, EPROTO, "malformed START from the receiver");
        size_t i = t->wait_start[t->ws_head++];
        if (s.code == SK_XF_OK && t->list.v[i].type == SK_XF_FILE)
            return keep_offer(t, i, &s);
        if (s.code == SK_XF_DONE) {
            report(t, i, SK_XFER_STORED, NULL, NULL);
            return 0;
        }
        text(msg, sizeof msg, s.message, s.message_len);
        report(t, i, SK_XFER_REFUSED, msg[0] ? msg : "refused", NULL);
        t->list.v[i].type = -t->list.v[i].type; /* not to be sent */
        return 0;
    }
    if (type == SK_XF_RESULT && t->nwr > t->wr_head) {
        sk__xf_result r;
        if (sk__xf_get_result(p, plen, t->hl, &r) < 0)
            return sk_errf(t->err, EPROTO, "malformed RESULT from the receiver");
        size_t i = t->wait_result[t->wr_head++];
        if (i == t->cur)
            t->cur_abort = 1;
        if (r.code == SK_XF_OK) {
            t->done[i] = r.size;
            report(t, i, SK_XFER_STORED, NULL, r.hash);
        } else if (r.code == SK_XF_E_ABORTED && t->list.v[i].refused) {
            report(t, i, SK_XFER_REFUSED, t->list.v[i].refused, NULL);
        } else {
            text(msg, sizeof msg, r.message, r.message_len);
            report(t, i, SK_XFER_REFUSED, msg[0] ? msg : "refused", NULL);
        }
        return 0;
    }
    if (type == SK_XF_SUMMARY && t->nwr == t->wr_head && t->nws == t->ws_head) {
        t->summary_seen = 1;
        return 0;
    }
    return sk_errf(t->err, EPROTO, "unexpected frame 0x%02x from the receiver", type);
}

/* Read what the receiver sent and handle whole frames. wait: block (up to
 * the timeout) until at least one byte arrives. Returns 0, or -1. */
static int pump(tx *t, int wait)
{
    if (!wait && sk__tp_buffered(t->tp) == 0) {
        struct pollfd pfd = {t->tp->fd, POLLIN, 0};
        if (poll(&pfd, 1, 0) <= 0)
            return 0;
    } else if (wait && sk__tp_buffered(t->tp) == 0) {
        int r = sk_wait_fd(t->tp->fd, POLLIN, sk_now_ms() + t->timeout_ms);
        if (r == 0)
            return sk_errf(t->err, ETIMEDOUT, "no answer from the receiver in %lld s",
                           (long long)(t->timeout_ms / 1000));
        if (r < 0)
            return sk_errno(t->err, errno, "poll");
    }
    uint8_t *room = sk_buf_reserve(&t->in, 65536);
    if (room == NULL)
        return sk_errno(t->err, ENOMEM, "send");
    ssize_t r = sk__tp_read(t->tp, room, 65536);
    if (r == SK_TP_AGAIN)
        return 0;
    if (r < 0)
        return sk_errno(t->err, errno, "connection lost");
    if (r == 0)
        return t->summary_seen
                   ? 0
                   : sk_errf(t->err, ECONNRESET, "connection lost: the receiver closed it");
    sk_buf_commit(&t->in, (size_t)r);
    for (;;) {
        uint8_t type;
        uint32_t plen;
        int h = sk__xf_head(sk_buf_head(&t->in), t->in.len, &type, &plen);
        if (h == SK_XF_BAD)
            return sk_errf(t->err, EPROTO, "malformed frame from the receiver");
        if (h == SK_XF_NEED || t->in.len < SK_XF_HEAD + plen)
            return 0;
        if (on_frame(t, type, sk_buf_head(&t->in) + SK_XF_HEAD, plen) < 0)
            return -1;
        sk_buf_consume(&t->in, SK_XF_HEAD + plen);
    }
}

/* Fill buf with up to len bytes of fd at off (off < 0: its position). */
static ssize_t read_full(int fd, uint8_t *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = off < 0 ? read(fd, buf + got, len - got)
                            : pread(fd, buf + got, len - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* The receiver offers the chunks it has. They are taken only if the first
 * and the last of them still hash the same here (the entry's size and time
 * already matched its journal); otherwise the file starts over. */
/* Keep the chunks the receiver offers; they are checked when the file's
 * turn comes (reading the file now could disturb a chunk being written). */
static int keep_offer(tx *t, size_t i, const sk__xf_start *s)
{
    sk__xw_entry *e = &t->list.v[i];
    uint64_t size = (uint64_t)e->st.st_size;
    if (s->chunks == 0 || S_ISFIFO(e->st.st_mode) || s->chunks > (size + t->chunk - 1) / t->chunk)
        return 0;
    t->offer[i] = malloc(s->chunks * t->hl);
    if (t->offer[i] == NULL)
        return 0; /* then the file starts over */
    memcpy(t->offer[i], s->hashes, s->chunks * t->hl);
    t->noffer[i] = s->chunks;
    return 0;
}

/* The offered chunks are taken only if the first and the last of them
 * still hash the same here (the entry's size and time already matched the
 * receiver's journal); otherwise the file starts over. Returns the bytes
 * resumed (0: start over), the whole-file hash fed with the offered hashes. */
static uint64_t take_offer(tx *t, size_t i, int fd)
{
    uint64_t n = t->noffer[i], size = (uint64_t)t->list.v[i].st.st_size;
    uint64_t probe[2] = {0, n - 1};
    int ok = fd >= 0;
    for (int k = 0; k < 2 && ok; k++) {
        uint64_t off = probe[k] * t->chunk;
        size_t len = size - off < t->chunk ? (size_t)(size - off) : t->chunk;
        uint8_t h[SK_XF_HASH_MAX];
        ok = read_full(fd, t->buf, len, (off_t)off) == (ssize_t)len;
        if (ok) {
            sk__xf_hash_once(&t->ch, t->buf, len, h);
            ok = memcmp(h, t->offer[i] + probe[k] * t->hl, t->hl) == 0;
        }
    }
    if (ok) /* the whole-file hash is over every chunk's hash: the prefix's are offered */
        sk__xf_hash_update(&t->whole, t->offer[i], n * t->hl);
    free(t->offer[i]);
    t->offer[i] = NULL;
    if (!ok)
        return 0;
    return n * t->chunk < size ? n * t->chunk : size;
}

static int send_file(tx *t, size_t i)
{
    sk__xw_entry *e = &t->list.v[i];
    int stream = S_ISFIFO(e->st.st_mode);
    int fd = stream ? STDIN_FILENO : open(e->path, O_RDONLY | O_CLOEXEC);
    int open_err = errno;
    uint64_t index = 0, bytes = 0;
    uint8_t status = 0;
    sk__xf_hash_reset(&t->whole);
    t->resumed[i] = t->offer[i] ? take_offer(t, i, fd) : 0;
    if (t->resumed[i]) {
        index = (t->resumed[i] + t->chunk - 1) / t->chunk;
        bytes = t->resumed[i];
    }
    t->done[i] = bytes;
    t->cur = i;
    t->cur_abort = 0;
    if (fd < 0) {
        status = 1;
        e->refused = reason_dup("cannot open", open_err);
    }
    uint64_t size = stream ? UINT64_MAX : (uint64_t)e->st.st_size;
    while (status == 0 && (stream || bytes < size)) {
        size_t want = stream || size - bytes > t->chunk ? t->chunk : (size_t)(size - bytes);
        ssize_t r = read_full(fd, t->buf, want, stream ? -1 : (off_t)bytes);
        if (r < 0 || (!stream && (size_t)r != want)) {
            /* Unreadable, or the file shrank: the receiver refuses it, and
             * the sender says why (the reason is ours, not the receiver's). */
            status = 1;
            e->refused =
                r < 0 ? reason_dup("read", errno) : strdup("the file shrank while being sent");
            break;
        }
        if (r == 0)
            break;
        uint8_t h[SK_XF_HASH_MAX], head[SK_XF_HEAD + SK_XF_CHUNK_HEAD(SK_XF_HASH_MAX)];
        sk__xf_hash_once(&t->ch, t->buf, (size_t)r, h);
        sk__xf_hash_update(&t->whole, h, t->hl);
        const uint8_t *data = t->buf;
        size_t dlen = (size_t)r;
        uint8_t enc = SK_XF_RAW;
        if (t->zstd) {
            size_t z = ZSTD_compressCCtx(t->cctx, t->zbuf, t->zcap, t->buf, (size_t)r, 1);
            if (!ZSTD_isError(z) && z < (size_t)r - (size_t)r / 16) {
                data = t->zbuf;
                dlen = z;
                enc = SK_XF_ZSTD_ENC;
            }
        }
        size_t hn =
            sk__xf_put_chunk_head(head, sizeof head, index, enc, (uint32_t)r, h, t->hl, dlen);
        /* A small chunk (a small file) joins the frames queued in out, so
         * many files leave in one write: one send per batch of small files,
         * not one per file (and the receiver wakes once for them). A large
         * one goes at once, from the read buffer, without a copy. */
        int queued = dlen < TX_COALESCE && t->out.len + hn + dlen <= TX_QUEUED_MAX;
        struct iovec v[2] = {{head, hn}, {(void *)data, dlen}};
        if (queued ? put(t, head, hn) < 0 || put(t, data, dlen) < 0 : flush(t, v, 2) < 0) {
            if (!stream)
                close(fd);
            return -1;
        }
        index++;
        bytes += (uint64_t)r;
        t->done[i] = bytes;
        t->st->sent += (uint64_t)r;
        report(t, i, SK_XFER_SENDING, NULL, NULL);
        if (!queued && pump(t, 0) < 0) {
            if (!stream)
                close(fd);
            return -1;
        }
        if (t->cur_abort) /* refused while sending (disk full, corrupted): stop */
            break;
        if ((size_t)r < want)
            break;
    }
    if (fd >= 0 && !stream)
        close(fd);
    uint8_t h[SK_XF_HASH_MAX], f[SK_XF_HEAD + 17 + SK_XF_HASH_MAX];
    sk__xf_hash_final(&t->whole, h);
    t->cur = SIZE_MAX;
    return put(t, f, sk__xf_put_end(f, sizeof f, status, bytes, index, h, t->hl));
}

static int announce(tx *t, size_t i)
{
    sk__xw_entry *e = &t->list.v[i];
    int stream = S_ISFIFO(e->st.st_mode);
    sk__xf_entry x = {
        .type = (uint8_t)e->type,
        .flags = stream ? SK_XF_E_STREAM : 0,
        .mode = (uint16_t)(e->st.st_mode & 07777),
        .size = stream                  ? SK_XF_SIZE_UNKNOWN
                : e->type == SK_XF_FILE ? (uint64_t)e->st.st_size
                                        : 0,
        .mtime_sec = e->st.st_mtim.tv_sec,
        .mtime_nsec = (uint32_t)e->st.st_mtim.tv_nsec,
        .name = (const uint8_t *)e->name,
        .name_len = strlen(e->name),
        .target = (const uint8_t *)e->target,
        .target_len = e->target ? strlen(e->target) : 0,
    };
    uint8_t f[SK_XF_HEAD + 26 + 2 * SK_XF_NAME_MAX];
    size_t n = sk__xf_put_entry(f, sizeof f, &x);
    if (n == 0 || x.name_len > SK_XF_NAME_MAX) {
        report(t, i, SK_XFER_REFUSED, "name too long", NULL);
        return 0;
    }
    t->wait_start[t->nws++] = i;
    return put(t, f, n);
}

static int hello(tx *t)
{
    sk__xf_hello h = {SK_XF_VERSION, t->hash, t->flags, t->chunk};
    uint8_t f[SK_XF_HEAD + 12];
    if (put(t, f, sk__xf_put_hello(f, sizeof f, SK_XF_HELLO, &h)) < 0 || flush(t, NULL, 0) < 0)
        return -1;
    for (;;) {
        uint8_t type;
        uint32_t plen;
        int r = sk__xf_head(sk_buf_head(&t->in), t->in.len, &type, &plen);
        if (r == SK_XF_BAD)
            return sk_errf(t->err, EPROTO, "the peer is not a sockit recv service");
        if (r == SK_XF_HEAD && t->in.len >= SK_XF_HEAD + plen) {
            const uint8_t *p = sk_buf_head(&t->in) + SK_XF_HEAD;
            if (type == SK_XF_REFUSE)
                return on_frame(t, type, p, plen);
            if (type != SK_XF_WELCOME)
                return sk_errf(t->err, EPROTO, "the peer is not a sockit recv service");
            sk__xf_hello w;
            if (sk__xf_get_hello(p, plen, &w) < 0)
                return sk_errf(t->err, EPROTO, "malformed WELCOME from the receiver");
            if (w.version != SK_XF_VERSION)
                return sk_errf(t->err, EPROTO,
                               "receiver speaks protocol %u, sender %d: upgrade the %s", w.version,
                               SK_XF_VERSION, w.version < SK_XF_VERSION ? "receiver" : "sender");
            t->zstd = (t->flags & SK_XF_F_ZSTD) && (w.flags & SK_XF_F_ZSTD);
            t->st->compressed = t->zstd;
            sk_buf_consume(&t->in, SK_XF_HEAD + plen);
            return 0;
        }
        uint8_t *room = sk_buf_reserve(&t->in, 4096);
        if (room == NULL)
            return sk_errno(t->err, ENOMEM, "send");
        if (sk_wait_fd(t->tp->fd, POLLIN, sk_now_ms() + t->timeout_ms) <= 0)
            return sk_errf(t->err, ETIMEDOUT,
                           "no answer from the receiver (is it a recv service?)");
        ssize_t n = sk__tp_read(t->tp, room, 4096);
        if (n == SK_TP_AGAIN)
            continue;
        if (n <= 0)
            return sk_errf(t->err, n == 0 ? ECONNRESET : errno,
                           "the receiver closed the connection without an answer");
        sk_buf_commit(&t->in, (size_t)n);
    }
}

/* Announce up to SK_XF_BATCH entries (those refused here are reported). */
static int announce_batch(tx *t, size_t *b)
{
    size_t first = t->nws;
    while (*b < t->list.n && t->nws - first < SK_XF_BATCH) {
        size_t i = (*b)++;
        sk__xw_stat(&t->list.v[i]);
        if (t->list.v[i].refused)
            report(t, i, SK_XFER_REFUSED, t->list.v[i].refused, NULL);
        else if (announce(t, i) < 0)
            return -1;
    }
    return 0;
}

static int run(tx *t)
{
    if (hello(t) < 0)
        return -1;
    size_t b = 0, first = 0;
    if (announce_batch(t, &b) < 0 || flush(t, NULL, 0) < 0)
        return -1;
    while (first < t->nws) {
        size_t last = t->nws;
        while (t->ws_head < last)
            if (pump(t, 1) < 0)
                return -1;
        /* The next batch goes out before this one's data: its answers come
         * back while the data flows, so no batch waits a round trip. */
        if (announce_batch(t, &b) < 0 || flush(t, NULL, 0) < 0)
            return -1;
        for (size_t k = first; k < last; k++) {
            size_t i = t->wait_start[k];
            if (t->list.v[i].type != SK_XF_FILE)
                continue;
            t->wait_result[t->nwr++] = i;
            if (send_file(t, i) < 0)
                return -1;
        }
        first = last;
    }
    uint8_t f[SK_XF_HEAD];
    if (put(t, f, sk__xf_put_empty(f, sizeof f, SK_XF_BYE)) < 0 || flush(t, NULL, 0) < 0)
        return -1;
    while (!t->summary_seen)
        if (pump(t, 1) < 0)
            return -1;
    return 0;
}

int sk__xfer_send_tp(sk_tp *tp, const char *const *paths, size_t n, const sk_xfer_opts *o,
                     sk_xfer_stats *st, sk_err *err)
{
    static const sk_xfer_opts none;
    sk_xfer_stats dummy;
    tx t = {.tp = tp, .o = o ? o : &none, .st = st ? st : &dummy, .err = err, .cur = SIZE_MAX};
    memset(t.st, 0, sizeof *t.st);
    o = t.o;
    t.hash = (uint8_t)(o->hash ? o->hash : SK_XFER_XXH3);
    t.hl = sk__xf_hash_len(t.hash);
    t.chunk = o->chunk_size ? o->chunk_size : SK_XF_CHUNK_DEFAULT;
    t.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 120000;
    t.flags = (uint8_t)((o->compress ? SK_XF_F_ZSTD : 0) | (o->overwrite ? SK_XF_F_OVERWRITE : 0) |
                        (o->no_resume ? SK_XF_F_NO_RESUME : 0));
    if (t.hl == 0)
        return sk_err_usage(err, "unknown hash %d", o->hash);
    if (t.chunk < SK_XF_CHUNK_MIN || t.chunk > SK_XF_CHUNK_MAX || (t.chunk & (t.chunk - 1)))
        return sk_err_usage(err, "chunk size %u: expected a power of two, 4 KiB to 8 MiB", t.chunk);
    int rc = -1;
    /* Non-blocking for the transfer (restored after): a write that would
     * block is the moment to read the receiver's answers. */
    int fl = fcntl(tp->fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK) && fcntl(tp->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        fl = -1;
    if (sk__xw_build(&t.list, paths, n, o->recursive, o->name, err) < 0)
        goto out;
    size_t cnt = t.list.n ? t.list.n : 1;
    t.wait_start = malloc(cnt * sizeof *t.wait_start);
    t.wait_result = malloc(cnt * sizeof *t.wait_result);
    t.resumed = calloc(cnt, sizeof *t.resumed);
    t.done = calloc(cnt, sizeof *t.done);
    t.offer = calloc(cnt, sizeof *t.offer);
    t.noffer = calloc(cnt, sizeof *t.noffer);
    t.buf = malloc(t.chunk);
    t.zcap = ZSTD_compressBound(t.chunk);
    t.zbuf = o->compress ? malloc(t.zcap) : NULL;
    t.cctx = o->compress ? ZSTD_createCCtx() : NULL;
    if (!t.wait_start || !t.wait_result || !t.resumed || !t.done || !t.offer || !t.noffer ||
        !t.buf || (o->compress && (!t.zbuf || !t.cctx)) || sk__xf_hash_init(&t.ch, t.hash) < 0 ||
        sk__xf_hash_init(&t.whole, t.hash) < 0) {
        sk_errno(err, ENOMEM, "send");
        goto out;
    }
    if (run(&t) == 0)
        rc = t.st->refused ? 1 : 0;
out:
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(tp->fd, F_SETFL, fl);
    free(t.wait_start);
    free(t.wait_result);
    free(t.resumed);
    free(t.done);
    for (size_t i = 0; t.offer && i < t.list.n; i++)
        free(t.offer[i]);
    free(t.offer);
    free(t.noffer);
    sk__xw_free(&t.list);
    free(t.buf);
    free(t.zbuf);
    ZSTD_freeCCtx(t.cctx);
    sk__xf_hash_free(&t.ch);
    sk__xf_hash_free(&t.whole);
    sk_buf_free(&t.out);
    sk_buf_free(&t.in);
    return rc;
}

int sk_xfer_send(int fd, const char *const *paths, size_t n, const sk_xfer_opts *o,
                 sk_xfer_stats *st, sk_err *err)
{
    sk_tp tp;
    sk__tp_plain(&tp, fd);
    return sk__xfer_send_tp(&tp, paths, n, o, st, err);
}
