/*
 * limits.c - per-source limits: connections at once and a token bucket.
 *
 * One fixed-size table in a MAP_SHARED region, so the processes of a forking
 * server (the parent accepts, the child closes) keep one count: a count kept
 * per process would let every child's source open N more. A process-shared,
 * robust mutex guards it (a child killed while holding it must not wedge the
 * server). Sources are found through a hash table with chains of indices
 * (no pointers: the region is the same memory in every process, but the
 * indices need no fixing anyway), and a doubly linked list in order of last
 * use gives the least recently seen source to forget when the table is full.
 * The hash is keyed with a random seed so that clients cannot choose
 * addresses that collide.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "sockit.h"

#define NIL UINT32_MAX

typedef struct src {
    uint8_t key[9]; /* family tag (4 or 6), then 4 (IPv4) or 8 (IPv6 /64) bytes */
    uint8_t used;
    int32_t held;      /* connections open now */
    uint32_t hnext;    /* hash chain */
    uint32_t prev;     /* LRU list: toward most recent */
    uint32_t next;     /* toward least recent */
    double tokens;     /* token bucket */
    int64_t refill_ms; /* when tokens were last brought up to date */
} src;

struct sk_limits {
    pthread_mutex_t mu;
    size_t map_size;
    int max_per_source;
    double rate, burst;
    uint64_t seed;
    uint32_t cap, nbuckets, count;
    uint32_t head, tail; /* most and least recently seen */
    uint32_t free_head;  /* unused entries, through hnext */
    uint32_t *buckets;   /* in the region, after this struct */
    src *e;
};

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed)
            seed = 0;
        close(fd);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return seed ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
}

sk_limits *sk_limits_new(int max_per_source, double rate, int burst, size_t capacity, sk_err *err)
{
    if (max_per_source < 0 || rate < 0 || burst < 0 || rate != rate) {
        sk_err_usage(err, "limits: negative values make no sense");
        return NULL;
    }
    if (capacity == 0)
        capacity = SK_LIMITS_CAPACITY_DEFAULT;
    if (capacity > (1u << 24)) {
        sk_err_usage(err, "limits: capacity %zu too large (at most %u)", capacity, 1u << 24);
        return NULL;
    }
    uint32_t nb = 1;
    while (nb < capacity * 2)
        nb <<= 1;
    size_t head = (sizeof(sk_limits) + 63) & ~(size_t)63;
    size_t size = head + nb * sizeof(uint32_t) + capacity * sizeof(src);
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        sk_errno(err, errno, "limits: mmap %zu bytes", size);
        return NULL;
    }
    sk_limits *l = m;
    l->map_size = size;
    l->max_per_source = max_per_source;
    l->rate = rate;
    l->burst = burst > 0 ? burst : rate >= 1 ? (double)(long)rate : 1;
    l->seed = random_seed();
    l->cap = (uint32_t)capacity;
    l->nbuckets = nb;
    l->buckets = (uint32_t *)((char *)m + head);
    l->e = (src *)(l->buckets + nb);
    memset(l->buckets, 0xff, nb * sizeof(uint32_t));
    for (uint32_t i = 0; i < l->cap; i++)
        l->e[i].hnext = i + 1 < l->cap ? i + 1 : NIL;
    l->free_head = 0;
    l->head = l->tail = NIL;
    pthread_mutexattr_t at;
    int rc = pthread_mutexattr_init(&at);
    if (rc == 0)
        rc = pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(&l->mu, &at);
    pthread_mutexattr_destroy(&at);
    if (rc != 0) {
        sk_errno(err, rc, "limits: process-shared mutex");
        munmap(m, size);
        return NULL;
    }
    return l;
}

void sk_limits_free(sk_limits *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->mu);
    munmap(l, l->map_size);
}

static void lock(sk_limits *l)
{
    if (pthread_mutex_lock(&l->mu) == EOWNERDEAD)
        pthread_mutex_consistent(&l->mu); /* a process died holding it; the table is
                                           * still well-formed at worst off by one count */
}

static void unlock(sk_limits *l)
{
    pthread_mutex_unlock(&l->mu);
}

/* The source key: 0 if the peer is not limited (Unix, unknown). */
static int make_key(const struct sockaddr *sa, socklen_t len, uint8_t key[9])
{
    memset(key, 0, 9);
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return 0;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 1;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            key[0] = 4;
            memcpy(key + 1, a6->s6_addr + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, a6->s6_addr, 8); /* one /64: one subscriber, usually */
        }
        return 1;
    }
    return 0;
}

