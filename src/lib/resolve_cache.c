/*
 * resolve_cache.c - a relay's target, resolved without blocking its loop
 * (resolve_cache.h says why and how).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resolve_cache.h"
#include "thread.h"

struct sk__rcache {
    pthread_mutex_t mu;
    int refs;          /* the owner's, and a lookup thread's while it runs */
    int literal;       /* no lookup needed: resolved at each call */
    pid_t owner;       /* the process that made it (see sk__rcache_get) */
    int looking;       /* a lookup thread runs */
    int64_t looked_ms; /* when the last lookup started (-1: never) */
    sk_addr target;
    size_t n; /* endpoints of the last lookup that succeeded */
    sk_endpoint eps[SK_RESOLVE_MAX];
    sk_err last; /* the last lookup's error, when n == 0 */
};

static void unref(sk__rcache *rc)
{
    pthread_mutex_lock(&rc->mu);
    int left = --rc->refs;
    pthread_mutex_unlock(&rc->mu);
    if (left == 0) {
        pthread_mutex_destroy(&rc->mu);
        free(rc);
    }
}

/* Resolve and keep the answer; a failure keeps the previous answer (a name
 * server gone for a moment must not take a working target away). */
static void lookup(sk__rcache *rc)
{
    sk_endpoint eps[SK_RESOLVE_MAX];
    size_t n = 0;
    sk_err err;
    int rc_ = sk_resolve(&rc->target, 0, eps, SK_RESOLVE_MAX, &n, &err);
    pthread_mutex_lock(&rc->mu);
    if (rc_ == 0 && n > 0) {
        memcpy(rc->eps, eps, n * sizeof eps[0]);
        rc->n = n;
    } else if (rc->n == 0) {
        if (rc_ == 0)
            sk_errf(&err, 0, "resolve: no address");
        rc->last = err;
    }
    rc->looking = 0;
    pthread_mutex_unlock(&rc->mu);
}

static void *lookup_main(void *arg)
{
    sk__rcache *rc = arg;
    lookup(rc);
    unref(rc);
    return NULL;
}

/* Whether a's host is an address already (or a path): nothing to look up. */
static int is_literal(const sk_addr *a)
{
    if (a->transport == SK_UNIX || a->transport == SK_UNIXGRAM || a->host[0] == '\0')
        return 1;
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, a->host, buf) == 1 || inet_pton(AF_INET6, a->host, buf) == 1;
}

sk__rcache *sk__rcache_new(const sk_addr *target, sk_err *err)
{
    sk__rcache *rc = calloc(1, sizeof *rc);
    if (rc == NULL) {
        sk_errno(err, ENOMEM, "resolver cache");
        return NULL;
    }
    if (pthread_mutex_init(&rc->mu, NULL) != 0) {
        free(rc);
        sk_errno(err, ENOMEM, "resolver cache");
        return NULL;
    }
    rc->refs = 1;
    rc->owner = getpid();
    rc->target = *target;
    rc->literal = is_literal(target);
    rc->looked_ms = -1;
    if (!rc->literal) {
        rc->looked_ms = sk_now_ms();
        lookup(rc);
    }
    return rc;
}

/* Start a lookup in a thread of its own (called with mu held). */
static void refresh(sk__rcache *rc, int64_t now)
{
    rc->looked_ms = now;
    rc->looking = 1;
    rc->refs++;
    int e = sk__thread_start(NULL, lookup_main, rc, 1,
                             256 * 1024); /* getaddrinfo needs more than a little */
    if (e != 0) { /* no thread now: the next call after the TTL tries again */
        rc->looking = 0;
        rc->refs--;
    }
}

size_t sk__rcache_get(sk__rcache *rc, sk_endpoint *out, size_t cap, sk_err *err)
{
    /* A process forked since (the fork and prefork models) serves one
     * connection at a time: waiting for DNS delays only that one, and each
     * lookup is fresh (a child's answer would die with it). */
    if (rc->literal || getpid() != rc->owner) {
        size_t n = 0;
        return sk_resolve(&rc->target, 0, out, cap, &n, err) < 0 ? 0 : n;
    }
    int64_t now = sk_now_ms();
    pthread_mutex_lock(&rc->mu);
    if (!rc->looking && now - rc->looked_ms >= SK__RCACHE_TTL_MS)
        refresh(rc, now);
    size_t n = rc->n < cap ? rc->n : cap;
    memcpy(out, rc->eps, n * sizeof out[0]);
    if (n == 0)
        *err = rc->last;
    pthread_mutex_unlock(&rc->mu);
    return n;
}

int sk__rcache_connect(sk__rcache *rc, int timeout_ms, sk_endpoint *peer, sk_err *err)
{
    sk_endpoint eps[SK_RESOLVE_MAX];
    size_t n = sk__rcache_get(rc, eps, SK_RESOLVE_MAX, err);
    if (n == 0)
        return -1;
    int last = ECONNREFUSED, unused = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = sk__connect_one(&eps[i], NULL, timeout_ms, &unused);
        if (fd >= 0) {
            if (peer)
                *peer = eps[i];
            return fd;
        }
        last = errno;
    }
    char name[SK_NAME_MAX];
    sk_sockaddr_format((struct sockaddr *)&eps[n - 1].sa, eps[n - 1].len, rc->target.transport,
                       name, sizeof name);
    return sk_errno(err, last, "connect %s", name);
}

void sk__rcache_free(sk__rcache *rc)
{
    if (rc)
        unref(rc);
}
