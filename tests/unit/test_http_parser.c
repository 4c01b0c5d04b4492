/* test_http_parser.c - unit tests for src/http/parser.c and src/http/httputil.c:
 * the HTTP/1.x request-head parser and its allocation-free helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/http/parser.h"

#define CAP 64
#define OK 1   /* complete */
#define NEED 0 /* incomplete, even with all the bytes of the row */
#define V11 .minor = 1, .ka = 1
#define RAW(s) .raw = (s), .rawlen = sizeof(s) - 1
#define HOST "Host: a\r\n"

/* Small limits for the rows that test them. */
static const sk__http_limits small = {.max_line = 32, .max_headers_bytes = 64, .max_headers = 3};

typedef struct row {
    const char *name;
    const char *raw;
    size_t rawlen;
    int want;                   /* OK, NEED or -status */
    size_t consumed;            /* OK: bytes taken, 0 = all of raw */
    const sk__http_limits *lim; /* NULL: defaults */
    size_t cap;                 /* header array capacity, 0 = CAP */
    /* OK rows: every field below is checked (NULL string = absent) */
    const char *method, *path, *query, *host;
    int minor, ka, has_cl, chunked;
    uint64_t cl;
    size_t nh;
    const char *ims, *inm, *range, *auth, *ifr;
    const char *hname, *hval; /* optional: one more field to look up */
} row;

