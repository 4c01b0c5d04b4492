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
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

#include "recv_fs.h"
#include "services.h"

#define RX_QUEUE 256 /* files announced and not yet ended, per connection */
#define SWEEP_EVERY_MS 60000

typedef struct recv_cfg {
    const char *dir;
    uint64_t max_size;  /* 0: no limit */
    uint64_t max_files; /* per transfer */
    unsigned max_depth;
    int64_t part_ttl_s;
} recv_cfg;

static const sk_svc_option recv_options[] = {
    {"dir", "DIR", "directory that receives the files (required)", SK_OPT_PATH},
    {"max-size", "SIZE", "largest file accepted (suffix K, M, G: binary; default none)",
     SK_OPT_STRING},
    {"max-files", "N", "entries per transfer (default 100000)", SK_OPT_NUMBER},
    {"max-depth", "N", "path components of a name (default 64)", SK_OPT_NUMBER},
    {"part-ttl", "SECONDS", "remove partial files older than this (default 86400)", SK_OPT_SECONDS},
    {NULL, NULL, NULL, 0},
};

static void recv_defaults(void *config)
{
    recv_cfg *c = config;
    c->max_files = 100000;
    c->max_depth = 64;
    c->part_ttl_s = 86400;
}

/* "10", "10K", "1.5G"? No: whole numbers with an optional binary suffix. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || s[0] == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    else if (*end == 'T' || *end == 't')
        shift = 40, end++;
    if (*end == 'i' && shift)
        end++;
    if (*end == 'B' && shift)
        end++;
    if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int recv_configure(void *config, const char *option, const char *value, sk_err *err)
{
    recv_cfg *c = config;
    if (strcmp(option, "dir") == 0) {
        c->dir = value;
    } else if (strcmp(option, "max-size") == 0) {
        if (parse_size(value, &c->max_size) < 0)
            return sk_err_usage(err, "--max-size \"%s\": expected a size such as 512K, 10M, 2G",
                                value);
    } else if (strcmp(option, "max-files") == 0) {
        c->max_files = strtoull(value, NULL, 10);
    } else if (strcmp(option, "max-depth") == 0) {
        unsigned long v = strtoul(value, NULL, 10);
        if (v == 0 || v > 4096)
            return sk_err_usage(err, "--max-depth \"%s\": expected 1 to 4096", value);
        c->max_depth = (unsigned)v;
    } else if (strcmp(option, "part-ttl") == 0) {
        c->part_ttl_s = (int64_t)strtod(value, NULL);
    } else {
        return sk_err_usage(err, "--%s is not an option of the recv service", option);
    }
    return 0;
}

typedef struct recv_state {
    recv_cfg cfg;
    int root_fd;
    _Atomic int64_t last_sweep_ms;
} recv_state;

static int recv_init(sk_server *srv, void **state, sk_err *err)
{
    const recv_cfg *c = sk_server_options(srv)->service_config;
    if (c == NULL || c->dir == NULL)
        return sk_err_usage(err, "recv needs --dir DIR (the directory that receives the files)");
    recv_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return sk_errno(err, ENOMEM, "recv");
    st->cfg = *c;
    st->root_fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->root_fd < 0) {
        int e = errno;
        free(st);
        return sk_errno(err, e, "--dir %s", c->dir);
    }
    /* A file size limit (RLIMIT_FSIZE) must fail a write with EFBIG, which
     * the transfer refuses cleanly, not kill the server with SIGXFSZ. */
    signal(SIGXFSZ, SIG_IGN);
    sk__rx_sweep(st->root_fd, st->cfg.part_ttl_s, st->cfg.max_depth);
    atomic_store(&st->last_sweep_ms, sk_now_ms());
    *state = st;
    return 0;
}

static void recv_fini(void *state)
{
    recv_state *st = state;
    if (st) {
        close(st->root_fd);
        free(st);
    }
}

