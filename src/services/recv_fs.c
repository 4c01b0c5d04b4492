/*
 * recv_fs.c - the recv service's file system side: a name from the network
 * is checked as text, then opened beneath --dir one component at a time
 * without following any symlink (so neither "..", an absolute name nor a
 * symlink planted in the tree can lead outside it); part files, journals and
 * stale part removal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/vfs.h>
#endif
#include <time.h>
#include <unistd.h>

#include "recv_fs.h"

const char *sk__rx_base(const char *name)
{
    const char *s = strrchr(name, '/');
    return s ? s + 1 : name;
}

static int ends_with(const uint8_t *p, size_t n, const char *suf)
{
    size_t m = strlen(suf);
    return n >= m && memcmp(p + n - m, suf, m) == 0;
}

/* Length of the UTF-8 sequence at p (at most n bytes), 0 if invalid or a
 * control character (C0, DEL, C1). */
static size_t utf8_char(const uint8_t *p, size_t n)
{
    uint8_t b = p[0];
    if (b < 0x20 || b == 0x7f)
        return 0;
    if (b < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if ((b & 0xe0) == 0xc0)
        len = 2, cp = b & 0x1f;
    else if ((b & 0xf0) == 0xe0)
        len = 3, cp = b & 0x0f;
    else if ((b & 0xf8) == 0xf0)
        len = 4, cp = b & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
        (cp >= 0x80 && cp <= 0x9f))
        return 0; /* overlong, out of range, surrogate, C1 control */
    return len;
}

int sk__rx_check_name(const uint8_t *name, size_t len, unsigned max_depth, const char **why)
{
    if (len == 0 || len > SK_XF_NAME_MAX)
        return *why = "empty or too long", SK_XF_E_NAME;
    if (name[0] == '/')
        return *why = "absolute name", SK_XF_E_NAME;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(name + i, len - i);
        if (n == 0)
            return *why = "not UTF-8 text without control characters", SK_XF_E_NAME;
        i += n;
    }
    unsigned depth = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '/')
            continue;
        size_t clen = i - start;
        const uint8_t *comp = name + start;
        if (clen == 0)
            return *why = "empty component", SK_XF_E_NAME;
        if ((clen == 1 && comp[0] == '.') || (clen == 2 && comp[0] == '.' && comp[1] == '.'))
            return *why = "\".\" or \"..\" component", SK_XF_E_NAME;
        if (clen > 255)
            return *why = "component longer than 255 bytes", SK_XF_E_NAME;
        depth++;
        start = i + 1;
        if (i == len && comp[0] == '.' &&
            (ends_with(comp, clen, ".part") || ends_with(comp, clen, ".part.journal")))
            return *why = "reserved for partial transfers", SK_XF_E_NAME;
    }
    if (depth > max_depth)
        return *why = "deeper than --max-depth", SK_XF_E_LIMIT;
    return 0;
}

int sk__rx_open_parent(int root_fd, const char *name, int create)
{
    int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    const char *p = name;
    for (const char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        char comp[256];
        size_t n = (size_t)(slash - p);
        memcpy(comp, p, n); /* checked: at most 255 bytes */
        comp[n] = '\0';
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
                int e = errno;
                close(fd);
                errno = e;
                return -1;
            }
            next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        int e = errno;
        close(fd);
        if (next < 0) {
            errno = e;
            return -1;
        }
        fd = next;
    }
    return fd;
}

int sk__rx_target_inside(const char *link_name, const uint8_t *target, size_t len)
{
    if (len == 0 || target[0] == '/' || memchr(target, '\0', len))
        return 0;
    int depth = 0; /* directories above the link, inside the receiving directory */
    for (const char *s = link_name; *s; s++)
        depth += *s == '/';
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && target[i] != '/')
            continue;
        size_t clen = i - start;
        if (clen == 2 && target[start] == '.' && target[start + 1] == '.') {
            if (--depth < 0)
                return 0;
        } else if (clen > 0 && !(clen == 1 && target[start] == '.')) {
            depth++;
        }
        start = i + 1;
    }
    return 1;
}

static void be_put(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void journal_head(uint8_t *h, const sk__rx_journal *j)
{
    memcpy(h, "SKXJ", 4);
    be_put(h + 4, 1, 2);
    h[6] = j->hash;
    h[7] = 0;
    be_put(h + 8, j->chunk, 4);
    be_put(h + 12, j->size, 8);
    be_put(h + 20, (uint64_t)j->mtime_sec, 8);
    be_put(h + 28, j->mtime_nsec, 4);
    be_put(h + 32, 0, 4);
}

int sk__rx_journal_start(int jfd, const sk__rx_journal *j)
{
    uint8_t h[SK_RX_JOURNAL_HEAD];
    journal_head(h, j);
    if (ftruncate(jfd, 0) < 0)
        return -1;
    ssize_t w;
    do
        w = pwrite(jfd, h, sizeof h, 0);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)sizeof h) {
        if (w >= 0)
            errno = ENOSPC;
        return -1;
    }
    return lseek(jfd, 0, SEEK_END) < 0 ? -1 : 0;
}

