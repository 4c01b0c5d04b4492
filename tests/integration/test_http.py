"""The http service with real clients: curl, wget and Python's http.client.

`sockit serve http --root DIR [--index NAME] [--listing] [--auth FILE]
[--access-log FILE|-] ADDRESS...`: GET and HEAD of static files, keep-alive
and pipelining, validators (ETag, Last-Modified), single ranges, index
files, listings, redirects, Basic auth and the Combined Log Format. The
features run under the default model (epoll); a core subset (GET, HEAD,
404, keep-alive, pipelining, TCP and Unix sockets) runs under every model.
Security (traversal, smuggling, slow clients) is in test_http_security.py,
a real browser in test_http_browser.py.
"""

import base64
import email.utils
import hashlib
import html.parser
import http.client
import io
import os
import re
import socket
import time
import urllib.parse
import warnings
from datetime import datetime, timezone

from harness import (Server, Skip, poll_until, read_http_response, require,
                     run, run_client, tempdir, timeout)

MODELS = ["iterative", "fork", "thread", "prefork", "select", "poll", "epoll", "uring"]

A_TXT = b"hello, world\n"

SITE = {
    "index.html": b"<!DOCTYPE html><title>home</title><h1>home</h1>\n",
    "a.txt": A_TXT,
    "style.css": b"body { color: #c00; }\n",
    "app.js": b"console.log('sockit');\n",
    "pic.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="4" '
                b'height="4"><rect width="4" height="4" fill="red"/></svg>\n',
    "data.json": b'{"sockit": true}\n',
    "blob.xyz": b"\x00\x01\x02 binary of an unknown kind\xff",
    "README": b"a file without an extension\n",
    "SHOUT.HTML": b"<p>upper-case extension</p>\n",
    "with space.txt": b"a name with a space\n",
    ".hidden": b"a dot file is an ordinary name\n",
    "empty.txt": b"",
    "smuggled.txt": b"SMUGGLED-BODY-WAS-PARSED\n",
    "sub/index.html": b"<h1>sub index</h1>\n",
    "sub/deep/file.txt": b"deep file\n",
    "list/one.txt": b"one\n",
    "list/two.txt": b"two\n",
    "other/other.html": b"<h1>the other index</h1>\n",
}

# Combined Log Format: host ident user [time] "request" status bytes
# "referer" "user-agent"; quoted fields may hold backslash escapes.
Q = r'"((?:[^"\\]|\\.)*)"'
CLF = re.compile(r'^(\S+) (\S+) (\S+) '
                 r'\[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} '
                 r'[+-]\d{4})\] '
                 + Q + r' (\d{3}) (\d+|-) ' + Q + ' ' + Q + r'$')


# -- helpers ------------------------------------------------------------------

def model_args(model):
    args = ["--model", model]
    if model in ("prefork", "poll", "epoll", "uring"):  # thread has no --workers
        args += ["--workers", "2"]
    return args


def make_site(files=SITE):
    """A document root holding files; returns its path."""
    root = os.path.join(tempdir(), "www")
    os.mkdir(root)
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return root


def serve(root, *opts, model=None, addrs=("tcp://127.0.0.1:0",)):
    args = ["http", "--root", root] + list(opts)
    if model:
        args += model_args(model)
    return Server(args + list(addrs))


def curl(*args, timeout=15):
    require("curl")
    return run(["curl", "-sS", "--noproxy", "*", "--max-time", "10"]
               + list(args), timeout=timeout)


def curl_response(*args, head=False):
    """Run curl -i ARGS (or -I with head) and parse what it printed."""
    r = curl("-I" if head else "-i", *args)
    assert r.returncode == 0, r
    resp = read_http_response(io.BytesIO(r.stdout), head=head)
    assert resp is not None, r
    return resp


def url(srv, path):
    return "http://127.0.0.1:%d%s" % (srv.port, path)


def connect(srv, timeout=5):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    return s, s.makefile("rb")


def raw_exchange(srv, data, heads=(), timeout=5):
    """Send data on a new connection; read responses until the server
    closes it. heads: the indexes of responses to HEAD requests."""
    s, rf = connect(srv, timeout)
    try:
        s.sendall(data)
        out = []
        while True:
            try:
                resp = read_http_response(rf, head=len(out) in heads)
            except ConnectionResetError:
                resp = None
            if resp is None:
                return out
            out.append(resp)
    finally:
        rf.close()
        s.close()


def closed_by_peer(rf):
    """Whether the server closed the connection (EOF or reset)."""
    try:
        return rf.read(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def get(path, host="x", extra=""):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n"
            % (path, host, extra)).encode()


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def read_log(path, n, timeout=5):
    """The first n lines of an access log file (waits for them)."""
    def lines():
        try:
            with open(path) as f:
                got = f.read().splitlines()
        except FileNotFoundError:
            return None
        return got if len(got) >= n else None
    got = poll_until(lines, timeout)
    assert got, "access log %s: fewer than %d lines: %r" % (
        path, n, open(path).read() if os.path.exists(path) else None)
    return got


