/*
 * recv.c - the `recv` service: receives files sent by `sockit send` (or any
 * implementation of docs/PROTOCOL.md) into --dir. Bytes go to .NAME.part
 * beside the final name, each chunk verified against its hash on arrival and
 * journaled (.NAME.part.journal) so that a cut transfer resumes from the last
 * verified chunk; a file appears under its name only after the whole-file
 * hash matched, the part was fsynced and renamed, and the directory fsynced.
 * Frames are decoded by xfer_proto.c; the file system side is recv_fs.c.
 */
#define _GNU_SOURCE /* fstatvfs, O_NOFOLLOW */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

#include "recv.h"

void sk__rx_write_failed(sk_conn *c, int e)
{
    if (sk__rx_disk_full(e))
        sk__rx_refuse_current(c, SK_XF_E_NO_SPACE, 1, "disk full: %s", strerror(e));
    else
        sk__rx_refuse_current(c, SK_XF_E_IO, 0, "write: %s", strerror(e));
}

static void chunk_write(sk_conn *c, const uint8_t *p, size_t n)
{
    rx_conn *x = sk_conn_data(c);
    if (x->discard)
        return;
    rx_file *f = &x->q[x->qh];
    sk__xf_hash_update(&x->ch, p, n);
    while (n > 0) {
        ssize_t w = pwrite(f->part, p, n, (off_t)x->cur_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            sk__rx_write_failed(c, w < 0 ? errno : ENOSPC);
            return;
        }
        p += w;
        n -= (size_t)w;
        x->cur_off += (uint64_t)w;
    }
}

void sk__rx_chunk_done(sk_conn *c)
{
    rx_conn *x = sk_conn_data(c);
    if (x->discard)
        return;
    rx_file *f = &x->q[x->qh];
    uint8_t h[SK_XF_HASH_MAX];
    sk__xf_hash_final(&x->ch, h);
    if (memcmp(h, x->cur_hash, x->hl) != 0) {
        sk__rx_refuse_current(c, SK_XF_E_CORRUPT, 0,
                              "chunk %" PRIu64 " does not match its hash: corrupted in transit, "
                              "not stored",
                              x->cur_index);
        return;
    }
    ssize_t w = (ssize_t)x->hl;
    while (f->jfd >= 0 && (w = write(f->jfd, h, x->hl)) < 0 && errno == EINTR)
        ;
    if (w != (ssize_t)x->hl) {
        int e = w < 0 ? errno : ENOSPC;
        sk__rx_refuse_current(c, sk__rx_disk_full(e) ? SK_XF_E_NO_SPACE : SK_XF_E_IO,
                              sk__rx_disk_full(e), "journal: %s", strerror(e));
        return;
    }
    sk__xf_hash_update(&x->whole, h, x->hl);
#ifdef SYNC_FILE_RANGE_WRITE
    /* On a disk, the chunk starts on its way there now (Linux; elsewhere the
     * kernel starts when it likes): the fsync before the answer then waits
     * for the tail of the file, not all of it, and the disk works while the
     * network does. Only a start: a failure shows at that fsync. */
    if (!f->volatile_fs)
        (void)sync_file_range(f->part, (off_t)(x->cur_off - x->cur_raw), x->cur_raw,
                              SYNC_FILE_RANGE_WRITE);
#endif
    f->next++;
    f->bytes += x->cur_raw;
    f->fresh += x->cur_raw;
    x->fresh_bytes += x->cur_raw;
}

/* The first chunk (or END) of a file: the sender either takes the offered
 * prefix (index == have) or starts over (index 0). */
