/*
 * parser.h - internal to libsockit: the HTTP/1.x request-head parser and its
 * helpers (src/http/parser.c, src/http/httputil.c). No I/O, no allocation:
 * this header is all the fuzz target and the unit tests need.
 */
#ifndef SK_HTTP_PARSER_H
#define SK_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* ======================================================================
 * Request parser and helpers (src/http/parser.c, src/http/httputil.c).
 *
 * Nothing in this section does I/O or allocates memory: the parser reads
 * the caller's buffer and returns slices (pointer + length) into it, so the
 * buffer must outlive every slice taken from it. None of the slices is
 * NUL-terminated. All functions are reentrant and thread-safe.
 * ====================================================================== */

typedef struct sk__http_slice {
    const char *p; /* NULL (with n == 0) when the item is absent */
    size_t n;
} sk__http_slice;

typedef struct sk__http_header {
    sk__http_slice name;  /* a token, as sent (compare with sk__http_slice_ieq) */
    sk__http_slice value; /* leading and trailing SP/HTAB removed; may be empty */
} sk__http_header;

#define SK_HTTP_MAX_LINE_DEFAULT 8192           /* request line, without CRLF */
#define SK_HTTP_MAX_HEADERS_BYTES_DEFAULT 16384 /* field lines + final CRLF */
#define SK_HTTP_MAX_HEADERS_DEFAULT 64          /* field lines */

/* Limits of one request head. A field left 0 takes its default. max_line and
 * max_headers_bytes are clamped to SK_HTTP_LIMIT_MAX so that the byte count
 * always fits the int return value. */
typedef struct sk__http_limits {
    size_t max_line;          /* longest request line (without CRLF): longer -> 414 */
    size_t max_headers_bytes; /* longest header section, final CRLF included: -> 431 */
    size_t max_headers;       /* most field lines (also bounded by the array): -> 431 */
} sk__http_limits;

#define SK_HTTP_LIMIT_MAX ((size_t)1 << 28)

typedef struct sk__http_request {
    sk__http_slice
        method; /* a token, case-sensitive ("GET"); unknown methods are the caller's 501 */
    sk__http_slice target; /* the request-target exactly as sent */
    sk__http_slice path;   /* the path of the target, still percent-encoded; "*" for
                             OPTIONS *; "/" (a static string) for "http://host" */
    sk__http_slice query;  /* after '?', without it; p == NULL when there is no '?' */
    int minor;             /* 0 for HTTP/1.0, 1 for HTTP/1.1 (and HTTP/1.2-1.9, RFC 9110 2.5) */
    /* In: the caller's array and its capacity. Out: the field lines, in order. */
    sk__http_header *headers;
    size_t nheaders;
    /* Interpreted from the field lines: */
    int keep_alive; /* 1.1: unless "Connection: close"; 1.0: only with keep-alive (close wins) */
    int has_content_length;
    uint64_t content_length;
    int chunked;         /* Transfer-Encoding is exactly "chunked" (then no Content-Length) */
    sk__http_slice host; /* the authority of an absolute-form target, else the Host field;
                           p == NULL for an HTTP/1.0 request without Host; may be empty */
    /* The value of each of these fields, p == NULL when absent: */
    sk__http_slice if_modified_since, if_none_match, range, if_range, authorization;
} sk__http_request;

