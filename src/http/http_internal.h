/* http_internal.h - internal to src/http: the pieces of the `http` service
 * (files, auth, cache, server). The parser is in parser.h. */
#ifndef SK_HTTP_INTERNAL_H
#define SK_HTTP_INTERNAL_H

#include "parser.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "sockit.h"

/* ---- files.c: from a decoded, normalized path to an open file ---- */

/* Content-Type for a file name, from its extension ("text/html; charset=utf-8";
 * "application/octet-stream" when unknown). */
const char *sk__http_mime(const char *name, size_t n);

/* The directory served. */
typedef struct sk__http_root {
    int fd;
    char real[PATH_MAX]; /* its real path (realpath), "" if unknown */
    char abs[PATH_MAX];  /* its path as configured, made absolute, "" if unknown */
} sk__http_root;

/* Open the root directory dir. Returns 0, or -1 with errno. */
int sk__http_root_open(sk__http_root *r, const char *dir);

/* Open rel (a path relative to the root, "" for the root itself) read-only,
 * never blocking on FIFOs or devices, and never outside the root: symbolic
 * links are followed only while they stay inside it (an absolute link
 * counts as inside when it starts with the root's real or configured path).
 * Returns the fd, or -1 with errno (ENOENT, ENOTDIR, EACCES; EXDEV: it
 * leads out of the root; ELOOP: too many links, or a loop). */
int sk__http_open_beneath(const sk__http_root *r, const char *rel);

/* Append an HTML listing of the directory at the URL path url (decoded,
 * normalized, ending in '/') to b: the entries a request would be served
 * (no links leading out, no FIFOs or devices, nothing unreadable), with
 * size and modification time. Names are HTML-escaped and percent-encoded in
 * links. Returns 0, or -1 (errno). */
int sk__http_listing(const sk__http_root *r, const char *url, sk_buf *b);

/* ---- auth.c: HTTP Basic authentication against an htpasswd file ---- */

typedef struct sk__http_auth sk__http_auth;
/* Load "user:crypt-hash" lines. NULL with err on failure (unreadable, malformed). */
sk__http_auth *sk__http_auth_load(const char *path, sk_err *err);
void sk__http_auth_free(sk__http_auth *a);
/* Check an Authorization field value. Returns 1 and copies the user name
 * (for the access log) if the credentials are right, 0 otherwise. The time
 * taken does not depend on whether the user exists or which part was wrong. */
int sk__http_auth_check(const sk__http_auth *a, sk__http_slice value, char *user, size_t cap);

/* ---- cache.c: open files kept for a while, shared by responses ---- */

#define SK_HTTP_CACHE_TTL_MS 1000
#define SK_HTTP_MAP_MAX (64 * 1024) /* files up to this size are also mapped */
/* Files up to this size are read once into a copy kept with the entry: a
 * response copies it after its head into the connection's output, so head
 * and body leave in one send() with no segment to allocate and release. */
#define SK_HTTP_INLINE_MAX (8 * 1024)

typedef struct sk__http_file {
    struct sk__http_file *next; /* hash chain */
    atomic_int refs;            /* the cache's, and one per response using fd */
    int fd;
    int cacheable;
    const uint8_t *copy; /* the whole file, read at open, up to SK_HTTP_INLINE_MAX; else NULL */
    const uint8_t *map;  /* the whole file mapped read-only, up to SK_HTTP_MAP_MAX; else NULL */
    struct stat st;
    int64_t opened_ms;
    char etag[48];
    char fixed[256]; /* Content-Type, ETag, Last-Modified, Accept-Ranges lines */
    size_t fixed_len;
    size_t pathlen;
    char path[512]; /* the decoded URL path it was opened for (the key) */
} sk__http_file;

/* A millisecond clock that is cheap to read (CLOCK_MONOTONIC_COARSE where
 * there is one: no clock source read, a few ms behind), for the cache's TTL
 * and the keep-alive timeout, which are read once per request. */
int64_t sk__http_coarse_ms(void);

