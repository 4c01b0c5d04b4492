"""File transfer: the receiver's splice path (src/services/recv_splice.c).

A raw chunk of 64 KiB or more is spliced socket -> pipe -> .part, with its
frame heads read exactly; these tests send through it with every frame cut
at an awkward place (so that a head arrives in pieces and a splice takes
part of a chunk), with files of a chunk and a byte more or less, with a
write limit reached in the middle of a splice, and under every event model
(io_uring's completion path does not call read hooks: it copies, and must
store the same bytes).
"""

import os
import resource
import signal
import socket
import subprocess
import time

import xfer_py
from harness import SOCKIT, Server, require_model, start, timeout
from test_xfer import parts, rand, read, recv_server, send, shm_dir, write

CHUNK = 1 << 16  # the smallest chunk the splice path takes
HEAD = 5 + 13 + xfer_py.HL  # a CHUNK frame's head: frame head + chunk head


class Cutting:
    """A socket whose sendall cuts each frame in three at offsets that move
    from frame to frame (through every byte of a chunk's head, then into its
    data), pausing between the pieces so that the receiver reads each alone."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.n = 0

    def sendall(self, b):
        if len(b) < 2:
            return self.sock.sendall(b)
        cut1 = 1 + self.n % min(HEAD + 1, len(b) - 1)
        cut2 = min(len(b), cut1 + 1 + (self.n * 4099) % CHUNK)
        self.n += 1
        for piece in (b[:cut1], b[cut1:cut2], b[cut2:]):
            if piece:
                self.sock.sendall(piece)
                time.sleep(0.002)

    def recv(self, n):
        return self.sock.recv(n)


@timeout(120)
def test_frames_cut_at_every_offset_of_the_chunk_head():
    dest = shm_dir()
    sizes = {"less": CHUNK - 1, "one": CHUNK, "more": CHUNK + 1,
             "many": (HEAD + 2) * CHUNK + 1}
    files = [(n, rand(k, i), 0o644, 1_600_000_000 + i)
             for i, (n, k) in enumerate(sizes.items())]
    with recv_server(dest) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        out = xfer_py.send(Cutting(s), files, chunk=CHUNK)
        s.close()
    assert [c for _, c, _ in out] == [0] * len(files), out
    for name, data, _, _ in files:
        assert read(os.path.join(dest, name)) == data, name
    assert parts(dest) == []


@timeout(60)
def test_corrupt_chunk_on_the_splice_path_is_not_stored():
    dest = shm_dir()
    with recv_server(dest) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        out = xfer_py.send(s, [("bad", rand(5 * CHUNK + 7, 3), 0o644, 0),
                               ("good", rand(2 * CHUNK, 4), 0o644, 0)],
                           chunk=CHUNK, corrupt=3)
        s.close()
    assert [c for _, c, _ in out] == [25, 0], out
    assert not os.path.exists(os.path.join(dest, "bad"))
    assert read(os.path.join(dest, "good")) == rand(2 * CHUNK, 4)


@timeout(60)
def test_write_limit_in_the_middle_of_a_splice():
    """RLIMIT_FSIZE (SIGXFSZ ignored by the server) reached part way into a
    splice: the first bytes are written, then EFBIG: a clean refusal, the
    .part removed, the server alive and the next file stored."""
    src, dest = shm_dir(), shm_dir()
    limit = 2 * (1 << 20) + 12345
    write(os.path.join(src, "big"), rand(3 << 20, 5))
    write(os.path.join(src, "small"), rand(CHUNK * 2, 6))

    def set_limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    p = start([SOCKIT, "serve", "recv", "-v", "--dir", dest, "127.0.0.1:0"],
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
              preexec_fn=set_limit)
    try:
        port = int(p.stderr.readline().decode().rsplit(":", 1)[1])
        r = send(port, os.path.join(src, "big"), os.path.join(src, "small"))
        assert r.returncode == 1 and "refused big: disk full" in r.err, r
        assert "File too large" in r.err, r
        assert p.poll() is None, "the server died"
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    assert not os.path.exists(os.path.join(dest, "big"))
    assert read(os.path.join(dest, "small")) == rand(CHUNK * 2, 6)
    assert parts(dest) == []


@timeout(120)
def test_every_event_model_stores_the_same_bytes():
    src = shm_dir()
    data = rand(3 * (1 << 20) + 1, 7)
    write(os.path.join(src, "f"), data)
    for model in ("epoll", "thread", "uring"):
        if model == "uring":
            require_model("uring")
        dest = shm_dir()
        with Server(["recv", "--model", model, "--dir", dest, "127.0.0.1:0"]) as srv:
            r = send(srv.port, os.path.join(src, "f"))
            assert r.returncode == 0, (model, r)
        assert read(os.path.join(dest, "f")) == data, model
        assert parts(dest) == [], model
