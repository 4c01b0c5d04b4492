/*
 * resolve_cache.h - a relay's target, resolved without blocking its loop.
 *
 * getaddrinfo blocks for as long as DNS takes (seconds, when a server is
 * slow or gone), and an event loop that calls it stops serving every other
 * connection meanwhile. A relay forwards to one target, so one resolution
 * serves every connection: it is done once at start, and afterwards, when it
 * is older than SK__RCACHE_TTL_MS, a connection that asks gets the answer on
 * hand while a thread of its own asks again ("stale while revalidate"): a
 * name that moves is followed within about a second, and no connection ever
 * waits for DNS. Addresses that need no lookup (numeric hosts, Unix paths)
 * are resolved at each call, which never blocks; so is every address in a
 * process forked after the cache was made (fork, prefork: such a process
 * serves one connection at a time, and only that one waits).
 */
#ifndef SOCKIT_RESOLVE_CACHE_H
#define SOCKIT_RESOLVE_CACHE_H

#include "sockit.h"

#define SK__RCACHE_TTL_MS 1000

typedef struct sk__rcache sk__rcache;

/* Resolve `target` now (blocking: call it at start) and keep the answer.
 * The target is copied. Returns the cache, or NULL with err (out of memory).
 * A failed first lookup is not an error: sk__rcache_get reports it, and asks
 * again. */
sk__rcache *sk__rcache_new(const sk_addr *target, sk_err *err);

/* The target's endpoints, at most cap: returns how many (then *err is
 * untouched), or 0 with err saying why the last lookup failed. Never blocks;
 * thread-safe. */
size_t sk__rcache_get(sk__rcache *rc, sk_endpoint *out, size_t cap, sk_err *err);

/* Connect to the first of the target's endpoints that answers (as
 * sk_connect, without waiting for DNS): a blocking fd, its endpoint in *peer
 * (may be NULL), or -1 with err ("connect udp://10.0.0.1:53: ..."). */
int sk__rcache_connect(sk__rcache *rc, int timeout_ms, sk_endpoint *peer, sk_err *err);

/* sock.c: connect one endpoint within timeout_ms, from src if not NULL.
 * Returns a blocking fd, or -1 (errno; *bind_failed set when binding src
 * failed). */
int sk__connect_one(const sk_endpoint *e, const sk_endpoint *src, int timeout_ms, int *bind_failed);

/* Drop the caller's reference (a lookup in flight holds its own, so this
 * returns at once). NULL is fine. */
void sk__rcache_free(sk__rcache *rc);

#endif
