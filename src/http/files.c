/*
 * files.c - the part of the web server that touches the file system: opening
 * a request's file without ever leaving the root, content types, and the
 * directory listing.
 */
#define _GNU_SOURCE /* openat2 via syscall, O_PATH */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
 * symbolic link. Stricter than needed (links inside the root are refused
 * too), never looser. */
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

int sk__http_open_beneath(int root_fd, const char *rel)
{
#if defined(__linux__) && defined(SYS_openat2)
    /* The kernel resolves the path and refuses any step outside root_fd,
     * through "..", absolute symlinks or /proc magic links alike. O_NONBLOCK:
     * opening a FIFO must not wait for a writer. */
    struct open_how how = {
        .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, root_fd, *rel ? rel : ".", &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS)
        return (int)fd;
#endif
    return open_walk(root_fd, rel);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
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

int sk__http_listing(int dir_fd, const char *url, sk_buf *b)
{
    int fd = dup(dir_fd);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL && n < LISTING_MAX_ENTRIES) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        int isdir =
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (nn == NULL) {
                rc = -1;
                break;
            }
            names = nn;
        }
        size_t len = strlen(de->d_name);
        names[n] = malloc(len + 2);
        if (names[n] == NULL) {
            rc = -1;
            break;
        }
        memcpy(names[n], de->d_name, len);
        names[n][len] = isdir ? '/' : '\0';
        names[n][len + 1] = '\0';
        n++;
    }
    closedir(d);
    if (rc == 0) {
        qsort(names, n, sizeof *names, cmp_names);
        rc |= LIT(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
        rc |= add_escaped_html(b, url);
        rc |= LIT(b, "</title></head>\n<body><h1>Index of ");
        rc |= add_escaped_html(b, url);
        rc |= LIT(b, "</h1>\n<ul>\n");
        if (strcmp(url, "/") != 0)
            rc |= LIT(b, "<li><a href=\"../\">../</a></li>\n");
        for (size_t i = 0; i < n && rc == 0; i++) {
            /* "./" first: a name with a colon must not read as a URL scheme. */
            rc |= LIT(b, "<li><a href=\"./");
            rc |= add_escaped_url(b, names[i]);
            rc |= LIT(b, "\">");
            rc |= add_escaped_html(b, names[i]);
            rc |= LIT(b, "</a></li>\n");
        }
        rc |= LIT(b, "</ul>\n</body></html>\n");
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc ? -1 : 0;
}