typedef struct rx_file {
    char *name;
    int pfd, part, jfd; /* parent directory, .part, journal (locked) */
    uint64_t size;      /* SK_XF_SIZE_UNKNOWN for a stream */
    int64_t mtime_sec;
    uint32_t mtime_nsec;
    uint16_t mode;
    uint64_t have;  /* chunks offered for resume */
    uint8_t *offer; /* their hashes */
    int started, refused, short_seen;
    uint64_t next;  /* next chunk index */
    uint64_t bytes; /* bytes of the file in the part (verified) */
    uint64_t fresh; /* bytes received now (not resumed) */
} rx_file;

typedef struct rx_dir {
    char *name;
    uint16_t mode;
    int64_t mtime_sec;
    uint32_t mtime_nsec;
} rx_dir;

typedef struct rx_conn {
    int phase; /* 0: HELLO expected, 1: transfer, 2: done */
    uint8_t hash, flags;
    size_t hl;
    uint32_t chunk;
    sk_buf in;
    rx_file *q;
    unsigned qh, qn;
    /* the chunk being received */
    uint64_t data_left, cur_off, cur_index;
    uint32_t cur_raw;
    int discard;
    uint8_t cur_hash[SK_XF_HASH_MAX];
    sk__xf_hash ch, whole;
    uint8_t *scratch;
    ZSTD_DCtx *dctx;
    rx_dir *dirs;
    size_t ndirs, capdirs;
    uint64_t entries, stored, stored_bytes, fresh_bytes, refused;
    int64_t t0;
} rx_conn;

