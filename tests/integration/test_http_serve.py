"""The http service's first hour: what a person trying `sockit serve http`
meets. If-Range (RFC 9110 13.1.5) with curl and raw requests; a bare LF as a
line end (RFC 9112 2.2) with nc, nc -C and curl; the start line that says
where the files are served, -v request lines, the 403 page for a directory
without index, the listing (sizes, times, nothing it would refuse); the
service's own --help, and the hint for a directory given as an address.
"""

import email.utils
import os
import re
import socket
import subprocess

from harness import (Server, read_http_response, require, run, run_client,
                     tempdir)

A_TXT = b"0123456789abcdefghij\n"
OLD = 1700000000  # a fixed modification time, well in the past


def make_root():
    root = os.path.join(tempdir(), "www")
    os.makedirs(os.path.join(root, "sub"))
    path = os.path.join(root, "a.txt")
    with open(path, "wb") as f:
        f.write(A_TXT)
    os.utime(path, (OLD, OLD))
    with open(os.path.join(root, "sub", "b.txt"), "wb") as f:
        f.write(b"bee\n")
    return root


def serve(root, *opts, addrs=("tcp://127.0.0.1:0",)):
    return Server(["http", "--root", root] + list(opts) + list(addrs))


def curl(*args):
    require("curl")
    return run(["curl", "-sS", "--noproxy", "*", "--max-time", "10"]
               + list(args), timeout=15)