static int file_begin(sk_conn *c, rx_file *f, uint64_t index)
{
    rx_conn *x = sk_conn_data(c);
    f->started = 1;
    sk__xf_hash_reset(&x->whole);
    if (index == f->have && f->have > 0) {
        /* New hashes go after the offered ones (the journal may hold more
         * than was offered: cut it there). */
        off_t end = SK_RX_JOURNAL_HEAD + (off_t)(f->have * x->hl);
        if (ftruncate(f->jfd, end) < 0 || lseek(f->jfd, end, SEEK_SET) < 0)
            return -2;
        sk__xf_hash_update(&x->whole, f->offer, f->have * x->hl);
        f->next = f->have;
        f->bytes = f->have * (uint64_t)x->chunk;
        if (f->bytes > f->size)
            f->bytes = f->size;
        return 0;
    }
    if (index != 0)
        return -1;
    if (f->have > 0) {
        sk__rx_journal jr = {x->hash, x->chunk, f->size, f->mtime_sec, f->mtime_nsec};
        if (sk__rx_journal_start(f->jfd, &jr) < 0 || ftruncate(f->part, 0) < 0)
            return -2;
    }
    f->next = 0;
    f->bytes = 0;
    return 0;
}

/* A chunk's head arrived (p: the payload's first bytes). */
static int chunk_head(sk_conn *c, const uint8_t *p, size_t len, uint32_t plen)
{
    rx_conn *x = sk_conn_data(c);
    recv_state *st = sk_conn_state(c);
    sk__xf_chunk ch;
    if (x->qn == 0 || sk__xf_get_chunk(p, len, plen, x->hl, x->chunk, &ch) < 0) {
        sk__rx_fail(c, SK_XF_E_PROTO, "malformed or unexpected CHUNK frame");
        return -1;
    }
    if (ch.enc == SK_XF_ZSTD_ENC && !(x->flags & SK_XF_F_ZSTD)) {
        sk__rx_fail(c, SK_XF_E_PROTO, "compressed chunk without agreeing on compression");
        return -1;
    }
    rx_file *f = &x->q[x->qh];
    x->discard = f->refused;
    x->data_left = ch.data_len;
    if (f->refused)
        return 0;
    if (!f->started) {
        int r = file_begin(c, f, ch.index);
        if (r == -2) {
            sk__rx_refuse_current(c, SK_XF_E_IO, 0, "journal: %s", strerror(errno));
            return 0;
        }
        if (r < 0) {
            sk__rx_fail(c, SK_XF_E_PROTO, "first chunk neither 0 nor the resume point");
            return -1;
        }
    }
    if (ch.index != f->next || f->short_seen) {
        sk__rx_fail(c, SK_XF_E_PROTO, "chunk out of order");
        return -1;
    }
    uint64_t off = ch.index * (uint64_t)x->chunk;
    if (f->size != SK_XF_SIZE_UNKNOWN &&
        (off + ch.raw_len > f->size || (ch.raw_len < x->chunk && off + ch.raw_len != f->size))) {
        sk__rx_refuse_current(c, SK_XF_E_SIZE, 0, "more or fewer bytes than the announced %" PRIu64,
                              f->size);
        return 0;
    }
    if (st->cfg.max_size && off + ch.raw_len > st->cfg.max_size) {
        sk__rx_refuse_current(c, SK_XF_E_TOO_BIG, 1, "over --max-size %" PRIu64, st->cfg.max_size);
        return 0;
    }
    if (ch.enc == SK_XF_RAW && ch.data_len >= SK_RX_SPLICE_MIN)
        sk__rx_splice_start(c, x);
    f->short_seen = ch.raw_len < x->chunk;
    x->cur_index = ch.index;
    x->cur_raw = ch.raw_len;
    x->cur_off = off;
    memcpy(x->cur_hash, ch.hash, x->hl);
    sk__xf_hash_reset(&x->ch);
    return 0;
}

static void chunk_zstd(sk_conn *c, const uint8_t *data, size_t n)
{
    rx_conn *x = sk_conn_data(c);
    if (x->discard)
        return;
    if (x->scratch == NULL)
        x->scratch = malloc(x->chunk);
    if (x->dctx == NULL)
        x->dctx = ZSTD_createDCtx();
    if (x->scratch == NULL || x->dctx == NULL) {
        sk__rx_fail(c, SK_XF_E_IO, "out of memory");
        return;
    }
    size_t r = ZSTD_decompressDCtx(x->dctx, x->scratch, x->chunk, data, n);
    if (ZSTD_isError(r) || r != x->cur_raw) {
        sk__rx_refuse_current(c, SK_XF_E_CORRUPT, 0,
                              "chunk %" PRIu64
                              " does not decompress: corrupted in transit, not stored",
                              x->cur_index);
        return;
    }
    chunk_write(c, x->scratch, r);
    sk__rx_chunk_done(c);
}