int sk__rx_journal_load(int jfd, const sk__rx_journal *want, uint8_t **hashes, uint64_t *n)
{
    *hashes = NULL;
    *n = 0;
    struct stat st;
    if (fstat(jfd, &st) < 0)
        return -1;
    size_t hl = sk__xf_hash_len(want->hash);
    if (st.st_size < SK_RX_JOURNAL_HEAD || hl == 0)
        return 0;
    uint8_t h[SK_RX_JOURNAL_HEAD], expect[SK_RX_JOURNAL_HEAD];
    journal_head(expect, want);
    if (pread(jfd, h, sizeof h, 0) != (ssize_t)sizeof h)
        return 0;
    if (memcmp(h, expect, sizeof h) != 0)
        return 0; /* another source, chunk size or hash: start over */
    uint64_t k = (uint64_t)(st.st_size - SK_RX_JOURNAL_HEAD) / hl;
    /* No more than the file has, and a START of at most 1 MiB: the
     * connection's output queue must hold it (1 MiB chunks: a 32 GiB prefix
     * with SHA-256, 64 GiB with XXH3; beyond that the rest is sent again). */
    uint64_t cap = (1u << 20) / hl;
    uint64_t whole = want->chunk ? (want->size + want->chunk - 1) / want->chunk : 0;
    if (k > cap)
        k = cap;
    if (k > whole)
        k = whole;
    if (k == 0)
        return 0;
    uint8_t *buf = malloc(k * hl);
    if (buf == NULL)
        return -1;
    ssize_t r = pread(jfd, buf, k * hl, SK_RX_JOURNAL_HEAD);
    if (r != (ssize_t)(k * hl)) {
        free(buf);
        return 0;
    }
    *hashes = buf;
    *n = k;
    return 0;
}

static int part_name(const char *d, size_t *plen)
{
    /* ".X.part" or ".X.part.journal" */
    size_t n = strlen(d);
    if (d[0] != '.')
        return 0;
    if (n > 6 && strcmp(d + n - 5, ".part") == 0) {
        *plen = n;
        return 1;
    }
    if (n > 14 && strcmp(d + n - 13, ".part.journal") == 0) {
        *plen = n - 8;
        return 2;
    }
    return 0;
}

unsigned sk__rx_sweep(int root_fd, int64_t ttl_s, unsigned max_depth)
{
    int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return 0;
    }
    unsigned removed = 0;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(fd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (max_depth > 1) {
                int sub = openat(fd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0) {
                    removed += sk__rx_sweep(sub, ttl_s, max_depth - 1);
                    close(sub);
                }
            }
            continue;
        }
        size_t plen;
        int kind = part_name(nm, &plen);
        if (kind == 0 || !S_ISREG(st.st_mode) || now - st.st_mtime < ttl_s)
            continue;
        if (kind == 1) {
            /* A transfer in progress holds its journal locked: leave it. */
            char j[300];
            size_t n = strlen(nm);
            if (n + 9 > sizeof j)
                continue;
            memcpy(j, nm, n);
            memcpy(j + n, ".journal", 9);
            int jfd = openat(fd, j, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (jfd >= 0) {
                int busy = flock(jfd, LOCK_EX | LOCK_NB) < 0;
                if (!busy) {
                    unlinkat(fd, j, 0);
                    unlinkat(fd, nm, 0);
                    removed++;
                }
                close(jfd);
            } else if (unlinkat(fd, nm, 0) == 0) {
                removed++;
            }
        } else {
            /* A journal without its part file. */
            char p[300];
            if (plen >= sizeof p)
                continue;
            memcpy(p, nm, plen);
            p[plen] = '\0';
            struct stat ps;
            if (fstatat(fd, p, &ps, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
                int jfd = openat(fd, nm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (jfd >= 0) {
                    if (flock(jfd, LOCK_EX | LOCK_NB) == 0)
                        unlinkat(fd, nm, 0);
                    close(jfd);
                }
            }
        }
    }
    closedir(d);
    return removed;
}

/* The periodic sweep runs off the serving thread: a large --dir would stall
 * every connection of an event loop for as long as the walk takes. One at a
 * time per process; the thread owns a duplicate of the directory descriptor
 * and nothing else, so the service may be freed while it runs. */
static atomic_int g_sweeping;

struct sweep_job {
    int fd;
    int64_t ttl_s;
    unsigned max_depth;
};

static void *sweep_main(void *arg)
{
    struct sweep_job *j = arg;
    sk__rx_sweep(j->fd, j->ttl_s, j->max_depth);
    close(j->fd);
    free(j);
    atomic_store(&g_sweeping, 0);
    return NULL;
}

void sk__rx_sweep_background(int root_fd, int64_t ttl_s, unsigned max_depth)
{
    if (atomic_exchange(&g_sweeping, 1))
        return; /* one is running */
    struct sweep_job *j = malloc(sizeof *j);
    int fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    pthread_attr_t a;
    pthread_t t;
    if (j != NULL && fd >= 0 && pthread_attr_init(&a) == 0) {
        *j = (struct sweep_job){fd, ttl_s, max_depth};
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &a, sweep_main, j);
        pthread_attr_destroy(&a);
        if (rc == 0)
            return;
    }
    free(j);
    if (fd >= 0)
        close(fd);
    atomic_store(&g_sweeping, 0); /* no thread: the next period tries again */
}

int sk__rx_volatile_fs(int fd)
{
#ifdef __linux__
    struct statfs sf;
    if (fstatfs(fd, &sf) == 0)
        return sf.f_type == 0x01021994 /* TMPFS_MAGIC */ || sf.f_type == 0x858458f6 /* RAMFS */;
#else
    (void)fd;
#endif
    return 0;
}
