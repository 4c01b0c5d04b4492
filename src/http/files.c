/*
 * files.c - the part of the web server that touches the file system: opening
 * a request's file without ever leaving the root, content types, and the
 * directory listing.
 */
#define _GNU_SOURCE /* openat2 via syscall, O_PATH */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/openat2.h>
#include <sys/syscall.h>
#endif

#include "http_internal.h"

static const struct {
    const char *ext;
    const char *type;
} mime_table[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"map", "application/json"},
};

const char *sk__http_mime(const char *name, size_t n)
{
    size_t dot = n;
    while (dot > 0 && name[dot - 1] != '.' && name[dot - 1] != '/')
        dot--;
    if (dot == 0 || name[dot - 1] != '.')
        return "application/octet-stream";
    const char *ext = name + dot;
    size_t elen = n - dot;
    for (size_t i = 0; i < sizeof mime_table / sizeof mime_table[0]; i++)
        if (strlen(mime_table[i].ext) == elen && strncasecmp(ext, mime_table[i].ext, elen) == 0)
            return mime_table[i].type;
    return "application/octet-stream";
}

/* Without openat2: walk the path one component at a time and refuse every
 * symbolic link (used on a path resolve_inside has already freed of links). */
static int open_walk(int root_fd, const char *rel)
{
    char part[NAME_MAX + 1];
    int dir = dup(root_fd);
    if (dir < 0)
        return -1;
    const char *p = rel;
    for (;;) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0)
            return dir; /* "" or a trailing '/': the directory itself */
        if (n > NAME_MAX) {
            close(dir);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        int last = end == NULL || end[1] == '\0';
        int flags = O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
                    (last ? O_RDONLY | O_NONBLOCK : O_PATH | O_DIRECTORY);
        int fd = openat(dir, part, flags);
        int e = errno;
        close(dir);
        if (fd < 0) {
            errno = e == ELOOP ? EXDEV : e;
            return -1;
        }
        if (last)
            return fd;
        dir = fd;
        p += n;
    }
}

int sk__http_root_open(sk__http_root *r, const char *dir)
{
    r->real[0] = r->abs[0] = '\0';
    r->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->fd < 0)
        return -1;
    if (realpath(dir, r->real) == NULL)
        r->real[0] = '\0'; /* then only the path as given is recognized */
    /* The root as configured, made absolute, without trailing slashes: a link
     * written as /var/www/x when /var/www is itself a link to /srv/www. */
    char cwd[PATH_MAX] = "";
    if (dir[0] != '/' && getcwd(cwd, sizeof cwd) == NULL)
        return 0;
    int n = snprintf(r->abs, sizeof r->abs, "%s%s%s", cwd, cwd[0] ? "/" : "", dir);
    if (n < 0 || (size_t)n >= sizeof r->abs) {
        r->abs[0] = '\0';
        return 0;
    }
    while (n > 1 && r->abs[n - 1] == '/')
        r->abs[--n] = '\0';
    return 0;
}

/* The root-relative rest of an absolute link target that lies inside the
 * root (under its real path or its configured one), or NULL. */
static const char *inside_root(const sk__http_root *r, const char *target)
{
    const char *roots[2] = {r->real, r->abs};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(roots[i]);
        if (n == 0)
            continue;
        if (n == 1 && roots[i][0] == '/')
            return target + 1; /* serving "/" */
        if (strncmp(target, roots[i], n) == 0 && (target[n] == '/' || target[n] == '\0'))
            return target + n;
    }
    return NULL;
}

#define FOLLOW_MAX 40 /* symlinks followed for one path, as the kernel's MAXSYMLINKS */

/*
 * Resolve rel beneath the root without the kernel's help, following symbolic
 * links the way nginx and lighttpd do: a link may point anywhere inside the
 * root, by a relative path or by an absolute one that starts with the root's
 * path. Writes the resulting root-relative path, which names no link and no
 * dot segment, to out. Returns 0, or -1 with errno: EXDEV (a link or ".."
 * leads out of the root), ELOOP (more than FOLLOW_MAX links), ENAMETOOLONG,
 * or what readlinkat said (ENOENT, ENOTDIR, EACCES).
 * The result is only a name: the caller opens it refusing every link, so a
 * link swapped in after this walk cannot lead anywhere.
 */