/* Give the verified part its name: a named part is linked (never replacing)
 * or, with overwrite, renamed; an unnamed one is linked from /proc. */
static int publish(rx_conn *x, rx_file *f, const char *p)
{
    const char *base = sk__rx_base(f->name);
    if (f->tmp) {
#ifdef AT_EMPTY_PATH
        /* Linux lets the opener link its own O_TMPFILE by descriptor (6.10
         * on; before that only with CAP_DAC_READ_SEARCH): no walk through
         * /proc. Where refused, /proc from then on. */
        static atomic_int empty_path_refused;
        if (!atomic_load(&empty_path_refused)) {
            if (linkat(f->part, "", f->pfd, base, AT_EMPTY_PATH) == 0)
                return 0;
            if (errno != EPERM && errno != ENOENT && errno != EINVAL)
                return -1;
            atomic_store(&empty_path_refused, 1);
        }
#endif
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->part);
        return linkat(AT_FDCWD, proc, f->pfd, base, AT_SYMLINK_FOLLOW);
    }
    if (x->flags & SK_XF_F_OVERWRITE)
        return renameat(f->pfd, p, f->pfd, base);
    /* link() never replaces: a file that appeared meanwhile is kept. */
    int r = linkat(f->pfd, p, f->pfd, base, 0);
    if (r == 0)
        unlinkat(f->pfd, p, 0);
    return r;
}

static void commit(sk_conn *c, rx_file *f, const uint8_t *hash)
{
    rx_conn *x = sk_conn_data(c);
    char p[300], j[300];
    sk__rx_part_names(f, p, j, sizeof p);
    struct timespec ts[2] = {{f->mtime_sec, f->mtime_nsec}, {f->mtime_sec, f->mtime_nsec}};
    if ((!f->mode_set && fchmod(f->part, f->mode) < 0) || futimens(f->part, ts) < 0 ||
        (!f->volatile_fs && fsync(f->part) < 0)) {
        int e = errno;
        sk__rx_send_result(c, sk__rx_disk_full(e) ? SK_XF_E_NO_SPACE : SK_XF_E_IO, 0, NULL,
                           strerror(e));
        x->refused++;
        return;
    }
    if (publish(x, f, p) < 0) {
        int e = errno;
        sk__rx_send_result(c, e == EEXIST ? SK_XF_E_EXISTS : SK_XF_E_IO, 0, NULL,
                           e == EEXIST ? "exists (send --overwrite replaces it)" : strerror(e));
        sk__rx_log(c, "refused %s: %s", f->name, strerror(e));
        x->refused++;
        return;
    }
    if (f->jfd >= 0)
        unlinkat(f->pfd, j, 0);
    /* The directory entry is made durable before the RESULT leaves: at once,
     * or for the kept directory once for all files of this input. */
    size_t dlen = (size_t)(sk__rx_base(f->name) - f->name);
    if (x->pdir_name && strlen(x->pdir_name) == dlen && strncmp(x->pdir_name, f->name, dlen) == 0) {
        x->pdir_dirty = 1;
    } else if (!f->volatile_fs && fsync(f->pfd) < 0) {
        sk__rx_send_result(c, SK_XF_E_IO, 0, NULL, "fsync of the directory failed");
        x->refused++;
        return;
    }
    sk__rx_send_result(c, SK_XF_OK, f->bytes, hash, NULL);
    x->stored++;
    x->stored_bytes += f->bytes;
    sk__rx_log(c, "stored %s: %" PRIu64 " bytes (%" PRIu64 " new), verified (%s)", f->name,
               f->bytes, f->fresh, sk__xf_hash_name(x->hash));
}