static void rx_log(sk_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rx_log(sk_conn *c, const char *fmt, ...)
{
    sk_server *s = sk_conn_server(c);
    if (!sk_server_options(s)->verbose)
        return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    sk_server_log(s, SK_LOG_INFO, "%s: %s", sk_conn_peer_name(c), line);
}

/* The whole connection is refused (version, malformed frame): say why, close. */
static void rx_fail(sk_conn *c, uint16_t code, const char *msg)
{
    rx_conn *x = sk_conn_data(c);
    uint8_t f[512];
    size_t n = sk__xf_put_refuse(f, sizeof f, SK_XF_VERSION, code, msg);
    if (n)
        sk_conn_send(c, f, n);
    sk_server_log(sk_conn_server(c), SK_LOG_ERROR, "recv %s: %s", sk_conn_peer_name(c), msg);
    x->phase = 2;
    sk_conn_close(c);
}

static void send_start(sk_conn *c, uint16_t code, uint64_t k, const uint8_t *hashes,
                       const char *msg)
{
    rx_conn *x = sk_conn_data(c);
    size_t cap = SK_XF_HEAD + 10 + k * x->hl + (msg ? strlen(msg) : 0);
    uint8_t small[512], *f = cap <= sizeof small ? small : malloc(cap);
    if (f == NULL) {
        rx_fail(c, SK_XF_E_IO, "out of memory");
        return;
    }
    size_t n = sk__xf_put_start(f, cap, code, k, hashes, x->hl, msg);
    sk_conn_send(c, f, n);
    if (f != small)
        free(f);
}

static void send_result(sk_conn *c, uint16_t code, uint64_t size, const uint8_t *hash,
                        const char *msg)
{
    rx_conn *x = sk_conn_data(c);
    uint8_t f[600];
    size_t n = sk__xf_put_result(f, sizeof f, code, size, hash, x->hl, msg);
    sk_conn_send(c, f, n);
}

static void part_names(const rx_file *f, char *part, char *journal, size_t cap)
{
    const char *b = sk__rx_base(f->name);
    snprintf(part, cap, ".%s.part", b);
    snprintf(journal, cap, ".%s.part.journal", b);
}

static void file_close(rx_file *f, int remove_part)
{
    if (remove_part && f->pfd >= 0) {
        char p[300], j[300];
        part_names(f, p, j, sizeof p);
        unlinkat(f->pfd, p, 0);
        unlinkat(f->pfd, j, 0);
    }
    if (f->part >= 0)
        close(f->part);
    if (f->jfd >= 0)
        close(f->jfd); /* also releases the lock */
    if (f->pfd >= 0)
        close(f->pfd);
    free(f->name);
    free(f->offer);
    memset(f, 0, sizeof *f);
    f->pfd = f->part = f->jfd = -1;
}

/* Refuse the file being received: answer now, drop the rest of its data. */
static void refuse_current(sk_conn *c, uint16_t code, int remove_part, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse_current(sk_conn *c, uint16_t code, int remove_part, const char *fmt, ...)
{
    rx_conn *x = sk_conn_data(c);
    rx_file *f = &x->q[x->qh];
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    send_result(c, code, 0, NULL, msg);
    rx_log(c, "refused %s: %s", f->name, msg);
    x->refused++;
    f->refused = 1;
    x->discard = 1;
    if (remove_part) {
        char p[300], j[300];
        part_names(f, p, j, sizeof p);
        unlinkat(f->pfd, p, 0);
        unlinkat(f->pfd, j, 0);
    }
}

static int is_disk_full(int e)
{
    return e == ENOSPC || e == EFBIG || e == EDQUOT;
}

/* The prefix of a journal is trusted only if the last chunk it names still
 * reads back from the part with that hash (a torn tail is caught here). */
static int check_last(rx_conn *x, rx_file *f, uint64_t k)
{
    uint64_t off = (k - 1) * (uint64_t)x->chunk;
    uint64_t len = f->size - off < x->chunk ? f->size - off : x->chunk;
    struct stat st;
    if (fstat(f->part, &st) < 0 || (uint64_t)st.st_size < off + len)
        return 0;
    uint8_t *buf = malloc(len ? len : 1), h[SK_XF_HASH_MAX];
    if (buf == NULL)
        return 0;
    ssize_t r = pread(f->part, buf, len, (off_t)off);
    int ok = r == (ssize_t)len;
    if (ok) {
        sk__xf_hash_once(&x->ch, buf, len, h);
        ok = memcmp(h, f->offer + (k - 1) * x->hl, x->hl) == 0;
    }
    free(buf);
    return ok;
}

static void entry_file(sk_conn *c, const sk__xf_entry *e, char *name)
{
    rx_conn *x = sk_conn_data(c);
    recv_state *st = sk_conn_state(c);
    const char *base = sk__rx_base(name);
    char why[400];
    uint16_t code = 0;
    rx_file f = {.name = name, .pfd = -1, .part = -1, .jfd = -1};
    f.size = e->size;
    f.mtime_sec = e->mtime_sec;
    f.mtime_nsec = e->mtime_nsec;
    f.mode = e->mode;
    char p[300], j[300];
    struct stat sb;
    if (x->qn == RX_QUEUE) {
        rx_fail(c, SK_XF_E_PROTO, "too many files announced before their data");
        free(name);
        return;
    }
    if (st->cfg.max_size && e->size != SK_XF_SIZE_UNKNOWN && e->size > st->cfg.max_size) {
        code = SK_XF_E_TOO_BIG;
        snprintf(why, sizeof why, "%" PRIu64 " bytes is over --max-size %" PRIu64, e->size,
                 st->cfg.max_size);
        goto refuse;
    }
    f.pfd = sk__rx_open_parent(st->root_fd, name, 1);
    if (f.pfd < 0) {
        code = errno == ELOOP || errno == ENOTDIR ? SK_XF_E_NAME : SK_XF_E_IO;
        snprintf(why, sizeof why, "%s",
                 code == SK_XF_E_NAME ? "its path goes through a symlink or a file"
                                      : strerror(errno));
        goto refuse;
    }
    if (fstatat(f.pfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            code = SK_XF_E_TYPE;
            snprintf(why, sizeof why, "a directory of that name exists");
            goto refuse;
        }
        if (!(x->flags & SK_XF_F_OVERWRITE)) {
            code = SK_XF_E_EXISTS;
            snprintf(why, sizeof why, "exists (send --overwrite replaces it)");
            goto refuse;
        }
    }
    part_names(&f, p, j, sizeof p);
    f.jfd = openat(f.pfd, j, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.jfd < 0) {
        code = errno == ENAMETOOLONG ? SK_XF_E_NAME : SK_XF_E_IO;
        snprintf(why, sizeof why, "journal: %s", strerror(errno));
        goto refuse;
    }
    if (flock(f.jfd, LOCK_EX | LOCK_NB) < 0) {
        code = SK_XF_E_BUSY;
        snprintf(why, sizeof why, "busy: another transfer of %s is in progress", name);
        goto refuse;
    }
    f.part = openat(f.pfd, p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.part < 0) {
        code = errno == ENAMETOOLONG ? SK_XF_E_NAME : SK_XF_E_IO;
        snprintf(why, sizeof why, "part file: %s", strerror(errno));
        goto refuse;
    }
    sk__rx_journal jr = {x->hash, x->chunk, e->size, e->mtime_sec, e->mtime_nsec};
    if (!(x->flags & SK_XF_F_NO_RESUME) && !(e->flags & SK_XF_E_STREAM) &&
        sk__rx_journal_load(f.jfd, &jr, &f.offer, &f.have) == 0 && f.have > 0 &&
        !check_last(x, &f, f.have)) {
        free(f.offer);
        f.offer = NULL;
        f.have = 0;
    }
    if (f.have == 0 && (sk__rx_journal_start(f.jfd, &jr) < 0 || ftruncate(f.part, 0) < 0)) {
        code = is_disk_full(errno) ? SK_XF_E_NO_SPACE : SK_XF_E_IO;
        snprintf(why, sizeof why, "journal: %s", strerror(errno));
        goto refuse_rm;
    }
    struct statvfs vs;
    uint64_t need = e->size == SK_XF_SIZE_UNKNOWN ? 0 : e->size - f.have * x->chunk;
    if (f.have * x->chunk > e->size)
        need = 0;
    if (fstatvfs(f.part, &vs) == 0 && (uint64_t)vs.f_bavail * vs.f_frsize < need) {
        code = SK_XF_E_NO_SPACE;
        snprintf(why, sizeof why, "%" PRIu64 " bytes needed, %" PRIu64 " free", need,
                 (uint64_t)vs.f_bavail * vs.f_frsize);
        goto refuse_rm;
    }
    unsigned slot = (x->qh + x->qn) % RX_QUEUE;
    x->q[slot] = f;
    x->qn++;
    send_start(c, SK_XF_OK, f.have, f.offer, NULL);
    if (f.have)
        rx_log(c, "%s: resuming after %" PRIu64 " verified chunks", name, f.have);
    return;
refuse_rm:
    unlinkat(f.pfd, p, 0);
    unlinkat(f.pfd, j, 0);
refuse:
    send_start(c, code, 0, NULL, why);
    rx_log(c, "refused %s: %s", name, why);
    x->refused++;
    file_close(&f, 0);
}

static void entry_dir(sk_conn *c, const sk__xf_entry *e, char *name)
{
    rx_conn *x = sk_conn_data(c);
    recv_state *st = sk_conn_state(c);
    const char *base = sk__rx_base(name);
    const char *why = NULL;
    uint16_t code = SK_XF_DONE;
    int pfd = sk__rx_open_parent(st->root_fd, name, 1);
    struct stat sb;
    if (pfd < 0) {
        code = SK_XF_E_NAME;
        why = "its path goes through a symlink or a file";
    } else if (e->type == SK_XF_DIR) {
        if (mkdirat(pfd, base, 0700) < 0 &&
            (errno != EEXIST || fstatat(pfd, base, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
             !S_ISDIR(sb.st_mode))) {
            code = errno == EEXIST ? SK_XF_E_TYPE : SK_XF_E_IO;
            why = code == SK_XF_E_TYPE ? "exists and is not a directory" : strerror(errno);
        } else {
            /* Modes and times are set at the end: files are still to come
             * (they change the time) and a read-only mode would keep them out. */
            if (x->ndirs == x->capdirs) {
                size_t n = x->capdirs ? x->capdirs * 2 : 16;
                rx_dir *d = realloc(x->dirs, n * sizeof *d);
                if (d) {
                    x->dirs = d;
                    x->capdirs = n;
                }
            }
            if (x->ndirs < x->capdirs) {
                x->dirs[x->ndirs++] = (rx_dir){name, e->mode, e->mtime_sec, e->mtime_nsec};
                name = NULL;
            }
        }
    } else { /* symlink */
        char target[SK_XF_NAME_MAX + 1];
        size_t tl = e->target_len <= SK_XF_NAME_MAX ? e->target_len : 0;
        memcpy(target, e->target, tl);
        target[tl] = '\0';
        if (tl == 0 || !sk__rx_target_inside(name, e->target, e->target_len)) {
            code = SK_XF_E_NAME;
            why = "the symlink points outside the receiving directory";
        } else if (fstatat(pfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
                   (S_ISDIR(sb.st_mode) || !(x->flags & SK_XF_F_OVERWRITE))) {
            code = S_ISDIR(sb.st_mode) ? SK_XF_E_TYPE : SK_XF_E_EXISTS;
            why = code == SK_XF_E_TYPE ? "a directory of that name exists"
                                       : "exists (send --overwrite replaces it)";
        } else {
            unlinkat(pfd, base, 0);
            if (symlinkat(target, pfd, base) < 0) {
                code = SK_XF_E_IO;
                why = strerror(errno);
            } else {
                struct timespec ts[2] = {{e->mtime_sec, e->mtime_nsec},
                                         {e->mtime_sec, e->mtime_nsec}};
                utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
                x->stored++;
            }
        }
    }
    if (pfd >= 0)
        close(pfd);
    send_start(c, code, 0, NULL, why);
    if (why) {
        x->refused++;
        rx_log(c, "refused %s: %s", name, why);
    }
    free(name);
}

static void handle_entry(sk_conn *c, const uint8_t *p, size_t len)
{
    rx_conn *x = sk_conn_data(c);
    recv_state *st = sk_conn_state(c);
    sk__xf_entry e;
    if (sk__xf_get_entry(p, len, &e) < 0) {
        rx_fail(c, SK_XF_E_PROTO, "malformed ENTRY frame");
        return;
    }
    char *name = malloc(e.name_len + 1);
    if (name == NULL) {
        rx_fail(c, SK_XF_E_IO, "out of memory");
        return;
    }
    memcpy(name, e.name, e.name_len);
    name[e.name_len] = '\0';
    const char *why = NULL;
    int code = sk__rx_check_name(e.name, e.name_len, st->cfg.max_depth, &why);
    if (code == 0 && ++x->entries > st->cfg.max_files) {
        code = SK_XF_E_LIMIT;
        why = "more entries than --max-files allows";
    }
    if (code) {
        char msg[100 + 64];
        snprintf(msg, sizeof msg, "name refused: %s", why);
        send_start(c, (uint16_t)code, 0, NULL, msg);
        x->refused++;
        /* The name may hold anything: log it as printable text. */
        char shown[201];
        sk__printable(shown, e.name, e.name_len < 200 ? e.name_len : 200);
        rx_log(c, "refused \"%s\": %s", shown, msg);
        free(name);
        return;
    }
    if (e.type == SK_XF_FILE)
        entry_file(c, &e, name);
    else
        entry_dir(c, &e, name);
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
            int e = w < 0 ? errno : ENOSPC;
            if (is_disk_full(e))
                refuse_current(c, SK_XF_E_NO_SPACE, 1, "disk full: %s", strerror(e));
            else
                refuse_current(c, SK_XF_E_IO, 0, "write: %s", strerror(e));
            return;
        }
        p += w;
        n -= (size_t)w;
        x->cur_off += (uint64_t)w;
    }
}

static void chunk_done(sk_conn *c)
{
    rx_conn *x = sk_conn_data(c);
    if (x->discard)
        return;
    rx_file *f = &x->q[x->qh];
    uint8_t h[SK_XF_HASH_MAX];
    sk__xf_hash_final(&x->ch, h);
    if (memcmp(h, x->cur_hash, x->hl) != 0) {
        refuse_current(c, SK_XF_E_CORRUPT, 0,
                       "chunk %" PRIu64 " does not match its hash: corrupted in transit, "
                       "not stored",
                       x->cur_index);
        return;
    }
    ssize_t w;
    do
        w = write(f->jfd, h, x->hl);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)x->hl) {
        int e = w < 0 ? errno : ENOSPC;
        refuse_current(c, is_disk_full(e) ? SK_XF_E_NO_SPACE : SK_XF_E_IO, is_disk_full(e),
                       "journal: %s", strerror(e));
        return;
    }
    sk__xf_hash_update(&x->whole, h, x->hl);
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
        rx_fail(c, SK_XF_E_PROTO, "malformed or unexpected CHUNK frame");
        return -1;
    }
    if (ch.enc == SK_XF_ZSTD_ENC && !(x->flags & SK_XF_F_ZSTD)) {
        rx_fail(c, SK_XF_E_PROTO, "compressed chunk without agreeing on compression");
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
            refuse_current(c, SK_XF_E_IO, 0, "journal: %s", strerror(errno));
            return 0;
        }
        if (r < 0) {
            rx_fail(c, SK_XF_E_PROTO, "first chunk neither 0 nor the resume point");
            return -1;
        }
    }
    if (ch.index != f->next || f->short_seen) {
        rx_fail(c, SK_XF_E_PROTO, "chunk out of order");
        return -1;
    }
    uint64_t off = ch.index * (uint64_t)x->chunk;
    if (f->size != SK_XF_SIZE_UNKNOWN &&
        (off + ch.raw_len > f->size || (ch.raw_len < x->chunk && off + ch.raw_len != f->size))) {
        refuse_current(c, SK_XF_E_SIZE, 0, "more or fewer bytes than the announced %" PRIu64,
                       f->size);
        return 0;
    }
    if (st->cfg.max_size && off + ch.raw_len > st->cfg.max_size) {
        refuse_current(c, SK_XF_E_TOO_BIG, 1, "over --max-size %" PRIu64, st->cfg.max_size);
        return 0;
    }
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
        rx_fail(c, SK_XF_E_IO, "out of memory");
        return;
    }
    size_t r = ZSTD_decompressDCtx(x->dctx, x->scratch, x->chunk, data, n);
    if (ZSTD_isError(r) || r != x->cur_raw) {
        refuse_current(c, SK_XF_E_CORRUPT, 0,
                       "chunk %" PRIu64 " does not decompress: corrupted in transit, not stored",
                       x->cur_index);
        return;
    }
    chunk_write(c, x->scratch, r);
    chunk_done(c);
}