def parse_clf(line):
    m = CLF.match(line)
    assert m, "not Combined Log Format: %r" % line
    host, ident, user, when, request, status, size, ref, ua = m.groups()
    stamp = datetime.strptime(when, "%d/%b/%Y:%H:%M:%S %z")
    age = abs(datetime.now(timezone.utc) - stamp).total_seconds()
    assert age < 120, "log time %s is %ds off" % (when, age)
    return {"host": host, "ident": ident, "user": user, "request": request,
            "status": int(status), "bytes": 0 if size == "-" else int(size),
            "referer": ref, "ua": ua}


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def keep_alive_many(conn, n, files=("a.txt", "style.css", "data.json")):
    """n requests on one http.client connection; all on one socket."""
    first = None
    for i in range(n):
        name = files[i % len(files)]
        method = "HEAD" if i % 5 == 4 else "GET"
        conn.request(method, "/" + urllib.parse.quote(name))
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (i, name, resp.status)
        assert resp.getheader("Connection") is None, resp.getheaders()
        want = b"" if method == "HEAD" else SITE[name]
        assert body == want, (i, name, body[:80])
        assert int(resp.getheader("Content-Length")) == len(SITE[name])
        if first is None:
            first = conn.sock
        assert conn.sock is first, "request %d came on a new connection" % i


def pipeline_three(s, rf):
    """Three requests in one sendall, the middle one HEAD: three answers
    in order, and the connection stays open."""
    s.sendall(get("/a.txt") + b"HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n"
              + get("/nope.txt"))
    r1 = read_http_response(rf)
    r2 = read_http_response(rf, head=True)
    r3 = read_http_response(rf)
    assert r1 and r1.status == 200 and r1.body == A_TXT, r1
    assert r2 and r2.status == 200 and r2.body == b"", r2
    assert r2.header("Content-Length") == str(len(SITE["style.css"])), r2
    assert r2.header("Content-Type").startswith("text/css"), r2
    assert r3 and r3.status == 404, r3


# -- the basics ---------------------------------------------------------------

def test_get_and_head_with_curl():
    root = make_site()
    mtime = os.stat(os.path.join(root, "a.txt")).st_mtime
    with serve(root) as srv:
        before = time.time()
        r = curl_response(url(srv, "/a.txt"))
        assert r.status == 200 and r.body == A_TXT, r
        assert r.version == "HTTP/1.1", r
        assert r.header("Content-Length") == str(len(A_TXT)), r
        assert r.header("Content-Type") == "text/plain; charset=utf-8", r
        assert r.header("Server", ).startswith("sockit"), r
        assert r.header("Accept-Ranges") == "bytes", r
        assert re.match(r'^(W/)?"[!#-~]+"$', r.header("ETag")), r
        assert r.header("Last-Modified") == http_date(int(mtime)), r
        date = email.utils.parsedate_to_datetime(r.header("Date"))
        assert re.match(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} "
                        r"\d{2}:\d{2}:\d{2} GMT$", r.header("Date")), r
        assert before - 2 <= date.timestamp() <= time.time() + 2, r
        for name in ("Date", "Server", "Content-Type", "Content-Length",
                     "ETag", "Last-Modified"):
            assert len(r.header_values(name)) == 1, (name, r)

        h = curl_response(url(srv, "/a.txt"), head=True)
        assert h.status == 200 and h.body == b"", h
        for name in ("Content-Length", "Content-Type", "ETag",
                     "Last-Modified", "Accept-Ranges"):
            assert h.header(name) == r.header(name), (name, h, r)

        # curl -I on a missing file and an empty one.
        m = curl_response(url(srv, "/missing.txt"), head=True)
        assert m.status == 404, m
        e = curl_response(url(srv, "/empty.txt"))
        assert e.status == 200 and e.body == b"" and \
            e.header("Content-Length") == "0", e


def test_not_found_and_forbidden():
    root = make_site()
    os.mkfifo(os.path.join(root, "fifo"))
    with serve(root) as srv:
        r = curl_response(url(srv, "/no/such/file.txt"))
        assert r.status == 404, r
        assert r.header("Content-Type").startswith("text/html"), r
        assert b"404" in r.body and \
            int(r.header("Content-Length")) == len(r.body), r
        assert curl_response(url(srv, "/a.txt/x")).status == 404
        # A directory without an index file, and no --listing: 403.
        assert curl_response(url(srv, "/list/")).status == 403
        # A FIFO is never opened for reading (it would block): 403.
        r = curl_response(url(srv, "/fifo"))
        assert r.status == 403, r


def test_content_types():
    want = {
        "index.html": "text/html", "SHOUT.HTML": "text/html",
        "style.css": "text/css", "app.js": "text/javascript",
        "pic.png": "image/png", "logo.svg": "image/svg+xml",
        "data.json": "application/json", "a.txt": "text/plain",
        "blob.xyz": "application/octet-stream",
        "README": "application/octet-stream",
        ".hidden": "application/octet-stream",
    }
    root = make_site()
    with serve(root) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        for name, media in want.items():
            conn.request("GET", "/" + name)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200 and body == SITE[name], (name, resp)
            ctype = resp.getheader("Content-Type")
            assert ctype.split(";")[0].strip().lower() == media, (name, ctype)
            if media.startswith("text/html"):
                assert "charset=utf-8" in ctype.lower(), (name, ctype)
        conn.close()


def test_index_file_and_directory_redirect():
    root = make_site()
    with serve(root) as srv:
        r = curl_response(url(srv, "/"))
        assert r.status == 200 and r.body == SITE["index.html"], r
        assert r.header("Content-Type").startswith("text/html"), r
        r = curl_response(url(srv, "/sub/"))
        assert r.status == 200 and r.body == SITE["sub/index.html"], r
        r = curl_response(url(srv, "/sub"))
        assert r.status == 301 and r.header("Location") == "/sub/", r
        r = curl_response(url(srv, "/sub/deep?x=1&y=2"))
        assert r.status == 301, r
        assert r.header("Location") == "/sub/deep/?x=1&y=2", r
        r = curl_response("-L", url(srv, "/sub"))  # curl follows it
        assert r.status == 301, r
        r = curl("-L", url(srv, "/sub"))
        assert r.returncode == 0 and r.stdout == SITE["sub/index.html"], r
        # An index file is served under the directory's URL only.
        r = curl_response(url(srv, "/sub/index.html"))
        assert r.status == 200 and r.body == SITE["sub/index.html"], r