/*
 * Parse the head of one HTTP/1.x request (request line and field lines, up to
 * and including the empty line) at the start of buf[0..len). The message body
 * is not read: it starts at buf + the return value and its framing is given by
 * chunked / has_content_length (neither: no body).
 *
 * Set req->headers to an array and req->nheaders to its capacity, then call.
 * Returns
 *   > 0   the request head is complete: the number of bytes it takes (leading
 *         empty lines included); *req is filled in.
 *     0   incomplete: call again with more bytes (buf grown, same start).
 *   < 0   malformed: minus the status to answer before closing the connection:
 *           -400 syntax error, or a smuggling hazard (see below)
 *           -414 request line longer than max_line
 *           -431 header section longer than max_headers_bytes, or more field
 *                lines than min(max_headers, capacity of req->headers)
 *           -501 a transfer coding other than chunked
 *           -505 an HTTP major version other than 1
 * When the return value is <= 0, *req is unchanged (req->nheaders still holds
 * the capacity, so the same struct can be passed again), though the contents of
 * req->headers[] may have been overwritten. lim may be NULL for the defaults.
 *
 * The decision for each byte depends only on the bytes before it, so a prefix
 * of a valid request always gives 0, and an error is reported as soon as the
 * bytes seen make it certain: in particular a request line with no CRLF within
 * max_line bytes gives -414, and a header section that has not ended within
 * max_headers_bytes gives -431, without waiting for more input.
 *
 * Strictness (RFC 9110, RFC 9112, hardened against request smuggling); -400
 * unless stated:
 *  - Lines end with CRLF or a bare LF (RFC 9112 2.2; either ends the request
 *    line, a field line or the head, so a line can never hide inside another).
 *    A bare CR anywhere in the head is an error. Empty lines (CRLF or LF)
 *    before the request line are skipped (RFC 9112 2.2), at most max_line
 *    bytes of them.
 *  - Request line: method SP request-target SP HTTP-version CRLF, exactly one
 *    SP each. The method is a token. The target has only visible ASCII
 *    (0x21-0x7e) and no '#'. It is origin-form ("/path?query"), "*" (OPTIONS
 *    only), or absolute-form "http://authority/path?query" or https://
 *    (scheme case-insensitive; no userinfo; non-empty authority), which gives
 *    path and host. Authority-form (CONNECT) is refused. The version is
 *    "HTTP/" DIGIT "." DIGIT; a major version other than 1 gives -505.
 *  - Field line: token ":" OWS value OWS CRLF. No whitespace before the colon;
 *    a line starting with SP/HTAB (obsolete line folding, or whitespace after
 *    the request line) is an error. The value holds no control character other
 *    than HTAB (no NUL, no DEL); bytes 0x80-0xff (obs-text) are allowed.
 *  - Names are matched case-insensitively. Content-Length must be 1*DIGIT
 *    fitting in 64 bits and appear once (a repeated one is an error even with
 *    equal values; no sign, no list, no inner space). Transfer-Encoding
 *    (possibly split over several lines) must list "chunked" exactly once and
 *    last, else -400; any other coding gives -501; it is an error together with
 *    Content-Length, in an HTTP/1.0 request, or with an empty list element.
 *  - Host: at most one; required in HTTP/1.1 (even with an absolute-form
 *    target, whose authority then replaces it); only the characters of an
 *    RFC 3986 authority without userinfo (ALPHA DIGIT -._~!$&'()*+,;=%:[]).
 *  - If-Modified-Since, If-None-Match, Range, If-Range and Authorization may
 *    each appear at most once. Connection is a comma list; "close" and "keep-alive" are
 *    recognized case-insensitively, other tokens are ignored.
 */
int sk__http_parse_request(const char *buf, size_t len, sk__http_request *req,
                           const sk__http_limits *lim);

/* 1 if s equals the NUL-terminated lit exactly (case-sensitive), else 0. */
int sk__http_slice_eq(sk__http_slice s, const char *lit);
/* 1 if s equals the string literal lit (case-sensitive), else 0: the same as
 * sk__http_slice_eq, with the length known when compiling (needs <string.h>). */
#define SK_HTTP_SLICE_IS(s, lit)                                                                   \
    ((s).n == sizeof(lit) - 1 && memcmp((s).p, (lit), sizeof(lit) - 1) == 0)
/* 1 if s equals lit ignoring ASCII case (no locale), else 0. */
int sk__http_slice_ieq(sk__http_slice s, const char *lit);