static void handle_end(sk_conn *c, const uint8_t *p, size_t len)
{
    rx_conn *x = sk_conn_data(c);
    sk__xf_end e;
    if (x->qn == 0 || sk__xf_get_end(p, len, x->hl, &e) < 0) {
        sk__rx_fail(c, SK_XF_E_PROTO, "malformed or unexpected END frame");
        return;
    }
    rx_file *f = &x->q[x->qh];
    if (!f->refused) {
        uint8_t h[SK_XF_HASH_MAX];
        int r = f->started ? 0 : file_begin(c, f, f->have);
        if (r == -2)
            sk__rx_fail(c, SK_XF_E_IO, "journal: cannot be cut at the resume point");
        else if (r < 0)
            sk__rx_fail(c, SK_XF_E_PROTO, "END before the resume point");
        if (x->phase == 2)
            return;
        sk__xf_hash_final(&x->whole, h);
        int remove = 0;
        if (e.status != 0)
            sk__rx_send_result(c, SK_XF_E_ABORTED, 0, NULL, "the sender gave the file up");
        else if (e.size != f->bytes || e.chunks != f->next ||
                 (f->size != SK_XF_SIZE_UNKNOWN && f->size != f->bytes))
            sk__rx_send_result(c, SK_XF_E_SIZE, 0, NULL,
                               "size or chunk count differ from the data");
        else if (memcmp(h, e.hash, x->hl) != 0)
            sk__rx_send_result(c, SK_XF_E_CORRUPT, 0, NULL,
                               "the whole-file hash does not match: not stored"),
                remove = 1;
        else
            commit(c, f, h);
        if (e.status != 0 || remove)
            x->refused++;
        sk__rx_file_close(f, remove || f->size == SK_XF_SIZE_UNKNOWN);
    } else {
        sk__rx_file_close(f, f->size == SK_XF_SIZE_UNKNOWN);
    }
    x->qh = (x->qh + 1) % RX_QUEUE;
    x->qn--;
    x->discard = 0;
}

