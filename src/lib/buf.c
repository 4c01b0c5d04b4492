/* buf.c - a byte queue: append at the tail, consume from the head. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

#define SK_BUF_MIN 4096

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
    uint8_t *p = malloc(cap);
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (b->len)
        memcpy(p, b->data + b->off, b->len);
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
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
