"""The same services under every concurrency model.

docs/ARCHITECTURE.md: services are written once and run unchanged by every model. Each
check below is generated once per model (test_NAME_MODEL), so a failure
names the model.
"""

import os
import re
import socket
import threading
import time

from harness import (Server, children, connect_tcp, exchange, fd_count, model_available,
                     poll_until, recv_all, run_client, tempdir, zombies)

MODELS = ["iterative", "fork", "thread", "prefork", "select", "poll", "epoll", "uring"]
# Models that can run broker: connections served at the same time, in one
# address space. docs/ARCHITECTURE.md: a service a model cannot run is refused with a
# clear error (fork, prefork: a process each; iterative: one at a time, so
# there is never anyone to relay to).
SHARED = {"thread", "select", "poll", "epoll", "uring"}


def model_args(model):
    args = ["--model", model]
    if model in ("prefork", "poll", "epoll", "uring"):  # thread has no --workers
        args += ["--workers", "2"]
    return args


def tasks(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def together(n, func):
    errors = []

    def body(i):
        try:
            func(i)
        except Exception as e:  # collected for the assertion below
            errors.append("client %d: %r" % (i, e))

    threads = [threading.Thread(target=body, args=(i,), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "clients hung"
    assert not errors, "%d clients failed: %s" % (len(errors), errors[:3])


def test_help_lists_every_model():
    r = run_client(["serve", "--help"])
    listed = re.findall(r"^  (\w+) ", r.out.split("Models")[1], re.M)
    listed = [m for m in listed if not m.startswith("-")]
    # uring is listed where it is built (liburing present)
    built = [m for m in MODELS
             if m != "uring" or "not built" not in model_available(m)[1]]
    assert sorted(listed) == sorted(built), listed
    default = re.search(r"default (\w+)", r.out).group(1)
    assert default == "epoll", "default model %s (README: epoll)" % default


# -- the checks, each run under one model -------------------------------------

def check_echo_concurrent(model):
    n = 20
    payloads = [os.urandom(65536 + i) for i in range(n)]
    with Server(["echo", "-q"] + model_args(model) +
                ["tcp://127.0.0.1:0"]) as srv:
        socks = [connect_tcp(srv.port, timeout=20) for _ in range(n)]
        barrier = threading.Barrier(n, timeout=20)

        def client(i):
            barrier.wait()
            got = exchange(socks[i], payloads[i])
            socks[i].close()
            assert got == payloads[i], "%d of %d bytes back" % (
                len(got), len(payloads[i]))

        together(n, client)


def check_echo_unix(model):
    path = os.path.join(tempdir(), "m.sock")
    with Server(["echo"] + model_args(model) + ["unix:" + path]):
        data = os.urandom(1 << 20)
        r = run_client(["connect", "unix:" + path], input=data, timeout=20)
        assert r.returncode == 0 and r.stdout == data, (
            "%d of %d bytes back: %r" % (len(r.stdout), len(data), r.err))


def check_echo_udp(model):
    with Server(["echo"] + model_args(model) + ["udp://127.0.0.1:0"]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", srv.port))
            for i in range(5):
                msg = b"datagram %d" % i
                s.send(msg)
                assert s.recv(100) == msg


def check_counter(model):
    with Server(["counter"] + model_args(model) +
                ["tcp://127.0.0.1:0"]) as srv:
        got = [None] * 12

        def client(i):
            with connect_tcp(srv.port, timeout=20) as s:
                got[i] = recv_all(s)

        together(12, client)
        want = sorted(b"Connection %d!\n" % k for k in range(1, 13))
        assert sorted(got) == want, sorted(got)


def check_ack_once(model):
    with Server(["ack", "--once"] + model_args(model) +
                ["tcp://127.0.0.1:0"]) as srv:
        r = run_client(["connect", "--prompt", "127.0.0.1:%d" % srv.port],
                       input=b"hello\n")
        assert r.out == "Please enter the message: I got your message\n", r
        assert srv.wait(10) == 0, srv.stderr_text()
        assert srv.stdout_text() == "Here is the message: hello\n", (
            srv.stdout_text())


def check_misbehaving_clients(model):
    with Server(["ack"] + model_args(model) + ["tcp://127.0.0.1:0"]) as srv:
        for how in ("close", "reset", "silent"):
            s = connect_tcp(srv.port)
            if how != "silent":
                s.sendall(b"half a li")
            if how == "reset":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        r = run_client(["connect", "--prompt", "127.0.0.1:%d" % srv.port],
                       input=b"hello\n")
        assert r.out == "Please enter the message: I got your message\n", r
        assert srv.wait_stdout("Here is the message: hello\n"), (
            srv.stdout_text())
        assert srv.alive()


def check_stop_with_open_connection(model):
    with Server(["echo"] + model_args(model) + ["tcp://127.0.0.1:0"]) as srv:
        s = connect_tcp(srv.port)
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        rc = srv.stop(timeout=8)
        assert rc == 0, (rc, srv.stderr_text())
        s.settimeout(5)
        try:
            rest = recv_all(s)
        except ConnectionResetError:
            rest = b""
        assert rest == b"", rest
        s.close()


def check_no_leaks(model):
    with Server(["echo", "-q"] + model_args(model) +
                ["tcp://127.0.0.1:0"]) as srv:
        with connect_tcp(srv.port) as s:  # let the model set itself up
            assert exchange(s, b"warm") == b"warm"
        poll_until(lambda: not zombies(srv.pid), 2)
        # Workers started up front (prefork) stay; per-connection ones go.
        base_kids = len(children(srv.pid))
        base_fds, base_tasks = fd_count(srv.pid), tasks(srv.pid)

        def client(i):
            for k in range(10):
                with connect_tcp(srv.port, timeout=20) as s:
                    msg = b"%d-%d" % (i, k)
                    assert exchange(s, msg) == msg

        together(20, client)
        ok = poll_until(lambda: fd_count(srv.pid) == base_fds
                        and tasks(srv.pid) == base_tasks
                        and len(children(srv.pid)) == base_kids
                        and not zombies(srv.pid), 5)
        assert ok, ("after 200 connections: %d fds (%d before), %d threads "
                    "(%d), %d children (%d), zombies %s"
                    % (fd_count(srv.pid), base_fds, tasks(srv.pid),
                       base_tasks, len(children(srv.pid)), base_kids,
                       zombies(srv.pid)))


def check_broker(model):
    args = ["broker"] + model_args(model) + ["tcp://127.0.0.1:0"]
    if model in SHARED:
        with Server(args) as srv:
            a = connect_tcp(srv.port)
            b = connect_tcp(srv.port)
            time.sleep(0.2)  # both registered before a speaks
            a.sendall(b"hi from a\n")
            b.settimeout(5)
            assert b.recv(100) == b"hi from a\n"
            a.close()
            b.close()
        return
    r = run_client(["serve"] + args, timeout=3)
    assert r.returncode == 2, "broker under %s: %r" % (model, r)
    assert r.err.count("\n") == 1 and "broker" in r.err and model in r.err, r


def check_max_conns(model):
    # --max-conns 1: a second client waits in the backlog until the first
    # has gone, then is served.
    with Server(["echo", "--max-conns", "1"] + model_args(model) +
                ["tcp://127.0.0.1:0"]) as srv:
        a = connect_tcp(srv.port)
        a.sendall(b"a")
        assert a.recv(1) == b"a"
        b = connect_tcp(srv.port)
        b.sendall(b"b")
        b.settimeout(0.5)
        try:
            early = b.recv(1)
        except socket.timeout:
            early = None
        assert early is None, "--max-conns 1 served a second connection " \
            "at once"
        a.close()
        b.settimeout(5)
        assert b.recv(1) == b"b", "the waiting client was never served"
        b.close()


def check_echo_backpressure(model):
    """A client that sends 8 MiB before it reads a byte: the server stops
    reading while its output is queued (backpressure) and, once the client
    reads, every byte comes back in order, the end of stream included."""
    data = os.urandom(8 << 20)
    with Server(["-q", "echo"] + model_args(model) + ["tcp://127.0.0.1:0"]) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        got = bytearray()

        def reader():
            time.sleep(0.5)  # let the server's queue and the socket buffers fill
            while True:
                b = s.recv(1 << 16)
                if not b:
                    break
                got.extend(b)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        t.join(30)
        assert not t.is_alive(), "the echo never ended"
        s.close()
        assert len(got) == len(data), (len(got), len(data))
        assert bytes(got) == data, "the echo differs from what was sent"


def check_idle_timeout(model):
    with Server(["echo", "--idle-timeout", "0.5"] + model_args(model) +
                ["tcp://127.0.0.1:0"]) as srv:
        s = connect_tcp(srv.port)
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        t0 = time.monotonic()
        try:
            rest = recv_all(s)  # the server closes the idle connection
        except ConnectionResetError:
            rest = b""
        took = time.monotonic() - t0
        s.close()
        assert rest == b"", rest
        assert 0.3 <= took < 4, "closed after %.2fs of silence" % took
        with connect_tcp(srv.port) as c:
            assert exchange(c, b"next") == b"next"


CHECKS = [check_echo_concurrent, check_echo_unix, check_echo_udp,
          check_counter, check_ack_once, check_misbehaving_clients,
          check_stop_with_open_connection, check_no_leaks, check_max_conns,
          check_idle_timeout, check_broker, check_echo_backpressure]


def _make(check, model):
    def test():
        check(model)
    test.__name__ = "test_%s_%s" % (check.__name__[len("check_"):], model)
    test.__module__ = __name__
    return test


for _check in CHECKS:
    for _model in MODELS:
        _t = _make(_check, _model)
        globals()[_t.__name__] = _t
del _check, _model, _t