/* The first field line of req named name (case-insensitive), or NULL. */
const sk__http_header *sk__http_find_header(const sk__http_request *req, const char *name);

/*
 * Percent-decode in[0..n) into out: "%XX" (hex digits of either case) becomes
 * the byte XX, every other byte is copied ('+' stays '+': this is for paths).
 * out may be in itself (in-place decoding); out is NUL-terminated, so cap must
 * be at least the decoded length + 1 (n + 1 always suffices).
 * Returns 0 with *outlen = the decoded length (the NUL not counted), or -1 if
 * a '%' is not followed by two hex digits, the result would contain a NUL byte
 * (%00 or a literal NUL), or cap is too small. On -1 out holds garbage.
 */
int sk__http_percent_decode(const char *in, size_t n, char *out, size_t cap, size_t *outlen);

/*
 * Check and tidy, in place, a DECODED path path[0..n); path must have room
 * for n + 1 bytes. The path is treated as bytes: only '/', '.', '\\' and NUL
 * are special, so an overlong UTF-8 form of '/' or '.' (%c0%af, %c0%ae) can
 * never act as a separator or a dot segment; to be safe, the bytes that cannot
 * appear in valid UTF-8 as lead bytes (0xc0, 0xc1, 0xf5-0xff) are refused too.
 * Returns 0 with the result in path[0..*outlen) and path[*outlen] = '\0':
 * runs of '/' are collapsed into one, everything else is kept (a trailing '/'
 * too). Returns -1 (answer 400 or 404) if the path is empty or does not start
 * with '/', or holds a '\\', a NUL, a refused byte, or a segment that is
 * exactly "." or ".." (so "/a/../b", "/./a" and "/a/.." are refused, while
 * "/.hidden" and "/..." are ordinary names). On -1 path holds garbage.
 */
int sk__http_normalize_path(char *path, size_t n, size_t *outlen);

/*
 * Interpret a Range field value p[0..n) for a representation of `size` bytes.
 * Only one byte range is supported: "bytes=a-b", "bytes=a-", "bytes=-n"
 * ("bytes" case-insensitive, no whitespace inside, numbers saturate at 2^64-1).
 * Returns 1 with *first <= *last < size (b beyond the end is clamped, a suffix
 * longer than size takes it all), 0 if the range is not satisfiable (a >= size,
 * "bytes=-0", or size == 0: answer 416 with "Content-Range: bytes * /size"),
 * or -1 if the value is malformed, uses another unit, has several ranges, or
 * has a > b (ignore the field: answer 200 with the whole representation).
 */
int sk__http_parse_range(const char *p, size_t n, uint64_t size, uint64_t *first, uint64_t *last);

/*
 * Parse an HTTP-date p[0..n) (RFC 9110 5.6.7) into seconds since the epoch:
 *   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
 *   rfc850-date  "Sunday, 06-Nov-94 08:49:37 GMT" (a two-digit year more than
 *                50 years in the future, from the clock, is in the past century)
 *   asctime      "Sun Nov  6 08:49:37 1994"
 * Names and "GMT" are case-sensitive; the day name must be valid but need not
 * match the date; second 60 (leap) is accepted. No surrounding whitespace.
 * Returns 0 with *t set, or -1 if the text is not a valid date in one of them.
 */
int sk__http_parse_date(const char *p, size_t n, int64_t *t);

#define SK_HTTP_DATE_LEN 29 /* strlen("Sun, 06 Nov 1994 08:49:37 GMT") */

/*
 * Write t (seconds since the epoch) as an IMF-fixdate, e.g.
 * "Sun, 06 Nov 1994 08:49:37 GMT", into buf (at least SK_HTTP_DATE_LEN + 1
 * bytes), NUL-terminated, without any locale dependence. t is clamped to the
 * years 0000-9999. Returns SK_HTTP_DATE_LEN.
 */
size_t sk__http_format_date(int64_t t, char *buf);

#endif
