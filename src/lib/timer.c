/* timer.c - the deadline heap of timer.h. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "timer.h"

static void place(sk__timers *q, size_t i, sk__timer *t)
{
    q->h[i] = t;
    t->idx = (uint32_t)(i + 1);
}

static void sift_up(sk__timers *q, size_t i)
{
    sk__timer *t = q->h[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (q->h[parent]->at <= t->at)
            break;
        place(q, i, q->h[parent]);
        i = parent;
    }
    place(q, i, t);
}

static void sift_down(sk__timers *q, size_t i)
{
    sk__timer *t = q->h[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        int64_t best = t->at;
        if (l < q->n && q->h[l]->at < best) {
            m = l;
            best = q->h[l]->at;
        }
        if (l + 1 < q->n && q->h[l + 1]->at < best)
            m = l + 1;
        if (m == i)
            break;
        place(q, i, q->h[m]);
        i = m;
    }
    place(q, i, t);
}

void sk__timers_free(sk__timers *q)
{
    for (size_t i = 0; i < q->n; i++)
        q->h[i]->idx = 0;
    free(q->h);
    q->h = NULL;
    q->n = q->cap = 0;
}

int sk__timer_set(sk__timers *q, sk__timer *t, int64_t at)
{
    if (t->idx != 0) {
        size_t i = t->idx - 1;
        int64_t old = t->at;
        t->at = at;
        if (at < old)
            sift_up(q, i);
        else if (at > old)
            sift_down(q, i);
        return 0;
    }
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        if (cap > UINT32_MAX - 1) {
            errno = ENOMEM;
            return -1;
        }
        sk__timer **h = realloc(q->h, cap * sizeof *h);
        if (h == NULL)
            return -1;
        q->h = h;
        q->cap = cap;
    }
    t->at = at;
    q->h[q->n] = t;
    sift_up(q, q->n++);
    return 0;
}

void sk__timer_cancel(sk__timers *q, sk__timer *t)
{
    if (t->idx == 0)
        return;
    size_t i = t->idx - 1;
    t->idx = 0;
    sk__timer *last = q->h[--q->n];
    if (i == q->n)
        return; /* it was the last one */
    place(q, i, last);
    /* The moved timer may belong above or below its new place. */
    if (i > 0 && q->h[(i - 1) / 2]->at > last->at)
        sift_up(q, i);
    else
        sift_down(q, i);
}

sk__timer *sk__timers_pop_expired(sk__timers *q, int64_t now)
{
    if (q->n == 0 || q->h[0]->at > now)
        return NULL;
    sk__timer *t = q->h[0];
    sk__timer_cancel(q, t);
    return t;
}

int sk__timers_timeout(const sk__timers *q, int64_t now)
{
    if (q->n == 0)
        return -1;
    int64_t d = q->h[0]->at - now;
    if (d <= 0)
        return 0;
    return d > INT_MAX ? INT_MAX : (int)d;
}