def test_index_option():
    root = make_site()
    with serve(root, "--index", "other.html") as srv:
        r = curl_response(url(srv, "/other/"))
        assert r.status == 200 and r.body == SITE["other/other.html"], r
        assert r.header("Content-Type").startswith("text/html"), r
        # index.html is just a file now: a directory without other.html
        # is forbidden (no --listing).
        assert curl_response(url(srv, "/")).status == 403
        assert curl_response(url(srv, "/sub/")).status == 403
        r = curl_response(url(srv, "/sub/index.html"))
        assert r.status == 200 and r.body == SITE["sub/index.html"], r
    with serve(root, "--index", "other.html", "--listing") as srv:
        r = curl_response(url(srv, "/sub/"))
        assert r.status == 200 and b"index.html" in r.body, r
        assert b"sub index" not in r.body, r
    for bad in ("a/b", "..", ""):
        r = run_client(["serve", "http", "--root", root, "--index", bad,
                        "tcp://127.0.0.1:0"], timeout=5)
        assert r.returncode == 2, r
        assert r.err.startswith("sockit: ") and "--index" in r.err, r
        assert "listening" not in r.err, r


def test_percent_decoding_and_normalization():
    root = make_site()
    with serve(root) as srv:
        cases = [
            ("/with%20space.txt", 200, SITE["with space.txt"]),
            ("/%61%2E%74xt", 200, A_TXT),  # hex digits of either case
            ("/a.txt?x=1&y=%2F", 200, A_TXT),  # the query is not a path
            ("/sub//deep///file.txt", 200, SITE["sub/deep/file.txt"]),
            ("/sub%2Fdeep%2ffile.txt", 200, SITE["sub/deep/file.txt"]),
            ("/.hidden", 200, SITE[".hidden"]),
            ("/a.txt%3Fx=1", 404, None),  # a decoded '?' is part of the name
            ("/a%zz.txt", 400, None),
            ("/a%2", 400, None),
            ("/a.txt%00", 400, None),
            ("/sub/./index.html", 400, None),
            ("/sub/../a.txt", 400, None),
            ("http://x/a.txt", 200, A_TXT),  # absolute-form
        ]
        for target, status, body in cases:
            resp = raw_exchange(srv, get(target,
                                         extra="Connection: close\r\n"))
            assert len(resp) == 1, (target, resp)
            assert resp[0].status == status, (target, resp[0])
            if body is not None:
                assert resp[0].body == body, (target, resp[0])
        r = curl("--path-as-is", url(srv, "/sub/deep/../../a.txt"),
                 "-o", "/dev/null", "-w", "%{http_code}")
        assert r.out == "400", r


# -- conditional requests, ranges, big files -------------------------------

def test_conditional_requests():
    root = make_site()
    path = os.path.join(root, "a.txt")
    mtime = 1700000000  # a fixed, whole second
    os.utime(path, (mtime, mtime))
    with serve(root) as srv:
        u = url(srv, "/a.txt")
        full = curl_response(u)
        etag = full.header("ETag")
        lm = full.header("Last-Modified")
        assert lm == http_date(mtime), full

        r = curl_response("-H", "If-None-Match: " + etag, u)
        assert r.status == 304 and r.body == b"", r
        assert r.header("ETag") == etag, r
        assert r.header("Content-Length") in (None, str(len(A_TXT))), r
        for inm in ('"nope", ' + etag, "W/" + etag, "*"):
            r = curl_response("-H", "If-None-Match: " + inm, u)
            assert r.status == 304, (inm, r)
        r = curl_response("-H", 'If-None-Match: "nope"', u)
        assert r.status == 200 and r.body == A_TXT, r

        r = curl_response("-H", "If-Modified-Since: " + lm, u)
        assert r.status == 304 and r.body == b"", r
        later = http_date(mtime + 3600)
        assert curl_response("-H", "If-Modified-Since: " + later,
                             u).status == 304
        earlier = http_date(mtime - 1)
        r = curl_response("-H", "If-Modified-Since: " + earlier, u)
        assert r.status == 200 and r.body == A_TXT, r
        r = curl_response("-H", "If-Modified-Since: yesterday-ish", u)
        assert r.status == 200 and r.body == A_TXT, r
        # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
        r = curl_response("-H", 'If-None-Match: "nope"',
                          "-H", "If-Modified-Since: " + lm, u)
        assert r.status == 200, r
        # HEAD with a validator.
        r = curl_response("-H", "If-None-Match: " + etag, u, head=True)
        assert r.status == 304, r


def test_open_file_cache_expires():
    # Served files are kept open for 1 s: afterwards a changed file is
    # served as it is now, with new validators.
    root = make_site()
    path = os.path.join(root, "a.txt")
    with serve(root) as srv:
        first = curl_response(url(srv, "/a.txt"))
        assert first.body == A_TXT
        with open(path + ".new", "wb") as f:
            f.write(b"replaced content\n")
        os.utime(path + ".new", (1600000000, 1600000000))
        os.rename(path + ".new", path)
        time.sleep(1.3)
        r = curl_response(url(srv, "/a.txt"))
        assert r.body == b"replaced content\n", r
        assert r.header("ETag") != first.header("ETag"), r
        assert r.header("Last-Modified") == http_date(1600000000), r
        os.unlink(path)
        time.sleep(1.3)
        assert curl_response(url(srv, "/a.txt")).status == 404