static void commit(sk_conn *c, rx_file *f, const uint8_t *hash)
{
    rx_conn *x = sk_conn_data(c);
    char p[300], j[300];
    part_names(f, p, j, sizeof p);
    const char *base = sk__rx_base(f->name);
    struct timespec ts[2] = {{f->mtime_sec, f->mtime_nsec}, {f->mtime_sec, f->mtime_nsec}};
    if (fchmod(f->part, f->mode) < 0 || futimens(f->part, ts) < 0 || fsync(f->part) < 0) {
        int e = errno;
        send_result(c, is_disk_full(e) ? SK_XF_E_NO_SPACE : SK_XF_E_IO, 0, NULL, strerror(e));
        x->refused++;
        return;
    }
    int r;
    if (x->flags & SK_XF_F_OVERWRITE) {
        r = renameat(f->pfd, p, f->pfd, base);
    } else {
        /* link() never replaces: a file that appeared meanwhile is kept. */
        r = linkat(f->pfd, p, f->pfd, base, 0);
        if (r == 0)
            unlinkat(f->pfd, p, 0);
    }
    if (r < 0) {
        int e = errno;
        send_result(c, e == EEXIST ? SK_XF_E_EXISTS : SK_XF_E_IO, 0, NULL,
                    e == EEXIST ? "exists (send --overwrite replaces it)" : strerror(e));
        rx_log(c, "refused %s: %s", f->name, strerror(e));
        x->refused++;
        return;
    }
    unlinkat(f->pfd, j, 0);
    if (fsync(f->pfd) < 0) {
        send_result(c, SK_XF_E_IO, 0, NULL, "fsync of the directory failed");
        x->refused++;
        return;
    }
    send_result(c, SK_XF_OK, f->bytes, hash, NULL);
    x->stored++;
    x->stored_bytes += f->bytes;
    rx_log(c, "stored %s: %" PRIu64 " bytes (%" PRIu64 " new), verified (%s)", f->name, f->bytes,
           f->fresh, sk__xf_hash_name(x->hash));
}