static int dir_apply(recv_state *st, const rx_dir *d)
{
    int pfd = sk__rx_open_parent(st->root_fd, d->name, 0);
    if (pfd < 0)
        return -1;
    /* Opened without following: whatever took the directory's place since
     * (a symlink) is not changed through. */
    int fd = openat(pfd, sk__rx_base(d->name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct timespec ts[2] = {{d->mtime_sec, d->mtime_nsec}, {d->mtime_sec, d->mtime_nsec}};
    int r = fd < 0 ? -1 : fchmod(fd, d->mode);
    if (r == 0)
        r = futimens(fd, ts);
    if (fd >= 0)
        close(fd);
    fsync(pfd);
    close(pfd);
    return r;
}

static void handle_bye(sk_conn *c)
{
    rx_conn *x = sk_conn_data(c);
    recv_state *st = sk_conn_state(c);
    if (x->qn) {
        sk__rx_fail(c, SK_XF_E_PROTO, "BYE before the data of every file");
        return;
    }
    /* Deepest first: a parent's time is set after its children changed it. */
    for (size_t i = x->ndirs; i-- > 0;)
        if (dir_apply(st, &x->dirs[i]) == 0)
            x->stored++;
    uint8_t f[SK_XF_HEAD + 16];
    size_t n = sk__xf_put_summary(f, sizeof f, x->stored, x->stored_bytes);
    sk__rx_out(c, f, n);
    x->phase = 2;
    x->closing = 1;
}

static void handle_hello(sk_conn *c, const uint8_t *p, size_t len)
{
    rx_conn *x = sk_conn_data(c);
    recv_state *st = sk_conn_state(c);
    sk__xf_hello h;
    char msg[200];
    if (sk__xf_get_hello(p, len, &h) < 0) {
        sk__rx_fail(c, SK_XF_E_PROTO, "not a sockit transfer (bad HELLO)");
        return;
    }
    if (h.version != SK_XF_VERSION) {
        snprintf(msg, sizeof msg, "receiver speaks protocol %d, sender %u: upgrade the %s",
                 SK_XF_VERSION, h.version, h.version > SK_XF_VERSION ? "receiver" : "sender");
        sk__rx_fail(c, SK_XF_E_VERSION, msg);
        return;
    }
    if (sk__xf_hash_len(h.hash) == 0 || h.chunk < SK_XF_CHUNK_MIN || h.chunk > SK_XF_CHUNK_MAX ||
        (h.chunk & (h.chunk - 1))) {
        snprintf(msg, sizeof msg, "hash %u or chunk size %u not supported", h.hash, h.chunk);
        sk__rx_fail(c, SK_XF_E_HASH, msg);
        return;
    }
    x->hash = h.hash;
    x->hl = sk__xf_hash_len(h.hash);
    x->chunk = h.chunk;
    x->flags = h.flags & (SK_XF_F_ZSTD | SK_XF_F_OVERWRITE | SK_XF_F_NO_RESUME);
    x->q = calloc(RX_QUEUE, sizeof *x->q);
    if (x->q == NULL || sk__xf_hash_init(&x->ch, h.hash) < 0 ||
        sk__xf_hash_init(&x->whole, h.hash) < 0) {
        sk__rx_fail(c, SK_XF_E_IO, "out of memory");
        return;
    }
    x->phase = 1;
    int64_t now = sk_now_ms();
    if (now - atomic_load(&st->last_sweep_ms) >= SWEEP_EVERY_MS) {
        atomic_store(&st->last_sweep_ms, now);
        sk__rx_sweep_background(st->root_fd, st->cfg.part_ttl_s, st->cfg.max_depth);
    }
    sk__xf_hello w = {SK_XF_VERSION, h.hash, (uint8_t)(x->flags & SK_XF_F_ZSTD), 0};
    uint8_t f[SK_XF_HEAD + 12];
    size_t n = sk__xf_put_hello(f, sizeof f, SK_XF_WELCOME, &w);
    sk__rx_out(c, f, n);
}

static void handle_frame(sk_conn *c, uint8_t type, const uint8_t *p, uint32_t plen)
{
    rx_conn *x = sk_conn_data(c);
    if (x->phase == 0) {
        if (type == SK_XF_HELLO)
            handle_hello(c, p, plen);
        else
            sk__rx_fail(c, SK_XF_E_PROTO, "not a sockit transfer (expected HELLO)");
        return;
    }
    switch (type) {
    case SK_XF_ENTRY: sk__rx_entry(c, p, plen); break;
    case SK_XF_END: handle_end(c, p, plen); break;
    case SK_XF_BYE: handle_bye(c); break;
    default: sk__rx_fail(c, SK_XF_E_PROTO, "unexpected frame");
    }
}

/* Take what can be taken from p: raw chunk data goes straight to the file;
 * other frames once whole. Returns the bytes used. */
static size_t consume(sk_conn *c, const uint8_t *p, size_t n)
{
    rx_conn *x = sk_conn_data(c);
    size_t used = 0;
    while (x->phase != 2) {
        if (x->data_left > 0) {
            if (used == n)
                break;
            size_t k = n - used < x->data_left ? n - used : (size_t)x->data_left;
            chunk_write(c, p + used, k);
            used += k;
            x->data_left -= k;
            if (x->data_left == 0)
                sk__rx_chunk_done(c);
            continue;
        }
        uint8_t type;
        uint32_t plen;
        int r = sk__xf_head(p + used, n - used, &type, &plen);
        if (r == SK_XF_BAD) {
            sk__rx_fail(c, SK_XF_E_PROTO, "malformed frame");
            break;
        }
        if (r == SK_XF_NEED)
            break;
        size_t avail = n - used - SK_XF_HEAD;
        const uint8_t *pl = p + used + SK_XF_HEAD;
        if (type == SK_XF_CHUNK && x->phase == 1) {
            size_t head = SK_XF_CHUNK_HEAD(x->hl);
            if (plen < head) {
                sk__rx_fail(c, SK_XF_E_PROTO, "malformed CHUNK frame");
                break;
            }
            if (avail < head)
                break;
            if (pl[8] == SK_XF_RAW) {
                if (chunk_head(c, pl, head, plen) < 0)
                    break;
                used += SK_XF_HEAD + head;
                continue;
            }
            if (avail < plen)
                break;
            if (chunk_head(c, pl, plen, plen) < 0)
                break;
            x->data_left = 0;
            chunk_zstd(c, pl + head, plen - head);
            used += SK_XF_HEAD + plen;
            continue;
        }
        if (avail < plen)
            break;
        handle_frame(c, type, pl, plen);
        used += SK_XF_HEAD + plen;
    }
    return used;
}

static void recv_feed(sk_conn *c, const uint8_t *data, size_t len)
{
    rx_conn *x = sk_conn_data(c);
    if (x->in.len == 0) {
        size_t used = consume(c, data, len);
        data += used;
        len -= used;
        if (len == 0 || x->phase == 2)
            return;
    }
    x->in.max = SK_XF_HEAD + SK_XF_MAX_PAYLOAD + 65536;
    if (sk_buf_append(&x->in, data, len) < 0) {
        sk__rx_fail(c, SK_XF_E_IO, "out of memory");
        return;
    }
    size_t used = consume(c, sk_buf_head(&x->in), x->in.len);
    sk_buf_consume(&x->in, used);
}

void sk__rx_data(sk_conn *c, const uint8_t *data, size_t len)
{
    rx_conn *x = sk_conn_data(c);
    if (x->phase == 2)
        return;
    recv_feed(c, data, len);
    sk__rx_flush(c);
}

static void recv_open(sk_conn *c)
{
    rx_conn *x = sk_conn_data(c);
    x->t0 = sk_now_ms();
}

static void recv_close(sk_conn *c)
{
    rx_conn *x = sk_conn_data(c);
    /* A cut transfer keeps its .part and journal: sending again resumes. */
    for (unsigned i = 0; x->q && i < x->qn; i++)
        sk__rx_file_close(&x->q[(x->qh + i) % RX_QUEUE],
                          x->q[(x->qh + i) % RX_QUEUE].size == SK_XF_SIZE_UNKNOWN);
    if (x->hash || x->entries) {
        sk_server *s = sk_conn_server(c);
        if (sk_server_options(s)->verbose) {
            double secs = (double)(sk_now_ms() - x->t0) / 1000.0;
            sk_server_log(s, SK_LOG_INFO,
                          "%s: received %" PRIu64 " entries, %" PRIu64 " bytes (%" PRIu64
                          " new) in %.1f s, %" PRIu64 " refused",
                          sk_conn_peer_name(c), x->stored, x->stored_bytes, x->fresh_bytes, secs,
                          x->refused);
        }
    }
    for (size_t i = 0; i < x->ndirs; i++)
        free(x->dirs[i].name);
    free(x->dirs);
    free(x->q);
    free(x->scratch);
    ZSTD_freeDCtx(x->dctx);
    sk__xf_hash_free(&x->ch);
    sk__xf_hash_free(&x->whole);
    sk_buf_free(&x->in);
    sk_buf_free(&x->out);
    sk__rx_splice_end(x);
    if (x->pdir_name) {
        sk__rx_sync_dir(x);
        close(x->pdir_fd);
        free(x->pdir_name);
    }
}

const sk_service sk__svc_recv = {
    .name = "recv",
    .summary = "receives files sent by `sockit send` into --dir DIR (verified, resumable)",
    .flags = SK_SVC_STREAM,
    .conn_size = sizeof(rx_conn),
    .init = sk__recv_init,
    .fini = sk__recv_fini,
    .on_open = recv_open,
    .on_data = sk__rx_data,
    .on_close = recv_close,
    .options = sk__recv_options,
    .config_size = sizeof(recv_cfg),
    .config_defaults = sk__recv_defaults,
    .configure = sk__recv_configure,
    .describe = sk__recv_describe,
    /* A sender gone without a word (a cable pulled) must not hold its
     * files' locks for ever: after this much silence the connection ends
     * and the parts wait for a resume. */
    .idle_timeout_ms = 300000,
};