/* clang-format off */
static const row rows[] = {
    /* ---- valid requests */
    {"simple GET", RAW("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "example.com", V11, .nh = 1},
    {"HTTP/1.0 without Host", RAW("GET /index.html HTTP/1.0\r\n\r\n"), OK,
     .method = "GET", .path = "/index.html"},
    {"1.0 keep-alive", RAW("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), OK,
     .method = "GET", .path = "/", .ka = 1, .nh = 1},
    {"1.0 keep-alive, close", RAW("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), OK,
     .method = "GET", .path = "/", .nh = 1},
    {"1.1 close", RAW("GET / HTTP/1.1\r\n" HOST "Connection: close\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "a", .minor = 1, .nh = 2},
    {"1.1 close in a list", RAW("GET / HTTP/1.1\r\n" HOST "Connection: Upgrade,  CLOSE \r\n\r\n"),
     OK, .method = "GET", .path = "/", .host = "a", .minor = 1, .nh = 2},
    {"1.1 close on a 2nd line", RAW("GET / HTTP/1.1\r\n" HOST "Connection: foo\r\nConnection: close\r\n\r\n"),
     OK, .method = "GET", .path = "/", .host = "a", .minor = 1, .nh = 3},
    {"1.1 Connection: keep-alive", RAW("GET / HTTP/1.1\r\n" HOST "Connection: keep-alive\r\n\r\n"),
     OK, .method = "GET", .path = "/", .host = "a", V11, .nh = 2},
    {"1.1 Connection empty", RAW("GET / HTTP/1.1\r\n" HOST "Connection:\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "a", V11, .nh = 2},
    {"leading empty lines", RAW("\r\n\r\nGET / HTTP/1.1\r\n" HOST "\r\n"), OK,
     .method = "GET", .path = "/", .host = "a", V11, .nh = 1},
    {"16 leading empty lines (32 bytes)",
     RAW("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n"),
     OK, .lim = &small, .method = "GET", .path = "/"},
    {"query", RAW("GET /a/b?x=1&y=2 HTTP/1.1\r\n" HOST "\r\n"), OK,
     .method = "GET", .path = "/a/b", .query = "x=1&y=2", .host = "a", V11, .nh = 1},
    {"empty query", RAW("GET /a? HTTP/1.1\r\n" HOST "\r\n"), OK,
     .method = "GET", .path = "/a", .query = "", .host = "a", V11, .nh = 1},
    {"'?' inside the query", RAW("GET /a?b?c HTTP/1.1\r\n" HOST "\r\n"), OK,
     .method = "GET", .path = "/a", .query = "b?c", .host = "a", V11, .nh = 1},
    {"OPTIONS *", RAW("OPTIONS * HTTP/1.1\r\n" HOST "\r\n"), OK,
     .method = "OPTIONS", .path = "*", .host = "a", V11, .nh = 1},
    {"absolute-form", RAW("GET http://example.com/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n"), OK,
     .method = "GET", .path = "/p", .query = "q=1", .host = "example.com", V11, .nh = 1},
    {"absolute-form, no path", RAW("GET HTTP://Example.COM:8080 HTTP/1.1\r\nHost: x\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "Example.COM:8080", V11, .nh = 1},
    {"absolute-form https, query only", RAW("GET https://h?x HTTP/1.1\r\nHost: h\r\n\r\n"), OK,
     .method = "GET", .path = "/", .query = "x", .host = "h", V11, .nh = 1},
    {"absolute-form IPv6", RAW("GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "[::1]:80", V11, .nh = 1},
    {"Content-Length with body", RAW("POST /f HTTP/1.1\r\n" HOST "Content-Length: 5\r\n\r\nhello"),
     OK, .consumed = 48, .method = "POST", .path = "/f", .host = "a", V11, .has_cl = 1, .cl = 5,
     .nh = 2},
    {"Content-Length: 0", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n"), OK,
     .method = "POST", .path = "/", .host = "a", V11, .has_cl = 1, .nh = 2},
    {"Content-Length with OWS", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: \t 42 \t\r\n\r\n"),
     OK, .method = "POST", .path = "/", .host = "a", V11, .has_cl = 1, .cl = 42, .nh = 2},
    {"Content-Length: 007", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 007\r\n\r\n"), OK,
     .method = "POST", .path = "/", .host = "a", V11, .has_cl = 1, .cl = 7, .nh = 2},
    {"Content-Length: 2^64-1",
     RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 18446744073709551615\r\n\r\n"), OK,
     .method = "POST", .path = "/", .host = "a", V11, .has_cl = 1, .cl = UINT64_MAX, .nh = 2},
    {"TE: chunked", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"), OK,
     .method = "POST", .path = "/", .host = "a", V11, .chunked = 1, .nh = 2},
    {"TE: Chunked (case)", RAW("POST / HTTP/1.1\r\n" HOST "transfer-encoding:  Chunked \r\n\r\n"),
     OK, .method = "POST", .path = "/", .host = "a", V11, .chunked = 1, .nh = 2},
    {"obs-text in a value", RAW("GET / HTTP/1.1\r\n" HOST "X-Name: caf\xc3\xa9\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "a", V11, .nh = 2, .hname = "x-name",
     .hval = "caf\xc3\xa9"},
    {"names are case-insensitive", RAW("PUT /x HTTP/1.1\r\nhOsT: x\r\ncontent-LENGTH: 3\r\n\r\n"),
     OK, .method = "PUT", .path = "/x", .host = "x", V11, .has_cl = 1, .cl = 3, .nh = 2},
    {"empty value", RAW("GET / HTTP/1.1\r\n" HOST "X-Empty:\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "a", V11, .nh = 2, .hname = "X-EMPTY", .hval = ""},
    {"value trimmed", RAW("GET / HTTP/1.1\r\n" HOST "X:  a b \t\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "a", V11, .nh = 2, .hname = "x", .hval = "a b"},
    {"HTAB inside a value", RAW("GET / HTTP/1.1\r\n" HOST "X:\ta\tb\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "a", V11, .nh = 2, .hname = "x", .hval = "a\tb"},
    /* Bare LF ends a line (RFC 9112 2.2), as in nginx, busybox httpd and Python;
     * these five were -400 before. */
    {"bare LF ends a field line", RAW("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "a", V11, .nh = 2, .hname = "x", .hval = "b"},
    {"bare LF ends the head", RAW("GET / HTTP/1.1\r\n" HOST "\n"), OK,
     .method = "GET", .path = "/", .host = "a", V11, .nh = 1},
    {"bare LF ends the request line", RAW("GET / HTTP/1.1\nHost: a\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "a", V11, .nh = 1},
    {"leading bare LF", RAW("\nGET / HTTP/1.0\r\n\r\n"), OK, .method = "GET", .path = "/"},
    {"bare LF everywhere", RAW("\n\r\n\nGET /x?y HTTP/1.0\nA: 1\nB:2 \n\n"), OK,
     .method = "GET", .path = "/x", .query = "y", .nh = 2, .hname = "b", .hval = "2"},
    /* No field hides in another: a bare LF splits the line, so this is a
     * chunked request with three field lines, never a value "a\nTransfer-..." */
    {"bare LF cannot hide Transfer-Encoding",
     RAW("POST / HTTP/1.1\r\n" HOST "X: a\nTransfer-Encoding: chunked\r\n\r\n"), OK,
     .method = "POST", .path = "/", .host = "a", V11, .chunked = 1, .nh = 3, .hname = "x",
     .hval = "a"},
    {"bare LF before a second Content-Length",
     RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 1\nContent-Length: 2\r\n\r\n"), -400},
    {"bare LF: TE next to CL", RAW("POST / HTTP/1.1\n" HOST "Content-Length: 5\nTransfer-Encoding: chunked\n\n"), -400},
    {"bare LF then obs-fold", RAW("GET / HTTP/1.1\n" HOST "X: a\n b\n\n"), -400},
    {"HTTP/1.2 is 1.1", RAW("GET / HTTP/1.2\r\n" HOST "\r\n"), OK,
     .method = "GET", .path = "/", .host = "a", V11, .nh = 1},
    {"unknown method", RAW("PURGE /x HTTP/1.1\r\n" HOST "\r\n"), OK,
     .method = "PURGE", .path = "/x", .host = "a", V11, .nh = 1},
    {"lowercase method is a token", RAW("get / HTTP/1.0\r\n\r\n"), OK,
     .method = "get", .path = "/"},
    {"conditional fields",
     RAW("GET / HTTP/1.1\r\n" HOST "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
         "If-None-Match: \"xyz\", W/\"abc\"\r\nRange: bytes=0-99\r\nAuthorization: Basic dTpw\r\n"
         "If-Range: \"xyz\"\r\n\r\n"),
     OK, .method = "GET", .path = "/", .host = "a", V11, .nh = 6,
     .ims = "Sun, 06 Nov 1994 08:49:37 GMT", .inm = "\"xyz\", W/\"abc\"", .range = "bytes=0-99",
     .auth = "Basic dTpw", .ifr = "\"xyz\""},
    {"target punctuation", RAW("GET /a%20b;c=d,e!$&'()*+=:@~ HTTP/1.1\r\n" HOST "\r\n"), OK,
     .method = "GET", .path = "/a%20b;c=d,e!$&'()*+=:@~", .host = "a", V11, .nh = 1},
    {"empty Host", RAW("GET / HTTP/1.1\r\nHost:\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "", V11, .nh = 1},
    {"Host with IPv6 and port", RAW("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), OK,
     .method = "GET", .path = "/", .host = "[::1]:8080", V11, .nh = 1},
    {"request line of max_line bytes", RAW("GET /aaaaaaaaaaaaaaaaaa HTTP/1.0\r\n\r\n"), OK,
     .lim = &small, .method = "GET", .path = "/aaaaaaaaaaaaaaaaaa"},
    {"max_headers field lines", RAW("GET / HTTP/1.1\r\n" HOST "A: 1\r\nB: 2\r\n\r\n"), OK,
     .lim = &small, .method = "GET", .path = "/", .host = "a", V11, .nh = 3},
    {"header section of max_headers_bytes",
     RAW("GET / HTTP/1.1\r\n" HOST "X: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n\r\n"), OK,
     .lim = &small, .method = "GET", .path = "/", .host = "a", V11, .nh = 2},
    {"fields up to the array capacity", RAW("GET / HTTP/1.1\r\n" HOST "A: 1\r\n\r\n"), OK,
     .cap = 2, .method = "GET", .path = "/", .host = "a", V11, .nh = 2},

    /* ---- incomplete */
    {"no empty line yet", RAW("GET / HTTP/1.1\r\n" HOST), NEED},
    {"only empty lines", RAW("\r\n\r\n"), NEED},
    {"line of max_line bytes, no CRLF yet", RAW("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaa"), NEED,
     .lim = &small},

    /* ---- request smuggling: framing */
    {"CL + TE", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), -400},
    {"TE + CL", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), -400},
    {"duplicate CL, equal", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length: 5\r\n\r\n"), -400},
    {"duplicate CL, different", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\ncontent-length: 6\r\n\r\n"), -400},
    {"CL +5", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: +5\r\n\r\n"), -400},
    {"CL -1", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: -1\r\n\r\n"), -400},
    {"CL inner space", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5 5\r\n\r\n"), -400},
    {"CL list", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5,5\r\n\r\n"), -400},
    {"CL list with OWS", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 5, 5\r\n\r\n"), -400},
    {"CL empty", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: \r\n\r\n"), -400},
    {"CL overflow", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 18446744073709551616\r\n\r\n"), -400},
    {"CL hex", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 0x10\r\n\r\n"), -400},
    {"CL decimal point", RAW("POST / HTTP/1.1\r\n" HOST "Content-Length: 1.0\r\n\r\n"), -400},
    {"TE: gzip", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip\r\n\r\n"), -400},
    {"TE: gzip, chunked", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip, chunked\r\n\r\n"), -501},
    {"TE: gzip / chunked on 2 lines", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), -501},
    {"TE: chunked, chunked", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, chunked\r\n\r\n"), -400},
    {"TE: chunked twice", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), -400},
    {"TE: chunked, gzip", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, gzip\r\n\r\n"), -400},
    {"TE: chunked,", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked,\r\n\r\n"), -400},
    {"TE empty", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\r\n\r\n"), -400},
    {"TE: identity", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: identity\r\n\r\n"), -400},
    {"TE: chunked;q=1", RAW("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked;q=1\r\n\r\n"), -400},
    {"TE in HTTP/1.0", RAW("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400},

    /* ---- field lines */
    {"space before colon", RAW("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -400},
    {"HTAB before colon", RAW("GET / HTTP/1.1\r\n" HOST "Content-Length\t: 5\r\n\r\n"), -400},
    {"obs-fold", RAW("GET / HTTP/1.1\r\n" HOST "X: a\r\n b\r\n\r\n"), -400},
    {"obs-fold with HTAB", RAW("GET / HTTP/1.1\r\n" HOST "X: a\r\n\tb\r\n\r\n"), -400},
    {"whitespace after the request line", RAW("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), -400},
    {"bare CR in a value", RAW("GET / HTTP/1.1\r\n" HOST "X: a\rb\r\n\r\n"), -400},
    {"bare CR before CRLF", RAW("GET / HTTP/1.1\r\n" HOST "X: a\r\r\n\r\n"), -400},
    {"bare CR before a bare LF", RAW("GET / HTTP/1.1\n" "Host: a\r\r\n\n"), -400},
    {"bare CR after bare-LF lines", RAW("GET / HTTP/1.1\nHost: a\n\r"), NEED},
    {"bare CR as the empty line after LF", RAW("GET / HTTP/1.1\nHost: a\n\rX"), -400},
    {"bare CR among leading empty lines", RAW("\n\rGET / HTTP/1.1\n" HOST "\n"), -400},
    {"bare CR in the request line", RAW("GET /\r HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"bare CR as the empty line", RAW("GET / HTTP/1.1\r\n" HOST "\rX"), -400},
    {"NUL in a value", RAW("GET / HTTP/1.1\r\n" HOST "X: a\0b\r\n\r\n"), -400},
    {"NUL in a name", RAW("GET / HTTP/1.1\r\n" HOST "X\0Y: b\r\n\r\n"), -400},
    {"DEL in a value", RAW("GET / HTTP/1.1\r\n" HOST "X: a\x7f\r\n\r\n"), -400},
    {"control 0x01 in a value", RAW("GET / HTTP/1.1\r\n" HOST "X: \x01\r\n\r\n"), -400},
    {"ESC in a value", RAW("GET / HTTP/1.1\r\n" HOST "X: \x1b[31m\r\n\r\n"), -400},
    {"no colon", RAW("GET / HTTP/1.1\r\nHost a\r\n\r\n"), -400},
    {"empty name", RAW("GET / HTTP/1.1\r\n" HOST ": a\r\n\r\n"), -400},
    {"name not a token", RAW("GET / HTTP/1.1\r\n" HOST "X(y): a\r\n\r\n"), -400},
    {"name with '/'", RAW("GET / HTTP/1.1\r\n" HOST "X/y: a\r\n\r\n"), -400},
    {"duplicate Authorization", RAW("GET / HTTP/1.1\r\n" HOST "Authorization: a\r\nAuthorization: b\r\n\r\n"), -400},
    {"duplicate If-Range", RAW("GET / HTTP/1.1\r\n" HOST "If-Range: \"a\"\r\nif-range: \"b\"\r\n\r\n"), -400},
    {"duplicate Range", RAW("GET / HTTP/1.1\r\n" HOST "Range: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n"), -400},
    {"duplicate If-None-Match", RAW("GET / HTTP/1.1\r\n" HOST "If-None-Match: a\r\nIf-None-Match: b\r\n\r\n"), -400},
    {"duplicate If-Modified-Since", RAW("GET / HTTP/1.1\r\n" HOST "If-Modified-Since: a\r\nIf-Modified-Since: b\r\n\r\n"), -400},

    /* ---- Host */
    {"HTTP/1.1 without Host", RAW("GET / HTTP/1.1\r\n\r\n"), -400},
    {"HTTP/1.1 absolute-form without Host", RAW("GET http://a/ HTTP/1.1\r\n\r\n"), -400},
    {"two Host fields", RAW("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), -400},
    {"Host with a space", RAW("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), -400},
    {"Host with '/'", RAW("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), -400},
    {"Host with userinfo", RAW("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), -400},

    /* ---- request line */
    {"two SP after the method", RAW("GET  / HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"two SP before the version", RAW("GET /  HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"HTAB separator", RAW("GET\t/ HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"SP after the version", RAW("GET / HTTP/1.1 \r\n" HOST "\r\n"), -400},
    {"no version", RAW("GET /\r\n" HOST "\r\n"), -400},
    {"no target", RAW("GET HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"empty method", RAW(" / HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"method not a token", RAW("GE\"T / HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"control in the target", RAW("GET /a\x01 HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"DEL in the target", RAW("GET /a\x7f HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"byte 0x80 in the target", RAW("GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"NUL in the target", RAW("GET /a\0b HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"'#' in the target", RAW("GET /a#frag HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"relative target", RAW("GET a/b HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"authority-form", RAW("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), -400},
    {"'*' with GET", RAW("GET * HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"absolute-form with userinfo", RAW("GET http://u:p@a/ HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"absolute-form, empty host", RAW("GET http:///p HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"absolute-form, other scheme", RAW("GET ftp://a/p HTTP/1.1\r\n" HOST "\r\n"), -400},
    {"HTTP/2.0", RAW("GET / HTTP/2.0\r\n" HOST "\r\n"), -505},
    {"HTTP/0.9", RAW("GET / HTTP/0.9\r\n\r\n"), -505},
    {"HTTP/3", RAW("GET / HTTP/3\r\n" HOST "\r\n"), -505},
    {"lowercase http/1.1", RAW("GET / http/1.1\r\n" HOST "\r\n"), -400},
    {"HTTP/1.x", RAW("GET / HTTP/1.x\r\n" HOST "\r\n"), -400},
    {"HTTP/1", RAW("GET / HTTP/1\r\n" HOST "\r\n"), -400},
    {"HTTP/1.10", RAW("GET / HTTP/1.10\r\n" HOST "\r\n"), -400},
    {"HTTP/11.0", RAW("GET / HTTP/11.0\r\n" HOST "\r\n"), -400},
    {"leading CR CR LF", RAW("\r\r\nGET / HTTP/1.0\r\n\r\n"), -400},
    {"17 leading empty lines (34 bytes)",
     RAW("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n"),
     -400, .lim = &small},

    /* ---- limits */
    {"request line of max_line + 1 bytes", RAW("GET /aaaaaaaaaaaaaaaaaaa HTTP/1.0\r\n\r\n"), -414,
     .lim = &small},
    {"long request line, no CRLF yet", RAW("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), -414,
     .lim = &small},
    {"max_line + 1 bytes, no CRLF yet", RAW("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaa"), -414, .lim = &small},
    {"too many field lines", RAW("GET / HTTP/1.1\r\n" HOST "A: 1\r\nB: 2\r\nC: 3\r\n\r\n"), -431,
     .lim = &small},
    {"too many field lines, incomplete", RAW("GET / HTTP/1.1\r\n" HOST "A: 1\r\nB: 2\r\nC"), -431,
     .lim = &small},
    {"more fields than the array", RAW("GET / HTTP/1.1\r\n" HOST "A: 1\r\nB: 2\r\n\r\n"), -431,
     .cap = 2},
    {"header section of max_headers_bytes + 1",
     RAW("GET / HTTP/1.1\r\n" HOST "X: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n\r\n"), -431,
     .lim = &small},
    {"field lines fill max_headers_bytes",
     RAW("GET / HTTP/1.1\r\n" HOST "X: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n"), -431,
     .lim = &small},
    {"field lines fill max_headers_bytes, then a bare LF",
     RAW("GET / HTTP/1.1\r\n" HOST "X: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n\n"), -431,
     .lim = &small},
    {"long header section, incomplete",
     RAW("GET / HTTP/1.1\r\n" HOST "X: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
     -431, .lim = &small},
};
/* clang-format on */

#define NROWS (sizeof rows / sizeof rows[0])

static size_t row_consumed(const row *r)
{
    return r->consumed ? r->consumed : r->rawlen;
}

static int parse(const row *r, const char *buf, size_t len, sk__http_request *req,
                 sk__http_header *hdrs)
{
    memset(req, 0, sizeof *req);
    req->headers = hdrs;
    req->nheaders = r->cap ? r->cap : CAP;
    return sk__http_parse_request(buf, len, req, r->lim);
}

static void check_slice(const row *r, const char *what, sk__http_slice s, const char *want)
{
    if (want == NULL) {
        if (s.p != NULL || s.n != 0)
            fail_msg("%s: %s: want absent, got \"%.*s\"", r->name, what, (int)s.n, s.p);
        return;
    }
    if (s.p == NULL || s.n != strlen(want) || memcmp(s.p, want, s.n) != 0)
        fail_msg("%s: %s: want \"%s\", got \"%.*s\"%s", r->name, what, want, (int)s.n,
                 s.p ? s.p : "", s.p ? "" : " (absent)");
}

static void check_inside(const row *r, const char *buf, size_t len, sk__http_slice s)
{
    if (s.p == NULL)
        return;
    if (s.n == 1 && s.p[0] == '/' && (s.p < buf || s.p >= buf + len))
        return; /* the static "/" of an absolute-form target without a path */
    if (s.p < buf || s.p + s.n > buf + len)
        fail_msg("%s: slice outside the buffer", r->name);
}

static void check_row(const row *r, const char *buf, int rc, const sk__http_request *q)
{
    if (r->want != OK) {
        if (rc != r->want)
            fail_msg("%s: want %d, got %d", r->name, r->want, rc);
        assert_int_equal(q->nheaders, r->cap ? r->cap : CAP); /* untouched */
        return;
    }
    if (rc != (int)row_consumed(r))
        fail_msg("%s: want complete at %zu, got %d", r->name, row_consumed(r), rc);
    check_slice(r, "method", q->method, r->method);
    check_slice(r, "path", q->path, r->path);
    check_slice(r, "query", q->query, r->query);
    check_slice(r, "host", q->host, r->host);
    check_slice(r, "if_modified_since", q->if_modified_since, r->ims);
    check_slice(r, "if_none_match", q->if_none_match, r->inm);
    check_slice(r, "range", q->range, r->range);
    check_slice(r, "authorization", q->authorization, r->auth);
    check_slice(r, "if_range", q->if_range, r->ifr);
    if (q->minor != r->minor || q->keep_alive != r->ka || q->has_content_length != r->has_cl ||
        q->content_length != r->cl || q->chunked != r->chunked || q->nheaders != r->nh)
        fail_msg("%s: minor %d/%d keep_alive %d/%d has_cl %d/%d cl %llu/%llu chunked %d/%d "
                 "nheaders %zu/%zu (got/want)",
                 r->name, q->minor, r->minor, q->keep_alive, r->ka, q->has_content_length,
                 r->has_cl, (unsigned long long)q->content_length, (unsigned long long)r->cl,
                 q->chunked, r->chunked, q->nheaders, r->nh);
    if (r->hname) {
        const sk__http_header *h = sk__http_find_header(q, r->hname);
        if (h == NULL)
            fail_msg("%s: no field %s", r->name, r->hname);
        check_slice(r, r->hname, h->value, r->hval);
    }
    size_t len = r->rawlen;
    check_inside(r, buf, len, q->method);
    check_inside(r, buf, len, q->target);
    check_inside(r, buf, len, q->path);
    check_inside(r, buf, len, q->query);
    check_inside(r, buf, len, q->host);
    for (size_t i = 0; i < q->nheaders; i++) {
        check_inside(r, buf, len, q->headers[i].name);
        check_inside(r, buf, len, q->headers[i].value);
    }
}

/* ---- the table, each request whole */

static void test_table(void **state)
{
    (void)state;
    size_t ok = 0, bad = 0;
    for (size_t i = 0; i < NROWS; i++) {
        const row *r = &rows[i];
        sk__http_header hdrs[CAP];
        sk__http_request q;
        char *buf = malloc(r->rawlen ? r->rawlen : 1); /* exact size: ASan sees over-reads */
        assert_non_null(buf);
        memcpy(buf, r->raw, r->rawlen);
        int rc = parse(r, buf, r->rawlen, &q, hdrs);
        check_row(r, buf, rc, &q);
        ok += r->want == OK;
        bad += r->want < 0;
        free(buf);
    }
    print_message("table: %zu rows (%zu complete, %zu malformed)\n", NROWS, ok, bad);
    assert_true(NROWS >= 60);
}

/* ---- every prefix: need more, never a wrong completion or another error */

static void test_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const row *r = &rows[i];
        for (size_t k = 0; k < r->rawlen; k++) {
            sk__http_header hdrs[CAP];
            sk__http_request q;
            char *buf = malloc(k ? k : 1);
            assert_non_null(buf);
            memcpy(buf, r->raw, k);
            int rc = parse(r, buf, k, &q, hdrs);
            if (r->want == OK) {
                int want = k < row_consumed(r) ? 0 : (int)row_consumed(r);
                if (rc != want)
                    fail_msg("%s: prefix of %zu bytes: want %d, got %d", r->name, k, want, rc);
            } else if (rc != 0 && rc != r->want) {
                fail_msg("%s: prefix of %zu bytes: want 0 or %d, got %d", r->name, k, r->want, rc);
            }
            free(buf);
        }
    }
}

/* ---- one byte at a time, as a server reading a slow client; the same struct
 * is passed again each time (it is untouched while incomplete) */

static void test_byte_by_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const row *r = &rows[i];
        sk__http_header hdrs[CAP];
        sk__http_request q;
        memset(&q, 0, sizeof q);
        q.headers = hdrs;
        q.nheaders = r->cap ? r->cap : CAP;
        int rc = 0;
        size_t n = 0;
        while (rc == 0 && n < r->rawlen)
            rc = sk__http_parse_request(r->raw, ++n, &q, r->lim);
        if (r->want == OK) {
            if (rc != (int)row_consumed(r) || n != row_consumed(r))
                fail_msg("%s: byte by byte: %d after %zu bytes, want %zu", r->name, rc, n,
                         row_consumed(r));
            check_row(r, r->raw, rc, &q);
        } else if (rc != r->want) {
            fail_msg("%s: byte by byte: %d, want %d", r->name, rc, r->want);
        }
    }
}

/* ---- pipelining */

static void test_pipelining(void **state)
{
    (void)state;
    static const char two[] = "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /second?x HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc"
                              "GET /third HTTP/1.1\r\nHo";
    size_t len = sizeof two - 1, first = strlen("GET /first HTTP/1.1\r\nHost: a\r\n\r\n");
    sk__http_header hdrs[8];
    sk__http_request q = {.headers = hdrs, .nheaders = 8};
    int rc = sk__http_parse_request(two, len, &q, NULL);
    assert_int_equal(rc, first);
    assert_true(sk__http_slice_eq(q.path, "/first"));
    assert_true(sk__http_slice_eq(q.host, "a"));
    assert_int_equal(q.nheaders, 1);

    const char *p = two + rc;
    q.nheaders = 8;
    rc = sk__http_parse_request(p, len - first, &q, NULL);
    assert_int_equal(rc, strlen("POST /second?x HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\n"));
    assert_true(sk__http_slice_eq(q.method, "POST"));
    assert_true(sk__http_slice_eq(q.path, "/second"));
    assert_true(sk__http_slice_eq(q.query, "x"));
    assert_true(sk__http_slice_eq(q.host, "b"));
    assert_int_equal(q.content_length, 3);
    assert_true(q.path.p >= p && q.host.p + q.host.n <= p + rc);
    p += rc + 3; /* the body */

    q.nheaders = 8;
    assert_int_equal(sk__http_parse_request(p, (size_t)(two + len - p), &q, NULL), 0);
    assert_int_equal(q.nheaders, 8);
}

/* ---- the default limits, with real sizes */

static char *make_request(size_t target_len, size_t nfields, size_t value_len, size_t *len)
{
    size_t cap = target_len + nfields * (value_len + 32) + 64;
    char *b = malloc(cap);
    assert_non_null(b);
    size_t n = (size_t)sprintf(b, "GET /");
    memset(b + n, 'a', target_len - 1);
    n += target_len - 1;
    n += (size_t)sprintf(b + n, " HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 1; i < nfields; i++) {
        n += (size_t)sprintf(b + n, "X-%zu: ", i);
        memset(b + n, 'v', value_len);
        n += value_len;
        n += (size_t)sprintf(b + n, "\r\n");
    }
    n += (size_t)sprintf(b + n, "\r\n");
    *len = n;
    return b;
}

static int parse_default(const char *b, size_t len, size_t cap)
{
    sk__http_header hdrs[200];
    sk__http_request q = {.headers = hdrs, .nheaders = cap};
    sk__http_limits zero = {0, 0, 0};
    int rc = sk__http_parse_request(b, len, &q, NULL);
    assert_int_equal(sk__http_parse_request(b, len, &q, &zero), rc); /* 0 = default */
    return rc;
}

static void test_default_limits(void **state)
{
    (void)state;
    size_t len, line = SK_HTTP_MAX_LINE_DEFAULT;
    /* request line: "GET " + target + " HTTP/1.1" = 13 + target bytes */
    char *b = make_request(line - 13, 1, 0, &len);
    assert_int_equal(parse_default(b, len, 200), (int)len);
    assert_int_equal(parse_default(b, line, 200), 0); /* max_line bytes, no CR yet */
    free(b);
    b = make_request(line - 12, 1, 0, &len);
    assert_int_equal(parse_default(b, len, 200), -414);
    assert_int_equal(parse_default(b, line + 1, 200), -414); /* without waiting for the CRLF */
    assert_int_equal(parse_default(b, line, 200), 0);
    free(b);

    b = make_request(1, SK_HTTP_MAX_HEADERS_DEFAULT, 4, &len);
    assert_int_equal(parse_default(b, len, 200), (int)len);
    assert_int_equal(parse_default(b, len, SK_HTTP_MAX_HEADERS_DEFAULT - 1), -431);
    free(b);
    b = make_request(1, SK_HTTP_MAX_HEADERS_DEFAULT + 1, 4, &len);
    assert_int_equal(parse_default(b, len, 200), -431);
    free(b);

    /* header section: "Host: h\r\n" (9) + "X-1: " (5) + value + CRLF + final CRLF */
    size_t hb = SK_HTTP_MAX_HEADERS_BYTES_DEFAULT, head = strlen("GET / HTTP/1.1\r\n");
    size_t v = hb - 18;
    b = make_request(1, 2, v, &len);
    assert_int_equal(len - head, hb);
    assert_int_equal(parse_default(b, len, 200), (int)len);
    free(b);
    b = make_request(1, 2, v + 1, &len);
    assert_int_equal(parse_default(b, len, 200), -431);
    assert_int_equal(parse_default(b, len - 1, 200), -431); /* the final LF would be over */
    assert_int_equal(parse_default(b, len - 2, 200), 0);
    free(b);
    b = make_request(1, 2, v + 100, &len);
    assert_int_equal(parse_default(b, head + hb, 200), -431); /* incomplete, already over */
    assert_int_equal(parse_default(b, head + hb - 1, 200), 0);
    free(b);

    /* a huge limit is clamped and still works */
    sk__http_header hdrs[4];
    sk__http_request q = {.headers = hdrs, .nheaders = 4};
    sk__http_limits big = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
    static const char ok[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(sk__http_parse_request(ok, sizeof ok - 1, &q, &big), sizeof ok - 1);
    /* no array at all: any field line is one too many */
    sk__http_request none = {.headers = NULL, .nheaders = 0};
    assert_int_equal(sk__http_parse_request(ok, sizeof ok - 1, &none, NULL), -431);
    static const char old[] = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(sk__http_parse_request(old, sizeof old - 1, &none, NULL), sizeof old - 1);
}

/* ---- slice helpers */

static void test_slice_helpers(void **state)
{
    (void)state;
    sk__http_slice s = {"Content-Length", 14}, e = {NULL, 0};
    assert_true(sk__http_slice_eq(s, "Content-Length"));
    assert_false(sk__http_slice_eq(s, "content-length"));
    assert_true(sk__http_slice_ieq(s, "content-LENGTH"));
    assert_false(sk__http_slice_ieq(s, "content-lengt"));
    assert_false(sk__http_slice_ieq(s, "content-lengthx"));
    assert_true(sk__http_slice_eq(e, ""));
    assert_true(sk__http_slice_ieq(e, ""));
    sk__http_header h[2] = {{{"A", 1}, {"1", 1}}, {{"Bb", 2}, {"2", 1}}};
    sk__http_request q = {.headers = h, .nheaders = 2};
    assert_ptr_equal(sk__http_find_header(&q, "bB"), &h[1]);
    assert_null(sk__http_find_header(&q, "c"));
}

/* ---- percent-decoding */

typedef struct dec_row {
    const char *in;
    size_t n;
    int rc;
    const char *out;
} dec_row;

#define DEC(s, rc, out)                                                                            \
    {                                                                                              \
        (s), sizeof(s) - 1, (rc), (out)                                                            \
    }

static void test_percent_decode(void **state)
{
    (void)state;
    static const dec_row t[] = {
        DEC("", 0, ""),
        DEC("/a%20b", 0, "/a b"),
        DEC("%2f", 0, "/"),
        DEC("%2F%2f", 0, "//"),
        DEC("%41%4a%4A%6b", 0, "AJJk"),
        DEC("%e2%82%AC", 0, "\xe2\x82\xac"),
        DEC("a+b", 0, "a+b"),
        DEC("%25", 0, "%"),
        DEC("%252e", 0, "%2e"),
        DEC("%", -1, NULL),
        DEC("%4", -1, NULL),
        DEC("a%", -1, NULL),
        DEC("100%", -1, NULL),
        DEC("%zz", -1, NULL),
        DEC("%g0", -1, NULL),
        DEC("%0g", -1, NULL),
        DEC("%%41", -1, NULL),
        DEC("% 41", -1, NULL),
        DEC("%00", -1, NULL),
        DEC("a%00b", -1, NULL),
        DEC("a\0b", -1, NULL),
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[64];
        size_t n = 12345;
        int rc = sk__http_percent_decode(t[i].in, t[i].n, out, sizeof out, &n);
        if (rc != t[i].rc)
            fail_msg("decode \"%s\": want %d, got %d", t[i].in, t[i].rc, rc);
        if (rc == 0 && (n != strlen(t[i].out) || memcmp(out, t[i].out, n + 1) != 0))
            fail_msg("decode \"%s\": want \"%s\", got \"%.*s\"", t[i].in, t[i].out, (int)n, out);
    }
    /* capacity: the result and its NUL */
    char out[8];
    size_t n;
    assert_int_equal(sk__http_percent_decode("a%20b", 5, out, 4, &n), 0);
    assert_string_equal(out, "a b");
    assert_int_equal(sk__http_percent_decode("a%20b", 5, out, 3, &n), -1);
    assert_int_equal(sk__http_percent_decode("", 0, out, 0, &n), -1);
    assert_int_equal(sk__http_percent_decode("", 0, out, 1, &n), 0);
    /* in place */
    char buf[] = "/x%2Fy%41";
    assert_int_equal(sk__http_percent_decode(buf, strlen(buf), buf, sizeof buf, &n), 0);
    assert_int_equal(n, 5);
    assert_string_equal(buf, "/x/yA");
}

/* ---- path checks: decode once, then normalize */

typedef struct path_row {
    const char *in;  /* as in the request (encoded) */
    const char *out; /* NULL: refused */
} path_row;

static void test_normalize_path(void **state)
{
    (void)state;
    static const path_row t[] = {
        {"/", "/"},
        {"/a/b", "/a/b"},
        {"//a///b", "/a/b"},
        {"///", "/"},
        {"/a/", "/a/"},
        {"/a//", "/a/"},
        {"/.hidden", "/.hidden"},
        {"/a/.b/c.", "/a/.b/c."},
        {"/...", "/..."},
        {"/..a/a..b/b..", "/..a/a..b/b.."},
        {"/%252e%252e/", "/%2e%2e/"}, /* double encoding: a literal name, not traversal */
        {"/a%2f%2fb", "/a/b"},
        {"/caf%c3%a9", "/caf\xc3\xa9"},
        {"/%e2%82%ac", "/\xe2\x82\xac"},
        {"/a/../b", NULL},
        {"/a/..", NULL},
        {"/a/.", NULL},
        {"/..", NULL},
        {"/.", NULL},
        {"/./a", NULL},
        {"/%2e%2e/", NULL},
        {"/%2E%2e/x", NULL},
        {"/%2e/x", NULL},
        {"/a%2f..%2fb", NULL},
        {"/a/%2e%2e", NULL},
        {"/a\\b", NULL},
        {"/a%5cb", NULL},
        {"/..\\x", NULL},
        {"/a%00b", NULL},
        {"/%c0%af", NULL},         /* overlong '/' */
        {"/%c0%ae%c0%ae/x", NULL}, /* overlong '.' */
        {"/%c1%9c", NULL},
        {"/%f5%80", NULL},
        {"/%ff", NULL},
        {"a/b", NULL},
        {"", NULL},
        {"%2fa", "/a"}, /* decoding gives the leading '/' */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char buf[64];
        size_t n = 0, m = 99;
        int rc = sk__http_percent_decode(t[i].in, strlen(t[i].in), buf, sizeof buf, &n);
        if (rc == 0)
            rc = sk__http_normalize_path(buf, n, &m);
        if (t[i].out == NULL) {
            if (rc != -1)
                fail_msg("path \"%s\": want refused, got \"%.*s\"", t[i].in, (int)m, buf);
        } else if (rc != 0 || m != strlen(t[i].out) || memcmp(buf, t[i].out, m + 1) != 0) {
            fail_msg("path \"%s\": want \"%s\", got %d", t[i].in, t[i].out, rc);
        }
    }
    /* a literal NUL in an already decoded path */
    char nul[] = "/a\0b";
    size_t m;
    assert_int_equal(sk__http_normalize_path(nul, 4, &m), -1);
}

/* ---- Range */

typedef struct range_row {
    const char *v;
    uint64_t size;
    int rc;
    uint64_t first, last;
} range_row;

static void test_range(void **state)
{
    (void)state;
    static const range_row t[] = {
        {"bytes=0-0", 10000, 1, 0, 0},
        {"bytes=0-499", 10000, 1, 0, 499},
        {"bytes=500-999", 10000, 1, 500, 999},
        {"bytes=500-", 10000, 1, 500, 9999},
        {"bytes=0-", 10000, 1, 0, 9999},
        {"bytes=9999-", 10000, 1, 9999, 9999},
        {"bytes=-500", 10000, 1, 9500, 9999},
        {"bytes=-1", 10000, 1, 9999, 9999},
        {"bytes=-20000", 10000, 1, 0, 9999},
        {"bytes=9000-20000", 10000, 1, 9000, 9999},
        {"bytes=0-99999999999999999999999", 10000, 1, 0, 9999},
        {"BYTES=1-2", 10000, 1, 1, 2},
        {"bytes=5-5", 10000, 1, 5, 5},
        {"bytes=-0", 10000, 0, 0, 0},
        {"bytes=10000-", 10000, 0, 0, 0},
        {"bytes=10000-20000", 10000, 0, 0, 0},
        {"bytes=99999999999999999999-", 10000, 0, 0, 0},
        {"bytes=0-", 0, 0, 0, 0},
        {"bytes=-5", 0, 0, 0, 0},
        {"bytes=5-2", 10000, -1, 0, 0},
        {"bytes=0-1,5-6", 10000, -1, 0, 0},
        {"bytes=0-1, 5-6", 10000, -1, 0, 0},
        {"bytes=", 10000, -1, 0, 0},
        {"bytes=-", 10000, -1, 0, 0},
        {"bytes=a-b", 10000, -1, 0, 0},
        {"bytes= 0-1", 10000, -1, 0, 0},
        {"bytes=0-1 ", 10000, -1, 0, 0},
        {"bytes=+1-2", 10000, -1, 0, 0},
        {"bytes=1--2", 10000, -1, 0, 0},
        {"bytes", 10000, -1, 0, 0},
        {"items=0-1", 10000, -1, 0, 0},
        {"", 10000, -1, 0, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint64_t a = 77, b = 77;
        int rc = sk__http_parse_range(t[i].v, strlen(t[i].v), t[i].size, &a, &b);
        if (rc != t[i].rc || (rc == 1 && (a != t[i].first || b != t[i].last)))
            fail_msg("range \"%s\" size %llu: want %d %llu-%llu, got %d %llu-%llu", t[i].v,
                     (unsigned long long)t[i].size, t[i].rc, (unsigned long long)t[i].first,
                     (unsigned long long)t[i].last, rc, (unsigned long long)a,
                     (unsigned long long)b);
    }
}

/* ---- HTTP-date */

typedef struct date_row {
    const char *s;
    int rc;
    int64_t t;
} date_row;

static void test_parse_date(void **state)
{
    (void)state;
    static const date_row t[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 0, 784111777},
        {"Sun Nov  6 08:49:37 1994", 0, 784111777},
        {"Sun Nov 06 08:49:37 1994", 0, 784111777},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 0, 0},
        {"Wed, 31 Dec 1969 23:59:59 GMT", 0, -1},
        {"Tue, 29 Feb 2000 00:00:00 GMT", 0, 951782400},
        {"Sat, 29 Feb 2020 12:00:00 GMT", 0, 1582977600},
        {"Fri, 31 Dec 9999 23:59:59 GMT", 0, 253402300799},
        {"Sun, 06 Nov 1994 08:49:60 GMT", 0, 784111800}, /* leap second */
        {"Mon, 06 Nov 1994 08:49:37 GMT", 0, 784111777}, /* day name not checked */
        {"Saturday, 01-Jan-00 00:00:00 GMT", 0, 946684800},
        {"Wednesday, 09-Sep-09 09:09:09 GMT", 0, 1252487349},
        {"Thu Jan  1 00:00:00 1970", 0, 0},
        {"Fri Dec 31 23:59:59 1999", 0, 946684799},
        {"Fri, 29 Feb 2019 00:00:00 GMT", -1, 0},
        {"Fri, 29 Feb 1900 00:00:00 GMT", -1, 0},
        {"Sun, 31 Apr 1994 00:00:00 GMT", -1, 0},
        {"Sun, 00 Nov 1994 08:49:37 GMT", -1, 0},
        {"Sun, 32 Nov 1994 08:49:37 GMT", -1, 0},
        {"Sun, 06 Nov 1994 24:00:00 GMT", -1, 0},
        {"Sun, 06 Nov 1994 08:60:00 GMT", -1, 0},
        {"Sun, 06 Nov 1994 08:49:61 GMT", -1, 0},
        {"Sun, 06 Nov 1994 08:49:37 UTC", -1, 0},
        {"Sun, 06 Nov 1994 08:49:37 gmt", -1, 0},
        {"sun, 06 Nov 1994 08:49:37 GMT", -1, 0},
        {"Sun, 06 nov 1994 08:49:37 GMT", -1, 0},
        {"Sun, 06 Foo 1994 08:49:37 GMT", -1, 0},
        {"Xyz, 06 Nov 1994 08:49:37 GMT", -1, 0},
        {"Sun, 6 Nov 1994 08:49:37 GMT", -1, 0},
        {"Sun, 06 Nov 94 08:49:37 GMT", -1, 0},
        {"Sun, 06 Nov 1994 08:49:37 GMT ", -1, 0},
        {" Sun, 06 Nov 1994 08:49:37 GMT", -1, 0},
        {"Sun, 06 Nov 1994 8:49:37  GMT", -1, 0},
        {"Sun, 06 Nov 1994 08-49-37 GMT", -1, 0},
        {"Sun, +6 Nov 1994 08:49:37 GMT", -1, 0},
        {"Sunday, 06-Nov-1994 08:49:37 GMT", -1, 0},
        {"Sunday, 06 Nov 94 08:49:37 GMT", -1, 0},
        {"Funday, 06-Nov-94 08:49:37 GMT", -1, 0},
        {"Sunday, 06-Nov-94 08:49:37 UTC", -1, 0},
        {"Sun Nov 6 08:49:37 1994", -1, 0},
        {"Sun Nov  6 08:49:37 94  ", -1, 0},
        {"Sun Nov  6 08:49:37 1994 ", -1, 0},
        {"Sun Nov  6 08:49:37 GMT ", -1, 0},
        {"", -1, 0},
        {"0", -1, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t v = 42;
        int rc = sk__http_parse_date(t[i].s, strlen(t[i].s), &v);
        if (rc != t[i].rc || (rc == 0 && v != t[i].t))
            fail_msg("date \"%s\": want %d %lld, got %d %lld", t[i].s, t[i].rc, (long long)t[i].t,
                     rc, (long long)v);
    }
}

static void test_format_date(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *s;
    } t[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},
        {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
        {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
        {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
        {INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT"},
        {-62167219200, "Sat, 01 Jan 0000 00:00:00 GMT"},
        {INT64_MIN, "Sat, 01 Jan 0000 00:00:00 GMT"},
    };
    char buf[SK_HTTP_DATE_LEN + 1];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        memset(buf, 'x', sizeof buf);
        assert_int_equal(sk__http_format_date(t[i].t, buf), SK_HTTP_DATE_LEN);
        assert_string_equal(buf, t[i].s);
    }
    /* round trip over the whole range, and gmtime/strftime (in the C locale:
     * this program never calls setlocale) as the oracle from 1902 to 2100 */
    int64_t step = 7777777 + 13; /* a little over 90 days, not a multiple of a day */
    size_t n = 0;
    for (int64_t x = -62167219200; x <= 253402300799; x += step, n++) {
        int64_t back = 0;
        sk__http_format_date(x, buf);
        if (sk__http_parse_date(buf, SK_HTTP_DATE_LEN, &back) != 0 || back != x)
            fail_msg("round trip %lld: \"%s\" gave %lld", (long long)x, buf, (long long)back);
        if (x >= -2147483648LL && x <= 4102444800LL) {
            time_t tt = (time_t)x;
            struct tm tm;
            char want[64];
            assert_non_null(gmtime_r(&tt, &tm));
            strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm);
            assert_string_equal(buf, want);
        }
    }
    assert_true(n > 40000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_byte_by_byte),   cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_default_limits), cmocka_unit_test(test_slice_helpers),
        cmocka_unit_test(test_percent_decode), cmocka_unit_test(test_normalize_path),
        cmocka_unit_test(test_range),          cmocka_unit_test(test_parse_date),
        cmocka_unit_test(test_format_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