static int resolve_inside(const sk__http_root *r, const char *rel, char *out, size_t cap)
{
    char todo[PATH_MAX], link[PATH_MAX], next[PATH_MAX];
    size_t olen = 0, pos = 0, rlen = strlen(rel);
    int follows = 0;
    if (rlen >= sizeof todo || cap < 2) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(todo, rel, rlen + 1);
    out[0] = '\0';
    for (;;) {
        while (todo[pos] == '/')
            pos++;
        if (todo[pos] == '\0')
            break;
        size_t n = strcspn(todo + pos, "/");
        if (n == 1 && todo[pos] == '.') {
            pos += n;
            continue;
        }
        if (n == 2 && todo[pos] == '.' && todo[pos + 1] == '.') {
            if (olen == 0) {
                errno = EXDEV; /* above the root */
                return -1;
            }
            while (olen > 0 && out[olen - 1] != '/')
                olen--;
            olen -= olen > 0;
            out[olen] = '\0';
            pos += n;
            continue;
        }
        size_t keep = olen;
        if (n > NAME_MAX || olen + 1 + n + 2 > cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (olen > 0)
            out[olen++] = '/';
        memcpy(out + olen, todo + pos, n);
        olen += n;
        out[olen] = '\0';
        pos += n;
        ssize_t ln = readlinkat(r->fd, out, link, sizeof link);
        if (ln < 0) {
            if (errno == EINVAL)
                continue; /* not a link: a step of the result */
            return -1;
        }
        if (++follows > FOLLOW_MAX) {
            errno = ELOOP;
            return -1;
        }
        if ((size_t)ln >= sizeof link) {
            errno = ENAMETOOLONG;
            return -1;
        }
        link[ln] = '\0';
        olen = keep; /* the link is replaced by its target */
        out[olen] = '\0';
        const char *t = link;
        if (link[0] == '/') {
            t = inside_root(r, link);
            if (t == NULL) {
                errno = EXDEV;
                return -1;
            }
            olen = 0;
            out[0] = '\0';
        }
        int k = snprintf(next, sizeof next, "%s/%s", t, todo + pos);
        if (k < 0 || (size_t)k >= sizeof next) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(todo, next, (size_t)k + 1);
        pos = 0;
    }
    if (rlen > 0 && rel[rlen - 1] == '/' && olen > 0) {
        out[olen++] = '/'; /* "file/" must still fail as not a directory */
        out[olen] = '\0';
    }
    return 0;
}

/* Open a path that names no link: refuse any link at all on the way. */
static int open_no_links(int root_fd, const char *rel)
{
#if defined(__linux__) && defined(SYS_openat2)
    struct open_how how = {
        .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, root_fd, *rel ? rel : ".", &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS)
        return (int)fd;
#endif
    return open_walk(root_fd, rel);
}

int sk__http_open_beneath(const sk__http_root *r, const char *rel)
{
#if defined(__linux__) && defined(SYS_openat2)
    /* The kernel resolves the path and refuses any step outside the root,
     * through "..", absolute symlinks or /proc magic links alike. O_NONBLOCK:
     * opening a FIFO must not wait for a writer. */
    struct open_how how = {
        .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, r->fd, *rel ? rel : ".", &how, sizeof how);
    if (fd >= 0 || (errno != ENOSYS && errno != EXDEV && errno != ELOOP))
        return (int)fd;
#endif
    /* Refused (an absolute link, a loop, an escape) or no openat2: walk the
     * links ourselves; those that land inside the root are followed. */
    char canon[PATH_MAX];
    if (resolve_inside(r, rel, canon, sizeof canon) < 0)
        return -1;
    return open_no_links(r->fd, canon);
}

/* One row of a listing: what the server would serve under that name. */
struct entry {
    char *name; /* with a trailing '/' for a directory */
    uint64_t size;
    time_t mtime;
};

static int cmp_entries(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int add_escaped_html(sk_buf *b, const char *s)
{
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '&': rep = "&amp;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        }
        if (sk_buf_append(b, rep ? rep : s, rep ? strlen(rep) : 1) < 0)
            return -1;
    }
    return 0;
}

static int add_escaped_url(sk_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("-._~/", c) != NULL;
        char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
        if (sk_buf_append(b, plain ? (const char *)&c : enc, plain ? 1 : 3) < 0)
            return -1;
    }
    return 0;
}

