"""`sockit serve exec`: a program per connection (inetd nowait, ncat -k -e).

Children that echo, that read everything before answering (ncat #962: a
10 MB upload must come back whole), that exit at once while the client
still sends, that ignore stdin, that leave a grandchild behind (the group is
killed); the child's environment, descriptors and signal state; stderr with
the client's address; --timeout and the server's stop; datagrams; 1000
connections with no zombie and no leaked descriptor; and `ncat -k -e` on the
same cases. Every model where it means something.
"""

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import (SOCKIT, Server, Skip, children, fd_count, free_port,
                     poll_until, recv_all, run, run_client, start, tempdir,
                     timeout)

MODELS = ["iterative", "fork", "thread", "prefork", "select", "poll", "epoll"]
SANITIZED = "build-san" in os.environ.get("SOCKIT", "")


def margs(model):
    args = ["--model", model]
    if model in ("prefork", "poll", "epoll"):
        args += ["--workers", "2"]
    return args


def exec_server(model, program, addr="tcp://127.0.0.1:0", extra=()):
    """serve exec under model; program: a list (after --) or a --sh string."""
    args = ["exec"] + margs(model) + list(extra) + [addr]
    if isinstance(program, str):
        args = ["exec", "--sh", program] + args[1:]
    else:
        args += ["--"] + list(program)
    return Server(args)


def talk(port, data, host="127.0.0.1", timeout_s=20, family=socket.AF_INET):
    """Send data (in a thread), end it, read to the end; returns the reply."""
    c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(timeout_s)
    c.connect((host, port))
    err = []

    def send():
        try:
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        reply = recv_all(c)
    finally:
        t.join(timeout_s)
        c.close()
    return reply


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        for k in children(todo.pop()):
            out.append(k)
            todo.append(k)
    return out


def zombie_descendants(pid):
    z = []
    for k in descendants(pid):
        try:
            with open("/proc/%d/stat" % k) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    z.append(k)
        except OSError:
            pass
    return z


# -- the child's stdin and stdout are the connection -------------------------

@timeout(90)
def test_exec_echo_every_model():
    for model in MODELS:
        with exec_server(model, ["cat"]) as srv:
            for n in (0, 5, 300000):
                data = os.urandom(n)
                assert talk(srv.port, data) == data, (model, n)
        d = tempdir()
        with exec_server(model, ["cat"], addr="unix:%s/s" % d) as srv:
            c = socket.socket(socket.AF_UNIX)
            c.settimeout(10)
            c.connect("%s/s" % d)
            c.sendall(b"over unix\n")
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"over unix\n", model
            c.close()


@timeout(60)
def test_exec_real_clients_nc_socat():
    with exec_server("epoll", ["tr", "a-z", "A-Z"]) as srv:
        r = run(["nc", "-N", "127.0.0.1", str(srv.port)], input=b"hello nc\n")
        assert r.out == "HELLO NC\n", r
        r = run(["socat", "-t", "5", "-", "TCP:127.0.0.1:%d" % srv.port],
                input=b"hello socat\n")
        assert r.out == "HELLO SOCAT\n", r
        r = run_client(["connect", "127.0.0.1", str(srv.port)],
                       input=b"hello sockit\n")
        assert r.out == "HELLO SOCKIT\n", r


READ_ALL_FIRST = 'f=$(mktemp) && cat > "$f" && cat "$f"; rm -f "$f"'


@timeout(120)
def test_exec_10mb_upload_comes_back_whole():
    # ncat #962: the child answers only after reading everything; the reply
    # must come back whole in every model, after the client's half-close.
    data = os.urandom(10 << 20)
    want = hashlib.sha256(data).hexdigest()
    for model in MODELS:
        with exec_server(model, READ_ALL_FIRST) as srv:
            got = talk(srv.port, data, timeout_s=60)
            assert len(got) == len(data), (model, len(got))
            assert hashlib.sha256(got).hexdigest() == want, model


