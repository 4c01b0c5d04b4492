"""File transfer: `sockit send` to `sockit serve recv` (docs/PROTOCOL.md).

Files of every awkward size and a tree of 2,000 files compared byte for byte;
a relay that flips one byte; kill -9 of either side and a resume that sends
little; names that try to leave --dir; a full disk; two senders of one name;
--overwrite; other protocol versions; a Python implementation of the
protocol against the C one both ways; progress on a pseudo-terminal.
"""

import json
import os
import pty
import random
import resource
import select
import signal
import socket
import struct
import subprocess
import threading
import time

import harness
import xfer_py
from harness import (SOCKIT, Server, run, run_client, start, tempdir,
                     timeout)

CHUNK = 1 << 20


def rand(n, seed=1):
    return random.Random(seed).randbytes(n)


def write(path, data, mode=0o644, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def shm_dir():
    """A directory on a tmpfs when there is one: thousands of fsyncs cost
    nothing there (the suite stays fast on a busy disk)."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        import tempfile
        d = tempfile.mkdtemp(prefix="skit-xfer-", dir="/dev/shm")
        harness._tempdirs.append(d)
        return d
    return tempdir()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def recv_server(dest, *extra):
    return Server(["recv", "-v", "--dir", dest] + list(extra) +
                  ["127.0.0.1:0"])


def send(srv_port, *args, timeout_s=30):
    return run_client(["send"] + list(args) + ["127.0.0.1", str(srv_port)],
                      timeout=timeout_s)


def parts(dest):
    """Partial files left anywhere under dest."""
    out = []
    for d, _, files in os.walk(dest):
        out += [os.path.join(d, f) for f in files if ".part" in f]
    return out


class Proxy(threading.Thread):
    """A TCP relay to a target on 127.0.0.1 that counts the bytes the client
    sends, and can flip one byte at offset flip_at, or stop forwarding the
    client's bytes after hold_after of them."""

    def __init__(self, target, flip_at=None, hold_after=None):
        super().__init__(daemon=True)
        self.target = target
        self.flip_at = flip_at
        self.hold_after = hold_after
        self.up = 0
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [c, s]
            threading.Thread(target=self.pump, args=(c, s, True),
                             daemon=True).start()
            threading.Thread(target=self.pump, args=(s, c, False),
                             daemon=True).start()

    def pump(self, src, dst, upstream):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if upstream:
                    if self.hold_after is not None and \
                            self.up + len(b) > self.hold_after:
                        b = b[:max(0, self.hold_after - self.up)]
                        if b:
                            dst.sendall(b)
                            self.up += len(b)
                        time.sleep(60)  # hold: the test kills someone
                        return
                    if self.flip_at is not None and \
                            self.up <= self.flip_at < self.up + len(b):
                        i = self.flip_at - self.up
                        b = b[:i] + bytes([b[i] ^ 0x40]) + b[i + 1:]
                    self.up += len(b)
                dst.sendall(b)
        except OSError:
            return

    def close(self):
        self.lsock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv, sends FIN
                c.close()
            except OSError:
                pass


# -- files and trees ------------------------------------------------------

@timeout(60)
def test_sizes_byte_for_byte():
    src, dest = tempdir(), tempdir()
    sizes = {"empty": 0, "one": 1, "chunk_less": CHUNK - 1, "chunk": CHUNK,
             "chunk_more": CHUNK + 1, "big": 64 << 20}
    # Modes the receiver's umask (022 or 002) would cut (0o666) or that need
    # chmod (set-group-id, read-only) as well as plain ones: small files are
    # created with their final mode when they can be, chmod-ed otherwise.
    modes = [0o600, 0o640, 0o666, 0o2750, 0o444, 0o755]
    for i, (name, n) in enumerate(sizes.items()):
        write(os.path.join(src, name), rand(n, i), modes[i], 1_600_000_000 + i)
    with recv_server(dest) as srv:
        r = send(srv.port, *[os.path.join(src, n) for n in sizes])
        assert r.returncode == 0, r
        assert "sent 6 files, 67.0 MiB" in r.err and "all verified" in r.err, r.err
        assert srv.wait_stderr("received 6 entries"), srv.stderr_text()
    for i, name in enumerate(sizes):
        a, b = os.path.join(src, name), os.path.join(dest, name)
        assert read(a) == read(b), name
        sa, sb = os.stat(a), os.stat(b)
        assert sb.st_mode == sa.st_mode and sb.st_mtime_ns == sa.st_mtime_ns
    assert parts(dest) == []


@timeout(60)
def test_tree_of_2000_files_with_symlinks():
    src, dest = shm_dir(), shm_dir()
    top = os.path.join(src, "proj")
    for i in range(2000):
        write(os.path.join(top, "d%02d" % (i % 40), "f%04d" % i),
              rand(i % 700, i), 0o644, 1_500_000_000 + i)
    os.makedirs(os.path.join(top, "empty", "deeper"))
    os.utime(os.path.join(top, "empty"), (1_400_000_000, 1_400_000_000))
    os.chmod(os.path.join(top, "d01"), 0o750)
    os.symlink("../d00/f0000", os.path.join(top, "d01", "inside"))
    os.symlink("/etc/passwd", os.path.join(top, "abs"))
    os.symlink("../../outside", os.path.join(top, "d02", "escape"))
    with recv_server(dest) as srv:
        # Options after the paths, too.
        r = run_client(["send", top, "127.0.0.1", str(srv.port), "-r"],
                       timeout=60)
    assert r.returncode == 1, r
    assert "refused proj/abs" in r.err and "refused proj/d02/escape" in r.err
    assert "2 entries refused: proj/abs, proj/d02/escape" in r.err, r.err
    assert "sent 2000 files and 44 directories and symlinks" in r.err, r.err
    for i in range(2000):
        rel = os.path.join("proj", "d%02d" % (i % 40), "f%04d" % i)
        a, b = os.path.join(src, rel), os.path.join(dest, rel)
        assert read(a) == read(b), rel
        assert os.stat(b).st_mtime_ns == os.stat(a).st_mtime_ns
    got = os.path.join(dest, "proj")
    assert os.path.isdir(os.path.join(got, "empty", "deeper"))
    assert os.stat(os.path.join(got, "empty")).st_mtime == 1_400_000_000
    assert os.stat(os.path.join(got, "d01")).st_mode & 0o777 == 0o750
    assert os.readlink(os.path.join(got, "d01", "inside")) == "../d00/f0000"
    assert not os.path.lexists(os.path.join(got, "abs"))
    assert not os.path.lexists(os.path.join(got, "d02", "escape"))


def test_directory_changes_keep_every_descriptor_accounted():
    """The receiver keeps one directory open and lends it to the files in
    it; when the tree moves on to another directory while files of the old
    one still wait for their data (a batch spans many directories, a large
    file holds its own part and journal), the old descriptor stays open
    until the last of them ends. Three transfers of the same tree (the later
    ones overwrite) end with the server holding as many descriptors as
    before, and every file intact."""
    src, dest = shm_dir(), shm_dir()
    top = os.path.join(src, "t")
    names = []
    for d in range(30):
        for i in range(5):
            size = 2 * CHUNK + 5 if (d % 7 == 3 and i == 2) else (d * 5 + i) * 37
            rel = os.path.join("t", "d%02d" % d, "f%d" % i)
            write(os.path.join(src, rel), rand(size, d * 5 + i))
            names.append(rel)
    with recv_server(dest) as srv:
        before = None  # counted once the first transfer is over (the loop's own are open)
        for k in range(3):
            args = ["-r", top] + (["--overwrite"] if k else [])
            r = send(srv.port, *args)
            assert r.returncode == 0, r
            if before is None:
                time.sleep(0.2)
                before = harness.fd_count(srv.pid)
            assert harness.poll_until(lambda: harness.fd_count(srv.pid) == before), \
                (k, before, harness.fd_count(srv.pid))
    for rel in names:
        assert read(os.path.join(src, rel)) == read(os.path.join(dest, rel)), rel
    assert parts(dest) == []


def test_stdin_sha256_and_compression():
    dest = tempdir()
    data = b"compressible line of text\n" * 200000
    with recv_server(dest) as srv:
        r = run_client(["send", "--compress", "--hash", "sha256", "--name",
                        "sub/in.txt", "-", "127.0.0.1", str(srv.port)],
                       input=data, timeout=30)
        assert r.returncode == 0, r
        assert srv.wait_stderr("stored sub/in.txt"), srv.stderr_text()
        assert "(sha256)" in srv.stderr_text()
    assert read(os.path.join(dest, "sub", "in.txt")) == data
    # Compression shrinks what crosses the wire, and only when asked.
    src = tempdir()
    write(os.path.join(src, "text"), data)
    with recv_server(dest) as srv:
        for opt, small in (("--compress", True), ("--no-resume", False)):
            p = Proxy(srv.port)
            r = send(p.port, opt, "--overwrite", os.path.join(src, "text"))
            p.close()
            assert r.returncode == 0, r
            assert (p.up < len(data) // 10) == small, (opt, p.up)
    assert read(os.path.join(dest, "text")) == data


def test_usage_errors():
    for args, needle in ((["send"], "usage"),
                         (["send", "-", "127.0.0.1:1"], "--name"),
                         (["send", "--hash", "md5", "x", "1"], "--hash"),
                         (["send", "--progress=fancy", "x", "1"], "--progress")):
        r = run_client(args)
        assert r.returncode == 2 and needle in r.err, r


def test_not_a_recv_service():
    src = tempdir()
    write(os.path.join(src, "f"), b"x")
    with Server(["echo", "127.0.0.1:0"]) as srv:
        r = send(srv.port, os.path.join(src, "f"))
        assert r.returncode == 1 and "not a sockit recv service" in r.err, r
    with Server(["discard", "127.0.0.1:0"]) as srv:
        r = send(srv.port, "-w", "0.5", os.path.join(src, "f"))
        assert r.returncode == 1 and "no answer from the receiver" in r.err, r


def test_directory_without_r_is_refused_by_the_sender():
    src, dest = tempdir(), tempdir()
    write(os.path.join(src, "ok"), b"fine")
    # A directory where a file is named is refused here, before sending.
    os.makedirs(os.path.join(src, "adir"))
    with recv_server(dest) as srv:
        r = send(srv.port, os.path.join(src, "adir"), os.path.join(src, "ok"))
    assert r.returncode == 1 and "refused adir: is a directory (send -r" in r.err, r
    assert read(os.path.join(dest, "ok")) == b"fine"


def test_max_size_and_overwrite():
    src, dest = tempdir(), tempdir()
    write(os.path.join(src, "small"), b"v1")
    write(os.path.join(src, "large"), rand(5000))
    with recv_server(dest, "--max-size=4K") as srv:
        r = send(srv.port, os.path.join(src, "small"), os.path.join(src, "large"))
        assert r.returncode == 1 and "refused large" in r.err, r
        assert "--max-size" in r.err
        assert read(os.path.join(dest, "small")) == b"v1"
        write(os.path.join(src, "small"), b"version 2")
        r = send(srv.port, os.path.join(src, "small"))
        assert r.returncode == 1 and "exists" in r.err, r
        assert read(os.path.join(dest, "small")) == b"v1"
        r = send(srv.port, "--overwrite", os.path.join(src, "small"))
        assert r.returncode == 0, r
    assert read(os.path.join(dest, "small")) == b"version 2"
    assert not os.path.exists(os.path.join(dest, "large"))
    assert parts(dest) == []


# -- integrity and resume ---------------------------------------------------

def test_corrupting_relay_is_detected():
    src, dest = tempdir(), tempdir()
    write(os.path.join(src, "f"), rand(3 * CHUNK))
    with recv_server(dest) as srv:
        p = Proxy(srv.port, flip_at=CHUNK + 5000)  # inside the data of chunk 1
        r = send(p.port, os.path.join(src, "f"))
        p.close()
        assert r.returncode == 1, r
        assert "corrupted in transit" in r.err, r.err
    assert not os.path.exists(os.path.join(dest, "f"))


def wait_journal(dest, name, chunks, hl=16, timeout_s=10):
    j = os.path.join(dest, ".%s.part.journal" % name)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.exists(j) and os.path.getsize(j) >= 36 + chunks * hl:
            return
        time.sleep(0.02)
    raise AssertionError("journal never reached %d chunks" % chunks)


def resume_case(kill_receiver):
    src, dest = tempdir(), tempdir()
    size = 12 * CHUNK + 777
    data = rand(size, 7)
    write(os.path.join(src, "f"), data)
    srv = recv_server(dest)
    p = Proxy(srv.port, hold_after=7 * CHUNK)
    sender = start([SOCKIT, "send", "--progress=none", os.path.join(src, "f"),
                    "127.0.0.1", str(p.port)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_journal(dest, "f", 6)
    if kill_receiver:
        srv.proc.kill()
        srv.proc.wait(5)
        srv.kill()
    os.kill(sender.pid, signal.SIGKILL)
    sender.wait(5)
    p.close()
    assert not os.path.exists(os.path.join(dest, "f"))
    if not kill_receiver:
        srv.stop()
    srv = recv_server(dest)
    with srv:
        counter = Proxy(srv.port)
        r = send(counter.port, "--progress=json", os.path.join(src, "f"))
        assert r.returncode == 0, r
        assert "sent now" in r.err, r.err
        # Progress counts the resumed bytes as done from the first line on.
        lines = [json.loads(x) for x in r.out.splitlines()]
        assert lines[0]["status"] == "sending" and lines[0]["bytes"] > 6 * CHUNK, lines[0]
        assert lines[-1] == {"file": "f", "bytes": size, "size": size,
                             "status": "stored"}, lines[-1]
        # Resumed: less than the missing part plus one chunk went over the wire.
        assert counter.up < size - 6 * CHUNK + CHUNK, counter.up
        counter.close()
    assert read(os.path.join(dest, "f")) == data
    assert parts(dest) == []


@timeout(40)
def test_resume_after_kill_9_of_the_sender():
    resume_case(kill_receiver=False)


@timeout(40)
def test_resume_after_kill_9_of_the_receiver():
    resume_case(kill_receiver=True)


def test_changed_source_starts_over_and_no_resume():
    src, dest = tempdir(), tempdir()
    data = rand(4 * CHUNK, 3)
    write(os.path.join(src, "f"), data, mtime=1_600_000_000)
    # A part and journal as a cut transfer of another version of f leaves them.
    with recv_server(dest) as srv:
        p = Proxy(srv.port, hold_after=3 * CHUNK)
        sender = start([SOCKIT, "send", os.path.join(src, "f"), "127.0.0.1",
                        str(p.port)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        wait_journal(dest, "f", 2)
        os.kill(sender.pid, signal.SIGKILL)
        sender.wait(5)
        p.close()
        # The receiver lets the file go when it sees the connection end.
        assert srv.wait_stderr("closed tcp://"), srv.stderr_text()
        # Same size and time, first chunk changed: the offer is refused.
        data2 = b"X" + data[1:]
        write(os.path.join(src, "f"), data2, mtime=1_600_000_000)
        counter = Proxy(srv.port)
        r = send(counter.port, os.path.join(src, "f"))
        assert r.returncode == 0, r
        assert counter.up > len(data2), counter.up  # everything sent again
        counter.close()
        assert read(os.path.join(dest, "f")) == data2
        counter = Proxy(srv.port)
        r = send(counter.port, "--overwrite", "--no-resume", os.path.join(src, "f"))
        assert r.returncode == 0 and counter.up > len(data2), r
        counter.close()


# -- safety on the receiving side ---------------------------------------------

TRAVERSAL = ["../escape", "../../etc/passwd", "/etc/passwd", "/tmp/abs",
             "a/../../escape", "a/./b", "./x", "..", ".", "a//b", "a/",
             "x\x01y", "x\ny", "\x7f", "\u0085nel", ".hidden.part",
             ".x.part.journal", "a\\..\\..\\escape/../x", "%2e%2e/x/../../y"]


def test_traversal_names_are_refused():
    dest = tempdir()
    root = os.path.join(dest, "in")
    os.makedirs(root)
    outside = os.path.join(dest, "outside")
    os.makedirs(outside)
    os.symlink(outside, os.path.join(root, "link"))
    names = TRAVERSAL + ["link/through", "link"]
    with recv_server(root) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        out = xfer_py.send(s, [(n, b"evil", 0o644, 0) for n in names])
        s.close()
        # Invalid UTF-8 in raw bytes
        s = socket.create_connection(("127.0.0.1", srv.port))
        out2 = xfer_py.send(s, [(b"bad\xff\xfe", b"evil", 0o644, 0),
                                (b"over\xc0\xafx", b"evil", 0o644, 0)])
        s.close()
    codes = dict((n, c) for n, c, _ in out + out2)
    for n in names[:-1]:
        assert codes[n] in (20, 26), (n, codes[n])
    assert codes["link"] == 21  # exists (a symlink); not written through
    assert codes[b"bad\xff\xfe"] == 20 and codes[b"over\xc0\xafx"] == 20
    assert os.listdir(outside) == []
    assert not os.path.exists(os.path.join(dest, "escape"))
    assert os.readlink(os.path.join(root, "link")) == outside
    for n in ("a/./b", "a//b", "a\\..\\..\\escape/../x"):
        assert not os.path.exists(os.path.join(root, n.replace("\\", "/")))


def test_disk_full_is_a_clean_refusal():
    src, dest = tempdir(), tempdir()
    write(os.path.join(src, "big"), rand(3 * CHUNK))
    write(os.path.join(src, "small"), b"fits")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 * CHUNK, 2 * CHUNK))

    p = start([SOCKIT, "serve", "recv", "-v", "--dir", dest, "127.0.0.1:0"],
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
              preexec_fn=limit)
    line = p.stderr.readline().decode()
    port = int(line.rsplit(":", 1)[1])
    r = send(port, os.path.join(src, "big"), os.path.join(src, "small"))
    assert r.returncode == 1 and "refused big: disk full" in r.err, r
    assert p.poll() is None, "the server died"
    p.send_signal(signal.SIGTERM)
    p.wait(10)
    assert not os.path.exists(os.path.join(dest, "big"))
    assert read(os.path.join(dest, "small")) == b"fits"
    assert parts(dest) == []


def test_two_senders_of_one_name():
    dest = tempdir()
    src = tempdir()
    write(os.path.join(src, "same"), b"from sockit send")
    with recv_server(dest) as srv:
        # The first sender announces the file and sends one chunk, then waits.
        a = socket.create_connection(("127.0.0.1", srv.port))
        a.sendall(xfer_py.hello(chunk=4096) +
                  xfer_py.entry("same", size=8192))
        ra = xfer_py.Reader(a)
        assert ra.frame()[0] == xfer_py.WELCOME
        assert ra.frame()[0] == xfer_py.START
        c0 = b"A" * 4096
        a.sendall(xfer_py.frame(xfer_py.CHUNK, struct.pack(">QBI", 0, 0, 4096)
                                + xfer_py.H(c0) + c0))
        r = send(srv.port, os.path.join(src, "same"))
        assert r.returncode == 1 and "busy: another transfer of same" in r.err, r
        c1 = b"B" * 4096
        a.sendall(xfer_py.frame(xfer_py.CHUNK, struct.pack(">QBI", 1, 0, 4096)
                                + xfer_py.H(c1) + c1))
        whole = xfer_py.H(xfer_py.H(c0) + xfer_py.H(c1))
        a.sendall(xfer_py.frame(xfer_py.END, struct.pack(">BQQ", 0, 8192, 2)
                                + whole) + xfer_py.frame(xfer_py.BYE))
        t, pl = ra.frame()
        assert t == xfer_py.RESULT and pl[:2] == b"\0\0", pl
        a.close()
    assert read(os.path.join(dest, "same")) == c0 + c1


# -- versions and a second implementation -------------------------------------

def test_other_protocol_versions_are_refused_clearly():
    dest = tempdir()
    with recv_server(dest) as srv:
        for v, who in ((2, "receiver"), (0, "sender")):
            s = socket.create_connection(("127.0.0.1", srv.port))
            try:
                xfer_py.send(s, [("f", b"x", 0o644, 0)], version=v)
                raise AssertionError("version %d accepted" % v)
            except xfer_py.Refused as e:
                assert e.args[0] == 10
                assert ("receiver speaks protocol 1, sender %d: upgrade the %s"
                        % (v, who)) in e.args[1], e.args
            s.close()
        assert srv.wait_stderr("receiver speaks protocol 1, sender 2")
    # And the C sender against a receiver of another version.
    for v in (2, 0):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        src = tempdir()
        write(os.path.join(src, "f"), b"x")

        def serve():
            c, _ = ls.accept()
            xfer_py.Receiver(c, dest, version=v).run()
            c.close()
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        r = send(ls.getsockname()[1], "--hash", "sha256", os.path.join(src, "f"))
        t.join(5)
        ls.close()
        assert r.returncode == 1, r
        assert "receiver speaks protocol %d, sender 1" % v in r.err, r.err


def test_python_sender_to_c_receiver():
    dest = tempdir()
    files = [("p/one", rand(3 * 4096 + 5, 9), 0o600, 1_234_567_890),
             ("p/empty", b"", 0o644, 1_234_567_891),
             ("two", rand(100, 10), 0o644, 1_234_567_892)]
    with recv_server(dest) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        out = xfer_py.send(s, files, chunk=4096)
        s.close()
        s = socket.create_connection(("127.0.0.1", srv.port))
        bad = xfer_py.send(s, [("corrupt", rand(3 * 4096), 0o644, 0)],
                           chunk=4096, corrupt=1)
        s.close()
    assert [c for _, c, _ in out] == [0, 0, 0], out
    for name, data, mode, mtime in files:
        p = os.path.join(dest, name)
        assert read(p) == data and os.stat(p).st_mode & 0o7777 == mode
        assert os.stat(p).st_mtime == mtime
    assert bad[0][1] == 25, bad
    assert not os.path.exists(os.path.join(dest, "corrupt"))


def test_c_sender_to_python_receiver():
    src, dest = tempdir(), tempdir()
    write(os.path.join(src, "t", "a"), rand(CHUNK + 3, 11), 0o640, 1_111_111_111)
    write(os.path.join(src, "t", "b"), b"", 0o644, 1_111_111_112)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    got = []

    def serve():
        c, _ = ls.accept()
        rx = xfer_py.Receiver(c, dest)
        rx.run()
        got.extend(rx.stored)
        c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = send(ls.getsockname()[1], "-r", "--hash", "sha256",
             os.path.join(src, "t"))
    t.join(10)
    ls.close()
    assert r.returncode == 0, r
    assert sorted(got) == ["t/a", "t/b"]
    for n in ("a", "b"):
        assert read(os.path.join(dest, "t", n)) == read(os.path.join(src, "t", n))
        assert os.stat(os.path.join(dest, "t", n)).st_mtime == \
            os.stat(os.path.join(src, "t", n)).st_mtime


# -- progress ----------------------------------------------------------------

def test_progress_on_a_terminal_and_json():
    src, dest = tempdir(), tempdir()
    write(os.path.join(src, "f"), rand(8 * CHUNK, 12))
    with recv_server(dest) as srv:
        pid, master = pty.fork()
        if pid == 0:
            os.execv(SOCKIT, [SOCKIT, "send", os.path.join(src, "f"),
                              "127.0.0.1", str(srv.port)])
        out = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    b = os.read(master, 4096)
                except OSError:
                    break
                if not b:
                    break
                out += b
        _, status = os.waitpid(pid, 0)
        os.close(master)
        assert os.waitstatus_to_exitcode(status) == 0, out
        text = out.decode("utf-8", "replace")
        assert "\r" in text and "f  8.0 MiB / 8.0 MiB  100%" in text, text
        assert "/s" in text and "[total 100%]" in text, text
        assert "sent 1 file, 8.0 MiB" in text and "all verified" in text, text
        # Not a terminal: no progress bar; JSON lines on stdout when asked.
        r = send(srv.port, "--overwrite", os.path.join(src, "f"))
        assert r.returncode == 0 and "\r" not in r.err and r.stdout == b"", r
        r = send(srv.port, "--overwrite", "--progress=json", os.path.join(src, "f"))
        assert r.returncode == 0, r
        lines = [json.loads(x) for x in r.out.splitlines()]
        assert lines[-1]["status"] == "stored" and lines[-1]["bytes"] == 8 * CHUNK
        assert any(x["status"] == "sending" and "rate" in x for x in lines)


def test_stale_parts_are_removed_at_start():
    dest = tempdir()
    for n in (".old.part", ".old.part.journal", ".keep.part"):
        write(os.path.join(dest, n), b"x")
    old = time.time() - 7200
    os.utime(os.path.join(dest, ".old.part"), (old, old))
    os.utime(os.path.join(dest, ".old.part.journal"), (old, old))
    with recv_server(dest, "--part-ttl=3600"):
        pass
    assert sorted(os.listdir(dest)) == [".keep.part"]


def test_example_send_file():
    src, dest = tempdir(), tempdir()
    write(os.path.join(src, "a"), rand(CHUNK + 1, 20))
    example = os.path.join(os.path.dirname(SOCKIT), "examples", "send_file")
    with recv_server(dest) as srv:
        r = run([example, "127.0.0.1", str(srv.port), os.path.join(src, "a")])
        assert r.returncode == 0, r
        assert "a: stored and verified" in r.out and "1 stored, 0 refused" in r.out, r
        r = run([example, "127.0.0.1", str(srv.port), os.path.join(src, "a")])
        assert r.returncode == 1 and "a: refused: exists" in r.out, r
    assert read(os.path.join(dest, "a")) == read(os.path.join(src, "a"))


@timeout(60)
def test_every_model_and_a_unix_socket():
    src = tempdir()
    write(os.path.join(src, "t", "a"), rand(CHUNK + 10, 30))
    write(os.path.join(src, "t", "b", "c"), b"c")
    for model in ("iterative", "fork", "thread", "prefork", "select", "poll"):
        dest = tempdir()
        with Server(["recv", "--model", model, "--dir", dest, "127.0.0.1:0"]) as srv:
            r = send(srv.port, "-r", os.path.join(src, "t"))
            assert r.returncode == 0, (model, r)
        assert read(os.path.join(dest, "t", "a")) == read(os.path.join(src, "t", "a"))
        assert read(os.path.join(dest, "t", "b", "c")) == b"c"
    dest = tempdir()
    sock = os.path.join(tempdir(), "recv.sock")
    with Server(["recv", "--dir", dest, "unix:" + sock]):
        r = run_client(["send", "-r", os.path.join(src, "t"), "unix:" + sock])
        assert r.returncode == 0, r
    assert read(os.path.join(dest, "t", "b", "c")) == b"c"


def test_max_files_and_max_depth():
    src, dest = tempdir(), tempdir()
    for i in range(5):
        write(os.path.join(src, "t", "f%d" % i), b"x")
    write(os.path.join(src, "t", "a", "b", "c", "deep"), b"d")
    with recv_server(dest, "--max-files=4", "--max-depth=3") as srv:
        r = send(srv.port, "-r", os.path.join(src, "t"))
    assert r.returncode == 1, r
    assert "deeper than --max-depth" in r.err, r.err
    assert "more entries than --max-files" in r.err, r.err
    assert not os.path.exists(os.path.join(dest, "t", "a", "b", "c"))
    stored = sum(len(f) + len(d) for _, d, f in os.walk(dest))
    assert stored <= 4, stored


@timeout(40)
def test_resume_twice():
    """A resumed transfer that is cut again resumes again: the journal goes
    on after the chunks it already had."""
    src, dest = tempdir(), tempdir()
    size = 12 * CHUNK + 5
    data = rand(size, 40)
    write(os.path.join(src, "f"), data)
    with recv_server(dest) as srv:
        for n, (hold, want) in enumerate(((4 * CHUNK, 3), (4 * CHUNK, 6))):
            p = Proxy(srv.port, hold_after=hold)
            sender = start([SOCKIT, "send", "--progress=none", os.path.join(src, "f"),
                            "127.0.0.1", str(p.port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_journal(dest, "f", want)
            os.kill(sender.pid, signal.SIGKILL)
            sender.wait(5)
            p.close()
            # The receiver lets the file go when it sees the connection end.
            assert srv._err.wait_for(
                lambda d: d.count(b"closed tcp://") > n, 10), srv.stderr_text()
        counter = Proxy(srv.port)
        r = send(counter.port, os.path.join(src, "f"))
        counter.close()
        assert r.returncode == 0, r
        assert counter.up < size - 6 * CHUNK + CHUNK, counter.up
    assert read(os.path.join(dest, "f")) == data


@timeout(60)
def test_send_over_tls_to_recv_with_tls():
    """`serve recv --tls` (an ephemeral certificate) and `send --pin`: the
    file arrives verified; a sender that does not trust the certificate, or
    speaks plain TCP, stores nothing."""
    src, dest = tempdir(), shm_dir()
    data = rand(3 * CHUNK + 123, seed=7)
    write(os.path.join(src, "t.bin"), data)
    with recv_server(dest, "--tls") as srv:
        import re
        assert srv.wait_stderr("TLS certificate sha256:", 5), srv.stderr_text()
        pin = re.search(r"sha256:[0-9a-f]{64}", srv.stderr_text()).group(0)
        r = send(srv.port, "--pin", pin, os.path.join(src, "t.bin"))
        assert r.returncode == 0, r
        assert read(os.path.join(dest, "t.bin")) == data
        assert "all verified by the receiver" in r.err, r.err
        write(os.path.join(src, "u.bin"), b"untrusted")
        r = send(srv.port, "--tls", os.path.join(src, "u.bin"))
        assert r.returncode == 1 and "self-signed certificate" in r.err, r
        r = send(srv.port, os.path.join(src, "u.bin"))
        assert r.returncode == 1, r
        assert not os.path.exists(os.path.join(dest, "u.bin"))
