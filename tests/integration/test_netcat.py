"""netcat's first hour: `connect` and `serve stdio` when the peer leaves,
truncated uploads, closed standard descriptors, a stalled reader of the
server's output, and the client's conveniences (-C, -k, -z ranges, -s/-p,
--retry).
"""

import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import (SOCKIT, Server, poll_until, read_http_response,
                     recv_all, run, run_client, start, tempdir, timeout)


def cpu_seconds(pid):
    """utime + stime of pid in seconds, or None once it has exited."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_over(pid, seconds=1.0):
    """CPU seconds pid used over the next `seconds` (0 if it exits)."""
    a = cpu_seconds(pid)
    time.sleep(seconds)
    b = cpu_seconds(pid)
    if a is None or b is None:
        return 0.0
    return b - a


def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.settimeout(10)
    return s, s.getsockname()[1]


# -- defect: a busy loop after the peer has gone ------------------------------

@timeout(40)
def test_serve_stdio_terminal_ends_when_peer_leaves():
    # `serve stdio` on a terminal, the client killed, a line typed: before,
    # it spun at 100% CPU and dropped the line; like `nc -l` it now ends.
    master, slave = pty.openpty()
    try:
        srv = Server(["stdio", "tcp://127.0.0.1:0"], stdin=slave,
                     expect_exit=None)
        with srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            c.sendall(b"hi\n")
            assert srv.wait_stdout("hi\n"), srv.stdout_text()
            c.close()  # the client is gone
            time.sleep(0.2)
            os.write(master, b"a line typed after the client left\n")
            used = cpu_over(srv.pid, 1.0)
            assert used < 0.5, "serve stdio used %.2f s of CPU in 1 s" % used
            assert poll_until(lambda: not srv.alive(), 10), (
                "serve stdio still running after its peer left")
            srv.stop()
    finally:
        os.close(master)
        os.close(slave)


@timeout(40)
def test_connect_socket_stdin_peer_gone_no_spin():
    # connect with a socket as its stdin; the server closes; a line then
    # arrives on stdin, is sent, and meets a reset: the client must not spin
    # and must say the input was not delivered.
    ls, port = listener()
    a, b = socket.socketpair()
    p = start([SOCKIT, "connect", "127.0.0.1:%d" % port], stdin=a,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    a.close()
    conn, _ = ls.accept()
    conn.close()
    time.sleep(0.2)
    b.sendall(b"one line\n")
    used = cpu_over(p.pid, 1.0)
    assert used < 0.5, "connect used %.2f s of CPU in 1 s" % used
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("connect still running after its peer left")
    b.close()
    ls.close()
    assert p.returncode == 1, (p.returncode, err)
    assert b"not delivered" in err, err


# -- defect: a truncated upload exits 0 -----------------------------------------

def _reads_ten_and_closes(ls, got):
    conn, _ = ls.accept()
    got.append(conn.recv(10))
    conn.close()  # unread data: the kernel answers with a reset


@timeout(60)
def test_truncated_upload_from_file_fails():
    path = os.path.join(tempdir(), "big")
    with open(path, "wb") as f:
        f.write(os.urandom(1 << 20) * 32)
    ls, port = listener()
    got = []
    t = threading.Thread(target=_reads_ten_and_closes, args=(ls, got))
    t.start()
    with open(path, "rb") as f:
        p = subprocess.run([SOCKIT, "connect", "127.0.0.1", str(port)],
                           stdin=f, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
    t.join(10)
    ls.close()
    err = p.stderr.decode()
    assert p.returncode == 1, (p.returncode, err)
    lines = err.splitlines()
    assert len(lines) == 1 and "bytes of input not delivered" in lines[0], err


@timeout(60)
def test_truncated_upload_from_pipe_fails():
    ls, port = listener()
    got = []
    t = threading.Thread(target=_reads_ten_and_closes, args=(ls, got))
    t.start()
    r = run_client(["connect", "127.0.0.1:%d" % port],
                   input=os.urandom(1 << 20) * 32, timeout=30)
    t.join(10)
    ls.close()
    assert r.returncode == 1, r
    assert "not delivered" in r.err, r


# -- defect: started with 0, 1 or 2 closed ------------------------------------

def _close_fds(*fds):
    def pre():
        for fd in fds:
            os.close(fd)
    return pre


@timeout(30)
def test_serve_with_stdout_and_stderr_closed_keeps_serving():
    path = os.path.join(tempdir(), "e.sock")
    p = start([SOCKIT, "serve", "-v", "echo", "unix:" + path],
              stdin=subprocess.DEVNULL, preexec_fn=_close_fds(1, 2))
    assert poll_until(lambda: os.path.exists(path) or p.poll() is not None,
                      10)
    time.sleep(0.3)
    assert p.poll() is None, "serve exited %s at once" % p.returncode
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"ping\n")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"ping\n"
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0


@timeout(30)
def test_connect_with_stdin_closed_sends_nothing():
    ls, port = listener()
    back = []

    def serve():
        conn, _ = ls.accept()
        conn.settimeout(5)
        conn.sendall(b"hello\n")
        try:
            back.append(recv_all(conn))
        except OSError as e:  # the old client echoed and never ended
            back.append(repr(e))
        conn.close()
    t = threading.Thread(target=serve)
    t.start()
    p = start([SOCKIT, "connect", "127.0.0.1:%d" % port],
              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              preexec_fn=_close_fds(0))
    out, err = p.communicate(timeout=10)
    t.join(10)
    ls.close()
    assert back == [b""], "the server got back %r" % back
    assert out == b"hello\n" and p.returncode == 0, (out, err)


# -- defect: a stalled reader of the server's output froze the server ----------

def _serve_into(args, stdout_fd):
    """`sockit serve ARGS` with stdout on stdout_fd; returns (proc, port,
    stderr buffer). stderr is read by a thread, as a terminal would."""
    p = start([SOCKIT, "serve"] + args, stdin=subprocess.DEVNULL,
              stdout=stdout_fd, stderr=subprocess.PIPE)
    err = bytearray()
    got_port = threading.Event()

    def drain():
        for line in iter(p.stderr.readline, b""):
            err.extend(line)
            if b"listening on" in line:
                got_port.set()
    threading.Thread(target=drain, daemon=True).start()
    assert got_port.wait(10), "server not ready: %r" % bytes(err)
    port = int(bytes(err).split(b"listening on ")[1].split()[0]
               .rsplit(b":", 1)[1])
    return p, port, err


@timeout(90)
def test_stalled_stdout_does_not_freeze_server():
    # Reports go to a pipe nobody reads (`| less` left on its first page):
    # the server must keep answering, stop on SIGTERM, and count the loss.
    for model in ("epoll", "prefork", "fork", "uring"):
        _stalled_stdout(model)


def _stalled_stdout(model):
    rfd, wfd = os.pipe()
    try:
        workers = [] if model == "fork" else ["--workers", "2"]  # fork has no workers
        p, port, err = _serve_into(["--model", model] + workers + ["ack",
                                    "tcp://127.0.0.1:0"], wfd)
        os.close(wfd)
        wfd = -1
        msg = b"m" * 2000 + b"\n"
        for i in range(500):  # ~1 MB of reports: pipe and queues overflow
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=5) as s:
                s.sendall(msg)
                s.shutdown(socket.SHUT_WR)
                assert recv_all(s).startswith(b"I got your message"), i
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0, model
        time.sleep(0.2)
        if model != "fork":  # (a child per connection: each queues little)
            assert b"stdout is not being read: dropping report lines" in err, (
                model, bytes(err))
        if model in ("epoll", "uring"):  # (a worker process's count ends with it)
            assert b"report lines dropped: stdout is not being read" in err, (
                model, bytes(err))
    finally:
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)


@timeout(60)
def test_access_log_into_full_pipe_does_not_freeze_http():
    root = tempdir()
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("hi\n")
    rfd, wfd = os.pipe()
    try:
        p, port, err = _serve_into(["http", "--root", root, "--access-log",
                                    "-", "tcp://127.0.0.1:0"], wfd)
        os.close(wfd)
        wfd = -1
        req = (b"GET /index.html HTTP/1.1\r\nHost: x\r\nUser-Agent: " +
               b"u" * 400 + b"\r\n\r\n")
        for i in range(1200):  # ~600 KB of log lines
            if i % 400 == 0:  # (a keep-alive connection has a request limit)
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                rf = s.makefile("rb")
            s.sendall(req)
            resp = read_http_response(rf)
            assert resp is not None and resp.status == 200, (i, resp)
            if i % 400 == 399:
                rf.close()
                s.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        time.sleep(0.2)
        assert b"lines dropped: stdout is not being read" in err, bytes(err)
    finally:
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)


# -- messages that point at the real mistake ------------------------------------

def _one_line(r, status, *needles):
    assert r.returncode == status, r
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sockit: "), r
    for n in needles:
        assert n in lines[0], "%r not in %r" % (n, lines[0])
    return lines[0]


def test_serve_port_where_the_service_goes():
    line = _one_line(run_client(["serve", "8080"]), 2, '"8080" is an address',
                     "sockit serve SERVICE ADDRESS", "echo", "stdio")
    _one_line(run_client(["serve", "127.0.0.1:0", "echo"]), 2,
              '"127.0.0.1:0" is an address')
    assert "missing" not in line


def test_connect_address_and_a_stray_word():
    _one_line(run_client(["connect", "localhost:1", "2"]), 2,
              '"localhost:1" is a whole address', '"2"')
    _one_line(run_client(["connect", "tcp://127.0.0.1:1", "2"]), 2,
              "whole address")


def test_unknown_top_level_option():
    _one_line(run_client(["-x"]), 2, 'unknown option "-x"')
    _one_line(run_client(["--bogus"]), 2, 'unknown option "--bogus"')


def test_same_address_twice():
    s = socket.socket(socket.AF_INET6)
    s.bind(("::", 0))
    port = s.getsockname()[1]
    s.close()  # a free port, for the moment
    line = _one_line(run_client(["serve", "echo", str(port), ":%d" % port]),
                     2, "address tcp://[::]:%d given twice" % port)
    assert "already in use" not in line
    path = os.path.join(tempdir(), "twice.sock")
    _one_line(run_client(["serve", "echo", "unix:" + path, "unix:" + path]),
              2, "address unix:%s given twice" % path)
    assert not os.path.exists(path)


# -- small ones -------------------------------------------------------------------

def test_forced_family_listener_named_as_asked():
    with Server(["echo", "tcp6://[::1]:0", "udp4://127.0.0.1:0"]) as srv:
        assert srv.addresses[0].startswith("tcp6://[::1]:"), srv.addresses
        assert srv.addresses[1].startswith("udp4://127.0.0.1:"), srv.addresses


def test_udp_serve_stdio_verbose_logs_peer_before_data():
    # stdout and stderr into one pipe: "connection from" comes first.
    p = start([SOCKIT, "serve", "-v", "stdio", "udp://127.0.0.1:0"],
              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
              stderr=subprocess.STDOUT)
    buf = b""
    deadline = time.monotonic() + 10
    while b"listening on" not in buf or not buf.endswith(b"\n"):
        assert time.monotonic() < deadline, buf
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            buf += os.read(p.stdout.fileno(), 4096)
    port = int(buf.split(b"listening on ")[1].split()[0].rsplit(b":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"DATA\n", ("127.0.0.1", port))
        while b"DATA" not in buf:
            assert time.monotonic() < deadline, buf
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                buf += os.read(p.stdout.fileno(), 4096)
    time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    rest, _ = p.communicate(timeout=10)
    buf += rest
    assert b"connection from udp://127.0.0.1:" in buf, buf
    assert buf.index(b"connection from") < buf.index(b"DATA"), buf


# -- serve stdio -k ---------------------------------------------------------------

@timeout(30)
def test_serve_stdio_keep_open_serves_one_client_after_another():
    srv = Server(["-k", "-v", "stdio", "tcp://127.0.0.1:0"],
                 stdin=subprocess.PIPE)
    with srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
            c.sendall(b"one\n")
            assert srv.wait_stdout("one\n"), srv.stdout_text()
        assert srv.wait_stderr("closed:"), srv.stderr_text()
        # Typed between clients: it waits for the next one.
        srv.proc.stdin.write(b"for two\n")
        srv.proc.stdin.flush()
        time.sleep(0.2)
        assert srv.alive(), srv.stderr_text()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
            got = b""
            while not got.endswith(b"for two\n"):
                chunk = c.recv(100)
                assert chunk, got
                got += chunk
            assert got == b"for two\n"
            c.sendall(b"two\n")
            assert srv.wait_stdout("one\ntwo\n"), srv.stdout_text()
        assert poll_until(lambda: srv.stderr_text().count("closed:") == 2, 5)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
            c.sendall(b"three\n")
            assert srv.wait_stdout("two\nthree\n"), srv.stdout_text()
    assert srv.stdout_bytes() == b"one\ntwo\nthree\n"


def test_keep_open_is_for_stdio():
    _one_line(run_client(["serve", "-k", "echo", "0"]), 2, "stdio")


# -- connect conveniences ---------------------------------------------------------

def _capture(cmd, data, src=None):
    """Run cmd HOST PORT against a one-shot listener; returns (bytes the
    listener received, the client's address as the listener saw it, Result)."""
    ls, port = listener()
    got = []

    def serve():
        conn, addr = ls.accept()
        conn.settimeout(5)
        got.append((recv_all(conn), addr))
        conn.close()
    t = threading.Thread(target=serve)
    t.start()
    r = run(cmd + ["127.0.0.1", str(port)], input=data)
    t.join(10)
    ls.close()
    assert got, r
    return got[0][0], got[0][1], r


def test_connect_crlf_matches_nc_C():
    data = b"HELO there\nMAIL FROM:<a@b>\r\n\nlast line without newline"
    mine, _, r = _capture([SOCKIT, "connect", "-C"], data)
    assert r.returncode == 0, r
    assert mine == (b"HELO there\r\nMAIL FROM:<a@b>\r\n\r\n"
                    b"last line without newline"), mine
    if shutil.which("nc"):
        theirs, _, _ = _capture(["nc", "-C", "-N"], data)
        assert mine == theirs, (mine, theirs)
    long_lines = b"x" * 70000 + b"\n" + b"\n" * 70000  # across reads
    mine, _, r = _capture([SOCKIT, "connect", "--crlf"], long_lines)
    assert mine == long_lines.replace(b"\n", b"\r\n"), len(mine)


def test_connect_source_address_and_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sport = s.getsockname()[1]
    s.close()
    _, addr, r = _capture([SOCKIT, "connect", "-s", "127.0.0.2", "-p",
                           str(sport)], b"x")
    assert r.returncode == 0, r
    assert addr == ("127.0.0.2", sport), addr
    r = run_client(["connect", "-s", "10.255.255.254", "127.0.0.1", "9"])
    _one_line(r, 1, "bind source tcp://10.255.255.254:0")
    _one_line(run_client(["connect", "-p", "70000", "127.0.0.1", "9"]), 2,
              "-p")


@timeout(30)
def test_connect_retry_waits_for_a_late_server():
    # The tutorial's exploration: run the client before the server.
    from harness import free_port
    s, port = free_port()
    p = start([SOCKIT, "connect", "--retry", "50", "127.0.0.1", str(port)],
              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
              stderr=subprocess.PIPE)
    time.sleep(0.5)
    assert p.poll() is None, p.communicate()
    s.close()
    with Server(["-v", "echo", "tcp://127.0.0.1:%d" % port]):
        out, err = p.communicate(b"late hello\n", timeout=15)
    assert p.returncode == 0 and out == b"late hello\n", (out, err)
    s, port = free_port()
    with s:  # without --retry: refused at once
        r = run_client(["connect", "127.0.0.1", str(port)])
        assert r.returncode == 1 and "refused" in r.err, r


def test_connect_z_port_range():
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        lo, hi = srv.port - 2, srv.port + 1
        r = run_client(["connect", "-z", "127.0.0.1", "%d-%d" % (lo, hi)])
        assert r.returncode == 0, r
        assert r.out == "tcp://127.0.0.1:%d accepts connections\n" % srv.port
        # Closed ports: silent, unless -v says why.
        assert r.err == "", r
        r = run_client(["connect", "-z", "-v",
                        "127.0.0.1:%d-%d" % (srv.port + 1, srv.port + 2)])
    assert r.returncode in (0, 1), r
    if r.returncode == 1:  # (another process may have taken those ports)
        assert r.out == "" and r.err.count("Connection refused") == 2, r
    _one_line(run_client(["connect", "-z", "127.0.0.1", "25-20"]), 2, "25-20")
    _one_line(run_client(["connect", "127.0.0.1", "20-25"]), 2, "-z")