@timeout(60)
def test_exec_child_exits_at_once_while_client_sends():
    # The child answers and exits without reading; the client is still
    # sending: its answer arrives whole, then the end (no reset before it).
    for model in ("epoll", "fork", "thread", "poll"):
        with exec_server(model, ["echo", "bye"]) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            stop = threading.Event()

            def flood():
                chunk = b"x" * 65536
                try:
                    while not stop.is_set():
                        c.send(chunk)
                except OSError:
                    pass

            t = threading.Thread(target=flood, daemon=True)
            t.start()
            got = b""
            try:
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    got += b
            except ConnectionResetError:
                pass  # after the answer: the server closed with input unread
            stop.set()
            t.join(10)
            c.close()
            assert got == b"bye\n", (model, got)


@timeout(60)
def test_exec_child_ignores_stdin():
    # The child never reads: the client's 4 MB meet backpressure (bounded
    # buffers), the child's output still arrives, and the connection ends.
    for model in ("epoll", "prefork", "iterative"):
        with exec_server(model, "sleep 0.3; echo done") as srv:
            got = talk(srv.port, b"y" * (4 << 20))
            assert got == b"done\n", (model, got)


@timeout(60)
def test_exec_half_close_each_direction():
    # The child ends its output first (the client reads EOF) and still
    # reads: what the client sends afterwards reaches it.
    d = tempdir()
    out = os.path.join(d, "got")
    prog = 'echo first; exec >&-; cat > %s' % out
    for model in MODELS:
        with exec_server(model, prog) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            assert recv_all(c) == b"first\n", model  # EOF: our side half-closed
            c.sendall(b"after the half-close\n")
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"", model
            c.close()
            assert poll_until(lambda: os.path.exists(out) and open(out, "rb").read()
                              == b"after the half-close\n", 5), model
            os.unlink(out)


@timeout(60)
def test_exec_backpressure_bounds_memory():
    # A client that sends 16 MB to cat and reads nothing yet: sockit holds a
    # bounded amount (it stops reading), then everything arrives in order.
    data = os.urandom(16 << 20)
    with exec_server("epoll", ["cat"]) as srv:
        def rss():
            with open("/proc/%d/status" % srv.pid) as f:
                return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        before = rss()
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        t = threading.Thread(target=lambda: (c.sendall(data),
                                             c.shutdown(socket.SHUT_WR)),
                             daemon=True)
        t.start()
        time.sleep(1.0)
        grown = rss() - before
        # (ASan keeps freed memory in quarantine: RSS says nothing there.)
        assert SANITIZED or grown < 6 * 1024, (
            "server grew %d KiB holding a stalled pair" % grown)
        got = recv_all(c)
        t.join(10)
        c.close()
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


@timeout(90)
def test_exec_over_tls_every_model():
    # Over TLS the child still sees plain bytes; the end of its output is a
    # close_notify (the client sees a clean end, no truncation error).
    pin = re.compile(r"^sockit: TLS certificate (sha256:[0-9a-f]{64}) ", re.M)
    data = os.urandom(300000)
    for model in MODELS:
        with Server(["exec", "--tls"] + margs(model) +
                    ["tcp://127.0.0.1:0", "--", "cat"]) as srv:
            r = run_client(["connect", "--pin", pin.search(srv.stderr_text()).group(1),
                            "tcp://127.0.0.1:%d" % srv.port], input=data, timeout=20)
            assert r.returncode == 0, (model, r)
            assert r.stdout == data, (model, len(r.stdout))


# -- the child's process group ----------------------------------------------

