/*
 * cache.c - open files the web server keeps for a short while.
 *
 * Opening, checking and closing a file costs three system calls per request,
 * more than the whole rest of a small response. Like nginx's open_file_cache
 * and lighttpd's stat cache, we keep each served file open for
 * SK_HTTP_CACHE_TTL_MS, with its validators and the fixed part of its
 * response head computed once, and a small file's content read once (a
 * snapshot that matches the validators and the length, even if the file is
 * rewritten in place meanwhile). Within that time a file replaced on disk is
 * still served as it was; after it, the path is resolved and opened again
 * (with all the checks of sk__http_open_beneath).
 *
 * Entries are shared between connections and threads: each response holds a
 * reference while its sendfile() is pending, and the descriptor is closed
 * when the last reference goes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "http_internal.h"

#define CACHE_BUCKETS 1024
#define CACHE_MAX_ENTRIES 4096

struct sk__http_cache {
    pthread_mutex_t mu;
    sk__http_file *buckets[CACHE_BUCKETS];
    size_t n;
};

static size_t hash(const char *p, size_t n)
{
    size_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h % CACHE_BUCKETS;
}

int64_t sk__http_coarse_ms(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#endif
    return sk_now_ms();
}

sk__http_cache *sk__http_cache_new(void)
{
    sk__http_cache *c = calloc(1, sizeof *c);
    if (c != NULL)
        pthread_mutex_init(&c->mu, NULL);
    return c;
}

void sk__http_file_release(void *arg)
{
    sk__http_file *f = arg;
    if (atomic_fetch_sub(&f->refs, 1) == 1) {
        if (f->map)
            munmap((void *)f->map, (size_t)f->st.st_size);
        free((void *)f->copy);
        close(f->fd);
        free(f);
    }
}

void sk__http_cache_free(sk__http_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        sk__http_file *f = c->buckets[i];
        while (f) {
            sk__http_file *next = f->next;
            sk__http_file_release(f);
            f = next;
        }
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

sk__http_file *sk__http_cache_get(sk__http_cache *c, const char *path, size_t n)
{
    if (c == NULL || n >= sizeof c->buckets[0]->path)
        return NULL;
    int64_t now = sk__http_coarse_ms();
    size_t b = hash(path, n);
    pthread_mutex_lock(&c->mu);
    sk__http_file *f = c->buckets[b];
    while (f && !(f->pathlen == n && memcmp(f->path, path, n) == 0))
        f = f->next;
    if (f && now - f->opened_ms < SK_HTTP_CACHE_TTL_MS)
        atomic_fetch_add(&f->refs, 1);
    else
        f = NULL; /* missing, or too old to trust: the caller opens it again */
    pthread_mutex_unlock(&c->mu);
    return f;
}

static void put_locked(sk__http_cache *c, sk__http_file *f)
{
    size_t b = hash(f->path, f->pathlen);
    sk__http_file **pp = &c->buckets[b];
    while (*pp && !((*pp)->pathlen == f->pathlen && memcmp((*pp)->path, f->path, f->pathlen) == 0))
        pp = &(*pp)->next;
    if (*pp) { /* replace the old entry; it goes when its last response is sent */
        sk__http_file *old = *pp;
        *pp = old->next;
        c->n--;
        sk__http_file_release(old);
    }
    if (c->n >= CACHE_MAX_ENTRIES)
        return;                    /* full: serve this one uncached */
    atomic_fetch_add(&f->refs, 1); /* the cache's own reference */
    f->next = c->buckets[b];
    c->buckets[b] = f;
    c->n++;
}

/* The file's size bytes, read from the start, or NULL (out of memory, a read
 * error, or a file that is no longer that long: then it is mapped or sent
 * from the descriptor as a larger file would be). */
static const uint8_t *read_whole(int fd, size_t size)
{
    uint8_t *p = malloc(size);
    size_t got = 0;
    while (p != NULL && got < size) {
        ssize_t n = pread(fd, p + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(p);
            return NULL;
        }
        got += (size_t)n;
    }
    return p;
}

sk__http_file *sk__http_file_new(sk__http_cache *c, const char *path, size_t n, int fd,
                                 const struct stat *st, const char *name)
{
    sk__http_file *f = calloc(1, sizeof *f);
    if (f == NULL) {
        close(fd);
        return NULL;
    }
    atomic_init(&f->refs, 1); /* the caller's */
    f->fd = fd;
    f->st = *st;
    f->opened_ms = sk__http_coarse_ms();
    /* A small file is read once: its copy follows the head in the
     * connection's output. A larger one up to SK_HTTP_MAP_MAX is mapped and
     * goes out with its head in one sendmsg() (the kernel copies from the
     * page cache); beyond that, sendfile. */
    if (st->st_size > 0 && st->st_size <= SK_HTTP_INLINE_MAX)
        f->copy = read_whole(fd, (size_t)st->st_size);
    if (f->copy == NULL && st->st_size > 0 && st->st_size <= SK_HTTP_MAP_MAX) {
        void *m = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_SHARED, fd, 0);
        f->map = m == MAP_FAILED ? NULL : m;
    }
    f->cacheable = n < sizeof f->path;
    if (f->cacheable) {
        memcpy(f->path, path, n);
        f->pathlen = n;
    }
    char lastmod[SK_HTTP_DATE_LEN + 1];
    snprintf(f->etag, sizeof f->etag, "\"%llx-%llx\"", (unsigned long long)st->st_mtime,
             (unsigned long long)st->st_size);
    sk__http_format_date((int64_t)st->st_mtime, lastmod);
    int len =
        snprintf(f->fixed, sizeof f->fixed,
                 "Content-Type: %s\r\nETag: %s\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n",
                 sk__http_mime(name, strlen(name)), f->etag, lastmod);
    f->fixed_len = len > 0 && (size_t)len < sizeof f->fixed ? (size_t)len : 0;
    if (c != NULL && f->cacheable) {
        pthread_mutex_lock(&c->mu);
        put_locked(c, f);
        pthread_mutex_unlock(&c->mu);
    }
    return f;
}
