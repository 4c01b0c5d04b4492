/* buf.c - a byte queue: append at the tail, consume from the head. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

#define SK_BUF_MIN 4096

/* A connection's buffers are freed whenever they empty (an idle connection
 * holds no buffer memory), so a request-response connection would malloc
 * and free a SK_BUF_MIN block or two per request: a block that size takes
 * glibc's slow path (about a sixth of an HTTP request's instructions). Each
 * thread keeps a few such blocks for its next buffers instead; they are
 * freed when the thread ends. */
#define CACHE_BLOCKS 32

typedef struct block_cache {
    int n;
    void *blk[CACHE_BLOCKS];
} block_cache;

static _Thread_local block_cache cache;
static _Thread_local int cache_keyed;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *arg)
{
    block_cache *c = arg;
    while (c->n > 0)
        free(c->blk[--c->n]);
}

static void cache_key_make(void)
{
    if (pthread_key_create(&cache_key, cache_free) != 0)
        cache_key = (pthread_key_t)-1;
}

static void *block_get(void)
{
    return cache.n > 0 ? cache.blk[--cache.n] : malloc(SK_BUF_MIN);
}

static void block_put(void *p)
{
    if (!cache_keyed) { /* this thread's first: its cache is emptied when it ends */
        pthread_once(&cache_once, cache_key_make);
        cache_keyed = cache_key != (pthread_key_t)-1 && pthread_setspecific(cache_key, &cache) == 0;
    }
    if (cache_keyed && cache.n < CACHE_BLOCKS)
        cache.blk[cache.n++] = p;
    else
        free(p);
}

uint8_t *sk_buf_reserve(sk_buf *b, size_t n)
{
    if (n == 0)
        n = 1; /* always return real storage, never NULL for success */
    /* Written as subtractions so that no sum can wrap around. */
    if (b->max && (n > b->max || b->len > b->max - n)) {
        errno = ENOBUFS;
        return NULL;
    }
    if (n > SIZE_MAX - b->len) {
        errno = ENOMEM;
        return NULL;
    }
    if (b->len == 0)
        b->off = 0; /* empty: start over at the front for free */
    if (b->cap - b->off - b->len >= n)
        return b->data + b->off + b->len;
    /* Compact when that alone makes room and the move is cheap relative to
     * what was consumed; otherwise grow geometrically. */
    if (b->cap - b->len >= n && b->off >= b->len) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        return b->data + b->len;
    }
    size_t need = b->len + n;
    size_t cap = b->cap ? b->cap : SK_BUF_MIN;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            errno = ENOMEM;
            return NULL;
        }
        cap *= 2;
    }
    if (b->max && cap > b->max)
        cap = b->max;
    uint8_t *p = cap == SK_BUF_MIN ? block_get() : malloc(cap);
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (b->len)
        memcpy(p, b->data + b->off, b->len);
    if (b->data != NULL && b->cap == SK_BUF_MIN)
        block_put(b->data);
    else
        free(b->data);
    b->data = p;
    b->cap = cap;
    b->off = 0;
    return b->data + b->len;
}

void sk_buf_commit(sk_buf *b, size_t n)
{
    b->len += n;
}

int sk_buf_append(sk_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t *dst = sk_buf_reserve(b, n);
    if (dst == NULL)
        return -1;
    memcpy(dst, p, n);
    b->len += n;
    return 0;
}

void sk_buf_consume(sk_buf *b, size_t n)
{
    if (n >= b->len) {
        b->off = 0;
        b->len = 0;
        return;
    }
    b->off += n;
    b->len -= n;
}

void sk_buf_free(sk_buf *b)
{
    if (b->data != NULL && b->cap == SK_BUF_MIN)
        block_put(b->data);
    else
        free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
