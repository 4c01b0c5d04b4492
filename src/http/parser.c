/* parser.c - the HTTP/1.x request-head parser: no I/O, no allocation (see http.h). */
#include <stdint.h>
#include <string.h>

#include "parser.h"

#define E400 (-400)
#define E414 (-414)
#define E431 (-431)
#define E501 (-501)
#define E505 (-505)

/* Character sets as bitmaps of ASCII, one test per byte (the head is
 * scanned byte by byte: this is most of a request's parsing). */
#define BIT(c) ((uint64_t)1 << ((c)&63))
#define SPAN(a, b) ((~(uint64_t)0 >> (63 - ((b)&63))) & (~(uint64_t)0 << ((a)&63)))

static int in_set(unsigned char c, uint64_t lo, uint64_t hi)
{
    return c < 64 ? (int)((lo >> c) & 1) : c < 128 ? (int)((hi >> (c - 64)) & 1) : 0;
}

/* tchar (RFC 9110 5.6.2): ALPHA DIGIT and !#$%&'*+-.^_`|~ */
#define TCHAR_LO                                                                                   \
    (BIT('!') | BIT('#') | BIT('$') | BIT('%') | BIT('&') | BIT('\'') | BIT('*') | BIT('+') |      \
     BIT('-') | BIT('.') | SPAN('0', '9'))
#define TCHAR_HI                                                                                   \
    (SPAN('A', 'Z') | BIT('^') | BIT('_') | BIT('`') | SPAN('a', 'z') | BIT('|') | BIT('~'))

static int is_tchar(unsigned char c)
{
    return in_set(c, TCHAR_LO, TCHAR_HI);
}

/* The characters of an authority (host[:port], IP literals) without userinfo:
 * ALPHA DIGIT and -._~!$&'()*+,;=%:[] */
#define AUTH_LO                                                                                    \
    (BIT('!') | BIT('$') | SPAN('%', '.') | SPAN('0', '9') | BIT(':') | BIT(';') | BIT('='))
#define AUTH_HI (SPAN('A', 'Z') | BIT('[') | BIT(']') | BIT('_') | SPAN('a', 'z') | BIT('~'))

static int is_authority_char(unsigned char c)
{
    return in_set(c, AUTH_LO, AUTH_HI);
}

static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