@timeout(90)
def test_exec_grandchild_group_killed():
    # The child starts a grandchild and exits: when the connection ends the
    # group gets SIGTERM. Detached (stdio elsewhere), and holding stdout.
    detached = "sleep 60 </dev/null >/dev/null 2>&1 & echo $!"
    holding = "sleep 60 & echo $!"
    for model in MODELS:
        for prog in (detached, holding):
            with exec_server(model, prog) as srv:
                c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                c.shutdown(socket.SHUT_WR)
                got = recv_all(c)
                c.close()
                pid = int(got.split()[0])
                assert poll_until(lambda: not alive(pid), 10), (
                    "%s: grandchild %d still alive (%r)" % (model, pid, prog))


@timeout(60)
def test_exec_client_gone_ends_child():
    # The client resets the connection while the child runs: the child's
    # group gets SIGTERM and the child is reaped (no zombie).
    import struct
    for model in MODELS:
        with exec_server(model, "echo $$; exec sleep 60") as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            pid = int(c.recv(100).split()[0])
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()  # a reset
            assert poll_until(lambda: not alive(pid), 10), (model, pid)
            assert poll_until(lambda: zombie_descendants(srv.pid) == [], 5), model


@timeout(60)
def test_exec_timeout_terminates_then_kills():
    # --timeout: SIGTERM to the group; one that ignores it gets SIGKILL
    # --grace later. The connection ends either way.
    for model in ("epoll", "fork"):
        with exec_server(model, ["sleep", "60"],
                         extra=["--timeout", "0.3"]) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            assert recv_all(c) == b""
            c.close()
            assert srv.wait_stderr("--timeout"), srv.stderr_text()
        prog = 'trap "" TERM; echo $$; sleep 60; echo not killed'
        with exec_server(model, prog,
                         extra=["--timeout", "0.3", "--grace", "0.5"]) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            got = recv_all(c)
            c.close()
            pid = int(got.split()[0])
            assert b"not killed" not in got
            assert poll_until(lambda: not alive(pid), 5), model


@timeout(60)
def test_exec_server_stop_ends_children():
    # SIGTERM to the server: busy connections get --grace, then their
    # groups get SIGTERM (then SIGKILL): no child outlives the server.
    for model in ("epoll", "thread", "fork", "prefork"):
        srv = exec_server(model, 'trap "" TERM; echo $$; exec sleep 60',
                          extra=["--grace", "0.5"])
        with srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            pid = int(c.recv(100).split()[0])
            t0 = time.monotonic()
            assert srv.stop(timeout=15) == 0, srv.stderr_text()
            assert time.monotonic() - t0 < 10, model
            c.close()
        assert poll_until(lambda: not alive(pid), 5), (model, pid)


# -- what the child gets ----------------------------------------------------