static void handle_end(sk_conn *c, const uint8_t *p, size_t len)
{
    rx_conn *x = sk_conn_data(c);
    sk__xf_end e;
    if (x->qn == 0 || sk__xf_get_end(p, len, x->hl, &e) < 0) {
        rx_fail(c, SK_XF_E_PROTO, "malformed or unexpected END frame");
        return;
    }
    rx_file *f = &x->q[x->qh];
    if (!f->refused) {
        uint8_t h[SK_XF_HASH_MAX];
        if (!f->started && file_begin(c, f, f->have) < 0)
            rx_fail(c, SK_XF_E_PROTO, "END before the resume point");
        if (x->phase == 2)
            return;
        sk__xf_hash_final(&x->whole, h);
        int remove = 0;
        if (e.status != 0)
            send_result(c, SK_XF_E_ABORTED, 0, NULL, "the sender gave the file up");
        else if (e.size != f->bytes || e.chunks != f->next ||
                 (f->size != SK_XF_SIZE_UNKNOWN && f->size != f->bytes))
            send_result(c, SK_XF_E_SIZE, 0, NULL, "size or chunk count differ from the data");
        else if (memcmp(h, e.hash, x->hl) != 0)
            send_result(c, SK_XF_E_CORRUPT, 0, NULL,
                        "the whole-file hash does not match: not stored"),
                remove = 1;
        else
            commit(c, f, h);
        if (e.status != 0 || remove)
            x->refused++;
        file_close(f, remove || f->size == SK_XF_SIZE_UNKNOWN);
    } else {
        file_close(f, f->size == SK_XF_SIZE_UNKNOWN);
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
    const char *base = sk__rx_base(d->name);
    struct timespec ts[2] = {{d->mtime_sec, d->mtime_nsec}, {d->mtime_sec, d->mtime_nsec}};
    int r = fchmodat(pfd, base, d->mode, 0);
    if (r == 0)
        r = utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
    fsync(pfd);
    close(pfd);
    return r;
}

static void handle_bye(sk_conn *c)
{
    rx_conn *x = sk_conn_data(c);
    recv_state *st = sk_conn_state(c);
    if (x->qn) {
        rx_fail(c, SK_XF_E_PROTO, "BYE before the data of every file");
        return;
    }
    /* Deepest first: a parent's time is set after its children changed it. */
    for (size_t i = x->ndirs; i-- > 0;)
        if (dir_apply(st, &x->dirs[i]) == 0)
            x->stored++;
    uint8_t f[SK_XF_HEAD + 16];
    size_t n = sk__xf_put_summary(f, sizeof f, x->stored, x->stored_bytes);
    sk_conn_send(c, f, n);
    x->phase = 2;
    sk_conn_close(c);
}

static void handle_hello(sk_conn *c, const uint8_t *p, size_t len)
{
    rx_conn *x = sk_conn_data(c);
    recv_state *st = sk_conn_state(c);
    sk__xf_hello h;
    char msg[200];
    if (sk__xf_get_hello(p, len, &h) < 0) {
        rx_fail(c, SK_XF_E_PROTO, "not a sockit transfer (bad HELLO)");
        return;
    }
    if (h.version != SK_XF_VERSION) {
        snprintf(msg, sizeof msg, "receiver speaks protocol %d, sender %u: upgrade the %s",
                 SK_XF_VERSION, h.version, h.version > SK_XF_VERSION ? "receiver" : "sender");
        rx_fail(c, SK_XF_E_VERSION, msg);
        return;
    }
    if (sk__xf_hash_len(h.hash) == 0 || h.chunk < SK_XF_CHUNK_MIN || h.chunk > SK_XF_CHUNK_MAX ||
        (h.chunk & (h.chunk - 1))) {
        snprintf(msg, sizeof msg, "hash %u or chunk size %u not supported", h.hash, h.chunk);
        rx_fail(c, SK_XF_E_HASH, msg);
        return;
    }
    x->hash = h.hash;
    x->hl = sk__xf_hash_len(h.hash);
    x->chunk = h.chunk;
    x->flags = h.flags & (SK_XF_F_ZSTD | SK_XF_F_OVERWRITE | SK_XF_F_NO_RESUME);
    x->q = calloc(RX_QUEUE, sizeof *x->q);
    if (x->q == NULL || sk__xf_hash_init(&x->ch, h.hash) < 0 ||
        sk__xf_hash_init(&x->whole, h.hash) < 0) {
        rx_fail(c, SK_XF_E_IO, "out of memory");
        return;
    }
    x->phase = 1;
    int64_t now = sk_now_ms();
    if (now - atomic_load(&st->last_sweep_ms) >= SWEEP_EVERY_MS) {
        atomic_store(&st->last_sweep_ms, now);
        sk__rx_sweep(st->root_fd, st->cfg.part_ttl_s, st->cfg.max_depth);
    }
    sk__xf_hello w = {SK_XF_VERSION, h.hash, (uint8_t)(x->flags & SK_XF_F_ZSTD), 0};
    uint8_t f[SK_XF_HEAD + 12];
    size_t n = sk__xf_put_hello(f, sizeof f, SK_XF_WELCOME, &w);
    sk_conn_send(c, f, n);
}

static void handle_frame(sk_conn *c, uint8_t type, const uint8_t *p, uint32_t plen)
{
    rx_conn *x = sk_conn_data(c);
    if (x->phase == 0) {
        if (type == SK_XF_HELLO)
            handle_hello(c, p, plen);
        else
            rx_fail(c, SK_XF_E_PROTO, "not a sockit transfer (expected HELLO)");
        return;
    }
    switch (type) {
    case SK_XF_ENTRY: handle_entry(c, p, plen); break;
    case SK_XF_END: handle_end(c, p, plen); break;
    case SK_XF_BYE: handle_bye(c); break;
    default: rx_fail(c, SK_XF_E_PROTO, "unexpected frame");
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
                chunk_done(c);
            continue;
        }
        uint8_t type;
        uint32_t plen;
        int r = sk__xf_head(p + used, n - used, &type, &plen);
        if (r == SK_XF_BAD) {
            rx_fail(c, SK_XF_E_PROTO, "malformed frame");
            break;
        }
        if (r == SK_XF_NEED)
            break;
        size_t avail = n - used - SK_XF_HEAD;
        const uint8_t *pl = p + used + SK_XF_HEAD;
        if (type == SK_XF_CHUNK && x->phase == 1) {
            size_t head = SK_XF_CHUNK_HEAD(x->hl);
            if (plen < head) {
                rx_fail(c, SK_XF_E_PROTO, "malformed CHUNK frame");
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

static void recv_data(sk_conn *c, const uint8_t *data, size_t len)
{
    rx_conn *x = sk_conn_data(c);
    if (x->phase == 2)
        return;
    if (x->in.len == 0) {
        size_t used = consume(c, data, len);
        data += used;
        len -= used;
        if (len == 0 || x->phase == 2)
            return;
    }
    x->in.max = SK_XF_HEAD + SK_XF_MAX_PAYLOAD + 65536;
    if (sk_buf_append(&x->in, data, len) < 0) {
        rx_fail(c, SK_XF_E_IO, "out of memory");
        return;
    }
    size_t used = consume(c, sk_buf_head(&x->in), x->in.len);
    sk_buf_consume(&x->in, used);
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
        file_close(&x->q[(x->qh + i) % RX_QUEUE],
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
}

static size_t recv_describe(const void *config, const sk_listener *l, char *buf, size_t cap)
{
    const recv_cfg *c = config;
    int n =
        snprintf(buf, cap, "receiving files into %s at %s", c && c->dir ? c->dir : "?", l->name);
    if (n < 0 || cap == 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

const sk_service sk__svc_recv = {
    .name = "recv",
    .summary = "receives files sent by `sockit send` into --dir DIR (verified, resumable)",
    .flags = SK_SVC_STREAM,
    .conn_size = sizeof(rx_conn),
    .init = recv_init,
    .fini = recv_fini,
    .on_open = recv_open,
    .on_data = recv_data,
    .on_close = recv_close,
    .options = recv_options,
    .config_size = sizeof(recv_cfg),
    .config_defaults = recv_defaults,
    .configure = recv_configure,
    .describe = recv_describe,
};
