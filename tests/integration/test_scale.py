"""The server engine under load and at the edges of its lifecycle.

  test_storm_MODEL           200 echo clients in flight at once, each with
                             its own random bytes in several writes.
  test_broker_fanout_MODEL   20 broker clients x 20 numbered lines: everyone
                             gets every other client's lines, in order, and
                             none of its own.
  test_1000_conns_MODEL      1000 short connections: no zombies, and the
                             server's descriptors and threads come back.
  test_sigterm_MODEL         SIGTERM with idle connections and a busy one:
                             idle ones closed at once, the busy one gets all
                             its 4 MB, exit 0, Unix socket file removed.
  test_sigterm_uring_idle_closed_on_every_loop  uring, 2 loops: idle
                             connections closed at once on both, also on
                             the one that ends first.
  test_uring_slow_readers_take_no_kernel_threads  4 slow readers: no io-wq
                             thread blocked in a send.
  test_sigterm_stops_listening_MODEL  no new connection is taken (or left
                             hanging in the backlog) once SIGTERM arrived.
  test_idle_timeout_MODEL    --idle-timeout 1: silence closes, activity
                             does not.
  test_emfile_MODEL          at a 64-descriptor limit, 150 connections: no
                             spinning, the excess is shed, service recovers.

Under the sanitizer build (SOCKIT contains build-san) the counts are halved.
"""

import os
import resource
import select
import selectors
import signal
import socket
import threading
import time

from harness import (Server, Skip, children, exchange, fd_count,
                     model_available, poll_until, tempdir, timeout, zombies)
from svcmatrix import (MODELS, SANITIZED, SHARED, cpu_seconds, model_args,
                       proc_threads, together)

SERIAL = True  # run alone (run.py -j): a thousand connections and processes: the machine to itself

STORM_CLIENTS = 100 if SANITIZED else 200
SHORT_CONNS = 500 if SANITIZED else 1000

# Concurrent models (and one multi-loop variant) for the storm.
STORM = [("fork", ["--model", "fork"]),
         ("thread", ["--model", "thread"]),
         # prefork serves at most --workers connections at once; the rest
         # wait in the kernel's backlog until a worker is free.
         ("prefork", ["--model", "prefork", "--workers", "16"]),
         ("select", ["--model", "select"]),
         ("poll", ["--model", "poll"]),
         ("epoll", ["--model", "epoll"]),
         ("epoll_workers2", ["--model", "epoll", "--workers", "2"]),
         ("uring", ["--model", "uring"]),
         ("uring_workers2", ["--model", "uring", "--workers", "2"])]


def _is_closed(s, wait):
    """Whether the peer closed s (EOF or reset) within wait seconds."""
    s.settimeout(wait)
    try:
        data = s.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    assert data == b"", "expected a close, got %r" % data[:100]
    return True


# -- 200 clients at once -----------------------------------------------------