def test_ranges():
    root = make_site()
    n = len(A_TXT)
    with serve(root) as srv:
        u = url(srv, "/a.txt")
        for spec, first, last in (("0-4", 0, 4), ("7-", 7, n - 1),
                                  ("-6", n - 6, n - 1), ("3-3", 3, 3),
                                  ("5-999", 5, n - 1), ("-999", 0, n - 1)):
            r = curl_response("-r", spec, u)
            assert r.status == 206, (spec, r)
            assert r.body == A_TXT[first:last + 1], (spec, r)
            assert r.header("Content-Range") == "bytes %d-%d/%d" % (
                first, last, n), (spec, r)
            assert r.header("Content-Length") == str(last - first + 1), r
        # Not satisfiable: 416 with the size.
        r = curl_response("-r", "%d-" % n, u)
        assert r.status == 416, r
        assert r.header("Content-Range") == "bytes */%d" % n, r
        # Several ranges, a reversed range or another unit: ignored (200).
        for value in ("bytes=0-1,4-5", "bytes=5-2", "lines=0-1", "bytes=x"):
            r = curl_response("-H", "Range: " + value, u)
            assert r.status == 200 and r.body == A_TXT, (value, r)
        # HEAD with a range: the head of the 206, no body.
        r = curl_response("-r", "0-4", u, head=True)
        assert r.status == 206 and r.header("Content-Length") == "5", r
        # An empty file has no satisfiable range.
        r = curl_response("-r", "0-0", url(srv, "/empty.txt"))
        assert r.status == 416 and r.header("Content-Range") == "bytes */0", r


def test_416_has_one_content_type():
    # RFC 9110 8.3: Content-Type is a singleton field. The 416 response
    # must not carry two different ones.
    root = make_site()
    with serve(root) as srv:
        r = curl_response("-r", "100-200", url(srv, "/a.txt"))
        assert r.status == 416, r
        types = r.header_values("Content-Type")
        assert len(types) == 1, "416 with %d Content-Type fields: %r" % (
            len(types), types)