def raw(srv, data, timeout=5):
    """Send data, read until the server closes; returns the bytes."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def one_response(data):
    import io
    return read_http_response(io.BytesIO(data))


# -- If-Range -----------------------------------------------------------------

def test_if_range_with_curl():
    root = make_root()
    with serve(root) as srv:
        u = "http://127.0.0.1:%d/a.txt" % srv.port
        head = curl("-sI", u).stdout.decode()
        etag = re.search(r"(?im)^etag: (\S+)\r?$", head).group(1)
        lastmod = re.search(r"(?im)^last-modified: (.+?)\r?$", head).group(1)
        assert email.utils.parsedate_to_datetime(lastmod).timestamp() == OLD

        def get(*extra):
            r = curl("-r", "0-9", "-w", "\n%{http_code}", *extra, u)
            assert r.returncode == 0, r
            body, _, code = r.stdout.rpartition(b"\n")
            return int(code), body

        # No If-Range: the range.
        assert get() == (206, A_TXT[:10])
        # A validator that no longer matches: the whole file, 200.
        assert get("-H", 'If-Range: "old-etag"') == (200, A_TXT)
        # The current entity tag: the range.
        assert get("-H", "If-Range: " + etag) == (206, A_TXT[:10])
        # A weak tag never matches (strong comparison).
        assert get("-H", "If-Range: W/" + etag) == (200, A_TXT)
        # The Last-Modified date exactly: the range; another date: all.
        assert get("-H", "If-Range: " + lastmod) == (206, A_TXT[:10])
        wrong = email.utils.formatdate(OLD - 1, usegmt=True)
        assert get("-H", "If-Range: " + wrong) == (200, A_TXT)
        # Not a validator at all: the whole file.
        assert get("-H", "If-Range: yesterday") == (200, A_TXT)


def test_if_range_raw_and_fresh_files():
    root = make_root()
    fresh = os.path.join(root, "fresh.txt")
    with serve(root) as srv:
        def ask(path, if_range):
            req = ("GET %s HTTP/1.1\r\nHost: x\r\nRange: bytes=2-4\r\n"
                   "If-Range: %s\r\nConnection: close\r\n\r\n"
                   % (path, if_range)).encode()
            return one_response(raw(srv, req))

        r = ask("/a.txt", '"nope"')
        assert r.status == 200 and r.body == A_TXT, r
        r = ask("/a.txt", email.utils.formatdate(OLD, usegmt=True))
        assert r.status == 206 and r.body == A_TXT[2:5], r
        # A file modified this very second: its Last-Modified is a weak
        # validator (RFC 9110 8.8.2.2), so a date never matches it, while
        # its entity tag does.
        with open(fresh, "wb") as f:
            f.write(A_TXT)
        now = int(os.stat(fresh).st_mtime) + 3600
        os.utime(fresh, (now, now))  # "in the future": never a second older
        r = ask("/fresh.txt", email.utils.formatdate(now, usegmt=True))
        assert r.status == 200 and r.body == A_TXT, r
        etag = one_response(raw(srv, b"GET /fresh.txt HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: close\r\n\r\n")).header("ETag")
        r = ask("/fresh.txt", etag)
        assert r.status == 206 and r.body == A_TXT[2:5], r


# -- bare LF ------------------------------------------------------------------

def test_bare_lf_with_nc_and_curl():
    require("nc")
    root = make_root()
    with serve(root) as srv:
        port = str(srv.port)
        req = b"GET /a.txt HTTP/1.1\nHost: x\nConnection: close\n\n"

        def nc(*flags):
            r = run(["nc", "-q", "5", "-w", "5"] + list(flags)
                    + ["127.0.0.1", port], input=req, timeout=10)
            return one_response(r.stdout)

        lf = nc()      # bare LF, as typed into printf
        crlf = nc("-C")  # nc -C turns each LF into CR LF
        assert crlf.status == 200 and crlf.body == A_TXT, crlf
        assert lf.status == 200 and lf.body == A_TXT, lf
        r = curl("http://127.0.0.1:%s/a.txt" % port)
        assert r.returncode == 0 and r.stdout == A_TXT, r
        # Pipelined, mixed line ends, a leading empty line: two answers.
        out = raw(srv, b"\nGET /a.txt HTTP/1.1\nHost: x\r\n\n"
                       b"GET /sub/b.txt HTTP/1.1\r\nHost: x\nConnection: close\n\n")
        assert out.count(b"HTTP/1.1 200 OK") == 2, out
        assert out.endswith(b"bee\n"), out


def test_bare_cr_and_hidden_fields_still_refused():
    root = make_root()
    with serve(root) as srv:
        # A bare CR is no line end: 400, and the connection closes.
        for req in (b"GET /a.txt HTTP/1.1\rHost: x\r\n\r\n",
                    b"GET /a.txt HTTP/1.1\nHost: x\rX: y\n\n",
                    b"GET /a.txt HTTP/1.1\nHost: x\n\r\r\n"):
            r = one_response(raw(srv, req))
            assert r.status == 400, (req, r)
        # A bare LF never hides a field: Transfer-Encoding on its own line
        # is seen, so this GET has a chunked body (refused, then closed) and
        # the smuggled request behind it is never answered.
        out = raw(srv, b"GET /a.txt HTTP/1.1\nHost: x\nX: a\n"
                       b"Transfer-Encoding: chunked\n\n"
                       b"0\r\n\r\nGET /sub/b.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 400 "), out
        assert out.count(b"HTTP/1.1") == 1 and b"bee" not in out, out
        # Two Content-Lengths, one after a bare LF: refused.
        r = one_response(raw(srv, b"GET / HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: 1\nContent-Length: 2\r\n\r\n"))
        assert r.status == 400, r


# -- where it serves ----------------------------------------------------------

def test_start_line_and_request_lines():
    root = make_root()
    sock = os.path.join(tempdir(), "www.sock")
    # A root written with a detour: the start line shows the real directory.
    detour = os.path.join(root, "sub", "..")
    with serve(detour, "-v", addrs=("tcp://127.0.0.1:0", "unix:" + sock)) as srv:
        real = os.path.realpath(root)
        # Printed once every listener is open, after the "listening" lines.
        assert srv.wait_stderr("sockit: serving %s at unix:%s\n" % (real, sock)), (
            srv.stderr_text())
        err = srv.stderr_text()
        assert ("sockit: serving %s at http://127.0.0.1:%d/" % (real, srv.port)
                in err.splitlines()), err
        r = curl("http://127.0.0.1:%d/a.txt" % srv.port)
        assert r.returncode == 0 and r.stdout == A_TXT, r
        r = curl("http://127.0.0.1:%d/nope" % srv.port)
        line = 'sockit: 127.0.0.1 "GET /a.txt HTTP/1.1" 200 %d' % len(A_TXT)
        assert srv.wait_stderr(line), srv.stderr_text()
        assert srv.wait_stderr('sockit: 127.0.0.1 "GET /nope HTTP/1.1" 404 '), (
            srv.stderr_text())
        r = curl("--unix-socket", sock, "http://x/sub/b.txt")
        assert r.returncode == 0 and r.stdout == b"bee\n", r
    # Without -v: the start line, no request lines; -q: neither.
    with serve(root) as srv:
        curl("http://127.0.0.1:%d/a.txt" % srv.port)
        assert srv.wait_stderr("sockit: serving %s at http://127.0.0.1:%d/\n" % (
            os.path.realpath(root), srv.port)), srv.stderr_text()
        assert "GET" not in srv.stderr_text(), srv.stderr_text()
    with serve(root, "-q") as srv:
        r = curl("http://127.0.0.1:%d/a.txt" % srv.port)
        assert r.returncode == 0, r  # served, so past the start line
        assert "serving" not in srv.stderr_text(), srv.stderr_text()


def test_directory_without_index_says_why():
    root = make_root()
    with serve(root) as srv:
        r = curl("-w", "\n%{http_code}", "http://127.0.0.1:%d/sub/" % srv.port)
        body, _, code = r.stdout.rpartition(b"\n")
        assert code == b"403", r
        assert (b"no index.html here, and directory listing is off (--listing)"
                in body), body
    with serve(root, "--index", "home.htm") as srv:
        r = curl("http://127.0.0.1:%d/" % srv.port)
        assert b"no home.htm here" in r.stdout, r


def test_listing_details_and_refusals():
    root = make_root()
    os.symlink("/etc/passwd", os.path.join(root, "out-link"))
    os.symlink("a.txt", os.path.join(root, "in-link"))
    os.mkfifo(os.path.join(root, "fifo"))
    secret = os.path.join(root, "secret.txt")
    with open(secret, "w") as f:
        f.write("x")
    os.chmod(secret, 0)
    with serve(root, "--listing") as srv:
        r = curl("http://127.0.0.1:%d/" % srv.port)
        text = r.stdout.decode()
        assert '<a href="./a.txt">a.txt</a> (%d bytes, 2023-11-14 22:13 UTC)' % (
            len(A_TXT)) in text, text
        assert '<a href="./sub/">sub/</a> (directory, ' in text, text
        assert '<a href="./in-link">in-link</a> (%d bytes, ' % len(A_TXT) in text
        for hidden in ("out-link", "fifo"):
            assert hidden not in text, (hidden, text)
        if os.geteuid() != 0:  # root reads a mode-0 file: then it is served
            assert "secret.txt" not in text, text
        # What the listing hides is indeed refused.
        for name in ("out-link", "fifo"):
            r = curl("-o", "/dev/null", "-w", "%{http_code}",
                     "http://127.0.0.1:%d/%s" % (srv.port, name))
            assert r.stdout == b"403", (name, r)


# -- the command line ---------------------------------------------------------

def test_service_help():
    r = run_client(["serve", "http", "--help"])
    assert r.returncode == 0 and r.err == "", r
    for opt in ("--root DIR", "--index NAME", "--listing", "--auth FILE",
                "--access-log FILE|-", "--model", "--idle-timeout"):
        assert opt in r.out, (opt, r.out)
    r = run_client(["serve", "echo", "--help"])
    assert r.returncode == 0 and "--model" in r.out, r
    assert "--root" not in r.out and "--listing" not in r.out, r.out
    r = run_client(["serve", "--help"])
    assert r.returncode == 0 and "http" in r.out and "--root" in r.out, r


def test_options_belong_to_their_service():
    for args, word in ((["echo", "--listing"], "--listing"),
                       (["--access-log", "-", "discard"], "--access-log"),
                       (["stdio", "--root", "/tmp"], "--root")):
        r = run_client(["serve"] + args + ["tcp://127.0.0.1:0"])
        assert r.returncode == 2, r
        assert r.err == "sockit: %s is an option of the http service, not of %s\n" % (
            word, [a for a in args if not a.startswith("-") and a not in
                   ("/tmp",)][0]), r
    r = run_client(["serve", "http", "--listing=yes", "tcp://127.0.0.1:0"])
    assert r.returncode == 2 and "--listing" in r.err, r


def test_directory_given_as_address():
    d = tempdir()
    r = run_client(["serve", "http", d])
    assert r.returncode == 2, r
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('sockit: bad address "%s": '
                                                   % d), r
    assert lines[0].endswith("(to serve a directory: sockit serve http --root "
                             "%s PORT)" % d), r
    # Not a directory, or a service without one: no hint.
    r = run_client(["serve", "echo", d])
    assert r.returncode == 2 and "--root" not in r.err, r
    r = run_client(["serve", "http", "nosuchdir"])
    assert r.returncode == 2 and "--root" not in r.err, r
