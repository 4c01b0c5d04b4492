"""Running where servers really run: systemd socket activation (fd:N, sd:NAME,
sd:), sd_notify, inetd (--inetd, --inetd-wait), --reuseport, SIGHUP.

The real tools: systemd-socket-activate (Debian's systemd package; needs no
root and no running systemd) and openbsd-inetd started in the foreground
(`inetd -d CONFIG`) on a private configuration. Everything listens on
127.0.0.1 only.
"""

import errno
import getpass
import os
import signal
import socket
import subprocess
import time

from harness import (SOCKIT, Server, children, free_port, poll_until,
                     recv_all, require, run, start, tempdir, timeout)


def echo_once(port, data=b"hello\n", src=None, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        if src:
            s.bind((src, 0))
        s.connect((host, port))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)
    except (ConnectionResetError, BrokenPipeError):
        return b""
    except OSError as e:
        if e.errno == errno.ENOTCONN:  # refused before our shutdown()
            return b""
        raise
    finally:
        s.close()


def udp_echo(port, data, wait=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(wait)
    try:
        s.sendto(data, ("127.0.0.1", port))
        return s.recvfrom(65536)[0]
    finally:
        s.close()


def reserve_port(kind=socket.SOCK_STREAM):
    s, port = free_port(kind)
    s.close()
    return port


class Activated:
    """`systemd-socket-activate ARGS -- sockit serve SERVE...`, stderr kept."""

    def __init__(self, sa_args, serve_args, env=None):
        self.errpath = os.path.join(tempdir(), "err")
        self.err = open(self.errpath, "wb")
        self.proc = start(["systemd-socket-activate"] + sa_args +
                          [SOCKIT, "serve"] + serve_args,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=self.err, env=env)

    def wait_listening(self, port):
        # systemd-socket-activate says so before it takes a connection.
        ok = poll_until(lambda: ("127.0.0.1:%d" % port) in self.stderr(), 10)
        assert ok, self.stderr()

    def stderr(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        finally:
            self.err.close()
        return rc


# -- socket activation ----------------------------------------------------

@timeout(30)
def test_sd_one_socket():
    require("systemd-socket-activate")
    port = reserve_port()
    a = Activated(["-l", "127.0.0.1:%d" % port], ["-v", "echo", "sd:"])
    a.wait_listening(port)
    assert echo_once(port) == b"hello\n"
    assert echo_once(port, b"again\n") == b"again\n"
    assert poll_until(lambda: "listening on tcp://127.0.0.1:%d" % port
                      in a.stderr(), 5), a.stderr()
    assert a.stop() == 0, a.stderr()


@timeout(30)
def test_sd_unix_socket_never_unlinked():
    """A Unix socket from systemd is served, and its file stays at stop."""
    require("systemd-socket-activate")
    path = os.path.join(tempdir(), "s.sock")
    a = Activated(["-l", path], ["-v", "echo", "sd:"])
    assert poll_until(lambda: os.path.exists(path), 10), a.stderr()
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(path)
    c.sendall(b"unix\n")
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b"unix\n"
    c.close()
    assert "listening on unix:" + path in a.stderr(), a.stderr()
    assert a.stop() == 0, a.stderr()
    assert os.path.exists(path)


@timeout(30)
def test_sd_named_sockets():
    """--fdname a:b: sd:b serves the second socket only; sd:nosuch names
    the names there are."""
    require("systemd-socket-activate")
    pa, pb = reserve_port(), reserve_port()
    a = Activated(["-l", "127.0.0.1:%d" % pa, "-l", "127.0.0.1:%d" % pb,
                   "--fdname=alpha:beta"], ["-v", "echo", "sd:beta"])
    a.wait_listening(pb)
    assert echo_once(pb) == b"hello\n"
    err = a.stderr()
    assert "listening on tcp://127.0.0.1:%d" % pb in err, err
    assert "listening on tcp://127.0.0.1:%d" % pa not in err, err
    assert a.stop() == 0, a.stderr()

    a = Activated(["-l", "127.0.0.1:%d" % pa, "-l", "127.0.0.1:%d" % pb,
                   "--fdname=alpha:beta"], ["echo", "sd:nosuch"])
    a.wait_listening(pb)
    c = socket.socket()
    c.settimeout(5)
    try:
        # Starts it; it exits at once, so the connection may be reset even
        # before connect() returns.
        c.connect(("127.0.0.1", pa))
    except ConnectionResetError:
        pass
    try:
        assert a.proc.wait(10) == 2
    finally:
        c.close()
    assert ('bad address "sd:nosuch": no socket of that name was passed '
            '(alpha, beta)') in a.stderr(), a.stderr()


@timeout(30)
def test_sd_datagram_socket():
    require("systemd-socket-activate")
    port = reserve_port(socket.SOCK_DGRAM)
    a = Activated(["-d", "-l", "127.0.0.1:%d" % port], ["-v", "echo", "sd:"])
    a.wait_listening(port)
    # The first datagram starts sockit and waits in the socket for it.
    assert udp_echo(port, b"ping") == b"ping"
    assert udp_echo(port, b"pong") == b"pong"
    assert "listening on udp://127.0.0.1:%d" % port in a.stderr()
    assert a.stop() == 0, a.stderr()


@timeout(30)
def test_sd_accept_inetd():
    """Accept=yes: one sockit per connection, the connection on stdin/out."""
    require("systemd-socket-activate")
    port = reserve_port()
    log = os.path.join(tempdir(), "log")
    a = Activated(["-a", "--inetd", "-l", "127.0.0.1:%d" % port],
                  ["echo", "--inetd", "-v", "--log", log])
    a.wait_listening(port)
    for i in range(3):
        data = b"conn %d\n" % i
        assert echo_once(port, data) == data  # nothing but the service's bytes
    assert poll_until(lambda: open(log).read().count("closed tcp://") == 3, 5)
    text = open(log).read()
    assert text.count("Received 7 bytes from 127.0.0.1") == 3, text
    a.stop()


@timeout(30)
def test_sd_accept_without_inetd_protocol():
    """Accept=yes with the connection passed as LISTEN_FDS (descriptor 3),
    systemd's default: --inetd takes it from there."""
    require("systemd-socket-activate")
    port = reserve_port()
    a = Activated(["-a", "-l", "127.0.0.1:%d" % port],
                  ["echo", "--inetd", "-v"])
    a.wait_listening(port)
    assert echo_once(port, b"fd3\n") == b"fd3\n"
    assert poll_until(lambda: "closed tcp://127.0.0.1:" in a.stderr(), 5), \
        a.stderr()
    a.stop()


def run_with_fd3(args, sock, env_extra, expect_pid=True):
    """sockit ARGS with sock on descriptor 3 and LISTEN_* for that process."""
    env = dict(os.environ, **env_extra)
    pre = 'export LISTEN_PID=$$; ' if expect_pid else ''
    fd = sock.fileno()

    def to3():
        os.dup2(fd, 3)
    return subprocess.Popen(
        ["sh", "-c", pre + 'exec "$@"', "sh", SOCKIT] + args,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env, preexec_fn=to3, pass_fds=(fd,))


@timeout(20)
def test_sd_listen_pid_not_ours():
    """A LISTEN_PID that is not ours: no sockets were passed."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    try:
        p = run_with_fd3(["serve", "echo", "sd:"], ls,
                         {"LISTEN_PID": "1", "LISTEN_FDS": "1"},
                         expect_pid=False)
        out, err = p.communicate(timeout=10)
        assert p.returncode == 2, err
        assert b'bad address "sd:": no sockets were passed to this process ' \
            b'(LISTEN_PID is 1, not ' in err, err
        r = run([SOCKIT, "serve", "echo", "sd:"],
                env={k: v for k, v in os.environ.items()
                     if not k.startswith("LISTEN_")})
        assert r.returncode == 2 and "LISTEN_FDS is not set" in r.err, r
    finally:
        ls.close()


@timeout(20)
def test_inherited_wrong_type():
    """A stream service given a datagram socket, a connected stream socket
    as fd:N, a descriptor that is not a socket: usage errors naming it."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    try:
        p = run_with_fd3(["serve", "http", "sd:"], u, {"LISTEN_FDS": "1"})
        _, err = p.communicate(timeout=10)
        assert p.returncode == 2, err
        assert b"service http does not run on datagram sockets (sd:)" in err, err
        p = run_with_fd3(["serve", "http", "fd:3"], u, {})
        _, err = p.communicate(timeout=10)
        assert p.returncode == 2, err
        assert b"service http does not run on datagram sockets (fd:3)" in err, err
    finally:
        u.close()
    a, b = socket.socketpair()
    try:
        p = run_with_fd3(["serve", "echo", "fd:3"], a, {})
        _, err = p.communicate(timeout=10)
        assert p.returncode == 2, err
        assert b"fd:3: descriptor 3 is a stream socket that is not listening" in err, err
    finally:
        a.close()
        b.close()
    r = run([SOCKIT, "serve", "echo", "fd:77"])
    assert r.returncode == 2 and "fd:77: descriptor 77 is not open" in r.err, r
    r = run([SOCKIT, "connect", "fd:77"])
    assert r.returncode == 2 and "fd:77" in r.err, r


@timeout(20)
def test_sd_variables_not_inherited():
    """LISTEN_* and NOTIFY_SOCKET are gone from a fork worker's environment,
    and the socket is close-on-exec (not passed on)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    port = ls.getsockname()[1]
    d = tempdir()
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(os.path.join(d, "notify"))
    p = run_with_fd3(["serve", "--model", "fork", "echo", "sd:web"], ls,
                     {"LISTEN_FDS": "1", "LISTEN_FDNAMES": "web",
                      "NOTIFY_SOCKET": os.path.join(d, "notify")})
    try:
        ns.settimeout(10)
        assert ns.recv(100) == b"READY=1"
        c = socket.create_connection(("127.0.0.1", port), 5)
        c.sendall(b"x")
        assert c.recv(10) == b"x"
        kids = poll_until(lambda: children(p.pid), 5)
        assert kids, "no fork worker"
        env = open("/proc/%d/environ" % kids[0], "rb").read().split(b"\0")
        names = [e.split(b"=", 1)[0] for e in env]
        for v in (b"LISTEN_PID", b"LISTEN_FDS", b"LISTEN_FDNAMES",
                  b"NOTIFY_SOCKET"):
            assert v not in names, (v, names)
        flags = open("/proc/%d/fdinfo/3" % p.pid).read()
        fl = int([x for x in flags.splitlines()
                  if x.startswith("flags:")][0].split()[1], 8)
        assert fl & 0o2000000, flags  # O_CLOEXEC
        c.close()
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
        ls.close()
        ns.close()
    assert p.returncode == 0, err


@timeout(20)
def test_sd_notify():
    """READY=1 once serving, RELOADING=1 (MONOTONIC_USEC) and READY=1 around
    SIGHUP, STOPPING=1 at stop; an abstract NOTIFY_SOCKET too."""
    for abstract in (False, True):
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "skit-notify-%d-%s" % (os.getpid(), os.urandom(4).hex())
            ns.bind("\0" + name)
            where = "@" + name
        else:
            where = os.path.join(tempdir(), "notify")
            ns.bind(where)
        ns.settimeout(10)
        env = dict(os.environ, NOTIFY_SOCKET=where)
        p = subprocess.Popen([SOCKIT, "serve", "echo", "127.0.0.1:0"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        try:
            assert ns.recv(200) == b"READY=1"
            p.send_signal(signal.SIGHUP)
            msg = ns.recv(200).split(b"\n")
            assert msg[0] == b"RELOADING=1", msg
            assert msg[1].startswith(b"MONOTONIC_USEC=") and \
                int(msg[1].split(b"=")[1]) > 0, msg
            assert ns.recv(200) == b"READY=1"
            assert p.poll() is None  # SIGHUP did not end it
            p.send_signal(signal.SIGTERM)
            assert ns.recv(200) == b"STOPPING=1"
            _, err = p.communicate(timeout=10)
            assert p.returncode == 0, err
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            ns.close()


# -- inetd ----------------------------------------------------------------

def start_inetd(conf, port, kind):
    errpath = conf + ".err"
    err = open(errpath, "wb")
    p = start(["inetd", "-d", conf], stdin=subprocess.DEVNULL,
              stdout=err, stderr=err)

    def bound():
        name = "/proc/net/udp" if kind == "udp" else "/proc/net/tcp"
        with open(name) as f:
            return any(":%04X " % port in ln for ln in f)
    assert poll_until(bound, 10), open(errpath).read()
    return p, err


@timeout(40)
def test_inetd_nowait_and_wait():
    """A real inetd: echo --inetd (nowait, TCP) and echo --inetd-wait (wait,
    UDP) with --idle-exit: started again for the next datagram."""
    require("inetd")
    user = getpass.getuser()
    tport, uport = reserve_port(), reserve_port(socket.SOCK_DGRAM)
    logdir = tempdir()
    conf = os.path.join(logdir, "inetd.conf")
    with open(conf, "w") as f:
        f.write("127.0.0.1:%d stream tcp nowait %s %s sockit serve echo "
                "--inetd -v --log %s/tcp.log\n" % (tport, user, SOCKIT, logdir))
        f.write("127.0.0.1:%d dgram udp wait %s %s sockit serve echo "
                "--inetd-wait --idle-exit 0.5 -v --log %s/udp.log\n"
                % (uport, user, SOCKIT, logdir))
    p, err = start_inetd(conf, tport, "tcp")
    try:
        assert poll_until(lambda: ":%04X " % uport in open("/proc/net/udp").read(), 5)
        for i in range(3):
            data = b"tcp %d\n" % i
            assert echo_once(tport, data) == data
        assert udp_echo(uport, b"one") == b"one"
        assert udp_echo(uport, b"two") == b"two"
        udp_log = os.path.join(logdir, "udp.log")
        assert poll_until(lambda: "exiting (--idle-exit)" in
                          open(udp_log).read(), 10), open(udp_log).read()
        assert udp_echo(uport, b"three") == b"three"  # inetd started it again
        assert poll_until(lambda: open(udp_log).read().count(
            "exiting (--idle-exit)") == 2, 10)
        tcp_log = open(os.path.join(logdir, "tcp.log")).read()
        assert tcp_log.count("Received 6 bytes from 127.0.0.1") == 3, tcp_log
    finally:
        p.terminate()
        p.wait(10)
        err.close()


@timeout(20)
def test_inetd_errors_stay_off_the_socket():
    """In --inetd mode an error goes to --log, never to the client."""
    log = os.path.join(tempdir(), "log")
    a, b = socket.socketpair()
    try:
        p = subprocess.Popen([SOCKIT, "serve", "echo", "--inetd", "--log", log,
                              "--nosuch"], stdin=a, stdout=a, stderr=a)
        assert p.wait(10) == 2
        a.close()
        b.settimeout(5)
        assert recv_all(b) == b""
        assert "unknown option" in open(log).read() or "--nosuch" in open(log).read()
    finally:
        b.close()
    r = run([SOCKIT, "serve", "echo", "--inetd", "--log", log, "8080"])
    assert r.returncode == 2 and r.stderr == b"", r  # stderr may be the client
    assert "--inetd takes no ADDRESS" in open(log).read()
    r = run([SOCKIT, "serve", "echo", "--inetd-w"])
    assert r.returncode == 2 and "spell out --inetd-wait in full" in r.err, r
    r = run([SOCKIT, "serve", "echo", "--idle-exit", "3", "8080"])
    assert r.returncode == 2 and "--idle-exit is for --inetd-wait" in r.err, r
    # A pipe on standard input is no connection: said in the log, exit 2.
    r = run([SOCKIT, "serve", "echo", "--inetd", "--log", log])
    assert r.returncode == 2 and r.stdout == b"" and r.stderr == b"", r
    assert "not a socket" in open(log).read()


# -- SO_REUSEPORT -----------------------------------------------------------

def listening_sockets(port):
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for ln in f.readlines()[1:]:
                parts = ln.split()
                if parts[1].endswith(":%04X" % port) and parts[3] == "0A":
                    n += 1
    return n


@timeout(40)
def test_reuseport_three_processes():
    first = Server(["--reuseport", "echo", "tcp://127.0.0.1:0"])
    servers = [first]
    try:
        port = first.port
        # Without --reuseport the port is taken.
        r = run([SOCKIT, "serve", "echo", "tcp://127.0.0.1:%d" % port])
        assert r.returncode == 1 and "Address already in use" in r.err, r
        for _ in range(2):
            servers.append(Server(["-v", "--reuseport", "echo",
                                   "tcp://127.0.0.1:%d" % port]))
        assert listening_sockets(port) == 3
        for i in range(200):
            assert echo_once(port, b"m\n") == b"m\n"
        def counts():
            return [s.stdout_text().count("Received 2 bytes") for s in servers]
        poll_until(lambda: sum(counts()) == 200, 5)  # the reports' pipes drain
        counts = counts()
        assert sum(counts) == 200, counts
        assert min(counts) >= 1, counts
    finally:
        for s in servers:
            s.stop()


def check_workers_reuseport_one_socket_per_loop(model):
    with Server(["--model", model, "--workers", "2", "--reuseport", "-v", "echo",
                 "tcp://127.0.0.1:0"]) as srv:
        assert "tcp_migrate_req" in srv.stderr_text() or \
            not os.path.exists("/proc/sys/net/ipv4/tcp_migrate_req") or \
            open("/proc/sys/net/ipv4/tcp_migrate_req").read().strip() != "0"
        # each loop opens its own socket as it starts: wait for the second
        assert poll_until(lambda: listening_sockets(srv.port) == 2, 5), \
            listening_sockets(srv.port)
        for _ in range(50):
            assert echo_once(srv.port, b"w\n") == b"w\n"
    with Server(["--model", model, "--workers", "2", "echo", "tcp://127.0.0.1:0"]) as srv:
        assert listening_sockets(srv.port) == 1
        assert echo_once(srv.port) == b"hello\n"


@timeout(30)
def test_workers_reuseport_one_socket_per_loop():
    check_workers_reuseport_one_socket_per_loop("epoll")


@timeout(30)
def test_workers_reuseport_one_socket_per_loop_uring():
    check_workers_reuseport_one_socket_per_loop("uring")


# -- SIGHUP ---------------------------------------------------------------

def tasks(pid):
    return sorted(os.listdir("/proc/%d/task" % pid))


def recv_exactly(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            break
        out += b
    return out


def check_sighup_access(model, one_task=False):
    """SIGHUP re-reads --allow-file; a connection open across it is kept.
    one_task: the serving process is one thread (an event loop reads the
    SIGHUP pipe itself: a second thread would make every system call on a
    descriptor take a file reference)."""
    d = tempdir()
    allow = os.path.join(d, "allow")
    with open(allow, "w") as f:
        f.write("127.0.0.2\n")
    with Server(["-v", "--model", model, "--allow-file", allow, "echo",
                 "tcp://127.0.0.1:0"]) as srv:
        if one_task:
            assert tasks(srv.pid) == [str(srv.pid)]
        kept = socket.create_connection(("127.0.0.1", srv.port), 10,
                                        ("127.0.0.2", 0))
        kept.sendall(b"before\n")
        assert recv_exactly(kept, 7) == b"before\n"
        assert echo_once(srv.port, src="127.0.0.2") == b"hello\n"
        assert echo_once(srv.port, src="127.0.0.3") == b""
        with open(allow, "w") as f:
            f.write("127.0.0.2\n127.0.0.3\n")
        os.kill(srv.pid, signal.SIGHUP)
        srv.wait_stderr("SIGHUP: access files re-read")
        assert echo_once(srv.port, src="127.0.0.3") == b"hello\n"
        kept.sendall(b"after\n")
        assert recv_exactly(kept, 6) == b"after\n"
        kept.close()
        if one_task:
            assert tasks(srv.pid) == [str(srv.pid)]
        # A bad file: one error line, and the list in force stays.
        with open(allow, "w") as f:
            f.write("127.0.0.2\n010.0.0.1\n")
        os.kill(srv.pid, signal.SIGHUP)
        srv.wait_stderr("leading zeros")
        assert "the old access list stays" in srv.stderr_text()
        assert echo_once(srv.port, src="127.0.0.3") == b"hello\n"
        assert echo_once(srv.port, src="127.0.0.4") == b""


@timeout(30)
def test_sighup_rereads_access_file():
    check_sighup_access("epoll", one_task=True)


@timeout(30)
def test_sighup_rereads_access_file_uring():
    check_sighup_access("uring", one_task=True)


@timeout(30)
def test_sighup_rereads_access_file_fork():
    check_sighup_access("fork")  # the parent accepts and checks


@timeout(40)
def test_sighup_prefork_keeps_the_worker_limit():
    """prefork --workers 2 serves 2 connections at once, and still does
    across a reload: the new workers are forked as the old ones leave (a busy
    one once its connection is done), not beside them (before: 4 workers,
    and 4 connections served at once, until the old ones finished)."""
    d = tempdir()
    allow = os.path.join(d, "allow")
    with open(allow, "w") as f:
        f.write("127.0.0.1\n")
    with Server(["-v", "--model", "prefork", "--workers", "2", "--allow-file", allow,
                 "echo", "tcp://127.0.0.1:0"]) as srv:
        assert poll_until(lambda: len(children(srv.pid)) == 2, 5), children(srv.pid)
        held = []
        for i in range(2):  # both workers busy
            c = socket.create_connection(("127.0.0.1", srv.port), 5)
            c.sendall(b"busy %d\n" % i)
            assert c.recv(100) == b"busy %d\n" % i
            held.append(c)
        os.kill(srv.pid, signal.SIGHUP)
        srv.wait_stderr("reload: new workers")
        time.sleep(0.5)  # what a wrong supervisor would fork, it has forked by now
        assert len(children(srv.pid)) == 2, "workers after the reload: %r" % children(srv.pid)
        # A third client waits in the backlog; one old worker's client leaves,
        # and a new-generation worker takes the waiting one.
        third = socket.create_connection(("127.0.0.1", srv.port), 5)
        third.sendall(b"third\n")
        held.pop().close()
        assert third.recv(100) == b"third\n"
        assert len(children(srv.pid)) <= 2, children(srv.pid)
        third.close()
        held.pop().close()
        assert poll_until(lambda: len(children(srv.pid)) == 2, 5), children(srv.pid)
        assert echo_once(srv.port) == b"hello\n"


@timeout(30)
def test_idle_exit_one_task():
    """--inetd-wait --idle-exit under an event loop: the idle looks are a
    timer in the loop, no thread of their own; it serves, then exits."""
    for model in ("epoll", "uring"):
        ls, port = free_port()
        ls.listen(8)
        logpath = os.path.join(tempdir(), "log")
        p = start([SOCKIT, "serve", "--model", model, "--inetd-wait",
                   "--idle-exit", "2", "-v", "--log", logpath, "echo"],
                  stdin=ls.fileno(), stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)
        ls.close()
        try:
            assert echo_once(port) == b"hello\n"  # then it is in its loop
            assert tasks(p.pid) == [str(p.pid)]
            assert p.wait(10) == 0
            assert "exiting (--idle-exit)" in open(logpath).read()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


@timeout(30)
def test_sighup_rereads_http_auth():
    """http --auth: a user added to the file can log in after SIGHUP; a bad
    file is one error line and the old users stay."""
    require("curl")
    from test_http import crypt_hash
    d = tempdir()
    with open(os.path.join(d, "a.txt"), "w") as f:
        f.write("secret\n")
    pw = os.path.join(tempdir(), "htpasswd")
    with open(pw, "w") as f:
        f.write("alice:%s\n" % crypt_hash("apw", "$6$"))

    def status(srv, user, password):
        r = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                 "-u", "%s:%s" % (user, password),
                 "http://127.0.0.1:%d/a.txt" % srv.port])
        return r.out

    with Server(["-v", "http", "--root", d, "--auth", pw,
                 "tcp://127.0.0.1:0"]) as srv:
        assert status(srv, "alice", "apw") == "200"
        assert status(srv, "bob", "bpw") == "401"
        with open(pw, "a") as f:
            f.write("bob:%s\n" % crypt_hash("bpw", "$6$"))
        os.kill(srv.pid, signal.SIGHUP)
        srv.wait_stderr("SIGHUP: the service's files re-read")
        assert status(srv, "bob", "bpw") == "200"
        os.chmod(pw, 0)
        if os.access(pw, os.R_OK):  # root reads anything: make it bad instead
            os.chmod(pw, 0o644)
            with open(pw, "w") as f:
                f.write("carol\n")
        os.kill(srv.pid, signal.SIGHUP)
        srv.wait_stderr("(the old file stays in use)")
        assert status(srv, "bob", "bpw") == "200"
        assert status(srv, "alice", "apw") == "200"


# -- SIGUSR2: binary upgrade --------------------------------------------------

def gone(pid):
    """pid has exited (a zombie waiting for a reaper counts)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@timeout(60)
def test_sigusr2_upgrade():
    """SIGUSR2 ten times: each time a new process takes the listening
    sockets (SCM_RIGHTS) and serves, and the old one drains and exits 0;
    the Unix socket file stays. (Not under concurrent load: a connection
    the old process accepted just before it stops, whose first bytes are
    still in flight, is closed as idle; see the report.)"""
    import re
    d = tempdir()
    path = os.path.join(d, "u.sock")
    errpath = os.path.join(d, "err")
    err = open(errpath, "wb")
    p = start([SOCKIT, "serve", "echo", "tcp://127.0.0.1:0", "unix:" + path],
              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)

    def text():
        with open(errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def unix_echo(data):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(5)
        try:
            c.connect(path)
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            return recv_all(c)
        finally:
            c.close()
    assert poll_until(lambda: "listening on tcp://127.0.0.1:" in text(), 10)
    port = int(re.search(r"listening on tcp://127\.0\.0\.1:(\d+)",
                         text()).group(1))
    pids = [p.pid]
    for n in range(1, 11):
        assert echo_once(port, b"before %d\n" % n) == b"before %d\n" % n
        os.kill(pids[-1], signal.SIGUSR2)
        assert poll_until(lambda: len(re.findall(
            r"SIGUSR2: process (\d+) serves now", text())) >= n, 10), text()
        pids.append(int(re.findall(r"SIGUSR2: process (\d+) serves now",
                                   text())[n - 1]))
        if n > 1:
            old = pids[-2]
            assert poll_until(lambda: gone(old), 10), \
                "old process %d still there" % old
        assert echo_once(port, b"after %d\n" % n) == b"after %d\n" % n
        assert unix_echo(b"unix %d\n" % n) == b"unix %d\n" % n
        if n == 1:  # the first process stopped cleanly
            assert p.wait(10) == 0
    assert os.path.exists(path)
    last = pids[-1]
    os.kill(last, signal.SIGTERM)
    assert poll_until(lambda: gone(last), 10)
    err.close()
    assert "Sanitizer" not in text() and "runtime error" not in text(), text()