def echo_storm(port, n, barrier, deadline_s=60):
    """n echo clients over TCP, all connected before any writes; each sends
    its own random bytes (3-6 KB) in 4 writes, half-closes, and checks its
    echo to the byte. With barrier, no client sends its rest before every
    client's first write came back: all n are then being served at once."""
    socks = []
    sel = selectors.DefaultSelector()
    try:
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(s)
        states = []
        for i, s in enumerate(socks):
            s.setblocking(False)
            data = os.urandom(3000 + (i * 37) % 3000)
            q = len(data) // 4
            chunks = [data[:q], data[q:2 * q], data[2 * q:3 * q],
                      data[3 * q:]]
            st = {"i": i, "data": data, "chunks": chunks, "first": len(
                chunks[0]), "got": bytearray(), "done": False, "err": None}
            states.append(st)
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
        first_back = 0
        released = not barrier
        left = n
        end = time.monotonic() + deadline_s
        while left and time.monotonic() < end:
            for key, ev in sel.select(timeout=1):
                s, st = key.fileobj, key.data
                if ev & selectors.EVENT_READ:
                    try:
                        b = s.recv(65536)
                    except BlockingIOError:
                        b = None
                    except OSError as e:
                        st["err"], b = repr(e), b""
                    if b:
                        before = len(st["got"])
                        st["got"] += b
                        if before < st["first"] <= len(st["got"]):
                            first_back += 1
                    elif b == b"":
                        st["done"] = True
                        sel.unregister(s)
                        left -= 1
                        continue
                if ev & selectors.EVENT_WRITE and st["chunks"]:
                    # The first chunk goes at once; the rest once released.
                    if len(st["chunks"]) < 4 and not released:
                        continue
                    c = st["chunks"][0]
                    try:
                        k = s.send(c)
                    except BlockingIOError:
                        k = 0
                    if k == len(c):
                        st["chunks"].pop(0)
                    else:
                        st["chunks"][0] = c[k:]
                    if not st["chunks"]:
                        s.shutdown(socket.SHUT_WR)
                        sel.modify(s, selectors.EVENT_READ, st)
            if not released and first_back == n:
                released = True
        bad = [st for st in states if st["err"] or not st["done"]
               or bytes(st["got"]) != st["data"]]
        assert not bad, (
            "%d of %d clients failed (first: client %d got %d of %d bytes, "
            "done %s, error %s; %d first writes echoed before release)"
            % (len(bad), n, bad[0]["i"], len(bad[0]["got"]),
               len(bad[0]["data"]), bad[0]["done"], bad[0]["err"],
               first_back))
    finally:
        sel.close()
        for s in socks:
            s.close()


def check_storm(args):
    model = args[1]
    with Server(["echo", "-q"] + args + ["tcp://127.0.0.1:0"]) as srv:
        echo_storm(srv.port, STORM_CLIENTS, barrier=(model != "prefork"))
        # Still healthy afterwards.
        with socket.create_connection(("127.0.0.1", srv.port), 5) as s:
            assert exchange(s, b"after the storm") == b"after the storm"


# -- broker: 20 x 20 lines ---------------------------------------------------

def check_broker_fanout(model, nclients=20, nlines=20):
    with Server(["broker"] + model_args(model) +
                ["tcp://127.0.0.1:0"]) as srv:
        socks = [socket.create_connection(("127.0.0.1", srv.port), 5)
                 for _ in range(nclients)]
        bufs = [bytearray() for _ in socks]
        try:
            # Everyone registered: client 0's "sync" lines reached all.
            for s in socks:
                s.setblocking(False)
            end = time.monotonic() + 10
            while time.monotonic() < end:
                socks[0].send(b"sync\n")
                time.sleep(0.02)
                for j in range(1, nclients):
                    try:
                        bufs[j] += socks[j].recv(65536)
                    except BlockingIOError:
                        pass
                if all(b"sync\n" in bufs[j] for j in range(1, nclients)):
                    break
            missing = [j for j in range(1, nclients)
                       if b"sync\n" not in bufs[j]]
            assert not missing, "clients %s never heard client 0" % missing
            # Every client sends its lines, interleaved with the others.
            for k in range(nlines):
                for i, s in enumerate(socks):
                    s.setblocking(True)
                    s.sendall(b"client %d line %d\n" % (i, k))

            def lines(j):
                return [ln for ln in bytes(bufs[j]).split(b"\n")[:-1]
                        if ln != b"sync"]

            want = (nclients - 1) * nlines
            sel = selectors.DefaultSelector()
            for j, s in enumerate(socks):
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, j)
            end = time.monotonic() + 15
            extra_until = None
            while time.monotonic() < end:
                for key, _ in sel.select(timeout=0.1):
                    try:
                        b = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    assert b, "broker closed client %d" % key.data
                    bufs[key.data] += b
                if extra_until is None and all(
                        len(lines(j)) >= want for j in range(nclients)):
                    extra_until = time.monotonic() + 0.2  # any strays?
                if extra_until is not None and time.monotonic() > extra_until:
                    break
            sel.close()
            for j in range(nclients):
                got = lines(j)
                by = {}
                for ln in got:
                    parts = ln.split()
                    assert len(parts) == 4 and parts[0] == b"client", (
                        "client %d got a mangled line %r" % (j, ln))
                    by.setdefault(int(parts[1]), []).append(int(parts[3]))
                assert j not in by, "client %d got %d of its own lines " \
                    "back" % (j, len(by[j]))
                for i in range(nclients):
                    if i != j:
                        assert by.get(i) == list(range(nlines)), (
                            "client %d got client %d's lines as %s"
                            % (j, i, by.get(i)))
                assert len(got) == want, (j, len(got), want)
        finally:
            for s in socks:
                s.close()