#define LISTING_MAX_ENTRIES 10000
#define LIT(b, s) sk_buf_append((b), (s), sizeof(s) - 1)

/* Would a request for rel be served? Opens it the way a request does (links
 * inside the root followed, anything leading out refused) and keeps regular
 * files and directories that can be opened; fills size and mtime. */
static int servable(const sk__http_root *r, const char *rel, int *isdir, struct entry *e)
{
    int fd = sk__http_open_beneath(r, rel);
    if (fd < 0)
        return 0;
    struct stat st;
    int ok = fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode));
    close(fd);
    if (ok) {
        *isdir = S_ISDIR(st.st_mode);
        e->size = (uint64_t)st.st_size;
        e->mtime = st.st_mtime;
    }
    return ok;
}

/* Read the directory's entries that would be served. Returns the count, or -1. */
static long read_entries(const sk__http_root *r, const char *url, struct entry **out)
{
    int fd = sk__http_open_beneath(r, url + 1);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct entry *v = NULL;
    size_t n = 0, cap = 0, ulen = strlen(url + 1);
    char rel[PATH_MAX];
    struct dirent *de;
    long rc = 0;
    while ((de = readdir(d)) != NULL && n < LISTING_MAX_ENTRIES) {
        size_t len = strlen(de->d_name);
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            ulen + len + 1 > sizeof rel)
            continue;
        memcpy(rel, url + 1, ulen);
        memcpy(rel + ulen, de->d_name, len + 1);
        int isdir = 0;
        struct entry e = {0};
        if (!servable(r, rel, &isdir, &e))
            continue; /* links out of the root, FIFOs, devices, unreadable */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct entry *nv = realloc(v, cap * sizeof *nv);
            if (nv == NULL) {
                rc = -1;
                break;
            }
            v = nv;
        }
        if ((e.name = malloc(len + 2)) == NULL) {
            rc = -1;
            break;
        }
        memcpy(e.name, de->d_name, len);
        e.name[len] = isdir ? '/' : '\0';
        e.name[len + 1] = '\0';
        v[n++] = e;
    }
    closedir(d);
    *out = v;
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            free(v[i].name);
        free(v);
        *out = NULL;
        return -1;
    }
    return (long)n;
}

/* " (13 bytes, 2026-12-02 05:31 UTC)" or " (directory, ...)": plain text, so
 * a listing stays a list of links. */
static int add_details(sk_buf *b, const struct entry *e, int isdir)
{
    char when[32] = "?", line[96];
    struct tm tm;
    if (gmtime_r(&e->mtime, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    int n =
        isdir ? snprintf(line, sizeof line, " (directory, %s)", when)
              : snprintf(line, sizeof line, " (%llu bytes, %s)", (unsigned long long)e->size, when);
    return n > 0 ? sk_buf_append(b, line, (size_t)n) : -1;
}

int sk__http_listing(const sk__http_root *r, const char *url, sk_buf *b)
{
    struct entry *v = NULL;
    long n = read_entries(r, url, &v);
    if (n < 0)
        return -1;
    qsort(v, (size_t)n, sizeof *v, cmp_entries);
    int rc = 0;
    rc |= LIT(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
    rc |= add_escaped_html(b, url);
    rc |= LIT(b, "</title></head>\n<body><h1>Index of ");
    rc |= add_escaped_html(b, url);
    rc |= LIT(b, "</h1>\n<ul>\n");
    if (strcmp(url, "/") != 0)
        rc |= LIT(b, "<li><a href=\"../\">../</a></li>\n");
    for (long i = 0; i < n && rc == 0; i++) {
        size_t len = strlen(v[i].name);
        /* "./" first: a name with a colon must not read as a URL scheme. */
        rc |= LIT(b, "<li><a href=\"./");
        rc |= add_escaped_url(b, v[i].name);
        rc |= LIT(b, "\">");
        rc |= add_escaped_html(b, v[i].name);
        rc |= LIT(b, "</a>");
        rc |= add_details(b, &v[i], len > 0 && v[i].name[len - 1] == '/');
        rc |= LIT(b, "</li>\n");
    }
    rc |= LIT(b, "</ul>\n</body></html>\n");
    for (long i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    return rc ? -1 : 0;
}