static uint32_t hash(const sk_limits *l, const uint8_t key[9])
{
    uint64_t h = l->seed;
    for (int i = 0; i < 9; i++) {
        h ^= key[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    h ^= h >> 32;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h & (l->nbuckets - 1);
}

static void lru_unlink(sk_limits *l, uint32_t i)
{
    src *e = &l->e[i];
    if (e->prev != NIL)
        l->e[e->prev].next = e->next;
    else
        l->head = e->next;
    if (e->next != NIL)
        l->e[e->next].prev = e->prev;
    else
        l->tail = e->prev;
}

static void lru_front(sk_limits *l, uint32_t i)
{
    src *e = &l->e[i];
    e->prev = NIL;
    e->next = l->head;
    if (l->head != NIL)
        l->e[l->head].prev = i;
    l->head = i;
    if (l->tail == NIL)
        l->tail = i;
}

static uint32_t find(const sk_limits *l, const uint8_t key[9], uint32_t *bucket)
{
    *bucket = hash(l, key);
    for (uint32_t i = l->buckets[*bucket]; i != NIL; i = l->e[i].hnext)
        if (memcmp(l->e[i].key, key, 9) == 0)
            return i;
    return NIL;
}

static void forget(sk_limits *l, uint32_t i)
{
    uint32_t b = hash(l, l->e[i].key);
    uint32_t *p = &l->buckets[b];
    while (*p != i)
        p = &l->e[*p].hnext;
    *p = l->e[i].hnext;
    lru_unlink(l, i);
    l->e[i].used = 0;
    l->e[i].hnext = l->free_head;
    l->free_head = i;
    l->count--;
}

static uint32_t insert(sk_limits *l, const uint8_t key[9], uint32_t bucket, int64_t now)
{
    if (l->free_head == NIL) {
        /* Full: forget the least recently seen source, preferring one with no
         * connection open (a few steps only, to stay O(1)). */
        uint32_t victim = l->tail;
        for (uint32_t i = l->tail, k = 0; i != NIL && k < 8; i = l->e[i].prev, k++)
            if (l->e[i].held == 0) {
                victim = i;
                break;
            }
        forget(l, victim);
        bucket = hash(l, key); /* unchanged, but cheap and obviously right */
    }
    uint32_t i = l->free_head;
    src *e = &l->e[i];
    l->free_head = e->hnext;
    memcpy(e->key, key, 9);
    e->used = 1;
    e->held = 0;
    e->tokens = l->burst;
    e->refill_ms = now;
    e->hnext = l->buckets[bucket];
    l->buckets[bucket] = i;
    lru_front(l, i);
    l->count++;
    return i;
}

int sk_limits_acquire(sk_limits *l, const struct sockaddr *peer, socklen_t len, int64_t now_ms,
                      unsigned flags)
{
    uint8_t key[9];
    if (l == NULL || !make_key(peer, len, key))
        return SK_LIMIT_OK;
    int hold = (flags & SK_LIMITS_HOLD) && l->max_per_source > 0;
    if (!hold && l->rate <= 0)
        return SK_LIMIT_OK; /* nothing to count or meter */
    lock(l);
    uint32_t b;
    uint32_t i = find(l, key, &b);
    if (i == NIL)
        i = insert(l, key, b, now_ms);
    else {
        lru_unlink(l, i);
        lru_front(l, i);
    }
    src *e = &l->e[i];
    int rc = SK_LIMIT_OK;
    if (hold && e->held >= l->max_per_source) {
        rc = SK_LIMIT_COUNT;
    } else if (l->rate > 0) {
        if (now_ms > e->refill_ms) {
            e->tokens += (double)(now_ms - e->refill_ms) * l->rate / 1000.0;
            if (e->tokens > l->burst)
                e->tokens = l->burst;
            e->refill_ms = now_ms;
        }
        if (e->tokens < 1.0)
            rc = SK_LIMIT_RATE;
        else
            e->tokens -= 1.0;
    }
    if (rc == SK_LIMIT_OK && hold)
        e->held++;
    unlock(l);
    return rc;
}

void sk_limits_release(sk_limits *l, const struct sockaddr *peer, socklen_t len)
{
    uint8_t key[9];
    if (l == NULL || l->max_per_source <= 0 || !make_key(peer, len, key))
        return;
    lock(l);
    uint32_t b;
    uint32_t i = find(l, key, &b);
    if (i != NIL && l->e[i].held > 0) {
        l->e[i].held--;
        /* Without a rate the entry holds nothing worth remembering now. */
        if (l->e[i].held == 0 && l->rate <= 0)
            forget(l, i);
    }
    unlock(l);
}

size_t sk_limits_sources(sk_limits *l)
{
    if (l == NULL)
        return 0;
    lock(l);
    size_t n = l->count;
    unlock(l);
    return n;
}

int sk_limits_held(sk_limits *l, const struct sockaddr *peer, socklen_t len)
{
    uint8_t key[9];
    if (l == NULL || !make_key(peer, len, key))
        return 0;
    lock(l);
    uint32_t b;
    uint32_t i = find(l, key, &b);
    int n = i != NIL ? l->e[i].held : 0;
    unlock(l);
    return n;
}