# -- 1000 short connections: nothing leaks -----------------------------------

LEAK_ARGS = {"fork": ["--model", "fork"],
             "thread": ["--model", "thread"],
             "prefork": ["--model", "prefork", "--workers", "4"],
             "epoll": ["--model", "epoll", "--workers", "2"],
             "uring": ["--model", "uring", "--workers", "2"]}


def _kids_fds(pid):
    total = 0
    for k in children(pid):
        try:
            total += fd_count(k)
        except OSError:
            pass
    return total


def check_short_conns(model):
    with Server(["echo", "-q"] + LEAK_ARGS[model] +
                ["tcp://127.0.0.1:0"]) as srv:
        for _ in range(3):  # let the model set itself up
            with socket.create_connection(("127.0.0.1", srv.port), 5) as s:
                assert exchange(s, b"warm") == b"warm"
        poll_until(lambda: not zombies(srv.pid) and (
            model != "fork" or not children(srv.pid)), 5)

        def snapshot():
            return {"fds": fd_count(srv.pid),
                    "threads": proc_threads(srv.pid),
                    "children": len(children(srv.pid)),
                    "children's fds": _kids_fds(srv.pid)}

        base = snapshot()
        nthreads = 8
        per = SHORT_CONNS // nthreads

        def client(i):
            for k in range(per):
                with socket.create_connection(("127.0.0.1", srv.port),
                                              10) as s:
                    msg = b"%d-%d" % (i, k)
                    assert exchange(s, msg) == msg, (i, k)

        together(nthreads, client, timeout=90)
        # Zombies: none, once the last children have had time to exit.
        assert poll_until(lambda: not zombies(srv.pid), 5), (
            "zombies after %d connections: %s" % (per * nthreads,
                                                  zombies(srv.pid)))
        settled = poll_until(lambda: snapshot() == base, 5)
        assert settled, "after %d connections: %s, before: %s" % (
            per * nthreads, snapshot(), base)
        assert srv.alive()


# -- SIGTERM with open connections -------------------------------------------

BUSY_BYTES = 4 << 20


class BusyClient:
    """A Unix-socket echo client with work in flight at the server.

    It sends 4 MB and half-closes, reading its echo meanwhile only as much
    as it must to keep the data moving (a Unix socket buffers far less than
    4 MB): it stays LAG bytes behind, so several hundred KB of its echo are
    still queued in the server, which cannot finish until the client reads
    them (slowly: finish()).
    """

    LAG = 400 * 1024

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.data = os.urandom(BUSY_BYTES)
        self.got = bytearray()
        self.sock.setblocking(False)
        sent = 0
        end = time.monotonic() + 20
        while sent < len(self.data):
            assert time.monotonic() < end, "could not send 4 MB to echo " \
                "in 20 s (%d sent, %d back)" % (sent, len(self.got))
            behind = sent - len(self.got) > self.LAG
            r, w, _ = select.select([self.sock] if behind else [],
                                    [self.sock], [], 0.05)
            if not r and not w:
                r = [self.sock]  # stuck: the server needs us to read
            if w:
                try:
                    sent += self.sock.send(self.data[sent:sent + 65536])
                except BlockingIOError:
                    pass
            if r:
                try:
                    b = self.sock.recv(65536)
                except BlockingIOError:
                    b = None
                assert b != b"", "echo closed after %d bytes" % len(self.got)
                if b:
                    self.got += b
        self.sock.shutdown(socket.SHUT_WR)
        self.sock.setblocking(True)
        self.sock.settimeout(20)
        time.sleep(0.1)  # the server fills the way back, and waits

    @property
    def outstanding(self):
        return len(self.data) - len(self.got)

    def finish(self):
        """Read (slowly) to the end; assert every byte came back."""
        try:
            while True:
                b = self.sock.recv(16384)
                if not b:
                    break
                self.got += b
                time.sleep(0.005)
        except ConnectionResetError as e:
            raise AssertionError("busy client reset after %d of %d bytes: %r"
                                 % (len(self.got), len(self.data), e))
        assert len(self.got) == len(self.data) and self.got == self.data, (
            "busy client got %d of %d bytes back (equal so far: %s)"
            % (len(self.got), len(self.data),
               self.data.startswith(bytes(self.got))))
        self.sock.close()