def env_of(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@timeout(60)
def test_exec_environment():
    os.environ["SKIT_PASSED"] = "from the server"
    os.environ["SKIT_NOT_PASSED"] = "secret"
    extra = ["--env", "GREETING=hello world", "--pass-env", "SKIT_PASSED"]
    for model in ("epoll", "fork"):
        with exec_server(model, ["env"], extra=extra) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            lport = c.getsockname()[1]
            c.shutdown(socket.SHUT_WR)
            env = env_of(recv_all(c).decode())
            c.close()
            want = {"PROTO": "TCP", "TCPREMOTEIP": "127.0.0.1",
                    "TCPREMOTEPORT": str(lport), "TCPLOCALIP": "127.0.0.1",
                    "TCPLOCALPORT": str(srv.port), "REMOTE_ADDR": "127.0.0.1",
                    "REMOTE_PORT": str(lport), "GREETING": "hello world",
                    "SKIT_PASSED": "from the server"}
            for k, v in want.items():
                assert env.get(k) == v, (model, k, env)
            assert set(env) == set(want) | {"PATH"}, (model, sorted(env))
    with exec_server("epoll", ["env"], addr="tcp://[::1]:0") as srv:
        c = socket.create_connection(("::1", srv.port), timeout=10)
        lport = c.getsockname()[1]
        c.shutdown(socket.SHUT_WR)
        env = env_of(recv_all(c).decode())
        c.close()
        assert env["PROTO"] == "TCP6" and env["TCPREMOTEIP"] == "::1", env
        assert env["TCPREMOTEPORT"] == str(lport) and env["TCPLOCALIP"] == "::1"
    d = tempdir()
    with exec_server("thread", ["env"], addr="unix:%s/s" % d) as srv:
        c = socket.socket(socket.AF_UNIX)
        c.connect("%s/s" % d)
        c.shutdown(socket.SHUT_WR)
        env = env_of(recv_all(c).decode())
        c.close()
        assert env["PROTO"] == "UNIX", env
        assert env["UNIXREMOTEPID"] == str(os.getpid()), env
        assert env["UNIXREMOTEEUID"] == str(os.geteuid()), env
        assert env["UNIXREMOTEEGID"] == str(os.getegid()), env
        assert "TCPREMOTEIP" not in env


def start_server_with(args, **popen):
    """serve ARGS with extra Popen settings; returns (proc, port)."""
    p = start([SOCKIT, "serve"] + args, stdout=subprocess.DEVNULL,
              stderr=subprocess.PIPE, **popen)
    line = p.stderr.readline().decode()
    m = re.search(r"listening on \S+:(\d+)$", line.strip())
    assert m, line
    return p, int(m.group(1))


@timeout(60)
def test_exec_descriptors_and_signals():
    # Only 0, 1 and 2 (a descriptor the server inherited stays out), default
    # dispositions and an empty mask although the server runs with signals
    # ignored and blocked (as under nohup).
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)

    def nohup():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})

    def ask(port):
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.shutdown(socket.SHUT_WR)
        text = recv_all(c).decode()
        c.close()
        return text

    for model in ("epoll", "prefork", "thread", "iterative"):
        # The shell lists its own descriptors (ls's would show ls's directory).
        prog = ["sh", "-c", "ls -l /proc/$$/fd"]
        p, port = start_server_with(["exec"] + margs(model) +
                                    ["tcp://127.0.0.1:0", "--"] + prog,
                                    pass_fds=(leak_r,), preexec_fn=nohup)
        try:
            text = ask(port)
        finally:
            p.terminate()
            p.wait(10)
        fds = sorted(int(m) for m in re.findall(r" (\d+) -> ", text))
        assert fds == [0, 1, 2], (model, text)
        p, port = start_server_with(["exec"] + margs(model) +
                                    ["tcp://127.0.0.1:0", "--", "cat", "/proc/self/status"],
                                    preexec_fn=nohup)
        try:
            text = ask(port)
        finally:
            p.terminate()
            p.wait(10)
        ign = int(re.search(r"SigIgn:\s+([0-9a-f]+)", text).group(1), 16)
        blk = int(re.search(r"SigBlk:\s+([0-9a-f]+)", text).group(1), 16)
        # Signals 32 and 33 are glibc's own (NPTL), hidden from programs;
        # its posix_spawn leaves them ignored. Every other one is default.
        assert ign & ~(3 << 31) == 0, (model, hex(ign))
        assert blk == 0, (model, hex(blk))
    # A server started with descriptors 0 and 1 closed: its own pipes may be
    # 0 and 1, the child still gets the right three.
    def closed_stdio():
        os.close(0)
        os.close(1)

    p, port = start_server_with(["exec", "tcp://127.0.0.1:0", "--", "sh", "-c",
                                 "ls -l /proc/$$/fd; cat"], preexec_fn=closed_stdio)
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"still joined\n")
        c.shutdown(socket.SHUT_WR)
        text = recv_all(c).decode()
        c.close()
    finally:
        p.terminate()
        p.wait(10)
    assert re.findall(r" (\d+) -> (\w+)", text) == [
        ("0", "socket"), ("1", "pipe"), ("2", "pipe")], text
    assert text.endswith("still joined\n"), text
    os.close(leak_r)
    os.close(leak_w)