int sk__http_slice_eq(sk__http_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

int sk__http_slice_ieq(sk__http_slice s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

const sk__http_header *sk__http_find_header(const sk__http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (sk__http_slice_ieq(req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

static sk__http_slice slice(const unsigned char *p, size_t n)
{
    sk__http_slice s = {(const char *)p, n};
    return s;
}

/* Find the end of the line starting at b[i]: CRLF, or a bare LF (RFC 9112
 * 2.2 lets a recipient accept it, as nginx, busybox and Python do; it ends
 * the line just as CRLF would, so "X: a\nTransfer-Encoding: chunked" is two
 * field lines everywhere). A CR not followed by LF stays an error. The line
 * terminator must start before `crb` and its LF lie before `lfb`, else the
 * line is too long: returns `over` (as soon as a byte at or past crb is not
 * the terminator). Returns 1 with *eol = the position of the CR (or of the
 * bare LF) and *next = the byte after the LF, 0 if more bytes are needed,
 * -400 for a bare CR. */
static int find_eol(const unsigned char *b, size_t len, size_t i, size_t crb, size_t lfb, int over,
                    size_t *eol, size_t *next)
{
    size_t end = len < crb ? len : crb;
    /* The first CR or LF in [i, end): the LF, then a CR before it. */
    const unsigned char *lf = i < end ? memchr(b + i, '\n', end - i) : NULL;
    size_t stop = lf ? (size_t)(lf - b) : end;
    const unsigned char *cr = i < stop ? memchr(b + i, '\r', stop - i) : NULL;
    i = cr ? (size_t)(cr - b) : stop;
    if (i == end)
        return end == crb ? over : 0;
    if (b[i] == '\n') {
        *eol = i;
        *next = i + 1;
        return 1;
    }
    if (i + 1 >= lfb)
        return over;
    if (i + 1 >= len)
        return 0;
    if (b[i + 1] != '\n')
        return E400;
    *eol = i;
    *next = i + 2;
    return 1;
}

/* An empty line at b[i]: CRLF or a bare LF. Returns its length (1 or 2), 0
 * if more bytes are needed (a CR at the end), -400 for a bare CR. */
static int empty_line(const unsigned char *b, size_t len, size_t i)
{
    if (b[i] == '\n')
        return 1;
    if (i + 1 >= len)
        return 0;
    return b[i + 1] == '\n' ? 2 : E400;
}

/* Split an origin-form path ("/p?q") into path and query. */
static void split_query(sk__http_request *r, const unsigned char *p, size_t n)
{
    const unsigned char *q = memchr(p, '?', n);
    if (q == NULL) {
        r->path = slice(p, n);
        r->query = slice(NULL, 0);
    } else {
        r->path = slice(p, (size_t)(q - p));
        r->query = slice(q + 1, n - (size_t)(q - p) - 1);
    }
}

static int prefix_ieq(const unsigned char *p, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    return n >= k && sk__http_slice_ieq(slice(p, k), lit);
}

/* Interpret the request-target t[0..n) (already known to be visible ASCII). */
static int parse_target(sk__http_request *r, const unsigned char *t, size_t n)
{
    static const char root[] = "/";
    size_t skip;
    if (t[0] == '/') {
        split_query(r, t, n);
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (!sk__http_slice_eq(r->method, "OPTIONS"))
            return E400;
        r->path = slice(t, 1);
        return 0;
    }
    if (prefix_ieq(t, n, "http://"))
        skip = 7;
    else if (prefix_ieq(t, n, "https://"))
        skip = 8;
    else
        return E400; /* authority-form, relative references, other schemes */
    size_t a = skip, e = skip;
    while (e < n && t[e] != '/' && t[e] != '?') {
        if (!is_authority_char(t[e]))
            return E400; /* '@' (userinfo) among others */
        e++;
    }
    if (e == a)
        return E400;
    r->host = slice(t + a, e - a);
    if (e < n && t[e] == '/') {
        split_query(r, t + e, n - e);
    } else {
        r->path = slice((const unsigned char *)root, 1);
        r->query = e < n ? slice(t + e + 1, n - e - 1) : slice(NULL, 0);
    }
    return 0;
}

/* Parse the complete request line b[s..eol). */
static int parse_request_line(sk__http_request *r, const unsigned char *b, size_t s, size_t eol)
{
    size_t i = s;
    while (i < eol && is_tchar(b[i]))
        i++;
    if (i == s || i == eol || b[i] != ' ')
        return E400;
    r->method = slice(b + s, i - s);
    size_t t = ++i;
    while (i < eol && b[i] >= 0x21 && b[i] <= 0x7e && b[i] != '#')
        i++;
    if (i == t || i == eol || b[i] != ' ')
        return E400;
    r->target = slice(b + t, i - t);
    i++;
    const unsigned char *v = b + i;
    size_t vn = eol - i;
    if (vn >= 6 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' && v[5] != '1')
        return E505;
    if (vn != 8 || memcmp(v, "HTTP/1.", 7) != 0 || v[7] < '0' || v[7] > '9')
        return E400;
    r->minor = v[7] == '0' ? 0 : 1;
    return parse_target(r, b + t, i - 1 - t);
}

/* Parse the complete field line b[s..eol) into h. */
static int parse_field_line(sk__http_header *h, const unsigned char *b, size_t s, size_t eol)
{
    size_t i = s;
    while (i < eol && is_tchar(b[i]))
        i++;
    if (i == s || i == eol || b[i] != ':')
        return E400; /* empty name, whitespace before the colon, no colon */
    h->name = slice(b + s, i - s);
    i++;
    while (i < eol && is_ows(b[i]))
        i++;
    size_t e = eol;
    while (e > i && is_ows(b[e - 1]))
        e--;
    for (size_t k = i; k < e; k++)
        if ((b[k] < 0x20 && b[k] != '\t') || b[k] == 0x7f)
            return E400;
    h->value = slice(b + i, e - i);
    return 0;
}

/* Call fn on each element of the comma list v (elements trimmed of OWS, maybe
 * empty). Stops at and returns the first nonzero result of fn. */
static int each_element(sk__http_slice v, int (*fn)(sk__http_slice, void *), void *arg)
{
    size_t i = 0;
    for (;;) {
        size_t s = i;
        while (i < v.n && v.p[i] != ',')
            i++;
        size_t e = i;
        while (s < e && is_ows((unsigned char)v.p[s]))
            s++;
        while (e > s && is_ows((unsigned char)v.p[e - 1]))
            e--;
        int rc = fn(slice((const unsigned char *)v.p + s, e - s), arg);
        if (rc != 0)
            return rc;
        if (i >= v.n)
            return 0;
        i++;
    }
}

typedef struct te_state {
    size_t chunked; /* how many "chunked" */
    size_t unknown; /* how many other codings */
    int last_chunked;
} te_state;

static int te_element(sk__http_slice e, void *arg)
{
    te_state *st = arg;
    if (e.n == 0)
        return E400;
    st->last_chunked = sk__http_slice_ieq(e, "chunked");
    if (st->last_chunked)
        st->chunked++;
    else
        st->unknown++;
    return 0;
}

typedef struct conn_state {
    int close, keep_alive;
} conn_state;

static int conn_element(sk__http_slice e, void *arg)
{
    conn_state *st = arg;
    if (sk__http_slice_ieq(e, "close"))
        st->close = 1;
    else if (sk__http_slice_ieq(e, "keep-alive"))
        st->keep_alive = 1;
    return 0;
}

static int parse_content_length(sk__http_slice v, uint64_t *out)
{
    uint64_t x = 0;
    if (v.n == 0)
        return E400;
    for (size_t i = 0; i < v.n; i++) {
        unsigned d = (unsigned char)v.p[i] - '0';
        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return E400;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* A field name of the same length as lit (lower case) equal to it, ignoring
 * case: sk__http_slice_ieq without the strlen. */
static int name_is(sk__http_slice n, const char *lit)
{
    for (size_t i = 0; i < n.n; i++)
        if (lower((unsigned char)n.p[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

/* Store v in *dst, refusing a second occurrence of the field. */
static int once(sk__http_slice *dst, sk__http_slice v)
{
    if (dst->p != NULL)
        return E400;
    *dst = v;
    return 0;
}

/* Interpret the field lines of a complete head. */
static int interpret(sk__http_request *r, int absolute_form)
{
    te_state te = {0, 0, 0};
    conn_state conn = {0, 0};
    int has_te = 0, rc = 0;
    size_t hosts = 0;
    for (size_t i = 0; i < r->nheaders && rc == 0; i++) {
        sk__http_slice n = r->headers[i].name, v = r->headers[i].value;
        /* By length first: most fields are none of these, and are passed
         * over without comparing a byte. */
        switch (n.n) {
        case 14:
            if (name_is(n, "content-length")) {
                if (r->has_content_length)
                    return E400;
                r->has_content_length = 1;
                rc = parse_content_length(v, &r->content_length);
            }
            break;
        case 17:
            if (name_is(n, "transfer-encoding")) {
                has_te = 1;
                rc = each_element(v, te_element, &te);
            } else if (name_is(n, "if-modified-since")) {
                rc = once(&r->if_modified_since, v);
            }
            break;
        case 4:
            if (name_is(n, "host")) {
                if (++hosts > 1)
                    return E400;
                for (size_t k = 0; k < v.n; k++)
                    if (!is_authority_char((unsigned char)v.p[k]))
                        return E400;
                if (!absolute_form)
                    r->host = v;
            }
            break;
        case 10:
            if (name_is(n, "connection"))
                rc = each_element(v, conn_element, &conn);
            break;
        case 13:
            if (name_is(n, "if-none-match"))
                rc = once(&r->if_none_match, v);
            else if (name_is(n, "authorization"))
                rc = once(&r->authorization, v);
            break;
        case 5:
            if (name_is(n, "range"))
                rc = once(&r->range, v);
            break;
        case 8:
            if (name_is(n, "if-range"))
                rc = once(&r->if_range, v);
            break;
        }
    }
    if (rc != 0)
        return rc;
    if (r->minor == 1 && hosts == 0)
        return E400;
    if (has_te) {
        if (r->has_content_length || r->minor == 0 || te.chunked != 1 || !te.last_chunked)
            return E400;
        if (te.unknown > 0)
            return E501;
        r->chunked = 1;
    }
    r->keep_alive = conn.close ? 0 : (r->minor == 1 || conn.keep_alive);
    return 0;
}

static size_t clamp(size_t v, size_t def)
{
    if (v == 0)
        return def;
    return v > SK_HTTP_LIMIT_MAX ? SK_HTTP_LIMIT_MAX : v;
}

int sk__http_parse_request(const char *buf, size_t len, sk__http_request *req,
                           const sk__http_limits *lim)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t max_line = clamp(lim ? lim->max_line : 0, SK_HTTP_MAX_LINE_DEFAULT);
    size_t max_hbytes = clamp(lim ? lim->max_headers_bytes : 0, SK_HTTP_MAX_HEADERS_BYTES_DEFAULT);
    size_t max_h = lim && lim->max_headers ? lim->max_headers : SK_HTTP_MAX_HEADERS_DEFAULT;
    if (max_h > req->nheaders)
        max_h = req->nheaders;

    sk__http_request r;
    memset(&r, 0, sizeof r);
    r.headers = req->headers;

    /* Empty lines before the request line (RFC 9112 2.2). */
    size_t i = 0;
    while (i < len && (b[i] == '\r' || b[i] == '\n')) {
        int n = empty_line(b, len, i);
        if (n <= 0)
            return n;
        i += (size_t)n;
        if (i > max_line)
            return E400;
    }
    if (i >= len)
        return 0;

    size_t eol, next;
    /* max_line bytes, then the CR (or LF) may come; the terminator is not counted. */
    int rc = find_eol(b, len, i, i + max_line + 1, SIZE_MAX, E414, &eol, &next);
    if (rc <= 0)
        return rc;
    rc = parse_request_line(&r, b, i, eol);
    if (rc != 0)
        return rc;
    i = next;

    size_t hbound = i + max_hbytes;
    for (;;) {
        /* The head is not over yet, so a byte at hbound, seen or not, is one too many. */
        if (i >= hbound)
            return E431;
        if (i >= len)
            return 0;
        if (b[i] == '\r' || b[i] == '\n') {
            if (b[i] == '\r' && i + 1 >= hbound)
                return E431;
            int n = empty_line(b, len, i);
            if (n <= 0)
                return n;
            i += (size_t)n;
            break;
        }
        if (is_ows(b[i]))
            return E400; /* obs-fold, or whitespace after the request line */
        if (r.nheaders >= max_h)
            return E431;
        rc = find_eol(b, len, i, hbound, hbound, E431, &eol, &next);
        if (rc <= 0)
            return rc;
        rc = parse_field_line(&r.headers[r.nheaders], b, i, eol);
        if (rc != 0)
            return rc;
        r.nheaders++;
        i = next;
    }

    rc = interpret(&r, r.host.p != NULL);
    if (rc != 0)
        return rc;
    *req = r;
    return (int)i;
}