def idle_clients(port, path, unix):
    """A client per item of unix (true: on the Unix socket path, else TCP
    on port), each served one echo of a byte, then left idle."""
    idle = []
    for on_unix in unix:
        if on_unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
        else:
            s = socket.create_connection(("127.0.0.1", port), 5)
        s.sendall(b"i")
        assert s.recv(1) == b"i"
        idle.append(s)
    return idle


def lifecycle_args(model):
    if model == "prefork":
        return ["--model", "prefork", "--workers", "4"]
    return model_args(model)


def check_sigterm(model):
    path = os.path.join(tempdir(), "term.sock")
    with Server(["echo", "-q"] + lifecycle_args(model) +
                ["tcp://127.0.0.1:0", "unix:" + path]) as srv:
        busy = BusyClient(path)
        assert busy.outstanding > 256 * 1024, (
            "no work in flight for the busy client: %d" % busy.outstanding)
        idle = []
        if model != "iterative":  # iterative serves one at a time
            idle = idle_clients(srv.port, path, [0, 0, 1])
        time.sleep(0.1)
        srv.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        for k, s in enumerate(idle):
            assert _is_closed(s, max(0.1, t0 + 3 - time.monotonic())), (
                "idle connection %d still open %.1fs after SIGTERM"
                % (k, time.monotonic() - t0))
            s.close()
        assert srv.alive(), "the server exited with a busy connection " \
            "(grace: 10 s)"
        busy.finish()
        rc = srv.wait(15)
        assert rc == 0, (rc, srv.stderr_text()[-500:])
        assert not os.path.exists(path), "socket file %s left behind" % path
        assert not children(srv.pid)


def check_sigterm_stops_listening(model):
    """Once SIGTERM arrived the server takes no new connection: a client
    that tries (while a busy connection keeps the server up) is refused or
    closed at once, not left hanging in the backlog until the grace ends."""
    path = os.path.join(tempdir(), "term.sock")
    with Server(["echo", "-q"] + lifecycle_args(model) +
                ["tcp://127.0.0.1:0", "unix:" + path]) as srv:
        busy = BusyClient(path)
        assert busy.outstanding > 256 * 1024, (
            "no work in flight for the busy client: %d" % busy.outstanding)
        waiting = None
        if model == "iterative":
            # Connected, but waiting in the backlog behind the busy client.
            waiting = socket.create_connection(("127.0.0.1", srv.port), 5)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert srv.alive(), "the server exited with a busy connection"
        problems = []
        if waiting is not None:
            if not _is_closed(waiting, 2):
                problems.append("a client waiting in the backlog before "
                                "SIGTERM was still connected 2 s later")
            waiting.close()
        try:
            late = socket.create_connection(("127.0.0.1", srv.port), 2)
        except (ConnectionRefusedError, ConnectionResetError):
            late = None
        if late is not None:
            try:
                late.sendall(b"anyone?")
            except OSError:
                pass
            if not _is_closed(late, 2):
                problems.append("a TCP connection made after SIGTERM was "
                                "accepted by the kernel and left hanging "
                                "(not refused, not served, not closed) for "
                                "2 s")
            late.close()
        busy.finish()
        assert srv.wait(15) == 0, srv.stderr_text()[-500:]
        assert not problems, "; ".join(problems)


# -- io_uring: the kernel's side of closing and sending ----------------------

def _uring_or_skip():
    ok, why = model_available("uring")
    if not ok:
        raise Skip(why)