@timeout(30)
def test_exec_stderr_lines_name_the_client():
    with exec_server("epoll", "echo oops >&2; printf 'no newline' >&2; echo out") as srv:
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        lport = c.getsockname()[1]
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"out\n"
        c.close()
        who = "tcp://127.0.0.1:%d" % lport
        assert srv.wait_stderr("%s: no newline" % who), srv.stderr_text()
        assert "sockit: %s: oops\n" % who in srv.stderr_text(), srv.stderr_text()
        assert "out" not in srv.stdout_text()


@timeout(30)
def test_exec_access_denied_runs_nothing():
    # --allow/--deny come with every server: a refused client never starts
    # the program (the marker file stays absent).
    d = tempdir()
    mark = os.path.join(d, "ran")
    for model in ("epoll", "fork"):
        with exec_server(model, "touch %s; echo hi" % mark,
                         extra=["--allow", "127.0.0.2"]) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            try:
                got = recv_all(c)
            except ConnectionResetError:
                got = b""
            c.close()
            assert got == b"", (model, got)
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10,
                                         source_address=("127.0.0.2", 0))
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"hi\n", model
            c.close()
        assert os.path.exists(mark), model
        os.unlink(mark)
        with exec_server(model, "touch %s; echo hi" % mark,
                         extra=["--deny", "127.0.0.1"]) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            try:
                got = recv_all(c)
            except ConnectionResetError:
                got = b""
            c.close()
            assert got == b"", (model, got)
        assert not os.path.exists(mark), model


# -- datagrams ---------------------------------------------------------------

@timeout(60)
def test_exec_datagram_reply_is_stdout():
    for model in ("epoll", "fork", "iterative"):
        with exec_server(model, ["tr", "a-z", "A-Z"], addr="udp://127.0.0.1:0") as srv:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(10)
            u.sendto(b"hello datagram", ("127.0.0.1", srv.port))
            assert u.recvfrom(70000)[0] == b"HELLO DATAGRAM", model
            u.close()
    # A larger output is cut to what one UDP datagram holds (65507 bytes).
    with exec_server("epoll", "head -c 100000 /dev/zero; cat >/dev/null",
                     addr="udp://127.0.0.1:0") as srv:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(10)
        u.sendto(b"x", ("127.0.0.1", srv.port))
        assert u.recvfrom(200000)[0] == b"\0" * 65507
        u.close()
    # The environment names the sender; a unixgram client gets its reply too.
    with exec_server("epoll", ["env"], addr="udp://127.0.0.1:0") as srv:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(10)
        u.bind(("127.0.0.1", 0))
        u.sendto(b"", ("127.0.0.1", srv.port))
        env = env_of(u.recvfrom(70000)[0].decode())
        assert env["PROTO"] == "UDP" and env["REMOTE_ADDR"] == "127.0.0.1", env
        assert env["REMOTE_PORT"] == str(u.getsockname()[1]), env
        u.close()


# -- many connections ----------------------------------------------------------

def many(port, n, threads=8):
    errors = []

    def worker(k):
        for i in range(k, n, threads):
            msg = b"%d\n" % i
            try:
                got = talk(port, msg, timeout_s=10)
            except OSError as e:
                errors.append((i, e))
                continue
            if got != msg:
                errors.append((i, got))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return errors


@timeout(240)
def test_exec_many_connections_no_zombies_no_leaks():
    for model in MODELS:
        n = 1000 if model in ("epoll", "fork") else 50
        with exec_server(model, ["cat"]) as srv:
            many(srv.port, 5, threads=1)  # warm up (the reaper, workers)
            before = fd_count(srv.pid)
            errors = many(srv.port, n)
            assert errors == [], (model, errors[:5])
            assert poll_until(lambda: zombie_descendants(srv.pid) == [], 10), (
                model, zombie_descendants(srv.pid))
            assert poll_until(lambda: fd_count(srv.pid) <= before, 5), (
                model, before, fd_count(srv.pid))
            # No exec child left either (prefork workers are the only children).
            left = [k for k in descendants(srv.pid)
                    if open("/proc/%d/comm" % k).read().strip() == "cat"]
            assert poll_until(lambda: not [k for k in left if alive(k)], 5), left


