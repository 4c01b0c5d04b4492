"""The http service's open-file cache and the three ways a body leaves.

A served file stays open for 1 s (src/http/cache.c) with its validators;
a small one (up to 8 KiB) is read once into a copy sent after the head in
the same send(), up to 64 KiB it is mapped, beyond that it goes by
sendfile. These tests check every path with whole files, ranges, HEAD and
pipelined requests, and that a file changed on disk is served as it is once
its entry has expired: rewritten in place (new size and mtime), replaced by
rename, deleted. Within the second, a small file's response is always one
version of it: its body matches its Content-Length and ETag.
"""

import hashlib
import os
import socket
import time

from harness import Server, read_http_response

INLINE_MAX = 8 * 1024
MAP_MAX = 64 * 1024
TTL = 1.0  # SK_HTTP_CACHE_TTL_MS


def body(n, seed):
    """n bytes that differ from every other (n, seed)."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d-%s-%d" % (n, seed, i)).digest()
        i += 1
    return out[:n]


def make_root(files):
    from harness import tempdir
    root = os.path.join(tempdir(), "www")
    os.mkdir(root)
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    return root


def serve(root):
    return Server(["http", "--root", root, "tcp://127.0.0.1:0"])


def request(path, method="GET", extra=""):
    return ("%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (method, path, extra)).encode()


def exchange(srv, reqs, heads=()):
    """Send reqs pipelined in one write on one connection; read as many
    responses (heads: indexes of HEAD requests)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    rf = s.makefile("rb")
    try:
        s.sendall(b"".join(reqs))
        out = []
        for i in range(len(reqs)):
            r = read_http_response(rf, head=i in heads)
            assert r is not None, "response %d of %d missing" % (i, len(reqs))
            out.append(r)
        return out
    finally:
        rf.close()
        s.close()


def get_one(srv, path):
    return exchange(srv, [request(path)])[0]


SIZES = (1, 100, INLINE_MAX - 1, INLINE_MAX, INLINE_MAX + 1, MAP_MAX, MAP_MAX + 1,
         300 * 1024)


