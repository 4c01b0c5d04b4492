"""Stopping, visibly and by force: the first SIGINT/SIGTERM with busy
connections logs one line saying how many get how long; a second one stops
at once (busy connections closed), in every model, including the fork and
prefork children. Under the real program and real signals."""

import signal
import socket
import time

from harness import Server, children, poll_until, timeout

MODELS = ["epoll", "poll", "select", "thread", "fork", "prefork", "iterative", "uring"]


def busy_client(port):
    """A connection with output in flight: echo gets more than it can send
    back, and we do not read. Returns the socket."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 5
    stuck_since = None
    # Until the server stops taking bytes: its output queue is then full.
    while time.monotonic() < deadline:
        try:
            sent += s.send(b"x" * 65536)
            stuck_since = None
        except BlockingIOError:
            now = time.monotonic()
            stuck_since = stuck_since or now
            if now - stuck_since > 0.3 and sent > 256 * 1024:
                break
            time.sleep(0.02)
    assert sent > 256 * 1024, "could not fill the echo queue (%d bytes)" % sent
    return s


def check_stop_twice(model, sig):
    args = ["echo", "--model", model]
    if model == "prefork":
        args += ["--workers", "3"]
    with Server(args + ["tcp://127.0.0.1:0"]) as srv:
        nbusy = 1 if model == "iterative" else 2
        busy = [busy_client(srv.port) for _ in range(nbusy)]
        srv.proc.send_signal(sig)
        word = "connection gets" if nbusy == 1 else "connections get"
        line = "stopping: %d busy %s up to 10 s to finish" % (nbusy, word)
        assert poll_until(lambda: line in srv.stderr_text(), 5), (
            "no stopping line after the first signal: %r"
            % srv.stderr_text()[-400:])
        assert srv.alive(), "gone after the first signal with busy connections"
        assert srv.stderr_text().count("stopping:") == 1
        t0 = time.monotonic()
        srv.proc.send_signal(sig)
        rc = srv.wait(5)  # the grace period is 10 s: only a forced stop ends it in 5
        assert rc == 0, (rc, srv.stderr_text()[-400:])
        took = time.monotonic() - t0
        assert took < 5, "second signal: still running after %.1fs" % took
        assert not children(srv.pid)
        for s in busy:
            s.close()


def check_idle_stop_is_quiet(model):
    with Server(["echo", "--model", model, "tcp://127.0.0.1:0"]) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port), 5)
        s.sendall(b"hi")
        assert s.recv(2) == b"hi"
        srv.proc.send_signal(signal.SIGINT)
        assert srv.wait(5) == 0
        assert "stopping:" not in srv.stderr_text(), srv.stderr_text()
        s.close()


def _make(name, func, *args):
    def test():
        func(*args)
    test.__name__ = name
    test.__module__ = __name__
    return timeout(40)(test)


for _model in MODELS:
    globals()["test_stop_twice_%s" % _model] = _make(
        "test_stop_twice_%s" % _model, check_stop_twice, _model, signal.SIGINT)
for _model in ("epoll", "fork", "uring"):
    globals()["test_stop_twice_sigterm_%s" % _model] = _make(
        "test_stop_twice_sigterm_%s" % _model, check_stop_twice, _model,
        signal.SIGTERM)
for _model in ("epoll", "thread", "uring"):
    globals()["test_idle_stop_is_quiet_%s" % _model] = _make(
        "test_idle_stop_is_quiet_%s" % _model, check_idle_stop_is_quiet,
        _model)
del _model