def test_sigterm_uring_idle_closed_on_every_loop():
    """--model uring --workers 2: at SIGTERM, idle connections get their
    close within the quiet second on the loop that ends first too, while
    the other loop still serves a busy client. (A closed connection's
    multishot receive holds its socket until its cancel completes, which
    with deferred task running happens only while the loop waits: a loop
    that ended left its last closed connections open, EOF unsent, until the
    last loop ended.) --max-conns makes the loops accept on readiness, so
    the idle clients are spread over both; 8 of them."""
    _uring_or_skip()
    path = os.path.join(tempdir(), "loops.sock")
    with Server(["echo", "-q", "--model", "uring", "--workers", "2",
                 "--max-conns", "1000", "tcp://127.0.0.1:0",
                 "unix:" + path]) as srv:
        busy = BusyClient(path)
        idle = idle_clients(srv.port, path, [1, 0] * 4)
        time.sleep(0.1)
        srv.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        still = [k for k, s in enumerate(idle)
                 if not _is_closed(s, max(0.1, t0 + 3 - time.monotonic()))]
        for s in idle:
            s.close()
        assert not still, "idle connections %s still open 3 s after " \
            "SIGTERM (of 8)" % still
        busy.finish()
        assert srv.wait(15) == 0, srv.stderr_text()[-500:]


def _io_workers(pid):
    """io_uring's io-wq threads (iou-wrk-TID) of process pid."""
    n = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                n += f.read().startswith("iou-wrk")
        except OSError:
            pass  # gone meanwhile
    return n


def test_uring_slow_readers_take_no_kernel_threads():
    """Sends to slow readers wait for writability in the loop, never in an
    io_uring io-wq thread (where a send blocks whatever O_NONBLOCK says:
    one kernel thread per slow reader, each holding its connection): with
    4 clients each leaving ~400 KB of echo waiting, and reading it slowly,
    the server has no iou-wrk thread; every byte comes back."""
    _uring_or_skip()
    path = os.path.join(tempdir(), "slow.sock")
    with Server(["echo", "-q", "--model", "uring", "unix:" + path]) as srv:
        clients = [BusyClient(path) for _ in range(4)]
        seen = [_io_workers(srv.pid)]
        for c in clients:
            c.finish()
            seen.append(_io_workers(srv.pid))
        assert max(seen) == 0, "iou-wrk threads with 4 slow readers: %s " \
            "(after they filled, then as each read to the end)" % seen


# -- --idle-timeout 1 ---------------------------------------------------------

def check_idle_timeout(model):
    with Server(["echo", "-q", "--idle-timeout", "1"] + model_args(model) +
                ["tcp://127.0.0.1:0"]) as srv:
        idle_result = {}
        idle_thread = None
        if model != "iterative":  # one connection at a time there
            quiet = socket.create_connection(("127.0.0.1", srv.port), 5)
            quiet.sendall(b"q")
            assert quiet.recv(1) == b"q"

            def watch():
                t0 = time.monotonic()
                idle_result["closed"] = _is_closed(quiet, 5)
                idle_result["after"] = time.monotonic() - t0
            idle_thread = threading.Thread(target=watch, daemon=True)
            idle_thread.start()
        # An active connection: a byte every 0.25 s for 1.75 s, well past the
        # 1 s timeout, is never closed; then silent, it is.
        busy = socket.create_connection(("127.0.0.1", srv.port), 5)
        for k in range(8):
            busy.sendall(b"%d" % k)
            busy.settimeout(3)
            got = busy.recv(10)
            assert got == b"%d" % k, (
                "an active connection was closed or broken after %.2f s: %r"
                % (k * 0.25, got))
            time.sleep(0.25)
        t0 = time.monotonic()
        assert _is_closed(busy, 5), "idle for 5 s, still open"
        took = time.monotonic() - t0
        busy.close()
        assert took >= 0.5, "closed %.2f s after its last byte, with " \
            "--idle-timeout 1" % took
        if idle_thread is not None:
            idle_thread.join(6)
            assert idle_result.get("closed"), (
                "the quiet connection was not closed within 5 s: %s"
                % idle_result)
            quiet.close()
        with socket.create_connection(("127.0.0.1", srv.port), 5) as s:
            assert exchange(s, b"next") == b"next"


# -- EMFILE ------------------------------------------------------------------

