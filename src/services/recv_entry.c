/*
 * recv_entry.c - what the recv service does with each announced entry: a
 * file gets its checks (name, size, free space, an existing file, a transfer
 * already in progress) and its locked .part and journal, with the verified
 * chunks of an earlier transfer offered for resume; a directory or symlink is
 * created at once.
 */
#define _GNU_SOURCE /* fstatvfs, O_NOFOLLOW */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "recv.h"

int sk__rx_disk_full(int e)
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

int sk__rx_parent(sk_conn *c, const char *name)
{
    rx_conn *x = sk_conn_data(c);
    recv_state *st = sk_conn_state(c);
    size_t dlen = (size_t)(sk__rx_base(name) - name);
    if (!x->pdir_name || strlen(x->pdir_name) != dlen || strncmp(x->pdir_name, name, dlen) != 0) {
        int fd = sk__rx_open_parent(st->root_fd, name, 1);
        if (fd < 0)
            return -1;
        char *dir = strndup(name, dlen);
        if (dir == NULL) {
            close(fd);
            errno = ENOMEM;
            return -1;
        }
        if (x->pdir_name) {
            sk__rx_sync_dir(x); /* before it is let go */
            rx_file *owner = NULL;
            for (unsigned i = 0; i < x->qn; i++) {
                rx_file *f = &x->q[(x->qh + i) % RX_QUEUE];
                if (f->pfd_shared && f->pfd == x->pdir_fd)
                    owner = f;
            }
            if (owner)
                owner->pfd_shared = 0; /* the last of them to end closes it */
            else
                close(x->pdir_fd);
            free(x->pdir_name);
        }
        x->pdir_name = dir;
        x->pdir_fd = fd;
        x->pdir_volatile = sk__rx_volatile_fs(fd);
    }
    return x->pdir_fd;
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
        sk__rx_fail(c, SK_XF_E_PROTO, "too many files announced before their data");
        free(name);
        return;
    }
    if (st->cfg.max_size && e->size != SK_XF_SIZE_UNKNOWN && e->size > st->cfg.max_size) {
        code = SK_XF_E_TOO_BIG;
        snprintf(why, sizeof why, "%" PRIu64 " bytes is over --max-size %" PRIu64, e->size,
                 st->cfg.max_size);
        goto refuse;
    }
    f.pfd = sk__rx_parent(c, name);
    f.pfd_shared = f.pfd >= 0;
    f.volatile_fs = x->pdir_volatile;
    if (f.pfd < 0) {
        code = errno == ELOOP || errno == ENOTDIR ? SK_XF_E_NAME : SK_XF_E_IO;
        snprintf(why, sizeof why, "%s",
                 code == SK_XF_E_NAME ? "its path goes through a symlink or a file"
                                      : strerror(errno));
        goto refuse;
    }
    int exists = fstatat(f.pfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists) {
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
    sk__rx_part_names(&f, p, j, sizeof p);
#ifdef O_TMPFILE
    /* A file of one chunk has nothing to resume: it goes to an unnamed file
     * (no part name, no journal to create and remove), unless a transfer of
     * the same name holds its journal. */
    if (st->tmpfile_ok && !exists && e->size <= x->chunk) {
        int held = openat(f.pfd, j, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (held >= 0) {
            int busy = flock(held, LOCK_EX | LOCK_NB) < 0;
            close(held);
            if (busy) {
                code = SK_XF_E_BUSY;
                snprintf(why, sizeof why, "busy: another transfer of %s is in progress", name);
                goto refuse;
            }
        }
        /* Unnamed until verified, so it may have its final mode from the
         * start (when the umask leaves it whole): one fchmod less a file. */
        unsigned m = e->mode & 0777u;
        f.mode_set = m == e->mode && (m & st->umask) == 0 && (m & 0600u) == 0600u;
        f.part = openat(f.pfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, f.mode_set ? m : 0600u);
        if (f.part >= 0) {
            f.tmp = 1;
            goto space;
        }
    }
#endif
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
        (!check_last(x, &f, f.have) ||
         /* Offers wait in the connection's output queue, which is bounded:
          * past a few MiB of them, files start over instead. */
         x->out.len + sk_conn_pending(c) + f.have * x->hl > (4u << 20) / 2)) {
        free(f.offer);
        f.offer = NULL;
        f.have = 0;
    }
    if (f.have == 0 && (sk__rx_journal_start(f.jfd, &jr) < 0 || ftruncate(f.part, 0) < 0)) {
        code = sk__rx_disk_full(errno) ? SK_XF_E_NO_SPACE : SK_XF_E_IO;
        snprintf(why, sizeof why, "journal: %s", strerror(errno));
        goto refuse_rm;
    }
space:;
    uint64_t need = e->size == SK_XF_SIZE_UNKNOWN ? 0 : e->size - f.have * x->chunk;
    if (f.have * x->chunk > e->size)
        need = 0;
    /* Free space: asked for every large file; for small ones at most once a
     * second, less what was accepted since (a disk that fills up anyway is
     * a clean refusal when the write fails). */
    int64_t now = sk_now_ms();
    struct statvfs vs;
    if ((need > x->chunk || x->free_at_ms == 0 || now - x->free_at_ms > 1000 ||
         need > x->free_bytes) &&
        fstatvfs(f.part, &vs) == 0) {
        x->free_bytes = (uint64_t)vs.f_bavail * vs.f_frsize;
        x->free_at_ms = now ? now : 1;
    }
    if (x->free_at_ms && x->free_bytes < need) {
        code = SK_XF_E_NO_SPACE;
        snprintf(why, sizeof why, "%" PRIu64 " bytes needed, %" PRIu64 " free", need,
                 x->free_bytes);
        goto refuse_rm;
    }
    x->free_bytes -= need;
    unsigned slot = (x->qh + x->qn) % RX_QUEUE;
    x->q[slot] = f;
    x->qn++;
    sk__rx_send_start(c, SK_XF_OK, f.have, f.offer, NULL);
    if (f.have)
        sk__rx_log(c, "%s: resuming after %" PRIu64 " verified chunks", name, f.have);
    return;
refuse_rm:
    if (!f.tmp) {
        unlinkat(f.pfd, p, 0);
        unlinkat(f.pfd, j, 0);
    }
refuse:
    sk__rx_send_start(c, code, 0, NULL, why);
    sk__rx_log(c, "refused %s: %s", name, why);
    x->refused++;
    sk__rx_file_close(&f, 0);
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
    sk__rx_send_start(c, code, 0, NULL, why);
    if (why) {
        x->refused++;
        sk__rx_log(c, "refused %s: %s", name, why);
    }
    free(name);
}

void sk__rx_entry(sk_conn *c, const uint8_t *p, size_t len)
{
    rx_conn *x = sk_conn_data(c);
    recv_state *st = sk_conn_state(c);
    sk__xf_entry e;
    if (sk__xf_get_entry(p, len, &e) < 0) {
        sk__rx_fail(c, SK_XF_E_PROTO, "malformed ENTRY frame");
        return;
    }
    char *name = malloc(e.name_len + 1);
    if (name == NULL) {
        sk__rx_fail(c, SK_XF_E_IO, "out of memory");
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
        sk__rx_send_start(c, (uint16_t)code, 0, NULL, msg);
        x->refused++;
        /* The name may hold anything: log it as printable text. */
        char shown[201];
        sk__printable(shown, e.name, e.name_len < 200 ? e.name_len : 200);
        sk__rx_log(c, "refused \"%s\": %s", shown, msg);
        free(name);
        return;
    }
    if (e.type == SK_XF_FILE)
        entry_file(c, &e, name);
    else
        entry_dir(c, &e, name);
}
