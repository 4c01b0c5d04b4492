/*
 * timer.h - deadlines kept in a binary min-heap, owned by an event loop.
 * Internal (not installed).
 *
 * The timer is intrusive: the owner embeds an sk__timer (in a connection, in
 * a loop) and finds its way back with offsetof, so arming a timer never
 * allocates once the heap has grown. add/cancel are O(log n); finding the
 * next deadline is O(1); a loop pops what has expired after each wait. One
 * connection needs one timer: its owner arms it at the earliest of its
 * deadlines (idle, header, linger, grace, service timer) and re-arms it when
 * that changes.
 */
#ifndef SK_TIMER_H
#define SK_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct sk__timer {
    int64_t at;   /* deadline on the owner's clock (the engine: sk_now_ms() milliseconds) */
    uint32_t idx; /* 1-based position in the heap; 0 = not armed */
} sk__timer;

typedef struct sk__timers {
    sk__timer **h; /* h[0] is the earliest */
    size_t n, cap;
} sk__timers;

/* An empty heap needs no initialisation beyond zeroing. */
void sk__timers_free(sk__timers *q);

/* Arm t for `at` (re-arming moves it). Returns 0, or -1 (ENOMEM; t unchanged). */
int sk__timer_set(sk__timers *q, sk__timer *t, int64_t at);
/* Disarm t; nothing happens if it is not armed. */
void sk__timer_cancel(sk__timers *q, sk__timer *t);

static inline int sk__timer_armed(const sk__timer *t)
{
    return t->idx != 0;
}

/* The earliest armed timer, or NULL. */
static inline sk__timer *sk__timers_peek(const sk__timers *q)
{
    return q->n ? q->h[0] : NULL;
}

/* Disarm and return one timer whose deadline is <= now, or NULL if none is due. */
sk__timer *sk__timers_pop_expired(sk__timers *q, int64_t now);

/* Time from now to the next deadline, in the clock's units (milliseconds
 * for the engine: a poll/epoll timeout):
 * -1 when nothing is armed, 0 when something is due. */
int sk__timers_timeout(const sk__timers *q, int64_t now);

#endif