EMFILE_LIMIT = 64
EMFILE_CONNS = 150


class _LowFdLimit:
    """While active, this process's soft RLIMIT_NOFILE is low; a server
    started meanwhile inherits it (as with preexec_fn)."""

    def __init__(self, soft):
        self.soft = soft

    def __enter__(self):
        self.old = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.soft, self.old[1]))

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_NOFILE, self.old)
        return False


def check_emfile(model):
    with _LowFdLimit(EMFILE_LIMIT):
        srv = Server(["echo", "-q", "--model", model, "tcp://127.0.0.1:0"])
    with srv:
        with open("/proc/%d/limits" % srv.pid) as f:
            assert any(ln.startswith("Max open files") and
                       ln.split()[3] == str(EMFILE_LIMIT) for ln in f), (
                "the server did not inherit the descriptor limit")
        socks = []
        try:
            for _ in range(EMFILE_CONNS):
                socks.append(socket.create_connection(("127.0.0.1", srv.port),
                                                      5))
            time.sleep(0.2)  # the flood of accepts
            c0 = cpu_seconds(srv.pid)
            time.sleep(1.0)
            spent = cpu_seconds(srv.pid) - c0
            assert spent < 0.3, "the server used %.2f s of CPU in 1 s at " \
                "EMFILE (spinning?)" % spent
            # Every connection is served or was closed; none hangs.
            served = closed = 0
            hung = []
            for i, s in enumerate(socks):
                try:
                    s.sendall(b"ping %d" % i)
                except (BrokenPipeError, ConnectionResetError):
                    closed += 1
                    continue
            deadline = time.monotonic() + 5
            for i, s in enumerate(socks):
                s.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    b = s.recv(100)
                except (ConnectionResetError, BrokenPipeError):
                    closed += 1
                    continue
                except socket.timeout:
                    hung.append(i)
                    continue
                except OSError:
                    closed += 1
                    continue
                if b == b"":
                    closed += 1
                else:
                    assert b == b"ping %d" % i, (i, b)
                    served += 1
            assert not hung, "%d connections neither served nor closed " \
                "(first: %s); %d served, %d closed" % (len(hung), hung[:5],
                                                       served, closed)
            assert served >= 1, "no connection served at all"
            if model != "fork":  # fork's children each have their own table
                assert served <= EMFILE_LIMIT, served
                assert closed >= EMFILE_CONNS - EMFILE_LIMIT, (
                    "only %d of %d connections shed at a limit of %d"
                    % (closed, EMFILE_CONNS, EMFILE_LIMIT))
        finally:
            for s in socks:
                s.close()

        def served_again():
            try:
                with socket.create_connection(("127.0.0.1", srv.port),
                                              2) as c:
                    c.settimeout(2)
                    return exchange(c, b"again") == b"again"
            except OSError:
                return False
        assert poll_until(served_again, 5, 0.2), (
            "no client served after the descriptors were freed")
        assert srv.alive()


# -- generated tests ----------------------------------------------------------

def _make(name, func, arg, secs=None):
    def test():
        func(arg)
    test.__name__ = name
    test.__module__ = __name__
    if secs:
        test = timeout(secs)(test)
    return test


def _add(t):
    globals()[t.__name__] = t


for _name, _args in STORM:
    _add(_make("test_storm_%s" % _name, check_storm, _args, 60))
for _model in SHARED:
    _add(_make("test_broker_fanout_%s" % _model, check_broker_fanout, _model))
for _model in ("fork", "thread", "prefork", "epoll", "uring"):
    _add(_make("test_1000_conns_%s" % _model, check_short_conns, _model, 120))
for _model in MODELS:
    _add(_make("test_sigterm_%s" % _model, check_sigterm, _model))
for _model in MODELS:
    _add(_make("test_sigterm_stops_listening_%s" % _model,
               check_sigterm_stops_listening, _model))
for _model in MODELS:
    _add(_make("test_idle_timeout_%s" % _model, check_idle_timeout, _model))
for _model in ("epoll", "poll", "select", "thread", "fork", "uring"):
    _add(_make("test_emfile_%s" % _model, check_emfile, _model))
del _name, _args, _model