def test_big_file_sha256_whole_and_in_three_ranges():
    big = os.urandom(1 << 20)
    digest = hashlib.sha256(big).hexdigest()
    root = make_site(dict(SITE, **{"big.bin": big}))
    d = tempdir()
    with serve(root) as srv:
        u = url(srv, "/big.bin")
        r = curl("-o", os.path.join(d, "whole"), "-w", "%{http_code}", u)
        assert r.out == "200", r
        with open(os.path.join(d, "whole"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest
        third = len(big) // 3
        bounds = [(0, third - 1), (third, 2 * third - 1),
                  (2 * third, len(big) - 1)]
        parts = []
        for i, (a, b) in enumerate(bounds):
            spec = "%d-%d" % (a, b) if i < 2 else "%d-" % a
            out, hdr = os.path.join(d, "p%d" % i), os.path.join(d, "h%d" % i)
            r = curl("-r", spec, "-D", hdr, "-o", out, u)
            assert r.returncode == 0, r
            with open(hdr, "rb") as f:
                head = read_http_response(io.BytesIO(f.read()), head=True)
            assert head.status == 206, head
            assert head.header("Content-Range") == "bytes %d-%d/%d" % (
                a, b, len(big)), head
            with open(out, "rb") as f:
                parts.append(f.read())
            assert len(parts[-1]) == b - a + 1, (spec, len(parts[-1]))
        assert hashlib.sha256(b"".join(parts)).hexdigest() == digest
        # The same over one keep-alive connection with http.client.
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", "/big.bin")
        resp = conn.getresponse()
        assert resp.status == 200
        assert hashlib.sha256(resp.read()).hexdigest() == digest
        got = b""
        for a, b in bounds:
            conn.request("GET", "/big.bin",
                         headers={"Range": "bytes=%d-%d" % (a, b)})
            resp = conn.getresponse()
            assert resp.status == 206, resp.status
            got += resp.read()
        assert hashlib.sha256(got).hexdigest() == digest
        conn.close()


# -- methods, bodies, connections ---------------------------------------------

def test_post_is_405_and_closes():
    root = make_site()
    with serve(root) as srv:
        s, rf = connect(srv)
        body = b"name=value&x=" + b"y" * 1000
        s.sendall(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/x-www-form-urlencoded\r\nContent-Length: "
                  b"%d\r\n\r\n%s" % (len(body), body) + get("/a.txt"))
        r = read_http_response(rf)
        assert r.status == 405, r
        assert r.header("Allow") == "GET, HEAD", r
        assert r.header("Connection") == "close", r
        assert closed_by_peer(rf), "the connection stayed open after 405"
        s.close()
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
            resp = raw_exchange(srv, ("%s /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                                      % method).encode() + get("/a.txt"))
            assert len(resp) == 1 and resp[0].status == 405, (method, resp)
            assert resp[0].header("Allow") == "GET, HEAD", resp


def test_unknown_method_is_501():
    root = make_site()
    with serve(root) as srv:
        for method in ("BREW", "get", "PROPFIND"):
            resp = raw_exchange(srv, ("%s /pot HTTP/1.1\r\nHost: x\r\n\r\n"
                                      % method).encode() + get("/a.txt"))
            assert len(resp) == 1, (method, resp)
            assert resp[0].status == 501, (method, resp[0])
            assert resp[0].header("Connection") == "close", resp[0]
        r = curl("-X", "BREW", "-o", "/dev/null", "-w", "%{http_code}",
                 url(srv, "/pot"))
        assert r.out == "501", r


def test_get_body_is_skipped_not_parsed():
    # A GET with a Content-Length body, pipelined with a second request:
    # the body (which looks like a request) is skipped, never parsed.
    root = make_site()
    log = os.path.join(tempdir(), "access.log")
    smuggle = get("/smuggled.txt")
    with serve(root, "--access-log", log) as srv:
        # All in one write.
        resp = raw_exchange(srv, get("/a.txt", extra="Content-Length: %d\r\n"
                                     % len(smuggle)) + smuggle +
                            get("/style.css", extra="Connection: close\r\n"))
        assert [r.status for r in resp] == [200, 200], resp
        assert resp[0].body == A_TXT and resp[1].body == SITE["style.css"]
        # The head, then the body in pieces, then the next request.
        s, rf = connect(srv)
        s.sendall(get("/a.txt", extra="Content-Length: %d\r\n"
                      % len(smuggle)))
        r = read_http_response(rf)
        assert r.status == 200 and r.body == A_TXT, r
        for piece in (smuggle[:5], smuggle[5:20], smuggle[20:]):
            time.sleep(0.1)
            s.sendall(piece)
        time.sleep(0.1)
        s.sendall(get("/data.json", extra="Connection: close\r\n"))
        r = read_http_response(rf)
        assert r.status == 200 and r.body == SITE["data.json"], r
        assert closed_by_peer(rf)
        s.close()
        lines = read_log(log, 4)
        time.sleep(0.2)
        lines = read_log(log, 4)
        assert len(lines) == 4, lines
        assert not any("smuggled" in ln for ln in lines), lines
    assert all(b"SMUGGLED" not in r.raw for r in resp)


def test_get_body_too_large_is_413():
    root = make_site()
    with serve(root) as srv:
        s, rf = connect(srv)
        s.sendall(get("/a.txt", extra="Content-Length: 2000000\r\n")
                  + b"x" * 1000)
        r = read_http_response(rf)
        assert r.status == 413 and r.header("Connection") == "close", r
        assert closed_by_peer(rf)
        s.close()


def test_connection_close_and_http10():
    root = make_site()
    with serve(root) as srv:
        # HTTP/1.1 with Connection: close.
        s, rf = connect(srv)
        s.sendall(get("/a.txt", extra="Connection: close\r\n"))
        r = read_http_response(rf)
        assert r.status == 200 and r.header("Connection") == "close", r
        assert closed_by_peer(rf)
        s.close()
        # HTTP/1.0 without keep-alive (and without Host): one response,
        # then the server closes.
        s, rf = connect(srv)
        s.sendall(b"GET /a.txt HTTP/1.0\r\n\r\n")
        r = read_http_response(rf)
        assert r.status == 200 and r.body == A_TXT, r
        assert (r.header("Connection") or "").lower() != "keep-alive", r
        assert closed_by_peer(rf), "HTTP/1.0 connection kept open"
        s.close()
        # HTTP/1.0 asking for keep-alive gets it.
        s, rf = connect(srv)
        s.sendall(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = read_http_response(rf)
        assert r.status == 200 and r.header("Connection") == \
            "keep-alive", r
        s.sendall(b"GET /data.json HTTP/1.0\r\n\r\n")
        r = read_http_response(rf)
        assert r.status == 200 and r.body == SITE["data.json"], r
        assert closed_by_peer(rf)
        s.close()
        # curl --http1.0
        r = curl_response("--http1.0", url(srv, "/a.txt"))
        assert r.status == 200 and r.body == A_TXT, r
        assert r.header("Content-Length") == str(len(A_TXT)), r


def test_keep_alive_many_requests_http_client():
    root = make_site()
    with serve(root) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        keep_alive_many(conn, 100)
        # 404s and 304s keep the connection too.
        sock = conn.sock
        conn.request("GET", "/missing")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404
        conn.request("GET", "/a.txt")
        resp = conn.getresponse()
        resp.read()
        etag = resp.getheader("ETag")
        conn.request("GET", "/a.txt", headers={"If-None-Match": etag})
        resp = conn.getresponse()
        assert resp.status == 304 and resp.read() == b""
        conn.request("GET", "/a.txt")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == A_TXT
        assert conn.sock is sock, "a new connection after a 404/304"
        conn.close()


def test_pipelining():
    root = make_site()
    with serve(root) as srv:
        s, rf = connect(srv)
        pipeline_three(s, rf)
        pipeline_three(s, rf)  # the connection is still usable
        # A request split at awkward places still works.
        req = get("/data.json")
        for i in range(0, len(req), 7):
            s.sendall(req[i:i + 7])
            time.sleep(0.01)
        r = read_http_response(rf)
        assert r.status == 200 and r.body == SITE["data.json"], r
        s.close()


def test_max_1000_requests_per_connection():
    root = make_site()
    with serve(root) as srv:
        s, rf = connect(srv, timeout=10)
        head = b"HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
        s.sendall(head * 1001)
        answers = []
        while True:
            try:
                r = read_http_response(rf, head=True)
            except ConnectionResetError:
                break
            if r is None:
                break
            answers.append(r)
        s.close()
        assert len(answers) == 1000, "%d responses" % len(answers)
        assert all(r.status == 200 for r in answers)
        assert all(r.header("Connection") is None for r in answers[:-1])
        assert answers[-1].header("Connection") == "close", answers[-1]


@timeout(45)
def test_keep_alive_idle_timeout():
    # An idle keep-alive connection is closed about 15 s after its last
    # request, not after its first: the timer set when it first went idle
    # (which stays while requests come) is set again for what is left.
    root = make_site()
    with serve(root) as srv:
        s, rf = connect(srv, timeout=30)
        for i in range(5):
            if i:
                time.sleep(2)
            s.sendall(get("/a.txt"))
            assert read_http_response(rf).status == 200
        t0 = time.monotonic()
        assert closed_by_peer(rf), "idle connection still open after 30 s"
        took = time.monotonic() - t0
        s.close()
        assert 10 <= took <= 25, "idle connection closed after %.1fs" % took


# -- listing ------------------------------------------------------------------

class LinkParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.links = []  # [href, text]
        self.h1 = ""
        self._in = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self.links.append([dict(attrs).get("href"), ""])
            self._in = "a"
        elif tag == "h1":
            self._in = "h1"

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "a":
            self.links[-1][1] += data
        elif self._in == "h1":
            self.h1 += data


HOSTILE_DIR = "<script>alert(1)<"  # + "/" + HOSTILE_FILE: the brief's name
HOSTILE_FILE = "script>&\"'.txt"
HOSTILE_FLAT = "<img src=x onerror=alert(1)>&\"'.txt"
ODD_NAMES = ["a b%20c.txt", "q?x#y.txt", "colon:name.txt", "caf\u00e9.txt"]


def test_listing_escapes_names():
    # A file name cannot hold '/', so the name <script>alert(1)</script>
    # &"'.txt is a directory "<script>alert(1)<" holding a file
    # "script>&"'.txt": its URL path is exactly that name.
    root = make_site()
    hostile = os.path.join(root, "hostile")
    os.makedirs(os.path.join(hostile, HOSTILE_DIR))
    os.mkdir(os.path.join(hostile, "d"))
    contents = {}
    for name in [HOSTILE_FLAT] + ODD_NAMES:
        contents[name] = ("content of %s\n" % name).encode()
        with open(os.path.join(hostile, name), "wb") as f:
            f.write(contents[name])
    secret = b"the hostile file\n"
    with open(os.path.join(hostile, HOSTILE_DIR, HOSTILE_FILE), "wb") as f:
        f.write(secret)
    with serve(root, "--listing") as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)

        def fetch(path):
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp, resp.read()

        resp, page = fetch("/hostile/")
        assert resp.status == 200, resp.status
        assert resp.getheader("Content-Type").startswith("text/html")
        text = page.decode("utf-8")
        for raw in ("<script", "<img", "onerror=alert(1)>", "&\"'",
                    "alert(1)<"):
            assert raw not in text, "%r unescaped in the listing:\n%s" % (
                raw, text)
        p = LinkParser()
        p.feed(text)
        assert set(p.tags) <= {"html", "head", "meta", "title", "body",
                               "h1", "ul", "li", "a"}, p.tags
        names = {t: h for h, t in p.links}
        want = {HOSTILE_DIR + "/", "d/", HOSTILE_FLAT, "../"} | set(ODD_NAMES)
        assert set(names) == want, sorted(names)
        for name in [HOSTILE_FLAT] + ODD_NAMES:
            href = names[name]
            assert all(0x21 <= ord(ch) < 0x7f for ch in href), href
            target = urllib.parse.urljoin("/hostile/", href)
            resp, body = fetch(target)
            assert resp.status == 200 and body == contents[name], (
                name, href, resp.status, body)
        # The link to the directory, then the file inside it.
        target = urllib.parse.urljoin("/hostile/", names[HOSTILE_DIR + "/"])
        resp, sub = fetch(target)
        assert resp.status == 200, (target, resp.status)
        sub_text = sub.decode("utf-8")
        assert "<script" not in sub_text, sub_text
        sp = LinkParser()
        sp.feed(sub_text)
        assert sp.h1 == "Index of /hostile/" + HOSTILE_DIR + "/", sp.h1
        files = [(h, t) for h, t in sp.links if t == HOSTILE_FILE]
        assert len(files) == 1, sp.links
        resp, body = fetch(urllib.parse.urljoin(target, files[0][0]))
        assert resp.status == 200 and body == secret, resp.status
        # The whole name, percent-encoded as a client would.
        resp, body = fetch("/hostile/" + urllib.parse.quote(
            HOSTILE_DIR + "/" + HOSTILE_FILE))
        assert resp.status == 200 and body == secret, resp.status
        # HEAD of a listing: its length, no body.
        conn.request("HEAD", "/hostile/")
        resp = conn.getresponse()
        assert resp.read() == b"" and \
            int(resp.getheader("Content-Length")) == len(page)
        conn.close()


# -- logs ---------------------------------------------------------------------

def test_access_log_combined_format():
    root = make_site()
    log = os.path.join(tempdir(), "access.log")
    with serve(root, "--access-log", log) as srv:
        ua, ref = "sockit-test/1.0 (\"quoted\")", "http://ref.example/page"
        u = url(srv, "/a.txt")
        etag = curl_response("-A", ua, "-e", ref, u).header("ETag")
        curl_response("-A", ua, u, head=True)
        nf = curl_response("-A", ua, url(srv, "/missing.txt"))
        curl_response("-A", ua, "-r", "2-5", u)
        curl_response("-A", ua, "-H", "If-None-Match: " + etag, u)
        raw_exchange(srv, b"GET /bad target HTTP/1.1\r\nHost: x\r\n\r\n")
        raw_exchange(srv, b'GET /q"uote HTTP/1.1\r\nHost: x\r\n'
                     b'Connection: close\r\n\r\n')
        want = [("GET /a.txt HTTP/1.1", 200, len(A_TXT)),
                ("HEAD /a.txt HTTP/1.1", 200, 0),
                ("GET /missing.txt HTTP/1.1", 404, len(nf.body)),
                ("GET /a.txt HTTP/1.1", 206, 4),
                ("GET /a.txt HTTP/1.1", 304, 0),
                (None, 400, None),
                ("GET /q\\x22uote HTTP/1.1", 404, None)]
        lines = read_log(log, len(want))
        assert len(lines) == len(want), lines
        for line, (request, status, size) in zip(lines, want):
            e = parse_clf(line)
            assert e["host"] == "127.0.0.1", line
            assert e["status"] == status, (line, status)
            if request is not None:
                assert e["request"] == request, (line, request)
            if size is not None:
                assert e["bytes"] == size, (line, size)
            assert e["user"] == "-" and e["ident"] == "-", line
        first = parse_clf(lines[0])
        assert first["referer"] == ref, lines[0]
        assert first["ua"] == ua.replace('"', "\\x22"), lines[0]
    assert srv.stdout_text() == "", srv.stdout_text()


def test_access_log_to_stdout():
    root = make_site()
    with serve(root, "--access-log", "-") as srv:
        assert curl_response(url(srv, "/a.txt")).status == 200
        assert curl_response(url(srv, "/nope")).status == 404
        assert srv.wait_stdout("/nope HTTP/1.1")
        lines = srv.stdout_text().splitlines()
        assert len(lines) == 2, lines
        assert [parse_clf(ln)["status"] for ln in lines] == [200, 404]
        assert parse_clf(lines[0])["bytes"] == len(A_TXT)
    assert "GET" not in srv.stderr_text(), srv.stderr_text()


# -- authentication -----------------------------------------------------------

def crypt_hash(password, prefix):
    """A crypt(3) hash of password of the kind prefix ($6$, $y$, $2b$), or
    None if neither Python's crypt nor openssl can make it here."""
    salt64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    rnd = "".join(salt64[b % 64] for b in os.urandom(22))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        setting = {"$6$": "$6$" + rnd[:16],
                   "$y$": "$y$j9T$" + rnd[:16],
                   "$2b$": "$2b$04$" + rnd}[prefix]
        h = crypt.crypt(password, setting)
        if h and h.startswith(prefix):
            return h
        return None
    except ImportError:
        pass
    if prefix == "$6$":
        r = run(["openssl", "passwd", "-6", "-stdin"],
                input=password.encode() + b"\n")
        if r.returncode == 0 and r.out.startswith("$6$"):
            return r.out.strip()
    return None


def basic(user, password):
    return "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()


def without_date(raw):
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\n", raw)


def test_basic_auth():
    root = make_site()
    d = tempdir()
    users = {"alice": "s3cret pass", "dave": "pa:ss:word"}
    lines = ["# sockit test users",
             "alice:" + crypt_hash(users["alice"], "$6$") + ":extra:fields",
             "dave:" + crypt_hash(users["dave"], "$6$")]
    kinds = ["$6$"]
    for user, prefix in (("bob", "$y$"), ("carol", "$2b$")):
        h = crypt_hash("pw-" + user, prefix)
        if h:  # libcrypt here may not know every kind
            users[user] = "pw-" + user
            lines.append("%s:%s" % (user, h))
            kinds.append(prefix)
    htpasswd = os.path.join(d, "htpasswd")
    with open(htpasswd, "w") as f:
        f.write("\n".join(lines) + "\n")
    log = os.path.join(d, "access.log")
    with serve(root, "--auth", htpasswd, "--access-log", log) as srv:
        u = url(srv, "/a.txt")
        r = curl_response(u)
        assert r.status == 401, r
        www = r.header("WWW-Authenticate")
        assert www and re.match(r'^Basic realm="[^"]*"', www), r
        assert A_TXT not in r.body, r
        for user, password in users.items():
            r = curl_response("-u", "%s:%s" % (user, password), u)
            assert r.status == 200 and r.body == A_TXT, (user, r)
        r = curl_response("-u", "alice:wrong", u)
        assert r.status == 401 and r.header("WWW-Authenticate") == www, r
        r = curl_response("-u", "mallory:" + users["alice"], u)
        assert r.status == 401, r
        # Wrong password and unknown user: the same answer but for Date.
        def ask(auth):
            resp = raw_exchange(srv, get("/a.txt", extra=(
                "Authorization: %s\r\nConnection: close\r\n" % auth)))
            assert len(resp) == 1, resp
            return resp[0]
        wrong = ask(basic("alice", "not it"))
        unknown = ask(basic("nobody", "not it"))
        assert wrong.status == unknown.status == 401
        assert without_date(wrong.raw) == without_date(unknown.raw), (
            wrong.raw, unknown.raw)
        for value in ("Basic !!!!", "Bearer abc", basic("alice", "")[:-2],
                      "Basic " + base64.b64encode(b"alice").decode(),
                      "Basic", "basic " + basic("alice", "x")[6:]):
            assert ask(value).status == 401, value
        # Auth is checked before the file: a missing file is 401 too.
        assert ask("x").status == 401
        r = curl_response("-u", "alice:" + users["alice"],
                          url(srv, "/missing"))
        assert r.status == 404, r
        # A 401 keeps the connection; the right credentials then work.
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("GET", "/a.txt")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 401
        conn.request("GET", "/a.txt",
                     headers={"Authorization": basic("alice",
                                                     users["alice"])})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == A_TXT
        conn.close()
        entries = [parse_clf(ln) for ln in read_log(log, 3 + len(users))]
        ok = [e for e in entries if e["status"] == 200]
        assert {e["user"] for e in ok} >= set(users), entries
        assert all(e["user"] == "-" for e in entries if e["status"] == 401)


def test_auth_file_errors():
    root = make_site()
    d = tempdir()
    good = crypt_hash("pw", "$6$")
    cases = [("no-colon", "alice\n", "no-colon:1"),
             ("plain", "#comment\nalice:" + good + "\nbob:plaintext\n",
              "plain:3"),
             ("empty", "", "no users"),
             ("comments", "# only a comment\n\n", "no users"),
             ("unknown-kind", "alice:$9$zzzz$abc\n", "alice"),
             ("no-user", ":" + good + "\n", "no-user:1")]
    for name, text, needle in cases:
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        r = run_client(["serve", "http", "--root", root, "--auth", path,
                        "tcp://127.0.0.1:0"], timeout=5)
        assert r.returncode == 2, (name, r)
        lines = r.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("sockit: "), (name, r)
        assert "--auth" in lines[0] and needle in lines[0], (name, lines)
        assert r.stdout == b"", r
    r = run_client(["serve", "http", "--root", root, "--auth",
                    os.path.join(d, "missing"), "tcp://127.0.0.1:0"],
                   timeout=5)
    assert r.returncode != 0 and "missing" in r.err, r
    assert "listening" not in r.err, r


# -- other clients and transports ---------------------------------------------

def test_unix_socket_with_curl():
    root = make_site()
    path = os.path.join(tempdir(), "http.sock")
    log = os.path.join(tempdir(), "access.log")
    with serve(root, "--access-log", log, addrs=["unix:" + path]):
        r = curl("--unix-socket", path, "http://localhost/a.txt")
        assert r.returncode == 0 and r.stdout == A_TXT, r
        r = curl("--unix-socket", path, "-I", "http://localhost/a.txt")
        assert r.out.startswith("HTTP/1.1 200"), r
        conn = UnixHTTPConnection(path)
        keep_alive_many(conn, 10)
        conn.close()
        for line in read_log(log, 12):
            assert parse_clf(line)["status"] == 200, line


def test_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        raise Skip("no IPv6 loopback")
    root = make_site()
    with serve(root, addrs=["tcp://[::1]:0"]) as srv:
        r = curl("-g", "http://[::1]:%d/a.txt" % srv.port)
        assert r.returncode == 0 and r.stdout == A_TXT, r


def test_wget_get_and_mirror():
    require("wget")
    tree = {
        "tree/index.txt": b"top of the tree\n",
        "tree/bin/data.bin": os.urandom(70000),
        "tree/bin/small.bin": os.urandom(100),
        "tree/docs/readme.md": b"# readme\n",
        "tree/docs/deeper/page.css": b"p{}\n",
        "tree/docs/deeper/deepest/leaf.json": b"[1,2,3]\n",
        "tree/with space.txt": b"spaced\n",
        "outside.txt": b"not below tree/: --no-parent leaves it\n",
    }
    root = make_site(tree)
    dest = tempdir()
    with serve(root, "--listing") as srv:
        r = run(["wget", "-q", "--no-proxy", "-O", "-",
                 url(srv, "/tree/index.txt")], timeout=15)
        assert r.returncode == 0 and r.stdout == tree["tree/index.txt"], r
        r = run(["wget", "-q", "--no-proxy", "-r", "--no-parent", "-nH",
                 "-e", "robots=off", "-P", dest, url(srv, "/tree/")],
                timeout=30)
        assert r.returncode == 0, r
    got = set()
    for top, _, files in os.walk(dest):
        for f in files:
            got.add(os.path.relpath(os.path.join(top, f), dest))
    for name, data in tree.items():
        if not name.startswith("tree/"):
            assert name not in got, "--no-parent fetched %s" % name
            continue
        assert name in got, "%s not mirrored (got %s)" % (name, sorted(got))
        with open(os.path.join(dest, name), "rb") as f:
            assert f.read() == data, "%s differs" % name
    extra = got - set(tree)
    # wget saves each listing page as index.html; nothing else.
    assert all(os.path.basename(x) == "index.html" for x in extra), extra
    assert all(x.startswith("tree/") for x in got), sorted(got)


# -- the core under every model -----------------------------------------------

def check_core(model):
    root = make_site()
    path = os.path.join(tempdir(), "m.sock")
    with serve(root, model=model,
               addrs=["tcp://127.0.0.1:0", "unix:" + path]) as srv:
        # Every connection is closed before the next one starts: the
        # iterative model serves one connection at a time.
        r = curl_response(url(srv, "/a.txt"))
        assert r.status == 200 and r.body == A_TXT, r
        h = curl_response(url(srv, "/a.txt"), head=True)
        assert h.status == 200 and h.body == b"" and \
            h.header("Content-Length") == str(len(A_TXT)), h
        assert curl_response(url(srv, "/nope.txt")).status == 404
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        keep_alive_many(conn, 20)
        conn.close()
        s, rf = connect(srv)
        pipeline_three(s, rf)
        s.sendall(get("/a.txt", extra="Connection: close\r\n"))
        assert read_http_response(rf).body == A_TXT
        assert closed_by_peer(rf)
        s.close()
        r = curl("--unix-socket", path, "http://localhost/data.json")
        assert r.returncode == 0 and r.stdout == SITE["data.json"], r
        conn = UnixHTTPConnection(path)
        keep_alive_many(conn, 10)
        conn.close()
        if model != "iterative":
            # Two clients at once, each with a keep-alive connection.
            c1 = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
            c2 = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
            keep_alive_many(c1, 3)
            keep_alive_many(c2, 3)
            keep_alive_many(c1, 3)
            c1.close()
            c2.close()


def _make(model):
    def test():
        check_core(model)
    test.__name__ = "test_core_%s" % model
    test.__module__ = __name__
    return test


for _model in MODELS:
    _t = _make(_model)
    globals()[_t.__name__] = _t
del _model, _t