typedef struct sk__http_cache sk__http_cache;
sk__http_cache *sk__http_cache_new(void);
void sk__http_cache_free(sk__http_cache *c);
/* A fresh entry for path with a reference for the caller, or NULL. */
sk__http_file *sk__http_cache_get(sk__http_cache *c, const char *path, size_t n);
/* Wrap an open regular file (fd is taken over) and cache it under path (if c).
 * name decides the Content-Type. Returns it with a reference for the caller,
 * or NULL (fd closed) when out of memory. */
sk__http_file *sk__http_file_new(sk__http_cache *c, const char *path, size_t n, int fd,
                                 const struct stat *st, const char *name);
/* Drop one reference (a release callback for sk_conn_queue segments). */
void sk__http_file_release(void *f);

/* ---- server.c: the `http` service ---- */

/* The service's settings (its options: sk_service_set; zero = default). */
typedef struct sk__http_config {
    const char *root;         /* --root: directory served; NULL = "." */
    const char *index;        /* --index: index file name; NULL = "index.html" */
    int listing;              /* --listing: HTML listing of directories without an index */
    const char *auth_file;    /* --auth: htpasswd-style file; NULL = no authentication */
    const char *access_log;   /* --access-log: Combined Log Format file, "-" stdout; NULL none */
    int header_timeout_ms;    /* whole request head, from its first byte; 0 = 10 s */
    int keepalive_timeout_ms; /* idle between requests; 0 = 15 s */
    int max_requests;         /* per connection; 0 = 1000 */
} sk__http_config;

/* The service's state, shared by every connection (sk_conn_state). */
struct http_state {
    sk__http_config cfg;
    int access_log_fd; /* -1: none */
    sk__http_cache *cache;
    sk__http_root root;
    const char *index;
    char no_index_note[512]; /* the 403 page's sentence for a directory without index */
    sk__http_auth *auth;     /* swapped by http_reload: read with an acquire load */
    /* Replaced --auth lists: a thread may still be checking a request against
     * one, so they are freed with the state (one per SIGHUP). */
    sk__http_auth **old_auth;
    size_t nold_auth;
};

/* Per connection (sk_conn_data). */
struct http_conn {
    sk_buf in;                /* bytes of requests not handled yet */
    uint64_t discard;         /* body bytes of the last request still to skip */
    unsigned requests;        /* handled on this connection */
    unsigned char closing;    /* no more requests: close once the output is sent */
    unsigned char in_request; /* part of a request head is here: the header timer runs */
    unsigned char idle_armed; /* the timer is the keep-alive one, set at idle_since or before */
    int64_t idle_since;       /* sk__http_coarse_ms() when the last request was answered */
};

/* What the access log needs to know about one response. */
struct outcome {
    int status;
    uint64_t body;
    const char *user;
};

/* ---- response.c: sending one response ---- */

/* A complete small response (an error page, a redirect) in one send. extra:
 * more header lines (each ending in CRLF) or NULL; note: a sentence for the
 * page, in HTML (escaped by the caller), or NULL. */
void sk__http_simple_response(sk_conn *c, const sk__http_request *req, int status,
                              const char *extra, const char *note, struct outcome *o);
/* Send a file (the caller's reference to f is passed on): 304 for a matching
 * If-None-Match/If-Modified-Since, a 206 range (if If-Range allows), or all. */
void sk__http_serve_file(sk_conn *c, const sk__http_request *req, sk__http_file *f,
                         struct outcome *o);
/* Send the listing of the directory at url (decoded, ending in '/'). */
void sk__http_serve_listing(sk_conn *c, const sk__http_request *req, const char *url,
                            struct outcome *o);
/* Log one response: Combined Log Format to --access-log, and with -v a line
 * through sk_server_log. req is NULL for a request that did not parse. */
void sk__http_access_log(sk_conn *c, const sk__http_request *req, const struct outcome *o);

extern const sk_service sk__svc_http;

/* ---- config.c: the service's options and its start line ---- */

extern const sk_svc_option sk__http_options[];
/* sk_service.configure: one option into an sk__http_config. */
int sk__http_configure(void *config, const char *option, const char *value, sk_err *err);
/* sk_service.describe: "serving /abs/root at http://[::]:8080/". */
size_t sk__http_describe(const void *config, const sk_listener *l, char *buf, size_t cap);

#endif