# -- usage ---------------------------------------------------------------------

def test_exec_usage_errors():
    r = run_client(["serve", "exec", "tcp://127.0.0.1:0"])
    assert r.returncode == 2 and "no program" in r.err, r
    r = run_client(["serve", "exec", "--sh", "true", "tcp://127.0.0.1:0", "--", "cat"])
    assert r.returncode == 2 and "not both" in r.err, r
    r = run_client(["serve", "exec", "tcp://127.0.0.1:0", "--", "no-such-program-skit"])
    assert r.returncode == 2 and "no-such-program-skit: not found in PATH" in r.err, r
    r = run_client(["serve", "exec", "--env", "1X=y", "tcp://127.0.0.1:0", "--", "cat"])
    assert r.returncode == 2 and "--env" in r.err, r
    r = run_client(["serve", "exec", "tcp://127.0.0.1:0", "--"])
    assert r.returncode == 2 and "nothing after --" in r.err, r
    r = run_client(["serve", "exec", "--help"])
    assert r.returncode == 0 and "-- PROGRAM [ARGS...]" in r.out, r
    assert "--pass-env" in r.out and "TCPREMOTEIP" in r.out
    # Another service: words after -- are still addresses.
    r = run_client(["serve", "--once", "echo", "--", "tcp://127.0.0.1:99999"])
    assert r.returncode == 2 and "99999" in r.err, r


@timeout(30)
def test_exec_program_options_are_not_sockit_options():
    # After --, "-v" and "--model" are the program's.
    with Server(["exec", "tcp://127.0.0.1:0", "--", "echo", "-n", "--model", "-v"]) as srv:
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"--model -v"
        c.close()


# -- ncat -k -e, case by case -------------------------------------------------------

def ncat_server(program):
    """ncat -k -e PROGRAM on a free loopback port; (proc, port)."""
    if shutil.which("ncat") is None:
        raise Skip("ncat is not installed")
    s, port = free_port()
    s.close()
    p = start(["ncat", "-k", "-l", "127.0.0.1", str(port), "-e", program],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = poll_until(lambda: _connectable(port), 5)
    assert ok, "ncat did not listen on %d" % port
    return p, port


def _connectable(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@timeout(120)
def test_exec_compared_with_ncat():
    # Each case against `ncat -k -e` and `serve exec`, the same client (it
    # sends, half-closes, reads to the end): sockit is right in every case,
    # also where ncat loses data (#962: it ends the session at the client's
    # half-close). What ncat did is in the message.
    d = tempdir()

    def script(name, body):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
        return path

    upload = os.urandom(10 << 20)
    cases = [("echo", script("echo.sh", "exec cat"), b"hello\n", b"hello\n"),
             ("read-all-first", script("readall.sh", READ_ALL_FIRST), upload, upload),
             ("exits-at-once", script("bye.sh", "echo bye"), b"z" * (1 << 20), b"bye\n"),
             ("ignores-stdin", script("late.sh", "sleep 0.3; echo done"),
              b"y" * (1 << 20), b"done\n")]
    results = {}
    for name, prog, data, want in cases:
        p, port = ncat_server(prog)
        try:
            try:
                got = talk(port, data, timeout_s=20)
            except OSError as e:
                got = repr(e).encode()
            results[("ncat", name)] = "ok" if got == want else "got %d bytes" % len(got)
        finally:
            p.kill()
            p.wait(5)
        with Server(["exec", "tcp://127.0.0.1:0", "--", prog]) as srv:
            got = talk(srv.port, data, timeout_s=30)
            results[("sockit", name)] = "ok" if got == want else "got %d bytes" % len(got)
    for name, _, _, _ in cases:
        assert results[("sockit", name)] == "ok", (name, results)