def test_every_body_path_whole_ranges_and_head_pipelined():
    files = {"f%d.bin" % n: body(n, b"v1") for n in SIZES}
    files["empty.bin"] = b""
    root = make_root(files)
    with serve(root) as srv:
        for name, data in files.items():
            n = len(data)
            reqs = [request("/" + name), request("/" + name, "HEAD"),
                    request("/" + name, extra="Range: bytes=0-0\r\n"),
                    request("/" + name, extra="Range: bytes=-%d\r\n" % max(1, n // 3)),
                    request("/" + name, extra="Range: bytes=%d-\r\n" % (n // 2)),
                    request("/" + name)]  # the cached entry, a second time
            got = exchange(srv, reqs, heads=(1,))
            whole, head, first, suffix, tail, again = got
            for r in (whole, again):
                assert r.status == 200 and r.body == data, (name, r.status, len(r.body))
                assert r.header("Content-Length") == str(n), (name, r)
            assert head.status == 200 and head.body == b"", (name, head)
            assert head.header("Content-Length") == str(n), (name, head)
            assert head.header("ETag") == whole.header("ETag"), (name, head)
            if n == 0:
                assert first.status == 416 and suffix.status == 416, (name, first, suffix)
                continue
            assert first.status == 206 and first.body == data[:1], (name, first)
            k = max(1, n // 3)
            assert suffix.status == 206 and suffix.body == data[n - k:], (name, suffix)
            assert suffix.header("Content-Range") == "bytes %d-%d/%d" % (n - k, n - 1, n)
            assert tail.status == 206 and tail.body == data[n // 2:], (name, tail)


def test_requests_split_and_joined_across_reads():
    # The server parses where it read and keeps only what is left over: a
    # request in pieces, whole requests followed by a piece of the next,
    # and a piece that completes one request and starts another.
    small = body(500, b"s")
    root = make_root({"s.bin": small})
    with serve(root) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        rf = s.makefile("rb")
        try:
            r = request("/s.bin")
            s.sendall(r + r + r[:9])
            for _ in range(2):
                resp = read_http_response(rf)
                assert resp.status == 200 and resp.body == small, resp
            time.sleep(0.05)  # let the piece arrive alone
            s.sendall(r[9:20])
            time.sleep(0.05)
            s.sendall(r[20:] + r[:5])
            resp = read_http_response(rf)
            assert resp.status == 200 and resp.body == small, resp
            s.sendall(r[5:])
            resp = read_http_response(rf)
            assert resp.status == 200 and resp.body == small, resp
        finally:
            rf.close()
            s.close()


def consistent(resp, versions):
    """resp is exactly one of versions (body, etag) pairs: which one."""
    for i, (data, etag) in enumerate(versions):
        if resp.body == data and resp.header("ETag") == etag:
            assert resp.header("Content-Length") == str(len(data)), resp
            return i
    raise AssertionError("a mix of versions: %d bytes, ETag %s, Content-Length %s"
                         % (len(resp.body), resp.header("ETag"),
                            resp.header("Content-Length")))


def rewrite_in_place(path, data, mtime):
    """New content in the same inode (no rename): truncate and write."""
    ino = os.stat(path).st_ino
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data)
    os.utime(path, (mtime, mtime))
    assert os.stat(path).st_ino == ino


def test_file_rewritten_in_place_new_size_and_mtime():
    # Every body path: afterwards the new version with its own
    # Content-Length, ETag and Last-Modified. Within the cache's second a
    # small file is the old version whole (its copy is a snapshot, never the
    # new bytes under the old length or validators).
    for n in (100, INLINE_MAX, MAP_MAX, 300 * 1024):
        old, new = body(n, b"old"), body(n + 77, b"new")
        name = "f.bin"
        root = make_root({name: old})
        path = os.path.join(root, name)
        os.utime(path, (1500000000, 1500000000))
        with serve(root) as srv:
            first = get_one(srv, "/" + name)
            assert first.status == 200 and first.body == old, (n, first)
            old_etag = first.header("ETag")
            rewrite_in_place(path, new, 1600000000)
            soon = get_one(srv, "/" + name)
            if n <= INLINE_MAX:  # a copy; a mapping or sendfile reads the file as it is now
                versions = [(old, old_etag)]
                if soon.header("ETag") != old_etag:  # the second had passed
                    versions = [(new, soon.header("ETag"))]
                consistent(soon, versions)
            time.sleep(TTL + 0.3)
            later = get_one(srv, "/" + name)
            assert later.status == 200 and later.body == new, (n, len(later.body))
            assert later.header("Content-Length") == str(len(new)), later
            assert later.header("ETag") != old_etag, later
            assert later.header("Last-Modified") == "Sun, 13 Sep 2020 12:26:40 GMT", later


def test_file_replaced_by_rename_and_deleted():
    for n in (100, INLINE_MAX + 1, MAP_MAX + 1):
        old, new = body(n, b"old"), body(n // 2 + 1, b"new")
        root = make_root({"f.bin": old})
        path = os.path.join(root, "f.bin")
        with serve(root) as srv:
            first = get_one(srv, "/f.bin")
            assert first.body == old, n
            with open(path + ".tmp", "wb") as f:
                f.write(new)
            os.rename(path + ".tmp", path)
            # Until the entry expires, the file as it was when opened.
            soon = get_one(srv, "/f.bin")
            consistent(soon, [(old, first.header("ETag")), (new, soon.header("ETag"))])
            time.sleep(TTL + 0.3)
            later = get_one(srv, "/f.bin")
            assert later.status == 200 and later.body == new, (n, len(later.body))
            assert later.header("Content-Length") == str(len(new)), later
            os.unlink(path)
            time.sleep(TTL + 0.3)
            assert get_one(srv, "/f.bin").status == 404, n
